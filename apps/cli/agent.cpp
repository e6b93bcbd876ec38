#include "agent.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "agent_network.hpp"
#include "backoff.hpp"
#include "client.hpp"
#include "procstats.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/json_object.hpp"

namespace lucidctl {

namespace {
std::atomic<bool> g_verbose{false};
}  // namespace

void agent_say(const std::string& line) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lk(mu);
  std::cout << line << std::endl;
}

void set_agent_verbose(bool verbose) { g_verbose.store(verbose); }

void agent_detail(const std::string& line) {
  if (g_verbose.load()) agent_say(line);
}

std::string system_hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return {};
  return buf;
}

namespace {

void say(const std::string& s) { agent_say(s); }

// Sleeps up to `seconds`, waking early when stopping (or when `tasks` failed).
bool nap(double seconds, const std::atomic<bool>& stop, const TaskAgent* tasks = nullptr) {
  auto halted = [&] { return stop.load() || (tasks && tasks->failed()); };
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!halted() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return !halted();
}

std::string read_key(const std::string& path) {
  std::ifstream f(path);
  std::string key;
  std::getline(f, key);
  return key;
}

// Written to a temp file created 0600, fsynced, then renamed: the key is never
// in a world-readable or half-written file.
void write_key(const std::string& path, const std::string& key) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  if (!lucid::detail::write_file_atomically(path, key + "\n", lucid::detail::StaleTemp::replace))
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
}

std::string json_string_field(const std::string& body, const char* field) {
  rapidjson::Document d;
  if (!lucid::detail::parse_json(d, body, lucid::detail::kJsonStrict, lucid::detail::kJsonClientMaxDepth)) return {};
  return lucid::detail::peek_string(d, field).value_or("");
}

std::string join_body(const AgentOptions& o, const std::string& join_secret) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("hostname"); w.String(o.hostname.c_str());
  if (!join_secret.empty()) { w.Key("join_secret"); w.String(join_secret.c_str()); }
  if (!o.ip_address.empty()) { w.Key("ip_address"); w.String(o.ip_address.c_str()); }
  if (!o.system_info.empty()) { w.Key("system_info"); w.String(o.system_info.c_str()); }
  w.EndObject();
  return buf.GetString();
}

std::string stats_body(const HostStats& s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("cpu_usage"); w.Double(std::round(s.cpu_usage * 10) / 10);
  w.Key("disk_usage"); w.Double(std::round(s.disk_usage * 10) / 10);
  w.Key("active_backups"); w.Int(0);
  w.Key("memory_percent"); w.Double(std::round(s.memory_percent * 10) / 10);
  w.Key("uptime_seconds"); w.Int64(s.uptime_seconds);
  w.Key("disk_total_gb"); w.Double(std::round(s.disk_total_gb * 100) / 100);
  w.EndObject();
  return buf.GetString();
}

// The join secret of a pending request, kept beside the key file (0600,
// written like the key) so that a restarted agent can re-join and collect.
std::string join_secret_file(const AgentOptions& o) { return o.key_file + ".join"; }

// Joins (or re-joins: the server returns the same code for the same pending
// hostname to the holder of its join secret) and polls until the key arrives.
// Returns the key, or empty when stopping; exit code in `rc` for permanent failures.
std::string obtain_key(const AgentOptions& o, const std::atomic<bool>& stop, int& rc) {
  ApiClient api(o.server);
  Backoff backoff(o.max_backoff_seconds);
  std::string code = o.code;
  std::string secret = o.join_secret;
  const std::string secret_file = join_secret_file(o);
  if (secret.empty()) {
    struct stat st{};
    if (::stat(secret_file.c_str(), &st) == 0) {
      if (st.st_mode & 077) {
        say("agent: refusing join secret file " + secret_file + ": permissions must be 0600");
        rc = 2;
        return {};
      }
      secret = read_key(secret_file);
    }
  }
  if (!code.empty()) {
    if (secret.empty()) {
      say("agent: --code needs the join secret that came with it (--join-secret or LUCID_JOIN_SECRET)");
      rc = 2;
      return {};
    }
    say("agent: collecting the key for registration code " + code);
  }
  // The secret travels in a header on polls, never in the URL.
  if (!secret.empty()) api.set_header("X-Join-Secret", secret);
  while (!stop.load()) {
    if (code.empty()) {
      auto r = api.post("/api/v1/nodes/join-request", join_body(o, secret));
      if (r.status != 200) {
        if (r.status >= 400 && r.status < 500 && r.status != 429) {
          say("agent: join request refused: " + error_message(r) +
              (r.status == 409 ? " (this hostname's pending request was made with a join secret this agent does "
                                 "not hold; it expires unless approved)"
                               : ""));
          rc = 2;
          return {};
        }
        const double d = backoff.next(r);
        say("agent: join request failed (" + error_message(r) + "); retrying in " + std::to_string(static_cast<int>(d)) + "s");
        nap(d, stop);
        continue;
      }
      backoff.reset();
      code = json_string_field(r.body, "registration_code");
      // A new request: its secret is what proves this agent is its joiner.
      const std::string issued = json_string_field(r.body, "join_secret");
      if (!issued.empty()) {
        write_key(secret_file, issued);
        secret = issued;
        api.set_header("X-Join-Secret", secret);
      }
      if (code == "ACTIVE") {
        say("agent: hostname " + o.hostname + " is already an active node, but no key file exists at " + o.key_file +
            "; an administrator must remove the old node first");
        rc = 3;
        return {};
      }
      say("agent: registration code " + code + " (give it to an administrator: lucidctl nodes approve-code " + code +
          ")");
    }
    auto r = api.get("/api/v1/nodes/status/code/" + code);
    if (r.status == 200) {
      backoff.reset();
      const std::string key = json_string_field(r.body, "api_key");
      if (!key.empty()) {
        write_key(o.key_file, key);
        ::unlink(secret_file.c_str());  // spent: the key is collected once
        say("agent: approved; API key saved to " + o.key_file);
        return key;
      }
      nap(o.poll_seconds, stop);
    } else if (r.status == 403) {
      say("agent: the server refused our join secret for code " + code + " (" + error_message(r) + ")");
      rc = 2;
      return {};
    } else if (r.status == 404 || r.status == 422) {
      if (!o.code.empty()) {
        say("agent: registration code " + o.code + " is not known to the server (" + error_message(r) + ")");
        rc = 2;
        return {};
      }
      // The code is gone (the request expired or was removed): start over
      // with a new join request, which issues a new secret.
      say("agent: registration code no longer known; joining again");
      code.clear();
    } else {
      const double d = backoff.next(r);
      say("agent: polling failed (" + error_message(r) + "); retrying in " + std::to_string(static_cast<int>(d)) + "s");
      nap(d, stop);
    }
  }
  return {};
}

}  // namespace

