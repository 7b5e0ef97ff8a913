#!/usr/bin/env bash
# Population figures end to end, on the real broker and Redis, on stream time: a
# known population of eight customers on one partition (buyers, an exit with a
# reason and one without, a win-back, complaints handled in time and escalated
# twice, surveys, a campaign before a purchase and one after). The figures are asserted exactly,
# from `touchflow stats --json`, `touchflow stats`, /figures and /metrics, against
# figures worked out by hand and against the stage changes on the lifecycle topic.
# Then the same input is replayed into a fresh key prefix with batches of one
# record: the figures are the same, field for field.
set -uo pipefail
# shellcheck disable=SC2034 # read by lib.sh
E2E_CLOCK=stream
source "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "curl not installed: skipping"; exit 77; }

setup_topics
IN="$IN.one"
create_topic "$IN" 1
E2E_OPS_LISTEN=127.0.0.1:0
write_config_figures() {
  write_config && python3 - "$WORK/touchflow.json" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["figures"] = {"windows_days": [1, 3, 30], "refresh_s": 1}
json.dump(cfg, open(sys.argv[1], "w"), indent=1)
PY
}
write_config_figures

R=$RUN_ID
python3 - "$R" >"$WORK/input.jsonl" <<'PY'
import json, sys
r = sys.argv[1]
n = 0
def ev(who, t, kind, data=None):
    global n
    n += 1
    print(json.dumps({"specversion": "1.0", "id": "fig-%d" % n, "source": "/e2e/figures", "type": "touchpoint." + kind,
                      "subject": "%s.%s" % (who, r), "time": t, "data": data or {}}))
def buy(who, t, amount=20000):
    ev(who, t, "purchase", {"order_id": "o-%d" % (n + 1), "amount": amount, "currency": "CNY", "channel": "web"})
ev("a1", "2025-06-02T09:00:00Z", "web_visit", {"channel": "web"})
ev("a2", "2025-06-02T09:05:00Z", "web_visit", {"channel": "web", "campaign": "summer"})
ev("a6", "2025-06-02T09:10:00Z", "web_visit", {"channel": "app"})
ev("a7", "2025-06-02T09:15:00Z", "web_visit", {"channel": "app"})
buy("a3", "2025-06-02T10:00:00Z")
buy("a4", "2025-06-02T10:05:00Z")
buy("a5", "2025-06-02T10:10:00Z")
buy("a2", "2025-06-03T08:00:00Z")
ev("a3", "2025-06-03T09:00:00Z", "survey", {"expectation": 8, "perception": 6, "nps": 9})
ev("a6", "2025-06-03T10:00:00Z", "complaint", {"complaint_id": "k6", "category": "quality", "severity": "critical"})
ev("a7", "2025-06-03T10:00:00Z", "complaint", {"complaint_id": "k7", "category": "shipping", "severity": "critical"})
ev("a6", "2025-06-03T11:00:00Z", "complaint_update", {"complaint_id": "k6", "status": "acknowledged"})
ev("a6", "2025-06-03T11:30:00Z", "survey", {"expectation": 5, "perception": 5, "nps": 3})
ev("a7", "2025-06-03T15:00:00Z", "survey", {"nps": 7})
ev("a3", "2025-06-04T08:00:00Z", "email", {"action": "open", "campaign": "autumn"})
ev("a4", "2025-06-04T09:00:00Z", "contract_end", {"reason": "price"})
ev("a5", "2025-06-04T09:30:00Z", "contract_end")
buy("a5", "2025-06-06T10:00:00Z")
ev("clock", "2025-06-06T12:00:00Z", "web_visit", {"channel": "web"})
PY
total=$(wc -l <"$WORK/input.jsonl")
check "all $total touchpoints produced" "$TF" produce -t "$IN" "$WORK/input.jsonl"

start_daemon
check "touchflowd processes all $total touchpoints" wait_processed "$total" 60
check "no dead letters" test "$(stat_of dead_lettered)" = 0
check "timers due by the stream's time have fired" wait_settled 60
OPS=$(ops_url)

figures_settled() { # the view has caught up with what was applied: two reads agree
  "$TF" -c "$WORK/touchflow.json" stats --json >"$WORK/stats.a.json" 2>>"$WORK/stats.err" &&
    sleep 1.5 &&
    curl -sf --max-time 5 "$OPS/figures" >"$WORK/figures.json" &&
    python3 - "$WORK/stats.a.json" "$WORK/figures.json" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
b.pop("read_age_ms"); b.pop("read_errors")
sys.exit(0 if a == b else 1)
PY
}
check "/figures serves what touchflow stats --json reads" wait_for 30 figures_settled
curl -sf --max-time 5 "$OPS/metrics" >"$WORK/metrics.txt"
"$TF" -c "$WORK/touchflow.json" stats >"$WORK/stats.txt" 2>>"$WORK/stats.err"
for c in a1 a2 a3 a4 a5 a6 a7 clock; do
  "$TF" -c "$WORK/touchflow.json" customer get "$c.$R" >"$WORK/customer.$c.json" 2>>"$WORK/stats.err"
