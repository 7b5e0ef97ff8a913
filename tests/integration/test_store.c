/* pkg/store against a real Redis (TOUCHFLOW_REDIS_URL): atomic commit, dedup,
 * epoch fencing, the outbox, and behaviour when Redis is down or hung. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "store/store.h"

static const char *redis_url;
static char prefix[64];

typedef struct {
    struct event_base *base;
    tf_store_t *st;
    int ups, downs;
    int done;
    int status;
    int64_t num;
    tf_store_doc_t doc;
    uint8_t seen[16];
    size_t noutbox;
    char outbox_ids[8][TF_ID_LEN];
    char outbox_payload[8][128];
} ctx_t;

static void on_state(tf_store_t *st, int up, void *opaque)
{
    ctx_t *c = opaque;
    (void)st;
    if (up)
        c->ups++;
    else
        c->downs++;
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

/* Runs the loop until *flag becomes nonzero or ms pass; returns the flag. */
static int run_until(ctx_t *c, int *flag, int ms)
{
    struct event *t = evtimer_new(c->base, on_timeout, c->base);
    int64_t end = tf_time_mono_ms() + ms;
    while (!*flag && tf_time_mono_ms() < end) {
        struct timeval tv = {0, 20 * 1000};
        evtimer_add(t, &tv);
        event_base_loop(c->base, EVLOOP_ONCE);
    }
    event_free(t);
    return *flag;
}

static void open_store(ctx_t *c, const char *url, int64_t timeout_ms)
{
    char err[256];
    memset(c, 0, sizeof(*c));
    c->base = event_base_new();
    tf_store_opts o = {url, prefix, timeout_ms, 50, 400, 3600 * 1000};
    c->st = tf_store_new(c->base, &o, on_state, c, err, sizeof(err));
    assert_non_null(c->st);
}

static void close_store(ctx_t *c)
{
    tf_store_destroy(c->st);
    event_base_free(c->base);
}

static void on_loaded(tf_store_t *st, int status, const tf_store_loaded *res, void *opaque)
{
    ctx_t *c = opaque;
    (void)st;
    c->status = status;
    if (status == TF_OK) {
        c->doc = *res->doc;
        for (size_t i = 0; i < 16; i++)
            c->seen[i] = 0;
        c->noutbox = res->noutbox;
        for (size_t i = 0; i < res->noutbox && i < 8; i++) {
            snprintf(c->outbox_ids[i], TF_ID_LEN, "%s", res->outbox[i].id);
            snprintf(c->outbox_payload[i], 128, "%.*s", (int)res->outbox[i].payload_len, res->outbox[i].payload);
        }
    }
    c->done = 1;
}

static void on_seen_loaded(tf_store_t *st, int status, const tf_store_loaded *res, void *opaque)
{
    ctx_t *c = opaque;
    on_loaded(st, status, res, opaque);
    if (status == TF_OK)
        for (size_t i = 0; i < 3; i++)
            c->seen[i] = res->seen[i];
}

static void on_committed(tf_store_t *st, int status, int64_t version, void *opaque)
{
    ctx_t *c = opaque;
    (void)st;
    c->status = status;
    c->num = version;
    c->done = 1;
}

static void on_epoch(tf_store_t *st, int status, int64_t epoch, void *opaque)
{
    ctx_t *c = opaque;
    (void)st;
    c->status = status;
    c->num = epoch;
    c->done = 1;
}

static void load(ctx_t *c, const char *customer, const char *const *ids, size_t nids)
{
    c->done = 0;
    assert_int_equal(tf_store_load(c->st, customer, ids, nids, nids ? on_seen_loaded : on_loaded, c), 0);
    assert_true(run_until(c, &c->done, 3000));
}

static int commit(ctx_t *c, const char *customer, const tf_store_doc_t *before, const tf_store_doc_t *after,
                  int64_t epoch, const char *const *ids, size_t nids, const tf_store_outbox_add *ob, size_t nob)
{
    c->done = 0;
    assert_int_equal(tf_store_commit(c->st, customer, before, after, epoch, tf_time_now_ms(), ids, nids, ob, nob,
                                     on_committed, c),
                     0);
    assert_true(run_until(c, &c->done, 3000));
    return c->status;
}

static int setup(void **state)
{
    ctx_t *c = calloc(1, sizeof(*c));
    open_store(c, redis_url, 2000);
    assert_true(run_until(c, &c->ups, 5000));
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    close_store(*state);
    free(*state);
    return 0;
}

