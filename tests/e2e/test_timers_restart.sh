#!/usr/bin/env bash
# End to end on the real broker and Redis, stream time: timers live in Redis, not in
# the process. Complaints go in and their SLA timers are indexed; the daemon stops
# before any deadline; a second daemon, started later, fires every escalation from
# the partition's timer index once the stream's time passes the deadlines, at the
# rate limit (timers.max_per_second), each exactly once with its due time.
set -uo pipefail
E2E_CLOCK=stream
E2E_SCAN_MS=100
E2E_OPS_LISTEN=127.0.0.1:0
source "$(dirname "$0")/lib.sh"

# One input partition: one stream clock that the last event moves for everyone.
create_topic "$IN" 1
setup_topics
N=40
write_config
# 10 firings a second at most: 40 customers' escalations take about 4 s to catch up.
python3 - "$WORK/touchflow.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["timers"]["max_per_second"] = 10
json.dump(c, open(p, "w"))
PY

esc() { python3 "$E2E_DIR/escalations.py" "$@"; }
T0="2026-03-01T08:00:00Z" # when escalations.py's complaints are opened
esc input "$N" >"$WORK/complaints.jsonl"
"$TF" produce -t "$IN" "$WORK/complaints.jsonl" 2>/dev/null

start_daemon
check "first daemon processes the $N complaints" wait_processed "$N" 90
check "nothing due yet on the stream's time" wait_settled 30
check "first daemon stops cleanly" stop_daemon
not_escalated() {
  "$TF" -o "redis.key_prefix=$PREFIX" customer get cust-7 | python3 -c '
import json, sys
s = json.load(sys.stdin)
c = s["complaint_details"][0]
sys.exit(0 if c["level"] == 0 and c["state"] == "open" and any(t["name"] == "sla" for t in s["timers"]) else 1)'
}
check "no escalation before the deadline: level 0, the SLA timer pending" not_escalated
index_ok() {
  local n due
  n=$(redis_cli zcard "${PREFIX}timers:$IN/0")
  due=$(redis_cli zscore "${PREFIX}timers:$IN/0" cust-7)
  # High severity: 8 h SLA from 08:00 UTC.
  [ "$n" = "$N" ] && [ "$due" = "$(( $(date -u -d "$T0" +%s) * 1000 + 8 * 3600 * 1000 ))" ] ||
    { echo "  index: $n members, cust-7 due $due"; return 1; }
}
check "every customer indexed at its SLA deadline" index_ok

# Later: another daemon, and one event 20 h on moves the stream past both deadlines.
: >"$WORK/touchflowd.log"
start_daemon
esc clocks tick 2026-03-02T04:00:00Z 1 >"$WORK/clock.jsonl"
"$TF" produce -t "$IN" "$WORK/clock.jsonl" 2>/dev/null
check "second daemon processes the clock event" wait_processed 1 90
check "escalations settle" wait_settled 90
metrics_ok() {
  local url
  url=$(ops_url) || return 1
  curl -fsS "$url/metrics" >"$WORK/metrics.txt" || return 1
  # 80 escalations fired by timers (two per customer), none left due.
  grep -qx 'touchflow_timers_fired_total 80' "$WORK/metrics.txt" &&
    grep -qx 'touchflow_timers_due 0' "$WORK/metrics.txt" ||
    { grep timers "$WORK/metrics.txt"; return 1; }
}
check "/metrics counts 80 timer firings and none due" metrics_ok
check "second daemon stops cleanly" stop_daemon

"$TF" consume --from-beginning --idle-ms 3000 --timeout-ms 30000 -t "$OUT_PREFIX.complaint" >"$WORK/escalations.jsonl" 2>/dev/null
check "each customer escalated at 8 h and 16 h, exactly once, by the second daemon" \
  esc check "$WORK/escalations.jsonl" "$N"
# 40 visits (both of a customer's escalations fire in one) at 10 a second: the
# escalations were produced over about 4 s, where without the limit one scan would
# have queued them all at once.
check "catch-up spread by the rate limit" esc spread "$WORK/escalations.jsonl" 3000
check "index holds nobody due any more" test "$(redis_cli zcount "${PREFIX}timers:$IN/0" -inf "$(( $(date -u -d 2026-03-02T04:00:00Z +%s) * 1000 ))")" = 0

finish
