"""Authentication and authorization over every route of the node-registration
table: bad tokens of every kind (401), the role matrix (403), public and
node-key routes."""
import http.client
import time
import unittest

from lucidtest import (Server, ServerTestCase, b64url, make_jwt, server_signing_key, split_jwt)

ROLES = ["user", "viewer", "node_operator", "admin", "super_admin"]

# Mirrors kRoutes in apps/server/routes/node_registration.cpp:
# (method, path template, auth, minimum role, body, status when allowed).
# {node} is an existing active node's id; bodies are chosen so that an
# authorized call has a known, side-effect-free (or idempotent) answer.
ROUTES = [
    # An active hostname: join answers "ACTIVE" however often it is asked (a
    # pending one is re-joined only with its join secret).
    ("POST", "/api/v1/nodes/join-request", "none", None, {"hostname": "auth-node.example.com"}, 200),
    ("GET", "/api/v1/nodes/status/code/{code}", "none", None, None, 200),
    ("GET", "/api/v1/nodes/status/{node}", "none", None, None, 200),
    ("POST", "/api/v1/nodes/approve/999999", "bearer", "super_admin", None, 404),
    ("POST", "/api/v1/nodes/register-by-code", "bearer", "super_admin", {"code": "ZZZZZ"}, 404),
    ("GET", "/api/v1/nodes/", "bearer", "viewer", None, 200),
    ("GET", "/api/v1/nodes/{node}", "bearer", "node_operator", None, 200),
    ("PUT", "/api/v1/nodes/{node}/quota", "bearer", "super_admin", {"storage_quota_gb": 100}, 200),
    ("GET", "/api/v1/nodes/{node}/quota/status", "bearer", "node_operator", None, 200),
    ("GET", "/api/v1/nodes/{node}/sites", "bearer", "node_operator", None, 200),
    ("GET", "/api/v1/nodes/{node}/backups", "bearer", "node_operator", None, 200),
    ("GET", "/api/v1/metrics/nodes/stats/stream", "bearer_or_query", "node_operator", None, 200),
    ("GET", "/api/v1/metrics/nodes/{node}/stats/stream", "bearer_or_query", "node_operator", None, 200),
    ("POST", "/api/v1/stats/", "node_key", None, {"cpu_usage": 1, "disk_usage": 2, "active_backups": 0}, 200),
    ("POST", "/api/v1/stats/sites", "node_key", None, {"sites": []}, 200),
    ("POST", "/api/v1/stats/backups", "node_key", None, {"filename": "auth.tar", "size_bytes": 1}, 201),
    # Mounted with --test-clock only.
    ("POST", "/api/v1/_test/clock/advance", "bearer", "super_admin", {"seconds": 0}, 200),
]
BEARER_ROUTES = [r for r in ROUTES if r[2] in ("bearer", "bearer_or_query")]


