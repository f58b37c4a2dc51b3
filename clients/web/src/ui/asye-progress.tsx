// ASYE progress on an early-career-programme plan: the programme's evidence so far against
// what it asks for, from the server (counted across the person's records), and what is still
// needed. Read when online; the last answer stays on screen.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { useOnline } from "../online";
import { Section } from "./fields";

interface Counts {
  observations: number;
  familyVoice: number;
  reflections: number;
}

interface Progress {
  inAsye: boolean;
  requirements: Counts;
  evidence?: Counts;
  stillNeeded?: Counts;
}

const ROWS: { key: keyof Counts; label: string }[] = [
  { key: "observations", label: "Direct observations signed off" },
  { key: "familyVoice", label: "Feedback from families (family voice)" },
  { key: "reflections", label: "Written reflections" },
];

export function AsyeProgress({ userId }: { userId: string }) {
  const online = useOnline();
  const [progress, setProgress] = useState<Progress | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    if (!online) return;
    api<Progress>(`/v1/people/${encodeURIComponent(userId)}/asye`)
      .then(setProgress)
      .catch((e) => setError(e instanceof Error ? e.message : "ASYE progress could not be fetched."));
  }, [userId, online]);
  return (
    <Section title="ASYE progress">
      {error && <p role="alert">{error}</p>}
      {!progress ? (
        <p>{online ? "Fetching…" : "Connect to the network to see ASYE progress."}</p>
      ) : (
        <ul class="list">
          {ROWS.map(({ key, label }) => {
            const have = progress.evidence?.[key] ?? 0;
            const need = progress.stillNeeded?.[key] ?? progress.requirements[key];
            return (
              <li key={key} class="list-row">
                <span>
                  {label}: {have} of {progress.requirements[key]}
                </span>
                <span class="meta">{need === 0 ? "Done" : `${need} still needed`}</span>
              </li>
            );
          })}
        </ul>
      )}
    </Section>
  );
}
