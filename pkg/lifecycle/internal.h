/* Internals shared by the lifecycle rule files. */
#ifndef TF_LIFECYCLE_INTERNAL_H
#define TF_LIFECYCLE_INTERNAL_H

#include "lifecycle/lifecycle.h"

/* What made a rule fire: a touchpoint, or a timer of a customer at its due time.
 * Derived events take their time, subject and id from it. */
typedef struct {
    const tf_event_t *ev;     /* NULL for a timer */
    const char *customer;     /* the subject */
    const char *timer;        /* timer name, for ids */
    const char *occasion;     /* distinguishes two firings of one timer at one time */
    int64_t at_ms;            /* event time or due time */
} tf_cause;

/* Output cursor: out[0..*n), at most cap. */
typedef struct {
    tf_derived_t *out;
    size_t n, cap;
} tf_emit;

/* A new derived event of type for cause, rule naming what fired; NULL when the
 * cursor is full (never with the caps the callers keep). */
tf_derived_t *tf_lc_derive(tf_emit *e, tf_derived_type type, const tf_cause *cause, const char *rule);

/* stages.c */
void tf_lc_change_stage(tf_customer_t *c, tf_stage to, const tf_cause *cause, const char *rule, tf_emit *e);
int tf_lc_is_mature(const tf_config_rules *r, const tf_customer_t *c, int64_t now_ms);
/* The no-purchase period after which growth or mature declines, in ms. */
int64_t tf_lc_inactivity_threshold_ms(const tf_config_rules *r, const tf_customer_t *c);
/* The silence at which inactivity counts in full toward churn risk: the customer's
 * own threshold, but never past half way to the churn point (rules.stages
 * churn_after_days), so a customer of a long rhythm is warned with time left to act
 * rather than churned unwarned. */
int64_t tf_lc_warning_horizon_ms(const tf_config_rules *r, const tf_customer_t *c);
/* Time-driven transitions at cause->at_ms: decline by inactivity, spend or risk;
 * churned after the exit period; mature by tenure. */
void tf_lc_review_stage(const tf_config_rules *r, tf_customer_t *c, const tf_cause *cause, tf_emit *e);
void tf_lc_enter_churned(tf_customer_t *c, const tf_cause *cause, const char *rule, tf_emit *e);

/* value.c */
void tf_lc_spend_add(const tf_config_rules *r, tf_customer_t *c, int64_t at_ms, int64_t amount);
/* Spend in the window ending at now_ms and in the one before it. */
void tf_lc_spend_windows(const tf_config_rules *r, const tf_customer_t *c, int64_t now_ms, int64_t *recent,
                         int64_t *previous);
int tf_lc_spend_declined(const tf_config_rules *r, const tf_customer_t *c, int64_t now_ms, int64_t *recent,
                         int64_t *previous);
/* Churn risk 0-100 at now_ms; reasons gets the names of the signals present,
 * comma-separated. */
int64_t tf_lc_risk(const tf_config_rules *r, const tf_customer_t *c, int64_t now_ms, char *reasons,
                   size_t reasons_size);
/* RFM scores of c at now_ms (c->rfm_*). */
void tf_lc_rfm(const tf_config_rules *r, tf_customer_t *c, int64_t now_ms);
/* Warning when the risk crosses the warning threshold, clearing under the clear one. */
void tf_lc_review_risk(const tf_config_rules *r, tf_customer_t *c, const tf_cause *cause, tf_emit *e);
void tf_lc_clear_warning(tf_customer_t *c, const tf_cause *cause, const char *rule, tf_emit *e);
void tf_lc_review_tier(const tf_config_rules *r, const tf_population_t *pop, tf_customer_t *c,
                       const tf_cause *cause, tf_emit *e);
void tf_lc_review_level(const tf_config_rules *r, tf_customer_t *c, const tf_cause *cause, tf_emit *e);

/* care.c: reminders and complaints */
/* "YYYY-MM-DD" (UTC) of ms. */
void tf_lc_format_date(int64_t ms, char out[16]);
void tf_lc_care_reminder(tf_customer_t *c, const tf_cause *cause, const char *kind, const char *occasion,
                         int64_t date_ms, tf_emit *e);
