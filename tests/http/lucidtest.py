"""Test harness: a real lucid-server on a free loopback port with its own
temporary database, plus small HTTP helpers (stdlib only).

The binaries come from LUCID_BIN_DIR (ctest sets it; default ../../build/bin).
With LUCID_TEST_DB=postgres every Server gets a fresh database on a throwaway
PostgreSQL (pg_harness.py) instead of a SQLite file; tests that read the
SQLite file directly are marked sqlite_only.
"""
import http.client
import json
import os
import sys
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import pg_harness

HERE = os.path.dirname(os.path.abspath(__file__))
BIN_DIR = os.environ.get("LUCID_BIN_DIR", os.path.join(HERE, "..", "..", "build", "bin"))
SERVER_BIN = os.path.join(BIN_DIR, "lucid-server")
CTL_BIN = os.path.join(BIN_DIR, "lucidctl")
ON_POSTGRES = pg_harness.enabled()


def db_rows(db, query, args=()):
    """Rows of a read-only query on a test server's database (`server.db`): the
    SQLite file (WAL lets us read beside the server) or, on PostgreSQL, through
    psql (pg_harness.query). `query` uses `?` parameters."""
    if db.startswith("postgresql://"):
        return pg_harness.query(db, query, args)
    import sqlite3
    conn = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        return conn.execute(query, args).fetchall()
    finally:
        conn.close()


def db_execute(db, statement, args=()):
    """Runs one INSERT/UPDATE/DELETE on a test server's database (as db_rows);
    returns the number of rows it changed."""
    if db.startswith("postgresql://"):
        return pg_harness.execute(db, statement, args)
    import sqlite3
    conn = sqlite3.connect(db, timeout=10)
    try:
        n = conn.execute(statement, args).rowcount
        conn.commit()
        return n
    finally:
        conn.close()


def sqlite_only(reason):
    """Skips a test (or class) on PostgreSQL: it looks inside the SQLite file."""
    return unittest.skipIf(ON_POSTGRES, "on PostgreSQL: " + reason)


SKIP_RETURN_CODE = 77


def skip_module(reason):
    """Ends this test process as skipped: prints why and exits 77, which the
    ctest entry (SKIP_RETURN_CODE 77, tests/CMakeLists.txt) reports as skipped,
    never passed. For a module that cannot have what it tests (a component
    that does not start here); call it at import, before any test runs."""
    sys.stderr.write("SKIPPED: %s\n" % reason)
    sys.stderr.flush()
    os._exit(SKIP_RETURN_CODE)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # dict, lower-case names
        self.body = body        # bytes
        self.text = body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %s>" % (self.status, self.text[:300])


