#!/usr/bin/env bash
# touchflowd scaling benchmark on the clustered services: a Redis Cluster of 3 primaries
# and 3 replicas and a 3-broker Kafka (replication factor 3, min.insync.replicas 2).
# Prints figures; asserts nothing (not a test, not registered with CTest).
#
#   bash tests/bench/cluster.sh [BUILD_DIR]    BUILD_DIR defaults to <repo>/build
#
# Preloads BENCH_EVENTS synthetic events over BENCH_CUSTOMERS customers (`touchflow gen`)
# into one fresh 12-partition input topic, once. Then, for each member count in
# BENCH_MEMBERS, starts that many touchflowd processes together in a fresh consumer
# group with a fresh Redis key prefix (cold state), and measures:
#   - the wall time from their start until every event is applied or dead-lettered
#     (the sum of the members' stats lines; the moment is estimated between two stats
#     lines from the rate before, as run.sh does), hence events/s; the start-up (group
#     joins and rebalances) is inside it, and the rate from the first records consumed
#     on is printed apart;
#   - the CPU time (utime+stime from /proc/PID/stat, sampled at the start and when the
#     last event is done) of each touchflowd, each redis-server node (primary or
#     replica as CLUSTER NODES says at the start of the run) and each Kafka broker,
#     as microseconds per event (cpu_seconds * 1e6 / events) and as a share of a core
#     over that window (100% = one core busy), with totals per kind of process;
#   - each touchflowd's peak RSS (VmHWM), and the group's committed lag after the
#     members stop (0 when every event's offset was committed).
# With BENCH_WAIT=1 (and BENCH_WAIT_REPLICAS not 1) the largest member count runs once
# more with `-o redis.wait_replicas=1`, so the cost of WAIT shows beside the run without.
# Ends with one summary line per run (redis: primaries and replicas together; the
# WAIT run's line also says wait_replicas=1):
#   members=N events/s=... touchflowd_us/ev=... redis_us/ev=... kafka_us/ev=...
#
# Needs TOUCHFLOW_CLUSTER_KAFKA_BROKERS and TOUCHFLOW_CLUSTER_REDIS_URL (a
# redis+cluster:// URL); without them it starts the clustered dev services
# (deploy/dev/services.sh up --cluster) and leaves them running. Topics are created
# with `services.sh topics-create --cluster`, so the brokers must be that cluster's
# (the same TOUCHFLOW_DEV_* variables as when it was started). Node processes are found
# by the pidfiles under TOUCHFLOW_DEV_CLUSTER_DIR (default: what `services.sh env
# --cluster` names), else by Redis' INFO process_id and the broker's listening socket;
# a node whose process is not found on this machine shows no CPU figures. Builds
# BUILD_DIR (Release) when the binaries are missing. Each run's Redis keys are deleted
# after it on every primary (BENCH_KEEP_STATE=1 keeps them); the topics are left
# behind. Logs stay in the printed directory.
#
# Environment: BENCH_EVENTS (200000), BENCH_CUSTOMERS (50000), BENCH_MEMBERS ("1 2 3"),
# BENCH_WAIT_REPLICAS (redis.wait_replicas of every run, 0), BENCH_WAIT (1),
# BENCH_STATS_MS (stats interval, 250), BENCH_TIMEOUT_S (per run, 600),
# BENCH_TOUCHFLOWD_ARGS (extra touchflowd arguments, e.g. "-o processing.batch_max=5000"),
# BENCH_KEEP_STATE=1.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$ROOT/build}
SERVICES="$ROOT/deploy/dev/services.sh"
EVENTS=${BENCH_EVENTS:-200000}
CUSTOMERS=${BENCH_CUSTOMERS:-50000}
MEMBERS=${BENCH_MEMBERS:-1 2 3}
WAIT_REPLICAS=${BENCH_WAIT_REPLICAS:-0}
WAIT_RUN=${BENCH_WAIT:-1}
STATS_MS=${BENCH_STATS_MS:-250}
TIMEOUT_S=${BENCH_TIMEOUT_S:-600}
PARTITIONS=12
# Extra touchflowd arguments (split on blanks).
read -r -a TFD_ARGS <<<"${BENCH_TOUCHFLOWD_ARGS:-}"

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

for v in EVENTS CUSTOMERS STATS_MS TIMEOUT_S; do
  case "${!v}" in ''|*[!0-9]*|0) die "BENCH_$v must be a positive integer, got '${!v}'" ;; esac
