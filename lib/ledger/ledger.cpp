#include "lucidnode/ledger.hpp"

#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "core/cluster_core.hpp"
#include "ledger/ledger_format.hpp"
#include "ledger/sha256.hpp"
#include "core/clock_text.hpp"
#include "util/checks.hpp"
#include "store/stored.hpp"

namespace lucid {

using namespace detail;

const char* tx_status_name(TxStatus s) noexcept { return s == TxStatus::confirmed ? "confirmed" : "pending"; }

namespace detail {

namespace {

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

std::string tx_bytes(std::string_view type, std::string_view ref, std::int64_t timestamp_us, std::string_view payload) {
  std::string out;
  out.reserve(kTxMagic.size() + 1 + type.size() + 2 + ref.size() + 8 + 4 + payload.size());
  out.append(kTxMagic);
  put_be(out, type.size(), 1);
  out.append(type);
  put_be(out, ref.size(), 2);
  out.append(ref);
  put_be(out, static_cast<std::uint64_t>(timestamp_us), 8);
  put_be(out, payload.size(), 4);
  out.append(payload);
  return out;
}

merkle::Hash tx_hash(std::string_view type, std::string_view ref, std::int64_t timestamp_us, std::string_view payload) {
  // Everything before the payload fits a small buffer (check_tx_input bounds
  // type and ref): two digest updates per transaction instead of nine. Rows
  // this ledger cannot have written (longer fields: a tampered database) are
  // still hashed, the long way, so that verify reports them instead of failing.
  char head[512];
  const std::size_t need = 1 + kTxMagic.size() + 1 + type.size() + 2 + ref.size() + 8 + 4;
  if (need > sizeof head || type.size() > 0xff || ref.size() > 0xffff)
    return merkle::leaf_hash(tx_bytes(type, ref, timestamp_us, payload));
  char* p = head;
  *p++ = static_cast<char>(merkle::kLeafPrefix);
  std::memcpy(p, kTxMagic.data(), kTxMagic.size());
  p += kTxMagic.size();
  *p++ = static_cast<char>(type.size());
  std::memcpy(p, type.data(), type.size());
  p += type.size();
  *p++ = static_cast<char>((ref.size() >> 8) & 0xff);
  *p++ = static_cast<char>(ref.size() & 0xff);
  std::memcpy(p, ref.data(), ref.size());
  p += ref.size();
  const auto ts = static_cast<std::uint64_t>(timestamp_us);
  for (int i = 7; i >= 0; --i) *p++ = static_cast<char>((ts >> (8 * i)) & 0xff);
  for (int i = 3; i >= 0; --i) *p++ = static_cast<char>((payload.size() >> (8 * i)) & 0xff);
  return sha256_concat({std::string_view(head, static_cast<std::size_t>(p - head)), payload});
}

std::string header_bytes(const BlockHeader& h) {
  std::string out;
  out.reserve(92);
  out.append(kBlockMagic);
  put_be(out, static_cast<std::uint64_t>(h.height), 8);
  out.append(bytes_of(h.previous_hash));
  out.append(bytes_of(h.merkle_root));
  put_be(out, static_cast<std::uint64_t>(h.timestamp_us), 8);
  put_be(out, static_cast<std::uint64_t>(h.tx_count), 8);
  return out;
}

merkle::Hash block_hash(const BlockHeader& h) {
  const char prefix = static_cast<char>(kBlockHashPrefix);
  return sha256_concat({std::string_view(&prefix, 1), header_bytes(h)});
}

void check_tx_input(std::string_view type, std::string_view ref, std::string_view payload, const std::string& prefix) {
  bool type_ok = !type.empty() && type.size() <= kMaxTxType && type[0] >= 'a' && type[0] <= 'z';
  for (char ch : type) type_ok = type_ok && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_');
  if (!type_ok) invalid(prefix + "type", "type must be 1..32 characters of a-z, 0-9 and '_', starting with a letter");
  check_text(prefix + "ref", ref, kMaxTxRef, false);
  if (payload.size() > kMaxTxPayload) invalid(prefix + "payload", "payload must be at most 1 MiB");
}

merkle::Hash ledger_append(Conn& c, std::string_view type, std::string_view ref, std::int64_t timestamp_us,
                           std::string_view payload, bool* inserted) {
  const merkle::Hash h = tx_hash(type, ref, timestamp_us, payload);
  // DO NOTHING on either unique key: a taken ref, or the very same bytes
  // (same hash) appended twice.
  auto& ins = c.stmt(
      "INSERT INTO ledger_transactions(hash, type, ref, timestamp_us, payload) VALUES (?, ?, ?, ?, ?)"
      " ON CONFLICT DO NOTHING");
  ins.bind_blob(1, h);
  ins.bind(2, std::string(type));
  if (ref.empty()) ins.bind(3, nullptr); else ins.bind(3, std::string(ref));
  ins.bind(4, static_cast<std::int64_t>(timestamp_us));
  ins.bind(5, std::string(payload));
  ins.run();
  if (c.changes() == 1) {
    if (inserted) *inserted = true;
    return h;
  }
  // Exactly once: the transaction already there is the answer.
  auto& q = ref.empty() ? c.stmt("SELECT hash FROM ledger_transactions WHERE hash = ?")
                        : c.stmt("SELECT hash FROM ledger_transactions WHERE ref = ?");
  if (ref.empty()) q.bind_blob(1, h); else q.bind(1, std::string(ref));
  if (!q.step()) throw Error(Errc::internal, "ledger insert ignored without a conflicting row");
  merkle::Hash existing{};
  const std::string_view stored = q.column(0).as_blob();
  if (stored.size() != existing.size()) throw Error(Errc::storage, "stored transaction hash is not 32 bytes");
  std::memcpy(existing.data(), stored.data(), existing.size());
  q.reset();
  if (inserted) *inserted = false;
  return existing;
}

}  // namespace detail

namespace {

using merkle::Hash;

Timestamp from_us(std::int64_t us) {
  return Timestamp(std::chrono::duration_cast<Timestamp::duration>(std::chrono::microseconds(us)));
}

Hash hash_col(const detail::Column& col) {
  Hash h{};
  if (col.is_null()) return h;
  const std::string_view stored = col.as_blob();
  if (stored.size() != h.size()) return h;
  std::memcpy(h.data(), stored.data(), h.size());
  return h;
}

std::string hex_col(const detail::Column& col) {
  return to_hex(col.as_blob());
}

std::string hex(const Hash& h) { return to_hex(bytes_of(h)); }

// "SELECT height, hash, previous_hash, merkle_root, timestamp_us, tx_count"
Block read_block(detail::Statement& q) {
  Block b;
  b.height = q.column(0).as_int64();
  b.hash = hex_col(q.column(1));
  b.previous_hash = hex_col(q.column(2));
  b.merkle_root = hex_col(q.column(3));
  b.timestamp = from_us(q.column(4).as_int64());
  b.tx_count = q.column(5).as_int64();
  return b;
}

#define LUCID_BLOCK_SELECT "SELECT height, hash, previous_hash, merkle_root, timestamp_us, tx_count FROM ledger_blocks "
#define LUCID_TX_SELECT "SELECT id, hash, type, ref, timestamp_us, payload, block_height FROM ledger_transactions "

LedgerTransaction read_tx(detail::Statement& q) {
  LedgerTransaction t;
  t.hash = hex_col(q.column(1));
  t.type = q.column(2).as_text();
  if (!q.column(3).is_null()) t.ref = q.column(3).as_text();
  t.timestamp = from_us(q.column(4).as_int64());
  t.payload = q.column(5).as_text();
  if (!q.column(6).is_null()) {
    t.status = TxStatus::confirmed;
    t.block_height = q.column(6).as_int64();
  }
  return t;
}

// Fills `index` of a confirmed transaction read with its row id.
void attach_index(Conn& c, LedgerTransaction& t, std::int64_t row_id) {
  if (!t.block_height) return;
  auto& q = c.stmt("SELECT COUNT(*) FROM ledger_transactions WHERE block_height = ? AND id < ?");
  q.bind(1, *t.block_height);
  q.bind(2, row_id);
  q.step();
  t.index = q.column(0).as_int64();
  q.reset();
}

std::optional<Hash> parse_hash(std::string_view text) {
  if (text.size() != 64) return std::nullopt;
  auto raw = from_hex(text);
  if (!raw) return std::nullopt;
  Hash h{};
  std::memcpy(h.data(), raw->data(), h.size());
  return h;
}

[[noreturn]] void block_not_found() { throw Error(Errc::not_found, "Block not found"); }
[[noreturn]] void tx_not_found() { throw Error(Errc::not_found, "Transaction not found"); }

std::int64_t now_us(const ClusterCore& core) { return unix_us(core.clock->now()); }

// Seals up to kMaxBlockTransactions pending transactions into one block.
std::optional<Block> seal_one(ClusterCore& core) {
  return core.store->write_durable([&](Conn& c) -> std::optional<Block> {
    auto& pend = c.stmt(
        "SELECT id, hash FROM ledger_transactions WHERE block_height IS NULL ORDER BY id LIMIT ?");
    pend.bind(1, Ledger::kMaxBlockTransactions);
    std::vector<Hash> leaves;
    std::int64_t last_id = 0;
    while (pend.step()) {
      last_id = pend.column(0).as_int64();
      leaves.push_back(hash_col(pend.column(1)));
    }
    pend.reset();
    if (leaves.empty()) return std::nullopt;
    auto& head = c.stmt("SELECT height, hash, timestamp_us FROM ledger_blocks ORDER BY height DESC LIMIT 1");
    if (!head.step()) throw Error(Errc::storage, "the ledger has no genesis block");
    BlockHeader h;
    h.height = head.column(0).as_int64() + 1;
    h.previous_hash = hash_col(head.column(1));
    // Never earlier than the previous block, whatever the wall clock does.
    h.timestamp_us = std::max(now_us(core), head.column(2).as_int64());
    head.reset();
    h.merkle_root = merkle::root(leaves);
    h.tx_count = static_cast<std::int64_t>(leaves.size());
    const Hash bh = block_hash(h);
    auto& ins = c.stmt(
        "INSERT INTO ledger_blocks(height, hash, previous_hash, merkle_root, timestamp_us, tx_count)"
        " VALUES (?, ?, ?, ?, ?, ?)");
    ins.bind(1, h.height);
    ins.bind_blob(2, bh);
    ins.bind_blob(3, h.previous_hash.data(), static_cast<int>(h.previous_hash.size()));
    ins.bind_blob(4, h.merkle_root.data(), static_cast<int>(h.merkle_root.size()));
    ins.bind(5, h.timestamp_us);
    ins.bind(6, h.tx_count);
    ins.run();
    auto& up = c.stmt("UPDATE ledger_transactions SET block_height = ? WHERE block_height IS NULL AND id <= ?");
    up.bind(1, h.height);
    up.bind(2, last_id);
    up.run();
    if (c.changes() != static_cast<int>(leaves.size()))
      throw Error(Errc::internal, "sealing moved a different number of transactions than it hashed");
    Block b;
    b.height = h.height;
    b.hash = hex(bh);
    b.previous_hash = hex(h.previous_hash);
    b.merkle_root = hex(h.merkle_root);
    b.timestamp = from_us(h.timestamp_us);
    b.tx_count = h.tx_count;
    return b;
  });
}

}  // namespace

void Ledger::ensure_genesis() {
  if (core_.opts.read_only) return;
  const bool exists = core_.store->read([](Conn& c) {
    auto& q = c.stmt("SELECT 1 FROM ledger_blocks WHERE height = 0");
    return q.step();
  });
  if (exists) return;
  core_.store->write_durable([&](Conn& c) {
    auto& q = c.stmt("SELECT 1 FROM ledger_blocks WHERE height = 0");
    if (q.step()) return;
    q.reset();
    BlockHeader h;
    h.height = 0;
    h.merkle_root = merkle::empty_root();
    h.timestamp_us = now_us(core_);
    h.tx_count = 0;
    const Hash bh = block_hash(h);
    auto& ins = c.stmt(
        "INSERT INTO ledger_blocks(height, hash, previous_hash, merkle_root, timestamp_us, tx_count)"
        " VALUES (0, ?, ?, ?, ?, 0)");
    ins.bind_blob(1, bh);
    ins.bind_blob(2, h.previous_hash.data(), static_cast<int>(h.previous_hash.size()));
    ins.bind_blob(3, h.merkle_root.data(), static_cast<int>(h.merkle_root.size()));
    ins.bind(4, h.timestamp_us);
    ins.run();
  });
}

ChainInfo Ledger::info() {
  return core_.store->read([&](Conn& c) {
    ChainInfo info;
    info.block_time = core_.opts.ledger.block_time;
    auto& g = c.stmt("SELECT hash FROM ledger_blocks WHERE height = 0");
    if (!g.step()) throw Error(Errc::not_found, "the ledger has no genesis block");
    info.genesis_hash = hex_col(g.column(0));
    g.reset();
    auto& h = c.stmt(LUCID_BLOCK_SELECT "ORDER BY height DESC LIMIT 1");
    h.step();
    const Block head = read_block(h);
    h.reset();
    info.height = head.height;
    info.blocks = head.height + 1;
    info.head_hash = head.hash;
    info.head_timestamp = head.timestamp;
    auto& n = c.stmt("SELECT COALESCE(SUM(tx_count), 0) FROM ledger_blocks");
    n.step();
    info.transactions = n.column(0).as_int64();
    n.reset();
    auto& p = c.stmt("SELECT COUNT(*) FROM ledger_transactions WHERE block_height IS NULL");
    p.step();
    info.pending = p.column(0).as_int64();
    return info;
  });
}

Block Ledger::block_at(std::int64_t height) {
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt(LUCID_BLOCK_SELECT "WHERE height = ?");
    q.bind(1, height);
    if (!q.step()) block_not_found();
    return read_block(q);
  });
}

