// Server notices about a document ("fieldbook/rejected"): kept (sealed, see sealed-local.ts)
// until the user dismisses them, so they survive a reload.
import { useEffect, useState } from "preact/hooks";
import { SealedJson } from "./sealed-local";

export interface Rejection {
  id: string;
  reason: string;
  changeHashes: string[];
  receivedAt: string;
}

const notices = new SealedJson<Record<string, Rejection[]>>("fb.notices", {});

function all(): Record<string, Rejection[]> {
  return structuredClone(notices.get());
}

function save(value: Record<string, Rejection[]>): void {
  void notices.set(value);
}

export function addRejection(documentId: string, reason: string, changeHashes: string[]): void {
  const notices = all();
  const list = notices[documentId] ?? [];
  const key = changeHashes.join();
  if (list.some((n) => n.changeHashes.join() === key && n.reason === reason)) return;
  list.push({ id: crypto.randomUUID(), reason, changeHashes, receivedAt: new Date().toISOString() });
  notices[documentId] = list;
  save(notices);
}

export function dismissRejection(documentId: string, id: string): void {
  const notices = all();
  notices[documentId] = (notices[documentId] ?? []).filter((n) => n.id !== id);
  if (notices[documentId].length === 0) delete notices[documentId];
  save(notices);
}

export function useRejections(documentId: string): Rejection[] {
  const [list, setList] = useState(() => all()[documentId] ?? []);
  useEffect(() => {
    const update = () => setList(all()[documentId] ?? []);
    update();
    return notices.subscribe(update);
  }, [documentId]);
  return list;
}

/** The server's reason, in plain words for the person holding the device. */
export function explainRejection(reason: string): string {
  if (/covered by your sign-off/.test(reason)) {
    return "You had signed off this record when your change reached the server, so your part could no longer change. Withdraw your sign-off first if it must change.";
  }
  if (/covered by the (observer|practitioner)'s sign-off/.test(reason)) {
    return "The other person had signed off the record as it stood when your change reached the server, so your change was kept aside. Ask them to withdraw their sign-off if it must change.";
  }
  if (/sign-off was made without the latest change/.test(reason)) {
    return "The record changed after you last read it, so your sign-off did not count. Read it again, then sign off again.";
  }
  if (/more than this server's limit/.test(reason)) {
    return "The record would be larger than the server allows.";
  }
  if (/locked/.test(reason)) {
    return "This record had already been signed off by both of you when your change reached the server, so it can no longer change.";
  }
  if (/may not|only the|not yours|belongs to/.test(reason)) {
    return "Your part in this record does not allow that change.";
  }
  if (/invalid record|not one of|must not be empty|is not an RFC 3339/.test(reason)) {
    return "The change would have left the record incomplete or invalid.";
  }
  return "The server refused it.";
}
