#!/usr/bin/env bash
# Fuzz scenario and profile parsing and validation (issue 16, "fuzzing kept"; docs/fuzzing.md).
#
#   scripts/fuzz.sh [SECONDS]    build harness/fuzz, seed its corpus from scenarios/, profiles/ and
#                                harness/fuzz/seeds/, fuzz the `config` target for SECONDS (default
#                                600), replay the corpus to time each input, print a summary line
#
# Needs a nightly Rust toolchain (cargo-fuzz's instrumentation; FLEETSTORM_FUZZ_TOOLCHAIN names
# another) and cargo-fuzz, which it installs when missing (`cargo install cargo-fuzz --locked`).
# Limits per input: 1 GiB of RSS, 5 s. Exits non-zero on a crash (panic), an out-of-memory or a
# timeout, after printing the artifact (the input) to reproduce it with. It stops by itself: the
# campaign is libFuzzer's -max_total_time, with a hard stop a few minutes after that.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=${1:-600}
case "$seconds" in
  -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
  ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac

toolchain=${FLEETSTORM_FUZZ_TOOLCHAIN:-nightly}
rss_limit_mb=1024
timeout_s=5
max_len=16384
target=config
fuzz=$root/harness/fuzz
corpus=$fuzz/corpus/$target
artifacts=$fuzz/artifacts/$target
log=$fuzz/artifacts/campaign.log

step() { printf '\n== %s\n' "$*" >&2; }

step "toolchain"
if ! cargo "+$toolchain" --version >/dev/null 2>&1; then
  echo "error: the Rust toolchain \`$toolchain\` is not installed; cargo-fuzz needs a nightly one:" >&2
  echo "  rustup toolchain install nightly --profile minimal" >&2
  echo "(the stable-toolchain check is \`cargo test --test it fuzz\`, which CI runs)" >&2
  exit 2
fi
cargo "+$toolchain" --version >&2
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: installing it (cargo install cargo-fuzz --locked)" >&2
  cargo install cargo-fuzz --locked
fi
cargo fuzz --version >&2

step "build (release, debug assertions, no sanitizer)"
# The fuzz crate is its own workspace (excluded from the repository's): it builds into
# harness/fuzz/target, with the repository's dependency versions as its starting lockfile.
if [ ! -f "$fuzz/Cargo.lock" ] || [ "$root/Cargo.lock" -nt "$fuzz/Cargo.lock" ]; then
  cp "$root/Cargo.lock" "$fuzz/Cargo.lock"
fi
export CARGO_TARGET_DIR=$fuzz/target
# No sanitizer: the code under test (config/, plan/, the YAML parser) has no unsafe code, and
# AddressSanitizer's shadow memory and quarantine would blur the 1 GiB limit. Debug assertions on:
# an arithmetic overflow is a panic, as in the stable test (harness/tests/fuzz.rs).
build_flags=(--fuzz-dir "$fuzz" --sanitizer none --debug-assertions)
cargo "+$toolchain" fuzz build "${build_flags[@]}" "$target"
triple=$(rustc "+$toolchain" -vV | sed -n 's/^host: //p')
bin=$CARGO_TARGET_DIR/$triple/release/$target
[ -x "$bin" ] || { echo "error: no fuzz binary at $bin" >&2; exit 1; }

step "seed corpus"
mkdir -p "$corpus" "$artifacts"
for f in "$root"/scenarios/*.yaml "$root"/profiles/*.yaml "$fuzz"/seeds/*.yaml; do
  cp "$f" "$corpus/seed-$(basename "$(dirname "$f")")-$(basename "$f")"
done
echo "$(find "$corpus" -type f | wc -l) inputs in $corpus" >&2

step "campaign: ${seconds}s, -rss_limit_mb=$rss_limit_mb -timeout=$timeout_s -max_len=$max_len"
rm -f "$log"
set +e
# A hard stop well after -max_total_time, in case libFuzzer itself does not stop.
timeout --signal=INT --kill-after=30 "$((seconds + 180))" \
  cargo "+$toolchain" fuzz run "${build_flags[@]}" "$target" "$corpus" -- \
  -max_total_time="$seconds" -rss_limit_mb="$rss_limit_mb" -timeout="$timeout_s" \
  -max_len="$max_len" -dict="$fuzz/config.dict" -report_slow_units=1 -print_final_stats=1 \
  2>&1 | tee "$log" >&2
status=${PIPESTATUS[0]}
set -e

final_stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
runs=$(final_stat number_of_executed_units)
peak_rss=$(final_stat peak_rss_mb)
crashes=$(grep -cE '^SUMMARY: libFuzzer: |panicked at|^==[0-9]+== ERROR: libFuzzer' "$log" || true)
artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | grep -v '/slow-unit-' | tail -n 1 || true)
slow_units=$(grep -c '^Slowest unit:' "$log" || true)

step "replay: the time of each corpus input"
# libFuzzer run on files executes each once and says how long it took (ms).
replay=$fuzz/artifacts/replay.log
set +e
find "$corpus" -type f -print0 |
  xargs -0 -n 200 "$bin" -rss_limit_mb="$rss_limit_mb" -timeout="$timeout_s" >"$replay" 2>&1
replay_status=$?
set -e
slowest=$(sed -n 's/^Executed \(.*\) in \([0-9]*\) ms$/\2 \1/p' "$replay" | sort -n | tail -n 1)
slowest_ms=${slowest%% *}
slowest_file=${slowest#* }
replay_failed=$(grep -cE '^SUMMARY: libFuzzer: |panicked at' "$replay" || true)

corpus_n=$(find "$corpus" -type f | wc -l)
corpus_kib=$(( $(find "$corpus" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}') / 1024 ))
verdict=ok
if [ "$status" != 0 ] || [ "$replay_status" != 0 ] || [ "${crashes:-0}" != 0 ] || [ "${replay_failed:-0}" != 0 ]; then
  verdict=FAILED
fi
printf '\nfuzz %s: %ss, runs %s, corpus %s inputs (%s KiB), peak RSS %s MiB, slowest input %s ms (%s), inputs over 1 s %s, crashes/OOM/timeouts %s\n' \
  "$verdict" "$seconds" "${runs:-?}" "$corpus_n" "$corpus_kib" "${peak_rss:-?}" "${slowest_ms:-?}" \
  "${slowest_file:-none}" "$slow_units" "$(( ${crashes:-0} + ${replay_failed:-0} ))"
echo "log: $log; replay: $replay"
if [ "$verdict" != ok ]; then
  echo "libFuzzer exit status: $status; replay exit status: $replay_status" >&2
  if [ -n "$artifact" ]; then
    echo "artifact: $artifact" >&2
    echo "reproduce: $bin $artifact" >&2
    echo "minimize:  cargo +$toolchain fuzz tmin ${build_flags[*]} $target $artifact" >&2
  fi
  exit 1
fi
