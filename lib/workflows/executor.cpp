// The workflow executor (docs/workflows.md): validates a workflow's graph,
// then runs one child process per node in dependency order on the cluster's
// executor, in parallel where the graph allows, each job's STDOUT feeding the
// STDIN of the jobs connected after it. All I/O is asynchronous (Asio
// descriptors on non-blocking pipes, a pidfd for the exit, a timer for the
// timeout): no executor thread ever waits on a child.
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio.hpp>

#include <cstring>
#include <deque>

#include "util/encoding.hpp"
#include "util/json.hpp"
#include "workflows/docker.hpp"
#include "workflows/fleet_job.hpp"
#include "workflows/process.hpp"
#include "workflows/workflows_impl.hpp"

namespace lucid {

using namespace detail;

namespace wf {

namespace {

std::string json_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

using Strand = asio::strand<asio::io_context::executor_type>;

}  // namespace

struct Job;

// A DOCKER job's container settings from its node's config (docs/workflows.md
// "Container jobs"): memory_mb (1..1048576), cpus (0.01..1024), pids_limit
// (1..1000000), network (bool, default false: no network). Another type or
// range is invalid_argument naming the key.
void container_config(const std::string& config_json, ContainerRun& r) {
  rapidjson::Document d;
  if (!parse_json(d, config_json) || !d.IsObject()) return;
  auto bad = [](const char* k, const char* what) {
    throw Error(Errc::invalid_argument, std::string("config.") + k + " must be " + what, k);
  };
  if (auto it = d.FindMember("memory_mb"); it != d.MemberEnd()) {
    if (!it->value.IsInt64() || it->value.GetInt64() < 1 || it->value.GetInt64() > 1048576) bad("memory_mb", "an integer 1..1048576");
    r.memory_bytes = it->value.GetInt64() * 1024 * 1024;
  }
  if (auto it = d.FindMember("cpus"); it != d.MemberEnd()) {
    if (!it->value.IsNumber() || it->value.GetDouble() < 0.01 || it->value.GetDouble() > 1024) bad("cpus", "a number 0.01..1024");
    r.nano_cpus = static_cast<std::int64_t>(it->value.GetDouble() * 1e9);
  }
  if (auto it = d.FindMember("pids_limit"); it != d.MemberEnd()) {
    if (!it->value.IsInt64() || it->value.GetInt64() < 1 || it->value.GetInt64() > 1000000) bad("pids_limit", "an integer 1..1000000");
    r.pids_limit = it->value.GetInt64();
  }
  if (auto it = d.FindMember("network"); it != d.MemberEnd()) {
    if (!it->value.IsBool()) bad("network", "a boolean");
    r.network = it->value.GetBool();
  }
}

// The node config's "retry_count" (the network-node document's own example
// key): how often a job on a fleet node is run again when its node is lost
// (docs/workflows.md "Jobs on fleet nodes"); 0..10, default 0. Another type
// or range is invalid_argument.
std::int64_t config_retry_count(const std::string& config_json) {
  rapidjson::Document d;
  if (!parse_json(d, config_json) || !d.IsObject()) return 0;
  auto it = d.FindMember("retry_count");
  if (it == d.MemberEnd() || it->value.IsNull()) return 0;
  if (!it->value.IsInt64() || it->value.GetInt64() < 0 || it->value.GetInt64() > 10)
    throw Error(Errc::invalid_argument, "config.retry_count must be an integer 0..10", "retry_count");
  return it->value.GetInt64();
}

struct NodeRun {
  WorkflowNode node;
  std::optional<StandaloneDetails> det;
  std::optional<DockerDetails> docker;  // a DOCKER service's job: a container
  ContainerRun container;                // its settings (input, timeout filled at start)
  std::int64_t fleet_node = 0;           // runs on this fleet node's agent (0: here)
  std::int64_t fleet_retries = 0;        // node config retry_count
  std::int64_t job_id = 0;
  std::vector<std::int64_t> upstream;    // source nodes, in order of their first connection
  std::vector<std::int64_t> downstream;  // target nodes
  std::size_t waiting = 0;               // upstream nodes not yet completed
  std::size_t consumers = 0;             // downstream nodes not yet started (frees stdout_data)
  std::string stdout_data;
};

struct Run : std::enable_shared_from_this<Run> {
  Run(ClusterCore& c, Workflows& w, Workflows::Impl& i, std::int64_t exec, std::int64_t wfid)
      : core(c), workflows(w), impl(i), id(exec), workflow_id(wfid), strand(asio::make_strand(c.io())) {}

  ClusterCore& core;
  Workflows& workflows;  // the graph and its services, read at begin()
  Workflows::Impl& impl;
  const std::int64_t id;
  const std::int64_t workflow_id;
  Strand strand;
  std::map<std::int64_t, NodeRun> nodes;
  std::deque<std::int64_t> ready;
  std::size_t running = 0;
  std::optional<std::string> error;  // the first failure: the execution fails with it
  bool aborted = false;
  bool finished = false;  // finish() ran (a failed spawn can reach it from a nested pump)
  std::set<std::shared_ptr<Job>> jobs;

