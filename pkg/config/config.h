/* config: touchflow's configuration, from one JSON file, TOUCHFLOW_* environment
 * overrides and command-line overrides, validated as a whole.
 *
 * The options are a table (one row per key: type, default, bounds); unknown keys and
 * bad values are errors that name the key. "kafka.consumer" and "kafka.producer" are
 * objects of string properties passed to librdkafka unchanged. */
#ifndef TF_CONFIG_H
#define TF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define TF_CONFIG_MAX_TOPICS 16
#define TF_CONFIG_MAX_PASSTHROUGH 64
#define TF_CONFIG_STR_MAX 512

/* figures.windows_days: churn and retention windows. */
#define TF_CONFIG_MAX_WINDOWS 4

typedef struct {
    char key[128];
    char value[TF_CONFIG_STR_MAX];
} tf_config_kv;

#define TF_RULES_MAX_FESTIVALS 128
#define TF_RULES_MAX_LEVELS 8
#define TF_RULES_NAME_MAX 32
#define TF_RULES_MAX_SEGMENTS 32
/* Families of derived events, each with its output topic (tf_config_families). */
#define TF_CONFIG_FAMILIES 10

/* A dated festival of the care calendar: rules.care.festivals entries
 * "YYYY-MM-DD name". */
typedef struct {
    int64_t day_ms;                     /* 00:00 UTC of the date */
    char name[TF_RULES_NAME_MAX];
} tf_rules_festival;

/* A member level: rules.loyalty.levels entries "name:min_points". */
typedef struct {
    char name[TF_RULES_NAME_MAX];
    int64_t min_points;
} tf_rules_level;

/* What a segment predicate reads of a customer: rules.segments[i].when[j].field.
 * stage, tier and level take `in` (a list of names); tags takes `has` or `lacks`
 * (a tag); the others are numbers bounded by `min` and/or `max` (inclusive). */
typedef enum {
    TF_SEG_STAGE = 0,
    TF_SEG_TIER,
    TF_SEG_LEVEL,
    TF_SEG_RFM_R,
    TF_SEG_RFM_F,
    TF_SEG_RFM_M,
    TF_SEG_SPEND,               /* net: spend less refunds, minor units */
    TF_SEG_PURCHASES,
    TF_SEG_DAYS_SINCE_PURCHASE, /* whole days since the last purchase: time-driven */
    TF_SEG_TENURE_DAYS,         /* whole days since the first purchase: time-driven */
    TF_SEG_SATISFACTION,        /* tf_customer_satisfaction, 0-100 (more when delighted) */
    TF_SEG_NPS,                 /* the mean NPS answer, 0-10 */
    TF_SEG_OPEN_COMPLAINTS,
    TF_SEG_CHURN_RISK,          /* 0-100 */
    TF_SEG_TAGS,
    TF_SEG__COUNT
} tf_segment_field;

/* "stage", "days_since_purchase", ... as the config and the derived events' figures
 * name them; NULL when out of range. */
const char *tf_config_segment_field_name(tf_segment_field f);

#define TF_RULES_MAX_PREDICATES 8
#define TF_RULES_MAX_IN 8
#define TF_RULES_TAG_MAX 33 /* a profile tag (1-32 bytes) and its NUL */

/* One predicate of a segment's `when` (all must hold). */
typedef struct {
    tf_segment_field field;
    /* stage, tier: bits of tf_vocab indexes (TF_VOCAB_STAGE, TF_VOCAB_TIER);
     * level: names of rules.loyalty.levels, in[0..nin) */
    uint32_t in_mask;
    size_t nin;
    char in[TF_RULES_MAX_IN][TF_RULES_NAME_MAX];
    /* numbers: the bounds that were given */
    int has_min, has_max;
    int64_t min, max;
    /* tags: has (lacks == 0) or lacks the tag */
    int lacks;
    char tag[TF_RULES_TAG_MAX];
} tf_rules_predicate;

/* A customer segment, rules.segments[i]: a name ([a-z0-9_-]{1,31}) and the
 * predicates that must all hold (config_segments.c parses and checks them).
 * Customers' membership is kept in their state; derived events carry it as
 * tf_derived_ctx.segments, bit i for segments[i]. */
