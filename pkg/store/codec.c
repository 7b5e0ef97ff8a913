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
 *   campaign (text) and campaign_at, the last campaign touched; exit_reason (text)
 *   and exit_at, the reason of the latest exit touchpoint,
 *   ivl_n, ivl_mean, ivl_m2 (reals, "%.17g"): the purchase intervals in days
 *   (count, mean, sum of squared deviations), next_purchase (expected ms) and
 *   next_conf (its confidence 0..1, real),
 *   replenish_done and overdue_done (the expected dates reminded and signalled),
 *   fav: the favourite items as "<qty>*<sku>" joined by ',', most bought first,
 *   pref: the preferred-channel scores as "<score>*<channel>" ("%.17g") joined by
 *   ',', highest first, as of pref_at; in both a name's '\' and ',' are escaped
 *   with a '\' (a SKU or a channel may hold either), "" when none,
 *   preferred_channel (derived from pref, for readers; ignored when decoding),
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
    X("segments_fp", segments_fp)                  \
    X("campaign_at", campaign_ms)                  \
    X("exit_at", exit_reason_ms)                   \
    X("ivl_n", intervals)                          \
    X("next_purchase", next_purchase_ms)           \
    X("replenish_done", replenish_done_ms)         \
    X("overdue_done", overdue_done_ms)             \
    X("pref_at", channel_scores_at_ms)

/* Reals, "%.17g": it round-trips every double, so a decoded state rules as the
 * one encoded (the same input gives the same output whatever the batches). */
#define REAL_FIELDS(X)                             \
    X("ivl_mean", interval_mean_days)              \
    X("ivl_m2", interval_m2)                       \
    X("next_conf", next_purchase_confidence)

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

/* A name with its length, so that matching one is a compare of lengths first. */
typedef struct {
    const char *s;
    size_t len;
} name_t;
#define NAME(s) {s, sizeof(s) - 1}

static const name_t kind_fields[TF_KIND__COUNT] = {
    NAME("n:web_visit"), NAME("n:call"), NAME("n:purchase"), NAME("n:refund"), NAME("n:complaint"),
    NAME("n:complaint_update"), NAME("n:survey"), NAME("n:referral"), NAME("n:profile"), NAME("n:email"),
    NAME("n:social"), NAME("n:store_visit"), NAME("n:event_attendance"), NAME("n:contract_end"),
    NAME("n:unsubscribe"),
};
static const name_t timer_fields[TF_TIMER__COUNT] = {
    NAME("t:review"), NAME("t:birthday"), NAME("t:festival"), NAME("t:followup"), NAME("t:checkin"),
    NAME("t:anniversary"), NAME("t:date"), NAME("t:complaint_followup"), NAME("t:sla"), NAME("t:segment"),
    NAME("t:replenishment"), NAME("t:overdue"),
};

/* ---- encoding ----
 *
 * Values are written straight into the arena without printf (a commit encodes two
 * documents per customer), except the reals, which keep their printf formats. */

typedef struct {
    tf_store_fields *out;
    int err;
    int sparse; /* leave out fields at their default */
} enc_t;

/* The one field written even when "" or "0" (it tells a customer from an empty
 * hash); told apart by its address. */
static const char stage_field[] = "stage";

/* The derived figures, whose "none" is -1; told apart by their address. */
static const char satisfaction_field[] = "satisfaction", nps_field[] = "nps", mean_interval_field[] = "mean_interval_ms";
/* Derived for readers too, but text: "" is its "none". */
static const char preferred_channel_field[] = "preferred_channel";

static int is_derived(const char *field)
{
    return field == satisfaction_field || field == nps_field || field == mean_interval_field;
}

/* What a value reads back as when left out. */
typedef enum { V_NUMBER = 0, V_TEXT } value_kind;

/* A field at its default: "" for text (a name "0" or "-1" is a name); "" or "0" for
 * a number; -1 too for the derived figures. */
static int is_default(const char *field, const char *v, size_t len, value_kind kind)
{
    if (field == stage_field)
        return 0;
    if (len == 0)
        return 1;
    if (kind == V_TEXT)
        return 0;
    if (len == 1 && v[0] == '0')
        return 1;
    return is_derived(field) && ((len == 2 && v[0] == '-' && v[1] == '1') || (len == 5 && memcmp(v, "-1.00", 5) == 0));
}

