/* Unit tests for pkg/ops: the Prometheus rendering of a hand-filled snapshot (exact
 * lines, cumulative histogram buckets, label escaping, every family declared), the
 * readiness rule, the /status document, and the HTTP server itself on loopback
 * (an in-process evhttp client: routes, status codes, content types, 404 and 405). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "config/config.h"
#include "event/event.h"
#include "ops/ops.h"
#include "pipeline/pipeline.h"

/* ---- helpers ---- */

/* The buffer's contents as a new NUL-terminated string. */
static char *drain(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    assert_non_null(s);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

/* line must appear in text as a whole line. */
static void assert_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
    fail_msg("expected the line\n  %s\nin:\n%s", line, text);
}

static void assert_no_line_starting(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
        if (strncmp(p, prefix, n) == 0)
            fail_msg("unexpected line starting with %s", prefix);
}

static tf_pipeline_snapshot *snapshot_new(void)
{
    tf_pipeline_snapshot *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->assigned = 1;
    s->redis_up = 1;
    s->kafka_up = 1;
    s->npartitions = 2;
    tf_partition_status *p = &s->partitions[0];
    strcpy(p->topic, "touchpoints");
    p->partition = 0;
    p->position = 120;
    p->committed = 100;
    p->high_watermark = 142;
    p->lag = 42;
    p->lag_from_stats = 1;
    p->inflight = 20;
    p = &s->partitions[1];
    strcpy(p->topic, "touchpoints");
    p->partition = 3;
    p->position = p->committed = p->high_watermark = p->lag = -1; /* nothing known yet */
    p->paused = 1;
    s->stats.inflight = 20;
    s->stats.dead_lettered = 5;
    s->stats.dlq_by_reason[TF_EV_INVALID_JSON] = 4;
    s->stats.dlq_by_reason[TF_EV_UNKNOWN_TYPE] = 1;
    s->stats.derived_by_type[TF_DERIVED_STAGE_CHANGED] = 3;
    s->stats.derived_by_type[TF_DERIVED_WINBACK_SUCCEEDED] = 1;
    s->stats.derived_unrouted = 6;
    s->nsubscriptions = 2;
    strcpy(s->subscriptions[0].name, "lifecycle");
    s->subscriptions[0].sent = 3;
    strcpy(s->subscriptions[1].name, "care-sms");
    s->subscriptions[1].sent = 1;
    s->stats.rebalances = 2;
    s->stats.fenced = 1;
    s->stats.delivery_retries = 6;
    s->stats.consumed = 180;
    s->events_by_kind[TF_KIND_PURCHASE][TF_OUTCOME_APPLIED] = 7;
    s->events_by_kind[TF_KIND_PURCHASE][TF_OUTCOME_DUPLICATE] = 2;
    s->events_by_kind[TF_KIND_WEB_VISIT][TF_OUTCOME_REPLAYED] = 11;
    s->redis_reconnects = 3;
    s->redis_redirects = 4;
    s->timers_due = 8;
    s->timers_fired = 9;
    /* 0.4 ms, 3 ms twice, 20 s (beyond the last bound: only +Inf). */
    tf_histogram_observe(&s->processing, 0.0004);
    tf_histogram_observe(&s->processing, 0.003);
    tf_histogram_observe(&s->processing, 0.003);
    tf_histogram_observe(&s->processing, 20);
    return s;
}

static char *render(const tf_pipeline_snapshot *s)
{
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    assert_int_equal(tf_ops_render_metrics(b, s), 0);
    char *text = drain(b);
    evbuffer_free(b);
    return text;
}

/* ---- label escaping ---- */

static void test_label_escape(void **state)
{
    (void)state;
    struct evbuffer *b = evbuffer_new();
    assert_int_equal(tf_ops_label_escape(b, "plain.topic-1"), 0);
    assert_int_equal(tf_ops_label_escape(b, "|a\"b\\c\nd\"|"), 0);
    assert_int_equal(tf_ops_label_escape(b, ""), 0);
    char *s = drain(b);
    assert_string_equal(s, "plain.topic-1|a\\\"b\\\\c\\nd\\\"|");
    free(s);
    evbuffer_free(b);
}

