/* config_subs: the subscriptions section, named subscribers of derived events.
 *
 *   "subscriptions": {
 *     "<name>": {"topic": "...", "mode": "structured"|"binary", "enabled": true,
 *                "filter": {"types": [...], "care_kinds": [...], "stages": [...],
 *                           "tiers": [...], "levels": [...], "segments": [...],
 *                           "consent": "sms"}}
 *   }
 *
 * Types, care kinds, stages, tiers and the consent channel are fixed vocabularies,
 * checked and kept as bits while loading. Levels and segments name entries of
 * rules.*, which may be loaded after this section: they are kept as names and
 * checked by tf_config_validate. Each family keeps its implicit subscription unless
 * a subscription takes the family's name (tf_config_subscriptions). */
#include "config/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.h"

#define SUB_NAME_RULE "1-63 characters of A-Z, a-z, 0-9, '.', '_' and '-'"

static int sub_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= TF_CONFIG_SUB_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* The names of vocabulary v, for messages: "welcome, post_purchase, ...". */
static void vocab_list(tf_vocab v, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < tf_vocab_count(v); i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", tf_vocab_name(v, i));
        if (n < 0 || (size_t)n >= size - used)
            return;
        used += (size_t)n;
    }
}

/* "touchflow.<family>.<name>" or "touchflow.<family>.*" into the masks; 0 or -1. */
static int parse_type(const char *s, uint32_t *types, uint32_t *families)
{
    for (int t = 0; t < TF_DERIVED__COUNT; t++)
        if (strcmp(s, tf_derived_type_name((tf_derived_type)t)) == 0) {
            *types |= 1u << t;
            return 0;
        }
    static const char pre[] = "touchflow.";
    size_t n = strlen(s);
    if (strncmp(s, pre, sizeof pre - 1) != 0 || n < sizeof pre + 2 || strcmp(s + n - 2, ".*") != 0)
        return -1;
    char fam[32];
    size_t flen = n - (sizeof pre - 1) - 2;
    if (flen >= sizeof fam)
        return -1;
    memcpy(fam, s + sizeof pre - 1, flen);
    fam[flen] = '\0';
    int f = tf_config_family_index(fam);
    if (f < 0)
        return -1;
    *families |= 1u << f;
    return 0;
}

/* An array of strings at label, each handed to take(); reports non-strings. */
static int each_string(tf_config_errlist *e, const char *label, json_t *v, size_t max,
                       void (*take)(tf_config_errlist *, const char *, size_t, const char *, void *), void *arg)
{
    if (!json_is_array(v)) {
        tf_config_errf(e, "%s: expected an array of strings", label);
        return -1;
    }
    if (json_array_size(v) > max) {
        tf_config_errf(e, "%s: more than %zu items", label, max);
        return -1;
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        if (!json_is_string(item))
            tf_config_errf(e, "%s[%zu]: expected a string", label, i);
        else
            take(e, label, i, json_string_value(item), arg);
    }
    return 0;
}

static void take_type(tf_config_errlist *e, const char *label, size_t i, const char *s, void *arg)
{
    tf_config_sub *sub = arg;
    if (parse_type(s, &sub->types, &sub->families))
        tf_config_errf(e, "%s[%zu]: unknown type \"%.64s\" (a derived type such as touchflow.care.reminder, "
                          "or a family as touchflow.care.*)",
                       label, i, s);
}

typedef struct {
    tf_vocab vocab;
    uint32_t *mask;
} vocab_arg;

static void take_vocab(tf_config_errlist *e, const char *label, size_t i, const char *s, void *arg)
{
    vocab_arg *a = arg;
    int k = tf_vocab_index(a->vocab, s, strlen(s));
    if (k >= 0) {
        *a->mask |= 1u << k;
        return;
    }
    char list[256];
    vocab_list(a->vocab, list, sizeof list);
    tf_config_errf(e, "%s[%zu]: unknown name \"%.64s\" (one of %s)", label, i, s, list);
}

typedef struct {
    char (*names)[TF_RULES_NAME_MAX];
    size_t *n;
} names_arg;

