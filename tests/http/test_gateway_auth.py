"""API gateway (api-gateway.md): passwordless login through a real SMTP sink
on loopback and through the outbox, TOTP, refresh rotation and reuse
detection, lockout, logout revocation, users CRUD and roles, error codes."""
import email
import glob
import hashlib
import hmac
import os
import re
import socketserver
import struct
import subprocess
import threading
import time
import unittest

from lucidtest import CTL_BIN, ON_POSTGRES, Server, ServerTestCase

PASSWORD = "correct horse 9"


class SmtpSink(socketserver.ThreadingTCPServer):
    """A minimal SMTP server (RFC 5321 subset) that keeps what it receives."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self):
        self.messages = []  # (mail_from, [rcpt], data bytes)
        self.cond = threading.Condition()
        super().__init__(("127.0.0.1", 0), SmtpHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.server_address[1]

    def wait_for(self, count, timeout=10):
        with self.cond:
            self.cond.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)

    def close(self):
        self.shutdown()
        self.server_close()


class SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())

    def handle(self):
        self.reply("220 sink.test ESMTP")
        mail_from, rcpts = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("ascii", "replace").strip()
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-sink.test")
                self.reply("250 8BITMIME")
            elif verb == "MAIL":
                mail_from, rcpts = cmd[10:].strip(), []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpts.append(cmd[8:].strip())
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 go ahead")
                data = b""
                while True:
                    l = self.rfile.readline()
                    if not l or l == b".\r\n":
                        break
                    if l.startswith(b".."):
                        l = l[1:]
                    data += l
                with self.server.cond:
                    self.server.messages.append((mail_from, rcpts, data))
                    self.server.cond.notify_all()
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            else:
                self.reply("502 not implemented")


def code_of(text):
    m = re.search(r"sign-in code is ([0-9]{6})", text)
    assert m, text
    return m.group(1)


def link_of(text):
    m = re.search(r"(http://\S+/api/v1/auth/verify\?email=\S+&token=\S+)", text)
    assert m, text
    return m.group(1)


def b32decode(s):
    import base64
    return base64.b32decode(s + "=" * (-len(s) % 8))


def totp(key, t, digits=6):
    """RFC 6238 reference (HMAC-SHA1, 30 s), independent of the server's code."""
    mac = hmac.new(key, struct.pack(">Q", int(t) // 30), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    v = struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF
    return str(v % 10 ** digits).zfill(digits)


class GatewayCase(ServerTestCase):
    def error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        e = r.json()["error"]
        self.assertEqual(e["code"], code, r)
        self.assertEqual(e["service"], "api-gateway")
        self.assertEqual(e["version"], "v1")
        self.assertRegex(e["request_id"], r"^[0-9a-f-]{36}$")
        self.assertIn("timestamp", e)
        return e

    def create_user(self, email, username=None, **extra):
        body = {"email": email, "username": username or email.split("@")[0], "password": PASSWORD}
        body.update(extra)
        r = self.server.request("POST", "/api/v1/users", body)
        self.assertEqual(r.status, 201, r)
        return r.json()


class SmtpLoginTest(GatewayCase):
    """The full flow through a local SMTP sink."""

    @classmethod
    def setUpClass(cls):
        cls.sink = SmtpSink()
        cls.server_args = ["--smtp-url", cls.sink.url, "--smtp-from", "login@lucid.test",
                           "--public-url", "http://gateway.test"]
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        cls.sink.close()

    def login_mail(self, addr):
        before = len(self.sink.messages)
        r = self.server.request("POST", "/api/v1/auth/login", {"email": addr})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"message": "Magic link sent to your email", "expires_in": 300})
        msgs = self.sink.wait_for(before + 1)
        self.assertEqual(len(msgs), before + 1, "no mail delivered")
        mail_from, rcpts, data = msgs[-1]
        self.assertEqual(mail_from, "<login@lucid.test>")
        self.assertEqual(rcpts, ["<%s>" % addr.lower()])
        msg = email.message_from_bytes(data)
        self.assertEqual(msg["To"], addr.lower())
        self.assertEqual(msg["From"], "login@lucid.test")
        return msg.get_payload()

    def test_start_up_says_smtp(self):
        self.assertIn("login mail: SMTP via smtp://", self.server.read_log())

    def test_code_login_status_me_logout(self):
        user = self.create_user("grace@example.com", first_name="Grace")
        text = self.login_mail("Grace@Example.com")
        code = code_of(text)
        r = self.server.request("POST", "/api/v1/auth/verify", {"email": "grace@example.com", "code": code})
        self.assertEqual(r.status, 200, r)
        auth = r.json()
        self.assertEqual(auth["token_type"], "Bearer")
        self.assertEqual(auth["expires_in"], 900)
        self.assertEqual(auth["user"]["user_id"], user["user_id"])
        self.assertIsNotNone(auth["user"]["last_login"])
        tok = auth["access_token"]
        r = self.server.request("GET", "/api/v1/auth/status", token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["authenticated"])
        self.assertEqual(r.json()["user"]["email"], "grace@example.com")
        r = self.server.request("GET", "/api/v1/users/me", token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["first_name"], "Grace")
        # The code is single-use.
        r = self.server.request("POST", "/api/v1/auth/verify", {"email": "grace@example.com", "code": code})
        self.error(r, 401, "LUCID_ERR_2006")
        # Logout revokes the access token at once.
        r = self.server.request("POST", "/api/v1/auth/logout", token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"message": "Successfully logged out"})
        self.error(self.server.request("GET", "/api/v1/users/me", token=tok), 401, "LUCID_ERR_2009")
        self.error(self.server.request("POST", "/api/v1/auth/logout", token=tok), 401, "LUCID_ERR_2009")
        r = self.server.request("POST", "/api/v1/auth/refresh", {"refresh_token": auth["refresh_token"]})
        self.error(r, 401, "LUCID_ERR_2010")

    def test_magic_link(self):
        self.create_user("linus@example.com")
        text = self.login_mail("linus@example.com")
        link = link_of(text)
        self.assertTrue(link.startswith("http://gateway.test/api/v1/auth/verify?"))
        path = link[len("http://gateway.test"):]
        r = self.server.request("GET", path)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["user"]["email"], "linus@example.com")
        self.error(self.server.request("GET", path), 401, "LUCID_ERR_2006")
        # And the POST form with a token.
        text = self.login_mail("linus@example.com")
        token = re.search(r"token=(\S+)", text).group(1)
        r = self.server.request("POST", "/api/v1/auth/verify", {"email": "linus@example.com", "token": token})
        self.assertEqual(r.status, 200, r)
        r = self.server.request("POST", "/api/v1/auth/verify", {"email": "linus@example.com", "token": "x" * 43})
        self.error(r, 401, "LUCID_ERR_2006")

    def test_unknown_address_gets_the_same_answer_and_no_mail(self):
        before = len(self.sink.messages)
        r = self.server.request("POST", "/api/v1/auth/login", {"email": "nobody@example.com"})
        self.assertEqual(r.status, 200, r)
        time.sleep(0.5)
        self.assertEqual(len(self.sink.messages), before)
        r = self.server.request("POST", "/api/v1/auth/verify", {"email": "nobody@example.com", "code": "123456"})
        self.error(r, 401, "LUCID_ERR_2001")