  void begin();
  void pump();
  void start_job(std::int64_t node_id);
  void start_container(Job& job, NodeRun& n, std::int64_t timeout);
  void spawn_container(std::shared_ptr<Job> job, ContainerRun cr, const std::string& image);
  void start_fleet(Job& job, NodeRun& n, std::int64_t timeout);
  void poll_fleet(std::shared_ptr<Job> job);
  void job_done(Job& j);
  void abort(const std::string& why);
  void finish();
  void publish_progress(std::int64_t job_id, const char* job_status);
};

struct Job : std::enable_shared_from_this<Job> {
  Job(Run& r, std::int64_t n) : run(r.shared_from_this()), node_id(n), in(r.strand), out(r.strand), err(r.strand),
                                pidfd(r.strand), timer(r.strand) {}
  std::shared_ptr<Run> run;
  std::int64_t node_id;
  pid_t pid = -1;
  asio::posix::stream_descriptor in, out, err, pidfd;
  asio::steady_timer timer;
  std::string input, out_buf, err_buf;
  std::array<char, 65536> obuf{}, ebuf{};
  int pending = 0;       // open output streams + the process itself
  bool exited = false;
  int status = 0;
  std::optional<std::string> killed;  // why the executor killed it
  std::optional<std::string> spawn_error;
  std::optional<int> container_exit;  // a container's or fleet job's exit status
  std::string fleet_task;             // a fleet job's task id
  std::chrono::steady_clock::time_point fleet_deadline;
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
  std::chrono::steady_clock::time_point t0;