/* ---- metrics ---- */

static void test_metrics_lines(void **state)
{
    (void)state;
    tf_pipeline_snapshot *s = snapshot_new();
    char *m = render(s);

    assert_line(m, "touchflow_build_info{version=\"" TOUCHFLOW_VERSION "\"} 1");
    assert_line(m, "# TYPE touchflow_consumer_lag gauge");
    assert_line(m, "touchflow_consumer_lag{topic=\"touchpoints\",partition=\"0\"} 42");
    assert_line(m, "touchflow_partition_high_watermark{topic=\"touchpoints\",partition=\"0\"} 142");
    assert_line(m, "touchflow_partition_committed_offset{topic=\"touchpoints\",partition=\"0\"} 100");
    assert_line(m, "touchflow_partition_inflight_records{topic=\"touchpoints\",partition=\"0\"} 20");
    /* Unknown figures are left out, known ones (in flight: 0) are not. */
    assert_no_line_starting(m, "touchflow_consumer_lag{topic=\"touchpoints\",partition=\"3\"}");
    assert_no_line_starting(m, "touchflow_partition_committed_offset{topic=\"touchpoints\",partition=\"3\"}");
    assert_line(m, "touchflow_partition_inflight_records{topic=\"touchpoints\",partition=\"3\"} 0");

    assert_line(m, "# TYPE touchflow_events_consumed_total counter");
    assert_line(m, "touchflow_events_consumed_total{type=\"purchase\",outcome=\"applied\"} 7");
    assert_line(m, "touchflow_events_consumed_total{type=\"purchase\",outcome=\"duplicate\"} 2");
    assert_line(m, "touchflow_events_consumed_total{type=\"purchase\",outcome=\"replayed\"} 0");
    assert_line(m, "touchflow_events_consumed_total{type=\"web_visit\",outcome=\"replayed\"} 11");
    assert_line(m, "touchflow_events_consumed_total{type=\"unsubscribe\",outcome=\"applied\"} 0");
    assert_line(m, "touchflow_events_consumed_total{type=\"invalid\",outcome=\"dead_lettered\"} 5");

    assert_line(m, "touchflow_derived_events_total{type=\"touchflow.lifecycle.stage_changed\"} 3");
    assert_line(m, "touchflow_derived_events_total{type=\"touchflow.winback.succeeded\"} 1");
    assert_line(m, "touchflow_derived_events_total{type=\"touchflow.churn.warning\"} 0");
    assert_line(m, "touchflow_derived_unrouted_total 6");
    assert_line(m, "touchflow_subscription_sent_total{subscription=\"lifecycle\"} 3");
    assert_line(m, "touchflow_subscription_sent_total{subscription=\"care-sms\"} 1");

    /* Every reason, even at 0; never the "ok" pseudo-reason. */
    assert_line(m, "touchflow_dlq_records_total{reason=\"invalid_json\"} 4");
    assert_line(m, "touchflow_dlq_records_total{reason=\"unknown_type\"} 1");
    for (int r = TF_EV_OK + 1; r < TF_EV__COUNT; r++) {
        char prefix[128];
        snprintf(prefix, sizeof prefix, "touchflow_dlq_records_total{reason=\"%s\"}",
                 tf_event_error_code((tf_event_error)r));
        assert_non_null(strstr(m, prefix));
    }
    assert_null(strstr(m, "reason=\"ok\""));

    assert_line(m, "touchflow_inflight_records 20");
    assert_line(m, "touchflow_paused_partitions 1");
    assert_line(m, "touchflow_assigned_partitions 2");
    assert_line(m, "touchflow_timers_due 8");
    assert_line(m, "touchflow_timers_fired_total 9");
    assert_line(m, "touchflow_rebalances_total 2");
    assert_line(m, "touchflow_redis_reconnects_total 3");
    assert_line(m, "touchflow_redis_redirects_total 4");
    assert_line(m, "touchflow_fenced_commits_total 1");
    assert_line(m, "touchflow_delivery_retries_total 6");
    assert_line(m, "touchflow_redis_up 1");
    assert_line(m, "touchflow_kafka_up 1");
    assert_line(m, "# TYPE touchflow_timers_fired_total counter");
    assert_line(m, "# TYPE touchflow_redis_up gauge");
    free(m);
    free(s);
}

