#!/usr/bin/env python3
"""Fails when C or C++ code outside lib/store names the SQLite API.

The store (lib/store) is the only code that may include SQLite's headers or
call it: capabilities, apps, bindings, tests, benchmarks and examples go
through the neutral API of lib/store/store.hpp, so that another backend
(issue 14: PostgreSQL) can replace SQLite without touching them. Python tests
that open a database file with Python's sqlite3 module are not C++ and are not
checked.

Usage: check_store_boundary.py REPO_ROOT   (exit 0: clean, 1: violations listed)
"""
import os
import re
import sys

DIRS = ('lib', 'include', 'apps', 'bindings', 'tests', 'bench', 'examples', 'fuzz')
EXTS = ('.c', '.cc', '.cpp', '.cxx', '.h', '.hh', '.hpp', '.hxx')
FORBIDDEN = re.compile(r'SQLite::|sqlite3|SQLiteCpp|\bSQLITE_[A-Z]')
ALLOWED = os.path.join('lib', 'store') + os.sep


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    root = sys.argv[1]
    bad = []
    for top in DIRS:
        for d, subdirs, names in os.walk(os.path.join(root, top)):
            subdirs[:] = [s for s in subdirs if s != 'build']
            for n in sorted(names):
                if not n.endswith(EXTS):
                    continue
                path = os.path.join(d, n)
                rel = os.path.relpath(path, root)
                if rel.startswith(ALLOWED):
                    continue
                with open(path, encoding='utf-8', errors='replace') as f:
                    for no, line in enumerate(f, 1):
                        if FORBIDDEN.search(line):
                            bad.append(f'{rel}:{no}: {line.strip()}')
    for b in bad:
        print(b)
    if bad:
        print(f'{len(bad)} line(s) outside lib/store name the SQLite API; use lib/store/store.hpp')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
