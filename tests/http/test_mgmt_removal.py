"""Issue 15, node lifecycle for operators (docs/decisions.md "Issue 15: node
removal, cordon, drain"): DELETE /api/v1/nodes/{node_id}, POST .../cordon,
.../uncordon and .../drain on the node-management surface, the node object's
"schedulable" and "drain", and the scheduler honouring cordon, drain and
maintenance. Every error path: 401, 403 (viewer, node principal), 404, 400."""
import time
import unittest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clustertest import RELAXED, Agent
from lucidtest import ServerTestCase, ed25519_login
from test_mgmt_nodes import MgmtAssertions, TIME_RE, mgmt_node_of, parse_time
from test_network_auth import register_node_key

UNKNOWN = "node_0123456789abcdef"


class NodeRemovalCordonDrain(MgmtAssertions, ServerTestCase):
    server_args = RELAXED

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.viewer = cls.server.token(role="viewer", sub="removal-viewer")
        cls.operator = cls.server.token(role="node_operator", sub="removal-operator")
        key = Ed25519PrivateKey.generate()
        register_node_key(cls.server, cls.admin, "rm-principal", key)
        r = ed25519_login(cls.server, key)
        assert r.status == 200, r
        cls.node_token = r.json()["token"]

    # ---- helpers ----

    # Tests share one server, and agents of earlier tests stay online: each
    # test's agents carry a tag of their own (the test's name) and its tasks
    # require it, so work lands only where the test means it to.
    def tag(self):
        return self._testMethodName[5:40]

    def agent(self, hostname, max_concurrent=2):
        a = Agent(self.server, self.admin, hostname)
        a.register(max_concurrent=max_concurrent, tags=[self.tag()])
        return a

    def uid(self, agent):
        return agent.device_id  # a device's id is its node's uid

    def delete(self, path, token=None):
        return self.server.request("DELETE", path, token=token or self.admin)

    def submit(self, **requirements):
        body = {"task_type": "echo", "payload": {"message": "hi"}}
        body["requirements"] = dict(requirements, required_tags=[self.tag()])
        r = self.server.request("POST", "/api/v1/tasks", body, token=self.admin)
        self.assertEqual(r.status, 201, r)
        return r.json()["data"]["task_id"]

    def task(self, task_id):
        r = self.server.request("GET", "/api/v1/tasks/" + task_id, token=self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json()["data"]

    def wait_task(self, task_id, pred, timeout=8.0):
        deadline = time.time() + timeout
        while True:
            t = self.task(task_id)
            if pred(t):
                return t
            if time.time() > deadline:
                self.fail("task never reached the state: %r" % t)
            time.sleep(0.1)

    def assertNodeObject(self, n, schedulable, draining=False):
        self.assertIs(n["schedulable"], schedulable, n)
        if not draining:
            self.assertIsNone(n["drain"], n)
        else:
            self.assertEqual(set(n["drain"]), {"deadline", "running_tasks", "complete"}, n)
            self.assertRegex(n["drain"]["deadline"], TIME_RE)
            self.assertIsInstance(n["drain"]["running_tasks"], int, n)
            self.assertIsInstance(n["drain"]["complete"], bool, n)

    # ---- the node object ----

    def test_node_object_has_schedulable_and_drain_in_get_and_list(self):
        a = self.agent("rm-view.example.com")
        n = self.node(self.uid(a))
        self.assertNodeObject(n, True)
        listed = mgmt_node_of(self.server, self.admin, "rm-view.example.com")
        self.assertNodeObject(listed, True)

    # ---- cordon / uncordon ----

    def test_task_submitted_after_cordon_never_lands_on_the_node(self):
        a = self.agent("rm-cordon.example.com")
        uid = self.uid(a)
        r = self.post("/api/v1/nodes/%s/cordon" % uid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["node_id"], uid)
        self.assertNodeObject(r.json(), False)
        # Cordoning twice is fine.
        self.assertEqual(self.post("/api/v1/nodes/%s/cordon" % uid).status, 200)
        tid = self.submit(required_platform="linux")
        for _ in range(3):
            self.assertEqual(a.work(wait=0)["tasks"], [])
            time.sleep(0.2)
        t = self.task(tid)
        self.assertEqual(t["status"], "queued", t)
        # Uncordon: the node takes it.
        r = self.post("/api/v1/nodes/%s/uncordon" % uid)
        self.assertEqual(r.status, 200, r)
        self.assertNodeObject(r.json(), True)
        w = a.work(wait=5)
        self.assertEqual([x["task_id"] for x in w["tasks"]], [tid], w)
        self.assertEqual(a.start(tid).status, 200)
        self.assertEqual(a.result(tid, result={"ok": True}).status, 200)

    def test_maintenance_means_no_new_work(self):
        a = self.agent("rm-maint.example.com")
        uid = self.uid(a)
        self.assertEqual(self.server.report(a.key).status, 200)  # starting -> active
        r = self.put("/api/v1/nodes/" + uid, {"status": "maintenance"})
        self.assertEqual(r.status, 200, r)
        self.assertNodeObject(r.json(), False)
        tid = self.submit()
        time.sleep(0.5)
        self.assertEqual(a.work(wait=0)["tasks"], [])
        self.assertEqual(self.task(tid)["status"], "queued")
        r = self.put("/api/v1/nodes/" + uid, {"status": "inactive"})
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json()["schedulable"], True, r)
        w = a.work(wait=5)
        self.assertEqual([x["task_id"] for x in w["tasks"]], [tid], w)
        a.start(tid)
        a.result(tid, result={})

    # ---- drain ----

    def test_drain_lets_a_running_task_finish_then_is_complete(self):
        a = self.agent("rm-drain-ok.example.com")
        uid = self.uid(a)
        tid = self.submit()
        w = a.work(wait=5)
        self.assertEqual([x["task_id"] for x in w["tasks"]], [tid], w)
        self.assertEqual(a.start(tid).status, 200)
        before = parse_time(self.server.advance_clock(0, self.admin)["now"])
        r = self.post("/api/v1/nodes/%s/drain" % uid, {"deadline_seconds": 600})
        self.assertEqual(r.status, 200, r)
        n = r.json()
        self.assertNodeObject(n, False, draining=True)
        self.assertEqual(n["drain"]["running_tasks"], 1, n)
        self.assertIs(n["drain"]["complete"], False, n)
        deadline = parse_time(n["drain"]["deadline"])
        self.assertTrue(599 <= (deadline - before).total_seconds() <= 610, (before, deadline))
        # A new task does not land here while draining.
        other = self.submit()
        self.assertEqual(a.work(wait=0)["tasks"], [])
        self.assertEqual(a.result(tid, result={"done": 1}).status, 200)
        n = self.node(uid)
        self.assertEqual(n["drain"]["running_tasks"], 0, n)
        self.assertIs(n["drain"]["complete"], True, n)
        self.assertEqual(self.task(tid)["status"], "success")
        self.assertEqual(self.task(other)["status"], "queued")
        # Uncordon ends the drain; the queued task comes.
        n = self.post("/api/v1/nodes/%s/uncordon" % uid).json()
        self.assertNodeObject(n, True)
        w = a.work(wait=5)
        self.assertEqual([x["task_id"] for x in w["tasks"]], [other], w)
        a.start(other)
        a.result(other, result={})

    def test_drain_default_deadline_is_300_seconds_and_body_is_optional(self):
        a = self.agent("rm-drain-default.example.com")
        uid = self.uid(a)
        before = parse_time(self.server.advance_clock(0, self.admin)["now"])
        for raw in (None, ""):
            r = self.server.request("POST", "/api/v1/nodes/%s/drain" % uid, body=raw, token=self.admin)
            self.assertEqual(r.status, 200, r)
            d = parse_time(r.json()["drain"]["deadline"])
            self.assertTrue(299 <= (d - before).total_seconds() <= 310, (before, d))
        r = self.post("/api/v1/nodes/%s/drain" % uid, {})
        self.assertEqual(r.status, 200, r)
        self.post("/api/v1/nodes/%s/uncordon" % uid)

    def test_drain_deadline_requeues_what_still_runs(self):
        a = self.agent("rm-drain-late.example.com")
        uid = self.uid(a)
        tid = self.submit(max_retries=0)
        w = a.work(wait=5)
        self.assertEqual([x["task_id"] for x in w["tasks"]], [tid], w)
        self.assertEqual(a.start(tid).status, 200)
        r = self.post("/api/v1/nodes/%s/drain" % uid, {"deadline_seconds": 5})
        self.assertEqual(r.status, 200, r)
        self.server.advance_clock(6, self.admin)
        a.work(wait=0)  # a heartbeat: the node is alive, only past its drain deadline
        t = self.wait_task(tid, lambda t: t["status"] == "queued")
        self.assertIn("drain deadline", t.get("status_reason", "") + str(t), t)
        # The agent is told to stop it, and its late result is refused.
        w = a.work(wait=2)
        self.assertIn(tid, w.get("cancel", []), w)
        self.assertNotEqual(a.result(tid, result={}).status, 200)
        n = self.node(uid)
        self.assertEqual(n["drain"]["running_tasks"], 0, n)
        self.assertIs(n["drain"]["complete"], True, n)
        # Another node runs it.
        b = self.agent("rm-drain-late-b.example.com")
        got = b.work(wait=5)
        self.assertEqual([x["task_id"] for x in got["tasks"]], [tid], got)
        b.start(tid)
        b.result(tid, result={})
        self.post("/api/v1/nodes/%s/uncordon" % uid)

    def test_drain_bad_deadline_is_400(self):
        a = self.agent("rm-drain-bad.example.com")
        uid = self.uid(a)
        for bad in (0, -1, 86401, 10**30, "60", 1.5, True, None and 0):
            if bad is None:
                continue
            r = self.post("/api/v1/nodes/%s/drain" % uid, {"deadline_seconds": bad})
            self.assertMgmtError(r, 400, "LUCID_ERR_1001", field="deadline_seconds")
        r = self.post("/api/v1/nodes/%s/drain" % uid, {"deadline": 60})
        self.assertMgmtError(r, 400, "LUCID_ERR_1001", field=self.ANY)
        r = self.post("/api/v1/nodes/%s/drain" % uid, raw="[1]")
        self.assertMgmtError(r, 400, "LUCID_ERR_1001", field=self.ANY)
        r = self.post("/api/v1/nodes/%s/drain" % uid, raw="{")
        self.assertMgmtError(r, 400, "LUCID_ERR_1009", field=self.ANY)
        # A refused drain left the node as it was.
        self.assertNodeObject(self.node(uid), True)
        r = self.post("/api/v1/nodes/%s/drain" % uid, {"deadline_seconds": 86400})
        self.assertEqual(r.status, 200, r)
        self.post("/api/v1/nodes/%s/uncordon" % uid)

    # ---- removal ----

    def test_remove_requeues_revokes_key_and_frees_hostname(self):
        host = "rm-gone.example.com"
        a = self.agent(host, max_concurrent=2)
        uid = self.uid(a)
        t1, t2 = self.submit(max_retries=0), self.submit(max_retries=0)
        w = a.work(wait=5)
        ids = [x["task_id"] for x in w["tasks"]]
        if len(ids) < 2:
            ids += [x["task_id"] for x in a.work(wait=5)["tasks"]]
        self.assertEqual(sorted(ids), sorted([t1, t2]))
        self.assertEqual(a.start(t1).status, 200)
        r = self.delete("/api/v1/nodes/" + uid)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"", r)
        # Gone: 404 on the management surface and on the registration one.
        self.assertMgmtError(self.get("/api/v1/nodes/" + uid), 404, "LUCID_ERR_5001")
        self.assertEqual(self.server.request("GET", "/api/v1/nodes/%d" % a.node_id, token=self.admin).status, 404)
        # Idempotence: a second DELETE is 404.
        self.assertMgmtError(self.delete("/api/v1/nodes/" + uid), 404, "LUCID_ERR_5001")
        # Its key is refused everywhere.
        self.assertEqual(a.call("GET", "/api/v1/agent/work?wait=0").status, 401)
        self.assertEqual(self.server.report(a.key).status, 401)
        # Its tasks went back to the queue, retries untouched.
        for tid in (t1, t2):
            t = self.task(tid)
            self.assertEqual(t["status"], "queued", t)
        # Another node takes them.
        b = self.agent("rm-gone-b.example.com", max_concurrent=2)
        got = [x["task_id"] for x in b.work(wait=5)["tasks"]]
        if len(got) < 2:
            got += [x["task_id"] for x in b.work(wait=5)["tasks"]]
        self.assertEqual(sorted(got), sorted([t1, t2]))
        for tid in got:
            b.start(tid)
            b.result(tid, result={})
        # The hostname joins again: a new pending request, not "ACTIVE".
        j = self.server.join(host)
        self.assertNotEqual(j["registration_code"], "ACTIVE", j)
        self.assertIn("join_secret", j)

    def test_agent_rejoins_after_removal(self):
        host = "rm-rejoin.example.com"
        a = self.agent(host)
        uid = self.uid(a)
        self.assertEqual(self.delete("/api/v1/nodes/" + uid).status, 204)
        # The agent's old key is refused; it joins again under its hostname.
        self.assertEqual(a.call("PUT", "/api/v1/agent/device", {}).status, 401)
        j = self.server.join(host)
        self.assertNotEqual(j["registration_code"], "ACTIVE", j)
        r = self.server.request("POST", "/api/v1/nodes/register-by-code", {"code": j["registration_code"]},
                                token=self.admin)
        self.assertEqual(r.status, 200, r)
        r = self.server.collect(j)
        self.assertEqual(r.status, 200, r)
        key = r.json()["api_key"]
        self.assertTrue(key)
        self.assertNotEqual(key, a.key)
        a.key = key
        dev = a.register(tags=[self.tag()])
        self.assertNotEqual(dev["device_id"], uid)
        self.assertEqual(self.server.report(key).status, 200)
        tid = self.submit()
        w = a.work(wait=5)
        self.assertEqual([x["task_id"] for x in w["tasks"]], [tid], w)
        a.start(tid)
        a.result(tid, result={})

    def test_remove_a_node_without_device_or_tasks(self):
        r = self.server.request("POST", "/api/v1/nodes", {"name": "rm-plain"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        uid = r.json()["node_id"]
        self.assertEqual(self.delete("/api/v1/nodes/" + uid, token=self.operator).status, 204)
        self.assertMgmtError(self.get("/api/v1/nodes/" + uid), 404, "LUCID_ERR_5001")
        # The name is free again too.
        r = self.server.request("POST", "/api/v1/nodes", {"name": "rm-plain"}, token=self.admin)
        self.assertEqual(r.status, 201, r)

    def test_remove_a_node_with_payouts_is_409_and_changes_nothing(self):
        a = self.agent("rm-paid.example.com")
        uid = self.uid(a)
        r = self.server.request("POST", "/api/v1/nodes/payouts/batch",
                                {"batch_id": "rm-paid", "payout_requests": [{"node_id": uid, "amount": 1.5}]},
                                token=self.admin)
        self.assertIn(r.status, (200, 201, 202), r)
        self.assertMgmtError(self.delete("/api/v1/nodes/" + uid), 409, "LUCID_ERR_4003")
        self.assertEqual(self.node(uid)["node_id"], uid)
        self.assertEqual(a.call("GET", "/api/v1/agent/work?wait=0").status, 200)

    # ---- who may call ----

    def routes(self, uid):
        return [("DELETE", "/api/v1/nodes/" + uid, None), ("POST", "/api/v1/nodes/%s/cordon" % uid, None),
                ("POST", "/api/v1/nodes/%s/uncordon" % uid, None),
                ("POST", "/api/v1/nodes/%s/drain" % uid, {"deadline_seconds": 60})]

    def test_401_without_or_with_a_bad_token(self):
        uid = self.uid(self.agent("rm-401.example.com"))
        for method, path, body in self.routes(uid):
            r = self.server.request(method, path, body)
            self.assertMgmtError(r, 401, "LUCID_ERR_2003", field=self.ANY)
            r = self.server.request(method, path, body, token="not.a.token")
            self.assertEqual(r.status, 401, r)
        self.assertNodeObject(self.node(uid), True)

    def test_403_for_viewer_node_principal_and_node_key(self):
        a = self.agent("rm-403.example.com")
        uid = self.uid(a)
        for token in (self.viewer, self.node_token):
            for method, path, body in self.routes(uid):
                r = self.server.request(method, path, body, token=token)
                self.assertMgmtError(r, 403, "LUCID_ERR_2004", field=self.ANY)
        for method, path, body in self.routes(uid):
            r = self.server.request(method, path, body, headers={"X-API-KEY": a.key})
            self.assertIn(r.status, (401, 403), r)
        # Nothing changed.
        self.assertNodeObject(self.node(uid), True)
        self.assertEqual(a.call("GET", "/api/v1/agent/work?wait=0").status, 200)

    def test_node_operator_may_cordon_drain_and_remove(self):
        uid = self.uid(self.agent("rm-op.example.com"))
        for method, path, body in self.routes(uid)[1:] + self.routes(uid)[:1]:
            r = self.server.request(method, path, body, token=self.operator)
            self.assertIn(r.status, (200, 204), r)

    def test_404_for_unknown_and_malformed_ids(self):
        for nid in (UNKNOWN, "node_zz", "node_" + "a" * 300):
            for method, path, body in self.routes(nid):
                r = self.server.request(method, path, body, token=self.admin)
                self.assertEqual(r.status, 404, r)
                if nid == UNKNOWN:
                    self.assertMgmtError(r, 404, "LUCID_ERR_5001")


if __name__ == "__main__":
    unittest.main()
