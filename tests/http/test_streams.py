"""SSE: /metrics/nodes/stats/stream and /metrics/nodes/{id}/stats/stream."""
import time
import unittest

from lucidtest import OpenStream, Server, ServerTestCase

ALL = "/api/v1/metrics/nodes/stats/stream"
TIME_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"
LIVE_KEYS = {"id", "hostname", "status", "is_master", "cpu_percent", "memory_percent", "disk_percent",
             "uptime_seconds", "active_backups", "last_seen"}


def one(nid):
    return "/api/v1/metrics/nodes/%d/stats/stream" % nid


class Streams(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        cls.hot, cls.hot_key = s.join_and_approve("hot.example.com", cls.admin)
        r = s.report(cls.hot_key, cpu_usage=12.5, disk_usage=51.5, active_backups=1, memory_percent=72.8,
                     uptime_seconds=447000)
        assert r.status == 200, r
        cls.cold, _ = s.join_and_approve("cold.example.com", cls.admin)
        cls.pending = int(s.join("pending.example.com")["request_id"])
        cls.hot_seen = {n["id"]: n for n in s.request("GET", "/api/v1/nodes/", token=cls.admin).json()}[
            cls.hot]["last_seen"]
        cls.operator = s.token("node_operator")

    def first_event(self, path, token=None, headers=None):
        with OpenStream(self.server, path, token=token, headers=headers) as st:
            self.assertEqual(st.status, 200, st.body() if st.status != 200 else "")
            self.assertEqual(st.headers.get("content-type"), "text/event-stream")
            ev = st.next_event()
            self.assertTrue(st.raw_lines[0].startswith(b"data: {"), st.raw_lines)
            self.assertEqual(st.raw_lines[-1], b"\n")
            return ev

    def check_hot(self, n):
        self.assertEqual(set(n), LIVE_KEYS)
        self.assertEqual(n, {"id": self.hot, "hostname": "hot.example.com", "status": "online", "is_master": False,
                             "cpu_percent": 12.5, "memory_percent": 72.8, "disk_percent": 51.5,
                             "uptime_seconds": 447000, "active_backups": 1, "last_seen": self.hot_seen})

    def check_cold(self, n):
        self.assertEqual(n, {"id": self.cold, "hostname": "cold.example.com", "status": "offline",
                             "is_master": False, "cpu_percent": None, "memory_percent": None,
                             "disk_percent": None, "uptime_seconds": None, "active_backups": None,
                             "last_seen": None})

    # ---- unified stream ----

    def test_all_nodes_first_event_query_token(self):
        ev = self.first_event(ALL + "?token=" + self.admin + "&interval=5")
        self.assertEqual(set(ev), {"timestamp", "nodes"})
        self.assertRegex(ev["timestamp"], TIME_RE)
        nodes = {n["id"]: n for n in ev["nodes"]}
        self.assertEqual(sorted(nodes), [self.hot, self.cold])  # approved nodes only
        self.assertNotIn(self.pending, nodes)
        self.check_hot(nodes[self.hot])
        self.check_cold(nodes[self.cold])

    def test_all_nodes_bearer_header_and_default_interval(self):
        ev = self.first_event(ALL, token=self.admin)
        self.assertEqual(sorted(n["id"] for n in ev["nodes"]), [self.hot, self.cold])

    def test_node_operator_and_admin_may_stream(self):
        for role in ("node_operator", "admin"):
            with self.subTest(role=role):
                ev = self.first_event(ALL + "?token=" + self.server.token(role))
                self.assertIn(self.hot, [n["id"] for n in ev["nodes"]])
                ev = self.first_event(one(self.hot), token=self.server.token(role))
                self.check_hot(ev["node"])

    def test_interval_one_paces_events(self):
        with OpenStream(self.server, ALL + "?interval=1&token=" + self.operator) as st:
            self.assertEqual(st.status, 200)
            e1 = st.next_event()
            t0 = time.monotonic()
            e2 = st.next_event()
            dt = time.monotonic() - t0
        self.assertIsNotNone(e2)
        self.assertGreater(dt, 0.7)
        self.assertLess(dt, 2.5)
        self.assertGreaterEqual(e2["timestamp"], e1["timestamp"])
        self.assertEqual(sorted(n["id"] for n in e2["nodes"]), [self.hot, self.cold])

    def test_interval_bounds_accepted(self):
        for q in ("interval=1", "interval=60", "interval=5"):
            with self.subTest(q=q):
                ev = self.first_event(ALL + "?" + q, token=self.admin)
                self.assertIn("nodes", ev)

    # ---- single-node stream ----

    def test_one_node_first_event(self):
        ev = self.first_event(one(self.hot) + "?token=" + self.operator)
        self.assertEqual(set(ev), {"timestamp", "node"})
        self.assertRegex(ev["timestamp"], TIME_RE)
        self.check_hot(ev["node"])

    def test_one_node_never_reported(self):
        ev = self.first_event(one(self.cold), token=self.admin)
        self.check_cold(ev["node"])

    # ---- errors (JSON, before the stream starts) ----

    def test_no_token_401(self):
        for path in (ALL, one(self.hot), ALL + "?interval=1", ALL + "?token="):
            with self.subTest(path=path):
                with OpenStream(self.server, path) as st:
                    r = st.body()
                self.assertEqual(self.assertDetail(r, 401), "Not authenticated")
                self.assertEqual(r.headers.get("www-authenticate"), "Bearer")
                self.assertEqual(r.headers.get("content-type"), "application/json")

    def test_bad_token_401(self):
        for path in (ALL + "?token=abc", one(self.hot) + "?token=abc.def.ghi",
                     ALL + "?token=" + self.admin[:-3]):
            with self.subTest(path=path):
                with OpenStream(self.server, path) as st:
                    self.assertDetail(st.body(), 401)

    def test_user_role_403(self):
        user = self.server.token("user")
        for path in (ALL + "?token=" + user, one(self.hot) + "?token=" + user):
            with self.subTest(path=path):
                with OpenStream(self.server, path) as st:
                    self.assertEqual(self.assertDetail(st.body(), 403), "Insufficient permissions")

    def test_bad_interval_422(self):
        for path in (ALL, one(self.hot)):
            for v in ("0", "61", "abc", "-1", "", "1.5", "5s", "99999999999999999999"):
                with self.subTest(path=path, interval=v):
                    with OpenStream(self.server, path + "?interval=" + v, token=self.admin) as st:
                        d = self.assertValidation(st.body(), "interval", where="query")
                        self.assertEqual(d[0]["type"], "value_error")

    def test_unknown_node_404(self):
        for nid in ("999999", "0", "abc"):
            with self.subTest(nid=nid):
                with OpenStream(self.server, "/api/v1/metrics/nodes/%s/stats/stream" % nid,
                                token=self.admin) as st:
                    self.assertEqual(self.assertDetail(st.body(), 404), "Node not found")

    def test_auth_checked_before_interval_and_node(self):
        with OpenStream(self.server, "/api/v1/metrics/nodes/999999/stats/stream?interval=0") as st:
            self.assertDetail(st.body(), 401)

    def test_query_token_not_written_to_log(self):
        with OpenStream(self.server, ALL + "?token=" + self.operator) as st:
            st.next_event()
        time.sleep(0.05)
        self.assertNotIn(self.operator, self.server.read_log())
        self.assertNotIn(self.operator.split(".")[2], self.server.read_log())


class StreamsUnifiedUpdates(ServerTestCase):
    """The unified stream is served from a snapshot cache: a report shows up
    in the next event."""

    def test_all_nodes_sees_a_new_report(self):
        nid, key = self.server.join_and_approve("fresh.example.com", self.admin)
        with OpenStream(self.server, ALL + "?interval=1&token=" + self.admin) as st:
            e1 = st.next_event()
            for n in e1["nodes"]:
                if n["id"] == nid:
                    self.assertEqual(n["status"], "offline")
            self.assertEqual(self.server.report(key, cpu_usage=61, disk_usage=62, active_backups=0).status, 200)
            e2 = st.next_event()
        n = {n["id"]: n for n in e2["nodes"]}[nid]
        self.assertEqual(n["status"], "online")
        self.assertEqual(n["cpu_percent"], 61)

    def test_one_node_sees_a_new_report(self):
        nid, key = self.server.join_and_approve("live.example.com", self.admin)
        with OpenStream(self.server, one(nid) + "?interval=1", token=self.admin) as st:
            e1 = st.next_event()
            self.assertEqual(e1["node"]["status"], "offline")
            self.assertEqual(self.server.report(key, cpu_usage=33, disk_usage=44, active_backups=2).status, 200)
            e2 = st.next_event()
        self.assertEqual(e2["node"]["status"], "online")
        self.assertEqual((e2["node"]["cpu_percent"], e2["node"]["disk_percent"], e2["node"]["active_backups"]),
                         (33, 44, 2))
        self.assertIsNone(e2["node"]["memory_percent"])
        self.assertRegex(e2["node"]["last_seen"], TIME_RE)

    def test_newly_approved_node_appears(self):
        with OpenStream(self.server, ALL + "?interval=1&token=" + self.admin) as st:
            e1 = st.next_event()
            j = self.server.join("late.example.com")
            self.assertNotIn(int(j["request_id"]), [n["id"] for n in e1["nodes"]])
            self.server.request("POST", "/api/v1/nodes/approve/" + j["request_id"], token=self.admin)
            e2 = st.next_event()
        self.assertIn(int(j["request_id"]), [n["id"] for n in e2["nodes"]])


class StreamsStale(ServerTestCase):
    """Moves the server clock: its own server."""

    def test_stale_after_five_minutes(self):
        nid, key = self.server.join_and_approve("stale.example.com", self.admin)
        self.assertEqual(self.server.report(key).status, 200)
        with OpenStream(self.server, one(nid), token=self.admin) as st:
            self.assertEqual(st.next_event()["node"]["status"], "online")
        self.server.advance_clock(290, self.admin)
        with OpenStream(self.server, one(nid), token=self.admin) as st:
            self.assertEqual(st.next_event()["node"]["status"], "online")  # not 5 minutes yet
        self.server.advance_clock(70, self.admin)
        with OpenStream(self.server, one(nid), token=self.admin) as st:
            ev = st.next_event()
        self.assertEqual(ev["node"]["status"], "stale")
        self.assertEqual(ev["node"]["cpu_percent"], 10)  # the last sample is still shown
        # The unified stream (first use on this server: no cached snapshot).
        with OpenStream(self.server, ALL, token=self.admin) as st:
            ev = st.next_event()
        self.assertEqual([(n["id"], n["status"]) for n in ev["nodes"]], [(nid, "stale")])
        # Reporting again makes it online.
        self.assertEqual(self.server.report(key).status, 200)
        with OpenStream(self.server, one(nid), token=self.admin) as st:
            self.assertEqual(st.next_event()["node"]["status"], "online")


class StreamsShutdown(unittest.TestCase):
    def test_sigterm_with_open_streams_exits_cleanly_and_quickly(self):
        s = Server().start()
        try:
            admin = s.token("super_admin")
            streams = [OpenStream(s, ALL + "?interval=1", token=admin) for _ in range(3)]
            streams.append(OpenStream(s, ALL + "?interval=60&token=" + admin))
            for st in streams:
                self.assertEqual(st.status, 200)
                self.assertIsNotNone(st.next_event())
            t0 = time.monotonic()
            rc = s.stop()
            took = time.monotonic() - t0
            self.assertEqual(rc, 0, s.read_log()[-2000:])
            self.assertLess(took, 5.0)
            for st in streams:
                # The stream ends (EOF) rather than hanging.
                ev = st.next_event()
                while ev is not None:
                    ev = st.next_event()
                st.close()
        finally:
            s.cleanup()


if __name__ == "__main__":
    unittest.main()