def make_test_pki(directory, names=("127.0.0.1", "localhost"), prefix=""):
    """Writes a throwaway CA and a server certificate signed by it (P-256,
    valid for a day) into `directory`: <prefix>ca.pem, <prefix>server.pem,
    <prefix>server.key (0600), and a client certificate from the same CA,
    <prefix>client.pem and <prefix>client.key (0600). `names` become the
    server's subjectAltNames (IP addresses as IP entries). Returns (ca_file,
    cert_file, key_file)."""
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lucidtest CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    def write_key(path, k):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))

    ckey = ec.generate_private_key(ec.SECP256R1())
    ccert = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lucidtest agent")]))
             .issuer_name(ca_name).public_key(ckey.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
             .sign(ca_key, hashes.SHA256()))
    with open(os.path.join(directory, prefix + "client.pem"), "wb") as f:
        f.write(ccert.public_bytes(serialization.Encoding.PEM))
    write_key(os.path.join(directory, prefix + "client.key"), ckey)

    key = ec.generate_private_key(ec.SECP256R1())
    alt = []
    for n in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file = os.path.join(directory, prefix + "ca.pem")
    cert_file = os.path.join(directory, prefix + "server.pem")
    key_file = os.path.join(directory, prefix + "server.key")
    with open(ca_file, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    write_key(key_file, key)
    return ca_file, cert_file, key_file


class Server:
    """A lucid-server process. Use as a context manager or call start/stop.

    tls=True serves HTTPS with a throwaway CA (`ca_file`) and a certificate for
    127.0.0.1 and localhost (or `tls_names`); every helper here (request, SSE,
    WebSocket, raw sockets) then speaks TLS and verifies the server with that CA."""

    def __init__(self, extra_args=None, test_clock=True, tls=False, tls_names=("127.0.0.1", "localhost"),
                 host="127.0.0.1"):
        self.dir = tempfile.mkdtemp(prefix="lucidtest-")
        if ON_POSTGRES:
            try:
                self.db = pg_harness.cluster().new_database()
            except pg_harness.Unavailable as e:
                shutil.rmtree(self.dir, ignore_errors=True)
                raise unittest.SkipTest("PostgreSQL cannot start: %s" % e)
        else:
            self.db = os.path.join(self.dir, "lucid.db")
        # Where the server keeps its signing key, files and mail (the SQLite
        # defaults beside the database; given explicitly on PostgreSQL).
        self.signing_key_file = os.path.join(self.dir, "lucid.db.key")
        # The wallet key's default place: <db>.wallet-key on SQLite, the signing
        # key's name with .wallet-key on PostgreSQL; the same file either way.
        self.wallet_key_file = os.path.join(self.dir, "lucid.db.wallet-key")
        self.data_dir = os.path.join(self.dir, "data")
        self.outbox_dir = os.path.join(self.dir, "outbox")
        self.extra_args = list(extra_args or [])
        self.test_clock = test_clock
        self.proc = None
        self.port = None
        self.host = host
        self.log_path = os.path.join(self.dir, "server.log")
        self.tls = tls
        self.ca_file = self.cert_file = self.key_file = None
        if tls:
            self.ca_file, self.cert_file, self.key_file = make_test_pki(self.dir, tls_names)

    def start(self, timeout=20, port=None):
        """Starts the server (on `port`, or on the port it had before, or a free one)."""
        port_file = os.path.join(self.dir, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        if port is None:
            port = self.port or 0
        args = [SERVER_BIN, "--listen", "%s:%d" % (self.host, port), "--db", self.db, "--port-file", port_file]
        if self.tls:
            args += ["--tls-cert", self.cert_file, "--tls-key", self.key_file]
        if self.test_clock:
            args.append("--test-clock")
        if ON_POSTGRES:
            for flag, value in (("--key-file", self.signing_key_file), ("--data-dir", self.data_dir),
                                ("--outbox-dir", self.outbox_dir)):
                if flag not in self.extra_args:
                    args += [flag, value]
        args += self.extra_args
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(port_file):
                with open(port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError("lucid-server exited early:\n" + self.read_log())
            time.sleep(0.02)
        raise RuntimeError("lucid-server did not start:\n" + self.read_log())

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the server; returns its exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def ssl_context(self):
        """A client context trusting only this server's test CA (host names checked)."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        return ctx

    def connection(self, timeout=10):
        """An http.client connection to the server (HTTPS when tls)."""
        if self.tls:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=self.ssl_context())
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def open_socket(self, timeout=10, rcvbuf=None):
        """A connected stream socket (TLS-wrapped and verified when tls)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:  # before connect, so the window stays small (a slow reader)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        try:
            s.connect(("127.0.0.1", self.port))
            if self.tls:
                s = self.ssl_context().wrap_socket(s, server_hostname="127.0.0.1")
        except BaseException:
            s.close()
            raise
        return s

    def ctl_db_args(self):
        """lucidctl's global options for a local command on this server's database."""
        return ["--db", self.db, "--server-key-file", self.signing_key_file]

    def token(self, role="super_admin", ttl="1h", scopes=None, sub="test"):
        args = [CTL_BIN] + self.ctl_db_args() + ["admin", "create-token", "--role", role, "--ttl", ttl, "--sub", sub]
        if scopes:
            args += ["--scopes", ",".join(scopes)]
        out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=30)
        return out.stdout.strip().splitlines()[-1]

    def request(self, method, path, json_body=None, body=None, headers=None, token=None, timeout=10):
        conn = self.connection(timeout)
        hdrs = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        if token:
            hdrs["Authorization"] = "Bearer " + token
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            conn.close()

    def advance_clock(self, seconds, token):
        r = self.request("POST", "/api/v1/_test/clock/advance", {"seconds": seconds}, token=token)
        assert r.status == 200, r
        return r.json()

    # ---- common flows ----

    def login_mail(self, email, timeout=10):
        """Asks for a passwordless login of `email` and returns the text of the
        mail the server wrote to its outbox (servers run without --smtp-url)."""
        import glob
        outbox = self.outbox_dir
        before = set(glob.glob(os.path.join(outbox, "*.eml")))
        r = self.request("POST", "/api/v1/auth/login", {"email": email})
        assert r.status == 200, r
        deadline = time.time() + timeout
        while time.time() < deadline:
            new = set(glob.glob(os.path.join(outbox, "*.eml"))) - before
            if new:
                with open(new.pop()) as f:
                    return f.read()
            time.sleep(0.02)
        raise AssertionError("no login mail for %s in the outbox" % email)

    def outbox_login(self, email):
        """Logs `email` in through the outbox's sign-in code; the verify answer (tokens)."""
        import re
        m = re.search(r"sign-in code is ([0-9]{6})", self.login_mail(email))
        assert m, "no sign-in code in the login mail"
        r = self.request("POST", "/api/v1/auth/verify", {"email": email, "code": m.group(1)})
        assert r.status == 200, r
        return r.json()

    def join(self, hostname, **extra):
        body = {"hostname": hostname}
        body.update(extra)
        r = self.request("POST", "/api/v1/nodes/join-request", body)
        assert r.status == 200, r
        return r.json()

    def poll_code(self, code, join_secret=None, **kw):
        """GET /nodes/status/code/{code}, presenting the join secret (X-Join-Secret) when given."""
        headers = {"X-Join-Secret": join_secret} if join_secret is not None else None
        return self.request("GET", "/api/v1/nodes/status/code/" + code, headers=headers, **kw)

    def collect(self, join):
        """Polls a join response's code as its joiner (with its join_secret)."""
        return self.poll_code(join["registration_code"], join["join_secret"])

    def join_and_approve(self, hostname, admin_token):
        """Returns (node_id, api_key) for a freshly approved node."""
        j = self.join(hostname)
        node_id = int(j["request_id"])
        r = self.request("POST", "/api/v1/nodes/approve/%d" % node_id, token=admin_token)
        assert r.status == 200, r
        r = self.collect(j)
        assert r.status == 200 and r.json()["api_key"], r
        return node_id, r.json()["api_key"]

    def report(self, api_key, **stats):
        body = {"cpu_usage": 10, "disk_usage": 20, "active_backups": 0}
        body.update(stats)
        return self.request("POST", "/api/v1/stats/", body, headers={"X-API-KEY": api_key})

    def read_sse_events(self, path, count=1, token=None, timeout=10):
        """Opens an SSE stream and returns the first `count` events' JSON."""
        conn = self.connection(timeout)
        hdrs = {"Accept": "text/event-stream"}
        if token:
            hdrs["Authorization"] = "Bearer " + token
        conn.request("GET", path, headers=hdrs)
        r = conn.getresponse()
        if r.status != 200:
            data = r.read()
            conn.close()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        events, buf = [], b""
        try:
            while len(events) < count:
                line = r.fp.readline()
                if not line:
                    break
                if line.startswith(b"data: "):
                    buf += line[6:].rstrip(b"\n")
                elif line in (b"\n", b"\r\n") and buf:
                    events.append(json.loads(buf))
                    buf = b""
        finally:
            conn.close()
        return events


class ServerTestCase(unittest.TestCase):
    """One server per test class; `self.server`, `self.admin` (super_admin token).
    server_tls = True runs the class against an HTTPS server."""

    server_args = []
    server_tls = False

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.server_args, tls=cls.server_tls).start()
        try:
            cls.admin = cls.server.token("super_admin")
        except BaseException:
            cls.server.cleanup()  # never leave a server running behind a failed setup
            raise

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        log = cls.server.read_log()
        cls.server.cleanup()
        if rc != 0:
            raise AssertionError("lucid-server exited with %s on SIGTERM; log:\n%s" % (rc, log[-4000:]))

    def assertDetail(self, r, status):
        """The registration document's error: {"detail": "..."} with this status."""
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertIn("detail", body, r)
        self.assertIsInstance(body["detail"], str, r)
        return body["detail"]

    def assertValidation(self, r, field=None, where="body"):
        """422 {"detail": [{"loc": [where, field], "msg", "type"}]}."""
        self.assertEqual(r.status, 422, r)
        detail = r.json()["detail"]
        self.assertIsInstance(detail, list, r)
        self.assertTrue(detail and "msg" in detail[0] and "type" in detail[0], r)
        if field is not None:
            self.assertEqual(detail[0]["loc"], [where, field], r)
        return detail


# ---- additions for the HTTP suite (test_*.py): forged tokens, raw sockets,
# open SSE streams. Nothing above depends on them.

import base64
import re
import socket


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_jwt(header, claims, sign=None, signature=None):
    """header/claims: dicts (or raw str/bytes). sign: callable(bytes) -> bytes
    producing the signature over "<header>.<claims>"; or signature: raw bytes;
    neither: an empty signature."""
    enc = lambda v: b64url(v if isinstance(v, (str, bytes)) else json.dumps(v, separators=(",", ":")))
    signing_input = enc(header) + "." + enc(claims)
    if sign is not None:
        signature = sign(signing_input.encode())
    return signing_input + "." + (b64url(signature) if signature else "")


def split_jwt(token):
    """(header dict, claims dict, signature bytes) of a token."""
    h, c, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(c)), b64url_decode(s)


