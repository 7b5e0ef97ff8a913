/* The idempotent producer on the event loop, and the embedded mock cluster. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/internal.h"

#include <librdkafka/rdkafka_mock.h>

#define MOD "producer"

struct tf_producer_s {
    struct event_base *base;
    rd_kafka_t *rk;
    rd_kafka_conf_t *conf;  /* a copy, for a new client after a fatal error */
    rd_kafka_queue_t *queue;
    int fds[2];
    struct event *ev;
    struct event *safety; /* polls now and then: a missed queue wake-up never strands a report */
    tf_delivery_cb cb;
    void *opaque;
    int fatal;            /* the client raised a fatal error: replace it */
    uint64_t rebuilds;
    tf_log_throttle delivery_log;
    /* Handles for the topics we write, taken at start so their metadata is fetched
     * before the first record needs it (no stall on the first derived event). */
    char topic_names[TF_CONFIG_ROUTES_MAX + 1][256]; /* the subscriptions' and the dead-letter topic */
    rd_kafka_topic_t *topics[TF_CONFIG_ROUTES_MAX + 1];
    size_t ntopics;
};

static int client_open(tf_producer_t *p, char *err, size_t errsize);
static void client_close(tf_producer_t *p);

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    tf_producer_t *p = opaque;
    (void)rk;
    uint64_t held_back;
    /* An outage fails every outstanding delivery: one line per 10 s says it. */
    if (m->err && tf_log_throttle_pass(&p->delivery_log, tf_time_mono_ms(), 10 * TF_MS_PER_SEC, &held_back))
        TF_WARN(MOD, "delivery to %s failed: %s (%llu more failed deliveries since the last report; they are sent again)",
                rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err), (unsigned long long)held_back);
    p->cb(p, m->err, m->_private, p->opaque);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    tf_producer_t *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_fatal_error(rk, buf, sizeof(buf));
        /* An idempotent producer stops for good on a fatal error (librdkafka 2.0.2
         * raises one after some broker disconnects, #4438): its messages fail, the
         * pipeline sends them again, and they go through a new client. */
        TF_ERROR(MOD, "fatal producer error: %s; replacing the producer", buf);
        p->fatal = 1;
    } else {
        TF_WARN(MOD, "producer: %s", reason);
    }
}

/* Serves the failed messages' reports of the old client, then opens a new one. */
static int rebuild(tf_producer_t *p)
{
    char err[512];
    p->fatal = 0;
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    /* Every message gets its report (failed) before the client goes: the caller
     * sends them again. Bounded, and only on this rare path. */
    if (rd_kafka_flush(p->rk, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        TF_ERROR(MOD, "%d messages of the failed producer were not reported", rd_kafka_outq_len(p->rk));
    client_close(p);
    if (client_open(p, err, sizeof(err)) != TF_OK) {
        TF_ERROR(MOD, "cannot replace the producer: %s; trying again", err);
        p->fatal = 1;
        return TF_EIO;
    }
    p->rebuilds++;
    TF_WARN(MOD, "producer replaced (%llu so far); undelivered messages are sent again", (unsigned long long)p->rebuilds);
    return TF_OK;
}

static void on_queue_fd(evutil_socket_t fd, short what, void *arg)
{
    tf_producer_t *p = arg;
    (void)what;
    tf_bus_drain_fd(fd);
    if (p->rk)
        rd_kafka_poll(p->rk, 0);
}

static void on_safety(evutil_socket_t fd, short what, void *arg)
{
    tf_producer_t *p = arg;
    (void)fd, (void)what;
    if (p->fatal)
        rebuild(p);
    if (p->rk)
        rd_kafka_poll(p->rk, 0);
}

static int client_open(tf_producer_t *p, char *err, size_t errsize)
{
    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(p->conf);
    if (!conf) {
        snprintf(err, errsize, "out of memory");
        return TF_ENOMEM;
    }
    rd_kafka_conf_set_opaque(conf, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errsize, "cannot create producer: %s", e);
        return TF_EIO;
    }
    for (size_t i = 0; i < p->ntopics; i++)
        p->topics[i] = rd_kafka_topic_new(p->rk, p->topic_names[i], NULL);
    p->queue = rd_kafka_queue_get_main(p->rk);
    if (!p->queue || tf_bus_queue_watch(p->base, p->queue, on_queue_fd, p, p->fds, &p->ev)) {
        snprintf(err, errsize, "cannot watch the producer queue");
        return TF_EIO;
    }
    return TF_OK;
}

static void client_close(tf_producer_t *p)
{
    tf_bus_queue_unwatch(p->queue, p->fds, &p->ev);
    if (p->queue)
        rd_kafka_queue_destroy(p->queue);
    p->queue = NULL;
    for (size_t i = 0; i < p->ntopics; i++) {
        if (p->topics[i])
            rd_kafka_topic_destroy(p->topics[i]);
        p->topics[i] = NULL;
    }
    if (p->rk)
        rd_kafka_destroy(p->rk);
    p->rk = NULL;
}

tf_producer_t *tf_producer_new(struct event_base *base, const tf_config_t *cfg, const char *brokers,
                               tf_delivery_cb cb, void *opaque, char *err, size_t errsize)
{
    static const char *const defaults[][2] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "5"},
        {"compression.codec", "lz4"},
        {"message.timeout.ms", "120000"},
    };
    tf_producer_t *p = calloc(1, sizeof(*p));
    rd_kafka_conf_t *conf = NULL;
    if (!p) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    p->fds[0] = p->fds[1] = -1;
    p->cb = cb;
    p->opaque = opaque;
    conf = tf_bus_conf_new(brokers ? brokers : cfg->brokers, NULL, 0, err, errsize);
    if (!conf)
        goto fail;
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (tf_bus_conf_set(conf, defaults[i][0], defaults[i][1], err, errsize))
            goto fail;
    for (size_t i = 0; i < cfg->nproducer_props; i++)
        if (tf_bus_conf_set(conf, cfg->producer_props[i].key, cfg->producer_props[i].value, err, errsize))
            goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    p->conf = conf;
    conf = NULL;
    p->base = base;
    const char *names[TF_CONFIG_ROUTES_MAX + 1];
    size_t n = tf_config_output_topic_list(cfg, names);
    for (size_t i = 0; i < n; i++)
        tf_strlcpy(p->topic_names[p->ntopics++], names[i], sizeof(p->topic_names[0]));
    if (client_open(p, err, errsize) != TF_OK)
        goto fail;
    p->safety = event_new(base, -1, EV_PERSIST, on_safety, p);
    struct timeval tv = {0, 100 * 1000};
    if (!p->safety || event_add(p->safety, &tv) != 0) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    return p;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    tf_producer_destroy(p);
    return NULL;
}

