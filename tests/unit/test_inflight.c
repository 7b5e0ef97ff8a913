/* Unit tests for the in-flight set (pkg/pipeline/inflight.c): which derived events
 * a visit must not send again, from hand-off to Kafka until the outbox ack is
 * answered, acks settling in the order they were sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pipeline/inflight.h"

static int setup(void **state)
{
    static tf_inflight_t f;
    memset(&f, 0, sizeof(f));
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    tf_inflight_free(*state);
    return 0;
}

static void id_of(char *out, int i)
{
    snprintf(out, TF_ID_LEN, "%032x", (unsigned)i * 2654435761u);
}

static void test_held_until_its_ack_is_answered(void **state)
{
    tf_inflight_t *f = *state;
    assert_false(tf_inflight_holds(f, "a"));
    assert_int_equal(tf_inflight_add(f, "a"), TF_OK);
    assert_true(tf_inflight_holds(f, "a"));
    tf_inflight_delivered(f, "a");
    assert_true(tf_inflight_holds(f, "a")); /* delivered, the entry not yet removed */
    tf_inflight_ack_sent(f);
    assert_true(tf_inflight_holds(f, "a")); /* a load sent before the ack saw it */
    tf_inflight_ack_answered(f);
    assert_false(tf_inflight_holds(f, "a"));
    assert_int_equal(tf_inflight_count(f), 0);
}

static void test_acks_settle_in_send_order(void **state)
{
    tf_inflight_t *f = *state;
    tf_inflight_add(f, "a1");
    tf_inflight_add(f, "a2");
    tf_inflight_add(f, "b1");
    tf_inflight_add(f, "c1");
    tf_inflight_delivered(f, "a1");
    tf_inflight_delivered(f, "a2");
    tf_inflight_ack_sent(f); /* ack 1: a1, a2 */
    tf_inflight_delivered(f, "b1");
    tf_inflight_ack_sent(f); /* ack 2: b1 */
    tf_inflight_ack_answered(f);
    assert_false(tf_inflight_holds(f, "a1"));
    assert_false(tf_inflight_holds(f, "a2"));
    assert_true(tf_inflight_holds(f, "b1"));
    assert_true(tf_inflight_holds(f, "c1")); /* still being delivered */
    tf_inflight_ack_answered(f);
    assert_false(tf_inflight_holds(f, "b1"));
    /* More answers than acks (teardown) settle nothing not yet acked. */
    tf_inflight_ack_answered(f);
    assert_true(tf_inflight_holds(f, "c1"));
    tf_inflight_delivered(f, "c1");
    tf_inflight_ack_sent(f);
    assert_true(tf_inflight_holds(f, "c1"));
    tf_inflight_ack_answered(f);
    assert_false(tf_inflight_holds(f, "c1"));
}

static void test_unsent_ack_releases_at_once(void **state)
{
    tf_inflight_t *f = *state;
    tf_inflight_add(f, "x");
    tf_inflight_delivered(f, "x");
    tf_inflight_remove(f, "x"); /* Redis down: the entry stays, a visit re-sends it */
    assert_false(tf_inflight_holds(f, "x"));
    tf_inflight_remove(f, "never-added");
    assert_int_equal(tf_inflight_count(f), 0);
}

static void test_sent_again_is_held_again(void **state)
{
    tf_inflight_t *f = *state;
    tf_inflight_add(f, "r");
    tf_inflight_delivered(f, "r");
    /* A replay of the same id before its ack went out: in flight again. */
    tf_inflight_add(f, "r");
    tf_inflight_ack_sent(f);
    tf_inflight_ack_answered(f);
    assert_true(tf_inflight_holds(f, "r"));
    assert_int_equal(tf_inflight_count(f), 1);
}

static void test_overlong_id_refused(void **state)
{
    tf_inflight_t *f = *state;
    char id[TF_ID_LEN + 1];
    memset(id, 'z', TF_ID_LEN);
    id[TF_ID_LEN] = '\0';
    assert_int_equal(tf_inflight_add(f, id), TF_EINVAL);
    assert_false(tf_inflight_holds(f, id));
}

/* Growth, sweeping and backward-shift deletion keep every probe run whole. */
static void test_many_ids_remove_and_sweep(void **state)
{
    tf_inflight_t *f = *state;
    char id[TF_ID_LEN];
    enum { N = 5000 };
    for (int i = 0; i < N; i++) {
        id_of(id, i);
        assert_int_equal(tf_inflight_add(f, id), TF_OK);
    }
    assert_int_equal(tf_inflight_count(f), N);
    for (int i = 1; i < N; i += 2) {
        id_of(id, i);
        tf_inflight_remove(f, id);
    }
    for (int i = 0; i < N; i++) {
        id_of(id, i);
        assert_int_equal(tf_inflight_holds(f, id), i % 2 == 0);
    }
    /* Settle every one; new ids then reuse the swept room instead of growing. */
    for (int i = 0; i < N; i += 2) {
        id_of(id, i);
        tf_inflight_delivered(f, id);
    }
    tf_inflight_ack_sent(f);
    tf_inflight_ack_answered(f);
    /* 2500 settled plus M new would fill the table past half: the sweep makes
     * room without doubling it. */
    size_t cap = f->cap;
    int M = (int)(cap * 3 / 8) - 100;
    assert_true((size_t)(N / 2 + M) * 2 > cap);
    for (int i = N; i < N + M; i++) {
        id_of(id, i);
        assert_int_equal(tf_inflight_add(f, id), TF_OK);
    }
    assert_int_equal(f->cap, cap);
    assert_int_equal(tf_inflight_count(f), M);
    for (int i = 0; i < N + M; i++) {
        id_of(id, i);
        assert_int_equal(tf_inflight_holds(f, id), i >= N);
    }
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_held_until_its_ack_is_answered),
        T(test_acks_settle_in_send_order),
        T(test_unsent_ack_releases_at_once),
        T(test_sent_again_is_held_again),
        T(test_overlong_id_refused),
        T(test_many_ids_remove_and_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
