/* metrics: a tf_pipeline_snapshot in the Prometheus text exposition format 0.0.4.
 *
 * The names are a contract: the deploy/ dashboards, alert rules and the tests use
 * them as written here. Every family carries # HELP and # TYPE; every label series
 * a family can have is written even at 0 (except per-partition figures that are not
 * known yet), so that rate() and absent() behave from the first scrape.
 *
 * Lines go straight into the evbuffer (evbuffer_add_printf formats in place), after
 * one expansion sized for the whole page, so a scrape costs no allocation per line. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "event/event.h"
#include "ops/internal.h"
#include "ops/ops.h"

#define SNAP_DIM(f) (sizeof(((tf_pipeline_snapshot *)0)->f) / sizeof(((tf_pipeline_snapshot *)0)->f[0]))
_Static_assert(TF_KIND__COUNT <= SNAP_DIM(events_by_kind), "a row per touchpoint kind");
_Static_assert(TF_DERIVED__COUNT <= SNAP_DIM(stats.derived_by_type), "a counter per derived type");
_Static_assert(TF_EV__COUNT <= SNAP_DIM(stats.dlq_by_reason), "a counter per dead-letter reason");

static void put(tf_ops_writer *w, const char *s, size_t n)
{
    if (evbuffer_add(w->b, s, n) != 0)
        w->failed = 1;
}

static void put_str(tf_ops_writer *w, const char *s)
{
    put(w, s, strlen(s));
}

void tf_ops_put_fmt(tf_ops_writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (evbuffer_add_vprintf(w->b, fmt, ap) < 0)
        w->failed = 1;
    va_end(ap);
}

int tf_ops_label_escape(struct evbuffer *out, const char *value)
{
    tf_ops_writer w = {out, 0};
    const char *run = value;
    for (const char *p = value; *p; p++) {
        const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        put(&w, run, (size_t)(p - run));
        put(&w, esc, 2);
        run = p + 1;
    }
    put_str(&w, run);
    return w.failed ? TF_ENOMEM : 0;
}

static void label(tf_ops_writer *w, const char *value)
{
    if (tf_ops_label_escape(w->b, value) != 0)
        w->failed = 1;
}

/* The shortest decimal that reads back as v (Go's strconv 'g', -1, which is what
 * Prometheus client libraries write): "0.0005", "2.5", "10". */
void tf_ops_format_double(char *buf, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* The fewest significant digits that read back as v, and v's decimal exponent. */
    int digits = 17;
    for (int d = 1; d <= 17; d++) {
        snprintf(buf, size, "%.*e", d - 1, v);
        if (strtod(buf, NULL) == v) {
            digits = d;
            break;
        }
    }
    const char *e = strchr(buf, 'e');
    int exp10 = e ? atoi(e + 1) : 0;
    /* Like Go: an exponent from -4 to 5 is written out ("10", not "1e+01"). */
    int prec = exp10 >= digits && exp10 < 6 ? exp10 + 1 : digits;
    snprintf(buf, size, "%.*g", prec, v);
}

