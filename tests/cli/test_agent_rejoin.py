"""Issue 15: a real `lucidctl agent` after its node is removed
(DELETE /api/v1/nodes/{node_id}): its key is refused (exit 4), and with the
key file gone it joins again under the same hostname, is approved and reports."""
import os
import unittest

from lucidtest import Server
from test_agent import Agent


class AgentRejoinAfterRemoval(unittest.TestCase):
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

    def agent(self, hostname):
        a = Agent(self.server.url, hostname, self.key_file)
        self.agents.append(a)
        return a

    def approve(self, code):
        r = self.server.request("POST", "/api/v1/nodes/register-by-code?code=" + code, token=self.admin)
        self.assertEqual(r.status, 200, r)

    def uid_of(self, hostname):
        r = self.server.request("GET", "/api/v1/nodes?limit=100", token=self.admin)
        self.assertEqual(r.status, 200, r)
        return [n["node_id"] for n in r.json()["nodes"] if n["hostname"] == hostname]

    def test_removed_node_agent_rejoins(self):
        host = "rejoin-1.example.com"
        a = self.agent(host)
        self.approve(a.wait_for(r"registration code ([A-Z0-9]{5})").group(1))
        a.wait_for(r"reported cpu=")
        [uid] = self.uid_of(host)

        r = self.server.request("DELETE", "/api/v1/nodes/" + uid, token=self.admin)
        self.assertEqual(r.status, 204, r)
        a.wait_for(r"rejected our API key")
        self.assertEqual(a.proc.wait(timeout=20), 4)
        self.assertEqual(self.uid_of(host), [])

        # The operator removes the stale key file; the agent joins again.
        os.unlink(self.key_file)
        b = self.agent(host)
        code = b.wait_for(r"registration code ([A-Z0-9]{5})").group(1)
        self.approve(code)
        b.wait_for(r"approved; API key saved")
        b.wait_for(r"reported cpu=")
        [new_uid] = self.uid_of(host)
        self.assertNotEqual(new_uid, uid)
        self.assertEqual(b.stop(), 0)


if __name__ == "__main__":
    unittest.main()
