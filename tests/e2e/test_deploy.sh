#!/usr/bin/env bash
# Static checks of deploy/: Prometheus config and rules (promtool), the systemd unit
# (systemd-analyze verify), every JSON and YAML file parses, and every metric the
# dashboard and the alert rules use is one touchflowd really exports (read from a
# running daemon's /metrics). Needs no Kafka or Redis.
set -uo pipefail

TFD=$(readlink -f "${1:?usage: $0 TOUCHFLOWD TOUCHFLOW}")
TF=$(readlink -f "${2:?usage: $0 TOUCHFLOWD TOUCHFLOW}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEPLOY="$ROOT/deploy"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/touchflow-deploy.XXXXXX")
FAILURES=0
CHECKS=0
DAEMON_PID=

check() {
  local what=$1; shift
  CHECKS=$((CHECKS + 1))
  if "$@" >"$WORK/out" 2>&1; then
    echo "ok - $what"
  else
    echo "FAILED - $what"; sed 's/^/  /' "$WORK/out" | tail -n 20
    FAILURES=$((FAILURES + 1))
  fi
}
cleanup() { [ -n "$DAEMON_PID" ] && kill -9 "$DAEMON_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

for tool in promtool systemd-analyze curl; do
  command -v "$tool" >/dev/null || { echo "FAILED - $tool is missing (deploy/dev/install-deps.sh installs it)"; exit 1; }
done

check "promtool check config" promtool check config "$DEPLOY/prometheus/prometheus.yml"
check "promtool check rules" promtool check rules "$DEPLOY/prometheus/alerts.yml"

# The unit names /usr/local/bin/touchflowd; verify a copy that runs the built one.
sed "s#/usr/local/bin/touchflowd#$TFD#" "$DEPLOY/systemd/touchflowd.service" >"$WORK/touchflowd.service"
check "systemd-analyze verify touchflowd.service" systemd-analyze verify "$WORK/touchflowd.service"

json_ok() { local f; for f in "$@"; do python3 -m json.tool "$f" >/dev/null || { echo "$f"; return 1; }; done; }
check "every JSON file under deploy/ and config/ parses" json_ok $(find "$DEPLOY" "$ROOT/config" -name '*.json')

yaml_python=
for py in python3 /usr/bin/python3; do
  if "$py" -c 'import yaml' 2>/dev/null; then yaml_python=$py; break; fi
done
if [ -n "$yaml_python" ]; then
  yaml_ok() {
    "$yaml_python" - "$@" <<'PY'
import sys, yaml
for f in sys.argv[1:]:
    list(yaml.safe_load_all(open(f)))
PY
  }
  check "every YAML file under deploy/ parses" yaml_ok $(find "$DEPLOY" -name '*.yml' -o -name '*.yaml')

  # The compose files and manifests: the TOUCHFLOW_* variables they set, the configs
  # they carry, and the clustered ones' shape (deploy/README.md, Clustered setup).
  deploy_check() {
    "$yaml_python" - "$1" "$ROOT" "$TF" "$WORK" <<'PY'
import glob, json, os, re, subprocess, sys, yaml

what, root, tf, work = sys.argv[1:5]
deploy = os.path.join(root, "deploy")
compose_files = sorted(glob.glob(os.path.join(deploy, "docker", "docker-compose*.yml")))
k8s_files = sorted(glob.glob(os.path.join(deploy, "k8s", "**", "*.yaml"), recursive=True))
problems = []

def fail(msg):
    problems.append(msg)

def env_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}

def k8s_docs(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]

def containers(doc):
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])

def hosts(value):
    return [h.rsplit(":", 1)[0] for h in value.split(",") if h]

def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHFLOW_")}
    env.update(extra or {})
    return env

