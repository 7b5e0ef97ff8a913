#!/usr/bin/env bash
# End to end on the real broker and Redis, stream time: the same year of touchpoints
# (tests/e2e/year.py: ~160 customers of many archetypes, late events, duplicates)
# is processed five ways, each by a fresh consumer group into a fresh key prefix and
# output topics, and every way must emit exactly the same derived events: the same
# ids with the same content, in the same order per customer and type.
#   live     one member, the input produced month by month while it runs
#   default  one member, everything already there, the default batch size
#   tiny     one member, batches of one record
#   huge     two members splitting the partitions, batches of 20,000
#   crash    two members, one killed -9 a third of the way (derived events re-sent
#            are dropped by id, as a subscriber does; what the dead member committed
#            and never delivered goes out later, so only ids and contents are compared)
# The first run is also checked for sense (every family fires, no steady buyer is
# declined, every silent buyer churns, warned before it does, tiers and referrals as
# the journeys say).
set -uo pipefail
# shellcheck disable=SC2034 # read by lib.sh
E2E_CLOCK=stream
E2E_SCAN_MS=${E2E_SCAN_MS:-100}
source "$(dirname "$0")/lib.sh"
year() { python3 "$E2E_DIR/year.py" "$@"; }
started=$SECONDS

create_topic "$IN" 4
create_topic "$DLQ" 1
year input >"$WORK/input.jsonl"
total=$(wc -l <"$WORK/input.jsonl")
mkdir -p "$WORK/slices"
year slices 12 "$WORK/slices"

BASE_GROUP=$GROUP BASE_PREFIX=$PREFIX BASE_OUT=$OUT_PREFIX
# A fresh group, key prefix and output topics for run $1, and its config: tiers
# rank a population of 20 (each partition holds 30 to 50 buyers).
prepare_run() {
  GROUP="$BASE_GROUP.$1" PREFIX="$BASE_PREFIX$1:" OUT_PREFIX="$BASE_OUT.$1"
  local f
  for f in $FAMILIES; do create_topic "$OUT_PREFIX.$f" 1; done
  write_config && python3 - "$WORK/touchflow.json" <<'PY'
import json, os, sys
cfg = json.load(open(sys.argv[1]))
cfg["rules"] = {"tiers": {"min_population": 20}}
# E2E_SEGMENTS (a JSON array, rules.segments): the five runs with segments too.
if os.environ.get("E2E_SEGMENTS"):
    cfg["rules"]["segments"] = json.loads(os.environ["E2E_SEGMENTS"])
cfg["processing"]["max_inflight"] = max(8000, 2 * cfg["processing"]["batch_max"])
json.dump(cfg, open(sys.argv[1], "w"), indent=1)
PY
}
start_member() { # run name, member name: sets PID
  "$TFD" -c "$WORK/touchflow.json" --stats-interval-ms 500 2>"$WORK/$1-$2.log" >/dev/null &
  PID=$!
}
done_in() { # log...: records finished by these members
  local n=0 log
  for log in "$@"; do
    n=$((n + $(stat_of applied "$log") + $(stat_of duplicates "$log") + $(stat_of replayed "$log") + $(stat_of dead_lettered "$log")))
  done
  echo "$n"
}
wait_done() { # want, seconds, log...
  local want=$1 deadline=$((SECONDS + $2))
  shift 2
  while [ $SECONDS -lt $deadline ]; do
    [ "$(done_in "$@")" -ge "$want" ] && return 0
    sleep 0.5
  done
  echo "  finished $(done_in "$@") of $want" >&2
  return 1
}
consume_run() { # run name
  local outs="" f
  for f in $FAMILIES; do outs="$outs -t $OUT_PREFIX.$f"; done
  # shellcheck disable=SC2086
  "$TF" consume --from-beginning --idle-ms 3000 --timeout-ms 60000 $outs >"$WORK/out-$1.jsonl" 2>/dev/null
}
stop_members() { # pids...
  local rc=0 pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "$@"; do wait "$pid" || rc=1; done
  return $rc
}
# One member on input already produced, with batch_max $2.
run_one() { # name batch_max
  E2E_BATCH_MAX=$2 prepare_run "$1"
  local pid t0=$SECONDS
  start_member "$1" a
  pid=$PID
  check "$1: all $total touchpoints processed (batch_max $2)" wait_done "$total" 180 "$WORK/$1-a.log"
  check "$1: timers settled" wait_settled 90 "$WORK/$1-a.log"
  check "$1: SIGTERM exits 0" stop_members "$pid"
  echo "# $1: $((SECONDS - t0)) s, $(grep -c '"msg":"stats' "$WORK/$1-a.log") stats lines"
  consume_run "$1"
}

