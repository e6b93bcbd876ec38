// Services and workflow graphs: storage and validation (docs/workflows.md).
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>

#include "util/json.hpp"
#include "workflows/docker.hpp"
#include "workflows/process.hpp"
#include "workflows/workflows_impl.hpp"

namespace lucid {

using namespace detail;
namespace fs = std::filesystem;

// ---------------------------------------------------------------- helpers

namespace wf {

std::string env_to_json(const std::vector<std::pair<std::string, std::string>>& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  for (const auto& [k, val] : v) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(val.data(), static_cast<rapidjson::SizeType>(val.size()));
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::vector<std::pair<std::string, std::string>> env_from_json(const std::string& s) {
  std::vector<std::pair<std::string, std::string>> out;
  rapidjson::Document d;
  if (!detail::parse_json(d, s) || !d.IsObject()) return out;
  for (const auto& m : d.GetObject())
    if (m.value.IsString())
      out.emplace_back(std::string(m.name.GetString(), m.name.GetStringLength()),
                       std::string(m.value.GetString(), m.value.GetStringLength()));
  return out;
}

std::optional<std::int64_t> config_timeout(const std::string& config_json) {
  rapidjson::Document d;
  if (!detail::parse_json(d, config_json) || !d.IsObject()) return std::nullopt;
  auto it = d.FindMember("timeout");
  if (it == d.MemberEnd() || !it->value.IsInt64()) return std::nullopt;
  const auto t = it->value.GetInt64();
  if (t < 1 || t > 86400) return std::nullopt;
  return t;
}

void publish(ClusterCore& core, const char* type, const std::string& payload) {
  core.bus.publish(Event(EventKind::network, 0, type, payload));
}

}  // namespace wf

namespace {

[[noreturn]] void service_not_found() { throw Error(Errc::not_found, "Service not found"); }
[[noreturn]] void workflow_not_found() { throw Error(Errc::not_found, "Workflow not found"); }

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string service_type_of(const std::string& type) {
  const std::string t = upper(type);
  if (t == "STORAGE" || t == "DATA") return "DATA";
  if (t == "DOCKER" || t == "STANDALONE" || t == "RELAY") return t;
  invalid("type", "type must be one of storage, docker, standalone, relay");
}

std::string status_of(const std::string& status, bool aliases) {
  const std::string s = upper(status);
  if (s == "ACTIVE" || s == "INACTIVE") return s;
  if (aliases && s == "AVAILABLE") return "ACTIVE";
  if (aliases && s == "UNAVAILABLE") return "INACTIVE";
  invalid("status", "status must be ACTIVE or INACTIVE");
}

void check_json_text(const std::string& field, const std::string& json) {
  if (json.size() > WorkflowLimits::json)
    invalid(field, field + " must be at most " + std::to_string(WorkflowLimits::json) + " bytes");
}

bool valid_interface_type(const std::string& t) {
  static const std::set<std::string> kTypes = {"STDIN", "STDOUT", "STDERR", "LOGS", "MOUNT", "ENV", "ARG"};
  return kTypes.count(t) != 0;
}

void check_interfaces(const std::vector<ServiceInterface>& v) {
  if (v.size() > WorkflowLimits::list) invalid("interfaces", "at most 256 interfaces");
  for (const auto& i : v) {
    if (!valid_interface_type(i.interface_type))
      invalid("interface_type", "interface_type must be one of STDIN, STDOUT, STDERR, LOGS, MOUNT, ENV, ARG");
    check_text("path", i.path, WorkflowLimits::text, false);
    check_text("mount_function", i.mount_function, WorkflowLimits::name, false);
    check_text("description", i.description, WorkflowLimits::text, false);
  }
}

void insert_interfaces(Conn& c, std::int64_t service_id, const std::vector<ServiceInterface>& v) {
  for (const auto& i : v) {
    auto& q = c.stmt("INSERT INTO service_interfaces(service_id, interface_type, path, mount_function, description)"
                     " VALUES (?, ?, ?, ?, ?)");
    q.bind(1, static_cast<std::int64_t>(service_id));
    q.bind(2, i.interface_type);
    q.bind(3, i.path);
    q.bind(4, i.mount_function);
    q.bind(5, i.description);
    q.run();
  }
}

std::vector<ServiceInterface> load_interfaces(Conn& c, std::int64_t service_id) {
  auto& q = c.stmt("SELECT id, service_id, interface_type, path, mount_function, description"
                   " FROM service_interfaces WHERE service_id = ? ORDER BY id");
  q.bind(1, static_cast<std::int64_t>(service_id));
  std::vector<ServiceInterface> out;
  while (q.step())
    out.push_back({q.column(0).as_int64(), q.column(1).as_int64(), q.column(2).as_text(),
                   q.column(3).as_text(), q.column(4).as_text(), q.column(5).as_text()});
  return out;
}

std::optional<StandaloneDetails> load_standalone(Conn& c, std::int64_t service_id) {
  auto& q = c.stmt("SELECT id, service_id, executable_path, arguments, working_directory, environment,"
                   " timeout_seconds, run_as_user, source FROM standalone_details WHERE service_id = ?");
  q.bind(1, static_cast<std::int64_t>(service_id));
  if (!q.step()) return std::nullopt;
  StandaloneDetails d;
  d.id = q.column(0).as_int64();
  d.service_id = q.column(1).as_int64();
  d.executable_path = q.column(2).as_text();
  d.arguments = detail::parse_string_array(q.column(3).as_text());
  d.working_directory = q.column(4).as_text();
  d.environment = wf::env_from_json(q.column(5).as_text());
  d.timeout_seconds = q.column(6).as_int64();
  d.run_as_user = q.column(7).as_text();
  d.source = q.column(8).as_text();
  return d;
}

std::optional<DockerDetails> load_docker(Conn& c, std::int64_t service_id) {
  auto& q = c.stmt("SELECT id, service_id, image_name, image_tag, source, compose_path, entrypoint, cmd"
                   " FROM docker_details WHERE service_id = ?");
  q.bind(1, static_cast<std::int64_t>(service_id));
  if (!q.step()) return std::nullopt;
  return DockerDetails{q.column(0).as_int64(),  q.column(1).as_int64(),  q.column(2).as_text(),
                       q.column(3).as_text(), q.column(4).as_text(), q.column(5).as_text(),
                       q.column(6).as_text(), q.column(7).as_text()};
}

std::optional<Service> find_service(Conn& c, std::int64_t id) {
  auto& q = c.stmt("SELECT id, name, description, service_type, status, endpoint, pricing_amount, pricing_type,"
                   " pricing_interval, pricing_unit, capabilities, created_at, updated_at FROM services WHERE id = ?");
  q.bind(1, static_cast<std::int64_t>(id));
  if (!q.step()) return std::nullopt;
  Service s;
  s.id = q.column(0).as_int64();
  s.name = q.column(1).as_text();
  s.description = q.column(2).as_text();
  s.service_type = q.column(3).as_text();
  s.status = q.column(4).as_text();
  s.endpoint = q.column(5).as_text();
  s.pricing_amount = q.column(6).as_double();
  s.pricing_type = q.column(7).as_text();
  s.pricing_interval = q.column(8).as_text();
  s.pricing_unit = q.column(9).as_text();
  s.capabilities_json = q.column(10).as_text();
  s.created_at = parse_stored(q.column(11).as_text());
  s.updated_at = parse_stored(q.column(12).as_text());
  q.reset();
  s.interfaces = load_interfaces(c, s.id);
  if (s.service_type == "DOCKER") s.docker = load_docker(c, s.id);
  if (s.service_type == "STANDALONE") s.standalone = load_standalone(c, s.id);
  return s;
}

Service must_service(Conn& c, std::int64_t id) {
  auto s = find_service(c, id);
  if (!s) service_not_found();
  return *s;
}

std::int64_t insert_service(Conn& c, const std::string& now, const std::string& name, const std::string& description,
                            const std::string& type, const std::string& status, const std::string& endpoint,
                            const std::string& capabilities) {
  auto& q = c.stmt("INSERT INTO services(name, description, service_type, status, endpoint, capabilities,"
                   " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
  q.bind(1, name);
  q.bind(2, description);
  q.bind(3, type);
  q.bind(4, status);
  q.bind(5, endpoint);
  q.bind(6, capabilities);
  q.bind(7, now);
  q.bind(8, now);
  return q.run_returning_id();
}

void touch_service(Conn& c, std::int64_t id, const std::string& now) {
  auto& q = c.stmt("UPDATE services SET updated_at = ? WHERE id = ?");
  q.bind(1, now);
  q.bind(2, static_cast<std::int64_t>(id));
  q.run();
}

std::string service_payload(std::int64_t id, const char* action) {
  return std::string("{\"service_id\":") + std::to_string(id) + ",\"action\":\"" + action + "\"}";
}
std::string workflow_payload(std::int64_t id, const char* action) {
  return std::string("{\"workflow_id\":") + std::to_string(id) + ",\"action\":\"" + action + "\"}";
}

// A validated standalone definition: paths canonical inside `root` (which is
// inside the data directory).
struct ResolvedStandalone {
  std::string exe, cwd;
};

ResolvedStandalone resolve_standalone(const fs::path& root, const StandaloneCreate& r) {
  check_text("service_name", r.name, WorkflowLimits::name, true);
  check_text("description", r.description, WorkflowLimits::text, false);
  check_json_text("capabilities", r.capabilities_json);
  ResolvedStandalone out;
  const fs::path exe = confine(root, r.executable_path, "executable_path");
  if (!fs::is_regular_file(exe) || access(exe.c_str(), X_OK) != 0)
    invalid("executable_path", "executable_path is not an executable file");
  out.exe = exe.string();
  if (!r.working_directory.empty()) {
    const fs::path wd = confine(root, r.working_directory, "working_directory");
    if (!fs::is_directory(wd)) invalid("working_directory", "working_directory is not a directory");
    out.cwd = wd.string();
  } else {
    out.cwd = exe.parent_path().string();
  }
  if (r.arguments.size() > WorkflowLimits::list) invalid("arguments", "at most 256 arguments");
  for (const auto& a : r.arguments)
    if (a.size() > WorkflowLimits::text || a.find('\0') != std::string::npos)
      invalid("arguments", "an argument is longer than 4096 bytes or contains NUL");
  if (r.environment.size() > WorkflowLimits::list) invalid("environment_variables", "at most 256 variables");
  for (const auto& [k, v] : r.environment) {
    bool ok = !k.empty() && k.size() <= WorkflowLimits::name && !std::isdigit(static_cast<unsigned char>(k[0]));
    for (char ch : k) ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
    if (!ok) invalid("environment_variables", "environment_variables names must match [A-Za-z_][A-Za-z0-9_]*");
    if (v.size() > WorkflowLimits::text || v.find('\0') != std::string::npos)
      invalid("environment_variables", "a value is longer than 4096 bytes or contains NUL");
  }
  if (r.timeout_seconds < 1 || r.timeout_seconds > 86400)
    invalid("timeout_seconds", "timeout_seconds must be between 1 and 86400");
  if (!r.run_as_user.empty()) {
    // Switching users needs privileges this server does not take: only the
    // server's own user (and primary group) is accepted.
    const auto colon = r.run_as_user.find(':');
    const std::string user = r.run_as_user.substr(0, colon);
    const passwd* pw = getpwuid(geteuid());
    bool ok = pw && user == pw->pw_name;
    if (ok && colon != std::string::npos) {
      const group* gr = getgrgid(getegid());
      ok = gr && r.run_as_user.substr(colon + 1) == gr->gr_name;
    }
    if (!ok) invalid("run_as_user", "run_as_user may only name the server's own user");
  }
  check_interfaces(r.interfaces);
  return out;
}

const std::vector<ServiceInterface>& default_std_interfaces() {
  static const std::vector<ServiceInterface> v = {
      {0, 0, "STDIN", "", "", "Standard input stream"},
      {0, 0, "STDOUT", "", "", "Standard output stream"},
      {0, 0, "STDERR", "", "", "Standard error stream"},
  };
  return v;
}

void upsert_standalone(Conn& c, std::int64_t service_id, const StandaloneCreate& r, const ResolvedStandalone& p,
                       const char* source) {
  auto& q = c.stmt("INSERT INTO standalone_details(service_id, executable_path, arguments, working_directory,"
                   " environment, timeout_seconds, run_as_user, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                   " ON CONFLICT(service_id) DO UPDATE SET executable_path = excluded.executable_path,"
                   " arguments = excluded.arguments, working_directory = excluded.working_directory,"
                   " environment = excluded.environment, timeout_seconds = excluded.timeout_seconds,"
                   " run_as_user = excluded.run_as_user, source = excluded.source");
  auto env = r.environment;
  std::sort(env.begin(), env.end());
  q.bind(1, static_cast<std::int64_t>(service_id));
  q.bind(2, p.exe);
  q.bind(3, detail::string_array_json(r.arguments));
  q.bind(4, p.cwd);
  q.bind(5, wf::env_to_json(env));
  q.bind(6, static_cast<std::int64_t>(r.timeout_seconds));
  q.bind(7, r.run_as_user);
  q.bind(8, source);
  q.run();
}

void check_git_url(const std::string& url, const fs::path& data_dir) {
  if (url.empty()) invalid("repo_url", "repo_url is required");
  if (url.size() > 2048) invalid("repo_url", "repo_url must be at most 2048 characters");
  if (url[0] == '-') invalid("repo_url", "repo_url must not start with '-'");
  for (unsigned char ch : url)
    if (ch <= 0x20 || ch == 0x7f) invalid("repo_url", "repo_url must not contain spaces or control characters");
  static const char* kSchemes[] = {"https://", "http://", "ssh://", "git://"};
  for (const char* s : kSchemes)
    if (url.rfind(s, 0) == 0 && url.size() > std::strlen(s)) {
      // No "ext::"-style transports hidden behind a host, no options after the scheme.
      if (url[std::strlen(s)] == '-') invalid("repo_url", "repo_url host must not start with '-'");
      return;
    }
  // file:// is accepted for a repository inside the data directory only.
  if (url.rfind("file://", 0) == 0) {
    try {
      confine(data_dir, url.substr(7), "repo_url");
    } catch (const Error& e) {
      // Well-formed but nothing there: 422 like a remote repository that does
      // not exist, and without echoing the server path.
      if (e.code() == Errc::invalid_argument && e.message().find("does not exist") != std::string::npos)
        throw Error(Errc::invalid_argument, "repo_url does not name a git repository", "repo_url",
                    Reason::unprocessable);
      throw;
    }
    return;
  }
  invalid("repo_url", "repo_url must use https, http, ssh, git, or file (inside the data directory)");
}

void check_branch(const std::string& b) {
  if (b.empty()) return;
  bool ok = b.size() <= WorkflowLimits::name && b[0] != '-' && b.find("..") == std::string::npos;
  for (unsigned char ch : b) ok = ok && (std::isalnum(ch) || ch == '.' || ch == '_' || ch == '-' || ch == '/');
  if (!ok) invalid("branch", "branch must be letters, digits, '.', '_', '-', '/' and not start with '-'");
}

// Git's environment: no prompts, no system/global config, credentials (if
// any) as an HTTP header through GIT_CONFIG_* (never on the command line).
std::vector<std::string> git_env(const std::string& user, const std::string& pass) {
  auto env = base_environment();
  env.push_back("GIT_TERMINAL_PROMPT=0");
  env.push_back("GIT_CONFIG_NOSYSTEM=1");
  env.push_back("GIT_CONFIG_GLOBAL=/dev/null");
  env.push_back("GIT_SSH_COMMAND=ssh -o BatchMode=yes");
  if (!user.empty() || !pass.empty()) {
    const std::string cred = user + ":" + pass;
    std::string b64(sodium_base64_ENCODED_LEN(cred.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(b64.data(), b64.size(), reinterpret_cast<const unsigned char*>(cred.data()), cred.size(),
                      sodium_base64_VARIANT_ORIGINAL);
    b64.resize(std::strlen(b64.c_str()));
    env.push_back("GIT_CONFIG_COUNT=1");
    env.push_back("GIT_CONFIG_KEY_0=http.extraHeader");
    env.push_back("GIT_CONFIG_VALUE_0=Authorization: Basic " + b64);
  }
  return env;
}

// What a failed git run means for the caller, classified from git's own
// messages (LANG=C.UTF-8: untranslated). git's text is never passed on: it
// names server paths (the clone's destination, a file:// repository) and may
// echo the URL. A repository, branch or credentials the remote refuses is the
// request's fault (invalid_argument + unprocessable: 422); a remote that
// cannot be reached or fails is upstream_failed (502); what can only be this
// server's own trouble (disk) is internal.
Error git_error(const char* what, const SyncResult& r, const std::string& branch) {
  const std::string& e = r.err;
  auto has = [&](const char* s) { return e.find(s) != std::string::npos; };
  auto unprocessable = [&](const std::string& m, const char* field) {
    return Error(Errc::invalid_argument, std::string(what) + " failed: " + m, field, Reason::unprocessable);
  };
  auto upstream = [&](const std::string& m) {
    return Error(Errc::unavailable, std::string(what) + " failed: " + m, {}, Reason::upstream_failed);
  };
  if (r.timed_out) return upstream("the repository did not answer in time");
  if (!branch.empty() && has("Remote branch ") && has(" not found in upstream"))
    return unprocessable("branch '" + branch + "' does not exist in the repository", "branch");
  if (has("does not appear to be a git repository") || has("' not found") || has("Repository not found") ||
      has("returned error: 404") || has("not a git repository"))
    return unprocessable("repo_url does not name a git repository", "repo_url");
  if (has("Authentication failed") || has("could not read Username") || has("could not read Password") ||
      has("Permission denied (publickey") || has("returned error: 401") || has("returned error: 403"))
    return unprocessable("the repository refused access (check username and password)", "repo_url");
  if (has("Could not resolve host")) return upstream("the repository's host name does not resolve");
  if (has("Failed to connect") || has("Couldn't connect") || has("Connection refused") || has("Connection timed out") ||
      has("Network is unreachable") || has("No route to host") || has("Connection reset"))
    return upstream("could not connect to the repository's server");
  if (has("SSL") || has("certificate")) return upstream("TLS with the repository's server failed");
  if (has("returned error: 5")) return upstream("the repository's server answered with an error");
  if (has("could not create work tree") || has("No space left") || has("unable to write"))
    return Error(Errc::internal, std::string(what) + " failed: this server could not store the clone");
  return upstream("the repository could not be read (git exit " + std::to_string(r.exit_code) + ")");
}

// `git clone --depth 1` of a checked URL into `dest` (inside `dest`'s parent,
// which exists); 300 s bound; failures as git_error.
void git_clone(const std::string& url, const std::string& branch, const std::string& user, const std::string& pass,
               const fs::path& dest) {
  std::vector<std::string> argv = {"/usr/bin/git", "clone", "--depth", "1", "--no-tags"};
  if (!branch.empty()) {
    argv.push_back("--branch");
    argv.push_back(branch);
  }
  argv.push_back("--");
  argv.push_back(url);
  argv.push_back(dest.string());
  auto r = run_sync(argv, git_env(user, pass), dest.parent_path().string(), std::chrono::seconds(300), 64 * 1024);
  if (r.timed_out || r.exit_code != 0) throw git_error("git clone", r, branch);
}

// A failed build: the request's repository or command (422). The message
// keeps the end of the build's output, which helps the author, with the
// clone's and the data directory's paths replaced.
Error build_error(const SyncResult& r, std::chrono::seconds timeout, const fs::path& clone, const fs::path& data_dir) {
  if (r.timed_out)
    return Error(Errc::invalid_argument, "build command timed out after " + std::to_string(timeout.count()) + " s",
                 "build_command", Reason::unprocessable);
  std::string msg = r.err.empty() ? r.out : r.err;
  while (!msg.empty() && std::isspace(static_cast<unsigned char>(msg.back()))) msg.pop_back();
  if (msg.size() > 300) msg = msg.substr(msg.size() - 300);
  std::vector<std::pair<std::string, std::string>> paths = {{clone.string(), "."}, {data_dir.string(), "<data>"}};
  std::error_code ec;
  if (auto c = fs::canonical(clone, ec); !ec) paths.emplace(paths.begin(), c.string(), ".");
  if (auto d = fs::canonical(data_dir, ec); !ec) paths.emplace_back(d.string(), "<data>");
  for (const auto& [from, to] : paths) {
    if (from.size() < 2 || from[0] != '/') continue;  // absolute paths only, never "/"
    for (auto at = msg.find(from); at != std::string::npos; at = msg.find(from, at + to.size()))
      msg.replace(at, from.size(), to);
  }
  for (char& ch : msg)
    if (static_cast<unsigned char>(ch) < 0x20 && ch != '\n') ch = ' ';
  return Error(Errc::invalid_argument,
               "build command failed (exit " + std::to_string(r.exit_code) + ")" + (msg.empty() ? "" : ": " + msg),
               "build_command", Reason::unprocessable);
}

std::optional<Workflow> find_workflow(Conn& c, std::int64_t id) {
  auto& q = c.stmt("SELECT id, name, description, definition, created_at, updated_at FROM workflows WHERE id = ?");
  q.bind(1, static_cast<std::int64_t>(id));
  if (!q.step()) return std::nullopt;
  return Workflow{q.column(0).as_int64(), q.column(1).as_text(), q.column(2).as_text(),
                  q.column(3).as_text(), parse_stored(q.column(4).as_text()),
                  parse_stored(q.column(5).as_text())};
}

void must_workflow(Conn& c, std::int64_t id) {
  auto& q = c.stmt("SELECT 1 FROM workflows WHERE id = ?");
  q.bind(1, static_cast<std::int64_t>(id));
  if (!q.step()) workflow_not_found();
}

void touch_workflow(Conn& c, std::int64_t id, const std::string& now) {
  auto& q = c.stmt("UPDATE workflows SET updated_at = ? WHERE id = ?");
  q.bind(1, now);
  q.bind(2, static_cast<std::int64_t>(id));
  q.run();
}

WorkflowNode read_node(detail::Statement& q) {
  return WorkflowNode{q.column(0).as_int64(),  q.column(1).as_int64(),  q.column(2).as_text(),
                      q.column(3).as_text(), q.column(4).as_int64(),  q.column(5).as_text(),
                      q.column(6).as_text()};
}

std::optional<std::int64_t> opt_int(const detail::Column& c) {
  if (c.is_null()) return std::nullopt;
  return c.as_int64();
}

void bind_opt(detail::Statement& q, int i, const std::optional<std::int64_t>& v) {
  if (v) q.bind(i, static_cast<std::int64_t>(*v)); else q.bind(i, nullptr);
}

}  // namespace

// ---------------------------------------------------------------- services

Workflows::Workflows(ClusterCore& core) : core_(core), impl_(std::make_unique<Impl>()) {
  impl_->data_dir = core.opts.data_dir;
  impl_->docker_socket = docker_socket_path(core.opts.workflows.docker_socket, &impl_->docker_problem);
}

namespace {
// The key sealing DATA passphrases, derived from the server key (code_key is
// set after the capabilities are constructed, so derive on use).
std::string seal_key(const ClusterCore& core) {
  return blob(hmac_sha256(core.code_key, "lucidnode data passphrases v1"));
}
}  // namespace

Workflows::~Workflows() = default;

void Workflows::set_local_peer_rule(std::function<bool(std::string_view)> is_local) {
  impl_->is_local_peer = std::move(is_local);
}

std::vector<Service> Workflows::list_services() {
  return core_.store->read([&](Conn& c) {
    std::vector<std::int64_t> ids;
    auto& q = c.stmt("SELECT id FROM services ORDER BY id");
    while (q.step()) ids.push_back(q.column(0).as_int64());
    q.reset();
    std::vector<Service> out;
    for (auto id : ids)
      if (auto s = find_service(c, id)) out.push_back(std::move(*s));
    return out;
  });
}

Service Workflows::get_service(std::int64_t id) {
  return core_.store->read([&](Conn& c) { return must_service(c, id); });
}

Service Workflows::create_service(const ServiceCreate& r) {
  const std::string type = service_type_of(r.type);
  check_text("name", r.name, WorkflowLimits::name, true);
  check_text("description", r.description, WorkflowLimits::text, false);
  check_text("endpoint", r.endpoint, WorkflowLimits::text, false);
  check_json_text("capabilities", r.capabilities_json);
  const std::string status = status_of(r.status, true);
  auto s = core_.store->write([&](Conn& c) {
    const auto id = insert_service(c, now_text(core_), r.name, r.description, type, status, r.endpoint,
                                   r.capabilities_json);
    if (type == "DOCKER") {
      // The capabilities' image_name/image_tag, if any, seed the docker record.
      rapidjson::Document d;
      const bool parsed = static_cast<bool>(detail::parse_json(d, r.capabilities_json));
      std::string image, tag = "latest";
      if (parsed && d.IsObject()) {
        if (auto it = d.FindMember("image_name"); it != d.MemberEnd() && it->value.IsString()) image = it->value.GetString();
        if (auto it = d.FindMember("image_tag"); it != d.MemberEnd() && it->value.IsString()) tag = it->value.GetString();
      }
      auto& q = c.stmt("INSERT INTO docker_details(service_id, image_name, image_tag, source) VALUES (?, ?, ?, 'registry')");
      q.bind(1, static_cast<std::int64_t>(id));
      q.bind(2, image);
      q.bind(3, tag);
      q.run();
    }
    return must_service(c, id);
  });
  wf::publish(core_, "SERVICE_UPDATED", service_payload(s.id, "created"));
  return s;
}

Service Workflows::update_service(std::int64_t id, const ServiceUpdate& r) {
  if (r.name) check_text("name", *r.name, WorkflowLimits::name, true);
  if (r.description) check_text("description", *r.description, WorkflowLimits::text, false);
  if (r.endpoint) check_text("endpoint", *r.endpoint, WorkflowLimits::text, false);
  if (r.capabilities_json) check_json_text("capabilities", *r.capabilities_json);
  std::optional<std::string> status;
  if (r.status) status = status_of(*r.status, true);
  auto s = core_.store->write([&](Conn& c) {
    auto cur = must_service(c, id);
    auto& q = c.stmt("UPDATE services SET name = ?, description = ?, endpoint = ?, status = ?, capabilities = ?,"
                     " updated_at = ? WHERE id = ?");
    q.bind(1, r.name.value_or(cur.name));
    q.bind(2, r.description.value_or(cur.description));
    q.bind(3, r.endpoint.value_or(cur.endpoint));
    q.bind(4, status.value_or(cur.status));
    q.bind(5, r.capabilities_json.value_or(cur.capabilities_json));
    q.bind(6, now_text(core_));
    q.bind(7, static_cast<std::int64_t>(id));
    q.run();
    return must_service(c, id);
  });
  wf::publish(core_, "SERVICE_UPDATED", service_payload(id, "updated"));
  return s;
}

void Workflows::delete_service(std::int64_t id) {
  // A DOCKER service's image goes with it (the document), unless another
  // service uses the same image; with no daemon answering, only the record
  // goes (docs/decisions.md).
  std::optional<std::string> image;
  core_.store->read([&](Conn& c) {
    auto d = load_docker(c, id);
    if (!d || d->image_name.empty()) return;
    auto& q = c.stmt("SELECT COUNT(*) FROM docker_details WHERE image_name = ? AND image_tag = ? AND service_id != ?");
    q.bind(1, d->image_name);
    q.bind(2, d->image_tag);
    q.bind(3, static_cast<std::int64_t>(id));
    if (q.step() && q.column(0).as_int64() == 0) image = d->image_name + ":" + (d->image_tag.empty() ? "latest" : d->image_tag);
  });
  if (image) {
    try {
      DockerClient(impl_->docker_socket).remove_image(*image);
    } catch (const Error& e) {
      if (e.code() != Errc::unavailable) throw Error(Errc::internal, "Failed to delete service: " + e.message());
    }
  }
  core_.store->write([&](Conn& c) {
    auto& q = c.stmt("DELETE FROM services WHERE id = ?");
    q.bind(1, static_cast<std::int64_t>(id));
    q.run();
    if (c.changes() == 0) service_not_found();
  });
  wf::publish(core_, "SERVICE_UPDATED", service_payload(id, "deleted"));
}

void Workflows::delete_standalone_service(std::int64_t id) {
  core_.store->write([&](Conn& c) {
    auto s = must_service(c, id);
    if (s.service_type != "STANDALONE") invalid("service_type", "Service is not a standalone service");
    auto& q = c.stmt("DELETE FROM services WHERE id = ?");
    q.bind(1, static_cast<std::int64_t>(id));
    q.run();
  });
  wf::publish(core_, "SERVICE_UPDATED", service_payload(id, "deleted"));
}

void Workflows::set_service_status(std::int64_t id, const std::string& status) {
  const std::string s = status_of(status, false);
  if (s != status) invalid("status", "status must be ACTIVE or INACTIVE");
  core_.store->write([&](Conn& c) {
    auto& q = c.stmt("UPDATE services SET status = ?, updated_at = ? WHERE id = ?");
    q.bind(1, s);
    q.bind(2, now_text(core_));
    q.bind(3, static_cast<std::int64_t>(id));
    q.run();
    if (c.changes() == 0) service_not_found();
  });
  wf::publish(core_, "SERVICE_UPDATED", service_payload(id, "status"));
}

std::vector<ServiceInterface> Workflows::service_interfaces(std::int64_t id) {
  return core_.store->read([&](Conn& c) { return must_service(c, id).interfaces; });
}

DataDetails Workflows::attach_data_file(std::int64_t service_id, const std::string& path) {
  const fs::path file = confine(impl_->data_dir, path, "file_path");
  if (!fs::is_regular_file(file)) invalid("file_path", "file_path is not a regular file");
  // Hash the file in chunks (bounded memory).
  crypto_hash_sha256_state h;
  crypto_hash_sha256_init(&h);
  std::ifstream in(file, std::ios::binary);
  std::vector<char> buf(1 << 16);
  std::int64_t size = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = in.gcount();
    if (got <= 0) break;
    crypto_hash_sha256_update(&h, reinterpret_cast<const unsigned char*>(buf.data()), static_cast<unsigned long long>(got));
    size += got;
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&h, digest);
  const std::string hash = to_hex(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
  const std::string passphrase = to_hex(random_bytes(32));
  std::string sealed(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + passphrase.size(), '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  randombytes_buf(out, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(out + crypto_secretbox_NONCEBYTES, reinterpret_cast<const unsigned char*>(passphrase.data()),
                        passphrase.size(), out, reinterpret_cast<const unsigned char*>(seal_key(core_).data()));
  auto d = core_.store->write([&](Conn& c) {
    auto s = must_service(c, service_id);
    if (s.service_type != "DATA") invalid("service_type", "Service is not a DATA service");
    auto& q = c.stmt("INSERT INTO data_details(service_id, file_path, file_size, file_hash, encryption_method,"
                     " passphrase_sealed) VALUES (?, ?, ?, ?, 'AES-256-GCM', ?) ON CONFLICT(service_id) DO UPDATE SET"
                     " file_path = excluded.file_path, file_size = excluded.file_size, file_hash = excluded.file_hash,"
                     " passphrase_sealed = excluded.passphrase_sealed RETURNING id");
    q.bind(1, static_cast<std::int64_t>(service_id));
    q.bind(2, file.string());
    q.bind(3, static_cast<std::int64_t>(size));
    q.bind(4, hash);
    q.bind_blob(5, sealed);
    const std::int64_t details_id = q.run_returning_id();
    touch_service(c, service_id, now_text(core_));
    return DataDetails{details_id, service_id, file.string(), size, hash, "AES-256-GCM"};
  });
  wf::publish(core_, "SERVICE_UPDATED", service_payload(service_id, "data"));
  return d;
}

std::pair<std::string, DataDetails> Workflows::service_passphrase(std::int64_t id) {
  auto [d, sealed] = core_.store->read([&](Conn& c) {
    auto s = must_service(c, id);
    if (s.service_type != "DATA") invalid("service_type", "Service is not a DATA service");
    auto& q = c.stmt("SELECT id, service_id, file_path, file_size, file_hash, encryption_method, passphrase_sealed"
                     " FROM data_details WHERE service_id = ?");
    q.bind(1, static_cast<std::int64_t>(id));
    if (!q.step()) throw Error(Errc::not_found, "Data details not found");
    DataDetails d{q.column(0).as_int64(),  q.column(1).as_int64(), q.column(2).as_text(),
                  q.column(3).as_int64(),  q.column(4).as_text(), q.column(5).as_text()};
    const auto col = q.column(6);
    return std::make_pair(d, std::string(col.as_blob()));
  });
  const std::size_t head = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES;
  if (sealed.size() < head) throw Error(Errc::internal, "Failed to retrieve passphrase");
  std::string plain(sealed.size() - head, '\0');
  const auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
  if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()), in + crypto_secretbox_NONCEBYTES,
                                 sealed.size() - crypto_secretbox_NONCEBYTES, in, reinterpret_cast<const unsigned char*>(seal_key(core_).data())) != 0)
    throw Error(Errc::internal, "Failed to retrieve passphrase");
  return {plain, d};
}

Service Workflows::create_standalone(const StandaloneCreate& r) {
  const auto p = resolve_standalone(impl_->data_dir, r);
  auto s = core_.store->write([&](Conn& c) {
    const auto id = insert_service(c, now_text(core_), r.name, r.description, "STANDALONE", "ACTIVE", "",
                                   r.capabilities_json);
    upsert_standalone(c, id, r, p, "local");
    insert_interfaces(c, id, r.interfaces.empty() ? default_std_interfaces() : r.interfaces);
    return must_service(c, id);
  });
  wf::publish(core_, "SERVICE_UPDATED", service_payload(s.id, "created"));
  return s;
}

Service Workflows::create_standalone_from_git(const StandaloneGitCreate& g) {
  check_text("service_name", g.service.name, WorkflowLimits::name, true);
  check_git_url(g.repo_url, impl_->data_dir);
  check_branch(g.branch);
  check_text("build_command", g.build_command, WorkflowLimits::text, false);
  check_text("username", g.username, WorkflowLimits::name, false);
  check_text("password", g.password, WorkflowLimits::text, false);
  if (g.service.timeout_seconds < 1 || g.service.timeout_seconds > 86400)
    invalid("timeout_seconds", "timeout_seconds must be between 1 and 86400");
  const fs::path dir = impl_->data_dir / "services";
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path dest = dir / ("git-" + to_hex(random_bytes(8)));
  struct Cleanup {
    fs::path p;
    bool keep = false;
    ~Cleanup() {
      std::error_code e;
      if (!keep) fs::remove_all(p, e);
    }
  } cleanup{dest};
  git_clone(g.repo_url, g.branch, g.username, g.password, dest);
  if (!g.build_command.empty()) {
    const std::chrono::seconds timeout(g.service.timeout_seconds);
    auto b = run_sync({"/bin/sh", "-c", g.build_command}, base_environment(), dest.string(), timeout, 64 * 1024);
    if (b.timed_out || b.exit_code != 0) throw build_error(b, timeout, dest, impl_->data_dir);
  }
  const auto p = resolve_standalone(dest, g.service);
  auto s = core_.store->write([&](Conn& c) {
    const auto id = insert_service(c, now_text(core_), g.service.name, g.service.description, "STANDALONE", "ACTIVE",
                                   "", g.service.capabilities_json);
    upsert_standalone(c, id, g.service, p, "git");
    insert_interfaces(c, id, g.service.interfaces.empty() ? default_std_interfaces() : g.service.interfaces);
    return must_service(c, id);
  });
  cleanup.keep = true;
  wf::publish(core_, "SERVICE_UPDATED", service_payload(s.id, "created"));
  return s;
}

Service Workflows::finalize_standalone(std::int64_t id, const StandaloneCreate& r) {
  const auto cur = get_service(id);
  if (cur.service_type != "STANDALONE") invalid("service_type", "Service is not a standalone service");
  fs::path root = impl_->data_dir / "uploads" / std::to_string(id);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) invalid("executable_path", "no uploaded files for this service");
  StandaloneCreate req = r;
  req.name = cur.name;
  const auto p = resolve_standalone(root, req);
  auto s = core_.store->write([&](Conn& c) {
    must_service(c, id);
    upsert_standalone(c, id, req, p, "upload");
    if (!req.interfaces.empty() || load_interfaces(c, id).empty()) {
      auto& d = c.stmt("DELETE FROM service_interfaces WHERE service_id = ?");
      d.bind(1, static_cast<std::int64_t>(id));
      d.run();
      insert_interfaces(c, id, req.interfaces.empty() ? default_std_interfaces() : req.interfaces);
    }
    auto& q = c.stmt("UPDATE services SET status = 'ACTIVE', capabilities = ?, updated_at = ? WHERE id = ?");
    q.bind(1, req.capabilities_json);
    q.bind(2, now_text(core_));
    q.bind(3, static_cast<std::int64_t>(id));
    q.run();
    return must_service(c, id);
  });
  wf::publish(core_, "SERVICE_UPDATED", service_payload(id, "finalized"));
  return s;
}

std::optional<std::string> Workflows::validate_git(const std::string& url, const std::string& user,
                                                   const std::string& pass) {
  check_git_url(url, impl_->data_dir);
  check_text("username", user, WorkflowLimits::name, false);
  check_text("password", pass, WorkflowLimits::text, false);
  auto r = run_sync({"/usr/bin/git", "ls-remote", "--heads", "--", url}, git_env(user, pass), "/",
                    std::chrono::seconds(30), 64 * 1024);
  if (!r.timed_out && r.exit_code == 0) return std::nullopt;
  return git_error("git ls-remote", r, "").message();
}

std::string Workflows::docker_socket() const { return impl_->docker_socket; }

std::optional<std::string> Workflows::docker_version() const {
  return DockerClient(impl_->docker_socket).version();
}

bool Workflows::docker_available() const { return docker_version().has_value(); }

DockerDetails Workflows::docker_details(std::int64_t id) {
  return core_.store->read([&](Conn& c) {
    auto d = load_docker(c, id);
    if (!d) throw Error(Errc::not_found, "Docker service not found");
    return *d;
  });
}

void Workflows::replace_interfaces(std::int64_t id, const std::vector<ServiceInterface>& v) {
  check_interfaces(v);
  core_.store->write([&](Conn& c) {
    must_service(c, id);
    auto& d = c.stmt("DELETE FROM service_interfaces WHERE service_id = ?");
    d.bind(1, static_cast<std::int64_t>(id));
    d.run();
    insert_interfaces(c, id, v);
    touch_service(c, id, now_text(core_));
  });
  wf::publish(core_, "SERVICE_UPDATED", service_payload(id, "interfaces"));
}

void Workflows::set_docker_config(std::int64_t id, const std::optional<std::vector<std::string>>& entrypoint,
                                  const std::optional<std::vector<std::string>>& cmd) {
  for (const auto* v : {&entrypoint, &cmd})
    if (*v && ((*v)->size() > WorkflowLimits::list ||
               std::any_of((*v)->begin(), (*v)->end(), [](const std::string& s) { return s.size() > WorkflowLimits::text; })))
      invalid(v == &entrypoint ? "entrypoint" : "cmd", "at most 256 words of at most 4096 bytes");
  core_.store->write([&](Conn& c) {
    auto d = load_docker(c, id);
    if (!d) throw Error(Errc::not_found, "Docker service not found");
    auto& q = c.stmt("UPDATE docker_details SET entrypoint = ?, cmd = ? WHERE service_id = ?");
    q.bind(1, entrypoint ? (entrypoint->empty() ? std::string() : detail::string_array_json(*entrypoint)) : d->entrypoint);
    q.bind(2, cmd ? (cmd->empty() ? std::string() : detail::string_array_json(*cmd)) : d->cmd);
    q.bind(3, static_cast<std::int64_t>(id));
    q.run();
    touch_service(c, id, now_text(core_));
  });
  wf::publish(core_, "SERVICE_UPDATED", service_payload(id, "config"));
}

// ---------------------------------------------------------------- docker services

namespace {

// At most this many pulls/builds at once (each holds a thread, a build
// context in memory and the daemon's attention).
constexpr int kMaxDockerOps = 4;
constexpr std::chrono::seconds kPullTimeout{600};
constexpr std::chrono::seconds kBuildTimeout{900};
constexpr std::size_t kMaxBuildContext = 256 * 1024 * 1024;

struct DockerOpSlot {
  std::atomic<int>& n;
  explicit DockerOpSlot(std::atomic<int>& c) : n(c) {
    if (n.fetch_add(1) >= kMaxDockerOps) {
      n.fetch_sub(1);
      throw Error(Errc::resource_exhausted, "too many Docker operations in progress; try again later");
    }
  }
  ~DockerOpSlot() { n.fetch_sub(1); }
  DockerOpSlot(const DockerOpSlot&) = delete;
  DockerOpSlot& operator=(const DockerOpSlot&) = delete;
};

// Runs a Docker step of a creation: the daemon's failures become the
// document's 500 "Failed to create service: ..." (internal), whatever their
// kind (no daemon included); the request's own faults pass unchanged.
template <class F>
auto docker_step(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    if (e.code() == Errc::invalid_argument || e.code() == Errc::not_found || e.code() == Errc::resource_exhausted)
      throw;
    throw Error(Errc::internal, std::string(what) + ": " + e.message());
  }
}

// The interfaces an image suggests (the document's list): STDIN and STDOUT
// (jobs pipe them), ENV per environment variable (PATH excepted) and per
// exposed port, MOUNT (INPUT) per volume.
std::vector<ServiceInterface> suggested_from(const detail::ImageFacts& f) {
  std::vector<ServiceInterface> out = {{0, 0, "STDIN", "", "", "Standard input"},
                                       {0, 0, "STDOUT", "", "", "Standard output"}};
  for (const auto& e : f.env) {
    const auto eq = e.find('=');
    const std::string name = e.substr(0, eq);
    if (name.empty() || name == "PATH" || name.size() > WorkflowLimits::name) continue;
    out.push_back({0, 0, "ENV", name, "", "Detected environment variable"});
  }
  bool first = true;
  for (const auto& p : f.exposed_ports) {
    const std::string port = p.substr(0, p.find('/'));
    out.push_back({0, 0, "ENV", first ? std::string("PORT") : "PORT_" + port, "", "Detected exposed port " + p});
    first = false;
  }
  for (const auto& v : f.volumes) {
    if (v.size() > WorkflowLimits::text) continue;
    out.push_back({0, 0, "MOUNT", v, "INPUT", "Detected volume mount"});
  }
  if (out.size() > WorkflowLimits::list) out.resize(WorkflowLimits::list);
  return out;
}

std::string image_capabilities(const std::string& name, const std::string& tag) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("image_name"); w.String(name.c_str());
  w.Key("image_tag"); w.String(tag.c_str());
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// The image name a build gets: lucidnode/<service name, lower-cased to
// [a-z0-9-], at most 40>-<8 random hex>.
std::string built_image_name(const std::string& service_name) {
  std::string base;
  for (unsigned char c : service_name) {
    if (base.size() >= 40) break;
    if (std::isalnum(c)) base += static_cast<char>(std::tolower(c));
    else if (!base.empty() && base.back() != '-') base += '-';
  }
  while (!base.empty() && base.back() == '-') base.pop_back();
  if (base.empty()) base = "service";
  return "lucidnode/" + base + "-" + to_hex(random_bytes(4));
}

// The Dockerfile of a build directory: refused when absent, or when the
// directory is a docker-compose project (docs/decisions.md).
void check_build_dir(const fs::path& dir) {
  std::error_code ec;
  for (const char* compose : {"docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml"})
    if (fs::exists(dir / compose, ec))
      throw Error(Errc::internal, std::string("Failed to create service: ") + compose +
                                      " found; docker-compose projects are not supported by this server "
                                      "(build from a Dockerfile)");
  if (!fs::is_regular_file(fs::symlink_status(dir / "Dockerfile", ec)))
    throw Error(Errc::internal, "Failed to create service: no Dockerfile found");
}

}  // namespace

