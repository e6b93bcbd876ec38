"""node-management.md, rate limiting: per caller (token subject) and per class
(nodes, admin), X-RateLimit-* headers on every response of a limited route,
429 LUCID_ERR_3001 with Retry-After, and refill with time (test clock).

The server runs with --rate-nodes 5 --rate-admin 3: a bucket of 5 (3) that
refills at 5 (3) per 60 s."""
import unittest

from lucidtest import ServerTestCase
from test_mgmt_nodes import MgmtAssertions

NODES_LIMIT = 5
ADMIN_LIMIT = 3


class MgmtRateLimits(MgmtAssertions, ServerTestCase):
    server_args = ["--rate-nodes", str(NODES_LIMIT), "--rate-admin", str(ADMIN_LIMIT)]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        cls.tok = {sub: s.token(role="node_operator", sub=sub)
                   for sub in ("rl-a", "rl-b", "rl-c", "rl-d", "rl-f", "rl-admin")}
        cls.tok["rl-b-user"] = s.token(role="viewer", sub="rl-b")
        cls.tok["rl-e"] = s.token(role="viewer", sub="rl-e")
        cls.tok["admin"] = s.token(role="admin", sub="rl-admin")
        cls.tok["super"] = s.token(role="super_admin", sub="rl-super")

    def call(self, who, method="GET", path="/api/v1/nodes", body=None):
        return self.server.request(method, path, body, token=self.tok[who])

    def assertRateHeaders(self, r, limit, remaining):
        self.assertEqual(r.headers.get("x-ratelimit-limit"), str(limit), r.headers)
        self.assertEqual(r.headers.get("x-ratelimit-remaining"), str(remaining), r.headers)
        reset = int(r.headers["x-ratelimit-reset"])
        # Seconds until the bucket is full again: (limit - tokens left) / (limit per 60 s).
        per_token = 60 // limit
        used = limit - remaining
        self.assertTrue(per_token * used - 2 <= reset <= per_token * used, (reset, r.headers))
        return reset

    def exhaust(self, who, limit=NODES_LIMIT):
        for i in range(limit):
            r = self.call(who)
            self.assertEqual(r.status, 200, r)
            self.assertRateHeaders(r, limit, limit - 1 - i)
        r = self.call(who)
        self.assertLimited(r, limit)
        return int(r.headers["retry-after"])

    def assertLimited(self, r, limit):
        e = self.assertMgmtError(r, 429, "LUCID_ERR_3001")
        self.assertEqual(r.headers.get("x-ratelimit-limit"), str(limit), r.headers)
        self.assertEqual(r.headers.get("x-ratelimit-remaining"), "0", r.headers)
        self.assertIn("x-ratelimit-reset", r.headers)
        retry = int(r.headers["retry-after"])
        self.assertTrue(1 <= retry <= 60 // limit, r.headers)
        return e

    def test_sixth_request_in_a_minute_is_429(self):
        # Every limited route and every answer (success or error) counts.
        calls = [("GET", "/api/v1/nodes", None, 200),
                 ("GET", "/api/v1/nodes/pools", None, 200),
                 ("GET", "/api/v1/nodes/node_0000000000000000", None, 404),
                 ("PUT", "/api/v1/nodes/node_0000000000000000", {"name": "x"}, 404),
                 ("GET", "/api/v1/nodes?limit=1", None, 200)]
        for i, (method, path, body, status) in enumerate(calls):
            r = self.call("rl-a", method, path, body)
            self.assertEqual(r.status, status, r)
            self.assertRateHeaders(r, NODES_LIMIT, NODES_LIMIT - 1 - i)
        r = self.call("rl-a")
        self.assertLimited(r, NODES_LIMIT)
        self.assertGreaterEqual(int(r.headers["retry-after"]), 10)  # ~12 s until one token is back
        # A refused write does nothing.
        r = self.call("rl-a", "POST", "/api/v1/nodes/pools", {"name": "rl-refused"})
        self.assertLimited(r, NODES_LIMIT)
        names = [p["name"] for p in self.server.request("GET", "/api/v1/nodes/pools", token=self.admin).json()["pools"]]
        self.assertNotIn("rl-refused", names)

    def test_each_caller_has_its_own_bucket(self):
        self.exhaust("rl-b")
        # Same subject, other token and role: the same caller.
        self.assertLimited(self.call("rl-b-user"), NODES_LIMIT)
        r = self.call("rl-c")
        self.assertEqual(r.status, 200, r)
        self.assertRateHeaders(r, NODES_LIMIT, NODES_LIMIT - 1)
        self.assertLimited(self.call("rl-b"), NODES_LIMIT)

    def test_admins_use_the_admin_bucket(self):
        for i in range(ADMIN_LIMIT):
            r = self.call("admin")
            self.assertEqual(r.status, 200, r)
            self.assertRateHeaders(r, ADMIN_LIMIT, ADMIN_LIMIT - 1 - i)
        self.assertLimited(self.call("admin"), ADMIN_LIMIT)
        # The same subject as a node_operator counts against the nodes bucket.
        r = self.call("rl-admin")
        self.assertEqual(r.status, 200, r)
        self.assertRateHeaders(r, NODES_LIMIT, NODES_LIMIT - 1)
        r = self.call("super")
        self.assertEqual(r.status, 200, r)
        self.assertRateHeaders(r, ADMIN_LIMIT, ADMIN_LIMIT - 1)

    def test_clock_refills_the_bucket(self):
        retry = self.exhaust("rl-d")
        # After Retry-After seconds one request goes through, the next does not.
        self.server.advance_clock(retry, self.admin)
        r = self.call("rl-d")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("x-ratelimit-remaining"), "0")
        self.assertLimited(self.call("rl-d"), NODES_LIMIT)
        # A minute refills it completely.
        self.server.advance_clock(60, self.admin)
        r = self.call("rl-d")
        self.assertEqual(r.status, 200, r)
        self.assertRateHeaders(r, NODES_LIMIT, NODES_LIMIT - 1)

    def test_refused_authentication_and_scope_do_not_count(self):
        for _ in range(NODES_LIMIT + 2):
            r = self.server.request("GET", "/api/v1/nodes")
            self.assertMgmtError(r, 401, "LUCID_ERR_2003")
            self.assertNotIn("x-ratelimit-limit", r.headers)
            r = self.call("rl-e", "POST", "/api/v1/nodes", {"name": "rl-user-node"})
            self.assertMgmtError(r, 403, "LUCID_ERR_2004")
        r = self.call("rl-e")
        self.assertEqual(r.status, 200, r)
        self.assertRateHeaders(r, NODES_LIMIT, NODES_LIMIT - 1)

    def test_registration_routes_are_not_limited(self):
        for _ in range(NODES_LIMIT + 2):
            r = self.call("rl-f", "GET", "/api/v1/nodes/")
            self.assertEqual(r.status, 200, r)
            self.assertNotIn("x-ratelimit-limit", r.headers)
        r = self.call("rl-f")
        self.assertEqual(r.status, 200, r)
        self.assertRateHeaders(r, NODES_LIMIT, NODES_LIMIT - 1)


if __name__ == "__main__":
    unittest.main()
