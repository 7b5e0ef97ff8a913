/* pkg/bus against the real Kafka broker (TOUCHFLOW_KAFKA_BROKERS): the producer's
 * delivery reports and the consumer's records arrive through the event loop, stored
 * offsets are committed and honoured by the next member, pause holds records back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "bus/bus.h"

static const char *brokers;

typedef struct {
    struct event_base *base;
    tf_config_t cfg;
    tf_producer_t *prod;
    tf_consumer_t *cons;
    int delivered, failed;
    int received;
    int64_t last_offset[8];
    int assigned;
} ctx_t;

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

static void run_for(ctx_t *c, int ms, int *flag, int until)
{
    struct event *t = evtimer_new(c->base, on_timeout, c->base);
    int64_t end = tf_time_mono_ms() + ms;
    while (tf_time_mono_ms() < end && (!flag || *flag < until)) {
        struct timeval tv = {0, 50 * 1000};
        evtimer_add(t, &tv);
        event_base_loop(c->base, EVLOOP_ONCE);
    }
    event_free(t);
}

static void on_delivery(tf_producer_t *p, rd_kafka_resp_err_t err, void *msg_opaque, void *opaque)
{
    ctx_t *c = opaque;
    (void)p;
    assert_int_equal((intptr_t)msg_opaque, 42);
    if (err)
        c->failed++;
    else
        c->delivered++;
}

static void drain(ctx_t *c)
{
    rd_kafka_message_t *m;
    while ((m = tf_consumer_poll(c->cons)) != NULL) {
        c->received++;
        if (m->partition >= 0 && m->partition < 8)
            c->last_offset[m->partition] = m->offset;
        tf_consumer_store(c->cons, rd_kafka_topic_name(m->rkt), m->partition, m->offset + 1);
        rd_kafka_message_destroy(m);
    }
}

static void on_readable(tf_consumer_t *cons, void *opaque)
{
    ctx_t *c = opaque;
    (void)cons;
    drain(c);
}

static void on_rebalance(tf_consumer_t *cons, tf_rebalance_kind kind, const rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    ctx_t *c = opaque;
    (void)cons;
    if (kind == TF_REBALANCE_ASSIGN)
        c->assigned += parts->cnt;
}

static void produce_n(ctx_t *c, const char *topic, int n)
{
    char key[32], val[64];
    int want = c->delivered + n;
    for (int i = 0; i < n; i++) {
        int kl = snprintf(key, sizeof(key), "k%d", i);
        int vl = snprintf(val, sizeof(val), "{\"n\":%d}", i);
        assert_int_equal(tf_producer_send(c->prod, topic, key, (size_t)kl, val, (size_t)vl, NULL, (void *)(intptr_t)42),
                         0);
    }
    run_for(c, 20000, &c->delivered, want);
    assert_int_equal(c->delivered, want);
    assert_int_equal(c->failed, 0);
}

static void open_consumer(ctx_t *c)
{
    char err[512];
    tf_consumer_handlers h = {on_readable, on_rebalance, c};
    c->assigned = 0;
    c->cons = tf_consumer_new(c->base, &c->cfg, brokers, &h, err, sizeof(err));
    assert_non_null(c->cons);
    /* Joining the group is served by polling, as the daemon does. */
    int64_t end = tf_time_mono_ms() + 30000;
    while (!c->assigned && tf_time_mono_ms() < end) {
        drain(c);
        run_for(c, 100, NULL, 0);
    }
    assert_true(c->assigned > 0);
}

static void consume_commit_resume_pause(void **state)
{
    (void)state;
    ctx_t c;
    char err[512], topic[96];
    memset(&c, 0, sizeof(c));
    c.base = event_base_new();
    tf_config_defaults(&c.cfg);
    snprintf(topic, sizeof(topic), "it.bus.%d.%lld", (int)getpid(), (long long)tf_time_now_ms());
    snprintf(c.cfg.group_id, sizeof(c.cfg.group_id), "it.bus.%d", (int)getpid());
    c.cfg.ninput_topics = 1;
    snprintf(c.cfg.input_topics[0], sizeof(c.cfg.input_topics[0]), "%s", topic);
    c.prod = tf_producer_new(c.base, &c.cfg, brokers, on_delivery, &c, err, sizeof(err));
    assert_non_null(c.prod);

    produce_n(&c, topic, 50);

    open_consumer(&c);
    run_for(&c, 20000, &c.received, 50);
    assert_int_equal(c.received, 50);
    assert_int_equal(tf_consumer_commit_sync(c.cons), 0);

    /* Paused: new records stay in Kafka; resumed: they arrive. */
    assert_int_equal(tf_consumer_pause(c.cons, 1), 0);
    produce_n(&c, topic, 10);
    run_for(&c, 2000, NULL, 0);
    drain(&c);
    assert_int_equal(c.received, 50);
    assert_int_equal(tf_consumer_pause(c.cons, 0), 0);
    run_for(&c, 20000, &c.received, 60);
    assert_int_equal(c.received, 60);
    tf_consumer_destroy(c.cons); /* leaves the group, committing the stored offsets */

    /* The next member starts after what was committed: only new records. */
    c.received = 0;
    produce_n(&c, topic, 5);
    open_consumer(&c);
    run_for(&c, 20000, &c.received, 5);
    run_for(&c, 1500, NULL, 0);
    assert_int_equal(c.received, 5);
    tf_consumer_destroy(c.cons);

    tf_producer_destroy(c.prod);
    event_base_free(c.base);
}

