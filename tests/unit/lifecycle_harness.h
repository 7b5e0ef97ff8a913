/* The pure lifecycle engine driven the way the pipeline drives it, for the
 * lifecycle unit tests: one customer, its rules, and every derived event in order
 * (the customer's timers due by an event's time fire first, then the event
 * applies), read back with the exact type, rule, time, subject and figures.
 * Included by each test file; static inline so that each uses what it needs. */
#ifndef TF_TESTS_LIFECYCLE_HARNESS_H
#define TF_TESTS_LIFECYCLE_HARNESS_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "lifecycle/lifecycle.h"
#include "lifecycle/internal.h"

#define DAY TF_MS_PER_DAY
#define HOUR TF_MS_PER_HOUR
/* 2026-01-06T12:15:00Z, where most stories start. */
#define T0 INT64_C(1767701700000)
#define CUSTOMER "c-1"
#define SOURCE "/web/shop-cn"
#define LOG_MAX 512

static inline int64_t at(int y, int m, int d, int hh, int mi)
{
    return tf_days_from_civil(y, m, d) * DAY + hh * HOUR + mi * INT64_C(60000);
}

/* ---- the harness: one customer, its rules, and every derived event in order ---- */

typedef struct {
    tf_config_rules r;
    tf_population_t pop;
    int use_pop;
    tf_customer_t c;
    int seq;                    /* event ids e-1, e-2, ... */
    size_t n, cur;              /* log[0..n), the next one to check */
    tf_derived_t log[LOG_MAX];
} harness;

/* Live harnesses, freed by teardown even when a test fails half-way. */
static harness *live[4];

static inline harness *h_new(void)
{
    harness *h = calloc(1, sizeof *h);
    assert_non_null(h);
    size_t i = 0;
    while (i < 4 && live[i])
        i++;
    assert_true(i < 4);
    live[i] = h;
    tf_config_t cfg;
    tf_config_defaults(&cfg);
    h->r = cfg.rules;
    h->r.nfestivals = 0; /* the care calendar only where a test wants it */
    /* The purchase rhythm (replenishment reminders, purchase.overdue and its churn
     * risk) likewise: the stories of the other rules buy at steady intervals. */
    h->r.rhythm_min_intervals = 0;
    return h;
}

/* The purchase rhythm as configured by default. */
static inline void h_rhythm(harness *h)
{
    tf_config_t cfg;
    tf_config_defaults(&cfg);
    h->r.rhythm_min_intervals = cfg.rules.rhythm_min_intervals;
}

static inline void h_calendar(harness *h)
{
    tf_config_t cfg;
    tf_config_defaults(&cfg);
    h->r.nfestivals = cfg.rules.nfestivals;
    memcpy(h->r.festivals, cfg.rules.festivals, sizeof h->r.festivals);
}

static inline void h_population(harness *h, int64_t buyers, int64_t key_enter, int64_t key_keep, int64_t pot_enter,
                         int64_t pot_keep)
{
    h->use_pop = 1;
    h->pop = (tf_population_t){buyers, key_enter, key_keep, pot_enter, pot_keep, 0, 0};
}

static inline const tf_population_t *popp(const harness *h)
{
    return h->use_pop ? &h->pop : NULL;
}

static inline void h_append(harness *h, const tf_derived_t *d, size_t k)
{
    assert_true(h->n + k <= LOG_MAX);
    memcpy(&h->log[h->n], d, k * sizeof *d);
    h->n += k;
}

/* Fires every timer due by until, as the timer scan does. */
static inline void run(harness *h, int64_t until)
{
    static tf_derived_t out[64];
    int more;
    do {
        size_t k = tf_lifecycle_advance(&h->r, popp(h), CUSTOMER, &h->c, until, out, 64, &more);
        h_append(h, out, k);
    } while (more);
}

