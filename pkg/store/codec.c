/* The customer document as Redis hash fields.
 *
 * Fields, in the fixed order tf_store_encode writes them (all values decimal text
 * unless noted; times in ms since the epoch, 0 = never):
 *   stage (name), stage_since, first_seen, last_seen, purchases, first_purchase,
 *   last_purchase, spend, margin, refunded, foreign_purchases, open_complaints,
 *   complaints, surveys_sat, nps_count, nps_sum, churned_count,
 *   clock (the rules' clock), gross_profit, care_actions, tier_since, points,
 *   nps_prom, nps_detr (promoter and detractor answers), risk (0-100), warned_at,
 *   birthday_done, anniversary_done, date_done (the year last greeted),
 *   festival_done, checkin_done, referrals (customers this one referred),
 *   ranked_value, ranked_at (the value the tier cutoffs in force since ranked_at
 *   ranked the customer at; see tf_customer_t),
 *   warned, welcomed, referral_credited (0 or 1),
 *   currency (text), sat_a, sat_b (real, "%.17g": exact),
 *   n:<kind> per touchpoint kind,
 *   satisfaction, mean_interval_ms, nps (derived, for readers of the hash; ignored
 *   when decoding),
 *   sb: the spend buckets, "<spend_base>:<v0>,<v1>,...,<v11>" (oldest first),
 *   tier (name), level (member level name, text, "" before the first purchase),
 *   birthday "MM-DD" and date "YYYY-MM-DD" (the anniversary the customer gave),
 *   "" when not given,
 *   followup "<due ms>|<order id>", "" when none pending (the id is last: it may
 *   contain '|'),
 *   complaint_followup: the pending complaint follow-ups as "<slot>:<due ms>"
 *   joined by ',' (slot: the cp: field of the complaint), "" when none; a value
 *   "<due ms>|<complaint id>" is the single follow-up kept before 1.2 and is
 *   decoded onto that complaint,
 *   referred_by (customer id, "" when nobody; also set by tf_store_link_referral),
 *   segments: the names of the segments the customer is in joined by ',' (config
 *   order), "" when none or written before segments existed, with segments_fp the
 *   fingerprint of the rules.segments that judged them (0: none configured),
 *   tags: the profile's tags joined by ',' (a tag holds no comma), "" when none,
 *   with tags_at the time of the profile that gave them,
 *   consent: the channels with a stated consent as "<channel>=<granted|withdrawn>@<ms>"
 *   joined by ',' (ms: when it was stated), "" when none was,
 *   cp:0..cp:7 the complaints remembered, one per slot in the customer's order, as
 *   "<state>|<level>|<severity>|<category>|<opened ms>|<closed ms>|<id>" with state
 *   open/acknowledged/resolved, severity and category by their event names or
 *   "none", the id last (it may contain '|'); an unused slot is "", so a commit
 *   never has to delete a field,
 *   t:<timer> per timer (tf_timer_name): the due ms, "0" when not scheduled,
 *   h:0..h:7 the latest stage changes, newest first, as "<ms>|<from>|<to>|<rule>",
 *   o:<topic>/<partition> watermarks; v (version) and ep (epoch) are written by the
 *   commit script itself.
 * A malformed value decodes as zero / empty (a malformed cp: slot is dropped and the
 * later ones move up); only an unknown stage fails the whole document. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

int64_t tf_store_doc_watermark(const tf_store_doc_t *doc, const char *tp)
{
    for (size_t i = 0; i < doc->nwatermarks; i++)
        if (strcmp(doc->watermarks[i].tp, tp) == 0)
            return doc->watermarks[i].offset;
    return -1;
}

void tf_store_doc_set_watermark(tf_store_doc_t *doc, const char *tp, int64_t offset)
{
    size_t i;
    for (i = 0; i < doc->nwatermarks; i++) {
        if (strcmp(doc->watermarks[i].tp, tp) == 0) {
            if (offset > doc->watermarks[i].offset)
                doc->watermarks[i].offset = offset;
            return;
        }
    }
    /* A customer moves partitions only when an input topic is repartitioned; keep the
     * newest few and let the oldest go. */
    if (i == TF_STORE_MAX_WATERMARKS) {
        memmove(&doc->watermarks[0], &doc->watermarks[1], sizeof(doc->watermarks[0]) * (i - 1));
        i--;
    } else {
        doc->nwatermarks++;
    }
    tf_strlcpy(doc->watermarks[i].tp, tp, sizeof(doc->watermarks[i].tp));
    doc->watermarks[i].offset = offset;
}

