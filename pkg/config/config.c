/* config: the option table and the three ways values reach it (file, environment,
 * -o overrides), plus whole-config validation.
 *
 * Every option is one row of `options` below: dotted key, type, where it lives in
 * tf_config_t, default and bounds. Everything else (defaults, loading, type and bounds
 * checks, unknown-key hints, validation, the JSON dump) walks that table, so adding an
 * option is adding a field to tf_config_t and one row here (and a line in
 * config/README.md and config/touchflow.json).
 *
 * Errors never stop at the first one: each entry point collects every problem into an
 * errlist and only then decides. Entry points work on a heap copy of the config and
 * copy it back only when there was no problem, so a failed load changes nothing. */
#include "config/config.h"
#include "config/internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

const char *const tf_config_families[TF_CONFIG_FAMILIES] = {
    "lifecycle", "churn", "care", "complaint", "tier", "loyalty", "referral", "winback", "segment", "purchase",
};

/* ------------------------------------------------------------------------------
 * Error collection: one problem per line, never more than errsize bytes. */

typedef tf_config_errlist errlist;

static void errlist_init(errlist *e, char *buf, size_t size)
{
    e->buf = size > 0 ? buf : NULL;
    e->size = buf ? size : 0;
    e->len = 0;
    e->count = 0;
    e->ctx = NULL;
    if (e->buf)
        e->buf[0] = '\0';
}

