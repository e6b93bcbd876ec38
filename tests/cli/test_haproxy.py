"""Issue 14: haproxy, configured from packaging/haproxy/lucid-server.cfg
(only the global section, the bind address and the server lines are
rewritten for 127.0.0.1), in front of two lucid-servers on one database:
requests flow to both, a stopped replica is marked down by the /health
check and traffic goes to the other, an SSE stream and a WebSocket upgrade
pass through, and --trusted-proxy makes lucid-server see the real client in
X-Forwarded-For (access log, per-client rate limits) while the same header
from an untrusted peer is ignored. SKIPPED when haproxy is not installed or
cannot start."""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import uuid

from lucidtest import ON_POSTGRES, Server, skip_module

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "..", "..", "packaging", "haproxy", "lucid-server.cfg")
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
if not HAPROXY:
    skip_module("haproxy is not installed (scripts/setup installs the Debian package)")

PROXY_SOURCE = "127.0.0.2"  # haproxy connects to the replicas from here: the trusted proxy
CLIENT_A = "127.0.0.3"      # clients of haproxy, each its own loopback address
CLIENT_B = "127.0.0.4"
JOIN_LIMIT = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_from_template(port, backends, admin_socket):
    """The packaging template with a foreground global section, the frontend
    on 127.0.0.1:port and `backends` ([(name, port)]) as the replicas of both
    backends. Fails if the template no longer has the lines it rewrites."""
    with open(TEMPLATE) as f:
        text = f.read()
    assert "\nglobal\n" in text and "\ndefaults\n" in text, "template lost its global/defaults sections"
    rest = text[text.index("\ndefaults\n"):]
    assert "    bind :8080\n" in rest, "template's frontend bind line changed"
    rest = rest.replace("    bind :8080\n", "    bind 127.0.0.1:%d\n" % port)
    servers = "".join("    server %s 127.0.0.1:%d check source %s\n" % (name, p, PROXY_SOURCE) for name, p in backends)
    pattern = re.compile(r"(?:    server lucid\d 10\.0\.0\.\d+:8080 check\n)+")
    assert len(pattern.findall(rest)) == 2, "template's server lines changed"
    rest = pattern.sub(lambda m: servers, rest)
    glob = "global\n    maxconn 2000\n    stats socket %s mode 600 level admin\n" % admin_socket
    return glob + rest


