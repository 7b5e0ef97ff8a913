/* Unit tests for pkg/lifecycle: every rule of lifecycle.c, each stage transition with
 * the derived event it emits (type, rule, figures, id, time, subject) and the
 * counters and value figures kept per customer. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "lifecycle/lifecycle.h"

/* 2026-01-06T12:15:00Z, the start of every customer's story below. */
#define T0 INT64_C(1767701700000)
#define DAY TF_MS_PER_DAY
#define CUSTOMER "c-1"
#define SOURCE "/web/shop-cn"

static tf_config_rules default_rules(void)
{
    tf_config_t cfg;
    tf_config_defaults(&cfg);
    return cfg.rules;
}

static tf_event_t mk(tf_event_kind kind, const char *id, int64_t time_ms)
{
    tf_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    snprintf(ev.id, sizeof ev.id, "%s", id);
    snprintf(ev.source, sizeof ev.source, "%s", SOURCE);
    snprintf(ev.subject, sizeof ev.subject, "%s", CUSTOMER);
    ev.time_ms = time_ms;
    ev.nps = -1;
    ev.duration_s = -1;
    return ev;
}

static tf_event_t mk_purchase(const char *id, int64_t time_ms, int64_t amount, const char *currency)
{
    tf_event_t ev = mk(TF_KIND_PURCHASE, id, time_ms);
    snprintf(ev.order_id, sizeof ev.order_id, "o-%s", id);
    ev.amount = amount;
    snprintf(ev.currency, sizeof ev.currency, "%s", currency);
    return ev;
}

static tf_event_t mk_refund(const char *id, int64_t time_ms, int64_t amount, const char *currency)
{
    tf_event_t ev = mk(TF_KIND_REFUND, id, time_ms);
    snprintf(ev.order_id, sizeof ev.order_id, "o-%s", id);
    ev.amount = amount;
    snprintf(ev.currency, sizeof ev.currency, "%s", currency);
    return ev;
}

static tf_event_t mk_update(const char *id, int64_t time_ms, tf_complaint_status status)
{
    tf_event_t ev = mk(TF_KIND_COMPLAINT_UPDATE, id, time_ms);
    snprintf(ev.complaint_id, sizeof ev.complaint_id, "cp-1");
    ev.status = status;
    return ev;
}

static tf_event_t mk_survey(const char *id, int64_t time_ms, double a, double b, int nps)
{
    tf_event_t ev = mk(TF_KIND_SURVEY, id, time_ms);
    if (a > 0) {
        ev.has_sat = 1;
        ev.expectation = a;
        ev.perception = b;
    }
    ev.nps = nps;
    return ev;
}

/* Applies ev and returns the number of derived events. */
static size_t apply(const tf_config_rules *r, tf_customer_t *c, const tf_event_t *ev,
                    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED])
{
    memset(out, 0xa5, sizeof(tf_derived_t) * TF_LIFECYCLE_MAX_DERIVED);
    size_t n = tf_lifecycle_apply(r, c, ev, out);
    assert_true(n <= TF_LIFECYCLE_MAX_DERIVED);
    return n;
}

/* Applies a purchase expecting no derived event. */
static void buy_quietly(const tf_config_rules *r, tf_customer_t *c, const char *id, int64_t t, int64_t amount)
{
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    tf_event_t ev = mk_purchase(id, t, amount, "CNY");
    assert_int_equal(apply(r, c, &ev, out), 0);
}

/* cmocka 1.1.5 has no assert_double_equal (its float variant rounds to float). */
#define assert_near(a, b) assert_near_impl((a), (b), #a, __FILE__, __LINE__)
static void assert_near_impl(double got, double want, const char *expr, const char *file, int line)
{
    if (!(fabs(got - want) <= 1e-9 * (fabs(want) > 1 ? fabs(want) : 1)))
        fail_msg("%s:%d: %s is %.17g, want %.17g", file, line, expr, got, want);
}

static const tf_figure *fig(const tf_derived_t *d, const char *name)
{
    for (size_t i = 0; i < d->nfigures; i++)
        if (strcmp(d->figures[i].name, name) == 0)
            return &d->figures[i];
    return NULL;
}

static void assert_fig_str(const tf_derived_t *d, const char *name, const char *want)
{
    const tf_figure *f = fig(d, name);
    if (!f)
        fail_msg("figure \"%s\" missing from %s/%s", name, tf_derived_type_name(d->type), d->rule);
    assert_int_equal(f->kind, TF_FIG_STR);
    assert_string_equal(f->str, want);
}

static void assert_fig_int(const tf_derived_t *d, const char *name, int64_t want)
{
    const tf_figure *f = fig(d, name);
    if (!f)
        fail_msg("figure \"%s\" missing from %s/%s", name, tf_derived_type_name(d->type), d->rule);
    assert_int_equal(f->kind, TF_FIG_INT);
    assert_int_equal(f->i, want);
}

