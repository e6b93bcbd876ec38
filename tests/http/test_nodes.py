"""node-registration.md: node list and detail, quotas, quota status, sites, backups."""
import math
import unittest

from lucidtest import ServerTestCase

GIB = 1024 ** 3
TIME_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"
NODE_RESPONSE_KEYS = {"id", "uuid", "hostname", "ip_address", "status", "is_master", "storage_quota_gb",
                      "storage_used_bytes", "health", "last_seen", "created_at", "approved_at"}
SAMPLE_KEYS = {"cpu_usage", "disk_usage", "active_backups", "memory_percent", "uptime_seconds", "timestamp"}
BACKUP_KEYS = {"id", "site_id", "site_name", "filename", "size_bytes", "size_gb", "s3_path", "created_at",
               "backup_type", "status", "storage_provider"}
SITE_KEYS = {"id", "site_name", "used_bytes", "used_gb", "quota_gb", "updated_at"}


def gib(x):
    """Bytes for x GiB, rounded up so that x GiB / quota is not a hair under."""
    return int(math.ceil(x * GIB))


class NodeViews(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s, admin = cls.server, cls.admin
        # alpha: active, 12 stats reports, 3 sites, 3 backups.
        cls.alpha, cls.alpha_key = s.join_and_approve("alpha.example.com", admin)
        for i in range(12):
            extra = {"uptime_seconds": 1000 + i}
            if i % 2 == 0:
                extra["memory_percent"] = 40 + i
            if i == 9:
                extra["disk_total_gb"] = 500
            r = s.report(cls.alpha_key, cpu_usage=i * 5, disk_usage=i + 0.5, active_backups=i % 3, **extra)
            assert r.status == 200, r
        cls.alpha_sites = [("example.com", gib(5.2), 15), ("blog.example.com", gib(4.1), 10),
                           ("shop.example.com", gib(3.2), 4)]
        r = s.request("POST", "/api/v1/stats/sites",
                      {"sites": [{"site_name": n, "used_bytes": b, "quota_gb": q} for n, b, q in cls.alpha_sites]},
                      headers={"X-API-KEY": cls.alpha_key})
        assert r.status == 200, r
        cls.site_ids = {x["site_name"]: x["id"] for x in r.json()["sites"]}
        cls.backups = []
        for body in (
            {"site_name": "example.com", "filename": "example.com_20251227_082133.tar.zst", "size_bytes": 3612358215,
             "s3_path": "s3://bucket/example.com_20251227_082133.tar.zst", "created_at": "2025-12-27T08:22:04.588990Z",
             "backup_type": "full", "status": "SUCCESS", "storage_provider": "iDrive E2 Shared"},
            {"site_name": "blog.example.com", "filename": "blog_1.tar.zst", "size_bytes": 1000,
             "created_at": "2025-12-28T00:00:00Z", "backup_type": "incremental", "status": "FAILED"},
            {"filename": "system.tar.zst", "size_bytes": 0, "created_at": "2025-12-29T00:00:00Z",
             "backup_type": "differential", "status": "RUNNING"},
        ):
            r = s.request("POST", "/api/v1/stats/backups", body, headers={"X-API-KEY": cls.alpha_key})
            assert r.status == 201, r
            cls.backups.append(r.json())
        # pending: never approved.
        cls.pending = int(s.join("pending.example.com", ip_address="10.0.0.5")["request_id"])
        # cold: active, never reported.
        cls.cold, cls.cold_key = s.join_and_approve("cold.example.com", admin)
        # quota: active, sites around the thresholds, node quota 10 GB.
        cls.qnode, cls.qkey = s.join_and_approve("quota.example.com", admin)
        r = s.request("POST", "/api/v1/stats/sites", {"sites": [
            {"site_name": "exact80.example", "used_bytes": 4 * GIB, "quota_gb": 5},
            {"site_name": "over.example", "used_bytes": 5 * GIB, "quota_gb": 4},
            {"site_name": "full.example", "used_bytes": 2 * GIB, "quota_gb": 2},
            {"site_name": "noquota.example", "used_bytes": 1 * GIB},
            {"site_name": "under.example", "used_bytes": 0, "quota_gb": 1},
        ]}, headers={"X-API-KEY": cls.qkey})
        assert r.status == 200, r
        r = s.request("PUT", "/api/v1/nodes/%d/quota" % cls.qnode, {"storage_quota_gb": 10}, token=admin)
        assert r.status == 200, r
        # editable: for quota updates.
        cls.editable, _ = s.join_and_approve("editable.example.com", admin)
        cls.all_ids = [cls.alpha, cls.pending, cls.cold, cls.qnode, cls.editable]

    def get(self, path, token=None):
        return self.server.request("GET", path, token=token or self.admin)

    # ---- GET /nodes/ ----

    def test_list_includes_pending_ordered_by_id(self):
        r = self.get("/api/v1/nodes/")
        self.assertEqual(r.status, 200, r)
        nodes = r.json()
        self.assertIsInstance(nodes, list)
        self.assertEqual([n["id"] for n in nodes], self.all_ids)
        self.assertEqual([n["status"] for n in nodes], ["active", "pending", "active", "active", "active"])
        for n in nodes:
            self.assertEqual(set(n), NODE_RESPONSE_KEYS | {"stats"}, n)
            self.assertNotIn("api_key", n)

    def test_list_stats_is_the_newest_sample_only(self):
        nodes = {n["id"]: n for n in self.get("/api/v1/nodes/").json()}
        a = nodes[self.alpha]
        self.assertEqual(len(a["stats"]), 1)
        st = a["stats"][0]
        self.assertEqual(set(st), SAMPLE_KEYS)
        self.assertEqual(st["cpu_usage"], 55)
        self.assertEqual(st["disk_usage"], 11.5)
        self.assertEqual(st["active_backups"], 2)
        self.assertIsNone(st["memory_percent"])  # the 12th report had none
        self.assertEqual(st["uptime_seconds"], 1011)
        self.assertRegex(st["timestamp"], TIME_RE)
        self.assertEqual(a["health"], "online")
        self.assertRegex(a["last_seen"], TIME_RE)
        self.assertEqual(a["storage_used_bytes"], sum(b for _, b, _ in self.alpha_sites))
        self.assertEqual(nodes[self.pending]["stats"], [])
        self.assertEqual(nodes[self.pending]["health"], "offline")
        self.assertIsNone(nodes[self.pending]["approved_at"])
        self.assertEqual(nodes[self.cold]["stats"], [])
        self.assertEqual(nodes[self.cold]["health"], "offline")
        self.assertIsNone(nodes[self.cold]["last_seen"])

    def test_list_any_fleet_role_may_read(self):
        # the document's "All Users" are the fleet's staff: viewer and up (a
        # self-service account from the gateway's sign-up is refused)
        self.assertDetail(self.get("/api/v1/nodes/", token=self.server.token("user")), 403)
        for role in ("viewer", "node_operator", "admin"):
            with self.subTest(role=role):
                r = self.get("/api/v1/nodes/", token=self.server.token(role))
                self.assertEqual(r.status, 200, r)
                self.assertEqual(len(r.json()), len(self.all_ids))

    def test_list_skip_and_limit(self):
        ids = self.all_ids
        cases = {"?limit=1": ids[:1], "?skip=1&limit=2": ids[1:3], "?skip=4": ids[4:], "?skip=5": [],
                 "?skip=1000000": [], "?limit=5000": ids, "?skip=0&limit=1": ids[:1]}
        for q, want in cases.items():
            with self.subTest(q=q):
                r = self.get("/api/v1/nodes/" + q)
                self.assertEqual(r.status, 200, r)
                self.assertEqual([n["id"] for n in r.json()], want)

    def test_list_bad_paging_422(self):
        for q, field in (("limit=0", "limit"), ("limit=5001", "limit"), ("limit=-1", "limit"),
                         ("limit=abc", "limit"), ("limit=", "limit"), ("limit=1.5", "limit"),
                         ("limit=99999999999999999999", "limit"), ("skip=-1", "skip"), ("skip=x", "skip"),
                         ("skip=1000000001", "skip")):
            with self.subTest(q=q):
                self.assertValidation(self.get("/api/v1/nodes/?" + q), field, where="query")

    # ---- GET /nodes/{id} ----

    def test_detail_fields(self):
        r = self.get("/api/v1/nodes/%d" % self.alpha)
        self.assertEqual(r.status, 200, r)
        n = r.json()
        self.assertEqual(set(n), NODE_RESPONSE_KEYS | {"system_info", "total_available_gb", "storage_used_gb",
                                                       "sites_count", "backups_count", "stats"})
        self.assertEqual(n["id"], self.alpha)
        self.assertEqual(n["hostname"], "alpha.example.com")
        self.assertEqual(n["status"], "active")
        self.assertEqual(n["health"], "online")
        self.assertEqual(n["total_available_gb"], 500)
        self.assertEqual(n["storage_used_gb"], 12.5)
        self.assertEqual(n["storage_used_bytes"], sum(b for _, b, _ in self.alpha_sites))
        self.assertEqual(n["sites_count"], 3)
        self.assertEqual(n["backups_count"], 3)
        self.assertNotIn("api_key", n)

    def test_detail_stats_ten_newest_first(self):
        n = self.get("/api/v1/nodes/%d" % self.alpha).json()
        self.assertEqual(len(n["stats"]), 10)
        self.assertEqual([s["cpu_usage"] for s in n["stats"]], [i * 5 for i in range(11, 1, -1)])
        self.assertEqual([s["uptime_seconds"] for s in n["stats"]], [1000 + i for i in range(11, 1, -1)])
        self.assertEqual([s["memory_percent"] for s in n["stats"]],
                         [40 + i if i % 2 == 0 else None for i in range(11, 1, -1)])
        for s in n["stats"]:
            self.assertEqual(set(s), SAMPLE_KEYS)

    def test_detail_of_pending_and_cold_nodes(self):
        p = self.get("/api/v1/nodes/%d" % self.pending).json()
        self.assertEqual(p["status"], "pending")
        self.assertEqual(p["ip_address"], "10.0.0.5")
        self.assertEqual(p["stats"], [])
        self.assertEqual(p["total_available_gb"], 0)  # a number, none reported (issue 15)
        self.assertEqual(p["storage_used_gb"], 0)
        self.assertEqual(p["sites_count"], 0)
        self.assertEqual(p["backups_count"], 0)
        c = self.get("/api/v1/nodes/%d" % self.cold).json()
        self.assertEqual(c["health"], "offline")
        self.assertEqual(c["stats"], [])
        self.assertIsNone(c["last_seen"])

    def test_detail_unknown_404(self):
        for nid in ("999999", "0", "-1", "abc", "1.0", "99999999999999999999"):
            with self.subTest(nid=nid):
                self.assertEqual(self.assertDetail(self.get("/api/v1/nodes/" + nid), 404), "Node not found")

    # ---- PUT /nodes/{id}/quota ----

    def put_quota(self, nid, body):
        return self.server.request("PUT", "/api/v1/nodes/%s/quota" % nid, body, token=self.admin)

    def test_put_quota(self):
        r = self.put_quota(self.editable, {"storage_quota_gb": 200})
        self.assertEqual(r.status, 200, r)
        n = r.json()
        self.assertTrue({"id", "hostname", "uuid", "status", "storage_quota_gb", "storage_used_bytes"} <= set(n))
        self.assertEqual(n["id"], self.editable)
        self.assertEqual(n["hostname"], "editable.example.com")
        self.assertEqual(n["status"], "active")
        self.assertEqual(n["storage_quota_gb"], 200)
        self.assertEqual(n["storage_used_bytes"], 0)
        self.assertEqual(self.get("/api/v1/nodes/%d" % self.editable).json()["storage_quota_gb"], 200)
        self.assertEqual(self.get("/api/v1/nodes/%d/quota/status" % self.editable).json()["quota_gb"], 200)
        for q in (0.5, 1000000, 123.25):
            with self.subTest(q=q):
                r = self.put_quota(self.editable, {"storage_quota_gb": q})
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["storage_quota_gb"], q)
        listed = {n["id"]: n for n in self.get("/api/v1/nodes/").json()}
        self.assertEqual(listed[self.editable]["storage_quota_gb"], 123.25)

    def test_put_quota_invalid_422(self):
        for v in (0, -1, -0.0, 1000000.5, 1e7, 1e308, "100", True, [1], {"gb": 1}):
            with self.subTest(v=v):
                d = self.assertValidation(self.put_quota(self.editable, {"storage_quota_gb": v}),
                                          "storage_quota_gb")
                self.assertEqual(d[0]["type"], "value_error")
        for body in ({}, {"storage_quota_gb": None}, {"quota_gb": 5}):
            with self.subTest(body=body):
                d = self.assertValidation(self.put_quota(self.editable, body), "storage_quota_gb")
                self.assertEqual(d[0]["type"], "value_error.missing")

    def test_put_quota_unknown_node_404(self):
        for nid in ("999999", "0", "abc"):
            with self.subTest(nid=nid):
                self.assertEqual(self.assertDetail(self.put_quota(nid, {"storage_quota_gb": 5}), 404),
                                 "Node not found")

    # ---- GET /nodes/{id}/quota/status ----

    def test_quota_status_document_example(self):
        r = self.get("/api/v1/nodes/%d/quota/status" % self.alpha)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {
            "node_id": self.alpha, "hostname": "alpha.example.com", "used_gb": 12.5, "quota_gb": 100,
            "usage_percent": 12.5, "is_over_quota": False, "sites_count": 3, "sites_over_quota": 0,
            "sites_warning": 1,
            "sites_breakdown": [
                {"site_id": self.site_ids["example.com"], "site_name": "example.com", "used_gb": 5.2,
                 "quota_gb": 15, "usage_percent": 34.7, "is_over_quota": False, "is_warning": False},
                {"site_id": self.site_ids["blog.example.com"], "site_name": "blog.example.com", "used_gb": 4.1,
                 "quota_gb": 10, "usage_percent": 41.0, "is_over_quota": False, "is_warning": False},
                {"site_id": self.site_ids["shop.example.com"], "site_name": "shop.example.com", "used_gb": 3.2,
                 "quota_gb": 4, "usage_percent": 80.0, "is_over_quota": False, "is_warning": True},
            ]})

    def test_quota_status_thresholds_and_over_quota(self):
        st = self.get("/api/v1/nodes/%d/quota/status" % self.qnode).json()
        self.assertEqual(st["used_gb"], 12.0)
        self.assertEqual(st["quota_gb"], 10)
        self.assertEqual(st["usage_percent"], 120.0)
        self.assertIs(st["is_over_quota"], True)
        self.assertEqual(st["sites_count"], 5)
        self.assertEqual(st["sites_over_quota"], 1)
        self.assertEqual(st["sites_warning"], 2)
        rows = {s["site_name"]: s for s in st["sites_breakdown"]}
        self.assertEqual([s["site_name"] for s in st["sites_breakdown"]],
                         ["exact80.example", "over.example", "full.example", "noquota.example", "under.example"])
        expect = {  # used_gb, quota_gb, usage_percent, over, warning
            "exact80.example": (4.0, 5, 80.0, False, True),
            "over.example": (5.0, 4, 125.0, True, False),
            "full.example": (2.0, 2, 100.0, False, True),
            "noquota.example": (1.0, None, None, False, False),
            "under.example": (0.0, 1, 0.0, False, False),
        }
        for name, (used, quota, pct, over, warn) in expect.items():
            with self.subTest(site=name):
                row = rows[name]
                self.assertEqual(set(row), {"site_id", "site_name", "used_gb", "quota_gb", "usage_percent",
                                            "is_over_quota", "is_warning"})
                self.assertEqual((row["used_gb"], row["quota_gb"], row["usage_percent"], row["is_over_quota"],
                                  row["is_warning"]), (used, quota, pct, over, warn))

    def test_quota_status_of_node_without_sites(self):
        st = self.get("/api/v1/nodes/%d/quota/status" % self.cold).json()
        self.assertEqual(st, {"node_id": self.cold, "hostname": "cold.example.com", "used_gb": 0.0,
                              "quota_gb": 100, "usage_percent": 0.0, "is_over_quota": False, "sites_count": 0,
                              "sites_over_quota": 0, "sites_warning": 0, "sites_breakdown": []})

    def test_quota_status_unknown_404(self):
        for nid in ("999999", "abc"):
            with self.subTest(nid=nid):
                self.assertEqual(self.assertDetail(self.get("/api/v1/nodes/%s/quota/status" % nid), 404),
                                 "Node not found")

    # ---- GET /nodes/{id}/sites ----

    def test_sites(self):
        r = self.get("/api/v1/nodes/%d/sites" % self.alpha)
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(set(body), {"sites", "total"})
        self.assertEqual(body["total"], 3)
        self.assertEqual([s["site_name"] for s in body["sites"]], [n for n, _, _ in self.alpha_sites])
        for s, (name, used, quota) in zip(body["sites"], self.alpha_sites):
            self.assertEqual(set(s), SITE_KEYS)
            self.assertEqual(s["id"], self.site_ids[name])
            self.assertEqual(s["used_bytes"], used)
            self.assertEqual(s["used_gb"], round(used / GIB, 2))
            self.assertEqual(s["quota_gb"], quota)
            self.assertRegex(s["updated_at"], TIME_RE)
        nq = [s for s in self.get("/api/v1/nodes/%d/sites" % self.qnode).json()["sites"]
              if s["site_name"] == "noquota.example"]
        self.assertIsNone(nq[0]["quota_gb"])

    def test_sites_paging(self):
        r = self.get("/api/v1/nodes/%d/sites?skip=1&limit=1" % self.alpha).json()
        self.assertEqual([s["site_name"] for s in r["sites"]], ["blog.example.com"])
        self.assertEqual(r["total"], 3)
        r = self.get("/api/v1/nodes/%d/sites?skip=3" % self.alpha).json()
        self.assertEqual(r, {"sites": [], "total": 3})
        self.assertEqual(self.get("/api/v1/nodes/%d/sites" % self.cold).json(), {"sites": [], "total": 0})
        for q in ("limit=0", "limit=1001", "limit=x"):
            with self.subTest(q=q):
                self.assertValidation(self.get("/api/v1/nodes/%d/sites?%s" % (self.alpha, q)), "limit", "query")
        self.assertValidation(self.get("/api/v1/nodes/%d/sites?skip=-5" % self.alpha), "skip", "query")

    def test_sites_unknown_node_404(self):
        self.assertEqual(self.assertDetail(self.get("/api/v1/nodes/999999/sites"), 404), "Node not found")
        self.assertDetail(self.get("/api/v1/nodes/abc/sites"), 404)

    # ---- GET /nodes/{id}/backups ----

    def test_backups_newest_first_with_document_fields(self):
        r = self.get("/api/v1/nodes/%d/backups" % self.alpha)
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(set(body), {"backups", "total"})
        self.assertEqual(body["total"], 3)
        self.assertEqual([b["filename"] for b in body["backups"]],
                         ["system.tar.zst", "blog_1.tar.zst", "example.com_20251227_082133.tar.zst"])
        for b in body["backups"]:
            self.assertEqual(set(b), BACKUP_KEYS)
        doc = body["backups"][2]
        self.assertEqual(doc["site_id"], self.site_ids["example.com"])
        self.assertEqual(doc["site_name"], "example.com")
        self.assertEqual(doc["size_bytes"], 3612358215)
        self.assertEqual(doc["size_gb"], 3.36)
        self.assertEqual(doc["s3_path"], "s3://bucket/example.com_20251227_082133.tar.zst")
        self.assertEqual(doc["created_at"][:26], "2025-12-27T08:22:04.588990")
        self.assertEqual(doc["backup_type"], "full")
        self.assertEqual(doc["status"], "SUCCESS")
        self.assertEqual(doc["storage_provider"], "iDrive E2 Shared")
        self.assertEqual(doc, self.backups[0])
        sysb = body["backups"][0]
        self.assertIsNone(sysb["site_id"])
        self.assertIsNone(sysb["site_name"])
        self.assertEqual((sysb["backup_type"], sysb["status"], sysb["size_gb"]), ("differential", "RUNNING", 0))

    def test_backups_filter_by_site_and_paging(self):
        sid = self.site_ids["blog.example.com"]
        r = self.get("/api/v1/nodes/%d/backups?site_id=%d" % (self.alpha, sid)).json()
        self.assertEqual(r["total"], 1)
        self.assertEqual([b["filename"] for b in r["backups"]], ["blog_1.tar.zst"])
        r = self.get("/api/v1/nodes/%d/backups?site_id=999999" % self.alpha).json()
        self.assertEqual(r, {"backups": [], "total": 0})
        r = self.get("/api/v1/nodes/%d/backups?skip=1&limit=1" % self.alpha).json()
        self.assertEqual([b["filename"] for b in r["backups"]], ["blog_1.tar.zst"])
        self.assertEqual(r["total"], 3)
        r = self.get("/api/v1/nodes/%d/backups?limit=500" % self.alpha)
        self.assertEqual(r.status, 200, r)
        # Another node's site id filters to nothing.
        qsite = self.get("/api/v1/nodes/%d/sites" % self.qnode).json()["sites"][0]["id"]
        r = self.get("/api/v1/nodes/%d/backups?site_id=%d" % (self.alpha, qsite)).json()
        self.assertEqual(r, {"backups": [], "total": 0})

    def test_backups_bad_query_422(self):
        for q, field in (("limit=0", "limit"), ("limit=501", "limit"), ("limit=z", "limit"), ("skip=-1", "skip"),
                         ("site_id=0", "site_id"), ("site_id=-2", "site_id"), ("site_id=abc", "site_id"),
                         ("site_id=", "site_id")):
            with self.subTest(q=q):
                self.assertValidation(self.get("/api/v1/nodes/%d/backups?%s" % (self.alpha, q)), field, "query")

    def test_backups_unknown_node_404(self):
        self.assertEqual(self.assertDetail(self.get("/api/v1/nodes/999999/backups"), 404), "Node not found")
        self.assertDetail(self.get("/api/v1/nodes/x/backups"), 404)


if __name__ == "__main__":
    unittest.main()
