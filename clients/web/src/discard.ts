// Discarding a draft: it leaves this device at once (its lists now, its copy at the next start)
// and the server is asked to discard it everywhere, now or when next online. The server
// refuses a record that is no longer a draft (shared from another device meanwhile): it then
// comes back from the server, with a message saying why.
import { ApiError, api } from "./api";
import { readJson as read, useJson, writeJson as write } from "./local";
import { rememberRemoved } from "./removed";
import { dropLocalCopy } from "./server-copy";

const PENDING_KEY = "fb.discarding";
const REFUSED_KEY = "fb.discardRefused";

export interface Discard {
  documentId: string;
  /** "Your draft observation of Kim Lee". */
  what: string;
  /** Why the server kept it. */
  refused?: string;
}

/** Takes the draft off this device and asks the server to discard it (see `sendDiscards`). */
export function discardDraft(documentId: string, what: string): void {
  const pending = read<Discard[]>(PENDING_KEY, []).filter((d) => d.documentId !== documentId);
  write(PENDING_KEY, [...pending, { documentId, what }]);
  dropLocalCopy(documentId);
}

/** Whether this device is discarding the record: it is not to be listed or opened. */
export function isDiscarding(documentId: string): boolean {
  return read<Discard[]>(PENDING_KEY, []).some((d) => d.documentId === documentId);
}

/** Asks the server to discard each pending draft; what the network keeps from it waits for
 *  the next call. Only after the page restarted: by then the copy is gone from this device, so
 *  the repo cannot send it to the server again after it was discarded. */
export async function sendDiscards(): Promise<void> {
  for (const discard of read<Discard[]>(PENDING_KEY, [])) {
    let refused: string | undefined;
    try {
      await api(`/v1/records/${discard.documentId}`, { method: "DELETE" });
    } catch (e) {
      if (!(e instanceof ApiError) || (e.status !== 404 && e.status !== 409)) return;
      // 404: the server never had it (made and discarded offline), or it is gone already.
      if (e.status === 409) refused = e.message;
    }
    write(
      PENDING_KEY,
      read<Discard[]>(PENDING_KEY, []).filter((d) => d.documentId !== discard.documentId),
    );
    if (refused) write(REFUSED_KEY, [...read<Discard[]>(REFUSED_KEY, []), { ...discard, refused }]);
    else rememberRemoved(discard.documentId, discard.what, { discarded: true, dismissed: true });
  }
}

export function dismissRefusedDiscard(documentId: string): void {
  write(
    REFUSED_KEY,
    read<Discard[]>(REFUSED_KEY, []).filter((d) => d.documentId !== documentId),
  );
}

/** Drafts the server would not discard, until the user dismisses the message. */
export function useRefusedDiscards(): Discard[] {
  return useJson<Discard[]>(REFUSED_KEY, []);
}
