#!/usr/bin/env bash
# The ops endpoints of a running touchflowd against the real broker: /healthz,
# /readyz (200 once assigned, 503 naming Redis while Redis hangs or is unreachable),
# /metrics (valid for promtool, every family present, consumer lag that equals the
# records produced while Redis hangs and returns to 0 once they are processed, and
# again after a restart with records produced while the daemon was down), /status
# (JSON, secrets redacted), 404 and 405, and a port already in use.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

for tool in curl promtool redis-server; do
  command -v "$tool" >/dev/null || { echo "$tool not installed: skipping (deploy/dev/install-deps.sh)"; exit 77; }
done

# A Redis of this test's own, so that it can hang it (SIGSTOP) without touching the
# shared one.
rport=$(free_port)
trap 'stop_own_redis "$rport"; [ -n "${SECOND_PID:-}" ] && kill -9 "$SECOND_PID" 2>/dev/null' EXIT
start_own_redis "$rport" || { echo "cannot start redis-server on $rport"; exit 1; }
export TOUCHFLOW_REDIS_URL="redis://127.0.0.1:$rport"

E2E_OPS_LISTEN=127.0.0.1:0
setup_topics
write_config
"$TF" gen --count 600 --customers 150 --seed 23 --file "$WORK/events.jsonl" 2>/dev/null
head -n 200 "$WORK/events.jsonl" >"$WORK/a.jsonl"         # processed normally
sed -n '201,500p' "$WORK/events.jsonl" >"$WORK/b.jsonl"   # produced while Redis hangs
sed -n '501,600p' "$WORK/events.jsonl" >"$WORK/c.jsonl"   # produced while the daemon is down

http_code() { curl -s -o "$WORK/body" -w '%{http_code}' --max-time 5 "$@"; }
metrics() { curl -sf --max-time 5 "$OPS/metrics"; }
# Sum of one family's samples for this test's input topic ("" when none).
lag_sum() {
  metrics | awk -v p="$1{topic=\"$IN\"," 'index($0, p) == 1 { s += $NF; n++ } END { if (n) print s }'
}
series_count() {
  metrics | awk -v p="$1{topic=\"$IN\"," 'index($0, p) == 1 { n++ } END { print n + 0 }'
}
metric() { metrics | awk -v m="$1" '$1 == m { print $2 }'; }
# Waits up to $2 s until command $1 prints $3.
wait_for() {
  local deadline=$((SECONDS + $2)) got
  while [ $SECONDS -lt $deadline ]; do
    got=$($1)
    [ "$got" = "$3" ] && return 0
    sleep 0.5
  done
  echo "  waited for '$1' = $3, last: '$got'" >&2
  return 1
}
ready_code() { http_code "$OPS/readyz"; }

start_daemon
OPS=$(ops_url) || { echo "FAILED - no ops listener"; finish; }
echo "ops endpoint: $OPS"

check "log names the listener" grep -q '"msg":"ops listening on http://127.0.0.1:[0-9]*"' "$WORK/touchflowd.log"
check "/healthz: 200 ok" test "$(http_code "$OPS/healthz")/$(cat "$WORK/body")" = "200/ok"
check "/readyz: 200 once partitions are assigned and Redis and Kafka are up" wait_for ready_code 60 200
check "/readyz body says ready" grep -qx '{"ready":true,"missing":\[\]}' "$WORK/body"

# ---- records processed normally: lag 0, committed offsets on every partition ----
"$TF" produce -t "$IN" "$WORK/a.jsonl" 2>/dev/null
check "first 200 records processed" wait_processed 200 60
committed_series() { series_count touchflow_partition_committed_offset; }
check "a committed offset for each of the 4 input partitions" wait_for committed_series 30 4
lag_now() { lag_sum touchflow_consumer_lag; }
check "consumer lag over the input partitions is 0" wait_for lag_now 30 0
metrics >"$WORK/metrics.txt"
check "promtool check metrics accepts /metrics" promtool check metrics <"$WORK/metrics.txt"
check "/metrics content type is the text format 0.0.4" \
  test "$(curl -s -o /dev/null -w '%{content_type}' "$OPS/metrics")" = "text/plain; version=0.0.4; charset=utf-8"
