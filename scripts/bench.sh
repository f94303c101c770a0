#!/usr/bin/env bash
# bench.sh - is fleetstorm ever the bottleneck? One command, measured side by side.
#
# Usage: scripts/bench.sh [--quick] [--reps N] [--out DIR] [--no-kafka] [--instances N] [--only PART...]
#
# Measures, on this machine (see BENCHMARKS.md for the results and how to read them):
#   a. max-rate produce throughput, fleetstorm vs librdkafka's rdkafka_performance (built here
#      from the very librdkafka source rdkafka-sys vendors), 100 B and 1 KiB, acks=1 and all,
#      one 12-partition topic, alternating the two tools REPS times, on
#        - the embedded cluster (a `fleetstorm serve-embedded` process both tools connect to)
#        - the local real Kafka cluster, when scripts/kafka-cluster.sh has it running;
#   b. rate accuracy: achieved/planned and send lag p99 at 1k, 10k, 100k and 300k msg/s;
#   c. fleet scale: start-up time and resident memory per device, 1M and 10M devices;
#   d. recorder cost per sample and schedule cost per event (criterion, benches/hot_path.rs);
#   e. replay reads: a topic pre-filled by a fleetstorm run (100 B records, 64 partitions), read
#      from its start by fleetstorm's group member and by its audit reader (each recording every
#      record as in a run) against `rdkafka_performance -G` / `-C`, alternating, REPS times;
#   f. whole run: CPU ns per record of a run with the audit and one consumer group (50k/s, 10 s).
# PART is one of produce, rate, fleet, micro, consume, whole (default: all).
#
# Results: DIR/results.jsonl (one JSON object per measurement) and DIR/summary.md (medians,
# ratios); DIR defaults to reports/bench/<UTC time>. Progress goes to stderr.
# --quick: fewer records and shorter runs (a smoke test of the script, not numbers to quote).
# --instances N: fleetstorm's producer instances in part a (default 1: one producer thread
# against rdkafka_performance's one application thread).
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=3
QUICK=0
KAFKA=auto
INSTANCES=1
OUT=""
PARTS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --reps) REPS="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --no-kafka) KAFKA=no ;;
        --instances) INSTANCES="$2"; shift ;;
        --only) shift; while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do PARTS+=("$1"); shift; done; continue ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ ${#PARTS[@]} -eq 0 ] && PARTS=(produce rate fleet micro consume whole)
want() { local p; for p in "${PARTS[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

OUT="${OUT:-reports/bench/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT/runs"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
log() { echo "bench: $*" >&2; }

scripts/deps.sh >&2
log "building fleetstorm (release)"
cargo build --release --locked -p fleetstorm >&2
# Where cargo puts its output (CARGO_TARGET_DIR, if set).
TD="${CARGO_TARGET_DIR:-target}"
FS="$TD/release/fleetstorm"

# --- rdkafka_performance, from the librdkafka that rdkafka-sys built for us -------------------
build_rdkafka_performance() {
    local out zstd
    out=$(ls -td "$TD"/release/build/rdkafka-sys-*/out 2>/dev/null | while read -r d; do
        [ -f "$d/src/librdkafka.a" ] && [ -f "$d/examples/rdkafka_performance.c" ] && echo "$d" && break; done)
    zstd=$(ls -td "$TD"/release/build/zstd-sys-*/out 2>/dev/null | while read -r d; do
        [ -f "$d/libzstd.a" ] && echo "$d" && break; done)
    if [ -z "$out" ] || [ -z "$zstd" ]; then
        echo "bench.sh: librdkafka's build output not found under $TD/release/build" >&2
        exit 1
    fi
    mkdir -p "$TD/bench"
    if [ ! -x "$TD/bench/rdkafka_performance" ] || [ "$out/src/librdkafka.a" -nt "$TD/bench/rdkafka_performance" ]; then
        log "building rdkafka_performance from $out"
        cc -O2 -I "$out/src" "$out/examples/rdkafka_performance.c" "$out/src/librdkafka.a" "$zstd/libzstd.a" \
            -lssl -lcrypto -lz -lpthread -lm -ldl -lrt -o "$TD/bench/rdkafka_performance"
    fi
    LIBRDKAFKA_VERSION=$(sed -n 's/^#define RD_KAFKA_VERSION *0x\([0-9a-fA-F]*\).*/\1/p' "$out/src/rdkafka.h" | head -1)
}
RK="$TD/bench/rdkafka_performance"

# One JSON line per measurement.
record() { echo "$1" >> "$RESULTS"; }

# rdkafka_performance's last table row: elapsed msgs bytes rtt dr dr_m/s dr_MB/s dr_err tx_err outq
rk_run() { # target bootstrap size acks count mode rep
    local target=$1 b=$2 size=$3 acks=$4 count=$5 mode=$6 rep=$7 extra=() row
    [ "$mode" = spread ] && extra=(-X sticky.partitioning.linger.ms=0)
    row=$("$RK" -P -t bench -b "$b" -s "$size" -c "$count" -X "acks=$acks" -X linger.ms=5 \
        -X batch.size=1000000 -X queue.buffering.max.messages=100000 "${extra[@]}" -u 2>/dev/null | tail -1)
    python3 - "$row" "$target" "$size" "$acks" "$count" "$mode" "$rep" <<'PY' >> "$RESULTS"
import json, sys
row, target, size, acks, count, mode, rep = sys.argv[1:]
f = [c.strip() for c in row.strip().strip('|').split('|')]
elapsed_ms, dr, dr_ms, dr_err = int(f[0]), int(f[4]), int(f[5]), int(f[7])
tool = "rdkafka_performance" + ("" if mode == "default" else "-" + mode)
print(json.dumps({"part": "produce", "target": target, "tool": tool, "size": int(size), "acks": acks,
                  "rep": int(rep), "count": int(count), "acked": dr, "errors": dr_err,
                  "seconds": elapsed_ms / 1000, "msgs_per_s": dr_ms}))
PY
}

# On a real cluster the topic keeps two minutes of data: a full run writes tens of GB.
retention() { if [ "$1" = kafka ]; then echo "--retention-ms 120000"; fi; }

fs_produce() { # target bootstrap size acks count rep key
    local line
    # shellcheck disable=SC2046
    line=$("$FS" bench produce --bootstrap "$2" --size "$3" --acks "$4" --count "$5" --key "$7" --instances "$INSTANCES" \
        $(retention "$1") --out "$OUT/runs/produce" 2>/dev/null)
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(part="produce", target=sys.argv[2], rep=int(sys.argv[3])); print(json.dumps(d))' \
        "$line" "$1" "$6" >> "$RESULTS"
}

produce_suite() { # target bootstrap count_100 count_1k
    local target=$1 b=$2 rep size acks count
    for size in 100 1024; do
        count=$3; [ "$size" = 1024 ] && count=$4
        for acks in 1 all; do
            for rep in $(seq 1 "$REPS"); do
                log "$target: ${size} B acks=$acks rep $rep/$REPS"
                # Two like-for-like pairs, each run back to back, alternating who goes first so
                # neither always meets a warmer (or more fragmented) target:
                #   fleetstorm unkeyed  vs rdkafka_performance (unkeyed, sticky partitioner);
                #   fleetstorm keyed by device id (its default) vs rdkafka_performance spreading
                #   records over partitions like keyed traffic.
                if [ $((rep % 2)) = 1 ]; then
                    fs_produce "$target" "$b" "$size" "$acks" "$count" "$rep" none
                    rk_run "$target" "$b" "$size" "$acks" "$count" default "$rep"
                    fs_produce "$target" "$b" "$size" "$acks" "$count" "$rep" device_id
                    rk_run "$target" "$b" "$size" "$acks" "$count" spread "$rep"
                else
                    rk_run "$target" "$b" "$size" "$acks" "$count" default "$rep"
                    fs_produce "$target" "$b" "$size" "$acks" "$count" "$rep" none
                    rk_run "$target" "$b" "$size" "$acks" "$count" spread "$rep"
                    fs_produce "$target" "$b" "$size" "$acks" "$count" "$rep" device_id
                fi
            done
        done
    done
}

rate_suite() { # target bootstrap duration rates...
    local target=$1 b=$2 d=$3 rate rep line
    shift 3
    for rate in "$@"; do
        for rep in $(seq 1 "$REPS"); do
            log "$target: rate $rate/s rep $rep/$REPS"
            # shellcheck disable=SC2046
            line=$("$FS" bench rate --bootstrap "$b" --rate "$rate/s" --duration "$d" --acks 1 $(retention "$target") --out "$OUT/runs/rate" 2>/dev/null) || continue
            python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(part="rate", target=sys.argv[2], rep=int(sys.argv[3])); print(json.dumps(d))' \
                "$line" "$target" "$rep" >> "$RESULTS"
        done
    done
}

# --- e. replay reads --------------------------------------------------------------------------
# The topic holds only the fill's records; every reader reads all of them from the start.
# rdkafka_performance sets queued.min.messages=1000000 for itself; it is put back to librdkafka's
# default (100000), which fleetstorm's readers use; both use fetch.queue.backoff.ms=10 (fleetstorm's
# readers' setting: librdkafka's default 1000 ms stalls a replay whenever the queue fills). Both are timed from the first record to the
# last; CPU is the whole process's (user + system; fleetstorm: over the same span, getrusage;
# rdkafka_performance: /usr/bin/time over its whole life, start-up included).
RTOPIC=replay
RPARTS=64
rk_consume() { # target bootstrap count mode(group|assign) rep
    local target=$1 b=$2 count=$3 mode=$4 rep=$5 row cpu args=()
    if [ "$mode" = group ]; then
        args=(-G "fsbench-$(date +%s%N)")
    else
        args=(-C -o beginning)
        for p in $(seq 0 $((RPARTS - 1))); do args+=(-p "$p"); done
    fi
    row=$(/usr/bin/time -f "%U %S" -o "$OUT/runs/rk-time.txt" timeout 600 "$RK" "${args[@]}" -t "$RTOPIC" -b "$b" -c "$count" \
        -X queued.min.messages=100000 -X fetch.queue.backoff.ms=10 -u 2>/dev/null | grep '^|' | tail -1) || true
    cpu=$(tail -1 "$OUT/runs/rk-time.txt" 2>/dev/null || echo "0 0")
    python3 - "$row" "$cpu" "$target" "$count" "$mode" "$rep" <<'PY' >> "$RESULTS"
import json, sys
row, cpu, target, count, mode, rep = sys.argv[1:]
f = [c.strip() for c in row.strip().strip('|').split('|')]
try:
    elapsed_ms, msgs, byts, mps = int(f[0]), int(f[1]), int(f[2]), int(f[4])
except (ValueError, IndexError):
    elapsed_ms, msgs, byts, mps = 0, 0, 0, 0
u, s = (float(x) for x in cpu.split()[:2])
print(json.dumps({"part": "consume", "target": target, "tool": "rdkafka_performance-" + mode,
                  "reader": "group" if mode == "group" else "audit", "rep": int(rep), "count": int(count),
                  "read": msgs, "seconds": elapsed_ms / 1000, "msgs_per_s": mps,
                  "cpu_s": u + s, "cpu_ns_per_record": (u + s) * 1e9 / max(msgs, 1)}))
PY
}

fs_consume() { # target bootstrap run_id reader rep
    local line
    line=$("$FS" bench consume --bootstrap "$2" --topic "$RTOPIC" --partitions "$RPARTS" --reader "$4" --run-id "$3" \
        --out "$OUT/runs/consume" 2>/dev/null) || return 0
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(part="consume", target=sys.argv[2], rep=int(sys.argv[3])); print(json.dumps(d))' \
        "$line" "$1" "$5" >> "$RESULTS"
}

consume_suite() { # target bootstrap count
    local target=$1 b=$2 count=$3 fill id rep
    log "$target: filling $RTOPIC with $count records of 100 B"
    # shellcheck disable=SC2046
    fill=$("$FS" bench consume --fill --bootstrap "$b" --topic "$RTOPIC" --partitions "$RPARTS" --size 100 --acks 1 \
        --count "$count" $( [ "$target" = kafka ] && echo "--retention-ms 3600000") --out "$OUT/runs/fill" 2>/dev/null)
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(part="consume-fill", target=sys.argv[2]); print(json.dumps(d))' \
        "$fill" "$target" >> "$RESULTS"
    id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["run_id"])' "$fill")
    count=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["acked"])' "$fill")
    for rep in $(seq 1 "$REPS"); do
        log "$target: replay reads rep $rep/$REPS"
        if [ $((rep % 2)) = 1 ]; then
            fs_consume "$target" "$b" "$id" group "$rep"; rk_consume "$target" "$b" "$count" group "$rep"
            fs_consume "$target" "$b" "$id" audit "$rep"; rk_consume "$target" "$b" "$count" assign "$rep"
        else
            rk_consume "$target" "$b" "$count" group "$rep"; fs_consume "$target" "$b" "$id" group "$rep"
            rk_consume "$target" "$b" "$count" assign "$rep"; fs_consume "$target" "$b" "$id" audit "$rep"
        fi
    done
}

