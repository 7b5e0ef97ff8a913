#!/usr/bin/env bash
# Fault: customers whose keys in Redis hold what touchflow did not write there. Four
# customers are poisoned four ways (a string at the state key, a hash whose stage no
# codec knows, a version field that is not a number, a string at the outbox key),
# then their purchases and 100 other customers' purchases go in. Redis refuses each
# poisoned customer's load or commit; after redis.state_error_attempts the records of
# those four go to the dead-letter topic (state_error, the Redis error named) and the
# 100 others are applied exactly once, within seconds; the commit script leaves a
# refused customer as it found it.
set -uo pipefail
source "$(dirname "$0")/../e2e/lib.sh"
started=$SECONDS

setup_topics
write_config
key() { echo "${PREFIX}c:{$1}${2:-}"; }
redis_cli SET "$(key cust-str)" "not a hash" >/dev/null
redis_cli HSET "$(key cust-stage)" stage lunar purchases 3 >/dev/null
redis_cli HSET "$(key cust-ver)" stage growth v not-a-number purchases 1 >/dev/null
redis_cli SET "$(key cust-outbox :outbox)" "not a hash" >/dev/null
echo "# injected: a string at $(key cust-str), stage 'lunar' at $(key cust-stage), v 'not-a-number' at $(key cust-ver), a string at $(key cust-outbox :outbox)"

python3 - "$WORK/input.jsonl" <<'PY'
import json, sys
rows = []
def buy(cid, n):
    rows.append({"specversion": "1.0", "id": "%s.%d" % (cid, n), "source": "/shop/orders",
                 "type": "touchpoint.purchase", "subject": cid, "time": "2026-03-01T10:00:00Z",
                 "data": {"order_id": "o-%s-%d" % (cid, n), "amount": 5000, "currency": "CNY"}})
for c in ("cust-str", "cust-stage", "cust-ver", "cust-outbox"):
    buy(c, 1)
for i in range(100):
    buy("cust-ok-%03d" % i, 1)
with open(sys.argv[1], "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
PY
"$TF" produce -t "$IN" "$WORK/input.jsonl" >/dev/null 2>&1
t0=$SECONDS
start_daemon
check "the 100 others applied and the 4 poisoned dead-lettered" wait_processed 104 60
took=$((SECONDS - t0))
sleep 1 # one more stats line
echo "# found: 104 records done in ${took} s; applied=$(stat_of applied) replayed=$(stat_of replayed) dead_lettered=$(stat_of dead_lettered) redis_failures=$(stat_of redis_failures)"
check "within 15 s" test "$took" -le 15
# A batch that failed is retried from its load: what an earlier attempt committed
# counts as replayed then.
check "the 100 others done once (applied, or replayed after a retry)" \
  test $(($(stat_of applied) + $(stat_of replayed) + $(stat_of duplicates))) = 100
check "exactly 4 dead-lettered" test "$(stat_of dead_lettered)" = 4

others_once() {
  python3 - "$E2E_DIR" "$TOUCHFLOW_REDIS_URL" "$PREFIX" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from redis_state import Redis
r = Redis(sys.argv[2])
bad = []
for i in range(100):
    got = r.call("HGET", "%sc:{cust-ok-%03d}" % (sys.argv[3], i), "purchases")
    if got not in (b"1", "1"):
        bad.append((i, got))
print("  others not applied exactly once: %s" % bad[:5] if bad else "  every other customer has its one purchase")
sys.exit(1 if bad else 0)
PY
}
check "every other customer's purchase applied once" others_once

"$TF" consume --from-beginning --idle-ms 2000 --timeout-ms 20000 -t "$DLQ" >"$WORK/dlq.jsonl" 2>/dev/null
dlq_ok() {
  python3 - "$WORK/dlq.jsonl" <<'PY'
import json, sys
want = {"cust-str": "WRONGTYPE", "cust-stage": "does not decode", "cust-ver": "not a number", "cust-outbox": "WRONGTYPE"}
got = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    h = r.get("headers", {})
    got[r["key"]] = (h.get("tf-error-code"), h.get("tf-error-detail", ""), json.loads(r["value"])["subject"])
    print("  dead letter %s: %s: %s" % (r["key"], h.get("tf-error-code"), h.get("tf-error-detail")))
ok = set(got) == set(want) and all(
    got[c][0] == "state_error" and want[c] in got[c][1] and c in got[c][1] and got[c][2] == c for c in want)
sys.exit(0 if ok else 1)
PY
}
check "the 4 dead letters: state_error, the customer and the Redis error in the detail, original record" dlq_ok

untouched() {
  [ "$(redis_cli GET "$(key cust-str)")" = "not a hash" ] &&
    [ "$(redis_cli HGET "$(key cust-ver)" v)" = "not-a-number" ] &&
    [ -z "$(redis_cli HGET "$(key cust-ver)" ep)" ] &&
    [ "$(redis_cli GET "$(key cust-outbox :outbox)")" = "not a hash" ] &&
    [ "$(redis_cli EXISTS "$(key cust-outbox)")" = 0 ] &&
    [ "$(redis_cli EXISTS "$(key cust-ver :outbox)")" = 0 ] &&
    [ "$(redis_cli HGET "$(key cust-stage)" stage)" = lunar ]
}
check "the refused customers are left as they were (the commit script wrote nothing)" untouched
check "the log names each refused customer" eval 'for c in cust-str cust-stage cust-ver cust-outbox; do grep -q "customer $c: Redis refused its state" "$WORK/touchflowd.log" || exit 1; done'
check "SIGTERM exits 0" stop_daemon

echo "# took $((SECONDS - started)) s"
others_done=$(($(stat_of applied) + $(stat_of replayed) + $(stat_of duplicates)))
fault_line "redis keys of a wrong type (4 customers)" 104 $((others_done < 100 ? 100 - others_done : 0)) \
  $((others_done > 100 ? others_done - 100 : 0)) - "$took"
finish
