/* Unit tests for the offset tracker (pkg/bus/offsets.c): out-of-order completions
 * turn into the contiguous low-water mark per partition slot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bus/bus.h"

static int setup(void **state)
{
    *state = tf_offsets_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    tf_offsets_destroy(*state);
    return 0;
}

static int64_t track(tf_offsets_t *t, int tp, int64_t offset)
{
    int64_t ticket = tf_offsets_track(t, tp, offset);
    assert_true(ticket >= 0);
    return ticket;
}

static void test_contiguous_low_water_mark(void **state)
{
    tf_offsets_t *t = *state;
    int64_t k10 = track(t, 0, 10), k11 = track(t, 0, 11), k12 = track(t, 0, 12);
    assert_int_equal(tf_offsets_inflight(t, 0), 3);
    assert_true(tf_offsets_take_committable(t, 0) == -1); /* nothing done yet */

    /* 11 done while 10 is not: nothing may be committed. */
    assert_int_equal(tf_offsets_done(t, 0, k11), TF_OK);
    assert_true(tf_offsets_take_committable(t, 0) == -1);
    assert_int_equal(tf_offsets_inflight(t, 0), 3);

    /* 10 done: 10 and 11 are a done prefix, commit 12 (the next to read). */
    assert_int_equal(tf_offsets_done(t, 0, k10), TF_OK);
    assert_int_equal(tf_offsets_take_committable(t, 0), 12);
    assert_true(tf_offsets_take_committable(t, 0) == -1); /* taken: unchanged since */
    assert_int_equal(tf_offsets_inflight(t, 0), 1);

    assert_int_equal(tf_offsets_done(t, 0, k12), TF_OK);
    assert_int_equal(tf_offsets_take_committable(t, 0), 13);
    assert_true(tf_offsets_take_committable(t, 0) == -1);
    assert_int_equal(tf_offsets_inflight(t, 0), 0);
}

static void test_committable_accumulates_until_taken(void **state)
{
    tf_offsets_t *t = *state;
    int64_t a = track(t, 0, 100), b = track(t, 0, 101);
    assert_int_equal(tf_offsets_done(t, 0, a), TF_OK);
    assert_int_equal(tf_offsets_done(t, 0, b), TF_OK);
    /* Two advances between takes: the latest wins. */
    assert_int_equal(tf_offsets_take_committable(t, 0), 102);
    assert_true(tf_offsets_take_committable(t, 0) == -1);
}

static void test_done_twice_and_unknown_ticket(void **state)
{
    tf_offsets_t *t = *state;
    int64_t a = track(t, 0, 5), b = track(t, 0, 6);
    assert_int_equal(tf_offsets_done(t, 0, b), TF_OK);
    assert_int_equal(tf_offsets_done(t, 0, b), TF_OK); /* idempotent while in flight */
    assert_true(tf_offsets_take_committable(t, 0) == -1);
    assert_int_equal(tf_offsets_done(t, 0, a), TF_OK);
    assert_int_equal(tf_offsets_take_committable(t, 0), 7);
    /* Both tickets have left the window now. */
    assert_int_equal(tf_offsets_done(t, 0, a), TF_ENOTFOUND);
    /* A ticket never handed out. */
    assert_int_equal(tf_offsets_done(t, 0, b + 100), TF_ENOTFOUND);
    assert_true(tf_offsets_take_committable(t, 0) == -1);
}

static void test_gaps_in_offsets(void **state)
{
    tf_offsets_t *t = *state;
    /* Compaction or transaction markers leave holes; only tracked offsets count. */
    int64_t k10 = track(t, 0, 10), k15 = track(t, 0, 15), k16 = track(t, 0, 16);
    assert_int_equal(tf_offsets_done(t, 0, k15), TF_OK);
    assert_true(tf_offsets_take_committable(t, 0) == -1);
    assert_int_equal(tf_offsets_done(t, 0, k10), TF_OK);
    assert_int_equal(tf_offsets_take_committable(t, 0), 16);
    assert_int_equal(tf_offsets_done(t, 0, k16), TF_OK);
    assert_int_equal(tf_offsets_take_committable(t, 0), 17);
}

static void test_non_increasing_offset_rejected(void **state)
{
    tf_offsets_t *t = *state;
    int64_t k = track(t, 0, 20);
    assert_true(tf_offsets_track(t, 0, 20) == TF_EINVAL); /* same */
    assert_true(tf_offsets_track(t, 0, 19) == TF_EINVAL); /* lower */
    assert_int_equal(tf_offsets_inflight(t, 0), 1);
    /* Still rejected once 20 is done and gone from the window. */
    assert_int_equal(tf_offsets_done(t, 0, k), TF_OK);
    assert_true(tf_offsets_track(t, 0, 20) == TF_EINVAL);
    assert_int_equal(tf_offsets_inflight(t, 0), 0);
    int64_t k21 = track(t, 0, 21);
    assert_true(k21 > k);
    assert_int_equal(tf_offsets_take_committable(t, 0), 21);
    assert_int_equal(tf_offsets_done(t, 0, k21), TF_OK);
    assert_int_equal(tf_offsets_take_committable(t, 0), 22);
}

