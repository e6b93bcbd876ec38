"""node-management.md, the node lifecycle: POST /nodes/{node_id}/start and /stop,
the status PUT may set, and the asynchronous steps (stopping -> inactive on the
next sweep; starting -> active on the first stats report, or -> error when no
report arrives within the start timeout of 90 s, driven by the test clock)."""
import time
import unittest

from lucidtest import ServerTestCase
from test_mgmt_nodes import (MgmtAssertions, TIME_RE, collect_key, mgmt_create, parse_time)

START_TIMEOUT = 90  # Options::nodes.start_timeout


class MgmtLifecycle(MgmtAssertions, ServerTestCase):

    def now(self):
        return parse_time(self.server.advance_clock(0, self.admin)["now"])

    def joined(self, hostname, report=False):
        """An approved node (starting, or active after one report): (uid, key)."""
        _, key = self.server.join_and_approve(hostname, self.admin)
        if report:
            r = self.server.report(key)
            self.assertEqual(r.status, 200, r)
        return self.node_of(hostname)["node_id"], key

    def created(self, name):
        """A node created by POST /nodes (inactive) with its collected key: (uid, key)."""
        n = mgmt_create(self.server, self.admin, {"name": name})
        return n["node_id"], collect_key(self.server, n)

    def start(self, uid):
        return self.post("/api/v1/nodes/%s/start" % uid)

    def stop(self, uid):
        return self.post("/api/v1/nodes/%s/stop" % uid)

    def set_status(self, uid, status):
        return self.put("/api/v1/nodes/" + uid, {"status": status})

    def listed(self, status):
        r = self.get("/api/v1/nodes?limit=100&status=" + status)
        self.assertEqual(r.status, 200, r)
        return [n["node_id"] for n in r.json()["nodes"]]

    def assertChange(self, r, uid, status, at_key, before, after):
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(set(body), {"node_id", "status", at_key}, body)
        self.assertEqual(body["node_id"], uid)
        self.assertEqual(body["status"], status)
        self.assertRegex(body[at_key], TIME_RE)
        self.assertTrue(before <= parse_time(body[at_key]) <= after, (before, body, after))
        return body

    # ---- tests ----

    def test_approved_node_is_starting_until_its_first_report(self):
        uid, key = self.joined("lc-approved.example.com")
        n = self.node(uid)
        self.assertEqual((n["status"], n["registration_status"]), ("starting", "active"))
        self.assertIn(uid, self.listed("starting"))
        self.assertEqual(self.server.report(key, cpu_usage=3).status, 200)
        n = self.node(uid)
        self.assertEqual(n["status"], "active")
        self.assertRegex(n["last_heartbeat"], TIME_RE)
        self.assertIn(uid, self.listed("active"))
        self.assertNotIn(uid, self.listed("starting"))
        self.assertEqual(self.server.report(key, cpu_usage=4).status, 200)
        self.assertEqual(self.node(uid)["status"], "active")

    def test_stop_active_node_then_inactive_after_sweep(self):
        uid, key = self.joined("lc-stop.example.com", report=True)
        self.assertEqual(self.node(uid)["status"], "active")
        before = self.now()
        r = self.stop(uid)
        after = self.now()
        self.assertChange(r, uid, "stopping", "stopped_at", before, after)
        # The sweep (each second) completes the stop.
        self.assertIn(self.node(uid)["status"], ("stopping", "inactive"))
        n = self.wait_status(uid, "inactive")
        self.assertIn(uid, self.listed("inactive"))
        # Stats from a stopped node do not start it again.
        self.assertEqual(self.server.report(key, cpu_usage=9).status, 200)
        time.sleep(0.2)
        self.assertEqual(self.node(uid)["status"], "inactive")
        # Stopping it again: 5003, nothing changes.
        e = self.assertMgmtError(self.stop(uid), 400, "LUCID_ERR_5003")
        self.assertIn("inactive", e["message"])
        self.assertEqual(self.node(uid)["status"], "inactive")
        self.assertEqual(self.node(uid)["name"], n["name"])

    def test_stop_while_starting(self):
        uid, key = self.joined("lc-stop-starting.example.com")
        r = self.stop(uid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "stopping")
        # A second stop before or after the sweep is refused.
        self.assertMgmtError(self.stop(uid), 400, "LUCID_ERR_5003")
        self.wait_status(uid, "inactive")
        self.assertEqual(self.server.report(key).status, 200)
        self.assertEqual(self.node(uid)["status"], "inactive")

    def test_start_inactive_node_then_first_report_activates(self):
        uid, key = self.created("lc-start")
        self.assertEqual(self.node(uid)["status"], "inactive")
        before = self.now()
        r = self.start(uid)
        after = self.now()
        self.assertChange(r, uid, "starting", "started_at", before, after)
        n = self.node(uid)
        self.assertEqual(n["status"], "starting")
        self.assertIn(uid, self.listed("starting"))
        self.assertEqual(self.server.report(key, cpu_usage=50).status, 200)
        self.assertEqual(self.node(uid)["status"], "active")
        # stop -> inactive -> start -> active again.
        self.assertEqual(self.stop(uid).status, 200)
        self.wait_status(uid, "inactive")
        self.assertEqual(self.start(uid).json()["status"], "starting")
        self.assertEqual(self.server.report(key).status, 200)
        self.assertEqual(self.node(uid)["status"], "active")

    def test_start_when_active_or_starting_is_refused(self):
        active, _ = self.joined("lc-active.example.com", report=True)
        before = self.node(active)
        e = self.assertMgmtError(self.start(active), 400, "LUCID_ERR_5003")
        self.assertIn("active", e["message"])
        self.assertEqual(self.node(active), before)
        starting, _ = self.joined("lc-starting.example.com")
        before = self.node(starting)
        self.assertMgmtError(self.start(starting), 400, "LUCID_ERR_5003")
        self.assertEqual(self.node(starting), before)
        inactive, _ = self.created("lc-inactive")
        before = self.node(inactive)
        self.assertMgmtError(self.stop(inactive), 400, "LUCID_ERR_5003")
        self.assertEqual(self.node(inactive), before)

    def test_pending_node_cannot_start(self):
        self.server.join("lc-pending.example.com")
        n = self.node_of("lc-pending.example.com")
        self.assertEqual((n["status"], n["registration_status"]), ("inactive", "pending"))
        e = self.assertMgmtError(self.start(n["node_id"]), 400, "LUCID_ERR_5003")
        self.assertIn("approved", e["message"])
        self.assertMgmtError(self.stop(n["node_id"]), 400, "LUCID_ERR_5003")
        self.assertEqual(self.node(n["node_id"]), n)

    def test_approval_does_not_take_a_node_out_of_maintenance(self):
        # maintenance is left only by PUT status=inactive (docs/decisions.md); a
        # pending node may be put in maintenance, and approving it must not move
        # it to starting behind the operator's back.
        j = self.server.join("lc-pending-maint.example.com")
        uid = self.node_of("lc-pending-maint.example.com")["node_id"]
        r = self.set_status(uid, "maintenance")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["status"], r.json()["registration_status"]), ("maintenance", "pending"))
        r = self.post("/api/v1/nodes/approve/%s" % j["request_id"])
        self.assertEqual(r.status, 200, r)
        n = self.node(uid)
        self.assertEqual((n["status"], n["registration_status"]), ("maintenance", "active"))

    def test_start_timeout_error_and_recovery(self):
        created, ckey = self.created("lc-timeout")
        self.assertEqual(self.start(created).status, 200)
        approved, akey = self.joined("lc-timeout-approved.example.com")  # starting since its approval
        reported, rkey = self.created("lc-timeout-reported")
        self.assertEqual(self.start(reported).status, 200)
        self.assertEqual(self.server.report(rkey).status, 200)  # active before the deadline
        # Well inside the timeout: still starting after a sweep has run.
        self.server.advance_clock(START_TIMEOUT - 30, self.admin)
        time.sleep(1.5)
        self.assertEqual(self.node(created)["status"], "starting")
        self.assertEqual(self.node(approved)["status"], "starting")
        # Past it: error.
        self.server.advance_clock(40, self.admin)
        self.wait_status(created, "error")
        self.wait_status(approved, "error")
        self.assertEqual(self.node(reported)["status"], "active")
        errored = self.listed("error")
        self.assertIn(created, errored)
        self.assertIn(approved, errored)
        # A late report does not revive an errored node.
        self.assertEqual(self.server.report(akey).status, 200)
        self.assertEqual(self.node(approved)["status"], "error")
        # start is allowed from error; the next report activates it.
        r = self.start(created)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "starting")
        self.assertEqual(self.node(created)["status"], "starting")
        self.assertEqual(self.server.report(ckey).status, 200)
        self.assertEqual(self.node(created)["status"], "active")
        # maintenance from error, then inactive, then start.
        r = self.set_status(approved, "maintenance")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "maintenance")
        self.assertEqual(self.set_status(approved, "inactive").json()["status"], "inactive")
        self.assertEqual(self.start(approved).json()["status"], "starting")

    def test_maintenance_transitions(self):
        # From active.
        uid, key = self.joined("lc-maint.example.com", report=True)
        r = self.set_status(uid, "maintenance")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "maintenance")
        self.assertIn(uid, self.listed("maintenance"))
        before = self.node(uid)
        e = self.assertMgmtError(self.start(uid), 400, "LUCID_ERR_5003")
        self.assertIn("maintenance", e["message"])
        self.assertMgmtError(self.stop(uid), 400, "LUCID_ERR_5003")
        self.assertEqual(self.server.report(key, cpu_usage=70).status, 200)
        after = self.node(uid)
        self.assertEqual(after["status"], "maintenance")
        self.assertEqual(after["updated_at"], before["updated_at"])
        # maintenance -> inactive (PUT), then start.
        self.assertEqual(self.set_status(uid, "inactive").json()["status"], "inactive")
        self.assertEqual(self.start(uid).json()["status"], "starting")
        # From inactive.
        idle, _ = self.created("lc-maint-idle")
        self.assertEqual(self.set_status(idle, "maintenance").json()["status"], "maintenance")
        self.assertEqual(self.set_status(idle, "maintenance").status, 200)  # unchanged: no transition
        self.assertEqual(self.set_status(idle, "inactive").json()["status"], "inactive")
        self.assertEqual(self.set_status(idle, "inactive").status, 200)

    def test_put_status_refused_from_other_states(self):
        starting, _ = self.joined("lc-put-starting.example.com")
        for status in ("maintenance", "inactive"):
            with self.subTest(frm="starting", to=status):
                e = self.assertMgmtError(self.set_status(starting, status), 400, "LUCID_ERR_5003")
                self.assertIn("starting", e["message"])
        self.assertEqual(self.node(starting)["status"], "starting")
        active, _ = self.joined("lc-put-active.example.com", report=True)
        e = self.assertMgmtError(self.set_status(active, "inactive"), 400, "LUCID_ERR_5003")
        self.assertIn("active", e["message"])
        self.assertEqual(self.node(active)["status"], "active")
        # A refused transition applies none of the request.
        self.assertMgmtError(self.put("/api/v1/nodes/" + active, {"status": "inactive", "name": "lc-renamed"}), 400,
                             "LUCID_ERR_5003")
        self.assertEqual(self.node(active)["name"], "lc-put-active.example.com")

    def test_operator_may_start_and_stop(self):
        op = self.server.token(role="node_operator", sub="lc-operator")
        uid, key = self.created("lc-op")
        r = self.post("/api/v1/nodes/%s/start" % uid, token=op)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.server.report(key).status, 200)
        r = self.post("/api/v1/nodes/%s/stop" % uid, token=op)
        self.assertEqual(r.status, 200, r)
        self.wait_status(uid, "inactive")
        user = self.server.token(role="user", sub="lc-user")
        self.assertMgmtError(self.post("/api/v1/nodes/%s/start" % uid, token=user), 403, "LUCID_ERR_2004")
        self.assertEqual(self.node(uid)["status"], "inactive")



