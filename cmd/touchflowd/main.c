/* touchflowd: the touchflow daemon. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/resource.h>

#include <event2/event.h>

#include "bus/bus.h"
#include "config/config.h"
#include "ops/ops.h"
#include "pipeline/pipeline.h"
#include "rebuild.h"

#define MOD "touchflowd"

typedef struct {
    struct event_base *base;
    tf_pipeline_t *pipeline;
    tf_ops_t *ops;
    int64_t shutdown_timeout_ms;
    int stopping;
    int drained;
    int rebuilt;             /* rebuild mode: every partition reached its stop */
    struct event *stats_timer;
} daemon_t;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: touchflowd [--config FILE] [options]\n"
            "\n"
            "Consumes touchpoint events from Kafka, keeps customer state in Redis and\n"
            "emits derived events. Configuration: FILE, then TOUCHFLOW_* environment\n"
            "variables, then -o overrides.\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE         JSON configuration file\n"
            "  -o, --set KEY=VALUE       override one configuration key (repeatable)\n"
            "      --clock wall|stream   the rules' clock: wall (default) or stream, the\n"
            "                            highest event time seen on the partition, for\n"
            "                            backfills and replays (same as -o timers.clock=...)\n"
            "      --embedded            run against an in-process Kafka mock cluster\n"
            "                            (quickstart only) and print its address\n"
            "      --stats-interval-ms N log processing figures every N ms (default 10000, 0 = off)\n"
            "      --rebuild-into PREFIX rebuild customer state from the input topics into the\n"
            "                            Redis key prefix PREFIX, on stream time, up to the offsets\n"
            "                            the configured group has committed, then exit 0 (README,\n"
            "                            Recovery); its progress is kept in the group\n"
            "                            <group>.rebuild.<PREFIX>, so a second run resumes\n"
            "      --from TIME           with --rebuild-into: start partitions at this RFC 3339\n"
            "                            time (default: their first offset)\n"
            "      --emit                with --rebuild-into: send the derived events again, with\n"
            "                            their deterministic ids (default: state only)\n"
            "  -h, --help                show this help\n"
            "  -V, --version             show the version\n"
            "\n"
            "Signals: SIGTERM or SIGINT drain in-flight work, commit offsets and exit 0.\n");
}

static void log_stats(tf_pipeline_t *p, const char *what)
{
    tf_pipeline_stats s;
    tf_pipeline_get_stats(p, &s);
    TF_INFO(MOD,
            "%s: consumed=%llu applied=%llu duplicates=%llu replayed=%llu dead_lettered=%llu derived=%llu "
            "unrouted=%llu commits=%llu fenced=%llu redis_failures=%llu inflight=%llu paused=%d "
            "cache_hits=%llu cache_misses=%llu stale_reloads=%llu cache_entries=%llu cache_bytes=%llu "
            "commit_latency_p50_ms=%.1f commit_latency_p99_ms=%.1f",
            what, (unsigned long long)s.consumed, (unsigned long long)s.applied,
            (unsigned long long)s.duplicates, (unsigned long long)s.replayed,
            (unsigned long long)s.dead_lettered, (unsigned long long)s.derived,
            (unsigned long long)s.derived_unrouted, (unsigned long long)s.commits,
            (unsigned long long)s.fenced, (unsigned long long)s.redis_failures, (unsigned long long)s.inflight,
            s.paused, (unsigned long long)s.cache_hits, (unsigned long long)s.cache_misses,
            (unsigned long long)s.stale_reloads, (unsigned long long)s.cache_entries,
            (unsigned long long)s.cache_bytes, s.commit_latency_p50_ms, s.commit_latency_p99_ms);
}

/* libevent's own warnings (accept failures, evhttp errors) into the JSON log. */
static void on_libevent_log(int severity, const char *msg)
{
    tf_log_level level = severity == EVENT_LOG_DEBUG ? TF_LOG_DEBUG
                         : severity == EVENT_LOG_MSG ? TF_LOG_INFO
                         : severity == EVENT_LOG_WARN ? TF_LOG_WARN
                                                      : TF_LOG_ERROR;
    TF_LOG(level, "libevent", "%s", msg);
}

/* The ops endpoints' figures: read on the loop, between two pipeline callbacks. */
static void collect_snapshot(void *opaque, tf_pipeline_snapshot *out)
{
    daemon_t *d = opaque;
    tf_pipeline_snapshot_get(d->pipeline, out);
}

static const struct json_t *collect_figures(void *opaque, int64_t *age_ms, uint64_t *errors)
{
    daemon_t *d = opaque;
    return tf_pipeline_figures(d->pipeline, age_ms, errors);
}

static void on_stats(evutil_socket_t fd, short what, void *arg)
{
    daemon_t *d = arg;
    (void)fd, (void)what;
    log_stats(d->pipeline, "stats");
}

