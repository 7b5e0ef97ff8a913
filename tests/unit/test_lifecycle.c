/* Unit tests for pkg/lifecycle: stages, churn risk and warnings, value, tiers,
 * loyalty, out-of-order events and derived ids; every rule and transition of
 * DOMAIN.md as the pure engine implements it, with the exact derived events asserted
 * in order. Care reminders and complaints are in test_care.c. */
#include "lifecycle_harness.h"

/* ---- names ---- */

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(at(2026, 1, 6, 12, 15), T0);
    const char *stages[] = {"none", "prospect", "growth", "mature", "decline", "churned"};
    for (int s = 0; s < TF_STAGE__COUNT; s++) {
        tf_stage back;
        assert_string_equal(tf_stage_name((tf_stage)s), stages[s]);
        assert_int_equal(tf_stage_parse(stages[s], &back), TF_OK);
        assert_int_equal(back, s);
    }
    const char *tiers[] = {"none", "temporary", "regular", "potential", "key"};
    for (int t = 0; t < TF_TIER__COUNT; t++) {
        tf_tier back;
        assert_string_equal(tf_tier_name((tf_tier)t), tiers[t]);
        assert_int_equal(tf_tier_parse(tiers[t], &back), TF_OK);
        assert_int_equal(back, t);
    }
    tf_stage s;
    tf_tier t;
    assert_int_equal(tf_stage_parse("lapsed", &s), TF_ENOTFOUND);
    assert_int_equal(tf_tier_parse("gold", &t), TF_ENOTFOUND);
    assert_string_equal(tf_stage_name(TF_STAGE__COUNT), "none");
    const char *timers[] = {"review", "birthday", "festival", "followup", "checkin",
                            "anniversary", "date", "complaint_followup", "sla", "segment",
                            "replenishment", "overdue"};
    for (int i = 0; i < TF_TIMER__COUNT; i++)
        assert_string_equal(tf_timer_name((tf_timer)i), timers[i]);
}

/* The ranking holds the customer itself at its last committed value: a key
 * customer whose value dipped under its own ranked score stays key. */
static void test_tier_self_ranked(void **state)
{
    (void)state;
    harness *h = h_new();
    h->r.tier_min_population = 10;
    buy_m(h, T0, 60000, 18000);
    int64_t value = tf_customer_value(&h->r, &h->c);
    /* The ranking's top score is this customer's, 100 above its value now. */
    h_population(h, 31, value + 100, value + 100, 10000, 9000);
    h->pop.self_ranked = 1;
    h->pop.self_value = value + 100;
    touch(h, TF_KIND_WEB_VISIT, T0 + HOUR);
    assert_int_equal(h->c.tier, TF_TIER_KEY);
    /* Without its own entry it would only be potential. */
    harness *g = h_new();
    g->r.tier_min_population = 10;
    buy_m(g, T0, 60000, 18000);
    h_population(g, 31, value + 100, value + 100, 10000, 9000);
    touch(g, TF_KIND_WEB_VISIT, T0 + HOUR);
    assert_int_equal(g->c.tier, TF_TIER_POTENTIAL);
}

/* ---- RFM ---- */

static void test_rfm_scores(void **state)
{
    (void)state;
    harness *h = h_new();
    touch(h, TF_KIND_WEB_VISIT, T0 - DAY);
    assert_int_equal(h->c.rfm_r, 0); /* no purchase: no scores */
    buy(h, T0, 49999);
    /* Just bought, one purchase, spend under one step. */
    assert_int_equal(h->c.rfm_r, 5);
    assert_int_equal(h->c.rfm_f, 1);
    assert_int_equal(h->c.rfm_m, 1);
    buy(h, T0 + DAY, 1); /* 2 purchases (one step), 50000 spent (one step) */
    assert_int_equal(h->c.rfm_f, 2);
    assert_int_equal(h->c.rfm_m, 2);
    for (int i = 2; i < 16; i++)
        buy(h, T0 + (i + 1) * DAY, 50000);
    assert_int_equal(h->c.rfm_f, 5); /* 16 purchases: eight steps */
    assert_int_equal(h->c.rfm_m, 5);
    /* Recency falls as the days pass: 29 days is still 5, 30 is 4, 240 is 1. */
    int64_t last = h->c.last_purchase_ms;
    tf_lc_rfm(&h->r, &h->c, last + 29 * DAY);
    assert_int_equal(h->c.rfm_r, 5);
    tf_lc_rfm(&h->r, &h->c, last + 30 * DAY);
    assert_int_equal(h->c.rfm_r, 4);
    tf_lc_rfm(&h->r, &h->c, last + 119 * DAY);
    assert_int_equal(h->c.rfm_r, 3);
    tf_lc_rfm(&h->r, &h->c, last + 120 * DAY);
    assert_int_equal(h->c.rfm_r, 2);
    tf_lc_rfm(&h->r, &h->c, last + 240 * DAY);
    assert_int_equal(h->c.rfm_r, 1);
    /* A refund lowers the monetary score with the net spend. */
    refund(h, last + DAY, h->c.spend - 60000, "CNY");
    assert_int_equal(h->c.rfm_m, 2);
}

/* ---- stages ---- */

static void test_first_touch_welcome(void **state)
{
    (void)state;
    harness *h = h_new();
    touch(h, TF_KIND_WEB_VISIT, T0);
    const tf_derived_t *d = CARE(h, "welcome", "welcome", T0);
    assert_string_equal(fig_s(d, "stage"), "prospect");
    assert_string_equal(fig_s(d, "tier"), "none");
    assert_null(fig(d, "date"));
    NOTHING(h);
    assert_int_equal(h->c.stage, TF_STAGE_PROSPECT);
    assert_int_equal(h->c.stage_since_ms, T0);
    assert_int_equal(h->c.welcomed, 1);
    assert_int_equal(h->c.care_actions, 1);
    assert_int_equal(h->c.counts[TF_KIND_WEB_VISIT], 1);
    /* A prospect without dates has no timer. */
    assert_int_equal(tf_customer_next_due(&h->c), 0);

    touch(h, TF_KIND_EMAIL, T0 + HOUR); /* welcomed once */
    run(h, T0 + 400 * DAY);
    NOTHING(h);
    assert_int_equal(h->c.clock_ms, T0 + 400 * DAY);

    buy(h, T0 + 401 * DAY, 12990);
    d = STAGE(h, "first_purchase", T0 + 401 * DAY, "prospect", "growth", "purchase");
    assert_int_equal(fig_i(d, "purchases"), 1);
    assert_int_equal(fig_i(d, "tenure_days"), 0);
    NOTHING(h);
    teardown_h(h);
}

/* Sums saturate: a customer already near the limits (an absurd lifetime, or state
 * written before amounts were bounded) never wraps to a negative spend. */
static void test_sums_saturate(void **state)
{
    (void)state;
    harness *h = h_new();
    buy_m(h, T0, 1000, 300);
    h->c.spend = INT64_MAX - 10;
    h->c.margin = INT64_MAX - 10;
    h->c.gross_profit = INT64_MAX - 10;
    buy_m(h, T0 + DAY, 1000000000000, 1000000000000);
    assert_true(h->c.spend == INT64_MAX);
    assert_true(h->c.margin == INT64_MAX);
    assert_true(h->c.gross_profit == INT64_MAX);
    assert_true(h->c.points > 0);
    assert_true(tf_customer_value(&h->r, &h->c) > 0);
    /* And at the bottom: a loss-making margin does not wrap to a profit. */
    h->c.margin = INT64_MIN + 10;
    h->c.gross_profit = INT64_MIN + 10;
    buy_m(h, T0 + 2 * DAY, 5, -1000000000000);
    assert_true(h->c.margin == INT64_MIN);
    assert_true(h->c.gross_profit == INT64_MIN);
    assert_true(tf_customer_value(&h->r, &h->c) == INT64_MIN);
}

