#include "lucidnode/payouts.hpp"

#include <unordered_map>

#include "core/cluster_core.hpp"
#include "lucidnode/nodes.hpp"
#include "ledger/ledger_format.hpp"
#include "ledger/sha256.hpp"
#include "core/clock_text.hpp"
#include "util/checks.hpp"
#include "store/stored.hpp"
#include "payouts/payout_rules.hpp"
#include "util/ids.hpp"

namespace lucid {

using namespace detail;

namespace {

struct Normalized {
  std::string node_uid;
  std::int64_t micros = 0;
  Currency currency = Currency::usdt;
  std::string wallet;
};

bool valid_batch_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxBatchId) return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' && c != ':') return false;
  return true;
}

Normalized normalize(const PayoutRequest& r, std::size_t index) {
  const std::string prefix = "payout_requests." + std::to_string(index) + ".";
  Normalized n;
  if (r.node_uid.empty()) invalid(prefix + "node_id", "node_id is required");
  if (!detail::valid_node_uid(r.node_uid)) invalid(prefix + "node_id", "node_id must match ^node_[a-zA-Z0-9_-]+$ (at most 64 characters)");
  n.node_uid = r.node_uid;
  if (r.amount.empty()) invalid(prefix + "amount", "amount is required");
  const auto micros = parse_micros(r.amount);
  if (!micros) invalid(prefix + "amount", "amount must be a decimal number with at most 6 decimal places");
  if (*micros <= 0) invalid(prefix + "amount", "amount must be greater than 0");
  if (*micros > kMaxPayoutMicros) invalid(prefix + "amount", "amount must be at most 1000000000");
  n.micros = *micros;
  const auto currency = parse_currency(r.currency);
  if (!currency) invalid(prefix + "currency", "currency must be USDT or LUCID");
  n.currency = *currency;
  check_text(prefix + "wallet_address", r.wallet_address, kMaxWalletAddress, false);
  n.wallet = r.wallet_address;
  return n;
}

// SHA-256 of the normalised request list: what "the same requests" means.
std::string request_hash(const std::vector<Normalized>& items) {
  std::string text;
  text.reserve(items.size() * 96);
  for (const auto& n : items) {
    // Fields hold no control characters, so '\n' separates them unambiguously.
    text += n.node_uid;
    text += '\n';
    text += std::to_string(n.micros);
    text += '\n';
    text += currency_name(n.currency);
    text += '\n';
    text += n.wallet;
    text += '\n';
  }
  return blob(sha256_concat({text}));
}

#define LUCID_PAYOUT_SELECT                                                                                   \
  "SELECT p.uid, n.uid, p.amount_micros, p.currency, p.wallet_address, p.status, p.failure_reason,"           \
  " p.transaction_hash, b.batch_id, p.created_at, p.processed_at, p.completed_at"                             \
  " FROM payouts p JOIN nodes n ON n.id = p.node_id JOIN payout_batches b ON b.id = p.batch_id "

Payout read_payout(detail::Statement& q) {
  Payout p;
  p.payout_id = q.column(0).as_text();
  p.node_uid = q.column(1).as_text();
  p.amount_micros = q.column(2).as_int64();
  p.currency = parse_currency(q.column(3).as_text()).value_or(Currency::usdt);
  p.wallet_address = q.column(4).as_text();
  p.status = parse_payout_status(q.column(5).as_text()).value_or(PayoutStatus::pending);
  if (!q.column(6).is_null()) p.failure_reason = q.column(6).as_text();
  if (!q.column(7).is_null()) p.transaction_hash = q.column(7).as_text();
  p.batch_id = q.column(8).as_text();
  p.created_at = parse_stored(q.column(9).as_text());
  p.processed_at = parse_stored_opt(q.column(10));
  p.completed_at = parse_stored_opt(q.column(11));
  return p;
}

