/* Unit tests for pkg/lifecycle: care reminders (follow-ups, birthdays, festivals,
 * key-customer check-ins, anniversaries), complaints and their SLAs, referrals, with
 * the exact derived events asserted in order. */
#include "lifecycle_harness.h"

/* ---- care ---- */

/* The follow-up is about the latest order; a late (older) order does not move it. */
static void test_care_followup(void **state)
{
    (void)state;
    harness *h = h_new();
    buy(h, T0, 1000);
    buy(h, T0 + DAY, 1000);
    assert_int_equal(h->c.due[TF_TIMER_FOLLOWUP], T0 + 4 * DAY);
    tf_event_t late = ev_buy(h, T0 + 12 * HOUR, 1000, NO_MARGIN, "CNY");
    step(h, &late);
    assert_int_equal(h->c.due[TF_TIMER_FOLLOWUP], T0 + 4 * DAY);
    run(h, T0 + 4 * DAY);
    run(h, T0 + 4 * DAY);
    run(h, T0 + 20 * DAY);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    const tf_derived_t *d = CARE(h, "post_purchase", "order:o-e-2", T0 + 4 * DAY);
    assert_string_equal(fig_s(d, "stage"), "growth");
    assert_string_equal(fig_s(d, "tier"), "none");
    assert_null(fig(d, "date"));
    NOTHING(h);
    assert_int_equal(h->c.due[TF_TIMER_FOLLOWUP], 0);
    assert_int_equal(h->c.care_actions, 1);
    teardown_h(h);
}

/* Birthday N days before, 29 February on the 28th in other years; each year once,
 * whatever is advanced or applied twice. */
static void test_care_birthday(void **state)
{
    (void)state;
    harness *h = h_new();
    profile(h, T0, 2, 29, 0, 0, 0);
    CARE(h, "welcome", "welcome", T0);
    NOTHING(h);
    assert_int_equal(h->c.due[TF_TIMER_BIRTHDAY], at(2026, 2, 25, 0, 0));
    run(h, at(2026, 2, 25, 0, 0) - 1);
    NOTHING(h);
    run(h, at(2026, 2, 25, 0, 0));
    const tf_derived_t *d = CARE(h, "birthday", "birthday:2026", at(2026, 2, 25, 0, 0));
    assert_string_equal(fig_s(d, "date"), "2026-02-28");
    assert_string_equal(fig_s(d, "stage"), "prospect");
    run(h, at(2026, 2, 25, 0, 0));
    NOTHING(h);
    profile(h, at(2026, 2, 26, 0, 0), 2, 29, 0, 0, 0);
    NOTHING(h);
    assert_int_equal(h->c.due[TF_TIMER_BIRTHDAY], at(2027, 2, 25, 0, 0));
    run(h, at(2028, 3, 1, 0, 0));
    d = CARE(h, "birthday", "birthday:2027", at(2027, 2, 25, 0, 0));
    assert_string_equal(fig_s(d, "date"), "2027-02-28");
    d = CARE(h, "birthday", "birthday:2028", at(2028, 2, 26, 0, 0));
    assert_string_equal(fig_s(d, "date"), "2028-02-29");
    NOTHING(h);
    profile(h, at(2028, 3, 1, 0, 0), 2, 29, 0, 0, 0);
    run(h, at(2028, 3, 2, 0, 0));
    NOTHING(h);
    assert_int_equal(h->c.due[TF_TIMER_BIRTHDAY], at(2029, 2, 25, 0, 0));
    assert_int_equal(h->c.care_actions, 4);
    teardown_h(h);
}

