/* Unit tests for pkg/lifecycle/insight.c: favourite items, the preferred channel,
 * the purchase rhythm with its replenishment reminder and purchase.overdue (and the
 * churn risk overdue adds), campaign attribution and the exit reason. Each rule
 * and its boundaries, driven as the pipeline drives the engine. */
#include "lifecycle_harness.h"

/* ---- stories ---- */

/* A purchase of items skus[i] x qty[i] through channel ("" for none). */
static void buy_items(harness *h, int64_t t, const char *channel, const char *const *skus, const int64_t *qty,
                      size_t n)
{
    tf_event_t ev = ev_buy(h, t, 10000, NO_MARGIN, "CNY");
    snprintf(ev.channel, sizeof ev.channel, "%s", channel);
    for (size_t i = 0; i < n; i++) {
        snprintf(ev.items[i].sku, sizeof ev.items[i].sku, "%s", skus[i]);
        ev.items[i].qty = qty[i];
    }
    ev.nitems = n;
    step(h, &ev);
}

static void buy_via(harness *h, int64_t t, const char *channel)
{
    buy_items(h, t, channel, NULL, NULL, 0);
}

/* A touchpoint of kind with its channel/platform, action/outcome and direction. */
static void engage(harness *h, tf_event_kind kind, int64_t t, const char *channel, const char *action,
                   tf_call_direction dir)
{
    tf_event_t ev = ev_new(h, kind, t);
    snprintf(ev.channel, sizeof ev.channel, "%s", channel);
    snprintf(ev.action, sizeof ev.action, "%s", action);
    ev.direction = dir;
    step(h, &ev);
}

static void touch_campaign(harness *h, tf_event_kind kind, int64_t t, const char *action, const char *campaign)
{
    tf_event_t ev = ev_new(h, kind, t);
    snprintf(ev.action, sizeof ev.action, "%s", action);
    snprintf(ev.campaign, sizeof ev.campaign, "%s", campaign);
    step(h, &ev);
}

static void exit_with(harness *h, tf_event_kind kind, int64_t t, const char *reason)
{
    tf_event_t ev = ev_new(h, kind, t);
    snprintf(ev.reason, sizeof ev.reason, "%s", reason);
    step(h, &ev);
}

/* The k-th string of d's favourite_items (a TF_FIG_ITEMS figure), or NULL. */
static const char *fav_at(const tf_derived_t *d, int64_t k)
{
    const tf_figure *f = fig_of(d, "favourite_items", TF_FIG_ITEMS);
    const char *s = f->str;
    if (k >= f->i)
        return NULL;
    while (k-- > 0)
        s += strlen(s) + 1;
    return s;
}

static double score_of(const tf_customer_t *c, const char *name)
{
    for (size_t i = 0; i < c->nchannel_scores; i++)
        if (strcmp(c->channel_scores[i].name, name) == 0)
            return c->channel_scores[i].score;
    return -1;
}

static const char *date_of(int64_t ms)
{
    static char buf[4][16];
    static int i;
    i = (i + 1) % 4;
    tf_lc_format_date(ms, buf[i]);
    return buf[i];
}

/* ---- favourite items ---- */

/* Most bought first, the latest bought first among equals; a new SKU in a full
 * table takes the place of the least bought (the longest ago among equals). */
