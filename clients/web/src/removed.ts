// When the server erased a record's history, or deleted the record (its retention period
// ended, or for data protection), this device's copy must go too: the old history holds the
// erased text, and a deleted record must not stay on devices. Both happen by themselves (the
// copy is deleted at the next start, see server-copy.ts). What the user changed here and had
// not sent is kept aside, sealed, for them to put back, and both are explained in plain words.
import { useEffect, useState } from "preact/hooks";
import type { DocHandle, UrlHeads } from "@automerge/automerge-repo/slim";
import { SealedJson } from "./sealed-local";
import { dropLocalCopy } from "./server-copy";
import { confirmedHeadsOf, forgetServerState } from "./sync-state";
import { readJson as read, useJson, writeJson as write } from "./local";

/** Unsent work by document id: it may hold narrative, so it is kept sealed. */
const setAsideWork = new SealedJson<Record<string, SetAside>>("fb.setAside", {});
const REMOVED_KEY = "fb.removedHere";

/** Unsent work kept from a copy replaced after an erasure: top-level fields as they were here. */
export interface SetAside {
  fields: Record<string, unknown>;
  at: string;
}

/** A record the server deleted, removed from this device. */
export interface Removed {
  documentId: string;
  what: string;
  at: string;
  /** The user dismissed the message; the record stays listed so it is never asked for again. */
  dismissed?: boolean;
  /** Its author discarded the draft (on this device or another of theirs). */
  discarded?: boolean;
}

/** The top-level fields of the handle's document that differ from the state the server last
 *  confirmed (all of them if it never confirmed one), as they are now. */
function unsentWork(handle: DocHandle<unknown>): Record<string, unknown> {
  const doc = handle.doc() as Record<string, unknown> | undefined;
  if (!doc) return {};
  let confirmed: Record<string, unknown> = {};
  const heads = confirmedHeadsOf(handle.documentId);
  if (heads) {
    try {
      confirmed = (handle.view(heads as UrlHeads).doc() as Record<string, unknown> | undefined) ?? {};
    } catch {
      confirmed = {};
    }
  }
  const kept: Record<string, unknown> = {};
  for (const key of Object.keys(doc)) {
    if (canonical(doc[key]) !== canonical(confirmed[key])) kept[key] = JSON.parse(JSON.stringify(doc[key]));
  }
  return kept;
}

/** JSON with object keys sorted: two versions of a map may list the same keys in another order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** The server erased the record's history: keep the unsent work aside, take the server's copy. */
export async function replaceErasedCopy(handle: DocHandle<unknown>): Promise<void> {
  const all = { ...setAsideWork.get(), [handle.documentId]: { fields: unsentWork(handle), at: new Date().toISOString() } };
  await setAsideWork.set(all); // kept before the copy goes
  forgetServerState(handle.documentId);
  dropLocalCopy(handle.documentId);
}

/** Notes that the record is gone for good, so it is never asked for again. */
export function rememberRemoved(documentId: string, what: string, how: Pick<Removed, "discarded" | "dismissed"> = {}): void {
  const removed = read<Removed[]>(REMOVED_KEY, []);
  if (!removed.some((r) => r.documentId === documentId)) {
    write(REMOVED_KEY, [...removed, { documentId, what, at: new Date().toISOString(), ...how }]);
  }
}

/** The server deleted the record: this device's copy, and anything kept from it, goes too. */
export function removeDeletedCopy(documentId: string, what: string, how: Pick<Removed, "discarded"> = {}): void {
  rememberRemoved(documentId, what, how);
  dropSetAside(documentId);
  forgetServerState(documentId);
  dropLocalCopy(documentId);
}

/** Whether the server deleted this record and this device removed it: not to be asked for again. */
export function wasRemoved(documentId: string): boolean {
  return read<Removed[]>(REMOVED_KEY, []).some((r) => r.documentId === documentId);
}

export function dropSetAside(documentId: string, field?: string): void {
  const all = structuredClone(setAsideWork.get());
  const entry = all[documentId];
  if (!entry) return;
  if (field !== undefined) delete entry.fields[field];
  if (field === undefined || Object.keys(entry.fields).length === 0) delete all[documentId];
  void setAsideWork.set(all);
}

export function dismissRemoved(documentId: string): void {
  write(
    REMOVED_KEY,
    read<Removed[]>(REMOVED_KEY, []).map((r) => (r.documentId === documentId ? { ...r, dismissed: true } : r)),
  );
}

export function useSetAside(documentId: string): SetAside | undefined {
  const [value, setValue] = useState(() => setAsideWork.get()[documentId]);
  useEffect(() => {
    const update = () => setValue(setAsideWork.get()[documentId]);
    update();
    return setAsideWork.subscribe(update);
  }, [documentId]);
  return value;
}

/** Removed records whose message the user has not dismissed. */
export function useRemoved(): Removed[] {
  return useJson<Removed[]>(REMOVED_KEY, []).filter((r) => !r.dismissed);
}
