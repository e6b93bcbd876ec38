"""API gateway /meta/*: info, health, version, Prometheus metrics (admin only)."""
import re
import unittest

from lucidtest import ServerTestCase

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? '
                    r'(-?[0-9.eE+-]+|\+Inf|NaN)$')


def parse_prometheus(text):
    """Validates the text exposition format; returns {(name, labels): value}."""
    samples, typed = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram"), line
            typed[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, "not a Prometheus sample: %r" % line
        name = m.group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or base in typed, "sample before its TYPE: %r" % line
        labels = tuple(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples[(name, labels)] = float(m.group(4))
    return samples, typed


class MetaTest(ServerTestCase):
    def test_info(self):
        r = self.server.request("GET", "/api/v1/meta/info")
        self.assertEqual(r.status, 200, r)
        d = r.json()
        self.assertEqual(d["service_name"], "api-gateway")
        self.assertRegex(d["version"], r"^\d+\.\d+\.\d+")
        self.assertRegex(d["build_date"], r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
        self.assertEqual(d["environment"], "production")
        self.assertIn("authentication", d["features"])
        self.assertIn("rate_limiting", d["features"])

    def test_version(self):
        r = self.server.request("GET", "/api/v1/meta/version")
        self.assertEqual(r.status, 200, r)
        d = r.json()
        self.assertEqual(d["api_version"], "v1")
        self.assertEqual(d["supported_versions"], ["v1"])
        self.assertIsNone(d["deprecation_notice"])
        self.assertEqual(d["gateway_version"], self.server.request("GET", "/api/v1/meta/info").json()["version"])

    def test_health(self):
        r = self.server.request("GET", "/api/v1/meta/health")
        self.assertEqual(r.status, 200, r)
        d = r.json()
        self.assertEqual(d["status"], "healthy")
        self.assertEqual(d["service"], "api-gateway")
        self.assertEqual(d["dependencies"], {"database": "healthy", "executor": "healthy"})
        self.assertEqual(d["errors"], {})
        self.assertIsInstance(d["uptime"], int)
        self.assertIsInstance(d["response_time"], (int, float))
        self.assertRegex(d["timestamp"], r"Z$")

    def test_metrics_admin_only(self):
        self.assertEqual(self.server.request("GET", "/api/v1/meta/metrics").status, 401)
        r = self.server.request("GET", "/api/v1/meta/metrics", token=self.server.token("user", sub="u"))
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json()["error"]["code"], "LUCID_ERR_2004")
        r = self.server.request("GET", "/api/v1/meta/metrics", token=self.server.token("node_operator", sub="o"))
        self.assertEqual(r.status, 403, r)

    def test_metrics_format_and_content(self):
        node_id, key = self.server.join_and_approve("metrics-1", self.admin)
        for _ in range(3):
            self.assertEqual(self.server.request("GET", "/api/v1/meta/version").status, 200)
        self.server.request("GET", "/api/v1/meta/nothing-here")
        r = self.server.request("GET", "/api/v1/meta/metrics", token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers)
        samples, typed = parse_prometheus(r.text)
        self.assertEqual(typed["lucid_http_requests_total"], "counter")
        self.assertEqual(typed["lucid_http_request_duration_seconds"], "histogram")
        key_v = ("lucid_http_requests_total",
                 (("method", "GET"), ("route", "/api/v1/meta/version"), ("status", "200")))
        self.assertGreaterEqual(samples[key_v], 3)
        self.assertGreaterEqual(samples[("lucid_http_requests_total",
                                         (("method", ""), ("route", "unmatched"), ("status", "404")))], 1)
        labels = (("method", "GET"), ("route", "/api/v1/meta/version"))
        count = samples[("lucid_http_request_duration_seconds_count", labels)]
        inf = samples[("lucid_http_request_duration_seconds_bucket", labels + (("le", "+Inf"),))]
        self.assertEqual(count, inf)
        # Buckets are cumulative.
        buckets = sorted(((float(dict(l)["le"]) if dict(l)["le"] != "+Inf" else float("inf")), v)
                         for (n, l), v in samples.items()
                         if n == "lucid_http_request_duration_seconds_bucket" and l[:2] == labels)
        values = [v for _, v in buckets]
        self.assertEqual(values, sorted(values))
        self.assertGreaterEqual(samples[("lucid_nodes", (("status", "active"),))], 1)
        self.assertIn(("lucid_block_height", ()), samples)
        self.assertIn(("lucid_queue_depth", (("queue", "stats_samples"),)), samples)
        self.assertIn(("lucid_queue_depth", (("queue", "ledger_pending_transactions"),)), samples)
        self.assertIn("lucid_payouts", typed)
        self.assertIn(("lucid_live_sessions", ()), samples)

    def test_method_and_unknown_path(self):
        r = self.server.request("POST", "/api/v1/meta/info")
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.json()["error"]["code"], "LUCID_ERR_4003")
        r = self.server.request("GET", "/api/v1/meta/nothing")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json()["error"]["code"], "LUCID_ERR_4001")
        self.assertEqual(r.json()["error"]["service"], "api-gateway")


class EnvironmentFlagTest(ServerTestCase):
    server_args = ["--environment", "staging"]

    def test_environment(self):
        self.assertEqual(self.server.request("GET", "/api/v1/meta/info").json()["environment"], "staging")


if __name__ == "__main__":
    unittest.main()