namespace {
// Records a DOCKER service for an image the daemon now has; the image is
// removed again if the record cannot be written.
DockerCreated record_docker(ClusterCore& core, const detail::DockerClient& dc, const std::string& name,
                            const std::string& description, const std::string& image, const std::string& tag,
                            const char* source, const std::vector<ServiceInterface>& custom, bool owns_image = true) {
  const std::string ref = image + ":" + tag;
  try {
    auto facts = docker_step("Failed to create service", [&] { return dc.inspect_image(ref); });
    if (!facts) throw Error(Errc::internal, "Failed to create service: the image is not on the daemon after " +
                                                std::string(source == std::string("registry") ? "the pull" : "the build"));
    DockerCreated out;
    out.suggested = suggested_from(*facts);
    out.service = core.store->write([&](Conn& c) {
      const auto id = insert_service(c, now_text(core), name, description, "DOCKER", "ACTIVE", "",
                                     image_capabilities(image, tag));
      auto& q = c.stmt("INSERT INTO docker_details(service_id, image_name, image_tag, source, entrypoint, cmd)"
                       " VALUES (?, ?, ?, ?, '', '')");
      q.bind(1, static_cast<std::int64_t>(id));
      q.bind(2, image);
      q.bind(3, tag);
      q.bind(4, source);
      q.run();
      insert_interfaces(c, id, custom.empty() ? out.suggested : custom);
      return must_service(c, id);
    });
    wf::publish(core, "SERVICE_UPDATED", service_payload(out.service.id, "created"));
    return out;
  } catch (...) {
    try {
      if (owns_image) dc.remove_image(ref);
    } catch (...) {
    }
    throw;
  }
}
}  // namespace

