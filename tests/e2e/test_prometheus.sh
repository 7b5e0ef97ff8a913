#!/usr/bin/env bash
# A real Prometheus server scrapes touchflowd; a PromQL query returns the consumer
# lag, first while records wait (Redis hung), then 0 once they are processed.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

command -v prometheus >/dev/null || { echo "FAILED - prometheus is missing (deploy/dev/install-deps.sh installs it)"; exit 1; }

E2E_OPS_LISTEN=127.0.0.1:0
redis_port=$(free_port)
start_own_redis "$redis_port"
export TOUCHFLOW_REDIS_URL="redis://127.0.0.1:$redis_port"
setup_topics
write_config
start_daemon
OPS=$(ops_url) || { echo "FAILED - no ops listener"; finish; }
check "daemon ready" bash -c "for i in \$(seq 100); do curl -sf '$OPS/readyz' >/dev/null && exit 0; sleep 0.2; done; exit 1"

# Hang Redis so what is produced now stays behind.
kill -STOP "$(own_redis_pid "$redis_port")"
"$TF" gen --count 400 --customers 50 --seed 5 --file "$WORK/events.jsonl" 2>/dev/null
"$TF" produce -t "$IN" "$WORK/events.jsonl" 2>/dev/null

prom_port=$(free_port)
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: touchflowd
    static_configs:
      - targets: ["${OPS#http://}"]
EOF
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$WORK/prometheus.log" 2>&1 &
prom_pid=$!
stop_prometheus() { kill "$prom_pid" 2>/dev/null; wait "$prom_pid" 2>/dev/null; }

# The value of a PromQL query, or nothing while it has no result.
promql() {
  curl -sf --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'
}
wait_query() { # query, python condition on v
  local deadline=$((SECONDS + ${3:-60})) v
  while [ $SECONDS -lt $deadline ]; do
    v=$(promql "$1" 2>/dev/null)
    if [ -n "$v" ] && python3 -c "import sys; v=float(sys.argv[1]); sys.exit(0 if ($2) else 1)" "$v"; then
      echo "# $1 = $v"
      return 0
    fi
    sleep 1
  done
  echo "# $1 = '${v:-}' (timed out)"
  return 1
}
# The statistics-based lag arrives within statistics.interval.ms (5 s).
check "PromQL sum(touchflow_consumer_lag) reports the 400 waiting records" wait_query 'sum(touchflow_consumer_lag)' 'v == 400' 60

kill -CONT "$(own_redis_pid "$redis_port")"
check "all records processed after Redis is back" wait_processed 400 60
check "PromQL lag falls to 0" wait_query 'sum(touchflow_consumer_lag)' 'v == 0' 60
check "PromQL sees the consumed events" wait_query 'sum(touchflow_events_consumed_total{outcome="applied"})' 'v == 400' 30
stop_prometheus
check "SIGTERM exits 0" stop_daemon
stop_own_redis "$redis_port"
finish
