// Deletes every piece of local data: the automerge database, localStorage (the device id
// survives an ordinary sign-out, not a revocation) and any cache that is not the app shell.
// Other tabs of the app are told first, so they stop syncing and close the database (an open
// connection anywhere would block its deletion).
import { emitAuthSignal } from "./events";
import { DATABASE, stopRepo } from "./repo";
import { forgetAll } from "./sealed-local";
import { DEVICE_STORAGE_KEY } from "./session";
import { lock } from "./vault";

const channel = typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel("fieldbook-wipe");
channel?.addEventListener("message", (event: MessageEvent<{ reason: string }>) => {
  emitAuthSignal({ kind: "wiped-elsewhere", reason: event.data.reason });
});

/** Whether the database went: false if some connection kept it open for 10 s. */
function deleteDatabase(name: string): Promise<boolean> {
  return new Promise((resolve) => {
    const request = indexedDB.deleteDatabase(name);
    request.onsuccess = () => resolve(true);
    request.onerror = () => resolve(false);
    // Blocked: another tab has it open; it closes on our message, then the delete goes on.
    request.onblocked = () => setTimeout(() => resolve(false), 10_000);
  });
}

/** Returns false if local records could not all be deleted (say so to the user). */
export async function wipeLocalData({ keepDevice, reason }: { keepDevice: boolean; reason: string }): Promise<boolean> {
  channel?.postMessage({ reason });
  await stopRepo();
  lock();
  forgetAll();
  const names = new Set<string>([DATABASE]);
  try {
    for (const db of await indexedDB.databases()) if (db.name) names.add(db.name);
  } catch {
    // indexedDB.databases() is missing in some browsers; DATABASE is the one we use
  }
  const deleted = await Promise.all([...names].map(deleteDatabase));
  const device = localStorage.getItem(DEVICE_STORAGE_KEY);
  localStorage.clear();
  if (keepDevice && device) localStorage.setItem(DEVICE_STORAGE_KEY, device);
  try {
    for (const name of await caches.keys()) if (!name.startsWith("fieldbook-shell-")) await caches.delete(name);
  } catch {
    // no Cache Storage (insecure context)
  }
  return deleted.every(Boolean);
}