DockerCreated Workflows::create_docker_from_registry(const DockerRegistryCreate& r) {
  check_text("service_name", r.name, WorkflowLimits::name, true);
  check_text("description", r.description, WorkflowLimits::text, false);
  check_text("username", r.username, WorkflowLimits::name, false);
  check_text("password", r.password, WorkflowLimits::text, false);
  if (!valid_image_name(r.image_name))
    invalid("image_name", "image_name must be a Docker image reference ([host[:port]/]name, lower case)");
  if (!valid_image_tag(r.image_tag)) invalid("image_tag", "image_tag must be 1-128 of [A-Za-z0-9_.-]");
  check_interfaces(r.interfaces);
  DockerOpSlot slot(impl_->docker_ops);
  DockerClient dc(impl_->docker_socket);
  // An image the daemon already has is still pulled (it may be stale), but
  // a failed creation removes only an image the pull brought.
  const std::string ref = r.image_name + ":" + r.image_tag;
  const bool had = docker_step("Failed to create service", [&] { return dc.inspect_image(ref).has_value(); });
  docker_step("Failed to create service", [&] { dc.pull(r.image_name, r.image_tag, r.username, r.password, kPullTimeout, {}); });
  return record_docker(core_, dc, r.name, r.description, r.image_name, r.image_tag, "registry", r.interfaces,
                      /*owns_image=*/!had);
}

