"""Agent reporting (X-API-KEY): stats, sites, backups; ingest and validation."""
import unittest

from lucidtest import ServerTestCase

TIME_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"
GIB = 1024 ** 3


class AgentBase(ServerTestCase):
    _n = 0

    def new_node(self):
        AgentBase._n += 1
        return self.server.join_and_approve("agent-%d.example.com" % AgentBase._n, self.admin)

    def post(self, path, body, key):
        return self.server.request("POST", path, body, headers={"X-API-KEY": key})

    def node(self, nid):
        r = self.server.request("GET", "/api/v1/nodes/%d" % nid, token=self.admin)
        assert r.status == 200, r
        return r.json()

    def listed(self, nid):
        return {n["id"]: n for n in self.server.request("GET", "/api/v1/nodes/", token=self.admin).json()}[nid]


class Stats(AgentBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.nid, cls.key = cls.server.join_and_approve("stats.example.com", cls.admin)

    def stats(self, **fields):
        body = {"cpu_usage": 10, "disk_usage": 20, "active_backups": 0}
        body.update(fields)
        body = {k: v for k, v in body.items() if v is not ...}
        return self.post("/api/v1/stats/", body, self.key)

    def test_report_ok_and_visible_at_once(self):
        nid, key = self.new_node()
        r = self.post("/api/v1/stats/", {"cpu_usage": 12.5, "disk_usage": 51.5, "active_backups": 1,
                                         "memory_percent": 72.8, "uptime_seconds": 447000, "disk_total_gb": 931.5},
                      key)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"status": "ok"})
        n = self.listed(nid)
        self.assertEqual(n["health"], "online")
        self.assertRegex(n["last_seen"], TIME_RE)
        s = n["stats"][0]
        self.assertEqual((s["cpu_usage"], s["disk_usage"], s["active_backups"], s["memory_percent"],
                          s["uptime_seconds"]), (12.5, 51.5, 1, 72.8, 447000))
        self.assertEqual(s["timestamp"], n["last_seen"])
        d = self.node(nid)
        self.assertEqual(d["total_available_gb"], 931.5)
        self.assertEqual(d["stats"][0]["cpu_usage"], 12.5)
        self.assertEqual(d["health"], "online")

    def test_optional_fields_absent_or_null(self):
        nid, key = self.new_node()
        r = self.post("/api/v1/stats/", {"cpu_usage": 1, "disk_usage": 2, "active_backups": 3,
                                         "memory_percent": None, "uptime_seconds": None, "disk_total_gb": None},
                      key)
        self.assertEqual(r.status, 200, r)
        s = self.listed(nid)["stats"][0]
        self.assertIsNone(s["memory_percent"])
        self.assertIsNone(s["uptime_seconds"])
        self.assertEqual(self.node(nid)["total_available_gb"], 0)  # a number, none reported (issue 15)

    def test_stats_go_to_the_keys_node(self):
        a, ka = self.new_node()
        b, kb = self.new_node()
        self.post("/api/v1/stats/", {"cpu_usage": 77, "disk_usage": 1, "active_backups": 0}, kb)
        self.assertEqual(self.listed(a)["stats"], [])
        self.assertEqual(self.listed(a)["health"], "offline")
        self.assertEqual(self.listed(b)["stats"][0]["cpu_usage"], 77)

    def test_boundaries_accepted(self):
        for fields in ({"cpu_usage": 0, "disk_usage": 0, "memory_percent": 0, "uptime_seconds": 0},
                       {"cpu_usage": 100, "disk_usage": 100, "memory_percent": 100, "active_backups": 1000000},
                       {"cpu_usage": 99.999, "disk_total_gb": 0, "uptime_seconds": 10000000000},
                       {"active_backups": 3.0}):
            with self.subTest(fields=fields):
                self.assertEqual(self.stats(**fields).status, 200)
        self.assertEqual(self.listed(self.nid)["stats"][0]["active_backups"], 3)

    def test_out_of_range_422(self):
        cases = [("cpu_usage", -0.01), ("cpu_usage", 100.01), ("cpu_usage", -1e308), ("disk_usage", -1),
                 ("disk_usage", 101), ("active_backups", -1), ("active_backups", 1000001),
                 ("memory_percent", -1), ("memory_percent", 100.5), ("uptime_seconds", -1),
                 ("uptime_seconds", 10000000001), ("disk_total_gb", -1), ("disk_total_gb", 1e10)]
        for field, v in cases:
            with self.subTest(field=field, v=v):
                d = self.assertValidation(self.stats(**{field: v}), field)
                self.assertEqual(d[0]["type"], "value_error")

    def test_wrong_types_422(self):
        cases = [("cpu_usage", "10"), ("cpu_usage", True), ("cpu_usage", [1]), ("disk_usage", {}),
                 ("active_backups", 1.5), ("active_backups", "1"), ("active_backups", 2 ** 63),
                 ("active_backups", -2 ** 63 - 1), ("uptime_seconds", 1.5), ("uptime_seconds", "x"),
                 ("memory_percent", "50"), ("disk_total_gb", False)]
        for field, v in cases:
            with self.subTest(field=field, v=v):
                self.assertValidation(self.stats(**{field: v}), field)

    def test_missing_required_422(self):
        for field in ("cpu_usage", "disk_usage", "active_backups"):
            for v in (..., None):
                with self.subTest(field=field, v=v):
                    d = self.assertValidation(self.stats(**{field: v}), field)
                    self.assertEqual(d[0]["type"], "value_error.missing")
                    self.assertEqual(d[0]["msg"], "field required")

    def test_rejected_report_leaves_no_sample(self):
        nid, key = self.new_node()
        self.assertEqual(self.post("/api/v1/stats/", {"cpu_usage": 101, "disk_usage": 1, "active_backups": 0},
                                   key).status, 422)
        self.assertEqual(self.listed(nid)["stats"], [])
        self.assertEqual(self.listed(nid)["health"], "offline")
        self.assertEqual(self.node(nid)["stats"], [])

    def test_auth_errors_401(self):
        body = {"cpu_usage": 1, "disk_usage": 1, "active_backups": 0}
        r = self.server.request("POST", "/api/v1/stats/", body)
        self.assertEqual(self.assertDetail(r, 401), "Missing X-API-KEY header")
        self.assertEqual(r.headers.get("www-authenticate"), "Bearer")
        r = self.server.request("POST", "/api/v1/stats/", body, headers={"X-API-KEY": "lnk_wrong"})
        self.assertEqual(self.assertDetail(r, 401), "Invalid API key")
        r = self.server.request("POST", "/api/v1/stats/", body, token=self.admin)
        self.assertDetail(r, 401)
        # Header names are case-insensitive.
        r = self.server.request("POST", "/api/v1/stats/", body, headers={"x-api-key": self.key})
        self.assertEqual(r.status, 200, r)
        # Auth comes before body validation: a bad body with no key is still 401.
        r = self.server.request("POST", "/api/v1/stats/", body="{bad")
        self.assertDetail(r, 401)


