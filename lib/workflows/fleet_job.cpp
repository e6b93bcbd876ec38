// Workflow jobs on fleet nodes: payload and result codecs, and the agent's run.
#include "workflows/fleet_job.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <unistd.h>

#include <cctype>
#include <cstring>

#include "lucidnode/error.hpp"
#include "util/encoding.hpp"
#include "util/json.hpp"
#include "util/json_object.hpp"
#include "workflows/docker.hpp"
#include "workflows/process.hpp"

namespace lucid::detail {

namespace {

constexpr std::size_t kMaxArgs = 256;
constexpr std::size_t kMaxEnv = 256;
constexpr std::size_t kMaxText = 64 * 1024;  // one argument, variable value, entrypoint word

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put(Writer& w, const char* key, const std::string& v) {
  w.Key(key);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

void put_strings(Writer& w, const char* key, const std::vector<std::string>& v) {
  w.Key(key);
  w.StartArray();
  for (const auto& s : v) w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  w.EndArray();
}

[[noreturn]] void bad(const std::string& field, const std::string& what) {
  throw Error(Errc::invalid_argument, field + " " + what, field);
}

std::vector<std::string> words(const JsonObject& o, const char* field, std::size_t max_items) {
  std::vector<std::string> out;
  if (const auto* v = o.member(field)) out = string_array(*v, field, max_items);
  for (const auto& s : out)
    if (s.size() > kMaxText || s.find('\0') != std::string::npos) bad(field, "has an entry that is too long or has NUL");
  return out;
}

bool env_name_ok(const std::string& k) {
  if (k.empty() || k.size() > 256 || (std::isdigit(static_cast<unsigned char>(k[0])))) return false;
  for (char c : k)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return k.rfind("LUCID_", 0) != 0;  // the ids are set by the runner
}

std::int64_t bounded(const JsonObject& o, const char* field, std::int64_t lo, std::int64_t hi, std::int64_t dflt) {
  const auto v = o.optional_int(field);
  if (!v) return dflt;
  if (*v < lo || *v > hi) bad(field, "must be " + std::to_string(lo) + ".." + std::to_string(hi));
  return *v;
}

std::string ids_suffix(const FleetJob& j) { return std::to_string(j.job_id) + "-" + to_hex(random_bytes(4)); }

std::vector<std::string> job_env_ids(const FleetJob& j) {
  return {"LUCID_WORKFLOW_ID=" + std::to_string(j.workflow_id), "LUCID_EXECUTION_ID=" + std::to_string(j.execution_id),
          "LUCID_JOB_ID=" + std::to_string(j.job_id)};
}

FleetJobResult run_standalone(const FleetJob& job, const FleetJobHost& host, const std::function<bool()>& cancelled) {
  FleetJobResult r;
  std::error_code ec;
  std::filesystem::create_directories(host.work_root, ec);
  const auto dir = host.work_root / ("job-" + ids_suffix(job));
  if (ec || !std::filesystem::create_directory(dir, ec) || ec) {
    r.failure = "cannot create the job directory under " + host.work_root.string() + ": " +
                (ec ? ec.message() : std::string("it exists"));
    return r;
  }
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  PipedRun run;
  run.argv = {job.executable};
  run.argv.insert(run.argv.end(), job.arguments.begin(), job.arguments.end());
  run.env = base_environment();
  for (auto& e : job_env_ids(job)) run.env.push_back(std::move(e));
  for (const auto& [k, v] : job.environment) run.env.push_back(k + "=" + v);
  run.cwd = dir.string();
  run.input = job.input;
  run.timeout = std::chrono::seconds(job.timeout_seconds);
  run.max_out = job.max_stdout;
  run.max_err = job.max_stderr;
  run.cancelled = cancelled;
  run.die_with_parent = true;  // a killed agent leaves no job running
  // posix_spawn would say "cannot start" for a missing program; the fork
  // path can only exit 127, so say it first.
  if (::access(job.executable.c_str(), X_OK) != 0) {
    r.failure = "cannot start " + job.executable + " on this node: " + std::strerror(errno);
    std::filesystem::remove_all(dir, ec);
    return r;
  }
  try {
    auto p = run_piped(run);
    r.out = std::move(p.out);
    r.err = std::move(p.err);
    r.exit_code = p.exit_code;
    if (p.killed && *p.killed == "cancelled") r.cancelled = true;
    if (p.killed) r.failure = *p.killed;
    else if (p.signal) r.failure = "killed by signal " + std::to_string(*p.signal);
  } catch (const Error& e) {
    r.failure = e.message();
  }
  std::filesystem::remove_all(dir, ec);
  return r;
}

FleetJobResult run_container(const FleetJob& job, const FleetJobHost& host, const std::function<bool()>& cancelled) {
  FleetJobResult r;
  ContainerRun cr;
  cr.entrypoint = job.entrypoint;
  cr.cmd = job.cmd;
  cr.env = job_env_ids(job);
  cr.input = job.input;
  cr.timeout = std::chrono::seconds(job.timeout_seconds);
  cr.max_output = std::max(job.max_stdout, job.max_stderr);
  cr.memory_bytes = job.memory_bytes;
  cr.nano_cpus = job.nano_cpus;
  cr.pids_limit = job.pids_limit;
  cr.network = job.network;
  cr.name = "lucidnode-fleet-job-" + ids_suffix(job);
  bool was_cancelled = false;
  cr.cancelled = [&] { return was_cancelled || (cancelled && (was_cancelled = cancelled())); };
  try {
    DockerClient dc(host.docker_socket);
    // An image this node's daemon lacks is pulled (its registry, no
    // credentials); an image built on the server must be present already.
    if (!dc.inspect_image(job.image)) {
      const auto colon = job.image.rfind(':');
      try {
        dc.pull(job.image.substr(0, colon), job.image.substr(colon + 1), "", "", std::chrono::seconds(600), {});
      } catch (const Error& e) {
        r.failure = "image " + job.image + " is not on this node's Docker daemon and could not be pulled: " + e.message();
        return r;
      }
    }
    auto res = dc.run(job.image, cr);
    r.out = std::move(res.out);
    r.err = std::move(res.err);
    // The driver bounds both outputs by one figure; STDERR's bound is lower here.
    if (r.out.size() > job.max_stdout) res.failure = "output exceeds " + std::to_string(job.max_stdout) + " bytes";
    if (r.err.size() > job.max_stderr) res.failure = "output exceeds " + std::to_string(job.max_stderr) + " bytes";
    r.out.resize(std::min(r.out.size(), job.max_stdout));
    r.err.resize(std::min(r.err.size(), job.max_stderr));
    if (res.failure) r.failure = *res.failure;
    else r.exit_code = res.exit_code;
  } catch (const std::exception& e) {
    r.failure = std::string("could not start the container job: ") + e.what();
  }
  r.cancelled = was_cancelled;
  return r;
}

}  // namespace

std::string fleet_job_payload(const FleetJob& j) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  put(w, "kind", j.container ? "docker" : "standalone");
  if (j.container) {
    put(w, "image", j.image);
    put_strings(w, "entrypoint", j.entrypoint);
    put_strings(w, "cmd", j.cmd);
    w.Key("memory_bytes"); w.Int64(j.memory_bytes);
    w.Key("nano_cpus"); w.Int64(j.nano_cpus);
    w.Key("pids_limit"); w.Int64(j.pids_limit);
    w.Key("network"); w.Bool(j.network);
  } else {
    put(w, "executable", j.executable);
    put_strings(w, "arguments", j.arguments);
    w.Key("environment");
    w.StartObject();
    for (const auto& [k, v] : j.environment) {
      w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
      w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    }
    w.EndObject();
  }
  put(w, "stdin", base64url_encode(j.input));
  w.Key("timeout_seconds"); w.Int64(j.timeout_seconds);
  w.Key("max_stdout"); w.Uint64(j.max_stdout);
  w.Key("max_stderr"); w.Uint64(j.max_stderr);
  w.Key("workflow_id"); w.Int64(j.workflow_id);
  w.Key("execution_id"); w.Int64(j.execution_id);
  w.Key("job_id"); w.Int64(j.job_id);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

FleetJob parse_fleet_job(const std::string& payload_json) {
  std::optional<JsonObject> parsed;
  try {
    parsed.emplace(payload_json);
  } catch (const MalformedJson& m) {
    throw Error(Errc::invalid_argument, "payload is not JSON: " + m.message, "payload");
  }
  const JsonObject& o = *parsed;
  o.reject_unknown({"kind", "image", "entrypoint", "cmd", "memory_bytes", "nano_cpus", "pids_limit", "network",
                    "executable", "arguments", "environment", "stdin", "timeout_seconds", "max_stdout", "max_stderr",
                    "workflow_id", "execution_id", "job_id"});
  FleetJob j;
  const auto kind = o.required_string("kind", 16);
  if (kind != "standalone" && kind != "docker") bad("kind", "must be standalone or docker");
  j.container = kind == "docker";
  if (j.container) {
    j.image = o.required_string("image", 512);
    const auto slash = j.image.rfind('/');
    const auto colon = j.image.rfind(':');
    if (colon == std::string::npos || (slash != std::string::npos && colon < slash) ||
        !valid_image_name(j.image.substr(0, colon)) || !valid_image_tag(j.image.substr(colon + 1)))
      bad("image", "must be a Docker image reference name:tag");
    j.entrypoint = words(o, "entrypoint", kMaxArgs);
    j.cmd = words(o, "cmd", kMaxArgs);
    j.memory_bytes = bounded(o, "memory_bytes", 0, 1048576LL * 1024 * 1024, 0);
    j.nano_cpus = bounded(o, "nano_cpus", 0, 1024LL * 1000000000LL, 0);
    j.pids_limit = bounded(o, "pids_limit", 0, 1000000, 0);
    j.network = o.optional_bool("network").value_or(false);
  } else {
    j.executable = o.required_string("executable", 4096);
    if (j.executable.empty() || j.executable[0] != '/' || j.executable.find('\0') != std::string::npos)
      bad("executable", "must be an absolute path");
    j.arguments = words(o, "arguments", kMaxArgs);
    if (const auto* env = o.member("environment")) {
      if (!env->IsObject()) bad("environment", "must be an object of strings");
      if (env->MemberCount() > kMaxEnv) bad("environment", "has too many variables");
      for (const auto& m : env->GetObject()) {
        std::string k(m.name.GetString(), m.name.GetStringLength());
        if (!env_name_ok(k)) bad("environment", "has an invalid variable name");
        if (!m.value.IsString() || m.value.GetStringLength() > kMaxText ||
            std::memchr(m.value.GetString(), 0, m.value.GetStringLength()))
          bad("environment", "values must be strings without NUL, at most 65536 bytes");
        j.environment.emplace_back(std::move(k), std::string(m.value.GetString(), m.value.GetStringLength()));
      }
    }
  }
  const auto in = o.optional_string("stdin", kFleetMaxInput * 4 / 3 + 4).value_or("");
  auto decoded = base64url_decode(in);
  if (!decoded) bad("stdin", "must be base64url");
  if (decoded->size() > kFleetMaxInput) bad("stdin", "must be at most " + std::to_string(kFleetMaxInput) + " bytes");
  j.input = std::move(*decoded);
  j.timeout_seconds = bounded(o, "timeout_seconds", 1, 86400, 300);
  j.max_stdout = static_cast<std::size_t>(bounded(o, "max_stdout", 1, kFleetMaxStdout, kFleetMaxStdout));
  j.max_stderr = static_cast<std::size_t>(bounded(o, "max_stderr", 1, kFleetMaxStderr, kFleetMaxStderr));
  j.workflow_id = bounded(o, "workflow_id", 0, INT64_MAX, 0);
  j.execution_id = bounded(o, "execution_id", 0, INT64_MAX, 0);
  j.job_id = bounded(o, "job_id", 0, INT64_MAX, 0);
  return j;
}

FleetJobResult run_fleet_job(const FleetJob& job, const FleetJobHost& host, const std::function<bool()>& cancelled) {
  if (job.container) {
    if (!host.allow_docker) {
      FleetJobResult r;
      r.failure = "this agent does not run Docker jobs (lucidctl agent --allow-docker)";
      return r;
    }
    return run_container(job, host, cancelled);
  }
  if (!host.allow_standalone) {
    FleetJobResult r;
    r.failure = "this agent does not run workflow jobs (lucidctl agent --allow-workflow-jobs)";
    return r;
  }
  return run_standalone(job, host, cancelled);
}

std::string fleet_result_json(const FleetJobResult& r) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("exit_code");
  if (r.exit_code) w.Int(*r.exit_code); else w.Null();
  put(w, "stdout", base64url_encode(r.out));
  put(w, "stderr", base64url_encode(r.err));
  if (r.failure) put(w, "failure", *r.failure);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::optional<FleetOutputs> parse_fleet_result(const std::string& result_json) {
  rapidjson::Document d;
  if (!parse_json(d, result_json) || !d.IsObject()) return std::nullopt;
  FleetOutputs o;
  const auto out = peek_string(d, "stdout");
  const auto err = peek_string(d, "stderr");
  if (!out || !err) return std::nullopt;
  auto a = base64url_decode(*out);
  auto b = base64url_decode(*err);
  if (!a || !b) return std::nullopt;
  o.out = std::move(*a);
  o.err = std::move(*b);
  o.out.resize(std::min(o.out.size(), kFleetMaxStdout));
  o.err.resize(std::min(o.err.size(), kFleetMaxStderr));
  o.exit_code = peek_int(d, "exit_code");
  return o;
}

}  // namespace lucid::detail