# --- f. whole run -----------------------------------------------------------------------------
whole_suite() { # target bootstrap rate duration
    local rep line
    for rep in $(seq 1 "$REPS"); do
        log "$1: whole run at $3/s for $4, rep $rep/$REPS"
        # shellcheck disable=SC2046
        line=$("$FS" bench whole --bootstrap "$2" --topic whole --rate "$3/s" --duration "$4" --acks 1 $(retention "$1") \
            --out "$OUT/runs/whole-$rep" 2>/dev/null) || continue
        python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(part="whole", target=sys.argv[2], rep=int(sys.argv[3])); print(json.dumps(d))' \
            "$line" "$1" "$rep" >> "$RESULTS"
    done
}

# bash unsets the coproc's own SERVE_PID when it exits, so keep a copy for the exit trap.
SERVER_PID=""
cleanup() { if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT
stop_embedded() { # closing its stdin ends serve-embedded cleanly
    if [ -n "${SERVE[1]:-}" ]; then eval "exec ${SERVE[1]}>&-"; fi
    if [ -n "$SERVER_PID" ]; then wait "$SERVER_PID" 2>/dev/null || true; fi
    SERVER_PID=""
}

if [ $QUICK = 1 ]; then C100=200000; C1K=100000; KC100=100000; KC1K=50000; RD=3s; RATES=(1000 10000); FLEET=(100000)
    RC=200000; WR=20000; WD=3s
else C100=2000000; C1K=1000000; KC100=1000000; KC1K=300000; RD=10s; RATES=(1000 10000 100000 300000); FLEET=(1000000 10000000)
    # 1M records of 100 B in 64 partitions: about 2 MB per partition, well inside the embedded
    # cluster's 5 MiB per-partition retention (12 partitions would not hold them).
    RC=1000000; WR=50000; WD=10s; fi

if want produce || want rate || want consume || want whole; then
    build_rdkafka_performance
    log "starting the embedded cluster (3 brokers, topics bench and whole with 12 partitions, $RTOPIC with $RPARTS)"
    coproc SERVE { exec "$FS" serve-embedded --brokers 3 --topic bench:12 --topic "$RTOPIC:$RPARTS" --topic whole:12 --until-stdin-closes; }
    SERVER_PID=$SERVE_PID
    read -r line <&"${SERVE[0]}"
    EMBEDDED="${line#bootstrap=}"
    log "embedded cluster at $EMBEDDED"
    want produce && produce_suite embedded "$EMBEDDED" "$C100" "$C1K"
    want rate && rate_suite embedded "$EMBEDDED" "$RD" "${RATES[@]}"
    want consume && consume_suite embedded "$EMBEDDED" "$RC"
    want whole && whole_suite embedded "$EMBEDDED" "$WR" "$WD"
    stop_embedded

    if [ "$KAFKA" = no ]; then
        log "real-Kafka rows skipped (--no-kafka)"
    elif scripts/kafka-cluster.sh status >/dev/null 2>&1; then
        KB=$(scripts/kafka-cluster.sh bootstrap)
        log "local Kafka cluster at $KB"
        # The topic exists before the first rdkafka_performance run: fleetstorm creates it.
        "$FS" bench produce --bootstrap "$KB" --count 1000 --retention-ms 120000 --out "$OUT/runs/create" >/dev/null 2>&1 || true
        want produce && produce_suite kafka "$KB" "$KC100" "$KC1K"
        want rate && rate_suite kafka "$KB" "$RD" "${RATES[@]}"
        want consume && consume_suite kafka "$KB" "$RC"
        want whole && whole_suite kafka "$KB" "$WR" "$WD"
    else
        log "the local Kafka cluster is not running (scripts/kafka-cluster.sh start): real-Kafka rows skipped"
    fi
fi

if want fleet; then
    for n in "${FLEET[@]}"; do
        for rep in $(seq 1 "$REPS"); do
            log "fleet of $n devices rep $rep/$REPS"
            # Each in a fresh process: resident memory is measured around the plan alone.
            line=$("$FS" bench fleet --devices "$n")
            python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(part="fleet", rep=int(sys.argv[2])); print(json.dumps(d))' "$line" "$rep" >> "$RESULTS"
        done
    done
fi

if want micro; then
    log "criterion micro-benchmarks (benches/hot_path.rs)"
    MT=5; [ $QUICK = 1 ] && MT=1
    cargo bench --locked -p fleetstorm --bench hot_path -- --warm-up-time 1 --measurement-time "$MT" 2>/dev/null \
        | tee "$OUT/criterion.txt" >&2
    python3 - "$OUT/criterion.txt" <<'PY' >> "$RESULTS"
import json, re, sys
name = None
units = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6}
for line in open(sys.argv[1], encoding="utf-8"):
    m = re.match(r"^(\S+/\S+)\s*(time:.*)?$", line.strip())
    if m and not line.startswith(" "):
        name = m.group(1)
    t = re.search(r"time:\s*\[([\d.]+) (\S+) ([\d.]+) (\S+) ([\d.]+) (\S+)\]", line)
    if t and name:
        median_ns = float(t.group(3)) * units[t.group(4)]
        print(json.dumps({"part": "micro", "bench": name, "ns": round(median_ns, 2),
                          "low_ns": round(float(t.group(1)) * units[t.group(2)], 2),
                          "high_ns": round(float(t.group(5)) * units[t.group(6)], 2)}))
        name = None
PY
fi

python3 scripts/bench_summary.py "$RESULTS" \
    --machine "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(lscpu | sed -n 's/^Model name: *//p' | head -1)" \
    --librdkafka "${LIBRDKAFKA_VERSION:-?}" > "$OUT/summary.md"
cat "$OUT/summary.md"
log "results: $RESULTS, summary: $OUT/summary.md"
