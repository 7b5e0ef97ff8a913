#!/usr/bin/env bash
# End to end on the real broker and Redis, wall clock: touchflowd is down for 40 days
# (faketime moves its clock) while customers keep buying, and comes back to a backlog.
# 30 weekly buyers were processed before the outage; each one's inactivity deadline
# (30 days after its last purchase) falls inside the outage. 20 of them bought every
# week during it: their purchases wait in the backlog, and no decline, churn warning
# or churn may be emitted for them when the daemon catches up. The other 10 bought
# nothing: each declines exactly once, at its deadline, once the backlog is applied,
# and is warned of churn for inactivity with it (inactivity alone reaches the warning).
set -uo pipefail
# Small batches: the backlog takes many, so a timer taken early would fire before
# the purchases of later batches.
# shellcheck disable=SC2034 # read by lib.sh
E2E_BATCH_MAX=10
# Weekly buyers have a purchase rhythm: its overdue signal would move their decline
# earlier (churn_risk); this test is about the deadline of inactivity alone.
E2E_RULES='{"replenishment": {"min_intervals": 0}}'
source "$(dirname "$0")/lib.sh"
started=$SECONDS

# libfaketime, preloaded straight into the daemon (env execs it: SIGTERM reaches it).
FAKETIME_LIB=$(dpkg -L libfaketime 2>/dev/null | grep '/libfaketimeMT.so.1$' | head -n 1)
if [ -z "$FAKETIME_LIB" ]; then
  echo "libfaketime is not installed (deploy/dev/install-deps.sh installs it): skipping"
  exit 77
fi

setup_topics
write_config
# The daemon's own view of time: 40 days on. Monotonic time stays real (libevent's
# timers and librdkafka's timeouts run on it).
OUTAGE_DAYS=40
# The sanitizer build wants its runtime first; the preload comes before it.
faked() {
  exec env LD_PRELOAD="$FAKETIME_LIB" FAKETIME="+${OUTAGE_DAYS}d" FAKETIME_DONT_FAKE_MONOTONIC=1 \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" "$@"
}