DockerCreated Workflows::create_docker_from_local(const DockerLocalCreate& r) {
  check_text("service_name", r.name, WorkflowLimits::name, true);
  check_text("description", r.description, WorkflowLimits::text, false);
  check_text("local_path", r.local_path, WorkflowLimits::text, true);
  check_interfaces(r.interfaces);
  const fs::path dir = confine(impl_->data_dir, r.local_path, "local_path");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) invalid("local_path", "local_path must be a directory");
  check_build_dir(dir);
  DockerOpSlot slot(impl_->docker_ops);
  DockerClient dc(impl_->docker_socket);
  const std::string image = built_image_name(r.name);
  docker_step("Failed to create service", [&] { dc.build(dir, "Dockerfile", image, "latest", kBuildTimeout, kMaxBuildContext, {}); });
  return record_docker(core_, dc, r.name, r.description, image, "latest", "local", r.interfaces);
}

std::string Workflows::create_docker_from_git(const DockerGitCreate& r) {
  check_text("service_name", r.name, WorkflowLimits::name, true);
  check_text("description", r.description, WorkflowLimits::text, false);
  check_git_url(r.repo_url, impl_->data_dir);
  check_branch(r.branch);
  check_text("username", r.username, WorkflowLimits::name, false);
  check_text("password", r.password, WorkflowLimits::text, false);
  check_interfaces(r.interfaces);
  auto slot = std::make_shared<DockerOpSlot>(impl_->docker_ops);
  static std::atomic<std::uint64_t> seq{0};
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string op = "docker-git-" + std::to_string(ns + static_cast<std::int64_t>(seq.fetch_add(1) % 1000));
  auto& core = core_;
  Impl& impl = *impl_;
  auto event = [&core, op](const char* type, const std::string& message, int pct, std::int64_t service_id) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("operation_id"); w.String(op.c_str());
    w.Key("message"); w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
    w.Key("percentage"); w.Int(pct);
    if (service_id) { w.Key("service_id"); w.Int64(service_id); }
    if (std::strcmp(type, "DOCKER_OPERATION_ERROR") == 0) { w.Key("error"); w.String(message.data(), static_cast<rapidjson::SizeType>(message.size())); }
    w.EndObject();
    wf::publish(core, type, std::string(buf.GetString(), buf.GetSize()));
  };
  impl.threads.spawn([&core, &impl, r, slot, event] {
    const fs::path dir = impl.data_dir / "services";
    const fs::path dest = dir / ("docker-git-" + to_hex(random_bytes(8)));
    std::error_code ec;
    std::string failure;
    try {
      event("DOCKER_OPERATION_START", "Cloning repository...", 0, 0);
      fs::create_directories(dir, ec);
      git_clone(r.repo_url, r.branch, r.username, r.password, dest);
      check_build_dir(dest);
      event("DOCKER_OPERATION_PROGRESS", "Building Docker image...", 50, 0);
      DockerClient dc(impl.docker_socket);
      const std::string image = built_image_name(r.name);
      // At most one progress event a second: a build's output can be long.
      auto last = std::chrono::steady_clock::now() - std::chrono::seconds(2);
      docker_step("Failed to create service", [&] {
        // The events go to every WebSocket client: they count the build's
        // steps, never carry its output (which may show the Dockerfile's values).
        std::size_t lines = 0;
        dc.build(dest, "Dockerfile", image, "latest", kBuildTimeout, kMaxBuildContext, [&](const std::string&) {
          ++lines;
          const auto now = std::chrono::steady_clock::now();
          if (now - last < std::chrono::seconds(1)) return;
          last = now;
          event("DOCKER_OPERATION_PROGRESS", "Building Docker image... (" + std::to_string(lines) + " lines of output)", 75, 0);
        });
      });
      auto created = record_docker(core, dc, r.name, r.description, image, "latest", "git", r.interfaces);
      fs::remove_all(dest, ec);  // before the last event: who sees it finds no clone left
      event("DOCKER_OPERATION_COMPLETE", "Docker service created", 100, created.service.id);
      return;
    } catch (const Error& e) {
      failure = e.message();
      if (auto at = failure.find(" (output: "); at != std::string::npos) failure.resize(at);  // see PROGRESS
    } catch (const std::exception& e) {
      failure = std::string("Failed to create service: ") + e.what();
    }
    fs::remove_all(dest, ec);
    event("DOCKER_OPERATION_ERROR", failure, 100, 0);
  });
  return op;
}

