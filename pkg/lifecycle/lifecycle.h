/* lifecycle: the CRM rules, pure.
 *
 * State + event -> new state + derived events. No I/O, no clock, no allocation:
 * everything comes in as arguments, so every rule is testable to the last figure.
 * The stage machine and the figures follow DOMAIN.md; thresholds come from
 * tf_config_rules. */
#ifndef TF_LIFECYCLE_H
#define TF_LIFECYCLE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "event/event.h"

typedef enum {
    TF_STAGE_NONE = 0, /* never seen */
    TF_STAGE_PROSPECT,
    TF_STAGE_GROWTH,
    TF_STAGE_MATURE,
    TF_STAGE_DECLINE,
    TF_STAGE_CHURNED,
    TF_STAGE__COUNT
} tf_stage;

/* "prospect", "growth", ...; "none" for TF_STAGE_NONE. */
const char *tf_stage_name(tf_stage s);
/* 0 or TF_ENOTFOUND. */
int tf_stage_parse(const char *name, tf_stage *out);

#define TF_STAGE_HISTORY 8
/* Spend is kept in buckets of a sixth of rules.spend_window_days: the last two
 * windows, so "the last 90 days against the 90 before" needs no purchase log. */
#define TF_SPEND_BUCKETS 12
/* Complaints remembered per customer: open ones first, then the latest closed. */
#define TF_MAX_COMPLAINTS 8
#define TF_REF_MAX 128

typedef enum { TF_TIER_NONE = 0, TF_TIER_TEMPORARY, TF_TIER_REGULAR, TF_TIER_POTENTIAL, TF_TIER_KEY, TF_TIER__COUNT } tf_tier;
const char *tf_tier_name(tf_tier t);
int tf_tier_parse(const char *name, tf_tier *out);

/* The customer's timers; each due time is derived from the state (see
 * tf_lifecycle_schedule), stored as t:<name> in the hash, and the earliest indexes
 * the customer for its partition's timer scan. */
typedef enum {
    TF_TIMER_REVIEW = 0,          /* time-driven stage, churn risk and tier checks */
    TF_TIMER_BIRTHDAY,
    TF_TIMER_FESTIVAL,
    TF_TIMER_FOLLOWUP,            /* post-purchase follow-up */
    TF_TIMER_CHECKIN,             /* key customer without contact */
    TF_TIMER_ANNIVERSARY,         /* of the first purchase */
    TF_TIMER_DATE,                /* the anniversary date the customer gave */
    TF_TIMER_COMPLAINT_FOLLOWUP,  /* after a resolution */
    TF_TIMER_SLA,                 /* the earliest complaint deadline */
    TF_TIMER_SEGMENT,             /* the next time a segment membership changes by time alone */
    TF_TIMER_REPLENISHMENT,       /* care reminder before the expected purchase */
    TF_TIMER_OVERDUE,             /* the expected purchase passed by rules.replenishment.overdue_days */
    TF_TIMER__COUNT
} tf_timer;
const char *tf_timer_name(tf_timer t);

typedef enum { TF_COMPLAINT_OPEN = 0, TF_COMPLAINT_ACKNOWLEDGED, TF_COMPLAINT_RESOLVED } tf_complaint_state;

/* Favourite items remembered per customer, and how many of them derived events name. */
#define TF_FAVOURITES 8
#define TF_FAVOURITES_SHOWN 3
/* Channels whose preference score is kept. */
#define TF_CHANNEL_SCORES 8

/* A SKU the customer bought and how many in all. */
typedef struct {
    char sku[TF_EVENT_SKU_MAX + 1];
    int64_t qty;
} tf_favourite_t;

/* A channel the customer bought or answered through, and its decayed weight as of
 * tf_customer_t.channel_scores_at_ms. Names are the events' own (a purchase's
 * data.channel, "email", "phone", "store", a web_visit channel, a social
 * platform). */
typedef struct {
    char name[TF_EVENT_SHORT_MAX + 1];
    double score;
} tf_channel_score_t;

typedef struct {
    char id[TF_REF_MAX + 1];
    tf_complaint_category category;
    tf_complaint_severity severity;
    tf_complaint_state state;
    int level;                   /* escalations sent: 0, 1 or 2 */
    int64_t opened_ms;           /* SLA start (reopen restarts it); 0 = update seen before the complaint */
    int64_t closed_ms;           /* resolved at */
    /* The follow-up care reminder of this resolution, 0 when none is pending: each
     * resolved complaint is followed up on its own (TF_TIMER_COMPLAINT_FOLLOWUP is
     * the earliest). */
    int64_t followup_due_ms;
} tf_complaint_t;

/* Cutoffs of the value ranking of all buyers (a rebuildable index in Redis), as
 * lifetime profit: a customer at or above key_enter is key, one already key stays
 * while at or above key_keep (hysteresis); the same for potential. INT64_MAX when
 * the share holds nobody. */