/* Checks what every derived event carries: customer, cause time and an id. */
static void assert_derived(const tf_derived_t *d, tf_derived_type type, const char *rule, const tf_event_t *ev)
{
    assert_int_equal(d->type, type);
    assert_string_equal(d->rule, rule);
    assert_string_equal(d->subject, ev->subject);
    assert_int_equal(d->time_ms, ev->time_ms);
    assert_int_equal(strlen(d->id), TF_ID_LEN - 1);
}

static void assert_stage_changed(const tf_derived_t *d, const char *rule, const tf_event_t *ev, const char *from,
                                 const char *to)
{
    assert_derived(d, TF_DERIVED_STAGE_CHANGED, rule, ev);
    assert_fig_str(d, "from", from);
    assert_fig_str(d, "to", to);
    assert_fig_str(d, "cause", tf_event_kind_name(ev->kind));
}

/* ---- stage machine ---- */

/* Stage changes are kept newest first, at most TF_STAGE_HISTORY of them. */
static void test_stage_history(void **state)
{
    (void)state;
    tf_config_rules rr = default_rules();
    const tf_config_rules *r = &rr;
    tf_customer_t c;
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    memset(&c, 0, sizeof c);
    tf_event_t buy = mk_purchase("h-1", T0, 100, "CNY");
    apply(r, &c, &buy, out);
    tf_event_t quit = mk(TF_KIND_UNSUBSCRIBE, "h-2", T0 + DAY);
    apply(r, &c, &quit, out);
    assert_int_equal(c.nhistory, 2);
    assert_int_equal(c.history[0].at_ms, T0 + DAY);
    assert_int_equal(c.history[0].from, TF_STAGE_GROWTH);
    assert_int_equal(c.history[0].to, TF_STAGE_CHURNED);
    assert_string_equal(c.history[0].rule, "explicit_exit");
    assert_int_equal(c.history[1].from, TF_STAGE_PROSPECT);
    assert_string_equal(c.history[1].rule, "first_purchase");
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "h-%d", 10 + i);
        tf_event_t ev = i % 2 ? mk(TF_KIND_CONTRACT_END, id, T0 + (2 + i) * DAY)
                              : mk_purchase(id, T0 + (2 + i) * DAY, 100, "CNY");
        apply(r, &c, &ev, out);
    }
    assert_int_equal(c.nhistory, TF_STAGE_HISTORY);
    assert_int_equal(c.history[0].at_ms, T0 + 11 * DAY);
    assert_int_equal(c.history[TF_STAGE_HISTORY - 1].at_ms, T0 + 4 * DAY);
}

static void test_stage_names(void **state)
{
    (void)state;
    tf_stage s = TF_STAGE_NONE;
    for (int i = 0; i < TF_STAGE__COUNT; i++) {
        assert_int_equal(tf_stage_parse(tf_stage_name((tf_stage)i), &s), TF_OK);
        assert_int_equal(s, i);
    }
    assert_string_equal(tf_stage_name(TF_STAGE_MATURE), "mature");
    assert_string_equal(tf_stage_name(TF_STAGE_NONE), "none");
    assert_int_equal(tf_stage_parse("Growth", &s), TF_ENOTFOUND);
    assert_int_equal(tf_stage_parse("", &s), TF_ENOTFOUND);
}

static void test_new_customer_becomes_prospect(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    tf_event_t ev = mk(TF_KIND_WEB_VISIT, "e-1", T0);

    assert_int_equal(apply(&r, &c, &ev, out), 0);
    assert_int_equal(c.stage, TF_STAGE_PROSPECT);
    assert_int_equal(c.stage_since_ms, T0);
    assert_int_equal(c.counts[TF_KIND_WEB_VISIT], 1);
    assert_int_equal(c.first_seen_ms, T0);
    assert_int_equal(c.last_seen_ms, T0);
    assert_int_equal(c.purchases, 0);

    /* More touchpoints without a purchase keep the prospect where it is. */
    ev = mk(TF_KIND_CALL, "e-2", T0 + DAY);
    assert_int_equal(apply(&r, &c, &ev, out), 0);
    assert_int_equal(c.stage, TF_STAGE_PROSPECT);
    assert_int_equal(c.stage_since_ms, T0);
}

