// Wallets and trust policies (include/lucidnode/wallets.hpp): registration
// and generation, balances from completed payouts, transfers with their
// errors, policy enforcement, ownership, persistence, concurrency.
#include <doctest/doctest.h>

#include <atomic>
#include <regex>
#include <thread>

#include "lucidnode/lucidnode.hpp"
#include "support.hpp"

using namespace lucid;
using testsupport::code_of;
using testsupport::field_of;
using testsupport::reason_of;

namespace {

const std::string kAddr = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t";  // a real TRON address

struct Fixture {
  testsupport::TempDir dir;
  std::shared_ptr<OffsetClock> clock = std::make_shared<OffsetClock>();
  std::unique_ptr<Cluster> cluster;
  bool with_key = true;
  Principal alice{"alice", false}, bob{"bob", false}, admin{"root", true};
  std::string node_uid;
  explicit Fixture(bool key = true) : with_key(key) { open(); }
  void open() {
    cluster.reset();
    Options o;
    o.database_path = dir.file("w.db");
    o.clock = clock;
    if (with_key) o.gateway.wallet_key = std::string(32, 'k');
    cluster = std::make_unique<Cluster>(o);
  }
  Wallets& w() { return cluster->wallets(); }
  TrustPolicies& tp() { return cluster->trust_policies(); }
  Wallet make(const Principal& who, const std::string& name, const std::string& currency = "USDT",
              std::optional<std::string> address = std::nullopt) {
    WalletCreate c;
    c.name = name;
    c.currency = currency;
    c.address = address;
    return w().create(who, c);
  }
  // Credits `address` through a completed USDT payout of `amount`.
  void fund(const std::string& address, const std::string& amount) {
    if (node_uid.empty()) {
      NodeCreate n;
      n.name = "payee";
      node_uid = cluster->nodes().create(n).uid;
    }
    PayoutRequest r;
    r.node_uid = node_uid;
    r.amount = amount;
    r.wallet_address = address;
    cluster->payouts().submit({"", {r}});
    while (cluster->payouts().process() > 0) {
    }
  }
};

WalletTransfer send(std::int64_t micros, const std::string& to, const std::string& type = "transfer") {
  WalletTransfer t;
  t.type = type;
  t.amount_micros = micros;
  t.recipient = to;
  return t;
}

TrustRule rule(const std::string& type, const std::string& condition, const std::string& action = "*",
               const std::string& id = "") {
  TrustRule r;
  r.rule_id = id;
  r.type = type;
  r.condition = condition;
  r.action = action;
  return r;
}

}  // namespace

