"""Operating lucid-server (issue 15, "Server"): --config TOML, --version and
usage exit codes, logs (level, client address, request id; JSON lines),
X-Request-ID, GET /metrics (Prometheus text), health never rate-limited, the
bootstrap admin's user record, the wallet key made on first start, logout of a
session-less token, refresh with an access token."""
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

from lucidtest import SERVER_BIN, Server, ServerTestCase

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's python3-prometheus-client (scripts/setup) is pure Python under
    # /usr/lib/python3/dist-packages, which another interpreter (pyenv) does
    # not search.
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        text_string_to_metric_families = None
    finally:
        sys.path.remove("/usr/lib/python3/dist-packages")

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def run_server(*args, timeout=20):
    """Runs lucid-server to completion (for exits before listening)."""
    return subprocess.run([SERVER_BIN] + list(args), capture_output=True, text=True, timeout=timeout)


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class CommandLine(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lucidops-")

    def tearDown(self):
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)

    def config(self, text, name="server.toml"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_version_and_usage_errors(self):
        r = run_server("--version")
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout.strip(), r"^lucid-server \d+\.\d+\.\d+")
        for args, message in ((["--no-such-flag"], "--no-such-flag"),
                              (["--workers", "0"], "--workers"),
                              (["--workers", "many"], "--workers"),
                              (["--log-format", "xml"], "--log-format"),
                              (["stray"], "stray")):
            r = run_server(*args)
            self.assertEqual(r.returncode, 2, (args, r))
            self.assertIn(message, r.stderr, args)
            self.assertTrue(r.stderr.startswith("lucid-server: "), r.stderr)

    def test_config_errors_exit_2_naming_the_key(self):
        cases = (
            ("listen = \"127.0.0.1:0\"\nlisen = \"x\"\n", "'lisen'", "unknown key"),
            ("workers = \"four\"\n", "'workers'", "an integer"),
            ("workers = 4.5\n", "'workers'", "an integer"),
            ("quiet = 1\n", "'quiet'", "a boolean"),
            ("listen = 8080\n", "'listen'", "a string"),
            ("block-time = \"5\"\n", "'block-time'", "a number"),
            ("[server]\nlisten = \"x\"\n", "'server'", "unknown key"),
            ("environment = [\"a\"]\n", "'environment'", "a string"),
            ("config = \"other.toml\"\n", "'config'", "unknown key"),
            ("version = true\n", "'version'", "unknown key"),
            ("listen = \n", "line 1", ""),           # TOML syntax
            ("workers = 0\n", "workers", ""),        # the flag's own range check
            ("log-level = \"loud\"\n", "log-level", ""),
        )
        for text, where, what in cases:
            r = run_server("--config", self.config(text), "--db", os.path.join(self.dir, "x.db"))
            self.assertEqual(r.returncode, 2, (text, r))
            self.assertIn(where, r.stderr, text)
            self.assertIn(what, r.stderr, text)
            self.assertFalse(os.path.exists(os.path.join(self.dir, "x.db")), "nothing is created on a bad config")
        r = run_server("--config", os.path.join(self.dir, "absent.toml"))
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("absent.toml", r.stderr)

    def test_config_file_mirrors_flags_and_flags_override(self):
        port_file = os.path.join(self.dir, "port")
        db = os.path.join(self.dir, "conf.db")
        path = self.config(
            "# lucid-server settings\n"
            "listen = \"127.0.0.1:0\"\n"
            "db = \"%s\"\n"
            "port-file = \"%s\"\n"
            "environment = \"from-file\"\n"
            "workers = 2\n"
            "block-time = 1\n"            # an integer for a floating flag is a number
            "quiet = true\n"
            "log-format = \"json\"\n"
            "rate-gateway-public = 2\n"
            "rate-gateway-public-burst = 2\n" % (db, port_file))
        srv = Server(test_clock=False)
        try:
            # No --listen/--db/--port-file on the command line: all from the
            # file; --environment given here wins over the file's.
            args = [SERVER_BIN, "--config", path, "--environment", "from-flag"]
            srv.log = open(srv.log_path, "ab")
            srv.proc = subprocess.Popen(args, stdout=srv.log, stderr=subprocess.STDOUT)
            deadline = time.time() + 20
            while time.time() < deadline and not (os.path.exists(port_file) and open(port_file).read().strip()):
                self.assertIsNone(srv.proc.poll(), srv.read_log())
                time.sleep(0.02)
            srv.port = int(open(port_file).read())
            self.assertTrue(os.path.exists(db))
            info = srv.request("GET", "/api/v1/meta/info")
            self.assertEqual(info.json()["environment"], "from-flag")
            # The file's gateway limit (2, burst 2) is in force.
            statuses = [srv.request("GET", "/api/v1/meta/version").status for _ in range(3)]
            self.assertEqual(statuses[-1], 429, statuses)
            # quiet = true: no request lines; log-format = json: startup lines are JSON.
            self.assertEqual(srv.stop(), 0)
            lines = [l for l in srv.read_log().splitlines() if l.strip()]
            self.assertTrue(lines)
            for line in lines:
                obj = json.loads(line)
                self.assertNotEqual(obj.get("msg"), "request", line)
        finally:
            srv.cleanup()


