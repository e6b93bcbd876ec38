"""cluster-devices-tasks.md tasks: submit, list, get, status, result, cancel,
retry, statistics, types; placement, priorities, retries on stale devices,
restart; and the agent protocol (docs/agent-protocol.md) with simulated agents."""
import threading
import time
import unittest

from clustertest import RELAXED, Agent, ClusterTestCase, caps


class Submit(ClusterTestCase):
    def test_submit_and_read_back(self):
        r = self.api("POST", "/api/v1/tasks", {
            "task_type": "echo", "payload": {"message": "Hello World"}, "priority": "high",
            "requirements": {"min_cpu_cores": 2, "min_memory_gb": 4, "required_platform": "linux",
                             "timeout_seconds": 30, "max_retries": 2, "required_tags": ["a"],
                             "gpu_required": False, "internet_required": True, "min_storage_gb": 1.5,
                             "required_role": "compute"},
            "metadata": {"created_by": "api_user"}})
        data = self.ok(r, 201)
        self.assertEqual(data["task"]["status"], "queued")
        self.assertEqual(data["task"]["priority"], "high")
        t = self.task(data["task_id"])
        self.assertEqual(t["payload"], {"message": "Hello World"})
        self.assertEqual(t["metadata"], {"created_by": "api_user"})
        rq = t["requirements"]
        self.assertEqual((rq["min_cpu_cores"], rq["min_memory_gb"], rq["required_platform"], rq["timeout_seconds"],
                          rq["max_retries"], rq["required_tags"], rq["internet_required"], rq["required_role"]),
                         (2, 4.0, "linux", 30, 2, ["a"], True, "compute"))
        s = self.ok(self.api("GET", "/api/v1/tasks/%s/status" % data["task_id"]))
        self.assertEqual(s["status"], "queued")
        self.assertIn("no device", s["status_reason"])  # no device at all yet
        res = self.ok(self.api("GET", "/api/v1/tasks/%s/result" % data["task_id"]))
        self.assertIsNone(res["result_data"])

    def test_submit_validation(self):
        cases = [
            ({}, "task_type"),
            ({"task_type": "format-disk"}, "task_type"),
            ({"task_type": 5}, "task_type"),
            ({"task_type": "echo", "priority": "asap"}, "priority"),
            ({"task_type": "echo", "metadata": [1]}, "metadata"),
            ({"task_type": "echo", "requirements": []}, "requirements"),
            ({"task_type": "echo", "requirements": {"min_cpu_cores": 0}}, "requirements.min_cpu_cores"),
            ({"task_type": "echo", "requirements": {"min_cpu_cores": 1.5}}, "requirements.min_cpu_cores"),
            ({"task_type": "echo", "requirements": {"min_memory_gb": -1}}, "requirements.min_memory_gb"),
            ({"task_type": "echo", "requirements": {"min_storage_gb": "x"}}, "requirements.min_storage_gb"),
            ({"task_type": "echo", "requirements": {"required_platform": "Linux OS"}}, "requirements.required_platform"),
            ({"task_type": "echo", "requirements": {"required_role": 3}}, "requirements.required_role"),
            ({"task_type": "echo", "requirements": {"required_tags": "a"}}, "requirements.required_tags"),
            ({"task_type": "echo", "requirements": {"gpu_required": "yes"}}, "requirements.gpu_required"),
            ({"task_type": "echo", "requirements": {"internet_required": 1}}, "requirements.internet_required"),
            ({"task_type": "echo", "requirements": {"timeout_seconds": 0}}, "requirements.timeout_seconds"),
            ({"task_type": "echo", "requirements": {"max_retries": 101}}, "requirements.max_retries"),
            ({"task_type": "echo", "requirements": {"cpu": 1}}, "requirements.cpu"),
            ({"task_type": "echo", "colour": 1}, "colour"),
        ]
        for body, field in cases:
            with self.subTest(body=body):
                self.err(self.api("POST", "/api/v1/tasks", body), 400, "VALIDATION_ERROR", field)
        r = self.server.request("POST", "/api/v1/tasks", body="{nope", token=self.admin)
        self.err(r, 400, "VALIDATION_ERROR", "body")
        big = {"task_type": "echo", "payload": {"x": "a" * 300000}}
        self.err(self.api("POST", "/api/v1/tasks", big), 400, "VALIDATION_ERROR", "payload")

    def test_unknown_task_everywhere(self):
        for method, suffix in [("GET", ""), ("GET", "/status"), ("GET", "/result"), ("POST", "/cancel"),
                               ("POST", "/retry")]:
            with self.subTest(suffix=suffix):
                self.err(self.api(method, "/api/v1/tasks/no-such-task" + suffix), 404, "TASK_NOT_FOUND")