static void put_value(enc_t *e, const char *field, const char *v, size_t len, size_t mark, value_kind kind)
{
    tf_store_fields *o = e->out;
    if (e->sparse && is_default(field, v, len, kind)) {
        o->used = mark; /* give the room back */
        return;
    }
    o->field[o->n] = field;
    o->value[o->n] = v;
    o->vlen[o->n] = len;
    o->n++;
}

/* A value being written at the end of the arena: it starts at s, p is the next
 * byte, or NULL once the value did not fit (end is the byte kept for its NUL). */
typedef struct {
    char *s, *p, *end;
} val_t;

static val_t val_begin(enc_t *e)
{
    tf_store_fields *o = e->out;
    char *s = o->arena + o->used;
    val_t v = {s, o->used < sizeof(o->arena) ? s : NULL, o->arena + sizeof(o->arena) - 1};
    return v;
}

static void cat(val_t *v, const char *s, size_t n)
{
    if (v->p && (size_t)(v->end - v->p) >= n) {
        memcpy(v->p, s, n);
        v->p += n;
    } else {
        v->p = NULL;
    }
}

static void cat_ch(val_t *v, char ch) { cat(v, &ch, 1); }
static void cat_str(val_t *v, const char *s) { cat(v, s, strlen(s)); }

/* Decimal digits of u: from its bit length, corrected by one compare. */
static size_t ndigits(uint64_t u)
{
    static const uint64_t pow10[20] = {
        UINT64_C(1), UINT64_C(10), UINT64_C(100), UINT64_C(1000), UINT64_C(10000), UINT64_C(100000),
        UINT64_C(1000000), UINT64_C(10000000), UINT64_C(100000000), UINT64_C(1000000000),
        UINT64_C(10000000000), UINT64_C(100000000000), UINT64_C(1000000000000), UINT64_C(10000000000000),
        UINT64_C(100000000000000), UINT64_C(1000000000000000), UINT64_C(10000000000000000),
        UINT64_C(100000000000000000), UINT64_C(1000000000000000000), UINT64_C(10000000000000000000),
    };
    size_t t = (size_t)(64 - __builtin_clzll(u | 1)) * 1233 >> 12; /* 1233 / 4096 ~ log10(2) */
    return t + 1 - ((u | 1) < pow10[t]);
}

/* x in decimal, as "%lld" (and "%0<width>d": zeros between sign and digits up to
 * width); the magnitude is taken unsigned, so INT64_MIN needs no special case. */
static void cat_dec(val_t *v, int64_t x, size_t width)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    uint64_t u = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    size_t digits = ndigits(u), sign = x < 0, n = sign + digits;
    size_t zeros = width > n ? width - n : 0;
    n += zeros;
    if (!v->p || (size_t)(v->end - v->p) < n) {
        v->p = NULL;
        return;
    }
    if (sign)
        v->p[0] = '-';
    memset(v->p + sign, '0', zeros);
    char *q = v->p + n;
    for (; u >= 100; u /= 100)
        memcpy(q -= 2, pairs + 2 * (u % 100), 2);
    if (u >= 10)
        memcpy(q - 2, pairs + 2 * u, 2);
    else
        q[-1] = (char)('0' + u);
    v->p += n;
}

static void cat_i64(val_t *v, int64_t x) { cat_dec(v, x, 0); }

/* Ends the value: its text, taken from the arena, or NULL (and e->err). */
static const char *val_end(enc_t *e, val_t *v, size_t *len)
{
    if (!v->p) {
        e->err = 1;
        return NULL;
    }
    *v->p = '\0';
    *len = (size_t)(v->p - v->s);
    e->out->used += *len + 1;
    return v->s;
}

static void put_val_kind(enc_t *e, const char *field, val_t *v, value_kind kind)
{
    tf_store_fields *o = e->out;
    size_t len = 0, mark = o->used;
    if (!field || o->n == TF_STORE_MAX_FIELDS) {
        e->err = 1;
        return;
    }
    const char *s = val_end(e, v, &len);
    if (s)
        put_value(e, field, s, len, mark, kind);
}

static void put_val(enc_t *e, const char *field, val_t *v) { put_val_kind(e, field, v, V_NUMBER); }

/* Text of at most max bytes (it may lack a NUL at max). */
static void put_text(enc_t *e, const char *field, const char *s, size_t max)
{
    val_t v = val_begin(e);
    cat(&v, s, strnlen(s, max));
    put_val_kind(e, field, &v, V_TEXT);
}

