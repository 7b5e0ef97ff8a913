/* Routing of derived events to subscriptions (route.h). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "pipeline/route.h"

static const char *const why_names[] = {
    "match", "disabled", "types", "care_kinds", "stages", "tiers", "levels", "segments", "consent",
};
_Static_assert(sizeof why_names / sizeof why_names[0] == TF_ROUTE_CONSENT + 1, "a name per tf_route_why");

const char *tf_route_why_name(tf_route_why w)
{
    return (unsigned)w <= TF_ROUTE_CONSENT ? why_names[w] : "unknown";
}

static int level_index(const tf_route_table *t, const char *name)
{
    for (size_t i = 0; i < t->nlevels; i++)
        if (strcmp(t->levels[i], name) == 0)
            return (int)i;
    return -1;
}

static int segment_index(const tf_route_table *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->nsegments; i++)
        if (strlen(t->segments[i]) == len && memcmp(t->segments[i], name, len) == 0)
            return (int)i;
    return -1;
}

void tf_route_table_build(const tf_config_t *cfg, tf_route_table *t)
{
    tf_config_sub subs[TF_CONFIG_ROUTES_MAX]; /* ~60 KB, once per start */
    memset(t, 0, sizeof *t);
    t->nlevels = cfg->rules.nlevels;
    for (size_t i = 0; i < t->nlevels; i++)
        tf_strlcpy(t->levels[i], cfg->rules.levels[i].name, sizeof t->levels[i]);
    t->nsegments = cfg->rules.nsegments < TF_RULES_MAX_SEGMENTS ? cfg->rules.nsegments : TF_RULES_MAX_SEGMENTS;
    for (size_t i = 0; i < t->nsegments; i++)
        tf_strlcpy(t->segments[i], cfg->rules.segments[i].name, sizeof t->segments[i]);

    t->n = tf_config_subscriptions(cfg, subs);
    for (size_t i = 0; i < t->n; i++) {
        const tf_config_sub *s = &subs[i];
        tf_route_sub *r = &t->subs[i];
        tf_strlcpy(r->name, s->name, sizeof r->name);
        tf_strlcpy(r->topic, s->topic, sizeof r->topic);
        r->binary = strcmp(s->mode, "binary") == 0;
        r->enabled = s->enabled;
        r->types = s->types;
        for (int d = 0; d < TF_DERIVED__COUNT; d++) {
            int f = tf_config_family_index(tf_derived_family((tf_derived_type)d));
            if (f >= 0 && (s->families >> f) & 1)
                r->types |= 1u << d;
        }
        r->care_kinds = s->care_kinds;
        r->stages = s->stages;
        r->tiers = s->tiers;
        for (size_t j = 0; j < s->nlevels; j++) {
            int k = level_index(t, s->levels[j]);
            if (k >= 0)
                r->levels |= 1u << k;
        }
        for (size_t j = 0; j < s->nsegments; j++) {
            int k = segment_index(t, s->segments[j], strlen(s->segments[j]));
            if (k >= 0)
                r->segments |= UINT64_C(1) << k;
        }
        r->consent = s->consent;
    }
}

/* A name restriction: the fact must be present and one of the listed. */
static int vocab_ok(uint32_t mask, tf_vocab v, const char *name)
{
    if (!mask)
        return 1;
    int k = tf_vocab_index(v, name, strlen(name));
    return k >= 0 && (mask >> k) & 1;
}

tf_route_why tf_route_check(const tf_route_table *t, size_t i, tf_derived_type type, const tf_derived_ctx *ctx)
{
    const tf_route_sub *r = &t->subs[i];
    if (!r->enabled)
        return TF_ROUTE_DISABLED;
    if (r->types && ((unsigned)type >= 32 || !((r->types >> type) & 1)))
        return TF_ROUTE_TYPES;
    if (!vocab_ok(r->care_kinds, TF_VOCAB_CARE_KIND, ctx->care_kind))
        return TF_ROUTE_CARE_KINDS;
    if (!vocab_ok(r->stages, TF_VOCAB_STAGE, ctx->stage))
        return TF_ROUTE_STAGES;
    if (!vocab_ok(r->tiers, TF_VOCAB_TIER, ctx->tier))
        return TF_ROUTE_TIERS;
    if (r->levels) {
        int k = level_index(t, ctx->level);
        if (k < 0 || !((r->levels >> k) & 1))
            return TF_ROUTE_LEVELS;
    }
    if (r->segments) {
        /* A member, or the event is that segment's entry or exit. */
        int concerned = ctx->segment >= 0 && ctx->segment < 64 && ((r->segments >> ctx->segment) & 1);
        if (!(r->segments & ctx->segments) && !concerned)
            return TF_ROUTE_SEGMENTS;
    }
    if (r->consent >= 0 && !((ctx->channels >> r->consent) & 1))
        return TF_ROUTE_CONSENT;
    return TF_ROUTE_MATCH;
}

