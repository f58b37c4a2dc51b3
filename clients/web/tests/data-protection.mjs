// Browser test of erasure and deletion reaching the web app's offline copies.
//
//   FIELDBOOK_URL=… SUPERVISOR_ID=sam SUPERVISOR_PASSWORD=… PRACTITIONER_ID=pat PRACTITIONER_PASSWORD=… \
//   ADMIN_TOKEN=… node tests/data-protection.mjs
//
// Needs a fresh server with those users (the supervisor supervising the practitioner, named
// "Pat Reid") and an admin's access token, as tests/tests/web_app.rs sets up.
//
// A supervisor types a family's surname into an observation's notes and edits it out; the
// practitioner's phone holds the record and goes offline; the tablet goes offline and changes
// the purpose. An admin erases the record's history: back online, the tablet replaces its
// copy by itself, keeps the unsent purpose aside and puts it back on request, and nothing in
// its IndexedDB holds the surname in any version. The practitioner downloads a copy of their
// records on the phone, offline. Then the admin deletes the record: the tablet (following it)
// and the phone (coming back online) remove their copies and say so. Last, the supervisor
// discards a draft on the tablet while offline: back online, it leaves the server and the
// supervisor's phone, which was following it; one shared from their laptop before the tablet
// was back online is kept, comes back to the tablet, and the tablet says why.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as Automerge from "@automerge/automerge";
import { chromium } from "playwright-core";
import { env, rawRecordStore, readRecordStore, readSealedLocal, signIn as signInWithPin, unlock } from "./steps.mjs";

const BASE = env("FIELDBOOK_URL").replace(/\/$/, "");
const SUPERVISOR = { id: env("SUPERVISOR_ID"), password: env("SUPERVISOR_PASSWORD") };
const PRACTITIONER = { id: env("PRACTITIONER_ID"), password: env("PRACTITIONER_PASSWORD") };
const ADMIN_TOKEN = env("ADMIN_TOKEN");
const LONG = { timeout: 60_000 };
const SURNAME = "Zyxwell";
const DRAFT_MARK = "Qvoxdraft";

const log = (...args) => console.error("[data-protection]", ...args);