static void put_i64(enc_t *e, const char *field, int64_t x)
{
    tf_store_fields *o = e->out;
    /* At its default, most of a document: nothing to write, but fail as writing
     * "0" or "-1" would. */
    if (e->sparse && (x == 0 || (x == -1 && is_derived(field)))) {
        if (!field || o->n == TF_STORE_MAX_FIELDS || sizeof(o->arena) - o->used < (x ? 3u : 2u))
            e->err = 1;
        return;
    }
    val_t v = val_begin(e);
    cat_i64(&v, x);
    put_val(e, field, &v);
}

/* A real, in its printf format. */
static void put_real(enc_t *e, const char *field, const char *fmt, double x)
{
    tf_store_fields *o = e->out;
    size_t room = sizeof(o->arena) - o->used, mark = o->used;
    if (o->n == TF_STORE_MAX_FIELDS) {
        e->err = 1;
        return;
    }
    int n = snprintf(o->arena + o->used, room, fmt, x);
    if (n < 0 || (size_t)n >= room) {
        e->err = 1;
        return;
    }
    o->used += (size_t)n + 1;
    put_value(e, field, o->arena + mark, (size_t)n, mark, V_NUMBER);
}

/* n strings of stride bytes each (a NUL missing at stride is fine) joined by ','
 * into buf, cut at bufsize - 1 bytes; the length. */
static size_t join(char *buf, size_t bufsize, const char *items, size_t stride, size_t n)
{
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = items + i * stride;
        size_t len = strnlen(s, stride);
        if (i && at < bufsize - 1)
            buf[at++] = ',';
        if (len > bufsize - 1 - at)
            len = bufsize - 1 - at;
        memcpy(buf + at, s, len);
        at += len;
    }
    buf[at] = '\0';
    return at;
}

static const char *or_none(const char *name) { return name ? name : "none"; }

/* s (at most max bytes) as an item of a ','-joined list: '\' and ',' escaped. */
static void cat_escaped(val_t *v, const char *s, size_t max)
{
    size_t len = strnlen(s, max), run = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ',' && s[i] != '\\')
            continue;
        cat(v, s + run, i - run);
        cat_ch(v, '\\');
        cat_ch(v, s[i]);
        run = i + 1;
    }
    cat(v, s + run, len - run);
}

/* fav: "<qty>*<sku>,..."; pref: "<score>*<channel>,..." */
static void put_insight_lists(enc_t *e, const tf_customer_t *c)
{
    val_t v = val_begin(e);
    for (size_t i = 0; i < c->nfavourites && i < TF_FAVOURITES; i++) {
        if (i)
            cat_ch(&v, ',');
        cat_i64(&v, c->favourites[i].qty);
        cat_ch(&v, '*');
        cat_escaped(&v, c->favourites[i].sku, sizeof(c->favourites[i].sku));
    }
    put_val(e, "fav", &v);
    v = val_begin(e);
    for (size_t i = 0; i < c->nchannel_scores && i < TF_CHANNEL_SCORES; i++) {
        char num[40];
        int n = snprintf(num, sizeof(num), "%.17g", c->channel_scores[i].score);
        if (i)
            cat_ch(&v, ',');
        cat(&v, num, n > 0 && (size_t)n < sizeof(num) ? (size_t)n : 0);
        cat_ch(&v, '*');
        cat_escaped(&v, c->channel_scores[i].name, sizeof(c->channel_scores[i].name));
    }
    put_val(e, "pref", &v);
    const char *preferred = tf_customer_preferred_channel(c);
    put_text(e, preferred_channel_field, preferred ? preferred : "", TF_EVENT_SHORT_MAX + 1);
}

/* "<state>|<level>|<severity>|<category>|<opened>|<closed>|<id>" */
static void put_complaint(enc_t *e, size_t slot, const tf_complaint_t *cp)
{
    val_t v = val_begin(e);
    cat_str(&v, (unsigned)cp->state < NSTATES ? complaint_states[cp->state] : "?");
    cat_ch(&v, '|');
    cat_i64(&v, cp->level);
    cat_ch(&v, '|');
    cat_str(&v, or_none(tf_complaint_severity_name(cp->severity)));
    cat_ch(&v, '|');
    cat_str(&v, or_none(tf_complaint_category_name(cp->category)));
    cat_ch(&v, '|');
    cat_i64(&v, cp->opened_ms);
    cat_ch(&v, '|');
    cat_i64(&v, cp->closed_ms);
    cat_ch(&v, '|');
    cat(&v, cp->id, strnlen(cp->id, sizeof(cp->id)));
    put_val(e, complaint_fields[slot], &v);
}