done
case "$WAIT_REPLICAS" in ''|*[!0-9]*) die "BENCH_WAIT_REPLICAS must be an integer, got '$WAIT_REPLICAS'" ;; esac
read -r -a MEMBER_COUNTS <<<"$MEMBERS"
[ "${#MEMBER_COUNTS[@]}" -gt 0 ] || die "BENCH_MEMBERS is empty"
MAX_MEMBERS=0
for m in "${MEMBER_COUNTS[@]}"; do
  case "$m" in ''|*[!0-9]*|0) die "BENCH_MEMBERS: '$m' is not a positive integer" ;; esac
  [ "$m" -gt "$MAX_MEMBERS" ] && MAX_MEMBERS=$m
done
command -v python3 >/dev/null 2>&1 || die "python3 is needed to read the stats lines"
command -v redis-cli >/dev/null 2>&1 || die "redis-cli is needed"

# ---- binaries ----
TF="$BUILD/cmd/touchflow"
TFD="$BUILD/cmd/touchflowd"
if [ ! -x "$TF" ] || [ ! -x "$TFD" ]; then
  say "building $BUILD (Release)"
  if ! cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >&2 ||
     ! cmake --build "$BUILD" -j2 --target touchflow touchflowd >&2; then
    die "build failed"
  fi
fi
BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)

# ---- services ----
if [ -n "${TOUCHFLOW_CLUSTER_KAFKA_BROKERS:-}" ] && [ -n "${TOUCHFLOW_CLUSTER_REDIS_URL:-}" ]; then
  TOUCHFLOW_KAFKA_BROKERS=$TOUCHFLOW_CLUSTER_KAFKA_BROKERS
  TOUCHFLOW_REDIS_URL=$TOUCHFLOW_CLUSTER_REDIS_URL
  if [ -z "${TOUCHFLOW_DEV_CLUSTER_DIR:-}" ]; then
    # where services.sh keeps the cluster's pidfiles (printed shell-quoted)
    eval "$(bash "$SERVICES" env --cluster 2>/dev/null | grep '^TOUCHFLOW_DEV_CLUSTER_DIR=')"
  fi
else
  say "TOUCHFLOW_CLUSTER_KAFKA_BROKERS / TOUCHFLOW_CLUSTER_REDIS_URL not set: starting the clustered dev services"
  env_lines=$(bash "$SERVICES" up --cluster) || die "could not start the clustered dev services"
  eval "$env_lines"
fi
CLUSTER_DIR=${TOUCHFLOW_DEV_CLUSTER_DIR:-}
case "$TOUCHFLOW_REDIS_URL" in
  redis+cluster://*) ;;
  *) die "the Redis URL must be a redis+cluster:// URL, got '$TOUCHFLOW_REDIS_URL'" ;;
esac
export TOUCHFLOW_KAFKA_BROKERS TOUCHFLOW_REDIS_URL

