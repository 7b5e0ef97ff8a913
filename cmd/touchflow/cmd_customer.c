/* `touchflow customer get ID`: a customer's state hash as one JSON object.
 *
 * Generic over the hash's fields, so it shows whatever the daemon wrote (also fields
 * this CLI does not know yet): values that are decimal integers become JSON integers,
 * decimal numbers become JSON numbers, the rest strings. The structured fields of
 * pkg/store/codec.c are shown readably:
 *   "o:<topic>/<partition>" watermarks under "offsets", "n:<kind>" counts under
 *   "counts";
 *   the stage changes "h:0".."h:9" under "stage_history" (newest first) as
 *   {"at", "at_ms", "from", "to", "rule"};
 *   the scheduled "t:<name>" timers under "timers" as {"name", "due", "due_ms"},
 *   earliest first; unscheduled ones ("0") are left out;
 *   the complaints remembered, "cp:0".."cp:9", under "complaint_details" in slot
 *   order ("complaints" is the count) as {"id", "state", "level", "severity",
 *   "category", "opened_ms", "closed_ms"} plus "opened" / "closed" as RFC 3339 when
 *   set; unused slots ("") are left out;
 *   "sb" as "spend_buckets": {"base", "buckets"} (oldest first);
 *   "followup" as {"due", "due_ms", "order"}, left out when none is pending;
 *   "complaint_followup" ("<slot>:<due>,...") as "followup_due" / "followup_due_ms"
 *   in the complaint_details entry of each slot (a value written before 1.2,
 *   "<due>|<id>", as {"due", "due_ms", "complaint"});
 *   "tags" and "segments" ("a,b") as arrays of strings; "consent"
 *   ("<channel>=<state>@<ms>,...") as {"<channel>": {"consent", "at", "at_ms"}}.
 * "timers" and "complaint_details" are absent when empty. A value that does not
 * parse is shown as it is under its own field name, like any unknown field.
 * What the rules learn of the customer (pkg/lifecycle/insight.c) is read by the
 * codec itself (tf_store_decode), not parsed again here:
 *   "fav" as "favourite_items" [{"sku", "qty"}] (most bought first);
 *   "pref" and "pref_at" as "channel_scores" {"at", "at_ms", "scores":
 *   [{"channel", "score"}]} (highest first; "preferred_channel" is the first),
 *   absent when empty;
 *   "ivl_n", "ivl_mean", "ivl_m2", "next_purchase", "next_conf" as
 *   "next_purchase" {"expected", "expected_ms", "confidence", "intervals",
 *   "mean_interval_days", "sd_interval_days", "rhythm"} when there is an interval
 *   ("rhythm": whether the rules of the configuration given count it as one). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>
#include <jansson.h>

#include "cli.h"
#include "store/slot.h"
#include "store/store.h"

/* The stage-history fields h:0..h:9 the daemon may write (it keeps 8 today). */
#define TF_STAGE_HISTORY_SLOTS 10
/* The complaint slots cp:0..cp:9 likewise. */
#define TF_COMPLAINT_SLOTS 10

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Canonical decimal integer only ("-?(0|[1-9][0-9]*)", not "-0"), so text such as
 * "007" keeps its leading zeros as a string. */
static int is_int_text(const char *s, size_t n)
{
    size_t i = (n && s[0] == '-') ? 1 : 0;
    if (i == n || (s[i] == '0' && (n - i > 1 || i == 1)))
        return 0;
    for (; i < n; i++)
        if (!is_digit(s[i]))
            return 0;
    return 1;
}

/* A JSON number with a fraction or an exponent: "-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?". */
static int is_real_text(const char *s, size_t n)
{
    size_t i = (n && s[0] == '-') ? 1 : 0, start;
    int frac_or_exp = 0;
    if (i == n || !is_digit(s[i]) || (s[i] == '0' && i + 1 < n && is_digit(s[i + 1])))
        return 0;
    while (i < n && is_digit(s[i]))
        i++;
    if (i < n && s[i] == '.') {
        for (start = ++i; i < n && is_digit(s[i]); i++)
            ;
        if (i == start)
            return 0;
        frac_or_exp = 1;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (start = i; i < n && is_digit(s[i]); i++)
            ;
        if (i == start)
            return 0;
        frac_or_exp = 1;
    }
    return i == n && frac_or_exp;
}

