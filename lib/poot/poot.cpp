// PoOT: proof validation (encoding, freshness, node status, Ed25519
// signature, nonce), storage, and the score of docs/poot.md.
#include "lucidnode/poot.hpp"

#include <sodium.h>

#include <algorithm>
#include <shared_mutex>
#include <unordered_map>

#include "core/clock_text.hpp"
#include "lucidnode/nodes.hpp"
#include "util/checks.hpp"
#include "store/stored.hpp"
#include "nodes/node_cache.hpp"
#include "util/base64.hpp"
#include "poot/score_formula.hpp"
#include "util/enum_names.hpp"
#include "util/ids.hpp"

namespace lucid {

using namespace detail;

namespace {
constexpr EnumNames<PootStatus, 3> kPootStatusNames{
    {{PootStatus::valid, "valid"}, {PootStatus::invalid, "invalid"}, {PootStatus::pending, "pending"}}};
constexpr EnumNames<PootFailure, 7> kPootFailureNames{{{PootFailure::none, ""},
                                                       {PootFailure::stale_timestamp, "stale_timestamp"},
                                                       {PootFailure::future_timestamp, "future_timestamp"},
                                                       {PootFailure::nonce_replayed, "nonce_replayed"},
                                                       {PootFailure::node_not_active, "node_not_active"},
                                                       {PootFailure::signature_missing, "signature_missing"},
                                                       {PootFailure::signature_invalid, "signature_invalid"}}};
}  // namespace

const char* poot_status_name(PootStatus s) noexcept { return enum_name(kPootStatusNames, s, "pending"); }

const char* poot_failure_name(PootFailure f) noexcept { return enum_name(kPootFailureNames, f, ""); }

namespace {

constexpr std::size_t kMaxBatch = 1000;
constexpr std::size_t kMaxNonce = 128;
constexpr std::size_t kMaxTimestamp = 64;
constexpr std::size_t kSignatureHex = 2 * crypto_sign_BYTES;
constexpr std::size_t kPublicKeyHex = 2 * crypto_sign_PUBLICKEYBYTES;

[[noreturn]] void node_not_found() { throw Error(Errc::not_found, Reason::node_not_found, "Node not found"); }

// An id of another shape than valid_node_uid's names no node.
void check_node_uid(std::string_view uid) {
  if (!detail::valid_node_uid(uid)) node_not_found();
}

[[noreturn]] void malformed(const std::string& field, const std::string& msg) {
  throw Error(Errc::invalid_argument, msg, field, Reason::poot_failed);
}

std::int64_t to_us(Timestamp t) { return unix_us(t); }

// What a proof is once its fields are decoded (no database needed).
struct Prepared {
  std::string output_hash;  // lower-case hex
  Timestamp timestamp;
  std::string signature;    // 64 raw bytes, or empty
};

// Checks and decodes the fields of `p`; throws Error(invalid_argument,
// poot_failed) naming the field (batch items: "validations.<index>.<field>").
// `scratch` is reused across calls.
Prepared prepare(const ClusterCore& core, const PootProof& p, std::optional<std::size_t> index, std::string& scratch) {
  auto field = [&](const char* name) {
    return index ? "validations." + std::to_string(*index) + "." + name : std::string(name);
  };
  Prepared out;
  const std::size_t max_bytes = core.opts.poot.max_output_bytes;
  const std::string& data = p.output_data;
  if (data.empty()) malformed(field("output_data"), "output_data is required");
  if (data.size() > 4 * ((max_bytes + 2) / 3))
    malformed(field("output_data"), "output_data exceeds " + std::to_string(max_bytes) + " bytes");
  // Standard alphabet, padding required, canonical trailing bits, no whitespace.
  if (!base64_decode_strict(data, scratch))
    malformed(field("output_data"), "output_data must be standard base64 with padding");
  const std::size_t len = scratch.size();
  if (len == 0) malformed(field("output_data"), "output_data must not be empty");
  if (len > max_bytes) malformed(field("output_data"), "output_data exceeds " + std::to_string(max_bytes) + " bytes");
  const Digest d = sha256(std::string_view(scratch.data(), len));
  out.output_hash = to_hex(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));

