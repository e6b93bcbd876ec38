// Payouts: batches of payments to nodes, processed in the background
// (pending -> processing -> completed | failed), each completed payout
// recorded as exactly one ledger transaction. docs/ledger.md gives the
// exactly-once argument; amounts are exact decimals held as integer
// micro-units (1 unit = 1,000,000 micros), never binary floating point.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lucidnode/clock.hpp"
#include "lucidnode/export.hpp"

namespace lucid {

class Nodes;
namespace detail { class ClusterCore; class ClusterImpl; }
LUCID_PUBLIC_BEGIN

// Parses an exact decimal in JSON number syntax ("12.5", "0.000001", "1e3",
// "-2") into micro-units. nullopt when the text is not a JSON number, is not
// a whole number of micro-units (a non-zero digit past the 6th decimal), or
// does not fit in int64. Trailing zeros past the 6th decimal are fine.
std::optional<std::int64_t> parse_micros(std::string_view text);
// The shortest exact decimal for `micros`: no exponent, no trailing zeros,
// no trailing point ("12.5", "100", "0.000001", "-3.25").
std::string format_micros(std::int64_t micros);

enum class Currency { usdt, lucid };
// "USDT", "LUCID".
const char* currency_name(Currency c) noexcept;
std::optional<Currency> parse_currency(std::string_view name);

enum class PayoutStatus { pending, processing, completed, failed };
// "pending", "processing", "completed", "failed".
const char* payout_status_name(PayoutStatus s) noexcept;
std::optional<PayoutStatus> parse_payout_status(std::string_view name);

// Why a payout failed (stable names, docs/ledger.md "Payout failures").
inline constexpr const char* kPayoutNoWallet = "wallet_address_missing";
inline constexpr const char* kPayoutBadWallet = "wallet_address_invalid";

// One requested payment.
struct PayoutRequest {
  std::string node_uid;        // "node_...": the node must exist
  std::string amount;          // exact decimal text, > 0, <= 6 decimals, <= 1,000,000,000
  std::string currency = "USDT";  // "USDT" | "LUCID"
  std::string wallet_address;  // optional, <= 128 chars; checked when processed
};

struct PayoutBatchRequest {
  // The idempotency key: 1..128 chars of [A-Za-z0-9_.:-]. Empty: the server
  // makes one ("batch_" + 16 hex), and the submission is not idempotent.
  std::string batch_id;
  std::vector<PayoutRequest> requests;  // 1..Options::payouts.max_batch
};

struct Payout {
  std::string payout_id;  // "payout_" + 16 hex
  std::string node_uid;
  std::int64_t amount_micros = 0;
  Currency currency = Currency::usdt;
  std::string wallet_address;  // may be empty
  PayoutStatus status = PayoutStatus::pending;
  std::string failure_reason;  // kPayoutNoWallet / kPayoutBadWallet when failed; else empty
  std::string transaction_hash;  // the ledger transaction's hash once completed; else empty
  std::string batch_id;
  Timestamp created_at;
  std::optional<Timestamp> processed_at;  // when it became processing
  std::optional<Timestamp> completed_at;  // when it completed or failed
};

// A batch as submit() and batch() report it.
struct PayoutBatch {
  std::string batch_id;
  // "queued" while none of its payouts has started, "processing" after (the
  // document's enum has no finished state: see the counts).
  std::string status;
  std::int64_t payout_count = 0;
  std::int64_t pending = 0, processing = 0, completed = 0, failed = 0;
  Timestamp created_at;
  // When the last payout finished, or an estimate: the open payouts up to
  // this batch's last, at the measured cost per payout, plus one
  // Options::payouts.interval per round of Options::payouts.chunk.
  Timestamp estimated_completion;
  // submit(): false when the batch already existed with the same requests
  // (nothing new was created).
  bool created = true;
};

struct PayoutQuery {
  std::int64_t page = 1;    // 1..1,000,000
  std::int64_t limit = 20;  // 1..100
  std::optional<PayoutStatus> status;
};

// Thread-safe: every method may be called concurrently; each change is one
// database transaction. Failures throw lucid::Error.
class Payouts {
 public:
  // Validates and records a batch of pending payouts in one transaction; the
  // executor processes them. The same batch_id with the same requests
  // (compared after normalisation: "12.50" equals "12.5") returns the
  // existing batch and creates nothing. Errors: invalid_argument with the
  // field ("batch_id", "payout_requests", "payout_requests.<i>.amount", ...),
  // invalid_argument with Reason::node_not_found for an unknown node
  // ("payout_requests.<i>.node_id"), conflict with Reason::batch_failed when
  // batch_id exists with different requests.
  PayoutBatch submit(const PayoutBatchRequest& req);

  // A batch's state. Errors: not_found.
  PayoutBatch batch(std::string_view batch_id);

  // One payout. Errors: not_found (Reason::payout_not_found).
  Payout get(std::string_view payout_id);

  // A node's payouts, newest first, optionally of one status; `total`
  // receives the filtered count. Errors: invalid_argument ("page",
  // "limit"), not_found (Reason::node_not_found).
  std::vector<Payout> list_for_node(std::string_view node_uid, const PayoutQuery& q, std::int64_t* total = nullptr);

  // One round of processing: settles payouts left `processing` (by a crash),
  // or else marks up to Options::payouts.chunk pending payouts `processing` in
  // one transaction and settles them in a second: each becomes `completed`
  // with its ledger transaction written in the same transaction, or `failed`
  // with a reason. Returns how many payouts it settled. A round after one
  // that found nothing returns at once unless submit() ran since (changes
  // made to the database behind the Cluster's back are seen after a reopen).
  // Runs on the executor every Options::payouts.interval; callable directly.
  // Errors: storage.
  std::size_t process();

  // Resolves node uids through `nodes`, which must outlive it.
  Payouts(detail::ClusterCore& core, Nodes& nodes) : core_(core), nodes_(nodes) {}

 private:
  friend class detail::ClusterImpl;  // wake(): work submitted on another replica, or leadership gained
  PayoutBatch submit_batch(const PayoutBatchRequest& req);
  void wake() { work_.store(true); }

  detail::ClusterCore& core_;
  Nodes& nodes_;
  // Whether a round may find work: cleared by a round that found none, set
  // by submit() after it commits (and at open), so idle rounds cost nothing.
  std::atomic<bool> work_{true};
  // Measured settling cost per payout (moving average over rounds), for
  // estimated_completion.
  std::atomic<std::int64_t> ns_per_payout_{100000};
};

LUCID_PUBLIC_END
}  // namespace lucid
