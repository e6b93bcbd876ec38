"""Issue 16: lucid-server serves the web console under /ui/ (routes/console.cpp).

A console directory made here (index.html, a content-hashed bundle, a
stylesheet, a file in a subdirectory, a dotfile) is served through --ui-dir,
so this module does not need npm: security headers on every answer (errors
too), Content-Types, cache headers and ETag revalidation, the SPA routes,
redirects, path traversal in raw and percent-encoded forms, and a server
without the console. Also the API additions the console uses:
GET /api/v1/chain/verify, GET /api/v1/nodes/?status= and the node-management
node object's integer `id` (the node page's key to quota, sites and backups)."""
import os
import shutil
import tempfile
import unittest

from lucidtest import Server, parse_raw_response, raw_exchange

INDEX = b'<!doctype html><html><head><link rel="stylesheet" href="/ui/app-ABCD1234.css"></head><body><div id="app"></div><script type="module" src="/ui/app-ABCD1234.js"></script></body></html>'
BUNDLE = b'console.log("the console");'

CSP_MUST = ("default-src 'self'", "frame-ancestors 'none'", "script-src 'self'", "style-src 'self'", "object-src 'none'")


def make_console(parent):
    d = os.path.join(parent, "ui")
    os.makedirs(os.path.join(d, "assets"))
    files = {"index.html": INDEX, "app-ABCD1234.js": BUNDLE, "app-ABCD1234.css": b"body{margin:0}",
             "icon.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>", ".secret": b"dotfile",
             "assets/inner.js": b"nested"}
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    return d


class ConsoleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lucid-console-")
        cls.ui = make_console(cls.tmp)
        cls.server = Server(["--ui-dir", cls.ui]).start()
        cls.admin = cls.server.token("super_admin")

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        cls.server.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, rc

    def assertSecure(self, r):
        csp = r.headers.get("content-security-policy", "")
        for part in CSP_MUST:
            self.assertIn(part, csp, r.headers)
        self.assertNotIn("unsafe-inline", csp)
        self.assertEqual(r.headers.get("x-content-type-options"), "nosniff")
        self.assertEqual(r.headers.get("referrer-policy"), "no-referrer")
        self.assertEqual(r.headers.get("x-frame-options"), "DENY")
        self.assertNotIn("access-control-allow-origin", r.headers)

    def raw_get(self, target):
        data = raw_exchange(self.server, ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target).encode())
        return parse_raw_response(data)

    def test_index_and_spa_routes(self):
        for path in ("/ui/", "/ui/fleet", "/ui/work", "/ui/nodes/node_0123456789abcdef", "/ui/workflows/42"):
            r = self.server.request("GET", path)
            self.assertEqual(r.status, 200, path)
            self.assertEqual(r.body, INDEX, path)
            self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")
            self.assertEqual(r.headers["cache-control"], "no-cache")
            self.assertSecure(r)

    def test_content_types_and_cache(self):
        r = self.server.request("GET", "/ui/app-ABCD1234.js")
        self.assertEqual((r.status, r.body), (200, BUNDLE))
        self.assertEqual(r.headers["content-type"], "text/javascript; charset=utf-8")
        self.assertEqual(r.headers["cache-control"], "public, max-age=31536000, immutable")
        self.assertSecure(r)
        r = self.server.request("GET", "/ui/app-ABCD1234.css")
        self.assertEqual(r.headers["content-type"], "text/css; charset=utf-8")
        r = self.server.request("GET", "/ui/icon.svg")
        self.assertEqual(r.headers["content-type"], "image/svg+xml")
        self.assertEqual(r.headers["cache-control"], "no-cache")  # not content-hashed
        # Revalidation: the ETag gives 304 without a body.
        etag = r.headers["etag"]
        r2 = self.server.request("GET", "/ui/icon.svg", headers={"If-None-Match": etag})
        self.assertEqual((r2.status, r2.body), (304, b""))
        self.assertSecure(r2)
        r3 = self.server.request("GET", "/ui/icon.svg", headers={"If-None-Match": '"other"'})
        self.assertEqual(r3.status, 200)
        # HEAD: headers without the body.
        r4 = self.server.request("HEAD", "/ui/app-ABCD1234.js")
        self.assertEqual((r4.status, r4.body), (200, b""))
        self.assertEqual(r4.headers["content-type"], "text/javascript; charset=utf-8")

    def test_redirects(self):
        for path, status in (("/", 302), ("/dashboard", 302), ("/ui", 308)):
            r = self.server.request("GET", path)
            self.assertEqual(r.status, status, path)
            self.assertEqual(r.headers["location"], "/ui/", path)
            self.assertSecure(r)

    def test_missing_files_and_methods(self):
        for path in ("/ui/nope.js", "/ui/.secret", "/ui/assets/inner.js", "/ui/a/b/c", "/ui/x.y/z"):
            r = self.server.request("GET", path)
            self.assertEqual(r.status, 404, path)
            self.assertNotIn(b"dotfile", r.body)
            self.assertNotIn(b"nested", r.body)
            self.assertSecure(r)
        # Paths beside the console keep the API's 404 body.
        for path in ("/uix", "/favicon.ico", "/api"):
            r = self.server.request("GET", path)
            self.assertEqual((r.status, r.json()), (404, {"detail": "Not Found"}), path)
        for path in ("/", "/dashboard", "/ui"):
            r = self.server.request("POST", path, body=b"x")
            self.assertEqual(r.status, 405, path)
            self.assertSecure(r)
        r = self.server.request("POST", "/ui/", body=b"x")
        self.assertEqual(r.status, 405)
        self.assertSecure(r)
        r = self.server.request("DELETE", "/ui/app-ABCD1234.js")
        self.assertEqual(r.status, 405)

    def test_path_traversal_refused(self):
        # The database and its signing key sit beside each other in the
        # server's directory; no spelling of a path reaches them (or anything
        # outside the console's in-memory files).
        db = os.path.basename(self.server.db)
        targets = ["/ui/../" + db, "/ui/..%2f" + db, "/ui/%2e%2e/" + db, "/ui/%2e%2e%2f" + db, "/ui/..%5c" + db,
                   "/ui/%252e%252e/" + db, "/ui/....//" + db, "/ui/%00index.html", "/ui/index.html%00.js",
                   "/ui/./index.html", "/ui/%2findex.html", "/ui//etc/passwd", "/ui/..", "/ui/%2e%2e",
                   "/ui/" + "a" * 5000, "/ui/" + os.path.join(self.tmp, "ui", "index.html")]
        for t in targets:
            r = self.raw_get(t)
            self.assertIn(r.status, (400, 404, 414, 431), t)
            self.assertNotIn(b"SQLite format", r.body, t)
            self.assertNotIn(b"BEGIN", r.body, t)
            self.assertLess(r.status, 500, t)
        # The decoded form of a plain name is the file itself.
        self.assertEqual(self.raw_get("/ui/%69ndex.html").status, 200)

    def test_chain_verify(self):
        r = self.server.request("GET", "/api/v1/chain/verify", token=self.admin)
        self.assertEqual(r.status, 200, r)
        v = r.json()
        self.assertIs(v["ok"], True)
        self.assertGreaterEqual(v["blocks"], 1)  # genesis
        self.assertIsNone(v["problem"])
        self.assertIsNone(v["broken_height"])
        self.assertEqual(self.server.request("GET", "/api/v1/chain/verify").status, 401)
        viewer = self.server.token("viewer")
        r = self.server.request("GET", "/api/v1/chain/verify", token=viewer)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json()["error"]["code"], "LUCID_ERR_2004")
        self.assertEqual(self.server.request("POST", "/api/v1/chain/verify", token=self.admin).status, 405)

    def test_nodes_status_filter(self):
        pending = self.server.join("console-pending-1")
        active = self.server.join_and_approve("console-active-1", self.admin)
        del active
        r = self.server.request("GET", "/api/v1/nodes/?status=pending", token=self.admin)
        self.assertEqual(r.status, 200)
        names = [n["hostname"] for n in r.json()]
        self.assertIn("console-pending-1", names)
        self.assertNotIn("console-active-1", names)
        self.assertTrue(all(n["status"] == "pending" for n in r.json()))
        r = self.server.request("GET", "/api/v1/nodes/?status=active&limit=1000", token=self.admin)
        names = [n["hostname"] for n in r.json()]
        self.assertIn("console-active-1", names)
        self.assertNotIn("console-pending-1", names)
        for bad in ("PENDING", "x", "", "pending%00"):
            r = self.server.request("GET", "/api/v1/nodes/?status=" + bad, token=self.admin)
            self.assertEqual(r.status, 422, bad)
            self.assertEqual(r.json()["detail"][0]["loc"], ["query", "status"])
        self.assertIsNotNone(pending)

    def test_management_node_id_keys_the_registration_routes(self):
        # The console's node page holds a node_… id; the registration
        # document's quota, sites and backups routes take the row's integer
        # id, which the management object now carries.
        joined, key = self.server.join_and_approve("console-quota-1", self.admin)
        r = self.server.request("POST", "/api/v1/stats/sites", {"sites": [{"site_name": "one.example", "used_bytes": 1 << 30,
                                                                           "quota_gb": 2}]},
                                headers={"X-API-KEY": key})
        self.assertEqual(r.status, 200, r)
        r = self.server.request("POST", "/api/v1/stats/backups", {"site_name": "one.example", "filename": "one.tar.zst",
                                                                  "size_bytes": 10}, headers={"X-API-KEY": key})
        self.assertEqual(r.status, 201, r)
        created = self.server.request("POST", "/api/v1/nodes", {"name": "console-made-1"}, token=self.admin)
        self.assertEqual(created.status, 201, created)
        self.assertIs(type(created.json()["id"]), int, created)
        listed = self.server.request("GET", "/api/v1/nodes?limit=100", token=self.admin)
        self.assertEqual(listed.status, 200, listed)
        by_host = {n["hostname"]: n for n in listed.json()["nodes"]}
        self.assertEqual(by_host["console-quota-1"]["id"], joined)
        self.assertEqual(by_host["console-made-1"]["id"], created.json()["id"])
        ids = [n["id"] for n in listed.json()["nodes"]]
        self.assertEqual(len(ids), len(set(ids)))
        for n in listed.json()["nodes"]:
            self.assertIs(type(n["id"]), int, n)
            one = self.server.request("GET", "/api/v1/nodes/" + n["node_id"], token=self.admin).json()
            self.assertEqual(one["id"], n["id"])
            # The integer id names the same row in the registration view.
            reg = self.server.request("GET", "/api/v1/nodes/%d" % n["id"], token=self.admin)
            self.assertEqual(reg.status, 200, reg)
            self.assertEqual(reg.json()["hostname"], n["hostname"])
        # What the node page reads with it.
        nid = by_host["console-quota-1"]["id"]
        q = self.server.request("GET", "/api/v1/nodes/%d/quota/status" % nid, token=self.admin)
        self.assertEqual(q.status, 200, q)
        self.assertEqual((q.json()["node_id"], q.json()["hostname"]), (nid, "console-quota-1"))
        self.assertEqual([s["site_name"] for s in q.json()["sites_breakdown"]], ["one.example"])
        r = self.server.request("GET", "/api/v1/nodes/%d/sites" % nid, token=self.admin)
        self.assertEqual([s["site_name"] for s in r.json()["sites"]], ["one.example"])
        r = self.server.request("GET", "/api/v1/nodes/%d/backups" % nid, token=self.admin)
        self.assertEqual([b["filename"] for b in r.json()["backups"]], ["one.tar.zst"])
        # A node made through the management document has no sites or backups: empty lists, not errors.
        made = created.json()["id"]
        r = self.server.request("GET", "/api/v1/nodes/%d/sites" % made, token=self.admin)
        self.assertEqual((r.status, r.json()), (200, {"sites": [], "total": 0}))
        r = self.server.request("GET", "/api/v1/nodes/%d/backups" % made, token=self.admin)
        self.assertEqual((r.status, r.json()), (200, {"backups": [], "total": 0}))
        q = self.server.request("GET", "/api/v1/nodes/%d/quota/status" % made, token=self.admin)
        self.assertEqual((q.status, q.json()["sites_breakdown"], q.json()["used_gb"]), (200, [], 0))
        # The quota form's answers: a super admin's update, a validation error
        # in the registration document's 422 shape, an admin's 403.
        r = self.server.request("PUT", "/api/v1/nodes/%d/quota" % nid, {"storage_quota_gb": 0}, token=self.admin)
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["detail"][0]["loc"], ["body", "storage_quota_gb"])
        r = self.server.request("PUT", "/api/v1/nodes/%d/quota" % nid, {"storage_quota_gb": 250}, token=self.server.token("admin"))
        self.assertEqual(r.status, 403, r)
        r = self.server.request("PUT", "/api/v1/nodes/%d/quota" % nid, {"storage_quota_gb": 250}, token=self.admin)
        self.assertEqual((r.status, r.json()["storage_quota_gb"]), (200, 250), r)
        one = self.server.request("GET", "/api/v1/nodes/" + by_host["console-quota-1"]["node_id"], token=self.admin).json()
        self.assertEqual(one["id"], nid)


