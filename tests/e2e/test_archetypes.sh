#!/usr/bin/env bash
# End to end on the real broker and Redis, on stream time: a year of journeys of
# customer archetypes (tests/e2e/archetypes.py: a loyal buyer who becomes key, a
# seasonal buyer, escalating complaints, a referral chain, a silent churn and its
# win-back, late events, a birthday; 30 background buyers to rank against) goes in,
# each partition ends with a "clock" touchpoint on 2025-12-31 so every timer of the
# year fires; the test asserts, per customer and family, the exact derived events
# (type, rule, figures, time), the Redis state of the late-events customer and the
# referral links, unique ids, and that a replay into a fresh group and key prefix
# gives the same ids. The first run delivers slowly (linger.ms), the replay fast.
set -uo pipefail
# shellcheck disable=SC2034 # read by lib.sh
E2E_CLOCK=stream
# Small batches: the tier rules read the population ranking once per batch, so the
# loyal buyer is ranked against background buyers committed a few records earlier.
E2E_BATCH_MAX=${E2E_BATCH_MAX:-4}
# Slow deliveries on the first run: later batches revisit customers whose derived
# events are still on their way, and must not send them again from the outbox.
E2E_PRODUCER=${E2E_PRODUCER:-'{"linger.ms": "250"}'}
source "$(dirname "$0")/lib.sh"
arch() { python3 "$E2E_DIR/archetypes.py" "$@"; }
started=$SECONDS

# The defaults, but tiers rank a population of 20 and read the ranking afresh for
# every batch. (Added to lib.sh's config here: its E2E_RULES loses the quotes of
# "rules" inside the heredoc.)
write_archetypes_config() {
  write_config &&
  python3 - "$WORK/touchflow.json" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["rules"] = {"tiers": {"min_population": 20, "refresh_ms": 1}}
json.dump(cfg, open(sys.argv[1], "w"), indent=1)
PY
}

setup_topics
write_archetypes_config
check "config check accepts the test config" "$TF" config check "$WORK/touchflow.json"

arch input >"$WORK/input.jsonl"
arch ids >"$WORK/ids.json"
id_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WORK/ids.json" "$1"; }
total=$(wc -l <"$WORK/input.jsonl")
check "all $total touchpoints produced" "$TF" produce -t "$IN" "$WORK/input.jsonl"

# The customers are where archetypes.py computed (murmur2, as librdkafka's
# murmur2_random partitioner): the buyers share one partition, the clocks one each.
"$TF" consume --from-beginning --idle-ms 2000 --timeout-ms 20000 -t "$IN" >"$WORK/in.jsonl" 2>/dev/null
check "every touchpoint on the partition computed for its customer" arch partitions "$WORK/in.jsonl"

start_daemon
check "touchflowd processes all $total touchpoints" wait_processed "$total" 90
check "no dead letters" test "$(stat_of dead_lettered)" = 0
check "timers due by the stream's time have fired" wait_settled 60
check "SIGTERM drains and exits 0" stop_daemon

# ---- Redis state ----
state_is() { # role, python expression over s (the customer's state)
  local c
  c=$(id_of "$1")
  "$TF" -o "redis.key_prefix=$PREFIX" customer get "$c" >"$WORK/$1.json" 2>"$WORK/$1.err" || { cat "$WORK/$1.err"; return 1; }
  python3 - "$WORK/$1.json" "$2" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
def n(v):
    """A sparse hash leaves a field at its default (0) empty."""
    return 0 if v in ("", None) else v
ok = eval(sys.argv[2])
if not ok:
    print("  state was:", json.dumps(s, sort_keys=True))
sys.exit(0 if ok else 1)
PY
}
ms() { python3 -c 'import sys; from datetime import datetime, timezone; print(int(datetime.strptime(sys.argv[1], "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc).timestamp()) * 1000)' "$1"; }
check "late events count: 3 visits (2 late), 3 purchases (1 late), complaints and updates" state_is late \
  "s['counts'].get('web_visit')==3 and s['counts'].get('purchase')==3 and s['purchases']==3 and s['counts'].get('complaint')==2 and s['counts'].get('complaint_update')==4 and s['counts'].get('survey')==1 and s['counts'].get('contract_end')==1"
check "late events: first_seen moved back to the late visit, last_seen stayed at the exit" state_is late \
  "s['first_seen']==$(ms '2025-03-20 02:00') and s['last_seen']==$(ms '2025-06-01 02:00')"
