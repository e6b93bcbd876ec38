"""lucidctl agent against a live server: join, approval, key file, real
stats from /proc, surviving a server restart, and its refusals."""
import os
import queue
import re
import signal
import stat
import subprocess
import threading
import time
import unittest

from lucidtest import CTL_BIN, Server


class Agent:
    """A running `lucidctl agent`, its stdout read line by line."""

    def __init__(self, server_url, hostname, key_file, *extra, verbose=True):
        # Tests follow each report and task step: --verbose (the default is quiet).
        # hostname None: the agent's default, the system's host name.
        self.proc = subprocess.Popen(
            [CTL_BIN, "agent", "--server", server_url] + (["--hostname", hostname] if hostname else []) +
            ["--key-file", key_file, "--interval", "1", "--poll", "1", "--max-backoff", "1"] +
            (["--verbose"] if verbose else []) + list(extra),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        self.seen = []
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, pattern, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=max(0.05, deadline - time.time()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            m = re.search(pattern, line)
            if m:
                return m
        raise AssertionError("agent never printed %r; output:\n%s" % (pattern, "\n".join(self.seen)))

    def close(self):
        """Stops the agent if it runs (SIGTERM, SIGKILL after 20 s) and releases its output pipe."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.pump.join(timeout=5)
        self.proc.stdout.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


class AgentTest(unittest.TestCase):
    def setUp(self):
        self.server = Server().start()
        self.admin = self.server.token()
        self.key_file = os.path.join(self.server.dir, "agent", "node.key")
        self.agents = []

    def tearDown(self):
        for a in self.agents:
            if a.proc.poll() is None:
                a.proc.kill()
            a.proc.wait()
            a.pump.join(timeout=5)
            a.proc.stdout.close()
        self.assertEqual(self.server.stop(), 0, self.server.read_log()[-3000:])
        self.server.cleanup()

    def agent(self, hostname, key_file=None, *extra, verbose=True):
        a = Agent(self.server.url, hostname, key_file or self.key_file, *extra, verbose=verbose)
        self.agents.append(a)
        return a

    def ctl(self, *args):
        return subprocess.run([CTL_BIN, "--server", self.server.url, "--token", self.admin] + list(args),
                              capture_output=True, text=True, timeout=30)

    def test_join_approve_report_restart(self):
        a = self.agent("agent-1.example.com")
        code = a.wait_for(r"registration code ([A-Z0-9]{5})").group(1)
        # while pending the agent keeps polling; nothing is saved yet
        self.assertFalse(os.path.exists(self.key_file))
        out = self.ctl("nodes", "approve-code", code)
        self.assertEqual(out.returncode, 0, out.stderr)
        a.wait_for(r"approved; API key saved")
        self.assertEqual(stat.S_IMODE(os.stat(self.key_file).st_mode), 0o600)
        with open(self.key_file) as f:
            self.assertTrue(f.read().startswith("lnk_"))
        a.wait_for(r"reported cpu=")
        nodes = self.server.request("GET", "/api/v1/nodes/", token=self.admin).json()
        node = [n for n in nodes if n["hostname"] == "agent-1.example.com"][0]
        self.assertEqual(node["health"], "online")
        s = node["stats"][0]
        # Real figures from /proc and statvfs, not constants.
        self.assertGreater(s["uptime_seconds"], 0)
        self.assertTrue(0 < s["memory_percent"] < 100, s)
        self.assertTrue(0 < s["disk_usage"] <= 100, s)
        detail = self.server.request("GET", "/api/v1/nodes/%d" % node["id"], token=self.admin).json()
        self.assertGreater(detail["total_available_gb"], 0)

        # The server goes away: the agent retries, and resumes when it returns.
        self.assertEqual(self.server.stop(), 0)
        # The stats loop's own failure: "report failed" alone also matched the
        # worker's "device report failed", so the server could come back before
        # the stats loop had failed, and it never said "reachable again".
        a.wait_for(r"agent: report failed")
        self.server.start()
        a.wait_for(r"server reachable again", timeout=30)
        a.wait_for(r"reported cpu=")
        self.assertEqual(a.stop(), 0)

        # A restarted agent reuses its key file instead of joining again.
        b = self.agent("agent-1.example.com", None, "--max-reports", "1")
        b.wait_for(r"using API key from")
        b.wait_for(r"reported cpu=")
        self.assertEqual(b.proc.wait(timeout=20), 0)
        self.assertEqual(len(self.server.request("GET", "/api/v1/nodes/", token=self.admin).json()), 1)

    def test_quiet_by_default_and_hostname_from_the_system(self):
        import socket
        a = self.agent(None, verbose=False)
        code = a.wait_for(r"registration code ([A-Z0-9]{5})").group(1)
        nodes = self.server.request("GET", "/api/v1/nodes/", token=self.admin).json()
        self.assertEqual([n["hostname"] for n in nodes], [socket.gethostname()])
        self.assertEqual(self.ctl("nodes", "approve-code", code).returncode, 0)
        a.wait_for(r"reported cpu=.*--verbose prints each report")
        # Reports go on every second, silently.
        time.sleep(3.5)
        node = self.server.request("GET", "/api/v1/nodes/", token=self.admin).json()[0]
        self.assertEqual(node["health"], "online")
        self.assertEqual(a.stop(), 0)
        a.pump.join(timeout=5)
        rest = []
        while not a.lines.empty():
            line = a.lines.get()
            if line is not None:
                rest.append(line)
        self.assertFalse([l for l in rest if "reported cpu=" in l], rest)

    def test_backoff_honours_retry_after(self):
        # Two registration calls a minute: the join and one poll; the next
        # poll is refused with 429 and a Retry-After of about 30 s, which the
        # agent waits out instead of its own 1 s backoff.
        old = self.server
        self.assertEqual(old.stop(), 0)
        old.cleanup()
        self.server = Server(["--rate-join", "2"]).start()
        self.admin = self.server.token()
        a = self.agent("limited.example.com")
        m = a.wait_for(r"polling failed \(HTTP 429.*\); retrying in (\d+)s")
        self.assertGreaterEqual(int(m.group(1)), 20)
        self.assertEqual(a.stop(), 0)

    def test_restart_while_pending_keeps_the_request_and_only_the_agent_gets_the_key(self):
        a = self.agent("pend-1.example.com")
        code = a.wait_for(r"registration code ([A-Z0-9]{5})").group(1)
        secret_file = self.key_file + ".join"
        self.assertEqual(stat.S_IMODE(os.stat(secret_file).st_mode), 0o600)
        with open(secret_file) as f:
            secret = f.read().strip()
        self.assertRegex(secret, r"^ljs_[A-Za-z0-9_-]{43}$")
        self.assertEqual(a.stop(), 0)
        # An attacker re-joining the pending hostname learns no code.
        r = self.server.request("POST", "/api/v1/nodes/join-request", {"hostname": "pend-1.example.com"})
        self.assertEqual(r.status, 409, r)
        self.assertNotIn(code, r.text)
        # The restarted agent re-joins with its saved secret: same request, same code.
        b = self.agent("pend-1.example.com", None, "--max-reports", "1")
        self.assertEqual(b.wait_for(r"registration code ([A-Z0-9]{5})").group(1), code)
        # The agent is paused while the node is approved, so the attacker's
        # poll below comes first whatever the machine's speed.
        b.proc.send_signal(signal.SIGSTOP)
        try:
            self.assertEqual(self.ctl("nodes", "approve-code", code).returncode, 0)
            # An attacker polling the known code after approval gets the status, not the key...
            r = self.server.poll_code(code)
            self.assertEqual(r.json(), {"status": "active", "api_key": None})
        finally:
            b.proc.send_signal(signal.SIGCONT)
        # ...and the real agent still collects it.
        b.wait_for(r"approved; API key saved")
        b.wait_for(r"reported cpu=")
        self.assertEqual(b.proc.wait(timeout=20), 0)
        self.assertFalse(os.path.exists(secret_file))  # spent with the key
        nodes = self.server.request("GET", "/api/v1/nodes/", token=self.admin).json()
        self.assertEqual([n["hostname"] for n in nodes], ["pend-1.example.com"])

    def test_agent_without_the_secret_of_a_pending_hostname_is_refused(self):
        self.server.join("held.example.com")  # someone else holds this request's secret
        a = self.agent("held.example.com", os.path.join(self.server.dir, "held.key"))
        a.wait_for(r"join request refused: .*join_secret")
        self.assertEqual(a.proc.wait(timeout=20), 2)
        # --code without its join secret cannot collect a key: exit 2 before asking.
        b = self.agent("code.example.com", os.path.join(self.server.dir, "code.key"), "--code", "ABCDE")
        b.wait_for(r"--code needs the join secret")
        self.assertEqual(b.proc.wait(timeout=20), 2)
        # A wrong secret for a created node's code: refused, exit 2.
        r = self.server.request("POST", "/api/v1/nodes", {"name": "made-cli.example.com"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        c = self.agent("made-cli.example.com", os.path.join(self.server.dir, "made.key"),
                       "--code", r.json()["registration_code"], "--join-secret", "ljs_wrong")
        c.wait_for(r"refused our join secret")
        self.assertEqual(c.proc.wait(timeout=20), 2)
        # The right one (here from the environment) collects it.
        env = dict(os.environ, LUCID_JOIN_SECRET=r.json()["join_secret"])
        out = subprocess.run([CTL_BIN, "agent", "--server", self.server.url, "--hostname", "made-cli.example.com",
                              "--key-file", os.path.join(self.server.dir, "made.key"), "--code",
                              r.json()["registration_code"], "--max-reports", "1", "--interval", "1", "--poll", "1",
                              "--no-tasks"], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("approved; API key saved", out.stdout)

    def test_agent_refusals(self):
        # Hostname active on the server but no key file here: exit 3.
        self.server.join_and_approve("taken.example.com", self.admin)
        a = self.agent("taken.example.com", os.path.join(self.server.dir, "other.key"))
        a.wait_for(r"already an active node")
        self.assertEqual(a.proc.wait(timeout=20), 3)

        # A key file readable by others is refused: exit 2.
        loose = os.path.join(self.server.dir, "loose.key")
        with open(loose, "w") as f:
            f.write("lnk_x\n")
        os.chmod(loose, 0o644)
        b = self.agent("loose.example.com", loose)
        b.wait_for(r"permissions must be 0600")
        self.assertEqual(b.proc.wait(timeout=20), 2)

        # A key the server does not know: exit 4.
        bad = os.path.join(self.server.dir, "bad.key")
        with open(bad, "w") as f:
            f.write("lnk_not-a-real-key\n")
        os.chmod(bad, 0o600)
        c = self.agent("bad.example.com", bad)
        c.wait_for(r"rejected our API key")
        self.assertEqual(c.proc.wait(timeout=20), 4)

        # An invalid hostname is refused by the server: exit 2.
        d = self.agent("not a hostname", os.path.join(self.server.dir, "d.key"))
        d.wait_for(r"join request refused")
        self.assertEqual(d.proc.wait(timeout=20), 2)


if __name__ == "__main__":
    unittest.main()
