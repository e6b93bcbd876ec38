// Money: the payouts ledger (chain info, blocks, the verify button: GET
// /api/v1/chain/verify), wallets, and per node its PoOT score and payouts.
import { api, ApiError, qs } from "../api";
import { badge, button, field, fmtNum, fmtTime, h, replace } from "../dom";
import type { PageContext } from "../main";

export async function renderMoney(root: HTMLElement, _params: string[], ctx: PageContext) {
  const msg = h("p", { class: "error", role: "alert", id: "money-error" });
  const say = (e: unknown) => { msg.textContent = e instanceof ApiError ? e.message : String(e); };
  const chain = h("div", { class: "stats", id: "chain-info" });
  const blocks = h("tbody", { id: "block-rows" });
  const verifyOut = h("p", { id: "verify-result", role: "status" });
  const wallets = h("tbody", { id: "wallet-rows" });
  const nodeOut = h("div", { id: "node-money" });
  let blockPage = 1;

  async function loadChain() {
    const i = await api("GET", "/api/v1/chain/info");
    const cell = (v: unknown, label: string, id: string) => h("div", { class: "stat" }, h("b", { id }, fmtNum(v as any, 0)), h("span", {}, label));
    replace(chain, cell(i.current_height, "block height", "chain-height"), cell(i.transactions, "transactions", "chain-tx"),
      cell(i.pending_transactions, "pending", "chain-pending"), cell(i.block_time, "seconds per block", "chain-bt"));
    const b = await api("GET", "/api/v1/chain/blocks" + qs({ page: blockPage, limit: 10 }));
    const rows: any[] = b.blocks ?? b.data ?? [];
    replace(blocks, rows.map((x) => h("tr", {}, h("td", {}, String(x.height)), h("td", {}, h("code", { title: x.hash }, String(x.hash).slice(0, 16) + "…")),
      h("td", {}, String(x.transaction_count ?? x.tx_count ?? (x.transactions ? x.transactions.length : "—"))), h("td", {}, fmtTime(x.timestamp)))));
  }
  const verify = button("Verify the ledger", async () => {
    verifyOut.textContent = "verifying…";
    verifyOut.className = "";
    try {
      const r = await api("GET", "/api/v1/chain/verify");
      verifyOut.className = r.ok ? "ok" : "error";
      verifyOut.textContent = r.ok
        ? `Intact: ${r.blocks} blocks, ${r.transactions} transactions, ${r.pending_transactions} pending checked.`
        : `BROKEN at block ${r.broken_height ?? "?"}: ${r.problem}`;
    } catch (e) { verifyOut.textContent = ""; say(e); }
  }, { class: "primary", id: "verify-ledger" });

  async function loadWallets() {
    const w = await api("GET", "/api/v1/wallets" + qs({ page: 1, limit: 50 }));
    const rows: any[] = w.wallets ?? w.data ?? (Array.isArray(w) ? w : []);
    replace(wallets, rows.length === 0 ? h("tr", {}, h("td", { colspan: 4, class: "hint" }, "No wallets."))
      : rows.map((x) => h("tr", {}, h("td", {}, x.name ?? x.wallet_id), h("td", {}, h("code", {}, x.address ?? "—")), h("td", {}, x.currency ?? "—"), h("td", {}, fmtNum(x.balance, 6)))));
  }

  const nodeId = h("input", { id: "money-node", placeholder: "node_…", size: 26, pattern: "node_[A-Za-z0-9_-]+", required: true });
  const nodeForm = h("form", { class: "inline", id: "money-node-form" }, field("Node", nodeId), h("button", { type: "submit" }, "Show score and payouts"));
  nodeForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    msg.textContent = "";
    const id = encodeURIComponent(nodeId.value.trim());
    try {
      const [score, payouts] = await Promise.all([api("GET", `/api/v1/nodes/${id}/poot/score`), api("GET", `/api/v1/nodes/${id}/payouts` + qs({ page: 1, limit: 20 }))]);
      const list: any[] = payouts.payouts ?? [];
      replace(nodeOut, h("p", {}, "PoOT score ", h("b", { id: "poot-score" }, fmtNum(score.score ?? score.poot_score, 2)), score.calculated_at ? ` (as of ${fmtTime(score.calculated_at)})` : ""),
        h("table", {}, h("thead", {}, h("tr", {}, ["Payout", "Amount", "Currency", "Status", "Created"].map((c) => h("th", {}, c)))),
          h("tbody", {}, list.length === 0 ? h("tr", {}, h("td", { colspan: 5, class: "hint" }, "No payouts.")) : list.map((p) =>
            h("tr", {}, h("td", {}, h("code", {}, p.payout_id)), h("td", {}, fmtNum(p.amount, 6)), h("td", {}, p.currency), h("td", {}, badge(p.status)), h("td", {}, fmtTime(p.created_at)))))));
    } catch (err) { say(err); }
  });

  replace(root, h("h1", {}, "Money"), msg,
    h("section", { class: "panel" }, h("div", { class: "row" }, h("h2", {}, "Ledger"), verify), chain, verifyOut,
      h("table", {}, h("thead", {}, h("tr", {}, ["Height", "Hash", "Transactions", "Time"].map((c) => h("th", {}, c)))), blocks),
      h("div", { class: "row" },
        button("Newer", async () => { if (blockPage > 1) { blockPage--; await loadChain().catch(say); } }),
        button("Older", async () => { blockPage++; await loadChain().catch(say); }))),
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "PoOT and payouts"), nodeForm, nodeOut),
      h("section", { class: "panel" }, h("h2", {}, "Wallets"),
        h("table", {}, h("thead", {}, h("tr", {}, ["Wallet", "Address", "Currency", "Balance"].map((c) => h("th", {}, c)))), wallets))));
  await Promise.all([loadChain().catch(say), loadWallets().catch(say)]);
  ctx.ready();
}