static void take_name(tf_config_errlist *e, const char *label, size_t i, const char *s, void *arg)
{
    names_arg *a = arg;
    if (strlen(s) >= TF_RULES_NAME_MAX) {
        tf_config_errf(e, "%s[%zu]: \"%.64s\" is longer than %d bytes", label, i, s, TF_RULES_NAME_MAX - 1);
        return;
    }
    for (size_t j = 0; j < *a->n; j++)
        if (strcmp(a->names[j], s) == 0)
            return; /* listed twice: the same filter */
    tf_strlcpy(a->names[(*a->n)++], s, TF_RULES_NAME_MAX);
}

static void parse_filter(tf_config_errlist *e, const char *label, json_t *obj, tf_config_sub *sub)
{
    char key[240];
    const char *k;
    json_t *v;
    if (!json_is_object(obj)) {
        tf_config_errf(e, "%s: expected an object", label);
        return;
    }
    json_object_foreach(obj, k, v) {
        snprintf(key, sizeof key, "%.160s.%.64s", label, k);
        if (strcmp(k, "types") == 0) {
            sub->has_types = 1;
            each_string(e, key, v, 64, take_type, sub);
        } else if (strcmp(k, "care_kinds") == 0) {
            vocab_arg a = {TF_VOCAB_CARE_KIND, &sub->care_kinds};
            each_string(e, key, v, 32, take_vocab, &a);
        } else if (strcmp(k, "stages") == 0) {
            vocab_arg a = {TF_VOCAB_STAGE, &sub->stages};
            each_string(e, key, v, 32, take_vocab, &a);
        } else if (strcmp(k, "tiers") == 0) {
            vocab_arg a = {TF_VOCAB_TIER, &sub->tiers};
            each_string(e, key, v, 32, take_vocab, &a);
        } else if (strcmp(k, "levels") == 0) {
            names_arg a = {sub->levels, &sub->nlevels};
            each_string(e, key, v, TF_RULES_MAX_LEVELS, take_name, &a);
        } else if (strcmp(k, "segments") == 0) {
            names_arg a = {sub->segments, &sub->nsegments};
            each_string(e, key, v, TF_RULES_MAX_SEGMENTS, take_name, &a);
        } else if (strcmp(k, "consent") == 0) {
            tf_channel ch;
            const char *s = json_string_value(v);
            if (!json_is_string(v))
                tf_config_errf(e, "%s: expected a string (email, sms or phone; \"\" for none)", key);
            else if (!*s)
                sub->consent = -1;
            else if (tf_channel_parse(s, strlen(s), &ch) != TF_OK)
                tf_config_errf(e, "%s: unknown channel \"%.64s\" (email, sms or phone; \"\" for none)", key, s);
            else
                sub->consent = (int)ch;
        } else {
            tf_config_errf(e, "%s: unknown key (filter accepts: types, care_kinds, stages, tiers, levels, "
                              "segments, consent)",
                           key);
        }
    }
}

/* One subscription object under label ("subscriptions.<name>") into sub. */
static void parse_sub(tf_config_errlist *e, const char *label, const char *name, json_t *obj, tf_config_sub *sub)
{
    char key[240];
    const char *k;
    json_t *v;
    memset(sub, 0, sizeof *sub);
    sub->enabled = 1;
    sub->consent = -1;
    if (!sub_name_ok(name)) {
        tf_config_errf(e, "%s: a subscription name is " SUB_NAME_RULE, label);
        return;
    }
    tf_strlcpy(sub->name, name, sizeof sub->name);
    if (!json_is_object(obj)) {
        tf_config_errf(e, "%s: expected an object (topic, mode, enabled, filter)", label);
        return;
    }
    json_object_foreach(obj, k, v) {
        snprintf(key, sizeof key, "%.160s.%.64s", label, k);
        if (strcmp(k, "topic") == 0) {
            char why[256];
            if (!json_is_string(v))
                tf_config_errf(e, "%s: expected a string", key);
            else if (tf_config_topic_check(json_string_value(v), why, sizeof why) != TF_OK)
                tf_config_errf(e, "%s: %s", key, why);
            else
                tf_strlcpy(sub->topic, json_string_value(v), sizeof sub->topic);
        } else if (strcmp(k, "mode") == 0) {
            const char *s = json_string_value(v);
            if (!s || (strcmp(s, "structured") != 0 && strcmp(s, "binary") != 0))
                tf_config_errf(e, "%s: must be \"structured\" or \"binary\"", key);
            else
                tf_strlcpy(sub->mode, s, sizeof sub->mode);
        } else if (strcmp(k, "enabled") == 0) {
            if (!json_is_boolean(v))
                tf_config_errf(e, "%s: expected true or false", key);
            else
                sub->enabled = json_is_true(v);
        } else if (strcmp(k, "filter") == 0) {
            parse_filter(e, key, v, sub);
        } else {
            tf_config_errf(e, "%s: unknown key (a subscription accepts: topic, mode, enabled, filter)", key);
        }
    }
}