  if (p.timestamp.empty()) malformed(field("timestamp"), "timestamp is required");
  auto ts = p.timestamp.size() <= kMaxTimestamp ? parse_rfc3339(p.timestamp) : std::nullopt;
  if (!ts) malformed(field("timestamp"), "timestamp must be an RFC 3339 date-time");
  out.timestamp = *ts;

  if (p.nonce.empty()) malformed(field("nonce"), "nonce is required");
  if (p.nonce.size() > kMaxNonce) malformed(field("nonce"), "nonce must be at most 128 characters");
  for (unsigned char c : p.nonce)
    if (c < 0x21 || c > 0x7e) malformed(field("nonce"), "nonce must be printable ASCII without spaces");

  if (!p.signature.empty()) {
    auto sig = p.signature.size() == kSignatureHex ? from_hex(p.signature) : std::nullopt;
    if (!sig) malformed(field("signature"), "signature must be 128 hex characters (a 64-byte Ed25519 signature)");
    out.signature = std::move(*sig);
  }
  return out;
}

struct NodeRef {
  std::int64_t id = 0;
  std::string public_key;  // 32 bytes, or empty
  bool active = false;
  Lifecycle lifecycle = Lifecycle::inactive;
};

}  // namespace

namespace detail {

// What validation reads for every proof, kept in memory. A node's uid and id
// never change; its key changes only through register_public_key, which
// updates the cache after its commit. Entries are only added (try_emplace)
// by readers, so a reader that saw the database before a key change cannot
// overwrite the newer key. Like the node caches, this assumes one process
// writes the database.
struct PootCache {
  std::shared_mutex mu;
  std::unordered_map<std::string, std::int64_t> ids;   // node uid -> node id
  std::unordered_map<std::int64_t, std::string> keys;  // node id -> 32-byte key, "" for none
};

}  // namespace detail

Poot::Poot(detail::ClusterCore& core, Nodes& nodes) : core_(core), nodes_(nodes), cache_(std::make_unique<PootCache>()) {}
Poot::~Poot() = default;

