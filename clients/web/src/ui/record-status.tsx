// Per-record state in words: where it is stored, and any change the server refused.
import type { DocHandle } from "@automerge/automerge-repo/slim";
import { dismissRejection, explainRejection, isErasure, useRejections } from "../notices";
import { takeServerCopy } from "../server-copy";
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
          {isErasure(r.reason) ? (
            <p>
              Use the server's version below to carry on. Anything you changed here since this device last reached the
              server is not on the server: copy it out first if you need it, then add it again.
            </p>
          ) : (
            <p>
              Your other work is safe. The refused change is kept aside on the server for review, not lost: if it
              mattered, ask your {askWho} to look at it.
            </p>
          )}
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
          <button type="button" onClick={() => takeServerCopy(documentId)}>
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
