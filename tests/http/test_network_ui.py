"""Issue 18: the network node's own web UI against lucid-server. Both
dialects for each item: CORS and preflight, GET /api/health, the dashboard's
node status fields, Ed25519 login without public_key when several keys (admins'
and agents') are registered, PEER_CAPABILITIES_UPDATED, the WebSocket's two
dialects (table apps/server/ws/ws_dialect.hpp), and the workflow shapes (nodes,
gui-props, config, connections, ui-state, execution status, "this node")."""
import base64
import time
import unittest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lucidtest import ServerTestCase, WebSocket, ed25519_login
from test_network_auth import add_key, peer_id_of, pub_hex, register_node_key
from test_network_services import standalone, write_script
from test_network_workflows import wait_execution

UI_NODE_KEYS = {"service_id", "peer_id", "service_name", "service_type", "order", "gui_x", "gui_y", "interfaces",
                "entrypoint", "cmd"}
DOC_NODE_KEYS = {"id", "workflow_id", "node_type", "peer_id", "service_id", "config", "gui_props"}
UI_CONN_KEYS = {"from_node_id", "from_interface_type", "to_node_id", "to_interface_type", "destination_file_name"}
DOC_CONN_KEYS = {"id", "workflow_id", "source_node_id", "source_interface_id", "target_node_id", "target_interface_id"}


class UiBase(ServerTestCase):
    def req(self, method, path, body=None, token=None, headers=None):
        return self.server.request(method, path, body, token=token if token is not None else self.admin,
                                   headers=headers)

    def ws(self, token=None):
        w = WebSocket(self.server, token=token)
        self.addCleanup(w.close)
        self.assertEqual(w.status, 101)
        return w

    def ui_ws(self, token=None):
        """A WebSocket in the UI's dialect: ping first; returns it after connected, node.status, pong."""
        w = self.ws(token or self.admin)
        w.send({"type": "ping"})
        m = w.recv()
        self.assertEqual(m["type"], "connected", m)
        self.assertEqual(m["payload"]["peer_id"], self.req("GET", "/api/node/status").json()["peer_id"])
        m = w.recv()
        self.assertEqual(m["type"], "node.status", m)
        self.assertIn("node_type", m["payload"]["stats"])
        self.assertEqual(w.recv()["type"], "pong")
        return w

    def assertError(self, r, status, message=None):
        self.assertEqual(r.status, status, r)
        self.assertIsInstance(r.json().get("error"), str, r)
        if message:
            self.assertEqual(r.json()["error"], message, r)


