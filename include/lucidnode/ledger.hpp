// Ledger: a hash-chained list of blocks, each sealing the transactions that
// arrived since the previous one under a Merkle root. Payouts write one
// transaction each; the gateway's /chain/* endpoints read it. docs/ledger.md
// defines the byte formats (transaction, block header) and the checks that
// verify() runs; docs/merkle.md defines the tree.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lucidnode/clock.hpp"
#include "lucidnode/export.hpp"

namespace lucid {

namespace detail { class ClusterCore; }
LUCID_PUBLIC_BEGIN

// One sealed block. Hashes are 64 lower-case hex characters.
struct Block {
  std::int64_t height = 0;    // 0 is the genesis block
  std::string hash;           // SHA-256 over the canonical header (docs/ledger.md)
  std::string previous_hash;  // the previous block's hash; 64 zeros for genesis
  std::string merkle_root;    // over the block's transaction hashes, in order
  Timestamp timestamp;        // when it was sealed; never earlier than the previous block's
  std::int64_t tx_count = 0;
};

// A transaction is pending until a block seals it, then confirmed.
enum class TxStatus { pending, confirmed };
// "pending", "confirmed".
const char* tx_status_name(TxStatus s) noexcept;

struct LedgerTransaction {
  std::string hash;     // 64 hex: the Merkle leaf hash of its canonical bytes
  std::string type;     // e.g. "payout"
  std::string ref;      // the producer's unique reference (a payout id); may be empty
  std::string payload;  // the producer's canonical bytes (JSON text for payouts)
  Timestamp timestamp;  // when it was appended (microsecond precision)
  TxStatus status = TxStatus::pending;
  std::optional<std::int64_t> block_height;  // set once confirmed
  std::optional<std::int64_t> index;         // position in the block, once confirmed
};

// What append() takes.
struct TransactionInput {
  std::string type;     // 1..32 chars of [a-z0-9_], starting with a letter
  std::string ref;      // optional, <= 128 chars, no control characters; unique across the ledger
  std::string payload;  // <= 1 MiB of bytes
};

struct ChainInfo {
  std::int64_t height = 0;         // of the newest block
  std::string genesis_hash;
  std::string head_hash;           // the newest block's hash
  Timestamp head_timestamp;
  std::int64_t blocks = 0;         // height + 1
  std::int64_t transactions = 0;   // confirmed
  std::int64_t pending = 0;        // appended, not yet sealed
  std::chrono::milliseconds block_time{0};  // Options::ledger.block_time
};

// A Merkle inclusion proof for one confirmed transaction (docs/merkle.md,
// "Inclusion proofs"): the sibling hashes from the leaf up.
struct InclusionProof {
  std::string tx_hash;
  std::int64_t block_height = 0;
  std::int64_t index = 0;     // leaf index in the block
  std::int64_t tx_count = 0;  // leaves in the block
  std::vector<std::string> path;  // hex hashes, leaf level first
  std::string merkle_root;
};

// The outcome of verify(). When !ok, `problem` says what broke and
// `broken_height` names the first broken block (absent when the damage is in
// a pending transaction, which no block covers yet).
struct LedgerVerifyReport {
  bool ok = true;
  std::int64_t blocks = 0;        // blocks checked (all of them when ok)
  std::int64_t transactions = 0;  // confirmed transactions checked
  std::int64_t pending = 0;       // pending transactions checked
  std::optional<std::int64_t> broken_height;
  std::string broken_hash;        // the stored hash of that block, when it exists
  std::string problem;
};

// The ledger. Obtained from Cluster::ledger(); lives as long as the Cluster.
// Thread-safe: every method may be called concurrently; each change is one
// database transaction. Failures throw lucid::Error.
class Ledger {
 public:
  // Chain height, genesis and head, counts. Errors: not_found when the
  // database has no genesis block (a read-only open of a database whose
  // first read-write open did not finish).
  ChainInfo info();

  // A counter that changes whenever this Ledger seals a block (no database
  // access): callers caching what they read from blocks key it by this.
  // Blocks written by another process on the same database are not seen.
  std::int64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

  // One block. Errors: not_found.
  Block block_at(std::int64_t height);
  // One block by its hash (64 hex, any case). Errors: not_found (also for text
  // that is not a hash).
  Block block_by_hash(std::string_view hash);
  // Blocks newest first, 1-based `page` of `limit` (1..100); `total` receives
  // the number of blocks. Errors: invalid_argument ("page", "limit").
  std::vector<Block> blocks(std::int64_t page, std::int64_t limit, std::int64_t* total = nullptr);
  // The block's transactions in Merkle order (at most kMaxBlockTransactions).
  // Errors: not_found.
  std::vector<LedgerTransaction> block_transactions(std::int64_t height);

  // One transaction by hash (64 hex, any case). Errors: not_found.
  LedgerTransaction transaction(std::string_view hash);
  // The transaction with this producer reference, if any.
  std::optional<LedgerTransaction> find_by_ref(std::string_view ref);
  // The inclusion proof of a confirmed transaction. Errors: not_found,
  // conflict (still pending: no block covers it yet).
  InclusionProof prove(std::string_view tx_hash);

  // Appends transactions (pending until the next seal), all in one database
  // transaction, in order; returns their hashes. Errors: invalid_argument
  // (field "transactions.<i>.<field>"), conflict when a ref is already in the
  // ledger or repeated in the call (nothing is appended then).
  std::vector<std::string> append(const std::vector<TransactionInput>& txs);

  // Seals every pending transaction into new blocks of at most
  // kMaxBlockTransactions each, oldest first, one database transaction per
  // block; returns the new blocks (none when nothing is pending). Runs on the
  // executor every Options::ledger.block_time; callable directly.
  std::vector<Block> seal();

  // Recomputes every transaction hash, Merkle root and block hash, and checks
  // the chain links, heights, counts and timestamps (docs/ledger.md,
  // "Verification"), streaming the database. Ledgers of 20,000 transactions
  // or more are split into runs of blocks verified by up to four threads, each
  // in its own read snapshot (sealed blocks never change). Never throws for a
  // broken ledger: the report says what broke. Works on a read-only Cluster.
  // Errors: storage.
  LedgerVerifyReport verify();

  // Creates the genesis block when the chain has none; idempotent. The Cluster
  // calls it when it opens a database read-write. Errors: storage.
  void ensure_genesis();

  static constexpr std::int64_t kMaxBlockTransactions = 10000;

  explicit Ledger(detail::ClusterCore& core) : core_(core) {}

 private:
  detail::ClusterCore& core_;
  std::atomic<std::int64_t> generation_{0};
};

LUCID_PUBLIC_END
}  // namespace lucid