/* Festivals of the calendar for buyers who have not churned, from the first purchase on. */
static void test_care_festivals(void **state)
{
    (void)state;
    harness *h = h_new();
    h_calendar(h);
    /* Stays a growing customer all year: silence neither declines nor warns. */
    h->r.inactivity_min_days = 1000;
    h->r.churn_after_days = 3000;
    buy(h, T0, 1000);
    run(h, at(2027, 1, 1, 0, 0));
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    CARE(h, "post_purchase", "order:o-e-1", T0 + 3 * DAY);
    const struct {
        const char *occasion, *date;
        int64_t due;
    } want[] = {
        {"spring_festival:2026", "2026-02-17", at(2026, 2, 14, 0, 0)},
        {"dragon_boat:2026", "2026-06-19", at(2026, 6, 16, 0, 0)},
        {"mid_autumn:2026", "2026-09-25", at(2026, 9, 22, 0, 0)},
        {"national_day:2026", "2026-10-01", at(2026, 9, 28, 0, 0)},
        {"new_year:2027", "2027-01-01", at(2026, 12, 29, 0, 0)},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const tf_derived_t *d = CARE(h, "festival", want[i].occasion, want[i].due);
        assert_string_equal(fig_s(d, "date"), want[i].date);
        assert_string_equal(fig_s(d, "stage"), "growth");
    }
    NOTHING(h);
    assert_int_equal(h->c.due[TF_TIMER_FESTIVAL], at(2027, 2, 3, 0, 0));
    teardown_h(h);

    h = h_new(); /* a prospect */
    h_calendar(h);
    touch(h, TF_KIND_WEB_VISIT, T0);
    assert_int_equal(h->c.due[TF_TIMER_FESTIVAL], 0);
    run(h, T0 + 365 * DAY);
    CARE(h, "welcome", "welcome", T0);
    NOTHING(h);
    teardown_h(h);

    h = h_new(); /* churned */
    h_calendar(h);
    buy(h, T0, 1000);
    touch(h, TF_KIND_CONTRACT_END, T0 + DAY);
    assert_int_equal(h->c.due[TF_TIMER_FESTIVAL], 0);
    run(h, T0 + 365 * DAY);
    assert_int_equal(count(h, TF_DERIVED_CARE_REMINDER, "festival"), 0);
    teardown_h(h);

    h = h_new(); /* the end of the calendar */
    h_calendar(h);
    buy(h, at(2028, 9, 1, 0, 0), 1000);
    assert_int_equal(h->c.due[TF_TIMER_FESTIVAL], at(2028, 9, 28, 0, 0));
    run(h, at(2028, 9, 30, 0, 0));
    assert_int_equal(count(h, TF_DERIVED_CARE_REMINDER, "festival"), 2);
    assert_int_equal(h->c.due[TF_TIMER_FESTIVAL], 0);
    teardown_h(h);
}

/* A key customer without contact for checkin_days is checked in on, again every
 * checkin_days, counted from the latest touchpoint. */
static void test_care_checkin(void **state)
{
    (void)state;
    harness *h = h_new();
    h->r.checkin_days = 20;
    h_population(h, 1000, 10000, 9000, 5000, 4500);
    buy_m(h, T0, 100000, 50000);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    const tf_derived_t *d = NEXT(h, TF_DERIVED_TIER_CHANGED, "value_rank", T0);
    assert_string_equal(fig_s(d, "to"), "key");
    NOTHING(h);
    assert_int_equal(h->c.due[TF_TIMER_CHECKIN], T0 + 20 * DAY);
    run(h, T0 + 44 * DAY);
    d = CARE(h, "post_purchase", "order:o-e-1", T0 + 3 * DAY);
    assert_string_equal(fig_s(d, "tier"), "key");
    d = CARE(h, "key_checkin", "checkin:2026-01-26", T0 + 20 * DAY);
    assert_int_equal(fig_i(d, "days_without_contact"), 20);
    assert_string_equal(fig_s(d, "tier"), "key");
    STAGE(h, "inactivity", T0 + 30 * DAY, "growth", "decline", "timer");
    SILENT_WARNING(h, T0 + 30 * DAY);
    d = CARE(h, "key_checkin", "checkin:2026-02-15", T0 + 40 * DAY);
    assert_int_equal(fig_i(d, "days_without_contact"), 40);
    NOTHING(h);
    touch(h, TF_KIND_WEB_VISIT, T0 + 45 * DAY);
    run(h, T0 + 65 * DAY);
    d = CARE(h, "key_checkin", "checkin:2026-03-12", T0 + 65 * DAY);
    assert_int_equal(fig_i(d, "days_without_contact"), 20);
    NOTHING(h);
    assert_int_equal(h->c.tier, TF_TIER_KEY);

    /* Churned (still key: no review runs for churned customers): no check-ins;
     * won back, they start again from the purchase. */
    touch(h, TF_KIND_CONTRACT_END, T0 + 66 * DAY);
    STAGE(h, "explicit_exit", T0 + 66 * DAY, "decline", "churned", "contract_end");
    NEXT(h, TF_DERIVED_WINBACK_OPPORTUNITY, "explicit_exit", T0 + 66 * DAY);
    assert_int_equal(h->c.due[TF_TIMER_CHECKIN], 0);
    run(h, T0 + 200 * DAY);
    NOTHING(h);
    buy_m(h, T0 + 200 * DAY, 1000, 500);
    STAGE(h, "winback_purchase", T0 + 200 * DAY, "churned", "growth", "purchase");
    NEXT(h, TF_DERIVED_WINBACK_SUCCEEDED, "winback_purchase", T0 + 200 * DAY);
    /* The warning of the decline stood through the churn: the purchase retracts it. */
    d = NEXT(h, TF_DERIVED_CHURN_CLEARED, "purchase", T0 + 200 * DAY);
    assert_int_equal(fig_i(d, "warned_days"), 170);
    NOTHING(h);
    assert_int_equal(h->c.due[TF_TIMER_CHECKIN], T0 + 220 * DAY);
    teardown_h(h);

    h = h_new(); /* not key: no check-in */
    buy(h, T0, 100000);
    assert_int_equal(h->c.due[TF_TIMER_CHECKIN], 0);
    teardown_h(h);
}

