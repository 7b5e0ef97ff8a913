#!/usr/bin/env bash
# touchflow dlq replay against the real broker: dead letters filtered by reason are
# re-sent as their original records (tf-* headers removed, tf-replayed-from added),
# once per replay group; --dry-run lists and commits nothing.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

setup_topics
write_config
malformed="$ROOT/config/samples/malformed.jsonl"
"$TF" produce -t "$IN" --raw "$malformed" 2>/dev/null
start_daemon
check "the three malformed records are dead-lettered" wait_processed 3 60
check "SIGTERM exits 0" stop_daemon

replay() { "$TF" -c "$WORK/touchflow.json" dlq replay --idle-ms 2500 "$@"; }
check "dry run lists exactly the invalid_json record" bash -c \
  "$(declare -f replay); TF='$TF' WORK='$WORK'; out=\$(replay --reason invalid_json --dry-run 2>/dev/null); [ \$(printf '%s\n' \"\$out\" | grep -c '\"reason\":\"invalid_json\"') = 1 ] && [ \$(printf '%s\n' \"\$out\" | grep -c .) = 1 ]"

TARGET="e2e.replayed.$RUN_ID"
create_topic "$TARGET" 1
check "replay of unknown_type succeeds" replay --reason unknown_type --to-topic "$TARGET"
"$TF" consume --from-beginning --idle-ms 2000 --timeout-ms 20000 -t "$TARGET" >"$WORK/replayed.jsonl" 2>/dev/null
replayed_ok() {
  python3 - "$WORK/replayed.jsonl" "$malformed" "$DLQ" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
orig = [l.rstrip("\n") for l in open(sys.argv[2])]
ok = (len(recs) == 1 and recs[0]["value"] == orig[1]
      and recs[0]["headers"].get("tf-replayed-from", "").startswith(sys.argv[3] + "/")
      and not any(k.startswith("tf-error") or k.startswith("tf-source") for k in recs[0]["headers"]))
if not ok:
    print("  replayed:", recs)
sys.exit(0 if ok else 1)
PY
}
check "exactly the original unknown_type record arrives, with tf-replayed-from" replayed_ok
check "a second replay of the same reason replays nothing" bash -c \
  "$(declare -f replay); TF='$TF' WORK='$WORK'; replay --reason unknown_type --to-topic '$TARGET' 2>&1 | grep -q 'replayed 0 of 0'"
check "an unknown reason is a usage error (exit 2)" bash -c "'$TF' -c '$WORK/touchflow.json' dlq replay --reason nope 2>/dev/null; [ \$? = 2 ]"
finish
