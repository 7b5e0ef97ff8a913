#!/usr/bin/env bash
# Install everything touchflow needs to build and run its tests on Debian bookworm:
# the C toolchain and libraries, redis-server, a headless JDK >= 17 (javac too: the
# CloudEvents Java SDK reader of tests/e2e/sdk is compiled) and Maven (which fetches the
# Kafka broker jars, see deploy/dev/kafka/pom.xml), python3 (test scripts) and its venv
# module (tests/e2e/sdk/build.sh installs the PyPI packages of the SDK test into a
# venv), libfaketime (a test runs the daemon 40 days ahead), clang and its libFuzzer
# runtime (tests/fuzz).
#
# Idempotent: packages already installed are left alone and `apt-get update` only runs
# when something is missing. Runs apt-get as root, through sudo when not root.
#
#   deploy/dev/install-deps.sh           install what is missing
#   deploy/dev/install-deps.sh --check   list what is missing; exit 1 if anything is
#
# All output goes to stderr.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  librdkafka-dev libhiredis-dev libevent-dev libjansson-dev libcmocka-dev
  redis-server redis-tools
  maven ca-certificates
  curl prometheus chromium systemd
  libfaketime clang libclang-rt-14-dev
  python3-venv
)
JDK_PACKAGE=openjdk-17-jdk-headless
MIN_JAVA=17

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
}

check_only=0
case "${1:-}" in
  "") ;;
  --check) check_only=1 ;;
  -h|--help) usage; exit 0 ;;
  *) usage; die "unknown argument: $1" ;;
esac

pkg_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

# Major version of the `java` on PATH (or $JAVA_HOME/bin/java), 0 if none.
java_major() {
  local java=java v
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then java="$JAVA_HOME/bin/java"; fi
  command -v "$java" >/dev/null 2>&1 || { echo 0; return; }
  # First line looks like: openjdk version "17.0.15" 2025-04-15  (or "1.8.0_392")
  v=$("$java" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
  case "$v" in
    1.*) v=${v#1.}; echo "${v%%.*}" ;;
    "") echo 0 ;;
    *) v=${v%%[.+-]*}; echo "${v:-0}" ;;
  esac
}

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script targets Debian bookworm (apt/dpkg)"

missing=()
for p in "${PACKAGES[@]}"; do
  pkg_installed "$p" || missing+=("$p")
done
jmaj=$(java_major)
if [ "$jmaj" -lt "$MIN_JAVA" ]; then
  missing+=("$JDK_PACKAGE")
  if [ "$jmaj" -gt 0 ]; then
    log "java $jmaj found on PATH, need >= $MIN_JAVA: installing $JDK_PACKAGE"
  fi
elif ! command -v javac >/dev/null 2>&1 && ! [ -x "${JAVA_HOME:-/nonexistent}/bin/javac" ]; then
  # A JRE alone runs the broker but cannot compile the SDK reader.
  missing+=("$JDK_PACKAGE")
fi
command -v python3 >/dev/null 2>&1 || missing+=(python3)

if [ "${#missing[@]}" -eq 0 ]; then
  log "all dependencies present (java $jmaj)"
  exit 0
fi
if [ "$check_only" -eq 1 ]; then
  log "missing: ${missing[*]}"
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  die "not root and sudo is not available; run as root: apt-get install ${missing[*]}"
fi

apt_log=$(mktemp "${TMPDIR:-/tmp}/touchflow-apt.XXXXXX")
trap 'rm -f "$apt_log"' EXIT

apt() {
  if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y \
      -o Dpkg::Use-Pty=0 -o APT::Color=0 "$@" >"$apt_log" 2>&1; then
    printf 'install-deps: error: apt-get %s failed; last output:\n' "$*" >&2
    tail -n 30 "$apt_log" | sed 's/^/  | /' >&2
    exit 1
  fi
}

log "installing: ${missing[*]}"
log "apt-get update"
apt update
log "apt-get install"
apt install --no-install-recommends "${missing[@]}"

jmaj=$(java_major)
[ "$jmaj" -ge "$MIN_JAVA" ] || die "java >= $MIN_JAVA still not the default 'java' (found $jmaj); check update-alternatives --config java"
log "done (java $jmaj)"