static void test_first_purchase(void **state)
{
    (void)state;
    harness *h = h_new();
    buy(h, T0, 12990);
    const tf_derived_t *d = STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    assert_int_equal(fig_i(d, "purchases"), 1);
    assert_int_equal(fig_i(d, "spend"), 12990);
    assert_int_equal(fig_i(d, "tenure_days"), 0);
    assert_int_equal(fig_i(d, "days_since_purchase"), 0);
    NOTHING(h); /* no welcome for a first touchpoint that is a purchase; first level silent */
    assert_int_equal(h->c.welcomed, 0);
    assert_string_equal(h->c.level, "member");
    assert_int_equal(h->c.points, 129);
    assert_int_equal(h->c.nhistory, 1);
    assert_int_equal(h->c.history[0].from, TF_STAGE_PROSPECT);
    assert_int_equal(h->c.history[0].to, TF_STAGE_GROWTH);
    assert_string_equal(h->c.history[0].rule, "first_purchase");

    /* The timers as scheduled: review on the 7-day grid (inactivity is later),
     * follow-up after 3 days, the first anniversary 3 days before. */
    assert_int_equal(h->c.due[TF_TIMER_REVIEW], T0 + 7 * DAY);
    assert_int_equal(h->c.due[TF_TIMER_FOLLOWUP], T0 + 3 * DAY);
    assert_int_equal(h->c.due[TF_TIMER_ANNIVERSARY], at(2027, 1, 3, 0, 0));
    assert_int_equal(h->c.due[TF_TIMER_FESTIVAL], 0);
    assert_int_equal(h->c.due[TF_TIMER_CHECKIN], 0);
    assert_int_equal(h->c.due[TF_TIMER_SLA], 0);
    assert_int_equal(tf_customer_next_due(&h->c), T0 + 3 * DAY);

    /* Rescheduled from the state as of the clock: the review keeps to its grid. */
    h->c.clock_ms = T0 + 8 * DAY;
    tf_lifecycle_schedule(&h->r, &h->c);
    assert_int_equal(h->c.due[TF_TIMER_REVIEW], T0 + 14 * DAY);
    h->c.clock_ms = T0 + 29 * DAY;
    tf_lifecycle_schedule(&h->r, &h->c);
    assert_int_equal(h->c.due[TF_TIMER_REVIEW], T0 + 30 * DAY); /* the inactivity deadline comes first */
    teardown_h(h);
}

/* 5 purchases and 90 days: the fifth purchase 1 ms short of 90 days does not make
 * the customer mature; the review timer does at exactly 90 days. */
static void test_mature_by_tenure_timer(void **state)
{
    (void)state;
    harness *h = h_new();
    for (int i = 0; i < 4; i++)
        buy(h, T0 + i * 20 * DAY, 1000);
    buy(h, T0 + 90 * DAY - 1, 1000);
    run(h, T0 + 90 * DAY - 1);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    skip_followups(h);
    NOTHING(h);
    assert_int_equal(h->c.stage, TF_STAGE_GROWTH);
    assert_int_equal(h->c.due[TF_TIMER_REVIEW], T0 + 90 * DAY);

    run(h, T0 + 90 * DAY);
    const tf_derived_t *d = STAGE(h, "mature_threshold", T0 + 90 * DAY, "growth", "mature", "timer");
    assert_int_equal(fig_i(d, "purchases"), 5);
    assert_int_equal(fig_i(d, "spend"), 5000);
    assert_int_equal(fig_i(d, "tenure_days"), 90);
    assert_int_equal(fig_i(d, "days_since_purchase"), 0);
    NOTHING(h);
    teardown_h(h);
}

/* The time-driven route when the purchases come early and the tenure later. */
static void test_mature_by_tenure_later(void **state)
{
    (void)state;
    harness *h = h_new();
    for (int i = 0; i < 5; i++)
        buy(h, T0 + i * 20 * DAY, 1000);
    run(h, T0 + 90 * DAY - 1);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    skip_followups(h);
    NOTHING(h);
    run(h, T0 + 90 * DAY);
    const tf_derived_t *d = STAGE(h, "mature_threshold", T0 + 90 * DAY, "growth", "mature", "timer");
    assert_int_equal(fig_i(d, "tenure_days"), 90);
    assert_int_equal(fig_i(d, "days_since_purchase"), 10);
    NOTHING(h);
    assert_int_equal(h->c.stage_since_ms, T0 + 90 * DAY);
    teardown_h(h);
}

/* The event-driven route: the fifth purchase after 90 days. */
static void test_mature_by_purchase(void **state)
{
    (void)state;
    harness *h = h_new();
    for (int i = 0; i < 4; i++)
        buy(h, T0 + i * 20 * DAY, 1000);
    buy(h, T0 + 95 * DAY, 1000);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    skip_followups(h);
    const tf_derived_t *d = STAGE(h, "mature_threshold", T0 + 95 * DAY, "growth", "mature", "purchase");
    assert_int_equal(fig_i(d, "purchases"), 5);
    assert_int_equal(fig_i(d, "tenure_days"), 95);
    assert_int_equal(fig_i(d, "days_since_purchase"), 0);
    NOTHING(h);
    teardown_h(h);
}

/* Lifetime spend at the threshold (net of refunds) makes a customer mature. */
static void test_mature_by_spend(void **state)
{
    (void)state;
    harness *h = h_new();
    buy(h, T0, 999999);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    NOTHING(h);
    buy(h, T0 + HOUR, 1);
    const tf_derived_t *d = STAGE(h, "mature_threshold", T0 + HOUR, "growth", "mature", "purchase");
    assert_int_equal(fig_i(d, "purchases"), 2);
    assert_int_equal(fig_i(d, "spend"), 1000000);
    NOTHING(h);
    teardown_h(h);

    /* One big first purchase: two transitions, two distinct ids. */
    h = h_new();
    buy(h, T0, 1000000);
    const tf_derived_t *a = STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    const tf_derived_t *b = STAGE(h, "mature_threshold", T0, "growth", "mature", "purchase");
    assert_string_not_equal(a->id, b->id);
    NOTHING(h);
    assert_int_equal(h->c.nhistory, 2);
    assert_int_equal(h->c.history[0].to, TF_STAGE_MATURE);
    teardown_h(h);

    /* Refunds count against the threshold. */
    h = h_new();
    buy(h, T0, 600000);
    refund(h, T0 + HOUR, 100000, "CNY");
    buy(h, T0 + 2 * HOUR, 400000);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    NOTHING(h);
    teardown_h(h);
}

/* Inactivity, floor arm: with one purchase (no interval) or a short own rhythm, the
 * decline comes after exactly inactivity_min_days. */
static void test_decline_inactivity_floor(void **state)
{
    (void)state;
    harness *h = h_new();
    buy(h, T0, 5000);
    run(h, T0 + 30 * DAY - 1);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    CARE(h, "post_purchase", "order:o-e-1", T0 + 3 * DAY);
    NOTHING(h);
    assert_int_equal(h->c.due[TF_TIMER_REVIEW], T0 + 30 * DAY);
    run(h, T0 + 30 * DAY);
    const tf_derived_t *d = STAGE(h, "inactivity", T0 + 30 * DAY, "growth", "decline", "timer");
    assert_int_equal(fig_i(d, "threshold_days"), 30);
    assert_int_equal(fig_i(d, "mean_interval_days"), -1); /* one purchase: no interval */
    assert_int_equal(fig_i(d, "days_since_purchase"), 30);
    assert_int_equal(fig_i(d, "tenure_days"), 30);
    assert_int_equal(fig_i(d, "purchases"), 1);
    assert_int_equal(fig_i(d, "spend"), 5000);
    d = SILENT_WARNING(h, T0 + 30 * DAY);
    assert_int_equal(fig_i(d, "days_since_purchase"), 30);
    NOTHING(h);
    assert_int_equal(h->c.stage, TF_STAGE_DECLINE);
    assert_int_equal(h->c.warned, 1);
    teardown_h(h);

    /* Twice a 10-day rhythm is 20 days, under the 30-day floor. */
    h = h_new();
    buy(h, T0, 5000);
    buy(h, T0 + 10 * DAY, 5000);
    assert_int_equal(tf_customer_mean_interval_ms(&h->c), 10 * DAY);
    run(h, T0 + 40 * DAY - 1);
    assert_int_equal(count(h, TF_DERIVED_STAGE_CHANGED, "inactivity"), 0);
    run(h, T0 + 40 * DAY);
    h->cur = h->n - 2;
    d = STAGE(h, "inactivity", T0 + 40 * DAY, "growth", "decline", "timer");
    assert_int_equal(fig_i(d, "threshold_days"), 30);
    assert_int_equal(fig_i(d, "mean_interval_days"), 10);
    SILENT_WARNING(h, T0 + 40 * DAY);
    NOTHING(h);
    teardown_h(h);
}

