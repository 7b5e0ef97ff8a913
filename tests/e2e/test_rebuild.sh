#!/usr/bin/env bash
# State rebuild from the log (touchflowd --rebuild-into): a first run while the live
# member keeps consuming, a second after it stopped that resumes and catches up, the
# live member switched over to the rebuilt prefix, and a rebuild from a time. The
# rebuilt counts must be exact, and a rebuild sends no derived event.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

E2E_BATCH_MAX=200
setup_topics
write_config
LIVE_PREFIX=$PREFIX
NEW="${PREFIX}r1:"

"$TF" gen --count 3000 --customers 300 --seed 7 --file "$WORK/all.jsonl" 2>/dev/null
head -n 2000 "$WORK/all.jsonl" >"$WORK/a.jsonl"
sed -n 2001,2500p "$WORK/all.jsonl" >"$WORK/b.jsonl"
sed -n 2501,3000p "$WORK/all.jsonl" >"$WORK/c.jsonl"

derived_on_topics() { # every derived event on the output topics
  local outs="" f
  for f in $FAMILIES; do outs="$outs -t $OUT_PREFIX.$f"; done
  # shellcheck disable=SC2086
  "$TF" consume --from-beginning --idle-ms 3000 --timeout-ms 60000 $outs 2>/dev/null | wc -l
}

rebuild() { # log, then touchflowd arguments
  local log=$1
  shift
  timeout 300 "$TFD" -c "$WORK/touchflow.json" --stats-interval-ms 500 "$@" >"$WORK/rebuild.out" 2>"$log"
}

"$TF" produce -t "$IN" "$WORK/a.jsonl" >/dev/null 2>&1
start_daemon
check "the live member applies the first 2,000 events" wait_processed 2000 120
wait_settled 60 >/dev/null

echo "# rebuild while the live member runs"
check "a rebuild into a new prefix exits 0" rebuild "$WORK/rebuild1.log" --rebuild-into "$NEW"
check "it says how to switch over" grep -q "redis.key_prefix=$NEW" "$WORK/rebuild.out"
check "it applied the 2,000 events" test "$(stat_of applied "$WORK/rebuild1.log")" = 2000

# Meanwhile the live member goes on: the first run stopped at what it had committed.
B_FROM=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 1
"$TF" produce -t "$IN" "$WORK/b.jsonl" >/dev/null 2>&1
check "the live member applies 500 more" wait_processed 2500 120
wait_settled 60 >/dev/null
check "the live member stops" stop_daemon
live_derived=$(derived_on_topics)

echo "# rebuild again once it stopped: it resumes"
check "the second run exits 0" rebuild "$WORK/rebuild2.log" --rebuild-into "$NEW"
check "it applied only the 500 that came since" test "$(stat_of applied "$WORK/rebuild2.log")" = 500
cat "$WORK/a.jsonl" "$WORK/b.jsonl" >"$WORK/ab.jsonl"
PREFIX=$NEW
check "every customer's counts in the rebuilt prefix are exact" counts_exact "$WORK/ab.jsonl" verbose
check "no derived event was sent by the rebuilds" test "$(derived_on_topics)" = "$live_derived"
check "the live prefix was left alone" test -n "$(redis_cli --scan --pattern "${LIVE_PREFIX}c:*" | head -n 1)"
same_as_live() { # what the events set (not the clock) matches the live state field by field
  python3 "$E2E_DIR/redis_state.py" "$TOUCHFLOW_REDIS_URL" "$LIVE_PREFIX" >"$WORK/live.json" &&
    python3 "$E2E_DIR/redis_state.py" "$TOUCHFLOW_REDIS_URL" "$NEW" >"$WORK/rebuilt.json" &&
    python3 - "$WORK/live.json" "$WORK/rebuilt.json" <<'PY2'
import json, sys
live, new = (json.load(open(f)) for f in sys.argv[1:3])
# A field back at its default is written as "" or never written, as batches fell.
keys = lambda s: {k: v for k, v in s.items() if v != "" and (k.startswith(("n:", "o:")) or k in ("purchases", "spend", "margin", "first_seen", "last_seen", "first_purchase", "last_purchase", "points", "currency"))}
bad = [c for c in live if keys(live[c]) != keys(new.get(c, {}))]
if bad:
    print("  differ:", bad[:3], keys(live[bad[0]]), keys(new.get(bad[0], {})))
sys.exit(1 if bad or set(live) != set(new) else 0)
PY2
}
check "the rebuilt state matches the live one, field by field" same_as_live

echo "# switch over: the live member on the rebuilt prefix"
: >"$WORK/touchflowd.log"
"$TF" produce -t "$IN" "$WORK/c.jsonl" >/dev/null 2>&1
start_daemon -o "redis.key_prefix=$NEW"
check "it takes the last 500 from where the group stood" wait_processed 500 120
check "every count exact over the whole stream" counts_exact "$WORK/all.jsonl" verbose
check "no loss reported on the rebuilt prefix" eval '! grep -q "redis lost data" "$WORK/touchflowd.log"'
check "SIGTERM exits 0" stop_daemon

echo "# rebuild from a time: only what was produced since"
PREFIX="${LIVE_PREFIX}r2:"
check "a rebuild --from exits 0" rebuild "$WORK/rebuild3.log" --rebuild-into "$PREFIX" --from "$B_FROM"
cat "$WORK/b.jsonl" "$WORK/c.jsonl" >"$WORK/bc.jsonl"
check "it holds exactly the events produced since that time" counts_exact "$WORK/bc.jsonl" verbose

echo "# bad use is refused with the reason"
rebuild "$WORK/bad.log" --rebuild-into "$LIVE_PREFIX"
rc=$?
check "the live prefix is refused (exit 2)" eval "[ $rc = 2 ] && grep -q 'that is the live prefix' '$WORK/bad.log'"
rebuild "$WORK/bad.log" --rebuild-into x: --from yesterday
rc=$?
check "a bad --from is refused (exit 2)" eval "[ $rc = 2 ] && grep -q 'expected an RFC 3339 time' '$WORK/bad.log'"
finish
