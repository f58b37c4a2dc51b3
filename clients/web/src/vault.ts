// Encryption at rest. The key that encrypts this browser's copies of records and its session
// (the data key) is random, made at the first sign-in here, and kept only wrapped: under a key
// derived from the user's PIN (PBKDF2-SHA-256), to unlock offline, and under the device key the
// server hands out at each password sign-in (never on a token refresh). Unwrapped, it lives in
// memory only, as a non-extractable CryptoKey, until a reload or sign-out. Wrong PINs are
// throttled, and after MAX_TRIES the caller wipes the local data.
//
// Sealed values are [1, iv (12 bytes), AES-GCM ciphertext], bound to what they are
// (additional data), so one cannot be swapped for another.

const VAULT_KEY = "fb.vault";
const ITERATIONS = 600_000;
const VERSION = 1;
/** Wrong PINs in a row before the local data is wiped. */
export const MAX_TRIES = 10;
/** Wrong PINs allowed before each further try must wait (1 s, then a second more each time). */
const FREE_TRIES = 3;
export const MIN_PIN_LENGTH = 6;

interface StoredVault {
  userId: string;
  salt: string;
  iterations: number;
  /** The data key, sealed under the PIN's key and under the device key. */
  byPin: string;
  byDevice: string;
  failures: number;
  retryAt: number;
}

/** `early`: not tried, since the last wrong PIN's wait is not over. */
export type Unlock = { ok: true } | { ok: false; triesLeft: number; retryAt: number; early: boolean } | { ok: false; wipe: true };

let dataKey: CryptoKey | null = null;

const encoder = new TextEncoder();
const toBase64 = (bytes: Uint8Array) => btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""));
const fromBase64 = (text: string) => {
  const plain = text.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(plain + "=".repeat((4 - (plain.length % 4)) % 4)), (c) => c.charCodeAt(0));
};

function read(): StoredVault | null {
  try {
    const raw = localStorage.getItem(VAULT_KEY);
    return raw ? (JSON.parse(raw) as StoredVault) : null;
  } catch {
    return null;
  }
}

function write(vault: StoredVault): void {
  localStorage.setItem(VAULT_KEY, JSON.stringify(vault));
}

/** Whose data key this browser keeps, if anyone's. */
export function vaultOwner(): string | null {
  return read()?.userId ?? null;
}

/** Forgets the data key (the vault stays, locked). */
export function lock(): void {
  dataKey = null;
}

async function aesKey(raw: Uint8Array, usages: KeyUsage[] = ["encrypt", "decrypt"]): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw as BufferSource, "AES-GCM", false, usages);
}

async function pinKey(pin: string, salt: Uint8Array, iterations: number): Promise<CryptoKey> {
  const material = await crypto.subtle.importKey("raw", encoder.encode(pin), "PBKDF2", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "PBKDF2", salt: salt as BufferSource, iterations, hash: "SHA-256" },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** Encrypts `plain` under `key`, bound to `what`. */
export async function seal(key: CryptoKey, plain: Uint8Array, what: string): Promise<Uint8Array> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const cipher = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(what) }, key, plain as BufferSource),
  );
  const out = new Uint8Array(1 + iv.length + cipher.length);
  out[0] = VERSION;
  out.set(iv, 1);
  out.set(cipher, 1 + iv.length);
  return out;
}

/** Decrypts what `seal` made; throws if the key or `what` is not the one it was sealed with. */
export async function unseal(key: CryptoKey, sealed: Uint8Array, what: string): Promise<Uint8Array> {
  if (sealed[0] !== VERSION) throw new Error("not sealed by this version");
  const iv = sealed.slice(1, 13);
  return new Uint8Array(
    await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(what) }, key, sealed.slice(13)),
  );
}

/** `text` sealed with the data key, as base64 (for localStorage). */
export async function sealText(text: string, what: string): Promise<string> {
  return toBase64(await seal(currentKey(), encoder.encode(text), what));
}

/** What `sealText` sealed. */
export async function unsealText(sealed: string, what: string): Promise<string> {
  return new TextDecoder().decode(await unseal(currentKey(), fromBase64(sealed), what));
}

/** Whether `bytes` were made by `seal` (records stored before encryption was on are not). */
export function isSealed(bytes: Uint8Array): boolean {
  return bytes[0] === VERSION;
}

/** The data key; throws while locked (nothing is read or written then). */
export function currentKey(): CryptoKey {
  if (!dataKey) throw new Error("the local store is locked");
  return dataKey;
}

async function use(raw: Uint8Array): Promise<void> {
  dataKey = await aesKey(raw);
  raw.fill(0);
}

async function wrapAll(userId: string, raw: Uint8Array, pin: string, deviceKey: string, failures = 0): Promise<void> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const byPin = await seal(await pinKey(pin, salt, ITERATIONS), raw, "data key by PIN");
  const byDevice = await seal(await aesKey(fromBase64(deviceKey)), raw, "data key by device key");
  write({
    userId,
    salt: toBase64(salt),
    iterations: ITERATIONS,
    byPin: toBase64(byPin),
    byDevice: toBase64(byDevice),
    failures,
    retryAt: 0,
  });
}

/** After a password sign-in: unlocks the vault with the device key the server gave (or makes a
 *  new one for `userId`), and wraps the data key under `pin` from now on. */
export async function openWithDeviceKey(userId: string, deviceKey: string, pin: string): Promise<void> {
  const vault = read();
  let raw: Uint8Array;
  if (vault && vault.userId === userId) {
    raw = await unseal(await aesKey(fromBase64(deviceKey)), fromBase64(vault.byDevice), "data key by device key");
  } else {
    raw = crypto.getRandomValues(new Uint8Array(32));
  }
  await wrapAll(userId, raw, pin, deviceKey);
  await use(raw);
}

/** Offline (or after a reload): unlocks with the PIN. */
export async function unlockWithPin(pin: string): Promise<Unlock> {
  const vault = read();
  if (!vault) return { ok: false, wipe: true };
  if (Date.now() < vault.retryAt) return { ok: false, triesLeft: MAX_TRIES - vault.failures, retryAt: vault.retryAt, early: true };
  let raw: Uint8Array;
  try {
    const key = await pinKey(pin, fromBase64(vault.salt), vault.iterations);
    raw = await unseal(key, fromBase64(vault.byPin), "data key by PIN");
  } catch {
    vault.failures += 1;
    if (vault.failures >= MAX_TRIES) {
      // The key goes at once, before the (slower) wipe of the data: no more tries.
      localStorage.removeItem(VAULT_KEY);
      return { ok: false, wipe: true };
    }
    vault.retryAt = vault.failures >= FREE_TRIES ? Date.now() + 1000 * (vault.failures - FREE_TRIES + 1) : 0;
    write(vault);
    return { ok: false, triesLeft: MAX_TRIES - vault.failures, retryAt: vault.retryAt, early: false };
  }
  vault.failures = 0;
  vault.retryAt = 0;
  write(vault);
  await use(raw);
  return { ok: true };
}
