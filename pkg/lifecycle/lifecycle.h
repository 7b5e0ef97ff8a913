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

/* One customer's state: plain data, zero-initialised for a new customer. Times are
 * event times in ms since the epoch (0 = never). Money is in minor units of
 * `currency`, the currency of the customer's first purchase; purchases in another
 * currency are counted but their amounts are kept out of the totals
 * (foreign_purchases counts them). */
typedef struct {
    tf_stage stage;
    int64_t stage_since_ms;

    int64_t counts[TF_KIND__COUNT];   /* touchpoints per kind */
    int64_t first_seen_ms, last_seen_ms;

    int64_t purchases;
    int64_t first_purchase_ms, last_purchase_ms;
    int64_t spend;                    /* gross purchase amounts */
    int64_t margin;                   /* gross margin */
    int64_t refunded;                 /* refund amounts */
    int64_t foreign_purchases;
    char currency[4];

    int64_t open_complaints;
    int64_t complaints;

    int64_t surveys_sat;              /* surveys with expectation and perception */
    double sat_expectation_sum;       /* A */
    double sat_perception_sum;        /* B */
    int64_t nps_count;
    int64_t nps_sum;

    int64_t churned_count;            /* times the customer entered churned */

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

/* The most derived events one touchpoint can cause. */
#define TF_LIFECYCLE_MAX_DERIVED 8

/* Applies ev to c. Derived events are written to out[0..n) with deterministic ids
 * (from ev->source, ev->id and the type) and time = ev->time_ms; n is returned.
 * Never fails: a touchpoint that does not fit a rule still counts. */
size_t tf_lifecycle_apply(const tf_config_rules *rules, tf_customer_t *c, const tf_event_t *ev,
                          tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED]);

#endif
