// Ledger::verify — recompute every transaction hash, Merkle root and block
// hash; check heights, links, counts and timestamps (docs/ledger.md).
//
// Large ledgers are verified by up to four threads, each over a contiguous
// run of blocks and the id range of their transactions, each in its own read
// snapshot. That is sound because sealed history is append-only: every
// snapshot after the first holds the same blocks 0..H the first one listed
// (plus, maybe, newer blocks and fewer pending transactions, which the last
// run counts as pending, as the first snapshot saw them). The hot loop uses
// the store's statements with zero-copy blob views (Column::as_blob): a copy
// per column would cost more than the hashing of a small transaction.
#include <algorithm>
#include <cstring>
#include <exception>
#include <limits>
#include <thread>

#include "core/cluster_core.hpp"
#include "ledger/ledger_format.hpp"
#include "ledger/sha256.hpp"
#include "lucidnode/ledger.hpp"

namespace lucid {

using namespace detail;

namespace {

using merkle::Hash;

constexpr std::int64_t kNoId = std::numeric_limits<std::int64_t>::max();
// Below this many transactions one thread is as fast as several.
constexpr std::int64_t kParallelFrom = 20000;
constexpr unsigned kMaxThreads = 4;

std::string hex(const Hash& h) { return to_hex(bytes_of(h)); }

struct StoredBlock {
  std::int64_t height = 0;
  Hash hash{}, previous_hash{}, merkle_root{};
  std::int64_t timestamp_us = 0;
  std::int64_t tx_count = 0;
  bool hashes_ok = true;  // the three stored hashes are 32 bytes each
};

// One thread's share: blocks [first, end) of the list, rows with id in [id_lo, id_hi).
struct Part {
  std::size_t first = 0, end = 0;
  std::int64_t id_lo = 0, id_hi = kNoId;
  bool last = false;  // also owns the pending transactions
  LedgerVerifyReport rep;
  std::exception_ptr error;
};

Hash to_hash(std::string_view b) {
  Hash h{};
  if (b.size() == h.size()) std::memcpy(h.data(), b.data(), h.size());
  return h;
}

std::vector<StoredBlock> load_blocks(Conn& c) {
  std::vector<StoredBlock> out;
  auto& q = c.stmt("SELECT height, hash, previous_hash, merkle_root, timestamp_us, tx_count FROM ledger_blocks ORDER BY height");
  while (q.step()) {
    StoredBlock b;
    b.height = q.column(0).as_int64();
    const std::string_view hash = q.column(1).as_blob(), previous = q.column(2).as_blob(),
                           root = q.column(3).as_blob();
    b.hashes_ok = hash.size() == 32 && previous.size() == 32 && root.size() == 32;
    b.hash = to_hash(hash);
    b.previous_hash = to_hash(previous);
    b.merkle_root = to_hash(root);
    b.timestamp_us = q.column(4).as_int64();
    b.tx_count = q.column(5).as_int64();
    out.push_back(b);
  }
  return out;
}

class Verifier {
 public:
  Verifier(const std::vector<StoredBlock>& blocks, Part& part) : blocks_(blocks), part_(part), rep_(part.rep) {}

