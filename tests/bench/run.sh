#!/usr/bin/env bash
# touchflowd benchmarks against real Kafka and Redis. Prints figures; asserts nothing
# (not a test, not registered with CTest).
#
#   bash tests/bench/run.sh [BUILD_DIR]        BUILD_DIR defaults to <repo>/build
#
# Run 1, throughput: preloads BENCH_EVENTS synthetic events (`touchflow gen`) into a
#   fresh 4-partition topic, starts touchflowd from the beginning and measures the wall
#   time from its start until every event is applied or dead-lettered; also the rate
#   over the steady part, peak RSS (VmHWM) and the CPU used by touchflowd, redis-server
#   and the Kafka broker (from /proc, per core: 100% = one core busy). Also, per event:
#   - the CPU microseconds of each of those processes (their ticks between the first
#     stats line with records done and the last event finished, over the events
#     finished in that window);
#   - the Redis commands, calls and usec by command: the difference of the server's
#     INFO commandstats taken right before touchflowd starts and right after the last
#     event is finished, over the events finished. The commands that Lua scripts run
#     (HSET, ZADD...) are counted under their own names as well as within the EVALSHA
#     that ran them (whose usec includes theirs): the total counts both. The script's
#     own SCAN, UNLINK, INFO and CONFIG are left out; any other client of the same Redis
#     server during the run is counted in, and a CONFIG RESETSTAT meanwhile voids it.
# Run 2, latency: primes the broker (BENCH_RATE events/s for BENCH_PRIME_S seconds
#   through a scratch topic, so its JIT warm-up is not measured), starts touchflowd on
#   a fresh topic, then produces at BENCH_RATE
#   events/s for BENCH_DURATION_S seconds and reads the produce-to-Redis-commit
#   percentiles from touchflowd's "final:" stats line (histogram buckets one ms wide
#   up to 100 ms, then 1.25x wide; the figures are bucket upper bounds).
# Run 3, memory by customers (only with BENCH_MEMORY=1): for each N in
#   BENCH_MEMORY_CUSTOMERS, preloads max(2N, 200000) events over N customers into a
#   fresh topic and runs touchflowd until all are finished, as run 1; prints a table of
#   its peak RSS (VmHWM) and RSS at the end (VmRSS), the rate over the processing
#   window (from the first stats line with records done to the last event finished)
#   and the wall time from its start. Its timeouts (the preload's 300 s and
#   BENCH_TIMEOUT_S) are scaled by the events / 200000, rounded up; each N's Redis keys
#   are deleted right after its run (unless BENCH_KEEP_STATE=1).
#
# Needs TOUCHFLOW_KAFKA_BROKERS and TOUCHFLOW_REDIS_URL; without them it starts the dev
# services (deploy/dev/services.sh up) and leaves them running. Builds BUILD_DIR
# (Release) when the binaries are missing. Every run has its own topics, consumer
# groups and Redis key prefix; the Redis keys are deleted at the end (BENCH_KEEP_STATE=1
# keeps them), the topics are left behind. Logs stay in the printed directory.
#
# Environment: BENCH_EVENTS (200000), BENCH_CUSTOMERS (50000), BENCH_RATE (5000),
# BENCH_DURATION_S (30), BENCH_WARMUP (events before run 2's paced load, 200; 0 = none),
# BENCH_PRIME_S (seconds of broker priming before run 2, 5; 0 = none),
# BENCH_STATS_MS (1000), BENCH_TIMEOUT_S (per wait, 300), BENCH_TOUCHFLOWD_ARGS (extra
# touchflowd arguments, e.g. "-o processing.batch_max=5000"),
# BENCH_SKIP_THROUGHPUT=1, BENCH_SKIP_LATENCY=1, BENCH_KEEP_STATE=1, BENCH_MEMORY=1 (run 3),
# BENCH_MEMORY_CUSTOMERS (customer counts of run 3, "10000 100000 1000000").
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$ROOT/build}
EVENTS=${BENCH_EVENTS:-200000}
CUSTOMERS=${BENCH_CUSTOMERS:-50000}
RATE=${BENCH_RATE:-5000}
DURATION_S=${BENCH_DURATION_S:-30}
STATS_MS=${BENCH_STATS_MS:-1000}
TIMEOUT_S=${BENCH_TIMEOUT_S:-300}
MEMORY_CUSTOMERS=${BENCH_MEMORY_CUSTOMERS:-10000 100000 1000000}
# Extra touchflowd arguments, e.g. "-o processing.batch_max=5000" (split on blanks).
read -r -a TFD_ARGS <<<"${BENCH_TOUCHFLOWD_ARGS:-}"

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