static void test_metrics_histogram(void **state)
{
    (void)state;
    tf_pipeline_snapshot *s = snapshot_new();
    char *m = render(s);
    const char *h = "touchflow_processing_duration_seconds";
    char line[160];
    assert_line(m, "# TYPE touchflow_processing_duration_seconds histogram");
    /* Cumulative: 1 at <= 0.5 ms, 3 from 5 ms on, the 20 s observation only in +Inf. */
    static const struct {
        const char *le;
        int n;
    } want[] = {
        {"0.0005", 1}, {"0.001", 1}, {"0.0025", 1}, {"0.005", 3}, {"0.01", 3}, {"0.025", 3}, {"0.05", 3},
        {"0.1", 3},    {"0.25", 3},  {"0.5", 3},    {"1", 3},     {"2.5", 3},  {"5", 3},     {"10", 3},
        {"+Inf", 4},
    };
    _Static_assert(sizeof want / sizeof want[0] == TF_HIST_BUCKETS + 1, "one line per bound and +Inf");
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        snprintf(line, sizeof line, "%s_bucket{le=\"%s\"} %d", h, want[i].le, want[i].n);
        assert_line(m, line);
    }
    assert_line(m, "touchflow_processing_duration_seconds_sum 20.0064");
    assert_line(m, "touchflow_processing_duration_seconds_count 4");
    /* An empty histogram is still complete. */
    assert_line(m, "touchflow_redis_roundtrip_seconds_bucket{le=\"+Inf\"} 0");
    assert_line(m, "touchflow_redis_roundtrip_seconds_sum 0");
    assert_line(m, "touchflow_redis_roundtrip_seconds_count 0");
    free(m);
    free(s);
}

/* Every sample belongs to a family declared once with # HELP and # TYPE before it,
 * and the exact set of families is the contract the deploy files rely on. */
static void test_metrics_families(void **state)
{
    (void)state;
    static const char *const families[] = {
        "touchflow_build_info", "touchflow_consumer_lag", "touchflow_partition_high_watermark",
        "touchflow_partition_committed_offset", "touchflow_partition_inflight_records",
        "touchflow_events_consumed_total", "touchflow_derived_events_total",
        "touchflow_derived_unrouted_total", "touchflow_subscription_sent_total", "touchflow_dlq_records_total",
        "touchflow_processing_duration_seconds", "touchflow_redis_roundtrip_seconds", "touchflow_inflight_records",
        "touchflow_paused_partitions", "touchflow_assigned_partitions", "touchflow_timers_due",
        "touchflow_timers_fired_total", "touchflow_rebalances_total", "touchflow_redis_reconnects_total", "touchflow_redis_redirects_total",
        "touchflow_fenced_commits_total", "touchflow_delivery_retries_total", "touchflow_redis_up",
        "touchflow_redis_failing", "touchflow_redis_batch_failures_total", "touchflow_cache_hits_total",
        "touchflow_cache_misses_total", "touchflow_stale_reloads_total", "touchflow_cache_entries",
        "touchflow_cache_bytes", "touchflow_state_errors_total",
        "touchflow_producer_rebuilds_total", "touchflow_dlq_truncated_total", "touchflow_redis_state_lost_total",
        "touchflow_kafka_up",
    };
    size_t nfam = sizeof families / sizeof families[0];
    tf_pipeline_snapshot *s = snapshot_new();
    char *m = render(s);
    char current[128] = "";
    size_t declared = 0;
    int help_seen = 0;
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
        char name[128], type[32];
        if (sscanf(line, "# HELP %127s", name) == 1) {
            help_seen = 1;
            strcpy(current, name);
            continue;
        }
        if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
            assert_true(help_seen);
            assert_string_equal(name, current);
            assert_true(declared < nfam);
            assert_string_equal(name, families[declared]);
            declared++;
            help_seen = 0;
            continue;
        }
        assert_true(line[0] != '#');
        size_t n = strcspn(line, "{ ");
        size_t cn = strlen(current);
        assert_true(cn > 0 && n >= cn && strncmp(line, current, cn) == 0);
        const char *suffix = line + cn;
        assert_true(suffix[0] == '{' || suffix[0] == ' ' || strncmp(suffix, "_bucket{", 8) == 0 ||
                    strncmp(suffix, "_sum ", 5) == 0 || strncmp(suffix, "_count ", 7) == 0);
    }
    assert_int_equal(declared, nfam);
    free(m);
    free(s);
}

