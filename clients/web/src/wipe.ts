// Deletes every piece of local data: the automerge database, localStorage (the device id
// survives an ordinary sign-out, not a revocation) and any cache that is not the app shell.
import { DATABASE, stopRepo } from "./repo";
import { DEVICE_STORAGE_KEY } from "./session";

function deleteDatabase(name: string): Promise<void> {
  return new Promise((resolve) => {
    const request = indexedDB.deleteDatabase(name);
    request.onsuccess = request.onerror = () => resolve();
    request.onblocked = () => setTimeout(resolve, 2000);
  });
}

export async function wipeLocalData({ keepDevice }: { keepDevice: boolean }): Promise<void> {
  await stopRepo();
  const names = new Set<string>([DATABASE]);
  try {
    for (const db of await indexedDB.databases()) if (db.name) names.add(db.name);
  } catch {
    // indexedDB.databases() is missing in some browsers; DATABASE is the one we use
  }
  await Promise.all([...names].map(deleteDatabase));
  const device = localStorage.getItem(DEVICE_STORAGE_KEY);
  localStorage.clear();
  if (keepDevice && device) localStorage.setItem(DEVICE_STORAGE_KEY, device);
  try {
    for (const name of await caches.keys()) if (!name.startsWith("fieldbook-shell-")) await caches.delete(name);
  } catch {
    // no Cache Storage (insecure context)
  }
}
