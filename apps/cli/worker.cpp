#include "worker.hpp"

#include "backoff.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "agent.hpp"
#include "util/json.hpp"
#include "util/json_object.hpp"

namespace lucidctl {

namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kAgentVersion = "0.1.0";
constexpr std::size_t kMaxRecent = 1024;
constexpr std::size_t kMaxTaskIdLength = 128;

// The "data" object of a cluster envelope, or null.
const rapidjson::Value* envelope_data(const rapidjson::Document& d) { return lucid::detail::peek_object(d, "data"); }

// The task ids of the array `name` of `o` (others skipped).
std::vector<std::string> string_array(const rapidjson::Value& o, const char* name) {
  std::vector<std::string> out;
  const auto* list = lucid::detail::peek_array(o, name);
  if (!list) return out;
  for (const auto& v : list->GetArray())
    if (v.IsString() && v.GetStringLength() <= kMaxTaskIdLength) out.emplace_back(v.GetString(), v.GetStringLength());
  return out;
}

// Task and ping ids go into URL paths: only plain id characters.
bool safe_id(const std::string& id) {
  return !id.empty() && id.size() <= kMaxTaskIdLength &&
         id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == std::string::npos;
}

bool retryable(const HttpResult& r) { return r.status == 0 || r.status == 429 || r.status >= 500; }

std::string attempt_key(const TaskAssignment& t) { return t.task_id + "#" + std::to_string(t.attempt); }

std::string short_id(const std::string& id) { return id.size() > 13 ? id.substr(0, 13) : id; }

}  // namespace

TaskAgent::TaskAgent(WorkOptions o) : o_(std::move(o)) {
  o_.max_tasks = std::clamp(o_.max_tasks, 1, 256);
  o_.wait_seconds = std::clamp(o_.wait_seconds, 0, 30);
}

TaskAgent::~TaskAgent() { stop(); }

std::vector<std::string> TaskAgent::allowed_types(const WorkOptions& o) {
  std::vector<std::string> out(std::begin(kAlwaysAllowedTypes), std::end(kAlwaysAllowedTypes));
  for (const auto& a : o.allow)
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  return out;
}

Capabilities TaskAgent::capabilities() const {
  Capabilities c = detect_capabilities(o_.disk_path);
  if (o_.cpu_count) c.cpu_count = *o_.cpu_count;
  if (o_.memory_gb) c.memory_total_gb = *o_.memory_gb;
  if (o_.storage_gb) c.storage_total_gb = *o_.storage_gb;
  if (o_.internet == "yes") c.internet = true;
  if (o_.internet == "no") c.internet = false;
  return c;
}

std::string TaskAgent::device_body(const WorkOptions& o, const Capabilities& c) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("platform"); w.String(c.platform.c_str());
  if (o.role) {
    w.Key("role");
    w.String(o.role->c_str());
  }
  if (o.tags_given) {
    w.Key("tags");
    w.StartArray();
    for (const auto& t : o.tags) w.String(t.c_str());
    w.EndArray();
  }
  w.Key("capabilities");
  w.StartObject();
  w.Key("cpu_count"); w.Int(c.cpu_count);
  w.Key("memory_total_gb"); w.Double(c.memory_total_gb);
  w.Key("storage_total_gb"); w.Double(c.storage_total_gb);
  w.Key("has_gpu"); w.Bool(c.has_gpu);
  w.Key("internet"); w.Bool(c.internet);
  w.EndObject();
  w.Key("allowed_task_types");
  w.StartArray();
  for (const auto& t : allowed_types(o)) w.String(t.c_str());
  w.EndArray();
  w.Key("max_concurrent"); w.Int(o.max_tasks);
  w.Key("agent_version"); w.String(kAgentVersion);
  w.EndObject();
  return buf.GetString();
}

bool TaskAgent::nap(double seconds) const {
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  while (!stopping() && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return !stopping();
}

void TaskAgent::start() {
  poll_api_ = std::make_unique<ApiClient>(o_.server);
  poll_api_->set_header("X-API-KEY", o_.api_key);
  poll_api_->set_timeout_seconds(o_.wait_seconds + 15);
  for (int i = 0; i < o_.max_tasks; ++i) workers_.emplace_back([this] { worker_loop(); });
  poller_ = std::thread([this] { poll_loop(); });
}

void TaskAgent::stop() {
  stopping_.store(true);
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& [id, r] : known_) {
      r->abandon.store(true);
      r->cancel.store(true);
    }
  }
  cv_.notify_all();
  // The poll thread may sit in a long-poll: shut its socket until it notices.
  while (poller_.joinable()) {
    poll_api_->stop();
    if (std::lock_guard<std::mutex> lk(mu_); poller_done_) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (poller_.joinable()) poller_.join();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
}