TEST_CASE("wallets: registering an address makes a watch-only wallet with every field") {
  Fixture f;
  Wallet w = f.make(f.alice, "cold", "USDT", kAddr);
  CHECK(std::regex_match(w.wallet_id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")));
  CHECK(w.user_id == "alice");
  CHECK(w.name == "cold");
  CHECK(w.address == kAddr);
  CHECK(w.currency == "USDT");
  CHECK(w.network == "TRON");
  CHECK(w.balance_micros == 0);
  CHECK_FALSE(w.custodial);
  CHECK(w.created_at == w.updated_at);
  Wallet g = f.w().get(f.alice, w.wallet_id);
  CHECK(g.address == kAddr);
  CHECK(g.created_at == w.created_at);
  // The same address in the other currency is another wallet.
  CHECK(f.make(f.alice, "cold-trx", "TRX", kAddr).currency == "TRX");
}

TEST_CASE("wallets: create validates name - currency - network and address") {
  Fixture f;
  auto err = [&](WalletCreate c) {
    return std::make_tuple(code_of([&] { f.w().create(f.alice, c); }), field_of([&] { f.w().create(f.alice, c); }),
                           reason_of([&] { f.w().create(f.alice, c); }));
  };
  WalletCreate c;
  c.name = "n";
  c.currency = "USDT";
  c.address = kAddr;
  std::string flipped = kAddr;
  flipped[5] = flipped[5] == 'a' ? 'b' : 'a';
  WalletCreate bad = c;
  bad.name = "";
  CHECK(err(bad) == std::make_tuple(Errc::invalid_argument, std::string("name"), Reason::invalid_format));
  bad.name = std::string(256, 'n');
  CHECK(std::get<1>(err(bad)) == "name");
  for (std::string cur : {"usdt", "BTC", "", "LUCID"}) {
    bad = c;
    bad.currency = cur;
    CHECK(err(bad) == std::make_tuple(Errc::invalid_argument, std::string("currency"), Reason::invalid_format));
  }
  bad = c;
  bad.network = "ETH";
  CHECK(err(bad) == std::make_tuple(Errc::invalid_argument, std::string("network"), Reason::invalid_format));
  for (std::string a : {flipped, std::string(""), std::string("0x52908400098527886E0F7030069857D2E4169EE7"),
                        kAddr.substr(0, 33), kAddr + "1"}) {
    CAPTURE(a);
    bad = c;
    bad.address = a;
    CHECK(err(bad) == std::make_tuple(Errc::invalid_argument, std::string("address"), Reason::invalid_format));
  }
  std::int64_t total = -1;
  f.w().list(f.alice, 1, 100, &total);
  CHECK(total == 0);
  c.name = std::string(255, 'n');
  CHECK(f.w().create(f.alice, c).name.size() == 255);
}

TEST_CASE("wallets: an address is registered once per currency - across users") {
  Fixture f;
  f.make(f.alice, "a", "USDT", kAddr);
  CHECK(code_of([&] { f.make(f.alice, "again", "USDT", kAddr); }) == Errc::conflict);
  CHECK(reason_of([&] { f.make(f.bob, "bob's", "USDT", kAddr); }) == Reason::already_exists);
  CHECK(field_of([&] { f.make(f.bob, "bob's", "USDT", kAddr); }) == "address");
  std::int64_t total = 0;
  f.w().list(f.bob, 1, 10, &total);
  CHECK(total == 0);
}

TEST_CASE("wallets: generating a key pair needs a wallet key - generated wallets are custodial and distinct") {
  {
    Fixture nokey(false);
    WalletCreate c;
    c.name = "hot";
    c.currency = "USDT";
    CHECK(code_of([&] { nokey.w().create(nokey.alice, c); }) == Errc::conflict);
    CHECK(field_of([&] { nokey.w().create(nokey.alice, c); }) == "address");
    std::int64_t total = -1;
    nokey.w().list(nokey.alice, 1, 10, &total);
    CHECK(total == 0);
  }
  Fixture f;
  Wallet a = f.make(f.alice, "hot", "USDT");
  Wallet b = f.make(f.alice, "hot2", "TRX");
  CHECK(a.custodial);
  CHECK(b.custodial);
  CHECK(std::regex_match(a.address, std::regex("T[1-9A-HJ-NP-Za-km-z]{33}")));
  CHECK(a.address != b.address);
  CHECK(a.balance_micros == 0);
  // The generated address is a valid one: it can be registered elsewhere, once per currency.
  CHECK(reason_of([&] { f.make(f.bob, "copy", "USDT", a.address); }) == Reason::already_exists);
  CHECK_FALSE(f.make(f.bob, "watch", "TRX", a.address).custodial);
}

TEST_CASE("wallets: get/list ownership - unknown ids and paging") {
  Fixture f;
  Wallet a = f.make(f.alice, "a1");
  f.make(f.alice, "a2");
  f.make(f.alice, "a3");
  f.make(f.bob, "b1");
  for (std::string id : {"00000000-0000-0000-0000-000000000000", "", "wallet"}) {
    CHECK(code_of([&] { f.w().get(f.alice, id); }) == Errc::not_found);
    CHECK(code_of([&] { f.w().transact(f.alice, id, send(1, kAddr)); }) == Errc::not_found);
  }
  CHECK(code_of([&] { f.w().get(f.bob, a.wallet_id); }) == Errc::permission_denied);
  CHECK(f.w().get(f.admin, a.wallet_id).name == "a1");
  std::int64_t total = 0;
  auto page = f.w().list(f.alice, 2, 2, &total);
  CHECK(total == 3);
  REQUIRE(page.size() == 1);
  CHECK(page[0].name == "a3");
  CHECK(f.w().list(f.alice, 1, 2, nullptr)[0].name == "a1");
  CHECK(f.w().list(f.bob, 1, 10, &total).size() == 1);
  CHECK(total == 1);
  CHECK(field_of([&] { f.w().list(f.alice, 0, 10); }) == "page");
  CHECK(field_of([&] { f.w().list(f.alice, 1, 101); }) == "limit");
  CHECK(reason_of([&] { f.w().list(f.alice, 1, 0); }) == Reason::out_of_range);
}

TEST_CASE("wallets: the balance counts completed payouts in the wallet's currency only") {
  Fixture f;
  Wallet usdt = f.make(f.alice, "u", "USDT", kAddr);
  Wallet trx = f.make(f.alice, "t", "TRX", kAddr);
  f.fund(kAddr, "12.5");
  f.fund(kAddr, "0.000001");
  CHECK(f.w().get(f.alice, usdt.wallet_id).balance_micros == 12500001);
  CHECK(f.w().get(f.alice, trx.wallet_id).balance_micros == 0);
  CHECK(f.w().list(f.alice, 1, 10)[0].balance_micros == 12500001);
}

TEST_CASE("wallets: transact validates fields and state - a refused send records nothing") {
  Fixture f;
  Wallet hot = f.make(f.alice, "hot");
  Wallet watch = f.make(f.alice, "watch", "USDT", kAddr);
  f.fund(hot.address, "10");
  f.fund(kAddr, "10");
  auto ledger_size = [&] {
    const auto i = f.cluster->ledger().info();
    return i.pending + i.transactions;  // a seal moves one to the other
  };
  const auto before = ledger_size();
  auto err = [&](const std::string& id, WalletTransfer t, const Principal* who = nullptr) {
    const Principal& p = who ? *who : f.alice;
    return std::make_tuple(code_of([&] { f.w().transact(p, id, t); }), field_of([&] { f.w().transact(p, id, t); }),
                           reason_of([&] { f.w().transact(p, id, t); }));
  };
  using T = std::tuple<Errc, std::string, Reason>;
  CHECK(err(hot.wallet_id, send(1, kAddr, "gift")) == T{Errc::invalid_argument, "type", Reason::invalid_format});
  CHECK(err(hot.wallet_id, send(0, kAddr)) == T{Errc::invalid_argument, "amount", Reason::out_of_range});
  CHECK(err(hot.wallet_id, send(-5, kAddr)) == T{Errc::invalid_argument, "amount", Reason::out_of_range});
  CHECK(err(hot.wallet_id, send(1000000000LL * 1000000 + 1, kAddr)) ==
        T{Errc::invalid_argument, "amount", Reason::out_of_range});
  CHECK(err(hot.wallet_id, send(1, "Tnotanaddress")) == T{Errc::invalid_argument, "recipient", Reason::invalid_format});
  auto t = send(1, kAddr);
  t.currency = "EUR";
  CHECK(err(hot.wallet_id, t) == T{Errc::invalid_argument, "currency", Reason::invalid_format});
  t.currency = "TRX";
  CHECK(err(hot.wallet_id, t) == T{Errc::conflict, "currency", Reason::none});
  t = send(1, kAddr);
  t.memo = std::string(257, 'm');
  CHECK(err(hot.wallet_id, t) == T{Errc::invalid_argument, "memo", Reason::invalid_format});
  CHECK(err(watch.wallet_id, send(1, hot.address)) == T{Errc::conflict, "wallet_id", Reason::none});
  CHECK(err(hot.wallet_id, send(1, hot.address)) == T{Errc::invalid_argument, "recipient", Reason::invalid_format});
  CHECK(err(hot.wallet_id, send(10000001, kAddr)) == T{Errc::conflict, "amount", Reason::insufficient_balance});
  CHECK(std::get<0>(err(hot.wallet_id, send(1, kAddr), &f.bob)) == Errc::permission_denied);
  CHECK(std::get<0>(err(hot.wallet_id, send(1, kAddr), &f.admin)) == Errc::permission_denied);
  CHECK(f.w().get(f.alice, hot.wallet_id).balance_micros == 10000000);
  CHECK(f.w().get(f.alice, watch.wallet_id).balance_micros == 10000000);
  CHECK(ledger_size() == before);
}

TEST_CASE("wallets: a transfer to another wallet of the server is credited atomically - the whole balance may go") {
  Fixture f;
  Wallet a = f.make(f.alice, "a");
  Wallet b = f.make(f.bob, "b");
  Wallet b_trx = f.make(f.bob, "b-trx", "TRX", b.address);  // same address, other currency
  f.fund(a.address, "5");
  auto t = send(2000000, b.address);
  t.memo = "rent";
  t.currency = "USDT";
  WalletTransaction tx = f.w().transact(f.alice, a.wallet_id, t);
  CHECK(std::regex_match(tx.transaction_id, std::regex("[0-9a-f]{64}")));
  CHECK(tx.status == "pending");
  CHECK(tx.type == "transfer");
  CHECK(tx.amount_micros == 2000000);
  CHECK(tx.currency == "USDT");
  CHECK(tx.recipient == b.address);
  CHECK(tx.memo == "rent");
  CHECK_FALSE(tx.confirmed_at.has_value());
  CHECK(f.w().get(f.alice, a.wallet_id).balance_micros == 3000000);
  CHECK(f.w().get(f.bob, b.wallet_id).balance_micros == 2000000);
  CHECK(f.w().get(f.bob, b_trx.wallet_id).balance_micros == 0);
  // Bob's wallet can spend what it received.
  f.w().transact(f.bob, b.wallet_id, send(2000000, kAddr, "payment"));
  CHECK(f.w().get(f.bob, b.wallet_id).balance_micros == 0);
  // An external recipient: debited only. Exactly the balance is allowed; one micro more is not.
  CHECK(reason_of([&] { f.w().transact(f.alice, a.wallet_id, send(3000001, kAddr)); }) ==
        Reason::insufficient_balance);
  WalletTransaction all = f.w().transact(f.alice, a.wallet_id, send(3000000, kAddr, "payment"));
  CHECK(all.type == "payment");
  CHECK(all.transaction_id != tx.transaction_id);
  CHECK(f.w().get(f.alice, a.wallet_id).balance_micros == 0);
  CHECK(reason_of([&] { f.w().transact(f.alice, a.wallet_id, send(1, kAddr)); }) == Reason::insufficient_balance);
  // Each send is one ledger transaction of its type, carrying the amount.
  LedgerTransaction lt = f.cluster->ledger().transaction(tx.transaction_id);
  CHECK(lt.type == "wallet_transfer");
  CHECK(lt.payload.find("\"amount_micros\":2000000") != std::string::npos);
  CHECK(lt.payload.find("\"memo\":\"rent\"") != std::string::npos);
  CHECK(f.cluster->ledger().transaction(all.transaction_id).type == "wallet_payment");
}

TEST_CASE("wallets: trust policies: create validates name - description and each rule - ids are generated") {
  Fixture f;
  auto err = [&](const std::string& name, const std::string& desc, std::vector<TrustRule> rules) {
    return std::make_pair(code_of([&] { f.tp().create(f.alice, name, desc, rules); }),
                          field_of([&] { f.tp().create(f.alice, name, desc, rules); }));
  };
  using P = std::pair<Errc, std::string>;
  CHECK(err("", "", {}) == P{Errc::invalid_argument, "name"});
  CHECK(err(std::string(256, 'n'), "", {}) == P{Errc::invalid_argument, "name"});
  CHECK(err("n", std::string(1001, 'd'), {}) == P{Errc::invalid_argument, "description"});
  CHECK(err("n", "", std::vector<TrustRule>(101, rule("deny", "*"))) == P{Errc::invalid_argument, "rules"});
  CHECK(err("n", "", {rule("allow", "*"), rule("block", "*")}) == P{Errc::invalid_argument, "rules.1.type"});
  CHECK(err("n", "", {rule("deny", "*", "wallet.*")}) == P{Errc::invalid_argument, "rules.0.action"});
  CHECK(err("n", "", {rule("deny", "*", "*", std::string(65, 'r'))}) == P{Errc::invalid_argument, "rules.0.rule_id"});
  // Conditions are free-form (the document's string): only the bound refuses.
  CHECK(err("n", "", {rule("deny", std::string(kMaxTrustConditionChars + 1, 'c'))}) ==
        P{Errc::invalid_argument, "rules.0.condition"});
  std::int64_t total = -1;
  f.tp().list(f.alice, 1, 10, &total);
  CHECK(total == 0);

  TrustPolicy p = f.tp().create(f.alice, "limits", "small amounts only",
                                {rule("allow", "amount <= 5.5", "wallet.transaction"), rule("deny", "*", "*", "catch")});
  CHECK(std::regex_match(p.policy_id, std::regex("[0-9a-f-]{36}")));
  CHECK(p.user_id == "alice");
  CHECK(p.name == "limits");
  CHECK(p.description == "small amounts only");
  REQUIRE(p.rules.size() == 2);
  CHECK(p.rules[0].rule_id == "rule_1");
  CHECK(p.rules[0].condition == "amount <= 5.5");
  CHECK(p.rules[0].action == "wallet.transaction");
  CHECK(p.rules[1].rule_id == "catch");
  CHECK(p.rules[0].evaluated);
  CHECK(p.rules[1].evaluated);
  // 100 rules is the bound, inclusive; no rules is fine too.
  CHECK(f.tp().create(f.alice, "many", "", std::vector<TrustRule>(100, rule("allow", "*"))).rules.size() == 100);
  CHECK(f.tp().create(f.alice, "none", "", {}).rules.empty());
}

TEST_CASE("wallets: trust policies: list is the caller's own in creation order - update is the owner's only") {
  Fixture f;
  TrustPolicy p1 = f.tp().create(f.alice, "p1", "", {});
  f.tp().create(f.alice, "p2", "", {});
  f.tp().create(f.bob, "bob", "", {});
  std::int64_t total = 0;
  auto l = f.tp().list(f.alice, 1, 10, &total);
  CHECK(total == 2);
  REQUIRE(l.size() == 2);
  CHECK(l[0].name == "p1");
  CHECK(f.tp().list(f.alice, 2, 1, nullptr)[0].name == "p2");
  CHECK(f.tp().list(f.admin, 1, 10, &total).empty());
  CHECK(field_of([&] { f.tp().list(f.alice, 0, 10); }) == "page");
  CHECK(field_of([&] { f.tp().list(f.alice, 1, 101); }) == "limit");

  f.clock->advance(std::chrono::seconds(3));
  TrustPolicyUpdate u;
  u.description = "now described";
  TrustPolicy up = f.tp().update(f.alice, p1.policy_id, u);
  CHECK(up.name == "p1");
  CHECK(up.description == "now described");
  CHECK(up.updated_at > p1.updated_at);
  CHECK(up.created_at == p1.created_at);
  u = TrustPolicyUpdate{};
  u.rules = std::vector<TrustRule>{rule("deny", "currency == TRX")};
  CHECK(f.tp().update(f.alice, p1.policy_id, u).rules.at(0).rule_id == "rule_1");
  CHECK(f.tp().list(f.alice, 1, 1, nullptr).at(0).rules.at(0).condition == "currency == TRX");

  u.rules = std::vector<TrustRule>{rule("allow", "*"), rule("deny", std::string(kMaxTrustConditionChars + 1, 'x'))};
  CHECK(field_of([&] { f.tp().update(f.alice, p1.policy_id, u); }) == "rules.1.condition");
  u = TrustPolicyUpdate{};
  u.name = "";
  CHECK(field_of([&] { f.tp().update(f.alice, p1.policy_id, u); }) == "name");
  u.name = "taken over";
  CHECK(code_of([&] { f.tp().update(f.bob, p1.policy_id, u); }) == Errc::permission_denied);
  CHECK(code_of([&] { f.tp().update(f.admin, p1.policy_id, u); }) == Errc::permission_denied);
  CHECK(code_of([&] { f.tp().update(f.alice, "00000000-0000-0000-0000-000000000000", u); }) == Errc::not_found);
  CHECK(code_of([&] { f.tp().update(f.alice, "nope", u); }) == Errc::not_found);
  CHECK(f.tp().list(f.alice, 1, 1, nullptr).at(0).name == "p1");
}

TEST_CASE("wallets: trust policies: transact obeys the first matching rule of the owner's policies") {
  Fixture f;
  Wallet a = f.make(f.alice, "a");
  Wallet other = f.make(f.bob, "other");
  f.fund(a.address, "100");
  // Allow anything to bob's wallet; deny amounts above 5; otherwise no rule: allowed.
  f.tp().create(f.alice, "trusted", "", {rule("allow", "recipient == " + other.address, "wallet.transaction")});
  f.tp().create(f.alice, "cap", "", {rule("deny", "amount > 5", "*", "cap5"), rule("allow", "type == payment")});
  // Bob's policies do not apply to alice.
  f.tp().create(f.bob, "deny all", "", {rule("deny", "*")});

  CHECK_NOTHROW(f.w().transact(f.alice, a.wallet_id, send(20000000, other.address)));
  CHECK(code_of([&] { f.w().transact(f.alice, a.wallet_id, send(5000001, kAddr)); }) == Errc::permission_denied);
  try {
    f.w().transact(f.alice, a.wallet_id, send(6000000, kAddr));
    FAIL("not denied");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("cap5") != std::string::npos);
  }
  CHECK_NOTHROW(f.w().transact(f.alice, a.wallet_id, send(5000000, kAddr)));
  // The first matching rule decides: a payment above 5 is still denied by cap5.
  CHECK(code_of([&] { f.w().transact(f.alice, a.wallet_id, send(5000001, kAddr, "payment")); }) ==
        Errc::permission_denied);
  CHECK_NOTHROW(f.w().transact(f.alice, a.wallet_id, send(1000000, kAddr, "payment")));
  CHECK(f.w().get(f.alice, a.wallet_id).balance_micros == 100000000 - 20000000 - 5000000 - 1000000);
  // Bob is denied by his own policy even with a balance.
  CHECK(code_of([&] { f.w().transact(f.bob, other.wallet_id, send(1, kAddr)); }) == Errc::permission_denied);
  CHECK(f.w().get(f.bob, other.wallet_id).balance_micros == 20000000);
  // A denial is checked before the balance: an unaffordable denied send is permission_denied.
  CHECK(code_of([&] { f.w().transact(f.alice, a.wallet_id, send(900000000, kAddr)); }) == Errc::permission_denied);
}

TEST_CASE("wallets: trust policies: free-form conditions are stored - only the grammar's are evaluated") {
  for (std::string cond : {"*", "amount > 5", "amount <= 5.5", "recipient == T1", "currency != TRX", "type == payment"}) {
    CAPTURE(cond);
    CHECK(trust_condition_evaluated(cond));
  }
  for (std::string cond : {"", "amount", "amount >", "amount > ", "amount ~ 5", "amount > -1", "amount > abc",
                           "recipient < x", "colour == red", "amount  > 5", "type == a b", "time of day < 18:00"}) {
    CAPTURE(cond);
    CHECK_FALSE(trust_condition_evaluated(cond));
  }
  Fixture f;
  Wallet a = f.make(f.alice, "a");
  f.fund(a.address, "100");
  // An unevaluated deny rule never matches: it does not deny, and it does not
  // stop the rules after it from deciding.
  TrustPolicy p = f.tp().create(f.alice, "mixed", "",
                                {rule("deny", "time of day > 18:00", "*", "night"), rule("deny", "amount > 5", "*", "cap")});
  REQUIRE(p.rules.size() == 2);
  CHECK(p.rules[0].condition == "time of day > 18:00");
  CHECK_FALSE(p.rules[0].evaluated);
  CHECK(p.rules[1].evaluated);
  CHECK_NOTHROW(f.w().transact(f.alice, a.wallet_id, send(1000000, kAddr)));
  CHECK(code_of([&] { f.w().transact(f.alice, a.wallet_id, send(6000000, kAddr)); }) == Errc::permission_denied);
  // Read back (list): `evaluated` is derived again, and a UTF-8 condition at
  // the bound (in characters) is kept whole.
  const std::string wide = [] { std::string s; for (std::size_t i = 0; i < kMaxTrustConditionChars; ++i) s += "\xc3\xa9"; return s; }();
  f.tp().create(f.alice, "wide", "", {rule("allow", wide)});
  auto l = f.tp().list(f.alice, 1, 10, nullptr);
  REQUIRE(l.size() == 2);
  CHECK_FALSE(l[0].rules[0].evaluated);
  CHECK(l[0].rules[1].evaluated);
  CHECK(l[1].rules[0].condition == wide);
}

TEST_CASE("wallets: concurrent sends never overdraw") {
  Fixture f;
  Wallet a = f.make(f.alice, "a");
  Wallet b = f.make(f.alice, "b");
  f.fund(a.address, "7");
  constexpr int kThreads = 6, kEach = 3;  // 18 attempts of 1 against 7
  std::atomic<int> ok{0}, broke{0}, other{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        try {
          f.w().transact(f.alice, a.wallet_id, send(1000000, b.address));
          ++ok;
        } catch (const Error& e) {
          (e.reason() == Reason::insufficient_balance ? broke : other)++;
        }
      }
    });
  for (auto& t : ts) t.join();
  CHECK(ok.load() == 7);
  CHECK(broke.load() == 11);
  CHECK(other.load() == 0);
  CHECK(f.w().get(f.alice, a.wallet_id).balance_micros == 0);
  CHECK(f.w().get(f.alice, b.wallet_id).balance_micros == 7000000);
}

