/* status: readiness and the /status document. */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "ops/ops.h"

int tf_ops_ready(const tf_pipeline_snapshot *s, const char *missing[TF_OPS_READY_CHECKS], size_t *nmissing)
{
    const char *m[TF_OPS_READY_CHECKS];
    size_t n = 0;
    /* "assigned" alone is not enough: a group with more members than partitions
     * hands some members an empty assignment, and they have nothing to be ready for. */
    if (!s->assigned || s->npartitions == 0)
        m[n++] = "assignment";
    if (!s->redis_up)
        m[n++] = "redis";
    else if (s->stats.redis_failing)
        m[n++] = "redis_errors";
    if (!s->kafka_up)
        m[n++] = "kafka";
    if (missing)
        for (size_t i = 0; i < n; i++)
            missing[i] = m[i];
    if (nmissing)
        *nmissing = n;
    return n == 0;
}

int tf_ops_alive(const tf_pipeline_snapshot *s, int64_t stall_ms, char *why, size_t whysize)
{
    int stalled = stall_ms > 0 && s->stats.inflight > 0 && s->idle_ms >= stall_ms && s->redis_up &&
                  !s->stats.redis_failing && !s->stats.paused;
    if (stalled && why && whysize)
        snprintf(why, whysize, "stalled: %llu records in flight and none finished for %lld s",
                 (unsigned long long)s->stats.inflight, (long long)(s->idle_ms / 1000));
    return !stalled;
}

/* A known figure or null (-1 means unknown, or none committed). */
static json_t *offset_json(int64_t v)
{
    return v < 0 ? json_null() : json_integer((json_int_t)v);
}

static json_t *partition_json(const tf_partition_status *ps)
{
    return json_pack("{s:s, s:i, s:o, s:o, s:o, s:o, s:s?, s:b, s:I}", "topic", ps->topic, "partition",
                     (int)ps->partition, "lag", offset_json(ps->lag), "committed", offset_json(ps->committed),
                     "high_watermark", offset_json(ps->high_watermark), "position", offset_json(ps->position),
                     "lag_source", ps->lag < 0 ? NULL : ps->lag_from_stats ? "statistics" : "watermark",
                     "paused", ps->paused, "inflight", (json_int_t)ps->inflight);
}

static json_t *stats_json(const tf_pipeline_snapshot *s)
{
    const tf_pipeline_stats *st = &s->stats;
    json_t *o = json_object();
    if (!o)
        return NULL;
    struct {
        const char *name;
        uint64_t v;
    } counters[] = {
        {"consumed", st->consumed},
        {"applied", st->applied},
        {"duplicates", st->duplicates},
        {"replayed", st->replayed},
        {"dead_lettered", st->dead_lettered},
        {"derived", st->derived},
        {"derived_unrouted", st->derived_unrouted},
        {"commits", st->commits},
        {"fenced", st->fenced},
        {"redis_failures", st->redis_failures},
        {"state_errors", st->state_errors},
        {"cache_hits", st->cache_hits},
        {"cache_misses", st->cache_misses},
        {"stale_reloads", st->stale_reloads},
        {"cache_entries", st->cache_entries},
        {"cache_bytes", st->cache_bytes},
        {"delivery_retries", st->delivery_retries},
        {"rebalances", st->rebalances},
        {"inflight", st->inflight},
        {"redis_reconnects", s->redis_reconnects},
        {"redis_redirects", s->redis_redirects},
        {"timers_due", s->timers_due},
        {"timers_fired", s->timers_fired},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        bad |= json_object_set_new(o, counters[i].name, json_integer((json_int_t)counters[i].v));
    bad |= json_object_set_new(o, "commit_latency_p50_ms", json_real(st->commit_latency_p50_ms));
    bad |= json_object_set_new(o, "commit_latency_p99_ms", json_real(st->commit_latency_p99_ms));
    bad |= json_object_set_new(o, "commit_latency_count", json_integer((json_int_t)st->commit_latency_count));
    /* Records delivered per subscription in force (derived counts each event once). */
    json_t *subs = json_object();
    for (size_t i = 0; subs && i < s->nsubscriptions; i++)
        bad |= json_object_set_new(subs, s->subscriptions[i].name, json_integer((json_int_t)s->subscriptions[i].sent));
    bad |= json_object_set_new(o, "subscription_sent", subs);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int dump_to_evbuffer(const char *buffer, size_t size, void *data)
{
    return evbuffer_add(data, buffer, size);
}

int tf_ops_render_status(struct evbuffer *out, const tf_pipeline_snapshot *s, int64_t uptime_ms,
                         const char *config_json)
{
    const char *missing[TF_OPS_READY_CHECKS];
    size_t nmissing;
    int ready = tf_ops_ready(s, missing, &nmissing);
    int rc = TF_ENOMEM;
    json_t *config = NULL;

    if (config_json) {
        json_error_t jerr;
        config = json_loads(config_json, 0, &jerr);
        if (!config)
            return TF_EINVAL;
    }
    json_t *doc = json_object(), *miss = json_array(), *parts = json_array();
    int64_t total_lag = 0;
    int bad = !doc || !miss || !parts;
    for (size_t i = 0; !bad && i < nmissing; i++)
        bad |= json_array_append_new(miss, json_string(missing[i]));
    for (size_t i = 0; !bad && i < s->npartitions; i++) {
        const tf_partition_status *ps = &s->partitions[i];
        if (ps->lag > 0)
            total_lag += ps->lag;
        bad |= json_array_append_new(parts, partition_json(ps));
    }
    if (bad)
        goto out;
    bad |= json_object_set_new(doc, "version", json_string(TOUCHFLOW_VERSION));
    bad |= json_object_set_new(doc, "uptime_s", json_integer((json_int_t)(uptime_ms / 1000)));
    bad |= json_object_set_new(doc, "ready", json_boolean(ready));
    bad |= json_object_set(doc, "missing", miss);
    bad |= json_object_set_new(doc, "assigned", json_boolean(s->assigned));
    bad |= json_object_set_new(doc, "redis_up", json_boolean(s->redis_up));
    bad |= json_object_set_new(doc, "kafka_up", json_boolean(s->kafka_up));
    bad |= json_object_set_new(doc, "paused", json_boolean(s->stats.paused));
    bad |= json_object_set_new(doc, "redis_failing", json_boolean(s->stats.redis_failing));
    if (s->stats.state_lost) {
        char when[TF_TIME_RFC3339_LEN];
        tf_time_format_rfc3339(s->stats.state_lost_at_ms, when);
        bad |= json_object_set_new(doc, "redis_state_lost",
                                   json_pack("{s:I, s:s, s:s}", "count", (json_int_t)s->stats.state_lost, "last_at",
                                             when, "detail", s->stats.state_lost_detail));
    } else {
        bad |= json_object_set_new(doc, "redis_state_lost", json_null());
    }
    bad |= json_object_set_new(doc, "total_lag", json_integer((json_int_t)total_lag));
    bad |= json_object_set(doc, "partitions", parts);
    bad |= json_object_set_new(doc, "stats", stats_json(s));
    if (config)
        bad |= json_object_set(doc, "config", config);
    if (bad)
        goto out;
    if (json_dump_callback(doc, dump_to_evbuffer, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
        evbuffer_add(out, "\n", 1) != 0)
        goto out;
    rc = 0;
out:
    json_decref(doc);
    json_decref(miss);
    json_decref(parts);
    json_decref(config);
    return rc;
}
