"""API gateway /meta/*: info, health, version, metrics (the document's JSON
MetricsResponse, admin only). The Prometheus text is GET /metrics:
test_server_ops.py."""
import unittest

from lucidtest import ServerTestCase


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

    def test_metrics_is_the_documents_metrics_response(self):
        for _ in range(3):
            self.assertEqual(self.server.request("GET", "/api/v1/meta/version").status, 200)
        r = self.server.request("GET", "/api/v1/meta/metrics", token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "application/json")
        d = r.json()
        self.assertEqual(set(d), {"timestamp", "metrics"})
        self.assertRegex(d["timestamp"], r"Z$")
        m = d["metrics"]
        self.assertEqual(set(m), {"requests_per_second", "response_time_p50", "response_time_p95",
                                  "response_time_p99", "error_rate", "active_connections"})
        for k in ("requests_per_second", "response_time_p50", "response_time_p95", "response_time_p99", "error_rate"):
            self.assertIsInstance(m[k], (int, float), k)
            self.assertGreaterEqual(m[k], 0, k)
        self.assertIsInstance(m["active_connections"], int)
        self.assertGreaterEqual(m["active_connections"], 1)  # this request's own
        self.assertLessEqual(m["error_rate"], 1)
        self.assertLessEqual(m["response_time_p50"], m["response_time_p95"])
        self.assertLessEqual(m["response_time_p95"], m["response_time_p99"])

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
