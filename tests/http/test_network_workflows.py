"""network-node.md, Workflows: CRUD, nodes, connections, UI state, execution
(202, dependency order, STDOUT -> STDIN, fan-in order, failures, cycles,
dangling connections, timeouts, output bound), execution records, and
executions interrupted by a server stop or crash."""
import os
import signal
import time
import unittest

from lucidtest import Server, ServerTestCase
from test_network_services import NetworkAssertions, standalone, write_script

WORKFLOW_KEYS = {"id", "name", "description", "definition", "created_at", "updated_at"}
NODE_KEYS = {"id", "workflow_id", "node_type", "peer_id", "service_id", "config", "gui_props"}
CONN_KEYS = {"id", "workflow_id", "source_node_id", "source_interface_id", "target_node_id", "target_interface_id"}
# Issue 18: outputs are supersets with the network node web UI's fields.
UI_NODE_KEYS = {"service_name", "service_type", "order", "gui_x", "gui_y", "interfaces", "entrypoint", "cmd"}
UI_CONN_KEYS = {"from_node_id", "from_interface_type", "to_node_id", "to_interface_type", "destination_file_name"}
INSTANCE_KEYS = {"id", "workflow_id", "status", "started_at", "completed_at", "error"}
JOB_KEYS = {"id", "workflow_execution_id", "node_id", "status", "started_at", "completed_at"}