static void test_reset(void **state)
{
    tf_offsets_t *t = *state;
    int64_t a = track(t, 0, 10), b = track(t, 0, 11);
    assert_int_equal(tf_offsets_done(t, 0, b), TF_OK);
    tf_offsets_reset(t, 0);
    assert_int_equal(tf_offsets_inflight(t, 0), 0);
    assert_true(tf_offsets_take_committable(t, 0) == -1);

    /* Tickets from before the reset are stale, even once new ones exist. */
    assert_int_equal(tf_offsets_done(t, 0, a), TF_ENOTFOUND);
    /* After a reassignment the partition may start anywhere, even lower. */
    int64_t c = track(t, 0, 5);
    assert_true(c != a && c != b);
    assert_int_equal(tf_offsets_done(t, 0, a), TF_ENOTFOUND);
    assert_int_equal(tf_offsets_done(t, 0, b), TF_ENOTFOUND);
    assert_int_equal(tf_offsets_inflight(t, 0), 1);
    assert_true(tf_offsets_take_committable(t, 0) == -1);
    assert_int_equal(tf_offsets_done(t, 0, c), TF_OK);
    assert_int_equal(tf_offsets_take_committable(t, 0), 6);
}

static void test_reset_drops_untaken_committable(void **state)
{
    tf_offsets_t *t = *state;
    int64_t a = track(t, 2, 10);
    assert_int_equal(tf_offsets_done(t, 2, a), TF_OK);
    tf_offsets_reset(t, 2); /* revoked before the commit was taken */
    assert_true(tf_offsets_take_committable(t, 2) == -1);
}

static void test_ring_growth_with_wrap(void **state)
{
    tf_offsets_t *t = *state;
    enum { FIRST = 1000, DONE_FIRST = 600, TOTAL = 3000 };
    static int64_t tickets[TOTAL];
    static uint8_t done[TOTAL];
    const int64_t base = 1000000;
    memset(done, 0, sizeof done);

    /* Fill part of the ring and complete a prefix so the head sits mid-ring. */
    for (int i = 0; i < FIRST; i++)
        tickets[i] = track(t, 0, base + i);
    for (int i = 0; i < DONE_FIRST; i++) {
        assert_int_equal(tf_offsets_done(t, 0, tickets[i]), TF_OK);
        done[i] = 1;
    }
    assert_int_equal(tf_offsets_take_committable(t, 0), base + DONE_FIRST);
    assert_int_equal(tf_offsets_inflight(t, 0), FIRST - DONE_FIRST);

    /* Interleave tracking with completions, some out of order (a later record) and
     * some of the oldest pending one. Tracking outpaces completion, so the tail
     * wraps past the ring's end and the ring grows with the head mid-ring. */
    int oldest = DONE_FIRST; /* first not-done index */
    for (int i = FIRST; i < TOTAL; i++) {
        tickets[i] = track(t, 0, base + i);
        if (i % 3 == 0) {
            assert_int_equal(tf_offsets_done(t, 0, tickets[i]), TF_OK);
            done[i] = 1;
        }
        if (i % 6 == 0) {
            assert_int_equal(tf_offsets_done(t, 0, tickets[oldest]), TF_OK);
            done[oldest] = 1;
            while (done[oldest])
                oldest++;
            /* The mark is exactly the first offset not done. */
            assert_int_equal(tf_offsets_take_committable(t, 0), base + oldest);
        }
        assert_int_equal(tf_offsets_inflight(t, 0), (size_t)(i + 1 - oldest));
    }
    assert_true(tf_offsets_inflight(t, 0) > 1024);

    /* Complete the rest newest first: nothing moves until the oldest is done. */
    for (int i = TOTAL - 1; i > oldest; i--)
        assert_int_equal(tf_offsets_done(t, 0, tickets[i]), TF_OK);
    assert_true(tf_offsets_take_committable(t, 0) == -1);
    assert_int_equal(tf_offsets_done(t, 0, tickets[oldest]), TF_OK);
    assert_int_equal(tf_offsets_take_committable(t, 0), base + TOTAL);
    assert_int_equal(tf_offsets_inflight(t, 0), 0);

    /* Every ticket is now out of the window. */
    assert_int_equal(tf_offsets_done(t, 0, tickets[0]), TF_ENOTFOUND);
    assert_int_equal(tf_offsets_done(t, 0, tickets[TOTAL - 1]), TF_ENOTFOUND);
}

