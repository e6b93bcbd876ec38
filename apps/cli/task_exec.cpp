#include "task_exec.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <httplib.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>

#include "procstats.hpp"
#include "util/json.hpp"

namespace lucidctl {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::size_t kMaxArgs = 256;
constexpr std::size_t kMaxArgBytes = 64 * 1024;
constexpr std::size_t kMaxEnv = 64;
constexpr double kMaxSleepSeconds = 86400;
constexpr std::size_t kMaxHttpBody = 128 * 1024;      // response body bytes kept
constexpr std::size_t kMaxHttpDrain = 8 * 1024 * 1024;  // read (and dropped) before giving up on the rest

// The python_eval driver: the source comes on stdin; the user's prints are
// captured; one JSON line goes to the real stdout.
constexpr const char* kPythonDriver = R"PY(
import io, json, sys, traceback
mode = sys.argv[1]
src = sys.stdin.read()
real_out = sys.stdout
buf = io.StringIO()
sys.stdout = buf
out = {"ok": True}
try:
    env = {"__name__": "__task__"}
    if mode == "expression":
        value = eval(compile(src, "<task>", "eval"), env)
    else:
        exec(compile(src, "<task>", "exec"), env)
        value = env.get("result")
    try:
        json.dumps(value, allow_nan=False)
        out["result"] = value
    except (TypeError, ValueError):
        out["result"] = repr(value)
except BaseException as e:
    out = {"ok": False, "error": "".join(traceback.format_exception_only(type(e), e)).strip()}
sys.stdout = real_out
out["stdout"] = buf.getvalue()[:131072]
real_out.write(json.dumps(out, allow_nan=False))
real_out.flush()
)PY";

rapidjson::Document parse_payload(const TaskAssignment& t) {
  rapidjson::Document d;
  if (!lucid::detail::parse_json(d, t.payload_json)) throw PayloadError("payload is not valid JSON");
  return d;
}

const rapidjson::Value* member(const rapidjson::Value& o, const char* name) {
  if (!o.IsObject()) return nullptr;
  auto it = o.FindMember(name);
  return it == o.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
}

std::string string_member(const rapidjson::Value& o, const char* name, std::size_t max, bool required) {
  const auto* v = member(o, name);
  if (!v) {
    if (required) throw PayloadError(std::string("payload.") + name + " is required");
    return {};
  }
  if (!v->IsString()) throw PayloadError(std::string("payload.") + name + " must be a string");
  if (v->GetStringLength() > max)
    throw PayloadError(std::string("payload.") + name + " is longer than " + std::to_string(max) + " bytes");
  std::string s(v->GetString(), v->GetStringLength());
  if (s.find('\0') != std::string::npos) throw PayloadError(std::string("payload.") + name + " contains a NUL byte");
  return s;
}

void put_string(Writer& w, const char* key, const std::string& s) {
  w.Key(key);
  const std::string v = valid_utf8(s);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
}

std::string ms_text(std::int64_t ms) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g s", static_cast<double>(ms) / 1000.0);
  return b;
}

// A result of JSON text, or the note that it was too big.
std::string bounded_result(std::string json) {
  if (json.size() <= kMaxResultBytes) return json;
  return "{\"result_truncated\":true,\"result_bytes\":" + std::to_string(json.size()) + "}";
}

// The command result, shrinking the kept output until its JSON fits.
std::string command_result(const ExecResult& r) {
  std::size_t keep_out = r.out.size(), keep_err = r.err.size();
  for (;;) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("exit_code");
    if (r.end == ExecEnd::exited) w.Int(r.exit_code);
    else w.Null();
    put_string(w, "stdout", r.out.substr(0, keep_out));
    put_string(w, "stderr", r.err.substr(0, keep_err));
    w.Key("stdout_truncated"); w.Bool(r.out_truncated || keep_out < r.out.size());
    w.Key("stderr_truncated"); w.Bool(r.err_truncated || keep_err < r.err.size());
    w.Key("stdout_bytes"); w.Uint64(r.out_total);
    w.Key("stderr_bytes"); w.Uint64(r.err_total);
    w.EndObject();
    if (buf.GetSize() <= kMaxResultBytes || (keep_out == 0 && keep_err == 0)) return bounded_result(buf.GetString());
    keep_out /= 2;
    keep_err /= 2;
  }
}

