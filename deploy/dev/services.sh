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
# Clustered mode (`--cluster` after the command, or TOUCHFLOW_DEV_CLUSTER=1) runs
# beside the single-node services, on its own ports and state dir (<state>/cluster):
# a Redis Cluster of 3 primaries and 3 replicas (redis-server in cluster mode, AOF on,
# noeviction) and 3 Kafka nodes, each broker and controller, with a 3-voter quorum,
# replication factor 3 and min.insync.replicas 2. up, down, status, env, clean and
# topics-create (replication factor 3) all take --cluster. `up --cluster` and
# `env --cluster` print:
#   TOUCHFLOW_KAFKA_BROKERS=127.0.0.1:19192,127.0.0.1:19193,127.0.0.1:19194
#   TOUCHFLOW_REDIS_URL=redis+cluster://127.0.0.1:17001,127.0.0.1:17002,127.0.0.1:17003
#   TOUCHFLOW_DEV_CLUSTER_DIR=<state>/cluster
# Nodes: Redis on ports 17001-17006, dir <cluster dir>/redis-PORT (redis.pid,
# redis.log, nodes.conf, appendonlydir); Kafka node N (1..3) on 19191+N, controller
# 19194+N, dir <cluster dir>/kafka-N (kafka.pid, server.log, server.properties, data).
# A killed broker is fenced after 6 s (broker.session.timeout.ms); a Redis primary
# after cluster-node-timeout (2 s), when its replica takes over.
# For failover tests (these imply --cluster):
#   services.sh cluster-redis-primary-of SLOT     print the port of the primary owning SLOT
#   services.sh cluster-kafka-leader-of TOPIC P   print N, the broker leading partition P
#   services.sh cluster-kill redis PORT           kill -9 that Redis node
#   services.sh cluster-kill kafka N              kill -9 broker N
#   services.sh cluster-restart redis PORT        start it again on its dir and wait until
#                                                 it is back in the cluster (a former
#                                                 primary rejoins as a replica)
#   services.sh cluster-restart kafka N           start broker N again on its dir; wait
#                                                 until it is registered and every
#                                                 partition's replicas are back in sync
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
#   TOUCHFLOW_DEV_KAFKA_GC_OPTS    the brokers' collector (default G1 with a 20 ms pause goal)
#   TOUCHFLOW_DEV_START_TIMEOUT    seconds to wait for the broker (default 120)
#   JAVA_HOME                      JDK/JRE >= 17 to use (default: java on PATH)
# Clustered mode:
#   TOUCHFLOW_DEV_CLUSTER                   1: every command acts on the cluster
#   TOUCHFLOW_DEV_CLUSTER_DIR               state dir (default: <state>/cluster)
#   TOUCHFLOW_DEV_CLUSTER_REDIS_PORT        first of the six Redis ports (default 17001)
#   TOUCHFLOW_DEV_CLUSTER_NODE_TIMEOUT      Redis cluster-node-timeout in ms (default 2000)
#   TOUCHFLOW_DEV_CLUSTER_KAFKA_PORT        first of the three PLAINTEXT ports (default 19192)
#   TOUCHFLOW_DEV_CLUSTER_CONTROLLER_PORT   first of the three controller ports
#                                           (default: the PLAINTEXT one + 3)
#   TOUCHFLOW_DEV_CLUSTER_KAFKA_HEAP_OPTS   per broker (default "-Xmx512m -Xms128m")
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
KAFKA_GC_OPTS=${TOUCHFLOW_DEV_KAFKA_GC_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35}
START_TIMEOUT=${TOUCHFLOW_DEV_START_TIMEOUT:-120}
FALLBACK_KAFKA_VERSION=3.9.0

REDIS_DIR="$STATE_DIR/redis"
REDIS_PID="$REDIS_DIR/redis.pid"
KAFKA_DIR="$STATE_DIR/kafka"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
TOOLS_LOG4J="$KAFKA_DIR/tools-log4j.properties"
CLUSTER_ID_FILE="$KAFKA_DIR/cluster.id"
# Every Redis node dir (the single node's above, each cluster node's) holds redis.pid,
# redis.log and redis.out (stdout/stderr before daemonizing: config errors). Every
# Kafka node dir holds kafka.pid, kafka.out (JVM stdout/stderr, normally near empty),
# server.log (log4j output), server.properties, log4j.properties and data/.

