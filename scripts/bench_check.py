#!/usr/bin/env python3
"""Fail when a benchmark ratio regressed: the nightly-CI bench step (docs/ci/*-nightly.yml).

Reads scripts/bench.sh's results.jsonl, takes the median of each paired ratio (fleetstorm over
rdkafka_performance, run back to back on the same target: produce unkeyed and keyed, replay
reads when present) and compares it with a committed baseline:

    bench_check.py RESULTS --baseline docs/benchmarks/ratio-baseline.json     # exit 1 on a regression
    bench_check.py RESULTS --write-baseline FILE [--tolerance 0.10]           # record a new baseline

A ratio fails when it is below its baseline by more than the tolerance (an absolute ratio
difference). Ratios, not records/s, because a CI machine's speed varies from night to night and
both tools see the same machine in the same minute. BENCHMARKS.md says how the tolerance was
chosen from the measured spread.
"""
import argparse
import json
import statistics
import sys
from collections import defaultdict

PAIRS = [  # (name, fleetstorm tool, rdkafka_performance tool)
    ("produce unkeyed", "fleetstorm-unkeyed", "rdkafka_performance"),
    ("produce keyed", "fleetstorm", "rdkafka_performance-spread"),
    ("replay group", "fleetstorm-group", "rdkafka_performance-group"),
    ("replay audit", "fleetstorm-audit", "rdkafka_performance-assign"),
]


def paired(a, b):
    """Ratios a/b of the repetitions both ran ({rep: records/s} each), in a's order."""
    return [a[i] / b[i] for i in a if i in b and b[i]]


def ratios(rows):
    """{key: [paired ratios]} with key = "target/part/size/acks/pair"."""
    by = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        if r.get("part") not in ("produce", "consume") or not r.get("msgs_per_s"):
            continue
        k = (r["target"], r["part"], r.get("size") or "-", str(r.get("acks") or "-"))
        by[k][r["tool"]][r["rep"]] = r["msgs_per_s"]
    out = {}
    for (target, part, size, acks), tools in by.items():
        for name, fs, rk in PAIRS:
            a, b = tools.get(fs, {}), tools.get(rk, {})
            xs = paired(a, b)
            if xs:
                out[f"{target}/{part}/{size}/{acks}/{name}"] = xs
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("--baseline")
    ap.add_argument("--write-baseline")
    ap.add_argument("--tolerance", type=float, default=0.10)
    a = ap.parse_args()
    rows = [json.loads(line) for line in open(a.results, encoding="utf-8") if line.strip()]
    got = {k: statistics.median(v) for k, v in ratios(rows).items()}
    if not got:
        print(f"bench_check: no paired ratios in {a.results}", file=sys.stderr)
        return 2
    if a.write_baseline:
        with open(a.write_baseline, "w", encoding="utf-8") as f:
            json.dump({"tolerance": a.tolerance, "ratios": {k: round(v, 3) for k, v in sorted(got.items())}}, f, indent=2)
            f.write("\n")
        print(f"bench_check: wrote {len(got)} ratios to {a.write_baseline}")
        return 0
    if not a.baseline:
        ap.error("--baseline or --write-baseline is required")
    base = json.load(open(a.baseline, encoding="utf-8"))
    tol = float(base.get("tolerance", a.tolerance))
    failed = 0
    print(f"{'ratio':<45} {'baseline':>8} {'now':>6}  verdict (tolerance {tol:.2f})")
    for k, b in sorted(base["ratios"].items()):
        now = got.get(k)
        if now is None:
            print(f"{k:<45} {b:>8.2f} {'-':>6}  not measured")
            continue
        ok = now >= b - tol
        failed += not ok
        print(f"{k:<45} {b:>8.2f} {now:>6.2f}  {'ok' if ok else 'REGRESSED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