TEST_CASE("wallets: wallets - balances and policies persist across reopen - the key still signs") {
  Fixture f;
  Wallet a = f.make(f.alice, "a");
  Wallet w = f.make(f.alice, "watch", "TRX", kAddr);
  f.fund(a.address, "3");
  f.w().transact(f.alice, a.wallet_id, send(1000000, kAddr));
  TrustPolicy p = f.tp().create(f.alice, "keep", "d", {rule("deny", "amount > 1")});
  f.open();
  Wallet g = f.w().get(f.alice, a.wallet_id);
  CHECK(g.custodial);
  CHECK(g.address == a.address);
  CHECK(g.balance_micros == 2000000);
  CHECK_FALSE(f.w().get(f.alice, w.wallet_id).custodial);
  auto l = f.tp().list(f.alice, 1, 10, nullptr);
  REQUIRE(l.size() == 1);
  CHECK(l[0].policy_id == p.policy_id);
  CHECK(l[0].rules.at(0).condition == "amount > 1");
  CHECK(code_of([&] { f.w().transact(f.alice, a.wallet_id, send(1500000, kAddr)); }) == Errc::permission_denied);
  CHECK_NOTHROW(f.w().transact(f.alice, a.wallet_id, send(1000000, kAddr)));
  CHECK(f.w().get(f.alice, a.wallet_id).balance_micros == 1000000);
  CHECK(reason_of([&] { f.make(f.bob, "dup", "TRX", kAddr); }) == Reason::already_exists);
}

