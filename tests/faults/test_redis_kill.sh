#!/usr/bin/env bash
# Fault: Redis killed -9 mid-stream and restarted, twice over, each on a Redis of the
# test's own with topics, group and key prefix of their own:
# (a) persisted (appendonly yes, appendfsync always): Redis keeps every write it
#     acknowledged; touchflowd pauses, retries the batch in flight once Redis is back,
#     and every customer's counts end exact, every purchase stage change delivered;
# (b) not persisted: Redis comes back empty. What was applied before the kill is gone
#     (expected: the input topics are the log to rebuild from, README Recovery);
#     touchflowd logs "redis lost data" and goes on by itself: every customer's
#     state holds exactly the events after some point of its history, once each, and
#     all the input produced after the restart.
# Prints one FAULT line per variant.
set -uo pipefail
source "$(dirname "$0")/../e2e/lib.sh"
started=$SECONDS

EVENTS=${FAULT_EVENTS:-30000}
CUSTOMERS=${FAULT_CUSTOMERS:-$((EVENTS / 10))}
# shellcheck disable=SC2034 # read by lib.sh
E2E_STATS_MS=100
BASE_IN=$IN BASE_DLQ=$DLQ BASE_OUT_PREFIX=$OUT_PREFIX BASE_PREFIX=$PREFIX BASE_GROUP=$GROUP

# One variant: $1 its name (suffix of this run's names), further arguments the
# redis-server options. Leaves the input in $WORK/$1.jsonl, the daemon log in
# $WORK/$1.log, the seconds from the restart to no lag in RECOVER, and the part
# produced after the restart in $WORK/$1.after.jsonl.
kill_redis_mid_stream() {
  local name=$1
  shift
  IN="$BASE_IN.$name" DLQ="$BASE_DLQ.$name" OUT_PREFIX="$BASE_OUT_PREFIX.$name" PREFIX="$BASE_PREFIX$name:" GROUP="$BASE_GROUP.$name"
  OWN_PORT=$(free_port)
  start_own_redis "$OWN_PORT" "$@" || { echo "cannot start redis-server"; exit 1; }
  export TOUCHFLOW_REDIS_URL="redis://127.0.0.1:$OWN_PORT"
  setup_topics
  write_config
  "$TF" gen --count "$EVENTS" --customers "$CUSTOMERS" --seed 17 --file "$WORK/$name.jsonl" 2>/dev/null
  # Two thirds are there from the start (the kill falls amid commits), the last
  # third comes after the restart.
  head -n $((EVENTS * 2 / 3)) "$WORK/$name.jsonl" >"$WORK/$name.before.jsonl"
  tail -n +$((EVENTS * 2 / 3 + 1)) "$WORK/$name.jsonl" >"$WORK/$name.after.jsonl"
  "$TF" produce -t "$IN" "$WORK/$name.before.jsonl" >/dev/null 2>&1
  start_daemon
  wait_for 60 eval '[ "$(stat_of applied)" -ge $((EVENTS / 5)) ]'
  local at
  at=$(stat_of applied)
  kill -9 "$(own_redis_pid "$OWN_PORT")"
  unset "OWN_REDIS_PID[$OWN_PORT]"
  echo "# injected ($name): redis-server kill -9 with $at of $((EVENTS * 2 / 3)) applied, down for 3 s"
  sleep 3
  check "$name: the daemon is alive while Redis is down" kill -0 "$DAEMON_PID"
  check "$name: consumption paused" test "$(stat_of paused)" = 1
  APPLIED_AT_KILL=$(stat_of applied)
  start_own_redis "$OWN_PORT" "$@" || { echo "cannot restart redis-server"; exit 1; }
  local t0=$SECONDS
  "$TF" produce -t "$IN" "$WORK/$name.after.jsonl" >/dev/null 2>&1
  check "$name: every input record committed after the restart" wait_caught_up 120
  RECOVER=$((SECONDS - t0))
  echo "# found ($name): no lag $RECOVER s after the restart; applied=$(stat_of applied) replayed=$(stat_of replayed) redis_failures=$(stat_of redis_failures)"
}

