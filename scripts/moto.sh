#!/usr/bin/env bash
# moto.sh - a local S3-compatible server (moto, from PyPI, in server mode) on 127.0.0.1, for the
# object-storage tests (harness/tests/it/store.rs) and for trying `--out s3://...` by hand.
#
# Usage: scripts/moto.sh COMMAND
#
#   install    make moto importable: the first python3 that imports `moto.server` and flask is
#              used as is; otherwise `moto[server]` is installed with pip into a venv under
#              target/venv-moto (idempotent)
#   start      install if needed, start moto on a free loopback port (or FLEETSTORM_MOTO_PORT),
#              wait until it answers, record pid and port in the state file, print its URL.
#              No-op (prints the URL) if the recorded server still answers.
#   stop       stop the recorded server (SIGTERM, then SIGKILL after 5 s) and remove the state.
#              Only a process whose command line is moto's is signalled; no state, no-op.
#   url        print http://127.0.0.1:PORT of the running server; exit 1 if none
#   bucket B   create bucket B on the running server (an unsigned PUT, which moto accepts)
#   env        print the export lines that point fleetstorm at the server (test credentials)
#   -h|--help  this text
#
# Environment (all optional):
#   FLEETSTORM_MOTO_STATE      state directory (<repo>/target/moto): state file and moto.log.
#                              Tests give each server its own, so several can run at once.
#   FLEETSTORM_MOTO_PORT       port to use instead of a free one
#   FLEETSTORM_MOTO_VERSION    pip requirement for the venv install (moto[server]>=5,<6)
#   FLEETSTORM_MOTO_TIMEOUT    seconds to wait for the server to answer (30)
#
# Typical use:
#   scripts/moto.sh start && scripts/moto.sh bucket results && eval "$(scripts/moto.sh env)"
#   target/release/fleetstorm run scenarios/quickstart.yaml --out s3://results/run1
#   scripts/moto.sh stop
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${FLEETSTORM_MOTO_STATE:-$ROOT/target/moto}"
STATE="$STATE_DIR/state"
VENV="$ROOT/target/venv-moto"
REQ="${FLEETSTORM_MOTO_VERSION:-moto[server]>=5,<6}"
TIMEOUT="${FLEETSTORM_MOTO_TIMEOUT:-30}"

die() { echo "moto.sh: $*" >&2; exit 1; }

importable() { "$1" -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1; }

# The python that runs moto: the venv's if it has moto, else the system's if it has, else install.
python_for_moto() {
  if [[ -x "$VENV/bin/python" ]] && importable "$VENV/bin/python"; then echo "$VENV/bin/python"; return; fi
  local sys; sys="$(command -v python3 || true)"
  if [[ -n "$sys" ]] && importable "$sys"; then echo "$sys"; return; fi
  [[ -n "$sys" ]] || die "python3 not found (Debian: apt-get install python3 python3-venv)"
  echo "moto.sh: installing $REQ into $VENV" >&2
  if [[ ! -x "$VENV/bin/python" ]]; then
    "$sys" -m venv "$VENV" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$REQ" >&2 || die "pip install $REQ failed"
  importable "$VENV/bin/python" || die "moto still not importable from $VENV"
  echo "$VENV/bin/python"
}

answers() { # port
  "${PY:-python3}" - "$1" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=2).read()
EOF
}

is_moto() { # pid
  [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q 'moto.server'
}

read_state() { # sets PID PORT, or returns 1
  [[ -f "$STATE" ]] || return 1
  read -r PID PORT <"$STATE" || return 1
  [[ "$PID" =~ ^[0-9]+$ && "$PORT" =~ ^[0-9]+$ ]] || return 1
}

running() { read_state && is_moto "$PID" && answers "$PORT"; }

free_port() {
  "$1" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

cmd_start() {
  mkdir -p "$STATE_DIR"
  if running; then echo "http://127.0.0.1:$PORT"; return; fi
  rm -f "$STATE"
  PY="$(python_for_moto)"
  PORT="${FLEETSTORM_MOTO_PORT:-$(free_port "$PY")}"
  # setsid: the server outlives this script but not a `stop`; its own process group.
  setsid "$PY" -m moto.server -H 127.0.0.1 -p "$PORT" >"$STATE_DIR/moto.log" 2>&1 </dev/null &
  PID=$!
  echo "$PID $PORT" >"$STATE"
  local waited=0
  until answers "$PORT"; do
    if ! kill -0 "$PID" 2>/dev/null; then
      rm -f "$STATE"
      die "moto exited before answering; its log ($STATE_DIR/moto.log): $(tail -5 "$STATE_DIR/moto.log" | tr '\n' ' ')"
    fi
    if (( waited >= TIMEOUT * 5 )); then
      cmd_stop
      die "moto did not answer on 127.0.0.1:$PORT within ${TIMEOUT}s; see $STATE_DIR/moto.log"
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
  echo "http://127.0.0.1:$PORT"
}

cmd_stop() {
  read_state || { rm -f "$STATE"; return 0; }
  if is_moto "$PID"; then
    kill "$PID" 2>/dev/null || true
    for _ in $(seq 50); do is_moto "$PID" || break; sleep 0.1; done
    if is_moto "$PID"; then kill -9 "$PID" 2>/dev/null || true; fi
  fi
  rm -f "$STATE"
}

cmd_url() {
  running || die "no moto server running (state: $STATE)"
  echo "http://127.0.0.1:$PORT"
}

cmd_bucket() {
  local b="${1:-}"; [[ -n "$b" ]] || die "usage: moto.sh bucket NAME"
  running || die "no moto server running (state: $STATE)"
  "${PY:-python3}" - "$PORT" "$b" <<'EOF'
import sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/{sys.argv[2]}", method="PUT", data=b"")
urllib.request.urlopen(req, timeout=10).read()
EOF
}

cmd_env() {
  running || die "no moto server running (state: $STATE)"
  cat <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
export AWS_ALLOW_HTTP=true
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
EOF
}

case "${1:-}" in
  install) python_for_moto >/dev/null ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  url) cmd_url ;;
  bucket) shift; cmd_bucket "$@" ;;
  env) cmd_env ;;
  -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
