// Benchmark: a supervisor with many records opens the web app after a night offline (Chromium).
//
//   FIELDBOOK_URL=http://127.0.0.1:8080 USER_ID=sam PASSWORD=… RECORDS=300 \
//   PROFILE_DIR=/tmp/empty-profile [OFFLINE_EDITS=10] [TIMEOUT_SECONDS=900] node tests/bench-morning.mjs
//
// Needs a running server that serves the built app (clients/web/dist) at `/`, and on it a
// supervisor USER_ID (password PASSWORD) who is the observer (`observerId`) of exactly RECORDS
// observations already stored on the server, all editable by them (status "draft", no
// sign-off), and no other observation. PROFILE_DIR must be an empty (or missing) directory: it
// becomes a persistent Chromium profile, so IndexedDB, localStorage and the service worker
// survive from evening to morning, as on a real tablet.
//
// Where a record's state is read: the supervisor's home screen lists every observation they made
// ("Observations you made", one `li.record-row` each) with the record's own sync status line under
// it (ui/record-status.tsx `SyncText`: "Stored on the server", "Saved on this device only" or
// "Saving on this device…"; no line yet while the record's document is still being opened). So
// everything below is read from what the home screen shows (the DOM), polled every 50 ms; nothing
// is evaluated against the app's repo or IndexedDB.
//
// Steps and timers (wall clock in this process, performance.now()):
//   evening_seconds       A fresh persistent context. Starts right before page.goto(FIELDBOOK_URL);
//                         covers loading the app, filling in and submitting the sign-in form, the
//                         first index poll, and fetching every document from the server; stops
//                         when the home list has RECORDS rows and every one says "Stored on the
//                         server". (Untimed afterwards: the service worker takes control.)
//   (the night)           Untimed. context.setOffline(true); OFFLINE_EDITS records, spread over
//                         the list, are each opened from the home list and get a short sentence
//                         typed (key by key) at the end of their Notes; each must then say "Saved
//                         on this device only" (written to IndexedDB), and back home exactly
//                         OFFLINE_EDITS rows must say so. Then the context (the browser) is closed.
//   first_screen_seconds  The same profile relaunched, online. Starts right before
//                         page.goto(FIELDBOOK_URL); stops when the home screen ("Supervisor home")
//                         shows RECORDS rows in "Observations you made" (from the cached index;
//                         their status lines may still be coming).
//   all_stored_seconds    Same start; stops when every one of the RECORDS rows, the offline-edited
//                         ones included, says "Stored on the server" (for the edited ones that
//                         needs the server to have confirmed their new heads).
//   edited_stored_seconds Same start; stops when the OFFLINE_EDITS edited rows all say so (polled
//                         with the above, so at most all_stored_seconds).
// If the morning app shows the sign-in screen at any point (at once, or after it has shown the
// home screen from the cached session and the server then refused the refresh token), the script
// signs in (that time is inside whichever morning timer is running) and reports
// signed_in_again: true.
// Also on stderr, not in the JSON: a timeline of what the home screen shows (at most once a
// second, when it changes), and when the offline-edited records were all stored.
//
// Output: exactly one JSON line on stdout
//   {records, offline_edits, evening_seconds, first_screen_seconds, all_stored_seconds,
//    edited_stored_seconds, signed_in_again}
// Progress and diagnostics go to stderr. Any failure (timeout, a change refused by the server,
// a wrong number of rows, a page error) exits 1 with a message on stderr.
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { choosePin, launchTablet, unlock } from "./steps.mjs";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") throw new Error(`set ${name}`);
  return value;
};

const log = (...args) => console.error("[bench-morning]", ...args);

let BASE, USER, RECORDS, PROFILE_DIR, OFFLINE_EDITS, TIMEOUT_MS;
try {
  BASE = env("FIELDBOOK_URL").replace(/\/$/, "");
  USER = { id: env("USER_ID"), password: env("PASSWORD") };
  RECORDS = Number(env("RECORDS"));
  PROFILE_DIR = env("PROFILE_DIR");
  OFFLINE_EDITS = Number(env("OFFLINE_EDITS", "10"));
  TIMEOUT_MS = Number(env("TIMEOUT_SECONDS", "900")) * 1000;
  if (!Number.isInteger(RECORDS) || RECORDS < 1) throw new Error("RECORDS must be a positive integer");
  if (!Number.isInteger(OFFLINE_EDITS) || OFFLINE_EDITS < 0 || OFFLINE_EDITS > RECORDS) {
    throw new Error("OFFLINE_EDITS must be an integer from 0 to RECORDS");
  }
  if (!(TIMEOUT_MS > 0)) throw new Error("TIMEOUT_SECONDS must be a positive number");
  if (existsSync(PROFILE_DIR) && readdirSync(PROFILE_DIR).length > 0) {
    throw new Error(`PROFILE_DIR ${PROFILE_DIR} is not empty: the evening must start from a fresh profile`);
  }
  mkdirSync(PROFILE_DIR, { recursive: true });
} catch (e) {
  console.error(`bench-morning: ${e.message}`);
  process.exit(1);
}

