// Home: for supervisors, their supervisees and the observations they made; for everyone
// observed, the inbox of observations shared with them; and development plans.
import type { DocHandle } from "@automerge/automerge-repo/slim";
import { useState } from "preact/hooks";
import { createGroupSession, createPlan } from "../create";
import { exportOwnRecords, exportPage, saveFile } from "../download";
import { formatDateTime } from "../edit";
import { type Loaded, type RecordStore, useStore } from "../records";
import { navigate, observationHref, planHref, progressHref, sessionHref } from "../router";
import type { Me } from "../session";
import type { DevelopmentPlan, GroupSession, Observation } from "../types";
import { isMyTurn, newLabel, observationTurn, othersParts, planTurn, unseen } from "../turn";
import { SyncText } from "../ui/record-status";
import { SESSION_KINDS, SESSION_STATUS, sessionTitle } from "./GroupSessionScreen";
import { LeadersHome, leads } from "./LeadersHome";
import { raisesThemes } from "./ThemesScreen";

const STATUS_WORDS: Record<string, string> = {
  draft: "Draft",
  shared: "Shared with practitioner",
  "signed-off": "Signed off",
  agreed: "Agreed",
  closed: "Closed",
};

function when(item: Loaded): number {
  const doc = item.doc as Observation | undefined;
  const t = doc?.observedAt ? Date.parse(doc.observedAt) : NaN;
  return Number.isNaN(t) ? item.entry.changeSeq : t;
}

const newestFirst = (a: Loaded, b: Loaded) => when(b) - when(a);

