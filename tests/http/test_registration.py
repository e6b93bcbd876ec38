"""node-registration.md: join requests, polling, approval by id and by code."""
import re
import time
import unittest

from lucidtest import ServerTestCase

CODE_RE = r"^[A-Z0-9]{5}$"
KEY_RE = r"^lnk_[A-Za-z0-9_-]{43}$"
SECRET_RE = r"^ljs_[A-Za-z0-9_-]{43}$"
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
        # The document's fields, plus the join secret (docs/decisions.md).
        self.assertEqual(set(j), {"request_id", "registration_code", "message", "join_secret"})
        self.assertRegex(j["join_secret"], SECRET_RE)
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
        b = self.server.join("repeat.example.com", ip_address="10.0.0.9", join_secret=a["join_secret"])
        self.assertEqual(a["request_id"], b["request_id"])
        self.assertEqual(a["registration_code"], b["registration_code"])
        self.assertEqual(b["message"], "Join request submitted. Give code %s to admin." % a["registration_code"])
        self.assertEqual(set(b), {"request_id", "registration_code", "message"})  # the secret is shown once

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
        r1 = self.server.collect(j)
        self.assertEqual(r1.status, 200, r1)
        body = r1.json()
        self.assertEqual(set(body), {"status", "api_key"})
        self.assertEqual(body["status"], "active")
        self.assertRegex(body["api_key"], KEY_RE)
        r2 = self.server.collect(j)
        self.assertEqual(self.assertDetail(r2, 404), "Registration code not found")
        r3 = self.server.poll_code(code.lower())
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
        # The original code still delivers the key (to its joiner).
        r = self.server.collect(j)
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
        poll = self.server.collect(j).json()
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
        self.assertEqual(self.server.collect(j).status, 200)
        self.assertDetail(self.register({"code": j["registration_code"]}), 404)


