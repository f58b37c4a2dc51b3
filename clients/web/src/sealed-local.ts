// JSON kept in localStorage sealed with the data key (see vault.ts), for what may hold
// narrative: work kept aside after an erasure, the server's refusals (which may quote what was
// sent). Read once the vault is unlocked (`unsealAll`), then served from memory; every change
// is written sealed.
import { sealText, unsealText } from "./vault";

export class SealedJson<T> {
  private value: T;
  private listeners = new Set<() => void>();
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private key: string,
    private empty: T,
  ) {
    this.value = empty;
    all.push(this as SealedJson<unknown>);
  }

  get(): T {
    return this.value;
  }

  /** Keeps `value` now (in memory) and sealed in localStorage; resolves once written. */
  set(value: T): Promise<void> {
    this.value = value;
    for (const listener of [...this.listeners]) listener();
    const text = JSON.stringify(value);
    this.writing = this.writing
      .then(async () => localStorage.setItem(this.key, await sealText(text, this.key)))
      .catch((e) => console.warn(`keeping ${this.key}`, e));
    return this.writing;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async unseal(): Promise<void> {
    const stored = localStorage.getItem(this.key);
    let value = this.empty;
    let legacy = false;
    if (stored) {
      try {
        value = JSON.parse(await unsealText(stored, this.key)) as T;
      } catch {
        // Kept in clear before sealing was on: sealed now. Anything else (sealed with another
        // key) is not this person's to read.
        try {
          value = JSON.parse(stored) as T;
          legacy = true;
        } catch {
          value = this.empty;
        }
      }
    }
    if (legacy) await this.set(value);
    this.value = value;
    for (const listener of [...this.listeners]) listener();
  }

  /** Forgets the value in memory (signed out): nothing of it stays readable. */
  forget(): void {
    this.value = this.empty;
  }
}

const all: SealedJson<unknown>[] = [];

/** Reads every sealed value, once the vault is unlocked. */
export async function unsealAll(): Promise<void> {
  await Promise.all(all.map((sealed) => sealed.unseal()));
}

/** Forgets every sealed value held in memory. */
export function forgetAll(): void {
  for (const sealed of all) sealed.forget();
}
