// A line chart as inline SVG (no library, no inline style: colours come from
// the stylesheet's classes).
import { s } from "./dom";

export interface Series {
  points: { t: number; v: number | null }[];
  cls: "line" | "line2";
}

export function lineChart(series: Series[], opts: { max?: number; label: string }): SVGElement {
  const W = 600, H = 180, L = 34, B = 20, T = 8, R = 8;
  const all = series.flatMap((x) => x.points).filter((p) => p.v !== null);
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label, preserveAspectRatio: "none" });
  const max = opts.max ?? Math.max(1, ...all.map((p) => p.v as number));
  for (const f of [0, 0.5, 1]) {
    const y = T + (H - T - B) * (1 - f);
    svg.appendChild(s("line", { class: "grid", x1: L, x2: W - R, y1: y, y2: y }));
    svg.appendChild(s("text", { x: 2, y: y + 4 }, String(Math.round(max * f))));
  }
  if (all.length === 0) {
    svg.appendChild(s("text", { x: W / 2 - 40, y: H / 2 }, "no samples yet"));
    return svg;
  }
  const t0 = Math.min(...all.map((p) => p.t)), t1 = Math.max(...all.map((p) => p.t));
  const x = (t: number) => L + (t1 === t0 ? (W - L - R) / 2 : ((t - t0) / (t1 - t0)) * (W - L - R));
  const y = (v: number) => T + (H - T - B) * (1 - Math.min(v, max) / max);
  for (const ser of series) {
    let d = "";
    for (const p of ser.points) {
      if (p.v === null) continue;
      d += (d ? " L" : "M") + x(p.t).toFixed(1) + " " + y(p.v).toFixed(1);
    }
    if (ser.points.filter((p) => p.v !== null).length === 1) d += " h2";
    if (d) svg.appendChild(s("path", { class: ser.cls, d }));
  }
  svg.appendChild(s("text", { x: L, y: H - 4 }, new Date(t0).toLocaleTimeString()));
  svg.appendChild(s("text", { x: W - R - 60, y: H - 4 }, new Date(t1).toLocaleTimeString()));
  return svg;
}
