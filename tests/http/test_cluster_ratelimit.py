"""cluster-devices-tasks.md rate limits: 60/min, 1000/hour, burst 10 per
client by default, with X-RateLimit-Remaining and X-RateLimit-Reset; admin
callers (admin/super_admin tokens, admin API keys) get the admin tier
(--rate-cluster-admin-*: 1200/min, 36000/hour, burst 200 by default)."""
import unittest

from clustertest import ClusterTestCase


class DefaultLimits(ClusterTestCase):
    server_args = ["--quiet"]  # the document's defaults

    def test_burst_then_429_per_client(self):
        viewer = self.server.token("viewer", sub="a-viewer")
        statuses, last = [], None
        for _ in range(11):
            last = self.api("GET", "/api/v1/tasks/statistics", token=viewer)
            statuses.append(last.status)
            if last.status == 200:
                self.assertIn("x-ratelimit-remaining", last.headers)
                self.assertIn("x-ratelimit-reset", last.headers)
        self.assertEqual(statuses[:10], [200] * 10)
        self.err(last, 429, "RATE_LIMIT_EXCEEDED")
        self.assertEqual(last.headers["x-ratelimit-remaining"], "0")
        self.assertIn("retry-after", last.headers)
        # Another client has its own bucket; /health is not limited.
        other = self.server.token("viewer", sub="someone-else")
        self.ok(self.api("GET", "/api/v1/tasks/statistics", token=other))
        for _ in range(12):
            self.assertEqual(self.server.request("GET", "/health").status, 200)

    def test_admin_tier_for_admin_tokens_and_admin_api_keys(self):
        # An operator's loop: far more than the document's burst of 10.
        admin = self.server.token("admin", sub="an-operator")
        for i in range(40):
            r = self.api("GET", "/api/v1/devices", token=admin)
            self.ok(r)
        self.assertEqual(r.headers["x-ratelimit-limit"], "1200")
        key = self.ok(self.api("POST", "/api/v1/cluster/api-keys", {"name": "ops", "role": "admin"}), 201)["api_key"]
        for _ in range(40):
            self.ok(self.api("GET", "/api/v1/devices", api_key=key))
        # A non-admin API key stays in the document's tier.
        vkey = self.ok(self.api("POST", "/api/v1/cluster/api-keys", {"name": "ro", "role": "viewer"}), 201)["api_key"]
        statuses = [self.api("GET", "/api/v1/devices", api_key=vkey).status for _ in range(11)]
        self.assertEqual(statuses, [200] * 10 + [429])


class AdminTierConfigured(ClusterTestCase):
    server_args = ["--quiet", "--rate-cluster-admin-burst", "3", "--rate-cluster-admin-minute", "3"]

    def test_admin_tier_is_configurable_and_still_limited(self):
        admin = self.server.token("super_admin", sub="op")
        statuses = [self.api("GET", "/api/v1/devices", token=admin).status for _ in range(4)]
        self.assertEqual(statuses, [200, 200, 200, 429])
        # A viewer has the document's budget, untouched by the admin's.
        viewer = self.server.token("viewer", sub="v")
        self.ok(self.api("GET", "/api/v1/devices", token=viewer))


class HourlyLimit(ClusterTestCase):
    server_args = ["--quiet", "--rate-cluster-minute", "100000", "--rate-cluster-burst", "100000",
                   "--rate-cluster-hour", "5", "--rate-cluster-admin-hour", "7"]

    def test_hour_budget(self):
        viewer = self.server.token("viewer", sub="hourly")
        for i in range(5):
            r = self.api("GET", "/api/v1/devices", token=viewer)
            self.ok(r)
            self.assertEqual(r.headers["x-ratelimit-remaining"], str(4 - i))
        self.err(self.api("GET", "/api/v1/devices", token=viewer), 429, "RATE_LIMIT_EXCEEDED")
        admin = self.server.token("admin", sub="hourly-admin")
        for _ in range(7):
            self.ok(self.api("GET", "/api/v1/devices", token=admin))
        self.err(self.api("GET", "/api/v1/devices", token=admin), 429, "RATE_LIMIT_EXCEEDED")


if __name__ == "__main__":
    unittest.main()
