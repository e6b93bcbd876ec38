// PoOT (proof of output/time): nodes prove, at a steady cadence, that they
// produced output; each proof is validated (encoding, freshness, nonce, node
// status, and an Ed25519 signature when the node registered a key), stored,
// and scored. docs/poot.md defines the signed message, the checks and the
// score formula.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lucidnode/clock.hpp"
#include "lucidnode/error.hpp"
#include "lucidnode/export.hpp"

namespace lucid {

class Nodes;
namespace detail {
class ClusterCore;
struct PootCache;
}  // namespace detail
LUCID_PUBLIC_BEGIN

enum class PootStatus { valid, invalid, pending };
// "valid", "invalid", "pending".
const char* poot_status_name(PootStatus s) noexcept;

// Why a well-formed proof was judged invalid (stable; docs/poot.md).
enum class PootFailure {
  none,
  stale_timestamp,    // timestamp older than now - Options::poot.freshness
  future_timestamp,   // timestamp later than now + Options::poot.freshness
  nonce_replayed,     // the node already has a valid proof with this nonce
  node_not_active,    // the node's lifecycle is not active
  signature_missing,  // the node registered a public key; the proof has no signature
  signature_invalid,  // the signature does not verify with the node's key
};
// "stale_timestamp", ..., or "" for none.
const char* poot_failure_name(PootFailure f) noexcept;

// One proof as a node (or a relay) submits it.
struct PootProof {
  std::string node_uid;     // "node_..."
  std::string output_data;  // standard base64 with padding (RFC 4648 §4); 1..Options::poot.max_output_bytes decoded
  std::string timestamp;    // RFC 3339, as the node sent it (signed as sent)
  std::string nonce;        // 1..128 printable ASCII characters, no space
  std::string signature;    // 128 hex characters (64-byte Ed25519 signature), or empty
};

// The outcome of validating one proof (the document's PoOTValidation).
struct PootValidation {
  std::string node_uid;
  bool valid = false;
  PootStatus status = PootStatus::invalid;  // valid or invalid; never pending here
  std::string output_hash;  // SHA-256 of the decoded output_data, lower-case hex; empty for an error item
  PootFailure failure = PootFailure::none;
  std::string reason;  // human-readable; empty when valid
  Timestamp validated_at;
  std::optional<Timestamp> proof_timestamp;  // the proof's timestamp, parsed
  std::string nonce;
  // Batch items only: why the item could not be validated at all (unknown
  // node, malformed field). Such an item is not stored; `valid` is false.
  std::optional<Error> error;
};

struct PootBatchResult {
  std::vector<PootValidation> results;  // one per input, in input order
  std::int64_t total = 0;
  std::int64_t valid = 0;
  std::int64_t invalid = 0;  // validated and stored as invalid
  std::int64_t errors = 0;   // not validated (results[i].error set)
};

// The document's PoOTScore.
struct PootScore {
  std::string node_uid;
  double score = 0;       // 0..100, two decimals
  double confidence = 0;  // 0..1, three decimals
  Timestamp calculated_at;
  // Of the latest valid proof within the window; empty when none.
  std::string output_hash;
  // Of the latest proof within the window; pending when there is none.
  PootStatus status = PootStatus::pending;
  // The inputs of the formula (docs/poot.md), for transparency and tests.
  std::int64_t proof_slots = 0;       // slots of the window with >= 1 valid proof
  std::int64_t proof_slots_expected = 0;
  std::int64_t heartbeat_slots = 0;   // slots of the window with >= 1 stats report
  std::int64_t heartbeat_slots_expected = 0;
};

// A node's registered Ed25519 public key.
struct PootKey {
  std::string public_key;  // 64 lower-case hex characters
  Timestamp registered_at;
};

// PoOT validation and scoring. Obtained from Cluster::poot(); lives as long as
// the Cluster. Thread-safe: every method may be called concurrently. Each
// state change is one database transaction. Failures throw lucid::Error.
class Poot {
 public:
  // Validates one proof and stores the result, valid or invalid (an invalid
  // proof is an answer, not an error). A proof spends its nonce only when it
  // is valid; a later proof with the same nonce is stored as nonce_replayed.
  // Errors: not_found (node_not_found) for an unknown node; invalid_argument
  // (reason poot_failed, field output_data | timestamp | nonce | signature)
  // for a proof that is malformed — nothing is stored then.
  PootValidation validate(const PootProof& proof);

  // Validates up to 1000 proofs in one pass and one write transaction. An item
  // that cannot be validated (unknown node, malformed field) is reported in
  // its result's `error` and counted in `errors`; it never fails the batch.
  // Items are judged in order, so a nonce repeated within the batch is valid
  // once and replayed after. Errors: invalid_argument (field "validations")
  // for more than 1000 items; storage.
  PootBatchResult validate_batch(const std::vector<PootProof>& proofs);

  // Computes the node's score now (docs/poot.md), stores it as the node's
  // latest (Node::poot_score) and returns it. Cost: one pass over the
  // window's proofs. Errors: not_found (node_not_found).
  PootScore score(std::string_view node_uid);

  // Recomputes and stores the latest score of every node that has a stored
  // score or a proof within the window. Runs on the executor every
  // Options::poot.score_refresh; callable directly.
  void refresh_scores();

  // The node's stored validations within the trailing Options::poot.window,
  // newest first, at most `limit` (1..1000). Scans the window's proofs of
  // every node (the store is indexed by time, not by node): for audits and
  // tests, not for hot paths. Errors: not_found (node_not_found),
  // invalid_argument (limit).
  std::vector<PootValidation> history(std::string_view node_uid, std::int64_t limit);

  // Registers the node's Ed25519 public key (64 hex characters, a valid curve
  // point), replacing any previous one. From then on the node's proofs must
  // be signed. Errors: invalid_argument (field public_key), not_found.
  PootKey register_public_key(std::int64_t node_id, std::string_view public_key_hex);
  // The same for a node addressed by uid. Errors: as above (node_not_found).
  PootKey register_public_key(std::string_view node_uid, std::string_view public_key_hex);
  // The node's key, if it registered one. Errors: not_found (node_not_found).
  std::optional<PootKey> public_key(std::string_view node_uid);

  // The exact bytes a node signs for a proof (docs/poot.md):
  // "lucid-poot-v1\n" node_uid "\n" output_hash "\n" timestamp "\n" nonce.
  static std::string signed_message(std::string_view node_uid, std::string_view output_hash_hex,
                                    std::string_view timestamp, std::string_view nonce);

  // Flushes buffered stats through `nodes` (which must outlive it) before
  // reading them.
  Poot(detail::ClusterCore& core, Nodes& nodes);
  ~Poot();
  Poot(const Poot&) = delete;
  Poot& operator=(const Poot&) = delete;

 private:
  detail::ClusterCore& core_;
  Nodes& nodes_;
  std::unique_ptr<detail::PootCache> cache_;  // node uid -> id and id -> public key
};

LUCID_PUBLIC_END
}  // namespace lucid
