"""node-management.md, nodes: GET/POST /api/v1/nodes, GET/PUT /api/v1/nodes/{node_id},
the error format, authentication and scopes, and the two views (registration
and management) of one node row.

Also holds the helpers the other test_mgmt_*.py files import (MgmtAssertions
and module functions; no TestCase is exported from here to them)."""
import datetime
import os
import re
import subprocess
import time
import unittest

from lucidtest import (CTL_BIN, ServerTestCase, make_jwt, parse_raw_response, raw_exchange,
                       server_signing_key)

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TIME_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"
NODE_ID_RE = r"^node_[a-zA-Z0-9_-]+$"
POOL_ID_RE = r"^pool_[a-zA-Z0-9_-]+$"
CODE_RE = r"^[A-Z0-9]{5}$"
HW_KEYS = {"cpu_cores", "memory_gb", "storage_gb", "gpu_count", "gpu_model", "architecture", "os"}
LOC_KEYS = {"region", "country", "city", "latitude", "longitude"}
NODE_KEYS = {"node_id", "name", "status", "node_type", "pool_id", "pool_priority", "hostname",
             "registration_status", "hardware_info", "location", "created_at", "updated_at",
             "last_heartbeat", "poot_score",
             "schedulable", "drain",  # ours (issue 15): test_mgmt_removal.py
             "id"}  # ours (issue 16): the registration view's integer id; test_console.py
POOL_KEYS = {"pool_id", "name", "description", "node_count", "max_nodes", "resource_limits", "created_at",
             "updated_at"}
PAGINATION_KEYS = {"page", "limit", "total", "total_pages", "has_next", "has_prev"}
EMPTY_HW = {k: None for k in HW_KEYS}
EMPTY_LOC = {k: None for k in LOC_KEYS}


def parse_time(text):
    """An RFC 3339 "...Z" string (optional fraction) as an aware datetime."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", text)
    assert m, text
    dt = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    if m.group(2):
        dt += datetime.timedelta(microseconds=int((m.group(2)[1:] + "000000")[:6]))
    return dt


def fmt_time(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def mgmt_create(server, token, body):
    """POST /api/v1/nodes; the 201 body."""
    r = server.request("POST", "/api/v1/nodes", body, token=token)
    assert r.status == 201, r
    return r.json()


def mgmt_pool(server, token, body):
    r = server.request("POST", "/api/v1/nodes/pools", body, token=token)
    assert r.status == 201, r
    return r.json()


def mgmt_node_of(server, token, hostname):
    """The management Node whose hostname is `hostname` (walks every page)."""
    page = 1
    while True:
        r = server.request("GET", "/api/v1/nodes?limit=100&page=%d" % page, token=token)
        assert r.status == 200, r
        body = r.json()
        for n in body["nodes"]:
            if n["hostname"] == hostname:
                return n
        if not body["pagination"]["has_next"]:
            raise AssertionError("no node with hostname %s" % hostname)
        page += 1


def collect_key(server, created):
    """Collects a created node's API key with its registration code and join secret."""
    r = server.poll_code(created["registration_code"], created["join_secret"])
    assert r.status == 200 and r.json().get("api_key"), r
    return r.json()["api_key"]


def expired_token(server, role="super_admin"):
    """A correctly signed token that expired a minute ago (server time = wall
    time: only for servers whose test clock was never advanced)."""
    key = server_signing_key(server)
    now = int(time.time())
    claims = {"sub": "expired", "role": role, "scopes": [], "iat": now - 3600, "exp": now - 60,
              "jti": "00" * 16}
    return make_jwt({"alg": "EdDSA", "typ": "JWT"}, claims, sign=key.sign)


class MgmtAssertions:
    """Assertions and shortcuts for node-management tests (self.server, self.admin)."""

    ANY = object()

    def assertMgmtError(self, r, status, code, field=None, location="body"):
        """The document's ErrorResponse, exactly; field=None: details is {};
        field=ANY: details not checked."""
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r.headers)
        body = r.json()
        self.assertEqual(set(body), {"error"}, r)
        e = body["error"]
        self.assertEqual(set(e), {"code", "message", "details", "request_id", "timestamp"}, r)
        self.assertRegex(e["code"], r"^LUCID_ERR_[0-9]{4}$")
        self.assertEqual(e["code"], code, r)
        self.assertIsInstance(e["message"], str)
        self.assertTrue(e["message"], r)
        self.assertIsInstance(e["details"], dict, r)
        if field is None:
            self.assertEqual(e["details"], {}, r)
        elif field is not self.ANY:
            self.assertEqual(e["details"], {"field": field, "location": location}, r)
        self.assertRegex(e["request_id"], UUID_RE)
        self.assertRegex(e["timestamp"], TIME_RE)
        self.assertEqual(r.headers.get("x-request-id"), e["request_id"], r.headers)
        if status == 401:
            self.assertEqual(r.headers.get("www-authenticate"), "Bearer", r.headers)
        return e

    def get(self, path, token=None):
        return self.server.request("GET", path, token=token or self.admin)

    def post(self, path, body=None, token=None, raw=None):
        if raw is not None:
            return self.server.request("POST", path, body=raw, headers={"Content-Type": "application/json"},
                                       token=token or self.admin)
        return self.server.request("POST", path, body, token=token or self.admin)

    def put(self, path, body=None, token=None, raw=None):
        if raw is not None:
            return self.server.request("PUT", path, body=raw, headers={"Content-Type": "application/json"},
                                       token=token or self.admin)
        return self.server.request("PUT", path, body, token=token or self.admin)

    def create(self, body):
        return mgmt_create(self.server, self.admin, body)

    def node(self, uid):
        r = self.get("/api/v1/nodes/" + uid)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def node_of(self, hostname):
        return mgmt_node_of(self.server, self.admin, hostname)

    def wait_status(self, uid, status, timeout=6.0):
        """Polls the node until its status is `status` (the lifecycle sweep runs each second)."""
        deadline = time.time() + timeout
        while True:
            n = self.node(uid)
            if n["status"] == status or time.time() > deadline:
                self.assertEqual(n["status"], status, n)
                return n
            time.sleep(0.1)

    def assertNodeShape(self, n):
        self.assertEqual(set(n), NODE_KEYS, n)
        self.assertRegex(n["node_id"], NODE_ID_RE)
        self.assertIs(type(n["id"]), int, n)
        self.assertGreater(n["id"], 0, n)
        self.assertIn(n["status"], ["active", "inactive", "maintenance", "error", "starting", "stopping"])
        self.assertIn(n["node_type"], ["worker", "validator", "storage", "compute"])
        self.assertEqual(set(n["hardware_info"]), HW_KEYS, n)
        self.assertEqual(set(n["location"]), LOC_KEYS, n)
        self.assertRegex(n["created_at"], TIME_RE)
        self.assertRegex(n["updated_at"], TIME_RE)
        if n["pool_id"] is not None:
            self.assertRegex(n["pool_id"], POOL_ID_RE)

    def assertPagination(self, p, page, limit, total, total_pages, has_next, has_prev):
        self.assertEqual(p, {"page": page, "limit": limit, "total": total, "total_pages": total_pages,
                             "has_next": has_next, "has_prev": has_prev})


