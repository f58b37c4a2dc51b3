// The records this user may see: the server's index (paged, cached for offline use), the
// documents behind it (opened in the repo), plus the people, frameworks and resources lists.
import { useEffect, useState } from "preact/hooks";
import type { AutomergeUrl, DocHandle, Repo } from "@automerge/automerge-repo/slim";
import { api } from "./api";
import { addRejection } from "./notices";
import { discardDraft, isDiscarding, sendDiscards } from "./discard";
import { removeDeletedCopy, replaceErasedCopy, wasRemoved } from "./removed";
import { isChangedHere, markChangedHere, storedOnServer, trackSave } from "./sync-state";
import { type Framework, type IndexEntry, isLocked, type Observation, type People, type RecordDoc, type Resource, relatedComponents } from "./types";
import { readJson as read } from "./local";

const INDEX_KEY = "fb.index";
const PEOPLE_KEY = "fb.people";
const FRAMEWORKS_KEY = "fb.frameworks";
const RESOURCES_KEY = "fb.resources";
/** The parts in a record that make it the user's own work, kept on the device. */
const OWN = new Set(["observer", "practitioner", "plan-owner", "plan-supervisor", "facilitator", "participant", "raiser", "responder", "team"]);
/** How many of the user's own records are fetched at once. The stock client composes a request
 *  for every record it is asked for before it handles a single answer, and gives up on a record
 *  it has waited 60 s for: thousands asked for at once showed nothing for seconds and left the
 *  last ones "unavailable". A window keeps answers arriving from the first moment. */
const OPEN_WINDOW = 64;
/** How far behind its cursor each poll re-reads the index (as fieldbook-device does). */
const REREAD = 1000;

interface StoredIndex {
  entries: IndexEntry[];
  cursor: number;
  accessVersion: number | null;
}

export interface Loaded {
  entry: IndexEntry;
  handle?: DocHandle<RecordDoc>;
  doc?: RecordDoc;
  /** The document could not be found here or on the server. */
  unavailable?: boolean;
}

export class RecordStore {
  private index: StoredIndex = read(INDEX_KEY, { entries: [], cursor: 0, accessVersion: null });
  private handles = new Map<string, DocHandle<RecordDoc>>();
  private opening = new Map<string, Promise<DocHandle<RecordDoc> | undefined>>();
  private unavailable = new Set<string>();
  /** Own records waiting for a place in the window, the next one last. */
  private toOpen: string[] = [];
  private openingOwn = 0;
  private pendingNotify: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private listeners = new Set<() => void>();
  people: People = read(PEOPLE_KEY, { supervisees: [], supervisors: [] });
  frameworks: Framework[] = read(FRAMEWORKS_KEY, { frameworks: [] as Framework[] }).frameworks;
  resources: Resource[] = read(RESOURCES_KEY, { resources: [] as Resource[] }).resources;
  lastPollError: string | null = null;
  version = 0;

  /** `meId`: the signed-in user, who brings a locked observation's status up to date. */
  constructor(
    private repo: Repo,
    private meId: string,
  ) {
    this.openOwn();
  }

  /** Opens (and so keeps synced on this device) the records the user is a party to; records
   *  they see as someone's line manager or as a principal social worker — possibly a whole
   *  organisation's — open only when looked at. */
  private openOwn(): void {
    const waiting = this.index.entries.filter(
      (e) => (e.local || OWN.has(e.party)) && !this.handles.has(e.url) && !this.opening.has(e.url),
    );
    // Work not yet on the server first, then the most recently changed (a record made here and
    // not yet listed by the server counts as the newest).
    const unsent = (e: IndexEntry) => Number(isChangedHere(e.url.replace(/^automerge:/, "")));
    waiting.sort((a, b) => unsent(b) - unsent(a) || b.changeSeq - a.changeSeq);
    this.toOpen = waiting.map((e) => e.url).reverse();
    this.openNextOwn();
  }

