#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, build-fuzz/) and runs each for a while on a
# copy of the seed corpus in tests/fuzz/corpus. Prints each one's executions; exits 1
# when a harness found a crash (the input is kept in the printed directory).
# fuzz_json is differential: it fails when the decoder's JSON parser and Jansson
# disagree on an input (accepted or not, the values, the error position).
#
#   bash tests/fuzz/run.sh [SECONDS]     seconds per harness (default: $FUZZ_SECONDS or 45)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-${FUZZ_SECONDS:-45}}
say() { printf 'fuzz: %s\n' "$*" >&2; }

command -v clang >/dev/null || { say "clang is not installed (deploy/dev/install-deps.sh installs it)"; exit 1; }
CC=clang cmake -S "$root" -B "$root/build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOUCHFLOW_FUZZ=ON >/dev/null ||
  exit 1
cmake --build "$root/build-fuzz" --target fuzz_decode fuzz_codec fuzz_json -j"$(nproc 2>/dev/null || echo 2)" >/dev/null || exit 1

work=$(mktemp -d "${TMPDIR:-/tmp}/touchflow-fuzz.XXXXXX")
status=0
for h in decode codec json; do
  mkdir -p "$work/$h/corpus"
  cp "$root/tests/fuzz/corpus/$h/"* "$work/$h/corpus/"
  ( cd "$work/$h" && "$root/build-fuzz/tests/fuzz_$h" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 corpus >run.log 2>&1 )
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/$h/run.log" | grep -o '[0-9]*$')
  cov=$(grep -oE 'cov: [0-9]+' "$work/$h/run.log" | tail -n 1)
  corpus=$(find "$work/$h/corpus" -type f | wc -l)
  if [ "$rc" = 0 ]; then
    echo "fuzz_$h: ${execs:-0} executions in $seconds s, $cov, corpus $corpus inputs, no crash"
  else
    echo "fuzz_$h: FAILED after ${execs:-?} executions (exit $rc); see $work/$h/run.log"
    grep -E 'ERROR|SUMMARY|Test unit written' "$work/$h/run.log" | head -n 5
    status=1
  fi
done
[ "$status" = 0 ] && rm -rf "$work"
echo "fuzz: $([ "$status" = 0 ] && echo "3 passed, 0 failed" || echo "harnesses failed")"
exit "$status"
