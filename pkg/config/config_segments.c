/* config_segments: rules.segments, named groups of customers defined by predicates
 * over their state, parsed from and written back to JSON:
 *
 *   "segments": [
 *     {"name": "vip", "when": [{"field": "tier", "in": ["key"]},
 *                              {"field": "spend", "min": 500000}]},
 *     {"name": "lapsing", "when": [{"field": "days_since_purchase", "min": 60, "max": 120}]}
 *   ]
 *
 * The order is the bit order of tf_derived_ctx.segments. The parsed array of
 * tf_config_rules is the only copy, as for the other parsed lists (config_rules.c). */
#include "config/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.h"

typedef enum { CMP_IN, CMP_RANGE, CMP_TAG } cmp_kind;

static const struct {
    const char *name;
    cmp_kind cmp;
} fields[TF_SEG__COUNT] = {
    [TF_SEG_STAGE] = {"stage", CMP_IN},
    [TF_SEG_TIER] = {"tier", CMP_IN},
    [TF_SEG_LEVEL] = {"level", CMP_IN},
    [TF_SEG_RFM_R] = {"rfm_r", CMP_RANGE},
    [TF_SEG_RFM_F] = {"rfm_f", CMP_RANGE},
    [TF_SEG_RFM_M] = {"rfm_m", CMP_RANGE},
    [TF_SEG_SPEND] = {"spend", CMP_RANGE},
    [TF_SEG_PURCHASES] = {"purchases", CMP_RANGE},
    [TF_SEG_DAYS_SINCE_PURCHASE] = {"days_since_purchase", CMP_RANGE},
    [TF_SEG_TENURE_DAYS] = {"tenure_days", CMP_RANGE},
    [TF_SEG_SATISFACTION] = {"satisfaction", CMP_RANGE},
    [TF_SEG_NPS] = {"nps", CMP_RANGE},
    [TF_SEG_OPEN_COMPLAINTS] = {"open_complaints", CMP_RANGE},
    [TF_SEG_CHURN_RISK] = {"churn_risk", CMP_RANGE},
    [TF_SEG_TAGS] = {"tags", CMP_TAG},
};

const char *tf_config_segment_field_name(tf_segment_field f)
{
    return (unsigned)f < TF_SEG__COUNT ? fields[f].name : NULL;
}

static const char *const cmp_keys[] = {"in", "min/max", "has/lacks"};

/* [a-z0-9_-]{1,max-1}: segment names go into figures and subscription filters. */
static int name_ok(const char *s, size_t len, size_t max)
{
    if (len == 0 || len >= max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

#define NAME_RULE "1-31 characters of a-z, 0-9, _ and -"

/* A tag as a profile can give it: 1-32 bytes, no control character, no comma. */
static int tag_ok(const char *s, size_t len)
{
    if (len == 0 || len >= TF_RULES_TAG_MAX || memchr(s, '\0', len))
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == ',')
            return 0;
    return 1;
}

static tf_vocab vocab_of(tf_segment_field f)
{
    return f == TF_SEG_STAGE ? TF_VOCAB_STAGE : TF_VOCAB_TIER;
}

/* "prospect, growth, ..." */
static void vocab_list(tf_vocab v, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < tf_vocab_count(v) && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", tf_vocab_name(v, i));
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static void fields_list(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < TF_SEG__COUNT && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", fields[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* ---- what holds across the parsed segments (also for a config built in code) ---- */

/* The names joined with commas must fit one figure: every derived event lists the
 * customer's segments as its "segments" figure. */
static void check_names_fit(tf_config_errlist *e, const char *label, const tf_rules_segment *s, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += strlen(s[i].name) + (i ? 1 : 0);
    if (total >= TF_FIG_STR_MAX)
        tf_config_errf(e, "%s: the names take %zu bytes joined with commas, at most %d: derived events "
                          "list a customer's segments in one figure (\"segments\")",
                       label, total, TF_FIG_STR_MAX - 1);
}

static void check_duplicates(tf_config_errlist *e, const char *label, const tf_rules_segment *s, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s[i].name, s[j].name) == 0) {
                tf_config_errf(e, "%s[%zu].name: \"%s\" is also %s[%zu].name", label, i, s[i].name, label, j);
                break;
            }
        }
    }
}

/* One parsed predicate; the level names against rules.loyalty.levels only when
 * levels is not NULL (a file may give the levels after the segments). */