namespace {

// The node behind each distinct uid (nullopt: unknown): from the cache, and
// for the rest from one read transaction.
std::unordered_map<std::string, std::optional<NodeRef>> resolve_nodes(ClusterCore& core, PootCache& cache,
                                                                      const std::vector<const std::string*>& uids) {
  std::unordered_map<std::string, std::optional<NodeRef>> out;
  out.reserve(uids.size());
  std::vector<const std::string*> missing;
  {
    std::shared_lock lock(cache.mu);
    for (const auto* uid : uids) {
      auto [it, inserted] = out.try_emplace(*uid);
      if (!inserted) continue;
      auto id = cache.ids.find(*uid);
      auto key = id == cache.ids.end() ? cache.keys.end() : cache.keys.find(id->second);
      if (key == cache.keys.end()) {
        missing.push_back(uid);
        continue;
      }
      NodeRef r;
      r.id = id->second;
      r.public_key = key->second;
      it->second = std::move(r);
    }
  }
  if (!missing.empty()) {
    core.store->read([&](Conn& c) {
      for (const auto* uid : missing) {
        auto& q = c.stmt(
            "SELECT n.id, k.public_key FROM nodes n LEFT JOIN poot_keys k ON k.node_id = n.id WHERE n.uid = ?");
        q.bind(1, *uid);
        if (q.step()) {
          NodeRef r;
          r.id = q.column(0).as_int64();
          if (!q.column(1).is_null()) r.public_key = q.column(1).as_text();
          out[*uid] = std::move(r);
        }
        q.reset();
      }
    });
    std::unique_lock lock(cache.mu);
    for (const auto* uid : missing) {
      const auto& ref = out[*uid];
      if (!ref) continue;
      cache.ids.try_emplace(*uid, ref->id);
      cache.keys.try_emplace(ref->id, ref->public_key);
    }
  }
  // The in-memory card is the authority on lifecycle (the stats path moves
  // starting -> active there first).
  const auto& nodes = core.node_cache();
  for (auto& [uid, ref] : out) {
    if (!ref) continue;
    if (auto lifecycle = nodes.lifecycle(ref->id)) ref->lifecycle = *lifecycle;
    ref->active = ref->lifecycle == Lifecycle::active;
  }
  return out;
}

std::string seconds_text(std::chrono::microseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

// Judges a decoded proof of a known node, except for its nonce (the write
// transaction decides that). Sets failure and reason when invalid.
void judge(const ClusterCore& core, const PootProof& p, const Prepared& prep, const NodeRef& node, Timestamp now,
           PootValidation& v) {
  auto fail = [&](PootFailure f, std::string reason) {
    v.failure = f;
    v.reason = std::move(reason);
  };
  const auto fresh = std::chrono::duration_cast<std::chrono::microseconds>(core.opts.poot.freshness);
  if (!node.active) {
    fail(PootFailure::node_not_active,
         std::string("node is not active (status ") + lifecycle_name(node.lifecycle) + ")");
  } else if (prep.timestamp < now - fresh) {
    fail(PootFailure::stale_timestamp, "timestamp is " + seconds_text(std::chrono::duration_cast<std::chrono::microseconds>(now - prep.timestamp)) +
                                           " behind the server clock; at most " + seconds_text(fresh) + " allowed");
  } else if (prep.timestamp > now + fresh) {
    fail(PootFailure::future_timestamp, "timestamp is " + seconds_text(std::chrono::duration_cast<std::chrono::microseconds>(prep.timestamp - now)) +
                                            " ahead of the server clock; at most " + seconds_text(fresh) + " allowed");
  } else if (!node.public_key.empty()) {
    if (prep.signature.empty()) {
      fail(PootFailure::signature_missing, "the node registered a public key: the proof must be signed");
    } else {
      const std::string msg = Poot::signed_message(p.node_uid, prep.output_hash, p.timestamp, p.nonce);
      if (crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(prep.signature.data()),
                                      reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                                      reinterpret_cast<const unsigned char*>(node.public_key.data())) != 0)
        fail(PootFailure::signature_invalid, "signature does not verify with the node's public key");
    }
  }
}

const char* const kInsertValidation =
    "INSERT INTO poot_validations(node_id, valid, failure, reason, output_hash, nonce, proof_timestamp,"
    " validated_at, validated_at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";

// Stores `v` for node `id`; a valid proof whose nonce is already spent is
// stored (and returned) as nonce_replayed instead.
void store_validation(Conn& c, std::int64_t id, const PootProof& p, PootValidation& v, const std::string& now_text,
                      std::int64_t now_us) {
  for (;;) {
    auto& ins = c.stmt(kInsertValidation);
    ins.bind(1, id);
    ins.bind(2, v.valid ? 1 : 0);
    ins.bind(3, poot_failure_name(v.failure));
    ins.bind(4, v.reason);
    ins.bind(5, v.output_hash);
    ins.bind(6, p.nonce);
    ins.bind(7, p.timestamp);
    ins.bind(8, now_text);
    ins.bind(9, static_cast<std::int64_t>(now_us));
    ins.run();
    if (c.changes() == 1) return;
    // Only the valid-nonce index can conflict: the nonce is spent.
    v.valid = false;
    v.status = PootStatus::invalid;
    v.failure = PootFailure::nonce_replayed;
    v.reason = "nonce was already used by a valid proof of this node";
  }
}

PootBatchResult run(ClusterCore& core, PootCache& cache, const std::vector<PootProof>& proofs, bool batch) {
  const Timestamp now = core.clock->now();
  const std::string now_text = format_rfc3339(now, true);
  const std::int64_t now_us = to_us(now);

  PootBatchResult out;
  out.total = static_cast<std::int64_t>(proofs.size());
  out.results.resize(proofs.size());
  std::vector<std::optional<Prepared>> prepared(proofs.size());
  std::vector<const std::string*> uids;
  uids.reserve(proofs.size());
  std::string scratch;

  // 1. Decode every item (CPU only).
  for (std::size_t i = 0; i < proofs.size(); ++i) {
    const auto& p = proofs[i];
    auto& v = out.results[i];
    v.node_uid = p.node_uid;
    v.nonce = p.nonce;
    v.validated_at = now;
    try {
      check_node_uid(p.node_uid);
      prepared[i] = prepare(core, p, batch ? std::optional<std::size_t>(i) : std::nullopt, scratch);
      v.output_hash = prepared[i]->output_hash;
      v.proof_timestamp = prepared[i]->timestamp;
      uids.push_back(&p.node_uid);
    } catch (const Error& e) {
      if (!batch) throw;
      v.error = e;
    }
  }

  // 2. Resolve the nodes (cache, else one read transaction), then judge (CPU: signatures).
  const auto nodes = resolve_nodes(core, cache, uids);
  std::vector<const NodeRef*> refs(proofs.size(), nullptr);
  for (std::size_t i = 0; i < proofs.size(); ++i) {
    if (!prepared[i]) continue;
    auto& v = out.results[i];
    const auto& ref = nodes.at(proofs[i].node_uid);
    if (!ref) {
      Error e(Errc::not_found, Reason::node_not_found, "Node not found");
      if (!batch) throw e;
      v.error = std::move(e);
      v.output_hash.clear();  // an error item reports no outcome of validation
      v.proof_timestamp.reset();
      continue;
    }
    refs[i] = &*ref;
    judge(core, proofs[i], *prepared[i], *ref, now, v);
    v.valid = v.failure == PootFailure::none;
    v.status = v.valid ? PootStatus::valid : PootStatus::invalid;
  }

  // 3. Store every judged item in one write transaction; nonces are decided here.
  // In node order (stable, so a node's items keep theirs): consecutive
  // inserts then land on the same index pages.
  std::vector<std::uint32_t> order;
  order.reserve(proofs.size());
  for (std::size_t i = 0; i < proofs.size(); ++i)
    if (refs[i]) order.push_back(static_cast<std::uint32_t>(i));
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return refs[a]->id < refs[b]->id; });
  core.store->write([&](Conn& c) {
    for (const auto i : order) store_validation(c, refs[i]->id, proofs[i], out.results[i], now_text, now_us);
  });
  for (const auto& v : out.results) {
    if (v.error) ++out.errors;
    else if (v.valid) ++out.valid;
    else ++out.invalid;
  }
  return out;
}

