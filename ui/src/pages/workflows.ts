// Workflows (network-node document): the list, one workflow's DAG as SVG
// (its nodes at their gui_x/gui_y, connections as arrows), execute, and the
// execution's status and job output live through the WebSocket events.
import { api, ApiError, token } from "../api";
import { badge, button, fmtTime, h, replace, s } from "../dom";
import type { PageContext } from "../main";

function dag(nodes: any[], conns: any[]): SVGElement {
  const svg = s("svg", { class: "dag", viewBox: "0 0 760 260", role: "img", "aria-label": `Workflow graph: ${nodes.length} nodes, ${conns.length} connections` });
  svg.appendChild(s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
    s("polygon", { points: "0,0 10,5 0,10" }))));
  // Layered layout: a node's column is the length of the longest path of
  // connections into it, its row its place in that column (a DAG reads left
  // to right whatever gui_x/gui_y the editor stored).
  const pos = new Map<string, { x: number; y: number }>();
  const ids = nodes.map((n) => String(n.id));
  const inbound = new Map<string, string[]>(ids.map((i) => [i, []]));
  for (const c of conns) {
    const from = String(c.from_node_id ?? c.source_node_id), to = c.to_node_id ?? c.target_node_id;
    if (to !== null && to !== undefined && inbound.has(String(to)) && inbound.has(from)) inbound.get(String(to))!.push(from);
  }
  const depth = new Map<string, number>();
  const depthOf = (id: string, seen: Set<string>): number => {
    if (depth.has(id)) return depth.get(id)!;
    if (seen.has(id)) return 0; // a cycle (the server refuses them): stop
    seen.add(id);
    const d = Math.max(0, ...inbound.get(id)!.map((p) => depthOf(p, seen) + 1));
    depth.set(id, d);
    return d;
  };
  const rows = new Map<number, number>();
  for (const id of ids) {
    const d = depthOf(id, new Set());
    const r = rows.get(d) ?? 0;
    rows.set(d, r + 1);
    pos.set(id, { x: 20 + d * 200, y: 20 + r * 60 });
  }
  const W = 130, H = 40;
  for (const c of conns) {
    const from = c.from_node_id ?? c.source_node_id, to = c.to_node_id ?? c.target_node_id;
    const a = pos.get(String(from));
    const b = to === null || to === undefined ? null : pos.get(String(to)) ?? null;
    if (!a) continue;
    const x1 = a.x + W, y1 = a.y + H / 2;
    const x2 = b ? b.x : Math.min(750, x1 + 90), y2 = b ? b.y + H / 2 : y1;
    svg.appendChild(s("path", { d: `M${x1} ${y1} C${x1 + 40} ${y1} ${x2 - 40} ${y2} ${x2} ${y2}`, "marker-end": "url(#arrow)" }));
    const label = `${c.from_interface_type ?? "STDOUT"}→${b ? c.to_interface_type ?? "STDIN" : c.destination_file_name ?? "out"}`;
    svg.appendChild(s("text", { x: (x1 + x2) / 2 - 30, y: (y1 + y2) / 2 - 6 }, label));
  }
  for (const n of nodes) {
    const p = pos.get(String(n.id))!;
    svg.appendChild(s("g", { class: "dag-node", "data-node": n.id },
      s("rect", { x: p.x, y: p.y, width: W, height: H, rx: 6 }),
      s("text", { class: "label", x: p.x + 8, y: p.y + 24 }, String(n.service_name ?? n.id).slice(0, 18))));
  }
  return svg;
}