void tf_ops_family(tf_ops_writer *w, const char *name, const char *type, const char *help)
{
    tf_ops_put_fmt(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u64(tf_ops_writer *w, const char *name, uint64_t v)
{
    tf_ops_put_fmt(w, "%s %" PRIu64 "\n", name, v);
}

static void scalar(tf_ops_writer *w, const char *name, const char *type, const char *help, uint64_t v)
{
    tf_ops_family(w, name, type, help);
    sample_u64(w, name, v);
}

/* Which per-partition figure a family shows; -1 (unknown) leaves the series out. */
typedef enum { PART_LAG, PART_HIGH_WATERMARK, PART_COMMITTED, PART_INFLIGHT } part_field;

static void per_partition(tf_ops_writer *w, const tf_pipeline_snapshot *s, const char *name, const char *help,
                          part_field f)
{
    tf_ops_family(w, name, "gauge", help);
    for (size_t i = 0; i < s->npartitions; i++) {
        const tf_partition_status *ps = &s->partitions[i];
        int64_t v;
        switch (f) {
        case PART_LAG: v = ps->lag; break;
        case PART_HIGH_WATERMARK: v = ps->high_watermark; break;
        case PART_COMMITTED: v = ps->committed; break;
        default: v = (int64_t)ps->inflight; break;
        }
        if (v < 0)
            continue;
        tf_ops_put_fmt(w, "%s{topic=\"", name);
        label(w, ps->topic);
        tf_ops_put_fmt(w, "\",partition=\"%" PRId32 "\"} %" PRId64 "\n", ps->partition, v);
    }
}

static void histogram(tf_ops_writer *w, const char *name, const char *help, const tf_histogram *h)
{
    char num[32];
    uint64_t cumulative = 0;
    tf_ops_family(w, name, "histogram", help);
    for (int i = 0; i < TF_HIST_BUCKETS; i++) {
        cumulative += h->buckets[i];
        tf_ops_format_double(num, sizeof num, tf_hist_bounds_s[i]);
        tf_ops_put_fmt(w, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, num, cumulative);
    }
    tf_ops_put_fmt(w, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->count);
    tf_ops_format_double(num, sizeof num, h->sum_s);
    tf_ops_put_fmt(w, "%s_sum %s\n", name, num);
    tf_ops_put_fmt(w, "%s_count %" PRIu64 "\n", name, h->count);
}

int tf_ops_render_metrics(struct evbuffer *out, const tf_pipeline_snapshot *s)
{
    static const char *const outcomes[TF_OUTCOME__COUNT] = {"applied", "duplicate", "replayed"};
    tf_ops_writer w = {out, 0};
    const tf_pipeline_stats *st = &s->stats;

    /* About 2.5 KiB of HELP/TYPE, 45+ event series, 2 x 16 bucket lines, and four
     * lines per partition. */
    if (evbuffer_expand(out, 12288 + s->npartitions * 4 * 128) != 0)
        return TF_ENOMEM;

    tf_ops_family(&w, "touchflow_build_info", "gauge", "touchflow version; always 1.");
    put_str(&w, "touchflow_build_info{version=\"");
    label(&w, TOUCHFLOW_VERSION);
    put_str(&w, "\"} 1\n");

    per_partition(&w, s, "touchflow_consumer_lag",
                  "Records behind per assigned input partition: the high watermark minus the committed "
                  "offset (librdkafka statistics), or minus the position while nothing is committed.",
                  PART_LAG);
    per_partition(&w, s, "touchflow_partition_high_watermark",
                  "End offset of each assigned input partition as last seen.", PART_HIGH_WATERMARK);
    per_partition(&w, s, "touchflow_partition_committed_offset",
                  "Last offset committed for each assigned input partition (the next to read).",
                  PART_COMMITTED);
    per_partition(&w, s, "touchflow_partition_inflight_records",
                  "Records taken from each assigned input partition and not yet finished.", PART_INFLIGHT);

    tf_ops_family(&w, "touchflow_events_consumed_total", "counter",
           "Touchpoint records processed, by touchpoint type and outcome; invalid records are "
           "type=\"invalid\", outcome=\"dead_lettered\".");
    for (int k = 0; k < TF_KIND__COUNT; k++) {
        for (int o = 0; o < TF_OUTCOME__COUNT; o++) {
            put_str(&w, "touchflow_events_consumed_total{type=\"");
            label(&w, tf_event_kind_name((tf_event_kind)k));
            tf_ops_put_fmt(&w, "\",outcome=\"%s\"} %" PRIu64 "\n", outcomes[o], s->events_by_kind[k][o]);
        }
    }
    tf_ops_put_fmt(&w, "touchflow_events_consumed_total{type=\"invalid\",outcome=\"dead_lettered\"} %" PRIu64 "\n",
            st->dead_lettered);

    tf_ops_family(&w, "touchflow_derived_events_total", "counter", "Derived events delivered, by CloudEvents type.");
    for (int t = 0; t < TF_DERIVED__COUNT; t++) {
        put_str(&w, "touchflow_derived_events_total{type=\"");
        label(&w, tf_derived_type_name((tf_derived_type)t));
        tf_ops_put_fmt(&w, "\"} %" PRIu64 "\n", st->derived_by_type[t]);
    }

    tf_ops_family(&w, "touchflow_derived_unrouted_total", "counter",
           "Derived events no subscription wanted (not sent), and outbox entries whose subscriptions are gone.");
    tf_ops_put_fmt(&w, "touchflow_derived_unrouted_total %" PRIu64 "\n", st->derived_unrouted);

    tf_ops_family(&w, "touchflow_subscription_sent_total", "counter",
           "Derived events delivered, by subscription (an event sent to two subscriptions counts in both).");
    for (size_t i = 0; i < s->nsubscriptions; i++) {
        put_str(&w, "touchflow_subscription_sent_total{subscription=\"");
        label(&w, s->subscriptions[i].name);
        tf_ops_put_fmt(&w, "\"} %" PRIu64 "\n", s->subscriptions[i].sent);
    }

    tf_ops_family(&w, "touchflow_dlq_records_total", "counter",
           "Records sent to the dead-letter topic, by tf-error-code.");
    for (int r = TF_EV_OK + 1; r < TF_EV__COUNT; r++) {
        put_str(&w, "touchflow_dlq_records_total{reason=\"");
        label(&w, tf_event_error_code((tf_event_error)r));
        tf_ops_put_fmt(&w, "\"} %" PRIu64 "\n", st->dlq_by_reason[r]);
    }

    histogram(&w, "touchflow_processing_duration_seconds",
              "Time from taking a record from Kafka to its Redis commit being acknowledged.", &s->processing);
    histogram(&w, "touchflow_redis_roundtrip_seconds", "Round-trip time of each Redis load or commit.",
              &s->redis_rtt);

    uint64_t paused = 0;
    for (size_t i = 0; i < s->npartitions; i++)
        paused += s->partitions[i].paused ? 1 : 0;
    scalar(&w, "touchflow_inflight_records", "gauge", "Records taken from Kafka and not yet finished.",
           st->inflight);
    scalar(&w, "touchflow_paused_partitions", "gauge",
           "Assigned partitions whose consumption is paused (Redis unavailable).", paused);
    scalar(&w, "touchflow_assigned_partitions", "gauge", "Input partitions assigned to this member.",
           (uint64_t)s->npartitions);
    scalar(&w, "touchflow_timers_due", "gauge", "Customer timers due and not yet fired.", s->timers_due);
    scalar(&w, "touchflow_timers_fired_total", "counter", "Customer timers fired.", s->timers_fired);
    scalar(&w, "touchflow_rebalances_total", "counter", "Consumer group rebalances seen by this member.",
           st->rebalances);
    scalar(&w, "touchflow_redis_reconnects_total", "counter", "Reconnections to Redis after a failure.",
           s->redis_reconnects);
    scalar(&w, "touchflow_redis_redirects_total", "counter",
           "Redis commands sent again: redirected (MOVED, ASK), refused while a slot moved or the cluster "
           "failed over (TRYAGAIN, CLUSTERDOWN), or missing their script (NOSCRIPT).",
           s->redis_redirects);
    scalar(&w, "touchflow_fenced_commits_total", "counter",
           "Customer commits refused because a newer owner wrote the state.", st->fenced);
    scalar(&w, "touchflow_delivery_retries_total", "counter", "Derived or dead-letter messages sent again.",
           st->delivery_retries);
    scalar(&w, "touchflow_redis_up", "gauge", "1 when Redis answers, else 0.", s->redis_up ? 1 : 0);
    scalar(&w, "touchflow_redis_failing", "gauge",
           "1 while Redis answers but refuses the batch at the front (it is retried with backoff).",
           st->redis_failing ? 1 : 0);
    scalar(&w, "touchflow_redis_batch_failures_total", "counter", "Batches retried after a Redis failure.",
           st->redis_failures);
    scalar(&w, "touchflow_cache_hits_total", "counter",
           "Customers applied from this process's cache of its last commits, without a load.", st->cache_hits);
    scalar(&w, "touchflow_cache_misses_total", "counter", "Customers loaded from Redis.", st->cache_misses);
    scalar(&w, "touchflow_stale_reloads_total", "counter",
           "Commits refused because the stored state changed since it was read (loaded again and reapplied).",
           st->stale_reloads);
    scalar(&w, "touchflow_cache_entries", "gauge", "Customers in the cache.", st->cache_entries);
    scalar(&w, "touchflow_cache_bytes", "gauge", "Memory the cache holds, in bytes.", st->cache_bytes);
    scalar(&w, "touchflow_state_errors_total", "counter",
           "Customers whose stored state Redis refused (WRONGTYPE, undecodable), per attempt.", st->state_errors);
    scalar(&w, "touchflow_producer_rebuilds_total", "counter",
           "Producers replaced after a fatal error (their undelivered messages sent again).", st->producer_rebuilds);
    scalar(&w, "touchflow_dlq_truncated_total", "counter",
           "Dead letters Kafka refused as too large, sent again cut short (header tf-truncated).", st->dlq_truncated);
    scalar(&w, "touchflow_redis_state_lost_total", "counter",
           "Times Redis was found to have lost touchflow's data (epoch counter back, or none while the group resumes).",
           st->state_lost);
    scalar(&w, "touchflow_kafka_up", "gauge", "1 when a Kafka broker answered recently, else 0.",
           s->kafka_up ? 1 : 0);
    return w.failed ? TF_ENOMEM : 0;
}
