// The page in a real browser: Debian's chromium, driven by playwright-core, each person with
// their own client certificate in their own NSS database (a HOME each), picked by the
// AutoSelectCertificateForUrls policy that scripts/install-deps puts in place.
//
// tests/integration/test_browser.py prepares the daemon, the data and the homes, then runs
//   node scenario.mjs
// with FRISTAD_URL, FRISTAD_HOMES (JSON: name -> HOME), FRISTAD_SHOTS (a directory) and
// FRISTAD_CHROMIUM. Each step prints one line "ok STEP" or "FAIL STEP: why"; the exit status is
// 0 only when every step passed.
//
// The scenario: a social worker searches and holds; the shelter's page shows the hold appear
// without a reload, with a banner and a sound, and accepts; the social worker's page shows it
// accepted. Admin and on-call pages load. A browser without a certificate gets no page. Every
// role's page is screenshotted, and axe-core finds no serious or critical violation of WCAG 2.1
// A/AA on any of them.
import { chromium } from "playwright-core";
import { AxeBuilder } from "@axe-core/playwright";
import path from "node:path";

const url = process.env.FRISTAD_URL;
const homes = JSON.parse(process.env.FRISTAD_HOMES || "{}");
const shots = process.env.FRISTAD_SHOTS;
const executablePath = process.env.FRISTAD_CHROMIUM || "/usr/lib/chromium/chromium";
const WAIT = 15000;

let failed = 0;
const browsers = [];

async function step(name, fn) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${String(e && e.stack || e).split("\n").slice(0, 6).join(" | ")}`);
  }
}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function open(who, viewport) {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    env: { ...process.env, HOME: homes[who] },
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
           "--autoplay-policy=no-user-gesture-required"],
  });
  browsers.push(browser);
  const context = await browser.newContext({
    locale: "sv-SE", timezoneId: "Europe/Stockholm",
    viewport: viewport || { width: 1280, height: 900 },
  });
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") page.errors.push(m.text()); });
  return page;
}

async function load(page) {
  await page.goto(url, { waitUntil: "domcontentloaded", timeout: WAIT });
  await page.waitForSelector("body[data-ready=true]", { timeout: WAIT });
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, name + ".png"), fullPage: true });
}

async function accessible(page, name) {
  const res = await new AxeBuilder({ page })
    .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"])
    .analyze();
  const bad = res.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of res.violations)
    console.log(`axe ${name}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.length} nodes: ` +
                `${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; ")})`);
  check(bad.length === 0, `${bad.length} serious or critical accessibility violations`);
}

function noErrors(page) {
  // The watch reconnecting is not an error of the page; anything else is.
  const errs = page.errors.filter((e) => !/EventSource|ERR_|net::/.test(e));
  check(errs.length === 0, "errors in the page: " + errs.join(" | "));
}

const social = await open("social");
const shelter = await open("shelter");
let holdId = null;

await step("social page loads with the referral form", async () => {
  await load(social);
  await social.waitForSelector("#view-social:not([hidden])", { timeout: WAIT });
  check((await social.inputValue("#home")).includes("0180"), "the home municipality is prefilled");
  check(await social.textContent("#h-referral") === "Sök plats", "the page speaks Swedish");
});

await step("shelter page loads with its units and no holds", async () => {
  await load(shelter);
  await shelter.waitForSelector("#view-shelter:not([hidden])", { timeout: WAIT });
  await shelter.waitForSelector("#units li[data-unit=r1]", { timeout: WAIT });
  check(await shelter.isVisible("#incoming-empty"), "no incoming holds yet");
  await shelter.waitForSelector("body[data-live=on]", { timeout: WAIT });
  await shot(shelter, "shelter-before");
});

await step("social worker searches for a mother and her daughter", async () => {
  await social.selectOption("#risk", "high");
  await social.click("#add-child");
  await social.fill("#children li:last-child input.age", "9");
  await social.selectOption("#children li:last-child select.sex", "f");
  await social.click("#add-perp");
  await social.fill("#perpetrator li:last-child input.muni", "Södertälje");
  await social.fill("#ref", "KS-2026-0417");
  await social.fill("#callback", "070-555 12 34");
  await social.click("#search");
  await social.waitForSelector("#results li.card", { timeout: WAIT });
  const first = await social.getAttribute("#results li.card button.hold", "data-shelter");
  check(first === "frida-uppsala", `the first result is frida-uppsala, not ${first}`);
  await shot(social, "social-search");
});

await step("a needed competence no shelter has rules every unit out, and says so", async () => {
  await social.check("#competences input[value=hbv]");
  await social.click("#search");
  await social.waitForSelector("#nomatch:not([hidden]) #reasons li", { timeout: WAIT });
  const reasons = await social.textContent("#reasons");
  check(/saknar kompetensen som behövs: [1-9]/.test(reasons), "ruled out by competence: " + reasons);
  check(!reasons.includes("reason."), "every reason has a label: " + reasons);
  await social.uncheck("#competences input[value=hbv]");
  await social.click("#search");
  await social.waitForSelector("#results li.card", { timeout: WAIT });
});

await step("social page is accessible", async () => accessible(social, "social"));

await step("social worker holds the first result", async () => {
  await social.click("#results li.card button.hold");
  await social.waitForSelector("#my-holds li[data-state=held]", { timeout: WAIT });
  holdId = await social.getAttribute("#my-holds li[data-state=held]", "data-hold");
  check(/^h[a-z]{16}$/.test(holdId || ""), "a hold id: " + holdId);
  check((await social.textContent("#message")).includes("018-"), "the intake phone is shown");
});

