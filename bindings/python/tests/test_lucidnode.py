"""The Python binding against the real library and real SQLite files.

Run from the build tree (ctest does this):
    LUCIDNODE_LIBRARY=build/lib/liblucidnode.so PYTHONPATH=bindings/python \
        python3 -m unittest -v test_lucidnode
"""
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from decimal import Decimal

import lucidnode

WALLET = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="lucid-py-")
        self.db = os.path.join(self.tmp.name, "fleet.db")

    def tearDown(self):
        self.tmp.cleanup()

    def open(self, **kw):
        kw.setdefault("stats_flush_interval_ms", 20)
        return lucidnode.Cluster(self.db, **kw)

    def active_node(self, cluster, hostname):
        join = cluster.join(hostname, ip_address="192.0.2.1")
        node = cluster.approve_code(join["registration_code"])
        key = cluster.poll(join["registration_code"], join["join_secret"])["api_key"]
        return node, key


class TestJoinSecret(Base):
    def test_code_and_key_only_for_the_joiner(self):
        with self.open() as c:
            join = c.join("secret.example")
            self.assertTrue(join["join_secret"].startswith("ljs_"))
            with self.assertRaises(lucidnode.Conflict):
                c.join("secret.example")  # someone else asking for the pending code
            with self.assertRaises(lucidnode.Conflict):
                c.join("secret.example", join_secret="ljs_wrong")
            again = c.join("secret.example", join_secret=join["join_secret"])
            self.assertEqual(again["registration_code"], join["registration_code"])
            self.assertNotIn("join_secret", again)
            code = join["registration_code"]
            c.approve_code(code)
            self.assertEqual(c.poll(code), {"status": "active"})  # no secret: status, no key
            with self.assertRaises(lucidnode.PermissionDenied):
                c.poll(code, "ljs_wrong")
            key = c.poll(code, join["join_secret"])["api_key"]  # not consumed by the polls above
            self.assertTrue(c.authenticate(key))
            with self.assertRaises(lucidnode.NotFound):
                c.poll(code, join["join_secret"])


class TestModule(Base):
    def test_version_matches_library(self):
        self.assertRegex(lucidnode.version(), r"^\d+\.\d+\.\d+$")
        self.assertTrue(lucidnode.library_path())

    def test_error_hierarchy(self):
        for cls in (lucidnode.InvalidArgument, lucidnode.NotFound, lucidnode.Conflict, lucidnode.Unauthenticated,
                    lucidnode.PermissionDenied, lucidnode.ResourceExhausted, lucidnode.Unavailable,
                    lucidnode.StorageError, lucidnode.InternalError, lucidnode.ClusterClosed):
            self.assertTrue(issubclass(cls, lucidnode.LucidError))
        self.assertTrue(issubclass(lucidnode.InvalidArgument, ValueError))
        self.assertTrue(issubclass(lucidnode.NotFound, LookupError))
        self.assertTrue(issubclass(lucidnode.StorageError, OSError))