bool TaskAgent::report_device(ApiClient& api, bool quiet) {
  Capabilities c;
  try {
    c = capabilities();
  } catch (const std::exception& e) {
    agent_say(std::string("agent: cannot read capabilities: ") + e.what());
    return false;
  }
  const auto r = api.put("/api/v1/agent/device", device_body(o_, c));
  last_device_report_ = r;
  if (r.status == 200) {
    if (!quiet || !(c == last_caps_)) {
      char line[256];
      std::snprintf(line, sizeof line,
                    "agent: device reported: platform=%s cpus=%d memory=%.2fGB storage=%.2fGB gpu=%s internet=%s "
                    "max_tasks=%d",
                    c.platform.c_str(), c.cpu_count, c.memory_total_gb, c.storage_total_gb, c.has_gpu ? "yes" : "no",
                    c.internet ? "yes" : "no", o_.max_tasks);
      agent_say(line);
    }
    last_caps_ = c;
    return true;
  }
  if (r.status == 401) {
    agent_say("agent: the server rejected our API key (" + error_message(r) + ")");
    failed_.store(4);
  } else if (r.status >= 400 && r.status < 500 && r.status != 429) {
    agent_say("agent: the server refused the device report (" + error_message(r) + ")");
    failed_.store(2);
  } else {
    agent_say("agent: device report failed (" + error_message(r) + "); retrying");
  }
  return false;
}

void TaskAgent::poll_loop() {
  ApiClient& api = *poll_api_;
  Backoff backoff(o_.max_backoff_seconds);
  bool reported = false, was_failing = false;
  auto next_check = Clock::now() + std::chrono::seconds(o_.capability_check_seconds);
  while (!stopping()) {
    if (!reported || was_failing) {
      if (!report_device(api, reported)) {
        if (stopping()) break;
        nap(backoff.next(last_device_report_));
        continue;
      }
      reported = true;
    } else if (Clock::now() >= next_check) {
      // Capabilities change (memory or disk resized, a GPU added): report again.
      next_check = Clock::now() + std::chrono::seconds(o_.capability_check_seconds);
      try {
        if (!(capabilities() == last_caps_)) report_device(api, false);
      } catch (const std::exception& e) {
        agent_say(std::string("agent: cannot read capabilities: ") + e.what());
      }
    }
    const auto r = api.get("/api/v1/agent/work?wait=" + std::to_string(o_.wait_seconds));
    if (stopping()) break;
    if (r.status == 200) {
      if (was_failing) agent_say("agent: work poll reachable again");
      was_failing = false;
      backoff.reset();
      handle_work(api, r.body);
      continue;
    }
    if (r.status == 401) {
      agent_say("agent: the server rejected our API key (" + error_message(r) + ")");
      failed_.store(4);
      break;
    }
    if (!was_failing) agent_say("agent: work poll failed (" + error_message(r) + "); retrying");
    was_failing = true;
    nap(backoff.next(r));
  }
  std::lock_guard<std::mutex> lk(mu_);
  poller_done_ = true;
}

void TaskAgent::handle_work(ApiClient& api, const std::string& body) {
  rapidjson::Document d;
  const bool parsed = static_cast<bool>(lucid::detail::parse_json(d, body, lucid::detail::kJsonStrict, lucid::detail::kJsonClientMaxDepth));
  const rapidjson::Value* data = parsed ? envelope_data(d) : nullptr;
  if (!data) {
    agent_say("agent: malformed work answer ignored");
    return;
  }
  for (const auto& ping : string_array(*data, "pings")) {
    if (!safe_id(ping)) continue;
    const auto r = api.post("/api/v1/agent/pings/" + ping, "{}");
    if (r.status == 200) agent_detail("agent: ping " + ping + " answered");
    else agent_say("agent: ping " + ping + " answer failed (" + error_message(r) + ")");
  }
  std::vector<std::shared_ptr<Running>> to_cancel_unstarted;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& id : string_array(*data, "cancel")) {
      auto it = known_.find(id);
      if (it == known_.end()) continue;
      it->second->cancel.store(true);
      agent_say("agent: task " + short_id(id) + " cancel requested");
    }
    if (const auto* tasks = lucid::detail::peek_array(*data, "tasks")) {
      for (const auto& t : tasks->GetArray()) {
        if (!t.IsObject()) continue;
        auto r = std::make_shared<Running>();
        r->task.task_id = lucid::detail::peek_string(t, "task_id").value_or("");
        r->task.task_type = lucid::detail::peek_string(t, "task_type").value_or("");
        if (!safe_id(r->task.task_id)) continue;
        if (auto a = lucid::detail::peek_int(t, "attempt")) r->task.attempt = *a;
        // A re-delivery of what runs or ran here is ignored; a retried task
        // comes back with a new attempt number and runs again.
        if (known_.count(r->task.task_id) || recent_set_.count(attempt_key(r->task))) continue;
        if (auto p = t.FindMember("payload"); p != t.MemberEnd()) {
          rapidjson::StringBuffer buf;
          rapidjson::Writer<rapidjson::StringBuffer> w(buf);
          p->value.Accept(w);
          r->task.payload_json = buf.GetString();
        }
        if (auto timeout = lucid::detail::peek_int(t, "timeout_seconds"); timeout && *timeout > 0) r->task.timeout_seconds = *timeout;
        known_[r->task.task_id] = r;
        backlog_.push_back(r);
      }
    }
  }
  cv_.notify_all();
}

