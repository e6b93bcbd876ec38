"""api-gateway.md: sessions (state machine), chunk upload (limits, atomic
files, bandwidth) and manifests (Merkle root recomputed here, independently
of the server's code, from docs/merkle.md)."""
import hashlib
import os
import unittest
import uuid

from lucidtest import ServerTestCase

API = "/api/v1"


def merkle_root(leaves):
    """RFC 6962 MTH over raw leaf data (docs/merkle.md), written from the page."""
    def lh(d):
        return hashlib.sha256(b"\x00" + d).digest()

    def nh(l, r):
        return hashlib.sha256(b"\x01" + l + r).digest()

    def mth(items):
        n = len(items)
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return lh(items[0])
        k = 1
        while k * 2 < n:
            k *= 2
        return nh(mth(items[:k]), mth(items[k:]))

    return mth(list(leaves)).hex()


class GatewayCase(ServerTestCase):
    def user(self, role="user"):
        sub = str(uuid.uuid4())
        return sub, self.server.token(role, sub=sub)

    def assertError(self, r, status, code, field=None):
        self.assertEqual(r.status, status, r)
        err = r.json()["error"]
        self.assertEqual(err["code"], code, r)
        for k in ("message", "details", "request_id", "timestamp"):
            self.assertIn(k, err, r)
        self.assertEqual(err["service"], "api-gateway")
        if field is not None:
            self.assertEqual(err["details"].get("field"), field, r)
        return err