class TestCluster(Base):
    def test_context_manager_and_flow(self):
        with self.open() as c:
            self.assertFalse(c.closed)
            node, key = self.active_node(c, "worker-1.example.com")
            self.assertEqual(node["status"], "active")
            node_id = c.authenticate(key)
            self.assertEqual(node_id, node["id"])
            c.report_stats(node_id, cpu_usage=12.5, disk_usage=40, memory_percent=61.5, uptime_seconds=10)
            page = c.nodes()
            self.assertEqual(page["total"], 1)
            self.assertEqual(page["nodes"][0]["liveness"], "online")
            self.assertEqual(page["nodes"][0]["latest_stats"]["cpu_usage"], 12.5)
            self.assertEqual(c.node(node_id)["recent_stats"][0]["memory_percent"], 61.5)
        self.assertTrue(c.closed)
        # The sample was flushed at close: a new open sees it.
        with self.open() as c:
            self.assertEqual(len(c.node(node_id)["recent_stats"]), 1)

    def test_options_flat_or_grouped_by_capability(self):
        with self.assertRaises(lucidnode.InvalidArgument) as cm:
            lucidnode.Cluster(self.db, poot_window_s=59)
        self.assertEqual(cm.exception.field, "poot_window_s")
        with self.assertRaises(lucidnode.InvalidArgument) as cm:
            lucidnode.Cluster(self.db, poot={"window_s": 59})
        self.assertEqual(cm.exception.field, "poot.window_s")
        with self.assertRaises(lucidnode.InvalidArgument) as cm:
            lucidnode.Cluster(self.db, poot={"window_s": 600}, poot_window_s=600)
        self.assertEqual(cm.exception.field, "poot.window_s")
        with self.assertRaises(lucidnode.InvalidArgument) as cm:
            lucidnode.Cluster(self.db, ledger={"block_time": 50})
        self.assertEqual(cm.exception.field, "ledger.block_time")
        with lucidnode.Cluster(self.db, ledger={"block_time_ms": 50}, poot={"freshness_s": 60, "window_s": 600},
                               login={"public_url": "https://fleet.test/"}) as c:
            node_id = c.join("g.example")["request_id"]
            self.assertIsInstance(node_id, int)

    def test_errors_map_to_classes_with_fields(self):
        with self.open() as c:
            with self.assertRaises(lucidnode.InvalidArgument) as cm:
                c.join("-not-a-hostname-")
            self.assertEqual(cm.exception.field, "hostname")
            self.assertEqual(cm.exception.code, "invalid_argument")
            with self.assertRaises(lucidnode.NotFound):
                c.approve(987654)
            with self.assertRaises(lucidnode.Unauthenticated):
                c.authenticate("nope")
            with self.assertRaises(lucidnode.InvalidArgument):
                c.poll(123)  # not a str: refused before the C call
            node, _ = self.active_node(c, "w.example")
            with self.assertRaises(lucidnode.Conflict):
                c.approve(node["id"])
            with self.assertRaises(lucidnode.InvalidArgument) as cm:
                c.report_stats(node["id"], cpu_usage=101, disk_usage=1)
            self.assertEqual(cm.exception.field, "cpu_usage")
            with self.assertRaises(lucidnode.InvalidArgument) as cm:
                c.report_stats(node["id"], cpu_usage=1, disk_usage=1, colour="red")
            self.assertEqual(cm.exception.field, "colour")
            c.create_pool("edge", max_nodes=1)
            with self.assertRaises(lucidnode.Conflict):
                c.create_pool("edge")

    def test_bad_options(self):
        with self.assertRaises(lucidnode.InvalidArgument) as cm:
            lucidnode.Cluster(self.db, executor_threads=0)
        self.assertEqual(cm.exception.field, "executor_threads")
        with self.assertRaises(lucidnode.InvalidArgument) as cm:
            lucidnode.Cluster(self.db, no_such_option=1)
        self.assertEqual(cm.exception.field, "no_such_option")
        with self.assertRaises(lucidnode.StorageError):
            lucidnode.Cluster(os.path.join(self.tmp.name, "missing.db"), read_only=True)

    def test_closed_cluster_raises(self):
        c = self.open()
        c.close()
        c.close()  # idempotent
        with self.assertRaises(lucidnode.ClusterClosed):
            c.nodes()
        with self.assertRaises(lucidnode.ClusterClosed):
            c.start()

    def test_payouts_and_ledger(self):
        with self.open(payout_interval_ms=5, block_time_ms=50) as c:
            node, _ = self.active_node(c, "payee.example")
            with self.assertRaises(lucidnode.InvalidArgument):
                c.submit_payouts([{"node_id": node["uid"], "amount": 1.5}])  # float: not exact
            with self.assertRaises(lucidnode.InvalidArgument) as cm:
                c.submit_payouts([{"node_id": "node_0000000000000000", "amount": "1"}])
            self.assertEqual(cm.exception.field, "payout_requests.0.node_id")
            batch = c.submit_payouts([
                {"node_id": node["uid"], "amount": Decimal("12.50"), "wallet_address": WALLET},
                {"node_id": node["uid"], "amount": 3, "currency": "LUCID", "wallet_address": WALLET},
                {"node_id": node["uid"], "amount": "1"},  # no wallet: fails when processed
            ], batch_id="py-1")
            self.assertEqual(batch["payout_count"], 3)
            self.assertTrue(batch["created"])
            again = c.submit_payouts([
                {"node_id": node["uid"], "amount": "12.5", "wallet_address": WALLET},
                {"node_id": node["uid"], "amount": "3", "currency": "LUCID", "wallet_address": WALLET},
                {"node_id": node["uid"], "amount": "1"},
            ], batch_id="py-1")
            self.assertFalse(again["created"])
            with self.assertRaises(lucidnode.Conflict):
                c.submit_payouts([{"node_id": node["uid"], "amount": "2"}], batch_id="py-1")
            # The started executor processes payouts too (every 5 ms): a
            # round of ours returns 0 while one of its rounds holds the work,
            # so wait until the batch is settled, by whichever round.
            deadline = time.monotonic() + 30
            while True:
                c.process_payouts()
                state = c.payout_batch("py-1")
                if state["pending"] == 0 and state["processing"] == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            self.assertEqual((state["completed"], state["failed"]), (2, 1))
            payouts = list(c.iter_payouts(node["uid"]))
            self.assertEqual(sorted(p["amount"] for p in payouts), ["1", "12.5", "3"])
            c.seal_ledger()
            v = c.verify_ledger()
            self.assertTrue(v["ok"])
            self.assertEqual(v["transactions"], 2)
            with self.assertRaises(lucidnode.NotFound):
                c.payout_batch("no-such-batch")

    def test_poot_answers_and_errors(self):
        with self.open() as c:
            node, _ = self.active_node(c, "prover.example")
            r = c.validate_proof(node["uid"], b"hello", "2001-01-01T00:00:00Z", "n-1")
            self.assertFalse(r["valid"])
            self.assertEqual(r["output_hash"], "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
            self.assertIsNotNone(r["failure"])
            with self.assertRaises(lucidnode.InvalidArgument) as cm:
                c.validate_proof(node["uid"], "***", "2001-01-01T00:00:00Z", "n-2")
            self.assertEqual(cm.exception.field, "output_data")
            with self.assertRaises(lucidnode.NotFound):
                c.validate_proof("node_0000000000000000", b"x", "2001-01-01T00:00:00Z", "n-3")

    def test_pools(self):
        with self.open() as c:
            a, _ = self.active_node(c, "a.example")
            b, _ = self.active_node(c, "b.example")
            pool = c.create_pool("gpu", description="GPUs", max_nodes=1)
            self.assertEqual(c.add_to_pool(pool["uid"], a["uid"], 10)["node_count"], 1)
            with self.assertRaises(lucidnode.ResourceExhausted):
                c.add_to_pool(pool["uid"], b["uid"], 10)
            with self.assertRaises(lucidnode.NotFound):
                c.add_to_pool("pool_0000000000000000", b["uid"], 10)
            pools = list(c.iter_pools())
            self.assertEqual([p["name"] for p in pools], ["gpu"])

    def test_many_threads_share_one_cluster(self):
        with self.open() as c:
            ids = [self.active_node(c, f"t{i}.example")[0]["id"] for i in range(4)]
            errors = []

            def work(node_id):
                try:
                    for k in range(50):
                        c.report_stats(node_id, cpu_usage=k % 100, disk_usage=5)
                        c.nodes(0, 10)
                except Exception as e:  # surfaced below
                    errors.append(e)
            threads = [threading.Thread(target=work, args=(i,)) for i in ids]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            self.assertTrue(all(n["liveness"] == "online" for n in c.iter_nodes()))

    def test_close_waits_for_calls_in_flight(self):
        c = self.open()
        self.active_node(c, "busy.example")
        stop = threading.Event()
        seen = []

        def reader():
            while not stop.is_set():
                try:
                    c.nodes()
                except lucidnode.ClusterClosed:
                    seen.append("closed")
                    return
        t = threading.Thread(target=reader)
        t.start()
        c.close()
        stop.set()
        t.join()
        self.assertTrue(c.closed)


class TestTasks(Base):
    CAPS = {"cpu_count": 4, "memory_total_gb": 8, "storage_total_gb": 100, "internet": True}

    def device(self, c, hostname, **kw):
        node, key = self.active_node(c, hostname)
        node_id = c.authenticate(key)
        dev = c.report_device(node_id, "linux", self.CAPS, ["echo", "sleep"], **kw)
        return node_id, dev

    def test_submit_take_start_report_result(self):
        with self.open() as c:
            node_id, dev = self.device(c, "agent-py.example", tags=["py"], max_concurrent=2)
            self.assertEqual(dev["tags"], ["py"])
            self.assertEqual(dev["max_concurrent"], 2)
            self.assertTrue(dev["reported"])
            task = c.submit_task("echo", payload={"message": "hi"}, priority="urgent",
                                 requirements={"required_tags": ["py"], "timeout_seconds": 30},
                                 metadata={"origin": "unittest"})
            self.assertEqual(task["status"], "queued")
            self.assertEqual(task["priority"], "urgent")
            self.assertEqual(task["requirements"]["timeout_seconds"], 30)
            tid = task["task_id"]
            self.assertEqual(c.task(tid)["metadata"], {"origin": "unittest"})
            self.assertFalse(c.task_result(tid)["final"])
            c.schedule_tasks()
            work = c.take_work(node_id)
            self.assertEqual([t["task_id"] for t in work["tasks"]], [tid])
            self.assertEqual(work["tasks"][0]["payload"], {"message": "hi"})
            self.assertEqual(work["tasks"][0]["timeout_seconds"], 30)
            self.assertEqual(c.take_work(node_id)["tasks"], [])  # taken once
            self.assertEqual(c.start_task(node_id, tid)["status"], "running")
            done = c.report_result(node_id, tid, "completed", result={"echo": "hi"}, exit_code=0, duration_ms=1500)
            self.assertEqual(done["status"], "success")
            # A repeat returns the stored task unchanged.
            again = c.report_result(node_id, tid, "failed", error="late", duration_ms=1)
            self.assertEqual(again["status"], "success")
            r = c.task_result(tid)
            self.assertTrue(r["final"])
            self.assertEqual(r["result_data"], {"echo": "hi"})
            self.assertEqual(r["execution_time_seconds"], 1.5)
            self.assertEqual(r["worker_device_id"], dev["device_id"])

    def test_task_errors(self):
        with self.open() as c:
            node_id, _ = self.device(c, "agent-a.example")
            other_id, _ = self.device(c, "agent-b.example")
            with self.assertRaises(lucidnode.InvalidArgument) as cm:
                c.submit_task("teleport")
            self.assertEqual(cm.exception.field, "task_type")
            with self.assertRaises(lucidnode.InvalidArgument) as cm:
                c.submit_task("echo", requirements={"min_cpu_cores": 0})
            self.assertEqual(cm.exception.field, "requirements.min_cpu_cores")
            with self.assertRaises(lucidnode.InvalidArgument) as cm:
                c.submit_task("echo", requirements={"cores": 1})
            self.assertEqual(cm.exception.field, "requirements.cores")
            with self.assertRaises(lucidnode.InvalidArgument) as cm:
                c.submit_task("echo", priority="asap")
            self.assertEqual(cm.exception.field, "priority")
            with self.assertRaises(lucidnode.InvalidArgument):
                c.task(42)  # not a str
            with self.assertRaises(lucidnode.NotFound):
                c.task("00000000-0000-0000-0000-000000000000")
            with self.assertRaises(lucidnode.NotFound):
                c.task_result("nope")
            with self.assertRaises(lucidnode.NotFound):
                c.report_device(987654, "linux", self.CAPS, ["echo"])
            with self.assertRaises(lucidnode.NotFound):
                c.take_work(987654)
            with self.assertRaises(lucidnode.InvalidArgument) as cm:
                c.report_device(node_id, "linux", {"cpu_count": 4}, ["echo"])
            self.assertEqual(cm.exception.field, "capabilities.memory_total_gb")
            with self.assertRaises(lucidnode.InvalidArgument) as cm:
                c.report_device(node_id, "linux", self.CAPS, ["teleport"])
            self.assertEqual(cm.exception.field, "allowed_task_types")
            tid = c.submit_task("echo", payload="x")["task_id"]
            c.schedule_tasks()
            placed_on = c.task(tid)["device_id"]
            self.assertIsNotNone(placed_on)
            ids = {c.report_device(node_id, "linux", self.CAPS, ["echo", "sleep"])["device_id"]: node_id,
                   c.report_device(other_id, "linux", self.CAPS, ["echo", "sleep"])["device_id"]: other_id}
            holder = ids[placed_on]
            stranger = other_id if holder == node_id else node_id
            with self.assertRaises(lucidnode.Conflict):
                c.start_task(stranger, tid)
            with self.assertRaises(lucidnode.NotFound):
                c.start_task(holder, "no-such-task")
            with self.assertRaises(lucidnode.InvalidArgument) as cm:
                c.report_result(holder, tid, "done")
            self.assertEqual(cm.exception.field, "status")
            with self.assertRaises(lucidnode.Conflict):
                c.report_result(stranger, tid, "completed")
            c.start_task(holder, tid)
            self.assertEqual(c.report_result(holder, tid, "failed", error="boom", exit_code=2)["status"], "failed")
            self.assertEqual(c.task_result(tid)["error"], "boom")


class TestReadOnly(Base):
    def make_fleet(self):
        with self.open(payout_interval_ms=5) as c:
            a, _ = self.active_node(c, "alpha.example")
            b, key = self.active_node(c, "beta.example")
            c.report_stats(c.authenticate(key), cpu_usage=33.3, disk_usage=10)
            pool = c.create_pool("edge", max_nodes=5)
            c.add_to_pool(pool["uid"], a["uid"], 5)
            c.submit_payouts([{"node_id": a["uid"], "amount": "10.25", "wallet_address": WALLET},
                              {"node_id": b["uid"], "amount": "4.75", "wallet_address": WALLET},
                              {"node_id": b["uid"], "amount": "2"}], batch_id="fleet-1")
            c.process_payouts()
            c.seal_ledger()

    def test_read_only_without_key_file(self):
        self.make_fleet()
        os.unlink(self.db + ".key")
        with lucidnode.Cluster(self.db, read_only=True) as c:
            self.assertEqual(c.nodes()["total"], 2)
            self.assertTrue(c.verify_ledger()["ok"])
            with self.assertRaises(lucidnode.StorageError):
                c.join("gamma.example")
            with self.assertRaises(lucidnode.Unavailable):
                c.approve_code("ABCDE")  # looking a code up needs the key
        self.assertFalse(os.path.exists(self.db + ".key"))  # nothing was created

    def test_fleet_report_example(self):
        self.make_fleet()
        out = subprocess.run([sys.executable, os.path.join(REPO, "examples", "fleet_report.py"), self.db],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        text = out.stdout
        self.assertIn("nodes: 2", text)
        self.assertRegex(text, r"alpha\.example +active +\S+ +\S+ +edge")
        self.assertIn("pools: 1", text)
        self.assertRegex(text, r"edge +nodes 1 of 5")
        self.assertIn("payouts: 3", text)
        self.assertRegex(text, r"USDT +completed +2 payouts +15\b")
        self.assertRegex(text, r"USDT +failed +1 payouts +2\b")
        self.assertRegex(text, r"ledger: intact, \d+ blocks, 2 transactions, 0 pending")

    def test_fleet_report_missing_database(self):
        out = subprocess.run([sys.executable, os.path.join(REPO, "examples", "fleet_report.py"),
                              os.path.join(self.tmp.name, "absent.db")], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 3)
        self.assertIn("storage", out.stderr)


class TestPackage(unittest.TestCase):
    def test_version_and_type_hints(self):
        self.assertEqual(lucidnode.__version__, lucidnode.version())  # released together
        import typing
        hints = typing.get_type_hints(lucidnode.Cluster.join)
        self.assertIs(hints["return"], lucidnode.types.JoinResult)
        self.assertEqual(typing.get_type_hints(lucidnode.Cluster.node)["return"], lucidnode.types.Node)
        self.assertTrue(os.path.exists(os.path.join(os.path.dirname(lucidnode.__file__), "py.typed")))

    def test_import_without_the_library_then_a_clear_error(self):
        code = ("import lucidnode\n"
                "try:\n"
                "    lucidnode.Cluster('/nonexistent/x.db')\n"
                "except lucidnode.LibraryError as e:\n"
                "    print('LibraryError', e)\n")
        env = dict(os.environ, LUCIDNODE_LIBRARY="/nonexistent/liblucidnode.so.0")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)  # the import itself worked
        self.assertIn("LibraryError lucidnode: cannot load liblucidnode", out.stdout)
        self.assertIn("LUCIDNODE_LIBRARY", out.stdout)

    def test_not_the_library(self):
        env = dict(os.environ, LUCIDNODE_LIBRARY=ctypes_util_libc())
        code = "import lucidnode\ntry:\n    lucidnode.version()\nexcept lucidnode.LibraryError as e:\n    print(e)\n"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
        self.assertIn("is not liblucidnode", out.stdout, out.stderr)


def ctypes_util_libc():
    import ctypes.util
    return ctypes.util.find_library("c") or "libc.so.6"


class TestUsersAndSessions(Base):
    def test_login_through_a_mailer_refresh_logout(self):
        inbox = []
        got = threading.Event()

        def mailer(to, subject, body):
            inbox.append((to, subject, body))
            got.set()
            return True

        with lucidnode.Cluster(self.db, mailer=mailer, public_url="https://fleet.test") as c:
            user = c.create_user("grace@example.com", "grace", "Hopper-1906!", first_name="Grace", role="viewer")
            self.assertEqual(user["role"], "viewer")
            self.assertEqual(c.user(user["id"])["username"], "grace")
            with self.assertRaises(lucidnode.Conflict):
                c.create_user("grace@example.com", "grace2", "Hopper-1906!")
            with self.assertRaises(lucidnode.InvalidArgument) as e:
                c.create_user("grace@example.com", "grace3", "Hopper-1906!", role="queen")
            self.assertEqual(e.exception.field, "role")
            with self.assertRaises(lucidnode.NotFound):
                c.user("00000000-0000-0000-0000-000000000000")
            self.assertEqual(c.start_login("grace@example.com"), 300)
            self.assertTrue(got.wait(10))
            to, subject, body = inbox[0]
            self.assertEqual(to, "grace@example.com")
            self.assertIn("https://fleet.test/api/v1/auth/verify?email=", body)
            code = subject.rsplit(" ", 1)[1]
            with self.assertRaises(lucidnode.Unauthenticated):
                c.verify_login("grace@example.com", "000000" if code != "000000" else "111111")
            tokens = c.verify_login("grace@example.com", code)
            claims = c.verify_token(tokens["access_token"])
            self.assertEqual((claims["subject"], claims["role"], claims["session_id"]),
                             (user["id"], "viewer", tokens["session_id"]))
            fresh = c.refresh_session(tokens["refresh_token"])
            self.assertNotEqual(fresh["refresh_token"], tokens["refresh_token"])
            c.logout(fresh["session_id"])
            with self.assertRaises(lucidnode.Unauthenticated):
                c.verify_token(fresh["access_token"])

    def test_a_mailer_that_raises_does_not_break_the_cluster(self):
        def mailer(to, subject, body):
            raise RuntimeError("smtp down")

        with lucidnode.Cluster(self.db, mailer=mailer) as c:
            c.create_user("ada@example.com", "ada", "Lovelace-1815")
            self.assertEqual(c.start_login("ada@example.com"), 300)
            self.assertEqual(c.nodes()["total"], 0)  # still answering


class TestWorkflowsAndEvents(Base):
    def test_define_execute_status(self):
        data = os.path.join(self.tmp.name, "data")
        os.makedirs(data)
        script = os.path.join(data, "count.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\necho one; echo two\n")
        os.chmod(script, 0o755)
        with self.open(data_dir=data) as c:
            svc = c.create_standalone_service("count", "count.sh", timeout_seconds=30)
            self.assertEqual(svc["service_type"], "STANDALONE")
            with self.assertRaises(lucidnode.InvalidArgument) as e:
                c.define_workflow("bad", [{"service_id": svc["id"]}], [{"source": 0, "target": 5}])
            self.assertEqual(e.exception.field, "connections.0.target")
            wf = c.define_workflow("count", [{"service_id": svc["id"]}], description="one step")
            run = c.execute_workflow(wf["workflow_id"])
            deadline = time.time() + 30
            while run["status"] == "RUNNING" and time.time() < deadline:
                time.sleep(0.05)
                run = c.execution(run["id"])
            self.assertEqual(run["status"], "COMPLETED", run)
            self.assertEqual(run["jobs"][0]["stdout"], "one\ntwo\n")
            with self.assertRaises(lucidnode.NotFound):
                c.execution(987654)

    def test_subscribe_and_close(self):
        seen = []
        with self.open() as c:
            sub = c.subscribe(seen.append)
            c.join("evt.example")
            self.assertEqual([(e["kind"], e["payload"]) for e in seen], [("node_joined", {})])
            sub.close()
            sub.close()  # idempotent
            c.join("evt2.example")
            self.assertEqual(len(seen), 1)
            with c.subscribe(lambda e: 1 / 0):  # a raising handler is contained
                c.join("evt3.example")


if __name__ == "__main__":
    unittest.main()
