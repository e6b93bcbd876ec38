"""End to end: the agent's flow exactly as the document describes it, liveness
over (test) time, and persistence across a restart on the same database."""
import unittest

from lucidtest import OpenStream, Server, ServerTestCase

KEY_RE = r"^lnk_[A-Za-z0-9_-]{43}$"


class AgentFlow(ServerTestCase):
    """One ordered scenario; it moves the clock, so it has its own server."""

    def get(self, path, token=None):
        r = self.server.request("GET", path, token=token or self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def health_everywhere(self, nid):
        listed = {n["id"]: n for n in self.get("/api/v1/nodes/")}[nid]["health"]
        detail = self.get("/api/v1/nodes/%d" % nid)["health"]
        with OpenStream(self.server, "/api/v1/metrics/nodes/%d/stats/stream" % nid, token=self.admin) as st:
            self.assertEqual(st.status, 200)
            streamed = st.next_event()["node"]["status"]
        return listed, detail, streamed

    def test_join_poll_approve_collect_report_stale(self):
        s = self.server
        # 1. join
        j = s.join("wp.zimpricecheck.com", ip_address="192.168.1.100", system_info="Ubuntu 22.04")
        code, rid = j["registration_code"], j["request_id"]
        self.assertRegex(code, r"^[A-Z0-9]{5}$")
        nid = int(rid)
        # 2. poll: pending, no key
        r = s.request("GET", "/api/v1/nodes/status/code/" + code)
        self.assertEqual((r.status, r.json()), (200, {"status": "pending", "api_key": None}))
        self.assertEqual(s.request("GET", "/api/v1/nodes/status/" + rid).json(),
                         {"request_id": rid, "status": "pending"})
        listed = {n["id"]: n for n in self.get("/api/v1/nodes/")}
        self.assertEqual(listed[nid]["status"], "pending")
        # The agent restarts and joins again with its secret: same request (the
        # secret itself is shown only once).
        self.assertRegex(j["join_secret"], r"^ljs_[A-Za-z0-9_-]{43}$")
        without_secret = {k: v for k, v in j.items() if k != "join_secret"}
        self.assertEqual(s.join("wp.zimpricecheck.com", join_secret=j["join_secret"]), without_secret)
        # 3. approve
        r = s.request("POST", "/api/v1/nodes/approve/" + rid, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["status"], r.json()["health"]), ("active", "offline"))
        # 4. poll: the key, once, to the holder of the join secret
        r = s.poll_code(code, j["join_secret"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "active")
        key = r.json()["api_key"]
        self.assertRegex(key, KEY_RE)
        # 5. the code is gone
        self.assertEqual(s.poll_code(code, j["join_secret"]).status, 404)
        self.assertEqual(s.request("POST", "/api/v1/nodes/register-by-code", {"code": code},
                                   token=self.admin).status, 404)
        self.assertEqual(s.join("wp.zimpricecheck.com")["registration_code"], "ACTIVE")
        self.assertEqual(self.health_everywhere(nid), ("offline", "offline", "offline"))
        # 6. stats
        r = s.report(key, cpu_usage=5.0, disk_usage=51.5, active_backups=1, memory_percent=72.8,
                     uptime_seconds=447000)
        self.assertEqual((r.status, r.json()), (200, {"status": "ok"}))
        # 7. online, with the sample
        self.assertEqual(self.health_everywhere(nid), ("online", "online", "online"))
        sample = {n["id"]: n for n in self.get("/api/v1/nodes/")}[nid]["stats"][0]
        self.assertEqual((sample["cpu_usage"], sample["disk_usage"], sample["memory_percent"]), (5.0, 51.5, 72.8))
        # 8. six minutes without a report: stale (the last sample stays visible)
        s.advance_clock(360, self.admin)
        self.assertEqual(self.health_everywhere(nid), ("stale", "stale", "stale"))
        self.assertEqual({n["id"]: n for n in self.get("/api/v1/nodes/")}[nid]["stats"][0]["cpu_usage"], 5.0)
        # 9. a new report: online again
        self.assertEqual(s.report(key, cpu_usage=6).status, 200)
        self.assertEqual(self.health_everywhere(nid), ("online", "online", "online"))
        d = self.get("/api/v1/nodes/%d" % nid)
        self.assertEqual([x["cpu_usage"] for x in d["stats"]], [6, 5.0])


class Persistence(unittest.TestCase):
    """Stop the server (exit 0), start it again on the same database."""

    def setUp(self):
        self.server = Server().start()
        self.admin = self.server.token("super_admin")

    def tearDown(self):
        self.server.cleanup()

    def restart(self):
        rc = self.server.stop()
        self.assertEqual(rc, 0, self.server.read_log()[-3000:])
        self.server.start()

    def test_state_survives_restart(self):
        s = self.server
        nid, key = s.join_and_approve("persist.example.com", self.admin)
        for cpu in (11, 22, 33):
            self.assertEqual(s.report(key, cpu_usage=cpu, disk_usage=cpu + 1, active_backups=1,
                                      memory_percent=50, uptime_seconds=cpu * 10, disk_total_gb=750).status, 200)
        r = s.request("POST", "/api/v1/stats/sites", {"sites": [{"site_name": "p.example", "used_bytes": 2 ** 31,
                                                                 "quota_gb": 3}]}, headers={"X-API-KEY": key})
        self.assertEqual(r.status, 200, r)
        r = s.request("POST", "/api/v1/stats/backups", {"site_name": "p.example", "filename": "p.tar",
                                                        "size_bytes": 123, "created_at": "2025-06-01T10:00:00Z"},
                      headers={"X-API-KEY": key})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(s.request("PUT", "/api/v1/nodes/%d/quota" % nid, {"storage_quota_gb": 42},
                                   token=self.admin).status, 200)
        pending = s.join("waiting.example.com")
        approved_uncollected = s.join("uncollected.example.com")
        self.assertEqual(s.request("POST", "/api/v1/nodes/approve/" + approved_uncollected["request_id"],
                                   token=self.admin).status, 200)

        def snapshot():
            return {
                "list": s.request("GET", "/api/v1/nodes/", token=self.admin).json(),
                "detail": s.request("GET", "/api/v1/nodes/%d" % nid, token=self.admin).json(),
                "quota": s.request("GET", "/api/v1/nodes/%d/quota/status" % nid, token=self.admin).json(),
                "sites": s.request("GET", "/api/v1/nodes/%d/sites" % nid, token=self.admin).json(),
                "backups": s.request("GET", "/api/v1/nodes/%d/backups" % nid, token=self.admin).json(),
            }

        before = snapshot()
        self.assertEqual([x["cpu_usage"] for x in before["detail"]["stats"]], [33, 22, 11])
        self.restart()
        # The old token still verifies (same signing key).
        after = snapshot()
        self.assertEqual(after, before)
        d = after["detail"]
        self.assertEqual((d["status"], d["health"], d["storage_quota_gb"], d["total_available_gb"]),
                         ("active", "online", 42, 750))
        # The key still works.
        self.assertEqual(s.report(key, cpu_usage=44).status, 200)
        self.assertEqual({n["id"]: n for n in s.request("GET", "/api/v1/nodes/", token=self.admin).json()}[nid]
                         ["stats"][0]["cpu_usage"], 44)
        # Codes: the pending one still polls pending and rejoining gives the same code;
        # the approved-but-uncollected one still delivers its key.
        r = s.request("GET", "/api/v1/nodes/status/code/" + pending["registration_code"])
        self.assertEqual(r.json(), {"status": "pending", "api_key": None})
        self.assertEqual(s.join("waiting.example.com", join_secret=pending["join_secret"]),
                         {k: v for k, v in pending.items() if k != "join_secret"})
        r = s.collect(approved_uncollected)
        self.assertEqual(r.json()["status"], "active")
        self.assertRegex(r.json()["api_key"], KEY_RE)
        self.assertEqual(s.join("persist.example.com")["registration_code"], "ACTIVE")
        # New ids continue after the old ones.
        newer = s.join("after-restart.example.com")
        self.assertGreater(int(newer["request_id"]), int(pending["request_id"]))

    def test_buffered_stats_are_flushed_on_sigterm(self):
        s = self.server
        nid, key = s.join_and_approve("flush.example.com", self.admin)
        for cpu in range(1, 6):
            self.assertEqual(s.report(key, cpu_usage=cpu).status, 200)
        # Stop at once: samples may still be in the write-behind queue.
        self.restart()
        d = s.request("GET", "/api/v1/nodes/%d" % nid, token=self.admin).json()
        self.assertEqual([x["cpu_usage"] for x in d["stats"]], [5, 4, 3, 2, 1])
        self.assertEqual(d["health"], "online")
        listed = {n["id"]: n for n in s.request("GET", "/api/v1/nodes/", token=self.admin).json()}[nid]
        self.assertEqual(listed["stats"][0]["cpu_usage"], 5)
        self.assertEqual(listed["last_seen"], d["last_seen"])
        self.assertIsNotNone(d["last_seen"])

    def test_collected_code_stays_gone_and_key_is_not_reissued(self):
        s = self.server
        j = s.join("once.example.com")
        s.request("POST", "/api/v1/nodes/approve/" + j["request_id"], token=self.admin)
        key = s.collect(j).json()["api_key"]
        self.restart()
        self.assertEqual(s.collect(j).status, 404)
        self.assertEqual(s.report(key).status, 200)
        self.assertEqual(s.report("lnk_" + "A" * 43).status, 401)

    def test_stale_is_computed_from_stored_last_seen(self):
        s = self.server
        nid, key = s.join_and_approve("restart-stale.example.com", self.admin)
        self.assertEqual(s.report(key).status, 200)
        self.restart()
        # A fresh process has a fresh test clock; moving it 6 minutes makes the stored last_seen old.
        s.advance_clock(360, self.admin)
        d = s.request("GET", "/api/v1/nodes/%d" % nid, token=self.admin).json()
        self.assertEqual(d["health"], "stale")
        listed = {n["id"]: n for n in s.request("GET", "/api/v1/nodes/", token=self.admin).json()}[nid]
        self.assertEqual(listed["health"], "stale")


if __name__ == "__main__":
    unittest.main()
