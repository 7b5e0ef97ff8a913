/* librdkafka configuration shared by the consumer and the producer. */
#include <stdio.h>
#include <string.h>

#include "bus/internal.h"

#define MOD "kafka"

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug */
    tf_log_level l = level <= 3 ? TF_LOG_ERROR : level == 4 ? TF_LOG_WARN : level <= 6 ? TF_LOG_INFO : TF_LOG_DEBUG;
    (void)rk;
    TF_LOG(l, MOD, "%s: %s", fac, buf);
}

int tf_bus_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err, size_t errsize)
{
    char e[256];
    if (rd_kafka_conf_set(conf, key, value, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errsize, "kafka property %s: %s", key, e);
        return TF_ECONFIG;
    }
    return TF_OK;
}

rd_kafka_conf_t *tf_bus_conf_new(const char *brokers, const tf_config_kv *props, size_t nprops, char *err,
                                 size_t errsize)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    if (tf_bus_conf_set(conf, "bootstrap.servers", brokers, err, errsize) ||
        tf_bus_conf_set(conf, "client.id", "touchflow", err, errsize))
        goto fail;
    for (size_t i = 0; i < nprops; i++)
        if (tf_bus_conf_set(conf, props[i].key, props[i].value, err, errsize))
            goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Wakes the loop when librdkafka puts something on q: librdkafka writes a byte to
 * the pipe, the loop reads the fd. */
int tf_bus_queue_watch(struct event_base *base, rd_kafka_queue_t *q, event_callback_fn fn, void *arg,
                       int fds[2], struct event **ev)
{
    if (pipe(fds) != 0)
        return TF_EIO;
    evutil_make_socket_nonblocking(fds[0]);
    evutil_make_socket_nonblocking(fds[1]);
    rd_kafka_queue_io_event_enable(q, fds[1], "1", 1);
    *ev = event_new(base, fds[0], EV_READ | EV_PERSIST, fn, arg);
    if (!*ev || event_add(*ev, NULL) != 0)
        return TF_ENOMEM;
    return TF_OK;
}

void tf_bus_queue_unwatch(rd_kafka_queue_t *q, int fds[2], struct event **ev)
{
    if (*ev) {
        event_free(*ev);
        *ev = NULL;
    }
    if (q && fds[1] >= 0)
        rd_kafka_queue_io_event_enable(q, -1, NULL, 0);
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

void tf_bus_drain_fd(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
}
