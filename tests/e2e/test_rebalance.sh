#!/usr/bin/env bash
# Two touchflowd in one consumer group: the second joins mid-stream (the partitions
# are split between them, each assignment writing under a new epoch), then the first
# is killed and the second takes everything over. Counts must be exact.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

EVENTS=12000
E2E_BATCH_MAX=100
setup_topics
write_config
"$TF" gen --count "$EVENTS" --customers 1500 --seed 23 --file "$WORK/events.jsonl" 2>/dev/null
"$TF" produce -t "$IN" "$WORK/events.jsonl" 2>/dev/null

start_daemon
first=$DAEMON_PID
first_log="$WORK/touchflowd.log"
deadline=$((SECONDS + 60))
while [ $SECONDS -lt $deadline ] && [ "$(stat_of applied)" -lt 1000 ]; do sleep 0.1; done

# The second member writes its own log.
"$TFD" -c "$WORK/touchflow.json" --stats-interval-ms 500 2>"$WORK/second.log" &
second=$!
deadline=$((SECONDS + 30))
until grep -q '"msg":"assigned' "$WORK/second.log" || [ $SECONDS -ge $deadline ]; do sleep 0.2; done
check "the second member got partitions" grep -q '"msg":"assigned' "$WORK/second.log"
sleep 1
kill -9 "$first"
wait "$first" 2>/dev/null
DAEMON_PID=$second

check "epochs grow with each assignment" python3 - "$first_log" "$WORK/second.log" <<'PY'
import re, sys
ep = [int(m) for f in sys.argv[1:] for m in re.findall(r'epoch (\d+)', open(f).read())]
sys.exit(0 if len(ep) >= 2 and len(set(ep)) == len(ep) else 1)
PY

deadline=$((SECONDS + 120))
until counts_exact "$WORK/events.jsonl" || [ $SECONDS -ge $deadline ]; do sleep 1; done
check "counts exact after a join and a member's crash" counts_exact "$WORK/events.jsonl" verbose
cp "$WORK/second.log" "$WORK/touchflowd.log"
check "SIGTERM exits 0" stop_daemon

finish
