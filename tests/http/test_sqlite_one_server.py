"""A SQLite database serves one lucid-server process (issue 14): a second one on
the same file is refused with a message pointing at PostgreSQL for replicas
(docs/decisions.md, "Issue 14 (part 2, session 6)"). SKIPPED on PostgreSQL,
where several servers are the point (test_replicas.py)."""
import subprocess
import unittest

from lucidtest import ON_POSTGRES, SERVER_BIN, Server


@unittest.skipIf(ON_POSTGRES, "the one-process rule is SQLite's (replicas run on PostgreSQL)")
class SqliteServesOneServer(unittest.TestCase):
    def test_second_server_on_the_same_file_is_refused(self):
        s = Server().start()
        self.addCleanup(s.cleanup)
        out = subprocess.run([SERVER_BIN, "--listen", "127.0.0.1:0", "--db", s.db, "--test-clock"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("another lucid-server is serving " + s.db, out.stderr)
        self.assertIn("postgresql://", out.stderr)
        # The first one is untouched, and once it stops the file is free.
        self.assertEqual(s.request("GET", "/health").status, 200)
        self.assertEqual(s.stop(), 0)
        s.start()
        self.assertEqual(s.request("GET", "/health").status, 200)


if __name__ == "__main__":
    unittest.main()