/* Inactivity, own-rhythm arm: purchases 20 days apart decline after 40 days, to the ms. */
static void test_decline_inactivity_factor(void **state)
{
    (void)state;
    harness *h = h_new();
    buy(h, T0, 5000);
    buy(h, T0 + 20 * DAY, 5000);
    buy(h, T0 + 40 * DAY, 5000);
    run(h, T0 + 80 * DAY - 1);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    skip_followups(h);
    NOTHING(h);
    assert_int_equal(h->c.due[TF_TIMER_REVIEW], T0 + 80 * DAY);
    run(h, T0 + 80 * DAY);
    const tf_derived_t *d = STAGE(h, "inactivity", T0 + 80 * DAY, "growth", "decline", "timer");
    assert_int_equal(fig_i(d, "threshold_days"), 40);
    assert_int_equal(fig_i(d, "mean_interval_days"), 20);
    assert_int_equal(fig_i(d, "days_since_purchase"), 40);
    assert_int_equal(fig_i(d, "tenure_days"), 80);
    assert_int_equal(fig_i(d, "purchases"), 3);
    d = SILENT_WARNING(h, T0 + 80 * DAY);
    assert_int_equal(fig_i(d, "days_since_purchase"), 40);
    NOTHING(h);
    teardown_h(h);
}

/* Spend over the last window under half the window before. Purchases every 15 days
 * (one per spend bucket), 10000 each, then 1000 from the 13th on: the review after
 * the 16th purchase sees 2 x 10000 + 4 x 1000 = 24000 against 6 x 10000. */
static void test_decline_spend(void **state)
{
    (void)state;
    harness *h = h_new();
    const int64_t s = at(2026, 1, 7, 0, 0);
    assert_int_equal(s % (15 * DAY), 0); /* a spend bucket starts here */
    for (int k = 0; k <= 15; k++)
        buy(h, s + k * 15 * DAY + 12 * HOUR, k < 12 ? 10000 : 1000);
    const int64_t decline_at = s + 15 * 15 * DAY + 12 * HOUR + 7 * DAY;
    run(h, decline_at - 1);
    const tf_derived_t *st[8];
    assert_int_equal(take(h, TF_DERIVED_STAGE_CHANGED, st, 8), 2);
    assert_string_equal(st[0]->rule, "first_purchase");
    assert_string_equal(st[1]->rule, "mature_threshold"); /* the review at 90 days, just before the 7th purchase */
    assert_int_equal(st[1]->time_ms, s + 90 * DAY + 12 * HOUR);
    assert_string_equal(fig_s(st[1], "cause"), "timer");
    assert_int_equal(fig_i(st[1], "purchases"), 6);
    assert_int_equal(fig_i(st[1], "days_since_purchase"), 15);
    assert_int_equal(count(h, TF_DERIVED_CHURN_WARNING, NULL), 0);
    run(h, decline_at);
    const tf_derived_t *d = STAGE(h, "spend_decline", decline_at, "mature", "decline", "timer");
    assert_int_equal(fig_i(d, "recent_spend"), 24000);
    assert_int_equal(fig_i(d, "previous_spend"), 60000);
    assert_int_equal(fig_i(d, "purchases"), 16);
    assert_int_equal(fig_i(d, "days_since_purchase"), 7);
    NOTHING(h);
    assert_int_equal(h->c.risk, 6); /* spend decline 10 x (1 - 24000 / 60000) */
    teardown_h(h);
}

/* The story of a customer whose risk crosses the warning by a repeated complaint.
 * Weights spread over the signals (inactivity 35, spend 20, complaints 20,
 * satisfaction 15, NPS 10), so that it takes the second complaint: S = 50% and NPS 0
 * give 25; 25 days without purchase (of 30) 23.3; one open complaint 10, two
 * (repeated) 20. */
static void churn_risk_story(harness *h)
{
    h_weights(h, 35, 20, 20, 15, 10);
    buy(h, T0, 10000);
    survey(h, T0 + HOUR, 10, 5, 0);
    complaint(h, T0 + 25 * DAY, "cp-1", TF_SEV_LOW);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    CARE(h, "post_purchase", "order:o-e-1", T0 + 3 * DAY);
    NOTHING(h);
    assert_int_equal(h->c.risk, 58);
    complaint(h, T0 + 25 * DAY + HOUR, "cp-2", TF_SEV_LOW);
    const tf_derived_t *d = STAGE(h, "churn_risk", T0 + 25 * DAY + HOUR, "growth", "decline", "complaint");
    assert_int_equal(fig_i(d, "risk"), 68);
    assert_int_equal(fig_i(d, "warning_threshold"), 60);
    assert_int_equal(fig_i(d, "days_since_purchase"), 25);
    const tf_derived_t *w = NEXT(h, TF_DERIVED_CHURN_WARNING, "risk_above_warning", T0 + 25 * DAY + HOUR);
    assert_int_equal(fig_i(w, "risk"), 68);
    assert_int_equal(fig_of(w, "reasons", TF_FIG_LIST)->kind, TF_FIG_LIST);
    assert_string_equal(fig_s(w, "reasons"), "inactivity,repeated_complaints,low_satisfaction,low_nps");
    assert_int_equal(fig_i(w, "warning_threshold"), 60);
    assert_string_equal(fig_s(w, "stage"), "decline");
    assert_int_equal(fig_i(w, "days_since_purchase"), 25);
    assert_int_equal(fig_i(w, "open_complaints"), 2);
    assert_near(fig_n(w, "satisfaction"), 50);
    NOTHING(h);
    assert_int_equal(h->c.warned, 1);
    assert_int_equal(h->c.warned_at_ms, T0 + 25 * DAY + HOUR);
}

static void test_decline_churn_risk(void **state)
{
    (void)state;
    harness *h = h_new();
    churn_risk_story(h);

    /* Standing: the review a week later (risk 80) repeats nothing; the SLAs of the
     * two low-severity complaints (72 h) run meanwhile. */
    run(h, T0 + 32 * DAY + HOUR);
    const tf_derived_t *d = NEXT(h, TF_DERIVED_COMPLAINT_ESCALATED, "sla_deadline", T0 + 28 * DAY);
    assert_string_equal(fig_s(d, "complaint_id"), "cp-1");
    d = NEXT(h, TF_DERIVED_COMPLAINT_ESCALATED, "sla_deadline", T0 + 28 * DAY + HOUR);
    assert_string_equal(fig_s(d, "complaint_id"), "cp-2");
    NEXT(h, TF_DERIVED_COMPLAINT_ESCALATED, "sla_twice_deadline", T0 + 31 * DAY);
    NEXT(h, TF_DERIVED_COMPLAINT_ESCALATED, "sla_twice_deadline", T0 + 31 * DAY + HOUR);
    NOTHING(h);
    assert_int_equal(h->c.risk, 80);
    assert_int_equal(h->c.warned, 1);

    /* A purchase recovers the customer and clears the warning, with the risk after
     * the purchase: no inactivity, the complaints, satisfaction and NPS (45). */
    buy(h, T0 + 33 * DAY, 10000);
    d = STAGE(h, "recovered_purchase", T0 + 33 * DAY, "decline", "growth", "purchase");
    assert_int_equal(fig_i(d, "purchases"), 2);
    d = NEXT(h, TF_DERIVED_CHURN_CLEARED, "purchase", T0 + 33 * DAY);
    assert_int_equal(fig_i(d, "risk"), 45);
    assert_int_equal(fig_i(d, "warned_days"), 7);
    NOTHING(h);
    assert_int_equal(h->c.warned, 0);
    assert_int_equal(h->c.risk, 45);
    teardown_h(h);

    /* Under the default weights the first complaint is enough: 25 days of 30 give
     * 40, S = 50% 10, NPS 0 5, one open complaint 7.5. */
    h = h_new();
    buy(h, T0, 10000);
    survey(h, T0 + HOUR, 10, 5, 0);
    run(h, T0 + 25 * DAY - 1);
    assert_int_equal(count(h, TF_DERIVED_CHURN_WARNING, NULL), 0);
    complaint(h, T0 + 25 * DAY, "cp-1", TF_SEV_LOW);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    CARE(h, "post_purchase", "order:o-e-1", T0 + 3 * DAY);
    d = STAGE(h, "churn_risk", T0 + 25 * DAY, "growth", "decline", "complaint");
    assert_int_equal(fig_i(d, "risk"), 63);
    const tf_derived_t *w = NEXT(h, TF_DERIVED_CHURN_WARNING, "risk_above_warning", T0 + 25 * DAY);
    assert_int_equal(fig_i(w, "risk"), 63);
    assert_string_equal(fig_s(w, "reasons"), "inactivity,open_complaints,low_satisfaction,low_nps");
    NOTHING(h);
    teardown_h(h);
}

