#!/usr/bin/env bash
# Fault: a dead letter Kafka refuses as too large. The producer may send at most
# 3,000 bytes (message.max.bytes), and a 20,014-byte record that is not JSON comes
# in: its dead-letter copy is refused, so a copy of its first 1,024 bytes goes
# instead, with the header tf-truncated naming the original length; the partition
# keeps moving (the good records after it are applied) and nothing loops.
set -uo pipefail
# shellcheck disable=SC2034 # read by lib.sh
E2E_PRODUCER='{"message.max.bytes": "3000"}'
source "$(dirname "$0")/../e2e/lib.sh"
started=$SECONDS

setup_topics
write_config
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
with open(work + "/big.txt", "w") as f:
    f.write('{"not json": "' + "x" * 20000 + "\n")
with open(work + "/good.jsonl", "w") as f:
    for i in range(5):
        f.write(json.dumps({"specversion": "1.0", "id": "g%d" % i, "source": "/web/shop-cn",
                            "type": "touchpoint.web_visit", "subject": "cust-%d" % i,
                            "time": "2026-03-01T10:00:00Z", "data": {}}) + "\n")
PY
"$TF" produce -t "$IN" --raw "$WORK/big.txt" >/dev/null 2>&1
"$TF" produce -t "$IN" "$WORK/good.jsonl" >/dev/null 2>&1
echo "# injected: a 20,014-byte record that is not JSON; the producer sends at most 3,000 bytes"
start_daemon
check "the big record dead-lettered and the 5 good ones applied" wait_processed 6 60
check "the 5 good ones applied" test "$(stat_of applied)" = 5
check "the refusal is logged" grep -q 'refused as too large; sending its first 1024 bytes' "$WORK/touchflowd.log"
"$TF" consume --from-beginning --idle-ms 2000 --timeout-ms 20000 -t "$DLQ" >"$WORK/dlq.jsonl" 2>/dev/null
truncated() {
  python3 - "$WORK/dlq.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in rows:
    h = r.get("headers", {})
    print("  dead letter: %d bytes, tf-error-code %s, tf-truncated %s" % (len(r["value"]), h.get("tf-error-code"), h.get("tf-truncated")))
ok = len(rows) == 1 and len(rows[0]["value"]) == 1024 and rows[0]["headers"].get("tf-truncated") == "20014" \
    and rows[0]["headers"].get("tf-error-code") == "invalid_json" and rows[0]["value"].startswith('{"not json"')
sys.exit(0 if ok else 1)
PY
}
check "one dead letter: its first 1,024 bytes, tf-truncated 20014 (its length), the reason kept" truncated
check "no retry loop: one refusal logged" test "$(grep -c 'refused as too large' "$WORK/touchflowd.log")" = 1
check "SIGTERM exits 0" stop_daemon

echo "# took $((SECONDS - started)) s"
good=$(stat_of applied)
fault_line "dead letter too large for the DLQ" 6 $((good < 5 ? 5 - good : 0)) $((good > 5 ? good - 5 : 0)) \
  $((1 - $(wc -l <"$WORK/dlq.jsonl"))) -
finish