class OutboxLoginTest(GatewayCase):
    """Without --smtp-url: the outbox, lucidctl mail outbox, refresh, lockout, TOTP."""

    def outbox_mail(self, addr):
        return self.server.login_mail(addr)

    def login(self, addr):
        code = code_of(self.outbox_mail(addr))
        r = self.server.request("POST", "/api/v1/auth/verify", {"email": addr, "code": code})
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_start_up_names_the_outbox(self):
        self.assertIn("login mail: no --smtp-url, messages go to the outbox", self.server.read_log())

    def test_magic_link_for_a_plus_address(self):
        """Issue 12 item 7: the link's query is percent-encoded, so 'a+tag@x' does not arrive as 'a tag@x'."""
        self.create_user("a+tag@example.com", username="atag")
        link = link_of(self.outbox_mail("a+tag@example.com"))
        self.assertIn("?email=a%2Btag%40example.com&token=", link)
        path = link[link.index("/api/v1/auth/verify"):]
        r = self.server.request("GET", path)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["user"]["email"], "a+tag@example.com")

    def test_lucidctl_mail_outbox_prints_messages(self):
        self.create_user("mary@example.com")
        text = self.outbox_mail("mary@example.com")
        code = code_of(text)
        # SQLite: the outbox beside --db; PostgreSQL has no "beside": the server's --outbox-dir.
        where = ["--outbox-dir", self.server.outbox_dir] if ON_POSTGRES else []
        out = subprocess.run([CTL_BIN] + self.server.ctl_db_args() + ["mail", "outbox"] + where,
                             capture_output=True, text=True,
                             timeout=30, check=True).stdout
        self.assertIn("To: mary@example.com", out)
        self.assertIn(code, out)

    def test_refresh_rotation_and_reuse_detection(self):
        self.create_user("rita@example.com")
        a = self.login("rita@example.com")
        r = self.server.request("POST", "/api/v1/auth/refresh", {"refresh_token": a["refresh_token"]})
        self.assertEqual(r.status, 200, r)
        b = r.json()
        self.assertNotEqual(b["refresh_token"], a["refresh_token"])
        self.assertEqual(self.server.request("GET", "/api/v1/users/me", token=b["access_token"]).status, 200)
        # Reuse of the rotated token: 2010 and the whole family is revoked.
        r = self.server.request("POST", "/api/v1/auth/refresh", {"refresh_token": a["refresh_token"]})
        self.error(r, 401, "LUCID_ERR_2010")
        r = self.server.request("POST", "/api/v1/auth/refresh", {"refresh_token": b["refresh_token"]})
        self.error(r, 401, "LUCID_ERR_2010")
        for tok in (a["access_token"], b["access_token"]):
            self.error(self.server.request("GET", "/api/v1/users/me", token=tok), 401, "LUCID_ERR_2009")
        # Garbage and missing tokens.
        self.error(self.server.request("POST", "/api/v1/auth/refresh", {"refresh_token": "nope"}), 401,
                   "LUCID_ERR_2010")
        self.error(self.server.request("POST", "/api/v1/auth/refresh", {}), 400, "LUCID_ERR_1002")

    def test_lockout_after_five_failures(self):
        self.create_user("lock@example.com")
        code = code_of(self.outbox_mail("lock@example.com"))
        wrong = "000000" if code != "000000" else "111111"
        for _ in range(4):
            r = self.server.request("POST", "/api/v1/auth/verify", {"email": "lock@example.com", "code": wrong})
            self.error(r, 401, "LUCID_ERR_2001")
        r = self.server.request("POST", "/api/v1/auth/verify", {"email": "lock@example.com", "code": wrong})
        self.error(r, 423, "LUCID_ERR_2005")
        code = code_of(self.outbox_mail("lock@example.com"))
        r = self.server.request("POST", "/api/v1/auth/verify", {"email": "lock@example.com", "code": code})
        self.error(r, 423, "LUCID_ERR_2005")
        self.server.advance_clock(15 * 60 + 1, self.admin)
        code = code_of(self.outbox_mail("lock@example.com"))
        r = self.server.request("POST", "/api/v1/auth/verify", {"email": "lock@example.com", "code": code})
        self.assertEqual(r.status, 200, r)

    def test_login_expires(self):
        self.create_user("late@example.com")
        code = code_of(self.outbox_mail("late@example.com"))
        self.server.advance_clock(301, self.admin)
        r = self.server.request("POST", "/api/v1/auth/verify", {"email": "late@example.com", "code": code})
        self.error(r, 401, "LUCID_ERR_2006")

    def test_totp_enrolment_and_login(self):
        self.create_user("tess@example.com")
        tok = self.login("tess@example.com")["access_token"]
        r = self.server.request("POST", "/api/v1/users/me/totp", token=tok)
        self.assertEqual(r.status, 201, r)
        e = r.json()
        self.assertEqual(e["status"], "pending")
        self.assertTrue(e["otpauth_uri"].startswith("otpauth://totp/lucidnode:tess%40example.com?secret=" + e["secret"]))
        key = b32decode(e["secret"])
        now = self.server.request("GET", "/api/v1/meta/health").json()["timestamp"]
        import datetime
        t = datetime.datetime.strptime(now, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()
        # Not yet active: a TOTP code is not accepted at verify.
        r = self.server.request("POST", "/api/v1/users/me/totp/confirm", {"code": totp(key, t + 600)}, token=tok)
        self.error(r, 401, "LUCID_ERR_2007")
        r = self.server.request("POST", "/api/v1/users/me/totp/confirm", {"code": totp(key, t)}, token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["totp_enabled"])
        # Next step's code (within ±1) logs in; replay and far codes fail with 2007.
        r = self.server.request("POST", "/api/v1/auth/verify", {"email": "tess@example.com", "code": totp(key, t + 30)})
        self.assertEqual(r.status, 200, r)
        r = self.server.request("POST", "/api/v1/auth/verify", {"email": "tess@example.com", "code": totp(key, t + 30)})
        self.error(r, 401, "LUCID_ERR_2007")
        r = self.server.request("POST", "/api/v1/auth/verify", {"email": "tess@example.com", "code": totp(key, t + 300)})
        self.error(r, 401, "LUCID_ERR_2007")
        r = self.server.request("DELETE", "/api/v1/users/me/totp", token=tok)
        self.assertEqual(r.status, 204, r)
        r = self.server.request("POST", "/api/v1/users/me/totp/confirm", {"code": "123456"}, token=tok)
        self.error(r, 409, "LUCID_ERR_4003")

    def test_lucidctl_totp_enroll(self):
        self.create_user("cli@example.com")
        out = subprocess.run([CTL_BIN] + self.server.ctl_db_args() + ["users", "totp-enroll", "--email", "cli@example.com"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        secret = re.search(r"secret: ([A-Z2-7]+)", out.stdout).group(1)
        self.assertIn("otpauth://totp/lucidnode:cli%40example.com?secret=" + secret, out.stdout)
        out = subprocess.run([CTL_BIN] + self.server.ctl_db_args() + ["users", "totp-enroll", "--email", "no@example.com"],
                             capture_output=True, text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0)

    def test_login_and_verify_validation(self):
        self.error(self.server.request("POST", "/api/v1/auth/login", {}), 400, "LUCID_ERR_1002")
        self.error(self.server.request("POST", "/api/v1/auth/login", {"email": "nope"}), 400, "LUCID_ERR_1006")
        self.error(self.server.request("POST", "/api/v1/auth/login", {"email": 7}), 400, "LUCID_ERR_1003")
        self.error(self.server.request("POST", "/api/v1/auth/login", body="{bad", headers={"Content-Type": "application/json"}),
                   400, "LUCID_ERR_1009")
        self.error(self.server.request("POST", "/api/v1/auth/login", {"email": "a@example.com", "hardware_wallet": True}),
                   400, "LUCID_ERR_2008")
        self.error(self.server.request("POST", "/api/v1/auth/verify", {"email": "a@example.com"}), 400, "LUCID_ERR_1002")
        self.error(self.server.request("POST", "/api/v1/auth/verify", {"email": "a@example.com", "code": "12345"}), 400,
                   "LUCID_ERR_1003")
        self.error(self.server.request("POST", "/api/v1/auth/verify", {"email": "a@example.com", "code": "abcdef"}), 400,
                   "LUCID_ERR_1003")
        self.error(self.server.request("GET", "/api/v1/auth/verify?email=a@example.com"), 400, "LUCID_ERR_1002")
        self.error(self.server.request("GET", "/api/v1/auth/verify?token=abc"), 400, "LUCID_ERR_1002")
        self.error(self.server.request("GET", "/api/v1/auth/verify?email=bad&token=abc"), 400, "LUCID_ERR_1006")
        self.error(self.server.request("GET", "/api/v1/auth/verify?email=a@example.com&token=abc"), 401, "LUCID_ERR_2001")
        big = {"email": "a@example.com", "pad": "x" * (2 * 1024 * 1024)}
        self.error(self.server.request("POST", "/api/v1/auth/login", big), 413, "LUCID_ERR_1010")

    def test_bearer_errors(self):
        self.error(self.server.request("GET", "/api/v1/users/me"), 401, "LUCID_ERR_2003")
        self.error(self.server.request("GET", "/api/v1/users/me", token="a.b.c"), 401, "LUCID_ERR_2003")
        expired = self.server.token("user", ttl="1s", sub="x")
        self.server.advance_clock(5, self.admin)
        self.error(self.server.request("GET", "/api/v1/users/me", token=expired), 401, "LUCID_ERR_2002")
        # A lucidctl token names no user account.
        self.error(self.server.request("GET", "/api/v1/users/me", token=self.admin), 404, "LUCID_ERR_4001")
        # Logging out a token without a login session revokes that token
        # (test_server_ops.py covers it whole); self.admin must stay valid.
        self.error(self.server.request("GET", "/api/v1/auth/status"), 401, "LUCID_ERR_2003")
        self.error(self.server.request("POST", "/api/v1/users/me/totp", token=self.admin), 404, "LUCID_ERR_4001")
        self.error(self.server.request("POST", "/api/v1/users/me/totp/confirm", {"code": "12"}, token=self.admin), 400,
                   "LUCID_ERR_1003")
        r = self.server.request("GET", "/api/v1/auth/status", token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json()["user"])


class UsersTest(GatewayCase):
    def test_create_and_validation(self):
        u = self.create_user("Hedy@Example.com", "hedy", first_name="Hedy", last_name="Lamarr")
        self.assertRegex(u["user_id"], r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        self.assertEqual(u["email"], "hedy@example.com")
        self.assertEqual(u["role"], "user")
        self.assertIsNone(u["last_login"])
        self.assertFalse(u["hardware_wallet_enabled"])
        base = {"email": "x@example.com", "username": "xavier", "password": PASSWORD}
        for change, status, code in [
            ({"email": None}, 400, "LUCID_ERR_1002"),
            ({"username": None}, 400, "LUCID_ERR_1002"),
            ({"password": None}, 400, "LUCID_ERR_1002"),
            ({"email": "no-at-sign"}, 400, "LUCID_ERR_1006"),
            ({"username": "ab"}, 400, "LUCID_ERR_1003"),
            ({"username": "a" * 51}, 400, "LUCID_ERR_1003"),
            ({"username": 12}, 400, "LUCID_ERR_1003"),
            ({"password": "short1"}, 400, "LUCID_ERR_1007"),
            ({"password": "alllowercase"}, 400, "LUCID_ERR_1007"),
            ({"role": "emperor"}, 400, "LUCID_ERR_1003"),
            ({"role": "admin"}, 403, "LUCID_ERR_2004"),
            ({"email": "hedy@example.com"}, 409, "LUCID_ERR_4002"),
            ({"username": "hedy"}, 409, "LUCID_ERR_4002"),
        ]:
            body = dict(base)
            for k, v in change.items():
                if v is None:
                    del body[k]
                else:
                    body[k] = v
            e = self.error(self.server.request("POST", "/api/v1/users", body), status, code)
            if code in ("LUCID_ERR_1002", "LUCID_ERR_1003", "LUCID_ERR_1006", "LUCID_ERR_1007"):
                self.assertEqual(e["details"]["location"], "body")

    def test_admin_crud_and_roles(self):
        u = self.create_user("ops@example.com", "ops")
        r = self.server.request("POST", "/api/v1/users", {"email": "boss@example.com", "username": "boss",
                                                          "password": PASSWORD, "role": "admin"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["role"], "admin")
        r = self.server.request("GET", "/api/v1/users?role=admin&limit=5", token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([x["username"] for x in r.json()["users"]], ["boss"])
        self.assertEqual(r.json()["pagination"], {"page": 1, "limit": 5, "total": 1, "pages": 1})
        self.error(self.server.request("GET", "/api/v1/users?limit=0", token=self.admin), 400, "LUCID_ERR_1004")
        self.error(self.server.request("GET", "/api/v1/users?page=x", token=self.admin), 400, "LUCID_ERR_1003")
        r = self.server.request("GET", "/api/v1/users/" + u["user_id"], token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.error(self.server.request("GET", "/api/v1/users/not-a-uuid", token=self.admin), 400, "LUCID_ERR_1005")
        self.error(self.server.request("GET", "/api/v1/users/00000000-0000-4000-8000-000000000000", token=self.admin),
                   404, "LUCID_ERR_4001")
        r = self.server.request("PUT", "/api/v1/users/" + u["user_id"], {"role": "node_operator", "first_name": "Op"},
                                token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["role"], r.json()["first_name"]), ("node_operator", "Op"))
        self.error(self.server.request("PUT", "/api/v1/users/" + u["user_id"], {"role": "king"}, token=self.admin),
                   400, "LUCID_ERR_1003")
        # Non-admins: 403 on admin routes and on other users.
        user_tok = self.server.token("user", sub=u["user_id"])
        self.error(self.server.request("GET", "/api/v1/users", token=user_tok), 403, "LUCID_ERR_2004")
        self.error(self.server.request("DELETE", "/api/v1/users/" + u["user_id"], token=user_tok), 403, "LUCID_ERR_2004")
        other = self.create_user("other@example.com")
        self.error(self.server.request("GET", "/api/v1/users/" + other["user_id"], token=user_tok), 403, "LUCID_ERR_2004")
        self.assertEqual(self.server.request("GET", "/api/v1/users/" + u["user_id"], token=user_tok).status, 200)
        # An admin cannot grant super_admin.
        admin_tok = self.server.token("admin", sub="some-admin")
        self.error(self.server.request("PUT", "/api/v1/users/" + u["user_id"], {"role": "super_admin"}, token=admin_tok),
                   403, "LUCID_ERR_2004")
        r = self.server.request("POST", "/api/v1/users", {"email": "root@example.com", "username": "root",
                                                          "password": PASSWORD, "role": "super_admin"},
                                headers={"Authorization": "bearer " + admin_tok})
        self.error(r, 403, "LUCID_ERR_2004")
        r = self.server.request("POST", "/api/v1/users", {"email": "root@example.com", "username": "root",
                                                          "password": PASSWORD, "role": "super_admin"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        root = r.json()
        self.error(self.server.request("DELETE", "/api/v1/users/" + root["user_id"], token=admin_tok), 403,
                   "LUCID_ERR_2004")
        self.error(self.server.request("PUT", "/api/v1/users/" + root["user_id"], {"role": "user"}, token=admin_tok), 403,
                   "LUCID_ERR_2004")
        self.error(self.server.request("PUT", "/api/v1/users/" + other["user_id"], {"username": "ops"},
                                       token=self.admin), 409, "LUCID_ERR_4002")
        r = self.server.request("DELETE", "/api/v1/users/" + other["user_id"], token=self.admin)
        self.assertEqual(r.status, 204, r)
        self.error(self.server.request("DELETE", "/api/v1/users/" + other["user_id"], token=self.admin), 404,
                   "LUCID_ERR_4001")

    def test_me_update(self):
        u = self.create_user("me@example.com", "meme")
        tok = self.server.token("user", sub=u["user_id"])
        r = self.server.request("PUT", "/api/v1/users/me", {"username": "memo", "last_name": "M",
                                                             "hardware_wallet_enabled": True}, token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["username"], r.json()["last_name"], r.json()["hardware_wallet_enabled"]),
                         ("memo", "M", True))
        self.error(self.server.request("PUT", "/api/v1/users/me", {"role": "admin"}, token=tok), 403, "LUCID_ERR_2004")
        self.error(self.server.request("PUT", "/api/v1/users/me", {"username": "x"}, token=tok), 400, "LUCID_ERR_1003")
        self.error(self.server.request("PUT", "/api/v1/users/me", {"hardware_wallet_enabled": "yes"}, token=tok), 400,
                   "LUCID_ERR_1003")
        self.error(self.server.request("PUT", "/api/v1/users/me", body="[1", token=tok), 400, "LUCID_ERR_1009")

    def test_not_found_and_method(self):
        self.error(self.server.request("GET", "/api/v1/users/me/nothing", token=self.admin), 404, "LUCID_ERR_4001")
        r = self.server.request("PATCH", "/api/v1/users/me", token=self.admin)
        self.error(r, 405, "LUCID_ERR_4003")


class RateLimitTest(GatewayCase):
    server_args = ["--rate-gateway-public", "3", "--rate-gateway-public-burst", "3",
                   "--rate-gateway-user", "5", "--rate-gateway-user-burst", "5"]

    def test_public_tier_by_address(self):
        seen = []
        for _ in range(3):
            r = self.server.request("GET", "/api/v1/meta/version")
            self.assertEqual(r.status, 200, r)
            seen.append(int(r.headers["x-ratelimit-remaining"]))
            self.assertEqual(r.headers["x-ratelimit-limit"], "3")
        self.assertEqual(seen, [2, 1, 0])
        r = self.server.request("GET", "/api/v1/meta/info")
        e = self.error(r, 429, "LUCID_ERR_3001")
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        self.assertEqual(r.headers["x-ratelimit-remaining"], "0")
        self.assertIn("x-ratelimit-reset", r.headers)
        self.assertTrue(e["message"])

    def test_authenticated_tier_by_user_and_admin_tier(self):
        a = self.server.token("user", sub="11111111-1111-4111-8111-111111111111")
        b = self.server.token("user", sub="22222222-2222-4222-8222-222222222222")
        for _ in range(5):
            self.assertEqual(self.server.request("GET", "/api/v1/auth/status", token=a).status, 200)
        self.error(self.server.request("GET", "/api/v1/auth/status", token=a), 429, "LUCID_ERR_3001")
        # Another user has their own bucket; an admin has the admin tier.
        self.assertEqual(self.server.request("GET", "/api/v1/auth/status", token=b).status, 200)
        for _ in range(10):
            r = self.server.request("GET", "/api/v1/auth/status", token=self.admin)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["x-ratelimit-limit"], "10000")


if __name__ == "__main__":
    unittest.main()