def call(server, method, path, body=None, headers=None):
    """One request; for a 200 event stream only the head is read."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        import json
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        h = {k.lower(): v for k, v in r.getheaders()}
        if r.status == 200 and h.get("content-type", "").startswith("text/event-stream"):
            first = r.fp.readline()
            return r.status, h, first
        return r.status, h, r.read()
    finally:
        conn.close()


class AuthBase(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.node, cls.key = cls.server.join_and_approve("auth-node.example.com", cls.admin)
        cls.tokens = {role: cls.server.token(role) for role in ROLES}
        cls.pending_code = cls.server.join("auth-pending.example.com")["registration_code"]

    def path(self, template):
        return template.replace("{node}", str(self.node)).replace("{code}", self.pending_code)

    def assert401(self, status, headers, body, route):
        import json
        self.assertEqual(status, 401, (route, body))
        self.assertEqual(headers.get("www-authenticate"), "Bearer", route)
        self.assertEqual(headers.get("content-type"), "application/json", route)
        detail = json.loads(body)["detail"]
        self.assertIsInstance(detail, str)
        self.assertTrue(detail, route)
        return detail


class RoleMatrix(AuthBase):
    def test_every_bearer_route_by_role(self):
        for method, tmpl, auth, min_role, body, ok in BEARER_ROUTES:
            for role in ROLES:
                with self.subTest(route=(method, tmpl), role=role):
                    st, h, data = call(self.server, method, self.path(tmpl), body,
                                       {"Authorization": "Bearer " + self.tokens[role]})
                    if ROLES.index(role) >= ROLES.index(min_role):
                        self.assertEqual(st, ok, data)
                    else:
                        self.assertEqual(st, 403, data)
                        import json
                        self.assertEqual(json.loads(data), {"detail": "Insufficient permissions"})
                        self.assertNotIn("www-authenticate", h)

    def test_forbidden_calls_change_nothing(self):
        j = self.server.join("auth-forbidden.example.com")
        for role in ("user", "node_operator", "admin"):
            with self.subTest(role=role):
                r = self.server.request("POST", "/api/v1/nodes/approve/" + j["request_id"], token=self.tokens[role])
                self.assertDetail(r, 403)
                r = self.server.request("POST", "/api/v1/nodes/register-by-code",
                                        {"code": j["registration_code"]}, token=self.tokens[role])
                self.assertDetail(r, 403)
                r = self.server.request("PUT", "/api/v1/nodes/%d/quota" % self.node, {"storage_quota_gb": 1},
                                        token=self.tokens[role])
                self.assertDetail(r, 403)
        self.assertEqual(self.server.request("GET", "/api/v1/nodes/status/" + j["request_id"]).json()["status"],
                         "pending")
        self.assertEqual(self.server.request("GET", "/api/v1/nodes/%d" % self.node, token=self.admin)
                         .json()["storage_quota_gb"], 100)

    def test_public_routes_need_no_token_and_ignore_a_bad_one(self):
        for method, tmpl, auth, _, body, ok in ROUTES:
            if auth != "none":
                continue
            for hdrs in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
                with self.subTest(route=tmpl, headers=hdrs):
                    st, _, data = call(self.server, method, self.path(tmpl), body, hdrs)
                    self.assertEqual(st, ok, data)

    def test_node_key_routes_reject_jwts(self):
        for method, tmpl, auth, _, body, ok in ROUTES:
            if auth != "node_key":
                continue
            for hdrs in ({}, {"Authorization": "Bearer " + self.admin}, {"X-API-KEY": self.admin},
                         {"X-API-KEY": ""}, {"X-API-KEY": "lnk_" + "A" * 43}, {"X-API-KEY": self.key + "x"},
                         {"X-API-KEY": self.key[:-1]}, {"X-API-KEY": "x" * 300},
                         {"X-API-KEY": self.key.lower()}):
                with self.subTest(route=tmpl, headers=hdrs):
                    st, h, data = call(self.server, method, tmpl, body, hdrs)
                    self.assert401(st, h, data, tmpl)
            with self.subTest(route=tmpl, headers="valid key"):
                st, _, data = call(self.server, method, tmpl, body, {"X-API-KEY": self.key})
                self.assertEqual(st, ok, data)

    def test_query_token_only_for_streams(self):
        for method, tmpl, auth, min_role, body, ok in BEARER_ROUTES:
            sep = "&" if "?" in tmpl else "?"
            with self.subTest(route=tmpl):
                st, h, data = call(self.server, method, self.path(tmpl) + sep + "token=" + self.admin, body)
                if auth == "bearer_or_query":
                    self.assertEqual(st, 200, data)
                    self.assertTrue(data.startswith(b"data: {"), data)
                else:
                    self.assertEqual(self.assert401(st, h, data, tmpl), "Not authenticated")

    def test_query_token_role_is_checked(self):
        st, _, data = call(self.server, "GET", "/api/v1/metrics/nodes/stats/stream?token=" + self.tokens["user"])
        self.assertEqual(st, 403, data)

    def test_scheme_is_case_insensitive(self):
        for scheme in ("bearer", "BEARER", "Bearer"):
            with self.subTest(scheme=scheme):
                st, _, data = call(self.server, "GET", "/api/v1/nodes/",
                                   headers={"Authorization": scheme + " " + self.admin})
                self.assertEqual(st, 200, data)


class BadTokens(AuthBase):
    """Every flavour of bad token, on every bearer route: 401 + WWW-Authenticate."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        import hashlib
        import hmac
        good = cls.tokens["super_admin"]
        user = cls.tokens["user"]
        h, c, sig = split_jwt(good)
        uh, uc, usig = split_jwt(user)
        other_key = Ed25519PrivateKey.generate()
        own_key = server_signing_key(cls.server)
        now = int(time.time())
        claims = dict(c)
        hs, cs, ss = good.split(".")
        pub = own_key.public_key().public_bytes_raw()
        f = {}
        f["garbage"] = "Bearer not-a-token"
        f["empty bearer"] = "Bearer "
        f["scheme only"] = "Bearer"
        f["basic scheme"] = "Basic " + b64url("admin:admin")
        f["token without scheme"] = good
        f["double space"] = "Bearer  " + good
        f["two parts"] = "Bearer " + hs + "." + cs
        f["four parts"] = "Bearer " + good + ".x"
        f["bad base64"] = "Bearer " + hs + ".%%%." + ss
        f["truncated signature"] = "Bearer " + good[:-4]
        f["user token with role raised"] = "Bearer " + make_jwt(uh, dict(uc, role="super_admin"), signature=usig)
        f["tampered exp"] = "Bearer " + make_jwt(h, dict(c, exp=c["exp"] + 86400), signature=sig)
        f["signature of another token"] = "Bearer " + hs + "." + cs + "." + user.split(".")[2]
        f["signed by another Ed25519 key"] = "Bearer " + make_jwt(h, claims, sign=other_key.sign)
        f["alg none unsigned"] = "Bearer " + make_jwt({"alg": "none", "typ": "JWT"}, claims)
        f["alg none with signature"] = "Bearer " + make_jwt({"alg": "none", "typ": "JWT"}, claims, signature=sig)
        f["alg None"] = "Bearer " + make_jwt({"alg": "None", "typ": "JWT"}, claims)
        f["alg HS256 keyed with the public key"] = "Bearer " + make_jwt(
            {"alg": "HS256", "typ": "JWT"}, claims, sign=lambda m: hmac.new(pub, m, hashlib.sha256).digest())
        f["alg HS256 keyed with a guess"] = "Bearer " + make_jwt(
            {"alg": "HS256", "typ": "JWT"}, claims, sign=lambda m: hmac.new(b"secret", m, hashlib.sha256).digest())
        f["alg RS256"] = "Bearer " + make_jwt({"alg": "RS256", "typ": "JWT"}, claims, sign=own_key.sign)
        f["alg ES256"] = "Bearer " + make_jwt({"alg": "ES256", "typ": "JWT"}, claims, sign=own_key.sign)
        f["header without alg"] = "Bearer " + make_jwt({"typ": "JWT"}, claims, sign=own_key.sign)
        f["header with kid"] = "Bearer " + make_jwt({"alg": "EdDSA", "typ": "JWT", "kid": "x"}, claims,
                                                    sign=own_key.sign)
        f["header with jku"] = "Bearer " + make_jwt({"alg": "EdDSA", "typ": "JWT", "jku": "http://evil/"},
                                                    claims, sign=own_key.sign)
        f["typ not JWT"] = "Bearer " + make_jwt({"alg": "EdDSA", "typ": "XYZ"}, claims, sign=own_key.sign)
        # Signed with the server's own key: the signature is valid, the claims are not.
        f["unknown role"] = "Bearer " + make_jwt(h, dict(claims, role="root"), sign=own_key.sign)
        f["role not a string"] = "Bearer " + make_jwt(h, dict(claims, role=3), sign=own_key.sign)
        f["no role"] = "Bearer " + make_jwt(h, {k: v for k, v in claims.items() if k != "role"}, sign=own_key.sign)
        f["no sub"] = "Bearer " + make_jwt(h, {k: v for k, v in claims.items() if k != "sub"}, sign=own_key.sign)
        f["no exp"] = "Bearer " + make_jwt(h, {k: v for k, v in claims.items() if k != "exp"}, sign=own_key.sign)
        f["exp as string"] = "Bearer " + make_jwt(h, dict(claims, exp=str(now + 3600)), sign=own_key.sign)
        f["exp in the past"] = "Bearer " + make_jwt(h, dict(claims, iat=now - 7200, exp=now - 3600),
                                                    sign=own_key.sign)
        f["exp equal to iat long ago"] = "Bearer " + make_jwt(h, dict(claims, iat=now - 10, exp=now - 10),
                                                              sign=own_key.sign)
        f["issued in the future"] = "Bearer " + make_jwt(h, dict(claims, iat=now + 3600, exp=now + 7200),
                                                         sign=own_key.sign)
        f["claims not an object"] = "Bearer " + make_jwt(h, "[1,2]", sign=own_key.sign)
        f["claims not JSON"] = "Bearer " + make_jwt(h, "not json", sign=own_key.sign)
        f["scopes not a list"] = "Bearer " + make_jwt(h, dict(claims, scopes="all"), sign=own_key.sign)
        f["oversized token"] = "Bearer " + make_jwt(h, dict(claims, pad="x" * 5000), sign=own_key.sign)
        cls.flavours = f
        cls.own_key = own_key

    def test_missing_authorization(self):
        for method, tmpl, auth, _, body, _ in BEARER_ROUTES:
            with self.subTest(route=tmpl):
                st, h, data = call(self.server, method, self.path(tmpl), body)
                self.assertEqual(self.assert401(st, h, data, tmpl), "Not authenticated")

    def test_every_bad_token_on_every_bearer_route(self):
        for name, value in self.flavours.items():
            for method, tmpl, auth, _, body, _ in BEARER_ROUTES:
                with self.subTest(flavour=name, route=(method, tmpl)):
                    st, h, data = call(self.server, method, self.path(tmpl), body, {"Authorization": value})
                    self.assert401(st, h, data, tmpl)

    def test_bad_tokens_in_the_stream_query(self):
        import urllib.parse
        header_only = {"token without scheme", "empty bearer", "scheme only"}  # about the header's syntax
        for name, value in self.flavours.items():
            if name in header_only:
                continue
            token = value.split(" ", 1)[1] if value.startswith("Bearer ") else value
            for tmpl in ("/api/v1/metrics/nodes/stats/stream", "/api/v1/metrics/nodes/{node}/stats/stream"):
                with self.subTest(flavour=name, route=tmpl):
                    st, h, data = call(self.server, "GET",
                                       self.path(tmpl) + "?token=" + urllib.parse.quote(token, safe=""))
                    self.assert401(st, h, data, tmpl)

    def test_self_signed_control_is_accepted(self):
        # The forging machinery is right: the same claims, well signed, pass.
        h, c, _ = split_jwt(self.admin)
        token = make_jwt(h, c, sign=self.own_key.sign)
        r = self.server.request("GET", "/api/v1/nodes/", token=token)
        self.assertEqual(r.status, 200, r)

    def test_bad_token_messages(self):
        expect = {"garbage": "malformed token", "signed by another Ed25519 key": "invalid token signature",
                  "alg none unsigned": "unsupported token algorithm", "exp in the past": "token expired",
                  "unknown role": "unknown role in token"}
        for name, msg in expect.items():
            with self.subTest(flavour=name):
                r = self.server.request("GET", "/api/v1/nodes/", headers={"Authorization": self.flavours[name]})
                self.assertEqual(self.assertDetail(r, 401), msg)


