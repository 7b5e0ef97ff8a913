/* The event-driven rules: counters, value figures and stage transitions. */
#include <stdio.h>
#include <string.h>

#include "lifecycle/lifecycle.h"

static const char *const stage_names[TF_STAGE__COUNT] = {
    "none", "prospect", "growth", "mature", "decline", "churned",
};

const char *tf_stage_name(tf_stage s)
{
    return (unsigned)s < TF_STAGE__COUNT ? stage_names[s] : "none";
}

int tf_stage_parse(const char *name, tf_stage *out)
{
    for (int i = 0; i < TF_STAGE__COUNT; i++) {
        if (strcmp(name, stage_names[i]) == 0) {
            *out = (tf_stage)i;
            return TF_OK;
        }
    }
    return TF_ENOTFOUND;
}

double tf_customer_satisfaction(const tf_customer_t *c)
{
    if (c->surveys_sat == 0 || c->sat_expectation_sum <= 0)
        return -1;
    return c->sat_perception_sum / c->sat_expectation_sum * 100.0;
}

int64_t tf_customer_mean_interval_ms(const tf_customer_t *c)
{
    if (c->purchases < 2)
        return -1;
    return (c->last_purchase_ms - c->first_purchase_ms) / (c->purchases - 1);
}

double tf_customer_nps_mean(const tf_customer_t *c)
{
    return c->nps_count ? (double)c->nps_sum / (double)c->nps_count : -1;
}

/* Starts a derived event caused by ev. */
static tf_derived_t *derive(tf_derived_t *out, size_t *n, tf_derived_type type, const tf_event_t *ev,
                            const char *rule)
{
    tf_derived_t *d = &out[(*n)++];
    memset(d, 0, sizeof(*d));
    d->type = type;
    d->time_ms = ev->time_ms;
    tf_strlcpy(d->subject, ev->subject, sizeof(d->subject));
    tf_strlcpy(d->rule, rule, sizeof(d->rule));
    /* The rule joins the cause: one touchpoint may fire the same type twice (two
     * stage changes), each needs its own stable id. */
    char cause[TF_EVENT_ID_MAX + TF_FIG_NAME_MAX + 2];
    snprintf(cause, sizeof(cause), "%s#%s", ev->id, rule);
    tf_derived_set_id(d, ev->source, cause);
    return d;
}

static void change_stage(tf_customer_t *c, tf_stage to, const tf_event_t *ev, const char *rule,
                         tf_derived_t *out, size_t *n)
{
    tf_derived_t *d = derive(out, n, TF_DERIVED_STAGE_CHANGED, ev, rule);
    tf_derived_add_str(d, "from", tf_stage_name(c->stage));
    tf_derived_add_str(d, "to", tf_stage_name(to));
    tf_derived_add_int(d, "purchases", c->purchases);
    tf_derived_add_int(d, "spend", c->spend - c->refunded);
    if (c->purchases > 0)
        tf_derived_add_int(d, "tenure_days", (ev->time_ms - c->first_purchase_ms) / TF_MS_PER_DAY);
    tf_derived_add_str(d, "cause", tf_event_kind_name(ev->kind));
    memmove(&c->history[1], &c->history[0], sizeof(c->history[0]) * (TF_STAGE_HISTORY - 1));
    c->history[0].at_ms = ev->time_ms;
    c->history[0].from = c->stage;
    c->history[0].to = to;
    tf_strlcpy(c->history[0].rule, rule, sizeof(c->history[0].rule));
    if (c->nhistory < TF_STAGE_HISTORY)
        c->nhistory++;
    c->stage = to;
    c->stage_since_ms = ev->time_ms;
}

static int is_mature(const tf_config_rules *r, const tf_customer_t *c, int64_t now_ms)
{
    int64_t tenure_days = (now_ms - c->first_purchase_ms) / TF_MS_PER_DAY;
    if (c->purchases >= r->mature_min_purchases && tenure_days >= r->mature_min_tenure_days)
        return 1;
    return r->mature_spend_threshold > 0 && c->spend - c->refunded >= r->mature_spend_threshold;
}

static void count_purchase(tf_customer_t *c, const tf_event_t *ev)
{
    c->purchases++;
    if (c->first_purchase_ms == 0 || ev->time_ms < c->first_purchase_ms)
        c->first_purchase_ms = ev->time_ms;
    if (ev->time_ms > c->last_purchase_ms)
        c->last_purchase_ms = ev->time_ms;
    if (c->currency[0] == '\0')
        memcpy(c->currency, ev->currency, sizeof(c->currency));
    if (strcmp(c->currency, ev->currency) != 0) {
        c->foreign_purchases++;
        return;
    }
    c->spend += ev->amount;
    if (ev->has_margin)
        c->margin += ev->margin;
}

