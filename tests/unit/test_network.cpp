// lucid::Network: peer ids, the Ed25519 challenge login, token checks, blacklist.
#include <doctest/doctest.h>
#include <sodium.h>

#include "lucidnode/lucidnode.hpp"
#include "network/peer_id.hpp"
#include "support.hpp"
#include "util/encoding.hpp"

using namespace lucid;
using testsupport::code_of;

namespace {

struct Key {
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  Key() {
    REQUIRE(sodium_init() >= 0);
    crypto_sign_keypair(pk, sk);
  }
  std::string public_raw() const { return std::string(reinterpret_cast<const char*>(pk), sizeof pk); }
  std::string public_hex() const { return detail::to_hex(public_raw()); }
  std::string sign_hex(const std::string& challenge_hex) const {
    auto bytes = *detail::from_hex(challenge_hex);
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), sk);
    return detail::to_hex(std::string_view(reinterpret_cast<const char*>(sig), sizeof sig));
  }
};

struct Fixture {
  testsupport::TempDir dir;
  std::shared_ptr<OffsetClock> clock = std::make_shared<OffsetClock>();
  std::unique_ptr<Cluster> cluster;
  explicit Fixture(std::size_t max_challenges = 100000) {
    Options o;
    o.database_path = dir.file("t.db");
    o.clock = clock;
    o.network.max_challenges = max_challenges;
    cluster = std::make_unique<Cluster>(o);
  }
  Network& net() { return cluster->network(); }
};

}  // namespace

TEST_CASE("network: peer ids are libp2p PeerIDs of the key") {
  // The libp2p spec's Ed25519 test vector: key 1ed1e8fa...  -> 12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq
  const auto key = *detail::from_hex("1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e");
  CHECK(peer_id_from_public_key(key) == "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");
  CHECK(detail::public_key_from_peer_id(peer_id_from_public_key(key)) == key);
  CHECK_FALSE(detail::public_key_from_peer_id("12D3KooW"));
  CHECK_FALSE(detail::public_key_from_peer_id("0OIl"));  // not base58
  CHECK(code_of([] { peer_id_from_public_key("short"); }) == Errc::invalid_argument);
  CHECK(detail::base58_encode(std::string("\0\0\x01", 3)) == "112");
  CHECK(detail::base58_decode("112") == std::string("\0\0\x01", 3));
}

TEST_CASE("network: challenge login with an admin key") {
  Fixture f;
  Key k;
  auto added = f.net().add_key(k.public_hex(), Role::admin, "ops");
  CHECK(added.peer_id == peer_id_from_public_key(k.public_raw()));
  CHECK(code_of([&] { f.net().add_key(k.public_hex(), Role::user, ""); }) == Errc::conflict);
  CHECK(code_of([&] { f.net().add_key("zz", Role::user, ""); }) == Errc::invalid_argument);

  auto c = f.net().issue_challenge();
  CHECK(c.challenge.size() == 64);
  CHECK(c.expires_in.count() == 300);
  auto r = f.net().login(c.challenge, k.sign_hex(c.challenge), k.public_hex());
  CHECK(r.peer_id == added.peer_id);
  CHECK(r.role == Role::admin);
  auto claims = f.net().verify_token(r.token);
  CHECK(claims.subject == "peer:" + r.peer_id);
  CHECK(claims.expires_at - claims.issued_at == std::chrono::hours(24));
  // single use
  CHECK(code_of([&] { f.net().login(c.challenge, k.sign_hex(c.challenge), k.public_hex()); }) == Errc::unauthenticated);
  // the only key: public_key may be omitted
  auto c2 = f.net().issue_challenge();
  CHECK(f.net().login(c2.challenge, k.sign_hex(c2.challenge), "").peer_id == added.peer_id);
}

TEST_CASE("network: an admin-registered key keeps the role it was given (viewer too), never a node id") {
  Fixture f;
  Key k;
  CHECK(f.net().add_key(k.public_hex(), Role::viewer, "staff").role == Role::viewer);
  CHECK(f.net().keys().at(0).role == Role::viewer);
  auto c = f.net().issue_challenge();
  auto r = f.net().login(c.challenge, k.sign_hex(c.challenge), k.public_hex());
  CHECK(r.role == Role::viewer);
  CHECK(r.node_id == 0);
  auto claims = f.net().verify_token(r.token);
  CHECK(claims.role == Role::viewer);
  CHECK_FALSE(claims.is_node());
}