class MgmtNodeList(MgmtAssertions, ServerTestCase):
    """A fixed set of six nodes; no test here changes anything (writes are refused)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s, a = cls.server, cls.admin
        cls.active_id, key = s.join_and_approve("list-active.example.com", a)
        r = s.report(key, cpu_usage=5)
        assert r.status == 200, r
        cls.starting_id, _ = s.join_and_approve("list-starting.example.com", a)
        cls.pending_id = int(s.join("list-pending.example.com")["request_id"])
        cls.pool = mgmt_pool(s, a, {"name": "list-pool"})["pool_id"]
        cls.c1 = mgmt_create(s, a, {"name": "list-c1", "node_type": "storage", "pool_id": cls.pool})
        cls.c2 = mgmt_create(s, a, {"name": "list-c2", "node_type": "compute"})
        r = s.request("POST", "/api/v1/nodes/pools/%s/nodes" % cls.pool, {"node_id": cls.c2["node_id"], "priority": 10},
                      token=a)
        assert r.status == 200, r
        cls.c3 = mgmt_create(s, a, {"name": "list-c3"})
        r = s.request("PUT", "/api/v1/nodes/" + cls.c3["node_id"], {"status": "maintenance"}, token=a)
        assert r.status == 200, r
        cls.names = ["list-active.example.com", "list-starting.example.com", "list-pending.example.com",
                     "list-c1", "list-c2", "list-c3"]
        cls.ops = {}
        for name, kw in (("user", {"role": "viewer"}),  # the fleet-read role (a self-service user reads nothing)
                         ("operator", {"role": "node_operator"}),
                         ("admin_role", {"role": "admin"}),
                         ("reader", {"role": "node_operator", "scopes": ["node:read"]}),
                         ("writer_only", {"role": "super_admin", "scopes": ["node:write"]}),
                         ("poot_reader", {"role": "super_admin", "scopes": ["poot:read"]})):
            cls.ops[name] = s.token(sub="list-" + name, **kw)  # one rate-limit bucket each

    def list(self, query="", token=None):
        r = self.get("/api/v1/nodes" + query, token=token)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_list_default_shape_and_values(self):
        body = self.list()
        self.assertEqual(set(body), {"nodes", "pagination"})
        self.assertPagination(body["pagination"], 1, 20, 6, 1, False, False)
        nodes = body["nodes"]
        for n in nodes:
            self.assertNodeShape(n)
        self.assertEqual([n["name"] for n in nodes], self.names)
        self.assertEqual([n["hostname"] for n in nodes], self.names)
        self.assertEqual([n["status"] for n in nodes], ["active", "starting", "inactive", "inactive", "inactive",
                                                          "maintenance"])
        self.assertEqual([n["registration_status"] for n in nodes], ["active", "active", "pending", "active",
                                                                       "active", "active"])
        self.assertEqual([n["node_type"] for n in nodes], ["worker", "worker", "worker", "storage", "compute",
                                                             "worker"])
        self.assertEqual([n["pool_id"] for n in nodes], [None, None, None, self.pool, self.pool, None])
        self.assertEqual([n["pool_priority"] for n in nodes], [None, None, None, 50, 10, None])
        self.assertEqual(len({n["node_id"] for n in nodes}), 6)
        self.assertRegex(nodes[0]["last_heartbeat"], TIME_RE)
        self.assertEqual([n["last_heartbeat"] for n in nodes[1:]], [None] * 5)
        self.assertEqual([n["poot_score"] for n in nodes], [None] * 6)
        self.assertEqual(nodes[3]["node_id"], self.c1["node_id"])
        self.assertEqual(nodes[5]["node_id"], self.c3["node_id"])

    def test_list_pagination(self):
        all_ids = [n["node_id"] for n in self.list()["nodes"]]
        cases = [("?limit=4", 1, 4, all_ids[:4], 2, True, False),
                 ("?limit=4&page=2", 2, 4, all_ids[4:], 2, False, True),
                 ("?limit=4&page=3", 3, 4, [], 2, False, True),
                 ("?page=1&limit=1", 1, 1, all_ids[:1], 6, True, False),
                 ("?page=6&limit=1", 6, 1, all_ids[5:], 6, False, True),
                 ("?limit=100", 1, 100, all_ids, 1, False, False),
                 ("?limit=3&page=2", 2, 3, all_ids[3:], 2, False, True),
                 ("?page=1000000", 1000000, 20, [], 1, False, True)]
        for q, page, limit, ids, pages, has_next, has_prev in cases:
            with self.subTest(q=q):
                body = self.list(q)
                self.assertEqual([n["node_id"] for n in body["nodes"]], ids)
                self.assertPagination(body["pagination"], page, limit, 6, pages, has_next, has_prev)

    def test_list_status_filter(self):
        want = {"active": [0], "starting": [1], "inactive": [2, 3, 4], "maintenance": [5], "error": [],
                "stopping": []}
        for status, idx in want.items():
            with self.subTest(status=status):
                body = self.list("?status=" + status)
                self.assertEqual([n["name"] for n in body["nodes"]], [self.names[i] for i in idx])
                self.assertEqual(body["pagination"]["total"], len(idx))
                self.assertEqual(body["pagination"]["total_pages"], 1 if idx else 0)
        body = self.list("?status=inactive&limit=2&page=2")
        self.assertEqual([n["name"] for n in body["nodes"]], ["list-c2"])
        self.assertPagination(body["pagination"], 2, 2, 3, 2, False, True)

    def test_list_pool_filter(self):
        body = self.list("?pool_id=" + self.pool)
        self.assertEqual([n["name"] for n in body["nodes"]], ["list-c1", "list-c2"])
        self.assertEqual(body["pagination"]["total"], 2)
        body = self.list("?pool_id=%s&status=maintenance" % self.pool)
        self.assertEqual(body["nodes"], [])
        self.assertEqual(body["pagination"]["total"], 0)
        body = self.list("?pool_id=%s&status=inactive&limit=1" % self.pool)
        self.assertEqual([n["name"] for n in body["nodes"]], ["list-c1"])
        self.assertPagination(body["pagination"], 1, 1, 2, 2, True, False)
        body = self.list("?pool_id=pool_0000000000000000")
        self.assertEqual(body["nodes"], [])
        self.assertPagination(body["pagination"], 1, 20, 0, 0, False, False)

    def test_list_bad_query_400(self):
        for q, field in (("limit=101", "limit"), ("limit=0", "limit"), ("limit=-1", "limit"), ("limit=abc", "limit"),
                         ("limit=", "limit"), ("limit=1.5", "limit"), ("page=0", "page"), ("page=-3", "page"),
                         ("page=x", "page"), ("page=1000001", "page"), ("status=bogus", "status"),
                         ("status=ACTIVE", "status"), ("status=", "status"), ("status=pending", "status"),
                         ("pool_id=abc", "pool_id"), ("pool_id=pool_", "pool_id")):
            with self.subTest(q=q):
                self.assertMgmtError(self.get("/api/v1/nodes?" + q), 400, "LUCID_ERR_1001", field, "query")

    def test_unauthenticated_401(self):
        s = self.server
        key = server_signing_key(s)
        now = int(time.time())
        wrong_sig = make_jwt({"alg": "EdDSA", "typ": "JWT"},
                             {"sub": "x", "role": "super_admin", "scopes": [], "iat": now, "exp": now + 600},
                             signature=b"\0" * 64)
        unknown_role = make_jwt({"alg": "EdDSA", "typ": "JWT"},
                                {"sub": "x", "role": "root", "scopes": [], "iat": now, "exp": now + 600},
                                sign=key.sign)
        for label, headers in (("none", {}), ("garbage", {"Authorization": "Bearer abc"}),
                               ("basic", {"Authorization": "Basic dXNlcjpwYXNz"}),
                               ("empty bearer", {"Authorization": "Bearer "}),
                               ("bad signature", {"Authorization": "Bearer " + wrong_sig}),
                               ("unknown role", {"Authorization": "Bearer " + unknown_role})):
            for method, path, body in (("GET", "/api/v1/nodes", None),
                                       ("POST", "/api/v1/nodes", {"name": "unauth-node"}),
                                       ("GET", "/api/v1/nodes/" + self.c1["node_id"], None),
                                       ("POST", "/api/v1/nodes/pools", {"name": "unauth-pool"})):
                with self.subTest(label=label, method=method, path=path):
                    r = s.request(method, path, body, headers=headers)
                    self.assertMgmtError(r, 401, "LUCID_ERR_2003")
                    self.assertNotIn("x-ratelimit-limit", r.headers)
        r = s.request("GET", "/api/v1/nodes", token=expired_token(s))
        e = self.assertMgmtError(r, 401, "LUCID_ERR_2002")
        self.assertIn("expired", e["message"])
        self.assertEqual(self.list()["pagination"]["total"], 6)

    def test_read_scopes(self):
        paths = ["/api/v1/nodes", "/api/v1/nodes/" + self.c1["node_id"], "/api/v1/nodes/pools",
                 "/api/v1/nodes/%s/resources" % self.c1["node_id"],
                 "/api/v1/nodes/%s/resources/metrics" % self.c1["node_id"]]
        for who in ("user", "operator", "admin_role", "reader"):
            for path in paths:
                with self.subTest(who=who, path=path):
                    self.assertEqual(self.get(path, token=self.ops[who]).status, 200)
        for who in ("poot_reader", "writer_only"):
            for path in paths:
                with self.subTest(who=who, path=path):
                    e = self.assertMgmtError(self.get(path, token=self.ops[who]), 403, "LUCID_ERR_2004")
                    self.assertIn("node:read", e["message"])

    def test_write_scopes_refused_and_nothing_changes(self):
        c3 = self.c3["node_id"]
        writes = [("POST", "/api/v1/nodes", {"name": "scope-node"}),
                  ("PUT", "/api/v1/nodes/" + c3, {"name": "renamed-by-user", "status": "inactive"}),
                  ("POST", "/api/v1/nodes/%s/start" % self.c1["node_id"], None),
                  ("POST", "/api/v1/nodes/%s/stop" % self.c1["node_id"], None),
                  ("POST", "/api/v1/nodes/pools", {"name": "scope-pool"}),
                  ("POST", "/api/v1/nodes/pools/%s/nodes" % self.pool, {"node_id": c3})]
        for who in ("user", "reader", "poot_reader"):
            for method, path, body in writes:
                with self.subTest(who=who, method=method, path=path):
                    r = self.server.request(method, path, body, token=self.ops[who])
                    e = self.assertMgmtError(r, 403, "LUCID_ERR_2004")
                    if path != "/api/v1/nodes":  # creating an approved node is super_admin's before any scope
                        self.assertIn("node:write", e["message"])
        body = self.list()
        self.assertEqual(body["pagination"]["total"], 6)
        self.assertEqual([n["name"] for n in body["nodes"]], self.names)
        n = self.node(c3)
        self.assertEqual((n["name"], n["status"], n["pool_id"]), ("list-c3", "maintenance", None))
        self.assertEqual(self.node(self.c1["node_id"])["status"], "inactive")
        pools = self.get("/api/v1/nodes/pools").json()
        self.assertEqual([p["name"] for p in pools["pools"]], ["list-pool"])
        self.assertEqual(pools["pools"][0]["node_count"], 2)

    def test_unknown_paths_404_and_wrong_methods_405(self):
        uid = self.c1["node_id"]
        for path in ("/api/v1/nodes/%s/unknown" % uid, "/api/v1/nodes/pools/" + self.pool,
                     "/api/v1/nodes/%s/resources/metrics/cpu" % uid, "/api/v1/nodes/pools/x/y/z",
                     "/api/v1/nodes/pools/%s/nodes/extra" % self.pool):
            with self.subTest(path=path):
                self.assertMgmtError(self.get(path), 404, "LUCID_ERR_4001")
        # An id that is no "node_..." id belongs to the registration document's
        # /nodes/{id} (docs/decisions.md, "One row, two views"): its 404 format.
        for path in ("/api/v1/nodes/foo", "/api/v1/nodes/node_"):
            with self.subTest(path=path):
                r = self.get(path)
                self.assertEqual(r.status, 404, r)
                self.assertEqual(r.json(), {"detail": "Node not found"})
        for method, path, allow in (("PATCH", "/api/v1/nodes/" + uid, "DELETE, GET, HEAD, PUT"),  # DELETE: issue 15
                                    ("GET", "/api/v1/nodes/%s/start" % uid, "POST"),
                                    ("PUT", "/api/v1/nodes/%s/resources" % uid, "GET, HEAD"),
                                    ("DELETE", "/api/v1/nodes/pools", "GET, HEAD, POST")):
            with self.subTest(method=method, path=path):
                r = self.server.request(method, path, token=self.admin)
                self.assertMgmtError(r, 405, "LUCID_ERR_4003")
                self.assertEqual(sorted(r.headers.get("allow", "").split(", ")), sorted(allow.split(", ")))

    def test_malformed_node_ids_404(self):
        for uid in ("node_a.b", "node_a%20b", "node_%2e%2e", "node_" + "a" * 60, "node_ffffffffffffffff",
                    "node_a$b"):
            for suffix in ("", "/resources", "/resources/metrics"):
                with self.subTest(uid=uid, suffix=suffix):
                    self.assertMgmtError(self.get("/api/v1/nodes/" + uid + suffix), 404, "LUCID_ERR_5001")
            with self.subTest(uid=uid, op="put"):
                self.assertMgmtError(self.put("/api/v1/nodes/" + uid, {"name": "x-" + str(len(uid))}), 404,
                                     "LUCID_ERR_5001")
            for op in ("start", "stop"):
                with self.subTest(uid=uid, op=op):
                    self.assertMgmtError(self.post("/api/v1/nodes/%s/%s" % (uid, op)), 404, "LUCID_ERR_5001")

    def test_default_rate_limit_headers(self):
        """The document's budgets: 1000/min for nodes callers, 10000/min for admins."""
        for who, limit in (("user", "1000"), ("operator", "1000"), ("reader", "1000"), ("admin_role", "10000")):
            with self.subTest(who=who):
                r = self.get("/api/v1/nodes/pools", token=self.ops[who])
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.headers.get("x-ratelimit-limit"), limit)
                remaining = int(r.headers["x-ratelimit-remaining"])
                self.assertTrue(int(limit) - 20 <= remaining <= int(limit) - 1, r.headers)
                self.assertIn("x-ratelimit-reset", r.headers)

    def test_body_too_large_413_in_the_documents_format(self):
        body = b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}'
        head = ("POST /api/v1/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (self.admin, len(body)))
        r = parse_raw_response(raw_exchange(self.server, head.encode() + body, shutdown_write=True))
        self.assertEqual(r.status, 413, r)
        self.assertMgmtError(r, 413, "LUCID_ERR_1010")
        self.assertEqual(self.list()["pagination"]["total"], 6)

    def test_registration_view_of_the_same_rows(self):
        r = self.get("/api/v1/nodes/")
        self.assertEqual(r.status, 200, r)
        reg = r.json()
        self.assertIsInstance(reg, list)
        self.assertEqual([n["hostname"] for n in reg], self.names)
        self.assertTrue(all(isinstance(n["id"], int) for n in reg))
        self.assertEqual([n["id"] for n in reg[:3]], [self.active_id, self.starting_id, self.pending_id])
        self.assertEqual([n["status"] for n in reg], ["active", "active", "pending", "active", "active", "active"])
        mg = self.list()["nodes"]
        # The same row: the registration last_seen is the management last_heartbeat.
        self.assertEqual(reg[0]["last_seen"], mg[0]["last_heartbeat"])
        self.assertEqual(reg[0]["created_at"], mg[0]["created_at"])
        self.assertEqual(reg[3]["created_at"], mg[3]["created_at"])
        # A node created by the management API is an approved registration node.
        r = self.get("/api/v1/nodes/%d" % reg[3]["id"])
        self.assertEqual(r.status, 200, r)
        d = r.json()
        self.assertEqual(d["hostname"], "list-c1")
        self.assertEqual(d["status"], "active")
        self.assertRegex(d["approved_at"], TIME_RE)
        self.assertEqual(d["storage_quota_gb"], 100)
        self.assertEqual(d["health"], "offline")
        # /nodes (no slash) is the management object, /nodes/ the registration array.
        self.assertIsInstance(self.list(), dict)


class MgmtNodeCrud(MgmtAssertions, ServerTestCase):
    """POST /nodes, GET/PUT /nodes/{node_id}, and changes seen through both views."""

    # ---- POST /nodes ----

    def test_create_minimal(self):
        r = self.post("/api/v1/nodes", {"name": "crud-min"})
        self.assertEqual(r.status, 201, r)
        n = r.json()
        self.assertEqual(set(n), NODE_KEYS | {"registration_code", "join_secret"})
        self.assertRegex(n["registration_code"], CODE_RE)
        self.assertRegex(n["join_secret"], r"^ljs_[A-Za-z0-9_-]{43}$")
        created = {"registration_code": n.pop("registration_code"), "join_secret": n.pop("join_secret")}
        code = created["registration_code"]
        self.assertNodeShape(n)
        self.assertEqual(n["name"], "crud-min")
        self.assertEqual(n["hostname"], "crud-min")
        self.assertEqual(n["status"], "inactive")
        self.assertEqual(n["node_type"], "worker")
        self.assertEqual(n["registration_status"], "active")
        self.assertIsNone(n["pool_id"])
        self.assertIsNone(n["pool_priority"])
        self.assertEqual(n["hardware_info"], EMPTY_HW)
        self.assertEqual(n["location"], EMPTY_LOC)
        self.assertEqual(n["created_at"], n["updated_at"])
        self.assertIsNone(n["last_heartbeat"])
        self.assertIsNone(n["poot_score"])
        # GET answers the same Node, without the one-time code.
        self.assertEqual(self.node(n["node_id"]), n)
        # The code collects the node's API key once.
        # The code alone learns the status, never the key.
        r = self.server.poll_code(code)
        self.assertEqual(r.json(), {"status": "active", "api_key": None})
        key = collect_key(self.server, created)
        self.assertTrue(key.startswith("lnk_"), key)
        r = self.server.poll_code(code, created["join_secret"])
        self.assertEqual(r.status, 404, r)
        # Stats from the key land on this node (an inactive node stays inactive).
        self.assertEqual(self.server.report(key, cpu_usage=12).status, 200)
        after = self.node(n["node_id"])
        self.assertRegex(after["last_heartbeat"], TIME_RE)
        self.assertEqual(after["status"], "inactive")

    def test_create_full(self):
        hw = {"cpu_cores": 16, "memory_gb": 64.5, "storage_gb": 2000, "gpu_count": 2, "gpu_model": "A100",
              "architecture": "x86_64", "os": "Ubuntu 24.04"}
        loc = {"region": "eu-central", "country": "DE", "city": "Frankfurt", "latitude": 50.11, "longitude": 8.68}
        r = self.post("/api/v1/nodes", {"name": "Worker One", "hostname": "Worker-One.Example.COM",
                                        "node_type": "validator", "hardware_info": hw, "location": loc})
        self.assertEqual(r.status, 201, r)
        n = r.json()
        self.assertEqual(n["name"], "Worker One")
        self.assertEqual(n["hostname"], "worker-one.example.com")
        self.assertEqual(n["node_type"], "validator")
        self.assertEqual(n["hardware_info"], hw)
        self.assertEqual(n["location"], loc)
        g = self.node(n["node_id"])
        self.assertEqual((g["hardware_info"], g["location"], g["node_type"]), (hw, loc, "validator"))
        for t in ("worker", "storage", "compute"):
            with self.subTest(node_type=t):
                self.assertEqual(self.create({"name": "type-" + t, "node_type": t})["node_type"], t)
        # Range boundaries are accepted.
        edge = self.create({"name": "edge-loc", "location": {"latitude": -90, "longitude": 180},
                            "hardware_info": {"cpu_cores": 4096, "gpu_count": 0, "memory_gb": 0}})
        self.assertEqual(edge["location"]["latitude"], -90)
        self.assertEqual(edge["location"]["longitude"], 180)
        self.assertEqual(edge["hardware_info"]["cpu_cores"], 4096)
        self.assertEqual(edge["hardware_info"]["gpu_count"], 0)

    def test_create_name_and_hostname(self):
        # A name that is no hostname is free text (issue 15): the hostname is the node's uid.
        free = self.create({"name": "Node One"})
        self.assertEqual((free["name"], free["hostname"]), ("Node One", free["node_id"]))
        n = self.create({"name": "Node One b", "hostname": "node-one"})
        self.assertEqual((n["name"], n["hostname"]), ("Node One b", "node-one"))
        self.assertEqual(self.create({"name": "UPPER.Case"})["hostname"], "upper.case")
        for hostname in ("bad host", "-lead", "trail-", "a/b", "x" * 254):
            with self.subTest(hostname=hostname):
                self.assertMgmtError(self.post("/api/v1/nodes", {"name": "h-" + hostname[:20], "hostname": hostname}),
                                     400, "LUCID_ERR_1001", "hostname")
        for name in ("", "x" * 101, "new\nline", 5, ["a"], {"a": 1}, True):
            with self.subTest(name=name):
                self.assertMgmtError(self.post("/api/v1/nodes", {"name": name, "hostname": "named-ok"}), 400,
                                     "LUCID_ERR_1001", "name")
        self.assertEqual(self.create({"name": "x" * 100, "hostname": "hundred"})["name"], "x" * 100)
        self.assertEqual(self.node_of("hundred")["name"], "x" * 100)
        r = self.post("/api/v1/nodes", {"name": "named-ok", "hostname": "named-ok"})
        self.assertEqual(r.status, 201, r)  # none of the refused attempts left a row behind

    def test_create_hostname_from_name_only_when_it_is_one(self):
        # No hostname was sent: a name shaped like a hostname is the hostname;
        # any other name is free text (issue 15) and the hostname is the uid.
        for name in ("bad name", "-dash", "dash-"):
            n = self.create({"name": name})
            self.assertEqual((n["name"], n["hostname"]), (name, n["node_id"]))
        # With a hostname given, its own errors name it.
        self.assertMgmtError(self.post("/api/v1/nodes", {"name": "dash-", "hostname": "-h"}), 400, "LUCID_ERR_1001",
                             "hostname")

    def test_create_name_max_length_counts_characters(self):
        # Node.name: maxLength 100 (JSON Schema counts characters, not bytes).
        name = "\u00fc" * 100
        r = self.post("/api/v1/nodes", {"name": name, "hostname": "umlaut-node"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["name"], name)

    def test_create_missing_fields_1002(self):
        for body in ({}, {"hostname": "no-name"}, {"name": None}):
            with self.subTest(body=body):
                e = self.assertMgmtError(self.post("/api/v1/nodes", body), 400, "LUCID_ERR_1002", "name")
                self.assertEqual(e["message"], "field required")

    def test_create_malformed_body(self):
        for raw in ("{bad", "", "{\"name\": \"x\"} trailing", "\xff"):
            with self.subTest(raw=raw):
                self.assertMgmtError(self.post("/api/v1/nodes", raw=raw), 400, "LUCID_ERR_1009")
        for raw in ("[]", "\"name\"", "42", "null"):
            with self.subTest(raw=raw):
                self.assertMgmtError(self.post("/api/v1/nodes", raw=raw), 400, "LUCID_ERR_1001", "body")

    def test_create_node_type_validation(self):
        for t in ("gpu", "Worker", "", 1):
            with self.subTest(node_type=t):
                self.assertMgmtError(self.post("/api/v1/nodes", {"name": "typed", "node_type": t}), 400,
                                     "LUCID_ERR_1001", "node_type")

    def test_create_hardware_and_location_validation(self):
        cases = [({"hardware_info": 5}, "hardware_info"), ({"hardware_info": [1]}, "hardware_info"),
                 ({"location": "DE"}, "location"),
                 ({"hardware_info": {"cpu_cores": 0}}, "hardware_info.cpu_cores"),
                 ({"hardware_info": {"cpu_cores": 4097}}, "hardware_info.cpu_cores"),
                 ({"hardware_info": {"cpu_cores": "8"}}, "hardware_info.cpu_cores"),
                 ({"hardware_info": {"cpu_cores": 2.5}}, "hardware_info.cpu_cores"),
                 ({"hardware_info": {"memory_gb": -1}}, "hardware_info.memory_gb"),
                 ({"hardware_info": {"memory_gb": "lots"}}, "hardware_info.memory_gb"),
                 ({"hardware_info": {"storage_gb": -0.5}}, "hardware_info.storage_gb"),
                 ({"hardware_info": {"gpu_count": -1}}, "hardware_info.gpu_count"),
                 ({"hardware_info": {"gpu_count": 65}}, "hardware_info.gpu_count"),
                 ({"hardware_info": {"gpu_model": 7}}, "hardware_info.gpu_model"),
                 ({"hardware_info": {"architecture": "a" * 33}}, "hardware_info.architecture"),
                 ({"location": {"country": "de"}}, "location.country"),
                 ({"location": {"country": "DEU"}}, "location.country"),
                 ({"location": {"country": "D"}}, "location.country"),
                 ({"location": {"country": "D1"}}, "location.country"),
                 ({"location": {"latitude": 90.01}}, "location.latitude"),
                 ({"location": {"latitude": -91}}, "location.latitude"),
                 ({"location": {"latitude": "north"}}, "location.latitude"),
                 ({"location": {"longitude": 180.5}}, "location.longitude"),
                 ({"location": {"longitude": -181}}, "location.longitude"),
                 ({"location": {"region": "r" * 65}}, "location.region"),
                 ({"location": {"city": 3}}, "location.city")]
        for extra, field in cases:
            with self.subTest(extra=extra):
                body = {"name": "hwloc-node"}
                body.update(extra)
                self.assertMgmtError(self.post("/api/v1/nodes", body), 400, "LUCID_ERR_1001", field)
        self.assertEqual(self.create({"name": "hwloc-node"})["name"], "hwloc-node")

    def test_create_duplicates_409(self):
        self.create({"name": "dup-a", "hostname": "dup-a.example.com"})
        joined_id, _ = self.server.join_and_approve("dup-joined.example.com", self.admin)
        pending = self.server.join("dup-pending.example.com")
        before = len(self.get("/api/v1/nodes/").json())
        for body in ({"name": "dup-a", "hostname": "other-host"},        # same name
                     {"name": "dup-b", "hostname": "dup-a.example.com"},  # same hostname
                     {"name": "dup-b", "hostname": "DUP-A.example.com"},  # hostnames are case-insensitive
                     {"name": "dup-joined.example.com"},                  # a joined node's name
                     {"name": "dup-c", "hostname": "dup-joined.example.com"},
                     {"name": "dup-d", "hostname": "dup-pending.example.com"}):
            with self.subTest(body=body):
                self.assertMgmtError(self.post("/api/v1/nodes", body), 409, "LUCID_ERR_5007")
        self.assertEqual(len(self.get("/api/v1/nodes/").json()), before)
        self.assertEqual(self.get("/api/v1/nodes?limit=100").json()["pagination"]["total"], before)
        # The pending join request is untouched.
        self.assertEqual(self.server.join("dup-pending.example.com", join_secret=pending["join_secret"])
                         ["registration_code"], pending["registration_code"])
        self.assertEqual(self.get("/api/v1/nodes/%d" % joined_id).json()["hostname"], "dup-joined.example.com")

    def test_create_with_pool(self):
        pool = mgmt_pool(self.server, self.admin, {"name": "crud-pool"})["pool_id"]
        n = self.create({"name": "pooled-node", "pool_id": pool})
        self.assertEqual((n["pool_id"], n["pool_priority"]), (pool, 50))
        pools = {p["pool_id"]: p for p in self.get("/api/v1/nodes/pools?limit=100").json()["pools"]}
        self.assertEqual(pools[pool]["node_count"], 1)
        # Unknown pool: 404 5002 and no node is created.
        for pid in ("pool_0000000000000000", "pool_a.b"):
            with self.subTest(pool_id=pid):
                self.assertMgmtError(self.post("/api/v1/nodes", {"name": "orphan-node", "pool_id": pid}), 404,
                                     "LUCID_ERR_5002")
        for pid in ("xyz", "pool_", 5):
            with self.subTest(pool_id=pid):
                self.assertMgmtError(self.post("/api/v1/nodes", {"name": "orphan-node", "pool_id": pid}), 400,
                                     "LUCID_ERR_1001", "pool_id")
        self.assertEqual(self.create({"name": "orphan-node"})["pool_id"], None)

    def test_create_then_agent_collects_key_with_code(self):
        """lucidctl agent --code CODE: the agent of a created node collects its key and reports."""
        n = self.create({"name": "agent-node", "hostname": "agent-node.example.com"})
        key_file = os.path.join(self.server.dir, "agent-node.key")
        out = subprocess.run([CTL_BIN, "agent", "--server", self.server.url, "--hostname", "agent-node.example.com",
                              "--code", n["registration_code"], "--join-secret", n["join_secret"],
                              "--key-file", key_file, "--max-reports", "1",
                              "--interval", "1", "--poll", "1", "--disk-path", "/"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        with open(key_file) as f:
            self.assertTrue(f.read().strip().startswith("lnk_"))
        self.assertEqual(os.stat(key_file).st_mode & 0o777, 0o600)
        after = self.node(n["node_id"])
        self.assertRegex(after["last_heartbeat"], TIME_RE)
        # The code is spent.
        self.assertEqual(self.server.poll_code(n["registration_code"], n["join_secret"]).status, 404)

    def test_operator_may_write_user_may_not(self):
        op = self.server.token(role="node_operator", sub="crud-operator")
        # creating an approved node skips join and approval: super_admin only
        self.assertMgmtError(self.post("/api/v1/nodes", {"name": "by-operator"}, token=op), 403, "LUCID_ERR_2004")
        uid = mgmt_create(self.server, self.admin, {"name": "by-operator"})["node_id"]
        r = self.put("/api/v1/nodes/" + uid, {"name": "by-operator-2"}, token=op)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["name"], "by-operator-2")
        user = self.server.token(role="viewer", sub="crud-user")
        self.assertMgmtError(self.put("/api/v1/nodes/" + uid, {"name": "by-user"}, token=user), 403, "LUCID_ERR_2004")
        self.assertEqual(self.get("/api/v1/nodes/" + uid, token=user).json()["name"], "by-operator-2")

    # ---- GET/PUT /nodes/{node_id} ----

    def test_get_unknown_and_malformed_404(self):
        for uid in ("node_0000000000000000", "node_nope", "node_a.b", "node_a%2Eb", "node_%E2%9C%93"):
            with self.subTest(uid=uid):
                e = self.assertMgmtError(self.get("/api/v1/nodes/" + uid), 404, "LUCID_ERR_5001")
                self.assertEqual(e["message"], "Node not found")
        # An encoded slash is a path separator here: no such route.
        self.assertMgmtError(self.get("/api/v1/nodes/node_a%2Fb"), 404, "LUCID_ERR_4001")

    def test_put_fields(self):
        n = self.create({"name": "put-me", "hostname": "put-me.example.com", "node_type": "worker",
                         "hardware_info": {"cpu_cores": 8, "memory_gb": 32}, "location": {"country": "FR", "city": "Paris"}})
        uid = n["node_id"]
        r = self.put("/api/v1/nodes/" + uid, {"name": "put-me-renamed"})
        self.assertEqual(r.status, 200, r)
        got = r.json()
        self.assertEqual(set(got), NODE_KEYS)
        self.assertEqual(got["name"], "put-me-renamed")
        self.assertEqual(got["hostname"], "put-me.example.com")  # the hostname is not the name
        self.assertEqual(got["hardware_info"]["cpu_cores"], 8)
        self.assertEqual(got["location"]["city"], "Paris")
        self.assertEqual(got["created_at"], n["created_at"])
        self.assertEqual(self.node(uid), got)
        # node_type; hardware_info and location replace the whole record.
        got = self.put("/api/v1/nodes/" + uid, {"node_type": "compute", "hardware_info": {"gpu_count": 4},
                                                 "location": {"region": "eu-west"}}).json()
        self.assertEqual(got["node_type"], "compute")
        self.assertEqual(got["hardware_info"], dict(EMPTY_HW, gpu_count=4))
        self.assertEqual(got["location"], dict(EMPTY_LOC, region="eu-west"))
        self.assertEqual(got["name"], "put-me-renamed")
        # Renaming to its own name is no conflict; an empty body changes nothing.
        r = self.put("/api/v1/nodes/" + uid, {"name": "put-me-renamed"})
        self.assertEqual(r.status, 200, r)
        r = self.put("/api/v1/nodes/" + uid, {})
        self.assertEqual(r.status, 200, r)
        self.assertEqual({k: v for k, v in r.json().items() if k != "updated_at"},
                         {k: v for k, v in got.items() if k != "updated_at"})
        self.assertEqual(self.node_of("put-me.example.com")["node_id"], uid)

    def test_put_status_maintenance_and_inactive_only(self):
        uid = self.create({"name": "put-status"})["node_id"]
        for status in ("active", "starting", "stopping", "error"):
            with self.subTest(status=status):
                self.assertMgmtError(self.put("/api/v1/nodes/" + uid, {"status": status}), 400, "LUCID_ERR_1001",
                                     "status")
        for status in ("bogus", "", "MAINTENANCE", 3):
            with self.subTest(status=status):
                self.assertMgmtError(self.put("/api/v1/nodes/" + uid, {"status": status}), 400, "LUCID_ERR_1001",
                                     "status")
        self.assertEqual(self.node(uid)["status"], "inactive")
        r = self.put("/api/v1/nodes/" + uid, {"status": "maintenance"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "maintenance")
        self.assertEqual(self.node(uid)["status"], "maintenance")
        self.assertEqual(self.put("/api/v1/nodes/" + uid, {"status": "maintenance"}).json()["status"], "maintenance")
        r = self.put("/api/v1/nodes/" + uid, {"status": "inactive"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.node(uid)["status"], "inactive")
        # A refused status change leaves the other fields of the request unapplied.
        self.assertMgmtError(self.put("/api/v1/nodes/" + uid, {"name": "put-status-2", "status": "active"}), 400,
                             "LUCID_ERR_1001", "status")
        self.assertEqual(self.node(uid)["name"], "put-status")

    def test_put_validation_and_nothing_changes(self):
        n = self.create({"name": "put-valid", "hardware_info": {"cpu_cores": 2}, "location": {"country": "NL"}})
        uid = n["node_id"]
        for body, field, code in (({"name": ""}, "name", "LUCID_ERR_1001"),
                                  ({"name": "x" * 101}, "name", "LUCID_ERR_1001"),
                                  ({"name": 5}, "name", "LUCID_ERR_1001"),
                                  ({"node_type": "gpu"}, "node_type", "LUCID_ERR_1001"),
                                  ({"hardware_info": {"cpu_cores": 0}}, "hardware_info.cpu_cores", "LUCID_ERR_1001"),
                                  ({"hardware_info": "big"}, "hardware_info", "LUCID_ERR_1001"),
                                  ({"location": {"country": "nl"}}, "location.country", "LUCID_ERR_1001"),
                                  ({"location": {"latitude": 100}}, "location.latitude", "LUCID_ERR_1001"),
                                  ({"name": "ok-name", "location": {"longitude": 200}}, "location.longitude",
                                   "LUCID_ERR_1001")):
            with self.subTest(body=body):
                self.assertMgmtError(self.put("/api/v1/nodes/" + uid, body), 400, code, field)
        self.assertMgmtError(self.put("/api/v1/nodes/" + uid, raw="{nope"), 400, "LUCID_ERR_1009")
        self.assertMgmtError(self.put("/api/v1/nodes/" + uid, raw="[1]"), 400, "LUCID_ERR_1001", "body")
        self.assertEqual(self.node(uid), {k: v for k, v in n.items() if k not in ("registration_code", "join_secret")})

    def test_put_name_conflict_409(self):
        self.create({"name": "conflict-a"})
        b = self.create({"name": "conflict-b"})
        joined, _ = self.server.join_and_approve("conflict-joined.example.com", self.admin)
        for name in ("conflict-a", "conflict-joined.example.com"):
            with self.subTest(name=name):
                self.assertMgmtError(self.put("/api/v1/nodes/" + b["node_id"], {"name": name}), 409, "LUCID_ERR_5007")
        self.assertEqual(self.node(b["node_id"])["name"], "conflict-b")

    def test_put_unknown_404(self):
        for uid in ("node_0000000000000000", "node_a.b"):
            with self.subTest(uid=uid):
                self.assertMgmtError(self.put("/api/v1/nodes/" + uid, {"name": "ghost"}), 404, "LUCID_ERR_5001")
        self.assertMgmtError(self.put("/api/v1/nodes/node_0000000000000000", {"status": "maintenance"}), 404,
                             "LUCID_ERR_5001")

    # ---- one row, two views ----

    def test_views_registration_changes_show_in_management(self):
        s = self.server
        nid, key = s.join_and_approve("views-joined.example.com", self.admin)
        m = self.node_of("views-joined.example.com")
        self.assertRegex(m["node_id"], NODE_ID_RE)
        self.assertEqual((m["name"], m["status"], m["registration_status"]),
                         ("views-joined.example.com", "starting", "active"))
        self.assertIsNone(m["last_heartbeat"])
        # The agent's first report (registration API) makes the node active here.
        self.assertEqual(s.report(key, cpu_usage=33).status, 200)
        m2 = self.node(m["node_id"])
        self.assertEqual(m2["status"], "active")
        reg = self.get("/api/v1/nodes/%d" % nid).json()
        self.assertEqual(m2["last_heartbeat"], reg["last_seen"])
        # A quota change (registration API) updates the row: updated_at moves.
        now = parse_time(s.advance_clock(7, self.admin)["now"])
        r = self.put("/api/v1/nodes/%d/quota" % nid, {"storage_quota_gb": 250})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["storage_quota_gb"], 250)
        m3 = self.node(m["node_id"])
        self.assertGreaterEqual(parse_time(m3["updated_at"]), now)
        self.assertGreater(parse_time(m3["updated_at"]), parse_time(m2["updated_at"]))
        self.assertEqual(self.get("/api/v1/nodes/%d" % nid).json()["storage_quota_gb"], 250)

    def test_views_management_changes_show_in_registration(self):
        s = self.server
        n = self.create({"name": "views-created", "hostname": "views-created.example.com"})
        reg = [x for x in self.get("/api/v1/nodes/").json() if x["hostname"] == "views-created.example.com"]
        self.assertEqual(len(reg), 1)
        rid = reg[0]["id"]
        self.assertIsInstance(rid, int)
        self.assertEqual(reg[0]["status"], "active")
        self.assertEqual(reg[0]["created_at"], n["created_at"])
        # Joining by that hostname finds the same row: already active.
        j = s.join("views-created.example.com")
        self.assertEqual(j["registration_code"], "ACTIVE")
        self.assertEqual(int(j["request_id"]), rid)
        # A rename through PUT keeps the row: same integer id, same hostname, and
        # the management list finds it under the new name.
        r = self.put("/api/v1/nodes/" + n["node_id"], {"name": "views-renamed"})
        self.assertEqual(r.status, 200, r)
        d = self.get("/api/v1/nodes/%d" % rid).json()
        self.assertEqual((d["id"], d["hostname"], d["status"]), (rid, "views-created.example.com", "active"))
        self.assertEqual(self.node_of("views-created.example.com")["name"], "views-renamed")
        # Stats from the created node's key show in both views.
        key = collect_key(s, n)
        self.assertEqual(s.report(key, cpu_usage=41, disk_usage=7).status, 200)
        d = self.get("/api/v1/nodes/%d" % rid).json()
        self.assertEqual(d["stats"][0]["cpu_usage"], 41)
        self.assertEqual(self.node(n["node_id"])["last_heartbeat"], d["last_seen"])
        res = self.get("/api/v1/nodes/%s/resources" % n["node_id"]).json()
        self.assertEqual(res["current"]["cpu_percent"], 41)
        self.assertEqual(res["current"]["disk_percent"], 7)

    def test_pending_join_is_listed_with_its_status(self):
        j = self.server.join("views-pending.example.com")
        m = self.node_of("views-pending.example.com")
        self.assertEqual((m["registration_status"], m["status"], m["name"]),
                         ("pending", "inactive", "views-pending.example.com"))
        r = self.post("/api/v1/nodes/approve/%s" % j["request_id"])
        self.assertEqual(r.status, 200, r)
        m = self.node(m["node_id"])
        self.assertEqual((m["registration_status"], m["status"]), ("active", "starting"))


if __name__ == "__main__":
    unittest.main()