const LONG = { timeout: 60_000 };
const STORED = "Stored on the server";
const DEVICE_ONLY = "Saved on this device only";
const EDIT_TEXT = " Added offline in the evening.";

/** Every change the server refused (a "fieldbook/rejected" notice on the sync socket). */
const refusals = [];
/** Uncaught errors in the app. */
const pageErrors = [];

async function launch() {
  const { context, page } = await launchTablet(PROFILE_DIR);
  page.on("pageerror", (e) => {
    pageErrors.push(e.message);
    log("page error:", e.message);
  });
  page.on("console", (m) => {
    // The sync URL carries the access token: never print it.
    if (m.type() === "error") log("console:", m.text().replace(/token=[^&'" ]+/g, "token=…"));
  });
  page.on("websocket", (ws) => {
    ws.on("framereceived", (frame) => {
      if (Buffer.from(frame.payload).includes("fieldbook/rejected")) refusals.push(Buffer.from(frame.payload).toString("latin1"));
    });
  });
  return { context, page };
}

/** What the home screen shows, read from the DOM: the screen's title and, in "Observations you
 *  made", how many rows there are and what each row's sync status line says. Runs in the page. */
function readHome() {
  const title = document.querySelector("main h1")?.textContent?.trim() ?? "";
  const section = [...document.querySelectorAll("main section")].find(
    (s) => s.querySelector("h2")?.textContent?.trim() === "Observations you made",
  );
  const rows = section ? [...section.querySelectorAll("li.record-row")] : [];
  const counts = { title, rows: rows.length, stored: 0, deviceOnly: 0, saving: 0, noStatus: 0, storedHrefs: [] };
  for (const row of rows) {
    const text = row.querySelector("p.sync")?.textContent ?? "";
    if (!text) counts.noStatus++;
    else if (text.includes("Stored on the server")) {
      counts.stored++;
      counts.storedHrefs.push(row.querySelector("a")?.getAttribute("href"));
    } else if (text.includes("Saving on this device")) counts.saving++;
    else counts.deviceOnly++;
  }
  return counts;
}

const brief = (h) => `title=${JSON.stringify(h.title)} rows=${h.rows} stored=${h.stored} device-only=${h.deviceOnly} saving=${h.saving} no-status=${h.noStatus}`;

/** Polls the home screen every 50 ms until `done(home)`; `onSignIn` is called (once) if the
 *  sign-in screen shows instead. Fails on a refused change, or at the deadline. */
async function pollHome(page, what, done, { deadline, onSignIn, since } = {}) {
  let lastLog = 0;
  let home;
  let lastSeen = "";
  for (;;) {
    if (refusals.length > 0) throw new Error(`the server refused a change: ${refusals[0].replace(/[^\x20-\x7e]+/g, " ")}`);
    home = await page.evaluate(readHome).catch(() => null); // null while navigating
    if (home?.title === "Sign in to Fieldbook" && onSignIn) {
      await onSignIn();
      onSignIn = undefined;
      continue;
    }
    if (home && done(home)) return home;
    const now = performance.now();
    if (now > deadline) throw new Error(`timed out waiting for ${what}: ${home ? brief(home) : "no page"}`);
    // Progress: what the screen shows, when it changes (at most once a second).
    const seen = home ? brief(home) : "";
    if (home && seen !== lastSeen && now - lastLog > 1_000) {
      lastLog = now;
      lastSeen = seen;
      log(`${since === undefined ? "" : `+${seconds(since, now)} s `}waiting for ${what}: ${seen}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function signIn(page) {
  await page.getByLabel("User id").fill(USER.id);
  await page.getByLabel("Password").fill(USER.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await choosePin(page);
}

const seconds = (from, to) => Math.round((to - from) / 10) / 100;
const allStored = (h) => h.title === "Supervisor home" && h.rows === RECORDS && h.stored === RECORDS;

let context;
let exitCode = 0;
try {
  // ---- Evening: a fresh profile signs in and downloads everything.
  log(`evening: signing in as ${USER.id} with a fresh profile in ${PROFILE_DIR}`);
  ({ context } = await launch());
  let page = context.pages()[0];
  const eveningStart = performance.now();
  await page.goto(`${BASE}/`);
  await page.getByRole("heading", { name: "Sign in to Fieldbook" }).waitFor(LONG);
  await signIn(page);
  let home = await pollHome(page, `all ${RECORDS} records stored (evening)`, (h) => allStored(h) || h.rows > RECORDS, {
    deadline: eveningStart + TIMEOUT_MS,
    since: eveningStart,
  });
  const eveningEnd = performance.now();
  if (home.rows !== RECORDS) {
    throw new Error(`the home screen lists ${home.rows} observations made by ${USER.id}, but RECORDS is ${RECORDS}`);
  }
  const evening_seconds = seconds(eveningStart, eveningEnd);
  log(`evening: ${RECORDS} records stored on the server after ${evening_seconds} s`);

  // Untimed: let the service worker take control (the app shell is then cached for the morning),
  // and let the first poll's lists (people, frameworks) land.
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) {
      await new Promise((r) => navigator.serviceWorker.addEventListener("controllerchange", r, { once: true }));
    }
  });
  await page.waitForFunction(() => localStorage.getItem("fb.frameworks") && localStorage.getItem("fb.people"), null, LONG);

  // ---- The night: offline, a few edits through the UI, then the browser closes.
  await context.setOffline(true);
  await page.getByText("Offline", { exact: true }).waitFor(LONG);
  const rowLinks = page.getByRole("region", { name: "Observations you made" }).locator("li.record-row > a");
  const hrefs = await rowLinks.evaluateAll((links) => links.map((a) => a.getAttribute("href")));
  const step = OFFLINE_EDITS > 0 ? Math.floor(RECORDS / OFFLINE_EDITS) : 0;
  const edited = [];
  for (let i = 0; i < OFFLINE_EDITS; i++) {
    const href = hrefs[i * step];
    // As a supervisor would: tap the record in the list, type at the end of the notes, go back.
    await page.locator(`main a[href="${href}"]`).click();
    await page.getByRole("heading", { name: /^Observation of/ }).waitFor(LONG);
    const notes = page.getByLabel("Notes", { exact: true });
    await notes.waitFor(LONG);
    const before = await notes.inputValue();
    await notes.focus();
    await page.keyboard.press("Control+End");
    await notes.pressSequentially(EDIT_TEXT);
    if ((await notes.inputValue()) !== before + EDIT_TEXT) {
      throw new Error(`offline edit ${i + 1}: the notes of ${href} did not take the typed text`);
    }
    // Written to IndexedDB: "Saved on this device only", no longer "Saving on this device…".
    await page.locator("main .record-state p.sync").filter({ hasText: DEVICE_ONLY }).waitFor(LONG);
    edited.push(href);
    await page.getByRole("link", { name: "Back to home" }).click();
    await page.getByRole("heading", { name: "Supervisor home" }).waitFor(LONG);
  }
  home = await pollHome(
    page,
    `${OFFLINE_EDITS} rows saved on this device only`,
    (h) => h.rows === RECORDS && h.deviceOnly === OFFLINE_EDITS && h.stored === RECORDS - OFFLINE_EDITS,
    { deadline: performance.now() + 60_000 },
  );
  if (edited.some((href) => home.storedHrefs.includes(href))) throw new Error("an offline-edited record says it is stored on the server");
  log(`night: ${OFFLINE_EDITS} records edited offline (${brief(home)}); closing the browser`);
  await context.close();
  context = undefined;

  // ---- Morning: the same profile, online again.
  ({ context } = await launch());
  page = context.pages()[0];
  let signed_in_again = false;
  const onSignIn = async () => {
    log("morning: the app asks to sign in again");
    signed_in_again = true;
    await signIn(page);
  };
  const morningStart = performance.now();
  await page.goto(`${BASE}/`);
  await unlock(page);
  home = await pollHome(page, `the home screen with ${RECORDS} rows (morning)`, (h) => h.title === "Supervisor home" && h.rows >= RECORDS, {
    deadline: morningStart + TIMEOUT_MS,
    onSignIn,
    since: morningStart,
  });
  const firstScreen = performance.now();
  log(`morning: first screen after ${seconds(morningStart, firstScreen)} s (${brief(home)})`);
  let editedStoredAt = OFFLINE_EDITS === 0 ? firstScreen : undefined;
  home = await pollHome(
    page,
    `all ${RECORDS} records stored (morning)`,
    (h) => {
      if (editedStoredAt === undefined && edited.every((href) => h.storedHrefs.includes(href))) {
        editedStoredAt = performance.now();
        log(`morning: the ${OFFLINE_EDITS} offline-edited records stored after ${seconds(morningStart, editedStoredAt)} s`);
      }
      return allStored(h) || h.rows > RECORDS;
    },
    { deadline: morningStart + TIMEOUT_MS, onSignIn: signed_in_again ? undefined : onSignIn, since: morningStart },
  );
  const allStoredAt = performance.now();
  if (home.rows !== RECORDS) throw new Error(`the morning home screen lists ${home.rows} observations, expected ${RECORDS}`);
  if (!edited.every((href) => home.storedHrefs.includes(href))) throw new Error("an offline-edited record is missing from the stored rows");
  if (pageErrors.length > 0) throw new Error(`the app threw: ${pageErrors[0]}`);
  await context.close();
  context = undefined;

  console.log(
    JSON.stringify({
      records: RECORDS,
      offline_edits: OFFLINE_EDITS,
      evening_seconds,
      first_screen_seconds: seconds(morningStart, firstScreen),
      all_stored_seconds: seconds(morningStart, allStoredAt),
      edited_stored_seconds: seconds(morningStart, editedStoredAt),
      signed_in_again,
    }),
  );
} catch (e) {
  exitCode = 1;
  console.error(`bench-morning failed: ${e?.stack ?? e}`);
} finally {
  await context?.close().catch(() => undefined);
}
process.exit(exitCode);