export function Home({ store, me }: { store: RecordStore; me: Me }) {
  useStore(store);
  const items = store.entries();
  const observations = items.filter((i) => (i.doc?.type ?? i.entry.type) === "observation");
  const plans = items.filter((i) => (i.doc?.type ?? i.entry.type) === "development-plan");
  const made = observations.filter((i) => (i.doc as Observation | undefined)?.observerId === me.id || i.entry.party === "observer").sort(newestFirst);
  const inbox = observations
    .filter((i) => {
      const doc = i.doc as Observation | undefined;
      return (doc?.practitionerId ?? (i.entry.party === "practitioner" ? me.id : "")) === me.id && (doc?.status ?? i.entry.status) !== "draft";
    })
    .sort(newestFirst);
  const supervisees = store.people.supervisees;
  const observes = me.role !== "practitioner" || supervisees.length > 0;
  const myPlans = plans.filter((i) => (i.doc as DevelopmentPlan | undefined)?.ownerId === me.id);
  const leader = leads(me);

  return (
    <div class="home">
      <h1 tabIndex={-1}>{leader ? "Leaders' home" : observes ? "Supervisor home" : "Your observations"}</h1>
      <p class="no-print">
        <a href="#/find">Find records</a> · <a href={progressHref(me.id)}>Your progress</a>
      </p>
      {leader && <LeadersHome store={store} me={me} />}
      {observes && (
        <>
          <div class="actions">
            <button type="button" onClick={() => navigate("#/new")} disabled={supervisees.length === 0}>
              New observation
            </button>
            {supervisees.length === 0 && <p class="hint">You have no supervisees yet, so there is no one to observe.</p>}
          </div>
          <section class="card" aria-labelledby="supervisees-heading">
            <h2 id="supervisees-heading">{leader ? "Development plans of those you supervise" : "Your supervisees"}</h2>
            {supervisees.length === 0 ? (
              <p>No supervisees are listed for you.</p>
            ) : (
              <ul class="list">
                {supervisees.map((person) => {
                  const plan = plans.find((p) => (p.doc as DevelopmentPlan | undefined)?.ownerId === person.id);
                  return (
                    <li key={person.id} class="list-row">
                      <span class="name">{person.name}</span>
                      <a href={progressHref(person.id)}>Progress of {person.name}</a>
                      {plan ? (
                        <>
                          <a href={planHref(plan.entry.url)}>Development plan of {person.name}</a>
                          {plan.doc && (
                            <span class="meta">
                              <TurnText turn={planTurn(plan.doc as DevelopmentPlan, me.id, (id) => store.personName(id))} />
                            </span>
                          )}
                        </>
                      ) : (
                        <button type="button" class="secondary" onClick={() => newPlan(store, me, person.id)}>
                          Start a development plan for {person.name}
                        </button>
                      )}
                    </li>
                  );
                })}
              </ul>
            )}
          </section>
          <ObservationList
            store={store}
            me={me}
            title="Observations you made"
            items={made}
            empty="You have not recorded an observation yet."
            nameOf={(doc) => `Observation of ${store.personName(doc?.practitionerId)}`}
          />
        </>
      )}
      {(!observes || inbox.length > 0) && (
        <ObservationList
          store={store}
          me={me}
          title="Shared with you"
          items={inbox}
          empty="No observation of your practice has been shared with you yet."
          nameOf={(doc) => `Observation by ${store.personName(doc?.observerId)}`}
        />
      )}
      {(!observes || myPlans.length > 0) && (
        <section class="card" aria-labelledby="plans-heading">
          <h2 id="plans-heading">Your development plan</h2>
          {myPlans.length === 0 ? (
            <p>You have no development plan yet. Your supervisor starts one with you.</p>
          ) : (
            <ul class="list">
              {myPlans.map((p) => (
                <li key={p.entry.url} class="list-row">
                  <a href={planHref(p.entry.url)}>Development plan</a>
                  <p class="meta">
                    <TurnText turn={planTurn(p.doc as DevelopmentPlan, me.id, (id) => store.personName(id))} />
                  </p>
                  <SyncText handle={p.handle as DocHandle<unknown>} />
                </li>
              ))}
            </ul>
          )}
        </section>
      )}
      <GroupSessions store={store} me={me} />
      <section class="card" aria-labelledby="themes-heading">
        <h2 id="themes-heading">You said, we did</h2>
        <p>
          {raisesThemes(me) ? "Raise themes you see across observations, and read what was done about them: " : "Themes raised for your team and what was done about them: "}
          <a href="#/themes">you said, we did</a>.
        </p>
      </section>
      <section class="card" aria-labelledby="expertise-heading">
        <h2 id="expertise-heading">Who can help?</h2>
        <p>
          Find practice champions for a framework area, or offer to be one: <a href="#/expertise">who can help with …?</a>
        </p>
      </section>
      <section class="card" aria-labelledby="cpd-heading">
        <h2 id="cpd-heading">My CPD</h2>
        <p>
          Your observations, group sessions and goals met this registration year, as Social Work England's CPD form asks for them:{" "}
          <a href="#/cpd">my CPD</a>.
        </p>
      </section>
      <DownloadOwnRecords store={store} me={me} />
    </div>
  );
}

