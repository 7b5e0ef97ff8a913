/* Unit tests for pkg/figures: the deltas a step and a batch add (figures.c), the
 * stored hashes summed (table.c) and what the view makes of them (view.c). The
 * field names asserted here are the stored contract of figures.h. */
#include "lifecycle_harness.h"

#include <jansson.h>

#include "figures/figures.h"

/* ---- helpers ---- */

#define SET_CAP 64

typedef struct {
    tf_figure_delta v[SET_CAP];
    tf_figures_set s;
} fset;

static void fset_init(fset *f, size_t cap)
{
    memset(f, 0, sizeof(*f));
    f->s = (tf_figures_set){f->v, 0, cap, 0};
}

static const tf_figure_delta *find_delta(const tf_figures_set *s, const char *field)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].field, field) == 0)
            return &s->v[i];
    return NULL;
}

static void dump_set(const tf_figures_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        fprintf(stderr, "  %s %+lld\n", s->v[i].field, (long long)s->v[i].delta);
}

/* field is in s with this delta. */
#define HAS(s, field, want) has_impl((s), (field), (want), __LINE__)
static void has_impl(const tf_figures_set *s, const char *field, int64_t want, int line)
{
    const tf_figure_delta *d = find_delta(s, field);
    if (!d || d->delta != want) {
        dump_set(s);
        fail_msg("line %d: %s is %s%lld, want %lld", line, field, d ? "" : "absent, not ",
                 d ? (long long)d->delta : 0LL, (long long)want);
    }
}

/* s holds exactly n fields (those the test named with HAS). */
#define ONLY(s, n) only_impl((s), (n), __LINE__)
static void only_impl(const tf_figures_set *s, size_t n, int line)
{
    if (s->n != n || s->overflow) {
        dump_set(s);
        fail_msg("line %d: %zu field(s)%s, want %zu", line, s->n, s->overflow ? " and overflow" : "", n);
    }
}

/* Applies ev as the pipeline does: the timers due by its time fire first, and each
 * step's deltas go to s. */
static void fig_advance(harness *h, int64_t until, tf_figures_set *s)
{
    static tf_derived_t out[64];
    int more;
    do {
        tf_figures_mark m;
        tf_figures_mark_before(&h->c, NULL, &m);
        size_t k = tf_lifecycle_advance(&h->r, popp(h), CUSTOMER, &h->c, until, out, 64, &more);
        tf_figures_step(&h->r, &m, &h->c, NULL, out, k, s);
        h_append(h, out, k);
    } while (more);
}

static void fig_apply(harness *h, const tf_event_t *ev, tf_figures_set *s)
{
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    tf_figures_mark m;
    if (h->c.stage != TF_STAGE_NONE)
        fig_advance(h, ev->time_ms, s);
    tf_figures_mark_before(&h->c, ev, &m);
    size_t k = tf_lifecycle_apply(&h->r, popp(h), &h->c, ev, out);
    tf_figures_step(&h->r, &m, &h->c, ev, out, k, s);
    h_append(h, out, k);
}

static tf_event_t ev_complaint(harness *h, int64_t t, const char *id, tf_complaint_category cat,
                               tf_complaint_severity sev)
{
    tf_event_t ev = ev_new(h, TF_KIND_COMPLAINT, t);
    snprintf(ev.complaint_id, sizeof ev.complaint_id, "%s", id);
    ev.category = cat;
    ev.severity = sev;
    return ev;
}

static tf_event_t ev_cupdate(harness *h, int64_t t, const char *id, tf_complaint_status st)
{
    tf_event_t ev = ev_new(h, TF_KIND_COMPLAINT_UPDATE, t);
    snprintf(ev.complaint_id, sizeof ev.complaint_id, "%s", id);
    ev.status = st;
    return ev;
}

static tf_event_t ev_exit(harness *h, tf_event_kind kind, int64_t t, const char *reason)
{
    tf_event_t ev = ev_new(h, kind, t);
    snprintf(ev.reason, sizeof ev.reason, "%s", reason);
    return ev;
}

static void derived_stage(tf_derived_t *d, int64_t t, const char *from, const char *to)
{
    memset(d, 0, sizeof(*d));
    d->type = TF_DERIVED_STAGE_CHANGED;
    d->time_ms = t;
    if (from)
        assert_int_equal(tf_derived_add_str(d, "from", from), TF_OK);
    if (to)
        assert_int_equal(tf_derived_add_str(d, "to", to), TF_OK);
    assert_int_equal(tf_derived_add_str(d, "cause", "timer"), TF_OK);
}

static void derived_escalated(tf_derived_t *d, int64_t t, int64_t level)
{
    memset(d, 0, sizeof(*d));
    d->type = TF_DERIVED_COMPLAINT_ESCALATED;
    d->time_ms = t;
    assert_int_equal(tf_derived_add_str(d, "complaint_id", "k-1"), TF_OK);
    assert_int_equal(tf_derived_add_int(d, "level", level), TF_OK);
}

/* ---- tf_figures_add, tf_figures_merge ---- */

static void test_add_merges_by_field(void **state)
{
    (void)state;
    fset f;
    fset_init(&f, SET_CAP);
    tf_figures_add(&f.s, "stage:growth", 2);
    tf_figures_add(&f.s, "stage:mature", 1);
    tf_figures_add(&f.s, "stage:growth", 3);
    HAS(&f.s, "stage:growth", 5);
    HAS(&f.s, "stage:mature", 1);
    ONLY(&f.s, 2);
    /* Merged back to 0 the entry stays (an HINCRBY by 0 is harmless). */
    tf_figures_add(&f.s, "stage:mature", -1);
    HAS(&f.s, "stage:mature", 0);
    ONLY(&f.s, 2);
}

static void test_add_zero_delta_adds_nothing(void **state)
{
    (void)state;
    fset f;
    fset_init(&f, 1);
    tf_figures_add(&f.s, "customers", 0);
    ONLY(&f.s, 0);
    /* Not even on a full set. */
    tf_figures_add(&f.s, "customers", 1);
    tf_figures_add(&f.s, "stage:growth", 0);
    ONLY(&f.s, 1);
}

static void test_add_overflow_when_full(void **state)
{
    (void)state;
    fset f;
    fset_init(&f, 2);
    tf_figures_add(&f.s, "a", 1);
    tf_figures_add(&f.s, "b", 1);
    assert_false(f.s.overflow);
    tf_figures_add(&f.s, "c", 1);
    assert_true(f.s.overflow);
    assert_int_equal(f.s.n, 2);
    assert_null(find_delta(&f.s, "c"));
    /* A field already held still merges. */
    tf_figures_add(&f.s, "a", 4);
    HAS(&f.s, "a", 5);
}

