#!/usr/bin/env bash
# End to end on the real broker and Redis: scripted journeys for several customers,
# malformed records, a duplicate and a binary-mode event go in; the test asserts the
# Redis state, the exact derived events on the output topics, the dead letters with
# their headers, a clean SIGTERM, and that a restart reprocesses nothing.
set -uo pipefail
# Stream time: the samples are history, replayed; timers fire as the stream's own
# time passes them, so the derived events do not depend on today's date.
E2E_CLOCK=stream
source "$(dirname "$0")/lib.sh"

setup_topics
write_config
check "config check accepts the test config" "$TF" config check "$WORK/touchflow.json"

# Input: the sample journeys, a duplicate of one purchase (same id), a binary-mode
# touchpoint, and three malformed records.
journeys="$ROOT/config/samples/journeys.jsonl"
malformed="$ROOT/config/samples/malformed.jsonl"
grep '"id": "lw-4"' "$journeys" >"$WORK/dup.jsonl"
cat >"$WORK/binary.jsonl" <<'EOF'
{"specversion":"1.0","id":"bin-1","source":"/store/pos","type":"touchpoint.store_visit","subject":"cust-wang-fang","time":"2026-02-11T10:00:00+08:00","data":{"store_id":"sh-01"}}
EOF
"$TF" produce -t "$IN" "$journeys" 2>/dev/null
"$TF" produce -t "$IN" "$WORK/dup.jsonl" 2>/dev/null
"$TF" produce -t "$IN" --binary "$WORK/binary.jsonl" 2>/dev/null
"$TF" produce -t "$IN" --raw "$malformed" 2>/dev/null
total=$(( $(wc -l <"$journeys") + 1 + 1 + $(wc -l <"$malformed") ))

start_daemon
check "touchflowd processes all $total records" wait_processed "$total" 90
check "one duplicate recognised" test "$(stat_of duplicates)" = 1
check "three dead letters" test "$(stat_of dead_lettered)" = 3
check "timers due by the stream's time have fired" wait_settled 60
check "SIGTERM drains and exits 0" stop_daemon

# ---- Redis state ----
for c in cust-li-wei cust-zhang-min cust-wang-fang cust-chen-jie; do
  "$TF" -o "redis.key_prefix=$PREFIX" customer get "$c" >"$WORK/$c.json"
done
state_is() { # customer, python expression over s
  python3 - "$WORK/$1.json" "$2" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2])
if not ok:
    print("  state was:", json.dumps(s, sort_keys=True))
sys.exit(0 if ok else 1)
PY
}
check "li wei: 5 purchases, mature, spend and margin summed" state_is cust-li-wei \
  "s['purchases']==5 and s['stage']=='mature' and s['spend']==68290 and s['margin']==4200+2933+5200+3300+7000 and s['counts']['purchase']==5 and s['counts']['web_visit']==1"
check "li wei: duplicate purchase not counted twice, satisfaction 112.5" state_is cust-li-wei \
  "s['counts']['survey']==1 and abs(s['satisfaction']-112.5)<1e-9 and s['nps']==9"
check "li wei: first/last seen and mean purchase interval" state_is cust-li-wei \
  "s['first_seen']==1767578400000 and s['last_seen']==1776657600000 and s['mean_interval_ms']==(1776657600000-1767701700000)//4"
check "zhang min: churned then won back, complaint resolved" state_is cust-zhang-min \
  "s['stage']=='growth' and s['purchases']==2 and s['open_complaints']==0 and s['complaints']==1 and s['churned_count']==1 and s['counts']['call']==1"
check "zhang min: stage history, newest first" state_is cust-zhang-min \
  "[(h['from'], h['to'], h['rule'], h['at']) for h in s['stage_history']] == [('churned','growth','winback_purchase','2026-05-20T11:00:00.000Z'), ('growth','churned','explicit_exit','2026-03-01T02:00:00.000Z'), ('prospect','growth','first_purchase','2026-02-01T03:00:00.000Z')]"
