"""lucidctl nodes cordon / uncordon / drain / remove against a live server
(issue 15; routes in docs/decisions.md): a session from an empty database to a
drained and removed node, with a real agent running a task during the drain."""
import json
import os
import re
import subprocess
import time
import unittest

from lucidtest import CTL_BIN, ServerTestCase
from test_agent import Agent


class LifecycleTest(ServerTestCase):
    def ctl(self, *args, token=None, timeout=120):
        e = dict(os.environ)
        e.pop("LUCID_SERVER", None)
        e.pop("LUCID_TOKEN", None)
        return subprocess.run([CTL_BIN, "--server", self.server.url, "--token", token or self.admin] + list(args),
                              capture_output=True, text=True, timeout=timeout, env=e)

    def ok(self, *args, **kw):
        out = self.ctl(*args, **kw)
        self.assertEqual(out.returncode, 0, (args, out.stdout, out.stderr))
        return out.stdout

    def approved(self, hostname):
        j = self.server.join(hostname)
        self.ok("nodes", "approve-code", j["registration_code"])
        key = self.server.collect(j).json()["api_key"]
        self.assertEqual(self.server.report(key, cpu_usage=3).status, 200)
        return key

    def row(self, hostname):
        lines = [l for l in self.ok("nodes", "list").splitlines() if " %s " % hostname in l + " "]
        self.assertEqual(len(lines), 1, lines)
        return lines[0].split()

    def test_cordon_uncordon_and_errors(self):
        self.approved("cord-a.example.com")
        out = self.ok("nodes", "cordon", "cord-a.example.com")
        self.assertRegex(out, r"node node_[0-9a-f]+ \(cord-a\.example\.com\) cordoned: status \S+, schedulable no")
        self.assertEqual(self.row("cord-a.example.com")[5], "no")
        self.assertRegex(self.ok("nodes", "show", "cord-a.example.com"), r"schedulable\s+no\n")
        out = self.ok("nodes", "uncordon", "cord-a.example.com")
        self.assertIn("schedulable yes", out)
        self.assertEqual(self.row("cord-a.example.com")[5], "yes")
        doc = json.loads(self.ok("--json", "nodes", "cordon", "cord-a.example.com"))
        self.assertFalse(doc["schedulable"])
        for sub in ("cordon", "uncordon", "drain", "remove"):
            out = self.ctl("nodes", sub, "cord-a.example.com", token=self.server.token("viewer"))
            self.assertEqual(out.returncode, 1, sub)
            self.assertIn("HTTP 403", out.stderr, sub)
            out = self.ctl("nodes", sub, "node_ffffffffffffffff")
            self.assertEqual(out.returncode, 1, sub)
            self.assertIn("HTTP 404", out.stderr, sub)
        out = self.ctl("nodes", "drain", "cord-a.example.com", "--deadline", "0")
        self.assertEqual(out.returncode, 2)

    def test_drain_with_a_running_task_then_remove(self):
        key_file = os.path.join(self.server.dir, "drain-agent.key")
        agent = Agent(self.server.url, "drain-a.example.com", key_file, "--work-wait", "1", "--progress-interval", "1")
        try:
            code = agent.wait_for(r"registration code ([A-Z0-9]{5})").group(1)
            self.ok("nodes", "approve-code", code)
            agent.wait_for(r"device reported")
            out = self.ok("tasks", "submit", "sleep", "--payload", '{"seconds": 4}')
            tid = re.match(r"task (\S+) ", out).group(1)
            deadline = time.time() + 30
            while time.time() < deadline:
                st = json.loads(self.ok("--json", "tasks", "status", tid))["data"]["status"]
                if st == "running":
                    break
                time.sleep(0.2)
            self.assertEqual(st, "running")
            self.assertRegex(self.ok("nodes", "show", "drain-a.example.com"), r"running tasks\n.*\n%s\s+sleep" % tid)
            out = self.ctl("nodes", "drain", "drain-a.example.com", "--deadline", "60", "--watch", "--interval",
                           "0.3")
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertRegex(out.stdout, r"draining, 1 running task\(s\)")
            self.assertTrue(out.stdout.strip().endswith("drained (no running tasks)"), out.stdout)
            self.assertEqual(json.loads(self.ok("--json", "tasks", "status", tid))["data"]["status"], "success")
            # Drained: a new task is not placed on it.
            out = self.ok("tasks", "submit", "echo", "--payload", "{}")
            new = re.match(r"task (\S+) ", out).group(1)
            time.sleep(2)
            self.assertEqual(json.loads(self.ok("--json", "tasks", "status", new))["data"]["status"], "queued")
            self.assertIn("drained", self.row("drain-a.example.com"))
            out = self.ok("nodes", "remove", "drain-a.example.com")
            self.assertRegex(out, r"node node_[0-9a-f]+ removed")
            agent.wait_for(r"rejected our API key")
            out = self.ctl("nodes", "show", "drain-a.example.com")
            self.assertEqual(out.returncode, 1)
            self.assertIn("no node with hostname", out.stderr)
        finally:
            agent.stop()
            agent.pump.join(timeout=5)
            agent.proc.stdout.close()


if __name__ == "__main__":
    unittest.main()
