#!/usr/bin/env bash
# End to end on the real broker and Redis: subscriptions route derived events.
# The same input (a year of many archetypes, tests/e2e/year.py, on stream time, so
# derived ids and data are the same in every run) goes through two daemons:
#   reference  the defaults: one subscription per family, on the family topics;
#   routed     the family topics with three switched as documented (referral off by
#              kafka.output_topics.referral = "", tier off by a "tier" subscription
#              with enabled: false, churn narrowed to churn.warning by a "churn"
#              subscription), plus two subscribers:
#                winback-crm  binary, touchflow.winback.* and touchflow.churn.warning
#                care-sms     structured, touchflow.care.reminder with consent sms
# Each topic of the routed run must hold exactly the events its filter selects out of
# the reference run's events (by id), in its mode: binary records carry the ce_*
# headers and the data object alone (equal to the reference's data), structured ones
# the whole event. The families left alone must be unchanged. A reminder is expected
# on care-sms when its data lists "sms" among its channels (the figure the rules
# write; until they write it, that set is empty, and the test says so); a quarter of
# the customers withdraw consent to sms, so the set is neither empty nor all. Then
# outbox entries left by a crash (one in the previous version's form) are re-sent to
# the subscriptions they name. Finally the dry run (touchflow route) agrees with
# where the events went.
set -uo pipefail
# shellcheck disable=SC2034 # read by lib.sh
E2E_CLOCK=stream
E2E_SCAN_MS=${E2E_SCAN_MS:-100}
# shellcheck disable=SC2034
E2E_RULES='{"tiers": {"min_population": 20}}'
source "$(dirname "$0")/lib.sh"

create_topic "$IN" 4
create_topic "$DLQ" 1
python3 "$E2E_DIR/year.py" input >"$WORK/year.jsonl"
# Some customers withdraw consent to sms right after their first touchpoint (a
# profile event), so that care-sms has reminders to leave out.
python3 - "$WORK/year.jsonl" <<'PY'
import json, sys
path = sys.argv[1]
lines = open(path).read().splitlines()
seen, out = [], []
for l in lines:
    out.append(l)
    e = json.loads(l)
    c = e["subject"]
    if c not in seen:
        seen.append(c)
        if len(seen) % 4 == 0:
            out.append(json.dumps({"specversion": "1.0", "id": "no-sms-" + c, "source": "/crm", "type":
                                   "touchpoint.profile", "subject": c, "time": e["time"],
                                   "data": {"consent": {"sms": False}}}, separators=(",", ":")))
open(path, "w").write("\n".join(out) + "\n")
PY
total=$(wc -l <"$WORK/year.jsonl")
check "the year is produced ($total touchpoints)" eval '"$TF" produce -t "$IN" "$WORK/year.jsonl" >/dev/null 2>&1'

BASE_GROUP=$GROUP BASE_PREFIX=$PREFIX BASE_OUT=$OUT_PREFIX

# One run: fresh group, key prefix and family topics; $2 (python) edits the config.
run() {
  local name=$1 edit=$2 f
  GROUP="$BASE_GROUP.$name" PREFIX="$BASE_PREFIX$name:" OUT_PREFIX="$BASE_OUT.$name"
  for f in $FAMILIES; do create_topic "$OUT_PREFIX.$f" 1; done
  write_config
  python3 - "$WORK/touchflow.json" "$OUT_PREFIX" <<PY
import json, sys
cfg = json.load(open(sys.argv[1]))
out = sys.argv[2]
$edit
json.dump(cfg, open(sys.argv[1], "w"), indent=1)
PY
  cp "$WORK/touchflow.json" "$WORK/touchflow-$name.json"
  check "$name: config check accepts it" "$TF" config check "$WORK/touchflow-$name.json"
  : >"$WORK/touchflowd.log"
  start_daemon
  check "$name: all $total touchpoints processed" wait_processed "$total" 120
  check "$name: timers settled" wait_settled 90
  check "$name: SIGTERM exits 0" stop_daemon
  cp "$WORK/touchflowd.log" "$WORK/touchflowd-$name.log"
}

# Every record of topic $1 into file $2. Each read ends after 3 s without a record:
# reads of several topics run side by side.
read_topic() {
  "$TF" consume --from-beginning --idle-ms 3000 --timeout-ms 60000 -t "$1" >"$2" 2>/dev/null
}