for v in EVENTS CUSTOMERS RATE DURATION_S STATS_MS TIMEOUT_S; do
  case "${!v}" in ''|*[!0-9]*|0) die "BENCH_$v must be a positive integer, got '${!v}'" ;; esac
done
if [ "${BENCH_MEMORY:-0}" = 1 ]; then
  [ -n "${MEMORY_CUSTOMERS// /}" ] || die "BENCH_MEMORY_CUSTOMERS is empty"
  for n in $MEMORY_CUSTOMERS; do
    case "$n" in *[!0-9]*|0) die "BENCH_MEMORY_CUSTOMERS must hold positive integers, got '$n'" ;; esac
  done
fi
command -v python3 >/dev/null 2>&1 || die "python3 is needed to read the stats lines"

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
if [ -z "${TOUCHFLOW_KAFKA_BROKERS:-}" ] || [ -z "${TOUCHFLOW_REDIS_URL:-}" ]; then
  say "TOUCHFLOW_KAFKA_BROKERS / TOUCHFLOW_REDIS_URL not set: starting the dev services"
  env_lines=$(bash "$ROOT/deploy/dev/services.sh" up) || die "could not start the dev services"
  eval "$env_lines"
fi
export TOUCHFLOW_KAFKA_BROKERS TOUCHFLOW_REDIS_URL

RUN_ID="$(date +%Y%m%d%H%M%S).$$"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/touchflow-bench.XXXXXX") || die "mktemp failed"
FAMILIES="lifecycle churn care complaint tier loyalty referral winback"
PIDS=()          # processes this script started and has not reaped
PREFIXES=()      # Redis key prefixes to delete at the end