static void verrf(errlist *e, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void verrf(errlist *e, const char *fmt, va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    e->count++;
    if (!e->buf || e->len + 1 >= e->size)
        return;
    int n = snprintf(e->buf + e->len, e->size - e->len, "%s%s%s%s", e->len ? "\n" : "",
                     e->ctx ? e->ctx : "", e->ctx ? ": " : "", line);
    if (n < 0)
        return;
    if ((size_t)n >= e->size - e->len) {
        /* Truncated: say so, rather than end mid-word as if that were the message. */
        e->len = e->size - 1;
        if (e->size >= 4)
            memcpy(e->buf + e->size - 4, "...", 4);
        return;
    }
    e->len += (size_t)n;
}

static void errf(errlist *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void errf(errlist *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(e, fmt, ap);
    va_end(ap);
}

void tf_config_errf(errlist *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(e, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------------
 * The option table. String values are checked by the tf_config_check_* functions
 * of config_checks.c (internal.h). */

typedef int (*str_check_fn)(const char *v, char *why, size_t whysize);
/* Checks one kafka.consumer / kafka.producer property. */
typedef int (*prop_check_fn)(const char *name, const char *value, char *why, size_t whysize);

/* OPT_LIST is an array of strings stored as such; OPT_ENTRIES an array of strings
 * stored parsed (internal.h); OPT_JSON a value of its own JSON shape (internal.h). */
typedef enum { OPT_STR, OPT_INT, OPT_LIST, OPT_MAP, OPT_ENTRIES, OPT_JSON } opt_type;

typedef struct {
    const char *key;
    opt_type type;
    size_t off;        /* of the value: char[size], int64_t, char[max][size], tf_config_kv[max] */
    size_t size;       /* OPT_STR: buffer size; OPT_LIST: element size */
    size_t count_off;  /* OPT_LIST, OPT_MAP: offset of the size_t count */
    size_t max_items;  /* OPT_LIST, OPT_MAP, OPT_ENTRIES */
    int64_t min, max;  /* OPT_INT: bounds; OPT_LIST: min is the least number of items */
    int64_t def_int;   /* OPT_INT */
    const char *def_str; /* OPT_STR; OPT_LIST: comma-separated */
    str_check_fn check;  /* OPT_STR, OPT_LIST items; NULL: anything that fits */
    prop_check_fn prop_check; /* OPT_MAP */
    const tf_config_entries *entries; /* OPT_ENTRIES */
    const tf_config_json_option *json; /* OPT_JSON */
} opt;

#define MEMBER_SIZE(f) sizeof(((tf_config_t *)0)->f)
#define STR(k, f, def, chk) \
    { .key = k, .type = OPT_STR, .off = offsetof(tf_config_t, f), .size = MEMBER_SIZE(f), \
      .def_str = def, .check = chk }
#define INT(k, f, lo, hi, def) \
    { .key = k, .type = OPT_INT, .off = offsetof(tf_config_t, f), .min = lo, .max = hi, \
      .def_int = def }
#define TOPICS(k, f, n, def) \
    { .key = k, .type = OPT_LIST, .off = offsetof(tf_config_t, f), .size = MEMBER_SIZE(f[0]), \
      .count_off = offsetof(tf_config_t, n), .max_items = TF_CONFIG_MAX_TOPICS, .min = 1, \
      .def_str = def, .check = tf_config_check_topic }
#define MAP(k, f, n, chk) \
    { .key = k, .type = OPT_MAP, .off = offsetof(tf_config_t, f), \
      .count_off = offsetof(tf_config_t, n), .max_items = TF_CONFIG_MAX_PASSTHROUGH, \
      .prop_check = chk }
#define ENTRIES(k, desc, max) \
    { .key = k, .type = OPT_ENTRIES, .entries = &desc, .max_items = max }
#define JSONV(k, desc) { .key = k, .type = OPT_JSON, .json = &desc }
#define NAMES(k, f, n, max, def, chk) \
    { .key = k, .type = OPT_LIST, .off = offsetof(tf_config_t, f), .size = MEMBER_SIZE(f[0]), \
      .count_off = offsetof(tf_config_t, n), .max_items = max, .min = 0, .def_str = def, .check = chk }
/* "" switches the family's own subscription off (config_subs.c). */
#define OUT(fam, i) \
    STR("kafka.output_topics." fam, output_topics[i], "touchflow." fam, tf_config_check_topic_or_off)

#define MS_MAX INT64_C(600000)       /* 10 minutes */
#define YEAR_S INT64_C(31536000)
#define DAYS_MAX INT64_C(3650)       /* 10 years */
#define MONEY_MAX INT64_C(1000000000) /* a cost, in minor units: 10 000 000.00 */
#define R(k) "rules." k

/* Order matters twice: it is the order of tf_config_to_json (and so of
 * config/touchflow.json), and the OUT rows must follow tf_config_families. */
static const opt options[] = {
    STR("kafka.brokers", brokers, "127.0.0.1:9092", tf_config_check_brokers),
    STR("kafka.group_id", group_id, "touchflow", tf_config_check_group_id),
    TOPICS("kafka.input_topics", input_topics, ninput_topics, "touchpoints"),
    STR("kafka.dlq_topic", dlq_topic, "touchflow.dlq", tf_config_check_topic),
    STR("kafka.output_mode", output_mode, "structured", tf_config_check_output_mode),
    OUT("lifecycle", 0),
    OUT("churn", 1),
    OUT("care", 2),
    OUT("complaint", 3),
    OUT("tier", 4),
    OUT("loyalty", 5),
    OUT("referral", 6),
    OUT("winback", 7),
    OUT("segment", 8),
    OUT("purchase", 9),
    MAP("kafka.consumer", consumer_props, nconsumer_props, tf_config_check_consumer_prop),
    MAP("kafka.producer", producer_props, nproducer_props, tf_config_check_producer_prop),
    JSONV("subscriptions", tf_config_subscriptions_option),

    STR("redis.url", redis_url, "redis://127.0.0.1:6379", tf_config_check_redis_url),
    STR("redis.key_prefix", key_prefix, "tf:", tf_config_check_key_prefix),
    INT("redis.timeout_ms", redis_timeout_ms, 1, MS_MAX, 2000),
    INT("redis.backoff_min_ms", redis_backoff_min_ms, 1, MS_MAX, 100),
    INT("redis.backoff_max_ms", redis_backoff_max_ms, 1, MS_MAX, 5000),
    INT("redis.state_error_attempts", redis_state_error_attempts, 1, 100, 3),
    INT("redis.dedup_window_s", dedup_window_s, 60, YEAR_S, 86400),
    /* A Redis Cluster shard has at most a handful of replicas; 16 leaves room. */
    INT("redis.wait_replicas", redis_wait_replicas, 0, 16, 0),
    INT("redis.wait_timeout_ms", redis_wait_timeout_ms, 1, MS_MAX, 1000),

    INT("processing.batch_max", batch_max, 1, 100000, 2000),
    INT("processing.max_inflight", max_inflight, 1, 1000000, 8000),
    INT("processing.cache_mb", cache_mb, 0, 65536, 48),
    INT("processing.shutdown_timeout_ms", shutdown_timeout_ms, 1, MS_MAX, 10000),
    STR("processing.source", instance_source, "/touchflow", tf_config_check_source),
    STR("processing.key_mismatch", key_mismatch, "dead_letter", tf_config_check_key_mismatch),

    INT("limits.max_record_bytes", max_record_bytes, 256, 10485760, 65536),
    INT("limits.max_id_bytes", max_id_bytes, 1, 128, 128),
    INT("limits.max_depth", max_depth, 1, 64, 16),
    INT("limits.max_future_skew_s", max_future_skew_s, 0, YEAR_S, 86400),
    /* 10^15 at most: a customer then needs over 9,000 purchases at the limit before
     * a sum saturates. */
    INT("limits.max_amount", max_amount, 1, INT64_C(1000000000000000), INT64_C(1000000000000)),

    STR("log.level", log_level, "info", tf_config_check_log_level),

    STR("ops.listen", ops_listen, "127.0.0.1:9464", tf_config_check_listen),
    INT("ops.stall_timeout_s", ops_stall_timeout_s, 0, 86400, 300),
    INT("ops.max_connections", ops_max_connections, 1, 10000, 64),

    JSONV("figures.windows_days", tf_config_figures_windows),
    INT("figures.refresh_s", figures_refresh_s, 1, 3600, 15),
    INT("figures.max_labels", figures_max_labels, 1, 1000, 50),

    /* The lifecycle engine (DOMAIN.md). Bounds keep each figure meaningful and every
     * product the engine forms with it (days in ms, cost x count) far from overflow. */
    INT(R("stages.mature_min_purchases"), rules.mature_min_purchases, 0, 1000000, 5),
    INT(R("stages.mature_min_tenure_days"), rules.mature_min_tenure_days, 0, DAYS_MAX, 90),
    INT(R("stages.mature_spend_threshold"), rules.mature_spend_threshold, 0, INT64_MAX, 1000000),
    INT(R("stages.inactivity_factor_pct"), rules.inactivity_factor_pct, 100, 10000, 200),
    INT(R("stages.inactivity_min_days"), rules.inactivity_min_days, 1, DAYS_MAX, 30),
    /* Spend is kept in six buckets per window: a window shorter than six days has
     * buckets of no length. */
    INT(R("stages.spend_window_days"), rules.spend_window_days, 6, DAYS_MAX, 90),
    INT(R("stages.spend_decline_pct"), rules.spend_decline_pct, 1, 100, 50),
    INT(R("stages.churn_after_days"), rules.churn_after_days, 1, DAYS_MAX, 180),
    INT(R("stages.review_days"), rules.review_days, 1, 365, 7),

    INT(R("value.default_margin_pct"), rules.default_margin_pct, 0, 100, 30),
    INT(R("value.cost_per_call"), rules.cost_per_call, 0, MONEY_MAX, 500),
    INT(R("value.cost_per_complaint"), rules.cost_per_complaint, 0, MONEY_MAX, 2000),
    INT(R("value.cost_per_care"), rules.cost_per_care, 0, MONEY_MAX, 100),

    INT(R("tiers.key_share_pct"), rules.key_share_pct, 0, 100, 5),
    INT(R("tiers.potential_share_pct"), rules.potential_share_pct, 0, 100, 15),
    INT(R("tiers.hysteresis_pct"), rules.tier_hysteresis_pct, 0, 100, 2),
    INT(R("tiers.min_population"), rules.tier_min_population, 0, 1000000000, 100),
    INT(R("tiers.temporary_after_days"), rules.temporary_after_days, 1, DAYS_MAX, 180),
    INT(R("tiers.refresh_ms"), rules.tier_refresh_ms, 1, MS_MAX, 1000),
    INT(R("tiers.stream_period_s"), rules.tier_period_s, 60, YEAR_S, 86400),

    INT(R("rfm.recency_days"), rules.rfm_recency_days, 1, DAYS_MAX, 30),
    INT(R("rfm.frequency_step"), rules.rfm_frequency_step, 1, 1000000, 2),
    INT(R("rfm.monetary_step"), rules.rfm_monetary_step, 1, MONEY_MAX, 50000),

    INT(R("loyalty.points_per_unit"), rules.points_per_unit, 0, 1000000, 1),
    ENTRIES(R("loyalty.levels"), tf_config_levels, TF_RULES_MAX_LEVELS),

    INT(R("churn.warning"), rules.churn_warning, 1, 100, 60),
    INT(R("churn.clear"), rules.churn_clear, 0, 99, 40),
    /* Inactivity alone reaches the warning: silence is how most customers leave. */
    INT(R("churn.weight_inactivity"), rules.weight_inactivity, 0, 100, 60),
    INT(R("churn.weight_spend_decline"), rules.weight_spend_decline, 0, 100, 10),
    INT(R("churn.weight_complaints"), rules.weight_complaints, 0, 100, 15),
    INT(R("churn.weight_satisfaction"), rules.weight_satisfaction, 0, 100, 10),
    INT(R("churn.weight_nps"), rules.weight_nps, 0, 100, 5),
    INT(R("churn.weight_overdue"), rules.weight_overdue, 0, 100, 10),
    INT(R("churn.repeat_complaints"), rules.repeat_complaints, 1, 1000, 2),
    INT(R("churn.low_satisfaction_pct"), rules.low_satisfaction_pct, 0, 100, 90),
    INT(R("churn.low_nps"), rules.low_nps, 0, 10, 6),

    INT(R("care.birthday_days_before"), rules.birthday_days_before, 0, 365, 3),
    INT(R("care.festival_days_before"), rules.festival_days_before, 0, 365, 3),
    INT(R("care.anniversary_days_before"), rules.anniversary_days_before, 0, 365, 3),
    INT(R("care.followup_days"), rules.followup_days, 1, 365, 3),
    INT(R("care.checkin_days"), rules.checkin_days, 1, DAYS_MAX, 30),
    INT(R("care.complaint_followup_days"), rules.complaint_followup_days, 1, 365, 7),
    ENTRIES(R("care.festivals"), tf_config_festivals, TF_RULES_MAX_FESTIVALS),

    /* The customer's own purchase rhythm, preferred channel and attribution
     * (pkg/lifecycle/insight.c). A rhythm needs a spread: two intervals at least,
     * or 0 for none at all (validate_rules refuses 1). */
    INT(R("replenishment.min_intervals"), rules.rhythm_min_intervals, 0, 1000, 2),
    INT(R("replenishment.min_confidence_pct"), rules.rhythm_min_confidence_pct, 0, 100, 50),
    INT(R("replenishment.min_interval_hours"), rules.rhythm_min_interval_hours, 0, 8760, 24),
    INT(R("replenishment.days_before"), rules.replenish_days_before, 0, 365, 3),
    INT(R("replenishment.overdue_days"), rules.overdue_days, 0, DAYS_MAX, 7),
    INT(R("preference.half_life_days"), rules.preference_half_life_days, 1, DAYS_MAX, 90),
    INT(R("preference.weight_purchase"), rules.preference_weight_purchase, 1, 1000, 3),
    INT(R("preference.weight_engagement"), rules.preference_weight_engagement, 0, 1000, 1),
    INT(R("attribution_days"), rules.attribution_days, 1, DAYS_MAX, 30),

    /* SLAs in minutes, at most 30 days. */
    INT(R("complaints.sla_low_min"), rules.sla_low_min, 1, 43200, 4320),
    INT(R("complaints.sla_medium_min"), rules.sla_medium_min, 1, 43200, 1440),
    INT(R("complaints.sla_high_min"), rules.sla_high_min, 1, 43200, 480),
    INT(R("complaints.sla_critical_min"), rules.sla_critical_min, 1, 43200, 120),

    /* Consent and exits (config_rules.c checks the values). */
    STR(R("consent.unstated"), rules.consent_unstated, "granted", tf_config_check_consent_unstated),
    NAMES(R("exit.kinds"), rules.exit_kinds, rules.nexit_kinds, 2, "contract_end", tf_config_check_exit_kind),
    JSONV(R("segments"), tf_config_segments),

    STR("timers.clock", timers_clock, "wall", tf_config_check_clock),
    INT("timers.scan_interval_ms", timers_scan_interval_ms, 10, MS_MAX, 1000),
    INT("timers.max_per_second", timers_max_per_second, 1, 1000000, 2000),
};

#define NOPTIONS (sizeof options / sizeof options[0])

/* The most items any list option takes: the size of the item arrays below. */
#define ITEMS_MAX TF_RULES_MAX_FESTIVALS
_Static_assert(ITEMS_MAX >= TF_CONFIG_MAX_TOPICS && ITEMS_MAX >= TF_RULES_MAX_LEVELS,
               "ITEMS_MAX covers every list option");

/* Output topics are rows like any other; this pins their order to the family names. */
_Static_assert(sizeof tf_config_families / sizeof tf_config_families[0] ==
                   MEMBER_SIZE(output_topics) / MEMBER_SIZE(output_topics[0]),
               "one output topic per family");

static const struct {
    const char *env;
    const char *key;
} env_options[] = {
    {"TOUCHFLOW_KAFKA_BROKERS", "kafka.brokers"},
    {"TOUCHFLOW_GROUP_ID", "kafka.group_id"},
    {"TOUCHFLOW_INPUT_TOPICS", "kafka.input_topics"},
    {"TOUCHFLOW_DLQ_TOPIC", "kafka.dlq_topic"},
    {"TOUCHFLOW_REDIS_URL", "redis.url"},
    {"TOUCHFLOW_KEY_PREFIX", "redis.key_prefix"},
    {"TOUCHFLOW_REDIS_WAIT_REPLICAS", "redis.wait_replicas"},
    {"TOUCHFLOW_LOG_LEVEL", "log.level"},
    {"TOUCHFLOW_OPS_LISTEN", "ops.listen"},
};

/* ---- field access ---- */

static char *str_at(tf_config_t *cfg, const opt *o)
{
    return (char *)cfg + o->off;
}

static const char *cstr_at(const tf_config_t *cfg, const opt *o)
{
    return (const char *)cfg + o->off;
}

static int64_t *int_at(tf_config_t *cfg, const opt *o)
{
    return (int64_t *)(void *)((char *)cfg + o->off);
}

static int64_t cint_at(const tf_config_t *cfg, const opt *o)
{
    return *(const int64_t *)(const void *)((const char *)cfg + o->off);
}

static size_t *count_at(tf_config_t *cfg, const opt *o)
{
    return (size_t *)(void *)((char *)cfg + o->count_off);
}

static size_t ccount_at(const tf_config_t *cfg, const opt *o)
{
    return *(const size_t *)(const void *)((const char *)cfg + o->count_off);
}

static tf_config_kv *kv_at(tf_config_t *cfg, const opt *o)
{
    return (tf_config_kv *)(void *)((char *)cfg + o->off);
}

static const tf_config_kv *ckv_at(const tf_config_t *cfg, const opt *o)
{
    return (const tf_config_kv *)(const void *)((const char *)cfg + o->off);
}

/* ---- key lookup ---- */

static const opt *find_opt(const char *key)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strcmp(options[i].key, key) == 0)
            return &options[i];
    return NULL;
}

/* A section is a proper dotted prefix of some key ("kafka", "kafka.output_topics"). */
static int is_section(const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strncmp(options[i].key, key, n) == 0 && options[i].key[n] == '.')
            return 1;
    return 0;
}

/* The map option a "kafka.consumer.<property>" key falls under, with *prop set. */
static const opt *find_map_prop(const char *key, const char **prop)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const opt *o = &options[i];
        size_t n = strlen(o->key);
        if (o->type == OPT_MAP && strncmp(o->key, key, n) == 0 && key[n] == '.') {
            *prop = key + n + 1;
            return o;
        }
    }
    return NULL;
}

