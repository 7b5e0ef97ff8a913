/* The entry points: a touchpoint applied to a customer, and the customer's timers
 * fired up to a time. Both end with the timers rescheduled from the new state. */
#include <stdio.h>
#include <string.h>

#include "lifecycle/internal.h"

static const char *const stage_names[TF_STAGE__COUNT] = {
    "none", "prospect", "growth", "mature", "decline", "churned",
};

static const char *const tier_names[TF_TIER__COUNT] = {
    "none", "temporary", "regular", "potential", "key",
};

static const char *const timer_names[TF_TIMER__COUNT] = {
    "review", "birthday", "festival", "followup", "checkin",
    "anniversary", "date", "complaint_followup", "sla", "segment",
    "replenishment", "overdue",
};

const char *tf_stage_name(tf_stage s)
{
    return (unsigned)s < TF_STAGE__COUNT ? stage_names[s] : "none";
}

int tf_stage_parse(const char *name, tf_stage *out)
{
    for (int i = 0; i < TF_STAGE__COUNT; i++) {
        /* The first letter tells most apart: every decode of a state reads stages. */
        if (name[0] == stage_names[i][0] && strcmp(name, stage_names[i]) == 0) {
            *out = (tf_stage)i;
            return TF_OK;
        }
    }
    return TF_ENOTFOUND;
}

const char *tf_tier_name(tf_tier t)
{
    return (unsigned)t < TF_TIER__COUNT ? tier_names[t] : "none";
}

int tf_tier_parse(const char *name, tf_tier *out)
{
    for (int i = 0; i < TF_TIER__COUNT; i++) {
        if (strcmp(name, tier_names[i]) == 0) {
            *out = (tf_tier)i;
            return TF_OK;
        }
    }
    return TF_ENOTFOUND;
}

const char *tf_timer_name(tf_timer t)
{
    return (unsigned)t < TF_TIMER__COUNT ? timer_names[t] : "none";
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

double tf_customer_nps(const tf_customer_t *c)
{
    if (c->nps_count == 0)
        return -101;
    return (double)(c->nps_promoters - c->nps_detractors) * 100.0 / (double)c->nps_count;
}

int64_t tf_customer_value(const tf_config_rules *r, const tf_customer_t *c)
{
    int64_t cost = tf_lc_add(tf_lc_add(tf_lc_mul(c->counts[TF_KIND_CALL], r->cost_per_call),
                                       tf_lc_mul(c->complaints, r->cost_per_complaint)),
                             tf_lc_mul(c->care_actions, r->cost_per_care));
    return tf_lc_add(c->gross_profit, cost == INT64_MIN ? INT64_MAX : -cost);
}

uint32_t tf_customer_channels(const tf_config_rules *r, const tf_customer_t *c)
{
    /* Anything but "withdrawn" keeps the behaviour from before consent was kept. */
    int unstated_ok = strcmp(r->consent_unstated, "withdrawn") != 0;
    uint32_t bits = 0;
    for (int i = 0; i < TF_CHANNEL__COUNT; i++)
        if (c->consent[i] == TF_CONSENT_GRANTED || (c->consent[i] == TF_CONSENT_UNSTATED && unstated_ok))
            bits |= 1u << i;
    return bits;
}

int tf_lifecycle_exit_churns(const tf_config_rules *r, tf_event_kind kind)
{
    const char *name = tf_event_kind_name(kind);
    for (size_t i = 0; name && i < r->nexit_kinds && i < sizeof(r->exit_kinds) / sizeof(r->exit_kinds[0]); i++)
        if (strcmp(r->exit_kinds[i], name) == 0)
            return 1;
    return 0;
}

int64_t tf_customer_next_due(const tf_customer_t *c)
{
    int64_t best = 0;
    for (int t = 0; t < TF_TIMER__COUNT; t++)
        if (c->due[t] > 0 && (best == 0 || c->due[t] < best))
            best = c->due[t];
    return best;
}

tf_derived_t *tf_lc_derive(tf_emit *e, tf_derived_type type, const tf_cause *cause, const char *rule)
{
    if (e->n >= e->cap)
        return NULL;
    tf_derived_t *d = &e->out[e->n++];
    memset(d, 0, sizeof(*d));
    d->type = type;
    d->time_ms = cause->at_ms;
    tf_strlcpy(d->subject, cause->customer, sizeof(d->subject));
    tf_strlcpy(d->rule, rule, sizeof(d->rule));
    /* The rule joins the cause: one cause may fire the same type twice (two stage
     * changes), each needs its own stable id. */
    char id[TF_EVENT_ID_MAX + TF_REF_MAX + TF_FIG_NAME_MAX + 64];
    if (cause->ev) {
        snprintf(id, sizeof(id), "%s#%s", cause->ev->id, rule);
        tf_derived_set_id(d, cause->ev->source, id);
    } else {
        snprintf(id, sizeof(id), "timer:%s@%lld:%s#%s", cause->timer, (long long)cause->at_ms,
                 cause->occasion ? cause->occasion : "", rule);
        tf_derived_set_id(d, cause->customer, id);
    }
    return d;
}

/* ---- the context of derived events ---- */

/* "email,sms" for the bits of tf_channel set in bits. */
static void channel_list(uint32_t bits, char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < TF_CHANNEL__COUNT; i++)
        if (bits & (1u << i))
            len += (size_t)snprintf(out + len, len < size ? size - len : 0, "%s%s", len ? "," : "",
                                    tf_channel_name((tf_channel)i));
}

