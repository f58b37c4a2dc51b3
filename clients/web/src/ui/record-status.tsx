// Per-record state in words: where it is stored, and any change the server refused.
import type { DocHandle } from "@automerge/automerge-repo/slim";
import { dismissRejection, explainRejection, useRejections } from "../notices";
import { takeServerCopy } from "../server-copy";
import { isSaving, useStoredOnServer } from "../sync-state";

export const STORED = "Stored on the server";
export const DEVICE_ONLY = "Saved on this device only";

export const SAVING = "Saving on this device…";

export function SyncText({ handle, live = false }: { handle?: DocHandle<unknown>; live?: boolean }) {
  const stored = useStoredOnServer(handle);
  if (handle && isSaving(handle.documentId)) {
    return (
      <p class="sync device" role={live ? "status" : undefined}>
        <span aria-hidden="true" class="sync-icon">
          …
        </span>{" "}
        {SAVING}
      </p>
    );
  }
  const text = stored ? STORED : DEVICE_ONLY;
  return (
    <p class={stored ? "sync stored" : "sync device"} role={live ? "status" : undefined}>
      <span aria-hidden="true" class="sync-icon">
        {stored ? "✓" : "●"}
      </span>{" "}
      {text}
      {!stored && live ? " — it goes to the server when you are online." : ""}
    </p>
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
          <button type="button" onClick={() => takeServerCopy(documentId)}>
            Use the server's version
          </button>
        </p>
      )}
    </div>
  );
}