typedef struct {
    char name[TF_RULES_NAME_MAX];
    size_t nwhen;
    tf_rules_predicate when[TF_RULES_MAX_PREDICATES];
} tf_rules_segment;

/* Every threshold of the lifecycle engine (DOMAIN.md): the rules.* section. Money
 * is in minor units, shares and weights in percent, durations in the unit the name
 * says. Defaults are in the option table of config.c and config/touchflow.json.
 *
 * levels and festivals are the parsed form of the lists rules.loyalty.levels and
 * rules.care.festivals, and their only copy: every function below that changes a
 * config keeps them parsed, and tf_config_to_json writes them back as text. */
typedef struct {
    /* rules.stages */
    int64_t mature_min_purchases;       /* growth -> mature: purchases, default 5 */
    int64_t mature_min_tenure_days;     /* ... and days since the first purchase, default 90 */
    int64_t mature_spend_threshold;     /* ... or lifetime spend, default 1000000 (0 = off) */
    int64_t inactivity_factor_pct;      /* -> decline: no purchase for factor x mean interval, default 200 */
    int64_t inactivity_min_days;        /* ... and at least this long, default 30 */
    int64_t spend_window_days;          /* -> decline: spend over the last window, default 90 */
    int64_t spend_decline_pct;          /* ... under this share of the window before, default 50 */
    int64_t churn_after_days;           /* decline -> churned: no purchase for, default 180 */
    int64_t review_days;                /* re-evaluate risk and tier at least this often, default 7 */

    /* rules.value */
    int64_t default_margin_pct;         /* margin of a purchase that carries none, default 30 */
    int64_t cost_per_call;              /* cost to serve, default 500 */
    int64_t cost_per_complaint;         /* default 2000 */
    int64_t cost_per_care;              /* per care reminder, default 100 */

    /* rules.tiers */
    int64_t key_share_pct;              /* top share that is key, default 5 */
    int64_t potential_share_pct;        /* the next share, default 15 */
    int64_t tier_hysteresis_pct;        /* extra share a member keeps its tier within, default 2 */
    int64_t tier_min_population;        /* below this many buyers everyone is regular, default 100 */
    int64_t temporary_after_days;       /* one purchase and none since, default 180 */
    int64_t tier_refresh_ms;            /* how stale the population ranks may be, default 1000 */
    int64_t tier_period_s;              /* stream clock: cutoffs fixed per period, default 86400 */

    /* rules.rfm: scores 1-5, breakpoints doubling from a step (R: days since the
     * last purchase under step, 2, 4, 8 x step give 5, 4, 3, 2; F: purchases at
     * step, 2, 4, 8 x step give 2, 3, 4, 5; M: net spend likewise) */
    int64_t rfm_recency_days;           /* default 30 */
    int64_t rfm_frequency_step;         /* default 2 */
    int64_t rfm_monetary_step;          /* default 50000 */

    /* rules.loyalty */
    int64_t points_per_unit;            /* points per 100 minor units spent, default 1 */
    size_t nlevels;                     /* sorted by min_points, the first has 0 */
    tf_rules_level levels[TF_RULES_MAX_LEVELS]; /* default member:0 silver:1000 gold:5000 platinum:20000 */

    /* rules.churn: risk 0-100 is the weighted sum of five signals in [0, 1] */
    int64_t churn_warning;              /* default 60 */
    int64_t churn_clear;                /* default 40, below the warning */
    int64_t weight_inactivity;          /* default 60, at least churn_warning */
    int64_t weight_spend_decline;       /* default 10 */
    int64_t weight_complaints;          /* default 15 */
    int64_t weight_satisfaction;        /* default 10 */
    int64_t weight_nps;                 /* default 5 */
    /* A customer past its expected purchase (rules.replenishment.overdue_days): on
     * top of the five, which keep summing to 100 so that every configuration
     * written before stays valid; the risk is capped at 100. Default 10. */
    int64_t weight_overdue;
    int64_t repeat_complaints;          /* complaints within the spend window that count as repeated, default 2 */
    int64_t low_satisfaction_pct;       /* S under this is a signal, default 90 */
    int64_t low_nps;                    /* mean NPS at or under this is a signal, default 6 */

    /* rules.care */
    int64_t birthday_days_before;       /* default 3 */
    int64_t festival_days_before;       /* default 3 */
    int64_t anniversary_days_before;    /* default 3 */
    int64_t followup_days;              /* after a purchase, default 3 */
    int64_t checkin_days;               /* key customers without contact, default 30 */
    int64_t complaint_followup_days;    /* after a resolution, default 7 */
    size_t nfestivals;                  /* sorted by date, then name; default: 2025-2028 (config/touchflow.json) */
    tf_rules_festival festivals[TF_RULES_MAX_FESTIVALS];

    /* rules.replenishment: the customer's own purchase rhythm (pkg/lifecycle/insight.c) */
    int64_t rhythm_min_intervals;       /* intervals before a rhythm exists, default 2; 0: never */
    int64_t rhythm_min_confidence_pct;  /* ... and its confidence at least, default 50 (0.5) */
    int64_t rhythm_min_interval_hours;  /* a purchase sooner after the last is the same trip, default 24 */
    int64_t replenish_days_before;      /* care reminder before the expected purchase, default 3 */
    int64_t overdue_days;               /* purchase.overdue this long after it, default 7 */

    /* rules.preference: the preferred channel, scores halving every half life */
    int64_t preference_half_life_days;  /* default 90 */
    int64_t preference_weight_purchase; /* a purchase through a channel, default 3 */
    int64_t preference_weight_engagement; /* an answer through one (open, click, call...), default 1 */

    /* rules.attribution_days: a purchase is attributed to the last campaign
     * touched at most this long before it, default 30 */
    int64_t attribution_days;

    /* rules.complaints: SLA per severity, minutes */
    int64_t sla_low_min;                /* default 4320 (72 h) */
    int64_t sla_medium_min;             /* default 1440 (24 h) */
    int64_t sla_high_min;               /* default 480 (8 h) */
    int64_t sla_critical_min;           /* default 120 (2 h) */

    /* rules.consent: what a channel whose consent was never stated counts as,
     * "granted" (default: triggers may use it, as before consent was kept) or
     * "withdrawn" */
    char consent_unstated[16];
    /* rules.exit: the exit touchpoint kinds that end the relationship (the customer
     * churns), default ["contract_end"]; an unsubscribe withdraws consent either way */
    size_t nexit_kinds;
    char exit_kinds[2][16];

    /* rules.segments, in the configured order (at most TF_RULES_MAX_SEGMENTS) */
    size_t nsegments;
    tf_rules_segment segments[TF_RULES_MAX_SEGMENTS];
} tf_config_rules;