# Clustered mode: six Redis nodes and three Kafka nodes, ports counted up from a base.
CLUSTER_DIR=${TOUCHFLOW_DEV_CLUSTER_DIR:-$STATE_DIR/cluster}
CLUSTER_REDIS_BASE=${TOUCHFLOW_DEV_CLUSTER_REDIS_PORT:-17001}
CLUSTER_NODE_TIMEOUT=${TOUCHFLOW_DEV_CLUSTER_NODE_TIMEOUT:-2000}
CLUSTER_KAFKA_BASE=${TOUCHFLOW_DEV_CLUSTER_KAFKA_PORT:-19192}
CLUSTER_CONTROLLER_BASE=${TOUCHFLOW_DEV_CLUSTER_CONTROLLER_PORT:-$((CLUSTER_KAFKA_BASE + 3))}
CLUSTER_KAFKA_HEAP_OPTS=${TOUCHFLOW_DEV_CLUSTER_KAFKA_HEAP_OPTS:--Xmx512m -Xms128m}
CLUSTER_REDIS_NODES=6
CLUSTER_KAFKA_NODES=3
CLUSTER_KAFKA_DOWN_HINT="services.sh down --cluster"

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }

# The header comment, from line 2 to the first line that is not a comment.
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2; }

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

# kill_now NAME PIDFILE PATTERN: SIGKILL, as a crash would; the pidfile stays (stale).
kill_now() {
  local name=$1 pidfile=$2 pattern=$3 pid i
  pid=$(pid_alive "$pidfile" "$pattern") || die "$name: not running"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    running "$pid" || break
    sleep 0.1
  done
  log "$name: killed pid $pid (SIGKILL)"
}

# --- redis -------------------------------------------------------------------------

# redis_ping [PORT]
redis_ping() {
  [ "$(redis-cli -h "$HOST" -p "${1:-$REDIS_PORT}" ping 2>/dev/null)" = PONG ]
}

# redis_start NAME DIR PORT PORT_VARIABLE [redis-server options...]: start a
# daemonized redis-server on HOST:PORT with its pidfile and logs in DIR, unless it
# is running; wait for PONG.
redis_start() {
  local name=$1 dir=$2 port=$3 port_var=$4 pid i
  shift 4
  if pid=$(pid_alive "$dir/redis.pid" redis-server); then
    log "$name: already running (pid $pid, $HOST:$port)"
    return 0
  fi
  rm -f "$dir/redis.pid"
  if port_open "$port"; then
    die "$name: port $port is in use by a process this script did not start; stop it or set $port_var"
  fi
  mkdir -p "$dir"
  log "$name: starting on $HOST:$port"
  redis-server --bind "$HOST" --port "$port" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
    "$@" </dev/null >"$dir/redis.out" 2>&1 3>&- 8>&- 9>&- \
    || { tail -n 20 "$dir/redis.out" >&2 2>/dev/null || true; die "$name: redis-server failed to start"; }
  for ((i = 0; i < 100; i++)); do
    if redis_ping "$port"; then
      log "$name: ready (pid $(cat "$dir/redis.pid" 2>/dev/null || echo '?'))"
      return 0
    fi
    sleep 0.1
  done
  tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
  die "$name: not answering PING on $HOST:$port after 10s (log: $dir/redis.log)"
}

redis_up() {
  redis_start redis "$REDIS_DIR" "$REDIS_PORT" TOUCHFLOW_DEV_REDIS_PORT --save '' --appendonly no
}

# --- kafka -------------------------------------------------------------------------