/* What a subscription filters on, for one derived event: the customer as the rules
 * left it, in d->ctx and as the data figures stage, tier, level (when the customer
 * has one), value (buyers) and channels; a figure the type already carries under
 * that name is not written twice. referral.credited is about the referrer, whose
 * state is not at hand: it carries only the channels a customer who stated no
 * consent has. Then the customer's segments (tf_lc_segments_context), and last
 * its preferred channel when known (1.3, after the figures of 1.2). */
static void fill_context(const tf_config_rules *r, const tf_customer_t *c, tf_derived_t *d)
{
    tf_derived_ctx *x = &d->ctx;
    char list[TF_CHANNEL__COUNT * 8];
    if (d->type == TF_DERIVED_REFERRAL_CREDITED) {
        tf_customer_t stranger;
        memset(&stranger, 0, sizeof(stranger));
        x->channels = tf_customer_channels(r, &stranger);
    } else {
        tf_strlcpy(x->stage, tf_stage_name(c->stage), sizeof(x->stage));
        tf_strlcpy(x->tier, tf_tier_name(c->tier), sizeof(x->tier));
        tf_strlcpy(x->level, c->level, sizeof(x->level));
        x->has_value = c->purchases > 0;
        x->value = x->has_value ? tf_customer_value(r, c) : 0;
        x->channels = tf_customer_channels(r, c);
        /* tf_derived_add_* refuse a name already taken: the type's own figure stays. */
        tf_derived_add_str(d, "stage", x->stage);
        tf_derived_add_str(d, "tier", x->tier);
        if (x->level[0])
            tf_derived_add_str(d, "level", x->level);
        if (x->has_value)
            tf_derived_add_int(d, "value", x->value);
        const char *preferred = tf_customer_preferred_channel(c);
        if (preferred)
            tf_strlcpy(x->preferred_channel, preferred, sizeof(x->preferred_channel));
    }
    if (d->type == TF_DERIVED_CARE_REMINDER)
        tf_strlcpy(x->care_kind, d->rule, sizeof(x->care_kind)); /* a reminder's rule is its kind */
    channel_list(x->channels, list, sizeof(list));
    tf_derived_add_list(d, "channels", list);
    tf_lc_segments_context(r, c, d);
    if (x->preferred_channel[0])
        tf_derived_add_str(d, "preferred_channel", x->preferred_channel);
}

/* Where derived events are finalised, once the rules that fired them have run:
 * out[from..to) get their context. Everything every derived event carries is
 * added here, in this one place (segment membership too). */