static void test_first_purchase(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    tf_event_t visit = mk(TF_KIND_WEB_VISIT, "e-1", T0);
    apply(&r, &c, &visit, out);

    tf_event_t ev = mk_purchase("e-2", T0 + 2 * DAY, 12990, "CNY");
    assert_int_equal(apply(&r, &c, &ev, out), 1);
    assert_stage_changed(&out[0], "first_purchase", &ev, "prospect", "growth");
    assert_fig_int(&out[0], "purchases", 1);
    assert_fig_int(&out[0], "spend", 12990);
    assert_fig_int(&out[0], "tenure_days", 0);
    assert_int_equal(c.stage, TF_STAGE_GROWTH);
    assert_int_equal(c.stage_since_ms, T0 + 2 * DAY);
    assert_int_equal(c.first_purchase_ms, T0 + 2 * DAY);
    assert_string_equal(c.currency, "CNY");

    /* A second purchase in growth, far from the thresholds, emits nothing. */
    ev = mk_purchase("e-3", T0 + 3 * DAY, 100, "CNY");
    assert_int_equal(apply(&r, &c, &ev, out), 0);
    assert_int_equal(c.stage, TF_STAGE_GROWTH);
    assert_int_equal(c.stage_since_ms, T0 + 2 * DAY);
}

static void test_first_event_is_purchase(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    tf_event_t ev = mk_purchase("e-1", T0, 500, "EUR");

    /* A never-seen customer passes through prospect: the transition says so. */
    assert_int_equal(apply(&r, &c, &ev, out), 1);
    assert_stage_changed(&out[0], "first_purchase", &ev, "prospect", "growth");
    assert_int_equal(c.stage, TF_STAGE_GROWTH);
    assert_string_equal(c.currency, "EUR");
}

/* Four purchases on days 0..3; the fifth is the caller's. */
static void four_purchases(const tf_config_rules *r, tf_customer_t *c)
{
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    memset(c, 0, sizeof *c);
    tf_event_t first = mk_purchase("p-1", T0, 1000, "CNY");
    assert_int_equal(apply(r, c, &first, out), 1);
    buy_quietly(r, c, "p-2", T0 + 1 * DAY, 1000);
    buy_quietly(r, c, "p-3", T0 + 2 * DAY, 1000);
    buy_quietly(r, c, "p-4", T0 + 3 * DAY, 1000);
    assert_int_equal(c->stage, TF_STAGE_GROWTH);
    assert_int_equal(c->purchases, 4);
}

static void test_mature_at_exact_thresholds(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    assert_int_equal(r.mature_min_purchases, 5);
    assert_int_equal(r.mature_min_tenure_days, 90);
    tf_customer_t c;
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    four_purchases(&r, &c);

    tf_event_t ev = mk_purchase("p-5", T0 + 90 * DAY, 1000, "CNY");
    assert_int_equal(apply(&r, &c, &ev, out), 1);
    assert_stage_changed(&out[0], "mature_threshold", &ev, "growth", "mature");
    assert_fig_int(&out[0], "purchases", 5);
    assert_fig_int(&out[0], "tenure_days", 90);
    assert_fig_int(&out[0], "spend", 5000);
    assert_int_equal(c.stage, TF_STAGE_MATURE);
    assert_int_equal(c.stage_since_ms, T0 + 90 * DAY);

    /* Mature customers buying again stay mature, silently. */
    ev = mk_purchase("p-6", T0 + 91 * DAY, 1000, "CNY");
    assert_int_equal(apply(&r, &c, &ev, out), 0);
    assert_int_equal(c.stage, TF_STAGE_MATURE);
}

static void test_not_mature_one_day_short(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    four_purchases(&r, &c);

    /* One millisecond short of 90 days of tenure: 89 whole days. */
    buy_quietly(&r, &c, "p-5", T0 + 90 * DAY - 1, 1000);
    assert_int_equal(c.stage, TF_STAGE_GROWTH);
    assert_int_equal(c.purchases, 5);

    /* The next purchase once the tenure is reached tips it over. */
    tf_event_t ev = mk_purchase("p-6", T0 + 90 * DAY, 1000, "CNY");
    assert_int_equal(apply(&r, &c, &ev, out), 1);
    assert_stage_changed(&out[0], "mature_threshold", &ev, "growth", "mature");
    assert_fig_int(&out[0], "purchases", 6);
}

static void test_not_mature_one_purchase_short(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    memset(&c, 0, sizeof c);
    tf_event_t first = mk_purchase("p-1", T0, 1000, "CNY");
    apply(&r, &c, &first, out);
    buy_quietly(&r, &c, "p-2", T0 + 100 * DAY, 1000);
    buy_quietly(&r, &c, "p-3", T0 + 150 * DAY, 1000);
    buy_quietly(&r, &c, "p-4", T0 + 200 * DAY, 1000); /* 4 purchases, 200 days */
    assert_int_equal(c.stage, TF_STAGE_GROWTH);

    tf_event_t ev = mk_purchase("p-5", T0 + 201 * DAY, 1000, "CNY");
    assert_int_equal(apply(&r, &c, &ev, out), 1);
    assert_stage_changed(&out[0], "mature_threshold", &ev, "growth", "mature");
    assert_fig_int(&out[0], "tenure_days", 201);
}

