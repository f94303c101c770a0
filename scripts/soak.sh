#!/usr/bin/env bash
# soak.sh - does anything fleetstorm keeps grow with the length of a run?
#
# Usage: scripts/soak.sh [--duration D] [--profile P] [--out DIR] [--warmup-s S] [SCENARIO]
#
# Runs SCENARIO (default scenarios/soak.yaml: readiness for an hour, its stress events every
# 10 minutes) on the embedded cluster (or --profile P), and samples the fleetstorm process from
# outside, every second, from /proc: resident memory (VmRSS), CPU time (utime + stime) and thread
# count. The samples go to DIR/samples.csv; DIR/soak.json and DIR/soak.md summarise them:
#   - RSS at the end of the warm-up window (--warmup-s, default 600: the first 10-minute cycle,
#     by which the embedded cluster has filled its per-partition retention) and at the end of
#     the load, the peak, and the growth per hour from a least-squares line through every
#     sample between the two (the number BENCHMARKS.md quotes);
#   - CPU per second (percent of one core): mean, p50, p99, max over the load;
#   - the run's own verdict and audit from DIR/run/report.json.
# --duration D is passed to `fleetstorm run --duration` (e.g. 5m for a short try); the warm-up
# window is then cut to a fifth of it if it would not fit.
# Exit status: fleetstorm's own, or 1 if the sampler found no process. Progress on stderr.
# With the embedded cluster the process includes the cluster: its retention (5 MiB or 100,000
# message sets per partition) is part of the RSS and fills during the first minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=""
PROFILE=profiles/embedded.yaml
OUT=""
WARMUP_S=600
SCENARIO=scenarios/soak.yaml
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION="$2"; shift ;;
        --profile) PROFILE="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --warmup-s) WARMUP_S="$2"; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        -*) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
        *) SCENARIO="$1" ;;
    esac
    shift
done
OUT="${OUT:-reports/soak/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
log() { echo "soak: $*" >&2; }

if [ ! -x target/release/fleetstorm ] || [ "${SOAK_BUILD:-1}" = 1 ]; then
    log "building fleetstorm (release)"
    cargo build --release --locked -p fleetstorm >&2
fi
FS=target/release/fleetstorm
args=(run "$SCENARIO" --profile "$PROFILE" --out "$OUT/run")
[ -n "$DURATION" ] && args+=(--duration "$DURATION")
log "$FS ${args[*]}"
"$FS" "${args[@]}" 2> "$OUT/run.stderr" &
PID=$!
trap 'kill -INT $PID 2>/dev/null || true' INT TERM

TICK=$(getconf CLK_TCK)
PAGE_KIB=$(( $(getconf PAGESIZE) / 1024 ))
echo "t_s,rss_kib,cpu_ticks,threads" > "$OUT/samples.csv"
start=$(date +%s.%N)
# One sample per second, aligned to the start; a missed second (a busy host) is simply absent.
i=0
while kill -0 "$PID" 2>/dev/null; do
    if read -r _ _ _ _ _ _ _ _ _ _ _ _ _ ut st _ _ _ _ nth _ _ _ rss _ < "/proc/$PID/stat" 2>/dev/null; then
        now=$(date +%s.%N)
        printf '%.3f,%d,%d,%d\n' "$(echo "$now - $start" | bc)" $((rss * PAGE_KIB)) $((ut + st)) "$nth" >> "$OUT/samples.csv"
    fi
    i=$((i + 1))
    next=$(echo "$start + $i" | bc)
    now=$(date +%s.%N)
    delay=$(echo "$next - $now" | bc)
    case "$delay" in -*|0) ;; *) sleep "$delay" ;; esac
done
set +e
wait "$PID"
RC=$?
set -e
log "fleetstorm exited $RC; $(($(wc -l < "$OUT/samples.csv") - 1)) samples"

python3 - "$OUT" "$TICK" "$WARMUP_S" "$RC" <<'EOF'
import csv, json, os, sys
out, tick, warmup_s, rc = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rows = [(float(r["t_s"]), int(r["rss_kib"]), int(r["cpu_ticks"]), int(r["threads"]))
        for r in csv.DictReader(open(os.path.join(out, "samples.csv")))]