// The state of batch row `id`, read inside the caller's transaction.
PayoutBatch batch_state(const ClusterCore& core, Conn& c, std::int64_t id, std::int64_t ns_per_payout) {
  PayoutBatch b;
  auto& head = c.stmt("SELECT batch_id, payout_count, created_at FROM payout_batches WHERE id = ?");
  head.bind(1, id);
  if (!head.step()) throw Error(Errc::not_found, "Batch not found");
  b.batch_id = head.column(0).as_text();
  b.payout_count = head.column(1).as_int64();
  b.created_at = parse_stored(head.column(2).as_text());
  head.reset();
  std::string last_done;
  auto& counts = c.stmt(
      "SELECT status, COUNT(*), MAX(completed_at) FROM payouts WHERE batch_id = ? GROUP BY status");
  counts.bind(1, id);
  while (counts.step()) {
    const std::string status = counts.column(0).as_text();
    const std::int64_t n = counts.column(1).as_int64();
    if (status == "pending") b.pending = n;
    else if (status == "processing") b.processing = n;
    else if (status == "completed") b.completed = n;
    else if (status == "failed") b.failed = n;
    if (!counts.column(2).is_null()) last_done = std::max(last_done, counts.column(2).as_text());
  }
  counts.reset();
  b.status = b.processing + b.completed + b.failed == 0 ? "queued" : "processing";
  if (b.pending + b.processing == 0) {
    b.estimated_completion = last_done.empty() ? b.created_at : parse_stored(last_done);
    return b;
  }
  // Open payouts up to this batch's last one are settled first (oldest
  // first), payout_chunk per round, rounds payout_interval apart.
  auto& ahead = c.stmt(
      "SELECT (SELECT COUNT(*) FROM payouts WHERE status = 'pending' AND id <= ?1)"
      " + (SELECT COUNT(*) FROM payouts WHERE status = 'processing' AND id <= ?1)");
  auto& last = c.stmt("SELECT MAX(id) FROM payouts WHERE batch_id = ?");
  last.bind(1, id);
  last.step();
  ahead.bind(1, last.column(0).as_int64());
  last.reset();
  ahead.step();
  const std::int64_t open = ahead.column(0).as_int64();
  ahead.reset();
  const std::int64_t chunk = static_cast<std::int64_t>(core.opts.payouts.chunk);
  const std::int64_t rounds = (open + chunk - 1) / chunk + 1;
  b.estimated_completion = core.clock->now() + rounds * core.opts.payouts.interval +
                           std::chrono::duration_cast<Timestamp::duration>(std::chrono::nanoseconds(open * ns_per_payout));
  return b;
}

// Marks up to `max` pending payouts processing; returns how many.
std::size_t mark_chunk(ClusterCore& core, std::size_t max) {
  return core.store->write_durable([&](Conn& c) {
    auto& up = c.stmt(
        "UPDATE payouts SET status = 'processing', processed_at = ?"
        " WHERE id IN (SELECT id FROM payouts WHERE status = 'pending' ORDER BY id LIMIT ?)");
    up.bind(1, now_text(core));
    up.bind(2, static_cast<std::int64_t>(max));
    up.run();
    return static_cast<std::size_t>(c.changes());
  });
}

// Settles up to `max` processing payouts in one transaction: each becomes
// completed with its ledger transaction, or failed with a reason.
std::size_t settle_chunk(ClusterCore& core, std::size_t max) {
  struct Row {
    std::int64_t id;
    std::string uid, node_uid, wallet, batch_id;
    std::int64_t micros;
    Currency currency;
  };
  return core.store->write_durable([&](Conn& c) {
    std::vector<Row> rows;
    auto& q = c.stmt(
        "SELECT p.id, p.uid, n.uid, p.amount_micros, p.currency, p.wallet_address, b.batch_id"
        " FROM payouts p JOIN nodes n ON n.id = p.node_id JOIN payout_batches b ON b.id = p.batch_id"
        " WHERE p.status = 'processing' ORDER BY p.id LIMIT ?");
    q.bind(1, static_cast<std::int64_t>(max));
    while (q.step())
      rows.push_back({q.column(0).as_int64(), q.column(1).as_text(), q.column(2).as_text(),
                      q.column(5).as_text(), q.column(6).as_text(), q.column(3).as_int64(),
                      parse_currency(q.column(4).as_text()).value_or(Currency::usdt)});
    q.reset();
    if (rows.empty()) return std::size_t{0};
    const Timestamp now = core.clock->now();
    const std::string now_s = format_rfc3339(now, true);
    const std::int64_t now_us = unix_us(now);
    for (const Row& r : rows) {
      const char* failure = r.wallet.empty() ? kPayoutNoWallet
                            : !wallet_accepts(r.currency, r.wallet) ? kPayoutBadWallet
                                                                    : nullptr;
      if (failure) {
        auto& f = c.stmt(
            "UPDATE payouts SET status = 'failed', failure_reason = ?, completed_at = ?"
            " WHERE id = ? AND status = 'processing'");
        f.bind(1, failure);
        f.bind(2, now_s);
        f.bind(3, r.id);
        f.run();
        continue;
      }
      // The ledger row and the state change commit together or not at all;
      // the ref (the payout id) is unique in the ledger, so a payout that
      // somehow reached here twice still has one transaction.
      const auto hash = ledger_append(
          c, "payout", r.uid, now_us, payout_payload(r.micros, r.batch_id, r.currency, r.node_uid, r.uid, r.wallet));
      auto& done = c.stmt(
          "UPDATE payouts SET status = 'completed', transaction_hash = ?, completed_at = ?"
          " WHERE id = ? AND status = 'processing'");
      done.bind(1, to_hex(bytes_of(hash)));
      done.bind(2, now_s);
      done.bind(3, r.id);
      done.run();
    }
    return rows.size();
  });
}

}  // namespace

