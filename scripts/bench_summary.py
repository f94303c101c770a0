#!/usr/bin/env python3
"""Summarise scripts/bench.sh's results.jsonl as Markdown: medians, side-by-side ratios, and
whether each target of issue 6 / BENCHMARKS.md is met. Reads only the JSON lines."""

import argparse
import json
import statistics
from collections import defaultdict

from bench_check import paired


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_rate(x):
    return f"{x:,.0f}"


def version(hexstr):
    try:
        v = int(hexstr, 16)
        return f"{v >> 24}.{(v >> 16) & 0xFF}.{(v >> 8) & 0xFF}"
    except ValueError:
        return hexstr


def rep_ratios(a, b):
    """Paired records/s ratios of two tools' rows ({rep: row} each)."""
    return paired(*({k: r["msgs_per_s"] for k, r in side.items()} for side in (a, b)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--machine", default="?")
    ap.add_argument("--librdkafka", default="?")
    a = ap.parse_args()
    rows = [json.loads(line) for line in open(a.results, encoding="utf-8") if line.strip()]

    out = []
    out.append(f"Machine: {a.machine}. librdkafka {version(a.librdkafka)} (the same static library "
               "links fleetstorm and rdkafka_performance).\n")

    produce = [r for r in rows if r.get("part") == "produce"]
    if produce:
        inst = sorted({r.get("instances", 1) for r in produce if r["tool"].startswith("fleetstorm")})
        out.append("## a. Max-rate produce throughput (records/s, medians; ratios paired run by run; "
                   f"fleetstorm producer instances: {', '.join(map(str, inst))})\n")
        out.append("Two like-for-like pairs: fleetstorm with unkeyed records against rdkafka_performance "
                   "(which sends unkeyed records), and fleetstorm keyed by device id (its default) against "
                   "rdkafka_performance spreading records over partitions like keyed traffic "
                   "(`sticky.partitioning.linger.ms=0`). The last column is the keyed fleetstorm against "
                   "rdkafka_performance's default, the least alike pair.\n")
        out.append("| target | value | acks | unkeyed ratio | range | keyed ratio to spread | range "
                   "| fleetstorm unkeyed | rdkafka_performance | fleetstorm keyed | rdkafka_performance spread "
                   "| keyed ratio to default | ≥ 0.9 (unkeyed, keyed) |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        groups = defaultdict(lambda: defaultdict(dict))
        for r in produce:
            groups[(r["target"], r["size"], str(r["acks"]))][r["tool"]][r["rep"]] = r

        def ratio_cells(xs):
            """Two cells: the median in bold, then the range over the paired runs."""
            return f"**{med(xs):.2f}** | " + (f"{min(xs):.2f}–{max(xs):.2f}" if xs else "–")

        def rate(tool):
            return fmt_rate(med([x["msgs_per_s"] for x in tool.values()])) if tool else "–"

        for (target, size, acks), tools in sorted(groups.items(), key=lambda kv: (kv[0][0] != "embedded", kv[0][1], kv[0][2])):
            fs = tools.get("fleetstorm", {})
            fu = tools.get("fleetstorm-unkeyed", {})
            rk = tools.get("rdkafka_performance", {})
            sp = tools.get("rdkafka_performance-spread", {})
            ru, rs, rd = rep_ratios(fu, rk), rep_ratios(fs, sp), rep_ratios(fs, rk)
            met = ", ".join("yes" if med(xs) >= 0.9 else "no" for xs in (ru, rs))
            out.append(
                f"| {target} | {size} B | {acks} | {ratio_cells(ru)} | {ratio_cells(rs)} "
                f"| {rate(fu)} | {rate(rk)} | {rate(fs)} | {rate(sp)} | {med(rd):.2f} | {met} |")
        incomplete = [r for r in produce if r.get("acked", r.get("count")) != r.get("count")]
        if incomplete:
            out.append(f"\n{len(incomplete)} runs did not get every record acknowledged: see results.jsonl.")
        out.append("")

    rate = [r for r in rows if r.get("part") == "rate"]
    if rate:
        out.append("## b. Rate accuracy (open loop, acks=1, 100 B)\n")
        out.append("| target | planned/s | achieved / planned (median) | send lag p99 | ack p99 from intended "
                   "| backpressure waits | fleetstorm CPU (mean) | host CPU (mean) | harness saturated "
                   "| within 1 % and lag p99 < 1 ms |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        groups = defaultdict(list)
        for r in rate:
            groups[(r["target"], round(r["planned_per_s"]))].append(r)
        for (target, planned), rs in sorted(groups.items(), key=lambda kv: (kv[0][0] != "embedded", kv[0][1])):
            ratio = med([r["ratio"] for r in rs])
            lag = med([r["send_lag_p99_us"] for r in rs])
            ok = abs(ratio - 1) <= 0.01 and lag < 1000
            kept_up = not any(r["backpressure"] for r in rs)
            host = med([r.get("host_cpu_pct_mean", float("nan")) for r in rs])
            own = med([r.get("harness_cpu_pct_mean", float("nan")) for r in rs])
            if ok:
                verdict = "yes"
            elif not kept_up:
                verdict = "no: the target pushed back (backpressure)"
            elif host >= 90:
                verdict = "no: the host's CPU was saturated"
            else:
                verdict = "no"
            out.append(f"| {target} | {fmt_rate(planned)} | {ratio:.4f} | {lag / 1000:.3f} ms "
                       f"| {med([r['ack_p99_us'] for r in rs]) / 1000:.1f} ms | {sum(r['backpressure'] for r in rs)} "
                       f"| {own:.0f}% | {host:.0f}% "
                       f"| {sum(1 for r in rs if r['harness_saturated'])}/{len(rs)} | {verdict} |")
        out.append("")

    fleet = [r for r in rows if r.get("part") == "fleet"]
    if fleet:
        out.append("## c. Fleet scale (plan + schedule of idle devices, one event per hour each)\n")
        out.append("| devices | ready (median) | resident memory per device (median) | ≤ 64 B/device | 1M ready < 2 s |")
        out.append("|---|---|---|---|---|")
        groups = defaultdict(list)
        for r in fleet:
            groups[r["devices"]].append(r)
        for n, rs in sorted(groups.items()):
            ready = med([r["ready_s"] for r in rs])
            per = med([r["bytes_per_device"] for r in rs])
            fast = ("yes" if ready < 2 else "no") if n == 1_000_000 else "n/a"
            out.append(f"| {n:,} | {ready:.3f} s | {per:.1f} B | {'yes' if per <= 64 else 'no'} | {fast} |")
        out.append("")

    micro = [r for r in rows if r.get("part") == "micro"]
    if micro:
        out.append("## d. Per-sample costs (criterion, median and 95 % interval)\n")
        out.append("| benchmark | time | interval | < 50 ns |")
        out.append("|---|---|---|---|")
        for r in micro:
            target = "yes" if r["ns"] < 50 else "no"
            if not r["bench"].startswith("recorder/"):
                target = "n/a"
            out.append(f"| {r['bench']} | {r['ns']:.1f} ns | {r['low_ns']:.1f}–{r['high_ns']:.1f} ns | {target} |")
        out.append("")
    consume = [r for r in rows if r.get("part") == "consume"]
    if consume:
        out.append("## e. Replay reads (a pre-filled topic read from its start; records/s, medians; ratios paired run by run)\n")
        out.append("fleetstorm's group member against `rdkafka_performance -G` (a fresh group), its audit reader "
                   "against `rdkafka_performance -C` (assigned partitions, no group). fleetstorm records every "
                   "record as in a run (group: e2e and age histograms, the group's ledger, offsets; audit: the "
                   "seen-ledger with its order check). CPU: whole process, ns per record.\n")
        out.append("| target | reader | ratio | range | fleetstorm | rdkafka_performance | fleetstorm CPU/record "
                   "| rdkafka_performance CPU/record | recorded / read | ≥ 0.9 |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        groups = defaultdict(lambda: defaultdict(dict))
        for r in consume:
            side = "fs" if r["tool"].startswith("fleetstorm") else "rk"
            groups[(r["target"], r["reader"])][side][r["rep"]] = r
        for (target, reader), sides in sorted(groups.items(), key=lambda kv: (kv[0][0] != "embedded", kv[0][1] != "group")):
            fs, rk = sides.get("fs", {}), sides.get("rk", {})
            xs = rep_ratios(fs, rk)
            rng = f"{min(xs):.2f}–{max(xs):.2f}" if xs else "–"
            rec = f"{sum(r['recorded'] for r in fs.values()):,} / {sum(r['count'] for r in fs.values()):,}"

            def m(side, key):
                return med([x[key] for x in side.values()]) if side else float("nan")
            out.append(f"| {target} | {reader} | **{med(xs):.2f}** | {rng} | {fmt_rate(m(fs, 'msgs_per_s'))} "
                       f"| {fmt_rate(m(rk, 'msgs_per_s'))} | {m(fs, 'cpu_ns_per_record'):,.0f} ns "
                       f"| {m(rk, 'cpu_ns_per_record'):,.0f} ns | {rec} | {'yes' if med(xs) >= 0.9 else 'no'} |")
        out.append("")

    whole = [r for r in rows if r.get("part") == "whole"]
    if whole:
        out.append("## f. Whole run (produce + audit + one consumer group, open loop; fleetstorm process CPU per record)\n")
        kinds = sorted({k for r in whole for k in r.get("cpu_ns_per_record_by_thread", {})})
        out.append("| target | planned/s | records | CPU ns/record (median) | range | "
                   + " | ".join(kinds) + " | lost | saturated |")
        out.append("|---|---|---|---|---|" + "---|" * len(kinds) + "---|---|")
        groups = defaultdict(list)
        for r in whole:
            groups[(r["target"], round(r["planned_per_s"]))].append(r)
        for (target, planned), rs in sorted(groups.items()):
            ns = [r["cpu_ns_per_record"] for r in rs]
            split = " | ".join(f"{med([r['cpu_ns_per_record_by_thread'].get(k, 0) for r in rs]):,.0f}" for k in kinds)
            out.append(f"| {target} | {fmt_rate(planned)} | {fmt_rate(med([r['acked'] for r in rs]))} "
                       f"| **{med(ns):,.0f}** | {min(ns):,.0f}–{max(ns):,.0f} | {split} "
                       f"| {sum(r['lost'] for r in rs)} | {sum(1 for r in rs if r['harness_saturated'])}/{len(rs)} |")
        out.append("")
        # A repetition that acknowledged fewer records than it planned says why (older result
        # lines lack the fields: nothing to say).
        short = [r for r in whole if "planned" in r and r["acked"] < r["planned"]]
        for r in short:
            why = "; ".join(r.get("warnings", [])) or "no warning in its report"
            out.append(f"- {r['target']} rep {r.get('rep', '?')}: {r['acked']:,} of {r['planned']:,} planned records "
                       f"acknowledged (status {r['status']}, failed {r['failed']:,}, unsent at the end "
                       f"{r['unsent_at_end']:,}; {why}); report: `{r['report']}`")
        if short:
            out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
