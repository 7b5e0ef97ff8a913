#!/usr/bin/env bash
# The operator commands against the real broker and Redis, on the sample journeys and
# malformed records: `lag` before and after touchflowd processed them, `customer get`
# with the stage history, and `dlq replay` (dry run, replay by reason to a fresh
# topic, replayed once per replay group), plus their usage and unreachable errors.
set -uo pipefail
# The samples are history: replayed on stream time (see test_journeys.sh).
E2E_CLOCK=stream
source "$(dirname "$0")/lib.sh"

setup_topics
write_config
journeys="$ROOT/config/samples/journeys.jsonl"
malformed="$ROOT/config/samples/malformed.jsonl"
"$TF" produce -t "$IN" "$journeys" 2>/dev/null
"$TF" produce -t "$IN" --raw "$malformed" 2>/dev/null
total=$(( $(wc -l <"$journeys") + $(wc -l <"$malformed") ))
tfc() { "$TF" -c "$WORK/touchflow.json" "$@"; }

# ---- lag ----
# Checks the table in $WORK/lag.txt: a python condition over rows (dicts of the
# columns, CURRENT-OFFSET None for "-") and total (the TOTAL line's lag).
table_is() {
  python3 - "$WORK/lag.txt" "$1" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
head = lines[0].split()
assert head == ["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"], head
# aligned: every line as long as the header, columns right-aligned under it
assert all(len(l) == len(lines[0]) for l in lines), lines
rows = []
for l in lines[1:-1]:
    t, p, cur, end, lag = l.split()
    rows.append({"topic": t, "partition": int(p), "current": None if cur == "-" else int(cur),
                 "end": int(end), "lag": int(lag)})
last = lines[-1].split()
assert last[0] == "TOTAL" and len(last) == 2, last
total = int(last[1])
ok = eval(sys.argv[2])
if not ok:
    print("  table:", *lines, sep="\n    ")
sys.exit(0 if ok else 1)
PY
}
check "lag before the daemon runs" bash -c "$(declare -f tfc); TF='$TF' WORK='$WORK'; tfc lag >'$WORK/lag.txt'"
check "4 partitions of the input, all '-', TOTAL = $total produced" table_is \
  "len(rows) == 4 and {r['topic'] for r in rows} == {'$IN'} and sorted(r['partition'] for r in rows) == [0, 1, 2, 3] and all(r['current'] is None and r['lag'] == r['end'] for r in rows) and total == sum(r['lag'] for r in rows) == $total"
check "lag --json: nothing committed, lag $total" bash -c \
  "$(declare -f tfc); TF='$TF' WORK='$WORK'; tfc lag --json | python3 -c 'import json, sys; rows = json.load(sys.stdin); sys.exit(0 if len(rows) == 4 and all(r[\"current_offset\"] is None for r in rows) and sum(r[\"lag\"] for r in rows) == $total else 1)'"

start_daemon
check "touchflowd processes the $total records" wait_processed "$total" 90
check "SIGTERM exits 0 (offsets committed)" stop_daemon
check "lag after processing" bash -c "$(declare -f tfc); TF='$TF' WORK='$WORK'; tfc lag >'$WORK/lag.txt'"
# (a partition that got no record has nothing committed: "-", end 0, lag 0)
check "TOTAL 0, committed = log end on every partition" table_is \
  "len(rows) == 4 and total == 0 and all(r['lag'] == 0 and (r['current'] == r['end'] or (r['current'] is None and r['end'] == 0)) for r in rows) and sum(r['end'] for r in rows) == $total"

# ---- customer get: the stage history ----
check "customer get cust-zhang-min" bash -c "$(declare -f tfc); TF='$TF' WORK='$WORK'; tfc customer get cust-zhang-min >'$WORK/zhang.json'"
history_ok() {
  python3 - "$WORK/zhang.json" <<'PY'
import datetime, json, sys
s = json.load(open(sys.argv[1]))
h = s.get("stage_history", [])
want = [("churned", "growth", "winback_purchase", "2026-05-20T11:00:00.000Z"),
        ("growth", "churned", "explicit_exit", "2026-03-01T02:00:00.000Z"),
        ("prospect", "growth", "first_purchase", "2026-02-01T03:00:00.000Z")]
def ms(at):
    return int(datetime.datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() * 1000)
ok = ([(e["from"], e["to"], e["rule"], e["at"]) for e in h] == want
      and all(e["at_ms"] == ms(e["at"]) for e in h)
      and not any(k.startswith("h:") for k in s))
if not ok:
    print("  customer:", json.dumps(s, sort_keys=True))
sys.exit(0 if ok else 1)
PY
}
check "stage_history: 3 changes, newest first, at = at_ms, no raw h: fields" history_ok

