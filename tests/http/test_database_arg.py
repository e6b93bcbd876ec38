"""lucid-server's --db: a SQLite path, sqlite:PATH or a PostgreSQL URI; anything
else refused with a clear message (exit 2) before anything is created; the
PostgreSQL password never printed (issue 14)."""
import os
import shutil
import subprocess
import tempfile
import unittest

import pg_harness
from lucidtest import ON_POSTGRES, SERVER_BIN, Server


def run_server(args, cwd, timeout=30):
    return subprocess.run([SERVER_BIN, "--listen", "127.0.0.1:0"] + args, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


class DatabaseArgument(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lucid-dbarg-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_unsupported_databases_are_refused_before_anything_is_created(self):
        for db in ("mysql://root@db/fleet", "postgresql:fleet", "postgresql:/fleet", "file:lucid.db",
                   "sqlite:", "sqlite://x.db", "http://example.com/x", "postgresql://u:hunter2@db/x?port=oops&x"):
            out = run_server(["--db", db], cwd=self.dir)
            self.assertEqual(out.returncode, 2, (db, out.stderr))
            self.assertIn("--db:", out.stderr, db)
            self.assertIn("postgresql://", out.stderr, db)  # says what is accepted
            self.assertNotIn("hunter2", out.stderr + out.stdout)
            self.assertEqual(os.listdir(self.dir), [], db)  # no folder named "postgresql:" or "mysql:"

    def test_password_file_needs_postgresql(self):
        pw = os.path.join(self.dir, "pw")
        with open(pw, "w") as f:
            f.write("x\n")
        os.chmod(pw, 0o600)
        out = run_server(["--db", os.path.join(self.dir, "a.db"), "--db-password-file", pw], cwd=self.dir)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("--db-password-file is for a PostgreSQL", out.stderr)

    def test_unreachable_postgresql_fails_without_the_password(self):
        db = "postgresql://lucid:hunter2@/lucid?host=%s/nosuchdir&connect_timeout=2" % self.dir
        out = run_server(["--db", db], cwd=self.dir)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("cannot open database postgresql://lucid:***@/lucid", out.stderr)
        self.assertNotIn("hunter2", out.stderr + out.stdout)

    def test_sqlite_prefix_is_a_path(self):
        s = Server()
        try:
            if ON_POSTGRES:
                self.skipTest("on PostgreSQL: this test is about a SQLite path")
            path = os.path.join(s.dir, "explicit.db")
            s.db = "sqlite:" + path
            s.signing_key_file = path + ".key"
            s.start()
            self.assertTrue(os.path.exists(path))
            self.assertIn("(database %s, schema v" % path, s.read_log())
            self.assertEqual(s.request("GET", "/api/v1/nodes/", token=s.token()).status, 200)
            self.assertEqual(s.stop(), 0)
        finally:
            s.cleanup()


@unittest.skipUnless(ON_POSTGRES, "needs PostgreSQL (runs as pg.http.test_database_arg)")
class PostgresPassword(unittest.TestCase):
    """The role lucid_pw authenticates with scram-sha-256 (pg_harness)."""

    def setUp(self):
        self.cluster = pg_harness.cluster()
        self.uri = self.cluster.new_database(owner=pg_harness.PASSWORD_ROLE)
        self.server = Server()
        self.server.db = self.uri
        self.pw = os.path.join(self.server.dir, "pw")

    def tearDown(self):
        self.server.cleanup()

    def write_pw(self, text, mode=0o600):
        with open(self.pw, "w") as f:
            f.write(text)
        os.chmod(self.pw, mode)

    def test_password_file_opens_and_is_never_printed(self):
        self.write_pw(pg_harness.PASSWORD + "\n")
        self.server.extra_args = ["--db-password-file", self.pw]
        self.server.start()
        self.server.ctl_db_args = lambda: ["--db", self.uri, "--server-key-file", self.server.signing_key_file,
                                           "--db-password-file", self.pw]
        r = self.server.request("GET", "/api/v1/nodes/", token=self.server.token())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.server.stop(), 0)
        self.assertNotIn(pg_harness.PASSWORD, self.server.read_log())

    def test_wrong_or_open_password_file_is_refused_without_its_content(self):
        self.write_pw("wrong-pass-123\n")
        out = run_server(["--db", self.uri, "--db-password-file", self.pw, "--key-file",
                          self.server.signing_key_file], cwd=self.server.dir)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("password authentication failed", out.stderr)
        self.assertNotIn("wrong-pass-123", out.stderr + out.stdout)
        self.write_pw(pg_harness.PASSWORD + "\n", mode=0o644)
        out = run_server(["--db", self.uri, "--db-password-file", self.pw, "--key-file",
                          self.server.signing_key_file], cwd=self.server.dir)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("permissions are too open", out.stderr)
        self.assertNotIn(pg_harness.PASSWORD, out.stderr + out.stdout)


if __name__ == "__main__":
    unittest.main()