static void check_predicate(tf_config_errlist *e, const char *at, const tf_rules_predicate *p,
                            const tf_config_rules *levels)
{
    if ((unsigned)p->field >= TF_SEG__COUNT) {
        tf_config_errf(e, "%s.field: unknown field %d", at, (int)p->field);
        return;
    }
    switch (fields[p->field].cmp) {
    case CMP_IN:
        if (p->field == TF_SEG_LEVEL) {
            if (p->nin == 0 || p->nin > TF_RULES_MAX_IN) {
                tf_config_errf(e, "%s.in: %zu names, expected 1 to %d", at, p->nin, TF_RULES_MAX_IN);
                return;
            }
            for (size_t k = 0; k < p->nin; k++) {
                if (!memchr(p->in[k], '\0', TF_RULES_NAME_MAX)) {
                    tf_config_errf(e, "%s.in[%zu]: not NUL-terminated", at, k);
                    continue;
                }
                size_t l = 0;
                while (levels && l < levels->nlevels && strcmp(levels->levels[l].name, p->in[k]) != 0)
                    l++;
                if (levels && l == levels->nlevels)
                    tf_config_errf(e, "%s.in[%zu]: unknown level \"%s\" (not in rules.loyalty.levels)", at, k,
                                   p->in[k]);
            }
        } else {
            uint32_t all = (uint32_t)((UINT64_C(1) << tf_vocab_count(vocab_of(p->field))) - 1);
            if (p->in_mask == 0 || (p->in_mask & ~all))
                tf_config_errf(e, "%s.in: names no known %s", at, fields[p->field].name);
        }
        return;
    case CMP_RANGE:
        if (!p->has_min && !p->has_max)
            tf_config_errf(e, "%s: give min, max or both", at);
        else if (p->has_min && p->has_max && p->min > p->max)
            tf_config_errf(e, "%s: min %" PRId64 " is above max %" PRId64 ": the predicate could never hold", at,
                           p->min, p->max);
        return;
    case CMP_TAG:
        if (!memchr(p->tag, '\0', sizeof p->tag) || !tag_ok(p->tag, strlen(p->tag)))
            tf_config_errf(e, "%s.%s: a tag is 1-%d bytes without control characters or commas", at, p->lacks ? "lacks" : "has",
                           TF_RULES_TAG_MAX - 1);
        return;
    }
}

/* ---- parsing ---- */

static int64_t int_of(json_t *v)
{
    return (int64_t)json_integer_value(v);
}

static void parse_in(tf_config_errlist *e, const char *at, json_t *in, tf_rules_predicate *p)
{
    if (!json_is_array(in) || json_array_size(in) == 0 || json_array_size(in) > TF_RULES_MAX_IN) {
        tf_config_errf(e, "%s.in: expected an array of 1 to %d names", at, TF_RULES_MAX_IN);
        return;
    }
    for (size_t k = 0; k < json_array_size(in); k++) {
        json_t *it = json_array_get(in, k);
        const char *name = json_string_value(it);
        size_t len = name ? json_string_length(it) : 0;
        if (!name) {
            tf_config_errf(e, "%s.in[%zu]: expected a string", at, k);
        } else if (p->field == TF_SEG_LEVEL) {
            if (!name_ok(name, len, TF_RULES_NAME_MAX))
                tf_config_errf(e, "%s.in[%zu]: unknown level \"%.40s\"", at, k, name);
            else
                memcpy(p->in[p->nin++], name, len);
        } else {
            tf_vocab v = vocab_of(p->field);
            int i = tf_vocab_index(v, name, len);
            if (i < 0) {
                char list[256];
                vocab_list(v, list, sizeof list);
                tf_config_errf(e, "%s.in[%zu]: unknown %s \"%.40s\" (one of %s)", at, k, fields[p->field].name, name,
                               list);
            } else {
                p->in_mask |= 1u << i;
            }
        }
    }
}

