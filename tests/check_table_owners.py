#!/usr/bin/env python3
"""Lists which area of lib/ writes each table, and fails when a table has two.

Issue 13: each table is written by exactly one area's row module (a folder
under lib/); another area changes it only by calling that area's functions
inside its own transaction (lib/pools/pool_rules.hpp, lib/nodes/node_rows.hpp).

The check reads the C++ sources the way the compiler sees their strings: it
skips comments and character literals, decodes ordinary and raw string
literals (any encoding prefix, any raw delimiter), joins adjacent literals
into one (also across backslash-newlines and object-like macros whose body is
string literals, such as LUCID_NODE_SELECT), and only then looks for
INSERT / REPLACE / UPDATE / DELETE / UPSERT statements in the joined text. A
write split over several literals, hidden in a raw string or in a macro is
found all the same; one whose table name is not a literal (built at run time)
is reported as a table named "?" and fails the check, since nobody could tell
which table it writes.

Usage: check_table_owners.py [--root DIR]   (DIR holds lib/; default: the tree)
       check_table_owners.py --self-test    (runs the fixtures in tests/fixtures/table_owners)
Exit status 0 when every table has one writing area, 1 otherwise.
"""
import argparse
import os
import re
import subprocess
import sys
from collections import defaultdict

SOURCE_SUFFIXES = (".cpp", ".hpp", ".h", ".cc", ".hh", ".ipp")
# Migrations create and reshape every table; they are the schema, not a writer.
EXCLUDED_PREFIXES = ("store/migrations",)

_IDENT = re.compile(r"[A-Za-z_]\w*")
_LITERAL_PREFIX = re.compile(r'(u8|u|U|L)?(R)?"')
_NAME = r'["`\[]?([A-Za-z_][\w.]*)["`\]]?'
# What writes a table, in the joined text of one literal (case-insensitive).
_WRITES = [
    re.compile(r"\bINSERT\s+(?:OR\s+\w+\s+)?INTO\s+" + _NAME, re.I),
    re.compile(r"\bREPLACE\s+INTO\s+" + _NAME, re.I),
    re.compile(r"\bUPSERT\s+(?:INTO\s+)?" + _NAME, re.I),
    re.compile(r"\bDELETE\s+FROM\s+" + _NAME, re.I),
    re.compile(r"\bUPDATE\s+(?:OR\s+\w+\s+)?" + _NAME + r"\s+SET\b", re.I),
]
# A write keyword with no table name after it in the literal: the name is
# computed at run time.
_DYNAMIC = [
    re.compile(r"\bINSERT\s+(?:OR\s+\w+\s+)?INTO\s*$", re.I),
    re.compile(r"\bREPLACE\s+INTO\s*$", re.I),
    re.compile(r"\bDELETE\s+FROM\s*$", re.I),
    re.compile(r"^\s*UPDATE\s*$", re.I),
]
_SQL_STRING = re.compile(r"'(?:[^']|'')*'")
_NOT_TABLES = {"set", "select", "values", "where"}


class SourceError(Exception):
    pass


def _string_end(text, i, path):
    """Index after the ordinary string literal whose opening quote is at i."""
    j = i + 1
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == '"':
            return j + 1
        if c == "\n":
            raise SourceError("%s: newline in a string literal" % path)
        j += 1
    raise SourceError("%s: unterminated string literal" % path)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b",
            "f": "\f", "v": "\v", "?": "?"}


