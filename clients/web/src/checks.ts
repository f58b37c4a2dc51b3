// Checks before a step that counts: the same rules the server applies to sharing (see
// `Observation::ready_to_share` in sync-core), strict about "now" because this device's clock
// is the user's own, so the user hears about a problem before the server refuses the change.
import { plainText } from "./edit";
import type { Observation } from "./types";

const FIVE_MINUTES = 5 * 60_000;

/** What stops this observation being shared, in words for the observer; empty if nothing. */
export function sharingProblems(doc: Observation, now = Date.now()): string[] {
  const problems: string[] = [];
  const observed = doc.observedAt ? Date.parse(doc.observedAt) : NaN;
  if (Number.isNaN(observed)) problems.push("Record the date and time of the observation.");
  else if (observed > now + FIVE_MINUTES) problems.push("The date and time observed is in the future.");
  if (!doc.setting) problems.push("Choose the setting.");
  // A supervision session observes staff only: no family's consent to record.
  if (doc.setting !== "supervision-session") {
    if (!doc.consent?.given || doc.consent.withdrawnAt) problems.push("Record that the family agreed to the observation.");
    if (!plainText(doc.consent?.by)?.trim()) problems.push("Record who gave consent.");
    if (!plainText(doc.consent?.how)?.trim()) problems.push("Record how consent was given.");
  }
  const feedback = doc.feedbackGivenAt ? Date.parse(doc.feedbackGivenAt) : NaN;
  if (!Number.isNaN(feedback)) {
    if (!Number.isNaN(observed) && feedback < observed) problems.push("Feedback is dated before the observation.");
    if (feedback > now + FIVE_MINUTES) problems.push("Feedback is dated in the future.");
  }
  return problems;
}