async function newPage(browser, viewport) {
  const context = await browser.newContext({ viewport, locale: "en-GB", timezoneId: "Europe/London" });
  const page = await context.newPage();
  page.on("pageerror", (e) => log("page error:", e.message));
  page.on("console", (m) => {
    if (m.type() === "error") log("console:", m.text().replace(/token=[^&'" ]+/g, "token=…"));
  });
  return { context, page };
}

const signIn = (page, user) => signInWithPin(page, BASE, user);

/** The document's chunks as this browser's IndexedDB holds them (sync states aside), decrypted. */
const storedChunks = (page, documentId) => readRecordStore(page, [documentId]);

/** Whether any version of the document this browser holds mentions `text`. */
async function historyMentions(page, documentId, text) {
  const chunks = await storedChunks(page, documentId);
  if (chunks.length === 0) return false;
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  chunks.reduce((at, c) => (bytes.set(c, at), at + c.length), 0);
  const doc = Automerge.load(bytes);
  return Automerge.getHistory(doc).some((state) => JSON.stringify(state.snapshot).includes(text));
}

/** Waits until the browser holds nothing of the document (the app drops it as it restarts). */
async function holdsNothing(page, documentId, who) {
  const deadline = Date.now() + LONG.timeout;
  while ((await rawRecordStore(page, [documentId]).catch(() => [null])).length > 0) {
    assert.ok(Date.now() < deadline, `${who} still holds the record`);
    await page.waitForTimeout(200);
  }
}

async function admin(path, body) {
  const response = await fetch(`${BASE}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200, `${path}: ${await response.text()}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
});
let failed = false;
try {
  // The supervisor records an observation, types the surname into the notes, edits it out.
  const tablet = await newPage(browser, { width: 820, height: 1180 });
  const t = tablet.page;
  await signIn(t, SUPERVISOR);
  await t.getByRole("button", { name: "New observation" }).and(t.locator(":enabled")).waitFor(LONG);
  await t.getByRole("button", { name: "New observation" }).click();
  await t.getByLabel("Practitioner observed").selectOption({ label: "Pat Reid" });
  // A double tap starts one observation, not two.
  await t.getByRole("button", { name: "Start observation" }).dblclick();
  await t.getByRole("heading", { name: /Observation of/ }).waitFor(LONG);
  const documentId = decodeURIComponent(new URL(t.url()).hash.replace("#/observations/", ""));
  assert.notEqual(await t.getByLabel("Date and time observed").inputValue(), "", "the date starts as now");
  await t.getByLabel("Purpose of the visit or meeting").fill("Review of the child's plan");
  await t.getByLabel("Setting").selectOption("home-visit");
  await t.getByLabel("The family agreed to the observation").check();
  await t.getByLabel("Consent given by (role)").fill("mother");
  await t.getByLabel("How consent was given").fill("Verbally");
  await t.getByLabel("Notes", { exact: true }).fill(`Home visit. The ${SURNAME} family were welcoming.`);
  await t.getByText("Stored on the server").first().waitFor(LONG);
  await t.getByLabel("Notes", { exact: true }).fill("Home visit. The family were welcoming.");
  await t.getByRole("button", { name: "Share with practitioner" }).click();
  await t.getByRole("button", { name: "Share now" }).click();
  await t.getByText(/^Awaiting .*'s reflection$/).first().waitFor(LONG);
  await t.getByText("Stored on the server").first().waitFor(LONG);
  assert.ok(await historyMentions(t, documentId, SURNAME), "the check sees the surname in the tablet's history before");
  log("observation stored", documentId);

  // The practitioner's phone holds the record, then goes offline.
  const phone = await newPage(browser, { width: 390, height: 844 });
  const p = phone.page;
  await signIn(p, PRACTITIONER);
  await p.goto(`${BASE}/#/observations/${documentId}`);
  await p.getByLabel("Reflection", { exact: true }).waitFor(LONG);
  await p.getByText("Stored on the server").first().waitFor(LONG);
  await phone.context.setOffline(true);

  // The tablet, offline, changes the purpose and the notes: unsent work when the record is
  // erased, with the notes cleared.
  await tablet.context.setOffline(true);
  await t.getByLabel("Purpose of the visit or meeting").fill("Review of the child's plan, changed offline");
  await t.getByLabel("Notes", { exact: true }).fill("Home visit, notes changed offline.");
  await t.getByText("Saved on this device only").first().waitFor(LONG);
  await admin(`/v1/admin/records/automerge:${documentId}/erase`, { reason: "family name in the notes", clear: ["notes"] });
  log("erased");

  // Back online: the tablet takes the server's copy by itself and keeps its unsent work aside.
  await tablet.context.setOffline(false);
  await unlock(t); // the app restarts to take the server's copy
  await t.getByText("Text was removed from this record's history on the server").waitFor(LONG);
  await t.getByRole("heading", { name: /Observation of/ }).waitFor(LONG);
  await t.getByText("it had not reached the server. It is kept on this device for you").waitFor(LONG);
  assert.equal(await t.getByLabel("Purpose of the visit or meeting").inputValue(), "Review of the child's plan", "the server's copy");
  assert.equal(await t.getByLabel("Notes", { exact: true }).inputValue(), "", "cleared on the server");
  await t.getByText("Review of the child's plan, changed offline").waitFor(LONG);
  const keptAside = (await readSealedLocal(t, "fb.setAside"))[documentId].fields;
  assert.deepEqual(
    keptAside,
    { purpose: "Review of the child's plan, changed offline", notes: "Home visit, notes changed offline." },
    "exactly the unsent work is kept aside",
  );
  // The notes were cleared on the server: the app says to check them before putting them back.
  const warnings = t.getByText("This field was emptied on the server for data protection");
  assert.equal(await warnings.count(), 1, "a warning on the cleared field only");
  await t.getByRole("button", { name: "Discard Notes" }).click();
  assert.equal(await warnings.count(), 0);
  assert.equal(await historyMentions(t, documentId, SURNAME), false, "no version the tablet holds mentions the surname");
  await t.getByRole("button", { name: "Put back Purpose of the visit or meeting" }).click();
  await t.getByText("Text was removed from this record's history on the server").waitFor({ state: "detached", ...LONG });
  assert.equal(await t.getByLabel("Purpose of the visit or meeting").inputValue(), "Review of the child's plan, changed offline");
  await t.getByText("Stored on the server").first().waitFor(LONG);
  assert.equal(await historyMentions(t, documentId, SURNAME), false, "nor after the work was put back");
  log("the tablet replaced its copy and put its unsent work back");

  // The practitioner downloads a copy of their records on the phone, offline.
  await p.goto(`${BASE}/#/`);
  await p.getByRole("heading", { name: "Your observations" }).waitFor(LONG);
  const downloaded = async (button) => {
    const [download] = await Promise.all([p.waitForEvent("download"), p.getByRole("button", { name: button }).click()]);
    return readFileSync(await download.path(), "utf8");
  };
  const data = JSON.parse(await downloaded("Download as data (JSON)"));
  assert.equal(data.person.id, PRACTITIONER.id);
  const mine = data.records.find((r) => r.url === `automerge:${documentId}`);
  assert.ok(mine, `the download holds the observation: ${JSON.stringify(data)}`);
  assert.equal(mine.notes, "Home visit. The family were welcoming.");
  const page = await downloaded("Download a page to print");
  assert.match(page, /Home visit\. The family were welcoming\./);
  assert.doesNotMatch(page, /<script/i, "the printable page runs nothing");
  log("the practitioner downloaded their records offline");

  // The admin deletes the record: the tablet, following it, removes its copy.
  await admin(`/v1/admin/records/automerge:${documentId}/delete`, { reason: "recorded in error" });
  await unlock(t); // the app restarts to drop its copy
  await t.getByText("An observation of Pat Reid was deleted from the server").waitFor(LONG);
  await t.goto(`${BASE}/#/`);
  await t.getByRole("heading", { name: "Supervisor home" }).waitFor(LONG);
  await t.getByText("An observation of Pat Reid was deleted from the server").waitFor(LONG);
  assert.equal(await t.getByRole("link", { name: /Observation of/ }).count(), 0, "the tablet lists no observation");
  await holdsNothing(t, documentId, "the tablet");
  await t.getByRole("button", { name: "Dismiss this message" }).click();
  assert.equal(await t.getByText("was deleted from the server").count(), 0);

  // The phone, back online, is told when it syncs, and removes its copy too.
  await phone.context.setOffline(false);
  await unlock(p);
  await p.getByText(/was deleted from the server/).waitFor(LONG);
  await p.goto(`${BASE}/#/`);
  await p.getByRole("heading", { name: "Your observations" }).waitFor(LONG);
  assert.equal(await p.getByRole("link", { name: /Observation by/ }).count(), 0, "the phone lists no observation");
  await holdsNothing(p, documentId, "the phone");
  log("both devices removed the deleted record");
  console.log(`DELETED_URL=automerge:${documentId}`);

  // A draft the supervisor discards on the tablet while offline goes from the server, and
  // from their phone, which was following it.
  await t.getByRole("button", { name: "New observation" }).click();
  await t.getByLabel("Practitioner observed").selectOption({ label: "Pat Reid" });
  await t.getByRole("button", { name: "Start observation" }).click();
  await t.getByRole("heading", { name: /Observation of/ }).waitFor(LONG);
  const draftId = decodeURIComponent(new URL(t.url()).hash.replace("#/observations/", ""));
  await t.getByLabel("Notes", { exact: true }).fill(`Started by mistake: ${DRAFT_MARK}`);
  await t.getByText("Stored on the server").first().waitFor(LONG);
  const samsPhone = await newPage(browser, { width: 390, height: 844 });
  const s = samsPhone.page;
  await signIn(s, SUPERVISOR);
  await s.goto(`${BASE}/#/observations/${draftId}`);
  // The notes reached the phone through the server, so the server held them before the discard.
  const holdsMark = (mark) => [...document.querySelectorAll("textarea, input")].some((e) => e.value.includes(mark));
  await s.waitForFunction(holdsMark, DRAFT_MARK, LONG);
  await s.getByText("Stored on the server").first().waitFor(LONG);
  await tablet.context.setOffline(true);
  await t.getByRole("button", { name: "Discard draft" }).click();
  await t.getByText("It is deleted from this device, from your other devices and from the server").waitFor(LONG);
  await t.getByRole("button", { name: "Discard now" }).click();
  await unlock(t); // the app restarts to drop its copy
  await t.getByRole("heading", { name: "Supervisor home" }).waitFor(LONG);
  assert.equal(await t.getByRole("link", { name: /Observation of/ }).count(), 0, "the tablet lists no draft");
  await holdsNothing(t, draftId, "the tablet");
  assert.equal(await t.getByText("was discarded").count(), 0, "the tablet that discarded it says nothing more");
  await tablet.context.setOffline(false);
  await unlock(s); // the phone restarts to drop its copy
  await s.getByText("Your draft observation of Pat Reid was discarded").waitFor(LONG);
  await holdsNothing(s, draftId, "the supervisor's phone");
  await s.goto(`${BASE}/#/observations/${draftId}`);
  await s.getByRole("heading", { name: "Record not available" }).waitFor(LONG);
  log("a draft discarded offline left the server and the other device");
  console.log(`DISCARDED_URL=automerge:${draftId}`);

  // Discarded on the tablet while offline, but shared from the supervisor's laptop meanwhile:
  // the share wins, and the tablet says so and has the record back.
  await t.getByRole("button", { name: "New observation" }).click();
  await t.getByLabel("Practitioner observed").selectOption({ label: "Pat Reid" });
  await t.getByRole("button", { name: "Start observation" }).click();
  await t.getByRole("heading", { name: /Observation of/ }).waitFor(LONG);
  const keptId = decodeURIComponent(new URL(t.url()).hash.replace("#/observations/", ""));
  await t.getByLabel("Setting").selectOption("home-visit");
  await t.getByLabel("The family agreed to the observation").check();
  await t.getByLabel("Consent given by (role)").fill("father");
  await t.getByLabel("How consent was given").fill("In writing");
  await t.getByText("Stored on the server").first().waitFor(LONG);
  const samsLaptop = await newPage(browser, { width: 1280, height: 800 });
  const l = samsLaptop.page;
  await signIn(l, SUPERVISOR);
  await l.goto(`${BASE}/#/observations/${keptId}`);
  await l.getByRole("button", { name: "Share with practitioner" }).waitFor(LONG);
  await l.getByText("Stored on the server").first().waitFor(LONG);
  // Shared before the tablet discards: the share is committed first whenever the discard
  // reaches the server, even if the restarted tablet sends it at once.
  await tablet.context.setOffline(true);
  await t.getByText("Offline", { exact: true }).waitFor(LONG);
  await l.getByRole("button", { name: "Share with practitioner" }).click();
  await l.getByRole("button", { name: "Share now" }).click();
  await l.getByText("Awaiting Pat Reid's reflection").first().waitFor(LONG);
  await l.getByText("Stored on the server").first().waitFor(LONG);
  await t.getByRole("button", { name: "Discard draft" }).click();
  await t.getByRole("button", { name: "Discard now" }).click();
  await unlock(t);
  await t.getByRole("heading", { name: "Supervisor home" }).waitFor(LONG);
  assert.equal(await t.getByRole("link", { name: /Observation of/ }).count(), 0, "gone from the tablet meanwhile");
  await tablet.context.setOffline(false);
  await t.getByText("Your draft observation of Pat Reid was not discarded.").waitFor(LONG);
  await t.getByText("only a draft may be discarded").waitFor(LONG);
  await t.getByRole("link", { name: /Observation of Pat Reid/ }).waitFor(LONG);
  log("a discard refused because the draft was shared meanwhile: the record came back, and the tablet said why");
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
