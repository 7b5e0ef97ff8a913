/* config_rules: the two list options of the rules that are stored parsed,
 * rules.loyalty.levels ("name:min_points") and rules.care.festivals ("YYYY-MM-DD name"),
 * and the value checks of rules.consent.unstated and rules.exit.kinds.
 *
 * The parsed arrays of tf_config_rules are the only copy of these values: every entry
 * point of config.c parses into them and tf_config_to_json formats from them, so the
 * engine and the dump can never disagree. Festivals are kept sorted by date (then by
 * name); levels must already be in order, since their order is their meaning. */
#include "config/internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS INT64_C(86400000)
#define YEAR_MIN 1970
#define NAME_RULE "1-31 characters of a-z, 0-9 and _"

/* ---- shared ---- */

static int name_ok(const char *s, size_t len)
{
    if (len == 0 || len >= TF_RULES_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

static int name_terminated(const char *name)
{
    return memchr(name, '\0', TF_RULES_NAME_MAX) != NULL;
}

/* Entries are quoted in messages, which must stay one line each. */
static int printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

static void entry_errf(tf_config_errlist *e, const char *label, size_t i, const char *text,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void entry_errf(tf_config_errlist *e, const char *label, size_t i, const char *text,
                       const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    tf_config_errf(e, "%s[%zu]: \"%.64s%s\": %s", label, i, text, strlen(text) > 64 ? "..." : "", why);
}

/* Parses items[0..n) with parse into entries (entry_size bytes each, zero-filled first
 * so that equal configs are equal bytes). Returns 0 when every item parsed. */
typedef int (*parse_fn)(const char *text, void *entry, char *why, size_t whysize);

static int parse_all(tf_config_errlist *e, const char *label, const char *const *items, size_t n,
                     parse_fn parse, void *entries, size_t entry_size)
{
    int bad = 0;
    memset(entries, 0, n * entry_size);
    for (size_t i = 0; i < n; i++) {
        char why[256];
        if (!items[i]) {
            bad = 1;
            continue;
        }
        if (!printable_ascii(items[i])) {
            tf_config_errf(e, "%s[%zu]: contains a byte that is not printable ASCII", label, i);
            bad = 1;
        } else if (strlen(items[i]) >= TF_CONFIG_ENTRY_MAX) {
            entry_errf(e, label, i, items[i], "too long (%zu bytes, at most %d)", strlen(items[i]),
                       TF_CONFIG_ENTRY_MAX - 1);
            bad = 1;
        } else if (parse(items[i], (char *)entries + i * entry_size, why, sizeof why)) {
            entry_errf(e, label, i, items[i], "%s", why);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

/* ---- rules.loyalty.levels ---- */

static int level_parse(const char *text, void *entry, char *why, size_t whysize)
{
    tf_rules_level *out = entry;
    const char *colon = strchr(text, ':');
    if (!colon) {
        snprintf(why, whysize, "expected name:min_points");
        return -1;
    }
    size_t nlen = (size_t)(colon - text);
    if (!name_ok(text, nlen)) {
        snprintf(why, whysize, "the name must be " NAME_RULE " (name:min_points)");
        return -1;
    }
    int64_t v;
    if (tf_parse_i64(colon + 1, strlen(colon + 1), &v) != 0 || v < 0) {
        snprintf(why, whysize, "min_points must be a whole number, 0 or more (name:min_points)");
        return -1;
    }
    memcpy(out->name, text, nlen);
    out->min_points = v;
    return 0;
}

static void level_text(const tf_rules_level *l, char *buf, size_t size)
{
    snprintf(buf, size, "%.*s:%" PRId64, TF_RULES_NAME_MAX - 1, l->name, l->min_points);
}

/* What holds across the levels, in list order. texts[i] is entry i as written. */
static int levels_check_list(tf_config_errlist *e, const char *label, const tf_rules_level *lv,
                             const char (*texts)[TF_CONFIG_ENTRY_MAX], size_t n)
{
    int bad = 0;
    if (lv[0].min_points != 0) {
        entry_errf(e, label, 0, texts[0], "the first level must start at 0 points");
        bad = 1;
    }
    for (size_t i = 1; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(lv[i].name, lv[j].name) == 0) {
                entry_errf(e, label, i, texts[i], "the name \"%s\" is also %s[%zu]", lv[i].name, label, j);
                bad = 1;
                break;
            }
        }
        if (lv[i].min_points <= lv[i - 1].min_points) {
            entry_errf(e, label, i, texts[i],
                       "min_points must be greater than the level before (\"%s\"): levels are "
                       "listed from the lowest up",
                       texts[i - 1]);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

static int levels_count_ok(tf_config_errlist *e, const char *label, size_t n)
{
    if (n >= 1 && n <= TF_RULES_MAX_LEVELS)
        return 1;
    tf_config_errf(e, "%s: %zu levels, expected 1 to %d (the first at 0 points)", label, n,
                   TF_RULES_MAX_LEVELS);
    return 0;
}

static void levels_set(tf_config_t *cfg, tf_config_errlist *e, const char *label,
                       const char *const *items, size_t n)
{
    tf_rules_level lv[TF_RULES_MAX_LEVELS];
    char texts[TF_RULES_MAX_LEVELS][TF_CONFIG_ENTRY_MAX];
    if (!levels_count_ok(e, label, n))
        return;
    if (parse_all(e, label, items, n, level_parse, lv, sizeof lv[0]))
        return;
    for (size_t i = 0; i < n; i++)
        tf_strlcpy(texts[i], items[i], sizeof texts[i]);
    if (levels_check_list(e, label, lv, (const char (*)[TF_CONFIG_ENTRY_MAX])texts, n))
        return;
    memset(cfg->rules.levels, 0, sizeof cfg->rules.levels);
    memcpy(cfg->rules.levels, lv, n * sizeof lv[0]);
    cfg->rules.nlevels = n;
}

static void levels_check(const tf_config_t *cfg, tf_config_errlist *e, const char *label)
{
    const tf_config_rules *r = &cfg->rules;
    char texts[TF_RULES_MAX_LEVELS][TF_CONFIG_ENTRY_MAX];
    int bad = 0;
    if (!levels_count_ok(e, label, r->nlevels))
        return;
    for (size_t i = 0; i < r->nlevels; i++) {
        if (!name_terminated(r->levels[i].name)) {
            tf_config_errf(e, "%s[%zu]: the name is not NUL-terminated", label, i);
            bad = 1;
            continue;
        }
        level_text(&r->levels[i], texts[i], sizeof texts[i]);
        if (!name_ok(r->levels[i].name, strlen(r->levels[i].name))) {
            entry_errf(e, label, i, texts[i], "the name must be " NAME_RULE);
            bad = 1;
        }
        if (r->levels[i].min_points < 0) {
            entry_errf(e, label, i, texts[i], "min_points must be 0 or more");
            bad = 1;
        }
    }
    if (!bad)
        levels_check_list(e, label, r->levels, (const char (*)[TF_CONFIG_ENTRY_MAX])texts, r->nlevels);
}

static size_t levels_count(const tf_config_t *cfg)
{
    return cfg->rules.nlevels;
}

static void levels_format(const tf_config_t *cfg, size_t i, char *buf, size_t size)
{
    level_text(&cfg->rules.levels[i], buf, size);
}

static const char *const default_levels[] = {"member:0", "silver:1000", "gold:5000", "platinum:20000"};

const tf_config_entries tf_config_levels = {
    .max_items = TF_RULES_MAX_LEVELS,
    .defaults = default_levels,
    .ndefaults = sizeof default_levels / sizeof default_levels[0],
    .set = levels_set,
    .check = levels_check,
    .count = levels_count,
    .format = levels_format,
};

/* ---- rules.care.festivals ---- */

/* 9999-12-31, the last date four digits can write. */
static int64_t last_day_ms(void)
{
    return tf_days_from_civil(9999, 12, 31) * DAY_MS;
}

static int festival_parse(const char *text, void *entry, char *why, size_t whysize)
{
    tf_rules_festival *out = entry;
    static const char shape[] = "dddd-dd-dd";
    size_t len = strlen(text);
    int ok = len >= 10;
    for (size_t i = 0; ok && i < 10; i++)
        ok = shape[i] == 'd' ? text[i] >= '0' && text[i] <= '9' : text[i] == '-';
    int y = 0, m = 0, d = 0;
    if (ok) {
        y = (text[0] - '0') * 1000 + (text[1] - '0') * 100 + (text[2] - '0') * 10 + (text[3] - '0');
        m = (text[5] - '0') * 10 + (text[6] - '0');
        d = (text[8] - '0') * 10 + (text[9] - '0');
        ok = m >= 1 && m <= 12 && d >= 1 && d <= tf_month_days(y, m);
    }
    if (!ok) {
        snprintf(why, whysize, "not a valid date (YYYY-MM-DD name)");
        return -1;
    }
    if (y < YEAR_MIN) {
        snprintf(why, whysize, "the date must be %d-01-01 or later", YEAR_MIN);
        return -1;
    }
    if (text[10] != ' ') {
        snprintf(why, whysize, "expected the date, one space and a name (YYYY-MM-DD name)");
        return -1;
    }
    const char *name = text + 11;
    if (!name_ok(name, strlen(name))) {
        snprintf(why, whysize, "the name must be " NAME_RULE " (YYYY-MM-DD name)");
        return -1;
    }
    out->day_ms = tf_days_from_civil(y, m, d) * DAY_MS;
    memcpy(out->name, name, strlen(name));
    return 0;
}

static void festival_text(const tf_rules_festival *f, char *buf, size_t size)
{
    int64_t y;
    int m, d;
    tf_civil_from_days(f->day_ms / DAY_MS, &y, &m, &d);
    snprintf(buf, size, "%04" PRId64 "-%02d-%02d %.*s", y, m, d, TF_RULES_NAME_MAX - 1, f->name);
}

/* Date order, then name order: the order of the parsed array. */
static int festival_cmp(const void *pa, const void *pb)
{
    const tf_rules_festival *a = pa, *b = pb;
    if (a->day_ms != b->day_ms)
        return a->day_ms < b->day_ms ? -1 : 1;
    return strcmp(a->name, b->name);
}

static void festivals_set(tf_config_t *cfg, tf_config_errlist *e, const char *label,
                          const char *const *items, size_t n)
{
    tf_rules_festival fv[TF_RULES_MAX_FESTIVALS];
    if (n > TF_RULES_MAX_FESTIVALS) {
        tf_config_errf(e, "%s: %zu festivals, at most %d", label, n, TF_RULES_MAX_FESTIVALS);
        return;
    }
    if (parse_all(e, label, items, n, festival_parse, fv, sizeof fv[0]))
        return;
    int bad = 0;
    for (size_t i = 1; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (festival_cmp(&fv[i], &fv[j]) == 0) {
                entry_errf(e, label, i, items[i], "listed twice (also %s[%zu])", label, j);
                bad = 1;
                break;
            }
        }
    }
    if (bad)
        return;
    qsort(fv, n, sizeof fv[0], festival_cmp);
    memset(cfg->rules.festivals, 0, sizeof cfg->rules.festivals);
    memcpy(cfg->rules.festivals, fv, n * sizeof fv[0]);
    cfg->rules.nfestivals = n;
}

static void festivals_check(const tf_config_t *cfg, tf_config_errlist *e, const char *label)
{
    const tf_config_rules *r = &cfg->rules;
    if (r->nfestivals > TF_RULES_MAX_FESTIVALS) {
        tf_config_errf(e, "%s: %zu festivals, at most %d", label, r->nfestivals, TF_RULES_MAX_FESTIVALS);
        return;
    }
    int bad = 0;
    for (size_t i = 0; i < r->nfestivals; i++) {
        const tf_rules_festival *f = &r->festivals[i];
        if (!name_terminated(f->name)) {
            tf_config_errf(e, "%s[%zu]: the name is not NUL-terminated", label, i);
            bad = 1;
            continue;
        }
        if (f->day_ms < 0 || f->day_ms > last_day_ms() || f->day_ms % DAY_MS != 0) {
            tf_config_errf(e, "%s[%zu]: day_ms %" PRId64 " is not 00:00 UTC of a date from %d-01-01 "
                              "to 9999-12-31",
                           label, i, f->day_ms, YEAR_MIN);
            bad = 1;
            continue;
        }
        char text[TF_CONFIG_ENTRY_MAX];
        festival_text(f, text, sizeof text);
        if (!name_ok(f->name, strlen(f->name))) {
            entry_errf(e, label, i, text, "the name must be " NAME_RULE);
            bad = 1;
        }
    }
    if (bad)
        return;
    for (size_t i = 1; i < r->nfestivals; i++) {
        int c = festival_cmp(&r->festivals[i - 1], &r->festivals[i]);
        if (c >= 0) {
            char text[TF_CONFIG_ENTRY_MAX];
            festival_text(&r->festivals[i], text, sizeof text);
            entry_errf(e, label, i, text,
                       c == 0 ? "listed twice"
                              : "not in date order (the parsed festivals are sorted by date)");
        }
    }
}

static size_t festivals_count(const tf_config_t *cfg)
{
    return cfg->rules.nfestivals;
}

static void festivals_format(const tf_config_t *cfg, size_t i, char *buf, size_t size)
{
    festival_text(&cfg->rules.festivals[i], buf, size);
}

/* The care calendar of 2025-2028: the fixed-date public holidays and the lunar
 * festivals on their Gregorian dates. */
static const char *const default_festivals[] = {
    "2025-01-01 new_year",    "2025-01-29 spring_festival", "2025-05-31 dragon_boat",
    "2025-10-01 national_day", "2025-10-06 mid_autumn",     "2026-01-01 new_year",
    "2026-02-17 spring_festival", "2026-06-19 dragon_boat", "2026-09-25 mid_autumn",
    "2026-10-01 national_day", "2027-01-01 new_year",       "2027-02-06 spring_festival",
    "2027-06-09 dragon_boat",  "2027-09-15 mid_autumn",     "2027-10-01 national_day",
    "2028-01-01 new_year",     "2028-01-26 spring_festival", "2028-05-28 dragon_boat",
    "2028-10-01 national_day", "2028-10-03 mid_autumn",
};

const tf_config_entries tf_config_festivals = {
    .max_items = TF_RULES_MAX_FESTIVALS,
    .defaults = default_festivals,
    .ndefaults = sizeof default_festivals / sizeof default_festivals[0],
    .set = festivals_set,
    .check = festivals_check,
    .count = festivals_count,
    .format = festivals_format,
};

/* ---- rules.consent, rules.exit ---- */

int tf_config_check_consent_unstated(const char *v, char *why, size_t whysize)
{
    if (strcmp(v, "granted") == 0 || strcmp(v, "withdrawn") == 0)
        return 0;
    snprintf(why, whysize, "expected \"granted\" or \"withdrawn\", got \"%s\"", v);
    return -1;
}

int tf_config_check_exit_kind(const char *v, char *why, size_t whysize)
{
    if (strcmp(v, "contract_end") == 0 || strcmp(v, "unsubscribe") == 0)
        return 0;
    snprintf(why, whysize, "expected \"contract_end\" or \"unsubscribe\" (an exit touchpoint), got \"%s\"", v);
    return -1;
}
