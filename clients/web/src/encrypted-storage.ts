// The repo's storage, encrypted: every value goes through the stock IndexedDB adapter sealed
// with the data key (see vault.ts), bound to its storage key. The keys themselves (document id,
// chunk kind, hashes) stay in clear; they hold no narrative. Values written before encryption
// was on are still read, and `sealExisting` encrypts them in place.
import type { Chunk, StorageAdapterInterface, StorageKey } from "@automerge/automerge-repo/slim";
import { currentKey, isSealed, seal, unseal } from "./vault";

const what = (key: StorageKey) => `record store:${key.join("/")}`;

async function open(key: StorageKey, data: Uint8Array): Promise<Uint8Array> {
  return isSealed(data) ? unseal(currentKey(), data, what(key)) : data;
}

export class EncryptedStorageAdapter implements StorageAdapterInterface {
  constructor(private inner: StorageAdapterInterface) {}

  async load(key: StorageKey): Promise<Uint8Array | undefined> {
    const data = await this.inner.load(key);
    return data === undefined ? undefined : open(key, data);
  }

  async save(key: StorageKey, data: Uint8Array): Promise<void> {
    await this.inner.save(key, await seal(currentKey(), data, what(key)));
  }

  remove(key: StorageKey): Promise<void> {
    return this.inner.remove(key);
  }

  async loadRange(keyPrefix: StorageKey): Promise<Chunk[]> {
    const chunks = await this.inner.loadRange(keyPrefix);
    return Promise.all(
      chunks.map(async (chunk) => ({ key: chunk.key, data: chunk.data && (await open(chunk.key, chunk.data)) })),
    );
  }

  removeRange(keyPrefix: StorageKey): Promise<void> {
    return this.inner.removeRange(keyPrefix);
  }

  /** Encrypts values stored before encryption was on (an app update, or a browser signed in
   *  before it). */
  async sealExisting(): Promise<void> {
    for (const chunk of await this.inner.loadRange([])) {
      if (chunk.data && !isSealed(chunk.data)) await this.save(chunk.key, chunk.data);
    }
  }
}