static void test_favourites_order_and_eviction(void **state)
{
    (void)state;
    harness *h = h_new();
    const char *ab[] = {"A", "B"};
    buy_items(h, T0, "", ab, (int64_t[]){2, 1}, 2);
    assert_int_equal(h->c.nfavourites, 2);
    assert_string_equal(h->c.favourites[0].sku, "A");
    assert_int_equal(h->c.favourites[0].qty, 2);
    buy_items(h, T0 + DAY, "", (const char *[]){"B"}, (int64_t[]){1}, 1);
    assert_string_equal(h->c.favourites[0].sku, "B"); /* 2 as A, bought later */
    assert_string_equal(h->c.favourites[1].sku, "A");
    /* Eight new SKUs once each: C..H fill the table, I and J push out C and D. */
    const char *more[] = {"C", "D", "E", "F", "G", "H", "I", "J"};
    buy_items(h, T0 + 2 * DAY, "", more, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1}, 8);
    assert_int_equal(h->c.nfavourites, TF_FAVOURITES);
    const char *want[] = {"B", "A", "J", "I", "H", "G", "F", "E"};
    for (int i = 0; i < TF_FAVOURITES; i++)
        assert_string_equal(h->c.favourites[i].sku, want[i]);
    /* Quantities add up; the same SKU twice in one order too. */
    buy_items(h, T0 + 3 * DAY, "", (const char *[]){"E", "E"}, (int64_t[]){2, 3}, 2);
    assert_string_equal(h->c.favourites[0].sku, "E");
    assert_int_equal(h->c.favourites[0].qty, 6);
    /* The follow-up of that purchase names the three most bought. */
    h->cur = h->n;
    run(h, T0 + 6 * DAY);
    const tf_derived_t *d = CARE(h, "post_purchase", "order:o-e-4", T0 + 6 * DAY);
    assert_int_equal(fig_of(d, "favourite_items", TF_FIG_ITEMS)->i, 3);
    assert_string_equal(fav_at(d, 0), "E");
    assert_string_equal(fav_at(d, 1), "B");
    assert_string_equal(fav_at(d, 2), "A");
    NOTHING(h);
    teardown_h(h);
}

/* A win-back opportunity offers what the customer bought most; a customer whose
 * purchases named no items gets no figure. */
static void test_favourites_in_winback(void **state)
{
    (void)state;
    harness *h = h_new();
    buy_items(h, T0, "", (const char *[]){"tea,green", "cup"}, (int64_t[]){1, 4}, 2);
    h->cur = h->n;
    exit_with(h, TF_KIND_CONTRACT_END, T0 + DAY, "moved");
    STAGE(h, "explicit_exit", T0 + DAY, "growth", "churned", "contract_end");
    const tf_derived_t *d = NEXT(h, TF_DERIVED_WINBACK_OPPORTUNITY, "explicit_exit", T0 + DAY);
    assert_int_equal(fig_of(d, "favourite_items", TF_FIG_ITEMS)->i, 2);
    assert_string_equal(fav_at(d, 0), "cup");
    assert_string_equal(fav_at(d, 1), "tea,green"); /* a comma stays inside its item */
    NOTHING(h);

    harness *g = h_new();
    buy(g, T0, 10000);
    g->cur = g->n;
    exit_with(g, TF_KIND_CONTRACT_END, T0 + DAY, "");
    g->cur++;
    assert_null(fig(NEXT(g, TF_DERIVED_WINBACK_OPPORTUNITY, "explicit_exit", T0 + DAY), "favourite_items"));
    teardown_h(g);
    teardown_h(h);
}

/* ---- preferred channel ---- */

/* What each touchpoint counts for: purchases through their channel, answers
 * through theirs; a bounce, a missed outbound call and kinds without a channel
 * count for nothing. At one time nothing decays: every answer weighs 1. */
