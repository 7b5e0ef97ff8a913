#!/usr/bin/env bash
# Fault: an output topic refuses every write for 10 s, then accepts again. The
# lifecycle topic's max.message.bytes is set to 1 byte, so the broker answers every
# produce with MESSAGE_TOO_LARGE, then the setting is removed. (min.insync.replicas
# above the replication factor does not do it: the broker caps it at the replication
# factor, so acks=all writes to this single-replica topic go through.) Expected:
# touchflowd stays up and keeps sending, derives nothing less, commits no input offset
# past a record whose stage change was not delivered, and once the topic accepts
# again delivers everything: every buyer's purchase stage change is on the topic,
# every outbox in Redis ends empty, every customer's counts are exact. Meanwhile the
# consumer stays polled (max.poll.interval.ms is set below the refusal, so a
# consumer left unpolled would leave the group) and the failed deliveries are
# reported once per 10 s, not once each.
set -uo pipefail
# shellcheck disable=SC2034 # read by lib.sh
E2E_OPS_LISTEN=127.0.0.1:0
# shellcheck disable=SC2034 # read by lib.sh
E2E_CONSUMER='{"session.timeout.ms": "6000", "heartbeat.interval.ms": "500", "max.poll.interval.ms": "6000"}'
source "$(dirname "$0")/../e2e/lib.sh"
started=$SECONDS

EVENTS=${FAULT_EVENTS:-20000}
CUSTOMERS=${FAULT_CUSTOMERS:-$((EVENTS / 10))}
REFUSE_S=${FAULT_REFUSE_S:-10}
LIFECYCLE=$OUT_PREFIX.lifecycle
setup_topics
write_config
"$TF" gen --count "$EVENTS" --customers "$CUSTOMERS" --seed 23 --file "$WORK/events.jsonl" 2>/dev/null
head -n $((EVENTS / 2)) "$WORK/events.jsonl" >"$WORK/a.jsonl"
tail -n +$((EVENTS / 2 + 1)) "$WORK/events.jsonl" >"$WORK/b.jsonl"

topic_config() { # --add-config K=V | --delete-config K
  kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$TOUCHFLOW_KAFKA_BROKERS" --alter \
    --entity-type topics --entity-name "$LIFECYCLE" "$@" >/dev/null
}
records_on() { "$TF" consume --from-beginning --idle-ms 2000 --timeout-ms 30000 -t "$1" 2>/dev/null | wc -l; }
metric() { curl -s -m 5 "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

"$TF" produce -t "$IN" "$WORK/a.jsonl" >/dev/null 2>&1
start_daemon
URL=$(ops_url)
check "the first half processed while the topic accepts" wait_caught_up 60
before=$(records_on "$LIFECYCLE")

check "the lifecycle topic set to refuse every record" topic_config --add-config max.message.bytes=1
sleep 2 # the setting reaches the broker's log
echo "# injected: $LIFECYCLE max.message.bytes=1 for $REFUSE_S s (it held $before records)"
"$TF" produce -t "$IN" "$WORK/b.jsonl" >/dev/null 2>&1
sleep "$REFUSE_S"
check "the daemon is alive after $REFUSE_S s of refusals" kill -0 "$DAEMON_PID"
during=$(records_on "$LIFECYCLE")
check "the refusal held: nothing new on the topic ($before, then $during)" test "$during" = "$before"
retries=$(metric touchflow_delivery_retries_total)
check "the refused events are being sent again (touchflow_delivery_retries_total ${retries:-?})" test "${retries:-0}" -gt 0
"$TF" lag --json --group "$GROUP" -t "$IN" >"$WORK/lag-refused.json" 2>/dev/null
joins=$(grep -c "assigned .* partition" "$WORK/touchflowd.log")
check "the member stayed in the group through the refusal (assigned once: $joins)" test "$joins" = 1
check "no max.poll.interval.ms expiry logged" eval '! grep -q "MAXPOLL\|leaving group" "$WORK/touchflowd.log"'
reports=$(grep -c "delivery to .* failed" "$WORK/touchflowd.log")
check "failed deliveries reported at most once per 10 s ($reports lines for $REFUSE_S s)" test "$reports" -le $((REFUSE_S / 10 + 2))
check "the stall was noticed: consumption paused while nothing could be taken" grep -q "no record could be taken" "$WORK/touchflowd.log"
echo "# found: during the refusal: applied=$(stat_of applied) derived=$(stat_of derived) inflight=$(stat_of inflight) paused=$(stat_of paused) lag=$(group_lag) delivery_retries=$retries"

check "the lifecycle topic accepts again" topic_config --delete-config max.message.bytes
t0=$SECONDS
check "every input record committed once the topic accepts" wait_caught_up 120
recover=$((SECONDS - t0))
echo "# found: no lag $recover s after the topic accepted again"
wait_for 30 counts_exact "$WORK/events.jsonl"
check "every customer's counts are exact" counts_exact "$WORK/events.jsonl" verbose
read -r lost dup < <(count_diff "$WORK/events.jsonl")
outbox_left() { # entries of every customer's outbox
  local k n=0
  while read -r k; do
    [ -n "$k" ] && n=$((n + $(redis_cli HLEN "$k")))
  done < <(redis_cli --scan --pattern "${PREFIX}c:*:outbox")
  echo "$n"
}
wait_for 20 eval '[ "$(outbox_left)" = 0 ]'
left=$(outbox_left)
check "every outbox acknowledged: nothing derived is left undelivered ($left entries)" test "$left" = 0
check "SIGTERM exits 0" stop_daemon

consume_out lifecycle "$WORK/lifecycle.jsonl"
missing=$(stage_changes_missing "$WORK/events.jsonl" "$WORK/lifecycle.jsonl")
check "a purchase stage change on the topic for every buyer" test "$missing" = 0

# The offsets committed during the refusal must stay at or below the first record of
# each partition whose stage change went out only after it: a commit past it would
# lose that change if the daemon died then.
"$TF" consume --from-beginning --idle-ms 3000 --timeout-ms 60000 -t "$IN" >"$WORK/input.jsonl" 2>/dev/null
past=$(python3 - "$WORK/input.jsonl" "$WORK/lifecycle.jsonl" "$WORK/lag-refused.json" "$before" <<'PY'
import json, sys
from datetime import datetime
def t(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))
where = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    e = json.loads(r["value"])
    where[(e["subject"], t(e["time"]))] = (r["partition"], r["offset"])
out = [json.loads(l) for l in open(sys.argv[2])]
late = out[int(sys.argv[4]):]  # what the topic took after the refusal
committed = {r["partition"]: r["current_offset"] for r in json.load(open(sys.argv[3]))}
first = {}
for r in late:
    e = json.loads(r["value"])
    if e["data"].get("cause") == "timer":
        continue
    src = where.get((e["subject"], t(e["time"])))
    if src:
        first[src[0]] = min(first.get(src[0], src[1]), src[1])
bad = {p: (committed.get(p), o) for p, o in first.items() if committed.get(p) is not None and committed[p] > o}
print("  committed during the refusal / first record with a late stage change, per partition: %s"
      % {p: (committed.get(p), first.get(p)) for p in sorted(committed)}, file=sys.stderr)
print(len(bad))
PY
)
check "no input offset committed past a record whose stage change was not yet delivered" test "$past" = 0
echo "# found: $lost events lost, $dup applied twice, $missing buyers without their stage change, $left outbox entries left, $past partitions committed past undelivered output"

echo "# took $((SECONDS - started)) s"
fault_line "output topic refuses writes ${REFUSE_S} s" "$EVENTS" "$lost" "$dup" "$((missing + left))" "$recover"
finish
