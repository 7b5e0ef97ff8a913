/* Unit tests for the produce-to-commit latency buckets (pkg/pipeline/latency.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "pipeline/latency.h"

/* Up to the fine limit, a bucket per millisecond: 14.2 ms reads as 15. */
static void fine_buckets_are_one_ms(void **state)
{
    (void)state;
    assert_int_equal(tf_latency_bucket(-5), 0);
    assert_int_equal(tf_latency_bucket(0), 0);
    assert_int_equal(tf_latency_bucket(14), 14);
    assert_true(tf_latency_bucket_upper(tf_latency_bucket(14)) == 15.0);
    assert_int_equal(tf_latency_bucket(19), 19);
    assert_true(tf_latency_bucket_upper(tf_latency_bucket(19)) == 20.0);
    assert_int_equal(tf_latency_bucket(TF_LATENCY_FINE_MS - 1), TF_LATENCY_FINE_MS - 1);
}

/* Past it, each bucket is a quarter wider, and every latency lies below the upper
 * bound of its bucket and at or above the one before. */
static void coarse_buckets_bound_their_latencies(void **state)
{
    (void)state;
    assert_int_equal(tf_latency_bucket(TF_LATENCY_FINE_MS), TF_LATENCY_FINE_MS);
    assert_true(tf_latency_bucket_upper(TF_LATENCY_FINE_MS) == TF_LATENCY_FINE_MS * 1.25);
    for (int64_t ms = 0; ms < 200000; ms += ms < 1000 ? 1 : 97) {
        int b = tf_latency_bucket(ms);
        assert_true(b >= 0 && b < TF_LATENCY_BUCKETS);
        if (b == TF_LATENCY_BUCKETS - 1)
            continue;
        assert_true((double)ms < tf_latency_bucket_upper(b));
        if (b > 0)
            assert_true((double)ms >= tf_latency_bucket_upper(b - 1));
    }
}

/* The last bucket takes everything beyond: a clock far off cannot index past it. */
static void the_last_bucket_takes_the_rest(void **state)
{
    (void)state;
    assert_int_equal(tf_latency_bucket(INT64_MAX), TF_LATENCY_BUCKETS - 1);
    assert_true(tf_latency_bucket_upper(TF_LATENCY_BUCKETS - 2) > 3600.0 * 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fine_buckets_are_one_ms),
        cmocka_unit_test(coarse_buckets_bound_their_latencies),
        cmocka_unit_test(the_last_bucket_takes_the_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
