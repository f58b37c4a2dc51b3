// Browser test of the learning loops (issue 15): a group session across a tablet and a phone,
// and a practice theme raised and answered ("you said, we did").
//
//   FIELDBOOK_URL=… PASSWORD=… node tests/learning-loops.mjs
//
// Needs a fresh server as tests/tests/web_app.rs sets it up: sam ("Sam Okafor", supervisor,
// team north) supervises pat ("Pat Reid", team north) and kim ("Kim Lee"); mo ("Mo Ahmed", a
// manager) supervises sam; all with PASSWORD.
//
// The supervisor, offline on the tablet, starts a group session, picks Pat and Kim from the
// people they may see, writes a theme and a summary, and shares it; back online it reaches
// the server. Pat finds it on the phone, awaiting a reflection, and writes one offline; it
// syncs when the phone is back. The tablet sees the reflection and closes the session, which
// the phone then shows as closed with nothing editable. The supervisor raises a practice
// theme and attaches counts from insights (five observations of Pat met component 1, seeded by
// the Rust side); the manager sees it on the leaders' home — with Sam among the supervisors
// they observe, the line's records by status and the insights — answers and marks it acted
// on; the manager also starts an observation of Sam's supervision against kss-ps-2018; Pat, in
// Sam's team, reads the answer, and downloads their CPD, which holds the session they reflected
// in; Pat offers to be a practice champion, the manager confirms, and the supervisor finds Pat
// and Kim (declared by an admin) under "who can help"; Kim's early-career plan shows ASYE
// progress. Every screen passes axe-core.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { checkAccessibility, env, signIn as signInWithPin } from "./steps.mjs";

const BASE = env("FIELDBOOK_URL").replace(/\/$/, "");
const PASSWORD = env("PASSWORD");
const LONG = { timeout: 60_000 };
const SIZES = { phone: { width: 390, height: 844 }, tablet: { width: 820, height: 1180 }, laptop: { width: 1366, height: 850 } };

const log = (...args) => console.error("[learning-loops]", ...args);

/** Every page opened, to show what each had on screen if a step fails. */
const pages = [];

