"""Runs one test module (or program) of the suite on PostgreSQL for ctest.

    pg_run.py MODULE              run_module.py MODULE with LUCID_TEST_DB=postgres
                                  (77 when a case skipped and none failed)
    pg_run.py --exec PROGRAM ...  PROGRAM with LUCID_TEST_PG_URI_BASE set (unit tests)

Exits 77 (ctest's SKIP_RETURN_CODE) with the reason when PostgreSQL could not
be started (the pg.start fixture wrote that in LUCID_TEST_PG_STATE); without a
fixture state the harness starts a private PostgreSQL for this run.
"""
import os
import subprocess
import sys

import pg_harness


def main(argv):
    if len(argv) < 2:
        print("usage: pg_run.py MODULE | pg_run.py --exec PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    try:
        cluster = pg_harness.cluster()
    except pg_harness.Unavailable as e:
        print("SKIPPED: PostgreSQL cannot start: %s" % e)
        return pg_harness.SKIP
    env = dict(os.environ, LUCID_TEST_DB="postgres")
    if argv[1] == "--exec":
        # The unit tests make their own databases through this maintenance URI.
        env["LUCID_TEST_PG_URI_BASE"] = cluster.uri("postgres")
        env["LUCID_TEST_PG_PASSWORD_URI"] = cluster.uri("postgres", user=pg_harness.PASSWORD_ROLE)
        env["LUCID_TEST_PG_PASSWORD"] = pg_harness.PASSWORD
        return subprocess.call(argv[2:], env=env)
    # run_module.py, like the SQLite entries: a skipped case makes the entry
    # skipped (77), never passed.
    runner = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_module.py")
    return subprocess.call([sys.executable, runner, argv[1]], env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
