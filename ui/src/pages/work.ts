// Work: submit a task (type, payload, requirements, priority), the queue
// (statistics), the task list with live status, and one task's result with
// cancel and retry (cluster-devices-tasks document).
import { ApiError, cluster, qs } from "../api";
import { badge, button, field, fmtNum, fmtTime, h, replace } from "../dom";
import type { PageContext } from "../main";

const TYPES = ["echo", "sleep", "system_info", "command", "python_eval", "http_request"];
const PRIORITIES = ["low", "normal", "high", "urgent"];
const MAX_PAYLOAD = 64 * 1024;

export async function renderWork(root: HTMLElement, _params: string[], ctx: PageContext) {
  const msg = h("p", { class: "error", role: "alert", id: "work-error" });
  const info = h("p", { class: "ok", role: "status", id: "work-info" });
  const say = (e: unknown) => { info.textContent = ""; msg.textContent = e instanceof ApiError ? e.message : String(e); };
  const stats = h("div", { class: "stats", id: "task-stats" });
  const listBody = h("tbody", { id: "task-rows" });
  const deviceBody = h("tbody", { id: "device-rows" });
  const deviceLabel = h("span", { class: "hint", id: "device-count" });
  const detail = h("section", { class: "panel", id: "task-detail", hidden: true });
  const statusFilter = h("select", { id: "status-filter", "aria-label": "Filter by status" },
    h("option", { value: "" }, "all"), ["pending", "queued", "assigned", "running", "success", "failed", "cancelled", "timeout"].map((s) => h("option", { value: s }, s)));
  let page = 1;
  const pageLabel = h("span", { id: "task-page" });
  let selected: string | null = null;

  // ---- submit ----
  const type = h("select", { id: "task-type" }, TYPES.map((t) => h("option", { value: t }, t)));
  const priority = h("select", { id: "task-priority" }, PRIORITIES.map((p) => h("option", { value: p, selected: p === "normal" }, p)));
  const payload = h("textarea", { id: "task-payload", rows: 4, spellcheck: "false" }, '{"message": "hello from the console"}');
  const reqs = h("textarea", { id: "task-requirements", rows: 3, spellcheck: "false", placeholder: '{"required_platform": "linux", "timeout_seconds": 60}' });
  const form = h("form", { id: "task-form" },
    h("div", { class: "row" }, field("Type", type), field("Priority", priority)),
    field("Payload (JSON)", payload), field("Requirements (JSON, optional)", reqs),
    h("button", { type: "submit", class: "primary" }, "Submit task"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    msg.textContent = "";
    try {
      if (payload.value.length > MAX_PAYLOAD || reqs.value.length > MAX_PAYLOAD) throw new Error("payload and requirements are limited to 64 KiB here");
      const body: any = { task_type: type.value, priority: priority.value, payload: payload.value.trim() ? JSON.parse(payload.value) : {} };
      if (reqs.value.trim()) body.requirements = JSON.parse(reqs.value);
      const r = await cluster("POST", "/api/v1/tasks", body);
      const id = r.data.task_id;
      info.textContent = "Submitted task " + id + ".";
      page = 1;
      await loadList();
      await showTask(id);
    } catch (err) { say(err instanceof SyntaxError ? new Error("Not JSON: " + err.message) : err); }
  });

  async function loadStats() {
    const r = await cluster("GET", "/api/v1/tasks/statistics");
    const d: any = r.data ?? {};
    const byStatus: Record<string, number> = d.by_status ?? {};
    const cell = (v: unknown, label: string, id: string) => h("div", { class: "stat" }, h("b", { id }, fmtNum(v as any, 0)), h("span", {}, label));
    replace(stats,
      cell(d.total_tasks, "tasks", "stat-total"),
      cell(d.queued ?? byStatus.queued ?? 0, "queue depth", "stat-queue"),
      cell(d.active ?? byStatus.running ?? 0, "running", "stat-running"),
      cell(byStatus.success ?? 0, "succeeded", "stat-success"),
      cell(byStatus.failed ?? 0, "failed", "stat-failed"));
  }

  async function loadList() {
    const r = await cluster<any[]>("GET", "/api/v1/tasks" + qs({ page, page_size: 20, status: statusFilter.value }));
    const p = r.pagination ?? {};
    pageLabel.textContent = `page ${page}${p.total_pages ? " of " + p.total_pages : ""}${p.total_items !== undefined ? ` · ${p.total_items} tasks` : ""}`;
    replace(listBody, (r.data ?? []).map((t: any) => {
      const tr = h("tr", { "data-task": t.task_id, tabindex: "0" },
        h("td", {}, h("code", {}, t.task_id.slice(0, 8))), h("td", {}, t.task_type), h("td", { class: "status" }, badge(t.status)),
        h("td", {}, t.priority), h("td", {}, t.worker_device_id || t.device_id || "—"), h("td", {}, fmtTime(t.created_at)));
      const open = () => void showTask(t.task_id);
      tr.addEventListener("click", open);
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
      return tr;
    }));
  }

  async function showTask(id: string) {
    selected = id;
    const [t, st] = await Promise.all([cluster("GET", `/api/v1/tasks/${id}`), cluster("GET", `/api/v1/tasks/${id}/status`)]);
    const task: any = t.data, status: any = st.data;
    let result: any = null;
    if (["success", "failed", "timeout"].includes(task.status)) result = (await cluster("GET", `/api/v1/tasks/${id}/result`).catch(() => ({ data: null }))).data;
    detail.hidden = false;
    replace(detail,
      h("h2", {}, "Task ", h("code", { id: "detail-id" }, id)),
      h("div", { class: "row" }, h("span", { id: "detail-status", class: "badge badge-" + task.status }, task.status),
        h("span", { class: "hint" }, "progress " + fmtNum(status.progress ?? task.progress, 0) + "%"),
        button("Cancel", async () => { try { await cluster("POST", `/api/v1/tasks/${id}/cancel`); await refresh(); } catch (e) { say(e); } }, { id: "task-cancel", class: "danger" }),
        button("Retry", async () => { try { await cluster("POST", `/api/v1/tasks/${id}/retry`); await refresh(); } catch (e) { say(e); } }, { id: "task-retry" })),
      h("p", { class: "hint", id: "placement" }, "Placement: ",
        (task.worker_device_id || task.device_id) ? "on " + (task.worker_device_id || task.device_id) + (task.status_reason ? " — " + task.status_reason : "")
          : String(task.status_reason || status.status_reason || "waiting for a device")),
      h("h2", {}, "Payload"), h("pre", {}, JSON.stringify(task.payload, null, 2)),
      h("h2", {}, "Result"),
      h("pre", { id: "task-result" }, result ? JSON.stringify(result.result_data ?? result, null, 2) : task.error ? String(task.error) : "—"));
  }

  // Devices: the agents that take work, their role, tags, capacity and load
  // (the first 50; the cluster document pages them).
  async function loadDevices() {
    const r = await cluster<any[]>("GET", "/api/v1/devices" + qs({ page: 1, page_size: 50 }));
    const total = r.pagination?.total_items;
    deviceLabel.textContent = total !== undefined ? `${total} devices${total > 50 ? " (first 50)" : ""}` : "";
    const list = r.data ?? [];
    replace(deviceBody, list.length === 0 ? h("tr", {}, h("td", { colspan: 7, class: "hint" }, "No devices: approve an agent on the Fleet page."))
      : list.map((d: any) => h("tr", { "data-device": d.device_id },
          h("td", {}, h("code", {}, String(d.device_id).slice(0, 12))), h("td", {}, d.hostname ?? "—"), h("td", {}, badge(d.status)),
          h("td", {}, d.role ?? "—"), h("td", {}, (d.tags ?? []).join(", ") || "—"),
          h("td", {}, `${d.active_tasks ?? 0}/${d.max_concurrent ?? "?"}`),
          h("td", {}, (d.allowed_task_types ?? []).join(", ")))));
  }

  async function refresh() {
    await Promise.all([loadStats(), loadList(), loadDevices(), selected ? showTask(selected) : Promise.resolve()]);
  }
  const prev = button("Previous", async () => { if (page > 1) { page--; await loadList().catch(say); } }, { id: "task-prev" });
  const next = button("Next", async () => { page++; await loadList().catch(say); }, { id: "task-next" });
  statusFilter.addEventListener("change", () => { page = 1; void loadList().catch(say); });

  replace(root, h("h1", {}, "Work"), stats, msg, info,
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "Submit a task"), form),
      h("section", { class: "panel" },
        h("div", { class: "row" }, h("h2", {}, "Tasks"), statusFilter, prev, next, pageLabel),
        h("table", { class: "list-click" }, h("thead", {}, h("tr", {}, ["Task", "Type", "Status", "Priority", "Device", "Created"].map((c) => h("th", {}, c)))), listBody))),
    detail,
    h("section", { class: "panel" }, h("div", { class: "row" }, h("h2", {}, "Devices"), deviceLabel),
      h("table", {}, h("thead", {}, h("tr", {}, ["Device", "Hostname", "Status", "Role", "Tags", "Tasks", "Runs"].map((c) => h("th", {}, c)))), deviceBody)));
  try {
    await Promise.all([loadStats(), loadList(), loadDevices()]);
  } catch (e) { say(e); }
  ctx.ready();
  // Live status: the cluster API has no task stream, so the page polls
  // (2 s; the admin tier allows 1,200 requests a minute).
  const timer = setInterval(() => void refresh().catch(() => {}), 2000);
  return () => clearInterval(timer);
}
