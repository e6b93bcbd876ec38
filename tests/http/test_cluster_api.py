"""cluster-devices-tasks.md: /health, /api/v1/cluster/*, /api/v1/devices*,
/api/v1/config*, authentication and the error form."""
import threading
import time
import unittest

from clustertest import Agent, ClusterTestCase, caps


class HealthAndAuth(ClusterTestCase):
    def test_health_is_public(self):
        r = self.server.request("GET", "/health")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["status"], "healthy")
        self.assertEqual(set(body["components"]), {"api", "cluster_server", "task_scheduler"})

    def test_missing_and_bad_credentials(self):
        r = self.server.request("GET", "/api/v1/cluster/status")
        self.err(r, 401, "UNAUTHORIZED")
        r = self.server.request("GET", "/api/v1/devices", headers={"X-API-Key": "not-a-key"})
        self.err(r, 401, "UNAUTHORIZED")
        r = self.server.request("GET", "/api/v1/devices", headers={"X-API-Key": "lak_" + "A" * 43})
        self.err(r, 401, "UNAUTHORIZED")

    def test_jwt_in_either_header(self):
        self.ok(self.server.request("GET", "/api/v1/cluster/status", headers={"X-API-Key": self.admin}))
        self.ok(self.server.request("GET", "/api/v1/cluster/status", token=self.admin))

    def test_roles(self):
        self.err(self.api("GET", "/api/v1/devices", token=self.server.token("user", sub="self-service")), 403,
                 "UNAUTHORIZED")
        user = self.server.token("viewer", sub="reader")
        self.ok(self.api("GET", "/api/v1/devices", token=user))
        self.err(self.api("GET", "/api/v1/config", token=user), 403, "UNAUTHORIZED")
        self.err(self.api("POST", "/api/v1/tasks", {"task_type": "echo"}, token=user), 403, "UNAUTHORIZED")

    def test_admin_api_key(self):
        data = self.ok(self.api("POST", "/api/v1/cluster/api-keys", {"name": "ops", "role": "admin"}), 201)
        key = data["api_key"]
        self.assertTrue(key.startswith("lak_"))
        self.ok(self.api("GET", "/api/v1/config", api_key=key))
        self.ok(self.server.request("GET", "/api/v1/config", token=key))  # Bearer works too
        # An admin key cannot mint keys (super_admin only).
        self.err(self.api("POST", "/api/v1/cluster/api-keys", {"name": "x"}, api_key=key), 403, "UNAUTHORIZED")
        self.err(self.api("POST", "/api/v1/cluster/api-keys", {"name": "x", "role": "king"}), 400,
                 "VALIDATION_ERROR", "role")
        self.err(self.api("POST", "/api/v1/cluster/api-keys", {}), 400, "VALIDATION_ERROR", "name")

    def test_unknown_route_and_method(self):
        self.err(self.api("GET", "/api/v1/devices/x/y/z"), 404, "NOT_FOUND")
        r = self.api("PATCH", "/api/v1/tasks")
        self.err(r, 405, "METHOD_NOT_ALLOWED")
        self.assertIn("allow", r.headers)

    def test_request_id_header_matches_body(self):
        r = self.api("GET", "/api/v1/devices/node_0000000000000000")
        body = self.err(r, 404, "DEVICE_NOT_FOUND")
        self.assertEqual(r.headers["x-request-id"], body["request_id"])


