"""Issue 16: the console's page timings with 10,000 nodes and 100,000 tasks.

The database is filled through the library (the Python binding over the C
ABI: joins approved, a stats report each, tasks submitted) before
lucid-server starts on it; console_perf.mjs then opens every page in
headless Chromium and records time to first render and to interactive.
The figures are printed, never asserted (a shared machine); what is asserted
is that every page became interactive and the fleet's far end loads.
Exit 77 (SKIPPED) with the reason when a requirement is missing."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from console_common import ROOT, Skip, main, requirements
from lucidtest import Server

NODES = int(os.environ.get("LUCID_PERF_NODES", "10000"))
TASKS = int(os.environ.get("LUCID_PERF_TASKS", "100000"))


def seed(db):
    bin_dir = os.environ.get("LUCID_BIN_DIR", os.path.join(ROOT, "build", "bin"))
    lib = os.path.join(os.path.dirname(bin_dir), "lib", "liblucidnode.so.0")
    if not os.path.exists(lib):
        raise Skip("liblucidnode.so.0 not built (%s)" % lib)
    os.environ["LUCIDNODE_LIBRARY"] = lib
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    import lucidnode
    t0 = time.time()
    with lucidnode.Cluster(db) as c:
        for i in range(NODES):
            j = c.join("perf-%05d.example" % i, ip_address="10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255))
            node = c.approve(int(j["request_id"]))
            c.report_stats(int(node["id"]), cpu_usage=float(i % 100), disk_usage=float((i * 7) % 100))
        t1 = time.time()
        for i in range(TASKS):
            c.submit_task("echo", {"i": i}, priority=("low", "normal", "high", "urgent")[i % 4])
        t2 = time.time()
    return t1 - t0, t2 - t1


class ConsolePerfTest(unittest.TestCase):
    def test_page_timings(self):
        req = requirements()
        server = Server(["--ui-dir", req["ui_assets"], "--rate-admin", "1000000"])
        work = tempfile.mkdtemp(prefix="lucid-console-perf-")
        try:
            nodes_s, tasks_s = seed(server.db)
            print("seeded %d nodes in %.1f s, %d tasks in %.1f s (library)" % (NODES, nodes_s, TASKS, tasks_s))
            server.start(timeout=120)
            token = server.token("super_admin", sub="admin")
            r = server.request("GET", "/api/v1/nodes?page=1&limit=1", token=token)
            self.assertEqual(r.json()["pagination"]["total"], NODES)
            node_id = r.json()["nodes"][0]["node_id"]
            pages = [["fleet", "/ui/fleet"], ["node", "/ui/nodes/" + node_id], ["work", "/ui/work"],
                     ["workflows", "/ui/workflows"], ["money", "/ui/money"], ["admin", "/ui/admin"], ["signin", "/ui/signin"]]
            cfg = {"url": server.url, "token": token, "pages": pages, "nodes": NODES, "chromium": req["chromium"], "ui_dir": req["ui_dir"],
                   "artifacts": req["artifacts"], "profile": os.path.join(work, "chromium"), "no_sandbox": os.geteuid() == 0}
            os.makedirs(req["artifacts"], exist_ok=True)
            proc = subprocess.run([req["node"], os.path.join(os.path.dirname(__file__), "console_perf.mjs")],
                                  capture_output=True, text=True, timeout=600, env=dict(os.environ, LUCID_E2E=json.dumps(cfg)))
            lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
            self.assertTrue(lines, "no result:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-3000:]))
            out = json.loads(lines[-1])
            self.assertTrue(out["ok"], out)
            with open("/proc/loadavg") as f:
                load = f.read().split()[:3]
            print("console page timings, %d nodes, %d tasks (load average %s, %d CPUs):" % (NODES, TASKS, " ".join(load), os.cpu_count()))
            print("  %-10s %16s %16s %8s" % ("page", "first render ms", "interactive ms", "rows"))
            for p in out["pages"]:
                print("  %-10s %16.0f %16.0f %8d" % (p["page"], p["first_render_ms"], p["interactive_ms"], p["rows"]))
                self.assertIsNotNone(p["interactive_ms"], p)
            print("  fleet: the live stream's first event on screen at %d ms" % out["fleet_live_ms"])
            print("  fleet scrolled to its last node (%d): %d ms" % (NODES, out["scroll_to_end_ms"]))
            with open(os.path.join(req["artifacts"], "perf.json"), "w") as f:
                json.dump(out, f, indent=2)
        finally:
            rc = server.stop()
            server.cleanup()
            shutil.rmtree(work, ignore_errors=True)
        self.assertIn(rc, (0, None))


if __name__ == "__main__":
    main(ConsolePerfTest)