# redis-cli talks to single nodes: the seeds and the credentials from the URL.
seeds=${TOUCHFLOW_REDIS_URL#redis+cluster://}
RCLI_USER=()
if [[ $seeds == *@* ]]; then
  userinfo=${seeds%@*}
  seeds=${seeds##*@}
  [ -n "${userinfo%%:*}" ] && RCLI_USER=(--user "${userinfo%%:*}")
  [[ $userinfo == *:* ]] && [ -n "${userinfo#*:}" ] && export REDISCLI_AUTH="${userinfo#*:}"
fi
IFS=, read -r -a SEEDS <<<"$seeds"
rcli() {  # HOST PORT ARGS...
  local host=$1 port=$2
  shift 2
  redis-cli -h "$host" -p "$port" ${RCLI_USER[@]+"${RCLI_USER[@]}"} --no-auth-warning "$@"
}
split_addr() {  # HOST:PORT or [IPV6]:PORT -> "HOST PORT" (port 6379 by default)
  local a=$1 host port=6379
  if [[ $a == \[*\]* ]]; then
    host=${a%%]*}; host=${host#[}; a=${a#*]}; [[ $a == :* ]] && port=${a#:}
  elif [[ $a == *:* ]]; then
    host=${a%:*}; port=${a##*:}
  else
    host=$a
  fi
  echo "$host $port"
}

# cluster_nodes: one line per Redis node, "HOST PORT ROLE" (ROLE primary, replica or
# failed), as the first seed that answers sees it.
cluster_nodes() {
  local s host port out
  for s in "${SEEDS[@]}"; do
    read -r host port <<<"$(split_addr "$s")"
    out=$(rcli "$host" "$port" cluster nodes 2>/dev/null | tr -d '\r') || continue
    [ -n "$out" ] || continue
    awk '{
      addr = $2; sub(/[@,].*/, "", addr)
      n = split(addr, a, ":"); port = a[n]; host = substr(addr, 1, length(addr) - length(port) - 1)
      gsub(/^\[|\]$/, "", host)
      role = ($3 ~ /master/) ? "primary" : "replica"
      if ($3 ~ /(^|,)(fail|noaddr|handshake)(,|$)/) role = "failed"
      print host, port, role
    }' <<<"$out" | sort -k2,2n
    return 0
  done
  return 1
}

# ---- processes and /proc ----
HZ=$(getconf CLK_TCK)
# pid_is PID PATTERN...: PID is alive and its command line contains every PATTERN.
pid_is() {
  local pid=$1 cmd p
  shift
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
  for p in "$@"; do [[ $cmd == *"$p"* ]] || return 1; done
}
redis_pid() {  # HOST PORT
  local pid=
  [ -n "$CLUSTER_DIR" ] && [ -r "$CLUSTER_DIR/redis-$2/redis.pid" ] && pid=$(tr -dc '0-9' <"$CLUSTER_DIR/redis-$2/redis.pid")
  pid_is "$pid" redis-server ":$2" && { echo "$pid"; return; }
  pid=$(rcli "$1" "$2" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')
  pid_is "$pid" redis-server ":$2" && echo "$pid"
}
kafka_pid() {  # PORT (PLAINTEXT listener)
  local port=$1 props pid=
  if [ -n "$CLUSTER_DIR" ]; then
    for props in "$CLUSTER_DIR"/kafka-*/server.properties; do
      if [ ! -r "$props" ] || ! grep -qE "^listeners=.*PLAINTEXT://[^,]*:$port(,|$)" "$props"; then
        continue
      fi
      pid=$(tr -dc '0-9' <"${props%/*}/kafka.pid" 2>/dev/null)
      pid_is "$pid" kafka.Kafka && { echo "$pid"; return; }
    done
  fi
  if command -v ss >/dev/null 2>&1; then
    pid=$(ss -ltnpH "sport = :$port" 2>/dev/null | grep -oE 'pid=[0-9]+' | head -n 1 | cut -d= -f2)
    pid_is "$pid" kafka.Kafka && echo "$pid"
  fi
}
# utime+stime in clock ticks (fields 14 and 15; the command name may hold blanks).
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null; }
vm_hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

RUN_ID="$(date +%Y%m%d%H%M%S).$$"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/touchflow-bench-cluster.XXXXXX") || die "mktemp failed"
FAMILIES="lifecycle churn care complaint tier loyalty referral winback segment"
IN="bench.cluster.in.$RUN_ID"
OUT="bench.cluster.out.$RUN_ID"
DLQ="bench.cluster.dlq.$RUN_ID"
PIDS=()          # touchflowd processes started and not reaped
PREFIXES=()      # Redis key prefixes not deleted yet

# delete_keys PREFIX: SCAN + UNLINK on every primary (one UNLINK per key, pipelined:
# the keys of different customers live in different slots).
delete_keys() {
  local prefix=$1 host port role
  while read -r host port role; do
    [ "$role" = primary ] || continue
    rcli "$host" "$port" --scan --pattern "$prefix*" 2>/dev/null |
      LC_ALL=C awk '{ printf "*2\r\n$6\r\nUNLINK\r\n$%d\r\n%s\r\n", length($0), $0 }' |
      rcli "$host" "$port" --pipe >>"$WORK/unlink.log" 2>&1
  done < <(cluster_nodes)
}
forget_prefix() {
  local keep=() p
  for p in "${PREFIXES[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PREFIXES=(${keep[@]+"${keep[@]}"})
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local pid p
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  if [ "${BENCH_KEEP_STATE:-0}" != 1 ]; then
    for p in "${PREFIXES[@]}"; do delete_keys "$p"; done
  fi
  say "logs: $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

create_topic() {
  bash "$SERVICES" topics-create --cluster "$1" "$2" >>"$WORK/topics.log" 2>&1 ||
    die "cannot create topic $1 (see $WORK/topics.log)"
}

# write_config NAME: a config for run NAME: its own group and key prefix.
write_config() {
  local name=$1 outs="" f
  for f in $FAMILIES; do outs="$outs\"$f\":\"$OUT\","; done
  cat >"$WORK/$name.json" <<JSON
{
  "kafka": {
    "group_id": "bench.cluster.$name.$RUN_ID",
    "input_topics": ["$IN"],
    "dlq_topic": "$DLQ",
    "output_topics": {${outs%,}}
  },
  "redis": {"key_prefix": "bench:cluster:$name:$RUN_ID:"},
  "ops": {"listen": ""},
  "log": {"level": "info"}
}
JSON
}

# poll LOG...: "DONE BUSY" from the last stats line of each log: DONE the records
# finished (applied, duplicates, replayed, dead-lettered) by all, BUSY the members with
# records in flight or no stats line yet.
poll() {
  awk '
    /"msg":"(stats|final): / { last[FILENAME] = $0 }
    function val(s, k) { return match(s, " " k "=[0-9]+") ? substr(s, RSTART + length(k) + 2, RLENGTH - length(k) - 2) + 0 : 0 }
    END {
      for (i = 1; i < ARGC; i++) {
        s = last[ARGV[i]]
        if (s == "") { busy++; continue }
        done += val(s, "applied") + val(s, "duplicates") + val(s, "replayed") + val(s, "dead_lettered")
        if (val(s, "inflight") > 0) busy++
      }
      printf "%d %d\n", done, busy
    }' "$@"
}

# bench_run MEMBERS WAIT_REPLICAS: one run; its table on stdout, its summary line
# appended to $WORK/summary.txt.
bench_run() {
  local members=$1 wait=$2 name="m$1" i pid t0 t_end done_n busy deadline rc status=0
  [ "$wait" = "$WAIT_REPLICAS" ] || name="$name.w$wait"
  local prefix="bench:cluster:$name:$RUN_ID:" data="$WORK/$name.procs" logs=() pids=()
  local nodes_start nodes_end host port role n
  write_config "$name"
  PREFIXES+=("$prefix")
  nodes_start=$(cluster_nodes) || { say "no Redis node answers CLUSTER NODES"; return 1; }
  say "run $name: $members touchflowd, redis.wait_replicas=$wait"

  # Service nodes: "KIND LABEL PID TICKS_BEFORE" now, the ticks after appended later.
  : >"$data.0"
  while read -r host port role; do
    pid=$(redis_pid "$host" "$port")
    echo "redis_$role redis:$port ${pid:--} $( [ -n "$pid" ] && cpu_ticks "$pid" || echo -)" >>"$data.0"
  done <<<"$nodes_start"
  IFS=, read -r -a brokers <<<"$TOUCHFLOW_KAFKA_BROKERS"
  for b in "${brokers[@]}"; do
    read -r host port <<<"$(split_addr "$b")"
    pid=$(kafka_pid "$port")
    echo "kafka broker:$port ${pid:--} $( [ -n "$pid" ] && cpu_ticks "$pid" || echo -)" >>"$data.0"
  done

  t0=$(date +%s%3N)
  for ((i = 1; i <= members; i++)); do
    logs+=("$WORK/$name.$i.log")
    : >"$WORK/$name.$i.log"
    "$TFD" -c "$WORK/$name.json" -o "redis.wait_replicas=$wait" ${TFD_ARGS[@]+"${TFD_ARGS[@]}"} \
      --stats-interval-ms "$STATS_MS" >"$WORK/$name.$i.out" 2>"$WORK/$name.$i.log" &
    pids+=($!)
    PIDS+=($!)
  done

  deadline=$((SECONDS + TIMEOUT_S))
  while :; do
    for ((i = 0; i < members; i++)); do
      if ! kill -0 "${pids[i]}" 2>/dev/null; then
        say "touchflowd $((i + 1)) exited early (log: ${logs[i]})"
        status=1
        break 2
      fi
    done
    read -r done_n busy <<<"$(poll "${logs[@]}")"
    [ "${done_n:-0}" -ge "$EVENTS" ] && [ "${busy:-1}" = 0 ] && break
    if [ $SECONDS -ge "$deadline" ]; then
      say "timed out after ${TIMEOUT_S}s: $done_n of $EVENTS processed"
      status=1
      break
    fi
    sleep 0.2
  done
  t_end=$(date +%s%3N)

  # CPU after: the services' first (their counters keep running), then the members'.
  : >"$data"
  while read -r kind label pid before; do
    echo "$kind $label $pid $before $( [ "$pid" != - ] && cpu_ticks "$pid" || echo -) -" >>"$data"
  done <"$data.0"
  for ((i = 0; i < members; i++)); do
    pid=${pids[i]}
    echo "touchflowd touchflowd-$((i + 1)) $pid 0 $(cpu_ticks "$pid" || echo -) $(vm_hwm_kib "$pid" || echo -)" >>"$data"
  done
  nodes_end=$(cluster_nodes)

  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  : >"$WORK/$name.rc"
  for ((i = 0; i < members; i++)); do
    pid=${pids[i]}
    for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "touchflowd $((i + 1)) did not exit 60 s after SIGTERM: killing it"
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    rc=$?
    echo "$rc" >>"$WORK/$name.rc"
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIDS=(${keep[@]+"${keep[@]}"})
  done
  n=$("$TF" lag --group "bench.cluster.$name.$RUN_ID" -t "$IN" --json 2>>"$WORK/$name.lag.log" |
    python3 -c 'import json, sys; print(sum(int(p.get("lag") or 0) for p in json.load(sys.stdin)))' 2>>"$WORK/$name.lag.log")

  if [ "$status" = 0 ]; then
    python3 - "$EVENTS" "$members" "$wait" "$t0" "$t_end" "$HZ" "$(nproc)" "$data" "$WORK/$name.rc" \
        "${n:-?}" "$WORK/summary.txt" "$(grep ' primary$' <<<"$nodes_start" | awk '{print $2}' | paste -sd, -)" \
        "$( [ "$nodes_start" = "$nodes_end" ] || grep ' primary$' <<<"$nodes_end" | awk '{print $2}' | paste -sd, -)" \
        "${logs[@]}" <<'PY' || status=1
import calendar, json, re, sys, time
(n, members, wait, t0, t_end, hz, ncpu, data, rcfile, lag, summary, prim, prim_end) = sys.argv[1:14]
logs = sys.argv[14:]
n, members, hz = int(n), int(members), int(hz)
t0, t_end = int(t0) / 1000, int(t_end) / 1000

def epoch(ts):  # "2026-03-01T10:00:00.123Z" (UTC) -> seconds
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + int(ts[20:23]) / 1000

# Each member's finish: the first stats line at its last count, moved back by the
# rate of the interval before (the stats lines come every BENCH_STATS_MS).
t_done, first_consumed, counts, redone = t0, None, [], 0
for log in logs:
    pts, final = [(t0, 0)], {}
    for line in open(log):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        m = rec.get("msg", "")
        if not m.startswith(("stats:", "final:")):
            continue
        f = {k: int(float(v)) for k, v in re.findall(r"(\w+)=([0-9.]+)", m)}
        done = sum(f.get(k, 0) for k in ("applied", "duplicates", "replayed", "dead_lettered"))
        pts.append((epoch(rec["time"]), done))
        final = f
        if f.get("consumed", 0) > 0 and (first_consumed is None or pts[-1][0] < first_consumed):
            first_consumed = pts[-1][0]
    last = pts[-1][1]
    counts.append(last)
    redone += final.get("duplicates", 0) + final.get("replayed", 0)
    if last == 0:
        continue
    i = next(i for i, p in enumerate(pts) if p[1] >= last)
    t = pts[i][0]
    if i >= 2:
        (tp, dp), (ta, da) = pts[i - 2], pts[i - 1]
        rate = (da - dp) / (ta - tp) if ta > tp else 0
        if rate > 0:
            t = min(t, ta + (last - da) / rate)
    t_done = max(t_done, t)
wall = max(t_done - t0, 1e-3)
window = t_end - t0

procs = []  # (kind, label, pid, cpu seconds or None, hwm KiB or None)
for line in open(data):
    kind, label, pid, before, after, hwm = line.split()
    cpu = (int(after) - int(before)) / hz if before != "-" and after != "-" else None
    procs.append((kind, label, pid, cpu, int(hwm) if hwm not in ("-", "") else None))
order = {"touchflowd": 0, "redis_primary": 1, "redis_replica": 2, "redis_failed": 3, "kafka": 4}
procs.sort(key=lambda p: (order.get(p[0], 9), p[1]))
role = {"touchflowd": "", "redis_primary": "primary", "redis_replica": "replica",
        "redis_failed": "failed", "kafka": "broker"}
rcs = open(rcfile).read().split()

print(f"members={members} redis.wait_replicas={wait}: {n} events in {wall:.2f} s = {n / wall:.0f} events/s")
if first_consumed and t_done > first_consumed:
    print(f"  first records consumed {first_consumed - t0:.2f} s after start (group join, start-up);"
          f" {n / (t_done - first_consumed):.0f} events/s from then on")
print(f"  Redis primaries at the start: {prim}"
      + (f"; at the end: {prim_end} (roles changed during the run)" if prim_end else ""))
print(f"  CPU over {window:.2f} s (start to the last event seen done); core% = share of one core of {ncpu}")
print(f"  {'process':<16} {'role':<8} {'pid':>8} {'cpu s':>8} {'us/event':>9} {'core%':>6} {'events':>8} {'peak RSS':>9}")
totals = {}
m = 0
for kind, label, pid, cpu, hwm in procs:
    key = {"redis_primary": "redis primaries", "redis_replica": "redis replicas",
           "kafka": "brokers"}.get(kind, kind)
    if cpu is not None:
        totals[key] = totals.get(key, 0.0) + cpu
    ev = ""
    if kind == "touchflowd":
        ev = str(counts[m]); m += 1
    cols = (f"{cpu:8.2f} {cpu * 1e6 / n:9.1f} {100 * cpu / window:5.0f}%" if cpu is not None
            else f"{'-':>8} {'-':>9} {'-':>6}")
    print(f"  {label:<16} {role.get(kind, kind):<8} {pid:>8} {cols} {ev:>8}"
          f" {(f'{hwm / 1024:.0f} MiB') if hwm else '':>9}")
us = lambda k: totals.get(k, 0.0) * 1e6 / n
print("  totals, us/event: " + ", ".join(f"{k} {us(k):.1f}" for k in
      ("touchflowd", "redis primaries", "redis replicas", "brokers")))
print(f"  re-processed records (duplicates + replayed): {redone}; committed lag after stop: {lag};"
      f" touchflowd exit statuses after SIGTERM: {' '.join(rcs)}"
      + ("" if all(r == "0" for r in rcs) else "  <-- expected 0"))
with open(summary, "a") as f:
    f.write(f"members={members}" + (f" wait_replicas={wait}" if wait != "0" else "")
            + f" events/s={n / wall:.0f} touchflowd_us/ev={us('touchflowd'):.1f}"
            f" redis_us/ev={us('redis primaries') + us('redis replicas'):.1f}"
            f" kafka_us/ev={us('brokers'):.1f}\n")
PY
  fi
  if [ "${BENCH_KEEP_STATE:-0}" != 1 ]; then
    delete_keys "$prefix"
    forget_prefix "$prefix"
  fi
  return "$status"
}

echo "touchflow cluster bench $RUN_ID: build $BUILD (${BUILD_TYPE:-unknown type}), $(nproc) cores," \
  "Kafka $TOUCHFLOW_KAFKA_BROKERS, Redis $(sed -E 's#//[^@/]*@#//***@#' <<<"$TOUCHFLOW_REDIS_URL")${BENCH_TOUCHFLOWD_ARGS:+ (touchflowd $BENCH_TOUCHFLOWD_ARGS)}"
create_topic "$IN" "$PARTITIONS"
create_topic "$OUT" "$PARTITIONS"
create_topic "$DLQ" 3
say "preloading $EVENTS events over $CUSTOMERS customers into $IN ($PARTITIONS partitions, replication factor 3)"
if ! timeout "$TIMEOUT_S" "$TF" gen --count "$EVENTS" --customers "$CUSTOMERS" --seed "$$" --topic "$IN" \
    2>"$WORK/gen.log"; then
  cat "$WORK/gen.log" >&2
  die "preload failed"
fi
sed -n 's/^touchflow: /  /p' "$WORK/gen.log"

status=0
: >"$WORK/summary.txt"
for m in "${MEMBER_COUNTS[@]}"; do
  bench_run "$m" "$WAIT_REPLICAS" || status=1
done
if [ "$WAIT_RUN" = 1 ] && [ "$WAIT_REPLICAS" != 1 ]; then
  bench_run "$MAX_MEMBERS" 1 || status=1
fi
echo "summary:"
cat "$WORK/summary.txt"
exit $status