/* What the pipeline does per touchpoint: timers due by its time, then the event. */
static inline size_t step(harness *h, const tf_event_t *ev)
{
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    run(h, ev->time_ms);
    size_t k = tf_lifecycle_apply(&h->r, popp(h), &h->c, ev, out);
    assert_true(k <= TF_LIFECYCLE_MAX_DERIVED);
    h_append(h, out, k);
    return k;
}

static inline tf_event_t ev_new(harness *h, tf_event_kind kind, int64_t t)
{
    tf_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    snprintf(ev.id, sizeof ev.id, "e-%d", ++h->seq);
    snprintf(ev.source, sizeof ev.source, "%s", SOURCE);
    snprintf(ev.subject, sizeof ev.subject, "%s", CUSTOMER);
    ev.time_ms = t;
    ev.nps = -1;
    ev.duration_s = -1;
    return ev;
}

static inline void touch(harness *h, tf_event_kind kind, int64_t t)
{
    tf_event_t ev = ev_new(h, kind, t);
    step(h, &ev);
}

/* A purchase of order "o-<event id>"; margin < INT64_MIN + 1 means none given. */
#define NO_MARGIN INT64_MIN
static inline tf_event_t ev_buy(harness *h, int64_t t, int64_t amount, int64_t margin, const char *currency)
{
    tf_event_t ev = ev_new(h, TF_KIND_PURCHASE, t);
    snprintf(ev.order_id, sizeof ev.order_id, "o-e-%d", h->seq);
    ev.amount = amount;
    snprintf(ev.currency, sizeof ev.currency, "%s", currency);
    if (margin != NO_MARGIN) {
        ev.has_margin = 1;
        ev.margin = margin;
    }
    return ev;
}

static inline void buy(harness *h, int64_t t, int64_t amount)
{
    tf_event_t ev = ev_buy(h, t, amount, NO_MARGIN, "CNY");
    step(h, &ev);
}

static inline void buy_m(harness *h, int64_t t, int64_t amount, int64_t margin)
{
    tf_event_t ev = ev_buy(h, t, amount, margin, "CNY");
    step(h, &ev);
}

static inline void refund(harness *h, int64_t t, int64_t amount, const char *currency)
{
    tf_event_t ev = ev_new(h, TF_KIND_REFUND, t);
    snprintf(ev.order_id, sizeof ev.order_id, "o-r");
    ev.amount = amount;
    snprintf(ev.currency, sizeof ev.currency, "%s", currency);
    step(h, &ev);
}

static inline void survey(harness *h, int64_t t, double a, double b, int nps)
{
    tf_event_t ev = ev_new(h, TF_KIND_SURVEY, t);
    if (a > 0) {
        ev.has_sat = 1;
        ev.expectation = a;
        ev.perception = b;
    }
    ev.nps = nps;
    step(h, &ev);
}

static inline void complaint(harness *h, int64_t t, const char *id, tf_complaint_severity sev)
{
    tf_event_t ev = ev_new(h, TF_KIND_COMPLAINT, t);
    snprintf(ev.complaint_id, sizeof ev.complaint_id, "%s", id);
    ev.category = TF_CAT_SERVICE;
    ev.severity = sev;
    step(h, &ev);
}

static inline void cupdate(harness *h, int64_t t, const char *id, tf_complaint_status st)
{
    tf_event_t ev = ev_new(h, TF_KIND_COMPLAINT_UPDATE, t);
    snprintf(ev.complaint_id, sizeof ev.complaint_id, "%s", id);
    ev.status = st;
    step(h, &ev);
}

static inline void profile(harness *h, int64_t t, int bm, int bd, int ay, int am, int ad)
{
    tf_event_t ev = ev_new(h, TF_KIND_PROFILE, t);
    ev.birth_month = bm;
    ev.birth_day = bd;
    ev.anniv_year = ay;
    ev.anniv_month = am;
    ev.anniv_day = ad;
    step(h, &ev);
}

/* ---- reading derived events ---- */