# write_kafka_config DIR NODE_ID PORT CONTROLLER_PORT VOTERS PARTITIONS RF MIN_ISR
#                    DESCRIPTION [EXTRA]
# server.properties and log4j.properties of one combined broker+controller in DIR:
# VOTERS is controller.quorum.voters, RF and MIN_ISR apply to topics and the internal
# topics, EXTRA is appended as is.
write_kafka_config() {
  local dir=$1 node_id=$2 port=$3 cport=$4 voters=$5 parts=$6 rf=$7 min_isr=$8
  local description=$9 extra=${10:-}
  mkdir -p "$dir" "$dir/data"
  cat >"$dir/server.properties" <<EOF
# Generated by deploy/dev/services.sh on every start; edits are overwritten.
# $description
process.roles=broker,controller
node.id=$node_id
controller.quorum.voters=$voters
listeners=PLAINTEXT://$HOST:$port,CONTROLLER://$HOST:$cport
advertised.listeners=PLAINTEXT://$HOST:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data

num.partitions=$parts
default.replication.factor=$rf
min.insync.replicas=$min_isr
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
transaction.state.log.num.partitions=10
group.initial.rebalance.delay.ms=0

num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
log.segment.bytes=134217728
EOF
  if [ -n "$extra" ]; then printf '%s\n' "$extra" >>"$dir/server.properties"; fi
  cat >"$dir/log4j.properties" <<EOF
# Generated by deploy/dev/services.sh. Broker logs go to a file, nothing to the console.
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$dir/server.log
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
  mkdir -p "$(dirname "$TOOLS_LOG4J")"
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

# kafka_cluster_id FILE NAME: the KRaft cluster id kept in FILE (made on first use)
# into CLUSTER_ID.
kafka_cluster_id() {
  local file=$1 name=$2
  if [ -s "$file" ]; then
    CLUSTER_ID=$(cat "$file")
  else
    CLUSTER_ID=$(kafka_tool kafka.tools.StorageTool random-uuid | tail -n1 | tr -d '[:space:]')
    [ -n "$CLUSTER_ID" ] || die "$name: StorageTool random-uuid printed nothing"
    echo "$CLUSTER_ID" >"$file"
  fi
}

# kafka_format DIR CLUSTER_ID_FILE NAME: format DIR/data once, for the cluster id in
# CLUSTER_ID_FILE.
kafka_format() {
  local dir=$1 id_file=$2 name=$3
  if [ -f "$dir/data/meta.properties" ]; then
    return 0
  fi
  kafka_cluster_id "$id_file" "$name"
  log "$name: formatting KRaft storage (cluster id $CLUSTER_ID)"
  kafka_tool kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$dir/server.properties" >&2 \
    || die "$name: StorageTool format failed"
}

# kafka_meta PORT MODE [ARGS]: one Kafka Metadata v1 request (all topics) over a raw
# socket (no JVM start). Modes:
#   brokers MIN         succeed when the answer lists at least MIN brokers and an
#                       elected controller
#   leader TOPIC PART   print the node id of the leader of TOPIC's partition PART
#   insync              succeed when every partition's ISR holds all its replicas
kafka_meta() {
  python3 - "$HOST" "$@" <<'PY' 2>/dev/null
import socket, struct, sys

host, port, mode, args = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]

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
    off += 4
    if corr != 7:
        sys.exit(1)
    if mode == "brokers":
        sys.exit(0 if nbrokers >= int(args[0]) and controller_id >= 0 else 1)
    # topics: error_code, name, is_internal, partitions: error_code, index, leader,
    # replicas, isr
    topics = {}
    ntopics, = struct.unpack_from(">i", data, off)
    off += 4
    for _ in range(ntopics):
        _, nlen = struct.unpack_from(">hh", data, off)
        off += 4
        name = data[off:off + nlen].decode()
        off += nlen + 1
        nparts, = struct.unpack_from(">i", data, off)
        off += 4
        parts = {}
        for _ in range(nparts):
            _, index, leader, nrep = struct.unpack_from(">hiii", data, off)
            off += 14
            replicas = struct.unpack_from(">%di" % nrep, data, off)
            off += 4 * nrep
            nisr, = struct.unpack_from(">i", data, off)
            off += 4
            isr = struct.unpack_from(">%di" % nisr, data, off)
            off += 4 * nisr
            parts[index] = (leader, replicas, isr)
        topics[name] = parts
    if mode == "leader":
        leader = topics.get(args[0], {}).get(int(args[1]), (-1,))[0]
        if leader < 0:
            sys.exit(1)
        print(leader)
        sys.exit(0)
    if mode == "insync":
        sys.exit(0 if all(set(r) <= set(i) for ps in topics.values() for _, r, i in ps.values()) else 1)
    sys.exit(2)
except Exception:
    sys.exit(1)
PY
}

# kafka_metadata_ok [PORT [MIN_BROKERS]]: the broker answers Metadata with at least
# MIN_BROKERS (default 1) brokers and an elected controller.
kafka_metadata_ok() {
  kafka_meta "${1:-$KAFKA_PORT}" brokers "${2:-1}"
}

# kafka_ports_free NAME PORT_VARIABLES PORT...
kafka_ports_free() {
  local name=$1 port_vars=$2 p
  shift 2
  for p in "$@"; do
    if port_open "$p"; then
      die "$name: port $p is in use by a process this script did not start; stop it or set $port_vars"
    fi
  done
}

# kafka_launch NAME DIR PORT CONTROLLER_PORT HEAP_OPTS: start the JVM of the node whose
# config is in DIR, detached; its pid goes to DIR/kafka.pid and LAUNCHED_PID.
kafka_launch() {
  local name=$1 dir=$2 port=$3 cport=$4 heap=$5
  log "$name: starting broker $KAFKA_VERSION on $HOST:$port (controller $HOST:$cport)"
  # Detached: stdio to files; fd 3 (the caller's stdout, maybe a $(...) pipe) and
  # fds 8/9 (the cache and state locks) closed, so neither `eval "$(services.sh up)"`
  # nor the locks wait for the broker to exit.
  # shellcheck disable=SC2086 # heap and collector are lists of JVM flags
  nohup "$(java_bin)" $heap $KAFKA_GC_OPTS \
    -server -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$dir/log4j.properties" -Dkafka.logs.dir="$dir" \
    -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" \
    </dev/null >"$dir/kafka.out" 2>&1 3>&- 8>&- 9>&- &
  LAUNCHED_PID=$!
  echo "$LAUNCHED_PID" >"$dir/kafka.pid"
}

