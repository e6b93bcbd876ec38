"""network-node.md Authentication: GET /api/auth/challenge, POST /api/auth/ed25519
(real Ed25519 signatures), keys registered by an agent (PUT /api/v1/stats/public-key)
or by an admin (lucidctl keys add), blacklist and key removal."""
import json
import subprocess
import unittest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lucidtest import CTL_BIN, Server, ServerTestCase, b64url_decode, ed25519_login

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def pub_hex(key):
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def peer_id_of(key):
    """The libp2p PeerID: base58btc(00 24 08 01 12 20 || key)."""
    raw = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]) + bytes.fromhex(pub_hex(key))
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def add_key(server, key, role="admin"):
    out = subprocess.run([CTL_BIN] + server.ctl_db_args() + ["keys", "add", "--role", role, pub_hex(key)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def register_node_key(server, admin, hostname, key):
    node_id, api_key = server.join_and_approve(hostname, admin)
    r = server.request("PUT", "/api/v1/stats/public-key", {"public_key": pub_hex(key)}, headers={"X-API-KEY": api_key})
    assert r.status == 200, r
    return node_id, api_key


class AuthTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin_key = Ed25519PrivateKey.generate()
        cls.node_key = Ed25519PrivateKey.generate()
        add_key(cls.server, cls.admin_key, "admin")
        cls.node_id, cls.api_key = register_node_key(cls.server, cls.admin, "auth-node", cls.node_key)

    def assertAuthError(self, r, status, message=None):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertIs(body.get("success"), False, r)
        self.assertIsInstance(body.get("error"), str, r)
        if message:
            self.assertEqual(body["error"], message, r)

    def challenge(self):
        r = self.server.request("GET", "/api/auth/challenge")
        self.assertEqual(r.status, 200, r)
        return r.json()["challenge"]

    def post(self, body):
        return self.server.request("POST", "/api/auth/ed25519", body)

    def test_challenge_shape(self):
        r = self.server.request("GET", "/api/auth/challenge")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["expires_in"], 300)
        self.assertEqual(len(body["challenge"]), 64)
        self.assertEqual(body["challenge"], body["challenge"].lower())
        bytes.fromhex(body["challenge"])
        self.assertNotEqual(body["challenge"], self.challenge())

    def test_admin_key_login(self):
        r = ed25519_login(self.server, self.admin_key)
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertIs(body["success"], True)
        self.assertEqual(body["peer_id"], peer_id_of(self.admin_key))
        self.assertTrue(body["peer_id"].startswith("12D3KooW"))
        claims = json.loads(b64url_decode(body["token"].split(".")[1]))
        self.assertEqual(claims["exp"] - claims["iat"], 24 * 3600)
        self.assertEqual(claims["sub"], "peer:" + body["peer_id"])
        self.assertEqual(claims["role"], "admin")
        r = self.server.request("GET", "/api/node/status", token=body["token"])
        self.assertEqual(r.status, 200, r)

    def test_node_key_login_is_a_node_principal(self):
        r = ed25519_login(self.server, self.node_key)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["peer_id"], peer_id_of(self.node_key))
        self.assertEqual(r.json()["role"], "node")
        token = r.json()["token"]
        claims = json.loads(b64url_decode(token.split(".")[1]))
        self.assertEqual((claims["role"], claims["nid"]), ("user", self.node_id))
        # reads work; changing the blacklist needs admin
        self.assertEqual(self.server.request("GET", "/api/peers", token=token).status, 200)
        r = self.server.request("POST", "/api/blacklist", {"peer_id": "x"}, token=token)
        self.assertEqual(r.status, 403, r)
        self.assertIn("error", r.json())

    def test_reused_challenge(self):
        c = self.challenge()
        body = {"challenge": c, "signature": self.admin_key.sign(bytes.fromhex(c)).hex(), "public_key": pub_hex(self.admin_key)}
        self.assertEqual(self.post(body).status, 200)
        self.assertAuthError(self.post(body), 401, "Invalid or expired challenge")

    def test_unknown_challenge_and_malformed_challenge(self):
        c = "ab" * 32
        body = {"challenge": c, "signature": self.admin_key.sign(bytes.fromhex(c)).hex(), "public_key": pub_hex(self.admin_key)}
        self.assertAuthError(self.post(body), 401, "Invalid or expired challenge")
        body["challenge"] = "zz" * 32
        self.assertAuthError(self.post(body), 401, "Invalid or expired challenge")
        body["challenge"] = "abc"
        self.assertAuthError(self.post(body), 401, "Invalid or expired challenge")

    def test_failures_consume_the_challenge(self):
        stranger = Ed25519PrivateKey.generate()
        cases = {
            "unknown key": lambda c: {"signature": stranger.sign(bytes.fromhex(c)).hex(), "public_key": pub_hex(stranger)},
            "wrong signature": lambda c: {"signature": stranger.sign(bytes.fromhex(c)).hex(),
                                          "public_key": pub_hex(self.admin_key)},
            "signature over the hex text": lambda c: {"signature": self.admin_key.sign(c.encode()).hex(),
                                                      "public_key": pub_hex(self.admin_key)},
            "malformed signature hex": lambda c: {"signature": "xy" * 64, "public_key": pub_hex(self.admin_key)},
            "short signature": lambda c: {"signature": "ab" * 10, "public_key": pub_hex(self.admin_key)},
            "malformed key hex": lambda c: {"signature": self.admin_key.sign(bytes.fromhex(c)).hex(), "public_key": "nothex"},
        }
        for name, make in cases.items():
            with self.subTest(name):
                c = self.challenge()
                body = dict(make(c), challenge=c)
                self.assertAuthError(self.post(body), 401, "Authentication failed")
                good = {"challenge": c, "signature": self.admin_key.sign(bytes.fromhex(c)).hex(),
                        "public_key": pub_hex(self.admin_key)}
                self.assertAuthError(self.post(good), 401, "Invalid or expired challenge")

    def test_invalid_body(self):
        r = self.server.request("POST", "/api/auth/ed25519", body="{not json", headers={"Content-Type": "application/json"})
        self.assertAuthError(r, 400, "Invalid request body")
        self.assertAuthError(self.post([1, 2]), 400)
        self.assertAuthError(self.post({"challenge": 5, "signature": "ab"}), 400)
        # a missing signature is a bad body, and still spends the challenge
        c = self.challenge()
        self.assertAuthError(self.post({"challenge": c}), 400)
        good = {"challenge": c, "signature": self.admin_key.sign(bytes.fromhex(c)).hex(), "public_key": pub_hex(self.admin_key)}
        self.assertAuthError(self.post(good), 401, "Invalid or expired challenge")

    def test_public_key_omitted_with_several_keys(self):
        # issue 18: the key that verifies the signature logs in (admins' keys tried first)
        r = ed25519_login(self.server, self.admin_key, with_public_key=False)
        self.assertEqual((r.status, r.json()["peer_id"], r.json()["role"]), (200, peer_id_of(self.admin_key), "admin"), r)
        r = ed25519_login(self.server, self.node_key, with_public_key=False)
        self.assertEqual((r.status, r.json()["peer_id"], r.json()["role"]), (200, peer_id_of(self.node_key), "node"), r)
        r = ed25519_login(self.server, Ed25519PrivateKey.generate(), with_public_key=False)
        self.assertAuthError(r, 401, "Authentication failed")

    def test_expired_challenge(self):
        c = self.challenge()
        self.server.advance_clock(301, self.admin)
        body = {"challenge": c, "signature": self.admin_key.sign(bytes.fromhex(c)).hex(), "public_key": pub_hex(self.admin_key)}
        self.assertAuthError(self.post(body), 401, "Invalid or expired challenge")

    def test_wrong_methods(self):
        self.assertAuthError(self.server.request("POST", "/api/auth/challenge"), 405)
        self.assertAuthError(self.server.request("GET", "/api/auth/ed25519"), 405)
        r = self.server.request("PUT", "/api/node/status", token=self.admin)
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.json(), {"error": "Method not allowed"})

    def test_missing_and_bad_jwt(self):
        r = self.server.request("GET", "/api/node/status")
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json()["error"], "Unauthorized")
        r = self.server.request("GET", "/api/node/status", token="abc.def.ghi")
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json()["error"], "Unauthorized")

    def test_admin_jwt_works_too(self):
        self.assertEqual(self.server.request("GET", "/api/node/status", token=self.admin).status, 200)


