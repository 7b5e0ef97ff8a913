/* Shared internals of pkg/config: the error list every entry point collects into, and
 * the list options that are stored parsed (config_rules.c). */
#ifndef TF_CONFIG_INTERNAL_H
#define TF_CONFIG_INTERNAL_H

#include <stddef.h>

#include <jansson.h>

#include "config/config.h"

/* Problems, one per line, never more than size bytes in buf (which may be NULL). */
typedef struct {
    char *buf;
    size_t size;
    size_t len;
    int count;
    const char *ctx; /* prefixed to every line ("TOUCHFLOW_REDIS_URL: ..."), or NULL */
} tf_config_errlist;

/* Adds one problem (a line without its newline) and counts it even when it does not fit. */
void tf_config_errf(tf_config_errlist *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Longest text of one entry, terminator included: "platinum:20000", "2026-02-17 spring_festival". */
#define TF_CONFIG_ENTRY_MAX 64

/* A list option whose entries are parsed into a typed array of tf_config_t, the only
 * copy of the value: the engine reads the array, and the text form exists only in the
 * file, in overrides and in tf_config_to_json. Problems are reported as
 * "<label>[i]: \"<entry>\": <why>". */
typedef struct {
    size_t max_items;
    /* The built-in default, as entries. */
    const char *const *defaults;
    size_t ndefaults;
    /* Parses items[0..n) into cfg; changes cfg only when every item is valid. NULL items
     * were reported by the caller: they are skipped, and make the whole set fail. */
    void (*set)(tf_config_t *cfg, tf_config_errlist *e, const char *label, const char *const *items,
                size_t n);
    /* Reports what set would have refused in the parsed value (a config built in code). */
    void (*check)(const tf_config_t *cfg, tf_config_errlist *e, const char *label);
    size_t (*count)(const tf_config_t *cfg);
    /* Entry i as text; buf needs TF_CONFIG_ENTRY_MAX bytes. */
    void (*format)(const tf_config_t *cfg, size_t i, char *buf, size_t size);
} tf_config_entries;

/* Checks of string options named by the option table (config_checks.c): each returns
 * 0, or -1 with the reason in why (never the value of a secret). */
int tf_config_check_topic(const char *v, char *why, size_t whysize);
int tf_config_check_topic_or_off(const char *v, char *why, size_t whysize); /* "": family off */
int tf_config_check_brokers(const char *v, char *why, size_t whysize);
int tf_config_check_redis_url(const char *v, char *why, size_t whysize);
int tf_config_check_log_level(const char *v, char *why, size_t whysize);
int tf_config_check_key_prefix(const char *v, char *why, size_t whysize);
int tf_config_check_source(const char *v, char *why, size_t whysize);
int tf_config_check_listen(const char *v, char *why, size_t whysize);
int tf_config_check_group_id(const char *v, char *why, size_t whysize);
int tf_config_check_key_mismatch(const char *v, char *why, size_t whysize);
int tf_config_check_output_mode(const char *v, char *why, size_t whysize);
int tf_config_check_clock(const char *v, char *why, size_t whysize);
/* A kafka.consumer / kafka.producer property: refuses those touchflow sets itself. */
int tf_config_check_consumer_prop(const char *name, const char *value, char *why, size_t whysize);
int tf_config_check_producer_prop(const char *name, const char *value, char *why, size_t whysize);

/* rules.consent.unstated: "granted" or "withdrawn". 0, or -1 with the reason in why. */
int tf_config_check_consent_unstated(const char *v, char *why, size_t whysize);
/* An item of rules.exit.kinds: "contract_end" or "unsubscribe". */
int tf_config_check_exit_kind(const char *v, char *why, size_t whysize);

/* An option whose value has a JSON shape of its own (rules.segments: an array of
 * objects), parsed into tf_config_t by its own file, which also writes it back. Its
 * default is the zeroed value (no items). */
typedef struct {
    /* Parses v (borrowed; NULL counts as a wrong type) into cfg; changes cfg only
     * when v is valid, else reports every problem naming the key under label. */
    void (*set)(tf_config_t *cfg, tf_config_errlist *e, const char *label, json_t *v);
    /* Reports what set would have refused in the parsed value (a config built in
     * code), and what depends on other keys (names of rules.loyalty.levels). */
    void (*check)(const tf_config_t *cfg, tf_config_errlist *e, const char *label);
    /* The value as JSON, a new reference; NULL when out of memory. */
    json_t *(*dump)(const tf_config_t *cfg);
} tf_config_json_option;

/* rules.segments (config_segments.c). */
extern const tf_config_json_option tf_config_segments;

/* subscriptions (config_subs.c): an object of named subscriptions; the section
 * replaces the set. Its checks span sections (topics, rules.loyalty.levels,
 * rules.segments). */
extern const tf_config_json_option tf_config_subscriptions_option;

/* figures.windows_days (config_figures.c); its default is set by tf_config_defaults. */
extern const tf_config_json_option tf_config_figures_windows;

/* rules.loyalty.levels: "name:min_points". */
extern const tf_config_entries tf_config_levels;
/* rules.care.festivals: "YYYY-MM-DD name". */
extern const tf_config_entries tf_config_festivals;

#endif
