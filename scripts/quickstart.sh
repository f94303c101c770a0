#!/usr/bin/env bash
# Set up (build dependencies, release build) and run the quickstart scenario on the embedded
# cluster. Extra arguments go to `fleetstorm run`, e.g. `scripts/quickstart.sh --duration 10s`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked -p fleetstorm
exec target/release/fleetstorm run scenarios/quickstart.yaml "$@"