await step("the shelter sees the hold appear without a reload, seen and heard", async () => {
  await shelter.waitForSelector(`#incoming li[data-hold=${holdId}][data-state=held]`,
                                { timeout: WAIT });
  await shelter.waitForSelector("#alert:not([hidden])", { timeout: WAIT });
  const text = await shelter.textContent(`#incoming li[data-hold=${holdId}]`);
  check(text.includes("flicka 9 år"), "the household is shown: " + text);
  check(text.includes("070-555 12 34"), "the callback number is shown");
  await shot(shelter, "shelter-incoming");
});

await step("shelter page is accessible", async () => accessible(shelter, "shelter"));

await step("the shelter accepts", async () => {
  await shelter.click(`#incoming li[data-hold=${holdId}] button.accept`);
  await shelter.waitForSelector(`#incoming li[data-hold=${holdId}][data-state=accepted]`,
                                { timeout: WAIT });
});

await step("the social worker's page shows it accepted without a reload", async () => {
  await social.waitForSelector(`#my-holds li[data-hold=${holdId}][data-state=accepted]`,
                               { timeout: WAIT });
  await shot(social, "social-accepted");
});

await step("the shelter sets a unit's vacancy with its switch", async () => {
  await shelter.click("#units li[data-unit=r2] label:has(input[value=free])");
  await shelter.waitForSelector("#units li[data-unit=r2] input[value=free]:checked",
                                { timeout: WAIT });
});

await step("English is one switch away", async () => {
  await social.click("#lang");
  check(await social.textContent("#h-referral") === "Find a place", "the heading is English");
  await shot(social, "social-english");
  await social.click("#lang");
});

await step("the shelter's page on a phone", async () => {
  const phone = await open("shelter", { width: 390, height: 844 });
  await load(phone);
  await phone.waitForSelector(`#incoming li[data-hold=${holdId}]`, { timeout: WAIT });
  const wide = await phone.evaluate(() => document.documentElement.scrollWidth);
  check(wide <= 400, `no sideways scrolling on a phone (page is ${wide} px wide)`);
  await shot(phone, "shelter-phone");
  noErrors(phone);
});

await step("admin page: registry, audit trail, statistics", async () => {
  const admin = await open("admin");
  await load(admin);
  await admin.waitForSelector("#registry tbody tr", { timeout: WAIT });
  await admin.waitForSelector("#audit tbody tr", { timeout: WAIT });
  const audit = await admin.textContent("#audit tbody");
  check(audit.includes("hold.accept"), "the audit trail shows the acceptance");
  await admin.fill("#au-principal", "social:0180");
  await admin.click("#audit-filter button[type=submit]");
  await admin.waitForFunction(() => [...document.querySelectorAll("#audit tbody tr td:nth-child(2)")]
    .every((td) => td.textContent === "social:0180"), null, { timeout: WAIT });
  await shot(admin, "admin");
  await accessible(admin, "admin");
});

await step("admin registers protected housing with its operator, IVO permit and competences", async () => {
  const admin = await open("admin");
  await load(admin);
  await admin.click("details:has(#shelter-add) summary");
  await admin.fill("#sa-id", "skydd-gavle");
  await admin.fill("#sa-name", "Skyddat boende Gävle");
  await admin.selectOption("#sa-kind", "skyddat_boende");
  await admin.fill("#sa-mun", "Gävle");
  await admin.selectOption("#sa-prot", "3");
  await admin.fill("#sa-phone", "026-555 03 03");
  await admin.selectOption("#sa-operator", "ideell");
  await admin.fill("#sa-permit", "3.5.1-12345/2025");
  await admin.fill("#sa-permit-date", "2025-03-14");
  await admin.check("#sa-competences input[value=hbv]");
  await admin.check("#sa-competences input[value=deaf]");
  await admin.click("#shelter-add button[type=submit]");
  await admin.waitForFunction(() => document.querySelector("#registry tbody")?.textContent
    .includes("skydd-gavle"), null, { timeout: WAIT });
  await accessible(admin, "admin-add");
  noErrors(admin);
});

await step("on-call page loads", async () => {
  const oncall = await open("oncall");
  await load(oncall);
  await oncall.waitForSelector("#for-field:not([hidden])", { timeout: WAIT });
  await shot(oncall, "oncall");
  await accessible(oncall, "oncall");
  noErrors(oncall);
});

await step("a browser without a certificate gets no page", async () => {
  const stranger = await open("nocert");
  let got = null;
  try {
    const res = await stranger.goto(url, { waitUntil: "domcontentloaded", timeout: WAIT });
    got = res ? `HTTP ${res.status()}` : "a response";
  } catch (e) {
    check(/ERR_/.test(String(e)), "the load fails with a network error: " + e);
  }
  check(got === null, "no page is served, but the browser got " + got);
  // The browser shows its own error page: wait until it has, then look.
  await stranger.waitForLoadState("load", { timeout: WAIT }).catch(() => {});
  let html = "";
  for (let i = 0; i < 20; i++) {
    try { html = await stranger.content(); break; } catch (e) { await stranger.waitForTimeout(250); }
  }
  check(!html.includes('id="referral"') && !html.includes("/app.js"), "none of the page was shown");
});

await step("no script errors on the pages", async () => {
  noErrors(social);
  noErrors(shelter);
});

for (const b of browsers) await b.close().catch(() => {});
console.log(`${failed === 0 ? "passed" : "failed"}: ${failed} step(s) failed`);
process.exit(failed === 0 ? 0 : 1);