Block Ledger::block_by_hash(std::string_view hash) {
  const auto h = parse_hash(hash);
  if (!h) block_not_found();
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt(LUCID_BLOCK_SELECT "WHERE hash = ?");
    q.bind_blob(1, *h);
    if (!q.step()) block_not_found();
    return read_block(q);
  });
}

std::vector<Block> Ledger::blocks(std::int64_t page, std::int64_t limit, std::int64_t* total) {
  if (page < 1 || page > 1000000) invalid("page", "page must be between 1 and 1000000");
  if (limit < 1 || limit > 100) invalid("limit", "limit must be between 1 and 100");
  return core_.store->read([&](Conn& c) {
    std::vector<Block> out;
    auto& q = c.stmt(LUCID_BLOCK_SELECT "ORDER BY height DESC LIMIT ? OFFSET ?");
    q.bind(1, limit);
    q.bind(2, (page - 1) * limit);
    while (q.step()) out.push_back(read_block(q));
    q.reset();
    if (total) {
      auto& t = c.stmt("SELECT COUNT(*) FROM ledger_blocks");
      t.step();
      *total = t.column(0).as_int64();
    }
    return out;
  });
}

std::vector<LedgerTransaction> Ledger::block_transactions(std::int64_t height) {
  return core_.store->read([&](Conn& c) {
    auto& b = c.stmt("SELECT 1 FROM ledger_blocks WHERE height = ?");
    b.bind(1, height);
    if (!b.step()) block_not_found();
    b.reset();
    std::vector<LedgerTransaction> out;
    auto& q = c.stmt(LUCID_TX_SELECT "WHERE block_height = ? ORDER BY id");
    q.bind(1, height);
    while (q.step()) {
      out.push_back(read_tx(q));
      out.back().index = static_cast<std::int64_t>(out.size()) - 1;
    }
    return out;
  });
}

