#!/usr/bin/env bash
# Install what building fleetstorm needs, only when missing (Debian/Ubuntu, apt-get).
#   scripts/deps.sh          C toolchain, pkg-config, OpenSSL and zlib headers (librdkafka is
#                            built from source by rdkafka-sys), and a Rust toolchain check
#   scripts/deps.sh --java   also a JDK (17+) and Maven, for the local Kafka cluster
#   (both: python3 with venv, for the test tools installed from PyPI: moto, kubernetes-validate;
#   and Debian's chromium, the headless browser tests/it/html.rs renders report.html in)
set -euo pipefail

want_java=0
[ "${1:-}" = "--java" ] && want_java=1

missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if command -v dpkg-query >/dev/null 2>&1; then
  for p in build-essential pkg-config libssl-dev zlib1g-dev; do
    have_pkg "$p" || missing+=("$p")
  done
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  if [ "$want_java" = 1 ]; then
    command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
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
