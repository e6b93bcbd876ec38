"""Configured bounds: outstanding join requests (429) and the stats
write-behind queue (503), each with Retry-After and the document's body."""
import unittest

from lucidtest import ServerTestCase


class PendingJoinLimit(ServerTestCase):
    server_args = ["--max-pending-joins", "2"]

    def test_joins_beyond_the_bound_get_429_and_rejoin_still_works(self):
        a = self.server.join("lim-a.example.com")
        self.server.join("lim-b.example.com")
        r = self.server.request("POST", "/api/v1/nodes/join-request", {"hostname": "lim-c.example.com"})
        self.assertDetail(r, 429)
        self.assertEqual(r.headers.get("retry-after"), "60")
        again = self.server.join("lim-a.example.com", join_secret=a["join_secret"])
        self.assertEqual(again["registration_code"], a["registration_code"])
        # approving one frees a slot
        self.server.request("POST", "/api/v1/nodes/approve/" + a["request_id"], token=self.admin)
        self.server.join("lim-c.example.com")
        nodes = self.server.request("GET", "/api/v1/nodes/", token=self.admin).json()
        self.assertEqual(sorted(n["hostname"] for n in nodes),
                         ["lim-a.example.com", "lim-b.example.com", "lim-c.example.com"])


class StatsQueueLimit(ServerTestCase):
    # A flush interval far beyond the test: only the bound decides.
    server_args = ["--stats-queue-limit", "3", "--stats-flush-ms", "60000"]

    def test_reports_beyond_the_queue_bound_get_503_and_nothing_is_lost(self):
        node_id, key = self.server.join_and_approve("q.example.com", self.admin)
        for cpu in (1, 2, 3):
            self.assertEqual(self.server.report(key, cpu_usage=cpu).status, 200)
        r = self.server.report(key, cpu_usage=4)
        self.assertDetail(r, 503)
        self.assertEqual(r.headers.get("retry-after"), "1")
        # Reading a node's history flushes the queue, so reports are accepted again.
        detail = self.server.request("GET", "/api/v1/nodes/%d" % node_id, token=self.admin).json()
        self.assertEqual([s["cpu_usage"] for s in detail["stats"]], [3, 2, 1])
        self.assertEqual(self.server.report(key, cpu_usage=5).status, 200)


if __name__ == "__main__":
    unittest.main()