LedgerTransaction Ledger::transaction(std::string_view hash) {
  const auto h = parse_hash(hash);
  if (!h) tx_not_found();
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt(LUCID_TX_SELECT "WHERE hash = ?");
    q.bind_blob(1, *h);
    if (!q.step()) tx_not_found();
    LedgerTransaction t = read_tx(q);
    const std::int64_t id = q.column(0).as_int64();
    q.reset();
    attach_index(c, t, id);
    return t;
  });
}

std::optional<LedgerTransaction> Ledger::find_by_ref(std::string_view ref) {
  if (ref.empty()) return std::nullopt;
  return core_.store->read([&](Conn& c) -> std::optional<LedgerTransaction> {
    auto& q = c.stmt(LUCID_TX_SELECT "WHERE ref = ?");
    q.bind(1, std::string(ref));
    if (!q.step()) return std::nullopt;
    LedgerTransaction t = read_tx(q);
    const std::int64_t id = q.column(0).as_int64();
    q.reset();
    attach_index(c, t, id);
    return t;
  });
}

InclusionProof Ledger::prove(std::string_view tx_hash_hex) {
  const auto h = parse_hash(tx_hash_hex);
  if (!h) tx_not_found();
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT block_height FROM ledger_transactions WHERE hash = ?");
    q.bind_blob(1, *h);
    if (!q.step()) tx_not_found();
    if (q.column(0).is_null()) throw Error(Errc::conflict, "Transaction is pending: no block covers it yet");
    InclusionProof p;
    p.block_height = q.column(0).as_int64();
    q.reset();
    std::vector<Hash> leaves;
    auto& t = c.stmt("SELECT hash FROM ledger_transactions WHERE block_height = ? ORDER BY id");
    t.bind(1, p.block_height);
    while (t.step()) {
      leaves.push_back(hash_col(t.column(0)));
      if (leaves.back() == *h) p.index = static_cast<std::int64_t>(leaves.size()) - 1;
    }
    t.reset();
    p.tx_hash = hex(*h);
    p.tx_count = static_cast<std::int64_t>(leaves.size());
    for (const Hash& s : merkle::inclusion_proof(leaves, static_cast<std::size_t>(p.index))) p.path.push_back(hex(s));
    auto& b = c.stmt("SELECT merkle_root FROM ledger_blocks WHERE height = ?");
    b.bind(1, p.block_height);
    if (!b.step()) block_not_found();
    p.merkle_root = hex_col(b.column(0));
    return p;
  });
}

