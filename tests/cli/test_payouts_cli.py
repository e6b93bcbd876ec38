"""lucidctl payouts list (against a live server) and lucidctl ledger verify
(local, read-only): output, exit codes, and a corrupted ledger caught."""
import decimal
import json
import os
import shutil
import sqlite3
import subprocess
import time
import unittest

from lucidtest import CTL_BIN, Server, ServerTestCase, db_rows, sqlite_only
from test_payouts import FAST, WALLET

ARGS = FAST + ["--payout-interval-ms", "5", "--block-time", "0.1"]


def ctl(*args, env=None):
    e = dict(os.environ)
    e.pop("LUCID_SERVER", None)
    e.pop("LUCID_TOKEN", None)
    e.update(env or {})
    return subprocess.run([CTL_BIN] + list(args), capture_output=True, text=True, timeout=120, env=e)


def create_node(server, token, name):
    r = server.request("POST", "/api/v1/nodes", {"name": name}, token=token)
    assert r.status == 201, r
    return r.json()["node_id"]


def submit(server, token, raw):
    r = server.request("POST", "/api/v1/nodes/payouts/batch", body=raw, headers={"Content-Type": "application/json"},
                       token=token, timeout=60)
    assert r.status == 202, r
    return r.json()


def wait_settled(server, total, timeout=60):
    """Until `total` payouts are settled and every ledger transaction is in a block."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        settled = db_rows(server.db, "SELECT COUNT(*) FROM payouts WHERE status IN ('completed', 'failed')")[0][0]
        pending = db_rows(server.db, "SELECT COUNT(*) FROM ledger_transactions WHERE block_height IS NULL")[0][0]
        if settled == total and pending == 0:
            return
        time.sleep(0.02)
    raise AssertionError("payouts did not settle in time")


class PayoutsList(ServerTestCase):
    server_args = ARGS

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.uid = create_node(cls.server, cls.admin, "cli-payee")
        raw = ('{"batch_id": "cli-1", "payout_requests": ['
               '{"node_id": "%s", "amount": 0.000001, "wallet_address": "%s"},'
               '{"node_id": "%s", "amount": 12.50, "currency": "LUCID", "wallet_address": "%s"},'
               '{"node_id": "%s", "amount": 123456789.123456, "wallet_address": "%s"},'
               '{"node_id": "%s", "amount": 7}]}' % (cls.uid, WALLET, cls.uid, WALLET, cls.uid, WALLET, cls.uid))
        submit(cls.server, cls.admin, raw)
        wait_settled(cls.server, 4)

    def remote(self, *args, token=None):
        return ctl("--server", self.server.url, "--token", token or self.admin, *args)

    def test_table_shows_exact_amounts(self):
        out = self.remote("payouts", "list", self.uid)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertTrue(lines[0].startswith("PAYOUT_ID"), out.stdout)
        for col in ("AMOUNT", "CURRENCY", "STATUS", "BATCH", "CREATED", "COMPLETED", "TX_HASH"):
            self.assertIn(col, lines[0])
        rows = lines[1:-1]
        self.assertEqual(len(rows), 4, out.stdout)
        # Newest first; amounts exactly as stored, never through a double.
        self.assertEqual([r.split()[1] for r in rows], ["7", "123456789.123456", "12.5", "0.000001"])
        self.assertIn("failed (wallet_address_missing)", rows[0])
        self.assertIn("LUCID", rows[2])
        self.assertRegex(rows[1], r"[0-9a-f]{64}")
        self.assertEqual(lines[-1], "page 1 of 1, 4 payouts")

    def test_json_keeps_amounts_exact(self):
        out = self.remote("payouts", "list", self.uid, "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        body = json.loads(out.stdout, parse_float=decimal.Decimal)
        amounts = [p["amount"] for p in body["payouts"]]
        self.assertEqual(amounts, [7, decimal.Decimal("123456789.123456"), decimal.Decimal("12.5"),
                                   decimal.Decimal("0.000001")])
        self.assertIn("0.000001", out.stdout)
        self.assertNotIn("e-06", out.stdout)
        self.assertEqual(body["pagination"]["total"], 4)

    def test_status_page_and_limit(self):
        out = self.remote("payouts", "list", self.uid, "--status", "failed", "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        body = json.loads(out.stdout)
        self.assertEqual([p["status"] for p in body["payouts"]], ["failed"])
        out = self.remote("payouts", "list", self.uid, "--limit", "2", "--page", "2")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual([r.split()[1] for r in out.stdout.splitlines()[1:-1]], ["12.5", "0.000001"])
        self.assertEqual(out.stdout.splitlines()[-1], "page 2 of 2, 4 payouts")

    def test_errors(self):
        cases = [
            (["payouts", "list", "pool_x"], 2, "NODE_ID"),
            (["payouts", "list", "node_a/b"], 2, "NODE_ID"),
            (["payouts", "list", self.uid, "--status", "cancelled"], 2, "--status"),
            # CLI11 rejects these itself, with its own (non-zero) exit codes.
            (["payouts", "list", self.uid, "--limit", "101"], None, "--limit"),
            (["payouts", "list", self.uid, "--page", "0"], None, "--page"),
            (["payouts", "list"], None, "NODE_ID"),
        ]
        for args, rc, msg in cases:
            out = self.remote(*args)
            if rc is None:
                self.assertNotEqual(out.returncode, 0, args)
            else:
                self.assertEqual(out.returncode, rc, (args, out.stdout, out.stderr))
            self.assertIn(msg, out.stderr, args)
        out = self.remote("payouts", "list", "node_ffffffffffffffff")
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("Node not found", out.stderr)
        out = ctl("payouts", "list", self.uid)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("no server", out.stderr)
        reader = self.server.token("admin", scopes=["node:read"], sub="no-payout-scope")
        out = self.remote("payouts", "list", self.uid, token=reader)
        self.assertEqual(out.returncode, 1, out.stderr)
        # The environment works as well as flags.
        out = ctl("payouts", "list", self.uid, env={"LUCID_SERVER": self.server.url, "LUCID_TOKEN": self.admin})
        self.assertEqual(out.returncode, 0, out.stderr)


class LedgerVerify(unittest.TestCase):
    """A ledger of several blocks written through the API, then checked and corrupted."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(ARGS).start()
        s = cls.server
        admin = s.token("super_admin")
        uid = create_node(s, admin, "ledger-payee")
        cls.total = 0
        for b in range(4):  # a few blocks: one batch per block time
            items = ",".join('{"node_id": "%s", "amount": %d.25, "wallet_address": "%s"}' % (uid, 1000 * b + i, WALLET)
                             for i in range(50))
            submit(s, admin, '{"batch_id": "ledger-%d", "payout_requests": [%s]}' % (b, items))
            cls.total += 50
            wait_settled(s, cls.total)
        assert s.stop() == 0, s.read_log()[-2000:]
        cls.blocks = db_rows(s.db, "SELECT COUNT(*) FROM ledger_blocks")[0][0]
        assert cls.blocks >= 3, cls.blocks

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def copy(self, name):
        """A copy of the database alone: a read-only open needs no key file."""
        path = os.path.join(self.server.dir, name + ".db")
        shutil.copy(self.server.db, path)
        for suffix in ("-wal", "-shm"):  # normally gone after a clean stop
            if os.path.exists(self.server.db + suffix):
                shutil.copy(self.server.db + suffix, path + suffix)
        return path

    def corrupt(self, name, sql, args=()):
        path = self.copy(name)
        conn = sqlite3.connect(path)
        conn.execute(sql, args)
        conn.commit()
        conn.close()
        return path

    def test_intact_ledger_verifies(self):
        out = ctl("ledger", "verify", "--db", self.server.db)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("ledger intact: %d blocks, %d transactions (0 pending)" % (self.blocks, self.total), out.stdout)
        out = ctl("--db", self.server.db, "ledger", "verify", "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        report = json.loads(out.stdout)
        self.assertEqual((report["ok"], report["blocks"], report["transactions"], report["pending"]),
                         (True, self.blocks, self.total, 0))
        self.assertIsNone(report["broken_height"])
        # Verification only reads: the file is unchanged.
        self.assertEqual(db_rows(self.server.db, "SELECT COUNT(*) FROM ledger_transactions")[0][0], self.total)

    @sqlite_only("edits a copy of the database file")
    def test_an_edited_transaction_names_its_block(self):
        ref, height = db_rows(self.server.db, "SELECT ref, block_height FROM ledger_transactions"
                                              " WHERE block_height >= 2 ORDER BY id LIMIT 1 OFFSET 7")[0]
        path = self.corrupt("edited-tx", "UPDATE ledger_transactions SET payload = replace(payload,"
                                         " '\"amount_micros\":', '\"amount_micros\":9') WHERE ref = ?", (ref,))
        out = ctl("ledger", "verify", "--db", path)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("ledger BROKEN at block %d" % height, out.stdout)
        self.assertIn("does not match its content", out.stdout)
        out = ctl("ledger", "verify", "--db", path, "--json")
        self.assertEqual(out.returncode, 1)
        report = json.loads(out.stdout)
        self.assertFalse(report["ok"])
        self.assertEqual(report["broken_height"], height)
        self.assertEqual(report["blocks"], height)  # every block before it verified
        stored = db_rows(path, "SELECT lower(hex(hash)) FROM ledger_blocks WHERE height = ?", (height,))[0][0]
        self.assertEqual(report["broken_hash"], stored)

    @sqlite_only("edits a copy of the database file")
    def test_an_edited_block_is_named(self):
        path = self.corrupt("edited-block", "UPDATE ledger_blocks SET merkle_root = randomblob(32) WHERE height = 1")
        out = ctl("ledger", "verify", "--db", path)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("ledger BROKEN at block 1", out.stdout)
        self.assertIn("hash does not match its header", out.stdout)

    @sqlite_only("edits a copy of the database file")
    def test_a_deleted_transaction_is_caught(self):
        height = db_rows(self.server.db, "SELECT MAX(height) FROM ledger_blocks")[0][0]
        path = self.corrupt("deleted-tx", "DELETE FROM ledger_transactions WHERE id = (SELECT MAX(id) FROM"
                                          " ledger_transactions WHERE block_height = ?)", (height,))
        out = ctl("ledger", "verify", "--db", path)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("ledger BROKEN at block %d" % height, out.stdout)
        self.assertIn("transactions; its header says", out.stdout)

    @sqlite_only("edits a copy of the database file")
    def test_verify_needs_no_key_file(self):
        path = self.copy("keyless")
        out = ctl("ledger", "verify", "--db", path)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("ledger intact: %d blocks" % self.blocks, out.stdout)
        self.assertFalse(os.path.exists(path + ".key"))  # nothing was created
        # A key file that is there is still checked: one readable by others is refused.
        shutil.copy(self.server.db + ".key", path + ".key")
        os.chmod(path + ".key", 0o644)
        out = ctl("ledger", "verify", "--db", path)
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertIn("permissions are too open", out.stderr)

    def test_usage_errors(self):
        out = ctl("ledger", "verify")
        self.assertEqual(out.returncode, 2)
        self.assertIn("--db", out.stderr)
        out = ctl("ledger", "verify", "--db", os.path.join(self.server.dir, "absent.db"))
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertIn("cannot open", out.stderr)
        out = ctl("ledger")
        self.assertNotEqual(out.returncode, 0)


if __name__ == "__main__":
    unittest.main()


class PayoutBatchCli(ServerTestCase):
    """lucidctl payouts batch FILE [--watch]: the request as written, progress to the end."""
    server_args = ARGS

    def remote(self, *args, token=None, stdin=None):
        e = dict(os.environ)
        e.pop("LUCID_SERVER", None)
        e.pop("LUCID_TOKEN", None)
        return subprocess.run([CTL_BIN, "--server", self.server.url, "--token", token or self.admin] + list(args),
                              capture_output=True, text=True, timeout=120, env=e, input=stdin)

    def write(self, name, text):
        path = os.path.join(self.server.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_batch_watch_to_the_end(self):
        a = create_node(self.server, self.admin, "batch-a")
        b = create_node(self.server, self.admin, "batch-b")
        path = self.write("ok.json", '[{"node_id": "%s", "amount": 0.000001, "wallet_address": "%s"},'
                                     ' {"node_id": "%s", "amount": 5.25, "currency": "LUCID", "wallet_address": "%s"}]'
                          % (a, WALLET, b, WALLET))
        out = self.remote("payouts", "batch", path, "--batch-id", "cli-batch-1", "--watch", "--interval", "0.5")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        lines = out.stdout.strip().splitlines()
        self.assertRegex(lines[0], r"^batch cli-batch-1 \w+: 2 payout\(s\) to 2 node\(s\)$")
        self.assertEqual(lines[-1], "batch cli-batch-1: 2 completed")
        rows = json.loads(self.remote("--json", "payouts", "list", a).stdout, parse_float=decimal.Decimal)["payouts"]
        self.assertEqual([str(p["amount"]) for p in rows if p["batch_id"] == "cli-batch-1"], ["0.000001"])
        # A request without a wallet fails: the watch says so and exits 1.
        path = self.write("bad.json", '{"batch_id": "cli-batch-2", "payout_requests": [{"node_id": "%s", "amount": 3}]}'
                          % a)
        out = self.remote("payouts", "batch", path, "--watch", "--interval", "0.5")
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertEqual(out.stdout.strip().splitlines()[-1], "batch cli-batch-2: 1 failed")

    def test_batch_errors(self):
        a = create_node(self.server, self.admin, "batch-err")
        out = self.remote("payouts", "batch", self.write("nope.json", "{nope"))
        self.assertEqual(out.returncode, 2)
        self.assertIn("is not JSON", out.stderr)
        out = self.remote("payouts", "batch", self.write("obj.json", '{"x": 1}'))
        self.assertEqual(out.returncode, 2)
        out = self.remote("payouts", "batch", os.path.join(self.server.dir, "missing.json"))
        self.assertEqual(out.returncode, 2)
        body = '[{"node_id": "%s", "amount": 1, "wallet_address": "%s"}]' % (a, WALLET)
        out = self.remote("payouts", "batch", "-", token=self.server.token("viewer"), stdin=body)
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 403", out.stderr)
        out = self.remote("payouts", "batch", "-", stdin='[{"node_id": "%s", "amount": -1}]' % a)
        self.assertEqual(out.returncode, 1)
        self.assertIn("HTTP 400", out.stderr)
