// The leaders' home (managers and principal social workers, on a laptop): their line's
// records by status, themes by team × component from the insights API (small numbers
// suppressed), open practice themes, and the supervisors they observe.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { readJson } from "../local";
import type { Loaded, RecordStore } from "../records";
import { observationHref, planHref } from "../router";
import type { Me } from "../session";
import type { DevelopmentPlan, Observation, PracticeTheme } from "../types";
import { ThemeList, themesOf } from "./ThemesScreen";

const INSIGHTS_KEY = "fb.insights";

type Count = number | { suppressed: true };
interface Cell {
  team: string;
  component: string;
  observations: Count;
  judgements: Record<string, Count>;
}
interface StoredInsights {
  cells: Cell[];
  at: string;
}

export const leads = (me: Me) => me.role === "manager" || me.role === "principal-social-worker";

const shown = (n: Count | undefined) => (n === undefined ? "0" : typeof n === "number" ? String(n) : "fewer than 5");

/** The insights, fetched when online and kept for offline reading. */
function useInsights(): { insights: StoredInsights | null; error: string } {
  const [insights, setInsights] = useState<StoredInsights | null>(() => readJson<StoredInsights | null>(INSIGHTS_KEY, null));
  const [error, setError] = useState("");
  useEffect(() => {
    if (!navigator.onLine) return;
    api<{ cells: Cell[] }>("/v1/api/insights")
      .then(({ cells }) => {
        const fresh = { cells, at: new Date().toISOString() };
        localStorage.setItem(INSIGHTS_KEY, JSON.stringify(fresh));
        setInsights(fresh);
      })
      .catch((e) => setError(e instanceof Error ? e.message : "The insights could not be fetched."));
  }, []);
  return { insights, error };
}

function byStatus(items: Loaded[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const i of items) {
    const status = i.doc?.status ?? i.entry.status;
    counts.set(status, (counts.get(status) ?? 0) + 1);
  }
  return [...counts.entries()].sort();
}

const WORDS: Record<string, string> = { draft: "Draft", shared: "Shared", "signed-off": "Signed off", agreed: "Agreed", closed: "Closed" };

export function LeadersHome({ store, me }: { store: RecordStore; me: Me }) {
  const { insights, error } = useInsights();
  const items = store.entries();
  const inLine = items.filter((i) => i.entry.party === "line" || i.entry.party === "principal-social-worker");
  const kind = (t: string) => inLine.filter((i) => (i.doc?.type ?? i.entry.type) === t);
  const openThemes = themesOf(store).filter((t) => (t.doc as PracticeTheme | undefined)?.status !== "closed" && t.entry.status !== "closed");
  const supervisors = store.people.supervisees.filter((p) => p.role === "supervisor");
  const mine = items.filter((i) => i.entry.party === "observer" || i.entry.party === "plan-supervisor");

  return (
    <div class="leaders">
      <section class="card" aria-labelledby="observed-heading">
        <h2 id="observed-heading">Supervisors you observe</h2>
        {supervisors.length === 0 ? (
          <p>No practice supervisors are listed as supervised by you.</p>
        ) : (
          <ul class="list">
            {supervisors.map((person) => {
              const observations = mine.filter((i) => (i.doc as Observation | undefined)?.practitionerId === person.id);
              const plan = mine.find((i) => (i.doc as DevelopmentPlan | undefined)?.ownerId === person.id && i.doc?.type === "development-plan");
              const last = observations.map((o) => (o.doc as Observation).observedAt ?? "").sort().at(-1);
              return (
                <li key={person.id} class="list-row">
                  <span class="name">{person.name}</span>
                  <p class="meta">
                    {observations.length === 0 ? "Not observed yet" : `${observations.length} observation${observations.length === 1 ? "" : "s"}`}
                    {last ? `, last ${last.slice(0, 10)}` : ""}
                    {observations[0] && (
                      <>
                        {" — "}
                        <a href={observationHref(observations[0].entry.url)}>latest observation of {person.name}</a>
                      </>
                    )}
                    {plan && (
                      <>
                        {" — "}
                        <a href={planHref(plan.entry.url)}>plan of {person.name}</a>
                      </>
                    )}
                  </p>
                </li>
              );
            })}
          </ul>
        )}
      </section>

      <section class="card" aria-labelledby="line-heading">
        <h2 id="line-heading">Your line at a glance</h2>
        <table>
          <caption class="visually-hidden">Records in your line by type and status</caption>
          <thead>
            <tr>
              <th scope="col">Records</th>
              <th scope="col">By status</th>
            </tr>
          </thead>
          <tbody>
            {[
              ["Observations", kind("observation")],
              ["Development plans", kind("development-plan")],
              ["Group sessions", kind("group-session")],
            ].map(([label, list]) => (
              <tr key={label as string}>
                <th scope="row">{label as string}</th>
                <td>{(list as Loaded[]).length === 0 ? "None" : byStatus(list as Loaded[]).map(([s, n]) => `${WORDS[s] ?? s}: ${n}`).join(", ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section class="card wide" aria-labelledby="insights-heading">
        <h2 id="insights-heading">Themes across teams</h2>
        <p class="hint">Observations and judgements by team and framework area. Counts under 5 are not shown, so nobody can be singled out.</p>
        {error && <p role="alert">{error}</p>}
        {!insights ? (
          <p>{navigator.onLine ? "Fetching…" : "Connect to the network once to see these."}</p>
        ) : insights.cells.length === 0 ? (
          <p>No observations in your line yet.</p>
        ) : (
          <>
            <table>
              <caption class="visually-hidden">Observations and judgements by team and framework area</caption>
              <thead>
                <tr>
                  <th scope="col">Team</th>
                  <th scope="col">Area</th>
                  <th scope="col">Observations</th>
                  <th scope="col">Met</th>
                  <th scope="col">Not met</th>
                </tr>
              </thead>
              <tbody>
                {insights.cells.map((c) => (
                  <tr key={`${c.team}/${c.component}`}>
                    <td>{c.team}</td>
                    <th scope="row">{store.componentTitle(c.component)}</th>
                    <td>{shown(c.observations)}</td>
                    <td>{shown(c.judgements?.met)}</td>
                    <td>{shown(c.judgements?.["not-met"])}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p class="meta">As of {new Date(insights.at).toLocaleString()}.</p>
          </>
        )}
      </section>

      <div class="wide">
        <ThemeList store={store} me={me} themes={openThemes} empty="No open practice themes." />
        <p>
          <a href="#/themes">All themes: you said, we did</a>
        </p>
      </div>
    </div>
  );
}
