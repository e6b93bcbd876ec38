// A virtualized, server-paged table: the viewport holds only the rows in
// view (plus a margin); pages of `pageSize` rows are fetched when a row of
// theirs first comes into view. Works the same for 10 or 100,000 rows.
import { h, replace } from "./dom";

export interface VTable<T> {
  el: HTMLElement;
  refresh(): void; // drop cached pages, re-fetch what is in view
  redraw(): void; // re-render visible rows from cache (live updates)
  total(): number;
}

export function vtable<T>(opts: {
  columns: string[];
  rowHeight?: number;
  pageSize: number;
  fetchPage: (page: number) => Promise<{ rows: T[]; total: number }>;
  renderRow: (row: T, index: number) => HTMLElement[];
  onFirstPage?: () => void;
  label: string;
}): VTable<T> {
  const rowH = opts.rowHeight ?? 34;
  const pages = new Map<number, T[] | "loading">();
  let total = 0;
  let firstDone = false;
  const spacer = h("div", { class: "vspacer" });
  const viewport = h("div", { class: "vviewport", tabindex: "0", role: "region", "aria-label": opts.label }, spacer);
  const head = h("div", { class: "vhead", role: "row" }, opts.columns.map((c) => h("span", { role: "columnheader" }, c)));
  const el = h("div", { class: "vtable", role: "table", "aria-label": opts.label }, head, viewport);

  async function load(page: number) {
    if (pages.has(page)) return;
    pages.set(page, "loading");
    try {
      const r = await opts.fetchPage(page);
      pages.set(page, r.rows);
      total = r.total;
      spacer.style.height = total * rowH + "px";
      if (!firstDone) {
        firstDone = true;
        opts.onFirstPage?.();
      }
    } catch (e) {
      pages.delete(page);
      throw e;
    }
    draw();
  }

  function draw() {
    const top = viewport.scrollTop;
    const height = viewport.clientHeight || 480;
    const first = Math.max(0, Math.floor(top / rowH) - 10);
    const last = Math.min(total, Math.ceil((top + height) / rowH) + 10);
    const rows: HTMLElement[] = [];
    for (let i = first; i < last; i++) {
      const p = Math.floor(i / opts.pageSize);
      const data = pages.get(p);
      let row: HTMLElement;
      if (!data || data === "loading") {
        if (!data) void load(p).catch(() => {});
        row = h("div", { class: "vrow loading", role: "row" }, h("span", {}, "…"));
      } else {
        const item = data[i - p * opts.pageSize];
        if (!item) continue;
        row = h("div", { class: "vrow", role: "row", "data-index": i }, opts.renderRow(item, i));
      }
      row.style.top = i * rowH + "px";
      rows.push(row);
    }
    replace(spacer, rows);
  }

  let scheduled = false;
  viewport.addEventListener("scroll", () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      draw();
    });
  });
  void load(0).catch((e) => replace(spacer, h("p", { class: "error", role: "alert" }, String(e.message ?? e))));
  return {
    el,
    refresh() {
      pages.clear();
      const p = Math.floor(viewport.scrollTop / rowH / opts.pageSize);
      void load(p).catch(() => {});
    },
    redraw: draw,
    total: () => total,
  };
}
