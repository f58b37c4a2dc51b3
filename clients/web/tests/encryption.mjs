// Browser test of encryption at rest, on a browser profile kept on disk.
//
//   FIELDBOOK_URL=… SUPERVISOR_ID=sam SUPERVISOR_PASSWORD=… node tests/encryption.mjs
//
// Needs a server where the supervisor supervises "Pat Reid". The supervisor signs in, records an
// observation offline and reloads offline: the app asks for the PIN, refuses a wrong one, and
// shows the record after the right one. With the browser closed, no byte of the profile's files
// holds the narrative (in UTF-8 or UTF-16), though they do hold what is kept in clear. Reopened,
// wrong PINs are throttled, and after too many the app deletes its data.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { env, PIN, rawRecordStore, readRecordStore, signIn, unlock } from "./steps.mjs";

const BASE = env("FIELDBOOK_URL").replace(/\/$/, "");
const SUPERVISOR = { id: env("SUPERVISOR_ID"), password: env("SUPERVISOR_PASSWORD") };
const LONG = { timeout: 60_000 };
const NOTES = "Quietly tender QZXNOTES moment with the baby";
const FEEDBACK = "Lovely QZXFEEDBACK pacing";
const log = (...args) => console.error("[encryption]", ...args);

const profile = mkdtempSync(join(tmpdir(), "fieldbook-profile-"));
const launch = () =>
  chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu"],
    viewport: { width: 820, height: 1180 },
    locale: "en-GB",
  });

/** Every file of the profile that holds `text`, as UTF-8 or UTF-16. */
function filesHolding(text) {
  const needles = [Buffer.from(text, "utf8"), Buffer.from(text, "utf16le")];
  const found = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const stat = statSync(path, { throwIfNoEntry: false });
      if (!stat) continue;
      if (stat.isDirectory()) walk(path);
      else if (stat.isFile() && needles.some((n) => readFileSync(path).includes(n))) found.push(path);
    }
  };
  walk(profile);
  return found;
}

let failed = false;
let context;
try {
  context = await launch();
  let page = context.pages()[0] ?? (await context.newPage());
  await signIn(page, BASE, SUPERVISOR);
  await page.getByRole("button", { name: "New observation" }).and(page.locator(":enabled")).waitFor(LONG);

  // Offline: record an observation.
  await context.setOffline(true);
  await page.getByRole("button", { name: "New observation" }).click();
  await page.getByLabel("Practitioner observed").selectOption({ label: "Pat Reid" });
  await page.getByRole("button", { name: "Start observation" }).click();
  await page.getByRole("heading", { name: /Observation of/ }).waitFor(LONG);
  const documentId = decodeURIComponent(new URL(page.url()).hash.replace("#/observations/", ""));
  // Chromium keeps form state (typed text) in its session-restore files unless a field is
  // autocomplete=off; the scan below found it there once.
  assert.equal(await page.getByLabel("Notes", { exact: true }).getAttribute("autocomplete"), "off");
  await page.getByLabel("Notes", { exact: true }).fill(NOTES);
  await page.getByLabel("Feedback to the practitioner").fill(FEEDBACK);
  await page.getByText("Saved on this device only").first().waitFor(LONG);

  // What is stored is sealed: readable only with the key the PIN unwraps.
  const stored = await rawRecordStore(page, [documentId]);
  assert.ok(stored.length > 0, "the record is stored in IndexedDB");
  assert.ok(stored.every(({ data }) => data[0] === 1), "every stored value is sealed");
  const plain = (await readRecordStore(page, [documentId])).map((c) => Buffer.from(c));
  assert.ok(plain.some((c) => c.includes(Buffer.from("QZXNOTES"))), "decrypted with the PIN, the store holds the notes");

  // A reload offline asks for the PIN; a wrong one is refused; the right one shows the record.
  await page.reload();
  await page.getByRole("heading", { name: "Unlock Fieldbook" }).waitFor(LONG);
  await page.getByLabel("PIN", { exact: true }).fill("000000");
  await page.getByRole("button", { name: "Unlock" }).click();
  await page.getByText("That PIN is not right. 9 tries left").waitFor(LONG);
  await unlock(page);
  await page.getByRole("heading", { name: /Observation of/ }).waitFor(LONG);
  assert.equal(await page.getByLabel("Notes", { exact: true }).inputValue(), NOTES);
  log("a reload offline asked for the PIN, then showed the record");

  // With the browser closed, the profile's files hold nothing of the narrative.
  await context.close();
  context = undefined;
  assert.ok(filesHolding("Pat Reid").length > 0, "the scan finds what is kept in clear (the people list)");
  for (const text of ["QZXNOTES", "QZXFEEDBACK"]) {
    assert.deepEqual(filesHolding(text), [], `no file of the profile holds ${text}`);
  }
  log("the profile's files hold no narrative");

  // Reopened: wrong PINs are throttled, and too many delete the local data.
  context = await launch();
  page = context.pages()[0] ?? (await context.newPage());
  await context.setOffline(true);
  await page.goto(`${BASE}/`);
  for (let attempt = 1; attempt <= 10; attempt++) {
    await page.getByRole("heading", { name: "Unlock Fieldbook" }).waitFor(LONG);
    await page.getByLabel("PIN", { exact: true }).fill(`99999${attempt}`);
    await page.getByRole("button", { name: "Unlock" }).click();
    if (attempt === 10) break;
    const error = page.locator(".error", { hasText: `${10 - attempt} ${10 - attempt === 1 ? "try" : "tries"} left` });
    await error.waitFor(LONG);
    const wait = /wait (\d+) seconds/i.exec(await error.innerText());
    if (attempt === 3) {
      assert.ok(wait, "after three wrong PINs, the next try must wait");
      // Even the right PIN is not tried while it must wait.
      await page.getByLabel("PIN", { exact: true }).fill(PIN);
      await page.getByRole("button", { name: "Unlock" }).click();
      await page.locator(".error", { hasText: "Too soon" }).waitFor(LONG);
      await page.getByRole("heading", { name: "Unlock Fieldbook" }).waitFor(LONG);
    }
    if (wait) await page.waitForTimeout(Number(wait[1]) * 1000 + 200);
  }
  await page.getByText("Too many wrong PINs, so Fieldbook deleted its data from this device").waitFor(LONG);
  await page.getByRole("heading", { name: "Sign in to Fieldbook" }).waitFor(LONG);
  assert.deepEqual(await rawRecordStore(page), [], "the local records are gone");
  assert.equal(await page.evaluate(() => localStorage.getItem("fb.vault")), null, "and so is the vault");
  log("too many wrong PINs wiped the local data");
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await context?.close().catch(() => undefined);
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
