// Issue 16's browser test, driven by test_console_browser.py: headless
// Chromium (Debian's, through puppeteer-core) uses the console the way an
// operator does. Config (JSON) comes in LUCID_E2E; the outcome goes to
// stdout as one JSON line; screenshots go to cfg.artifacts. Exit 0 when every
// step passed, 1 otherwise (the failing step and the page's text say why).
import { createRequire } from "node:module";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const cfg = JSON.parse(process.env.LUCID_E2E);
const require = createRequire(join(cfg.ui_dir, "package.json"));
const puppeteer = require("puppeteer-core");
mkdirSync(cfg.artifacts, { recursive: true });
for (const f of readdirSync(cfg.artifacts)) if (f.startsWith("failed-")) rmSync(join(cfg.artifacts, f));

const steps = [];
const consoleErrors = [];
const out = { ok: false, steps, console_errors: consoleErrors };
let browser, page;

async function step(name, f) {
  const t0 = Date.now();
  try {
    const v = await f();
    steps.push({ name, ms: Date.now() - t0 });
    return v;
  } catch (e) {
    steps.push({ name, ms: Date.now() - t0, error: String(e && e.message || e) });
    if (page) {
      try {
        await page.screenshot({ path: join(cfg.artifacts, "failed-" + name.replace(/\W+/g, "_") + ".png"), fullPage: true });
        out.page_text = (await page.evaluate(() => document.body.innerText)).slice(0, 3000);
      } catch { /* the page is gone */ }
    }
    throw e;
  }
}
const shot = (name) => page.screenshot({ path: join(cfg.artifacts, name + ".png"), fullPage: true });
const text = (sel) => page.$eval(sel, (e) => e.textContent);
const waitText = (sel, re, timeout = 30000) =>
  page.waitForFunction((s, r) => { const e = document.querySelector(s); return e && new RegExp(r).test(e.textContent); },
    { timeout, polling: 200 }, sel, re.source);