  void kill_group(const std::string& why) {
    if (!killed) killed = why;
    cancel->store(true);  // a container job: its thread kills the container
    if (pid > 0 && !exited) ::kill(-pid, SIGKILL);
  }
  void step_done() {
    if (--pending == 0) {
      timer.cancel();
      run->job_done(*this);
    }
  }
  void read(asio::posix::stream_descriptor& d, std::array<char, 65536>& buf, std::string& dest) {
    auto self = shared_from_this();
    d.async_read_some(asio::buffer(buf), [this, self, &d, &buf, &dest](const asio::error_code& ec, std::size_t n) {
      const std::size_t limit = run->core.opts.workflows.max_output_bytes;
      if (n > 0) {
        const std::size_t room = limit > dest.size() ? limit - dest.size() : 0;
        dest.append(buf.data(), std::min(room, n));
        if (n > room) kill_group("output exceeds " + std::to_string(limit) + " bytes");
      }
      if (ec) {
        asio::error_code ignored;
        d.close(ignored);
        step_done();
        return;
      }
      read(d, buf, dest);
    });
  }
  void wait_exit() {
    auto self = shared_from_this();
    pidfd.async_wait(asio::posix::stream_descriptor::wait_read, [this, self](const asio::error_code&) {
      int st = 0;
      // The pidfd is readable: the child has exited, so this does not block.
      if (waitpid(pid, &st, 0) == pid) status = st;
      exited = true;
      asio::error_code ignored;
      pidfd.close(ignored);
      // A grandchild that escaped the process group may hold the pipes open:
      // give the outputs a second to drain, then close them.
      if (pending > 1) {
        timer.expires_after(std::chrono::seconds(1));
        timer.async_wait([this, self](const asio::error_code& ec) {
          if (ec) return;
          asio::error_code e;
          out.cancel(e);
          err.cancel(e);
        });
      }
      step_done();
    });
  }
};

void Run::publish_progress(std::int64_t job_id, const char* job_status) {
  std::string p = "{\"workflow_id\":" + std::to_string(workflow_id) + ",\"execution_id\":" + std::to_string(id) +
                  ",\"status\":\"RUNNING\"";
  if (job_id) p += ",\"job_id\":" + std::to_string(job_id) + ",\"job_status\":\"" + job_status + "\"";
  p += "}";
  publish(core, "EXECUTION_UPDATED", p);
}

void Run::begin() {
  // Load the graph and check it: every connection between nodes of the
  // workflow, no cycle, every node a runnable standalone service.
  std::vector<WorkflowNode> ns;
  std::vector<WorkflowConnection> cs;
  try {
    ns = workflows.nodes(workflow_id);
    cs = workflows.connections(workflow_id);
    for (auto& n : ns) nodes[n.id].node = n;
    for (auto& n : ns) {
      const bool local = n.peer_id.empty() || (impl.is_local_peer && impl.is_local_peer(n.peer_id));
      if (!local && !impl.fleet.check)
        throw Error(Errc::invalid_argument, "node " + std::to_string(n.id) + " names peer " + n.peer_id +
                                                ": dispatch to remote peers is not available; leave peer_id empty "
                                                "(or name this node) to run here");
      std::optional<Service> s;
      try {
        s = workflows.get_service(n.service_id);
      } catch (const Error& e) {
        if (e.code() != Errc::not_found) throw;
      }
      if (!s)
        throw Error(Errc::invalid_argument, "node " + std::to_string(n.id) + ": service " + std::to_string(n.service_id) +
                                                " does not exist");
      const bool container = s->service_type == "DOCKER" && s->docker && !s->docker->image_name.empty();
      if (!container && (s->service_type != "STANDALONE" || !s->standalone))
        throw Error(Errc::invalid_argument, "node " + std::to_string(n.id) + ": service " + std::to_string(s->id) + " is a " +
                                                s->service_type + " service without an executable or image; only standalone"
                                                " and Docker services run here");
      if (s->status != "ACTIVE")
        throw Error(Errc::invalid_argument, "node " + std::to_string(n.id) + ": service " + std::to_string(s->id) + " is INACTIVE");
      if (container) {
        nodes[n.id].docker = s->docker;
        try {
          container_config(n.config_json, nodes[n.id].container);
        } catch (const Error& e) {
          throw Error(Errc::invalid_argument, "node " + std::to_string(n.id) + ": " + e.message());
        }
      } else {
        nodes[n.id].det = s->standalone;
      }
      if (!local) {
        // A fleet node: its agent must have opted in to this kind of job.
        try {
          nodes[n.id].fleet_retries = config_retry_count(n.config_json);
          nodes[n.id].fleet_node = impl.fleet.check(n.peer_id, container ? kFleetDockerType : kFleetStandaloneType);
        } catch (const Error& e) {
          throw Error(Errc::invalid_argument, "node " + std::to_string(n.id) + ": " + e.message());
        }
      }
    }
    if (ns.empty()) throw Error(Errc::invalid_argument, "the workflow has no nodes");
    for (const auto& c : cs) {
      // This node's own side (input already here, results kept here): no
      // edge between jobs.
      if (c.source_node_id == WorkflowConnection::kThisNode || c.target_node_id == WorkflowConnection::kThisNode)
        continue;
      for (auto end : {c.source_node_id, c.target_node_id})
        if (!nodes.count(end))
          throw Error(Errc::invalid_argument, "connection " + std::to_string(c.id) + " is dangling: node " +
                                                  std::to_string(end) + " is not in the workflow");
      auto& src = nodes[c.source_node_id];
      auto& dst = nodes[c.target_node_id];
      if (std::find(dst.upstream.begin(), dst.upstream.end(), c.source_node_id) == dst.upstream.end()) {
        dst.upstream.push_back(c.source_node_id);
        src.downstream.push_back(c.target_node_id);
      }
    }
    // Kahn's algorithm: whatever is left has a cycle.
    std::map<std::int64_t, std::size_t> indeg;
    std::deque<std::int64_t> q;
    for (auto& [nid, n] : nodes) {
      n.waiting = indeg[nid] = n.upstream.size();
      n.consumers = n.downstream.size();
      if (n.upstream.empty()) q.push_back(nid);
    }
    ready = q;
    std::size_t seen = 0;
    while (!q.empty()) {
      auto nid = q.front();
      q.pop_front();
      ++seen;
      for (auto d : nodes[nid].downstream)
        if (--indeg[d] == 0) q.push_back(d);
    }
    if (seen != nodes.size()) {
      std::string which;
      for (auto& [nid, d] : indeg)
        if (d > 0) which += (which.empty() ? "" : ", ") + std::to_string(nid);
      throw Error(Errc::invalid_argument, "the workflow graph has a cycle through nodes " + which);
    }
    // One PENDING job per node, in one transaction.
    core.store->write([&](Conn& c) {
      const auto now = now_text(core);
      for (auto& [nid, n] : nodes) {
        auto& ins = c.stmt("INSERT INTO job_executions(workflow_execution_id, workflow_id, node_id, service_id, status,"
                           " created_at) VALUES (?, ?, ?, ?, 'PENDING', ?) RETURNING id");
        ins.bind(1, static_cast<std::int64_t>(id));
        ins.bind(2, static_cast<std::int64_t>(workflow_id));
        ins.bind(3, static_cast<std::int64_t>(nid));
        ins.bind(4, static_cast<std::int64_t>(n.node.service_id));
        ins.bind(5, now);
        n.job_id = ins.run_returning_id();
      }
      auto& up = c.stmt("UPDATE workflow_executions SET jobs_total = ? WHERE id = ?");
      up.bind(1, static_cast<std::int64_t>(nodes.size()));
      up.bind(2, static_cast<std::int64_t>(id));
      up.run();
    });
  } catch (const Error& e) {
    error = e.message();
    finish();
    return;
  }
  pump();
}

void Run::pump() {
  while (!error && !aborted && !ready.empty() && running < core.opts.workflows.max_parallel) {
    const auto nid = ready.front();
    ready.pop_front();
    start_job(nid);
  }
  if (running == 0 && (ready.empty() || error || aborted)) finish();
}

void Run::start_job(std::int64_t nid) {
  auto& n = nodes[nid];
  auto job = std::make_shared<Job>(*this, nid);
  ++running;
  jobs.insert(job);
  for (auto u : n.upstream) {
    auto& up = nodes[u];
    job->input += up.stdout_data;
    if (--up.consumers == 0) std::string().swap(up.stdout_data);
  }
  const auto timeout = config_timeout(n.node.config_json).value_or(n.det ? n.det->timeout_seconds : 300);
  try {
    core.store->write([&](Conn& c) {
      auto& q = c.stmt("UPDATE job_executions SET status = 'RUNNING', started_at = ? WHERE id = ?");
      q.bind(1, now_text(core));
      q.bind(2, static_cast<std::int64_t>(n.job_id));
      q.run();
    });
  } catch (const Error&) {
    // The execution's rows are gone (workflow deleted): run it anyway; the
    // result has nowhere to go and is dropped at the end.
  }
  publish_progress(n.job_id, "RUNNING");
  job->t0 = std::chrono::steady_clock::now();
  if (n.fleet_node) {
    start_fleet(*job, n, timeout);
    return;
  }
  if (n.docker) {
    start_container(*job, n, timeout);
    return;
  }
  const auto& d = *n.det;
  int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  auto close_all = [&] {
    for (auto& p : fds)
      for (int& fd : p)
        if (fd >= 0) { ::close(fd); fd = -1; }
  };
  try {
    for (auto& p : fds)
      if (pipe2(p, O_CLOEXEC) != 0) throw Error(Errc::internal, std::string("pipe: ") + std::strerror(errno));
    std::vector<std::string> argv = {d.executable_path};
    argv.insert(argv.end(), d.arguments.begin(), d.arguments.end());
    auto env = base_environment();
    env.push_back("LUCID_WORKFLOW_ID=" + std::to_string(workflow_id));
    env.push_back("LUCID_EXECUTION_ID=" + std::to_string(id));
    env.push_back("LUCID_JOB_ID=" + std::to_string(n.job_id));
    for (const auto& [k, v] : d.environment) env.push_back(k + "=" + v);
    job->pid = spawn_process(argv, env, d.working_directory, fds[0][0], fds[1][1], fds[2][1]);
    ::close(fds[0][0]);
    ::close(fds[1][1]);
    ::close(fds[2][1]);
    fds[0][0] = fds[1][1] = fds[2][1] = -1;
    const int pfd = static_cast<int>(::syscall(SYS_pidfd_open, job->pid, 0));
    if (pfd < 0) {
      ::kill(-job->pid, SIGKILL);
      waitpid(job->pid, nullptr, 0);
      job->pid = -1;
      throw Error(Errc::internal, std::string("pidfd_open: ") + std::strerror(errno));
    }
    job->pidfd.assign(pfd);
    job->in.assign(fds[0][1]);
    job->out.assign(fds[1][0]);
    job->err.assign(fds[2][0]);
    fds[0][1] = fds[1][0] = fds[2][0] = -1;
  } catch (const Error& e) {
    close_all();
    job->spawn_error = e.message();
    job_done(*job);
    return;
  }
  job->pending = 3;
  if (job->input.empty()) {
    job->in.close();
  } else {
    asio::async_write(job->in, asio::buffer(job->input), [job](const asio::error_code&, std::size_t) {
      // EPIPE (the child does not read its input) is not an error of the job.
      asio::error_code ignored;
      job->in.close(ignored);
    });
  }
  job->read(job->out, job->obuf, job->out_buf);
  job->read(job->err, job->ebuf, job->err_buf);
  job->wait_exit();
  job->timer.expires_after(std::chrono::seconds(timeout));
  job->timer.async_wait([job, timeout](const asio::error_code& ec) {
    if (!ec && !job->exited) job->kill_group("timed out after " + std::to_string(timeout) + " s");
  });
}

// A DOCKER job: the container runs on a thread of its own (the Engine API
// calls block), its result posted back to the run's strand.
void Run::start_container(Job& job, NodeRun& n, std::int64_t timeout) {
  ContainerRun cr = n.container;
  const auto& d = *n.docker;
  if (!d.entrypoint.empty()) cr.entrypoint = parse_string_array(d.entrypoint);
  if (!d.cmd.empty()) cr.cmd = parse_string_array(d.cmd);
  cr.env = {"LUCID_WORKFLOW_ID=" + std::to_string(workflow_id), "LUCID_EXECUTION_ID=" + std::to_string(id),
            "LUCID_JOB_ID=" + std::to_string(n.job_id)};
  cr.input = job.input;
  cr.timeout = std::chrono::seconds(timeout);
  cr.max_output = core.opts.workflows.max_output_bytes;
  cr.name = "lucidnode-job-" + std::to_string(n.job_id) + "-" + to_hex(random_bytes(4));
  cr.cancelled = [flag = job.cancel] { return flag->load(); };
  const std::string image = d.image_name + ":" + (d.image_tag.empty() ? "latest" : d.image_tag);
  auto self = job.shared_from_this();
  job.pending = 1;
  try {
    spawn_container(self, std::move(cr), image);
  } catch (const std::exception& e) {
    job.spawn_error = std::string("could not start the container job: ") + e.what();
    job.pending = 0;
    job_done(job);
  }
}

void Run::spawn_container(std::shared_ptr<Job> self, ContainerRun cr, const std::string& image) {
  // Outstanding work while the container runs: a stopping executor drains
  // (the abort it posts cancels the container) instead of returning before
  // the result is recorded, as it waits for a child process's pidfd.
  auto work = std::make_shared<asio::executor_work_guard<asio::io_context::executor_type>>(core.io().get_executor());
  impl.threads.spawn([self, cr = std::move(cr), image, socket = impl.docker_socket, work] {
    auto res = DockerClient(socket).run(image, cr);
    asio::post(self->run->strand, [self, res = std::move(res), work]() mutable {
      work->reset();
      self->out_buf = std::move(res.out);
      self->err_buf = std::move(res.err);
      if (res.failure) {
        if (!self->killed) self->killed = *res.failure;
      } else {
        self->container_exit = res.exit_code;
      }
      self->exited = true;
      self->step_done();
    });
  });
}

// A job on a fleet node: a task pinned to that node, carrying the service and
// the STDIN; its end is polled from the task (four times a second) on the
// job's timer, on the run's strand.
void Run::start_fleet(Job& job, NodeRun& n, std::int64_t timeout) {
  FleetJob fj;
  fj.container = n.docker.has_value();
  if (n.docker) {
    const auto& d = *n.docker;
    fj.image = d.image_name + ":" + (d.image_tag.empty() ? "latest" : d.image_tag);
    if (!d.entrypoint.empty()) fj.entrypoint = parse_string_array(d.entrypoint);
    if (!d.cmd.empty()) fj.cmd = parse_string_array(d.cmd);
    fj.memory_bytes = n.container.memory_bytes;
    fj.nano_cpus = n.container.nano_cpus;
    fj.pids_limit = n.container.pids_limit;
    fj.network = n.container.network;
  } else {
    fj.executable = n.det->executable_path;
    fj.arguments = n.det->arguments;
    fj.environment = n.det->environment;
  }
  fj.input = job.input;
  fj.timeout_seconds = timeout;
  fj.max_stdout = std::min(kFleetMaxStdout, core.opts.workflows.max_output_bytes);
  fj.max_stderr = std::min(kFleetMaxStderr, core.opts.workflows.max_output_bytes);
  fj.workflow_id = workflow_id;
  fj.execution_id = id;
  fj.job_id = n.job_id;
  if (job.input.size() > kFleetMaxInput) {
    job.spawn_error = "its STDIN of " + std::to_string(job.input.size()) + " bytes exceeds the " +
                      std::to_string(kFleetMaxInput) + " bytes a job on a fleet node accepts";
    job_done(job);
    return;
  }
  const std::string metadata = "{\"workflow_id\":" + std::to_string(workflow_id) + ",\"execution_id\":" +
                               std::to_string(id) + ",\"job_id\":" + std::to_string(n.job_id) + "}";
  try {
    auto sub = impl.fleet.submit(n.fleet_node, fj.container ? kFleetDockerType : kFleetStandaloneType,
                                 fleet_job_payload(fj), timeout, n.fleet_retries, metadata);
    job.fleet_task = sub.task_id;
    job.fleet_deadline = std::chrono::steady_clock::now() + sub.give_up_after;
    // Recorded so that, should this server die, the one that fails the
    // execution also cancels the task (Workflows::recover).
    try {
      core.store->write([&](Conn& c) {
        auto& q = c.stmt("UPDATE job_executions SET fleet_task = ? WHERE id = ?");
        q.bind(1, sub.task_id);
        q.bind(2, static_cast<std::int64_t>(n.job_id));
        q.run();
      });
    } catch (const Error&) {
      // The execution's rows are gone (workflow deleted): nothing to record.
    }
  } catch (const std::exception& e) {
    job.spawn_error = std::string("could not dispatch the job to its fleet node: ") + e.what();
    job_done(job);
    return;
  }
  job.pending = 1;
  poll_fleet(job.shared_from_this());
}

void Run::poll_fleet(std::shared_ptr<Job> job) {
  job->timer.expires_after(std::chrono::milliseconds(250));
  job->timer.async_wait([job](const asio::error_code& ec) {
    if (ec) return;
    Run& run = *job->run;
    auto end_job = [&] {
      job->exited = true;
      job->step_done();
    };
    if (job->cancel->load()) {
      // Aborted (another job failed, the server stops): the agent is told to kill it.
      try {
        run.impl.fleet.cancel(job->fleet_task);
      } catch (const std::exception&) {
      }
      end_job();
      return;
    }
    std::optional<FleetTaskEnd> end;
    try {
      end = run.impl.fleet.poll(job->fleet_task);
    } catch (const std::exception& e) {
      job->killed = std::string("its task is gone: ") + e.what();
      end_job();
      return;
    }
    if (!end) {
      if (std::chrono::steady_clock::now() < job->fleet_deadline) {
        run.poll_fleet(job);
        return;
      }
      try {
        run.impl.fleet.cancel(job->fleet_task);
      } catch (const std::exception&) {
      }
      job->killed = "no result from its fleet node in time (task " + job->fleet_task + " cancelled)";
      end_job();
      return;
    }
    std::optional<FleetOutputs> outs;
    if (end->result_json) outs = parse_fleet_result(*end->result_json);
    if (outs) {
      job->out_buf = std::move(outs->out);
      job->err_buf = std::move(outs->err);
    }
    const std::string why = end->error.value_or("");
    if (end->status == "success") {
      job->container_exit = outs && outs->exit_code ? *outs->exit_code : 0;
    } else if (end->status == "failed" && outs && outs->exit_code && *outs->exit_code != 0 &&
               why == "exited with status " + std::to_string(*outs->exit_code)) {
      job->container_exit = *outs->exit_code;
    } else {
      job->killed = "on its fleet node (task " + job->fleet_task + ", " + end->status + "): " +
                    (why.empty() ? std::string("no reason given") : why);
    }
    end_job();
  });
}

void Run::job_done(Job& j) {
  auto self = shared_from_this();
  auto keep = j.shared_from_this();
  jobs.erase(keep);
  --running;
  auto& n = nodes[j.node_id];
  std::optional<int> exit_code;
  std::optional<std::string> why = j.spawn_error ? j.spawn_error : j.killed;
  if (!why && j.container_exit) {
    exit_code = *j.container_exit;
    if (*exit_code != 0) why = "exited with status " + std::to_string(*exit_code);
  } else if (!why && j.exited) {
    if (WIFEXITED(j.status)) {
      exit_code = WEXITSTATUS(j.status);
      if (*exit_code != 0) why = "exited with status " + std::to_string(*exit_code);
    } else if (WIFSIGNALED(j.status)) {
      why = "killed by signal " + std::to_string(WTERMSIG(j.status));
    }
  }
  const bool ok = !why;
  const char* st = ok ? "COMPLETED" : "FAILED";
  try {
    core.store->write([&](Conn& c) {
      auto& q = c.stmt("UPDATE job_executions SET status = ?, completed_at = ?, exit_code = ?, error = ? WHERE id = ?");
      q.bind(1, st);
      q.bind(2, now_text(core));
      if (exit_code) q.bind(3, *exit_code); else q.bind(3, nullptr);
      if (why) q.bind(4, *why); else q.bind(4, nullptr);
      q.bind(5, static_cast<std::int64_t>(n.job_id));
      q.run();
      const std::pair<const char*, const std::string*> ifs[] = {{"STDIN", &j.input}, {"STDOUT", &j.out_buf}, {"STDERR", &j.err_buf}};
      for (auto [type, value] : ifs) {
        auto& ins = c.stmt("INSERT INTO job_execution_interfaces(job_execution_id, interface_type, value) VALUES (?, ?, ?)");
        ins.bind(1, static_cast<std::int64_t>(n.job_id));
        ins.bind(2, type);
        ins.bind_blob(3, *value);
        ins.run();
      }
      auto& up = c.stmt("UPDATE workflow_executions SET jobs_done = jobs_done + 1 WHERE id = ?");
      up.bind(1, static_cast<std::int64_t>(id));
      up.run();
    });
  } catch (const Error&) {
    // See start_job: the execution was deleted with its workflow.
  }
  publish_progress(n.job_id, st);
  if (ok) {
    n.stdout_data = std::move(j.out_buf);
    if (n.consumers == 0) std::string().swap(n.stdout_data);
    for (auto d : n.downstream)
      if (--nodes[d].waiting == 0) ready.push_back(d);
  } else if (!error) {
    error = "job " + std::to_string(n.job_id) + " (node " + std::to_string(j.node_id) + ", service " +
            std::to_string(n.node.service_id) + ") failed: " + *why;
  }
  pump();
}

void Run::abort(const std::string& why) {
  if (aborted) return;
  aborted = true;
  if (!error) error = why;
  for (auto& j : jobs) j->kill_group(why);
}

void Run::finish() {
  if (finished) return;
  finished = true;
  const bool ok = !error;
  try {
    core.store->write([&](Conn& c) {
      const auto now = now_text(core);
      auto& q = c.stmt("UPDATE job_executions SET status = 'CANCELLED', completed_at = ?, error = ?"
                       " WHERE workflow_execution_id = ? AND status = 'PENDING'");
      q.bind(1, now);
      q.bind(2, "not started: the execution failed");
      q.bind(3, static_cast<std::int64_t>(id));
      q.run();
      auto& u = c.stmt("UPDATE workflow_executions SET status = ?, completed_at = ?, error = ?, jobs_done = jobs_total"
                       " WHERE id = ?");
      u.bind(1, ok ? "COMPLETED" : "FAILED");
      u.bind(2, now);
      if (error) u.bind(3, *error); else u.bind(3, nullptr);
      u.bind(4, static_cast<std::int64_t>(id));
      u.run();
    });
  } catch (const Error&) {
  }
  {
    std::lock_guard<std::mutex> lock(impl.mu);
    impl.runs.erase(id);
  }
  std::string p = "{\"workflow_id\":" + std::to_string(workflow_id) + ",\"execution_id\":" + std::to_string(id) +
                  ",\"status\":\"" + (ok ? "COMPLETED" : "FAILED") + "\"";
  if (error) p += ",\"error\":\"" + json_escape(*error) + "\"";
  p += "}";
  publish(core, "EXECUTION_UPDATED", p);
}

}  // namespace wf

namespace {

ExecutionInstance read_instance(detail::Statement& q) {
  ExecutionInstance e;
  e.id = q.column(0).as_int64();
  e.workflow_id = q.column(1).as_int64();
  e.status = q.column(2).as_text();
  e.started_at = parse_stored(q.column(3).as_text());
  e.completed_at = parse_stored_opt(q.column(4));
  if (!q.column(5).is_null()) e.error = q.column(5).as_text();
  e.jobs_total = q.column(6).as_int64();
  e.jobs_done = q.column(7).as_int64();
  return e;
}

JobExecution read_job(detail::Statement& q) {
  JobExecution j;
  j.id = q.column(0).as_int64();
  j.workflow_execution_id = q.column(1).as_int64();
  j.workflow_id = q.column(2).as_int64();
  j.node_id = q.column(3).as_int64();
  j.service_id = q.column(4).as_int64();
  j.status = q.column(5).as_text();
  j.created_at = parse_stored(q.column(6).as_text());
  j.started_at = parse_stored_opt(q.column(7));
  j.completed_at = parse_stored_opt(q.column(8));
  if (!q.column(9).is_null()) j.exit_code = q.column(9).as_int();
  if (!q.column(10).is_null()) j.error = q.column(10).as_text();
  return j;
}

#define LUCID_INSTANCE_COLS "id, workflow_id, status, started_at, completed_at, error, jobs_total, jobs_done"
#define LUCID_JOB_COLS                                                                                          \
  "id, workflow_execution_id, workflow_id, node_id, service_id, status, created_at, started_at, completed_at, " \
  "exit_code, error"

}  // namespace

ExecutionInstance Workflows::execute(std::int64_t workflow_id) {
  auto inst = core_.store->write([&](Conn& c) {
    auto& w = c.stmt("SELECT 1 FROM workflows WHERE id = ?");
    w.bind(1, static_cast<std::int64_t>(workflow_id));
    if (!w.step()) throw Error(Errc::not_found, "Workflow not found");
    w.reset();
    auto& q = c.stmt("INSERT INTO workflow_executions(workflow_id, status, started_at, owner) VALUES (?, 'RUNNING', ?, ?)"
                     " RETURNING id");
    q.bind(1, static_cast<std::int64_t>(workflow_id));
    q.bind(2, now_text(core_));
    q.bind(3, core_.instance_id());
    const std::int64_t new_id = q.run_returning_id();
    auto& r = c.stmt("SELECT " LUCID_INSTANCE_COLS " FROM workflow_executions WHERE id = ?");
    r.bind(1, new_id);
    r.step();
    return read_instance(r);
  });
  auto run = std::make_shared<wf::Run>(core_, *this, *impl_, inst.id, workflow_id);
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->runs[inst.id] = run;
  }
  asio::post(run->strand, [run] { run->begin(); });
  run->publish_progress(0, "");
  return inst;
}

