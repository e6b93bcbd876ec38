"""Issue 15, "Defaults and document deviations", node side (docs/decisions.md
"Issue 15: node removal, cordon, drain"): register-by-code takes query
parameters beside the body; a node's name in POST /api/v1/nodes is bounded
free text separate from its hostname; GET /api/v1/nodes/{id} gives
total_available_gb a number before any disk report."""
import unittest
import urllib.parse

from clustertest import RELAXED, Agent, caps
from lucidtest import ServerTestCase
from test_mgmt_nodes import MgmtAssertions


class RegisterByCodeQuery(ServerTestCase):
    server_args = RELAXED

    def approve(self, query=None, body=None, raw=None, token=None):
        path = "/api/v1/nodes/register-by-code"
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return self.server.request("POST", path, body, body=raw, token=token or self.admin,
                                   headers={"Content-Type": "application/json"} if raw is not None else None)

    def test_query_parameters_approve_like_the_body(self):
        j = self.server.join("rbc-query.example.com")
        r = self.approve({"code": j["registration_code"], "ip_address": "192.0.2.7"})
        self.assertEqual(r.status, 200, r)
        n = r.json()
        self.assertEqual(n["status"], "active", n)
        self.assertEqual(n["ip_address"], "192.0.2.7", n)
        self.assertEqual(n["hostname"], "rbc-query.example.com")
        # The agent collects its key as usual.
        r = self.server.collect(j)
        self.assertTrue(r.json()["api_key"], r)

    def test_lower_case_code_in_the_query_and_registration_code_alias(self):
        j = self.server.join("rbc-alias.example.com")
        r = self.approve({"registration_code": j["registration_code"].lower()})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["ip_address"], "", r)  # the join gave none, the approver neither

    def test_body_form_still_works_with_ip_address(self):
        j = self.server.join("rbc-body.example.com", ip_address="198.51.100.1")
        r = self.approve(body={"code": j["registration_code"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["ip_address"], "198.51.100.1", r)  # kept when the approver gives none

    def test_both_given_and_agreeing_is_fine(self):
        j = self.server.join("rbc-agree.example.com")
        code = j["registration_code"]
        r = self.approve({"code": code.lower(), "ip_address": "2001:db8::1"},
                         body={"code": code, "ip_address": "2001:db8::1"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["ip_address"], "2001:db8::1", r)

    def test_both_given_and_disagreeing_is_400_and_approves_nothing(self):
        j = self.server.join("rbc-disagree.example.com")
        other = self.server.join("rbc-disagree-2.example.com")
        r = self.approve({"code": j["registration_code"]}, body={"code": other["registration_code"]})
        self.assertIn("disagree", self.assertDetail(r, 400))
        r = self.approve({"code": j["registration_code"], "ip_address": "192.0.2.1"},
                         body={"ip_address": "192.0.2.2"})
        self.assertDetail(r, 400)
        for join in (j, other):
            r = self.server.request("GET", "/api/v1/nodes/status/%s" % join["request_id"])
            self.assertEqual(r.json()["status"], "pending", r)

    def test_errors(self):
        # No code anywhere: the body is required, as before.
        self.assertDetail(self.approve(), 400)
        self.assertValidation(self.approve(body={}), "code")
        # A malformed code or address from the query names the query.
        self.assertValidation(self.approve({"code": "!!"}), "code", where="query")
        j = self.server.join("rbc-badip.example.com")
        self.assertValidation(self.approve({"code": j["registration_code"], "ip_address": "999.1.1.1"}),
                              "ip_address", where="query")
        self.assertValidation(self.approve({"code": j["registration_code"], "ip_address": "x" * 500}),
                              "ip_address", where="query")
        r = self.server.request("GET", "/api/v1/nodes/status/%s" % j["request_id"])
        self.assertEqual(r.json()["status"], "pending", r)  # a refused approval leaves it pending
        self.assertDetail(self.approve({"code": "ZZZZZ"}), 404)
        # Who may call is unchanged: super_admin only.
        r = self.approve({"code": j["registration_code"]}, token=self.server.token(role="admin", sub="rbc-admin"))
        self.assertEqual(r.status, 403, r)
        self.assertEqual(self.server.request("POST", "/api/v1/nodes/register-by-code?code=" +
                                             j["registration_code"]).status, 401)


class FreeTextNames(MgmtAssertions, ServerTestCase):
    server_args = RELAXED

    def test_unicode_names_round_trip_and_leave_the_hostname_alone(self):
        name = "Küchenrechner 東京 №7 🚀"
        r = self.server.request("POST", "/api/v1/nodes", {"name": name}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        n = r.json()
        self.assertEqual(n["name"], name)
        self.assertEqual(n["hostname"], n["node_id"], n)  # a free-text name is no hostname
        self.assertEqual(self.node(n["node_id"])["name"], name)
        r = self.put("/api/v1/nodes/" + n["node_id"], {"name": "ノード・二"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.node(n["node_id"])["name"], "ノード・二")

    def test_hostname_given_beside_a_free_text_name(self):
        r = self.server.request("POST", "/api/v1/nodes", {"name": "Rack 4, slot 2", "hostname": "r4s2.example.com"},
                                token=self.admin)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["hostname"], "r4s2.example.com")
        self.assertEqual(r.json()["name"], "Rack 4, slot 2")

    def test_names_are_bounded_and_checked(self):
        ok = "é" * 100  # the document's Node.name maxLength
        r = self.server.request("POST", "/api/v1/nodes", {"name": ok}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        for bad in ("é" * 101, "x" * 5000, "", "tab\there"):
            r = self.server.request("POST", "/api/v1/nodes", {"name": bad}, token=self.admin)
            self.assertMgmtError(r, 400, "LUCID_ERR_1001", field="name")
        r = self.server.request("POST", "/api/v1/nodes", {"name": ok}, token=self.admin)
        self.assertMgmtError(r, 409, "LUCID_ERR_5007")  # names stay unique
        r = self.server.request("POST", "/api/v1/nodes", {"name": "bad host", "hostname": "bad host"},
                                token=self.admin)
        self.assertMgmtError(r, 400, "LUCID_ERR_1001", field="hostname")


class TotalAvailable(ServerTestCase):
    server_args = RELAXED

    def detail(self, node_id):
        r = self.server.request("GET", "/api/v1/nodes/%d" % node_id, token=self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_zero_before_anything_is_known(self):
        node_id, _ = self.server.join_and_approve("tag-zero.example.com", self.admin)
        v = self.detail(node_id)["total_available_gb"]
        self.assertIsInstance(v, (int, float))
        self.assertEqual(v, 0)
        # A pending request too.
        j = self.server.join("tag-pending.example.com")
        self.assertEqual(self.detail(int(j["request_id"]))["total_available_gb"], 0)

    def test_declared_hardware_then_device_then_disk_report(self):
        r = self.server.request("POST", "/api/v1/nodes",
                                {"name": "tag-declared", "hardware_info": {"storage_gb": 750}}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        nodes = self.server.request("GET", "/api/v1/nodes/?limit=5000", token=self.admin).json()
        node_id = [n["id"] for n in nodes if n["hostname"] == "tag-declared"][0]
        self.assertEqual(self.detail(node_id)["total_available_gb"], 750)
        # An agent's device report is used when nothing was declared.
        a = Agent(self.server, self.admin, "tag-device.example.com")
        a.register(capabilities=caps(storage=321.5))
        self.assertEqual(self.detail(a.node_id)["total_available_gb"], 321.5)
        # A disk report wins.
        self.assertEqual(self.server.report(a.key, disk_total_gb=1000).status, 200)
        self.assertEqual(self.detail(a.node_id)["total_available_gb"], 1000)


if __name__ == "__main__":
    unittest.main()