TEST_CASE("wallets: a wallet key must be 32 bytes") {
  testsupport::TempDir dir;
  auto open_with = [&](const std::string& key) {
    Options o;
    o.database_path = dir.file("k.db");
    o.gateway.wallet_key = key;
    return std::make_pair(code_of([&] { Cluster c(o); }), field_of([&] { Cluster c(o); }));
  };
  CHECK(open_with(std::string(31, 'k')) == std::make_pair(Errc::invalid_argument, std::string("gateway.wallet_key")));
  CHECK(open_with(std::string(33, 'k')) == std::make_pair(Errc::invalid_argument, std::string("gateway.wallet_key")));
  CHECK(open_with(std::string(32, 'k')).second == "<none>");
  CHECK(open_with("").second == "<none>");  // no key: registration only
}

TEST_CASE("wallets: concurrent registrations of one address: exactly one wins") {
  Fixture f;
  constexpr int kThreads = 6;
  std::atomic<int> ok{0}, exists{0}, other{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      try {
        f.make(Principal{"user" + std::to_string(t), false}, "w", "USDT", kAddr);
        ++ok;
      } catch (const Error& e) {
        (e.reason() == Reason::already_exists ? exists : other)++;
      }
    });
  for (auto& t : ts) t.join();
  CHECK(ok.load() == 1);
  CHECK(exists.load() == kThreads - 1);
  CHECK(other.load() == 0);
}

TEST_CASE("wallets: concurrent transfers both ways conserve the total and never go negative") {
  Fixture f;
  Wallet a = f.make(f.alice, "a");
  Wallet b = f.make(f.bob, "b");
  f.fund(a.address, "5");
  f.fund(b.address, "5");
  std::atomic<int> other{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      const bool from_a = t % 2 == 0;
      for (int i = 0; i < 10; ++i) {
        try {
          if (from_a)
            f.w().transact(f.alice, a.wallet_id, send(1500000, b.address));
          else
            f.w().transact(f.bob, b.wallet_id, send(1500000, a.address));
        } catch (const Error& e) {
          if (e.reason() != Reason::insufficient_balance) ++other;
        }
      }
    });
  for (auto& t : ts) t.join();
  CHECK(other.load() == 0);
  const auto ba = f.w().get(f.alice, a.wallet_id).balance_micros;
  const auto bb = f.w().get(f.bob, b.wallet_id).balance_micros;
  CHECK(ba >= 0);
  CHECK(bb >= 0);
  CHECK(ba + bb == 10000000);
  CHECK((ba - 5000000) % 1500000 == 0);
}