class Devices(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = Agent(cls.server, cls.admin, "dev-a")
        cls.a.register(platform="linux", role="compute", tags=["gpu-capable", "eu"],
                       capabilities=caps(cpu=8, mem=16, storage=500, gpu=True))
        cls.b = Agent(cls.server, cls.admin, "dev-b")
        cls.b.register(platform="android", role="mobile", capabilities=caps(cpu=2, mem=4, storage=64))
        cls.c = Agent(cls.server, cls.admin, "dev-c")  # approved, never reported
        r = cls.server.request("GET", "/api/v1/devices?status=offline", token=cls.admin)
        cls.c.device_id = r.json()["data"][0]["device_id"]

    def test_list_filters_and_pagination(self):
        r = self.api("GET", "/api/v1/devices?page=1&page_size=2")
        self.ok(r)
        body = r.json()
        self.assertEqual(len(body["data"]), 2)
        p = body["pagination"]
        self.assertEqual((p["page"], p["page_size"], p["total_items"], p["total_pages"], p["has_next"],
                          p["has_previous"]), (1, 2, 3, 2, True, False))
        ids = lambda q: [d["device_id"] for d in self.ok(self.api("GET", "/api/v1/devices?" + q))]
        self.assertEqual(ids("role=compute"), [self.a.device_id])
        self.assertEqual(ids("platform=android"), [self.b.device_id])
        self.assertEqual(ids("tags=eu,gpu-capable"), [self.a.device_id])
        self.assertEqual(ids("tags=eu,nope"), [])
        self.assertEqual(sorted(ids("status=online")), sorted([self.a.device_id, self.b.device_id]))
        self.assertEqual(len(ids("status=offline")), 1)
        self.assertEqual(len(ids("status=all")), 3)
        p2 = self.api("GET", "/api/v1/devices?page=2&page_size=2").json()["pagination"]
        self.assertEqual((p2["has_next"], p2["has_previous"]), (False, True))

    def test_list_validation(self):
        self.err(self.api("GET", "/api/v1/devices?status=sleepy"), 400, "VALIDATION_ERROR", "status")
        self.err(self.api("GET", "/api/v1/devices?page=0"), 400, "VALIDATION_ERROR", "page")
        self.err(self.api("GET", "/api/v1/devices?page_size=101"), 400, "VALIDATION_ERROR", "page_size")
        self.err(self.api("GET", "/api/v1/devices?page_size=x"), 400, "VALIDATION_ERROR", "page_size")

    def test_get_device_and_status(self):
        d = self.ok(self.api("GET", "/api/v1/devices/" + self.a.device_id))
        self.assertEqual(d["role"], "compute")
        self.assertEqual(d["status"], "online")
        self.assertEqual(d["capabilities"], {"cpu_count": 8, "memory_total_gb": 16.0, "storage_total_gb": 500.0,
                                             "has_gpu": True, "internet": True})
        self.assertEqual(sorted(d["tags"]), ["eu", "gpu-capable"])
        self.assertIsNotNone(d["uptime"])
        s = self.ok(self.api("GET", "/api/v1/devices/%s/status" % self.a.device_id))
        self.assertEqual(s["status"], "online")
        self.assertEqual(s["health"], "healthy")
        self.err(self.api("GET", "/api/v1/devices/nope"), 404, "DEVICE_NOT_FOUND")
        self.err(self.api("GET", "/api/v1/devices/nope/status"), 404, "DEVICE_NOT_FOUND")

    def test_summary_and_cluster_views(self):
        s = self.ok(self.api("GET", "/api/v1/devices/summary"))
        self.assertEqual(s["total_devices"], 3)
        self.assertEqual(s["online_devices"], 2)
        self.assertEqual(s["total_resources"]["cpu_cores"], 10)
        self.assertEqual(s["by_role"]["compute"], 1)
        st = self.ok(self.api("GET", "/api/v1/cluster/status"))
        cs = st["cluster_stats"]
        self.assertEqual((cs["total_devices"], cs["online_devices"], cs["offline_devices"]), (3, 2, 1))
        self.assertAlmostEqual(cs["health_percentage"], 66.7)
        self.assertEqual(cs["by_platform"], {"android": 1, "linux": 1, "unknown": 1})
        self.assertEqual(st["server_info"]["port"], self.server.port)
        m = self.ok(self.api("GET", "/api/v1/cluster/metrics"))
        self.assertIn("utilization", m)
        self.assertEqual(m["devices"]["total_devices"], 3)
        c = self.ok(self.api("GET", "/api/v1/cluster/config"))
        self.assertEqual(c["heartbeat"]["interval"], 60)
        self.assertIn("echo", c["task_types"])

    def test_admin_sets_role_and_tags(self):
        d = self.ok(self.api("PUT", "/api/v1/devices/" + self.b.device_id, {"role": "storage", "tags": ["x1"]}))
        self.assertEqual((d["role"], d["tags"]), ("storage", ["x1"]))
        # The agent's next report without role/tags keeps them.
        again = self.b.register(platform="android", capabilities=caps(cpu=2, mem=4, storage=64))
        self.assertEqual((again["role"], again["tags"]), ("storage", ["x1"]))
        self.err(self.api("PUT", "/api/v1/devices/" + self.b.device_id, {"role": "Bad Role"}), 400,
                 "VALIDATION_ERROR", "role")
        self.err(self.api("PUT", "/api/v1/devices/" + self.b.device_id, {"tags": "x"}), 400, "VALIDATION_ERROR", "tags")
        self.err(self.api("PUT", "/api/v1/devices/" + self.b.device_id, {}), 400, "VALIDATION_ERROR")
        self.err(self.api("PUT", "/api/v1/devices/" + self.b.device_id, {"colour": "red"}), 400, "VALIDATION_ERROR",
                 "colour")
        self.err(self.api("PUT", "/api/v1/devices/nope", {"role": "x"}), 404, "DEVICE_NOT_FOUND")
        self.err(self.api("PUT", "/api/v1/devices/" + self.b.device_id, body=None,
                          headers={"Content-Type": "application/json"}), 400, "VALIDATION_ERROR", "body")
        r = self.server.request("PUT", "/api/v1/devices/" + self.b.device_id, body="{bad", token=self.admin)
        self.err(r, 400, "VALIDATION_ERROR", "body")

    def test_ping_round_trip_and_timeout(self):
        acked = {}

        def agent():
            w = self.a.work(wait=5)
            for p in w["pings"]:
                acked[p] = self.a.call("POST", "/api/v1/agent/pings/" + p).status

        t = threading.Thread(target=agent)
        t.start()
        d = self.ok(self.api("POST", "/api/v1/devices/%s/ping?timeout=5" % self.a.device_id))
        t.join()
        self.assertTrue(d["reachable"])
        self.assertEqual(list(acked.values()), [200])
        # Nobody answers: 503 after the timeout.
        t0 = time.time()
        self.err(self.api("POST", "/api/v1/devices/%s/ping?timeout=1" % self.c.device_id), 503, "SERVICE_UNAVAILABLE")
        self.assertGreaterEqual(time.time() - t0, 0.9)
        self.err(self.api("POST", "/api/v1/devices/nope/ping"), 404, "DEVICE_NOT_FOUND")
        self.err(self.api("POST", "/api/v1/devices/%s/ping?timeout=99" % self.a.device_id), 400, "VALIDATION_ERROR",
                 "timeout")
        # An unknown or expired ping id.
        r = self.a.call("POST", "/api/v1/agent/pings/00000000-0000-4000-8000-000000000000")
        self.err(r, 404, "NOT_FOUND")


class DeleteDevice(ClusterTestCase):
    def test_delete_revokes_key_and_requeues(self):
        a = Agent(self.server, self.admin, "gone-a")
        a.register(max_concurrent=1)
        tid = self.submit()
        w = a.work(wait=5)
        self.assertEqual(w["tasks"][0]["task_id"], tid)
        self.ok(self.api("DELETE", "/api/v1/devices/" + a.device_id))
        self.err(self.api("GET", "/api/v1/devices/" + a.device_id), 404, "DEVICE_NOT_FOUND")
        self.err(self.api("DELETE", "/api/v1/devices/" + a.device_id), 404, "DEVICE_NOT_FOUND")
        # The key no longer works anywhere.
        self.err(a.call("GET", "/api/v1/agent/work"), 401, "UNAUTHORIZED")
        self.assertEqual(self.server.report(a.key).status, 401)
        t = self.task(tid)
        self.assertEqual(t["status"], "queued")
        self.assertIn("device removed", t["status_reason"])


class Config(ClusterTestCase):
    def test_get_update_reset(self):
        c = self.ok(self.api("GET", "/api/v1/config"))
        self.assertEqual(c["server"]["max_connections"], 10000)
        self.assertEqual(c["heartbeat"], {"interval": 60, "timeout": 300, "max_missed": 3,
                                          "offline_after_seconds": 180})
        self.assertEqual(self.ok(self.api("GET", "/api/v1/config/server"))["max_connections"], 10000)
        h = self.ok(self.api("PUT", "/api/v1/config/heartbeat", {"interval": 5, "timeout": 30, "max_missed": 2}))
        self.assertEqual(h["offline_after_seconds"], 10)
        self.assertEqual(self.ok(self.api("GET", "/api/v1/config/heartbeat"))["interval"], 5)
        self.err(self.api("PUT", "/api/v1/config/heartbeat", {"interval": 0}), 400, "VALIDATION_ERROR", "interval")
        self.err(self.api("PUT", "/api/v1/config/heartbeat", {"timeout": 1}), 400, "VALIDATION_ERROR", "timeout")
        self.err(self.api("PUT", "/api/v1/config/heartbeat", {"max_missed": "3"}), 400, "VALIDATION_ERROR",
                 "max_missed")
        self.err(self.api("PUT", "/api/v1/config/heartbeat", {}), 400, "VALIDATION_ERROR")
        self.err(self.api("PUT", "/api/v1/config/server", {"max_connections": 0}), 400, "VALIDATION_ERROR",
                 "max_connections")
        self.err(self.api("PUT", "/api/v1/config/server", {"max_connections": 5, "x": 1}), 400,
                 "VALIDATION_ERROR", "x")
        self.err(self.api("PUT", "/api/v1/config/server", {}), 400, "VALIDATION_ERROR", "max_connections")
        d = self.ok(self.api("POST", "/api/v1/config/reset"))
        self.assertEqual(d["heartbeat"]["interval"], 60)
        self.assertEqual(d["server"]["max_connections"], 10000)

    def test_max_connections_is_obeyed_and_persisted(self):
        import socket
        self.ok(self.api("PUT", "/api/v1/config/server", {"max_connections": 3}))
        held = []
        try:
            held = [socket.create_connection(("127.0.0.1", self.server.port)) for _ in range(3)]
            time.sleep(0.3)
            extra = socket.create_connection(("127.0.0.1", self.server.port))
            extra.settimeout(3)
            try:
                extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                got = extra.recv(100)
            except (ConnectionResetError, BrokenPipeError):
                got = b""
            self.assertEqual(got, b"")  # refused: closed at once
            extra.close()
        finally:
            for s in held:
                s.close()
        time.sleep(0.3)
        # Persisted: a restart keeps it.
        self.server.stop()
        self.server.start()
        self.assertEqual(self.ok(self.api("GET", "/api/v1/config/server"))["max_connections"], 3)
        self.ok(self.api("POST", "/api/v1/config/reset"))
        self.assertEqual(self.ok(self.api("GET", "/api/v1/config/server"))["max_connections"], 10000)

if __name__ == "__main__":
    unittest.main()