// ---- scoring ----

struct ScoredNode {
  std::int64_t id = 0;
  std::string uid;
  Timestamp active_since;
};

// The observation span of docs/poot.md for one node at one instant.
struct Span {
  std::int64_t now_us = 0;
  std::int64_t from_us = 0;  // exclusive: the window, clipped to the node's age
  std::int64_t cadence_us = 0, beat_us = 0;
  std::int64_t proof_expected = 0, beat_expected = 0;
};

Span span_of(const ClusterCore& core, const ScoredNode& n, Timestamp now) {
  using std::chrono::microseconds;
  const auto window = std::chrono::duration_cast<microseconds>(core.opts.poot.window);
  const auto cadence = std::chrono::duration_cast<microseconds>(core.opts.poot.expected_interval);
  const auto beat = std::chrono::duration_cast<microseconds>(core.opts.nodes.stale_after);
  // The window, clipped to the time the node has existed (a new node is not
  // blamed for slots before it was there; its confidence says how little we know).
  const auto age = std::chrono::duration_cast<microseconds>(now - n.active_since);
  const auto span = std::max(microseconds(1), std::min(window, age));
  Span s;
  s.now_us = to_us(now);
  s.from_us = s.now_us - span.count();
  s.cadence_us = cadence.count();
  s.beat_us = beat.count();
  s.proof_expected = poot_slots(span, cadence);
  s.beat_expected = poot_slots(span, beat);
  return s;
}

// Slot index of a proof validated at `at_us` (0 = the newest slot), or -1
// when it falls outside the whole slots counted.
std::int64_t proof_slot(const Span& sp, std::int64_t at_us) {
  if (at_us > sp.now_us || at_us <= sp.from_us) return -1;
  const std::int64_t k = (sp.now_us - at_us) / sp.cadence_us;
  return k < sp.proof_expected ? k : -1;
}

// Heartbeat slots with at least one stats report (the node_stats time index).
std::int64_t heartbeat_slots(Conn& c, std::int64_t node_id, const Span& sp) {
  auto& h = c.stmt(
      "SELECT COUNT(DISTINCT (?1 - at_us) / ?2) FROM node_stats"
      " WHERE node_id = ?3 AND at_us > ?4 AND at_us <= ?1");
  h.bind(1, sp.now_us);
  h.bind(2, sp.beat_us);
  h.bind(3, node_id);
  h.bind(4, sp.now_us - sp.beat_expected * sp.beat_us);
  h.step();
  const auto n = h.column(0).as_int64();
  h.reset();
  return n;
}