TEST_CASE("network: every failed attempt spends the challenge, expiry, bound") {
  Fixture f(3);
  Key k, stranger;
  f.net().add_key(k.public_hex(), Role::user, "");
  auto c = f.net().issue_challenge();
  CHECK(code_of([&] { f.net().login(c.challenge, stranger.sign_hex(c.challenge), k.public_hex()); }) == Errc::unauthenticated);
  CHECK(code_of([&] { f.net().login(c.challenge, k.sign_hex(c.challenge), k.public_hex()); }) == Errc::unauthenticated);

  auto old = f.net().issue_challenge();
  f.clock->advance(std::chrono::seconds(301));
  CHECK(code_of([&] { f.net().login(old.challenge, k.sign_hex(old.challenge), k.public_hex()); }) == Errc::unauthenticated);

  // at most 3 outstanding: the 4th drops the oldest
  auto a = f.net().issue_challenge();
  f.net().issue_challenge();
  f.net().issue_challenge();
  auto d = f.net().issue_challenge();
  CHECK(code_of([&] { f.net().login(a.challenge, k.sign_hex(a.challenge), k.public_hex()); }) == Errc::unauthenticated);
  CHECK_NOTHROW(f.net().login(d.challenge, k.sign_hex(d.challenge), k.public_hex()));
  // sweep drops expired ones (and keeps working after)
  f.clock->advance(std::chrono::seconds(400));
  f.net().sweep();
  auto e = f.net().issue_challenge();
  CHECK_NOTHROW(f.net().login(e.challenge, k.sign_hex(e.challenge), k.public_hex()));
}

TEST_CASE("network: blacklist refuses login and issued tokens, removal restores") {
  Fixture f;
  Key k;
  f.net().add_key(k.public_hex(), Role::admin, "");
  auto c = f.net().issue_challenge();
  auto r = f.net().login(c.challenge, k.sign_hex(c.challenge), k.public_hex());
  f.net().add_to_blacklist(r.peer_id, "");
  CHECK(f.net().is_blacklisted(r.peer_id));
  CHECK(f.net().blacklist().at(0).reason == "Manually blacklisted");
  CHECK(code_of([&] { f.net().verify_token(r.token); }) == Errc::unauthenticated);
  auto c2 = f.net().issue_challenge();
  CHECK(code_of([&] { f.net().login(c2.challenge, k.sign_hex(c2.challenge), k.public_hex()); }) == Errc::unauthenticated);
  f.net().remove_from_blacklist(r.peer_id);
  CHECK_NOTHROW(f.net().verify_token(r.token));
  CHECK(code_of([&] { f.net().remove_from_blacklist(r.peer_id); }) == Errc::not_found);
  CHECK(code_of([&] { f.net().add_to_blacklist("", ""); }) == Errc::invalid_argument);
  // removing the key revokes its tokens
  f.net().remove_key(k.public_hex());
  CHECK(code_of([&] { f.net().verify_token(r.token); }) == Errc::unauthenticated);
  // the blacklist survives a restart (reloaded from the database)
  f.net().add_to_blacklist("12D3KooWpersist", "x");
  f.cluster->restart();
  CHECK(f.net().is_blacklisted("12D3KooWpersist"));
}

TEST_CASE("network: relay modes are refused outside them") {
  Fixture f;
  CHECK(code_of([&] { f.net().relay_sessions(); }) == Errc::permission_denied);
  CHECK(code_of([&] { f.net().relay_candidates(); }) == Errc::permission_denied);
  CHECK(code_of([&] { f.net().connect_relay("x"); }) == Errc::permission_denied);
  CHECK(f.net().status().peer_id.rfind("12D3KooW", 0) == 0);
}

TEST_CASE("network: system capabilities are measured") {
  auto c = probe_system(".");
  CHECK(c.platform == "linux");
  CHECK(c.cpu_threads >= 1);
  CHECK(c.cpu_cores >= 1);
  CHECK(c.total_memory_mb > 0);
  CHECK(c.total_disk_mb > 0);
  CHECK(capabilities_json(c).find("\"cpu_threads\":") != std::string::npos);
}

