"""Issue 16: the web console in headless Chromium against a live
lucid-server and a real `lucidctl agent` (console_e2e.mjs drives the page
through puppeteer-core): sign in with the admin token, see the agent
pending, approve it by its code, see it online with live stats, open its
node page (chart, cordon/uncordon, storage empty states), another node's
quota, sites and backups and a quota update (a validation error first),
submit an echo task and read its result, run a two-job workflow and see its
output, verify the ledger, the admin page (a runtime setting, adding an admin
user), keyboard navigation and sign-out; then that user signs in with the
code mailed to the server's outbox (a wrong code first), sees the node's
storage without the super admin's quota form, and signs out. Screenshots of each page go to
<build>/test-artifacts/ui/. Exit 77 (SKIPPED) with the reason when
Chromium, Node.js, puppeteer-core or the built console is missing."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from console_common import main, requirements
from lucidtest import CTL_BIN, Server

GIB = 1 << 30
from test_network_services import standalone, write_script


class ConsoleBrowserTest(unittest.TestCase):
    def test_operator_flow(self):
        req = requirements()
        server = Server(["--ui-dir", req["ui_assets"]]).start()
        work = tempfile.mkdtemp(prefix="lucid-console-e2e-")
        agent = None
        try:
            admin = server.token("super_admin", sub="admin")
            # A two-job workflow (producer | consumer), made through the API;
            # the console executes it and shows its output.
            p = standalone(server, admin, "producer", write_script(server, "bin/producer", "#!/bin/sh\necho from-the-producer\n"))
            c = standalone(server, admin, "consumer", write_script(server, "bin/consumer", "#!/bin/sh\ntr a-z A-Z\n"))
            r = server.request("POST", "/api/workflows", {"name": "console-two-jobs", "description": "producer | consumer"}, token=admin)
            self.assertEqual(r.status, 201, r)
            wid = r.json()["id"]
            ids = []
            for sid in (p, c):
                r = server.request("POST", "/api/workflows/%d/nodes" % wid, {"service_id": sid}, token=admin)
                self.assertEqual(r.status, 201, r)
                ids.append(r.json()["id"])
            r = server.request("POST", "/api/workflows/%d/connections" % wid, {"source_node_id": ids[0], "target_node_id": ids[1]}, token=admin)
            self.assertEqual(r.status, 201, r)

            # A node whose agent (this test, through the Agent API) reported
            # sites, one over its own quota, and backups: its node page shows them.
            storage_host = "console-storage-1"
            storage_id, key = server.join_and_approve(storage_host, admin)
            self.assertEqual(server.report(key).status, 200)
            sites = [{"site_name": "shop.example", "used_bytes": 3 * GIB, "quota_gb": 2},
                     {"site_name": "blog.example", "used_bytes": GIB, "quota_gb": 10}]
            r = server.request("POST", "/api/v1/stats/sites", {"sites": sites}, headers={"X-API-KEY": key})
            self.assertEqual(r.status, 200, r)
            backups = ["shop.example_20261201_0300.tar.zst", "blog.example_20261201_0310.tar.zst"]
            for name in backups:
                r = server.request("POST", "/api/v1/stats/backups", {"site_name": name.split("_")[0], "filename": name,
                                                                     "size_bytes": GIB // 2, "status": "SUCCESS"},
                                   headers={"X-API-KEY": key})
                self.assertEqual(r.status, 201, r)

            # A real agent: it joins and prints its registration code.
            hostname = "console-agent-1"
            agent_log = open(os.path.join(work, "agent.log"), "wb")
            agent = subprocess.Popen([CTL_BIN, "--server", server.url, "agent", "--hostname", hostname,
                                      "--key-file", os.path.join(work, "agent.key"), "--interval", "1", "--poll", "1",
                                      "--work-wait", "2", "--verbose"],
                                     stdout=agent_log, stderr=subprocess.STDOUT)
            code = None
            deadline = time.time() + 30
            while time.time() < deadline and not code:
                with open(os.path.join(work, "agent.log"), "rb") as f:
                    m = re.search(rb"code[^A-Za-z0-9]*([A-Z0-9]{4,12})\b", f.read())
                if m:
                    code = m.group(1).decode()
                time.sleep(0.2)
            with open(os.path.join(work, "agent.log"), "rb") as f:
                self.assertTrue(code, "the agent printed no code: %r" % f.read()[-2000:])

            cfg = {"url": server.url, "token": admin, "code": code, "agent_hostname": hostname, "workflow_id": wid,
                   "expected_output": "FROM-THE-PRODUCER", "echo": "hello-from-the-console-%d" % os.getpid(),
                   "chromium": req["chromium"], "ui_dir": req["ui_dir"], "artifacts": req["artifacts"],
                   "profile": os.path.join(work, "chromium"), "no_sandbox": os.geteuid() == 0,
                   "storage_hostname": storage_host, "storage_sites": [x["site_name"] for x in sites],
                   "over_quota_site": "shop.example", "storage_backups": backups, "new_quota": 2.5,
                   "outbox_dir": server.outbox_dir, "user_email": "console-admin-%d@example.com" % os.getpid(),
                   "user_name": "console-admin-%d" % os.getpid()}
            env = dict(os.environ, LUCID_E2E=json.dumps(cfg))
            proc = subprocess.run([req["node"], os.path.join(os.path.dirname(__file__), "console_e2e.mjs")],
                                  capture_output=True, text=True, timeout=400, env=env)
            lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
            self.assertTrue(lines, "no result from the browser script:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-3000:]))
            out = json.loads(lines[-1])
            for s in out["steps"]:
                print("  %-45s %6d ms%s" % (s["name"], s["ms"], ("  FAILED: " + s["error"]) if "error" in s else ""))
            self.assertTrue(out["ok"], "browser flow failed: %s\nconsole errors: %s\npage: %s\nstderr: %s" % (
                out.get("error"), out.get("console_errors"), out.get("page_text"), proc.stderr[-2000:]))
            self.assertEqual(proc.returncode, 0)

            # Sign-out revoked the console's token on the server, not just in the tab.
            self.assertEqual(server.request("GET", "/api/v1/auth/status", token=admin).status, 401)
            # What the page showed is what the API holds.
            admin = server.token("super_admin")
            r = server.request("GET", "/api/v1/tasks/%s/result" % out["task_id"], token=admin)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["data"]["status"], "success")
            self.assertEqual(r.json()["data"]["result_data"], {"echo": {"message": cfg["echo"]}})
            self.assertIn("FROM-THE-PRODUCER", out["workflow_output"])
            self.assertRegex(out["verify"], r"^Intact: \d+ blocks")
            r = server.request("GET", "/api/v1/config/heartbeat", token=admin)
            self.assertEqual(r.json()["data"]["interval"], 61, r)
            nodes = server.request("GET", "/api/v1/nodes/?status=active", token=admin).json()
            self.assertIn(hostname, [n["hostname"] for n in nodes])
            # The quota the super admin set in the form, read through the API.
            q = server.request("GET", "/api/v1/nodes/%d/quota/status" % storage_id, token=admin).json()
            self.assertEqual((q["quota_gb"], q["is_over_quota"]), (2.5, True), q)
            self.assertEqual(out["storage_node"], "/ui/nodes/" + next(
                n["node_id"] for n in server.request("GET", "/api/v1/nodes?limit=100", token=admin).json()["nodes"]
                if n["id"] == storage_id))
            # The user the admin page added, an admin, signed in by the mailed
            # code; the second sign-out revoked that session too.
            users = server.request("GET", "/api/v1/users?limit=100", token=admin).json()["users"]
            self.assertIn((cfg["user_email"], "admin"), [(u["email"], u["role"]) for u in users])
            self.assertEqual(server.request("GET", "/api/v1/auth/status", token=out["email_token"]).status, 401)
            for name in ("signin", "fleet", "node", "node-storage", "work", "workflows", "money", "admin", "signin-email"):
                self.assertTrue(os.path.getsize(os.path.join(req["artifacts"], name + ".png")) > 1000, name)
            print("screenshots: %s" % req["artifacts"])
        finally:
            if agent and agent.poll() is None:
                agent.terminate()
                try:
                    agent.wait(10)
                except subprocess.TimeoutExpired:
                    agent.kill()
                    agent.wait()
            rc = server.stop()
            server.cleanup()
            shutil.rmtree(work, ignore_errors=True)
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    main(ConsoleBrowserTest)