typedef struct {
    int64_t buyers;
    int64_t key_enter, key_keep;
    int64_t potential_enter, potential_keep;
    /* The customer's own entry in the ranking, which the cutoffs include: a
     * customer whose ranked value reaches a cutoff holds one of its places, even
     * when its value has dropped a little since (a care reminder's cost). */
    int self_ranked;
    int64_t self_value;
} tf_population_t;

/* One customer's state: plain data, zero-initialised for a new customer. Times are
 * event times in ms since the epoch (0 = never). Money is in minor units of
 * `currency`, the currency of the customer's first purchase; purchases in another
 * currency are counted but their amounts are kept out of the totals
 * (foreign_purchases counts them). */
typedef struct {
    tf_stage stage;
    int64_t stage_since_ms;
    int64_t clock_ms;                 /* the latest time the rules evaluated (event or timer) */

    int64_t counts[TF_KIND__COUNT];   /* touchpoints per kind */
    int64_t first_seen_ms, last_seen_ms;

    int64_t purchases;
    int64_t first_purchase_ms, last_purchase_ms;
    int64_t spend;                    /* gross purchase amounts */
    int64_t margin;                   /* gross margin as given by purchases */
    int64_t refunded;                 /* refund amounts */
    int64_t foreign_purchases;
    char currency[4];
    int64_t gross_profit;             /* margins (given or the default share) less refunded margin */
    int64_t care_actions;             /* care reminders sent: part of the cost to serve */
    int64_t spend_base;               /* bucket number of spend_buckets[TF_SPEND_BUCKETS - 1] */
    int64_t spend_buckets[TF_SPEND_BUCKETS]; /* oldest first */

    int64_t open_complaints;
    int64_t complaints;
    size_t ncomplaints;
    tf_complaint_t complaint[TF_MAX_COMPLAINTS];

    int64_t surveys_sat;              /* surveys with expectation and perception */
    double sat_expectation_sum;       /* A */
    double sat_perception_sum;        /* B */
    int64_t nps_count;
    int64_t nps_sum;
    int64_t nps_promoters, nps_detractors;

    tf_tier tier;
    int64_t tier_since_ms;
    int64_t points;
    char level[TF_RULES_NAME_MAX];    /* member level name, "" before the first purchase */

    int rfm_r, rfm_f, rfm_m;          /* RFM scores 1-5 (0 before the first purchase) */
    int64_t risk;                     /* churn risk 0-100 at clock_ms */
    int warned;                       /* a churn warning is standing */
    int64_t warned_at_ms;

    int64_t churned_count;            /* times the customer entered churned */
    /* Stream clock: the value at which the tier cutoffs in force since ranked_at_ms
     * (a period start) ranked this customer (INT64_MIN: not a buyer then), i.e. its
     * value when first evaluated in that period. Kept in state so the decision is the
     * same whatever the batches. */
    int64_t ranked_value;
    int64_t ranked_at_ms;

    /* care */
    int welcomed;
    int birth_month, birth_day;
    int date_year, date_month, date_day;  /* the anniversary the customer gave */
    int64_t birthday_done_year, anniversary_done_year, date_done_year;
    int64_t festival_done_ms;         /* date of the last festival reminded */
    int64_t followup_due_ms;          /* pending post-purchase follow-up */
    char followup_order[TF_REF_MAX + 1];
    int64_t checkin_done_ms;

    /* profile: the tags of the latest profile that gave any (it replaces the set),
     * and consent per channel (tf_channel) with the time of the statement; a
     * statement older than the one kept is a late record and changes nothing */
    size_t ntags;
    char tags[TF_EVENT_MAX_TAGS][TF_EVENT_TAG_MAX + 1];
    int64_t tags_at_ms;
    tf_consent consent[TF_CHANNEL__COUNT];
    int64_t consent_at_ms[TF_CHANNEL__COUNT];

    /* referrals */
    char referred_by[TF_EVENT_SUBJECT_MAX + 1]; /* who brought this customer */
    int referral_credited;
    int64_t referrals;                /* customers this one referred */

    /* Segment membership (rules.segments): the names of the segments the customer
     * is in, in the config's order, and the fingerprint of the rules.segments that
     * judged it (0: none configured). Kept by name so that the hash reads without
     * the config; a config whose segments differ from the fingerprint re-judges
     * membership once, silently (segments.c). */
    size_t nsegments;
    char segments[TF_RULES_MAX_SEGMENTS][TF_RULES_NAME_MAX];
    int64_t segments_fp;

    /* What the customer buys, through which channel and when next (insight.c).
     * favourites: most bought first, the more recently bought first among equals;
     * the last gives way to a new SKU when the table is full. */
    size_t nfavourites;
    tf_favourite_t favourites[TF_FAVOURITES];
    /* channel scores, highest first (the first is the preferred channel), as of
     * channel_scores_at_ms: the latest event time that scored */
    size_t nchannel_scores;
    tf_channel_score_t channel_scores[TF_CHANNEL_SCORES];
    int64_t channel_scores_at_ms;
    /* The intervals between purchases in days (Welford: count, mean, sum of
     * squared deviations), the expected next purchase (the latest purchase plus
     * the mean interval; 0 without an interval) and its confidence 0..1 (to three
     * decimals), and the expected dates already reminded and signalled overdue. */
    int64_t intervals;
    double interval_mean_days, interval_m2;
    int64_t next_purchase_ms;
    double next_purchase_confidence;
    int64_t replenish_done_ms, overdue_done_ms;
    /* The last campaign touched (web_visit, email opened or clicked) and when; the
     * reason of the latest exit touchpoint ("" when it gave none) and when. A late
     * record never overwrites a newer one. */
    char campaign[TF_EVENT_SHORT_MAX + 1];
    int64_t campaign_ms;
    char exit_reason[TF_EVENT_SHORT_MAX + 1];
    int64_t exit_reason_ms;

    int64_t due[TF_TIMER__COUNT];     /* 0 = not scheduled */

    /* The latest stage changes, newest first (for operators; the derived events
     * are the full record). */
    size_t nhistory;
    struct {
        int64_t at_ms;
        tf_stage from, to;
        char rule[24];
    } history[TF_STAGE_HISTORY];
} tf_customer_t;