static void commit_then_load_round_trips(void **state)
{
    ctx_t *c = *state;
    tf_store_doc_t empty, after;
    load(c, "alice", NULL, 0);
    assert_int_equal(c->status, TF_OK);
    assert_false(c->doc.exists);
    empty = c->doc;

    after = empty;
    after.customer.stage = TF_STAGE_GROWTH;
    after.customer.purchases = 2;
    after.customer.spend = 25980;
    after.customer.sat_perception_sum = 9.5;
    memcpy(after.customer.currency, "CNY", 4);
    tf_store_doc_set_watermark(&after, "touchpoints/3", 41);
    const char *ids[] = {"e-1", "e-2"};
    tf_store_outbox_add ob[] = {{"d-1", "lifecycle\n{\"x\":1}", 17}};
    assert_int_equal(commit(c, "alice", &empty, &after, 7, ids, 2, ob, 1), TF_OK);
    assert_int_equal(c->num, 1);

    const char *ask[] = {"e-2", "e-3", "e-1"};
    load(c, "alice", ask, 3);
    assert_int_equal(c->status, TF_OK);
    assert_true(c->doc.exists);
    assert_int_equal(c->doc.customer.stage, TF_STAGE_GROWTH);
    assert_int_equal(c->doc.customer.purchases, 2);
    assert_int_equal(c->doc.customer.spend, 25980);
    assert_true(c->doc.customer.sat_perception_sum == 9.5);
    assert_string_equal(c->doc.customer.currency, "CNY");
    assert_int_equal(tf_store_doc_watermark(&c->doc, "touchpoints/3"), 41);
    assert_int_equal(c->doc.version, 1);
    assert_int_equal(c->doc.epoch, 7);
    /* dedup: the two committed ids are seen, the new one is not */
    assert_int_equal(c->seen[0], 1);
    assert_int_equal(c->seen[1], 0);
    assert_int_equal(c->seen[2], 1);
    assert_int_equal(c->noutbox, 1);
    assert_string_equal(c->outbox_ids[0], "d-1");
    assert_string_equal(c->outbox_payload[0], "lifecycle\n{\"x\":1}");

    /* Only changed fields are sent, yet the whole state reads back. */
    tf_store_doc_t before = c->doc, next = c->doc;
    next.customer.purchases = 3;
    assert_int_equal(commit(c, "alice", &before, &next, 7, NULL, 0, NULL, 0), TF_OK);
    assert_int_equal(c->num, 2);
    load(c, "alice", NULL, 0);
    assert_int_equal(c->doc.customer.purchases, 3);
    assert_int_equal(c->doc.customer.spend, 25980);

    /* The outbox ack removes delivered entries. */
    const char *acked[] = {"d-1"};
    assert_int_equal(tf_store_outbox_ack(c->st, "alice", acked, 1), 0);
    load(c, "alice", NULL, 0);
    assert_int_equal(c->noutbox, 0);
}

static void older_epoch_is_fenced_and_writes_nothing(void **state)
{
    ctx_t *c = *state;
    tf_store_doc_t empty, a, b;
    load(c, "bob", NULL, 0);
    empty = c->doc;
    a = empty;
    a.customer.purchases = 1;
    const char *ids1[] = {"b-1"};
    assert_int_equal(commit(c, "bob", &empty, &a, 10, ids1, 1, NULL, 0), TF_OK);

    /* A writer that lost the partition still holds epoch 9: refused, and atomically
     * so: no field, dedup id or outbox entry of its commit lands. */
    b = empty;
    b.customer.purchases = 99;
    const char *ids2[] = {"b-stale"};
    tf_store_outbox_add ob[] = {{"d-stale", "lifecycle\n{}", 11}};
    assert_int_equal(commit(c, "bob", &empty, &b, 9, ids2, 1, ob, 1), TF_EFENCED);

    const char *ask[] = {"b-stale", "b-1"};
    load(c, "bob", ask, 2);
    assert_int_equal(c->doc.customer.purchases, 1);
    assert_int_equal(c->doc.version, 1);
    assert_int_equal(c->seen[0], 0);
    assert_int_equal(c->seen[1], 1);
    assert_int_equal(c->noutbox, 0);

    /* The same or a newer epoch writes. */
    tf_store_doc_t before = c->doc, next = c->doc;
    next.customer.purchases = 2;
    assert_int_equal(commit(c, "bob", &before, &next, 11, NULL, 0, NULL, 0), TF_OK);
    load(c, "bob", NULL, 0);
    assert_int_equal(c->doc.customer.purchases, 2);
    assert_int_equal(c->doc.epoch, 11);
}

static void epochs_increase(void **state)
{
    ctx_t *c = *state;
    c->done = 0;
    assert_int_equal(tf_store_next_epoch(c->st, on_epoch, c), 0);
    assert_true(run_until(c, &c->done, 3000));
    int64_t first = c->num;
    c->done = 0;
    assert_int_equal(tf_store_next_epoch(c->st, on_epoch, c), 0);
    assert_true(run_until(c, &c->done, 3000));
    assert_int_equal(c->num, first + 1);
}

