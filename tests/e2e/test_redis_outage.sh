#!/usr/bin/env bash
# Redis hung (SIGSTOP) and then gone (killed): touchflowd pauses, commits nothing,
# stays alive with bounded memory, and resumes by itself when Redis is back; in the
# end every customer's counts are exact.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

# A Redis of this test's own, persisted to an append-only file so a restart keeps
# what was committed.
port=$((21000 + $$ % 20000))
mkdir -p "$WORK/redis"
start_redis() {
  redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK/redis" --appendonly yes \
    --appendfsync always --save '' --daemonize yes --pidfile "$WORK/redis/pid" --logfile "$WORK/redis/log"
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
redis_pid() { cat "$WORK/redis/pid" 2>/dev/null; }
cleanup_redis() {
  local pid
  pid=$(redis_pid) || return 0
  kill -CONT "$pid" 2>/dev/null
  kill -9 "$pid" 2>/dev/null
  return 0
}
trap cleanup_redis EXIT
start_redis
export TOUCHFLOW_REDIS_URL="redis://127.0.0.1:$port"

setup_topics
write_config
"$TF" gen --count 3000 --customers 300 --seed 11 --file "$WORK/events.jsonl" 2>/dev/null
split -l 1000 -d "$WORK/events.jsonl" "$WORK/part"

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$DAEMON_PID/status"; }

start_daemon
"$TF" produce -t "$IN" "$WORK/part00" 2>/dev/null
check "first third processed with Redis up" wait_processed 1000 60

# ---- hung ----
kill -STOP "$(redis_pid)"
"$TF" produce -t "$IN" "$WORK/part01" 2>/dev/null
sleep 6
commits_hung=$(stat_of commits)
sleep 3
check "hung Redis: consumption paused" grep -q '"msg":"pausing consumption"' "$WORK/touchflowd.log"
check "hung Redis: nothing committed meanwhile" test "$(stat_of commits)" = "$commits_hung"
check "hung Redis: the daemon is alive" kill -0 "$DAEMON_PID"
check "hung Redis: memory stays bounded (RSS $(rss_kib) KiB < 256 MiB)" test "$(rss_kib)" -lt 262144
kill -CONT "$(redis_pid)"
check "Redis back: the second third is processed" wait_processed 2000 60

# ---- gone ----
kill -9 "$(redis_pid)"
sleep 0.5
"$TF" produce -t "$IN" "$WORK/part02" 2>/dev/null
sleep 4
check "Redis gone: the daemon is alive" kill -0 "$DAEMON_PID"
check "Redis gone: paused" test "$(stat_of paused)" = 1
start_redis
check "Redis restarted: everything processed" wait_processed 3000 90
check "counts exact after a hang and a restart of Redis" counts_exact "$WORK/events.jsonl" verbose
check "reconnects were logged" grep -q 'redis 127.0.0.1:'"$port"' up' "$WORK/touchflowd.log"
check "SIGTERM exits 0" stop_daemon

cleanup_redis
finish