class ConsoleDirBoundsTest(unittest.TestCase):
    def test_oversized_ui_dir_refused_at_start(self):
        # A --ui-dir with index.html and more than 256 files (the wrong
        # directory, say) stops the server with exit 2, before it listens.
        d = tempfile.mkdtemp(prefix="lucid-bigui-")
        try:
            for i in range(257):
                with open(os.path.join(d, "f%03d.txt" % i), "w") as f:
                    f.write("x")
            with open(os.path.join(d, "index.html"), "w") as f:
                f.write("<!doctype html>")
            server = Server(["--ui-dir", d])
            with self.assertRaises(RuntimeError) as cm:
                server.start(timeout=20)
            self.assertIn("more than 256 files", str(cm.exception))
            self.assertEqual(server.proc.wait(10), 2)
            server.cleanup()
        finally:
            shutil.rmtree(d, ignore_errors=True)


class ConsoleNotBuiltTest(unittest.TestCase):
    def test_not_built_page(self):
        empty = tempfile.mkdtemp(prefix="lucid-noui-")
        server = Server(["--ui-dir", empty]).start()
        try:
            for path in ("/ui/", "/ui/fleet"):
                r = server.request("GET", path)
                self.assertEqual(r.status, 404, path)
                self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")
                self.assertIn(b"console was not built", r.body)
                self.assertIn(b"npm run build", r.body)
                self.assertEqual(r.headers["cache-control"], "no-store")
            self.assertEqual(server.request("GET", "/").status, 302)
            self.assertEqual(server.request("GET", "/ui/app.js").status, 404)
            self.assertIn(b"web console: not built", server.read_log().encode() if isinstance(server.read_log(), str) else server.read_log())
        finally:
            rc = server.stop()
            server.cleanup()
            shutil.rmtree(empty, ignore_errors=True)
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    unittest.main()
