#!/usr/bin/env bash
# End to end on the real broker and Redis: every derived event touchflowd emits is
# decoded by two CloudEvents SDKs nobody here wrote, through their Kafka protocol
# bindings on a real consumer:
#   python  cloudevents (PyPI): cloudevents.core.bindings.kafka from_structured /
#           from_binary, the mode picked from content-type as the binding says
#           (tests/e2e/sdk/ce_read.py, on confluent-kafka)
#   java    io.cloudevents:cloudevents-kafka CloudEventDeserializer as the value
#           deserializer of a KafkaConsumer, cloudevents-json-jackson for the
#           structured format (tests/e2e/sdk/java)
# The input, on stream time, is a year of many archetypes (tests/e2e/year.py: volume,
# nine of the ten types) and, on a second input topic with its own partition clocks,
# the archetype journeys of tests/e2e/archetypes.py (a churn warning cleared by a
# purchase among them), so that every derived type the engine has (pkg/event/names.c)
# fires. It runs twice, each into fresh output topics: kafka.output_mode left at its
# default (structured), then binary. Per mode: both SDKs decode all N records that
# `touchflow consume` reads (N = the daemon's derived count), with the same ids, types,
# subjects, sources, times and data, keyed by subject; the headers are the binding's;
# every derived type appears. In binary mode the data must also equal the structured
# run's data of the same id (ids are deterministic).
# The SDKs are built by tests/e2e/sdk/build.sh (cached): one that cannot be built is
# a failure, not a skip.
set -uo pipefail
# shellcheck disable=SC2034 # read by lib.sh
E2E_CLOCK=stream
E2E_SCAN_MS=${E2E_SCAN_MS:-100}
# Tiers rank a population of 20 (each partition holds 30 to 50 buyers), as in
# test_determinism.sh, so that tier changes fire; a segment of recent buyers, so
# that segment entries and exits fire.
E2E_RULES='{"tiers": {"min_population": 20}, "segments": [{"name": "recent_buyer", "when": [{"field": "days_since_purchase", "max": 30}]}]}'
source "$(dirname "$0")/lib.sh"
started=$SECONDS

if ! sdk_env=$(bash "$E2E_DIR/sdk/build.sh"); then
  check "the CloudEvents SDK readers build (tests/e2e/sdk/build.sh)" false
  finish