int tf_producer_send(tf_producer_t *p, const char *topic, const void *key, size_t keylen, const void *value,
                     size_t len, rd_kafka_headers_t *headers, void *msg_opaque)
{
    rd_kafka_resp_err_t err;
    if (p->fatal && rebuild(p) != TF_OK)
        return TF_EAGAIN;
    if (headers)
        err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, keylen),
                                RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
    else
        err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, keylen),
                                RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return TF_EAGAIN;
    if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
        return TF_EINVAL;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        p->fatal = 1;
        return TF_EAGAIN;
    }
    if (err) {
        TF_ERROR(MOD, "cannot produce to %s: %s", topic, rd_kafka_err2str(err));
        return TF_EIO;
    }
    return TF_OK;
}

int tf_producer_outq(tf_producer_t *p) { return p->rk ? rd_kafka_outq_len(p->rk) : 0; }

uint64_t tf_producer_rebuilds(const tf_producer_t *p) { return p->rebuilds; }

rd_kafka_t *tf_producer_handle(tf_producer_t *p) { return p->rk; }

int tf_producer_flush(tf_producer_t *p, int timeout_ms)
{
    if (!p->rk)
        return 0;
    rd_kafka_flush(p->rk, timeout_ms);
    return rd_kafka_outq_len(p->rk);
}

void tf_producer_destroy(tf_producer_t *p)
{
    if (!p)
        return;
    if (p->safety)
        event_free(p->safety);
    client_close(p);
    if (p->conf)
        rd_kafka_conf_destroy(p->conf);
    free(p);
}

/* ---- embedded cluster ---- */

struct tf_mock_cluster_s {
    rd_kafka_t *rk; /* owns the mock cluster */
    rd_kafka_mock_cluster_t *mc;
};

tf_mock_cluster_t *tf_mock_cluster_new(const char *const *topics, size_t ntopics, int partitions, char *err,
                                       size_t errsize)
{
    char e[256];
    tf_mock_cluster_t *m = calloc(1, sizeof(*m));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!m || !conf) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    rd_kafka_conf_set_log_cb(conf, NULL);
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    if (!m->rk) {
        snprintf(err, errsize, "cannot create the mock cluster handle: %s", e);
        goto fail;
    }
    conf = NULL;
    m->mc = rd_kafka_mock_cluster_new(m->rk, 1);
    if (!m->mc) {
        snprintf(err, errsize, "cannot start the mock cluster");
        goto fail;
    }
    for (size_t i = 0; i < ntopics; i++)
        rd_kafka_mock_topic_create(m->mc, topics[i], partitions, 1);
    return m;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    tf_mock_cluster_destroy(m);
    return NULL;
}

const char *tf_mock_cluster_bootstraps(const tf_mock_cluster_t *m) { return rd_kafka_mock_cluster_bootstraps(m->mc); }

void tf_mock_cluster_destroy(tf_mock_cluster_t *m)
{
    if (!m)
        return;
    if (m->mc)
        rd_kafka_mock_cluster_destroy(m->mc);
    if (m->rk)
        rd_kafka_destroy(m->rk);
    free(m);
}
