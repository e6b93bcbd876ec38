"""End to end over network-node.md: a real Ed25519 challenge login, three
standalone services written into the data directory (generate -> transform ->
count), a workflow wiring them, an execution polled to completion, and the final
output read from the last job's execution record."""
import unittest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lucidtest import ServerTestCase, ed25519_login
from test_network_auth import add_key
from test_network_services import NetworkAssertions, write_script
from test_network_workflows import job_output, wait_execution

GENERATE = """#!/usr/bin/env python3
for i in range(1, 101):
    print("item-%d" % i)
"""
TRANSFORM = """#!/usr/bin/env python3
import sys
for line in sys.stdin:
    n = int(line.strip().split("-")[1])
    if n % 3 == 0:
        print(line.strip().upper())
"""
COUNT = """#!/bin/sh
wc -l | tr -d ' '
"""


class TestThreeStepWorkflow(NetworkAssertions, ServerTestCase):
    def test_generate_transform_count(self):
        # Log in as an operator would: an admin-registered Ed25519 key signs
        # the server's challenge.
        key = Ed25519PrivateKey.generate()
        add_key(self.server, key, role="admin")
        r = ed25519_login(self.server, key)
        self.assertEqual(r.status, 200, r)
        token = r.json()["token"]
        ids = []
        for name, text in (("generate", GENERATE), ("transform", TRANSFORM), ("count", COUNT)):
            rel = write_script(self.server, "e2e/%s" % name, text)
            r = self.server.request("POST", "/api/services/standalone/from-local",
                                    {"service_name": name, "executable_path": rel, "timeout_seconds": 30}, token=token)
            self.assertEqual(r.status, 201, r)
            ids.append(r.json()["service"]["id"])
        r = self.server.request("POST", "/api/workflows", {"name": "generate-transform-count"}, token=token)
        self.assertEqual(r.status, 201, r)
        wid = r.json()["id"]
        nodes = []
        for i, sid in enumerate(ids):
            r = self.server.request("POST", "/api/workflows/%d/nodes" % wid,
                                    {"node_type": "SERVICE", "service_id": sid,
                                     "gui_props": {"position": {"x": 100 * i, "y": 0}}}, token=token)
            self.assertEqual(r.status, 201, r)
            nodes.append(r.json()["id"])
        ifaces = {sid: {i["interface_type"]: i["id"] for i in
                        self.server.request("GET", "/api/services/%d/interfaces" % sid, token=token).json()["interfaces"]}
                  for sid in ids}
        for (a, sa), (b, sb) in zip(zip(nodes, ids), zip(nodes[1:], ids[1:])):
            r = self.server.request("POST", "/api/workflows/%d/connections" % wid,
                                    {"source_node_id": a, "source_interface_id": ifaces[sa]["STDOUT"],
                                     "target_node_id": b, "target_interface_id": ifaces[sb]["STDIN"]}, token=token)
            self.assertEqual(r.status, 201, r)
        r = self.server.request("POST", "/api/workflows/%d/execute" % wid, token=token)
        self.assertEqual(r.status, 202, r)
        exec_id = r.json()["execution_id"]
        st = wait_execution(self.server, token, exec_id)
        self.assertEqual(st["status"], "COMPLETED", st)
        jobs = self.server.request("GET", "/api/workflow-executions/%d/jobs" % exec_id, token=token).json()["jobs"]
        self.assertEqual([j["node_id"] for j in jobs], nodes)
        self.assertTrue(all(j["status"] == "COMPLETED" for j in jobs), jobs)
        last = [j for j in jobs if j["node_id"] == nodes[-1]][0]
        self.assertEqual(job_output(self.server, token, last["id"]), "33\n")
        middle = [j for j in jobs if j["node_id"] == nodes[1]][0]
        self.assertTrue(job_output(self.server, token, middle["id"]).startswith("ITEM-3\nITEM-6\n"))


if __name__ == "__main__":
    unittest.main()