families_ok() {
  local f missing=0
  for f in build_info consumer_lag partition_high_watermark partition_committed_offset \
    partition_inflight_records events_consumed_total derived_events_total derived_unrouted_total \
    subscription_sent_total dlq_records_total \
    processing_duration_seconds redis_roundtrip_seconds inflight_records paused_partitions \
    assigned_partitions timers_due timers_fired_total rebalances_total redis_reconnects_total \
    fenced_commits_total delivery_retries_total redis_up kafka_up; do
    grep -q "^# TYPE touchflow_$f " "$WORK/metrics.txt" || { echo "  missing touchflow_$f"; missing=1; }
  done
  return $missing
}
check "every touchflow_* family is exported" families_ok
consumed_sum() { awk '/^touchflow_events_consumed_total\{/ { s += $NF } END { print s + 0 }' "$WORK/metrics.txt"; }
check "events consumed by type and outcome add up to 200" test "$(consumed_sum)" = 200
check "assigned partitions: 4" test "$(awk '$1 == "touchflow_assigned_partitions" { print $2 }' "$WORK/metrics.txt")" = 4
hist_ok() {
  python3 - "$WORK/metrics.txt" <<'PY'
import sys
b = []
count = None
for l in open(sys.argv[1]):
    if l.startswith("touchflow_processing_duration_seconds_bucket"):
        b.append(int(l.split()[-1]))
    elif l.startswith("touchflow_processing_duration_seconds_count"):
        count = int(l.split()[-1])
ok = len(b) == 15 and b == sorted(b) and b[-1] == count and count >= 200
if not ok:
    print("  buckets", b, "count", count)
sys.exit(0 if ok else 1)
PY
}
check "processing histogram: 15 cumulative buckets, +Inf = count >= 200" hist_ok

# ---- real lag: Redis hangs, records keep arriving ----
kill -STOP "$(own_redis_pid "$rport")"
"$TF" produce -t "$IN" "$WORK/b.jsonl" 2>/dev/null
check "consumer lag sums to the 300 records produced while Redis hangs" wait_for lag_now 30 300
check "/readyz: 503 while Redis hangs" wait_for ready_code 30 503
check "/readyz names Redis as missing" grep -q '"missing":\["redis"\]' "$WORK/body"
status_lag() { curl -sf --max-time 5 "$OPS/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_lag"])'; }
check "/status total_lag agrees: 300" test "$(status_lag)" = 300
check "touchflow_redis_up 0 while Redis hangs" test "$(metric touchflow_redis_up)" = 0
kill -CONT "$(own_redis_pid "$rport")"
check "Redis back: all 500 records processed" wait_processed 500 90
check "consumer lag back to 0" wait_for lag_now 30 0
check "/readyz: 200 again" wait_for ready_code 30 200
check "Redis reconnects counted" test "$(metric touchflow_redis_reconnects_total)" -ge 1
check "touchflow_redis_up 1" test "$(metric touchflow_redis_up)" = 1

# ---- lag built while the daemon is down ----
check "SIGTERM: the daemon exits 0" stop_daemon
"$TF" produce -t "$IN" "$WORK/c.jsonl" 2>/dev/null
: >"$WORK/touchflowd.log"
start_daemon
OPS=$(ops_url) || { echo "FAILED - no ops listener after the restart"; finish; }
check "restart: the 100 records produced while down are processed" wait_processed 100 60
check "restart: consumer lag back to 0" wait_for lag_now 30 0
metrics >"$WORK/metrics.txt"
check "restart: the counters start again (100 consumed)" test "$(consumed_sum)" = 100

