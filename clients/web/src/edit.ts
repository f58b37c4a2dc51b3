// Small helpers for changing record documents so that concurrent edits merge.
import { updateText } from "@automerge/automerge/slim";

type Path = (string | number)[];

/** Sets a prose field with a minimal text diff (so two people's edits merge), creating it if needed. */
export function setText(doc: unknown, path: Path, value: string): void {
  let parent = doc as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) {
    if (parent[key] === undefined) parent[key] = {};
    parent = parent[key] as Record<string | number, unknown>;
  }
  const last = path[path.length - 1];
  if (typeof parent[last] === "string") updateText(doc as never, path, value);
  else parent[last] = value;
}

/** Sets or (when empty) deletes a plain value such as a date or an enum. */
export function setValue(parent: Record<string, unknown>, key: string, value: unknown): void {
  if (value === undefined || value === "") delete parent[key];
  else if (parent[key] !== value) parent[key] = value;
}

/** Puts a top-level field back as it was kept aside (text merges as a text edit). */
export function putBackField(doc: Record<string, unknown>, field: string, value: unknown): void {
  if (typeof value === "string") setText(doc, [field], value);
  else setValue(doc, field, value);
}

/** Where the item with `id` is now: list items are edited by id, since a concurrent insert
 *  or removal elsewhere in the list moves positions. -1 if it was removed meanwhile. */
export function indexById(list: readonly { id: string }[], id: string): number {
  return list.findIndex((item) => item.id === id);
}

export function newId(): string {
  return crypto.randomUUID();
}

const pad = (n: number) => String(n).padStart(2, "0");

/** RFC 3339 → the value of an <input type="datetime-local"> (local time). */
export function toLocalInput(iso: string | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The value of an <input type="datetime-local"> → RFC 3339 (UTC), or undefined when empty. */
export function fromLocalInput(value: string): string | undefined {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function formatDateTime(iso: string | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

export function formatDate(iso: string | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleDateString("en-GB", { dateStyle: "medium" });
}