/* subscriptions.<name>: a subscriber of derived events (config_subs.c). Every
 * filter field left empty (0, or no names) restricts nothing; one that is set
 * matches only an event that carries that fact with one of the listed values. */
#define TF_CONFIG_MAX_SUBS 32
#define TF_CONFIG_SUB_NAME_MAX 64
/* The subscriptions in force: one per family plus the configured ones. */
#define TF_CONFIG_ROUTES_MAX (TF_CONFIG_FAMILIES + TF_CONFIG_MAX_SUBS)
typedef struct {
    char name[TF_CONFIG_SUB_NAME_MAX];  /* 1-63 of [A-Za-z0-9._-] */
    char topic[128];                    /* "": absent (a family's own topic for a family name) */
    char mode[16];                      /* "structured", "binary"; "": kafka.output_mode */
    int enabled;                        /* default 1 */
    uint32_t types;                     /* filter.types: bit per tf_derived_type */
    uint32_t families;                  /* filter.types "touchflow.<family>.*": bit per family */
    int has_types;                      /* filter.types was given (a family name's default is its family) */
    uint32_t care_kinds, stages, tiers; /* bit per tf_vocab index */
    size_t nlevels;                     /* filter.levels: names of rules.loyalty.levels */
    char levels[TF_RULES_MAX_LEVELS][TF_RULES_NAME_MAX];
    size_t nsegments;                   /* filter.segments: names of rules.segments */
    char segments[TF_RULES_MAX_SEGMENTS][TF_RULES_NAME_MAX];
    int consent;                        /* filter.consent: a tf_channel the event must allow, -1 none */
} tf_config_sub;

