"""cluster-devices-tasks.md rate limits: 60/min, 1000/hour, burst 10 per
client by default, with X-RateLimit-Remaining and X-RateLimit-Reset."""
import unittest

from clustertest import ClusterTestCase


class DefaultLimits(ClusterTestCase):
    server_args = ["--quiet"]  # the document's defaults

    def test_burst_then_429_per_client(self):
        statuses, last = [], None
        for _ in range(11):
            last = self.api("GET", "/api/v1/tasks/statistics")
            statuses.append(last.status)
            if last.status == 200:
                self.assertIn("x-ratelimit-remaining", last.headers)
                self.assertIn("x-ratelimit-reset", last.headers)
        self.assertEqual(statuses[:10], [200] * 10)
        self.err(last, 429, "RATE_LIMIT_EXCEEDED")
        self.assertEqual(last.headers["x-ratelimit-remaining"], "0")
        self.assertIn("retry-after", last.headers)
        # Another client has its own bucket; /health is not limited.
        other = self.server.token("admin", sub="someone-else")
        self.ok(self.api("GET", "/api/v1/tasks/statistics", token=other))
        for _ in range(12):
            self.assertEqual(self.server.request("GET", "/health").status, 200)


class HourlyLimit(ClusterTestCase):
    server_args = ["--quiet", "--rate-cluster-minute", "100000", "--rate-cluster-burst", "100000",
                   "--rate-cluster-hour", "5"]

    def test_hour_budget(self):
        for i in range(5):
            r = self.api("GET", "/api/v1/devices")
            self.ok(r)
            self.assertEqual(r.headers["x-ratelimit-remaining"], str(4 - i))
        self.err(self.api("GET", "/api/v1/devices"), 429, "RATE_LIMIT_EXCEEDED")


if __name__ == "__main__":
    unittest.main()
