// "You said, we did": supervisors raise themes they see across observations (practice,
// workload, the working environment, the organisation); the managers above them and
// principal social workers answer and say what was done; the raiser's team reads both.
import type { DocHandle } from "@automerge/automerge-repo/slim";
import { useState } from "preact/hooks";
import { api } from "../api";
import { createTheme } from "../create";
import { formatDateTime, newId, putBackField, setText } from "../edit";
import { type Loaded, type RecordStore, useStore } from "../records";
import { navigate, themeHref } from "../router";
import type { Me } from "../session";
import type { PracticeTheme, ThemeCategory, ThemeStatus } from "../types";
import { FrameworkAndComponents } from "../ui/components-field";
import { Section, SelectField, TextField } from "../ui/fields";
import { Rejections, SetAsideWork, SyncText, useRefused } from "../ui/record-status";
import { NewSinceLastOpened } from "../ui/new-since";
import { othersParts, unseen } from "../turn";
import { Missing, useRecord } from "./ObservationScreen";

const CATEGORIES: { value: ThemeCategory; label: string }[] = [
  { value: "practice", label: "Practice" },
  { value: "workload", label: "Workload" },
  { value: "environment", label: "Working environment (office space, quiet rooms, parking)" },
  { value: "organisation", label: "Organisation" },
];
export const THEME_STATUS: { value: ThemeStatus; label: string }[] = [
  { value: "raised", label: "Raised" },
  { value: "acknowledged", label: "Acknowledged" },
  { value: "acted", label: "Acted on" },
  { value: "closed", label: "Closed" },
];
const statusWord = (s: string) => THEME_STATUS.find((x) => x.value === s)?.label ?? s;
const categoryWord = (c: string) => CATEGORIES.find((x) => x.value === c)?.label.replace(/ \(.*/, "") ?? c;

/** Leaders raise themes; practitioners bring theirs to supervision. */
export const raisesThemes = (me: Me) => ["supervisor", "manager", "principal-social-worker"].includes(me.role);

export function themesOf(store: RecordStore): Loaded[] {
  return store.entries().filter((i) => (i.doc?.type ?? i.entry.type) === "practice-theme");
}

export const themeTitle = (doc: PracticeTheme | undefined) => {
  const first = (doc?.summary ?? "").split("\n")[0].trim();
  return first ? (first.length > 80 ? `${first.slice(0, 77)}…` : first) : `${categoryWord(doc?.category ?? "")} theme`;
};

/** Status at a glance, and each theme with its latest response. */
export function ThemesScreen({ store, me }: { store: RecordStore; me: Me }) {
  useStore(store);
  const [category, setCategory] = useState<ThemeCategory>("practice");
  const themes = themesOf(store);
  const counts = THEME_STATUS.map((s) => ({ ...s, n: themes.filter((t) => (t.doc?.status ?? t.entry.status) === s.value).length }));
  const raise = () => navigate(themeHref(createTheme(store, me, category).url));
  return (
    <div class="home">
      <p class="no-print">
        <a href="#/">Back to home</a>
      </p>
      <h1 tabIndex={-1}>You said, we did</h1>
      <p>Themes raised to managers and senior leaders, and what was done about them.</p>
      <ul class="at-a-glance" aria-label="Themes by status">
        {counts.map((c) => (
          <li key={c.value}>
            <strong>{c.n}</strong> {c.label.toLowerCase()}
          </li>
        ))}
      </ul>
      {raisesThemes(me) && (
        <Section title="Raise a theme">
          <SelectField label="What is it about?" editable value={category} options={CATEGORIES} onChange={(v) => v && setCategory(v as ThemeCategory)} />
          <button type="button" onClick={raise}>
            Raise a theme
          </button>
        </Section>
      )}
      <ThemeList store={store} me={me} themes={themes} empty="No themes have been raised that you can see." />
    </div>
  );
}

export function ThemeList({ store, me, themes, empty }: { store: RecordStore; me: Me; themes: Loaded[]; empty: string }) {
  return (
    <section class="card" aria-labelledby="theme-list-heading">
      <h2 id="theme-list-heading">Themes</h2>
      {themes.length === 0 ? (
        <p>{empty}</p>
      ) : (
        <ul class="list">
          {themes.map((t) => {
            const doc = t.doc as PracticeTheme | undefined;
            const last = doc?.responses?.at(-1);
            return (
              <li key={t.entry.url} class="list-row record-row">
                <a href={themeHref(t.entry.url)}>{themeTitle(doc)}</a>
                <p class="meta">
                  {doc ? `${categoryWord(doc.category)}, raised by ${store.personName(doc.raisedBy)}. ` : ""}
                  Status: {statusWord(doc?.status ?? t.entry.status)}
                  {t.unavailable ? " — not downloaded to this device yet" : ""}
                  {doc && unseen(t.entry.url, othersParts(doc, me.id)).length > 0 && <span class="new">New response</span>}
                </p>
                {last && <p class="meta">We did: {last.text}</p>}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}

interface InsightCell {
  team: string;
  component: string;
  observations: number | { suppressed: true };
  judgements: Record<string, number | { suppressed: true }>;
}

/** Aggregate counts for the theme's components from the insights API: numbers only, small
 *  numbers left out as the API suppresses them. */
async function evidenceFromInsights(doc: PracticeTheme): Promise<Record<string, number>> {
  const query = new URLSearchParams({ framework: doc.framework ?? "" });
  if (doc.team) query.set("team", doc.team);
  const { cells } = await api<{ cells: InsightCell[] }>(`/v1/api/insights?${query}`);
  const evidence: Record<string, number> = {};
  for (const cell of cells.filter((c) => doc.components.includes(c.component))) {
    const add = (label: string, value: unknown) => {
      if (typeof value === "number") evidence[label] = (evidence[label] ?? 0) + value;
    };
    add(`${cell.component}:observations`, cell.observations);
    for (const [judgement, value] of Object.entries(cell.judgements)) add(`${cell.component}:${judgement}`, value);
  }
  return evidence;
}

export function ThemeScreen({ store, me, documentId }: { store: RecordStore; me: Me; documentId: string }) {
  useStore(store);
  const { handle, doc, missing } = useRecord<PracticeTheme>(store, documentId);
  const refused = useRefused(documentId, store.onServer(`automerge:${documentId}`));
  const [response, setResponse] = useState("");
  const [evidenceNote, setEvidenceNote] = useState("");
  if (!handle || !doc || doc.type !== "practice-theme") return <Missing missing={missing} />;

  const change = (fn: (d: PracticeTheme) => void) => store.change(handle, fn);
  const isRaiser = doc.raisedBy === me.id;
  const entry = store.entries().find((e) => e.entry.url === handle.url)?.entry;
  const responds = !isRaiser && (entry?.party === "responder") && doc.status !== "closed" && !refused;
  const edits = isRaiser && doc.status !== "closed" && !refused;
  const evidence = Object.entries(doc.evidence ?? {});

  const postResponse = () => {
    const text = response.trim();
    if (!text) return;
    change((d) => void d.responses.push({ id: newId(), at: new Date().toISOString(), by: me.id, text }));
    setResponse("");
  };
  const attachEvidence = async () => {
    setEvidenceNote("Fetching counts…");
    try {
      const counts = await evidenceFromInsights(doc);
      change((d) => {
        for (const key of Object.keys(d.evidence)) delete d.evidence[key];
        Object.assign(d.evidence, counts);
      });
      setEvidenceNote(Object.keys(counts).length ? "Counts attached." : "No counts large enough to show (under 5 are left out).");
    } catch (e) {
      setEvidenceNote(e instanceof Error ? `Counts could not be fetched: ${e.message}` : "Counts could not be fetched.");
    }
  };

  return (
    <article class="record">
      <p>
        <a href="#/themes">Back to you said, we did</a>
      </p>
      <h1 tabIndex={-1}>{themeTitle(doc)}</h1>
      <div class="record-state">
        <p>
          Status: <strong>{statusWord(doc.status)}</strong>. Raised by {isRaiser ? `${me.name} (you)` : store.personName(doc.raisedBy)}
          {doc.raisedAt ? ` on ${formatDateTime(doc.raisedAt)}` : ""}
          {doc.team ? `, for team ${doc.team}` : ""}.
        </p>
        <NewSinceLastOpened url={handle.url} parts={othersParts(doc, me.id)} />
        <SyncText handle={handle as DocHandle<unknown>} live />
        <Rejections documentId={handle.documentId} askWho="admin" onServer={store.onServer(handle.url)} />
        <SetAsideWork
          documentId={handle.documentId}
          current={doc as unknown as Record<string, unknown>}
          putBack={(field, value) => change((d) => putBackField(d as never, field, value))}
        />
      </div>

      <Section title="You said">
        <SelectField label="What is it about?" editable={edits} value={doc.category} options={CATEGORIES} onChange={(v) => v && change((d) => void (d.category = v as ThemeCategory))} />
        <TextField
          label="The theme"
          hint="Anonymised: what you see across observations, with no names or details of children, families or colleagues."
          multiline
          editable={edits}
          value={doc.summary}
          onInput={(v) => change((d) => setText(d, ["summary"], v))}
        />
        {doc.category === "practice" && (
          <FrameworkAndComponents store={store} doc={doc} label="Areas of practice" editable={edits} change={change} />
        )}
        <div class="field read-only">
          <span class="label">Evidence (counts)</span>
          {evidence.length ? (
            <ul class="value">
              {evidence.map(([label, n]) => {
                const [component, measure] = label.split(":");
                return (
                  <li key={label}>
                    {store.componentTitle(component)}
                    {measure ? ` — ${measure}` : ""}: {n}
                  </li>
                );
              })}
            </ul>
          ) : (
            <p class="value empty">None attached</p>
          )}
        </div>
        {edits && doc.framework && doc.components.length > 0 && (
          <p>
            <button type="button" class="secondary" onClick={() => void attachEvidence()}>
              Attach counts from insights
            </button>{" "}
            <span role="status">{evidenceNote}</span>
          </p>
        )}
      </Section>

      <Section title="We did">
        {(doc.responses ?? []).length === 0 && <p>No response yet.</p>}
        {(doc.responses ?? []).map((r) => (
          <div class="response" key={r.id}>
            <p class="meta">
              {r.by === me.id ? "You" : store.personName(r.by)}, {formatDateTime(r.at)}
            </p>
            <p>{r.text}</p>
          </div>
        ))}
        {responds && (
          <>
            <TextField label="Your response" hint="What was done, or will be, and when." multiline editable value={response} onInput={setResponse} />
            <button type="button" onClick={postResponse} disabled={!response.trim()}>
              Post response
            </button>
            <SelectField
              label="Status"
              editable
              value={doc.status}
              options={THEME_STATUS}
              onChange={(v) => {
                if (!v || v === doc.status) return;
                // Closed is for good: the server takes no change to a closed theme.
                if (v === "closed" && !window.confirm("Close this theme? Once closed, nobody can respond or change it.")) return;
                change((d) => void (d.status = v as ThemeStatus));
              }}
            />
          </>
        )}
      </Section>
    </article>
  );
}
