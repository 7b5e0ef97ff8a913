#!/usr/bin/env bash
# Fault: Redis loses its data. A Redis without persistence (and evicting keys) is
# killed -9 and restarted empty while touchflowd runs; later it is flushed while
# touchflowd is stopped. touchflowd warns at connection about the settings that lose
# data, notices each loss (error log naming it, touchflow_redis_state_lost_total,
# /status redis_state_lost) and goes on processing without any manual action.
set -uo pipefail
# shellcheck disable=SC2034 # read by lib.sh
E2E_OPS_LISTEN=127.0.0.1:0
source "$(dirname "$0")/../e2e/lib.sh"
started=$SECONDS

use_own_redis
own CONFIG SET maxmemory-policy allkeys-lru >/dev/null
setup_topics
write_config

buys() { # first count file
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
first, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    for i in range(first, first + n):
        f.write(json.dumps({"specversion": "1.0", "id": "p%05d" % i, "source": "/shop/orders",
                            "type": "touchpoint.purchase", "subject": "cust-%02d" % (i % 50),
                            "time": "2026-03-01T10:00:00Z",
                            "data": {"order_id": "o%d" % i, "amount": 5000, "currency": "CNY"}}) + "\n")
PY
}
buys 0 100 "$WORK/a.jsonl"
buys 100 50 "$WORK/b.jsonl"
buys 150 50 "$WORK/c.jsonl"
"$TF" produce -t "$IN" "$WORK/a.jsonl" >/dev/null 2>&1
start_daemon
check "100 purchases applied" wait_processed 100 60
URL=$(ops_url)
check "warned: no persistence" grep -q 'no persistence (appendonly no, save \\"\\")' "$WORK/touchflowd.log"
check "warned: maxmemory-policy allkeys-lru evicts" grep -q 'maxmemory-policy allkeys-lru evicts keys' "$WORK/touchflowd.log"
check "nothing lost reported yet" eval '! grep -q "redis lost data" "$WORK/touchflowd.log"'

echo "# injected: redis-server kill -9, restarted empty"
kill -9 "$(own_redis_pid "$OWN_PORT")"
unset "OWN_REDIS_PID[$OWN_PORT]"
sleep 1
start_own_redis "$OWN_PORT" || { echo "cannot restart redis-server"; exit 1; }
t0=$SECONDS
lost_seen() { grep -q 'redis lost data: the epoch counter is at 1, not above' "$WORK/touchflowd.log"; }
check "the loss is logged at error level, naming the epoch counter" wait_for 30 lost_seen
check "touchflow_redis_state_lost_total counts it" eval 'curl -s "$URL/metrics" | grep -q "^touchflow_redis_state_lost_total 1$"'
check "/status shows it" eval 'curl -s "$URL/status" | python3 -c "import json,sys; d=json.load(sys.stdin)[\"redis_state_lost\"]; sys.exit(0 if d[\"count\"] == 1 and \"epoch counter\" in d[\"detail\"] else 1)"'
"$TF" produce -t "$IN" "$WORK/b.jsonl" >/dev/null 2>&1
check "processing goes on by itself: 50 more applied" wait_processed 150 60
recover=$((SECONDS - t0))
check "SIGTERM exits 0" stop_daemon
echo "# found: $(grep -o '"msg":"redis lost data[^"]*' "$WORK/touchflowd.log" | head -n 1)"

echo "# injected: FLUSHALL while touchflowd is stopped"
own FLUSHALL >/dev/null
"$TF" produce -t "$IN" "$WORK/c.jsonl" >/dev/null 2>&1
: >"$WORK/touchflowd.log"
start_daemon
resumed_seen() { grep -q 'redis lost data: Redis holds no touchflow state, but the consumer group resumes' "$WORK/touchflowd.log"; }
check "on start, an empty Redis under a group that resumes is reported" wait_for 30 resumed_seen
check "and the 50 new purchases are applied" wait_processed 50 60
echo "# found: $(grep -o '"msg":"redis lost data[^"]*' "$WORK/touchflowd.log" | head -n 1)"
check "SIGTERM exits 0" stop_daemon

echo "# took $((SECONDS - started)) s"
# What was applied before each loss is gone by design: lost counts it.
cat "$WORK/a.jsonl" "$WORK/b.jsonl" "$WORK/c.jsonl" >"$WORK/all.jsonl"
read -r lost dup < <(count_diff "$WORK/all.jsonl")
fault_line "redis restarted empty, then flushed (loss expected)" 200 "$lost" "$dup" - "$recover"
finish
