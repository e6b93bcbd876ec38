"""node-management.md, resource monitoring: GET /api/v1/nodes/{node_id}/resources
(time_range) and /resources/metrics (metric_type, granularity, start_time,
end_time), checked against stats reported through the agent API, with the test
clock placing samples in known windows and buckets."""
import datetime
import unittest
import urllib.parse

from lucidtest import ServerTestCase
from test_mgmt_nodes import (MgmtAssertions, TIME_RE, collect_key, fmt_time, mgmt_create, parse_time)

FIGURE_KEYS = {"cpu_percent", "memory_percent", "disk_percent"}
CURRENT_KEYS = FIGURE_KEYS | {"disk_total_gb", "uptime_seconds", "active_backups", "sampled_at"}
NO_FIGURES = {"cpu_percent": None, "memory_percent": None, "disk_percent": None}
SEC = datetime.timedelta(seconds=1)


def q(**params):
    return "?" + urllib.parse.urlencode(params) if params else ""


class MgmtResources(MgmtAssertions, ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The test clock moves days ahead here: a token that outlives that.
        cls.admin = cls.server.token("super_admin", ttl="300d")

    def now(self):
        return parse_time(self.server.advance_clock(0, self.admin)["now"])

    def reporting_node(self, name, **create):
        body = {"name": name}
        body.update(create)
        n = mgmt_create(self.server, self.admin, body)
        return n["node_id"], collect_key(self.server, n)

    def report(self, key, **stats):
        r = self.server.report(key, **stats)
        self.assertEqual(r.status, 200, r)

    def resources(self, uid, **params):
        r = self.get("/api/v1/nodes/%s/resources%s" % (uid, q(**params)))
        self.assertEqual(r.status, 200, r)
        return r.json()

    def metrics(self, uid, **params):
        r = self.get("/api/v1/nodes/%s/resources/metrics%s" % (uid, q(**params)))
        self.assertEqual(r.status, 200, r)
        return r.json()

    def series(self, body, metric):
        found = [m for m in body["metrics"] if m["metric_type"] == metric]
        self.assertEqual(len(found), 1, body)
        return found[0]["data_points"]

    # ---- /resources ----

    def test_resources_without_stats(self):
        hw = {"cpu_cores": 8, "memory_gb": 32, "storage_gb": 500, "gpu_count": 1, "gpu_model": "L4",
              "architecture": "arm64", "os": "Debian 12"}
        n = mgmt_create(self.server, self.admin, {"name": "res-empty", "hardware_info": hw})
        before = self.now()
        body = self.resources(n["node_id"])
        self.assertEqual(set(body), {"node_id", "time_range", "timestamp", "current", "average", "peak",
                                     "sample_count", "hardware_info"})
        self.assertEqual(body["node_id"], n["node_id"])
        self.assertEqual(body["time_range"], "1h")
        self.assertRegex(body["timestamp"], TIME_RE)
        self.assertGreaterEqual(parse_time(body["timestamp"]), before)
        self.assertIsNone(body["current"])
        self.assertEqual(body["sample_count"], 0)
        self.assertEqual(body["average"], NO_FIGURES)
        self.assertEqual(body["peak"], NO_FIGURES)
        self.assertEqual(body["hardware_info"], hw)
        # A joined node that never reported: the same.
        self.server.join_and_approve("res-silent.example.com", self.admin)
        uid = self.node_of("res-silent.example.com")["node_id"]
        for tr in ("1h", "7d"):
            body = self.resources(uid, time_range=tr)
            self.assertEqual((body["current"], body["sample_count"], body["time_range"]), (None, 0, tr))

    def test_resources_with_stats(self):
        uid, key = self.reporting_node("res-stats")
        self.report(key, cpu_usage=10, disk_usage=20, memory_percent=40, uptime_seconds=100, active_backups=1)
        self.report(key, cpu_usage=20, disk_usage=30, active_backups=0)
        self.report(key, cpu_usage=30, disk_usage=40, memory_percent=60, uptime_seconds=300, disk_total_gb=500,
                    active_backups=2)
        for tr in ("1h", "6h", "24h", "7d"):
            with self.subTest(time_range=tr):
                body = self.resources(uid, time_range=tr)
                self.assertEqual(body["time_range"], tr)
                cur = body["current"]
                self.assertEqual(set(cur), CURRENT_KEYS)
                self.assertRegex(cur["sampled_at"], TIME_RE)
                del cur["sampled_at"]
                self.assertEqual(cur, {"cpu_percent": 30, "memory_percent": 60, "disk_percent": 40,
                                       "disk_total_gb": 500, "uptime_seconds": 300, "active_backups": 2})
                self.assertEqual(body["sample_count"], 3)
                self.assertEqual(body["average"], {"cpu_percent": 20, "memory_percent": 50, "disk_percent": 30})
                self.assertEqual(body["peak"], {"cpu_percent": 30, "memory_percent": 60, "disk_percent": 40})
        # The newest sample without memory: current.memory_percent is null, the
        # average still covers the samples that had it.
        self.report(key, cpu_usage=0, disk_usage=10)
        body = self.resources(uid)
        self.assertIsNone(body["current"]["memory_percent"])
        self.assertIsNone(body["current"]["uptime_seconds"])
        self.assertEqual(body["current"]["cpu_percent"], 0)
        self.assertEqual(body["sample_count"], 4)
        self.assertEqual(body["average"], {"cpu_percent": 15, "memory_percent": 50, "disk_percent": 25})
        self.assertEqual(body["peak"], {"cpu_percent": 30, "memory_percent": 60, "disk_percent": 40})

    def test_resources_time_range_windows(self):
        uid, key = self.reporting_node("res-window")
        self.report(key, cpu_usage=90, disk_usage=80, memory_percent=70)
        self.server.advance_clock(2 * 3600, self.admin)
        self.report(key, cpu_usage=10, disk_usage=20, memory_percent=30)
        newest = {"cpu_percent": 10, "memory_percent": 30, "disk_percent": 20}
        both_avg = {"cpu_percent": 50, "memory_percent": 50, "disk_percent": 50}
        both_peak = {"cpu_percent": 90, "memory_percent": 70, "disk_percent": 80}
        for tr, count, avg, peak in (("1h", 1, newest, newest), ("6h", 2, both_avg, both_peak),
                                     ("24h", 2, both_avg, both_peak), ("7d", 2, both_avg, both_peak)):
            with self.subTest(time_range=tr):
                body = self.resources(uid, time_range=tr)
                self.assertEqual((body["sample_count"], body["average"], body["peak"]), (count, avg, peak))
        # Two days on: nothing in the last 24 h, but the newest sample is still current.
        self.server.advance_clock(2 * 86400, self.admin)
        body = self.resources(uid, time_range="24h")
        self.assertEqual((body["sample_count"], body["average"], body["peak"]), (0, NO_FIGURES, NO_FIGURES))
        self.assertEqual(body["current"]["cpu_percent"], 10)
        self.assertEqual(self.resources(uid, time_range="7d")["sample_count"], 2)
        self.server.advance_clock(6 * 86400, self.admin)
        self.assertEqual(self.resources(uid, time_range="7d")["sample_count"], 0)

    def test_resources_bad_time_range_and_unknown_node(self):
        uid = mgmt_create(self.server, self.admin, {"name": "res-bad"})["node_id"]
        for tr in ("2h", "1H", "", "7", "30d", "1h "):
            with self.subTest(time_range=tr):
                r = self.get("/api/v1/nodes/%s/resources%s" % (uid, q(time_range=tr)))
                self.assertMgmtError(r, 400, "LUCID_ERR_1001", "time_range", "query")
        for bad in ("node_0000000000000000", "node_x.y"):
            with self.subTest(uid=bad):
                self.assertMgmtError(self.get("/api/v1/nodes/%s/resources" % bad), 404, "LUCID_ERR_5001")

    # ---- /resources/metrics ----

    def test_metrics_default_window_one_bucket(self):
        uid, key = self.reporting_node("met-default")
        self.report(key, cpu_usage=10, disk_usage=20, memory_percent=40)
        self.report(key, cpu_usage=20, disk_usage=30)
        self.report(key, cpu_usage=30, disk_usage=40, memory_percent=60)
        before = self.now()
        body = self.metrics(uid)
        after = self.now()
        self.assertEqual(set(body), {"node_id", "granularity", "start_time", "end_time", "metrics"})
        self.assertEqual(body["node_id"], uid)
        self.assertEqual(body["granularity"], "5m")
        start, end = parse_time(body["start_time"]), parse_time(body["end_time"])
        self.assertTrue(before <= end <= after, body)
        self.assertEqual(end - start, datetime.timedelta(hours=1))
        self.assertEqual([m["metric_type"] for m in body["metrics"]], ["cpu", "memory", "disk"])
        for m in body["metrics"]:
            self.assertEqual(set(m), {"metric_type", "unit", "data_points"})
            self.assertEqual(m["unit"], "percent")
        # All three samples fall in the last 5-minute bucket of the hour.
        bucket = fmt_time(start + datetime.timedelta(minutes=55))
        self.assertEqual(self.series(body, "cpu"), [{"timestamp": bucket, "min": 10, "avg": 20, "max": 30, "count": 3}])
        self.assertEqual(self.series(body, "memory"),
                         [{"timestamp": bucket, "min": 40, "avg": 50, "max": 60, "count": 2}])
        self.assertEqual(self.series(body, "disk"), [{"timestamp": bucket, "min": 20, "avg": 30, "max": 40, "count": 3}])

    def test_metrics_type_filter(self):
        uid, key = self.reporting_node("met-type")
        self.report(key, cpu_usage=11, disk_usage=22, memory_percent=33)
        for t, want in (("cpu", 11), ("memory", 33), ("disk", 22)):
            with self.subTest(metric_type=t):
                body = self.metrics(uid, metric_type=t)
                self.assertEqual([m["metric_type"] for m in body["metrics"]], [t])
                pts = body["metrics"][0]["data_points"]
                self.assertEqual([(p["min"], p["avg"], p["max"], p["count"]) for p in pts], [(want, want, want, 1)])
        body = self.metrics(uid, metric_type="network")
        self.assertEqual(len(body["metrics"]), 1)
        self.assertEqual(body["metrics"][0]["metric_type"], "network")
        self.assertEqual(body["metrics"][0]["data_points"], [])
        # A node without samples: every series empty.
        empty = mgmt_create(self.server, self.admin, {"name": "met-type-empty"})["node_id"]
        body = self.metrics(empty)
        self.assertEqual([(m["metric_type"], m["data_points"]) for m in body["metrics"]],
                         [("cpu", []), ("memory", []), ("disk", [])])

    def test_metrics_buckets_over_explicit_windows(self):
        uid, key = self.reporting_node("met-buckets")
        t = self.now()
        s = t - 60 * SEC  # window start: the first samples are 60 s (and a fraction) after it
        for cpu, disk, mem in ((10, 1, 40), (20, 2, None), (30, 3, 60)):
            stats = {"cpu_usage": cpu, "disk_usage": disk}
            if mem is not None:
                stats["memory_percent"] = mem
            self.report(key, **stats)
        self.server.advance_clock(600, self.admin)
        self.report(key, cpu_usage=50, disk_usage=5)
        self.report(key, cpu_usage=70, disk_usage=7)
        start, end = fmt_time(s), fmt_time(s + 3600 * SEC)
        ts = lambda secs: fmt_time(s + secs * SEC)
        cases = {"5m": [(ts(0), 10, 20, 30, 3), (ts(600), 50, 60, 70, 2)],
                 "1m": [(ts(60), 10, 20, 30, 3), (ts(660), 50, 60, 70, 2)],
                 "15m": [(ts(0), 10, 36, 70, 5)],
                 "1h": [(ts(0), 10, 36, 70, 5)]}
        for g, want in cases.items():
            with self.subTest(granularity=g):
                body = self.metrics(uid, granularity=g, start_time=start, end_time=end, metric_type="cpu")
                self.assertEqual((body["granularity"], body["start_time"], body["end_time"]), (g, start, end))
                got = [(p["timestamp"], p["min"], p["avg"], p["max"], p["count"]) for p in self.series(body, "cpu")]
                self.assertEqual(got, want)
        body = self.metrics(uid, granularity="1h", start_time=start, end_time=end)
        self.assertEqual(self.series(body, "memory"), [{"timestamp": start, "min": 40, "avg": 50, "max": 60, "count": 2}])
        self.assertEqual(self.series(body, "disk"), [{"timestamp": start, "min": 1, "avg": 3.6, "max": 7, "count": 5}])
        # end_time is exclusive: a window ending where the first samples begin holds none.
        body = self.metrics(uid, start_time=start, end_time=ts(60), metric_type="cpu", granularity="1m")
        self.assertEqual(self.series(body, "cpu"), [])
        # A window starting between the two groups holds only the later one.
        body = self.metrics(uid, start_time=ts(600), end_time=end, metric_type="cpu")
        self.assertEqual([(p["timestamp"], p["count"], p["avg"]) for p in self.series(body, "cpu")],
                         [(ts(600), 2, 60)])
        # Offsets are converted to UTC.
        local = (s + 3600 * SEC).astimezone(datetime.timezone(datetime.timedelta(hours=2)))
        offset_text = local.strftime("%Y-%m-%dT%H:%M:%S+02:00")
        body = self.metrics(uid, start_time=offset_text, end_time=fmt_time(s + 7200 * SEC), metric_type="cpu")
        self.assertEqual(body["start_time"], end)
        self.assertEqual(self.series(body, "cpu"), [])
        body = self.metrics(uid, start_time=start, end_time=local.strftime("%Y-%m-%dT%H:%M:%S+02:00"),
                            granularity="1h", metric_type="cpu")
        self.assertEqual(body["end_time"], end)
        self.assertEqual([p["count"] for p in self.series(body, "cpu")], [5])
        # Only one end given: the window is the hour before it / up to now.
        body = self.metrics(uid, end_time=ts(700), metric_type="cpu", granularity="1h")
        self.assertEqual(body["start_time"], ts(700 - 3600))
        self.assertEqual([p["count"] for p in self.series(body, "cpu")], [5])

    def test_metrics_bad_parameters_400(self):
        uid = mgmt_create(self.server, self.admin, {"name": "met-bad"})["node_id"]
        end = self.now()
        e_txt = fmt_time(end)
        cases = [({"granularity": "2m"}, "granularity"), ({"granularity": "5M"}, "granularity"),
                 ({"granularity": ""}, "granularity"), ({"granularity": "300"}, "granularity"),
                 ({"metric_type": "gpu"}, "metric_type"), ({"metric_type": ""}, "metric_type"),
                 ({"metric_type": "CPU"}, "metric_type"),
                 ({"start_time": "yesterday"}, "start_time"), ({"start_time": "2025-13-01T00:00:00Z"}, "start_time"),
                 ({"start_time": "2025-01-01"}, "start_time"), ({"start_time": ""}, "start_time"),
                 ({"end_time": "now"}, "end_time"), ({"end_time": "2025-01-01T25:00:00Z"}, "end_time"),
                 ({"start_time": e_txt, "end_time": e_txt}, "end_time"),
                 ({"start_time": fmt_time(end + SEC), "end_time": e_txt}, "end_time"),
                 ({"granularity": "1m", "start_time": fmt_time(end - datetime.timedelta(days=7)), "end_time": e_txt},
                  "granularity"),
                 ({"granularity": "1m", "start_time": fmt_time(end - datetime.timedelta(minutes=10001)),
                   "end_time": e_txt}, "granularity"),
                 ({"granularity": "1h", "start_time": "2020-01-01T00:00:00Z", "end_time": "2030-01-01T00:00:00Z"},
                  "granularity")]
        for params, field in cases:
            with self.subTest(params=params):
                r = self.get("/api/v1/nodes/%s/resources/metrics%s" % (uid, q(**params)))
                self.assertMgmtError(r, 400, "LUCID_ERR_1001", field, "query")
        # Exactly 10,000 buckets is allowed.
        body = self.metrics(uid, granularity="1m", start_time=fmt_time(end - datetime.timedelta(minutes=10000)),
                            end_time=e_txt)
        self.assertEqual(body["granularity"], "1m")
        for bad in ("node_0000000000000000", "node_x.y"):
            with self.subTest(uid=bad):
                self.assertMgmtError(self.get("/api/v1/nodes/%s/resources/metrics" % bad), 404, "LUCID_ERR_5001")


if __name__ == "__main__":
    unittest.main()