def server_signing_key(server):
    """The server's own Ed25519 key (from <db>.key), to sign tokens whose
    signature is valid but whose claims are not."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    with open(server.signing_key_file) as f:
        text = f.read().strip()
    sk = bytes.fromhex(text.split(":", 1)[1])
    return Ed25519PrivateKey.from_private_bytes(sk[:32])


def raw_exchange(server, data, timeout=5, shutdown_write=False):
    """Sends raw bytes, returns everything the server sends until it closes
    the connection or the timeout passes."""
    s = server.open_socket(timeout)
    out = b""
    try:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server may answer and close before reading everything
        if shutdown_write:
            s.shutdown(socket.SHUT_WR)
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return out


def parse_raw_response(data):
    """A Response from the bytes of one HTTP/1.1 response (Content-Length body)."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        raise AssertionError("not an HTTP response: %r" % data[:200])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", len(rest)))
    return Response(int(m.group(1)), headers, rest[:n])


class OpenStream:
    """An SSE response kept open: .status, .headers, .next_event(), .close()."""

    def __init__(self, server, path, token=None, headers=None, timeout=10):
        self.conn = server.connection(timeout)
        hdrs = {"Accept": "text/event-stream"}
        hdrs.update(headers or {})
        if token:
            hdrs["Authorization"] = "Bearer " + token
        self.conn.request("GET", path, headers=hdrs)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.raw_lines = []

    def body(self):
        """For a non-200 answer: a Response with its body."""
        return Response(self.status, self.headers, self.resp.read())

    def next_event(self):
        """The next event's parsed JSON, or None at end of stream."""
        buf = b""
        while True:
            line = self.resp.fp.readline()
            if not line:
                return None
            self.raw_lines.append(line)
            if line.startswith(b"data: "):
                buf += line[6:].rstrip(b"\r\n")
            elif line in (b"\n", b"\r\n") and buf:
                return json.loads(buf)

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- network-node helpers: Ed25519 challenge login and a minimal WebSocket
# client (RFC 6455: handshake, masked client frames, text/close/ping).