/* The first purchase's anniversary, N days before, from the first year on. */
static void test_care_anniversary(void **state)
{
    (void)state;
    harness *h = h_new();
    h->r.inactivity_min_days = 1000;
    h->r.churn_after_days = 3000;
    buy(h, T0, 1000);
    run(h, at(2027, 1, 3, 0, 0) - 1);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    CARE(h, "post_purchase", "order:o-e-1", T0 + 3 * DAY);
    NOTHING(h);
    run(h, at(2027, 1, 3, 0, 0));
    const tf_derived_t *d = CARE(h, "anniversary", "first_purchase:1", at(2027, 1, 3, 0, 0));
    assert_string_equal(fig_s(d, "date"), "2027-01-06");
    run(h, at(2027, 1, 3, 0, 0));
    NOTHING(h);
    run(h, at(2028, 1, 3, 0, 0));
    d = CARE(h, "anniversary", "first_purchase:2", at(2028, 1, 3, 0, 0));
    assert_string_equal(fig_s(d, "date"), "2028-01-06");
    NOTHING(h);
    teardown_h(h);
}

/* The date a customer gave in the profile, each year from its year on, until churned. */
static void test_care_profile_date(void **state)
{
    (void)state;
    harness *h = h_new();
    touch(h, TF_KIND_WEB_VISIT, T0);
    profile(h, T0 + HOUR, 0, 0, 2020, 5, 20);
    profile(h, T0 + 2 * HOUR, 0, 0, 2020, 5, 20);
    assert_int_equal(h->c.due[TF_TIMER_DATE], at(2026, 5, 17, 0, 0));
    run(h, at(2027, 5, 17, 0, 0));
    run(h, at(2027, 5, 17, 0, 0));
    CARE(h, "welcome", "welcome", T0);
    const tf_derived_t *d = CARE(h, "date", "date:2026", at(2026, 5, 17, 0, 0));
    assert_string_equal(fig_s(d, "date"), "2026-05-20");
    assert_string_equal(fig_s(d, "stage"), "prospect");
    d = CARE(h, "date", "date:2027", at(2027, 5, 17, 0, 0));
    assert_string_equal(fig_s(d, "date"), "2027-05-20");
    NOTHING(h);
    touch(h, TF_KIND_CONTRACT_END, at(2027, 6, 1, 0, 0));
    STAGE(h, "explicit_exit", at(2027, 6, 1, 0, 0), "prospect", "churned", "contract_end");
    run(h, at(2029, 1, 1, 0, 0));
    NOTHING(h);
    assert_int_equal(h->c.due[TF_TIMER_DATE], 0);
    teardown_h(h);
}

/* ---- complaints ---- */

static void test_sla_per_severity(void **state)
{
    (void)state;
    const struct {
        tf_complaint_severity sev;
        const char *name;
        int64_t minutes;
    } cases[] = {
        {TF_SEV_CRITICAL, "critical", 120},
        {TF_SEV_HIGH, "high", 480},
        {TF_SEV_MEDIUM, "medium", 1440},
        {TF_SEV_LOW, "low", 4320},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        harness *h = h_new();
        int64_t sla = cases[i].minutes * 60000;
        complaint(h, T0, "cp-1", cases[i].sev);
        CARE(h, "welcome", "welcome", T0);
        NOTHING(h);
        assert_int_equal(h->c.open_complaints, 1);
        assert_int_equal(h->c.due[TF_TIMER_SLA], T0 + sla);
        run(h, T0 + sla - 1);
        NOTHING(h);
        run(h, T0 + sla);
        const tf_derived_t *d = NEXT(h, TF_DERIVED_COMPLAINT_ESCALATED, "sla_deadline", T0 + sla);
        assert_string_equal(fig_s(d, "complaint_id"), "cp-1");
        assert_int_equal(fig_i(d, "level"), 1);
        assert_string_equal(fig_s(d, "category"), "service");
        assert_string_equal(fig_s(d, "severity"), cases[i].name);
        assert_int_equal(fig_i(d, "sla_minutes"), cases[i].minutes);
        assert_string_equal(fig_s(d, "opened"), iso(T0));
        assert_int_equal(fig_i(d, "open_complaints"), 1);
        NOTHING(h);
        run(h, T0 + 2 * sla - 1);
        NOTHING(h);
        run(h, T0 + 2 * sla);
        d = NEXT(h, TF_DERIVED_COMPLAINT_ESCALATED, "sla_twice_deadline", T0 + 2 * sla);
        assert_int_equal(fig_i(d, "level"), 2);
        run(h, T0 + 10 * sla);
        NOTHING(h);
        assert_int_equal(h->c.due[TF_TIMER_SLA], 0);
        teardown_h(h);
    }
}