/* Warning at the threshold (60, not 59), standing between the thresholds, kept at
 * exactly the clear threshold (40), cleared under it, warned again later. Only the
 * satisfaction signal weighs: risk = (90 - S) / 40 x 100. */
static void test_churn_warning_hysteresis(void **state)
{
    (void)state;
    harness *h = h_new();
    h->r.weight_inactivity = 0;
    h->r.weight_spend_decline = 0;
    h->r.weight_complaints = 0;
    h->r.weight_satisfaction = 100;
    h->r.weight_nps = 0;
    buy(h, T0, 10000);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    survey(h, T0 + 1 * HOUR, 10, 6.64, -1); /* S = 66.4: 59 */
    NOTHING(h);
    assert_int_equal(h->c.risk, 59);
    survey(h, T0 + 2 * HOUR, 10, 6.56, -1); /* S = 66: 60 */
    const tf_derived_t *d = STAGE(h, "churn_risk", T0 + 2 * HOUR, "growth", "decline", "survey");
    assert_int_equal(fig_i(d, "risk"), 60);
    const tf_derived_t *w1 = NEXT(h, TF_DERIVED_CHURN_WARNING, "risk_above_warning", T0 + 2 * HOUR);
    assert_int_equal(fig_i(w1, "risk"), 60);
    assert_string_equal(fig_s(w1, "reasons"), "low_satisfaction");
    assert_near(fig_n(w1, "satisfaction"), 66);
    assert_int_equal(fig_i(w1, "open_complaints"), 0);
    NOTHING(h);
    survey(h, T0 + 3 * HOUR, 10, 7, -1); /* S = 67.3: 57, standing */
    survey(h, T0 + 4 * HOUR, 10, 9.4, -1); /* S = 74: 40, not under the clear threshold */
    NOTHING(h);
    assert_int_equal(h->c.risk, 40);
    assert_int_equal(h->c.warned, 1);
    survey(h, T0 + 5 * HOUR, 10, 10, -1); /* S = 79.2: 27 */
    d = NEXT(h, TF_DERIVED_CHURN_CLEARED, "risk_below_clear", T0 + 5 * HOUR);
    assert_int_equal(fig_i(d, "risk"), 27);
    assert_int_equal(fig_i(d, "warned_days"), 0);
    NOTHING(h);
    survey(h, T0 + 6 * HOUR, 10, 1, -1); /* S = 67.7: 56, under the warning */
    NOTHING(h);
    survey(h, T0 + 7 * HOUR, 10, 1, -1); /* S = 59.4: 76, warned again (still declining) */
    const tf_derived_t *w2 = NEXT(h, TF_DERIVED_CHURN_WARNING, "risk_above_warning", T0 + 7 * HOUR);
    assert_int_equal(fig_i(w2, "risk"), 76);
    assert_string_equal(fig_s(w2, "stage"), "decline");
    assert_string_not_equal(w1->id, w2->id);
    NOTHING(h);
    teardown_h(h);
}

static void test_decline_to_churned(void **state)
{
    (void)state;
    harness *h = h_new();
    buy(h, T0, 5000);
    run(h, T0 + 180 * DAY - 1);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    CARE(h, "post_purchase", "order:o-e-1", T0 + 3 * DAY);
    STAGE(h, "inactivity", T0 + 30 * DAY, "growth", "decline", "timer");
    SILENT_WARNING(h, T0 + 30 * DAY);
    NOTHING(h);
    assert_int_equal(h->c.due[TF_TIMER_REVIEW], T0 + 180 * DAY);
    run(h, T0 + 180 * DAY);
    const tf_derived_t *d = STAGE(h, "no_purchase", T0 + 180 * DAY, "decline", "churned", "timer");
    assert_int_equal(fig_i(d, "days_since_purchase"), 180);
    assert_int_equal(fig_i(d, "tenure_days"), 180);
    d = NEXT(h, TF_DERIVED_WINBACK_OPPORTUNITY, "no_purchase", T0 + 180 * DAY);
    assert_string_equal(fig_s(d, "cause"), "no_purchase");
    assert_int_equal(fig_i(d, "purchases"), 1);
    assert_int_equal(fig_i(d, "spend"), 5000);
    assert_int_equal(fig_i(d, "days_since_purchase"), 180);
    assert_int_equal(fig_i(d, "churned_count"), 1);
    NOTHING(h);
    assert_int_equal(h->c.stage, TF_STAGE_CHURNED);
    assert_int_equal(h->c.stage_since_ms, T0 + 180 * DAY);
    assert_int_equal(h->c.due[TF_TIMER_REVIEW], 0);
    /* Churned: no reviews, no first-purchase anniversary. */
    run(h, T0 + 3 * 365 * DAY);
    NOTHING(h);
    assert_int_equal(tf_customer_next_due(&h->c), 0);
    teardown_h(h);
}

/* The silent churner (DOMAIN.md, churn warning): purchases at a steady rhythm, then
 * nothing. Under the default rules the warning, for inactivity, comes with the
 * decline by inactivity, decline_days after the last purchase, strictly before the
 * churn at churn_after_days. */
static void silent_churner(int purchases, int64_t gap_days, int64_t decline_days)
{
    harness *h = h_new();
    h_calendar(h);
    for (int i = 0; i < purchases; i++)
        buy(h, T0 + i * gap_days * DAY, 5000);
    const int64_t last = T0 + (purchases - 1) * gap_days * DAY;
    run(h, last + 365 * DAY);
    size_t warned = h->n, churned = h->n;
    for (size_t i = 0; i < h->n; i++) {
        const tf_derived_t *d = &h->log[i];
        if (d->type == TF_DERIVED_CHURN_WARNING && d->time_ms > last && warned == h->n)
            warned = i;
        if (d->type == TF_DERIVED_STAGE_CHANGED && strcmp(fig_s(d, "to"), "churned") == 0)
            churned = i;
    }
    if (warned == h->n || churned == h->n || warned >= churned) {
        dump(h);
        fail_msg("%d purchase(s) %lld days apart: want a churn warning before the churn", purchases,
                 (long long)gap_days);
    }
    const tf_derived_t *w = &h->log[warned], *c = &h->log[churned];
    assert_string_equal(w->rule, "risk_above_warning");
    assert_non_null(strstr(fig_s(w, "reasons"), "inactivity"));
    assert_int_equal(w->time_ms, last + decline_days * DAY);
    assert_int_equal(fig_i(w, "days_since_purchase"), decline_days);
    /* It comes with the decline by inactivity, just before it in the log. */
    const tf_derived_t *dec = &h->log[warned - 1];
    assert_int_equal(dec->type, TF_DERIVED_STAGE_CHANGED);
    assert_string_equal(dec->rule, "inactivity");
    assert_int_equal(dec->time_ms, w->time_ms);
    assert_string_equal(c->rule, "no_purchase");
    assert_int_equal(c->time_ms, last + h->r.churn_after_days * DAY);
    assert_true(w->time_ms < c->time_ms);
    /* Warned once in the silence, and nothing retracts it: the customer never came back. */
    assert_int_equal(h->log[h->n - 1].time_ms, c->time_ms);
    for (size_t i = warned + 1; i < h->n; i++)
        assert_true(h->log[i].type != TF_DERIVED_CHURN_WARNING && h->log[i].type != TF_DERIVED_CHURN_CLEARED);
    teardown_h(h);
}