class AuthRevocationTest(ServerTestCase):
    """Blacklisting and key removal take effect on login, on issued tokens and on the agent."""

    def test_blacklisted_peer(self):
        key = Ed25519PrivateKey.generate()
        node_id, api_key = register_node_key(self.server, self.admin, "bl-node", key)
        r = ed25519_login(self.server, key)
        self.assertEqual(r.status, 200, r)
        token = r.json()["token"]
        self.assertEqual(self.server.request("GET", "/api/peers", token=token).status, 200)
        r = self.server.request("POST", "/api/blacklist", {"peer_id": peer_id_of(key), "reason": "test"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        # its issued token, a new login and its agent are refused
        r = self.server.request("GET", "/api/peers", token=token)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(ed25519_login(self.server, key).status, 401)
        r = self.server.report(api_key)
        self.assertEqual(r.status, 403, r)
        # removed from the blacklist: all work again
        r = self.server.request("DELETE", "/api/blacklist/" + peer_id_of(key), token=self.admin)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.server.request("GET", "/api/peers", token=token).status, 200)
        self.assertEqual(ed25519_login(self.server, key).status, 200)
        self.assertEqual(self.server.report(api_key).status, 200)

    def test_removed_key(self):
        key = Ed25519PrivateKey.generate()
        add_key(self.server, key, "viewer")
        r = ed25519_login(self.server, key)
        self.assertEqual(r.status, 200, r)
        token = r.json()["token"]
        out = subprocess.run([CTL_BIN] + self.server.ctl_db_args() + ["keys", "remove", pub_hex(key)],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.server.request("GET", "/api/peers", token=token).status, 401)
        self.assertEqual(ed25519_login(self.server, key).status, 401)

    def test_keys_cli_errors(self):
        run = lambda *a: subprocess.run([CTL_BIN] + self.server.ctl_db_args() + ["keys"] + list(a),
                                        capture_output=True, text=True, timeout=30)
        self.assertNotEqual(run("add", "nothex").returncode, 0)
        self.assertNotEqual(run("add", "--role", "king", "00" * 32).returncode, 0)
        key = Ed25519PrivateKey.generate()
        self.assertEqual(run("add", pub_hex(key)).returncode, 0)
        dup = run("add", pub_hex(key))
        self.assertNotEqual(dup.returncode, 0)
        self.assertIn("already registered", dup.stderr)
        self.assertNotEqual(run("remove", "ab" * 32).returncode, 0)
        listing = run("list")
        self.assertEqual(listing.returncode, 0)
        self.assertIn(pub_hex(key), listing.stdout)


class SingleKeyTest(unittest.TestCase):
    """public_key may be omitted when exactly one key is registered."""

    def test_public_key_omitted(self):
        server = Server().start()
        try:
            key = Ed25519PrivateKey.generate()
            add_key(server, key, "admin")
            r = ed25519_login(server, key, with_public_key=False)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["peer_id"], peer_id_of(key))
        finally:
            self.assertEqual(server.stop(), 0)
            server.cleanup()


class ChallengeBoundTest(ServerTestCase):
    """A flood of challenges cannot grow memory: beyond the bound the oldest is dropped."""

    server_args = ["--max-challenges", "5"]

    def test_oldest_dropped(self):
        key = Ed25519PrivateKey.generate()
        add_key(self.server, key)
        first = self.server.request("GET", "/api/auth/challenge").json()["challenge"]
        others = [self.server.request("GET", "/api/auth/challenge").json()["challenge"] for _ in range(5)]
        sign = lambda c: {"challenge": c, "signature": key.sign(bytes.fromhex(c)).hex(), "public_key": pub_hex(key)}
        r = self.server.request("POST", "/api/auth/ed25519", sign(first))
        self.assertEqual(r.status, 401, r)
        r = self.server.request("POST", "/api/auth/ed25519", sign(others[-1]))
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    unittest.main()
