// End-to-end browser test of the Fieldbook web app against a running server.
//
//   FIELDBOOK_URL=http://127.0.0.1:8080 SUPERVISOR_ID=sam SUPERVISOR_PASSWORD=… \
//   PRACTITIONER_ID=pat PRACTITIONER_PASSWORD=… ADMIN_TOKEN=… ARTIFACTS_DIR=/tmp/shots node tests/e2e.mjs
//
// It needs a server with a fresh database holding just those users (the supervisor
// supervising the practitioner, no records yet) and an admin's access token, as
// tests/tests/web_app.rs sets up; it checks that it starts from there and fails otherwise.
// Every browser context is a fresh profile (no storage, no service worker). Every step runs
// every time; UPDATE_DOCS_SCREENSHOTS=1 only also copies the screenshots to docs/.
//
// A supervisor records and shares an observation offline, reloads offline, comes back online
// and sees it stored on the server; the practitioner reflects and signs off; the supervisor
// signs off; both see the record locked. Every screen is checked with axe-core (serious and
// critical violations fail) and photographed at phone and tablet sizes.
// Prints OBSERVATION_URL=automerge:… for the calling test.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { checkAccessibility, choosePin, signIn as signInWithPin, unlock } from "./steps.mjs";

const here = dirname(fileURLToPath(import.meta.url));

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`set ${name}`);
  return value;
};
const BASE = env("FIELDBOOK_URL").replace(/\/$/, "");
const SUPERVISOR = { id: env("SUPERVISOR_ID"), password: env("SUPERVISOR_PASSWORD") };
const PRACTITIONER = { id: env("PRACTITIONER_ID"), password: env("PRACTITIONER_PASSWORD") };
const ARTIFACTS = resolve(env("ARTIFACTS_DIR", join(here, "..", "test-artifacts")));
const DOCS = resolve(here, "../../../docs/screenshots");
const UPDATE_DOCS = process.env.UPDATE_DOCS_SCREENSHOTS === "1";
// An admin's access token, to revoke the supervisor's browser at the end.
const ADMIN_TOKEN = env("ADMIN_TOKEN");
const SIZES = { phone: { width: 390, height: 844 }, tablet: { width: 820, height: 1180 } };
const LONG = { timeout: 60_000 };

mkdirSync(ARTIFACTS, { recursive: true });
// Screenshots left by an earlier run must not pass for this run's.
for (const file of readdirSync(ARTIFACTS)) if (file.endsWith(".png")) rmSync(join(ARTIFACTS, file));
if (UPDATE_DOCS) mkdirSync(DOCS, { recursive: true });

const log = (...args) => console.error("[e2e]", ...args);

/** axe, then a full-page screenshot at each size (the page returns to its own size after). */
async function screen(page, name) {
  await checkAccessibility(page, name);
  const own = page.viewportSize();
  for (const [size, viewport] of Object.entries(SIZES)) {
    await page.setViewportSize(viewport);
    await page.waitForTimeout(150);
    const file = `${name}-${size}.png`;
    await page.screenshot({ path: join(ARTIFACTS, file), fullPage: true });
    if (UPDATE_DOCS) copyFileSync(join(ARTIFACTS, file), join(DOCS, file));
  }
  if (own) await page.setViewportSize(own);
  log(`screen ${name} checked`);
}

/** Every page opened, to show what each one had on screen and in store if a step fails. */
const pages = [];
/** The app must work under the server's Content-Security-Policy: any violation fails the test. */
const cspViolations = [];
/** Sync sessions renewed in-band, and sessions the server ended because a token expired. */
const sessions = { renewals: 0, expired: 0 };

/** The Fieldbook data a page's browser profile holds: IndexedDB databases and localStorage keys. */
const localData = (page) =>
  page.evaluate(async () => ({
    databases: (await indexedDB.databases()).map((d) => d.name).filter((n) => n?.startsWith("fieldbook")),
    localStorage: Object.keys(localStorage).filter((k) => k.startsWith("fb.")),
  }));