static int encode(const tf_store_doc_t *doc, tf_store_fields *out, int sparse)
{
    const tf_customer_t *c = &doc->customer;
    enc_t e = {out, 0, sparse};
    val_t v;
    out->n = 0;
    out->used = 0;
    put_text(&e, stage_field, tf_stage_name(c->stage), 16);
#define X(name, member) put_i64(&e, name, c->member);
    I64_FIELDS(X)
#undef X
#define X(name, member) put_i64(&e, name, c->member);
    INT_FIELDS(X)
#undef X
    put_text(&e, "currency", c->currency, sizeof(c->currency));
    /* Without surveys the figures are at their defaults: skip the float formatting. */
    if (!sparse || c->surveys_sat) {
        put_real(&e, "sat_a", "%.17g", c->sat_expectation_sum);
        put_real(&e, "sat_b", "%.17g", c->sat_perception_sum);
    }
    for (int k = 0; k < TF_KIND__COUNT; k++)
        put_i64(&e, kind_fields[k].s, c->counts[k]);
    if (!sparse || c->surveys_sat)
        put_real(&e, satisfaction_field, "%.2f", tf_customer_satisfaction(c));
    put_i64(&e, mean_interval_field, tf_customer_mean_interval_ms(c));
    if (!sparse || c->nps_count)
        put_real(&e, nps_field, "%.2f", tf_customer_nps_mean(c));

    v = val_begin(&e);
    cat_i64(&v, c->spend_base);
    for (int i = 0; i < TF_SPEND_BUCKETS; i++) {
        cat_ch(&v, i ? ',' : ':');
        cat_i64(&v, c->spend_buckets[i]);
    }
    put_val(&e, "sb", &v);
    const char *tier = tf_tier_name(c->tier);
    put_text(&e, "tier", tier ? tier : "", 16);
    put_text(&e, "level", c->level, sizeof(c->level));
    v = val_begin(&e);
    if (c->birth_month || c->birth_day) {
        cat_dec(&v, c->birth_month, 2);
        cat_ch(&v, '-');
        cat_dec(&v, c->birth_day, 2);
    }
    put_val(&e, "birthday", &v);
    v = val_begin(&e);
    if (c->date_year || c->date_month || c->date_day) {
        cat_dec(&v, c->date_year, 4);
        cat_ch(&v, '-');
        cat_dec(&v, c->date_month, 2);
        cat_ch(&v, '-');
        cat_dec(&v, c->date_day, 2);
    }
    put_val(&e, "date", &v);
    v = val_begin(&e);
    if (c->followup_due_ms || c->followup_order[0]) {
        cat_i64(&v, c->followup_due_ms);
        cat_ch(&v, '|');
        cat(&v, c->followup_order, strnlen(c->followup_order, sizeof(c->followup_order)));
    }
    put_val(&e, "followup", &v);
    v = val_begin(&e);
    for (size_t i = 0, any = 0; i < c->ncomplaints && i < TF_MAX_COMPLAINTS; i++) {
        if (c->complaint[i].followup_due_ms) {
            if (any++)
                cat_ch(&v, ',');
            cat_i64(&v, (int64_t)i);
            cat_ch(&v, ':');
            cat_i64(&v, c->complaint[i].followup_due_ms);
        }
    }
    put_val(&e, "complaint_followup", &v);
    put_text(&e, "referred_by", c->referred_by, sizeof(c->referred_by));
    /* Lists of names are joined aside and cut to these buffers, which only names
     * without their NUL can fill. */
    char list[TF_MAX_COMPLAINTS * 24 + (TF_EVENT_MAX_TAGS * (TF_EVENT_TAG_MAX + 1))];
    size_t ntags = c->ntags < TF_EVENT_MAX_TAGS ? c->ntags : TF_EVENT_MAX_TAGS;
    put_text(&e, "tags", list, join(list, sizeof(list), c->tags[0], sizeof(c->tags[0]), ntags));
    v = val_begin(&e);
    for (int i = 0, any = 0; i < TF_CHANNEL__COUNT; i++) {
        if (c->consent[i] == TF_CONSENT_GRANTED || c->consent[i] == TF_CONSENT_WITHDRAWN) {
            if (any++)
                cat_ch(&v, ',');
            cat_str(&v, tf_channel_name((tf_channel)i));
            cat_ch(&v, '=');
            cat_str(&v, tf_consent_name(c->consent[i]));
            cat_ch(&v, '@');
            cat_i64(&v, c->consent_at_ms[i]);
        }
    }
    put_val(&e, "consent", &v);
    char names[TF_RULES_MAX_SEGMENTS * TF_RULES_NAME_MAX];
    size_t nseg = c->nsegments < TF_RULES_MAX_SEGMENTS ? c->nsegments : TF_RULES_MAX_SEGMENTS;
    put_text(&e, "segments", names, join(names, sizeof(names), c->segments[0], sizeof(c->segments[0]), nseg));
    put_text(&e, "campaign", c->campaign, sizeof(c->campaign));
    put_text(&e, "exit_reason", c->exit_reason, sizeof(c->exit_reason));
    /* Zero is the default of each real: no formatting for what sparse leaves out. */
#define X(name, member)                      \
    if (!sparse || c->member != 0)           \
        put_real(&e, name, "%.17g", c->member);
    REAL_FIELDS(X)
#undef X
    put_insight_lists(&e, c);

    for (size_t i = 0; i < TF_MAX_COMPLAINTS; i++) {
        if (i < c->ncomplaints)
            put_complaint(&e, i, &c->complaint[i]);
        else
            put_text(&e, complaint_fields[i], "", 0);
    }
    for (int t = 0; t < TF_TIMER__COUNT; t++)
        put_i64(&e, timer_fields[t].s, c->due[t]);

    for (size_t i = 0; i < c->nhistory && i < TF_STAGE_HISTORY; i++) {
        v = val_begin(&e);
        cat_i64(&v, c->history[i].at_ms);
        cat_ch(&v, '|');
        cat_str(&v, tf_stage_name(c->history[i].from));
        cat_ch(&v, '|');
        cat_str(&v, tf_stage_name(c->history[i].to));
        cat_ch(&v, '|');
        cat(&v, c->history[i].rule, strnlen(c->history[i].rule, sizeof(c->history[i].rule)));
        put_val(&e, history_fields[i], &v);
    }
    for (size_t i = 0; i < doc->nwatermarks && i < TF_STORE_MAX_WATERMARKS; i++) {
        /* The name "o:<tp>" goes into the arena too, ahead of its value. */
        size_t len;
        v = val_begin(&e);
        cat(&v, "o:", 2);
        cat(&v, doc->watermarks[i].tp, strnlen(doc->watermarks[i].tp, sizeof(doc->watermarks[i].tp)));
        put_i64(&e, val_end(&e, &v, &len), doc->watermarks[i].offset);
    }
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

/* The index of f among names[0..n), or -1. */
static int find_name(const name_t *names, int n, const char *f, size_t fl)
{
    for (int i = 0; i < n; i++)
        if (names[i].len == fl && memcmp(names[i].s, f, fl) == 0)
            return i;
    return -1;
}

/* tf_parse_i64, without its overflow checks for up to 18 digits (they cannot
 * overflow): nearly every number read. */
static int parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t neg = len && s[0] == '-';
    if (len - neg - 1 >= 18) /* no digits, or 19 and more */
        return tf_parse_i64(s, len, out);
    uint64_t v = 0;
    for (size_t i = neg; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9)
            return TF_EINVAL;
        v = v * 10 + d;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return TF_OK;
}

