"""Helpers for the cluster API tests (cluster-devices-tasks.md): a test case
base with a super_admin token, envelope checks, and a simulated agent that
speaks docs/agent-protocol.md with a node API key."""
import unittest

from lucidtest import Server

# The document's rate limits (60/min, burst 10) would throttle a test suite;
# the rate-limit test starts its own server with the defaults.
RELAXED = ["--rate-cluster-minute", "100000", "--rate-cluster-hour", "1000000", "--rate-cluster-burst", "100000",
           "--quiet"]


def caps(cpu=4, mem=8.0, storage=100.0, gpu=False, internet=True):
    return {"cpu_count": cpu, "memory_total_gb": mem, "storage_total_gb": storage, "has_gpu": gpu,
            "internet": internet}


class Agent:
    """A simulated agent: one approved node and its API key."""

    def __init__(self, server, admin, hostname):
        self.server = server
        self.node_id, self.key = server.join_and_approve(hostname, admin)
        self.hostname = hostname
        self.device_id = None

    def call(self, method, path, body=None, timeout=10):
        return self.server.request(method, path, body, headers={"X-API-KEY": self.key}, timeout=timeout)

    def register(self, platform="linux", types=("echo", "sleep", "system_info"), max_concurrent=2, **kw):
        body = {"platform": platform, "capabilities": kw.pop("capabilities", caps()),
                "allowed_task_types": list(types), "max_concurrent": max_concurrent, "agent_version": "test"}
        body.update(kw)
        r = self.call("PUT", "/api/v1/agent/device", body)
        assert r.status == 200, r
        self.device_id = r.json()["data"]["device_id"]
        return r.json()["data"]

    def work(self, wait=0, timeout=40):
        r = self.call("GET", "/api/v1/agent/work?wait=%d" % wait, timeout=timeout)
        assert r.status == 200, r
        return r.json()["data"]

    def start(self, task_id):
        return self.call("POST", "/api/v1/agent/tasks/%s/start" % task_id, {})

    def progress(self, task_id, pct, message=None):
        body = {"progress": pct}
        if message is not None:
            body["message"] = message
        return self.call("POST", "/api/v1/agent/tasks/%s/progress" % task_id, body)

    def result(self, task_id, status="completed", result=None, duration_ms=5, **kw):
        body = {"status": status, "result": result, "duration_ms": duration_ms}
        body.update(kw)
        return self.call("POST", "/api/v1/agent/tasks/%s/result" % task_id, body)

    def run_one(self, wait=5):
        """Takes one task, starts it and reports it completed echoing its payload."""
        w = self.work(wait)
        assert w["tasks"], w
        t = w["tasks"][0]
        assert self.start(t["task_id"]).status == 200
        r = self.result(t["task_id"], result={"echo": t["payload"]})
        assert r.status == 200, r
        return t


class ClusterTestCase(unittest.TestCase):
    server_args = RELAXED

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.server_args).start()
        try:
            cls.admin = cls.server.token("super_admin")
        except BaseException:
            cls.server.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        log = cls.server.read_log()
        cls.server.cleanup()
        if rc != 0:
            raise AssertionError("lucid-server exited with %s on SIGTERM; log:\n%s" % (rc, log[-4000:]))

    # ---- requests with the admin credential ----

    def api(self, method, path, body=None, token=None, api_key=None, timeout=10, headers=None):
        hdrs = dict(headers or {})
        if api_key:
            hdrs["X-API-Key"] = api_key
            return self.server.request(method, path, body, headers=hdrs, timeout=timeout)
        return self.server.request(method, path, body, headers=hdrs, token=token or self.admin, timeout=timeout)

    def ok(self, r, status=200):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertEqual(body["status"], "success", r)
        for k in ("data", "message", "timestamp", "request_id"):
            self.assertIn(k, body, r)
        self.assertTrue(body["timestamp"].endswith("Z"), r)
        return body["data"]

    def err(self, r, status, code, field=None):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertEqual(body["status"], "error", r)
        self.assertEqual(body["error_code"], code, r)
        for k in ("message", "error_details", "timestamp", "request_id"):
            self.assertIn(k, body, r)
        if field is not None:
            self.assertEqual(body["error_details"].get("field"), field, r)
        return body

    def submit(self, task_type="echo", payload=None, priority=None, requirements=None, **kw):
        body = {"task_type": task_type, "payload": payload if payload is not None else {"message": "hi"}}
        if priority:
            body["priority"] = priority
        if requirements is not None:
            body["requirements"] = requirements
        body.update(kw)
        return self.ok(self.api("POST", "/api/v1/tasks", body), 201)["task_id"]

    def task(self, task_id):
        return self.ok(self.api("GET", "/api/v1/tasks/" + task_id))