void tf_lc_complaint(tf_customer_t *c, const tf_event_t *ev);
void tf_lc_complaint_update(const tf_config_rules *r, tf_customer_t *c, const tf_event_t *ev);
/* Complaints opened within the spend window before now_ms. */
int64_t tf_lc_recent_complaints(const tf_config_rules *r, const tf_customer_t *c, int64_t now_ms);
/* Due times of the care and complaint timers as of c->clock_ms. */
void tf_lc_schedule_care(const tf_config_rules *r, tf_customer_t *c);
/* Fires timer t of c at due; returns 0, or -1 when there was nothing to do. */
int tf_lc_fire_care(const tf_config_rules *r, tf_customer_t *c, tf_timer t, const char *customer, int64_t due,
                    tf_emit *e);

/* segments.c: rules.segments, pure functions of the state and a time */
/* Membership of c at t: bit i when every predicate of r->segments[i] holds. A
 * predicate on a figure the customer does not have (days since purchase, tenure
 * and RFM before the first purchase, satisfaction without surveys, NPS without
 * answers) does not hold. */
uint64_t tf_lc_segments_at(const tf_config_rules *r, const tf_customer_t *c, int64_t t);
/* The first time after t at which the membership of c changes by the passage of
 * time alone (days_since_purchase and tenure_days crossing a bound, the rest as it
 * is), or 0 when none does. */
int64_t tf_lc_segments_next_change(const tf_config_rules *r, const tf_customer_t *c, int64_t t);
/* The stored membership (c->segments, by name) as bits of r->segments. */
uint64_t tf_lc_segments_member(const tf_config_rules *r, const tf_customer_t *c);
/* A fingerprint of r->segments (names, order and predicates); 0 when there are none. */
int64_t tf_lc_segments_fingerprint(const tf_config_rules *r);
/* Re-judges membership at c->clock_ms and emits segment.exited, then
 * segment.entered, per change (in config order) for cause. A customer whose
 * segments_fp differs from the config's is re-judged silently: a config change is
 * not a customer's change. */
void tf_lc_review_segments(const tf_config_rules *r, tf_customer_t *c, const tf_cause *cause, tf_emit *e);
/* d's ctx.segments and "segments" figure (when segments are configured): c's membership. */
void tf_lc_segments_context(const tf_config_rules *r, const tf_customer_t *c, tf_derived_t *d);

/* insight.c: favourite items, preferred channel, purchase rhythm, attribution */
/* What touchpoint ev teaches about c, before the rules of its kind run (a
 * purchase's rhythm reads the purchases before it): items, channel scores, the
 * rhythm, the campaign touched, the exit reason. */
void tf_lc_learn(const tf_config_rules *r, tf_customer_t *c, const tf_event_t *ev);
/* Due times of the replenishment and overdue timers from the state. */
void tf_lc_schedule_insight(const tf_config_rules *r, tf_customer_t *c);
/* Fires timer t (replenishment or overdue) of c at due; 0, or -1 when there was
 * nothing to do. */
int tf_lc_fire_insight(const tf_config_rules *r, tf_customer_t *c, tf_timer t, const char *customer, int64_t due,
                       tf_emit *e);
/* Whether c is overdue at now_ms: it has a rhythm and its expected purchase passed
 * by rules.replenishment.overdue_days (a churn risk signal until it buys). */
int tf_lc_overdue(const tf_config_rules *r, const tf_customer_t *c, int64_t now_ms);
/* d's "favourite_items" figure: c's TF_FAVOURITES_SHOWN most bought SKUs, when it
 * has any. */
void tf_lc_add_favourites(const tf_customer_t *c, tf_derived_t *d);

/* Calendar helpers. */
/* Money and counts summed over a customer's lifetime saturate instead of
 * overflowing (signed overflow is undefined): amounts are bounded per event
 * (limits.max_amount), so only an absurd lifetime reaches the bounds, and a
 * saturated figure stays the most extreme one. */
static inline int64_t tf_lc_add(int64_t a, int64_t b)
{
    int64_t s;
    if (__builtin_add_overflow(a, b, &s))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return s;
}

static inline int64_t tf_lc_mul(int64_t a, int64_t b)
{
    int64_t s;
    if (__builtin_mul_overflow(a, b, &s))
        return (a > 0) == (b > 0) ? INT64_MAX : INT64_MIN;
    return s;
}

static inline int64_t tf_lc_day_floor(int64_t ms)
{
    int64_t d = ms / TF_MS_PER_DAY;
    if (ms % TF_MS_PER_DAY < 0)
        d--;
    return d * TF_MS_PER_DAY;
}

#endif