TEST_CASE("network: per-client challenge cap drops that client's own oldest, not others' (issue 12)") {
  testsupport::TempDir dir;
  Options o;
  o.database_path = dir.file("t.db");
  o.network.max_challenges = 4;
  o.network.max_challenges_per_client = 2;
  Cluster cluster(o);
  auto& net = cluster.network();
  Key k;
  net.add_key(k.public_hex(), Role::user, "");
  const auto login = [&](const Challenge& c) { net.login(c.challenge, k.sign_hex(c.challenge), k.public_hex()); };
  auto theirs = net.issue_challenge("10.0.0.2");
  std::vector<Challenge> mine;
  for (int i = 0; i < 10; ++i) mine.push_back(net.issue_challenge("10.0.0.1"));
  CHECK_NOTHROW(login(theirs));  // not evicted by 10.0.0.1's flood
  CHECK(code_of([&] { login(mine[0]); }) == Errc::unauthenticated);  // its own oldest went
  CHECK(code_of([&] { login(mine[7]); }) == Errc::unauthenticated);
  CHECK_NOTHROW(login(mine[8]));
  CHECK_NOTHROW(login(mine[9]));
  // A consumed challenge frees the client's slot (two more, both valid).
  auto a = net.issue_challenge("10.0.0.1");
  auto b = net.issue_challenge("10.0.0.1");
  CHECK_NOTHROW(login(a));
  CHECK_NOTHROW(login(b));
  // Unknown client (""): only the global bound applies.
  std::vector<Challenge> anon;
  for (int i = 0; i < 4; ++i) anon.push_back(net.issue_challenge());
  CHECK_NOTHROW(login(anon[0]));
  o.network.max_challenges_per_client = 0;
  CHECK(code_of([&] { Cluster bad(o); }) == Errc::invalid_argument);
}

TEST_CASE("network: login without public_key among several keys (issue 18)") {
  Fixture f;
  Key viewer, admin, other_admin, stranger;
  f.net().add_key(viewer.public_hex(), Role::viewer, "v");
  f.net().add_key(admin.public_hex(), Role::admin, "a");
  f.net().add_key(other_admin.public_hex(), Role::super_admin, "s");
  for (const Key* k : {&viewer, &admin, &other_admin}) {
    auto c = f.net().issue_challenge();
    auto r = f.net().login(c.challenge, k->sign_hex(c.challenge), "");
    CHECK(r.peer_id == peer_id_from_public_key(k->public_raw()));
    CHECK(f.net().verify_token(r.token).subject == "peer:" + r.peer_id);
  }
  auto c = f.net().issue_challenge();
  CHECK(f.net().login(c.challenge, viewer.sign_hex(c.challenge), "").role == Role::viewer);
  // an unregistered key, a signature over something else: refused, the challenge spent
  c = f.net().issue_challenge();
  CHECK(code_of([&] { f.net().login(c.challenge, stranger.sign_hex(c.challenge), ""); }) == Errc::unauthenticated);
  CHECK(code_of([&] { f.net().login(c.challenge, admin.sign_hex(c.challenge), ""); }) == Errc::unauthenticated);
  c = f.net().issue_challenge();
  auto other = f.net().issue_challenge();
  CHECK(code_of([&] { f.net().login(c.challenge, admin.sign_hex(other.challenge), ""); }) == Errc::unauthenticated);
  // a blacklisted peer's key verifies but is refused
  f.net().add_to_blacklist(peer_id_from_public_key(admin.public_raw()), "");
  c = f.net().issue_challenge();
  CHECK(code_of([&] { f.net().login(c.challenge, admin.sign_hex(c.challenge), ""); }) == Errc::unauthenticated);
}

TEST_CASE("network: which peer ids are this node (issue 18)") {
  Fixture f;
  Key admin;
  const auto added = f.net().add_key(admin.public_hex(), Role::admin, "a");
  CHECK(f.net().is_local_peer(""));
  CHECK(f.net().is_local_peer(Network::kLocalPeerMarker));
  CHECK(f.net().is_local_peer(f.net().self_peer_id()));
  CHECK(f.net().is_local_peer(added.peer_id));
  Key stranger;
  CHECK_FALSE(f.net().is_local_peer(peer_id_from_public_key(stranger.public_raw())));
  CHECK_FALSE(f.net().is_local_peer("LOCAL"));
  CHECK_FALSE(f.net().is_local_peer(std::string(300, 'x')));
  f.net().remove_key(admin.public_hex());
  CHECK_FALSE(f.net().is_local_peer(added.peer_id));
}
