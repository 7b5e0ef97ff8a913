/* The consumer: one consumer group member on the event loop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bus/internal.h"

#define MOD "consumer"

struct tf_consumer_s {
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    int fds[2];
    struct event *ev;
    tf_consumer_handlers h;
    rd_kafka_topic_partition_list_t *assignment;
    int paused; /* what the pipeline asked for, applied to every assignment */

    /* From the latest statistics: consumer_lag per partition, brokers up. */
    struct stat_entry {
        char topic[128];
        int32_t partition;
        int64_t lag;
        int64_t committed;
    } *stat_lag;
    size_t nstat_lag, stat_lag_cap;
    int stats_seen;
    int brokers_up;
    int rebuild;               /* cfg->rebuild: start offsets set at assignment */
    int64_t rebuild_from_ms;
};

/* Runs on the loop thread (statistics are served by our poll). */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    tf_consumer_t *c = opaque;
    json_error_t jerr;
    (void)rk;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root)
        return 0;
    c->stats_seen = 1;
    c->brokers_up = 0;
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(root, "brokers"), name, v) {
        const char *state = json_string_value(json_object_get(v, "state"));
        if (state && strcmp(state, "UP") == 0)
            c->brokers_up++;
    }
    c->nstat_lag = 0;
    const char *tname, *pname;
    json_t *t, *pv;
    json_object_foreach(json_object_get(root, "topics"), tname, t) {
        json_object_foreach(json_object_get(t, "partitions"), pname, pv) {
            json_int_t part = json_integer_value(json_object_get(pv, "partition"));
            json_t *lag = json_object_get(pv, "consumer_lag");
            json_t *committed = json_object_get(pv, "committed_offset");
            if (part < 0 || !json_is_integer(lag))
                continue;
            if (c->nstat_lag == c->stat_lag_cap) {
                size_t cap = c->stat_lag_cap ? c->stat_lag_cap * 2 : 64;
                struct stat_entry *n = realloc(c->stat_lag, cap * sizeof(*n));
                if (!n)
                    break;
                c->stat_lag = n;
                c->stat_lag_cap = cap;
            }
            struct stat_entry *e = &c->stat_lag[c->nstat_lag++];
            tf_strlcpy(e->topic, tname, sizeof(e->topic));
            e->partition = (int32_t)part;
            e->lag = json_integer_value(lag);
            e->committed = json_is_integer(committed) ? json_integer_value(committed) : -1;
        }
    }
    json_decref(root);
    return 0; /* librdkafka frees json */
}

void tf_consumer_partition_info_get(tf_consumer_t *c, const char *topic, int32_t partition,
                                    tf_consumer_partition_info *out)
{
    int64_t lo = -1, hi = -1;
    out->position = out->committed = out->high_watermark = out->lag = -1;
    out->lag_from_stats = 0;
    if (rd_kafka_get_watermark_offsets(c->rk, topic, partition, &lo, &hi) == RD_KAFKA_RESP_ERR_NO_ERROR)
        out->high_watermark = hi;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition);
    if (rd_kafka_position(c->rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR && l->elems[0].offset >= 0)
        out->position = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    for (size_t i = 0; i < c->nstat_lag; i++) {
        if (c->stat_lag[i].partition != partition || strcmp(c->stat_lag[i].topic, topic) != 0)
            continue;
        out->committed = c->stat_lag[i].committed;
        if (c->stat_lag[i].lag >= 0) {
            out->lag = c->stat_lag[i].lag;
            out->lag_from_stats = 1;
            return;
        }
        break;
    }
    /* Nothing committed yet (the statistics say -1): what is left to read. */
    if (out->high_watermark >= 0)
        out->lag = out->high_watermark - (out->position >= 0 ? out->position : (lo >= 0 ? lo : 0));
}

