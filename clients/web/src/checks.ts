// Checks before a step that counts: the same rules the server applies to sharing (see
// `Observation::ready_to_share` in sync-core), strict about "now" because this device's clock
// is the user's own, so the user hears about a problem before the server refuses the change.
// And how far each part of a record is filled in, for the form's jump list.
import { plainText } from "./edit";
import type { Observation } from "./types";
import type { FormPart } from "./ui/jump-list";

const FIVE_MINUTES = 5 * 60_000;

/** What stops this observation being shared, by the part of the form it is in. */
function problemsByPart(doc: Observation, now: number): [part: string, problem: string][] {
  const problems: [string, string][] = [];
  const observed = doc.observedAt ? Date.parse(doc.observedAt) : NaN;
  if (Number.isNaN(observed)) problems.push(["Context", "Record the date and time of the observation."]);
  else if (observed > now + FIVE_MINUTES) problems.push(["Context", "The date and time observed is in the future."]);
  if (!doc.setting) problems.push(["Context", "Choose the setting."]);
  // A supervision session observes staff only: no family's consent to record.
  if (doc.setting !== "supervision-session") {
    if (!doc.consent?.given || doc.consent.withdrawnAt) problems.push(["Consent", "Record that the family agreed to the observation."]);
    if (!filled(doc.consent?.by)) problems.push(["Consent", "Record who gave consent."]);
    if (!filled(doc.consent?.how)) problems.push(["Consent", "Record how consent was given."]);
  }
  const feedback = doc.feedbackGivenAt ? Date.parse(doc.feedbackGivenAt) : NaN;
  if (!Number.isNaN(feedback)) {
    if (!Number.isNaN(observed) && feedback < observed) problems.push(["Feedback", "Feedback is dated before the observation."]);
    if (feedback > now + FIVE_MINUTES) problems.push(["Feedback", "Feedback is dated in the future."]);
  }
  return problems;
}

const filled = (text: unknown) => Boolean(plainText(text as string | undefined)?.trim());

/** What stops this observation being shared, in words for the observer; empty if nothing. */
export function sharingProblems(doc: Observation, now = Date.now()): string[] {
  return problemsByPart(doc, now).map(([, problem]) => problem);
}

/** The observation's parts in the order the viewer sees them, with whether each part they
 *  fill in is done: the observer's parts before sharing, the practitioner's after. */
export function observationParts(doc: Observation, viewer: "observer" | "practitioner" | null, now = Date.now()): FormPart[] {
  const problems = new Set(problemsByPart(doc, now).map(([part]) => part));
  const observer = viewer === "observer";
  const ok = (part: string, filledIn: boolean) => (observer ? !problems.has(part) && filledIn : undefined);
  const feedback = { title: "Feedback", done: ok("Feedback", filled(doc.feedback)) };
  const reflection = {
    title: "Practitioner's reflection",
    done: viewer === "practitioner" ? filled(doc.reflection) && filled(doc.response) : undefined,
  };
  const practitionersView = doc.status !== "draft" || viewer === "practitioner";
  const theirs = practitionersView ? [reflection] : [];
  const parts: FormPart[] = [
    { title: "Context", done: ok("Context", true) },
    { title: "Consent", done: ok("Consent", true) },
    { title: "Focus", done: ok("Focus", Boolean(doc.framework) && (doc.components?.length ?? 0) > 0) },
    { title: "Observation", done: ok("Observation", filled(doc.notes)) },
    { title: "Actions" },
  ];
  const sharing = { title: "Sharing and sign-off" };
  // On the practitioner's own device their answer and their part come first.
  return viewer === "practitioner" ? [feedback, ...theirs, ...parts, sharing] : [...parts.slice(0, 4), feedback, parts[4], ...theirs, sharing];
}
