// One node: its record (node-management), resource history as an SVG chart
// (GET /nodes/{id}/resources/metrics), PoOT score, and the lifecycle
// actions: cordon, uncordon, drain, remove. Storage (node-registration):
// quota status with its per-site breakdown, the sites and backups the
// node's agent reported, and for a super admin the quota form. Those routes
// take the row's integer id, which the management object carries as `id`.
import { api, ApiError, qs } from "../api";
import { lineChart } from "../chart";
import { badge, button, field, fmtNum, fmtTime, h, replace } from "../dom";
import type { PageContext } from "../main";

const BACKUPS_PER_PAGE = 20;

// A table that scrolls sideways in its panel rather than overflowing it.
function table(head: string[], body: HTMLElement): HTMLElement {
  return h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))), body));
}

function emptyRow(cols: number, text: string, id: string): HTMLTableRowElement {
  return h("tr", { id }, h("td", { colspan: cols, class: "hint" }, text));
}

// Within, warning (a site at 80 % or more of its quota) or over quota.
function quotaBadge(over: boolean, warning = false): HTMLElement {
  const [cls, word] = over ? ["over_quota", "over quota"] : warning ? ["warning", "warning"] : ["within", "within quota"];
  return h("span", { class: "badge badge-" + cls }, word);
}

