"""node-management.md, pools: GET/POST /api/v1/nodes/pools and
POST /api/v1/nodes/pools/{pool_id}/nodes (priority, max_nodes, resource
limits over the members' hardware, moving a node between pools)."""
import threading
import unittest

from lucidtest import ServerTestCase
from test_mgmt_nodes import (MgmtAssertions, POOL_ID_RE, POOL_KEYS, TIME_RE, mgmt_create, mgmt_pool)

NO_LIMITS = {"max_cpu_cores": None, "max_memory_gb": None, "max_storage_gb": None}


class MgmtPoolList(MgmtAssertions, ServerTestCase):
    """Three pools; nothing here creates more."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pools = [mgmt_pool(cls.server, cls.admin, {"name": "list-pool-%d" % i}) for i in range(3)]

    def test_list_pages(self):
        ids = [p["pool_id"] for p in self.pools]
        for q, page, limit, want, pages, has_next, has_prev in (
                ("", 1, 20, ids, 1, False, False),
                ("?limit=2", 1, 2, ids[:2], 2, True, False),
                ("?limit=2&page=2", 2, 2, ids[2:], 2, False, True),
                ("?limit=2&page=3", 3, 2, [], 2, False, True),
                ("?limit=1&page=2", 2, 1, ids[1:2], 3, True, True),
                ("?limit=100", 1, 100, ids, 1, False, False)):
            with self.subTest(q=q):
                r = self.get("/api/v1/nodes/pools" + q)
                self.assertEqual(r.status, 200, r)
                body = r.json()
                self.assertEqual(set(body), {"pools", "pagination"})
                self.assertEqual([p["pool_id"] for p in body["pools"]], want)
                self.assertPagination(body["pagination"], page, limit, 3, pages, has_next, has_prev)
        listed = self.get("/api/v1/nodes/pools").json()["pools"]
        self.assertEqual(listed, self.pools)

    def test_list_bad_paging_400(self):
        for q, field in (("limit=101", "limit"), ("limit=0", "limit"), ("limit=x", "limit"), ("page=0", "page"),
                         ("page=-1", "page"), ("page=", "page")):
            with self.subTest(q=q):
                self.assertMgmtError(self.get("/api/v1/nodes/pools?" + q), 400, "LUCID_ERR_1001", field, "query")

    def test_list_requires_node_read(self):
        self.assertMgmtError(self.server.request("GET", "/api/v1/nodes/pools"), 401, "LUCID_ERR_2003")
        t = self.server.token(role="super_admin", scopes=["payout:read"], sub="pl-payout")
        self.assertMgmtError(self.get("/api/v1/nodes/pools", token=t), 403, "LUCID_ERR_2004")
        self.assertEqual(self.get("/api/v1/nodes/pools", token=self.server.token(role="viewer", sub="pl-user")).status, 200)
        # a self-service account has no fleet scope
        self.assertMgmtError(self.get("/api/v1/nodes/pools", token=self.server.token(role="user", sub="pl-self")), 403,
                             "LUCID_ERR_2004")


class MgmtPools(MgmtAssertions, ServerTestCase):

    def pool(self, body):
        return mgmt_pool(self.server, self.admin, body)

    def pool_now(self, pool_id):
        """The pool as listed now."""
        r = self.get("/api/v1/nodes/pools?limit=100")
        self.assertEqual(r.status, 200, r)
        found = [p for p in r.json()["pools"] if p["pool_id"] == pool_id]
        self.assertEqual(len(found), 1)
        return found[0]

    def add(self, pool_id, body, token=None):
        return self.post("/api/v1/nodes/pools/%s/nodes" % pool_id, body, token=token)

    def added(self, pool_id, node_id, priority=None):
        body = {"node_id": node_id}
        if priority is not None:
            body["priority"] = priority
        r = self.add(pool_id, body)
        self.assertEqual(r.status, 200, r)
        return r.json()

    # ---- POST /nodes/pools ----

    def test_create_minimal(self):
        r = self.post("/api/v1/nodes/pools", {"name": "pool-min"})
        self.assertEqual(r.status, 201, r)
        p = r.json()
        self.assertEqual(set(p), POOL_KEYS)
        self.assertRegex(p["pool_id"], POOL_ID_RE)
        self.assertEqual(p["name"], "pool-min")
        self.assertEqual(p["description"], "")
        self.assertEqual(p["node_count"], 0)
        self.assertIsNone(p["max_nodes"])
        self.assertEqual(p["resource_limits"], NO_LIMITS)
        self.assertRegex(p["created_at"], TIME_RE)
        self.assertEqual(p["created_at"], p["updated_at"])
        self.assertEqual(self.pool_now(p["pool_id"]), p)

    def test_create_full(self):
        limits = {"max_cpu_cores": 64, "max_memory_gb": 256.5, "max_storage_gb": 10000}
        p = self.pool({"name": "pool-full", "description": "GPU workers in Frankfurt", "max_nodes": 10,
                       "resource_limits": limits})
        self.assertEqual(p["description"], "GPU workers in Frankfurt")
        self.assertEqual(p["max_nodes"], 10)
        self.assertEqual(p["resource_limits"], limits)
        self.assertEqual(self.pool_now(p["pool_id"]), p)
        self.assertEqual(self.pool({"name": "pool-one", "max_nodes": 1})["max_nodes"], 1)
        self.assertEqual(self.pool({"name": "pool-partial", "resource_limits": {"max_memory_gb": 8}})["resource_limits"],
                         dict(NO_LIMITS, max_memory_gb=8))

    def test_create_length_limits_count_characters(self):
        # NodePool: name maxLength 100, description maxLength 500 (characters).
        name, desc = "\u00e9" * 100, "\u00e9" * 500
        r = self.post("/api/v1/nodes/pools", {"name": name, "description": desc})
        self.assertEqual(r.status, 201, r)
        self.assertEqual((r.json()["name"], r.json()["description"]), (name, desc))

    def test_create_validation(self):
        for body, field, code in (({}, "name", "LUCID_ERR_1002"),
                                  ({"description": "no name"}, "name", "LUCID_ERR_1002"),
                                  ({"name": ""}, "name", "LUCID_ERR_1001"),
                                  ({"name": 7}, "name", "LUCID_ERR_1001"),
                                  ({"name": "p" * 101}, "name", "LUCID_ERR_1001"),
                                  ({"name": "pv", "description": "d" * 501}, "description", "LUCID_ERR_1001"),
                                  ({"name": "pv", "description": 5}, "description", "LUCID_ERR_1001"),
                                  ({"name": "pv", "max_nodes": 0}, "max_nodes", "LUCID_ERR_1001"),
                                  ({"name": "pv", "max_nodes": -5}, "max_nodes", "LUCID_ERR_1001"),
                                  ({"name": "pv", "max_nodes": 1.5}, "max_nodes", "LUCID_ERR_1001"),
                                  ({"name": "pv", "max_nodes": "3"}, "max_nodes", "LUCID_ERR_1001"),
                                  ({"name": "pv", "resource_limits": 4}, "resource_limits", "LUCID_ERR_1001"),
                                  ({"name": "pv", "resource_limits": {"max_cpu_cores": 0}},
                                   "resource_limits.max_cpu_cores", "LUCID_ERR_1001"),
                                  ({"name": "pv", "resource_limits": {"max_cpu_cores": "8"}},
                                   "resource_limits.max_cpu_cores", "LUCID_ERR_1001"),
                                  ({"name": "pv", "resource_limits": {"max_memory_gb": -1}},
                                   "resource_limits.max_memory_gb", "LUCID_ERR_1001"),
                                  ({"name": "pv", "resource_limits": {"max_storage_gb": -0.1}},
                                   "resource_limits.max_storage_gb", "LUCID_ERR_1001")):
            with self.subTest(body=body):
                self.assertMgmtError(self.post("/api/v1/nodes/pools", body), 400, code, field)
        self.assertMgmtError(self.post("/api/v1/nodes/pools", raw="{"), 400, "LUCID_ERR_1009")
        self.assertMgmtError(self.post("/api/v1/nodes/pools", raw="[]"), 400, "LUCID_ERR_1001", "body")
        # None of these created a pool.
        self.assertEqual(self.pool({"name": "pv"})["name"], "pv")

    def test_create_duplicate_409(self):
        p = self.pool({"name": "pool-dup", "max_nodes": 3})
        e = self.assertMgmtError(self.post("/api/v1/nodes/pools", {"name": "pool-dup", "max_nodes": 9}), 409,
                                 "LUCID_ERR_5008")
        self.assertEqual(e["message"], "Pool already exists")
        self.assertEqual(self.pool_now(p["pool_id"])["max_nodes"], 3)
        names = [x["name"] for x in self.get("/api/v1/nodes/pools?limit=100").json()["pools"]]
        self.assertEqual(names.count("pool-dup"), 1)

    # ---- POST /nodes/pools/{pool_id}/nodes ----

    def test_add_node_default_and_explicit_priority(self):
        p = self.pool({"name": "pool-add"})
        a = mgmt_create(self.server, self.admin, {"name": "pa-a"})
        b = mgmt_create(self.server, self.admin, {"name": "pa-b"})
        got = self.added(p["pool_id"], a["node_id"])
        self.assertEqual(set(got), POOL_KEYS)
        self.assertEqual((got["pool_id"], got["name"], got["node_count"]), (p["pool_id"], "pool-add", 1))
        n = self.node(a["node_id"])
        self.assertEqual((n["pool_id"], n["pool_priority"]), (p["pool_id"], 50))
        got = self.added(p["pool_id"], b["node_id"], priority=1)
        self.assertEqual(got["node_count"], 2)
        self.assertEqual(self.node(b["node_id"])["pool_priority"], 1)
        # Adding a member again changes its priority only.
        got = self.added(p["pool_id"], a["node_id"], priority=100)
        self.assertEqual(got["node_count"], 2)
        self.assertEqual(self.node(a["node_id"])["pool_priority"], 100)
        self.assertEqual(self.pool_now(p["pool_id"])["node_count"], 2)
        r = self.get("/api/v1/nodes?pool_id=" + p["pool_id"])
        self.assertEqual([x["node_id"] for x in r.json()["nodes"]], [a["node_id"], b["node_id"]])
        self.assertEqual(r.json()["pagination"]["total"], 2)

    def test_add_node_joined_through_registration(self):
        p = self.pool({"name": "pool-joined"})
        self.server.join_and_approve("pool-joined.example.com", self.admin)
        uid = self.node_of("pool-joined.example.com")["node_id"]
        self.assertEqual(self.added(p["pool_id"], uid, priority=42)["node_count"], 1)
        n = self.node(uid)
        self.assertEqual((n["pool_id"], n["pool_priority"]), (p["pool_id"], 42))

    def test_add_node_validation_and_not_found(self):
        p = self.pool({"name": "pool-errors"})
        uid = mgmt_create(self.server, self.admin, {"name": "pe-node"})["node_id"]
        for body, field, code in (({}, "node_id", "LUCID_ERR_1002"),
                                  ({"priority": 5}, "node_id", "LUCID_ERR_1002"),
                                  ({"node_id": 5}, "node_id", "LUCID_ERR_1001"),
                                  ({"node_id": "abc"}, "node_id", "LUCID_ERR_1001"),
                                  ({"node_id": "node_"}, "node_id", "LUCID_ERR_1001"),
                                  ({"node_id": uid, "priority": 0}, "priority", "LUCID_ERR_1001"),
                                  ({"node_id": uid, "priority": 101}, "priority", "LUCID_ERR_1001"),
                                  ({"node_id": uid, "priority": -1}, "priority", "LUCID_ERR_1001"),
                                  ({"node_id": uid, "priority": "high"}, "priority", "LUCID_ERR_1001"),
                                  ({"node_id": uid, "priority": 2.5}, "priority", "LUCID_ERR_1001")):
            with self.subTest(body=body):
                self.assertMgmtError(self.add(p["pool_id"], body), 400, code, field)
        self.assertMgmtError(self.post("/api/v1/nodes/pools/%s/nodes" % p["pool_id"], raw="nope"), 400,
                             "LUCID_ERR_1009")
        for node_id in ("node_0000000000000000", "node_a.b"):
            with self.subTest(node_id=node_id):
                e = self.assertMgmtError(self.add(p["pool_id"], {"node_id": node_id}), 404, "LUCID_ERR_5001")
                self.assertEqual(e["message"], "Node not found")
        for pool_id in ("pool_0000000000000000", "pool_a.b", "pool_" + "f" * 60):
            with self.subTest(pool_id=pool_id):
                e = self.assertMgmtError(self.add(pool_id, {"node_id": uid}), 404, "LUCID_ERR_5002")
                self.assertEqual(e["message"], "Pool not found")
        self.assertMgmtError(self.add("xyz", {"node_id": uid}), 404, "LUCID_ERR_4001")
        n = self.node(uid)
        self.assertEqual((n["pool_id"], n["pool_priority"]), (None, None))
        self.assertEqual(self.pool_now(p["pool_id"])["node_count"], 0)
        self.assertEqual(self.added(p["pool_id"], uid, priority=100)["node_count"], 1)
        self.assertEqual(self.added(p["pool_id"], uid, priority=1)["node_count"], 1)

    def test_add_requires_node_write(self):
        p = self.pool({"name": "pool-scope"})
        uid = mgmt_create(self.server, self.admin, {"name": "ps-node"})["node_id"]
        user = self.server.token(role="viewer", sub="pool-user")
        self.assertMgmtError(self.add(p["pool_id"], {"node_id": uid}, token=user), 403, "LUCID_ERR_2004")
        self.assertMgmtError(self.post("/api/v1/nodes/pools", {"name": "by-user"}, token=user), 403, "LUCID_ERR_2004")
        self.assertIsNone(self.node(uid)["pool_id"])
        op = self.server.token(role="node_operator", sub="pool-operator")
        r = self.add(p["pool_id"], {"node_id": uid}, token=op)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["node_count"], 1)

    def test_max_nodes_exceeded_5004_nothing_changes(self):
        full = self.pool({"name": "pool-max", "max_nodes": 2})
        other = self.pool({"name": "pool-max-other"})
        a, b, c = (mgmt_create(self.server, self.admin, {"name": "pm-" + x})["node_id"] for x in "abc")
        self.added(full["pool_id"], a)
        self.added(full["pool_id"], b)
        self.added(other["pool_id"], c, priority=9)
        e = self.assertMgmtError(self.add(full["pool_id"], {"node_id": c}), 400, "LUCID_ERR_5004")
        self.assertIn("max_nodes", e["message"])
        # c stays where it was, with its priority; the full pool keeps its two members.
        n = self.node(c)
        self.assertEqual((n["pool_id"], n["pool_priority"]), (other["pool_id"], 9))
        self.assertEqual(self.pool_now(full["pool_id"])["node_count"], 2)
        self.assertEqual(self.pool_now(other["pool_id"])["node_count"], 1)
        self.assertEqual([x["node_id"] for x in self.get("/api/v1/nodes?pool_id=" + full["pool_id"]).json()["nodes"]],
                         [a, b])
        # A member re-added to its full pool is no new member.
        self.assertEqual(self.added(full["pool_id"], b, priority=77)["node_count"], 2)
        # Creating a node straight into the full pool: 5004 and no node is created.
        self.assertMgmtError(self.post("/api/v1/nodes", {"name": "pm-d", "pool_id": full["pool_id"]}), 400,
                             "LUCID_ERR_5004")
        self.assertEqual(mgmt_create(self.server, self.admin, {"name": "pm-d"})["pool_id"], None)

    def test_resource_limits_exceeded_5004(self):
        p = self.pool({"name": "pool-limits",
                       "resource_limits": {"max_cpu_cores": 10, "max_memory_gb": 32, "max_storage_gb": 1000}})
        mk = lambda name, hw: mgmt_create(self.server, self.admin, {"name": name, "hardware_info": hw})["node_id"]
        a = mk("pr-a", {"cpu_cores": 6, "memory_gb": 16, "storage_gb": 400})
        big_cpu = mk("pr-cpu", {"cpu_cores": 6})
        big_mem = mk("pr-mem", {"cpu_cores": 1, "memory_gb": 16.5})
        big_sto = mk("pr-sto", {"storage_gb": 600.5})
        fits = mk("pr-fits", {"cpu_cores": 4, "memory_gb": 16, "storage_gb": 600})
        bare = mk("pr-bare", {})
        self.assertEqual(self.added(p["pool_id"], a)["node_count"], 1)
        for uid, what in ((big_cpu, "max_cpu_cores"), (big_mem, "max_memory_gb"), (big_sto, "max_storage_gb")):
            with self.subTest(what=what):
                e = self.assertMgmtError(self.add(p["pool_id"], {"node_id": uid}), 400, "LUCID_ERR_5004")
                self.assertIn(what, e["message"])
                self.assertIsNone(self.node(uid)["pool_id"])
        self.assertEqual(self.pool_now(p["pool_id"])["node_count"], 1)
        # Exactly at every limit is allowed; a node without hardware adds nothing.
        self.assertEqual(self.added(p["pool_id"], fits)["node_count"], 2)
        self.assertEqual(self.added(p["pool_id"], bare)["node_count"], 3)
        # Growing a member's hardware past the pool's limits is refused too.
        before = self.node(bare)
        e = self.assertMgmtError(self.put("/api/v1/nodes/" + bare, {"hardware_info": {"cpu_cores": 1}}), 400,
                                 "LUCID_ERR_5004")
        self.assertIn("max_cpu_cores", e["message"])
        self.assertEqual(self.node(bare), before)
        # Shrinking one is fine.
        r = self.put("/api/v1/nodes/" + a, {"hardware_info": {"cpu_cores": 5, "memory_gb": 16, "storage_gb": 400}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.put("/api/v1/nodes/" + bare, {"hardware_info": {"cpu_cores": 1}}).status, 200)
        # Creating a node straight into the pool checks the limits too; a refusal creates nothing.
        self.assertMgmtError(self.post("/api/v1/nodes", {"name": "pr-over", "hardware_info": {"cpu_cores": 1},
                                                         "pool_id": p["pool_id"]}), 400, "LUCID_ERR_5004")
        self.assertEqual(self.pool_now(p["pool_id"])["node_count"], 3)
        self.assertIsNone(mgmt_create(self.server, self.admin, {"name": "pr-over"})["pool_id"])

    def test_concurrent_adds_respect_max_nodes(self):
        p = self.pool({"name": "pool-race", "max_nodes": 3})
        uids = [mgmt_create(self.server, self.admin, {"name": "prc-%d" % i})["node_id"] for i in range(10)]
        results = {}

        def add(uid):
            results[uid] = self.add(p["pool_id"], {"node_id": uid})

        threads = [threading.Thread(target=add, args=(u,)) for u in uids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok = [u for u in uids if results[u].status == 200]
        self.assertEqual(len(ok), 3, {u: r.status for u, r in results.items()})
        for u in uids:
            if u not in ok:
                self.assertMgmtError(results[u], 400, "LUCID_ERR_5004")
        self.assertEqual(self.pool_now(p["pool_id"])["node_count"], 3)
        members = [n["node_id"] for n in self.get("/api/v1/nodes?pool_id=" + p["pool_id"]).json()["nodes"]]
        self.assertEqual(sorted(members), sorted(ok))

    def test_move_node_between_pools(self):
        pa = self.pool({"name": "pool-move-a"})
        pb = self.pool({"name": "pool-move-b"})
        x = mgmt_create(self.server, self.admin, {"name": "pmv-x", "pool_id": pa["pool_id"]})["node_id"]
        y = mgmt_create(self.server, self.admin, {"name": "pmv-y", "pool_id": pa["pool_id"]})["node_id"]
        self.assertEqual(self.pool_now(pa["pool_id"])["node_count"], 2)
        got = self.added(pb["pool_id"], x, priority=20)
        self.assertEqual(got["node_count"], 1)
        self.assertEqual(self.pool_now(pa["pool_id"])["node_count"], 1)
        self.assertEqual(self.pool_now(pb["pool_id"])["node_count"], 1)
        n = self.node(x)
        self.assertEqual((n["pool_id"], n["pool_priority"]), (pb["pool_id"], 20))
        ids = lambda pool: [v["node_id"] for v in self.get("/api/v1/nodes?pool_id=" + pool).json()["nodes"]]
        self.assertEqual(ids(pa["pool_id"]), [y])
        self.assertEqual(ids(pb["pool_id"]), [x])
        # And back: a move into a pool at its max_nodes is refused and x stays in B.
        pc = self.pool({"name": "pool-move-c", "max_nodes": 1})
        self.added(pc["pool_id"], y)
        self.assertEqual(self.pool_now(pa["pool_id"])["node_count"], 0)
        self.assertMgmtError(self.add(pc["pool_id"], {"node_id": x}), 400, "LUCID_ERR_5004")
        self.assertEqual(self.node(x)["pool_id"], pb["pool_id"])
        self.assertEqual(self.pool_now(pb["pool_id"])["node_count"], 1)
        self.assertEqual(ids(pc["pool_id"]), [y])

    def test_pool_updated_at_moves_when_a_member_is_added(self):
        p = self.pool({"name": "pool-touch"})
        uid = mgmt_create(self.server, self.admin, {"name": "pt-node"})["node_id"]
        self.server.advance_clock(5, self.admin)
        got = self.added(p["pool_id"], uid)
        self.assertEqual(got["created_at"], p["created_at"])
        self.assertGreater(got["updated_at"], p["updated_at"])


if __name__ == "__main__":
    unittest.main()