class Sites(AgentBase):
    def sites(self, key, sites):
        return self.post("/api/v1/stats/sites", {"sites": sites}, key)

    def test_report_and_upsert_by_name(self):
        nid, key = self.new_node()
        r = self.sites(key, [{"site_name": "a.example", "used_bytes": 100, "quota_gb": 5},
                             {"site_name": "b.example", "used_bytes": 2 * GIB}])
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["total"], 2)
        self.assertEqual([s["site_name"] for s in body["sites"]], ["a.example", "b.example"])
        a, b = body["sites"]
        self.assertEqual(set(a), {"id", "site_name", "used_bytes", "used_gb", "quota_gb", "updated_at"})
        self.assertEqual((a["used_bytes"], a["used_gb"], a["quota_gb"]), (100, 0.0, 5))
        self.assertEqual((b["used_bytes"], b["used_gb"], b["quota_gb"]), (2 * GIB, 2.0, None))
        self.assertRegex(a["updated_at"], TIME_RE)
        # Upsert: a's usage changes, its quota stays when omitted or null; c is new; b untouched.
        r = self.sites(key, [{"site_name": "a.example", "used_bytes": 300},
                             {"site_name": "c.example", "used_bytes": 0, "quota_gb": 1}])
        body = r.json()
        self.assertEqual(body["total"], 3)
        rows = {s["site_name"]: s for s in body["sites"]}
        self.assertEqual(rows["a.example"]["id"], a["id"])
        self.assertEqual(rows["a.example"]["used_bytes"], 300)
        self.assertEqual(rows["a.example"]["quota_gb"], 5)
        self.assertEqual(rows["b.example"]["used_bytes"], 2 * GIB)
        self.sites(key, [{"site_name": "a.example", "used_bytes": 301, "quota_gb": None}])
        self.sites(key, [{"site_name": "b.example", "used_bytes": 5, "quota_gb": 7.5}])
        listed = self.server.request("GET", "/api/v1/nodes/%d/sites" % nid, token=self.admin).json()
        rows = {s["site_name"]: s for s in listed["sites"]}
        self.assertEqual(listed["total"], 3)
        self.assertEqual((rows["a.example"]["used_bytes"], rows["a.example"]["quota_gb"]), (301, 5))
        self.assertEqual((rows["b.example"]["used_bytes"], rows["b.example"]["quota_gb"]), (5, 7.5))
        d = self.node(nid)
        self.assertEqual(d["sites_count"], 3)
        self.assertEqual(d["storage_used_bytes"], 301 + 5 + 0)

    def test_empty_report_returns_existing_sites(self):
        nid, key = self.new_node()
        self.assertEqual(self.sites(key, []).json(), {"sites": [], "total": 0})
        self.sites(key, [{"site_name": "x.example", "used_bytes": 1}])
        body = self.sites(key, []).json()
        self.assertEqual(body["total"], 1)
        self.assertEqual(body["sites"][0]["site_name"], "x.example")

    def test_sites_are_per_node(self):
        a, ka = self.new_node()
        b, kb = self.new_node()
        self.sites(ka, [{"site_name": "shared.example", "used_bytes": 10}])
        r = self.sites(kb, [{"site_name": "shared.example", "used_bytes": 20}])
        self.assertEqual(r.json()["total"], 1)
        sa = self.server.request("GET", "/api/v1/nodes/%d/sites" % a, token=self.admin).json()["sites"]
        sb = self.server.request("GET", "/api/v1/nodes/%d/sites" % b, token=self.admin).json()["sites"]
        self.assertEqual(sa[0]["used_bytes"], 10)
        self.assertEqual(sb[0]["used_bytes"], 20)
        self.assertNotEqual(sa[0]["id"], sb[0]["id"])

    def test_site_name_with_unicode_is_kept(self):
        nid, key = self.new_node()
        r = self.sites(key, [{"site_name": "bücher.example", "used_bytes": 1}])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["sites"][0]["site_name"], "bücher.example")

    def test_invalid_reports_422(self):
        nid, key = self.new_node()
        post = lambda body: self.post("/api/v1/stats/sites", body, key)
        d = self.assertValidation(post({}), "sites")
        self.assertEqual(d[0]["type"], "value_error.missing")
        self.assertValidation(post({"sites": None}), "sites")
        for v in ("a", 1, {"site_name": "a", "used_bytes": 1}):
            with self.subTest(sites=v):
                self.assertValidation(post({"sites": v}), "sites")
        for v in ([1], ["a"], [None], [[]]):
            with self.subTest(sites=v):
                d = self.assertValidation(post({"sites": v}))
                self.assertEqual(d[0]["loc"], ["body", "sites", 0])
        bad = [
            ({"used_bytes": 1}, "site_name"),
            ({"site_name": None, "used_bytes": 1}, "site_name"),
            ({"site_name": 5, "used_bytes": 1}, "site_name"),
            ({"site_name": "", "used_bytes": 1}, "site_name"),
            ({"site_name": "x" * 254, "used_bytes": 1}, "site_name"),
            ({"site_name": "a\u0000b", "used_bytes": 1}, "site_name"),
            ({"site_name": "a\nb", "used_bytes": 1}, "site_name"),
            ({"site_name": "ok.example"}, "used_bytes"),
            ({"site_name": "ok.example", "used_bytes": None}, "used_bytes"),
            ({"site_name": "ok.example", "used_bytes": -1}, "used_bytes"),
            ({"site_name": "ok.example", "used_bytes": "1"}, "used_bytes"),
            ({"site_name": "ok.example", "used_bytes": 1.5}, "used_bytes"),
            ({"site_name": "ok.example", "used_bytes": 10 ** 18 + 1}, "used_bytes"),
            ({"site_name": "ok.example", "used_bytes": 2 ** 64}, "used_bytes"),
            ({"site_name": "ok.example", "used_bytes": 1, "quota_gb": 0}, "quota_gb"),
            ({"site_name": "ok.example", "used_bytes": 1, "quota_gb": -5}, "quota_gb"),
            ({"site_name": "ok.example", "used_bytes": 1, "quota_gb": 1000001}, "quota_gb"),
            ({"site_name": "ok.example", "used_bytes": 1, "quota_gb": "5"}, "quota_gb"),
        ]
        for site, field in bad:
            with self.subTest(site=site):
                # FastAPI-style location of a list member: body.sites[0].field
                d = self.assertValidation(post({"sites": [{"site_name": "first.example", "used_bytes": 1}, site]}))
                self.assertEqual(d[0]["loc"], ["body", "sites", 1, field])
        with self.subTest("duplicate names"):
            d = self.assertValidation(post({"sites": [{"site_name": "d.example", "used_bytes": 1},
                                                      {"site_name": "d.example", "used_bytes": 2}]}))
            self.assertEqual(d[0]["loc"], ["body", "sites", 1, "site_name"])
        with self.subTest("1001 sites"):
            many = [{"site_name": "s%d" % i, "used_bytes": 0} for i in range(1001)]
            self.assertValidation(post({"sites": many}), "sites")
        # Nothing of the rejected reports was stored (not even the valid first entry of a batch).
        r = post({"sites": [{"site_name": "good.example", "used_bytes": 1},
                            {"site_name": "bad.example", "used_bytes": -1}]})
        self.assertEqual(r.status, 422, r)
        self.assertEqual(self.server.request("GET", "/api/v1/nodes/%d/sites" % nid, token=self.admin).json(),
                         {"sites": [], "total": 0})

    def test_1000_sites_accepted(self):
        nid, key = self.new_node()
        many = [{"site_name": "s%04d.example" % i, "used_bytes": i} for i in range(1000)]
        r = self.sites(key, many)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["total"], 1000)
        self.assertEqual(self.node(nid)["storage_used_bytes"], sum(range(1000)))

    def test_auth_errors_401(self):
        r = self.server.request("POST", "/api/v1/stats/sites", {"sites": []})
        self.assertDetail(r, 401)
        r = self.server.request("POST", "/api/v1/stats/sites", {"sites": []}, headers={"X-API-KEY": "nope"})
        self.assertEqual(self.assertDetail(r, 401), "Invalid API key")


