// Dropping this device's copy of a record: after the server refused some of its changes (the
// copy holds them for good, since automerge never forgets a change, so it would never match
// the server's again; the refused changes are kept aside on the server), after the server
// erased the record's history, or after it deleted the record. The copy is deleted at the
// next start, before the repo opens the database (no in-flight save can write it back); a
// record still listed is then fetched again from the server.
import { DATABASE, STORE } from "./repo";

const KEY = "fb.takeServerCopy";

function pending(): string[] {
  try {
    return JSON.parse(localStorage.getItem(KEY) ?? "[]");
  } catch {
    return [];
  }
}

let restart: ReturnType<typeof setTimeout> | undefined;

/** Marks `documentId`'s copy to be deleted, and restarts the app to do it (once for several
 *  copies dropped together, as when the server deleted many records). */
export function dropLocalCopy(documentId: string): void {
  localStorage.setItem(KEY, JSON.stringify([...new Set([...pending(), documentId])]));
  clearTimeout(restart);
  restart = setTimeout(() => location.reload(), 300);
}

/** Deletes the local copies marked by `dropLocalCopy`. Call before the repo starts. */
export async function applyServerCopies(): Promise<void> {
  const ids = pending();
  if (ids.length === 0) return;
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const transaction = db.transaction(STORE, "readwrite");
      // Keys are [documentId, kind, …]; "\uffff" sorts after every kind.
      for (const id of ids) transaction.objectStore(STORE).delete(IDBKeyRange.bound([id], [id, "\uffff"]));
      transaction.oncomplete = () => resolve();
      transaction.onerror = () => reject(transaction.error);
    });
    localStorage.removeItem(KEY);
  } finally {
    db.close();
  }
}