std::vector<ExecutionInstance> Workflows::executions(std::int64_t workflow_id) {
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT " LUCID_INSTANCE_COLS " FROM workflow_executions WHERE workflow_id = ? ORDER BY id");
    q.bind(1, static_cast<std::int64_t>(workflow_id));
    std::vector<ExecutionInstance> out;
    while (q.step()) out.push_back(read_instance(q));
    return out;
  });
}

ExecutionInstance Workflows::execution(std::int64_t execution_id) {
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT " LUCID_INSTANCE_COLS " FROM workflow_executions WHERE id = ?");
    q.bind(1, static_cast<std::int64_t>(execution_id));
    if (!q.step()) throw Error(Errc::not_found, "Workflow execution not found");
    return read_instance(q);
  });
}

std::vector<JobExecution> Workflows::execution_jobs(std::int64_t execution_id) {
  return core_.store->read([&](Conn& c) {
    auto& e = c.stmt("SELECT 1 FROM workflow_executions WHERE id = ?");
    e.bind(1, static_cast<std::int64_t>(execution_id));
    if (!e.step()) throw Error(Errc::not_found, "Workflow execution not found");
    e.reset();
    auto& q = c.stmt("SELECT " LUCID_JOB_COLS " FROM job_executions WHERE workflow_execution_id = ? ORDER BY id");
    q.bind(1, static_cast<std::int64_t>(execution_id));
    std::vector<JobExecution> out;
    while (q.step()) out.push_back(read_job(q));
    return out;
  });
}

