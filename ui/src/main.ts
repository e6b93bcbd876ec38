// The lucidnode web console: a thin shell over the documented HTTP API
// (README "Web console"). Routes are paths under /ui/ (lucid-server answers
// index.html for them); each page renders into #main and returns a cleanup
// that closes its streams and timers.
import "./style.css";
import { api, setToken, token, whenUnauthorized } from "./api";
import { h, replace } from "./dom";
import { renderSignIn } from "./pages/signin";
import { renderFleet } from "./pages/fleet";
import { renderNode } from "./pages/node";
import { renderWork } from "./pages/work";
import { renderWorkflows } from "./pages/workflows";
import { renderMoney } from "./pages/money";
import { renderAdmin } from "./pages/admin";

export type Cleanup = (() => void) | void;
export interface PageContext {
  navigate(path: string): void;
  ready(): void; // the page's data is on screen: it is interactive
  me: { subject: string; role: string } | null;
}
type Page = (root: HTMLElement, params: string[], ctx: PageContext) => Cleanup | Promise<Cleanup>;

const pages: { pattern: RegExp; name: string; render: Page; nav?: string }[] = [
  { pattern: /^\/ui\/signin$/, name: "signin", render: renderSignIn },
  { pattern: /^\/ui\/fleet$/, name: "fleet", render: renderFleet, nav: "Fleet" },
  { pattern: /^\/ui\/nodes\/([A-Za-z0-9_.-]+)$/, name: "node", render: renderNode },
  { pattern: /^\/ui\/work$/, name: "work", render: renderWork, nav: "Work" },
  { pattern: /^\/ui\/workflows$/, name: "workflows", render: renderWorkflows, nav: "Workflows" },
  { pattern: /^\/ui\/workflows\/([A-Za-z0-9_.-]+)$/, name: "workflows", render: renderWorkflows },
  { pattern: /^\/ui\/money$/, name: "money", render: renderMoney, nav: "Money" },
  { pattern: /^\/ui\/admin$/, name: "admin", render: renderAdmin, nav: "Admin" },
];

// Timings the perf test reads: first render and interactive, per page load.
declare global {
  interface Window {
    __lucidTimings: { page: string; path: string; start: number; rendered: number; interactive: number | null }[];
  }
}
window.__lucidTimings = [];

const THEME_KEY = "lucid.theme";
function applyTheme(t: string | null) {
  if (t === "dark" || t === "light") document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
}
applyTheme(localStorage.getItem(THEME_KEY));

let cleanup: Cleanup = undefined;
let me: PageContext["me"] = null;
const app = document.getElementById("app")!;

function navLink(label: string, path: string, current: string) {
  const here = current === path || current.startsWith(path + "/");
  const a = h("a", { href: path, class: here ? "active" : null, "aria-current": here ? "page" : null }, label);
  a.addEventListener("click", (e) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(path);
  });
  return a;
}

function shell(path: string): HTMLElement {
  const main = h("main", { id: "main", tabindex: "-1" });
  if (path === "/ui/signin") {
    replace(app, h("div", { class: "signin-wrap" }, main));
    return main;
  }
  const themeBtn = h("button", { type: "button", class: "ghost", id: "theme-toggle", "aria-label": "Switch dark or light theme" },
    document.documentElement.dataset.theme === "dark" ? "Light" : document.documentElement.dataset.theme === "light" ? "Dark" : "Theme");
  themeBtn.addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === "dark"
      : matchMedia("(prefers-color-scheme: dark)").matches;
    const next = dark ? "light" : "dark";
    localStorage.setItem(THEME_KEY, next);
    applyTheme(next);
    themeBtn.textContent = next === "dark" ? "Light" : "Dark";
  });
  const signOut = h("button", { type: "button", class: "ghost", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", async () => {
    try {
      await api("POST", "/api/v1/auth/logout");
    } catch {
      /* an admin token without a session is revoked too; either way we forget it */
    }
    setToken(null);
    me = null;
    navigate("/ui/signin");
  });
  replace(app,
    h("a", { href: "#main", class: "skip" }, "Skip to content"),
    h("header", { class: "top" },
      h("a", { href: "/ui/fleet", class: "brand" }, h("img", { src: "/ui/icon.svg", alt: "", width: 22, height: 22 }), "lucidnode"),
      h("nav", { "aria-label": "Pages" }, pages.filter((p) => p.nav).map((p) => navLink(p.nav!, "/ui/" + p.name, path))),
      h("span", { class: "who" }, me ? `${me.subject} (${me.role})` : ""),
      themeBtn, signOut),
    main);
  return main;
}

export async function navigate(path: string, replaceState = false) {
  if (path !== location.pathname) {
    if (replaceState) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
  }
  await route();
}

async function loadMe(): Promise<boolean> {
  if (!token()) return false;
  if (me) return true;
  try {
    const s = await api("GET", "/api/v1/auth/status");
    me = { subject: s.user?.email ?? s.user?.username ?? "token", role: s.role ?? "?" };
    return true;
  } catch {
    setToken(null);
    return false;
  }
}

async function route() {
  if (typeof cleanup === "function") cleanup();
  cleanup = undefined;
  let path = location.pathname.replace(/\/+$/, "");
  if (path === "/ui" || path === "") path = "/ui/fleet";
  if (path !== "/ui/signin" && !(await loadMe())) {
    history.replaceState(null, "", "/ui/signin?next=" + encodeURIComponent(path));
    path = "/ui/signin";
  }
  if (path !== location.pathname) history.replaceState(null, "", path + (path === "/ui/signin" ? location.search : ""));
  const start = performance.now();
  const found = pages.find((p) => p.pattern.test(path));
  const main = shell(path);
  document.body.dataset.page = found ? found.name : "notfound";
  delete document.body.dataset.ready;
  const timing = { page: found ? found.name : "notfound", path, start, rendered: 0, interactive: null as number | null };
  window.__lucidTimings.push(timing);
  if (!found) {
    replace(main, h("h1", {}, "Not found"), h("p", {}, "No console page at " + path + "."));
    timing.rendered = performance.now();
    return;
  }
  const ctx: PageContext = {
    navigate: (p) => void navigate(p),
    // Interactive: the page's data is in the DOM and has been painted (the
    // frame after the one that drew it), so it is never before first render.
    ready: () => {
      requestAnimationFrame(() => setTimeout(() => {
        if (timing.interactive === null) timing.interactive = performance.now();
        if (window.__lucidTimings[window.__lucidTimings.length - 1] === timing) document.body.dataset.ready = timing.page;
      }, 0));
    },
    me,
  };
  document.title = "lucidnode · " + (found.nav ?? found.name);
  try {
    cleanup = await found.render(main, found.pattern.exec(path)!.slice(1), ctx);
  } catch (e) {
    replace(main, h("p", { class: "error", role: "alert" }, String((e as Error).message ?? e)));
  }
  timing.rendered = timing.rendered || performance.now();
  requestAnimationFrame(() => { timing.rendered = performance.now(); });
}

whenUnauthorized(() => {
  setToken(null);
  me = null;
  if (location.pathname !== "/ui/signin") void navigate("/ui/signin?next=" + encodeURIComponent(location.pathname));
});
window.addEventListener("popstate", () => void route());
export function signedIn(t: string, refresh: string | null, next: string) {
  setToken(t, refresh);
  me = null;
  void navigate(next.startsWith("/ui/") && !next.startsWith("/ui/signin") ? next : "/ui/fleet");
}
void route();
