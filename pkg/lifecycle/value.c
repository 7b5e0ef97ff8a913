/* Value figures: spend windows, churn risk and its warning, value tiers and member
 * levels (DOMAIN.md: value and tiers, satisfaction and loyalty, churn warning). */
#include <stdio.h>
#include <string.h>

#include "lifecycle/internal.h"

static int64_t bucket_ms(const tf_config_rules *r)
{
    return r->spend_window_days * TF_MS_PER_DAY / (TF_SPEND_BUCKETS / 2);
}

static int64_t bucket_of(const tf_config_rules *r, int64_t ms)
{
    int64_t w = bucket_ms(r), b = ms / w;
    return ms % w < 0 ? b - 1 : b;
}

void tf_lc_spend_add(const tf_config_rules *r, tf_customer_t *c, int64_t at_ms, int64_t amount)
{
    int64_t b = bucket_of(r, at_ms);
    int empty = 1;
    for (int i = 0; i < TF_SPEND_BUCKETS; i++)
        empty &= c->spend_buckets[i] == 0;
    if (empty || b > c->spend_base) {
        /* Slide: the newest bucket becomes b, older ones shift out. */
        int64_t shift = empty ? TF_SPEND_BUCKETS : b - c->spend_base;
        if (shift >= TF_SPEND_BUCKETS) {
            memset(c->spend_buckets, 0, sizeof(c->spend_buckets));
        } else {
            memmove(&c->spend_buckets[0], &c->spend_buckets[shift],
                    sizeof(c->spend_buckets[0]) * (size_t)(TF_SPEND_BUCKETS - shift));
            memset(&c->spend_buckets[TF_SPEND_BUCKETS - shift], 0, sizeof(c->spend_buckets[0]) * (size_t)shift);
        }
        c->spend_base = b;
    }
    int64_t i = TF_SPEND_BUCKETS - 1 - (c->spend_base - b);
    if (i >= 0) /* older than both windows: counted in the totals only */
        c->spend_buckets[i] = tf_lc_add(c->spend_buckets[i], amount);
}

void tf_lc_spend_windows(const tf_config_rules *r, const tf_customer_t *c, int64_t now_ms, int64_t *recent,
                         int64_t *previous)
{
    int64_t now_b = bucket_of(r, now_ms), half = TF_SPEND_BUCKETS / 2;
    *recent = *previous = 0;
    for (int i = 0; i < TF_SPEND_BUCKETS; i++) {
        int64_t b = c->spend_base - (TF_SPEND_BUCKETS - 1 - i), age = now_b - b;
        if (age < 0)
            continue;
        if (age < half)
            *recent = tf_lc_add(*recent, c->spend_buckets[i]);
        else if (age < 2 * half)
            *previous = tf_lc_add(*previous, c->spend_buckets[i]);
    }
}

int tf_lc_spend_declined(const tf_config_rules *r, const tf_customer_t *c, int64_t now_ms, int64_t *recent,
                         int64_t *previous)
{
    tf_lc_spend_windows(r, c, now_ms, recent, previous);
    /* Only a customer whose first purchase is older than both windows has a
     * "window before" that means anything. */
    if (*previous <= 0 || now_ms - c->first_purchase_ms < 2 * r->spend_window_days * TF_MS_PER_DAY)
        return 0;
    return *recent * 100 < *previous * r->spend_decline_pct;
}

