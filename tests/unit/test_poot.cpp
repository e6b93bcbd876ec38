#include <doctest/doctest.h>
#include <sodium.h>

#include <atomic>
#include <functional>
#include <random>
#include <thread>

#include "lucidnode/lucidnode.hpp"
#include "util/base64.hpp"
#include "poot/score_formula.hpp"
#include "support.hpp"

using namespace lucid;
using testsupport::code_of;
using testsupport::field_of;

namespace {

std::string b64(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.pop_back();
  return out;
}

std::string hex(std::string_view bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  out.pop_back();
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char d[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return hex(std::string_view(reinterpret_cast<const char*>(d), sizeof d));
}

struct KeyPair {
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  KeyPair() {
    REQUIRE(sodium_init() >= 0);
    crypto_sign_keypair(pk, sk);
  }
  std::string public_hex() const { return hex(std::string_view(reinterpret_cast<const char*>(pk), sizeof pk)); }
  // Signs the proof's canonical message (docs/poot.md) and sets its signature.
  void sign(PootProof& p) const {
    std::string raw(p.output_data.size(), '\0');
    std::size_t len = 0;
    REQUIRE(sodium_base642bin(reinterpret_cast<unsigned char*>(raw.data()), raw.size(), p.output_data.data(),
                              p.output_data.size(), nullptr, &len, nullptr, sodium_base64_VARIANT_ORIGINAL) == 0);
    raw.resize(len);
    const std::string msg = Poot::signed_message(p.node_uid, sha256_hex(raw), p.timestamp, p.nonce);
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), sk);
    p.signature = hex(std::string_view(reinterpret_cast<const char*>(sig), sizeof sig));
  }
};

NodeCreate named(const std::string& name) {
  NodeCreate c;
  c.name = name;
  return c;
}

struct Fixture {
  testsupport::TempDir dir;
  std::shared_ptr<OffsetClock> clock = std::make_shared<OffsetClock>();
  std::unique_ptr<Cluster> cluster;
  int nonces = 0;
  explicit Fixture(std::function<void(Options&)> tweak = {}) { open(tweak); }
  void open(std::function<void(Options&)> tweak = {}) {
    cluster.reset();
    Options o;
    o.database_path = dir.file("c.db");
    o.clock = clock;
    if (tweak) tweak(o);
    cluster = std::make_unique<Cluster>(o);
  }
  Nodes& nodes() { return cluster->nodes(); }
  Poot& poot() { return cluster->poot(); }
  void advance(std::chrono::seconds s) { clock->advance(s); }
  void heartbeat(const std::string& uid) {
    StatsSample s;
    s.cpu_usage = 10;
    s.disk_usage = 20;
    nodes().report_stats(nodes().resolve(uid), s);
  }
  // Created, started, and made active by its first stats report.
  std::string active_node(const std::string& name) {
    auto n = nodes().create(named(name));
    nodes().start(n.uid);
    heartbeat(n.uid);
    return n.uid;
  }
  // A well-formed proof stamped now, with a fresh nonce.
  PootProof proof(const std::string& uid, std::string data = "output bytes") {
    PootProof p;
    p.node_uid = uid;
    p.output_data = b64(data);
    p.timestamp = format_rfc3339(clock->now(), true);
    p.nonce = "n-" + std::to_string(++nonces);
    return p;
  }
};

Reason reason_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.reason();
  }
  return Reason::none;
}

}  // namespace