static void test_mature_by_spend(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    r.mature_spend_threshold = 10000;
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];

    tf_event_t ev = mk_purchase("p-1", T0, 6000, "CNY");
    assert_int_equal(apply(&r, &c, &ev, out), 1);
    assert_string_equal(out[0].rule, "first_purchase");
    /* Refunds count against the lifetime spend: 6000 - 2000 + 5999 = 9999. */
    ev = mk_refund("r-1", T0 + DAY, 2000, "CNY");
    assert_int_equal(apply(&r, &c, &ev, out), 0);
    buy_quietly(&r, &c, "p-2", T0 + 2 * DAY, 5999);
    assert_int_equal(c.stage, TF_STAGE_GROWTH);

    /* Reaching the threshold (net 10000) with 3 purchases and 3 days of tenure. */
    ev = mk_purchase("p-3", T0 + 3 * DAY, 1, "CNY");
    assert_int_equal(apply(&r, &c, &ev, out), 1);
    assert_stage_changed(&out[0], "mature_threshold", &ev, "growth", "mature");
    assert_fig_int(&out[0], "spend", 10000);
    assert_fig_int(&out[0], "purchases", 3);
    assert_int_equal(c.stage, TF_STAGE_MATURE);
}

static void test_spend_threshold_zero_disables(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    r.mature_spend_threshold = 0;
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    tf_event_t ev = mk_purchase("p-1", T0, INT64_C(50000000), "CNY");
    assert_int_equal(apply(&r, &c, &ev, out), 1);
    buy_quietly(&r, &c, "p-2", T0 + DAY, INT64_C(50000000));
    assert_int_equal(c.stage, TF_STAGE_GROWTH);
}

/* One purchase above the spend threshold: prospect -> growth -> mature at once, two
 * stage changes from one event, each with its own stable id. */
static void test_two_stage_changes_one_event(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    tf_event_t ev = mk_purchase("p-big", T0, r.mature_spend_threshold + 1, "CNY");

    assert_int_equal(apply(&r, &c, &ev, out), 2);
    assert_stage_changed(&out[0], "first_purchase", &ev, "prospect", "growth");
    assert_stage_changed(&out[1], "mature_threshold", &ev, "growth", "mature");
    assert_string_not_equal(out[0].id, out[1].id);
    assert_int_equal(c.stage, TF_STAGE_MATURE);

    /* And the same event on a fresh customer gives the same two ids. */
    tf_customer_t c2;
    memset(&c2, 0, sizeof c2);
    tf_derived_t out2[TF_LIFECYCLE_MAX_DERIVED];
    assert_int_equal(apply(&r, &c2, &ev, out2), 2);
    assert_string_equal(out2[0].id, out[0].id);
    assert_string_equal(out2[1].id, out[1].id);
}

/* A growth customer with two purchases, the last on day 10. */
static void growth_customer(const tf_config_rules *r, tf_customer_t *c)
{
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    memset(c, 0, sizeof *c);
    tf_event_t ev = mk_purchase("p-1", T0, 3000, "CNY");
    assert_int_equal(apply(r, c, &ev, out), 1);
    buy_quietly(r, c, "p-2", T0 + 10 * DAY, 2000);
}

static void exit_test(tf_event_kind kind, tf_event_kind second)
{
    tf_config_rules r = default_rules();
    tf_customer_t c;
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    growth_customer(&r, &c);

    tf_event_t ev = mk(kind, "x-1", T0 + 40 * DAY);
    assert_int_equal(apply(&r, &c, &ev, out), 2);
    assert_stage_changed(&out[0], "explicit_exit", &ev, "growth", "churned");
    assert_fig_int(&out[0], "purchases", 2);
    assert_fig_int(&out[0], "spend", 5000);
    assert_derived(&out[1], TF_DERIVED_WINBACK_OPPORTUNITY, "explicit_exit", &ev);
    assert_fig_str(&out[1], "cause", tf_event_kind_name(kind));
    assert_fig_int(&out[1], "purchases", 2);
    assert_fig_int(&out[1], "spend", 5000);
    assert_fig_int(&out[1], "days_since_purchase", 30);
    assert_string_not_equal(out[0].id, out[1].id);
    assert_int_equal(c.stage, TF_STAGE_CHURNED);
    assert_int_equal(c.stage_since_ms, T0 + 40 * DAY);
    assert_int_equal(c.churned_count, 1);

    /* A second exit of either kind changes nothing and emits nothing. */
    ev = mk(second, "x-2", T0 + 41 * DAY);
    assert_int_equal(apply(&r, &c, &ev, out), 0);
    assert_int_equal(c.stage, TF_STAGE_CHURNED);
    assert_int_equal(c.stage_since_ms, T0 + 40 * DAY);
    assert_int_equal(c.churned_count, 1);
    assert_int_equal(c.counts[second], kind == second ? 2 : 1);
}