/* Exactly the wrap: head at 1000 of a 1024 ring, 1024 in flight, then one more. */
static void test_ring_growth_exact_boundary(void **state)
{
    tf_offsets_t *t = *state;
    static int64_t tickets[2100];
    int n = 0;
    for (; n < 1000; n++)
        tickets[n] = track(t, 0, n);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(tf_offsets_done(t, 0, tickets[i]), TF_OK);
    assert_int_equal(tf_offsets_take_committable(t, 0), 1000);
    /* 1024 in flight from ring index 1000: entries 1000..1023 then 0..999. */
    for (; n < 2024; n++)
        tickets[n] = track(t, 0, n);
    assert_int_equal(tf_offsets_inflight(t, 0), 1024);
    /* The 1025th forces growth while wrapped. */
    tickets[n] = track(t, 0, n);
    n++;
    assert_int_equal(tf_offsets_inflight(t, 0), 1025);
    /* Complete in order and check the mark after every step: each entry kept its offset. */
    for (int i = 1000; i < n; i++) {
        assert_int_equal(tf_offsets_done(t, 0, tickets[i]), TF_OK);
        assert_int_equal(tf_offsets_take_committable(t, 0), i + 1);
    }
    assert_int_equal(tf_offsets_inflight(t, 0), 0);
}

static void test_independent_slots(void **state)
{
    tf_offsets_t *t = *state;
    int64_t a0 = track(t, 0, 100);
    int64_t a3 = track(t, 3, 7);
    int64_t b3 = track(t, 3, 8);
    /* Slot 0 can track offsets that slot 3 already passed. */
    int64_t b0 = track(t, 0, 101);
    assert_int_equal(tf_offsets_inflight(t, 0), 2);
    assert_int_equal(tf_offsets_inflight(t, 3), 2);
    assert_int_equal(tf_offsets_inflight(t, 1), 0); /* never used */
    assert_int_equal(tf_offsets_inflight(t, 99), 0);

    assert_int_equal(tf_offsets_done(t, 3, a3), TF_OK);
    assert_int_equal(tf_offsets_take_committable(t, 3), 8);
    assert_true(tf_offsets_take_committable(t, 0) == -1);

    assert_int_equal(tf_offsets_done(t, 0, a0), TF_OK);
    assert_int_equal(tf_offsets_done(t, 0, b0), TF_OK);
    assert_int_equal(tf_offsets_take_committable(t, 0), 102);
    assert_true(tf_offsets_take_committable(t, 3) == -1);

    /* Resetting one slot leaves the other alone. */
    tf_offsets_reset(t, 0);
    assert_int_equal(tf_offsets_inflight(t, 3), 1);
    assert_int_equal(tf_offsets_done(t, 3, b3), TF_OK);
    assert_int_equal(tf_offsets_take_committable(t, 3), 9);
    assert_true(tf_offsets_take_committable(t, 1) == -1);
    assert_true(tf_offsets_take_committable(t, 99) == -1);
}

static void test_bad_slots(void **state)
{
    tf_offsets_t *t = *state;
    assert_int_equal(tf_offsets_done(t, 5, 0), TF_EINVAL); /* slot never used */
    assert_int_equal(tf_offsets_done(t, -1, 0), TF_EINVAL);
    assert_true(tf_offsets_take_committable(t, -1) == -1);
    assert_int_equal(tf_offsets_inflight(t, -1), 0);
    tf_offsets_reset(t, -1); /* a no-op, must not crash */
    tf_offsets_destroy(NULL);
}

/* A negative slot is a bad argument, not an allocation failure. */
static void test_track_negative_slot(void **state)
{
    tf_offsets_t *t = *state;
    assert_true(tf_offsets_track(t, -1, 10) == TF_EINVAL);
}

/* The low-water mark is the first offset still in flight. */
static void test_low_water(void **state)
{
    tf_offsets_t *t = *state;
    assert_true(tf_offsets_low_water(t, 0) == -1);
    int64_t a = track(t, 0, 10), b = track(t, 0, 11);
    track(t, 0, 14);
    assert_true(tf_offsets_low_water(t, 0) == 10);
    assert_int_equal(tf_offsets_done(t, 0, b), TF_OK);
    assert_true(tf_offsets_low_water(t, 0) == 10);
    assert_int_equal(tf_offsets_done(t, 0, a), TF_OK);
    assert_true(tf_offsets_low_water(t, 0) == 14);
    assert_true(tf_offsets_low_water(t, 5) == -1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_contiguous_low_water_mark),
        T(test_committable_accumulates_until_taken),
        T(test_done_twice_and_unknown_ticket),
        T(test_gaps_in_offsets),
        T(test_non_increasing_offset_rejected),
        T(test_reset),
        T(test_reset_drops_untaken_committable),
        T(test_ring_growth_with_wrap),
        T(test_ring_growth_exact_boundary),
        T(test_independent_slots),
        T(test_bad_slots),
        T(test_track_negative_slot),
        T(test_low_water),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