def _decode(body):
    """The value of an ordinary literal's body (escapes resolved; enough for SQL)."""
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            n = body[i + 1]
            if n == "\n":  # a line splice inside the literal
                i += 2
                continue
            out.append(_ESCAPES.get(n, n))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def tokens(text, path=""):
    """Yields ('str', value, line), ('id', name, line), ('pp', directive, line) and
    ('punct', char, line) tokens of C++ source, without comments."""
    i = 0
    n = len(text)
    line = 1
    at_line_start = True
    in_define = False
    while i < n:
        c = text[i]
        if c == "\n":
            if in_define:
                yield ("ppend", "", line)
                in_define = False
            line += 1
            at_line_start = True
            i += 1
            continue
        if c in " \t\r\f\v":
            i += 1
            continue
        if c == "\\" and i + 1 < n and text[i + 1] == "\n":  # line splice between tokens
            line += 1
            i += 2
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise SourceError("%s: unterminated comment" % path)
            line += text.count("\n", i, j)
            i = j + 2
            continue
        if c == "#" and at_line_start:
            # A directive: #define keeps going (its body is tokenized by the
            # caller); others (#include "x.hpp") are skipped to the line end.
            m = re.compile(r"#\s*(\w+)").match(text, i)
            word = m.group(1) if m else ""
            if word == "define":
                yield ("pp", "define", line)
                i = m.end()
                at_line_start = False
                in_define = True
                continue
            j = i
            while True:
                k = text.find("\n", j)
                if k < 0:
                    j = n
                    break
                if text[k - 1] == "\\":
                    line += 1
                    j = k + 1
                    continue
                j = k
                break
            i = j
            continue
        at_line_start = False
        m = _LITERAL_PREFIX.match(text, i)
        if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            start_line = line
            if m.group(2):  # raw string: R"delim( ... )delim"
                open_paren = text.find("(", m.end())
                if open_paren < 0 or open_paren - m.end() > 16:
                    raise SourceError("%s:%d: bad raw string" % (path, line))
                delim = text[m.end():open_paren]
                close = text.find(")" + delim + '"', open_paren + 1)
                if close < 0:
                    raise SourceError("%s:%d: unterminated raw string" % (path, line))
                value = text[open_paren + 1:close]
                line += value.count("\n")
                i = close + len(delim) + 2
            else:
                q = m.end() - 1
                end = _string_end(text, q, path)
                raw = text[q + 1:end - 1]
                line += raw.count("\n")
                value = _decode(raw)
                i = end
            # A user-defined literal suffix ("..."sv) belongs to the literal.
            s = _IDENT.match(text, i)
            if s and (s.group(0).startswith("_") or s.group(0) in ("sv", "s")):
                i = s.end()
            yield ("str", value, start_line)
            continue
        if c == "'":  # character literal (or a digit separator: 1'000)
            if i > 0 and text[i - 1].isalnum():
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        m = _IDENT.match(text, i)
        if m:
            yield ("id", m.group(0), line)
            i = m.end()
            continue
        yield ("punct", c, line)
        i += 1


def joined_literals(text, path=""):
    """The string constants of a source file as the compiler joins them: a list
    of (line, text). Object-like macros whose body is only literals (and such
    macros) expand where they are used between literals."""
    macros = {}
    out = []
    toks = list(tokens(text, path))
    i = 0
    while i < len(toks):
        kind, value, line = toks[i]
        if kind == "pp":  # #define NAME body... up to the end of the directive
            name_tok = toks[i + 1] if i + 1 < len(toks) else None
            j = i + 2
            body = []
            while j < len(toks) and toks[j][0] != "ppend":
                body.append(toks[j])
                j += 1
            if name_tok and name_tok[0] == "id":
                parts = []
                ok = bool(body)
                for k, v, _ in body:
                    if k == "str":
                        parts.append(v)
                    elif k == "id" and v in macros:
                        parts.append(macros[v])
                    else:
                        ok = False
                if ok:
                    macros[name_tok[1]] = "".join(parts)
            # Literals inside any macro body still count (a function-like macro
            # may hide a statement).
            _collect(body, macros, out)
            i = j + 1
            continue
        j = i
        while j < len(toks) and toks[j][0] != "pp":
            j += 1
        _collect(toks[i:j], macros, out)
        i = j
    return out


def _collect(toks, macros, out):
    run = []
    run_line = None
    for kind, value, line in toks + [("punct", ";", 0)]:
        if kind == "str" or (kind == "id" and value in macros and run):
            if not run:
                run_line = line
            run.append(value if kind == "str" else macros[value])
            continue
        if kind == "id" and value in macros and not run:
            run_line = line
            run.append(macros[value])
            continue
        if run:
            out.append((run_line, "".join(run)))
            run = []