run reference ""
for f in $FAMILIES; do read_topic "$BASE_OUT.reference.$f" "$WORK/ref.$f.jsonl" & done
wait
cat "$WORK"/ref.*.jsonl >"$WORK/ref.jsonl"
check "reference: as many records as derived events delivered" \
  test "$(wc -l <"$WORK/ref.jsonl")" = "$(stat_of derived "$WORK/touchflowd-reference.log")"

WINBACK="$BASE_OUT.routed.crm.winback" CARE_SMS="$BASE_OUT.routed.crm.care.sms"
create_topic "$WINBACK" 1
create_topic "$CARE_SMS" 1
run routed "
cfg['kafka']['output_topics']['referral'] = ''
cfg['subscriptions'] = {
  'winback-crm': {'topic': '$WINBACK', 'mode': 'binary',
                  'filter': {'types': ['touchflow.winback.*', 'touchflow.churn.warning']}},
  'care-sms': {'topic': '$CARE_SMS', 'mode': 'structured',
               'filter': {'types': ['touchflow.care.reminder'], 'consent': 'sms'}},
  'tier': {'enabled': False},
  'churn': {'filter': {'types': ['touchflow.churn.warning']}},
}"
for f in $FAMILIES; do read_topic "$BASE_OUT.routed.$f" "$WORK/routed.$f.jsonl" & done
read_topic "$WINBACK" "$WORK/routed.winback-crm.jsonl" &
read_topic "$CARE_SMS" "$WORK/routed.care-sms.jsonl" &
wait

# Compares every topic of the routed run with what its filter selects from the
# reference run; prints a line per subscription.
compare() {
  python3 - "$WORK" "$FAMILIES" <<'PY'
import json, sys
work, families = sys.argv[1], sys.argv[2].split()

def records(name):
    return [json.loads(l) for l in open("%s/%s.jsonl" % (work, name)) if l.strip()]

ref = {}
for r in records("ref"):
    ev = json.loads(r["value"])
    ref[ev["id"]] = ev
fails = []

def structured(rec, name):
    h = rec["headers"]
    if not h.get("content-type", "").startswith("application/cloudevents+json") or any(k.startswith("ce_") for k in h):
        fails.append("%s: a record is not structured: %s" % (name, h))
    ev = json.loads(rec["value"])
    if ref.get(ev["id"]) != ev:
        fails.append("%s: %s differs from the reference event" % (name, ev["id"]))
    return ev["id"]

def binary(rec, name):
    h = rec["headers"]
    for k in ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time"):
        if k not in h:
            fails.append("%s: binary record without %s" % (name, k))
            return None
    if h.get("content-type") != "application/json":
        fails.append("%s: binary content-type %r" % (name, h.get("content-type")))
    want = ref.get(h["ce_id"])
    if not want or json.loads(rec["value"]) != want["data"] or h["ce_type"] != want["type"] \
            or rec["key"] != want["subject"] or h["tf-type"] != want["type"]:
        fails.append("%s: %s is not the reference event's data" % (name, h["ce_id"]))
    return h["ce_id"]

def expect(name, got_ids, pred):
    want = {i for i, ev in ref.items() if pred(ev)}
    got = [i for i in got_ids if i]
    if len(got) != len(set(got)):
        fails.append("%s: %d duplicate records" % (name, len(got) - len(set(got))))
    missing, extra = want - set(got), set(got) - want
    if missing or extra:
        fails.append("%s: %d missing (e.g. %s), %d unexpected (e.g. %s)" % (
            name, len(missing), sorted(missing)[:2], len(extra), sorted(extra)[:2]))
    by_type = {}
    for i in want:
        t = ref[i]["type"].split(".", 1)[1]
        by_type[t] = by_type.get(t, 0) + 1
    print("#   %-12s %4d records %s" % (name, len(got), json.dumps(by_type, sort_keys=True)))
    return want

fam = lambda ev: ev["type"].split(".")[1]
for f in families:
    ids = [structured(r, f) for r in records("routed." + f)]
    if f == "referral" or f == "tier":
        expect(f, ids, lambda ev: False)
    elif f == "churn":
        expect(f, ids, lambda ev: ev["type"] == "touchflow.churn.warning")
    else:
        expect(f, ids, lambda ev, f=f: fam(ev) == f)
w = expect("winback-crm", [binary(r, "winback-crm") for r in records("routed.winback-crm")],
           lambda ev: fam(ev) == "winback" or ev["type"] == "touchflow.churn.warning")
c = expect("care-sms", [structured(r, "care-sms") for r in records("routed.care-sms")],
           lambda ev: ev["type"] == "touchflow.care.reminder" and "sms" in ev["data"].get("channels", []))
reminders = [ev for ev in ref.values() if ev["type"] == "touchflow.care.reminder"]
with_channels = sum(1 for ev in reminders if "channels" in ev["data"])
print("#   care reminders: %d, %d carrying the channels figure, %d allowing sms" % (
    len(reminders), with_channels, len(c)))
if not w:
    fails.append("winback-crm: the reference run has no win-back or churn warning to route")
if with_channels and (not c or len(c) == len(reminders)):
    fails.append("care-sms: the input should give reminders both with and without sms (%d of %d)" % (
        len(c), len(reminders)))
for f in fails[:20]:
    print("  " + f)
sys.exit(1 if fails else 0)
PY
}
check "every topic of the routed run holds exactly what its subscription selects, in its mode" compare
check "routed: the events no subscription wanted are counted (unrouted > 0)" \
  test "$(stat_of unrouted "$WORK/touchflowd-routed.log")" -gt 0

