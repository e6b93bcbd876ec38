#include <doctest/doctest.h>
#include <sodium.h>

#include <limits>
#include <random>
#include <set>
#include <thread>

#include "db_tamper.hpp"
#include "lucidnode/lucidnode.hpp"
#include "payouts/payout_rules.hpp"
#include "support.hpp"

using namespace lucid;
using testsupport::code_of;
using testsupport::field_of;

namespace {

// An independent base58check encoder (libsodium's SHA-256): TRON addresses
// from 20 account bytes, for tests that need many valid ones.
std::string tron_address(const std::string& account20) {
  std::string raw = "\x41" + account20;
  unsigned char h1[32], h2[32];
  crypto_hash_sha256(h1, reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  crypto_hash_sha256(h2, h1, 32);
  raw.append(reinterpret_cast<const char*>(h2), 4);
  static const char* alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  std::vector<unsigned char> num(raw.begin(), raw.end());
  std::string out;
  while (std::any_of(num.begin(), num.end(), [](unsigned char b) { return b != 0; })) {
    unsigned rem = 0;
    for (auto& b : num) {
      const unsigned cur = rem * 256 + b;
      b = static_cast<unsigned char>(cur / 58);
      rem = cur % 58;
    }
    out.insert(out.begin(), alphabet[rem]);
  }
  return out;
}

const std::string kWallet = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t";  // a real TRON address

struct Fixture {
  testsupport::TempDir dir;
  std::shared_ptr<OffsetClock> clock = std::make_shared<OffsetClock>();
  std::unique_ptr<Cluster> cluster;
  std::function<void(Options&)> tweak;
  explicit Fixture(std::function<void(Options&)> t = {}) : tweak(std::move(t)) { open(); }
  void open() {
    cluster.reset();
    Options o;
    o.database_path = dir.file("p.db");
    o.clock = clock;
    if (tweak) tweak(o);
    cluster = std::make_unique<Cluster>(o);
  }
  Payouts& payouts() { return cluster->payouts(); }
  Ledger& ledger() { return cluster->ledger(); }
  std::string node(const std::string& name) {
    NodeCreate c;
    c.name = name;
    return cluster->nodes().create(c).uid;
  }
  void sql(const std::string& statement) {
    testsupport::db_exec(dir.file("p.db"), statement);
  }
  std::int64_t sql_int(const std::string& query) {
    return testsupport::db_int(dir.file("p.db"), query);
  }
  void drain() {
    while (payouts().process() > 0) {
    }
  }
};

PayoutRequest req(const std::string& node, const std::string& amount, const std::string& wallet = kWallet,
                  const std::string& currency = "USDT") {
  PayoutRequest r;
  r.node_uid = node;
  r.amount = amount;
  r.currency = currency;
  r.wallet_address = wallet;
  return r;
}

}  // namespace

// ---------------------------------------------------------------- money

TEST_CASE("payouts: parse_micros is exact (table)") {
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  const std::int64_t min = std::numeric_limits<std::int64_t>::min();
  const std::vector<std::pair<std::string, std::optional<std::int64_t>>> cases = {
      {"12.5", 12500000},
      {"12.50", 12500000},
      {"0.000001", 1},
      {"0.1", 100000},  // 0.1 has no exact binary form; here it is exact
      {"100", 100000000},
      {"0", 0},
      {"-0", 0},
      {"-2", -2000000},
      {"-3.25", -3250000},
      {"1e3", 1000000000},
      {"1E+3", 1000000000},
      {"2.5e-6", std::nullopt},
      {"1.5e-5", 15},
      {"125e-8", std::nullopt},
      {"120e-8", std::nullopt},
      {"100e-8", 1},
      {"1.0000000", 1000000},  // zeros past the 6th decimal do not change the value
      {"1.0000001", std::nullopt},
      {"1.1234567", std::nullopt},
      {"0.0000001", std::nullopt},
      {"0e-999999999999", 0},
      {"1e999999999999", std::nullopt},
      {"1e-999999999999", std::nullopt},
      {"9223372036854.775807", max},
      {"9223372036854.775808", std::nullopt},
      {"-9223372036854.775808", min},
      {"-9223372036854.775809", std::nullopt},
      {"1e13", std::nullopt},
      {"00", std::nullopt},
      {"01", std::nullopt},
      {"1.", std::nullopt},
      {".5", std::nullopt},
      {"+1", std::nullopt},
      {"1e", std::nullopt},
      {"1e+", std::nullopt},
      {"--1", std::nullopt},
      {" 1", std::nullopt},
      {"1 ", std::nullopt},
      {"", std::nullopt},
      {"abc", std::nullopt},
      {"NaN", std::nullopt},
      {"Infinity", std::nullopt},
      {"0x10", std::nullopt},
      {"1,5", std::nullopt},
  };
  for (const auto& [text, want] : cases) {
    CAPTURE(text);
    CHECK(parse_micros(text) == want);
  }
}

TEST_CASE("payouts: format_micros is the shortest exact decimal and round-trips") {
  const std::vector<std::pair<std::int64_t, std::string>> cases = {
      {12500000, "12.5"}, {100000000, "100"}, {1, "0.000001"}, {-3250000, "-3.25"}, {0, "0"},
      {123456789, "123.456789"}, {std::numeric_limits<std::int64_t>::min(), "-9223372036854.775808"},
      {std::numeric_limits<std::int64_t>::max(), "9223372036854.775807"}};
  for (const auto& [micros, text] : cases) {
    CAPTURE(text);
    CHECK(format_micros(micros) == text);
    CHECK(parse_micros(text) == micros);
  }
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    const auto v = static_cast<std::int64_t>(rng());
    CHECK(parse_micros(format_micros(v)) == v);
  }
}