class Flow(ClusterTestCase):
    def collect(self, agent, n, wait=3):
        got, deadline = [], time.time() + wait
        while len(got) < n and time.time() < deadline:
            got += agent.work(wait=1)["tasks"]
        return {t["task_id"] for t in got}

    def test_placement_follows_requirements(self):
        small = Agent(self.server, self.admin, "small")
        small.register(platform="linux", tags=["place"], capabilities=caps(cpu=2, mem=2), max_concurrent=4)
        big = Agent(self.server, self.admin, "big")
        big.register(platform="linux", role="compute", tags=["fast", "place"],
                     capabilities=caps(cpu=16, mem=64, gpu=True), max_concurrent=4)
        need_big = [self.submit(requirements={"min_cpu_cores": 8, "required_tags": ["place"]}),
                    self.submit(requirements={"gpu_required": True, "required_tags": ["place"]}),
                    self.submit(requirements={"required_role": "compute", "required_tags": ["place"]}),
                    self.submit(requirements={"required_tags": ["fast", "place"]}),
                    ]
        self.assertEqual(self.collect(big, 4), set(need_big))
        self.assertEqual(small.work(0)["tasks"], [])
        for tid in need_big:
            self.assertEqual(self.task(tid)["device_id"], big.device_id)
        # Spread by load: big is full (4/4), the plain tasks go to small.
        plain = [self.submit(requirements={"required_tags": ["place"]}) for _ in range(2)]
        self.assertEqual(self.collect(small, 2), set(plain))
        # Never runnable: stays queued, says why.
        never = self.submit(requirements={"required_platform": "windows"})
        time.sleep(0.3)
        s = self.ok(self.api("GET", "/api/v1/tasks/%s/status" % never))
        self.assertEqual(s["status"], "queued")
        self.assertIn("no device has platform 'windows'", s["status_reason"])
        # Task types: only devices that allow them.
        cmd = self.submit(task_type="command", payload={"cmd": "true"})
        time.sleep(0.3)
        self.assertIn("no device allows this task type", self.task(cmd)["status_reason"])
        types = {t["name"]: t for t in self.ok(self.api("GET", "/api/v1/tasks/types"))["task_types"]}
        self.assertGreaterEqual(types["echo"]["online_devices"], 2)
        self.assertTrue(types["echo"]["available"])
        self.assertEqual(types["command"]["devices"], 0)
        for tid in need_big + plain + [never, cmd]:
            self.ok(self.api("POST", "/api/v1/tasks/%s/cancel" % tid))

    def test_full_cycle_progress_result_idempotent(self):
        a = Agent(self.server, self.admin, "cycle")
        a.register(max_concurrent=1, types=["echo"])
        tid = self.submit(payload={"message": "Hello"})
        w = a.work(wait=3)
        self.assertEqual(w["tasks"][0], {"task_id": tid, "task_type": "echo", "payload": {"message": "Hello"},
                                         "timeout_seconds": 300, "attempt": 1})
        self.assertEqual(self.task(tid)["status"], "assigned")
        # Progress before start is a conflict.
        self.err(a.progress(tid, 10), 409, "CONFLICT")
        self.assertEqual(self.ok(a.start(tid))["status"], "running")
        self.assertEqual(self.ok(a.start(tid))["status"], "running")  # repeat is harmless
        self.assertEqual(self.ok(a.progress(tid, 40, "working")), {"cancel_requested": False})
        s = self.ok(self.api("GET", "/api/v1/tasks/%s/status" % tid))
        self.assertEqual((s["status"], s["progress"], s["progress_message"]), ("running", 40.0, "working"))
        self.err(a.progress(tid, 101), 400, "VALIDATION_ERROR", "progress")
        self.err(a.progress(tid, "x"), 400, "VALIDATION_ERROR", "progress")
        self.err(a.result(tid, status="done"), 400, "VALIDATION_ERROR", "status")
        self.err(a.result(tid, duration_ms=-1), 400, "VALIDATION_ERROR", "duration_ms")
        self.err(a.call("POST", "/api/v1/agent/tasks/%s/result" % tid, {"status": "completed"}), 400,
                 "VALIDATION_ERROR", "duration_ms")
        r1 = self.ok(a.result(tid, result={"echo": {"message": "Hello"}}, duration_ms=50, exit_code=0))
        r2 = self.ok(a.result(tid, status="failed", result={"other": 1}, duration_ms=99))
        self.assertEqual(r1, r2)
        res = self.ok(self.api("GET", "/api/v1/tasks/%s/result" % tid))
        self.assertEqual(res["status"], "success")
        self.assertEqual(res["result_data"], {"echo": {"message": "Hello"}})
        self.assertEqual(res["execution_time_seconds"], 0.05)
        self.assertEqual(res["worker_device_id"], a.device_id)
        self.assertIsNotNone(res["started_at"])
        self.assertIsNotNone(res["completed_at"])
        # Finished: cancel conflicts; retry conflicts (it succeeded).
        self.err(self.api("POST", "/api/v1/tasks/%s/cancel" % tid), 409, "CONFLICT")
        self.err(self.api("POST", "/api/v1/tasks/%s/retry" % tid), 409, "CONFLICT")
        # Another device cannot touch it.
        other = Agent(self.server, self.admin, "other")
        other.register()
        self.err(other.start(tid), 409, "CONFLICT")
        self.err(other.result(tid), 409, "CONFLICT")
        self.err(other.start("no-such"), 404, "TASK_NOT_FOUND")
        self.err(other.progress("no-such", 5), 404, "TASK_NOT_FOUND")
        self.err(other.result("no-such"), 404, "TASK_NOT_FOUND")

    def test_cancel_running_reaches_agent_and_retry(self):
        a = Agent(self.server, self.admin, "canceller")
        a.register(max_concurrent=1, types=["sleep"])
        tid = self.submit(task_type="sleep", payload={"seconds": 30})
        w = a.work(wait=3)
        self.assertEqual(w["tasks"][0]["task_id"], tid)
        self.ok(a.start(tid))
        got = {}

        def poll():
            got["w"] = a.work(wait=10)

        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.3)
        t0 = time.time()
        c = self.ok(self.api("POST", "/api/v1/tasks/%s/cancel" % tid))
        th.join()
        self.assertLess(time.time() - t0, 2)
        self.assertEqual(c["status"], "cancelled")
        self.assertTrue(c["cancel_requested"])
        self.assertEqual(got["w"]["cancel"], [tid])
        self.assertEqual(self.ok(a.progress(tid, 10)), {"cancel_requested": True})
        # The device's slot is held until the agent reports.
        other = self.submit(task_type="sleep", payload={"seconds": 1})
        self.assertEqual(a.work(0)["tasks"], [])
        self.ok(a.result(tid, status="cancelled", duration_ms=300))
        self.assertEqual(self.task(tid)["status"], "cancelled")
        self.assertEqual(a.work(wait=3)["tasks"][0]["task_id"], other)
        # Cancel of a queued task; retry of a cancelled one.
        q = self.submit(requirements={"required_platform": "plan9"})
        self.assertEqual(self.ok(self.api("POST", "/api/v1/tasks/%s/cancel" % q))["status"], "cancelled")
        r = self.ok(self.api("POST", "/api/v1/tasks/%s/retry" % q))
        self.assertEqual(r["status"], "queued")
        self.ok(self.api("POST", "/api/v1/tasks/%s/cancel" % q))
        self.ok(self.api("POST", "/api/v1/tasks/%s/cancel" % other))

    def test_priorities_fifo(self):
        order = [self.submit(priority=p, requirements={"required_tags": ["prio"]})
                 for p in ["low", "normal", "urgent", "normal", "high"]]
        a = Agent(self.server, self.admin, "prio")
        a.register(max_concurrent=1, tags=["prio"])
        seen = [a.run_one(wait=3)["task_id"] for _ in range(5)]
        self.assertEqual(seen, [order[2], order[4], order[1], order[3], order[0]])

    def test_list_filters_statistics(self):
        a = Agent(self.server, self.admin, "lister")
        a.register(max_concurrent=1, tags=["list"])
        tid = self.submit(task_type="system_info", requirements={"required_tags": ["list"]})
        a.run_one(wait=3)
        rows = self.ok(self.api("GET", "/api/v1/tasks?device_id=" + a.device_id))
        self.assertEqual([t["task_id"] for t in rows], [tid])
        rows = self.ok(self.api("GET", "/api/v1/tasks?task_type=system_info&status=success"))
        self.assertIn(tid, [t["task_id"] for t in rows])
        r = self.api("GET", "/api/v1/tasks?page=1&page_size=1")
        self.assertEqual(len(r.json()["data"]), 1)
        self.assertEqual(r.json()["pagination"]["page_size"], 1)
        self.assertEqual(self.ok(self.api("GET", "/api/v1/tasks?priority=urgent&task_type=system_info")), [])
        self.err(self.api("GET", "/api/v1/tasks?status=done"), 400, "VALIDATION_ERROR", "status")
        self.err(self.api("GET", "/api/v1/tasks?priority=now"), 400, "VALIDATION_ERROR", "priority")
        self.err(self.api("GET", "/api/v1/tasks?page=-1"), 400, "VALIDATION_ERROR", "page")
        s = self.ok(self.api("GET", "/api/v1/tasks/statistics"))
        self.assertGreaterEqual(s["by_status"]["success"], 1)
        self.assertGreaterEqual(s["by_type"]["system_info"], 1)
        self.assertIn("urgent", s["by_priority"])
        self.assertGreater(s["success_rate"], 0)


