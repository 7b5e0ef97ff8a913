#!/usr/bin/env bash
# The owner-local cache of customers (processing.cache_mb, README: Performance): a
# customer this process committed is applied from its cache, and every way its stored
# state can change behind the cache's back is caught by the commit, which then writes
# nothing, and the customer is read again and its events applied anew:
#   - a duplicate of an applied event (same source and id) at a later offset;
#   - a write by someone else (a count and the version moved by hand);
#   - a referral linked by another member (HSETNX referred_by): the customer's first
#     purchase credits that referrer.
# Nothing is lost or applied twice; with the cache off every customer is loaded.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
started=$SECONDS
E2E_STATS_MS=200

setup_topics
write_config
key() { echo "${PREFIX}c:{$1}"; }
n=0
# ev FILE ID SUBJECT KIND: appends one touchpoint of KIND for SUBJECT, id ID, now.
ev() {
  python3 - "$@" <<'PY'
import json, sys, time
f, eid, subject, kind = sys.argv[1:5]
data = {"channel": "web", "page": "/home"}
if kind == "purchase":
    data = {"order_id": "o-" + eid, "amount": 5000, "currency": "CNY", "channel": "web"}
e = {"specversion": "1.0", "id": eid, "source": "/shop", "type": "touchpoint." + kind, "subject": subject,
     "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "data": data}
open(f, "a").write(json.dumps(e) + "\n")
PY
}
produce() { "$TF" produce -t "$IN" "$1" >/dev/null 2>&1; }
count() { redis_cli HGET "$(key "$1")" "n:$2"; }

start_daemon
for c in ca cb cc; do
  ev "$WORK/1.jsonl" "$c-1" "$c" web_visit
  ev "$WORK/1.jsonl" "$c-2" "$c" web_visit
done
produce "$WORK/1.jsonl"
check "six visits of three customers applied" wait_processed 6 60
hits0=$(stat_of cache_hits) stale0=$(stat_of stale_reloads)

echo "# a duplicate of ca-1 at a later offset, with a new visit"
ev "$WORK/2.jsonl" ca-1 ca web_visit
ev "$WORK/2.jsonl" ca-3 ca web_visit
produce "$WORK/2.jsonl"
check "both done" wait_processed 8 60
check "the duplicate is one, the new visit applied: 3 visits" test "$(stat_of duplicates)-$(count ca web_visit)" = "1-3"
check "ca came from the cache" test "$(stat_of cache_hits)" -gt "$hits0"
check "its commit was stale (the id seen) and it was read again" test "$(stat_of stale_reloads)" -gt "$stale0"

echo "# someone else writes cb: 100 visits, a new version"
stale1=$(stat_of stale_reloads)
redis_cli HSET "$(key cb)" n:web_visit 100 >/dev/null
redis_cli HINCRBY "$(key cb)" v 1 >/dev/null
ev "$WORK/3.jsonl" cb-3 cb web_visit
produce "$WORK/3.jsonl"
check "done" wait_processed 9 60
check "cb's visit counts on the written state: 101" test "$(count cb web_visit)" = 101
check "the commit from the cache was stale" test "$(stat_of stale_reloads)" -gt "$stale1"

echo "# another member links a referrer to cc, then cc buys"
stale2=$(stat_of stale_reloads)
redis_cli HSETNX "$(key cc)" referred_by ref-x >/dev/null
ev "$WORK/4.jsonl" cc-3 cc purchase
produce "$WORK/4.jsonl"
check "done" wait_processed 10 60
check "cc's first purchase credited the referrer" test "$(redis_cli HGET "$(key cc)" referral_credited)" = 1
check "the commit from the cache was stale" test "$(stat_of stale_reloads)" -gt "$stale2"
credited() {
  "$TF" consume --from-beginning --idle-ms 2000 --timeout-ms 20000 -t "$OUT_PREFIX.referral" 2>/dev/null |
    grep -c '"key": *"ref-x"'
}
check "one referral.credited, keyed by the referrer" test "$(credited)" = 1
check "every count exact: ca 3, cb 101, cc 2 visits and a purchase" \
  test "$(count ca web_visit)-$(count cb web_visit)-$(count cc web_visit)-$(count cc purchase)" = "3-101-2-1"
check "SIGTERM exits 0" stop_daemon

echo "# the cache off: every customer loaded"
: >"$WORK/touchflowd.log"
start_daemon -o processing.cache_mb=0
ev "$WORK/5.jsonl" ca-4 ca web_visit
ev "$WORK/5.jsonl" ca-5 ca web_visit
produce "$WORK/5.jsonl"
check "done" wait_processed 2 60
ev "$WORK/6.jsonl" ca-6 ca web_visit
produce "$WORK/6.jsonl"
check "done" wait_processed 3 60
check "no hit, every customer loaded" test "$(stat_of cache_hits)" = 0 -a "$(stat_of cache_misses)" -ge 2
check "ca has 6 visits" test "$(count ca web_visit)" = 6
check "SIGTERM exits 0" stop_daemon

echo "# took $((SECONDS - started)) s"
finish
