"""node-management.md, PoOT (docs/poot.md): POST /nodes/{node_id}/poot/validate,
POST /nodes/poot/batch-validate, GET /nodes/{node_id}/poot/score, and the agent's
PUT /api/v1/stats/public-key."""
import base64
import datetime
import hashlib
import unittest
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lucidtest import ServerTestCase
from test_mgmt_nodes import TIME_RE, MgmtAssertions, fmt_time, mgmt_create, mgmt_node_of, parse_time

VALIDATION_KEYS = {"node_id", "valid", "validation_status", "output_hash", "nonce", "reason", "reason_code",
                   "validated_at"}
SCORE_KEYS = {"node_id", "score", "confidence", "calculated_at", "output_hash", "validation_status", "inputs"}
INPUT_KEYS = {"window_seconds", "proof_slots", "proof_slots_expected", "heartbeat_slots", "heartbeat_slots_expected"}


def b64(data):
    return base64.b64encode(data).decode()


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def signed_message(uid, output_hash, timestamp, nonce):
    return ("lucid-poot-v1\n%s\n%s\n%s\n%s" % (uid, output_hash, timestamp, nonce)).encode()


def public_hex(key):
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


class Poot(MgmtAssertions, ServerTestCase):
    # PoOT's documented 100 requests/minute would stop the suite half way.
    server_args = ["--rate-poot", "1000000", "--rate-admin", "1000000", "--rate-nodes", "1000000"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Tests move the server's clock by hours: tokens must outlive that.
        cls.admin = cls.server.token("super_admin", ttl="7d")
        s, admin = cls.server, cls.admin
        cls.active_uid, cls.active_key = cls.active_node("poot-active.example.com")
        cls.keyed_uid, cls.keyed_api_key = cls.active_node("poot-keyed.example.com")
        cls.signing_key = Ed25519PrivateKey.generate()
        r = s.request("PUT", "/api/v1/stats/public-key", {"public_key": public_hex(cls.signing_key)},
                      headers={"X-API-KEY": cls.keyed_api_key})
        assert r.status == 200, r
        cls.idle_uid = mgmt_create(s, admin, {"name": "poot-idle"})["node_id"]  # created: inactive

    @classmethod
    def active_node(cls, hostname):
        """(uid, api key) of a node that is approved and active (it reported once)."""
        _, key = cls.server.join_and_approve(hostname, cls.admin)
        r = cls.server.report(key)
        assert r.status == 200, r
        return mgmt_node_of(cls.server, cls.admin, hostname)["node_id"], key

    # ---- helpers ----

    def now(self):
        return parse_time(self.server.advance_clock(0, self.admin)["now"])

    def proof(self, data=b"some output", offset=0, nonce=None, uid=None, key=None):
        """A proof body stamped at server time + offset seconds; signed with `key` (with `uid` in the message)."""
        body = {"output_data": b64(data), "timestamp": fmt_time(self.now() + datetime.timedelta(seconds=offset)),
                "nonce": nonce or uuid.uuid4().hex}
        if key is not None:
            msg = signed_message(uid, sha256_hex(data), body["timestamp"], body["nonce"])
            body["signature"] = key.sign(msg).hex()
        return body

    def validate(self, uid, body, token=None):
        return self.post("/api/v1/nodes/%s/poot/validate" % uid, body, token=token)

    def valid_ok(self, uid, body):
        r = self.validate(uid, body)
        self.assertEqual(r.status, 200, r)
        v = r.json()
        self.assertEqual(set(v), VALIDATION_KEYS, v)
        self.assertEqual(v["node_id"], uid)
        self.assertRegex(v["validated_at"], TIME_RE)
        self.assertEqual(v["validation_status"], "valid" if v["valid"] else "invalid")
        return v

    def assertInvalid(self, uid, body, reason_code):
        v = self.valid_ok(uid, body)
        self.assertFalse(v["valid"], v)
        self.assertEqual(v["reason_code"], reason_code, v)
        self.assertTrue(v["reason"], v)
        return v

    def score(self, uid, token=None):
        r = self.get("/api/v1/nodes/%s/poot/score" % uid, token=token)
        self.assertEqual(r.status, 200, r)
        s = r.json()
        self.assertEqual(set(s), SCORE_KEYS, s)
        self.assertEqual(set(s["inputs"]), INPUT_KEYS, s)
        return s

    def batch(self, items, token=None):
        return self.post("/api/v1/nodes/poot/batch-validate", {"validations": items}, token=token)

    # ---- validate ----

    def test_valid_proof(self):
        data = b"\x00\x01 binary output \xff"
        body = self.proof(data)
        v = self.valid_ok(self.active_uid, body)
        self.assertTrue(v["valid"], v)
        self.assertEqual(v["output_hash"], sha256_hex(data))
        self.assertEqual(v["nonce"], body["nonce"])
        self.assertIsNone(v["reason"])
        self.assertIsNone(v["reason_code"])
        # An offset timestamp is the same instant.
        t = self.now() + datetime.timedelta(hours=2)
        body = self.proof()
        body["timestamp"] = t.strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"
        self.assertTrue(self.valid_ok(self.active_uid, body)["valid"])

    def test_output_data_must_be_padded_standard_base64(self):
        for bad in ["not base64!", "aGVsbG8", "aGVs bG8=", "-_-_", "YR==", "aGVsbG8=\n", ""]:
            with self.subTest(bad=bad):
                body = self.proof()
                body["output_data"] = bad
                self.assertMgmtError(self.validate(self.active_uid, body), 400, "LUCID_ERR_5005", "output_data")

    def test_output_data_is_bounded(self):
        self.assertMgmtError(self.validate(self.active_uid, self.proof(b"x" * 65537)), 400, "LUCID_ERR_5005",
                             "output_data")
        self.assertTrue(self.valid_ok(self.active_uid, self.proof(b"x" * 65536))["valid"])

    def test_malformed_fields(self):
        for field, value in [("timestamp", "yesterday"), ("timestamp", "2025-01-01T00:00:00"), ("nonce", "a b"),
                             ("nonce", "n" * 129), ("signature", "zz"), ("signature", "g" * 128)]:
            with self.subTest(field=field, value=value):
                body = self.proof()
                body[field] = value
                self.assertMgmtError(self.validate(self.active_uid, body), 400, "LUCID_ERR_5005", field)
        for field in ["output_data", "timestamp", "nonce"]:
            with self.subTest(missing=field):
                body = self.proof()
                del body[field]
                self.assertMgmtError(self.validate(self.active_uid, body), 400, "LUCID_ERR_1002", field)
        body = self.proof()
        body["nonce"] = 42
        self.assertMgmtError(self.validate(self.active_uid, body), 400, "LUCID_ERR_1001", "nonce")
        self.assertMgmtError(self.post("/api/v1/nodes/%s/poot/validate" % self.active_uid, raw=b"{nope"), 400,
                             "LUCID_ERR_1009")

    def test_timestamp_freshness(self):
        # The server's clock reads in whole seconds here: stay clear of the exact bounds (unit tests pin those).
        self.assertTrue(self.valid_ok(self.active_uid, self.proof(offset=-295))["valid"])
        self.assertTrue(self.valid_ok(self.active_uid, self.proof(offset=295))["valid"])
        self.assertInvalid(self.active_uid, self.proof(offset=-305), "stale_timestamp")
        self.assertInvalid(self.active_uid, self.proof(offset=305), "future_timestamp")
        # A proof that was fresh when made is stale once the server clock moved on.
        body = self.proof()
        self.server.advance_clock(301, self.admin)
        self.assertInvalid(self.active_uid, body, "stale_timestamp")

    def test_replayed_nonce_is_stored_invalid_and_not_scored(self):
        uid, _ = self.active_node("poot-replay.example.com")
        body = self.proof(b"replayed output")
        first = self.valid_ok(uid, body)
        self.assertTrue(first["valid"], first)
        before = self.score(uid)
        again = self.assertInvalid(uid, body, "nonce_replayed")
        self.assertEqual(again["output_hash"], first["output_hash"])
        after = self.score(uid)
        self.assertEqual(after["score"], before["score"])
        self.assertEqual(after["inputs"]["proof_slots"], before["inputs"]["proof_slots"])
        self.assertEqual(after["validation_status"], "invalid")  # the replay was stored, and is the newest
        self.assertEqual(after["output_hash"], first["output_hash"])
        # Another node may use the same nonce.
        self.assertTrue(self.valid_ok(self.active_uid, body)["valid"])

    def test_unknown_node(self):
        for uid in ["node_ffffffffffffffff", "node_no-such-node"]:
            with self.subTest(uid=uid):
                self.assertMgmtError(self.validate(uid, self.proof()), 404, "LUCID_ERR_5001")
                self.assertMgmtError(self.get("/api/v1/nodes/%s/poot/score" % uid), 404, "LUCID_ERR_5001")

    def test_node_must_be_active(self):
        v = self.assertInvalid(self.idle_uid, self.proof(), "node_not_active")
        self.assertIn("inactive", v["reason"])

    # ---- signatures and keys ----

    def test_keyed_node_must_sign(self):
        uid, key = self.keyed_uid, self.signing_key
        self.assertInvalid(uid, self.proof(), "signature_missing")
        self.assertTrue(self.valid_ok(uid, self.proof(uid=uid, key=key))["valid"])
        upper = self.proof(uid=uid, key=key)
        upper["signature"] = upper["signature"].upper()
        self.assertTrue(self.valid_ok(uid, upper)["valid"])
        self.assertInvalid(uid, self.proof(uid=uid, key=Ed25519PrivateKey.generate()), "signature_invalid")
        # Every signed field counts.
        for field, value in [("nonce", "other-nonce"), ("output_data", b64(b"other output")),
                             ("timestamp", None)]:
            with self.subTest(field=field):
                body = self.proof(uid=uid, key=key)
                body[field] = value if value is not None else fmt_time(parse_time(body["timestamp"]) +
                                                                       datetime.timedelta(seconds=1))
                self.assertInvalid(uid, body, "signature_invalid")
        # Signed for another node: invalid here.
        self.assertInvalid(uid, self.proof(uid=self.active_uid, key=key), "signature_invalid")
        # A node without a key may send a signature; it is not checked.
        self.assertTrue(self.valid_ok(self.active_uid, self.proof(uid="whatever", key=key))["valid"])

    def test_key_registration_replaces_the_key(self):
        uid, api_key = self.active_node("poot-rekey.example.com")
        old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        for k in (old, new):
            r = self.server.request("PUT", "/api/v1/stats/public-key", {"public_key": public_hex(k)},
                                    headers={"X-API-KEY": api_key})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["public_key"], public_hex(k))
            self.assertEqual(r.json()["status"], "ok")
            self.assertRegex(r.json()["registered_at"], TIME_RE)
        self.assertInvalid(uid, self.proof(uid=uid, key=old), "signature_invalid")
        self.assertTrue(self.valid_ok(uid, self.proof(uid=uid, key=new))["valid"])

    def test_key_registration_errors(self):
        put = lambda body, key=self.active_key: self.server.request(
            "PUT", "/api/v1/stats/public-key", body, headers={"X-API-KEY": key} if key else {})
        for bad in ["zz", "a" * 63, "g" * 64, "01" + "0" * 62, "0" * 64]:
            with self.subTest(bad=bad):
                self.assertValidation(put({"public_key": bad}), "public_key")
        self.assertValidation(put({}), "public_key")
        self.assertDetail(put({"public_key": public_hex(Ed25519PrivateKey.generate())}, key=None), 401)
        self.assertDetail(put({"public_key": public_hex(Ed25519PrivateKey.generate())}, key="lnk_wrong"), 401)
        # The node stays unkeyed: unsigned proofs remain valid.
        self.assertTrue(self.valid_ok(self.active_uid, self.proof())["valid"])

    # ---- batch ----

    def test_batch_reports_each_item(self):
        replay_nonce = uuid.uuid4().hex
        stale = self.proof(offset=-3600)
        items = [
            dict(self.proof(nonce=replay_nonce), node_id=self.active_uid),            # 0 valid
            dict(self.proof(), node_id="node_ffffffffffffffff"),                      # 1 error: unknown node
            dict(self.proof(), node_id=self.active_uid, output_data="%%%"),           # 2 error: base64
            dict(stale, node_id=self.active_uid),                                     # 3 invalid: stale
            dict(self.proof(nonce=replay_nonce), node_id=self.active_uid),            # 4 invalid: replayed
            "not an object",                                                          # 5 error: shape
            dict(self.proof(), node_id=self.active_uid, nonce=7),                     # 6 error: type
            dict(self.proof(), node_id=self.idle_uid),                                # 7 invalid: inactive
            dict(self.proof(uid=self.keyed_uid, key=self.signing_key), node_id=self.keyed_uid),  # 8 valid, signed
            dict(self.proof(), node_id=self.keyed_uid),                               # 9 invalid: unsigned
        ]
        r = self.batch(items)
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(set(body), {"results", "summary"})
        self.assertEqual(body["summary"], {"total": 10, "valid": 2, "invalid": 4, "errors": 4})
        res = body["results"]
        self.assertEqual(len(res), 10)
        for i, v in enumerate(res):
            with self.subTest(item=i):
                self.assertTrue(VALIDATION_KEYS <= set(v) <= VALIDATION_KEYS | {"error"}, v)
                self.assertRegex(v["validated_at"], TIME_RE)
        self.assertTrue(res[0]["valid"])
        self.assertEqual(res[0]["output_hash"], sha256_hex(b"some output"))
        self.assertTrue(res[8]["valid"])
        expected_invalid = {3: "stale_timestamp", 4: "nonce_replayed", 7: "node_not_active", 9: "signature_missing"}
        for i, code in expected_invalid.items():
            self.assertFalse(res[i]["valid"], res[i])
            self.assertEqual(res[i]["reason_code"], code, res[i])
            self.assertNotIn("error", res[i])
        expected_errors = {1: ("LUCID_ERR_5001", "node_not_found", None),
                           2: ("LUCID_ERR_5005", "malformed_proof", "validations.2.output_data"),
                           5: ("LUCID_ERR_1001", "malformed_proof", "validations.5"),
                           6: ("LUCID_ERR_1001", "malformed_proof", "validations.6.nonce")}
        for i, (code, reason_code, field) in expected_errors.items():
            v = res[i]
            self.assertFalse(v["valid"], v)
            self.assertEqual(v["validation_status"], "invalid", v)
            self.assertIsNone(v["output_hash"], v)
            self.assertEqual(v["reason_code"], reason_code, v)
            self.assertEqual(v["error"]["code"], code, v)
            self.assertEqual(v["error"].get("field"), field, v)
        self.assertEqual(res[1]["node_id"], "node_ffffffffffffffff")

    def test_batch_bounds(self):
        items = [dict(self.proof(), node_id=self.active_uid) for _ in range(1001)]
        self.assertMgmtError(self.batch(items), 400, "LUCID_ERR_1001", "validations")
        r = self.batch(items[:1000])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["summary"], {"total": 1000, "valid": 1000, "invalid": 0, "errors": 0})
        r = self.batch([])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"results": [], "summary": {"total": 0, "valid": 0, "invalid": 0, "errors": 0}})
        self.assertMgmtError(self.post("/api/v1/nodes/poot/batch-validate", {}), 400, "LUCID_ERR_1002",
                             "validations")
        self.assertMgmtError(self.post("/api/v1/nodes/poot/batch-validate", {"validations": {}}), 400,
                             "LUCID_ERR_1001", "validations")

    # ---- score ----

    def test_score_of_a_new_node_and_node_poot_score(self):
        uid, _ = self.active_node("poot-fresh.example.com")
        n = self.node(uid)
        self.assertIsNone(n["poot_score"])
        s = self.score(uid)
        self.assertEqual(s["node_id"], uid)
        self.assertEqual(s["validation_status"], "pending")
        self.assertIsNone(s["output_hash"])
        self.assertRegex(s["calculated_at"], TIME_RE)
        self.assertTrue(0 <= s["score"] <= 100 and 0 <= s["confidence"] <= 1, s)
        self.assertEqual(self.node(uid)["poot_score"], s["score"])

    def test_score_follows_the_formula(self):
        # Ten minutes of one proof and one report a minute: every slot filled.
        uid, api_key = self.active_node("poot-formula.example.com")
        hashes = []
        for _ in range(10):
            self.server.advance_clock(60, self.admin)
            data = uuid.uuid4().bytes
            self.assertTrue(self.valid_ok(uid, self.proof(data))["valid"])
            hashes.append(sha256_hex(data))
            self.assertEqual(self.server.report(api_key).status, 200)
        s = self.score(uid)
        self.assertEqual(s["inputs"], {"window_seconds": 3600, "proof_slots": 10, "proof_slots_expected": 10,
                                       "heartbeat_slots": 2, "heartbeat_slots_expected": 2}, s)
        self.assertEqual(s["score"], 100.0)
        self.assertEqual(s["confidence"], 0.6)  # 12 slots observed: 12 / (12 + 8)
        self.assertEqual(s["validation_status"], "valid")
        self.assertEqual(s["output_hash"], hashes[-1])
        # Two silent hours later only the absence is certain.
        self.server.advance_clock(7200, self.admin)
        s = self.score(uid)
        self.assertEqual(s["score"], 0.0)
        self.assertEqual(s["confidence"], 0.9)
        self.assertEqual(s["validation_status"], "pending")
        self.assertEqual(self.node(uid)["poot_score"], 0.0)

    # ---- authorization ----

    def test_scopes(self):
        read_nodes = self.server.token(ttl="7d", scopes=["node:read"])
        read_poot = self.server.token(ttl="7d", scopes=["poot:read"])
        uid = self.active_uid
        for token in (read_nodes, read_poot):
            with self.subTest(token=token[-8:]):
                self.assertMgmtError(self.validate(uid, self.proof(), token=token), 403, "LUCID_ERR_2004")
                self.assertMgmtError(self.batch([dict(self.proof(), node_id=uid)], token=token), 403,
                                     "LUCID_ERR_2004")
        self.assertMgmtError(self.get("/api/v1/nodes/%s/poot/score" % uid, token=read_nodes), 403, "LUCID_ERR_2004")
        self.score(uid, token=read_poot)
        r = self.server.request("POST", "/api/v1/nodes/%s/poot/validate" % uid, self.proof())
        self.assertMgmtError(r, 401, "LUCID_ERR_2003")
        write_poot = self.server.token(ttl="7d", scopes=["poot:write"])
        r = self.validate(uid, self.proof(), token=write_poot)
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    unittest.main()