# ---- (a) persisted ----
kill_redis_mid_stream aof --appendonly yes --appendfsync always
wait_for 30 counts_exact "$WORK/aof.jsonl"
check "aof: every customer's counts are exact" counts_exact "$WORK/aof.jsonl" verbose
read -r lost dup < <(count_diff "$WORK/aof.jsonl")
check "aof: no data loss reported (the epoch counter survived)" eval '! grep -q "redis lost data" "$WORK/touchflowd.log"'
check "aof: SIGTERM exits 0" stop_daemon
consume_out lifecycle "$WORK/aof.lifecycle.jsonl"
missing=$(stage_changes_missing "$WORK/aof.jsonl" "$WORK/aof.lifecycle.jsonl")
check "aof: a purchase stage change on the topic for every buyer" test "$missing" = 0
echo "# found (aof): $lost events lost, $dup applied twice, $missing buyers without their stage change"
stop_own_redis "$OWN_PORT"
mv "$WORK/touchflowd.log" "$WORK/aof.log"
fault_aof="redis kill -9 (appendfsync always)|$EVENTS|$lost|$dup|$missing|$RECOVER"

# ---- (b) not persisted ----
kill_redis_mid_stream nopersist
lost_seen() { grep -q '"msg":"redis lost data' "$WORK/touchflowd.log"; }
check "nopersist: the loss is logged" wait_for 30 lost_seen
echo "# found (nopersist): $(grep -o '"msg":"redis lost data[^"]*' "$WORK/touchflowd.log" | head -n 1)"
# Per customer, the state must count exactly the events from some point of its
# history on (what came before the kill is gone, what came after is there once),
# and that point must not be later than the customer's first event produced after
# the restart. Prints the events lost and applied twice.
suffix_state() {
  python3 "$E2E_DIR/redis_state.py" "$TOUCHFLOW_REDIS_URL" "$PREFIX" >"$WORK/state.json" &&
  python3 - "$WORK/nopersist.jsonl" "$WORK/nopersist.after.jsonl" "$WORK/state.json" <<'PY'
import json, sys
from collections import Counter, defaultdict
hist = defaultdict(list)
for line in open(sys.argv[1]):
    e = json.loads(line)
    hist[e["subject"]].append(e["type"].split(".", 1)[1])
after = Counter(json.loads(l)["subject"] for l in open(sys.argv[2]))
state = json.load(open(sys.argv[3]))
lost = dup = 0
bad = []
for c in set(hist) | set(state):
    got = Counter({k[2:]: int(v) for k, v in state.get(c, {}).items() if k.startswith("n:")})
    kinds = hist.get(c, [])
    # the longest suffix the state can be (counts only grow towards the start)
    match = None
    tail = Counter()
    for k in range(len(kinds), -1, -1):
        if k < len(kinds):
            tail[kinds[k]] += 1
        if tail == got:
            match = k
        if any(tail[x] > got[x] for x in tail):
            break
    if match is None or len(kinds) - match < after[c]:
        bad.append(c)
        want = Counter(kinds)
        lost += sum(max(0, want[x] - got[x]) for x in want)
        dup += sum(max(0, got[x] - want[x]) for x in got)
    else:
        lost += match
print(lost, dup, len(bad))
if bad:
    print("  customers whose state is not a suffix of their events (or misses events after the restart):",
          sorted(bad)[:5], file=sys.stderr)
PY
}
read -r lost dup bad < <(suffix_state)
echo "# found (nopersist): $lost events lost (of $APPLIED_AT_KILL applied before the kill), $dup applied twice"
check "nopersist: every customer holds a run of its latest events, once each, all those produced after the restart among them" test "$bad" = 0
check "nopersist: nothing lost but what was applied before the kill" test "$lost" -le "$APPLIED_AT_KILL"
check "nopersist: SIGTERM exits 0" stop_daemon
consume_out lifecycle "$WORK/nopersist.lifecycle.jsonl"
missing=$(stage_changes_missing "$WORK/nopersist.jsonl" "$WORK/nopersist.lifecycle.jsonl")
check "nopersist: a purchase stage change on the topic for every buyer" test "$missing" = 0

echo "# took $((SECONDS - started)) s"
echo "FAULT|$fault_aof"
fault_line "redis kill -9 (no persistence; loss expected)" "$EVENTS" "$lost" "$dup" "$missing" "$RECOVER"
finish
