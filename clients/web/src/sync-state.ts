// "Stored on the server" or "Saved on this device only", per document. The server sends its
// storageId in its peer metadata and reports a document's heads only once they are durably
// committed, so a document is stored when the server's heads equal ours. The last heads the
// server confirmed are kept in localStorage, so the answer survives a reload offline.
import { useEffect, useState } from "preact/hooks";
import type { DocHandle, StorageId } from "@automerge/automerge-repo/slim";

const STORAGE_ID_KEY = "fb.serverStorageId";
const HEADS_KEY = "fb.serverHeads";
const SESSION_KEY = "fb.session";

let storageId: StorageId | null = localStorage.getItem(STORAGE_ID_KEY) as StorageId | null;
const listeners = new Set<() => void>();

const notifyAll = () => {
  for (const listener of [...listeners]) listener();
};

export function setServerStorageId(id: StorageId): void {
  if (id === storageId) return;
  storageId = id;
  localStorage.setItem(STORAGE_ID_KEY, id);
  notifyAll();
}

// Writes of a document's latest changes to IndexedDB still in flight. The repo saves on its
// own a little later; until a save completes, a reload or a closed tab would lose the change,
// so the record says "Saving on this device" rather than "Saved".
const saving = new Map<string, number>();

export function trackSave(documentId: string, write: Promise<unknown>): void {
  saving.set(documentId, (saving.get(documentId) ?? 0) + 1);
  notifyAll();
  void write
    .catch((e) => console.warn("saving on this device", e))
    .finally(() => {
      const left = (saving.get(documentId) ?? 1) - 1;
      if (left > 0) saving.set(documentId, left);
      else saving.delete(documentId);
      notifyAll();
    });
}

export function isSaving(documentId: string): boolean {
  return saving.has(documentId);
}

/** The parsed value of a localStorage key, parsed again only when the stored text changed:
 *  every record's status line reads these maps, and parsing them for each took most of the
 *  time of rendering a few hundred records. Callers copy before changing. */
function cachedJson<T>(key: string, fallback: T): () => T {
  let text: string | null = null;
  let value = fallback;
  return () => {
    const now = localStorage.getItem(key);
    if (now !== text) {
      text = now;
      try {
        value = now === null ? fallback : JSON.parse(now);
      } catch {
        value = fallback;
      }
    }
    return value;
  };
}

const confirmedHeads = cachedJson<Record<string, string[]>>(HEADS_KEY, {});

/** The heads the server last confirmed for a document, if it ever did. */
export function confirmedHeadsOf(documentId: string): string[] | undefined {
  return confirmedHeads()[documentId];
}

/** The local copy is going (replaced or deleted): what the server confirmed of it, and whether
 *  it held changes made here, no longer apply. */
export function forgetServerState(documentId: string): void {
  const known = confirmedHeads();
  if (known[documentId]) {
    const { [documentId]: _, ...rest } = known;
    localStorage.setItem(HEADS_KEY, JSON.stringify(rest));
  }
  const ids = dirty();
  if (ids.includes(documentId)) localStorage.setItem(DIRTY_KEY, JSON.stringify(ids.filter((id) => id !== documentId)));
}

function sameHeads(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join();
}

// Records changed on this device since the server last confirmed them, kept across reloads
// and sessions: a different person's sign-in would otherwise wipe them unsent.
const DIRTY_KEY = "fb.changedHere";

const dirty = cachedJson<string[]>(DIRTY_KEY, []);

/** Call on every change made on this device. */
export function markChangedHere(documentId: string): void {
  const ids = dirty();
  if (!ids.includes(documentId)) localStorage.setItem(DIRTY_KEY, JSON.stringify([...ids, documentId]));
}

/** Whether this record holds changes made here that the server has not confirmed. */
export function isChangedHere(documentId: string): boolean {
  return dirty().includes(documentId);
}

/** How many records hold changes made here that the server has not confirmed. */
export function changedHereCount(): number {
  return dirty().length;
}

export function storedOnServer(handle: DocHandle<unknown>): boolean {
  if (!handle.isReady()) return false;
  const local = handle.heads() as string[];
  const known = confirmedHeads();
  const live = storageId ? (handle.getSyncInfo(storageId)?.lastHeads as string[] | undefined) : undefined;
  if (live && sameHeads(live, local)) {
    // Not after a sign-out: the wipe must not be undone by a late event.
    if (localStorage.getItem(SESSION_KEY) && (!known[handle.documentId] || !sameHeads(known[handle.documentId], local))) {
      localStorage.setItem(HEADS_KEY, JSON.stringify({ ...known, [handle.documentId]: [...local] }));
    }
    const ids = dirty();
    if (ids.includes(handle.documentId)) {
      localStorage.setItem(DIRTY_KEY, JSON.stringify(ids.filter((id) => id !== handle.documentId)));
    }
    return true;
  }
  return !!known[handle.documentId] && sameHeads(known[handle.documentId], local);
}

/** Re-renders when the document or the server's view of it changes. */
export function useStoredOnServer(handle: DocHandle<unknown> | undefined): boolean {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!handle) return;
    const bump = () => setTick((t) => t + 1);
    handle.on("change", bump);
    handle.on("remote-heads", bump);
    listeners.add(bump);
    return () => {
      handle.off("change", bump);
      handle.off("remote-heads", bump);
      listeners.delete(bump);
    };
  }, [handle]);
  return handle ? storedOnServer(handle) : false;
}
