#!/usr/bin/env bash
# bench-merge.sh - how long and how much memory does `fleetstorm merge` take for a campaign of
# N shards of a one-hour run (one-second intervals)? (issue 10, "Done when")
#
# Usage: scripts/bench-merge.sh [--shards N] [--seconds S] [--reps R] [--out DIR] [--keep]
#
# 1. A real 40 s embedded run of a fleet with 3 payload classes and 2 consumer groups: the
#    source of real interval histograms (11 intervals a second: 3 classes x 2 produce logs,
#    send lag, 2 groups x e2e and event age) and of a real report.json.
# 2. N shard directories synthesized from it (scripts/bench_merge_synth.py): report.json
#    stamped as shard I of N and stretched to S seconds, each .hlog stretched to S intervals
#    per class or group, cycled from the real run's, so interval sizes are real.
# 3. `fleetstorm merge` of the N shards, R times, under /usr/bin/time -v: wall time, CPU time
#    and peak resident memory.
#
# Results: DIR/results.jsonl (one JSON object per merge) and DIR/summary.md; DIR defaults to
# reports/bench-merge/<UTC time>. The shard directories are removed unless --keep.
set -euo pipefail
cd "$(dirname "$0")/.."

SHARDS=64
SECONDS_=3600
REPS=3
OUT=""
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --shards) SHARDS="$2"; shift ;;
        --seconds) SECONDS_="$2"; shift ;;
        --reps) REPS="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "bench-merge.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
OUT="${OUT:-reports/bench-merge/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
log() { echo "bench-merge: $*" >&2; }

log "building fleetstorm (release)"
cargo build --release --locked -p fleetstorm >&2
FS="${CARGO_TARGET_DIR:-target}/release/fleetstorm"

cat > "$OUT/source.yaml" <<'EOF'
# The source of the synthesized shards: 3 classes, 2 groups, real latencies.
name: merge-source
seed: 10
duration: 40s
warmup: 5s
drain: 20s
topics:
  - {name: src.telemetry, partitions: 12, replication: 3}
  - {name: src.events, partitions: 6, replication: 3}
fleet:
  devices: 20000
  classes:
    - {name: telemetry, topic: src.telemetry, rate: 1/10s, size: {normal: {mean: 600B, stddev: 150B, min: 320B, max: 2KiB}}}
    - {name: diagnostics, topic: src.events, rate: 1/20s, size: {lognormal: {median: 2KiB, sigma: 0.6, min: 512B, max: 16KiB}}, format: binary}
    - {name: alarm, topic: src.events, rate: 1/60s, arrival: poisson, size: 200B}
consumers:
  - {name: warehouse, members: 2, topics: [src.telemetry, src.events]}
  - {name: alerting, members: 1, topics: [src.events], processing_time: {exponential: {mean: 200us, max: 5ms}}}
EOF
log "source run (40 s on the embedded cluster)"
"$FS" run "$OUT/source.yaml" --out "$OUT/source" -q > "$OUT/source.txt"

SHARDS_DIR="$OUT/shards"
log "synthesizing $SHARDS shards of $SECONDS_ s"
python3 scripts/bench_merge_synth.py --source "$OUT/source" --out "$SHARDS_DIR" \
    --shards "$SHARDS" --seconds "$SECONDS_" >&2
input_mb=$(du -sm "$SHARDS_DIR" | cut -f1)
hlog_mb=$(du -cm "$SHARDS_DIR"/shard-0/*.hlog | tail -1 | cut -f1)
intervals=$(cat "$SHARDS_DIR"/shard-0/*.hlog | grep -vc '^[#"]')
log "input: ${input_mb} MiB (${hlog_mb} MiB of .hlog and $intervals intervals per shard)"

for rep in $(seq 1 "$REPS"); do
    merged="$OUT/merged-$rep"
    rm -rf "$merged"
    log "merge $rep/$REPS"
    /usr/bin/time -v -o "$OUT/time-$rep.txt" "$FS" merge "$SHARDS_DIR"/shard-* --out "$merged" -q > /dev/null
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$OUT/time-$rep.txt")
    rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$OUT/time-$rep.txt")
    user=$(sed -n 's/.*User time (seconds): //p' "$OUT/time-$rep.txt")
    sys=$(sed -n 's/.*System time (seconds): //p' "$OUT/time-$rep.txt")
    secs=$(python3 -c "import sys; p=sys.argv[1].split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))" "$wall")
    samples=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['produce']['latency_from_intended']['count'])" "$merged/report.json")
    out_mb=$(du -sm "$merged" | cut -f1)
    printf '{"bench":"merge","shards":%s,"seconds":%s,"rep":%s,"wall_s":%s,"user_s":%s,"sys_s":%s,"peak_rss_mib":%.1f,"input_mib":%s,"hlog_mib_per_shard":%s,"intervals_per_shard":%s,"output_mib":%s,"produce_latency_samples":%s,"cores":%s}\n' \
        "$SHARDS" "$SECONDS_" "$rep" "$secs" "$user" "$sys" "$(awk "BEGIN{print $rss_kb/1024}")" "$input_mb" "$hlog_mb" \
        "$intervals" "$out_mb" "$samples" "$(nproc)" >> "$RESULTS"
    tail -1 "$RESULTS" >&2
    [ "$rep" -lt "$REPS" ] && rm -rf "$merged"
done

python3 - "$RESULTS" > "$OUT/summary.md" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
r = rows[0]
med = lambda k: statistics.median(x[k] for x in rows)
print(f"# fleetstorm merge: {r['shards']} shards x {r['seconds']} s\n")
print(f"Input: {r['input_mib']} MiB ({r['hlog_mib_per_shard']} MiB of .hlog, {r['intervals_per_shard']:,} intervals per shard); "
      f"output {r['output_mib']} MiB; {r['cores']} cores.\n")
print("| rep | wall s | user s | sys s | peak RSS MiB |\n|---|---|---|---|---|")
for x in rows:
    print(f"| {x['rep']} | {x['wall_s']:.1f} | {x['user_s']:.1f} | {x['sys_s']:.1f} | {x['peak_rss_mib']:.0f} |")
print(f"\nMedian: {med('wall_s'):.1f} s wall, {med('peak_rss_mib'):.0f} MiB peak RSS "
      f"({r['shards'] * r['intervals_per_shard'] / med('wall_s'):,.0f} intervals/s).")
EOF
cat "$OUT/summary.md" >&2
[ "$KEEP" = 1 ] || rm -rf "$SHARDS_DIR"
log "results in $OUT"
