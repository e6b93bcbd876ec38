"""network-node.md: Node Management, Peers, Blacklist, Relay Management, and
the agent's PUT /api/agent/network (README "Network node API")."""
import os
import platform
import unittest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lucidtest import ServerTestCase, ed25519_login
from test_network_auth import peer_id_of, pub_hex, register_node_key

CAPS = {"platform": "linux", "architecture": "x86_64", "kernel_version": "6.1.0", "cpu_model": "Test CPU",
        "cpu_cores": 8, "cpu_threads": 16, "total_memory_mb": 32768, "available_memory_mb": 1000,
        "total_disk_mb": 100000, "available_disk_mb": 5000, "has_docker": False, "docker_version": "",
        "has_python": True, "python_version": "3.11.2",
        "gpus": [{"index": 0, "name": "NVIDIA RTX 4090", "vendor": "NVIDIA", "memory_mb": 24576,
                  "uuid": "GPU-x", "driver_version": "535"}]}


def report(server, api_key, **body):
    return server.request("PUT", "/api/agent/network", body, headers={"X-API-KEY": api_key})


class ErrorAsserts:
    def assertError(self, r, status, message=None):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertIsInstance(body.get("error"), str, r)
        self.assertNotIn("success", body, r)
        if message is not None:
            self.assertEqual(body["error"], message, r)
        return body["error"]