/** Sessions this user runs or took part in; leaders start new ones. */
function GroupSessions({ store, me }: { store: RecordStore; me: Me }) {
  const [kind, setKind] = useState(SESSION_KINDS[0].value);
  const sessions = store
    .entries()
    .filter((i) => (i.doc?.type ?? i.entry.type) === "group-session" && ["facilitator", "participant"].includes(i.entry.party))
    .sort((a, b) => ((b.doc as GroupSession | undefined)?.heldAt ?? "").localeCompare((a.doc as GroupSession | undefined)?.heldAt ?? ""));
  const runs = raisesThemes(me);
  if (!runs && sessions.length === 0) return null;
  // A manager's sessions are usually with supervisors, and about their standards.
  const framework = me.role === "manager" ? "kss-ps-2018" : "kss-cf-2018";
  const start = () => navigate(sessionHref(createGroupSession(store, me, kind, framework).url));
  return (
    <section class="card" aria-labelledby="sessions-heading">
      <h2 id="sessions-heading">Group sessions</h2>
      {runs && (
        <div class="row">
          <label for="session-kind">Kind of session</label>
          <select id="session-kind" value={kind} onChange={(e) => setKind((e.currentTarget as HTMLSelectElement).value as typeof kind)}>
            {SESSION_KINDS.map((k) => (
              <option key={k.value} value={k.value}>
                {k.label}
              </option>
            ))}
          </select>
          <button type="button" onClick={start}>
            Start a group session
          </button>
        </div>
      )}
      {sessions.length === 0 ? (
        <p>No group sessions yet.</p>
      ) : (
        <ul class="list">
          {sessions.map((item) => {
            const doc = item.doc as GroupSession | undefined;
            const status = doc?.status ?? item.entry.status;
            const awaiting = doc && item.entry.party === "participant" && status === "shared" && !(doc.reflections?.[me.id] ?? "").trim();
            const fresh = doc ? unseen(item.entry.url, othersParts(doc, me.id)) : [];
            return (
              <li key={item.entry.url} class="list-row record-row">
                <a href={sessionHref(item.entry.url)}>{sessionTitle(doc)}</a>
                <p class="meta">
                  Status: {SESSION_STATUS[status] ?? status}
                  {awaiting ? " — awaiting your reflection" : ""}
                  {item.unavailable ? " — not downloaded to this device yet" : ""}
                  {fresh.length > 0 && <span class="new">{newLabel(fresh)}</span>}
                </p>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}

/** A copy of the person's own records, made on the device (so it works offline). */
function DownloadOwnRecords({ store, me }: { store: RecordStore; me: Me }) {
  const [busy, setBusy] = useState(false);
  const download = async (format: "json" | "html") => {
    setBusy(true);
    try {
      const data = await exportOwnRecords(store, me);
      const day = data.exportedAt.slice(0, 10);
      if (format === "json") saveFile(`fieldbook-records-${me.id}-${day}.json`, "application/json", JSON.stringify(data, null, 2));
      else saveFile(`fieldbook-records-${me.id}-${day}.html`, "text/html", exportPage(data));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card" aria-labelledby="download-heading">
      <h2 id="download-heading">A copy of your records</h2>
      <p>Every observation of your practice and your own development plans, as this device holds them. This works offline too.</p>
      <div class="row">
        <button type="button" class="secondary" disabled={busy} onClick={() => void download("json")}>
          Download as data (JSON)
        </button>
        <button type="button" class="secondary" disabled={busy} onClick={() => void download("html")}>
          Download a page to print
        </button>
      </div>
    </section>
  );
}

function newPlan(store: RecordStore, me: Me, ownerId: string) {
  const person = store.people.supervisees.find((p) => p.id === ownerId);
  const framework = person?.role === "practitioner" ? "kss-cf-2018" : "kss-ps-2018";
  const handle = createPlan(store, me, ownerId, framework);
  navigate(planHref(handle.url));
}

/** The status line of a record in a list; the user's own turn stands out. */
function TurnText({ turn }: { turn: string }) {
  return isMyTurn(turn) ? <strong class="my-turn">{turn}</strong> : <>{turn}</>;
}

function ObservationList({
  store,
  me,
  title,
  items,
  empty,
  nameOf,
}: {
  store: RecordStore;
  me: Me;
  title: string;
  items: Loaded[];
  empty: string;
  nameOf: (doc: Observation | undefined) => string;
}) {
  const id = title.toLowerCase().replace(/\W+/g, "-");
  return (
    <section class="card" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {items.length === 0 ? (
        <p>{empty}</p>
      ) : (
        <ul class="list">
          {items.map((item) => {
            const doc = item.doc as Observation | undefined;
            const status = doc?.status ?? item.entry.status;
            const fresh = doc ? unseen(item.entry.url, othersParts(doc, me.id)) : [];
            return (
              <li key={item.entry.url} class="list-row record-row">
                <a href={observationHref(item.entry.url)}>
                  {nameOf(doc)}
                  {doc?.observedAt ? `, ${formatDateTime(doc.observedAt)}` : ""}
                </a>
                <p class="meta">
                  {doc ? <TurnText turn={observationTurn(doc, me.id, (id) => store.personName(id))} /> : `Status: ${STATUS_WORDS[status] ?? status}`}
                  {item.unavailable ? " — not downloaded to this device yet" : ""}
                  {fresh.length > 0 && <span class="new">{newLabel(fresh)}</span>}
                </p>
                {item.handle && <SyncText handle={item.handle as DocHandle<unknown>} />}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
