/* Decoding and validation of touchpoints (EVENTS.md, "Input: touchpoints").
 *
 * The checks run in the contract's order, cheapest first, so a hostile record costs
 * as little as possible: size, UTF-8, nesting and JSON (one pass of the parser,
 * json.c, settles all three for a well-formed text), the CloudEvents attributes,
 * and last the kind's data fields. Every failure writes a detail that starts with
 * the field's name ("data.amount: ..."), because the detail is what an operator
 * reads in the dead-letter header.
 *
 * Data fields are described by one table per kind (field_spec rows); the few rules
 * that span fields (the survey pair) are a per-kind check function. Unknown members
 * are never looked at, which is what makes the contract forward compatible. */
#include <assert.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "event/event.h"
#include "event/json.h"

#define TYPE_PREFIX "touchpoint."
#define TYPE_PREFIX_LEN (sizeof TYPE_PREFIX - 1)
/* 9999-12-31T23:59:59.999Z: the last instant with a four-digit year. */
#define TIME_MAX_MS INT64_C(253402300799999)
/* Enough for a value echoed into a detail ("type: \"touchpoint.fo...\" ..."). */
#define ECHO_MAX 48

void tf_event_limits_default(tf_event_limits *lim)
{
    if (lim == NULL)
        return;
    lim->max_record_bytes = 65536;
    lim->max_id_bytes = TF_EVENT_ID_MAX;
    lim->max_depth = 16;
    lim->max_future_skew_ms = 24 * TF_MS_PER_HOUR;
    lim->max_amount = INT64_C(1000000000000);
}

/* ---- data vocabularies: index 0 is the "absent" value, the list ends with NULL ---- */

static const char *const web_channels[] = { NULL, "web", "app", "mini_program", NULL };
static const char *const directions[] = { NULL, "inbound", "outbound", NULL };
static const char *const outcomes[] = { NULL, "answered", "missed", "voicemail", NULL };
static const char *const categories[] = { NULL, "quality", "contract", "shipping", "service", NULL };
static const char *const severities[] = { NULL, "low", "medium", "high", "critical", NULL };
static const char *const statuses[] = { NULL, "acknowledged", "resolved", "reopened", NULL };
static const char *const email_actions[] = { NULL, "open", "click", "bounce", NULL };
static const char *const social_actions[] = { NULL, "like", "comment", "share", "message", "follow", NULL };
static const char *const formats[] = { NULL, "exhibition", "seminar", "webinar", "visit", NULL };
/* In tf_channel order, shifted by one (0 is "absent"). */
static const char *const consent_channels[] = { NULL, "email", "sms", "phone", NULL };

/* The stored enums take the table index, so the tables must follow the enums. */
_Static_assert(sizeof directions / sizeof directions[0] == TF_DIR_OUTBOUND + 2, "directions");
_Static_assert(sizeof categories / sizeof categories[0] == TF_CAT_SERVICE + 2, "categories");
_Static_assert(sizeof severities / sizeof severities[0] == TF_SEV_CRITICAL + 2, "severities");
_Static_assert(sizeof statuses / sizeof statuses[0] == TF_CST_REOPENED + 2, "statuses");
/* ... and F_ENUM stores them as int. */
_Static_assert(sizeof(tf_call_direction) == sizeof(int) && sizeof(tf_complaint_category) == sizeof(int) &&
                   sizeof(tf_complaint_severity) == sizeof(int) && sizeof(tf_complaint_status) == sizeof(int),
               "data enums are int-sized");

const char *tf_complaint_category_name(tf_complaint_category c)
{
    if ((int)c <= TF_CAT_NONE || c > TF_CAT_SERVICE)
        return NULL;
    return categories[c];
}

const char *tf_complaint_severity_name(tf_complaint_severity s)
{
    if ((int)s <= TF_SEV_NONE || s > TF_SEV_CRITICAL)
        return NULL;
    return severities[s];
}

/* ---- details ---- */

typedef struct {
    char *detail;
    size_t detail_size;
    int64_t max_amount;
} decode_ctx;

static tf_event_error fail(const decode_ctx *c, tf_event_error err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static tf_event_error fail(const decode_ctx *c, tf_event_error err, const char *fmt, ...)
{
    if (c->detail != NULL && c->detail_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->detail, c->detail_size, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* Copies at most ECHO_MAX-4 bytes of an input value for a detail: cut on a UTF-8
 * boundary, control characters shown as '?', "..." when cut. Input values are
 * valid UTF-8 by the time anything is echoed. */
static const char *echo(char buf[ECHO_MAX], const char *s, size_t len)
{
    size_t n = len, i;
    int cut = 0;

    if (n > ECHO_MAX - 4) {
        n = ECHO_MAX - 4;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        cut = 1;
    }
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[i] = (ch < 0x20 || ch == 0x7F) ? '?' : (char)ch;
    }
    if (cut)
        memcpy(buf + i, "...", 3), i += 3;
    buf[i] = '\0';
    return buf;
}

/* A detail goes into a Kafka header and a log line: it must be valid UTF-8 even when
 * snprintf cut a multi-byte character or the parser's message quoted a partial one. */
static void tidy_detail(char *d)
{
    size_t n = strlen(d);

    if (tf_utf8_valid(d, n))
        return;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)d[i] >= 0x80)
            d[i] = '?';
}

