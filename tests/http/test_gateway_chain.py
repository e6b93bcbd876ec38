"""api-gateway.md: /chain/info, /chain/blocks (filters, pagination),
/chain/blocks/{block_id}, POST /chain/transactions (202), over the same
ledger payouts write; the blockchain-queries rate tier."""
import hashlib
import time
import unittest
import uuid

from lucidtest import ServerTestCase
from test_gateway_sessions import GatewayCase
from test_mgmt_nodes import mgmt_create
from test_payouts import tron_address

API = "/api/v1"
HEX64 = "0123456789abcdef"


def root_over_leaf_hashes(hashes):
    """docs/merkle.md MTH where the inputs are already leaf hashes (the ledger's tx hashes)."""
    def mth(items):
        n = len(items)
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return items[0]
        k = 1
        while k * 2 < n:
            k *= 2
        return hashlib.sha256(b"\x01" + mth(items[:k]) + mth(items[k:])).digest()
    return mth([bytes.fromhex(h) for h in hashes]).hex()


class Chain(GatewayCase):
    server_args = ["--block-time", "1", "--payout-interval-ms", "10"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.uid, cls.tok = str(uuid.uuid4()), None
        cls.tok = cls.server.token("user", sub=cls.uid)

    def submit(self, body, token=None):
        return self.server.request("POST", API + "/chain/transactions", body, token=token or self.tok)

    def wait_confirmed(self, tx_id, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = self.server.request("GET", API + "/chain/blocks?limit=100", token=self.tok)
            self.assertEqual(r.status, 200, r)
            for b in r.json()["blocks"]:
                for t in b["transactions"]:
                    if t["transaction_id"] == tx_id:
                        return b
            time.sleep(0.1)
        self.fail("transaction %s was not sealed" % tx_id)

    def test_info(self):
        r = self.server.request("GET", API + "/chain/info", token=self.tok)
        self.assertEqual(r.status, 200, r)
        i = r.json()
        self.assertEqual(i["network_name"], "lucid_blocks")
        self.assertEqual(i["consensus_algorithm"], "PoOT")
        self.assertEqual(i["block_time"], 1)
        self.assertGreaterEqual(i["current_height"], 0)
        g = self.server.request("GET", API + "/chain/blocks?height=0", token=self.tok).json()["blocks"][0]
        self.assertEqual(i["genesis_block"], g["hash"])
        self.assertEqual(g["previous_hash"], "0" * 64)
        self.assertEqual(g["merkle_root"], hashlib.sha256(b"").hexdigest())
        r = self.server.request("GET", API + "/chain/info")
        self.assertError(r, 401, "LUCID_ERR_2003")

    def test_submit_seal_and_read(self):
        r = self.submit({"type": "session_anchor", "data": {"session_id": str(uuid.uuid4()), "root": "ab" * 32},
                         "signature": "sig"})
        self.assertEqual(r.status, 202, r)
        t = r.json()
        self.assertEqual(t["status"], "pending")
        self.assertIsNone(t["confirmed_at"])
        self.assertEqual(len(t["transaction_id"]), 64)
        self.assertIn("submitted_at", t)
        b = self.wait_confirmed(t["transaction_id"])
        self.assertGreaterEqual(b["height"], 1)
        self.assertEqual(b["block_id"], b["hash"])
        tx = [x for x in b["transactions"] if x["transaction_id"] == t["transaction_id"]][0]
        self.assertEqual((tx["type"], tx["status"]), ("session_anchor", "confirmed"))
        # by height and by hash: the full block; its root recomputed from its tx hashes
        for ident in (str(b["height"]), b["hash"], b["hash"].upper()):
            r = self.server.request("GET", API + "/chain/blocks/" + ident, token=self.tok)
            self.assertEqual(r.status, 200, r)
            full = r.json()
            self.assertEqual(full["hash"], b["hash"])
            self.assertEqual(len(full["transactions"]), full["tx_count"])
            self.assertEqual(full["merkle_root"],
                             root_over_leaf_hashes([x["transaction_id"] for x in full["transactions"]]))
        prev = self.server.request("GET", API + "/chain/blocks/%d" % (b["height"] - 1), token=self.tok).json()
        self.assertEqual(b["previous_hash"], prev["hash"])

    def test_submit_validation_and_roles(self):
        r = self.submit({"data": {}})
        self.assertError(r, 400, "LUCID_ERR_1002", "type")
        r = self.submit({"type": "mint", "data": {}})
        self.assertError(r, 400, "LUCID_ERR_1003", "type")
        r = self.submit({"type": "session_anchor"})
        self.assertError(r, 400, "LUCID_ERR_1002", "data")
        r = self.submit({"type": "session_anchor", "data": [1]})
        self.assertError(r, 400, "LUCID_ERR_1003", "data")
        r = self.submit({"type": "session_anchor", "data": {}, "signature": 7})
        self.assertError(r, 400, "LUCID_ERR_1003", "signature")
        r = self.server.request("POST", API + "/chain/transactions", body="{", token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1009")
        for kind in ("payout", "governance"):
            r = self.submit({"type": kind, "data": {"x": 1}})
            self.assertError(r, 403, "LUCID_ERR_2004")
            r = self.submit({"type": kind, "data": {"x": 1}}, token=self.admin)
            self.assertEqual(r.status, 202, r)
        r = self.server.request("POST", API + "/chain/transactions", {"type": "session_anchor", "data": {}})
        self.assertError(r, 401, "LUCID_ERR_2003")

    def test_filters_and_pagination(self):
        for i in range(3):
            t = self.submit({"type": "session_anchor", "data": {"i": i}}).json()
            self.wait_confirmed(t["transaction_id"])
        info = self.server.request("GET", API + "/chain/info", token=self.tok).json()
        h = info["current_height"]
        self.assertGreaterEqual(h, 3)
        r = self.server.request("GET", API + "/chain/blocks?limit=2", token=self.tok)
        body = r.json()
        self.assertEqual([b["height"] for b in body["blocks"]], [h, h - 1])
        self.assertEqual(body["pagination"]["total"], h + 1)
        self.assertEqual(body["pagination"]["pages"], (h + 2) // 2)
        r = self.server.request("GET", API + "/chain/blocks?limit=2&page=2", token=self.tok)
        self.assertEqual([b["height"] for b in r.json()["blocks"]], [h - 2, h - 3])
        one = self.server.request("GET", API + "/chain/blocks?height=1", token=self.tok).json()
        self.assertEqual([b["height"] for b in one["blocks"]], [1])
        self.assertEqual(one["pagination"]["total"], 1)
        by_hash = self.server.request("GET", API + "/chain/blocks?hash=" + one["blocks"][0]["hash"], token=self.tok)
        self.assertEqual([b["height"] for b in by_hash.json()["blocks"]], [1])
        both = self.server.request("GET", API + "/chain/blocks?height=2&hash=" + one["blocks"][0]["hash"],
                                   token=self.tok).json()
        self.assertEqual((both["blocks"], both["pagination"]["total"]), ([], 0))
        none = self.server.request("GET", API + "/chain/blocks?height=99999", token=self.tok).json()
        self.assertEqual((none["blocks"], none["pagination"]["total"]), ([], 0))
        none = self.server.request("GET", API + "/chain/blocks?hash=" + "0" * 64, token=self.tok).json()
        self.assertEqual(none["blocks"], [])
        for q, field in (("height=-1", "height"), ("height=x", "height"), ("hash=zz", "hash"),
                         ("limit=0", "limit"), ("limit=101", "limit"), ("page=0", "page")):
            r = self.server.request("GET", API + "/chain/blocks?" + q, token=self.tok)
            self.assertEqual(r.status, 400, (q, r))
            self.assertEqual(r.json()["error"]["details"]["field"], field, r)
        r = self.server.request("GET", API + "/chain/blocks")
        self.assertError(r, 401, "LUCID_ERR_2003")

    def test_block_not_found(self):
        for ident in ("99999", "0" * 64, "nope", "-1"):
            r = self.server.request("GET", API + "/chain/blocks/" + ident, token=self.tok)
            self.assertError(r, 404, "LUCID_ERR_4001")
        r = self.server.request("GET", API + "/chain/blocks/0")
        self.assertError(r, 401, "LUCID_ERR_2003")

    def test_payouts_are_on_the_same_chain(self):
        node = mgmt_create(self.server, self.admin, {"name": "chain-payee"})["node_id"]
        r = self.server.request("POST", API + "/nodes/payouts/batch", {"payout_requests": [
            {"node_id": node, "amount": 2, "wallet_address": tron_address("chain")}]}, token=self.admin)
        self.assertEqual(r.status, 202, r)
        deadline = time.time() + 15
        tx = None
        while time.time() < deadline and not tx:
            p = self.server.request("GET", API + "/nodes/%s/payouts" % node, token=self.admin).json()["payouts"][0]
            tx = p["transaction_hash"]
            time.sleep(0.05)
        self.assertTrue(tx)
        b = self.wait_confirmed(tx)
        self.assertIn("payout", [t["type"] for t in b["transactions"] if t["transaction_id"] == tx])


class ChainRateLimit(GatewayCase):
    server_args = ["--rate-gateway-chain", "2", "--rate-gateway-chain-burst", "2"]

    def test_blockchain_query_tier(self):
        tok = self.server.token("user", sub=str(uuid.uuid4()))
        for _ in range(2):
            r = self.server.request("GET", API + "/chain/blocks", token=tok)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.headers["x-ratelimit-limit"], "2")
        r = self.server.request("GET", API + "/chain/blocks/0", token=tok)
        self.assertError(r, 429, "LUCID_ERR_3001")
        self.assertIn("retry-after", r.headers)
        # /chain/info is in the authenticated tier, not the blockchain one
        r = self.server.request("GET", API + "/chain/info", token=tok)
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    unittest.main()
