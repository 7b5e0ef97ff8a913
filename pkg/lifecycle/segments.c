/* Segments: named groups of customers defined in rules.segments by predicates over
 * their state. Membership is a pure function of the state and a time; only
 * days_since_purchase and tenure_days change with time alone, and each of their
 * predicates holds on one interval of time, so the moment membership next changes
 * is computed, not polled (TF_TIMER_SEGMENT). */
#include <stdio.h>
#include <string.h>

#include "lifecycle/internal.h"

_Static_assert(TF_RULES_MAX_SEGMENTS <= 64, "membership is a 64-bit mask");
_Static_assert(TF_RULES_TAG_MAX == TF_EVENT_TAG_MAX + 1, "a predicate's tag is a profile's tag");

typedef struct {
    int has;      /* the customer has this figure */
    int real;     /* num is the value (satisfaction, nps), else i */
    int64_t i;
    double num;
} figure_t;

static int time_driven(tf_segment_field f)
{
    return f == TF_SEG_DAYS_SINCE_PURCHASE || f == TF_SEG_TENURE_DAYS;
}

/* A number field of c (not a time-driven one). */
static figure_t number_of(const tf_customer_t *c, tf_segment_field f)
{
    figure_t v = {1, 0, 0, 0};
    int buyer = c->purchases > 0;
    switch (f) {
    case TF_SEG_RFM_R: v.has = buyer, v.i = c->rfm_r; break;
    case TF_SEG_RFM_F: v.has = buyer, v.i = c->rfm_f; break;
    case TF_SEG_RFM_M: v.has = buyer, v.i = c->rfm_m; break;
    case TF_SEG_SPEND: v.i = tf_lc_add(c->spend, c->refunded == INT64_MIN ? INT64_MAX : -c->refunded); break;
    case TF_SEG_PURCHASES: v.i = c->purchases; break;
    case TF_SEG_OPEN_COMPLAINTS: v.i = c->open_complaints; break;
    case TF_SEG_CHURN_RISK: v.i = c->risk; break;
    case TF_SEG_SATISFACTION:
        v.real = 1, v.num = tf_customer_satisfaction(c), v.has = v.num >= 0;
        break;
    case TF_SEG_NPS:
        v.real = 1, v.num = tf_customer_nps_mean(c), v.has = v.num >= 0;
        break;
    default:
        v.has = 0;
        break;
    }
    return v;
}

static int has_tag(const tf_customer_t *c, const char *tag)
{
    for (size_t i = 0; i < c->ntags && i < TF_EVENT_MAX_TAGS; i++)
        if (strcmp(c->tags[i], tag) == 0)
            return 1;
    return 0;
}

static int in_names(const tf_rules_predicate *p, const char *name)
{
    for (size_t k = 0; k < p->nin && k < TF_RULES_MAX_IN; k++)
        if (strcmp(p->in[k], name) == 0)
            return 1;
    return 0;
}

static int in_vocab(const tf_rules_predicate *p, tf_vocab v, const char *name)
{
    int i = tf_vocab_index(v, name, strlen(name));
    return i >= 0 && i < 32 && (p->in_mask & (1u << i));
}

/* A predicate that does not depend on time. */
static int static_holds(const tf_rules_predicate *p, const tf_customer_t *c)
{
    switch (p->field) {
    case TF_SEG_STAGE: return in_vocab(p, TF_VOCAB_STAGE, tf_stage_name(c->stage));
    case TF_SEG_TIER: return in_vocab(p, TF_VOCAB_TIER, tf_tier_name(c->tier));
    case TF_SEG_LEVEL: return c->level[0] && in_names(p, c->level);
    case TF_SEG_TAGS: return has_tag(c, p->tag) != p->lacks;
    default: break;
    }
    figure_t v = number_of(c, p->field);
    if (!v.has)
        return 0;
    if (v.real)
        return (!p->has_min || v.num >= (double)p->min) && (!p->has_max || v.num <= (double)p->max);
    return (!p->has_min || v.i >= p->min) && (!p->has_max || v.i <= p->max);
}