/* The section replaces the set, like a list. Parsed into a copy first: cfg changes
 * only when every subscription is valid. */
static void subs_set(tf_config_t *cfg, tf_config_errlist *e, const char *label, json_t *v)
{
    if (!json_is_object(v)) {
        tf_config_errf(e, "%s: expected an object of named subscriptions", label);
        return;
    }
    if (json_object_size(v) > TF_CONFIG_MAX_SUBS) {
        tf_config_errf(e, "%s: %zu subscriptions, at most %d", label, json_object_size(v), TF_CONFIG_MAX_SUBS);
        return;
    }
    /* Unused entries stay zero, so that equal configs are equal bytes. */
    tf_config_sub *subs = calloc(TF_CONFIG_MAX_SUBS, sizeof *subs);
    if (!subs) {
        tf_config_errf(e, "%s: out of memory", label);
        return;
    }
    int before = e->count;
    size_t n = 0;
    const char *name;
    json_t *obj;
    json_object_foreach(v, name, obj) {
        char sublabel[256];
        snprintf(sublabel, sizeof sublabel, "%s.%.64s", label, name);
        parse_sub(e, sublabel, name, obj, &subs[n++]);
    }
    if (e->count == before) {
        memcpy(cfg->subs, subs, sizeof cfg->subs);
        cfg->nsubs = n;
    }
    free(subs);
}

/* ---- validation ---- */

static int in_rules_levels(const tf_config_rules *r, const char *name)
{
    for (size_t i = 0; i < r->nlevels; i++)
        if (strcmp(r->levels[i].name, name) == 0)
            return 1;
    return 0;
}

static int in_rules_segments(const tf_config_rules *r, const char *name)
{
    for (size_t i = 0; i < r->nsegments && i < TF_RULES_MAX_SEGMENTS; i++)
        if (strcmp(r->segments[i].name, name) == 0)
            return 1;
    return 0;
}

static void check_topic_use(const tf_config_t *cfg, tf_config_errlist *e, const char *name, const char *topic)
{
    for (size_t i = 0; i < cfg->ninput_topics; i++)
        if (strcmp(topic, cfg->input_topics[i]) == 0)
            tf_config_errf(e, "subscriptions.%s.topic: \"%s\" is also an input topic (kafka.input_topics); "
                              "derived events would be consumed again",
                           name, topic);
    if (strcmp(topic, cfg->dlq_topic) == 0)
        tf_config_errf(e, "subscriptions.%s.topic: \"%s\" is also kafka.dlq_topic; dead letters and derived "
                          "events need separate topics",
                       name, topic);
}