# kafka_wait NAME DIR PORT MIN_BROKERS PID DOWN_COMMAND: wait until the node answers
# Metadata listing MIN_BROKERS brokers; die if it exits or after START_TIMEOUT.
kafka_wait() {
  local name=$1 dir=$2 port=$3 min=$4 pid=$5 down=$6 deadline listing=
  [ "$min" -gt 1 ] && listing=" listing $min brokers"
  deadline=$(($(date +%s) + START_TIMEOUT))
  while :; do
    if kafka_metadata_ok "$port" "$min"; then
      log "$name: ready (pid $pid)"
      return 0
    fi
    if ! running "$pid"; then
      log "$name: broker exited during start; last lines of $dir/kafka.out and $dir/server.log:"
      tail -n 20 "$dir/kafka.out" >&2 2>/dev/null || true
      tail -n 40 "$dir/server.log" >&2 2>/dev/null || true
      rm -f "$dir/kafka.pid"
      die "$name: failed to start"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "$name: no Metadata answer$listing on $HOST:$port after ${START_TIMEOUT}s; last lines of $dir/server.log:"
      tail -n 40 "$dir/server.log" >&2 2>/dev/null || true
      die "$name: not ready (still running as pid $pid; '$down' stops it)"
    fi
    sleep 0.25
  done
}

kafka_up() {
  local pid
  if pid=$(pid_alive "$KAFKA_PID" kafka.Kafka); then
    log "kafka: already running (pid $pid, $HOST:$KAFKA_PORT)"
  else
    rm -f "$KAFKA_PID"
    kafka_ports_free kafka "TOUCHFLOW_DEV_KAFKA_PORT / TOUCHFLOW_DEV_CONTROLLER_PORT" \
      "$KAFKA_PORT" "$CONTROLLER_PORT"
    write_kafka_config "$KAFKA_DIR" 1 "$KAFKA_PORT" "$CONTROLLER_PORT" \
      "1@$HOST:$CONTROLLER_PORT" 4 1 1 "Single-node KRaft: this node is both broker and controller."
    kafka_format "$KAFKA_DIR" "$CLUSTER_ID_FILE" kafka
    kafka_launch kafka "$KAFKA_DIR" "$KAFKA_PORT" "$CONTROLLER_PORT" "$KAFKA_HEAP_OPTS"
    pid=$LAUNCHED_PID
  fi
  kafka_wait kafka "$KAFKA_DIR" "$KAFKA_PORT" 1 "$pid" "services.sh down"
}

# --- clustered mode: redis ---------------------------------------------------------

cluster_redis_ports() { seq "$CLUSTER_REDIS_BASE" $((CLUSTER_REDIS_BASE + CLUSTER_REDIS_NODES - 1)); }
cluster_redis_dir() { echo "$CLUSTER_DIR/redis-$1"; }

# cluster_redis_field PORT SECTION FIELD: FIELD of `CLUSTER INFO` (SECTION cluster) or
# of `INFO SECTION`; empty when the node does not answer.
cluster_redis_field() {
  local port=$1 section=$2 field=$3
  if [ "$section" = cluster ]; then
    redis-cli -h "$HOST" -p "$port" cluster info 2>/dev/null
  else
    redis-cli -h "$HOST" -p "$port" info "$section" 2>/dev/null
  fi | tr -d '\r' | sed -n "s/^$field://p" || true
}

cluster_redis_start() {
  local port=$1 dir
  dir=$(cluster_redis_dir "$port")
  redis_start "redis-$port" "$dir" "$port" TOUCHFLOW_DEV_CLUSTER_REDIS_PORT \
    --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
    --cluster-node-timeout "$CLUSTER_NODE_TIMEOUT" \
    --appendonly yes --save '' --maxmemory-policy noeviction
}

