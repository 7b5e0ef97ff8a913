#!/usr/bin/env bash
# Fault: touchflowd killed -9 three times while it works through FAULT_EVENTS events
# (default 30,000 of 3,000 customers; FAULT_EVENTS=1000000 for the full run), and
# restarted each time. What a killed member committed to Redis is skipped when the
# next one gets it again (the watermark), what it had not committed is applied by the
# next one: every customer's counts end exact, and every buyer's purchase stage
# change reaches the lifecycle topic even when a kill fell between the Redis commit
# and the delivery (the outbox is re-sent).
set -uo pipefail
source "$(dirname "$0")/../e2e/lib.sh"
started=$SECONDS

EVENTS=${FAULT_EVENTS:-30000}
CUSTOMERS=${FAULT_CUSTOMERS:-$((EVENTS / 10))}
# shellcheck disable=SC2034 # read by lib.sh
E2E_BATCH_MAX=200
setup_topics
write_config

"$TF" gen --count "$EVENTS" --customers "$CUSTOMERS" --seed 31 --file "$WORK/events.jsonl" 2>/dev/null
check "generated $EVENTS events of $CUSTOMERS customers" test "$(wc -l <"$WORK/events.jsonl")" = "$EVENTS"
check "all $EVENTS produced before the first start" "$TF" produce -t "$IN" --timeout-ms 120000 "$WORK/events.jsonl"

# Waits (generously for the 1M run) are scaled by the input.
slack=$((60 + EVENTS / 200))

# Kills at about 20%, 45% and 70% of the input applied, counted over the members so
# far (stats every 0.1 s, so a kill comes at most a few hundred records late).
# shellcheck disable=SC2034 # read by lib.sh
E2E_STATS_MS=100
applied_before=0
for k in 1 2 3; do
  target=$((EVENTS * (25 * k - 5) / 100))
  t0=$SECONDS
  start_daemon
  resumed=
  deadline=$((SECONDS + slack))
  while [ $SECONDS -lt $deadline ] && [ $((applied_before + $(stat_of applied))) -lt "$target" ]; do
    if [ -z "$resumed" ] && [ $(($(stat_of applied) + $(stat_of replayed))) -gt 0 ]; then resumed=$((SECONDS - t0)); fi
    sleep 0.1
  done
  at=$(stat_of applied)
  replayed=$(stat_of replayed)
  kill -9 "$DAEMON_PID"
  wait "$DAEMON_PID" 2>/dev/null
  DAEMON_PID=
  applied_before=$((applied_before + at))
  lag=$(group_lag)
  echo "# injected: kill -9 #$k: this member applied $at (and skipped $replayed redelivered), about $applied_before of $EVENTS in all; lag left $lag"
  [ $k -gt 1 ] && echo "# found: member $k was applying ${resumed:-$((SECONDS - t0))} s after its start (a killed member holds its partitions until its session times out)"
  check "kill #$k mid-stream: the member applied some ($at), the group has not committed everything (lag $lag)" \
    test "$at" -gt 0 -a "$lag" -ne 0
  mv "$WORK/touchflowd.log" "$WORK/member-$k.log"
done

# Recovery: from the last start until the group has committed every input record.
t0=$SECONDS
start_daemon
check "the fourth member catches up (lag 0)" wait_caught_up $((slack * 2))
recover=$((SECONDS - t0))
echo "# found: caught up $recover s after the last restart; this member applied=$(stat_of applied) replayed=$(stat_of replayed) (redelivered, skipped by the watermark)"
# Lag 0 means applied and delivered; the state is read once more if a commit
# acknowledgement was still on its way.
wait_for 30 counts_exact "$WORK/events.jsonl"
check "every customer's counts are exact after three kills" counts_exact "$WORK/events.jsonl" verbose
read -r lost dup < <(count_diff "$WORK/events.jsonl")
stream_fault_end "touchflowd kill -9 x3" "$lost" "$dup" "$recover"
finish