static void test_channel_of_each_kind(void **state)
{
    (void)state;
    harness *h = h_new();
    engage(h, TF_KIND_EMAIL, T0, "", "bounce", TF_DIR_NONE);
    engage(h, TF_KIND_CALL, T0, "", "missed", TF_DIR_OUTBOUND);
    engage(h, TF_KIND_EVENT_ATTENDANCE, T0, "", "seminar", TF_DIR_NONE);
    engage(h, TF_KIND_COMPLAINT, T0, "phone", "", TF_DIR_NONE);
    buy_via(h, T0, "");
    assert_int_equal(h->c.nchannel_scores, 0);
    assert_null(tf_customer_preferred_channel(&h->c));

    engage(h, TF_KIND_EMAIL, T0, "", "open", TF_DIR_NONE);
    engage(h, TF_KIND_EMAIL, T0, "", "click", TF_DIR_NONE);
    engage(h, TF_KIND_CALL, T0, "", "", TF_DIR_INBOUND);
    engage(h, TF_KIND_CALL, T0, "", "answered", TF_DIR_OUTBOUND);
    engage(h, TF_KIND_CALL, T0, "", "voicemail", TF_DIR_OUTBOUND);
    engage(h, TF_KIND_WEB_VISIT, T0, "", "", TF_DIR_NONE);
    engage(h, TF_KIND_WEB_VISIT, T0, "app", "", TF_DIR_NONE);
    engage(h, TF_KIND_STORE_VISIT, T0, "", "", TF_DIR_NONE);
    engage(h, TF_KIND_SOCIAL, T0, "", "like", TF_DIR_NONE);
    engage(h, TF_KIND_SOCIAL, T0, "wechat", "message", TF_DIR_NONE);
    assert_true(score_of(&h->c, "email") == 2);
    assert_true(score_of(&h->c, "phone") == 2);
    assert_true(score_of(&h->c, "web") == 1);
    assert_true(score_of(&h->c, "app") == 1);
    assert_true(score_of(&h->c, "store") == 1);
    assert_true(score_of(&h->c, "social") == 1);
    assert_true(score_of(&h->c, "wechat") == 1);
    assert_int_equal(h->c.nchannel_scores, 7);
    /* Between equals the one that scored last leads. */
    assert_string_equal(tf_customer_preferred_channel(&h->c), "phone");
    /* A purchase weighs 3. */
    buy_via(h, T0, "mini_program");
    assert_true(score_of(&h->c, "mini_program") == 3);
    assert_string_equal(tf_customer_preferred_channel(&h->c), "mini_program");
    assert_int_equal(h->c.nchannel_scores, TF_CHANNEL_SCORES);
    /* A ninth channel takes the weakest place: social, the earliest of the 1s left
     * at the end. */
    assert_string_equal(h->c.channel_scores[TF_CHANNEL_SCORES - 1].name, "web");
    engage(h, TF_KIND_SOCIAL, T0, "douyin", "share", TF_DIR_NONE);
    assert_int_equal(h->c.nchannel_scores, TF_CHANNEL_SCORES);
    assert_true(score_of(&h->c, "web") < 0);
    assert_true(score_of(&h->c, "douyin") == 1);

    /* weight_engagement 0: answers count for nothing, purchases still do. */
    harness *g = h_new();
    g->r.preference_weight_engagement = 0;
    engage(g, TF_KIND_EMAIL, T0, "", "open", TF_DIR_NONE);
    assert_int_equal(g->c.nchannel_scores, 0);
    buy_via(g, T0, "store");
    assert_string_equal(tf_customer_preferred_channel(&g->c), "store");
    teardown_h(g);
    teardown_h(h);
}

/* Recent behaviour weighs more: scores halve every half life. A purchase through
 * the store (3) leads an email open (1) of the same day; 90 days later one click
 * (1 + 1/2) draws level with the store's 1.5, and the latest to score leads. */
static void test_channel_decay(void **state)
{
    (void)state;
    harness *h = h_new();
    buy_via(h, T0, "store");
    engage(h, TF_KIND_EMAIL, T0, "", "open", TF_DIR_NONE);
    assert_string_equal(tf_customer_preferred_channel(&h->c), "store");
    engage(h, TF_KIND_EMAIL, T0 + 90 * DAY - 1, "", "click", TF_DIR_NONE);
    assert_true(score_of(&h->c, "email") < score_of(&h->c, "store"));
    assert_string_equal(tf_customer_preferred_channel(&h->c), "store");
    harness *e = h_new();
    buy_via(e, T0, "store");
    engage(e, TF_KIND_EMAIL, T0, "", "open", TF_DIR_NONE);
    engage(e, TF_KIND_EMAIL, T0 + 90 * DAY, "", "click", TF_DIR_NONE);
    assert_true(score_of(&e->c, "store") == 1.5);
    assert_true(score_of(&e->c, "email") == 1.5);
    assert_string_equal(tf_customer_preferred_channel(&e->c), "email");
    teardown_h(e);
    engage(h, TF_KIND_EMAIL, T0 + 90 * DAY, "", "open", TF_DIR_NONE);
    assert_string_equal(tf_customer_preferred_channel(&h->c), "email");
    assert_int_equal(h->c.channel_scores_at_ms, T0 + 90 * DAY);
    /* A late record adds its weight as decayed to the time the scores are at, and
     * moves that time not. */
    buy_via(h, T0 - 90 * DAY, "web");
    assert_near(score_of(&h->c, "web"), 0.75);
    assert_int_equal(h->c.channel_scores_at_ms, T0 + 90 * DAY);
    /* The half life is a setting. */
    harness *g = h_new();
    g->r.preference_half_life_days = 30;
    buy_via(g, T0, "store");
    engage(g, TF_KIND_EMAIL, T0 + 60 * DAY, "", "open", TF_DIR_NONE);
    assert_near(score_of(&g->c, "store"), 0.75);
    assert_string_equal(tf_customer_preferred_channel(&g->c), "email");
    teardown_h(g);
    teardown_h(h);
}

