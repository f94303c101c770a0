#!/usr/bin/env bash
# openmetrics.sh - a python3 that imports prometheus_client, whose OpenMetrics parser the
# live-metrics test (harness/tests/it/live.rs) checks `run --metrics-addr` with.
#
# Usage: scripts/openmetrics.sh COMMAND
#
#   install    make prometheus_client importable: a python3 that already imports it is used as is;
#              otherwise `prometheus-client` is installed with pip into a venv under
#              target/venv-openmetrics (idempotent)
#   python     print the python that imports it (the venv's first); exit 1 if none
#   -h|--help  this text
#
# Environment: FLEETSTORM_OPENMETRICS_VERSION, the pip requirement (prometheus-client>=0.20,<1).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/target/venv-openmetrics"
REQ="${FLEETSTORM_OPENMETRICS_VERSION:-prometheus-client>=0.20,<1}"

die() { echo "openmetrics.sh: $*" >&2; exit 1; }

importable() { "$1" -c 'from prometheus_client.openmetrics.parser import text_string_to_metric_families' >/dev/null 2>&1; }

found() {
  if [[ -x "$VENV/bin/python" ]] && importable "$VENV/bin/python"; then echo "$VENV/bin/python"; return; fi
  local sys; sys="$(command -v python3 || true)"
  if [[ -n "$sys" ]] && importable "$sys"; then echo "$sys"; return; fi
  return 1
}

case "${1:-}" in
  install)
    if py="$(found)"; then echo "$py"; exit 0; fi
    sys="$(command -v python3 || true)"
    [[ -n "$sys" ]] || die "python3 not found (Debian: apt-get install python3 python3-venv)"
    echo "openmetrics.sh: installing $REQ into $VENV" >&2
    if [[ ! -x "$VENV/bin/python" ]]; then
      "$sys" -m venv "$VENV" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$REQ" >&2 || die "pip install $REQ failed"
    importable "$VENV/bin/python" || die "prometheus_client still not importable from $VENV"
    echo "$VENV/bin/python"
    ;;
  python) found || die "no python3 imports prometheus_client: run scripts/openmetrics.sh install" ;;
  -h|--help) sed -n '2,13p' "$0" ;;
  *) die "unknown command \`${1:-}\` (install, python)" ;;
esac
