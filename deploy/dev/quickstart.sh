#!/usr/bin/env bash
# The quickstart: installs what is missing, builds, starts a local redis-server,
# runs touchflowd against an embedded Kafka mock cluster, feeds the sample journeys
# in config/samples/, and prints the derived events, the dead letters and one
# customer's state. Everything it starts it stops again.
#
# The embedded cluster is an in-process librdkafka mock: for trying touchflow out,
# not for production (see deploy/dev/services.sh for a real broker).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
state="$root/.dev/quickstart"
redis_port=${TOUCHFLOW_QUICKSTART_REDIS_PORT:-16479}
mkdir -p "$state"

say() { printf '\n== %s\n' "$*"; }

bash deploy/dev/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target touchflowd touchflow >/dev/null
tf="$root/build/cmd/touchflow"
tfd="$root/build/cmd/touchflowd"

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize yes --pidfile "$state/redis.pid" --logfile "$state/redis.log"
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
  [ -f "$state/redis.pid" ] && kill "$(cat "$state/redis.pid")" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$redis_port" flushall >/dev/null

export TOUCHFLOW_REDIS_URL="redis://127.0.0.1:$redis_port"
# The samples are history: stream time fires their timers (follow-ups, SLAs,
# festivals) as the replayed stream passes them, not against today's date.
"$tfd" --embedded --clock stream --stats-interval-ms 500 >"$state/touchflowd.out" 2>"$state/touchflowd.log" &
daemon_pid=$!
brokers=
for _ in $(seq 100); do
  brokers=$(sed -n 's/^TOUCHFLOW_KAFKA_BROKERS=//p' "$state/touchflowd.out")
  [ -n "$brokers" ] && break
  sleep 0.1
done
[ -n "$brokers" ] || { echo "touchflowd did not start; see $state/touchflowd.log" >&2; exit 1; }
export TOUCHFLOW_KAFKA_BROKERS="$brokers"
say "touchflowd is running against the embedded cluster at $brokers"

say "feeding config/samples/journeys.jsonl and three malformed records"
"$tf" produce -t touchpoints config/samples/journeys.jsonl
"$tf" produce -t touchpoints --raw config/samples/malformed.jsonl

total=$(( $(grep -c . config/samples/journeys.jsonl) + $(grep -c . config/samples/malformed.jsonl) ))
# The first group join on the embedded cluster takes a few seconds; wait until
# touchflowd reports every record taken and nothing in flight.
for _ in $(seq 300); do
  line=$(grep -o '"msg":"stats: [^"]*' "$state/touchflowd.log" | tail -n 1 || true)
  consumed=$(printf '%s' "$line" | grep -o 'consumed=[0-9]*' | cut -d= -f2 || true)
  if [ "${consumed:-0}" -ge "$total" ] && printf '%s' "$line" | grep -q ' inflight=0 '; then break; fi
  sleep 0.2
done
printf '%s\n' "${line#\"msg\":\"}"

say "derived events (touchflow.lifecycle, touchflow.winback, ...)"
"$tf" consume --from-beginning --idle-ms 4000 --timeout-ms 30000 --value-only \
  -t touchflow.lifecycle -t touchflow.winback -t touchflow.churn -t touchflow.care \
  -t touchflow.complaint -t touchflow.tier -t touchflow.loyalty -t touchflow.referral -t touchflow.purchase

say "dead letters (touchflow.dlq), with their error headers"
"$tf" consume --from-beginning --idle-ms 2000 --timeout-ms 20000 -t touchflow.dlq

say "customer cust-li-wei, as kept in Redis"
"$tf" customer get cust-li-wei

say "population figures (touchflow stats; also at the dashboard's /figures)"
"$tf" stats

say "done; touchflowd's log is in $state/touchflowd.log"