/* A long rhythm: the customer's own threshold (twice its interval) reaches or passes
 * the churn point, so inactivity counts in full half way to it (90 days by default)
 * and the warning comes by then, whatever declined the customer first. */
static void silent_churner_long(int purchases, int64_t gap_days)
{
    harness *h = h_new();
    h_calendar(h);
    for (int i = 0; i < purchases; i++)
        buy(h, T0 + i * gap_days * DAY, 5000);
    const int64_t last = T0 + (purchases - 1) * gap_days * DAY;
    run(h, last + 365 * DAY);
    const tf_derived_t *w = NULL, *c = NULL;
    for (size_t i = 0; i < h->n; i++) {
        const tf_derived_t *d = &h->log[i];
        if (d->type == TF_DERIVED_CHURN_WARNING && d->time_ms > last && !w)
            w = d;
        if (d->type == TF_DERIVED_STAGE_CHANGED && strcmp(fig_s(d, "to"), "churned") == 0)
            c = d;
    }
    if (!w || !c || w >= c) {
        dump(h);
        fail_msg("%d purchases %lld days apart: want a churn warning before the churn", purchases,
                 (long long)gap_days);
    }
    assert_non_null(strstr(fig_s(w, "reasons"), "inactivity"));
    assert_true(w->time_ms <= last + h->r.churn_after_days / 2 * DAY);
    assert_string_equal(c->rule, "no_purchase");
    assert_int_equal(c->time_ms, last + h->r.churn_after_days * DAY);
    teardown_h(h);
}

static void test_silent_churner(void **state)
{
    (void)state;
    silent_churner(1, 0, 30);  /* one purchase: the 30-day floor */
    silent_churner(4, 10, 30); /* a short rhythm: still the floor */
    silent_churner(4, 20, 40); /* twice the customer's own 20-day rhythm */
    silent_churner(3, 25, 50); /* twice a 25-day rhythm */
    silent_churner_long(4, 45);  /* twice the rhythm is the half-way point */
    silent_churner_long(4, 60);
    silent_churner_long(4, 90);
    silent_churner_long(4, 100); /* twice the rhythm is past the churn point */
    silent_churner_long(3, 150);
}

/* contract_end (rules.exit.kinds) ends the relationship from any stage, once; a
 * prospect that never bought gets no win-back (test_consent.c: unsubscribe). */
static void test_explicit_exit(void **state)
{
    (void)state;
    harness *h = h_new();
    h->r.nexit_kinds = 2; /* unsubscribe ends it too */
    tf_strlcpy(h->r.exit_kinds[1], "unsubscribe", sizeof h->r.exit_kinds[1]);
    touch(h, TF_KIND_WEB_VISIT, T0);
    touch(h, TF_KIND_UNSUBSCRIBE, T0 + HOUR);
    CARE(h, "welcome", "welcome", T0);
    const tf_derived_t *d = STAGE(h, "explicit_exit", T0 + HOUR, "prospect", "churned", "unsubscribe");
    assert_int_equal(fig_i(d, "purchases"), 0);
    assert_null(fig(d, "tenure_days"));
    NOTHING(h);
    touch(h, TF_KIND_CONTRACT_END, T0 + 2 * HOUR); /* already churned */
    NOTHING(h);
    assert_int_equal(h->c.churned_count, 1);
    teardown_h(h);

    h = h_new(); /* growth */
    buy(h, T0, 5000);
    touch(h, TF_KIND_CONTRACT_END, T0 + DAY);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    d = STAGE(h, "explicit_exit", T0 + DAY, "growth", "churned", "contract_end");
    assert_int_equal(fig_i(d, "days_since_purchase"), 1);
    d = NEXT(h, TF_DERIVED_WINBACK_OPPORTUNITY, "explicit_exit", T0 + DAY);
    assert_string_equal(fig_s(d, "cause"), "contract_end");
    assert_int_equal(fig_i(d, "days_since_purchase"), 1);
    NOTHING(h);
    teardown_h(h);

    h = h_new(); /* mature */
    buy(h, T0, 1000000);
    touch(h, TF_KIND_CONTRACT_END, T0 + DAY);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    STAGE(h, "mature_threshold", T0, "growth", "mature", "purchase");
    STAGE(h, "explicit_exit", T0 + DAY, "mature", "churned", "contract_end");
    NEXT(h, TF_DERIVED_WINBACK_OPPORTUNITY, "explicit_exit", T0 + DAY);
    NOTHING(h);
    teardown_h(h);

    h = h_new(); /* decline */
    buy(h, T0, 5000);
    touch(h, TF_KIND_CONTRACT_END, T0 + 31 * DAY);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    CARE(h, "post_purchase", "order:o-e-1", T0 + 3 * DAY);
    STAGE(h, "inactivity", T0 + 30 * DAY, "growth", "decline", "timer");
    SILENT_WARNING(h, T0 + 30 * DAY);
    STAGE(h, "explicit_exit", T0 + 31 * DAY, "decline", "churned", "contract_end");
    d = NEXT(h, TF_DERIVED_WINBACK_OPPORTUNITY, "explicit_exit", T0 + 31 * DAY);
    assert_int_equal(fig_i(d, "churned_count"), 1);
    NOTHING(h);
    teardown_h(h);

    h = h_new(); /* the very first touchpoint: no welcome for a leaving prospect */
    touch(h, TF_KIND_CONTRACT_END, T0);
    STAGE(h, "explicit_exit", T0, "prospect", "churned", "contract_end");
    NOTHING(h);
    assert_int_equal(h->c.welcomed, 0);
    teardown_h(h);
}

/* A purchase while declining: back to growth, or to mature when it qualifies. */
static void test_recovered_purchase(void **state)
{
    (void)state;
    harness *h = h_new();
    buy(h, T0, 5000);
    buy(h, T0 + 40 * DAY, 5000);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    CARE(h, "post_purchase", "order:o-e-1", T0 + 3 * DAY);
    STAGE(h, "inactivity", T0 + 30 * DAY, "growth", "decline", "timer");
    SILENT_WARNING(h, T0 + 30 * DAY);
    const tf_derived_t *d = STAGE(h, "recovered_purchase", T0 + 40 * DAY, "decline", "growth", "purchase");
    assert_int_equal(fig_i(d, "purchases"), 2);
    assert_int_equal(fig_i(d, "tenure_days"), 40);
    assert_int_equal(fig_i(d, "days_since_purchase"), 0);
    d = NEXT(h, TF_DERIVED_CHURN_CLEARED, "purchase", T0 + 40 * DAY);
    assert_int_equal(fig_i(d, "risk"), 0); /* just bought: no signal left */
    assert_int_equal(fig_i(d, "warned_days"), 10);
    NOTHING(h);
    assert_int_equal(h->c.warned, 0);
    teardown_h(h);

    /* Mature declines by inactivity too, and recovers to mature. */
    h = h_new();
    for (int i = 0; i < 5; i++)
        buy(h, T0 + i * 20 * DAY, 1000);
    buy(h, T0 + 130 * DAY, 1000);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    skip_followups(h);
    STAGE(h, "mature_threshold", T0 + 90 * DAY, "growth", "mature", "timer");
    d = STAGE(h, "inactivity", T0 + 120 * DAY, "mature", "decline", "timer");
    assert_int_equal(fig_i(d, "threshold_days"), 40);
    SILENT_WARNING(h, T0 + 120 * DAY);
    d = STAGE(h, "recovered_purchase", T0 + 130 * DAY, "decline", "mature", "purchase");
    assert_int_equal(fig_i(d, "purchases"), 6);
    assert_int_equal(fig_i(d, "tenure_days"), 130);
    d = NEXT(h, TF_DERIVED_CHURN_CLEARED, "purchase", T0 + 130 * DAY);
    assert_int_equal(fig_i(d, "warned_days"), 10);
    NOTHING(h);
    teardown_h(h);
}