/* Every derived event carries the preferred channel once known, in ctx and as the
 * last figure; referral.credited (about the referrer) does not. */
static void test_preferred_channel_in_events(void **state)
{
    (void)state;
    harness *h = h_new();
    touch(h, TF_KIND_PROFILE, T0 - DAY); /* welcome: no channel known yet */
    const tf_derived_t *w = CARE(h, "welcome", "welcome", T0 - DAY);
    assert_null(fig(w, "preferred_channel"));
    assert_string_equal(w->ctx.preferred_channel, "");
    tf_strlcpy(h->c.referred_by, "r-9", sizeof h->c.referred_by);
    buy_via(h, T0, "app");
    const tf_derived_t *d = STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    assert_string_equal(d->ctx.preferred_channel, "app");
    assert_string_equal(fig_s(d, "preferred_channel"), "app");
    assert_string_equal(d->figures[d->nfigures - 1].name, "preferred_channel");
    const tf_derived_t *r = NEXT(h, TF_DERIVED_REFERRAL_CREDITED, "referred_first_purchase", T0);
    assert_null(fig(r, "preferred_channel"));
    assert_string_equal(r->ctx.preferred_channel, "");
    run(h, T0 + 3 * DAY);
    assert_string_equal(fig_s(CARE(h, "post_purchase", "order:o-e-2", T0 + 3 * DAY), "preferred_channel"), "app");
    NOTHING(h);
    teardown_h(h);
}

/* ---- the purchase rhythm ---- */

/* Welford over the intervals, in days: 30 and 36 give a mean of 33 and a sample
 * deviation of sqrt(18); confidence 2/3 x (1 - sqrt(18)/33) = 0.581. */
static void test_rhythm_figures(void **state)
{
    (void)state;
    harness *h = h_new();
    h_rhythm(h);
    buy(h, T0, 10000);
    assert_int_equal(h->c.intervals, 0);
    assert_int_equal(h->c.next_purchase_ms, 0);
    buy(h, T0 + 30 * DAY, 10000);
    /* One interval: an expected date, no spread to trust it by. */
    assert_int_equal(h->c.intervals, 1);
    assert_int_equal(h->c.next_purchase_ms, T0 + 60 * DAY);
    assert_true(h->c.next_purchase_confidence == 0);
    assert_false(tf_customer_has_rhythm(&h->r, &h->c));
    buy(h, T0 + 66 * DAY, 10000);
    assert_int_equal(h->c.intervals, 2);
    assert_near(h->c.interval_mean_days, 33);
    assert_near(h->c.interval_m2, 18);
    assert_int_equal(h->c.next_purchase_ms, T0 + 99 * DAY);
    assert_true(h->c.next_purchase_confidence == 0.581);
    assert_true(tf_customer_has_rhythm(&h->r, &h->c)); /* default: 2 intervals, 0.5 */
    /* The thresholds, at their boundaries. */
    h->r.rhythm_min_confidence_pct = 58;
    assert_true(tf_customer_has_rhythm(&h->r, &h->c));
    h->r.rhythm_min_confidence_pct = 59;
    assert_false(tf_customer_has_rhythm(&h->r, &h->c));
    h->r.rhythm_min_confidence_pct = 50;
    h->r.rhythm_min_intervals = 3;
    assert_false(tf_customer_has_rhythm(&h->r, &h->c));
    /* A third interval of 33: mean 33, deviation 3; 3/4 x (1 - 3/33) = 0.682. */
    buy(h, T0 + 99 * DAY, 10000);
    assert_true(h->c.next_purchase_confidence == 0.682);
    assert_true(tf_customer_has_rhythm(&h->r, &h->c));
    h->r.rhythm_min_intervals = 0; /* off */
    assert_false(tf_customer_has_rhythm(&h->r, &h->c));
    /* Steady intervals: only their number limits the confidence. */
    harness *g = h_new();
    for (int k = 0; k < 5; k++)
        buy(g, T0 + k * 7 * DAY, 100);
    assert_true(g->c.next_purchase_confidence == 0.8);
    /* As spread as their mean (cv 1 or more): none. */
    harness *s = h_new();
    h_rhythm(s);
    buy(s, T0, 100);
    buy(s, T0 + 1 * DAY, 100);
    buy(s, T0 + 31 * DAY, 100);
    buy(s, T0 + 32 * DAY, 100);
    assert_true(s->c.next_purchase_confidence == 0);
    assert_false(tf_customer_has_rhythm(&s->r, &s->c));
    teardown_h(s);
    teardown_h(g);
    teardown_h(h);
}

