/* The deltas each commit adds to the population figures (figures.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "figures/figures.h"

void tf_figures_add(tf_figures_set *s, const char *field, int64_t delta)
{
    if (delta == 0)
        return;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->v[i].field, field) == 0) {
            s->v[i].delta += delta;
            return;
        }
    }
    if (s->n == s->cap || strlen(field) >= TF_FIGURES_FIELD_MAX) {
        s->overflow = 1;
        return;
    }
    tf_strlcpy(s->v[s->n].field, field, TF_FIGURES_FIELD_MAX);
    s->v[s->n++].delta = delta;
}

void tf_figures_merge(tf_figures_set *s, const tf_figures_set *from)
{
    for (size_t i = 0; i < from->n; i++)
        tf_figures_add(s, from->v[i].field, from->v[i].delta);
    if (from->overflow)
        s->overflow = 1;
}

void tf_figures_day(int64_t ms, char out[11])
{
    int64_t days = ms / TF_MS_PER_DAY - (ms % TF_MS_PER_DAY < 0 ? 1 : 0);
    int64_t y;
    int m, d;
    tf_civil_from_days(days, &y, &m, &d);
    snprintf(out, 11, "%04d-%02d-%02d", (int)(y < 0 ? 0 : y > 9999 ? 9999 : y), m, d);
}

/* field = a ":" b [":" c] */
static void add3(tf_figures_set *s, const char *a, const char *b, const char *c, int64_t delta)
{
    char f[TF_FIGURES_FIELD_MAX + 1];
    int len = c ? snprintf(f, sizeof f, "%s:%s:%s", a, b, c) : snprintf(f, sizeof f, "%s:%s", a, b);
    if (len < 0 || (size_t)len >= TF_FIGURES_FIELD_MAX) {
        s->overflow = 1;
        return;
    }
    tf_figures_add(s, f, delta);
}

static const tf_complaint_t *find_complaint(const tf_customer_t *c, const char *id)
{
    for (size_t i = 0; i < c->ncomplaints; i++)
        if (strcmp(c->complaint[i].id, id) == 0)
            return &c->complaint[i];
    return NULL;
}

void tf_figures_mark_before(const tf_customer_t *c, const tf_event_t *ev, tf_figures_mark *m)
{
    memset(m, 0, sizeof(*m));
    m->stage = c->stage;
    m->complaints = c->complaints;
    if (ev && ev->kind == TF_KIND_COMPLAINT_UPDATE) {
        const tf_complaint_t *k = find_complaint(c, ev->complaint_id);
        if (k && k->opened_ms > 0) {
            m->complaint_known = 1;
            m->complaint_state = k->state;
            m->complaint_level = k->level;
        }
    }
}

static const tf_figure *figure(const tf_derived_t *d, const char *name)
{
    for (size_t i = 0; i < d->nfigures; i++)
        if (strcmp(d->figures[i].name, name) == 0)
            return &d->figures[i];
    return NULL;
}

static void derived_flows(const tf_derived_t *d, tf_figures_set *s)
{
    char day[11];
    if (d->type == TF_DERIVED_STAGE_CHANGED) {
        const tf_figure *from = figure(d, "from"), *to = figure(d, "to");
        if (!from || !to)
            return;
        tf_figures_day(d->time_ms, day);
        add3(s, "left", from->str, day, 1);
        add3(s, "entered", to->str, day, 1);
    } else if (d->type == TF_DERIVED_COMPLAINT_ESCALATED) {
        const tf_figure *level = figure(d, "level");
        if (level && level->kind == TF_FIG_INT && level->i >= 1 && level->i <= 2)
            tf_figures_add(s, level->i == 1 ? "complaints:escalated:1" : "complaints:escalated:2", 1);
    }
}

