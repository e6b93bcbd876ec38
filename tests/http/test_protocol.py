"""HTTP and JSON edge cases: malformed bodies, sizes, unknown paths and
methods, non-object JSON, long strings, odd numbers, unicode."""
import json
import unittest

from lucidtest import ServerTestCase, parse_raw_response, raw_exchange

MIB = 1024 * 1024


class Protocol(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.node, cls.key = cls.server.join_and_approve("proto.example.com", cls.admin)
        # Every route that reads a JSON body, with the credentials it needs and a valid body.
        cls.json_routes = [
            ("POST", "/api/v1/nodes/join-request", {}, {"hostname": "proto-ok.example.com"}),
            ("POST", "/api/v1/nodes/register-by-code", {"Authorization": "Bearer " + cls.admin}, {"code": "ZZZZZ"}),
            ("PUT", "/api/v1/nodes/%d/quota" % cls.node, {"Authorization": "Bearer " + cls.admin},
             {"storage_quota_gb": 100}),
            ("POST", "/api/v1/stats/", {"X-API-KEY": cls.key}, {"cpu_usage": 1, "disk_usage": 1, "active_backups": 0}),
            ("POST", "/api/v1/stats/sites", {"X-API-KEY": cls.key}, {"sites": []}),
            ("POST", "/api/v1/stats/backups", {"X-API-KEY": cls.key}, {"filename": "p.tar", "size_bytes": 1}),
            ("POST", "/api/v1/_test/clock/advance", {"Authorization": "Bearer " + cls.admin}, {"seconds": 0}),
        ]

    def send(self, method, path, headers, body):
        h = dict(headers)
        h.setdefault("Content-Type", "application/json")
        return self.server.request(method, path, body=body, headers=h)

    def assertJsonError(self, r, status):
        self.assertEqual(r.headers.get("content-type"), "application/json", r)
        return self.assertDetail(r, status)

    def test_malformed_json_400_everywhere(self):
        bodies = ["{bad", "{", "}", '{"a":1', '{"a":1} trailing', '{"a":1}{"b":2}', "{'a': 1}", '{"a":1,}',
                  '{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', '{"a": undefined}', '{"a": 01}',
                  '{"a": .5}', '{"a": "unterminated}', '{"a": "\\x41"}', "\x00", "nul\x00l", "//c\n{}"]
        for method, path, headers, _ in self.json_routes:
            for body in bodies:
                with self.subTest(path=path, body=body):
                    self.assertJsonError(self.send(method, path, headers, body), 400)

    def test_empty_body_400_everywhere(self):
        for method, path, headers, _ in self.json_routes:
            with self.subTest(path=path):
                r = self.send(method, path, headers, b"")
                self.assertEqual(self.assertJsonError(r, 400), "Request body is empty; a JSON object is expected")
                r = self.server.request(method, path, headers=dict(headers))  # no body, no Content-Length
                self.assertJsonError(r, 400)

    def test_whitespace_only_body_400(self):
        for method, path, headers, _ in self.json_routes:
            with self.subTest(path=path):
                self.assertJsonError(self.send(method, path, headers, "  \n "), 400)

    def test_json_that_is_not_an_object_422(self):
        for method, path, headers, _ in self.json_routes:
            for body in ("[]", '[{"hostname": "a"}]', '"text"', "1", "-2.5", "null", "true", "false"):
                with self.subTest(path=path, body=body):
                    r = self.send(method, path, headers, body)
                    d = self.assertValidation(r)
                    self.assertEqual(d[0]["loc"], ["body"])
                    self.assertEqual(d[0]["type"], "value_error")

    def test_valid_bodies_control(self):
        for method, path, headers, body in self.json_routes:
            with self.subTest(path=path):
                r = self.send(method, path, headers, json.dumps(body))
                self.assertIn(r.status, (200, 201, 404), r)  # register-by-code of ZZZZZ: 404
                self.assertNotEqual(r.status // 100, 5)

    def test_unknown_fields_ignored_and_whitespace_allowed(self):
        body = '\n {\n "hostname" : "ws.example.com" ,\t"extra": [1, {"x": null}], "hostname2": 5 } \n'
        r = self.send("POST", "/api/v1/nodes/join-request", {}, body)
        self.assertEqual(r.status, 200, r)

    def test_escaped_strings_decoded(self):
        r = self.send("POST", "/api/v1/nodes/join-request", {}, '{"hostname": "esc\\u002eexample\\u002ecom"}')
        self.assertEqual(r.status, 200, r)
        n = self.server.request("GET", "/api/v1/nodes/" + r.json()["request_id"], token=self.admin).json()
        self.assertEqual(n["hostname"], "esc.example.com")

    # ---- sizes ----

    def test_body_over_1mib_413_everywhere(self):
        big = '{"pad": "' + "x" * MIB + '"}'
        for method, path, headers, _ in self.json_routes:
            with self.subTest(path=path):
                r = self.send(method, path, headers, big)
                self.assertEqual(self.assertJsonError(r, 413), "request body too large")

    def test_exactly_1mib_accepted_one_more_byte_413(self):
        base = json.dumps({"hostname": "onemib.example.com", "pad": ""})
        body = json.dumps({"hostname": "onemib.example.com", "pad": "x" * (MIB - len(base))})
        self.assertEqual(len(body), MIB)
        r = self.send("POST", "/api/v1/nodes/join-request", {}, body)
        self.assertEqual(r.status, 200, r)
        body = json.dumps({"hostname": "onemib.example.com", "pad": "x" * (MIB - len(base) + 1)})
        self.assertJsonError(self.send("POST", "/api/v1/nodes/join-request", {}, body), 413)

    def test_413_decided_from_content_length_before_the_body(self):
        # Only the head is sent; the answer must come without the body.
        head = (b"POST /api/v1/nodes/join-request HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % (MIB + 1))
        r = parse_raw_response(raw_exchange(self.server, head, timeout=3))
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.json(), {"detail": "request body too large"})
        head = head.replace(b"%d" % (MIB + 1), b"99999999999999999999")
        r = parse_raw_response(raw_exchange(self.server, head, timeout=3))
        self.assertIn(r.status, (400, 413), r)
        self.assertIn("detail", r.json())

    def test_413_on_agent_route_without_key(self):
        # The size limit holds before authentication too.
        head = (b"POST /api/v1/stats/ HTTP/1.1\r\nHost: t\r\nContent-Length: 5000000\r\n\r\n")
        r = parse_raw_response(raw_exchange(self.server, head, timeout=3))
        self.assertEqual(r.status, 413, r)

    def test_chunked_body_over_1mib_413(self):
        chunk = b"x" * 65536
        data = b"POST /api/v1/nodes/join-request HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        data += (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 17 + b"0\r\n\r\n"
        r = parse_raw_response(raw_exchange(self.server, data, timeout=5))
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.json(), {"detail": "request body too large"})

    def test_small_chunked_body_accepted(self):
        payload = json.dumps({"hostname": "chunked.example.com"}).encode()
        data = b"POST /api/v1/nodes/join-request HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n" \
               b"Connection: close\r\n\r\n"
        data += b"%x\r\n" % 5 + payload[:5] + b"\r\n" + b"%x\r\n" % (len(payload) - 5) + payload[5:] + b"\r\n0\r\n\r\n"
        r = parse_raw_response(raw_exchange(self.server, data, timeout=5))
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.json()["registration_code"], r"^[A-Z0-9]{5}$")

    def test_huge_header_431_json(self):
        r = self.server.request("GET", "/api/v1/nodes/", headers={"X-Pad": "x" * 20000}, token=self.admin)
        self.assertEqual(r.status, 431, r)
        self.assertIsInstance(r.json()["detail"], str)

    def test_deep_nesting_does_not_crash(self):
        # Nesting beyond 64 is malformed JSON (issue 12: refused while parsing).
        r = self.send("POST", "/api/v1/nodes/join-request", {}, "[" * 400000 + "]" * 400000)
        self.assertEqual(self.assertJsonError(r, 400), "Malformed JSON: JSON nested deeper than 64 levels at offset 64")
        r = self.send("POST", "/api/v1/nodes/join-request", {}, '{"a":' * 100000 + "1" + "}" * 100000)
        self.assertEqual(self.assertJsonError(r, 400), "Malformed JSON: JSON nested deeper than 64 levels at offset 320")
        r = self.send("POST", "/api/v1/nodes/join-request", {}, '{"a":' * 64 + "1" + "}" * 64)
        self.assertEqual(r.status, 422, r)  # 64 levels: an object without hostname
        self.assertEqual(self.server.request("GET", "/api/v1/nodes/", token=self.admin).status, 200)

    # ---- paths and methods ----

    def test_unknown_paths_404(self):
        # "/" redirects to the web console since issue 16 (test_console.py).
        for path in ("/api", "/api/v1", "/api/v1/", "/api/v1/stats", "/api/v2/nodes/",
                     "/api/v1/nodes/1/unknown", "/api/v1/nodes/1/quota/status/x", "/api/v1/nodes//quota",
                     "/api/v1/metrics/nodes/stats", "/api/v1/_test/clock", "/favicon.ico",
                     "/api/v1/nodes/status/code/", "/API/V1/NODES/"):
            with self.subTest(path=path):
                r = self.server.request("GET", path, token=self.admin)
                self.assertEqual(r.status, 404, r)
                self.assertEqual(r.json(), {"detail": "Not Found"})

    def test_unknown_path_404_without_auth(self):
        r = self.server.request("POST", "/api/v1/nothing-here", {"a": 1})
        self.assertEqual(r.json(), {"detail": "Not Found"})
        self.assertEqual(r.status, 404)

    def test_wrong_method_405_with_allow(self):
        # A GET route allows HEAD too unless the GET has effects or streams (Route::head_as_get).
        cases = [("DELETE", "/api/v1/nodes/", "GET, HEAD"), ("POST", "/api/v1/nodes/", "GET, HEAD"),
                 ("GET", "/api/v1/nodes/1/quota", "PUT"), ("POST", "/api/v1/nodes/1/quota", "PUT"),
                 ("PATCH", "/api/v1/stats/", "POST"), ("GET", "/api/v1/stats/", "POST"),
                 ("GET", "/api/v1/stats/sites", "POST"), ("GET", "/api/v1/stats/backups", "POST"),
                 ("GET", "/api/v1/nodes/approve/1", "POST"), ("DELETE", "/api/v1/nodes/1/sites", "GET, HEAD"),
                 ("POST", "/api/v1/nodes/1/backups", "GET, HEAD"), ("PUT", "/api/v1/nodes/1/quota/status", "GET, HEAD"),
                 ("POST", "/api/v1/metrics/nodes/stats/stream", "GET"),
                 ("DELETE", "/api/v1/metrics/nodes/1/stats/stream", "GET"),
                 ("POST", "/api/v1/nodes/status/code/ABCDE", "GET"),
                 ("DELETE", "/api/v1/nodes/status/1", "GET, HEAD"),
                 ("GET", "/api/v1/_test/clock/advance", "POST")]
        for method, path, allow in cases:
            for token in (None, self.admin):
                with self.subTest(method=method, path=path, token=bool(token)):
                    r = self.server.request(method, path, token=token)
                    self.assertEqual(r.status, 405, r)
                    self.assertEqual(r.json(), {"detail": "Method Not Allowed"})
                    self.assertEqual(r.headers.get("allow"), allow)

    def test_405_allow_lists_every_method_of_the_path(self):
        # /nodes/join-request is POST; GET matches /nodes/{id} too.
        r = self.server.request("PUT", "/api/v1/nodes/join-request")
        self.assertEqual(r.status, 405, r)
        self.assertEqual(sorted(m.strip() for m in r.headers["allow"].split(",")), ["GET", "HEAD", "POST"])

    def head(self, path, token=None):
        """HEAD over a raw socket: (Response of the head, bytes after the head)."""
        data = raw_exchange(self.server, ("HEAD %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n" % (
            path, "Authorization: Bearer %s\r\n" % token if token else "")).encode())
        return parse_raw_response(data), data.partition(b"\r\n\r\n")[2]

    def test_head_is_get_without_body(self):
        """Issue 12 item 7: HEAD on a GET route answers like GET (status, headers,
        Content-Length) without a body; on a GET with effects it is 405."""
        for path, token in (("/health", None), ("/api/v1/meta/health", None), ("/api/v1/nodes/", self.admin),
                            ("/api/v1/cluster/status", self.admin)):
            with self.subTest(path=path):
                get = self.server.request("GET", path, token=token)
                self.assertEqual(get.status, 200, get)
                r, rest = self.head(path, token)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(rest, b"")
                self.assertEqual(r.headers.get("content-type"), get.headers.get("content-type"))
                self.assertGreater(int(r.headers["content-length"]), 0)
        # Authentication and errors apply as for GET: the status without the body.
        r, rest = self.head("/api/v1/nodes/")
        self.assertEqual((r.status, rest), (401, b""), r)
        # A GET that hands out a node's key once is not run by HEAD.
        r, rest = self.head("/api/v1/nodes/status/code/ABCDE")
        self.assertEqual((r.status, rest), (405, b""), r)
        self.assertEqual(r.headers.get("allow"), "GET")

    def test_bad_percent_encoding_400(self):
        r = self.server.request("GET", "/api/v1/nodes/%zz", token=self.admin)
        self.assertJsonError(r, 400)
        r = self.server.request("GET", "/api/v1/nodes/status/code/AB%00CD")
        self.assertJsonError(r, 400)

    def test_percent_encoded_path_is_decoded(self):
        j = self.server.join("pct.example.com")
        code = j["registration_code"]
        r = self.server.request("GET", "/api/v1/nodes/status/code/%%%02X%s" % (ord(code[0]), code[1:]))
        self.assertEqual(r.json(), {"status": "pending", "api_key": None})
        r = self.server.request("GET", "/api/v1/nodes/%%3%s" % j["request_id"][0] + j["request_id"][1:],
                                token=self.admin)
        self.assertEqual(r.json()["hostname"], "pct.example.com")

    # ---- values ----

    def test_very_long_strings_rejected(self):
        cases = [("POST", "/api/v1/nodes/join-request", {}, {"hostname": "a" * 10000}, "hostname"),
                 ("POST", "/api/v1/nodes/join-request", {}, {"hostname": "a.example", "system_info": "s" * 500000},
                  "system_info"),
                 ("POST", "/api/v1/nodes/join-request", {}, {"hostname": "a.example", "ip_address": "1" * 1000},
                  "ip_address"),
                 ("POST", "/api/v1/nodes/register-by-code", {"Authorization": "Bearer " + self.admin},
                  {"code": "A" * 100000}, "code"),
                 ("POST", "/api/v1/stats/backups", {"X-API-KEY": self.key}, {"filename": "f" * 600000,
                                                                              "size_bytes": 1}, "filename"),
                 ("POST", "/api/v1/stats/sites", {"X-API-KEY": self.key},
                  {"sites": [{"site_name": "n" * 100000, "used_bytes": 1}]}, "site_name")]
        for method, path, headers, body, field in cases:
            with self.subTest(path=path, field=field):
                self.assertFieldError(self.send(method, path, headers, json.dumps(body)), path, field)

    def test_unicode_hostnames_rejected(self):
        for h in ("bücher.example", "münchen.de", "пример.рф", "例え.テスト", "emoji-😀.example", "a\u200bb.example",
                  "ｆｕｌｌｗｉｄｔｈ.example", "e\u0301.example"):
            with self.subTest(h=h):
                r = self.send("POST", "/api/v1/nodes/join-request", {}, json.dumps({"hostname": h}))
                self.assertValidation(r, "hostname")
                r = self.send("POST", "/api/v1/nodes/join-request", {},
                              json.dumps({"hostname": h}, ensure_ascii=False).encode())
                self.assertValidation(r, "hostname")
        # Punycode is the ASCII form and is fine.
        self.assertEqual(self.server.join("xn--bcher-kva.example")["registration_code"].isalnum(), True)

    def test_invalid_utf8_is_rejected(self):
        # RFC 8259: JSON text is UTF-8. Invalid bytes must not be stored and echoed back as
        # responses that are not UTF-8 (clients cannot parse them).
        nid, key = self.server.join_and_approve("utf8-agent.example.com", self.admin)
        cases = [
            ("system_info", "POST", "/api/v1/nodes/join-request", {},
             b'{"hostname": "utf8.example.com", "system_info": "a\xff\xfeb"}', "/api/v1/nodes/{id}"),
            ("site_name", "POST", "/api/v1/stats/sites", {"X-API-KEY": key},
             b'{"sites": [{"site_name": "bad\xc3\x28.example", "used_bytes": 1}]}', "/api/v1/nodes/%d/sites" % nid),
            ("filename (encoded surrogate)", "POST", "/api/v1/stats/backups", {"X-API-KEY": key},
             b'{"filename": "f\xed\xa0\x80.tar", "size_bytes": 1}', "/api/v1/nodes/%d/backups" % nid),
            ("storage_provider (overlong)", "POST", "/api/v1/stats/backups", {"X-API-KEY": key},
             b'{"filename": "ok.tar", "size_bytes": 1, "storage_provider": "\xc0\xaf"}',
             "/api/v1/nodes/%d/backups" % nid),
        ]
        for name, method, path, headers, body, readback in cases:
            with self.subTest(field=name):
                r = self.send(method, path, headers, body)
                if "{id}" in readback:
                    if r.status != 200:
                        self.assertIn(r.status, (400, 422), r)
                        continue
                    readback = readback.replace("{id}", r.json()["request_id"])
                back = self.server.request("GET", readback, token=self.admin)
                try:
                    back.body.decode("utf-8")
                    back_ok = True
                except UnicodeDecodeError:
                    back_ok = False
                self.assertTrue(back_ok, "GET %s now answers with bytes that are not UTF-8" % readback)
                self.assertIn(r.status, (400, 422), r)

    def test_lone_surrogate_escape_rejected_or_replaced(self):
        r = self.send("POST", "/api/v1/nodes/join-request", {},
                      '{"hostname": "sur.example.com", "system_info": "x\\ud800y"}')
        self.assertIn(r.status, (200, 400, 422), r)
        if r.status == 200:
            d = self.server.request("GET", "/api/v1/nodes/" + r.json()["request_id"], token=self.admin)
            json.loads(d.body.decode("utf-8"))

    def test_huge_and_bogus_numbers(self):
        stats = ("POST", "/api/v1/stats/", {"X-API-KEY": self.key})
        quota = ("PUT", "/api/v1/nodes/%d/quota" % self.node, {"Authorization": "Bearer " + self.admin})
        # Out of double range: not representable; rejected as a bad body or a bad field.
        for route, body in ((stats, '{"cpu_usage": 1e400, "disk_usage": 1, "active_backups": 0}'),
                            (quota, '{"storage_quota_gb": 1e999}'),
                            (quota, '{"storage_quota_gb": -1e400}')):
            with self.subTest(body=body):
                r = self.send(*route, body)
                self.assertIn(r.status, (400, 422), r)
                self.assertIn("detail", r.json())
        # Representable but out of range or not integers: the field is named.
        for route, body, field in (
                (stats, '{"cpu_usage": 1e308, "disk_usage": 1, "active_backups": 0}', "cpu_usage"),
                (stats, '{"cpu_usage": 1, "disk_usage": 1, "active_backups": 1e20}', "active_backups"),
                (stats, '{"cpu_usage": 1, "disk_usage": 1, "active_backups": 18446744073709551615}',
                 "active_backups"),
                (stats, '{"cpu_usage": 1, "disk_usage": 1, "active_backups": 123456789012345678901234567890}',
                 "active_backups"),
                (stats, '{"cpu_usage": 1, "disk_usage": 1, "active_backups": 0, "uptime_seconds": 1e300}',
                 "uptime_seconds"),
                (stats, '{"cpu_usage": "NaN", "disk_usage": 1, "active_backups": 0}', "cpu_usage"),
                (quota, '{"storage_quota_gb": 1e308}', "storage_quota_gb"),
                (quota, '{"storage_quota_gb": "Infinity"}', "storage_quota_gb"),
                (quota, '{"storage_quota_gb": -1e-300}', "storage_quota_gb")):
            with self.subTest(body=body):
                self.assertValidation(self.send(*route, body), field)

    def test_negative_values_rejected(self):
        cases = [
            ("POST", "/api/v1/stats/", {"X-API-KEY": self.key},
             {"cpu_usage": -1, "disk_usage": 1, "active_backups": 0}, "cpu_usage"),
            ("POST", "/api/v1/stats/", {"X-API-KEY": self.key},
             {"cpu_usage": 1, "disk_usage": -0.001, "active_backups": 0}, "disk_usage"),
            ("POST", "/api/v1/stats/", {"X-API-KEY": self.key},
             {"cpu_usage": 1, "disk_usage": 1, "active_backups": -5}, "active_backups"),
            ("POST", "/api/v1/stats/", {"X-API-KEY": self.key},
             {"cpu_usage": 1, "disk_usage": 1, "active_backups": 0, "memory_percent": -2}, "memory_percent"),
            ("POST", "/api/v1/stats/", {"X-API-KEY": self.key},
             {"cpu_usage": 1, "disk_usage": 1, "active_backups": 0, "uptime_seconds": -60}, "uptime_seconds"),
            ("POST", "/api/v1/stats/", {"X-API-KEY": self.key},
             {"cpu_usage": 1, "disk_usage": 1, "active_backups": 0, "disk_total_gb": -100}, "disk_total_gb"),
            ("PUT", "/api/v1/nodes/%d/quota" % self.node, {"Authorization": "Bearer " + self.admin},
             {"storage_quota_gb": -100}, "storage_quota_gb"),
            ("POST", "/api/v1/stats/sites", {"X-API-KEY": self.key},
             {"sites": [{"site_name": "neg.example", "used_bytes": -1}]}, "used_bytes"),
            ("POST", "/api/v1/stats/sites", {"X-API-KEY": self.key},
             {"sites": [{"site_name": "neg.example", "used_bytes": 1, "quota_gb": -1}]}, "quota_gb"),
            ("POST", "/api/v1/stats/backups", {"X-API-KEY": self.key},
             {"filename": "neg.tar", "size_bytes": -1}, "size_bytes"),
            ("POST", "/api/v1/_test/clock/advance", {"Authorization": "Bearer " + self.admin},
             {"seconds": -10}, "seconds"),
        ]
        for method, path, headers, body, field in cases:
            with self.subTest(path=path, field=field):
                self.assertFieldError(self.send(method, path, headers, json.dumps(body)), path, field)

    def assertFieldError(self, r, path, field):
        # A member of the sites list is located by its index (FastAPI style).
        if path == "/api/v1/stats/sites":
            d = self.assertValidation(r)
            self.assertEqual(d[0]["loc"], ["body", "sites", 0, field], r)
        else:
            self.assertValidation(r, field)

    def test_server_still_healthy(self):
        # After everything above (run last alphabetically among these): still answering.
        r = self.server.request("GET", "/api/v1/nodes/%d" % self.node, token=self.admin)
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    unittest.main()
