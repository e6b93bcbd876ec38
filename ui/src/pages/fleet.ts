// Fleet: live health (the unified SSE stream), join requests with "approve by
// code", and every node in a virtualized, server-paged table
// (node-management GET /api/v1/nodes?page&limit).
import { api, ApiError, qs } from "../api";
import { badge, button, field, fmtNum, fmtTime, h, replace } from "../dom";
import { fleetStream, LiveNode } from "../live";
import type { PageContext } from "../main";
import { vtable } from "../vtable";

const PAGE = 100;

export function renderFleet(root: HTMLElement, _params: string[], ctx: PageContext) {
  const live = new Map<string, LiveNode>(); // by hostname
  let liveSeen = false; // before the stream's first event, health is unknown, not "offline"
  const counts = { online: h("b", { id: "count-online" }, "–"), stale: h("b", { id: "count-stale" }, "–"), offline: h("b", { id: "count-offline" }, "–") };
  const totalEl = h("b", { id: "count-total" }, "–");
  const liveState = h("span", { class: "live", id: "live-state" }, "connecting…");
  const msg = h("p", { class: "error", role: "alert", id: "fleet-error" });
  const info = h("p", { class: "ok", role: "status", id: "fleet-info" });
  const say = (e: unknown) => {
    info.textContent = "";
    msg.textContent = e instanceof ApiError ? e.message : String(e);
  };

  // ---- join requests ----
  const pendingBody = h("tbody", { id: "pending-rows" });
  async function loadPending() {
    const rows: any[] = await api("GET", "/api/v1/nodes/" + qs({ status: "pending", limit: 200 }));
    replace(pendingBody, rows.length === 0
      ? h("tr", {}, h("td", { colspan: 5, class: "hint" }, "No join requests waiting."))
      : rows.map((n) => h("tr", { "data-hostname": n.hostname },
          h("td", {}, n.hostname), h("td", {}, n.ip_address ?? "—"), h("td", {}, String(n.system_info ?? "—").slice(0, 60)),
          h("td", {}, fmtTime(n.created_at)),
          h("td", {}, button("Approve", async () => {
            try {
              await api("POST", `/api/v1/nodes/approve/${n.id}`);
              info.textContent = `Approved ${n.hostname}.`;
              await Promise.all([loadPending(), Promise.resolve(table.refresh())]);
            } catch (e) { say(e); }
          }, { "aria-label": "Approve " + n.hostname })))));
  }
  const code = h("input", { id: "approve-code", autocomplete: "off", spellcheck: "false", required: true, maxlength: 32, size: 10 });
  const approveForm = h("form", { class: "inline", id: "approve-form" },
    field("Registration code (the agent prints it)", code),
    h("button", { type: "submit", class: "primary" }, "Approve by code"));
  approveForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    msg.textContent = "";
    try {
      const n = await api("POST", "/api/v1/nodes/register-by-code", { code: code.value.trim() });
      info.textContent = `Approved ${n.hostname} (node ${n.id}).`;
      code.value = "";
      await loadPending();
      table.refresh();
    } catch (err) { say(err); }
  });

  // ---- all nodes ----
  const table = vtable<any>({
    label: "Nodes",
    columns: ["Name", "Hostname", "Health", "Lifecycle", "Pool", "CPU %", "Mem %", "Disk %", "Last seen"],
    pageSize: PAGE,
    fetchPage: async (page) => {
      const r = await api("GET", "/api/v1/nodes" + qs({ page: page + 1, limit: PAGE }));
      totalEl.textContent = String(r.pagination?.total ?? r.nodes.length);
      return { rows: r.nodes, total: r.pagination?.total ?? r.nodes.length };
    },
    renderRow: (n) => {
      const l = live.get(n.hostname);
      const link = h("a", { href: "/ui/nodes/" + n.node_id }, n.name || n.node_id);
      link.addEventListener("click", (e) => { e.preventDefault(); ctx.navigate("/ui/nodes/" + n.node_id); });
      return [
        h("span", {}, link),
        h("span", { title: n.hostname }, n.hostname || "—"),
        h("span", { class: "health" }, n.registration_status === "pending" ? badge("pending") : l ? badge(l.status) : liveSeen ? badge("offline") : "…"),
        h("span", {}, badge(n.status), n.schedulable === false ? h("span", { class: "hint" }, " no new work") : null),
        h("span", {}, n.pool_id ?? "—"),
        h("span", { class: "cpu" }, fmtNum(l?.cpu_percent)),
        h("span", {}, fmtNum(l?.memory_percent)),
        h("span", {}, fmtNum(l?.disk_percent)),
        h("span", {}, fmtTime(l?.last_seen ?? n.last_heartbeat)),
      ];
    },
    onFirstPage: () => ctx.ready(),
  });

  const stop = fleetStream((nodes) => {
    liveSeen = true;
    live.clear();
    const c = { online: 0, stale: 0, offline: 0 } as Record<string, number>;
    for (const n of nodes) {
      live.set(n.hostname, n);
      c[n.status] = (c[n.status] ?? 0) + 1;
    }
    counts.online.textContent = String(c.online);
    counts.stale.textContent = String(c.stale);
    counts.offline.textContent = String(c.offline);
    liveState.textContent = "live · " + new Date().toLocaleTimeString();
    table.redraw();
  }, (open) => {
    liveState.classList.toggle("on", open);
    if (!open) liveState.textContent = "reconnecting…";
  });
  // Join requests change without events: look again every few seconds.
  const poll = setInterval(() => void loadPending().catch(() => {}), 3000);

  replace(root,
    h("h1", {}, "Fleet"),
    h("div", { class: "stats" },
      h("div", { class: "stat" }, totalEl, h("span", {}, "nodes")),
      h("div", { class: "stat" }, counts.online, h("span", {}, "online")),
      h("div", { class: "stat" }, counts.stale, h("span", {}, "stale")),
      h("div", { class: "stat" }, counts.offline, h("span", {}, "offline")),
      liveState),
    msg, info,
    h("section", { class: "panel", "aria-labelledby": "pending-h" },
      h("h2", { id: "pending-h" }, "Join requests"),
      approveForm,
      h("table", {}, h("thead", {}, h("tr", {}, ["Hostname", "Address", "System", "Asked", ""].map((t) => h("th", {}, t)))), pendingBody)),
    h("section", { class: "panel", "aria-labelledby": "nodes-h" },
      h("h2", { id: "nodes-h" }, "Nodes"),
      table.el));
  void loadPending().catch(say);
  return () => {
    stop();
    clearInterval(poll);
  };
}