static void parse_predicate(tf_config_errlist *e, const char *at, json_t *o, tf_rules_predicate *p)
{
    if (!json_is_object(o)) {
        tf_config_errf(e, "%s: expected an object {\"field\": ..., <comparison>}", at);
        return;
    }
    json_t *f = json_object_get(o, "field");
    const char *fname = json_string_value(f);
    int field = -1;
    for (int i = 0; fname && i < TF_SEG__COUNT; i++)
        if (strcmp(fname, fields[i].name) == 0)
            field = i;
    if (field < 0) {
        char list[512];
        fields_list(list, sizeof list);
        if (fname)
            tf_config_errf(e, "%s.field: unknown field \"%.40s\" (one of %s)", at, fname, list);
        else
            tf_config_errf(e, "%s.field: expected a field name (one of %s)", at, list);
        return;
    }
    p->field = (tf_segment_field)field;
    cmp_kind cmp = fields[field].cmp;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        int ok = strcmp(k, "field") == 0 || (cmp == CMP_IN && strcmp(k, "in") == 0) ||
                 (cmp == CMP_RANGE && (strcmp(k, "min") == 0 || strcmp(k, "max") == 0)) ||
                 (cmp == CMP_TAG && (strcmp(k, "has") == 0 || strcmp(k, "lacks") == 0));
        if (!ok)
            tf_config_errf(e, "%s.%.40s: unknown key (field %s takes %s)", at, k, fname, cmp_keys[cmp]);
    }
    if (cmp == CMP_IN) {
        parse_in(e, at, json_object_get(o, "in"), p);
        return;
    }
    if (cmp == CMP_RANGE) {
        json_t *mn = json_object_get(o, "min"), *mx = json_object_get(o, "max");
        if (mn && !json_is_integer(mn))
            tf_config_errf(e, "%s.min: expected an integer", at);
        if (mx && !json_is_integer(mx))
            tf_config_errf(e, "%s.max: expected an integer", at);
        p->has_min = json_is_integer(mn);
        p->has_max = json_is_integer(mx);
        p->min = p->has_min ? int_of(mn) : 0;
        p->max = p->has_max ? int_of(mx) : 0;
        if (!mn && !mx)
            tf_config_errf(e, "%s: give min, max or both", at);
        else if (p->has_min && p->has_max && p->min > p->max)
            tf_config_errf(e, "%s: min %" PRId64 " is above max %" PRId64 ": the predicate could never hold", at,
                           p->min, p->max);
        return;
    }
    json_t *has = json_object_get(o, "has"), *lacks = json_object_get(o, "lacks");
    if (!has == !lacks) {
        tf_config_errf(e, "%s: give exactly one of has and lacks", at);
        return;
    }
    json_t *t = has ? has : lacks;
    p->lacks = lacks != NULL;
    if (!json_is_string(t) || !tag_ok(json_string_value(t), json_string_length(t)))
        tf_config_errf(e, "%s.%s: expected a tag, 1-%d bytes without control characters or commas", at, has ? "has" : "lacks",
                       TF_RULES_TAG_MAX - 1);
    else
        memcpy(p->tag, json_string_value(t), json_string_length(t));
}

static void parse_segment(tf_config_errlist *e, const char *label, size_t i, json_t *o, tf_rules_segment *s)
{
    char at[96];
    if (!json_is_object(o)) {
        tf_config_errf(e, "%s[%zu]: expected an object {\"name\": ..., \"when\": [...]}", label, i);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (strcmp(k, "name") != 0 && strcmp(k, "when") != 0)
            tf_config_errf(e, "%s[%zu].%.40s: unknown key (a segment takes name and when)", label, i, k);
    }
    json_t *name = json_object_get(o, "name");
    if (!json_is_string(name) || !name_ok(json_string_value(name), json_string_length(name), TF_RULES_NAME_MAX))
        tf_config_errf(e, "%s[%zu].name: expected a name of " NAME_RULE, label, i);
    else
        memcpy(s->name, json_string_value(name), json_string_length(name));
    json_t *when = json_object_get(o, "when");
    if (!json_is_array(when) || json_array_size(when) == 0 || json_array_size(when) > TF_RULES_MAX_PREDICATES) {
        tf_config_errf(e, "%s[%zu].when: expected an array of 1 to %d predicates", label, i,
                       TF_RULES_MAX_PREDICATES);
        return;
    }
    s->nwhen = json_array_size(when);
    for (size_t j = 0; j < s->nwhen; j++) {
        snprintf(at, sizeof at, "%s[%zu].when[%zu]", label, i, j);
        parse_predicate(e, at, json_array_get(when, j), &s->when[j]);
    }
}

static void segments_set(tf_config_t *cfg, tf_config_errlist *e, const char *label, json_t *v)
{
    if (!json_is_array(v)) {
        tf_config_errf(e, "%s: expected an array of segments, got %s", label, v ? "another JSON value" : "nothing");
        return;
    }
    size_t n = json_array_size(v);
    if (n > TF_RULES_MAX_SEGMENTS) {
        tf_config_errf(e, "%s: %zu segments, at most %d", label, n, TF_RULES_MAX_SEGMENTS);
        return;
    }
    /* Zero-filled, so that equal configs are equal bytes. */
    tf_rules_segment *segs = calloc(TF_RULES_MAX_SEGMENTS, sizeof *segs);
    if (!segs) {
        tf_config_errf(e, "%s: out of memory", label);
        return;
    }
    int before = e->count;
    for (size_t i = 0; i < n; i++)
        parse_segment(e, label, i, json_array_get(v, i), &segs[i]);
    if (e->count == before) {
        check_duplicates(e, label, segs, n);
        check_names_fit(e, label, segs, n);
    }
    if (e->count == before) {
        memcpy(cfg->rules.segments, segs, sizeof cfg->rules.segments);
        cfg->rules.nsegments = n;
    }
    free(segs);
}

