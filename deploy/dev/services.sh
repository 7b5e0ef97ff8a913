#!/usr/bin/env bash
# Development and test services for touchflow: a real redis-server and a real
# single-node Apache Kafka broker (KRaft, combined broker+controller), both bound to
# 127.0.0.1 on non-default ports, with all state under one directory.
#
#   services.sh up                     start what is not running; print the env lines
#   services.sh down                   stop what `up` started (by pidfile)
#   services.sh status                 state of each service; exit 1 if any is down
#   services.sh env                    print the env lines, start nothing
#   services.sh topics-create NAME N   create topic NAME with N partitions (if missing)
#   services.sh clean                  down, then delete the state directory
#
# `up` and `env` print exactly these lines on stdout (everything else goes to stderr):
#   TOUCHFLOW_KAFKA_BROKERS=127.0.0.1:19092
#   TOUCHFLOW_REDIS_URL=redis://127.0.0.1:16379
# so `eval "$(deploy/dev/services.sh up)"` sets them in the calling shell.
#
# Environment:
#   TOUCHFLOW_DEV_DIR              state dir (default: <repo>/.dev)
#   TOUCHFLOW_DEV_REDIS_PORT       default 16379
#   TOUCHFLOW_DEV_KAFKA_PORT       default 19092 (PLAINTEXT listener)
#   TOUCHFLOW_DEV_CONTROLLER_PORT  default 19093 (KRaft controller listener)
#   TOUCHFLOW_DEV_KAFKA_VERSION    default: kafka.version in deploy/dev/kafka/pom.xml
#   TOUCHFLOW_DEV_KAFKA_CACHE      jar cache (default:
#                                  ${XDG_CACHE_HOME:-$HOME/.cache}/touchflow/kafka-<version>)
#   TOUCHFLOW_DEV_KAFKA_HEAP_OPTS  default "-Xmx1g -Xms256m"
#   TOUCHFLOW_DEV_START_TIMEOUT    seconds to wait for the broker (default 120)
#   JAVA_HOME                      JDK/JRE >= 17 to use (default: java on PATH)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
POM="$SCRIPT_DIR/kafka/pom.xml"

STATE_DIR=${TOUCHFLOW_DEV_DIR:-$REPO_ROOT/.dev}
REDIS_PORT=${TOUCHFLOW_DEV_REDIS_PORT:-16379}
KAFKA_PORT=${TOUCHFLOW_DEV_KAFKA_PORT:-19092}
CONTROLLER_PORT=${TOUCHFLOW_DEV_CONTROLLER_PORT:-19093}
HOST=127.0.0.1
KAFKA_HEAP_OPTS=${TOUCHFLOW_DEV_KAFKA_HEAP_OPTS:--Xmx1g -Xms256m}
START_TIMEOUT=${TOUCHFLOW_DEV_START_TIMEOUT:-120}
FALLBACK_KAFKA_VERSION=3.9.0

REDIS_DIR="$STATE_DIR/redis"
REDIS_PID="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"
REDIS_OUT="$REDIS_DIR/redis.out"          # stdout/stderr before daemonizing (config errors)
KAFKA_DIR="$STATE_DIR/kafka"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_OUT="$KAFKA_DIR/kafka.out"          # JVM stdout/stderr (normally near empty)
KAFKA_LOG="$KAFKA_DIR/server.log"         # log4j output
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_LOG4J="$KAFKA_DIR/log4j.properties"
TOOLS_LOG4J="$KAFKA_DIR/tools-log4j.properties"
CLUSTER_ID_FILE="$KAFKA_DIR/cluster.id"

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//' >&2; }

now_ms() { date +%s%3N; }

print_env() {
  printf 'TOUCHFLOW_KAFKA_BROKERS=%s:%s\n' "$HOST" "$KAFKA_PORT"
  printf 'TOUCHFLOW_REDIS_URL=redis://%s:%s\n' "$HOST" "$REDIS_PORT"
}

# --- prerequisites -----------------------------------------------------------------

java_bin() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    echo "$JAVA_HOME/bin/java"
  else
    echo java
  fi
}