void TaskAgent::worker_loop() {
  ApiClient api(o_.server);
  api.set_header("X-API-KEY", o_.api_key);
  api.set_timeout_seconds(15);
  for (;;) {
    std::shared_ptr<Running> r;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stopping() || !backlog_.empty(); });
      if (stopping()) return;
      r = backlog_.front();
      backlog_.pop_front();
    }
    run_one(api, r);
    std::lock_guard<std::mutex> lk(mu_);
    known_.erase(r->task.task_id);
    recent_.push_back(attempt_key(r->task));
    recent_set_.insert(recent_.back());
    if (recent_.size() > kMaxRecent) {
      recent_set_.erase(recent_.front());
      recent_.pop_front();
    }
  }
}

void TaskAgent::run_one(ApiClient& api, const std::shared_ptr<Running>& r) {
  const TaskAssignment& t = r->task;
  const std::string base = "/api/v1/agent/tasks/" + t.task_id;
  const std::string label = "agent: task " + t.task_id + " (" + t.task_type + ")";

  // Start: 409 means it is no longer ours (cancelled, requeued): do not run it.
  Backoff backoff(o_.max_backoff_seconds);
  for (;;) {
    const auto s = api.post(base + "/start", "{}");
    if (s.status == 200) break;
    if (!retryable(s)) {
      agent_say(label + " not started: " + error_message(s));
      return;
    }
    if (!nap(backoff.next(s))) return;
  }
  agent_detail(label + " started (attempt " + std::to_string(t.attempt) + ")");

  TaskOutcome out;
  const bool allowed = is_task_type(t.task_type) &&
                       (!is_opt_in_type(t.task_type) ||
                        std::find(o_.allow.begin(), o_.allow.end(), t.task_type) != o_.allow.end());
  if (!allowed) {
    out = failed_outcome("task type " + t.task_type + " is not allowed on this agent (lucidctl agent --allow)");
  } else {
    ExecSpec spec;
    bool ok = true;
    try {
      spec = build_exec(t, o_.limits);
    } catch (const PayloadError& e) {
      out = failed_outcome(e.what());
      ok = false;
    }
    if (ok) {
      double sleep_seconds = -1;
      if (t.task_type == "sleep") sleep_seconds = std::atof(spec.stdin_data.c_str());
      // Progress goes out from inside the wait for the child: a short read
      // timeout of its own, so a slow server delays the timeout check little.
      ApiClient progress_api(o_.server);
      progress_api.set_header("X-API-KEY", o_.api_key);
      progress_api.set_timeout_seconds(3);
      auto on_tick = [&](std::chrono::milliseconds elapsed) {
        if (r->cancel.load()) return;
        const double secs = static_cast<double>(elapsed.count()) / 1000.0;
        int pct = 0;
        if (sleep_seconds > 0) pct = static_cast<int>(std::min(99.0, 100.0 * secs / sleep_seconds));
        char body[160];
        std::snprintf(body, sizeof body, "{\"progress\":%d,\"message\":\"running for %.0f s\"}", pct, secs);
        const auto p = progress_api.post(base + "/progress", body);
        if (p.status == 200) {
          rapidjson::Document d;
          const bool parsed = static_cast<bool>(lucid::detail::parse_json(d, p.body, lucid::detail::kJsonStrict, lucid::detail::kJsonClientMaxDepth));
          const auto* data = parsed ? envelope_data(d) : nullptr;
          if (data && lucid::detail::peek_bool(*data, "cancel_requested").value_or(false)) {
            agent_say(label + " cancel requested");
            r->cancel.store(true);
          }
        } else if (p.status == 409 || p.status == 404) {
          agent_say(label + " is no longer ours (" + error_message(p) + "); stopping it");
          r->abandon.store(true);
          r->cancel.store(true);
        }
      };
      const ExecResult res = run_process(spec, r->cancel, on_tick, std::chrono::seconds(o_.progress_seconds));
      out = outcome_of(t, res);
    }
  }
  if (r->abandon.load()) {
    agent_say(label + " stopped without a report");
    return;
  }

  // The result goes out once; the server stores the first and answers
  // repeats with it, so a retry after a lost answer is safe.
  const std::string body = result_body(out);
  backoff.reset();
  for (;;) {
    const auto s = api.post(base + "/result", body);
    if (s.status == 200) {
      agent_detail(label + " finished: " + out.status + (out.error.empty() ? "" : " (" + out.error.substr(0, 200) + ")"));
      return;
    }
    if (!retryable(s)) {
      agent_say(label + " result refused: " + error_message(s));
      return;
    }
    if (stopping()) {
      agent_say(label + " result not delivered before shutdown");
      return;
    }
    agent_say(label + " result report failed (" + error_message(s) + "); retrying");
    nap(backoff.next(s));
  }
}

}  // namespace lucidctl