static void segments_check(const tf_config_t *cfg, tf_config_errlist *e, const char *label)
{
    const tf_config_rules *r = &cfg->rules;
    if (r->nsegments > TF_RULES_MAX_SEGMENTS) {
        tf_config_errf(e, "%s: %zu segments, at most %d", label, r->nsegments, TF_RULES_MAX_SEGMENTS);
        return;
    }
    int before = e->count;
    for (size_t i = 0; i < r->nsegments; i++) {
        const tf_rules_segment *s = &r->segments[i];
        if (!memchr(s->name, '\0', sizeof s->name) || !name_ok(s->name, strlen(s->name), TF_RULES_NAME_MAX)) {
            tf_config_errf(e, "%s[%zu].name: expected a name of " NAME_RULE, label, i);
            continue;
        }
        if (s->nwhen == 0 || s->nwhen > TF_RULES_MAX_PREDICATES) {
            tf_config_errf(e, "%s[%zu].when: %zu predicates, expected 1 to %d", label, i, s->nwhen,
                           TF_RULES_MAX_PREDICATES);
            continue;
        }
        for (size_t j = 0; j < s->nwhen; j++) {
            char at[96];
            snprintf(at, sizeof at, "%s[%zu].when[%zu]", label, i, j);
            check_predicate(e, at, &s->when[j], r);
        }
    }
    if (e->count == before) {
        check_duplicates(e, label, r->segments, r->nsegments);
        check_names_fit(e, label, r->segments, r->nsegments);
    }
}

/* ---- writing back ---- */

static json_t *predicate_json(const tf_rules_predicate *p)
{
    json_t *o = json_object(), *in = NULL;
    if (!o || json_object_set_new(o, "field", json_string(fields[p->field].name)))
        goto fail;
    switch (fields[p->field].cmp) {
    case CMP_IN:
        if (!(in = json_array()))
            goto fail;
        for (size_t k = 0; p->field == TF_SEG_LEVEL && k < p->nin; k++)
            if (json_array_append_new(in, json_string(p->in[k])))
                goto fail;
        for (int i = 0; p->field != TF_SEG_LEVEL && i < tf_vocab_count(vocab_of(p->field)); i++)
            if ((p->in_mask & (1u << i)) &&
                json_array_append_new(in, json_string(tf_vocab_name(vocab_of(p->field), i))))
                goto fail;
        if (json_object_set_new(o, "in", in)) {
            in = NULL;
            goto fail;
        }
        return o;
    case CMP_RANGE:
        if ((p->has_min && json_object_set_new(o, "min", json_integer((json_int_t)p->min))) ||
            (p->has_max && json_object_set_new(o, "max", json_integer((json_int_t)p->max))))
            goto fail;
        return o;
    case CMP_TAG:
        if (json_object_set_new(o, p->lacks ? "lacks" : "has", json_string(p->tag)))
            goto fail;
        return o;
    }
fail:
    json_decref(in);
    json_decref(o);
    return NULL;
}

static json_t *segments_dump(const tf_config_t *cfg)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < cfg->rules.nsegments && i < TF_RULES_MAX_SEGMENTS; i++) {
        const tf_rules_segment *s = &cfg->rules.segments[i];
        json_t *o = json_object(), *when = json_array();
        int bad = !o || !when || json_object_set_new(o, "name", json_string(s->name));
        for (size_t j = 0; !bad && j < s->nwhen && j < TF_RULES_MAX_PREDICATES; j++) {
            json_t *p = predicate_json(&s->when[j]);
            bad = !p || json_array_append_new(when, p);
        }
        if (!bad) {
            bad = json_object_set_new(o, "when", when);
            when = NULL;
        }
        if (bad) {
            json_decref(when);
            json_decref(o);
            json_decref(a);
            return NULL;
        }
        if (json_array_append_new(a, o)) { /* takes o, even when it fails */
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

const tf_config_json_option tf_config_segments = {
    .set = segments_set,
    .check = segments_check,
    .dump = segments_dump,
};
