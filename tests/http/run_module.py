#!/usr/bin/env python3
"""Runs one unittest module for ctest: `run_module.py MODULE` (from the
module's directory). Exit 0 when every test passed, 1 when any failed, and 77
(the ctest entry's SKIP_RETURN_CODE) when none failed but some were skipped:
ctest counts a module per entry, so one skipped case makes the entry skipped,
never passed. Each skip prints "SKIPPED: <test>: <reason>"."""
import os
import sys
import unittest

from lucidtest import SKIP_RETURN_CODE


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: run_module.py MODULE\n")
        return 2
    sys.path.insert(0, os.getcwd())
    suite = unittest.defaultTestLoader.loadTestsFromName(sys.argv[1])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    for test, reason in result.skipped:
        sys.stderr.write("SKIPPED: %s: %s\n" % (test.id(), reason))
    return SKIP_RETURN_CODE if result.skipped else 0


if __name__ == "__main__":
    sys.exit(main())