done
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$CHROMIUM" ]; then
  BUILD_DIR=$(cd "$(dirname "$TFD")/.." && pwd)
  ARTIFACTS=${E2E_ARTIFACTS:-$BUILD_DIR/Testing/artifacts}
  mkdir -p "$ARTIFACTS"
  browser() {
    timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
      --disable-background-networking --disable-component-update --disable-sync --disable-extensions \
      --disable-dev-shm-usage --user-data-dir="$WORK/chromium" --virtual-time-budget=4000 "$@" \
      2>>"$WORK/chromium.log"
  }
  browser --dump-dom "$OPS/" >"$WORK/page.html"
  page_exact() {
    python3 - "$WORK/page.html" "$WORK/stats.a.json" <<'PY'
import json, sys
from html.parser import HTMLParser
v = json.load(open(sys.argv[2]))
els = []
class P(HTMLParser):
    def handle_starttag(self, tag, attrs):
        els.append((tag, dict(attrs)))
P().feed(open(sys.argv[1]).read())
byid = {a["id"]: a for t, a in els if "id" in a}
bad = []
def want(what, got, exp):
    if got != exp:
        bad.append("%s: got %r, want %r" % (what, got, exp))
want("section shown", "hidden" in byid.get("population", {"hidden": ""}), False)
want("active", byid["fig-active"].get("data-value"), str(v["active"]))
w0 = v["windows"][0]
num = lambda x: None if x in (None, "") else float(x)
want("churn card", (num(byid["fig-churn"].get("data-value")), byid["fig-churn"].get("data-window-days")),
     (w0["churn_rate"], str(w0["days"])))
stages = {a["data-stage"]: int(a["data-value"]) for t, a in els if "data-stage" in a}
want("stage bars", stages, v["stages"])
rows = {a["data-window-days"]: (num(a["data-churn-rate"]), num(a["data-retention-rate"]))
        for t, a in els if t == "tr" and "data-window-days" in a}
want("window rows", rows, {str(w["days"]): (w["churn_rate"], w["retention_rate"]) for w in v["windows"]})
days = [(a["data-day"], int(a["data-active"]), int(a["data-new"]), int(a["data-churned"])) for t, a in els if "data-day" in a]
want("trend", days, [(d["day"], d["active"], d["new"], d["churned"]) for d in v["daily"]])
keys = {a["data-key"]: a["data-value"] for t, a in els if "data-key" in a}
want("exit reasons", {k: x for k, x in keys.items() if k.startswith("exit:")}, {"exit:" + k: str(n) for k, n in v["exits"].items()})
want("sla", keys.get("sla_compliance"), "50.0%")
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
  }
  check "the dashboard draws the figures (stages, trend, windows, complaints, exits)" page_exact
  shot="$ARTIFACTS/figures-dashboard.png"
  browser --screenshot="$shot" --window-size=1200,1400 --hide-scrollbars "$OPS/" >/dev/null
  check "screenshot saved: $shot" test -s "$shot"
else
  echo "chromium not installed: the dashboard checks are skipped (deploy/dev/install-deps.sh)"
fi
check "SIGTERM drains and exits 0" stop_daemon
consume_out lifecycle "$WORK/lifecycle.jsonl"
consume_out complaint "$WORK/complaint.jsonl"

figures_exact() {
  python3 - "$WORK" "$R" <<'PY'
import datetime, json, sys
from collections import Counter
work, r = sys.argv[1:3]
v = json.load(open(work + "/stats.a.json"))
bad = []
def want(what, got, exp):
    if got != exp:
        bad.append("%s: got %r, want %r" % (what, got, exp))
# By hand, from the input.
want("customers", v["customers"], 8)
want("nps", v["nps"], {"promoters": 1, "passives": 1, "detractors": 1, "score": 0.0})
want("satisfaction", v["satisfaction"], {"customers": 2, "average": 87.5})
want("exits", v["exits"], {"price": 1, "unspecified": 1})
# a2 bought the day after a "summer" visit; a3 opened "autumn" after its only purchase.
want("campaigns", v["campaigns"], {"summer": 1})
cp = v["complaints"]
want("complaints by category", cp["by_category"], {"quality": 1, "shipping": 1})
want("complaints by severity", cp["by_severity"], {"critical": 2})
want("complaints sla", (cp["in_time"], cp["escalated_level1"], cp["escalated_level2"], cp["sla_compliance"]), (1, 1, 1, 0.5))
want("as_of", v["as_of"], "2025-06-06")
# Stages: as each customer's own state says.
stages = Counter(json.load(open("%s/customer.%s.json" % (work, c)))["stage"] for c in
                 ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "clock"])
want("stages", {k: n for k, n in v["stages"].items() if n}, dict(stages))
want("active", v["active"], 8 - stages["churned"])
# Escalations: as many as the complaint topic carries.
levels = Counter()
for line in open(work + "/complaint.jsonl"):
    if line.strip():
        e = json.loads(json.loads(line)["value"])
        if e["type"] == "touchflow.complaint.escalated":
            levels[e["data"]["level"]] += 1
