"""api-gateway.md: wallets (USDT/TRX on TRON) and their transactions.
Balances come from the ledger's records (completed payouts to the address,
transfers in and out), never go negative, and transfers are atomic."""
import decimal
import hashlib
import json
import os
import threading
import time
import unittest
import uuid

from lucidtest import Server, db_rows
from test_gateway_sessions import GatewayCase
from test_mgmt_nodes import mgmt_create
from test_payouts import BAD_WALLET, tron_address

API = "/api/v1"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
WALLET_KEY = "42" * 32


def is_tron(addr):
    n = 0
    for ch in addr:
        n = n * 58 + B58.index(ch)
    raw = n.to_bytes(25, "big")
    return addr[0] == "T" and raw[0] == 0x41 and hashlib.sha256(hashlib.sha256(raw[:21]).digest()).digest()[:4] == raw[21:]


def exact(r):
    return json.loads(r.body, parse_float=decimal.Decimal, parse_int=decimal.Decimal)


class WalletCase(GatewayCase):
    server_args = ["--block-time", "1"]

    @classmethod
    def setUpClass(cls):
        os.environ["LUCID_WALLET_KEY"] = WALLET_KEY
        try:
            super().setUpClass()
        finally:
            del os.environ["LUCID_WALLET_KEY"]
        cls.node = mgmt_create(cls.server, cls.admin, {"name": "wallet-funder"})["node_id"]

    def wallet(self, token, currency="USDT", **extra):
        body = {"name": "w", "currency": currency}
        body.update(extra)
        r = self.server.request("POST", API + "/wallets", body, token=token)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def fund(self, address, amount):
        """A completed payout of `amount` USDT to `address` (the way money enters)."""
        r = self.server.request("POST", API + "/nodes/payouts/batch", {"payout_requests": [
            {"node_id": self.node, "amount": amount, "wallet_address": address}]}, token=self.admin)
        self.assertEqual(r.status, 202, r)
        batch = r.json()["batch_id"]
        deadline = time.time() + 15
        while time.time() < deadline:
            b = self.server.request("GET", API + "/nodes/%s/payouts?limit=100" % self.node, token=self.admin).json()
            mine = [p for p in b["payouts"] if p["batch_id"] == batch]
            if mine and mine[0]["status"] == "completed":
                return
            time.sleep(0.05)
        self.fail("payout did not complete")

    def balance(self, wallet_id, token):
        r = self.server.request("GET", API + "/wallets/" + wallet_id, token=token)
        self.assertEqual(r.status, 200, r)
        return exact(r)["balance"]

    def send(self, wallet_id, token, amount, recipient, **extra):
        """amount: a number, or a str holding the exact JSON number text."""
        body = {"type": "transfer", "amount": "@AMOUNT@", "recipient": recipient}
        body.update(extra)
        raw = json.dumps(body).replace('"@AMOUNT@"', amount if isinstance(amount, str) else json.dumps(amount))
        return self.server.request("POST", API + "/wallets/%s/transactions" % wallet_id, body=raw, token=token,
                                   headers={"Content-Type": "application/json"})


