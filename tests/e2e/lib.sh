# Shared helpers for the end-to-end tests: sourced, not run.
# Each test gets its own topics, consumer group and Redis key prefix, so tests never
# see each other's data and can run against long-lived dev services.

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
TFD=${1:?usage: $0 TOUCHFLOWD TOUCHFLOW}
TF=${2:?usage: $0 TOUCHFLOWD TOUCHFLOW}

if [ -z "${TOUCHFLOW_KAFKA_BROKERS:-}" ] || [ -z "${TOUCHFLOW_REDIS_URL:-}" ]; then
  echo "TOUCHFLOW_KAFKA_BROKERS / TOUCHFLOW_REDIS_URL not set: skipping (run deploy/dev/services.sh up)"
  exit 77
fi

RUN_ID="$(basename "$0" .sh).$$.$(date +%s)"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/touchflow-e2e.XXXXXX")
IN="e2e.in.$RUN_ID"
DLQ="e2e.dlq.$RUN_ID"
OUT_PREFIX="e2e.out.$RUN_ID"
PREFIX="e2e:$RUN_ID:"
GROUP="e2e.$RUN_ID"
FAMILIES="lifecycle churn care complaint tier loyalty referral winback segment purchase"
DAEMON_PID=
FAILURES=0
CHECKS=0

