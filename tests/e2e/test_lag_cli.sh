#!/usr/bin/env bash
# touchflow lag against the real broker: before touchflowd runs, every produced
# record is lag and nothing is committed; after it processed them, lag is 0 and the
# committed offsets equal the log end offsets.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

setup_topics
write_config
"$TF" gen --count 300 --customers 40 --seed 3 --file "$WORK/events.jsonl" 2>/dev/null
"$TF" produce -t "$IN" "$WORK/events.jsonl" 2>/dev/null

lag_json() { "$TF" -c "$WORK/touchflow.json" lag --json >"$WORK/lag.json"; }
lag_is() { # python condition over rows
  python3 - "$WORK/lag.json" "$1" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2])
if not ok:
    print("  rows:", rows)
sys.exit(0 if ok else 1)
PY
}
check "lag before the daemon runs" lag_json
check "4 partitions, nothing committed, lag = 300" lag_is \
  "len(rows) == 4 and all(r['current_offset'] is None for r in rows) and sum(r['lag'] for r in rows) == 300"
check "table output ends with TOTAL 300" bash -c "'$TF' -c '$WORK/touchflow.json' lag | tail -n 1 | grep -Eq '^TOTAL +300\$'"

start_daemon
check "touchflowd processes the 300 records" wait_processed 300 60
check "SIGTERM exits 0 (offsets committed)" stop_daemon
check "lag after processing" lag_json
check "lag 0, committed = log end on every partition" lag_is \
  "len(rows) == 4 and all(r['current_offset'] == r['log_end_offset'] and r['lag'] == 0 for r in rows)"
check "an unknown topic is an error" bash -c "! '$TF' -c '$WORK/touchflow.json' lag -t 'no.such.$RUN_ID' --timeout-ms 3000 2>/dev/null"
finish
