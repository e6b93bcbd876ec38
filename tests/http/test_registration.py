"""node-registration.md: join requests, polling, approval by id and by code."""
import re
import unittest

from lucidtest import ServerTestCase

CODE_RE = r"^[A-Z0-9]{5}$"
KEY_RE = r"^lnk_[A-Za-z0-9_-]{43}$"
UUID4_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
TIME_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"
NODE_RESPONSE_KEYS = {"id", "uuid", "hostname", "ip_address", "status", "is_master", "storage_quota_gb",
                      "storage_used_bytes", "health", "last_seen", "created_at", "approved_at"}


def unused_code(*issued):
    """A well-formed code that is not one of `issued`."""
    for c in ("ZZZZZ", "ZZZZY", "ZZZZX"):
        if c not in issued:
            return c


class JoinRequest(ServerTestCase):
    def join_raw(self, body):
        return self.server.request("POST", "/api/v1/nodes/join-request", body)

    def test_join_returns_request_id_code_and_message(self):
        r = self.join_raw({"hostname": "api.example.com", "ip_address": "192.168.1.100",
                           "system_info": "Ubuntu 22.04"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-type"), "application/json")
        j = r.json()
        self.assertEqual(set(j), {"request_id", "registration_code", "message"})
        self.assertIsInstance(j["request_id"], str)
        self.assertRegex(j["request_id"], r"^[1-9][0-9]*$")
        self.assertRegex(j["registration_code"], CODE_RE)
        self.assertEqual(j["message"], "Join request submitted. Give code %s to admin." % j["registration_code"])

    def test_join_stores_ip_and_system_info_as_pending(self):
        j = self.server.join("stored.example.com", ip_address="10.1.2.3", system_info="Debian 12")
        r = self.server.request("GET", "/api/v1/nodes/" + j["request_id"], token=self.admin)
        self.assertEqual(r.status, 200, r)
        n = r.json()
        self.assertEqual(n["id"], int(j["request_id"]))
        self.assertEqual(n["hostname"], "stored.example.com")
        self.assertEqual(n["ip_address"], "10.1.2.3")
        self.assertEqual(n["system_info"], "Debian 12")
        self.assertEqual(n["status"], "pending")
        self.assertIsNone(n["approved_at"])
        self.assertIsNone(n["last_seen"])
        self.assertEqual(n["health"], "offline")
        self.assertIs(n["is_master"], False)
        self.assertEqual(n["storage_quota_gb"], 100)
        self.assertRegex(n["uuid"], UUID4_RE)
        self.assertRegex(n["created_at"], TIME_RE)
        self.assertNotIn("api_key", n)

    def test_ipv6_address_accepted(self):
        j = self.server.join("v6.example.com", ip_address="2001:db8::1")
        r = self.server.request("GET", "/api/v1/nodes/" + j["request_id"], token=self.admin)
        self.assertEqual(r.json()["ip_address"], "2001:db8::1")

    def test_optional_fields_may_be_absent_or_null(self):
        r = self.join_raw({"hostname": "nulls.example.com", "ip_address": None, "system_info": None})
        self.assertEqual(r.status, 200, r)
        n = self.server.request("GET", "/api/v1/nodes/" + r.json()["request_id"], token=self.admin).json()
        self.assertEqual(n["ip_address"], "")
        self.assertEqual(n["system_info"], "")

    def test_same_hostname_while_pending_gives_same_code_and_id(self):
        a = self.server.join("repeat.example.com")
        b = self.server.join("repeat.example.com", ip_address="10.0.0.9")
        self.assertEqual(a["request_id"], b["request_id"])
        self.assertEqual(a["registration_code"], b["registration_code"])
        self.assertEqual(b["message"], "Join request submitted. Give code %s to admin." % a["registration_code"])

    def test_distinct_hostnames_get_distinct_ids_and_codes(self):
        a = self.server.join("distinct-a.example.com")
        b = self.server.join("distinct-b.example.com")
        self.assertNotEqual(a["request_id"], b["request_id"])
        self.assertNotEqual(a["registration_code"], b["registration_code"])
        self.assertEqual(int(b["request_id"]), int(a["request_id"]) + 1)

    def test_hostname_charset_letters_digits_dot_dash_underscore(self):
        r = self.join_raw({"hostname": "Node_01-a.B9.example"})
        self.assertEqual(r.status, 200, r)

    def test_hostname_of_253_chars_accepted_254_rejected(self):
        ok = ("a" * 63 + ".") * 3 + "b" * 61
        self.assertEqual(len(ok), 253)
        self.assertEqual(self.join_raw({"hostname": ok}).status, 200)
        self.assertValidation(self.join_raw({"hostname": ok + "c"}), "hostname")

    def test_hostname_missing_or_null_is_field_required(self):
        for body in ({}, {"hostname": None}, {"ip_address": "10.0.0.1"}):
            with self.subTest(body=body):
                d = self.assertValidation(self.join_raw(body), "hostname")
                self.assertEqual(d[0]["type"], "value_error.missing")
                self.assertEqual(d[0]["msg"], "field required")

    def test_hostname_empty_rejected(self):
        d = self.assertValidation(self.join_raw({"hostname": ""}), "hostname")
        self.assertEqual(d[0]["type"], "value_error")

    def test_hostname_wrong_type_rejected(self):
        for v in (123, True, ["a"], {"a": 1}):
            with self.subTest(v=v):
                self.assertValidation(self.join_raw({"hostname": v}), "hostname")

    def test_hostname_bad_characters_rejected(self):
        for h in ("has space.example.com", "a/b", "a:b", "a@b", "héllo.example.com", "例え.jp",
                  "a\u0000b", "a\nb", "a\tb", "*.example.com", "a;b", "a%20b", "\u202ex.com"):
            with self.subTest(h=h):
                self.assertValidation(self.join_raw({"hostname": h}), "hostname")

    def test_ip_address_invalid_rejected(self):
        for ip in ("999.1.1.1", "abc", "1.2.3", "::g", "192.168.1.1/24", "1.2.3.4 ", "example.com",
                   "1" * 46):
            with self.subTest(ip=ip):
                self.assertValidation(self.join_raw({"hostname": "badip.example.com", "ip_address": ip}),
                                      "ip_address")
        self.assertValidation(self.join_raw({"hostname": "badip.example.com", "ip_address": 10}), "ip_address")

    def test_system_info_limits(self):
        self.assertEqual(self.join_raw({"hostname": "si-ok.example.com", "system_info": "x" * 1024}).status, 200)
        self.assertValidation(self.join_raw({"hostname": "si-long.example.com", "system_info": "x" * 1025}),
                              "system_info")
        self.assertValidation(self.join_raw({"hostname": "si-ctl.example.com", "system_info": "a\u0001b"}),
                              "system_info")
        self.assertValidation(self.join_raw({"hostname": "si-type.example.com", "system_info": 5}),
                              "system_info")

    def test_rejected_join_creates_nothing(self):
        before = self.server.request("GET", "/api/v1/nodes/", token=self.admin).json()
        self.assertValidation(self.join_raw({"hostname": "ok.example.com", "ip_address": "nope"}), "ip_address")
        after = self.server.request("GET", "/api/v1/nodes/", token=self.admin).json()
        self.assertEqual(len(after), len(before))
        self.assertNotIn("ok.example.com", [n["hostname"] for n in after])


class StatusPolling(ServerTestCase):
    def test_poll_pending_by_code(self):
        j = self.server.join("poll.example.com")
        r = self.server.request("GET", "/api/v1/nodes/status/code/" + j["registration_code"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"status": "pending", "api_key": None})

    def test_poll_code_is_case_insensitive(self):
        j = self.server.join("lower.example.com")
        r = self.server.request("GET", "/api/v1/nodes/status/code/" + j["registration_code"].lower())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"status": "pending", "api_key": None})

    def test_poll_unknown_code_404(self):
        j = self.server.join("other.example.com")
        r = self.server.request("GET", "/api/v1/nodes/status/code/" + unused_code(j["registration_code"]))
        self.assertEqual(self.assertDetail(r, 404), "Registration code not found")

    def test_poll_malformed_code_422(self):
        for code in ("ABC", "ABCDEF", "AB-CD", "AB%20D", "ABCD%C3%A9", "ACTIV"[:4]):
            with self.subTest(code=code):
                r = self.server.request("GET", "/api/v1/nodes/status/code/" + code)
                d = self.assertValidation(r)
                self.assertEqual(d[0]["type"], "value_error")

    def test_poll_malformed_code_loc_names_the_path_parameter(self):
        # The code is a path parameter: FastAPI's convention is loc ["path", "code"].
        r = self.server.request("GET", "/api/v1/nodes/status/code/ABC")
        self.assertValidation(r, "code", where="path")

    def test_poll_active_marker_is_not_a_code(self):
        # "ACTIVE" (what join answers for an active hostname) is 6 chars: malformed, not a lookup.
        r = self.server.request("GET", "/api/v1/nodes/status/code/ACTIVE")
        self.assertEqual(r.status, 422, r)

    def test_status_by_request_id_pending(self):
        j = self.server.join("byid.example.com")
        r = self.server.request("GET", "/api/v1/nodes/status/" + j["request_id"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"request_id": j["request_id"], "status": "pending"})

    def test_status_by_request_id_never_returns_a_key(self):
        nid, _ = self.server.join_and_approve("byid-active.example.com", self.admin)
        r = self.server.request("GET", "/api/v1/nodes/status/%d" % nid)
        self.assertEqual(r.json(), {"request_id": str(nid), "status": "active"})

    def test_status_by_request_id_unknown_or_not_numeric_404(self):
        for rid in ("999999", "0", "-1", "abc", "1.5", "99999999999999999999999", "1e3", "%201"):
            with self.subTest(rid=rid):
                r = self.server.request("GET", "/api/v1/nodes/status/" + rid)
                self.assertEqual(self.assertDetail(r, 404), "Join request not found")


