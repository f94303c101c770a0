#!/usr/bin/env bash
# Install what building fleetstorm needs, only when missing (Debian/Ubuntu, apt-get).
#   scripts/deps.sh          C toolchain, pkg-config, OpenSSL and zlib headers (librdkafka is
#                            built from source by rdkafka-sys), and a Rust toolchain check
#   scripts/deps.sh --test   also python3 with venv (the test tools installed from PyPI: moto,
#                            kubernetes-validate, prometheus-client) and Debian's chromium (the
#                            headless browser tests/it/html.rs renders report.html in)
#   scripts/deps.sh --java   also a JDK (17+) and Maven for the local Kafka cluster, and what its
#                            network faults need: Go (to build Toxiproxy), curl, iptables
set -euo pipefail

want_java=0
want_test=0
for arg in "$@"; do
  case $arg in
    --java) want_java=1 ;;
    --test) want_test=1 ;;
    *) echo "deps.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if command -v dpkg-query >/dev/null 2>&1; then
  for p in build-essential pkg-config libssl-dev zlib1g-dev; do
    have_pkg "$p" || missing+=("$p")
  done
  if [ "$want_test" = 1 ]; then
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  fi
  if [ "$want_java" = 1 ]; then
    command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
    command -v go >/dev/null 2>&1 || missing+=(golang-go)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "not a Debian system: make sure a C compiler, make, pkg-config, OpenSSL and zlib headers are installed" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust from https://rustup.rs (1.85 or newer), then rerun" >&2
  exit 1
fi