# cluster_redis_node_ok PORT: the node sees the cluster ok with every slot assigned and
# all nodes known; a replica also has its link to its primary up.
cluster_redis_node_ok() {
  local port=$1 info
  info=$(redis-cli -h "$HOST" -p "$port" cluster info 2>/dev/null | tr -d '\r')
  grep -qx 'cluster_state:ok' <<<"$info" || return 1
  grep -qx 'cluster_slots_assigned:16384' <<<"$info" || return 1
  grep -qx "cluster_known_nodes:$CLUSTER_REDIS_NODES" <<<"$info" || return 1
  info=$(redis-cli -h "$HOST" -p "$port" info replication 2>/dev/null | tr -d '\r')
  grep -qx 'role:slave' <<<"$info" || return 0
  grep -qx 'master_link_status:up' <<<"$info"
}

# cluster_redis_wait PORT...: wait until every node named is ok.
cluster_redis_wait() {
  local deadline port pending
  deadline=$(($(date +%s) + START_TIMEOUT))
  while :; do
    pending=
    for port in "$@"; do
      cluster_redis_node_ok "$port" || { pending=$port; break; }
    done
    [ -z "$pending" ] && return 0
    if [ "$(date +%s)" -ge "$deadline" ]; then
      redis-cli -h "$HOST" -p "$pending" cluster info >&2 2>/dev/null || true
      die "redis-$pending: cluster not ok after ${START_TIMEOUT}s (log: $(cluster_redis_dir "$pending")/redis.log; 'services.sh clean --cluster' starts over)"
    fi
    sleep 0.2
  done
}

# The nodes' ports that are primaries, as the first node answering sees them.
cluster_redis_primaries() {
  local port
  for port in $(cluster_redis_ports); do
    if redis_ping "$port"; then
      redis-cli -h "$HOST" -p "$port" cluster nodes 2>/dev/null | tr -d '\r' \
        | awk '$3 ~ /master/ && $3 !~ /fail/ { split($2, a, "[:@]"); print a[2] }' | sort -n
      return 0
    fi
  done
  return 1
}

cluster_redis_up() {
  local port fresh=1 addrs=()
  for port in $(cluster_redis_ports); do
    cluster_redis_start "$port"
    addrs+=("$HOST:$port")
    # a node that knows others or owns slots has been part of the cluster already
    if [ "$(cluster_redis_field "$port" cluster cluster_known_nodes)" != 1 ] \
      || [ "$(cluster_redis_field "$port" cluster cluster_slots_assigned)" != 0 ]; then
      fresh=0
    fi
  done
  if [ "$fresh" = 1 ]; then
    log "redis cluster: creating (3 primaries, 3 replicas)"
    # (TERM=dumb: no colour codes in the log)
    if ! TERM=dumb redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
        </dev/null >"$CLUSTER_DIR/redis-create.log" 2>&1; then
      tail -n 20 "$CLUSTER_DIR/redis-create.log" >&2 || true
      die "redis cluster: redis-cli --cluster create failed (log: $CLUSTER_DIR/redis-create.log)"
    fi
  fi
  # shellcheck disable=SC2046 # the ports
  cluster_redis_wait $(cluster_redis_ports)
  log "redis cluster: ok, 16384 slots, primaries $(cluster_redis_primaries | paste -sd, -)"
}

# --- clustered mode: kafka ---------------------------------------------------------

cluster_kafka_dir() { echo "$CLUSTER_DIR/kafka-$1"; }
cluster_kafka_port() { echo $((CLUSTER_KAFKA_BASE + $1 - 1)); }
cluster_kafka_cport() { echo $((CLUSTER_CONTROLLER_BASE + $1 - 1)); }

cluster_kafka_voters() {
  local n voters=
  for ((n = 1; n <= CLUSTER_KAFKA_NODES; n++)); do
    voters+="${voters:+,}$n@$HOST:$(cluster_kafka_cport "$n")"
  done
  echo "$voters"
}

cluster_kafka_brokers() {
  local n brokers=
  for ((n = 1; n <= CLUSTER_KAFKA_NODES; n++)); do
    brokers+="${brokers:+,}$HOST:$(cluster_kafka_port "$n")"
  done
  echo "$brokers"
}