#define I64_FIELDS(X)                              \
    X("stage_since", stage_since_ms)               \
    X("first_seen", first_seen_ms)                 \
    X("last_seen", last_seen_ms)                   \
    X("purchases", purchases)                      \
    X("first_purchase", first_purchase_ms)         \
    X("last_purchase", last_purchase_ms)           \
    X("spend", spend)                              \
    X("margin", margin)                            \
    X("refunded", refunded)                        \
    X("foreign_purchases", foreign_purchases)      \
    X("open_complaints", open_complaints)          \
    X("complaints", complaints)                    \
    X("surveys_sat", surveys_sat)                  \
    X("nps_count", nps_count)                      \
    X("nps_sum", nps_sum)                          \
    X("churned_count", churned_count)              \
    X("clock", clock_ms)                           \
    X("gross_profit", gross_profit)                \
    X("care_actions", care_actions)                \
    X("tier_since", tier_since_ms)                 \
    X("points", points)                            \
    X("nps_prom", nps_promoters)                   \
    X("nps_detr", nps_detractors)                  \
    X("risk", risk)                                \
    X("warned_at", warned_at_ms)                   \
    X("birthday_done", birthday_done_year)         \
    X("anniversary_done", anniversary_done_year)   \
    X("date_done", date_done_year)                 \
    X("festival_done", festival_done_ms)           \
    X("checkin_done", checkin_done_ms)             \
    X("referrals", referrals)                      \
    X("ranked_value", ranked_value)                \
    X("ranked_at", ranked_at_ms)                   \
    X("tags_at", tags_at_ms)                       \
    X("segments_fp", segments_fp)

#define INT_FIELDS(X)                              \
    X("warned", warned)                            \
    X("welcomed", welcomed)                        \
    X("referral_credited", referral_credited)      \
    X("rfm_r", rfm_r)                              \
    X("rfm_f", rfm_f)                              \
    X("rfm_m", rfm_m)

static const char *const complaint_fields[TF_MAX_COMPLAINTS] = {"cp:0", "cp:1", "cp:2", "cp:3",
                                                                "cp:4", "cp:5", "cp:6", "cp:7"};
static const char *const history_fields[TF_STAGE_HISTORY] = {"h:0", "h:1", "h:2", "h:3",
                                                             "h:4", "h:5", "h:6", "h:7"};
static const char *const complaint_states[] = {"open", "acknowledged", "resolved"};
#define NSTATES (sizeof(complaint_states) / sizeof(complaint_states[0]))

/* A bounded char array as "%.*s" arguments: a missing NUL cannot overrun. */
#define STR(a) (int)strnlen((a), sizeof(a)), (a)

/* ---- encoding ---- */

typedef struct {
    tf_store_fields *out;
    int err;
    int sparse; /* leave out fields at their default */
} enc_t;

/* A field at its default: "", "0", or -1 for the derived figures. The stage is
 * always written (it tells a customer from an empty hash). */
static int is_default(const char *field, const char *v, size_t len)
{
    if (len == 0 || (len == 1 && v[0] == '0'))
        return strcmp(field, "stage") != 0;
    return (len == 2 && memcmp(v, "-1", 2) == 0) || (len == 5 && memcmp(v, "-1.00", 5) == 0);
}

/* Decimal text of v into the arena without printf (the hot path of a commit). */
static const char *arena_i64(enc_t *e, int64_t v, size_t *len)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[n++] = '-';
    tf_store_fields *o = e->out;
    if (sizeof(o->arena) - o->used < n + 1) {
        e->err = 1;
        return NULL;
    }
    char *s = o->arena + o->used;
    for (size_t i = 0; i < n; i++)
        s[i] = tmp[n - 1 - i];
    s[n] = '\0';
    o->used += n + 1;
    *len = n;
    return s;
}

static void put_value(enc_t *e, const char *field, const char *v, size_t len, size_t mark)
{
    tf_store_fields *o = e->out;
    if (e->sparse && is_default(field, v, len)) {
        o->used = mark; /* give the room back */
        return;
    }
    o->field[o->n] = field;
    o->value[o->n] = v;
    o->vlen[o->n] = len;
    o->n++;
}

