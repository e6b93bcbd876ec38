"""lucidctl against a live server: tokens, node commands, errors, environment."""
import json
import os
import subprocess
import unittest

from lucidtest import CTL_BIN, ServerTestCase


class LucidctlTest(ServerTestCase):
    def ctl(self, *args, token=None, env=None, server=True):
        full = [CTL_BIN]
        if server:
            full += ["--server", self.server.url, "--token", token or self.admin]
        full += list(args)
        e = dict(os.environ)
        e.pop("LUCID_SERVER", None)
        e.pop("LUCID_TOKEN", None)
        e.update(env or {})
        return subprocess.run(full, capture_output=True, text=True, timeout=30, env=e)

    def test_create_token_prints_a_working_jwt_last(self):
        out = self.ctl(*self.server.ctl_db_args(), "admin", "create-token", "--role", "node_operator", "--ttl", "15m",
                       server=False)
        self.assertEqual(out.returncode, 0, out.stderr)
        token = out.stdout.strip().splitlines()[-1]
        self.assertEqual(token.count("."), 2)
        r = self.server.request("GET", "/api/v1/nodes/", token=token)
        self.assertEqual(r.status, 200)
        # node_operator may not approve
        r = self.server.request("POST", "/api/v1/nodes/approve/1", token=token)
        self.assertEqual(r.status, 403)

    def test_create_token_errors(self):
        cases = [
            (["admin", "create-token"], 2, "--db"),
            (self.server.ctl_db_args() + ["admin", "create-token", "--role", "root"], 2, "unknown role"),
            (self.server.ctl_db_args() + ["admin", "create-token", "--ttl", "forever"], 2, "--ttl"),
            (self.server.ctl_db_args() + ["admin", "create-token", "--ttl", "0s"], 2, "--ttl"),
            (self.server.ctl_db_args() + ["admin", "create-token", "--scopes", "BAD"], 1, "invalid scope"),
        ]
        for args, rc, msg in cases:
            out = self.ctl(*args, server=False)
            self.assertEqual(out.returncode, rc, (args, out.stderr))
            self.assertIn(msg, out.stderr, args)

    def test_scoped_token_carries_scopes(self):
        out = self.ctl(*self.server.ctl_db_args(), "admin", "create-token", "--scopes", "node:read,node:write",
                       server=False)
        self.assertEqual(out.returncode, 0, out.stderr)
        payload = out.stdout.strip().split(".")[1]
        payload += "=" * (-len(payload) % 4)
        import base64
        claims = json.loads(base64.urlsafe_b64decode(payload))
        self.assertEqual(claims["scopes"], ["node:read", "node:write"])
        self.assertEqual(claims["role"], "super_admin")

    def test_node_commands(self):
        j = self.server.join("cli-a.example.com", ip_address="192.0.2.7")
        node_id = int(j["request_id"])

        out = self.ctl("nodes", "list")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("HOSTNAME", out.stdout.splitlines()[0])
        self.assertRegex(out.stdout, r"cli-a\.example\.com\s+pending\s+offline")

        out = self.ctl("nodes", "approve-code", j["registration_code"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"status\s+active")

        out = self.ctl("nodes", "approve", str(node_id))
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 409", out.stderr)

        key = self.server.collect(j).json()["api_key"]
        self.assertEqual(self.server.report(key, cpu_usage=33.5, memory_percent=44).status, 200)

        out = self.ctl("nodes", "show", str(node_id))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"health\s+online")
        self.assertRegex(out.stdout, r"33\.5\s+44\s")

        out = self.ctl("--json", "nodes", "show", str(node_id))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["registration"]["stats"][0]["cpu_usage"], 33.5)

        out = self.ctl("nodes", "quota", str(node_id), "--gb", "250")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"storage_quota_gb\s+250\n")

        out = self.ctl("--json", "nodes", "list")
        rows = json.loads(out.stdout)
        self.assertIn("cli-a.example.com", [n["hostname"] for n in rows])
        self.assertTrue(all(n["node_id"].startswith("node_") for n in rows))

    def test_node_command_errors(self):
        out = self.ctl("nodes", "show", "987654")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 404", out.stderr)
        out = self.ctl("nodes", "approve-code", "ZZ")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 422", out.stderr)
        out = self.ctl("nodes", "quota", "1", "--gb", "-5")
        self.assertEqual(out.returncode, 1)
        self.assertIn("storage_quota_gb", out.stderr)
        out = self.ctl("nodes", "list", token="not-a-token")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 401", out.stderr)
        user = self.server.token("user")
        out = self.ctl("nodes", "show", "1", token=user)
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 403", out.stderr)

    def test_environment_and_unreachable_server(self):
        out = self.ctl("nodes", "list", server=False,
                       env={"LUCID_SERVER": self.server.url, "LUCID_TOKEN": self.admin})
        self.assertEqual(out.returncode, 0, out.stderr)
        out = self.ctl("nodes", "list", server=False)
        self.assertEqual(out.returncode, 2)
        self.assertIn("--server", out.stderr)
        out = subprocess.run([CTL_BIN, "--server", "http://127.0.0.1:1", "--token", "x", "nodes", "list"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 3)
        self.assertIn("cannot reach server", out.stderr)
        # A malformed URL is a malformed argument: usage, exit 2 (was 1 before issue 14 parsed the list up front).
        out = subprocess.run([CTL_BIN, "--server", "ftp://x", "--token", "x", "nodes", "list"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("server URL must start with http:// or https://: ftp://x", out.stderr)


if __name__ == "__main__":
    unittest.main()