fi
eval "$sdk_env"
java=java
[ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && java=$JAVA_HOME/bin/java
py_ver=$("$SDK_PYTHON" -c 'import importlib.metadata as m; print(m.version("cloudevents"))')
java_ver=$(cd "$(dirname "${SDK_JAVA_CP%%:*}")/lib" && ls cloudevents-kafka-*.jar | sed 's/cloudevents-kafka-\(.*\)\.jar/\1/')

# Two input topics of 4 partitions (archetypes.py computes its partitions for 4).
IN2="$IN.arch"
create_topic "$IN" 4
create_topic "$IN2" 4
create_topic "$DLQ" 1
python3 "$E2E_DIR/year.py" input >"$WORK/year.jsonl"
python3 "$E2E_DIR/archetypes.py" input >"$WORK/arch.jsonl"
total=$(cat "$WORK/year.jsonl" "$WORK/arch.jsonl" | wc -l)
check "the journeys are produced" eval '"$TF" produce -t "$IN" "$WORK/year.jsonl" >/dev/null 2>&1 &&
  "$TF" produce -t "$IN2" "$WORK/arch.jsonl" >/dev/null 2>&1'
# Every derived type the engine can emit, from its name table.
sed -n 's/^ *{ *"\(touchflow\.[a-z_]*\.[a-z_]*\)", *"[a-z]*" *},.*/\1/p' "$ROOT/pkg/event/names.c" >"$WORK/types.txt"
check "the engine's derived types are listed in pkg/event/names.c" test -s "$WORK/types.txt"

BASE_GROUP=$GROUP BASE_PREFIX=$PREFIX BASE_OUT=$OUT_PREFIX

# Compares the SDK readers' lines with what `touchflow consume` read, for mode $1.
compare() {
  python3 - "$1" "$WORK" "$OUT_PREFIX" <<'PY'
import json, sys
from datetime import datetime, timezone
mode, work, prefix = sys.argv[1:4]

def utc_ms(s):  # any RFC 3339 time -> UTC with milliseconds, as the readers print it
    t = datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)

def lines(name):
    return [json.loads(l) for l in open("%s/%s" % (work, name)) if l.strip()]

types = set(open(work + "/types.txt").read().split())
fails = []
# touchflow's own view of each record, by topic/partition/offset.
want = {}
for r in lines("tf-%s.jsonl" % mode):
    h = r.get("headers") or {}
    if mode == "structured":
        ev = json.loads(r["value"])
        view = {k: ev.get(k) for k in ("id", "type", "subject", "source")}
        view["time"], view["data"] = utc_ms(ev["time"]), ev.get("data")
        hw = {"content-type": "application/cloudevents+json; charset=UTF-8",
              "tf-id": ev["id"], "tf-type": ev["type"], "tf-subject": ev["subject"]}
        bad_h = [k for k in hw if h.get(k) != hw[k]] + [k for k in h if k not in hw]
    else:
        view = {k: h.get("ce_" + k) for k in ("id", "type", "subject", "source")}
        view["time"], view["data"] = utc_ms(h["ce_time"]), json.loads(r["value"])
        hw = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "content-type",
              "tf-id", "tf-type", "tf-subject")
        bad_h = [k for k in hw if k not in h] + [k for k in h if k not in hw]
        bad_h += [k for k in ("id", "type", "subject") if h.get("tf-" + k) != h.get("ce_" + k)]
        if h.get("ce_specversion") != "1.0" or h.get("content-type") != "application/json":
            bad_h.append("ce_specversion/content-type values")
    if bad_h:
        fails.append("headers of %s/%d@%d: %s (have %s)" % (r["topic"], r["partition"], r["offset"], bad_h, sorted(h)))
    want[(r["topic"], r["partition"], r["offset"])] = dict(view, key=r["key"])
seen = {v["type"] for v in want.values()}
if seen != types:
    fails.append("derived types: missing %s, not in the engine's list %s" % (sorted(types - seen), sorted(seen - types)))
for (topic, _, _), v in want.items():
    if topic != prefix + "." + v["type"].split(".")[1]:
        fails.append("%s on topic %s" % (v["id"], topic))

structured = {}
if mode == "binary":  # the structured run's data, by id
    for r in lines("tf-structured.jsonl"):
        ev = json.loads(r["value"])
        structured[ev["id"]] = ev["data"]

summary = {}
for sdk in ("python", "java"):
    got = {(g["topic"], g["partition"], g["offset"]): g for g in lines("%s-%s.jsonl" % (sdk, mode))}
    bad = []
    if set(got) != set(want):
        bad.append("records: %d only in touchflow consume, %d only in the %s reader" % (
            len(set(want) - set(got)), len(set(got) - set(want)), sdk))
    for k in sorted(set(got) & set(want)):
        g, w = got[k], want[k]
        diff = [f for f in ("id", "type", "subject", "source", "time", "data", "key") if g.get(f) != w[f]]
        if g["key"] != g["subject"]:
            diff.append("key!=subject")
        if g["mode"] != mode:
            diff.append("mode %s" % g["mode"])
        if mode == "binary" and structured.get(g["id"]) != g["data"]:
            diff.append("data differs from the structured run's")
        if diff:
            bad.append("%s/%d@%d %s: %s" % (k[0], k[1], k[2], g["id"], diff))
    for b in bad[:5]:
        fails.append("%s: %s" % (sdk, b))
    summary[sdk] = (len(got), len(bad))
for f in fails[:20]:
    print("  " + f)
json.dump({"n": len(want), "types": len(seen), "sdk": summary}, open("%s/summary-%s.json" % (work, mode), "w"))
sys.exit(1 if fails else 0)
PY
}

