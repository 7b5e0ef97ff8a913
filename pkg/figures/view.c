/* What the stored figures say: counts as they are, flows per day turned into
 * churn and retention over windows and a daily series (figures.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "figures/figures.h"

/* One day's flows, at offset (as_of - day) in the horizon. */
typedef struct {
    int64_t new_, won_back, churned;
    int64_t entered[TF_STAGE__COUNT];
} day_flows;

typedef struct {
    const char *name;
    int64_t n;
} label_count;

static int parse_day(const char *s, int64_t *days)
{
    int v[8], k = 0;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7)
            continue;
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v[k++] = s[i] - '0';
    }
    int64_t y = v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3];
    int m = v[4] * 10 + v[5], d = v[6] * 10 + v[7];
    if (m < 1 || m > 12 || d < 1 || d > tf_month_days(y, m))
        return 0;
    *days = tf_days_from_civil(y, m, d);
    return 1;
}

/* "<prefix><rest>": rest, or NULL. */
static const char *after(const char *field, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(field, prefix, n) == 0 ? field + n : NULL;
}

/* "entered:<stage>:<day>" -> stage and day. */
static int stage_day(const char *rest, tf_stage *stage, int64_t *day)
{
    const char *colon = strchr(rest, ':');
    char name[32];
    if (!colon || (size_t)(colon - rest) >= sizeof(name))
        return 0;
    memcpy(name, rest, (size_t)(colon - rest));
    name[colon - rest] = '\0';
    return tf_stage_parse(name, stage) == TF_OK && parse_day(colon + 1, day);
}

static int flow_day(const tf_figures_row *r, int64_t *day)
{
    const char *rest;
    tf_stage st;
    if ((rest = after(r->field, "new:")))
        return parse_day(rest, day);
    if ((rest = after(r->field, "entered:")) || (rest = after(r->field, "left:")))
        return stage_day(rest, &st, day);
    return 0;
}

static void set_int(json_t *o, const char *k, int64_t v) { json_object_set_new(o, k, json_integer((json_int_t)v)); }

static void set_ratio(json_t *o, const char *k, double num, double den)
{
    json_object_set_new(o, k, den > 0 ? json_real(num / den) : json_null());
}

static int by_count(const void *a, const void *b)
{
    const label_count *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The rows under prefix, largest first, at most max of them, then "(other)". */
static json_t *top_labels(const tf_figures_table *t, const char *prefix, size_t max)
{
    json_t *o = json_object();
    label_count *v = malloc((t->n + 1) * sizeof(*v));
    size_t n = 0;
    if (!o || !v) {
        free(v);
        json_decref(o);
        return NULL;
    }
    for (size_t i = 0; i < t->n; i++) {
        const char *rest = after(t->rows[i].field, prefix);
        if (rest && t->rows[i].value != 0)
            v[n++] = (label_count){rest, t->rows[i].value};
    }
    qsort(v, n, sizeof(*v), by_count);
    int64_t other = 0;
    for (size_t i = 0; i < n; i++) {
        if (i < max)
            set_int(o, v[i].name, v[i].n);
        else
            other += v[i].n;
    }
    if (n > max)
        set_int(o, "(other)", other);
    free(v);
    return o;
}

/* The rows under prefix as they are (a bounded set: stages, tiers, levels...). */
static json_t *labels(const tf_figures_table *t, const char *prefix)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < t->n; i++) {
        const char *rest = after(t->rows[i].field, prefix);
        if (rest && !strchr(rest, ':'))
            set_int(o, rest, t->rows[i].value);
    }
    return o;
}

static void day_text(int64_t days, char out[11]) { tf_figures_day(days * TF_MS_PER_DAY, out); }