static void test_exit_contract_end(void **state)
{
    (void)state;
    exit_test(TF_KIND_CONTRACT_END, TF_KIND_UNSUBSCRIBE);
}

static void test_exit_unsubscribe(void **state)
{
    (void)state;
    exit_test(TF_KIND_UNSUBSCRIBE, TF_KIND_UNSUBSCRIBE);
}

static void test_exit_prospect_without_purchases(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    tf_event_t ev = mk(TF_KIND_EMAIL, "e-1", T0);
    apply(&r, &c, &ev, out);
    ev = mk(TF_KIND_UNSUBSCRIBE, "u-1", T0 + DAY);
    assert_int_equal(apply(&r, &c, &ev, out), 2);
    assert_stage_changed(&out[0], "explicit_exit", &ev, "prospect", "churned");
    assert_null(fig(&out[0], "tenure_days"));
    assert_derived(&out[1], TF_DERIVED_WINBACK_OPPORTUNITY, "explicit_exit", &ev);
    assert_fig_int(&out[1], "purchases", 0);
    assert_null(fig(&out[1], "days_since_purchase")); /* never bought */
}

static void test_winback_purchase(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    growth_customer(&r, &c);
    tf_event_t ev = mk(TF_KIND_CONTRACT_END, "x-1", T0 + 40 * DAY);
    assert_int_equal(apply(&r, &c, &ev, out), 2);

    ev = mk_purchase("p-back", T0 + 100 * DAY, 4200, "CNY");
    assert_int_equal(apply(&r, &c, &ev, out), 2);
    assert_stage_changed(&out[0], "winback_purchase", &ev, "churned", "growth");
    assert_fig_int(&out[0], "purchases", 3);
    assert_derived(&out[1], TF_DERIVED_WINBACK_SUCCEEDED, "winback_purchase", &ev);
    assert_fig_str(&out[1], "order_id", "o-p-back");
    assert_fig_int(&out[1], "amount", 4200);
    assert_fig_int(&out[1], "churned_count", 1);
    assert_string_not_equal(out[0].id, out[1].id);
    assert_int_equal(c.stage, TF_STAGE_GROWTH);
    assert_int_equal(c.stage_since_ms, T0 + 100 * DAY);

    /* Churning again counts a second time. */
    ev = mk(TF_KIND_UNSUBSCRIBE, "u-1", T0 + 200 * DAY);
    assert_int_equal(apply(&r, &c, &ev, out), 2);
    assert_int_equal(c.churned_count, 2);
}

/* An order id of the full 128 bytes the contract allows still reaches the figures. */
static void test_winback_long_order_id(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    growth_customer(&r, &c);
    tf_event_t ev = mk(TF_KIND_CONTRACT_END, "x-1", T0 + 40 * DAY);
    apply(&r, &c, &ev, out);

    ev = mk_purchase("p-back", T0 + 100 * DAY, 4200, "CNY");
    memset(ev.order_id, 'o', 100);
    ev.order_id[100] = '\0';
    assert_int_equal(apply(&r, &c, &ev, out), 2);
    assert_int_equal(out[1].type, TF_DERIVED_WINBACK_SUCCEEDED);
    assert_non_null(fig(&out[1], "order_id"));
    assert_string_equal(fig(&out[1], "order_id")->str, ev.order_id);
}

static void test_decline_recovered_to_growth(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    growth_customer(&r, &c);
    c.stage = TF_STAGE_DECLINE;
    c.stage_since_ms = T0 + 50 * DAY;

    tf_event_t ev = mk_purchase("p-3", T0 + 60 * DAY, 500, "CNY");
    assert_int_equal(apply(&r, &c, &ev, out), 1);
    assert_stage_changed(&out[0], "recovered_purchase", &ev, "decline", "growth");
    assert_fig_int(&out[0], "purchases", 3);
    assert_fig_int(&out[0], "tenure_days", 60);
    assert_int_equal(c.stage, TF_STAGE_GROWTH);
    assert_int_equal(c.stage_since_ms, T0 + 60 * DAY);
}

static void test_decline_recovered_to_mature(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    four_purchases(&r, &c);
    c.stage = TF_STAGE_DECLINE;

    /* The fifth purchase at 120 days meets the maturity rule: back to mature. */
    tf_event_t ev = mk_purchase("p-5", T0 + 120 * DAY, 1000, "CNY");
    assert_int_equal(apply(&r, &c, &ev, out), 1);
    assert_stage_changed(&out[0], "recovered_purchase", &ev, "decline", "mature");
    assert_int_equal(c.stage, TF_STAGE_MATURE);
}