static void test_metrics_empty_snapshot(void **state)
{
    (void)state;
    tf_pipeline_snapshot *s = calloc(1, sizeof *s);
    assert_non_null(s);
    char *m = render(s);
    assert_line(m, "touchflow_assigned_partitions 0");
    assert_line(m, "touchflow_redis_up 0");
    assert_no_line_starting(m, "touchflow_consumer_lag{");
    assert_line(m, "# TYPE touchflow_consumer_lag gauge");
    free(m);
    free(s);
}

/* ---- population figures ---- */

static char *render_figures(const json_t *view, int64_t age_ms, uint64_t errors)
{
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    assert_int_equal(tf_ops_render_figures(b, view, age_ms, errors), 0);
    char *m = drain(b);
    evbuffer_free(b);
    return m;
}

static void test_figures_metrics(void **state)
{
    (void)state;
    json_error_t err;
    json_t *v = json_loads("{\"as_of\": \"2025-06-06\", \"customers\": 8, \"active\": 7,"
                           " \"stages\": {\"prospect\": 4, \"churned\": 1}, \"tiers\": {\"key\": 2},"
                           " \"levels\": {\"gold \\\"vip\\\"\": 3},"
                           " \"windows\": [{\"days\": 3, \"start\": 7, \"new\": 1, \"won_back\": 1, \"churned\": 2,"
                           " \"end\": 7, \"churn_rate\": 0.25, \"retention_rate\": 0.75},"
                           " {\"days\": 30, \"start\": 0, \"new\": 8, \"won_back\": 1, \"churned\": 2, \"end\": 7,"
                           " \"churn_rate\": null, \"retention_rate\": null}],"
                           " \"satisfaction\": {\"customers\": 2, \"average\": 87.5},"
                           " \"nps\": {\"promoters\": 1, \"passives\": 2, \"detractors\": 3, \"score\": null},"
                           " \"complaints\": {\"by_category\": {\"quality\": 1}, \"by_severity\": {\"critical\": 1},"
                           " \"in_time\": 1, \"escalated_level1\": 1, \"escalated_level2\": 0, \"sla_compliance\": 0.5},"
                           " \"exits\": {\"price\": 4}, \"campaigns\": {\"summer\": 1}}",
                           0, &err);
    assert_non_null(v);
    char *m = render_figures(v, 2500, 3);
    assert_line(m, "touchflow_population_figures_read_errors_total 3");
    assert_line(m, "touchflow_population_figures_age_seconds 2.500");
    assert_line(m, "touchflow_population_known_customers 8");
    assert_line(m, "touchflow_population_customers{stage=\"churned\"} 1");
    assert_line(m, "touchflow_population_level_customers{level=\"gold \\\"vip\\\"\"} 3");
    assert_line(m, "touchflow_population_churn_rate{window_days=\"3\"} 0.25");
    assert_line(m, "touchflow_population_retention_rate{window_days=\"3\"} 0.75");
    /* A rate without a base has no sample, but its flows do. */
    assert_no_line_starting(m, "touchflow_population_churn_rate{window_days=\"30\"}");
    assert_line(m, "touchflow_population_window_customers{window_days=\"30\",flow=\"new\"} 8");
    assert_line(m, "touchflow_population_satisfaction_average 87.5");
    assert_line(m, "# TYPE touchflow_population_nps_score gauge");
    assert_no_line_starting(m, "touchflow_population_nps_score ");
    assert_line(m, "touchflow_population_nps_answers_total{class=\"detractor\"} 3");
    assert_line(m, "touchflow_population_complaint_sla_total{outcome=\"escalated_level1\"} 1");
    assert_line(m, "touchflow_population_complaint_sla_compliance 0.5");
    assert_line(m, "touchflow_population_exits_total{reason=\"price\"} 4");
    assert_line(m, "touchflow_population_attributed_purchases_total{campaign=\"summer\"} 1");
    free(m);
    json_decref(v);

    /* Before the first read: every family announced, no sample but the errors. */
    m = render_figures(NULL, -1, 0);
    assert_line(m, "touchflow_population_figures_read_errors_total 0");
    assert_line(m, "# TYPE touchflow_population_customers gauge");
    assert_line(m, "# TYPE touchflow_population_churn_rate gauge");
    assert_line(m, "# TYPE touchflow_population_exits_total counter");
    assert_no_line_starting(m, "touchflow_population_customers");
    assert_no_line_starting(m, "touchflow_population_nps_answers_total{");
    assert_no_line_starting(m, "touchflow_population_figures_age_seconds ");
    free(m);
}