class AgentProtocol(ClusterTestCase):
    def test_device_report_validation(self):
        a = Agent(self.server, self.admin, "validate")
        good = {"platform": "linux", "capabilities": caps(), "allowed_task_types": ["echo"], "max_concurrent": 1}

        def bad(field, **change):
            body = dict(good)
            for k, v in change.items():
                if v is None:
                    body.pop(k)
                else:
                    body[k] = v
            self.err(a.call("PUT", "/api/v1/agent/device", body), 400, "VALIDATION_ERROR", field)

        bad("platform", platform=None)
        bad("platform", platform="Linux!")
        bad("capabilities", capabilities=None)
        bad("capabilities.cpu_count", capabilities=dict(caps(), cpu_count=0))
        bad("capabilities.memory_total_gb", capabilities=dict(caps(), memory_total_gb="8"))
        bad("capabilities.has_gpu", capabilities=dict(caps(), has_gpu=1))
        bad("allowed_task_types", allowed_task_types=[])
        bad("allowed_task_types", allowed_task_types=["rm"])
        bad("max_concurrent", max_concurrent=0)
        bad("tags", tags=["ok", "not ok"])
        self.err(self.server.request("PUT", "/api/v1/agent/device", good), 401, "UNAUTHORIZED")
        self.err(self.server.request("GET", "/api/v1/agent/work", headers={"X-API-KEY": "lnk_wrong"}), 401,
                 "UNAUTHORIZED")
        self.err(a.call("GET", "/api/v1/agent/work?wait=31"), 400, "VALIDATION_ERROR", "wait")

    def test_long_poll_holds_no_worker(self):
        # One worker thread: four agents long-polling must not block others.
        a = Agent(self.server, self.admin, "poller")
        a.register()
        threads = [threading.Thread(target=a.work, kwargs={"wait": 3}) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        t0 = time.time()
        self.ok(self.api("GET", "/api/v1/tasks/statistics"))
        self.assertLess(time.time() - t0, 1.0)
        t0 = time.time()
        w = a.work(wait=1)
        self.assertGreaterEqual(time.time() - t0, 0.9)
        self.assertEqual(w, {"tasks": [], "cancel": [], "pings": []})
        for t in threads:
            t.join()


class AgentProtocolOneWorker(AgentProtocol):
    server_args = RELAXED + ["--workers", "1"]

    def test_device_report_validation(self):
        pass  # covered above; this class re-runs the long-poll test with one worker


class ResultWithNextWork(ClusterTestCase):
    """POST .../result?next=1 (issue 19): the answer also carries the device's
    next work, placed at once into the freed slot; without the parameter the
    answer and delivery are as before (older agents)."""

    def result_next(self, agent, tid, next_value="1", **kw):
        body = {"status": "completed", "result": {"echo": tid}, "duration_ms": 3}
        body.update(kw)
        return agent.call("POST", "/api/v1/agent/tasks/%s/result?next=%s" % (tid, next_value), body)

    def test_result_answer_carries_the_next_task_not_the_long_poll(self):
        a = Agent(self.server, self.admin, "next-a")
        a.register(max_concurrent=1, tags=["next-a"])
        first = self.submit(payload={"n": 1}, requirements={"required_tags": ["next-a"]})
        second = self.submit(payload={"n": 2}, requirements={"required_tags": ["next-a"]})
        w = a.work(wait=3)
        self.assertEqual([t["task_id"] for t in w["tasks"]], [first])  # one slot
        self.ok(a.start(first))
        # The agent's long-poll is waiting while the result goes out: the next
        # task must come back in the result's answer, not to the poll.
        polled = {}
        poll = threading.Thread(target=lambda: polled.update(a.work(wait=2)))
        poll.start()
        time.sleep(0.3)
        data = self.ok(self.result_next(a, first))
        poll.join()
        self.assertEqual(data["task_id"], first)
        self.assertEqual(data["status"], "success")
        self.assertEqual(data["result_data"], {"echo": first})
        self.assertEqual(data["worker_device_id"], a.device_id)
        self.assertEqual(data["next_work"], {
            "tasks": [{"task_id": second, "task_type": "echo", "payload": {"n": 2}, "timeout_seconds": 300,
                       "attempt": 1}],
            "cancel": [], "pings": []})
        self.assertEqual(polled, {"tasks": [], "cancel": [], "pings": []})
        self.assertEqual(self.task(second)["status"], "assigned")
        self.assertEqual(self.task(second)["device_id"], a.device_id)
        # Delivered once: a poll does not hand it out again.
        self.assertEqual(a.work(0)["tasks"], [])
        self.ok(a.start(second))
        # Nothing queued: next_work is empty; a repeated report answers the
        # stored result (unchanged) with the work waiting now.
        last = self.ok(self.result_next(a, second))
        self.assertEqual(last["next_work"], {"tasks": [], "cancel": [], "pings": []})
        again = self.ok(self.result_next(a, second, status="failed"))
        self.assertEqual(again["status"], "success")
        self.assertEqual(again["next_work"], {"tasks": [], "cancel": [], "pings": []})

    def test_without_next_the_answer_is_unchanged(self):
        a = Agent(self.server, self.admin, "next-old")
        a.register(max_concurrent=1, tags=["next-old"])
        first = self.submit(requirements={"required_tags": ["next-old"]})
        second = self.submit(requirements={"required_tags": ["next-old"]})
        self.assertEqual(a.work(wait=3)["tasks"][0]["task_id"], first)
        self.ok(a.start(first))
        data = self.ok(a.result(first, result={"echo": 1}))
        self.assertNotIn("next_work", data)
        data0 = self.ok(self.result_next(a, first, next_value="0"))  # next=0: as without it
        self.assertNotIn("next_work", data0)
        self.assertEqual(a.work(wait=3)["tasks"][0]["task_id"], second)  # the poll delivers it
        self.ok(a.start(second))
        self.ok(a.result(second))

    def test_bad_next_is_refused_before_anything_is_stored(self):
        a = Agent(self.server, self.admin, "next-bad")
        a.register(max_concurrent=1, tags=["next-bad"])
        tid = self.submit(requirements={"required_tags": ["next-bad"]})
        self.assertEqual(a.work(wait=3)["tasks"][0]["task_id"], tid)
        self.ok(a.start(tid))
        for bad in ("2", "-1", "yes", "", "1" * 40):
            self.err(self.result_next(a, tid, next_value=bad), 400, "VALIDATION_ERROR", "next")
        self.assertEqual(self.task(tid)["status"], "running")  # nothing stored
        # Another device's task and an unknown task: the usual errors.
        other = Agent(self.server, self.admin, "next-other")
        other.register(max_concurrent=1, tags=["next-other"])
        self.err(self.result_next(other, tid), 409, "CONFLICT")
        self.err(self.result_next(other, "no-such"), 404, "TASK_NOT_FOUND")
        self.err(self.server.request("POST", "/api/v1/agent/tasks/%s/result?next=1" % tid,
                                     {"status": "completed", "duration_ms": 1}), 401, "UNAUTHORIZED")
        self.assertEqual(self.task(tid)["status"], "running")
        self.ok(self.result_next(a, tid))
        self.assertEqual(self.task(tid)["status"], "success")


class Retries(ClusterTestCase):
    def test_stale_device_requeues_then_fails(self):
        a = Agent(self.server, self.admin, "stale-a")
        a.register(max_concurrent=1, tags=["retry"])
        tid = self.submit(requirements={"required_tags": ["retry"], "max_retries": 1})
        self.assertEqual(a.work(wait=3)["tasks"][0]["task_id"], tid)
        self.ok(a.start(tid))
        self.server.advance_clock(200, self.admin)  # > 180 s offline threshold
        deadline = time.time() + 5
        while time.time() < deadline and self.task(tid)["status"] != "queued":
            time.sleep(0.1)
        t = self.task(tid)
        self.assertEqual((t["status"], t["retries"]), ("queued", 1))
        self.assertIn("device went offline", t["status_reason"])
        d = self.ok(self.api("GET", "/api/v1/devices/" + a.device_id))
        self.assertEqual(d["status"], "offline")
        b = Agent(self.server, self.admin, "stale-b")
        b.register(max_concurrent=1, tags=["retry"])
        w = b.work(wait=3)
        self.assertEqual((w["tasks"][0]["task_id"], w["tasks"][0]["attempt"]), (tid, 2))
        self.err(a.result(tid), 409, "CONFLICT")  # the old device came back too late
        self.server.advance_clock(200, self.admin)
        deadline = time.time() + 5
        while time.time() < deadline and self.task(tid)["status"] != "failed":
            time.sleep(0.1)
        t = self.task(tid)
        self.assertEqual(t["status"], "failed")
        self.assertIn("retries exhausted", t["error"])
        r = self.ok(self.api("POST", "/api/v1/tasks/%s/retry" % tid))
        self.assertEqual(r["status"], "queued")
        b.register(max_concurrent=1, tags=["retry"])  # back online
        b.run_one(wait=3)
        self.assertEqual(self.task(tid)["status"], "success")

    def test_silent_running_task_times_out_and_is_killed(self):
        a = Agent(self.server, self.admin, "silent")
        a.register(max_concurrent=1, tags=["silent"])
        tid = self.submit(requirements={"required_tags": ["silent"], "timeout_seconds": 5})
        self.assertEqual(a.work(wait=3)["tasks"][0]["timeout_seconds"], 5)
        self.ok(a.start(tid))
        self.server.advance_clock(30, self.admin)  # past timeout + grace, device still online
        w = a.work(wait=5)
        self.assertEqual(w["cancel"], [tid])
        t = self.task(tid)
        self.assertEqual(t["status"], "timeout")
        # The agent's late report does not change the outcome.
        self.ok(a.result(tid, status="completed", result={"late": True}))
        self.assertEqual(self.task(tid)["status"], "timeout")

    def test_body_too_large_in_envelope(self):
        r = self.server.request("POST", "/api/v1/tasks", body=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                                token=self.admin, headers={"Content-Type": "application/json"})
        self.err(r, 413, "VALIDATION_ERROR")

    def test_queued_tasks_survive_restart(self):
        ids = [self.submit(requirements={"required_tags": ["restart"]}) for _ in range(3)]
        self.server.stop()
        self.server.start()
        for tid in ids:
            self.assertEqual(self.task(tid)["status"], "queued")
        a = Agent(self.server, self.admin, "after-restart")
        a.register(max_concurrent=3, tags=["restart"])
        w = a.work(wait=3)
        self.assertEqual({t["task_id"] for t in w["tasks"]}, set(ids))


if __name__ == "__main__":
    unittest.main()