/* ---- byte-level checks ---- */

/* 1 when the container nesting of a JSON text exceeds max. Counts [ and { outside
 * strings; on malformed input the count is only a bound, and the parser reports
 * the real error. Runs only on a text the parser refused: for an accepted one it
 * would count the tree's depth, which the parser has measured. */
static int depth_exceeds(const unsigned char *p, size_t n, int max)
{
    int depth = 0, in_str = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = p[i];
        if (in_str) {
            if (ch == '\\')
                i++; /* the escaped byte cannot end the string */
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '{' || ch == '[') {
            if (depth >= max)
                return 1;
            depth++;
        } else if ((ch == '}' || ch == ']') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

/* The subject rule: printable UTF-8 (already validated), no C0, DEL or C1 (U+0080..
 * U+009F, which UTF-8 encodes as C2 80..C2 9F). Returns the offset of the first
 * control character, or -1. */
static long control_char_at(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7F)
            return (long)i;
        if (ch == 0xC2 && i + 1 < len && (unsigned char)s[i + 1] <= 0x9F)
            return (long)i;
    }
    return -1;
}

static void copy_str(char *dst, size_t dstsize, const char *s, size_t len)
{
    assert(len < dstsize);
    memcpy(dst, s, len);
    dst[len] = '\0';
}

/* ---- CloudEvents attributes ---- */

enum { A_SPECVERSION, A_ID, A_SOURCE, A_TYPE, A_SUBJECT, A_TIME, A__COUNT };

/* The member name in structured mode, the header name in binary mode; details use
 * whichever the producer wrote. */
static const struct {
    const char *member;
    const char *header;
} attr_names[A__COUNT] = {
    [A_SPECVERSION] = { "specversion", "ce_specversion" },
    [A_ID] = { "id", "ce_id" },
    [A_SOURCE] = { "source", "ce_source" },
    [A_TYPE] = { "type", "ce_type" },
    [A_SUBJECT] = { "subject", "ce_subject" },
    [A_TIME] = { "time", "ce_time" },
};

typedef enum { ATTR_ABSENT = 0, ATTR_STRING, ATTR_NOT_STRING } attr_state;

typedef struct {
    attr_state state;
    const char *s; /* not NUL-terminated in binary mode */
    size_t len;
    const char *label;
} attr;

static int header_value_present(const tf_event_header *h)
{
    return h->value != NULL || h->value_len == 0;
}

static const tf_event_header *find_header(const tf_event_header *headers, size_t n, const char *name)
{
    const tf_event_header *found = NULL;

    /* The last one wins, as with rd_kafka_header_get_last(). */
    for (size_t i = 0; i < n; i++)
        if (headers[i].name != NULL && strcmp(headers[i].name, name) == 0)
            found = &headers[i];
    return found;
}

static void attrs_from_headers(attr a[A__COUNT], const tf_event_header *headers, size_t n)
{
    for (int i = 0; i < A__COUNT; i++) {
        const tf_event_header *h = find_header(headers, n, attr_names[i].header);
        a[i].label = attr_names[i].header;
        if (h == NULL || !header_value_present(h))
            continue;
        a[i].state = ATTR_STRING;
        a[i].s = h->value != NULL ? h->value : "";
        a[i].len = h->value_len;
    }
}

static void attrs_from_object(attr a[A__COUNT], const tf_json_val *root)
{
    for (int i = 0; i < A__COUNT; i++) {
        const tf_json_val *v = tf_json_get(root, attr_names[i].member);
        a[i].label = attr_names[i].member;
        if (v == NULL)
            continue;
        if (!tf_json_is_string(v)) {
            a[i].state = ATTR_NOT_STRING;
            continue;
        }
        a[i].state = ATTR_STRING;
        a[i].s = tf_json_string(v);
        a[i].len = tf_json_string_len(v);
    }
}

/* Presence and type, common to every attribute. */
static tf_event_error attr_present(const decode_ctx *c, const attr *a)
{
    if (a->state == ATTR_ABSENT)
        return fail(c, TF_EV_MISSING_FIELD, "%s: required attribute is missing", a->label);
    if (a->state == ATTR_NOT_STRING)
        return fail(c, TF_EV_INVALID_FIELD, "%s: must be a string", a->label);
    return TF_EV_OK;
}

/* A string of 1..max bytes without NUL (only a header can carry one), copied out. */
static tf_event_error attr_copy(const decode_ctx *c, const attr *a, size_t max, char *dst, size_t dstsize)
{
    if (a->len == 0 || a->len > max)
        return fail(c, TF_EV_INVALID_FIELD, "%s: must be 1-%zu bytes, got %zu", a->label, max, a->len);
    if (memchr(a->s, '\0', a->len) != NULL)
        return fail(c, TF_EV_INVALID_FIELD, "%s: must not contain NUL bytes", a->label);
    copy_str(dst, dstsize, a->s, a->len);
    return TF_EV_OK;
}

static tf_event_error check_subject(const decode_ctx *c, const char *label, tf_event_error code,
                                    const char *s, size_t len)
{
    long at;

    if (len == 0 || len > TF_EVENT_SUBJECT_MAX)
        return fail(c, code, "%s: must be 1-%d bytes, got %zu", label, TF_EVENT_SUBJECT_MAX, len);
    at = control_char_at(s, len);
    if (at >= 0)
        return fail(c, code, "%s: control character at byte %ld", label, at);
    return TF_EV_OK;
}

