// lib/workflows/docker (the Engine API client's pieces that need no daemon):
// which socket, image references, the build context's tar, and a daemon that
// is absent or answers garbage. tests/http/test_docker_services.py drives a
// real dockerd.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <filesystem>
#include <fstream>
#include <thread>

#include "lucidnode/error.hpp"
#include "support.hpp"
#include "workflows/docker.hpp"

using namespace lucid;
using namespace lucid::detail;
using testsupport::code_of;
using testsupport::field_of;
namespace fs = std::filesystem;

namespace {

struct EnvVar {
  std::string name;
  std::optional<std::string> old;
  EnvVar(const char* n, const char* v) : name(n) {
    if (const char* o = std::getenv(n)) old = o;
    if (v) ::setenv(n, v, 1); else ::unsetenv(n);
  }
  ~EnvVar() {
    if (old) ::setenv(name.c_str(), old->c_str(), 1); else ::unsetenv(name.c_str());
  }
};

// The tar's member names and types, read back with tar(1)'s format rules.
std::vector<std::pair<std::string, char>> members(const std::string& tar) {
  std::vector<std::pair<std::string, char>> out;
  std::size_t at = 0;
  while (at + 512 <= tar.size()) {
    const char* h = tar.data() + at;
    if (h[0] == '\0') break;
    std::string name(h, strnlen(h, 100));
    std::string prefix(h + 345, strnlen(h + 345, 155));
    if (!prefix.empty()) name = prefix + "/" + name;
    const std::size_t size = std::strtoull(std::string(h + 124, 11).c_str(), nullptr, 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
    CHECK(sum == std::strtoul(std::string(h + 148, 6).c_str(), nullptr, 8));
    out.emplace_back(name, h[156]);
    at += 512 + (size + 511) / 512 * 512;
  }
  return out;
}

}  // namespace

TEST_CASE("docker socket: --docker-socket, then DOCKER_HOST (unix:// only), then the default") {
  {
    EnvVar e("DOCKER_HOST", nullptr);
    CHECK(docker_socket_path("") == "/var/run/docker.sock");
    CHECK(docker_socket_path("/x/d.sock") == "/x/d.sock");
  }
  {
    EnvVar e("DOCKER_HOST", "unix:///tmp/other.sock");
    CHECK(docker_socket_path("") == "/tmp/other.sock");
    CHECK(docker_socket_path("/x/d.sock") == "/x/d.sock");
  }
  {
    EnvVar e("DOCKER_HOST", "tcp://10.0.0.1:2375");
    std::string why;
    CHECK(docker_socket_path("", &why).empty());
    CHECK(why.find("unix://") != std::string::npos);
    CHECK(!DockerClient("").version());
    CHECK(code_of([] { DockerClient("").inspect_image("x:1"); }) == Errc::unavailable);
  }
}

TEST_CASE("docker image references") {
  for (const char* ok : {"nginx", "library/nginx", "ghcr.io/owner/repo", "127.0.0.1:5000/base", "localhost/a_b",
                         "a.b-c/d__e", "registry.example.com:443/x/y/z"})
    CHECK_MESSAGE(valid_image_name(ok), ok);
  for (const char* bad : {"", "Nginx", "UPPER/case", "-x", "a b", "a//b", "a/", "/a", "x:tag", "a/-b", "a/b.",
                          "a\nb", "ghcr.io/", "$(x)"})
    CHECK_MESSAGE(!valid_image_name(bad), bad);
  CHECK(!valid_image_name(std::string(256, 'a')));
  for (const char* ok : {"latest", "1", "v1.2.3-rc_1", "_x"}) CHECK_MESSAGE(valid_image_tag(ok), ok);
  for (const char* bad : {"", ".x", "-x", "a b", "a/b", "a:b"}) CHECK_MESSAGE(!valid_image_tag(bad), bad);
  CHECK(valid_image_tag(std::string(128, 'a')));
  CHECK(!valid_image_tag(std::string(129, 'a')));
}

TEST_CASE("build context tar: files, directories, links as links, bounds") {
  testsupport::TempDir dir;
  const fs::path ctx = dir.path / "ctx";
  fs::create_directories(ctx / "sub" / "deeper");
  std::ofstream(ctx / "Dockerfile") << "FROM x\n";
  std::ofstream(ctx / "sub" / "a.txt") << std::string(1000, 'a');
  fs::create_symlink("/etc/passwd", ctx / "sub" / "outside");  // stored as a link, never read
  const std::string longdir(90, 'd');
  fs::create_directories(ctx / longdir);
  std::ofstream(ctx / longdir / (std::string(60, 'f') + ".txt")) << "long";
  const std::string tar = tar_directory(ctx, 1 << 20);
  CHECK(tar.size() % 512 == 0);
  const auto m = members(tar);
  const std::vector<std::pair<std::string, char>> want = {
      {"Dockerfile", '0'}, {longdir + "/", '5'}, {longdir + "/" + std::string(60, 'f') + ".txt", '0'},
      {"sub/", '5'},       {"sub/a.txt", '0'},   {"sub/deeper/", '5'},
      {"sub/outside", '2'}};
  for (const auto& [name, type] : m) CAPTURE(name + " " + type);
  CHECK(m.size() == want.size());
  for (std::size_t i = 0; i < std::min(m.size(), want.size()); ++i) CHECK(m[i] == want[i]);
  CHECK(tar.find("root:") == std::string::npos);  // /etc/passwd's content is not in it
  CHECK(code_of([&] { tar_directory(ctx, 1500); }) == Errc::invalid_argument);
  CHECK(field_of([&] { tar_directory(ctx, 1500); }) == "local_path");
  // A name no ustar header holds (a final component over 100 bytes).
  std::ofstream(ctx / std::string(101, 'n')) << "x";
  CHECK(code_of([&] { tar_directory(ctx, 1 << 20); }) == Errc::invalid_argument);
}

TEST_CASE("docker client: a socket where nothing listens, a daemon that answers garbage") {
  testsupport::TempDir dir;
  const std::string path = (dir.path / "d.sock").string();
  CHECK(!DockerClient(path).version());
  CHECK(code_of([&] { DockerClient(path).remove_image("x:1"); }) == Errc::unavailable);
  auto r = DockerClient(path).run("x:1", ContainerRun{});
  REQUIRE(r.failure);
  CHECK(r.failure->find("Docker daemon not available") != std::string::npos);
  // A "daemon" that answers every request with 500 and a long, control-laden message.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 8) == 0);
  std::thread server([fd] {
    for (int i = 0; i < 3; ++i) {
      const int c = ::accept(fd, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      (void)::recv(c, buf, sizeof buf, 0);
      const std::string body = "{\"message\":\"bad\\u0001" + std::string(5000, 'x') + "\"}";
      const std::string resp = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      (void)::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  });
  try {
    DockerClient(path).remove_image("x:1");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::internal);
    CHECK(e.message().rfind("image removal failed: bad ", 0) == 0);
    CHECK(e.message().size() < 500);  // bounded
    CHECK(e.message().find('\x01') == std::string::npos);
  }
  CHECK(code_of([&] { DockerClient(path).pull("x", "1", "", "", std::chrono::seconds(5), {}); }) == Errc::internal);
  auto run = DockerClient(path).run("x:1", ContainerRun{});
  REQUIRE(run.failure);
  CHECK(run.failure->rfind("container creation failed: bad ", 0) == 0);
  server.join();
  ::close(fd);
}