class CorsAndHealthTest(UiBase):
    def test_health_public_with_cors(self):
        r = self.req("GET", "/api/health", token="", headers={"Origin": "http://ui.example"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "ok")
        self.assertEqual(r.headers.get("access-control-allow-origin"), "*")
        self.assertNotIn("access-control-allow-credentials", r.headers)
        self.assertError(self.req("POST", "/api/health", token=""), 405, "Method not allowed")

    def test_answers_and_errors_carry_cors(self):
        for method, path, token, status in [("GET", "/api/node/status", None, 200), ("GET", "/api/node/status", "", 401),
                                             ("GET", "/api/workflows", None, 200), ("GET", "/api/workflows/999", None, 404),
                                             ("GET", "/api/peers/nope/capabilities", None, 404),
                                             ("POST", "/api/auth/ed25519", "", 400), ("GET", "/api/node/nothing", None, 404),
                                             ("PUT", "/api/peers", None, 405)]:
            with self.subTest(method + " " + path):
                r = self.req(method, path, {} if method != "GET" else None, token=token)
                self.assertEqual(r.status, status, r)
                self.assertEqual(r.headers.get("access-control-allow-origin"), "*", r.headers)
                self.assertIn("X-Request-ID", r.headers.get("access-control-expose-headers", ""))
                self.assertNotIn("access-control-allow-credentials", r.headers)

    def test_preflight_from_the_route_table(self):
        pre = {"Origin": "http://ui.example", "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization, content-type"}
        r = self.req("OPTIONS", "/api/workflows/7/nodes", token="", headers=pre)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.headers["access-control-allow-origin"], "*")
        self.assertEqual(r.headers["access-control-allow-methods"], "GET, HEAD, POST, OPTIONS")
        self.assertEqual(r.headers["allow"], "GET, HEAD, POST, OPTIONS")
        self.assertIn("Authorization", r.headers["access-control-allow-headers"])
        self.assertIn("Content-Type", r.headers["access-control-allow-headers"])
        self.assertEqual(r.headers["access-control-max-age"], "600")
        self.assertNotIn("access-control-allow-credentials", r.headers)
        self.assertEqual(r.body, b"")
        r = self.req("OPTIONS", "/api/workflows/7/nodes/3/gui-props", token="", headers=pre)
        self.assertEqual((r.status, r.headers["access-control-allow-methods"]), (204, "PUT, OPTIONS"), r)
        r = self.req("OPTIONS", "/api/auth/ed25519", token="", headers=pre)
        self.assertEqual((r.status, r.headers["access-control-allow-methods"]), (204, "POST, OPTIONS"), r)
        # a path no route has: 404 (still readable cross-origin)
        r = self.req("OPTIONS", "/api/node/nothing", token="", headers=pre)
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.headers.get("access-control-allow-origin"), "*")

    def test_other_documents_get_no_cors(self):
        for path in ["/api/v1/nodes", "/api/v1/cluster/status", "/api/v1/meta/info"]:
            with self.subTest(path):
                r = self.req("OPTIONS", path, token="", headers={"Origin": "http://ui.example"})
                self.assertIn(r.status, (404, 405), r)
                self.assertNotIn("access-control-allow-origin", r.headers)
                r = self.req("GET", path, headers={"Origin": "http://ui.example"})
                self.assertNotIn("access-control-allow-origin", r.headers)

    def test_dashboard_fields(self):
        s = self.req("GET", "/api/node/status").json()
        for k in ("peer_id", "dht_node_id", "uptime_seconds", "known_peers", "stats"):
            self.assertIn(k, s)
        st = s["stats"]
        self.assertEqual(st["node_type"], "public")
        self.assertIs(st["running"], True)
        self.assertEqual((st["relay_mode"], st["nat_mode"]), (False, False))
        self.assertNotIn("active_sessions", st)
        for k in ("uptime_seconds", "known_peers", "active_connections"):
            self.assertIsInstance(st[k], int)


class NatModeStatusTest(UiBase):
    server_args = ["--nat"]

    def test_private_node_type(self):
        self.assertEqual(self.req("GET", "/api/node/status").json()["stats"]["node_type"], "private")


class RelayModeStatusTest(UiBase):
    server_args = ["--relay"]

    def test_public_with_sessions(self):
        st = self.req("GET", "/api/node/status").json()["stats"]
        self.assertEqual((st["node_type"], st["active_sessions"]), ("public", 0))


