#!/usr/bin/env python3
"""Synthesize the shard directories of a campaign for scripts/bench-merge.sh, from one real run.

Each shard gets the real run's report.json, stamped as shard I of N of one campaign and
stretched to SECONDS seconds (its timeline cycled over the run's measured seconds), and each of
the real run's .hlog files stretched the same way: one interval per second and class or group,
cycled from the real run's intervals with their timestamps rewritten. Interval sizes and
histogram shapes are therefore those of a real run; only their order repeats."""

import argparse
import copy
import json
import os


def intervals(path):
    """(header lines, {second: [interval lines without their start field]})."""
    header, by_second = [], {}
    with open(path) as f:
        for line in f:
            if line.startswith("#") or line.startswith('"'):
                header.append(line)
                continue
            tag = ""
            rest = line
            if line.startswith("Tag="):
                tag, rest = line.split(",", 1)
                tag += ","
            start, tail = rest.split(",", 1)
            by_second.setdefault(round(float(start)), []).append((tag, tail))
    return header, by_second


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True, help="a finished run's directory")
    ap.add_argument("--out", required=True, help="where shard-I directories go")
    ap.add_argument("--shards", type=int, default=64)
    ap.add_argument("--seconds", type=int, default=3600)
    ap.add_argument("--campaign", default="bench-merge")
    ap.add_argument("--start-unix-ms", type=int, default=1_796_000_000_000)
    a = ap.parse_args()

    with open(os.path.join(a.source, "report.json")) as f:
        src = json.load(f)
    warm = int(src["scenario"]["warmup_s"] + 0.999)
    end = int(src["load_s"])
    pool = [p for p in src["timeline"] if warm <= p["t"] < end]
    logs = {}
    for name in sorted(os.listdir(a.source)):
        if name.endswith(".hlog"):
            header, by_second = intervals(os.path.join(a.source, name))
            seconds = [s for s in sorted(by_second) if warm <= s < end]
            logs[name] = (header, [by_second[s] for s in seconds])

    timeline = []
    for t in range(a.seconds):
        p = copy.deepcopy(pool[t % len(pool)])
        p["t"] = t
        p.pop("faults", None)
        p.pop("waves", None)
        timeline.append(p)

    for i in range(a.shards):
        d = os.path.join(a.out, f"shard-{i}")
        os.makedirs(d, exist_ok=True)
        r = copy.copy(src)
        r["campaign"] = {"id": a.campaign, "shard": i, "shards": a.shards, "start_unix_ms": a.start_unix_ms}
        r["scenario"] = dict(src["scenario"], duration_s=float(a.seconds))
        r["load_s"] = float(a.seconds)
        r["measured_s"] = float(a.seconds - warm)
        r["faults"] = []
        r["waves"] = []
        r["timeline"] = timeline
        with open(os.path.join(d, "report.json"), "w") as f:
            json.dump(r, f)
        for name, (header, cycle) in logs.items():
            with open(os.path.join(d, name), "w") as f:
                f.writelines(header)
                for t in range(a.seconds):
                    # Each shard starts the cycle elsewhere, so that shards' seconds differ.
                    for tag, tail in cycle[(t + 7 * i) % len(cycle)]:
                        f.write(f"{tag}{t}.000,{tail}")
    print(json.dumps({"shards": a.shards, "seconds": a.seconds, "source_seconds": len(pool)}))


if __name__ == "__main__":
    main()