def config_check(path, env, label):
    r = subprocess.run([tf, "config", "check", path], env=clean_env(env),
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail("%s: touchflow config check: %s" % (label, (r.stdout + r.stderr).strip()))

if what == "env":
    # The variables touchflowd reads: its table in the config module.
    src = open(os.path.join(root, "pkg", "config", "config.c")).read()
    known = set(re.findall(r'\{"(TOUCHFLOW_[A-Z0-9_]+)",\s*"[a-z_.]+"\}', src))
    if not known:
        fail("no TOUCHFLOW_* table found in pkg/config/config.c")
    for f in compose_files:
        for name, svc in yaml.safe_load(open(f))["services"].items():
            for k in env_of(svc):
                if k.startswith("TOUCHFLOW_") and k not in known:
                    fail("%s: service %s sets %s, which touchflowd does not read"
                         % (os.path.relpath(f, root), name, k))
    for f in k8s_files:
        for doc in k8s_docs(f):
            for c in containers(doc):
                for e in c.get("env", []):
                    if e["name"].startswith("TOUCHFLOW_") and e["name"] not in known:
                        fail("%s: %s sets %s, which touchflowd does not read"
                             % (os.path.relpath(f, root), c["name"], e["name"]))
    print(len(known), "variables known:", " ".join(sorted(known)))

elif what == "configs":
    n = 0
    for f in k8s_files:
        for doc in k8s_docs(f):
            if doc.get("kind") != "ConfigMap":
                continue
            for key, text in (doc.get("data") or {}).items():
                if key.endswith(".json"):
                    path = os.path.join(work, "configmap-%d.json" % n)
                    open(path, "w").write(text)
                    config_check(path, {}, "%s %s" % (os.path.relpath(f, root), key))
                    n += 1
    # a touchflowd service: the image's config with the service's environment
    for f in compose_files:
        for name, svc in yaml.safe_load(open(f))["services"].items():
            if "build" in svc or str(svc.get("image", "")).startswith("touchflow"):
                config_check(os.path.join(root, "config", "touchflow.json"), env_of(svc),
                             "%s service %s" % (os.path.relpath(f, root), name))
                n += 1
    print(n, "configs checked")

elif what == "compose-cluster":
    f = os.path.join(deploy, "docker", "docker-compose.cluster.yml")
    services = yaml.safe_load(open(f))["services"]
    def cmd(svc):
        c = svc.get("command") or []
        return " ".join(c) if isinstance(c, list) else str(c)
    redis = sorted(n for n, s in services.items()
                   if "redis-server" in cmd(s) and "--cluster-enabled yes" in cmd(s))
    if len(redis) != 6:
        fail("expected 6 redis nodes in cluster mode, found %s" % redis)
    for n in redis:
        for opt in ("--appendonly yes", "--maxmemory-policy noeviction"):
            if opt not in cmd(services[n]):
                fail("%s: no %s" % (n, opt))
    init = [n for n, s in services.items() if "redis-cli --cluster create" in cmd(s)]
    if len(init) != 1:
        fail("expected one service running redis-cli --cluster create, found %s" % init)
    else:
        s = services[init[0]]
        if "--cluster-replicas 1" not in cmd(s):
            fail("%s: not --cluster-replicas 1" % init[0])
        if sorted(s.get("depends_on") or []) != redis:
            fail("%s: does not wait for the six redis nodes" % init[0])
    kafka = sorted(n for n, s in services.items() if str(s.get("image", "")).startswith("apache/kafka:"))
    if len(kafka) != 3:
        fail("expected 3 apache/kafka brokers, found %s" % kafka)
    want = {"KAFKA_DEFAULT_REPLICATION_FACTOR": "3", "KAFKA_MIN_INSYNC_REPLICAS": "2",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "3",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "3",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "2"}
    ids, cluster_ids, voters = {}, set(), set()
    for n in kafka:
        env = env_of(services[n])
        for k, v in want.items():
            if env.get(k) != v:
                fail("%s: %s is %r, want %s" % (n, k, env.get(k), v))
        ids[env.get("KAFKA_NODE_ID")] = n
        cluster_ids.add(env.get("CLUSTER_ID"))
        voters.add(env.get("KAFKA_CONTROLLER_QUORUM_VOTERS"))
        if env.get("KAFKA_ADVERTISED_LISTENERS") != "PLAINTEXT://%s:9092" % n:
            fail("%s: advertises %r" % (n, env.get("KAFKA_ADVERTISED_LISTENERS")))
    if len(ids) != 3 or len(cluster_ids) != 1 or None in cluster_ids:
        fail("brokers need distinct node ids and one CLUSTER_ID: %s %s" % (ids, cluster_ids))
    expect_voters = ",".join("%s@%s:9093" % (i, ids[i]) for i in sorted(ids))
    if voters != {expect_voters}:
        fail("controller quorum voters %s, want %s" % (voters, expect_voters))
    members = sorted(n for n, s in services.items() if "build" in s)
    if len(members) != 3:
        fail("expected 3 touchflowd members, found %s" % members)
    for n in members:
        s, env = services[n], env_of(services[n])
        if s["build"].get("dockerfile") != "deploy/docker/Dockerfile":
            fail("%s: not built from deploy/docker/Dockerfile" % n)
        url = env.get("TOUCHFLOW_REDIS_URL", "")
        if not url.startswith("redis+cluster://"):
            fail("%s: TOUCHFLOW_REDIS_URL %r is not redis+cluster://" % (n, url))
        elif not set(hosts(url[len("redis+cluster://"):])) <= set(redis):
            fail("%s: TOUCHFLOW_REDIS_URL names hosts that are not redis nodes: %s" % (n, url))
        if sorted(hosts(env.get("TOUCHFLOW_KAFKA_BROKERS", ""))) != kafka:
            fail("%s: TOUCHFLOW_KAFKA_BROKERS %r is not the three brokers"
                 % (n, env.get("TOUCHFLOW_KAFKA_BROKERS")))
        if not env.get("TOUCHFLOW_REDIS_WAIT_REPLICAS", "0").isdigit() \
                or int(env.get("TOUCHFLOW_REDIS_WAIT_REPLICAS", "0")) < 1:
            fail("%s: TOUCHFLOW_REDIS_WAIT_REPLICAS should be at least 1" % n)
        dep = s.get("depends_on") or {}
        if not init or dep.get(init[0], {}).get("condition") != "service_completed_successfully":
            fail("%s: does not wait for the cluster to be formed" % n)
    print("%d redis nodes, %d brokers, %d members" % (len(redis), len(kafka), len(members)))

elif what == "k8s-cluster":
    docs = [d for f in sorted(glob.glob(os.path.join(deploy, "k8s", "cluster", "*.yaml")))
            for d in k8s_docs(f)]
    kinds = sorted(d.get("kind") for d in docs)
    if kinds != ["ConfigMap", "Deployment", "PodDisruptionBudget"]:
        fail("k8s/cluster kinds %s, want ConfigMap, Deployment, PodDisruptionBudget" % kinds)
    by_kind = {d.get("kind"): d for d in docs}
    dep, pdb, cm = (by_kind.get(k, {}) for k in ("Deployment", "PodDisruptionBudget", "ConfigMap"))
    replicas = dep.get("spec", {}).get("replicas")
    if replicas != 3:
        fail("Deployment replicas %r, want 3" % replicas)
    match = dep.get("spec", {}).get("selector", {}).get("matchLabels")
    if match != dep.get("spec", {}).get("template", {}).get("metadata", {}).get("labels"):
        fail("Deployment selector does not match its pod labels")
    if pdb.get("spec", {}).get("selector", {}).get("matchLabels") != match:
        fail("PodDisruptionBudget selects other pods than the Deployment's")
    if not 1 <= pdb.get("spec", {}).get("minAvailable", 0) < (replicas or 0):
        fail("PodDisruptionBudget minAvailable should keep members up and let one go")
    vols = dep.get("spec", {}).get("template", {}).get("spec", {}).get("volumes", [])
    if cm.get("metadata", {}).get("name") not in [v.get("configMap", {}).get("name") for v in vols]:
        fail("the Deployment does not mount the ConfigMap")
    cfg = json.loads(cm.get("data", {}).get("touchflow.json", "{}"))
    if not cfg.get("redis", {}).get("url", "").startswith("redis+cluster://"):
        fail("ConfigMap redis.url is not redis+cluster://")
    if cfg.get("redis", {}).get("wait_replicas", 0) < 1:
        fail("ConfigMap redis.wait_replicas should be at least 1")
    if not cfg.get("kafka", {}).get("brokers"):
        fail("ConfigMap has no kafka.brokers")
    print("kinds:", " ".join(kinds))

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY
  }
  check "compose files and manifests set only TOUCHFLOW_* variables touchflowd reads" deploy_check env
  check "the configs of the compose files and manifests pass touchflow config check" deploy_check configs
  check "docker-compose.cluster.yml: Redis Cluster of 6, 3 brokers (RF 3, min ISR 2), 3 members" \
    deploy_check compose-cluster
  check "k8s/cluster: a 3-replica Deployment, its ConfigMap (redis+cluster, wait_replicas) and PDB" \
    deploy_check k8s-cluster
