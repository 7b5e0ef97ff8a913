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

# escalations.py: complaints opened at 08:00 with an 8 h SLA (level 1 due at 16:00,
# level 2 at 00:00), and clock visits that land on all four partitions.
esc() { python3 "$E2E_DIR/escalations.py" "$@"; }
esc input "$N" >"$WORK/complaints.jsonl"
esc clocks tick1 "2026-03-01T17:00:00Z" >"$WORK/clock1.jsonl"
esc clocks tick2 "2026-03-02T01:00:00Z" >"$WORK/clock2.jsonl"

# Per-member figures: each member logs to its own file.
stat_in() { stat_of "$2" "$1"; } # log name
owning() { grep -c '"msg":"owning the assignment' "$1" 2>/dev/null; }
stat_at_least() { [ "$(stat_in "$1" "$2")" -ge "$3" ]; } # log name n
owning_at_least() { [ "$(owning "$1")" -ge "$2" ]; }      # log n
start_member() { # name
  "$TFD" -c "$WORK/touchflow.json" -o "processing.source=/touchflow/$1" --stats-interval-ms 500 \
    2>"$WORK/$1.log" >/dev/null &
}
both_settled() { wait_settled "$1" "$WORK/a.log" "$WORK/b.log"; } # seconds

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
check "each customer escalated exactly once per level, by its partition's owner" \
  esc check "$WORK/esc.jsonl" "$N" --owners "$WORK/in.jsonl"

cp "$WORK/b.log" "$WORK/touchflowd.log"
finish