/** A page in a new browser context: a fresh profile, with nothing stored and no service worker. */
async function newPage(browser, viewport) {
  const context = await browser.newContext({ viewport, locale: "en-GB", timezoneId: "Europe/London" });
  assert.equal(context.serviceWorkers().length, 0, "a new browser context has no service worker");
  const page = await context.newPage();
  pages.push(page);
  page.on("pageerror", (e) => log("page error:", e.message));
  // The server is started with short-lived access tokens: the app must renew its sync
  // session in-band, so the server never has to end one for an expired token.
  page.on("websocket", (ws) => {
    const has = (frame, text) => Buffer.from(frame.payload).includes(text);
    ws.on("framesent", (frame) => {
      if (has(frame, "fieldbook/renew")) sessions.renewals++;
    });
    ws.on("framereceived", (frame) => {
      if (has(frame, "access token expired")) sessions.expired++;
    });
  });
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    // The sync URL carries the access token: never print it.
    log("console:", m.text().replace(/token=[^&'" ]+/g, "token=…"));
  });
  return { context, page };
}

const signIn = (page, user) => signInWithPin(page, BASE, user);

/** Signs in with the keyboard alone: Tab through the form in order, type, press Enter. */
async function signInByKeyboard(page, user) {
  await page.goto(`${BASE}/`);
  await page.getByRole("heading", { name: "Sign in to Fieldbook" }).waitFor(LONG);
  const focused = () =>
    page.evaluate(() => {
      const el = document.activeElement;
      return (el?.labels?.[0]?.textContent ?? el?.getAttribute("aria-label") ?? el?.textContent ?? "").trim();
    });
  // Focus starts in the user id field, ready to type.
  await page.waitForFunction(() => document.activeElement?.id === "user-id", null, LONG);
  const order = [await focused()];
  await page.keyboard.type(user.id);
  for (let i = 0; i < 6 && !order.includes("Sign in"); i++) {
    await page.keyboard.press("Tab");
    const name = await focused();
    order.push(name);
    if (name === "Password") await page.keyboard.type(user.password);
  }
  const at = (name) => order.indexOf(name);
  assert.ok(at("User id") >= 0 && at("User id") < at("Password") && at("Password") < at("Sign in"), `focus order: ${order.join(" → ")}`);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Choose a PIN for this device" }).waitFor(LONG);
  await screen(page, "choose-pin");
  await choosePin(page);
}

/** Until every change made on this page is confirmed by the server (the app's own list of
 *  records changed here and not yet confirmed is empty): unlike waiting for "Stored on the
 *  server", this cannot pass on the text from before the change. */
async function confirmed(page, what) {
  const pending = () => page.evaluate(() => JSON.parse(localStorage.getItem("fb.changedHere") ?? "[]").length);
  const deadline = Date.now() + 60_000;
  while ((await pending()) > 0) {
    assert.ok(Date.now() < deadline, `${what}: still not confirmed by the server after 60 s`);
    await page.waitForTimeout(100);
  }
}

async function noEditableFields(page, who) {
  const editable = await page.locator("main input:not([disabled]), main textarea:not([disabled]), main select:not([disabled])").count();
  assert.equal(editable, 0, `${who}: the locked record still has ${editable} editable fields`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
});
let failed = false;
try {
  // 0. The server is fresh: the supervisor has no records yet (asked over HTTP, from a
  // device of its own, so no browser state is involved).
  const login = await fetch(`${BASE}/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ userId: SUPERVISOR.id, password: SUPERVISOR.password, deviceId: "e2e-freshness-check" }),
  });
  assert.equal(login.status, 200, `the supervisor signs in over HTTP: ${await login.clone().text()}`);
  const { accessToken } = await login.json();
  const index = await fetch(`${BASE}/v1/records?after=0`, { headers: { authorization: `Bearer ${accessToken}` } });
  assert.equal(index.status, 200, "the supervisor's record index");
  assert.deepEqual((await index.json()).records, [], "this test needs a fresh server: the supervisor already has records");

  // 1. The supervisor signs in; the app shell is now cached by the service worker.
  const sup = await newPage(browser, SIZES.tablet);
  await sup.page.goto(`${BASE}/`);
  await sup.page.getByRole("heading", { name: "Sign in to Fieldbook" }).waitFor(LONG);
  assert.deepEqual(await localData(sup.page), { databases: [], localStorage: [] }, "the browser starts with no Fieldbook data");
  await screen(sup.page, "sign-in");
  await signIn(sup.page, SUPERVISOR);
  await sup.page.getByRole("heading", { name: "Supervisor home" }).waitFor(LONG);
  await sup.page.evaluate(async () => {
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) {
      await new Promise((r) => navigator.serviceWorker.addEventListener("controllerchange", r, { once: true }));
    }
  });
  await sup.page.waitForFunction(
    () => localStorage.getItem("fb.frameworks") && localStorage.getItem("fb.people") && localStorage.getItem("fb.resources"),
    null,
    LONG,
  );
  await sup.page.getByRole("button", { name: "New observation" }).and(sup.page.locator(":enabled")).waitFor(LONG);

  // A development plan with one goal, so the observation's action can link to it. The server
  // is fresh: the supervisee has no plan yet, and the supervisor has no observations.
  const startPlan = sup.page.getByRole("button", { name: /Start a development plan for/ });
  await startPlan.waitFor(LONG);
  assert.equal(await sup.page.getByRole("link", { name: /Development plan of/ }).count(), 0, "a fresh server has no plan");
  assert.equal(await sup.page.getByRole("link", { name: /Observation of/ }).count(), 0, "a fresh server has no observation");
  await startPlan.click();
  await sup.page.getByRole("heading", { name: /Development plan of/ }).waitFor(LONG);
  await sup.page.getByRole("button", { name: "Add goal" }).click();
  await sup.page.getByLabel("Goal 1 title").fill("Use play-based direct work with younger children");
  await sup.page.getByLabel("Goal 1: how we will know it is met").fill("Observed in two home visits");
  await sup.page.getByLabel("Goal 1: target date").fill("2027-03-31");
  // Research for the goal's area is suggested; the supervisor cites one.
  await sup.page.getByLabel("Goal 1: area").selectOption("kss-cf-2018/1");
  await sup.page.getByRole("button", { name: "Cite Child abuse and neglect (NG76) on Goal 1" }).click();
  await sup.page.getByRole("list", { name: "Goal 1: research cited" }).getByRole("link", { name: "Child abuse and neglect (NG76)" }).waitFor(LONG);
  const suggested = await sup.page.getByRole("list", { name: "Goal 1: suggested research" }).innerText();
  assert.match(suggested, /Professional standards/, "resources on the goal's area are suggested");
  assert.doesNotMatch(suggested, /NG76|Munro/, "neither what is cited nor what is on other areas");
  // A goal added by mistake is removed while the plan is a draft.
  await sup.page.getByRole("button", { name: "Add goal" }).click();
  await sup.page.getByRole("button", { name: "Remove goal 2" }).click();
  assert.equal(await sup.page.getByLabel("Goal 2 title").count(), 0, "the second goal is gone");
  await sup.page.getByRole("button", { name: "Agree plan" }).click();
  await sup.page.getByRole("button", { name: "Agree the plan now" }).click();
  await confirmed(sup.page, "agreeing the plan");
  // Agreed, the goals are settled; reopening for review opens them again.
  await sup.page.getByRole("button", { name: "Reopen for review" }).waitFor(LONG);
  assert.equal(await sup.page.getByLabel("Goal 1 title").count(), 0, "an agreed plan's goals are settled");
  await sup.page.getByRole("button", { name: "Reopen for review" }).click();
  await sup.page.getByRole("button", { name: "Reopen now" }).click();
  await confirmed(sup.page, "reopening the plan");
  await sup.page.getByLabel("Goal 1 title").waitFor(LONG);
  await sup.page.getByText(/Last review: .* Reopened for review/).waitFor(LONG);
  await sup.page.getByRole("button", { name: "Agree plan" }).click();
  await sup.page.getByRole("button", { name: "Agree the plan now" }).click();
  await sup.page.getByText("Awaiting Pat Reid's agreement").first().waitFor(LONG);
  await sup.page.getByText(/^Agreed by you on .*\.$/).waitFor(LONG);
  await sup.page.getByText("Stored on the server").first().waitFor(LONG);
  await sup.page.goto(`${BASE}/#/`);
  await sup.page.getByRole("heading", { name: "Supervisor home" }).waitFor(LONG);
  await screen(sup.page, "supervisor-home");

  // 2. Offline: record and share an observation.
  await sup.context.setOffline(true);
  await sup.page.getByRole("button", { name: "New observation" }).click();
  await sup.page.getByLabel("Practitioner observed").selectOption({ label: "Pat Reid" });
  await sup.page.getByRole("button", { name: "Start observation" }).click();
  await sup.page.getByRole("heading", { name: /Observation of/ }).waitFor(LONG);
  const documentId = decodeURIComponent(new URL(sup.page.url()).hash.replace("#/observations/", ""));
  const observationUrl = `automerge:${documentId}`;
  const p = sup.page;
  // A jump list with progress heads the long form: Share is a few key presses away.
  await p.getByText("0 of 5 parts filled in").waitFor(LONG);
  await p.getByRole("button", { name: "Context — to do" }).waitFor(LONG);
  await p.getByRole("heading", { name: /Observation of/ }).focus();
  let presses = 0;
  while ((await p.evaluate(() => document.activeElement?.textContent)) !== "Sharing and sign-off") {
    await p.keyboard.press("Tab");
    assert.ok(++presses <= 12, "the jump list comes before the form");
  }
  await p.keyboard.press("Enter");
  await p.keyboard.press("Tab");
  assert.equal(await p.evaluate(() => document.activeElement?.textContent), "Share with practitioner");
  log(`Share reached in ${presses + 2} key presses`);
  await p.getByLabel("Date and time observed").fill("2026-05-04T10:30");
  await p.getByLabel("Setting").selectOption("home-visit");
  await p.getByLabel("Who was present").fill("mother, two children under 5");
  await p.getByLabel("Purpose of the visit or meeting").fill("Review of the child's plan and direct work with the children");
  // Not shared until consent is recorded and the date could be true: the app says what is missing.
  await p.getByLabel("Date and time observed").fill("2031-05-04T10:30");
  await p.getByRole("button", { name: "Share with practitioner" }).click();
  const notYet = p.getByRole("alert").filter({ hasText: "Not yet: first" });
  await notYet.getByText("The date and time observed is in the future.").waitFor(LONG);
  await notYet.getByText("Record that the family agreed to the observation.").waitFor(LONG);
  assert.equal(await p.getByRole("button", { name: "Share now" }).count(), 0, "sharing is not offered yet");
  await p.getByRole("button", { name: "Back to the record" }).click();
  await p.getByLabel("Date and time observed").fill("2026-05-04T10:30");
  await p.getByLabel("The family agreed to the observation").check();
  await p.getByLabel("Consent given by (role)").fill("mother");
  await p.getByLabel("How consent was given").fill("Verbally, at the start of the visit");
  await p.getByLabel("1. Relationships and effective direct work").check();
  await p.getByLabel("6. Child and family assessment").check();
  await p.getByRole("group", { name: "1. Relationships and effective direct work" }).getByLabel("Met", { exact: true }).check();
  await p.getByRole("group", { name: "6. Child and family assessment" }).getByLabel("Insufficient opportunity").check();
  await p.getByLabel("Notes", { exact: true }).fill("Warm, clear explanation of the plan; used drawings with the older child.");
  await p.getByRole("button", { name: "Add strength" }).click();
  await p.getByLabel("Strength 1", { exact: true }).fill("Builds trust quickly");
  await p.getByRole("button", { name: "Add development area" }).click();
  await p.getByLabel("Development area 1", { exact: true }).fill("Summarise agreed actions at the end");
  await p.getByLabel("Feedback to the practitioner").fill("A strong visit. Next time, close by summarising the actions.");
  await p.getByLabel("Feedback given at").fill("2026-05-04T12:00");
  await p.getByRole("button", { name: "Add action" }).click();
  await p.getByLabel("Action 1", { exact: true }).fill("Try a closing summary on the next three visits");
  await p.getByLabel("Plan goal for action 1 (optional)").selectOption({ label: "Use play-based direct work with younger children" });
  await p.getByText("Saved on this device only").first().waitFor(LONG);
  await p.getByText("5 of 5 parts filled in").waitFor(LONG);
  await p.getByRole("button", { name: "Consent — done" }).waitFor(LONG);
  await screen(p, "observation-form");
  await p.getByRole("button", { name: "Share with practitioner" }).click();
  await p.getByText("Pat Reid can then read it and add their reflection. It cannot go back to being a draft.").waitFor(LONG);
  await p.getByRole("button", { name: "Share now" }).click();
  await p.getByText("Awaiting Pat Reid's reflection").first().waitFor(LONG);
  await p.getByText("Saved on this device only").first().waitFor(LONG); // written to IndexedDB

  // Reload with the network still off: the app and the record are still there.
  await p.reload();
  await p.getByRole("heading", { name: "Unlock Fieldbook" }).waitFor(LONG);
  await screen(p, "unlock");
  await unlock(p);
  await p.getByRole("heading", { name: /Observation of/ }).waitFor(LONG);
  await p.getByText("Saved on this device only").first().waitFor(LONG);
  assert.match(await p.getByLabel("Notes", { exact: true }).inputValue(), /drawings with the older child/);
  log("offline reload shows the record");

  // Back online: the server stores it.
  await sup.context.setOffline(false);
  await p.getByText("Stored on the server").first().waitFor({ timeout: 90_000 });
  console.log(`OBSERVATION_URL=${observationUrl}`);
  // Narrative typed into the record: the calling test checks HR never sees it.
  for (const text of ["drawings with the older child", "Builds trust quickly", "closing summary on the next three visits",
                      "Next time, close by summarising", "children relax once we started drawing", "less formal than usual"]) {
    console.log(`NARRATIVE=${text}`);
  }
  log("stored on the server", observationUrl);
  // Whose turn it is, on the supervisor's list: Pat's reflection.
  await p.goto(`${BASE}/#/`);
  const madeRow = p.getByRole("listitem").filter({ has: p.getByRole("link", { name: /Observation of Pat Reid/ }) });
  await madeRow.getByText("Awaiting Pat Reid's reflection").waitFor(LONG);
  await p.goto(`${BASE}/#/observations/${documentId}`);
  await p.getByRole("heading", { name: /Observation of/ }).waitFor(LONG);

  // 3. The practitioner reads it, reflects and signs off.
  const pra = await newPage(browser, SIZES.phone);
  await signInByKeyboard(pra.page, PRACTITIONER);
  const q = pra.page;
  await q.getByRole("heading", { name: "Your observations" }).waitFor(LONG);
  await q.getByRole("link", { name: /Observation by/ }).first().waitFor(LONG);
  // Pat's turn, and feedback Pat has not opened yet.
  const inboxRow = q.getByRole("listitem").filter({ has: q.getByRole("link", { name: /Observation by Sam Okafor/ }) });
  await inboxRow.getByText("Awaiting your reflection").waitFor(LONG);
  await inboxRow.getByText("New feedback").waitFor(LONG);
  await screen(q, "practitioner-inbox");
  await q.goto(`${BASE}/#/observations/${documentId}`);
  await q.getByText("New feedback since you last opened this record.").waitFor(LONG);
  // On Pat's phone, the feedback and Pat's own part come first.
  const sections = await q.evaluate(() => [...document.querySelectorAll("main h2")].map((h) => h.textContent?.trim()));
  const at = (name) => sections.indexOf(name);
  assert.ok(at("Feedback") === 0 && at("Practitioner's reflection") === 1 && at("Context") > 1, `section order: ${sections.join(", ")}`);
  await q.getByLabel("Reflection", { exact: true }).waitFor(LONG);
  await q.getByLabel("Reflection", { exact: true }).fill("I could see the children relax once we started drawing.");
  await q.getByLabel("Response to feedback").fill("Agreed; I will close visits with a summary.");
  await q.getByLabel("Family voice").fill("Mother said the visit felt less formal than usual.");
  await q.getByLabel("How the family's views were gathered").fill("Conversation at the end of the visit");
  assert.equal(await q.getByLabel("Notes", { exact: true }).count(), 0, "the practitioner must not be able to edit the observer's notes");
  await screen(q, "practitioner-observation");

  // A second tablet of the supervisor's has the record open, editable, and goes offline
  // before anyone signs.
  const spare = await newPage(browser, SIZES.tablet);
  await signIn(spare.page, SUPERVISOR);
  const r = spare.page;
  await r.goto(`${BASE}/#/observations/${documentId}`);
  await r.getByLabel("Notes", { exact: true }).waitFor(LONG);
  await spare.context.setOffline(true);

  // Both tablets change a short field at once: it is not mixed letter by letter; both values
  // are shown on both, and keeping one settles it. (That the kept value then settles on every
  // device is tests/js/register-conflict.mjs, with the stock client.)
  await r.getByLabel("Who was present").fill("mother and her partner");
  await p.getByLabel("Who was present").fill("mother only");
  await confirmed(p, "the first tablet's value");
  await spare.context.setOffline(false);
  const conflictOn = (page) => page.getByRole("group", { name: "Who was present: changed on two devices at once" });
  await conflictOn(p).getByRole("button", { name: "Keep “mother and her partner”" }).waitFor(LONG);
  await conflictOn(r).getByRole("button", { name: "Keep “mother only”" }).waitFor(LONG);
  await screen(r, "short-field-conflict");
  await conflictOn(r).getByRole("button", { name: "Keep “mother only”" }).click();
  await conflictOn(r).waitFor({ state: "detached", ...LONG });
  assert.equal(await r.getByLabel("Who was present", { exact: true }).inputValue(), "mother only");
  await spare.context.setOffline(true);

  // The practitioner signs off the record as it stands: the supervisor's whole side is now
  // frozen for them, shown as text, and the app says whose signature is awaited.
  await q.getByRole("button", { name: "Sign off" }).click();
  await q.getByRole("button", { name: "Sign off now" }).click();
  await q.getByText("Signed off by the practitioner, Pat Reid, on").waitFor(LONG);
  await q.getByText("Stored on the server").first().waitFor(LONG);
  await q.getByText("Awaiting Sam Okafor's sign-off").waitFor(LONG);
  assert.equal(await q.getByLabel("Reflection", { exact: true }).count(), 0, "a signer's own part is frozen");
  await p.getByText("Signed off by the practitioner, Pat Reid, on").waitFor(LONG);
  await p.getByText("Awaiting your sign-off").waitFor(LONG);
  await p.getByText(/has signed off the record as it stands/).waitFor(LONG);
  assert.equal(await p.getByLabel("Notes", { exact: true }).count(), 0, "what the practitioner signed is shown as text");
  assert.equal(await p.getByLabel("Feedback to the practitioner").count(), 0, "the feedback they signed is frozen");
  await screen(p, "awaiting-sign-off");

  // The practitioner withdraws (the supervisor sees it, and may edit again), then signs again.
  await q.getByRole("button", { name: "Withdraw my sign-off" }).click();
  await q.getByLabel("Reflection", { exact: true }).waitFor(LONG);
  await q.getByText("Stored on the server").first().waitFor(LONG);
  await p.getByText("Not yet signed off by the practitioner.").waitFor(LONG);
  await p.getByLabel("Notes", { exact: true }).waitFor(LONG);
  await q.getByRole("button", { name: "Sign off" }).click();
  await q.getByRole("button", { name: "Sign off now" }).click();
  await q.getByText("Signed off by the practitioner, Pat Reid, on").waitFor(LONG);
  await q.getByText("Stored on the server").first().waitFor(LONG);
  await p.getByText("Awaiting your sign-off").waitFor(LONG);

  // The supervisor signs off on the first tablet: the record is locked.
  await p.getByRole("button", { name: "Sign off" }).click();
  await p.getByRole("button", { name: "Sign off now" }).click();
  await p.getByText(/locked/).first().waitFor(LONG);
  await p.getByText("Stored on the server").first().waitFor(LONG);

  // The offline tablet, not knowing, edits the notes; back online, the server keeps that edit
  // aside and the tablet says so in plain words.
  await r.getByLabel("Notes", { exact: true }).fill("An edit made offline after the record was signed off.");
  await spare.context.setOffline(false);
  await r.getByText("The server did not accept a change you made here.").waitFor({ timeout: 90_000 });
  await r.getByText(/already been signed off by both of you/).waitFor(LONG);
  await r.getByText("Signed off by both — locked").waitFor(LONG);
  await screen(r, "rejected-change");
  // Taking the server's version back: the tablet's copy matches the server's again.
  await r.getByRole("button", { name: "Use the server's version" }).click();
  await unlock(r);
  await r.getByRole("heading", { name: /Observation of/ }).waitFor(LONG);
  await r.getByText("Stored on the server").first().waitFor(LONG);
  await r.getByText("Signed off by both — locked").waitFor(LONG);
  assert.doesNotMatch(await r.locator("main").innerText(), /An edit made offline after the record was signed off/);
  await spare.context.close();
  await q.getByText(/locked/).first().waitFor(LONG);
  await noEditableFields(p, "supervisor");
  await noEditableFields(q, "practitioner");
  await screen(p, "locked-record");

  // Printed, a signed record is the record alone, with both signatures and their times.
  await p.emulateMedia({ media: "print" });
  for (const [what, chrome] of [["the header", p.locator("header.top")], ["buttons", p.getByRole("button")],
                                ["the sync state", p.getByText("Stored on the server")], ["the way home", p.getByRole("link", { name: "Back to home" })]]) {
    assert.equal(await chrome.first().isVisible(), false, `${what} must not print`);
  }
  await p.getByText("Signed off by the observer, Sam Okafor, on").waitFor(LONG);
  await p.getByText("Signed off by the practitioner, Pat Reid, on").waitFor(LONG);
  await p.setViewportSize({ width: 794, height: 1123 }); // A4 at 96 dpi
  await p.screenshot({ path: join(ARTIFACTS, "print-signed-observation.png"), fullPage: true });
  if (UPDATE_DOCS) copyFileSync(join(ARTIFACTS, "print-signed-observation.png"), join(DOCS, "print-signed-observation.png"));
  const pdf = await p.pdf({ format: "A4", printBackground: false });
  const printedPages = (pdf.toString("latin1").match(/\/Type\s*\/Page(?!s)/g) ?? []).length;
  log(`a signed observation prints on ${printedPages} A4 pages`);
  assert.ok(printedPages >= 1 && printedPages <= 2, `a signed observation prints on ${printedPages} pages`);
  await p.emulateMedia({ media: "screen" });
  await p.setViewportSize(SIZES.tablet);

  // Finding records offline, by person and framework area, and the person's progress.
  await sup.context.setOffline(true);
  await p.goto(`${BASE}/#/`);
  await p.getByRole("link", { name: "Find records" }).click();
  await p.getByRole("heading", { name: "Find records" }).waitFor(LONG);
  await p.getByLabel("Person").selectOption({ label: "Pat Reid" });
  await p.getByLabel("Framework area").selectOption("kss-cf-2018/6");
  const foundList = p.getByRole("list", { name: "Records found" });
  await p.getByRole("heading", { name: "1 record" }).waitFor(LONG);
  await foundList.getByRole("link", { name: /Observation of Pat Reid by Sam Okafor/ }).waitFor(LONG);
  await p.getByLabel("Framework area").selectOption("kss-cf-2018/1");
  await p.getByRole("heading", { name: "2 records" }).waitFor(LONG); // the observation and the plan's goal
  await p.getByLabel("Search").fill("drawings");
  await p.getByRole("heading", { name: "1 record" }).waitFor(LONG);
  await screen(p, "find-records");
  await foundList.getByRole("link", { name: "Pat Reid's progress" }).click();
  await p.getByRole("heading", { name: "Pat Reid's progress" }).waitFor(LONG);
  const area = (n) => p.getByRole("listitem", { name: n });
  await area("1. Relationships and effective direct work").getByText("Observed 1 · met 1 · planned 1").waitFor(LONG);
  await area("6. Child and family assessment").getByText("Observed 1 · met 0 · planned 0").waitFor(LONG);
  await area("3. Child development").getByText("Observed 0 · met 0 · planned 0").waitFor(LONG);
  await screen(p, "progress");
  await sup.context.setOffline(false);

  // On Pat's list: signed by both, and nothing new (Pat opened the feedback).
  await q.goto(`${BASE}/#/`);
  const signedRow = q.getByRole("listitem").filter({ has: q.getByRole("link", { name: /Observation by Sam Okafor/ }) });
  await signedRow.getByText("Signed by both").waitFor(LONG);
  assert.equal(await signedRow.getByText("New feedback").count(), 0, "opening the record marks its feedback seen");

  // The practitioner's plan shows the goal and the observation that evidences it.
  await q.getByText("Awaiting your agreement").first().waitFor(LONG);
  await q.getByRole("link", { name: /Development plan/ }).first().click();
  await q.getByRole("heading", { name: "Your development plan" }).waitFor(LONG);
  // The practitioner agrees the plan too.
  await q.getByRole("button", { name: "Agree plan" }).click();
  await q.getByText("You and Sam Okafor both agree the goals as they stand.").waitFor(LONG);
  await q.getByRole("button", { name: "Agree the plan now" }).click();
  await q.getByText("Agreed by both").first().waitFor(LONG);
  await q.getByText(/^Agreed by Sam Okafor on .* and by you on .*\.$/).waitFor(LONG);
  assert.equal(await q.getByRole("button", { name: "Agree plan" }).count(), 0, "agreed once");
  await q.getByRole("link", { name: /Observation by/ }).first().waitFor(LONG);
  await q.getByLabel("Goal 1: status").selectOption("in-progress");
  await q.getByText("Stored on the server").first().waitFor(LONG);
  // The goal shows the research the supervisor cited; offline, Pat cites more, and it syncs later.
  const cited = q.getByRole("list", { name: "Goal 1: research cited" });
  await cited.getByRole("link", { name: "Child abuse and neglect (NG76)" }).waitFor(LONG);
  await pra.context.setOffline(true);
  await q.getByRole("button", { name: "Cite Professional standards on Goal 1" }).click();
  await cited.getByRole("link", { name: "Professional standards" }).waitFor(LONG);
  await q.getByText("Saved on this device only").first().waitFor(LONG);
  await pra.context.setOffline(false);
  await q.getByText("Stored on the server").first().waitFor(LONG);
  await screen(q, "plan");

  // Signing out (everything is stored) goes straight back to sign-in and leaves no session behind.
  await q.getByRole("button", { name: "Sign out" }).click();
  await q.getByRole("heading", { name: "Sign in to Fieldbook" }).waitFor(LONG);
  assert.equal(await q.evaluate(() => localStorage.getItem("fb.session")), null, "sign-out must remove the session");
  const fieldbookDatabases = (page) =>
    page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name).filter((n) => n?.startsWith("fieldbook")));
  assert.deepEqual(await fieldbookDatabases(q), [], "sign-out must delete the local records");

  // A shared tablet: work on it that is not on the server yet is never deleted unasked.
  const shared = await newPage(browser, SIZES.tablet);
  const t = shared.page;
  await signIn(t, SUPERVISOR);
  await t.getByRole("button", { name: "New observation" }).and(t.locator(":enabled")).waitFor(LONG);
  await shared.context.setOffline(true);
  await t.getByRole("button", { name: "New observation" }).click();
  await t.getByLabel("Practitioner observed").selectOption({ label: "Pat Reid" });
  await t.getByRole("button", { name: "Start observation" }).click();
  await t.getByRole("heading", { name: /Observation of/ }).waitFor(LONG);
  await t.getByText("Saved on this device only").first().waitFor(LONG);
  // Signing out asks first…
  await t.getByRole("button", { name: "Sign out" }).click();
  await t.getByRole("heading", { name: "Sign out and lose unsaved records?" }).waitFor(LONG);
  await t.getByText("1 record is saved on this device only.").waitFor(LONG);
  await t.getByRole("button", { name: "Cancel" }).click();
  // …and when the session ends (here: its tokens are gone), someone else cannot sign in over it.
  await t.evaluate(() => localStorage.removeItem("fb.session"));
  await t.reload();
  await shared.context.setOffline(false);
  await t.getByLabel("User id").fill(PRACTITIONER.id);
  await t.getByLabel("Password").fill(PRACTITIONER.password);
  await t.getByRole("button", { name: "Sign in" }).click();
  await t.getByText(`This device holds 1 record of ${SUPERVISOR.id} that is not on the server yet`).waitFor(LONG);
  assert.equal(await t.evaluate(() => localStorage.getItem("fb.session")), null, "nobody is signed in over unsent work");
  await shared.context.close();
  log("unsent work on a shared tablet is kept");

  // A revoked device is told to wipe: the supervisor's browser deletes its data and says why.
  const device = await p.evaluate(() => localStorage.getItem("fb.deviceId"));
  assert.ok(device, "the supervisor's browser has a device id");
  const revoke = await fetch(`${BASE}/v1/admin/users/${SUPERVISOR.id}/devices/${encodeURIComponent(device)}/revoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  assert.equal(revoke.status, 200, `revoking the supervisor's browser: ${await revoke.text()}`);
  await p.getByText(/signed out by the server and its Fieldbook data was deleted/).waitFor(LONG);
  await p.getByRole("heading", { name: "Sign in to Fieldbook" }).waitFor(LONG);
  assert.deepEqual(await fieldbookDatabases(p), [], "a revoked device must delete its local records");
  assert.equal(await p.evaluate(() => localStorage.getItem("fb.session")), null, "a revoked device keeps no session");
  log("revoked browser wiped");

  assert.deepEqual(cspViolations, [], "the app broke its Content-Security-Policy");
  assert.ok(sessions.renewals > 0, "the app renewed its sync session in-band as its token neared expiry");
  assert.equal(sessions.expired, 0, "the server had to end a sync session whose token expired");
  log(`sync sessions renewed in-band ${sessions.renewals} times`);
  await sup.context.close();
  await pra.context.close();
  log("all checks passed");
} catch (e) {
  failed = true;
  console.error(e);
  for (const [i, page] of pages.entries()) {
    if (page.isClosed()) continue;
    const state = await page
      .evaluate(async () => {
        const token = JSON.parse(localStorage.getItem("fb.session") ?? "{}").accessToken;
        const fresh = await fetch("/v1/records?after=0", { headers: { authorization: `Bearer ${token}` } })
          .then((r) => r.text())
          .catch(String);
        return { url: location.href, index: localStorage.getItem("fb.index"), fresh, text: document.body.innerText };
      })
      .catch((err) => ({ error: String(err) }));
    console.error(`page ${i}:`, JSON.stringify(state, null, 1));
    await page.screenshot({ path: join(ARTIFACTS, `failure-page-${i}.png`), fullPage: true }).catch(() => undefined);
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
