#include <doctest/doctest.h>
#include <sodium.h>

#include <cstring>
#include <random>

#include "db_tamper.hpp"
#include "ledger/ledger_format.hpp"
#include "ledger/merkle.hpp"
#include "lucidnode/lucidnode.hpp"
#include "support.hpp"
#include "util/encoding.hpp"

using namespace lucid;
using testsupport::code_of;
using testsupport::field_of;

namespace {

// ---- an independent SHA-256 (libsodium) and Merkle tree, straight from the
// recursive definition in docs/merkle.md ----

using H = std::array<unsigned char, 32>;

H ref_sha256(const std::string& bytes) {
  H h{};
  crypto_hash_sha256(h.data(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return h;
}

std::string raw(const H& h) { return std::string(reinterpret_cast<const char*>(h.data()), h.size()); }

H ref_leaf(const std::string& data) { return ref_sha256(std::string(1, '\0') + data); }
H ref_node(const H& l, const H& r) { return ref_sha256(std::string(1, '\1') + raw(l) + raw(r)); }

H ref_root(const std::vector<H>& leaves, std::size_t lo, std::size_t hi) {
  const std::size_t n = hi - lo;
  if (n == 0) return ref_sha256("");
  if (n == 1) return leaves[lo];
  std::size_t k = 1;
  while (k * 2 < n) k *= 2;
  return ref_node(ref_root(leaves, lo, lo + k), ref_root(leaves, lo + k, hi));
}
H ref_root(const std::vector<H>& leaves) { return ref_root(leaves, 0, leaves.size()); }

std::string hexs(const H& h) { return detail::to_hex(raw(h)); }

std::string from_hex(const std::string& hex) { return *detail::from_hex(hex); }

std::vector<H> leaves_of(std::size_t n) {
  std::vector<H> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(ref_leaf("leaf " + std::to_string(i)));
  return out;
}

// ---- the canonical formats, written out by hand from docs/ledger.md ----

std::string be(std::uint64_t v, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}

std::int64_t us_of(Timestamp t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

H ref_tx_hash(const LedgerTransaction& t) {
  const std::string bytes = std::string("LTX\x01", 4) + be(t.type.size(), 1) + t.type + be(t.ref.size(), 2) + t.ref +
                            be(static_cast<std::uint64_t>(us_of(t.timestamp)), 8) + be(t.payload.size(), 4) + t.payload;
  return ref_leaf(bytes);
}

H ref_block_hash(const Block& b) {
  const std::string header = std::string("LBK\x01", 4) + be(static_cast<std::uint64_t>(b.height), 8) +
                             from_hex(b.previous_hash) + from_hex(b.merkle_root) +
                             be(static_cast<std::uint64_t>(us_of(b.timestamp)), 8) +
                             be(static_cast<std::uint64_t>(b.tx_count), 8);
  return ref_sha256(std::string(1, '\2') + header);
}

struct Fixture {
  testsupport::TempDir dir;
  std::shared_ptr<OffsetClock> clock = std::make_shared<OffsetClock>();
  std::unique_ptr<Cluster> cluster;
  explicit Fixture(std::function<void(Options&)> tweak = {}) { open(std::move(tweak)); }
  void open(std::function<void(Options&)> tweak = {}, bool read_only = false) {
    cluster.reset();
    Options o;
    o.database_path = dir.file("l.db");
    o.clock = clock;
    o.read_only = read_only;
    if (tweak) tweak(o);
    cluster = std::make_unique<Cluster>(o);
  }
  Ledger& ledger() { return cluster->ledger(); }
  // Direct SQL on the database file, as someone with file access could.
  void sql(const std::string& statement) {
    testsupport::db_exec(dir.file("l.db"), statement);
  }
  std::vector<std::string> append_n(int n, const std::string& tag) {
    std::vector<TransactionInput> in;
    for (int i = 0; i < n; ++i) in.push_back({"payout", tag + "-" + std::to_string(i), "{\"n\":" + std::to_string(i) + "}"});
    return ledger().append(in);
  }
};

}  // namespace

// ---------------------------------------------------------------- merkle

TEST_CASE("merkle: RFC 6962 reference vectors (Certificate Transparency's test tree)") {
  // Leaves and roots from RFC 6962's reference implementation tests: the same
  // tree, so the same roots, byte for byte.
  const std::vector<std::string> data = {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f"};
  const std::vector<std::string> roots = {
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
      "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
      "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
      "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
      "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
      "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
  std::vector<std::string> bytes;
  for (const auto& d : data) bytes.push_back(from_hex(d));
  for (std::size_t n = 1; n <= data.size(); ++n) {
    CAPTURE(n);
    std::vector<std::string_view> views(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK(hexs(merkle::root_of(views)) == roots[n - 1]);
  }
  CHECK(hexs(merkle::empty_root()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hexs(merkle::root({})) == hexs(merkle::empty_root()));
}

TEST_CASE("merkle: leaf and node hashes use the 0x00 / 0x01 prefixes") {
  CHECK(merkle::leaf_hash("abc") == ref_sha256(std::string("\0abc", 4)));
  const H a = ref_leaf("a"), b = ref_leaf("b");
  CHECK(merkle::node_hash(a, b) == ref_sha256("\1" + raw(a) + raw(b)));
  // Domain separation: a leaf whose data is two hashes is not the node over them.
  CHECK(merkle::leaf_hash(raw(a) + raw(b)) != merkle::node_hash(a, b));
}

TEST_CASE("merkle: root equals the recursive definition for every size 0..300") {
  const auto leaves = leaves_of(300);
  for (std::size_t n = 0; n <= leaves.size(); ++n) {
    CAPTURE(n);
    std::vector<H> part(leaves.begin(), leaves.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK(merkle::root(part) == ref_root(part));
  }
}

TEST_CASE("merkle: the odd node is not duplicated (no CVE-2012-2459 collision)") {
  const auto l = leaves_of(3);
  // Bitcoin's rule would make [a, b, c] and [a, b, c, c] share a root.
  const std::vector<H> three = {l[0], l[1], l[2]};
  const std::vector<H> four = {l[0], l[1], l[2], l[2]};
  CHECK(merkle::root(three) != merkle::root(four));
  CHECK(merkle::root(three) == ref_node(ref_node(l[0], l[1]), l[2]));
  const std::vector<H> one = {l[0]};
  CHECK(merkle::root(one) == l[0]);
}

TEST_CASE("merkle: inclusion proofs verify for every leaf, and only for it") {
  const auto all = leaves_of(70);
  for (std::size_t n : {1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 33, 70}) {
    std::vector<H> leaves(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
    const H root = merkle::root(leaves);
    for (std::size_t i = 0; i < n; ++i) {
      CAPTURE(n);
      CAPTURE(i);
      auto proof = merkle::inclusion_proof(leaves, i);
      CHECK(merkle::verify_inclusion(leaves[i], i, n, proof, root));
      if (n > 1) {
        CHECK_FALSE(merkle::verify_inclusion(leaves[(i + 1) % n], i, n, proof, root));
        CHECK_FALSE(merkle::verify_inclusion(leaves[i], (i + 1) % n, n, proof, root));
        // The size is bound only through the path's shape: a one-leaf tree takes no path.
        CHECK_FALSE(merkle::verify_inclusion(leaves[i], 0, 1, proof, root));
        proof[0][0] ^= 1;
        CHECK_FALSE(merkle::verify_inclusion(leaves[i], i, n, proof, root));
        proof[0][0] ^= 1;
        auto longer = proof;
        longer.push_back(root);
        CHECK_FALSE(merkle::verify_inclusion(leaves[i], i, n, longer, root));
      } else {
        CHECK(proof.empty());
      }
    }
  }
  CHECK(code_of([&] { merkle::inclusion_proof(all, 70); }) == Errc::invalid_argument);
  CHECK_FALSE(merkle::verify_inclusion(all[0], 3, 3, {}, all[0]));
}

// ---------------------------------------------------------------- ledger

TEST_CASE("ledger: a new database has a genesis block and verifies") {
  Fixture f;
  const auto info = f.ledger().info();
  CHECK(info.height == 0);
  CHECK(info.blocks == 1);
  CHECK(info.transactions == 0);
  CHECK(info.pending == 0);
  CHECK(info.genesis_hash == info.head_hash);
  const Block g = f.ledger().block_at(0);
  CHECK(g.previous_hash == std::string(64, '0'));
  CHECK(g.merkle_root == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(g.hash == hexs(ref_block_hash(g)));
  auto rep = f.ledger().verify();
  CHECK(rep.ok);
  CHECK(rep.blocks == 1);
  // Reopening does not make a second genesis.
  f.open();
  CHECK(f.ledger().block_at(0).hash == g.hash);
  CHECK(f.ledger().info().blocks == 1);
}

TEST_CASE("ledger: transactions and blocks match the documented byte formats") {
  Fixture f;
  const auto hashes = f.ledger().append({{"payout", "p-1", "{\"a\":1}"}, {"payout", "", "no ref"}, {"anchor_x", "p-3", ""}});
  REQUIRE(hashes.size() == 3);
  for (const auto& h : hashes) {
    const auto t = f.ledger().transaction(h);
    CHECK(t.status == TxStatus::pending);
    CHECK_FALSE(t.block_height);
    CHECK(hexs(ref_tx_hash(t)) == h);
  }
  CHECK(f.ledger().info().pending == 3);
  const auto sealed = f.ledger().seal();
  REQUIRE(sealed.size() == 1);
  const Block b = sealed[0];
  CHECK(b.height == 1);
  CHECK(b.tx_count == 3);
  CHECK(b.previous_hash == f.ledger().block_at(0).hash);
  std::vector<H> leaves;
  for (const auto& h : hashes) {
    H x{};
    std::memcpy(x.data(), from_hex(h).data(), 32);
    leaves.push_back(x);
  }
  CHECK(b.merkle_root == hexs(ref_root(leaves)));
  CHECK(b.hash == hexs(ref_block_hash(b)));
  CHECK(f.ledger().block_by_hash(b.hash).height == 1);
  auto upper = b.hash;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  CHECK(f.ledger().block_by_hash(upper).height == 1);
  const auto txs = f.ledger().block_transactions(1);
  REQUIRE(txs.size() == 3);
  for (std::size_t i = 0; i < txs.size(); ++i) {
    CHECK(txs[i].hash == hashes[i]);
    CHECK(txs[i].index == static_cast<std::int64_t>(i));
    CHECK(txs[i].status == TxStatus::confirmed);
  }
  CHECK(txs[1].ref.empty());
  CHECK(f.ledger().transaction(hashes[2]).index == 2);
  CHECK(f.ledger().find_by_ref("p-1")->hash == hashes[0]);
  CHECK_FALSE(f.ledger().find_by_ref("nope"));
  CHECK(f.ledger().seal().empty());  // nothing pending: no empty block
  CHECK(f.ledger().info().height == 1);
}

TEST_CASE("ledger: inclusion proofs of confirmed transactions") {
  Fixture f;
  const auto hashes = f.append_n(11, "proof");
  CHECK(code_of([&] { f.ledger().prove(hashes[0]); }) == Errc::conflict);
  f.ledger().seal();
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    const auto p = f.ledger().prove(hashes[i]);
    CHECK(p.index == static_cast<std::int64_t>(i));
    CHECK(p.tx_count == 11);
    std::vector<merkle::Hash> path;
    for (const auto& s : p.path) {
      merkle::Hash h{};
      std::memcpy(h.data(), from_hex(s).data(), 32);
      path.push_back(h);
    }
    merkle::Hash leaf{}, root{};
    std::memcpy(leaf.data(), from_hex(p.tx_hash).data(), 32);
    std::memcpy(root.data(), from_hex(p.merkle_root).data(), 32);
    CHECK(merkle::verify_inclusion(leaf, i, 11, path, root));
  }
  CHECK(code_of([&] { f.ledger().prove(std::string(64, 'a')); }) == Errc::not_found);
}

TEST_CASE("ledger: append errors") {
  Fixture f;
  f.ledger().append({{"payout", "taken", "x"}});
  struct Case {
    TransactionInput in;
    Errc code;
    std::string field;
  };
  const std::vector<Case> cases = {
      {{"", "r", "x"}, Errc::invalid_argument, "transactions.0.type"},
      {{"Payout", "r", "x"}, Errc::invalid_argument, "transactions.0.type"},
      {{"9lives", "r", "x"}, Errc::invalid_argument, "transactions.0.type"},
      {{std::string(33, 'a'), "r", "x"}, Errc::invalid_argument, "transactions.0.type"},
      {{"payout", std::string(129, 'r'), "x"}, Errc::invalid_argument, "transactions.0.ref"},
      {{"payout", "a\nb", "x"}, Errc::invalid_argument, "transactions.0.ref"},
      {{"payout", "r", std::string(1024 * 1024 + 1, 'x')}, Errc::invalid_argument, "transactions.0.payload"},
      {{"payout", "taken", "y"}, Errc::conflict, "<none>"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.field);
    CHECK(code_of([&] { f.ledger().append({c.in}); }) == c.code);
    if (c.code == Errc::invalid_argument) CHECK(field_of([&] { f.ledger().append({c.in}); }) == c.field);
  }
  // A repeated ref in one call, and a conflict in the middle of a call, append nothing.
  CHECK(code_of([&] { f.ledger().append({{"payout", "d", "1"}, {"payout", "d", "2"}}); }) == Errc::conflict);
  CHECK(code_of([&] { f.ledger().append({{"payout", "new", "1"}, {"payout", "taken", "2"}}); }) == Errc::conflict);
  CHECK_FALSE(f.ledger().find_by_ref("new"));
  CHECK(f.ledger().info().pending == 1);
}

TEST_CASE("ledger: blocks hold at most kMaxBlockTransactions, oldest first") {
  Fixture f;
  const auto n = static_cast<int>(Ledger::kMaxBlockTransactions) + 5;
  const auto hashes = f.append_n(n, "big");
  const auto blocks = f.ledger().seal();
  REQUIRE(blocks.size() == 2);
  CHECK(blocks[0].tx_count == Ledger::kMaxBlockTransactions);
  CHECK(blocks[1].tx_count == 5);
  CHECK(f.ledger().block_transactions(2)[0].hash == hashes[static_cast<std::size_t>(Ledger::kMaxBlockTransactions)]);
  std::int64_t total = 0;
  const auto page = f.ledger().blocks(1, 2, &total);
  CHECK(total == 3);
  REQUIRE(page.size() == 2);
  CHECK(page[0].height == 2);  // newest first
  CHECK(page[1].height == 1);
  CHECK(f.ledger().blocks(2, 2).at(0).height == 0);
  CHECK(field_of([&] { f.ledger().blocks(0, 2); }) == "page");
  CHECK(field_of([&] { f.ledger().blocks(1, 101); }) == "limit");
  const auto rep = f.ledger().verify();
  CHECK(rep.ok);
  CHECK(rep.blocks == 3);
  CHECK(rep.transactions == n);
}

TEST_CASE("ledger: block timestamps never go backwards") {
  Fixture f;
  f.append_n(1, "t1");
  const Block b1 = f.ledger().seal().at(0);
  f.clock->advance(-std::chrono::hours(1));
  f.append_n(1, "t2");
  const Block b2 = f.ledger().seal().at(0);
  CHECK(b2.timestamp == b1.timestamp);
  CHECK(f.ledger().verify().ok);
}

TEST_CASE("ledger: lookups of unknown things are not_found") {
  Fixture f;
  CHECK(code_of([&] { f.ledger().block_at(5); }) == Errc::not_found);
  CHECK(code_of([&] { f.ledger().block_by_hash("zz"); }) == Errc::not_found);
  CHECK(code_of([&] { f.ledger().block_by_hash(std::string(64, 'g')); }) == Errc::not_found);
  CHECK(code_of([&] { f.ledger().block_by_hash(std::string(64, '0')); }) == Errc::not_found);
  CHECK(code_of([&] { f.ledger().transaction("abc"); }) == Errc::not_found);
  CHECK(code_of([&] { f.ledger().block_transactions(9); }) == Errc::not_found);
}

TEST_CASE("ledger: verify names the first broken block and what broke") {
  struct Case {
    const char* name;
    const char* sql;  // applied to a ledger of blocks 1..3 (4 txs each) plus 2 pending
    std::optional<std::int64_t> height;
    const char* problem;
  };
  const std::vector<Case> cases = {
      {"payload edited", "UPDATE ledger_transactions SET payload = '{\"n\":99}' WHERE ref = 'b2-1'", 2,
       "does not match its content"},
      {"stored tx hash edited", "UPDATE ledger_transactions SET hash = randomblob(32) WHERE ref = 'b3-0'", 3,
       "does not match its content"},
      {"tx timestamp edited", "UPDATE ledger_transactions SET timestamp_us = timestamp_us + 1 WHERE ref = 'b1-3'", 1,
       "does not match its content"},
      {"tx removed", "DELETE FROM ledger_transactions WHERE ref = 'b2-2'", 2, "holds 3 transactions"},
      {"tx moved to another block", "UPDATE ledger_transactions SET block_height = 3 WHERE ref = 'b2-3'", 2,
       "holds 3 transactions"},
      {"merkle root edited", "UPDATE ledger_blocks SET merkle_root = randomblob(32) WHERE height = 2", 2,
       "hash does not match its header"},
      {"block hash edited", "UPDATE ledger_blocks SET hash = randomblob(32) WHERE height = 1", 1,
       "hash does not match its header"},
      {"tx_count edited", "UPDATE ledger_blocks SET tx_count = 5 WHERE height = 3", 3, "hash does not match its header"},
      {"block removed", "DELETE FROM ledger_blocks WHERE height = 2", 2, "block 2 is missing"},
      {"genesis edited", "UPDATE ledger_blocks SET timestamp_us = timestamp_us + 1 WHERE height = 0", 0,
       "hash does not match its header"},
      {"pending tx edited", "UPDATE ledger_transactions SET payload = 'x' WHERE ref = 'p-0'", std::nullopt,
       "pending transaction"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    Fixture f;
    for (int b = 1; b <= 3; ++b) {
      f.append_n(4, "b" + std::to_string(b));
      f.ledger().seal();
    }
    f.append_n(2, "p");
    REQUIRE(f.ledger().verify().ok);
    f.sql(c.sql);
    const auto rep = f.ledger().verify();
    CHECK_FALSE(rep.ok);
    CHECK(rep.broken_height == c.height);
    CHECK(rep.problem.find(c.problem) != std::string::npos);
    if (c.height && std::string(c.name) != "block removed") CHECK(rep.broken_hash.size() == 64);
  }
}

TEST_CASE("ledger: a block rewritten consistently breaks the link of the next one") {
  Fixture f;
  for (int b = 1; b <= 2; ++b) {
    f.append_n(2, "b" + std::to_string(b));
    f.ledger().seal();
  }
  // Someone rewrites block 1 with a self-consistent header: its own hash
  // checks out, block 2's previous_hash does not.
  Block b1 = f.ledger().block_at(1);
  b1.timestamp += std::chrono::seconds(1);
  const std::string fake = hexs(ref_block_hash(b1));
  f.sql("UPDATE ledger_blocks SET timestamp_us = timestamp_us + 1000000, hash = X'" + fake + "' WHERE height = 1");
  const auto rep = f.ledger().verify();
  CHECK_FALSE(rep.ok);
  CHECK(rep.broken_height == 2);
  CHECK(rep.problem.find("previous_hash") != std::string::npos);
}

TEST_CASE("ledger: verify works on a read-only open") {
  Fixture f;
  f.append_n(3, "ro");
  f.ledger().seal();
  f.open({}, true);
  const auto rep = f.ledger().verify();
  CHECK(rep.ok);
  CHECK(rep.blocks == 2);
  CHECK(rep.transactions == 3);
  CHECK(code_of([&] { f.ledger().append({{"payout", "w", "x"}}); }) == Errc::storage);
}

TEST_CASE("ledger: a large ledger is verified in parallel runs and still names the first broken block") {
  // 30,005 transactions: blocks 1..3 full, block 4 with 5, and 7 pending;
  // large enough for verify() to split the blocks across threads.
  Fixture f;
  const auto per = static_cast<int>(Ledger::kMaxBlockTransactions);
  for (int b = 1; b <= 3; ++b) f.append_n(per, "b" + std::to_string(b));
  f.append_n(5, "b4");
  f.ledger().seal();
  f.append_n(7, "p");
  auto rep = f.ledger().verify();
  CHECK(rep.ok);
  CHECK(rep.blocks == 5);
  CHECK(rep.transactions == 3 * per + 5);
  CHECK(rep.pending == 7);

  f.sql("UPDATE ledger_transactions SET payload = 'x' WHERE ref = 'b4-2'");
  rep = f.ledger().verify();
  CHECK(rep.broken_height == 4);
  CHECK(rep.problem.find("does not match its content") != std::string::npos);
  CHECK(rep.problem.find("index 2 of block 4") != std::string::npos);

  f.sql("UPDATE ledger_transactions SET payload = 'x' WHERE ref = 'b1-9999'");
  rep = f.ledger().verify();
  CHECK(rep.broken_height == 1);  // the lower of the two, whichever thread saw it

  f.sql("UPDATE ledger_transactions SET payload = '{\"n\":9999}' WHERE ref = 'b1-9999'");
  f.sql("UPDATE ledger_transactions SET payload = '{\"n\":2}' WHERE ref = 'b4-2'");
  REQUIRE(f.ledger().verify().ok);
  f.sql("UPDATE ledger_transactions SET ref = 'q' WHERE ref = 'p-3'");
  rep = f.ledger().verify();
  CHECK_FALSE(rep.ok);
  CHECK_FALSE(rep.broken_height);
  CHECK(rep.problem.find("pending transaction") != std::string::npos);

  f.sql("UPDATE ledger_transactions SET ref = 'p-3' WHERE ref = 'q'");
  f.sql("UPDATE ledger_blocks SET tx_count = 10001 WHERE height = 2");
  rep = f.ledger().verify();
  CHECK(rep.broken_height == 2);
  CHECK(rep.problem.find("hash does not match its header") != std::string::npos);
}