TEST_CASE("payouts: currencies and statuses by name") {
  CHECK(parse_currency("USDT") == Currency::usdt);
  CHECK(parse_currency("LUCID") == Currency::lucid);
  CHECK_FALSE(parse_currency("usdt"));
  CHECK(std::string(currency_name(Currency::lucid)) == "LUCID");
  for (auto s : {PayoutStatus::pending, PayoutStatus::processing, PayoutStatus::completed, PayoutStatus::failed})
    CHECK(parse_payout_status(payout_status_name(s)) == s);
  CHECK_FALSE(parse_payout_status("cancelled"));
}

TEST_CASE("payouts: TRON addresses are checked with their base58check checksum") {
  CHECK(detail::valid_tron_address(kWallet));
  std::mt19937 rng(3);
  for (int i = 0; i < 200; ++i) {
    std::string account(20, '\0');
    for (char& c : account) c = static_cast<char>(rng());
    const std::string a = tron_address(account);
    CAPTURE(a);
    CHECK(detail::valid_tron_address(a));
    CHECK(detail::wallet_accepts(Currency::usdt, a));
    CHECK(detail::wallet_accepts(Currency::lucid, a));
  }
  std::string flipped = kWallet;
  flipped[10] = flipped[10] == 'a' ? 'b' : 'a';
  const std::vector<std::string> bad = {
      "",
      flipped,                                 // checksum no longer matches
      kWallet.substr(0, 33),                   // too short
      kWallet + "1",                           // too long
      "0x" + std::string(40, 'a'),             // an Ethereum address
      "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",    // a Bitcoin address (version 0x00)
      "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj60",    // '0' is not base58
      "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLjIl",    // neither are 'I' and 'l'
  };
  for (const auto& a : bad) {
    CAPTURE(a);
    CHECK_FALSE(detail::valid_tron_address(a));
  }
}

// ---------------------------------------------------------------- submit

