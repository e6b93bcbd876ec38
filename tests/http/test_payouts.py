"""node-management.md, payouts: POST /nodes/payouts/batch and GET /nodes/{node_id}/payouts
(docs/ledger.md): shapes, exact amounts, validation, idempotency, scopes, the
payouts rate limit; and exactly-once processing across a SIGKILL of the server."""
import decimal
import hashlib
import json
import os
import signal
import subprocess
import time
import unittest

from lucidtest import CTL_BIN, ON_POSTGRES, Server, ServerTestCase, db_rows
from test_mgmt_nodes import PAGINATION_KEYS, TIME_RE, MgmtAssertions, mgmt_create

PAYOUT_KEYS = {"payout_id", "node_id", "amount", "currency", "wallet_address", "status", "transaction_hash",
               "batch_id", "created_at", "processed_at", "completed_at", "failure_reason"}
BATCH_KEYS = {"batch_id", "status", "estimated_completion", "payout_count", "counts", "replayed", "created_at"}
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
FAST = ["--rate-payouts", "1000000", "--rate-admin", "1000000", "--rate-nodes", "1000000"]


def tron_address(seed):
    """A valid TRON address (base58check of 0x41 + 20 bytes) derived from `seed`."""
    raw = b"\x41" + hashlib.sha256(seed.encode()).digest()[:20]
    raw += hashlib.sha256(hashlib.sha256(raw).digest()).digest()[:4]
    n, out = int.from_bytes(raw, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return out


WALLET = tron_address("wallet-a")
BAD_WALLET = WALLET[:-1] + ("2" if WALLET[-1] != "2" else "3")  # checksum broken


def exact(r):
    """The body with numbers as Decimal (amounts must round-trip exactly)."""
    return json.loads(r.body, parse_float=decimal.Decimal, parse_int=decimal.Decimal)


def hex_of(column):
    """SQL for the lower-case hex of a BLOB column, in the test database's dialect."""
    return "encode(%s, 'hex')" % column if ON_POSTGRES else "lower(hex(%s))" % column


def json_field(column, key):
    """SQL for a top-level field of a JSON text column (as text on PostgreSQL)."""
    return "(%s::jsonb ->> '%s')" % (column, key) if ON_POSTGRES else "json_extract(%s, '$.%s')" % (column, key)


class PayoutsMixin(MgmtAssertions):
    def batch(self, body, token=None, raw=None):
        return self.post("/api/v1/nodes/payouts/batch", body, token=token, raw=raw)

    def list(self, uid, query="", token=None):
        return self.get("/api/v1/nodes/%s/payouts%s" % (uid, query), token=token)

    def wait_settled(self, uid, count, timeout=30):
        """The node's payouts once `count` of them are completed or failed."""
        deadline = time.time() + timeout
        while True:
            r = self.list(uid, "?limit=100")
            self.assertEqual(r.status, 200, r)
            body = exact(r)
            done = [p for p in body["payouts"] if p["status"] in ("completed", "failed")]
            if len(done) >= count or time.time() > deadline:
                self.assertEqual(len(done), count, body)
                return body["payouts"]
            time.sleep(0.05)

    def assertBatchShape(self, b):
        self.assertEqual(set(b), BATCH_KEYS, b)
        self.assertIn(b["status"], ("queued", "processing"))
        self.assertRegex(b["estimated_completion"], TIME_RE)
        self.assertRegex(b["created_at"], TIME_RE)
        self.assertEqual(set(b["counts"]), {"pending", "processing", "completed", "failed"})
        self.assertEqual(sum(b["counts"].values()), b["payout_count"], b)


class Payouts(PayoutsMixin, ServerTestCase):
    server_args = FAST + ["--payout-interval-ms", "5", "--block-time", "0.2", "--max-payout-batch", "50"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.n1 = mgmt_create(cls.server, cls.admin, {"name": "payee-1"})["node_id"]
        cls.n2 = mgmt_create(cls.server, cls.admin, {"name": "payee-2"})["node_id"]

    def fresh_node(self, name):
        return self.create({"name": name})["node_id"]

    # ---- submission and processing ----

    def test_batch_is_accepted_and_each_payout_completes_or_fails_with_a_reason(self):
        uid = self.fresh_node("payee-process")
        r = self.batch({"batch_id": "process-1", "payout_requests": [
            {"node_id": uid, "amount": 12.5, "currency": "USDT", "wallet_address": WALLET},
            {"node_id": uid, "amount": 3, "currency": "LUCID"},
            {"node_id": uid, "amount": 4, "wallet_address": BAD_WALLET},
        ]})
        self.assertEqual(r.status, 202, r)
        b = r.json()
        self.assertBatchShape(b)
        self.assertEqual(b["batch_id"], "process-1")
        self.assertEqual(b["payout_count"], 3)
        self.assertFalse(b["replayed"])
        payouts = self.wait_settled(uid, 3)
        by_amount = {str(p["amount"]): p for p in payouts}
        for p in payouts:
            self.assertEqual(set(p), PAYOUT_KEYS, p)
            self.assertRegex(p["payout_id"], r"^payout_[a-zA-Z0-9_-]+$")
            self.assertEqual(p["node_id"], uid)
            self.assertEqual(p["batch_id"], "process-1")
            for k in ("created_at", "processed_at", "completed_at"):
                self.assertRegex(p[k], TIME_RE)
        ok = by_amount["12.5"]
        self.assertEqual(ok["status"], "completed")
        self.assertEqual(ok["currency"], "USDT")
        self.assertEqual(ok["wallet_address"], WALLET)
        self.assertRegex(ok["transaction_hash"], r"^[0-9a-f]{64}$")
        self.assertIsNone(ok["failure_reason"])
        missing = by_amount["3"]
        self.assertEqual((missing["status"], missing["failure_reason"]), ("failed", "wallet_address_missing"))
        self.assertEqual(missing["currency"], "LUCID")
        self.assertIsNone(missing["wallet_address"])
        self.assertIsNone(missing["transaction_hash"])
        bad = by_amount["4"]
        self.assertEqual((bad["status"], bad["failure_reason"]), ("failed", "wallet_address_invalid"))
        self.assertEqual(bad["currency"], "USDT")  # the schema's default
        # The completed payout's transaction is in the ledger, under its payout id.
        rows = db_rows(self.server.db, "SELECT " + hex_of("hash") + ", type, payload FROM ledger_transactions WHERE ref = ?",
                       (ok["payout_id"],))
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0][0], ok["transaction_hash"])
        self.assertEqual(rows[0][1], "payout")
        self.assertEqual(json.loads(rows[0][2])["amount_micros"], 12500000)
        for p in (missing, bad):
            self.assertEqual(db_rows(self.server.db, "SELECT COUNT(*) FROM ledger_transactions WHERE ref = ?",
                                     (p["payout_id"],))[0][0], 0)

    def test_amounts_are_exact_decimals_in_and_out(self):
        uid = self.fresh_node("payee-exact")
        # Sent as raw JSON text: numbers a double cannot hold exactly.
        amounts = ["0.1", "0.000001", "12.500000", "1e2", "123456789.123456", "999999999.999999", "2.50E-1",
                   "1.0000000"]
        raw = json.dumps({"batch_id": "exact-1", "payout_requests": [
            {"node_id": uid, "amount": "@%d@" % i, "wallet_address": WALLET} for i in range(len(amounts))]})
        for i, a in enumerate(amounts):
            raw = raw.replace('"@%d@"' % i, a)
        r = self.batch(None, raw=raw)
        self.assertEqual(r.status, 202, r)
        self.wait_settled(uid, len(amounts))
        r = self.list(uid, "?limit=100")
        got = sorted(decimal.Decimal(p["amount"]) for p in exact(r)["payouts"])
        self.assertEqual(got, sorted(decimal.Decimal(a) for a in amounts))
        # Printed as the shortest exact decimal, as JSON numbers.
        for text in ('"amount":0.1,', '"amount":0.000001,', '"amount":12.5,', '"amount":100,',
                     '"amount":123456789.123456,', '"amount":999999999.999999,', '"amount":0.25,', '"amount":1,'):
            self.assertIn(text, r.text)

    def test_amount_validation(self):
        cases = [("0", "amount must be greater than 0"), ("-1", "greater than 0"), ("1.1234567", "6 decimal places"),
                 ("1e-7", "6 decimal places"), ("1000000000.000001", "at most"), ('"12.5"', "must be a number"),
                 ("true", "must be a number"), ('{"v":1}', "must be a number"), ("[1]", "must be a number")]
        for text, message in cases:
            raw = '{"payout_requests": [{"node_id": "%s", "amount": 1, "wallet_address": "%s"},' \
                  ' {"node_id": "%s", "amount": %s}]}' % (self.n1, WALLET, self.n1, text)
            r = self.batch(None, raw=raw)
            e = self.assertMgmtError(r, 400, "LUCID_ERR_1001", field="payout_requests.1.amount")
            self.assertIn(message, e["message"], text)
        for body in ({"payout_requests": [{"node_id": self.n1}]},
                     {"payout_requests": [{"node_id": self.n1, "amount": None}]}):
            r = self.batch(body)
            self.assertMgmtError(r, 400, "LUCID_ERR_1002", field="payout_requests.0.amount")

    def test_field_validation(self):
        n = self.n1
        item = {"node_id": n, "amount": 1, "wallet_address": WALLET}
        cases = [
            ({}, "payout_requests", "LUCID_ERR_1002"),
            ({"payout_requests": None}, "payout_requests", "LUCID_ERR_1002"),
            ({"payout_requests": {"a": 1}}, "payout_requests", "LUCID_ERR_1001"),
            ({"payout_requests": []}, "payout_requests", "LUCID_ERR_1001"),
            ({"payout_requests": [item] * 51}, "payout_requests", "LUCID_ERR_1001"),  # --max-payout-batch 50
            ({"payout_requests": [item, 5]}, "payout_requests.1", "LUCID_ERR_1001"),
            ({"payout_requests": [{"amount": 1}]}, "payout_requests.0.node_id", "LUCID_ERR_1002"),
            ({"payout_requests": [dict(item, node_id=7)]}, "payout_requests.0.node_id", "LUCID_ERR_1001"),
            ({"payout_requests": [dict(item, node_id="pool_x")]}, "payout_requests.0.node_id", "LUCID_ERR_1001"),
            ({"payout_requests": [dict(item, node_id="node_a b")]}, "payout_requests.0.node_id", "LUCID_ERR_1001"),
            ({"payout_requests": [dict(item, currency="EUR")]}, "payout_requests.0.currency", "LUCID_ERR_1001"),
            ({"payout_requests": [dict(item, currency="usdt")]}, "payout_requests.0.currency", "LUCID_ERR_1001"),
            ({"payout_requests": [dict(item, currency=1)]}, "payout_requests.0.currency", "LUCID_ERR_1001"),
            ({"payout_requests": [dict(item, wallet_address="T" * 129)]}, "payout_requests.0.wallet_address",
             "LUCID_ERR_1001"),
            ({"payout_requests": [dict(item, wallet_address="T\n")]}, "payout_requests.0.wallet_address",
             "LUCID_ERR_1001"),
            ({"payout_requests": [dict(item, wallet_address=12)]}, "payout_requests.0.wallet_address",
             "LUCID_ERR_1001"),
            ({"batch_id": "", "payout_requests": [item]}, "batch_id", "LUCID_ERR_1001"),
            ({"batch_id": "has space", "payout_requests": [item]}, "batch_id", "LUCID_ERR_1001"),
            ({"batch_id": "b" * 129, "payout_requests": [item]}, "batch_id", "LUCID_ERR_1001"),
            ({"batch_id": 12, "payout_requests": [item]}, "batch_id", "LUCID_ERR_1001"),
        ]
        for body, field, code in cases:
            r = self.batch(body)
            self.assertMgmtError(r, 400, code, field=field)
        # Nothing of the above created a payout.
        self.assertEqual(db_rows(self.server.db, "SELECT COUNT(*) FROM payouts p JOIN payout_batches b"
                                                 " ON b.id = p.batch_id WHERE b.batch_id IN ('has space', '')")[0][0],
                         0)

    def test_malformed_bodies(self):
        for raw in ("{", "[1, 2]", "", "nul", '{"payout_requests": [}'):
            r = self.batch(None, raw=raw)
            self.assertEqual(r.status, 400, (raw, r))
            self.assertIn(r.json()["error"]["code"], ("LUCID_ERR_1009", "LUCID_ERR_1001"), r)
        r = self.batch(None, raw="{")
        self.assertMgmtError(r, 400, "LUCID_ERR_1009")

    def test_unknown_node_fails_the_whole_batch(self):
        r = self.batch({"batch_id": "unknown-node", "payout_requests": [
            {"node_id": self.n1, "amount": 1, "wallet_address": WALLET},
            {"node_id": "node_ffffffffffffffff", "amount": 2, "wallet_address": WALLET}]})
        self.assertMgmtError(r, 404, "LUCID_ERR_5001", field="payout_requests.1.node_id")
        self.assertEqual(db_rows(self.server.db, "SELECT COUNT(*) FROM payout_batches WHERE batch_id = 'unknown-node'")
                         [0][0], 0)

    def test_batch_id_is_an_idempotency_key(self):
        uid = self.fresh_node("payee-idem")
        first = {"batch_id": "idem-http-1", "payout_requests": [
            {"node_id": uid, "amount": 12.5, "wallet_address": WALLET},
            {"node_id": uid, "amount": 1, "currency": "LUCID", "wallet_address": WALLET}]}
        r = self.batch(first)
        self.assertEqual(r.status, 202, r)
        self.assertFalse(r.json()["replayed"])
        # The same requests (spelled differently: 12.50, an explicit USDT) are the same batch.
        same = '{"payout_requests": [{"node_id": "%s", "amount": 12.50, "currency": "USDT", "wallet_address": "%s"},' \
               ' {"node_id": "%s", "amount": 1.0, "currency": "LUCID", "wallet_address": "%s"}],' \
               ' "batch_id": "idem-http-1"}' % (uid, WALLET, uid, WALLET)
        for _ in range(3):
            r = self.batch(None, raw=same)
            self.assertEqual(r.status, 202, r)
            b = r.json()
            self.assertBatchShape(b)
            self.assertTrue(b["replayed"])
            self.assertEqual((b["batch_id"], b["payout_count"]), ("idem-http-1", 2))
        self.wait_settled(uid, 2)
        r = self.batch(first)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json()["counts"], {"pending": 0, "processing": 0, "completed": 2, "failed": 0})
        self.assertEqual(exact(self.list(uid))["pagination"]["total"], 2)
        # Different requests under the same id are refused, and create nothing.
        for change in ({"amount": 12.6}, {"currency": "LUCID"}, {"wallet_address": tron_address("other")},
                       {"node_id": self.n1}):
            body = json.loads(json.dumps(first))
            body["payout_requests"][0].update(change)
            r = self.batch(body)
            self.assertMgmtError(r, 409, "LUCID_ERR_5010")
        r = self.batch({"batch_id": "idem-http-1", "payout_requests": first["payout_requests"][:1]})
        self.assertMgmtError(r, 409, "LUCID_ERR_5010")
        self.assertEqual(exact(self.list(uid))["pagination"]["total"], 2)
        self.assertEqual(db_rows(self.server.db, "SELECT COUNT(*) FROM ledger_transactions t JOIN payouts p"
                                                 " ON p.uid = t.ref JOIN payout_batches b ON b.id = p.batch_id"
                                                 " WHERE b.batch_id = 'idem-http-1'")[0][0], 2)

    def test_without_batch_id_each_submission_is_new(self):
        uid = self.fresh_node("payee-noid")
        body = {"payout_requests": [{"node_id": uid, "amount": 1, "wallet_address": WALLET}]}
        a, b = self.batch(body).json(), self.batch(body).json()
        self.assertRegex(a["batch_id"], r"^batch_[0-9a-f]{16}$")
        self.assertNotEqual(a["batch_id"], b["batch_id"])
        self.wait_settled(uid, 2)

    # ---- listing ----

    def test_list_pages_newest_first_and_filters_by_status(self):
        uid = self.fresh_node("payee-list")
        reqs = [{"node_id": uid, "amount": i, "wallet_address": WALLET if i % 5 else None}
                for i in range(1, 26)]
        self.assertEqual(self.batch({"batch_id": "list-1", "payout_requests": reqs}).status, 202)
        self.wait_settled(uid, 25)
        r = self.list(uid, "?page=1&limit=10")
        self.assertEqual(r.status, 200, r)
        body = exact(r)
        self.assertEqual(set(body), {"payouts", "pagination"})
        self.assertEqual(set(body["pagination"]), PAGINATION_KEYS)
        self.assertEqual(body["pagination"], {"page": 1, "limit": 10, "total": 25, "total_pages": 3,
                                              "has_next": True, "has_prev": False})
        self.assertEqual([int(p["amount"]) for p in body["payouts"]], list(range(25, 15, -1)))
        last = exact(self.list(uid, "?page=3&limit=10"))
        self.assertEqual([int(p["amount"]) for p in last["payouts"]], [5, 4, 3, 2, 1])
        self.assertFalse(last["pagination"]["has_next"])
        self.assertEqual(exact(self.list(uid, "?page=4&limit=10"))["payouts"], [])
        self.assertEqual(len(exact(self.list(uid))["payouts"]), 20)  # default limit
        failed = exact(self.list(uid, "?status=failed&limit=100"))
        self.assertEqual(failed["pagination"]["total"], 5)
        self.assertTrue(all(p["failure_reason"] == "wallet_address_missing" for p in failed["payouts"]))
        done = exact(self.list(uid, "?status=completed&limit=100"))
        self.assertEqual(done["pagination"]["total"], 20)
        for status in ("pending", "processing"):
            self.assertEqual(exact(self.list(uid, "?status=" + status))["pagination"]["total"], 0)

    def test_list_errors(self):
        for query, field in (("?status=cancelled", "status"), ("?status=", "status"), ("?limit=0", "limit"),
                             ("?limit=101", "limit"), ("?page=0", "page"), ("?page=x", "page")):
            r = self.list(self.n1, query)
            self.assertMgmtError(r, 400, "LUCID_ERR_1001", field=field, location="query")
        r = self.list("node_ffffffffffffffff")
        self.assertMgmtError(r, 404, "LUCID_ERR_5001")
        r = self.list("node_bad$chars")
        self.assertEqual(r.status, 404, r)

    # ---- credentials ----

    def test_scopes_and_credentials(self):
        body = {"payout_requests": [{"node_id": self.n1, "amount": 1, "wallet_address": WALLET}]}
        r = self.server.request("POST", "/api/v1/nodes/payouts/batch", body)
        self.assertMgmtError(r, 401, "LUCID_ERR_2003")
        r = self.server.request("GET", "/api/v1/nodes/%s/payouts" % self.n1)
        self.assertMgmtError(r, 401, "LUCID_ERR_2003")
        reader = self.server.token("admin", scopes=["payout:read"], sub="payout-reader")
        self.assertEqual(self.list(self.n1, token=reader).status, 200)
        self.assertMgmtError(self.batch(body, token=reader), 403, "LUCID_ERR_2004")
        writer = self.server.token("admin", scopes=["payout:write"], sub="payout-writer")
        self.assertEqual(self.batch(body, token=writer).status, 202)
        self.assertMgmtError(self.list(self.n1, token=writer), 403, "LUCID_ERR_2004")
        nodes_only = self.server.token("super_admin", scopes=["node:read", "node:write"], sub="nodes-only")
        self.assertMgmtError(self.batch(body, token=nodes_only), 403, "LUCID_ERR_2004")
        self.assertMgmtError(self.list(self.n1, token=nodes_only), 403, "LUCID_ERR_2004")
        # A viewer's default scopes read payouts but do not write them; a self-service user's do neither.
        self.assertMgmtError(self.list(self.n1, token=self.server.token("user", sub="payout-self")), 403, "LUCID_ERR_2004")
        user = self.server.token("viewer", sub="payout-user")
        self.assertEqual(self.list(self.n1, token=user).status, 200)
        self.assertMgmtError(self.batch(body, token=user), 403, "LUCID_ERR_2004")