/* Optimal string alignment distance (Levenshtein plus adjacent transpositions, the
 * commonest typo), capped: anything longer than 127 bytes is "far". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 127 || lb > 127)
        return (size_t)-1;
    size_t rows[3][128];
    size_t *pp = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t d = prev[j] + 1;
            if (cur[j - 1] + 1 < d)
                d = cur[j - 1] + 1;
            if (prev[j - 1] + cost < d)
                d = prev[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                pp[j - 2] + 1 < d)
                d = pp[j - 2] + 1;
            cur[j] = d;
        }
        size_t *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

/* Reports an unknown key: with the nearest known key or section when one is within
 * two edits, otherwise with the keys its parent accepts. */
static void unknown_key(errlist *e, const char *key)
{
    char best[128] = "";
    size_t bestd = 3;
    for (size_t i = 0; i < NOPTIONS; i++) {
        const char *k = options[i].key;
        /* Candidates: the key itself and each of its sections. */
        for (const char *dot = k;; dot++) {
            if (*dot != '.' && *dot != '\0')
                continue;
            char cand[128];
            size_t n = (size_t)(dot - k);
            if (n < sizeof cand) {
                memcpy(cand, k, n);
                cand[n] = '\0';
                size_t d = edit_distance(key, cand);
                if (d < bestd) {
                    bestd = d;
                    memcpy(best, cand, n + 1);
                }
            }
            if (*dot == '\0')
                break;
        }
    }
    if (best[0]) {
        errf(e, "%s: unknown key; did you mean %s?", key, best);
        return;
    }

    /* List what the parent section does accept. */
    const char *lastdot = strrchr(key, '.');
    size_t plen = lastdot ? (size_t)(lastdot - key) : 0;
    char list[768] = "";
    size_t used = 0;
    for (size_t i = 0; i < NOPTIONS; i++) {
        const char *k = options[i].key;
        if (plen && (strncmp(k, key, plen) != 0 || k[plen] != '.'))
            continue;
        const char *c = plen ? k + plen + 1 : k;
        size_t clen = strcspn(c, ".");
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++) {
            const char *kj = options[j].key;
            if (plen && (strncmp(kj, key, plen) != 0 || kj[plen] != '.'))
                continue;
            const char *cj = plen ? kj + plen + 1 : kj;
            dup = strcspn(cj, ".") == clen && strncmp(cj, c, clen) == 0;
        }
        if (dup)
            continue;
        int n = snprintf(list + used, sizeof list - used, "%s%.*s", used ? ", " : "", (int)clen, c);
        if (n < 0 || (size_t)n >= sizeof list - used)
            break;
        used += (size_t)n;
    }
    if (!list[0])
        errf(e, "%s: unknown key", key);
    else if (plen)
        errf(e, "%s: unknown key (%.*s accepts: %s)", key, (int)plen, key, list);
    else
        errf(e, "%s: unknown key (the top level accepts: %s)", key, list);
}