want("escalations on the topic", (levels[1], levels[2]), (cp["escalated_level1"], cp["escalated_level2"]))
# Flows per day: the stage changes on the lifecycle topic, and each customer's first day.
entered, left = Counter(), Counter()
for line in open(work + "/lifecycle.jsonl"):
    if line.strip():
        e = json.loads(json.loads(line)["value"])
        if e["type"] == "touchflow.lifecycle.stage_changed":
            day = e["time"][:10]
            entered[(e["data"]["to"], day)] += 1
            left[(e["data"]["from"], day)] += 1
first = {}
for line in open(work + "/input.jsonl"):
    e = json.loads(line)
    first.setdefault(e["subject"], e["time"][:10])
new = Counter(first.values())
for d in new:
    entered[("prospect", d)] += new[d]
daily = {x["day"]: x for x in v["daily"]}
for (stage, day), n in entered.items():
    want("entered %s on %s" % (stage, day), daily[day]["entered"][stage], n)
for day, x in daily.items():
    want("new on " + day, x["new"], new.get(day, 0))
    want("churned on " + day, x["churned"], entered.get(("churned", day), 0))
    want("won back on " + day, x["won_back"], left.get(("churned", day), 0))
# Windows, from those flows.
as_of = datetime.date(2025, 6, 6)
active = v["active"]
for w in v["windows"]:
    days = [str(as_of - datetime.timedelta(d)) for d in range(w["days"])]
    nw = sum(new.get(d, 0) for d in days)
    ch = sum(entered.get(("churned", d), 0) for d in days)
    wb = sum(left.get(("churned", d), 0) for d in days)
    start = active - nw - wb + ch
    exp = {"days": w["days"], "from": days[-1], "start": start, "new": nw, "won_back": wb, "churned": ch, "end": active,
           "churn_rate": ch / start if start > 0 else None,
           "retention_rate": (active - nw - wb) / start if start > 0 else None}
    want("window %d" % w["days"], w, exp)
want("a window with churn", [w["churned"] for w in v["windows"]][1] > 0, True)
want("a window without a base", [w["churn_rate"] for w in v["windows"]][2], None)
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
}
check "the figures are exact (by hand, by customer get, by the derived events)" figures_exact

metrics_exact() {
  python3 - "$WORK/metrics.txt" "$WORK/stats.a.json" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
v = json.load(open(sys.argv[2]))
series = {}
for line in text.splitlines():
    if line and not line.startswith("#"):
        name, value = line.rsplit(" ", 1)
        series[name] = float(value)
bad = []
def want(name, exp):
    got = series.get(name)
    if got is None or abs(got - exp) > 1e-12:
        bad.append("%s: got %r, want %r" % (name, got, exp))
want("touchflow_population_known_customers", v["customers"])
for stage, n in v["stages"].items():
    want('touchflow_population_customers{stage="%s"}' % stage, n)
for w in v["windows"]:
    if w["churn_rate"] is not None:
        want('touchflow_population_churn_rate{window_days="%d"}' % w["days"], w["churn_rate"])
        want('touchflow_population_retention_rate{window_days="%d"}' % w["days"], w["retention_rate"])
    want('touchflow_population_window_customers{window_days="%d",flow="start"}' % w["days"], w["start"])
want('touchflow_population_nps_answers_total{class="promoter"}', 1)
want("touchflow_population_satisfaction_average", 87.5)
want('touchflow_population_complaint_sla_total{outcome="escalated_level2"}', 1)
want("touchflow_population_complaint_sla_compliance", 0.5)
want('touchflow_population_exits_total{reason="price"}', 1)
want('touchflow_population_complaints_total{category="quality"}', 1)
want('touchflow_population_attributed_purchases_total{campaign="summer"}', 1)
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
}
check "/metrics carries the same figures" metrics_exact
if command -v promtool >/dev/null; then
  check "promtool accepts /metrics" promtool check metrics <"$WORK/metrics.txt"
fi
check "touchflow stats prints the table" grep -qE '^churned +1 ' "$WORK/stats.txt"
check "the table shows the 3-day window's churn rate" grep -qE '^3d +2025-06-04 .* 28\.6% ' "$WORK/stats.txt"

# The same input into a fresh prefix, one record a batch: the same figures.
PREFIX="$PREFIX"replay:
GROUP="$GROUP.replay"
E2E_BATCH_MAX=1
write_config_figures
: >"$WORK/touchflowd.log"
start_daemon
check "the replay processes all $total touchpoints" wait_processed "$total" 90
check "the replay's timers have fired" wait_settled 60
check "the replay's figures are the same" bash -c '"$0" -c "$1/touchflow.json" stats --json >"$1/stats.b.json" &&
  cmp -s "$1/stats.a.json" "$1/stats.b.json" || { diff "$1/stats.a.json" "$1/stats.b.json" | head -20; exit 1; }' "$TF" "$WORK"
check "SIGTERM drains and exits 0 (replay)" stop_daemon

check "a Redis that cannot be reached is named" bash -c '! "$0" -r redis://127.0.0.1:1 stats --timeout-ms 1500 2>"$1/err.txt" &&
  grep -q "Redis at redis://127.0.0.1:1" "$1/err.txt"' "$TF" "$WORK"
finish