class Approval(ServerTestCase):
    def approve(self, node_id, token=None):
        return self.server.request("POST", "/api/v1/nodes/approve/%s" % node_id, token=token or self.admin)

    def test_approve_returns_node_response(self):
        j = self.server.join("approve.example.com", ip_address="192.168.1.100")
        r = self.approve(j["request_id"])
        self.assertEqual(r.status, 200, r)
        n = r.json()
        self.assertEqual(set(n), NODE_RESPONSE_KEYS)
        self.assertEqual(n["id"], int(j["request_id"]))
        self.assertRegex(n["uuid"], UUID4_RE)
        self.assertEqual(n["hostname"], "approve.example.com")
        self.assertEqual(n["ip_address"], "192.168.1.100")
        self.assertEqual(n["status"], "active")
        self.assertIs(n["is_master"], False)
        self.assertEqual(n["storage_quota_gb"], 100)
        self.assertEqual(n["storage_used_bytes"], 0)
        self.assertEqual(n["health"], "offline")
        self.assertIsNone(n["last_seen"])
        self.assertRegex(n["created_at"], TIME_RE)
        self.assertRegex(n["approved_at"], TIME_RE)
        self.assertGreaterEqual(n["approved_at"], n["created_at"])

    def test_key_collected_once_then_code_cleared(self):
        j = self.server.join("collect.example.com")
        code = j["registration_code"]
        self.assertEqual(self.approve(j["request_id"]).status, 200)
        r1 = self.server.request("GET", "/api/v1/nodes/status/code/" + code)
        self.assertEqual(r1.status, 200, r1)
        body = r1.json()
        self.assertEqual(set(body), {"status", "api_key"})
        self.assertEqual(body["status"], "active")
        self.assertRegex(body["api_key"], KEY_RE)
        r2 = self.server.request("GET", "/api/v1/nodes/status/code/" + code)
        self.assertEqual(self.assertDetail(r2, 404), "Registration code not found")
        r3 = self.server.request("GET", "/api/v1/nodes/status/code/" + code.lower())
        self.assertDetail(r3, 404)
        # The key works.
        self.assertEqual(self.server.report(body["api_key"]).status, 200)
        # The status by id stays available.
        r4 = self.server.request("GET", "/api/v1/nodes/status/" + j["request_id"])
        self.assertEqual(r4.json(), {"request_id": j["request_id"], "status": "active"})

    def test_keys_are_unique_per_node(self):
        _, k1 = self.server.join_and_approve("uniq-1.example.com", self.admin)
        _, k2 = self.server.join_and_approve("uniq-2.example.com", self.admin)
        self.assertNotEqual(k1, k2)

    def test_approve_twice_409(self):
        j = self.server.join("twice.example.com")
        self.assertEqual(self.approve(j["request_id"]).status, 200)
        r = self.approve(j["request_id"])
        self.assertEqual(self.assertDetail(r, 409), "Node is already active")

    def test_approve_unknown_404(self):
        for nid in ("999999", "0", "-3", "abc", "9223372036854775808"):
            with self.subTest(nid=nid):
                self.assertEqual(self.assertDetail(self.approve(nid), 404), "Node not found")

    def test_join_for_active_hostname_answers_active(self):
        nid, _ = self.server.join_and_approve("already.example.com", self.admin)
        r = self.server.request("POST", "/api/v1/nodes/join-request", {"hostname": "already.example.com"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"request_id": str(nid), "registration_code": "ACTIVE",
                                    "message": "Node is already registered and active."})

    def test_join_for_approved_but_uncollected_hostname_answers_active(self):
        j = self.server.join("uncollected.example.com")
        self.assertEqual(self.approve(j["request_id"]).status, 200)
        again = self.server.join("uncollected.example.com")
        self.assertEqual(again["registration_code"], "ACTIVE")
        self.assertEqual(again["request_id"], j["request_id"])
        # The original code still delivers the key.
        r = self.server.request("GET", "/api/v1/nodes/status/code/" + j["registration_code"])
        self.assertEqual(r.json()["status"], "active")
        self.assertRegex(r.json()["api_key"], KEY_RE)

    def test_approve_does_not_touch_other_pending_nodes(self):
        a = self.server.join("iso-a.example.com")
        b = self.server.join("iso-b.example.com")
        self.assertEqual(self.approve(a["request_id"]).status, 200)
        r = self.server.request("GET", "/api/v1/nodes/status/code/" + b["registration_code"])
        self.assertEqual(r.json(), {"status": "pending", "api_key": None})


