// tasks_e2e — cluster tasks end to end through HTTP on loopback (see bench/README.md).
//
//   setup      start lucid-server (or attach to --url), mint a super_admin token
//              with lucidctl, register --agents nodes (join → approve → key) and
//              report each as a device (PUT /api/v1/agent/device)
//   agents     --agents threads, each a simulated `lucidctl agent` with its own
//              keep-alive connection: long-poll GET /api/v1/agent/work, then for
//              each task POST start and POST result {"echo": payload} (no child
//              process: this measures the server, not fork/exec)
//   throughput --submitters closed-loop threads POST /api/v1/tasks (echo), at most
//              --max-inflight tasks not yet completed, for --seconds
//   latency    open loop at --rate tasks/s for --latency-seconds: submit-to-result
//              (submit sent → result stored, i.e. the agent's result POST answered)
//   check      a sample of results read back with GET /api/v1/tasks/{id}/result
//
// Plain "key: value" output. Never asserts on timing: exits 0 unless setup failed.
#include <httplib.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <csignal>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>

#include "bench_util.hpp"

namespace {

using namespace benchutil;

struct Options {
  int agents = 100;
  int submitters = 8;
  int agent_slots = 4;  // max_concurrent each device reports
  int wait = 5;         // long-poll seconds
  double seconds = 10;
  double rate = 0;      // latency phase tasks/s; 0: a quarter of the measured throughput
  double latency_seconds = 10;
  int max_inflight = 1000;
  int check = 50;
  std::string server_bin, lucidctl, url, db, token;
  std::vector<std::string> server_args;
  bool keep_tmp = false;
  bool next = false;  // results ask for the next work (POST .../result?next=1)
};

void usage() {
  std::puts(
      "usage: tasks_e2e [options]\n"
      "  --agents N             simulated agents (threads, one keep-alive connection each; default 100)\n"
      "  --agent-slots N        max_concurrent each agent reports (default 4)\n"
      "  --wait S               agents' long-poll seconds (default 5)\n"
      "  --submitters N         submitting threads (default 8)\n"
      "  --seconds S            throughput phase length (default 10)\n"
      "  --max-inflight N       throughput phase: tasks submitted but not completed, at most (default 1000)\n"
      "  --rate R               latency phase: tasks/s, open loop (default: a quarter of the measured throughput)\n"
      "  --latency-seconds S    latency phase length (default 10; 0: skip)\n"
      "  --check N              results read back and compared (default 50)\n"
      "  --next                 agents ask for their next work with each result (result?next=1)\n"
      "  --server-bin PATH      lucid-server to start (default: <dir of argv[0]>/lucid-server)\n"
      "  --server-arg ARG       extra argument for the started server (repeatable)\n"
      "  --lucidctl PATH        lucidctl used to mint the token (default: <dir of argv[0]>/lucidctl)\n"
      "  --url http://HOST:PORT attach to a running server (needs --db or --token)\n"
      "  --db PATH              with --url: the server's database (for lucidctl)\n"
      "  --token JWT            with --url: a super_admin token\n"
      "  --keep-tmp             keep the temporary directory\n"
      "  --help");
}

bool parse_options(int argc, char** argv, Options& o) {
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto val = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
        return argv[++i];
      };
      auto num_at_least = [&](double lo) {
        const std::string v = val();
        std::size_t used = 0;
        const double d = std::stod(v, &used);
        if (used != v.size() || d < lo) throw std::invalid_argument(a + ": bad value '" + v + "'");
        return d;
      };
      if (a == "--help" || a == "-h") {
        usage();
        std::exit(0);
      } else if (a == "--agents") o.agents = static_cast<int>(num_at_least(1));
      else if (a == "--agent-slots") o.agent_slots = static_cast<int>(num_at_least(1));
      else if (a == "--wait") o.wait = static_cast<int>(num_at_least(0));
      else if (a == "--next") o.next = true;
      else if (a == "--submitters") o.submitters = static_cast<int>(num_at_least(1));
      else if (a == "--seconds") o.seconds = num_at_least(0.1);
      else if (a == "--max-inflight") o.max_inflight = static_cast<int>(num_at_least(1));
      else if (a == "--rate") o.rate = num_at_least(0);
      else if (a == "--latency-seconds") o.latency_seconds = num_at_least(0);
      else if (a == "--check") o.check = static_cast<int>(num_at_least(0));
      else if (a == "--server-bin") o.server_bin = val();
      else if (a == "--server-arg") o.server_args.push_back(val());
      else if (a == "--lucidctl") o.lucidctl = val();
      else if (a == "--url") o.url = val();
      else if (a == "--db") o.db = val();
      else if (a == "--token") o.token = val();
      else if (a == "--keep-tmp") o.keep_tmp = true;
      else throw std::invalid_argument("unknown option " + a);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tasks_e2e: %s (see --help)\n", e.what());
    return false;
  }
  return true;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

