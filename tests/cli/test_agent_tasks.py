"""Cluster tasks end to end: a live lucid-server and two real `lucidctl agent`
processes with different capabilities. Tasks land only where their
requirements hold, run as child processes, time out (the child is killed),
are cancelled while running, and a SIGKILLed agent's task is retried on the
other agent."""
import os
import time
import unittest
import uuid

from lucidtest import Server
from test_agent import Agent

# The cluster API allows 60 requests a minute per client by default; these
# tests poll task states, so they lift the limit (its own tests are in tests/http).
SERVER_ARGS = ["--rate-cluster-minute", "1000000", "--rate-cluster-hour", "10000000",
               "--rate-cluster-burst", "1000000"]


def proc_table():
    """{pid: (ppid, argv)} of every process now."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        out[int(name)] = (ppid, argv)
    return out


def processes_with(marker):
    return [pid for pid, (_, argv) in proc_table().items() if marker in argv]


def task_children(agent_pid):
    """The agent's child processes running a built-in task (`lucidctl __task ...`)."""
    return [pid for pid, (ppid, argv) in proc_table().items() if ppid == agent_pid and "__task" in argv]


class AgentTasksTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(SERVER_ARGS).start()
        self.admin = self.server.token()
        self.agents = []
        # Two agents with different roles, tags, advertised sizes and allowed types.
        self.big = self.start_agent("big.example.com", "--role", "compute", "--tag", "fast", "--tag", "ssd",
                                    "--cpu-count", "8", "--memory-gb", "16", "--allow", "command",
                                    "--max-tasks", "2")
        self.small = self.start_agent("small.example.com", "--role", "storage", "--tag", "slow",
                                      "--cpu-count", "2", "--memory-gb", "2", "--allow", "python_eval",
                                      "--max-tasks", "2")
        self.big.wait_for(r"device reported: platform=linux cpus=8 memory=16.00GB")
        self.small.wait_for(r"device reported: platform=linux cpus=2 memory=2.00GB")
        devices = self.api("GET", "/api/v1/devices")["data"]
        by_host = {d["hostname"]: d for d in devices}
        self.big_id = by_host["big.example.com"]["device_id"]
        self.small_id = by_host["small.example.com"]["device_id"]

    def tearDown(self):
        for a in self.agents:
            a.close()
        self.assertEqual(self.server.stop(), 0, self.server.read_log()[-3000:])
        self.server.cleanup()

    # ---- helpers ----

    def start_agent(self, hostname, *flags):
        _, key = self.server.join_and_approve(hostname, self.admin)
        key_file = os.path.join(self.server.dir, hostname + ".key")
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        a = Agent(self.server.url, hostname, key_file, "--work-wait", "1", "--progress-interval", "1", *flags)
        self.agents.append(a)
        return a

    def api(self, method, path, body=None, status=200):
        r = self.server.request(method, path, body, token=self.admin)
        self.assertEqual(r.status, status, r)
        return r.json()

    def submit(self, task_type, payload, **requirements):
        body = {"task_type": task_type, "payload": payload}
        if requirements:
            body["requirements"] = requirements
        r = self.server.request("POST", "/api/v1/tasks", body, token=self.admin)
        self.assertIn(r.status, (200, 201), r)
        return r.json()["data"]["task_id"]

    def task(self, task_id):
        return self.api("GET", "/api/v1/tasks/" + task_id)["data"]

    def wait_task(self, task_id, statuses, timeout=30):
        deadline = time.time() + timeout
        t = None
        while time.time() < deadline:
            t = self.task(task_id)
            if t["status"] in statuses:
                return t
            time.sleep(0.1)
        self.fail("task %s never reached %s; last: %r" % (task_id, statuses, t))

    # ---- tests ----

    def test_placement_follows_requirements(self):
        # Capabilities as reported (advertised sizes, real storage, allowed types).
        big = self.api("GET", "/api/v1/devices/" + self.big_id)["data"]
        self.assertEqual(big["role"], "compute")
        self.assertEqual(sorted(big["tags"]), ["fast", "ssd"])
        self.assertEqual(big["capabilities"]["cpu_count"], 8)
        self.assertEqual(big["capabilities"]["memory_total_gb"], 16)
        self.assertGreater(big["capabilities"]["storage_total_gb"], 0)
        self.assertEqual(sorted(big["allowed_task_types"]), ["command", "echo", "sleep", "system_info"])
        self.assertEqual(big["max_concurrent"], 2)
        small = self.api("GET", "/api/v1/devices/" + self.small_id)["data"]
        self.assertEqual(sorted(small["allowed_task_types"]), ["echo", "python_eval", "sleep", "system_info"])

        on_big = [
            self.submit("echo", {"message": "hi"}, required_role="compute"),
            self.submit("echo", {"n": 2}, min_cpu_cores=4),
            self.submit("echo", {"n": 3}, min_memory_gb=8),
            self.submit("echo", {"n": 4}, required_tags=["fast", "ssd"]),
        ]
        on_small = [
            self.submit("echo", {"n": 5}, required_tags=["slow"]),
            self.submit("echo", {"n": 6}, required_role="storage"),
        ]
        cmd = self.submit("command", {"argv": ["printf", "%s|", "a b", "$HOME"]})
        shell = self.submit("command", {"command": "echo $((6*7)) >&2; exit 3", "shell": True})
        py = self.submit("python_eval", {"expression": "sum(range(10))"})
        py_err = self.submit("python_eval", {"expression": "undefined_name"})
        info = self.submit("system_info", {}, required_platform="linux")
        # Nobody can run these: they wait in `queued` with the reason.
        never = [
            self.submit("http_request", {"url": "http://127.0.0.1:1/"}),     # no agent allows it
            self.submit("echo", {"n": 7}, min_cpu_cores=64),                # too big for both
            self.submit("command", {"argv": ["true"]}, required_tags=["slow"]),  # small does not allow command
            self.submit("echo", {"n": 8}, gpu_required=True),
        ]

        for tid in on_big:
            t = self.wait_task(tid, {"success"})
            self.assertEqual(t["device_id"], self.big_id, t)
        for tid in on_small:
            t = self.wait_task(tid, {"success"})
            self.assertEqual(t["device_id"], self.small_id, t)
        r = self.api("GET", "/api/v1/tasks/%s/result" % on_big[0])["data"]
        self.assertEqual(r["status"], "success")
        self.assertEqual(r["result_data"], {"echo": {"message": "hi"}})
        self.assertEqual(r["worker_device_id"], self.big_id)

        t = self.wait_task(cmd, {"success"})
        self.assertEqual(t["device_id"], self.big_id)
        self.assertEqual(t["result_data"]["stdout"], "a b|$HOME|")  # argv verbatim, no shell
        self.assertEqual(t["exit_code"], 0)
        t = self.wait_task(shell, {"failed"})
        self.assertEqual(t["device_id"], self.big_id)
        self.assertEqual(t["exit_code"], 3)
        self.assertEqual(t["result_data"]["stderr"], "42\n")

        # A retried task runs again on the same agent (a new attempt, not a re-delivery).
        marker = os.path.join(self.server.dir, "retry-marker")
        flaky = self.submit("command", {"command": "test -e %s || { touch %s; exit 1; }" % (marker, marker),
                                        "shell": True})
        t = self.wait_task(flaky, {"failed"})
        self.assertEqual(t["attempt"], 1)
        self.api("POST", "/api/v1/tasks/%s/retry" % flaky)
        t = self.wait_task(flaky, {"success"})
        self.assertEqual(t["attempt"], 2)
        self.assertEqual(t["device_id"], self.big_id)

        t = self.wait_task(py, {"success"})
        self.assertEqual(t["device_id"], self.small_id)
        self.assertEqual(t["result_data"]["result"], 45)
        t = self.wait_task(py_err, {"failed"})
        self.assertIn("NameError", t["error"])

        t = self.wait_task(info, {"success"})
        self.assertEqual(t["result_data"]["platform"], "linux")
        with open("/proc/cpuinfo") as f:
            cpus = sum(1 for line in f if line.startswith("processor"))
        self.assertEqual(t["result_data"]["cpu_count"], cpus)  # the real count, not the advertised one

        for tid in never:
            t = self.task(tid)
            self.assertEqual(t["status"], "queued", t)
            self.assertTrue(t["status_reason"], t)
            self.assertIsNone(t["device_id"], t)

        # A ping is a real round trip to the agent.
        r = self.api("POST", "/api/v1/devices/%s/ping" % self.big_id)
        self.assertEqual(r["status"], "success")
        self.big.wait_for(r"ping \S+ answered")

        # Removing a device revokes its key: its agent stops (exit 4).
        self.api("DELETE", "/api/v1/devices/" + self.small_id)
        self.small.wait_for(r"rejected our API key")
        self.assertEqual(self.small.proc.wait(timeout=20), 4)

    def test_timeout_kills_the_child_and_cancel_stops_a_sleep(self):
        marker = "lucid-timeout-" + uuid.uuid4().hex
        slow = self.submit("command", {"argv": ["python3", "-c", "import time; time.sleep(120)", marker]},
                           timeout_seconds=2)
        t = self.wait_task(slow, {"running"})
        self.assertEqual(t["device_id"], self.big_id)
        deadline = time.time() + 10
        while not processes_with(marker) and time.time() < deadline:
            time.sleep(0.05)
        self.assertTrue(processes_with(marker), "the task's process never appeared")
        t = self.wait_task(slow, {"timeout", "failed", "success"}, timeout=20)
        self.assertEqual(t["status"], "timeout", t)
        self.assertIn("killed after", t["error"])
        self.assertEqual(processes_with(marker), [], "the timed-out process is still alive")

        # A running sleep is cancelled: the agent kills it within a poll.
        sleeper = self.submit("sleep", {"seconds": 60}, required_role="storage")
        self.wait_task(sleeper, {"running"})
        deadline = time.time() + 10
        while not task_children(self.small.proc.pid) and time.time() < deadline:
            time.sleep(0.05)
        children = task_children(self.small.proc.pid)
        self.assertEqual(len(children), 1, "expected one `lucidctl __task sleep` child")
        t0 = time.time()
        r = self.api("POST", "/api/v1/tasks/%s/cancel" % sleeper)
        self.assertEqual(r["status"], "success")
        self.small.wait_for(r"%s \(sleep\) finished: cancelled" % sleeper, timeout=10)
        self.assertLess(time.time() - t0, 5)
        self.assertEqual(self.task(sleeper)["status"], "cancelled")
        self.assertEqual(task_children(self.small.proc.pid), [], "the cancelled sleep is still running")
        for pid in children:
            self.assertFalse(os.path.exists("/proc/%d" % pid), "the cancelled sleep is still running")
        # A sleep that outlives its timeout is killed too (the built-in path).
        nap = self.submit("sleep", {"seconds": 30}, timeout_seconds=1, required_role="storage")
        t = self.wait_task(nap, {"timeout", "failed", "success"}, timeout=20)
        self.assertEqual(t["status"], "timeout", t)
        self.assertEqual(task_children(self.small.proc.pid), [])

    def test_killed_agents_task_is_retried_on_the_other(self):
        # timeout_seconds well past the clock jump below: the task must be
        # requeued for its lost device, not timed out.
        tid = self.submit("sleep", {"seconds": 3}, max_retries=2, timeout_seconds=3600)
        t = self.wait_task(tid, {"running"})
        first = t["device_id"]
        victim, survivor_id = (self.big, self.small_id) if first == self.big_id else (self.small, self.big_id)
        deadline = time.time() + 10
        while not task_children(victim.proc.pid) and time.time() < deadline:
            time.sleep(0.05)
        orphans = task_children(victim.proc.pid)
        self.assertEqual(len(orphans), 1)
        victim.proc.kill()
        victim.proc.wait()
        # Its child dies with it (PR_SET_PDEATHSIG), not left running.
        deadline = time.time() + 5
        while any(os.path.exists("/proc/%d" % p) and "__task" in proc_table().get(p, (0, []))[1] for p in orphans) \
                and time.time() < deadline:
            time.sleep(0.05)
        for p in orphans:
            self.assertNotIn("__task", proc_table().get(p, (0, []))[1])
        # Let the device go stale without waiting minutes: move the clock past
        # the heartbeat timeout. The surviving agent polls every second and
        # is online again at once; the killed one is not.
        self.server.advance_clock(600, self.admin)
        t = self.wait_task(tid, {"success", "failed"}, timeout=40)
        self.assertEqual(t["status"], "success", t)
        self.assertEqual(t["device_id"], survivor_id, t)
        self.assertEqual(t["retries"], 1, t)
        self.assertEqual(t["attempt"], 2, t)
        self.assertEqual(t["result_data"], {"slept_seconds": 3})
        dead = self.api("GET", "/api/v1/devices/" + first)["data"]
        self.assertEqual(dead["status"], "offline")

    def test_result_survives_a_server_restart(self):
        # The task finishes while the server is down: the agent keeps the
        # result and reports it when the server is back.
        tid = self.submit("sleep", {"seconds": 2}, required_role="compute")
        self.wait_task(tid, {"running"})
        self.assertEqual(self.server.stop(), 0)
        self.big.wait_for(r"%s \(sleep\) result report failed" % tid, timeout=20)
        self.server.start()
        self.big.wait_for(r"%s \(sleep\) finished: completed" % tid, timeout=30)
        t = self.wait_task(tid, {"success"})
        self.assertEqual(t["result_data"], {"slept_seconds": 2})
        # Both agents poll the restarted server again and take new work.
        for role in ("compute", "storage"):
            t = self.wait_task(self.submit("echo", {"after": "restart"}, required_role=role), {"success"})
            self.assertEqual(t["result_data"], {"echo": {"after": "restart"}})


if __name__ == "__main__":
    unittest.main()
