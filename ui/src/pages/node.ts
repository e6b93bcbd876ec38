// One node: its record (node-management), resource history as an SVG chart
// (GET /nodes/{id}/resources/metrics), PoOT score, and the lifecycle
// actions: cordon, uncordon, drain, remove.
import { api, ApiError, qs } from "../api";
import { lineChart } from "../chart";
import { badge, button, fmtNum, fmtTime, h, replace } from "../dom";
import type { PageContext } from "../main";

export async function renderNode(root: HTMLElement, params: string[], ctx: PageContext) {
  const id = params[0];
  const msg = h("p", { class: "error", role: "alert", id: "node-error" });
  const info = h("p", { class: "ok", role: "status", id: "node-info" });
  const say = (e: unknown) => { msg.textContent = e instanceof ApiError ? e.message : String(e); };
  const details = h("dl", { class: "details" });
  const chart = h("div", { id: "node-chart" });
  const range = h("select", { id: "range", "aria-label": "Time range" }, ["1h", "6h", "24h", "7d"].map((r) => h("option", { value: r }, r)));
  let timer: ReturnType<typeof setInterval> | undefined;

  async function loadNode() {
    const n = await api("GET", `/api/v1/nodes/${encodeURIComponent(id)}`);
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
      h("section", { class: "panel" }, h("div", { class: "row" }, h("h2", {}, "Resources"), range), chart)));
  root.querySelector<HTMLAnchorElement>("#back")!.addEventListener("click", (e) => { e.preventDefault(); ctx.navigate("/ui/fleet"); });
  range.addEventListener("change", () => void loadChart().catch(say));
  try {
    await loadNode();
    await loadChart().catch(say);
  } catch (e) {
    say(e);
  }
  ctx.ready();
  timer = setInterval(() => void Promise.all([loadNode(), loadChart()]).catch(() => {}), 5000);
  return () => clearInterval(timer);
}