static void test_decline_non_purchase_stays(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    growth_customer(&r, &c);
    c.stage = TF_STAGE_DECLINE;
    tf_event_t ev = mk(TF_KIND_CALL, "c-9", T0 + 70 * DAY);
    assert_int_equal(apply(&r, &c, &ev, out), 0);
    assert_int_equal(c.stage, TF_STAGE_DECLINE);
    /* An explicit exit from decline churns. */
    ev = mk(TF_KIND_CONTRACT_END, "x-9", T0 + 71 * DAY);
    assert_int_equal(apply(&r, &c, &ev, out), 2);
    assert_stage_changed(&out[0], "explicit_exit", &ev, "decline", "churned");
}

/* ---- counters and value figures ---- */

static void test_counts_per_kind(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    const tf_event_kind kinds[] = {TF_KIND_WEB_VISIT, TF_KIND_WEB_VISIT, TF_KIND_WEB_VISIT, TF_KIND_CALL,
                                   TF_KIND_CALL, TF_KIND_EMAIL, TF_KIND_SOCIAL, TF_KIND_STORE_VISIT,
                                   TF_KIND_EVENT_ATTENDANCE, TF_KIND_PROFILE, TF_KIND_REFERRAL};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char id[16];
        snprintf(id, sizeof id, "e-%zu", i);
        tf_event_t ev = mk(kinds[i], id, T0 + (int64_t)i * 1000);
        assert_int_equal(apply(&r, &c, &ev, out), 0);
    }
    assert_int_equal(c.counts[TF_KIND_WEB_VISIT], 3);
    assert_int_equal(c.counts[TF_KIND_CALL], 2);
    assert_int_equal(c.counts[TF_KIND_EMAIL], 1);
    assert_int_equal(c.counts[TF_KIND_SOCIAL], 1);
    assert_int_equal(c.counts[TF_KIND_STORE_VISIT], 1);
    assert_int_equal(c.counts[TF_KIND_EVENT_ATTENDANCE], 1);
    assert_int_equal(c.counts[TF_KIND_PROFILE], 1);
    assert_int_equal(c.counts[TF_KIND_REFERRAL], 1);
    assert_int_equal(c.counts[TF_KIND_PURCHASE], 0);
    assert_int_equal(c.counts[TF_KIND_UNSUBSCRIBE], 0);
    assert_int_equal(c.stage, TF_STAGE_PROSPECT);
}

static void test_seen_out_of_order(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    tf_event_t ev = mk(TF_KIND_WEB_VISIT, "e-1", T0);
    apply(&r, &c, &ev, out);
    ev = mk(TF_KIND_WEB_VISIT, "e-2", T0 + 10 * DAY);
    apply(&r, &c, &ev, out);
    assert_int_equal(c.first_seen_ms, T0);
    assert_int_equal(c.last_seen_ms, T0 + 10 * DAY);

    /* A late event between the two moves neither mark but still counts. */
    ev = mk(TF_KIND_CALL, "e-3", T0 + 5 * DAY);
    apply(&r, &c, &ev, out);
    assert_int_equal(c.first_seen_ms, T0);
    assert_int_equal(c.last_seen_ms, T0 + 10 * DAY);
    assert_int_equal(c.counts[TF_KIND_CALL], 1);

    /* An event older than everything moves first_seen earlier, last_seen stays. */
    ev = mk(TF_KIND_EMAIL, "e-4", T0 - 3 * DAY);
    apply(&r, &c, &ev, out);
    assert_int_equal(c.first_seen_ms, T0 - 3 * DAY);
    assert_int_equal(c.last_seen_ms, T0 + 10 * DAY);
}

static void test_purchase_out_of_order(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    tf_event_t ev = mk_purchase("p-1", T0 + 10 * DAY, 100, "CNY");
    apply(&r, &c, &ev, out);
    buy_quietly(&r, &c, "p-0", T0, 100); /* delivered late */
    assert_int_equal(c.first_purchase_ms, T0);
    assert_int_equal(c.last_purchase_ms, T0 + 10 * DAY);
    assert_int_equal(c.purchases, 2);
}