// ---- built-in task bodies (run in the child) ----

int builtin_fail(const std::string& why) {
  std::cerr << why << "\n";
  return 1;
}

void write_json(const rapidjson::StringBuffer& buf) {
  std::cout.write(buf.GetString(), static_cast<std::streamsize>(buf.GetSize()));
  std::cout.flush();
}

int builtin_echo(const rapidjson::Document& payload) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("echo");
  payload.Accept(w);
  w.EndObject();
  write_json(buf);
  return 0;
}

int builtin_sleep(double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::this_thread::sleep_until(until);
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("slept_seconds"); w.Double(seconds);
  w.EndObject();
  write_json(buf);
  return 0;
}

int builtin_system_info(const std::string& disk_path) {
  const Capabilities c = detect_capabilities(disk_path);
  HostSampler sampler(disk_path);
  const HostStats s = sampler.sample();
  utsname u{};
  ::uname(&u);
  double load[3] = {0, 0, 0};
  std::ifstream la("/proc/loadavg");
  la >> load[0] >> load[1] >> load[2];
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("platform"); w.String(c.platform.c_str());
  w.Key("hostname"); w.String(u.nodename);
  w.Key("kernel"); w.String((std::string(u.sysname) + " " + u.release).c_str());
  w.Key("architecture"); w.String(u.machine);
  w.Key("cpu_count"); w.Int(c.cpu_count);
  put_string(w, "cpu_model", c.cpu_model);
  w.Key("cpu_usage_percent"); w.Double(std::round(s.cpu_usage * 10) / 10);
  w.Key("memory_total_gb"); w.Double(c.memory_total_gb);
  w.Key("memory_used_percent"); w.Double(std::round(s.memory_percent * 10) / 10);
  w.Key("storage_total_gb"); w.Double(c.storage_total_gb);
  w.Key("storage_used_percent"); w.Double(std::round(s.disk_usage * 10) / 10);
  w.Key("has_gpu"); w.Bool(c.has_gpu);
  w.Key("internet"); w.Bool(c.internet);
  w.Key("load_average");
  w.StartArray();
  for (double l : load) w.Double(l);
  w.EndArray();
  w.Key("uptime_seconds"); w.Int64(s.uptime_seconds);
  w.EndObject();
  write_json(buf);
  return 0;
}

