"""Issue 12 items 3 and 5, the role model (README "Security model: principals
and roles"): a node's own Ed25519 key makes a node principal that acts only as
itself; operator roles come only from admin-registered keys and accounts;
creating an approved node needs super_admin; public sign-up makes a `user`
that cannot read the fleet; an admin-created account is a `viewer` with the
registration document's "All Users" reads; task payloads and results are for
their submitter and operators; WebSocket FILE_UPLOAD_* needs an admin and has
a per-user quota."""
import base64
import json
import time
import unittest
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clustertest import RELAXED, Agent
from lucidtest import ServerTestCase, WebSocket, b64url_decode, ed25519_login
from test_network_auth import add_key, register_node_key

PASSWORD = "correct horse 9"


def claims_of(token):
    return json.loads(b64url_decode(token.split(".")[1]))


class RoleCase(ServerTestCase):
    server_args = RELAXED

    def mgmt_uid(self, hostname):
        r = self.server.request("GET", "/api/v1/nodes?limit=100", token=self.admin)
        self.assertEqual(r.status, 200, r)
        for n in r.json()["nodes"]:
            if n["name"] == hostname or n.get("hostname") == hostname:
                return n["node_id"]
        self.fail("no node " + hostname)

    def assertForbidden(self, r):
        self.assertEqual(r.status, 403, r)