redis_cli() {
  local hostport=${TOUCHFLOW_REDIS_URL#redis://}
  redis-cli -h "${hostport%%:*}" -p "${hostport##*:}" "$@"
}

create_topic() { bash "$ROOT/deploy/dev/services.sh" topics-create "$1" "$2" >/dev/null 2>&1; }

# Writes the test's config: the defaults with this run's names. The ops listener is
# off unless E2E_OPS_LISTEN is set (127.0.0.1:0 takes a free port: see ops_url), so
# that several daemons of one test never compete for a port. E2E_PRODUCER, a JSON
# object, sets librdkafka producer properties (kafka.producer). E2E_OUTPUT_MODE sets
# kafka.output_mode (structured or binary); unset, the key is left out (the default).
write_config() {
  local outs="" f rules="" mode=""
  for f in $FAMILIES; do outs="$outs\"$f\":\"$OUT_PREFIX.$f\","; done
  [ -n "${E2E_RULES:-}" ] && rules="\"rules\": $E2E_RULES,"
  [ -n "${E2E_OUTPUT_MODE:-}" ] && mode="\"output_mode\": \"$E2E_OUTPUT_MODE\","
  local producer=${E2E_PRODUCER:-} consumer=${E2E_CONSUMER:-}
  [ -n "$producer" ] || producer='{}'
  [ -n "$consumer" ] || consumer='{"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}'
  cat >"$WORK/touchflow.json" <<JSON
{
  "kafka": {
    "group_id": "$GROUP",
    $mode
    "input_topics": ["$IN"],
    "dlq_topic": "$DLQ",
    "output_topics": {${outs%,}},
    "consumer": $consumer,
    "producer": $producer
  },
  "redis": {"key_prefix": "$PREFIX"},
  "processing": {"batch_max": ${E2E_BATCH_MAX:-500}},
  "timers": {"clock": "${E2E_CLOCK:-wall}", "scan_interval_ms": ${E2E_SCAN_MS:-200}},
  $rules
  "ops": {"listen": "${E2E_OPS_LISTEN:-}"}
}
JSON
}

setup_topics() {
  local f
  create_topic "$IN" 4
  create_topic "$DLQ" 1
  for f in $FAMILIES; do create_topic "$OUT_PREFIX.$f" 1; done
}

# E2E_STATS_MS: the stats line's period (tests that act at a point of progress).
start_daemon() {
  "$TFD" -c "$WORK/touchflow.json" --stats-interval-ms "${E2E_STATS_MS:-500}" "$@" >>"$WORK/touchflowd.out" 2>>"$WORK/touchflowd.log" &
  DAEMON_PID=$!
}

# The ops endpoint's base URL (http://host:port) from the "ops listening on" line of
# the daemon log $1 (default: the test's), waiting up to 20 s for it.
ops_url() {
  local log=${1:-$WORK/touchflowd.log} deadline=$((SECONDS + 20)) url
  while [ $SECONDS -lt $deadline ]; do
    url=$(grep -o '"msg":"ops listening on http://[^"]*' "$log" 2>/dev/null | tail -n 1 | sed 's/.*listening on //')
    if [ -n "$url" ]; then echo "$url"; return 0; fi
    sleep 0.2
  done
  echo "no ops listener in $log" >&2
  return 1
}

# A TCP port nothing listens on right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A throwaway redis-server of the test's own on port $1 (in $WORK/redis-$1), for
# tests that stop or hang Redis; stop_own_redis kills it (also when stopped), and
# finish kills any still running. The pid is kept here, not only in $WORK, which
# finish removes.
# Further arguments are redis-server options that override these (the last one wins),
# e.g. start_own_redis PORT --appendonly yes --appendfsync always.
declare -A OWN_REDIS_PID=()
start_own_redis() {
  mkdir -p "$WORK/redis-$1"
  redis-server --port "$1" --bind 127.0.0.1 --dir "$WORK/redis-$1" --save '' --appendonly no \
    --daemonize yes --pidfile "$WORK/redis-$1/pid" --logfile "$WORK/redis-$1/log" "${@:2}" || return 1
  local _
  for _ in $(seq 50); do
    if redis-cli -p "$1" ping >/dev/null 2>&1 && [ -s "$WORK/redis-$1/pid" ]; then
      OWN_REDIS_PID[$1]=$(cat "$WORK/redis-$1/pid")
      return 0
    fi
    sleep 0.1
  done
  return 1
}
own_redis_pid() { echo "${OWN_REDIS_PID[$1]:-}"; }
stop_own_redis() {
  local pid=${OWN_REDIS_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill -CONT "$pid" 2>/dev/null
  kill -9 "$pid" 2>/dev/null
  unset "OWN_REDIS_PID[$1]"
  return 0
}

# Runs the command until it succeeds, for at most $1 seconds: wait_for SECONDS CMD...
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.2
  done
}

# Points the daemons at a throwaway redis-server of the test's own (for tests that
# kill, fill or flush it): sets OWN_PORT, exports TOUCHFLOW_REDIS_URL, defines own
# (redis-cli on it).
use_own_redis() {
  OWN_PORT=$(free_port)
  start_own_redis "$OWN_PORT" || { echo "cannot start redis-server"; exit 1; }
  export TOUCHFLOW_REDIS_URL="redis://127.0.0.1:$OWN_PORT"
}
own() { redis-cli -p "$OWN_PORT" "$@"; }

# A figure of the latest stats line in a daemon log (0 before the first one).
stat_of() { # name [log]: the latest figure of the daemon's stats lines
  local v
  v=$(grep -oE '"msg":"(stats|final): [^"]*' "${2:-$WORK/touchflowd.log}" 2>/dev/null | tail -n 1 | grep -o " $1=[0-9]*" | cut -d= -f2)
  echo "${v:-0}"
}

# Waits until the daemon has finished (committed or dead-lettered) $1 records.
wait_processed() {
  local want=$1 deadline=$((SECONDS + ${2:-90})) done_n
  while [ $SECONDS -lt $deadline ]; do
    done_n=$(( $(stat_of applied) + $(stat_of duplicates) + $(stat_of replayed) + $(stat_of dead_lettered) ))
    if [ "$done_n" -ge "$want" ] && [ "$(stat_of inflight)" = 0 ]; then return 0; fi
    sleep 0.5
  done
  echo "timed out waiting for $want processed records (log: $WORK/touchflowd.log)" >&2
  return 1
}

# Waits until timers fired by the partition scans have settled: no derived event
# delivered for 2 s (several scan intervals) and nothing in flight. Usage:
# wait_settled [seconds] [daemon log...] (default: the one daemon's log).
wait_settled() {
  local within=${1:-60} last=-1 now busy stable=0 log
  local deadline=$((SECONDS + within))
  [ $# -gt 0 ] && shift
  [ $# -gt 0 ] || set -- "$WORK/touchflowd.log"
  while [ $SECONDS -lt $deadline ]; do
    now="" busy=0
    for log in "$@"; do
      now="$now/$(stat_of derived "$log")"
      [ "$(stat_of inflight "$log")" = 0 ] || busy=1
    done
    if [ "$now" = "$last" ] && [ $busy = 0 ]; then
      stable=$((stable + 1))
      [ $stable -ge 4 ] && return 0
    else
      stable=0
    fi
    last=$now
    sleep 0.5
  done
  echo "derived events still flowing after $within s" >&2
  return 1
}

stop_daemon() {
  [ -n "$DAEMON_PID" ] || return 0
  kill -TERM "$DAEMON_PID" 2>/dev/null || true
  local rc=0
  wait "$DAEMON_PID" || rc=$?
  DAEMON_PID=
  return $rc
}

# Compares every customer's per-kind counts in Redis with the events in file $1.
counts_exact() {
  python3 "$E2E_DIR/redis_state.py" "$TOUCHFLOW_REDIS_URL" "$PREFIX" >"$WORK/state.json" &&
  python3 - "$1" "$WORK/state.json" "${2:-quiet}" <<'PY'
import json, sys
from collections import Counter, defaultdict
want = defaultdict(Counter)
for line in open(sys.argv[1]):
    e = json.loads(line)
    want[e["subject"]][e["type"].split(".", 1)[1]] += 1
state = json.load(open(sys.argv[2]))
bad = []
for c, kinds in want.items():
    s = state.get(c, {})
    for k, n in kinds.items():
        if int(s.get("n:" + k, 0)) != n:
            bad.append((c, k, n, s.get("n:" + k)))
    if int(s.get("purchases", 0)) != kinds.get("purchase", 0):
        bad.append((c, "purchases", kinds.get("purchase", 0), s.get("purchases")))
# A customer only ever referred by others holds just the link (referred_by): not extra.
extra = {c for c in set(state) - set(want) if any(k.startswith("n:") or k == "purchases" for k in state[c])}
if sys.argv[3] == "verbose" and (bad or extra):
    print("  mismatches (customer, kind, want, got):", bad[:10], "extra customers:", list(extra)[:5])
sys.exit(0 if not bad and not extra else 1)
PY
}

# ---- fault tests (tests/faults) ----

# Per customer and kind, the events of file $1 missing from the state in Redis and
# those counted more often than they came: prints "LOST DUPLICATED".
count_diff() {
  python3 "$E2E_DIR/redis_state.py" "$TOUCHFLOW_REDIS_URL" "$PREFIX" >"$WORK/state.json" &&
  python3 - "$1" "$WORK/state.json" <<'PY'
import json, sys
from collections import Counter, defaultdict
want = defaultdict(Counter)
for line in open(sys.argv[1]):
    e = json.loads(line)
    want[e["subject"]][e["type"].split(".", 1)[1]] += 1
state = json.load(open(sys.argv[2]))
lost = dup = 0
for c in set(want) | set(state):
    got = Counter({k[2:]: int(v) for k, v in state.get(c, {}).items() if k.startswith("n:")})
    for k in set(want[c]) | set(got):
        lost += max(0, want[c][k] - got[k])
        dup += max(0, got[k] - want[c][k])
print(lost, dup)
PY
}

# Every output record of family $1 (lifecycle, care...) into file $2.
consume_out() {
  "$TF" consume --from-beginning --idle-ms 3000 --timeout-ms 60000 -t "$OUT_PREFIX.$1" >"$2" 2>/dev/null
}

# Buyers of events file $1 without a stage change caused by a purchase (first
# purchase, or win-back after an exit) among the lifecycle records of file $2:
# prints their number, and a few of them on stderr.
stage_changes_missing() {
  python3 - "$1" "$2" <<'PY'
import json, sys
buyers = {json.loads(l)["subject"] for l in open(sys.argv[1]) if '"touchpoint.purchase"' in l}
got = set()
for l in open(sys.argv[2]):
    ev = json.loads(json.loads(l)["value"])
    if ev["data"].get("cause") == "purchase" and ev["data"].get("rule") in ("first_purchase", "winback_purchase"):
        got.add(ev["subject"])
missing = buyers - got
if missing:
    print("  no purchase stage change for %d buyers, e.g. %s" % (len(missing), sorted(missing)[:5]), file=sys.stderr)
print(len(missing))
PY
}

# The group's lag summed over the partitions of the input topic; -1 while a
# partition has no committed offset (or the broker does not answer).
group_lag() {
  "$TF" lag --json --group "$GROUP" -t "$IN" 2>/dev/null | python3 -c '
import json, sys
try:
    rows = json.load(sys.stdin)
except ValueError:
    rows = []
print(sum(r["lag"] for r in rows) if rows and all(r["current_offset"] is not None for r in rows) else -1)'
}
# Waits up to $1 seconds until the group has committed every input record (the
# daemon commits offsets every second, once records are applied and delivered).
caught_up() { [ "$(group_lag)" = 0 ]; }
wait_caught_up() { wait_for "$1" caught_up; }

# Produces file $1 in $2 slices, one every $3 seconds, in the background (sets
# PRODUCER_PID): the input keeps arriving while the fault is injected.
produce_paced() {
  local file=$1 slices=$2 every=$3 n
  n=$(( ($(wc -l <"$file") + slices - 1) / slices ))
  split -l "$n" -d -a 3 "$file" "$WORK/slice."
  (
    for f in "$WORK"/slice.*; do
      "$TF" produce -t "$IN" "$f" >/dev/null 2>&1 || echo "producing $f failed" >&2
      sleep "$every"
    done
  ) &
  PRODUCER_PID=$!
}

# Runs a Kafka CLI class from the jars deploy/dev/services.sh fetched, e.g.
# kafka_tool kafka.admin.ConfigCommand --bootstrap-server ... --describe ...
kafka_tool() {
  local v libs=
  for v in ${TOUCHFLOW_DEV_KAFKA_VERSION:-} \
      "$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/deploy/dev/kafka/pom.xml" | head -n 1)" 3.9.0; do
    libs=${TOUCHFLOW_DEV_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/touchflow/kafka-$v}/libs
    [ -d "$libs" ] && break
  done
  local java=java
  [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && java=$JAVA_HOME/bin/java
  printf 'log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=%%p %%m%%n\n' >"$WORK/tools-log4j.properties"
  "$java" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$WORK/tools-log4j.properties" -cp "$libs/*" "$@"
}

# The machine-readable summary of a fault test, collected by tests/faults/matrix.sh:
# fault_line NAME EVENTS LOST DUPLICATED DERIVED_MISSING SECONDS_TO_RECOVER
fault_line() { echo "FAULT|$1|$2|$3|$4|$5|$6"; }

# The end of a stream fault test (tests/faults): stop the daemon, check every
# buyer's purchase stage change reached the lifecycle topic, print the findings
# and the FAULT line. stream_fault_end FAULT LOST DUPLICATED RECOVER_S
stream_fault_end() {
  local fault=$1 lost=$2 dup=$3 recover=$4 missing
  check "SIGTERM exits 0" stop_daemon
  consume_out lifecycle "$WORK/lifecycle.jsonl"
  missing=$(stage_changes_missing "$WORK/events.jsonl" "$WORK/lifecycle.jsonl")
  check "a purchase stage change on the topic for every buyer" test "$missing" = 0
  echo "# found: $lost events lost, $dup applied twice, $missing buyers without their stage change"
  echo "# took $((SECONDS - started)) s"
  fault_line "$fault" "$EVENTS" "$lost" "$dup" "$missing" "$recover"
}

check() {
  local what=$1; shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then
    echo "ok - $what"
  else
    echo "FAILED - $what"
    FAILURES=$((FAILURES + 1))
  fi
}

finish() {
  [ -n "$DAEMON_PID" ] && kill -9 "$DAEMON_PID" 2>/dev/null
  local port
  for port in "${!OWN_REDIS_PID[@]}"; do stop_own_redis "$port"; done
  echo "$((CHECKS - FAILURES)) passed, $FAILURES failed"
  if [ "$FAILURES" -ne 0 ]; then
    echo "--- touchflowd log tail ($WORK/touchflowd.log)"
    tail -n 40 "$WORK/touchflowd.log" 2>/dev/null
    exit 1
  fi
  [ -n "${E2E_KEEP:-}" ] || rm -rf "$WORK"
  exit 0
}