/* ------------------------------------------------------------------------------
 * Checking and setting values. `label` is the key as the user wrote it. */

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "real number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

/* Common to every string value: fits its buffer, printable, then the row's check. */
static int check_str_value(errlist *e, const char *label, const char *v, size_t len,
                           size_t bufsize, str_check_fn check)
{
    if (len >= bufsize) {
        errf(e, "%s: too long (%zu bytes, at most %zu)", label, len, bufsize - 1);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f) {
            errf(e, "%s: contains a control character (byte %zu)", label, i + 1);
            return -1;
        }
    }
    if (!tf_utf8_valid(v, len)) {
        errf(e, "%s: not valid UTF-8", label);
        return -1;
    }
    char why[512];
    if (check && check(v, why, sizeof why)) {
        errf(e, "%s: %s", label, why);
        return -1;
    }
    return 0;
}

static int check_int_value(errlist *e, const char *label, const opt *o, int64_t v)
{
    if (v < o->min || v > o->max) {
        errf(e, "%s: %" PRId64 " is out of bounds (expected %" PRId64 " to %" PRId64 ")", label,
             v, o->min, o->max);
        return -1;
    }
    return 0;
}

/* items[0..n) as the new value of a list option: all of them are checked. NULL items
 * (already reported by the caller) are skipped. */
static int check_list_value(errlist *e, const char *label, const opt *o, const char *const *items,
                            size_t n)
{
    int bad = 0;
    if (n < (size_t)o->min) {
        errf(e, "%s: must list at least %" PRId64 " topic%s", label, o->min, o->min == 1 ? "" : "s");
        return -1;
    }
    if (n > o->max_items) {
        errf(e, "%s: %zu items, at most %zu", label, n, o->max_items);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!items[i])
            continue;
        char il[300];
        snprintf(il, sizeof il, "%s[%zu]", label, i);
        if (check_str_value(e, il, items[i], strlen(items[i]), o->size, o->check)) {
            bad = 1;
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (items[j] && strcmp(items[i], items[j]) == 0) {
                errf(e, "%s: \"%s\" is listed twice", il, items[i]);
                bad = 1;
                break;
            }
        }
    }
    return bad ? -1 : 0;
}

static int check_prop(errlist *e, const char *label, const opt *o, const char *name,
                      const char *value)
{
    char pl[300];
    snprintf(pl, sizeof pl, "%s.%s", label, name);
    if (!*name) {
        errf(e, "%s: empty property name", label);
        return -1;
    }
    if (check_str_value(e, pl, name, strlen(name), MEMBER_SIZE(consumer_props[0].key), NULL) ||
        check_str_value(e, pl, value, strlen(value), MEMBER_SIZE(consumer_props[0].value), NULL))
        return -1;
    char why[512];
    if (o->prop_check(name, value, why, sizeof why)) {
        errf(e, "%s: %s", pl, why);
        return -1;
    }
    return 0;
}

static void set_str(tf_config_t *cfg, const opt *o, errlist *e, const char *label, const char *v,
                    size_t len)
{
    /* Zero-filled, so that equal configs are equal bytes (tests compare them so). */
    if (check_str_value(e, label, v, len, o->size, o->check) == 0) {
        memset(str_at(cfg, o), 0, o->size);
        memcpy(str_at(cfg, o), v, len);
    }
}