/* ---- readiness ---- */

static void test_liveness(void **state)
{
    (void)state;
    tf_pipeline_snapshot *s = snapshot_new();
    char why[160] = "";
    s->stats.inflight = 40;
    s->idle_ms = 299000;
    assert_int_equal(tf_ops_alive(s, 300000, why, sizeof why), 1);
    /* Work waits, Redis takes batches, nothing finished for the whole timeout. */
    s->idle_ms = 300000;
    assert_int_equal(tf_ops_alive(s, 300000, why, sizeof why), 0);
    assert_string_equal(why, "stalled: 40 records in flight and none finished for 300 s");
    /* Nothing waiting: idle is not stalled. */
    s->stats.inflight = 0;
    assert_int_equal(tf_ops_alive(s, 300000, NULL, 0), 1);
    s->stats.inflight = 40;
    /* Waiting on Redis is readiness's business: a restart would not help. */
    s->redis_up = 0;
    assert_int_equal(tf_ops_alive(s, 300000, NULL, 0), 1);
    s->redis_up = 1;
    s->stats.redis_failing = 1;
    assert_int_equal(tf_ops_alive(s, 300000, NULL, 0), 1);
    s->stats.redis_failing = 0;
    s->stats.paused = 1;
    assert_int_equal(tf_ops_alive(s, 300000, NULL, 0), 1);
    s->stats.paused = 0;
    /* 0 turns the check off. */
    assert_int_equal(tf_ops_alive(s, 0, NULL, 0), 1);
    free(s);
}

