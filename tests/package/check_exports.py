#!/usr/bin/env python3
"""Checks liblucidnode.so against tests/package/exports.allow: its dynamic
symbol table exports only the public C++ API and the C ABI (every C function
of the header, nothing internal), and it links only the core's own
dependencies (its NEEDED entries and everything ldd loads for them).
Prints the figures; exits 1 listing every offending symbol or library."""
import argparse
import re
import subprocess
import sys


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", required=True)
    ap.add_argument("--allow", required=True)
    ap.add_argument("--header", help="bindings/c/lucidnode.h: its LUCID_API functions must be exported")
    args = ap.parse_args()

    # "forbid": a library ldd must not list even if another line allows it
    # (libpq and what it drags in stay out of liblucidnode: issue 20).
    patterns = {"symbol": [], "needed": [], "loaded": [], "forbid": []}
    for line in open(args.allow, encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kind, _, rx = line.partition(" ")
        patterns[kind].append(re.compile(rx.strip()))

    problems = []
    names = []
    for line in run("nm", "-D", "--defined-only", "--demangle", args.library).splitlines():
        parts = line.split(" ", 2)
        if len(parts) < 3:
            continue
        kind, name = parts[1], parts[2]
        if kind == "A":  # the version node itself (LUCIDNODE_0)
            continue
        names.append(re.sub(r"@@?[A-Z0-9_]+$", "", name))
    for name in names:
        own = name.split("(", 1)[0]
        if "lucid::detail::" in own.replace("for lucid::detail::", "lucid::detail::") or "::Impl" in own:
            problems.append(f"internal symbol exported: {name}")
        elif not any(p.search(name) for p in patterns["symbol"]):
            problems.append(f"symbol not on the allow-list: {name}")

    declared = set()
    if args.header:
        declared = set(re.findall(r"LUCID_API\s[^;]*?\b(lucid_[a-z0-9_]+)\s*\(", open(args.header, encoding="utf-8").read()))
    exported = set(names)
    for fn in sorted(declared - exported):
        problems.append(f"C function declared in {args.header} but not exported: {fn}")

    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run("readelf", "-d", args.library))
    for lib in needed:
        if not any(p.search(lib) for p in patterns["needed"]):
            problems.append(f"linked library not on the allow-list: {lib}")
    loaded = []
    for line in run("ldd", args.library).splitlines():
        lib = line.strip().split(" ", 1)[0]
        if lib:
            loaded.append(lib)
            if any(p.search(lib) for p in patterns["forbid"]):
                problems.append(f"ldd loads a forbidden library: {lib}")
            elif not any(p.search(lib) for p in patterns["needed"] + patterns["loaded"]):
                problems.append(f"ldd loads a library not on the allow-list: {lib}")

    cxx = sum(1 for n in names if not n.startswith("lucid_"))
    print(f"{args.library}: {len(names)} exported symbols ({len(names) - cxx} C, {cxx} C++), "
          f"{len(declared)} C functions declared; NEEDED {len(needed)}: {' '.join(needed)}; ldd lists {len(loaded)}")
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