json_t *tf_figures_view(const tf_figures_table *t, const tf_figures_view_opts *o)
{
    json_t *v = json_object();
    if (!v)
        return NULL;
    int64_t as_of = INT64_MIN, day;
    for (size_t i = 0; i < t->n; i++)
        if (flow_day(&t->rows[i], &day) && day > as_of)
            as_of = day;

    int64_t horizon = o->daily_days > 0 ? o->daily_days : 1;
    for (size_t w = 0; w < o->nwindows; w++)
        if (o->windows_days[w] > horizon)
            horizon = o->windows_days[w];
    day_flows *flows = as_of != INT64_MIN ? calloc((size_t)horizon, sizeof(*flows)) : NULL;
    if (as_of != INT64_MIN && !flows) {
        json_decref(v);
        return NULL;
    }
    for (size_t i = 0; flows && i < t->n; i++) {
        const tf_figures_row *r = &t->rows[i];
        const char *rest;
        tf_stage st = TF_STAGE_NONE;
        if (!flow_day(r, &day) || as_of - day >= horizon)
            continue;
        day_flows *f = &flows[as_of - day];
        if (after(r->field, "new:")) {
            f->new_ += r->value;
        } else if ((rest = after(r->field, "entered:")) && stage_day(rest, &st, &day)) {
            f->entered[st] += r->value;
            if (st == TF_STAGE_CHURNED)
                f->churned += r->value;
        } else if ((rest = after(r->field, "left:")) && stage_day(rest, &st, &day) && st == TF_STAGE_CHURNED) {
            f->won_back += r->value;
        }
    }

    char text[11];
    if (as_of != INT64_MIN) {
        day_text(as_of, text);
        json_object_set_new(v, "as_of", json_string(text));
    } else {
        json_object_set_new(v, "as_of", json_null());
    }
    int64_t active = 0;
    json_t *stages = json_object();
    for (int s = TF_STAGE_PROSPECT; s < TF_STAGE__COUNT; s++) {
        char f[32];
        snprintf(f, sizeof f, "stage:%s", tf_stage_name((tf_stage)s));
        int64_t n = tf_figures_table_get(t, f);
        set_int(stages, tf_stage_name((tf_stage)s), n);
        if (s != TF_STAGE_CHURNED)
            active += n;
    }
    set_int(v, "customers", tf_figures_table_get(t, "customers"));
    set_int(v, "active", active);
    json_object_set_new(v, "stages", stages);
    json_object_set_new(v, "tiers", labels(t, "tier:"));
    json_object_set_new(v, "levels", labels(t, "level:"));

    json_t *windows = json_array();
    for (size_t w = 0; w < o->nwindows; w++) {
        json_t *x = json_object();
        int64_t nw = 0, won = 0, churned = 0;
        for (int64_t d = 0; flows && d < o->windows_days[w]; d++)
            nw += flows[d].new_, won += flows[d].won_back, churned += flows[d].churned;
        int64_t start = active - nw - won + churned;
        set_int(x, "days", o->windows_days[w]);
        if (as_of != INT64_MIN) {
            day_text(as_of - o->windows_days[w] + 1, text);
            json_object_set_new(x, "from", json_string(text));
        }
        set_int(x, "start", start);
        set_int(x, "new", nw);
        set_int(x, "won_back", won);
        set_int(x, "churned", churned);
        set_int(x, "end", active);
        set_ratio(x, "churn_rate", (double)churned, (double)start);
        set_ratio(x, "retention_rate", (double)(active - nw - won), (double)start);
        json_array_append_new(windows, x);
    }
    json_object_set_new(v, "windows", windows);

    /* Active at the end of each day, walking back from now. */
    json_t *daily = json_array();
    int64_t end_active = active;
    for (int64_t d = 0; flows && d < o->daily_days; d++) {
        const day_flows *f = &flows[d];
        json_t *x = json_object(), *entered = json_object();
        day_text(as_of - d, text);
        json_object_set_new(x, "day", json_string(text));
        set_int(x, "active", end_active);
        set_int(x, "new", f->new_);
        set_int(x, "won_back", f->won_back);
        set_int(x, "churned", f->churned);
        for (int s = TF_STAGE_PROSPECT; s < TF_STAGE__COUNT; s++)
            set_int(entered, tf_stage_name((tf_stage)s), f->entered[s]);
        json_object_set_new(x, "entered", entered);
        json_array_insert_new(daily, 0, x);
        end_active -= f->new_ + f->won_back - f->churned;
    }
    json_object_set_new(v, "daily", daily);
    free(flows);

    json_t *sat = json_object();
    int64_t sat_n = tf_figures_table_get(t, "sat:customers");
    set_int(sat, "customers", sat_n);
    set_ratio(sat, "average", (double)tf_figures_table_get(t, "sat:sum_micro") / 1e6, (double)sat_n);
    json_object_set_new(v, "satisfaction", sat);

    json_t *nps = json_object();
    int64_t pro = tf_figures_table_get(t, "nps:promoters"), pas = tf_figures_table_get(t, "nps:passives"),
            det = tf_figures_table_get(t, "nps:detractors");
    set_int(nps, "promoters", pro);
    set_int(nps, "passives", pas);
    set_int(nps, "detractors", det);
    set_ratio(nps, "score", 100.0 * (double)(pro - det), (double)(pro + pas + det));
    json_object_set_new(v, "nps", nps);

    json_t *cp = json_object();
    int64_t in_time = tf_figures_table_get(t, "complaints:in_time"),
            esc1 = tf_figures_table_get(t, "complaints:escalated:1");
    json_object_set_new(cp, "by_category", labels(t, "complaints:category:"));
    json_object_set_new(cp, "by_severity", labels(t, "complaints:severity:"));
    set_int(cp, "in_time", in_time);
    set_int(cp, "escalated_level1", esc1);
    set_int(cp, "escalated_level2", tf_figures_table_get(t, "complaints:escalated:2"));
    set_ratio(cp, "sla_compliance", (double)in_time, (double)(in_time + esc1));
    json_object_set_new(v, "complaints", cp);

    json_object_set_new(v, "exits", top_labels(t, "exits:", o->max_labels));
    json_object_set_new(v, "campaigns", top_labels(t, "campaigns:", o->max_labels));
    return v;
}
