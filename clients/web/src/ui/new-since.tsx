// On a record screen: what was new to this user when they opened it. Opening it marks the
// current text seen, so the lists stop calling it new.
import { useEffect, useState } from "preact/hooks";
import { markSeen, newLabel, unseen } from "../turn";

export function NewSinceLastOpened({ url, parts }: { url: string; parts: Record<string, string> }) {
  const [fresh] = useState(() => unseen(url, parts));
  const key = JSON.stringify(parts);
  useEffect(() => markSeen(url, parts), [url, key]);
  if (fresh.length === 0) return null;
  return (
    <p class="new-since">
      <span class="new">{newLabel(fresh)}</span> since you last opened this record.
    </p>
  );
}
