#!/usr/bin/env bash
# Fault: 10,000 poison records among 1,100 good ones: lines that are not JSON, amounts
# past limits.max_amount and below zero, unknown types, records keyed by something
# else than their subject; and 100 good events that share their id with another
# good event of another source (CloudEvents makes (source, id) unique: both count).
# Every poison record lands in the dead-letter topic with its reason, every good one
# is applied, the partitions keep moving and the daemon never stops.
set -uo pipefail
source "$(dirname "$0")/../e2e/lib.sh"
started=$SECONDS

setup_topics
write_config
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
def ev(cid, eid, kind="web_visit", data=None, source="/web/shop-cn"):
    e = {"specversion": "1.0", "id": eid, "source": source, "type": "touchpoint." + kind, "subject": cid,
         "time": "2026-03-01T10:00:00Z"}
    e["data"] = data if data is not None else {"channel": "web"}
    return json.dumps(e)
good, raw, fields, keys = [], [], [], []
for i in range(1000):
    good.append(ev("cust-%03d" % (i % 100), "g%05d" % i))
for i in range(100):  # the same ids again, from the store channel
    good.append(ev("cust-%03d" % (i % 100), "g%05d" % i, "store_visit", {"store_id": "sh-1"}, "/stores/pos"))
for i in range(4000):
    raw.append('{"specversion": "1.0", "id": "r%05d", "subject": "cust-%03d", oops' % (i, i % 100))
for i in range(2000):
    fields.append(ev("cust-%03d" % (i % 100), "a%05d" % i, "purchase",
                     {"order_id": "o%d" % i, "amount": 1000000000001 + i, "currency": "CNY"}))
for i in range(1000):
    fields.append(ev("cust-%03d" % (i % 100), "n%05d" % i, "purchase",
                     {"order_id": "o%d" % i, "amount": -1 - i, "currency": "CNY"}))
for i in range(1000):
    fields.append(ev("cust-%03d" % (i % 100), "u%05d" % i, "teleport"))
for i in range(2000):
    keys.append(ev("cust-%03d" % (i % 100), "k%05d" % i))
def chunks(rows, name):
    n = 5
    for c in range(n):
        with open("%s/%s-%d.jsonl" % (work, name, c), "w") as f:
            for r in rows[c::n]:
                f.write(r + "\n")
for rows, name in ((good, "good"), (raw, "raw"), (fields, "fields"), (keys, "keys")):
    chunks(rows, name)
PY
echo "# injecting: 4000 lines not JSON, 2000 amounts past the limit, 1000 negative, 1000 unknown types, 2000 keyed by id; 1100 good records"
for c in 0 1 2 3 4; do
  "$TF" produce -t "$IN" "$WORK/good-$c.jsonl" >/dev/null 2>&1
  "$TF" produce -t "$IN" --raw "$WORK/raw-$c.jsonl" >/dev/null 2>&1
  "$TF" produce -t "$IN" "$WORK/fields-$c.jsonl" >/dev/null 2>&1
  "$TF" produce -t "$IN" --key-field id "$WORK/keys-$c.jsonl" >/dev/null 2>&1
done
t0=$SECONDS
start_daemon
check "all 11,100 records done" wait_processed 11100 120
echo "# found: done in $((SECONDS - t0)) s: applied=$(stat_of applied) duplicates=$(stat_of duplicates) dead_lettered=$(stat_of dead_lettered)"
check "1100 good records applied: the same id from two sources counts twice" test "$(stat_of applied)" = 1100
check "10000 dead-lettered" test "$(stat_of dead_lettered)" = 10000
check "the daemon is still running" kill -0 "$DAEMON_PID"

"$TF" consume --from-beginning --idle-ms 3000 --timeout-ms 60000 -t "$DLQ" >"$WORK/dlq.jsonl" 2>/dev/null
reasons() {
  python3 - "$WORK/dlq.jsonl" <<'PY'
import json, sys
from collections import Counter
c = Counter()
for line in open(sys.argv[1]):
    c[json.loads(line).get("headers", {}).get("tf-error-code")] += 1
print("  dead letters by reason: %s" % dict(c))
sys.exit(0 if c == Counter({"invalid_json": 4000, "invalid_field": 3000, "unknown_type": 1000, "key_mismatch": 2000}) else 1)
PY
}
check "every poison record in the dead-letter topic with its reason" reasons
counts() {
  python3 "$E2E_DIR/redis_state.py" "$TOUCHFLOW_REDIS_URL" "$PREFIX" >"$WORK/state.json" &&
  python3 - "$WORK/state.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
bad = [c for c in ("cust-%03d" % i for i in range(100))
       if s.get(c, {}).get("n:web_visit") != "10" or s.get(c, {}).get("n:store_visit") != "1" or s[c].get("purchases")]
print("  customers with other counts: %s" % bad[:5] if bad else "  every customer: 10 visits, 1 store visit, no purchase")
sys.exit(1 if bad or len(s) != 100 else 0)
PY
}
check "the good records counted exactly, nothing of the poison applied" counts
check "SIGTERM exits 0" stop_daemon

echo "# took $((SECONDS - started)) s"
good=$(stat_of applied)
fault_line "poison records (10000 among 1100 good)" 11100 $((good < 1100 ? 1100 - good : 0)) \
  $((good > 1100 ? good - 1100 : 0)) $((10000 - $(wc -l <"$WORK/dlq.jsonl"))) -
finish