  void run(Conn& c) {
    cur_ = part_.first;
    if (cur_ < part_.end && !start_block(cur_)) return;
    auto& q = c.stmt(
        "SELECT block_height, hash, type, ref, timestamp_us, payload FROM ledger_transactions"
        " WHERE id >= ?1 AND id < ?2 ORDER BY id");
    q.bind(1, part_.id_lo);
    q.bind(2, part_.id_hi);
    const std::int64_t top = blocks_[part_.end - 1].height;  // the newest block this part may see
    bool pending_mode = false;
    while (q.step()) {
      const Column height = q.column(0);
      const bool no_block = height.is_null();
      const std::int64_t bh = height.as_int64();
      const std::string_view stored = q.column(1).as_blob();
      const Hash computed =
          tx_hash(q.column(2).as_blob(), q.column(3).as_blob(), q.column(4).as_int64(), q.column(5).as_blob());
      const bool hash_ok = stored.size() == 32 && std::memcmp(stored.data(), computed.data(), 32) == 0;
      const Hash shown = to_hash(stored);
      if (no_block || (part_.last && bh > top)) {  // pending as of the first snapshot
        if (!part_.last) {
          fail(blocks_[part_.end].height, "pending transaction " + hex(shown) + " precedes the transactions of block " +
                                              std::to_string(blocks_[part_.end].height));
          return;
        }
        if (!pending_mode) {
          if (!finish_remaining()) return;
          pending_mode = true;
        }
        if (!hash_ok) {
          fail(std::nullopt, "pending transaction " + hex(shown) + " does not match its content (recomputed " +
                                 hex(computed) + ")");
          return;
        }
        ++rep_.pending;
        continue;
      }
      if (pending_mode) {
        fail(bh, "transaction " + hex(shown) + " of block " + std::to_string(bh) + " comes after pending transactions");
        return;
      }
      while (cur_ < part_.end && blocks_[cur_].height < bh) {
        if (!finish_block()) return;
        ++cur_;
        if (cur_ < part_.end && !start_block(cur_)) return;
      }
      if (cur_ == part_.end || blocks_[cur_].height != bh) {
        const bool exists =
            std::any_of(blocks_.begin(), blocks_.end(), [&](const StoredBlock& b) { return b.height == bh; });
        fail(bh, "transaction " + hex(shown) +
                     (exists ? " of block " + std::to_string(bh) + " is out of order"
                             : " claims block " + std::to_string(bh) + ", which does not exist"));
        return;
      }
      if (!hash_ok) {
        fail(bh, "transaction " + hex(shown) + " (index " + std::to_string(leaves_.size()) + " of block " +
                     std::to_string(bh) + ") does not match its content (recomputed " + hex(computed) + ")");
        return;
      }
      leaves_.push_back(computed);
    }
    if (!pending_mode) finish_remaining();
  }

 private:
  bool fail(std::optional<std::int64_t> height, std::string problem) {
    rep_.ok = false;
    rep_.broken_height = height;
    rep_.problem = std::move(problem);
    if (height)
      for (const auto& b : blocks_)
        if (b.height == *height) rep_.broken_hash = hex(b.hash);
    return false;
  }

  // Header checks, before the block's transactions stream in.
  bool start_block(std::size_t i) {
    const StoredBlock& b = blocks_[i];
    const auto expected = static_cast<std::int64_t>(i);
    const std::string name = "block " + std::to_string(expected);
    if (b.height != expected)
      return fail(expected, name + " is missing (the next stored height is " + std::to_string(b.height) + ")");
    if (!b.hashes_ok) return fail(b.height, "a stored hash of " + name + " is not 32 bytes");
    if (i == 0 && b.previous_hash != Hash{}) return fail(0, "the genesis block's previous_hash is not all zeros");
    if (i > 0 && b.previous_hash != blocks_[i - 1].hash)
      return fail(b.height, "previous_hash of " + name + " is not the hash of block " + std::to_string(b.height - 1));
    if (i > 0 && b.timestamp_us < blocks_[i - 1].timestamp_us)
      return fail(b.height, name + " is timestamped before block " + std::to_string(b.height - 1));
    const Hash computed = block_hash({b.height, b.previous_hash, b.merkle_root, b.timestamp_us, b.tx_count});
    if (computed != b.hash)
      return fail(b.height, name + " hash does not match its header (recomputed " + hex(computed) + ")");
    leaves_.clear();
    return true;
  }

  // Count and Merkle checks, once the block's transactions are in.
  bool finish_block() {
    const StoredBlock& b = blocks_[cur_];
    if (static_cast<std::int64_t>(leaves_.size()) != b.tx_count)
      return fail(b.height, "block " + std::to_string(b.height) + " holds " + std::to_string(leaves_.size()) +
                                " transactions; its header says " + std::to_string(b.tx_count));
    if (merkle::root(leaves_) != b.merkle_root)
      return fail(b.height, "block " + std::to_string(b.height) + " merkle_root does not match its transactions");
    ++rep_.blocks;
    rep_.transactions += b.tx_count;
    return true;
  }

  bool finish_remaining() {
    while (cur_ < part_.end) {
      if (!finish_block()) return false;
      ++cur_;
      if (cur_ < part_.end && !start_block(cur_)) return false;
    }
    return true;
  }

