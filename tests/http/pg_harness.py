"""A throwaway PostgreSQL for the test suite on PostgreSQL (LUCID_TEST_DB=postgres).

initdb into a temporary directory, then pg_ctl start with a unix socket in that
directory and no TCP (listen_addresses = ''), run as an unprivileged user
(PostgreSQL refuses to run as root: when we are root, the server runs as
LUCID_TEST_PG_USER, default "nobody", through runuser). fsync is off: the
cluster lives as long as the tests.

Two ways to use it:
- ctest: `pg_harness.py start STATE` (fixture setup) starts one cluster and
  writes STATE (JSON: socket directory, data directory) or, when PostgreSQL
  cannot start, STATE with the reason (and still exits 0, so that every test
  of the fixture runs and reports SKIPPED with it: pg_run.py); `pg_harness.py
  stop STATE` (cleanup) stops it. Tests find STATE through LUCID_TEST_PG_STATE.
- alone (a test run by hand with LUCID_TEST_DB=postgres and no state file):
  the first Server starts a private cluster, stopped at exit.

Each lucid-server of the tests gets a fresh database (new_database()).

Roles: "lucid" (superuser, trust over the socket) for the servers, and
"lucid_pw" (password "pw-secret", scram-sha-256) for tests of password
handling.
"""

import atexit
import glob
import itertools
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading

SKIP = 77  # ctest SKIP_RETURN_CODE
PASSWORD_ROLE = "lucid_pw"
PASSWORD = "pw-secret"


class Unavailable(Exception):
    """PostgreSQL cannot be started here (the reason is the message)."""


def bin_dir():
    """The directory of initdb/pg_ctl/psql: LUCID_TEST_PG_BIN, else the newest
    /usr/lib/postgresql/<version>/bin (Debian's layout)."""
    explicit = os.environ.get("LUCID_TEST_PG_BIN")
    if explicit:
        return explicit
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not found:
        raise Unavailable("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; scripts/setup installs it)")
    return os.path.dirname(found[-1])


def _as_user():
    """The runuser prefix and uid for PostgreSQL's processes."""
    if os.geteuid() != 0:
        return [], os.geteuid(), os.getegid()
    name = os.environ.get("LUCID_TEST_PG_USER", "nobody")
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise Unavailable("no user %r to run PostgreSQL as (we are root; set LUCID_TEST_PG_USER)" % name)
    if not shutil.which("runuser"):
        raise Unavailable("runuser not found (needed to run PostgreSQL as %s)" % name)
    return ["runuser", "-u", name, "--"], pw.pw_uid, pw.pw_gid