static void on_drained(int drained, void *arg)
{
    daemon_t *d = arg;
    d->drained = drained;
    event_base_loopbreak(d->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    daemon_t *d = arg;
    (void)what;
    if (d->stopping) {
        TF_WARN(MOD, "second signal %d: exiting without draining", (int)sig);
        event_base_loopbreak(d->base);
        return;
    }
    d->stopping = 1;
    TF_INFO(MOD, "signal %d: shutting down", (int)sig);
    tf_pipeline_stop(d->pipeline, d->shutdown_timeout_ms, on_drained, d);
}

/* Rebuild mode: every partition is at the live group's offsets. */
static void on_rebuilt(void *arg)
{
    daemon_t *d = arg;
    if (d->stopping)
        return;
    d->rebuilt = 1;
    d->stopping = 1;
    tf_pipeline_stop(d->pipeline, d->shutdown_timeout_ms, on_drained, d);
}

static int load_config(tf_config_t *cfg, const char *path, const char *const *sets, int nsets)
{
    char err[4096];
    tf_config_defaults(cfg);
    if (path && tf_config_load_file(cfg, path, err, sizeof(err)) != TF_OK) {
        fprintf(stderr, "touchflowd: %s:\n%s\n", path, err);
        return -1;
    }
    if (tf_config_apply_env(cfg, err, sizeof(err)) != TF_OK) {
        fprintf(stderr, "touchflowd: environment:\n%s\n", err);
        return -1;
    }
    for (int i = 0; i < nsets; i++) {
        if (tf_config_apply_override(cfg, sets[i], err, sizeof(err)) != TF_OK) {
            fprintf(stderr, "touchflowd: --set %s:\n%s\n", sets[i], err);
            return -1;
        }
    }
    if (tf_config_validate(cfg, err, sizeof(err)) != TF_OK) {
        fprintf(stderr, "touchflowd: configuration:\n%s\n", err);
        return -1;
    }
    return 0;
}

static tf_mock_cluster_t *start_embedded(const tf_config_t *cfg)
{
    const char *topics[TF_CONFIG_MAX_TOPICS + TF_CONFIG_ROUTES_MAX + 1];
    size_t n = 0;
    char err[256];
    for (size_t i = 0; i < cfg->ninput_topics; i++)
        topics[n++] = cfg->input_topics[i];
    /* Every topic a subscription writes, and the dead-letter topic. */
    n += tf_config_output_topic_list(cfg, topics + n);
    tf_mock_cluster_t *m = tf_mock_cluster_new(topics, n, 4, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "touchflowd: %s\n", err);
        return NULL;
    }
    /* stdout carries only this line, so a script can read the address. */
    printf("TOUCHFLOW_KAFKA_BROKERS=%s\n", tf_mock_cluster_bootstraps(m));
    fflush(stdout);
    TF_WARN(MOD, "embedded Kafka mock cluster at %s: for trying touchflow out, not for production",
            tf_mock_cluster_bootstraps(m));
    return m;
}

/* Kafka, Redis and the ops listener share the process's descriptors: take all the
 * system allows, so ops clients waiting out their timeout do not starve the rest. */