redis_cli() { redis-cli -u "$TOUCHFLOW_REDIS_URL" --no-auth-warning "$@"; }

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  for p in "${PREFIXES[@]}"; do delete_prefix "$p"; done
  say "logs: $WORK"
}
# delete_prefix PREFIX: unlink the Redis keys under PREFIX (not with BENCH_KEEP_STATE=1).
delete_prefix() {
  if [ "${BENCH_KEEP_STATE:-0}" != 1 ] && command -v redis-cli >/dev/null 2>&1; then
    redis_cli --scan --pattern "$1*" 2>/dev/null | xargs -r -n 1000 redis-cli -u "$TOUCHFLOW_REDIS_URL" \
      --no-auth-warning UNLINK >/dev/null 2>&1
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

create_topic() {
  bash "$ROOT/deploy/dev/services.sh" topics-create "$1" "$2" >>"$WORK/topics.log" 2>&1 ||
    die "cannot create topic $1 (see $WORK/topics.log)"
}

# write_config NAME: a config for run NAME with its own topics, group and prefix.
write_config() {
  local name=$1 outs="" f
  for f in $FAMILIES; do outs="$outs\"$f\":\"bench.$name.out.$RUN_ID\","; done
  cat >"$WORK/$name.json" <<JSON
{
  "kafka": {
    "group_id": "bench.$name.$RUN_ID",
    "input_topics": ["bench.$name.in.$RUN_ID"],
    "dlq_topic": "bench.$name.dlq.$RUN_ID",
    "output_topics": {${outs%,}}
  },
  "redis": {"key_prefix": "bench:$name:$RUN_ID:"},
  "log": {"level": "info"}
}
JSON
  PREFIXES+=("bench:$name:$RUN_ID:")
  create_topic "bench.$name.in.$RUN_ID" 4
  create_topic "bench.$name.dlq.$RUN_ID" 1
  create_topic "bench.$name.out.$RUN_ID" 4
}

# stat LOG NAME: NAME's value in the last stats line of LOG (0 before the first).
stat() {
  local v
  v=$(grep -oE '"msg":"(stats|final): [^"]*' "$1" 2>/dev/null | tail -n 1 | grep -oE " $2=[0-9.]*" | cut -d= -f2)
  echo "${v:-0}"
}
processed() {
  echo $(( $(stat "$1" applied) + $(stat "$1" duplicates) + $(stat "$1" replayed) + $(stat "$1" dead_lettered) ))
}

# wait_processed LOG PID N: until N records are finished and none is in flight.
wait_processed() {
  local log=$1 pid=$2 want=$3 deadline=$((SECONDS + TIMEOUT_S))
  while [ $SECONDS -lt $deadline ]; do
    kill -0 "$pid" 2>/dev/null || { say "touchflowd exited early (log: $log)"; return 1; }
    if [ "$(processed "$log")" -ge "$want" ] && [ "$(stat "$log" inflight)" = 0 ]; then return 0; fi
    sleep 0.1
  done
  say "timed out after ${TIMEOUT_S}s: $(processed "$log") of $want processed (log: $log)"
  return 1
}

# stop_daemon PID: SIGTERM, wait up to 60 s; the exit status is left in STOP_RC
# (not printed: `wait` only works in this shell, not in a $(...) subshell).
STOP_RC=
stop_daemon() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "touchflowd $pid did not exit 60 s after SIGTERM: killing it"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  STOP_RC=$?
  forget_pid "$pid"
}