std::vector<ServiceInterface> Workflows::docker_suggested_interfaces(std::int64_t id) {
  const auto d = docker_details(id);
  if (d.image_name.empty()) throw Error(Errc::invalid_argument, "the service names no image", "source");
  DockerClient dc(impl_->docker_socket);
  auto facts = docker_step("Failed to detect interfaces",
                           [&] { return dc.inspect_image(d.image_name + ":" + (d.image_tag.empty() ? "latest" : d.image_tag)); });
  if (!facts) throw Error(Errc::internal, "Failed to detect interfaces: the service's image is not on the Docker daemon");
  return suggested_from(*facts);
}

// ---------------------------------------------------------------- workflows

std::vector<Workflow> Workflows::list_workflows() {
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT id, name, description, definition, created_at, updated_at FROM workflows ORDER BY id");
    std::vector<Workflow> out;
    while (q.step())
      out.push_back({q.column(0).as_int64(), q.column(1).as_text(), q.column(2).as_text(),
                     q.column(3).as_text(), parse_stored(q.column(4).as_text()),
                     parse_stored(q.column(5).as_text())});
    return out;
  });
}

Workflow Workflows::get_workflow(std::int64_t id) {
  return core_.store->read([&](Conn& c) {
    auto w = find_workflow(c, id);
    if (!w) workflow_not_found();
    return *w;
  });
}