static void test_money(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];

    tf_event_t ev = mk_purchase("p-1", T0, 10000, "CNY");
    ev.margin = 3000;
    ev.has_margin = 1;
    apply(&r, &c, &ev, out);
    ev = mk_purchase("p-2", T0 + DAY, 5000, "CNY");
    ev.margin = -4500; /* sold at a loss */
    ev.has_margin = 1;
    apply(&r, &c, &ev, out);
    ev = mk_purchase("p-3", T0 + 2 * DAY, 700, "CNY"); /* no margin given */
    ev.margin = 999;                                    /* ignored without has_margin */
    apply(&r, &c, &ev, out);
    assert_int_equal(c.purchases, 3);
    assert_int_equal(c.spend, 15700);
    assert_int_equal(c.margin, -1500);
    assert_string_equal(c.currency, "CNY");

    /* Refunds in the customer's currency add up; others are ignored. */
    ev = mk_refund("r-1", T0 + 3 * DAY, 2000, "CNY");
    assert_int_equal(apply(&r, &c, &ev, out), 0);
    ev = mk_refund("r-2", T0 + 3 * DAY, 999, "USD");
    assert_int_equal(apply(&r, &c, &ev, out), 0);
    assert_int_equal(c.refunded, 2000);
    assert_int_equal(c.counts[TF_KIND_REFUND], 2);

    /* A foreign-currency purchase counts as a purchase, not as money. */
    ev = mk_purchase("p-4", T0 + 4 * DAY, 7000, "USD");
    ev.margin = 100;
    ev.has_margin = 1;
    assert_int_equal(apply(&r, &c, &ev, out), 0);
    assert_int_equal(c.purchases, 4);
    assert_int_equal(c.foreign_purchases, 1);
    assert_int_equal(c.spend, 15700);
    assert_int_equal(c.margin, -1500);
    assert_int_equal(c.last_purchase_ms, T0 + 4 * DAY);
    assert_string_equal(c.currency, "CNY");
}

static void test_refund_before_purchase_ignored(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    tf_event_t ev = mk_refund("r-1", T0, 500, "CNY");
    assert_int_equal(apply(&r, &c, &ev, out), 0);
    assert_int_equal(c.refunded, 0);
    assert_string_equal(c.currency, "");
    assert_int_equal(c.counts[TF_KIND_REFUND], 1);
}

static void test_mean_interval(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    assert_int_equal(tf_customer_mean_interval_ms(&c), -1);
    tf_event_t ev = mk_purchase("p-1", T0, 100, "CNY");
    apply(&r, &c, &ev, out);
    assert_int_equal(tf_customer_mean_interval_ms(&c), -1);
    buy_quietly(&r, &c, "p-2", T0 + 2 * DAY, 100);
    assert_int_equal(tf_customer_mean_interval_ms(&c), 2 * DAY);
    buy_quietly(&r, &c, "p-3", T0 + 6 * DAY, 100);
    assert_int_equal(tf_customer_mean_interval_ms(&c), 3 * DAY);
}

static void test_open_complaints(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];

    tf_event_t ev = mk(TF_KIND_COMPLAINT, "k-1", T0);
    ev.category = TF_CAT_QUALITY;
    ev.severity = TF_SEV_HIGH;
    apply(&r, &c, &ev, out);
    assert_int_equal(c.open_complaints, 1);
    assert_int_equal(c.complaints, 1);
    ev = mk(TF_KIND_COMPLAINT, "k-2", T0 + 1);
    apply(&r, &c, &ev, out);
    assert_int_equal(c.open_complaints, 2);
    assert_int_equal(c.complaints, 2);

    ev = mk_update("u-1", T0 + 2, TF_CST_ACKNOWLEDGED);
    apply(&r, &c, &ev, out);
    assert_int_equal(c.open_complaints, 2);
    ev = mk_update("u-2", T0 + 3, TF_CST_RESOLVED);
    apply(&r, &c, &ev, out);
    assert_int_equal(c.open_complaints, 1);
    ev = mk_update("u-3", T0 + 4, TF_CST_RESOLVED);
    apply(&r, &c, &ev, out);
    assert_int_equal(c.open_complaints, 0);
    /* A resolution with nothing open never goes below zero. */
    ev = mk_update("u-4", T0 + 5, TF_CST_RESOLVED);
    apply(&r, &c, &ev, out);
    assert_int_equal(c.open_complaints, 0);
    ev = mk_update("u-5", T0 + 6, TF_CST_REOPENED);
    apply(&r, &c, &ev, out);
    assert_int_equal(c.open_complaints, 1);
    assert_int_equal(c.complaints, 2); /* reopening is not a new complaint */
    assert_int_equal(c.counts[TF_KIND_COMPLAINT_UPDATE], 5);
}

static void test_satisfaction_and_nps(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    assert_true(tf_customer_satisfaction(&c) == -1);
    assert_true(tf_customer_nps_mean(&c) == -1);

    tf_event_t ev = mk_survey("s-1", T0, 8, 9, 9);
    assert_int_equal(apply(&r, &c, &ev, out), 0);
    assert_near(tf_customer_satisfaction(&c), 112.5);
    ev = mk_survey("s-2", T0 + DAY, 10, 5, 6);
    apply(&r, &c, &ev, out);
    /* A running ratio of sums, not a mean of ratios: (9+5)/(8+10). */
    assert_near(tf_customer_satisfaction(&c), 14.0 / 18.0 * 100.0);
    assert_int_equal(c.surveys_sat, 2);
    assert_near(tf_customer_nps_mean(&c), 7.5);

    /* NPS only: satisfaction unchanged; an answer of 0 is an answer. */
    ev = mk_survey("s-3", T0 + 2 * DAY, 0, 0, 0);
    apply(&r, &c, &ev, out);
    assert_int_equal(c.surveys_sat, 2);
    assert_near(tf_customer_satisfaction(&c), 14.0 / 18.0 * 100.0);
    assert_int_equal(c.nps_count, 3);
    assert_near(tf_customer_nps_mean(&c), 5.0);

    /* Satisfaction only (nps absent = -1): NPS unchanged. */
    ev = mk_survey("s-4", T0 + 3 * DAY, 2, 2, -1);
    apply(&r, &c, &ev, out);
    assert_int_equal(c.nps_count, 3);
    assert_int_equal(c.surveys_sat, 3);
    assert_near(tf_customer_satisfaction(&c), 16.0 / 20.0 * 100.0);
    assert_int_equal(c.counts[TF_KIND_SURVEY], 4);
}

