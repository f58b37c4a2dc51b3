// Per-record state in words: where it is stored, and any change the server refused.
import type { DocHandle } from "@automerge/automerge-repo/slim";
import { dismissRejection, explainRejection, useRejections } from "../notices";
import { dismissRefusedDiscard, useRefusedDiscards } from "../discard";
import { dismissRemoved, dropSetAside, useRemoved, useSetAside } from "../removed";
import { dropLocalCopy } from "../server-copy";
import { isSaving, useStoredOnServer } from "../sync-state";

export const STORED = "Stored on the server";
export const DEVICE_ONLY = "Saved on this device only";

export const SAVING = "Saving on this device…";

/** Where the record is. With `live`, screen readers hear when it reaches the server or stops
 *  being there, not the saving flicker of every keystroke. */
export function SyncText({ handle, live = false }: { handle?: DocHandle<unknown>; live?: boolean }) {
  const stored = useStoredOnServer(handle);
  const saving = !!handle && isSaving(handle.documentId);
  const text = saving ? SAVING : stored ? STORED : DEVICE_ONLY;
  return (
    <>
      <p class={stored && !saving ? "sync stored" : "sync device"} aria-hidden={live ? "true" : undefined}>
        <span aria-hidden="true" class="sync-icon">
          {saving ? "…" : stored ? "✓" : "●"}
        </span>{" "}
        {text}
        {!stored && !saving && live ? " — it goes to the server when you are online." : ""}
      </p>
      {live && (
        <p class="visually-hidden" role="status">
          {stored ? "This record is on the server." : "This record is kept on this device until it syncs."}
        </p>
      )}
    </>
  );
}

/** `onServer`: the server has the record (it was not the record's creation that was refused),
 *  so this device can take the server's copy back. */
export function Rejections({ documentId, askWho, onServer }: { documentId: string; askWho: string; onServer: boolean }) {
  const rejections = useRejections(documentId);
  if (rejections.length === 0) return null;
  return (
    <div class="notices" role="alert">
      {rejections.map((r) => (
        <div class="notice" key={r.id}>
          <p>
            <strong>The server did not accept a change you made here.</strong> {explainRejection(r.reason)}
          </p>
          <p>
            Your other work is safe. The refused change is kept aside on the server for review, not lost: if it
            mattered, ask your {askWho} to look at it.
          </p>
          <p class="hint">Details from the server: {r.reason}</p>
          <button type="button" class="secondary" onClick={() => dismissRejection(documentId, r.id)}>
            Dismiss this message
          </button>
        </div>
      ))}
      {onServer && (
        <p>
          This device's copy still shows the refused change and will not match the server's until you take the
          server's version back.{" "}
          <button type="button" onClick={() => dropLocalCopy(documentId)}>
            Use the server's version
          </button>
        </p>
      )}
    </div>
  );
}

/** Whether this device's copy holds a change the server refused (and the server has the record):
 *  every later edit would build on it and be refused too, so the record is read-only until
 *  the user takes the server's version back. */
export function useRefused(documentId: string, onServer: boolean): boolean {
  return useRejections(documentId).length > 0 && onServer;
}

/** Field names as the forms label them, for work kept aside. */
const FIELD_LABELS: Record<string, string> = {
  observedAt: "Date and time observed",
  setting: "Setting",
  present: "Who was present",
  purpose: "Purpose of the visit or meeting",
  consent: "Consent",
  components: "Framework areas",
  notes: "Notes",
  strengths: "Strengths",
  developmentAreas: "Development areas",
  judgements: "Judgements",
  feedback: "Feedback to the practitioner",
  feedbackGivenAt: "Feedback given at",
  actions: "Actions",
  reflection: "Reflection",
  response: "Response to feedback",
  familyVoice: "Family voice",
  signOff: "Sign-off",
  status: "Status",
  goals: "Goals",
  period: "Period",
  reviews: "Reviews",
  gapAnalysis: "Gap analysis",
};

function preview(value: unknown): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value.join("; ");
  return JSON.stringify(value, null, 1);
}

/** After the server erased the record's history, this device took the server's copy: the
 *  work it had not sent yet is shown here, to put back (as a new change) or discard. */
export function SetAsideWork({
  documentId,
  current,
  putBack,
}: {
  documentId: string;
  /** The record as the server has it now. */
  current: Record<string, unknown>;
  putBack: (field: string, value: unknown) => void;
}) {
  const setAside = useSetAside(documentId);
  if (!setAside) return null;
  const fields = Object.entries(setAside.fields);
  return (
    <div class="notices" role="alert">
      <div class="notice">
        <p>
          <strong>Text was removed from this record's history on the server, for data protection.</strong> This device
          has replaced its copy with the server's.
        </p>
        {fields.length === 0 ? (
          <p>Everything you had changed here was already on the server, so nothing was lost.</p>
        ) : (
          <>
            <p>
              You had changed the following here, and it had not reached the server. It is kept on this device for you:
              put it back into the record, or discard it.
            </p>
            <dl class="set-aside">
              {fields.map(([field, value]) => {
                const label = FIELD_LABELS[field] ?? field;
                // Emptied on the server while it holds text here: the erasure may have cleared it.
                const cleared = current[field] === "" && typeof value === "string" && value !== "";
                return (
                  <div key={field}>
                    <dt>{label}</dt>
                    <dd>
                      {cleared && (
                        <p class="warning">
                          This field was emptied on the server for data protection. Check that this text holds nothing that must not be
                          recorded (such as a family's name) before you put it back.
                        </p>
                      )}
                      <p class="value">{preview(value)}</p>
                      <button
                        type="button"
                        onClick={() => {
                          putBack(field, value);
                          dropSetAside(documentId, field);
                        }}
                      >
                        Put back {label}
                      </button>{" "}
                      <button type="button" class="secondary" onClick={() => dropSetAside(documentId, field)}>
                        Discard {label}
                      </button>
                    </dd>
                  </div>
                );
              })}
            </dl>
          </>
        )}
        {fields.length === 0 && (
          <button type="button" class="secondary" onClick={() => dropSetAside(documentId)}>
            Dismiss this message
          </button>
        )}
      </div>
    </div>
  );
}

/** Records the server deleted, which this device removed too, and drafts it would not discard. */
export function RemovedRecords() {
  const removed = useRemoved();
  const kept = useRefusedDiscards();
  if (removed.length === 0 && kept.length === 0) return null;
  return (
    <div class="notices" role="alert">
      {removed.map((r) => (
        <div class="notice" key={r.documentId}>
          <p>
            {r.discarded ? (
              <>
                <strong>{r.what} was discarded</strong> on another of your devices, so this device removed its copy too.
              </>
            ) : (
              <>
                <strong>{r.what} was deleted from the server</strong> (its retention period ended, or it was removed for
                data protection), so this device removed its copy too.
              </>
            )}
          </p>
          <button type="button" class="secondary" onClick={() => dismissRemoved(r.documentId)}>
            Dismiss this message
          </button>
        </div>
      ))}
      {kept.map((d) => (
        <div class="notice" key={d.documentId}>
          <p>
            <strong>{d.what} was not discarded.</strong> The server said: “{d.refused}”. It is back in your records.
          </p>
          <button type="button" class="secondary" onClick={() => dismissRefusedDiscard(d.documentId)}>
            Dismiss this message
          </button>
        </div>
      ))}
    </div>
  );
}