static void set_int(tf_config_t *cfg, const opt *o, errlist *e, const char *label, int64_t v)
{
    if (check_int_value(e, label, o, v) == 0)
        *int_at(cfg, o) = v;
}

static void set_list(tf_config_t *cfg, const opt *o, errlist *e, const char *label,
                     const char *const *items, size_t n)
{
    if (check_list_value(e, label, o, items, n))
        return;
    char *base = str_at(cfg, o);
    memset(base, 0, o->max_items * o->size);
    for (size_t i = 0; i < n; i++)
        tf_strlcpy(base + i * o->size, items[i], o->size);
    *count_at(cfg, o) = n;
}

/* Adds or replaces one passthrough property. */
static void set_prop(tf_config_t *cfg, const opt *o, errlist *e, const char *label,
                     const char *name, const char *value)
{
    if (check_prop(e, label, o, name, value))
        return;
    tf_config_kv *kv = kv_at(cfg, o);
    size_t *n = count_at(cfg, o);
    size_t i;
    for (i = 0; i < *n; i++)
        if (strcmp(kv[i].key, name) == 0)
            break;
    if (i == *n) {
        if (*n >= o->max_items) {
            errf(e, "%s.%s: too many properties (at most %zu)", label, name, o->max_items);
            return;
        }
        (*n)++;
        memset(kv[i].key, 0, sizeof kv[i].key);
        tf_strlcpy(kv[i].key, name, sizeof kv[i].key);
    }
    memset(kv[i].value, 0, sizeof kv[i].value);
    tf_strlcpy(kv[i].value, value, sizeof kv[i].value);
}

/* librdkafka takes every property as a string; numbers and booleans are accepted in
 * the JSON for convenience and converted here. 0, or -1 for other types. */
static int prop_string(const json_t *v, char *out, size_t outsize, const char **str)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        *str = json_string_value(v);
        return 0;
    case JSON_INTEGER:
        snprintf(out, outsize, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: {
        /* Shortest form that reads back as the same double. */
        double d = json_real_value(v);
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(out, outsize, "%.*g", prec, d);
            if (strtod(out, NULL) == d)
                break;
        }
        break;
    }
    case JSON_TRUE:
        snprintf(out, outsize, "true");
        break;
    case JSON_FALSE:
        snprintf(out, outsize, "false");
        break;
    default:
        return -1;
    }
    *str = out;
    return 0;
}

static void apply_json(tf_config_t *cfg, const opt *o, errlist *e, const char *label,
                       json_t *v)
{
    switch (o->type) {
    case OPT_STR:
        if (!json_is_string(v)) {
            errf(e, "%s: expected a string, got %s", label, json_type_name(v));
            return;
        }
        set_str(cfg, o, e, label, json_string_value(v), json_string_length(v));
        return;
    case OPT_INT:
        if (!json_is_integer(v)) {
            errf(e, "%s: expected an integer, got %s", label, json_type_name(v));
            return;
        }
        set_int(cfg, o, e, label, (int64_t)json_integer_value(v));
        return;
    case OPT_LIST:
    case OPT_ENTRIES: {
        if (!json_is_array(v)) {
            errf(e, "%s: expected an array of strings, got %s", label, json_type_name(v));
            return;
        }
        size_t n = json_array_size(v);
        if (n > o->max_items) {
            errf(e, "%s: %zu items, at most %zu", label, n, o->max_items);
            return;
        }
        const char *items[ITEMS_MAX] = {0};
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
            json_t *it = json_array_get(v, i);
            items[i] = json_string_value(it); /* NULL for non-strings */
            if (!items[i]) {
                errf(e, "%s[%zu]: expected a string, got %s", label, i, json_type_name(it));
                bad = 1;
            }
        }
        if (o->type == OPT_ENTRIES)
            o->entries->set(cfg, e, label, items, n); /* refuses NULL items, reports the rest */
        else if (bad)
            check_list_value(e, label, o, items, n); /* still report the strings' problems */
        else
            set_list(cfg, o, e, label, items, n);
        return;
    }
    case OPT_MAP: {
        if (!json_is_object(v)) {
            errf(e, "%s: expected an object of string properties, got %s", label,
                 json_type_name(v));
            return;
        }
        const char *name;
        json_t *pv;
        json_object_foreach(v, name, pv) {
            char buf[64];
            const char *s;
            if (prop_string(pv, buf, sizeof buf, &s)) {
                errf(e, "%s.%s: expected a string, number or boolean, got %s", label, name,
                     json_type_name(pv));
                continue;
            }
            set_prop(cfg, o, e, label, name, s);
        }
        return;
    }
    case OPT_JSON:
        o->json->set(cfg, e, label, v);
        return;
    }
}

/* Walks one JSON object of the file (or of a section override) at `prefix`. */
static void apply_object(tf_config_t *cfg, errlist *e, const char *prefix, json_t *obj)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        char full[512];
        int n = prefix ? snprintf(full, sizeof full, "%s.%s", prefix, k)
                       : snprintf(full, sizeof full, "%s", k);
        if (n < 0 || (size_t)n >= sizeof full) {
            errf(e, "%.64s...: unknown key", full);
            continue;
        }
        if (*k == '\0') {
            errf(e, "%s: empty key", prefix ? prefix : "(top level)");
            continue;
        }
        const char *prop;
        if (strchr(k, '.')) {
            /* Dotted keys belong to overrides; the file is nested objects, so that one
             * value cannot be given twice in two spellings. */
            if (find_opt(full) || is_section(full) || find_map_prop(full, &prop))
                errf(e, "%s: write nested objects in the file, not a dotted key \"%s\"", full, k);
            else
                unknown_key(e, full);
            continue;
        }
        const opt *o = find_opt(full);
        if (o)
            apply_json(cfg, o, e, full, v);
        else if (is_section(full)) {
            if (json_is_object(v))
                apply_object(cfg, e, full, v);
            else
                errf(e, "%s: expected an object, got %s", full, json_type_name(v));
        } else
            unknown_key(e, full);
    }
}