class KeylessLoginTest(UiBase):
    """The UI never sends public_key: with several keys registered (admins' and
    agents'), the one that verifies the signature logs in."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.viewer_key = Ed25519PrivateKey.generate()
        cls.admin_key = Ed25519PrivateKey.generate()
        cls.node_keys = [Ed25519PrivateKey.generate() for _ in range(2)]
        add_key(cls.server, cls.viewer_key, "viewer")  # registered first: order is by role, not age
        add_key(cls.server, cls.admin_key, "admin")
        for i, k in enumerate(cls.node_keys):
            register_node_key(cls.server, cls.admin, "ui-node-%d" % i, k)

    def test_each_registered_key_logs_in_without_public_key(self):
        for key, role in [(self.admin_key, "admin"), (self.viewer_key, "viewer"), (self.node_keys[0], "node"),
                          (self.node_keys[1], "node")]:
            with self.subTest(role):
                r = ed25519_login(self.server, key, with_public_key=False)
                self.assertEqual(r.status, 200, r)
                self.assertEqual((r.json()["peer_id"], r.json()["role"]), (peer_id_of(key), role))
                self.assertEqual(r.headers.get("access-control-allow-origin"), "*")
                # the token works as that principal
                st = self.req("GET", "/api/node/status", token=r.json()["token"])
                self.assertEqual(st.status, 200, st)
        # with public_key nothing changed
        r = ed25519_login(self.server, self.viewer_key)
        self.assertEqual((r.status, r.json()["role"]), (200, "viewer"), r)

    def test_refusals(self):
        stranger = Ed25519PrivateKey.generate()
        r = ed25519_login(self.server, stranger, with_public_key=False)
        self.assertEqual((r.status, r.json()), (401, {"success": False, "error": "Authentication failed"}), r)
        # a wrong signature, and the challenge is spent by the failed attempt
        c = self.req("GET", "/api/auth/challenge", token="").json()["challenge"]
        bad = {"challenge": c, "signature": self.admin_key.sign(b"something else").hex()}
        self.assertEqual(self.req("POST", "/api/auth/ed25519", bad, token="").status, 401)
        good = {"challenge": c, "signature": self.admin_key.sign(bytes.fromhex(c)).hex()}
        r = self.req("POST", "/api/auth/ed25519", good, token="")
        self.assertEqual((r.status, r.json()["error"]), (401, "Invalid or expired challenge"), r)
        # a malformed signature
        c = self.req("GET", "/api/auth/challenge", token="").json()["challenge"]
        r = self.req("POST", "/api/auth/ed25519", {"challenge": c, "signature": "zz" * 64}, token="")
        self.assertEqual(r.status, 401, r)
        # a blacklisted peer's key verifies but is refused
        pid = peer_id_of(self.node_keys[1])
        self.assertEqual(self.req("POST", "/api/blacklist", {"peer_id": pid}).status, 201)
        try:
            r = ed25519_login(self.server, self.node_keys[1], with_public_key=False)
            self.assertEqual(r.status, 401, r)
        finally:
            self.req("DELETE", "/api/blacklist/" + pid)


class LoginRateTest(UiBase):
    """POST /api/auth/ed25519 has its own per-address bucket (nn_login): each
    keyless attempt may cost up to 64 signature checks."""

    server_args = ["--rate-challenge", "3"]

    def test_login_limited_per_address(self):
        body = {"challenge": "00" * 32, "signature": "00" * 64}
        statuses = [self.req("POST", "/api/auth/ed25519", body, token="").status for _ in range(4)]
        self.assertEqual(statuses[:3], [401, 401, 401])
        self.assertEqual(statuses[3], 429)
        r = self.req("POST", "/api/auth/ed25519", body, token="")
        self.assertEqual(r.json(), {"success": False, "error": "Rate limit exceeded"})
        self.assertIn("retry-after", r.headers)


class CapabilitiesEventTest(UiBase):
    def test_capabilities_event_both_dialects(self):
        key = Ed25519PrivateKey.generate()
        _, api_key = register_node_key(self.server, self.admin, "caps-node", key)
        pid = peer_id_of(key)
        doc = self.ws(self.admin)
        ui = self.ui_ws()
        caps = {"platform": "linux", "cpu_cores": 8, "gpus": []}
        r = self.req("PUT", "/api/agent/network", {"capabilities": caps}, token="", headers={"X-API-KEY": api_key})
        self.assertEqual(r.status, 200, r)
        m = doc.recv_type("PEER_CAPABILITIES_UPDATED")
        self.assertEqual(m["payload"], {"peer_id": pid, "capabilities": caps})
        m = ui.recv_type("peer.capabilities.updated")
        self.assertEqual(m["payload"], {"peer_id": pid, "capabilities": caps})
        time.sleep(1.1)  # past the per-peer interval of read events
        r = self.req("GET", "/api/peers/%s/capabilities" % pid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(doc.recv_type("PEER_CAPABILITIES_UPDATED")["payload"]["peer_id"], pid)
        self.assertEqual(ui.recv_type("peer.capabilities.updated")["payload"]["peer_id"], pid)
        # a peer without capabilities: 404, no event (the next event is the marker's)
        other = Ed25519PrivateKey.generate()
        register_node_key(self.server, self.admin, "caps-none", other)
        self.assertEqual(self.req("GET", "/api/peers/%s/capabilities" % peer_id_of(other)).status, 404)
        self.req("POST", "/api/blacklist", {"peer_id": "12D3KooWmarker"})
        self.req("DELETE", "/api/blacklist/12D3KooWmarker")
        for _ in range(20):
            m = doc.recv()
            self.assertNotEqual(m["type"], "PEER_CAPABILITIES_UPDATED", m)
            if m["type"] == "BLACKLIST_UPDATED":
                break


class WebSocketDialectTest(UiBase):
    def test_ui_dialect_answers_and_events(self):
        doc = self.ws(self.admin)
        ui = self.ui_ws()
        ui.send({"type": "ping"})
        self.assertEqual(ui.recv()["type"], "pong")
        ui.send({"type": "wallet.balance.request", "payload": {}})
        m = ui.recv()
        self.assertEqual((m["type"], m["payload"]["error"]), ("error", "Unknown message type: wallet.balance.request"))
        ui.send("not json")
        self.assertEqual(ui.recv()["type"], "error")
        ui.send({"type": "auth", "payload": {"token": self.admin}})
        self.assertEqual(ui.recv()["payload"]["error"], "Already authenticated")
        # events: blacklist.updated carries the whole list; the document's client is unchanged
        self.assertEqual(self.req("POST", "/api/blacklist", {"peer_id": "12D3KooWui", "reason": "r"}).status, 201)
        m = ui.recv_type("blacklist.updated")
        self.assertEqual((m["payload"]["action"], m["payload"]["peer_id"]), ("added", "12D3KooWui"))
        self.assertEqual([(b["peer_id"], b["reason"]) for b in m["payload"]["blacklist"]], [("12D3KooWui", "r")])
        self.assertIsInstance(m["payload"]["blacklist"][0]["added_at"], int)
        self.assertEqual(m["payload"]["blacklist_total"], 1)
        self.assertEqual(doc.recv_type("BLACKLIST_UPDATED")["payload"],
                         {"action": "added", "peer_id": "12D3KooWui", "reason": "r"})
        self.req("DELETE", "/api/blacklist/12D3KooWui")
        self.assertEqual(ui.recv_type("blacklist.updated")["payload"]["blacklist"], [])
        r = self.req("POST", "/api/services", {"name": "Ui-Search", "type": "storage"})
        self.assertIn(r.status, (200, 201), r)
        ui.recv_type("services.updated")
        doc.recv_type("SERVICE_UPDATED")
        ui.send({"type": "service.search.request", "payload": {"query": "Ui-Search"}})
        m = ui.recv_type("service.search.response")
        self.assertIs(m["payload"]["complete"], True)
        self.assertEqual([s["name"] for s in m["payload"]["services"]], ["Ui-Search"])
        # the document's client still speaks the document
        doc.send({"type": "SERVICE_SEARCH", "payload": {"query": "Ui-Search"}})
        m = doc.recv_type("SERVICE_SEARCH_RESULT")
        self.assertEqual(m["payload"]["total"], 1)
        doc.send({"type": "PING"})
        self.assertEqual(doc.recv_type("PONG")["type"], "PONG")
        doc.send({"type": "ping"})  # decided by its first message: stays in the document's dialect
        m = doc.recv_type("ERROR")
        self.assertEqual(m["payload"]["error"], "Unknown message type: ping")

    def test_ui_dialect_auth_message_and_refusals(self):
        key = Ed25519PrivateKey.generate()
        add_key(self.server, key, "viewer")
        token = ed25519_login(self.server, key, with_public_key=False).json()["token"]
        w = self.ws()
        w.send({"type": "auth", "payload": {"token": token}})
        m = w.recv()
        self.assertEqual(m["type"], "connected", m)
        self.assertEqual(m["payload"]["subject"], "peer:" + peer_id_of(key))
        self.assertEqual(w.recv()["type"], "node.status")
        # unauthenticated: the UI's first message is answered "error" and the socket closed
        w = self.ws()
        w.send({"type": "ping"})
        m = w.recv()
        self.assertEqual((m["type"], m["payload"]["error"]), ("error", "Unauthorized"))
        self.assertIsNone(w.recv())
        self.assertEqual(w.close_code, 1008)
        w = self.ws()
        w.send({"type": "auth", "payload": {"token": "bad"}})
        self.assertEqual(w.recv()["type"], "error")
        self.assertIsNone(w.recv())
        # a viewer may not upload, in either dialect
        w = self.ws(token)
        w.send({"type": "file.upload.start", "payload": {"service_id": 1, "filename": "a", "total_size": 1}})
        self.assertEqual(w.recv_type("file.upload.error")["payload"]["error"], "Uploading service files needs an administrator")

    def test_ui_upload(self):
        r = self.req("POST", "/api/services", {"name": "Ui-Upload", "type": "storage"})
        sid = r.json().get("id") or r.json()["service"]["id"]
        ui = self.ui_ws()
        ui.send({"type": "file.upload.start", "payload": {"service_id": sid, "upload_group_id": "g", "filename": "a.txt",
                                                          "file_path": "a.txt", "file_index": 0, "total_files": 1,
                                                          "total_size": 5, "total_chunks": 2, "chunk_size": 4}})
        m = ui.recv_type("file.upload.progress")
        session = m["payload"]["session_id"]
        self.assertTrue(session.startswith("upload-"), m)
        self.assertEqual(m["payload"]["bytes_uploaded"], 0)
        ui.send({"type": "file.upload.chunk", "payload": {"session_id": session, "chunk_index": 0,
                                                          "data": base64.b64encode(b"hell").decode()}})
        m = ui.recv_type("file.upload.progress")
        self.assertEqual((m["payload"]["chunks_received"], m["payload"]["bytes_uploaded"], m["payload"]["percentage"]),
                         (1, 4, 80.0))
        ui.send({"type": "file.upload.chunk", "payload": {"session_id": session, "chunk_index": 1,
                                                          "data": base64.b64encode(b"o").decode()}})
        self.assertEqual(ui.recv_type("file.upload.progress")["payload"]["bytes_uploaded"], 5)
        m = ui.recv_type("file.upload.complete")
        self.assertEqual((m["payload"]["session_id"], m["payload"]["path"]), (session, "uploads/%d/a.txt" % sid))
        # errors: an out-of-order chunk, a missing field, an unknown service
        ui.send({"type": "file.upload.start", "payload": {"service_id": sid, "filename": "b.txt", "total_size": 3,
                                                          "session_id": "mine"}})
        self.assertEqual(ui.recv_type("file.upload.progress")["payload"]["session_id"], "mine")
        ui.send({"type": "file.upload.chunk", "payload": {"session_id": "mine", "chunk_index": 5, "data": "YQ=="}})
        m = ui.recv_type("file.upload.error")
        self.assertEqual(m["payload"]["session_id"], "mine")
        ui.send({"type": "file.upload.start", "payload": {"service_id": sid, "total_size": 3}})
        self.assertIn("filename", ui.recv_type("file.upload.error")["payload"]["error"])
        ui.send({"type": "file.upload.start", "payload": {"service_id": 999999, "filename": "c", "total_size": 3}})
        self.assertEqual(ui.recv_type("file.upload.error")["type"], "file.upload.error")


class WorkflowShapesTest(UiBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.key = Ed25519PrivateKey.generate()
        add_key(cls.server, cls.key, "admin")
        login = ed25519_login(cls.server, cls.key, with_public_key=False).json()
        cls.ui_token, cls.ui_peer = login["token"], login["peer_id"]
        cls.node_key = Ed25519PrivateKey.generate()
        register_node_key(cls.server, cls.admin, "remote-peer", cls.node_key)

    def service(self, name, text="#!/bin/sh\ncat\n"):
        return standalone(self.server, self.admin, name, write_script(self.server, "bin/%s" % name, text))

    def workflow(self):
        r = self.req("POST", "/api/workflows", {"name": "ui-wf"}, token=self.ui_token)
        self.assertEqual(r.status, 201, r)
        return r.json()["id"]

    def ui_node(self, wid, sid, **kw):
        body = {"service_id": sid, "peer_id": self.ui_peer, "service_name": "ignored", "service_type": "STANDALONE",
                "order": 1, "gui_x": 10.5, "gui_y": 20, "interfaces": [{"interface_type": "STDIN"}]}
        body.update(kw)
        return self.req("POST", "/api/workflows/%d/nodes" % wid, body, token=self.ui_token)

    def test_nodes_both_shapes(self):
        sid = self.service("ui-cat")
        wid = self.workflow()
        r = self.ui_node(wid, sid, entrypoint=["/bin/sh"], cmd=["-c", "x"])
        self.assertEqual(r.status, 201, r)
        n = r.json()
        self.assertTrue(DOC_NODE_KEYS | UI_NODE_KEYS <= set(n), n)
        self.assertEqual((n["gui_x"], n["gui_y"], n["order"]), (10.5, 20, 1))
        self.assertEqual(n["gui_props"], {"position": {"x": 10.5, "y": 20}, "order": 1})
        self.assertEqual((n["service_name"], n["service_type"]), ("ui-cat", "STANDALONE"))
        self.assertEqual(sorted(i["interface_type"] for i in n["interfaces"]), ["STDERR", "STDIN", "STDOUT"])
        self.assertEqual((n["entrypoint"], n["cmd"]), (["/bin/sh"], ["-c", "x"]))
        self.assertEqual(n["config"], {"entrypoint": ["/bin/sh"], "cmd": ["-c", "x"]})
        # the document's shape still works and reads back as a superset
        r = self.req("POST", "/api/workflows/%d/nodes" % wid,
                     {"service_id": sid, "gui_props": {"position": {"x": 1, "y": 2}, "width": 5}, "config": {"timeout": 3}})
        self.assertEqual(r.status, 201, r)
        d = r.json()
        self.assertEqual((d["gui_x"], d["gui_y"], d["entrypoint"], d["cmd"]), (1, 2, [], []))
        # gui-props {x, y} keeps the rest; the document's replaces
        url = "/api/workflows/%d/nodes/%d" % (wid, n["id"])
        r = self.req("PUT", url + "/gui-props", {"x": 5, "y": 6}, token=self.ui_token)
        self.assertEqual(r.json(), {"success": True, "message": "GUI properties updated"})
        r = self.req("PUT", url + "/config", {"cmd": ["c"]}, token=self.ui_token)
        self.assertEqual(r.status, 200, r)
        nodes = {x["id"]: x for x in self.req("GET", "/api/workflows/%d/nodes" % wid).json()["nodes"]}
        self.assertEqual(nodes[n["id"]]["gui_props"], {"position": {"x": 5, "y": 6}, "order": 1})
        self.assertEqual((nodes[n["id"]]["gui_x"], nodes[n["id"]]["cmd"], nodes[n["id"]]["entrypoint"]), (5, ["c"], ["/bin/sh"]))
        self.assertEqual(nodes[d["id"]]["gui_props"]["width"], 5)
        self.req("PUT", "/api/workflows/%d/nodes/%d/gui-props" % (wid, d["id"]), {"gui_props": {"position": {"x": 9, "y": 9}}})
        self.req("PUT", "/api/workflows/%d/nodes/%d/config" % (wid, d["id"]), {"config": {"entrypoint": ["e"]}})
        nodes = {x["id"]: x for x in self.req("GET", "/api/workflows/%d/nodes" % wid).json()["nodes"]}
        self.assertEqual((nodes[d["id"]]["gui_x"], nodes[d["id"]]["entrypoint"]), (9, ["e"]))
        self.assertNotIn("width", nodes[d["id"]]["gui_props"])
        # a node whose service is gone reads "Unknown Service"
        gone = self.service("ui-gone")
        g = self.ui_node(wid, gone).json()
        self.assertEqual(self.req("DELETE", "/api/services/%d" % gone).status, 204)
        nodes = {x["id"]: x for x in self.req("GET", "/api/workflows/%d/nodes" % wid).json()["nodes"]}
        self.assertEqual((nodes[g["id"]]["service_name"], nodes[g["id"]]["interfaces"]), ("Unknown Service", []))

    def test_node_shape_errors(self):
        sid = self.service("ui-err")
        wid = self.workflow()
        for body in [dict(gui_x="left"), dict(cmd="ls"), dict(entrypoint=[1]), dict(cmd=["x"] * 300),
                     dict(entrypoint=["x" * 5000]), dict(order="first")]:
            with self.subTest(body):
                self.assertError(self.ui_node(wid, sid, **body), 400)
        n = self.ui_node(wid, sid).json()["id"]
        url = "/api/workflows/%d/nodes/%d" % (wid, n)
        for path, body in [("/gui-props", {}), ("/gui-props", {"x": "1"}), ("/config", {}), ("/config", {"cmd": "x"}),
                           ("/config", {"cmd": [None, 1]})]:
            with self.subTest(path + str(body)):
                self.assertError(self.req("PUT", url + path, body), 400)
        self.assertError(self.req("PUT", "/api/workflows/%d/nodes/99999/gui-props" % wid, {"x": 1}), 404)
        self.assertError(self.req("PUT", "/api/workflows/%d/nodes/99999/config" % wid, {"cmd": []}), 404)
        nodes = self.req("GET", "/api/workflows/%d/nodes" % wid).json()["nodes"]
        self.assertEqual(len(nodes), 1)  # nothing half-written

    def test_connections_both_shapes(self):
        sid = self.service("ui-conn")
        wid = self.workflow()
        a = self.ui_node(wid, sid).json()["id"]
        b = self.ui_node(wid, sid).json()["id"]
        url = "/api/workflows/%d/connections" % wid
        r = self.req("POST", url, {"from_node_id": None, "from_interface_type": "STDOUT", "to_node_id": a,
                                   "to_interface_type": "STDIN", "destination_file_name": "in.txt"}, token=self.ui_token)
        self.assertEqual(r.status, 201, r)
        c = r.json()
        self.assertTrue(DOC_CONN_KEYS <= set(c), c)
        self.assertTrue(DOC_CONN_KEYS | UI_CONN_KEYS <= set(c["connection"]), c)
        self.assertEqual(c["connection"]["id"], c["id"])
        self.assertEqual((c["connection"]["from_node_id"], c["connection"]["to_node_id"],
                          c["connection"]["destination_file_name"]), (None, a, "in.txt"))
        r = self.req("POST", url, {"from_node_id": a, "from_interface_type": "STDOUT", "to_node_id": b,
                                   "to_interface_type": "STDIN"})
        self.assertEqual(r.status, 201, r)
        r = self.req("POST", url, {"source_node_id": b, "target_node_id": a, "source_interface_id": 1})
        self.assertEqual(r.status, 201, r)
        doc = r.json()
        self.assertEqual((doc["connection"]["from_node_id"], doc["connection"]["to_node_id"]), (b, a))
        self.req("DELETE", url + "/%d" % doc["id"])
        listed = self.req("GET", url).json()["connections"]
        self.assertEqual([(x["from_node_id"], x["to_node_id"], x["from_interface_type"]) for x in listed],
                         [(None, a, "STDOUT"), (a, b, "STDOUT")])
        self.assertEqual(listed[0]["source_node_id"], 0)
        # PUT in the UI's shape
        r = self.req("PUT", url + "/%d" % c["id"], {"from_node_id": b, "to_node_id": None, "from_interface_type": "STDOUT",
                                                    "destination_file_name": "out.txt"})
        self.assertEqual(r.status, 200, r)
        listed = self.req("GET", url).json()["connections"]
        self.assertEqual((listed[0]["from_node_id"], listed[0]["to_node_id"], listed[0]["destination_file_name"]),
                         (b, None, "out.txt"))
        for body in [{"from_node_id": None, "to_node_id": None}, {"from_node_id": 0, "to_node_id": a},
                     {"from_node_id": a, "to_node_id": 99999}, {"from_node_id": a, "to_node_id": b, "from_interface_type": "PIPE"},
                     {"from_node_id": a, "to_node_id": b, "destination_file_name": "../x"},
                     {"from_node_id": a, "to_node_id": b, "destination_file_name": "a/b"},
                     {"from_node_id": a, "to_node_id": b, "destination_file_name": ".."},
                     {"from_node_id": a, "to_node_id": b, "destination_file_name": "x" * 300},
                     {"from_node_id": "a", "to_node_id": b}, {"source_node_id": 0, "target_node_id": a}]:
            with self.subTest(body):
                self.assertError(self.req("POST", url, body), 400)
        self.assertEqual(len(self.req("GET", url).json()["connections"]), 2)

    def test_ui_state_both_shapes(self):
        wid = self.workflow()
        url = "/api/workflows/%d/ui-state" % wid
        r = self.req("GET", url).json()
        self.assertEqual(r, {"ui_state": {}, "snap_to_grid": False, "zoom_level": 1.0, "pan_x": 0.0, "pan_y": 0.0,
                             "self_peer_x": None, "self_peer_y": None})
        flat = {"snap_to_grid": True, "zoom_level": 1.5, "pan_x": -3, "pan_y": 4, "self_peer_x": 50, "self_peer_y": 60}
        self.assertEqual(self.req("PUT", url, flat, token=self.ui_token).status, 200)
        r = self.req("GET", url).json()
        for k, v in flat.items():
            self.assertEqual(r[k], v, k)
        self.assertEqual(r["ui_state"]["zoom"], 1.5)
        self.assertEqual(self.req("PUT", url, {"ui_state": {"zoom": 2.0, "pan_x": 1, "pan_y": 1}}).status, 200)
        r = self.req("GET", url).json()
        self.assertEqual((r["zoom_level"], r["pan_x"], r["snap_to_grid"]), (2.0, 1, False))
        for body in [{}, {"snap_to_grid": "yes"}, {"zoom_level": "big"}, {"ui_state": 3}]:
            with self.subTest(body):
                self.assertError(self.req("PUT", url, body), 400)
        self.assertEqual(self.req("GET", url).json()["zoom_level"], 2.0)

    def test_this_node_executes_with_live_events(self):
        up = self.service("ui-upper", "#!/bin/sh\necho hello\n")
        cat = self.service("ui-cat2")
        wid = self.workflow()
        doc = self.ws(self.admin)
        ui = self.ui_ws(self.ui_token)
        a = self.ui_node(wid, up).json()["id"]  # peer_id: the login key's
        b = self.ui_node(wid, cat, peer_id="local").json()["id"]
        url = "/api/workflows/%d/connections" % wid
        self.assertEqual(self.req("POST", url, {"from_node_id": a, "from_interface_type": "STDOUT", "to_node_id": b,
                                                "to_interface_type": "STDIN"}).status, 201)
        self.assertEqual(self.req("POST", url, {"from_node_id": b, "from_interface_type": "STDOUT", "to_node_id": None,
                                                "to_interface_type": "STDIN", "destination_file_name": "r.txt"}).status, 201)
        r = self.req("POST", "/api/workflows/%d/execute" % wid, token=self.ui_token)
        self.assertEqual(r.status, 202, r)
        eid = r.json()["execution_id"]
        st = wait_execution(self.server, self.admin, eid)
        self.assertEqual(st["status"], "COMPLETED", st)
        r = self.req("GET", "/api/workflow-executions/%d/status" % eid).json()
        self.assertEqual((r["execution"]["id"], r["execution"]["status"], r["status"]), (eid, "COMPLETED", "COMPLETED"))
        self.assertEqual(sorted(j["node_id"] for j in r["jobs"]), sorted([a, b]))
        self.assertEqual({j["status"] for j in r["jobs"]}, {"COMPLETED"})
        job_b = [j for j in r["jobs"] if j["node_id"] == b][0]
        outs = self.req("GET", "/api/job-executions/%d/interfaces" % job_b["id"]).json()["interfaces"]
        self.assertEqual({i["interface_type"]: i["value"] for i in outs}["STDOUT"], "hello\n")
        # live: job.status.updated per job, then the execution's end, in the UI's dialect; the document's as before
        seen = []
        while True:
            m = ui.recv()
            seen.append(m["type"])
            if m["type"] == "job.status.updated":
                self.assertEqual(m["payload"]["execution_id"], eid)
                self.assertIn(m["payload"]["status"], ("RUNNING", "COMPLETED"))
                self.assertIsInstance(m["payload"]["job_execution_id"], int)
            if m["type"] == "execution.updated" and m["payload"].get("status") == "COMPLETED":
                break
        self.assertIn("job.status.updated", seen)
        self.assertIn("workflows.updated", seen)
        while True:
            m = doc.recv()
            self.assertNotIn(".", m["type"])
            if m["type"] == "EXECUTION_UPDATED" and m["payload"].get("status") == "COMPLETED":
                break

    def test_remote_peer_still_refused(self):
        sid = self.service("ui-remote")
        wid = self.workflow()
        self.assertEqual(self.ui_node(wid, sid, peer_id=peer_id_of(self.node_key)).status, 201)
        st = wait_execution(self.server, self.admin, self.req("POST", "/api/workflows/%d/execute" % wid).json()["execution_id"])
        self.assertEqual(st["status"], "FAILED")
        self.assertIn("dispatch to remote peers is not available", st["error"])
        self.assertEqual(self.req("GET", "/api/workflow-executions/%d/status" % st["id"]).json()["jobs"], [])


if __name__ == "__main__":
    unittest.main()
