#!/usr/bin/env bash
# The lag dashboard in a real browser: touchflowd runs with real lag (records
# produced while its Redis hangs, so the lag stays put), headless Chromium loads "/"
# and the numbers it renders are checked against what was produced and against
# /status: total lag, lag, committed offset and high watermark per partition, a
# consume rate of 0 and an infinite time to catch up. A screenshot is kept as a test
# artifact. Then Redis comes back and the page shows the backlog caught up.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "chromium not installed: skipping (deploy/dev/install-deps.sh)"; exit 77; }
for tool in curl redis-server; do
  command -v "$tool" >/dev/null || { echo "$tool not installed: skipping"; exit 77; }
done
BUILD_DIR=$(cd "$(dirname "$TFD")/.." && pwd)
ARTIFACTS=${E2E_ARTIFACTS:-$BUILD_DIR/Testing/artifacts}
mkdir -p "$ARTIFACTS"

rport=$(free_port)
trap 'stop_own_redis "$rport"' EXIT
start_own_redis "$rport" || { echo "cannot start redis-server on $rport"; exit 1; }
export TOUCHFLOW_REDIS_URL="redis://127.0.0.1:$rport"

E2E_OPS_LISTEN=127.0.0.1:0
setup_topics
write_config
"$TF" gen --count 800 --customers 200 --seed 31 --file "$WORK/events.jsonl" 2>/dev/null
head -n 200 "$WORK/events.jsonl" >"$WORK/a.jsonl"
sed -n '201,800p' "$WORK/events.jsonl" >"$WORK/b.jsonl"
LAGGED=600

# Headless Chromium, bounded in time; the page polls every second and virtual time
# lets several polls happen before the DOM is taken.
browser() {
  timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --disable-extensions \
    --disable-dev-shm-usage --user-data-dir="$WORK/chromium" --virtual-time-budget=5000 "$@" \
    2>>"$WORK/chromium.log"
}

# Waits until every partition of the input topic has its lag from librdkafka's
# statistics (committed offsets known) and the total is $1; saves /status.
wait_status_lag() {
  local want=$1 deadline=$((SECONDS + 45))
  while [ $SECONDS -lt $deadline ]; do
    if curl -sf --max-time 5 "$OPS/status" >"$WORK/status.json" && python3 - "$WORK/status.json" "$IN" "$want" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
parts = [p for p in s["partitions"] if p["topic"] == sys.argv[2]]
ok = (len(parts) == 4 and all(p["lag_source"] == "statistics" and p["committed"] is not None for p in parts)
      and sum(p["lag"] for p in parts) == int(sys.argv[3]) and s["total_lag"] == int(sys.argv[3]))
sys.exit(0 if ok else 1)
PY
    then return 0; fi
    sleep 1
  done
  echo "  /status never showed a total lag of $want: $(head -c 600 "$WORK/status.json")" >&2
  return 1
}

