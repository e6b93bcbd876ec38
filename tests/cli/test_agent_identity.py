"""lucidctl agent, network-node part: it creates an Ed25519 key pair (0600),
registers the public key with its node API key, reports its capabilities and
relay role, and can then log in with the challenge login; lucidctl keys."""
import json
import os
import stat
import subprocess
import unittest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lucidtest import CTL_BIN, Server
from test_agent import Agent


class AgentIdentityTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(["--nat"]).start()
        self.admin = self.server.token()
        self.key_file = os.path.join(self.server.dir, "agent", "node.key")
        self.agent = None

    def tearDown(self):
        if self.agent:
            if self.agent.proc.poll() is None:
                self.agent.proc.kill()
            self.agent.proc.wait()
            self.agent.pump.join(timeout=5)
            self.agent.proc.stdout.close()
        self.assertEqual(self.server.stop(), 0, self.server.read_log()[-3000:])
        self.server.cleanup()

    def test_identity_registered_and_reported(self):
        self.agent = Agent(self.server.url, "relay-1.example.com", self.key_file, "--max-reports", "1",
                           "--relay", "--endpoint", "203.0.113.5:30000")
        code = self.agent.wait_for(r"registration code (\S+) \(give").group(1)
        r = self.server.request("POST", "/api/v1/nodes/register-by-code", {"code": code}, token=self.admin)
        self.assertEqual(r.status, 200, r)
        m = self.agent.wait_for(r"identity key .* registered; peer id (\S+)")
        peer_id = m.group(1)
        self.assertEqual(self.agent.proc.wait(timeout=30), 0)
        ident = self.key_file + ".ed25519"
        self.assertEqual(stat.S_IMODE(os.stat(ident).st_mode), 0o600)
        with open(ident) as f:
            secret = bytes.fromhex(f.read().strip().split(":", 1)[1])
        key = Ed25519PrivateKey.from_private_bytes(secret[:32])

        peers = self.server.request("GET", "/api/peers", token=self.admin).json()
        mine = [p for p in peers["peers"] if p["peer_id"] == peer_id]
        self.assertEqual(len(mine), 1, peers)
        self.assertTrue(mine[0]["is_relay"])
        caps = self.server.request("GET", "/api/peers/%s/capabilities" % peer_id, token=self.admin)
        self.assertEqual(caps.status, 200, caps)
        self.assertEqual(caps.json()["capabilities"]["cpu_threads"], os.cpu_count())
        cands = self.server.request("GET", "/api/relay/candidates", token=self.admin).json()
        cand = [c for c in cands if c["peer_id"] == peer_id][0]
        self.assertEqual(cand["endpoint"], "203.0.113.5:30000")
        self.assertTrue(cand["is_available"])
        self.assertGreaterEqual(cand["latency_ms"], 0)

        # the agent's key logs in (challenge login) as its node, not as an operator
        from lucidtest import ed25519_login
        r = ed25519_login(self.server, key)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["peer_id"], peer_id)
        self.assertEqual(r.json()["role"], "node")

        # a second run reuses the same identity
        self.agent.proc.stdout.close()
        self.agent = Agent(self.server.url, "relay-1.example.com", self.key_file, "--max-reports", "1")
        m2 = self.agent.wait_for(r"identity key .* registered; peer id (\S+)")
        self.assertEqual(m2.group(1), peer_id)
        self.assertEqual(self.agent.proc.wait(timeout=30), 0)

    def test_identity_file_too_open(self):
        os.makedirs(os.path.dirname(self.key_file), exist_ok=True)
        ident = self.key_file + ".ed25519"
        with open(ident, "w") as f:
            f.write("ed25519-secret-key:" + "00" * 64 + "\n")
        os.chmod(ident, 0o644)
        node_id, api_key = self.server.join_and_approve("loose.example.com", self.admin)
        with open(os.open(self.key_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(api_key + "\n")
        self.agent = Agent(self.server.url, "loose.example.com", self.key_file, "--max-reports", "1")
        self.agent.wait_for(r"identity key: .*0600")
        # stats reporting goes on without an identity
        self.agent.wait_for(r"agent: reported")
        self.assertEqual(self.agent.proc.wait(timeout=30), 0)


if __name__ == "__main__":
    unittest.main()