void apply_formula(PootScore& s) {
  const auto f = poot_formula(s.proof_slots, s.proof_slots_expected, s.heartbeat_slots, s.heartbeat_slots_expected);
  s.score = f.score;
  s.confidence = f.confidence;
}

// The score of `n` at `now` from the stored history (read transaction `c`):
// one pass over the window's proofs (the time index), one heartbeat count.
PootScore compute_score(const ClusterCore& core, Conn& c, const ScoredNode& n, Timestamp now) {
  const Span sp = span_of(core, n, now);
  PootScore s;
  s.node_uid = n.uid;
  s.calculated_at = now;
  s.proof_slots_expected = sp.proof_expected;
  s.heartbeat_slots_expected = sp.beat_expected;

  std::vector<bool> seen(static_cast<std::size_t>(sp.proof_expected), false);
  std::optional<std::pair<std::int64_t, std::int64_t>> newest, newest_valid;  // (validated_at_us, id)
  auto& q = c.stmt(
      "SELECT validated_at_us, id, valid FROM poot_validations"
      " WHERE validated_at_us > ?1 AND validated_at_us <= ?2 AND node_id = ?3");
  q.bind(1, sp.from_us);
  q.bind(2, sp.now_us);
  q.bind(3, n.id);
  while (q.step()) {
    const std::pair<std::int64_t, std::int64_t> key{q.column(0).as_int64(), q.column(1).as_int64()};
    const bool valid = q.column(2).as_int() != 0;
    if (!newest || key > *newest) {
      newest = key;
      s.status = valid ? PootStatus::valid : PootStatus::invalid;
    }
    if (!valid) continue;
    if (!newest_valid || key > *newest_valid) newest_valid = key;
    const auto k = proof_slot(sp, key.first);
    if (k >= 0 && !seen[static_cast<std::size_t>(k)]) {
      seen[static_cast<std::size_t>(k)] = true;
      ++s.proof_slots;
    }
  }
  q.reset();
  if (newest_valid) {
    auto& h = c.stmt("SELECT output_hash FROM poot_validations WHERE id = ?");
    h.bind(1, newest_valid->second);
    if (h.step()) s.output_hash = h.column(0).as_text();
    h.reset();
  }
  s.heartbeat_slots = heartbeat_slots(c, n.id, sp);
  apply_formula(s);
  return s;
}

void store_scores(ClusterCore& core, const std::vector<std::pair<std::int64_t, PootScore>>& scores) {
  if (core.opts.read_only || scores.empty()) return;
  core.store->write([&](Conn& c) {
    for (const auto& [id, s] : scores) {
      auto& up = c.stmt(
          "INSERT INTO poot_scores(node_id, score, confidence, calculated_at) VALUES (?, ?, ?, ?)"
          " ON CONFLICT(node_id) DO UPDATE SET score = excluded.score, confidence = excluded.confidence,"
          " calculated_at = excluded.calculated_at");
      up.bind(1, id);
      up.bind(2, s.score);
      up.bind(3, s.confidence);
      up.bind(4, format_rfc3339(s.calculated_at, true));
      up.run();
    }
  });
}

ScoredNode read_scored(detail::Statement& q) {
  ScoredNode n;
  n.id = q.column(0).as_int64();
  n.uid = q.column(1).as_text();
  n.active_since = parse_stored(q.column(2).as_text());
  return n;
}

std::int64_t id_of(Conn& c, std::string_view uid) {
  auto& q = c.stmt("SELECT id FROM nodes WHERE uid = ?");
  q.bind(1, std::string(uid));
  if (!q.step()) node_not_found();
  const auto id = q.column(0).as_int64();
  q.reset();
  return id;
}