const goto = async (path, name) => {
  await page.click(`header nav a[href="${path}"]`);
  await page.waitForFunction((n) => document.body.dataset.ready === n, { timeout: 30000 }, name);
};
// From the fleet table to a node's page, by its hostname (the row's link).
const openNode = async (hostname) => {
  await goto("/ui/fleet", "fleet");
  await page.waitForFunction((h) => [...document.querySelectorAll(".vrow")].some((r) => r.textContent.includes(h) && r.querySelector("a")),
    { timeout: 30000, polling: 200 }, hostname);
  const href = await page.evaluate((h) => [...document.querySelectorAll(".vrow")].find((r) => r.textContent.includes(h)).querySelector("a").getAttribute("href"), hostname);
  await page.click(`.vrow a[href="${href}"]`);
  await page.waitForFunction(() => document.body.dataset.ready === "node", { timeout: 30000 });
  return href;
};
const esc = (t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const setValue = async (sel, value) => {
  await page.$eval(sel, (e) => { e.value = ""; });
  await page.type(sel, value);
};
// The server runs without --smtp-url, so the login mail is a file in its
// outbox: the newest one addressed to `email` that was not there before.
const mailedCode = async (email, before, timeout = 15000) => {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const names = existsSync(cfg.outbox_dir) ? readdirSync(cfg.outbox_dir).filter((f) => f.endsWith(".eml") && !before.has(f)).sort() : [];
    for (const f of names.reverse()) {
      const text = readFileSync(join(cfg.outbox_dir, f), "utf8");
      const m = /sign-in code is ([0-9]{6})/.exec(text);
      if (m && text.toLowerCase().includes(email.toLowerCase())) return m[1];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("no login mail for " + email + " in " + cfg.outbox_dir);
};

try {
  browser = await puppeteer.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: ["--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", ...(cfg.no_sandbox ? ["--no-sandbox"] : [])],
    userDataDir: cfg.profile,
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1360, height: 900 });
  // HTTP errors the flow provokes (the wrong token's 401) are shown in the
  // page and logged by Chromium as "Failed to load resource"; anything else
  // on the console is a fault.
  page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push("pageerror: " + e.message));
  page.on("response", (r) => {
    // The token must never travel in a URL except on the SSE stream and the WebSocket.
    const u = r.url();
    if (u.includes("token=") && !u.includes("/stats/stream") && !u.includes("/api/ws")) consoleErrors.push("token in URL: " + u);
  });

  await step("sign in with the admin token", async () => {
    await page.goto(cfg.url + "/", { waitUntil: "domcontentloaded" });
    await page.waitForSelector("#token-form");
    if (!page.url().endsWith("/ui/signin?next=%2Fui%2Ffleet")) throw new Error("not sent to sign-in: " + page.url());
    await shot("signin");
    // A wrong token is refused with the API's message, not accepted.
    await page.type("#token", "not-a-token");
    await page.click("#token-form button[type=submit]");
    await waitText("#signin-error", /./);
    await page.$eval("#token", (e) => { e.value = ""; });
    await page.type("#token", cfg.token);
    await page.click("#token-form button[type=submit]");
    await page.waitForFunction(() => document.body.dataset.ready === "fleet", { timeout: 30000 });
    const stored = await page.evaluate(() => ({ session: sessionStorage.getItem("lucid.token") !== null, local: Object.keys(localStorage), url: location.href }));
    if (!stored.session || stored.local.includes("lucid.token") || stored.url.includes("token")) throw new Error("token storage: " + JSON.stringify(stored));
  });

  await step("see the agent pending", async () => {
    await page.waitForSelector(`#pending-rows tr[data-hostname="${cfg.agent_hostname}"]`, { timeout: 30000 });
    await shot("fleet-pending");
  });

  await step("approve it by its code", async () => {
    await page.type("#approve-code", cfg.code);
    await page.click("#approve-form button[type=submit]");
    await waitText("#fleet-info", new RegExp("Approved " + cfg.agent_hostname));
    await page.waitForFunction((h) => !document.querySelector(`#pending-rows tr[data-hostname="${h}"]`), { timeout: 15000 }, cfg.agent_hostname);
  });

  await step("see it online with live stats", async () => {
    await page.waitForFunction((h) => {
      for (const row of document.querySelectorAll(".vrow")) {
        if (row.textContent.includes(h) && row.querySelector(".health .badge-online") && /\d/.test(row.querySelector(".cpu").textContent)) return true;
      }
      return false;
    }, { timeout: 60000, polling: 250 }, cfg.agent_hostname);
    await waitText("#count-online", /^[1-9]/);
    await waitText("#live-state", /live/);
    out.fleet_row = await page.evaluate((h) => [...document.querySelectorAll(".vrow")].map((r) => r.textContent).find((t) => t.includes(h)), cfg.agent_hostname);
    await shot("fleet");
  });

  await step("node detail with its resource chart", async () => {
    const href = await page.evaluate((h) => [...document.querySelectorAll(".vrow")].find((r) => r.textContent.includes(h)).querySelector("a").getAttribute("href"), cfg.agent_hostname);
    await page.click(`.vrow a[href="${href}"]`);
    await page.waitForFunction(() => document.body.dataset.ready === "node", { timeout: 30000 });
    await page.waitForSelector("#node-chart svg.chart path.line", { timeout: 30000 });
    // Cordon then uncordon, through the buttons.
    await page.click("#act-cordon");
    await waitText("#node-info", /Cordon: done/);
    await waitText(".details", /Schedulable\s*no/);
    await page.click("#act-uncordon");
    await waitText("#node-info", /Uncordon: done/);
    await waitText(".details", /Schedulableyes/);
    // Storage through the node's integer id: the default quota, and the
    // empty states of an agent that reported no sites and no backups.
    await waitText("#quota-gb", /^100$/);
    await waitText("#quota-state", /within quota/);
    await page.waitForSelector("#quota-sites-empty");
    await page.waitForSelector("#sites-empty");
    await page.waitForSelector("#backups-empty");
    await waitText("#backup-count", /^0$/);
    if (!(await page.$("#quota-form"))) throw new Error("a super admin sees no quota form");
    await shot("node");
  });

  await step("node storage: quota, sites, backups; update the quota", async () => {
    out.storage_node = await openNode(cfg.storage_hostname);
    for (const site of cfg.storage_sites) await page.waitForSelector(`#site-rows tr[data-site="${site}"]`, { timeout: 30000 });
    await page.waitForSelector(`#quota-sites tr[data-site="${cfg.over_quota_site}"] .badge-over_quota`);
    await waitText("#backup-count", new RegExp(`^1–${cfg.storage_backups.length} of ${cfg.storage_backups.length}$`));
    for (const b of cfg.storage_backups) await waitText("#backup-rows", new RegExp(esc(b)));
    await waitText("#quota-state", /within quota/);
    // The server's validation message, shown by the form; nothing changes.
    await setValue("#quota-input", "0");
    await page.click("#quota-form button[type=submit]");
    await waitText("#quota-error", /storage_quota_gb.*greater than 0/);
    await waitText("#quota-gb", /^100$/);
    // A quota below what the sites use: the node is over it.
    await setValue("#quota-input", String(cfg.new_quota));
    await page.click("#quota-form button[type=submit]");
    const shown = esc(cfg.new_quota.toFixed(2)); // as fmtNum shows a fraction
    await waitText("#quota-info", new RegExp(`Quota set to ${shown} GB`));
    await waitText("#quota-gb", new RegExp(`^${shown}$`));
    await waitText("#quota-state", /over quota/);
    if ((await text("#quota-error")) !== "") throw new Error("the error stayed: " + (await text("#quota-error")));
    await shot("node-storage");
  });

  await step("submit an echo task and read its result; the agent is a device", async () => {
    await goto("/ui/work", "work");
    await page.select("#task-type", "echo");
    await page.$eval("#task-payload", (e) => { e.value = ""; });
    await page.type("#task-payload", JSON.stringify({ message: cfg.echo }));
    await page.click("#task-form button[type=submit]");
    await waitText("#work-info", /Submitted task/);
    await waitText("#detail-status", /^success$/, 60000);
    await waitText("#task-result", new RegExp(cfg.echo));
    await waitText("#device-rows", new RegExp(cfg.agent_hostname));
    out.task_id = await text("#detail-id");
    out.task_result = await text("#task-result");
    await shot("work");
  });

  await step("run a two-job workflow and see its output", async () => {
    await goto("/ui/workflows", "workflows");
    await page.click(`#wf-rows tr[data-workflow="${cfg.workflow_id}"] a`);
    await page.waitForFunction(() => document.body.dataset.ready === "workflows" && document.querySelector("#wf-execute"), { timeout: 30000 });
    const boxes = await page.$$eval("svg.dag g.dag-node", (g) => g.length);
    if (boxes !== 2) throw new Error("the DAG shows " + boxes + " nodes");
    await page.click("#wf-execute");
    await waitText("#exec-state", /^COMPLETED$/, 60000);
    await waitText("#exec-output", new RegExp(cfg.expected_output), 30000);
    out.workflow_output = await text("#exec-output");
    await shot("workflows");
  });

  await step("verify the ledger", async () => {
    await goto("/ui/money", "money");
    await page.click("#verify-ledger");
    await waitText("#verify-result", /Intact: \d+ blocks/);
    out.verify = await text("#verify-result");
    await shot("money");
  });

  await step("admin page: a runtime setting, the theme toggle", async () => {
    await goto("/ui/admin", "admin");
    await page.waitForSelector("#user-rows tr");
    // A runtime setting changed through the form reaches the server.
    await page.$eval("#hb-interval", (e) => { e.value = ""; });
    await page.type("#hb-interval", "61");
    await page.click("#heartbeat-form button[type=submit]");
    await waitText("#admin-info", /Heartbeat settings saved/);
    await waitText("#server-config", /"interval": 61/);
    // The user who signs in by email later: an admin, made here.
    await setValue("#new-user-email", cfg.user_email);
    await setValue("#new-user-name", cfg.user_name);
    await page.select("#new-user-role", "admin");
    await page.click("#user-form button[type=submit]");
    await waitText("#admin-info", new RegExp("Added " + esc(cfg.user_email)));
    await waitText("#user-rows", new RegExp(esc(cfg.user_email)));
    await page.click("#theme-toggle");
    out.theme = await page.evaluate(() => document.documentElement.dataset.theme);
    await shot("admin");
  });

  await step("keyboard: tab reaches the navigation", async () => {
    await page.goto(cfg.url + "/ui/fleet", { waitUntil: "domcontentloaded" });
    await page.waitForFunction(() => document.body.dataset.ready === "fleet", { timeout: 30000 });
    const seen = [];
    for (let i = 0; i < 12 && seen[seen.length - 1] !== "Work"; i++) {
      await page.keyboard.press("Tab");
      seen.push(await page.evaluate(() => document.activeElement && (document.activeElement.textContent || document.activeElement.id).trim()));
    }
    if (seen[seen.length - 1] !== "Work") throw new Error("Tab never reached the Work link: " + JSON.stringify(seen));
    if (seen[0] !== "Skip to content") throw new Error("the first Tab stop is not the skip link: " + JSON.stringify(seen));
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.body.dataset.ready === "work", { timeout: 30000 });
  });

  await step("sign out", async () => {
    await page.click("#sign-out");
    await page.waitForSelector("#token-form");
    const t = await page.evaluate(() => sessionStorage.getItem("lucid.token"));
    if (t !== null) throw new Error("the token survived sign-out");
  });

  await step("sign in with the mailed code", async () => {
    await page.waitForSelector("#email-form");
    const before = new Set(existsSync(cfg.outbox_dir) ? readdirSync(cfg.outbox_dir) : []);
    await setValue("#email", cfg.user_email);
    await page.click("#email-form button[type=submit]");
    await page.waitForFunction(() => { const c = document.querySelector("#code"); return c && c.offsetParent !== null && document.activeElement === c; },
      { timeout: 15000 });
    const code = await mailedCode(cfg.user_email, before);
    // A wrong code is refused with the API's message.
    const wrong = String((Number(code[0]) + 1) % 10) + code.slice(1);
    await page.type("#code", wrong);
    await page.click("#email-form button[type=submit]");
    await waitText("#signin-error", /./);
    if (await page.evaluate(() => sessionStorage.getItem("lucid.token") !== null)) throw new Error("a wrong code signed in");
    await setValue("#code", code);
    if ((await text("#signin-error")) !== "") throw new Error("the refused code's message stayed while the code was corrected");
    await shot("signin-email");
    await page.click("#email-form button[type=submit]");
    await page.waitForFunction(() => document.body.dataset.ready === "fleet", { timeout: 30000 });
    await waitText("header .who", new RegExp(esc(cfg.user_email) + " \\(admin\\)"));
    const stored = await page.evaluate(() => ({ token: sessionStorage.getItem("lucid.token"), refresh: sessionStorage.getItem("lucid.refresh") !== null,
      local: Object.keys(localStorage), url: location.href, cookies: document.cookie }));
    if (!stored.token || !stored.refresh || stored.local.some((k) => k !== "lucid.theme") || stored.url.includes("token") || stored.cookies)
      throw new Error("session storage: " + JSON.stringify({ ...stored, token: !!stored.token }));
    out.email_token = stored.token;
  });

  await step("as an admin: the node's storage, no quota form", async () => {
    await openNode(cfg.storage_hostname);
    await waitText("#quota-gb", new RegExp(`^${esc(cfg.new_quota.toFixed(2))}$`));
    await page.waitForSelector(`#site-rows tr[data-site="${cfg.over_quota_site}"]`);
    if (await page.$("#quota-form")) throw new Error("an admin (not a super admin) is shown the quota form");
    await page.click("#sign-out");
    await page.waitForSelector("#email-form");
  });
  out.ok = consoleErrors.length === 0;
  if (!out.ok) out.error = "browser console errors";
} catch (e) {
  out.ok = false;
  out.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close().catch(() => {});
}
writeFileSync(join(cfg.artifacts, "result.json"), JSON.stringify(out, null, 2));
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