/* A purchase within rules.replenishment.min_interval_hours of the last is the same
 * shopping trip: no interval (the next one counts from it). Late purchases: one
 * before the first adds its interval; one between two others leaves the rhythm. */
static void test_rhythm_trips_and_late_purchases(void **state)
{
    (void)state;
    harness *h = h_new();
    buy(h, T0, 100);
    buy(h, T0 + 23 * HOUR, 100);
    assert_int_equal(h->c.intervals, 0);
    buy(h, T0 + 23 * HOUR + DAY, 100); /* exactly min_interval_hours: an interval */
    assert_int_equal(h->c.intervals, 1);
    assert_near(h->c.interval_mean_days, 1);
    harness *z = h_new();
    z->r.rhythm_min_interval_hours = 0;
    buy(z, T0, 100);
    buy(z, T0 + HOUR, 100);
    assert_int_equal(z->c.intervals, 1);

    harness *g = h_new();
    buy(g, T0 + 10 * DAY, 100);
    buy(g, T0 + 40 * DAY, 100);
    buy(g, T0 + 20 * DAY, 100); /* between: the interval it splits is not kept */
    assert_int_equal(g->c.intervals, 1);
    assert_int_equal(g->c.next_purchase_ms, T0 + 70 * DAY);
    buy(g, T0, 100); /* before the first: 10 days more */
    assert_int_equal(g->c.intervals, 2);
    assert_near(g->c.interval_mean_days, 20);
    assert_int_equal(g->c.next_purchase_ms, T0 + 60 * DAY); /* from the latest purchase */
    assert_true(g->c.next_purchase_confidence == 0.195); /* 2/3 x (1 - 14.14/20) */
    teardown_h(g);
    teardown_h(z);
    teardown_h(h);
}

/* Three purchases 30 days apart: the replenishment reminder 3 days before the
 * expected purchase, purchase.overdue 7 days after it (with the churn risk it
 * adds), each once per expected date; the next purchase clears the overdue risk
 * and sets a new date. */
static void test_replenishment_and_overdue(void **state)
{
    (void)state;
    harness *h = h_new();
    h_rhythm(h);
    const char *tea[] = {"tea"};
    for (int k = 0; k < 3; k++)
        buy_items(h, T0 + k * 30 * DAY, "app", tea, (int64_t[]){1}, 1);
    assert_int_equal(h->c.due[TF_TIMER_REPLENISHMENT], T0 + 87 * DAY);
    assert_int_equal(h->c.due[TF_TIMER_OVERDUE], T0 + 97 * DAY);
    h->cur = h->n;
    run(h, T0 + 100 * DAY);
    skip_followups(h);
    const tf_derived_t *d = CARE(h, "replenishment", "replenishment:2026-04-06", T0 + 87 * DAY);
    assert_string_equal(date_of(T0 + 90 * DAY), "2026-04-06");
    assert_string_equal(fig_s(d, "date"), "2026-04-06");
    assert_near(fig_n(d, "confidence"), 0.667);
    assert_string_equal(fav_at(d, 0), "tea");
    assert_string_equal(fig_s(d, "stage"), "growth");
    assert_string_equal(fig_s(d, "preferred_channel"), "app");
    assert_string_equal(d->ctx.care_kind, "replenishment");
    d = NEXT(h, TF_DERIVED_PURCHASE_OVERDUE, "purchase_rhythm", T0 + 97 * DAY);
    assert_string_equal(fig_s(d, "expected_date"), "2026-04-06");
    assert_int_equal(fig_i(d, "days_overdue"), 7);
    assert_near(fig_n(d, "confidence"), 0.667);
    assert_int_equal(fig_i(d, "intervals"), 2);
    assert_int_equal(fig_i(d, "days_since_purchase"), 37);
    assert_string_equal(fig_s(d, "stage"), "growth");
    assert_string_equal(fig_s(d, "channels"), "email,sms,phone");
    NOTHING(h);
    /* Inactivity (37 - 30) / 30 x 60 = 14, and overdue 10. */
    assert_int_equal(h->c.risk, 24);
    char reasons[96];
    tf_lc_risk(&h->r, &h->c, T0 + 97 * DAY, reasons, sizeof reasons);
    assert_string_equal(reasons, "inactivity,overdue");
    assert_int_equal(tf_lc_risk(&h->r, &h->c, T0 + 97 * DAY - 1, reasons, sizeof reasons), 14);
    /* Once per expected date: nothing more for it. */
    assert_int_equal(h->c.due[TF_TIMER_REPLENISHMENT], 0);
    assert_int_equal(h->c.due[TF_TIMER_OVERDUE], 0);
    run(h, T0 + 110 * DAY);
    NOTHING(h);
    /* A purchase clears the overdue signal and sets a new date: intervals 30, 30,
     * 40, mean 33.33 days, confidence 3/4 x (1 - 5.77/33.33) = 0.620. */
    buy(h, T0 + 100 * DAY, 10000);
    assert_int_equal(h->c.risk, 0);
    assert_true(h->c.next_purchase_confidence == 0.62);
    int64_t next = T0 + 100 * DAY + llround(h->c.interval_mean_days * DAY);
    assert_int_equal(h->c.next_purchase_ms, next);
    h->cur = h->n;
    run(h, next - 3 * DAY);
    skip_followups(h);
    char occasion[48];
    snprintf(occasion, sizeof occasion, "replenishment:%s", date_of(next));
    assert_string_equal(occasion, "replenishment:2026-05-19");
    CARE(h, "replenishment", occasion, next - 3 * DAY);
    NOTHING(h);
    teardown_h(h);
}