  const std::vector<StoredBlock>& blocks_;
  Part& part_;
  LedgerVerifyReport& rep_;
  std::size_t cur_ = 0;
  std::vector<Hash> leaves_;
};

// Splits the blocks into runs of about equal transaction counts, one per
// thread, with the first transaction id of each run. One run when the
// ledger is small or its layout is not what sealing makes (then the single
// run reports whatever is wrong).
std::vector<Part> plan(Conn& c, const std::vector<StoredBlock>& blocks) {
  std::int64_t total = 0;
  for (const auto& b : blocks) total += std::max<std::int64_t>(b.tx_count, 0);
  const unsigned threads = std::clamp(std::thread::hardware_concurrency(), 1u, kMaxThreads);
  std::vector<Part> parts(1);
  parts[0].end = blocks.size();
  parts[0].last = true;
  if (total < kParallelFrom || threads < 2) return parts;
  std::vector<std::size_t> cuts;
  std::int64_t seen = 0;
  for (std::size_t i = 0; i < blocks.size() && cuts.size() + 1 < threads; ++i) {
    if (seen >= total * static_cast<std::int64_t>(cuts.size() + 1) / threads && i > 0) cuts.push_back(i);
    seen += std::max<std::int64_t>(blocks[i].tx_count, 0);
  }
  if (cuts.empty()) return parts;
  auto& first_id = c.stmt("SELECT MIN(id) FROM ledger_transactions WHERE block_height = ?1");
  std::vector<std::int64_t> ids;
  for (std::size_t cut : cuts) {
    first_id.reset();
    first_id.bind(1, blocks[cut].height);
    if (!first_id.step() || first_id.column(0).is_null()) return parts;
    const std::int64_t id = first_id.column(0).as_int64();
    if (!ids.empty() && id <= ids.back()) return parts;
    ids.push_back(id);
  }
  parts.assign(cuts.size() + 1, Part{});
  for (std::size_t p = 0; p < parts.size(); ++p) {
    parts[p].first = p == 0 ? 0 : cuts[p - 1];
    parts[p].end = p < cuts.size() ? cuts[p] : blocks.size();
    parts[p].id_lo = p == 0 ? std::numeric_limits<std::int64_t>::min() : ids[p - 1];
    parts[p].id_hi = p < cuts.size() ? ids[p] : kNoId;
    parts[p].last = p == cuts.size();
  }
  return parts;
}

}  // namespace

LedgerVerifyReport Ledger::verify() {
  std::vector<StoredBlock> blocks;
  std::vector<Part> parts;
  core_.store->read([&](Conn& c) {
    blocks = load_blocks(c);
    if (blocks.empty()) return;
    parts = plan(c, blocks);
    {
      std::vector<std::jthread> helpers;
      for (std::size_t p = 1; p < parts.size(); ++p)
        helpers.emplace_back([this, &blocks, &part = parts[p]] {
          try {
            core_.store->read([&](Conn& own) { Verifier(blocks, part).run(own); });
          } catch (...) {
            part.error = std::current_exception();
          }
        });
      try {
        Verifier(blocks, parts[0]).run(c);
      } catch (...) {
        parts[0].error = std::current_exception();
      }
    }  // joins the helpers
    // Inside read(), which turns a database error into Error(storage) as it
    // did for the helpers.
    if (parts[0].error) std::rethrow_exception(parts[0].error);
  });
  LedgerVerifyReport out;
  if (blocks.empty()) {
    out.ok = false;
    out.broken_height = 0;
    out.problem = "the ledger has no genesis block";
    return out;
  }
  for (const auto& p : parts)
    if (p.error) std::rethrow_exception(p.error);
  const Part* first_broken = nullptr;
  for (const auto& p : parts) {
    out.blocks += p.rep.blocks;
    out.transactions += p.rep.transactions;
    out.pending += p.rep.pending;
    if (p.rep.ok) continue;
    // The lowest broken height wins; damage in a pending transaction ranks last.
    const auto key = [](const Part* x) { return x->rep.broken_height.value_or(std::numeric_limits<std::int64_t>::max()); };
    if (!first_broken || key(&p) < key(first_broken)) first_broken = &p;
  }
  if (first_broken) {
    out.ok = false;
    out.broken_height = first_broken->rep.broken_height;
    out.broken_hash = first_broken->rep.broken_hash;
    out.problem = first_broken->rep.problem;
  }
  return out;
}

}  // namespace lucid