if len(rows) < 3:
    sys.exit("soak: too few samples")
report = {}
try:
    report = json.load(open(os.path.join(out, "run", "report.json")))
except (OSError, ValueError) as e:
    print(f"soak: no report.json: {e}", file=sys.stderr)
load_s = report.get("load_s") or rows[-1][0]
# The samples' time base is the process start; on the embedded cluster the set-up before the
# load takes about a second, so the load is taken as [0, load_s] and the drain as what follows.
load_start, load_end = 0.0, min(load_s, rows[-1][0])
if warmup_s >= load_s:
    warmup_s = load_s / 5
w0 = load_start + warmup_s
steady = [r for r in rows if w0 <= r[0] <= load_end]
def mib(k): return k / 1024.0
def lsq(pts):
    n = len(pts); mx = sum(p[0] for p in pts) / n; my = sum(p[1] for p in pts) / n
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else 0.0
slope_mib_per_s = lsq([(r[0], mib(r[1])) for r in steady]) if len(steady) > 2 else None
cpu = []
for a, b in zip(rows, rows[1:]):
    if load_start <= a[0] and b[0] <= load_end and b[0] > a[0]:
        cpu.append(100.0 * (b[2] - a[2]) / tick / (b[0] - a[0]))
cpu.sort()
def q(v, p): return v[min(len(v) - 1, int(p * len(v)))] if v else None
at = lambda t: min(rows, key=lambda r: abs(r[0] - t))
audit = report.get("audit", {})
summary = {
    "exit_code": rc,
    "samples": len(rows),
    "load_s": load_s,
    "warmup_window_s": warmup_s,
    "rss_mib_at_warmup_end": round(mib(at(w0)[1]), 1),
    "rss_mib_at_load_end": round(mib(at(load_end)[1]), 1),
    "rss_mib_peak": round(mib(max(r[1] for r in rows)), 1),
    "rss_growth_mib_per_hour": None if slope_mib_per_s is None else round(slope_mib_per_s * 3600, 2),
    "threads_min_max": [min(r[3] for r in steady or rows), max(r[3] for r in steady or rows)],
    "cpu_pct_of_one_core": {"mean": round(sum(cpu) / len(cpu), 1) if cpu else None,
                            "p50": q(cpu, .5) and round(q(cpu, .5), 1),
                            "p99": q(cpu, .99) and round(q(cpu, .99), 1),
                            "max": cpu and round(cpu[-1], 1)},
    "status": report.get("status"),
    "verdict": report.get("verdict"),
    "audit": {k: audit.get(k) for k in ("acked", "verified", "lost", "duplicates", "reordered", "unverified") if k in audit},
}
json.dump(summary, open(os.path.join(out, "soak.json"), "w"), indent=2)
md = [f"# soak: {os.path.basename(out.rstrip('/'))}", "",
      f"- load {load_s:.0f} s, {len(rows)} samples (one per second, from /proc)",
      f"- RSS: {summary['rss_mib_at_warmup_end']} MiB at the end of the {warmup_s:.0f} s warm-up window, "
      f"{summary['rss_mib_at_load_end']} MiB at the end of the load, peak {summary['rss_mib_peak']} MiB",
      f"- RSS growth after warm-up (least squares over {len(steady)} samples): "
      f"{summary['rss_growth_mib_per_hour']} MiB per hour",
      f"- CPU, percent of one core, per second over the load: mean {summary['cpu_pct_of_one_core']['mean']}, "
      f"p50 {summary['cpu_pct_of_one_core']['p50']}, p99 {summary['cpu_pct_of_one_core']['p99']}, "
      f"max {summary['cpu_pct_of_one_core']['max']}",
      f"- threads {summary['threads_min_max'][0]}..{summary['threads_min_max'][1]}",
      f"- run: exit {rc}, status {summary['status']}, audit {json.dumps(summary['audit'])}", ""]
open(os.path.join(out, "soak.md"), "w").write("\n".join(md))
print("\n".join(md))
EOF
exit "$RC"