# ---- outbox re-sends after a crash ----
# Two entries are put in a customer's outbox as a crashed process would leave them:
# one as the previous version wrote it ("care\n<json>": its family) and one routed
# to two subscriptions, and the customer is made due in its partition's timer index
# (as a process that fired timers leaves it). The routed daemon, restarted, visits
# the customer once a touchpoint brings the partition's stream time, and must send
# each entry where it names, in that subscription's mode.
GROUP="$BASE_GROUP.routed" PREFIX="$BASE_PREFIX""routed:" OUT_PREFIX="$BASE_OUT.routed"
python3 - "$WORK" "$WORK/year.jsonl" <<'PY'
import json, sys
work, year = sys.argv[1:3]
evs = [json.loads(l) for l in open(year)]
last = max(evs, key=lambda e: e["time"])  # the latest touchpoint: no stream time jump
cust = last["subject"]
ref = [json.loads(json.loads(l)["value"]) for l in open(work + "/ref.jsonl")]
care = dict(next(e for e in ref if e["type"] == "touchflow.care.reminder"))
winback = dict(next(e for e in ref if e["type"].startswith("touchflow.winback.")))
care.update(id="5ab5" + "0" * 27 + "1", subject=cust)
winback.update(id="5ab5" + "0" * 27 + "2", subject=cust)
open(work + "/outbox.txt", "w").write("%s\n%s\n%s\n" % (cust, care["id"], winback["id"]))
# Payloads as the pipeline writes them: no newline after the JSON.
open(work + "/payload1", "w").write("care\n" + json.dumps(care, separators=(",", ":")))
open(work + "/payload2", "w").write("winback-crm,care-sms\n" + json.dumps(winback, separators=(",", ":")))
visit = {"specversion": "1.0", "id": "subs-visit-1", "source": "/web/shop-cn", "type": "touchpoint.web_visit",
         "subject": cust, "time": last["time"], "data": {"channel": "web"}}