int builtin_http_request(const rapidjson::Document& p) {
  if (!p.IsObject()) return builtin_fail("payload must be an object");
  const std::string url = string_member(p, "url", 4096, true);
  std::string method = string_member(p, "method", 16, false);
  if (method.empty()) method = "GET";
  for (auto& ch : method) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  static const char* kMethods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  if (std::find_if(std::begin(kMethods), std::end(kMethods), [&](const char* m) { return method == m; }) ==
      std::end(kMethods))
    return builtin_fail("payload.method must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos || (url.compare(0, scheme_end, "http") != 0 && url.compare(0, scheme_end, "https") != 0))
    return builtin_fail("payload.url must start with http:// or https://");
  const std::size_t path_start = url.find('/', scheme_end + 3);
  const std::string origin = url.substr(0, path_start);
  const std::string path = path_start == std::string::npos ? "/" : url.substr(path_start);
  if (origin.size() <= scheme_end + 3) return builtin_fail("payload.url has no host");

  httplib::Request req;
  req.method = method;
  req.path = path;
  if (const auto* h = member(p, "headers")) {
    if (!h->IsObject() || h->MemberCount() > 64) return builtin_fail("payload.headers must be an object of at most 64 strings");
    for (const auto& m : h->GetObject()) {
      if (!m.value.IsString() || m.name.GetStringLength() > 256 || m.value.GetStringLength() > 8192)
        return builtin_fail("payload.headers values must be strings (names <= 256, values <= 8192 bytes)");
      const std::string k = m.name.GetString(), v = m.value.GetString();
      if (k.find_first_of("\r\n:") != std::string::npos || v.find_first_of("\r\n") != std::string::npos)
        return builtin_fail("payload.headers must not contain CR, LF (or ':' in a name)");
      req.headers.emplace(k, v);
    }
  }
  req.body = string_member(p, "body", 512 * 1024, false);
  if (!req.body.empty() && !req.has_header("Content-Type")) req.headers.emplace("Content-Type", "text/plain");
  double timeout = 30;
  if (const auto* t = member(p, "timeout_seconds")) {
    if (!t->IsNumber() || t->GetDouble() <= 0 || t->GetDouble() > 3600)
      return builtin_fail("payload.timeout_seconds must be a number in (0, 3600]");
    timeout = t->GetDouble();
  }

  int status = 0;
  httplib::Headers resp_headers;
  std::string body;
  std::size_t total = 0;
  req.response_handler = [&](const httplib::Response& r) {
    status = r.status;
    resp_headers = r.headers;
    return true;
  };
  req.content_receiver = [&](const char* data, std::size_t len, std::uint64_t, std::uint64_t) {
    total += len;
    if (body.size() < kMaxHttpBody) body.append(data, std::min(len, kMaxHttpBody - body.size()));
    return total <= kMaxHttpDrain;
  };
  httplib::Client cli(origin);
  if (!cli.is_valid()) return builtin_fail("payload.url is not a valid URL");
  const auto secs = static_cast<time_t>(timeout);
  const auto usecs = static_cast<time_t>((timeout - static_cast<double>(secs)) * 1e6);
  cli.set_connection_timeout(secs, usecs);
  cli.set_read_timeout(secs, usecs);
  cli.set_write_timeout(secs, usecs);
  const auto t0 = std::chrono::steady_clock::now();
  auto res = cli.send(req);
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  const bool drained_too_much = !res && res.error() == httplib::Error::Canceled && status != 0;
  if (!res && !drained_too_much) return builtin_fail("request failed: " + httplib::to_string(res.error()));

  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("status_code"); w.Int(status);
  w.Key("headers");
  w.StartObject();
  std::size_t n = 0;
  for (const auto& [k, v] : resp_headers) {
    if (++n > 64) break;
    const std::string key = valid_utf8(k.substr(0, 256)), val = valid_utf8(v.substr(0, 2048));
    w.Key(key.c_str(), static_cast<rapidjson::SizeType>(key.size()));
    w.String(val.c_str(), static_cast<rapidjson::SizeType>(val.size()));
  }
  w.EndObject();
  put_string(w, "body", body);
  w.Key("body_truncated"); w.Bool(total > body.size());
  w.Key("body_bytes"); w.Uint64(total);
  w.Key("elapsed_ms"); w.Int64(elapsed);
  w.EndObject();
  write_json(buf);
  return 0;
}

}  // namespace

bool is_task_type(const std::string& t) {
  for (const char* k : kAlwaysAllowedTypes)
    if (t == k) return true;
  return is_opt_in_type(t);
}

bool is_opt_in_type(const std::string& t) {
  for (const char* k : kOptInTypes)
    if (t == k) return true;
  return false;
}