/* Acknowledging or resolving stops the clock; resolving schedules the follow-up;
 * reopening restarts the clock (and the follow-up waits for the next resolution). */
static void test_sla_updates(void **state)
{
    (void)state;
    harness *h = h_new(); /* acknowledged in time */
    complaint(h, T0, "cp-1", TF_SEV_CRITICAL);
    cupdate(h, T0 + HOUR, "cp-1", TF_CST_ACKNOWLEDGED);
    run(h, T0 + 30 * DAY);
    CARE(h, "welcome", "welcome", T0);
    NOTHING(h);
    assert_int_equal(h->c.open_complaints, 1); /* acknowledged is not resolved */
    teardown_h(h);

    h = h_new(); /* acknowledged after the first escalation */
    complaint(h, T0, "cp-1", TF_SEV_CRITICAL);
    cupdate(h, T0 + 3 * HOUR, "cp-1", TF_CST_ACKNOWLEDGED);
    run(h, T0 + 30 * DAY);
    CARE(h, "welcome", "welcome", T0);
    NEXT(h, TF_DERIVED_COMPLAINT_ESCALATED, "sla_deadline", T0 + 2 * HOUR);
    NOTHING(h);
    teardown_h(h);

    h = h_new(); /* resolved: no second level, a follow-up after 7 days */
    complaint(h, T0, "cp-1", TF_SEV_CRITICAL);
    cupdate(h, T0 + 3 * HOUR, "cp-1", TF_CST_RESOLVED);
    assert_int_equal(h->c.open_complaints, 0);
    run(h, T0 + 3 * HOUR + 7 * DAY - 1);
    CARE(h, "welcome", "welcome", T0);
    NEXT(h, TF_DERIVED_COMPLAINT_ESCALATED, "sla_deadline", T0 + 2 * HOUR);
    NOTHING(h);
    run(h, T0 + 30 * DAY);
    const tf_derived_t *d = CARE(h, "complaint_followup", "complaint:cp-1", T0 + 3 * HOUR + 7 * DAY);
    assert_string_equal(fig_s(d, "stage"), "prospect");
    NOTHING(h);
    teardown_h(h);

    h = h_new(); /* reopened */
    complaint(h, T0, "cp-1", TF_SEV_CRITICAL);
    cupdate(h, T0 + 1 * HOUR, "cp-1", TF_CST_RESOLVED);
    cupdate(h, T0 + 5 * HOUR, "cp-1", TF_CST_REOPENED);
    assert_int_equal(h->c.open_complaints, 1);
    run(h, T0 + 8 * DAY);
    CARE(h, "welcome", "welcome", T0);
    d = NEXT(h, TF_DERIVED_COMPLAINT_ESCALATED, "sla_deadline", T0 + 7 * HOUR);
    assert_string_equal(fig_s(d, "opened"), iso(T0 + 5 * HOUR));
    assert_int_equal(fig_i(d, "level"), 1);
    assert_int_equal(fig_i(d, "open_complaints"), 1);
    d = NEXT(h, TF_DERIVED_COMPLAINT_ESCALATED, "sla_twice_deadline", T0 + 9 * HOUR);
    assert_int_equal(fig_i(d, "level"), 2);
    NOTHING(h); /* no follow-up of the first resolution while it is open again */
    cupdate(h, T0 + 8 * DAY, "cp-1", TF_CST_RESOLVED);
    run(h, T0 + 30 * DAY);
    CARE(h, "complaint_followup", "complaint:cp-1", T0 + 15 * DAY);
    NOTHING(h);
    assert_int_equal(h->c.open_complaints, 0);
    teardown_h(h);
}