void tf_consumer_watermarks(tf_consumer_t *c, const char *topic, int32_t partition, int64_t *lo, int64_t *hi)
{
    *lo = *hi = -1;
    if (rd_kafka_get_watermark_offsets(c->rk, topic, partition, lo, hi) != RD_KAFKA_RESP_ERR_NO_ERROR)
        *lo = *hi = -1;
}

int tf_consumer_caught_up(tf_consumer_t *c, const char *topic, int32_t partition)
{
    tf_consumer_partition_info info;
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(c->rk, topic, partition, &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0)
        return 0;
    if (lo >= 0 && lo == hi)
        return 1; /* empty */
    tf_consumer_partition_info_get(c, topic, partition, &info);
    int64_t at = info.position >= 0 ? info.position : info.committed;
    return at >= 0 && at >= hi;
}

int tf_consumer_kafka_up(const tf_consumer_t *c)
{
    if (c->stats_seen)
        return c->brokers_up > 0;
    return c->assignment != NULL;
}

static void on_queue_fd(evutil_socket_t fd, short what, void *arg)
{
    tf_consumer_t *c = arg;
    (void)what;
    tf_bus_drain_fd(fd);
    c->h.on_readable(c, c->h.opaque);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    tf_consumer_t *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        TF_INFO(MOD, "assigned %d partition(s)", parts->cnt);
        if (c->assignment)
            rd_kafka_topic_partition_list_destroy(c->assignment);
        if (c->rebuild && tf_bus_rebuild_start(rk, parts, c->rebuild_from_ms, 10000) != TF_OK) {
            /* Without a start the rebuild cannot run: it stops, as it would at a bad config. */
            TF_ERROR(MOD, "rebuild: cannot set the start offsets; stopping");
            raise(SIGTERM);
        }
        c->assignment = rd_kafka_topic_partition_list_copy(parts);
        c->h.on_rebalance(c, TF_REBALANCE_ASSIGN, parts, c->h.opaque);
        rd_kafka_assign(rk, parts);
        /* librdkafka keeps a partition's pause across a revoke: one paused then
         * lost (a session timeout during an outage) would come back paused while
         * we consume, and never be read again. Say what we want every time. */
        if (c->paused)
            rd_kafka_pause_partitions(rk, parts);
        else
            rd_kafka_resume_partitions(rk, parts);
    } else {
        TF_INFO(MOD, "revoking %d partition(s)", parts->cnt);
        c->h.on_rebalance(c, TF_REBALANCE_REVOKE, parts, c->h.opaque);
        /* Commit what the pipeline stored before the partitions go to another member. */
        rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, NULL, 0);
        if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
            TF_WARN(MOD, "commit on revoke failed: %s", rd_kafka_err2str(cerr));
        if (c->assignment)
            rd_kafka_topic_partition_list_destroy(c->assignment);
        c->assignment = NULL;
        rd_kafka_assign(rk, NULL);
    }
}