typedef struct {
    /* kafka */
    char brokers[TF_CONFIG_STR_MAX];            /* kafka.brokers, default "127.0.0.1:9092" */
    char group_id[128];                         /* kafka.group_id, default "touchflow" */
    size_t ninput_topics;
    char input_topics[TF_CONFIG_MAX_TOPICS][128]; /* kafka.input_topics, default ["touchpoints"] */
    char dlq_topic[128];                        /* kafka.dlq_topic, default "touchflow.dlq" */
    /* output topic per derived family: kafka.output_topics.<family>; default
     * "touchflow.<family>" for lifecycle, churn, care, complaint, tier, loyalty,
     * referral, winback, segment, purchase; "" switches the family's own
     * subscription off */
    char output_topics[TF_CONFIG_FAMILIES][128];
    /* kafka.output_mode: the CloudEvents Kafka binding's content mode of derived
     * events, "structured" (default: the event is the value) or "binary" (data is
     * the value, attributes in ce_* headers) */
    char output_mode[16];
    /* subscriptions (config_subs.c), in the configured order; none by default. Each
     * family also has its own subscription, named after it, unless one of these
     * takes its name: see tf_config_subscriptions. */
    size_t nsubs;
    tf_config_sub subs[TF_CONFIG_MAX_SUBS];
    size_t nconsumer_props;
    tf_config_kv consumer_props[TF_CONFIG_MAX_PASSTHROUGH]; /* kafka.consumer.* */
    size_t nproducer_props;
    tf_config_kv producer_props[TF_CONFIG_MAX_PASSTHROUGH]; /* kafka.producer.* */

    /* redis */
    char redis_url[TF_CONFIG_STR_MAX];          /* redis.url, default "redis://127.0.0.1:6379" */
    char key_prefix[64];                        /* redis.key_prefix, default "tf:" */
    int64_t redis_timeout_ms;                   /* redis.timeout_ms, default 2000 */
    int64_t redis_backoff_min_ms;               /* redis.backoff_min_ms, default 100 */
    int64_t redis_backoff_max_ms;               /* redis.backoff_max_ms, default 5000 */
    int64_t redis_state_error_attempts;         /* redis.state_error_attempts, default 3 */
    int64_t dedup_window_s;                     /* redis.dedup_window_s, default 86400 */
    /* After a batch's commits, WAIT on each node written for this many replicas
     * before the input offsets are stored; 0: no WAIT */
    int64_t redis_wait_replicas;                /* redis.wait_replicas, default 0 */
    int64_t redis_wait_timeout_ms;              /* redis.wait_timeout_ms, default 1000 */

    /* processing */
    int64_t batch_max;                          /* processing.batch_max, default 2000 */
    int64_t max_inflight;                       /* processing.max_inflight, default 8000 */
    int64_t cache_mb;                           /* processing.cache_mb, default 48 (0: off) */
    int64_t shutdown_timeout_ms;                /* processing.shutdown_timeout_ms, default 10000 */
    char instance_source[256];                  /* processing.source, default "/touchflow" */
    char key_mismatch[16];                      /* processing.key_mismatch, "dead_letter" (default) or "apply" */

    /* limits (EVENTS.md) */
    int64_t max_record_bytes;                   /* limits.max_record_bytes, default 65536 */
    int64_t max_id_bytes;                       /* limits.max_id_bytes, default 128 */
    int64_t max_depth;                          /* limits.max_depth, default 16 */
    int64_t max_future_skew_s;                  /* limits.max_future_skew_s, default 86400 */
    int64_t max_amount;                         /* limits.max_amount, default 10^12 */

    /* log */
    char log_level[16];                         /* log.level, default "info" */

    /* ops: the HTTP listener for /metrics, /healthz, /readyz, /status and the
     * dashboard; "" disables it */
    char ops_listen[128];                       /* ops.listen, default "127.0.0.1:9464" */
    int64_t ops_stall_timeout_s;                /* ops.stall_timeout_s, default 300 (0: never) */
    int64_t ops_max_connections;                /* ops.max_connections, default 64 */

    /* figures: the population figures (pkg/figures) as /metrics, /figures and the
     * dashboard show them */
    int64_t figures_windows_days[TF_CONFIG_MAX_WINDOWS]; /* figures.windows_days, default [30, 90] */
    size_t nfigures_windows;
    int64_t figures_refresh_s;                  /* figures.refresh_s, default 15: how often they are read */
    int64_t figures_max_labels;                 /* figures.max_labels, default 50: exit reasons and
                                                 * campaigns shown, the rest as "(other)" */

    /* timers */
    char timers_clock[16];                      /* timers.clock, "wall" (default) or "stream" */
    int64_t timers_scan_interval_ms;            /* timers.scan_interval_ms, default 1000 */
    int64_t timers_max_per_second;              /* timers.max_per_second, default 2000: catch-up rate */

    tf_config_rules rules;                      /* rules.* */

    /* Rebuild mode (touchflowd --rebuild-into), set by the command line only: the
     * input is replayed into a fresh key prefix up to a live group's offsets. */
    int rebuild;
    int rebuild_emit;                           /* derived events are sent again (same ids) */
    int64_t rebuild_from_ms;                    /* partitions new to it start here; INT64_MIN: first offset */
} tf_config_t;