/* A value given as text (environment, -o) for option o. */
static void apply_text(tf_config_t *cfg, const opt *o, errlist *e, const char *label,
                       const char *text)
{
    const char *t = text;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t tlen = strlen(t);
    while (tlen > 0 && (t[tlen - 1] == ' ' || t[tlen - 1] == '\t'))
        tlen--;

    switch (o->type) {
    case OPT_STR:
        set_str(cfg, o, e, label, text, strlen(text));
        return;
    case OPT_INT: {
        int64_t v;
        if (tf_parse_i64(t, tlen, &v) != 0) {
            errf(e, "%s: expected an integer, got \"%.*s\"", label, tlen > 64 ? 64 : (int)tlen, t);
            return;
        }
        set_int(cfg, o, e, label, v);
        return;
    }
    case OPT_LIST:
    case OPT_ENTRIES: {
        if (tlen > 0 && t[0] == '[') {
            json_error_t jerr;
            json_t *arr = json_loadb(t, tlen, 0, &jerr);
            if (!arr) {
                errf(e, "%s: invalid JSON array at column %d: %s", label, jerr.column, jerr.text);
                return;
            }
            apply_json(cfg, o, e, label, arr);
            json_decref(arr);
            return;
        }
        /* Comma-separated, blanks around items ignored. */
        char *copy = strdup(text);
        if (!copy) {
            errf(e, "%s: out of memory", label);
            return;
        }
        const char *items[ITEMS_MAX + 1];
        size_t n = 0;
        char *p = copy;
        for (;;) {
            char *end = p + strcspn(p, ",");
            int last = *end == '\0';
            *end = '\0';
            while (*p == ' ' || *p == '\t')
                p++;
            char *q = end;
            while (q > p && (q[-1] == ' ' || q[-1] == '\t'))
                *--q = '\0';
            if (n == o->max_items) {
                n++;
                break;
            }
            items[n++] = p;
            if (last)
                break;
            p = end + 1;
        }
        if (n > o->max_items)
            errf(e, "%s: more than %zu items", label, o->max_items);
        else if (o->type == OPT_ENTRIES)
            o->entries->set(cfg, e, label, items, n);
        else
            set_list(cfg, o, e, label, items, n);
        free(copy);
        return;
    }
    case OPT_MAP:
    case OPT_JSON: {
        if (o->type == OPT_MAP && (tlen == 0 || t[0] != '{')) {
            errf(e, "%s: expected a JSON object such as {\"linger.ms\":\"5\"}, or set one "
                    "property with %s.<property>=<value>",
                 label, label);
            return;
        }
        json_error_t jerr;
        json_t *obj = json_loadb(t, tlen, JSON_REJECT_DUPLICATES, &jerr);
        if (!obj) {
            errf(e, "%s: invalid JSON%s at column %d: %s", label, o->type == OPT_MAP ? " object" : "",
                 jerr.column, jerr.text);
            return;
        }
        apply_json(cfg, o, e, label, obj);
        json_decref(obj);
        return;
    }
    }
}

/* key=value where key may be an option, a passthrough property or a section. */
static void apply_assignment(tf_config_t *cfg, errlist *e, const char *key, const char *value)
{
    const opt *o = find_opt(key);
    const char *prop;
    if (o) {
        apply_text(cfg, o, e, key, value);
    } else if ((o = find_map_prop(key, &prop)) != NULL) {
        set_prop(cfg, o, e, o->key, prop, value);
    } else if (is_section(key)) {
        json_error_t jerr;
        json_t *obj = json_loads(value, JSON_REJECT_DUPLICATES, &jerr);
        if (!obj || !json_is_object(obj))
            errf(e, "%s: a section takes a JSON object (%s)", key,
                 obj ? "got another JSON value" : jerr.text);
        else
            apply_object(cfg, e, key, obj);
        json_decref(obj);
    } else {
        unknown_key(e, key);
    }
}

/* ------------------------------------------------------------------------------
 * Public entry points. */

void tf_config_defaults(tf_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NOPTIONS; i++) {
        const opt *o = &options[i];
        switch (o->type) {
        case OPT_STR:
            tf_strlcpy(str_at(cfg, o), o->def_str, o->size);
            break;
        case OPT_INT:
            *int_at(cfg, o) = o->def_int;
            break;
        case OPT_LIST: {
            /* Defaults are single words or comma-separated, never blank. */
            const char *p = o->def_str;
            size_t n = 0;
            while (*p && n < o->max_items) {
                size_t len = strcspn(p, ",");
                char *dst = str_at(cfg, o) + n * o->size;
                if (len < o->size) {
                    memcpy(dst, p, len);
                    dst[len] = '\0';
                    n++;
                }
                p += len + (p[len] == ',');
            }
            *count_at(cfg, o) = n;
            break;
        }
        case OPT_MAP:
            *count_at(cfg, o) = 0;
            break;
        case OPT_ENTRIES: {
            errlist e;
            errlist_init(&e, NULL, 0);
            o->entries->set(cfg, &e, o->key, o->entries->defaults, o->entries->ndefaults);
            assert(e.count == 0 && "the built-in default is valid");
            break;
        }
        case OPT_JSON:
            break; /* the zeroed value is the default (internal.h) */
        }
    }
    cfg->figures_windows_days[0] = 30;
    cfg->figures_windows_days[1] = 90;
    cfg->nfigures_windows = 2;
}

int tf_config_family_index(const char *family)
{
    if (!family)
        return -1;
    for (int i = 0; i < TF_CONFIG_FAMILIES; i++)
        if (strcmp(tf_config_families[i], family) == 0)
            return i;
    return -1;
}

/* Copies cfg to a heap scratch config; entry points work there and commit at the end. */
static tf_config_t *scratch_new(const tf_config_t *cfg, errlist *e)
{
    tf_config_t *w = malloc(sizeof *w);
    if (!w)
        errf(e, "out of memory");
    else
        memcpy(w, cfg, sizeof *w);
    return w;
}

static int scratch_commit(tf_config_t *cfg, tf_config_t *w, const errlist *e)
{
    if (e->count == 0)
        memcpy(cfg, w, sizeof *cfg);
    free(w);
    return e->count ? TF_ECONFIG : 0;
}

int tf_config_load_file(tf_config_t *cfg, const char *path, char *errbuf, size_t errsize)
{
    errlist e;
    errlist_init(&e, errbuf, errsize);
    if (!cfg || !path) {
        errf(&e, "tf_config_load_file: missing argument");
        return TF_EINVAL;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line > 0)
            errf(&e, "%s: line %d, column %d: %s", path, jerr.line, jerr.column, jerr.text);
        else
            errf(&e, "%s: %s", path, jerr.text);
        return TF_ECONFIG;
    }
    if (!json_is_object(root)) {
        errf(&e, "%s: the top level must be a JSON object, got %s", path, json_type_name(root));
        json_decref(root);
        return TF_ECONFIG;
    }
    tf_config_t *w = scratch_new(cfg, &e);
    if (!w) {
        json_decref(root);
        return TF_ENOMEM;
    }
    apply_object(w, &e, NULL, root);
    json_decref(root);
    return scratch_commit(cfg, w, &e);
}