/* Text of at most max bytes (it may lack a NUL at max). */
static void put_text(enc_t *e, const char *field, const char *v, size_t max)
{
    tf_store_fields *o = e->out;
    size_t len = strnlen(v, max), mark = o->used;
    if (o->n == TF_STORE_MAX_FIELDS || sizeof(o->arena) - o->used < len + 1) {
        e->err = 1;
        return;
    }
    char *s = o->arena + o->used;
    memcpy(s, v, len);
    s[len] = '\0';
    o->used += len + 1;
    put_value(e, field, s, len, mark);
}

static void put_i64(enc_t *e, const char *field, int64_t v)
{
    tf_store_fields *o = e->out;
    size_t len = 0, mark = o->used;
    if (!field || o->n == TF_STORE_MAX_FIELDS) {
        e->err = 1;
        return;
    }
    const char *s = arena_i64(e, v, &len);
    if (s)
        put_value(e, field, s, len, mark);
}

/* Appends text to the arena; NULL (and e->err) when it does not fit. */
static const char *arena_vprintf(enc_t *e, size_t *len, const char *fmt, va_list ap)
{
    tf_store_fields *o = e->out;
    size_t room = sizeof(o->arena) - o->used;
    int n = vsnprintf(o->arena + o->used, room, fmt, ap);
    if (n < 0 || (size_t)n >= room) {
        e->err = 1;
        return NULL;
    }
    const char *s = o->arena + o->used;
    o->used += (size_t)n + 1;
    if (len)
        *len = (size_t)n;
    return s;
}

