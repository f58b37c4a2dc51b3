// Taking the server's copy of a record back after the server refused some of this device's
// changes: the local copy holds them for good (automerge never forgets a change), so it
// would never match the server's again. The refused changes are kept aside on the server.
// The local copy is deleted at the next start, before the repo opens the database (no
// in-flight save can write it back), and the record is fetched again from the server.
import { DATABASE, STORE } from "./repo";

const KEY = "fb.takeServerCopy";

function pending(): string[] {
  try {
    return JSON.parse(localStorage.getItem(KEY) ?? "[]");
  } catch {
    return [];
  }
}

/** Marks `documentId` to be replaced by the server's copy, and restarts the app to do it. */
export function takeServerCopy(documentId: string): void {
  localStorage.setItem(KEY, JSON.stringify([...new Set([...pending(), documentId])]));
  location.reload();
}

/** Deletes the local copies marked by `takeServerCopy`. Call before the repo starts. */
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