import hashlib
import struct


def ed25519_login(server, private_key, with_public_key=True):
    """GET /api/auth/challenge, sign its decoded bytes, POST /api/auth/ed25519.
    Returns the Response."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    ch = server.request("GET", "/api/auth/challenge")
    assert ch.status == 200, ch
    challenge = ch.json()["challenge"]
    body = {"challenge": challenge, "signature": private_key.sign(bytes.fromhex(challenge)).hex()}
    if with_public_key:
        body["public_key"] = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    return server.request("POST", "/api/auth/ed25519", body)


class WebSocket:
    """A WebSocket client on a raw socket. `status` is the handshake's status;
    on 101, recv()/send() exchange text messages."""

    def __init__(self, server, path="/api/ws", token=None, timeout=10, rcvbuf=None):
        if token:
            path += ("&" if "?" in path else "?") + "token=" + token
        self.sock = server.open_socket(timeout, rcvbuf)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            head += chunk
        head, _, self.buf = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        self.body = self.buf
        if self.status == 101:
            accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
            assert self.headers.get("sec-websocket-accept") == accept.decode(), self.headers
        self.close_code = None

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        head += bytes([0x80 | n]) if n < 126 else (bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536
                                                  else bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, obj):
        self.send_frame(0x1, json.dumps(obj).encode() if not isinstance(obj, (bytes, str)) else
                        (obj.encode() if isinstance(obj, str) else obj))

    def recv(self):
        """The next text message as JSON; None once the server closed (close_code set)."""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            op = b0 & 0x0F
            if op == 0x8:
                self.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                return None
            if op == 0x9:
                self.send_frame(0xA, payload)
            elif op == 0x1:
                return json.loads(payload)

    def recv_type(self, type_, limit=50):
        """Skips messages until one of this type."""
        for _ in range(limit):
            m = self.recv()
            if m is None or m.get("type") == type_:
                return m
        raise AssertionError("no %s message" % type_)

    def close(self):
        try:
            self.send_frame(0x8, struct.pack(">H", 1000))
        except OSError:
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