class Backups(AgentBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.nid, cls.key = cls.server.join_and_approve("backups.example.com", cls.admin)
        r = cls.server.request("POST", "/api/v1/stats/sites", {"sites": [{"site_name": "example.com",
                                                                          "used_bytes": 1}]},
                               headers={"X-API-KEY": cls.key})
        cls.site_id = r.json()["sites"][0]["id"]

    def backup(self, key=None, **fields):
        body = {"filename": "f.tar.zst", "size_bytes": 10}
        body.update(fields)
        body = {k: v for k, v in body.items() if v is not ...}
        return self.post("/api/v1/stats/backups", body, key or self.key)

    def test_full_backup_report(self):
        body = {"site_name": "example.com", "filename": "example.com_20251227_082133.tar.zst",
                "size_bytes": 3612358215, "s3_path": "s3://bucket/example.com_20251227_082133.tar.zst",
                "backup_type": "incremental", "status": "FAILED", "storage_provider": "iDrive E2 Shared",
                "created_at": "2025-12-27T08:22:04.588990Z"}
        r = self.post("/api/v1/stats/backups", body, self.key)
        self.assertEqual(r.status, 201, r)
        b = r.json()
        self.assertIsInstance(b["id"], int)
        self.assertEqual(b, {"id": b["id"], "site_id": self.site_id, "site_name": "example.com",
                             "filename": body["filename"], "size_bytes": 3612358215, "size_gb": 3.36,
                             "s3_path": body["s3_path"], "created_at": b["created_at"],
                             "backup_type": "incremental", "status": "FAILED",
                             "storage_provider": "iDrive E2 Shared"})
        self.assertTrue(b["created_at"].startswith("2025-12-27T08:22:04.58899"), b["created_at"])
        listed = self.server.request("GET", "/api/v1/nodes/%d/backups?limit=500" % self.nid,
                                     token=self.admin).json()["backups"]
        self.assertIn(b, listed)

    def test_defaults(self):
        before = self.server.advance_clock(0, self.admin)["now"]
        r = self.backup(filename="minimal.tar")
        self.assertEqual(r.status, 201, r)
        b = r.json()
        self.assertIsNone(b["site_id"])
        self.assertIsNone(b["site_name"])
        self.assertEqual(b["backup_type"], "full")
        self.assertEqual(b["status"], "SUCCESS")
        self.assertEqual(b["s3_path"], "")
        self.assertEqual(b["storage_provider"], "")
        self.assertRegex(b["created_at"], TIME_RE)
        self.assertGreaterEqual(b["created_at"][:19], before[:19])

    def test_all_types_and_statuses(self):
        for t in ("full", "incremental", "differential"):
            for st in ("SUCCESS", "FAILED", "RUNNING"):
                with self.subTest(t=t, st=st):
                    r = self.backup(backup_type=t, status=st)
                    self.assertEqual(r.status, 201, r)
                    self.assertEqual((r.json()["backup_type"], r.json()["status"]), (t, st))

    def test_counts_and_listing(self):
        nid, key = self.new_node()
        for i in range(3):
            self.assertEqual(self.backup(key=key, filename="c%d" % i).status, 201)
        d = self.node(nid)
        self.assertEqual(d["backups_count"], 3)
        listed = self.server.request("GET", "/api/v1/nodes/%d/backups" % nid, token=self.admin).json()
        self.assertEqual(listed["total"], 3)
        self.assertEqual([b["filename"] for b in listed["backups"]], ["c2", "c1", "c0"])

    def test_newest_first_by_created_at(self):
        # "newest first": a backup reported late but created earlier sorts after newer ones.
        nid, key = self.new_node()
        self.backup(key=key, filename="jan2", created_at="2025-01-02T00:00:00Z")
        self.backup(key=key, filename="jan3", created_at="2025-01-03T00:00:00Z")
        self.backup(key=key, filename="jan1", created_at="2025-01-01T00:00:00Z")
        listed = self.server.request("GET", "/api/v1/nodes/%d/backups" % nid, token=self.admin).json()
        self.assertEqual([b["filename"] for b in listed["backups"]], ["jan3", "jan2", "jan1"])

    def test_created_at_forms(self):
        for text, prefix in (("2025-01-01T00:00:00Z", "2025-01-01T00:00:00"),
                             ("2025-01-01T00:00:00.5Z", "2025-01-01T00:00:00.5"),
                             ("2025-01-01T00:00:00+00:00", "2025-01-01T00:00:00")):
            with self.subTest(text=text):
                r = self.backup(created_at=text)
                self.assertEqual(r.status, 201, r)
                self.assertTrue(r.json()["created_at"].startswith(prefix), r)
                self.assertTrue(r.json()["created_at"].endswith("Z"), r)

    def test_created_at_with_offset_is_converted_to_utc(self):
        # RFC 3339 allows any offset; the instant is what matters.
        r = self.backup(created_at="2025-01-01T02:00:00+02:00")
        self.assertEqual(r.status, 201, r)
        self.assertTrue(r.json()["created_at"].startswith("2025-01-01T00:00:00"), r)

    def test_invalid_fields_422(self):
        cases = [
            ({"filename": ...}, "filename", "value_error.missing"),
            ({"filename": None}, "filename", "value_error.missing"),
            ({"filename": ""}, "filename", "value_error"),
            ({"filename": "x" * 513}, "filename", "value_error"),
            ({"filename": "a\u0000b"}, "filename", "value_error"),
            ({"filename": 5}, "filename", "value_error"),
            ({"size_bytes": ...}, "size_bytes", "value_error.missing"),
            ({"size_bytes": -1}, "size_bytes", "value_error"),
            ({"size_bytes": "10"}, "size_bytes", "value_error"),
            ({"size_bytes": 1.5}, "size_bytes", "value_error"),
            ({"size_bytes": 10 ** 18 + 1}, "size_bytes", "value_error"),
            ({"size_bytes": 2 ** 63}, "size_bytes", "value_error"),
            ({"site_name": "unknown.example"}, "site_name", "value_error"),
            ({"site_name": "x" * 254}, "site_name", "value_error"),
            ({"site_name": 3}, "site_name", "value_error"),
            ({"s3_path": "s" * 1025}, "s3_path", "value_error"),
            ({"storage_provider": "p" * 129}, "storage_provider", "value_error"),
            ({"backup_type": "weekly"}, "backup_type", "value_error"),
            ({"backup_type": "FULL"}, "backup_type", "value_error"),
            ({"backup_type": ""}, "backup_type", "value_error"),
            ({"status": "success"}, "status", "value_error"),
            ({"status": "DONE"}, "status", "value_error"),
            ({"status": 1}, "status", "value_error"),
            ({"created_at": "yesterday"}, "created_at", "value_error"),
            ({"created_at": "2025-13-01T00:00:00Z"}, "created_at", "value_error"),
            ({"created_at": "2025-01-01"}, "created_at", "value_error"),
            ({"created_at": "2025-01-01T25:00:00Z"}, "created_at", "value_error"),
            ({"created_at": 1735689600}, "created_at", "value_error"),
        ]
        for fields, field, typ in cases:
            with self.subTest(fields={k: (v if not isinstance(v, str) or len(v) < 40 else v[:10] + "...")
                                      for k, v in fields.items()}):
                d = self.assertValidation(self.backup(**fields), field)
                self.assertEqual(d[0]["type"], typ)

    def test_site_of_another_node_is_unknown(self):
        other, okey = self.new_node()
        self.post("/api/v1/stats/sites", {"sites": [{"site_name": "theirs.example", "used_bytes": 1}]}, okey)
        self.assertValidation(self.backup(site_name="theirs.example"), "site_name")

    def test_rejected_backup_not_stored(self):
        nid, key = self.new_node()
        self.assertEqual(self.backup(key=key, status="nope").status, 422)
        self.assertEqual(self.backup(key=key, site_name="nope.example").status, 422)
        self.assertEqual(self.server.request("GET", "/api/v1/nodes/%d/backups" % nid, token=self.admin).json(),
                         {"backups": [], "total": 0})

    def test_auth_errors_401(self):
        r = self.server.request("POST", "/api/v1/stats/backups", {"filename": "a", "size_bytes": 1})
        self.assertEqual(self.assertDetail(r, 401), "Missing X-API-KEY header")
        r = self.server.request("POST", "/api/v1/stats/backups", {"filename": "a", "size_bytes": 1},
                                headers={"X-API-KEY": self.key[:-2]})
        self.assertEqual(self.assertDetail(r, 401), "Invalid API key")


if __name__ == "__main__":
    unittest.main()