PootValidation read_validation(detail::Statement& q, const std::string& uid) {
  PootValidation v;
  v.node_uid = uid;
  v.valid = q.column(0).as_int() != 0;
  v.status = v.valid ? PootStatus::valid : PootStatus::invalid;
  const std::string failure = q.column(1).as_text();
  for (auto f : {PootFailure::stale_timestamp, PootFailure::future_timestamp, PootFailure::nonce_replayed,
                 PootFailure::node_not_active, PootFailure::signature_missing, PootFailure::signature_invalid})
    if (failure == poot_failure_name(f)) v.failure = f;
  v.reason = q.column(2).as_text();
  v.output_hash = q.column(3).as_text();
  v.nonce = q.column(4).as_text();
  v.proof_timestamp = parse_rfc3339(q.column(5).as_text());
  v.validated_at = parse_stored(q.column(6).as_text());
  return v;
}

}  // namespace

std::string Poot::signed_message(std::string_view node_uid, std::string_view output_hash_hex,
                                 std::string_view timestamp, std::string_view nonce) {
  std::string m;
  m.reserve(14 + node_uid.size() + output_hash_hex.size() + timestamp.size() + nonce.size() + 3);
  m.append("lucid-poot-v1\n").append(node_uid).append("\n").append(output_hash_hex).append("\n");
  m.append(timestamp).append("\n").append(nonce);
  return m;
}

PootValidation Poot::validate(const PootProof& proof) {
  ensure_sodium();
  auto r = run(core_, *cache_, {proof}, false);
  return std::move(r.results.front());
}

PootBatchResult Poot::validate_batch(const std::vector<PootProof>& proofs) {
  if (proofs.size() > kMaxBatch)
    throw Error(Errc::invalid_argument, "at most 1000 validations per batch", "validations");
  ensure_sodium();
  return run(core_, *cache_, proofs, true);
}

PootScore Poot::score(std::string_view node_uid) {
  check_node_uid(node_uid);
  nodes_.flush_stats();  // heartbeats still buffered count too
  const auto now = core_.clock->now();
  std::int64_t id = 0;
  auto s = core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT id, uid, COALESCE(approved_at, created_at) FROM nodes WHERE uid = ?");
    q.bind(1, std::string(node_uid));
    if (!q.step()) node_not_found();
    const ScoredNode n = read_scored(q);
    q.reset();
    id = n.id;
    return compute_score(core_, c, n, now);
  });
  store_scores(core_, {{id, s}});
  return s;
}

void Poot::refresh_scores() {
  nodes_.flush_stats();
  const auto now = core_.clock->now();
  const std::int64_t now_us = to_us(now);
  const std::int64_t since_us = to_us(now - core_.opts.poot.window);
  const std::int64_t cadence_us =
      std::chrono::duration_cast<std::chrono::microseconds>(core_.opts.poot.expected_interval).count();
  auto scores = core_.store->read([&](Conn& c) {
    // One pass over the window: (node, slot from now) of every valid proof.
    std::vector<std::pair<std::int64_t, std::int64_t>> slots;
    auto& w = c.stmt(
        "SELECT DISTINCT node_id, (?1 - validated_at_us) / ?2 FROM poot_validations"
        " WHERE validated_at_us > ?3 AND validated_at_us <= ?1 AND valid = 1");
    w.bind(1, now_us);
    w.bind(2, cadence_us);
    w.bind(3, since_us);
    while (w.step()) slots.emplace_back(w.column(0).as_int64(), w.column(1).as_int64());
    w.reset();
    std::sort(slots.begin(), slots.end());
    // The nodes to score: those with a stored score or a proof in the window.
    std::vector<ScoredNode> nodes;
    auto& q = c.stmt("SELECT id, uid, COALESCE(approved_at, created_at), id IN (SELECT node_id FROM poot_scores) FROM nodes ORDER BY id");
    while (q.step()) {
      const auto id = q.column(0).as_int64();
      const bool has_proofs = std::binary_search(slots.begin(), slots.end(), std::make_pair(id, std::int64_t{0}),
                                                 [](const auto& a, const auto& b) { return a.first < b.first; });
      if (q.column(3).as_int() != 0 || has_proofs) nodes.push_back(read_scored(q));
    }
    q.reset();
    std::vector<std::pair<std::int64_t, PootScore>> out;
    out.reserve(nodes.size());
    for (const auto& n : nodes) {
      const Span sp = span_of(core_, n, now);
      PootScore s;
      s.node_uid = n.uid;
      s.calculated_at = now;
      s.proof_slots_expected = sp.proof_expected;
      s.heartbeat_slots_expected = sp.beat_expected;
      auto it = std::lower_bound(slots.begin(), slots.end(), std::make_pair(n.id, std::int64_t{0}));
      for (; it != slots.end() && it->first == n.id; ++it)
        if (it->second < sp.proof_expected) ++s.proof_slots;  // whole slots lie within the node's age
      s.heartbeat_slots = heartbeat_slots(c, n.id, sp);
      apply_formula(s);
      out.emplace_back(n.id, std::move(s));
    }
    return out;
  });
  store_scores(core_, scores);
}