# Compares the rendered page ($1) with /status ($2): $3 = expected total lag, $4 =
# expected #catch-up data-seconds, $5 = expected consume rate ("" = any).
page_matches() {
  python3 - "$1" "$2" "$IN" "$3" "$4" "$5" <<'PY'
import json, sys
from html.parser import HTMLParser
dom, status, topic, want_lag, want_catch, want_rate = sys.argv[1:7]
class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.by_id, self.cells, self.text, self.cur = {}, {}, {}, None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.by_id[a["id"]] = a
            self.cur = a["id"]
        if tag == "td" and a.get("data-field"):
            self.cells[(a["data-topic"], int(a["data-partition"]), a["data-field"])] = a.get("data-value")
    def handle_data(self, data):
        if self.cur:
            self.text[self.cur] = self.text.get(self.cur, "") + data
    def handle_endtag(self, tag):
        self.cur = None
p = P()
p.feed(open(dom).read())
s = json.load(open(status))
bad = []
def expect(what, got, want):
    if got != want:
        bad.append("%s: page %r, expected %r" % (what, got, want))
expect("#total-lag", p.by_id.get("total-lag", {}).get("data-value"), want_lag)
expect("#catch-up", p.by_id.get("catch-up", {}).get("data-seconds"), want_catch)
if want_catch == "inf":
    expect("#catch-up text", p.text.get("catch-up", "").strip(), "\u221e")
if want_catch == "0":
    expect("#catch-up text", p.text.get("catch-up", "").strip(), "caught up")
rate = p.by_id.get("consume-rate", {}).get("data-value")
if want_rate:
    expect("#consume-rate", rate, want_rate)
elif not rate:
    bad.append("#consume-rate: no rate rendered")
parts = [x for x in s["partitions"] if x["topic"] == topic]
if len(parts) != 4:
    bad.append("/status has %d partitions of %s" % (len(parts), topic))
for x in parts:
    for field in ("lag", "committed", "high_watermark"):
        want = "" if x[field] is None else str(x[field])
        expect("partition %d %s" % (x["partition"], field), p.cells.get((topic, x["partition"], field)), want)
if bad:
    print("  " + "\n  ".join(bad))
sys.exit(1 if bad else 0)
PY
}

start_daemon
OPS=$(ops_url) || { echo "FAILED - no ops listener"; finish; }
echo "dashboard: $OPS/"
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$OPS/readyz")" = 200 ]; }
wait_ready() { local i; for i in $(seq 120); do ready && return 0; sleep 0.5; done; return 1; }
check "touchflowd ready" wait_ready

# Every partition gets a committed offset first, so that the lag is the statistics'
# high watermark minus committed offset.
"$TF" produce -t "$IN" "$WORK/a.jsonl" 2>/dev/null
check "200 records processed with Redis up" wait_processed 200 60
check "/status: total lag 0, committed offsets on all 4 partitions" wait_status_lag 0

# Real lag that stays put: Redis hangs, $LAGGED records arrive.
kill -STOP "$(own_redis_pid "$rport")"
"$TF" produce -t "$IN" "$WORK/b.jsonl" 2>/dev/null
check "/status: total lag $LAGGED while Redis hangs" wait_status_lag "$LAGGED"
browser --dump-dom "$OPS/" >"$WORK/dom.html"
check "Chromium rendered the dashboard" grep -q 'id="total-lag"' "$WORK/dom.html"
check "page: total lag $LAGGED, rate 0, catch-up infinite, per-partition figures equal /status" \
  page_matches "$WORK/dom.html" "$WORK/status.json" "$LAGGED" inf 0.0
shot="$ARTIFACTS/dashboard-lag.png"
rm -f "$shot"
browser --screenshot="$shot" --window-size=1200,800 --hide-scrollbars "$OPS/" >/dev/null
png_ok() { [ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -c | tr -d ' ')" = '211PNG\r\n032\n' ] && [ "$(stat -c %s "$1")" -gt 10000 ]; }
check "screenshot saved: $shot" png_ok "$shot"

# Redis back: the backlog is worked off and the page says so.
kill -CONT "$(own_redis_pid "$rport")"
check "Redis back: all 800 records processed" wait_processed 800 90
check "/status: total lag back to 0" wait_status_lag 0
browser --dump-dom "$OPS/" >"$WORK/dom2.html"
check "page after catching up: total lag 0, \"caught up\", figures equal /status" \
  page_matches "$WORK/dom2.html" "$WORK/status.json" 0 0 ""
shot2="$ARTIFACTS/dashboard-caught-up.png"
browser --screenshot="$shot2" --window-size=1200,800 --hide-scrollbars "$OPS/" >/dev/null
check "screenshot saved: $shot2" png_ok "$shot2"

check "SIGTERM: the daemon exits 0" stop_daemon
[ "$FAILURES" -ne 0 ] && { echo "--- chromium log tail"; tail -n 20 "$WORK/chromium.log"; }
finish