vm_hwm_mib() { awk '/^VmHWM:/ {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null; }
vm_rss_mib() { awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null; }

# redis_cmdstats FILE: the Redis server's INFO commandstats (calls and usec by command,
# cumulative since its start or the last CONFIG RESETSTAT) into FILE; empty on failure.
redis_cmdstats() {
  if ! command -v redis-cli >/dev/null 2>&1 || ! redis_cli info commandstats >"$1" 2>/dev/null; then : >"$1"; fi
}

# CPU accounting from /proc: "utime+stime" clock ticks of a process.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
service_pid() {  # NAME PIDFILE PATTERN: the pid of a dev service, or nothing
  local pid
  if [ -r "$2" ]; then
    pid=$(tr -dc '0-9' <"$2")
    [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$3" && { echo "$pid"; return; }
  fi
  pgrep -o -f -- "$3" 2>/dev/null
}
STATE_DIR=${TOUCHFLOW_DEV_DIR:-$ROOT/.dev}
REDIS_PID=$(service_pid redis "$STATE_DIR/redis/redis.pid" redis-server)
KAFKA_PID=$(service_pid kafka "$STATE_DIR/kafka/kafka.pid" kafka.Kafka)
HZ=$(getconf CLK_TCK)

# ---- run 1: throughput ----
throughput() {
  local cfg="$WORK/tput.json" log="$WORK/tput.touchflowd.log" in="bench.tput.in.$RUN_ID"
  local pid t0 t_end t1=0 hwm rc r0=0 k0=0 d0=0 r1 k1 d1 done_n deadline topped=0 p1=0
  write_config tput
  say "run 1: preloading $EVENTS events over $CUSTOMERS customers into $in"
  if ! timeout 300 "$TF" gen --count "$EVENTS" --customers "$CUSTOMERS" --seed "$$" --topic "$in" \
      2>"$WORK/tput.gen.log"; then
    cat "$WORK/tput.gen.log" >&2
    die "preload failed"
  fi
  sed 's/^touchflow: /  /' "$WORK/tput.gen.log"

  redis_cmdstats "$WORK/tput.cmdstats.before"
  t0=$(date +%s%3N)
  "$TFD" -c "$cfg" "${TFD_ARGS[@]}" --stats-interval-ms "$STATS_MS" >"$WORK/tput.touchflowd.out" 2>"$log" &
  pid=$!
  PIDS+=("$pid")
  # Until every event is finished; the CPU figures cover the processing only (from
  # the first stats line with records done), the start-up is reported apart.
  deadline=$((SECONDS + TIMEOUT_S))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "touchflowd exited early (log: $log)"
      return 1
    fi
    if [ $SECONDS -ge "$deadline" ]; then
      say "timed out after ${TIMEOUT_S}s: $(processed "$log") of $EVENTS processed (log: $log)"
      stop_daemon "$pid"
      return 1
    fi
    done_n=$(processed "$log")
    if [ "$t1" = 0 ] && [ "$done_n" -gt 0 ]; then
      t1=$(date +%s%3N)
      d0=$(cpu_ticks "$pid"); r0=$(cpu_ticks "${REDIS_PID:-0}"); k0=$(cpu_ticks "${KAFKA_PID:-0}")
      p1=$done_n  # the events already finished when the CPU window opens
    fi
    if [ "$topped" = 0 ] && [ "$done_n" -ge $((EVENTS / 2)) ]; then
      # A second opinion on where the time goes, mid-run (the second frame: the first
      # one's %CPU is not over a known interval).
      top -b -n 2 -d 0.5 -w 200 2>/dev/null | awk '/^top -/ {f++} f == 2' >"$WORK/tput.top.txt"
      topped=1
    fi
    [ "$done_n" -ge "$EVENTS" ] && [ "$(stat "$log" inflight)" = 0 ] && break
    sleep 0.1
  done
  t_end=$(date +%s%3N)
  d1=$(cpu_ticks "$pid"); r1=$(cpu_ticks "${REDIS_PID:-0}"); k1=$(cpu_ticks "${KAFKA_PID:-0}")
  redis_cmdstats "$WORK/tput.cmdstats.after"  # before stop (and before cleanup's SCAN/UNLINK)
  hwm=$(vm_hwm_mib "$pid")
  stop_daemon "$pid"
  rc=$STOP_RC
  python3 - "$log" "$t0" "$t_end" "$EVENTS" "${hwm:-?}" "$rc" "$HZ" "$((d1 - d0))" "$((r1 - r0))" "$((k1 - k0))" \
      "${REDIS_PID:+1}" "${KAFKA_PID:+1}" "$t1" "$(nproc)" "$p1" "$done_n" \
      "$WORK/tput.cmdstats.before" "$WORK/tput.cmdstats.after" <<'PY'
import calendar, json, re, sys, time
log, t0, t_end, n, hwm, rc, hz, d_ticks, r_ticks, k_ticks, have_r, have_k, t1, ncpu = sys.argv[1:15]
p1, p_end, cmd_before, cmd_after = int(sys.argv[15]), int(sys.argv[16]), sys.argv[17], sys.argv[18]
t0, t_end, t1, n, hz = int(t0) / 1000, int(t_end) / 1000, int(t1) / 1000, int(n), int(hz)

def epoch(ts):  # "2026-03-01T10:00:00.123Z" (UTC, as touchflowd logs it) -> seconds
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + int(ts[20:23]) / 1000

pts = []  # (time s, processed, figures)
final = None
for line in open(log):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    m = rec.get("msg", "")
    if not m.startswith(("stats:", "final:")):
        continue
    f = dict(re.findall(r"(\w+)=([0-9.]+)", m))
    done = sum(int(f.get(k, 0)) for k in ("applied", "duplicates", "replayed", "dead_lettered"))
    if m.startswith("final:"):
        final = f
    else:
        pts.append((epoch(rec["time"]), done, f))
# The moment N was reached lies between the last stats line below N (ta) and the
# first at N (tb); estimated from the rate of the interval before ta, which the
# tail of the run keeps up (the final interval cannot tell: it ends at N exactly).
seq = [(t0, 0, None)] + pts
t_done, bounds = t_end, None
for i in range(1, len(seq)):
    (ta, da, _), (tb, db, _) = seq[i - 1], seq[i]
    if db >= n:
        bounds = (ta - t0, tb - t0)
        t_done = tb
        if i >= 2 and da < n:
            tp, dp, _ = seq[i - 2]
            rate = (da - dp) / (ta - tp) if ta > tp else 0
            if rate > 0:
                t_done = min(tb, ta + (n - da) / rate)
        break
wall = t_done - t0
# Steady part: between the stats lines where 10% and 90% of N were done.
lo = next((p for p in pts if p[1] >= n * 0.10), None)
hi = next((p for p in pts if p[1] >= n * 0.90), None)
steady = (hi[1] - lo[1]) / (hi[0] - lo[0]) if lo and hi and hi[0] > lo[0] else float("nan")
first = next((p for p in pts if int(p[2].get("consumed", 0)) > 0), None)
print(f"throughput: {n} events in {wall:.1f} s = {n / wall:.0f} events/s; peak RSS {hwm} MiB"
      f" (steady part, 10%-90%: {steady:.0f} events/s)")
if bounds:
    print(f"  wall time from touchflowd's start to the last event finished: between {bounds[0]:.1f} and"
          f" {bounds[1]:.1f} s by the stats lines, estimated {wall:.1f} s from the rate before")
if first:
    print(f"  start-up: first stats line with records consumed {first[0] - t0:.1f} s after start")
busy = t_end - t1
cpu = lambda ticks: 100.0 * int(ticks) / hz / busy
parts = [f"touchflowd {cpu(d_ticks):.0f}%"]
if have_r: parts.append(f"redis-server {cpu(r_ticks):.0f}%")
if have_k: parts.append(f"kafka broker (java) {cpu(k_ticks):.0f}%")
print(f"  CPU while processing ({busy:.1f} s; 100% = one core of {ncpu}): " + ", ".join(parts))
# The same ticks over the events finished in that window (p1 were done when it opened).
win = p_end - p1
if win > 0:
    us = lambda ticks: int(ticks) / hz * 1e6 / win
    parts = [("touchflowd", d_ticks)]
    if have_r: parts.append(("redis-server", r_ticks))
    if have_k: parts.append(("kafka broker", k_ticks))
    total = sum(us(t) for _, t in parts)
    print("  CPU per event (µs): " + ", ".join(f"{name} {us(t):.1f}" for name, t in parts) + f", total {total:.1f}"
          f" ({win} events in the window)")
else:
    print("  CPU per event (µs): unavailable (no events finished in the window)")

# Redis commands per event: INFO commandstats after minus before, over the events finished
# since touchflowd's start. Commands run by Lua scripts are counted under their own names
# (hset, zadd...) besides the EVALSHA that ran them, whose usec includes theirs: they are
# printed as they come, and the total counts both. The bench's own commands are left out.
def cmdstats(path):
    out = {}
    try:
        for line in open(path):
            m = re.match(r"cmdstat_([^:]+):calls=(\d+),usec=(\d+)", line.strip())
            if m:
                out[m[1]] = (int(m[2]), int(m[3]))
    except OSError:
        pass
    return out
before, after = cmdstats(cmd_before), cmdstats(cmd_after)
own = ("scan", "unlink", "info", "config")
delta = {c: (a[0] - before.get(c, (0, 0))[0], a[1] - before.get(c, (0, 0))[1])
         for c, a in after.items() if c.split("|")[0] not in own}
if not after:
    print("  redis commands per event: unavailable (no INFO commandstats)")
elif p_end <= 0:
    print("  redis commands per event: unavailable (no events finished)")
elif any(c < 0 or u < 0 for c, u in delta.values()):
    print("  redis commands per event: unavailable (the counters were reset during the run)")
else:
    delta = {c: d for c, d in delta.items() if d[0] > 0}
    by_calls = sorted(delta.items(), key=lambda kv: (-kv[1][0], kv[0]))
    by_usec = sorted(delta.items(), key=lambda kv: (-kv[1][1], kv[0]))
    print(f"  redis commands per event: {sum(c for c, _ in delta.values()) / p_end:.2f} ("
          + ", ".join(f"{c} {d[0] / p_end:.2f}" for c, d in by_calls) + ")")
    print("  redis usec per event by command: " + ", ".join(f"{c} {d[1] / p_end:.1f}" for c, d in by_usec))
if final:
    keys = ("consumed", "applied", "duplicates", "replayed", "dead_lettered", "derived", "commits", "fenced",
            "redis_failures", "commit_latency_p50_ms", "commit_latency_p99_ms")
    print("  final stats: " + " ".join(f"{k}={final[k]}" for k in keys if k in final))
print(f"  touchflowd exit status after SIGTERM: {rc}" + ("" if rc == "0" else "  <-- expected 0"))
PY
  if [ -s "$WORK/tput.top.txt" ]; then
    printf '  top at half-way (%%CPU): %s\n' "$(awk -v pids=" $pid ${REDIS_PID:-} ${KAFKA_PID:-} " \
      'index(pids, " " $1 " ") {printf "%s%s %s%%", sep, $12, $9; sep=", "}' "$WORK/tput.top.txt")"
  fi
}

# ---- run 2: latency ----

# prime_broker SECONDS: sends RATE events/s for SECONDS into a scratch topic while a
# consumer reads it, before the measured daemon starts. A broker that has just
# started still compiles its request paths (JIT) and takes CPU in bursts; on two
# cores that stalls Redis's replies for 100-150 ms at a time, and the first latency
# run on a fresh broker measured 156-596 ms at p99 against 13-22 ms on a warm one.
# Priming takes the first of it; a fresh broker can still show a tail (73 ms after
# 15 s of priming), so compare runs on a broker that has served a few.
prime_broker() {
  local secs=$1 topic="bench.prime.$RUN_ID" cpid
  [ "$secs" -gt 0 ] || return 0
  create_topic "$topic" 4
  "$TF" consume -t "$topic" --group "bench.prime.$RUN_ID" --timeout-ms $(((secs + 30) * 1000)) \
    --idle-ms $(((secs + 30) * 1000)) >/dev/null 2>"$WORK/prime.consume.log" &
  cpid=$!
  PIDS+=("$cpid")
  timeout $((secs * 3 + 60)) "$TF" gen --rate "$RATE" --duration-s "$secs" --customers "$CUSTOMERS" \
    --seed "$(($$ + 3))" --topic "$topic" 2>"$WORK/prime.gen.log" || say "priming the broker failed (see $WORK/prime.gen.log)"
  kill -TERM "$cpid" 2>/dev/null
  wait "$cpid" 2>/dev/null
  forget_pid "$cpid"
  echo "  broker primed: $RATE events/s for $secs s through a scratch topic and a consumer (not measured)"
}

latency() {
  local cfg="$WORK/lat.json" log="$WORK/lat.touchflowd.log" in="bench.lat.in.$RUN_ID"
  local pid n=$((RATE * DURATION_S)) deadline rc hwm final w0 w1 warm=${BENCH_WARMUP:-200}
  write_config lat
  prime_broker "${BENCH_PRIME_S:-5}"
  "$TFD" -c "$cfg" "${TFD_ARGS[@]}" --stats-interval-ms "$STATS_MS" >"$WORK/lat.touchflowd.out" 2>"$log" &
  pid=$!
  PIDS+=("$pid")
  # Produce only once the partitions are owned, so the first events do not wait for
  # the group join.
  deadline=$((SECONDS + 60))
  until grep -q 'owning the assignment' "$log" 2>/dev/null || [ $SECONDS -ge $deadline ]; do
    kill -0 "$pid" 2>/dev/null || { say "touchflowd exited early (log: $log)"; return 1; }
    sleep 0.1
  done
  grep -q 'owning the assignment' "$log" || say "touchflowd did not report its assignment within 60 s; producing anyway"
  # Warm-up: the first records after start meet cold paths (the producer's first
  # derived events wait for topic metadata); a few hundred events, under 1% of the
  # run, keep that one-time stall out of the steady-state p99 and measure it apart.
  if [ "$warm" -gt 0 ]; then
    w0=$(date +%s%3N)
    timeout 120 "$TF" gen --count "$warm" --customers "$CUSTOMERS" --seed "$(($$ + 2))" --topic "$in" \
      2>"$WORK/lat.warmup.log" || { cat "$WORK/lat.warmup.log" >&2; stop_daemon "$pid"; return 1; }
    if ! wait_processed "$log" "$pid" "$warm"; then
      stop_daemon "$pid"
      return 1
    fi
    w1=$(date +%s%3N)
    echo "  warm-up: $warm events produced and processed within $((w1 - w0)) ms (cold start; seen from stats every $STATS_MS ms)"
  fi
  say "run 2: producing $RATE events/s for $DURATION_S s into $in"
  if ! timeout $((DURATION_S * 3 + 120)) "$TF" gen --rate "$RATE" --duration-s "$DURATION_S" \
      --customers "$CUSTOMERS" --seed "$(($$ + 1))" --topic "$in" 2>"$WORK/lat.gen.log"; then
    cat "$WORK/lat.gen.log" >&2
    stop_daemon "$pid"
    return 1
  fi
  sed 's/^touchflow: /  /' "$WORK/lat.gen.log"
  if ! wait_processed "$log" "$pid" $((n + warm)); then
    stop_daemon "$pid"
    return 1
  fi
  hwm=$(vm_hwm_mib "$pid")
  stop_daemon "$pid"
  rc=$STOP_RC
  final=$(grep -oE '"msg":"final: [^"]*' "$log" | tail -n 1)
  [ -n "$final" ] || { say "no final: stats line in $log"; return 1; }
  p50=$(grep -oE 'commit_latency_p50_ms=[0-9.]+' <<<"$final" | cut -d= -f2)
  p99=$(grep -oE 'commit_latency_p99_ms=[0-9.]+' <<<"$final" | cut -d= -f2)
  echo "latency at $RATE events/s: p50 $p50 ms, p99 $p99 ms (produce time to Redis commit, warm-up included;" \
    "peak RSS ${hwm:-?} MiB)"
  echo "  final stats: ${final#\"msg\":\"final: }"
  echo "  touchflowd exit status after SIGTERM: $rc$([ "$rc" = 0 ] || echo '  <-- expected 0')"
}

# ---- run 3: memory by customers ----
# mem_run N: preloads max(2N, 200000) events over N customers into a fresh topic and runs
# touchflowd until every one is finished; appends its row to $WORK/mem.rows.
mem_run() {
  local n=$1 name="mem$1" count scale cfg log in pid t0 t1=0 t_end p1=0 done_n deadline hwm rss rc
  count=$((n * 2)); [ "$count" -ge 200000 ] || count=200000
  scale=$(((count + 199999) / 200000))  # the timeouts are for 200,000 events
  cfg="$WORK/$name.json" log="$WORK/$name.touchflowd.log" in="bench.$name.in.$RUN_ID"
  write_config "$name"
  say "run 3: preloading $count events over $n customers into $in"
  if ! timeout $((300 * scale)) "$TF" gen --count "$count" --customers "$n" --seed "$(($$ + 3))" --topic "$in" \
      2>"$WORK/$name.gen.log"; then
    cat "$WORK/$name.gen.log" >&2
    say "preload failed"
    return 1
  fi
  t0=$(date +%s%3N)
  "$TFD" -c "$cfg" "${TFD_ARGS[@]}" --stats-interval-ms "$STATS_MS" >"$WORK/$name.touchflowd.out" 2>"$log" &
  pid=$!
  PIDS+=("$pid")
  deadline=$((SECONDS + TIMEOUT_S * scale))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "touchflowd exited early (log: $log)"
      return 1
    fi
    if [ $SECONDS -ge "$deadline" ]; then
      say "timed out after $((TIMEOUT_S * scale))s: $(processed "$log") of $count processed (log: $log)"
      stop_daemon "$pid"
      return 1
    fi
    done_n=$(processed "$log")
    if [ "$t1" = 0 ] && [ "$done_n" -gt 0 ]; then t1=$(date +%s%3N); p1=$done_n; fi
    [ "$done_n" -ge "$count" ] && [ "$(stat "$log" inflight)" = 0 ] && break
    sleep 0.1
  done
  t_end=$(date +%s%3N)
  hwm=$(vm_hwm_mib "$pid")
  rss=$(vm_rss_mib "$pid")
  stop_daemon "$pid"
  rc=$STOP_RC
  [ "$rc" = 0 ] || say "touchflowd ($name) exit status after SIGTERM: $rc, expected 0 (log: $log)"
  # Its keys go now, not at the end, so that the runs do not pile up in Redis.
  if [ "${BENCH_KEEP_STATE:-0}" != 1 ]; then
    delete_prefix "bench:$name:$RUN_ID:"
    forget_prefix "bench:$name:$RUN_ID:"
  fi
  awk -v n="$n" -v c="$count" -v w="$((done_n - p1))" -v ms="$((t_end - t1))" -v wall="$((t_end - t0))" \
    -v hwm="${hwm:-?}" -v rss="${rss:-?}" 'BEGIN {
      printf "  %-11s %-8s %-10s %-14s %-15s %.1f\n", n, c, (ms > 0 ? sprintf("%.0f", w * 1000 / ms) : "?"), hwm, rss, wall / 1000
    }' >>"$WORK/mem.rows"
}

forget_prefix() {
  local keep=() p
  for p in "${PREFIXES[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PREFIXES=("${keep[@]}")
}

memory() {
  local n status=0
  : >"$WORK/mem.rows"
  for n in $MEMORY_CUSTOMERS; do mem_run "$n" || status=1; done
  echo "memory by customers:"
  printf '  %-11s %-8s %-10s %-14s %-15s %s\n' customers events events/s "peak RSS MiB" "final RSS MiB" "wall s"
  cat "$WORK/mem.rows"
  echo "  (events/s from the first stats line with records done to the last event finished; wall s from touchflowd's start)"
  return $status
}

echo "touchflow bench $RUN_ID: build $BUILD (${BUILD_TYPE:-unknown type}), $(nproc) cores," \
  "Kafka $TOUCHFLOW_KAFKA_BROKERS, Redis $(sed -E 's#//[^@/]*@#//***@#' <<<"$TOUCHFLOW_REDIS_URL")${BENCH_TOUCHFLOWD_ARGS:+ (touchflowd $BENCH_TOUCHFLOWD_ARGS)}"
status=0
if [ "${BENCH_SKIP_THROUGHPUT:-0}" != 1 ]; then throughput || status=1; fi
if [ "${BENCH_SKIP_LATENCY:-0}" != 1 ]; then latency || status=1; fi
if [ "${BENCH_MEMORY:-0}" = 1 ]; then memory || status=1; fi
exit $status