static void test_readiness(void **state)
{
    (void)state;
    tf_pipeline_snapshot *s = snapshot_new();
    const char *missing[TF_OPS_READY_CHECKS];
    size_t n = 99;
    assert_int_equal(tf_ops_ready(s, missing, &n), 1);
    assert_int_equal(n, 0);

    /* Redis answers but refuses the batch at the front. */
    s->stats.redis_failing = 1;
    assert_int_equal(tf_ops_ready(s, missing, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(missing[0], "redis_errors");

    /* Down says more than failing. */
    s->redis_up = 0;
    assert_int_equal(tf_ops_ready(s, missing, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(missing[0], "redis");
    s->stats.redis_failing = 0;

    s->kafka_up = 0;
    s->assigned = 0;
    assert_int_equal(tf_ops_ready(s, missing, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(missing[0], "assignment");
    assert_string_equal(missing[1], "redis");
    assert_string_equal(missing[2], "kafka");

    /* Assigned but with no partitions left: nothing to be ready for. */
    s->assigned = 1;
    s->redis_up = s->kafka_up = 1;
    s->npartitions = 0;
    assert_int_equal(tf_ops_ready(s, NULL, NULL), 0);
    s->npartitions = 1;
    assert_int_equal(tf_ops_ready(s, NULL, NULL), 1);
    free(s);
}

/* ---- /status ---- */

static void test_status_document(void **state)
{
    (void)state;
    tf_pipeline_snapshot *s = snapshot_new();
    s->redis_up = 0;
    struct evbuffer *b = evbuffer_new();
    assert_int_equal(tf_ops_render_status(b, s, 61500, "{\"redis\": {\"url\": \"redis://h:1\"}}"), 0);
    char *text = drain(b);
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    if (!doc)
        fail_msg("not JSON (%s): %s", jerr.text, text);
    assert_string_equal(json_string_value(json_object_get(doc, "version")), TOUCHFLOW_VERSION);
    assert_int_equal(json_integer_value(json_object_get(doc, "uptime_s")), 61);
    assert_true(json_is_false(json_object_get(doc, "ready")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "missing"), 0)), "redis");
    assert_int_equal(json_integer_value(json_object_get(doc, "total_lag")), 42);
    json_t *parts = json_object_get(doc, "partitions");
    assert_int_equal(json_array_size(parts), 2);
    json_t *p0 = json_array_get(parts, 0), *p1 = json_array_get(parts, 1);
    assert_string_equal(json_string_value(json_object_get(p0, "topic")), "touchpoints");
    assert_int_equal(json_integer_value(json_object_get(p0, "lag")), 42);
    assert_int_equal(json_integer_value(json_object_get(p0, "committed")), 100);
    assert_int_equal(json_integer_value(json_object_get(p0, "high_watermark")), 142);
    assert_string_equal(json_string_value(json_object_get(p0, "lag_source")), "statistics");
    assert_int_equal(json_integer_value(json_object_get(p1, "partition")), 3);
    assert_true(json_is_null(json_object_get(p1, "lag")));
    assert_true(json_is_null(json_object_get(p1, "committed")));
    assert_true(json_is_null(json_object_get(p1, "lag_source")));
    assert_true(json_is_true(json_object_get(p1, "paused")));
    json_t *st = json_object_get(doc, "stats");
    assert_int_equal(json_integer_value(json_object_get(st, "consumed")), 180);
    assert_int_equal(json_integer_value(json_object_get(st, "redis_reconnects")), 3);
    assert_int_equal(json_integer_value(json_object_get(st, "derived_unrouted")), 6);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "subscription_sent"), "care-sms")), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(doc, "config"), "redis"),
                                                          "url")),
                        "redis://h:1");
    json_decref(doc);
    free(text);

    /* Without a config, no "config" member; a config that is not JSON is refused. */
    assert_int_equal(tf_ops_render_status(b, s, 0, NULL), 0);
    text = drain(b);
    doc = json_loads(text, 0, &jerr);
    assert_non_null(doc);
    assert_null(json_object_get(doc, "config"));
    json_decref(doc);
    free(text);
    assert_int_equal(tf_ops_render_status(b, s, 0, "{not json"), TF_EINVAL);
    evbuffer_free(b);
    free(s);
}

/* ---- the server, on loopback ---- */

typedef struct {
    struct event_base *base;
    tf_pipeline_snapshot *snap;
    int collected;
    /* the last response */
    int code;
    char *body;
    char content_type[128];
    char allow[64];
} server_fixture;

static void collect(void *opaque, tf_pipeline_snapshot *out)
{
    server_fixture *f = opaque;
    f->collected++;
    memcpy(out, f->snap, sizeof *out);
}

static void on_response(struct evhttp_request *req, void *arg)
{
    server_fixture *f = arg;
    free(f->body);
    f->body = NULL;
    f->code = req ? evhttp_request_get_response_code(req) : -1;
    f->content_type[0] = f->allow[0] = '\0';
    if (req) {
        const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        const char *allow = evhttp_find_header(evhttp_request_get_input_headers(req), "Allow");
        snprintf(f->content_type, sizeof f->content_type, "%s", ct ? ct : "");
        snprintf(f->allow, sizeof f->allow, "%s", allow ? allow : "");
        f->body = drain(evhttp_request_get_input_buffer(req));
    }
    event_base_loopbreak(f->base);
}

/* One request on a new connection; the response lands in f. */
static void request(server_fixture *f, int port, enum evhttp_cmd_type method, const char *path)
{
    struct evhttp_connection *conn = evhttp_connection_base_new(f->base, NULL, "127.0.0.1", (ev_uint16_t)port);
    assert_non_null(conn);
    evhttp_connection_set_timeout(conn, 5);
    struct evhttp_request *req = evhttp_request_new(on_response, f);
    assert_non_null(req);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
    f->code = 0;
    assert_int_equal(evhttp_make_request(conn, req, method, path), 0);
    event_base_dispatch(f->base);
    evhttp_connection_free(conn);
}