static inline void dump(const harness *h)
{
    for (size_t i = 0; i < h->n; i++) {
        const tf_derived_t *d = &h->log[i];
        char t[TF_TIME_RFC3339_LEN];
        tf_time_format_rfc3339(d->time_ms, t);
        fprintf(stderr, "%s[%zu] %s %s %s %s {", i == h->cur ? ">" : " ", i, t, tf_derived_type_name(d->type),
                d->rule, d->subject);
        for (size_t j = 0; j < d->nfigures; j++) {
            const tf_figure *f = &d->figures[j];
            if (f->kind == TF_FIG_INT)
                fprintf(stderr, " %s=%lld", f->name, (long long)f->i);
            else if (f->kind == TF_FIG_NUM)
                fprintf(stderr, " %s=%.6g", f->name, f->num);
            else
                fprintf(stderr, " %s=\"%s\"", f->name, f->str);
        }
        fprintf(stderr, " }\n");
    }
}

static inline const tf_figure *fig(const tf_derived_t *d, const char *name)
{
    for (size_t i = 0; i < d->nfigures; i++)
        if (strcmp(d->figures[i].name, name) == 0)
            return &d->figures[i];
    return NULL;
}

static inline const tf_figure *fig_of(const tf_derived_t *d, const char *name, tf_figure_kind kind)
{
    const tf_figure *f = fig(d, name);
    if (!f || f->kind != kind)
        fail_msg("%s/%s: figure \"%s\" %s", tf_derived_type_name(d->type), d->rule, name,
                 f ? "has another kind" : "missing");
    return f;
}

static inline int64_t fig_i(const tf_derived_t *d, const char *name)
{
    return fig_of(d, name, TF_FIG_INT)->i;
}

static inline double fig_n(const tf_derived_t *d, const char *name)
{
    return fig_of(d, name, TF_FIG_NUM)->num;
}

static inline const char *fig_s(const tf_derived_t *d, const char *name)
{
    const tf_figure *f = fig(d, name);
    if (f && f->kind == TF_FIG_LIST)
        return f->str;
    return fig_of(d, name, TF_FIG_STR)->str;
}

static inline void assert_near(double got, double want)
{
    if (!(fabs(got - want) <= 1e-9 * (fabs(want) > 1 ? fabs(want) : 1)))
        fail_msg("%.17g, want %.17g", got, want);
}

static inline const char *iso(int64_t ms)
{
    static char buf[4][TF_TIME_RFC3339_LEN];
    static int i;
    i = (i + 1) % 4;
    tf_time_format_rfc3339(ms, buf[i]);
    return buf[i];
}

/* The next derived event not yet checked must be this one. */
#define NEXT(h, type, rule, t) next_impl((h), (type), (rule), (t), __LINE__)
static inline const tf_derived_t *next_impl(harness *h, tf_derived_type type, const char *rule, int64_t t, int line)
{
    if (h->cur >= h->n) {
        dump(h);
        fail_msg("line %d: no derived event left, want %s/%s at %s", line, tf_derived_type_name(type), rule, iso(t));
    }
    const tf_derived_t *d = &h->log[h->cur];
    if (d->type != type || strcmp(d->rule, rule) != 0 || d->time_ms != t ||
        (type != TF_DERIVED_REFERRAL_CREDITED && strcmp(d->subject, CUSTOMER) != 0) || strlen(d->id) != 32) {
        dump(h);
        fail_msg("line %d: derived[%zu] is %s/%s at %s, want %s/%s at %s", line, h->cur,
                 tf_derived_type_name(d->type), d->rule, iso(d->time_ms), tf_derived_type_name(type), rule, iso(t));
    }
    h->cur++;
    return d;
}

#define NOTHING(h) nothing_impl((h), __LINE__)
static inline void nothing_impl(harness *h, int line)
{
    if (h->cur != h->n) {
        dump(h);
        fail_msg("line %d: %zu unexpected derived event(s) from [%zu]", line, h->n - h->cur, h->cur);
    }
}

