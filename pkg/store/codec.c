/* The customer document as Redis hash fields.
 *
 * Fields (all values decimal text unless noted):
 *   stage (name), stage_since, first_seen, last_seen, purchases, first_purchase,
 *   last_purchase, spend, margin, refunded, foreign_purchases, currency (text),
 *   open_complaints, complaints, surveys_sat, sat_a, sat_b (real), nps_count, nps_sum,
 *   churned_count, n:<kind> per touchpoint kind,
 *   satisfaction, mean_interval_ms, nps (derived, for readers of the hash),
 *   h:0..h:7 the latest stage changes, newest first, as "<ms>|<from>|<to>|<rule>",
 *   o:<topic>/<partition> watermarks; v (version) and ep (epoch) are written by the
 *   commit script itself. */
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
    X("churned_count", churned_count)

static const char *const kind_fields[TF_KIND__COUNT] = {
    "n:web_visit", "n:call", "n:purchase", "n:refund", "n:complaint",
    "n:complaint_update", "n:survey", "n:referral", "n:profile", "n:email",
    "n:social", "n:store_visit", "n:event_attendance", "n:contract_end", "n:unsubscribe",
};

static void put(tf_store_fields *out, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void put(tf_store_fields *out, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->value_buf[out->n], sizeof(out->value_buf[0]), fmt, ap);
    va_end(ap);
    out->field[out->n++] = field;
}

void tf_store_encode(const tf_store_doc_t *doc, tf_store_fields *out)
{
    const tf_customer_t *c = &doc->customer;
    out->n = 0;
    put(out, "stage", "%s", tf_stage_name(c->stage));
#define X(name, member) put(out, name, "%lld", (long long)c->member);
    I64_FIELDS(X)
#undef X
    put(out, "currency", "%s", c->currency);
    put(out, "sat_a", "%.17g", c->sat_expectation_sum);
    put(out, "sat_b", "%.17g", c->sat_perception_sum);
    for (int k = 0; k < TF_KIND__COUNT; k++)
        put(out, kind_fields[k], "%lld", (long long)c->counts[k]);
    put(out, "satisfaction", "%.2f", tf_customer_satisfaction(c));
    put(out, "mean_interval_ms", "%lld", (long long)tf_customer_mean_interval_ms(c));
    put(out, "nps", "%.2f", tf_customer_nps_mean(c));
    static const char *const history_fields[TF_STAGE_HISTORY] = {"h:0", "h:1", "h:2", "h:3",
                                                                 "h:4", "h:5", "h:6", "h:7"};
    for (size_t i = 0; i < c->nhistory && i < TF_STAGE_HISTORY; i++)
        put(out, history_fields[i], "%lld|%s|%s|%s", (long long)c->history[i].at_ms, tf_stage_name(c->history[i].from),
            tf_stage_name(c->history[i].to), c->history[i].rule);
    for (size_t i = 0; i < doc->nwatermarks; i++) {
        snprintf(out->field_buf[i], sizeof(out->field_buf[i]), "o:%s", doc->watermarks[i].tp);
        put(out, out->field_buf[i], "%lld", (long long)doc->watermarks[i].offset);
    }
}

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

static double to_double(const char *v, size_t len)
{
    char buf[64];
    if (len >= sizeof(buf))
        return 0;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return strtod(buf, NULL);
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
    if (n != 4 || tf_parse_i64(parts[0], strlen(parts[0]), &c->history[i].at_ms) != TF_OK ||
        tf_stage_parse(parts[1], &c->history[i].from) != TF_OK || tf_stage_parse(parts[2], &c->history[i].to) != TF_OK)
        return;
    tf_strlcpy(c->history[i].rule, parts[3], sizeof(c->history[i].rule));
    if (c->nhistory < i + 1)
        c->nhistory = i + 1;
}

int tf_store_decode(tf_store_doc_t *doc, const char *const *fields, const size_t *flens,
                    const char *const *values, const size_t *vlens, size_t n)
{
    tf_customer_t *c = &doc->customer;
    memset(doc, 0, sizeof(*doc));
    doc->exists = n > 0;
    for (size_t i = 0; i < n; i++) {
        const char *f = fields[i], *v = values[i];
        size_t fl = flens[i], vl = vlens[i];
        if (fl > 2 && f[0] == 'o' && f[1] == ':') {
            char tp[TF_STORE_TP_MAX];
            if (fl - 2 >= sizeof(tp))
                continue;
            memcpy(tp, f + 2, fl - 2);
            tp[fl - 2] = '\0';
            tf_store_doc_set_watermark(doc, tp, to_i64(v, vl));
            continue;
        }
        if (fl == 3 && f[0] == 'h' && f[1] == ':' && f[2] >= '0' && f[2] < '0' + TF_STAGE_HISTORY) {
            decode_history(c, (size_t)(f[2] - '0'), v, vl);
            continue;
        }
        if (fl > 2 && f[0] == 'n' && f[1] == ':') {
            tf_event_kind k;
            if (tf_event_kind_parse(f + 2, fl - 2, &k) == TF_OK)
                c->counts[k] = to_i64(v, vl);
            continue;
        }
#define X(name, member)                 \
    if (field_is(f, fl, name)) {        \
        c->member = to_i64(v, vl);      \
        continue;                       \
    }
        I64_FIELDS(X)
#undef X
        if (field_is(f, fl, "stage")) {
            char name[16];
            if (vl >= sizeof(name))
                return TF_EINVAL;
            memcpy(name, v, vl);
            name[vl] = '\0';
            if (tf_stage_parse(name, &c->stage) != TF_OK)
                return TF_EINVAL;
        } else if (field_is(f, fl, "currency")) {
            if (vl < sizeof(c->currency)) {
                memcpy(c->currency, v, vl);
                c->currency[vl] = '\0';
            }
        } else if (field_is(f, fl, "sat_a")) {
            c->sat_expectation_sum = to_double(v, vl);
        } else if (field_is(f, fl, "sat_b")) {
            c->sat_perception_sum = to_double(v, vl);
        } else if (field_is(f, fl, "v")) {
            doc->version = to_i64(v, vl);
        } else if (field_is(f, fl, "ep")) {
            doc->epoch = to_i64(v, vl);
        }
    }
    return TF_OK;
}
