#!/usr/bin/env bash
# Fault: one hot customer. 1,000 purchases of one customer, four days apart, arrive
# at once on the stream clock: one batch holds them all, and their follow-up
# reminders, reviews and anniversaries make thousands of derived events for one
# customer in one commit. Every one is committed to the outbox, delivered once, and
# acknowledged (the outbox ends empty); other customers in the same batch go on.
set -uo pipefail
# shellcheck disable=SC2034 # read by lib.sh
E2E_CLOCK=stream
E2E_BATCH_MAX=2000
source "$(dirname "$0")/../e2e/lib.sh"
started=$SECONDS

setup_topics
write_config
python3 - "$WORK/input.jsonl" <<'PY'
import json, sys, time
DAY = 86400
start = int(time.time()) // DAY * DAY - 4100 * DAY  # eleven years ago
def t(s):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))
rows = []
for i in range(1000):
    if i % 2 == 0:
        rows.append({"specversion": "1.0", "id": "h%04d" % i, "source": "/shop/orders", "type": "touchpoint.purchase",
                     "subject": "cust-hot", "time": t(start + i * 4 * DAY + 3600),
                     "data": {"order_id": "o%04d" % i, "amount": 5000, "currency": "CNY"}})
    else:  # never acknowledged: two escalations each
        rows.append({"specversion": "1.0", "id": "h%04d" % i, "source": "/crm/complaints", "type": "touchpoint.complaint",
                     "subject": "cust-hot", "time": t(start + i * 4 * DAY + 3600),
                     "data": {"complaint_id": "c%04d" % i, "category": "service", "severity": "high"}})
    if i % 100 == 0:
        rows.append({"specversion": "1.0", "id": "w%04d" % i, "source": "/web/shop-cn", "type": "touchpoint.web_visit",
                     "subject": "cust-other-%d" % (i // 100), "time": t(start + i * 4 * DAY + 7200), "data": {}})
rows.append({"specversion": "1.0", "id": "end", "source": "/web/shop-cn", "type": "touchpoint.web_visit",
             "subject": "cust-hot", "time": t(start + 4000 * DAY + 3600), "data": {}})
with open(sys.argv[1], "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
PY
"$TF" produce -t "$IN" "$WORK/input.jsonl" >/dev/null 2>&1
total=$(wc -l <"$WORK/input.jsonl")
start_daemon
check "all $total records processed" wait_processed "$total" 120
check "timers settled" wait_settled 60
check "SIGTERM exits 0" stop_daemon

outs=""
for f in $FAMILIES; do outs="$outs -t $OUT_PREFIX.$f"; done
# shellcheck disable=SC2086
"$TF" consume --from-beginning --idle-ms 3000 --timeout-ms 60000 $outs >"$WORK/out.jsonl" 2>/dev/null
verdict() {
  python3 - "$WORK/out.jsonl" <<'PY'
import json, sys
from collections import Counter
evs = [json.loads(json.loads(l)["value"]) for l in open(sys.argv[1]) if l.strip()]
ids = Counter(e["id"] for e in evs)
hot = [e for e in evs if e["subject"] == "cust-hot"]
follow = {e["data"]["occasion"] for e in hot if e["type"] == "touchflow.care.reminder" and e["data"]["kind"] == "post_purchase"}
esc = {(e["data"]["complaint_id"], e["data"]["level"]) for e in hot if e["type"] == "touchflow.complaint.escalated"}
others = {e["subject"] for e in evs if e["subject"].startswith("cust-other-")}
dups = sum(n - 1 for n in ids.values() if n > 1)
open(sys.argv[1] + ".missing", "w").write("%d\n" % (500 - len(follow) + 1000 - len(esc)))
print("  cust-hot: %d derived events, %d follow-ups of 500 orders, %d escalations of 500 complaints; %d duplicates; "
      "other customers with events: %d" % (len(hot), len(follow), len(esc), dups, len(others)))
sys.exit(0 if len(hot) > 1500 and len(follow) == 500 and len(esc) == 1000 and dups == 0 and len(others) == 10 else 1)
PY
}
check "over 1,500 events for one customer, each delivered once: a follow-up per order, two escalations per complaint" verdict
check "the hot customer's outbox is empty: every event acknowledged" \
  test "$(redis_cli HLEN "${PREFIX}c:{cust-hot}:outbox")" = 0

echo "# took $((SECONDS - started)) s"
done_n=$(($(stat_of applied) + $(stat_of replayed) + $(stat_of duplicates)))
fault_line "one hot customer (1000 events, one batch)" "$total" $((done_n < total ? total - done_n : 0)) \
  $((done_n > total ? done_n - total : 0)) "$(cat "$WORK/out.jsonl.missing" 2>/dev/null || echo '?')" -
finish