Workflow Workflows::create_workflow(const std::string& name, const std::string& description,
                                   const std::string& definition) {
  check_text("name", name, WorkflowLimits::name, true);
  check_text("description", description, WorkflowLimits::text, false);
  check_json_text("definition", definition);
  auto w = core_.store->write([&](Conn& c) {
    const auto now = now_text(core_);
    auto& q = c.stmt("INSERT INTO workflows(name, description, definition, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
                     " RETURNING id");
    q.bind(1, name);
    q.bind(2, description);
    q.bind(3, definition);
    q.bind(4, now);
    q.bind(5, now);
    return *find_workflow(c, q.run_returning_id());
  });
  wf::publish(core_, "WORKFLOW_UPDATED", workflow_payload(w.id, "created"));
  return w;
}

Workflow Workflows::update_workflow(std::int64_t id, const std::string& name, const std::optional<std::string>& description,
                                   const std::optional<std::string>& definition) {
  check_text("name", name, WorkflowLimits::name, true);
  if (description) check_text("description", *description, WorkflowLimits::text, false);
  if (definition) check_json_text("definition", *definition);
  auto w = core_.store->write([&](Conn& c) {
    auto cur = find_workflow(c, id);
    if (!cur) workflow_not_found();
    auto& q = c.stmt("UPDATE workflows SET name = ?, description = ?, definition = ?, updated_at = ? WHERE id = ?");
    q.bind(1, name);
    q.bind(2, description.value_or(cur->description));
    q.bind(3, definition.value_or(cur->definition_json));
    q.bind(4, now_text(core_));
    q.bind(5, static_cast<std::int64_t>(id));
    q.run();
    return *find_workflow(c, id);
  });
  wf::publish(core_, "WORKFLOW_UPDATED", workflow_payload(id, "updated"));
  return w;
}

