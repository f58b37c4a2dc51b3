// Steps the browser tests share: signing in (which asks for a PIN for the device), unlocking
// after a reload, and reading what the app keeps encrypted.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const axeSource = createRequire(import.meta.url)("axe-core").source;
export const PIN = "482913";

/** An environment variable the test needs. */
export function env(name) {
  const value = process.env[name];
  if (value === undefined) throw new Error(`set ${name}`);
  return value;
}
const LONG = { timeout: 60_000 };

/** A tablet-sized Chromium on a persistent profile in `dir`, so IndexedDB, localStorage and the
 *  service worker survive a restart, as on a real tablet; returns its context and first page. */
export async function launchTablet(dir) {
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu"],
    viewport: { width: 820, height: 1180 },
    locale: "en-GB",
    timezoneId: "Europe/London",
  });
  return { context, page: context.pages()[0] ?? (await context.newPage()) };
}

/** Chooses the device's PIN, as the app asks after every password sign-in. */
export async function choosePin(page, pin = PIN) {
  await page.getByRole("heading", { name: "Choose a PIN for this device" }).waitFor(LONG);
  await page.getByLabel("PIN or passphrase").fill(pin);
  await page.getByLabel("The same again").fill(pin);
  await page.getByRole("button", { name: "Use this PIN" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor(LONG);
}

/** Unlocks the app with its PIN (after a reload or a restart). */
export async function unlock(page, pin = PIN) {
  await page.getByRole("heading", { name: "Unlock Fieldbook" }).waitFor(LONG);
  await page.getByLabel("PIN", { exact: true }).fill(pin);
  await page.getByRole("button", { name: "Unlock" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor(LONG);
}

/** Signs in with the user id and password form, then chooses the PIN. */
export async function signIn(page, base, user) {
  await page.goto(`${base}/`);
  await page.getByLabel("User id").fill(user.id);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await choosePin(page);
}

/** The records store as this browser's IndexedDB holds it: [{ key, data }], values as stored
 *  (encrypted), sync states included. `prefix`: only keys starting with it (a document id). */
export const rawRecordStore = (page, prefix = []) =>
  page.evaluate(async (prefix) => {
    const db = await new Promise((resolve, reject) => {
      const request = indexedDB.open("fieldbook");
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    try {
      if (!db.objectStoreNames.contains("documents")) return [];
      const rows = await new Promise((resolve, reject) => {
        const range = IDBKeyRange.bound(prefix, [...prefix, "\uffff"]);
        const request = db.transaction("documents").objectStore("documents").getAll(range);
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      return rows.map((r) => ({ key: r.key, data: Array.from(r.binary) }));
    } finally {
      db.close();
    }
  }, prefix);

const subtle = globalThis.crypto.subtle;
const encoder = new TextEncoder();
const fromBase64 = (text) => Uint8Array.from(Buffer.from(text, "base64"));

async function unseal(key, sealed, what) {
  if (sealed[0] !== 1) throw new Error("not sealed");
  const iv = sealed.slice(1, 13);
  return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(what) }, key, sealed.slice(13)));
}

/** The browser's data key, unwrapped with the PIN from outside the app. */
async function dataKeyOf(page, pin) {
  const vault = JSON.parse(await page.evaluate(() => localStorage.getItem("fb.vault")));
  const material = await subtle.importKey("raw", encoder.encode(pin), "PBKDF2", false, ["deriveKey"]);
  const pinKey = await subtle.deriveKey(
    { name: "PBKDF2", salt: fromBase64(vault.salt), iterations: vault.iterations, hash: "SHA-256" },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["decrypt"],
  );
  const raw = await unseal(pinKey, fromBase64(vault.byPin), "data key by PIN");
  return subtle.importKey("raw", raw, "AES-GCM", false, ["decrypt"]);
}

/** A value the app keeps sealed in localStorage (clients/web/src/sealed-local.ts), decrypted. */
export async function readSealedLocal(page, key, pin = PIN) {
  const stored = await page.evaluate((k) => localStorage.getItem(k), key);
  if (stored === null) return null;
  assert.equal(fromBase64(stored)[0], 1, `${key} is sealed`);
  return JSON.parse(new TextDecoder().decode(await unseal(await dataKeyOf(page, pin), fromBase64(stored), key)));
}

/** Decrypts the browser's records store from outside the app, as someone who knows the PIN
 *  could (the format is the app's, see clients/web/src/vault.ts): checks that what is stored
 *  is sealed, and what it holds. Returns the chunks' plaintext, sync states left out. */
export async function readRecordStore(page, prefix = [], pin = PIN) {
  const dataKey = await dataKeyOf(page, pin);
  const chunks = [];
  for (const { key, data } of await rawRecordStore(page, prefix)) {
    const plain = await unseal(dataKey, Uint8Array.from(data), `record store:${key.join("/")}`);
    if (key[1] !== "sync-state") chunks.push(plain);
  }
  return chunks;
}

/** Fails on any serious or critical axe-core violation on the page as it is. */
export async function checkAccessibility(page, screen) {
  // Evaluated by the test driver (as from devtools), so the app's strict CSP stays on.
  await page.evaluate(axeSource);
  const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of bad) {
    console.error(`axe (${screen}): ${v.impact} ${v.id}: ${v.help}`);
    for (const node of v.nodes) console.error(`   ${node.target.join(" ")}: ${node.failureSummary?.replace(/\n/g, " ")}`);
  }
  assert.equal(bad.length, 0, `${screen}: ${bad.length} serious or critical accessibility violations`);
}
