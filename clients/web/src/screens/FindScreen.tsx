// Finding records on this device: search and filters by person, status, date and framework
// area, over the observations and plans the device holds, so it works offline. Each person
// found links to their progress view.
import { useState } from "preact/hooks";
import { formatDateTime, plainText } from "../edit";
import { type Loaded, type RecordStore, useStore } from "../records";
import { observationHref, planHref, progressHref } from "../router";
import type { Me } from "../session";
import { type DevelopmentPlan, type Observation, relatedComponents } from "../types";
import { observationTurn, planTurn } from "../turn";
import { SelectField, TextField } from "../ui/fields";

const STATUSES = [
  { value: "draft", label: "Draft" },
  { value: "awaiting", label: "Awaiting someone" },
  { value: "mine", label: "Awaiting you" },
  { value: "signed", label: "Signed by both" },
  { value: "agreed", label: "Agreed plan" },
];

interface Found {
  url: string;
  href: string;
  title: string;
  personId: string;
  status: string;
  turn: string;
  at?: string;
  components: string[];
  text: string;
}

/** What the filters look at, for the record types found here. */
function describe(item: Loaded, store: RecordStore, me: Me): Found | null {
  const name = (id: string) => (id === me.id ? me.name : store.personName(id));
  const doc = item.doc;
  if (doc?.type === "observation") {
    const o = doc as Observation;
    const turn = observationTurn(o, me.id, name);
    return {
      url: item.entry.url,
      href: observationHref(item.entry.url),
      title: `Observation of ${name(o.practitionerId)} by ${name(o.observerId)}`,
      personId: o.practitionerId,
      status: o.status,
      turn,
      at: o.observedAt,
      components: o.components ?? [],
      text: [o.notes, o.feedback, o.reflection, plainText(o.purpose)].filter(Boolean).join(" "),
    };
  }
  if (doc?.type === "development-plan") {
    const p = doc as DevelopmentPlan;
    const goals = p.goals ?? [];
    return {
      url: item.entry.url,
      href: planHref(item.entry.url),
      title: `Development plan of ${name(p.ownerId)}`,
      personId: p.ownerId,
      status: p.status,
      turn: planTurn(p, me.id, name),
      at: p.period?.from,
      components: goals.flatMap((g) => g.components ?? []),
      text: goals.map((g) => plainText(g.title) ?? "").join(" "),
    };
  }
  return null;
}

function matchesStatus(found: Found, status: string): boolean {
  switch (status) {
    case "draft":
      return found.status === "draft";
    case "awaiting":
      return found.turn.startsWith("Awaiting");
    case "mine":
      return found.turn.startsWith("Awaiting your");
    case "signed":
      return found.turn === "Signed by both";
    case "agreed":
      return found.status === "agreed";
    default:
      return true;
  }
}

export function FindScreen({ store, me }: { store: RecordStore; me: Me }) {
  useStore(store);
  const [query, setQuery] = useState("");
  const [person, setPerson] = useState("");
  const [status, setStatus] = useState("");
  const [area, setArea] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const all = store
    .entries()
    .map((item) => describe(item, store, me))
    .filter((f): f is Found => f !== null);
  const people = [...new Set(all.map((f) => f.personId))]
    .map((id) => ({ value: id, label: id === me.id ? `${me.name} (you)` : store.personName(id) }))
    .sort((a, b) => a.label.localeCompare(b.label));
  const areas = store.frameworks.flatMap((f) => f.areas.map((a) => ({ value: a.id, label: `${a.number}. ${a.title} (${f.id})` })));
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const found = all
    .filter((f) => !person || f.personId === person)
    .filter((f) => matchesStatus(f, status))
    .filter((f) => !area || f.components.some((c) => relatedComponents(c, area)))
    .filter((f) => !from || (f.at ?? "").slice(0, 10) >= from)
    .filter((f) => !to || (f.at ?? "9999").slice(0, 10) <= to)
    .filter((f) => words.every((w) => `${f.title} ${f.text}`.toLowerCase().includes(w)))
    .sort((a, b) => (b.at ?? "").localeCompare(a.at ?? ""));

  return (
    <div>
      <p class="no-print">
        <a href="#/">Back to home</a>
      </p>
      <h1 tabIndex={-1}>Find records</h1>
      <p class="hint">Searches the records on this device, so it works offline.</p>
      <form class="card filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <TextField label="Search" editable value={query} onInput={setQuery} hint="Names, notes, feedback, goals." />
        <SelectField label="Person" editable value={person} options={people} placeholder="Anyone" onChange={setPerson} />
        <SelectField label="Status" editable value={status} options={STATUSES} placeholder="Any status" onChange={setStatus} />
        <SelectField label="Framework area" editable value={area} options={areas} placeholder="Any area" onChange={setArea} />
        <TextField label="From" type="date" editable value={from} onInput={setFrom} />
        <TextField label="To" type="date" editable value={to} onInput={setTo} />
      </form>
      <section class="card" aria-labelledby="found-heading">
        <h2 id="found-heading" aria-live="polite">
          {found.length === 1 ? "1 record" : `${found.length} records`}
        </h2>
        {found.length === 0 ? (
          <p>Nothing on this device matches.</p>
        ) : (
          <ul class="list" aria-label="Records found">
            {found.map((f) => (
              <li key={f.url} class="list-row record-row">
                <a href={f.href}>
                  {f.title}
                  {f.at ? `, ${formatDateTime(f.at)}` : ""}
                </a>
                <p class="meta">
                  {f.turn} · <a href={progressHref(f.personId)}>{f.personId === me.id ? "Your progress" : `${store.personName(f.personId)}'s progress`}</a>
                </p>
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}