static tf_event_error check_time(const decode_ctx *c, const attr *a, const tf_event_limits *lim,
                                 int64_t now_ms, int64_t *out)
{
    int64_t ms, skew = lim->max_future_skew_ms;

    if (tf_time_parse_rfc3339(a->s, a->len, &ms) != TF_OK)
        return fail(c, TF_EV_INVALID_TIME, "%s: must be an RFC 3339 timestamp with an offset", a->label);
    /* The text's year and the UTC instant must both be in 1970..9999: times before
     * the epoch would be negative instants, and five-digit years cannot be written
     * back in RFC 3339. The parser has checked the first four bytes are digits. */
    if (a->len < 4 || memcmp(a->s, "1970", 4) < 0 || ms < 0 || ms > TIME_MAX_MS)
        return fail(c, TF_EV_INVALID_TIME, "%s: year must be between 1970 and 9999", a->label);
    /* Unsigned, because ms - now_ms could overflow for an absurd now_ms; when
     * ms > now_ms the unsigned difference is exact. */
    if (skew < 0)
        skew = 0;
    if (ms > now_ms && (uint64_t)ms - (uint64_t)now_ms > (uint64_t)skew)
        return fail(c, TF_EV_TIME_OUT_OF_RANGE, "%s: more than %lld s in the future", a->label,
                    (long long)(skew / TF_MS_PER_SEC));
    *out = ms;
    return TF_EV_OK;
}

/* The contract's order: specversion first (it says how to read the rest), then
 * presence of every attribute, then their types, then each one's content. */
static tf_event_error decode_attrs(const decode_ctx *c, const attr a[A__COUNT], const tf_event_limits *lim,
                                   int64_t now_ms, tf_event_t *out)
{
    char e[ECHO_MAX];
    size_t max_id = lim->max_id_bytes;
    tf_event_error err;
    const attr *v = &a[A_SPECVERSION], *t = &a[A_TYPE], *s = &a[A_SUBJECT];

    if ((err = attr_present(c, v)) != TF_EV_OK)
        return err;
    if (v->len != 3 || memcmp(v->s, "1.0", 3) != 0)
        return fail(c, TF_EV_UNSUPPORTED_SPECVERSION, "%s: \"%s\" is not supported, only \"1.0\"", v->label,
                    echo(e, v->s, v->len));
    for (int i = 0; i < A__COUNT; i++)
        if (a[i].state == ATTR_ABSENT)
            return attr_present(c, &a[i]);
    for (int i = 0; i < A__COUNT; i++)
        if ((err = attr_present(c, &a[i])) != TF_EV_OK)
            return err;

    if (max_id == 0 || max_id > TF_EVENT_ID_MAX)
        max_id = TF_EVENT_ID_MAX;
    if ((err = attr_copy(c, &a[A_ID], max_id, out->id, sizeof out->id)) != TF_EV_OK)
        return err;
    if ((err = attr_copy(c, &a[A_SOURCE], TF_EVENT_SOURCE_MAX, out->source, sizeof out->source)) != TF_EV_OK)
        return err;

    if (t->len <= TYPE_PREFIX_LEN || memcmp(t->s, TYPE_PREFIX, TYPE_PREFIX_LEN) != 0 ||
        tf_event_kind_parse(t->s + TYPE_PREFIX_LEN, t->len - TYPE_PREFIX_LEN, &out->kind) != TF_OK)
        return fail(c, TF_EV_UNKNOWN_TYPE, "%s: \"%s\" is not a known touchpoint type", t->label,
                    echo(e, t->s, t->len));

    if ((err = check_subject(c, s->label, TF_EV_INVALID_SUBJECT, s->s, s->len)) != TF_EV_OK)
        return err;
    copy_str(out->subject, sizeof out->subject, s->s, s->len);

    return check_time(c, &a[A_TIME], lim, now_ms, &out->time_ms);
}

/* ---- data fields ---- */

typedef enum {
    F_TEXT = 1,  /* any string, not kept */
    F_NOTE,      /* any string, kept cut to TF_EVENT_SHORT_MAX bytes at a character boundary */
    F_REF,       /* string 1..TF_EVENT_REF_MAX bytes, kept */
    F_CUSTOMER,  /* F_REF that also follows the subject rules */
    F_LABEL,     /* string 0..TF_EVENT_SHORT_MAX bytes, kept */
    F_CHOICE,    /* one of names, kept as the string */
    F_ENUM,      /* one of names, kept as the enum (the table index) */
    F_COUNT,     /* integer >= 0 (int64) */
    F_MONEY,     /* integer 0..limits.max_amount */
    F_SIGNED_MONEY, /* integer -max_amount..max_amount, has flag at has_off */
    F_CURRENCY,  /* three capitals */
    F_BIRTHDAY,  /* MM-DD or YYYY-MM-DD */
    F_DATE,      /* YYYY-MM-DD, not kept */
    F_ITEMS,     /* [{sku, qty, price}] */
    F_TAGS,      /* [string] */
    F_CONSENT    /* {email, sms, phone: bool} */
} field_type;