class ExpiredToken(ServerTestCase):
    """Moves the server clock: its own server."""

    def test_token_expires_with_the_clock(self):
        # Long enough to outlive minting it under load, short beside the advance.
        short = self.server.token("super_admin", ttl="30s")
        self.assertEqual(self.server.request("GET", "/api/v1/nodes/", token=short).status, 200)
        st, _, _ = call(self.server, "GET", "/api/v1/metrics/nodes/stats/stream?token=" + short)
        self.assertEqual(st, 200)
        self.server.advance_clock(60, self.admin)
        r = self.server.request("GET", "/api/v1/nodes/", token=short)
        self.assertEqual(self.assertDetail(r, 401), "token expired")
        self.assertEqual(r.headers.get("www-authenticate"), "Bearer")
        st, h, data = call(self.server, "GET", "/api/v1/metrics/nodes/stats/stream?token=" + short)
        self.assertEqual(st, 401, data)
        r = self.server.request("POST", "/api/v1/nodes/approve/999", token=short)
        self.assertDetail(r, 401)
        # The long-lived token is still good.
        self.assertEqual(self.server.request("GET", "/api/v1/nodes/", token=self.admin).status, 200)


class TestClockRoute(ServerTestCase):
    def test_advance_validation(self):
        for body, field in (({}, "seconds"), ({"seconds": -1}, "seconds"), ({"seconds": "5"}, "seconds"),
                            ({"seconds": 1.5}, "seconds"), ({"seconds": 315360001}, "seconds")):
            with self.subTest(body=body):
                r = self.server.request("POST", "/api/v1/_test/clock/advance", body, token=self.admin)
                self.assertValidation(r, field)

    def test_advance_zero_reports_now(self):
        r = self.server.request("POST", "/api/v1/_test/clock/advance", {"seconds": 0}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.json()["now"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def test_not_mounted_without_test_clock(self):
        s = Server(test_clock=False).start()
        try:
            admin = s.token("super_admin")
            r = s.request("POST", "/api/v1/_test/clock/advance", {"seconds": 3600}, token=admin)
            self.assertEqual(r.status, 404, r)
            self.assertEqual(r.json(), {"detail": "Not Found"})
            self.assertEqual(s.request("GET", "/api/v1/nodes/", token=admin).status, 200)
        finally:
            rc = s.stop()
            s.cleanup()
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    unittest.main()