int tf_config_apply_env(tf_config_t *cfg, char *errbuf, size_t errsize)
{
    errlist e;
    errlist_init(&e, errbuf, errsize);
    if (!cfg) {
        errf(&e, "tf_config_apply_env: missing argument");
        return TF_EINVAL;
    }
    tf_config_t *w = scratch_new(cfg, &e);
    if (!w)
        return TF_ENOMEM;
    for (size_t i = 0; i < sizeof env_options / sizeof env_options[0]; i++) {
        const char *v = getenv(env_options[i].env);
        if (!v)
            continue;
        const opt *o = find_opt(env_options[i].key);
        e.ctx = env_options[i].env;
        apply_text(w, o, &e, o->key, v);
        e.ctx = NULL;
    }
    return scratch_commit(cfg, w, &e);
}

int tf_config_apply_override(tf_config_t *cfg, const char *assignment, char *errbuf,
                             size_t errsize)
{
    errlist e;
    errlist_init(&e, errbuf, errsize);
    if (!cfg || !assignment) {
        errf(&e, "tf_config_apply_override: missing argument");
        return TF_EINVAL;
    }
    const char *eq = strchr(assignment, '=');
    const char *k = assignment;
    while (*k == ' ' || *k == '\t')
        k++;
    size_t klen = eq ? (size_t)(eq - k) : 0;
    while (klen > 0 && (k[klen - 1] == ' ' || k[klen - 1] == '\t'))
        klen--;
    if (!eq || klen == 0) {
        errf(&e, "\"%.64s\": expected <key>=<value>, e.g. processing.batch_max=500", assignment);
        return TF_ECONFIG;
    }
    char key[512];
    if (klen >= sizeof key) {
        errf(&e, "%.64s...: unknown key", k);
        return TF_ECONFIG;
    }
    memcpy(key, k, klen);
    key[klen] = '\0';

    tf_config_t *w = scratch_new(cfg, &e);
    if (!w)
        return TF_ENOMEM;
    apply_assignment(w, &e, key, eq + 1);
    return scratch_commit(cfg, w, &e);
}

/* A buffer that a programmatically built config may have left unterminated. */
static int terminated(errlist *e, const char *label, const char *s, size_t size)
{
    if (memchr(s, '\0', size))
        return 1;
    errf(e, "%s: not NUL-terminated", label);
    return 0;
}

static void validate_option(const tf_config_t *cfg, const opt *o, errlist *e)
{
    switch (o->type) {
    case OPT_STR: {
        const char *s = cstr_at(cfg, o);
        if (terminated(e, o->key, s, o->size))
            check_str_value(e, o->key, s, strlen(s), o->size, o->check);
        return;
    }
    case OPT_INT:
        check_int_value(e, o->key, o, cint_at(cfg, o));
        return;
    case OPT_LIST: {
        size_t n = ccount_at(cfg, o);
        if (n > o->max_items) {
            errf(e, "%s: %zu items, at most %zu", o->key, n, o->max_items);
            return;
        }
        const char *items[TF_CONFIG_MAX_TOPICS] = {0};
        for (size_t i = 0; i < n; i++) {
            items[i] = cstr_at(cfg, o) + i * o->size;
            if (!terminated(e, o->key, items[i], o->size))
                return;
        }
        check_list_value(e, o->key, o, items, n);
        return;
    }
    case OPT_MAP: {
        size_t n = ccount_at(cfg, o);
        if (n > o->max_items) {
            errf(e, "%s: %zu properties, at most %zu", o->key, n, o->max_items);
            return;
        }
        const tf_config_kv *kv = ckv_at(cfg, o);
        for (size_t i = 0; i < n; i++) {
            if (terminated(e, o->key, kv[i].key, sizeof kv[i].key) &&
                terminated(e, o->key, kv[i].value, sizeof kv[i].value))
                check_prop(e, o->key, o, kv[i].key, kv[i].value);
        }
        return;
    }
    case OPT_ENTRIES:
        o->entries->check(cfg, e, o->key);
        return;
    case OPT_JSON:
        o->json->check(cfg, e, o->key);
        return;
    }
}

static int pct_ok(int64_t v)
{
    return v >= 0 && v <= 100;
}

/* The rules across rules.* keys. Sums are formed only of values within their bounds
 * (the others were reported already), so they cannot overflow. */
static void validate_rules(const tf_config_rules *r, errlist *e)
{
    if (r->churn_clear >= r->churn_warning)
        errf(e, "rules.churn.clear: %" PRId64 " must be below rules.churn.warning (%" PRId64 "), "
                "or a warning could never be cleared",
             r->churn_clear, r->churn_warning);
    int weights_ok = pct_ok(r->weight_inactivity) && pct_ok(r->weight_spend_decline) &&
                     pct_ok(r->weight_complaints) && pct_ok(r->weight_satisfaction) &&
                     pct_ok(r->weight_nps);
    int64_t sum = !weights_ok ? 100
                              : r->weight_inactivity + r->weight_spend_decline + r->weight_complaints +
                                    r->weight_satisfaction + r->weight_nps;
    if (sum != 100)
        errf(e, "rules.churn.weight_*: the five weights (weight_inactivity %" PRId64
                ", weight_spend_decline %" PRId64 ", weight_complaints %" PRId64
                ", weight_satisfaction %" PRId64 ", weight_nps %" PRId64 ") sum to %" PRId64
                ", expected exactly 100",
             r->weight_inactivity, r->weight_spend_decline, r->weight_complaints,
             r->weight_satisfaction, r->weight_nps, sum);
    if (pct_ok(r->weight_inactivity) && r->weight_inactivity < r->churn_warning)
        errf(e, "rules.churn.weight_inactivity: %" PRId64 " is below rules.churn.warning (%" PRId64
                "): a customer who simply stops buying would never be warned before churning",
             r->weight_inactivity, r->churn_warning);
    if (r->rhythm_min_intervals == 1)
        errf(e, "rules.replenishment.min_intervals: 1 cannot make a rhythm (one interval has no spread): "
                "at least 2, or 0 to turn the purchase rhythm off");
    int shares_ok = pct_ok(r->key_share_pct) && pct_ok(r->potential_share_pct) &&
                    pct_ok(r->tier_hysteresis_pct);
    int64_t shares = !shares_ok ? 0 : r->key_share_pct + r->potential_share_pct + r->tier_hysteresis_pct;
    if (shares > 100)
        errf(e, "rules.tiers.key_share_pct + potential_share_pct + hysteresis_pct: %" PRId64
                " + %" PRId64 " + %" PRId64 " is %" PRId64 ", at most 100 (the tiers and the "
                "hysteresis band must fit in the population)",
             r->key_share_pct, r->potential_share_pct, r->tier_hysteresis_pct, shares);
}