# ---- live: the year fed month by month while the member runs ----
E2E_BATCH_MAX=500 prepare_run live
start_member live a
pid=$PID
for f in "$WORK"/slices/slice-*.jsonl; do
  [ -s "$f" ] && "$TF" produce -t "$IN" "$f" >/dev/null 2>&1
  sleep 0.7
done
check "live: all $total touchpoints produced and processed" wait_done "$total" 180 "$WORK/live-a.log"
check "live: timers settled" wait_settled 90 "$WORK/live-a.log"
check "live: SIGTERM exits 0" stop_members "$pid"
consume_run live
check "live: no dead letters" test "$(stat_of dead_lettered "$WORK/live-a.log")" = 0
check "live: duplicates recognised (8 sent twice)" test "$(stat_of duplicates "$WORK/live-a.log")" = 8
check "live: every family fires, steady buyers stay, silent ones are warned and churn, tiers and referrals" \
  year sane "$WORK/out-live.jsonl"

run_one default 2000
run_one tiny 1

# ---- huge: two members share the partitions, batches of 20,000 ----
E2E_BATCH_MAX=20000 prepare_run huge
start_member huge a
a=$PID
start_member huge b
b=$PID
check "huge: two members process all $total touchpoints" wait_done "$total" 180 "$WORK/huge-a.log" "$WORK/huge-b.log"
check "huge: both members took part" eval '[ "$(done_in "$WORK/huge-a.log")" -gt 0 ] && [ "$(done_in "$WORK/huge-b.log")" -gt 0 ]'
check "huge: timers settled" wait_settled 90 "$WORK/huge-a.log" "$WORK/huge-b.log"
check "huge: SIGTERM exits 0" stop_members "$a" "$b"
consume_run huge

# ---- crash: two members, one killed -9 a third of the way; the other takes over ----
E2E_BATCH_MAX=50 prepare_run crash
start_member crash a
a=$PID
start_member crash b
b=$PID
check "crash: a third processed by the two members" wait_done $((total / 3)) 180 "$WORK/crash-a.log" "$WORK/crash-b.log"
kill -9 "$a"
wait "$a" 2>/dev/null
lag_zero() { # the group has committed every input offset
  "$TF" -c "$WORK/touchflow.json" lag --json >"$WORK/lag.json" 2>/dev/null &&
    python3 -c 'import json, sys; rows = json.load(open(sys.argv[1])); sys.exit(0 if rows and sum(r["lag"] for r in rows) == 0 else 1)' "$WORK/lag.json"
}
wait_lag_zero() { # seconds
  local deadline=$((SECONDS + $1))
  until lag_zero; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 1
  done
}
check "crash: the survivor takes over and commits every input offset" wait_lag_zero 180
check "crash: timers settled" wait_settled 90 "$WORK/crash-b.log"
check "crash: SIGTERM exits 0" stop_members "$b"
consume_run crash
# What the killed member committed and never delivered waits in the customers'
# outboxes until the next owner visits them.
redis_cli --scan --pattern "${BASE_PREFIX}crash:c:*:outbox" | while read -r key; do
  redis_cli HKEYS "$key"
done >"$WORK/crash-outbox.txt"

check "the five runs emit the same derived events, id for id (in the same order per customer but across the crash)" \
  year compare live="$WORK/out-live.jsonl" default="$WORK/out-default.jsonl" tiny="$WORK/out-tiny.jsonl" \
  huge="$WORK/out-huge.jsonl" crash="$WORK/out-crash.jsonl" pending:crash="$WORK/crash-outbox.txt"

# The population figures, as each run's commits added them up: the same whatever
# the members, batches, or the crash and the replays after it.
figures_agree() {
  local run
  for run in live default tiny huge crash; do
    "$TF" -c "$WORK/touchflow.json" -o "redis.key_prefix=$BASE_PREFIX$run:" stats --json >"$WORK/figures-$run.json" ||
      return 1
  done
  python3 - "$WORK" <<'PY'
import json, sys
runs = ["live", "default", "tiny", "huge", "crash"]
figs = {r: json.load(open("%s/figures-%s.json" % (sys.argv[1], r))) for r in runs}
ok = figs["live"]["customers"] > 100 and all(figs[r] == figs["live"] for r in runs)
for r in runs:
    if figs[r] != figs["live"]:
        diff = {k: (figs["live"].get(k), figs[r].get(k)) for k in figs["live"] if figs["live"].get(k) != figs[r].get(k)}
        print("  %s differs from live: %s" % (r, str(diff)[:600]))
print("  %d customers, stages %s, exits %s" % (figs["live"]["customers"], figs["live"]["stages"], figs["live"]["exits"]))
sys.exit(0 if ok else 1)
PY
}
check "the five runs count the same population figures" figures_agree

echo "# took $((SECONDS - started)) s"
finish