java_major() {
  local v
  command -v "$(java_bin)" >/dev/null 2>&1 || { echo 0; return; }
  v=$("$(java_bin)" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
  case "$v" in
    1.*) v=${v#1.}; echo "${v%%.*}" ;;
    "") echo 0 ;;
    *) v=${v%%[.+-]*}; echo "${v:-0}" ;;
  esac
}

ensure_deps() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || missing+=(redis-cli)
  [ "$(java_major)" -ge 17 ] || missing+=("java>=17")
  command -v mvn >/dev/null 2>&1 || missing+=(mvn)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "missing: ${missing[*]}; running install-deps.sh"
    "$SCRIPT_DIR/install-deps.sh" >&2
  fi
}

kafka_version() {
  if [ -n "${TOUCHFLOW_DEV_KAFKA_VERSION:-}" ]; then
    echo "$TOUCHFLOW_DEV_KAFKA_VERSION"
  else
    sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1
  fi
}

cache_dir_for() {
  echo "${TOUCHFLOW_DEV_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/touchflow/kafka-$1}"
}

# A cache is complete when its marker holds the pom's checksum and the version: a
# partial download or an edited pom means fetching again.
cache_stamp() { printf '%s %s\n' "$(sha256sum "$POM" | cut -d' ' -f1)" "$1"; }

fetch_jars_version() {
  local version=$1 cache tmp
  cache=$(cache_dir_for "$version")
  if [ -f "$cache/.complete" ] && [ "$(cat "$cache/.complete")" = "$(cache_stamp "$version")" ]; then
    LIBS="$cache/libs"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (run deploy/dev/install-deps.sh)"
  mkdir -p "$cache"
  # The cache is shared by every state dir: one fetch at a time, then look again.
  exec 8>"$cache/.lock"
  if command -v flock >/dev/null 2>&1; then flock -w 600 8 || die "timed out waiting for $cache/.lock"; fi
  if [ -f "$cache/.complete" ] && [ "$(cat "$cache/.complete")" = "$(cache_stamp "$version")" ]; then
    exec 8>&-
    LIBS="$cache/libs"
    return 0
  fi
  log "fetching Kafka $version jars with Maven into $cache (first run only)"
  tmp="$cache/libs.tmp.$$"
  rm -rf "$tmp"
  # (the sed drops the bare colour resets Debian's Maven 3.8 prints even with -q)
  if ! mvn -q -B -Dstyle.color=never -f "$POM" -Dkafka.version="$version" \
        dependency:copy-dependencies -DoutputDirectory="$tmp" </dev/null 2>&1 \
      | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2; then
    rm -rf "$tmp"
    exec 8>&-
    return 1
  fi
  if [ ! -f "$tmp/kafka_2.13-$version.jar" ]; then
    rm -rf "$tmp"
    exec 8>&-
    return 1
  fi
  rm -rf "$cache/libs"
  mv "$tmp" "$cache/libs"
  cache_stamp "$version" >"$cache/.complete"
  exec 8>&-
  LIBS="$cache/libs"
}

fetch_jars() {
  local version
  version=$(kafka_version)
  [ -n "$version" ] || die "cannot read kafka.version from $POM"
  if fetch_jars_version "$version"; then
    KAFKA_VERSION=$version
    return 0
  fi
  if [ "$version" != "$FALLBACK_KAFKA_VERSION" ] && [ -z "${TOUCHFLOW_DEV_KAFKA_VERSION:-}" ]; then
    log "Kafka $version did not resolve; falling back to $FALLBACK_KAFKA_VERSION"
    if fetch_jars_version "$FALLBACK_KAFKA_VERSION"; then
      KAFKA_VERSION=$FALLBACK_KAFKA_VERSION
      return 0
    fi
  fi
  die "could not fetch the Kafka jars with Maven (see the output above; is Maven Central reachable?)"
}

# Libs dir of an already complete cache, without fetching; empty if none.
cached_libs() {
  local version cache v
  version=$(kafka_version)
  for v in "$version" "$FALLBACK_KAFKA_VERSION"; do
    cache=$(cache_dir_for "$v")
    if [ -f "$cache/.complete" ]; then echo "$cache/libs"; return 0; fi
  done
  return 1
}