static void raise_open_files(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        TF_WARN(MOD, "cannot raise the open-file limit above %llu", (unsigned long long)was);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 'o'},
        {"clock", required_argument, NULL, 'K'},
        {"embedded", no_argument, NULL, 'E'},
        {"stats-interval-ms", required_argument, NULL, 'S'},
        {"rebuild-into", required_argument, NULL, 'R'},
        {"from", required_argument, NULL, 'F'},
        {"emit", no_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL;
    /* -o and --clock in command-line order; each takes an argument, so argc bounds them. */
    const char **sets = calloc((size_t)argc, sizeof(char *));
    int nsets = 0, embedded = 0, c, rc = 1;
    int64_t stats_ms = 10000;
    tf_config_t *cfg = calloc(1, sizeof(*cfg));
    daemon_t d = {0};
    tf_mock_cluster_t *mock = NULL;
    struct event *sigterm = NULL, *sigint = NULL;
    rebuild_opts rebuild = {NULL, NULL, 0};
    rd_kafka_topic_partition_list_t *stop = NULL;
    char live_prefix[sizeof(cfg->key_prefix)] = "";

    if (!sets || !cfg) {
        fprintf(stderr, "touchflowd: out of memory\n");
        return 1;
    }
    while ((c = getopt_long(argc, argv, "c:o:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'o': sets[nsets++] = optarg; break;
        case 'K':
            if (strcmp(optarg, "wall") == 0)
                sets[nsets++] = "timers.clock=wall";
            else if (strcmp(optarg, "stream") == 0)
                sets[nsets++] = "timers.clock=stream";
            else {
                fprintf(stderr,
                        "touchflowd: --clock: timers.clock: expected \"wall\" or \"stream\", got \"%s\"\n",
                        optarg);
                goto out_usage;
            }
            break;
        case 'E': embedded = 1; break;
        case 'R': rebuild.prefix = optarg; break;
        case 'F': rebuild.from = optarg; break;
        case 'M': rebuild.emit = 1; break;
        case 'S':
            if (tf_parse_i64(optarg, strlen(optarg), &stats_ms) != TF_OK || stats_ms < 0) {
                fprintf(stderr, "touchflowd: --stats-interval-ms: expected a non-negative integer\n");
                goto out_usage;
            }
            break;
        case 'h': usage(stdout); rc = 0; goto out;
        case 'V': printf("touchflowd %s\n", TOUCHFLOW_VERSION); rc = 0; goto out;
        default: goto out_usage;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "touchflowd: unexpected argument '%s'\n", argv[optind]);
        goto out_usage;
    }
    if (load_config(cfg, config_path, sets, nsets) != 0) {
        rc = 2;
        goto out;
    }
    tf_log_level level;
    if (tf_log_level_parse(cfg->log_level, &level) == TF_OK)
        tf_log_set_level(level);
    if ((rebuild.from || rebuild.emit) && !rebuild.prefix) {
        fprintf(stderr, "touchflowd: --from and --emit go with --rebuild-into\n");
        goto out_usage;
    }
    if (rebuild.prefix) {
        if (embedded) {
            fprintf(stderr, "touchflowd: --rebuild-into reads a real cluster, not --embedded\n");
            goto out_usage;
        }
        tf_strlcpy(live_prefix, cfg->key_prefix, sizeof live_prefix);
        if ((rc = rebuild_prepare(cfg, NULL, &rebuild, &stop)) != 0)
            goto out;
        rc = 1;
    }

    /* Writes to a closed socket must come back as errors, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    raise_open_files();
    event_set_log_callback(on_libevent_log);
    d.base = event_base_new();
    if (!d.base) {
        fprintf(stderr, "touchflowd: cannot create the event loop\n");
        goto out;
    }
    if (embedded && !(mock = start_embedded(cfg)))
        goto out;

    char err[512];
    d.shutdown_timeout_ms = cfg->shutdown_timeout_ms;
    d.pipeline = tf_pipeline_new(d.base, cfg, mock ? tf_mock_cluster_bootstraps(mock) : NULL, err, sizeof(err));
    if (!d.pipeline) {
        TF_ERROR(MOD, "cannot start: %s", err);
        goto out;
    }
    if (stop && tf_pipeline_set_rebuild(d.pipeline, stop, on_rebuilt, &d) != TF_OK) {
        TF_ERROR(MOD, "cannot start the rebuild");
        goto out;
    }
    if (cfg->ops_listen[0]) {
        d.ops = tf_ops_new(d.base, cfg->ops_listen, collect_snapshot, &d, cfg, err, sizeof(err));
        if (!d.ops) {
            TF_ERROR(MOD, "cannot start: %s", err);
            goto out;
        }
        tf_ops_set_figures(d.ops, collect_figures, &d);
        TF_INFO(MOD, "ops listening on http://%s", tf_ops_address(d.ops));
    }
    sigterm = evsignal_new(d.base, SIGTERM, on_signal, &d);
    sigint = evsignal_new(d.base, SIGINT, on_signal, &d);
    if (!sigterm || !sigint || evsignal_add(sigterm, NULL) || evsignal_add(sigint, NULL)) {
        TF_ERROR(MOD, "cannot install signal handlers");
        goto out;
    }
    if (stats_ms > 0) {
        d.stats_timer = event_new(d.base, -1, EV_PERSIST, on_stats, &d);
        struct timeval tv = {(time_t)(stats_ms / 1000), (suseconds_t)(stats_ms % 1000) * 1000};
        if (d.stats_timer)
            event_add(d.stats_timer, &tv);
    }
    TF_INFO(MOD, "touchflowd %s started: group %s, brokers %s", TOUCHFLOW_VERSION, cfg->group_id,
            mock ? tf_mock_cluster_bootstraps(mock) : cfg->brokers);

    event_base_dispatch(d.base);

    log_stats(d.pipeline, "final");
    rc = 0;
    TF_INFO(MOD, "stopped%s", d.drained ? "" : " (not fully drained: the rest is redelivered)");
    if (stop) {
        tf_pipeline_stats st;
        tf_pipeline_get_stats(d.pipeline, &st);
        rc = rebuild_report(cfg, live_prefix, stop, d.rebuilt && d.drained, st.applied, st.suppressed);
    }
    goto out;

out_usage:
    usage(stderr);
    rc = 2;
out:
    if (d.stats_timer)
        event_free(d.stats_timer);
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    /* Before the pipeline its callback reads. */
    tf_ops_destroy(d.ops);
    tf_pipeline_destroy(d.pipeline);
    tf_mock_cluster_destroy(mock);
    if (d.base)
        event_base_free(d.base);
    if (stop)
        rd_kafka_topic_partition_list_destroy(stop);
    free(sets);
    free(cfg);
    return rc;
}
