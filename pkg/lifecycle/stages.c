/* The stage machine's transitions and their figures (DOMAIN.md, lifecycle stages). */
#include <string.h>

#include "lifecycle/internal.h"

void tf_lc_change_stage(tf_customer_t *c, tf_stage to, const tf_cause *cause, const char *rule, tf_emit *e)
{
    tf_derived_t *d = tf_lc_derive(e, TF_DERIVED_STAGE_CHANGED, cause, rule);
    if (d) {
        tf_derived_add_str(d, "from", tf_stage_name(c->stage));
        tf_derived_add_str(d, "to", tf_stage_name(to));
        tf_derived_add_int(d, "purchases", c->purchases);
        tf_derived_add_int(d, "spend", c->spend - c->refunded);
        if (c->purchases > 0) {
            tf_derived_add_int(d, "tenure_days", (cause->at_ms - c->first_purchase_ms) / TF_MS_PER_DAY);
            tf_derived_add_int(d, "days_since_purchase", (cause->at_ms - c->last_purchase_ms) / TF_MS_PER_DAY);
        }
        tf_derived_add_str(d, "cause", cause->ev ? tf_event_kind_name(cause->ev->kind) : "timer");
    }
    memmove(&c->history[1], &c->history[0], sizeof(c->history[0]) * (TF_STAGE_HISTORY - 1));
    c->history[0].at_ms = cause->at_ms;
    c->history[0].from = c->stage;
    c->history[0].to = to;
    tf_strlcpy(c->history[0].rule, rule, sizeof(c->history[0].rule));
    if (c->nhistory < TF_STAGE_HISTORY)
        c->nhistory++;
    c->stage = to;
    c->stage_since_ms = cause->at_ms;
}

void tf_lc_enter_churned(tf_customer_t *c, const tf_cause *cause, const char *rule, tf_emit *e)
{
    int64_t since_purchase = c->last_purchase_ms ? (cause->at_ms - c->last_purchase_ms) / TF_MS_PER_DAY : -1;
    tf_lc_change_stage(c, TF_STAGE_CHURNED, cause, rule, e);
    c->churned_count++;
    /* A prospect that never bought has no relationship to win back. */
    if (c->purchases == 0)
        return;
    tf_derived_t *d = tf_lc_derive(e, TF_DERIVED_WINBACK_OPPORTUNITY, cause, rule);
    if (!d)
        return;
    tf_derived_add_str(d, "cause", cause->ev ? tf_event_kind_name(cause->ev->kind) : "no_purchase");
    tf_derived_add_int(d, "purchases", c->purchases);
    tf_derived_add_int(d, "spend", c->spend - c->refunded);
    if (since_purchase >= 0)
        tf_derived_add_int(d, "days_since_purchase", since_purchase);
    tf_derived_add_int(d, "churned_count", c->churned_count);
    tf_lc_add_favourites(c, d); /* what it bought most: the offer that may win it back */
}

int tf_lc_is_mature(const tf_config_rules *r, const tf_customer_t *c, int64_t now_ms)
{
    if (c->purchases == 0)
        return 0;
    int64_t tenure_days = (now_ms - c->first_purchase_ms) / TF_MS_PER_DAY;
    if (c->purchases >= r->mature_min_purchases && tenure_days >= r->mature_min_tenure_days)
        return 1;
    return r->mature_spend_threshold > 0 && c->spend - c->refunded >= r->mature_spend_threshold;
}

int64_t tf_lc_inactivity_threshold_ms(const tf_config_rules *r, const tf_customer_t *c)
{
    int64_t floor_ms = r->inactivity_min_days * TF_MS_PER_DAY;
    int64_t mean = tf_customer_mean_interval_ms(c);
    if (mean < 0)
        return floor_ms;
    int64_t own = mean / 100 * r->inactivity_factor_pct;
    return own > floor_ms ? own : floor_ms;
}

int64_t tf_lc_warning_horizon_ms(const tf_config_rules *r, const tf_customer_t *c)
{
    int64_t own = tf_lc_inactivity_threshold_ms(r, c);
    int64_t halfway = r->churn_after_days * TF_MS_PER_DAY / 2;
    return own < halfway || halfway <= 0 ? own : halfway;
}

static void decline(tf_customer_t *c, const tf_cause *cause, const char *rule, tf_emit *e, const char *f1, int64_t v1,
                    const char *f2, int64_t v2)
{
    size_t at = e->n;
    tf_lc_change_stage(c, TF_STAGE_DECLINE, cause, rule, e);
    if (e->n > at) {
        tf_derived_add_int(&e->out[at], f1, v1);
        tf_derived_add_int(&e->out[at], f2, v2);
    }
}

void tf_lc_review_stage(const tf_config_rules *r, tf_customer_t *c, const tf_cause *cause, tf_emit *e)
{
    int64_t now = cause->at_ms;
    if (c->purchases == 0)
        return;
    if (c->stage == TF_STAGE_GROWTH && tf_lc_is_mature(r, c, now))
        tf_lc_change_stage(c, TF_STAGE_MATURE, cause, "mature_threshold", e);

    if (c->stage == TF_STAGE_GROWTH || c->stage == TF_STAGE_MATURE) {
        int64_t idle = now - c->last_purchase_ms, threshold = tf_lc_inactivity_threshold_ms(r, c);
        int64_t recent, previous;
        char reasons[96];
        int64_t risk;
        if (idle >= threshold) {
            int64_t mean = tf_customer_mean_interval_ms(c); /* -1 with one purchase: no interval */
            decline(c, cause, "inactivity", e, "threshold_days", threshold / TF_MS_PER_DAY, "mean_interval_days",
                    mean < 0 ? -1 : mean / TF_MS_PER_DAY);
        } else if (tf_lc_spend_declined(r, c, now, &recent, &previous)) {
            decline(c, cause, "spend_decline", e, "recent_spend", recent, "previous_spend", previous);
        } else if ((risk = tf_lc_risk(r, c, now, reasons, sizeof(reasons))) >= r->churn_warning) {
            decline(c, cause, "churn_risk", e, "risk", risk, "warning_threshold", r->churn_warning);
        }
        return;
    }
    if (c->stage == TF_STAGE_DECLINE && now - c->last_purchase_ms >= r->churn_after_days * TF_MS_PER_DAY)
        tf_lc_enter_churned(c, cause, "no_purchase", e);
}
