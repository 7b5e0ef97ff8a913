#!/usr/bin/env bash
# End to end on the real broker and Redis, stream time: timers fire only where the
# partition is owned, and follow it across a rebalance and a crash. Complaints go in
# to member A (SLA timers indexed per partition). Member B joins and the partitions
# split; clock events move each partition's stream past the level-1 deadline, and
# every customer escalates once, by the member owning its partition. Then A is
# killed, B takes everything, and clocks past the level-2 deadline escalate every
# customer once more, all by B. The members sign their events with their own
# source (processing.source) so the test can tell who fired what.
set -uo pipefail
# shellcheck disable=SC2034 # read by lib.sh
E2E_CLOCK=stream
E2E_SCAN_MS=100
source "$(dirname "$0")/lib.sh"

N=40
setup_topics
write_config

T0="2026-03-01T08:00:00Z" # high severity: level 1 at 16:00, level 2 at 00:00 next day
event() { # id subject kind time data
  printf '{"specversion":"1.0","id":"%s","source":"/crm/test","type":"touchpoint.%s","subject":"%s","time":"%s","data":%s}\n' \
    "$1" "$3" "$2" "$4" "$5"
}
clocks() { # id-prefix time: a visit of clock-1..clock-16, which cover all 4 partitions
  local i
  for i in $(seq 1 16); do event "$1-$i" "clock-$i" web_visit "$2" '{}'; done
}
for i in $(seq 1 $N); do
  event "c-$i" "cust-$i" complaint "$T0" '{"complaint_id":"k-'"$i"'","category":"service","severity":"high"}'
done >"$WORK/complaints.jsonl"
clocks tick1 "2026-03-01T17:00:00Z" >"$WORK/clock1.jsonl"
clocks tick2 "2026-03-02T01:00:00Z" >"$WORK/clock2.jsonl"

# Per-member figures: each member logs to its own file.
stat_in() { # log name
  local v
  v=$(grep -oE '"msg":"(stats|final): [^"]*' "$1" 2>/dev/null | tail -n 1 | grep -o " $2=[0-9]*" | cut -d= -f2)
  echo "${v:-0}"
}
owning() { grep -c '"msg":"owning the assignment' "$1" 2>/dev/null; }
stat_at_least() { [ "$(stat_in "$1" "$2")" -ge "$3" ]; } # log name n
owning_at_least() { [ "$(owning "$1")" -ge "$2" ]; }      # log n
start_member() { # name
  "$TFD" -c "$WORK/touchflow.json" -o "processing.source=/touchflow/$1" --stats-interval-ms 500 \
    2>"$WORK/$1.log" >/dev/null &
}
# Both members idle: nothing in flight and their derived counts still for 2 s.
both_settled() {
  local deadline=$((SECONDS + ${1:-60})) last="" now stable=0
  while [ $SECONDS -lt $deadline ]; do
    now="$(stat_in "$WORK/a.log" derived)/$(stat_in "$WORK/b.log" derived)"
    if [ "$now" = "$last" ] && [ "$(stat_in "$WORK/a.log" inflight)" = 0 ] &&
      [ "$(stat_in "$WORK/b.log" inflight)" = 0 ]; then
      stable=$((stable + 1))
      [ $stable -ge 4 ] && return 0
    else
      stable=0
    fi
    last=$now
    sleep 0.5
  done
  echo "  still busy: derived $now" >&2
  return 1
}
wait_for() { # seconds, command...
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.2
  done
}

"$TF" produce -t "$IN" "$WORK/complaints.jsonl" 2>/dev/null
start_member a
A=$!
check "A processes the $N complaints" wait_for 90 stat_at_least "$WORK/a.log" applied "$N"
: >"$WORK/b.log"
check "A settles: nothing due before the deadline" both_settled 30

