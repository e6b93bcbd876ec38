// Issue 16's page timings, driven by test_console_perf.py: opens every
// console page in headless Chromium against a server holding 10,000 nodes
// and 100,000 tasks and records, per page, the time to first render (first
// contentful paint of a fresh load) and to interactive (the page's data in
// the DOM and painted: body[data-ready]). Prints one JSON line; never judges the times.
import { createRequire } from "node:module";
import { join } from "node:path";

const cfg = JSON.parse(process.env.LUCID_E2E);
const require = createRequire(join(cfg.ui_dir, "package.json"));
const puppeteer = require("puppeteer-core");

const out = { ok: false, pages: [] };
let browser;
try {
  browser = await puppeteer.launch({
    executablePath: cfg.chromium, headless: true, userDataDir: cfg.profile,
    args: ["--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", ...(cfg.no_sandbox ? ["--no-sandbox"] : [])],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1360, height: 900 });
  await page.evaluateOnNewDocument((t) => sessionStorage.setItem("lucid.token", t), cfg.token);
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  for (const [name, path] of cfg.pages) {
    await page.goto(cfg.url + path, { waitUntil: "domcontentloaded" });
    await page.waitForFunction((n) => document.body.dataset.ready === n, { timeout: 120000, polling: 50 }, name);
    const t = await page.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0];
      const fcp = performance.getEntriesByType("paint").find((p) => p.name === "first-contentful-paint");
      const last = window.__lucidTimings[window.__lucidTimings.length - 1];
      return { first_render_ms: fcp ? fcp.startTime : last.rendered, interactive_ms: last.interactive,
               dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd : null,
               rows: document.querySelectorAll(".vrow, tbody tr").length };
    });
    out.pages.push({ page: name, path, ...t });
    if (name === "fleet") {
      // The screenshot with live figures: after the stream's first event.
      const t0 = Date.now();
      await page.waitForFunction(() => /live/.test(document.querySelector("#live-state").textContent), { timeout: 60000, polling: 100 });
      out.fleet_live_ms = Date.now() - t0 + t.interactive_ms;
    }
    await page.screenshot({ path: join(cfg.artifacts, "perf-" + name + ".png") });
  }
  // Scrolling the fleet to its far end fetches that page only.
  await page.goto(cfg.url + "/ui/fleet", { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => document.body.dataset.ready === "fleet", { timeout: 120000 });
  const t0 = Date.now();
  await page.$eval(".vviewport", (v) => { v.scrollTop = v.scrollHeight; });
  await page.waitForFunction((n) => [...document.querySelectorAll(".vrow:not(.loading)")].some((r) => Number(r.dataset.index) === n - 1),
    { timeout: 60000, polling: 50 }, cfg.nodes);
  out.scroll_to_end_ms = Date.now() - t0;
  out.errors = errors;
  out.ok = errors.length === 0;
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close().catch(() => {});
}
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