int tf_config_validate(const tf_config_t *cfg, char *errbuf, size_t errsize)
{
    errlist e;
    errlist_init(&e, errbuf, errsize);
    if (!cfg) {
        errf(&e, "tf_config_validate: missing argument");
        return TF_EINVAL;
    }
    for (size_t i = 0; i < NOPTIONS; i++)
        validate_option(cfg, &options[i], &e);
    /* Integers are always well-formed: their rules are checked even next to other
     * problems, so that one run reports them all. */
    validate_rules(&cfg->rules, &e);
    if (e.count)
        return TF_ECONFIG; /* the other cross-field rules assume well-formed fields */

    if (cfg->redis_backoff_min_ms > cfg->redis_backoff_max_ms)
        errf(&e, "redis.backoff_min_ms: %" PRId64 " is greater than redis.backoff_max_ms (%" PRId64 ")",
             cfg->redis_backoff_min_ms, cfg->redis_backoff_max_ms);
    /* WAIT holds its reply for up to its timeout; a connection silent for
     * redis.timeout_ms is dropped as hung, so WAIT must answer before that. */
    if (cfg->redis_wait_replicas > 0 && cfg->redis_wait_timeout_ms >= cfg->redis_timeout_ms)
        errf(&e, "redis.wait_timeout_ms: %" PRId64 " is not less than redis.timeout_ms (%" PRId64 "); a WAIT "
                 "that takes its whole timeout would be taken for a hung connection",
             cfg->redis_wait_timeout_ms, cfg->redis_timeout_ms);
    if (cfg->batch_max > cfg->max_inflight)
        errf(&e, "processing.batch_max: %" PRId64 " is greater than processing.max_inflight (%" PRId64 ")",
             cfg->batch_max, cfg->max_inflight);

    for (size_t i = 0; i < cfg->ninput_topics; i++) {
        const char *in = cfg->input_topics[i];
        /* Consuming our own output would loop derived events back in as touchpoints. */
        if (strcmp(cfg->dlq_topic, in) == 0)
            errf(&e, "kafka.dlq_topic: \"%s\" is also an input topic (kafka.input_topics); "
                     "dead letters would be consumed again",
                 in);
        for (int f = 0; f < TF_CONFIG_FAMILIES; f++)
            if (cfg->output_topics[f][0] && strcmp(cfg->output_topics[f], in) == 0)
                errf(&e, "kafka.output_topics.%s: \"%s\" is also an input topic "
                         "(kafka.input_topics); derived events would be consumed again",
                     tf_config_families[f], in);
    }
    for (int f = 0; f < TF_CONFIG_FAMILIES; f++)
        if (cfg->output_topics[f][0] && strcmp(cfg->output_topics[f], cfg->dlq_topic) == 0)
            errf(&e, "kafka.output_topics.%s: \"%s\" is also kafka.dlq_topic; dead letters "
                     "and derived events need separate topics",
                 tf_config_families[f], cfg->dlq_topic);
    return e.count ? TF_ECONFIG : 0;
}

/* ------------------------------------------------------------------------------
 * JSON dump. */

#define REDACTED "[redacted]"

static int secret_prop(const char *name)
{
    return strstr(name, "password") || strstr(name, "secret") || strstr(name, "jaas") ||
           strstr(name, "oauthbearer.config") || strstr(name, ".pem");
}

/* redis.url with any password replaced; the user name stays (it helps debugging). */
static json_t *redis_url_json(const char *url, int redact)
{
    const char *at = strrchr(url, '@');
    const char *p = strstr(url, "://");
    if (!redact || !at || !p || at < p)
        return json_string(url);
    p += 3;
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (!colon)
        return json_string(url); /* a user name only: no secret */
    char buf[TF_CONFIG_STR_MAX + sizeof REDACTED];
    snprintf(buf, sizeof buf, "%.*s:" REDACTED "%s", (int)(colon - url), url, at);
    return json_string(buf);
}

static json_t *option_json(const tf_config_t *cfg, const opt *o, int redact)
{
    switch (o->type) {
    case OPT_STR:
        if (o->check == tf_config_check_redis_url)
            return redis_url_json(cstr_at(cfg, o), redact);
        return json_string(cstr_at(cfg, o));
    case OPT_INT:
        return json_integer((json_int_t)cint_at(cfg, o));
    case OPT_LIST: {
        json_t *a = json_array();
        size_t n = ccount_at(cfg, o);
        for (size_t i = 0; a && i < n && i < o->max_items; i++) {
            if (json_array_append_new(a, json_string(cstr_at(cfg, o) + i * o->size))) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case OPT_MAP: {
        json_t *m = json_object();
        const tf_config_kv *kv = ckv_at(cfg, o);
        size_t n = ccount_at(cfg, o);
        for (size_t i = 0; m && i < n && i < o->max_items; i++) {
            const char *v = redact && secret_prop(kv[i].key) ? REDACTED : kv[i].value;
            if (json_object_set_new(m, kv[i].key, json_string(v))) {
                json_decref(m);
                return NULL;
            }
        }
        return m;
    }
    case OPT_ENTRIES: {
        json_t *a = json_array();
        size_t n = o->entries->count(cfg);
        for (size_t i = 0; a && i < n && i < o->max_items; i++) {
            char text[TF_CONFIG_ENTRY_MAX];
            o->entries->format(cfg, i, text, sizeof text);
            if (json_array_append_new(a, json_string(text))) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case OPT_JSON:
        return o->json->dump(cfg);
    }
    return NULL;
}

/* Puts val (taken) at the dotted key under root, creating sections on the way. */
static int place(json_t *root, const char *key, json_t *val)
{
    json_t *obj = root;
    const char *p = key;
    for (;;) {
        size_t n = strcspn(p, ".");
        char part[128];
        if (n >= sizeof part) {
            json_decref(val);
            return -1;
        }
        memcpy(part, p, n);
        part[n] = '\0';
        if (p[n] == '\0')
            return json_object_set_new(obj, part, val);
        json_t *next = json_object_get(obj, part);
        if (!next) {
            next = json_object();
            if (!next || json_object_set_new(obj, part, next)) {
                json_decref(val);
                return -1;
            }
        }
        obj = next;
        p += n + 1;
    }
}

char *tf_config_to_json(const tf_config_t *cfg, int redact)
{
    if (!cfg)
        return NULL;
    json_t *root = json_object();
    if (!root)
        return NULL;
    for (size_t i = 0; i < NOPTIONS; i++) {
        json_t *v = option_json(cfg, &options[i], redact);
        if (!v || place(root, options[i].key, v)) {
            json_decref(root);
            return NULL;
        }
    }
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return s;
}