static int port_of(const tf_ops_t *ops)
{
    const char *colon = strrchr(tf_ops_address(ops), ':');
    assert_non_null(colon);
    return atoi(colon + 1);
}

static void test_server(void **state)
{
    (void)state;
    server_fixture f = {0};
    char err[256];
    tf_config_t *cfg = malloc(sizeof *cfg);
    assert_non_null(cfg);
    tf_config_defaults(cfg);
    assert_int_equal(tf_config_apply_override(cfg, "redis.url=redis://app:hunter2@cache:6379", err, sizeof err),
                     0);
    f.base = event_base_new();
    f.snap = snapshot_new();
    assert_non_null(f.base);

    tf_ops_t *ops = tf_ops_new(f.base, "127.0.0.1:0", collect, &f, cfg, err, sizeof err);
    if (!ops)
        fail_msg("tf_ops_new: %s", err);
    free(cfg); /* read once: the handle keeps nothing of it */
    int port = port_of(ops);
    assert_true(port > 0);
    assert_non_null(strstr(tf_ops_address(ops), "127.0.0.1:"));

    request(&f, port, EVHTTP_REQ_GET, "/healthz");
    assert_int_equal(f.code, 200);
    assert_string_equal(f.body, "ok\n");
    /* Stalled past ops.stall_timeout_s (300 s by default): a restart is due. */
    f.snap->stats.inflight = 3;
    f.snap->idle_ms = 301000;
    request(&f, port, EVHTTP_REQ_GET, "/healthz");
    assert_int_equal(f.code, 503);
    assert_string_equal(f.body, "stalled: 3 records in flight and none finished for 301 s\n");
    f.snap->stats.inflight = 0;
    f.snap->idle_ms = 0;
    f.collected = 0;

    request(&f, port, EVHTTP_REQ_GET, "/metrics");
    assert_int_equal(f.code, 200);
    assert_string_equal(f.content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert_line(f.body, "touchflow_consumer_lag{topic=\"touchpoints\",partition=\"0\"} 42");
    assert_int_equal(f.collected, 1);

    request(&f, port, EVHTTP_REQ_GET, "/readyz");
    assert_int_equal(f.code, 200);
    assert_string_equal(f.body, "{\"ready\":true,\"missing\":[]}\n");
    f.snap->redis_up = 0;
    f.snap->kafka_up = 0;
    request(&f, port, EVHTTP_REQ_GET, "/readyz");
    assert_int_equal(f.code, 503);
    assert_string_equal(f.content_type, "application/json");
    assert_string_equal(f.body, "{\"ready\":false,\"missing\":[\"redis\",\"kafka\"]}\n");

    request(&f, port, EVHTTP_REQ_GET, "/status?pretty=1");
    assert_int_equal(f.code, 200);
    assert_string_equal(f.content_type, "application/json");
    json_error_t jerr;
    json_t *doc = json_loads(f.body, 0, &jerr);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "partitions")), 2);
    assert_non_null(json_object_get(doc, "config"));
    json_decref(doc);
    assert_null(strstr(f.body, "hunter2"));
    assert_non_null(strstr(f.body, "[redacted]"));

    request(&f, port, EVHTTP_REQ_GET, "/");
    assert_int_equal(f.code, 200);
    assert_string_equal(f.content_type, "text/html; charset=utf-8");
    assert_non_null(strstr(f.body, "id=\"total-lag\""));
    assert_non_null(strstr(f.body, "id=\"consume-rate\""));
    assert_non_null(strstr(f.body, "id=\"catch-up\""));
    assert_non_null(strstr(f.body, "fetch(\"status\""));
    /* Self-contained: nothing loaded from elsewhere. */
    assert_null(strstr(f.body, "src=\"http"));
    assert_null(strstr(f.body, "href=\"http"));

    request(&f, port, EVHTTP_REQ_HEAD, "/metrics");
    assert_int_equal(f.code, 200);
    assert_string_equal(f.body, "");

    request(&f, port, EVHTTP_REQ_POST, "/metrics");
    assert_int_equal(f.code, 405);
    assert_string_equal(f.allow, "GET, HEAD");
    request(&f, port, EVHTTP_REQ_DELETE, "/");
    assert_int_equal(f.code, 405);
    request(&f, port, EVHTTP_REQ_GET, "/metrics/extra");
    assert_int_equal(f.code, 404);
    request(&f, port, EVHTTP_REQ_GET, "/nope");
    assert_int_equal(f.code, 404);

    /* The port is taken now: a second listener says so. */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_null(tf_ops_new(f.base, addr, collect, &f, NULL, err, sizeof err));
    assert_non_null(strstr(err, "cannot listen on"));
    assert_null(tf_ops_new(f.base, "127.0.0.1", collect, &f, NULL, err, sizeof err));
    assert_non_null(strstr(err, "ops.listen: "));

    tf_ops_destroy(ops);
    tf_ops_destroy(NULL);
    free(f.body);
    free(f.snap);
    event_base_free(f.base);
}