/* The care rules hold: no rhythm, no reminder; a churned customer gets neither;
 * a reminder that would come before the purchase it follows is none (overdue
 * still comes). */
static void test_replenishment_boundaries(void **state)
{
    (void)state;
    harness *h = h_new();
    h_rhythm(h);
    buy(h, T0, 100);
    buy(h, T0 + 30 * DAY, 100);
    h->cur = h->n;
    run(h, T0 + 80 * DAY); /* one interval: no rhythm */
    assert_int_equal(count(h, TF_DERIVED_CARE_REMINDER, "replenishment"), 0);
    assert_int_equal(count(h, TF_DERIVED_PURCHASE_OVERDUE, NULL), 0);

    harness *c = h_new();
    h_rhythm(c);
    for (int k = 0; k < 3; k++)
        buy(c, T0 + k * 30 * DAY, 100);
    exit_with(c, TF_KIND_CONTRACT_END, T0 + 61 * DAY, "moved");
    assert_int_equal(c->c.stage, TF_STAGE_CHURNED);
    assert_int_equal(c->c.due[TF_TIMER_REPLENISHMENT], 0);
    assert_int_equal(c->c.due[TF_TIMER_OVERDUE], 0);
    run(c, T0 + 120 * DAY);
    assert_int_equal(count(c, TF_DERIVED_CARE_REMINDER, "replenishment"), 0);
    assert_int_equal(count(c, TF_DERIVED_PURCHASE_OVERDUE, NULL), 0);

    /* Every 2 days with 3 days' notice: the reminder would precede the purchase. */
    harness *s = h_new();
    h_rhythm(s);
    for (int k = 0; k < 3; k++)
        buy(s, T0 + k * 2 * DAY, 100);
    assert_int_equal(s->c.due[TF_TIMER_REPLENISHMENT], 0);
    s->cur = s->n;
    run(s, T0 + 20 * DAY);
    skip_followups(s);
    NEXT(s, TF_DERIVED_PURCHASE_OVERDUE, "purchase_rhythm", T0 + 13 * DAY);
    /* days_before 0 reminds on the expected day, 2 days after the purchase. */
    harness *z = h_new();
    h_rhythm(z);
    z->r.replenish_days_before = 0;
    for (int k = 0; k < 3; k++)
        buy(z, T0 + k * 2 * DAY, 100);
    assert_int_equal(z->c.due[TF_TIMER_REPLENISHMENT], T0 + 6 * DAY);
    teardown_h(z);
    teardown_h(s);
    teardown_h(c);
    teardown_h(h);
}