TEST_CASE("poot: a valid proof is stored with the SHA-256 of its decoded output") {
  Fixture f;
  const auto uid = f.active_node("w1");
  auto p = f.proof(uid, "hello world");
  auto v = f.poot().validate(p);
  CHECK(v.valid);
  CHECK(v.status == PootStatus::valid);
  CHECK(v.failure == PootFailure::none);
  CHECK(v.reason.empty());
  CHECK(v.node_uid == uid);
  CHECK(v.nonce == p.nonce);
  CHECK(v.output_hash == "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
  CHECK(v.proof_timestamp == parse_rfc3339(p.timestamp));
  CHECK(std::chrono::abs(v.validated_at - f.clock->now()) < std::chrono::seconds(5));
  CHECK_FALSE(v.error);
  auto h = f.poot().history(uid, 10);
  REQUIRE(h.size() == 1);
  CHECK(h[0].valid);
  CHECK(h[0].output_hash == v.output_hash);
  CHECK(h[0].nonce == p.nonce);
  CHECK(h[0].proof_timestamp == v.proof_timestamp);
}

TEST_CASE("poot: malformed proofs are invalid_argument naming the field, reason poot_failed, nothing is stored") {
  Fixture f([](Options& o) { o.poot.max_output_bytes = 16; });
  const auto uid = f.active_node("w1");
  struct Case {
    const char* name;
    std::function<void(PootProof&)> spoil;
    const char* field;
  };
  const Case cases[] = {
      {"not base64", [](PootProof& p) { p.output_data = "not base64!"; }, "output_data"},
      {"unpadded", [](PootProof& p) { p.output_data = "aGVsbG8"; }, "output_data"},
      {"url-safe alphabet", [](PootProof& p) { p.output_data = "-_-_"; }, "output_data"},
      {"inner whitespace", [](PootProof& p) { p.output_data = "aGVs bG8="; }, "output_data"},
      {"non-canonical bits", [](PootProof& p) { p.output_data = "YR=="; }, "output_data"},
      {"empty output", [](PootProof& p) { p.output_data = ""; }, "output_data"},
      {"17 bytes > 16", [](PootProof& p) { p.output_data = b64(std::string(17, 'x')); }, "output_data"},
      {"way too long", [](PootProof& p) { p.output_data = std::string(4000, 'A'); }, "output_data"},
      {"no timestamp", [](PootProof& p) { p.timestamp = ""; }, "timestamp"},
      {"bad timestamp", [](PootProof& p) { p.timestamp = "yesterday"; }, "timestamp"},
      {"zone-less timestamp", [](PootProof& p) { p.timestamp = "2025-01-01T00:00:00"; }, "timestamp"},
      {"no nonce", [](PootProof& p) { p.nonce = ""; }, "nonce"},
      {"nonce with space", [](PootProof& p) { p.nonce = "a b"; }, "nonce"},
      {"nonce with newline", [](PootProof& p) { p.nonce = "a\nb"; }, "nonce"},
      {"nonce too long", [](PootProof& p) { p.nonce = std::string(129, 'n'); }, "nonce"},
      {"signature not hex", [](PootProof& p) { p.signature = std::string(128, 'z'); }, "signature"},
      {"signature too short", [](PootProof& p) { p.signature = std::string(126, 'a'); }, "signature"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    auto p = f.proof(uid);
    c.spoil(p);
    CHECK(code_of([&] { f.poot().validate(p); }) == Errc::invalid_argument);
    CHECK(field_of([&] { f.poot().validate(p); }) == c.field);
    CHECK(reason_of([&] { f.poot().validate(p); }) == Reason::poot_failed);
  }
  CHECK(f.poot().history(uid, 100).empty());
  // 16 bytes is the bound, not beyond it; a 128-character nonce is fine.
  auto p = f.proof(uid, std::string(16, 'x'));
  p.nonce = std::string(128, '~');
  CHECK(f.poot().validate(p).valid);
}

TEST_CASE("poot: unknown or malformed node ids are node_not_found") {
  Fixture f;
  for (const char* uid : {"node_0000000000000000", "node_", "nodex", "pool_abc", "node_a b"}) {
    CAPTURE(uid);
    auto p = f.proof(uid);
    CHECK(code_of([&] { f.poot().validate(p); }) == Errc::not_found);
    CHECK(reason_of([&] { f.poot().validate(p); }) == Reason::node_not_found);
  }
  CHECK(reason_of([&] { f.poot().score("node_0000000000000000"); }) == Reason::node_not_found);
  CHECK(reason_of([&] { f.poot().history("node_0000000000000000", 1); }) == Reason::node_not_found);
  CHECK(reason_of([&] { f.poot().register_public_key(std::string_view("node_00"), std::string(64, 'a')); }) ==
        Reason::node_not_found);
  CHECK(reason_of([&] { f.poot().register_public_key(std::int64_t{999}, KeyPair().public_hex()); }) ==
        Reason::node_not_found);
}

TEST_CASE("poot: the timestamp must be within the freshness window of the server clock") {
  Fixture f([](Options& o) { o.poot.freshness = std::chrono::seconds(300); });
  const auto uid = f.active_node("w1");
  struct Case {
    int offset_s;
    PootFailure expected;
  };
  for (auto c : {Case{0, PootFailure::none}, Case{-299, PootFailure::none}, Case{299, PootFailure::none},
                 Case{-301, PootFailure::stale_timestamp}, Case{301, PootFailure::future_timestamp},
                 Case{-86400, PootFailure::stale_timestamp}, Case{86400, PootFailure::future_timestamp}}) {
    CAPTURE(c.offset_s);
    auto p = f.proof(uid);
    p.timestamp = format_rfc3339(f.clock->now() + std::chrono::seconds(c.offset_s), true);
    auto v = f.poot().validate(p);
    CHECK(v.failure == c.expected);
    CHECK(v.valid == (c.expected == PootFailure::none));
    if (!v.valid) {
      CHECK(v.status == PootStatus::invalid);
      CHECK_FALSE(v.reason.empty());
    }
  }
  // A timestamp with an offset is the same instant.
  auto p = f.proof(uid);
  const auto t = f.clock->now();
  const auto local = format_rfc3339(t + std::chrono::hours(2));  // rendered as if +02:00
  p.timestamp = local.substr(0, 19) + "+02:00";
  CHECK(f.poot().validate(p).valid);
  // Invalid proofs are stored too.
  CHECK(f.poot().history(uid, 100).size() == 8);
}

TEST_CASE("poot: a replayed nonce is stored invalid and never scored twice") {
  Fixture f;
  const auto uid = f.active_node("w1");
  auto p = f.proof(uid);
  CHECK(f.poot().validate(p).valid);
  const auto before = f.poot().score(uid);
  auto again = f.poot().validate(p);
  CHECK_FALSE(again.valid);
  CHECK(again.failure == PootFailure::nonce_replayed);
  CHECK(again.output_hash == f.poot().history(uid, 1)[0].output_hash);
  auto h = f.poot().history(uid, 10);
  REQUIRE(h.size() == 2);
  CHECK(h[0].failure == PootFailure::nonce_replayed);  // newest first
  CHECK(h[1].valid);
  const auto after = f.poot().score(uid);
  CHECK(after.score == before.score);
  CHECK(after.proof_slots == before.proof_slots);
  CHECK(after.status == PootStatus::invalid);  // the latest proof was the replay
  CHECK(after.output_hash == before.output_hash);
  // Another node may use the same nonce.
  const auto uid2 = f.active_node("w2");
  p.node_uid = uid2;
  CHECK(f.poot().validate(p).valid);
  // The nonce stays spent after a restart.
  f.open();
  p.node_uid = uid;
  p.timestamp = format_rfc3339(f.clock->now(), true);
  CHECK(f.poot().validate(p).failure == PootFailure::nonce_replayed);
}

TEST_CASE("poot: only a valid proof spends its nonce") {
  Fixture f;
  const auto uid = f.active_node("w1");
  auto p = f.proof(uid);
  const auto good_ts = p.timestamp;
  p.timestamp = format_rfc3339(f.clock->now() - std::chrono::hours(1), true);
  CHECK(f.poot().validate(p).failure == PootFailure::stale_timestamp);
  p.timestamp = good_ts;
  CHECK(f.poot().validate(p).valid);
  CHECK(f.poot().validate(p).failure == PootFailure::nonce_replayed);
}

TEST_CASE("poot: the node must be active") {
  Fixture f;
  auto n = f.nodes().create(named("idle"));
  auto v = f.poot().validate(f.proof(n.uid));
  CHECK(v.failure == PootFailure::node_not_active);
  CHECK(v.reason.find("inactive") != std::string::npos);
  f.nodes().start(n.uid);  // starting is not active yet
  CHECK(f.poot().validate(f.proof(n.uid)).failure == PootFailure::node_not_active);
  f.heartbeat(n.uid);
  CHECK(f.poot().validate(f.proof(n.uid)).valid);
  f.nodes().stop(n.uid);
  CHECK(f.poot().validate(f.proof(n.uid)).failure == PootFailure::node_not_active);
  // A joined node that is not approved yet.
  auto j = f.nodes().request_join({"pending-host", "", "", ""});
  const auto pending_uid = f.nodes().get(j.request_id, 0).uid;
  CHECK(f.poot().validate(f.proof(pending_uid)).failure == PootFailure::node_not_active);
  CHECK(f.poot().history(n.uid, 10).size() == 4);
}

TEST_CASE("poot: a node with a public key must sign, bad signatures are invalid") {
  Fixture f;
  const auto uid = f.active_node("w1");
  KeyPair key, other;
  // Unsigned proofs are fine before a key is registered; a signature is then ignored.
  CHECK(f.poot().validate(f.proof(uid)).valid);
  auto stray = f.proof(uid);
  other.sign(stray);
  CHECK(f.poot().validate(stray).valid);

  CHECK_FALSE(f.poot().public_key(uid));
  auto k = f.poot().register_public_key(std::string_view(uid), key.public_hex());
  CHECK(k.public_key == key.public_hex());
  CHECK(f.poot().public_key(uid)->public_key == key.public_hex());

  CHECK(f.poot().validate(f.proof(uid)).failure == PootFailure::signature_missing);
  auto signed_ok = f.proof(uid);
  key.sign(signed_ok);
  CHECK(f.poot().validate(signed_ok).valid);

  auto by_other = f.proof(uid);
  other.sign(by_other);
  CHECK(f.poot().validate(by_other).failure == PootFailure::signature_invalid);

  // Every signed field counts: change any one after signing and it fails.
  const std::function<void(PootProof&)> tamper[] = {
      [](PootProof& p) { p.nonce += "x"; },
      [](PootProof& p) { p.output_data = b64("other output"); },
      [&](PootProof& p) { p.timestamp = format_rfc3339(parse_rfc3339(p.timestamp).value() + std::chrono::seconds(1), true); },
      [](PootProof& p) { p.signature[0] = p.signature[0] == 'a' ? 'b' : 'a'; },
  };
  for (const auto& t : tamper) {
    auto p = f.proof(uid);
    key.sign(p);
    t(p);
    CHECK(f.poot().validate(p).failure == PootFailure::signature_invalid);
  }
  // Upper-case hex is accepted.
  auto upper = f.proof(uid);
  key.sign(upper);
  for (auto& c : upper.signature) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(f.poot().validate(upper).valid);

  // A new key replaces the old one.
  f.poot().register_public_key(f.nodes().resolve(uid), other.public_hex());
  auto old_key = f.proof(uid);
  key.sign(old_key);
  CHECK(f.poot().validate(old_key).failure == PootFailure::signature_invalid);
  auto new_key = f.proof(uid);
  other.sign(new_key);
  CHECK(f.poot().validate(new_key).valid);
}

TEST_CASE("poot: public keys are validated") {
  Fixture f;
  const auto uid = f.active_node("w1");
  const std::string identity = "01" + std::string(62, '0');  // small-order point
  for (const std::string& bad : {std::string(), std::string(63, 'a'), std::string(66, 'a'), std::string(64, 'g'),
                                 identity, std::string(64, '0')}) {
    CAPTURE(bad);
    CHECK(code_of([&] { f.poot().register_public_key(std::string_view(uid), bad); }) == Errc::invalid_argument);
    CHECK(field_of([&] { f.poot().register_public_key(std::string_view(uid), bad); }) == "public_key");
  }
  CHECK_FALSE(f.poot().public_key(uid));
}

TEST_CASE("poot: a batch reports valid, invalid and error items without failing") {
  Fixture f;
  const auto a = f.active_node("a");
  const auto b = f.active_node("b");
  const auto idle = f.nodes().create(named("idle")).uid;
  std::vector<PootProof> batch;
  batch.push_back(f.proof(a));                                 // 0 valid
  batch.push_back(f.proof(b));                                 // 1 valid
  batch.push_back(f.proof("node_ffffffffffffffff"));           // 2 error: unknown node
  batch.push_back(f.proof(a));                                 // 3 error: bad base64
  batch.back().output_data = "%%%";
  batch.push_back(f.proof(b));                                 // 4 invalid: stale
  batch.back().timestamp = format_rfc3339(f.clock->now() - std::chrono::hours(2));
  batch.push_back(batch[0]);                                   // 5 invalid: nonce replayed within the batch
  batch.push_back(f.proof(idle));                              // 6 invalid: node not active
  batch.push_back(f.proof(a));                                 // 7 error: bad nonce
  batch.back().nonce = "with space";
  auto r = f.poot().validate_batch(batch);
  CHECK(r.total == 8);
  CHECK(r.valid == 2);
  CHECK(r.invalid == 3);
  CHECK(r.errors == 3);
  REQUIRE(r.results.size() == 8);
  CHECK(r.results[0].valid);
  CHECK(r.results[1].valid);
  REQUIRE(r.results[2].error);
  CHECK(r.results[2].error->reason() == Reason::node_not_found);
  CHECK(r.results[2].node_uid == "node_ffffffffffffffff");
  CHECK(r.results[2].output_hash.empty());
  REQUIRE(r.results[3].error);
  CHECK(r.results[3].error->field() == "validations.3.output_data");
  CHECK(r.results[3].error->reason() == Reason::poot_failed);
  CHECK(r.results[4].failure == PootFailure::stale_timestamp);
  CHECK(r.results[5].failure == PootFailure::nonce_replayed);
  CHECK(r.results[6].failure == PootFailure::node_not_active);
  REQUIRE(r.results[7].error);
  CHECK(r.results[7].error->field() == "validations.7.nonce");
  for (std::size_t i : {0, 1, 4, 5, 6}) CHECK_FALSE(r.results[i].error);
  // Errors are not stored; everything judged is.
  CHECK(f.poot().history(a, 100).size() == 2);
  CHECK(f.poot().history(b, 100).size() == 2);
  CHECK(f.poot().history(idle, 100).size() == 1);
}

TEST_CASE("poot: batches hold at most 1000 items, an empty batch is fine") {
  Fixture f;
  const auto uid = f.active_node("w1");
  std::vector<PootProof> batch;
  for (int i = 0; i < 1001; ++i) batch.push_back(f.proof(uid));
  CHECK(code_of([&] { f.poot().validate_batch(batch); }) == Errc::invalid_argument);
  CHECK(field_of([&] { f.poot().validate_batch(batch); }) == "validations");
  CHECK(f.poot().history(uid, 10).empty());
  batch.pop_back();
  auto r = f.poot().validate_batch(batch);
  CHECK(r.total == 1000);
  CHECK(r.valid == 1000);
  auto empty = f.poot().validate_batch({});
  CHECK(empty.total == 0);
  CHECK(empty.results.empty());
}

TEST_CASE("poot: the score formula (table)") {
  struct Row {
    std::int64_t ps, pe, hs, he;
    double score, confidence;
  };
  const Row rows[] = {
      {60, 60, 12, 12, 100.00, 0.900},  // every slot proven, always up, full window
      {30, 60, 12, 12, 65.00, 0.900},   // half the proofs
      {0, 60, 12, 12, 30.00, 0.900},    // up but no proofs
      {60, 60, 0, 12, 70.00, 0.900},    // proofs but no heartbeats
      {0, 60, 0, 12, 0.00, 0.900},      // silent for a whole window: surely 0
      {1, 60, 12, 12, 31.17, 0.900},    // a burst counts as one slot
      {45, 60, 6, 12, 67.50, 0.900},
      {1, 3, 0, 1, 23.33, 0.333},
      {2, 3, 1, 1, 76.67, 0.333},
      {0, 1, 1, 1, 30.00, 0.200},       // brand-new node
      {10, 10, 2, 2, 100.00, 0.600},
      {70, 60, 20, 12, 100.00, 0.900},  // counts are capped
      {-5, 60, -1, 12, 0.00, 0.900},
      {0, 0, 0, 0, 0.00, 0.200},        // expectations below 1 count as 1
      {720, 720, 144, 144, 100.00, 0.991},  // a 12-hour window: 864 / 872
  };
  for (const auto& r : rows) {
    CAPTURE(r.ps);
    CAPTURE(r.pe);
    CAPTURE(r.hs);
    CAPTURE(r.he);
    const auto f = detail::poot_formula(r.ps, r.pe, r.hs, r.he);
    CHECK(f.score == doctest::Approx(r.score).epsilon(1e-12));
    CHECK(f.confidence == doctest::Approx(r.confidence).epsilon(1e-12));
  }
  using std::chrono::microseconds;
  using std::chrono::seconds;
  CHECK(detail::poot_slots(seconds(3600), seconds(60)) == 60);
  CHECK(detail::poot_slots(seconds(3601), seconds(60)) == 60);  // whole slots only
  CHECK(detail::poot_slots(seconds(59), seconds(60)) == 1);     // but at least one
  CHECK(detail::poot_slots(microseconds(0), seconds(60)) == 1);
}

TEST_CASE("poot: scores from a history (table, default window 1 h, cadence 60 s, stale_after 300 s)") {
  struct Row {
    const char* name;
    int minutes;                      // the clock advances one minute at a time
    std::function<bool(int)> proof;   // a valid proof in minute m (1-based)?
    std::function<bool(int)> beat;    // a stats report in minute m?
    bool noise;                       // also a replay and a stale proof every minute
    std::int64_t proof_slots, proof_expected, beat_slots, beat_expected;
    double score, confidence;
  };
  auto every = [](int k) { return [k](int m) { return m % k == 0; }; };
  auto never = [](int) { return false; };
  const Row rows[] = {
      {"perfect hour", 60, every(1), every(1), false, 60, 60, 12, 12, 100.00, 0.900},
      {"every other minute", 60, every(2), every(1), false, 30, 60, 12, 12, 65.00, 0.900},
      {"no proofs", 60, never, every(1), false, 0, 60, 12, 12, 30.00, 0.900},
      {"no heartbeats after the first", 60, every(1), never, false, 60, 60, 0, 12, 70.00, 0.900},
      {"heartbeat every 10 minutes", 60, every(1), every(10), false, 60, 60, 6, 12, 85.00, 0.900},
      {"replays and stale proofs change nothing", 60, every(1), every(1), true, 60, 60, 12, 12, 100.00, 0.900},
      {"proofs only in the first hour of two", 120, [](int m) { return m <= 60; }, every(1), false, 0, 60, 12, 12,
       30.00, 0.900},
      {"ten minutes old", 10, every(1), every(1), false, 10, 10, 2, 2, 100.00, 0.600},
      {"brand new", 0, never, never, false, 0, 1, 1, 1, 30.00, 0.200},  // the activating report counts
      {"burst in the last minute", 60, [](int m) { return m == 60; }, every(1), false, 1, 60, 12, 12, 31.17, 0.900},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    Fixture f;
    const auto uid = f.active_node("w");
    for (int m = 1; m <= r.minutes; ++m) {
      f.advance(std::chrono::seconds(60));
      if (r.proof(m)) REQUIRE(f.poot().validate(f.proof(uid)).valid);
      if (r.beat(m)) f.heartbeat(uid);
      if (r.noise) {
        auto p = f.proof(uid);
        p.timestamp = format_rfc3339(f.clock->now() - std::chrono::hours(1), true);
        CHECK_FALSE(f.poot().validate(p).valid);
        if (r.proof(m)) {
          PootProof again = f.proof(uid);
          again.nonce = "n-" + std::to_string(f.nonces - 2);  // the valid proof of this minute
          CHECK(f.poot().validate(again).failure == PootFailure::nonce_replayed);
        }
      }
    }
    const auto s = f.poot().score(uid);
    CHECK(s.proof_slots == r.proof_slots);
    CHECK(s.proof_slots_expected == r.proof_expected);
    CHECK(s.heartbeat_slots == r.beat_slots);
    CHECK(s.heartbeat_slots_expected == r.beat_expected);
    CHECK(s.score == doctest::Approx(r.score).epsilon(1e-12));
    CHECK(s.confidence == doctest::Approx(r.confidence).epsilon(1e-12));
    // Deterministic: the same history and clock give the same answer.
    const auto again = f.poot().score(uid);
    CHECK(again.score == s.score);
    CHECK(again.confidence == s.confidence);
  }
}

TEST_CASE("poot: the score names the latest proof's status and the latest valid output hash") {
  Fixture f;
  const auto uid = f.active_node("w1");
  auto s = f.poot().score(uid);
  CHECK(s.status == PootStatus::pending);
  CHECK(s.output_hash.empty());
  CHECK(s.node_uid == uid);
  auto v = f.poot().validate(f.proof(uid, "first"));
  s = f.poot().score(uid);
  CHECK(s.status == PootStatus::valid);
  CHECK(s.output_hash == v.output_hash);
  auto stale = f.proof(uid, "second");
  stale.timestamp = format_rfc3339(f.clock->now() + std::chrono::hours(1), true);
  CHECK_FALSE(f.poot().validate(stale).valid);
  s = f.poot().score(uid);
  CHECK(s.status == PootStatus::invalid);
  CHECK(s.output_hash == v.output_hash);  // the latest *valid* one
  CHECK(std::chrono::abs(s.calculated_at - f.clock->now()) < std::chrono::seconds(5));
}

TEST_CASE("poot: Node::poot_score is the latest stored score, refreshed by score() and the executor") {
  Fixture f([](Options& o) { o.poot.score_refresh = std::chrono::milliseconds(20); });
  const auto uid = f.active_node("w1");
  CHECK_FALSE(f.nodes().get(uid).poot_score);
  f.poot().validate(f.proof(uid));
  auto s = f.poot().score(uid);
  CHECK(f.nodes().get(uid).poot_score == s.score);
  NodeQuery q;
  std::int64_t total = 0;
  auto listed = f.nodes().query(q, &total);
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].poot_score == s.score);

  // A node with a proof in the window is refreshed by refresh_scores().
  const auto uid2 = f.active_node("w2");
  f.poot().validate(f.proof(uid2));
  f.poot().refresh_scores();
  CHECK(f.nodes().get(uid2).poot_score.has_value());

  // The executor refreshes as time passes: out of the window, the proof term goes.
  f.cluster->start();
  f.advance(std::chrono::hours(2));
  bool decayed = false;
  for (int i = 0; i < 200 && !decayed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    decayed = f.nodes().get(uid).poot_score == 0.0 && f.nodes().get(uid2).poot_score == 0.0;
  }
  CHECK(decayed);
}