static void finalise(const tf_config_rules *r, const tf_customer_t *c, tf_derived_t *out, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        fill_context(r, c, &out[i]);
}

/* ---- touchpoints ---- */

/* cause is the present (the latest touchpoint or the event, whichever is later): a
 * late purchase counts, but the transitions it causes happen now, never back in time. */
static void apply_purchase(const tf_config_rules *r, tf_customer_t *c, const tf_event_t *ev, const tf_cause *cause,
                           tf_emit *e)
{
    tf_stage before = c->stage;
    int64_t since = c->stage_since_ms;
    c->purchases++;
    if (c->first_purchase_ms == 0 || ev->time_ms < c->first_purchase_ms)
        c->first_purchase_ms = ev->time_ms;
    int latest = ev->time_ms >= c->last_purchase_ms;
    if (latest)
        c->last_purchase_ms = ev->time_ms;
    if (c->currency[0] == '\0')
        memcpy(c->currency, ev->currency, sizeof(c->currency));
    if (strcmp(c->currency, ev->currency) != 0) {
        c->foreign_purchases++;
    } else {
        c->spend = tf_lc_add(c->spend, ev->amount);
        if (ev->has_margin)
            c->margin = tf_lc_add(c->margin, ev->margin);
        c->gross_profit =
            tf_lc_add(c->gross_profit, ev->has_margin ? ev->margin : tf_lc_mul(ev->amount, r->default_margin_pct) / 100);
        tf_lc_spend_add(r, c, ev->time_ms, ev->amount);
    }
    /* The follow-up call is about the latest order. */
    if (latest && r->followup_days > 0) {
        c->followup_due_ms = ev->time_ms + r->followup_days * TF_MS_PER_DAY;
        tf_strlcpy(c->followup_order, ev->order_id, sizeof(c->followup_order));
    }

    switch (before) {
    case TF_STAGE_PROSPECT:
        tf_lc_change_stage(c, TF_STAGE_GROWTH, cause, "first_purchase", e);
        break;
    case TF_STAGE_CHURNED:
        /* A late purchase from before the exit is counted, not a win-back. A
         * prospect that left before buying was never won, so its first purchase
         * is one, not a win-back. */
        if (ev->time_ms > since && c->purchases == 1) {
            tf_lc_change_stage(c, TF_STAGE_GROWTH, cause, "first_purchase", e);
        } else if (ev->time_ms > since) {
            tf_lc_change_stage(c, TF_STAGE_GROWTH, cause, "winback_purchase", e);
            tf_derived_t *d = tf_lc_derive(e, TF_DERIVED_WINBACK_SUCCEEDED, cause, "winback_purchase");
            if (d) {
                tf_derived_add_str(d, "order_id", ev->order_id);
                tf_derived_add_int(d, "amount", ev->amount);
                tf_derived_add_int(d, "churned_count", c->churned_count);
                tf_derived_add_int(d, "days_churned", (ev->time_ms - since) / TF_MS_PER_DAY);
            }
        }
        break;
    case TF_STAGE_DECLINE:
        tf_lc_change_stage(c, tf_lc_is_mature(r, c, cause->at_ms) ? TF_STAGE_MATURE : TF_STAGE_GROWTH, cause,
                           "recovered_purchase", e);
        break;
    default:
        break;
    }
    if (c->stage == TF_STAGE_GROWTH && tf_lc_is_mature(r, c, cause->at_ms))
        tf_lc_change_stage(c, TF_STAGE_MATURE, cause, "mature_threshold", e);
    /* A standing warning is cleared by tf_lc_review_risk, with the risk after the purchase. */

    /* The referrer is credited once, for the referred customer's first purchase. */
    if (c->purchases == 1 && c->referred_by[0] && !c->referral_credited) {
        c->referral_credited = 1;
        tf_cause to_referrer = *cause;
        to_referrer.customer = c->referred_by;
        tf_derived_t *d = tf_lc_derive(e, TF_DERIVED_REFERRAL_CREDITED, &to_referrer, "referred_first_purchase");
        if (d) {
            tf_derived_add_str(d, "referred_id", ev->subject);
            tf_derived_add_str(d, "order_id", ev->order_id);
            tf_derived_add_int(d, "amount", ev->amount);
            tf_derived_add_str(d, "currency", ev->currency);
        }
    }
}