check "late events: spend counted, warning cleared, churned by contract_end, complaints closed" state_is late \
  "s['spend']==27000 and n(s['warned'])==0 and s['stage']=='churned' and n(s['open_complaints'])==0 and s['churned_count']==1"
check "late events: the late purchase's recovery is dated at the latest touchpoint" state_is late \
  "[(h['from'], h['to'], h['rule'], h['at']) for h in s['stage_history']][:3] == [('growth','churned','explicit_exit','2025-06-01T02:00:00.000Z'), ('decline','growth','recovered_purchase','2025-05-08T02:00:00.000Z'), ('growth','decline','churn_risk','2025-05-08T02:00:00.000Z')]"
check "loyal buyer: mature, key, gold, 22 purchases" state_is loyal \
  "s['stage']=='mature' and s['tier']=='key' and s['level']=='gold' and s['purchases']==22 and s['spend']==880000"
check "referral chain: A, a prospect, referred one customer" state_is ref-a \
  "s['stage']=='prospect' and s['referrals']==1 and n(s.get('purchases'))==0"
check "referral chain: B's referrer is A, credited" state_is ref-b \
  "s['referred_by']=='$(id_of ref-a)' and s['referral_credited']==1 and s['referrals']==1"
check "referral chain: C's referrer is B, credited once for two purchases" state_is ref-c \
  "s['referred_by']=='$(id_of ref-b)' and s['referral_credited']==1 and s['purchases']==2"
check "birthday customer: a prospect, nothing left due this year" state_is birthday \
  "s['stage']=='prospect' and s['birthday']=='08-20' and s['date']=='2018-06-10' and all(t['due_ms'] > $(ms '2025-12-31 12:00') for t in s.get('timers', []))"
check "birthday customer: its tags and consent are kept (sms withdrawn, the rest unstated)" state_is birthday \
  "s['tags']==['tea-lover','wechat'] and s['consent']['sms']['consent']=='withdrawn' and s['consent']['sms']['at_ms']==$(ms '2025-03-16 02:00') and sorted(s['consent'])==['sms']"
check "leaver: unsubscribed from email (consent withdrawn, still a prospect then), churned by contract_end" state_is leaver \
  "s['stage']=='churned' and s['consent']=={'email': {'consent': 'withdrawn', 'at': '2025-04-10T02:00:00.000Z', 'at_ms': $(ms '2025-04-10 02:00')}} and s['churned_count']==1 and n(s.get('purchases'))==0 and [h['rule'] for h in s['stage_history']]==['explicit_exit']"

# ---- derived events ----
consume_out() { # output topic prefix, file
  local outs="" f
  for f in $FAMILIES; do outs="$outs -t $1.$f"; done
  # shellcheck disable=SC2086
  "$TF" consume --from-beginning --idle-ms 3000 --timeout-ms 30000 $outs >"$2" 2>/dev/null
}
consume_out "$OUT_PREFIX" "$WORK/derived.jsonl"
check "exactly the expected derived events per customer and family, in order, ids unique" \
  arch check "$WORK/derived.jsonl" --ids "$WORK/ids-1.jsonl"
# bg-00 is worth 17,900 against at most 10,700 for anyone else until March: the top
# 5% of its 31 buyers (one customer) is bg-00, so it must be key (DOMAIN.md, value
# and tiers), whenever its first ranked review happens.
check "the most valuable buyer is ranked key" arch top-is-key "$WORK/derived.jsonl"

# ---- replay: the same input into a fresh group, key prefix and output topics ----
if [ "${E2E_ARCHETYPES_REPLAY:-1}" = 1 ]; then
  GROUP="$GROUP.replay"
  PREFIX="${PREFIX}replay:"
  OUT_PREFIX="$OUT_PREFIX.replay"
  for f in $FAMILIES; do create_topic "$OUT_PREFIX.$f" 1; done
  E2E_PRODUCER='{}'
  write_archetypes_config
  : >"$WORK/touchflowd.log"
  start_daemon
  check "replay: touchflowd processes all $total touchpoints again" wait_processed "$total" 90
  check "replay: timers settled" wait_settled 60
  check "replay: SIGTERM exits 0" stop_daemon
  consume_out "$OUT_PREFIX" "$WORK/derived-2.jsonl"
  check "replay: the same derived events" arch check "$WORK/derived-2.jsonl" --ids "$WORK/ids-2.jsonl"
  check "replay: the same ids" cmp -s "$WORK/ids-1.jsonl" "$WORK/ids-2.jsonl"
fi

echo "# took $((SECONDS - started)) s"
finish
