#!/usr/bin/env bash
# The project's test command (README Quick start, and what .ci/run runs).
#
#   scripts/test.sh            everything: build deps, fmt, clippy, unit + embedded tests, then the
#                              real-Kafka tier against a 3-broker Apache Kafka cluster that this
#                              script starts on 127.0.0.1 and stops when it ends (also on failure)
#   scripts/test.sh --fast     skip the real-Kafka tier (no JVM, a few minutes less)
#
# It installs what it needs: Debian build packages when missing (apt-get, as root or via sudo),
# the Kafka broker jars from Maven Central (scripts/kafka-cluster.sh fetch) and Toxiproxy from
# the Go module proxy (go install, on the first `start --network`). The network faults' tests
# need root (iptables).
set -euo pipefail
cd "$(dirname "$0")/.."

fast=0
for a in "$@"; do
  case "$a" in
    --fast) fast=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done

step() { printf '\n== %s\n' "$*" >&2; }

step "build dependencies"
if [ "$fast" = 0 ]; then scripts/deps.sh --test --java; else scripts/deps.sh --test; fi

step "format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

step "unit, validation and embedded-cluster tests"
# The object-storage tests (tests/it/store.rs) start their own S3-compatible moto servers: install
# moto[server] up front (into target/venv-moto unless a python3 already imports it), so that a
# clean machine fails here, clearly.
scripts/moto.sh install
# The live-metrics test (tests/it/live.rs) reads `run --metrics-addr` with prometheus_client's
# OpenMetrics parser: the same way, into target/venv-openmetrics unless a python3 imports it.
scripts/openmetrics.sh install >/dev/null
cargo test --locked --lib --bins
cargo test --locked --doc
# The integration binary one test at a time: its load tests measure latency and the harness's own
# CPU on two cores, so nothing else may run beside them (CPU-heavy checks such as the fuzz
# mutants included).
cargo test --locked --test it -- --test-threads 1

step "deployment files: Dockerfile and Kubernetes manifests, offline"
scripts/validate-deploy.sh

if [ "$fast" = 1 ]; then
  echo "skipped the real-Kafka tier (--fast)" >&2
  exit 0
fi

step "real Apache Kafka cluster (3 brokers, KRaft, 127.0.0.1)"
scripts/kafka-cluster.sh clean >/dev/null 2>&1 || true
cleanup() {
  rc=$?
  if [ "$rc" != 0 ]; then
    for n in 1 2 3; do
      log=$(scripts/kafka-cluster.sh logs "$n" 2>/dev/null || true)
      [ -n "$log" ] && [ -f "$log" ] && { echo "--- tail of node $n log ($log)" >&2; tail -n 30 "$log" >&2; }
    done
  fi
  scripts/kafka-cluster.sh stop >&2 || true
  exit "$rc"
}
trap cleanup EXIT
# One cluster for the whole tier: PLAINTEXT for most tests, and the secured listeners (SASL_SSL,
# mTLS, OAUTHBEARER, with ACLs) beside it for tests/kafka/secured.rs; Toxiproxy in front of the
# PLAINTEXT clients and the replication peers (--network) for tests/kafka/network.rs.
scripts/kafka-cluster.sh start --security all --network
# The runs' fault journals (faults a killed run left applied) stay inside the checkout.
export FLEETSTORM_STATE_DIR="$PWD/target/fleetstorm-state"
FLEETSTORM_KAFKA_BOOTSTRAP=$(scripts/kafka-cluster.sh bootstrap)
export FLEETSTORM_KAFKA_BOOTSTRAP
eval "$(scripts/kafka-cluster.sh env)"

step "real-Kafka tests against $FLEETSTORM_KAFKA_BOOTSTRAP"
cargo test --locked --features kafka-tests --test kafka -- --test-threads 1
