#!/usr/bin/env bash
# Fault: the consumer group goes from one member to three and back to one while the
# input keeps arriving (30,000 events of 3,000 customers, produced over ~12 s, on six
# partitions). Two members join mid-stream, then one leaves with SIGTERM (drains,
# commits) and the other is killed -9 (its partitions wait for its session to time
# out; what it committed to Redis without committing the offsets comes again). Each
# assignment writes under a new epoch. Every customer's counts end exact and every
# buyer's purchase stage change is on the lifecycle topic.
set -uo pipefail
source "$(dirname "$0")/../e2e/lib.sh"
started=$SECONDS

EVENTS=${FAULT_EVENTS:-30000}
CUSTOMERS=${FAULT_CUSTOMERS:-$((EVENTS / 10))}
# shellcheck disable=SC2034 # read by lib.sh
E2E_BATCH_MAX=100
# Six partitions: two each for three members (setup_topics keeps an existing topic).
create_topic "$IN" 6
setup_topics
write_config
"$TF" gen --count "$EVENTS" --customers "$CUSTOMERS" --seed 131 --file "$WORK/events.jsonl" 2>/dev/null

member() { # log: starts one more member of the group (MEMBER_PID)
  "$TFD" -c "$WORK/touchflow.json" --stats-interval-ms 500 >/dev/null 2>"$1" &
  MEMBER_PID=$!
}
assigned_some() { grep -qE '"msg":"assigned [1-9]' "$1"; }
last_assigned() { grep -oE '"msg":"assigned [0-9]+' "$1" | tail -n 1 | grep -oE '[0-9]+$'; }

B= C= PRODUCER_PID=
# shellcheck disable=SC2317 # run by the trap
cleanup() { for pid in $B $C $PRODUCER_PID; do kill -9 "$pid" 2>/dev/null; done; }
trap cleanup EXIT
start_daemon
produce_paced "$WORK/events.jsonl" 12 1
A_LOG=$WORK/touchflowd.log
wait_for 60 eval '[ "$(stat_of applied)" -ge $((EVENTS / 10)) ]'

# ---- 1 -> 3 ----
member "$WORK/b.log"
B=$MEMBER_PID
member "$WORK/c.log"
C=$MEMBER_PID
echo "# injected: two members join with $(stat_of applied) applied by the first"
check "the second member got partitions" wait_for 60 assigned_some "$WORK/b.log"
check "the third member got partitions" wait_for 60 assigned_some "$WORK/c.log"
b_working() { [ "$(stat_of applied "$WORK/b.log")" -gt 0 ] && [ "$(stat_of applied "$WORK/c.log")" -gt 0 ]; }
check "both new members apply records" wait_for 60 b_working
sleep 2
echo "# found: three members: partitions $(last_assigned "$A_LOG")/$(last_assigned "$WORK/b.log")/$(last_assigned "$WORK/c.log"), applied $(stat_of applied)/$(stat_of applied "$WORK/b.log")/$(stat_of applied "$WORK/c.log")"

# ---- 3 -> 1 ----
kill -TERM "$B"
rc=0
wait "$B" || rc=$?
check "the second member leaves on SIGTERM with exit 0" test "$rc" = 0
kill -9 "$C"
wait "$C" 2>/dev/null
t0=$SECONDS
echo "# injected: the second member stopped (SIGTERM), the third killed -9 with $(stat_of applied "$WORK/c.log") applied"
all_back() { [ "$(last_assigned "$A_LOG")" = 6 ] && caught_up; }
check "the first member takes all six partitions back and catches up" wait_for 120 all_back
recover=$((SECONDS - t0))
echo "# found: back to one member with no lag $recover s after the kill"

wait "$PRODUCER_PID"
check "the whole input is committed" wait_caught_up 120
wait_for 30 counts_exact "$WORK/events.jsonl"
check "every customer's counts are exact after 1 -> 3 -> 1" counts_exact "$WORK/events.jsonl" verbose
read -r lost dup < <(count_diff "$WORK/events.jsonl")
check "epochs grow with each assignment" python3 - "$A_LOG" "$WORK/b.log" "$WORK/c.log" <<'PY'
import re, sys
ep = [int(m) for f in sys.argv[1:] for m in re.findall(r'epoch (\d+)', open(f).read())]
print("  epochs taken: %d, distinct: %d" % (len(ep), len(set(ep))))
sys.exit(0 if len(ep) >= 3 and len(set(ep)) == len(ep) else 1)
PY
stream_fault_end "rebalance 1 -> 3 -> 1 (one kill -9)" "$lost" "$dup" "$recover"
finish