static double clamp01(double v)
{
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

static void add_reason(char *buf, size_t size, const char *name)
{
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s%s", len ? "," : "", name);
}

int64_t tf_lc_risk(const tf_config_rules *r, const tf_customer_t *c, int64_t now_ms, char *reasons,
                   size_t reasons_size)
{
    double risk = 0;
    reasons[0] = '\0';
    if (c->purchases > 0) {
        /* Nothing at half the customer's own decline threshold, all of it at the
         * threshold (or half way to the churn point, when that comes first). */
        double idle = (double)(now_ms - c->last_purchase_ms) / (double)tf_lc_warning_horizon_ms(r, c);
        double s = clamp01((idle - 0.5) * 2);
        if (s > 0) {
            risk += s * (double)r->weight_inactivity;
            add_reason(reasons, reasons_size, "inactivity");
        }
        int64_t recent, previous;
        tf_lc_spend_windows(r, c, now_ms, &recent, &previous);
        if (previous > 0 && now_ms - c->first_purchase_ms >= 2 * r->spend_window_days * TF_MS_PER_DAY &&
            recent < previous) {
            risk += clamp01(1.0 - (double)recent / (double)previous) * (double)r->weight_spend_decline;
            add_reason(reasons, reasons_size, "spend_decline");
        }
    }
    int64_t recent_complaints = tf_lc_recent_complaints(r, c, now_ms);
    int repeated = recent_complaints >= r->repeat_complaints;
    if (c->open_complaints > 0 || repeated) {
        risk += clamp01(0.5 * (double)c->open_complaints + (repeated ? 0.5 : 0)) * (double)r->weight_complaints;
        add_reason(reasons, reasons_size, repeated ? "repeated_complaints" : "open_complaints");
    }
    double sat = tf_customer_satisfaction(c);
    if (sat >= 0 && sat < (double)r->low_satisfaction_pct) {
        /* Full weight 40 points under the threshold (90% -> 50%). */
        risk += clamp01(((double)r->low_satisfaction_pct - sat) / 40.0) * (double)r->weight_satisfaction;
        add_reason(reasons, reasons_size, "low_satisfaction");
    }
    double nps = tf_customer_nps_mean(c);
    if (nps >= 0 && nps <= (double)r->low_nps) {
        risk += clamp01(((double)r->low_nps + 1 - nps) / ((double)r->low_nps + 1)) * (double)r->weight_nps;
        add_reason(reasons, reasons_size, "low_nps");
    }
    /* Past its own expected purchase: an early decline sign, in full until it buys
     * (weighted on top of the five above; the sum is capped below). */
    if (r->weight_overdue > 0 && tf_lc_overdue(r, c, now_ms)) {
        risk += (double)r->weight_overdue;
        add_reason(reasons, reasons_size, "overdue");
    }
    int64_t out = (int64_t)(risk + 0.5);
    return out > 100 ? 100 : out;
}

void tf_lc_clear_warning(tf_customer_t *c, const tf_cause *cause, const char *rule, tf_emit *e)
{
    c->warned = 0;
    tf_derived_t *d = tf_lc_derive(e, TF_DERIVED_CHURN_CLEARED, cause, rule);
    if (!d)
        return;
    tf_derived_add_int(d, "risk", c->risk);
    tf_derived_add_int(d, "warned_days", (cause->at_ms - c->warned_at_ms) / TF_MS_PER_DAY);
}

/* 1 + how many of step, 2 step, 4 step, 8 step v reaches. */
static int doubling_score(int64_t v, int64_t step)
{
    int s = 1;
    for (int i = 0; i < 4 && v >= step; i++, step *= 2)
        s++;
    return s;
}

void tf_lc_rfm(const tf_config_rules *r, tf_customer_t *c, int64_t now_ms)
{
    if (c->purchases == 0) {
        c->rfm_r = c->rfm_f = c->rfm_m = 0;
        return;
    }
    int64_t idle_days = (now_ms - c->last_purchase_ms) / TF_MS_PER_DAY;
    /* Recency runs the other way: under one step is 5, past eight steps is 1. */
    c->rfm_r = 6 - doubling_score(idle_days, r->rfm_recency_days);
    if (c->rfm_r < 1)
        c->rfm_r = 1;
    c->rfm_f = doubling_score(c->purchases, r->rfm_frequency_step);
    if (c->rfm_f > 5)
        c->rfm_f = 5;
    c->rfm_m = doubling_score(c->spend - c->refunded, r->rfm_monetary_step);
    if (c->rfm_m > 5)
        c->rfm_m = 5;
}

static void add_rfm(tf_derived_t *d, const tf_customer_t *c)
{
    char rfm[16];
    snprintf(rfm, sizeof(rfm), "%d%d%d", c->rfm_r, c->rfm_f, c->rfm_m);
    tf_derived_add_str(d, "rfm", rfm);
}

void tf_lc_review_risk(const tf_config_rules *r, tf_customer_t *c, const tf_cause *cause, tf_emit *e)
{
    char reasons[96];
    tf_lc_rfm(r, c, cause->at_ms);
    int bought = cause->ev && cause->ev->kind == TF_KIND_PURCHASE;
    c->risk = tf_lc_risk(r, c, cause->at_ms, reasons, sizeof(reasons));
    if (c->warned && bought) {
        tf_lc_clear_warning(c, cause, "purchase", e); /* a purchase clears, whatever the risk */
        return;
    }
    if (c->stage == TF_STAGE_CHURNED || c->stage == TF_STAGE_PROSPECT)
        return; /* no relationship to save, or none yet */
    if (!c->warned && c->risk >= r->churn_warning && !bought) {
        c->warned = 1;
        c->warned_at_ms = cause->at_ms;
        tf_derived_t *d = tf_lc_derive(e, TF_DERIVED_CHURN_WARNING, cause, "risk_above_warning");
        if (!d)
            return;
        tf_derived_add_int(d, "risk", c->risk);
        tf_derived_add_list(d, "reasons", reasons);
        tf_derived_add_int(d, "warning_threshold", r->churn_warning);
        tf_derived_add_str(d, "stage", tf_stage_name(c->stage));
        if (c->purchases)
            tf_derived_add_int(d, "days_since_purchase", (cause->at_ms - c->last_purchase_ms) / TF_MS_PER_DAY);
        tf_derived_add_int(d, "open_complaints", c->open_complaints);
        double sat = tf_customer_satisfaction(c);
        if (sat >= 0)
            tf_derived_add_num(d, "satisfaction", sat);
        if (c->purchases)
            add_rfm(d, c);
    } else if (c->warned && c->risk < r->churn_clear) {
        tf_lc_clear_warning(c, cause, "risk_below_clear", e);
    }
}

/* Which tier the value earns, with hysteresis for the tier the customer holds. */
static tf_tier tier_for(const tf_config_rules *r, const tf_population_t *pop, const tf_customer_t *c, int64_t value,
                        int64_t now_ms)
{
    tf_tier t = TF_TIER_REGULAR;
    if (pop->self_ranked && pop->self_value > value)
        value = pop->self_value;
    if (pop->buyers >= r->tier_min_population) {
        if (value >= pop->key_enter || (c->tier == TF_TIER_KEY && value >= pop->key_keep))
            t = TF_TIER_KEY;
        else if (value >= pop->potential_enter ||
                 ((c->tier == TF_TIER_KEY || c->tier == TF_TIER_POTENTIAL) && value >= pop->potential_keep))
            t = TF_TIER_POTENTIAL;
    }
    if (t == TF_TIER_REGULAR && c->purchases == 1 &&
        now_ms - c->last_purchase_ms >= r->temporary_after_days * TF_MS_PER_DAY)
        t = TF_TIER_TEMPORARY;
    return t;
}

void tf_lc_review_tier(const tf_config_rules *r, const tf_population_t *pop, tf_customer_t *c,
                       const tf_cause *cause, tf_emit *e)
{
    if (c->purchases == 0)
        return;
    int64_t value = tf_customer_value(r, c);
    tf_tier want = tier_for(r, pop, c, value, cause->at_ms);
    if (want == c->tier)
        return;
    tf_tier from = c->tier;
    c->tier = want;
    c->tier_since_ms = cause->at_ms;
    if (from == TF_TIER_NONE && want == TF_TIER_REGULAR)
        return; /* a new buyer's first tier is not news */
    const char *rule = want == TF_TIER_TEMPORARY ? "one_off_buyer" : "value_rank";
    tf_derived_t *d = tf_lc_derive(e, TF_DERIVED_TIER_CHANGED, cause, rule);
    if (!d)
        return;
    tf_derived_add_str(d, "from", tf_tier_name(from));
    tf_derived_add_str(d, "to", tf_tier_name(want));
    tf_derived_add_int(d, "value", value);
    tf_derived_add_int(d, "buyers", pop->buyers);
    if (pop->key_enter != INT64_MAX)
        tf_derived_add_int(d, "key_cutoff", pop->key_enter);
    if (pop->potential_enter != INT64_MAX)
        tf_derived_add_int(d, "potential_cutoff", pop->potential_enter);
    tf_derived_add_int(d, "purchases", c->purchases);
    add_rfm(d, c);
}

void tf_lc_review_level(const tf_config_rules *r, tf_customer_t *c, const tf_cause *cause, tf_emit *e)
{
    if (c->purchases == 0 || r->nlevels == 0)
        return;
    int64_t net = tf_lc_add(c->spend, -c->refunded);
    c->points = net > 0 ? tf_lc_mul(net / 100, r->points_per_unit) : 0;
    size_t lvl = 0;
    for (size_t i = 0; i < r->nlevels; i++)
        if (c->points >= r->levels[i].min_points)
            lvl = i;
    const char *want = r->levels[lvl].name;
    if (strcmp(c->level, want) == 0)
        return;
    char from[TF_RULES_NAME_MAX];
    tf_strlcpy(from, c->level, sizeof(from));
    tf_strlcpy(c->level, want, sizeof(c->level));
    if (from[0] == '\0')
        return; /* the first level comes with the first purchase */
    tf_derived_t *d = tf_lc_derive(e, TF_DERIVED_LOYALTY_LEVEL_CHANGED, cause, "points");
    if (!d)
        return;
    tf_derived_add_str(d, "from", from);
    tf_derived_add_str(d, "to", want);
    tf_derived_add_int(d, "points", c->points);
    tf_derived_add_int(d, "min_points", r->levels[lvl].min_points);
}