open(work + "/visit.jsonl", "w").write(json.dumps(visit) + "\n")
PY
{ read -r cust; read -r id1; read -r id2; } <"$WORK/outbox.txt"
redis_cli -x HSET "${PREFIX}c:{$cust}:outbox" "$id1" <"$WORK/payload1" >/dev/null
redis_cli -x HSET "${PREFIX}c:{$cust}:outbox" "$id2" <"$WORK/payload2" >/dev/null
part=$("$TF" consume --from-beginning --idle-ms 3000 --timeout-ms 60000 -t "$IN" 2>/dev/null |
  python3 -c 'import json, sys
c = sys.argv[1]
print(next((json.loads(l)["partition"] for l in sys.stdin if json.loads(l)["key"] == c), -1))' "$cust")
check "re-send: the customer's input partition is known ($part)" test "$part" -ge 0
redis_cli ZADD "${PREFIX}timers:$IN/$part" 0 "$cust" >/dev/null
cp "$WORK/touchflow-routed.json" "$WORK/touchflow.json"
: >"$WORK/touchflowd.log"
start_daemon
"$TF" produce -t "$IN" "$WORK/visit.jsonl" >/dev/null 2>&1
check "re-send: the visit is processed" wait_processed 1 60
check "re-send: the outbox is emptied" wait_for 30 eval \
  '[ "$(redis_cli HLEN "${PREFIX}c:{$cust}:outbox")" = 0 ]'
check "re-send: SIGTERM exits 0" stop_daemon
read_topic "$BASE_OUT.routed.care" "$WORK/resend.care.jsonl" &
read_topic "$WINBACK" "$WORK/resend.winback-crm.jsonl" &
read_topic "$CARE_SMS" "$WORK/resend.care-sms.jsonl" &
wait
count_id() { # file id mode: records of that id
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
n = 0
for l in open(sys.argv[1]):
    r = json.loads(l)
    if sys.argv[3] == "binary":
        n += r["headers"].get("ce_id") == sys.argv[2] and "ce_type" in r["headers"]
    else:
        n += "ce_id" not in r["headers"] and json.loads(r["value"])["id"] == sys.argv[2]
print(n)
PY
}
check "re-send: the previous version's \"care\" entry went to the care family topic" \
  test "$(count_id "$WORK/resend.care.jsonl" "$id1" structured)" = 1
check "re-send: the two-subscription entry went to winback-crm (binary)" \
  test "$(count_id "$WORK/resend.winback-crm.jsonl" "$id2" binary)" = 1
check "re-send: ... and to care-sms (structured), as routed when derived" \
  test "$(count_id "$WORK/resend.care-sms.jsonl" "$id2" structured)" = 1

# ---- the dry run ----
# A churn.warning and a care.reminder of the reference run, routed on paper with the
# routed run's config, must name the subscriptions whose topics received them.
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
seen = set()
for l in open(work + "/ref.jsonl"):
    ev = json.loads(json.loads(l)["value"])
    if ev["type"] in ("touchflow.churn.warning", "touchflow.care.reminder", "touchflow.tier.changed") \
            and ev["type"] not in seen:
        seen.add(ev["type"])
        json.dump(ev, open("%s/sample.%s.json" % (work, ev["type"]), "w"))
PY
dry_run_agrees() { # type: receivers of the dry run == the routed topics holding its id
  local sample="$WORK/sample.$1.json"
  [ -f "$sample" ] || { echo "  no $1 in the reference run"; return 1; }
  "$TF" -c "$WORK/touchflow-routed.json" route --json "$sample" >"$WORK/route.$1.json" || return 1
  python3 - "$WORK" "$1" "$FAMILIES" <<'PY'
import json, sys
work, typ, families = sys.argv[1], sys.argv[2], sys.argv[3].split()
ev = json.load(open("%s/sample.%s.json" % (work, typ)))
out = json.load(open("%s/route.%s.json" % (work, typ)))
said = sorted(r["subscription"] for r in out["receivers"])
where = []
for name in families + ["winback-crm", "care-sms"]:
    for l in open("%s/routed.%s.jsonl" % (work, name)):
        r = json.loads(l)
        i = r["headers"].get("ce_id") or json.loads(r["value"])["id"]
        if i == ev["id"]:
            where.append(name)
print("#   dry run %s: receivers %s, skipped %s" % (
    typ, said, ["%s (%s)" % (s["subscription"], s["reason"]) for s in out["skipped"]][:4]))
if sorted(where) != said:
    print("  the event went to %s" % sorted(where))
sys.exit(0 if sorted(where) == said and out["type"] == typ else 1)
PY
}
check "dry run: a churn.warning goes where touchflow route says" dry_run_agrees touchflow.churn.warning
check "dry run: a care.reminder goes where touchflow route says" dry_run_agrees touchflow.care.reminder
check "dry run: a tier.changed goes nowhere, the tier subscription is disabled" eval \
  '[ ! -f "$WORK/sample.touchflow.tier.changed.json" ] || { dry_run_agrees touchflow.tier.changed &&
     grep -q "\"subscription\":\"tier\",\"reason\":\"disabled\"" "$WORK/route.touchflow.tier.changed.json"; }'
finish
