#!/usr/bin/env bash
# End-to-end checks of the operator CLI against real Redis and Kafka.
#
#   bash test_cli.sh <touchflowd> <touchflow>
#
# Needs TOUCHFLOW_REDIS_URL and TOUCHFLOW_KAFKA_BROKERS (the dev services), redis-cli
# and python3; exits 77 (skipped) without them. The daemon is not used here. Every key
# and topic is unique to this run; the Redis keys are deleted at the end. Kafka topics
# are left behind (auto-created by the broker on first produce).
set -u

if [ $# -ne 2 ]; then
    echo "usage: bash test_cli.sh <touchflowd> <touchflow>" >&2
    exit 2
fi
TF=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

if [ -z "${TOUCHFLOW_REDIS_URL:-}" ] || [ -z "${TOUCHFLOW_KAFKA_BROKERS:-}" ]; then
    echo "skip: TOUCHFLOW_REDIS_URL and TOUCHFLOW_KAFKA_BROKERS are not both set"
    exit 77
fi
for tool in redis-cli python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "skip: $tool not found"
        exit 77
    fi
done

work=$(mktemp -d)
run_id="$$-$RANDOM"
prefix="tfcli-$run_id:"
topic="touchflow.e2e.cli.$run_id"
redis() { redis-cli -u "$TOUCHFLOW_REDIS_URL" --no-auth-warning "$@"; }
cleanup() {
    redis DEL "${prefix}c:{cust-1}" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

fails=0
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
    n=$((n + 1))
    fails=$((fails + 1))
    echo "not ok $n - $1"
    sed 's/^/#   stdout: /' "$work/out"
    sed 's/^/#   stderr: /' "$work/err"
}

# tf ARGS...: runs the CLI; leaves the status in $rc and the output in $work/out, err.
tf() {
    "$TF" "$@" >"$work/out" 2>"$work/err"
    rc=$?
}
# check NAME WANT_RC [FILE TEXT]...: the status, and that each FILE contains TEXT.
check() {
    local name=$1 want=$2 good=1
    shift 2
    [ "$rc" -eq "$want" ] || good=0
    while [ $# -ge 2 ]; do
        grep -qF -- "$2" "$work/$1" || good=0
        shift 2
    done
    if [ $good -eq 1 ]; then ok "$name"; else not_ok "$name (exit $rc, want $want)"; fi
}
lacks() {  # lacks NAME FILE TEXT
    if grep -qF -- "$3" "$work/$2"; then not_ok "$1"; else ok "$1"; fi
}

# ---- usage and exit codes ----
tf
check "no command: usage on stderr, exit 2" 2 err "Usage: touchflow"
[ -s "$work/out" ] && not_ok "no command: nothing on stdout" || ok "no command: nothing on stdout"
tf help
check "help: usage on stdout" 0 out "Usage: touchflow" out "customer get ID" out "produce"
tf --help
check "--help" 0 out "Usage: touchflow"
tf -h
check "-h" 0 out "Usage: touchflow"
tf -V
check "-V prints the version" 0 out "touchflow "
tf bogus
check "unknown command" 2 err "touchflow: unknown command 'bogus'" err "--help"
tf -Z
check "unknown global option" 2 err "-Z"
tf customer
check "customer without get" 2
tf customer get
check "customer get without ID" 2
tf produce
check "produce without --topic" 2 err "--topic"
tf produce -t "$topic" --raw --binary
check "produce --raw with --binary" 2
tf produce -t "$topic" --timeout-ms 0
check "produce --timeout-ms 0" 2

# ---- config check ----
tf config check "$repo/config/touchflow.json"
check "config check on the default config" 0 out "touchflow.json: ok"
cat >"$work/bad.json" <<'EOF'
{"kafka": {"no_such_option": 1}, "redis": {"timeout_ms": "soon"}}
EOF
tf config check "$work/bad.json"
check "config check names both bad keys" 2 err "$work/bad.json: kafka.no_such_option" \
    err "$work/bad.json: redis.timeout_ms"
tf config check "$work/missing.json"
check "config check on a missing file" 2 err "missing.json"
tf -c "$work/bad.json" customer get cust-1
check "a command with a bad -c file" 2 err "redis.timeout_ms"

# ---- customer get ----
redis HSET "${prefix}c:{cust-1}" stage growth purchases 3 spend 12990 sat_a 7.5 zip 007 \
    name "Ann Lee" "o:touchpoints/0" 41 "o:touchpoints/3" 7 "n:purchase" 3 "n:web_visit" 7 >/dev/null
TOUCHFLOW_KEY_PREFIX="$prefix" tf customer get cust-1
check "customer get (prefix from the environment)" 0
if python3 - "$work/out" <<'EOF'; then ok "customer get: exact JSON, keys sorted"; else not_ok "customer get: exact JSON, keys sorted"; fi
import json, sys

def sorted_pairs(pairs):
    keys = [k for k, _ in pairs]
    assert keys == sorted(keys), "keys not sorted: %r" % keys
    return dict(pairs)

with open(sys.argv[1]) as f:
    doc = json.load(f, object_pairs_hook=sorted_pairs)
want = {
    "customer": "cust-1",
    "stage": "growth",
    "purchases": 3,
    "spend": 12990,
    "sat_a": 7.5,
    "zip": "007",
    "name": "Ann Lee",
    "offsets": {"touchpoints/0": 41, "touchpoints/3": 7},
    "counts": {"purchase": 3, "web_visit": 7},
}
# Fields the hash leaves out are shown at their defaults.
got_counts = doc.pop("counts")
assert {k: v for k, v in got_counts.items() if v} == want.pop("counts"), "counts %r" % got_counts
assert {k: doc.get(k) for k in want} == want, "got %r" % doc
extra = {k: v for k, v in doc.items() if k not in want}
assert "first_seen" in extra and "t:review" not in extra and "timers" not in extra, "extra %r" % extra
assert extra.pop("spend_buckets") == {"base": 0, "buckets": [0] * 12}, "spend_buckets"
for k, v in extra.items():
    assert v in (0, "", -1, "none", [], {}), "%s=%r is not a default" % (k, v)
assert type(doc["purchases"]) is int and type(doc["sat_a"]) is float
EOF
tf -o "redis.key_prefix=$prefix" customer get cust-1
check "customer get (prefix from -o)" 0 out '"customer": "cust-1"'
printf '{"redis": {"key_prefix": "%s"}}\n' "$prefix" >"$work/prefix.json"
tf -c "$work/prefix.json" customer get cust-1
check "customer get (prefix from -c)" 0 out '"spend": 12990'
TOUCHFLOW_KEY_PREFIX="$prefix" tf customer get nobody
check "customer get: not found" 1 err "customer nobody not found"
[ -s "$work/out" ] && not_ok "not found: nothing on stdout" || ok "not found: nothing on stdout"
tf -r "redis://:hunter2@127.0.0.1:1" customer get cust-1
check "customer get: Redis unreachable" 1 err "127.0.0.1:1"
lacks "unreachable Redis: the password is not shown" err "hunter2"

# ---- produce ----
cat >"$work/events.jsonl" <<'EOF'
{"specversion":"1.0","id":"cli-e1","source":"/e2e/cli","type":"touchpoint.web_visit","subject":"cli-c1","time":"2026-01-05T10:00:00Z","data":{"page":"/home","duration_s":12}}

{"specversion":"1.0","id":"cli-e2","source":"/e2e/cli","type":"touchpoint.purchase","subject":"cli-c2","time":"2026-01-05T10:01:00Z","data":{"order_id":"o-1","amount":12990,"currency":"EUR"}}
{"specversion":"1.0","id":"cli-e3","source":"/e2e/cli","type":"touchpoint.store_visit","subject":"cli-c1","time":"2026-01-05T10:02:00Z"}
EOF
tf produce --topic "$topic" "$work/events.jsonl"
check "produce 3 records from a file" 0 err "produced 3 records to $topic"
tf produce --topic "$topic" --binary <"$work/events.jsonl"
check "produce 3 records in binary mode from stdin" 0 err "produced 3 records to $topic"
printf '%s\n' '{"specversion":"1.0","id":"cli-e4","subject":"cli-c3"}' '{"id":' '' \
    '{"specversion":"1.0","id":"cli-e5"}' '[1,2]' '{"specversion":"1.0","id":"cli-e6","subject":"cli-c3"}' \
    >"$work/mixed.jsonl"
tf produce -t "$topic" "$work/mixed.jsonl"
check "produce skips bad lines, sends the good ones, exits 1" 1 err "produced 2 records to $topic" \
    err "mixed.jsonl:2: invalid JSON" err "mixed.jsonl:4: no string \"subject\"" err "mixed.jsonl:5: not a JSON object"
tf produce -t "$topic" --no-key "$work/mixed.jsonl"
check "produce --no-key" 1 err "produced 3 records to $topic"
printf '%s\n' '{"id":' 'not json at all' | "$TF" produce -t "$topic" --raw >"$work/out" 2>"$work/err"
rc=$?
check "produce --raw sends malformed lines" 0 err "produced 2 records to $topic"

if command -v kcat >/dev/null 2>&1 || command -v kafkacat >/dev/null 2>&1; then
    kc=$(command -v kcat || command -v kafkacat)
    got=$("$kc" -C -b "$TOUCHFLOW_KAFKA_BROKERS" -t "$topic" -o beginning -e -q -f '%k\n' 2>/dev/null | wc -l)
    # 3 + 3 + 2 + 3 + 2 records produced above.
    [ "$got" -eq 13 ] && ok "kcat reads back all 13 records" || not_ok "kcat reads back all 13 records (got $got)"
else
    ok "# SKIP read-back: kcat not installed"
fi

start=$SECONDS
tf -b 127.0.0.1:1 produce -t "$topic" --timeout-ms 3000 "$work/events.jsonl"
elapsed=$((SECONDS - start))
check "produce to an unreachable broker fails" 1 err "not delivered" err "produced 0 records to $topic"
[ "$elapsed" -le 15 ] && ok "unreachable broker: gave up within the timeout (${elapsed}s)" \
    || not_ok "unreachable broker: gave up within the timeout (${elapsed}s)"

echo "1..$n"
[ "$fails" -eq 0 ] || { echo "# $fails of $n checks failed"; exit 1; }