class RegisterByCode(ServerTestCase):
    def register(self, body, token=None):
        return self.server.request("POST", "/api/v1/nodes/register-by-code", body, token=token or self.admin)

    def test_register_by_code_approves(self):
        j = self.server.join("bycode.example.com", ip_address="10.9.8.7")
        r = self.register({"code": j["registration_code"]})
        self.assertEqual(r.status, 200, r)
        n = r.json()
        self.assertEqual(set(n), NODE_RESPONSE_KEYS)
        self.assertEqual(n["id"], int(j["request_id"]))
        self.assertEqual(n["hostname"], "bycode.example.com")
        self.assertEqual(n["ip_address"], "10.9.8.7")
        self.assertEqual(n["status"], "active")
        self.assertRegex(n["approved_at"], TIME_RE)
        poll = self.server.request("GET", "/api/v1/nodes/status/code/" + j["registration_code"]).json()
        self.assertEqual(poll["status"], "active")
        self.assertRegex(poll["api_key"], KEY_RE)

    def test_registration_code_alias_and_lower_case(self):
        j = self.server.join("alias.example.com")
        r = self.register({"registration_code": j["registration_code"].lower()})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["id"], int(j["request_id"]))
        self.assertEqual(r.json()["status"], "active")

    def test_unknown_code_404(self):
        j = self.server.join("unk.example.com")
        r = self.register({"code": unused_code(j["registration_code"])})
        self.assertEqual(self.assertDetail(r, 404), "No pending node with that registration code")
        # The pending node is untouched.
        self.assertEqual(self.server.request("GET", "/api/v1/nodes/status/" + j["request_id"]).json()["status"],
                         "pending")

    def test_code_missing_422(self):
        for body in ({}, {"code": None}, {"registration_code": None}, {"hostname": "x"}):
            with self.subTest(body=body):
                d = self.assertValidation(self.register(body), "code")
                self.assertEqual(d[0]["type"], "value_error.missing")

    def test_code_malformed_422(self):
        for code in ("", "ABC", "ABCDEF", "AB CD", "ÄBCDE", "A" * 17):
            with self.subTest(code=code):
                self.assertValidation(self.register({"code": code}), "code")
        for code in (12345, True, ["ABCDE"]):
            with self.subTest(code=code):
                self.assertValidation(self.register({"code": code}), "code")

    def test_code_of_approved_node_409_until_collected_then_404(self):
        j = self.server.join("again.example.com")
        self.assertEqual(self.register({"code": j["registration_code"]}).status, 200)
        self.assertEqual(self.assertDetail(self.register({"code": j["registration_code"]}), 409),
                         "Node is already active")
        self.assertEqual(self.server.request("GET", "/api/v1/nodes/status/code/" + j["registration_code"]).status,
                         200)
        self.assertDetail(self.register({"code": j["registration_code"]}), 404)


if __name__ == "__main__":
    unittest.main()