class JoinSecret(ServerTestCase):
    """Issue 12: the code and the key go only to the original joiner."""

    def test_rejoin_of_pending_hostname_without_secret_gets_no_code(self):
        j = self.server.join("victim.example.com")
        for body in ({"hostname": "victim.example.com"},
                     {"hostname": "VICTIM.example.com", "join_secret": None},
                     {"hostname": "victim.example.com", "join_secret": "ljs_" + "A" * 43},
                     {"hostname": "victim.example.com", "join_secret": j["join_secret"][:-1]}):
            with self.subTest(body=body):
                r = self.server.request("POST", "/api/v1/nodes/join-request", body)
                detail = self.assertDetail(r, 409)
                self.assertNotIn(j["registration_code"], r.text)
                self.assertIn("join_secret", detail)
        ok = self.server.join("victim.example.com", join_secret=j["join_secret"])
        self.assertEqual(ok["registration_code"], j["registration_code"])

    def test_join_secret_field_validated(self):
        for secret, field in ((12, "join_secret"), ("x" * 129, "join_secret"), ("a\nb", "join_secret")):
            with self.subTest(secret=secret):
                r = self.server.request("POST", "/api/v1/nodes/join-request",
                                        {"hostname": "val-secret.example.com", "join_secret": secret})
                if secret == "a\nb":  # a new request ignores it after the format check
                    self.assertEqual(r.status, 422, r)
                else:
                    self.assertValidation(r, field)

    def test_attacker_polling_a_known_code_gets_no_key_and_takes_nothing(self):
        j = self.server.join("takeover.example.com")
        code = j["registration_code"]
        self.assertEqual(self.server.request("POST", "/api/v1/nodes/approve/" + j["request_id"],
                                             token=self.admin).status, 200)
        # The attacker knows the code (pending hostnames and codes leak); polls first.
        for _ in range(3):
            r = self.server.poll_code(code)
            self.assertEqual((r.status, r.json()), (200, {"status": "active", "api_key": None}))
        r = self.server.poll_code(code, "ljs_" + "B" * 43)
        self.assertEqual(self.assertDetail(r, 403), "join_secret does not match this registration code")
        # The secret never travels in the URL: a query parameter is not honoured.
        r = self.server.request("GET", "/api/v1/nodes/status/code/%s?join_secret=%s" % (code, j["join_secret"]))
        self.assertIsNone(r.json()["api_key"])
        # The real agent still gets its key, once.
        r = self.server.collect(j)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json()), {"status", "api_key"})
        self.assertRegex(r.json()["api_key"], KEY_RE)
        self.assertEqual(self.server.report(r.json()["api_key"]).status, 200)
        self.assertDetail(self.server.collect(j), 404)

    def test_oversized_secret_header_is_a_validation_error(self):
        j = self.server.join("big-secret.example.com")
        r = self.server.poll_code(j["registration_code"], "s" * 200)
        self.assertValidation(r, "x-join-secret", where="header")

    def test_admin_created_node_needs_the_secret_that_came_with_its_code(self):
        r = self.server.request("POST", "/api/v1/nodes", {"name": "made.example.com"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        made = r.json()
        self.assertRegex(made["join_secret"], SECRET_RE)
        spy = self.server.poll_code(made["registration_code"])
        self.assertEqual(spy.json(), {"status": "active", "api_key": None})
        r = self.server.collect(made)
        self.assertRegex(r.json()["api_key"], KEY_RE)


class RegistrationRateLimit(ServerTestCase):
    server_args = ["--rate-join", "5"]

    def test_join_and_status_routes_limited_per_address(self):
        j = self.server.join("rl.example.com")  # 1
        for path in ("/api/v1/nodes/status/code/" + j["registration_code"],  # 2..5
                     "/api/v1/nodes/status/" + j["request_id"],
                     "/api/v1/nodes/status/code/ZZZZZ", "/api/v1/nodes/status/code/ZZZZY"):
            r = self.server.request("GET", path)
            self.assertIn(r.status, (200, 404), r)
            self.assertEqual(r.headers.get("x-ratelimit-limit"), "5")
        for method, path, body in (("GET", "/api/v1/nodes/status/code/" + j["registration_code"], None),
                                   ("GET", "/api/v1/nodes/status/" + j["request_id"], None),
                                   ("POST", "/api/v1/nodes/join-request", {"hostname": "rl2.example.com"})):
            with self.subTest(path=path):
                r = self.server.request(method, path, body)
                self.assertEqual(self.assertDetail(r, 429), "Rate limit exceeded")
                self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        # Authenticated routes of the document are not in this category.
        self.assertEqual(self.server.request("GET", "/api/v1/nodes/", token=self.admin).status, 200)
        # The bucket refills with time (the test clock moves the limiter's clock too).
        self.server.advance_clock(60, self.admin)
        self.assertEqual(self.server.request("GET", "/api/v1/nodes/status/" + j["request_id"]).status, 200)


class PendingExpiry(ServerTestCase):
    server_args = ["--join-ttl", "600"]

    def setUp(self):
        # The tests move the server's clock by hours: a token that outlives them.
        self.admin = self.server.token("super_admin", ttl="30d")

    def test_expired_pending_request_is_gone_and_its_hostname_free(self):
        j = self.server.join("expiring.example.com")
        self.server.advance_clock(599, self.admin)
        self.assertEqual(self.server.collect(j).json()["status"], "pending")
        self.server.advance_clock(2, self.admin)
        # Gone at once, sweep or not: code unknown, id unknown, not approvable.
        self.assertDetail(self.server.collect(j), 404)
        self.assertDetail(self.server.request("POST", "/api/v1/nodes/register-by-code",
                                              {"code": j["registration_code"]}, token=self.admin), 404)
        self.assertDetail(self.server.request("GET", "/api/v1/nodes/status/" + j["request_id"]), 404)
        # The executor's sweep (every second) removes the row: the list no longer shows it.
        deadline = time.time() + 10
        while True:
            hosts = [n["hostname"] for n in self.server.request("GET", "/api/v1/nodes/", token=self.admin).json()]
            if "expiring.example.com" not in hosts or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertNotIn("expiring.example.com", hosts)
        # The hostname is free: a new joiner (no secret) gets a new request.
        fresh = self.server.join("expiring.example.com")
        self.assertNotEqual(fresh["request_id"], j["request_id"])
        self.assertRegex(fresh["join_secret"], SECRET_RE)

    def test_approved_nodes_do_not_expire(self):
        nid, key = self.server.join_and_approve("stays.example.com", self.admin)
        self.server.advance_clock(3600, self.admin)
        self.assertEqual(self.server.report(key).status, 200)
        self.assertEqual(self.server.request("GET", "/api/v1/nodes/status/%d" % nid).json()["status"], "active")


if __name__ == "__main__":
    unittest.main()