# ---- /status, 404, 405 ----
# The committed offsets come with librdkafka's statistics (every 5 s): wait for them.
status_ok() {
  local deadline=$((SECONDS + 20))
  while [ $SECONDS -lt $deadline ]; do status_once quiet && return 0; sleep 1; done
  status_once verbose
}
status_once() {
  curl -sf --max-time 5 "$OPS/status" | python3 -c '
import json, sys
s = json.load(sys.stdin)
parts = [p for p in s["partitions"] if p["topic"] == sys.argv[1]]
ok = (s["version"] and s["uptime_s"] >= 0 and s["ready"] is True and len(parts) == 4
      and all(p["lag"] == 0 and p["committed"] == p["high_watermark"] and p["lag_source"] == "statistics"
              for p in parts)
      and s["config"]["kafka"]["group_id"] == sys.argv[2] and s["stats"]["consumed"] == 100)
if not ok and sys.argv[3] == "verbose":
    print("  status:", json.dumps(s)[:800])
sys.exit(0 if ok else 1)' "$IN" "$GROUP" "$1"
}
check "/status: version, uptime, 4 partitions committed up to the end, config, stats" status_ok
check "unknown path: 404" test "$(http_code "$OPS/nope")" = 404
check "POST /metrics: 405" test "$(http_code -X POST "$OPS/metrics")" = 405
check "HEAD /metrics: 200" test "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -I "$OPS/metrics")" = 200

# ---- the port is taken: a second daemon refuses to start ----
taken=${OPS#http://}
"$TFD" -c "$WORK/touchflow.json" -o "ops.listen=$taken" -o kafka.group_id="$GROUP.taken" \
  >/dev/null 2>"$WORK/taken.log" &
taken_pid=$!
taken_rc=0
for _ in $(seq 100); do kill -0 "$taken_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$taken_pid" 2>/dev/null; then kill -9 "$taken_pid"; taken_rc=running; else wait "$taken_pid" || taken_rc=$?; fi
check "ops.listen on a port in use: the daemon exits non-zero" test "$taken_rc" != 0 -a "$taken_rc" != running
check "... and says why" grep -q 'cannot listen on' "$WORK/taken.log"

# ---- Redis unreachable, password in the URL: not ready, nothing leaks ----
dead=$(free_port)
secret="s3cr3t-pw-$$"
TOUCHFLOW_REDIS_URL="redis://app:$secret@127.0.0.1:$dead" \
  "$TFD" -c "$WORK/touchflow.json" -o kafka.group_id="$GROUP.second" --stats-interval-ms 500 \
  >/dev/null 2>"$WORK/second.log" &
SECOND_PID=$!
OPS2=$(ops_url "$WORK/second.log") || OPS2=http://127.0.0.1:1
check "unreachable Redis: /healthz still 200" test "$(http_code "$OPS2/healthz")" = 200
ready2() { http_code "$OPS2/readyz" >/dev/null; cat "$WORK/body"; }
check "unreachable Redis: /readyz 503 naming only Redis once assigned" \
  wait_for ready2 60 '{"ready":false,"missing":["redis"]}'
check "... with status 503" test "$(http_code "$OPS2/readyz")" = 503
curl -sf --max-time 5 "$OPS2/status" >"$WORK/status2.json"
curl -sf --max-time 5 "$OPS2/metrics" >"$WORK/metrics2.txt"
redacted() {
  python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
url = s["config"]["redis"]["url"]
ok = "[redacted]" in url and sys.argv[2] not in url and s["redis_up"] is False
if not ok:
    print("  redis.url in /status:", url)
sys.exit(0 if ok else 1)' "$WORK/status2.json" "$secret"
}
check "/status parses and shows redis.url redacted" redacted
check "the password is in neither /status nor /metrics" bash -c "! grep -q '$secret' '$WORK/status2.json' '$WORK/metrics2.txt'"
check "... nor in the daemon log" bash -c "! grep -q '$secret' '$WORK/second.log'"
kill -TERM "$SECOND_PID" 2>/dev/null
wait "$SECOND_PID" 2>/dev/null
SECOND_PID=

check "SIGTERM: the daemon exits 0" stop_daemon
finish