std::optional<rapidjson::Document> parse_json(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  if (d.HasParseError()) return std::nullopt;
  return d;
}

const rapidjson::Value* data_of(const rapidjson::Document& d) {
  if (!d.IsObject()) return nullptr;
  auto it = d.FindMember("data");
  return it == d.MemberEnd() ? nullptr : &it->value;
}

std::unique_ptr<httplib::Client> client(const std::string& base, int read_timeout) {
  auto c = std::make_unique<httplib::Client>(base);
  c->set_keep_alive(true);
  c->set_connection_timeout(5, 0);
  c->set_read_timeout(read_timeout, 0);
  c->set_tcp_nodelay(true);
  return c;
}

// First few errors kept, all counted.
struct Errors {
  std::mutex mu;
  std::vector<std::string> samples;
  std::uint64_t total = 0;
  void add(std::string s) {
    std::lock_guard<std::mutex> lk(mu);
    ++total;
    if (samples.size() < 8) samples.push_back(std::move(s));
  }
  void print(const std::string& prefix) {
    std::lock_guard<std::mutex> lk(mu);
    kv(prefix + "_errors", std::to_string(total));
    for (const auto& s : samples) kv(prefix + "_error", s);
    samples.clear();
    total = 0;
  }
};

std::string describe(const httplib::Result& r) {
  if (!r) return "transport: " + httplib::to_string(r.error());
  return "HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 200);
}

struct Shared {
  Options opt;
  std::string base;  // http://host:port
  std::string token;
  std::atomic<bool> stop_agents{false};
  std::atomic<std::uint64_t> submitted{0}, completed{0};
  std::atomic<bool> measuring{false};  // latency samples recorded only when set
  Errors agent_errors, submit_errors;
};

struct alignas(64) AgentState {
  std::string key;
  std::string device_id;
  Histo latency;
  std::mutex mu;  // guards latency against the reader between phases
  std::uint64_t done = 0, polls = 0, empty_polls = 0;
};

// One simulated agent: poll, start, result. Latency = result stored − submit sent.
void agent_loop(Shared& sh, AgentState& st) {
  auto cli = client(sh.base, sh.opt.wait + 15);
  const httplib::Headers h = {{"X-API-KEY", st.key}};
  const std::string poll = "/api/v1/agent/work?wait=" + std::to_string(sh.opt.wait);
  while (!sh.stop_agents.load()) {
    auto r = cli->Get(poll.c_str(), h);
    ++st.polls;
    if (!r || r->status != 200) {
      if (sh.stop_agents.load()) break;
      sh.agent_errors.add("work: " + describe(r));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    auto d = parse_json(r->body);
    const auto* data = d ? data_of(*d) : nullptr;
    if (!data || !data->IsObject() || !data->HasMember("tasks") || !(*data)["tasks"].IsArray()) {
      sh.agent_errors.add("work: malformed answer " + r->body.substr(0, 200));
      continue;
    }
    const auto& tasks = (*data)["tasks"];
    if (tasks.Empty()) ++st.empty_polls;
    // Work to run: the poll's tasks, then (--next) those each result's
    // answer carries in next_work, with no poll in between.
    struct Todo {
      std::string id, payload;
      std::int64_t sent = 0;
    };
    std::deque<Todo> todo;
    auto queue_tasks = [&](const rapidjson::Value& list) {
      for (const auto& t : list.GetArray()) {
        if (!t.IsObject() || !t.HasMember("task_id") || !t["task_id"].IsString()) continue;
        Todo x;
        x.id = t["task_id"].GetString();
        x.payload = "null";
        if (t.HasMember("payload")) {
          rapidjson::StringBuffer pb;
          rapidjson::Writer<rapidjson::StringBuffer> pw(pb);
          t["payload"].Accept(pw);
          x.payload.assign(pb.GetString(), pb.GetSize());
          if (t["payload"].IsObject() && t["payload"].HasMember("t") && t["payload"]["t"].IsInt64())
            x.sent = t["payload"]["t"].GetInt64();
        }
        todo.push_back(std::move(x));
      }
    };
    queue_tasks(tasks);
    while (!todo.empty()) {
      const Todo t = std::move(todo.front());
      todo.pop_front();
      const std::string path = "/api/v1/agent/tasks/" + t.id;
      auto s = cli->Post((path + "/start").c_str(), h, "{}", "application/json");
      if (!s || s->status != 200) {
        sh.agent_errors.add("start: " + describe(s));
        continue;
      }
      const std::string body = "{\"status\":\"completed\",\"result\":{\"echo\":" + t.payload + "},\"duration_ms\":0}";
      const std::string result_path = path + (sh.opt.next ? "/result?next=1" : "/result");
      auto res = cli->Post(result_path.c_str(), h, body, "application/json");
      if (!res || res->status != 200) {
        sh.agent_errors.add("result: " + describe(res));
        continue;
      }
      const std::int64_t done_ns = now_ns();
      sh.completed.fetch_add(1);
      ++st.done;
      if (t.sent > 0 && sh.measuring.load()) {
        std::lock_guard<std::mutex> lk(st.mu);
        st.latency.add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, done_ns - t.sent) / 1000));
      }
      if (sh.opt.next) {
        auto nd = parse_json(res->body);
        const auto* ndata = nd ? data_of(*nd) : nullptr;
        if (ndata && ndata->IsObject() && ndata->HasMember("next_work") && (*ndata)["next_work"].IsObject() &&
            (*ndata)["next_work"].HasMember("tasks") && (*ndata)["next_work"]["tasks"].IsArray())
          queue_tasks((*ndata)["next_work"]["tasks"]);
      }
    }
  }
}