  private openNextOwn(): void {
    while (!this.closed && this.openingOwn < OPEN_WINDOW && this.toOpen.length > 0) {
      const url = this.toOpen.pop() as string;
      if (this.handles.has(url) || this.opening.has(url)) continue;
      this.openingOwn++;
      void this.open(url).finally(() => {
        this.openingOwn--;
        this.openNextOwn();
      });
    }
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify = () => {
    clearTimeout(this.pendingNotify);
    this.pendingNotify = undefined;
    this.version++;
    for (const listener of [...this.listeners]) listener();
  };

  /** Notifies within 50 ms, once for everything meanwhile: records opening or confirmed by the
   *  server arrive by the hundred, and each notification renders every list again. */
  private notifySoon(): void {
    this.pendingNotify ??= setTimeout(this.notify, 50);
  }

  private persistIndex(): void {
    if (!this.closed) localStorage.setItem(INDEX_KEY, JSON.stringify(this.index));
  }

  /** After sign-out: late answers to polls started before must not write anything back. */
  close(): void {
    this.closed = true;
    clearTimeout(this.pendingNotify);
  }

  entries(): Loaded[] {
    return this.index.entries.map((entry) => {
      const handle = this.handles.get(entry.url);
      return { entry, handle, doc: handle?.doc(), unavailable: this.unavailable.has(entry.url) };
    });
  }

  /** Whether the server has listed this record (so it holds a copy of it). */
  onServer(url: string): boolean {
    return this.index.entries.some((e) => e.url === url && !e.local);
  }

  /** Opens a document (from IndexedDB, or from the server), watching it for changes and notices. */
  open(url: string): Promise<DocHandle<RecordDoc> | undefined> {
    const known = this.handles.get(url);
    if (known) return Promise.resolve(known);
    const documentId = url.replace(/^automerge:/, "");
    if (wasRemoved(documentId) || isDiscarding(documentId)) {
      this.unavailable.add(url);
      return Promise.resolve(undefined);
    }
    let pending = this.opening.get(url);
    if (!pending) {
      pending = this.repo
        .find<RecordDoc>(url as AutomergeUrl)
        .then((handle) => {
          this.watch(handle);
          this.unavailable.delete(url);
          this.notifySoon();
          return handle;
        })
        .catch(() => {
          this.unavailable.add(url);
          this.notifySoon();
          return undefined;
        })
        .finally(() => this.opening.delete(url));
      this.opening.set(url, pending);
    }
    return pending;
  }

  private watch(handle: DocHandle<RecordDoc>): void {
    this.handles.set(handle.url, handle);
    // Keep the server's confirmed heads current for every record, not only those on screen
    // (the server may have reported them before this handle was watched).
    const confirm = () => void storedOnServer(handle as DocHandle<unknown>);
    handle.on("change", () => {
      this.save(handle);
      this.completeSignOff(handle);
      confirm();
      this.notify();
    });
    handle.on("remote-heads", () => {
      confirm();
      this.notifySoon();
    });
    this.completeSignOff(handle);
    confirm();
    handle.on("ephemeral-message", ({ message }) => {
      const notice = message as { type?: string; reason?: string; rule?: string; changeHashes?: string[] };
      if (notice?.type !== "fieldbook/rejected") return;
      if (notice.rule === "deleted") this.removeDeleted(handle);
      else if (notice.rule === "erased") void replaceErasedCopy(handle as DocHandle<unknown>);
      else addRejection(handle.documentId, notice.reason ?? "no reason given", notice.changeHashes ?? []);
    });
  }

  /** The server deleted the record: it leaves this device's lists, and its copy goes. */
  private removeDeleted(handle: DocHandle<RecordDoc>): void {
    const doc = handle.isReady() ? handle.doc() : undefined;
    const discarded = this.isMyDraft(doc);
    this.forget(handle);
    removeDeletedCopy(handle.documentId, this.describe(doc), { discarded });
    this.notify();
  }

  /** Whether this is a draft of the user's, which they alone see and may discard. */
  isMyDraft(doc: RecordDoc | undefined): boolean {
    return (
      (doc?.type === "observation" && doc.status === "draft" && doc.observerId === this.meId) ||
      (doc?.type === "group-session" && doc.status === "draft" && doc.facilitatorId === this.meId)
    );
  }

  /** Discards a draft of the user's: it leaves this device now, and the server and the user's
   *  other devices when this one is next online (see discard.ts). */
  discard(handle: DocHandle<RecordDoc>): void {
    const doc = handle.doc();
    if (!this.isMyDraft(doc)) return;
    this.forget(handle);
    discardDraft(handle.documentId, this.describe(doc));
    this.notify();
  }

  private forget(handle: DocHandle<RecordDoc>): void {
    this.index.entries = this.index.entries.filter((e) => e.url !== handle.url);
    this.persistIndex();
    this.handles.delete(handle.url);
  }

  /** The record in a few words, for messages about it once it is gone. */
  private describe(doc: RecordDoc | undefined): string {
    const mine = this.isMyDraft(doc);
    switch (doc?.type) {
      case "observation":
        return mine ? `Your draft observation of ${this.personName(doc.practitionerId)}` : `An observation of ${this.personName(doc.practitionerId)}`;
      case "group-session":
        return mine ? "Your draft group session" : `A group session run by ${this.personName(doc.facilitatorId)}`;
      case "development-plan":
        return `The development plan of ${this.personName(doc.ownerId)}`;
      case "practice-theme":
        return `A practice theme raised by ${this.personName(doc.raisedBy)}`;
      default:
        return "A record";
    }
  }

  /** Both parties signed off before either saw the other's signature, so neither set the
   *  status: a party that notices does (the one change the server accepts on a locked record). */
  private completeSignOff(handle: DocHandle<RecordDoc>): void {
    const doc = handle.isReady() ? handle.doc() : undefined;
    if (doc?.type !== "observation" || !isLocked(doc) || doc.status === "signed-off") return;
    if (doc.observerId !== this.meId && doc.practitionerId !== this.meId) return;
    this.change(handle, (d) => void ((d as Observation).status = "signed-off"));
  }

  /** Every change made on this device goes through here, so that it counts as unsent until
   *  the server confirms it. */
  change<T extends RecordDoc>(handle: DocHandle<T>, fn: (doc: T) => void): void {
    markChangedHere(handle.documentId);
    handle.change(fn);
  }

  /** Writes the document's latest changes to IndexedDB now, not when the repo gets round to it. */
  private save(handle: DocHandle<RecordDoc>): void {
    trackSave(handle.documentId, this.repo.flush([handle.documentId]));
  }

  /** Adds a document created on this device (the server lists it once it has synced). */
  addLocal(handle: DocHandle<RecordDoc>, entry: Omit<IndexEntry, "url" | "changeSeq" | "local">): void {
    markChangedHere(handle.documentId);
    this.watch(handle);
    this.save(handle);
    this.index.entries.push({ ...entry, url: handle.url, changeSeq: Number.MAX_SAFE_INTEGER, local: true });
    this.persistIndex();
    this.notify();
  }

  /** Pages through GET /v1/records from a little behind the last cursor (from 0 when access
   *  changed): on PostgreSQL, commits can become visible out of their number order, so a record
   *  numbered just below the cursor may appear after it was passed. */
  async poll(): Promise<void> {
    await sendDiscards();
    let cursor = Math.max(0, this.index.cursor - REREAD);
    let restart = false;
    const seen = new Map<string, IndexEntry>();
    for (;;) {
      const page = await api<{ records: IndexEntry[]; cursor: number; more: boolean; accessVersion: number }>(
        `/v1/records?after=${cursor}&limit=500`,
      );
      if (this.index.accessVersion !== page.accessVersion && !restart && cursor !== 0) {
        restart = true;
        cursor = 0;
        this.index.accessVersion = page.accessVersion;
        continue;
      }
      if (cursor === 0) restart = true;
      this.index.accessVersion = page.accessVersion;
      for (const record of page.records) if (!isDiscarding(record.url.replace(/^automerge:/, ""))) seen.set(record.url, record);
      cursor = page.cursor;
      if (!page.more) break;
    }
    const byUrl = new Map(this.index.entries.map((e) => [e.url, e]));
    if (restart) {
      // Everything visible was listed: keep only that, plus what this device made and has not synced yet.
      for (const [url, entry] of byUrl) if (!entry.local || seen.has(url)) byUrl.delete(url);
    }
    for (const [url, entry] of seen) byUrl.set(url, entry);
    if (this.closed) return;
    this.index = { entries: [...byUrl.values()], cursor, accessVersion: this.index.accessVersion };
    this.persistIndex();
    this.openOwn();
    this.notify();
  }

  async refreshLists(): Promise<void> {
    const [people, frameworks, resources] = await Promise.all([
      api<People>("/v1/people").catch(() => null),
      api<{ frameworks: Framework[] }>("/v1/frameworks").catch(() => null),
      api<{ resources: Resource[] }>("/v1/resources").catch(() => null),
    ]);
    if (this.closed) return;
    if (people) {
      this.people = people;
      localStorage.setItem(PEOPLE_KEY, JSON.stringify(people));
    }
    if (frameworks) {
      this.frameworks = frameworks.frameworks;
      localStorage.setItem(FRAMEWORKS_KEY, JSON.stringify(frameworks));
    }
    if (resources) {
      this.resources = resources.resources;
      localStorage.setItem(RESOURCES_KEY, JSON.stringify(resources));
    }
    this.notify();
  }

  personName(id: string | undefined): string {
    if (!id) return "someone";
    const all = [...this.people.supervisees, ...this.people.supervisors];
    return all.find((p) => p.id === id)?.name ?? id;
  }

  framework(id: string | undefined): Framework | undefined {
    return this.frameworks.find((f) => f.id === id);
  }

  resource(id: string): Resource | undefined {
    return this.resources.find((r) => r.id === id);
  }

  /** Current resources on any of these framework areas or components (an area matches
   *  the components inside it, and the other way round). */
  resourcesOn(components: string[]): Resource[] {
    return this.resources.filter((r) => !r.retired && r.components.some((c) => components.some((g) => relatedComponents(c, g))));
  }

  componentTitle(id: string): string {
    for (const framework of this.frameworks) {
      for (const area of framework.areas) {
        if (area.id === id) return `${area.number}. ${area.title}`;
        const component = area.components.find((c) => c.id === id);
        if (component) return component.title;
      }
    }
    return id;
  }
}

/** Re-renders the caller whenever the store or any open document changes. */
export function useStore(store: RecordStore): RecordStore {
  const [, setVersion] = useState(store.version);
  useEffect(() => store.subscribe(() => setVersion(store.version)), [store]);
  return store;
}