void Workflows::delete_workflow(std::int64_t id) {
  core_.store->write([&](Conn& c) {
    auto& q = c.stmt("DELETE FROM workflows WHERE id = ?");
    q.bind(1, static_cast<std::int64_t>(id));
    q.run();
    if (c.changes() == 0) workflow_not_found();
  });
  wf::publish(core_, "WORKFLOW_UPDATED", workflow_payload(id, "deleted"));
}

std::vector<WorkflowNode> Workflows::nodes(std::int64_t workflow_id) {
  return core_.store->read([&](Conn& c) {
    must_workflow(c, workflow_id);
    auto& q = c.stmt("SELECT id, workflow_id, node_type, peer_id, service_id, config, gui_props FROM workflow_nodes"
                     " WHERE workflow_id = ? ORDER BY id");
    q.bind(1, static_cast<std::int64_t>(workflow_id));
    std::vector<WorkflowNode> out;
    while (q.step()) out.push_back(read_node(q));
    return out;
  });
}

WorkflowNode Workflows::add_node(const WorkflowNode& n) {
  const std::string type = upper(n.node_type.empty() ? "SERVICE" : n.node_type);
  if (type != "SERVICE") invalid("node_type", "node_type must be SERVICE");
  check_text("peer_id", n.peer_id, WorkflowLimits::name, false);
  check_json_text("config", n.config_json);
  check_json_text("gui_props", n.gui_props_json);
  auto out = core_.store->write([&](Conn& c) {
    must_workflow(c, n.workflow_id);
    auto& cnt = c.stmt("SELECT COUNT(*) FROM workflow_nodes WHERE workflow_id = ?");
    cnt.bind(1, static_cast<std::int64_t>(n.workflow_id));
    cnt.step();
    if (static_cast<std::size_t>(cnt.column(0).as_int64()) >= WorkflowLimits::nodes)
      invalid("node_type", "a workflow has at most 1000 nodes");
    cnt.reset();
    auto& s = c.stmt("SELECT 1 FROM services WHERE id = ?");
    s.bind(1, static_cast<std::int64_t>(n.service_id));
    if (!s.step()) invalid("service_id", "service_id names no service");
    s.reset();
    auto& q = c.stmt("INSERT INTO workflow_nodes(workflow_id, node_type, peer_id, service_id, config, gui_props)"
                     " VALUES (?, ?, ?, ?, ?, ?) RETURNING id");
    q.bind(1, static_cast<std::int64_t>(n.workflow_id));
    q.bind(2, type);
    q.bind(3, n.peer_id);
    q.bind(4, static_cast<std::int64_t>(n.service_id));
    q.bind(5, n.config_json);
    q.bind(6, n.gui_props_json);
    const std::int64_t new_id = q.run_returning_id();
    WorkflowNode r = n;
    r.id = new_id;
    r.node_type = type;
    touch_workflow(c, n.workflow_id, now_text(core_));
    return r;
  });
  wf::publish(core_, "WORKFLOW_UPDATED", workflow_payload(n.workflow_id, "node_added"));
  return out;
}

void Workflows::delete_node(std::int64_t workflow_id, std::int64_t node_id) {
  core_.store->write([&](Conn& c) {
    auto& q = c.stmt("DELETE FROM workflow_nodes WHERE id = ? AND workflow_id = ?");
    q.bind(1, static_cast<std::int64_t>(node_id));
    q.bind(2, static_cast<std::int64_t>(workflow_id));
    q.run();
    if (c.changes() == 0) throw Error(Errc::not_found, "Node not found");
    touch_workflow(c, workflow_id, now_text(core_));
  });
  wf::publish(core_, "WORKFLOW_UPDATED", workflow_payload(workflow_id, "node_deleted"));
}