/* The whole days since `from` at t are within [min, max] exactly while t is in
 * [from + min days, from + (max + 1) days): the interval [*lo, *hi) of a
 * time-driven predicate. 0 when the customer has no such time (never bought). */
static int time_interval(const tf_rules_predicate *p, const tf_customer_t *c, int64_t *lo, int64_t *hi)
{
    if (c->purchases <= 0)
        return 0;
    int64_t from = p->field == TF_SEG_TENURE_DAYS ? c->first_purchase_ms : c->last_purchase_ms;
    *lo = p->has_min ? tf_lc_add(from, tf_lc_mul(p->min, TF_MS_PER_DAY)) : INT64_MIN;
    *hi = p->has_max ? tf_lc_add(from, tf_lc_mul(tf_lc_add(p->max, 1), TF_MS_PER_DAY)) : INT64_MAX;
    return 1;
}

/* Whether the time-independent predicates of s hold, and the interval [*lo, *hi)
 * of time in which the time-driven ones all hold (empty when lo >= hi). */
static int segment_window(const tf_rules_segment *s, const tf_customer_t *c, int64_t *lo, int64_t *hi)
{
    *lo = INT64_MIN;
    *hi = INT64_MAX;
    for (size_t j = 0; j < s->nwhen && j < TF_RULES_MAX_PREDICATES; j++) {
        const tf_rules_predicate *p = &s->when[j];
        int64_t a, b;
        if (!time_driven(p->field)) {
            if (!static_holds(p, c))
                return 0;
        } else {
            if (!time_interval(p, c, &a, &b))
                return 0;
            if (a > *lo)
                *lo = a;
            if (b < *hi)
                *hi = b;
        }
    }
    return 1;
}

uint64_t tf_lc_segments_at(const tf_config_rules *r, const tf_customer_t *c, int64_t t)
{
    uint64_t bits = 0;
    for (size_t i = 0; i < r->nsegments && i < TF_RULES_MAX_SEGMENTS; i++) {
        int64_t lo, hi;
        if (segment_window(&r->segments[i], c, &lo, &hi) && lo <= t && t < hi)
            bits |= UINT64_C(1) << i;
    }
    return bits;
}

int64_t tf_lc_segments_next_change(const tf_config_rules *r, const tf_customer_t *c, int64_t t)
{
    int64_t best = 0;
    for (size_t i = 0; i < r->nsegments && i < TF_RULES_MAX_SEGMENTS; i++) {
        int64_t lo, hi, at = 0;
        if (!segment_window(&r->segments[i], c, &lo, &hi) || lo >= hi)
            continue;
        if (t < lo)
            at = lo;                      /* enters */
        else if (t < hi && hi != INT64_MAX)
            at = hi;                      /* leaves */
        if (at > 0 && (best == 0 || at < best))
            best = at;
    }
    return best;
}

uint64_t tf_lc_segments_member(const tf_config_rules *r, const tf_customer_t *c)
{
    uint64_t bits = 0;
    for (size_t k = 0; k < c->nsegments && k < TF_RULES_MAX_SEGMENTS; k++)
        for (size_t i = 0; i < r->nsegments && i < TF_RULES_MAX_SEGMENTS; i++)
            if (strcmp(c->segments[k], r->segments[i].name) == 0)
                bits |= UINT64_C(1) << i;
    return bits;
}

/* ---- fingerprint: a hash of the definitions, field by field (never raw struct
 * bytes, whose padding and unused entries are not part of the config), word by
 * word: it is computed each time membership is judged ---- */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= UINT64_C(0x9e3779b97f4a7c15);
    return h ^ (h >> 29);
}

/* The string s (at most max bytes) in 8-byte words, then its length. */
static uint64_t mix_str(uint64_t h, const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w = 0;
        for (size_t k = 0; k < 8 && i + k < n; k++)
            w |= (uint64_t)(unsigned char)s[i + k] << (8 * k);
        h = mix(h, w);
    }
    return mix(h, n);
}