std::vector<JobExecution> Workflows::workflow_jobs(std::int64_t workflow_id) {
  return core_.store->read([&](Conn& c) {
    auto& q = c.stmt("SELECT " LUCID_JOB_COLS " FROM job_executions WHERE workflow_id = ? ORDER BY id");
    q.bind(1, static_cast<std::int64_t>(workflow_id));
    std::vector<JobExecution> out;
    while (q.step()) out.push_back(read_job(q));
    return out;
  });
}

std::vector<JobInterface> Workflows::job_interfaces(std::int64_t job_id) {
  return core_.store->read([&](Conn& c) {
    auto& e = c.stmt("SELECT 1 FROM job_executions WHERE id = ?");
    e.bind(1, static_cast<std::int64_t>(job_id));
    if (!e.step()) throw Error(Errc::not_found, "Job execution not found");
    e.reset();
    auto& q = c.stmt("SELECT id, job_execution_id, interface_type, value FROM job_execution_interfaces"
                     " WHERE job_execution_id = ? ORDER BY id");
    q.bind(1, static_cast<std::int64_t>(job_id));
    std::vector<JobInterface> out;
    while (q.step()) {
      const auto v = q.column(3);
      out.push_back({q.column(0).as_int64(), q.column(1).as_int64(), q.column(2).as_text(),
                     std::string(v.as_blob())});
    }
    return out;
  });
}

