/* Unit tests for the per-customer decision after a load (pkg/pipeline/verdict.c):
 * dedup, replay by watermark, revoked partitions, due timers and the outbox. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pipeline/verdict.h"

#define NONE TF_VERDICT_NONE

static tf_verdict_record rec(int64_t offset, int64_t watermark, const char *dedup)
{
    tf_verdict_record r = {0, 1, offset, watermark, 0, dedup};
    return r;
}

static tf_verdict_record timer(void)
{
    tf_verdict_record r = {1, 1, -1, -1, 0, ""};
    return r;
}

static void decide(const tf_verdict_record *in, size_t n, int exists, tf_verdict *v, tf_verdict_plan *plan)
{
    tf_verdict_decide(in, n, exists, NULL, 0, v, NULL, plan);
}

static void test_new_records_are_applied_and_timers_fire_after(void **state)
{
    (void)state;
    tf_verdict_record in[] = {rec(10, -1, "a"), rec(11, -1, "b")};
    tf_verdict v[2];
    tf_verdict_plan plan;
    decide(in, 2, 0, v, &plan);
    assert_int_equal(v[0], TF_VERDICT_APPLY);
    assert_int_equal(v[1], TF_VERDICT_APPLY);
    assert_int_equal(plan.last_live, 1);
    assert_true(plan.changed);
    assert_true(plan.fire_after);
    assert_int_equal(plan.replay_at, NONE);
}

static void test_records_at_or_below_the_watermark_are_replays(void **state)
{
    (void)state;
    /* 10 was the last committed: 9 and 10 are replays, 11 is new. */
    tf_verdict_record in[] = {rec(9, 10, "a"), rec(10, 10, "b"), rec(11, 10, "c")};
    tf_verdict v[3];
    tf_verdict_plan plan;
    decide(in, 3, 1, v, &plan);
    assert_int_equal(v[0], TF_VERDICT_REPLAYED);
    assert_int_equal(v[1], TF_VERDICT_REPLAYED);
    assert_int_equal(v[2], TF_VERDICT_APPLY);
    assert_int_equal(plan.replay_at, 0);
    assert_int_equal(plan.last_live, 2);
}

static void test_a_group_of_replays_only_changes_nothing(void **state)
{
    (void)state;
    tf_verdict_record in[] = {rec(4, 7, "a"), rec(7, 7, "b")};
    tf_verdict v[2];
    tf_verdict_plan plan;
    int in_flight[2] = {0, 0}, resend[2] = {-1, -1};
    tf_verdict_decide(in, 2, 1, in_flight, 2, v, resend, &plan);
    assert_false(plan.changed);
    assert_false(plan.fire_after);
    assert_int_equal(plan.last_live, NONE);
    /* Its commit is in Redis but its derived events may not be delivered. */
    assert_int_equal(plan.replay_at, 0);
    assert_int_equal(resend[0], 1);
    assert_int_equal(resend[1], 1);
    assert_false(plan.outbox_held);
}

static void test_an_id_seen_in_redis_is_a_duplicate_that_moves_the_watermark(void **state)
{
    (void)state;
    tf_verdict_record in[] = {rec(20, 5, "a")};
    in[0].seen = 1;
    tf_verdict v[1];
    tf_verdict_plan plan;
    decide(in, 1, 1, v, &plan);
    assert_int_equal(v[0], TF_VERDICT_DUPLICATE);
    assert_true(plan.changed);
    assert_int_equal(plan.last_live, 0);
}

static void test_an_id_repeated_within_the_group_is_a_duplicate(void **state)
{
    (void)state;
    tf_verdict_record in[] = {rec(1, -1, "a"), rec(2, -1, "b"), rec(3, -1, "a"), rec(4, -1, "b")};
    tf_verdict v[4];
    tf_verdict_plan plan;
    decide(in, 4, 0, v, &plan);
    assert_int_equal(v[0], TF_VERDICT_APPLY);
    assert_int_equal(v[1], TF_VERDICT_APPLY);
    assert_int_equal(v[2], TF_VERDICT_DUPLICATE);
    assert_int_equal(v[3], TF_VERDICT_DUPLICATE);
}

static void test_a_replayed_record_does_not_make_a_later_one_a_duplicate(void **state)
{
    (void)state;
    /* Only applied ids count: the same id below the watermark was never applied
     * in this batch (it was when its commit ran, and Redis says so when it was). */
    tf_verdict_record in[] = {rec(3, 3, "a"), rec(4, 3, "a")};
    tf_verdict v[2];
    tf_verdict_plan plan;
    decide(in, 2, 1, v, &plan);
    assert_int_equal(v[0], TF_VERDICT_REPLAYED);
    assert_int_equal(v[1], TF_VERDICT_APPLY);
}

static void test_records_of_a_revoked_partition_are_dropped(void **state)
{
    (void)state;
    tf_verdict_record in[] = {rec(1, -1, "a"), rec(2, -1, "b")};
    in[0].owned = 0;
    in[1].owned = 0;
    tf_verdict v[2];
    tf_verdict_plan plan;
    decide(in, 2, 1, v, &plan);
    assert_int_equal(v[0], TF_VERDICT_DROP);
    assert_int_equal(v[1], TF_VERDICT_DROP);
    assert_false(plan.changed);
    assert_false(plan.fire_after);
}

