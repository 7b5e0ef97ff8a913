#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds (plain and with the
# address+undefined sanitizers), starts the dev services (real Redis and Kafka),
# runs every test, and stops the services it started.
#
#   tests/run.sh            everything
#   tests/run.sh -L unit    only the tests with that ctest label (unit, integration, e2e)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)

log() { printf 'tests: %s\n' "$*" >&2; }

bash deploy/dev/install-deps.sh

# The third-party CloudEvents readers of tests/e2e/test_cloudevents_sdk.sh (a venv
# with PyPI packages, a Maven-built jar; cached, rebuilt when their inputs change).
# The test builds them itself too; a failure here shows up there as a failed test.
log "preparing the CloudEvents SDK readers (tests/e2e/sdk/build.sh)"
bash tests/e2e/sdk/build.sh >/dev/null || log "the CloudEvents SDK readers did not build: test_cloudevents_sdk will fail"

log "building (RelWithDebInfo) in build/"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"

log "building with sanitizers in build-asan/"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTOUCHFLOW_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"

# The libFuzzer harnesses (clang), a short run of each on the seed corpus; only
# when the whole suite runs.
fuzz_status=0
if [ $# -eq 0 ]; then
  log "fuzzing the decoder and the hash codec (${FUZZ_SECONDS:-12} s each)"
  bash tests/fuzz/run.sh "${FUZZ_SECONDS:-12}" || fuzz_status=1
fi

started=0
if ! bash deploy/dev/services.sh status >/dev/null 2>&1; then
  started=1
fi
set -a
eval "$(bash deploy/dev/services.sh up)"
set +a
cluster_started=0
stop_services() {
  if [ "$cluster_started" = 1 ]; then
    bash deploy/dev/services.sh down --cluster || true
  fi
  if [ "$started" = 1 ]; then
    bash deploy/dev/services.sh down || true
  fi
}
trap stop_services EXIT

status=$fuzz_status
log "running the tests against Kafka $TOUCHFLOW_KAFKA_BROKERS and Redis $TOUCHFLOW_REDIS_URL"
ctest --test-dir build --output-on-failure -LE cluster "$@" || status=1

# The stream faults and the heavy end-to-end runs (ctest labels `stream`, `heavy`)
# run once, above: their minutes of kills, outages and repeated years under the
# sanitizers would double the suite's time for paths the sanitizer build already
# runs in the other fault and e2e tests.
log "running the tests again on the sanitizer build"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -LE "stream|heavy|cluster" "$@" || status=1

# The scale-out tests (ctest label `cluster`) on the clustered services: a Redis
# Cluster of 3 primaries and 3 replicas and a 3-broker Kafka, exported as
# TOUCHFLOW_CLUSTER_* beside the single-node ones, and up only for these tests (their
# idle brokers would slow every other test). With arguments, only when they name it.
if [ $# -eq 0 ] || printf '%s\n' "$@" | grep -q cluster; then
  bash deploy/dev/services.sh status --cluster >/dev/null 2>&1 || cluster_started=1
  if cluster_env=$(bash deploy/dev/services.sh up --cluster); then
    eval "$(printf '%s\n' "$cluster_env" | sed -n 's/^TOUCHFLOW_\(KAFKA_BROKERS\|REDIS_URL\)=/export TOUCHFLOW_CLUSTER_\1=/p')"
    log "running the scale-out tests against Kafka $TOUCHFLOW_CLUSTER_KAFKA_BROKERS and Redis $TOUCHFLOW_CLUSTER_REDIS_URL"
    ctest --test-dir build --output-on-failure -L cluster || status=1
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --test-dir build-asan --output-on-failure -L cluster -LE "stream|heavy" || status=1
  else
    log "the clustered services did not start"
    status=1
  fi
fi

if [ "$status" = 0 ]; then log "all tests passed"; else log "some tests FAILED"; fi
exit "$status"
