// Whose turn it is on a record, in the words every list and record screen uses, and what is
// new to this user since they last opened it (kept on this device only).
import { readJson } from "./local";
import { type DevelopmentPlan, type GroupSession, isLocked, type Observation, type PracticeTheme } from "./types";

/** "Draft", "Awaiting Pat Reid's reflection", "Awaiting your sign-off", "Signed by both". */
export function observationTurn(doc: Observation, meId: string, personName: (id: string) => string): string {
  if (isLocked(doc)) return "Signed by both";
  if (doc.status === "draft") return "Draft";
  const whose = (id: string) => (id === meId ? "your" : `${personName(id)}'s`);
  if (!doc.signOff?.practitioner) {
    const reflected = Boolean(doc.reflection?.trim());
    return `Awaiting ${whose(doc.practitionerId)} ${reflected ? "sign-off" : "reflection"}`;
  }
  return `Awaiting ${whose(doc.observerId)} sign-off`;
}

/** "Draft", "Awaiting Pat Reid's agreement", "Awaiting your agreement", "Agreed by both", "Closed". */
export function planTurn(doc: DevelopmentPlan, meId: string, personName: (id: string) => string): string {
  if (doc.status === "closed") return "Closed";
  if (doc.status === "draft") return "Draft";
  // Agreed before owners agreed too: the supervisor's word stands.
  if (!doc.agreement) return "Agreed";
  if (doc.agreement.owner) return "Agreed by both";
  return `Awaiting ${doc.ownerId === meId ? "your" : `${personName(doc.ownerId)}'s`} agreement`;
}

/** Whether the turn text means this user has something to do. */
export function isMyTurn(turn: string): boolean {
  return turn.startsWith("Awaiting your");
}

const SEEN_KEY = "fb.seen";
type Seen = Record<string, Record<string, string>>;

/** A short fingerprint, so what was seen is remembered without keeping its text on the device. */
function fingerprint(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return `${text.length}:${(hash >>> 0).toString(36)}`;
}

/** The parts of a record written by someone else that this user should hear about:
 *  name → current text (empty parts are never new). */
export function othersParts(doc: Observation | PracticeTheme | GroupSession, meId: string): Record<string, string> {
  if (doc.type === "practice-theme") {
    const theirs = (doc.responses ?? []).filter((r) => r.by !== meId);
    return { response: theirs.map((r) => `${r.id}:${r.text}`).join("\n") };
  }
  if (doc.type === "group-session") {
    if (doc.facilitatorId === meId) {
      const theirs = Object.entries(doc.reflections ?? {}).filter(([by, text]) => by !== meId && text.trim());
      return { reflection: theirs.sort(([a], [b]) => (a < b ? -1 : 1)).map(([by, text]) => `${by}:${text}`).join("\n") };
    }
    return doc.status === "draft" ? {} : { summary: doc.summary ?? "" };
  }
  if (doc.practitionerId === meId && doc.status !== "draft") return { feedback: doc.feedback ?? "" };
  if (doc.observerId === meId) return { reflection: doc.reflection ?? "", response: doc.response ?? "" };
  return {};
}

/** Names of the parts that have text this device has not shown the user yet. */
export function unseen(url: string, parts: Record<string, string>): string[] {
  const seen = readJson<Seen>(SEEN_KEY, {})[url] ?? {};
  return Object.entries(parts)
    .filter(([name, text]) => text.trim() !== "" && seen[name] !== fingerprint(text))
    .map(([name]) => name);
}

/** Remembers these parts as seen. */
export function markSeen(url: string, parts: Record<string, string>): void {
  const all = readJson<Seen>(SEEN_KEY, {});
  const before = all[url] ?? {};
  const after = { ...before };
  for (const [name, text] of Object.entries(parts)) if (text.trim() !== "") after[name] = fingerprint(text);
  if (JSON.stringify(after) === JSON.stringify(before)) return;
  all[url] = after;
  localStorage.setItem(SEEN_KEY, JSON.stringify(all));
}

/** "New feedback", "New reflection and response". */
export function newLabel(parts: string[]): string {
  return parts.length ? `New ${parts.join(" and ")}` : "";
}