/* Overdue can tip the risk over the warning before inactivity alone does: the
 * decline comes with it (churn_risk), the warning lists it; weight 0 turns the
 * signal off while the event stays. */
static void test_overdue_risk(void **state)
{
    (void)state;
    harness *h = h_new();
    h_rhythm(h);
    h->r.weight_overdue = 50;
    for (int k = 0; k < 3; k++)
        buy(h, T0 + k * 30 * DAY, 100);
    h->cur = h->n;
    run(h, T0 + 97 * DAY);
    skip_followups(h);
    h->cur++; /* the replenishment reminder */
    NEXT(h, TF_DERIVED_PURCHASE_OVERDUE, "purchase_rhythm", T0 + 97 * DAY);
    const tf_derived_t *d = STAGE(h, "churn_risk", T0 + 97 * DAY, "growth", "decline", "timer");
    assert_int_equal(fig_i(d, "risk"), 64);
    d = NEXT(h, TF_DERIVED_CHURN_WARNING, "risk_above_warning", T0 + 97 * DAY);
    assert_int_equal(fig_i(d, "risk"), 64);
    assert_string_equal(fig_s(d, "reasons"), "inactivity,overdue");
    NOTHING(h);
    buy(h, T0 + 98 * DAY, 100);
    STAGE(h, "recovered_purchase", T0 + 98 * DAY, "decline", "growth", "purchase");
    NEXT(h, TF_DERIVED_CHURN_CLEARED, "purchase", T0 + 98 * DAY);
    NOTHING(h);

    harness *g = h_new();
    h_rhythm(g);
    g->r.weight_overdue = 0;
    for (int k = 0; k < 3; k++)
        buy(g, T0 + k * 30 * DAY, 100);
    run(g, T0 + 97 * DAY);
    assert_int_equal(count(g, TF_DERIVED_PURCHASE_OVERDUE, NULL), 1);
    assert_int_equal(g->c.risk, 14);
    teardown_h(g);
    teardown_h(h);
}

/* The same touchpoints give the same events and state whatever the batches: here
 * timer scans at every hour between them, against none. */
static void test_same_whatever_the_batches(void **state)
{
    (void)state;
    harness *a = h_new(), *b = h_new();
    h_rhythm(a);
    h_rhythm(b);
    const char *skus[] = {"tea", "cup"};
    for (int k = 0; k < 4; k++) {
        int64_t t = T0 + k * 20 * DAY + k * HOUR;
        buy_items(a, t, k % 2 ? "app" : "store", skus, (int64_t[]){1, k}, 2);
        engage(a, TF_KIND_EMAIL, t + DAY, "", "open", TF_DIR_NONE);
        touch_campaign(a, TF_KIND_WEB_VISIT, t + 2 * DAY, "", "spring");
        for (int64_t at = t - 20 * DAY; at < t; at += HOUR)
            run(b, at);
        buy_items(b, t, k % 2 ? "app" : "store", skus, (int64_t[]){1, k}, 2);
        run(b, t + DAY - HOUR);
        engage(b, TF_KIND_EMAIL, t + DAY, "", "open", TF_DIR_NONE);
        touch_campaign(b, TF_KIND_WEB_VISIT, t + 2 * DAY, "", "spring");
    }
    run(a, T0 + 200 * DAY);
    run(b, T0 + 150 * DAY);
    run(b, T0 + 200 * DAY);
    assert_int_equal(a->n, b->n);
    assert_true(count(a, TF_DERIVED_PURCHASE_OVERDUE, NULL) > 0);
    for (size_t i = 0; i < a->n; i++)
        assert_memory_equal(&a->log[i], &b->log[i], sizeof a->log[i]);
    assert_memory_equal(&a->c, &b->c, sizeof a->c);
    teardown_h(b);
    teardown_h(a);
}

/* ---- campaign attribution and the exit reason ---- */