void Workflows::shutdown() {
  std::vector<std::shared_ptr<wf::Run>> runs;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (auto& [id, r] : impl_->runs) runs.push_back(r);
  }
  for (auto& r : runs) asio::post(r->strand, [r] { r->abort("server stopping: the execution was interrupted"); });
}

void Workflows::recover() {
  std::error_code ec;
  std::filesystem::create_directories(impl_->data_dir, ec);
  fail_abandoned();
}

std::size_t Workflows::fail_abandoned() {
  // One process on the database: whatever it finds RUNNING at open, a
  // previous process left. Replicas: only what a process that is gone left
  // (ClusterCore::instance_alive); a live replica's executions go on.
  const bool replicas = core_.replicated();
  // The same words either way (clients match them): on replicas the
  // execution's server restarted or was replaced.
  const char* job_error = "server restarted while the job was pending or running";
  const char* run_error = "server restarted while the execution was running";
  std::vector<std::string> fleet_tasks;
  std::size_t failed = 0;
  core_.store->write([&](Conn& c) {
    std::vector<std::int64_t> owners;
    auto& o = c.stmt("SELECT DISTINCT owner FROM workflow_executions WHERE status = 'RUNNING'");
    while (o.step()) owners.push_back(o.column(0).as_int64());
    o.reset();
    const auto now = now_text(core_);
    for (const auto owner : owners) {
      if (core_.instance_alive(c, owner)) continue;
      auto& t = c.stmt("SELECT j.fleet_task FROM job_executions j JOIN workflow_executions e"
                       " ON e.id = j.workflow_execution_id WHERE e.status = 'RUNNING' AND e.owner = ?"
                       " AND j.status IN ('PENDING', 'RUNNING') AND j.fleet_task IS NOT NULL");
      t.bind(1, owner);
      while (t.step()) fleet_tasks.push_back(t.column(0).as_text());
      t.reset();
      auto& j = c.stmt("UPDATE job_executions SET status = CASE status WHEN 'RUNNING' THEN 'FAILED' ELSE 'CANCELLED' END,"
                       " completed_at = ?, error = ? WHERE status IN ('PENDING', 'RUNNING') AND workflow_execution_id IN"
                       " (SELECT id FROM workflow_executions WHERE status = 'RUNNING' AND owner = ?)");
      j.bind(1, now);
      j.bind(2, job_error);
      j.bind(3, owner);
      j.run();
      auto& q = c.stmt("UPDATE workflow_executions SET status = 'FAILED', completed_at = ?, jobs_done = jobs_total,"
                       " error = ? WHERE status = 'RUNNING' AND owner = ?");
      q.bind(1, now);
      q.bind(2, run_error);
      q.bind(3, owner);
      q.run();
      failed += static_cast<std::size_t>(c.changes());
    }
  });
  // After the commit: the tasks of fleet jobs nobody waits for any more. (At
  // an open on SQLite the task engine cancels every leftover workflow task
  // itself; fleet dispatch may not be wired yet.)
  if (replicas && impl_->fleet.cancel)
    for (const auto& id : fleet_tasks) {
      try {
        impl_->fleet.cancel(id);
      } catch (const std::exception&) {
        // The task is gone or ended meanwhile: nothing to cancel.
      }
    }
  return failed;
}

}  // namespace lucid