static const char *arena_printf(enc_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *arena_printf(enc_t *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *s = arena_vprintf(e, NULL, fmt, ap);
    va_end(ap);
    return s;
}

static void put(enc_t *e, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put(enc_t *e, const char *field, const char *fmt, ...)
{
    tf_store_fields *o = e->out;
    size_t len = 0, mark = o->used;
    if (!field || o->n == TF_STORE_MAX_FIELDS) {
        e->err = 1;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    const char *v = arena_vprintf(e, &len, fmt, ap);
    va_end(ap);
    if (v)
        put_value(e, field, v, len, mark);
}

static const char *or_none(const char *name) { return name ? name : "none"; }

static const char *timer_name(int t)
{
    const char *n = tf_timer_name((tf_timer)t);
    return n ? n : "?";
}

static void put_complaint(enc_t *e, size_t slot, const tf_complaint_t *cp)
{
    const char *state = (unsigned)cp->state < NSTATES ? complaint_states[cp->state] : "?";
    put(e, complaint_fields[slot], "%s|%d|%s|%s|%lld|%lld|%.*s", state, cp->level,
        or_none(tf_complaint_severity_name(cp->severity)), or_none(tf_complaint_category_name(cp->category)),
        (long long)cp->opened_ms, (long long)cp->closed_ms, STR(cp->id));
}

static const char *const kind_fields[TF_KIND__COUNT] = {
    "n:web_visit", "n:call", "n:purchase", "n:refund", "n:complaint",
    "n:complaint_update", "n:survey", "n:referral", "n:profile", "n:email",
    "n:social", "n:store_visit", "n:event_attendance", "n:contract_end", "n:unsubscribe",
};
static const char *const timer_fields[TF_TIMER__COUNT] = {
    "t:review", "t:birthday", "t:festival", "t:followup", "t:checkin",
    "t:anniversary", "t:date", "t:complaint_followup", "t:sla", "t:segment",
};

static int encode(const tf_store_doc_t *doc, tf_store_fields *out, int sparse)
{
    const tf_customer_t *c = &doc->customer;
    enc_t e = {out, 0, sparse};
    out->n = 0;
    out->used = 0;
    put_text(&e, "stage", tf_stage_name(c->stage), 16);
#define X(name, member) put_i64(&e, name, c->member);
    I64_FIELDS(X)
#undef X
#define X(name, member) put_i64(&e, name, c->member);
    INT_FIELDS(X)
#undef X
    put_text(&e, "currency", c->currency, sizeof(c->currency));
    /* Without surveys the figures are at their defaults: skip the float formatting. */
    if (!sparse || c->surveys_sat) {
        put(&e, "sat_a", "%.17g", c->sat_expectation_sum);
        put(&e, "sat_b", "%.17g", c->sat_perception_sum);
    }
    for (int k = 0; k < TF_KIND__COUNT; k++)
        put_i64(&e, kind_fields[k], c->counts[k]);
    if (!sparse || c->surveys_sat)
        put(&e, "satisfaction", "%.2f", tf_customer_satisfaction(c));
    put_i64(&e, "mean_interval_ms", tf_customer_mean_interval_ms(c));
    if (!sparse || c->nps_count)
        put(&e, "nps", "%.2f", tf_customer_nps_mean(c));

    char sb[TF_SPEND_BUCKETS * 21 + 24];
    size_t pos = (size_t)snprintf(sb, sizeof(sb), "%lld:", (long long)c->spend_base);
    for (int i = 0; i < TF_SPEND_BUCKETS; i++)
        pos += (size_t)snprintf(sb + pos, sizeof(sb) - pos, i ? ",%lld" : "%lld", (long long)c->spend_buckets[i]);
    put_text(&e, "sb", sb, sizeof(sb));
    const char *tier = tf_tier_name(c->tier);
    put_text(&e, "tier", tier ? tier : "", 16);
    put_text(&e, "level", c->level, sizeof(c->level));
    if (c->birth_month || c->birth_day)
        put(&e, "birthday", "%02d-%02d", c->birth_month, c->birth_day);
    else
        put_text(&e, "birthday", "", 1);
    if (c->date_year || c->date_month || c->date_day)
        put(&e, "date", "%04d-%02d-%02d", c->date_year, c->date_month, c->date_day);
    else
        put_text(&e, "date", "", 1);
    if (c->followup_due_ms || c->followup_order[0])
        put(&e, "followup", "%lld|%.*s", (long long)c->followup_due_ms, STR(c->followup_order));
    else
        put_text(&e, "followup", "", 1);
    char list[TF_MAX_COMPLAINTS * 24 + (TF_EVENT_MAX_TAGS * (TF_EVENT_TAG_MAX + 1))];
    size_t at = 0;
    list[0] = '\0';
    for (size_t i = 0; i < c->ncomplaints && i < TF_MAX_COMPLAINTS; i++)
        if (c->complaint[i].followup_due_ms)
            at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%zu:%lld", at ? "," : "", i,
                                    (long long)c->complaint[i].followup_due_ms);
    put_text(&e, "complaint_followup", list, sizeof(list));
    put_text(&e, "referred_by", c->referred_by, sizeof(c->referred_by));
    at = 0;
    list[0] = '\0';
    for (size_t i = 0; i < c->ntags && i < TF_EVENT_MAX_TAGS; i++)
        at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%.*s", i ? "," : "", STR(c->tags[i]));
    put_text(&e, "tags", list, sizeof(list));
    at = 0;
    list[0] = '\0';
    for (int i = 0; i < TF_CHANNEL__COUNT; i++)
        if (c->consent[i] == TF_CONSENT_GRANTED || c->consent[i] == TF_CONSENT_WITHDRAWN)
            at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%s=%s@%lld", at ? "," : "",
                                    tf_channel_name((tf_channel)i), tf_consent_name(c->consent[i]),
                                    (long long)c->consent_at_ms[i]);
    put_text(&e, "consent", list, sizeof(list));
    char names[TF_RULES_MAX_SEGMENTS * TF_RULES_NAME_MAX];
    at = 0;
    names[0] = '\0';
    for (size_t i = 0; i < c->nsegments && i < TF_RULES_MAX_SEGMENTS; i++)
        at += (size_t)snprintf(names + at, sizeof(names) - at, "%s%.*s", i ? "," : "", STR(c->segments[i]));
    put_text(&e, "segments", names, sizeof(names));

    for (size_t i = 0; i < TF_MAX_COMPLAINTS; i++) {
        if (i < c->ncomplaints)
            put_complaint(&e, i, &c->complaint[i]);
        else
            put(&e, complaint_fields[i], "%s", "");
    }
    for (int t = 0; t < TF_TIMER__COUNT; t++)
        put_i64(&e, timer_fields[t], c->due[t]);

    for (size_t i = 0; i < c->nhistory && i < TF_STAGE_HISTORY; i++)
        put(&e, history_fields[i], "%lld|%s|%s|%.*s", (long long)c->history[i].at_ms,
            tf_stage_name(c->history[i].from), tf_stage_name(c->history[i].to), STR(c->history[i].rule));
    for (size_t i = 0; i < doc->nwatermarks && i < TF_STORE_MAX_WATERMARKS; i++)
        put_i64(&e, arena_printf(&e, "o:%.*s", STR(doc->watermarks[i].tp)), doc->watermarks[i].offset);
    return e.err ? TF_EINVAL : TF_OK;
}

int tf_store_encode(const tf_store_doc_t *doc, tf_store_fields *out)
{
    return encode(doc, out, 1);
}

int tf_store_encode_full(const tf_store_doc_t *doc, tf_store_fields *out)
{
    return encode(doc, out, 0);
}

/* ---- decoding ---- */

static int field_is(const char *f, size_t flen, const char *name)
{
    size_t n = strlen(name);
    return flen == n && memcmp(f, name, n) == 0;
}

static int64_t to_i64(const char *v, size_t len)
{
    int64_t out = 0;
    return tf_parse_i64(v, len, &out) == TF_OK ? out : 0;
}

static int to_int(const char *v, size_t len)
{
    int64_t out = 0;
    return tf_parse_i64(v, len, &out) == TF_OK && out >= -2147483647 - 1 && out <= 2147483647 ? (int)out : 0;
}

static double to_double(const char *v, size_t len)
{
    char buf[64];
    if (len >= sizeof(buf))
        return 0;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return strtod(buf, NULL);
}

/* Copies v into dst (size dstsize) as a string; 0, or -1 (dst untouched) when it
 * does not fit. */
static int copy_text(char *dst, size_t dstsize, const char *v, size_t vl)
{
    if (vl >= dstsize)
        return -1;
    memcpy(dst, v, vl);
    dst[vl] = '\0';
    return 0;
}

/* Exactly n decimal numbers separated by sep; 0 or -1. */
static int split_i64(const char *v, size_t vl, char sep, int64_t *out, size_t n)
{
    size_t k = 0;
    for (const char *p = v, *end = v + vl; k < n; k++) {
        const char *q = memchr(p, sep, (size_t)(end - p));
        size_t len = q ? (size_t)(q - p) : (size_t)(end - p);
        if (tf_parse_i64(p, len, &out[k]) != TF_OK)
            return -1;
        if (!q)
            return k + 1 == n ? 0 : -1;
        p = q + 1;
    }
    return -1; /* more than n */
}

/* Parses the first k '|'-separated tokens of v into tok/toklen and returns the rest
 * (after the k-th '|'), or NULL when there are fewer. */
static const char *tokens(const char *v, size_t vl, size_t k, const char **tok, size_t *toklen, size_t *restlen)
{
    const char *p = v, *end = v + vl;
    for (size_t i = 0; i < k; i++) {
        const char *q = memchr(p, '|', (size_t)(end - p));
        if (!q)
            return NULL;
        tok[i] = p;
        toklen[i] = (size_t)(q - p);
        p = q + 1;
    }
    *restlen = (size_t)(end - p);
    return p;
}

/* Looks name up among the names of 1..; 0 (and *out) or -1. "none" is 0. */
static int parse_enum(const char *s, size_t len, const char *(*name_of)(int), int *out)
{
    if (field_is(s, len, "none")) {
        *out = 0;
        return 0;
    }
    for (int i = 1;; i++) {
        const char *n = name_of(i);
        if (!n)
            return -1;
        if (field_is(s, len, n)) {
            *out = i;
            return 0;
        }
    }
}

static const char *severity_name(int i) { return tf_complaint_severity_name((tf_complaint_severity)i); }
static const char *category_name(int i) { return tf_complaint_category_name((tf_complaint_category)i); }

/* "<state>|<level>|<severity>|<category>|<opened>|<closed>|<id>"; 0 or -1. */
static int decode_complaint(tf_complaint_t *cp, const char *v, size_t vl)
{
    const char *tok[6];
    size_t tl[6], idlen;
    int64_t level, opened, closed;
    int sev, cat, state = -1;
    const char *id = tokens(v, vl, 6, tok, tl, &idlen);
    if (!id)
        return -1;
    for (size_t i = 0; i < NSTATES; i++)
        if (field_is(tok[0], tl[0], complaint_states[i]))
            state = (int)i;
    if (state < 0 || tf_parse_i64(tok[1], tl[1], &level) != TF_OK || level < 0 || level > 2147483647 ||
        parse_enum(tok[2], tl[2], severity_name, &sev) || parse_enum(tok[3], tl[3], category_name, &cat) ||
        tf_parse_i64(tok[4], tl[4], &opened) != TF_OK || tf_parse_i64(tok[5], tl[5], &closed) != TF_OK ||
        copy_text(cp->id, sizeof(cp->id), id, idlen))
        return -1;
    cp->state = (tf_complaint_state)state;
    cp->level = (int)level;
    cp->severity = (tf_complaint_severity)sev;
    cp->category = (tf_complaint_category)cat;
    cp->opened_ms = opened;
    cp->closed_ms = closed;
    return 0;
}

/* "<due>|<id>" or ""; a malformed value leaves both zero. */
static void decode_due_ref(int64_t *due, char *id, size_t idsize, const char *v, size_t vl)
{
    const char *tok[1];
    size_t tl[1], rl;
    const char *rest = tokens(v, vl, 1, tok, tl, &rl);
    int64_t d;
    if (!rest || tf_parse_i64(tok[0], tl[0], &d) != TF_OK || copy_text(id, idsize, rest, rl))
        return;
    *due = d;
}

/* The next ','-separated item of [*p, end), or 0 at the end. */
static int next_item(const char **p, const char *end, const char **item, size_t *len)
{
    if (*p >= end)
        return 0;
    const char *q = memchr(*p, ',', (size_t)(end - *p));
    *item = *p;
    *len = q ? (size_t)(q - *p) : (size_t)(end - *p);
    *p = q ? q + 1 : end;
    return 1;
}

/* "<tag>,<tag>,..."; empty or overlong items are skipped. */
static void decode_tags(tf_customer_t *c, const char *v, size_t vl)
{
    const char *p = v, *item;
    size_t len;
    while (c->ntags < TF_EVENT_MAX_TAGS && next_item(&p, v + vl, &item, &len))
        if (len > 0 && !memchr(item, '\0', len) && !copy_text(c->tags[c->ntags], sizeof(c->tags[0]), item, len))
            c->ntags++;
}

/* "<name>,<name>,..."; empty or overlong names are skipped. */
static void decode_segments(tf_customer_t *c, const char *v, size_t vl)
{
    const char *p = v, *item;
    size_t len;
    while (c->nsegments < TF_RULES_MAX_SEGMENTS && next_item(&p, v + vl, &item, &len))
        if (len > 0 && !memchr(item, '\0', len) &&
            !copy_text(c->segments[c->nsegments], sizeof(c->segments[0]), item, len))
            c->nsegments++;
}

/* "<channel>=<granted|withdrawn>@<ms>,..."; a malformed item is skipped. */
static void decode_consent(tf_customer_t *c, const char *v, size_t vl)
{
    const char *p = v, *item;
    size_t len;
    while (next_item(&p, v + vl, &item, &len)) {
        const char *eq = memchr(item, '=', len), *at = memchr(item, '@', len);
        tf_channel ch;
        int64_t ms;
        if (!eq || !at || at < eq || tf_channel_parse(item, (size_t)(eq - item), &ch) != TF_OK ||
            tf_parse_i64(at + 1, len - (size_t)(at + 1 - item), &ms) != TF_OK)
            continue;
        size_t sl = (size_t)(at - eq - 1);
        if (field_is(eq + 1, sl, "granted"))
            c->consent[ch] = TF_CONSENT_GRANTED;
        else if (field_is(eq + 1, sl, "withdrawn"))
            c->consent[ch] = TF_CONSENT_WITHDRAWN;
        else
            continue;
        c->consent_at_ms[ch] = ms;
    }
}

/* complaint_followup: "<slot>:<due>,..." into due[slot]; the format before 1.2,
 * "<due>|<complaint id>" (one follow-up), into *legacy_due and legacy_id. */
static void decode_complaint_followups(int64_t due[TF_MAX_COMPLAINTS], int64_t *legacy_due, char *legacy_id,
                                       size_t idsize, const char *v, size_t vl)
{
    size_t digits = 0;
    while (digits < vl && v[digits] >= '0' && v[digits] <= '9')
        digits++;
    if (digits < vl && v[digits] == '|') {
        decode_due_ref(legacy_due, legacy_id, idsize, v, vl);
        return;
    }
    const char *p = v, *item;
    size_t len;
    while (next_item(&p, v + vl, &item, &len)) {
        int64_t pair[2];
        if (split_i64(item, len, ':', pair, 2) == 0 && pair[0] >= 0 && pair[0] < TF_MAX_COMPLAINTS && pair[1] > 0)
            due[pair[0]] = pair[1];
    }
}

/* The single follow-up of a state written before 1.2 goes to its complaint (a
 * resolved one, remembered without its details when it was forgotten). */
static void adopt_legacy_followup(tf_customer_t *c, int64_t due, const char *id)
{
    if (due <= 0 || !id[0])
        return;
    for (size_t i = 0; i < c->ncomplaints; i++) {
        if (strcmp(c->complaint[i].id, id) == 0) {
            if (!c->complaint[i].followup_due_ms)
                c->complaint[i].followup_due_ms = due;
            return;
        }
    }
    if (c->ncomplaints == TF_MAX_COMPLAINTS)
        return;
    tf_complaint_t *k = &c->complaint[c->ncomplaints++];
    memset(k, 0, sizeof(*k));
    tf_strlcpy(k->id, id, sizeof(k->id));
    k->state = TF_COMPLAINT_RESOLVED;
    k->followup_due_ms = due;
}

/* "<base>:<v0>,...,<v11>": all or nothing. */
static void decode_spend_buckets(tf_customer_t *c, const char *v, size_t vl)
{
    const char *colon = memchr(v, ':', vl);
    int64_t base, b[TF_SPEND_BUCKETS];
    if (!colon || tf_parse_i64(v, (size_t)(colon - v), &base) != TF_OK ||
        split_i64(colon + 1, vl - (size_t)(colon - v) - 1, ',', b, TF_SPEND_BUCKETS))
        return;
    c->spend_base = base;
    memcpy(c->spend_buckets, b, sizeof(b));
}

/* "MM-DD" or "YYYY-MM-DD" (n parts) into out[]; "" and malformed leave zeros. */
static void decode_date(const char *v, size_t vl, int *out[], size_t n)
{
    int64_t p[3];
    if (vl == 0 || split_i64(v, vl, '-', p, n))
        return;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0 || p[i] > 99999)
            return;
    for (size_t i = 0; i < n; i++)
        *out[i] = (int)p[i];
}