static void subs_check(const tf_config_t *cfg, tf_config_errlist *e, const char *label)
{
    (void)label; /* messages name each subscription's own keys */
    if (cfg->nsubs > TF_CONFIG_MAX_SUBS) {
        tf_config_errf(e, "subscriptions: %zu subscriptions, at most %d", cfg->nsubs, TF_CONFIG_MAX_SUBS);
        return;
    }
    for (size_t i = 0; i < cfg->nsubs; i++) {
        const tf_config_sub *s = &cfg->subs[i];
        if (!memchr(s->name, '\0', sizeof s->name) || !memchr(s->topic, '\0', sizeof s->topic) ||
            !memchr(s->mode, '\0', sizeof s->mode)) {
            tf_config_errf(e, "subscriptions[%zu]: not NUL-terminated", i);
            continue;
        }
        if (!sub_name_ok(s->name)) {
            tf_config_errf(e, "subscriptions.%.64s: a subscription name is " SUB_NAME_RULE, s->name);
            continue;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->subs[j].name, s->name) == 0)
                tf_config_errf(e, "subscriptions.%s: defined twice", s->name);
        int fam = tf_config_family_index(s->name);
        char why[256];
        if (s->topic[0] && tf_config_topic_check(s->topic, why, sizeof why) != TF_OK)
            tf_config_errf(e, "subscriptions.%s.topic: %s", s->name, why);
        else if (s->topic[0])
            check_topic_use(cfg, e, s->name, s->topic);
        else if (s->enabled && fam < 0)
            tf_config_errf(e, "subscriptions.%s.topic: missing: the topic this subscriber reads "
                              "(only a family's subscription may leave it out)",
                           s->name);
        else if (s->enabled && !cfg->output_topics[fam][0])
            tf_config_errf(e, "subscriptions.%s.topic: missing, and kafka.output_topics.%s is \"\" (off)",
                           s->name, s->name);
        if (s->mode[0] && strcmp(s->mode, "structured") != 0 && strcmp(s->mode, "binary") != 0)
            tf_config_errf(e, "subscriptions.%s.mode: must be \"structured\" or \"binary\"", s->name);
        if (s->types >> TF_DERIVED__COUNT || s->families >> TF_CONFIG_FAMILIES)
            tf_config_errf(e, "subscriptions.%s.filter.types: unknown type", s->name);
        if (s->care_kinds >> tf_vocab_count(TF_VOCAB_CARE_KIND) || s->stages >> tf_vocab_count(TF_VOCAB_STAGE) ||
            s->tiers >> tf_vocab_count(TF_VOCAB_TIER))
            tf_config_errf(e, "subscriptions.%s.filter: unknown care kind, stage or tier", s->name);
        if (s->consent < -1 || s->consent >= TF_CHANNEL__COUNT)
            tf_config_errf(e, "subscriptions.%s.filter.consent: unknown channel", s->name);
        if (s->nlevels > TF_RULES_MAX_LEVELS || s->nsegments > TF_RULES_MAX_SEGMENTS) {
            tf_config_errf(e, "subscriptions.%s.filter: too many levels or segments", s->name);
            continue;
        }
        for (size_t j = 0; j < s->nlevels; j++)
            if (!memchr(s->levels[j], '\0', TF_RULES_NAME_MAX) || !in_rules_levels(&cfg->rules, s->levels[j]))
                tf_config_errf(e, "subscriptions.%s.filter.levels[%zu]: \"%.31s\" is not a level of "
                                  "rules.loyalty.levels",
                               s->name, j, s->levels[j]);
        for (size_t j = 0; j < s->nsegments; j++)
            if (!memchr(s->segments[j], '\0', TF_RULES_NAME_MAX) || !in_rules_segments(&cfg->rules, s->segments[j]))
                tf_config_errf(e, "subscriptions.%s.filter.segments[%zu]: \"%.31s\" is not a segment of "
                                  "rules.segments",
                               s->name, j, s->segments[j]);
    }
}

/* ---- the subscriptions in force ---- */

static const tf_config_sub *find_csub(const tf_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nsubs && i < TF_CONFIG_MAX_SUBS; i++)
        if (strcmp(cfg->subs[i].name, name) == 0)
            return &cfg->subs[i];
    return NULL;
}

size_t tf_config_subscriptions(const tf_config_t *cfg, tf_config_sub *out)
{
    size_t n = 0;
    for (int f = 0; f < TF_CONFIG_FAMILIES; f++) {
        tf_config_sub *s = &out[n++];
        const tf_config_sub *given = find_csub(cfg, tf_config_families[f]);
        if (given) {
            *s = *given;
        } else {
            memset(s, 0, sizeof *s);
            tf_strlcpy(s->name, tf_config_families[f], sizeof s->name);
            s->enabled = cfg->output_topics[f][0] != '\0';
            s->consent = -1;
        }
        if (!s->topic[0])
            tf_strlcpy(s->topic, cfg->output_topics[f], sizeof s->topic);
        if (!s->has_types) {
            s->has_types = 1;
            s->families = 1u << f;
        }
        if (!s->topic[0])
            s->enabled = 0; /* the family is off */
    }
    for (size_t i = 0; i < cfg->nsubs && n < TF_CONFIG_ROUTES_MAX; i++)
        if (tf_config_family_index(cfg->subs[i].name) < 0)
            out[n++] = cfg->subs[i];
    for (size_t i = 0; i < n; i++)
        if (!out[i].mode[0])
            tf_strlcpy(out[i].mode, cfg->output_mode, sizeof out[i].mode);
    return n;
}