check "wang fang: prospect with referral, email, event and the binary-mode store visit" state_is cust-wang-fang \
  "s['stage']=='prospect' and s['counts']['referral']==1 and s['counts']['email']==1 and s['counts']['event_attendance']==1 and s['counts']['store_visit']==1"
check "chen jie: first purchase made a growth customer" state_is cust-chen-jie \
  "s['stage']=='growth' and s['purchases']==1 and s['spend']==5990"

# ---- derived events ----
outs=""
for f in $FAMILIES; do outs="$outs -t $OUT_PREFIX.$f"; done
# shellcheck disable=SC2086
"$TF" consume --from-beginning --idle-ms 3000 --timeout-ms 30000 $outs >"$WORK/derived.jsonl" 2>/dev/null
derived_are() {
  python3 - "$WORK/derived.jsonl" "$OUT_PREFIX" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
prefix = sys.argv[2]
got = []
for r in recs:
    ev = json.loads(r["value"])
    assert r["key"] == ev["subject"], r
    assert r["topic"] == prefix + "." + ev["type"].split(".")[1], r
    assert ev["specversion"] == "1.0" and ev["source"] == "/touchflow", ev
    assert len(ev["id"]) == 32 and all(c in "0123456789abcdef" for c in ev["id"]), ev
    d = ev["data"]
    got.append((ev["subject"], ev["type"], d.get("from"), d.get("to"), d["rule"], ev["time"]))
    # every trigger names the channels it may use: chen jie said no to sms
    want_channels = ["email", "phone"] if ev["subject"] == "cust-chen-jie" else ["email", "sms", "phone"]
    assert d.get("channels") == want_channels, ev
want = [
    ("cust-li-wei", "touchflow.care.reminder", None, None, "welcome", "2026-01-05T02:00:00.000Z"),
    ("cust-li-wei", "touchflow.lifecycle.stage_changed", "prospect", "growth", "first_purchase", "2026-01-06T12:15:00.000Z"),
    ("cust-li-wei", "touchflow.care.reminder", None, None, "post_purchase", "2026-01-09T12:15:00.000Z"),
    ("cust-li-wei", "touchflow.care.reminder", None, None, "post_purchase", "2026-02-06T04:00:00.000Z"),
    ("cust-li-wei", "touchflow.care.reminder", None, None, "festival", "2026-02-14T00:00:00.000Z"),
    ("cust-li-wei", "touchflow.care.reminder", None, None, "post_purchase", "2026-03-04T04:00:00.000Z"),
    # two intervals (27.66 and 26 days) are a rhythm (confidence 0.638): expected
    # 03-01 04:00 + 26.83 days, reminded 3 days before; the next purchase (03-29)
    # comes before it is overdue
    ("cust-li-wei", "touchflow.care.reminder", None, None, "replenishment", "2026-03-24T23:52:30.000Z"),
    ("cust-li-wei", "touchflow.care.reminder", None, None, "post_purchase", "2026-04-01T04:00:00.000Z"),
    ("cust-li-wei", "touchflow.lifecycle.stage_changed", "growth", "mature", "mature_threshold", "2026-04-20T04:00:00.000Z"),
    ("cust-zhang-min", "touchflow.lifecycle.stage_changed", "prospect", "growth", "first_purchase", "2026-02-01T03:00:00.000Z"),
    ("cust-zhang-min", "touchflow.care.reminder", None, None, "post_purchase", "2026-02-04T03:00:00.000Z"),
    ("cust-zhang-min", "touchflow.complaint.escalated", None, None, "sla_deadline", "2026-02-05T08:30:00.000Z"),
    ("cust-zhang-min", "touchflow.complaint.escalated", None, None, "sla_twice_deadline", "2026-02-05T16:30:00.000Z"),
    ("cust-zhang-min", "touchflow.care.reminder", None, None, "complaint_followup", "2026-02-13T09:00:00.000Z"),
    ("cust-zhang-min", "touchflow.care.reminder", None, None, "festival", "2026-02-14T00:00:00.000Z"),
    ("cust-zhang-min", "touchflow.lifecycle.stage_changed", "growth", "churned", "explicit_exit", "2026-03-01T02:00:00.000Z"),
    ("cust-zhang-min", "touchflow.winback.opportunity", None, None, "explicit_exit", "2026-03-01T02:00:00.000Z"),
    ("cust-zhang-min", "touchflow.lifecycle.stage_changed", "churned", "growth", "winback_purchase", "2026-05-20T11:00:00.000Z"),
    ("cust-zhang-min", "touchflow.winback.succeeded", None, None, "winback_purchase", "2026-05-20T11:00:00.000Z"),
    ("cust-wang-fang", "touchflow.care.reminder", None, None, "welcome", "2026-01-20T07:00:00.000Z"),
    # keyed by the referrer: chen jie, whom wang fang referred, bought for the first time
    ("cust-wang-fang", "touchflow.referral.credited", None, None, "referred_first_purchase", "2026-01-25T13:00:00.000Z"),
    ("cust-chen-jie", "touchflow.care.reminder", None, None, "welcome", "2026-01-22T01:00:00.000Z"),
    ("cust-chen-jie", "touchflow.lifecycle.stage_changed", "prospect", "growth", "first_purchase", "2026-01-25T13:00:00.000Z"),
    ("cust-chen-jie", "touchflow.care.reminder", None, None, "post_purchase", "2026-01-28T13:00:00.000Z"),
]
ids = [json.loads(r["value"])["id"] for r in recs]
if sorted(got, key=repr) != sorted(want, key=repr) or len(set(ids)) != len(ids):
    print("  got:", *sorted(got, key=repr), sep="\n    ")
    sys.exit(1)
# per customer and family (one output partition each), in event order
for c in {w[0] for w in want}:
    for fam in {w[1] for w in want}:
        if [g for g in got if g[0] == c and g[1] == fam] != [w for w in want if w[0] == c and w[1] == fam]:
            print("  order differs for", c, fam); sys.exit(1)
PY
}
check "exactly the expected derived events, keyed by customer, in order" derived_are

