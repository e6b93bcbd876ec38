"""lucidctl's operator commands against a live server (issue 15): exit codes,
unknown commands, --version, completion, tables / -o wide / --json, paging past
1,000, and each command group's happy path and an error path (404, 403)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import uuid

from lucidtest import CTL_BIN, ServerTestCase
from test_agent import Agent


def run(args, env=None, stdin=None, timeout=60):
    e = dict(os.environ)
    for k in ("LUCID_SERVER", "LUCID_TOKEN", "LUCID_CA_FILE"):
        e.pop(k, None)
    e.update(env or {})
    return subprocess.run([CTL_BIN] + list(args), capture_output=True, text=True, timeout=timeout, env=e,
                          input=stdin)


class UsageTest(unittest.TestCase):
    """No server needed: parsing, help, version, completion."""

    def test_usage_errors_exit_2_with_the_message(self):
        cases = [
            (["nodes", "list", "--no-such-flag"], "--no-such-flag"),   # CLI11: 109 (extras)
            (["nodes", "show"], "NODE"),                               # CLI11: 106 (required)
            (["tasks", "submit", "echo", "--priority"], "--priority"),  # CLI11: 104 (argument missing)
            (["nodes"], "subcommand"),
            ([], "subcommand"),
            (["-o", "fancy", "nodes", "list"], "fancy"),
            (["tasks", "list", "--interval", "0"], "--interval"),
        ]
        for args, needle in cases:
            out = run(args)
            self.assertEqual(out.returncode, 2, (args, out.stdout, out.stderr))
            self.assertIn(needle, out.stderr, args)

    def test_unknown_command_says_unknown(self):
        out = run(["frobnicate"])
        self.assertEqual(out.returncode, 2)
        self.assertIn("unknown command 'frobnicate' for 'lucidctl'", out.stderr)
        self.assertIn("tasks", out.stderr)  # the commands it knows
        out = run(["--server", "http://127.0.0.1:1", "nodes", "lst"])
        self.assertEqual(out.returncode, 2)
        self.assertIn("unknown command 'lst' for 'lucidctl nodes'", out.stderr)
        self.assertIn("cordon", out.stderr)
        # Option values are not mistaken for commands.
        out = run(["--server", "http://127.0.0.1:1", "--token", "nodes", "tasks", "list"])
        self.assertEqual(out.returncode, 3, out.stderr)

    def test_version_and_help(self):
        out = run(["--version"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"^lucidctl \d+\.\d+\.\d+")
        out = run(["--help"])
        self.assertEqual(out.returncode, 0)
        self.assertIn("Examples:", out.stdout)
        for group in ("nodes", "tasks", "devices", "pools", "payouts", "ledger", "users", "apikeys", "keys",
                      "services", "workflows", "config", "completion", "agent"):
            self.assertRegex(out.stdout, r"\n\s+%s\b" % group)
        out = run(["nodes", "drain", "--help"])
        self.assertEqual(out.returncode, 0)
        self.assertIn("lucidctl nodes drain worker-a", out.stdout)

    def test_local_usage_errors_keep_exit_2(self):
        out = run(["nodes", "list"])
        self.assertEqual(out.returncode, 2)
        self.assertIn("--server", out.stderr)
        out = run(["ledger", "verify"])
        self.assertEqual(out.returncode, 2)
        out = run(["--server", "http://127.0.0.1:1", "tasks", "show", "../../etc"])
        self.assertEqual(out.returncode, 2)
        self.assertIn("TASK_ID", out.stderr)
        out = run(["--server", "http://127.0.0.1:1", "tasks", "submit", "echo", "--payload", "{nope"])
        self.assertEqual(out.returncode, 2)
        self.assertIn("--payload is not JSON", out.stderr)

    def test_bash_completion_follows_the_command_tree(self):
        out = run(["completion", "bash"])
        self.assertEqual(out.returncode, 0, out.stderr)
        script = out.stdout
        self.assertIn("complete -F _lucidctl lucidctl", script)
        with tempfile.NamedTemporaryFile("w", suffix=".bash", delete=False) as f:
            f.write(script)
            path = f.name
        try:
            self.assertEqual(subprocess.run(["bash", "-n", path]).returncode, 0)

            def complete(*words):
                line = ("source %s; COMP_WORDS=(lucidctl %s); COMP_CWORD=%d; _lucidctl; "
                        "printf '%%s\\n' \"${COMPREPLY[@]}\"") % (
                    path, " ".join("'%s'" % w for w in words), len(words))
                r = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=10)
                self.assertEqual(r.returncode, 0, r.stderr)
                return set(r.stdout.split())

            self.assertEqual(complete("no"), {"nodes"})
            self.assertTrue({"cordon", "uncordon", "drain", "remove", "list", "show"} <= complete("nodes", ""))
            self.assertEqual(complete("nodes", "dr"), {"drain"})
            self.assertIn("--watch", complete("nodes", "drain", "--"))
            self.assertIn("--deadline", complete("nodes", "drain", "--"))
            self.assertTrue({"submit", "list", "show", "result", "cancel", "retry"} <= complete("tasks", ""))
            # Global options before the command do not change the level.
            self.assertEqual(complete("--json", "tasks", "sub"), {"submit"})
        finally:
            os.unlink(path)

    def test_zsh_completion(self):
        out = run(["completion", "zsh"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(out.stdout.startswith("#compdef lucidctl"))
        self.assertIn("'cordon:Place no new work on a node", out.stdout)
        self.assertIn("\"/nodes/drain\") candidates=(", out.stdout)
        if shutil.which("zsh") is None:
            self.skipTest("zsh is not installed: the script's syntax is not checked")
        with tempfile.NamedTemporaryFile("w", suffix=".zsh", delete=False) as f:
            f.write(out.stdout)
        try:
            self.assertEqual(subprocess.run(["zsh", "-n", f.name]).returncode, 0)
        finally:
            os.unlink(f.name)

    def test_completion_needs_a_known_shell(self):
        out = run(["completion", "fish"])
        self.assertEqual(out.returncode, 2)
        self.assertIn("fish", out.stderr)


class OpsTest(ServerTestCase):
    # The cluster document's 60 requests a minute (burst 10) per client would
    # refuse these tests' volume; rate limits have tests of their own.
    server_args = ["--rate-cluster-minute", "100000", "--rate-cluster-hour", "1000000", "--rate-cluster-burst", "10000",
                   "--rate-cluster-admin-minute", "100000", "--rate-cluster-admin-hour", "1000000",
                   "--rate-cluster-admin-burst", "10000"]

    def ctl(self, *args, token=None, stdin=None, timeout=60):
        return run(["--server", self.server.url, "--token", token or self.admin] + list(args), stdin=stdin,
                   timeout=timeout)

    def ok(self, *args, **kw):
        out = self.ctl(*args, **kw)
        self.assertEqual(out.returncode, 0, (args, out.stdout, out.stderr))
        return out.stdout

    def create_node(self, name, **extra):
        body = {"name": name}
        body.update(extra)
        r = self.server.request("POST", "/api/v1/nodes", body, token=self.admin)
        self.assertEqual(r.status, 201, r)
        return r.json()

    # ---- nodes ----

    def test_nodes_list_follows_every_page(self):
        # 1,005 nodes: more than one page of either list (management 100 per
        # page, registration 1,000 per page).
        before = json.loads(self.ok("--json", "nodes", "list"))
        want = 1005 - len(before)
        for i in range(want):
            self.create_node("page-%04d.example.com" % i)
        nodes = json.loads(self.ok("--json", "nodes", "list"))
        self.assertEqual(len(nodes), 1005)
        self.assertEqual(len({n["node_id"] for n in nodes}), 1005)
        table = self.ok("nodes", "list")
        lines = table.strip().splitlines()
        self.assertEqual(lines[-1], "1005 nodes")
        self.assertEqual(len(lines), 1 + 1005 + 1)
        self.assertIn("page-%04d.example.com" % (want - 1), table)

    def test_nodes_table_columns_and_wide(self):
        j = self.server.join("tbl-a.example.com", ip_address="192.0.2.9")
        out = self.ok("nodes", "approve-code", j["registration_code"])
        self.assertRegex(out, r"status\s+active")
        key = self.server.collect(j).json()["api_key"]
        self.assertEqual(self.server.report(key, cpu_usage=12.5).status, 200)
        head = self.ok("nodes", "list").splitlines()[0].split()
        self.assertEqual(head, ["ID", "NODE_ID", "HOSTNAME", "STATUS", "HEALTH", "SCHEDULABLE", "POOL", "ROLE", "AGE"])
        row = [l for l in self.ok("nodes", "list").splitlines() if "tbl-a.example.com" in l][0].split()
        self.assertEqual(row[0], j["request_id"] if isinstance(j["request_id"], str) else str(j["request_id"]))
        self.assertTrue(row[1].startswith("node_"))
        self.assertEqual(row[3], "active")
        self.assertEqual(row[4], "online")
        self.assertEqual(row[7], "worker")
        self.assertRegex(row[8], r"^\d+[smhd]$")
        wide = self.ok("nodes", "list", "-o", "wide")
        self.assertIn("REGISTRATION", wide.splitlines()[0])
        self.assertIn("CPU%", wide.splitlines()[0])
        self.assertRegex(wide, r"tbl-a\.example\.com.*12\.5")

    def test_nodes_show_by_every_id(self):
        j = self.server.join("show-a.example.com")
        self.ok("nodes", "approve-code", j["registration_code"])
        numeric = str(j["request_id"])
        key = self.server.collect(j).json()["api_key"]
        self.server.report(key, cpu_usage=5)
        by_number = self.ok("nodes", "show", numeric)
        m = re.search(r"node_id (node_[0-9a-f]+)", by_number)
        self.assertIsNotNone(m, by_number)
        node_id = m.group(1)
        u = re.search(r"uuid ([0-9a-f-]{36})", by_number).group(1)
        self.assertRegex(by_number, r"ids\s+id %s " % numeric)
        for ref in ("show-a.example.com", node_id, u):
            out = self.ok("nodes", "show", ref)
            self.assertIn("node_id " + node_id, out, ref)
            self.assertIn("id %s " % numeric, out, ref)
            self.assertRegex(out, r"health\s+online")
            self.assertRegex(out, r"role\s+worker")
        doc = json.loads(self.ok("--json", "nodes", "show", "show-a.example.com"))
        self.assertEqual(doc["registration"]["id"], int(numeric))
        self.assertEqual(doc["management"]["node_id"], node_id)
        self.assertEqual(doc["registration"]["stats"][0]["cpu_usage"], 5)
        self.assertEqual(doc["running_tasks"], [])

    def test_nodes_show_errors(self):
        out = self.ctl("nodes", "show", "no-such-host.example.com")
        self.assertEqual(out.returncode, 1)
        self.assertIn("no node with hostname or UUID 'no-such-host.example.com'", out.stderr)
        self.assertIn("node_", out.stderr)  # says what it wants
        out = self.ctl("nodes", "show", "987654")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 404", out.stderr)
        out = self.ctl("nodes", "show", "node_ffffffffffffffff")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 404", out.stderr)
        out = self.ctl("nodes", "list", token=self.server.token("user"))
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 403", out.stderr)

    def test_nodes_create_update_and_resources(self):
        made = json.loads(self.ok("--json", "nodes", "create", "Ünïcode box", "--hostname", "made-b.example.com",
                                  "--type", "compute"))
        self.assertEqual(made["name"], "Ünïcode box")
        self.assertIn("Ünïcode box", self.ok("nodes", "list", "-o", "wide"))
        self.assertTrue(made["registration_code"])
        out = self.ok("nodes", "update", "made-b.example.com", "--status", "maintenance")
        self.assertRegex(out, r"status\s+maintenance")
        out = self.ctl("nodes", "update", "made-b.example.com", "--status", "starting")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 400", out.stderr)
        out = self.ctl("nodes", "update", "made-b.example.com")
        self.assertEqual(out.returncode, 2)
        out = self.ok("nodes", "resources", made["node_id"])
        self.assertIn("sample_count", out)
        out = self.ctl("nodes", "update", made["node_id"], "--status", "maintenance",
                       token=self.server.token("viewer"))
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 403", out.stderr)

    # ---- pools ----

    def test_pools(self):
        out = json.loads(self.ok("--json", "pools", "create", "pool-cli", "--description", "for the CLI test",
                                 "--max-nodes", "5"))
        pool_id = out["pool_id"]
        node = self.create_node("pooled.example.com")
        added = self.ok("pools", "add", pool_id, "pooled.example.com", "--priority", "70")
        self.assertRegex(added, r"node_count\s+1")
        table = self.ok("pools", "list")
        self.assertEqual(table.splitlines()[0].split(), ["POOL_ID", "NAME", "NODES", "MAX_NODES", "AGE"])
        self.assertRegex(table, r"%s\s+pool-cli\s+1\s+5" % pool_id)
        listed = self.ok("nodes", "list", "--pool", pool_id)
        self.assertIn(node["node_id"], listed)
        self.assertIn("1 node\n", listed)
        out = self.ctl("pools", "create", "pool-cli")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 409", out.stderr)
        out = self.ctl("pools", "add", "pool_doesnotexist", "pooled.example.com")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 404", out.stderr)

    # ---- tasks ----

    def test_tasks_happy_path_and_errors(self):
        out = self.ok("tasks", "submit", "echo", "--payload", '{"message": "hello"}', "--priority", "high",
                      "--timeout", "60", "--tag", "nowhere")
        m = re.match(r"task ([0-9a-f-]{36}) queued", out)
        self.assertIsNotNone(m, out)
        tid = m.group(1)
        listed = self.ok("tasks", "list", "--status", "queued")
        self.assertEqual(listed.splitlines()[0].split(), ["TASK_ID", "TYPE", "STATUS", "PRIORITY", "DEVICE",
                                                          "PROGRESS", "AGE"])
        self.assertRegex(listed, r"%s\s+echo\s+queued\s+high\s+-" % tid)
        rows = json.loads(self.ok("--json", "tasks", "list"))
        self.assertIn(tid, [t["task_id"] for t in rows])
        shown = self.ok("tasks", "show", tid)
        self.assertRegex(shown, r"payload\.message\s+hello")
        self.assertRegex(shown, r"requirements\.required_tags\s+nowhere")
        # Tables never pass a server's control characters (stored payloads
        # included) to the terminal.
        out = self.ok("tasks", "submit", "echo", "--payload", '{"message": "a\\u001b[2Jb"}', "--tag", "nowhere")
        shown = self.ok("tasks", "show", out.split()[1])
        self.assertRegex(shown, r"payload\.message\s+a\?\[2Jb")
        self.assertNotIn("\x1b", shown)
        self.ok("tasks", "cancel", out.split()[1])
        status = json.loads(self.ok("--json", "tasks", "status", tid))
        self.assertEqual(status["data"]["status"], "queued")
        # A viewer reads but may not cancel.
        out = self.ctl("tasks", "cancel", tid, token=self.server.token("viewer"))
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 403", out.stderr)
        self.assertRegex(self.ok("tasks", "cancel", tid), r"status\s+cancelled")
        self.assertRegex(self.ok("tasks", "retry", tid), r"status\s+queued")
        self.ok("tasks", "cancel", tid)
        unknown = str(uuid.uuid4())
        for sub in ("show", "status", "result", "cancel", "retry"):
            out = self.ctl("tasks", sub, unknown)
            self.assertEqual(out.returncode, 1, sub)
            self.assertIn("HTTP 404", out.stderr, sub)
        out = self.ctl("tasks", "submit", "no_such_type")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 400", out.stderr)
        self.assertIn("total", self.ok("tasks", "stats"))
        self.ok("tasks", "types")

    def test_task_watch_follows_a_real_agent(self):
        key_file = os.path.join(self.server.dir, "watch-agent.key")
        a = Agent(self.server.url, "watch-a.example.com", key_file, "--work-wait", "1", "--progress-interval", "1",
                  "--tag", "watch")
        try:
            code = a.wait_for(r"registration code ([A-Z0-9]{5})").group(1)
            self.ok("nodes", "approve-code", code)
            a.wait_for(r"device reported")
            out = self.ctl("tasks", "submit", "sleep", "--payload", '{"seconds": 2}', "--tag", "watch", "--watch",
                           "--interval", "0.3")
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            lines = out.stdout.splitlines()
            self.assertRegex(lines[0], r"^task \S+ submitted$")
            self.assertTrue(any(re.search(r"\s+running\s+\d+%\s+on node_", l) for l in lines), lines)
            self.assertTrue(any(re.search(r"\s+success\s+100%", l) for l in lines), lines)
            self.assertRegex(out.stdout, r"result_data\.slept_seconds\s+2")
            # A task that does not succeed (killed at its timeout): the watch exits 1.
            out = self.ctl("tasks", "submit", "sleep", "--payload", '{"seconds": 30}', "--timeout", "1", "--tag",
                           "watch", "--watch", "--interval", "0.3")
            self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
            self.assertRegex(out.stdout, r"\s+timeout\s+")
        finally:
            a.stop()
            a.pump.join(timeout=5)
            a.proc.stdout.close()

    def test_tasks_list_pages_past_100(self):
        for i in range(205):
            r = self.server.request("POST", "/api/v1/tasks", {"task_type": "echo", "payload": {"i": i},
                                                             "requirements": {"required_tags": ["paging"]}},
                                    token=self.admin)
            self.assertEqual(r.status, 201, r)
        rows = json.loads(self.ok("--json", "tasks", "list", "--type", "echo"))
        total = self.server.request("GET", "/api/v1/tasks?task_type=echo", token=self.admin).json()
        self.assertGreaterEqual(len(rows), 205)
        self.assertEqual(len(rows), total["pagination"]["total_items"])
        self.assertEqual(len({t["task_id"] for t in rows}), len(rows))

    # ---- devices, config, cluster, api keys ----

    def test_devices(self):
        j = self.server.join("dev-a.example.com")
        self.ok("nodes", "approve-code", j["registration_code"])
        devices = json.loads(self.ok("--json", "devices", "list"))
        dev = [d for d in devices if d["hostname"] == "dev-a.example.com"][0]
        table = self.ok("devices", "list")
        self.assertIn("DEVICE_ID", table.splitlines()[0])
        self.assertRegex(table, r"%s\s+dev-a\.example\.com\s+offline\s+worker" % dev["device_id"])
        out = self.ok("devices", "update", dev["device_id"], "--role", "compute", "--tag", "gpu", "--tag", "eu")
        self.assertRegex(out, r"role\s+compute")
        self.assertRegex(out, r"tags\s+eu,gpu")
        self.assertRegex(self.ok("devices", "show", dev["device_id"]), r"hostname\s+dev-a\.example\.com")
        self.ok("devices", "status", dev["device_id"])
        self.ok("devices", "summary")
        out = self.ctl("devices", "show", "node_ffffffffffffffff")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 404", out.stderr)
        out = self.ctl("devices", "remove", dev["device_id"], token=self.server.token("viewer"))
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 403", out.stderr)
        self.ok("devices", "remove", dev["device_id"])

    def test_config_get_set(self):
        out = self.ok("config", "set", "heartbeat", "interval=45", "max_missed=4")
        self.assertRegex(out, r"interval\s+45")
        self.assertEqual(json.loads(self.ok("--json", "config", "get", "heartbeat"))["data"]["max_missed"], 4)
        self.assertIn("heartbeat", self.ok("config", "get"))
        out = self.ctl("config", "set", "heartbeat", "interval=-5")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 400", out.stderr)
        out = self.ctl("config", "set", "heartbeat", "interval")
        self.assertEqual(out.returncode, 2)
        self.assertIn("KEY=VALUE", out.stderr)
        out = self.ctl("config", "set", "heartbeat", "interval=60", token=self.server.token("viewer"))
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 403", out.stderr)
        self.ok("config", "reset")
        self.ok("cluster", "status")
        self.ok("cluster", "health")

    def test_apikeys(self):
        out = json.loads(self.ok("--json", "apikeys", "create", "ci", "--role", "viewer"))
        key = out["data"]["api_key"]
        # The key works as --token for reads, and its role holds.
        self.assertEqual(self.ctl("devices", "list", token=key).returncode, 0)
        out = self.ctl("apikeys", "create", "again", token=key)
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 403", out.stderr)

    # ---- users ----

    def test_users(self):
        out = self.ok("--json", "users", "create", "--email", "ops-cli@example.com", "--username", "opscli",
                      "--role", "node_operator", stdin="Corr3ct-Horse-Battery\n")
        user = json.loads(out)
        self.assertEqual(user["role"], "node_operator")
        table = self.ok("users", "list")
        self.assertEqual(table.splitlines()[0].split(), ["USER_ID", "EMAIL", "USERNAME", "ROLE", "TOTP", "AGE"])
        self.assertRegex(table, r"ops-cli@example\.com\s+opscli\s+node_operator")
        self.assertRegex(self.ok("users", "update", user["user_id"], "--role", "viewer"), r"role\s+viewer")
        self.assertRegex(self.ok("users", "show", user["user_id"]), r"email\s+ops-cli@example\.com")
        out = self.ctl("users", "list", token=self.server.token("viewer"))
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 403", out.stderr)
        out = self.ctl("users", "create", "--email", "x@example.com", "--username", "xxx", stdin="")
        self.assertEqual(out.returncode, 2)
        self.assertIn("stdin", out.stderr)
        self.ok("users", "delete", user["user_id"])
        out = self.ctl("users", "show", user["user_id"])
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 404", out.stderr)
        out = self.ctl("users", "show", "not-a-uuid")
        self.assertEqual(out.returncode, 2)

    # ---- services, workflows ----

    def test_services_and_workflows(self):
        created = json.loads(self.ok("--json", "services", "create", "--type", "relay", "--name", "relay-cli",
                                     "--endpoint", "203.0.113.5:4001"))
        sid = str(created["service"]["id"])
        table = self.ok("services", "list")
        self.assertEqual(table.splitlines()[0].split(), ["ID", "NAME", "TYPE", "STATUS", "ENDPOINT", "AGE"])
        self.assertIn("relay-cli", table)
        self.assertRegex(self.ok("services", "show", sid), r"name\s+relay-cli")
        self.ok("services", "delete", sid)
        out = self.ctl("services", "show", sid)
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 404", out.stderr)
        self.assertEqual(self.ok("workflows", "list").splitlines()[0].split(), ["ID", "NAME", "AGE", "DESCRIPTION"])
        out = self.ctl("workflows", "run", "999999")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 404", out.stderr)
        out = self.ctl("workflows", "status", "999999")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 404", out.stderr)
        out = self.ctl("workflows", "executions", "abc")
        self.assertEqual(out.returncode, 2)

    def test_workflow_run_watch(self):
        r = self.server.request("POST", "/api/workflows", {"name": "wf-cli", "description": "empty"},
                                token=self.admin)
        self.assertIn(r.status, (200, 201), r)
        body = r.json()
        wid = str(body.get("id") or body.get("workflow", {}).get("id"))
        out = self.ctl("workflows", "run", wid, "--watch", "--interval", "0.2", timeout=60)
        # An empty workflow ends at once, completed or failed (nothing to run);
        # either way the watch ends and says so with its exit code.
        self.assertIn(out.returncode, (0, 1), out.stderr)
        self.assertRegex(out.stdout, r"workflow %s: execution (\d+) started" % wid)
        last = out.stdout.strip().splitlines()[-1]
        self.assertRegex(last, r"execution \d+\s+(COMPLETED|FAILED)")
        self.assertEqual(out.returncode, 0 if "COMPLETED" in last else 1)
        execs = self.ok("workflows", "executions", wid)
        self.assertEqual(execs.splitlines()[0].split(), ["EXECUTION_ID", "STATUS", "STARTED", "COMPLETED", "ERROR"])

    # ---- payouts, ledger ----

    def test_payouts_and_ledger_errors(self):
        out = self.ctl("payouts", "list", "node_ffffffffffffffff")
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 404", out.stderr)
        out = run(["--db", os.path.join(self.server.dir, "missing", "x.db"), "ledger", "verify"])
        self.assertEqual(out.returncode, 3)


if __name__ == "__main__":
    unittest.main()