/* A purchase after the exit wins the customer back; one dated before the exit is
 * counted, nothing more. */
static void test_winback(void **state)
{
    (void)state;
    harness *h = h_new();
    buy(h, T0, 5000);
    touch(h, TF_KIND_CONTRACT_END, T0 + 10 * DAY);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    CARE(h, "post_purchase", "order:o-e-1", T0 + 3 * DAY);
    STAGE(h, "explicit_exit", T0 + 10 * DAY, "growth", "churned", "contract_end");
    NEXT(h, TF_DERIVED_WINBACK_OPPORTUNITY, "explicit_exit", T0 + 10 * DAY);
    NOTHING(h);

    tf_event_t late = ev_buy(h, T0 + 5 * DAY, 3000, NO_MARGIN, "CNY");
    assert_int_equal(step(h, &late), 0);
    assert_int_equal(h->c.stage, TF_STAGE_CHURNED);
    assert_int_equal(h->c.purchases, 2);
    assert_int_equal(h->c.spend, 8000);

    buy(h, T0 + 40 * DAY, 7000);
    CARE(h, "post_purchase", "order:o-e-3", T0 + 8 * DAY); /* the late order's follow-up */
    const tf_derived_t *d = STAGE(h, "winback_purchase", T0 + 40 * DAY, "churned", "growth", "purchase");
    assert_int_equal(fig_i(d, "purchases"), 3);
    d = NEXT(h, TF_DERIVED_WINBACK_SUCCEEDED, "winback_purchase", T0 + 40 * DAY);
    assert_string_equal(fig_s(d, "order_id"), "o-e-4");
    assert_int_equal(fig_i(d, "amount"), 7000);
    assert_int_equal(fig_i(d, "churned_count"), 1);
    assert_int_equal(fig_i(d, "days_churned"), 30);
    NOTHING(h);
    assert_int_equal(h->c.stage, TF_STAGE_GROWTH);
    teardown_h(h);
}

/* ---- value, tiers, loyalty, satisfaction ---- */

static void test_value(void **state)
{
    (void)state;
    harness *h = h_new();
    touch(h, TF_KIND_CALL, T0);                 /* welcome: one care action */
    buy_m(h, T0 + 1 * HOUR, 10000, 4000);       /* margin given: 4000 */
    buy(h, T0 + 2 * HOUR, 20000);               /* default 30%: 6000 */
    tf_event_t usd = ev_buy(h, T0 + 3 * HOUR, 5000, NO_MARGIN, "USD");
    step(h, &usd);                              /* another currency: counted only */
    buy_m(h, T0 + 4 * HOUR, 3000, -2000);       /* a loss */
    refund(h, T0 + 5 * HOUR, 5000, "CNY");      /* less 30% of it */
    refund(h, T0 + 6 * HOUR, 1000, "USD");      /* ignored */
    touch(h, TF_KIND_CALL, T0 + 7 * HOUR);
    complaint(h, T0 + 8 * HOUR, "cp-1", TF_SEV_LOW);
    CARE(h, "welcome", "welcome", T0);
    STAGE(h, "first_purchase", T0 + HOUR, "prospect", "growth", "purchase");
    NOTHING(h);
    assert_int_equal(h->c.purchases, 4);
    assert_int_equal(h->c.foreign_purchases, 1);
    assert_string_equal(h->c.currency, "CNY");
    assert_int_equal(h->c.spend, 33000);
    assert_int_equal(h->c.margin, 2000);
    assert_int_equal(h->c.refunded, 5000);
    assert_int_equal(h->c.gross_profit, 4000 + 6000 - 2000 - 1500);
    assert_int_equal(h->c.counts[TF_KIND_CALL], 2);
    assert_int_equal(h->c.complaints, 1);
    assert_int_equal(h->c.care_actions, 1);
    /* 6500 - 2 calls x 500 - 1 complaint x 2000 - 1 care x 100 */
    assert_int_equal(tf_customer_value(&h->r, &h->c), 3400);
    teardown_h(h);

    h = h_new();
    h->r.default_margin_pct = 40;
    buy(h, T0, 10000);
    refund(h, T0 + HOUR, 2500, "CNY");
    assert_int_equal(h->c.gross_profit, 3000);
    assert_int_equal(tf_customer_value(&h->r, &h->c), 3000);
    teardown_h(h);
}

static void test_satisfaction_nps(void **state)
{
    (void)state;
    harness *h = h_new();
    touch(h, TF_KIND_WEB_VISIT, T0);
    assert_near(tf_customer_satisfaction(&h->c), -1);
    assert_near(tf_customer_nps(&h->c), -101);
    assert_near(tf_customer_nps_mean(&h->c), -1);
    survey(h, T0 + 1 * HOUR, 8, 6, 10);
    survey(h, T0 + 2 * HOUR, 10, 9, 9);
    survey(h, T0 + 3 * HOUR, 0, 0, 8);  /* NPS only */
    survey(h, T0 + 4 * HOUR, 0, 0, 7);
    survey(h, T0 + 5 * HOUR, 0, 0, 6);
    survey(h, T0 + 6 * HOUR, 0, 0, 3);
    survey(h, T0 + 7 * HOUR, 2, 3, -1); /* satisfaction only */
    assert_int_equal(h->c.surveys_sat, 3);
    assert_near(tf_customer_satisfaction(&h->c), 18.0 / 20.0 * 100); /* S = sum B / sum A */
    assert_int_equal(h->c.nps_count, 6);
    assert_int_equal(h->c.nps_promoters, 2);  /* 9, 10 */
    assert_int_equal(h->c.nps_detractors, 2); /* 0-6 */
    assert_near(tf_customer_nps(&h->c), 0);
    assert_near(tf_customer_nps_mean(&h->c), 43.0 / 6.0);
    survey(h, T0 + 8 * HOUR, 0, 0, 10);
    assert_near(tf_customer_nps(&h->c), 100.0 / 7.0);
    CARE(h, "welcome", "welcome", T0);
    NOTHING(h); /* a prospect is never warned */
    teardown_h(h);
}

/* Tiers by the population's cutoffs: entering needs the enter cutoff, staying the
 * keep cutoff (hysteresis). */