uint64_t tf_route(const tf_route_table *t, tf_derived_type type, const tf_derived_ctx *ctx)
{
    uint64_t mask = 0;
    for (size_t i = 0; i < t->n; i++)
        if (tf_route_check(t, i, type, ctx) == TF_ROUTE_MATCH)
            mask |= UINT64_C(1) << i;
    return mask;
}

uint64_t tf_route_distinct(const tf_route_table *t, uint64_t mask)
{
    uint64_t out = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (!((mask >> i) & 1))
            continue;
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = ((out >> j) & 1) && t->subs[j].binary == t->subs[i].binary &&
                  strcmp(t->subs[j].topic, t->subs[i].topic) == 0;
        if (!dup)
            out |= UINT64_C(1) << i;
    }
    return out;
}

int tf_route_find(const tf_route_table *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->n; i++)
        if (strlen(t->subs[i].name) == len && memcmp(t->subs[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

uint64_t tf_route_parse_dests(const tf_route_table *t, const char *names, size_t len, size_t *skipped)
{
    uint64_t dests = 0;
    *skipped = 0;
    for (;;) {
        const char *comma = memchr(names, ',', len);
        size_t n = comma ? (size_t)(comma - names) : len;
        int i = tf_route_find(t, names, n);
        if (i >= 0 && t->subs[i].enabled)
            dests |= UINT64_C(1) << i;
        else
            (*skipped)++;
        if (!comma)
            return dests;
        names += n + 1;
        len -= n + 1;
    }
}

/* ---- facts read back from data ---- */

static void copy_name(char *dst, size_t size, const json_t *v)
{
    if (json_is_string(v) && json_string_length(v) < size)
        memcpy(dst, json_string_value(v), json_string_length(v) + 1);
}

int tf_route_ctx_from_data(const tf_route_table *t, tf_derived_type type, const char *data, size_t len,
                           tf_derived_ctx *ctx, char *err, size_t errsize)
{
    json_error_t jerr;
    memset(ctx, 0, sizeof *ctx);
    ctx->segment = -1;
    json_t *d = json_loadb(data, len, 0, &jerr);
    if (!d || !json_is_object(d)) {
        snprintf(err, errsize, "data: %s", d ? "not a JSON object" : jerr.text);
        json_decref(d);
        return TF_EINVAL;
    }
    json_t *to = json_object_get(d, "to");
    copy_name(ctx->stage, sizeof ctx->stage, json_object_get(d, "stage"));
    if (!ctx->stage[0] && type == TF_DERIVED_STAGE_CHANGED)
        copy_name(ctx->stage, sizeof ctx->stage, to);
    copy_name(ctx->tier, sizeof ctx->tier, json_object_get(d, "tier"));
    if (!ctx->tier[0] && type == TF_DERIVED_TIER_CHANGED)
        copy_name(ctx->tier, sizeof ctx->tier, to);
    /* complaint.escalated's level is its escalation level, a number: not a member level. */
    copy_name(ctx->level, sizeof ctx->level, json_object_get(d, "level"));
    if (!ctx->level[0] && type == TF_DERIVED_LOYALTY_LEVEL_CHANGED)
        copy_name(ctx->level, sizeof ctx->level, to);
    if (type == TF_DERIVED_CARE_REMINDER)
        copy_name(ctx->care_kind, sizeof ctx->care_kind, json_object_get(d, "kind"));
    json_t *value = json_object_get(d, "value");
    if (json_is_integer(value)) {
        ctx->value = json_integer_value(value);
        ctx->has_value = 1;
    }
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(d, "channels"), i, item) {
        tf_channel ch;
        if (json_is_string(item) &&
            tf_channel_parse(json_string_value(item), json_string_length(item), &ch) == TF_OK)
            ctx->channels |= 1u << ch;
    }
    json_array_foreach(json_object_get(d, "segments"), i, item) {
        int k = json_is_string(item) ? segment_index(t, json_string_value(item), json_string_length(item)) : -1;
        if (k >= 0)
            ctx->segments |= UINT64_C(1) << k;
    }
    json_t *seg = json_object_get(d, "segment");
    if ((type == TF_DERIVED_SEGMENT_ENTERED || type == TF_DERIVED_SEGMENT_EXITED) && json_is_string(seg))
        ctx->segment = segment_index(t, json_string_value(seg), json_string_length(seg));
    json_decref(d);
    return TF_OK;
}
