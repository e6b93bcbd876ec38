"""Workflow jobs on fleet nodes (issue 17, docs/workflows.md "Jobs on fleet
nodes"): a live lucid-server and real `lucidctl agent` processes. A workflow
node naming an agent's peer id runs its job on that agent (a task of type
workflow_job pinned to its node) when the agent opted in
(--allow-workflow-jobs); STDOUT flows server -> agent -> server; the job's
environment is scrubbed and its directory confined and removed; failures,
timeouts, bounds and refusals end the execution with the documented error;
a killed agent fails the job (retry_count 0) or has it run again when it
comes back (retry_count 1); another node cannot touch the job."""
import json
import os
import time
import unittest

from lucidtest import Server
from test_agent import Agent
from test_agent_tasks import SERVER_ARGS, proc_table
from test_network_services import data_dir, standalone, write_script
from test_network_workflows import WorkflowHelpers, job_output, wait_execution


class FleetCase(WorkflowHelpers, unittest.TestCase):
    server_args = []
    a_flags = ["--allow-workflow-jobs"]  # fleet-a opted in
    b_flags = []                         # fleet-b did not

    def setUp(self):
        # The agent's own environment has a variable a job must not see.
        os.environ["FLEET_CANARY"] = "agent-secret"
        self.addCleanup(os.environ.pop, "FLEET_CANARY", None)
        self.server = Server(SERVER_ARGS + self.server_args).start()
        self.admin = self.server.token()
        self.agents = []
        self.a, self.a_peer, self.a_dev = self.start_agent("fleet-a.example.com", *self.a_flags)
        self.b, self.b_peer, self.b_dev = self.start_agent("fleet-b.example.com", *self.b_flags)

    def tearDown(self):
        for a in self.agents:
            a.close()
        self.assertEqual(self.server.stop(), 0, self.server.read_log()[-3000:])
        self.server.cleanup()

    # ---- helpers ----

    def key_file(self, hostname):
        return os.path.join(self.server.dir, hostname + ".key")

    def start_agent(self, hostname, *flags, join=True):
        if join:
            _, key = self.server.join_and_approve(hostname, self.admin)
            fd = os.open(self.key_file(hostname), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key + "\n")
        a = Agent(self.server.url, hostname, self.key_file(hostname), "--work-wait", "1", "--progress-interval", "1",
                  *flags)
        self.agents.append(a)
        peer = a.wait_for(r"identity key .* registered; peer id (\S+)").group(1)
        a.wait_for(r"device reported")
        devices = self.req("GET", "/api/v1/devices").json()["data"]
        dev = [d for d in devices if d["hostname"] == hostname][0]["device_id"]
        return a, peer, dev

    def script(self, name, text):
        return standalone(self.server, self.admin, name, write_script(self.server, "bin/%s" % name, text))

    def fleet_tasks(self, task_type="workflow_job"):
        r = self.req("GET", "/api/v1/tasks?task_type=%s&page_size=100" % task_type)
        self.assertEqual(r.status, 200, r)
        return r.json()["data"]

    def wait_task_status(self, statuses, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            ts = [t for t in self.fleet_tasks() if t["status"] in statuses]
            if ts:
                return ts[0]
            time.sleep(0.1)
        self.fail("no workflow_job task reached %s: %r" % (statuses, self.fleet_tasks()))

    def failed_with(self, wid, text):
        st = self.run_wf(wid) if not isinstance(wid, dict) else wid
        self.assertEqual(st["status"], "FAILED", st)
        self.assertIn(text, st["error"])
        return st


class TestFleetJobs(FleetCase):
    def test_server_job_pipes_into_agent_job_and_back(self):
        src = self.script("src", "#!/bin/sh\necho hello fleet\n")
        upper = self.script("upper", "#!/bin/sh\ntr a-z A-Z\necho \"pwd=$(pwd)\" >&2\n"
                                     "echo \"canary=${FLEET_CANARY:-none} job=$LUCID_JOB_ID path=$PATH\" >&2\n")
        rev = self.script("rev", "#!/bin/sh\nrev\n")
        wid = self.workflow()
        a = self.node(wid, src)
        b = self.node(wid, upper, peer_id=self.a_peer)
        c = self.node(wid, rev)
        self.connect(wid, a, b)
        self.connect(wid, b, c)
        st = self.run_wf(wid)
        self.assertEqual(st["status"], "COMPLETED", st)
        jobs = self.jobs(st["id"])
        self.assertEqual((jobs[b]["status"], jobs[b]["exit_code"]), ("COMPLETED", 0))
        self.assertEqual(job_output(self.server, self.admin, jobs[b]["id"], "STDIN"), "hello fleet\n")
        self.assertEqual(job_output(self.server, self.admin, jobs[b]["id"]), "HELLO FLEET\n")
        # Its STDOUT fed the next job, back on the server.
        self.assertEqual(job_output(self.server, self.admin, jobs[c]["id"]), "TEELF OLLEH\n")
        err = job_output(self.server, self.admin, jobs[b]["id"], "STDERR")
        # Confined to a fresh directory under the agent's --workflow-dir, removed afterwards;
        # the agent's own environment does not reach the job.
        jobs_dir = os.path.realpath(self.key_file("fleet-a.example.com") + ".jobs")
        pwd = [l for l in err.splitlines() if l.startswith("pwd=")][0][4:]
        self.assertTrue(pwd.startswith(jobs_dir + "/job-%d-" % jobs[b]["id"]), err)
        self.assertFalse(os.path.exists(pwd))
        self.assertIn("canary=none job=%d path=/usr/local/bin:/usr/bin:/bin" % jobs[b]["id"], err)
        # The job was a task pinned to the agent's node, visible as such.
        [t] = self.fleet_tasks()
        self.assertEqual((t["status"], t["device_id"]), ("success", self.a_dev), t)
        self.assertEqual(t["metadata"], {"workflow_id": wid, "execution_id": st["id"], "job_id": jobs[b]["id"]})
        # Operators cannot retry it by hand, nor submit one.
        r = self.req("POST", "/api/v1/tasks/%s/retry" % t["task_id"])
        self.assertEqual(r.status, 409, r)
        r = self.req("POST", "/api/v1/tasks", {"task_type": "workflow_job", "payload": {"kind": "standalone"}})
        self.assertEqual(r.status, 400, r)
        self.assertIn("created by workflow executions", json.dumps(r.json()))

    def test_agent_without_opt_in_and_unknown_peers(self):
        cat = self.script("cat", "#!/bin/sh\ncat\n")
        wid = self.workflow()
        n = self.node(wid, cat, peer_id=self.b_peer)
        st = self.failed_with(wid, "node %d: fleet node fleet-b.example.com (peer %s) has not opted in to workflow "
                                   "jobs (lucidctl agent --allow-workflow-jobs)" % (n, self.b_peer))
        self.assertEqual(self.jobs(st["id"]), {})  # refused before any job
        self.assertEqual(self.fleet_tasks(), [])
        # A peer id that is no fleet node (a valid one: a fresh key's).
        wid = self.workflow()
        stranger = "12D3KooWGzBqgwv6ZGfU5GGFGjxwsLg8ZCnVFD9H4amDXmHF6fCf"
        self.node(wid, cat, peer_id=stranger)
        self.failed_with(wid, "peer %s is neither this server nor an active fleet node" % stranger)
        # A blacklisted fleet node gets no job, opted in or not.
        r = self.req("POST", "/api/blacklist", {"peer_id": self.a_peer, "reason": "test"})
        self.assertEqual(r.status, 201, r)
        wid = self.workflow()
        self.node(wid, cat, peer_id=self.a_peer)
        self.failed_with(wid, "peer %s is blacklisted" % self.a_peer)

    def test_job_failures_on_the_agent(self):
        cases = [
            ("#!/bin/sh\necho partial\nexit 3\n", {}, "exited with status 3"),
            ("#!/bin/sh\nsleep 30\n", {"timeout": 1}, "timed out after 1 s"),
            ("#!/bin/sh\nhead -c 200000 /dev/zero\n", {}, "output exceeds 131072 bytes"),
        ]
        for i, (text, config, error) in enumerate(cases):
            with self.subTest(error=error):
                sid = self.script("f%d" % i, text)
                wid = self.workflow()
                n = self.node(wid, sid, peer_id=self.a_peer, config=config)
                t0 = time.time()
                st = self.failed_with(wid, error)
                self.assertLess(time.time() - t0, 25)
                job = self.jobs(st["id"])[n]
                self.assertEqual(job["status"], "FAILED")
                self.assertIn(error, job["error"])
                if i == 0:
                    self.assertEqual(job["exit_code"], 3)
                    self.assertEqual(job_output(self.server, self.admin, job["id"]), "partial\n")
        # A program that is not on the agent's machine (gone after the service was made).
        path = write_script(self.server, "bin/gone", "#!/bin/sh\ntrue\n")
        sid = standalone(self.server, self.admin, "gone", path)
        os.unlink(os.path.join(data_dir(self.server), path))
        wid = self.workflow()
        self.node(wid, sid, peer_id=self.a_peer)
        self.failed_with(wid, "on this node")

    def test_bounds_and_config_errors(self):
        big = self.script("big", "#!/bin/sh\nhead -c 200000 /dev/zero | tr '\\0' x\n")
        cat = self.script("cat2", "#!/bin/sh\ncat\n")
        wid = self.workflow()
        a = self.node(wid, big)
        b = self.node(wid, cat, peer_id=self.a_peer)
        self.connect(wid, a, b)
        st = self.failed_with(wid, "its STDIN of 200000 bytes exceeds the 131072 bytes a job on a fleet node accepts")
        self.assertEqual(self.jobs(st["id"])[b]["status"], "FAILED")
        self.assertEqual(self.fleet_tasks(), [])  # never sent
        for bad in [{"retry_count": -1}, {"retry_count": 11}, {"retry_count": "1"}]:
            with self.subTest(config=bad):
                wid = self.workflow()
                n = self.node(wid, cat, peer_id=self.a_peer, config=bad)
                self.failed_with(wid, "node %d: config.retry_count must be an integer 0..10" % n)

    def test_other_node_cannot_touch_the_job(self):
        sid = self.script("slow", "#!/bin/sh\nsleep 3\necho done\n")
        wid = self.workflow()
        self.node(wid, sid, peer_id=self.a_peer)
        exec_id = self.execute(wid)
        t = self.wait_task_status({"running"})
        # fleet-b's key: the agent protocol refuses another node's task, the
        # task API refuses node keys altogether.
        with open(self.key_file("fleet-b.example.com")) as f:
            b_key = f.read().strip()
        hdr = {"X-API-KEY": b_key}
        for path, body in [("/start", {}), ("/progress", {"progress": 50}),
                           ("/result", {"status": "completed", "result": {"stdout": "", "stderr": "", "exit_code": 0},
                                        "duration_ms": 1})]:
            with self.subTest(path=path):
                r = self.server.request("POST", "/api/v1/agent/tasks/%s%s" % (t["task_id"], path), body, headers=hdr)
                self.assertEqual(r.status, 409, r)
        r = self.server.request("GET", "/api/v1/tasks/%s" % t["task_id"], headers=hdr)
        self.assertIn(r.status, (401, 403), r)
        # Its work poll never carries it.
        r = self.server.request("GET", "/api/v1/agent/work", headers=hdr)
        self.assertEqual(r.status, 200, r)
        self.assertNotIn(t["task_id"], r.body.decode())
        st = wait_execution(self.server, self.admin, exec_id)
        self.assertEqual(st["status"], "COMPLETED", st)
        jobs = list(self.jobs(exec_id).values())
        self.assertEqual(job_output(self.server, self.admin, jobs[0]["id"]), "done\n")


class TestLostAgent(FleetCase):
    def kill_mid_job(self, retry_count):
        sid = self.script("long", "#!/bin/sh\necho \"$$\" > \"%s/long.pid\"\nsleep 4\necho finished\n" % self.server.dir)
        wid = self.workflow()
        n = self.node(wid, sid, peer_id=self.a_peer, config={"timeout": 3600, "retry_count": retry_count})
        exec_id = self.execute(wid)
        self.wait_task_status({"running"})
        pid_file = os.path.join(self.server.dir, "long.pid")
        deadline = time.time() + 10
        while not os.path.exists(pid_file) and time.time() < deadline:
            time.sleep(0.05)
        with open(pid_file) as f:
            job_pid = int(f.read())
        self.a.proc.kill()
        self.a.proc.wait()
        # The job dies with its agent (PR_SET_PDEATHSIG), not left running.
        deadline = time.time() + 5
        while job_pid in proc_table() and time.time() < deadline:
            time.sleep(0.05)
        self.assertNotIn(job_pid, proc_table())
        # The node goes silent: move the clock past the heartbeat timeout.
        self.server.advance_clock(600, self.admin)
        return wid, n, exec_id

    def test_killed_agent_fails_the_job_without_retries(self):
        wid, n, exec_id = self.kill_mid_job(0)
        st = wait_execution(self.server, self.admin, exec_id, timeout=40)
        self.assertEqual(st["status"], "FAILED", st)
        self.assertIn("device went offline (no heartbeat); retries exhausted (0)", st["error"])
        self.assertEqual(self.jobs(exec_id)[n]["status"], "FAILED")

    def test_killed_agent_runs_the_job_again_when_it_returns(self):
        wid, n, exec_id = self.kill_mid_job(1)
        t = self.wait_task_status({"queued"}, timeout=40)
        self.assertIn("its node is offline", t.get("status_reason", "") + json.dumps(t))
        self.assertEqual(self.req("GET", "/api/workflow-executions/%d/status" % exec_id).json()["status"], "RUNNING")
        # The same node comes back (its key file kept): the job runs there again.
        self.a, _, _ = self.start_agent("fleet-a.example.com", "--allow-workflow-jobs", join=False)
        st = wait_execution(self.server, self.admin, exec_id, timeout=40)
        self.assertEqual(st["status"], "COMPLETED", st)
        self.assertEqual(job_output(self.server, self.admin, self.jobs(exec_id)[n]["id"]), "finished\n")
        [t] = self.fleet_tasks()
        self.assertEqual((t["status"], t["retries"], t["attempt"], t["device_id"]), ("success", 1, 2, self.a_dev), t)


if __name__ == "__main__":
    unittest.main()