int64_t tf_lc_segments_fingerprint(const tf_config_rules *r)
{
    if (r->nsegments == 0)
        return 0;
    uint64_t h = mix(UINT64_C(0x7466736567), r->nsegments);
    for (size_t i = 0; i < r->nsegments && i < TF_RULES_MAX_SEGMENTS; i++) {
        const tf_rules_segment *s = &r->segments[i];
        h = mix(mix_str(h, s->name, sizeof s->name), s->nwhen);
        for (size_t j = 0; j < s->nwhen && j < TF_RULES_MAX_PREDICATES; j++) {
            const tf_rules_predicate *p = &s->when[j];
            h = mix(h, (uint64_t)p->field);
            switch (p->field) {
            case TF_SEG_STAGE:
            case TF_SEG_TIER:
                h = mix(h, p->in_mask);
                break;
            case TF_SEG_LEVEL:
                for (size_t k = 0; k < p->nin && k < TF_RULES_MAX_IN; k++)
                    h = mix_str(h, p->in[k], sizeof p->in[k]);
                h = mix(h, p->nin);
                break;
            case TF_SEG_TAGS:
                h = mix(mix_str(h, p->tag, sizeof p->tag), (uint64_t)p->lacks);
                break;
            default:
                h = mix(h, (uint64_t)(p->has_min * 2 + p->has_max));
                h = mix(mix(h, (uint64_t)(p->has_min ? p->min : 0)), (uint64_t)(p->has_max ? p->max : 0));
                break;
            }
        }
    }
    /* Positive, so that it reads the same in the hash; 0 means "no segments". */
    int64_t fp = (int64_t)(h >> 2);
    return fp ? fp : 1;
}

/* ---- membership changes ---- */

/* The figures that decided: each field the predicates of s read, once, as the
 * customer has it at t (a figure the customer does not have is left out). */
static void add_figures(const tf_rules_segment *s, const tf_customer_t *c, int64_t t, tf_derived_t *d)
{
    char tags[TF_FIG_STR_MAX] = "";
    int tagged = 0;
    for (size_t j = 0; j < s->nwhen && j < TF_RULES_MAX_PREDICATES; j++) {
        const tf_rules_predicate *p = &s->when[j];
        const char *name = tf_config_segment_field_name(p->field);
        int seen = 0;
        for (size_t k = 0; k < j; k++)
            seen |= s->when[k].field == p->field;
        if (!name || (seen && p->field != TF_SEG_TAGS))
            continue;
        switch (p->field) {
        case TF_SEG_STAGE: tf_derived_add_str(d, name, tf_stage_name(c->stage)); break;
        case TF_SEG_TIER: tf_derived_add_str(d, name, tf_tier_name(c->tier)); break;
        case TF_SEG_LEVEL: tf_derived_add_str(d, name, c->level); break;
        case TF_SEG_DAYS_SINCE_PURCHASE:
        case TF_SEG_TENURE_DAYS:
            if (c->purchases > 0) {
                int64_t from = p->field == TF_SEG_TENURE_DAYS ? c->first_purchase_ms : c->last_purchase_ms;
                tf_derived_add_int(d, name, (tf_lc_day_floor(t - from)) / TF_MS_PER_DAY);
            }
            break;
        case TF_SEG_TAGS:
            /* The tags the predicates name that the customer has: one list. */
            tagged = 1;
            if (has_tag(c, p->tag) && strlen(tags) + strlen(p->tag) + 2 <= sizeof tags) {
                if (tags[0])
                    strcat(tags, ",");
                strcat(tags, p->tag);
            }
            break;
        default: {
            figure_t v = number_of(c, p->field);
            if (v.has && v.real)
                tf_derived_add_num(d, name, v.num);
            else if (v.has)
                tf_derived_add_int(d, name, v.i);
            break;
        }
        }
    }
    if (tagged)
        tf_derived_add_list(d, "tags", tags);
}