static void test_a_dropped_record_leaves_the_others_applied(void **state)
{
    (void)state;
    /* A customer's records on two partitions, one revoked meanwhile. */
    tf_verdict_record in[] = {rec(1, -1, "a"), rec(8, -1, "b")};
    in[1].owned = 0;
    tf_verdict v[2];
    tf_verdict_plan plan;
    decide(in, 2, 0, v, &plan);
    assert_int_equal(v[0], TF_VERDICT_APPLY);
    assert_int_equal(v[1], TF_VERDICT_DROP);
    assert_int_equal(plan.last_live, 0);
}

static void test_a_timer_visit_of_a_known_customer_fires(void **state)
{
    (void)state;
    tf_verdict_record in[] = {timer()};
    tf_verdict v[1];
    tf_verdict_plan plan;
    decide(in, 1, 1, v, &plan);
    assert_int_equal(v[0], TF_VERDICT_TIMER);
    assert_true(plan.fire_after);
    assert_true(plan.changed);
    assert_int_equal(plan.last_live, 0);
}

static void test_a_timer_visit_of_a_customer_without_state_does_nothing(void **state)
{
    (void)state;
    /* The index pointed at a customer whose hash is gone. */
    tf_verdict_record in[] = {timer()};
    tf_verdict v[1];
    tf_verdict_plan plan;
    decide(in, 1, 0, v, &plan);
    assert_int_equal(v[0], TF_VERDICT_TIMER);
    assert_false(plan.fire_after);
    assert_false(plan.changed);
}

static void test_a_timer_visit_sends_the_outbox_again(void **state)
{
    (void)state;
    /* An earlier firing committed derived events never confirmed: a timer has no
     * offset that would hold them back, so the visit sends them with itself. */
    tf_verdict_record in[] = {timer()};
    tf_verdict v[1];
    tf_verdict_plan plan;
    int in_flight[1] = {0}, resend[1] = {0};
    tf_verdict_decide(in, 1, 1, in_flight, 1, v, resend, &plan);
    assert_int_equal(plan.replay_at, 0);
    assert_int_equal(resend[0], 1);
}

static void test_a_revoked_timer_visit_sends_nothing(void **state)
{
    (void)state;
    tf_verdict_record in[] = {timer()};
    in[0].owned = 0;
    tf_verdict v[1];
    tf_verdict_plan plan;
    int in_flight[1] = {0}, resend[1] = {0};
    tf_verdict_decide(in, 1, 1, in_flight, 1, v, resend, &plan);
    assert_int_equal(v[0], TF_VERDICT_DROP);
    assert_int_equal(plan.replay_at, NONE);
    assert_false(plan.fire_after);
}

static void test_new_records_alone_send_no_outbox(void **state)
{
    (void)state;
    /* The outbox of a customer whose records are all new belongs to deliveries
     * still running or to a replay that will come with its own records. */
    tf_verdict_record in[] = {rec(30, 20, "a")};
    tf_verdict v[1];
    tf_verdict_plan plan;
    int in_flight[1] = {0}, resend[1] = {7};
    tf_verdict_decide(in, 1, 1, in_flight, 1, v, resend, &plan);
    assert_int_equal(plan.replay_at, NONE);
    assert_int_equal(resend[0], 7); /* untouched */
}

static void test_outbox_entries_still_in_flight_are_held(void **state)
{
    (void)state;
    tf_verdict_record in[] = {rec(5, 9, "a"), rec(10, 9, "b")};
    tf_verdict v[2];
    tf_verdict_plan plan;
    int in_flight[3] = {1, 0, 1}, resend[3];
    tf_verdict_decide(in, 2, 1, in_flight, 3, v, resend, &plan);
    assert_int_equal(plan.replay_at, 0);
    assert_int_equal(resend[0], 0);
    assert_int_equal(resend[1], 1);
    assert_int_equal(resend[2], 0);
    assert_true(plan.outbox_held);
}

static void test_the_replays_wait_with_the_first_replayed_record(void **state)
{
    (void)state;
    /* A timer before the replayed record: the re-sends go with the record, which
     * holds its offset until they are delivered. */
    tf_verdict_record in[] = {timer(), rec(2, 4, "a"), rec(3, 4, "b"), rec(6, 4, "c")};
    tf_verdict v[4];
    tf_verdict_plan plan;
    decide(in, 4, 1, v, &plan);
    assert_int_equal(plan.replay_at, 1);
    assert_int_equal(plan.last_live, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_records_are_applied_and_timers_fire_after),
        cmocka_unit_test(test_records_at_or_below_the_watermark_are_replays),
        cmocka_unit_test(test_a_group_of_replays_only_changes_nothing),
        cmocka_unit_test(test_an_id_seen_in_redis_is_a_duplicate_that_moves_the_watermark),
        cmocka_unit_test(test_an_id_repeated_within_the_group_is_a_duplicate),
        cmocka_unit_test(test_a_replayed_record_does_not_make_a_later_one_a_duplicate),
        cmocka_unit_test(test_records_of_a_revoked_partition_are_dropped),
        cmocka_unit_test(test_a_dropped_record_leaves_the_others_applied),
        cmocka_unit_test(test_a_timer_visit_of_a_known_customer_fires),
        cmocka_unit_test(test_a_timer_visit_of_a_customer_without_state_does_nothing),
        cmocka_unit_test(test_a_timer_visit_sends_the_outbox_again),
        cmocka_unit_test(test_a_revoked_timer_visit_sends_nothing),
        cmocka_unit_test(test_new_records_alone_send_no_outbox),
        cmocka_unit_test(test_outbox_entries_still_in_flight_are_held),
        cmocka_unit_test(test_the_replays_wait_with_the_first_replayed_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