static void event_counts(const tf_config_rules *r, const tf_figures_mark *m, const tf_customer_t *c,
                         const tf_event_t *ev, tf_figures_set *s)
{
    switch (ev->kind) {
    case TF_KIND_COMPLAINT:
        if (c->complaints > m->complaints) {
            add3(s, "complaints:category", tf_complaint_category_name(ev->category), NULL, c->complaints - m->complaints);
            add3(s, "complaints:severity", tf_complaint_severity_name(ev->severity), NULL, c->complaints - m->complaints);
        }
        break;
    case TF_KIND_COMPLAINT_UPDATE: {
        /* In time: it left "open" before its deadline passed (no escalation yet). */
        const tf_complaint_t *k = find_complaint(c, ev->complaint_id);
        if (m->complaint_known && m->complaint_state == TF_COMPLAINT_OPEN && m->complaint_level == 0 && k &&
            k->state != TF_COMPLAINT_OPEN)
            tf_figures_add(s, "complaints:in_time", 1);
        break;
    }
    case TF_KIND_CONTRACT_END:
    case TF_KIND_UNSUBSCRIBE:
        if (tf_lifecycle_exit_churns(r, ev->kind) && m->stage != TF_STAGE_CHURNED && c->stage == TF_STAGE_CHURNED)
            add3(s, "exits", ev->reason[0] ? ev->reason : "unspecified", NULL, 1);
        break;
    case TF_KIND_PURCHASE: {
        /* A purchase leaves the campaign fields as they were: the state after it
         * still names the last campaign touched before it. */
        const char *campaign = tf_customer_attributed_campaign(r, c, ev->time_ms);
        if (campaign && campaign[0])
            add3(s, "campaigns", campaign, NULL, 1);
        break;
    }
    default:
        break;
    }
}

void tf_figures_step(const tf_config_rules *r, const tf_figures_mark *m, const tf_customer_t *c,
                     const tf_event_t *ev, const tf_derived_t *out, size_t n, tf_figures_set *s)
{
    if (m->stage == TF_STAGE_NONE && c->stage != TF_STAGE_NONE) {
        /* A first touchpoint places the customer without a stage change event. */
        char day[11];
        tf_figures_day(c->first_seen_ms, day);
        add3(s, "new", day, NULL, 1);
        add3(s, "entered", tf_stage_name(TF_STAGE_PROSPECT), day, 1);
    }
    for (size_t i = 0; i < n; i++)
        derived_flows(&out[i], s);
    if (ev)
        event_counts(r, m, c, ev, s);
}

int64_t tf_figures_sat_micro(const tf_customer_t *c)
{
    double sat = tf_customer_satisfaction(c);
    return sat < 0 ? -1 : (int64_t)llround(sat * 1e6);
}

static void count(tf_figures_set *s, const char *what, const char *name, int64_t delta)
{
    if (name && name[0])
        add3(s, what, name, NULL, delta);
}

void tf_figures_state(const tf_customer_t *before, int before_exists, const tf_customer_t *after,
                      tf_figures_set *s)
{
    int was = before_exists && before->stage != TF_STAGE_NONE, is = after->stage != TF_STAGE_NONE;
    if (!was && is)
        tf_figures_add(s, "customers", 1);
    if (was && before->stage != after->stage)
        count(s, "stage", tf_stage_name(before->stage), -1);
    if (is && (!was || before->stage != after->stage))
        count(s, "stage", tf_stage_name(after->stage), 1);
    tf_tier bt = was ? before->tier : TF_TIER_NONE;
    if (bt != after->tier) {
        if (bt != TF_TIER_NONE)
            count(s, "tier", tf_tier_name(bt), -1);
        if (after->tier != TF_TIER_NONE)
            count(s, "tier", tf_tier_name(after->tier), 1);
    }
    const char *bl = was ? before->level : "";
    if (strcmp(bl, after->level) != 0) {
        count(s, "level", bl, -1);
        count(s, "level", after->level, 1);
    }
    int64_t bs = was ? tf_figures_sat_micro(before) : -1, as = tf_figures_sat_micro(after);
    if (bs != as) {
        tf_figures_add(s, "sat:customers", (as >= 0) - (bs >= 0));
        tf_figures_add(s, "sat:sum_micro", (as >= 0 ? as : 0) - (bs >= 0 ? bs : 0));
    }
    int64_t bp = was ? before->nps_promoters : 0, bd = was ? before->nps_detractors : 0;
    int64_t bn = was ? before->nps_count : 0;
    tf_figures_add(s, "nps:promoters", after->nps_promoters - bp);
    tf_figures_add(s, "nps:detractors", after->nps_detractors - bd);
    tf_figures_add(s, "nps:passives",
                   (after->nps_count - after->nps_promoters - after->nps_detractors) - (bn - bp - bd));
}