# ---- dlq replay ----
"$TF" consume --from-beginning --idle-ms 2000 --timeout-ms 20000 -t "$DLQ" >"$WORK/dlq.jsonl" 2>/dev/null
dlq_at() { # the "<topic>/<partition>/<offset>" of the dead letter with error code $1
  python3 - "$WORK/dlq.jsonl" "$1" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["headers"].get("tf-error-code") == sys.argv[2]:
        print("%s/%d/%d" % (r["topic"], r["partition"], r["offset"]))
PY
}
check "three dead letters to replay from" test "$(grep -c . "$WORK/dlq.jsonl")" = 3
invalid_json_at=$(dlq_at invalid_json)
unknown_type_at=$(dlq_at unknown_type)

replay() { tfc dlq replay --idle-ms 2500 "$@"; }
dry_run_ok() {
  replay --reason invalid_json --dry-run >"$WORK/dry.out" 2>"$WORK/dry.err" || return 1
  python3 - "$WORK/dry.out" "$invalid_json_at" "$IN" <<'PY' && grep -q 'would replay 1 of 3 dead letters (2 skipped by reason); nothing committed' "$WORK/dry.err"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = (len(rows) == 1 and rows[0]["reason"] == "invalid_json" and rows[0]["to"] == sys.argv[3]
      and "%s/%d/%d" % (rows[0]["topic"], rows[0]["partition"], rows[0]["offset"]) == sys.argv[2])
if not ok:
    print("  dry run:", rows)
sys.exit(0 if ok else 1)
PY
}
check "dry run lists exactly the invalid_json dead letter" dry_run_ok
check "a second dry run lists it again (a dry run commits nothing)" dry_run_ok

TARGET="e2e.replayed.$RUN_ID"
create_topic "$TARGET" 1
check "replay of unknown_type to a fresh topic" bash -c \
  "$(declare -f tfc replay); TF='$TF' WORK='$WORK'; replay --reason unknown_type --to-topic '$TARGET' 2>'$WORK/replay.err' && grep -q 'replayed 1 of 3 dead letters (2 skipped by reason) to $TARGET' '$WORK/replay.err'"
replayed_ok() {
  "$TF" consume --from-beginning --idle-ms 2000 --timeout-ms 20000 -t "$TARGET" >"$WORK/replayed.jsonl" 2>/dev/null
  python3 - "$WORK/replayed.jsonl" "$malformed" "$WORK/dlq.jsonl" "$unknown_type_at" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
orig = [l.rstrip("\n") for l in open(sys.argv[2])]
dead = [json.loads(l) for l in open(sys.argv[3])]
dead = [d for d in dead if d["headers"].get("tf-error-code") == "unknown_type"]
ok = (len(recs) == 1 and len(dead) == 1 and recs[0]["value"] == orig[1]
      and recs[0].get("key") == dead[0].get("key")
      and recs[0]["headers"].get("tf-replayed-from") == sys.argv[4]
      and "tf-error-code" not in recs[0]["headers"]
      and [k for k in recs[0]["headers"] if k.startswith("tf-")] == ["tf-replayed-from"])
if not ok:
    print("  replayed:", recs, "from", sys.argv[4])
sys.exit(0 if ok else 1)
PY
}
check "exactly the original unknown_type record arrives, tf-replayed-from set, no tf-error-code" replayed_ok
check "the same replay again replays 0" bash -c \
  "$(declare -f tfc replay); TF='$TF' WORK='$WORK'; replay --reason unknown_type --to-topic '$TARGET' 2>&1 | grep -q 'replayed 0 of 0 dead letters'"
check "... and the target still holds exactly 1 record" replayed_ok

# ---- usage and runtime errors ----
exit_is() { # expected status, command...
  local want=$1; shift
  "$@" >/dev/null 2>"$WORK/err.txt"
  local rc=$?
  [ "$rc" = "$want" ] || { echo "  exit $rc, want $want: $(cat "$WORK/err.txt")"; return 1; }
}
check "dlq replay: an unknown reason is a usage error (2)" exit_is 2 tfc dlq replay --reason nope
check "dlq without 'replay' is a usage error (2)" exit_is 2 tfc dlq
check "lag: an unexpected argument is a usage error (2)" exit_is 2 tfc lag extra
check "lag: an unknown topic fails (1)" exit_is 1 tfc lag -t "no.such.$RUN_ID" --timeout-ms 3000
nobody=$(free_port)
check "lag: unreachable Kafka fails (1)" exit_is 1 tfc -b "127.0.0.1:$nobody" lag --timeout-ms 2000
check "... naming the brokers" grep -q "Kafka at 127.0.0.1:$nobody not reachable" "$WORK/err.txt"
check "dlq replay: unreachable Kafka fails (1)" exit_is 1 tfc -b "127.0.0.1:$nobody" dlq replay
check "... naming the brokers" grep -q "Kafka at 127.0.0.1:$nobody not reachable" "$WORK/err.txt"
finish