static void test_add_too_long_field(void **state)
{
    (void)state;
    fset f;
    char longest[TF_FIGURES_FIELD_MAX], too_long[TF_FIGURES_FIELD_MAX + 1];
    memset(longest, 'x', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    memset(too_long, 'y', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    fset_init(&f, SET_CAP);
    tf_figures_add(&f.s, longest, 1);
    HAS(&f.s, longest, 1);
    assert_false(f.s.overflow);
    tf_figures_add(&f.s, too_long, 1);
    assert_true(f.s.overflow);
    assert_int_equal(f.s.n, 1);
}

static void test_merge_adds_and_keeps_overflow(void **state)
{
    (void)state;
    fset a, b;
    fset_init(&a, SET_CAP);
    fset_init(&b, 1);
    tf_figures_add(&a.s, "customers", 1);
    tf_figures_add(&b.s, "customers", 2);
    tf_figures_add(&b.s, "stage:growth", 1); /* does not fit in b */
    assert_true(b.s.overflow);
    tf_figures_merge(&a.s, &b.s);
    HAS(&a.s, "customers", 3);
    assert_true(a.s.overflow);
}

/* ---- tf_figures_day ---- */

#define EXPECT_DAY(ms, want)                 \
    do {                                     \
        char d_[11];                         \
        tf_figures_day((ms), d_);            \
        assert_string_equal(d_, (want));     \
    } while (0)

static void test_day_epoch(void **state)
{
    (void)state;
    EXPECT_DAY(0, "1970-01-01");
    EXPECT_DAY(DAY - 1, "1970-01-01");
    EXPECT_DAY(DAY, "1970-01-02");
}

/* Negative times round down to the day before, not towards the epoch. */
static void test_day_negative(void **state)
{
    (void)state;
    EXPECT_DAY(-1, "1969-12-31");
    EXPECT_DAY(-DAY, "1969-12-31");
    EXPECT_DAY(-DAY - 1, "1969-12-30");
}

static void test_day_leap_day(void **state)
{
    (void)state;
    /* 2024-02-29T00:00:00Z = 1709164800 s; 2000 is a leap year too (divisible by 400). */
    EXPECT_DAY(INT64_C(1709164800000), "2024-02-29");
    EXPECT_DAY(INT64_C(1709164800000) + DAY - 1, "2024-02-29");
    EXPECT_DAY(INT64_C(1709164800000) + DAY, "2024-03-01");
    EXPECT_DAY(INT64_C(951782400000), "2000-02-29");
}

static void test_day_end_of_year(void **state)
{
    (void)state;
    /* 2026-01-01T00:00:00Z = 1767225600 s. */
    EXPECT_DAY(INT64_C(1767225600000) - 1, "2025-12-31");
    EXPECT_DAY(INT64_C(1767225600000), "2026-01-01");
}

/* ---- tf_figures_mark_before, tf_figures_step ---- */

/* A first touchpoint places the customer in prospect without a stage change: the
 * step says so (new and entered:prospect on its day); the next one adds nothing. */
static void test_step_first_touchpoint(void **state)
{
    (void)state;
    harness *h = h_new();
    fset f;
    fset_init(&f, SET_CAP);
    tf_event_t ev = ev_new(h, TF_KIND_WEB_VISIT, T0);
    fig_apply(h, &ev, &f.s);
    HAS(&f.s, "new:2026-01-06", 1);
    HAS(&f.s, "entered:prospect:2026-01-06", 1);
    ONLY(&f.s, 2);

    fset_init(&f, SET_CAP);
    ev = ev_new(h, TF_KIND_WEB_VISIT, T0 + DAY);
    fig_apply(h, &ev, &f.s);
    ONLY(&f.s, 0);
    teardown_h(h);
}

/* A first purchase: new, into prospect and on to growth, all that day. */
static void test_step_first_purchase(void **state)
{
    (void)state;
    harness *h = h_new();
    fset f;
    fset_init(&f, SET_CAP);
    tf_event_t ev = ev_buy(h, T0, 1000, NO_MARGIN, "CNY");
    fig_apply(h, &ev, &f.s);
    HAS(&f.s, "new:2026-01-06", 1);
    HAS(&f.s, "entered:prospect:2026-01-06", 1);
    HAS(&f.s, "left:prospect:2026-01-06", 1);
    HAS(&f.s, "entered:growth:2026-01-06", 1);
    ONLY(&f.s, 4);
    teardown_h(h);
}

/* A stage change counts on the derived event's day (a timer's due time), not on
 * the customer's clock. */
static void test_step_stage_changed_on_its_day(void **state)
{
    (void)state;
    static tf_customer_t c;
    tf_figures_mark m;
    tf_derived_t d[2];
    fset f;
    tf_config_t cfg;
    tf_config_defaults(&cfg);
    memset(&c, 0, sizeof c);
    c.stage = TF_STAGE_GROWTH;
    tf_figures_mark_before(&c, NULL, &m);
    c.stage = TF_STAGE_DECLINE;
    c.clock_ms = INT64_C(1767225600000) + 5 * DAY; /* 2026-01-06 */
    derived_stage(&d[0], INT64_C(1767225600000) - 1, "growth", "decline"); /* 2025-12-31, last ms */
    memset(&d[1], 0, sizeof d[1]);
    d[1].type = TF_DERIVED_CHURN_WARNING; /* not a flow */
    fset_init(&f, SET_CAP);
    tf_figures_step(&cfg.rules, &m, &c, NULL, d, 2, &f.s);
    HAS(&f.s, "left:growth:2025-12-31", 1);
    HAS(&f.s, "entered:decline:2025-12-31", 1);
    ONLY(&f.s, 2);
}

/* One without "from" or "to" is not counted half. */
static void test_step_stage_changed_incomplete(void **state)
{
    (void)state;
    static tf_customer_t c;
    tf_figures_mark m;
    tf_derived_t d[2];
    fset f;
    tf_config_t cfg;
    tf_config_defaults(&cfg);
    memset(&c, 0, sizeof c);
    c.stage = TF_STAGE_GROWTH;
    tf_figures_mark_before(&c, NULL, &m);
    derived_stage(&d[0], T0, "growth", NULL);
    derived_stage(&d[1], T0, NULL, "mature");
    fset_init(&f, SET_CAP);
    tf_figures_step(&cfg.rules, &m, &c, NULL, d, 2, &f.s);
    ONLY(&f.s, 0);
}

/* Timers fire the decline and, later, the churn: each counted on its own day. */
static void test_step_timer_stage_changes(void **state)
{
    (void)state;
    harness *h = h_new();
    fset f;
    fset_init(&f, SET_CAP);
    buy(h, T0, 1000);
    fig_advance(h, T0 + 400 * DAY, &f.s);
    const tf_derived_t *changes[4];
    size_t n = take(h, TF_DERIVED_STAGE_CHANGED, changes, 4);
    assert_int_equal(n, 3); /* first_purchase (not stepped here), decline, churned */
    char left[TF_FIG_STR_MAX + 32], entered[TF_FIG_STR_MAX + 32], day[11];
    for (size_t i = 1; i < n; i++) {
        tf_figures_day(changes[i]->time_ms, day);
        snprintf(left, sizeof left, "left:%s:%s", fig_s(changes[i], "from"), day);
        snprintf(entered, sizeof entered, "entered:%s:%s", fig_s(changes[i], "to"), day);
        HAS(&f.s, left, 1);
        HAS(&f.s, entered, 1);
    }
    assert_string_equal(fig_s(changes[2], "to"), "churned");
    assert_true(changes[2]->time_ms / DAY != changes[1]->time_ms / DAY);
    teardown_h(h);
}

static void test_step_escalation_levels(void **state)
{
    (void)state;
    static tf_customer_t c;
    tf_figures_mark m;
    tf_derived_t d[5];
    fset f;
    tf_config_t cfg;
    tf_config_defaults(&cfg);
    memset(&c, 0, sizeof c);
    c.stage = TF_STAGE_GROWTH;
    tf_figures_mark_before(&c, NULL, &m);
    derived_escalated(&d[0], T0, 1);
    derived_escalated(&d[1], T0, 2);
    derived_escalated(&d[2], T0, 2);
    derived_escalated(&d[3], T0, 3); /* no such level */
    derived_escalated(&d[4], T0, 0);
    fset_init(&f, SET_CAP);
    tf_figures_step(&cfg.rules, &m, &c, NULL, d, 5, &f.s);
    HAS(&f.s, "complaints:escalated:1", 1);
    HAS(&f.s, "complaints:escalated:2", 2);
    ONLY(&f.s, 2);
}

/* Through the rules: a high complaint left open escalates twice, by timer. */
static void test_step_escalations_from_the_rules(void **state)
{
    (void)state;
    harness *h = h_new();
    fset f;
    fset_init(&f, SET_CAP);
    buy(h, T0 - DAY, 1000);
    tf_event_t ev = ev_complaint(h, T0, "k-1", TF_CAT_SHIPPING, TF_SEV_HIGH);
    fig_apply(h, &ev, &f.s);
    HAS(&f.s, "complaints:category:shipping", 1);
    HAS(&f.s, "complaints:severity:high", 1);
    ONLY(&f.s, 2);
    fset_init(&f, SET_CAP);
    fig_advance(h, T0 + 2 * DAY, &f.s);
    assert_int_equal(count(h, TF_DERIVED_COMPLAINT_ESCALATED, NULL), 2);
    HAS(&f.s, "complaints:escalated:1", 1);
    HAS(&f.s, "complaints:escalated:2", 1);
    ONLY(&f.s, 2);
    teardown_h(h);
}

/* A complaint counts by category and severity by how much c->complaints grew. */
static void test_step_complaint_counted_when_it_grew(void **state)
{
    (void)state;
    static tf_customer_t c;
    tf_figures_mark m;
    fset f;
    tf_config_t cfg;
    tf_config_defaults(&cfg);
    harness *h = h_new();
    tf_event_t ev = ev_complaint(h, T0, "k-1", TF_CAT_QUALITY, TF_SEV_CRITICAL);
    memset(&c, 0, sizeof c);
    c.stage = TF_STAGE_GROWTH;
    c.complaints = 2;
    tf_figures_mark_before(&c, &ev, &m);
    c.complaints = 3;
    fset_init(&f, SET_CAP);
    tf_figures_step(&cfg.rules, &m, &c, &ev, NULL, 0, &f.s);
    HAS(&f.s, "complaints:category:quality", 1);
    HAS(&f.s, "complaints:severity:critical", 1);
    ONLY(&f.s, 2);

    /* Not grown: nothing. */
    tf_figures_mark_before(&c, &ev, &m);
    fset_init(&f, SET_CAP);
    tf_figures_step(&cfg.rules, &m, &c, &ev, NULL, 0, &f.s);
    ONLY(&f.s, 0);
    teardown_h(h);
}

/* Acknowledged while open and before any escalation: in time, once. */
static void test_step_complaint_in_time(void **state)
{
    (void)state;
    harness *h = h_new();
    fset f;
    buy(h, T0 - DAY, 1000);
    tf_event_t ev = ev_complaint(h, T0, "k-1", TF_CAT_SERVICE, TF_SEV_HIGH);
    step(h, &ev);
    fset_init(&f, SET_CAP);
    ev = ev_cupdate(h, T0 + HOUR, "k-1", TF_CST_ACKNOWLEDGED);
    fig_apply(h, &ev, &f.s);
    HAS(&f.s, "complaints:in_time", 1);
    ONLY(&f.s, 1);
    /* Resolved later: it was no longer open, so not counted again. */
    fset_init(&f, SET_CAP);
    ev = ev_cupdate(h, T0 + 2 * HOUR, "k-1", TF_CST_RESOLVED);
    fig_apply(h, &ev, &f.s);
    ONLY(&f.s, 0);
    teardown_h(h);
}

/* Resolved straight from open counts as well. */
static void test_step_complaint_resolved_in_time(void **state)
{
    (void)state;
    harness *h = h_new();
    fset f;
    buy(h, T0 - DAY, 1000);
    tf_event_t ev = ev_complaint(h, T0, "k-1", TF_CAT_SERVICE, TF_SEV_HIGH);
    step(h, &ev);
    fset_init(&f, SET_CAP);
    ev = ev_cupdate(h, T0 + HOUR, "k-1", TF_CST_RESOLVED);
    fig_apply(h, &ev, &f.s);
    HAS(&f.s, "complaints:in_time", 1);
    ONLY(&f.s, 1);
    teardown_h(h);
}

/* Acknowledged after the first escalation: late, not in time. */
static void test_step_complaint_late(void **state)
{
    (void)state;
    harness *h = h_new();
    fset f;
    buy(h, T0 - DAY, 1000);
    tf_event_t ev = ev_complaint(h, T0, "k-1", TF_CAT_SERVICE, TF_SEV_HIGH);
    step(h, &ev);
    fset_init(&f, SET_CAP);
    ev = ev_cupdate(h, T0 + 9 * HOUR, "k-1", TF_CST_ACKNOWLEDGED); /* the high SLA is 8 h */
    fig_apply(h, &ev, &f.s);
    HAS(&f.s, "complaints:escalated:1", 1);
    ONLY(&f.s, 1);
    teardown_h(h);
}

/* An update of a complaint not held (or held only from an earlier update) is not
 * in time: nobody knows when it was opened. */
static void test_step_complaint_unknown(void **state)
{
    (void)state;
    harness *h = h_new();
    fset f;
    buy(h, T0 - DAY, 1000);
    fset_init(&f, SET_CAP);
    tf_event_t ev = ev_cupdate(h, T0, "k-9", TF_CST_ACKNOWLEDGED);
    fig_apply(h, &ev, &f.s);
    ev = ev_cupdate(h, T0 + HOUR, "k-9", TF_CST_RESOLVED);
    fig_apply(h, &ev, &f.s);
    ONLY(&f.s, 0);
    teardown_h(h);
}

/* Still open after the update (a reopen of an open complaint): not counted. */
static void test_step_complaint_still_open(void **state)
{
    (void)state;
    harness *h = h_new();
    fset f;
    buy(h, T0 - DAY, 1000);
    tf_event_t ev = ev_complaint(h, T0, "k-1", TF_CAT_SERVICE, TF_SEV_HIGH);
    step(h, &ev);
    fset_init(&f, SET_CAP);
    ev = ev_cupdate(h, T0 + HOUR, "k-1", TF_CST_REOPENED);
    fig_apply(h, &ev, &f.s);
    ONLY(&f.s, 0);
    teardown_h(h);
}

/* contract_end (in rules.exit.kinds by default) churns: counted by its reason. */
static void test_step_exit_by_reason(void **state)
{
    (void)state;
    harness *h = h_new();
    fset f;
    buy(h, T0 - DAY, 1000);
    fset_init(&f, SET_CAP);
    tf_event_t ev = ev_exit(h, TF_KIND_CONTRACT_END, T0, "moved abroad");
    fig_apply(h, &ev, &f.s);
    HAS(&f.s, "exits:moved abroad", 1);
    HAS(&f.s, "left:growth:2026-01-06", 1);
    HAS(&f.s, "entered:churned:2026-01-06", 1);
    ONLY(&f.s, 3);
    /* Already churned: a second exit counts nothing. */
    fset_init(&f, SET_CAP);
    ev = ev_exit(h, TF_KIND_CONTRACT_END, T0 + DAY, "moved abroad");
    fig_apply(h, &ev, &f.s);
    ONLY(&f.s, 0);
    teardown_h(h);
}

static void test_step_exit_unspecified(void **state)
{
    (void)state;
    harness *h = h_new();
    fset f;
    buy(h, T0 - DAY, 1000);
    fset_init(&f, SET_CAP);
    tf_event_t ev = ev_exit(h, TF_KIND_CONTRACT_END, T0, "");
    fig_apply(h, &ev, &f.s);
    HAS(&f.s, "exits:unspecified", 1);
    teardown_h(h);
}

/* An unsubscribe only withdraws consent by default; with it in rules.exit.kinds it
 * ends the relationship and counts. */
static void test_step_exit_kind_configured(void **state)
{
    (void)state;
    harness *h = h_new();
    fset f;
    buy(h, T0 - DAY, 1000);
    fset_init(&f, SET_CAP);
    tf_event_t ev = ev_exit(h, TF_KIND_UNSUBSCRIBE, T0, "too many mails");
    fig_apply(h, &ev, &f.s);
    assert_int_equal(h->c.stage, TF_STAGE_GROWTH);
    ONLY(&f.s, 0);

    h->r.nexit_kinds = 2;
    snprintf(h->r.exit_kinds[1], sizeof h->r.exit_kinds[1], "unsubscribe");
    fset_init(&f, SET_CAP);
    ev = ev_exit(h, TF_KIND_UNSUBSCRIBE, T0 + HOUR, "too many mails");
    fig_apply(h, &ev, &f.s);
    assert_int_equal(h->c.stage, TF_STAGE_CHURNED);
    HAS(&f.s, "exits:too many mails", 1);
    teardown_h(h);
}

/* The exit must be what churned the customer: a kind outside rules.exit.kinds
 * whose step ends in churned (say the same step's timer) is not an exit, and one
 * inside that leaves the stage as it was is not either. */
static void test_step_exit_only_when_it_churned(void **state)
{
    (void)state;
    static tf_customer_t c;
    tf_figures_mark m;
    fset f;
    tf_config_t cfg;
    tf_config_defaults(&cfg);
    harness *h = h_new();
    tf_event_t ev = ev_exit(h, TF_KIND_UNSUBSCRIBE, T0, "x");
    memset(&c, 0, sizeof c);
    c.stage = TF_STAGE_DECLINE;
    tf_figures_mark_before(&c, &ev, &m);
    c.stage = TF_STAGE_CHURNED;
    fset_init(&f, SET_CAP);
    tf_figures_step(&cfg.rules, &m, &c, &ev, NULL, 0, &f.s);
    ONLY(&f.s, 0);

    ev = ev_exit(h, TF_KIND_CONTRACT_END, T0, "x");
    c.stage = TF_STAGE_DECLINE;
    tf_figures_mark_before(&c, &ev, &m);
    fset_init(&f, SET_CAP);
    tf_figures_step(&cfg.rules, &m, &c, &ev, NULL, 0, &f.s);
    ONLY(&f.s, 0);
    teardown_h(h);
}

/* ---- tf_figures_state ---- */

static void test_state_new_customer(void **state)
{
    (void)state;
    static tf_customer_t before, after;
    fset f;
    memset(&before, 0, sizeof before);
    memset(&after, 0, sizeof after);
    after.stage = TF_STAGE_PROSPECT;
    fset_init(&f, SET_CAP);
    tf_figures_state(&before, 0, &after, &f.s);
    HAS(&f.s, "customers", 1);
    HAS(&f.s, "stage:prospect", 1);
    ONLY(&f.s, 2);

    /* A hash that exists without a stage (a referral linked first) is new too. */
    snprintf(before.referred_by, sizeof before.referred_by, "grace");
    fset_init(&f, SET_CAP);
    tf_figures_state(&before, 1, &after, &f.s);
    HAS(&f.s, "customers", 1);
    HAS(&f.s, "stage:prospect", 1);
    ONLY(&f.s, 2);
}

static void test_state_unchanged(void **state)
{
    (void)state;
    static tf_customer_t c;
    fset f;
    memset(&c, 0, sizeof c);
    c.stage = TF_STAGE_MATURE;
    c.tier = TF_TIER_KEY;
    snprintf(c.level, sizeof c.level, "gold");
    c.surveys_sat = 1;
    c.sat_expectation_sum = 8;
    c.sat_perception_sum = 9;
    c.nps_count = 3;
    c.nps_promoters = 1;
    c.nps_detractors = 1;
    fset_init(&f, SET_CAP);
    tf_figures_state(&c, 1, &c, &f.s);
    ONLY(&f.s, 0);
}

static void test_state_stage_move(void **state)
{
    (void)state;
    static tf_customer_t before, after;
    fset f;
    memset(&before, 0, sizeof before);
    before.stage = TF_STAGE_GROWTH;
    after = before;
    after.stage = TF_STAGE_MATURE;
    fset_init(&f, SET_CAP);
    tf_figures_state(&before, 1, &after, &f.s);
    HAS(&f.s, "stage:growth", -1);
    HAS(&f.s, "stage:mature", 1);
    ONLY(&f.s, 2);
}

static void test_state_tier_moves(void **state)
{
    (void)state;
    static tf_customer_t before, after;
    fset f;
    memset(&before, 0, sizeof before);
    before.stage = TF_STAGE_GROWTH;
    after = before;
    after.tier = TF_TIER_REGULAR;
    fset_init(&f, SET_CAP);
    tf_figures_state(&before, 1, &after, &f.s);
    HAS(&f.s, "tier:regular", 1);
    ONLY(&f.s, 1);

    before = after;
    after.tier = TF_TIER_KEY;
    fset_init(&f, SET_CAP);
    tf_figures_state(&before, 1, &after, &f.s);
    HAS(&f.s, "tier:regular", -1);
    HAS(&f.s, "tier:key", 1);
    ONLY(&f.s, 2);

    before = after;
    after.tier = TF_TIER_NONE;
    fset_init(&f, SET_CAP);
    tf_figures_state(&before, 1, &after, &f.s);
    HAS(&f.s, "tier:key", -1);
    ONLY(&f.s, 1);
}

static void test_state_level_moves(void **state)
{
    (void)state;
    static tf_customer_t before, after;
    fset f;
    memset(&before, 0, sizeof before);
    before.stage = TF_STAGE_PROSPECT;
    after = before;
    after.stage = TF_STAGE_GROWTH;
    snprintf(after.level, sizeof after.level, "silver");
    fset_init(&f, SET_CAP);
    tf_figures_state(&before, 1, &after, &f.s);
    HAS(&f.s, "level:silver", 1);
    HAS(&f.s, "stage:prospect", -1);
    HAS(&f.s, "stage:growth", 1);
    ONLY(&f.s, 3);

    before = after;
    snprintf(after.level, sizeof after.level, "gold");
    fset_init(&f, SET_CAP);
    tf_figures_state(&before, 1, &after, &f.s);
    HAS(&f.s, "level:silver", -1);
    HAS(&f.s, "level:gold", 1);
    ONLY(&f.s, 2);
}

/* S = B / A x 100, summed as llround(S x 10^6): 2 / 3 gives 66666667, where a cut
 * would give 66666666. */
static void test_state_satisfaction(void **state)
{
    (void)state;
    static tf_customer_t before, after;
    fset f;
    memset(&before, 0, sizeof before);
    before.stage = TF_STAGE_GROWTH;
    after = before;
    after.surveys_sat = 1;
    after.sat_expectation_sum = 3;
    after.sat_perception_sum = 2;
    assert_int_equal(tf_figures_sat_micro(&before), -1);
    assert_int_equal(tf_figures_sat_micro(&after), 66666667);
    fset_init(&f, SET_CAP);
    tf_figures_state(&before, 1, &after, &f.s);
    HAS(&f.s, "sat:customers", 1);
    HAS(&f.s, "sat:sum_micro", 66666667);
    ONLY(&f.s, 2);

    /* A second survey moves the figure: the sum moves, the customer was counted. */
    before = after;
    after.surveys_sat = 2;
    after.sat_expectation_sum = 11;
    after.sat_perception_sum = 10; /* 90.909090909... */
    fset_init(&f, SET_CAP);
    tf_figures_state(&before, 1, &after, &f.s);
    HAS(&f.s, "sat:sum_micro", 90909091 - 66666667);
    ONLY(&f.s, 1);
}

static void test_state_satisfaction_of_a_new_customer(void **state)
{
    (void)state;
    static tf_customer_t before, after;
    fset f;
    memset(&before, 0, sizeof before);
    memset(&after, 0, sizeof after);
    after.stage = TF_STAGE_PROSPECT;
    after.surveys_sat = 1;
    after.sat_expectation_sum = 8;
    after.sat_perception_sum = 6;
    fset_init(&f, SET_CAP);
    tf_figures_state(&before, 0, &after, &f.s);
    HAS(&f.s, "sat:customers", 1);
    HAS(&f.s, "sat:sum_micro", 75000000);
}

static void test_state_nps(void **state)
{
    (void)state;
    static tf_customer_t before, after;
    fset f;
    memset(&before, 0, sizeof before);
    memset(&after, 0, sizeof after);
    after.stage = TF_STAGE_PROSPECT;
    after.nps_count = 4;
    after.nps_promoters = 2;
    after.nps_detractors = 1;
    fset_init(&f, SET_CAP);
    tf_figures_state(&before, 0, &after, &f.s);
    HAS(&f.s, "nps:promoters", 2);
    HAS(&f.s, "nps:passives", 1);
    HAS(&f.s, "nps:detractors", 1);

    /* One more detractor and one more passive. */
    before = after;
    after.nps_count = 6;
    after.nps_detractors = 2;
    fset_init(&f, SET_CAP);
    tf_figures_state(&before, 1, &after, &f.s);
    HAS(&f.s, "nps:detractors", 1);
    HAS(&f.s, "nps:passives", 1);
    ONLY(&f.s, 2);
}

/* ---- tf_figures_table ---- */

static void put(tf_figures_table *t, const char *field, int64_t v)
{
    assert_int_equal(tf_figures_table_add(t, field, strlen(field), v), TF_OK);
}

static void test_table_add_and_get(void **state)
{
    (void)state;
    tf_figures_table t;
    memset(&t, 0, sizeof t);
    assert_int_equal(tf_figures_table_get(&t, "customers"), 0); /* empty: no index yet */
    put(&t, "customers", 3);
    put(&t, "stage:growth", 2);
    put(&t, "customers", 4);
    assert_int_equal(tf_figures_table_get(&t, "customers"), 7);
    assert_int_equal(tf_figures_table_get(&t, "stage:growth"), 2);
    assert_int_equal(tf_figures_table_get(&t, "stage:mature"), 0);
    assert_int_equal(tf_figures_table_get(&t, "custom"), 0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.rows[0].field, "customers"); /* in the order first met */
    /* The field is field[0..len), not to its NUL. */
    assert_int_equal(tf_figures_table_add(&t, "stage:growth-and-more", 12, 1), TF_OK);
    assert_int_equal(tf_figures_table_get(&t, "stage:growth"), 3);
    tf_figures_table_free(&t);
    assert_int_equal(t.n, 0);
    assert_null(t.rows);
    tf_figures_table_free(&t); /* twice is harmless */
}

static void test_table_add_text(void **state)
{
    (void)state;
    tf_figures_table t;
    memset(&t, 0, sizeof t);
    static const char *const bad[] = {"", "abc", "1.5", "12x", "-", "99999999999999999999",
                                      "100000000000000000000000000000000000"};
    assert_int_equal(tf_figures_table_add_text(&t, "a", 1, "12", 2), TF_OK);
    assert_int_equal(tf_figures_table_add_text(&t, "a", 1, "-3", 2), TF_OK);
    assert_int_equal(tf_figures_table_add_text(&t, "a", 1, "-9223372036854775808", 20), TF_OK);
    assert_int_equal(tf_figures_table_add_text(&t, "b", 1, "9223372036854775807", 19), TF_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(tf_figures_table_add_text(&t, "c", 1, bad[i], strlen(bad[i])), TF_OK);
    /* value[0..vlen), not to its NUL */
    assert_int_equal(tf_figures_table_add_text(&t, "d", 1, "42abc", 2), TF_OK);
    assert_int_equal(t.skipped, sizeof bad / sizeof bad[0]);
    assert_int_equal(tf_figures_table_get(&t, "a"), INT64_MIN + 9);
    assert_int_equal(tf_figures_table_get(&t, "b"), INT64_MAX);
    assert_int_equal(tf_figures_table_get(&t, "c"), 0);
    assert_int_equal(tf_figures_table_get(&t, "d"), 42);
    assert_int_equal(t.n, 3);
    tf_figures_table_free(&t);
}

/* Thousands of fields (a year of daily flows per stage): the index grows past its
 * first size and every field is still found once. */
static void test_table_growth(void **state)
{
    (void)state;
    enum { N = 5000 };
    tf_figures_table t;
    char f[32];
    memset(&t, 0, sizeof t);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(f, sizeof f, "new:%d", i);
            put(&t, f, i + round);
        }
    }
    assert_int_equal(t.n, N);
    assert_true(t.index_cap >= 2 * N);
    for (int i = 0; i < N; i++) {
        snprintf(f, sizeof f, "new:%d", i);
        if (tf_figures_table_get(&t, f) != 2 * i + 1)
            fail_msg("%s = %lld", f, (long long)tf_figures_table_get(&t, f));
        assert_string_equal(t.rows[i].field, f);
    }
    assert_int_equal(tf_figures_table_get(&t, "new:5000"), 0);
    tf_figures_table_free(&t);
}

/* ---- tf_figures_view ---- */

static const int64_t windows_7_30[] = {7, 30};

static json_t *view(const tf_figures_table *t, int daily_days, size_t max_labels)
{
    tf_figures_view_opts o = {windows_7_30, 2, daily_days, max_labels};
    json_t *v = tf_figures_view(t, &o);
    assert_non_null(v);
    return v;
}

static json_t *at_path(json_t *v, const char *a, const char *b)
{
    json_t *x = json_object_get(v, a);
    if (x && b)
        x = json_object_get(x, b);
    if (!x)
        fail_msg("no %s%s%s", a, b ? "." : "", b ? b : "");
    return x;
}

static int64_t int_at(json_t *v, const char *a, const char *b)
{
    json_t *x = at_path(v, a, b);
    if (!json_is_integer(x))
        fail_msg("%s.%s is not an integer", a, b ? b : "");
    return (int64_t)json_integer_value(x);
}

static void expect_real(json_t *x, double want)
{
    if (!json_is_real(x))
        fail_msg("not a number, want %.17g", want);
    assert_near(json_real_value(x), want);
}

static void expect_null(json_t *x)
{
    assert_non_null(x);
    assert_true(json_is_null(x));
}

static json_t *window(json_t *v, size_t i)
{
    json_t *w = json_array_get(json_object_get(v, "windows"), i);
    assert_non_null(w);
    return w;
}

/* A population: 10 active, 5 churned, and flows around 2026-01-10. */
static void population(tf_figures_table *t)
{
    memset(t, 0, sizeof *t);
    put(t, "customers", 15);
    put(t, "stage:prospect", 3);
    put(t, "stage:growth", 4);
    put(t, "stage:mature", 2);
    put(t, "stage:decline", 1);
    put(t, "stage:churned", 5);
    put(t, "new:2026-01-10", 2);
    put(t, "entered:prospect:2026-01-10", 2);
    put(t, "new:2026-01-04", 1); /* the 7-day window's first day */
    put(t, "new:2026-01-03", 4); /* just before it */
    put(t, "entered:churned:2026-01-09", 3);
    put(t, "left:decline:2026-01-09", 3);
    put(t, "left:churned:2026-01-08", 1);
    put(t, "entered:growth:2026-01-08", 1);
    put(t, "entered:churned:2025-12-20", 2); /* in the 30-day window only */
    put(t, "entered:churned:2025-12-01", 7); /* in none */
}

static void test_view_as_of_latest_flow_day(void **state)
{
    (void)state;
    tf_figures_table t;
    population(&t);
    put(&t, "exits:2026-02-01", 1);          /* not a flow */
    put(&t, "campaigns:2026-03-01", 1);      /* not a flow */
    put(&t, "entered:nowhere:2026-04-01", 1); /* not a stage */
    json_t *v = view(&t, 3, 10);
    assert_string_equal(json_string_value(at_path(v, "as_of", NULL)), "2026-01-10");
    json_decref(v);
    tf_figures_table_free(&t);
}

static void test_view_without_flows(void **state)
{
    (void)state;
    tf_figures_table t;
    memset(&t, 0, sizeof t);
    put(&t, "customers", 2);
    put(&t, "stage:growth", 2);
    json_t *v = view(&t, 3, 10);
    expect_null(at_path(v, "as_of", NULL));
    assert_int_equal(json_array_size(json_object_get(v, "daily")), 0);
    assert_int_equal(int_at(window(v, 0), "start", NULL), 2);
    assert_int_equal(int_at(window(v, 0), "end", NULL), 2);
    expect_real(at_path(window(v, 0), "churn_rate", NULL), 0);
    expect_real(at_path(window(v, 0), "retention_rate", NULL), 1);
    json_decref(v);
    tf_figures_table_free(&t);
}

static void test_view_stages_and_active(void **state)
{
    (void)state;
    tf_figures_table t;
    population(&t);
    put(&t, "tier:key", 2);
    put(&t, "level:gold", 3);
    json_t *v = view(&t, 3, 10);
    assert_int_equal(int_at(v, "customers", NULL), 15);
    assert_int_equal(int_at(v, "active", NULL), 10); /* prospect to decline */
    assert_int_equal(int_at(v, "stages", "prospect"), 3);
    assert_int_equal(int_at(v, "stages", "growth"), 4);
    assert_int_equal(int_at(v, "stages", "mature"), 2);
    assert_int_equal(int_at(v, "stages", "decline"), 1);
    assert_int_equal(int_at(v, "stages", "churned"), 5);
    assert_int_equal(json_object_size(json_object_get(v, "stages")), 5);
    assert_int_equal(int_at(v, "tiers", "key"), 2);
    assert_int_equal(int_at(v, "levels", "gold"), 3);
    json_decref(v);
    tf_figures_table_free(&t);
}

/* Over the 7 days 2026-01-04..10: new 3, won back 1, churned 3, end 10, so start =
 * 10 - 3 - 1 + 3 = 9; churn 3 / 9, retention (10 - 3 - 1) / 9. Over 30 days the
 * churn of 2025-12-20 and the new of 2026-01-03 join. */
static void test_view_windows(void **state)
{
    (void)state;
    tf_figures_table t;
    population(&t);
    json_t *v = view(&t, 3, 10);
    json_t *w = window(v, 0);
    assert_int_equal(int_at(w, "days", NULL), 7);
    assert_string_equal(json_string_value(at_path(w, "from", NULL)), "2026-01-04");
    assert_int_equal(int_at(w, "start", NULL), 9);
    assert_int_equal(int_at(w, "new", NULL), 3);
    assert_int_equal(int_at(w, "won_back", NULL), 1);
    assert_int_equal(int_at(w, "churned", NULL), 3);
    assert_int_equal(int_at(w, "end", NULL), 10);
    expect_real(at_path(w, "churn_rate", NULL), 3.0 / 9);
    expect_real(at_path(w, "retention_rate", NULL), 6.0 / 9);

    w = window(v, 1);
    assert_int_equal(int_at(w, "days", NULL), 30);
    assert_string_equal(json_string_value(at_path(w, "from", NULL)), "2025-12-12");
    assert_int_equal(int_at(w, "new", NULL), 7);
    assert_int_equal(int_at(w, "won_back", NULL), 1);
    assert_int_equal(int_at(w, "churned", NULL), 5);
    assert_int_equal(int_at(w, "start", NULL), 10 - 7 - 1 + 5);
    expect_real(at_path(w, "churn_rate", NULL), 5.0 / 7);
    expect_real(at_path(w, "retention_rate", NULL), 2.0 / 7);
    json_decref(v);
    tf_figures_table_free(&t);
}

/* Everyone active came in within the window: no base, so no rate. */
static void test_view_rates_null_without_start(void **state)
{
    (void)state;
    tf_figures_table t;
    memset(&t, 0, sizeof t);
    put(&t, "customers", 2);
    put(&t, "stage:prospect", 2);
    put(&t, "new:2026-01-10", 2);
    put(&t, "entered:prospect:2026-01-10", 2);
    json_t *v = view(&t, 3, 10);
    json_t *w = window(v, 0);
    assert_int_equal(int_at(w, "start", NULL), 0);
    expect_null(at_path(w, "churn_rate", NULL));
    expect_null(at_path(w, "retention_rate", NULL));
    json_decref(v);
    tf_figures_table_free(&t);
}

/* Oldest day first; active at each day's end walks back from now: 10 at the 10th
 * (2 new), 8 at the 9th (3 churned), 11 at the 8th. */
static void test_view_daily(void **state)
{
    (void)state;
    tf_figures_table t;
    population(&t);
    json_t *v = view(&t, 3, 10);
    json_t *daily = json_object_get(v, "daily");
    assert_int_equal(json_array_size(daily), 3);
    static const char *const days[] = {"2026-01-08", "2026-01-09", "2026-01-10"};
    static const int64_t active[] = {11, 8, 10}, nw[] = {0, 0, 2}, won[] = {1, 0, 0}, churned[] = {0, 3, 0};
    for (size_t i = 0; i < 3; i++) {
        json_t *d = json_array_get(daily, i);
        assert_string_equal(json_string_value(at_path(d, "day", NULL)), days[i]);
        assert_int_equal(int_at(d, "active", NULL), active[i]);
        assert_int_equal(int_at(d, "new", NULL), nw[i]);
        assert_int_equal(int_at(d, "won_back", NULL), won[i]);
        assert_int_equal(int_at(d, "churned", NULL), churned[i]);
        assert_int_equal(json_object_size(json_object_get(d, "entered")), 5);
    }
    assert_int_equal(int_at(json_array_get(daily, 0), "entered", "growth"), 1);
    assert_int_equal(int_at(json_array_get(daily, 1), "entered", "churned"), 3);
    assert_int_equal(int_at(json_array_get(daily, 2), "entered", "prospect"), 2);
    assert_int_equal(int_at(json_array_get(daily, 2), "entered", "churned"), 0);
    json_decref(v);
    tf_figures_table_free(&t);
}

static void test_view_complaints(void **state)
{
    (void)state;
    tf_figures_table t;
    memset(&t, 0, sizeof t);
    json_t *v = view(&t, 0, 10);
    expect_null(at_path(v, "complaints", "sla_compliance"));
    json_decref(v);

    put(&t, "complaints:in_time", 3);
    put(&t, "complaints:escalated:1", 1);
    put(&t, "complaints:escalated:2", 1);
    put(&t, "complaints:category:shipping", 4);
    put(&t, "complaints:severity:high", 4);
    v = view(&t, 0, 10);
    assert_int_equal(int_at(v, "complaints", "in_time"), 3);
    assert_int_equal(int_at(v, "complaints", "escalated_level1"), 1);
    assert_int_equal(int_at(v, "complaints", "escalated_level2"), 1);
    expect_real(at_path(v, "complaints", "sla_compliance"), 0.75);
    assert_int_equal(int_at(at_path(v, "complaints", "by_category"), "shipping", NULL), 4);
    assert_int_equal(int_at(at_path(v, "complaints", "by_severity"), "high", NULL), 4);
    json_decref(v);
    tf_figures_table_free(&t);
}

static void test_view_nps_and_satisfaction(void **state)
{
    (void)state;
    tf_figures_table t;
    memset(&t, 0, sizeof t);
    json_t *v = view(&t, 0, 10);
    expect_null(at_path(v, "nps", "score"));
    expect_null(at_path(v, "satisfaction", "average"));
    json_decref(v);

    put(&t, "nps:promoters", 5);
    put(&t, "nps:passives", 3);
    put(&t, "nps:detractors", 2);
    put(&t, "sat:customers", 2);
    put(&t, "sat:sum_micro", 90000000 + 80500000);
    v = view(&t, 0, 10);
    assert_int_equal(int_at(v, "nps", "promoters"), 5);
    assert_int_equal(int_at(v, "nps", "passives"), 3);
    assert_int_equal(int_at(v, "nps", "detractors"), 2);
    expect_real(at_path(v, "nps", "score"), 30);
    assert_int_equal(int_at(v, "satisfaction", "customers"), 2);
    expect_real(at_path(v, "satisfaction", "average"), 85.25);
    json_decref(v);
    tf_figures_table_free(&t);
}

/* Largest first, at most max_labels, ties by name, the rest as "(other)"; labels at
 * 0 are left out. */
static void test_view_top_labels(void **state)
{
    (void)state;
    tf_figures_table t;
    memset(&t, 0, sizeof t);
    put(&t, "exits:price", 5);
    put(&t, "exits:moved", 3);
    put(&t, "exits:bad service", 3);
    put(&t, "exits:unspecified", 1);
    put(&t, "exits:gone", 0);
    put(&t, "campaigns:spring", 2);
    json_t *v = view(&t, 0, 2);
    json_t *exits = json_object_get(v, "exits");
    assert_int_equal(json_object_size(exits), 3);
    assert_int_equal(int_at(exits, "price", NULL), 5);
    assert_int_equal(int_at(exits, "bad service", NULL), 3); /* "bad service" < "moved" */
    assert_int_equal(int_at(exits, "(other)", NULL), 3 + 1);
    assert_null(json_object_get(exits, "moved"));
    /* Within max_labels: no "(other)". */
    json_t *campaigns = json_object_get(v, "campaigns");
    assert_int_equal(json_object_size(campaigns), 1);
    assert_int_equal(int_at(campaigns, "spring", NULL), 2);
    json_decref(v);

    v = view(&t, 0, 4);
    assert_int_equal(json_object_size(json_object_get(v, "exits")), 4);
    assert_null(json_object_get(json_object_get(v, "exits"), "(other)"));
    json_decref(v);
    tf_figures_table_free(&t);
}

/* Day fields that are not days are no flows: they move neither as_of nor a window. */
static void test_view_malformed_days_ignored(void **state)
{
    (void)state;
    tf_figures_table t;
    memset(&t, 0, sizeof t);
    put(&t, "stage:prospect", 5);
    put(&t, "new:2026-01-10", 1);
    static const char *const bad[] = {
        "new:2026-02-29",             /* not a leap year */
        "new:2026-13-01",             "new:2026-00-10", "new:2026-01-32", "new:2026-1-10",
        "new:2026-01-100",            "new:2026/01/11", "new:2o26-01-11", "new:",
        "entered:prospect:2026-04-31", "entered:prospect", "entered::2026-01-11",
        "entered:nowhere:2026-01-11", "left:churned:2026-01-1x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        put(&t, bad[i], 100);
    json_t *v = view(&t, 2, 10);
    assert_string_equal(json_string_value(at_path(v, "as_of", NULL)), "2026-01-10");
    json_t *w = window(v, 1);
    assert_int_equal(int_at(w, "new", NULL), 1);
    assert_int_equal(int_at(w, "won_back", NULL), 0);
    assert_int_equal(int_at(w, "churned", NULL), 0);
    assert_int_equal(int_at(w, "start", NULL), 4);
    json_t *daily = json_object_get(v, "daily");
    assert_int_equal(int_at(json_array_get(daily, 1), "entered", "prospect"), 0);
    assert_int_equal(int_at(json_array_get(daily, 0), "active", NULL), 4);
    json_decref(v);
    tf_figures_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_merges_by_field),
        cmocka_unit_test(test_add_zero_delta_adds_nothing),
        cmocka_unit_test(test_add_overflow_when_full),
        cmocka_unit_test(test_add_too_long_field),
        cmocka_unit_test(test_merge_adds_and_keeps_overflow),
        cmocka_unit_test(test_day_epoch),
        cmocka_unit_test(test_day_negative),
        cmocka_unit_test(test_day_leap_day),
        cmocka_unit_test(test_day_end_of_year),
        cmocka_unit_test(test_step_first_touchpoint),
        cmocka_unit_test(test_step_first_purchase),
        cmocka_unit_test(test_step_stage_changed_on_its_day),
        cmocka_unit_test(test_step_stage_changed_incomplete),
        cmocka_unit_test(test_step_timer_stage_changes),
        cmocka_unit_test(test_step_escalation_levels),
        cmocka_unit_test(test_step_escalations_from_the_rules),
        cmocka_unit_test(test_step_complaint_counted_when_it_grew),
        cmocka_unit_test(test_step_complaint_in_time),
        cmocka_unit_test(test_step_complaint_resolved_in_time),
        cmocka_unit_test(test_step_complaint_late),
        cmocka_unit_test(test_step_complaint_unknown),
        cmocka_unit_test(test_step_complaint_still_open),
        cmocka_unit_test(test_step_exit_by_reason),
        cmocka_unit_test(test_step_exit_unspecified),
        cmocka_unit_test(test_step_exit_kind_configured),
        cmocka_unit_test(test_step_exit_only_when_it_churned),
        cmocka_unit_test(test_state_new_customer),
        cmocka_unit_test(test_state_unchanged),
        cmocka_unit_test(test_state_stage_move),
        cmocka_unit_test(test_state_tier_moves),
        cmocka_unit_test(test_state_level_moves),
        cmocka_unit_test(test_state_satisfaction),
        cmocka_unit_test(test_state_satisfaction_of_a_new_customer),
        cmocka_unit_test(test_state_nps),
        cmocka_unit_test(test_table_add_and_get),
        cmocka_unit_test(test_table_add_text),
        cmocka_unit_test(test_table_growth),
        cmocka_unit_test(test_view_as_of_latest_flow_day),
        cmocka_unit_test(test_view_without_flows),
        cmocka_unit_test(test_view_stages_and_active),
        cmocka_unit_test(test_view_windows),
        cmocka_unit_test(test_view_rates_null_without_start),
        cmocka_unit_test(test_view_daily),
        cmocka_unit_test(test_view_complaints),
        cmocka_unit_test(test_view_nps_and_satisfaction),
        cmocka_unit_test(test_view_top_labels),
        cmocka_unit_test(test_view_malformed_days_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, free_all);
}