static void apply_refund(const tf_config_rules *r, tf_customer_t *c, const tf_event_t *ev)
{
    if (strcmp(c->currency, ev->currency) != 0)
        return;
    c->refunded = tf_lc_add(c->refunded, ev->amount);
    c->gross_profit = tf_lc_add(c->gross_profit, -(tf_lc_mul(ev->amount, r->default_margin_pct) / 100));
}

static void apply_survey(tf_customer_t *c, const tf_event_t *ev)
{
    if (ev->has_sat) {
        c->surveys_sat++;
        c->sat_expectation_sum += ev->expectation;
        c->sat_perception_sum += ev->perception;
    }
    if (ev->nps >= 0) {
        c->nps_count++;
        c->nps_sum += ev->nps;
        if (ev->nps >= 9)
            c->nps_promoters++;
        else if (ev->nps <= 6)
            c->nps_detractors++;
    }
}

/* Consent stated by a profile or withdrawn by an unsubscribe, per channel; a
 * statement older than the one kept is a late record and changes nothing. */
static void apply_consent(tf_customer_t *c, const tf_event_t *ev)
{
    for (int i = 0; i < TF_CHANNEL__COUNT; i++) {
        if (ev->consent[i] == TF_CONSENT_UNSTATED || ev->time_ms < c->consent_at_ms[i])
            continue;
        c->consent[i] = ev->consent[i];
        c->consent_at_ms[i] = ev->time_ms;
    }
}

static void apply_profile(tf_customer_t *c, const tf_event_t *ev)
{
    /* The tags of a profile are the customer's tags now (an empty list clears them). */
    if (ev->has_tags && ev->time_ms >= c->tags_at_ms) {
        memset(c->tags, 0, sizeof(c->tags));
        c->ntags = ev->ntags < TF_EVENT_MAX_TAGS ? ev->ntags : TF_EVENT_MAX_TAGS;
        for (size_t i = 0; i < c->ntags; i++)
            tf_strlcpy(c->tags[i], ev->tags[i], sizeof(c->tags[i]));
        c->tags_at_ms = ev->time_ms;
    }
    apply_consent(c, ev);
    if (ev->birth_month) {
        c->birth_month = ev->birth_month;
        c->birth_day = ev->birth_day;
    }
    if (ev->anniv_month) {
        c->date_year = ev->anniv_year;
        c->date_month = ev->anniv_month;
        c->date_day = ev->anniv_day;
    }
}

/* An unsubscribe withdraws consent (to its channel, or to all); whether an exit
 * also ends the relationship is rules.exit.kinds (by default contract_end only:
 * leaving one mailing list is not leaving the company). */
static void apply_exit(const tf_config_rules *r, tf_customer_t *c, const tf_event_t *ev, const tf_cause *cause,
                       tf_emit *e)
{
    apply_consent(c, ev);
    if (c->stage == TF_STAGE_CHURNED || !tf_lifecycle_exit_churns(r, ev->kind))
        return;
    tf_lc_enter_churned(c, cause, "explicit_exit", e);
}