# ---- dead letters ----
"$TF" consume --from-beginning --idle-ms 2000 --timeout-ms 20000 -t "$DLQ" >"$WORK/dlq.jsonl" 2>/dev/null
dlq_ok() {
  python3 - "$WORK/dlq.jsonl" "$malformed" "$IN" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
orig = [l.rstrip("\n") for l in open(sys.argv[2])]
src = sys.argv[3]
codes = {}
for r in recs:
    h = r["headers"]
    for k in ("tf-error-code", "tf-error-detail", "tf-source-topic", "tf-source-partition", "tf-source-offset", "tf-failed-at"):
        assert k in h, (k, h)
    assert h["tf-source-topic"] == src, h
    int(h["tf-source-partition"]); int(h["tf-source-offset"])
    assert r["value"] in orig, r["value"]
    codes[r["value"]] = (h["tf-error-code"], h["tf-error-detail"])
want = {orig[0]: "invalid_field", orig[1]: "unknown_type", orig[2]: "invalid_json"}
ok = len(recs) == 3 and {v: c[0] for v, c in codes.items()} == want and "amount" in codes[orig[0]][1]
if not ok:
    print("  dead letters:", json.dumps(codes, indent=1))
sys.exit(0 if ok else 1)
PY
}
check "three dead letters with original bytes, error codes and source headers" dlq_ok

# ---- restart: committed offsets hold, nothing is reprocessed ----
before=$(redis_cli hget "${PREFIX}c:{cust-li-wei}" v)
: >"$WORK/touchflowd.log"
start_daemon
sleep 8
check "restart consumes nothing already committed" test "$(stat_of consumed)" = 0
check "SIGTERM after restart exits 0" stop_daemon
check "state version unchanged by the restart" test "$(redis_cli hget "${PREFIX}c:{cust-li-wei}" v)" = "$before"

finish
