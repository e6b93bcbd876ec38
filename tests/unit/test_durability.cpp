// Durability of money (issue 12 item 8): the commits that move money or
// extend the ledger run with PRAGMA synchronous = FULL, everything else with
// NORMAL. Observed from inside each write transaction through the store's
// test hook.
#include <doctest/doctest.h>

#include <chrono>
#include <mutex>
#include <vector>

#include "lucidnode/lucidnode.hpp"
#include "store/store.hpp"
#include "support.hpp"

using namespace lucid;
using lucid::detail::Conn;
using lucid::detail::Store;
using lucid::detail::StoreConfig;

namespace {

int synchronous_level(Conn& c) {
  auto& q = c.stmt("PRAGMA synchronous");
  q.step();
  const int v = q.column(0).as_int();
  q.reset();
  return v;
}

constexpr int kNormal = 1;
constexpr int kFull = 2;

// The synchronous level of every write transaction committed while alive.
struct Recorder {
  static std::mutex mu;
  static std::vector<int> levels;
  Recorder() {
    std::lock_guard<std::mutex> lock(mu);
    levels.clear();
    Store::set_write_hook_for_test([](Conn& c) {
      const int v = synchronous_level(c);
      std::lock_guard<std::mutex> l(mu);
      levels.push_back(v);
    });
  }
  ~Recorder() { Store::set_write_hook_for_test(nullptr); }
  // The levels seen since the last call.
  std::vector<int> take() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<int> out;
    out.swap(levels);
    return out;
  }
};
std::mutex Recorder::mu;
std::vector<int> Recorder::levels;

bool all_are(const std::vector<int>& v, int level) {
  if (v.empty()) return false;
  for (int x : v)
    if (x != level) return false;
  return true;
}

const std::string kWallet = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t";

}  // namespace

TEST_CASE("store: write_durable runs at synchronous FULL, write at NORMAL, and FULL never leaks") {
  testsupport::TempDir dir;
  Store s(StoreConfig{dir.file("d.db")});
  CHECK(s.write([](Conn& c) { return synchronous_level(c); }) == kNormal);
  CHECK(s.write_durable([](Conn& c) { return synchronous_level(c); }) == kFull);
  CHECK(s.write([](Conn& c) { return synchronous_level(c); }) == kNormal);
  // A durable transaction that fails still leaves the writer at NORMAL.
  CHECK(testsupport::code_of([&] {
          s.write_durable([](Conn&) -> int { throw Error(Errc::conflict, "no"); });
        }) == Errc::conflict);
  CHECK(s.write([](Conn& c) { return synchronous_level(c); }) == kNormal);
  // And one that fails in SQL (a database error becomes Errc::storage).
  CHECK(testsupport::code_of([&] { s.write_durable([](Conn& c) { c.exec("SELECT * FROM no_such_table"); }); }) ==
        Errc::storage);
  CHECK(s.write([](Conn& c) { return synchronous_level(c); }) == kNormal);
  // The durable commit is a real commit.
  s.write_durable([](Conn& c) { c.exec("CREATE TABLE t(x)"); });
  CHECK(s.read([](Conn& c) {
          auto& q = c.stmt("SELECT COUNT(*) FROM sqlite_master WHERE name = 't'");
          q.step();
          return q.column(0).as_int();
        }) == 1);
}

TEST_CASE("durability: payouts, ledger, chain transactions and wallets commit at FULL, the rest at NORMAL") {
  testsupport::TempDir dir;
  Options o;
  o.database_path = dir.file("c.db");
  o.clock = std::make_shared<OffsetClock>();
  o.gateway.wallet_key = std::string(32, '\x07');
  Cluster cluster(o);  // not started: nothing runs beside the test
  Recorder rec;
  rec.take();

  // Ordinary writes: a node, a trust policy.
  NodeCreate nc;
  nc.name = "n1";
  const std::string node = cluster.nodes().create(nc).uid;
  const Principal alice{"user-alice", false};
  cluster.trust_policies().create(alice, "p", "", {});
  CHECK(all_are(rec.take(), kNormal));

  // A wallet with a generated key (its key must not vanish once its address is out).
  WalletCreate wc;
  wc.name = "w";
  wc.currency = "USDT";
  const Wallet w = cluster.wallets().create(alice, wc);
  CHECK(all_are(rec.take(), kFull));

  // A payout batch, its processing (mark + settle with the ledger rows).
  PayoutRequest pr;
  pr.node_uid = node;
  pr.amount = "5";
  pr.currency = "USDT";
  pr.wallet_address = w.address;
  CHECK(cluster.payouts().submit({"dur-1", {pr}}).created);
  CHECK(all_are(rec.take(), kFull));
  while (cluster.payouts().process() > 0) {
  }
  CHECK(all_are(rec.take(), kFull));

  // A wallet transaction spending the payout.
  WalletTransfer t;
  t.type = "transfer";
  t.amount_micros = 1000000;
  t.recipient = kWallet;
  cluster.wallets().transact(alice, w.wallet_id, t);
  CHECK(all_are(rec.take(), kFull));

  // A chain transaction, and sealing the block that holds them.
  TransactionInput in;
  in.type = "note";
  in.payload = "{}";
  cluster.ledger().append({in});
  CHECK(all_are(rec.take(), kFull));
  CHECK(!cluster.ledger().seal().empty());
  CHECK(all_are(rec.take(), kFull));

  // And back to NORMAL for the rest.
  cluster.trust_policies().create(alice, "q", "", {});
  CHECK(all_are(rec.take(), kNormal));
}