/* "<ms>|<from>|<to>|<rule>"; a malformed entry is skipped. */
static void decode_history(tf_customer_t *c, size_t i, const char *v, size_t vl)
{
    char buf[128], *parts[4], *save = NULL;
    if (vl >= sizeof(buf))
        return;
    memcpy(buf, v, vl);
    buf[vl] = '\0';
    size_t n = 0;
    for (char *t = strtok_r(buf, "|", &save); t && n < 4; t = strtok_r(NULL, "|", &save))
        parts[n++] = t;
    /* Parsed aside and kept whole or not at all (found by fuzzing: half an entry
     * was written back as one that no longer decodes). */
    int64_t at;
    tf_stage from, to;
    if (n != 4 || tf_parse_i64(parts[0], strlen(parts[0]), &at) != TF_OK || tf_stage_parse(parts[1], &from) != TF_OK ||
        tf_stage_parse(parts[2], &to) != TF_OK)
        return;
    c->history[i].at_ms = at;
    c->history[i].from = from;
    c->history[i].to = to;
    tf_strlcpy(c->history[i].rule, parts[3], sizeof(c->history[i].rule));
    if (c->nhistory < i + 1)
        c->nhistory = i + 1;
}

/* The fields that are not plain numbers; 1 when f was one of them, -1 for a bad stage. */
static int decode_special(tf_store_doc_t *doc, const char *f, size_t fl, const char *v, size_t vl)
{
    tf_customer_t *c = &doc->customer;
    char name[32];
    if (field_is(f, fl, "stage")) {
        if (copy_text(name, sizeof(name), v, vl) || tf_stage_parse(name, &c->stage) != TF_OK)
            return -1;
    } else if (field_is(f, fl, "currency")) {
        copy_text(c->currency, sizeof(c->currency), v, vl);
    } else if (field_is(f, fl, "sat_a")) {
        c->sat_expectation_sum = to_double(v, vl);
    } else if (field_is(f, fl, "sat_b")) {
        c->sat_perception_sum = to_double(v, vl);
    } else if (field_is(f, fl, "sb")) {
        decode_spend_buckets(c, v, vl);
    } else if (field_is(f, fl, "tier")) {
        tf_tier t;
        if (!copy_text(name, sizeof(name), v, vl) && tf_tier_parse(name, &t) == TF_OK)
            c->tier = t;
    } else if (field_is(f, fl, "level")) {
        copy_text(c->level, sizeof(c->level), v, vl);
    } else if (field_is(f, fl, "birthday")) {
        int *parts[2] = {&c->birth_month, &c->birth_day};
        decode_date(v, vl, parts, 2);
    } else if (field_is(f, fl, "date")) {
        int *parts[3] = {&c->date_year, &c->date_month, &c->date_day};
        decode_date(v, vl, parts, 3);
    } else if (field_is(f, fl, "followup")) {
        decode_due_ref(&c->followup_due_ms, c->followup_order, sizeof(c->followup_order), v, vl);
    } else if (field_is(f, fl, "segments")) {
        decode_segments(c, v, vl);
    } else if (field_is(f, fl, "referred_by")) {
        copy_text(c->referred_by, sizeof(c->referred_by), v, vl);
    } else if (field_is(f, fl, "tags")) {
        c->ntags = 0;
        memset(c->tags, 0, sizeof(c->tags));
        decode_tags(c, v, vl);
    } else if (field_is(f, fl, "consent")) {
        decode_consent(c, v, vl);
    } else if (field_is(f, fl, "v")) {
        doc->version = to_i64(v, vl);
    } else if (field_is(f, fl, "ep")) {
        doc->epoch = to_i64(v, vl);
    } else {
        return 0;
    }
    return 1;
}

