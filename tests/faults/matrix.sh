#!/usr/bin/env bash
# Runs fault tests and prints what they measured as a Markdown table, from the
# FAULT|name|events|lost|duplicated|derived missing|seconds line each one prints.
#
#   bash tests/faults/matrix.sh TOUCHFLOWD TOUCHFLOW [test_x.sh ...]   (default: all)
#
# Each test's output goes to $FAULT_LOGS (default: a new temporary directory); the
# progress and any failed or skipped test go to stderr. Exits 1 if a test failed.
# FAULT_EVENTS / FAULT_CUSTOMERS pass through to the tests that take them.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tfd=${1:?usage: $0 TOUCHFLOWD TOUCHFLOW [test_x.sh ...]}
tf=${2:?usage: $0 TOUCHFLOWD TOUCHFLOW [test_x.sh ...]}
shift 2
if [ $# -eq 0 ]; then
  set -- "$here"/test_*.sh
fi
logs=${FAULT_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/touchflow-faults.XXXXXX")}
mkdir -p "$logs"

rows=()
status=0
for t in "$@"; do
  [ -f "$t" ] || t=$here/$(basename "$t")
  name=$(basename "$t" .sh)
  start=$SECONDS
  printf 'faults: %s ... ' "$name" >&2
  bash "$t" "$tfd" "$tf" >"$logs/$name.log" 2>&1
  rc=$?
  case $rc in
    0) echo "ok ($((SECONDS - start)) s)" >&2 ;;
    77) echo "skipped" >&2 ;;
    *) echo "FAILED (exit $rc, $((SECONDS - start)) s; see $logs/$name.log)" >&2; status=1 ;;
  esac
  while IFS= read -r line; do
    [ $rc = 0 ] || line="$line (test failed)"
    rows+=("$line")
  done < <(grep '^FAULT|' "$logs/$name.log")
done

echo "| fault | events | lost | duplicated in state | derived events missing | time to recover (s) |"
echo "|---|---:|---:|---:|---:|---:|"
for line in "${rows[@]}"; do
  IFS='|' read -r _ fault events lost dup missing secs <<<"$line"
  echo "| $fault | $events | $lost | $dup | $missing | $secs |"
done
echo
echo "('-': not measured by that test, or no outage to recover from. Logs: $logs)"
exit $status