export async function renderWorkflows(root: HTMLElement, params: string[], ctx: PageContext) {
  const msg = h("p", { class: "error", role: "alert", id: "wf-error" });
  const say = (e: unknown) => { msg.textContent = e instanceof ApiError ? e.message : String(e); };
  const listBody = h("tbody", { id: "wf-rows" });
  const view = h("div", { id: "wf-view" });
  let ws: WebSocket | null = null;
  const timers: ReturnType<typeof setInterval>[] = [];
  let closed = false;

  const list = await api("GET", "/api/workflows").catch((e) => { say(e); return []; });
  const workflows: any[] = Array.isArray(list) ? list : list.workflows ?? [];
  replace(listBody, workflows.length === 0 ? h("tr", {}, h("td", { colspan: 3, class: "hint" }, "No workflows yet."))
    : workflows.map((w) => {
        const a = h("a", { href: "/ui/workflows/" + w.id }, w.name);
        a.addEventListener("click", (e) => { e.preventDefault(); ctx.navigate("/ui/workflows/" + w.id); });
        return h("tr", { "data-workflow": w.id }, h("td", {}, a), h("td", {}, w.description ?? ""), h("td", {}, fmtTime(w.updated_at ?? w.created_at)));
      }));

  // The WebSocket, authenticated by the token in its URL (the API's way for
  // browsers, which cannot set headers on a WebSocket).
  const listeners = new Set<(m: any) => void>();
  function connect() {
    const t = token();
    if (!t || closed) return;
    ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/ws?token=${encodeURIComponent(t)}`);
    ws.onmessage = (ev) => {
      try {
        const m = JSON.parse(ev.data);
        listeners.forEach((f) => f(m));
      } catch { /* ignored */ }
    };
    ws.onclose = () => { if (!closed) setTimeout(connect, 2000); };
  }
  connect();

  async function show(id: string) {
    const [wf, nodes, conns, execs] = await Promise.all([
      api("GET", `/api/workflows/${id}`), api("GET", `/api/workflows/${id}/nodes`), api("GET", `/api/workflows/${id}/connections`),
      api("GET", `/api/workflows/${id}/executions`).catch(() => []),
    ]);
    const nodeList: any[] = nodes.nodes ?? nodes;
    const connList: any[] = conns.connections ?? conns;
    const status = h("div", { id: "exec-status" });
    const output = h("div", { id: "exec-output" });
    const execList: any[] = Array.isArray(execs) ? execs : execs.executions ?? [];

    async function watch(eid: string) {
      const render = async () => {
        const st = await api("GET", `/api/workflow-executions/${eid}/status`);
        const ex = st.execution ?? st;
        replace(status, h("p", {}, "Execution ", h("code", {}, eid), " ", h("span", { id: "exec-state", class: "badge badge-" + String(ex.status).toLowerCase() }, ex.status)),
          h("table", {}, h("thead", {}, h("tr", {}, ["Job", "Node", "Status", "Exit"].map((c) => h("th", {}, c)))),
            h("tbody", {}, (st.jobs ?? []).map((j: any) => {
              const n = nodeList.find((x) => String(x.id) === String(j.node_id));
              return h("tr", {}, h("td", {}, h("code", {}, String(j.id).slice(0, 8))), h("td", {}, n?.service_name ?? j.node_id), h("td", {}, badge(j.status)), h("td", {}, j.exit_code ?? "—"));
            }))));
        const outs: HTMLElement[] = [];
        for (const j of st.jobs ?? []) {
          const r = await api("GET", `/api/job-executions/${j.id}/interfaces`).catch(() => null);
          const n = nodeList.find((x) => String(x.id) === String(j.node_id));
          for (const i of r?.interfaces ?? []) {
            if (i.value === null || i.value === undefined || i.value === "") continue;
            outs.push(h("div", { class: "job-out", "data-job": j.id }, h("h2", {}, `${n?.service_name ?? j.node_id} · ${i.interface_type}`), h("pre", {}, String(i.value).slice(0, 100000))));
          }
        }
        replace(output, outs.length ? outs : h("p", { class: "hint" }, "No output yet."));
        return ex.status as string;
      };
      let last = await render();
      const on = (m: any) => {
        const p = m.payload ?? {};
        if ((p.execution_id === eid || p.workflow_execution_id === eid) && /execution|job/.test(String(m.type))) void render().then((s) => { last = s; }).catch(() => {});
      };
      listeners.add(on);
      // Belt and braces: if an event is missed (reconnect), look again until it ends.
      const t = setInterval(() => {
        if (last !== "RUNNING" && last !== "PENDING" && last !== "QUEUED") { clearInterval(t); return; }
        void render().then((s) => { last = s; }).catch(() => {});
      }, 2000);
      timers.push(t);
    }

    const execBtn = button("Execute", async () => {
      msg.textContent = "";
      try {
        const r = await api("POST", `/api/workflows/${id}/execute`);
        await watch(r.execution_id);
      } catch (e) { say(e); }
    }, { class: "primary", id: "wf-execute" });
    replace(view,
      h("section", { class: "panel" },
        h("div", { class: "row" }, h("h2", {}, wf.name ?? id), execBtn),
        h("p", { class: "hint" }, wf.description ?? ""),
        dag(nodeList, connList)),
      h("section", { class: "panel" }, h("h2", {}, "Execution"), status, output,
        execList.length ? h("p", { class: "hint" }, `${execList.length} earlier execution(s)`) : null));
    if (execList.length) {
      const latest = execList[0];
      await watch(latest.id ?? latest.execution_id);
    }
  }

  replace(root, h("h1", {}, "Workflows"), msg,
    h("section", { class: "panel" }, h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Description", "Updated"].map((c) => h("th", {}, c)))), listBody)),
    view);
  if (params[0]) await show(params[0]).catch(say);
  ctx.ready();
  return () => {
    closed = true;
    timers.forEach(clearInterval);
    ws?.close();
  };
}