class NodeTest(ServerTestCase, ErrorAsserts):
    def test_status(self):
        r = self.server.request("GET", "/api/node/status", token=self.admin)
        self.assertEqual(r.status, 200, r)
        s = r.json()
        self.assertTrue(s["peer_id"].startswith("12D3KooW"))
        self.assertEqual(len(s["dht_node_id"]), 40)
        self.assertGreaterEqual(s["uptime_seconds"], 0)
        self.assertIsInstance(s["known_peers"], int)
        st = s["stats"]
        self.assertEqual(st["peer_id"], s["peer_id"])
        self.assertIs(st["relay_mode"], False)
        self.assertIs(st["nat_mode"], False)
        self.assertEqual(st["connected_relay"], "")
        self.assertIsInstance(st["active_connections"], int)
        # the peer id is stable across calls (derived from the server key)
        self.assertEqual(self.server.request("GET", "/api/node/status", token=self.admin).json()["peer_id"], s["peer_id"])

    def test_capabilities_are_this_machine(self):
        r = self.server.request("GET", "/api/node/capabilities", token=self.admin)
        self.assertEqual(r.status, 200, r)
        c = r.json()
        sysc = c["system"]
        self.assertEqual(sysc["platform"], "linux")
        self.assertEqual(sysc["architecture"], platform.machine())
        self.assertEqual(sysc["kernel_version"], platform.release())
        self.assertEqual(sysc["cpu_threads"], os.cpu_count())
        self.assertGreaterEqual(sysc["cpu_threads"], sysc["cpu_cores"])
        with open("/proc/meminfo") as f:
            total_kb = int(f.readline().split()[1])
        self.assertEqual(sysc["total_memory_mb"], total_kb // 1024)
        st = os.statvfs(self.server.dir)
        self.assertAlmostEqual(sysc["total_disk_mb"], st.f_blocks * st.f_frsize // (1024 * 1024), delta=2)
        self.assertIsInstance(sysc["gpus"], list)
        self.assertIs(c["docker_available"], sysc["has_docker"])
        if not os.path.exists("/var/run/docker.sock"):
            self.assertIs(c["docker_available"], False)
        self.assertIs(sysc["has_python"], True)  # the test itself runs python3
        self.assertEqual(sysc["python_version"], platform.python_version())

    def test_auth_and_methods(self):
        for method, path in [("GET", "/api/node/status"), ("GET", "/api/node/capabilities"), ("POST", "/api/node/restart"),
                             ("GET", "/api/peers"), ("GET", "/api/blacklist"), ("GET", "/api/relay/sessions")]:
            with self.subTest(path):
                self.assertError(self.server.request(method, path), 401, "Unauthorized")
        for method, path in [("POST", "/api/node/status"), ("DELETE", "/api/node/capabilities"), ("GET", "/api/node/restart"),
                             ("POST", "/api/peers"), ("PUT", "/api/blacklist"), ("POST", "/api/blacklist/check"),
                             ("GET", "/api/relay/connect"), ("GET", "/api/agent/network")]:
            with self.subTest(method + " " + path):
                self.assertError(self.server.request(method, path, token=self.admin), 405, "Method not allowed")
        self.assertError(self.server.request("GET", "/api/node/no-such-thing", token=self.admin), 404, "Not found")
        self.assertError(self.server.request("GET", "/api/relay/nothing", token=self.admin), 404, "Not found")

    def test_restart(self):
        user = self.server.token("user")
        self.assertError(self.server.request("POST", "/api/node/restart", token=user), 403)
        challenge = self.server.request("GET", "/api/auth/challenge").json()["challenge"]
        key = Ed25519PrivateKey.generate()
        node_id, api_key = register_node_key(self.server, self.admin, "restart-node", key)
        r = self.server.request("POST", "/api/node/restart", token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"success": True, "message": "Node restart initiated successfully"})
        # outstanding challenges are dropped; everything else works on
        body = {"challenge": challenge, "signature": key.sign(bytes.fromhex(challenge)).hex(), "public_key": pub_hex(key)}
        self.assertEqual(self.server.request("POST", "/api/auth/ed25519", body).status, 401)
        self.assertEqual(ed25519_login(self.server, key).status, 200)
        self.assertEqual(self.server.report(api_key).status, 200)
        self.assertEqual(self.server.request("GET", "/api/node/status", token=self.admin).status, 200)


class PeersTest(ServerTestCase, ErrorAsserts):
    def test_peers_are_nodes_with_keys(self):
        key = Ed25519PrivateKey.generate()
        node_id, api_key = register_node_key(self.server, self.admin, "peer-1", key)
        self.server.join_and_approve("keyless", self.admin)  # no key: not a peer
        peers = self.server.request("GET", "/api/peers", token=self.admin).json()
        self.assertEqual(peers["total"], len(peers["peers"]))
        ids = [p["peer_id"] for p in peers["peers"]]
        self.assertIn(peer_id_of(key), ids)
        p = [p for p in peers["peers"] if p["peer_id"] == peer_id_of(key)][0]
        self.assertTrue(p["dht_node_id"].startswith("node_"))
        self.assertIs(p["is_relay"], False)
        self.assertIs(p["using_relay"], False)
        for field in ("is_store", "files_count", "apps_count", "last_seen", "topic", "source", "is_behind_nat",
                      "nat_type", "connected_relay_id"):
            self.assertIn(field, p)
        # no capabilities reported yet
        r = self.server.request("GET", "/api/peers/%s/capabilities" % peer_id_of(key), token=self.admin)
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json(), {"peer_id": peer_id_of(key), "error": "No system capabilities found in peer metadata"})
        # the agent reports
        r = report(self.server, api_key, is_relay=True, is_behind_nat=True, nat_type="restricted",
                   connected_relay_id="12D3KooWrelay", capabilities=CAPS, latency_ms=12)
        self.assertEqual(r.status, 200, r)
        p = [p for p in self.server.request("GET", "/api/peers", token=self.admin).json()["peers"]
             if p["peer_id"] == peer_id_of(key)][0]
        self.assertIs(p["is_relay"], True)
        self.assertIs(p["is_behind_nat"], True)
        self.assertEqual(p["nat_type"], "restricted")
        self.assertIs(p["using_relay"], True)
        self.assertEqual(p["connected_relay_id"], "12D3KooWrelay")
        self.assertIsNotNone(p["last_seen"])
        r = self.server.request("GET", "/api/peers/%s/capabilities" % peer_id_of(key), token=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"peer_id": peer_id_of(key), "capabilities": CAPS})
        status = self.server.request("GET", "/api/node/status", token=self.admin).json()
        self.assertGreaterEqual(status["known_peers"], 1)

    def test_unknown_peer(self):
        self.assertError(self.server.request("GET", "/api/peers/12D3KooWnope/capabilities", token=self.admin), 404,
                         "Peer not found")
        other = Ed25519PrivateKey.generate()
        self.assertError(self.server.request("GET", "/api/peers/%s/capabilities" % peer_id_of(other), token=self.admin), 404)
        self.assertError(self.server.request("GET", "/api/peers/%s/capabilities" % ("x" * 200), token=self.admin), 400)

    def test_agent_report_errors(self):
        key = Ed25519PrivateKey.generate()
        node_id, api_key = register_node_key(self.server, self.admin, "report-errors", key)
        r = self.server.request("PUT", "/api/agent/network", {"is_relay": True})
        self.assertError(r, 401)
        r = self.server.request("PUT", "/api/agent/network", {"is_relay": True}, headers={"X-API-KEY": "lnk_wrong"})
        self.assertError(r, 401)
        for body in [{"is_relay": "yes"}, {"latency_ms": -1}, {"latency_ms": 10 ** 9}, {"capacity": -5},
                     {"pricing_per_gb": -1}, {"capabilities": [1]}, {"endpoint": "x" * 300}, {"nat_type": 5},
                     {"relay_ingress_bytes": -1}]:
            with self.subTest(body):
                self.assertError(report(self.server, api_key, **body), 400)
        r = self.server.request("PUT", "/api/agent/network", body="{nope", headers={"X-API-KEY": api_key})
        self.assertError(r, 400, "Invalid request body")