/* Runs the loop for ms milliseconds. */
static void pump(server_fixture *f, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    return fd;
}

/* What the server sent on fd so far, without waiting. */
static ssize_t raw_peek(int fd, char *buf, size_t size)
{
    ssize_t n = recv(fd, buf, size - 1, MSG_DONTWAIT);
    buf[n > 0 ? n : 0] = 0;
    return n;
}

static void test_connection_cap(void **state)
{
    (void)state;
    server_fixture f = {0};
    char err[256], buf[512];
    tf_config_t *cfg = malloc(sizeof *cfg);
    assert_non_null(cfg);
    tf_config_defaults(cfg);
    assert_int_equal(tf_config_apply_override(cfg, "ops.max_connections=2", err, sizeof err), 0);
    f.base = event_base_new();
    f.snap = snapshot_new();
    tf_ops_t *ops = tf_ops_new(f.base, "127.0.0.1:0", collect, &f, cfg, err, sizeof err);
    if (!ops)
        fail_msg("tf_ops_new: %s", err);
    free(cfg);
    int port = port_of(ops);

    /* Two clients keep their connections open after a request (keep-alive). */
    const char *get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    int kept[2];
    for (int i = 0; i < 2; i++) {
        kept[i] = raw_connect(port);
        assert_int_equal(send(kept[i], get, strlen(get), 0), (ssize_t)strlen(get));
        pump(&f, 100);
        assert_true(raw_peek(kept[i], buf, sizeof buf) > 0);
        assert_non_null(strstr(buf, "HTTP/1.1 200"));
    }
    /* A third is told to come back, and closed. */
    int third = raw_connect(port);
    assert_int_equal(send(third, get, strlen(get), 0), (ssize_t)strlen(get));
    pump(&f, 100);
    assert_true(raw_peek(third, buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "HTTP/1.1 503"));
    assert_non_null(strstr(buf, "too many connections"));
    close(third);
    /* The ones admitted are still served. */
    assert_int_equal(send(kept[0], get, strlen(get), 0), (ssize_t)strlen(get));
    pump(&f, 100);
    assert_true(raw_peek(kept[0], buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    /* One leaves: a new client is served. */
    close(kept[1]);
    pump(&f, 100);
    request(&f, port, EVHTTP_REQ_GET, "/healthz");
    assert_int_equal(f.code, 200);
    close(kept[0]);
    pump(&f, 100);
    /* Every connection closed is counted out. */
    for (int i = 0; i < 5; i++) {
        request(&f, port, EVHTTP_REQ_GET, "/healthz");
        assert_int_equal(f.code, 200);
    }
    free(f.body);
    tf_ops_destroy(ops);
    free(f.snap);
    event_base_free(f.base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_escape),
        cmocka_unit_test(test_metrics_lines),
        cmocka_unit_test(test_metrics_histogram),
        cmocka_unit_test(test_metrics_families),
        cmocka_unit_test(test_metrics_empty_snapshot),
        cmocka_unit_test(test_figures_metrics),
        cmocka_unit_test(test_liveness),
        cmocka_unit_test(test_readiness),
        cmocka_unit_test(test_status_document),
        cmocka_unit_test(test_server),
        cmocka_unit_test(test_connection_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