/* An update processed before its complaint (out of order). */
static void test_complaint_update_first(void **state)
{
    (void)state;
    harness *h = h_new();
    cupdate(h, T0 + HOUR, "cp-1", TF_CST_ACKNOWLEDGED);
    assert_int_equal(h->c.due[TF_TIMER_SLA], 0);
    complaint(h, T0, "cp-1", TF_SEV_CRITICAL);
    run(h, T0 + 30 * DAY);
    CARE(h, "welcome", "welcome", T0 + HOUR);
    NOTHING(h); /* acknowledged: no escalation */
    assert_int_equal(h->c.open_complaints, 1);
    assert_int_equal(h->c.complaints, 1);
    assert_int_equal(h->c.ncomplaints, 1);
    assert_int_equal(h->c.complaint[0].opened_ms, T0);
    assert_int_equal(h->c.complaint[0].severity, TF_SEV_CRITICAL);
    teardown_h(h);

    h = h_new();
    cupdate(h, T0 + 2 * HOUR, "cp-1", TF_CST_RESOLVED);
    complaint(h, T0, "cp-1", TF_SEV_CRITICAL);
    assert_int_equal(h->c.open_complaints, 0);
    run(h, T0 + 30 * DAY);
    CARE(h, "welcome", "welcome", T0 + 2 * HOUR);
    CARE(h, "complaint_followup", "complaint:cp-1", T0 + 2 * HOUR + 7 * DAY);
    NOTHING(h);
    teardown_h(h);
}

/* More complaints than are remembered: the forgotten one stops counting as open,
 * so resolving every complaint brings the count back to 0. */
static void test_complaints_overflow(void **state)
{
    (void)state;
    harness *h = h_new();
    char id[16];
    for (int i = 1; i <= TF_MAX_COMPLAINTS + 1; i++) {
        snprintf(id, sizeof id, "cp-%d", i);
        complaint(h, T0 + i * 60000, id, TF_SEV_LOW);
    }
    assert_int_equal(h->c.ncomplaints, TF_MAX_COMPLAINTS);
    assert_int_equal(h->c.complaints, TF_MAX_COMPLAINTS + 1);
    assert_string_equal(h->c.complaint[0].id, "cp-2");
    for (int i = 1; i <= TF_MAX_COMPLAINTS + 1; i++) {
        snprintf(id, sizeof id, "cp-%d", i);
        cupdate(h, T0 + HOUR + i * 60000, id, TF_CST_RESOLVED);
    }
    assert_int_equal(h->c.open_complaints, 0);
    teardown_h(h);
}

/* ---- referrals ---- */

static void test_referral(void **state)
{
    (void)state;
    harness *h = h_new();
    snprintf(h->c.referred_by, sizeof h->c.referred_by, "ref-1"); /* set by the pipeline */
    touch(h, TF_KIND_WEB_VISIT, T0);
    buy(h, T0 + DAY, 8800);
    CARE(h, "welcome", "welcome", T0);
    STAGE(h, "first_purchase", T0 + DAY, "prospect", "growth", "purchase");
    const tf_derived_t *d = NEXT(h, TF_DERIVED_REFERRAL_CREDITED, "referred_first_purchase", T0 + DAY);
    assert_string_equal(d->subject, "ref-1");
    assert_string_equal(fig_s(d, "referred_id"), CUSTOMER);
    assert_string_equal(fig_s(d, "order_id"), "o-e-2");
    assert_int_equal(fig_i(d, "amount"), 8800);
    assert_string_equal(fig_s(d, "currency"), "CNY");
    NOTHING(h);
    assert_int_equal(h->c.referral_credited, 1);
    buy(h, T0 + 2 * DAY, 8800);
    NOTHING(h);
    assert_int_equal(count(h, TF_DERIVED_REFERRAL_CREDITED, NULL), 1);
    teardown_h(h);

    h = h_new(); /* the referrer's side: counted */
    tf_event_t ev = ev_new(h, TF_KIND_REFERRAL, T0);
    snprintf(ev.referred_id, sizeof ev.referred_id, "c-2");
    step(h, &ev);
    assert_int_equal(h->c.referrals, 1);
    assert_int_equal(h->c.counts[TF_KIND_REFERRAL], 1);
    teardown_h(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_care_followup, free_all),
        cmocka_unit_test_teardown(test_care_birthday, free_all),
        cmocka_unit_test_teardown(test_care_festivals, free_all),
        cmocka_unit_test_teardown(test_care_checkin, free_all),
        cmocka_unit_test_teardown(test_care_anniversary, free_all),
        cmocka_unit_test_teardown(test_care_profile_date, free_all),
        cmocka_unit_test_teardown(test_sla_per_severity, free_all),
        cmocka_unit_test_teardown(test_sla_updates, free_all),
        cmocka_unit_test_teardown(test_complaint_update_first, free_all),
        cmocka_unit_test_teardown(test_complaints_overflow, free_all),
        cmocka_unit_test_teardown(test_referral, free_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