/* A stage change with its common figures. */
#define STAGE(h, rule, t, from, to, cause) stage_impl((h), (rule), (t), (from), (to), (cause), __LINE__)
static inline const tf_derived_t *stage_impl(harness *h, const char *rule, int64_t t, const char *from, const char *to,
                                      const char *cause, int line)
{
    const tf_derived_t *d = next_impl(h, TF_DERIVED_STAGE_CHANGED, rule, t, line);
    assert_string_equal(fig_s(d, "from"), from);
    assert_string_equal(fig_s(d, "to"), to);
    assert_string_equal(fig_s(d, "cause"), cause);
    return d;
}

/* A care reminder of kind for occasion, due at t. */
#define CARE(h, kind, occasion, t) care_impl((h), (kind), (occasion), (t), __LINE__)
static inline const tf_derived_t *care_impl(harness *h, const char *kind, const char *occasion, int64_t t, int line)
{
    const tf_derived_t *d = next_impl(h, TF_DERIVED_CARE_REMINDER, kind, t, line);
    assert_string_equal(fig_s(d, "kind"), kind);
    assert_string_equal(fig_s(d, "occasion"), occasion);
    assert_string_equal(fig_s(d, "due"), iso(t));
    return d;
}

/* The warning of a customer gone silent: inactivity alone, at its full default weight,
 * reaches the default warning threshold (60) when the decline by inactivity comes. */
#define SILENT_WARNING(h, t) silent_warning_impl((h), (t), __LINE__)
static inline const tf_derived_t *silent_warning_impl(harness *h, int64_t t, int line)
{
    const tf_derived_t *d = next_impl(h, TF_DERIVED_CHURN_WARNING, "risk_above_warning", t, line);
    assert_int_equal(fig_i(d, "risk"), 60);
    assert_string_equal(fig_s(d, "reasons"), "inactivity");
    assert_int_equal(fig_i(d, "warning_threshold"), 60);
    assert_string_equal(fig_s(d, "stage"), "decline");
    return d;
}

/* Explicit churn-risk weights, for a test about the other signals. */
static inline void h_weights(harness *h, int64_t inactivity, int64_t spend, int64_t complaints, int64_t satisfaction,
                      int64_t nps)
{
    h->r.weight_inactivity = inactivity;
    h->r.weight_spend_decline = spend;
    h->r.weight_complaints = complaints;
    h->r.weight_satisfaction = satisfaction;
    h->r.weight_nps = nps;
}

/* Skips the post-purchase follow-ups (checked in their own test). */
static inline void skip_followups(harness *h)
{
    while (h->cur < h->n && h->log[h->cur].type == TF_DERIVED_CARE_REMINDER &&
           strcmp(h->log[h->cur].rule, "post_purchase") == 0)
        h->cur++;
}

/* Derived events of type (and rule, unless NULL) in the whole log. */
static inline size_t count(const harness *h, tf_derived_type type, const char *rule)
{
    size_t k = 0;
    for (size_t i = 0; i < h->n; i++)
        if (h->log[i].type == type && (!rule || strcmp(h->log[i].rule, rule) == 0))
            k++;
    return k;
}

/* Moves the cursor to the end, keeping only events of type (in order) in out. */
static inline size_t take(harness *h, tf_derived_type type, const tf_derived_t **out, size_t cap)
{
    size_t k = 0;
    for (; h->cur < h->n; h->cur++)
        if (h->log[h->cur].type == type && k < cap)
            out[k++] = &h->log[h->cur];
    return k;
}

static inline void teardown_h(harness *h)
{
    for (size_t i = 0; i < 4; i++)
        if (live[i] == h)
            live[i] = NULL;
    free(h);
}

static inline int free_all(void **state)
{
    (void)state;
    for (size_t i = 0; i < 4; i++) {
        free(live[i]);
        live[i] = NULL;
    }
    return 0;
}

#endif