# cluster_kafka_start N...: start the nodes named that are not running (configs
# written, storage formatted, in parallel where it takes a JVM each); their pids go
# to CLUSTER_KAFKA_PIDS[N].
cluster_kafka_start() {
  local n dir pid pids=() launch=()
  for n in "$@"; do
    dir=$(cluster_kafka_dir "$n")
    if pid=$(pid_alive "$dir/kafka.pid" kafka.Kafka); then
      log "kafka-$n: already running (pid $pid, $HOST:$(cluster_kafka_port "$n"))"
      CLUSTER_KAFKA_PIDS[n]=$pid
      continue
    fi
    rm -f "$dir/kafka.pid"
    kafka_ports_free "kafka-$n" "TOUCHFLOW_DEV_CLUSTER_KAFKA_PORT / TOUCHFLOW_DEV_CLUSTER_CONTROLLER_PORT" \
      "$(cluster_kafka_port "$n")" "$(cluster_kafka_cport "$n")"
    write_kafka_config "$dir" "$n" "$(cluster_kafka_port "$n")" "$(cluster_kafka_cport "$n")" \
      "$(cluster_kafka_voters)" 6 3 2 \
      "Node $n of a $CLUSTER_KAFKA_NODES-node KRaft cluster: broker and controller (combined) on every node." \
      "$(printf '%s\n' '' '# A killed broker is fenced (its partitions led elsewhere) after 6 s.' \
          'broker.heartbeat.interval.ms=1000' 'broker.session.timeout.ms=6000')"
    launch+=("$n")
  done
  [ "${#launch[@]}" -gt 0 ] || return 0
  # one cluster id for all, then the formats side by side
  kafka_cluster_id "$CLUSTER_DIR/kafka-cluster.id" kafka
  for n in "${launch[@]}"; do
    kafka_format "$(cluster_kafka_dir "$n")" "$CLUSTER_DIR/kafka-cluster.id" "kafka-$n" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || die "kafka: formatting the cluster's storage failed"
  done
  for n in "${launch[@]}"; do
    kafka_launch "kafka-$n" "$(cluster_kafka_dir "$n")" "$(cluster_kafka_port "$n")" \
      "$(cluster_kafka_cport "$n")" "$CLUSTER_KAFKA_HEAP_OPTS"
    CLUSTER_KAFKA_PIDS[n]=$LAUNCHED_PID
  done
}

# cluster_kafka_wait N...: each node named answers Metadata listing every broker.
cluster_kafka_wait() {
  local n
  for n in "$@"; do
    kafka_wait "kafka-$n" "$(cluster_kafka_dir "$n")" "$(cluster_kafka_port "$n")" \
      "$CLUSTER_KAFKA_NODES" "${CLUSTER_KAFKA_PIDS[n]}" "$CLUSTER_KAFKA_DOWN_HINT"
  done
}

# A PLAINTEXT port of a broker that answers Metadata, or fail.
cluster_kafka_any_port() {
  local n port
  for ((n = 1; n <= CLUSTER_KAFKA_NODES; n++)); do
    port=$(cluster_kafka_port "$n")
    if kafka_metadata_ok "$port"; then echo "$port"; return 0; fi
  done
  return 1
}

# --- clustered mode: commands ------------------------------------------------------

print_cluster_env() {
  local ports
  ports=$(cluster_redis_ports | head -n 3 | sed "s/^/$HOST:/" | paste -sd, -)
  printf 'TOUCHFLOW_KAFKA_BROKERS=%s\n' "$(cluster_kafka_brokers)"
  printf 'TOUCHFLOW_REDIS_URL=redis+cluster://%s\n' "$ports"
  printf 'TOUCHFLOW_DEV_CLUSTER_DIR=%q\n' "$CLUSTER_DIR"
}

all_kafka_nodes() { seq 1 "$CLUSTER_KAFKA_NODES"; }

cmd_cluster_up() {
  local t0
  t0=$(now_ms)
  exec 3>&1 1>&2
  ensure_deps
  ensure_gitignore
  with_lock "$CLUSTER_DIR"
  fetch_jars
  # the JVMs start first and come up while the Redis cluster forms
  # shellcheck disable=SC2046 # the node numbers
  cluster_kafka_start $(all_kafka_nodes)
  cluster_redis_up
  # shellcheck disable=SC2046
  cluster_kafka_wait $(all_kafka_nodes)
  log "cluster up in $(( $(now_ms) - t0 ))ms (state: $CLUSTER_DIR, jars: $LIBS)"
  print_cluster_env >&3
}

# Stop every cluster process, Kafka first, the nodes of each side by side.
cluster_stop_all() {
  local n port pids=() pid
  for n in $(all_kafka_nodes); do
    stop_pid "kafka-$n" "$(cluster_kafka_dir "$n")/kafka.pid" kafka.Kafka 30 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || true; done
  pids=()
  for port in $(cluster_redis_ports); do
    stop_pid "redis-$port" "$(cluster_redis_dir "$port")/redis.pid" redis-server 10 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || true; done
}

cluster_any_alive() {
  local n port
  for n in $(all_kafka_nodes); do
    pid_alive "$(cluster_kafka_dir "$n")/kafka.pid" kafka.Kafka >/dev/null && return 0
  done
  for port in $(cluster_redis_ports); do
    pid_alive "$(cluster_redis_dir "$port")/redis.pid" redis-server >/dev/null && return 0
  done
  return 1
}

