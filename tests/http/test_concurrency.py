"""Races on the registration flow: the same request from many clients at once."""
import threading
import unittest

from lucidtest import ServerTestCase


def at_once(n, fn):
    """Runs fn(i) in n threads released together; returns the results in order."""
    barrier = threading.Barrier(n)
    out = [None] * n
    errors = []

    def run(i):
        try:
            barrier.wait(timeout=10)
            out[i] = fn(i)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    if errors:
        raise errors[0]
    return out


class Races(ServerTestCase):
    def test_concurrent_joins_of_one_hostname_make_one_request(self):
        rs = at_once(16, lambda i: self.server.request("POST", "/api/v1/nodes/join-request",
                                                       {"hostname": "race-join.example.com"}))
        # One creates the request (and holds its join secret); the others,
        # holding no secret, are refused the code.
        self.assertEqual(sorted(r.status for r in rs), [200] + [409] * 15, rs)
        self.assertIn("join_secret", [r for r in rs if r.status == 200][0].json())
        nodes = self.server.request("GET", "/api/v1/nodes/?limit=5000", token=self.admin).json()
        self.assertEqual([n["hostname"] for n in nodes].count("race-join.example.com"), 1)

    def test_concurrent_polls_issue_the_key_once(self):
        j = self.server.join("race-poll.example.com")
        self.server.request("POST", "/api/v1/nodes/approve/" + j["request_id"], token=self.admin)
        rs = at_once(16, lambda i: self.server.collect(j))
        keys = [r.json()["api_key"] for r in rs if r.status == 200]
        self.assertEqual(len(keys), 1, rs)
        self.assertEqual(sorted(r.status for r in rs), [200] + [404] * 15, rs)
        self.assertEqual(self.server.report(keys[0]).status, 200)

    def test_concurrent_approvals_one_wins(self):
        j = self.server.join("race-approve.example.com")
        rs = at_once(12, lambda i: self.server.request("POST", "/api/v1/nodes/approve/" + j["request_id"],
                                                       token=self.admin))
        self.assertEqual(sorted(r.status for r in rs), [200] + [409] * 11, rs)

    def test_concurrent_register_by_code_one_wins(self):
        j = self.server.join("race-code.example.com")
        rs = at_once(12, lambda i: self.server.request("POST", "/api/v1/nodes/register-by-code",
                                                       {"code": j["registration_code"]}, token=self.admin))
        self.assertEqual(sorted(r.status for r in rs), [200] + [409] * 11, rs)

    def test_concurrent_reports_from_many_nodes(self):
        nodes = [self.server.join_and_approve("race-stats-%d.example.com" % i, self.admin) for i in range(8)]
        rs = at_once(8, lambda i: [self.server.report(nodes[i][1], cpu_usage=i * 10 + k) for k in range(5)])
        self.assertTrue(all(r.status == 200 for batch in rs for r in batch), rs)
        for i, (nid, _) in enumerate(nodes):
            d = self.server.request("GET", "/api/v1/nodes/%d" % nid, token=self.admin).json()
            self.assertEqual([x["cpu_usage"] for x in d["stats"]], [i * 10 + k for k in range(4, -1, -1)])
            self.assertEqual(d["health"], "online")

    def test_concurrent_site_reports_upsert_one_row(self):
        nid, key = self.server.join_and_approve("race-sites.example.com", self.admin)
        rs = at_once(10, lambda i: self.server.request(
            "POST", "/api/v1/stats/sites", {"sites": [{"site_name": "same.example", "used_bytes": i}]},
            headers={"X-API-KEY": key}))
        self.assertEqual([r.status for r in rs], [200] * 10, rs)
        sites = self.server.request("GET", "/api/v1/nodes/%d/sites" % nid, token=self.admin).json()
        self.assertEqual(sites["total"], 1)
        self.assertIn(sites["sites"][0]["used_bytes"], range(10))


if __name__ == "__main__":
    unittest.main()
