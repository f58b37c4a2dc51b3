// "My CPD": the signed-in person's CPD for a registration year, in the shape of Social Work
// England's CPD form (title, date, type, description, what was learnt, impact, peer
// reflection), built by the server from their own records; the last copy fetched is kept
// sealed on the device, so it reads offline too. The CSV comes from the server.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { saveFile } from "../download";
import { formatDate } from "../edit";
import { useOnline } from "../online";
import { SealedJson } from "../sealed-local";
import type { Me } from "../session";

interface CpdEntry {
  title: string;
  date: string;
  type: string;
  description: string;
  learning: string;
  impact: string;
  peerReflection: boolean;
  components: string[];
  evidence: string[];
}

interface CpdRecord {
  registrationYear: { from: string; to: string };
  entries: CpdEntry[];
  peerReflectionMet: boolean;
  /** When this device fetched it. */
  fetchedAt?: string;
}

/** The last copy of each year fetched, by year. */
const kept = new SealedJson<Record<string, CpdRecord>>("fb.cpd", {});

/** The registration year today falls in, by the year it ends in (30 November). */
function currentYear(): number {
  const now = new Date();
  return now.getMonth() === 11 ? now.getFullYear() + 1 : now.getFullYear();
}

export function CpdScreen({ me }: { me: Me }) {
  const online = useOnline();
  const [year, setYear] = useState(currentYear());
  const [record, setRecord] = useState<CpdRecord | undefined>(() => kept.get()[String(currentYear())]);
  const [message, setMessage] = useState("");

  useEffect(() => {
    setRecord(kept.get()[String(year)]);
    if (!online) return;
    setMessage("Fetching…");
    api<CpdRecord>(`/v1/me/cpd?year=${year}`)
      .then((fresh) => {
        const copy = { ...fresh, fetchedAt: new Date().toISOString() };
        void kept.set({ ...kept.get(), [String(year)]: copy });
        setRecord(copy);
        setMessage("");
      })
      .catch((e) => setMessage(e instanceof Error ? e.message : "The CPD record could not be fetched."));
  }, [year, online]);

  const download = async () => {
    try {
      const csv = await api<string>(`/v1/me/cpd?year=${year}&format=csv`, { headers: { accept: "text/csv" } }, (r) => r.text());
      saveFile(`cpd-${me.id}-${year}.csv`, "text/csv", csv);
    } catch (e) {
      setMessage(e instanceof Error ? e.message : "The CSV could not be downloaded.");
    }
  };
  const years = [currentYear(), currentYear() - 1, currentYear() - 2];

  return (
    <div class="home">
      <p class="no-print">
        <a href="#/">Back to home</a>
      </p>
      <h1 tabIndex={-1}>My CPD</h1>
      <p>
        Your signed-off observations, the group sessions you reflected in and the development goals you met, laid out as Social Work
        England's CPD form asks for them, to copy across.
      </p>
      <div class="row">
        <label for="cpd-year">Registration year ending 30 November</label>
        <select id="cpd-year" value={year} onChange={(e) => setYear(Number((e.currentTarget as HTMLSelectElement).value))}>
          {years.map((y) => (
            <option key={y} value={y}>
              {y}
            </option>
          ))}
        </select>
        <button type="button" class="secondary" disabled={!online} onClick={() => void download()}>
          Download as CSV
        </button>
      </div>
      {!online && <p class="hint">Downloading the CSV needs the network; the list below is the copy last fetched on this device.</p>}
      <p role="status">{message}</p>
      {record && (
        <>
          <p class={record.peerReflectionMet ? "locked" : "awaiting"}>
            {record.peerReflectionMet
              ? "Peer reflection: met. At least one piece of CPD this year includes reflection with a supervisor or peers."
              : "Peer reflection: not yet. Social Work England asks for at least one piece of CPD with peer reflection each year."}
          </p>
          <p class="meta">
            {formatDate(record.registrationYear.from)} to {formatDate(record.registrationYear.to)}: {record.entries.length}{" "}
            {record.entries.length === 1 ? "entry" : "entries"}
            {record.fetchedAt ? `, as fetched ${new Date(record.fetchedAt).toLocaleString()}` : ""}.
          </p>
          {record.entries.length === 0 && <p>Nothing for this year yet.</p>}
          <ul class="list">
            {record.entries.map((e) => (
              <li key={`${e.date}-${e.evidence[0]}-${e.title}`} class="card">
                <h2>{e.title}</h2>
                <dl>
                  <dt>Date</dt>
                  <dd>{formatDate(e.date)}</dd>
                  <dt>Type of CPD</dt>
                  <dd>{e.type}</dd>
                  <dt>Description</dt>
                  <dd>{e.description || "—"}</dd>
                  <dt>What I learnt</dt>
                  <dd>{e.learning || "—"}</dd>
                  <dt>Impact on my practice</dt>
                  <dd>{e.impact || "—"}</dd>
                  <dt>Peer reflection</dt>
                  <dd>{e.peerReflection ? "Yes" : "No"}</dd>
                </dl>
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
