"""network-node.md WebSocket: GET /api/ws on the REST port (websocketpp behind
our HTTP server), JWT required (?token= or a first AUTH message), broadcast of
the core's network events, chunked file upload, SERVICE_SEARCH."""
import struct
import base64
import os
import socket
import time
import unittest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lucidtest import ServerTestCase, WebSocket, ed25519_login
from test_network_auth import add_key, peer_id_of


class WsTest(ServerTestCase):
    def ws(self, token=None, path="/api/ws"):
        w = WebSocket(self.server, path, token=token)
        self.addCleanup(w.close)
        return w

    def active(self):
        return self.server.request("GET", "/api/node/status", token=self.admin).json()["stats"]["active_connections"]

    def wait_active(self, n):
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.active() == n:
                return
            time.sleep(0.05)
        self.assertEqual(self.active(), n)

    def test_query_token_and_broadcast(self):
        w = self.ws(self.admin)
        self.assertEqual(w.status, 101)
        w2 = self.ws(self.admin)
        self.wait_active(2)
        r = self.server.request("POST", "/api/blacklist", {"peer_id": "12D3KooWws"}, token=self.admin)
        self.assertEqual(r.status, 201)
        for c in (w, w2):
            m = c.recv_type("BLACKLIST_UPDATED")
            self.assertEqual(m["payload"], {"action": "added", "peer_id": "12D3KooWws", "reason": "Manually blacklisted"})
        self.server.request("DELETE", "/api/blacklist/12D3KooWws", token=self.admin)
        self.assertEqual(w.recv_type("BLACKLIST_UPDATED")["payload"], {"action": "removed", "peer_id": "12D3KooWws"})
        w2.close()
        self.wait_active(1)

    def test_first_message_auth_with_challenge_login_token(self):
        key = Ed25519PrivateKey.generate()
        add_key(self.server, key, "viewer")
        token = ed25519_login(self.server, key).json()["token"]
        w = self.ws()
        self.assertEqual(w.status, 101)
        w.send({"type": "AUTH", "payload": {"token": token}})
        m = w.recv()
        self.assertEqual(m["type"], "AUTH_OK")
        self.assertEqual(m["payload"]["subject"], "peer:" + peer_id_of(key))
        self.server.request("POST", "/api/blacklist", {"peer_id": "12D3KooWx"}, token=self.admin)
        self.assertEqual(w.recv_type("BLACKLIST_UPDATED")["type"], "BLACKLIST_UPDATED")
        self.server.request("DELETE", "/api/blacklist/12D3KooWx", token=self.admin)
        # blacklisting the socket's own peer closes it (policy violation)
        self.server.request("POST", "/api/blacklist", {"peer_id": peer_id_of(key)}, token=self.admin)
        while w.recv() is not None:
            pass
        self.assertEqual(w.close_code, 1008)
        self.server.request("DELETE", "/api/blacklist/" + peer_id_of(key), token=self.admin)

    def test_auth_refusals(self):
        # a bad query token: 401 without upgrading, in the document's format
        w = self.ws("bad.token.here")
        self.assertEqual(w.status, 401)
        # no token: anything but AUTH closes with 1008; a bad AUTH too
        w = self.ws()
        w.send({"type": "SERVICE_SEARCH", "payload": {}})
        self.assertEqual(w.recv()["payload"]["error"], "Unauthorized")
        self.assertIsNone(w.recv())
        self.assertEqual(w.close_code, 1008)
        w = self.ws()
        w.send({"type": "AUTH", "payload": {"token": "nope"}})
        self.assertEqual(w.recv()["type"], "ERROR")
        self.assertIsNone(w.recv())
        self.assertEqual(w.close_code, 1008)
        # unauthenticated sockets receive no events
        w = self.ws()
        self.server.request("POST", "/api/blacklist", {"peer_id": "12D3KooWq"}, token=self.admin)
        self.server.request("DELETE", "/api/blacklist/12D3KooWq", token=self.admin)
        w.send({"type": "AUTH", "payload": {"token": self.admin}})
        self.assertEqual(w.recv()["type"], "AUTH_OK")  # not a BLACKLIST_UPDATED

    def test_not_an_upgrade(self):
        r = self.server.request("GET", "/api/ws", token=self.admin)
        self.assertEqual(r.status, 400, r)
        self.assertIn("error", r.json())
        r = self.server.request("POST", "/api/ws", token=self.admin)
        self.assertEqual(r.status, 405, r)

    def test_bad_messages(self):
        w = self.ws(self.admin)
        w.send("not json")
        self.assertEqual(w.recv()["type"], "ERROR")
        w.send({"payload": {}})
        self.assertEqual(w.recv()["type"], "ERROR")
        w.send({"type": "NOPE", "payload": {}})
        self.assertIn("Unknown message type", w.recv()["payload"]["error"])
        w.send({"type": "SERVICE_SEARCH", "payload": {"limit": 0}})
        self.assertEqual(w.recv()["type"], "ERROR")
        # the socket stays usable
        w.send({"type": "SERVICE_SEARCH", "payload": {"query": "zzz-none"}})
        m = w.recv()
        self.assertEqual(m["type"], "SERVICE_SEARCH_RESULT")
        self.assertEqual(m["payload"]["total"], 0)

    def test_oversized_message_closes(self):
        w = self.ws(self.admin)
        # Declare a 3 MiB frame but send only its start: the server must refuse
        # on the declared size (and closes while a full send would still be
        # writing, which made the client see EPIPE instead of the close frame).
        n = 3 * 1024 * 1024
        head = bytes([0x80 | 0x1, 0x80 | 127]) + struct.pack(">Q", n) + b"\0\0\0\0"
        w.sock.sendall(head + b"x" * 65536)
        self.assertIsNone(w.recv())
        self.assertEqual(w.close_code, 1009)

    def create_service(self, name):
        r = self.server.request("POST", "/api/services", {"name": name, "type": "storage", "description": "a " + name},
                                token=self.admin)
        self.assertIn(r.status, (200, 201), r)
        body = r.json()
        return body.get("id") or body.get("service", {}).get("id")

    def test_service_search(self):
        sid = self.create_service("Weather-Data")
        w = self.ws(self.admin)
        w.send({"type": "SERVICE_SEARCH", "payload": {"query": "weather"}})
        m = w.recv_type("SERVICE_SEARCH_RESULT")
        self.assertEqual(m["payload"]["total"], 1)
        s = m["payload"]["services"][0]
        self.assertEqual((s["id"], s["name"]), (sid, "Weather-Data"))
        me = self.server.request("GET", "/api/node/status", token=self.admin).json()["peer_id"]
        self.assertEqual(s["peer_id"], me)

    def upload(self, w, sid, name, data, chunk=4):
        w.send({"type": "FILE_UPLOAD_START", "payload": {"session_id": "up-" + name, "service_id": sid,
                                                          "file_name": name, "file_size": len(data), "chunk_size": chunk}})
        m = w.recv_type("FILE_UPLOAD_READY")
        self.assertEqual(m["payload"]["session_id"], "up-" + name)
        for i in range(0, len(data), chunk):
            w.send({"type": "FILE_UPLOAD_CHUNK", "payload": {"session_id": "up-" + name, "chunk_index": i // chunk,
                                                              "data": base64.b64encode(data[i:i + chunk]).decode()}})
        w.send({"type": "FILE_UPLOAD_END", "payload": {"session_id": "up-" + name}})
        return w.recv()

    def test_file_upload(self):
        sid = self.create_service("uploads")
        w = self.ws(self.admin)
        data = os.urandom(37)
        m = self.upload(w, sid, "app.bin", data)
        self.assertEqual(m["type"], "FILE_UPLOAD_COMPLETE", m)
        p = m["payload"]
        self.assertEqual(p["path"], "uploads/%d/app.bin" % sid)
        self.assertEqual(p["file_size"], 37)
        with open(os.path.join(self.server.dir, "data", p["path"]), "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertEqual(os.listdir(os.path.join(self.server.dir, "data", "uploads", ".partial")), [])

    def test_upload_errors(self):
        sid = self.create_service("upload-errors")
        w = self.ws(self.admin)

        def start(**kw):
            p = {"session_id": "s", "service_id": sid, "file_name": "f.txt", "file_size": 4, "chunk_size": 4}
            p.update(kw)
            w.send({"type": "FILE_UPLOAD_START", "payload": p})
            return w.recv()

        for bad in [{"file_name": "../escape"}, {"file_name": "/etc/passwd"}, {"file_name": ".hidden"},
                    {"file_name": "a/b"}, {"file_size": -1}, {"file_size": 10 ** 12}, {"chunk_size": 0},
                    {"chunk_size": 10 ** 9}, {"service_id": 999999}, {"service_id": "x"}, {"session_id": ""}]:
            with self.subTest(bad):
                m = start(**bad)
                self.assertEqual(m["type"], "FILE_UPLOAD_ERROR", m)
        # chunk out of order, bad base64, too much data, short file
        self.assertEqual(start()["type"], "FILE_UPLOAD_READY")
        w.send({"type": "FILE_UPLOAD_CHUNK", "payload": {"session_id": "s", "chunk_index": 1, "data": "QUJD"}})
        self.assertEqual(w.recv()["type"], "FILE_UPLOAD_ERROR")
        self.assertEqual(start()["type"], "FILE_UPLOAD_READY")
        w.send({"type": "FILE_UPLOAD_CHUNK", "payload": {"session_id": "s", "chunk_index": 0, "data": "!!!"}})
        self.assertEqual(w.recv()["type"], "FILE_UPLOAD_ERROR")
        self.assertEqual(start(file_size=2)["type"], "FILE_UPLOAD_READY")
        w.send({"type": "FILE_UPLOAD_CHUNK", "payload": {"session_id": "s", "chunk_index": 0, "data": "QUJD"}})
        self.assertEqual(w.recv()["type"], "FILE_UPLOAD_ERROR")
        self.assertEqual(start()["type"], "FILE_UPLOAD_READY")
        w.send({"type": "FILE_UPLOAD_END", "payload": {"session_id": "s"}})
        self.assertEqual(w.recv()["type"], "FILE_UPLOAD_ERROR")
        w.send({"type": "FILE_UPLOAD_CHUNK", "payload": {"session_id": "unknown", "chunk_index": 0, "data": ""}})
        self.assertEqual(w.recv()["type"], "FILE_UPLOAD_ERROR")
        # nothing was stored, no partial file left behind
        self.assertFalse(os.path.exists(os.path.join(self.server.dir, "data", "uploads", str(sid))))
        self.assertEqual(os.listdir(os.path.join(self.server.dir, "data", "uploads", ".partial")), [])

class SlowClientTest(ServerTestCase):
    """A client that does not read is dropped; the others and the bus go on."""

    server_args = ["--ws-max-pending-bytes", "65536"]

    def test_slow_client_is_dropped(self):
        slow = WebSocket(self.server, "/api/ws", token=self.admin, rcvbuf=4096)
        fast = WebSocket(self.server, "/api/ws", token=self.admin)
        self.addCleanup(slow.close)
        self.addCleanup(fast.close)
        status = lambda: self.server.request("GET", "/api/node/status", token=self.admin).json()["stats"]["active_connections"]
        self.assertEqual(status(), 2)
        started = time.time()
        dropped = False
        for i in range(4000):
            r = self.server.request("POST", "/api/blacklist", {"peer_id": "12D3KooWslow%d" % i, "reason": "r" * 500},
                                    token=self.admin)
            self.assertEqual(r.status, 201)
            m = fast.recv_type("BLACKLIST_UPDATED")  # the fast client keeps up
            self.assertEqual(m["payload"]["peer_id"], "12D3KooWslow%d" % i)
            if i % 100 == 99 and status() == 1:
                dropped = True
                break
        self.assertTrue(dropped, "the slow client was never dropped")
        self.assertLess(time.time() - started, 120)

if __name__ == "__main__":
    unittest.main()