static void test_tiers(void **state)
{
    (void)state;
    harness *h = h_new();
    h_population(h, 1000, 100000, 90000, 50000, 45000);
    buy_m(h, T0, 200000, 60000);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    const tf_derived_t *d = NEXT(h, TF_DERIVED_TIER_CHANGED, "value_rank", T0);
    assert_string_equal(fig_s(d, "from"), "none");
    assert_string_equal(fig_s(d, "to"), "potential");
    assert_int_equal(fig_i(d, "value"), 60000);
    assert_int_equal(fig_i(d, "buyers"), 1000);
    assert_int_equal(fig_i(d, "key_cutoff"), 100000);
    assert_int_equal(fig_i(d, "potential_cutoff"), 50000);
    assert_int_equal(fig_i(d, "purchases"), 1);
    NOTHING(h);
    buy_m(h, T0 + 1 * HOUR, 100000, 40000);
    d = NEXT(h, TF_DERIVED_TIER_CHANGED, "value_rank", T0 + HOUR);
    assert_string_equal(fig_s(d, "from"), "potential");
    assert_string_equal(fig_s(d, "to"), "key");
    assert_int_equal(fig_i(d, "value"), 100000);
    assert_int_equal(fig_i(d, "purchases"), 2);
    NOTHING(h);
    assert_int_equal(h->c.tier_since_ms, T0 + HOUR);
    refund(h, T0 + 2 * HOUR, 20000, "CNY"); /* 94000: under key_enter, over key_keep */
    NOTHING(h);
    assert_int_equal(h->c.tier, TF_TIER_KEY);
    refund(h, T0 + 3 * HOUR, 20000, "CNY"); /* 88000 */
    d = NEXT(h, TF_DERIVED_TIER_CHANGED, "value_rank", T0 + 3 * HOUR);
    assert_string_equal(fig_s(d, "from"), "key");
    assert_string_equal(fig_s(d, "to"), "potential");
    assert_int_equal(fig_i(d, "value"), 88000);
    refund(h, T0 + 4 * HOUR, 140000, "CNY"); /* 46000: kept */
    NOTHING(h);
    assert_int_equal(h->c.tier, TF_TIER_POTENTIAL);
    refund(h, T0 + 5 * HOUR, 10000, "CNY"); /* 43000 */
    d = NEXT(h, TF_DERIVED_TIER_CHANGED, "value_rank", T0 + 5 * HOUR);
    assert_string_equal(fig_s(d, "from"), "potential");
    assert_string_equal(fig_s(d, "to"), "regular");
    assert_int_equal(fig_i(d, "value"), 43000);
    NOTHING(h); /* the refunds left the member level (silver) alone */
    assert_string_equal(h->c.level, "silver");
    teardown_h(h);

    /* The same values entering: 94000 is potential, 46000 regular (silently). */
    h = h_new();
    h_population(h, 1000, 100000, 90000, 50000, 45000);
    buy_m(h, T0, 300000, 94000);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    d = NEXT(h, TF_DERIVED_TIER_CHANGED, "value_rank", T0);
    assert_string_equal(fig_s(d, "to"), "potential");
    NOTHING(h);
    teardown_h(h);
    h = h_new();
    h_population(h, 1000, 100000, 90000, 50000, 45000);
    buy_m(h, T0, 100000, 46000);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    NOTHING(h);
    assert_int_equal(h->c.tier, TF_TIER_REGULAR);
    assert_int_equal(h->c.tier_since_ms, T0);
    teardown_h(h);

    /* Without a population (pop NULL) tiers stay as they are. */
    h = h_new();
    buy_m(h, T0, 300000, 200000);
    assert_int_equal(h->c.tier, TF_TIER_NONE);
    teardown_h(h);
}

static void test_tier_min_population(void **state)
{
    (void)state;
    harness *h = h_new();
    h_population(h, 99, 1000, 900, INT64_MAX, INT64_MAX);
    buy_m(h, T0, 10000, 5000);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    NOTHING(h);
    assert_int_equal(h->c.tier, TF_TIER_REGULAR);
    h->pop.buyers = 100;
    touch(h, TF_KIND_WEB_VISIT, T0 + HOUR);
    const tf_derived_t *d = NEXT(h, TF_DERIVED_TIER_CHANGED, "value_rank", T0 + HOUR);
    assert_string_equal(fig_s(d, "from"), "regular");
    assert_string_equal(fig_s(d, "to"), "key");
    assert_int_equal(fig_i(d, "value"), 5000);
    assert_int_equal(fig_i(d, "buyers"), 100);
    assert_int_equal(fig_i(d, "key_cutoff"), 1000);
    assert_null(fig(d, "potential_cutoff")); /* the share holds nobody */
    NOTHING(h);
    teardown_h(h);
}

/* A one-off buyer turns temporary after temporary_after_days, to the ms, and regular
 * again with a second purchase. */
static void test_tier_temporary(void **state)
{
    (void)state;
    harness *h = h_new();
    h->r.temporary_after_days = 100;
    h_population(h, 1000, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX);
    buy(h, T0, 10000);
    run(h, T0 + 100 * DAY - 1);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    CARE(h, "post_purchase", "order:o-e-1", T0 + 3 * DAY);
    STAGE(h, "inactivity", T0 + 30 * DAY, "growth", "decline", "timer");
    SILENT_WARNING(h, T0 + 30 * DAY);
    NOTHING(h);
    assert_int_equal(h->c.due[TF_TIMER_REVIEW], T0 + 100 * DAY);
    run(h, T0 + 100 * DAY);
    const tf_derived_t *d = NEXT(h, TF_DERIVED_TIER_CHANGED, "one_off_buyer", T0 + 100 * DAY);
    assert_string_equal(fig_s(d, "from"), "regular");
    assert_string_equal(fig_s(d, "to"), "temporary");
    assert_int_equal(fig_i(d, "value"), 3000 - 100);
    assert_null(fig(d, "key_cutoff"));
    assert_int_equal(fig_i(d, "purchases"), 1);
    NOTHING(h);
    buy(h, T0 + 120 * DAY, 10000);
    STAGE(h, "recovered_purchase", T0 + 120 * DAY, "decline", "growth", "purchase");
    d = NEXT(h, TF_DERIVED_CHURN_CLEARED, "purchase", T0 + 120 * DAY);
    assert_int_equal(fig_i(d, "warned_days"), 90);
    d = NEXT(h, TF_DERIVED_TIER_CHANGED, "value_rank", T0 + 120 * DAY);
    assert_string_equal(fig_s(d, "from"), "temporary");
    assert_string_equal(fig_s(d, "to"), "regular");
    assert_int_equal(fig_i(d, "purchases"), 2);
    NOTHING(h);
    teardown_h(h);
}

/* Points per 100 spent (net of refunds), levels by points; the first level is silent. */
static void test_loyalty(void **state)
{
    (void)state;
    harness *h = h_new();
    buy(h, T0, 99999);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    NOTHING(h);
    assert_int_equal(h->c.points, 999);
    assert_string_equal(h->c.level, "member");
    buy(h, T0 + 1 * HOUR, 1);
    const tf_derived_t *d = NEXT(h, TF_DERIVED_LOYALTY_LEVEL_CHANGED, "points", T0 + HOUR);
    assert_string_equal(fig_s(d, "from"), "member");
    assert_string_equal(fig_s(d, "to"), "silver");
    assert_int_equal(fig_i(d, "points"), 1000);
    assert_int_equal(fig_i(d, "min_points"), 1000);
    NOTHING(h);
    refund(h, T0 + 2 * HOUR, 1, "CNY");
    d = NEXT(h, TF_DERIVED_LOYALTY_LEVEL_CHANGED, "points", T0 + 2 * HOUR);
    assert_string_equal(fig_s(d, "from"), "silver");
    assert_string_equal(fig_s(d, "to"), "member");
    assert_int_equal(fig_i(d, "points"), 999);
    assert_int_equal(fig_i(d, "min_points"), 0);
    NOTHING(h);
    buy(h, T0 + 3 * HOUR, 2000000); /* past gold to platinum, and mature by spend */
    STAGE(h, "mature_threshold", T0 + 3 * HOUR, "growth", "mature", "purchase");
    d = NEXT(h, TF_DERIVED_LOYALTY_LEVEL_CHANGED, "points", T0 + 3 * HOUR);
    assert_string_equal(fig_s(d, "from"), "member");
    assert_string_equal(fig_s(d, "to"), "platinum");
    assert_int_equal(fig_i(d, "points"), 20999);
    assert_int_equal(fig_i(d, "min_points"), 20000);
    NOTHING(h);
    teardown_h(h);

    h = h_new();
    h->r.points_per_unit = 2;
    buy(h, T0, 50000);
    assert_int_equal(h->c.points, 1000);
    assert_string_equal(h->c.level, "silver"); /* a first level, silently */
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    NOTHING(h);
    teardown_h(h);
}

/* ---- out of order ---- */