/* Each change its own id: the cause, the rule and the segment's name. */
static void emit_change(const tf_config_rules *r, size_t i, int entered, const tf_customer_t *c,
                        const tf_cause *cause, tf_emit *e)
{
    const tf_rules_segment *s = &r->segments[i];
    tf_derived_t *d = tf_lc_derive(e, entered ? TF_DERIVED_SEGMENT_ENTERED : TF_DERIVED_SEGMENT_EXITED, cause,
                                   "segment_rules");
    if (!d)
        return;
    char id[TF_EVENT_ID_MAX + TF_RULES_NAME_MAX + 96];
    if (cause->ev) {
        snprintf(id, sizeof(id), "%s#segment_rules:%s", cause->ev->id, s->name);
        tf_derived_set_id(d, cause->ev->source, id);
    } else {
        snprintf(id, sizeof(id), "timer:%s@%lld:%s#segment_rules:%s", cause->timer, (long long)cause->at_ms,
                 cause->occasion ? cause->occasion : "", s->name);
        tf_derived_set_id(d, cause->customer, id);
    }
    d->ctx.segment = (int)i;
    tf_derived_add_str(d, "segment", s->name);
    add_figures(s, c, c->clock_ms, d);
}

static void store_membership(const tf_config_rules *r, tf_customer_t *c, uint64_t bits)
{
    memset(c->segments, 0, sizeof(c->segments));
    c->nsegments = 0;
    for (size_t i = 0; i < r->nsegments && i < TF_RULES_MAX_SEGMENTS; i++)
        if (bits & (UINT64_C(1) << i))
            tf_strlcpy(c->segments[c->nsegments++], r->segments[i].name, sizeof(c->segments[0]));
}

void tf_lc_review_segments(const tf_config_rules *r, tf_customer_t *c, const tf_cause *cause, tf_emit *e)
{
    int64_t fp = tf_lc_segments_fingerprint(r);
    uint64_t now = tf_lc_segments_at(r, c, c->clock_ms);
    if (c->segments_fp != fp) {
        store_membership(r, c, now);
        c->segments_fp = fp;
        return;
    }
    uint64_t was = tf_lc_segments_member(r, c);
    if (now == was && c->nsegments == (size_t)__builtin_popcountll(was))
        return;
    for (size_t i = 0; i < r->nsegments && i < TF_RULES_MAX_SEGMENTS; i++)
        if ((was & ~now) & (UINT64_C(1) << i))
            emit_change(r, i, 0, c, cause, e);
    store_membership(r, c, now);
    for (size_t i = 0; i < r->nsegments && i < TF_RULES_MAX_SEGMENTS; i++)
        if ((now & ~was) & (UINT64_C(1) << i))
            emit_change(r, i, 1, c, cause, e);
}

void tf_lc_segments_context(const tf_config_rules *r, const tf_customer_t *c, tf_derived_t *d)
{
    if (d->type != TF_DERIVED_SEGMENT_ENTERED && d->type != TF_DERIVED_SEGMENT_EXITED)
        d->ctx.segment = -1;
    /* referral.credited is about the referrer, whose membership is not at hand. */
    d->ctx.segments = d->type == TF_DERIVED_REFERRAL_CREDITED ? 0 : tf_lc_segments_member(r, c);
    if (r->nsegments == 0 || d->type == TF_DERIVED_REFERRAL_CREDITED)
        return; /* without segments, events read as they did before them */
    char list[TF_FIG_STR_MAX] = "";
    size_t len = 0;
    for (size_t k = 0; k < c->nsegments && k < TF_RULES_MAX_SEGMENTS; k++) {
        size_t n = strnlen(c->segments[k], TF_RULES_NAME_MAX);
        if (len + n + 2 > sizeof list)
            break; /* config validation keeps every name list within a figure */
        if (len)
            list[len++] = ',';
        memcpy(list + len, c->segments[k], n);
        len += n;
        list[len] = '\0';
    }
    tf_derived_add_list(d, "segments", list);
}