/* F_REF and F_CUSTOMER write up to TF_EVENT_REF_MAX bytes, referred_id included. */
_Static_assert(TF_EVENT_REF_MAX <= TF_EVENT_SUBJECT_MAX, "referred_id holds a ref");

#define NO_FIELD SIZE_MAX
#define AT(member) offsetof(tf_event_t, member)

typedef struct {
    const char *key;
    field_type type;
    int required;
    const char *const *names; /* F_CHOICE, F_ENUM */
    size_t off;               /* where in tf_event_t, or NO_FIELD */
    size_t has_off;           /* F_SIGNED_MONEY: the int flag set when present */
} field_spec;

#define REQ(k, t, o) { .key = k, .type = t, .required = 1, .off = o, .has_off = NO_FIELD }
#define OPT(k, t, o) { .key = k, .type = t, .required = 0, .off = o, .has_off = NO_FIELD }
#define REQ_ONE_OF(k, t, n, o) { .key = k, .type = t, .required = 1, .names = n, .off = o, .has_off = NO_FIELD }
#define OPT_ONE_OF(k, t, n, o) { .key = k, .type = t, .required = 0, .names = n, .off = o, .has_off = NO_FIELD }
#define END { .key = NULL }

static const field_spec web_visit_fields[] = {
    OPT_ONE_OF("channel", F_CHOICE, web_channels, AT(channel)),
    OPT("page", F_TEXT, NO_FIELD),
    OPT("duration_s", F_COUNT, AT(duration_s)),
    OPT("campaign", F_NOTE, AT(campaign)),
    OPT("referrer", F_TEXT, NO_FIELD),
    END,
};
static const field_spec call_fields[] = {
    REQ_ONE_OF("direction", F_ENUM, directions, AT(direction)),
    OPT("duration_s", F_COUNT, AT(duration_s)),
    OPT_ONE_OF("outcome", F_CHOICE, outcomes, AT(action)),
    OPT("agent", F_TEXT, NO_FIELD),
    END,
};
static const field_spec purchase_fields[] = {
    REQ("order_id", F_REF, AT(order_id)),
    REQ("amount", F_MONEY, AT(amount)),
    REQ("currency", F_CURRENCY, AT(currency)),
    { .key = "margin", .type = F_SIGNED_MONEY, .off = AT(margin), .has_off = AT(has_margin) },
    OPT("channel", F_LABEL, AT(channel)),
    OPT("items", F_ITEMS, NO_FIELD),
    END,
};
static const field_spec refund_fields[] = {
    REQ("order_id", F_REF, AT(order_id)),
    REQ("amount", F_MONEY, AT(amount)),
    REQ("currency", F_CURRENCY, AT(currency)),
    OPT("reason", F_NOTE, AT(reason)),
    END,
};
static const field_spec complaint_fields[] = {
    REQ("complaint_id", F_REF, AT(complaint_id)),
    REQ_ONE_OF("category", F_ENUM, categories, AT(category)),
    REQ_ONE_OF("severity", F_ENUM, severities, AT(severity)),
    OPT("channel", F_LABEL, AT(channel)),
    OPT("text", F_TEXT, NO_FIELD),
    END,
};
static const field_spec complaint_update_fields[] = {
    REQ("complaint_id", F_REF, AT(complaint_id)),
    REQ_ONE_OF("status", F_ENUM, statuses, AT(status)),
    END,
};
static const field_spec no_fields[] = { END };
static const field_spec referral_fields[] = {
    REQ("referred_id", F_CUSTOMER, AT(referred_id)),
    END,
};
static const field_spec profile_fields[] = {
    OPT("birthday", F_BIRTHDAY, NO_FIELD),
    OPT("anniversary", F_DATE, NO_FIELD),
    OPT("name", F_TEXT, NO_FIELD),
    OPT("tags", F_TAGS, NO_FIELD),
    OPT("consent", F_CONSENT, NO_FIELD),
    END,
};
static const field_spec email_fields[] = {
    REQ_ONE_OF("action", F_CHOICE, email_actions, AT(action)),
    OPT("campaign", F_NOTE, AT(campaign)),
    END,
};
static const field_spec social_fields[] = {
    REQ_ONE_OF("action", F_CHOICE, social_actions, AT(action)),
    OPT("platform", F_LABEL, AT(channel)),
    END,
};
static const field_spec store_visit_fields[] = {
    OPT("store_id", F_TEXT, NO_FIELD),
    END,
};
static const field_spec event_attendance_fields[] = {
    OPT("event_id", F_TEXT, NO_FIELD),
    OPT_ONE_OF("format", F_CHOICE, formats, AT(action)),
    END,
};
static const field_spec reason_fields[] = {
    OPT("reason", F_NOTE, AT(reason)),
    END,
};
static const field_spec unsubscribe_fields[] = {
    OPT("reason", F_NOTE, AT(reason)),
    OPT_ONE_OF("channel", F_CHOICE, consent_channels, AT(channel)),
    END,
};

static tf_event_error check_unsubscribe(const decode_ctx *c, const tf_json_val *data, tf_event_t *out);

typedef tf_event_error (*kind_check_fn)(const decode_ctx *c, const tf_json_val *data, tf_event_t *out);
static tf_event_error check_survey(const decode_ctx *c, const tf_json_val *data, tf_event_t *out);