# A reader's verdict (its own lines naming the records), else the end of its stderr.
reader_errors() {
  { grep -E '^(ce_read\.py|CeRead):' "$1" || tail -n 10 "$1"; } | head -n 25 | sed 's/^/  | /'
}

# One run: fresh group, key prefix and output topics; output_mode $1 ("" = default).
run_mode() {
  local mode=$1 name=${1:-structured} outs="" f n
  GROUP="$BASE_GROUP.$name" PREFIX="$BASE_PREFIX$name:" OUT_PREFIX="$BASE_OUT.$name"
  for f in $FAMILIES; do
    create_topic "$OUT_PREFIX.$f" 1
    outs="$outs $OUT_PREFIX.$f"
  done
  E2E_OUTPUT_MODE=$mode write_config && python3 - "$WORK/touchflow.json" "$IN2" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["kafka"]["input_topics"].append(sys.argv[2])
json.dump(cfg, open(sys.argv[1], "w"), indent=1)
PY
  : >"$WORK/touchflowd.log"
  start_daemon
  check "$name: all $total touchpoints processed" wait_processed "$total" 120
  check "$name: timers settled" wait_settled 90
  check "$name: SIGTERM exits 0" stop_daemon
  cp "$WORK/touchflowd.log" "$WORK/touchflowd-$name.log"

  # shellcheck disable=SC2086
  "$TF" consume --from-beginning --idle-ms 3000 --timeout-ms 60000 $(printf -- '-t %s ' $outs) \
    >"$WORK/tf-$name.jsonl" 2>/dev/null
  n=$(wc -l <"$WORK/tf-$name.jsonl")
  check "$name: touchflow consume reads every derived event the daemon delivered ($n)" \
    test "$n" -gt 0 -a "$n" = "$(stat_of derived "$WORK/touchflowd-$name.log")"
  [ "$n" -gt 0 ] || return 0
  # Both readers at once: two cores, and the JVM mostly waits on its start-up.
  # shellcheck disable=SC2086
  "$SDK_PYTHON" "$E2E_DIR/sdk/ce_read.py" --brokers "$TOUCHFLOW_KAFKA_BROKERS" --expect "$n" $outs \
    >"$WORK/python-$name.jsonl" 2>"$WORK/python-$name.err" &
  local py=$!
  # shellcheck disable=SC2086
  "$java" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$SDK_JAVA_CP" dev.touchflow.sdkcheck.CeRead "$TOUCHFLOW_KAFKA_BROKERS" "$n" 2000 60000 $outs \
    >"$WORK/java-$name.jsonl" 2>"$WORK/java-$name.err"
  local java_rc=$? py_rc=0
  wait "$py" || py_rc=$?
  check "$name: the Python SDK (cloudevents $py_ver) decodes all $n records" test "$py_rc" = 0
  [ "$py_rc" = 0 ] || reader_errors "$WORK/python-$name.err"
  check "$name: the Java SDK (cloudevents-kafka $java_ver) decodes all $n records" test "$java_rc" = 0
  [ "$java_rc" = 0 ] || reader_errors "$WORK/java-$name.err"
  check "$name: both SDKs see what touchflow consume sees (ids, types, subjects, keys, data), binding headers, every derived type" \
    compare "$name"
  [ -f "$WORK/summary-$name.json" ] || return 0
  python3 - "$WORK/summary-$name.json" "$name" "$py_ver" "$java_ver" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for sdk, what in (("python", "cloudevents " + sys.argv[3]), ("java", "cloudevents-kafka " + sys.argv[4])):
    got, bad = s["sdk"][sdk]
    print("# %s mode, %s SDK (%s): decoded %d of %d derived events, %d differing, %d derived types" % (
        sys.argv[2], sdk, what, got, s["n"], bad, s["types"]))
PY
}

run_mode ""
run_mode binary

echo "# took $((SECONDS - started)) s"
finish