namespace {
void set_node_json(ClusterCore& core, std::int64_t workflow_id, std::int64_t node_id, const std::string& json,
                   bool gui) {
  check_json_text(gui ? "gui_props" : "config", json);
  core.store->write([&](Conn& c) {
    auto& q = gui ? c.stmt("UPDATE workflow_nodes SET gui_props = ? WHERE id = ? AND workflow_id = ?")
                  : c.stmt("UPDATE workflow_nodes SET config = ? WHERE id = ? AND workflow_id = ?");
    q.bind(1, json);
    q.bind(2, static_cast<std::int64_t>(node_id));
    q.bind(3, static_cast<std::int64_t>(workflow_id));
    q.run();
    if (c.changes() == 0) throw Error(Errc::not_found, "Node not found");
    touch_workflow(c, workflow_id, now_text(core));
  });
  wf::publish(core, "WORKFLOW_UPDATED", workflow_payload(workflow_id, gui ? "node_gui_props" : "node_config"));
}

void check_connection_nodes(Conn& c, const WorkflowConnection& x) {
  if (x.source_node_id == WorkflowConnection::kThisNode && x.target_node_id == WorkflowConnection::kThisNode)
    invalid("source_node_id", "a connection needs a workflow node on at least one end");
  for (auto [type, field] : {std::pair{&x.source_interface_type, "source_interface_type"},
                             std::pair{&x.target_interface_type, "target_interface_type"}})
    if (!type->empty() && !valid_interface_type(*type))
      invalid(field, std::string(field) + " must be one of STDIN, STDOUT, STDERR, LOGS, MOUNT, ENV, ARG");
  const std::string& f = x.destination_file_name;
  if (f.size() > WorkflowLimits::name || f == "." || f == ".." || f.find('/') != std::string::npos ||
      f.find('\0') != std::string::npos)
    invalid("destination_file_name", "destination_file_name must be a file name of at most 255 bytes without '/'");
  check_text("destination_file_name", f, WorkflowLimits::name, false);
  for (auto [id, field] : {std::pair{x.source_node_id, "source_node_id"}, std::pair{x.target_node_id, "target_node_id"}}) {
    if (id == WorkflowConnection::kThisNode) continue;
    auto& q = c.stmt("SELECT 1 FROM workflow_nodes WHERE id = ? AND workflow_id = ?");
    q.bind(1, static_cast<std::int64_t>(id));
    q.bind(2, static_cast<std::int64_t>(x.workflow_id));
    const bool ok = q.step();
    q.reset();
    if (!ok) invalid(field, std::string(field) + " names no node of this workflow");
  }
}
}  // namespace

void Workflows::set_node_gui_props(std::int64_t w, std::int64_t n, const std::string& json) {
  set_node_json(core_, w, n, json, true);
}
void Workflows::set_node_config(std::int64_t w, std::int64_t n, const std::string& json) {
  set_node_json(core_, w, n, json, false);
}

std::vector<WorkflowConnection> Workflows::connections(std::int64_t workflow_id) {
  return core_.store->read([&](Conn& c) {
    must_workflow(c, workflow_id);
    auto& q = c.stmt("SELECT id, workflow_id, source_node_id, source_interface_id, target_node_id, target_interface_id,"
                     " source_interface_type, target_interface_type, destination_file_name"
                     " FROM workflow_connections WHERE workflow_id = ? ORDER BY id");
    q.bind(1, static_cast<std::int64_t>(workflow_id));
    std::vector<WorkflowConnection> out;
    while (q.step())
      out.push_back({q.column(0).as_int64(), q.column(1).as_int64(), q.column(2).as_int64(),
                     opt_int(q.column(3)), q.column(4).as_int64(), opt_int(q.column(5)), q.column(6).as_text(),
                     q.column(7).as_text(), q.column(8).as_text()});
    return out;
  });
}

WorkflowConnection Workflows::add_connection(const WorkflowConnection& x) {
  auto out = core_.store->write([&](Conn& c) {
    must_workflow(c, x.workflow_id);
    auto& cnt = c.stmt("SELECT COUNT(*) FROM workflow_connections WHERE workflow_id = ?");
    cnt.bind(1, static_cast<std::int64_t>(x.workflow_id));
    cnt.step();
    if (static_cast<std::size_t>(cnt.column(0).as_int64()) >= WorkflowLimits::connections)
      invalid("source_node_id", "a workflow has at most 10000 connections");
    cnt.reset();
    check_connection_nodes(c, x);
    auto& q = c.stmt("INSERT INTO workflow_connections(workflow_id, source_node_id, source_interface_id,"
                     " target_node_id, target_interface_id, source_interface_type, target_interface_type,"
                     " destination_file_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
    q.bind(1, static_cast<std::int64_t>(x.workflow_id));
    q.bind(2, static_cast<std::int64_t>(x.source_node_id));
    bind_opt(q, 3, x.source_interface_id);
    q.bind(4, static_cast<std::int64_t>(x.target_node_id));
    bind_opt(q, 5, x.target_interface_id);
    q.bind(6, x.source_interface_type);
    q.bind(7, x.target_interface_type);
    q.bind(8, x.destination_file_name);
    const std::int64_t new_id = q.run_returning_id();
    WorkflowConnection r = x;
    r.id = new_id;
    touch_workflow(c, x.workflow_id, now_text(core_));
    return r;
  });
  wf::publish(core_, "WORKFLOW_UPDATED", workflow_payload(x.workflow_id, "connection_added"));
  return out;
}

void Workflows::update_connection(const WorkflowConnection& x) {
  core_.store->write([&](Conn& c) {
    auto& e = c.stmt("SELECT 1 FROM workflow_connections WHERE id = ? AND workflow_id = ?");
    e.bind(1, static_cast<std::int64_t>(x.id));
    e.bind(2, static_cast<std::int64_t>(x.workflow_id));
    const bool exists = e.step();
    e.reset();
    if (!exists) throw Error(Errc::not_found, "Connection not found");
    check_connection_nodes(c, x);
    auto& q = c.stmt("UPDATE workflow_connections SET source_node_id = ?, source_interface_id = ?, target_node_id = ?,"
                     " target_interface_id = ?, source_interface_type = ?, target_interface_type = ?,"
                     " destination_file_name = ? WHERE id = ?");
    q.bind(1, static_cast<std::int64_t>(x.source_node_id));
    bind_opt(q, 2, x.source_interface_id);
    q.bind(3, static_cast<std::int64_t>(x.target_node_id));
    bind_opt(q, 4, x.target_interface_id);
    q.bind(5, x.source_interface_type);
    q.bind(6, x.target_interface_type);
    q.bind(7, x.destination_file_name);
    q.bind(8, static_cast<std::int64_t>(x.id));
    q.run();
    touch_workflow(c, x.workflow_id, now_text(core_));
  });
  wf::publish(core_, "WORKFLOW_UPDATED", workflow_payload(x.workflow_id, "connection_updated"));
}

void Workflows::delete_connection(std::int64_t workflow_id, std::int64_t connection_id) {
  core_.store->write([&](Conn& c) {
    auto& q = c.stmt("DELETE FROM workflow_connections WHERE id = ? AND workflow_id = ?");
    q.bind(1, static_cast<std::int64_t>(connection_id));
    q.bind(2, static_cast<std::int64_t>(workflow_id));
    q.run();
    if (c.changes() == 0) throw Error(Errc::not_found, "Connection not found");
    touch_workflow(c, workflow_id, now_text(core_));
  });
  wf::publish(core_, "WORKFLOW_UPDATED", workflow_payload(workflow_id, "connection_deleted"));
}

std::string Workflows::ui_state(std::int64_t workflow_id) {
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT ui_state FROM workflows WHERE id = ?");
    q.bind(1, static_cast<std::int64_t>(workflow_id));
    if (!q.step()) workflow_not_found();
    return q.column(0).as_text();
  });
}

void Workflows::set_ui_state(std::int64_t workflow_id, const std::string& json) {
  check_json_text("ui_state", json);
  core_.store->write([&](Conn& c) {
    auto& q = c.stmt("UPDATE workflows SET ui_state = ? WHERE id = ?");
    q.bind(1, json);
    q.bind(2, static_cast<std::int64_t>(workflow_id));
    q.run();
    if (c.changes() == 0) workflow_not_found();
  });
}

}  // namespace lucid
