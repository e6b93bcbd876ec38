#!/usr/bin/env python3
"""bench/agents_real — cluster echo tasks end to end with real `lucidctl agent`
processes (issue 19 item 1). Loopback only; never asserts on timing.

Starts lucid-server (--bin-dir, default build/bin) on a temporary database with
the cluster API's per-client rate, the join rate and the per-address connection
cap lifted (every agent is on 127.0.0.1), registers --agents nodes (join,
approve, collect the key with the join secret), starts one `lucidctl agent`
per node (--max-tasks slots each, --work-wait long-poll), waits until every
device reported, then submits `echo` tasks closed loop from --submitters
threads (keep-alive connections) with at most --max-inflight tasks submitted
and not yet finished, for --seconds. Finished tasks are counted from
GET /api/v1/tasks/statistics (by_status success + failed) read every 100 ms.

Prints `key: value` lines: the machine (nproc, CPU model, load average), the
command line, tasks/s completed during the window, submits/s, failures, the
CPU seconds used by the server and by all agents (with their task children,
which are reaped), and the load average after.

  bench/agents_real.py --agents 20 --seconds 10
  bench/agents_real.py --agents 50 --max-tasks 2 --seconds 10
"""
import argparse
import http.client
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    print("machine: %s %s" % (platform.system(), platform.release()))
    print("nproc: %d" % os.cpu_count())
    print("cpu_model: %s" % model)
    print("loadavg_before: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
    print("command: %s" % " ".join(sys.argv))


def cpu_seconds(pid):
    """utime+stime (and reaped children's) of a live process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default=os.path.join(HERE, "..", "build", "bin"))
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--max-tasks", type=int, default=1, help="task slots per agent (--max-tasks)")
    ap.add_argument("--work-wait", type=int, default=10, help="agent long-poll seconds (--work-wait)")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--submitters", type=int, default=4)
    ap.add_argument("--max-inflight", type=int, default=0, help="default: 4 x total slots")
    ap.add_argument("--agent-arg", action="append", default=[], help="extra argument for every agent")
    ap.add_argument("--server-arg", action="append", default=[])
    a = ap.parse_args()
    if not 1 <= a.agents <= 500 or not 1 <= a.max_tasks <= 256 or not 0 < a.seconds <= 600:
        ap.error("--agents 1..500, --max-tasks 1..256, --seconds 0..600")
    inflight_cap = a.max_inflight or 4 * a.agents * a.max_tasks

    os.environ["LUCID_BIN_DIR"] = os.path.abspath(a.bin_dir)
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "http"))
    import lucidtest  # noqa: E402  (after LUCID_BIN_DIR is set)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 65536):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    machine()
    server_args = ["--quiet", "--rate-cluster-minute", "100000000", "--rate-cluster-hour", "1000000000",
                   "--rate-cluster-burst", "100000000", "--rate-join", "100000000",
                   "--max-connections-per-address", "0"]
    # The admin tier of the cluster API's rate (newer servers; an older one
    # refuses an unknown flag, so only when --help names it).
    help_text = subprocess.run([lucidtest.SERVER_BIN, "--help"], capture_output=True, text=True).stdout
    if "--rate-cluster-admin-minute" in help_text:
        server_args += ["--rate-cluster-admin-minute", "100000000", "--rate-cluster-admin-hour", "1000000000",
                        "--rate-cluster-admin-burst", "100000000"]
    server_args += a.server_arg
    print("server_args: %s" % " ".join(server_args))
    server = lucidtest.Server(server_args, test_clock=False).start()
    agents = []
    try:
        admin = server.token()
        for i in range(a.agents):
            _, key = server.join_and_approve("agent-%d" % i, admin)
            key_file = os.path.join(server.dir, "agent-%d.key" % i)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key + "\n")
            agents.append(subprocess.Popen(
                [lucidtest.CTL_BIN, "agent", "--server", server.url, "--hostname", "agent-%d" % i,
                 "--key-file", key_file, "--interval", "30", "--max-tasks", str(a.max_tasks),
                 "--work-wait", str(a.work_wait)] + a.agent_arg,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.time() + 60
        while True:
            r = server.request("GET", "/api/v1/devices?page_size=100", token=admin)
            body = r.json() if r.status == 200 else {}
            online = [d for d in body.get("data", []) if d.get("status") == "online" and d.get("reported")]
            if len(online) >= min(a.agents, 100):
                break
            if time.time() > deadline:
                print("error: only %d of %d devices online after 60 s" % (len(online), a.agents))
                return 1
            time.sleep(0.2)
        print("agents: %d" % a.agents)
        print("slots_per_agent: %d" % a.max_tasks)
        print("max_inflight: %d" % inflight_cap)

        lock = threading.Lock()
        state = {"submitted": 0, "errors": 0, "finished": 0, "failed": 0}
        stop = threading.Event()
        room = threading.Condition(lock)

        def finished_now(conn):
            conn.request("GET", "/api/v1/tasks/statistics", headers={"Authorization": "Bearer " + admin})
            r = conn.getresponse()
            data = json.loads(r.read())["data"]
            by = data["by_status"]
            return by.get("success", 0) + by.get("failed", 0) + by.get("timeout", 0), by.get("failed", 0)

        def watcher():
            conn = server.connection()
            while not stop.is_set():
                done, failed = finished_now(conn)
                with lock:
                    state["finished"], state["failed"] = done, failed
                    room.notify_all()
                time.sleep(0.1)

        body = json.dumps({"task_type": "echo", "payload": {"message": "x" * 32}}).encode()
        headers = {"Authorization": "Bearer " + admin, "Content-Type": "application/json"}

        def submitter():
            conn = server.connection()
            while not stop.is_set():
                with lock:
                    while state["submitted"] - state["finished"] >= inflight_cap and not stop.is_set():
                        room.wait(0.2)
                    if stop.is_set():
                        return
                    state["submitted"] += 1
                conn.request("POST", "/api/v1/tasks", body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                if r.status not in (200, 201):
                    with lock:
                        state["errors"] += 1
                        state["submitted"] -= 1

        server_cpu0 = cpu_seconds(server.proc.pid)
        agents_cpu0 = sum(cpu_seconds(p.pid) for p in agents)
        threads = [threading.Thread(target=watcher, daemon=True)]
        threads += [threading.Thread(target=submitter, daemon=True) for _ in range(a.submitters)]
        for t in threads:
            t.start()
        time.sleep(min(2.0, a.seconds / 4))  # warm up: the pipeline fills
        with lock:
            f0, s0 = state["finished"], state["submitted"]
        t0 = time.time()
        time.sleep(a.seconds)
        with lock:
            f1, s1 = state["finished"], state["submitted"]
        t1 = time.time()
        stop.set()
        for t in threads:
            t.join(timeout=10)
        server_cpu = cpu_seconds(server.proc.pid) - server_cpu0
        agents_cpu = sum(cpu_seconds(p.pid) for p in agents) - agents_cpu0
        wall = t1 - t0
        print("window_seconds: %.2f" % wall)
        print("tasks_completed_per_s: %.0f" % ((f1 - f0) / wall))
        print("tasks_submitted_per_s: %.0f" % ((s1 - s0) / wall))
        print("tasks_failed_total: %d" % state["failed"])
        print("submit_errors: %d" % state["errors"])
        print("server_cpu_cores: %.2f" % (server_cpu / (time.time() - t0)))
        print("agents_cpu_cores: %.2f" % (agents_cpu / (time.time() - t0)))
        print("loadavg_after: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
        return 0
    finally:
        for p in agents:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in agents:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