/* Output-family names in the order of tf_config_t.output_topics. */
extern const char *const tf_config_families[TF_CONFIG_FAMILIES];

/* Fills every field with its default. */
void tf_config_defaults(tf_config_t *cfg);

/* Loads path (JSON object) over the defaults. Every problem found is reported, one
 * per line, as "<key>: <problem>" into errbuf (NUL-terminated, truncated if needed).
 * Returns 0, or TF_ECONFIG when at least one problem was found.
 *
 * The file is nested objects ({"kafka": {"brokers": ...}}); keys absent from it keep
 * the value cfg already holds (call tf_config_defaults first), lists replace, and the
 * kafka.consumer / kafka.producer objects merge property by property. For this
 * function and the two below: on any error cfg is left unchanged (all or nothing);
 * TF_EINVAL for NULL arguments, TF_ENOMEM if a working copy cannot be allocated. */
int tf_config_load_file(tf_config_t *cfg, const char *path, char *errbuf, size_t errsize);

/* Applies TOUCHFLOW_* environment overrides (getenv): TOUCHFLOW_KAFKA_BROKERS,
 * TOUCHFLOW_REDIS_URL, TOUCHFLOW_GROUP_ID, TOUCHFLOW_INPUT_TOPICS (comma-separated),
 * TOUCHFLOW_LOG_LEVEL, TOUCHFLOW_KEY_PREFIX, TOUCHFLOW_DLQ_TOPIC, TOUCHFLOW_OPS_LISTEN,
 * TOUCHFLOW_REDIS_WAIT_REPLICAS.
 * A variable that is set, even to "", is applied. Same error reporting as above, each
 * line prefixed with the variable's name. */
int tf_config_apply_env(tf_config_t *cfg, char *errbuf, size_t errsize);

/* Applies one "dotted.key=value" override (command line -o/--set); the value is
 * parsed per the key's type: strings as-is, integers in decimal, lists as a JSON
 * array or comma-separated, kafka.consumer / kafka.producer as a JSON object (merged)
 * or one property at a time ("kafka.consumer.fetch.wait.max.ms=50"); a section
 * ("kafka.output_topics", "redis", ...) takes a JSON object laid out as in the file. */
int tf_config_apply_override(tf_config_t *cfg, const char *assignment, char *errbuf, size_t errsize);

/* Checks every value as loading would (bounds, topic names, URL, the parsed levels and
 * festivals, ...) and the cross-field rules: redis.backoff_min_ms <=
 * redis.backoff_max_ms, redis.wait_timeout_ms < redis.timeout_ms when
 * redis.wait_replicas > 0, processing.batch_max <= processing.max_inflight, at least one
 * input topic, input topics distinct, the DLQ topic and every output topic distinct
 * from the input topics, the DLQ topic distinct from the output topics (output
 * families may share a topic), rules.churn.clear < rules.churn.warning, the five
 * rules.churn.weight_* summing to 100, rules.tiers.key_share_pct +
 * potential_share_pct + hysteresis_pct <= 100; each subscription's topic (not an
 * input or the DLQ topic) and the levels and segments it names (of rules.*).
 * Reports all problems. */