class Logs(ServerTestCase):
    server_args = []

    def test_request_id_is_honoured_or_minted_and_always_returned(self):
        r = self.server.request("GET", "/api/v1/meta/version", headers={"X-Request-ID": "trace-42.a:b"})
        self.assertEqual(r.headers["x-request-id"], "trace-42.a:b")
        # Errors carry it too, in the header and the body.
        r = self.server.request("GET", "/api/v1/users/me", headers={"X-Request-ID": "trace-43"})
        self.assertEqual(r.status, 401)
        self.assertEqual(r.headers["x-request-id"], "trace-43")
        self.assertEqual(r.json()["error"]["request_id"], "trace-43")
        r = self.server.request("GET", "/no/such/path", headers={"X-Request-ID": "trace-44"})
        self.assertEqual(r.headers["x-request-id"], "trace-44")
        # Minted: absent, too long, or not visible ASCII.
        for hdrs in ({}, {"X-Request-ID": "x" * 129}, {"X-Request-ID": "two words"},
                     {"X-Request-ID": "caf\u00e9".encode("utf-8").decode("latin-1")}):
            r = self.server.request("GET", "/api/v1/meta/version", headers=hdrs)
            self.assertRegex(r.headers["x-request-id"], UUID_RE, hdrs)
        r = self.server.request("GET", "/api/v1/meta/version", headers={"X-Request-ID": "y" * 128})
        self.assertEqual(r.headers["x-request-id"], "y" * 128)
        # A protocol error (bad JSON body framing is routed; an oversized
        # body is refused by the HTTP layer) still answers an id.
        r = self.server.request("POST", "/api/v1/auth/login", body=b"x" * (2 * 1024 * 1024),
                                headers={"X-Request-ID": "big-1", "Content-Type": "application/json"})
        self.assertEqual(r.status, 413)
        self.assertIn("x-request-id", r.headers)

    def test_text_lines_have_level_client_and_request_id(self):
        self.server.request("GET", "/api/v1/meta/version", headers={"X-Request-ID": "line-ok"})
        self.server.request("GET", "/api/v1/users/me", headers={"X-Request-ID": "line-401"})
        deadline = time.time() + 5
        log = ""
        while time.time() < deadline:
            log = self.server.read_log()
            if "line-401" in log:
                break
            time.sleep(0.1)
        ok = [l for l in log.splitlines() if " line-ok " in l]
        bad = [l for l in log.splitlines() if " line-401 " in l]
        self.assertEqual(len(ok), 1, log[-2000:])
        self.assertRegex(ok[0], r"^\S+Z info 127\.0\.0\.1 line-ok GET /api/v1/meta/version 200 [0-9.]+ms$")
        self.assertRegex(bad[0], r" warning 127\.0\.0\.1 line-401 GET /api/v1/users/me 401 ")


class JsonLogs(ServerTestCase):
    server_args = ["--log-format", "json", "--log-level", "warning"]

    def test_json_lines_and_level_filter(self):
        self.server.request("GET", "/api/v1/meta/version", headers={"X-Request-ID": "j-ok"})
        self.server.request("GET", "/api/v1/users/me", headers={"X-Request-ID": "j-401"})
        # A path with a quote, a backslash and a control byte stays one valid JSON line.
        self.server.request("GET", "/a%22b%5Cc%01d", headers={"X-Request-ID": "j-404"})
        deadline = time.time() + 5
        while time.time() < deadline and "j-404" not in self.server.read_log():
            time.sleep(0.1)
        records = [json.loads(l) for l in self.server.read_log().splitlines() if l.startswith("{")]
        by_id = {r.get("request_id"): r for r in records}
        self.assertNotIn("j-ok", by_id)  # info: below --log-level warning
        r = by_id["j-401"]
        self.assertEqual((r["level"], r["msg"], r["client"], r["method"], r["path"], r["status"]),
                         ("warning", "request", "127.0.0.1", "GET", "/api/v1/users/me", 401))
        self.assertIsInstance(r["duration_ms"], (int, float))
        self.assertRegex(r["time"], r"Z$")
        self.assertEqual(by_id["j-404"]["path"], '/a"b\\c?d')


