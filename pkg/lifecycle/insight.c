/* What a customer's own touchpoints say beyond its stage (DOMAIN.md: segments,
 * consent, channels and prediction): the items it buys most, the channel it buys
 * and answers through, the rhythm of its purchases with a replenishment reminder
 * before the next one and an overdue signal after it, and the campaign and exit
 * reason it last gave.
 *
 * Every figure here is a function of the touchpoints in the order they were
 * applied (event times, never the rules' clock, which timer scans move): so the
 * same input gives the same state and events whatever the batches. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lifecycle/internal.h"

/* ---- favourite items ---- */

/* Adds qty of sku. A new SKU takes the last place when the table is full: the
 * least bought gives way (among equals the one bought longest ago). The entry
 * then moves up past every one bought as often or less, so the table stays in
 * order and, among equals, the latest bought leads. */
static void favourite_add(tf_customer_t *c, const tf_event_item *it)
{
    size_t i = 0;
    while (i < c->nfavourites && strcmp(c->favourites[i].sku, it->sku) != 0)
        i++;
    if (i == c->nfavourites) {
        if (c->nfavourites < TF_FAVOURITES)
            c->nfavourites++;
        i = c->nfavourites - 1;
        memset(&c->favourites[i], 0, sizeof(c->favourites[i]));
        tf_strlcpy(c->favourites[i].sku, it->sku, sizeof(c->favourites[i].sku));
    }
    tf_favourite_t moved = c->favourites[i];
    moved.qty = tf_lc_add(moved.qty, it->qty);
    for (; i > 0 && c->favourites[i - 1].qty <= moved.qty; i--)
        c->favourites[i] = c->favourites[i - 1];
    c->favourites[i] = moved;
}

void tf_lc_add_favourites(const tf_customer_t *c, tf_derived_t *d)
{
    const char *skus[TF_FAVOURITES_SHOWN];
    size_t n = 0;
    for (; n < TF_FAVOURITES_SHOWN && n < c->nfavourites && n < TF_FAVOURITES; n++)
        skus[n] = c->favourites[n].sku;
    /* TF_FAVOURITES_SHOWN SKUs of TF_EVENT_SKU_MAX bytes and their NULs fit a figure. */
    if (n > 0)
        tf_derived_add_items(d, "favourite_items", skus, n);
}
_Static_assert(TF_FAVOURITES_SHOWN * (TF_EVENT_SKU_MAX + 1) <= TF_FIG_STR_MAX, "favourite_items fits a figure");

/* ---- preferred channel ---- */

/* The channel touchpoint ev shows the customer buying or answering through, with
 * its weight, or NULL. A call counts when the customer called or picked up; an
 * email when opened or clicked (a bounce reached nobody). */
static const char *channel_of(const tf_config_rules *r, const tf_event_t *ev, int64_t *weight)
{
    *weight = r->preference_weight_engagement;
    switch (ev->kind) {
    case TF_KIND_PURCHASE:
        *weight = r->preference_weight_purchase;
        return ev->channel[0] ? ev->channel : NULL;
    case TF_KIND_EMAIL:
        return strcmp(ev->action, "open") == 0 || strcmp(ev->action, "click") == 0 ? "email" : NULL;
    case TF_KIND_CALL:
        return ev->direction == TF_DIR_INBOUND || strcmp(ev->action, "answered") == 0 ? "phone" : NULL;
    case TF_KIND_WEB_VISIT:
        return ev->channel[0] ? ev->channel : "web";
    case TF_KIND_STORE_VISIT:
        return "store";
    case TF_KIND_SOCIAL:
        return ev->channel[0] ? ev->channel : "social";
    default:
        return NULL;
    }
}

/* Scores halve every half life. They are kept as of the latest event time that
 * scored: a later event first decays them all to its time (their order stays), a
 * late one adds its weight decayed to that time. A new channel takes the last
 * place when the table is full (the weakest, usually the longest unused). */