def wait_execution(server, token, exec_id, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = server.request("GET", "/api/workflow-executions/%d/status" % exec_id, token=token)
        assert r.status == 200, r
        if r.json()["status"] != "RUNNING":
            return r.json()
        time.sleep(0.05)
    raise AssertionError("execution %d still running" % exec_id)


def job_output(server, token, job_id, kind="STDOUT"):
    r = server.request("GET", "/api/job-executions/%d/interfaces" % job_id, token=token)
    assert r.status == 200, r
    return {i["interface_type"]: i["value"] for i in r.json()["interfaces"]}[kind]


class WorkflowHelpers:
    def req(self, method, path, body=None, token=None):
        return self.server.request(method, path, body, token=token or self.admin)

    def workflow(self, name="wf"):
        r = self.req("POST", "/api/workflows", {"name": name})
        self.assertEqual(r.status, 201, r)
        return r.json()["id"]

    def node(self, wid, sid, **extra):
        body = {"service_id": sid}
        body.update(extra)
        r = self.req("POST", "/api/workflows/%d/nodes" % wid, body)
        self.assertEqual(r.status, 201, r)
        return r.json()["id"]

    def connect(self, wid, a, b):
        r = self.req("POST", "/api/workflows/%d/connections" % wid, {"source_node_id": a, "target_node_id": b})
        self.assertEqual(r.status, 201, r)
        return r.json()["id"]

    def execute(self, wid):
        r = self.req("POST", "/api/workflows/%d/execute" % wid)
        self.assertEqual(r.status, 202, r)
        return r.json()["execution_id"]

    def run_wf(self, wid):
        return wait_execution(self.server, self.admin, self.execute(wid))

    def jobs(self, exec_id):
        r = self.req("GET", "/api/workflow-executions/%d/jobs" % exec_id)
        self.assertEqual(r.status, 200, r)
        return {j["node_id"]: j for j in r.json()["jobs"]}

    def script(self, name, text):
        return standalone(self.server, self.admin, name, write_script(self.server, "bin/%s" % name, text))


class TestWorkflowCrud(NetworkAssertions, WorkflowHelpers, ServerTestCase):
    def test_crud(self):
        r = self.req("POST", "/api/workflows", {"name": "W", "description": "d", "definition": {"nodes": [], "edges": []}})
        self.assertEqual(r.status, 201, r)
        w = r.json()
        self.assertEqual(set(w), WORKFLOW_KEYS)
        self.assertEqual(w["definition"], {"nodes": [], "edges": []})
        r = self.req("GET", "/api/workflows/%d" % w["id"])
        self.assertEqual((r.status, r.json()["name"]), (200, "W"))
        listed = self.req("GET", "/api/workflows").json()
        self.assertEqual(listed["total"], len(listed["workflows"]))
        r = self.req("PUT", "/api/workflows/%d" % w["id"], {"name": "W2", "definition": {}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["name"], r.json()["description"], r.json()["definition"]), ("W2", "d", {}))
        self.assertEqual(self.req("DELETE", "/api/workflows/%d" % w["id"]).status, 204)
        self.assertError(self.req("GET", "/api/workflows/%d" % w["id"]), 404, "workflow not found")
        self.assertError(self.req("DELETE", "/api/workflows/%d" % w["id"]), 404)

    def test_crud_errors(self):
        self.assertError(self.req("POST", "/api/workflows", {}), 400, "name")
        self.assertError(self.req("POST", "/api/workflows", {"name": "x", "definition": "{}"}), 400, "definition")
        self.assertError(self.server.request("POST", "/api/workflows", body="[", token=self.admin), 400)
        self.assertError(self.req("GET", "/api/workflows/abc"), 400, "invalid workflow id")
        self.assertError(self.req("PUT", "/api/workflows/999999", {"name": "x"}), 404)
        wid = self.workflow()
        self.assertError(self.req("PUT", "/api/workflows/%d" % wid, {"description": "no name"}), 400, "name")
        self.assertError(self.req("PATCH", "/api/workflows/%d" % wid), 405)
        self.assertError(self.server.request("GET", "/api/workflows"), 401)
        self.assertError(self.req("GET", "/api/workflows", token=self.server.token("user")), 403)  # self-service: no fleet reads
        user = self.server.token("viewer")
        self.assertEqual(self.req("GET", "/api/workflows", token=user).status, 200)
        self.assertError(self.req("POST", "/api/workflows", {"name": "x"}, token=user), 403)
        self.assertError(self.req("POST", "/api/workflows/%d/execute" % wid, token=user), 403)

    def test_nodes(self):
        sid = self.script("n.sh", "#!/bin/sh\ncat\n")
        wid = self.workflow()
        r = self.req("POST", "/api/workflows/%d/nodes" % wid,
                     {"node_type": "SERVICE", "service_id": sid, "config": {"timeout": 30}, "gui_props": {"position": {"x": 1, "y": 2}}})
        self.assertEqual(r.status, 201, r)
        n = r.json()
        self.assertEqual(set(n), NODE_KEYS | UI_NODE_KEYS)
        self.assertEqual((n["workflow_id"], n["service_id"], n["config"], n["peer_id"]), (wid, sid, {"timeout": 30}, ""))
        r = self.req("PUT", "/api/workflows/%d/nodes/%d/gui-props" % (wid, n["id"]), {"gui_props": {"width": 200}})
        self.assertEqual((r.status, r.json()), (200, {"success": True, "message": "GUI properties updated"}))
        r = self.req("PUT", "/api/workflows/%d/nodes/%d/config" % (wid, n["id"]), {"config": {"retry_count": 3}})
        self.assertEqual((r.status, r.json()), (200, {"success": True, "message": "Node configuration updated"}))
        got = self.req("GET", "/api/workflows/%d/nodes" % wid).json()
        self.assertEqual(got["total"], 1)
        self.assertEqual((got["nodes"][0]["gui_props"], got["nodes"][0]["config"]), ({"width": 200}, {"retry_count": 3}))
        self.assertError(self.req("POST", "/api/workflows/%d/nodes" % wid, {}), 400, "service_id")
        self.assertError(self.req("POST", "/api/workflows/%d/nodes" % wid, {"service_id": 999999}), 400, "service_id")
        self.assertError(self.req("POST", "/api/workflows/%d/nodes" % wid, {"service_id": sid, "node_type": "GATE"}), 400)
        self.assertError(self.req("POST", "/api/workflows/%d/nodes" % wid, {"service_id": sid, "config": 3}), 400)
        self.assertError(self.req("POST", "/api/workflows/999999/nodes", {"service_id": sid}), 404)
        self.assertError(self.req("GET", "/api/workflows/999999/nodes"), 404)
        self.assertError(self.req("PUT", "/api/workflows/%d/nodes/%d/gui-props" % (wid, n["id"]), {}), 400, "gui_props")
        self.assertError(self.req("PUT", "/api/workflows/%d/nodes/%d/config" % (wid, n["id"]), {"config": []}), 400)
        self.assertError(self.req("PUT", "/api/workflows/%d/nodes/999999/config" % wid, {"config": {}}), 404)
        self.assertError(self.req("PUT", "/api/workflows/%d/nodes/x/config" % wid, {"config": {}}), 400)
        self.assertEqual(self.req("DELETE", "/api/workflows/%d/nodes/%d" % (wid, n["id"])).status, 204)
        self.assertError(self.req("DELETE", "/api/workflows/%d/nodes/%d" % (wid, n["id"])), 404, "node not found")
        self.assertError(self.req("DELETE", "/api/workflows/%d/nodes/-1" % wid), 400)

    def test_connections_and_ui_state(self):
        sid = self.script("c.sh", "#!/bin/sh\ncat\n")
        wid = self.workflow()
        a, b, c = (self.node(wid, sid) for _ in range(3))
        r = self.req("POST", "/api/workflows/%d/connections" % wid,
                     {"source_node_id": a, "source_interface_id": 1, "target_node_id": b, "target_interface_id": 2})
        self.assertEqual(r.status, 201, r)
        conn = r.json()
        self.assertEqual(set(conn), CONN_KEYS | {"connection"})
        self.assertEqual(set(conn["connection"]), CONN_KEYS | UI_CONN_KEYS)
        self.assertEqual((conn["source_interface_id"], conn["target_interface_id"]), (1, 2))
        r = self.req("PUT", "/api/workflows/%d/connections/%d" % (wid, conn["id"]), {"source_node_id": a, "target_node_id": c})
        self.assertEqual((r.status, r.json()), (200, {"success": True, "message": "Connection updated"}))
        got = self.req("GET", "/api/workflows/%d/connections" % wid).json()
        self.assertEqual((got["total"], got["connections"][0]["target_node_id"], got["connections"][0]["source_interface_id"]),
                         (1, c, None))
        self.assertError(self.req("POST", "/api/workflows/%d/connections" % wid, {"source_node_id": a}), 400, "target_node_id")
        self.assertError(self.req("POST", "/api/workflows/%d/connections" % wid,
                                  {"source_node_id": a, "target_node_id": 999999}), 400, "target_node_id")
        self.assertError(self.req("PUT", "/api/workflows/%d/connections/999999" % wid,
                                  {"source_node_id": a, "target_node_id": b}), 404, "connection not found")
        self.assertError(self.req("GET", "/api/workflows/999999/connections"), 404)
        self.assertEqual(self.req("DELETE", "/api/workflows/%d/connections/%d" % (wid, conn["id"])).status, 204)
        self.assertError(self.req("DELETE", "/api/workflows/%d/connections/%d" % (wid, conn["id"])), 404)
        self.assertEqual(self.req("GET", "/api/workflows/%d/ui-state" % wid).json()["ui_state"], {})
        r = self.req("PUT", "/api/workflows/%d/ui-state" % wid, {"ui_state": {"zoom": 1.5, "pan_x": 100, "pan_y": 50}})
        self.assertEqual((r.status, r.json()), (200, {"success": True, "message": "UI state updated"}))
        got = self.req("GET", "/api/workflows/%d/ui-state" % wid).json()
        self.assertEqual(got["ui_state"], {"zoom": 1.5, "pan_x": 100, "pan_y": 50})
        self.assertEqual((got["zoom_level"], got["pan_x"], got["pan_y"]), (1.5, 100, 50))  # issue 18: the UI's flat fields
        self.assertError(self.req("PUT", "/api/workflows/%d/ui-state" % wid, {"zoom": 1}), 400, "ui_state")
        self.assertError(self.req("GET", "/api/workflows/999999/ui-state"), 404)
        self.assertError(self.req("PUT", "/api/workflows/999999/ui-state", {"ui_state": {}}), 404)

    def test_record_endpoint_errors(self):
        self.assertError(self.req("POST", "/api/workflows/999999/execute"), 404)
        self.assertError(self.req("POST", "/api/workflows/x/execute"), 400)
        for path in ["/api/workflow-executions/%s/status", "/api/workflow-executions/%s/jobs",
                     "/api/job-executions/%s/interfaces"]:
            with self.subTest(path=path):
                self.assertError(self.req("GET", path % "999999"), 404)
                self.assertError(self.req("GET", path % "abc"), 400)
                self.assertError(self.req("POST", path % "1"), 405)
        for path in ["/api/workflows/%s/jobs", "/api/workflows/%s/execution-instances", "/api/workflows/%s/executions"]:
            with self.subTest(path=path):
                self.assertError(self.req("GET", path % "999999"), 404)
                self.assertError(self.req("GET", path % "abc"), 400)


class TestExecution(NetworkAssertions, WorkflowHelpers, ServerTestCase):
    def test_chain_and_records(self):
        gen = self.script("gen.sh", "#!/bin/sh\nprintf 'a\\nb\\nc\\n'\n")
        up = self.script("up.sh", "#!/bin/sh\ntr a-z A-Z\n")
        wid = self.workflow()
        n1, n2 = self.node(wid, gen), self.node(wid, up)
        self.connect(wid, n1, n2)
        r = self.req("POST", "/api/workflows/%d/execute" % wid)
        self.assertEqual(r.status, 202, r)
        body = r.json()
        self.assertEqual(body["workflow_id"], wid)
        self.assertEqual(body["message"], "Workflow execution started - validation and execution in progress")
        st = wait_execution(self.server, self.admin, body["execution_id"])
        self.assertEqual((st["status"], st["error"], st["progress"]), ("COMPLETED", None, 100), st)
        self.assertTrue(INSTANCE_KEYS <= set(st))
        jobs = self.jobs(body["execution_id"])
        self.assertTrue(JOB_KEYS <= set(jobs[n1]))
        self.assertEqual((jobs[n1]["status"], jobs[n2]["status"], jobs[n2]["exit_code"]), ("COMPLETED", "COMPLETED", 0))
        self.assertLessEqual(jobs[n1]["completed_at"], jobs[n2]["started_at"])
        self.assertEqual(job_output(self.server, self.admin, jobs[n2]["id"]), "A\nB\nC\n")
        self.assertEqual(job_output(self.server, self.admin, jobs[n2]["id"], "STDIN"), "a\nb\nc\n")
        inst = self.req("GET", "/api/workflows/%d/execution-instances" % wid).json()
        self.assertEqual((inst["total"], inst["executions"][0]["id"], inst["executions"][0]["status"]),
                         (1, body["execution_id"], "COMPLETED"))
        self.assertEqual(set(inst["executions"][0]), INSTANCE_KEYS)
        legacy = self.req("GET", "/api/workflows/%d/jobs" % wid).json()
        self.assertEqual((legacy["total"], {j["status"] for j in legacy["jobs"]}), (2, {"COMPLETED"}))
        self.assertEqual(set(legacy["jobs"][0]), {"id", "workflow_id", "status", "created_at"})
        ex = self.req("GET", "/api/workflows/%d/executions" % wid).json()
        self.assertEqual(ex["total"], 2)

    def test_fan_out_fan_in_order_and_parallelism(self):
        a = self.script("fa.sh", "#!/bin/sh\necho A\n")
        slow = self.script("fslow.sh", "#!/bin/sh\nsleep 1\necho S\n")
        slow2 = self.script("fslow2.sh", "#!/bin/sh\nsleep 1\necho T\n")
        cat = self.script("fcat.sh", "#!/bin/sh\ncat\n")
        wid = self.workflow()
        n_slow2 = self.node(wid, slow2)
        n_a = self.node(wid, a)
        n_slow = self.node(wid, slow)
        n_cat = self.node(wid, cat)
        # connection order decides the order of the inputs: slow2, a, slow
        for src in (n_slow2, n_a, n_slow):
            self.connect(wid, src, n_cat)
        t0 = time.time()
        st = self.run_wf(wid)
        self.assertEqual(st["status"], "COMPLETED", st)
        self.assertLess(time.time() - t0, 1.9)  # the two sleeps ran in parallel
        jobs = self.jobs(st["id"])
        self.assertEqual(job_output(self.server, self.admin, jobs[n_cat]["id"]), "T\nA\nS\n")

    def test_failure_cancels_downstream(self):
        bad = self.script("bad.sh", "#!/bin/sh\necho oops >&2\nexit 3\n")
        cat = self.script("bcat.sh", "#!/bin/sh\ncat\n")
        wid = self.workflow()
        n1, n2 = self.node(wid, bad), self.node(wid, cat)
        self.connect(wid, n1, n2)
        st = self.run_wf(wid)
        self.assertEqual(st["status"], "FAILED")
        self.assertIn("exited with status 3", st["error"])
        jobs = self.jobs(st["id"])
        self.assertEqual((jobs[n1]["status"], jobs[n1]["exit_code"], jobs[n2]["status"]), ("FAILED", 3, "CANCELLED"))
        self.assertEqual(job_output(self.server, self.admin, jobs[n1]["id"], "STDERR"), "oops\n")

    def test_cycle_and_dangling(self):
        cat = self.script("ccat.sh", "#!/bin/sh\ncat\n")
        wid = self.workflow()
        a, b, c = (self.node(wid, cat) for _ in range(3))
        self.connect(wid, a, b)
        self.connect(wid, b, c)
        self.connect(wid, c, b)
        st = self.run_wf(wid)
        self.assertEqual(st["status"], "FAILED")
        self.assertIn("cycle", st["error"])
        self.assertIn(str(b), st["error"])
        self.assertEqual(self.jobs(st["id"]), {})
        wid2 = self.workflow()
        x, y = self.node(wid2, cat), self.node(wid2, cat)
        conn = self.connect(wid2, x, y)
        self.req("DELETE", "/api/workflows/%d/nodes/%d" % (wid2, y))
        st = self.run_wf(wid2)
        self.assertEqual(st["status"], "FAILED")
        self.assertIn("connection %d is dangling" % conn, st["error"])
        # an empty workflow, a non-standalone service, a remote peer
        st = self.run_wf(self.workflow())
        self.assertEqual((st["status"], st["error"]), ("FAILED", "the workflow has no nodes"))
        docker = self.req("POST", "/api/services", {"type": "docker", "name": "d"}).json()["service"]["id"]
        wid3 = self.workflow()
        self.node(wid3, docker)
        self.assertIn("without an executable or image", self.run_wf(wid3)["error"])
        wid4 = self.workflow()
        self.node(wid4, cat, peer_id="12D3KooWother")
        # Issue 17: not local and no fleet node's peer id (tests/cli/test_agent_workflows.py runs real ones).
        self.assertIn("peer 12D3KooWother is neither this server nor an active fleet node", self.run_wf(wid4)["error"])

    def test_timeout_and_output_bound(self):
        sleepy = self.script("sleepy.sh", "#!/bin/sh\nsleep 30\n")
        wid = self.workflow()
        n = self.node(wid, sleepy, config={"timeout": 1})
        t0 = time.time()
        st = self.run_wf(wid)
        self.assertLess(time.time() - t0, 10)
        self.assertEqual(st["status"], "FAILED")
        self.assertIn("timed out after 1 s", st["error"])
        self.assertEqual(self.jobs(st["id"])[n]["status"], "FAILED")
        big = self.script("big.sh", "#!/bin/sh\nhead -c 3000000 /dev/zero\n")
        wid = self.workflow()
        self.node(wid, big)
        st = self.run_wf(wid)
        self.assertEqual(st["status"], "FAILED")
        self.assertIn("output exceeds 1048576 bytes", st["error"])

    def test_inactive_service(self):
        cat = self.script("icat.sh", "#!/bin/sh\ncat\n")
        wid = self.workflow()
        self.node(wid, cat)
        self.req("PUT", "/api/services/%d/status" % cat, {"status": "INACTIVE"})
        self.assertIn("INACTIVE", self.run_wf(wid)["error"])


class TestInterruptedExecutions(NetworkAssertions, unittest.TestCase):
    def run_long(self, server, admin):
        rel = write_script(server, "bin/long.sh", "#!/bin/sh\nsleep 15\n")
        sid = standalone(server, admin, "long", rel)
        wid = server.request("POST", "/api/workflows", {"name": "long"}, token=admin).json()["id"]
        server.request("POST", "/api/workflows/%d/nodes" % wid, {"service_id": sid}, token=admin)
        exec_id = server.request("POST", "/api/workflows/%d/execute" % wid, token=admin).json()["execution_id"]
        deadline = time.time() + 10
        while time.time() < deadline:
            jobs = server.request("GET", "/api/workflow-executions/%d/jobs" % exec_id, token=admin).json()["jobs"]
            if jobs and jobs[0]["status"] == "RUNNING":
                return exec_id
            time.sleep(0.05)
        raise AssertionError("job never started")

    def test_stop_and_crash(self):
        server = Server().start()
        try:
            admin = server.token("super_admin")
            exec_id = self.run_long(server, admin)
            t0 = time.time()
            self.assertEqual(server.stop(), 0)  # SIGTERM: the child is killed, the stop is prompt
            self.assertLess(time.time() - t0, 15)
            server.start()
            st = server.request("GET", "/api/workflow-executions/%d/status" % exec_id, token=admin).json()
            self.assertEqual(st["status"], "FAILED")
            self.assertIn("server stopping", st["error"])
            exec_id = self.run_long(server, admin)
            server.stop(sig=signal.SIGKILL)
            server.start()
            # SQLite: failed at the open. PostgreSQL: at the open too, or by the
            # leader's sweep within seconds if the database had not yet seen the
            # killed process's session close (its instance lock).
            st = wait_execution(server, admin, exec_id, timeout=10)
            self.assertEqual(st["status"], "FAILED")
            self.assertEqual(st["error"], "server restarted while the execution was running")
            job = server.request("GET", "/api/workflow-executions/%d/jobs" % exec_id, token=admin).json()["jobs"][0]
            self.assertEqual(job["status"], "FAILED")
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