std::vector<PootValidation> Poot::history(std::string_view node_uid, std::int64_t limit) {
  check_node_uid(node_uid);
  if (limit < 1 || limit > 1000) invalid("limit", "limit must be between 1 and 1000");
  const std::string uid(node_uid);
  const auto now = core_.clock->now();
  return core_.store->read([&](Conn& c) {
    const auto id = id_of(c, uid);
    // The window's proofs (the time index), newest first by (validated_at_us, id).
    std::vector<std::pair<std::pair<std::int64_t, std::int64_t>, PootValidation>> all;
    auto& q = c.stmt(
        "SELECT valid, failure, reason, output_hash, nonce, proof_timestamp, validated_at, validated_at_us, id"
        " FROM poot_validations WHERE validated_at_us > ?1 AND validated_at_us <= ?2 AND node_id = ?3");
    q.bind(1, to_us(now - core_.opts.poot.window));
    q.bind(2, to_us(now));
    q.bind(3, id);
    while (q.step())
      all.emplace_back(std::make_pair(q.column(7).as_int64(), q.column(8).as_int64()), read_validation(q, uid));
    q.reset();
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<PootValidation> out;
    for (std::size_t i = 0; i < all.size() && static_cast<std::int64_t>(i) < limit; ++i)
      out.push_back(std::move(all[i].second));
    return out;
  });
}

PootKey Poot::register_public_key(std::int64_t node_id, std::string_view public_key_hex) {
  ensure_sodium();
  auto key = public_key_hex.size() == kPublicKeyHex ? from_hex(public_key_hex) : std::nullopt;
  if (!key) invalid("public_key", "public_key must be 64 hex characters (a 32-byte Ed25519 public key)");
  if (crypto_core_ed25519_is_valid_point(reinterpret_cast<const unsigned char*>(key->data())) != 1)
    invalid("public_key", "public_key is not a valid Ed25519 public key");
  PootKey out;
  out.public_key = to_hex(*key);
  out.registered_at = core_.clock->now();
  core_.store->write([&](Conn& c) {
    auto& q = c.stmt("SELECT 1 FROM nodes WHERE id = ?");
    q.bind(1, node_id);
    if (!q.step()) node_not_found();
    q.reset();
    auto& up = c.stmt(
        "INSERT INTO poot_keys(node_id, public_key, registered_at) VALUES (?, ?, ?)"
        " ON CONFLICT(node_id) DO UPDATE SET public_key = excluded.public_key, registered_at = excluded.registered_at");
    up.bind(1, node_id);
    up.bind_blob(2, *key);
    up.bind(3, format_rfc3339(out.registered_at, true));
    up.run();
  });
  // A rotated key: the old key's login tokens are refused from now on.
  core_.principals_changed();
  std::unique_lock lock(cache_->mu);
  cache_->keys[node_id] = std::move(*key);
  return out;
}

PootKey Poot::register_public_key(std::string_view node_uid, std::string_view public_key_hex) {
  check_node_uid(node_uid);
  const auto id = core_.store->read([&](Conn& c) { return id_of(c, node_uid); });
  return register_public_key(id, public_key_hex);
}

std::optional<PootKey> Poot::public_key(std::string_view node_uid) {
  check_node_uid(node_uid);
  return core_.store->read([&](Conn& c) -> std::optional<PootKey> {
    const auto id = id_of(c, node_uid);
    auto& q = c.stmt("SELECT public_key, registered_at FROM poot_keys WHERE node_id = ?");
    q.bind(1, id);
    if (!q.step()) return std::nullopt;
    PootKey k;
    k.public_key = to_hex(q.column(0).as_text());
    k.registered_at = parse_stored(q.column(1).as_text());
    return k;
  });
}

}  // namespace lucid