class Cluster:
    def __init__(self, base, socket_dir, data_dir, owned=True):
        self.base = base
        self.socket_dir = socket_dir
        self.data_dir = data_dir
        self.owned = owned
        self._names = itertools.count(1)
        self._lock = threading.Lock()

    @staticmethod
    def start(base=None):
        """initdb + pg_ctl start; raises Unavailable with the reason."""
        bindir = bin_dir()
        prefix, uid, gid = _as_user()
        base = base or tempfile.mkdtemp(prefix="lucid-pg-")
        os.chmod(base, 0o755)  # the unprivileged server must reach its directory
        data = os.path.join(base, "data")
        sock = os.path.join(base, "sock")
        os.makedirs(sock, exist_ok=True)
        os.chown(sock, uid, gid)
        log = os.path.join(base, "server.log")
        os.chown(base, uid, gid)
        run = lambda args, **kw: subprocess.run(prefix + args, capture_output=True, text=True, timeout=120, **kw)
        r = run([os.path.join(bindir, "initdb"), "-D", data, "-U", "lucid", "-A", "trust", "-E", "UTF8",
                 "--locale=C", "--no-sync"])
        if r.returncode != 0:
            raise Unavailable("initdb failed: " + (r.stderr or r.stdout).strip()[-500:])
        # The password role authenticates with scram-sha-256; everything else is trusted.
        hba = os.path.join(data, "pg_hba.conf")
        with open(hba, "w") as f:
            f.write("local all %s scram-sha-256\nlocal all all trust\n" % PASSWORD_ROLE)
        opts = ("-c listen_addresses='' -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                " -c max_connections=400 -c shared_buffers=32MB" % sock)
        r = run([os.path.join(bindir, "pg_ctl"), "-D", data, "-l", log, "-o", opts, "-w", "-t", "60", "start"])
        if r.returncode != 0:
            tail = ""
            if os.path.exists(log):
                with open(log, errors="replace") as f:
                    tail = f.read()[-800:]
            raise Unavailable("pg_ctl start failed: " + (r.stderr or r.stdout).strip()[-300:] + " " + tail)
        c = Cluster(base, sock, data)
        c.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (PASSWORD_ROLE, PASSWORD))
        return c

    def stop(self):
        prefix, _, _ = _as_user()
        subprocess.run(prefix + [os.path.join(bin_dir(), "pg_ctl"), "-D", self.data_dir, "-m", "immediate", "-w",
                                 "stop"], capture_output=True, timeout=120)
        shutil.rmtree(self.base, ignore_errors=True)

    def psql(self, sql, dbname="postgres", user="lucid"):
        """Runs `sql` (one statement or several) with psql; returns stdout
        (unaligned, tuples only, fields separated by '|')."""
        r = subprocess.run([os.path.join(bin_dir(), "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", self.socket_dir, "-U", user, "-d", dbname, "-c", sql],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("psql failed: " + r.stderr.strip())
        return r.stdout

    def uri(self, dbname, user="lucid"):
        return "postgresql:///%s?host=%s&user=%s" % (dbname, self.socket_dir, user)

    def new_database(self, owner="lucid"):
        """A fresh, empty database (UTF8, C collation) owned by `owner`; returns
        its URI (connecting as the owner)."""
        with self._lock:
            name = "lucid_%d_%d_%s" % (os.getpid(), next(self._names), os.urandom(4).hex())
        self.psql("CREATE DATABASE %s OWNER %s TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
                  % (name, owner))
        return self.uri(name, user=owner)

    def state(self):
        return {"base": self.base, "socket_dir": self.socket_dir, "data_dir": self.data_dir}


def _literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, bytes):
        return "'\\x%s'::bytea" % v.hex()
    return "'" + str(v).replace("'", "''") + "'"


def _fill(sql, args):
    parts = sql.split("?")
    if len(parts) - 1 != len(args):
        raise ValueError("%d parameters, %d arguments" % (len(parts) - 1, len(args)))
    return parts[0] + "".join(_literal(a) + p for a, p in zip(args, parts[1:]))


def _psql(uri, sql, quiet=True):
    # The SQL goes on stdin: a literal may be longer than one argument may be.
    r = subprocess.run([os.path.join(bin_dir(), "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                        "-F", "\x1f", "-P", "null=\x1e", "-d", uri, "-f", "-"] + (["-q"] if quiet else []),
                       input=sql, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("psql failed: " + r.stderr.strip()[:2000])
    return r.stdout


def query(uri, sql, args=()):
    """Rows of `sql` (with SQLite's `?` parameters, filled from `args` as
    quoted literals) on the database at `uri`, through psql: a list of
    tuples; integers come back as int, BYTEA as bytes, NULL as None, the rest
    as text."""
    rows = []
    for line in _psql(uri, _fill(sql, args)).split("\n"):
        if line == "":
            continue
        row = []
        for field in line.split("\x1f"):
            if field == "\x1e":
                row.append(None)
            elif field.lstrip("-").isdigit():
                row.append(int(field))
            elif field.startswith("\\x") and all(c in "0123456789abcdef" for c in field[2:]):
                row.append(bytes.fromhex(field[2:]))
            else:
                row.append(field)
        rows.append(tuple(row))
    return rows


def execute(uri, sql, args=()):
    """Runs one INSERT/UPDATE/DELETE (`?` parameters as in query()); returns
    the number of rows it changed."""
    out = _psql(uri, _fill(sql, args), quiet=False).strip().split()
    return int(out[-1])


_private = None
_private_lock = threading.Lock()


def cluster():
    """The cluster of this run: the fixture's (LUCID_TEST_PG_STATE) or a private
    one started now. Raises Unavailable with the reason."""
    global _private
    with _private_lock:
        if _private is not None:
            return _private
        state_file = os.environ.get("LUCID_TEST_PG_STATE")
        if state_file and os.path.exists(state_file):
            with open(state_file) as f:
                st = json.load(f)
            if "unavailable" in st:
                raise Unavailable(st["unavailable"])
            _private = Cluster(st["base"], st["socket_dir"], st["data_dir"], owned=False)
        else:
            try:
                _private = Cluster.start()
            except OSError as e:  # a binary that cannot run
                raise Unavailable(str(e))
            atexit.register(_private.stop)
        return _private


def enabled():
    """True when the tests run on PostgreSQL (LUCID_TEST_DB=postgres)."""
    return os.environ.get("LUCID_TEST_DB", "sqlite") == "postgres"


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        print("usage: pg_harness.py start|stop STATE", file=sys.stderr)
        return 2
    state_file = argv[2]
    if argv[1] == "start":
        try:
            c = Cluster.start()
        except (Unavailable, OSError) as e:
            with open(state_file, "w") as f:
                json.dump({"unavailable": str(e)}, f)
            # The fixture itself passes (ctest would not run a failed or
            # skipped fixture's tests): each pg.* test then reports SKIPPED
            # with this reason.
            print("PostgreSQL cannot start (every pg.* test is SKIPPED): %s" % e)
            return 0
        with open(state_file, "w") as f:
            json.dump(c.state(), f)
        print("PostgreSQL started: socket %s" % c.socket_dir)
        return 0
    if not os.path.exists(state_file):
        print("no cluster to stop")
        return 0
    with open(state_file) as f:
        st = json.load(f)
    os.unlink(state_file)
    if "unavailable" in st:
        print("PostgreSQL was not started: %s" % st["unavailable"])
        return 0
    Cluster(st["base"], st["socket_dir"], st["data_dir"]).stop()
    print("PostgreSQL stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