# --- process helpers ---------------------------------------------------------------

# running PID: the process exists and is not a zombie (an exited child that its parent,
# possibly a container's init, has not reaped yet still answers kill -0).
running() {
  kill -0 "$1" 2>/dev/null || return 1
  if [ -r "/proc/$1/stat" ]; then
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    case "${stat%% *}" in Z|X) return 1 ;; esac
  fi
  return 0
}

# pid_alive PIDFILE PATTERN: the pid in PIDFILE is alive and its command line contains
# PATTERN (guards against a recycled pid). Prints the pid.
pid_alive() {
  local pidfile=$1 pattern=$2 pid
  [ -f "$pidfile" ] || return 1
  pid=$(tr -dc '0-9' <"$pidfile")
  [ -n "$pid" ] || return 1
  running "$pid" || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern" || return 1
  fi
  echo "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# stop_pid NAME PIDFILE PATTERN GRACE_SECONDS
stop_pid() {
  local name=$1 pidfile=$2 pattern=$3 grace=$4 pid i
  if ! pid=$(pid_alive "$pidfile" "$pattern"); then
    if [ -f "$pidfile" ]; then
      log "$name: not running (removing stale pidfile)"
      rm -f "$pidfile"
    else
      log "$name: not running"
    fi
    return 0
  fi
  log "$name: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    running "$pid" || break
    sleep 0.1
  done
  if running "$pid"; then
    log "$name: still running after ${grace}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      running "$pid" || break
      sleep 0.1
    done
  fi
  rm -f "$pidfile"
  log "$name: stopped"
}

# --- redis -------------------------------------------------------------------------

redis_ping() {
  [ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

redis_up() {
  local pid i
  if pid=$(pid_alive "$REDIS_PID" redis-server); then
    log "redis: already running (pid $pid, $HOST:$REDIS_PORT)"
    return 0
  fi
  rm -f "$REDIS_PID"
  if port_open "$REDIS_PORT"; then
    die "redis: port $REDIS_PORT is in use by a process this script did not start; stop it or set TOUCHFLOW_DEV_REDIS_PORT"
  fi
  mkdir -p "$REDIS_DIR"
  log "redis: starting on $HOST:$REDIS_PORT"
  redis-server --bind "$HOST" --port "$REDIS_PORT" \
    --daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" --dir "$REDIS_DIR" \
    --save '' --appendonly no </dev/null >"$REDIS_OUT" 2>&1 3>&- 8>&- 9>&- \
    || { tail -n 20 "$REDIS_OUT" >&2 2>/dev/null || true; die "redis: redis-server failed to start"; }
  for ((i = 0; i < 100; i++)); do
    if redis_ping; then
      log "redis: ready (pid $(cat "$REDIS_PID" 2>/dev/null || echo '?'))"
      return 0
    fi
    sleep 0.1
  done
  tail -n 20 "$REDIS_LOG" >&2 2>/dev/null || true
  die "redis: not answering PING on $HOST:$REDIS_PORT after 10s (log: $REDIS_LOG)"
}

# --- kafka -------------------------------------------------------------------------

write_kafka_config() {
  mkdir -p "$KAFKA_DIR" "$KAFKA_DATA"
  cat >"$KAFKA_PROPS" <<EOF
# Generated by deploy/dev/services.sh on every start; edits are overwritten.
# Single-node KRaft: this node is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DATA

num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
group.initial.rebalance.delay.ms=0

num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
log.segment.bytes=134217728
EOF
  cat >"$KAFKA_LOG4J" <<EOF
# Generated by deploy/dev/services.sh. Broker logs go to a file, nothing to the console.
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$KAFKA_LOG
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.network.RequestChannel\$=WARN
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
EOF
  write_tools_log4j
}

write_tools_log4j() {
  mkdir -p "$KAFKA_DIR"
  cat >"$TOOLS_LOG4J" <<'EOF'
# Generated by deploy/dev/services.sh. Kafka CLI tools: warnings to stderr only.
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

# Run a Kafka class (tool) from the cached jars, logging to stderr at WARN.
kafka_tool() {
  "$(java_bin)" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$TOOLS_LOG4J" -cp "$LIBS/*" "$@"
}

kafka_format() {
  local cid
  if [ -f "$KAFKA_DATA/meta.properties" ]; then
    return 0
  fi
  if [ -s "$CLUSTER_ID_FILE" ]; then
    cid=$(cat "$CLUSTER_ID_FILE")
  else
    cid=$(kafka_tool kafka.tools.StorageTool random-uuid | tail -n1 | tr -d '[:space:]')
    [ -n "$cid" ] || die "kafka: StorageTool random-uuid printed nothing"
    echo "$cid" >"$CLUSTER_ID_FILE"
  fi
  log "kafka: formatting KRaft storage (cluster id $cid)"
  kafka_tool kafka.tools.StorageTool format -t "$cid" -c "$KAFKA_PROPS" >&2 \
    || die "kafka: StorageTool format failed"
}

# One Kafka Metadata v1 request over a raw socket (no JVM start): succeeds when the
# broker answers with at least one broker and an elected controller.
kafka_metadata_ok() {
  python3 - "$HOST" "$KAFKA_PORT" <<'PY' 2>/dev/null
import socket, struct, sys

host, port = sys.argv[1], int(sys.argv[2])

def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf

try:
    sock = socket.create_connection((host, port), timeout=2.0)
    sock.settimeout(2.0)
    client_id = b"touchflow-dev"
    # Request header v1: api_key=3 (Metadata), api_version=1, correlation_id, client_id;
    # body: topics = null (all topics).
    req = struct.pack(">hhih", 3, 1, 7, len(client_id)) + client_id + struct.pack(">i", -1)
    sock.sendall(struct.pack(">i", len(req)) + req)
    size, = struct.unpack(">i", recv_exact(sock, 4))
    data = recv_exact(sock, size)
    corr, nbrokers = struct.unpack_from(">ii", data, 0)
    off = 8
    for _ in range(nbrokers):
        node_id, hlen = struct.unpack_from(">ih", data, off)
        off += 6 + hlen
        bport, rlen = struct.unpack_from(">ih", data, off)
        off += 6 + max(rlen, 0)
    controller_id, = struct.unpack_from(">i", data, off)
    sys.exit(0 if corr == 7 and nbrokers >= 1 and controller_id >= 0 else 1)
except Exception:
    sys.exit(1)
PY
}

kafka_up() {
  local pid deadline
  if pid=$(pid_alive "$KAFKA_PID" kafka.Kafka); then
    log "kafka: already running (pid $pid, $HOST:$KAFKA_PORT)"
  else
    rm -f "$KAFKA_PID"
    local p
    for p in "$KAFKA_PORT" "$CONTROLLER_PORT"; do
      if port_open "$p"; then
        die "kafka: port $p is in use by a process this script did not start; stop it or set TOUCHFLOW_DEV_KAFKA_PORT / TOUCHFLOW_DEV_CONTROLLER_PORT"
      fi
    done
    write_kafka_config
    kafka_format
    log "kafka: starting broker $KAFKA_VERSION on $HOST:$KAFKA_PORT (controller $HOST:$CONTROLLER_PORT)"
    # Detached: stdio to files; fd 3 (the caller's stdout, maybe a $(...) pipe) and
    # fds 8/9 (the cache and state locks) closed, so neither `eval "$(services.sh up)"`
    # nor the locks wait for the broker to exit.
    # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of JVM flags
    nohup "$(java_bin)" $KAFKA_HEAP_OPTS \
      -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$KAFKA_LOG4J" -Dkafka.logs.dir="$KAFKA_DIR" \
      -cp "$LIBS/*" kafka.Kafka "$KAFKA_PROPS" \
      </dev/null >"$KAFKA_OUT" 2>&1 3>&- 8>&- 9>&- &
    pid=$!
    echo "$pid" >"$KAFKA_PID"
  fi

  deadline=$(($(date +%s) + START_TIMEOUT))
  while :; do
    if kafka_metadata_ok; then
      log "kafka: ready (pid $pid)"
      return 0
    fi
    if ! running "$pid"; then
      log "kafka: broker exited during start; last lines of $KAFKA_OUT and $KAFKA_LOG:"
      tail -n 20 "$KAFKA_OUT" >&2 2>/dev/null || true
      tail -n 40 "$KAFKA_LOG" >&2 2>/dev/null || true
      rm -f "$KAFKA_PID"
      die "kafka: failed to start"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "kafka: no Metadata answer on $HOST:$KAFKA_PORT after ${START_TIMEOUT}s; last lines of $KAFKA_LOG:"
      tail -n 40 "$KAFKA_LOG" >&2 2>/dev/null || true
      die "kafka: not ready (still running as pid $pid; 'services.sh down' stops it)"
    fi
    sleep 0.25
  done
}

# --- .gitignore --------------------------------------------------------------------

ensure_gitignore() {
  local gi="$REPO_ROOT/.gitignore" line
  for line in '.dev/' 'build*/'; do
    if [ ! -f "$gi" ] || ! grep -qxF -- "$line" "$gi"; then
      # keep the file newline-terminated before appending
      if [ -s "$gi" ] && [ -n "$(tail -c1 "$gi")" ]; then echo >>"$gi"; fi
      echo "$line" >>"$gi"
    fi
  done
}

# --- commands ----------------------------------------------------------------------

with_lock() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w 300 9 || die "another services.sh is holding $STATE_DIR/.lock"
  fi
}

cmd_up() {
  local t0
  t0=$(now_ms)
  # stdout carries only the env lines; everything else goes to stderr
  exec 3>&1 1>&2
  ensure_deps
  ensure_gitignore
  with_lock
  fetch_jars
  redis_up
  kafka_up
  log "up in $(( $(now_ms) - t0 ))ms (state: $STATE_DIR, jars: $LIBS)"
  print_env >&3
}

cmd_down() {
  with_lock
  stop_pid kafka "$KAFKA_PID" kafka.Kafka 30
  stop_pid redis "$REDIS_PID" redis-server 10
}

cmd_status() {
  local rc=0 pid
  if pid=$(pid_alive "$REDIS_PID" redis-server); then
    if redis_ping; then
      echo "redis  up        pid $pid  $HOST:$REDIS_PORT"
    else
      echo "redis  unhealthy pid $pid  $HOST:$REDIS_PORT (no PONG)"; rc=1
    fi
  else
    echo "redis  down"; rc=1
  fi
  if pid=$(pid_alive "$KAFKA_PID" kafka.Kafka); then
    if kafka_metadata_ok; then
      echo "kafka  up        pid $pid  $HOST:$KAFKA_PORT"
    else
      echo "kafka  starting  pid $pid  $HOST:$KAFKA_PORT (no Metadata answer yet)"; rc=1
    fi
  else
    echo "kafka  down"; rc=1
  fi
  return "$rc"
}

cmd_topics_create() {
  [ $# -eq 2 ] || die "usage: services.sh topics-create NAME PARTITIONS"
  local name=$1 parts=$2
  case "$parts" in ''|*[!0-9]*) die "PARTITIONS must be a positive integer, got '$parts'" ;; esac
  LIBS=$(cached_libs) || die "Kafka jars not fetched yet: run 'services.sh up' first"
  kafka_metadata_ok || die "kafka is not answering on $HOST:$KAFKA_PORT: run 'services.sh up' first"
  write_tools_log4j
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$KAFKA_PORT" \
    --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1 >&2
  log "topic $name: present (created with $parts partitions if it did not exist)"
}

cmd_clean() {
  cmd_down
  case "$STATE_DIR" in
    ""|"/") die "refusing to delete state dir '$STATE_DIR'" ;;
  esac
  log "removing $STATE_DIR"
  rm -rf "$STATE_DIR"
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case "$cmd" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) print_env ;;
    topics-create) cmd_topics_create "$@" ;;
    clean) cmd_clean ;;
    -h|--help|help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