class Haproxy:
    def __init__(self, directory, backends):
        self.port = free_port()
        self.admin_socket = os.path.join(directory, "haproxy.sock")
        self.cfg = os.path.join(directory, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(config_from_template(self.port, backends, self.admin_socket))
        check = subprocess.run([HAPROXY, "-c", "-f", self.cfg], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise AssertionError("the generated haproxy config does not check:\n" + check.stdout + check.stderr)
        self.log_path = os.path.join(directory, "haproxy.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                with open(self.log_path, errors="replace") as f:
                    raise RuntimeError("haproxy exited at start: " + f.read()[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                # haproxy binds the frontend before it renames its stats socket into
                # place, so a listening port alone does not mean the socket is there.
                if os.path.exists(self.admin_socket):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("haproxy did not listen on 127.0.0.1:%d" % self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def server_states(self, backend="lucid"):
        """{server name: status} from the admin socket's `show stat`."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.admin_socket)
            s.sendall(b"show stat\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        lines = data.decode().splitlines()
        head = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("pxname") == backend and row.get("svname") not in ("FRONTEND", "BACKEND"):
                out[row["svname"]] = row["status"]
        return out

    def wait_states(self, expected, timeout=20):
        deadline = time.time() + timeout
        states = None
        while time.time() < deadline:
            try:
                states = self.server_states()
            except (FileNotFoundError, ConnectionRefusedError) as e:
                states = repr(e)
                time.sleep(0.2)
                continue
            if all(states.get(k, "").startswith(v) for k, v in expected.items()):
                return states
            time.sleep(0.2)
        raise AssertionError("haproxy never reached %r; last %r" % (expected, states))

    def request(self, method, path, body=None, headers=None, token=None, source=CLIENT_A, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout, source_address=(source, 0))
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = "Bearer " + token
        if body is not None:
            body = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()


def direct(server, method, path, headers, source="127.0.0.1"):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=(source, 0))
    try:
        conn.request(method, path, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def logged_client(servers, request_id, timeout=10):
    """The client address the access log of one of `servers` shows for the
    request with X-Request-ID `request_id`, and that server."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for s in servers:
            m = re.search(r" (\S+) %s " % re.escape(request_id), s.read_log())
            if m:
                return m.group(1), s
        time.sleep(0.1)
    raise AssertionError("no access log line for request %s" % request_id)


@unittest.skipUnless(ON_POSTGRES, "two replicas of one database need PostgreSQL: lucid-server refuses a second "
                                  "server on one SQLite file (pg.cli.test_haproxy runs this)")
class BehindHaproxy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        args = ["--trusted-proxy", PROXY_SOURCE, "--rate-join", str(JOIN_LIMIT)]
        cls.s1 = Server(args).start()
        cls.s2 = Server(args)
        cls.s2.db = cls.s1.db  # two replicas of one database, with its keys
        cls.s2.signing_key_file = cls.s1.signing_key_file
        cls.s2.wallet_key_file = cls.s1.wallet_key_file
        cls.s2.start()
        cls.admin = cls.s1.token()
        cls.dir = tempfile.mkdtemp(prefix="lucid-haproxy-")
        try:
            cls.proxy = Haproxy(cls.dir, [("lucid1", cls.s1.port), ("lucid2", cls.s2.port)])
        except RuntimeError as e:
            cls.s1.cleanup()
            cls.s2.stop()
            shutil.rmtree(cls.dir, ignore_errors=True)
            raise unittest.SkipTest("haproxy cannot start here: %s" % e)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        rc2 = cls.s2.stop()
        rc1 = cls.s1.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        cls.s1.cleanup()  # the shared database lives in s1's directory
        cls.s2.cleanup()
        assert (rc1, rc2) in ((0, 0), (0, None)), (rc1, rc2)

    def setUp(self):
        if self.s2.proc is None:
            self.s2.start(port=self.s2.port)
        self.proxy.wait_states({"lucid1": "UP", "lucid2": "UP"})

    def test_requests_flow_to_both_replicas(self):
        seen = set()
        for _ in range(10):
            rid = "flow-" + uuid.uuid4().hex
            status, body = self.proxy.request("GET", "/api/v1/nodes/", headers={"X-Request-ID": rid},
                                              token=self.admin)
            self.assertEqual(status, 200, body)
            _, server = logged_client([self.s1, self.s2], rid)
            seen.add(server.port)
        self.assertEqual(seen, {self.s1.port, self.s2.port})

    def test_stopped_replica_is_marked_down_and_skipped(self):
        self.assertEqual(self.s2.stop(), 0)
        self.proxy.wait_states({"lucid1": "UP", "lucid2": "DOWN"})
        for _ in range(6):
            rid = "down-" + uuid.uuid4().hex
            status, body = self.proxy.request("GET", "/health", headers={"X-Request-ID": rid})
            self.assertEqual(status, 200, body)
            _, server = logged_client([self.s1], rid)
        # Back: marked up again after the check passes twice.
        self.s2.start(port=self.s2.port)
        self.proxy.wait_states({"lucid1": "UP", "lucid2": "UP"})

    def test_sse_stream_and_websocket_pass_through(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=15)
        try:
            conn.request("GET", "/api/v1/metrics/nodes/stats/stream?interval=1",
                         headers={"Accept": "text/event-stream", "Authorization": "Bearer " + self.admin})
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertIn("text/event-stream", r.getheader("Content-Type"))
            events, t0 = 0, time.time()
            while events < 3:
                line = r.fp.readline()
                self.assertTrue(line, "the stream ended")
                if line.startswith(b"data: "):
                    json.loads(line[6:])
                    events += 1
            self.assertGreaterEqual(time.time() - t0, 1.5)  # events one second apart, streamed
        finally:
            conn.close()
        # WebSocket upgrade on /api/ws through the proxy.
        s = socket.create_connection(("127.0.0.1", self.proxy.port), timeout=10)
        try:
            s.sendall(("GET /api/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                self.assertTrue(chunk, head)
                head += chunk
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
            self.assertIn(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", head)
        finally:
            s.close()

    def test_forwarded_for_from_the_trusted_proxy_only(self):
        # Through haproxy: the client haproxy saw, not the proxy, and not
        # what the client wrote in its own X-Forwarded-For.
        rid = "xff-" + uuid.uuid4().hex
        status, _ = self.proxy.request("GET", "/health", source=CLIENT_A,
                                       headers={"X-Request-ID": rid, "X-Forwarded-For": "198.51.100.66"})
        self.assertEqual(status, 200)
        client, _ = logged_client([self.s1, self.s2], rid)
        self.assertEqual(client, CLIENT_A)
        # Straight to a replica from an untrusted peer: the header is ignored.
        rid = "spoof-" + uuid.uuid4().hex
        self.assertEqual(direct(self.s1, "GET", "/health", {"X-Request-ID": rid,
                                                             "X-Forwarded-For": "198.51.100.77"}), 200)
        client, _ = logged_client([self.s1], rid)
        self.assertEqual(client, "127.0.0.1")

    def test_rate_limits_are_per_client_behind_the_proxy(self):
        # One replica, so that one limiter counts (limits are per replica).
        self.assertEqual(self.s2.stop(), 0)
        self.proxy.wait_states({"lucid2": "DOWN"})
        body = {"hostname": "rate-%s.example.com" % uuid.uuid4().hex[:8]}

        def join(source, xff=None):
            headers = {"X-Forwarded-For": xff} if xff else {}
            status, _ = self.proxy.request("POST", "/api/v1/nodes/join-request", body=body, source=source,
                                           headers=headers)
            return status

        statuses = [join(CLIENT_A) for _ in range(JOIN_LIMIT + 1)]
        self.assertEqual(statuses[-1], 429, statuses)
        # A spoofed header does not buy client A a new bucket...
        self.assertEqual(join(CLIENT_A, xff="198.51.100.99"), 429)
        # ... while another client behind the same proxy has its own.
        self.assertNotEqual(join(CLIENT_B), 429)


if __name__ == "__main__":
    unittest.main()