static const struct {
    const field_spec *fields;
    kind_check_fn check; /* rules across fields, after the table */
} kinds[TF_KIND__COUNT] = {
    [TF_KIND_WEB_VISIT] = { web_visit_fields, NULL },
    [TF_KIND_CALL] = { call_fields, NULL },
    [TF_KIND_PURCHASE] = { purchase_fields, NULL },
    [TF_KIND_REFUND] = { refund_fields, NULL },
    [TF_KIND_COMPLAINT] = { complaint_fields, NULL },
    [TF_KIND_COMPLAINT_UPDATE] = { complaint_update_fields, NULL },
    [TF_KIND_SURVEY] = { no_fields, check_survey },
    [TF_KIND_REFERRAL] = { referral_fields, NULL },
    [TF_KIND_PROFILE] = { profile_fields, NULL },
    [TF_KIND_EMAIL] = { email_fields, NULL },
    [TF_KIND_SOCIAL] = { social_fields, NULL },
    [TF_KIND_STORE_VISIT] = { store_visit_fields, NULL },
    [TF_KIND_EVENT_ATTENDANCE] = { event_attendance_fields, NULL },
    [TF_KIND_CONTRACT_END] = { reason_fields, NULL },
    [TF_KIND_UNSUBSCRIBE] = { unsubscribe_fields, check_unsubscribe },
};

