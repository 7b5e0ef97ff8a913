#!/usr/bin/env bash
# End to end on the real broker and a Redis of the test's own, stream time: Redis
# hangs in the middle of a timer catch-up. 40 complaints are indexed; a clock event
# puts all 80 escalations due at once and the rate limit (10 firings a second) makes
# the catch-up last about 4 s; one second in, Redis is stopped (SIGSTOP) for 4 s, so
# index scans, loads and commits of timer visits time out. When it runs again the
# catch-up resumes on its own, and every customer escalates exactly once per level,
# at its due time, none twice.
set -uo pipefail
# shellcheck disable=SC2034 # read by lib.sh
E2E_CLOCK=stream
E2E_SCAN_MS=100
source "$(dirname "$0")/lib.sh"
command -v redis-server >/dev/null || { echo "redis-server not installed: skipping"; exit 77; }

rport=$(free_port)
trap 'stop_own_redis "$rport"' EXIT
start_own_redis "$rport" || { echo "cannot start redis-server on $rport"; exit 1; }
export TOUCHFLOW_REDIS_URL="redis://127.0.0.1:$rport"

N=40
create_topic "$IN" 1 # one partition: one stream clock
setup_topics
write_config
python3 - "$WORK/touchflow.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["timers"]["max_per_second"] = 10
c["redis"]["timeout_ms"] = 500
json.dump(c, open(p, "w"))
PY

esc() { python3 "$E2E_DIR/escalations.py" "$@"; }
esc input "$N" >"$WORK/complaints.jsonl"
esc clocks tick 2026-03-02T04:00:00Z 1 >"$WORK/clock.jsonl"

"$TF" produce -t "$IN" "$WORK/complaints.jsonl" 2>/dev/null
start_daemon
check "the $N complaints are processed" wait_processed "$N" 90
check "nothing due yet on the stream's time" wait_settled 30
before=$(stat_of derived)

"$TF" produce -t "$IN" "$WORK/clock.jsonl" 2>/dev/null
check "the clock event is processed" wait_processed $((N + 1)) 60
sleep 1
kill -STOP "$(own_redis_pid "$rport")"
at_hang=$(stat_of derived)
sleep 4
check "Redis hung: a command in flight timed out" grep -qE '"msg":"dropping the connection to redis [^"]*: command timed out"' "$WORK/touchflowd.log"
check "Redis hung: the daemon noticed and paused" grep -q '"msg":"pausing consumption"' "$WORK/touchflowd.log"
check "Redis hung: the daemon is alive" kill -0 "$DAEMON_PID"
kill -CONT "$(own_redis_pid "$rport")"
check "Redis back: the catch-up settles" wait_settled 90
# The hang must have come in the middle of the catch-up, or it proves nothing.
check "the hang came mid catch-up ($((at_hang - before)) of 80 escalations out at the hang)" \
  test "$at_hang" -lt $((before + 80)) -a "$(stat_of derived)" -gt "$at_hang"
check "SIGTERM exits 0" stop_daemon

"$TF" consume --from-beginning --idle-ms 3000 --timeout-ms 30000 -t "$OUT_PREFIX.complaint" >"$WORK/escalations.jsonl" 2>/dev/null
check "each customer escalated at 8 h and 16 h, exactly once, across the outage" \
  esc check "$WORK/escalations.jsonl" "$N"
check "index holds nobody due any more" \
  test "$(redis-cli -p "$rport" zcount "${PREFIX}timers:$IN/0" -inf "$(($(date -u -d 2026-03-02T04:00:00Z +%s) * 1000))")" = 0

finish
