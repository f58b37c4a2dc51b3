// A supervisor with many records on a fresh tablet, then after an offline edit (headless Chromium).
//
//   FIELDBOOK_URL=… USER_ID=sam PASSWORD=… RECORDS=200 EDITED_URL=automerge:… node tests/many-records.mjs
//
// USER_ID is the observer of exactly RECORDS draft observations on the server; EDITED_URL is one
// of them, neither among the newest 64 nor the oldest 64 (so in neither order would it be fetched
// in the first window by chance).
//
// Checks, from the frames on the sync socket (decoded as automerge-repo messages):
//  1. A fresh device fetches the user's records a window at a time: at no moment are more than
//     64 requested and not yet answered, and every record ends "Stored on the server".
//  2. Offline, EDITED_URL gets a sentence typed into its notes. Reopened online, the app sends
//     that record to the server first: it is among the first 10 records the app sends a sync
//     message for, and it ends "Stored on the server" with the others.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decode } from "cbor-x";
import { choosePin, env, launchTablet, unlock } from "./steps.mjs";

const BASE = env("FIELDBOOK_URL").replace(/\/$/, "");
const USER = { id: env("USER_ID"), password: env("PASSWORD") };
const RECORDS = Number(env("RECORDS"));
const EDITED = env("EDITED_URL").replace(/^automerge:/, "");
const WINDOW = 64;
const LONG = { timeout: 120_000 };
const log = (...args) => console.error("[many-records]", ...args);

const profile = mkdtempSync(join(tmpdir(), "fieldbook-many-records-"));

/** What the app sends and receives on the sync socket, per document. */
function spy(page) {
  const seen = { requested: new Set(), waiting: new Set(), mostWaiting: 0, syncOrder: [] };
  page.on("websocket", (ws) => {
    ws.on("framesent", ({ payload }) => {
      if (typeof payload === "string") return;
      const message = decode(Buffer.from(payload));
      if (message.type === "request") {
        seen.requested.add(message.documentId);
        seen.waiting.add(message.documentId);
        seen.mostWaiting = Math.max(seen.mostWaiting, seen.waiting.size);
      }
      if (message.type === "sync" && !seen.syncOrder.includes(message.documentId)) seen.syncOrder.push(message.documentId);
    });
    ws.on("framereceived", ({ payload }) => {
      if (typeof payload === "string") return;
      const message = decode(Buffer.from(payload));
      if (message.documentId) seen.waiting.delete(message.documentId);
    });
  });
  return seen;
}

async function launch() {
  const { context, page } = await launchTablet(profile);
  page.on("pageerror", (e) => log("page error:", e.message));
  return { context, page };
}

/** Waits until the home screen lists every record and each says "Stored on the server". */
async function allStored(page) {
  await page.waitForFunction(
    (n) => {
      const section = [...document.querySelectorAll("main section")].find(
        (s) => s.querySelector("h2")?.textContent?.trim() === "Observations you made",
      );
      const rows = [...(section?.querySelectorAll("li.record-row") ?? [])];
      return rows.length === n && rows.every((r) => r.querySelector("p.sync")?.textContent?.includes("Stored on the server"));
    },
    RECORDS,
    { ...LONG, polling: 100 },
  );
}

let context;
try {
  // 1. A fresh device.
  let page;
  ({ context, page } = await launch());
  let seen = spy(page);
  await page.goto(`${BASE}/`);
  await page.getByLabel("User id").fill(USER.id);
  await page.getByLabel("Password").fill(USER.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await choosePin(page);
  await allStored(page);
  log(`fresh device: ${seen.requested.size} records requested, at most ${seen.mostWaiting} unanswered at once`);
  assert.equal(seen.requested.size, RECORDS, "the fresh device requests every record once");
  assert.ok(seen.mostWaiting <= WINDOW, `at most ${WINDOW} records requested and unanswered at once, saw ${seen.mostWaiting}`);
  const mostWaiting = seen.mostWaiting;

  // 2. An offline edit to a record that neither order would fetch early.
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) {
      await new Promise((r) => navigator.serviceWorker.addEventListener("controllerchange", r, { once: true }));
    }
  });
  await context.setOffline(true);
  await page.getByText("Offline", { exact: true }).waitFor(LONG);
  await page.locator(`main a[href="#/observations/${EDITED}"]`).click();
  const notes = page.getByLabel("Notes", { exact: true });
  await notes.waitFor(LONG);
  await notes.focus();
  await page.keyboard.press("Control+End");
  await notes.pressSequentially(" Added offline.");
  await page.locator("main .record-state p.sync").filter({ hasText: "Saved on this device only" }).waitFor(LONG);
  await context.close();

  ({ context, page } = await launch());
  seen = spy(page);
  await page.goto(`${BASE}/`);
  await unlock(page);
  await allStored(page);
  const position = seen.syncOrder.indexOf(EDITED);
  log(`reopened: the offline-edited record was sync message ${position + 1} of ${seen.syncOrder.length}`);
  assert.ok(position >= 0, "the reopened app sends the offline-edited record");
  assert.ok(position < 10, `the offline-edited record goes first, not as sync message ${position + 1} of ${seen.syncOrder.length}`);
  await page.locator(`main a[href="#/observations/${EDITED}"]`).click();
  assert.match(await page.getByLabel("Notes", { exact: true }).inputValue(), /Added offline\.$/);
  await context.close();
  context = undefined;
  console.log(JSON.stringify({ records: RECORDS, most_waiting: mostWaiting, edited_position: position }));
} catch (e) {
  console.error(`many-records failed: ${e?.stack ?? e}`);
  process.exitCode = 1;
} finally {
  await context?.close().catch(() => undefined);
  rmSync(profile, { recursive: true, force: true });
}
