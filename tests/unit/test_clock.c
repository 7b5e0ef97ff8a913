/* Unit tests for the pipeline's clock decisions (pkg/pipeline/clock.c): how far
 * timers may fire on a partition, before a record and after a batch, on the stream
 * and the wall clock, and which tier cutoffs hold when. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pipeline/clock.h"

#define DAY INT64_C(86400000)
#define NONE INT64_MAX

static tf_clock_view stream(int64_t pending)
{
    tf_clock_view v = {1, 0, pending, 0};
    return v;
}

static tf_clock_view wall(int64_t now, int64_t pending, int caught_up)
{
    tf_clock_view v = {0, now, pending, caught_up};
    return v;
}

static void test_stream_scan_runs_on_what_is_applied(void **state)
{
    (void)state;
    tf_clock_view v = stream(NONE);
    assert_int_equal(tf_clock_scan_until(&v, 5000), 5000);
    /* Nothing applied yet: nothing may fire. */
    assert_int_equal(tf_clock_scan_until(&v, 0), 0);
}

static void test_stream_scan_stops_before_a_record_waiting(void **state)
{
    (void)state;
    /* A late record read but not applied holds the scan just before its time. */
    tf_clock_view v = stream(4000);
    assert_int_equal(tf_clock_scan_until(&v, 5000), 3999);
    /* One after what is applied does not move it. */
    v = stream(9000);
    assert_int_equal(tf_clock_scan_until(&v, 5000), 5000);
}

static void test_wall_scan_of_a_live_partition_is_wall_time(void **state)
{
    (void)state;
    tf_clock_view v = wall(100 * DAY, NONE, 1);
    assert_int_equal(tf_clock_scan_until(&v, 40 * DAY), 100 * DAY);
}

static void test_wall_scan_while_catching_up_is_the_event_time_reached(void **state)
{
    (void)state;
    /* Records left to read: the event time applied, not the wall clock. */
    tf_clock_view v = wall(100 * DAY, NONE, 0);
    assert_int_equal(tf_clock_scan_until(&v, 60 * DAY), 60 * DAY);
    /* Just restarted, nothing applied: nothing fires. */
    assert_int_equal(tf_clock_scan_until(&v, 0), 0);
    /* Caught up with records still in batches: not live yet. */
    v = wall(100 * DAY, 70 * DAY, 1);
    assert_int_equal(tf_clock_scan_until(&v, 80 * DAY), 70 * DAY - 1);
}

static void test_wall_scan_never_passes_the_wall_clock(void **state)
{
    (void)state;
    /* Event times ahead of the wall clock (within the allowed skew). */
    tf_clock_view v = wall(100 * DAY, NONE, 0);
    assert_int_equal(tf_clock_scan_until(&v, 101 * DAY), 100 * DAY);
}

static void test_batch_clock_bounds(void **state)
{
    (void)state;
    tf_clock_view v = stream(NONE);
    assert_int_equal(tf_clock_batch_until(&v, 7000), 7000);
    v = stream(6500);
    assert_int_equal(tf_clock_batch_until(&v, 7000), 6499);
    v = wall(100 * DAY, NONE, 1);
    assert_int_equal(tf_clock_batch_until(&v, 90 * DAY), 100 * DAY);
    v = wall(100 * DAY, NONE, 0);
    assert_int_equal(tf_clock_batch_until(&v, 90 * DAY), 90 * DAY);
    v = wall(100 * DAY, 95 * DAY, 0);
    assert_int_equal(tf_clock_batch_until(&v, 99 * DAY), 95 * DAY - 1);
}

static void test_record_stream_fires_to_the_stream_time_it_was_read_at(void **state)
{
    (void)state;
    tf_clock_view v = stream(NONE);
    /* In order: its own time. Late (2000 < 5000): where the partition stood. */
    assert_int_equal(tf_clock_record_until(&v, 5000, 5000, 0), 5000);
    assert_int_equal(tf_clock_record_until(&v, 5000, 2000, 0), 5000);
    /* A record waiting after it changes nothing for it. */
    v = stream(1000);
    assert_int_equal(tf_clock_record_until(&v, 5000, 2000, 0), 5000);
}

