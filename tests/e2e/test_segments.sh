#!/usr/bin/env bash
# End to end on the real broker and Redis, on stream time: segments defined in the
# config (rules.segments). Two buyers enter "recent_buyer" (days_since_purchase max
# 30) on their first purchase and "big_spender" (spend min 100000) on the purchase
# that takes them there; a later touchpoint of another customer on the same
# partition moves the stream clock on, and each buyer leaves recent_buyer by time
# alone, at exactly its last purchase + 31 days. The test asserts the exact events of
# the segment topic (type, segment, time, figures, ids), the "segments" figure on the
# other families' events, and the membership `touchflow customer get` shows.
set -uo pipefail
# shellcheck disable=SC2034 # read by lib.sh
E2E_CLOCK=stream
source "$(dirname "$0")/lib.sh"

setup_topics
# One input partition: the stream clock is a partition's, and the clock customer
# must share it with the buyers.
IN="$IN.one"
create_topic "$IN" 1
write_config &&
python3 - "$WORK/touchflow.json" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["rules"] = {"segments": [
    {"name": "recent_buyer", "when": [{"field": "days_since_purchase", "max": 30}]},
    {"name": "big_spender", "when": [{"field": "spend", "min": 100000}]},
]}
json.dump(cfg, open(sys.argv[1], "w"), indent=1)
PY
check "config check accepts the segments" "$TF" config check "$WORK/touchflow.json"

C1="seg-one.$RUN_ID"
C2="seg-two.$RUN_ID"
CLOCK="seg-clock.$RUN_ID"
python3 - "$C1" "$C2" "$CLOCK" >"$WORK/input.jsonl" <<'PY'
import json, sys
c1, c2, clock = sys.argv[1:4]
n = 0
def ev(subject, t, kind, data):
    global n
    n += 1
    src = "/shop/orders" if kind == "purchase" else "/web/shop-cn"
    print(json.dumps({"specversion": "1.0", "id": "seg-%d" % n, "source": src, "type": "touchpoint." + kind,
                      "subject": subject, "time": t, "data": data}))
def buy(subject, t, amount):
    ev(subject, t, "purchase", {"order_id": "o-%d" % (n + 1), "amount": amount, "currency": "CNY"})
buy(c1, "2025-03-01T10:00:00Z", 150000)
buy(c2, "2025-03-05T08:30:00Z", 50000)
buy(c2, "2025-03-10T08:30:00Z", 60000)
# The stream passes both exits (04-01 10:00 and 04-10 08:30) on another customer's visit.
ev(clock, "2025-04-15T12:00:00Z", "web_visit", {"channel": "web", "page": "/", "duration_s": 5})
PY
total=$(wc -l <"$WORK/input.jsonl")
check "all $total touchpoints produced" "$TF" produce -t "$IN" "$WORK/input.jsonl"

start_daemon
check "touchflowd processes all $total touchpoints" wait_processed "$total" 60
check "no dead letters" test "$(stat_of dead_lettered)" = 0
check "timers due by the stream's time have fired" wait_settled 60
check "SIGTERM drains and exits 0" stop_daemon

consume_out segment "$WORK/segment.jsonl"
consume_out lifecycle "$WORK/lifecycle.jsonl"

segment_events_exact() {
  python3 - "$WORK/segment.jsonl" "$C1" "$C2" <<'PY'
import json, sys
c1, c2 = sys.argv[2:4]
got = []
ids = set()
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    rec = json.loads(line)
    ev = json.loads(rec["value"])
    d = ev["data"]
    ids.add(ev["id"])
    figs = {k: v for k, v in d.items() if k in ("days_since_purchase", "spend")}
    got.append((rec.get("key"), ev["subject"], ev["type"], ev["time"], d["rule"], d["segment"], figs, d["segments"]))
E, X = "touchflow.segment.entered", "touchflow.segment.exited"
want = [
    (c1, c1, E, "2025-03-01T10:00:00.000Z", "segment_rules", "recent_buyer", {"days_since_purchase": 0},
     ["recent_buyer", "big_spender"]),
    (c1, c1, E, "2025-03-01T10:00:00.000Z", "segment_rules", "big_spender", {"spend": 150000},
     ["recent_buyer", "big_spender"]),
    (c1, c1, X, "2025-04-01T10:00:00.000Z", "segment_rules", "recent_buyer", {"days_since_purchase": 31},
     ["big_spender"]),
    (c2, c2, E, "2025-03-05T08:30:00.000Z", "segment_rules", "recent_buyer", {"days_since_purchase": 0},
     ["recent_buyer"]),
    (c2, c2, E, "2025-03-10T08:30:00.000Z", "segment_rules", "big_spender", {"spend": 110000},
     ["recent_buyer", "big_spender"]),
    (c2, c2, X, "2025-04-10T08:30:00.000Z", "segment_rules", "recent_buyer", {"days_since_purchase": 31},
     ["big_spender"]),
]
# Per customer in order (the customers are on one partition, so in fact in one order).
per = lambda rows, c: [r for r in rows if r[1] == c]
ok = per(got, c1) == per(want, c1) and per(got, c2) == per(want, c2) and len(got) == len(want) and len(ids) == len(got)
if not ok:
    print("  got:")
    for r in got:
        print("   ", r)
sys.exit(0 if ok else 1)
PY
}
check "exactly the expected segment.entered/exited events (exits at last purchase + 31 days)" segment_events_exact

segments_figure_on_lifecycle() {
  python3 - "$WORK/lifecycle.jsonl" "$C1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    ev = json.loads(json.loads(line)["value"])
    if ev["subject"] == sys.argv[2] and ev["data"]["rule"] == "first_purchase":
        ok = ev["data"].get("segments") == ["recent_buyer", "big_spender"]
        if not ok:
            print("  first_purchase data:", ev["data"])
        sys.exit(0 if ok else 1)
print("  no first_purchase stage change for", sys.argv[2])
sys.exit(1)
PY
}
check "other families' events list the segments after the rules ran" segments_figure_on_lifecycle

member_of() { # customer, expected segments text
  "$TF" -o "redis.key_prefix=$PREFIX" customer get "$1" >"$WORK/customer.json" 2>"$WORK/customer.err" ||
    { cat "$WORK/customer.err"; return 1; }
  python3 - "$WORK/customer.json" "$2" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
ok = s.get("segments") == [x for x in sys.argv[2].split(",") if x] and s.get("segments_fp", 0) > 0 and \
     not any(t["name"] == "segment" for t in s.get("timers", []))
if not ok:
    print("  segments:", s.get("segments"), "segments_fp:", s.get("segments_fp"), "timers:", s.get("timers"))
sys.exit(0 if ok else 1)
PY
}
check "customer get: the first buyer is in big_spender only, no segment timer left" member_of "$C1" big_spender
check "customer get: the second buyer likewise" member_of "$C2" big_spender
check "customer get: the clock customer is in no segment" member_of "$CLOCK" ""

finish