class Wallets(WalletCase):
    def setUp(self):
        self.uid, self.tok = self.user()

    def test_generated_wallet(self):
        w = self.wallet(self.tok, name="main")
        self.assertTrue(is_tron(w["address"]), w)
        self.assertEqual((w["user_id"], w["name"], w["currency"], w["network"], w["balance"], w["custodial"]),
                         (self.uid, "main", "USDT", "TRON", 0, True))
        uuid.UUID(w["wallet_id"])
        (sealed,) = db_rows(self.server.db, "SELECT sealed_key FROM gw_wallets WHERE uid = ?", (w["wallet_id"],))[0]
        self.assertEqual(len(sealed), 24 + 16 + 32)  # nonce, MAC, encrypted 32-byte key: never in clear
        w2 = self.wallet(self.tok, currency="TRX")
        self.assertNotEqual(w2["address"], w["address"])

    def test_registered_wallet_and_validation(self):
        addr = tron_address("reg-" + self.uid)
        w = self.wallet(self.tok, address=addr)
        self.assertEqual((w["address"], w["custodial"]), (addr, False))
        r = self.server.request("POST", API + "/wallets", {"name": "w", "currency": "USDT", "address": addr}, token=self.tok)
        self.assertError(r, 409, "LUCID_ERR_4002", "address")
        self.assertEqual(self.wallet(self.tok, currency="TRX", address=addr)["address"], addr)
        for body, code, field in (
                ({"currency": "USDT"}, "LUCID_ERR_1002", "name"),
                ({"name": "w"}, "LUCID_ERR_1002", "currency"),
                ({"name": "", "currency": "USDT"}, "LUCID_ERR_1003", "name"),
                ({"name": "x" * 256, "currency": "USDT"}, "LUCID_ERR_1003", "name"),
                ({"name": "w", "currency": "BTC"}, "LUCID_ERR_1003", "currency"),
                ({"name": "w", "currency": "USDT", "network": "ETH"}, "LUCID_ERR_1003", "network"),
                ({"name": "w", "currency": "USDT", "address": BAD_WALLET}, "LUCID_ERR_1003", "address"),
                ({"name": "w", "currency": "USDT", "address": "T123"}, "LUCID_ERR_1003", "address")):
            r = self.server.request("POST", API + "/wallets", body, token=self.tok)
            self.assertError(r, 400, code, field)
        r = self.server.request("POST", API + "/wallets", body="[", token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1009")
        r = self.server.request("POST", API + "/wallets", {"name": "w", "currency": "USDT"})
        self.assertError(r, 401, "LUCID_ERR_2003")

    def test_get_list_ownership(self):
        a = self.wallet(self.tok)
        b = self.wallet(self.tok, currency="TRX")
        r = self.server.request("GET", API + "/wallets?limit=1", token=self.tok)
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["pagination"], {"page": 1, "limit": 1, "total": 2, "pages": 2})
        self.assertEqual([w["wallet_id"] for w in body["wallets"]], [a["wallet_id"]])
        r = self.server.request("GET", API + "/wallets?page=2&limit=1", token=self.tok)
        self.assertEqual([w["wallet_id"] for w in r.json()["wallets"]], [b["wallet_id"]])
        r = self.server.request("GET", API + "/wallets?limit=500", token=self.tok)
        self.assertEqual(r.status, 400, r)
        _, other = self.user()
        self.assertEqual(self.server.request("GET", API + "/wallets", token=other).json()["wallets"], [])
        r = self.server.request("GET", API + "/wallets/" + a["wallet_id"], token=other)
        self.assertError(r, 403, "LUCID_ERR_2004")
        r = self.send(a["wallet_id"], other, 1, tron_address("x"))
        self.assertError(r, 403, "LUCID_ERR_2004")
        r = self.server.request("GET", API + "/wallets/" + a["wallet_id"], token=self.admin)
        self.assertEqual(r.status, 200, r)
        # Issue 12 item 7: an admin reads another user's wallet, never sends from it.
        r = self.send(a["wallet_id"], self.admin, 1, tron_address("x"))
        self.assertError(r, 403, "LUCID_ERR_2004")
        r = self.server.request("GET", API + "/wallets/" + str(uuid.uuid4()), token=self.tok)
        self.assertError(r, 404, "LUCID_ERR_4001")
        r = self.server.request("GET", API + "/wallets/xyz", token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1005", "wallet_id")
        r = self.send(str(uuid.uuid4()), self.tok, 1, tron_address("x"))
        self.assertError(r, 404, "LUCID_ERR_4001")
        r = self.send("xyz", self.tok, 1, tron_address("x"))
        self.assertError(r, 400, "LUCID_ERR_1005", "wallet_id")
        r = self.server.request("GET", API + "/wallets/" + a["wallet_id"])
        self.assertError(r, 401, "LUCID_ERR_2003")

    def test_transfer_between_wallets_is_atomic_and_on_the_ledger(self):
        a = self.wallet(self.tok)
        _, tok_b = self.user()
        b = self.wallet(tok_b)
        self.fund(a["address"], 10)
        self.assertEqual(self.balance(a["wallet_id"], self.tok), 10)
        r = self.send(a["wallet_id"], self.tok, 2.5, b["address"], memo="rent")
        self.assertEqual(r.status, 201, r)
        t = exact(r)
        self.assertEqual((t["status"], t["amount"], t["currency"], t["recipient"], t["memo"]),
                         ("pending", decimal.Decimal("2.5"), "USDT", b["address"], "rent"))
        self.assertEqual(self.balance(a["wallet_id"], self.tok), decimal.Decimal("7.5"))
        self.assertEqual(self.balance(b["wallet_id"], tok_b), decimal.Decimal("2.5"))
        # the transaction is a ledger transaction, sealed like any other
        deadline, found = time.time() + 15, None
        while time.time() < deadline and not found:
            for blk in self.server.request("GET", API + "/chain/blocks?limit=100", token=self.tok).json()["blocks"]:
                found = found or next((x for x in blk["transactions"] if x["transaction_id"] == t["transaction_id"]), None)
            time.sleep(0.1)
        self.assertEqual((found["type"], found["status"]), ("wallet_transfer", "confirmed"))
        # b can spend what it received; payment out of the server debits only
        r = self.send(b["wallet_id"], tok_b, "0.000001", tron_address("shop"), type="payment")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.balance(b["wallet_id"], tok_b), decimal.Decimal("2.499999"))

    def test_balance_never_negative(self):
        a = self.wallet(self.tok)
        self.fund(a["address"], 3)
        r = self.send(a["wallet_id"], self.tok, "3.000001", tron_address("y"))
        self.assertError(r, 400, "LUCID_ERR_4004")
        self.assertEqual(self.balance(a["wallet_id"], self.tok), 3)
        # 12 concurrent transfers of 1 against a balance of 3: exactly 3 pass
        results = []

        def go():
            results.append(self.send(a["wallet_id"], self.tok, 1, tron_address("z")).status)
        threads = [threading.Thread(target=go) for _ in range(12)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(sorted(results), [201] * 3 + [400] * 9)
        self.assertEqual(self.balance(a["wallet_id"], self.tok), 0)
        trx = self.wallet(self.tok, currency="TRX")  # payouts are USDT: nothing to spend
        r = self.send(trx["wallet_id"], self.tok, 1, tron_address("y"))
        self.assertError(r, 400, "LUCID_ERR_4004")

    def test_transaction_validation(self):
        a = self.wallet(self.tok)
        self.fund(a["address"], 1)
        dest = tron_address("v")
        wid = a["wallet_id"]
        path = API + "/wallets/%s/transactions" % wid
        for body, status, code, field in (
                ({"amount": 1, "recipient": dest}, 400, "LUCID_ERR_1002", "type"),
                ({"type": "gift", "amount": 1, "recipient": dest}, 400, "LUCID_ERR_1003", "type"),
                ({"type": "transfer", "recipient": dest}, 400, "LUCID_ERR_1002", "amount"),
                ({"type": "transfer", "amount": "1", "recipient": dest}, 400, "LUCID_ERR_1003", "amount"),
                ({"type": "transfer", "amount": 0, "recipient": dest}, 400, "LUCID_ERR_1004", "amount"),
                ({"type": "transfer", "amount": -1, "recipient": dest}, 400, "LUCID_ERR_1004", "amount"),
                ({"type": "transfer", "amount": 0.0000001, "recipient": dest}, 400, "LUCID_ERR_1003", "amount"),
                ({"type": "transfer", "amount": 1}, 400, "LUCID_ERR_1002", "recipient"),
                ({"type": "transfer", "amount": 1, "recipient": BAD_WALLET}, 400, "LUCID_ERR_1003", "recipient"),
                ({"type": "transfer", "amount": 1, "recipient": a["address"]}, 400, "LUCID_ERR_1003", "recipient"),
                ({"type": "transfer", "amount": 1, "recipient": dest, "currency": "EUR"}, 400, "LUCID_ERR_1003",
                 "currency"),
                ({"type": "transfer", "amount": 1, "recipient": dest, "memo": "m" * 257}, 400, "LUCID_ERR_1003", "memo"),
                ({"type": "transfer", "amount": 1, "recipient": dest, "currency": "TRX"}, 409, "LUCID_ERR_4003",
                 "currency")):
            r = self.server.request("POST", path, body, token=self.tok)
            self.assertError(r, status, code, field)
        r = self.server.request("POST", path, body="{", token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1009")
        r = self.server.request("POST", path, {"type": "transfer", "amount": 1, "recipient": dest})
        self.assertError(r, 401, "LUCID_ERR_2003")
        self.assertEqual(self.balance(wid, self.tok), 1)  # nothing moved
        # a registered (watch-only) wallet cannot send, even with a balance
        reg = self.wallet(self.tok, address=tron_address("watch-" + self.uid))
        self.fund(reg["address"], 1)
        self.assertEqual(self.balance(reg["wallet_id"], self.tok), 1)
        r = self.send(reg["wallet_id"], self.tok, 1, dest)
        self.assertError(r, 409, "LUCID_ERR_4003")


class WalletsWithoutOperatorKey(GatewayCase):
    # Issue 15: without --wallet-key-file or LUCID_WALLET_KEY the server makes
    # <db>.wallet-key on first start (test_server_ops.py checks the file), so
    # generation works on a default server. A library opened without a wallet
    # key still refuses it (tests/unit/test_wallets.cpp).
    def test_generation_works_on_a_default_server(self):
        tok = self.server.token("user", sub=str(uuid.uuid4()))
        r = self.server.request("POST", API + "/wallets", {"name": "w", "currency": "USDT"}, token=tok)
        self.assertEqual(r.status, 201, r)
        self.assertTrue(r.json()["custodial"])
        r = self.server.request("POST", API + "/wallets", {"name": "w", "currency": "USDT",
                                                           "address": tron_address("nokey")}, token=tok)
        self.assertEqual(r.status, 201, r)


class WalletKeyFile(unittest.TestCase):
    def start_with_key(self, text, mode):
        srv = Server()
        path = os.path.join(srv.dir, "wallet.key")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        srv.extra_args = ["--wallet-key-file", path]
        return srv

    def test_key_file_is_required_private_and_well_formed(self):
        srv = self.start_with_key(WALLET_KEY + "\n", 0o600)
        try:
            srv.start()
            tok = srv.token("user", sub=str(uuid.uuid4()))
            r = srv.request("POST", API + "/wallets", {"name": "w", "currency": "TRX"}, token=tok)
            self.assertEqual(r.status, 201, r)
            self.assertTrue(r.json()["custodial"])
        finally:
            srv.cleanup()
        for text, mode, message in ((WALLET_KEY, 0o644, "must not be readable by others"),
                                    ("abcd", 0o600, "64 hex characters")):
            srv = self.start_with_key(text, mode)
            try:
                with self.assertRaises(RuntimeError):
                    srv.start(timeout=10)
                self.assertIn(message, srv.read_log())
            finally:
                srv.cleanup()


if __name__ == "__main__":
    unittest.main()