static void test_record_wall_fires_to_its_own_time_within_the_batch_clock(void **state)
{
    (void)state;
    tf_clock_view v = wall(100 * DAY, NONE, 0);
    assert_int_equal(tf_clock_record_until(&v, 0, 50 * DAY, 60 * DAY), 50 * DAY);
    assert_int_equal(tf_clock_record_until(&v, 0, 70 * DAY, 60 * DAY), 60 * DAY);
}

static void test_period_start(void **state)
{
    (void)state;
    assert_int_equal(tf_clock_period_start(0, DAY), 0);
    assert_int_equal(tf_clock_period_start(DAY - 1, DAY), 0);
    assert_int_equal(tf_clock_period_start(DAY, DAY), DAY);
    assert_int_equal(tf_clock_period_start(5 * DAY + 7, DAY), 5 * DAY);
    assert_int_equal(tf_clock_period_start(-1, DAY), -DAY);
    assert_int_equal(tf_clock_period_start(-DAY, DAY), -DAY);
}

static void test_opens_period(void **state)
{
    (void)state;
    /* A partition without cutoffs: its first record opens one. */
    assert_true(tf_clock_opens_period(5 * DAY + 3, 0, 0, 0, DAY));
    /* Within the current period: no. */
    assert_false(tf_clock_opens_period(5 * DAY + 3, 6 * DAY, 1, 5 * DAY, DAY));
    /* At the period's end exactly, and past it: yes. */
    assert_true(tf_clock_opens_period(6 * DAY, 6 * DAY, 1, 5 * DAY, DAY));
    assert_true(tf_clock_opens_period(9 * DAY, 6 * DAY, 1, 5 * DAY, DAY));
    /* A new owner (period end unknown) reading a late record of the period it
     * already holds cutoffs for: no. */
    assert_false(tf_clock_opens_period(5 * DAY + 9, 0, 1, 5 * DAY, DAY));
    /* A late record before the last period never opens one. */
    assert_false(tf_clock_opens_period(3 * DAY, 0, 1, 5 * DAY, DAY));
}

typedef struct {
    int64_t from;
    int value;
} cut;

static void test_in_force(void **state)
{
    (void)state;
    cut cuts[] = {{10, 1}, {20, 2}, {30, 3}};
    assert_int_equal(cuts[tf_clock_in_force(cuts, 3, sizeof(cut), 5)].value, 1); /* before the first */
    assert_int_equal(cuts[tf_clock_in_force(cuts, 3, sizeof(cut), 10)].value, 1);
    assert_int_equal(cuts[tf_clock_in_force(cuts, 3, sizeof(cut), 19)].value, 1);
    assert_int_equal(cuts[tf_clock_in_force(cuts, 3, sizeof(cut), 20)].value, 2);
    assert_int_equal(cuts[tf_clock_in_force(cuts, 3, sizeof(cut), 29)].value, 2);
    assert_int_equal(cuts[tf_clock_in_force(cuts, 3, sizeof(cut), 30)].value, 3);
    assert_int_equal(cuts[tf_clock_in_force(cuts, 3, sizeof(cut), INT64_MAX)].value, 3);
    assert_int_equal(cuts[tf_clock_in_force(cuts, 1, sizeof(cut), 99)].value, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_scan_runs_on_what_is_applied),
        cmocka_unit_test(test_stream_scan_stops_before_a_record_waiting),
        cmocka_unit_test(test_wall_scan_of_a_live_partition_is_wall_time),
        cmocka_unit_test(test_wall_scan_while_catching_up_is_the_event_time_reached),
        cmocka_unit_test(test_wall_scan_never_passes_the_wall_clock),
        cmocka_unit_test(test_batch_clock_bounds),
        cmocka_unit_test(test_record_stream_fires_to_the_stream_time_it_was_read_at),
        cmocka_unit_test(test_record_wall_fires_to_its_own_time_within_the_batch_clock),
        cmocka_unit_test(test_period_start),
        cmocka_unit_test(test_opens_period),
        cmocka_unit_test(test_in_force),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
