// "Who can help with …?": pick a framework area or component, see the practice champions for
// it and, for supervisors, managers and principal social workers, everyone's evidence
// (signed-off observations judging it met, goals met on it). Anyone may nominate themself as
// a champion; a manager above them or a principal social worker confirms it here. The map is
// the organisation's, so it needs the network.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { useOnline } from "../online";
import { type RecordStore, useStore } from "../records";
import type { Me } from "../session";
import { leads } from "./LeadersHome";

interface Expert {
  userId: string;
  name: string;
  team?: string | null;
  evidence?: { observationsMet: number; goalsMet: number };
  champion: boolean;
  nominated?: boolean;
}

interface Nomination {
  userId: string;
  name?: string;
  component: string;
}

export function ExpertiseScreen({ store, me }: { store: RecordStore; me: Me }) {
  useStore(store);
  const online = useOnline();
  const [component, setComponent] = useState("");
  const [people, setPeople] = useState<Expert[] | null>(null);
  const [nominations, setNominations] = useState<Nomination[]>([]);
  const [message, setMessage] = useState("");
  /** Areas this user nominated themself for here (practitioners do not see nominations). */
  const [offered, setOffered] = useState<string[]>([]);
  const leader = leads(me);

  const load = () => {
    if (!component || !online) return;
    api<{ people: Expert[] }>(`/v1/expertise?component=${encodeURIComponent(component)}`)
      .then((r) => setPeople(r.people))
      .catch((e) => setMessage(e instanceof Error ? e.message : "The map could not be fetched."));
  };
  const loadNominations = () => {
    if (leader && online) void api<{ nominations: Nomination[] }>("/v1/champions/nominations").then((r) => setNominations(r.nominations)).catch(() => undefined);
  };
  useEffect(load, [component, online]);
  useEffect(loadNominations, [online]);

  const nominate = async () => {
    try {
      await api("/v1/me/champion-nominations", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ component }) });
      setOffered((o) => [...o, component]);
      setMessage("You are nominated. A manager above you or a principal social worker confirms it.");
      load();
    } catch (e) {
      setMessage(e instanceof Error ? e.message : "The nomination could not be made.");
    }
  };
  const confirm = async (n: Nomination) => {
    try {
      await api("/v1/champions/confirm", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ userId: n.userId, component: n.component }) });
      setMessage(`${n.name ?? n.userId} is now a practice champion for ${store.componentTitle(n.component)}.`);
      loadNominations();
      load();
    } catch (e) {
      setMessage(e instanceof Error ? e.message : "The nomination could not be confirmed.");
    }
  };
  const mine = people?.find((p) => p.userId === me.id);

  return (
    <div class="home">
      <p class="no-print">
        <a href="#/">Back to home</a>
      </p>
      <h1 tabIndex={-1}>Who can help with …?</h1>
      {!online && <p class="hint">The expertise map needs the network. Connect to see who can help.</p>}
      <div class="field">
        <label for="expertise-component">Framework area</label>
        <select id="expertise-component" value={component} onChange={(e) => { setPeople(null); setMessage(""); setComponent((e.currentTarget as HTMLSelectElement).value); }}>
          <option value="">Choose…</option>
          {store.frameworks.map((f) => (
            <optgroup key={f.id} label={`${f.title} (${f.version})`}>
              {f.areas.flatMap((a) => [
                <option key={a.id} value={a.id}>{`${a.number}. ${a.title}`}</option>,
                ...a.components.map((c) => (
                  <option key={c.id} value={c.id}>{`  ${c.title}`}</option>
                )),
              ])}
            </optgroup>
          ))}
        </select>
      </div>
      <p role="status">{message}</p>
      {people && (
        <section class="card" aria-labelledby="experts-heading">
          <h2 id="experts-heading">{leader || me.role === "supervisor" ? "Champions and evidence" : "Practice champions"}</h2>
          {people.length === 0 ? (
            <p>Nobody is listed for this area yet.</p>
          ) : (
            <ul class="list">
              {people.map((p) => (
                <li key={p.userId} class="list-row record-row">
                  <span class="name">
                    {p.name}
                    {p.team ? `, team ${p.team}` : ""}
                  </span>
                  <p class="meta">
                    {p.champion ? "Practice champion" : p.nominated ? "Nominated, awaiting confirmation" : "Not a declared champion"}
                    {p.evidence ? `. Observations met: ${p.evidence.observationsMet}. Goals met: ${p.evidence.goalsMet}.` : ""}
                  </p>
                </li>
              ))}
            </ul>
          )}
          {component && online && !mine?.champion && !mine?.nominated && !offered.includes(component) && (
            <button type="button" class="secondary" onClick={() => void nominate()}>
              Nominate myself as a champion for this area
            </button>
          )}
        </section>
      )}
      {leader && (
        <section class="card" aria-labelledby="nominations-heading">
          <h2 id="nominations-heading">Nominations awaiting you</h2>
          {nominations.length === 0 ? (
            <p>None.</p>
          ) : (
            <ul class="list">
              {nominations.map((n) => (
                <li key={`${n.userId}/${n.component}`} class="list-row">
                  <span>
                    {n.name ?? n.userId}: {store.componentTitle(n.component)}
                  </span>
                  <button type="button" onClick={() => void confirm(n)}>
                    Confirm {n.name ?? n.userId} as champion
                  </button>
                </li>
              ))}
            </ul>
          )}
        </section>
      )}
    </div>
  );
}