static int64_t to_i64(const char *v, size_t len)
{
    int64_t out = 0;
    return parse_i64(v, len, &out) == TF_OK ? out : 0;
}

static int to_int(const char *v, size_t len)
{
    int64_t out = 0;
    return parse_i64(v, len, &out) == TF_OK && out >= -2147483647 - 1 && out <= 2147483647 ? (int)out : 0;
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
        if (parse_i64(p, len, &out[k]) != TF_OK)
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
    if (state < 0 || parse_i64(tok[1], tl[1], &level) != TF_OK || level < 0 || level > 2147483647 ||
        parse_enum(tok[2], tl[2], severity_name, &sev) || parse_enum(tok[3], tl[3], category_name, &cat) ||
        parse_i64(tok[4], tl[4], &opened) != TF_OK || parse_i64(tok[5], tl[5], &closed) != TF_OK ||
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
    if (!rest || parse_i64(tok[0], tl[0], &d) != TF_OK || copy_text(id, idsize, rest, rl))
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
            parse_i64(at + 1, len - (size_t)(at + 1 - item), &ms) != TF_OK)
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

/* "<number>*<name>,..." with '\' and ',' of a name escaped by a '\' (see
 * cat_escaped): take gets each item whose name is 1 to namesize - 1 bytes without
 * a NUL; other items are skipped. */
typedef void (*item_fn)(tf_customer_t *c, const char *num, size_t numlen, const char *name, size_t namelen);

static void decode_escaped_items(tf_customer_t *c, const char *v, size_t vl, size_t namesize, item_fn take)
{
    const char *p = v, *end = v + vl;
    char name[TF_EVENT_SHORT_MAX + 1];
    if (namesize > sizeof(name))
        namesize = sizeof(name);
    while (p < end) {
        const char *num = p;
        while (p < end && *p != '*' && *p != ',')
            p++;
        size_t numlen = (size_t)(p - num), n = 0;
        int ok = p < end && *p == '*';
        if (ok)
            p++;
        while (p < end && *p != ',') {
            char ch = *p++;
            if (ch == '\\' && p < end)
                ch = *p++;
            if (ch == '\0' || n + 1 >= namesize)
                ok = 0;
            else
                name[n++] = ch;
        }
        if (p < end)
            p++; /* the ',' */
        if (ok && n > 0)
            take(c, num, numlen, name, n);
    }
}

static void take_favourite(tf_customer_t *c, const char *num, size_t numlen, const char *name, size_t namelen)
{
    int64_t qty;
    if (c->nfavourites >= TF_FAVOURITES || parse_i64(num, numlen, &qty) != TF_OK)
        return;
    tf_favourite_t *f = &c->favourites[c->nfavourites++];
    memcpy(f->sku, name, namelen);
    f->sku[namelen] = '\0';
    f->qty = qty;
}

static void take_channel_score(tf_customer_t *c, const char *num, size_t numlen, const char *name, size_t namelen)
{
    char buf[48], *end;
    if (c->nchannel_scores >= TF_CHANNEL_SCORES || numlen == 0 || numlen >= sizeof(buf))
        return;
    memcpy(buf, num, numlen);
    buf[numlen] = '\0';
    double score = strtod(buf, &end);
    if (end != buf + numlen)
        return; /* not a number: the item is malformed */
    tf_channel_score_t *s = &c->channel_scores[c->nchannel_scores++];
    memcpy(s->name, name, namelen);
    s->name[namelen] = '\0';
    s->score = score;
}

/* "<base>:<v0>,...,<v11>": all or nothing. */
static void decode_spend_buckets(tf_customer_t *c, const char *v, size_t vl)
{
    const char *colon = memchr(v, ':', vl);
    int64_t base, b[TF_SPEND_BUCKETS];
    if (!colon || parse_i64(v, (size_t)(colon - v), &base) != TF_OK ||
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

/* The stage named by [s, s + len), as tf_stage_parse reads a string; 0 or -1. */
static int stage_of(const char *s, size_t len, tf_stage *out)
{
    for (int i = 0; i < TF_STAGE__COUNT; i++) {
        if (field_is(s, len, tf_stage_name((tf_stage)i))) {
            *out = (tf_stage)i;
            return 0;
        }
    }
    return -1;
}

/* "<ms>|<from>|<to>|<rule>"; a malformed entry is skipped. Split as strtok_r split
 * it (up to a NUL, empty fields skipped, anything after the rule ignored), without
 * copying it first. */
static void decode_history(tf_customer_t *c, size_t i, const char *v, size_t vl)
{
    const char *tok[4], *p = v, *end;
    size_t tl[4], n = 0;
    if (vl >= 128) /* longer than any entry written */
        return;
    end = v + strnlen(v, vl);
    while (n < 4) {
        while (p < end && *p == '|')
            p++;
        if (p == end)
            break;
        const char *q = memchr(p, '|', (size_t)(end - p));
        tok[n] = p;
        p = q ? q : end;
        tl[n] = (size_t)(p - tok[n]);
        n++;
    }
    /* Parsed aside and kept whole or not at all (found by fuzzing: half an entry
     * was written back as one that no longer decodes). */
    int64_t at;
    tf_stage from, to;
    if (n != 4 || parse_i64(tok[0], tl[0], &at) != TF_OK || stage_of(tok[1], tl[1], &from) ||
        stage_of(tok[2], tl[2], &to))
        return;
    c->history[i].at_ms = at;
    c->history[i].from = from;
    c->history[i].to = to;
    size_t rl = tl[3] < sizeof(c->history[i].rule) ? tl[3] : sizeof(c->history[i].rule) - 1;
    memcpy(c->history[i].rule, tok[3], rl); /* cut as tf_strlcpy cut it */
    c->history[i].rule[rl] = '\0';
    if (c->nhistory < i + 1)
        c->nhistory = i + 1;
}

/* The fields without a prefix, each with what it decodes into. */
#define NAMED_FIELDS(S, X, I)                                                                             \
    S("stage", F_STAGE)                                                                                   \
    I64_FIELDS(X)                                                                                         \
    INT_FIELDS(I)                                                                                         \
    S("currency", F_CURRENCY) S("sat_a", F_SAT_A) S("sat_b", F_SAT_B) S("sb", F_SB) S("tier", F_TIER)     \
    S("level", F_LEVEL) S("birthday", F_BIRTHDAY) S("date", F_DATE) S("followup", F_FOLLOWUP)             \
    S("complaint_followup", F_COMPLAINT_FOLLOWUP) S("referred_by", F_REFERRED_BY) S("tags", F_TAGS)      \
    S("consent", F_CONSENT) S("segments", F_SEGMENTS) S("v", F_VERSION) S("ep", F_EPOCH)                  \
    S("satisfaction", F_DERIVED) S("mean_interval_ms", F_DERIVED) S("nps", F_DERIVED)                   \
    S("preferred_channel", F_DERIVED) S("fav", F_FAV) S("pref", F_PREF)                                   \
    SHORT_FIELDS(T) REAL_FIELDS(R)

/* Text of TF_EVENT_SHORT_MAX bytes at most. */
#define SHORT_FIELDS(X)                            \
    X("campaign", campaign)                        \
    X("exit_reason", exit_reason)

enum {
    F_I64, F_INT, F_STAGE, F_CURRENCY, F_SAT_A, F_SAT_B, F_SB, F_TIER, F_LEVEL, F_BIRTHDAY, F_DATE, F_FOLLOWUP,
    F_COMPLAINT_FOLLOWUP, F_REFERRED_BY, F_TAGS, F_CONSENT, F_SEGMENTS, F_VERSION, F_EPOCH, F_DERIVED,
    F_SHORT, F_REAL, F_FAV, F_PREF,
};

typedef struct {
    const char *name;
    uint8_t len, kind;
    uint16_t off; /* of the member, for F_I64 and F_INT */
} field_t;

_Static_assert(sizeof(tf_customer_t) <= UINT16_MAX, "field_t.off holds every member's offset");

#define S(name, kind) {name, sizeof(name) - 1, kind, 0},
#define X(name, member) {name, sizeof(name) - 1, F_I64, offsetof(tf_customer_t, member)},
#define I(name, member) {name, sizeof(name) - 1, F_INT, offsetof(tf_customer_t, member)},
#define T(name, member) {name, sizeof(name) - 1, F_SHORT, offsetof(tf_customer_t, member)},
#define R(name, member) {name, sizeof(name) - 1, F_REAL, offsetof(tf_customer_t, member)},
static const field_t named_fields[] = {NAMED_FIELDS(S, X, I)};
#undef S
#undef X
#undef I
#undef T
#undef R
#define NNAMED (sizeof(named_fields) / sizeof(named_fields[0]))

/* A byte hashed from a name's length, first and last byte, one per named_fields
 * entry: a name is found by a memchr over them and a compare or two, rather than
 * by comparing it with each name in turn (a hash holding a long value comes back
 * from Redis in any order, so no order helps). */
#define NAME_HASH(len, first, last)                                                            \
    ((uint8_t)(((uint32_t)(len) | (uint32_t)(unsigned char)(first) << 8 |                     \
                (uint32_t)(unsigned char)(last) << 16) * UINT32_C(0x27d4eb2f) >> 24))
#define S(name, kind) NAME_HASH(sizeof(name) - 1, (name)[0], (name)[sizeof(name) - 2]),
#define X(name, member) S(name, 0)
#define T(name, member) S(name, 0)
#define R(name, member) S(name, 0)
static const uint8_t named_hashes[NNAMED] = {NAMED_FIELDS(S, X, X)};
#undef S
#undef X
#undef T
#undef R

static const field_t *named_field(const char *f, size_t fl)
{
    if (fl == 0 || fl > 255)
        return NULL;
    uint8_t h = NAME_HASH(fl, f[0], f[fl - 1]);
    for (const uint8_t *p = named_hashes, *end = p + NNAMED; (p = memchr(p, h, (size_t)(end - p))); p++) {
        const field_t *d = &named_fields[p - named_hashes];
        if (d->len == fl && memcmp(d->name, f, fl) == 0)
            return d;
    }
    return NULL;
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
            int k;
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
                if ((k = find_name(kind_fields, TF_KIND__COUNT, f, fl)) >= 0)
                    c->counts[k] = to_i64(v, vl);
            } else if (f[0] == 't') {
                if ((k = find_name(timer_fields, TF_TIMER__COUNT, f, fl)) >= 0)
                    c->due[k] = to_i64(v, vl);
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
        const field_t *d = named_field(f, fl);
        char name[32];
        if (!d)
            continue; /* unknown (forward compatibility) */
        switch (d->kind) {
        case F_I64:
            *(int64_t *)((char *)c + d->off) = to_i64(v, vl);
            break;
        case F_INT:
            *(int *)((char *)c + d->off) = to_int(v, vl);
            break;
        case F_STAGE:
            if (copy_text(name, sizeof(name), v, vl) || tf_stage_parse(name, &c->stage) != TF_OK)
                return TF_EINVAL;
            break;
        case F_CURRENCY:
            copy_text(c->currency, sizeof(c->currency), v, vl);
            break;
        case F_SAT_A:
            c->sat_expectation_sum = to_double(v, vl);
            break;
        case F_SAT_B:
            c->sat_perception_sum = to_double(v, vl);
            break;
        case F_SB:
            decode_spend_buckets(c, v, vl);
            break;
        case F_TIER: {
            tf_tier t;
            if (!copy_text(name, sizeof(name), v, vl) && tf_tier_parse(name, &t) == TF_OK)
                c->tier = t;
            break;
        }
        case F_LEVEL:
            copy_text(c->level, sizeof(c->level), v, vl);
            break;
        case F_BIRTHDAY: {
            int *parts[2] = {&c->birth_month, &c->birth_day};
            decode_date(v, vl, parts, 2);
            break;
        }
        case F_DATE: {
            int *parts[3] = {&c->date_year, &c->date_month, &c->date_day};
            decode_date(v, vl, parts, 3);
            break;
        }
        case F_FOLLOWUP:
            decode_due_ref(&c->followup_due_ms, c->followup_order, sizeof(c->followup_order), v, vl);
            break;
        case F_COMPLAINT_FOLLOWUP:
            decode_complaint_followups(cp_followup, &legacy_due, legacy_id, sizeof(legacy_id), v, vl);
            break;
        case F_SEGMENTS:
            decode_segments(c, v, vl);
            break;
        case F_REFERRED_BY:
            copy_text(c->referred_by, sizeof(c->referred_by), v, vl);
            break;
        case F_TAGS:
            c->ntags = 0;
            memset(c->tags, 0, sizeof(c->tags));
            decode_tags(c, v, vl);
            break;
        case F_CONSENT:
            decode_consent(c, v, vl);
            break;
        case F_VERSION:
            doc->version = to_i64(v, vl);
            break;
        case F_EPOCH:
            doc->epoch = to_i64(v, vl);
            break;
        case F_DERIVED: /* for readers of the hash only */
            break;
        case F_SHORT: {
            char *dst = (char *)c + d->off;
            dst[0] = '\0';
            if (!memchr(v, '\0', vl))
                copy_text(dst, TF_EVENT_SHORT_MAX + 1, v, vl);
            break;
        }
        case F_REAL:
            *(double *)(void *)((char *)c + d->off) = to_double(v, vl);
            break;
        case F_FAV:
            c->nfavourites = 0;
            memset(c->favourites, 0, sizeof(c->favourites));
            decode_escaped_items(c, v, vl, sizeof(c->favourites[0].sku), take_favourite);
            break;
        case F_PREF:
            c->nchannel_scores = 0;
            memset(c->channel_scores, 0, sizeof(c->channel_scores));
            decode_escaped_items(c, v, vl, sizeof(c->channel_scores[0].name), take_channel_score);
            break;
        }
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