size_t tf_lifecycle_apply(const tf_config_rules *rules, const tf_population_t *pop, tf_customer_t *c,
                          const tf_event_t *ev, tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED])
{
    tf_emit e = {out, 0, TF_LIFECYCLE_MAX_DERIVED};
    tf_cause cause = {ev, ev->subject, NULL, NULL, ev->time_ms};
    int first = c->stage == TF_STAGE_NONE;
    int64_t seen_before = c->last_seen_ms;

    if (first) {
        c->stage = TF_STAGE_PROSPECT;
        c->stage_since_ms = ev->time_ms;
        /* A new customer's segments are judged by this config from the start. */
        c->segments_fp = tf_lc_segments_fingerprint(rules);
    }
    c->counts[ev->kind]++;
    /* Late events still count but never move the first/last-seen marks the wrong way. */
    if (c->first_seen_ms == 0 || ev->time_ms < c->first_seen_ms)
        c->first_seen_ms = ev->time_ms;
    if (ev->time_ms > c->last_seen_ms)
        c->last_seen_ms = ev->time_ms;
    if (ev->time_ms > c->clock_ms)
        c->clock_ms = ev->time_ms;
    tf_lc_learn(rules, c, ev);

    /* The rest is judged as of the latest touchpoint (a late event changes the
     * present, not the past). */
    tf_cause now = cause;
    now.at_ms = seen_before > ev->time_ms ? seen_before : ev->time_ms;

    switch (ev->kind) {
    case TF_KIND_PURCHASE:
        apply_purchase(rules, c, ev, &now, &e);
        break;
    case TF_KIND_REFUND:
        apply_refund(rules, c, ev);
        break;
    case TF_KIND_COMPLAINT:
        tf_lc_complaint(c, ev);
        break;
    case TF_KIND_COMPLAINT_UPDATE:
        tf_lc_complaint_update(rules, c, ev);
        break;
    case TF_KIND_SURVEY:
        apply_survey(c, ev);
        break;
    case TF_KIND_REFERRAL:
        c->referrals++;
        break;
    case TF_KIND_PROFILE:
        apply_profile(c, ev);
        break;
    case TF_KIND_CONTRACT_END:
    case TF_KIND_UNSUBSCRIBE:
        apply_exit(rules, c, ev, &now, &e);
        break;
    default:
        break;
    }
    /* A new prospect is welcomed; a first touchpoint that is a purchase gets the
     * post-purchase follow-up instead. */
    if (first && ev->kind != TF_KIND_PURCHASE && c->stage == TF_STAGE_PROSPECT && !c->welcomed) {
        c->welcomed = 1;
        tf_lc_care_reminder(c, &cause, "welcome", "welcome", 0, &e);
    }
    /* A purchase is never a decline signal. */
    if (ev->kind != TF_KIND_PURCHASE)
        tf_lc_review_stage(rules, c, &now, &e);
    tf_lc_review_risk(rules, c, &now, &e);
    tf_lc_review_level(rules, c, &now, &e);
    if (pop)
        tf_lc_review_tier(rules, pop, c, &now, &e);
    tf_lc_review_segments(rules, c, &now, &e);
    finalise(rules, c, out, 0, e.n);
    tf_lifecycle_schedule(rules, c);
    return e.n;
}

/* ---- timers ---- */

void tf_lifecycle_schedule(const tf_config_rules *r, tf_customer_t *c)
{
    int64_t now = c->clock_ms, best = 0;
    c->due[TF_TIMER_REVIEW] = 0;
    if (c->purchases > 0 &&
        (c->stage == TF_STAGE_GROWTH || c->stage == TF_STAGE_MATURE || c->stage == TF_STAGE_DECLINE)) {
        int64_t cand[5], period = r->review_days * TF_MS_PER_DAY;
        size_t n = 0;
        /* The periodic review keeps to a grid from the last touchpoint, so when it
         * falls does not depend on when the customer was last looked at. */
        int64_t anchor = c->last_seen_ms;
        cand[n++] = anchor + ((now - anchor) / period + 1) * period;
        if (c->stage == TF_STAGE_DECLINE)
            cand[n++] = c->last_purchase_ms + r->churn_after_days * TF_MS_PER_DAY;
        else
            cand[n++] = c->last_purchase_ms + tf_lc_inactivity_threshold_ms(r, c);
        /* Silence alone warns once inactivity counts in full. */
        if (!c->warned)
            cand[n++] = c->last_purchase_ms + tf_lc_warning_horizon_ms(r, c);
        if (c->stage == TF_STAGE_GROWTH && c->purchases >= r->mature_min_purchases)
            cand[n++] = c->first_purchase_ms + r->mature_min_tenure_days * TF_MS_PER_DAY;
        if (c->purchases == 1 && c->tier == TF_TIER_REGULAR)
            cand[n++] = c->last_purchase_ms + r->temporary_after_days * TF_MS_PER_DAY;
        for (size_t i = 0; i < n; i++)
            if (cand[i] > now && (best == 0 || cand[i] < best))
                best = cand[i];
        /* A deadline already behind the clock was judged when the clock passed it. */
        c->due[TF_TIMER_REVIEW] = best;
    }
    tf_lc_schedule_care(r, c);
    /* After the care timers, which clear the ones after them. */
    tf_lc_schedule_insight(r, c);
    c->due[TF_TIMER_SEGMENT] = c->stage == TF_STAGE_NONE ? 0 : tf_lc_segments_next_change(r, c, now);
}

