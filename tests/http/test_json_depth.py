"""Issue 12 item 1: JSON nested deeper than 64 levels is refused while parsing,
with each surface's malformed-JSON error, on every surface that reads JSON;
the server survives the 300,000-level body that used to kill it (SIGSEGV in
CopyFrom/Accept recursing once per level)."""
import json
import uuid

from lucidtest import ServerTestCase, WebSocket, db_execute

LIMIT = 64


def nested(depth):
    """`depth` nested arrays around 1: nested(2) == '[[1]]'."""
    return "[" * depth + "1" + "]" * depth


def deep_body(base, field, depth=300000):
    """`base` (a dict) with `field` set to {"x": <depth nested arrays>}: the
    issue's ~600 KB value, placed where each route copies or serializes it."""
    head = json.dumps(dict(base, **{field: "@"}))
    return head.replace('"@"', '{"x": ' + nested(depth) + "}")


class JsonDepth(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.node, cls.key = cls.server.join_and_approve("depth.example.com", cls.admin)
        cls.user = cls.server.token("user", sub=str(uuid.uuid4()))

    def assertAlive(self):
        r = self.server.request("GET", "/health")
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(self.server.proc.poll(), "lucid-server died")

    def post(self, path, body, method="POST", **kw):
        headers = dict(kw.pop("headers", {}))
        headers.setdefault("Content-Type", "application/json")
        return self.server.request(method, path, body=body, headers=headers, **kw)

    # ---- one route per API document, with that document's 400 ----

    def test_websocket_unauthenticated_first_message(self):
        w = WebSocket(self.server, "/api/ws")
        self.addCleanup(w.close)
        self.assertEqual(w.status, 101)
        w.send_frame(0x1, ('{"type":"AUTH","payload":{"x":' + nested(300000) + "}}").encode())
        m = w.recv()
        self.assertEqual(m, {"type": "ERROR", "payload": {"error": "Invalid message"}})
        self.assertAlive()
        # The connection still works: a well-formed AUTH is answered.
        w.send({"type": "AUTH", "payload": {"token": self.admin}})
        self.assertEqual(w.recv()["type"], "AUTH_OK")

    def test_websocket_depth_64_is_a_message_65_is_not(self):
        w = WebSocket(self.server, "/api/ws", token=self.admin)
        self.addCleanup(w.close)
        # envelope (1) + payload (1) + "x": 62 arrays = 64
        w.send_frame(0x1, ('{"type":"NOPE","payload":{"x":' + nested(LIMIT - 2) + "}}").encode())
        self.assertEqual(w.recv()["payload"], {"error": "Unknown message type: NOPE"})
        w.send_frame(0x1, ('{"type":"NOPE","payload":{"x":' + nested(LIMIT - 1) + "}}").encode())
        self.assertEqual(w.recv()["payload"], {"error": "Invalid message"})
        self.assertAlive()

    def test_gateway_chain_transactions(self):
        body = deep_body({"type": "session_anchor"}, "data")
        r = self.post("/api/v1/chain/transactions", body, token=self.user)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"]["code"], "LUCID_ERR_1009", r)
        self.assertIn("nested deeper than 64", r.json()["error"]["message"])
        self.assertAlive()

    def test_cluster_tasks(self):
        r = self.post("/api/v1/tasks", deep_body({"task_type": "echo"}, "payload"), token=self.admin)
        self.assertEqual(r.status, 400, r)
        body = r.json()
        self.assertEqual((body["status"], body["error_code"]), ("error", "VALIDATION_ERROR"), r)
        self.assertEqual(body["error_details"].get("field"), "body", r)
        self.assertAlive()

    def test_cluster_tasks_payload_at_the_limit_round_trips(self):
        # body (1) + payload: 63 levels = 64 in all; one more is refused.
        payload = json.loads(nested(LIMIT - 1))
        r = self.post("/api/v1/tasks", json.dumps({"task_type": "echo", "payload": payload}), token=self.admin)
        self.assertEqual(r.status, 201, r)
        task_id = r.json()["data"]["task_id"]
        got = self.server.request("GET", "/api/v1/tasks/" + task_id, token=self.admin)
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.json()["data"]["payload"], payload)
        r = self.post("/api/v1/tasks", json.dumps({"task_type": "echo", "payload": [payload]}), token=self.admin)
        self.assertEqual(r.status, 400, r)
        self.assertAlive()

    def test_cluster_agent_route(self):
        path = "/api/v1/agent/tasks/%s/result" % uuid.uuid4()
        r = self.post(path, deep_body({"status": "completed"}, "result"), headers={"X-API-KEY": self.key})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error_code"], "VALIDATION_ERROR", r)
        self.assertAlive()

    def test_network_node_workflow_and_service_routes(self):
        for path, base, field in (("/api/workflows", {"name": "deep"}, "definition"),
                                  ("/api/services", {"type": "DOCKER", "name": "deep"}, "capabilities"),
                                  ("/api/blacklist", {"peer_id": "12D3KooWdeep"}, "reason")):
            with self.subTest(path=path):
                r = self.post(path, deep_body(base, field), token=self.admin)
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json(), {"error": "Invalid request body"}, r)
                self.assertAlive()

    def test_network_node_agent_route(self):
        r = self.post("/api/agent/network", deep_body({}, "capabilities"), method="PUT",
                      headers={"X-API-KEY": self.key})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"error": "Invalid request body"}, r)
        self.assertAlive()

    def test_registration_and_management(self):
        r = self.post("/api/v1/nodes/join-request", deep_body({"hostname": "deep.example.com"}, "system_info"))
        self.assertEqual(r.status, 400, r)
        self.assertRegex(r.json()["detail"], r"^Malformed JSON: JSON nested deeper than 64 levels at offset \d+$")
        r = self.post("/api/v1/stats/", deep_body({"cpu_usage": 1}, "extra"), headers={"X-API-KEY": self.key})
        self.assertEqual(r.status, 400, r)
        self.assertAlive()

    # ---- stored JSON read back ----

    def test_stored_deep_payload_is_not_a_crash(self):
        """A payload stored before the limit existed (planted in the database)
        is read back as null, not recursed over."""
        r = self.post("/api/v1/tasks", json.dumps({"task_type": "echo", "payload": {"m": 1}}), token=self.admin)
        self.assertEqual(r.status, 201, r)
        task_id = r.json()["data"]["task_id"]
        n = db_execute(self.server.db, "UPDATE tasks SET payload = ? WHERE task_id = ?", (nested(300000), task_id))
        self.assertEqual(n, 1)
        got = self.server.request("GET", "/api/v1/tasks/" + task_id, token=self.admin)
        self.assertEqual(got.status, 200, got)
        self.assertIsNone(got.json()["data"]["payload"])
        self.assertAlive()

    # ---- found by fuzz_json ----

    def test_lone_surrogate_escape_is_malformed(self):
        """RapidJSON 1.1 let "\\udc00" through its UTF-8 validation as the bytes
        ED B0 80; the task was stored and its payload echoed as invalid UTF-8."""
        body = '{"task_type": "echo", "payload": {"m": "a\\udc00b"}}'
        r = self.post("/api/v1/tasks", body, token=self.admin)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error_code"], "VALIDATION_ERROR", r)
        r = self.post("/api/v1/nodes/join-request", '{"hostname": "x\\ude00.example.com"}')
        self.assertEqual(r.status, 400, r)
        self.assertRegex(r.json()["detail"], r"^Malformed JSON: Invalid encoding in string\. at offset \d+$")
        # A proper pair is text.
        r = self.post("/api/v1/tasks", '{"task_type": "echo", "payload": {"m": "\\ud83d\\ude00"}}', token=self.admin)
        self.assertEqual(r.status, 201, r)