static void channel_score(const tf_config_rules *r, tf_customer_t *c, const char *name, double weight, int64_t t)
{
    double half_life = (double)r->preference_half_life_days * (double)TF_MS_PER_DAY;
    if (c->nchannel_scores == 0 || t > c->channel_scores_at_ms) {
        double f = c->nchannel_scores ? exp2(-(double)(t - c->channel_scores_at_ms) / half_life) : 1.0;
        for (size_t i = 0; i < c->nchannel_scores && i < TF_CHANNEL_SCORES; i++)
            c->channel_scores[i].score *= f;
        c->channel_scores_at_ms = t;
    } else if (t < c->channel_scores_at_ms) {
        weight *= exp2(-(double)(c->channel_scores_at_ms - t) / half_life);
    }
    size_t i = 0;
    while (i < c->nchannel_scores && strcmp(c->channel_scores[i].name, name) != 0)
        i++;
    if (i == c->nchannel_scores) {
        if (c->nchannel_scores < TF_CHANNEL_SCORES)
            c->nchannel_scores++;
        i = c->nchannel_scores - 1;
        memset(&c->channel_scores[i], 0, sizeof(c->channel_scores[i]));
        tf_strlcpy(c->channel_scores[i].name, name, sizeof(c->channel_scores[i].name));
    }
    tf_channel_score_t moved = c->channel_scores[i];
    moved.score += weight;
    for (; i > 0 && c->channel_scores[i - 1].score <= moved.score; i--)
        c->channel_scores[i] = c->channel_scores[i - 1];
    c->channel_scores[i] = moved;
}

const char *tf_customer_preferred_channel(const tf_customer_t *c)
{
    /* A score decayed to nothing (a thousand half lives) prefers nothing. */
    if (!c || c->nchannel_scores == 0 || !(c->channel_scores[0].score > 0))
        return NULL;
    return c->channel_scores[0].name;
}

/* ---- the purchase rhythm ---- */

/* confidence = n / (n + 1) x max(0, 1 - cv), cv = sd / mean of the n intervals (sd
 * the sample deviation): more intervals and a steadier rhythm both raise it; one
 * interval has no spread to judge, so 0. Kept to three decimals, so that the text
 * stored and the threshold compare exactly. */
static double rhythm_confidence(const tf_customer_t *c)
{
    int64_t n = c->intervals;
    if (n < 2 || !(c->interval_mean_days > 0))
        return 0;
    double var = c->interval_m2 > 0 ? c->interval_m2 / (double)(n - 1) : 0;
    double cv = sqrt(var) / c->interval_mean_days;
    double raw = (double)n / (double)(n + 1) * (cv < 1 ? 1 - cv : 0);
    return round(raw * 1000) / 1000;
}

/* Welford: the mean and the sum of squared deviations, one interval at a time. */
static void rhythm_add(tf_customer_t *c, int64_t gap_ms)
{
    double x = (double)gap_ms / (double)TF_MS_PER_DAY;
    c->intervals++;
    double delta = x - c->interval_mean_days;
    c->interval_mean_days += delta / (double)c->intervals;
    c->interval_m2 += delta * (x - c->interval_mean_days);
}

/* A purchase at t, before it is counted. Intervals come in order: one after the
 * latest purchase, or one before the first (a late record at the start). A late
 * purchase between two others splits an interval that no longer exists in the
 * state (there is no purchase log): it leaves the rhythm as it is. An interval
 * shorter than rules.replenishment.min_interval_hours is the same shopping trip. */
static void rhythm_purchase(const tf_config_rules *r, tf_customer_t *c, int64_t t)
{
    int64_t anchor = t, min_gap = r->rhythm_min_interval_hours * TF_MS_PER_HOUR;
    if (c->purchases > 0 && t >= c->last_purchase_ms) {
        if (t - c->last_purchase_ms >= min_gap)
            rhythm_add(c, t - c->last_purchase_ms);
    } else if (c->purchases > 0) {
        if (t < c->first_purchase_ms && c->first_purchase_ms - t >= min_gap)
            rhythm_add(c, c->first_purchase_ms - t);
        anchor = c->last_purchase_ms;
    }
    if (c->intervals < 1) {
        c->next_purchase_ms = 0;
        c->next_purchase_confidence = 0;
        return;
    }
    c->next_purchase_ms = tf_lc_add(anchor, llround(c->interval_mean_days * (double)TF_MS_PER_DAY));
    c->next_purchase_confidence = rhythm_confidence(c);
}

int tf_customer_has_rhythm(const tf_config_rules *r, const tf_customer_t *c)
{
    if (!r || !c || r->rhythm_min_intervals <= 0 || c->next_purchase_ms <= 0 ||
        c->intervals < r->rhythm_min_intervals)
        return 0;
    return llround(c->next_purchase_confidence * 1000) >= r->rhythm_min_confidence_pct * 10;
}

int tf_lc_overdue(const tf_config_rules *r, const tf_customer_t *c, int64_t now_ms)
{
    return tf_customer_has_rhythm(r, c) && now_ms >= c->next_purchase_ms + r->overdue_days * TF_MS_PER_DAY;
}

