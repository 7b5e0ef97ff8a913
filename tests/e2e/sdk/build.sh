#!/usr/bin/env bash
# Prepares the two third-party CloudEvents readers of tests/e2e/test_cloudevents_sdk.sh
# in a cache directory (TOUCHFLOW_SDK_CACHE, default ~/.cache/touchflow/sdk):
#   venv/      python3 venv with the pinned PyPI packages of requirements.txt
#   java/      ce-read.jar and its dependencies in java/lib (Maven, java/pom.xml)
# Each part is rebuilt only when its inputs change (a stamp holds their hash); Maven
# runs offline first, so a machine that built once needs no network to rebuild.
# Prints shell assignments for eval: SDK_PYTHON and SDK_JAVA_CP. Logs go to stderr;
# exits non-zero when a part cannot be built.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${TOUCHFLOW_SDK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/touchflow/sdk}
mkdir -p "$cache"
log() { printf 'sdk-build: %s\n' "$*" >&2; }
fail() { log "$1; last output:"; tail -n 30 "$2" | sed 's/^/  | /' >&2; exit 1; }

# Two builds at once (run.sh and a test) would trample each other's output.
exec 9>"$cache/.lock"
flock 9

out=$(mktemp "${TMPDIR:-/tmp}/touchflow-sdk.XXXXXX")
trap 'rm -f "$out"' EXIT

# ---- Python: a venv, so nothing touches the system's or the user's site-packages ----
py_stamp=$( (cat "$here/requirements.txt"; python3 -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)
if [ "$(cat "$cache/venv.stamp" 2>/dev/null)" != "$py_stamp" ] || [ ! -x "$cache/venv/bin/python" ]; then
  log "installing $(grep -v '^#' "$here/requirements.txt" | xargs) into $cache/venv"
  rm -rf "$cache/venv" "$cache/venv.stamp"
  python3 -m venv "$cache/venv" >"$out" 2>&1 || fail "python3 -m venv failed (Debian: apt-get install python3-venv)" "$out"
  "$cache/venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" >"$out" 2>&1 ||
    fail "pip install failed" "$out"
  echo "$py_stamp" >"$cache/venv.stamp"
fi
"$cache/venv/bin/python" -c 'import cloudevents.core.bindings.kafka, confluent_kafka' >"$out" 2>&1 ||
  fail "the venv does not import the SDK" "$out"

# ---- Java: the reader's jar and its dependencies ----
java_stamp=$(cat "$here/java/pom.xml" "$here"/java/src/main/java/dev/touchflow/sdkcheck/*.java | sha256sum | cut -d' ' -f1)
if [ "$(cat "$cache/java.stamp" 2>/dev/null)" != "$java_stamp" ] || [ ! -f "$cache/java/ce-read.jar" ]; then
  log "building the Java reader (Maven) into $cache/java"
  rm -rf "$cache/java" "$cache/java.stamp"
  mvn_args=(-q -B -f "$here/java/pom.xml" -Dsdk.out="$cache/java" -Dmaven.test.skip=true package)
  if ! mvn -o "${mvn_args[@]}" >"$out" 2>&1; then
    mvn "${mvn_args[@]}" >"$out" 2>&1 || fail "mvn package failed" "$out"
  fi
  echo "$java_stamp" >"$cache/java.stamp"
fi

printf 'SDK_PYTHON=%q\nSDK_JAVA_CP=%q\n' "$cache/venv/bin/python" "$cache/java/ce-read.jar:$cache/java/lib/*"