/* ---- derived ids ---- */

static void test_ids_deterministic(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t a, b;
    tf_derived_t oa[TF_LIFECYCLE_MAX_DERIVED], ob[TF_LIFECYCLE_MAX_DERIVED];
    growth_customer(&r, &a);
    growth_customer(&r, &b);

    tf_event_t ev = mk(TF_KIND_CONTRACT_END, "x-1", T0 + 40 * DAY);
    assert_int_equal(apply(&r, &a, &ev, oa), 2);
    assert_int_equal(apply(&r, &b, &ev, ob), 2);
    assert_string_equal(oa[0].id, ob[0].id);
    assert_string_equal(oa[1].id, ob[1].id);

    /* Another event id, or the same id from another source, is another cause. */
    growth_customer(&r, &b);
    tf_event_t other = mk(TF_KIND_CONTRACT_END, "x-2", T0 + 40 * DAY);
    assert_int_equal(apply(&r, &b, &other, ob), 2);
    assert_string_not_equal(oa[0].id, ob[0].id);
    assert_string_not_equal(oa[1].id, ob[1].id);

    growth_customer(&r, &b);
    other = mk(TF_KIND_CONTRACT_END, "x-1", T0 + 40 * DAY);
    snprintf(other.source, sizeof other.source, "/crm/contracts");
    assert_int_equal(apply(&r, &b, &other, ob), 2);
    assert_string_not_equal(oa[0].id, ob[0].id);

    /* The id is the cause's, not the time's: same source and id, another time. */
    growth_customer(&r, &b);
    other = mk(TF_KIND_CONTRACT_END, "x-1", T0 + 41 * DAY);
    assert_int_equal(apply(&r, &b, &other, ob), 2);
    assert_string_equal(oa[0].id, ob[0].id);
    assert_int_equal(ob[0].time_ms, T0 + 41 * DAY);
}

static void test_derived_subject_is_customer(void **state)
{
    (void)state;
    tf_config_rules r = default_rules();
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    tf_event_t ev = mk_purchase("p-1", T0 + 123, 100, "CNY");
    snprintf(ev.subject, sizeof ev.subject, "customer-42");
    assert_int_equal(apply(&r, &c, &ev, out), 1);
    assert_string_equal(out[0].subject, "customer-42");
    assert_int_equal(out[0].time_ms, T0 + 123);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage_names),
        cmocka_unit_test(test_stage_history),
        cmocka_unit_test(test_new_customer_becomes_prospect),
        cmocka_unit_test(test_first_purchase),
        cmocka_unit_test(test_first_event_is_purchase),
        cmocka_unit_test(test_mature_at_exact_thresholds),
        cmocka_unit_test(test_not_mature_one_day_short),
        cmocka_unit_test(test_not_mature_one_purchase_short),
        cmocka_unit_test(test_mature_by_spend),
        cmocka_unit_test(test_spend_threshold_zero_disables),
        cmocka_unit_test(test_two_stage_changes_one_event),
        cmocka_unit_test(test_exit_contract_end),
        cmocka_unit_test(test_exit_unsubscribe),
        cmocka_unit_test(test_exit_prospect_without_purchases),
        cmocka_unit_test(test_winback_purchase),
        cmocka_unit_test(test_winback_long_order_id),
        cmocka_unit_test(test_decline_recovered_to_growth),
        cmocka_unit_test(test_decline_recovered_to_mature),
        cmocka_unit_test(test_decline_non_purchase_stays),
        cmocka_unit_test(test_counts_per_kind),
        cmocka_unit_test(test_seen_out_of_order),
        cmocka_unit_test(test_purchase_out_of_order),
        cmocka_unit_test(test_money),
        cmocka_unit_test(test_refund_before_purchase_ignored),
        cmocka_unit_test(test_mean_interval),
        cmocka_unit_test(test_open_complaints),
        cmocka_unit_test(test_satisfaction_and_nps),
        cmocka_unit_test(test_ids_deterministic),
        cmocka_unit_test(test_derived_subject_is_customer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