static void delivery_failure_is_reported(void **state)
{
    (void)state;
    ctx_t c;
    char err[512];
    memset(&c, 0, sizeof(c));
    c.base = event_base_new();
    tf_config_defaults(&c.cfg);
    /* Nothing listens on port 1: the message times out and is reported failed. */
    c.cfg.nproducer_props = 1;
    snprintf(c.cfg.producer_props[0].key, sizeof(c.cfg.producer_props[0].key), "message.timeout.ms");
    snprintf(c.cfg.producer_props[0].value, sizeof(c.cfg.producer_props[0].value), "1500");
    c.prod = tf_producer_new(c.base, &c.cfg, "127.0.0.1:1", on_delivery, &c, err, sizeof(err));
    assert_non_null(c.prod);
    assert_int_equal(tf_producer_send(c.prod, "nowhere", "k", 1, "v", 1, NULL, (void *)(intptr_t)42), 0);
    run_for(&c, 10000, &c.failed, 1);
    assert_int_equal(c.failed, 1);
    assert_int_equal(c.delivered, 0);
    tf_producer_destroy(c.prod);
    event_base_free(c.base);
}

/* A fatal error of the idempotent producer (what librdkafka 2.0.2 raises after
 * some disconnects, #4438) replaces the client: the messages it held are reported
 * failed (for the caller to send again) and the next sends are delivered. */
static void fatal_error_replaces_the_producer(void **state)
{
    (void)state;
    ctx_t c;
    char err[512], topic[64];
    memset(&c, 0, sizeof(c));
    c.base = event_base_new();
    tf_config_defaults(&c.cfg);
    snprintf(topic, sizeof(topic), "it.bus.fatal.%d", (int)getpid());
    c.prod = tf_producer_new(c.base, &c.cfg, brokers, on_delivery, &c, err, sizeof(err));
    assert_non_null(c.prod);
    produce_n(&c, topic, 20);
    rd_kafka_t *before = tf_producer_handle(c.prod);
    assert_int_equal(rd_kafka_test_fatal_error(before, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                               "sequence desynchronisation (test)"),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    /* The error is served on the loop; the safety poll replaces the client. */
    run_for(&c, 2000, NULL, 0);
    assert_int_equal(tf_producer_rebuilds(c.prod), 1);
    assert_true(tf_producer_handle(c.prod) != NULL);
    c.failed = 0;
    produce_n(&c, topic, 20); /* asserts: all delivered, none failed */
    assert_int_equal(c.delivered, 40);

    /* Messages on their way when it happens: each is reported once, delivered or
     * failed (the pipeline sends the failed ones again). */
    for (int i = 0; i < 50; i++)
        assert_int_equal(tf_producer_send(c.prod, topic, "k", 1, "{}", 2, NULL, (void *)(intptr_t)42), 0);
    rd_kafka_test_fatal_error(tf_producer_handle(c.prod), RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "again");
    c.failed = 0;
    int reported = 0;
    int64_t end = tf_time_mono_ms() + 15000;
    while ((reported = c.delivered - 40 + c.failed) < 50 && tf_time_mono_ms() < end)
        run_for(&c, 100, NULL, 0);
    assert_int_equal(reported, 50);
    assert_int_equal(tf_producer_rebuilds(c.prod), 2);
    tf_producer_destroy(c.prod);
    event_base_free(c.base);
}

int main(void)
{
    brokers = getenv("TOUCHFLOW_KAFKA_BROKERS");
    if (!brokers || !*brokers) {
        fprintf(stderr, "TOUCHFLOW_KAFKA_BROKERS not set: skipping (start deploy/dev/services.sh up)\n");
        return 77;
    }
    tf_log_set_level(getenv("TF_DEBUG") ? TF_LOG_DEBUG : TF_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(consume_commit_resume_pause),
        cmocka_unit_test(delivery_failure_is_reported),
        cmocka_unit_test(fatal_error_replaces_the_producer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