int run_agent(const AgentOptions& o, const std::atomic<bool>& stop) {
  set_agent_verbose(o.verbose);
  int rc = 0;
  std::string key;
  struct stat st{};
  if (::stat(o.key_file.c_str(), &st) == 0) {
    if (st.st_mode & 077) {
      say("agent: refusing key file " + o.key_file + ": permissions must be 0600");
      return 2;
    }
    key = read_key(o.key_file);
    say("agent: using API key from " + o.key_file);
  } else {
    key = obtain_key(o, stop, rc);
    if (key.empty()) return rc;
  }

  ApiClient api(o.server);
  api.set_header("X-API-KEY", key);
  const bool has_identity = !register_identity(api, o).empty();
  HostSampler sampler(o.disk_path);
  Backoff backoff(o.max_backoff_seconds);
  std::unique_ptr<TaskAgent> tasks;
  if (o.tasks) {
    WorkOptions w = o.work;
    w.server = o.server;
    w.api_key = key;
    w.disk_path = o.disk_path;
    w.limits.disk_path = o.disk_path;
    w.max_backoff_seconds = o.max_backoff_seconds;
    tasks = std::make_unique<TaskAgent>(std::move(w));
    tasks->start();
  }
  // On every way out `tasks` is destroyed, which stops it (its children are killed).
  int sent = 0;
  bool was_failing = false;
  while (!stop.load()) {
    if (tasks && tasks->failed()) return tasks->failed();
    HostStats s;
    try {
      s = sampler.sample();
    } catch (const std::exception& e) {
      say(std::string("agent: cannot read host stats: ") + e.what());
      return 1;
    }
    auto r = api.post("/api/v1/stats/", stats_body(s));
    if (r.status == 200) {
      backoff.reset();
      ++sent;
      char line[200];
      std::snprintf(line, sizeof line, "agent: reported cpu=%.1f%% mem=%.1f%% disk=%.1f%% uptime=%llds", s.cpu_usage,
                    s.memory_percent, s.disk_usage, static_cast<long long>(s.uptime_seconds));
      // Quiet by default: the first report, the first after an outage, and
      // problems; every report with --verbose.
      if (was_failing) say("agent: server reachable again");
      if (sent == 1 && !o.verbose)
        say(std::string(line) + " (every " + std::to_string(o.interval_seconds) + "s; --verbose prints each report)");
      else if (was_failing)
        say(line);
      else
        agent_detail(line);
      was_failing = false;
      if (has_identity && sent % 12 == 1) report_network(api, o);  // at start, then about every minute
      if (o.max_reports > 0 && sent >= o.max_reports) return 0;
      nap(o.interval_seconds, stop, tasks.get());
    } else if (r.status == 401) {
      say("agent: the server rejected our API key (" + error_message(r) + ")");
      return 4;
    } else {
      // Down, restarting, or overloaded: retry with exponential backoff.
      was_failing = true;
      const double d = backoff.next(r);
      say("agent: report failed (" + error_message(r) + "); retrying in " + std::to_string(static_cast<int>(d)) + "s");
      nap(d, stop, tasks.get());
    }
  }
  return 0;
}

}  // namespace lucidctl