TEST_CASE("payouts: submit validates every field and names it") {
  Fixture f([](Options& o) { o.payouts.max_batch = 3; });
  const std::string n = f.node("val-node");
  struct Case {
    const char* name;
    PayoutBatchRequest batch;
    std::string field;
  };
  auto one = [&](PayoutRequest r, std::string batch_id = "b") { return PayoutBatchRequest{batch_id, {req(n, "1"), r}}; };
  const std::vector<Case> cases = {
      {"empty list", {"b", {}}, "payout_requests"},
      {"too many", {"b", {req(n, "1"), req(n, "1"), req(n, "1"), req(n, "1")}}, "payout_requests"},
      {"batch id chars", one(req(n, "1"), "a b"), "batch_id"},
      {"batch id length", one(req(n, "1"), std::string(129, 'b')), "batch_id"},
      {"node id missing", one(req("", "1")), "payout_requests.1.node_id"},
      {"node id pattern", one(req("pool_1", "1")), "payout_requests.1.node_id"},
      {"node id chars", one(req("node_a$b", "1")), "payout_requests.1.node_id"},
      {"amount missing", one(req(n, "")), "payout_requests.1.amount"},
      {"amount zero", one(req(n, "0")), "payout_requests.1.amount"},
      {"amount negative", one(req(n, "-1")), "payout_requests.1.amount"},
      {"amount 7 decimals", one(req(n, "1.1234567")), "payout_requests.1.amount"},
      {"amount text", one(req(n, "ten")), "payout_requests.1.amount"},
      {"amount too large", one(req(n, "1000000000.000001")), "payout_requests.1.amount"},
      {"currency", one(req(n, "1", kWallet, "EUR")), "payout_requests.1.currency"},
      {"wallet too long", one(req(n, "1", std::string(129, 'T'))), "payout_requests.1.wallet_address"},
      {"wallet control char", one(req(n, "1", "T\x01")), "payout_requests.1.wallet_address"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    CHECK(code_of([&] { f.payouts().submit(c.batch); }) == Errc::invalid_argument);
    CHECK(field_of([&] { f.payouts().submit(c.batch); }) == c.field);
  }
  // The largest amount and a full batch are fine.
  CHECK(f.payouts().submit({"ok", {req(n, "1000000000"), req(n, "0.000001"), req(n, "5")}}).payout_count == 3);
}

TEST_CASE("payouts: an unknown node fails the whole batch with node_not_found") {
  Fixture f;
  const std::string n = f.node("known");
  try {
    f.payouts().submit({"b1", {req(n, "1"), req("node_00000000deadbeef", "2")}});
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_argument);
    CHECK(e.reason() == Reason::node_not_found);
    CHECK(e.field() == "payout_requests.1.node_id");
  }
  std::int64_t total = -1;
  f.payouts().list_for_node(n, {}, &total);
  CHECK(total == 0);
  CHECK(code_of([&] { f.payouts().batch("b1"); }) == Errc::not_found);
}

TEST_CASE("payouts: batch_id is an idempotency key") {
  Fixture f;
  const std::string a = f.node("idem-a"), b = f.node("idem-b");
  const auto first = f.payouts().submit({"idem-1", {req(a, "12.5"), req(b, "3", "", "LUCID")}});
  CHECK(first.created);
  CHECK(first.batch_id == "idem-1");
  CHECK(first.payout_count == 2);
  CHECK(first.status == "queued");
  CHECK(first.pending == 2);
  // The same requests, spelled differently: the same batch, nothing new.
  const auto again = f.payouts().submit({"idem-1", {req(a, "12.500000"), req(b, "3.0", "", "LUCID")}});
  CHECK_FALSE(again.created);
  CHECK(again.batch_id == "idem-1");
  CHECK(again.payout_count == 2);
  std::int64_t total = 0;
  f.payouts().list_for_node(a, {}, &total);
  CHECK(total == 1);
  // Different requests under the same id: refused.
  for (const auto& different : std::vector<std::vector<PayoutRequest>>{
           {req(a, "12.6"), req(b, "3", "", "LUCID")},
           {req(a, "12.5"), req(b, "3", "", "USDT")},
           {req(a, "12.5"), req(b, "3", kWallet, "LUCID")},
           {req(b, "3", "", "LUCID"), req(a, "12.5")},
           {req(a, "12.5")}}) {
    try {
      f.payouts().submit({"idem-1", different});
      FAIL("expected a conflict");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::conflict);
      CHECK(e.reason() == Reason::batch_failed);
    }
  }
  // Replays after processing still create nothing and report the outcome.
  f.drain();
  const auto done = f.payouts().submit({"idem-1", {req(a, "12.5"), req(b, "3", "", "LUCID")}});
  CHECK_FALSE(done.created);
  CHECK(done.status == "processing");
  CHECK(done.completed == 1);
  CHECK(done.failed == 1);
  CHECK(f.sql_int("SELECT COUNT(*) FROM payouts") == 2);
  CHECK(f.sql_int("SELECT COUNT(*) FROM ledger_transactions") == 1);
  // Without a batch_id every submission is a new batch.
  const auto x = f.payouts().submit({"", {req(a, "1")}});
  const auto y = f.payouts().submit({"", {req(a, "1")}});
  CHECK(x.batch_id.rfind("batch_", 0) == 0);
  CHECK(x.batch_id != y.batch_id);
}

