#!/usr/bin/env python3
"""Prints a fleet report from a lucidnode database, opened READ-ONLY: nodes,
pools, payout totals and the ledger's state. Needs no key file and writes
nothing, so it is safe against a live server's database.

    LUCIDNODE_LIBRARY=build/lib/liblucidnode.so PYTHONPATH=bindings/python \\
        python3 examples/fleet_report.py /var/lib/lucid-server/lucid.db
"""
import argparse
import sys
from collections import defaultdict
from decimal import Decimal
from typing import DefaultDict, TextIO, Tuple

import lucidnode


def report(db_path: str, out: TextIO = sys.stdout) -> int:
    with lucidnode.Cluster(db_path, read_only=True) as cluster:
        nodes = list(cluster.iter_nodes())
        pools = list(cluster.iter_pools())
        pool_names = {p["uid"]: p["name"] for p in pools}
        print(f"fleet report: {db_path} (lucidnode {lucidnode.version()}, read-only)", file=out)

        print(f"\nnodes: {len(nodes)}", file=out)
        if nodes:
            print(f"  {'ID':>4}  {'HOSTNAME':<32} {'STATUS':<8} {'LIVENESS':<8} {'LIFECYCLE':<11} "
                  f"{'POOL':<16} {'CPU%':>6}", file=out)
        for n in nodes:
            stats = n["latest_stats"]
            cpu = f"{stats['cpu_usage']:.1f}" if stats is not None else "-"
            pool = pool_names.get(n["pool_uid"], "-") if n["pool_uid"] else "-"
            print(f"  {n['id']:>4}  {n['hostname']:<32} {n['status']:<8} {n['liveness']:<8} "
                  f"{n['lifecycle']:<11} {pool:<16} {cpu:>6}", file=out)

        print(f"\npools: {len(pools)}", file=out)
        for p in pools:
            cap = p["max_nodes"] if p["max_nodes"] is not None else "unbounded"
            print(f"  {p['uid']}  {p['name']:<24} nodes {p['node_count']} of {cap}", file=out)

        # Totals per (currency, status), in exact decimals.
        counts: DefaultDict[Tuple[str, str], int] = defaultdict(int)
        amounts: DefaultDict[Tuple[str, str], Decimal] = defaultdict(Decimal)
        for n in nodes:
            for payout in cluster.iter_payouts(n["uid"]):
                key = (payout["currency"], payout["status"])
                counts[key] += 1
                amounts[key] += Decimal(payout["amount"])
        print(f"\npayouts: {sum(counts.values())}", file=out)
        for (currency, status), count in sorted(counts.items()):
            amount = amounts[(currency, status)]
            print(f"  {currency:<6} {status:<10} {count:>6} payouts  {amount:f}", file=out)

        v = cluster.verify_ledger()
        state = "intact" if v["ok"] else f"BROKEN ({v['problem']})"
        print(f"\nledger: {state}, {v['blocks']} blocks, {v['transactions']} transactions, "
              f"{v['pending']} pending", file=out)
        return 0 if v["ok"] else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("database", help="path of the lucidnode database file")
    args = ap.parse_args()
    try:
        return report(args.database)
    except lucidnode.LucidError as e:
        print(f"fleet_report: {e.code}: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