static void test_out_of_order(void **state)
{
    (void)state;
    harness *h = h_new();
    touch(h, TF_KIND_WEB_VISIT, T0 + 10 * DAY);
    touch(h, TF_KIND_WEB_VISIT, T0 + 5 * DAY);
    CARE(h, "welcome", "welcome", T0 + 10 * DAY);
    NOTHING(h);
    assert_int_equal(h->c.counts[TF_KIND_WEB_VISIT], 2);
    assert_int_equal(h->c.last_seen_ms, T0 + 10 * DAY);
    assert_int_equal(h->c.first_seen_ms, T0 + 5 * DAY);
    assert_int_equal(h->c.clock_ms, T0 + 10 * DAY);
    teardown_h(h);

    /* A late purchase clears a standing warning; the transition it causes happens
     * now, not back in time. */
    h = h_new();
    churn_risk_story(h);
    const int64_t now = T0 + 25 * DAY + HOUR;
    tf_event_t late = ev_buy(h, T0 + 20 * DAY, 10000, NO_MARGIN, "CNY");
    step(h, &late);
    STAGE(h, "recovered_purchase", now, "decline", "growth", "purchase");
    const tf_derived_t *d = NEXT(h, TF_DERIVED_CHURN_CLEARED, "purchase", now);
    assert_int_equal(fig_i(d, "risk"), 45);
    NOTHING(h);
    assert_int_equal(h->c.warned, 0);
    assert_int_equal(h->c.stage_since_ms, now);
    assert_int_equal(h->c.history[0].at_ms, now);
    assert_int_equal(h->c.last_seen_ms, now);
    assert_int_equal(h->c.last_purchase_ms, T0 + 20 * DAY);
    assert_int_equal(h->c.purchases, 2);
    run(h, now);
    CARE(h, "post_purchase", "order:o-e-5", T0 + 23 * DAY);
    NOTHING(h);
    teardown_h(h);
}

/* ---- ids, timers ---- */

static void id_story(harness *h, int64_t t)
{
    buy(h, t, 5000);
    touch(h, TF_KIND_WEB_VISIT, t + 2 * DAY);
    run(h, t + 40 * DAY);
}

static void test_deterministic_ids(void **state)
{
    (void)state;
    harness *a = h_new(), *b = h_new(), *c = h_new();
    id_story(a, T0);
    id_story(b, T0);
    id_story(c, T0 + HOUR);
    assert_int_equal(a->n, 4); /* first_purchase, follow-up, inactivity, its churn warning */
    assert_int_equal(b->n, a->n);
    assert_int_equal(c->n, a->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_string_equal(a->log[i].id, b->log[i].id);
        assert_int_equal(a->log[i].time_ms, b->log[i].time_ms);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(a->log[i].id, a->log[j].id);
    }
    /* A touchpoint's derived ids come from its source and id; a timer's from the
     * customer, the timer and its due time. */
    assert_string_equal(a->log[0].id, c->log[0].id);
    assert_string_not_equal(a->log[1].id, c->log[1].id);
    assert_string_not_equal(a->log[2].id, c->log[2].id);
    assert_string_not_equal(a->log[3].id, c->log[3].id);
    assert_int_equal(c->log[2].time_ms, T0 + HOUR + 30 * DAY);
    assert_int_equal(c->log[3].time_ms, T0 + HOUR + 30 * DAY);
    teardown_h(a);
    teardown_h(b);
    teardown_h(c);
}

/* A welcome, one purchase, then a year of silence. */
static void silence(harness *h)
{
    h_calendar(h);
    touch(h, TF_KIND_WEB_VISIT, T0);
    buy(h, T0 + HOUR, 5000);
}

static void test_year_of_silence(void **state)
{
    (void)state;
    harness *h = h_new();
    silence(h);
    const int64_t p = T0 + HOUR;
    run(h, T0 + 365 * DAY);
    CARE(h, "welcome", "welcome", T0);
    STAGE(h, "first_purchase", p, "prospect", "growth", "purchase");
    CARE(h, "post_purchase", "order:o-e-2", p + 3 * DAY);
    const tf_derived_t *d = STAGE(h, "inactivity", p + 30 * DAY, "growth", "decline", "timer");
    assert_int_equal(fig_i(d, "threshold_days"), 30);
    SILENT_WARNING(h, p + 30 * DAY);
    d = CARE(h, "festival", "spring_festival:2026", at(2026, 2, 14, 0, 0));
    assert_string_equal(fig_s(d, "stage"), "decline");
    CARE(h, "festival", "dragon_boat:2026", at(2026, 6, 16, 0, 0));
    STAGE(h, "no_purchase", p + 180 * DAY, "decline", "churned", "timer");
    d = NEXT(h, TF_DERIVED_WINBACK_OPPORTUNITY, "no_purchase", p + 180 * DAY);
    assert_int_equal(fig_i(d, "days_since_purchase"), 180);
    NOTHING(h); /* no mid-autumn, national day or anniversary for a churned customer */
    assert_int_equal(p + 180 * DAY, at(2026, 7, 5, 13, 15));
    assert_int_equal(tf_customer_next_due(&h->c), 0);
    assert_int_equal(h->c.clock_ms, T0 + 365 * DAY);
    assert_int_equal(h->c.care_actions, 4);
    teardown_h(h);
}

/* With room for one firing's events per call, *more asks for the next call, and the
 * calls together give exactly what one call gives. */
static void test_advance_cap(void **state)
{
    (void)state;
    harness *one = h_new(), *h = h_new();
    silence(one);
    silence(h);
    run(one, T0 + 365 * DAY);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    int more = 1, calls = 0, mores = 0;
    while (more) {
        size_t k = tf_lifecycle_advance(&h->r, NULL, CUSTOMER, &h->c, T0 + 365 * DAY, out, TF_LIFECYCLE_MAX_DERIVED,
                                        &more);
        assert_true(k >= 1);
        h_append(h, out, k);
        calls++;
        mores += more;
        assert_true(calls < 50);
    }
    assert_int_equal(calls, 5); /* follow-up, decline, two festivals, churned + win-back */
    assert_int_equal(mores, 4);
    assert_int_equal(h->n, one->n);
    for (size_t i = 0; i < h->n; i++) {
        assert_string_equal(h->log[i].id, one->log[i].id);
        assert_int_equal(h->log[i].type, one->log[i].type);
        assert_int_equal(h->log[i].time_ms, one->log[i].time_ms);
    }
    assert_memory_equal(&h->c, &one->c, sizeof h->c);
    teardown_h(one);
    teardown_h(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_names, free_all),
        cmocka_unit_test_teardown(test_rfm_scores, free_all),
        cmocka_unit_test_teardown(test_tier_self_ranked, free_all),
        cmocka_unit_test_teardown(test_first_touch_welcome, free_all),
        cmocka_unit_test_teardown(test_first_purchase, free_all),
        cmocka_unit_test_teardown(test_mature_by_tenure_timer, free_all),
        cmocka_unit_test_teardown(test_mature_by_tenure_later, free_all),
        cmocka_unit_test_teardown(test_mature_by_purchase, free_all),
        cmocka_unit_test_teardown(test_mature_by_spend, free_all),
        cmocka_unit_test_teardown(test_decline_inactivity_floor, free_all),
        cmocka_unit_test_teardown(test_decline_inactivity_factor, free_all),
        cmocka_unit_test_teardown(test_decline_spend, free_all),
        cmocka_unit_test_teardown(test_decline_churn_risk, free_all),
        cmocka_unit_test_teardown(test_churn_warning_hysteresis, free_all),
        cmocka_unit_test_teardown(test_decline_to_churned, free_all),
        cmocka_unit_test_teardown(test_silent_churner, free_all),
        cmocka_unit_test_teardown(test_explicit_exit, free_all),
        cmocka_unit_test_teardown(test_recovered_purchase, free_all),
        cmocka_unit_test_teardown(test_winback, free_all),
        cmocka_unit_test_teardown(test_value, free_all),
        cmocka_unit_test_teardown(test_satisfaction_nps, free_all),
        cmocka_unit_test_teardown(test_tiers, free_all),
        cmocka_unit_test_teardown(test_tier_min_population, free_all),
        cmocka_unit_test_teardown(test_tier_temporary, free_all),
        cmocka_unit_test_teardown(test_loyalty, free_all),
        cmocka_unit_test_teardown(test_out_of_order, free_all),
        cmocka_unit_test_teardown(test_deterministic_ids, free_all),
        cmocka_unit_test_teardown(test_year_of_silence, free_all),
        cmocka_unit_test_teardown(test_advance_cap, free_all),
        cmocka_unit_test_teardown(test_sums_saturate, free_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