start_member b
B=$!
DAEMON_PID=$B # lib.sh's stop_daemon and finish handle B
# Eager rebalance: A gives everything up and both take a new epoch for their share.
check "B joins and both own a share" wait_for 60 eval 'owning_at_least "$WORK/a.log" 2 && owning_at_least "$WORK/b.log" 1'
sleep 1

"$TF" produce -t "$IN" "$WORK/clock1.jsonl" 2>/dev/null
consumed_by_both() { [ $(($(stat_in "$WORK/a.log" consumed) + $(stat_in "$WORK/b.log" consumed))) -ge "$1" ]; }
check "the members read the 16 clock events" wait_for 60 consumed_by_both $((N + 16))
check "the level-1 deadline passes on every partition and both settle" both_settled 90

kill -9 "$A"
wait "$A" 2>/dev/null
before=$(owning "$WORK/b.log")
check "B takes A's partitions after A's crash" wait_for 60 owning_at_least "$WORK/b.log" $((before + 1))
last_assignment() { grep -o '"msg":"assigned [0-9]* partition' "$WORK/b.log" | tail -n 1 | grep -q 'assigned 4 '; }
check "B owns all four partitions" last_assignment
b_read=$(stat_in "$WORK/b.log" consumed)
"$TF" produce -t "$IN" "$WORK/clock2.jsonl" 2>/dev/null
check "B reads the 16 later clock events" wait_for 60 stat_at_least "$WORK/b.log" consumed $((b_read + 16))
check "the level-2 deadline passes and B settles" both_settled 90
check "B stops cleanly" stop_daemon

"$TF" consume --from-beginning --idle-ms 2000 --timeout-ms 20000 -t "$IN" >"$WORK/in.jsonl" 2>/dev/null
"$TF" consume --from-beginning --idle-ms 3000 --timeout-ms 30000 -t "$OUT_PREFIX.complaint" >"$WORK/esc.jsonl" 2>/dev/null
escalations_ok() {
  python3 - "$WORK/in.jsonl" "$WORK/esc.jsonl" "$N" <<'PY'
import json, sys
n = int(sys.argv[3])
part = {}
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        part[r["key"]] = r["partition"]
if {part.get("clock-%d" % i) for i in range(1, 17)} != {0, 1, 2, 3}:
    print("  the clock customers miss a partition:", sorted({part.get("clock-%d" % i) for i in range(1, 17)}))
    sys.exit(1)
got = {}
for line in open(sys.argv[2]):
    if line.strip():
        ev = json.loads(json.loads(line)["value"])
        got.setdefault(ev["subject"], []).append((ev["data"]["level"], ev["time"], ev["source"], ev["id"]))
bad = []
level1_by = {}  # input partition -> the sources of its level-1 escalations
for i in range(1, n + 1):
    c = "cust-%d" % i
    seq = got.get(c, [])
    if [(s[0], s[1]) for s in seq] != [(1, "2026-03-01T16:00:00.000Z"), (2, "2026-03-02T00:00:00.000Z")]:
        bad.append("%s: %s" % (c, seq))
        continue
    level1_by.setdefault(part[c], set()).add(seq[0][2])
    if seq[1][2] != "/touchflow/b":
        bad.append("%s: level 2 fired by %s after A was gone" % (c, seq[1][2]))
ids = [s[3] for seq in got.values() for s in seq]
if len(ids) != len(set(ids)) or len(ids) != 2 * n:
    bad.append("%d escalations, %d distinct ids, %d expected" % (len(ids), len(set(ids)), 2 * n))
for p, sources in sorted(level1_by.items()):
    if len(sources) != 1:
        bad.append("partition %d escalated by %s: more than its owner" % (p, sorted(sources)))
owners = set().union(*level1_by.values()) if level1_by else set()
if owners != {"/touchflow/a", "/touchflow/b"}:
    bad.append("level 1 fired by %s, not by both members" % sorted(owners))
for b in bad[:8]:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
}
check "each customer escalated exactly once per level, by its partition's owner" escalations_ok

cp "$WORK/b.log" "$WORK/touchflowd.log"
finish
