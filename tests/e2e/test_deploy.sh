#!/usr/bin/env bash
# Static checks of deploy/: Prometheus config and rules (promtool), the systemd unit
# (systemd-analyze verify), every JSON and YAML file parses, and every metric the
# dashboard and the alert rules use is one touchflowd really exports (read from a
# running daemon's /metrics). Needs no Kafka or Redis.
set -uo pipefail

TFD=$(readlink -f "${1:?usage: $0 TOUCHFLOWD TOUCHFLOW}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEPLOY="$ROOT/deploy"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/touchflow-deploy.XXXXXX")
FAILURES=0
CHECKS=0
DAEMON_PID=

check() {
  local what=$1; shift
  CHECKS=$((CHECKS + 1))
  if "$@" >"$WORK/out" 2>&1; then
    echo "ok - $what"
  else
    echo "FAILED - $what"; sed 's/^/  /' "$WORK/out" | tail -n 20
    FAILURES=$((FAILURES + 1))
  fi
}
cleanup() { [ -n "$DAEMON_PID" ] && kill -9 "$DAEMON_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

for tool in promtool systemd-analyze curl; do
  command -v "$tool" >/dev/null || { echo "FAILED - $tool is missing (deploy/dev/install-deps.sh installs it)"; exit 1; }
done

check "promtool check config" promtool check config "$DEPLOY/prometheus/prometheus.yml"
check "promtool check rules" promtool check rules "$DEPLOY/prometheus/alerts.yml"

# The unit names /usr/local/bin/touchflowd; verify a copy that runs the built one.
sed "s#/usr/local/bin/touchflowd#$TFD#" "$DEPLOY/systemd/touchflowd.service" >"$WORK/touchflowd.service"
check "systemd-analyze verify touchflowd.service" systemd-analyze verify "$WORK/touchflowd.service"

json_ok() { local f; for f in "$@"; do python3 -m json.tool "$f" >/dev/null || { echo "$f"; return 1; }; done; }
check "every JSON file under deploy/ and config/ parses" json_ok $(find "$DEPLOY" "$ROOT/config" -name '*.json')

yaml_python=
for py in python3 /usr/bin/python3; do
  if "$py" -c 'import yaml' 2>/dev/null; then yaml_python=$py; break; fi
done
if [ -n "$yaml_python" ]; then
  yaml_ok() {
    "$yaml_python" - "$@" <<'PY'
import sys, yaml
for f in sys.argv[1:]:
    list(yaml.safe_load_all(open(f)))
PY
  }
  check "every YAML file under deploy/ parses" yaml_ok $(find "$DEPLOY" -name '*.yml' -o -name '*.yaml')
else
  echo "# no PyYAML: YAML files checked by promtool only"
fi

# The metric families a running daemon exports (Kafka and Redis unreachable: the
# endpoints answer all the same).
port_file="$WORK/out.port"
TOUCHFLOW_KAFKA_BROKERS=127.0.0.1:1 TOUCHFLOW_REDIS_URL=redis://127.0.0.1:1 \
  "$TFD" -o ops.listen=127.0.0.1:0 --stats-interval-ms 0 2>"$WORK/daemon.log" &
DAEMON_PID=$!
url=
for _ in $(seq 100); do
  url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$WORK/daemon.log" | head -n 1)
  [ -n "$url" ] && break
  sleep 0.1
done
curl -sf "$url/metrics" >"$WORK/metrics.txt"
check "the daemon serves /metrics" test -s "$WORK/metrics.txt"
check "promtool check metrics on the daemon's /metrics" sh -c "promtool check metrics <'$WORK/metrics.txt'"

used_metrics_exported() {
  python3 - "$WORK/metrics.txt" "$DEPLOY/grafana/touchflow-dashboard.json" "$DEPLOY/prometheus/alerts.yml" <<'PY'
import re, sys
exported = set()
for line in open(sys.argv[1]):
    m = re.match(r"# TYPE (\S+) (\S+)", line)
    if m:
        name, kind = m.groups()
        exported.add(name)
        if kind == "histogram":
            exported |= {name + "_bucket", name + "_sum", name + "_count"}
used = set()
for f in sys.argv[2:]:
    used |= set(re.findall(r"\btouchflow_[a-z0-9_]+", open(f).read()))
missing = sorted(used - exported)
if missing:
    print("used but not exported:", missing)
print(len(used), "metric names used,", len(exported), "exported")
sys.exit(1 if missing else 0)
PY
}
check "every metric the dashboard and the rules use is exported" used_metrics_exported
kill -TERM "$DAEMON_PID" 2>/dev/null
check "the daemon stops on SIGTERM with exit 0" wait "$DAEMON_PID"
DAEMON_PID=

echo "$((CHECKS - FAILURES)) passed, $FAILURES failed"
[ "$FAILURES" -eq 0 ]
