import unittest

from lucidtest import ServerTestCase


class Smoke(ServerTestCase):
    def test_join_returns_code(self):
        j = self.server.join("smoke.example.com")
        self.assertRegex(j["registration_code"], r"^[A-Z0-9]{5}$")


if __name__ == "__main__":
    unittest.main()