/* Running satisfaction S = B / A x 100 over all surveys, or -1 without surveys. */
double tf_customer_satisfaction(const tf_customer_t *c);
/* Mean interval between purchases in ms, or -1 with fewer than two purchases. */
int64_t tf_customer_mean_interval_ms(const tf_customer_t *c);
/* Mean NPS answer, or -1 without answers. */
double tf_customer_nps_mean(const tf_customer_t *c);
/* Net promoter score of the customer's answers (-100..100), or -101 without answers. */
double tf_customer_nps(const tf_customer_t *c);
/* Lifetime profit: gross profit less the cost to serve (calls, complaints, care). */
int64_t tf_customer_value(const tf_config_rules *r, const tf_customer_t *c);
/* The earliest scheduled timer, or 0 when none. */
int64_t tf_customer_next_due(const tf_customer_t *c);
/* The channels a trigger about c may use, as bits (1u << tf_channel): those with
 * consent granted, and those never stated when rules.consent.unstated is
 * "granted". Pure; every derived event carries it (ctx.channels, "channels"). */
uint32_t tf_customer_channels(const tf_config_rules *r, const tf_customer_t *c);
/* Whether an exit touchpoint of kind (contract_end, unsubscribe) ends the
 * relationship (the customer churns): its kind is in rules.exit.kinds. */
int tf_lifecycle_exit_churns(const tf_config_rules *r, tf_event_kind kind);

/* The campaign a purchase at purchase_ms is attributed to: the last campaign the
 * customer touched, when that was at or before purchase_ms and at most
 * rules.attribution_days before it; NULL otherwise (or for NULL arguments). Only
 * the last campaign is kept, so a late purchase dated before it is attributed to
 * nothing. The string is c's own (borrowed). Pure. */
const char *tf_customer_attributed_campaign(const tf_config_rules *r, const tf_customer_t *c, int64_t purchase_ms);
/* The channel with the highest preference score, or NULL before any. Borrowed. */
const char *tf_customer_preferred_channel(const tf_customer_t *c);
/* Whether the customer has a purchase rhythm: at least
 * rules.replenishment.min_intervals intervals (0: nobody has one), a confidence
 * of at least min_confidence_pct, and so an expected next purchase. */
int tf_customer_has_rhythm(const tf_config_rules *r, const tf_customer_t *c);

/* The most derived events one touchpoint (or one timer firing) can cause: the
 * rules' own, and a segment.entered or .exited per configured segment. */
#define TF_LIFECYCLE_MAX_DERIVED (12 + TF_RULES_MAX_SEGMENTS)

/* Applies ev to c at c's own clock (call tf_lifecycle_advance to min(ev time, now)
 * first, so timers due before the event fire before it). Derived events are written
 * to out[0..n) with deterministic ids (from ev->source, ev->id and the rule) and
 * time = ev->time_ms; n is returned. pop may be NULL (tiers then stay as they are).
 * Never fails: a touchpoint that does not fit a rule still counts. Reschedules the
 * timers (c->due). */
size_t tf_lifecycle_apply(const tf_config_rules *rules, const tf_population_t *pop, tf_customer_t *c,
                          const tf_event_t *ev, tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED]);

/* Fires the timers of c (whose id is customer) due at or before until_ms, earliest
 * first, each evaluated at its own due time (derived events carry it as their time and take their id from the
 * customer, the timer and the due time). Writes at most cap events; *more is set
 * when timers due by until_ms are left (call again). cap must be at least
 * TF_LIFECYCLE_MAX_DERIVED. Moves c->clock_ms forward to until_ms when done. */
size_t tf_lifecycle_advance(const tf_config_rules *rules, const tf_population_t *pop, const char *customer,
                            tf_customer_t *c, int64_t until_ms, tf_derived_t *out, size_t cap, int *more);

/* Recomputes c->due from the state as of c->clock_ms. */
void tf_lifecycle_schedule(const tf_config_rules *rules, tf_customer_t *c);

#endif