cmd_cluster_down() {
  with_lock "$CLUSTER_DIR"
  cluster_stop_all
}

cmd_cluster_status() {
  local rc=0 pid port n role state slots
  for port in $(cluster_redis_ports); do
    if pid=$(pid_alive "$(cluster_redis_dir "$port")/redis.pid" redis-server); then
      if redis_ping "$port"; then
        role=$(cluster_redis_field "$port" replication role)
        [ "$role" = master ] && role=primary
        [ "$role" = slave ] && role=replica
        echo "redis-$port  up        pid $pid  $HOST:$port  $role"
      else
        echo "redis-$port  unhealthy pid $pid  $HOST:$port (no PONG)"; rc=1
      fi
    else
      echo "redis-$port  down"; rc=1
    fi
  done
  state=; slots=
  for port in $(cluster_redis_ports); do
    state=$(cluster_redis_field "$port" cluster cluster_state)
    if [ -n "$state" ]; then
      slots=$(cluster_redis_field "$port" cluster cluster_slots_ok)
      break
    fi
  done
  if [ "$state" = ok ]; then
    echo "redis cluster  ok  ${slots:-?}/16384 slots served"
  else
    echo "redis cluster  ${state:-down}"; rc=1
  fi
  for n in $(all_kafka_nodes); do
    port=$(cluster_kafka_port "$n")
    if pid=$(pid_alive "$(cluster_kafka_dir "$n")/kafka.pid" kafka.Kafka); then
      if kafka_metadata_ok "$port" "$CLUSTER_KAFKA_NODES"; then
        echo "kafka-$n  up        pid $pid  $HOST:$port"
      elif kafka_metadata_ok "$port"; then
        echo "kafka-$n  degraded  pid $pid  $HOST:$port (Metadata lists fewer than $CLUSTER_KAFKA_NODES brokers)"; rc=1
      else
        echo "kafka-$n  starting  pid $pid  $HOST:$port (no Metadata answer yet)"; rc=1
      fi
    else
      echo "kafka-$n  down"; rc=1
    fi
  done
  return "$rc"
}

cmd_cluster_topics_create() {
  [ $# -eq 2 ] || die "usage: services.sh topics-create --cluster NAME PARTITIONS"
  local name=$1 parts=$2
  case "$parts" in ''|*[!0-9]*) die "PARTITIONS must be a positive integer, got '$parts'" ;; esac
  LIBS=$(cached_libs) || die "Kafka jars not fetched yet: run 'services.sh up --cluster' first"
  cluster_kafka_any_port >/dev/null || die "no cluster broker is answering: run 'services.sh up --cluster' first"
  write_tools_log4j
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$(cluster_kafka_brokers)" \
    --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 3 >&2
  log "topic $name: present (created with $parts partitions, replication factor 3, if it did not exist)"
}

cmd_cluster_clean() {
  cmd_cluster_down
  case "$CLUSTER_DIR" in
    ""|"/") die "refusing to delete state dir '$CLUSTER_DIR'" ;;
  esac
  log "removing $CLUSTER_DIR"
  rm -rf "$CLUSTER_DIR"
}

# node_arg KIND VALUE: check a redis port or a kafka node number.
node_arg() {
  local kind=$1 v=${2:-}
  case "$v" in ''|*[!0-9]*) die "expected a number, got '$v'" ;; esac
  case "$kind" in
    redis) cluster_redis_ports | grep -qx -- "$v" \
             || die "no cluster Redis node on port $v (ports: $(cluster_redis_ports | paste -sd' ' -))" ;;
    kafka) if [ "$v" -lt 1 ] || [ "$v" -gt "$CLUSTER_KAFKA_NODES" ]; then
             die "no cluster Kafka node $v (nodes: 1..$CLUSTER_KAFKA_NODES)"
           fi ;;
    *) die "expected redis or kafka, got '$kind'" ;;
  esac
}