class NodePrincipalTest(RoleCase):
    """A node that registered its Ed25519 key and logged in with it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.key = Ed25519PrivateKey.generate()
        cls.node_id, cls.api_key = register_node_key(cls.server, cls.admin, "np-self", cls.key)
        cls.server.join_and_approve("np-other", cls.admin)
        r = ed25519_login(cls.server, cls.key)
        assert r.status == 200, r
        cls.login = r.json()
        cls.tok = cls.login["token"]

    def test_login_gives_a_node_principal_not_an_operator(self):
        self.assertEqual(self.login["role"], "node")
        c = claims_of(self.tok)
        self.assertEqual(c["nid"], self.node_id)
        self.assertEqual(c["role"], "user")

    def test_cannot_put_another_node_into_maintenance(self):
        other = self.mgmt_uid("np-other")
        r = self.server.request("PUT", "/api/v1/nodes/" + other, {"status": "maintenance"}, token=self.tok)
        self.assertForbidden(r)
        self.assertEqual(r.json()["error"]["code"], "LUCID_ERR_2004", r)  # node-management.md's error format
        r = self.server.request("GET", "/api/v1/nodes/" + other, token=self.admin)
        self.assertNotEqual(r.json()["status"], "maintenance", r)
        # nor itself: over bearer tokens a node only reads (its agent uses its API key)
        mine = self.mgmt_uid("np-self")
        self.assertForbidden(self.server.request("PUT", "/api/v1/nodes/" + mine, {"status": "maintenance"},
                                                 token=self.tok))
        self.assertForbidden(self.server.request("POST", "/api/v1/nodes/%s/stop" % other, token=self.tok))

    def test_cannot_submit_a_shell_task(self):
        body = {"task_type": "command", "payload": {"command": "id", "shell": True}}
        r = self.server.request("POST", "/api/v1/tasks", body, token=self.tok)
        self.assertForbidden(r)
        self.assertEqual(r.json()["status"], "error", r)  # cluster-devices-tasks.md's envelope
        r = self.server.request("GET", "/api/v1/tasks?task_type=command", token=self.admin)
        self.assertEqual(r.json()["data"], [], r)

    def test_cannot_create_an_approved_node(self):
        r = self.server.request("POST", "/api/v1/nodes", {"name": "np-rogue"}, token=self.tok)
        self.assertForbidden(r)
        r = self.server.request("GET", "/api/v1/nodes?limit=100", token=self.admin)
        self.assertNotIn("np-rogue", [n["name"] for n in r.json()["nodes"]])

    def test_cannot_list_users_or_act_as_admin(self):
        self.assertForbidden(self.server.request("GET", "/api/v1/users", token=self.tok))
        self.assertForbidden(self.server.request("POST", "/api/blacklist", {"peer_id": "12D3KooWnp"}, token=self.tok))
        # the registration document's lists and the cluster's reads are not a node's either
        self.assertForbidden(self.server.request("GET", "/api/v1/nodes/", token=self.tok))
        self.assertForbidden(self.server.request("GET", "/api/v1/devices", token=self.tok))
        self.assertForbidden(self.server.request("GET", "/api/v1/users/me", token=self.tok))

    def test_reads_peers_and_its_status(self):
        self.assertEqual(claims_of(self.tok).get("nid"), self.node_id)
        for path in ("/api/peers", "/api/node/status", "/api/node/capabilities", "/api/blacklist",
                     "/api/blacklist/check?peer_id=12D3KooWnp"):
            r = self.server.request("GET", path, token=self.tok)
            self.assertEqual(r.status, 200, (path, r))
        with WebSocket(self.server, "/api/ws", token=self.tok) as w:
            self.assertEqual(w.status, 101)

    def test_its_agent_routes_are_unchanged(self):
        r = self.server.report(self.api_key)
        self.assertEqual(r.status, 200, r)

    def test_operator_role_only_from_an_admin_registered_key(self):
        k = Ed25519PrivateKey.generate()
        add_key(self.server, k, "node_operator")
        r = ed25519_login(self.server, k)
        self.assertEqual(r.json()["role"], "node_operator", r)
        tok = r.json()["token"]
        self.assertNotIn("nid", claims_of(tok))
        other = self.mgmt_uid("np-other")
        r = self.server.request("PUT", "/api/v1/nodes/" + other, {"name": "np-other"}, token=tok)
        self.assertEqual(r.status, 200, r)
        # an operator still cannot create approved nodes: that is super_admin's
        self.assertForbidden(self.server.request("POST", "/api/v1/nodes", {"name": "op-made"}, token=tok))
        admin = self.server.token("admin", sub="plain-admin")
        self.assertForbidden(self.server.request("POST", "/api/v1/nodes", {"name": "admin-made"}, token=admin))
        r = self.server.request("POST", "/api/v1/nodes", {"name": "super-made"}, token=self.admin)
        self.assertEqual(r.status, 201, r)

    def test_forged_nid_on_an_admin_key_token_is_refused(self):
        # a node token must name the node that owns the key: an admin key's
        # login token never carries "nid", and one that did would not verify.
        k = Ed25519PrivateKey.generate()
        add_key(self.server, k, "admin")
        tok = ed25519_login(self.server, k).json()["token"]
        self.assertNotIn("nid", claims_of(tok))
        self.assertEqual(self.server.request("GET", "/api/peers", token=tok).status, 200)


class SignUpTest(RoleCase):
    """A stranger signs up through the gateway; an admin creates staff accounts."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pending = cls.server.join("secret-pending-host")
        cls.agent = Agent(cls.server, cls.admin, "su-worker")
        cls.agent.register(types=("echo",))
        cls.op = cls.server.token("node_operator", sub="op-1")
        r = cls.server.request("POST", "/api/v1/tasks", {"task_type": "echo", "payload": {"message": "s3cret-payload"}},
                               token=cls.op)
        assert r.status == 201, r
        cls.task_id = r.json()["data"]["task_id"]
        cls.agent.run_one()

    def sign_up(self, token=None, **extra):
        name = "u" + uuid.uuid4().hex[:10]
        body = {"email": name + "@example.com", "username": name, "password": PASSWORD}
        body.update(extra)
        return self.server.request("POST", "/api/v1/users", body, token=token)

    def login(self, email):
        return self.server.outbox_login(email)["access_token"]

    def stranger(self):
        r = self.sign_up()
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["role"], "user")
        return self.login(r.json()["email"])

    def test_signed_up_user_cannot_list_nodes(self):
        tok = self.stranger()
        r = self.server.request("GET", "/api/v1/nodes/", token=tok)  # registration document
        self.assertForbidden(r)
        self.assertNotIn(b"secret-pending-host", r.body)
        self.assertForbidden(self.server.request("GET", "/api/v1/nodes", token=tok))  # node management
        self.assertForbidden(self.server.request("GET", "/api/v1/devices", token=tok))  # cluster
        self.assertForbidden(self.server.request("GET", "/api/v1/cluster/status", token=tok))
        self.assertForbidden(self.server.request("GET", "/api/peers", token=tok))  # network node
        self.assertForbidden(self.server.request("GET", "/api/services", token=tok))
        # gateway-personal routes still work
        self.assertEqual(self.server.request("GET", "/api/v1/users/me", token=tok).status, 200)
        self.assertEqual(self.server.request("GET", "/api/v1/wallets", token=tok).status, 200)

    def test_signed_up_user_cannot_read_pending_hostnames(self):
        tok = self.stranger()
        for path in ("/api/v1/nodes/", "/api/v1/nodes?limit=100", "/api/v1/nodes/%s" % self.pending["request_id"]):
            r = self.server.request("GET", path, token=tok)
            self.assertForbidden(r)
            self.assertNotIn(b"secret-pending-host", r.body, path)

    def test_signed_up_user_cannot_read_task_payload_or_result(self):
        tok = self.stranger()
        for path in ("/api/v1/tasks", "/api/v1/tasks/" + self.task_id, "/api/v1/tasks/%s/result" % self.task_id):
            r = self.server.request("GET", path, token=tok)
            self.assertForbidden(r)
            self.assertNotIn(b"s3cret-payload", r.body, path)

    def test_anonymous_sign_up_cannot_choose_a_role(self):
        for role in ("viewer", "node_operator", "admin"):
            r = self.sign_up(role=role)
            self.assertForbidden(r)
        r = self.sign_up(role="user")
        self.assertEqual((r.status, r.json()["role"]), (201, "user"), r)
        # a token that is present must verify: never read as anonymous
        r = self.sign_up(token="not.a.token")
        self.assertEqual(r.status, 401, r)
        # a user's token creates no staff accounts either
        tok = self.stranger()
        self.assertEqual(self.sign_up(token=tok).json()["role"], "user")
        self.assertForbidden(self.sign_up(token=tok, role="viewer"))

    def test_admin_created_account_is_a_viewer_that_lists_nodes(self):
        r = self.sign_up(token=self.admin)
        self.assertEqual((r.status, r.json()["role"]), (201, "viewer"), r)
        tok = self.login(r.json()["email"])
        self.assertEqual(claims_of(tok)["role"], "viewer")
        r = self.server.request("GET", "/api/v1/nodes/", token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"secret-pending-host", r.body)
        self.assertEqual(self.server.request("GET", "/api/v1/nodes?limit=100", token=tok).status, 200)
        self.assertEqual(self.server.request("GET", "/api/v1/devices", token=tok).status, 200)
        self.assertEqual(self.server.request("GET", "/api/peers", token=tok).status, 200)
        # reads only: no writes, no operator reads
        self.assertForbidden(self.server.request("POST", "/api/v1/nodes", {"name": "v-made"}, token=tok))
        self.assertForbidden(self.server.request("GET", "/api/v1/nodes/%s" % self.pending["request_id"], token=tok))
        self.assertForbidden(self.server.request("POST", "/api/v1/tasks", {"task_type": "echo"}, token=tok))
        # a viewer that did not submit the task sees it without payload and result
        r = self.server.request("GET", "/api/v1/tasks/" + self.task_id, token=tok)
        self.assertEqual(r.status, 200, r)
        t = r.json()["data"]
        self.assertEqual((t["payload"], t["result_data"], t["error"]), (None, None, None), t)
        self.assertEqual(t["status"], "success")
        r = self.server.request("GET", "/api/v1/tasks/%s/result" % self.task_id, token=tok)
        self.assertIsNone(r.json()["data"]["result_data"], r)
        r = self.server.request("GET", "/api/v1/tasks", token=tok)
        self.assertNotIn(b"s3cret-payload", r.body)

    def test_admin_may_create_other_roles_and_change_them(self):
        r = self.sign_up(token=self.admin, role="node_operator")
        self.assertEqual((r.status, r.json()["role"]), (201, "node_operator"), r)
        uid = r.json()["user_id"]
        r = self.server.request("PUT", "/api/v1/users/" + uid, {"role": "viewer"}, token=self.admin)
        self.assertEqual((r.status, r.json()["role"]), (200, "viewer"), r)
        r = self.server.request("GET", "/api/v1/users?role=viewer", token=self.admin)
        self.assertIn(uid, [u["user_id"] for u in r.json()["users"]])
        admin = self.server.token("admin", sub="a-admin")
        self.assertForbidden(self.sign_up(token=admin, role="super_admin"))
        self.assertEqual(self.sign_up(token=admin, role="admin").status, 201)

    def test_submitter_reads_its_own_result(self):
        mine = self.server.token("viewer", sub="op-1")  # the submitter, now a viewer
        other = self.server.token("viewer", sub="op-2")
        r = self.server.request("GET", "/api/v1/tasks/%s/result" % self.task_id, token=mine)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["result_data"], {"echo": {"message": "s3cret-payload"}})
        r = self.server.request("GET", "/api/v1/tasks/" + self.task_id, token=mine)
        self.assertEqual(r.json()["data"]["payload"], {"message": "s3cret-payload"})
        r = self.server.request("GET", "/api/v1/tasks/%s/result" % self.task_id, token=other)
        self.assertIsNone(r.json()["data"]["result_data"])
        r = self.server.request("GET", "/api/v1/tasks/" + self.task_id, token=self.server.token("node_operator", sub="op-3"))
        self.assertEqual(r.json()["data"]["payload"], {"message": "s3cret-payload"})

    def test_scopes_by_role(self):
        user = self.server.token("user", sub="scope-user")
        viewer = self.server.token("viewer", sub="scope-viewer")
        for path in ("/api/v1/nodes", "/api/v1/nodes/pools"):
            self.assertForbidden(self.server.request("GET", path, token=user))
            self.assertEqual(self.server.request("GET", path, token=viewer).status, 200, path)
        self.assertForbidden(self.server.request("POST", "/api/v1/nodes/pools", {"name": "vp"}, token=viewer))


