// Issue 14: the client's server list (lucidctl / agent failover) and the
// server's trusted-proxy ranges and X-Forwarded-For resolution.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "client.hpp"
#include "http/http_server.hpp"

using lucid::http::AddressRange;
using lucid::http::forwarded_client;

namespace {

std::vector<AddressRange> ranges(std::initializer_list<const char*> texts) {
  std::vector<AddressRange> out;
  for (const char* t : texts) {
    auto r = AddressRange::parse(t);
    REQUIRE_MESSAGE(r.has_value(), t);
    out.push_back(*r);
  }
  return out;
}

std::string client(std::vector<std::string_view> values, const std::vector<AddressRange>& trusted) {
  const auto a = forwarded_client(values, trusted);
  return a ? a->to_string() : "-";
}

asio::ip::address ip(const char* text) { return asio::ip::make_address(text); }

}  // namespace

TEST_CASE("failover: AddressRange parses CIDR text and refuses the malformed") {
  auto r = AddressRange::parse("10.0.0.0/8");
  REQUIRE(r);
  CHECK(r->contains(ip("10.200.3.4")));
  CHECK_FALSE(r->contains(ip("11.0.0.1")));
  CHECK(r->contains(ip("::ffff:10.1.2.3")));  // IPv4-mapped matches as IPv4
  CHECK_FALSE(r->contains(ip("::1")));
  r = AddressRange::parse("127.0.0.1");
  REQUIRE(r);
  CHECK(r->prefix == 32);
  CHECK(r->contains(ip("127.0.0.1")));
  CHECK_FALSE(r->contains(ip("127.0.0.2")));
  r = AddressRange::parse("2001:db8::/33");
  REQUIRE(r);
  CHECK(r->contains(ip("2001:db8:7fff::1")));
  CHECK_FALSE(r->contains(ip("2001:db8:8000::1")));
  CHECK_FALSE(r->contains(ip("10.0.0.1")));
  r = AddressRange::parse("0.0.0.0/0");
  REQUIRE(r);
  CHECK(r->contains(ip("203.0.113.9")));
  r = AddressRange::parse("192.168.1.77/24");  // host bits ignored
  REQUIRE(r);
  CHECK(r->contains(ip("192.168.1.1")));
  for (const char* bad : {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/-1", "host.example",
                          "10.0.0.0/0008", "10.0.0.256", "/8"})
    CHECK_MESSAGE(!AddressRange::parse(bad), bad);
}

TEST_CASE("failover: X-Forwarded-For names the right-most untrusted entry") {
  const auto trusted = ranges({"127.0.0.1", "10.0.0.0/8"});
  // haproxy appends the address it saw: the client.
  CHECK(client({"203.0.113.5"}, trusted) == "203.0.113.5");
  // A client's own (forged) entries stand left of what the proxy appended.
  CHECK(client({"1.2.3.4, 203.0.113.5"}, trusted) == "203.0.113.5");
  // Through two trusted proxies: the first untrusted from the right.
  CHECK(client({"198.51.100.7, 10.1.1.1"}, trusted) == "198.51.100.7");
  // Several header lines are one list.
  CHECK(client({"6.6.6.6", "198.51.100.7", "10.2.2.2"}, trusted) == "198.51.100.7");
  // Only trusted entries: the left-most (a client inside the trusted network).
  CHECK(client({"10.9.9.9, 10.1.1.1"}, trusted) == "10.9.9.9");
  // IPv6, bracketed or not; an IPv4 with a port; spaces.
  CHECK(client({"2001:db8::1"}, trusted) == "2001:db8::1");
  CHECK(client({"[2001:db8::2]:443"}, trusted) == "2001:db8::2");
  CHECK(client({" 198.51.100.8:5000 "}, trusted) == "198.51.100.8");
  CHECK(client({"::ffff:198.51.100.9"}, trusted) == "198.51.100.9");
  // Garbage where the deciding entry is: keep the peer's address.
  CHECK(client({"unknown"}, trusted) == "-");
  CHECK(client({"1.2.3.4, not-an-ip"}, trusted) == "-");
  CHECK(client({""}, trusted) == "-");
  CHECK(client({}, trusted) == "-");
  CHECK(client({std::string(200, '1')}, trusted) == "-");
  // Garbage left of the deciding entry does not matter: it is never read.
  CHECK(client({"<script>, 203.0.113.5"}, trusted) == "203.0.113.5");
}

TEST_CASE("failover: ServerList parses a comma-separated list and refuses the malformed") {
  auto l = lucidctl::ServerList::parse("http://a:1, https://b:2/ ,http://c:3");
  REQUIRE(l->size() == 3);
  CHECK(l->urls()[0] == "http://a:1");
  CHECK(l->urls()[1] == "https://b:2");
  CHECK(l->urls()[2] == "http://c:3");
  CHECK(l->current() == 0);
  std::vector<std::string> switches;
  l->on_switch([&](const std::string& from, const std::string& to, const std::string& why) {
    switches.push_back(from + ">" + to + ":" + why);
  });
  l->move_to(1, "down");
  l->move_to(1, "again");  // no change: not told
  l->move_to(0, "");       // a quiet move (the end of a failed round)
  CHECK(l->current() == 0);
  REQUIRE(switches.size() == 1);
  CHECK(switches[0] == "http://a:1>https://b:2:down");

  CHECK_THROWS_AS(lucidctl::ServerList::parse(""), std::invalid_argument);
  CHECK_THROWS_AS(lucidctl::ServerList::parse("http://a:1,"), std::invalid_argument);
  CHECK_THROWS_AS(lucidctl::ServerList::parse("http://a:1,,http://b:1"), std::invalid_argument);
  CHECK_THROWS_AS(lucidctl::ServerList::parse("http://a:1,http://a:1/"), std::invalid_argument);
  CHECK_THROWS_AS(lucidctl::ServerList::parse("ftp://a"), std::invalid_argument);
  CHECK_THROWS_AS(lucidctl::ServerList::parse("http://" + std::string(3000, 'a')), std::invalid_argument);
  std::string many;
  for (int i = 0; i < 17; ++i) many += (i ? "," : "") + std::string("http://h") + std::to_string(i);
  CHECK_THROWS_AS(lucidctl::ServerList::parse(many), std::invalid_argument);
  CHECK_NOTHROW(lucidctl::ServerList::parse(many.substr(0, many.rfind(','))));
}
