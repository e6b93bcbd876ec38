"""api-gateway.md: trust policies (CRUD) and their effect: allow/deny rules
that wallet transactions obey (docs/decisions.md, "Trust policies")."""
import unittest
import uuid

from test_gateway_wallets import WalletCase
from test_payouts import tron_address

API = "/api/v1"


class TrustPolicies(WalletCase):
    def setUp(self):
        self.uid, self.tok = self.user()

    def create(self, body, token=None):
        return self.server.request("POST", API + "/trust/policies", body, token=token or self.tok)

    def test_crud(self):
        r = self.create({"name": "p1", "description": "d", "rules": [
            {"type": "deny", "condition": "amount > 100", "action": "wallet.transaction"},
            {"rule_id": "r-own", "type": "allow", "condition": "*", "action": "*"}]})
        self.assertEqual(r.status, 201, r)
        p = r.json()
        uuid.UUID(p["policy_id"])
        self.assertEqual((p["user_id"], p["name"], p["description"]), (self.uid, "p1", "d"))
        self.assertEqual([x["rule_id"] for x in p["rules"]], ["rule_1", "r-own"])
        self.assertEqual(p["rules"][0], {"rule_id": "rule_1", "type": "deny", "condition": "amount > 100",
                                         "action": "wallet.transaction", "evaluated": True})
        self.assertIn("created_at", p)
        r = self.create({"name": "p2", "rules": []})
        self.assertEqual(r.status, 201, r)
        r = self.server.request("GET", API + "/trust/policies?limit=1", token=self.tok)
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["pagination"], {"page": 1, "limit": 1, "total": 2, "pages": 2})
        self.assertEqual(body["policies"][0]["policy_id"], p["policy_id"])
        r = self.server.request("PUT", API + "/trust/policies/" + p["policy_id"],
                                {"name": "renamed", "rules": [{"type": "deny", "condition": "currency == TRX",
                                                               "action": "*"}]}, token=self.tok)
        self.assertEqual(r.status, 200, r)
        u = r.json()
        self.assertEqual((u["name"], u["description"], len(u["rules"])), ("renamed", "d", 1))
        r = self.server.request("PUT", API + "/trust/policies/" + p["policy_id"], {"description": "e"}, token=self.tok)
        self.assertEqual((r.json()["name"], r.json()["description"], len(r.json()["rules"])), ("renamed", "e", 1))
        _, other = self.user()
        self.assertEqual(self.server.request("GET", API + "/trust/policies", token=other).json()["policies"], [])
        r = self.server.request("PUT", API + "/trust/policies/" + p["policy_id"], {"name": "x"}, token=other)
        self.assertError(r, 403, "LUCID_ERR_2004")
        # Issue 12 item 7: only the owner changes a policy, an admin included.
        r = self.server.request("PUT", API + "/trust/policies/" + p["policy_id"], {"name": "x"}, token=self.admin)
        self.assertError(r, 403, "LUCID_ERR_2004")
        r = self.server.request("PUT", API + "/trust/policies/" + str(uuid.uuid4()), {"name": "x"}, token=self.tok)
        self.assertError(r, 404, "LUCID_ERR_4001")
        r = self.server.request("PUT", API + "/trust/policies/zzz", {"name": "x"}, token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1005", "policy_id")
        r = self.server.request("GET", API + "/trust/policies")
        self.assertError(r, 401, "LUCID_ERR_2003")
        r = self.server.request("DELETE", API + "/trust/policies/" + p["policy_id"], token=self.tok)
        self.assertError(r, 405, "LUCID_ERR_4003")

    def test_validation(self):
        ok = {"type": "allow", "condition": "*", "action": "*"}
        for body, code, field in (
                ({"rules": []}, "LUCID_ERR_1002", "name"),
                ({"name": "p"}, "LUCID_ERR_1002", "rules"),
                ({"name": "", "rules": []}, "LUCID_ERR_1003", "name"),
                ({"name": "p", "description": "x" * 1001, "rules": []}, "LUCID_ERR_1003", "description"),
                ({"name": "p", "rules": {}}, "LUCID_ERR_1003", "rules"),
                ({"name": "p", "rules": [1]}, "LUCID_ERR_1003", "rules.0"),
                ({"name": "p", "rules": [ok, {"condition": "*", "action": "*"}]}, "LUCID_ERR_1002", "rules.1.type"),
                ({"name": "p", "rules": [dict(ok, type="maybe")]}, "LUCID_ERR_1003", "rules.0.type"),
                ({"name": "p", "rules": [dict(ok, condition=3)]}, "LUCID_ERR_1003", "rules.0.condition"),
                ({"name": "p", "rules": [dict(ok, condition="c" * 1025)]}, "LUCID_ERR_1003", "rules.0.condition"),
                ({"name": "p", "rules": [dict(ok, action="session.upload")]}, "LUCID_ERR_1003", "rules.0.action"),
                ({"name": "p", "rules": [dict(ok, rule_id="x" * 65)]}, "LUCID_ERR_1003", "rules.0.rule_id"),
                ({"name": "p", "rules": [ok] * 101}, "LUCID_ERR_1004", "rules")):
            r = self.create(body)
            self.assertError(r, 400, code, field)
        r = self.server.request("POST", API + "/trust/policies", body="{", token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1009")
        p = self.create({"name": "p", "rules": []}).json()
        r = self.server.request("PUT", API + "/trust/policies/" + p["policy_id"],
                                {"rules": [dict(ok, type="x")]}, token=self.tok)
        self.assertError(r, 400, "LUCID_ERR_1003", "rules.0.type")

    def test_rules_govern_wallet_transactions(self):
        w = self.wallet(self.tok)
        self.fund(w["address"], 20)
        blocked, friend, other = tron_address("blocked"), tron_address("friend"), tron_address("other")
        send = lambda amount, to: self.send(w["wallet_id"], self.tok, amount, to)
        self.assertEqual(self.create({"name": "limits", "rules": [
            {"type": "deny", "condition": "recipient == " + blocked, "action": "wallet.transaction"},
            {"type": "allow", "condition": "recipient == " + friend, "action": "wallet.transaction"},
            {"type": "deny", "condition": "amount > 5", "action": "*"}]}).status, 201)
        r = send(1, blocked)
        self.assertError(r, 403, "LUCID_ERR_2004")
        self.assertIn("limits", r.json()["error"]["message"])
        self.assertEqual(send(6, friend).status, 201)  # the allow rule comes first
        r = send(6, other)
        self.assertError(r, 403, "LUCID_ERR_2004")
        self.assertEqual(send(5, other).status, 201)
        self.assertEqual(self.balance(w["wallet_id"], self.tok), 9)
        # another user's policies do not apply to this wallet
        _, tok2 = self.user()
        self.create({"name": "deny-all", "rules": [{"type": "deny", "condition": "*", "action": "*"}]}, token=tok2)
        self.assertEqual(send(1, other).status, 201)


if __name__ == "__main__":
    unittest.main()