class UploadBase(RoleCase):
    """A server with one service to upload to."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.server.request("POST", "/api/services", {"type": "storage", "name": "up-svc", "description": "d"},
                               token=cls.admin)
        assert r.status in (200, 201), r
        cls.service_id = r.json().get("id") or r.json()["service"]["id"]

    def start(self, w, sid, size=10):
        w.send({"type": "FILE_UPLOAD_START", "payload": {"session_id": sid, "service_id": self.service_id,
                                                         "file_name": sid + ".bin", "file_size": size}})
        return w.recv()


class UploadAuthTest(UploadBase):
    """WebSocket /api/ws and FILE_UPLOAD_*: viewers connect, only administrators upload."""

    def test_user_cannot_connect_and_viewer_cannot_upload(self):
        user = self.server.token("user", sub="up-user")
        w = WebSocket(self.server, "/api/ws", token=user)
        self.assertEqual(w.status, 403)
        w.close()
        # the AUTH message path applies the same policy
        with WebSocket(self.server, "/api/ws") as w:
            w.send({"type": "AUTH", "payload": {"token": user}})
            m = w.recv()
            self.assertEqual(m["type"], "ERROR", m)
            self.assertIsNone(w.recv())
            self.assertEqual(w.close_code, 1008)
        viewer = self.server.token("viewer", sub="up-viewer")
        with WebSocket(self.server, "/api/ws", token=viewer) as w:
            self.assertEqual(w.status, 101)
            m = self.start(w, "v1")
            self.assertEqual(m["type"], "FILE_UPLOAD_ERROR", m)
            self.assertIn("administrator", m["payload"]["error"])
        op = self.server.token("node_operator", sub="up-op")
        with WebSocket(self.server, "/api/ws", token=op) as w:
            self.assertEqual(self.start(w, "o1")["type"], "FILE_UPLOAD_ERROR")


class UploadQuotaTest(UploadBase):
    """The per-user upload quota, across a user's connections."""

    server_args = RELAXED + ["--ws-uploads-per-user", "3", "--ws-upload-bytes-per-user", "1000"]

    def test_per_user_quota_across_connections(self):
        admin = self.server.token("admin", sub="quota-admin")
        with WebSocket(self.server, "/api/ws", token=admin) as a, WebSocket(self.server, "/api/ws", token=admin) as b:
            self.assertEqual(self.start(a, "q1")["type"], "FILE_UPLOAD_READY")
            self.assertEqual(self.start(a, "q2")["type"], "FILE_UPLOAD_READY")
            self.assertEqual(self.start(b, "q3")["type"], "FILE_UPLOAD_READY")
            m = self.start(b, "q4")  # a fourth upload of the same user, on another socket
            self.assertEqual(m["type"], "FILE_UPLOAD_ERROR", m)
            self.assertIn("quota", m["payload"]["error"])
            # another user has its own quota
            with WebSocket(self.server, "/api/ws", token=self.admin) as c:
                self.assertEqual(self.start(c, "c1")["type"], "FILE_UPLOAD_READY")
            # finishing one upload gives its share back
            a.send({"type": "FILE_UPLOAD_CHUNK", "payload": {"session_id": "q1", "chunk_index": 0,
                                                             "data": base64.b64encode(b"x" * 10).decode()}})
            a.send({"type": "FILE_UPLOAD_END", "payload": {"session_id": "q1"}})
            self.assertEqual(a.recv_type("FILE_UPLOAD_COMPLETE")["type"], "FILE_UPLOAD_COMPLETE")
            self.assertEqual(self.start(b, "q5")["type"], "FILE_UPLOAD_READY")
        # closed sockets give back their open uploads (once the server has seen the close)
        with WebSocket(self.server, "/api/ws", token=admin) as d:
            for sid in ("r1", "r2", "r3"):
                deadline = time.time() + 10
                while True:
                    m = self.start(d, sid)
                    if m["type"] == "FILE_UPLOAD_READY" or time.time() > deadline:
                        break
                    time.sleep(0.05)
                self.assertEqual(m["type"], "FILE_UPLOAD_READY", (sid, m))

    def test_bytes_quota(self):
        admin = self.server.token("admin", sub="bytes-admin")
        with WebSocket(self.server, "/api/ws", token=admin) as w:
            self.assertEqual(self.start(w, "b1", 600)["type"], "FILE_UPLOAD_READY")
            m = self.start(w, "b2", 401)
            self.assertEqual(m["type"], "FILE_UPLOAD_ERROR", m)
            self.assertIn("bytes", m["payload"]["error"])
            self.assertEqual(self.start(w, "b3", 400)["type"], "FILE_UPLOAD_READY")


if __name__ == "__main__":
    unittest.main()