class Sessions(GatewayCase):
    server_args = ["--max-chunk-bytes", "65536", "--max-session-bytes", "200000", "--chunk-bandwidth", "0"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.data_dir = cls.server.data_dir  # --data-dir default (given explicitly on PostgreSQL)

    def setUp(self):
        self.uid, self.tok = self.user()

    def create(self, name="rec", token=None, **extra):
        body = {"name": name}
        body.update(extra)
        r = self.server.request("POST", API + "/sessions", body, token=token or self.tok)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def upload(self, sid, data, index=None, token=None, headers=None):
        path = API + "/sessions/%s/chunks" % sid
        if index is not None:
            path += "?index=%s" % index
        hdrs = {"Content-Type": "application/octet-stream"}
        hdrs.update(headers or {})
        return self.server.request("POST", path, body=data, headers=hdrs, token=token or self.tok)

    def set_status(self, sid, status, token=None):
        return self.server.request("PUT", API + "/sessions/" + sid, {"status": status}, token=token or self.tok)

    # ---- CRUD ----

    def test_create_and_get(self):
        s = self.create("first", description="d")
        self.assertEqual(s["user_id"], self.uid)
        self.assertEqual(s["status"], "active")
        self.assertEqual((s["name"], s["description"], s["size_bytes"], s["chunk_count"]), ("first", "d", 0, 0))
        for k in ("session_id", "created_at", "updated_at", "started_at", "completed_at", "duration"):
            self.assertIn(k, s)
        self.assertIsNone(s["completed_at"])
        uuid.UUID(s["session_id"])
        r = self.server.request("GET", API + "/sessions/" + s["session_id"], token=self.tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["session_id"], s["session_id"])
        r = self.server.request("GET", API + "/sessions/" + s["session_id"].upper(), token=self.tok)
        self.assertEqual(r.status, 200, r)

    def test_create_validation(self):
        r = self.server.request("POST", API + "/sessions", {}, token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1002", "name")
        r = self.server.request("POST", API + "/sessions", {"name": ""}, token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1003", "name")
        r = self.server.request("POST", API + "/sessions", {"name": "x" * 256}, token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1003", "name")
        r = self.server.request("POST", API + "/sessions", {"name": "é" * 255}, token=self.tok)
        self.assertEqual(r.status, 201, r)
        r = self.server.request("POST", API + "/sessions", {"name": 5}, token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1003", "name")
        r = self.server.request("POST", API + "/sessions", {"name": "a", "description": "x" * 1001}, token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1003", "description")
        r = self.server.request("POST", API + "/sessions", body="{nope", token=self.tok,
                                headers={"Content-Type": "application/json"})
        self.assertError(r, 400, "LUCID_ERR_1009")
        r = self.server.request("POST", API + "/sessions", body=b"[" * 10 + b"x" * (1024 * 1024), token=self.tok)
        self.assertError(r, 413, "LUCID_ERR_1010")

    def test_authentication(self):
        r = self.server.request("GET", API + "/sessions")
        self.assertError(r, 401, "LUCID_ERR_2003")
        self.assertEqual(r.headers.get("www-authenticate"), "Bearer")
        r = self.server.request("POST", API + "/sessions", {"name": "x"}, token="not.a.token")
        self.assertError(r, 401, "LUCID_ERR_2003")

    def test_ids_and_ownership(self):
        s = self.create()
        sid = s["session_id"]
        r = self.server.request("GET", API + "/sessions/not-a-uuid", token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1005", "session_id")
        r = self.server.request("GET", API + "/sessions/" + str(uuid.uuid4()), token=self.tok)
        self.assertError(r, 404, "LUCID_ERR_4001")
        _, other = self.user()
        for method, path, body in (("GET", "", None), ("PUT", "", {"name": "x"}), ("DELETE", "", None)):
            r = self.server.request(method, API + "/sessions/" + sid + path, body, token=other)
            self.assertError(r, 403, "LUCID_ERR_2004")
        r = self.upload(sid, b"abc", token=other)
        self.assertError(r, 403, "LUCID_ERR_2004")
        _, admin = self.user("admin")
        r = self.server.request("GET", API + "/sessions/" + sid, token=admin)
        self.assertEqual(r.status, 200, r)
        # Issue 12 item 7: an admin reads another user's session, never changes or deletes it.
        for method, path, body in (("PUT", "", {"name": "x"}), ("PUT", "", {"status": "cancelled"}),
                                   ("DELETE", "", None)):
            r = self.server.request(method, API + "/sessions/" + sid + path, body, token=admin)
            self.assertError(r, 403, "LUCID_ERR_2004")
        self.assertError(self.upload(sid, b"abc", token=admin), 403, "LUCID_ERR_2004")
        r = self.server.request("POST", API + "/manifests", {"session_id": sid}, token=admin)
        self.assertError(r, 403, "LUCID_ERR_2004")
        r = self.server.request("GET", API + "/sessions/" + sid, token=self.tok)
        self.assertEqual((r.json()["name"], r.json()["status"], r.json()["chunk_count"]), (s["name"], "active", 0))
        r = self.server.request("PATCH", API + "/sessions/" + sid, {"name": "x"}, token=self.tok)
        self.assertError(r, 405, "LUCID_ERR_4003")
        r = self.server.request("GET", API + "/sessions/" + sid + "/nothing", token=self.tok)
        self.assertError(r, 404, "LUCID_ERR_4001")

    def test_list_pagination_filter_sort(self):
        names = ["c", "a", "b"]
        ids = [self.create(n)["session_id"] for n in names]
        self.set_status(ids[0], "cancelled")
        r = self.server.request("GET", API + "/sessions?limit=2", token=self.tok)
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["pagination"], {"page": 1, "limit": 2, "total": 3, "pages": 2})
        self.assertEqual([s["session_id"] for s in body["sessions"]], [ids[2], ids[1]])  # newest first
        r = self.server.request("GET", API + "/sessions?limit=2&page=2", token=self.tok)
        self.assertEqual([s["session_id"] for s in r.json()["sessions"]], [ids[0]])
        r = self.server.request("GET", API + "/sessions?sort=name", token=self.tok)
        self.assertEqual([s["name"] for s in r.json()["sessions"]], ["a", "b", "c"])
        r = self.server.request("GET", API + "/sessions?status=cancelled", token=self.tok)
        self.assertEqual([s["session_id"] for s in r.json()["sessions"]], [ids[0]])
        self.assertEqual(r.json()["pagination"]["total"], 1)
        r = self.server.request("GET", API + "/sessions?sort=updated_at", token=self.tok)
        self.assertEqual(r.json()["sessions"][0]["session_id"], ids[0])
        _, other = self.user()
        r = self.server.request("GET", API + "/sessions", token=other)
        self.assertEqual(r.json()["sessions"], [])
        r = self.server.request("GET", API + "/sessions?status=paused", token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1003", "status")
        r = self.server.request("GET", API + "/sessions?sort=size", token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1003", "sort")
        r = self.server.request("GET", API + "/sessions?limit=101", token=self.tok)
        self.assertEqual(r.status, 400, r)
        r = self.server.request("GET", API + "/sessions?page=0", token=self.tok)
        self.assertEqual(r.status, 400, r)

    # ---- state machine ----

    def test_state_machine(self):
        for end in ("completed", "failed", "cancelled"):
            sid = self.create()["session_id"]
            r = self.set_status(sid, "active")  # no change
            self.assertEqual(r.status, 200, r)
            r = self.set_status(sid, end)
            self.assertEqual(r.status, 200, r)
            s = r.json()
            self.assertEqual(s["status"], end)
            self.assertIsNotNone(s["completed_at"])
            r = self.set_status(sid, end)  # same state again: no change
            self.assertEqual(r.status, 200, r)
            for other in ("active", "completed", "failed", "cancelled"):
                if other == end:
                    continue
                r = self.set_status(sid, other)
                self.assertError(r, 409, "LUCID_ERR_4007")
            # name and description still change; status stays
            r = self.server.request("PUT", API + "/sessions/" + sid, {"name": "renamed", "description": ""},
                                    token=self.tok)
            self.assertEqual(r.status, 200, r)
            self.assertEqual((r.json()["name"], r.json()["status"]), ("renamed", end))
        r = self.set_status(sid, "paused")
        self.assertError(r, 400, "LUCID_ERR_1003", "status")
        r = self.server.request("PUT", API + "/sessions/" + sid, {"name": ""}, token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1003", "name")

    def test_delete_removes_rows_and_files(self):
        sid = self.create()["session_id"]
        self.assertEqual(self.upload(sid, b"x" * 100).status, 201)
        d = os.path.join(self.data_dir, "sessions", sid)
        self.assertTrue(os.path.isdir(d))
        r = self.server.request("DELETE", API + "/sessions/" + sid, token=self.tok)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        self.assertFalse(os.path.exists(d))
        r = self.server.request("GET", API + "/sessions/" + sid, token=self.tok)
        self.assertError(r, 404, "LUCID_ERR_4001")
        r = self.server.request("DELETE", API + "/sessions/" + sid, token=self.tok)
        self.assertError(r, 404, "LUCID_ERR_4001")

    # ---- chunks ----

    def test_chunks_stored_atomically_with_hashes(self):
        sid = self.create()["session_id"]
        data = [os.urandom(1000), os.urandom(65536), b"z"]
        for i, d in enumerate(data):
            r = self.upload(sid, d, headers={"X-Chunk-SHA256": hashlib.sha256(d).hexdigest().upper()} if i == 0 else None)
            self.assertEqual(r.status, 201, r)
            c = r.json()
            self.assertEqual((c["index"], c["size"], c["hash"]), (i, len(d), hashlib.sha256(d).hexdigest()))
            path = os.path.join(self.data_dir, "sessions", sid, c["chunk_id"] + ".chunk")
            with open(path, "rb") as f:
                self.assertEqual(f.read(), d)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertEqual(os.listdir(os.path.join(self.data_dir, "sessions", sid)).__len__(), 3)  # no temp files
        s = self.server.request("GET", API + "/sessions/" + sid, token=self.tok).json()
        self.assertEqual((s["chunk_count"], s["size_bytes"]), (3, sum(map(len, data))))

    def test_chunk_errors(self):
        sid = self.create()["session_id"]
        r = self.upload(sid, b"a" * 65537)
        self.assertError(r, 413, "LUCID_ERR_4006")
        r = self.upload(sid, b"a" * (1024 * 1024 + 1))
        self.assertError(r, 413, "LUCID_ERR_1010")
        r = self.upload(sid, b"")
        self.assertError(r, 400, "LUCID_ERR_1003")
        r = self.upload(sid, b"abc", headers={"X-Chunk-SHA256": "00" * 32})
        self.assertError(r, 400, "LUCID_ERR_1003", "X-Chunk-SHA256")
        r = self.upload(sid, b"abc", headers={"X-Chunk-SHA256": "xyz"})
        self.assertError(r, 400, "LUCID_ERR_1003", "X-Chunk-SHA256")
        r = self.upload(sid, b"abc", index=-1)
        self.assertEqual(r.status, 400, r)
        r = self.upload(sid, b"abc", index="x")
        self.assertEqual(r.status, 400, r)
        r = self.upload(sid, b"abc", index=100000)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.upload(sid, b"abc", index=5).status, 201)
        r = self.upload(sid, b"def", index=5)
        self.assertError(r, 409, "LUCID_ERR_4002")
        r = self.upload("nope", b"abc")
        self.assertError(r, 400, "LUCID_ERR_1005")
        r = self.upload(str(uuid.uuid4()), b"abc")
        self.assertError(r, 404, "LUCID_ERR_4001")
        # nothing of the refused uploads stayed
        s = self.server.request("GET", API + "/sessions/" + sid, token=self.tok).json()
        self.assertEqual((s["chunk_count"], s["size_bytes"]), (1, 3))
        self.assertEqual(len(os.listdir(os.path.join(self.data_dir, "sessions", sid))), 1)
        # a gap: cannot complete
        r = self.set_status(sid, "completed")
        self.assertError(r, 409, "LUCID_ERR_4007")
        self.assertIn("index 0", r.json()["error"]["message"])

    def test_session_size_limit(self):
        sid = self.create()["session_id"]
        for _ in range(3):
            self.assertEqual(self.upload(sid, b"q" * 65536).status, 201)  # 196,608 bytes
        r = self.upload(sid, b"q" * 4000)
        self.assertError(r, 413, "LUCID_ERR_4005")
        self.assertEqual(self.upload(sid, b"q" * 3392).status, 201)  # exactly 200,000
        r = self.upload(sid, b"q")
        self.assertError(r, 413, "LUCID_ERR_4005")

    def test_chunks_only_while_active(self):
        sid = self.create()["session_id"]
        self.assertEqual(self.upload(sid, b"abc").status, 201)
        self.assertEqual(self.set_status(sid, "completed").status, 200)
        r = self.upload(sid, b"more")
        self.assertError(r, 409, "LUCID_ERR_4007")

    # ---- manifests ----

    def test_manifest_root_recomputed(self):
        sid = self.create()["session_id"]
        chunks = [os.urandom(n) for n in (10, 300, 65536, 1, 999)]
        # out of order upload: explicit indexes
        for i in (3, 0, 4, 1, 2):
            self.assertEqual(self.upload(sid, chunks[i], index=i).status, 201)
        r = self.server.request("POST", API + "/manifests", {"session_id": sid}, token=self.tok)
        self.assertError(r, 409, "LUCID_ERR_4007")  # still active
        self.assertEqual(self.set_status(sid, "completed").status, 200)
        r = self.server.request("POST", API + "/manifests", {"session_id": sid}, token=self.tok)
        self.assertEqual(r.status, 201, r)
        m = r.json()
        digests = [hashlib.sha256(c).digest() for c in chunks]
        self.assertEqual(m["merkle_root"], merkle_root(digests))
        self.assertEqual((m["session_id"], m["chunk_count"], m["total_size"]), (sid, 5, sum(map(len, chunks))))
        self.assertEqual([c["index"] for c in m["chunks"]], [0, 1, 2, 3, 4])
        self.assertEqual([c["hash"] for c in m["chunks"]], [d.hex() for d in digests])
        self.assertEqual([c["size"] for c in m["chunks"]], [len(c) for c in chunks])
        r = self.server.request("POST", API + "/manifests", {"session_id": sid}, token=self.tok)
        self.assertError(r, 409, "LUCID_ERR_4002")

        mid = m["manifest_id"]
        r = self.server.request("GET", API + "/manifests/" + mid, token=self.tok)
        self.assertEqual(r.status, 200, r)
        g = r.json()
        self.assertEqual(g["merkle_root"], m["merkle_root"])
        self.assertEqual(g["verification"], {"mode": "presence", "ok": True, "missing": [], "corrupt": []})
        r = self.server.request("GET", API + "/manifests/" + mid + "?verify=content", token=self.tok)
        self.assertEqual(r.json()["verification"]["ok"], True)

        # damage: one file flipped (same size), one removed
        files = {c["index"]: os.path.join(self.data_dir, "sessions", sid, c["chunk_id"] + ".chunk") for c in m["chunks"]}
        with open(files[1], "r+b") as f:
            f.write(b"\xff" if chunks[1][:1] != b"\xff" else b"\x00")
        os.unlink(files[3])
        r = self.server.request("GET", API + "/manifests/" + mid, token=self.tok)
        self.assertEqual(r.json()["verification"], {"mode": "presence", "ok": False, "missing": [3], "corrupt": []})
        r = self.server.request("GET", API + "/manifests/" + mid + "?verify=content", token=self.tok)
        self.assertEqual(r.json()["verification"], {"mode": "content", "ok": False, "missing": [3], "corrupt": [1]})

    def test_manifest_small_trees(self):
        for n in (0, 1, 2, 3, 7, 9):
            sid = self.create()["session_id"]
            chunks = [bytes([i]) * (i + 1) for i in range(n)]
            for c in chunks:
                self.assertEqual(self.upload(sid, c).status, 201)
            self.assertEqual(self.set_status(sid, "completed").status, 200)
            r = self.server.request("POST", API + "/manifests", {"session_id": sid}, token=self.tok)
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json()["merkle_root"], merkle_root([hashlib.sha256(c).digest() for c in chunks]), n)

    def test_manifest_errors(self):
        r = self.server.request("POST", API + "/manifests", {}, token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1002", "session_id")
        r = self.server.request("POST", API + "/manifests", {"session_id": "x"}, token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1005", "session_id")
        r = self.server.request("POST", API + "/manifests", {"session_id": str(uuid.uuid4())}, token=self.tok)
        self.assertError(r, 404, "LUCID_ERR_4001")
        r = self.server.request("POST", API + "/manifests", body="nope", token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1009")
        r = self.server.request("POST", API + "/manifests", {"session_id": str(uuid.uuid4())})
        self.assertError(r, 401, "LUCID_ERR_2003")
        sid = self.create()["session_id"]
        self.upload(sid, b"abc")
        self.set_status(sid, "completed")
        _, other = self.user()
        r = self.server.request("POST", API + "/manifests", {"session_id": sid}, token=other)
        self.assertError(r, 403, "LUCID_ERR_2004")
        mid = self.server.request("POST", API + "/manifests", {"session_id": sid}, token=self.tok).json()["manifest_id"]
        r = self.server.request("GET", API + "/manifests/" + mid, token=other)
        self.assertError(r, 403, "LUCID_ERR_2004")
        r = self.server.request("GET", API + "/manifests/" + mid)
        self.assertError(r, 401, "LUCID_ERR_2003")
        r = self.server.request("GET", API + "/manifests/" + str(uuid.uuid4()), token=self.tok)
        self.assertError(r, 404, "LUCID_ERR_4001")
        r = self.server.request("GET", API + "/manifests/abc", token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1005", "manifest_id")
        r = self.server.request("GET", API + "/manifests/" + mid + "?verify=all", token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1003", "verify")
        # deleting the session deletes its manifest
        self.server.request("DELETE", API + "/sessions/" + sid, token=self.tok)
        r = self.server.request("GET", API + "/manifests/" + mid, token=self.tok)
        self.assertError(r, 404, "LUCID_ERR_4001")


class ChunkBandwidth(GatewayCase):
    # 64 KiB/s per user: one 64 KiB chunk passes, the next at once is refused.
    server_args = ["--max-chunk-bytes", "65536", "--chunk-bandwidth", "65536"]

    def test_bandwidth_limit(self):
        _, tok = self.user()
        sid = self.server.request("POST", API + "/sessions", {"name": "bw"}, token=tok).json()["session_id"]
        path = API + "/sessions/%s/chunks" % sid
        r = self.server.request("POST", path, body=b"a" * 65536, token=tok)
        self.assertEqual(r.status, 201, r)
        r = self.server.request("POST", path, body=b"b" * 65536, token=tok)
        self.assertError(r, 429, "LUCID_ERR_3004")
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        # per user: another user is not held back
        _, tok2 = self.user()
        sid2 = self.server.request("POST", API + "/sessions", {"name": "bw"}, token=tok2).json()["session_id"]
        r = self.server.request("POST", API + "/sessions/%s/chunks" % sid2, body=b"c" * 65536, token=tok2)
        self.assertEqual(r.status, 201, r)
        # nothing of the refused chunk was stored
        s = self.server.request("GET", API + "/sessions/" + sid, token=tok).json()
        self.assertEqual(s["chunk_count"], 1)


if __name__ == "__main__":
    unittest.main()