/* Redis holds bytes; JSON holds text. Invalid UTF-8 shows as U+FFFD rather than
 * failing the whole command. Returns a new buffer (length in *outlen) or NULL. */
static char *utf8_repair(const char *s, size_t n, size_t *outlen)
{
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len && i + len <= n && tf_utf8_valid(s + i, len)) {
            memcpy(o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    *outlen = (size_t)(o - out);
    return out;
}

static json_t *text_value(const char *s, size_t n)
{
    size_t len;
    char *fixed;
    json_t *v;
    if (tf_utf8_valid(s, n))
        return json_stringn(s, n);
    if (!(fixed = utf8_repair(s, n, &len)))
        return NULL;
    v = json_stringn(fixed, len);
    free(fixed);
    return v;
}

static json_t *typed_value(const char *s, size_t n)
{
    int64_t i;
    /* Redis bulk strings are NUL-terminated by hiredis, so strtod may read s. */
    if (is_int_text(s, n) && tf_parse_i64(s, n, &i) == TF_OK)
        return json_integer((json_int_t)i);
    if (is_real_text(s, n)) {
        double d = strtod(s, NULL);
        if (isfinite(d))
            return json_real(d);
    }
    return text_value(s, n);
}

/* obj[key] = v (v taken, also on failure); returns 0 or -1. */
static int set_field(json_t *obj, const char *key, size_t keylen, json_t *v)
{
    size_t len;
    char *fixed;
    int rc;
    if (!v)
        return -1;
    if (tf_utf8_valid(key, keylen))
        return json_object_setn_new(obj, key, keylen, v);
    if (!(fixed = utf8_repair(key, keylen, &len))) {
        json_decref(v);
        return -1;
    }
    rc = json_object_setn_new(obj, fixed, len, v);
    free(fixed);
    return rc;
}

/* "h:N" = "<ms>|<from>|<to>|<rule>" (newest first) as {"at", "at_ms", "from", "to", "rule"};
 * NULL when malformed. */
static json_t *history_entry(const char *v, size_t len)
{
    char buf[160], *parts[4], *save = NULL, at[TF_TIME_RFC3339_LEN];
    size_t n = 0;
    int64_t ms;
    if (len >= sizeof(buf))
        return NULL;
    memcpy(buf, v, len);
    buf[len] = '\0';
    for (char *t = strtok_r(buf, "|", &save); t && n < 4; t = strtok_r(NULL, "|", &save))
        parts[n++] = t;
    if (n != 4 || tf_parse_i64(parts[0], strlen(parts[0]), &ms) != TF_OK)
        return NULL;
    tf_time_format_rfc3339(ms, at);
    return json_pack("{s:s, s:I, s:s, s:s, s:s}", "at", at, "at_ms", (json_int_t)ms, "from", parts[1], "to", parts[2],
                     "rule", parts[3]);
}

/* The first k '|'-separated parts of v[0..len) into part[] (NUL-terminated in buf),
 * and the rest, which may hold '|', as part[k]. 0, or -1 when there are fewer. */
static int split_bar(const char *v, size_t len, char *buf, size_t bufsize, char **part, size_t k)
{
    if (len >= bufsize)
        return -1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    char *p = buf;
    for (size_t i = 0; i < k; i++) {
        char *q = strchr(p, '|');
        if (!q)
            return -1;
        *q = '\0';
        part[i] = p;
        p = q + 1;
    }
    part[k] = p;
    return 0;
}

/* A canonical decimal integer (see is_int_text); 0 or -1. */
static int parse_ms(const char *s, int64_t *ms)
{
    size_t n = strlen(s);
    return is_int_text(s, n) && tf_parse_i64(s, n, ms) == TF_OK ? 0 : -1;
}

/* obj[key + "_ms"] = ms and, when ms is set, obj[key] = its RFC 3339 text. */
static int set_time(json_t *obj, const char *key, int64_t ms)
{
    char at[TF_TIME_RFC3339_LEN], name[32];
    snprintf(name, sizeof(name), "%s_ms", key);
    if (json_object_set_new(obj, name, json_integer((json_int_t)ms)) != 0)
        return -1;
    if (ms == 0)
        return 0;
    tf_time_format_rfc3339(ms, at);
    return json_object_set_new(obj, key, json_string(at));
}

/* "cp:N" = "<state>|<level>|<severity>|<category>|<opened>|<closed>|<id>"; NULL when malformed. */
static json_t *complaint_entry(const char *v, size_t len)
{
    char buf[512], *part[7];
    int64_t level, opened, closed;
    json_t *e;
    if (split_bar(v, len, buf, sizeof(buf), part, 6) || parse_ms(part[1], &level) || parse_ms(part[4], &opened) ||
        parse_ms(part[5], &closed) || !tf_utf8_valid(part[6], strlen(part[6])))
        return NULL;
    e = json_pack("{s:s, s:s, s:I, s:s, s:s}", "id", part[6], "state", part[0], "level", (json_int_t)level,
                  "severity", part[2], "category", part[3]);
    if (e && (set_time(e, "opened", opened) || set_time(e, "closed", closed))) {
        json_decref(e);
        e = NULL;
    }
    return e;
}

/* "followup" / "complaint_followup" = "<due>|<id>" as {"due", "due_ms", idname};
 * NULL when malformed. */
static json_t *due_ref_entry(const char *v, size_t len, const char *idname)
{
    char buf[512], *part[2];
    int64_t due;
    json_t *e;
    if (split_bar(v, len, buf, sizeof(buf), part, 1) || parse_ms(part[0], &due) ||
        !tf_utf8_valid(part[1], strlen(part[1])))
        return NULL;
    e = json_pack("{s:s}", idname, part[1]);
    if (e && set_time(e, "due", due)) {
        json_decref(e);
        e = NULL;
    }
    return e;
}

/* "tags" = "a,b" as ["a", "b"]; NULL when not UTF-8. */
static json_t *tags_array(const char *v, size_t len)
{
    json_t *arr = json_array();
    for (size_t at = 0; arr && at < len;) {
        const char *q = memchr(v + at, ',', len - at);
        size_t n = q ? (size_t)(q - (v + at)) : len - at;
        if (!tf_utf8_valid(v + at, n) || json_array_append_new(arr, json_stringn(v + at, n)) != 0) {
            json_decref(arr);
            return NULL;
        }
        at += n + 1;
    }
    return arr;
}

/* "consent" = "email=granted@<ms>,..." as {"email": {"consent", "at", "at_ms"}};
 * NULL when malformed. */
static json_t *consent_object(const char *v, size_t len)
{
    char buf[256], *save = NULL;
    json_t *o = json_object();
    if (!o || len >= sizeof(buf)) {
        json_decref(o);
        return NULL;
    }
    memcpy(buf, v, len);
    buf[len] = '\0';
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '='), *at = strchr(t, '@');
        int64_t ms;
        json_t *e;
        if (!eq || !at || at < eq) {
            json_decref(o);
            return NULL;
        }
        *eq = *at = '\0';
        if (parse_ms(at + 1, &ms) || !tf_utf8_valid(t, strlen(t)) || !tf_utf8_valid(eq + 1, strlen(eq + 1)) ||
            !(e = json_pack("{s:s}", "consent", eq + 1)) || set_time(e, "at", ms) != 0 ||
            json_object_set_new(o, t, e) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* "complaint_followup" = "<slot>:<due>,..." into due[slot]; -1 when it is not that. */
static int complaint_followups(const char *v, size_t len, int64_t due[TF_COMPLAINT_SLOTS])
{
    char buf[512], *save = NULL;
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(t, ':');
        int64_t slot, ms;
        if (!colon)
            return -1;
        *colon = '\0';
        if (parse_ms(t, &slot) || parse_ms(colon + 1, &ms) || slot < 0 || slot >= TF_COMPLAINT_SLOTS)
            return -1;
        due[slot] = ms;
    }
    return 0;
}

/* "sb" = "<base>:<v0>,<v1>,..." as {"base", "buckets"}; NULL when malformed. */
static json_t *spend_buckets(const char *v, size_t len)
{
    char buf[1024];
    int64_t base, x;
    if (len >= sizeof(buf))
        return NULL;
    memcpy(buf, v, len);
    buf[len] = '\0';
    char *p = strchr(buf, ':');
    if (!p)
        return NULL;
    *p++ = '\0';
    json_t *arr = json_array();
    if (!arr || parse_ms(buf, &base)) {
        json_decref(arr);
        return NULL;
    }
    for (char *q; p; p = q) {
        if ((q = strchr(p, ',')))
            *q++ = '\0';
        if (parse_ms(p, &x) || json_array_append_new(arr, json_integer((json_int_t)x)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return json_pack("{s:I, s:o}", "base", (json_int_t)base, "buckets", arr);
}

typedef struct {
    const char *name;
    int64_t due_ms;
} due_timer;

static int cmp_due(const void *a, const void *b)
{
    const due_timer *x = a, *y = b;
    if (x->due_ms != y->due_ms)
        return x->due_ms < y->due_ms ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* {"<name>": due_ms, ...} as [{"name", "due", "due_ms"}, ...] earliest first; NULL on failure. */
static json_t *timers_array(json_t *by_name)
{
    size_t n = json_object_size(by_name), i = 0;
    due_timer *t = malloc((n ? n : 1) * sizeof(*t));
    const char *k;
    json_t *v, *arr = json_array();
    if (!t || !arr) {
        free(t);
        json_decref(arr);
        return NULL;
    }
    json_object_foreach(by_name, k, v) {
        t[i].name = k;
        t[i++].due_ms = (int64_t)json_integer_value(v);
    }
    qsort(t, n, sizeof(*t), cmp_due);
    for (i = 0; i < n; i++) {
        json_t *e = json_pack("{s:s}", "name", t[i].name);
        if (!e || set_time(e, "due", t[i].due_ms) != 0 || json_array_append_new(arr, e) != 0) {
            json_decref(arr);
            arr = NULL;
            break;
        }
    }
    free(t);
    return arr;
}

/* The learned figures of the state, decoded by the codec, in place of their raw
 * fields. 0, or -1 when out of memory; a state that does not decode keeps the
 * raw fields. */
static int insight_json(json_t *root, const tf_config_rules *rules, const redisReply *r)
{
    static const char *const raw[] = {"fav", "pref", "pref_at", "ivl_n", "ivl_mean", "ivl_m2", "next_purchase",
                                      "next_conf"};
    size_t n = r->elements / 2, k = 0;
    const char **f = malloc((n ? n : 1) * sizeof(*f)), **v = malloc((n ? n : 1) * sizeof(*v));
    size_t *fl = malloc((n ? n : 1) * sizeof(*fl)), *vl = malloc((n ? n : 1) * sizeof(*vl));
    tf_store_doc_t *doc = malloc(sizeof(*doc));
    int rc = -1;
    if (!f || !v || !fl || !vl || !doc)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const redisReply *name = r->element[2 * i], *value = r->element[2 * i + 1];
        if (name->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING)
            continue;
        f[k] = name->str, fl[k] = (size_t)name->len, v[k] = value->str, vl[k] = (size_t)value->len;
        k++;
    }
    rc = 0;
    if (tf_store_decode(doc, f, fl, v, vl, k) != TF_OK)
        goto done;
    const tf_customer_t *c = &doc->customer;
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++)
        json_object_del(root, raw[i]);
    json_t *fav = json_array(), *scores = json_array(), *pref = json_object(), *next = NULL;
    int bad = !fav || !scores || !pref;
    for (size_t i = 0; !bad && i < c->nfavourites; i++) {
        json_t *e = json_object();
        bad = !e || set_field(e, "sku", 3, text_value(c->favourites[i].sku, strlen(c->favourites[i].sku))) ||
              json_object_set_new(e, "qty", json_integer((json_int_t)c->favourites[i].qty));
        bad = bad ? (json_decref(e), 1) : json_array_append_new(fav, e) != 0;
    }
    for (size_t i = 0; !bad && i < c->nchannel_scores; i++) {
        json_t *e = json_object();
        bad = !e ||
              set_field(e, "channel", 7,
                        text_value(c->channel_scores[i].name, strlen(c->channel_scores[i].name))) ||
              json_object_set_new(e, "score", json_real(c->channel_scores[i].score));
        bad = bad ? (json_decref(e), 1) : json_array_append_new(scores, e) != 0;
    }
    if (!bad && c->intervals > 0) {
        double sd = c->intervals > 1 && c->interval_m2 > 0 ? sqrt(c->interval_m2 / (double)(c->intervals - 1)) : 0;
        next = json_pack("{s:f, s:I, s:f, s:f, s:b}", "confidence", c->next_purchase_confidence, "intervals",
                         (json_int_t)c->intervals, "mean_interval_days", c->interval_mean_days, "sd_interval_days",
                         sd, "rhythm", tf_customer_has_rhythm(rules, c));
        bad = !next || set_time(next, "expected", c->next_purchase_ms) != 0;
    }
    bad = bad || set_time(pref, "at", c->channel_scores_at_ms) != 0 ||
          json_object_set(pref, "scores", scores) != 0 || json_object_set(root, "favourite_items", fav) != 0 ||
          (c->nchannel_scores && json_object_set(root, "channel_scores", pref) != 0) ||
          (next && json_object_set(root, "next_purchase", next) != 0);
    json_decref(fav);
    json_decref(scores);
    json_decref(pref);
    json_decref(next);
    rc = bad ? -1 : 0;
done:
    free(f);
    free(v);
    free(fl);
    free(vl);
    free(doc);
    return rc;
}

/* Builds the document from HGETALL's field/value pairs. */
static json_t *customer_json(const char *id, const tf_config_rules *rules, const redisReply *r)
{
    json_t *root = json_object(), *offsets = json_object(), *counts = json_object(), *timers = json_object();
    json_t *history[TF_STAGE_HISTORY_SLOTS] = {0}, *complaints[TF_COMPLAINT_SLOTS] = {0}, *sb = NULL;
    int64_t cp_followup[TF_COMPLAINT_SLOTS] = {0};
    int bad = !root || !offsets || !counts || !timers;
    /* The daemon leaves fields at their defaults out of the hash: show them with
     * the default, so every field is always there for readers. */
    static tf_store_fields defaults;
    static const tf_store_doc_t empty;
    size_t npairs = r->elements / 2, ndef = 0, nseen = 0;
    const char *dname[TF_STORE_MAX_FIELDS];
    if (tf_store_encode_full(&empty, &defaults) == TF_OK) {
        for (size_t d = 0; d < defaults.n; d++) {
            int present = 0;
            for (size_t i = 0; !present && i + 1 < r->elements; i += 2)
                present = r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, defaults.field[d]) == 0;
            if (!present && strcmp(defaults.field[d], "stage") != 0)
                dname[ndef++] = defaults.field[d];
        }
    }
    for (size_t i = 0; !bad && i < npairs + ndef; i++) {
        const char *name, *vstr;
        size_t namelen, vlen;
        if (i < npairs) {
            const redisReply *f = r->element[2 * i], *v = r->element[2 * i + 1];
            if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            name = f->str, namelen = (size_t)f->len, vstr = v->str, vlen = (size_t)v->len;
            if (namelen > 2 && memcmp(name, TF_STORE_ID_FIELD_PREFIX, 2) == 0) {
                nseen++; /* the dedup window: counted, not listed */
                continue;
            }
            /* A field the daemon blanked went back to its default. */
            for (size_t d = 0; vlen == 0 && d < defaults.n; d++)
                if (strcmp(defaults.field[d], name) == 0)
                    vstr = defaults.value[d], vlen = defaults.vlen[d];
        } else {
            size_t d;
            name = dname[i - npairs], namelen = strlen(name);
            for (d = 0; strcmp(defaults.field[d], name) != 0; d++)
                ;
            vstr = defaults.value[d], vlen = defaults.vlen[d];
        }
        struct { const char *str; size_t len; } vv = {vstr, vlen}, *v = &vv;
        json_t *dst = root;
        if (namelen == 3 && name[0] == 'h' && name[1] == ':' && name[2] >= '0' &&
            name[2] < '0' + TF_STAGE_HISTORY_SLOTS) {
            json_t *e = history_entry(v->str, (size_t)v->len);
            if (e) {
                json_decref(history[name[2] - '0']);
                history[name[2] - '0'] = e;
                continue;
            }
            /* Not "<ms>|<from>|<to>|<rule>": shown as it is, like any unknown field. */
        }
        if (namelen == 4 && memcmp(name, "cp:", 3) == 0 && is_digit(name[3])) {
            json_t *e = v->len ? complaint_entry(v->str, (size_t)v->len) : NULL;
            if (e || v->len == 0) {
                json_decref(complaints[name[3] - '0']);
                complaints[name[3] - '0'] = e;
                continue;
            }
        }
        if (namelen > 2 && memcmp(name, "t:", 2) == 0) {
            int64_t due;
            if (is_int_text(v->str, (size_t)v->len) && tf_parse_i64(v->str, (size_t)v->len, &due) == TF_OK) {
                if (due != 0)
                    bad = set_field(timers, name + 2, namelen - 2, json_integer((json_int_t)due)) != 0;
                continue;
            }
        }
        if (namelen == 18 && memcmp(name, "complaint_followup", 18) == 0 && memchr(v->str, '|', v->len) == NULL &&
            complaint_followups(v->str, (size_t)v->len, cp_followup) == 0)
            continue;
        if ((namelen == 4 && memcmp(name, "tags", 4) == 0) || (namelen == 8 && memcmp(name, "segments", 8) == 0)) {
            json_t *e = tags_array(v->str, (size_t)v->len);
            if (e) {
                bad = set_field(root, name, namelen, e) != 0;
                continue;
            }
        }
        if (namelen == 7 && memcmp(name, "consent", 7) == 0) {
            json_t *e = consent_object(v->str, (size_t)v->len);
            if (e) {
                bad = set_field(root, name, namelen, e) != 0;
                continue;
            }
        }
        if ((namelen == 8 && memcmp(name, "followup", 8) == 0) ||
            (namelen == 18 && memcmp(name, "complaint_followup", 18) == 0)) {
            json_t *e = v->len ? due_ref_entry(v->str, (size_t)v->len, namelen == 8 ? "order" : "complaint") : NULL;
            if (e)
                bad = set_field(root, name, namelen, e) != 0;
            if (e || v->len == 0)
                continue;
        }
        if (namelen == 2 && memcmp(name, "sb", 2) == 0) {
            json_t *e = spend_buckets(v->str, (size_t)v->len);
            if (e) {
                json_decref(sb);
                sb = e;
                continue;
            }
        }
        if (namelen > 2 && (memcmp(name, "o:", 2) == 0 || memcmp(name, "n:", 2) == 0)) {
            dst = name[0] == 'o' ? offsets : counts;
            name += 2;
            namelen -= 2;
        }
        bad = set_field(dst, name, namelen, typed_value(v->str, (size_t)v->len)) != 0;
    }
    /* Set last, so they win over plain fields of the same name. */
    if (!bad && json_object_size(offsets) > 0)
        bad = json_object_set(root, "offsets", offsets) != 0;
    if (!bad && json_object_size(counts) > 0)
        bad = json_object_set(root, "counts", counts) != 0;
    if (!bad && json_object_size(timers) > 0) {
        json_t *arr = timers_array(timers);
        bad = !arr || json_object_set_new(root, "timers", arr) != 0;
    }
    json_t *hist = json_array(), *cps = json_array();
    bad = bad || !hist || !cps;
    for (int i = 0; !bad && i < TF_STAGE_HISTORY_SLOTS; i++)
        if (history[i])
            bad = json_array_append(hist, history[i]) != 0;
    for (int i = 0; !bad && i < TF_COMPLAINT_SLOTS; i++) {
        if (complaints[i] && cp_followup[i] > 0)
            bad = set_time(complaints[i], "followup_due", cp_followup[i]) != 0;
        if (!bad && complaints[i])
            bad = json_array_append(cps, complaints[i]) != 0;
    }
    if (!bad && json_array_size(hist) > 0)
        bad = json_object_set(root, "stage_history", hist) != 0;
    if (!bad && json_array_size(cps) > 0)
        bad = json_object_set(root, "complaint_details", cps) != 0;
    if (!bad && sb)
        bad = json_object_set(root, "spend_buckets", sb) != 0;
    if (!bad && nseen > 0)
        bad = json_object_set_new(root, "dedup_ids", json_integer((json_int_t)nseen)) != 0;
    json_decref(hist);
    json_decref(cps);
    json_decref(sb);
    for (int i = 0; i < TF_STAGE_HISTORY_SLOTS; i++)
        json_decref(history[i]);
    for (int i = 0; i < TF_COMPLAINT_SLOTS; i++)
        json_decref(complaints[i]);
    if (!bad)
        bad = insight_json(root, rules, r) != 0;
    if (!bad)
        bad = set_field(root, "customer", strlen("customer"), text_value(id, strlen(id))) != 0;
    json_decref(offsets);
    json_decref(counts);
    json_decref(timers);
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static int customer_get(const tf_config_t *cfg, const char *id)
{
    char err[2048];
    int usage, rc = TF_CLI_FAIL;
    size_t keysize = tf_store_customer_key_size(cfg->key_prefix, id, "");
    char *key = malloc(keysize);
    tf_cli_redis *red = NULL;
    redisReply *r = NULL;
    json_t *doc = NULL;

    if (!key) {
        tf_cli_errorf("out of memory");
        return TF_CLI_FAIL;
    }
    /* The store's own spelling of the key (the id escaped in its hash tag). */
    tf_store_customer_key(cfg->key_prefix, id, "", key, keysize);
    red = tf_cli_redis_open(cfg->redis_url, cfg->redis_timeout_ms, &usage, err, sizeof(err));
    if (!red) {
        tf_cli_errorf("%s", err);
        rc = usage ? TF_CLI_USAGE : TF_CLI_FAIL;
        goto done;
    }
    const char *argv[] = {"HGETALL", key};
    const size_t argvlen[] = {strlen(argv[0]), strlen(key)};
    r = tf_cli_redis_key_command(red, 2, argv, argvlen, err, sizeof(err));
    if (!r) {
        tf_cli_errorf("%s", err);
    } else if (r->type == REDIS_REPLY_ERROR) {
        tf_cli_errorf("%s: HGETALL %s: %s", tf_cli_redis_where(red), key, r->str);
    } else if (r->type != REDIS_REPLY_ARRAY) {
        tf_cli_errorf("%s: HGETALL %s: unexpected reply type %d", tf_cli_redis_where(red), key, r->type);
    } else if (r->elements == 0) {
        tf_cli_errorf("customer %s not found", id);
    } else if (!(doc = customer_json(id, &cfg->rules, r))) {
        tf_cli_errorf("out of memory");
    } else if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 || fputc('\n', stdout) == EOF ||
               fflush(stdout) != 0) {
        tf_cli_errorf("cannot write to stdout");
    } else {
        rc = TF_CLI_OK;
    }
done:
    json_decref(doc);
    if (r)
        freeReplyObject(r);
    tf_cli_redis_close(red);
    free(key);
    return rc;
}

int tf_cli_cmd_customer(const tf_cli_opts *opts, int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    tf_config_t *cfg;
    int c, rc;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c != 'h')
            return tf_cli_bad_option("customer", c, argv);
        tf_cli_usage(stdout);
        return TF_CLI_OK;
    }
    if (optind >= argc || strcmp(argv[optind], "get") != 0) {
        tf_cli_errorf("customer: expected 'customer get ID'");
        return TF_CLI_USAGE;
    }
    if (argc - optind != 2 || argv[optind + 1][0] == '\0') {
        tf_cli_errorf("customer get: expected exactly one customer ID");
        return TF_CLI_USAGE;
    }
    if (!(cfg = malloc(sizeof(*cfg)))) {
        tf_cli_errorf("out of memory");
        return TF_CLI_FAIL;
    }
    rc = tf_cli_config_load(opts, cfg);
    if (rc == TF_CLI_OK)
        rc = customer_get(cfg, argv[optind + 1]);
    free(cfg);
    return rc;
}
