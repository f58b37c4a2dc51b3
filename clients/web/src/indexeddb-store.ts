// The stock IndexedDB adapter, reading a range of keys (a document's snapshots, or its
// incremental changes) with one request instead of one cursor step per chunk. With many
// documents opening at once every step waits its turn, so a record holding many small changes
// (one per keystroke typed offline) took seconds to open, and its unsent work reached the
// server after every other record's.
import type { Chunk, StorageKey } from "@automerge/automerge-repo/slim";
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb";

export class IndexedDBStore extends IndexedDBStorageAdapter {
  constructor(private readonly storeName: string, database: string) {
    super(database, storeName);
  }

  /** The open database (the adapter opens it on construction). */
  db(): Promise<IDBDatabase> {
    return (this as unknown as { dbPromise: Promise<IDBDatabase> }).dbPromise;
  }

  async close(): Promise<void> {
    (await this.db()).close();
  }

  override async loadRange(keyPrefix: StorageKey): Promise<Chunk[]> {
    const db = await this.db();
    const request = db
      .transaction(this.storeName)
      .objectStore(this.storeName)
      .getAll(IDBKeyRange.bound(keyPrefix, [...keyPrefix, "\uffff"]));
    return new Promise((resolve, reject) => {
      request.onerror = () => reject(request.error);
      request.onsuccess = () =>
        resolve((request.result as { key: StorageKey; binary: Uint8Array }[]).map((v) => ({ key: v.key, data: v.binary })));
    });
  }
}