else
  echo "# no PyYAML: YAML files checked by promtool only"
fi

# The metric families a running daemon exports (Kafka and Redis unreachable: the
# endpoints answer all the same).
port_file="$WORK/out.port"
TOUCHFLOW_KAFKA_BROKERS=127.0.0.1:1 TOUCHFLOW_REDIS_URL=redis://127.0.0.1:1 \
  "$TFD" -o ops.listen=127.0.0.1:0 --stats-interval-ms 0 2>"$WORK/daemon.log" &
DAEMON_PID=$!
url=
for _ in $(seq 100); do
  url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$WORK/daemon.log" | head -n 1)
  [ -n "$url" ] && break
  sleep 0.1
done
curl -sf "$url/metrics" >"$WORK/metrics.txt"
check "the daemon serves /metrics" test -s "$WORK/metrics.txt"
check "promtool check metrics on the daemon's /metrics" sh -c "promtool check metrics <'$WORK/metrics.txt'"

used_metrics_exported() {
  python3 - "$WORK/metrics.txt" "$DEPLOY/grafana/touchflow-dashboard.json" "$DEPLOY/prometheus/alerts.yml" <<'PY'
import re, sys
exported = set()
for line in open(sys.argv[1]):
    m = re.match(r"# TYPE (\S+) (\S+)", line)
    if m:
        name, kind = m.groups()
        exported.add(name)
        if kind == "histogram":
            exported |= {name + "_bucket", name + "_sum", name + "_count"}
used = set()
for f in sys.argv[2:]:
    used |= set(re.findall(r"\btouchflow_[a-z0-9_]+", open(f).read()))
missing = sorted(used - exported)
if missing:
    print("used but not exported:", missing)
print(len(used), "metric names used,", len(exported), "exported")
sys.exit(1 if missing else 0)
PY
}
check "every metric the dashboard and the rules use is exported" used_metrics_exported
kill -TERM "$DAEMON_PID" 2>/dev/null
check "the daemon stops on SIGTERM with exit 0" wait "$DAEMON_PID"
DAEMON_PID=

echo "$((CHECKS - FAILURES)) passed, $FAILURES failed"
[ "$FAILURES" -eq 0 ]