python3 - "$WORK" "$OUTAGE_DAYS" <<'PY'
import json, sys, time
from datetime import datetime, timezone
work, outage = sys.argv[1], int(sys.argv[2])
DAY = 86400000
now = int(time.time() * 1000) // 3600000 * 3600000
def ev(cid, n, t):
    return {"specversion": "1.0", "id": "%s.%d" % (cid, n), "source": "/shop/orders",
            "type": "touchpoint.purchase", "subject": cid,
            "time": datetime.fromtimestamp(t / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": {"order_id": "o-%s-%d" % (cid, n), "amount": 12000, "currency": "CNY"}}
before, during, deadlines = [], [], {}
for i in range(30):
    cid = ("back-%02d" if i < 20 else "gone-%02d") % i
    last = now - (10 + i % 5) * DAY  # weekly until 10-14 days ago
    n = 0
    for k in range(16, -1, -1):
        n += 1
        before.append(ev(cid, n, last - k * 7 * DAY))
    deadlines[cid] = last + 30 * DAY  # max(2 x 7 days, 30 days) after the last purchase
    if i < 20:  # the backlog: every week of the outage, the last 5 days before its end
        t = last + 7 * DAY
        while t <= now + (outage - 5) * DAY:
            n += 1
            during.append(ev(cid, n, t))
            t += 7 * DAY
for name, rows in (("before", before), ("during", during)):
    with open("%s/%s.jsonl" % (work, name), "w") as f:
        for e in sorted(rows, key=lambda e: e["time"]):
            f.write(json.dumps(e) + "\n")
json.dump(deadlines, open(work + "/deadlines.json", "w"))
PY
n_before=$(wc -l <"$WORK/before.jsonl")
n_during=$(wc -l <"$WORK/during.jsonl")

"$TF" produce -t "$IN" "$WORK/before.jsonl" >/dev/null 2>&1
start_daemon
check "the $n_before purchases before the outage are processed" wait_processed "$n_before" 90
check "settled" wait_settled 60
check "SIGTERM exits 0" stop_daemon

# The outage: the customers' purchases of 40 days pile up.
check "$n_during purchases produced while touchflowd is down" "$TF" produce -t "$IN" "$WORK/during.jsonl"
: >"$WORK/touchflowd.log"
faked "$TFD" -c "$WORK/touchflow.json" --stats-interval-ms 500 >>"$WORK/touchflowd.out" 2>>"$WORK/touchflowd.log" &
DAEMON_PID=$!
check "40 days later, the backlog of $n_during purchases is processed" wait_processed "$n_during" 90
check "settled after the catch-up" wait_settled 60
# Under libfaketime, librdkafka's timed waits (C11 cnd_timedwait, which libfaketime
# does not translate) can sleep until the faked date when its threads are joined:
# the drain is checked (logged, offsets committed), then the process is killed.
stopped_cleanly() {
  kill -TERM "$DAEMON_PID" 2>/dev/null
  local _
  for _ in $(seq 100); do
    grep -q '"msg":"stopped"' "$WORK/touchflowd.log" && break
    sleep 0.2
  done
  kill -9 "$DAEMON_PID" 2>/dev/null
  wait "$DAEMON_PID" 2>/dev/null
  DAEMON_PID=
  grep -q '"msg":"stopped"' "$WORK/touchflowd.log" &&
    "$TF" -c "$WORK/touchflow.json" lag --json >"$WORK/lag.json" &&
    python3 -c 'import json, sys; rows = json.load(open(sys.argv[1])); sys.exit(0 if rows and sum(r["lag"] for r in rows) == 0 else 1)' "$WORK/lag.json"
}
check "SIGTERM drains and commits every offset (lag 0)" stopped_cleanly

outs=""
for f in $FAMILIES; do outs="$outs -t $OUT_PREFIX.$f"; done
# shellcheck disable=SC2086
"$TF" consume --from-beginning --idle-ms 3000 --timeout-ms 30000 $outs >"$WORK/out.jsonl" 2>/dev/null

verdict() { # what: back | gone
  python3 - "$WORK/out.jsonl" "$WORK/deadlines.json" "$1" <<'PY'
import json, sys
from datetime import datetime
deadlines = json.load(open(sys.argv[2]))
what = sys.argv[3]
evs = [json.loads(json.loads(l)["value"]) for l in open(sys.argv[1]) if l.strip()]
def at(s):
    return int(datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1000) + 0
bad = []
if what == "back":
    for e in evs:
        if not e["subject"].startswith("back-"):
            continue
        if e["type"] in ("touchflow.churn.warning", "touchflow.winback.opportunity") or (
                e["type"] == "touchflow.lifecycle.stage_changed" and e["data"]["to"] in ("decline", "churned")):
            bad.append((e["subject"], e["type"], e["data"].get("to"), e["time"]))
    print("  false alarms for the 20 who kept buying: %d %s" % (len(bad), bad[:5]))
    sys.exit(1 if bad else 0)
declines, warnings = {}, {}
for e in evs:
    if e["type"] == "touchflow.lifecycle.stage_changed" and e["data"]["to"] == "decline":
        declines.setdefault(e["subject"], []).append(e)
    if e["type"] == "touchflow.churn.warning":
        warnings.setdefault(e["subject"], []).append(e)
gone = sorted(c for c in deadlines if c.startswith("gone-"))
for c in gone:
    d, w = declines.get(c, []), warnings.get(c, [])
    if len(d) != 1 or d[0]["data"]["rule"] != "inactivity":
        bad.append((c, [(x["data"]["rule"], x["time"]) for x in d]))
        continue
    t = datetime.strptime(d[0]["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    want = datetime.utcfromtimestamp(deadlines[c] / 1000)
    if t != want:
        bad.append((c, d[0]["time"], "want", want.isoformat()))
    elif len(w) != 1 or w[0]["time"] != d[0]["time"] or w[0]["data"]["reasons"] != ["inactivity"] or \
            w[0]["data"]["risk"] != 60:
        bad.append((c, "warnings", [(x["time"], x["data"]["reasons"], x["data"]["risk"]) for x in w]))
print("  the 10 who stopped buying: %d declined once at their deadline, warned with it; wrong: %s" %
      (len(gone) - len(bad), bad[:5]))
sys.exit(1 if bad else 0)
PY
}
check "no decline, churn warning or churn for the customers whose purchases waited in the backlog" verdict back
check "each customer who stopped buying declines once, for inactivity, at its deadline, warned of churn with it" \
  verdict gone

echo "# took $((SECONDS - started)) s"
finish