TEST_CASE("poot: concurrent batches spend each nonce exactly once") {
  Fixture f;
  const auto uid = f.active_node("w1");
  std::vector<PootProof> batch;
  for (int i = 0; i < 200; ++i) batch.push_back(f.proof(uid));
  std::atomic<std::int64_t> valid{0}, replayed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      auto r = f.poot().validate_batch(batch);
      valid += r.valid;
      for (const auto& v : r.results) replayed += v.failure == PootFailure::nonce_replayed ? 1 : 0;
    });
  for (auto& t : threads) t.join();
  CHECK(valid == 200);
  CHECK(replayed == 600);
}

TEST_CASE("poot: options are validated") {
  testsupport::TempDir dir;
  auto with = [&](std::function<void(Options&)> tweak) {
    return testsupport::field_of([&] {
      Options o;
      o.database_path = dir.file("o.db");
      tweak(o);
      Cluster c(o);
    });
  };
  CHECK(with([](Options& o) { o.poot.freshness = std::chrono::seconds(0); }) == "poot.freshness");
  CHECK(with([](Options& o) { o.poot.freshness = std::chrono::seconds(86401); }) == "poot.freshness");
  CHECK(with([](Options& o) { o.poot.window = std::chrono::seconds(59); }) == "poot.window");
  CHECK(with([](Options& o) { o.poot.expected_interval = std::chrono::seconds(0); }) == "poot.expected_interval");
  CHECK(with([](Options& o) { o.poot.expected_interval = std::chrono::seconds(7200); }) == "poot.expected_interval");
  CHECK(with([](Options& o) { o.poot.max_output_bytes = 0; }) == "poot.max_output_bytes");
  CHECK(with([](Options& o) { o.poot.score_refresh = std::chrono::milliseconds(0); }) == "poot.score_refresh");
  CHECK(with([](Options&) {}) == "<none>");
}