int tf_store_decode(tf_store_doc_t *doc, const char *const *fields, const size_t *flens,
                    const char *const *values, const size_t *vlens, size_t n)
{
    tf_customer_t *c = &doc->customer;
    /* Complaints land in their slots first and move up over unused or malformed ones
     * at the end, so ncomplaints never counts a hole. */
    tf_complaint_t cps[TF_MAX_COMPLAINTS];
    unsigned cp_valid = 0;
    int64_t cp_followup[TF_MAX_COMPLAINTS] = {0}, legacy_due = 0;
    char legacy_id[TF_REF_MAX + 1] = "";
    memset(doc, 0, sizeof(*doc));
    doc->exists = n > 0;
    for (size_t i = 0; i < n; i++) {
        const char *f = fields[i], *v = values[i];
        size_t fl = flens[i], vl = vlens[i];
        if (fl > 2 && f[1] == ':') {
            if (f[0] == 'o') {
                char tp[TF_STORE_TP_MAX];
                /* Found by fuzzing: a name with a NUL byte is no partition, and read
                 * as one it would not survive the next write. */
                if (!memchr(f + 2, '\0', fl - 2) && !copy_text(tp, sizeof(tp), f + 2, fl - 2))
                    tf_store_doc_set_watermark(doc, tp, to_i64(v, vl));
            } else if (f[0] == 'h') {
                if (fl == 3 && f[2] >= '0' && f[2] < '0' + TF_STAGE_HISTORY)
                    decode_history(c, (size_t)(f[2] - '0'), v, vl);
            } else if (f[0] == 'n') {
                tf_event_kind k;
                if (tf_event_kind_parse(f + 2, fl - 2, &k) == TF_OK)
                    c->counts[k] = to_i64(v, vl);
            } else if (f[0] == 't') {
                for (int t = 0; t < TF_TIMER__COUNT; t++)
                    if (field_is(f + 2, fl - 2, timer_name(t)))
                        c->due[t] = to_i64(v, vl);
            }
            continue;
        }
        if (fl == 4 && f[0] == 'c' && f[1] == 'p' && f[2] == ':' && f[3] >= '0' && f[3] < '0' + TF_MAX_COMPLAINTS) {
            size_t slot = (size_t)(f[3] - '0');
            memset(&cps[slot], 0, sizeof(cps[slot]));
            if (vl && decode_complaint(&cps[slot], v, vl) == 0)
                cp_valid |= 1u << slot;
            else
                cp_valid &= ~(1u << slot);
            continue;
        }
        if (field_is(f, fl, "complaint_followup")) {
            decode_complaint_followups(cp_followup, &legacy_due, legacy_id, sizeof(legacy_id), v, vl);
            continue;
        }
#define X(name, member)                 \
    if (field_is(f, fl, name)) {        \
        c->member = to_i64(v, vl);      \
        continue;                       \
    }
        I64_FIELDS(X)
#undef X
#define X(name, member)                 \
    if (field_is(f, fl, name)) {        \
        c->member = to_int(v, vl);      \
        continue;                       \
    }
        INT_FIELDS(X)
#undef X
        if (decode_special(doc, f, fl, v, vl) < 0)
            return TF_EINVAL;
    }
    for (size_t slot = 0; slot < TF_MAX_COMPLAINTS; slot++) {
        if (cp_valid & (1u << slot)) {
            cps[slot].followup_due_ms = cp_followup[slot];
            c->complaint[c->ncomplaints++] = cps[slot];
        }
    }
    adopt_legacy_followup(c, legacy_due, legacy_id);
    return TF_OK;
}