class MgmtRestart(MgmtAssertions, ServerTestCase):
    """Lifecycle, names, hardware and pool membership survive a server restart."""

    def test_state_survives_restart(self):
        s, a = self.server, self.admin
        _, active_key = s.join_and_approve("rs-active.example.com", a)
        self.assertEqual(s.report(active_key, cpu_usage=17).status, 200)
        _, starting_key = s.join_and_approve("rs-starting.example.com", a)
        pool = self.post("/api/v1/nodes/pools", {"name": "rs-pool", "max_nodes": 5}).json()["pool_id"]
        maint = mgmt_create(s, a, {"name": "rs-maint", "node_type": "storage", "hardware_info": {"cpu_cores": 3},
                                   "location": {"country": "SE", "latitude": 59.3}, "pool_id": pool})
        self.assertEqual(self.put("/api/v1/nodes/" + maint["node_id"], {"status": "maintenance"}).status, 200)
        idle = mgmt_create(s, a, {"name": "rs-idle"})
        r = self.post("/api/v1/nodes/pools/%s/nodes" % pool, {"node_id": idle["node_id"], "priority": 7})
        self.assertEqual(r.status, 200, r)
        before = self.get("/api/v1/nodes?limit=100").json()
        pools_before = self.get("/api/v1/nodes/pools").json()
        self.assertEqual([n["status"] for n in before["nodes"]], ["active", "starting", "maintenance", "inactive"])
        self.assertEqual(s.stop(), 0)
        s.start()
        after = self.get("/api/v1/nodes?limit=100").json()
        self.assertEqual(after, before)
        self.assertEqual(self.get("/api/v1/nodes/pools").json(), pools_before)
        # The restarted server carries on: the starting node activates on its report.
        self.assertEqual(s.report(starting_key).status, 200)
        self.assertEqual(self.node_of("rs-starting.example.com")["status"], "active")
        self.assertMgmtError(self.post("/api/v1/nodes/%s/start" % maint["node_id"]), 400, "LUCID_ERR_5003")
        self.assertEqual(self.post("/api/v1/nodes/%s/start" % idle["node_id"]).json()["status"], "starting")

if __name__ == "__main__":
    unittest.main()