std::string submit_body(std::int64_t t, std::uint64_t n) {
  return "{\"task_type\":\"echo\",\"payload\":{\"t\":" + std::to_string(t) + ",\"n\":" + std::to_string(n) +
         "},\"priority\":\"normal\"}";
}

// POST /api/v1/tasks; the task id, or empty.
std::string submit(Shared& sh, httplib::Client& cli, const httplib::Headers& h, std::int64_t t, std::uint64_t n) {
  auto r = cli.Post("/api/v1/tasks", h, submit_body(t, n), "application/json");
  if (!r || (r->status != 200 && r->status != 201)) {
    sh.submit_errors.add("submit: " + describe(r));
    return {};
  }
  sh.submitted.fetch_add(1);
  auto d = parse_json(r->body);
  const auto* data = d ? data_of(*d) : nullptr;
  if (data && data->IsObject() && data->HasMember("task_id") && (*data)["task_id"].IsString())
    return (*data)["task_id"].GetString();
  return "?";
}

// Waits until every submitted task completed (or `max_s` passes); seconds waited.
double drain(Shared& sh, double max_s) {
  const auto t0 = Clock::now();
  while (sh.completed.load() < sh.submitted.load() && secs_since(t0) < max_s)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return secs_since(t0);
}

Histo take_latency(std::vector<std::unique_ptr<AgentState>>& agents) {
  Histo all;
  for (auto& a : agents) {
    std::lock_guard<std::mutex> lk(a->mu);
    all.merge(a->latency);
    a->latency = Histo();
  }
  return all;
}

void print_server(const std::string& prefix, int pid) {
  if (pid <= 0) return;
  const ProcSample s = sample_proc(pid);
  kv(prefix + "_server_rss_mb", num(s.rss_mb, 1));
  kv(prefix + "_server_threads", std::to_string(s.threads));
  kv(prefix + "_server_cpu_seconds", num(s.cpu_seconds, 2));
}