TEST_CASE("payouts: concurrent submissions of one batch_id create it once") {
  Fixture f;
  const std::string n = f.node("race");
  std::vector<PayoutRequest> list;
  for (int i = 0; i < 50; ++i) list.push_back(req(n, std::to_string(i + 1)));
  std::atomic<int> created{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      try {
        if (f.payouts().submit({"race-1", list}).created) ++created;
      } catch (const Error&) {
        ++failures;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(created == 1);
  CHECK(failures == 0);
  CHECK(f.sql_int("SELECT COUNT(*) FROM payouts") == 50);
}

// ---------------------------------------------------------------- processing

TEST_CASE("payouts: processing completes with one ledger transaction, or fails with a reason") {
  Fixture f;
  const std::string n = f.node("proc");
  std::string flipped = kWallet;
  flipped[5] = flipped[5] == 'a' ? 'b' : 'a';
  // The estimate lies after the submission (the clock read before it): with
  // rounds 10 ms apart, "after now" would depend on how long submit took.
  const auto before = f.clock->now();
  const auto b = f.payouts().submit(
      {"proc-1", {req(n, "12.5"), req(n, "7", ""), req(n, "8", flipped), req(n, "0.000001", kWallet, "LUCID")}});
  CHECK(b.status == "queued");
  CHECK(b.estimated_completion > before);
  CHECK(f.payouts().process() == 4);
  CHECK(f.payouts().process() == 0);
  std::int64_t total = 0;
  auto list = f.payouts().list_for_node(n, {}, &total);
  REQUIRE(total == 4);
  std::reverse(list.begin(), list.end());  // newest first -> submission order
  CHECK(list[0].status == PayoutStatus::completed);
  CHECK(list[0].amount_micros == 12500000);
  CHECK(list[1].status == PayoutStatus::failed);
  CHECK(list[1].failure_reason == kPayoutNoWallet);
  CHECK(list[1].transaction_hash.empty());
  CHECK(list[2].status == PayoutStatus::failed);
  CHECK(list[2].failure_reason == kPayoutBadWallet);
  CHECK(list[3].status == PayoutStatus::completed);
  CHECK(list[3].currency == Currency::lucid);
  for (const auto& p : list) {
    CHECK(p.processed_at.has_value());
    CHECK(p.completed_at.has_value());
    CHECK(p.batch_id == "proc-1");
    CHECK(p.node_uid == n);
    CHECK(p.payout_id.rfind("payout_", 0) == 0);
  }
  for (int i : {0, 3}) {
    const auto tx = f.ledger().find_by_ref(list[static_cast<std::size_t>(i)].payout_id);
    REQUIRE(tx);
    CHECK(tx->hash == list[static_cast<std::size_t>(i)].transaction_hash);
    CHECK(tx->type == "payout");
    CHECK(tx->payload == detail::payout_payload(list[static_cast<std::size_t>(i)].amount_micros, "proc-1",
                                                list[static_cast<std::size_t>(i)].currency, n,
                                                list[static_cast<std::size_t>(i)].payout_id, kWallet));
  }
  CHECK(f.ledger().find_by_ref(list[0].payout_id)->payload ==
        "{\"amount_micros\":12500000,\"batch_id\":\"proc-1\",\"currency\":\"USDT\",\"node_id\":\"" + n +
            "\",\"payout_id\":\"" + list[0].payout_id + "\",\"wallet_address\":\"" + kWallet + "\"}");
  const auto state = f.payouts().batch("proc-1");
  CHECK(state.completed == 2);
  CHECK(state.failed == 2);
  CHECK(state.pending + state.processing == 0);
  CHECK(state.estimated_completion == *list[3].completed_at);
  f.ledger().seal();
  const auto rep = f.ledger().verify();
  CHECK(rep.ok);
  CHECK(rep.transactions == 2);
  CHECK(f.payouts().get(list[0].payout_id).status == PayoutStatus::completed);
  CHECK(code_of([&] { f.payouts().get("payout_nope"); }) == Errc::not_found);
}

TEST_CASE("payouts: each round settles at most payout_chunk payouts, oldest first") {
  Fixture f([](Options& o) { o.payouts.chunk = 2; });
  const std::string n = f.node("chunky");
  f.payouts().submit({"c1", {req(n, "1"), req(n, "2"), req(n, "3")}});
  f.payouts().submit({"c2", {req(n, "4"), req(n, "5")}});
  CHECK(f.payouts().process() == 2);
  CHECK(f.payouts().batch("c1").status == "processing");
  CHECK(f.payouts().batch("c1").completed == 2);
  CHECK(f.payouts().batch("c2").status == "queued");
  CHECK(f.payouts().process() == 2);
  CHECK(f.payouts().batch("c1").completed == 3);
  CHECK(f.payouts().batch("c2").completed == 1);
  CHECK(f.payouts().process() == 1);
  CHECK(f.payouts().process() == 0);
  CHECK(f.sql_int("SELECT COUNT(*) FROM ledger_transactions") == 5);
}

TEST_CASE("payouts: payouts left processing by a crash are resumed, exactly once") {
  Fixture f([](Options& o) { o.payouts.chunk = 3; });
  const std::string n = f.node("crash");
  f.payouts().submit({"crash-1", {req(n, "1"), req(n, "2"), req(n, "3"), req(n, "4"), req(n, "5")}});
  f.cluster.reset();
  // The state a crash between "mark processing" and "settle" leaves behind.
  f.sql("UPDATE payouts SET status = 'processing', processed_at = created_at WHERE seq < 3");
  f.open();
  CHECK(f.payouts().batch("crash-1").processing == 3);
  CHECK(f.payouts().process() == 3);  // the resumed ones first, nothing new marked
  CHECK(f.payouts().batch("crash-1").completed == 3);
  CHECK(f.payouts().batch("crash-1").pending == 2);
  f.drain();
  CHECK(f.payouts().batch("crash-1").completed == 5);
  CHECK(f.sql_int("SELECT COUNT(*) FROM ledger_transactions") == 5);
  CHECK(f.sql_int("SELECT COUNT(DISTINCT ref) FROM ledger_transactions") == 5);
}

TEST_CASE("payouts: a payout that reaches settlement again keeps its one transaction") {
  Fixture f;
  const std::string n = f.node("twice");
  f.payouts().submit({"t-1", {req(n, "9")}});
  f.drain();
  const auto before = f.payouts().list_for_node(n, {}).at(0);
  REQUIRE(before.status == PayoutStatus::completed);
  // Whatever put it back (a bug, a restore of an older payouts table): the
  // ledger's unique ref makes the second settlement find the first transaction.
  f.cluster.reset();
  f.sql("UPDATE payouts SET status = 'processing', transaction_hash = NULL, completed_at = NULL");
  f.clock->advance(std::chrono::seconds(5));
  f.open();
  CHECK(f.payouts().process() == 1);
  const auto after = f.payouts().get(before.payout_id);
  CHECK(after.status == PayoutStatus::completed);
  CHECK(after.transaction_hash == before.transaction_hash);
  CHECK(f.sql_int("SELECT COUNT(*) FROM ledger_transactions") == 1);
}

TEST_CASE("payouts: listing a node's payouts pages newest first and filters by status") {
  Fixture f([](Options& o) { o.payouts.chunk = 4; });
  const std::string n = f.node("lister"), other = f.node("other");
  std::vector<PayoutRequest> list;
  for (int i = 1; i <= 25; ++i) list.push_back(req(n, std::to_string(i)));
  list.push_back(req(other, "100"));
  f.payouts().submit({"list-1", list});
  f.payouts().process();  // the first 4 complete
  std::int64_t total = 0;
  auto page1 = f.payouts().list_for_node(n, {1, 10, std::nullopt}, &total);
  CHECK(total == 25);
  REQUIRE(page1.size() == 10);
  CHECK(page1[0].amount_micros == 25000000);
  CHECK(page1[9].amount_micros == 16000000);
  auto page3 = f.payouts().list_for_node(n, {3, 10, std::nullopt}, &total);
  CHECK(page3.size() == 5);
  CHECK(page3.back().amount_micros == 1000000);
  CHECK(f.payouts().list_for_node(n, {4, 10, std::nullopt}, &total).empty());
  auto done = f.payouts().list_for_node(n, {1, 100, PayoutStatus::completed}, &total);
  CHECK(total == 4);
  CHECK(done.size() == 4);
  f.payouts().list_for_node(n, {1, 100, PayoutStatus::pending}, &total);
  CHECK(total == 21);
  f.payouts().list_for_node(n, {1, 100, PayoutStatus::failed}, &total);
  CHECK(total == 0);
  f.payouts().list_for_node(other, {1, 100, std::nullopt}, &total);
  CHECK(total == 1);
  CHECK(field_of([&] { f.payouts().list_for_node(n, {0, 10, std::nullopt}); }) == "page");
  CHECK(field_of([&] { f.payouts().list_for_node(n, {1, 0, std::nullopt}); }) == "limit");
  CHECK(field_of([&] { f.payouts().list_for_node(n, {1, 101, std::nullopt}); }) == "limit");
  try {
    f.payouts().list_for_node("node_ffffffffffffffff", {});
    FAIL("expected not_found");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::not_found);
    CHECK(e.reason() == Reason::node_not_found);
  }
}

TEST_CASE("payouts: the executor processes a large batch and seals it into blocks") {
  Fixture f([](Options& o) {
    o.payouts.interval = std::chrono::milliseconds(5);
    o.ledger.block_time = std::chrono::milliseconds(20);
    o.payouts.chunk = 500;
  });
  const std::string n = f.node("bg");
  std::vector<PayoutRequest> list;
  for (int i = 0; i < 2500; ++i) list.push_back(req(n, "0.5"));
  f.cluster->start();
  f.payouts().submit({"bg-1", list});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto b = f.payouts().batch("bg-1");
    if (b.completed == 2500 && f.ledger().info().pending == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  f.cluster->stop();
  CHECK(f.payouts().batch("bg-1").completed == 2500);
  const auto rep = f.ledger().verify();
  CHECK(rep.ok);
  CHECK(rep.transactions == 2500);
  CHECK(f.sql_int("SELECT COUNT(DISTINCT ref) FROM ledger_transactions") == 2500);
}

TEST_CASE("payouts: options are validated") {
  testsupport::TempDir dir;
  auto with = [&](std::function<void(Options&)> tweak) {
    return testsupport::field_of([&] {
      Options o;
      o.database_path = dir.file("o.db");
      tweak(o);
      Cluster c(o);
    });
  };
  CHECK(with([](Options& o) { o.ledger.block_time = std::chrono::milliseconds(5); }) == "ledger.block_time");
  CHECK(with([](Options& o) { o.payouts.interval = std::chrono::milliseconds(0); }) == "payouts.interval");
  CHECK(with([](Options& o) { o.payouts.chunk = 0; }) == "payouts.chunk");
  CHECK(with([](Options& o) { o.payouts.max_batch = 0; }) == "payouts.max_batch");
}