export async function renderNode(root: HTMLElement, params: string[], ctx: PageContext) {
  const id = params[0];
  const msg = h("p", { class: "error", role: "alert", id: "node-error" });
  const info = h("p", { class: "ok", role: "status", id: "node-info" });
  const say = (e: unknown) => { msg.textContent = e instanceof ApiError ? e.message : String(e); };
  const details = h("dl", { class: "details" });
  const chart = h("div", { id: "node-chart" });
  const range = h("select", { id: "range", "aria-label": "Time range" }, ["1h", "6h", "24h", "7d"].map((r) => h("option", { value: r }, r)));
  let timer: ReturnType<typeof setInterval> | undefined;
  let regId: number | null = null; // the registration view's integer id

  async function loadNode() {
    const n = await api("GET", `/api/v1/nodes/${encodeURIComponent(id)}`);
    regId = Number.isSafeInteger(n.id) ? n.id : null;
    replace(details,
      ...([
        ["Node", n.node_id], ["Name", n.name], ["Hostname", n.hostname], ["Registration", badge(n.registration_status)],
        ["Lifecycle", badge(n.status)], ["Schedulable", n.schedulable ? "yes" : "no (cordoned, draining or in maintenance)"],
        ["Drain", n.drain ? `until ${fmtTime(n.drain.deadline)}, ${n.drain.running_tasks} running${n.drain.complete ? " (complete)" : ""}` : "—"],
        ["Pool", n.pool_id ?? "—"], ["Type", n.node_type], ["PoOT score", fmtNum(n.poot_score, 2)],
        ["Last heartbeat", fmtTime(n.last_heartbeat)], ["Created", fmtTime(n.created_at)],
      ] as [string, any][]).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    return n;
  }

  async function loadChart() {
    const end = new Date();
    const hours = { "1h": 1, "6h": 6, "24h": 24, "7d": 168 }[range.value] ?? 1;
    const start = new Date(end.getTime() - hours * 3600e3);
    const gran = hours <= 1 ? "1m" : hours <= 6 ? "5m" : hours <= 24 ? "15m" : "1h";
    // One request: every metric's buckets (avg per bucket), CPU and memory drawn.
    const m = await api("GET", `/api/v1/nodes/${encodeURIComponent(id)}/resources/metrics` +
      qs({ granularity: gran, start_time: start.toISOString(), end_time: end.toISOString() }));
    const series = (type: string) => ((m.metrics ?? []).find((x: any) => x.metric_type === type)?.data_points ?? [])
      .map((p: any) => ({ t: Date.parse(p.timestamp), v: typeof p.avg === "number" ? p.avg : null }));
    const [cpu, mem] = [series("cpu"), series("memory")];
    replace(chart, lineChart([{ points: cpu, cls: "line" }, { points: mem, cls: "line2" }], { max: 100, label: "CPU and memory, percent" }),
      h("div", { class: "legend" }, h("span", { class: "l1" }, "CPU %"), h("span", { class: "l2" }, "Memory %")));
  }

  // ---- storage: quota status, sites, backups (node-registration) ----
  const storageMsg = h("p", { class: "error", role: "alert", id: "storage-error" });
  const quotaSummary = h("div", { class: "stats", id: "quota-status" });
  const breakdown = h("tbody", { id: "quota-sites" });
  const sites = h("tbody", { id: "site-rows" });
  const sitesCount = h("span", { class: "hint", id: "site-count" });
  const backups = h("tbody", { id: "backup-rows" });
  const backupsCount = h("span", { class: "hint", id: "backup-count" });
  let backupSkip = 0;
  let backupTotal = 0;

  async function loadQuota(nid: number) {
    const q = await api("GET", `/api/v1/nodes/${nid}/quota/status`);
    const cell = (v: Node | string, label: string, cid: string) => h("div", { class: "stat" }, h("b", { id: cid }, v), h("span", {}, label));
    replace(quotaSummary,
      cell(fmtNum(q.quota_gb, 2), "quota, GB", "quota-gb"),
      cell(fmtNum(q.used_gb, 2), "used, GB", "quota-used"),
      cell(fmtNum(q.usage_percent, 1) + " %", "of the quota", "quota-percent"),
      cell(quotaBadge(!!q.is_over_quota), "node", "quota-state"),
      cell(`${fmtNum(q.sites_over_quota, 0)} / ${fmtNum(q.sites_warning, 0)}`, "sites over quota / warning", "quota-site-flags"));
    const list: any[] = Array.isArray(q.sites_breakdown) ? q.sites_breakdown : [];
    replace(breakdown, list.length === 0 ? emptyRow(5, "No sites use this node's storage.", "quota-sites-empty") : list.map((x) =>
      h("tr", { "data-site": x.site_name }, h("td", {}, x.site_name), h("td", {}, fmtNum(x.used_gb, 2)),
        h("td", {}, x.quota_gb === null || x.quota_gb === undefined ? "no quota" : fmtNum(x.quota_gb, 2)),
        h("td", {}, x.usage_percent === null || x.usage_percent === undefined ? "—" : fmtNum(x.usage_percent, 1) + " %"),
        h("td", {}, quotaBadge(!!x.is_over_quota, !!x.is_warning)))));
  }

  async function loadSites(nid: number) {
    const r = await api("GET", `/api/v1/nodes/${nid}/sites` + qs({ skip: 0, limit: 100 }));
    const list: any[] = Array.isArray(r.sites) ? r.sites : [];
    sitesCount.textContent = list.length < (r.total ?? 0) ? `first ${list.length} of ${r.total}` : `${list.length}`;
    replace(sites, list.length === 0 ? emptyRow(4, "No sites: this node's agent has reported none.", "sites-empty") : list.map((x) =>
      h("tr", { "data-site": x.site_name }, h("td", {}, x.site_name), h("td", {}, fmtNum(x.used_gb, 2)),
        h("td", {}, x.quota_gb === null || x.quota_gb === undefined ? "no quota" : fmtNum(x.quota_gb, 2)), h("td", {}, fmtTime(x.updated_at)))));
  }

  async function loadBackups(nid: number) {
    const r = await api("GET", `/api/v1/nodes/${nid}/backups` + qs({ skip: backupSkip, limit: BACKUPS_PER_PAGE }));
    const list: any[] = Array.isArray(r.backups) ? r.backups : [];
    backupTotal = Number(r.total ?? 0);
    if (list.length === 0 && backupSkip > 0 && backupTotal > 0) { // the last page emptied meanwhile
      backupSkip = Math.max(0, Math.floor((backupTotal - 1) / BACKUPS_PER_PAGE) * BACKUPS_PER_PAGE);
      return loadBackups(nid);
    }
    backupsCount.textContent = backupTotal === 0 ? "0" : `${backupSkip + 1}–${backupSkip + list.length} of ${backupTotal}`;
    replace(backups, list.length === 0 ? emptyRow(7, "No backups: this node's agent has reported none.", "backups-empty") : list.map((x) =>
      h("tr", { "data-backup": x.id }, h("td", { title: x.s3_path || null }, x.filename), h("td", {}, x.site_name ?? "—"),
        h("td", {}, fmtNum(x.size_gb, 2)), h("td", {}, x.backup_type || "—"), h("td", {}, x.status ? badge(x.status) : "—"),
        h("td", {}, x.storage_provider || "—"), h("td", {}, fmtTime(x.created_at)))));
  }

  // Each part answers on its own: a role that may not read one (403) or a
  // failing call leaves the others on screen.
  async function loadStorage() {
    if (regId === null) {
      storageMsg.textContent = "This server's node object has no integer id, so quota, sites and backups cannot be read.";
      return;
    }
    const nid = regId;
    const errors: string[] = [];
    const part = (p: Promise<unknown>) => p.catch((e) => { errors.push(e instanceof ApiError ? e.message : String(e)); });
    await Promise.all([part(loadQuota(nid)), part(loadSites(nid)), part(loadBackups(nid))]);
    storageMsg.textContent = [...new Set(errors)].join("; ");
  }

  const quotaInput = h("input", { id: "quota-input", type: "number", step: "any", inputmode: "decimal", size: 8, "aria-label": "New quota, GB" });
  const quotaMsg = h("p", { class: "error", role: "alert", id: "quota-error" });
  const quotaInfo = h("p", { class: "ok", role: "status", id: "quota-info" });
  // Only a super admin may change a quota (PUT /nodes/{id}/quota); the
  // server's 422 says what is wrong with a value, so the form does not
  // second-guess its range (novalidate) and shows that message.
  const quotaForm = h("form", { class: "inline", id: "quota-form", novalidate: true },
    field("Storage quota, GB", quotaInput), h("button", { type: "submit" }, "Update quota"));
  quotaForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    quotaMsg.textContent = "";
    quotaInfo.textContent = "";
    const raw = quotaInput.value.trim();
    const gb = Number(raw);
    if (raw === "" || !Number.isFinite(gb)) {
      quotaMsg.textContent = "Enter the quota as a number of GB.";
      return;
    }
    if (regId === null) return;
    const submit = quotaForm.querySelector("button")!;
    submit.disabled = true;
    try {
      const r = await api("PUT", `/api/v1/nodes/${regId}/quota`, { storage_quota_gb: gb });
      quotaInfo.textContent = `Quota set to ${fmtNum(r.storage_quota_gb, 2)} GB.`;
      await loadQuota(regId);
    } catch (err) {
      quotaMsg.textContent = err instanceof ApiError ? err.message : String(err);
    } finally {
      submit.disabled = false;
    }
  });
  const superAdmin = ctx.me?.role === "super_admin";

  const act = (label: string, path: string, body?: unknown, cls?: string) =>
    button(label, async () => {
      msg.textContent = "";
      try {
        await api("POST", `/api/v1/nodes/${encodeURIComponent(id)}/${path}`, body);
        info.textContent = `${label}: done.`;
        await loadNode();
      } catch (e) { say(e); }
    }, { class: cls ?? null, id: "act-" + path });
  const drainSeconds = h("input", { id: "drain-seconds", type: "number", min: 0, max: 86400, value: 300, size: 6, "aria-label": "Drain deadline, seconds" });
  const remove = button("Remove", async () => {
    if (!confirm(`Remove ${id}? Its tasks are requeued and its hostname freed.`)) return;
    try {
      await api("DELETE", `/api/v1/nodes/${encodeURIComponent(id)}`);
      ctx.navigate("/ui/fleet");
    } catch (e) { say(e); }
  }, { class: "danger", id: "act-remove" });
  const drain = button("Drain", async () => {
    msg.textContent = "";
    try {
      await api("POST", `/api/v1/nodes/${encodeURIComponent(id)}/drain`, { deadline_seconds: Number(drainSeconds.value) });
      info.textContent = "Drain: started.";
      await loadNode();
    } catch (e) { say(e); }
  }, { id: "act-drain" });

  replace(root,
    h("p", {}, h("a", { href: "/ui/fleet", id: "back" }, "← Fleet")),
    h("h1", {}, "Node ", h("code", {}, id)),
    msg, info,
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "Details"), details,
        h("div", { class: "row" }, act("Cordon", "cordon"), act("Uncordon", "uncordon"), drainSeconds, drain, remove)),
      h("section", { class: "panel" }, h("div", { class: "row" }, h("h2", {}, "Resources"), range), chart)),
    h("section", { class: "panel", id: "storage", "aria-labelledby": "storage-h" },
      h("h2", { id: "storage-h" }, "Storage quota"), storageMsg, quotaSummary,
      superAdmin ? [quotaForm, quotaMsg, quotaInfo] : null,
      table(["Site", "Used, GB", "Quota, GB", "Usage", "State"], breakdown)),
    h("div", { class: "grid2" },
      h("section", { class: "panel", "aria-labelledby": "sites-h" }, h("div", { class: "row" }, h("h2", { id: "sites-h" }, "Sites"), sitesCount),
        table(["Site", "Used, GB", "Quota, GB", "Reported"], sites)),
      h("section", { class: "panel", "aria-labelledby": "backups-h" }, h("div", { class: "row" }, h("h2", { id: "backups-h" }, "Backups"), backupsCount),
        table(["File", "Site", "Size, GB", "Type", "Status", "Storage", "Created"], backups),
        h("div", { class: "row" },
          button("Newer", async () => {
            if (backupSkip === 0 || regId === null) return;
            backupSkip = Math.max(0, backupSkip - BACKUPS_PER_PAGE);
            await loadBackups(regId).catch(say);
          }, { id: "backups-newer" }),
          button("Older", async () => {
            if (backupSkip + BACKUPS_PER_PAGE >= backupTotal || regId === null) return;
            backupSkip += BACKUPS_PER_PAGE;
            await loadBackups(regId).catch(say);
          }, { id: "backups-older" })))));
  root.querySelector<HTMLAnchorElement>("#back")!.addEventListener("click", (e) => { e.preventDefault(); ctx.navigate("/ui/fleet"); });
  range.addEventListener("change", () => void loadChart().catch(say));
  try {
    await loadNode();
    await Promise.all([loadChart().catch(say), loadStorage()]);
  } catch (e) {
    say(e);
  }
  ctx.ready();
  timer = setInterval(() => void Promise.all([loadNode().then(loadStorage), loadChart()]).catch(() => {}), 5000);
  return () => clearInterval(timer);
}