int run(int argc, char** argv) {
  Options opt;
  if (!parse_options(argc, argv, opt)) return 2;
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, on_fatal_signal);
  std::signal(SIGTERM, on_fatal_signal);
  std::signal(SIGHUP, on_fatal_signal);
  print_machine(argc, argv, opt.agents + opt.submitters);

  const fs::path self_dir = fs::absolute(fs::path(argv[0])).parent_path();
  if (opt.server_bin.empty()) opt.server_bin = (self_dir / "lucid-server").string();
  if (opt.lucidctl.empty()) opt.lucidctl = (self_dir / "lucidctl").string();

  Shared sh;
  sh.opt = opt;
  ServerProcess server;
  std::string tmpdir, db = opt.db;
  int server_pid = 0;

  section("setup");
  if (opt.url.empty()) {
    char tmpl[] = "/tmp/lucid-tasks-e2e-XXXXXX";
    if (!mkdtemp(tmpl)) {
      std::fprintf(stderr, "tasks_e2e: mkdtemp failed: %s\n", std::strerror(errno));
      return 1;
    }
    tmpdir = tmpl;
    db = tmpdir + "/bench.db";
    const std::string port_file = tmpdir + "/port";
    std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--db", db, "--port-file", port_file, "--quiet"};
    // The cluster API's per-client limits (60/min by default), the per-address
    // join/status rate (120/min) and connection cap (256; one connection per
    // agent) would measure the limiter: lifted unless --server-arg sets them.
    lift_server_limits(args, opt.server_args,
                       {{"--rate-cluster-minute", "100000000"},
                        {"--rate-cluster-hour", "1000000000"},
                        {"--rate-cluster-burst", "100000000"},
                        // the admin tier (the submitters' super_admin token)
                        {"--rate-cluster-admin-minute", "100000000"},
                        {"--rate-cluster-admin-hour", "1000000000"},
                        {"--rate-cluster-admin-burst", "100000000"},
                        {"--rate-join", "100000000"},
                        {"--max-connections-per-address", "0"}});
    for (const auto& a : opt.server_args) args.push_back(a);
    std::string shown = opt.server_bin;
    for (const auto& a : args) shown += " " + shell_quote(a);
    kv("server_command", shown);
    if (!server.start(opt.server_bin, args, tmpdir + "/server.log")) {
      std::fprintf(stderr, "tasks_e2e: cannot start the server\n");
      return 1;
    }
    server_pid = server.pid;
    const auto t0 = Clock::now();
    std::string port;
    while (secs_since(t0) < 30 && port.empty() && server.running()) {
      port = std::string(trim(last_line(read_file(port_file))));
      if (port.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (port.empty()) {
      std::fprintf(stderr, "tasks_e2e: the server did not start\n");
      print_log_tail(server.log_path, 40);
      return 1;
    }
    sh.base = "http://127.0.0.1:" + port;
  } else {
    if (opt.db.empty() && opt.token.empty()) {
      std::fprintf(stderr, "tasks_e2e: --url needs --db or --token\n");
      return 2;
    }
    sh.base = opt.url;
  }
  kv("server", sh.base);
  if (!opt.token.empty()) {
    sh.token = opt.token;
  } else {
    auto out = run_capture({opt.lucidctl, "--db", db, "admin", "create-token", "--role", "super_admin", "--ttl", "2h"});
    if (!out || last_line(*out).empty()) {
      std::fprintf(stderr, "tasks_e2e: lucidctl admin create-token failed\n");
      if (server.pid > 0) print_log_tail(server.log_path, 40);
      return 1;
    }
    sh.token = last_line(*out);
  }
  const httplib::Headers admin = {{"Authorization", "Bearer " + sh.token}};

  // Register the agents' nodes and report them as devices (a few threads).
  std::vector<std::unique_ptr<AgentState>> agents;
  for (int i = 0; i < opt.agents; ++i) agents.push_back(std::make_unique<AgentState>());
  {
    const auto t0 = Clock::now();
    std::atomic<int> next{0}, failed{0};
    std::vector<std::thread> ts;
    for (int k = 0; k < std::min(8, opt.agents); ++k)
      ts.emplace_back([&] {
        auto cli = client(sh.base, 30);
        for (int i; (i = next.fetch_add(1)) < opt.agents;) {
          AgentState& a = *agents[static_cast<std::size_t>(i)];
          const std::string host = "e2e-agent-" + std::to_string(i) + ".bench";
          auto j = cli->Post("/api/v1/nodes/join-request", "{\"hostname\":\"" + host + "\"}", "application/json");
          auto jd = j && j->status == 200 ? parse_json(j->body) : std::nullopt;
          if (!jd || !jd->HasMember("request_id") || !jd->HasMember("registration_code")) {
            sh.agent_errors.add("join: " + describe(j));
            ++failed;
            continue;
          }
          const std::string rid = (*jd)["request_id"].IsString() ? (*jd)["request_id"].GetString()
                                                                  : std::to_string((*jd)["request_id"].GetInt64());
          auto ap = cli->Post(("/api/v1/nodes/approve/" + rid).c_str(), admin, "", "application/json");
          // The API key is handed out only with the join_secret of the join request.
          const std::string secret =
              jd->HasMember("join_secret") && (*jd)["join_secret"].IsString() ? (*jd)["join_secret"].GetString() : "";
          auto st = cli->Get(("/api/v1/nodes/status/code/" + std::string((*jd)["registration_code"].GetString())).c_str(),
                             httplib::Headers{{"X-Join-Secret", secret}});
          auto sd = st && st->status == 200 ? parse_json(st->body) : std::nullopt;
          if (!ap || ap->status != 200 || !sd || !sd->HasMember("api_key") || !(*sd)["api_key"].IsString()) {
            sh.agent_errors.add("approve: " + describe(ap) + " / " + describe(st));
            ++failed;
            continue;
          }
          a.key = (*sd)["api_key"].GetString();
          const std::string dev =
              "{\"platform\":\"linux\",\"role\":\"worker\",\"capabilities\":{\"cpu_count\":4,\"memory_total_gb\":8,"
              "\"storage_total_gb\":100,\"has_gpu\":false,\"internet\":false},\"allowed_task_types\":[\"echo\"],"
              "\"max_concurrent\":" +
              std::to_string(opt.agent_slots) + ",\"agent_version\":\"bench\"}";
          auto p = cli->Put("/api/v1/agent/device", {{"X-API-KEY", a.key}}, dev, "application/json");
          auto pd = p && p->status == 200 ? parse_json(p->body) : std::nullopt;
          const auto* data = pd ? data_of(*pd) : nullptr;
          if (!data || !data->IsObject()) {
            sh.agent_errors.add("device: " + describe(p));
            a.key.clear();
            ++failed;
            continue;
          }
          if (data->HasMember("device_id") && (*data)["device_id"].IsString()) a.device_id = (*data)["device_id"].GetString();
        }
      });
    for (auto& t : ts) t.join();
    kv("agents_registered", std::to_string(opt.agents - failed.load()) + " of " + std::to_string(opt.agents));
    kv("setup_seconds", num(secs_since(t0), 2));
    if (failed.load() > 0) {
      sh.agent_errors.print("setup");
      if (server.pid > 0) print_log_tail(server.log_path, 40);
      return 1;
    }
  }

  std::vector<std::thread> agent_threads;
  for (auto& a : agents) agent_threads.emplace_back([&sh, &a] { agent_loop(sh, *a); });
  struct Joiner {
    Shared& sh;
    std::vector<std::thread>& ts;
    ~Joiner() {
      sh.stop_agents.store(true);
      for (auto& t : ts) t.join();
    }
  } joiner{sh, agent_threads};

  // ---- throughput: closed loop, bounded in-flight.
  section("throughput");
  kv("submitters", std::to_string(opt.submitters));
  kv("max_inflight", std::to_string(opt.max_inflight));
  kv("agents_ask_next_work", opt.next ? "yes (result?next=1)" : "no (poll after each batch)");
  std::vector<std::vector<std::string>> ids(static_cast<std::size_t>(opt.submitters));
  double throughput = 0;
  {
    sh.measuring.store(true);
    const auto c0 = sh.completed.load();
    const double server_cpu0 = server_pid > 0 ? sample_proc(server_pid).cpu_seconds : 0;
    const double self_cpu0 = self_cpu_seconds(), machine0 = machine_busy_seconds();
    const auto t0 = Clock::now();
    const auto until = t0 + std::chrono::duration<double>(opt.seconds);
    std::atomic<std::uint64_t> seq{0};
    std::vector<std::thread> ts;
    for (int k = 0; k < opt.submitters; ++k)
      ts.emplace_back([&, k] {
        auto cli = client(sh.base, 30);
        while (Clock::now() < until) {
          if (sh.submitted.load() - sh.completed.load() >= static_cast<std::uint64_t>(opt.max_inflight)) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
            continue;
          }
          auto id = submit(sh, *cli, admin, now_ns(), seq.fetch_add(1));
          if (id.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
          else if (ids[static_cast<std::size_t>(k)].size() < 1000) ids[static_cast<std::size_t>(k)].push_back(id);
        }
      });
    for (auto& t : ts) t.join();
    const double wall = secs_since(t0);
    const auto c1 = sh.completed.load();
    throughput = static_cast<double>(c1 - c0) / wall;
    const double drained = drain(sh, 60);
    kv("seconds", num(wall, 2));
    kv("tasks_submitted", std::to_string(sh.submitted.load()));
    kv("tasks_completed_in_window", std::to_string(c1 - c0));
    kv("tasks_per_second", num(throughput, 0) + " (target >= 2000)");
    kv("drain_seconds", num(drained, 2));
    kv("tasks_completed_total", std::to_string(sh.completed.load()));
    const double span = wall + drained;
    if (server_pid > 0) kv("server_cpu_cores", num((sample_proc(server_pid).cpu_seconds - server_cpu0) / span, 2));
    kv("bench_client_cpu_cores", num((self_cpu_seconds() - self_cpu0) / span, 2));
    kv("machine_busy_cores", num((machine_busy_seconds() - machine0) / span, 2) + " of " +
                                 std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " (includes other users' work)");
    print_latency("saturated_submit_to_result", take_latency(agents));
    print_server("throughput", server_pid);
    sh.submit_errors.print("throughput_submit");
    sh.agent_errors.print("throughput_agent");
  }

  // ---- latency: open loop at a rate below saturation.
  if (opt.latency_seconds > 0) {
    section("latency");
    const double rate = opt.rate > 0 ? opt.rate : std::max(1.0, throughput / 4);
    kv("rate_tasks_per_second", num(rate, 0));
    const auto c0 = sh.completed.load();
    const auto t0 = Clock::now();
    std::vector<std::thread> ts;
    const double per = rate / opt.submitters;
    std::atomic<std::uint64_t> late{0};
    for (int k = 0; k < opt.submitters; ++k)
      ts.emplace_back([&, k] {
        auto cli = client(sh.base, 30);
        // Each submitter's schedule is offset so the submits interleave.
        const double gap = 1.0 / per;
        for (std::uint64_t i = 0;; ++i) {
          const double at = (static_cast<double>(i) + static_cast<double>(k) / opt.submitters) * gap;
          if (at >= opt.latency_seconds) break;
          const auto when = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at));
          if (Clock::now() < when) std::this_thread::sleep_until(when);
          else if (Clock::now() - when > std::chrono::milliseconds(10)) ++late;
          // Latency counts from the scheduled time: a late submit is not hidden.
          submit(sh, *cli, admin, std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count(),
                 i);
        }
      });
    for (auto& t : ts) t.join();
    const double wall = secs_since(t0);
    const double drained = drain(sh, 60);
    kv("seconds", num(wall, 2));
    kv("tasks_completed", std::to_string(sh.completed.load() - c0));
    kv("achieved_tasks_per_second", num(static_cast<double>(sh.completed.load() - c0) / (wall + drained), 0));
    kv("submits_late_over_10ms", std::to_string(late.load()));
    print_latency("submit_to_result", take_latency(agents));
    kv("target", "p99 < 100 ms when not saturated");
    print_server("latency", server_pid);
    sh.submit_errors.print("latency_submit");
    sh.agent_errors.print("latency_agent");
  }
  sh.measuring.store(false);

  // ---- check: results really stored.
  section("check");
  {
    auto cli = client(sh.base, 30);
    std::vector<std::string> sample;
    for (const auto& v : ids)
      for (const auto& id : v)
        if (id != "?") sample.push_back(id);
    std::shuffle(sample.begin(), sample.end(), std::mt19937(42));
    if (sample.size() > static_cast<std::size_t>(opt.check)) sample.resize(static_cast<std::size_t>(opt.check));
    int ok = 0;
    for (const auto& id : sample) {
      auto r = cli->Get(("/api/v1/tasks/" + id + "/result").c_str(), admin);
      auto d = r && r->status == 200 ? parse_json(r->body) : std::nullopt;
      const auto* data = d ? data_of(*d) : nullptr;
      if (data && data->IsObject() && data->HasMember("status") && (*data)["status"].IsString() &&
          std::string((*data)["status"].GetString()) == "success" && data->HasMember("result_data") &&
          (*data)["result_data"].IsObject() && (*data)["result_data"].HasMember("echo"))
        ++ok;
      else
        kv("check_mismatch", id + " " + describe(r));
    }
    kv("results_checked", std::to_string(sample.size()));
    kv("results_ok", std::to_string(ok));
    std::uint64_t polls = 0, empty = 0;
    for (auto& a : agents) polls += a->polls, empty += a->empty_polls;
    kv("agent_polls", std::to_string(polls));
    kv("agent_empty_polls", std::to_string(empty));
  }

  sh.stop_agents.store(true);
  section("teardown");
  if (server.pid > 0) server.stop(true);  // long-polls end with the server
  if (!tmpdir.empty()) {
    if (opt.keep_tmp) kv("kept", tmpdir);
    else fs::remove_all(tmpdir);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tasks_e2e: %s\n", e.what());
    return 1;
  }
}