/* ---- a Redis of our own, to stop and hang ---- */

/* Servers this test started, killed by the group teardown when an assertion
 * leaves a test early. */
static pid_t spawned[8];

static pid_t start_redis(int port)
{
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("redis-server", "redis-server", "--port", portstr, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 8; i++)
        if (!spawned[i]) {
            spawned[i] = pid;
            break;
        }
    return pid;
}

static void stop_redis(pid_t pid)
{
    kill(pid, SIGCONT);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < 8; i++)
        if (spawned[i] == pid)
            spawned[i] = 0;
}

static int stop_spawned(void **state)
{
    (void)state;
    for (int i = 0; i < 8; i++)
        if (spawned[i])
            stop_redis(spawned[i]);
    return 0;
}

static void down_then_up_then_lost(void **state)
{
    (void)state;
    int port = 20000 + (int)(getpid() % 20000);
    char url[64];
    ctx_t c;
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    open_store(&c, url, 500);

    /* Nothing listening: not up, and commands are refused rather than queued. */
    int never = 0;
    run_until(&c, &never, 300);
    assert_false(tf_store_is_up(c.st));
    assert_int_equal(tf_store_load(c.st, "x", NULL, 0, on_loaded, &c), TF_EAGAIN);

    pid_t pid = start_redis(port);
    assert_true(run_until(&c, &c.ups, 8000));
    assert_true(tf_store_is_up(c.st));

    /* Lost while a command is pending: the callback fails with TF_EIO, once. */
    stop_redis(pid);
    c.done = 0;
    c.status = 0;
    if (tf_store_load(c.st, "x", NULL, 0, on_loaded, &c) == TF_OK) {
        assert_true(run_until(&c, &c.done, 3000));
        assert_int_equal(c.status, TF_EIO);
    }
    assert_true(run_until(&c, &c.downs, 3000));
    assert_false(tf_store_is_up(c.st));

    /* Back again: reconnects by itself, scripts reloaded. */
    pid = start_redis(port);
    int ups_before = c.ups;
    int want = ups_before + 1;
    while (c.ups < want && run_until(&c, &never, 100) == 0 && c.ups < want) {
        static int spins;
        if (++spins > 100)
            break;
    }
    assert_int_equal(c.ups, want);
    load(&c, "x", NULL, 0);
    assert_int_equal(c.status, TF_OK);
    assert_true(tf_store_reconnects(c.st) >= 1);
    close_store(&c);
    stop_redis(pid);
}

static void hung_redis_times_out(void **state)
{
    (void)state;
    int port = 20000 + (int)((getpid() + 7) % 20000);
    char url[64];
    ctx_t c;
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    pid_t pid = start_redis(port);
    open_store(&c, url, 400);
    assert_true(run_until(&c, &c.ups, 8000));

    /* A stopped server accepts nothing and answers nothing: hiredis alone would
     * wait forever. */
    kill(pid, SIGSTOP);
    c.done = 0;
    c.status = 0;
    int64_t t0 = tf_time_mono_ms();
    assert_int_equal(tf_store_load(c.st, "y", NULL, 0, on_loaded, &c), 0);
    assert_true(run_until(&c, &c.done, 3000));
    int64_t took = tf_time_mono_ms() - t0;
    assert_int_equal(c.status, TF_EIO);
    assert_true(took < 1500); /* the timeout fired, not the sleep's end */
    assert_true(c.downs >= 1);

    /* Once the server runs again the store is back on its own. */
    kill(pid, SIGCONT);
    int want = c.ups + 1;
    int64_t end = tf_time_mono_ms() + 8000;
    int never = 0;
    while (c.ups < want && tf_time_mono_ms() < end)
        run_until(&c, &never, 100);
    assert_int_equal(c.ups, want);
    close_store(&c);
    stop_redis(pid);
}

int main(void)
{
    redis_url = getenv("TOUCHFLOW_REDIS_URL");
    if (!redis_url || !*redis_url) {
        fprintf(stderr, "TOUCHFLOW_REDIS_URL not set: skipping (start deploy/dev/services.sh up)\n");
        return 77;
    }
    tf_log_set_level(TF_LOG_ERROR);
    snprintf(prefix, sizeof(prefix), "it%d:%lld:", (int)getpid(), (long long)tf_time_now_ms());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(commit_then_load_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(older_epoch_is_fenced_and_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(epochs_increase, setup, teardown),
        cmocka_unit_test(down_then_up_then_lost),
        cmocka_unit_test(hung_redis_times_out),
    };
    return cmocka_run_group_tests(tests, NULL, stop_spawned);
}