static void apply_purchase(const tf_config_rules *r, tf_customer_t *c, const tf_event_t *ev,
                           tf_derived_t *out, size_t *n)
{
    tf_stage before = c->stage;
    count_purchase(c, ev);
    switch (before) {
    case TF_STAGE_PROSPECT:
        change_stage(c, TF_STAGE_GROWTH, ev, "first_purchase", out, n);
        break;
    case TF_STAGE_CHURNED: {
        change_stage(c, TF_STAGE_GROWTH, ev, "winback_purchase", out, n);
        tf_derived_t *d = derive(out, n, TF_DERIVED_WINBACK_SUCCEEDED, ev, "winback_purchase");
        tf_derived_add_str(d, "order_id", ev->order_id);
        tf_derived_add_int(d, "amount", ev->amount);
        tf_derived_add_int(d, "churned_count", c->churned_count);
        return;
    }
    case TF_STAGE_DECLINE:
        change_stage(c, is_mature(r, c, ev->time_ms) ? TF_STAGE_MATURE : TF_STAGE_GROWTH, ev,
                     "recovered_purchase", out, n);
        return;
    default:
        break;
    }
    if (c->stage == TF_STAGE_GROWTH && is_mature(r, c, ev->time_ms))
        change_stage(c, TF_STAGE_MATURE, ev, "mature_threshold", out, n);
}

static void apply_exit(tf_customer_t *c, const tf_event_t *ev, tf_derived_t *out, size_t *n)
{
    if (c->stage == TF_STAGE_CHURNED)
        return;
    change_stage(c, TF_STAGE_CHURNED, ev, "explicit_exit", out, n);
    c->churned_count++;
    tf_derived_t *d = derive(out, n, TF_DERIVED_WINBACK_OPPORTUNITY, ev, "explicit_exit");
    tf_derived_add_str(d, "cause", tf_event_kind_name(ev->kind));
    tf_derived_add_int(d, "purchases", c->purchases);
    tf_derived_add_int(d, "spend", c->spend - c->refunded);
    if (c->last_purchase_ms)
        tf_derived_add_int(d, "days_since_purchase", (ev->time_ms - c->last_purchase_ms) / TF_MS_PER_DAY);
}

size_t tf_lifecycle_apply(const tf_config_rules *rules, tf_customer_t *c, const tf_event_t *ev,
                          tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED])
{
    size_t n = 0;

    if (c->stage == TF_STAGE_NONE) {
        c->stage = TF_STAGE_PROSPECT;
        c->stage_since_ms = ev->time_ms;
    }
    c->counts[ev->kind]++;
    /* Late events still count but never move the first/last-seen marks the wrong way. */
    if (c->first_seen_ms == 0 || ev->time_ms < c->first_seen_ms)
        c->first_seen_ms = ev->time_ms;
    if (ev->time_ms > c->last_seen_ms)
        c->last_seen_ms = ev->time_ms;

    switch (ev->kind) {
    case TF_KIND_PURCHASE:
        apply_purchase(rules, c, ev, out, &n);
        break;
    case TF_KIND_REFUND:
        if (strcmp(c->currency, ev->currency) == 0)
            c->refunded += ev->amount;
        break;
    case TF_KIND_COMPLAINT:
        c->complaints++;
        c->open_complaints++;
        break;
    case TF_KIND_COMPLAINT_UPDATE:
        if (ev->status == TF_CST_RESOLVED && c->open_complaints > 0)
            c->open_complaints--;
        else if (ev->status == TF_CST_REOPENED)
            c->open_complaints++;
        break;
    case TF_KIND_SURVEY:
        if (ev->has_sat) {
            c->surveys_sat++;
            c->sat_expectation_sum += ev->expectation;
            c->sat_perception_sum += ev->perception;
        }
        if (ev->nps >= 0) {
            c->nps_count++;
            c->nps_sum += ev->nps;
        }
        break;
    case TF_KIND_CONTRACT_END:
    case TF_KIND_UNSUBSCRIBE:
        apply_exit(c, ev, out, &n);
        break;
    default:
        break;
    }
    return n;
}
