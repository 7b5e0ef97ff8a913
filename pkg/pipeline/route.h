/* route: which subscriptions receive a derived event, as a pure decision over the
 * subscriptions in force (tf_config_subscriptions) and what the event carries
 * (its type and tf_derived_ctx). The pipeline routes every derived event when the
 * rules emit it and keeps the destinations' names in the outbox; `touchflow route`
 * asks the same questions of an event read back from a topic. Every filter field
 * and edge has a unit test (tests/unit/test_route.c).
 *
 * A filter field left empty restricts nothing. One that is set matches only an
 * event that carries the fact with a listed value: care_kinds never match a
 * tier.changed (no care kind), levels never match before the first level. */
#ifndef TF_PIPELINE_ROUTE_H
#define TF_PIPELINE_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "event/event.h"

/* Destinations are a bit mask: bit i is subscription i of the table. */
#define TF_ROUTE_MAX TF_CONFIG_ROUTES_MAX
_Static_assert(TF_ROUTE_MAX <= 64, "a route is a 64-bit mask");

/* One subscription as routing reads it: names resolved to bits. */
typedef struct {
    char name[TF_CONFIG_SUB_NAME_MAX];
    char topic[128];
    int binary;          /* content mode */
    int enabled;
    uint32_t types;      /* bit per tf_derived_type (families expanded); 0: any */
    uint32_t care_kinds; /* bit per TF_VOCAB_CARE_KIND index; 0: any */
    uint32_t stages;     /* bit per TF_VOCAB_STAGE index; 0: any */
    uint32_t tiers;      /* bit per TF_VOCAB_TIER index; 0: any */
    uint32_t levels;     /* bit i: rules.loyalty.levels[i]; 0: any */
    uint64_t segments;   /* bit i: rules.segments[i]; 0: any */
    int consent;         /* the tf_channel the event must allow, -1: none */
} tf_route_sub;

/* Plain data: the subscriptions in force, and the rules' level and segment names
 * the events' facts are read against. */
typedef struct {
    size_t n;
    tf_route_sub subs[TF_ROUTE_MAX];
    size_t nlevels;
    char levels[TF_RULES_MAX_LEVELS][TF_RULES_NAME_MAX];
    size_t nsegments;
    char segments[TF_RULES_MAX_SEGMENTS][TF_RULES_NAME_MAX];
} tf_route_table;

/* Why a subscription does not receive an event: the first filter field that fails,
 * in this order. */
typedef enum {
    TF_ROUTE_MATCH = 0,
    TF_ROUTE_DISABLED,  /* enabled: false, or a family whose topic is "" */
    TF_ROUTE_TYPES,
    TF_ROUTE_CARE_KINDS,
    TF_ROUTE_STAGES,
    TF_ROUTE_TIERS,
    TF_ROUTE_LEVELS,
    TF_ROUTE_SEGMENTS,
    TF_ROUTE_CONSENT,
} tf_route_why;

/* "match", "disabled", or the filter key that failed ("types", "care_kinds", ...). */
const char *tf_route_why_name(tf_route_why w);

/* Fills t from a validated cfg (tf_config_validate passed). */
void tf_route_table_build(const tf_config_t *cfg, tf_route_table *t);

/* Whether subscription i receives an event of type with facts ctx. */
tf_route_why tf_route_check(const tf_route_table *t, size_t i, tf_derived_type type, const tf_derived_ctx *ctx);

/* Every subscription that receives it; 0: nobody wants it. */
uint64_t tf_route(const tf_route_table *t, tf_derived_type type, const tf_derived_ctx *ctx);

/* mask without the subscriptions that would write a second copy of the event to a
 * topic in the same mode (the lowest index stays): one record per topic and mode. */
uint64_t tf_route_distinct(const tf_route_table *t, uint64_t mask);

/* The index of the subscription called name[0..len), or -1. */
int tf_route_find(const tf_route_table *t, const char *name, size_t len);

/* The destinations an outbox payload names, names[0..len) = "<sub>[,<sub>...]" (the
 * previous version wrote the family there, which is the name of the family's
 * subscription): the enabled subscriptions among them. *skipped counts the names
 * that are not (no longer configured, or switched off). */
uint64_t tf_route_parse_dests(const tf_route_table *t, const char *names, size_t len, size_t *skipped);

/* Reads back the facts of an event of type from its data object (JSON text, as on
 * a topic): the figures stage, tier, level (a string), value, channels, segments,
 * care.reminder's kind and segment.entered/exited's segment; for stage_changed,
 * tier.changed and level_changed, `to` stands for the current stage, tier or level
 * when that figure is absent. Names the table does not know (a segment, a level)
 * are left out. TF_EINVAL with the reason in err when data is not a JSON object. */
int tf_route_ctx_from_data(const tf_route_table *t, tf_derived_type type, const char *data, size_t len,
                           tf_derived_ctx *ctx, char *err, size_t errsize);

#endif