class BlacklistTest(ServerTestCase, ErrorAsserts):
    def test_crud(self):
        r = self.server.request("POST", "/api/blacklist", {"peer_id": "12D3KooWbad", "reason": "Malicious behavior"},
                                token=self.admin)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json(), {"peer_id": "12D3KooWbad", "reason": "Malicious behavior",
                                    "message": "Peer added to blacklist successfully"})
        r = self.server.request("POST", "/api/blacklist", {"peer_id": "12D3KooWdefault"}, token=self.admin)
        self.assertEqual(r.json()["reason"], "Manually blacklisted")
        lst = self.server.request("GET", "/api/blacklist", token=self.admin).json()
        self.assertEqual(lst["total"], 2)
        self.assertEqual(sorted(lst["peer_ids"]), ["12D3KooWbad", "12D3KooWdefault"])
        e = [e for e in lst["blacklist"] if e["peer_id"] == "12D3KooWbad"][0]
        self.assertEqual(e["reason"], "Malicious behavior")
        self.assertRegex(e["blacklisted_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
        c = self.server.request("GET", "/api/blacklist/check?peer_id=12D3KooWbad", token=self.admin)
        self.assertEqual(c.json(), {"peer_id": "12D3KooWbad", "is_blacklisted": True})
        c = self.server.request("GET", "/api/blacklist/check?peer_id=12D3KooWgood", token=self.admin)
        self.assertEqual(c.json(), {"peer_id": "12D3KooWgood", "is_blacklisted": False})
        r = self.server.request("DELETE", "/api/blacklist/12D3KooWbad", token=self.admin)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        c = self.server.request("GET", "/api/blacklist/check?peer_id=12D3KooWbad", token=self.admin)
        self.assertIs(c.json()["is_blacklisted"], False)
        self.server.request("DELETE", "/api/blacklist/12D3KooWdefault", token=self.admin)

    def test_errors(self):
        self.assertError(self.server.request("POST", "/api/blacklist", {"reason": "x"}, token=self.admin), 400,
                         "Missing peer_id")
        self.assertError(self.server.request("POST", "/api/blacklist", {"peer_id": ""}, token=self.admin), 400)
        self.assertError(self.server.request("POST", "/api/blacklist", {"peer_id": "a b"}, token=self.admin), 400)
        self.assertError(self.server.request("POST", "/api/blacklist", {"peer_id": "x" * 129}, token=self.admin), 400)
        self.assertError(self.server.request("POST", "/api/blacklist", {"peer_id": "p", "reason": "r" * 600},
                                             token=self.admin), 400)
        self.assertError(self.server.request("POST", "/api/blacklist", body="{", token=self.admin,
                                             headers={"Content-Type": "application/json"}), 400, "Invalid request body")
        self.assertError(self.server.request("GET", "/api/blacklist/check", token=self.admin), 400)
        self.assertError(self.server.request("GET", "/api/blacklist/check?peer_id=", token=self.admin), 400)
        self.assertError(self.server.request("DELETE", "/api/blacklist/12D3KooWnever", token=self.admin), 404)
        user = self.server.token("viewer")
        self.assertError(self.server.request("DELETE", "/api/blacklist/x", token=user), 403)
        self.assertEqual(self.server.request("GET", "/api/blacklist", token=user).status, 200)
        self.assertError(self.server.request("GET", "/api/blacklist", token=self.server.token("user")), 403)


class RelayOffTest(ServerTestCase, ErrorAsserts):
    """Neither --relay nor --nat: every relay endpoint is the document's 403."""

    def test_modes(self):
        a = self.admin
        self.assertError(self.server.request("GET", "/api/relay/sessions", token=a), 403, "Node is not in relay mode")
        self.assertError(self.server.request("POST", "/api/relay/sessions/s1/disconnect", token=a), 403)
        self.assertError(self.server.request("POST", "/api/relay/sessions/s1/blacklist", token=a), 403)
        self.assertError(self.server.request("GET", "/api/relay/candidates", token=a), 403, "Node is not in NAT mode")
        self.assertError(self.server.request("POST", "/api/relay/connect", {"peer_id": "p"}, token=a), 403)
        self.assertError(self.server.request("POST", "/api/relay/disconnect", token=a), 403)
        self.assertError(self.server.request("POST", "/api/relay/prefer", {"peer_id": "p"}, token=a), 403)


class RelayModeTest(ServerTestCase, ErrorAsserts):
    server_args = ["--relay", "--relay-price-per-gb", "0.5"]

    def test_sessions(self):
        me = self.server.request("GET", "/api/node/status", token=self.admin).json()
        self.assertIs(me["stats"]["relay_mode"], True)
        self.assertEqual(self.server.request("GET", "/api/relay/sessions", token=self.admin).json(), [])
        keys = [Ed25519PrivateKey.generate() for _ in range(2)]
        nodes = [register_node_key(self.server, self.admin, "client-%d" % i, k) for i, k in enumerate(keys)]
        for (node_id, api_key) in nodes:
            r = report(self.server, api_key, is_behind_nat=True, connected_relay_id=me["peer_id"],
                       relay_ingress_bytes=1000000000, relay_egress_bytes=1000000000)
            self.assertEqual(r.status, 200, r)
        sessions = self.server.request("GET", "/api/relay/sessions", token=self.admin).json()
        self.assertEqual(len(sessions), 2)
        s = [s for s in sessions if s["client_peer_id"] == peer_id_of(keys[0])][0]
        self.assertTrue(s["client_node_id"].startswith("node_"))
        self.assertEqual(s["total_bytes"], 2000000000)
        self.assertAlmostEqual(s["earnings"], 1.0)
        for f in ("session_id", "session_type", "start_time", "duration_seconds", "last_keepalive"):
            self.assertIn(f, s)
        # a node that reports another relay has no session here
        r = report(self.server, nodes[1][1], connected_relay_id="12D3KooWother")
        sessions = self.server.request("GET", "/api/relay/sessions", token=self.admin).json()
        self.assertEqual([x["client_peer_id"] for x in sessions], [peer_id_of(keys[0])])

        self.assertError(self.server.request("POST", "/api/relay/sessions/nope/disconnect", token=self.admin), 404,
                         "Session not found")
        self.assertError(self.server.request("POST", "/api/relay/sessions/nope/blacklist", token=self.admin), 404)
        user = self.server.token("user")
        self.assertError(self.server.request("POST", "/api/relay/sessions/%s/disconnect" % s["session_id"], token=user), 403)
        r = self.server.request("POST", "/api/relay/sessions/%s/disconnect" % s["session_id"], token=self.admin)
        self.assertEqual(r.json(), {"success": True, "message": "Session disconnected successfully"})
        self.assertEqual(self.server.request("GET", "/api/relay/sessions", token=self.admin).json(), [])

        # the node reports again: a new session; blacklisting it refuses the node
        report(self.server, nodes[0][1], connected_relay_id=me["peer_id"])
        sid = self.server.request("GET", "/api/relay/sessions", token=self.admin).json()[0]["session_id"]
        r = self.server.request("POST", "/api/relay/sessions/%s/blacklist" % sid, token=self.admin)
        self.assertEqual(r.json(), {"success": True, "message": "Peer blacklisted and disconnected successfully"})
        lst = self.server.request("GET", "/api/blacklist", token=self.admin).json()["blacklist"]
        self.assertEqual([(e["peer_id"], e["reason"]) for e in lst],
                         [(peer_id_of(keys[0]), "Manual blacklist from relay session")])
        self.assertEqual(self.server.request("GET", "/api/relay/sessions", token=self.admin).json(), [])
        self.assertError(report(self.server, nodes[0][1], connected_relay_id=me["peer_id"]), 403)
        # NAT endpoints are 403 in relay mode
        self.assertError(self.server.request("GET", "/api/relay/candidates", token=self.admin), 403)


class NatModeTest(ServerTestCase, ErrorAsserts):
    server_args = ["--nat"]

    def test_candidates(self):
        self.assertEqual(self.server.request("GET", "/api/relay/candidates", token=self.admin).json(), [])
        fast, slow = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        n1 = register_node_key(self.server, self.admin, "relay-fast", fast)
        n2 = register_node_key(self.server, self.admin, "relay-slow", slow)
        report(self.server, n1[1], is_relay=True, endpoint="203.0.113.5:30000", latency_ms=25, pricing_per_gb=0.01,
               capacity=100)
        report(self.server, n2[1], is_relay=True, endpoint="203.0.113.6:30000", latency_ms=80)
        plain = register_node_key(self.server, self.admin, "not-relay", Ed25519PrivateKey.generate())
        report(self.server, plain[1], is_relay=False)
        c = self.server.request("GET", "/api/relay/candidates", token=self.admin).json()
        self.assertEqual([x["peer_id"] for x in c], [peer_id_of(fast), peer_id_of(slow)])  # by latency
        f = c[0]
        self.assertEqual(f["endpoint"], "203.0.113.5:30000")
        self.assertEqual(f["latency"], "25ms")
        self.assertEqual(f["latency_ms"], 25)
        self.assertEqual(f["pricing_per_gb"], 0.01)
        self.assertEqual(f["capacity"], 100)
        self.assertIs(f["is_available"], True)
        self.assertEqual(f["unavailable_msg"], "")
        self.assertIs(f["is_connected"], False)
        self.assertIs(f["is_preferred"], False)
        self.assertTrue(f["node_id"].startswith("node_"))

        r = self.server.request("POST", "/api/relay/prefer", {"peer_id": peer_id_of(slow)}, token=self.admin)
        self.assertEqual(r.json(), {"success": True, "message": "Preferred relay set successfully"})
        c = self.server.request("GET", "/api/relay/candidates", token=self.admin).json()
        self.assertEqual([x["is_preferred"] for x in c], [False, True])

        self.assertError(self.server.request("POST", "/api/relay/prefer", {"peer_id": "12D3KooWnope"}, token=self.admin), 404)
        self.assertError(self.server.request("POST", "/api/relay/prefer", {}, token=self.admin), 400, "Missing peer_id")
        self.assertError(self.server.request("POST", "/api/relay/connect", {}, token=self.admin), 400)
        # NAT traversal is not performed: connect/disconnect are 503, never a fake success
        self.assertError(self.server.request("POST", "/api/relay/connect", {"peer_id": peer_id_of(fast)}, token=self.admin), 503)
        self.assertError(self.server.request("POST", "/api/relay/disconnect", token=self.admin), 503)
        # a stale relay is listed but unavailable
        self.server.advance_clock(400, self.admin)
        c = self.server.request("GET", "/api/relay/candidates", token=self.admin).json()
        self.assertIs(c[0]["is_available"], False)
        self.assertNotEqual(c[0]["unavailable_msg"], "")
        self.assertError(self.server.request("GET", "/api/relay/sessions", token=self.admin), 403)


if __name__ == "__main__":
    unittest.main()
