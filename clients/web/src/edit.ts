// Small helpers for changing record documents so that concurrent edits merge.
import { ImmutableString, getConflicts, isImmutableString, updateText } from "@automerge/automerge/slim";

type Path = (string | number)[];

/** The map that holds `path`'s last key (made on the way if missing), and that key. */
function placeOf(doc: unknown, path: Path): { parent: Record<string | number, unknown>; last: string | number } {
  let parent = doc as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) {
    if (parent[key] === undefined) parent[key] = {};
    parent = parent[key] as Record<string | number, unknown>;
  }
  return { parent, last: path[path.length - 1] };
}

/** Sets a prose field with a minimal text diff (so two people's edits merge), creating it if needed. */
export function setText(doc: unknown, path: Path, value: string): void {
  const { parent, last } = placeOf(doc, path);
  if (typeof parent[last] === "string") updateText(doc as never, path, value);
  else parent[last] = value;
}

/** Sets a short field — a role, a phrase, a title — as a register, not collaborative text: the
 *  last writer wins, and two devices writing it at once leave a conflict to show (see
 *  `conflictingValues`) instead of their letters mixed. Empty deletes it. */
export function setShort(doc: unknown, path: Path, value: string): void {
  const { parent, last } = placeOf(doc, path);
  if (value === "") delete parent[last];
  // Written even when equal: keeping one of two conflicting values is a new write over both.
  else parent[last] = new ImmutableString(value);
}

/** A field's text, whether written as collaborative text (prose, and short fields written by
 *  older clients or the stock JS client) or as a register (`setShort`). */
export function plainText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (isImmutableString(value)) return value.val;
  return undefined;
}

/** The different texts devices wrote to `parent[key]` at the same time, if there are two or
 *  more; empty when there is no conflict. */
export function conflictingValues(parent: unknown, key: string): string[] {
  if (!parent || typeof parent !== "object") return [];
  const all = getConflicts(parent as never, key);
  if (!all) return [];
  const values = [...new Set(Object.values(all).map(plainText))].filter((v): v is string => v !== undefined);
  return values.length > 1 ? values : [];
}

/** Sets or (when empty) deletes a plain value such as a date or an enum. */
export function setValue(parent: Record<string, unknown>, key: string, value: unknown): void {
  if (value === undefined || value === "") delete parent[key];
  else if (parent[key] !== value) parent[key] = value;
}

/** Top-level short fields, written as registers (see `setShort`). */
const SHORT_FIELDS = new Set(["present", "purpose"]);

/** Puts a top-level field back as it was kept aside (text merges as a text edit). */
export function putBackField(doc: Record<string, unknown>, field: string, value: unknown): void {
  if (typeof value === "string" && SHORT_FIELDS.has(field)) setShort(doc, [field], value);
  else if (typeof value === "string") setText(doc, [field], value);
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

// Made once: toLocaleString builds a formatter on every call, which took most of the time of
// rendering a list of a few hundred records.
const DATE_TIME = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short" });
const DATE = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium" });

export function formatDateTime(iso: string | undefined): string {
  return format(iso, DATE_TIME);
}

export function formatDate(iso: string | undefined): string {
  return format(iso, DATE);
}

function format(iso: string | undefined, formatter: Intl.DateTimeFormat): string {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : formatter.format(d);
}
