"""Issue 14: lucidctl and `lucidctl agent` with several server URLs
(--server repeated or comma-separated, LUCID_SERVER comma-separated) fail
over: a dead first URL is skipped, every URL dead is exit 3 naming each, a
503 moves on for any request, a 502 only for a replay-safe one (a POST that
may have been applied is not sent twice), a TLS verification failure is never
failed over (exit 5); an agent joins through [dead, live], runs a task, and
keeps working without re-joining when its server is replaced by another on
another port (same database file)."""
import http.client
import http.server
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from lucidtest import CTL_BIN, SERVER_BIN, Server
from test_agent import Agent

# The cluster API allows 60 requests a minute per client by default.
SERVER_ARGS = ["--rate-cluster-minute", "1000000", "--rate-cluster-hour", "10000000",
               "--rate-cluster-burst", "1000000"]


def free_port():
    """A loopback port nothing listens on (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ctl(*args, env=None):
    e = {k: v for k, v in os.environ.items() if k not in ("LUCID_SERVER", "LUCID_TOKEN", "LUCID_CA_FILE")}
    e.update(env or {})
    return subprocess.run([CTL_BIN] + list(args), capture_output=True, text=True, timeout=60, env=e)


class Unavailable:
    """A stand-in for a proxy with no live backend: answers every request
    with `status` and counts what it was sent."""

    def __init__(self, status):
        outer = self
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.requests.append((self.command, self.path, body))
                data = b"<html><body>no server is available</body></html>"
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = answer

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class LucidctlFailover(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server().start()
        cls.admin = cls.server.token()
        cls.server.join_and_approve("failover-ctl.example.com", cls.admin)

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0, cls.server.read_log()[-3000:]
        cls.server.cleanup()

    def dead(self):
        return "http://127.0.0.1:%d" % free_port()

    def test_dead_first_url_then_live(self):
        dead = self.dead()
        # comma-separated
        out = ctl("--server", dead + "," + self.server.url, "--token", self.admin, "nodes", "list")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("failover-ctl.example.com", out.stdout)
        # repeated, after the subcommand too
        out = ctl("nodes", "list", "--server", dead, "--server", self.server.url + "/", "--token", self.admin, "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("failover-ctl.example.com", out.stdout)
        # the environment form
        out = ctl("nodes", "list", env={"LUCID_SERVER": "%s, %s" % (dead, self.server.url), "LUCID_TOKEN": self.admin})
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("failover-ctl.example.com", out.stdout)
        # the flag replaces the environment's list
        out = ctl("--server", self.server.url, "nodes", "list",
                  env={"LUCID_SERVER": dead, "LUCID_TOKEN": self.admin})
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_every_url_dead_is_exit_3_naming_each(self):
        a, b = self.dead(), self.dead()
        out = ctl("--server", a + "," + b, "--token", self.admin, "nodes", "list")
        self.assertEqual(out.returncode, 3, out.stdout + out.stderr)
        self.assertIn("lucidctl: cannot reach server: none of the 2 servers answered", out.stderr)
        self.assertIn(a + ": ", out.stderr)
        self.assertIn(b + ": ", out.stderr)
        self.assertEqual(out.stdout, "")

    def test_malformed_lists_are_usage_errors(self):
        live = self.server.url
        for servers, message in [
            (live + ",ftp://x", "server URL must start with http:// or https://: ftp://x"),
            (live + "," + live, "server URL listed twice: " + live),
            (",".join("http://127.0.0.1:%d" % (1000 + i) for i in range(17)), "more than 16 server URLs"),
            ("http://" + "a" * 2100, "server URL longer than 2048 characters"),
        ]:
            out = ctl("--server", servers, "--token", self.admin, "nodes", "list")
            self.assertEqual(out.returncode, 2, (servers[:80], out.stderr))
            self.assertIn(message, out.stderr)
        out = ctl("nodes", "list", env={"LUCID_SERVER": "nonsense", "LUCID_TOKEN": self.admin})
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("(--server / LUCID_SERVER)", out.stderr)
        out = ctl("nodes", "list", env={"LUCID_SERVER": live + ",,", "LUCID_TOKEN": self.admin})
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("empty server URL in the list", out.stderr)

    def test_503_is_failed_over_for_any_request(self):
        busy = Unavailable(503)
        try:
            servers = busy.url + "," + self.server.url
            out = ctl("--server", servers, "--token", self.admin, "nodes", "list")
            self.assertEqual(out.returncode, 0, out.stderr)
            # A POST too: a 503 means the request was not served.
            out = ctl("--server", servers, "--token", self.admin, "tasks", "submit", "echo",
                      "--payload", '{"via": "503"}', "--json")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual([r[0] for r in busy.requests], ["GET", "POST"])
            tasks = self.server.request("GET", "/api/v1/tasks?limit=100", token=self.admin).json()["data"]
            self.assertEqual(sum(1 for t in tasks if t.get("payload") == {"via": "503"}), 1, tasks)
            # Both answer 503: the proxy's answer (exit 1), not "unreachable".
            other = Unavailable(503)
            try:
                out = ctl("--server", busy.url + "," + other.url, "--token", self.admin, "nodes", "list")
                self.assertEqual(out.returncode, 1, out.stderr)
                self.assertIn("HTTP 503", out.stderr)
            finally:
                other.close()
        finally:
            busy.close()

    def test_502_fails_over_a_read_but_never_repeats_a_write(self):
        bad = Unavailable(502)
        try:
            servers = bad.url + "," + self.server.url
            out = ctl("--server", servers, "--token", self.admin, "nodes", "list")
            self.assertEqual(out.returncode, 0, out.stderr)
            # A 502 from a proxy may come after the backend applied the
            # request: a task submission is not sent to the next server.
            before = len(self.server.request("GET", "/api/v1/tasks?limit=100", token=self.admin).json()["data"])
            out = ctl("--server", servers, "--token", self.admin, "tasks", "submit", "echo",
                      "--payload", '{"via": "502"}')
            self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
            self.assertIn("HTTP 502", out.stderr)
            self.assertEqual([r[0] for r in bad.requests], ["GET", "POST"])
            after = self.server.request("GET", "/api/v1/tasks?limit=100", token=self.admin).json()["data"]
            self.assertEqual(len(after), before, after)
        finally:
            bad.close()

    def test_tls_verification_failure_is_not_failed_over(self):
        tls = Server(tls=True).start()
        try:
            # The system store does not hold the test CA: exit 5, and the
            # live plain server behind it in the list is never tried.
            out = ctl("--server", tls.url + "," + self.server.url, "--token", self.admin, "nodes", "list")
            self.assertEqual(out.returncode, 5, out.stdout + out.stderr)
            self.assertIn("TLS: cannot verify the certificate of 127.0.0.1:%d" % tls.port, out.stderr)
            self.assertEqual(out.stdout, "")
            # The agent refuses to start on such a list.
            key = os.path.join(tls.dir, "x.key")
            a = subprocess.run([CTL_BIN, "agent", "--server", self.server.url + "," + tls.url, "--hostname",
                                "tls-failover.example.com", "--key-file", key], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(a.returncode, 5, a.stdout + a.stderr)
            self.assertIn("TLS: cannot verify", a.stderr)
            self.assertFalse(os.path.exists(key))
        finally:
            self.assertEqual(tls.stop(), 0)
            tls.cleanup()


class AgentFailover(unittest.TestCase):
    def setUp(self):
        self.servers = []
        self.agents = []
        self.server = self.start_server(Server(SERVER_ARGS))
        self.admin = self.server.token()

    def start_server(self, s, port=None):
        self.servers.append(s)
        return s.start(port=port)

    def tearDown(self):
        for a in self.agents:
            if a.proc.poll() is None:
                a.proc.kill()
            a.proc.wait()
            a.pump.join(timeout=5)
            a.proc.stdout.close()
        for s in self.servers:
            if s.proc:
                self.assertEqual(s.stop(), 0, s.read_log()[-3000:])
        for s in self.servers:
            s.cleanup()

    def agent(self, servers, hostname, *extra):
        a = Agent(servers, hostname, os.path.join(self.server.dir, hostname + ".key"), "--work-wait", "1", *extra)
        self.agents.append(a)
        return a

    def submit_and_wait(self, server, message, timeout=30):
        r = server.request("POST", "/api/v1/tasks", {"task_type": "echo", "payload": {"message": message}},
                           token=self.admin)
        self.assertIn(r.status, (200, 201), r)
        tid = r.json()["data"]["task_id"]
        deadline = time.time() + timeout
        t = None
        while time.time() < deadline:
            t = server.request("GET", "/api/v1/tasks/" + tid, token=self.admin).json()["data"]
            if t["status"] in ("success", "failed", "timeout", "cancelled"):
                break
            time.sleep(0.1)
        self.assertEqual(t["status"], "success", t)
        self.assertEqual(t["result_data"], {"echo": {"message": message}})
        return t

    def test_agent_joins_through_a_dead_first_url_and_runs_a_task(self):
        dead = "http://127.0.0.1:%d" % free_port()
        a = self.agent(dead + "," + self.server.url, "failover-join.example.com")
        code = a.wait_for(r"registration code ([A-Z0-9]{5})").group(1)
        r = self.server.request("POST", "/api/v1/nodes/register-by-code?code=" + code, token=self.admin)
        self.assertEqual(r.status, 200, r)
        a.wait_for(r"approved; API key saved")
        a.wait_for(r"device reported")
        self.submit_and_wait(self.server, "through failover")
        self.assertEqual(a.stop(), 0)
        # One node, joined once.
        nodes = self.server.request("GET", "/api/v1/nodes?limit=100", token=self.admin).json()["nodes"]
        self.assertEqual([n["hostname"] for n in nodes].count("failover-join.example.com"), 1, nodes)

    def test_agent_retries_rounds_until_a_server_comes_up(self):
        p1, p2 = free_port(), free_port()
        a = self.agent("http://127.0.0.1:%d,http://127.0.0.1:%d" % (p1, p2), "failover-late.example.com")
        a.wait_for(r"join request failed \(cannot reach server: none of the 2 servers answered")
        late = self.start_server(Server(SERVER_ARGS), port=p2)
        code = a.wait_for(r"registration code ([A-Z0-9]{5})").group(1)
        r = late.request("POST", "/api/v1/nodes/register-by-code?code=" + code, token=late.token())
        self.assertEqual(r.status, 200, r)
        a.wait_for(r"approved; API key saved")
        a.wait_for(r"device reported")
        self.assertEqual(a.stop(), 0)

    def test_agent_follows_its_server_to_another_port_without_rejoining(self):
        spare_port = free_port()
        spare_url = "http://127.0.0.1:%d" % spare_port
        a = self.agent(self.server.url + "," + spare_url, "failover-move.example.com")
        code = a.wait_for(r"registration code ([A-Z0-9]{5})").group(1)
        r = self.server.request("POST", "/api/v1/nodes/register-by-code?code=" + code, token=self.admin)
        self.assertEqual(r.status, 200, r)
        a.wait_for(r"approved; API key saved")
        a.wait_for(r"device reported")
        first = self.submit_and_wait(self.server, "before the move")

        # Server 1 goes away; server 2 serves the same database file on the
        # spare port.
        self.assertEqual(self.server.stop(), 0, self.server.read_log()[-3000:])
        second = Server(SERVER_ARGS)
        second.db = self.server.db
        second.signing_key_file = self.server.signing_key_file  # what replicas share (on PostgreSQL a
        second.wallet_key_file = self.server.wallet_key_file    # key file is not beside the database)
        self.start_server(second, port=spare_port)
        a.wait_for(r"switching from %s to %s" % (self.server.url, spare_url), timeout=30)
        t = self.submit_and_wait(second, "after the move")
        self.assertEqual(t["device_id"], first["device_id"], t)
        r = second.request("GET", "/api/v1/devices/" + t["device_id"], token=self.admin)
        self.assertEqual(r.json()["data"]["status"], "online", r)
        a.wait_for(r"reported cpu=", timeout=20)
        self.assertEqual(a.stop(), 0)
        # Never joined again: one registration code, one node.
        self.assertEqual(sum(1 for line in a.seen if "registration code" in line), 1, a.seen)
        nodes = second.request("GET", "/api/v1/nodes?limit=100", token=self.admin).json()["nodes"]
        self.assertEqual([n["hostname"] for n in nodes].count("failover-move.example.com"), 1, nodes)


class TrustedProxy(unittest.TestCase):
    """lucid-server --trusted-proxy without a real proxy: the test plays it
    from one loopback address and an untrusted client from another."""

    def get(self, server, source, headers):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=(source, 0))
        try:
            conn.request("GET", "/health", headers=headers)
            r = conn.getresponse()
            r.read()
            return r.status
        finally:
            conn.close()

    def logged_client(self, server, request_id):
        deadline = time.time() + 10
        while time.time() < deadline:
            m = re.search(r" (\S+) %s " % re.escape(request_id), server.read_log())
            if m:
                return m.group(1)
            time.sleep(0.05)
        self.fail("no access log line for " + request_id)

    def test_forwarded_for_is_believed_from_trusted_peers_only(self):
        s = Server(["--trusted-proxy", "127.0.0.2,10.0.0.0/8", "--trusted-proxy", "::1"]).start()
        try:
            cases = [
                # (peer, X-Forwarded-For, the client the server must log)
                ("127.0.0.2", "203.0.113.7", "203.0.113.7"),
                ("127.0.0.2", "6.6.6.6, 203.0.113.8", "203.0.113.8"),   # the client's own entry is skipped
                ("127.0.0.2", "203.0.113.9, 10.1.2.3", "203.0.113.9"),  # through two trusted proxies
                ("127.0.0.2", "not-an-address", "127.0.0.2"),           # garbage: the peer
                ("127.0.0.3", "203.0.113.10", "127.0.0.3"),             # untrusted peer: ignored
            ]
            for peer, xff, expected in cases:
                rid = "tp-%d-%d" % (cases.index((peer, xff, expected)), os.getpid())
                self.assertEqual(self.get(s, peer, {"X-Request-ID": rid, "X-Forwarded-For": xff}), 200)
                self.assertEqual(self.logged_client(s, rid), expected, (peer, xff))
        finally:
            self.assertEqual(s.stop(), 0, s.read_log()[-3000:])
            s.cleanup()

    def test_malformed_ranges_stop_the_server(self):
        # Checked before the database is opened: nothing is created.
        db_dir = os.path.join(tempfile.mkdtemp(prefix="lucid-tp-"), "never")
        for bad in ("10.0.0.0/33", "host.example", "10.0.0.0/8,1.2.3", "::/129", "10.0.0.0/"):
            out = subprocess.run([SERVER_BIN, "--listen", "127.0.0.1:0", "--db", os.path.join(db_dir, "x.db"),
                                  "--trusted-proxy", bad], capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 2, (bad, out.stderr))
            self.assertIn("--trusted-proxy must be an IP address or CIDR range", out.stderr)
        self.assertFalse(os.path.exists(db_dir))
        os.rmdir(os.path.dirname(db_dir))


if __name__ == "__main__":
    unittest.main()