def writes_in(text, path=""):
    """(table, line) of every write statement in the source `text`."""
    found = []
    for line, s in joined_literals(_unsplice_defines(text), path):
        s = _SQL_STRING.sub("''", s)  # data inside SQL strings is no statement
        for rx in _WRITES:
            for m in rx.finditer(s):
                table = m.group(1).split(".")[-1].lower()
                if table not in _NOT_TABLES:
                    found.append((table, line))
        for rx in _DYNAMIC:
            if rx.search(s):
                found.append(("?", line))
    return found


def _unsplice_defines(text):
    """Translation phase 2: joins backslash-newline continuations into one
    physical line (appending the removed newlines after it, so line numbers of
    later lines stay), so a multi-line #define reads as one line. (C++ undoes
    splices inside raw strings; SQL in a raw string does not end a line with a
    backslash, and if it did only two lines of the literal would be joined.)"""
    lines = text.split("\n")
    out = []
    pending = []
    extra = 0
    for l in lines:
        if l.endswith("\\"):
            pending.append(l[:-1])
            extra += 1
            continue
        pending.append(l)
        out.append("".join(pending))
        out.extend([""] * extra)
        pending = []
        extra = 0
    if pending:
        out.append("".join(pending))
    return "\n".join(out)


def scan(root):
    """{table: {area: [(path, line), ...]}} for the sources under root/lib."""
    lib = os.path.join(root, "lib")
    owners = defaultdict(lambda: defaultdict(list))
    for dirpath, dirnames, filenames in os.walk(lib):
        dirnames.sort()
        for f in sorted(filenames):
            if not f.endswith(SOURCE_SUFFIXES):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, lib).replace(os.sep, "/")
            if rel.startswith(EXCLUDED_PREFIXES):
                continue
            area = rel.split("/")[0] if "/" in rel else "(lib)"
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            for table, line in writes_in(text, rel):
                owners[table][area].append((rel, line))
    return owners


def report(owners, out=sys.stdout):
    """Prints table -> writing area(s); returns the tables with more than one."""
    bad = []
    width = max([len(t) for t in owners] + [5])
    print("%-*s  %s" % (width, "table", "writing area"), file=out)
    for table in sorted(owners):
        areas = owners[table]
        print("%-*s  %s" % (width, table, ", ".join(sorted(areas))), file=out)
        if len(areas) > 1 or table == "?":
            bad.append(table)
    for table in bad:
        print("\nFAIL: table %s is written by %d areas (one owner per table, issue 13):" %
              (table, len(owners[table])), file=out)
        for area in sorted(owners[table]):
            for path, line in owners[table][area]:
                print("  lib/%s:%d (%s)" % (path, line, area), file=out)
    return bad


def self_test():
    """Each fixture under tests/fixtures/table_owners is a tree with a lib/ and
    an EXPECT file: 'pass', or 'fail <table>' naming the table that must be
    reported. Returns the number of fixtures that did not behave."""
    here = os.path.dirname(os.path.abspath(__file__))
    base = os.path.join(here, "fixtures", "table_owners")
    failures = 0
    names = sorted(os.listdir(base))
    if not names:
        print("no fixtures in %s" % base)
        return 1
    for name in names:
        root = os.path.join(base, name)
        with open(os.path.join(root, "EXPECT")) as fh:
            expect = fh.read().split()
        # Run as a separate process: the exit status is what ctest sees.
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--root", root],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        ok = (expect[0] == "pass" and p.returncode == 0) or \
             (expect[0] == "fail" and p.returncode == 1 and
              all(("FAIL: table %s " % t) in p.stdout for t in expect[1:]))
        print("%s %s (expected %s, exit %d)" % ("ok  " if ok else "FAIL", name, " ".join(expect), p.returncode))
        if not ok:
            print(p.stdout)
            failures += 1
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return 1 if self_test() else 0
    try:
        owners = scan(args.root)
    except SourceError as e:
        print("cannot read the sources: %s" % e)
        return 1
    if not owners:
        print("no write statements found under %s/lib: the scan is broken" % args.root)
        return 1
    return 1 if report(owners) else 0


if __name__ == "__main__":
    sys.exit(main())
