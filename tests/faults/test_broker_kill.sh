#!/usr/bin/env bash
# Fault: the Kafka broker (the single dev broker of deploy/dev/services.sh) killed -9
# mid-stream, down for 10 s (longer than the group session of 6 s, so the member
# loses its assignment while its partitions are paused, and must read them again
# when it is given them back), and started again. The input is all produced before the
# kill (a producer of the input would have to retry too). touchflowd stays up, keeps
# what it consumed but could not deliver or commit, reconnects by itself; in the end
# every customer's counts are exact and every buyer's purchase stage change is on the
# lifecycle topic. The broker is started again on any exit: later tests need it.
set -uo pipefail
source "$(dirname "$0")/../e2e/lib.sh"
started=$SECONDS
DOWN_S=${FAULT_DOWN_S:-10}

SERVICES=$ROOT/deploy/dev/services.sh
KAFKA_PIDFILE=${TOUCHFLOW_DEV_DIR:-$ROOT/.dev}/kafka/kafka.pid
broker_pid() {
  local pid
  pid=$(tr -dc '0-9' <"$KAFKA_PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF kafka.Kafka && echo "$pid"
}
if [ "$TOUCHFLOW_KAFKA_BROKERS" != "127.0.0.1:${TOUCHFLOW_DEV_KAFKA_PORT:-19092}" ] || ! broker_pid >/dev/null; then
  echo "the broker is not the one deploy/dev/services.sh runs: skipping"
  exit 77
fi
broker_up() { bash "$SERVICES" up >/dev/null 2>"$WORK/services.err"; }
# shellcheck disable=SC2317 # run by the trap
ensure_broker() { broker_pid >/dev/null || broker_up || cat "$WORK/services.err" 2>/dev/null; }
trap ensure_broker EXIT

EVENTS=${FAULT_EVENTS:-30000}
CUSTOMERS=${FAULT_CUSTOMERS:-$((EVENTS / 10))}
# shellcheck disable=SC2034 # read by lib.sh
E2E_STATS_MS=100
# shellcheck disable=SC2034
E2E_OPS_LISTEN=127.0.0.1:0
setup_topics
write_config
"$TF" gen --count "$EVENTS" --customers "$CUSTOMERS" --seed 19 --file "$WORK/events.jsonl" 2>/dev/null
check "all $EVENTS produced before the kill" "$TF" produce -t "$IN" --timeout-ms 120000 "$WORK/events.jsonl"

start_daemon
URL=$(ops_url)
wait_for 60 eval '[ "$(stat_of applied)" -ge $((EVENTS * 3 / 10)) ]'
at=$(stat_of applied)
kill -9 "$(broker_pid)"
echo "# injected: Kafka broker kill -9 with $at of $EVENTS applied, down for ${DOWN_S} s"
sleep "$DOWN_S"
check "the daemon is alive while the broker is down" kill -0 "$DAEMON_PID"
kafka_up=$(curl -s "$URL/metrics" | awk '$1 == "touchflow_kafka_up" {print $2}')
check "the outage is seen: touchflow_kafka_up is 0 while the broker is down" test "${kafka_up:-}" = 0
echo "# found: while down: applied=$(stat_of applied) derived=$(stat_of derived) inflight=$(stat_of inflight) paused=$(stat_of paused) touchflow_kafka_up=${kafka_up:-?}"
check "the broker starts again" broker_up
t0=$SECONDS
check "every input record committed after the restart" wait_caught_up 180
recover=$((SECONDS - t0))
echo "# found: no lag $recover s after the broker was back; applied=$(stat_of applied) replayed=$(stat_of replayed) duplicates=$(stat_of duplicates)"
wait_for 30 counts_exact "$WORK/events.jsonl"
check "every customer's counts are exact after the broker's kill" counts_exact "$WORK/events.jsonl" verbose
read -r lost dup < <(count_diff "$WORK/events.jsonl")
stream_fault_end "kafka broker kill -9" "$lost" "$dup" "$recover"
finish