class Metrics(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lucidscrape-")
        cls.scrape = "s" * 40
        cls.token_file = os.path.join(cls.tmp, "scrape")
        write_private(cls.token_file, cls.scrape + "\n")
        cls.server_args = ["--metrics-token-file", cls.token_file]
        super().setUpClass()

    def test_metrics_auth(self):
        self.assertEqual(self.server.request("GET", "/metrics").status, 401)
        self.assertEqual(self.server.request("GET", "/metrics", token="t" * 40).status, 401)
        self.assertEqual(self.server.request("GET", "/metrics", token=self.scrape + "x").status, 401)
        r = self.server.request("GET", "/metrics", token=self.server.token("viewer", sub="v"))
        self.assertEqual(r.status, 403, r)
        self.assertEqual(self.server.request("GET", "/metrics", token=self.scrape).status, 200)
        self.assertEqual(self.server.request("GET", "/metrics", token=self.admin).status, 200)
        self.assertEqual(self.server.request("POST", "/metrics", token=self.admin).status, 405)
        # The scrape token opens /metrics only.
        self.assertEqual(self.server.request("GET", "/api/v1/meta/metrics", token=self.scrape).status, 401)
        self.assertEqual(self.server.request("GET", "/api/v1/nodes/", token=self.scrape).status, 401)

    def test_one_content_type_and_the_gauges(self):
        node_id, key = self.server.join_and_approve("metrics-1", self.admin)
        self.assertEqual(self.server.report(key).status, 200)
        for _ in range(3):
            self.server.request("GET", "/api/v1/meta/version")
        conn = self.server.connection()
        conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + self.scrape})
        resp = conn.getresponse()
        text = resp.read().decode()
        conn.close()
        self.assertEqual(resp.status, 200)
        types = [v for k, v in resp.getheaders() if k.lower() == "content-type"]
        self.assertEqual(types, ["text/plain; version=0.0.4; charset=utf-8"])
        if text_string_to_metric_families is None:
            self.skipTest("python3-prometheus-client is not installed (scripts/setup installs it)")
        families = {f.name: f for f in text_string_to_metric_families(text)}
        samples = {}
        for f in families.values():
            for s in f.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        self.assertEqual(families["lucid_http_requests"].type, "counter")
        self.assertEqual(families["lucid_http_request_duration_seconds"].type, "histogram")
        self.assertGreaterEqual(samples[("lucid_http_requests_total",
                                         (("method", "GET"), ("route", "/api/v1/meta/version"), ("status", "200")))], 3)
        for name, label, values in (("lucid_nodes_health", "health", ("online", "stale", "offline")),
                                    ("lucid_nodes_lifecycle", "state",
                                     ("inactive", "starting", "active", "stopping", "maintenance", "error")),
                                    ("lucid_devices", "state", ("registered", "removed")),
                                    ("lucid_tasks", "status", ("pending", "queued", "assigned", "running", "success",
                                                               "failed", "cancelled", "timeout")),
                                    ("lucid_queue_depth", "queue", ("tasks", "stats_samples",
                                                                    "ledger_pending_transactions"))):
            self.assertEqual(families[name].type, "gauge", name)
            for v in values:
                self.assertIn((name, ((label, v),)), samples, (name, v))
        self.assertGreaterEqual(samples[("lucid_nodes_health", (("health", "online"),))], 1)
        self.assertGreaterEqual(samples[("lucid_nodes", (("status", "active"),))], 1)
        self.assertGreaterEqual(samples[("lucid_active_connections", ())], 1)
        # Tasks by status and queue depth move with the queue.
        before = samples[("lucid_queue_depth", (("queue", "tasks"),))]
        r = self.server.request("POST", "/api/v1/tasks", {"task_type": "echo", "payload": {"x": 1}},
                                headers={"X-API-Key": self.admin})
        self.assertEqual(r.status, 201, r)
        text = self.server.request("GET", "/metrics", token=self.admin).text
        after = {(s.name, tuple(sorted(s.labels.items()))): s.value
                 for f in text_string_to_metric_families(text) for s in f.samples}
        self.assertEqual(after[("lucid_queue_depth", (("queue", "tasks"),))], before + 1)
        queued = sum(after[("lucid_tasks", (("status", s),))] for s in ("pending", "queued"))
        self.assertEqual(queued, before + 1)


class HealthIsNeverLimited(ServerTestCase):
    server_args = ["--rate-gateway-public", "1", "--rate-gateway-public-burst", "1",
                   "--rate-cluster-minute", "1", "--rate-cluster-burst", "1"]

    def test_probes_never_see_429(self):
        for _ in range(25):
            self.assertEqual(self.server.request("GET", "/api/v1/meta/health").status, 200)
            self.assertEqual(self.server.request("GET", "/health").status, 200)
        # The limit itself is in force on the tier's other routes.
        statuses = [self.server.request("GET", "/api/v1/meta/info").status for _ in range(3)]
        self.assertIn(429, statuses)