void tf_lc_schedule_insight(const tf_config_rules *r, tf_customer_t *c)
{
    c->due[TF_TIMER_REPLENISHMENT] = c->due[TF_TIMER_OVERDUE] = 0;
    if (c->stage == TF_STAGE_CHURNED || !tf_customer_has_rhythm(r, c))
        return;
    int64_t next = c->next_purchase_ms;
    int64_t remind = next - r->replenish_days_before * TF_MS_PER_DAY;
    int64_t late = next + r->overdue_days * TF_MS_PER_DAY;
    /* Once per expected date. A reminder due before the purchase it follows (a
     * rhythm shorter than the notice) is none; a moment already behind the
     * customer's latest touchpoint (an expected date moved back by a late
     * purchase) is not looked back on: timers never date events in the past of
     * what was applied. */
    if (c->replenish_done_ms != next && remind > c->last_purchase_ms && remind >= c->last_seen_ms && remind > 0)
        c->due[TF_TIMER_REPLENISHMENT] = remind;
    if (c->overdue_done_ms != next && late >= c->last_seen_ms && late > 0)
        c->due[TF_TIMER_OVERDUE] = late;
}

int tf_lc_fire_insight(const tf_config_rules *r, tf_customer_t *c, tf_timer t, const char *customer, int64_t due,
                       tf_emit *e)
{
    char occasion[48], date[16];
    int64_t next = c->next_purchase_ms;
    tf_cause cause = {NULL, customer, tf_timer_name(t), occasion, due};
    tf_lc_format_date(next, date);
    if (t == TF_TIMER_REPLENISHMENT) {
        c->replenish_done_ms = next;
        snprintf(occasion, sizeof(occasion), "replenishment:%s", date);
        size_t at = e->n;
        tf_lc_care_reminder(c, &cause, "replenishment", occasion, next, e);
        if (e->n > at)
            tf_derived_add_num(&e->out[at], "confidence", c->next_purchase_confidence);
        return 0;
    }
    if (t != TF_TIMER_OVERDUE)
        return -1;
    c->overdue_done_ms = next;
    snprintf(occasion, sizeof(occasion), "overdue:%s", date);
    tf_derived_t *d = tf_lc_derive(e, TF_DERIVED_PURCHASE_OVERDUE, &cause, "purchase_rhythm");
    if (!d)
        return 0;
    tf_derived_add_str(d, "expected_date", date);
    tf_derived_add_int(d, "days_overdue", (due - next) / TF_MS_PER_DAY);
    tf_derived_add_num(d, "confidence", c->next_purchase_confidence);
    tf_derived_add_int(d, "intervals", c->intervals);
    tf_derived_add_int(d, "days_since_purchase", (due - c->last_purchase_ms) / TF_MS_PER_DAY);
    return 0;
}

/* ---- attribution ---- */

const char *tf_customer_attributed_campaign(const tf_config_rules *r, const tf_customer_t *c, int64_t purchase_ms)
{
    if (!r || !c || !c->campaign[0] || c->campaign_ms > purchase_ms ||
        purchase_ms - c->campaign_ms > r->attribution_days * TF_MS_PER_DAY)
        return NULL;
    return c->campaign;
}

/* ---- learning from a touchpoint ---- */

void tf_lc_learn(const tf_config_rules *r, tf_customer_t *c, const tf_event_t *ev)
{
    int64_t weight;
    const char *channel = channel_of(r, ev, &weight);
    if (channel && weight > 0)
        channel_score(r, c, channel, (double)weight, ev->time_ms);
    switch (ev->kind) {
    case TF_KIND_PURCHASE:
        rhythm_purchase(r, c, ev->time_ms);
        for (size_t i = 0; i < ev->nitems && i < TF_EVENT_MAX_ITEMS; i++)
            favourite_add(c, &ev->items[i]);
        break;
    case TF_KIND_EMAIL:
    case TF_KIND_WEB_VISIT:
        /* The campaign that touched the customer last, by event time; a bounced
         * email touched nobody. */
        if (ev->campaign[0] && ev->time_ms >= c->campaign_ms &&
            (ev->kind == TF_KIND_WEB_VISIT || strcmp(ev->action, "bounce") != 0)) {
            tf_strlcpy(c->campaign, ev->campaign, sizeof(c->campaign));
            c->campaign_ms = ev->time_ms;
        }
        break;
    case TF_KIND_CONTRACT_END:
    case TF_KIND_UNSUBSCRIBE:
        if (ev->time_ms >= c->exit_reason_ms) {
            tf_strlcpy(c->exit_reason, ev->reason, sizeof(c->exit_reason));
            c->exit_reason_ms = ev->time_ms;
        }
        break;
    default:
        break;
    }
}