static void add_topic(const char **out, size_t *n, const char *topic)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(out[i], topic) == 0)
            return;
    out[(*n)++] = topic;
}

size_t tf_config_output_topic_list(const tf_config_t *cfg, const char **out)
{
    size_t n = 0;
    for (int f = 0; f < TF_CONFIG_FAMILIES; f++) {
        const tf_config_sub *given = find_csub(cfg, tf_config_families[f]);
        const char *topic = given && given->topic[0] ? given->topic : cfg->output_topics[f];
        if ((!given || given->enabled) && topic[0])
            add_topic(out, &n, topic);
    }
    for (size_t i = 0; i < cfg->nsubs; i++) {
        const tf_config_sub *s = &cfg->subs[i];
        if (tf_config_family_index(s->name) < 0 && s->enabled && s->topic[0])
            add_topic(out, &n, s->topic);
    }
    add_topic(out, &n, cfg->dlq_topic);
    return n;
}

/* ---- dump ---- */

static int append_names(json_t *filter, const char *key, tf_vocab v, uint32_t mask)
{
    if (!mask)
        return 0;
    json_t *a = json_array();
    if (!a || json_object_set_new(filter, key, a))
        return -1;
    for (int i = 0; i < tf_vocab_count(v); i++)
        if (mask & (1u << i) && json_array_append_new(a, json_string(tf_vocab_name(v, i))))
            return -1;
    return 0;
}

static int append_list(json_t *filter, const char *key, const char (*names)[TF_RULES_NAME_MAX], size_t n)
{
    if (!n)
        return 0;
    json_t *a = json_array();
    if (!a || json_object_set_new(filter, key, a))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(a, json_string(names[i])))
            return -1;
    return 0;
}

static json_t *sub_json(const tf_config_sub *s)
{
    json_t *o = json_object(), *f = json_object();
    if (!o || !f)
        goto fail;
    if ((s->topic[0] && json_object_set_new(o, "topic", json_string(s->topic))) ||
        (s->mode[0] && json_object_set_new(o, "mode", json_string(s->mode))) ||
        json_object_set_new(o, "enabled", json_boolean(s->enabled)))
        goto fail;
    if (s->has_types) {
        json_t *a = json_array();
        if (!a || json_object_set_new(f, "types", a))
            goto fail;
        for (int i = 0; i < TF_CONFIG_FAMILIES; i++) {
            char w[64];
            snprintf(w, sizeof w, "touchflow.%s.*", tf_config_families[i]);
            if (s->families & (1u << i) && json_array_append_new(a, json_string(w)))
                goto fail;
        }
        for (int t = 0; t < TF_DERIVED__COUNT; t++)
            if (s->types & (1u << t) && json_array_append_new(a, json_string(tf_derived_type_name((tf_derived_type)t))))
                goto fail;
    }
    if (append_names(f, "care_kinds", TF_VOCAB_CARE_KIND, s->care_kinds) ||
        append_names(f, "stages", TF_VOCAB_STAGE, s->stages) || append_names(f, "tiers", TF_VOCAB_TIER, s->tiers) ||
        append_list(f, "levels", s->levels, s->nlevels) || append_list(f, "segments", s->segments, s->nsegments) ||
        (s->consent >= 0 && json_object_set_new(f, "consent", json_string(tf_channel_name((tf_channel)s->consent)))))
        goto fail;
    if (json_object_size(f) == 0) {
        json_decref(f);
        return o;
    }
    if (json_object_set_new(o, "filter", f)) {
        f = NULL;
        goto fail;
    }
    return o;
fail:
    json_decref(f);
    json_decref(o);
    return NULL;
}

static json_t *subs_dump(const tf_config_t *cfg)
{
    json_t *all = json_object();
    for (size_t i = 0; all && i < cfg->nsubs && i < TF_CONFIG_MAX_SUBS; i++) {
        json_t *s = sub_json(&cfg->subs[i]);
        if (!s || json_object_set_new(all, cfg->subs[i].name, s)) {
            json_decref(all);
            return NULL;
        }
    }
    return all;
}

const tf_config_json_option tf_config_subscriptions_option = {subs_set, subs_check, subs_dump};