TEST_CASE("poot: the signed message is exactly as documented") {
  CHECK(Poot::signed_message("node_ab", "00ff", "2025-01-01T00:00:00Z", "n1") ==
        "lucid-poot-v1\nnode_ab\n00ff\n2025-01-01T00:00:00Z\nn1");
  CHECK(std::string(poot_status_name(PootStatus::pending)) == "pending");
  CHECK(std::string(poot_failure_name(PootFailure::nonce_replayed)) == "nonce_replayed");
  CHECK(std::string(poot_failure_name(PootFailure::none)).empty());
}

TEST_CASE("poot: the strict base64 decoder accepts exactly what libsodium's padded standard variant accepts") {
  REQUIRE(sodium_init() >= 0);
  std::mt19937 rng(7);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n";
  auto sodium = [](const std::string& in, std::string& out) {
    out.assign(in.size() + 3, '\0');
    std::size_t len = 0;
    const char* end = nullptr;
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), in.data(), in.size(), nullptr,
                          &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != in.data() + in.size())
      return false;
    out.resize(len);
    return true;
  };
  int agreed_valid = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string in;
    if (i % 2 == 0) {
      // A valid encoding, sometimes with one character changed.
      std::string raw(rng() % 12, '\0');
      for (auto& c : raw) c = static_cast<char>(rng());
      in = b64(raw);
      if (!in.empty() && rng() % 2) in[rng() % in.size()] = alphabet[rng() % alphabet.size()];
    } else {
      in.resize(rng() % 9);
      for (auto& c : in) c = alphabet[rng() % alphabet.size()];
    }
    std::string mine, theirs;
    const bool ok = detail::base64_decode_strict(in, mine);
    CAPTURE(in);
    REQUIRE(ok == sodium(in, theirs));
    if (ok) {
      REQUIRE(mine == theirs);
      ++agreed_valid;
    }
  }
  CHECK(agreed_valid > 50000);
}