class BootstrapAdmin(ServerTestCase):
    server_args = ["--admin-email", "Ops@Example.com"]

    def test_users_me_for_the_bootstrap_admin_token(self):
        tok = self.server.token("super_admin", sub="admin")
        r = self.server.request("GET", "/api/v1/users/me", token=tok)
        self.assertEqual(r.status, 200, r)
        me = r.json()
        self.assertEqual((me["email"], me["username"], me["role"]), ("ops@example.com", "admin", "super_admin"))
        uuid.UUID(me["user_id"])
        r = self.server.request("PUT", "/api/v1/users/me", {"first_name": "Op"}, token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["first_name"], "Op")
        st = self.server.request("GET", "/api/v1/auth/status", token=tok).json()
        self.assertEqual(st["user"]["user_id"], me["user_id"])
        # Another subject names no user: 404 as before.
        r = self.server.request("GET", "/api/v1/users/me", token=self.server.token("super_admin", sub="someone"))
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json()["error"]["code"], "LUCID_ERR_4001")
        # The record is made once: a restart (even with another email) keeps it.
        self.server.stop()
        self.server.extra_args = ["--admin-email", "other@example.com"]
        self.server.start()
        again = self.server.request("GET", "/api/v1/users/me", token=tok).json()
        self.assertEqual((again["user_id"], again["email"]), (me["user_id"], "ops@example.com"))


class WalletKeyOnFirstStart(unittest.TestCase):
    def test_created_0600_beside_the_database_and_kept(self):
        env_key = os.environ.pop("LUCID_WALLET_KEY", None)
        srv = Server()
        try:
            srv.start()
            path = srv.wallet_key_file
            st = os.stat(path)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
            with open(path) as f:
                key = f.read()
            self.assertRegex(key, r"^[0-9a-f]{64}\n$")
            admin = srv.token("super_admin")
            user = srv.token("user", sub=str(uuid.uuid4()))
            r = srv.request("POST", "/api/v1/wallets", {"name": "w", "currency": "TRX"}, token=user)
            self.assertEqual(r.status, 201, r)
            self.assertTrue(r.json()["custodial"])
            srv.stop()
            srv.start()
            with open(path) as f:
                self.assertEqual(f.read(), key)
            self.assertEqual(srv.request("GET", "/api/v1/meta/health", token=admin).status, 200)
            srv.stop()
            # A default key file others can read is refused, as the signing key is.
            os.chmod(path, 0o644)
            with self.assertRaises(RuntimeError):
                srv.start(timeout=10)
            self.assertIn("must not be readable by others", srv.read_log())
        finally:
            srv.cleanup()
            if env_key is not None:
                os.environ["LUCID_WALLET_KEY"] = env_key


class SessionlessLogout(ServerTestCase):
    def test_logout_revokes_the_presented_token_everywhere_until_expiry(self):
        tok = self.server.token("super_admin", sub="ops-2", ttl="1h")
        other = self.server.token("super_admin", sub="ops-2", ttl="1h")
        self.assertEqual(self.server.request("GET", "/api/v1/auth/status", token=tok).status, 200)
        r = self.server.request("POST", "/api/v1/auth/logout", token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["message"], "Successfully logged out")
        # Refused at once on every surface.
        self.assertEqual(self.server.request("GET", "/api/v1/auth/status", token=tok).status, 401)
        self.assertEqual(self.server.request("GET", "/api/v1/nodes/", token=tok).status, 401)
        self.assertEqual(self.server.request("GET", "/api/v1/devices", headers={"X-API-Key": tok}).status, 401)
        self.assertEqual(self.server.request("GET", "/metrics", token=tok).status, 401)
        self.assertEqual(self.server.request("POST", "/api/v1/auth/logout", token=tok).status, 401)
        # Only that token: another of the same subject still works.
        self.assertEqual(self.server.request("GET", "/api/v1/auth/status", token=other).status, 200)
        # It stays revoked across a restart.
        self.server.stop()
        self.server.start()
        self.assertEqual(self.server.request("GET", "/api/v1/auth/status", token=tok).status, 401)
        self.assertEqual(self.server.request("GET", "/api/v1/auth/status", token=other).status, 200)

    def test_refresh_with_an_access_token_is_the_gateways_401(self):
        for body in ({"refresh_token": self.admin}, {"refresh_token": "x" * 5000}):
            r = self.server.request("POST", "/api/v1/auth/refresh", body)
            self.assertEqual(r.status, 401, r)
            self.assertEqual(r.json()["error"]["code"], "LUCID_ERR_2010")
        r = self.server.request("POST", "/api/v1/auth/refresh", {"refresh_token": "x" * 70000})
        self.assertEqual(r.status, 400, r)  # beyond the bound: a field error, not a lookup
        r = self.server.request("POST", "/api/v1/auth/refresh", {"refresh_token": 5})
        self.assertEqual(r.status, 400, r)


if __name__ == "__main__":
    unittest.main()
