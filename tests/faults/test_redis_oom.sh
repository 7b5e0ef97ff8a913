#!/usr/bin/env bash
# Fault: Redis at maxmemory with noeviction. Reads still work, every write is refused
# with OOM: a server-wide error, so nothing is dead-lettered; the batch is retried with
# backoff, consumption pauses, the consumer keeps being polled (the OOM lasts longer
# than max.poll.interval.ms and the member must not leave its group), /readyz says
# redis_errors and /metrics touchflow_redis_failing 1. When memory is given back,
# processing resumes by itself and every event is applied exactly once.
set -uo pipefail
# shellcheck disable=SC2034 # read by lib.sh
E2E_OPS_LISTEN=127.0.0.1:0
source "$(dirname "$0")/../e2e/lib.sh"
started=$SECONDS

use_own_redis
setup_topics
write_config
python3 - "$WORK/touchflow.json" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["kafka"]["consumer"]["max.poll.interval.ms"] = "8000"
cfg["redis"]["backoff_max_ms"] = 1000
json.dump(cfg, open(sys.argv[1], "w"), indent=1)
PY
own CONFIG SET maxmemory-policy noeviction >/dev/null

events() { # first count file
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
first, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    for i in range(first, first + n):
        c = "cust-%03d" % (i % 50)
        f.write(json.dumps({"specversion": "1.0", "id": "e%05d" % i, "source": "/web/shop-cn",
                            "type": "touchpoint.web_visit", "subject": c, "time": "2026-03-01T10:00:00Z",
                            "data": {"channel": "web"}}) + "\n")
PY
}
events 0 200 "$WORK/a.jsonl"
events 200 200 "$WORK/b.jsonl"
"$TF" produce -t "$IN" "$WORK/a.jsonl" >/dev/null 2>&1
start_daemon
check "200 visits applied with memory to spare" wait_processed 200 60
URL=$(ops_url)
rebalances_before=$(curl -s "$URL/metrics" | awk '$1 == "touchflow_rebalances_total" {print $2}')

own CONFIG SET maxmemory 1 >/dev/null
echo "# injected: maxmemory 1 byte, noeviction (used: $(own INFO memory | grep -o 'used_memory:[0-9]*'))"
"$TF" produce -t "$IN" "$WORK/b.jsonl" >/dev/null 2>&1
failing() { curl -s "$URL/metrics" | grep -q '^touchflow_redis_failing 1$'; }
check "the OOM is seen: touchflow_redis_failing 1" wait_for 30 failing
check "/readyz answers 503 naming redis_errors" eval '[ "$(curl -s -o "$WORK/ready.json" -w "%{http_code}" "$URL/readyz")" = 503 ] && grep -q redis_errors "$WORK/ready.json"'
sleep 12 # past max.poll.interval.ms (8 s)
applied_during=$(stat_of applied)
check "nothing applied while writes are refused" test "$applied_during" = 200
check "still in the group after 12 s of OOM (no MAXPOLL, no rebalance)" eval \
  '! grep -qiE "max.poll|leaving group" "$WORK/touchflowd.log" && [ "$(curl -s "$URL/metrics" | awk '"'"'$1 == "touchflow_rebalances_total" {print $2}'"'"')" = "$rebalances_before" ]'
check "nothing dead-lettered for a server-wide error" test "$(stat_of dead_lettered)" = 0
echo "# found: failures=$(stat_of redis_failures), applied=$applied_during, $(grep -c 'OOM command not allowed' "$WORK/touchflowd.log") OOM replies logged"

own CONFIG SET maxmemory 0 >/dev/null
t0=$SECONDS
check "memory back: the 200 waiting visits are applied" wait_processed 400 60
recover=$((SECONDS - t0))
check "ready again" wait_for 20 eval '[ "$(curl -s -o /dev/null -w "%{http_code}" "$URL/readyz")" = 200 ]'
failing_cleared() { curl -s "$URL/metrics" | grep -q "^touchflow_redis_failing 0$"; }
check "touchflow_redis_failing back to 0" wait_for 20 failing_cleared
exact() {
  python3 - "$E2E_DIR" "$TOUCHFLOW_REDIS_URL" "$PREFIX" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from redis_state import Redis
r = Redis(sys.argv[2])
bad = [i for i in range(50) if r.call("HGET", "%sc:{cust-%03d}" % (sys.argv[3], i), "n:web_visit") not in (b"8", "8")]
print("  customers without exactly 8 visits: %s" % bad[:5] if bad else "  every customer has its 8 visits")
sys.exit(1 if bad else 0)
PY
}
check "every customer's visits counted exactly once" exact

check "SIGTERM exits 0" stop_daemon

echo "# took $((SECONDS - started)) s"
cat "$WORK/a.jsonl" "$WORK/b.jsonl" >"$WORK/all.jsonl"
read -r lost dup < <(count_diff "$WORK/all.jsonl")
fault_line "redis OOM (maxmemory, noeviction)" 400 "$lost" "$dup" - "$recover"
finish