async function newPage(browser, viewport) {
  const context = await browser.newContext({ viewport, locale: "en-GB", timezoneId: "Europe/London" });
  const page = await context.newPage();
  pages.push(page);
  page.on("pageerror", (e) => log("page error:", e.message));
  page.on("console", (m) => {
    if (m.type() === "error") log("console:", m.text().replace(/token=[^&'" ]+/g, "token=…"));
  });
  // Share, close: the app asks first; the user agrees.
  page.on("dialog", (d) => void d.accept());
  return { context, page };
}

const signIn = (page, id) => signInWithPin(page, BASE, { id, password: PASSWORD });
const stored = (page) => page.getByText("Stored on the server").first().waitFor(LONG);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
});
let failed = false;
try {
  // The tablet: a group session run offline.
  const tablet = await newPage(browser, SIZES.tablet);
  const t = tablet.page;
  await signIn(t, "sam");
  await t.getByRole("heading", { name: "Supervisor home" }).waitFor(LONG);
  await t.getByText("Kim Lee").first().waitFor(LONG); // the people list, downloaded before going offline
  await tablet.context.setOffline(true);
  await t.getByLabel("Kind of session").selectOption("group-supervision");
  await t.getByRole("button", { name: "Start a group session" }).click();
  await t.getByRole("heading", { name: /Reflective group supervision/ }).waitFor(LONG);
  await t.getByLabel("Pat Reid").check();
  await t.getByLabel("Kim Lee").check();
  await t.getByRole("button", { name: "Add theme" }).click();
  await t.getByLabel("Theme 1").fill("Analysis under pressure");
  await t.getByLabel("Summary").fill("We worked through how each of us weighs risk when time is short.");
  await t.getByRole("button", { name: "Share with participants" }).click();
  await t.getByText("Shared with participants").first().waitFor(LONG);
  await t.getByText("Saved on this device only").first().waitFor(LONG);
  await checkAccessibility(t, "group session, facilitator");
  const sessionUrl = t.url();
  await tablet.context.setOffline(false);
  await stored(t);
  await t.goto(`${BASE}/#/`);
  log("session shared and stored");

  // The phone: Pat finds it and reflects, offline.
  const phone = await newPage(browser, SIZES.phone);
  const p = phone.page;
  await signIn(p, "pat");
  await p.getByRole("heading", { name: "Your observations" }).waitFor(LONG);
  const sessionRow = p.getByRole("listitem").filter({ has: p.getByRole("link", { name: /Reflective group supervision/ }) });
  await sessionRow.getByText("awaiting your reflection").waitFor(LONG);
  await sessionRow.getByText("New summary").waitFor(LONG);
  await checkAccessibility(p, "home with a group session, practitioner");
  await p.getByRole("link", { name: /Reflective group supervision/ }).click();
  await p.getByText("Awaiting your reflection.").waitFor(LONG);
  await p.getByText("New summary since you last opened this record.").waitFor(LONG);
  assert.equal(await p.getByLabel("Summary").count(), 0, "the summary is not a control for a participant");
  assert.ok(await p.getByText("We worked through how each of us weighs risk").isVisible());
  await phone.context.setOffline(true);
  await p.getByLabel("Your reflection").fill("I will say out loud what I am weighing before I decide.");
  await p.getByText("Saved on this device only").first().waitFor(LONG);
  await checkAccessibility(p, "group session, participant");
  await phone.context.setOffline(false);
  await stored(p);
  log("reflection stored");

  // The tablet's list marks the reflection new; opening the session shows it, then it closes.
  const facilitatorsRow = t.getByRole("listitem").filter({ has: t.getByRole("link", { name: /Reflective group supervision/ }) });
  await facilitatorsRow.getByText("New reflection").waitFor({ timeout: 90_000 });
  await facilitatorsRow.getByRole("link").click();
  await t.getByText("New reflection since you last opened this record.").waitFor(LONG);
  await t.goto(`${BASE}/#/`);
  await t.getByRole("heading", { name: "Supervisor home" }).waitFor(LONG);
  assert.equal(await facilitatorsRow.getByText("New reflection").count(), 0, "opening the session marked it seen");
  await facilitatorsRow.getByRole("link").click();
  await t.getByText("Reflections: 1 of 2.").waitFor({ timeout: 90_000 });
  await t.getByText("I will say out loud what I am weighing").waitFor(LONG);
  await t.getByRole("button", { name: "Close session" }).click();
  await t.getByText(/^Closed on/).waitFor(LONG);
  await stored(t);
  await p.getByText(/^Closed on/).waitFor({ timeout: 90_000 });
  assert.equal(await p.getByLabel("Your reflection").count(), 0, "a closed session takes no more reflections");
  log("session closed on both");

  // "You said, we did": the supervisor raises a practice theme, with counts from insights.
  await t.goto(`${BASE}/#/themes`);
  await t.getByRole("heading", { name: "You said, we did" }).waitFor(LONG);
  await t.getByLabel("What is it about?").selectOption("practice");
  await t.getByRole("button", { name: "Raise a theme" }).click();
  await t.getByLabel("The theme").waitFor(LONG);
  await t.getByLabel("The theme").fill("Direct work is rushed when caseloads peak");
  await t.getByLabel("Framework").selectOption("kss-cf-2018");
  await t.getByLabel("1. Relationships and effective direct work").check();
  await t.getByRole("button", { name: "Attach counts from insights" }).click();
  await t.getByText("Counts attached.").waitFor(LONG);
  await t.getByText("1. Relationships and effective direct work — observations: 5").waitFor(LONG);
  await stored(t);
  await checkAccessibility(t, "practice theme, raiser");
  const themeUrl = t.url();
  log("theme raised");

  // The manager, on a laptop: the leaders' home, then the answer.
  const laptop = await newPage(browser, SIZES.laptop);
  const m = laptop.page;
  await signIn(m, "mo");
  await m.getByRole("heading", { name: "Leaders' home" }).waitFor(LONG);
  const observed = m.getByRole("region", { name: "Supervisors you observe" });
  await observed.getByText("Sam Okafor").waitFor(LONG);
  const line = m.getByRole("region", { name: "Your line at a glance" });
  await line.getByRole("row", { name: /Observations Shared: 5/ }).waitFor(LONG);
  await line.getByRole("row", { name: /Group sessions Closed: 1/ }).waitFor(LONG);
  const insights = m.getByRole("region", { name: "Themes across teams" });
  await insights.getByRole("row", { name: /north 1\. Relationships and effective direct work 5 5 fewer than 5/ }).waitFor(LONG);
  await m.getByRole("link", { name: "Direct work is rushed when caseloads peak" }).waitFor({ timeout: 90_000 });
  await checkAccessibility(m, "leaders' home");
  // The manager observes the supervisor against the practice supervisors' standards.
  await m.getByRole("button", { name: "New observation" }).click();
  await m.getByLabel("Supervisor observed").selectOption({ label: "Sam Okafor" });
  assert.equal(await m.getByLabel("Framework").inputValue(), "kss-ps-2018", "a supervisor is observed against kss-ps-2018");
  await m.getByRole("button", { name: "Start observation" }).click();
  await m.getByRole("heading", { name: "Observation of Sam Okafor" }).waitFor(LONG);
  await m.getByLabel("Setting").selectOption("supervision-session");
  await stored(m);
  await m.goto(`${BASE}/#/`);
  await observed.getByText("1 observation").waitFor(LONG);
  await m.getByRole("link", { name: "Direct work is rushed when caseloads peak" }).click();
  await m.getByLabel("Your response").fill("We have booked two rooms on the second floor for calls, from Monday.");
  await m.getByRole("button", { name: "Post response" }).click();
  await m.getByLabel("Status").selectOption("acted");
  await stored(m);
  await checkAccessibility(m, "practice theme, responder");
  log("theme answered");

  // Pat, in Sam's team, reads the answer; Sam sees it too.
  await p.goto(`${BASE}/#/themes`);
  await p.getByText("We did: We have booked two rooms").waitFor({ timeout: 90_000 });
  await p.getByText("1 acted on").waitFor(LONG);
  // The response is new to Pat until Pat opens the theme.
  const themeRow = p.getByRole("listitem").filter({ has: p.getByRole("link", { name: "Direct work is rushed when caseloads peak" }) });
  await themeRow.getByText("New response").waitFor(LONG);
  await themeRow.getByRole("link", { name: "Direct work is rushed when caseloads peak" }).click();
  await p.getByText("New response since you last opened this record.").waitFor(LONG);
  await p.goto(`${BASE}/#/themes`);
  await themeRow.getByText("We did: We have booked two rooms").waitFor(LONG);
  assert.equal(await themeRow.getByText("New response").count(), 0, "opening the theme marks its response seen");
  await checkAccessibility(p, "you said, we did, team member");
  assert.equal(await p.getByRole("button", { name: "Raise a theme" }).count(), 0, "practitioners bring themes to supervision");
  await t.goto(themeUrl);
  await t.getByText("We have booked two rooms on the second floor").waitFor({ timeout: 90_000 });
  assert.equal(await t.getByLabel("Your response").count(), 0, "the raiser does not answer their own theme");
  assert.ok(sessionUrl.includes("#/sessions/"), sessionUrl);

  // Pat's CPD: the session Pat reflected in, with peer reflection, downloaded as CSV.
  await p.goto(`${BASE}/#/cpd`);
  await p.getByRole("heading", { name: "My CPD" }).waitFor(LONG);
  await p.getByRole("heading", { name: "Group supervision: Analysis under pressure" }).waitFor(LONG);
  await p.getByText("Peer reflection: met.").waitFor(LONG);
  await checkAccessibility(p, "my CPD");
  const [download] = await Promise.all([p.waitForEvent("download"), p.getByRole("button", { name: "Download as CSV" }).click()]);
  const csv = readFileSync(await download.path(), "utf8");
  assert.ok(csv.startsWith("title,date,type,description,learning,impact,peer_reflection,components,evidence"), csv);
  assert.ok(csv.includes("Group supervision: Analysis under pressure") && csv.includes("I will say out loud what I am weighing"), csv);
  // Offline, the copy last fetched still reads, and it is kept sealed.
  await phone.context.setOffline(true);
  await p.goto(`${BASE}/#/`);
  await p.goto(`${BASE}/#/cpd`);
  await p.getByRole("heading", { name: "Group supervision: Analysis under pressure" }).waitFor(LONG);
  const kept = await p.evaluate(() => localStorage.getItem("fb.cpd") ?? "");
  assert.ok(kept.length > 0 && !kept.includes("Analysis under pressure"), "the CPD copy is kept, sealed");
  await phone.context.setOffline(false);
  log("CPD downloaded");

  // Who can help: Pat offers to be a champion for area 1; the manager confirms; the
  // supervisor then finds Kim (declared by an admin) and Pat there.
  await p.goto(`${BASE}/#/expertise`);
  await p.getByLabel("Framework area").selectOption("kss-cf-2018/1");
  await p.getByText("Kim Lee").waitFor(LONG);
  await p.getByRole("button", { name: "Nominate myself as a champion for this area" }).click();
  await p.getByText("You are nominated.").waitFor(LONG);
  assert.equal(await p.getByRole("button", { name: "Nominate myself as a champion for this area" }).count(), 0, "nominated once");
  await checkAccessibility(p, "who can help, practitioner");
  await m.goto(`${BASE}/#/expertise`);
  await m.getByRole("button", { name: "Confirm Pat Reid as champion" }).click();
  await m.getByText("Pat Reid is now a practice champion").waitFor(LONG);
  await t.goto(`${BASE}/#/expertise`);
  await t.getByLabel("Framework area").selectOption("kss-cf-2018/1");
  const experts = t.getByRole("region", { name: "Champions and evidence" });
  await experts.getByRole("listitem").filter({ hasText: "Kim Lee" }).getByText("Practice champion").waitFor(LONG);
  await experts.getByRole("listitem").filter({ hasText: "Pat Reid" }).getByText(/Practice champion\. Observations met: 0/).waitFor(LONG);
  await checkAccessibility(t, "who can help, supervisor");
  log("champions found");

  // Kim is in the assessed and supported year: the plan shows the programme's evidence.
  await t.goto(`${BASE}/#/`);
  await t.getByRole("link", { name: "Development plan of Kim Lee" }).click();
  const asye = t.getByRole("region", { name: "ASYE progress" });
  await asye.getByText("Direct observations signed off: 0 of 3").waitFor(LONG);
  await asye.getByText("3 still needed").first().waitFor(LONG);
  await checkAccessibility(t, "plan with ASYE progress");
  log("ASYE progress shown");
  log("done");
} catch (e) {
  failed = true;
  console.error(e);
  for (const page of pages) {
    const text = await page.locator("main").innerText({ timeout: 2_000 }).catch(() => "(no main)");
    log(`page at ${page.url()}:\n${text}`);
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
