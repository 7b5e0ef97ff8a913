/* figures: population figures kept exact in Redis by the commits that move them.
 *
 * Each customer's commit adds its deltas to a hash of counters (HINCRBY in the
 * commit script, see pkg/store/scripts.h), so the figures are exactly as applied:
 * a refused commit adds nothing and a replayed record is applied once. What a
 * batch adds is computed here, from the state before and after and from each
 * record's step (the event and what it derived). Field names are the stored
 * contract (README, "Population figures"):
 *
 *   customers                       customers ever seen
 *   stage:<stage>  tier:<tier>  level:<level>     customers in each now
 *   entered:<stage>:<day>  left:<stage>:<day>     stage changes per day (UTC, event time)
 *   new:<day>                       first touchpoints per day
 *   sat:customers  sat:sum_micro    customers with a satisfaction figure, and the
 *                                   sum of their figures x 10^6 (integers, so every
 *                                   order of commits gives the same sum)
 *   nps:promoters  nps:passives  nps:detractors   survey answers
 *   complaints:category:<c>  complaints:severity:<s>   complaints opened
 *   complaints:in_time              complaints acknowledged or resolved before
 *                                   their first escalation
 *   complaints:escalated:1|2        escalations sent
 *   exits:<reason>                  exits that ended the relationship, by reason
 *   campaigns:<campaign>            purchases attributed to the campaign
 *
 * Pure apart from the table and the view (table.c, view.c), which allocate; the per-record part
 * allocates nothing. */
#ifndef TF_FIGURES_H
#define TF_FIGURES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lifecycle/lifecycle.h"

/* Room for the longest field: a prefix and a 64-byte campaign or reason. */
#define TF_FIGURES_FIELD_MAX 96

typedef struct {
    char field[TF_FIGURES_FIELD_MAX];
    int64_t delta;
} tf_figure_delta;

/* Deltas of one step or one customer's batch, merged by field. The caller owns
 * the storage. */
typedef struct {
    tf_figure_delta *v;
    size_t n, cap;
    int overflow; /* a delta did not fit: the set is incomplete */
} tf_figures_set;

/* Adds delta to field (merged with an existing entry; a sum of 0 stays, harmless). */
void tf_figures_add(tf_figures_set *s, const char *field, int64_t delta);
/* Adds every entry of from. */
void tf_figures_merge(tf_figures_set *s, const tf_figures_set *from);

/* "YYYY-MM-DD" (UTC) of a time in ms. */
void tf_figures_day(int64_t ms, char out[11]);

/* What a step needs to remember of the state before it. */
typedef struct {
    tf_stage stage;
    int64_t complaints;
    int complaint_known;        /* the event's complaint was held before */
    tf_complaint_state complaint_state;
    int complaint_level;
} tf_figures_mark;

/* Call before applying ev (NULL for timers) to c. */
void tf_figures_mark_before(const tf_customer_t *c, const tf_event_t *ev, tf_figures_mark *m);

/* The deltas of one step: ev (NULL for timers) applied to the state marked m,
 * giving c and the derived events out[0..n). Adds flows and event counts to s;
 * the counts of customers by stage, tier, level, satisfaction and NPS come from
 * tf_figures_state over the whole batch. */
void tf_figures_step(const tf_config_rules *r, const tf_figures_mark *m, const tf_customer_t *c,
                     const tf_event_t *ev, const tf_derived_t *out, size_t n, tf_figures_set *s);

/* The change in the counts of customers (customers, stage, tier, level, sat, nps)
 * from before (existed or not) to after. */
void tf_figures_state(const tf_customer_t *before, int before_exists, const tf_customer_t *after,
                      tf_figures_set *s);

/* A customer's satisfaction figure as summed: S x 10^6 rounded, or -1 without one. */
int64_t tf_figures_sat_micro(const tf_customer_t *c);


/* ---- reading: the stored hashes summed (table.c) ---- */

typedef struct {
    char *field;
    int64_t value;
} tf_figures_row;

/* Field -> sum, in the order first met. Allocates; not for the per-record path. */
typedef struct {
    tf_figures_row *rows;
    size_t n, cap;
    uint32_t *index; /* open addressing over rows, 0 = empty, else row + 1 */
    size_t index_cap;
    size_t skipped;  /* values that were not integers (someone else's writes) */
} tf_figures_table;

/* Adds value to field[0..len); TF_ENOMEM. */
int tf_figures_table_add(tf_figures_table *t, const char *field, size_t len, int64_t value);
/* Adds a stored value given as text (an integer, else counted in skipped). */
int tf_figures_table_add_text(tf_figures_table *t, const char *field, size_t flen, const char *value, size_t vlen);
/* The sum for field, 0 when absent. */
int64_t tf_figures_table_get(const tf_figures_table *t, const char *field);
void tf_figures_table_free(tf_figures_table *t);


/* ---- the view: what the figures say (view.c) ---- */

typedef struct {
    const int64_t *windows_days; /* churn and retention windows */
    size_t nwindows;
    int daily_days;              /* days in the daily series, ending at as_of */
    size_t max_labels;           /* exit reasons and campaigns shown; the rest as "(other)" */
} tf_figures_view_opts;

/* The figures as a JSON object (a new reference; NULL when out of memory):
 *   as_of        the latest day any flow was recorded on (the stream's clock), or null
 *   customers, active (prospect to decline), stages{}, tiers{}, levels{}
 *   windows[]    per window of W days ending at as_of: start (active before it),
 *                new, won_back, churned, end (active now), churn_rate = churned /
 *                start, retention_rate = (end - new - won_back) / start (null
 *                when start is 0)
 *   daily[]      day, active at its end, new, won_back, churned, entered{stage}
 *   satisfaction {customers, average}, nps {promoters, passives, detractors, score}
 *   complaints   {by_category{}, by_severity{}, in_time, escalated_level1,
 *                escalated_level2, sla_compliance = in_time / (in_time + escalated_level1)}
 *   exits{}, campaigns{} (largest first, at most max_labels, then "(other)")
 * A figure without a base is null, never a made-up 0. */
json_t *tf_figures_view(const tf_figures_table *t, const tf_figures_view_opts *o);

#endif