int tf_config_validate(const tf_config_t *cfg, char *errbuf, size_t errsize);

/* Index of a family in tf_config_families, or -1. */
int tf_config_family_index(const char *family);

/* The subscriptions in force, written to out (room for TF_CONFIG_ROUTES_MAX):
 * first one per family, in tf_config_families order, named after the family: the
 * configured subscription of that name when there is one (its topic defaults to
 * kafka.output_topics.<family>, its types to "touchflow.<family>.*"), else the
 * implicit one (that topic, that family's types, enabled unless the topic is "");
 * then the other configured subscriptions in order. Every mode is resolved
 * ("structured" or "binary"). Returns how many. cfg is expected valid. */
size_t tf_config_subscriptions(const tf_config_t *cfg, tf_config_sub *out);

/* The distinct topics enabled subscriptions write to, then the dead-letter topic,
 * borrowed from cfg, into out (room for TF_CONFIG_ROUTES_MAX + 1). Returns how many. */
size_t tf_config_output_topic_list(const tf_config_t *cfg, const char **out);

/* ---- helpers shared with the modules that use the values (additions) ---- */

/* The most seed nodes a redis+cluster:// URL lists. */
#define TF_CONFIG_REDIS_SEEDS_MAX 16

/* A node to connect to: an IPv6 host is stored without its brackets. */
typedef struct {
    char host[256];
    int port;            /* default 6379 */
} tf_config_redis_seed;

/* redis.url, parsed: either one server,
 *   redis://[[user]:password@]host[:port][/db]
 * or a Redis Cluster reached through one or more of its nodes (seeds; the others are
 * learnt from them), which has only database 0:
 *   redis+cluster://[[user]:password@]host[:port][,host[:port]...][/0]
 * user and password are percent-decoded and apply to every node; an IPv6 host is
 * written in brackets. */
typedef struct {
    char host[256];      /* the first seed's, for callers that know one server only */
    int port;            /* default 6379 */
    int db;              /* default 0 */
    char username[128];  /* "" when absent (AUTH with the password only, or no AUTH) */
    char password[256];  /* "" when absent (no AUTH) */
    int cluster;         /* 1 for redis+cluster:// */
    /* Every node given, in URL order: one for redis://, so callers can always walk
     * the seeds; seeds[0] is host and port. */
    size_t nseeds;
    tf_config_redis_seed seeds[TF_CONFIG_REDIS_SEEDS_MAX];
} tf_config_redis_url;

/* Parses url into out. Returns 0, or TF_EINVAL with the reason in errbuf (naming the
 * seed at fault in a list); rediss:// is refused ("TLS is not supported by this
 * version"). Error text never contains the password. */
int tf_config_redis_url_parse(const char *url, tf_config_redis_url *out, char *errbuf,
                              size_t errsize);

/* Checks a Kafka topic name as the broker does: 1-249 characters of [a-zA-Z0-9._-],
 * not "." or "..". Returns 0, or TF_EINVAL with the reason in errbuf. */
int tf_config_topic_check(const char *topic, char *errbuf, size_t errsize);

/* Parses a listen address, "host:port" or "[ipv6]:port" (ops.listen): host is a name
 * or an address of letters, digits, '.', '-' and '_' (an IPv6 address in brackets,
 * stored without them), port is decimal 0-65535 (0: any free port). host needs
 * hostsize bytes. Returns 0, or TF_EINVAL with the reason in errbuf. */
int tf_config_listen_parse(const char *listen, char *host, size_t hostsize, int *port, char *errbuf,
                           size_t errsize);

/* Writes cfg as a JSON document laid out like config/touchflow.json (nested objects,
 * every key, table order, 2-space indent). With redact != 0 secrets are replaced by
 * "[redacted]": the password in redis.url and kafka.consumer/producer properties whose
 * name contains "password", "secret", "jaas", "oauthbearer.config" or ".pem".
 * Returns a new string the caller frees with free(), or NULL when out of memory. */
char *tf_config_to_json(const tf_config_t *cfg, int redact);

#endif