static int is_count(const tf_json_val *v)
{
    return tf_json_is_integer(v) && tf_json_integer(v) >= 0;
}

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    if (month == 2 && (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
        return 29;
    return days[month - 1];
}

/* "YYYY-MM-DD", or "MM-DD" when year_optional (year 0 then, and 02-29 is allowed).
 * Returns 1 for a real calendar date of years 0001..9999. */
static int parse_date(const char *s, size_t len, int year_optional, int *y, int *m, int *d)
{
    int year = 0;

    if (len == 10) {
        if (!digits(s, 4, &year) || year == 0 || s[4] != '-')
            return 0;
        s += 5;
        len -= 5;
    } else if (len != 5 || !year_optional) {
        return 0;
    }
    if (!digits(s, 2, m) || s[2] != '-' || !digits(s + 3, 2, d))
        return 0;
    if (*m < 1 || *m > 12 || *d < 1 || *d > days_in_month(year != 0 ? year : 2000, *m))
        return 0;
    *y = year;
    return 1;
}

/* "one of a, b, c" for a detail. */
static const char *choices(char *buf, size_t size, const char *const *names)
{
    size_t n = 0;

    buf[0] = '\0';
    for (int i = 1; names[i] != NULL && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", i > 1 ? ", " : "", names[i]);
    return buf;
}

static int choice_index(const tf_json_val *v, const char *const *names)
{
    const char *s;
    size_t len;

    if (!tf_json_is_string(v))
        return 0;
    s = tf_json_string(v);
    len = tf_json_string_len(v);
    for (int i = 1; names[i] != NULL; i++)
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
            return i;
    return 0;
}

/* How much of s[0..len) (well-formed UTF-8, from the parser) fits in max bytes
 * without splitting a character. */
static size_t cut_at_char(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    len = max;
    while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
        len--;
    return len;
}

/* Every item is validated; the first TF_EVENT_MAX_ITEMS that name a sku and buy
 * something are kept (favourite items): the contract never bounded the array, so
 * more stays valid. */
static tf_event_error check_items(const decode_ctx *c, const tf_json_val *items, tf_event_t *out)
{
    size_t i;
    const tf_json_val *it;

    if (!tf_json_is_array(items))
        return fail(c, TF_EV_INVALID_FIELD, "data.items: must be an array of objects");
    tf_json_array_foreach(items, i, it) {
        const tf_json_val *sku, *qty, *price;
        if (!tf_json_is_object(it))
            return fail(c, TF_EV_INVALID_FIELD, "data.items[%zu]: must be an object", i);
        sku = tf_json_get(it, "sku");
        qty = tf_json_get(it, "qty");
        price = tf_json_get(it, "price");
        if (sku != NULL && !tf_json_is_string(sku))
            return fail(c, TF_EV_INVALID_FIELD, "data.items[%zu].sku: must be a string", i);
        if (qty != NULL && !is_count(qty))
            return fail(c, TF_EV_INVALID_FIELD, "data.items[%zu].qty: must be a non-negative integer", i);
        if (price != NULL && !is_count(price))
            return fail(c, TF_EV_INVALID_FIELD, "data.items[%zu].price: must be a non-negative integer", i);
        int64_t n = qty != NULL ? (int64_t)tf_json_integer(qty) : 1;
        size_t len = sku != NULL ? tf_json_string_len(sku) : 0;
        if (len > 0 && n > 0 && out->nitems < TF_EVENT_MAX_ITEMS) {
            tf_event_item *kept = &out->items[out->nitems++];
            copy_str(kept->sku, sizeof kept->sku, tf_json_string(sku), cut_at_char(tf_json_string(sku), len,
                                                                                      TF_EVENT_SKU_MAX));
            kept->qty = n;
        }
    }
    return TF_EV_OK;
}

/* Tags are kept in the customer's state and read by segment predicates: bounded,
 * one line each, and without commas (they travel comma-separated in lists). */
static tf_event_error check_tags(const decode_ctx *c, const tf_json_val *tags, tf_event_t *out)
{
    size_t i;
    const tf_json_val *t;

    if (!tf_json_is_array(tags))
        return fail(c, TF_EV_INVALID_FIELD, "data.tags: must be an array of strings");
    if (tf_json_size(tags) > TF_EVENT_MAX_TAGS)
        return fail(c, TF_EV_INVALID_FIELD, "data.tags: %zu tags, at most %d", tf_json_size(tags),
                    TF_EVENT_MAX_TAGS);
    tf_json_array_foreach(tags, i, t) {
        const char *s = tf_json_string(t);
        size_t len = tf_json_string_len(t);
        size_t k;
        long at;

        if (s == NULL)
            return fail(c, TF_EV_INVALID_FIELD, "data.tags[%zu]: must be a string", i);
        if (len == 0 || len > TF_EVENT_TAG_MAX)
            return fail(c, TF_EV_INVALID_FIELD, "data.tags[%zu]: must be 1-%d bytes, got %zu", i, TF_EVENT_TAG_MAX,
                        len);
        if ((at = control_char_at(s, len)) >= 0)
            return fail(c, TF_EV_INVALID_FIELD, "data.tags[%zu]: control character at byte %ld", i, at);
        if (memchr(s, ',', len) != NULL)
            return fail(c, TF_EV_INVALID_FIELD, "data.tags[%zu]: must not contain a comma", i);
        /* s is not NUL-terminated, but holds no NUL either. */
        for (k = 0; k < out->ntags; k++)
            if (strlen(out->tags[k]) == len && memcmp(out->tags[k], s, len) == 0)
                break;
        if (k == out->ntags) /* a repeated tag is the same tag */
            copy_str(out->tags[out->ntags++], TF_EVENT_TAG_MAX + 1, s, len);
    }
    out->has_tags = 1;
    return TF_EV_OK;
}

static tf_event_error check_consent(const decode_ctx *c, const tf_json_val *consent, tf_event_t *out)
{
    if (!tf_json_is_object(consent))
        return fail(c, TF_EV_INVALID_FIELD, "data.consent: must be an object of booleans");
    for (int i = 0; i < TF_CHANNEL__COUNT; i++) {
        const char *name = consent_channels[i + 1];
        const tf_json_val *v = tf_json_get(consent, name);
        if (v != NULL && !tf_json_is_boolean(v))
            return fail(c, TF_EV_INVALID_FIELD, "data.consent.%s: must be a boolean", name);
        if (v != NULL)
            out->consent[i] = tf_json_is_true(v) ? TF_CONSENT_GRANTED : TF_CONSENT_WITHDRAWN;
    }
    return TF_EV_OK;
}

/* Unsubscribing withdraws consent: to the channel named, or to every channel. */
static tf_event_error check_unsubscribe(const decode_ctx *c, const tf_json_val *data, tf_event_t *out)
{
    tf_channel ch;

    (void)c;
    (void)data;
    for (int i = 0; i < TF_CHANNEL__COUNT; i++)
        if (out->channel[0] == '\0' ||
            (tf_channel_parse(out->channel, strlen(out->channel), &ch) == TF_OK && ch == (tf_channel)i))
            out->consent[i] = TF_CONSENT_WITHDRAWN;
    return TF_EV_OK;
}

/* Validates one present member against its row and stores it. */
static tf_event_error decode_field(const decode_ctx *c, const field_spec *f, const tf_json_val *v, tf_event_t *out)
{
    char *base = (char *)out;
    const char *s = tf_json_is_string(v) ? tf_json_string(v) : NULL;
    size_t len = s != NULL ? tf_json_string_len(v) : 0;
    char list[128];
    int idx, y, m, d;

    switch (f->type) {
    case F_TEXT:
        if (s == NULL)
            return fail(c, TF_EV_INVALID_FIELD, "data.%s: must be a string", f->key);
        return TF_EV_OK;
    case F_NOTE:
        if (s == NULL)
            return fail(c, TF_EV_INVALID_FIELD, "data.%s: must be a string", f->key);
        /* The parser gives well-formed UTF-8: a cut backs off continuation bytes. */
        copy_str(base + f->off, TF_EVENT_SHORT_MAX + 1, s, cut_at_char(s, len, TF_EVENT_SHORT_MAX));
        return TF_EV_OK;
    case F_REF:
    case F_CUSTOMER:
        if (s == NULL || len == 0 || len > TF_EVENT_REF_MAX)
            return fail(c, TF_EV_INVALID_FIELD, "data.%s: must be a string of 1-%d bytes", f->key,
                        TF_EVENT_REF_MAX);
        if (f->type == F_CUSTOMER) {
            char label[40];
            tf_event_error err;
            snprintf(label, sizeof label, "data.%s", f->key);
            if ((err = check_subject(c, label, TF_EV_INVALID_FIELD, s, len)) != TF_EV_OK)
                return err;
        }
        copy_str(base + f->off, TF_EVENT_REF_MAX + 1, s, len);
        return TF_EV_OK;
    case F_LABEL:
        if (s == NULL || len > TF_EVENT_SHORT_MAX)
            return fail(c, TF_EV_INVALID_FIELD, "data.%s: must be a string of at most %d bytes", f->key,
                        TF_EVENT_SHORT_MAX);
        copy_str(base + f->off, TF_EVENT_SHORT_MAX + 1, s, len);
        return TF_EV_OK;
    case F_CHOICE:
    case F_ENUM:
        idx = choice_index(v, f->names);
        if (idx == 0)
            return fail(c, TF_EV_INVALID_FIELD, "data.%s: must be one of %s", f->key,
                        choices(list, sizeof list, f->names));
        if (f->type == F_CHOICE)
            copy_str(base + f->off, TF_EVENT_SHORT_MAX + 1, f->names[idx], strlen(f->names[idx]));
        else
            memcpy(base + f->off, &idx, sizeof idx); /* the data enums are int-sized */
        return TF_EV_OK;
    case F_COUNT:
        if (!is_count(v))
            return fail(c, TF_EV_INVALID_FIELD, "data.%s: must be a non-negative integer", f->key);
        *(int64_t *)(void *)(base + f->off) = (int64_t)tf_json_integer(v);
        return TF_EV_OK;
    case F_MONEY:
    case F_SIGNED_MONEY: {
        /* Bounded so that a customer's lifetime of sums stays far from overflow. */
        long long x = tf_json_is_integer(v) ? tf_json_integer(v) : 0;
        int sign_ok = f->type == F_SIGNED_MONEY ? x >= -c->max_amount : x >= 0;
        if (!tf_json_is_integer(v) || !sign_ok || x > c->max_amount)
            return fail(c, TF_EV_INVALID_FIELD, "data.%s: must be an integer from %s%lld to %lld (minor units)", f->key,
                        f->type == F_SIGNED_MONEY ? "-" : "", f->type == F_SIGNED_MONEY ? (long long)c->max_amount : 0LL,
                        (long long)c->max_amount);
        *(int64_t *)(void *)(base + f->off) = (int64_t)x;
        if (f->type == F_SIGNED_MONEY)
            *(int *)(void *)(base + f->has_off) = 1;
        return TF_EV_OK;
    }
    case F_CURRENCY:
        if (s == NULL || len != 3 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' || s[2] < 'A' ||
            s[2] > 'Z')
            return fail(c, TF_EV_INVALID_FIELD, "data.%s: must be three capital letters (ISO 4217)", f->key);
        copy_str(base + f->off, 4, s, len);
        return TF_EV_OK;
    case F_BIRTHDAY:
        if (s == NULL || !parse_date(s, len, 1, &y, &m, &d))
            return fail(c, TF_EV_INVALID_FIELD, "data.%s: must be a date as MM-DD or YYYY-MM-DD", f->key);
        out->birth_year = y;
        out->birth_month = m;
        out->birth_day = d;
        return TF_EV_OK;
    case F_DATE:
        if (s == NULL || !parse_date(s, len, 0, &y, &m, &d))
            return fail(c, TF_EV_INVALID_FIELD, "data.%s: must be a date as YYYY-MM-DD", f->key);
        out->anniv_year = y;
        out->anniv_month = m;
        out->anniv_day = d;
        return TF_EV_OK;
    case F_ITEMS:
        return check_items(c, v, out);
    case F_TAGS:
        return check_tags(c, v, out);
    case F_CONSENT:
        return check_consent(c, v, out);
    }
    assert(0 && "field type without a case");
    return fail(c, TF_EV_INVALID_FIELD, "data.%s: cannot be validated", f->key);
}

/* Survey: expectation and perception together (numbers 1-10), or nps (0-10), or both. */
static tf_event_error check_survey(const decode_ctx *c, const tf_json_val *data, tf_event_t *out)
{
    const tf_json_val *e = data != NULL ? tf_json_get(data, "expectation") : NULL;
    const tf_json_val *p = data != NULL ? tf_json_get(data, "perception") : NULL;
    const tf_json_val *n = data != NULL ? tf_json_get(data, "nps") : NULL;

    if (e != NULL || p != NULL) {
        if (e == NULL)
            return fail(c, TF_EV_INVALID_FIELD, "data.expectation: required with data.perception");
        if (p == NULL)
            return fail(c, TF_EV_INVALID_FIELD, "data.perception: required with data.expectation");
        if (!tf_json_is_number(e) || tf_json_number(e) < 1 || tf_json_number(e) > 10)
            return fail(c, TF_EV_INVALID_FIELD, "data.expectation: must be a number from 1 to 10");
        if (!tf_json_is_number(p) || tf_json_number(p) < 1 || tf_json_number(p) > 10)
            return fail(c, TF_EV_INVALID_FIELD, "data.perception: must be a number from 1 to 10");
        out->has_sat = 1;
        out->expectation = tf_json_number(e);
        out->perception = tf_json_number(p);
    }
    if (n != NULL) {
        if (!tf_json_is_integer(n) || tf_json_integer(n) < 0 || tf_json_integer(n) > 10)
            return fail(c, TF_EV_INVALID_FIELD, "data.nps: must be an integer from 0 to 10");
        out->nps = (int)tf_json_integer(n);
    }
    if (e == NULL && n == NULL)
        return fail(c, TF_EV_MISSING_FIELD, "data: expectation and perception, or nps, is required");
    return TF_EV_OK;
}

/* data may be NULL (absent): then every field is absent. */
static tf_event_error decode_data(const decode_ctx *c, const tf_json_val *data, tf_event_t *out)
{
    const field_spec *f;
    tf_event_error err;

    for (f = kinds[out->kind].fields; f->key != NULL; f++) {
        const tf_json_val *v = data != NULL ? tf_json_get(data, f->key) : NULL;
        if (v == NULL) {
            if (f->required)
                return fail(c, TF_EV_MISSING_FIELD, "data.%s: required field is missing", f->key);
            continue;
        }
        if ((err = decode_field(c, f, v, out)) != TF_EV_OK)
            return err;
    }
    return kinds[out->kind].check != NULL ? kinds[out->kind].check(c, data, out) : TF_EV_OK;
}

/* ---- entry point ---- */

/* One parser per thread, reused: its node array and scratch grow to the largest
 * record decoded on the thread (bounded by max_record_bytes) and stay, so decoding
 * allocates nothing in the steady state. Never freed: the daemon decodes on one
 * thread for its lifetime. */
static _Thread_local tf_json parser;

static tf_event_error decode(const decode_ctx *c, const tf_event_limits *lim, const char *value, size_t value_len,
                             const tf_event_header *headers, size_t nheaders, int64_t now_ms, tf_event_t *out)
{
    attr a[A__COUNT];
    const int binary = find_header(headers, nheaders, "ce_specversion") != NULL;
    const tf_json_val *root = NULL, *data = NULL;
    tf_json_error jerr;
    tf_event_error err;
    int parse, refused;

    if (value_len > lim->max_record_bytes)
        return fail(c, TF_EV_TOO_LARGE, "value: %zu bytes, more than the limit of %zu", value_len,
                    lim->max_record_bytes);

    /* The parse runs first, its verdict is reported in the contract's order. A text
     * it accepts needs neither byte scan: it is valid UTF-8 (the parser checks the
     * strings as tf_utf8_valid does, all else is ASCII) and its nesting is the
     * tree's. A refused one is scanned, to report the first check it fails.
     * Binary mode: an empty value is an event without data. The parser takes any
     * value at the top, so that a scalar is reported as not_an_object rather than
     * invalid_json; it refuses \u0000, so no decoded string holds a NUL. */
    parse = !binary || value_len > 0;
    if (parse)
        root = tf_json_parse(&parser, value, value_len, &jerr);
    refused = parse && root == NULL;
    if (refused && !tf_utf8_valid(value, value_len))
        return fail(c, TF_EV_INVALID_UTF8, "value: not valid UTF-8");

    memset(a, 0, sizeof a);
    if (binary) {
        attrs_from_headers(a, headers, nheaders);
        for (int i = 0; i < A__COUNT; i++)
            if (a[i].state == ATTR_STRING && !tf_utf8_valid(a[i].s, a[i].len))
                return fail(c, TF_EV_INVALID_UTF8, "%s: header value is not valid UTF-8", a[i].label);
    }

    if (refused ? depth_exceeds((const unsigned char *)value, value_len, lim->max_depth)
                : root != NULL && parser.depth > 0 && parser.depth > lim->max_depth)
        return fail(c, TF_EV_TOO_DEEP, "value: JSON nesting deeper than %d levels", lim->max_depth);
    if (refused)
        return fail(c, TF_EV_INVALID_JSON, "value: invalid JSON at line %d column %d (byte %d): %s", jerr.line,
                    jerr.column, jerr.position, jerr.text);
    if (root != NULL && !tf_json_is_object(root))
        return fail(c, TF_EV_NOT_AN_OBJECT, binary ? "value: data must be a JSON object"
                                                    : "value: must be a JSON object");

    if (!binary) {
        attrs_from_object(a, root);
        data = tf_json_get(root, "data");
    } else {
        data = root;
    }

    err = decode_attrs(c, a, lim, now_ms, out);
    if (err == TF_EV_OK && data != NULL && !tf_json_is_object(data))
        err = fail(c, TF_EV_INVALID_FIELD, "data: must be a JSON object");
    if (err == TF_EV_OK)
        err = decode_data(c, data, out);

    /* In binary mode the attribute strings are the caller's headers; in structured
     * mode they point into the value and the parser, which are not used past this
     * point: out holds copies. */
    return err;
}

tf_event_error tf_event_decode(const tf_event_limits *lim, const void *value, size_t value_len,
                               const tf_event_header *headers, size_t nheaders, int64_t now_ms, tf_event_t *out,
                               char *detail, size_t detail_size)
{
    tf_event_limits defaults;
    decode_ctx c = { detail, detail_size, 0 };
    tf_event_error err;

    if (detail != NULL && detail_size > 0)
        detail[0] = '\0';
    if (out == NULL || (value == NULL && value_len > 0) || (headers == NULL && nheaders > 0))
        return fail(&c, TF_EV_INVALID_FIELD, "decode: bad arguments");
    if (lim == NULL) {
        tf_event_limits_default(&defaults);
        lim = &defaults;
    }
    c.max_amount = lim->max_amount > 0 ? lim->max_amount : INT64_MAX;

    memset(out, 0, sizeof *out);
    out->nps = -1;
    out->duration_s = -1;

    err = decode(&c, lim, value != NULL ? value : "", value_len, headers, nheaders, now_ms, out);
    if (err != TF_EV_OK && detail != NULL && detail_size > 0)
        tidy_detail(detail);
    return err;
}