cmd_cluster_redis_primary_of() {
  [ $# -eq 1 ] || die "usage: services.sh cluster-redis-primary-of SLOT"
  local slot=$1 port
  case "$slot" in ''|*[!0-9]*) die "SLOT must be 0..16383, got '$slot'" ;; esac
  [ "$slot" -le 16383 ] || die "SLOT must be 0..16383, got '$slot'"
  for port in $(cluster_redis_ports); do
    redis_ping "$port" || continue
    # CLUSTER NODES: id addr flags primary ping pong epoch link slot-ranges...
    redis-cli -h "$HOST" -p "$port" cluster nodes 2>/dev/null | tr -d '\r' | awk -v s="$slot" '
      $3 ~ /master/ && $3 !~ /fail/ {
        for (i = 9; i <= NF; i++) {
          if ($i ~ /^\[/) continue
          n = split($i, r, "-"); lo = r[1]; hi = (n > 1) ? r[2] : r[1]
          if (s + 0 >= lo + 0 && s + 0 <= hi + 0) { split($2, a, "[:@]"); print a[2]; found = 1; exit }
        }
      }
      END { exit found ? 0 : 1 }' && return 0
    die "no primary serves slot $slot (as node $port sees it)"
  done
  die "no cluster Redis node is answering"
}

cmd_cluster_kafka_leader_of() {
  [ $# -eq 2 ] || die "usage: services.sh cluster-kafka-leader-of TOPIC PARTITION"
  local port
  port=$(cluster_kafka_any_port) || die "no cluster broker is answering"
  kafka_meta "$port" leader "$1" "$2" || die "no leader for $1 partition $2 (as broker on $port sees it)"
}

cmd_cluster_kill() {
  [ $# -eq 2 ] || die "usage: services.sh cluster-kill redis PORT | kafka N"
  node_arg "$1" "$2"
  case "$1" in
    redis) kill_now "redis-$2" "$(cluster_redis_dir "$2")/redis.pid" redis-server ;;
    kafka) kill_now "kafka-$2" "$(cluster_kafka_dir "$2")/kafka.pid" kafka.Kafka ;;
  esac
}

cmd_cluster_restart() {
  [ $# -eq 2 ] || die "usage: services.sh cluster-restart redis PORT | kafka N"
  node_arg "$1" "$2"
  exec 3>&1 1>&2
  with_lock "$CLUSTER_DIR"
  case "$1" in
    redis)
      [ -d "$(cluster_redis_dir "$2")" ] || die "redis-$2: no state yet: run 'services.sh up --cluster' first"
      cluster_redis_start "$2"
      cluster_redis_wait "$2"
      log "redis-$2: back in the cluster as $(cluster_redis_field "$2" replication role | sed 's/master/primary/;s/slave/replica/')"
      ;;
    kafka)
      [ -f "$(cluster_kafka_dir "$2")/data/meta.properties" ] \
        || die "kafka-$2: no state yet: run 'services.sh up --cluster' first"
      fetch_jars
      cluster_kafka_start "$2"
      cluster_kafka_wait "$2"
      local deadline
      deadline=$(($(date +%s) + START_TIMEOUT))
      until kafka_meta "$(cluster_kafka_port "$2")" insync; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
          log "kafka-$2: some partitions still under-replicated after ${START_TIMEOUT}s"
          return 0
        fi
        sleep 0.25
      done
      log "kafka-$2: every partition's replicas in sync"
      ;;
  esac
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

# with_lock [DIR]: hold DIR/.lock (default: the state dir) on fd 9.
with_lock() {
  local dir=${1:-$STATE_DIR}
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w 300 9 || die "another services.sh is holding $dir/.lock"
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
  # the cluster's state may live under the state dir too: stop it before deleting it
  case "$CLUSTER_DIR" in
    "$STATE_DIR"/*) if cluster_any_alive; then cluster_stop_all; fi ;;
  esac
  log "removing $STATE_DIR"
  rm -rf "$STATE_DIR"
}

main() {
  local cluster=0 arg args=()
  case "${TOUCHFLOW_DEV_CLUSTER:-}" in 1|yes|true) cluster=1 ;; esac
  for arg in "$@"; do
    if [ "$arg" = --cluster ]; then cluster=1; else args+=("$arg"); fi
  done
  set -- ${args[@]+"${args[@]}"}
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case "$cmd" in
    cluster-*) cluster=1 ;;
  esac
  if [ "$cluster" = 1 ]; then
    # the cluster's Kafka CLI tools get a log4j config of their own
    TOOLS_LOG4J="$CLUSTER_DIR/tools-log4j.properties"
    case "$cmd" in
      up) cmd_cluster_up ;;
      down) cmd_cluster_down ;;
      status) cmd_cluster_status ;;
      env) print_cluster_env ;;
      topics-create) cmd_cluster_topics_create "$@" ;;
      clean) cmd_cluster_clean ;;
      cluster-redis-primary-of) cmd_cluster_redis_primary_of "$@" ;;
      cluster-kafka-leader-of) cmd_cluster_kafka_leader_of "$@" ;;
      cluster-kill) cmd_cluster_kill "$@" ;;
      cluster-restart) cmd_cluster_restart "$@" ;;
      -h|--help|help) usage ;;
      *) usage; exit 2 ;;
    esac
    return
  fi
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