class PayoutsRateLimit(PayoutsMixin, ServerTestCase):
    """The document's payout budget is per caller; here 3 a minute."""
    server_args = ["--rate-payouts", "3"]

    def test_fourth_payout_request_in_a_minute_is_429(self):
        uid = mgmt_create(self.server, self.admin, {"name": "rate-payee"})["node_id"]
        token = self.server.token("admin", sub="payout-rate")
        for _ in range(3):
            self.assertEqual(self.list(uid, token=token).status, 200)
        r = self.batch({"payout_requests": [{"node_id": uid, "amount": 1}]}, token=token)
        self.assertMgmtError(r, 429, "LUCID_ERR_3001")
        self.assertIn("retry-after", r.headers)
        # Another caller has its own bucket.
        self.assertEqual(self.list(uid, token=self.server.token("admin", sub="payout-rate-2")).status, 200)


class PayoutsSurviveSigkill(unittest.TestCase):
    """A 20,000-payout batch, the server SIGKILLed while processing it, restarted
    on the same database: every payout completes exactly once and the ledger
    holds exactly one transaction per payout, and verifies."""

    TOTAL = 20000
    ARGS = FAST + ["--payout-chunk", "100", "--payout-interval-ms", "20", "--max-payout-batch", str(TOTAL),
                   "--block-time", "0.2"]

    def setUp(self):
        self.server = Server(self.ARGS).start()
        self.addCleanup(self.server.cleanup)
        self.admin = self.server.token("super_admin", ttl="2h")

    def counts(self):
        return dict(db_rows(self.server.db, "SELECT status, COUNT(*) FROM payouts GROUP BY status"))

    def wait_for(self, pred, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return
            time.sleep(0.02)
        self.fail("timed out waiting for " + what + "; payouts: %s" % self.counts())

    def test_exactly_once_across_sigkill(self):
        s = self.server
        nodes = [mgmt_create(s, self.admin, {"name": "crash-%d" % i})["node_id"] for i in range(5)]
        wallets = [tron_address("crash-%d" % i) for i in range(7)]
        # Exact amounts from 0.000001 upwards, as JSON number text.
        items = ['{"node_id":"%s","amount":%d.%06d,"currency":"%s","wallet_address":"%s"}'
                 % (nodes[i % 5], i // 1000, i % 1000 + 1, "LUCID" if i % 3 == 0 else "USDT", wallets[i % 7])
                 for i in range(self.TOTAL)]
        raw = '{"batch_id":"crash-batch","payout_requests":[' + ",".join(items) + "]}"
        r = s.request("POST", "/api/v1/nodes/payouts/batch", body=raw, headers={"Content-Type": "application/json"},
                      token=self.admin, timeout=60)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json()["payout_count"], self.TOTAL)

        # Kill it in the middle: some payouts done, most not.
        self.wait_for(lambda: self.counts().get("completed", 0) >= 2000, 60, "2,000 completed payouts")
        rc = s.stop(signal.SIGKILL)
        self.assertEqual(rc, -signal.SIGKILL)
        at_kill = self.counts()
        self.assertLess(at_kill.get("completed", 0), self.TOTAL, "the kill came too late to test anything")
        self.assertGreater(at_kill.get("pending", 0) + at_kill.get("processing", 0), 0)
        # Already at the kill: every completed payout has its one transaction.
        self.assertEqual(db_rows(s.db, "SELECT COUNT(*) FROM payouts p JOIN ledger_transactions t ON t.ref = p.uid"
                                       " WHERE p.status = 'completed'")[0][0], at_kill.get("completed", 0))
        self.assertEqual(db_rows(s.db, "SELECT COUNT(*) FROM ledger_transactions")[0][0], at_kill.get("completed", 0))

        # Restart on the same database; processing resumes.
        s.start()
        self.wait_for(lambda: self.counts() == {"completed": self.TOTAL}, 120, "all payouts completed")
        self.wait_for(lambda: db_rows(s.db, "SELECT COUNT(*) FROM ledger_transactions WHERE block_height IS NULL")
                      [0][0] == 0, 30, "every transaction sealed")

        # Exactly once: one ledger transaction per payout, its hash on the payout.
        self.assertEqual(db_rows(s.db, "SELECT COUNT(*), COUNT(DISTINCT ref), COUNT(DISTINCT hash)"
                                       " FROM ledger_transactions")[0], (self.TOTAL,) * 3)
        self.assertEqual(db_rows(s.db, "SELECT ref FROM ledger_transactions GROUP BY ref HAVING COUNT(*) > 1"), [])
        self.assertEqual(db_rows(s.db, "SELECT COUNT(*) FROM payouts p JOIN ledger_transactions t ON t.ref = p.uid"
                                       " WHERE p.transaction_hash = " + hex_of("t.hash"))[0][0], self.TOTAL)
        # Each transaction carries its payout's exact amount.
        mismatched = db_rows(s.db, "SELECT COUNT(*) FROM payouts p JOIN ledger_transactions t ON t.ref = p.uid"
                                   " WHERE CAST(" + json_field("t.payload", "amount_micros") + " AS BIGINT)"
                                   " != p.amount_micros OR " + json_field("t.payload", "payout_id") + " != p.uid")[0][0]
        self.assertEqual(mismatched, 0)
        self.assertEqual(db_rows(s.db, "SELECT SUM(amount_micros) FROM payouts")[0][0],
                         sum((i // 1000) * 1000000 + i % 1000 + 1 for i in range(self.TOTAL)))

        # The API agrees, and a replay of the batch creates nothing.
        r = s.request("GET", "/api/v1/nodes/%s/payouts?status=completed&limit=1" % nodes[0], token=self.admin)
        self.assertEqual(r.json()["pagination"]["total"], self.TOTAL // 5)
        r = s.request("POST", "/api/v1/nodes/payouts/batch", body=raw, headers={"Content-Type": "application/json"},
                      token=self.admin, timeout=60)
        self.assertEqual(r.status, 202, r)
        self.assertTrue(r.json()["replayed"])
        self.assertEqual(r.json()["counts"]["completed"], self.TOTAL)
        self.assertEqual(db_rows(s.db, "SELECT COUNT(*) FROM payouts")[0][0], self.TOTAL)

        # And the ledger verifies, hash by hash.
        out = subprocess.run([CTL_BIN, "ledger", "verify", "--db", s.db, "--json"], capture_output=True, text=True,
                             timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        report = json.loads(out.stdout)
        self.assertTrue(report["ok"])
        self.assertEqual(report["transactions"], self.TOTAL)
        self.assertEqual(report["pending"], 0)
        self.assertEqual(s.stop(), 0, s.read_log()[-3000:])


if __name__ == "__main__":
    unittest.main()