ExecSpec build_exec(const TaskAssignment& t, const ExecLimits& lim) {
  ExecSpec s;
  s.timeout = std::chrono::seconds(t.timeout_seconds > 0 ? t.timeout_seconds : 300);
  s.max_stdout = lim.max_stdout;
  s.max_stderr = lim.max_stderr;
  const rapidjson::Document p = parse_payload(t);
  if (t.task_type == "echo" || t.task_type == "http_request") {
    s.argv = {lim.self_exe, "__task", t.task_type};
    s.stdin_data = t.payload_json;
    // An echo must hand back its payload whole: the result bound applies later.
    if (t.task_type == "echo") s.max_stdout = std::max(s.max_stdout, t.payload_json.size() + 64);
  } else if (t.task_type == "sleep") {
    const rapidjson::Value* v = member(p, "seconds");
    if (!v) v = member(p, "duration");
    if (!v && p.IsNumber()) v = &p;
    if (!v || !v->IsNumber() || !std::isfinite(v->GetDouble()) || v->GetDouble() < 0 ||
        v->GetDouble() > kMaxSleepSeconds)
      throw PayloadError("payload.seconds must be a number of seconds in [0, 86400]");
    s.argv = {lim.self_exe, "__task", "sleep"};
    char num[64];
    std::snprintf(num, sizeof num, "%.17g", v->GetDouble());
    s.stdin_data = num;
  } else if (t.task_type == "system_info") {
    s.argv = {lim.self_exe, "__task", "system_info"};
    if (!lim.disk_path.empty()) s.stdin_data = lim.disk_path;
  } else if (t.task_type == "command") {
    if (!p.IsObject()) throw PayloadError("payload must be an object with argv (or command and shell: true)");
    const auto* argv = member(p, "argv");
    const auto* command = member(p, "command");
    const auto* shell = member(p, "shell");
    if (shell && !shell->IsBool()) throw PayloadError("payload.shell must be a boolean");
    const bool use_shell = shell && shell->GetBool();
    if (argv && command) throw PayloadError("payload has both argv and command: give one");
    if (command && command->IsArray()) argv = command, command = nullptr;
    if (argv) {
      if (use_shell) throw PayloadError("payload.shell applies to a command string, not to argv");
      if (!argv->IsArray() || argv->Empty() || argv->Size() > kMaxArgs)
        throw PayloadError("payload.argv must be a non-empty array of at most 256 strings");
      std::size_t bytes = 0;
      for (const auto& a : argv->GetArray()) {
        if (!a.IsString()) throw PayloadError("payload.argv must contain strings only");
        std::string arg(a.GetString(), a.GetStringLength());
        if (arg.find('\0') != std::string::npos) throw PayloadError("payload.argv contains a NUL byte");
        bytes += arg.size();
        s.argv.push_back(std::move(arg));
      }
      if (bytes > kMaxArgBytes) throw PayloadError("payload.argv is longer than 65536 bytes in all");
      if (s.argv[0].empty()) throw PayloadError("payload.argv[0] is empty");
    } else if (command) {
      const std::string cmd = string_member(p, "command", kMaxArgBytes, true);
      if (!use_shell)
        throw PayloadError("payload.command is run by /bin/sh only with \"shell\": true; otherwise give argv");
      if (cmd.empty()) throw PayloadError("payload.command is empty");
      s.argv = {"/bin/sh", "-c", cmd};
    } else {
      throw PayloadError("payload.argv (or payload.command with shell: true) is required");
    }
    s.cwd = string_member(p, "cwd", 4096, false);
    s.stdin_data = string_member(p, "stdin", 1024 * 1024, false);
    if (const auto* env = member(p, "env")) {
      if (!env->IsObject() || env->MemberCount() > kMaxEnv)
        throw PayloadError("payload.env must be an object of at most 64 strings");
      for (const auto& m : env->GetObject()) {
        const std::string k(m.name.GetString(), m.name.GetStringLength());
        if (!m.value.IsString()) throw PayloadError("payload.env." + k + " must be a string");
        const std::string v(m.value.GetString(), m.value.GetStringLength());
        if (k.empty() || k.size() > 256 || k.find_first_of("=", 0) != std::string::npos ||
            k.find('\0') != std::string::npos || v.find('\0') != std::string::npos || v.size() > 8192)
          throw PayloadError("payload.env names must be 1..256 bytes without '=', values <= 8192 bytes");
        s.env.emplace_back(k, v);
      }
    }
  } else if (t.task_type == "python_eval") {
    std::string mode = "expression", src;
    if (p.IsObject()) {
      src = string_member(p, "expression", kMaxArgBytes, false);
      if (src.empty()) {
        src = string_member(p, "code", kMaxArgBytes, false);
        mode = "code";
      }
    } else if (p.IsString() && p.GetStringLength() <= kMaxArgBytes) {
      src.assign(p.GetString(), p.GetStringLength());
    }
    if (src.empty()) throw PayloadError("payload.expression (or payload.code) is required");
    s.argv = {lim.python, "-I", "-c", kPythonDriver, mode};
    s.stdin_data = src;
  } else {
    throw PayloadError("unknown task type " + t.task_type);
  }
  return s;
}

TaskOutcome failed_outcome(const std::string& error) {
  TaskOutcome o;
  o.status = "failed";
  o.result_json = "null";
  o.error = error;
  return o;
}

