// A Docker Engine API client over the daemon's unix socket (a small HTTP/1.1
// client of its own, one request per connection: the library links no HTTP
// client library, see package.exports), and the operations
// the network-node document's Docker services need: pull, build from a
// directory, inspect, remove, and a container run with STDIN/STDOUT piped
// (the attach stream is a hijacked connection: a plain socket). Internal.
//
// Every call is bounded: a timeout, a cap on what is read back. Failures
// throw lucid::Error: unavailable ("Docker daemon not available") when
// nothing answers on the socket; internal with the daemon's own message
// (bounded, control characters removed) when the daemon refuses.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lucid::detail {

// The daemon's socket path: `configured` (the --docker-socket option) when
// set, else DOCKER_HOST as Docker's own tools read it (unix://PATH; a
// tcp:// or ssh:// host is not a unix socket: empty, with `why` saying so),
// else /var/run/docker.sock. Reads the environment; thread-safe.
std::string docker_socket_path(const std::string& configured, std::string* why = nullptr);

// A Docker image reference the client accepts: [host[:port]/]path[:tag],
// lower-case path components of [a-z0-9._-], a tag of [A-Za-z0-9_.-] up to
// 128 characters. True when `name` (without tag) and `tag` are well formed.
bool valid_image_name(const std::string& name);
bool valid_image_tag(const std::string& tag);

struct DockerReply {
  long status = 0;
  std::string body;  // at most the call's max_body bytes
};

// Streamed progress of a pull or build: one message per JSON line the daemon
// sends ("status"/"stream" text), in order.
using DockerProgress = std::function<void(const std::string& message)>;

struct ImageFacts {
  std::string id;
  std::vector<std::string> exposed_ports;  // "8080/tcp"
  std::vector<std::string> volumes;        // "/data"
  std::vector<std::string> env;            // "NAME=value" (PATH included as the image has it)
  std::vector<std::string> entrypoint, cmd;
};

struct ContainerRun {
  std::vector<std::string> entrypoint, cmd;  // empty: the image's own
  std::vector<std::string> env;              // "NAME=value"
  std::string input;                         // written to STDIN, then closed
  std::chrono::seconds timeout{300};
  std::size_t max_output = 1024 * 1024;      // STDOUT and STDERR each
  std::int64_t memory_bytes = 0;             // 0: no limit
  std::int64_t nano_cpus = 0;                // 0: no limit (1e9 = one CPU)
  std::int64_t pids_limit = 0;               // 0: no limit
  bool network = false;                      // false: --network none
  std::string name;                          // container name (empty: the daemon's)
  std::function<bool()> cancelled;           // polled (4 times a second): true stops the container
};

struct ContainerResult {
  int exit_code = -1;
  std::string out, err;
  std::optional<std::string> failure;  // timed out, output too large, daemon error
};

class DockerClient {
 public:
  explicit DockerClient(std::string socket_path) : socket_(std::move(socket_path)) {}

  const std::string& socket() const { return socket_; }

  // One API call (`path` without the /vN prefix). `on_data` sees the body as
  // it arrives (streamed endpoints); the reply keeps at most max_body bytes.
  DockerReply call(const std::string& method, const std::string& path, const std::string& body = {},
                   const std::vector<std::string>& headers = {}, std::chrono::seconds timeout = std::chrono::seconds(30),
                   std::size_t max_body = 1024 * 1024,
                   const std::function<void(std::string_view)>& on_data = {}) const;

  // The daemon's version ("20.10.24+dfsg1"), or nullopt when nothing answers
  // within 2 s.
  std::optional<std::string> version() const noexcept;

  // Pulls name:tag, with registry credentials when user or password is set
  // (sent as X-Registry-Auth, never stored). Bounded by `timeout`.
  void pull(const std::string& name, const std::string& tag, const std::string& user, const std::string& password,
            std::chrono::seconds timeout, const DockerProgress& progress) const;

  // Builds the directory `context` (a tar of it, at most max_context bytes;
  // symlinks stored as links) with its `dockerfile` (relative name) as
  // name:tag, network off. The build's own failure is Error(internal) with
  // the end of its output.
  void build(const std::filesystem::path& context, const std::string& dockerfile, const std::string& name,
             const std::string& tag, std::chrono::seconds timeout, std::size_t max_context,
             const DockerProgress& progress) const;

  // Inspects name:tag; nullopt when the daemon has no such image.
  std::optional<ImageFacts> inspect_image(const std::string& ref) const;

  // Removes the image (force, pruning untagged parents). True when removed,
  // false when there was none.
  bool remove_image(const std::string& ref) const;

  // Creates, attaches to, starts, waits for and removes a container of
  // `image`. Never throws for what happens inside the container; a daemon
  // that refuses is ContainerResult::failure. The container is killed and
  // removed on timeout and on every failure.
  ContainerResult run(const std::string& image, const ContainerRun& r) const;

 private:
  std::string socket_;
};

// A tar (ustar) of the directory `dir`: regular files, directories and
// symlinks (as links, never followed), names relative to `dir`. Errors
// (invalid_argument, field "local_path"): larger than `max_bytes`, a name
// longer than ustar holds, an unreadable file.
std::string tar_directory(const std::filesystem::path& dir, std::size_t max_bytes);

}  // namespace lucid::detail