static void test_attribution(void **state)
{
    (void)state;
    harness *h = h_new();
    const tf_config_rules *r = &h->r;
    assert_null(tf_customer_attributed_campaign(r, &h->c, T0));
    touch_campaign(h, TF_KIND_WEB_VISIT, T0, "", "spring");
    assert_string_equal(h->c.campaign, "spring");
    assert_int_equal(h->c.campaign_ms, T0);
    /* At or after the touch, within rules.attribution_days (30). */
    assert_string_equal(tf_customer_attributed_campaign(r, &h->c, T0), "spring");
    assert_string_equal(tf_customer_attributed_campaign(r, &h->c, T0 + 30 * DAY), "spring");
    assert_null(tf_customer_attributed_campaign(r, &h->c, T0 + 30 * DAY + 1));
    assert_null(tf_customer_attributed_campaign(r, &h->c, T0 - 1));
    /* A bounce touched nobody; an open did. */
    touch_campaign(h, TF_KIND_EMAIL, T0 + DAY, "bounce", "summer");
    assert_string_equal(h->c.campaign, "spring");
    touch_campaign(h, TF_KIND_EMAIL, T0 + 2 * DAY, "open", "summer");
    assert_string_equal(h->c.campaign, "summer");
    /* A late record never overwrites a newer one; one at the same time does. */
    touch_campaign(h, TF_KIND_WEB_VISIT, T0 + DAY, "", "autumn");
    assert_string_equal(h->c.campaign, "summer");
    touch_campaign(h, TF_KIND_EMAIL, T0 + 2 * DAY, "click", "winter");
    assert_string_equal(h->c.campaign, "winter");
    /* Without a campaign a touch changes nothing; purchases never clear it. */
    touch(h, TF_KIND_WEB_VISIT, T0 + 3 * DAY);
    buy(h, T0 + 4 * DAY, 100);
    buy(h, T0 + 5 * DAY, 100);
    assert_string_equal(tf_customer_attributed_campaign(r, &h->c, T0 + 5 * DAY), "winter");
    assert_int_equal(h->c.campaign_ms, T0 + 2 * DAY);
    /* The window is a setting. */
    h->r.attribution_days = 1;
    assert_string_equal(tf_customer_attributed_campaign(r, &h->c, T0 + 3 * DAY), "winter");
    assert_null(tf_customer_attributed_campaign(r, &h->c, T0 + 3 * DAY + 1));
    assert_null(tf_customer_attributed_campaign(NULL, &h->c, T0 + 3 * DAY));
    assert_null(tf_customer_attributed_campaign(r, NULL, T0 + 3 * DAY));
    teardown_h(h);
}

/* The reason of the latest exit touchpoint, whether it ends the relationship or
 * not; "" when the latest gave none; a late one changes nothing. */
static void test_exit_reason(void **state)
{
    (void)state;
    harness *h = h_new();
    exit_with(h, TF_KIND_UNSUBSCRIBE, T0, "too many mails");
    assert_string_equal(h->c.exit_reason, "too many mails");
    assert_int_equal(h->c.stage, TF_STAGE_PROSPECT);
    exit_with(h, TF_KIND_CONTRACT_END, T0 + 5 * DAY, "moved");
    assert_string_equal(h->c.exit_reason, "moved");
    exit_with(h, TF_KIND_UNSUBSCRIBE, T0 + DAY, "late");
    assert_string_equal(h->c.exit_reason, "moved");
    assert_int_equal(h->c.exit_reason_ms, T0 + 5 * DAY);
    exit_with(h, TF_KIND_CONTRACT_END, T0 + 6 * DAY, "");
    assert_string_equal(h->c.exit_reason, "");
    assert_int_equal(h->c.exit_reason_ms, T0 + 6 * DAY);
    teardown_h(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_favourites_order_and_eviction, free_all),
        cmocka_unit_test_teardown(test_favourites_in_winback, free_all),
        cmocka_unit_test_teardown(test_channel_of_each_kind, free_all),
        cmocka_unit_test_teardown(test_channel_decay, free_all),
        cmocka_unit_test_teardown(test_preferred_channel_in_events, free_all),
        cmocka_unit_test_teardown(test_rhythm_figures, free_all),
        cmocka_unit_test_teardown(test_rhythm_trips_and_late_purchases, free_all),
        cmocka_unit_test_teardown(test_replenishment_and_overdue, free_all),
        cmocka_unit_test_teardown(test_replenishment_boundaries, free_all),
        cmocka_unit_test_teardown(test_overdue_risk, free_all),
        cmocka_unit_test_teardown(test_same_whatever_the_batches, free_all),
        cmocka_unit_test_teardown(test_attribution, free_all),
        cmocka_unit_test_teardown(test_exit_reason, free_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