PayoutBatch Payouts::submit(const PayoutBatchRequest& req) {
  PayoutBatch b = submit_batch(req);
  if (b.created) {
    work_.store(true);
    // The leader processes payouts; it may be another replica.
    core_.broadcast_change("payouts");
  }
  return b;
}

PayoutBatch Payouts::submit_batch(const PayoutBatchRequest& req) {
  if (!req.batch_id.empty() && !valid_batch_id(req.batch_id))
    invalid("batch_id", "batch_id must be 1..128 characters of A-Z, a-z, 0-9, '_', '-', '.' and ':'");
  if (req.requests.empty()) invalid("payout_requests", "payout_requests must hold at least one payout");
  if (req.requests.size() > core_.opts.payouts.max_batch)
    invalid("payout_requests", "payout_requests must hold at most " + std::to_string(core_.opts.payouts.max_batch) +
                                   " payouts");
  std::vector<Normalized> items;
  items.reserve(req.requests.size());
  for (std::size_t i = 0; i < req.requests.size(); ++i) items.push_back(normalize(req.requests[i], i));
  const std::string hash = request_hash(items);
  const std::string batch_id = req.batch_id.empty() ? new_uid("batch_") : req.batch_id;
  const std::string ids = to_hex(random_bytes(8 * items.size()));

  return core_.store->write_durable([&](Conn& c) {
    auto& existing = c.stmt("SELECT id, request_hash FROM payout_batches WHERE batch_id = ?");
    existing.bind(1, batch_id);
    if (existing.step()) {
      const std::int64_t id = existing.column(0).as_int64();
      const bool same = existing.column(1).as_text() == hash;
      existing.reset();
      if (!same)
        throw Error(Errc::conflict, Reason::batch_failed,
                    "batch_id '" + batch_id + "' was already used with different payout_requests");
      PayoutBatch b = batch_state(core_, c, id, ns_per_payout_.load());
      b.created = false;
      return b;
    }
    existing.reset();
    std::unordered_map<std::string, std::int64_t> node_ids;
    std::vector<std::int64_t> resolved(items.size());
    auto& node = c.stmt("SELECT id FROM nodes WHERE uid = ?");
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto it = node_ids.find(items[i].node_uid);
      if (it == node_ids.end()) {
        node.bind(1, items[i].node_uid);
        if (!node.step())
          throw Error(Errc::invalid_argument, "Node not found: " + items[i].node_uid,
                      "payout_requests." + std::to_string(i) + ".node_id", Reason::node_not_found);
        it = node_ids.emplace(items[i].node_uid, node.column(0).as_int64()).first;
        node.reset();
      }
      resolved[i] = it->second;
    }
    const std::string now = now_text(core_);
    auto& ins_batch = c.stmt(
        "INSERT INTO payout_batches(batch_id, request_hash, payout_count, created_at) VALUES (?, ?, ?, ?)"
        " RETURNING id");
    ins_batch.bind(1, batch_id);
    ins_batch.bind_blob(2, hash);
    ins_batch.bind(3, static_cast<std::int64_t>(items.size()));
    ins_batch.bind(4, now);
    const std::int64_t batch_row = ins_batch.run_returning_id();
    auto& ins = c.stmt(
        "INSERT INTO payouts(uid, batch_id, seq, node_id, amount_micros, currency, wallet_address, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    for (std::size_t i = 0; i < items.size(); ++i) {
      ins.reset();
      ins.bind(1, "payout_" + ids.substr(16 * i, 16));
      ins.bind(2, batch_row);
      ins.bind(3, static_cast<std::int64_t>(i));
      ins.bind(4, resolved[i]);
      ins.bind(5, items[i].micros);
      ins.bind(6, currency_name(items[i].currency));
      ins.bind(7, items[i].wallet);
      ins.bind(8, now);
      ins.run();
    }
    return batch_state(core_, c, batch_row, ns_per_payout_.load());
  });
}

