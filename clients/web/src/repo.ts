// The automerge repo: documents in IndexedDB (encrypted, see encrypted-storage.ts), synced with
// the server over one WebSocket.
// Uses the /slim entry points so Vite loads the wasm as an ordinary hashed asset (the service
// worker precaches it); the storage and network adapters import the same /slim module.
import { Repo, initializeWasm, type PeerId } from "@automerge/automerge-repo/slim";
import wasmUrl from "@automerge/automerge/automerge.wasm?url";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { EncryptedStorageAdapter } from "./encrypted-storage";
import { IndexedDBStore } from "./indexeddb-store";
import { emitAuthSignal } from "./events";
import { setServerStorageId } from "./sync-state";

export const DATABASE = "fieldbook";
export const STORE = "documents";

let wasmReady: Promise<void> | null = null;
export function initAutomerge(): Promise<void> {
  wasmReady ??= initializeWasm(wasmUrl);
  return wasmReady;
}

interface Running {
  repo: Repo;
  socket: WebSocketClientAdapter;
  storage: IndexedDBStore;
  stop: () => void;
}
let running: Running | null = null;

export function syncUrl(token: string): string {
  const url = new URL("/v1/sync", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("token", token);
  return url.href;
}

export function startRepo(accessToken: string): Repo {
  if (running) return running.repo;
  const storage = new IndexedDBStore(STORE, DATABASE);
  const socket = new WebSocketClientAdapter(syncUrl(accessToken));
  // The repo ignores message types it does not know; the server's wipe order is one.
  socket.on("message", (message: { type?: string; reason?: string }) => {
    if (message.type === "fieldbook/wipe") {
      emitAuthSignal({ kind: "wipe", reason: message.reason ?? "This device was revoked." });
    }
  });
  const repo = new Repo({ storage: new EncryptedStorageAdapter(storage), network: [socket] });
  repo.networkSubsystem.on("peer", ({ peerMetadata }) => {
    if (peerMetadata?.storageId && !peerMetadata.isEphemeral) setServerStorageId(peerMetadata.storageId);
  });
  // Chromium may keep a socket open through a network drop; close it so the adapter's own
  // retry loop takes over and reconnects when the network is back.
  const offline = () => socket.socket?.close();
  window.addEventListener("offline", offline);
  running = { repo, socket, storage, stop: () => window.removeEventListener("offline", offline) };
  return repo;
}

/** Set once everything stored has been sealed. Values are sealed as they are written, so the
 *  pass (a read of every record, 0.4 s of each unlock with 300 records) runs once per browser;
 *  wiping the device clears it with the rest of localStorage. */
const SEALED_KEY = "fb.recordsSealed";

/** Encrypts what this browser stored before encryption was on. Call once unlocked, before
 *  the repo starts. */
export async function sealStoredRecords(): Promise<void> {
  if (localStorage.getItem(SEALED_KEY)) return;
  const storage = new IndexedDBStore(STORE, DATABASE);
  try {
    await new EncryptedStorageAdapter(storage).sealExisting();
    localStorage.setItem(SEALED_KEY, "1");
  } finally {
    await storage.close();
  }
}

export function currentRepo(): Repo {
  if (!running) throw new Error("the repo is not started");
  return running.repo;
}

/**
 * A new access token for sync. The open connection gets it in-band (`fieldbook/renew`), so the
 * server keeps the session past the old token's expiry instead of closing it; the adapter
 * reads `url` on every reconnect, so a new connection uses it too.
 */
export function setSyncToken(accessToken: string): void {
  if (!running) return;
  const { socket } = running;
  (socket as unknown as { url: string }).url = syncUrl(accessToken);
  if (socket.socket?.readyState === WebSocket.OPEN && socket.peerId) {
    try {
      socket.send({ type: "fieldbook/renew", senderId: socket.peerId, token: accessToken } as never);
    } catch {
      // closing meanwhile: the reconnect uses the new URL
    }
  }
}

export function serverPeerId(): PeerId | undefined {
  return running?.socket.remotePeerId;
}

/** Stops syncing and closes the database (so it can be deleted). */
export async function stopRepo(): Promise<void> {
  if (!running) return;
  const { repo, socket, storage, stop } = running;
  running = null;
  stop();
  try {
    await repo.shutdown();
  } catch {
    // already stopped
  }
  try {
    if (socket.socket) socket.disconnect();
  } catch {
    // never connected
  }
  try {
    await storage.close();
  } catch {
    // never opened
  }
}