std::vector<std::string> Ledger::append(const std::vector<TransactionInput>& txs) {
  std::unordered_set<std::string_view> refs;
  for (std::size_t i = 0; i < txs.size(); ++i) {
    const std::string prefix = "transactions." + std::to_string(i) + ".";
    check_tx_input(txs[i].type, txs[i].ref, txs[i].payload, prefix);
    if (!txs[i].ref.empty() && !refs.insert(txs[i].ref).second)
      throw Error(Errc::conflict, "ref '" + txs[i].ref + "' appears twice in the call");
  }
  return core_.store->write_durable([&](Conn& c) {
    std::vector<std::string> out;
    out.reserve(txs.size());
    const std::int64_t ts = now_us(core_);
    for (const auto& t : txs) {
      bool inserted = false;
      const Hash h = ledger_append(c, t.type, t.ref, ts, t.payload, &inserted);
      if (!inserted)
        throw Error(Errc::conflict, t.ref.empty() ? std::string("an identical transaction is already in the ledger")
                                                  : "ref '" + t.ref + "' is already in the ledger");
      out.push_back(hex(h));
    }
    return out;
  });
}

std::vector<Block> Ledger::seal() {
  std::vector<Block> out;
  while (auto b = seal_one(core_)) {
    out.push_back(std::move(*b));
    generation_.fetch_add(1, std::memory_order_release);  // after the block's commit
  }
  return out;
}

}  // namespace lucid