PayoutBatch Payouts::batch(std::string_view batch_id) {
  if (!valid_batch_id(batch_id)) throw Error(Errc::not_found, "Batch not found");
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT id FROM payout_batches WHERE batch_id = ?");
    q.bind(1, std::string(batch_id));
    if (!q.step()) throw Error(Errc::not_found, "Batch not found");
    const std::int64_t id = q.column(0).as_int64();
    q.reset();
    PayoutBatch b = batch_state(core_, c, id, ns_per_payout_.load());
    b.created = false;
    return b;
  });
}

Payout Payouts::get(std::string_view payout_id) {
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt(LUCID_PAYOUT_SELECT "WHERE p.uid = ?");
    q.bind(1, std::string(payout_id));
    if (!q.step()) throw Error(Errc::not_found, Reason::payout_not_found, "Payout not found");
    return read_payout(q);
  });
}

std::vector<Payout> Payouts::list_for_node(std::string_view node_uid, const PayoutQuery& pq, std::int64_t* total) {
  if (pq.page < 1 || pq.page > 1000000) invalid("page", "page must be between 1 and 1000000");
  if (pq.limit < 1 || pq.limit > 100) invalid("limit", "limit must be between 1 and 100");
  const std::int64_t node_id = nodes_.resolve(node_uid);
  return core_.store->read([&](Conn& c) {
    std::vector<Payout> out;
    const std::int64_t offset = (pq.page - 1) * pq.limit;
    if (pq.status) {
      const char* status = payout_status_name(*pq.status);
      auto& q = c.stmt(LUCID_PAYOUT_SELECT "WHERE p.node_id = ? AND p.status = ? ORDER BY p.id DESC LIMIT ? OFFSET ?");
      q.bind(1, node_id);
      q.bind(2, status);
      q.bind(3, pq.limit);
      q.bind(4, offset);
      while (q.step()) out.push_back(read_payout(q));
      q.reset();
      if (total) {
        auto& t = c.stmt("SELECT COUNT(*) FROM payouts WHERE node_id = ? AND status = ?");
        t.bind(1, node_id);
        t.bind(2, status);
        t.step();
        *total = t.column(0).as_int64();
      }
    } else {
      auto& q = c.stmt(LUCID_PAYOUT_SELECT "WHERE p.node_id = ? ORDER BY p.id DESC LIMIT ? OFFSET ?");
      q.bind(1, node_id);
      q.bind(2, pq.limit);
      q.bind(3, offset);
      while (q.step()) out.push_back(read_payout(q));
      q.reset();
      if (total) {
        auto& t = c.stmt("SELECT COUNT(*) FROM payouts WHERE node_id = ?");
        t.bind(1, node_id);
        t.step();
        *total = t.column(0).as_int64();
      }
    }
    return out;
  });
}

std::size_t Payouts::process() {
  // Cleared before looking: a submit() committing after our look sets it again.
  if (!work_.exchange(false)) return 0;
  const std::size_t chunk = core_.opts.payouts.chunk;
  try {
    const auto t0 = std::chrono::steady_clock::now();
    // Payouts left processing by a crash are settled before anything new starts.
    std::size_t settled = settle_chunk(core_, chunk);
    if (settled == 0) {
      if (mark_chunk(core_, chunk) == 0) return 0;
      settled = settle_chunk(core_, chunk);
    }
    if (settled > 0) {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
      const std::int64_t per = ns.count() / static_cast<std::int64_t>(settled);
      // Concurrent rounds may lose an update here; it only skews an estimate.
      ns_per_payout_.store((ns_per_payout_.load() * 7 + per) / 8);
    }
    work_.store(true);
    return settled;
  } catch (...) {
    work_.store(true);
    throw;
  }
}

}  // namespace lucid