static int set_defaults(rd_kafka_conf_t *conf, const tf_config_t *cfg, char *err, size_t errsize)
{
    /* Ours first, then the user's pass-through properties may tune the rest. */
    static const char *const defaults[][2] = {
        {"enable.auto.offset.store", "false"},
        {"enable.auto.commit", "true"},
        {"auto.commit.interval.ms", "1000"},
        {"auto.offset.reset", "earliest"},
        {"partition.assignment.strategy", "range,roundrobin"},
        /* librdkafka 2.0 stops fetching a partition for fetch.error.backoff.ms once
         * its prefetch is full: the prefetch must outlast that pause at full speed
         * (16 MiB is ~45,000 events, a second), and the pause is short. */
        {"queued.max.messages.kbytes", "16384"},
        {"fetch.error.backoff.ms", "100"},
        {"fetch.wait.max.ms", "50"},
        {"enable.partition.eof", "false"},
        {"statistics.interval.ms", "5000"},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (tf_bus_conf_set(conf, defaults[i][0], defaults[i][1], err, errsize))
            return TF_ECONFIG;
    return tf_bus_conf_set(conf, "group.id", cfg->group_id, err, errsize);
}

tf_consumer_t *tf_consumer_new(struct event_base *base, const tf_config_t *cfg, const char *brokers,
                               const tf_consumer_handlers *h, char *err, size_t errsize)
{
    char e[512];
    tf_consumer_t *c = calloc(1, sizeof(*c));
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *topics = NULL;
    if (!c) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    c->fds[0] = c->fds[1] = -1;
    c->h = *h;
    c->rebuild = cfg->rebuild;
    c->rebuild_from_ms = cfg->rebuild_from_ms;
    conf = tf_bus_conf_new(brokers ? brokers : cfg->brokers, NULL, 0, err, errsize);
    if (!conf || set_defaults(conf, cfg, err, errsize))
        goto fail;
    for (size_t i = 0; i < cfg->nconsumer_props; i++)
        if (tf_bus_conf_set(conf, cfg->consumer_props[i].key, cfg->consumer_props[i].value, err, errsize))
            goto fail;
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    rd_kafka_conf_set_opaque(conf, c);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
    if (!c->rk) {
        snprintf(err, errsize, "cannot create consumer: %s", e);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(c->rk);
    c->queue = rd_kafka_queue_get_consumer(c->rk);
    if (!c->queue || tf_bus_queue_watch(base, c->queue, on_queue_fd, c, c->fds, &c->ev)) {
        snprintf(err, errsize, "cannot watch the consumer queue");
        goto fail;
    }
    topics = rd_kafka_topic_partition_list_new((int)cfg->ninput_topics);
    for (size_t i = 0; i < cfg->ninput_topics; i++)
        rd_kafka_topic_partition_list_add(topics, cfg->input_topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rerr) {
        snprintf(err, errsize, "cannot subscribe: %s", rd_kafka_err2str(rerr));
        goto fail;
    }
    return c;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    tf_consumer_destroy(c);
    return NULL;
}

rd_kafka_message_t *tf_consumer_poll(tf_consumer_t *c)
{
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 0);
        if (!m || !m->err)
            return m;
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            TF_WARN(MOD, "consumer: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
    }
}

int tf_consumer_store(tf_consumer_t *c, const char *topic, int32_t partition, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return err ? TF_EIO : TF_OK;
}

int tf_consumer_commit_sync(tf_consumer_t *c)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 0);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        TF_WARN(MOD, "commit failed: %s", rd_kafka_err2str(err));
        return TF_EIO;
    }
    return TF_OK;
}

int tf_consumer_pause(tf_consumer_t *c, int pause)
{
    c->paused = pause;
    if (!c->assignment || c->assignment->cnt == 0)
        return TF_OK;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_copy(c->assignment);
    rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(c->rk, l) : rd_kafka_resume_partitions(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return err ? TF_EIO : TF_OK;
}

int tf_consumer_pause_partition(tf_consumer_t *c, const char *topic, int32_t partition)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition);
    rd_kafka_resp_err_t err = rd_kafka_pause_partitions(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return err ? TF_EIO : TF_OK;
}

const rd_kafka_topic_partition_list_t *tf_consumer_assignment(const tf_consumer_t *c) { return c->assignment; }

rd_kafka_t *tf_consumer_handle(tf_consumer_t *c) { return c->rk; }

void tf_consumer_destroy(tf_consumer_t *c)
{
    if (!c)
        return;
    if (c->rk) {
        /* Close serves the final revoke (so the pipeline stores what it finished)
         * and commits; then the queue goes. */
        rd_kafka_consumer_close(c->rk);
        tf_bus_queue_unwatch(c->queue, c->fds, &c->ev);
        if (c->queue)
            rd_kafka_queue_destroy(c->queue);
        rd_kafka_destroy(c->rk);
    } else {
        tf_bus_queue_unwatch(NULL, c->fds, &c->ev);
    }
    if (c->assignment)
            rd_kafka_topic_partition_list_destroy(c->assignment);
    free(c->stat_lag);
    free(c);
}