TaskOutcome outcome_of(const TaskAssignment& t, const ExecResult& r) {
  TaskOutcome o;
  o.duration_ms = r.duration.count();
  o.result_json = "null";
  const bool is_command = t.task_type == "command";
  switch (r.end) {
    case ExecEnd::spawn_failed:
      o.status = "failed";
      o.error = r.error;
      return o;
    case ExecEnd::timeout:
      o.status = "timeout";
      o.error = "killed after " + ms_text(o.duration_ms) + " (timeout " + std::to_string(t.timeout_seconds) + " s)";
      if (is_command) o.result_json = command_result(r);
      return o;
    case ExecEnd::cancelled:
      o.status = "cancelled";
      o.error = "cancelled while running";
      if (is_command) o.result_json = command_result(r);
      return o;
    case ExecEnd::signaled:
      o.status = "failed";
      o.error = "killed by signal " + std::to_string(r.term_signal);
      if (is_command) o.result_json = command_result(r);
      return o;
    case ExecEnd::exited:
      break;
  }
  o.exit_code = r.exit_code;
  if (is_command) {
    o.result_json = command_result(r);
    o.status = r.exit_code == 0 ? "completed" : "failed";
    if (r.exit_code != 0) o.error = "exited with status " + std::to_string(r.exit_code);
    return o;
  }
  if (r.exit_code != 0) {
    o.status = "failed";
    std::string why = r.err;
    while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
    o.error = valid_utf8(why.empty() ? "exited with status " + std::to_string(r.exit_code) : why.substr(0, 4000));
    return o;
  }
  rapidjson::Document d;
  // Any bytes, as before; the result the server accepts is bounded like any body.
  const bool parsed = static_cast<bool>(lucid::detail::parse_json(d, r.out, lucid::detail::kJsonAnyBytes));
  if (r.out_truncated || !parsed) {
    o.status = "failed";
    o.error = r.out_truncated ? "output larger than the agent's bound" : "task printed malformed JSON";
    return o;
  }
  if (t.task_type == "python_eval") {
    // {"ok": bool, "result"|"error", "stdout"} from the driver.
    const auto* ok = member(d, "ok");
    if (!ok || !ok->IsBool()) {
      o.status = "failed";
      o.error = "python driver printed an unexpected answer";
      return o;
    }
    if (!ok->GetBool()) {
      o.status = "failed";
      const auto* e = member(d, "error");
      o.error = e && e->IsString() ? valid_utf8(std::string(e->GetString()).substr(0, 4000)) : "python error";
      return o;
    }
    d.RemoveMember("ok");
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  d.Accept(w);
  o.status = "completed";
  o.result_json = bounded_result(buf.GetString());
  return o;
}

std::string result_body(const TaskOutcome& o) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("status"); w.String(o.status.c_str());
  w.Key("result");
  w.RawValue(o.result_json.c_str(), o.result_json.size(), rapidjson::kObjectType);
  if (!o.error.empty()) put_string(w, "error", o.error.substr(0, 4000));
  if (o.exit_code) {
    w.Key("exit_code");
    w.Int(*o.exit_code);
  }
  w.Key("duration_ms"); w.Int64(o.duration_ms);
  w.EndObject();
  return buf.GetString();
}

std::string task_runner_for(const std::string& self_exe) {
  const auto dir = std::filesystem::path(self_exe).parent_path();
  for (const auto& candidate : {dir / "lucid-task", dir / ".." / "libexec" / "lucidnode" / "lucid-task"}) {
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.lexically_normal().string();
  }
  return self_exe;
}

int run_builtin_task(const std::string& type) {
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  try {
    if (type == "system_info") return builtin_system_info(input.empty() ? "/" : input);
    rapidjson::Document p;
    if (!lucid::detail::parse_json(p, input, lucid::detail::kJsonAnyBytes)) return builtin_fail("payload is not valid JSON");
    if (type == "echo") return builtin_echo(p);
    if (type == "sleep") {
      if (!p.IsNumber()) return builtin_fail("sleep needs a number of seconds");
      return builtin_sleep(p.GetDouble());
    }
    if (type == "http_request") return builtin_http_request(p);
  } catch (const std::exception& e) {
    return builtin_fail(e.what());
  }
  return builtin_fail("unknown built-in task type " + type);
}

}  // namespace lucidctl