/* The review: every time-driven judgement at once, at its due time. */
static void fire_review(const tf_config_rules *r, const tf_population_t *pop, tf_customer_t *c, const tf_cause *cause,
                        tf_emit *e)
{
    tf_lc_review_stage(r, c, cause, e);
    tf_lc_review_risk(r, c, cause, e);
    if (pop)
        tf_lc_review_tier(r, pop, c, cause, e);
}

size_t tf_lifecycle_advance(const tf_config_rules *rules, const tf_population_t *pop, const char *customer,
                            tf_customer_t *c, int64_t until_ms, tf_derived_t *out, size_t cap, int *more)
{
    tf_emit e = {out, 0, cap};
    *more = 0;
    if (c->stage == TF_STAGE_NONE)
        return 0;
    /* Each firing moves its own timer past its due time, so this ends; the bound
     * only keeps one call short during a long catch-up. */
    for (int rounds = 0;; rounds++) {
        tf_lifecycle_schedule(rules, c);
        int which = -1;
        for (int t = 0; t < TF_TIMER__COUNT; t++)
            if (c->due[t] > 0 && (which < 0 || c->due[t] < c->due[which]))
                which = t;
        if (which < 0 || c->due[which] > until_ms)
            break;
        if (rounds >= 256 || e.n + TF_LIFECYCLE_MAX_DERIVED > e.cap) {
            *more = 1;
            return e.n;
        }
        int64_t due = c->due[which];
        size_t from = e.n;
        if (due > c->clock_ms)
            c->clock_ms = due;
        if (which == TF_TIMER_REVIEW) {
            tf_cause cause = {NULL, customer, "review", NULL, due};
            fire_review(rules, pop, c, &cause, &e);
        } else if (which == TF_TIMER_REPLENISHMENT || which == TF_TIMER_OVERDUE) {
            if (tf_lc_fire_insight(rules, c, (tf_timer)which, customer, due, &e) != 0)
                break;
            /* Overdue is a churn risk signal from this moment: judged at once, not
             * at the next review. */
            if (which == TF_TIMER_OVERDUE) {
                tf_cause cause = {NULL, customer, "overdue", NULL, due};
                fire_review(rules, pop, c, &cause, &e);
            }
        } else if (which != TF_TIMER_SEGMENT &&
                   tf_lc_fire_care(rules, c, (tf_timer)which, customer, due, &e) != 0) {
            break; /* a timer that cannot fire would spin: leave it to the next event */
        }
        /* Segments follow every firing (the segment timer's is only that): a
         * change due at a time another timer shares is seen by whichever fires
         * first there. */
        tf_cause seen = {NULL, customer, tf_timer_name((tf_timer)which), NULL, due};
        tf_lc_review_segments(rules, c, &seen, &e);
        /* Each firing's events carry the customer as that firing left it. */
        finalise(rules, c, out, from, e.n);
    }
    /* The due times computed above stay right: each is past until_ms, and moving
     * the clock up to it changes none of them. */
    if (until_ms > c->clock_ms)
        c->clock_ms = until_ms;
    return e.n;
}
