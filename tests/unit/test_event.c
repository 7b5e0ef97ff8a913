/* Unit tests for pkg/event: the touchpoint contract (decode) and derived events
 * (encode, ids). Every rejection asserts the exact dead-letter code and that the
 * detail starts with the field's name, as an operator reads it. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "event/event.h"

/* 2026-03-01T10:00:00+08:00, the time of the events built below. */
#define NOW INT64_C(1772330400000)

#define SV "\"1.0\""
#define ID "\"e-1\""
#define SRC "\"/web/shop-cn\""
#define SUBJ "\"c-1\""
#define TIME "\"2026-03-01T10:00:00+08:00\""

static char evbuf[80000];

/* A structured event from raw JSON member values; NULL leaves a member out. */
static const char *ev(const char *specversion, const char *id, const char *source, const char *type,
                      const char *subject, const char *time, const char *data, const char *extra)
{
    const char *names[] = { "specversion", "id", "source", "type", "subject", "time", "data" };
    const char *values[] = { specversion, id, source, type, subject, time, data };
    size_t n = 0;
    int first = 1;

    n += (size_t)snprintf(evbuf + n, sizeof evbuf - n, "{");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (values[i] == NULL)
            continue;
        n += (size_t)snprintf(evbuf + n, sizeof evbuf - n, "%s\"%s\":%s", first ? "" : ",", names[i], values[i]);
        first = 0;
    }
    if (extra != NULL)
        n += (size_t)snprintf(evbuf + n, sizeof evbuf - n, "%s%s", first ? "" : ",", extra);
    snprintf(evbuf + n, sizeof evbuf - n, "}");
    assert_true(n + 1 < sizeof evbuf);
    return evbuf;
}

static char typebuf[64];

static const char *type_of(const char *kind)
{
    snprintf(typebuf, sizeof typebuf, "\"touchpoint.%s\"", kind);
    return typebuf;
}

/* A valid structured event of kind with the given data (NULL: no data). */
static const char *kind_ev(const char *kind, const char *data)
{
    return ev(SV, ID, SRC, type_of(kind), SUBJ, TIME, data, NULL);
}

static tf_event_error dec_len(const char *value, size_t len, tf_event_t *out, char *detail, size_t detail_size)
{
    tf_event_limits lim;

    tf_event_limits_default(&lim);
    return tf_event_decode(&lim, value, len, NULL, 0, NOW, out, detail, detail_size);
}

static void check_error(tf_event_error got, const char *detail, tf_event_error want, const char *field,
                        const char *file, int line)
{
    size_t n = strlen(field);

    if (got != want || strncmp(detail, field, n) != 0 || detail[n] != ':')
        fail_msg("%s:%d: got %s \"%s\", want %s naming \"%s\"", file, line, tf_event_error_code(got), detail,
                 tf_event_error_code(want), field);
}

/* Asserts that a structured value is rejected with code and a detail "field: ...". */
#define EXPECT_ERR(value, code, field)                                                       \
    do {                                                                                     \
        tf_event_t ev_;                                                                      \
        char d_[256];                                                                        \
        const char *v_ = (value);                                                            \
        tf_event_error e_ = dec_len(v_, strlen(v_), &ev_, d_, sizeof d_);                    \
        check_error(e_, d_, (code), (field), __FILE__, __LINE__);                            \
    } while (0)

#define EXPECT_OK(value, evp)                                                                \
    do {                                                                                     \
        char d_[256];                                                                        \
        const char *v_ = (value);                                                            \
        tf_event_error e_ = dec_len(v_, strlen(v_), (evp), d_, sizeof d_);                   \
        if (e_ != TF_EV_OK)                                                                  \
            fail_msg("%s:%d: got %s \"%s\" for %s", __FILE__, __LINE__, tf_event_error_code(e_), d_, v_); \
    } while (0)

/* "\"xxx...\"" of n bytes of ch, in a static buffer per slot. */
static const char *quoted(int slot, char ch, size_t n)
{
    static char bufs[3][70000];
    char *b = bufs[slot];

    assert_true(n + 3 <= sizeof bufs[slot]);
    b[0] = '"';
    memset(b + 1, ch, n);
    b[n + 1] = '"';
    b[n + 2] = '\0';
    return b;
}

/* ---- names and limits ---- */

static void test_limits_default(void **state)
{
    tf_event_limits lim;

    (void)state;
    tf_event_limits_default(&lim);
    assert_int_equal(lim.max_record_bytes, 65536);
    assert_int_equal(lim.max_id_bytes, 128);
    assert_int_equal(lim.max_depth, 16);
    assert_int_equal(lim.max_future_skew_ms, 24 * 3600 * 1000);
}

static void test_names(void **state)
{
    static const char *const kinds[] = { "web_visit", "call", "purchase", "refund", "complaint",
                                         "complaint_update", "survey", "referral", "profile", "email",
                                         "social", "store_visit", "event_attendance", "contract_end",
                                         "unsubscribe" };
    static const char *const codes[] = { "too_large", "invalid_utf8", "invalid_json", "not_an_object",
                                         "too_deep", "unsupported_specversion", "missing_field",
                                         "invalid_field", "unknown_type", "invalid_subject", "invalid_time",
                                         "time_out_of_range", "state_error", "key_mismatch" };
    tf_event_kind k;

    (void)state;
    for (int i = 0; i < TF_KIND__COUNT; i++) {
        assert_string_equal(tf_event_kind_name((tf_event_kind)i), kinds[i]);
        assert_int_equal(tf_event_kind_parse(kinds[i], strlen(kinds[i]), &k), TF_OK);
        assert_int_equal(k, i);
    }
    assert_null(tf_event_kind_name(TF_KIND__COUNT));
    assert_int_equal(tf_event_kind_parse("purchases", 9, &k), TF_ENOTFOUND);
    assert_int_equal(tf_event_kind_parse("purchase", 7, &k), TF_ENOTFOUND);
    for (int i = 1; i < TF_EV__COUNT; i++)
        assert_string_equal(tf_event_error_code((tf_event_error)i), codes[i - 1]);

    assert_string_equal(tf_derived_type_name(TF_DERIVED_STAGE_CHANGED), "touchflow.lifecycle.stage_changed");
    assert_string_equal(tf_derived_type_name(TF_DERIVED_CHURN_CLEARED), "touchflow.churn.cleared");
    assert_string_equal(tf_derived_type_name(TF_DERIVED_WINBACK_SUCCEEDED), "touchflow.winback.succeeded");
    assert_null(tf_derived_type_name(TF_DERIVED__COUNT));
    /* The family is always the middle part of the type name. */
    for (int t = 0; t < TF_DERIVED__COUNT; t++) {
        char want[64];
        const char *name = tf_derived_type_name((tf_derived_type)t);
        const char *dot = strchr(name + strlen("touchflow."), '.');
        snprintf(want, sizeof want, "%.*s", (int)(dot - name - strlen("touchflow.")), name + strlen("touchflow."));
        assert_string_equal(tf_derived_family((tf_derived_type)t), want);
    }
    assert_string_equal(tf_complaint_category_name(TF_CAT_SHIPPING), "shipping");
    assert_string_equal(tf_complaint_severity_name(TF_SEV_CRITICAL), "critical");
    assert_null(tf_complaint_category_name(TF_CAT_NONE));
    assert_null(tf_complaint_severity_name(TF_SEV_NONE));
}

/* ---- envelope-level rejections ---- */

static void test_malformed_json(void **state)
{
    tf_event_t e;
    char d[256];
    const char *bad = "{\"specversion\":\"1.0\",";

    (void)state;
    EXPECT_ERR(bad, TF_EV_INVALID_JSON, "value");
    /* The parse error's position and message are in the detail. */
    assert_int_equal(dec_len(bad, strlen(bad), &e, d, sizeof d), TF_EV_INVALID_JSON);
    assert_non_null(strstr(d, "line 1"));
    EXPECT_ERR("{\"a\":1} trailing", TF_EV_INVALID_JSON, "value");
    EXPECT_ERR("{'a':1}", TF_EV_INVALID_JSON, "value");
    EXPECT_ERR("", TF_EV_INVALID_JSON, "value");
    /* \u0000 would put a NUL into a C string: JSON_ALLOW_NUL stays off. */
    EXPECT_ERR(ev(SV, "\"a\\u0000b\"", SRC, type_of("web_visit"), SUBJ, TIME, NULL, NULL), TF_EV_INVALID_JSON,
               "value");
}

static void test_not_an_object(void **state)
{
    (void)state;
    EXPECT_ERR("[1,2]", TF_EV_NOT_AN_OBJECT, "value");
    EXPECT_ERR("\"event\"", TF_EV_NOT_AN_OBJECT, "value");
    EXPECT_ERR("42", TF_EV_NOT_AN_OBJECT, "value");
    EXPECT_ERR("null", TF_EV_NOT_AN_OBJECT, "value");
}

static void test_too_large(void **state)
{
    static char big[70000];
    tf_event_t e;
    char d[256];
    size_t base;

    (void)state;
    /* A valid event padded to exactly the limit passes; one byte more does not. */
    base = strlen(ev(SV, ID, SRC, type_of("web_visit"), SUBJ, TIME, NULL, "\"pad\":\"\""));
    strcpy(big, ev(SV, ID, SRC, type_of("web_visit"), SUBJ, TIME, NULL, "\"pad\":\"\""));
    {
        size_t pad = 65536 - base;
        char *p = big + base - 2; /* before the closing quote and brace */
        memset(p, 'x', pad);
        memcpy(p + pad, "\"}", 3);
    }
    assert_int_equal(strlen(big), 65536);
    EXPECT_OK(big, &e);
    big[65536 - 2] = 'x';
    memcpy(big + 65536 - 1, "\"}", 3);
    assert_int_equal(strlen(big), 65537);
    assert_int_equal(dec_len(big, strlen(big), &e, d, sizeof d), TF_EV_TOO_LARGE);
    EXPECT_ERR(big, TF_EV_TOO_LARGE, "value");

    /* The limit is the caller's: a small one applies before anything else is read. */
    {
        tf_event_limits lim;
        tf_event_limits_default(&lim);
        lim.max_record_bytes = 10;
        assert_int_equal(tf_event_decode(&lim, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11, NULL, 0, NOW, &e,
                                         d, sizeof d),
                         TF_EV_TOO_LARGE);
    }
}

static void test_invalid_utf8_value(void **state)
{
    (void)state;
    EXPECT_ERR(ev(SV, ID, SRC, type_of("web_visit"), "\"c-\xff\"", TIME, NULL, NULL), TF_EV_INVALID_UTF8, "value");
    /* Overlong "/" and a UTF-16 surrogate. */
    EXPECT_ERR(ev(SV, ID, SRC, type_of("web_visit"), SUBJ, TIME, "{\"page\":\"\xc0\xaf\"}", NULL),
               TF_EV_INVALID_UTF8, "value");
    EXPECT_ERR(ev(SV, ID, "\"\xed\xa0\x80\"", type_of("web_visit"), SUBJ, TIME, NULL, NULL), TF_EV_INVALID_UTF8,
               "value");
    /* Truncated sequence at the very end. */
    EXPECT_ERR("{\"a\":1}\xe4\xb8", TF_EV_INVALID_UTF8, "value");
}

static void test_too_deep(void **state)
{
    char extra[256];
    tf_event_t e;

    (void)state;
    /* The event object is level 1; "x" adds 15 levels (16 in all), then 16 (17). */
    snprintf(extra, sizeof extra, "\"x\":%.*s%.*s", 15, "[[[[[[[[[[[[[[[[[[[[", 15, "]]]]]]]]]]]]]]]]]]]]");
    EXPECT_OK(ev(SV, ID, SRC, type_of("web_visit"), SUBJ, TIME, NULL, extra), &e);
    snprintf(extra, sizeof extra, "\"x\":%.*s%.*s", 16, "[[[[[[[[[[[[[[[[[[[[", 16, "]]]]]]]]]]]]]]]]]]]]");
    EXPECT_ERR(ev(SV, ID, SRC, type_of("web_visit"), SUBJ, TIME, NULL, extra), TF_EV_TOO_DEEP, "value");
    /* Mixed objects and arrays, through data. */
    EXPECT_ERR(ev(SV, ID, SRC, type_of("web_visit"), SUBJ, TIME,
                  "{\"a\":{\"b\":[{\"c\":[[{\"d\":{\"e\":[[[{\"f\":[[[[1]]]]}]]]}}]]}]}}", NULL),
               TF_EV_TOO_DEEP, "value");
    /* Brackets inside strings, escaped quotes included, do not count. */
    EXPECT_OK(ev(SV, ID, SRC, type_of("web_visit"), SUBJ, TIME,
                 "{\"page\":\"\\\"[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{{\"}", NULL),
              &e);
    /* Too deep is found before the text is parsed: the rest may be garbage. */
    EXPECT_ERR("[[[[[[[[[[[[[[[[[[ garbage", TF_EV_TOO_DEEP, "value");
}

static void test_unsupported_specversion(void **state)
{
    (void)state;
    EXPECT_ERR(ev("\"0.3\"", ID, SRC, type_of("web_visit"), SUBJ, TIME, NULL, NULL), TF_EV_UNSUPPORTED_SPECVERSION,
               "specversion");
    EXPECT_ERR(ev("\"1.0 \"", ID, SRC, type_of("web_visit"), SUBJ, TIME, NULL, NULL),
               TF_EV_UNSUPPORTED_SPECVERSION, "specversion");
    EXPECT_ERR(ev("1.0", ID, SRC, type_of("web_visit"), SUBJ, TIME, NULL, NULL), TF_EV_INVALID_FIELD, "specversion");
}

static void test_missing_attributes(void **state)
{
    const char *t = type_of("web_visit");

    (void)state;
    EXPECT_ERR(ev(NULL, ID, SRC, t, SUBJ, TIME, NULL, NULL), TF_EV_MISSING_FIELD, "specversion");
    EXPECT_ERR(ev(SV, NULL, SRC, t, SUBJ, TIME, NULL, NULL), TF_EV_MISSING_FIELD, "id");
    EXPECT_ERR(ev(SV, ID, NULL, t, SUBJ, TIME, NULL, NULL), TF_EV_MISSING_FIELD, "source");
    EXPECT_ERR(ev(SV, ID, SRC, NULL, SUBJ, TIME, NULL, NULL), TF_EV_MISSING_FIELD, "type");
    EXPECT_ERR(ev(SV, ID, SRC, t, NULL, TIME, NULL, NULL), TF_EV_MISSING_FIELD, "subject");
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, NULL, NULL, NULL), TF_EV_MISSING_FIELD, "time");
    EXPECT_ERR("{}", TF_EV_MISSING_FIELD, "specversion");
    /* Presence is checked for every attribute before any type or content. */
    EXPECT_ERR(ev(SV, "7", SRC, "\"touchpoint.nope\"", "\"\"", NULL, NULL, NULL), TF_EV_MISSING_FIELD, "time");
    EXPECT_ERR(ev(SV, "\"\"", SRC, t, "7", TIME, NULL, NULL), TF_EV_INVALID_FIELD, "subject");
    /* specversion comes first of all. */
    EXPECT_ERR(ev("\"2.0\"", NULL, NULL, NULL, NULL, NULL, NULL, NULL), TF_EV_UNSUPPORTED_SPECVERSION, "specversion");
}

static void test_wrong_attribute_types(void **state)
{
    const char *t = type_of("web_visit");

    (void)state;
    EXPECT_ERR(ev(SV, "42", SRC, t, SUBJ, TIME, NULL, NULL), TF_EV_INVALID_FIELD, "id");
    EXPECT_ERR(ev(SV, ID, "true", t, SUBJ, TIME, NULL, NULL), TF_EV_INVALID_FIELD, "source");
    EXPECT_ERR(ev(SV, ID, SRC, "null", SUBJ, TIME, NULL, NULL), TF_EV_INVALID_FIELD, "type");
    EXPECT_ERR(ev(SV, ID, SRC, t, "5", TIME, NULL, NULL), TF_EV_INVALID_FIELD, "subject");
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, "1772330400000", NULL, NULL), TF_EV_INVALID_FIELD, "time");
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, TIME, "\"x\"", NULL), TF_EV_INVALID_FIELD, "data");
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, TIME, "[]", NULL), TF_EV_INVALID_FIELD, "data");
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, TIME, "null", NULL), TF_EV_INVALID_FIELD, "data");
}

static void test_id_and_source_length(void **state)
{
    const char *t = type_of("web_visit");
    tf_event_t e;

    (void)state;
    EXPECT_OK(ev(SV, quoted(0, 'i', 128), SRC, t, SUBJ, TIME, NULL, NULL), &e);
    assert_int_equal(strlen(e.id), 128);
    EXPECT_ERR(ev(SV, quoted(0, 'i', 129), SRC, t, SUBJ, TIME, NULL, NULL), TF_EV_INVALID_FIELD, "id");
    EXPECT_ERR(ev(SV, "\"\"", SRC, t, SUBJ, TIME, NULL, NULL), TF_EV_INVALID_FIELD, "id");

    EXPECT_OK(ev(SV, ID, quoted(0, 's', 256), t, SUBJ, TIME, NULL, NULL), &e);
    assert_int_equal(strlen(e.source), 256);
    EXPECT_ERR(ev(SV, ID, quoted(0, 's', 257), t, SUBJ, TIME, NULL, NULL), TF_EV_INVALID_FIELD, "source");
    EXPECT_ERR(ev(SV, ID, "\"\"", t, SUBJ, TIME, NULL, NULL), TF_EV_INVALID_FIELD, "source");

    /* A tighter configured id limit. */
    {
        tf_event_limits lim;
        char d[256];
        const char *v = ev(SV, quoted(0, 'i', 40), SRC, t, SUBJ, TIME, NULL, NULL);
        tf_event_limits_default(&lim);
        lim.max_id_bytes = 32;
        assert_int_equal(tf_event_decode(&lim, v, strlen(v), NULL, 0, NOW, &e, d, sizeof d), TF_EV_INVALID_FIELD);
        assert_memory_equal(d, "id:", 3);
    }
}

static void test_unknown_type(void **state)
{
    (void)state;
    EXPECT_ERR(ev(SV, ID, SRC, "\"touchpoint.teleport\"", SUBJ, TIME, NULL, NULL), TF_EV_UNKNOWN_TYPE, "type");
    EXPECT_ERR(ev(SV, ID, SRC, "\"purchase\"", SUBJ, TIME, NULL, NULL), TF_EV_UNKNOWN_TYPE, "type");
    EXPECT_ERR(ev(SV, ID, SRC, "\"touchpoint.\"", SUBJ, TIME, NULL, NULL), TF_EV_UNKNOWN_TYPE, "type");
    EXPECT_ERR(ev(SV, ID, SRC, "\"Touchpoint.purchase\"", SUBJ, TIME, NULL, NULL), TF_EV_UNKNOWN_TYPE, "type");
    EXPECT_ERR(ev(SV, ID, SRC, "\"touchpoint.purchase.v2\"", SUBJ, TIME, NULL, NULL), TF_EV_UNKNOWN_TYPE, "type");
}

static void test_invalid_subject(void **state)
{
    const char *t = type_of("web_visit");
    tf_event_t e;

    (void)state;
    EXPECT_ERR(ev(SV, ID, SRC, t, "\"c\\u0001x\"", TIME, NULL, NULL), TF_EV_INVALID_SUBJECT, "subject");
    EXPECT_ERR(ev(SV, ID, SRC, t, "\"c\\n\"", TIME, NULL, NULL), TF_EV_INVALID_SUBJECT, "subject");
    EXPECT_ERR(ev(SV, ID, SRC, t, "\"c\\u007f\"", TIME, NULL, NULL), TF_EV_INVALID_SUBJECT, "subject");
    EXPECT_ERR(ev(SV, ID, SRC, t, "\"c\\u0085\"", TIME, NULL, NULL), TF_EV_INVALID_SUBJECT, "subject"); /* C1 */
    EXPECT_ERR(ev(SV, ID, SRC, t, "\"\"", TIME, NULL, NULL), TF_EV_INVALID_SUBJECT, "subject");
    EXPECT_ERR(ev(SV, ID, SRC, t, quoted(0, 'c', 129), TIME, NULL, NULL), TF_EV_INVALID_SUBJECT, "subject");

    EXPECT_OK(ev(SV, ID, SRC, t, quoted(0, 'c', 128), TIME, NULL, NULL), &e);
    assert_int_equal(strlen(e.subject), 128);
    /* Printable non-ASCII (U+00A0 is just past C1) is fine. */
    EXPECT_OK(ev(SV, ID, SRC, t, "\"\xe5\xae\xa2\xe6\x88\xb7-1 \xc2\xa0\xc3\xa9\"", TIME, NULL, NULL), &e);
    assert_string_equal(e.subject, "\xe5\xae\xa2\xe6\x88\xb7-1 \xc2\xa0\xc3\xa9");
}

static void test_bad_time(void **state)
{
    const char *t = type_of("web_visit");
    tf_event_t e;

    (void)state;
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, "\"yesterday\"", NULL, NULL), TF_EV_INVALID_TIME, "time");
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, "\"2026-03-01T10:00:00\"", NULL, NULL), TF_EV_INVALID_TIME, "time");
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, "\"2026-03-01\"", NULL, NULL), TF_EV_INVALID_TIME, "time");
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, "\"2026-02-30T10:00:00Z\"", NULL, NULL), TF_EV_INVALID_TIME, "time");
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, "\"\"", NULL, NULL), TF_EV_INVALID_TIME, "time");
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, "\"1969-12-31T23:59:59Z\"", NULL, NULL), TF_EV_INVALID_TIME, "time");
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, "\"0001-01-01T00:00:00Z\"", NULL, NULL), TF_EV_INVALID_TIME, "time");
    /* Year 1970 in the text, but before the epoch in UTC. */
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, "\"1970-01-01T00:30:00+01:00\"", NULL, NULL), TF_EV_INVALID_TIME, "time");
    /* Year 1969 in the text is rejected even when the instant is after the epoch. */
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, "\"1969-12-31T23:00:00-02:00\"", NULL, NULL), TF_EV_INVALID_TIME, "time");

    EXPECT_OK(ev(SV, ID, SRC, t, SUBJ, "\"1970-01-01T00:00:00Z\"", NULL, NULL), &e);
    assert_int_equal(e.time_ms, 0);
    EXPECT_OK(ev(SV, ID, SRC, t, SUBJ, "\"2026-03-01T02:00:00.250Z\"", NULL, NULL), &e);
    assert_int_equal(e.time_ms, NOW + 250);
}

static void test_far_future_time(void **state)
{
    const char *t = type_of("web_visit");
    tf_event_t e;

    (void)state;
    /* NOW + 24 h exactly is allowed, one millisecond more is not. */
    EXPECT_OK(ev(SV, ID, SRC, t, SUBJ, "\"2026-03-02T02:00:00.000Z\"", NULL, NULL), &e);
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, "\"2026-03-02T02:00:00.001Z\"", NULL, NULL), TF_EV_TIME_OUT_OF_RANGE, "time");
    EXPECT_ERR(ev(SV, ID, SRC, t, SUBJ, "\"9999-12-31T23:59:59Z\"", NULL, NULL), TF_EV_TIME_OUT_OF_RANGE, "time");
    /* The past is always fine (late events are normal). */
    EXPECT_OK(ev(SV, ID, SRC, t, SUBJ, "\"2001-01-01T00:00:00+08:00\"", NULL, NULL), &e);
}

/* ---- data rejections ---- */

static void test_amount(void **state)
{
    tf_event_t e;

    (void)state;
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":-1,\"currency\":\"CNY\"}"), TF_EV_INVALID_FIELD,
               "data.amount");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":12.5,\"currency\":\"CNY\"}"), TF_EV_INVALID_FIELD,
               "data.amount");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":12.0,\"currency\":\"CNY\"}"), TF_EV_INVALID_FIELD,
               "data.amount");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":1e3,\"currency\":\"CNY\"}"), TF_EV_INVALID_FIELD,
               "data.amount");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":\"12\",\"currency\":\"CNY\"}"),
               TF_EV_INVALID_FIELD, "data.amount");
    EXPECT_ERR(kind_ev("refund", "{\"order_id\":\"o-1\",\"amount\":-500,\"currency\":\"CNY\"}"), TF_EV_INVALID_FIELD,
               "data.amount");
    EXPECT_OK(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":0,\"currency\":\"CNY\"}"), &e);
    assert_int_equal(e.amount, 0);
    /* Up to limits.max_amount (10^12 by default), not one more. */
    EXPECT_OK(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":1000000000000,\"currency\":\"CNY\"}"), &e);
    assert_int_equal(e.amount, INT64_C(1000000000000));
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":1000000000001,\"currency\":\"CNY\"}"),
               TF_EV_INVALID_FIELD, "data.amount");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":9223372036854775000,\"currency\":\"CNY\"}"),
               TF_EV_INVALID_FIELD, "data.amount");
    EXPECT_ERR(kind_ev("refund", "{\"order_id\":\"o-1\",\"amount\":1000000000001,\"currency\":\"CNY\"}"),
               TF_EV_INVALID_FIELD, "data.amount");
    /* A margin may be negative, within the same bound. */
    EXPECT_OK(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":5,\"currency\":\"CNY\",\"margin\":-1000000000000}"),
              &e);
    assert_int_equal(e.margin, -INT64_C(1000000000000));
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":5,\"currency\":\"CNY\",\"margin\":-1000000000001}"),
               TF_EV_INVALID_FIELD, "data.margin");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":5,\"currency\":\"CNY\",\"margin\":1.5}"),
               TF_EV_INVALID_FIELD, "data.margin");
}

static void test_money_other_fields(void **state)
{
    tf_event_t e;

    (void)state;
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":1,\"currency\":\"cny\"}"), TF_EV_INVALID_FIELD,
               "data.currency");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":1,\"currency\":\"CN\"}"), TF_EV_INVALID_FIELD,
               "data.currency");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":1,\"currency\":\"CNYX\"}"), TF_EV_INVALID_FIELD,
               "data.currency");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":1,\"currency\":156}"), TF_EV_INVALID_FIELD,
               "data.currency");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o-1\",\"amount\":1,\"currency\":\"CNY\",\"margin\":1.5}"),
               TF_EV_INVALID_FIELD, "data.margin");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"\",\"amount\":1,\"currency\":\"CNY\"}"), TF_EV_INVALID_FIELD,
               "data.order_id");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":7,\"amount\":1,\"currency\":\"CNY\"}"), TF_EV_INVALID_FIELD,
               "data.order_id");
    {
        char data[400];
        assert_true(snprintf(data, sizeof data, "{\"order_id\":%s,\"amount\":1,\"currency\":\"CNY\"}",
                             quoted(1, 'o', 129)) < (int)sizeof data);
        EXPECT_ERR(kind_ev("purchase", data), TF_EV_INVALID_FIELD, "data.order_id");
        assert_true(snprintf(data, sizeof data, "{\"order_id\":%s,\"amount\":1,\"currency\":\"CNY\"}",
                             quoted(1, 'o', 128)) < (int)sizeof data);
        EXPECT_OK(kind_ev("purchase", data), &e);
        assert_int_equal(strlen(e.order_id), 128);
    }
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o\",\"amount\":1,\"currency\":\"CNY\",\"items\":{}}"),
               TF_EV_INVALID_FIELD, "data.items");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o\",\"amount\":1,\"currency\":\"CNY\",\"items\":[1]}"),
               TF_EV_INVALID_FIELD, "data.items[0]");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o\",\"amount\":1,\"currency\":\"CNY\","
                                   "\"items\":[{\"sku\":\"a\",\"qty\":1,\"price\":1},{\"sku\":\"b\",\"qty\":-1}]}"),
               TF_EV_INVALID_FIELD, "data.items[1].qty");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o\",\"amount\":1,\"currency\":\"CNY\","
                                   "\"items\":[{\"sku\":\"a\",\"price\":2.5}]}"),
               TF_EV_INVALID_FIELD, "data.items[0].price");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o\",\"amount\":1,\"currency\":\"CNY\",\"items\":[{\"sku\":1}]}"),
               TF_EV_INVALID_FIELD, "data.items[0].sku");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o\",\"amount\":1,\"currency\":\"CNY\",\"channel\":5}"),
               TF_EV_INVALID_FIELD, "data.channel");
}

static void test_missing_data_fields(void **state)
{
    (void)state;
    EXPECT_ERR(kind_ev("purchase", "{\"amount\":1,\"currency\":\"CNY\"}"), TF_EV_MISSING_FIELD, "data.order_id");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o\",\"currency\":\"CNY\"}"), TF_EV_MISSING_FIELD, "data.amount");
    EXPECT_ERR(kind_ev("purchase", "{\"order_id\":\"o\",\"amount\":1}"), TF_EV_MISSING_FIELD, "data.currency");
    EXPECT_ERR(kind_ev("purchase", NULL), TF_EV_MISSING_FIELD, "data.order_id");
    EXPECT_ERR(kind_ev("refund", "{}"), TF_EV_MISSING_FIELD, "data.order_id");
    EXPECT_ERR(kind_ev("call", "{}"), TF_EV_MISSING_FIELD, "data.direction");
    EXPECT_ERR(kind_ev("complaint", "{\"complaint_id\":\"k\",\"category\":\"quality\"}"), TF_EV_MISSING_FIELD,
               "data.severity");
    EXPECT_ERR(kind_ev("complaint_update", "{\"complaint_id\":\"k\"}"), TF_EV_MISSING_FIELD, "data.status");
    EXPECT_ERR(kind_ev("survey", "{}"), TF_EV_MISSING_FIELD, "data");
    EXPECT_ERR(kind_ev("survey", NULL), TF_EV_MISSING_FIELD, "data");
    EXPECT_ERR(kind_ev("referral", NULL), TF_EV_MISSING_FIELD, "data.referred_id");
    EXPECT_ERR(kind_ev("email", "{\"campaign\":\"x\"}"), TF_EV_MISSING_FIELD, "data.action");
    EXPECT_ERR(kind_ev("social", "{}"), TF_EV_MISSING_FIELD, "data.action");
}

static void test_wrong_data_types(void **state)
{
    (void)state;
    EXPECT_ERR(kind_ev("web_visit", "{\"channel\":\"tv\"}"), TF_EV_INVALID_FIELD, "data.channel");
    EXPECT_ERR(kind_ev("web_visit", "{\"duration_s\":-5}"), TF_EV_INVALID_FIELD, "data.duration_s");
    EXPECT_ERR(kind_ev("web_visit", "{\"duration_s\":\"5\"}"), TF_EV_INVALID_FIELD, "data.duration_s");
    EXPECT_ERR(kind_ev("web_visit", "{\"page\":1}"), TF_EV_INVALID_FIELD, "data.page");
    EXPECT_ERR(kind_ev("call", "{\"direction\":\"sideways\"}"), TF_EV_INVALID_FIELD, "data.direction");
    EXPECT_ERR(kind_ev("call", "{\"direction\":1}"), TF_EV_INVALID_FIELD, "data.direction");
    EXPECT_ERR(kind_ev("call", "{\"direction\":\"inbound\",\"outcome\":\"hung_up\"}"), TF_EV_INVALID_FIELD,
               "data.outcome");
    EXPECT_ERR(kind_ev("complaint", "{\"complaint_id\":\"k\",\"category\":\"price\",\"severity\":\"low\"}"),
               TF_EV_INVALID_FIELD, "data.category");
    EXPECT_ERR(kind_ev("complaint", "{\"complaint_id\":\"k\",\"category\":\"quality\",\"severity\":\"urgent\"}"),
               TF_EV_INVALID_FIELD, "data.severity");
    EXPECT_ERR(kind_ev("complaint_update", "{\"complaint_id\":\"k\",\"status\":\"closed\"}"), TF_EV_INVALID_FIELD,
               "data.status");
    EXPECT_ERR(kind_ev("email", "{\"action\":\"delete\"}"), TF_EV_INVALID_FIELD, "data.action");
    EXPECT_ERR(kind_ev("social", "{\"action\":\"poke\"}"), TF_EV_INVALID_FIELD, "data.action");
    EXPECT_ERR(kind_ev("event_attendance", "{\"format\":\"party\"}"), TF_EV_INVALID_FIELD, "data.format");
    EXPECT_ERR(kind_ev("referral", "{\"referred_id\":\"c\\u0002\"}"), TF_EV_INVALID_FIELD, "data.referred_id");
    EXPECT_ERR(kind_ev("referral", "{\"referred_id\":\"\"}"), TF_EV_INVALID_FIELD, "data.referred_id");
    EXPECT_ERR(kind_ev("store_visit", "{\"store_id\":[]}"), TF_EV_INVALID_FIELD, "data.store_id");
    EXPECT_ERR(kind_ev("contract_end", "{\"reason\":false}"), TF_EV_INVALID_FIELD, "data.reason");
}

static void test_survey_rules(void **state)
{
    tf_event_t e;

    (void)state;
    EXPECT_ERR(kind_ev("survey", "{\"expectation\":8}"), TF_EV_INVALID_FIELD, "data.perception");
    EXPECT_ERR(kind_ev("survey", "{\"perception\":8,\"nps\":5}"), TF_EV_INVALID_FIELD, "data.expectation");
    EXPECT_ERR(kind_ev("survey", "{\"expectation\":11,\"perception\":8}"), TF_EV_INVALID_FIELD, "data.expectation");
    EXPECT_ERR(kind_ev("survey", "{\"expectation\":8,\"perception\":0.5}"), TF_EV_INVALID_FIELD, "data.perception");
    EXPECT_ERR(kind_ev("survey", "{\"expectation\":\"8\",\"perception\":8}"), TF_EV_INVALID_FIELD,
               "data.expectation");
    EXPECT_ERR(kind_ev("survey", "{\"nps\":11}"), TF_EV_INVALID_FIELD, "data.nps");
    EXPECT_ERR(kind_ev("survey", "{\"nps\":-1}"), TF_EV_INVALID_FIELD, "data.nps");
    EXPECT_ERR(kind_ev("survey", "{\"nps\":5.5}"), TF_EV_INVALID_FIELD, "data.nps");
    EXPECT_OK(kind_ev("survey", "{\"expectation\":1,\"perception\":10}"), &e);
    assert_int_equal(e.has_sat, 1);
    assert_int_equal(e.nps, -1);
    EXPECT_OK(kind_ev("survey", "{\"nps\":0}"), &e);
    assert_int_equal(e.has_sat, 0);
    assert_int_equal(e.nps, 0);
}

static void test_profile_rules(void **state)
{
    tf_event_t e;

    (void)state;
    EXPECT_ERR(kind_ev("profile", "{\"birthday\":\"02-30\"}"), TF_EV_INVALID_FIELD, "data.birthday");
    EXPECT_ERR(kind_ev("profile", "{\"birthday\":\"13-01\"}"), TF_EV_INVALID_FIELD, "data.birthday");
    EXPECT_ERR(kind_ev("profile", "{\"birthday\":\"2023-02-29\"}"), TF_EV_INVALID_FIELD, "data.birthday");
    EXPECT_ERR(kind_ev("profile", "{\"birthday\":\"1990/07/15\"}"), TF_EV_INVALID_FIELD, "data.birthday");
    EXPECT_ERR(kind_ev("profile", "{\"birthday\":715}"), TF_EV_INVALID_FIELD, "data.birthday");
    EXPECT_ERR(kind_ev("profile", "{\"anniversary\":\"06-01\"}"), TF_EV_INVALID_FIELD, "data.anniversary");
    EXPECT_ERR(kind_ev("profile", "{\"anniversary\":\"2015-06-31\"}"), TF_EV_INVALID_FIELD, "data.anniversary");
    EXPECT_ERR(kind_ev("profile", "{\"tags\":\"vip\"}"), TF_EV_INVALID_FIELD, "data.tags");
    EXPECT_ERR(kind_ev("profile", "{\"tags\":[\"vip\",1]}"), TF_EV_INVALID_FIELD, "data.tags[1]");
    EXPECT_ERR(kind_ev("profile", "{\"consent\":true}"), TF_EV_INVALID_FIELD, "data.consent");
    EXPECT_ERR(kind_ev("profile", "{\"consent\":{\"sms\":\"yes\"}}"), TF_EV_INVALID_FIELD, "data.consent.sms");
    EXPECT_ERR(kind_ev("profile", "{\"name\":{}}"), TF_EV_INVALID_FIELD, "data.name");

    EXPECT_OK(kind_ev("profile", "{\"birthday\":\"02-29\"}"), &e);
    assert_int_equal(e.birth_year, 0);
    assert_int_equal(e.birth_month, 2);
    assert_int_equal(e.birth_day, 29);
    EXPECT_OK(kind_ev("profile", "{\"birthday\":\"2024-02-29\"}"), &e);
    assert_int_equal(e.birth_year, 2024);
    EXPECT_OK(kind_ev("profile", NULL), &e);
    assert_int_equal(e.birth_month, 0);
}

/* Tags (at most 16 of 1-32 bytes, no control character, no comma) and consent are
 * kept; an unsubscribe withdraws consent to its channel, or to every channel. */
static void test_tags_consent(void **state)
{
    tf_event_t e;
    char data[1024];
    size_t n = 0;

    (void)state;
    n += (size_t)snprintf(data + n, sizeof data - n, "{\"tags\":[");
    for (int i = 0; i < 17; i++)
        n += (size_t)snprintf(data + n, sizeof data - n, "%s\"t%d\"", i ? "," : "", i);
    snprintf(data + n, sizeof data - n, "]}");
    EXPECT_ERR(kind_ev("profile", data), TF_EV_INVALID_FIELD, "data.tags");
    EXPECT_ERR(kind_ev("profile", "{\"tags\":[\"vip\",\"\"]}"), TF_EV_INVALID_FIELD, "data.tags[1]");
    EXPECT_ERR(kind_ev("profile", "{\"tags\":[\"123456789012345678901234567890123\"]}"), TF_EV_INVALID_FIELD,
               "data.tags[0]");
    EXPECT_ERR(kind_ev("profile", "{\"tags\":[\"a,b\"]}"), TF_EV_INVALID_FIELD, "data.tags[0]");
    EXPECT_ERR(kind_ev("profile", "{\"tags\":[\"a\\nb\"]}"), TF_EV_INVALID_FIELD, "data.tags[0]");

    /* 16 tags, one of 32 bytes, a repeat kept once. */
    n = (size_t)snprintf(data, sizeof data, "{\"tags\":[\"12345678901234567890123456789012\"");
    for (int i = 1; i < 16; i++)
        n += (size_t)snprintf(data + n, sizeof data - n, ",\"t%d\"", i == 15 ? 1 : i);
    snprintf(data + n, sizeof data - n, "]}");
    EXPECT_OK(kind_ev("profile", data), &e);
    assert_int_equal(e.has_tags, 1);
    assert_int_equal(e.ntags, 15);
    assert_string_equal(e.tags[0], "12345678901234567890123456789012");
    assert_string_equal(e.tags[14], "t14");
    EXPECT_OK(kind_ev("profile", "{\"tags\":[]}"), &e);
    assert_int_equal(e.has_tags, 1);
    assert_int_equal(e.ntags, 0);
    EXPECT_OK(kind_ev("profile", "{\"consent\":{\"email\":true,\"sms\":false}}"), &e);
    assert_int_equal(e.has_tags, 0);
    assert_int_equal(e.consent[TF_CHANNEL_EMAIL], TF_CONSENT_GRANTED);
    assert_int_equal(e.consent[TF_CHANNEL_SMS], TF_CONSENT_WITHDRAWN);
    assert_int_equal(e.consent[TF_CHANNEL_PHONE], TF_CONSENT_UNSTATED);

    EXPECT_ERR(kind_ev("unsubscribe", "{\"channel\":\"fax\"}"), TF_EV_INVALID_FIELD, "data.channel");
    EXPECT_ERR(kind_ev("unsubscribe", "{\"channel\":1}"), TF_EV_INVALID_FIELD, "data.channel");
    EXPECT_OK(kind_ev("unsubscribe", "{\"channel\":\"sms\",\"reason\":\"too many\"}"), &e);
    assert_string_equal(e.channel, "sms");
    assert_int_equal(e.consent[TF_CHANNEL_EMAIL], TF_CONSENT_UNSTATED);
    assert_int_equal(e.consent[TF_CHANNEL_SMS], TF_CONSENT_WITHDRAWN);
    assert_int_equal(e.consent[TF_CHANNEL_PHONE], TF_CONSENT_UNSTATED);
    EXPECT_OK(kind_ev("unsubscribe", NULL), &e);
    for (int i = 0; i < TF_CHANNEL__COUNT; i++)
        assert_int_equal(e.consent[i], TF_CONSENT_WITHDRAWN);
    /* contract_end states no consent. */
    EXPECT_OK(kind_ev("contract_end", NULL), &e);
    for (int i = 0; i < TF_CHANNEL__COUNT; i++)
        assert_int_equal(e.consent[i], TF_CONSENT_UNSTATED);
}

/* ---- valid events ---- */

static void decode_kind(const char *kind, const char *data, tf_event_kind want, tf_event_t *e)
{
    EXPECT_OK(kind_ev(kind, data), e);
    assert_int_equal(e->kind, want);
    assert_string_equal(e->id, "e-1");
    assert_string_equal(e->source, "/web/shop-cn");
    assert_string_equal(e->subject, "c-1");
    assert_int_equal(e->time_ms, NOW);
}

static void test_every_kind_valid(void **state)
{
    tf_event_t e;

    (void)state;
    decode_kind("web_visit", "{\"channel\":\"mini_program\",\"page\":\"/p\",\"duration_s\":42,"
                             "\"campaign\":\"spring\",\"referrer\":\"https://x\"}",
                TF_KIND_WEB_VISIT, &e);
    assert_string_equal(e.channel, "mini_program");
    assert_int_equal(e.duration_s, 42);
    assert_int_equal(e.nps, -1);

    decode_kind("call", "{\"direction\":\"outbound\",\"duration_s\":300,\"outcome\":\"voicemail\",\"agent\":\"a7\"}",
                TF_KIND_CALL, &e);
    assert_int_equal(e.direction, TF_DIR_OUTBOUND);
    assert_int_equal(e.duration_s, 300);
    assert_string_equal(e.action, "voicemail");

    decode_kind("purchase", "{\"order_id\":\"o-1\",\"amount\":12990,\"currency\":\"CNY\",\"margin\":-150,"
                            "\"channel\":\"store\",\"items\":[{\"sku\":\"s1\",\"qty\":2,\"price\":6495}]}",
                TF_KIND_PURCHASE, &e);
    assert_string_equal(e.order_id, "o-1");
    assert_int_equal(e.amount, 12990);
    assert_string_equal(e.currency, "CNY");
    assert_int_equal(e.has_margin, 1);
    assert_int_equal(e.margin, -150);
    assert_string_equal(e.channel, "store");
    assert_int_equal(e.duration_s, -1);

    decode_kind("refund", "{\"order_id\":\"o-1\",\"amount\":500,\"currency\":\"EUR\",\"reason\":\"damaged\"}",
                TF_KIND_REFUND, &e);
    assert_string_equal(e.order_id, "o-1");
    assert_int_equal(e.amount, 500);
    assert_string_equal(e.currency, "EUR");
    assert_int_equal(e.has_margin, 0);

    decode_kind("complaint", "{\"complaint_id\":\"k-1\",\"category\":\"shipping\",\"severity\":\"critical\","
                             "\"channel\":\"phone\",\"text\":\"late\"}",
                TF_KIND_COMPLAINT, &e);
    assert_string_equal(e.complaint_id, "k-1");
    assert_int_equal(e.category, TF_CAT_SHIPPING);
    assert_int_equal(e.severity, TF_SEV_CRITICAL);
    assert_string_equal(e.channel, "phone");

    decode_kind("complaint_update", "{\"complaint_id\":\"k-1\",\"status\":\"acknowledged\"}", TF_KIND_COMPLAINT_UPDATE,
                &e);
    assert_string_equal(e.complaint_id, "k-1");
    assert_int_equal(e.status, TF_CST_ACKNOWLEDGED);

    decode_kind("survey", "{\"expectation\":8,\"perception\":6.5,\"nps\":9}", TF_KIND_SURVEY, &e);
    assert_int_equal(e.has_sat, 1);
    assert_true(e.expectation == 8.0);
    assert_true(e.perception == 6.5);
    assert_int_equal(e.nps, 9);

    decode_kind("referral", "{\"referred_id\":\"c-2\"}", TF_KIND_REFERRAL, &e);
    assert_string_equal(e.referred_id, "c-2");

    decode_kind("profile", "{\"birthday\":\"1990-07-15\",\"anniversary\":\"2015-06-01\",\"name\":\"Li Lei\","
                           "\"tags\":[\"vip\",\"north\"],\"consent\":{\"email\":true,\"sms\":false,\"phone\":true}}",
                TF_KIND_PROFILE, &e);
    assert_int_equal(e.birth_year, 1990);
    assert_int_equal(e.birth_month, 7);
    assert_int_equal(e.birth_day, 15);

    decode_kind("email", "{\"action\":\"click\",\"campaign\":\"spring\"}", TF_KIND_EMAIL, &e);
    assert_string_equal(e.action, "click");

    decode_kind("social", "{\"action\":\"share\",\"platform\":\"wechat\"}", TF_KIND_SOCIAL, &e);
    assert_string_equal(e.action, "share");
    assert_string_equal(e.channel, "wechat");

    decode_kind("store_visit", "{\"store_id\":\"sh-01\"}", TF_KIND_STORE_VISIT, &e);

    decode_kind("event_attendance", "{\"event_id\":\"ev-9\",\"format\":\"seminar\"}", TF_KIND_EVENT_ATTENDANCE, &e);
    assert_string_equal(e.action, "seminar");

    decode_kind("contract_end", "{\"reason\":\"moved\"}", TF_KIND_CONTRACT_END, &e);

    decode_kind("unsubscribe", "{\"reason\":\"too many mails\"}", TF_KIND_UNSUBSCRIBE, &e);

    /* Kinds that require nothing may come without data. */
    decode_kind("web_visit", NULL, TF_KIND_WEB_VISIT, &e);
    assert_int_equal(e.duration_s, -1);
    assert_string_equal(e.channel, "");
    decode_kind("store_visit", NULL, TF_KIND_STORE_VISIT, &e);
    decode_kind("event_attendance", NULL, TF_KIND_EVENT_ATTENDANCE, &e);
    decode_kind("contract_end", NULL, TF_KIND_CONTRACT_END, &e);
    decode_kind("unsubscribe", NULL, TF_KIND_UNSUBSCRIBE, &e);
    decode_kind("profile", "{}", TF_KIND_PROFILE, &e);
}

static void test_unknown_fields_ignored(void **state)
{
    tf_event_t e;

    (void)state;
    EXPECT_OK(ev(SV, ID, SRC, type_of("purchase"), SUBJ, TIME,
                 "{\"order_id\":\"o-1\",\"amount\":100,\"currency\":\"USD\",\"coupon\":{\"code\":[1,2,{}]},"
                 "\"amount_str\":\"1.00\",\"items\":[{\"sku\":\"s\",\"qty\":1,\"price\":100,\"color\":\"red\"}]}",
                 "\"datacontenttype\":\"application/json\",\"traceparent\":\"00-ab\",\"partitionkey\":7,"
                 "\"dataschema\":null"),
              &e);
    assert_int_equal(e.amount, 100);
    EXPECT_OK(kind_ev("profile", "{\"consent\":{\"email\":true,\"push\":\"maybe\"}}"), &e);
    EXPECT_OK(kind_ev("survey", "{\"nps\":7,\"comment\":\"ok\"}"), &e);
    assert_int_equal(e.nps, 7);
}

/* ---- binary mode ---- */

static tf_event_header hdr(const char *name, const char *value)
{
    tf_event_header h = { name, value, value != NULL ? strlen(value) : 0 };
    return h;
}

static void test_binary_mode(void **state)
{
    /* Header values are bytes, not C strings: the subject's buffer continues. */
    static const char subject_bytes[] = "c-1GARBAGE";
    tf_event_header h[] = {
        hdr("content-type", "application/json"),
        hdr("ce_specversion", "1.0"),
        hdr("ce_id", "b-1"),
        hdr("ce_source", "/app/ios"),
        hdr("ce_type", "touchpoint.purchase"),
        { "ce_subject", subject_bytes, 3 },
        hdr("ce_time", "2026-03-01T02:00:00Z"),
    };
    const size_t nh = sizeof h / sizeof h[0];
    const char *data = "{\"order_id\":\"o-9\",\"amount\":2500,\"currency\":\"JPY\"}";
    tf_event_t e;
    char d[256];

    (void)state;
    assert_int_equal(tf_event_decode(NULL, data, strlen(data), h, nh, NOW, &e, d, sizeof d), TF_EV_OK);
    assert_int_equal(e.kind, TF_KIND_PURCHASE);
    assert_string_equal(e.id, "b-1");
    assert_string_equal(e.source, "/app/ios");
    assert_string_equal(e.subject, "c-1");
    assert_int_equal(e.time_ms, NOW);
    assert_string_equal(e.order_id, "o-9");
    assert_int_equal(e.amount, 2500);
    assert_string_equal(e.currency, "JPY");

    /* An empty value is an event without data. */
    h[4] = hdr("ce_type", "touchpoint.web_visit");
    assert_int_equal(tf_event_decode(NULL, "", 0, h, nh, NOW, &e, d, sizeof d), TF_EV_OK);
    assert_int_equal(tf_event_decode(NULL, NULL, 0, h, nh, NOW, &e, d, sizeof d), TF_EV_OK);
    assert_int_equal(e.kind, TF_KIND_WEB_VISIT);
    h[4] = hdr("ce_type", "touchpoint.purchase");
    check_error(tf_event_decode(NULL, "", 0, h, nh, NOW, &e, d, sizeof d), d, TF_EV_MISSING_FIELD, "data.order_id",
                __FILE__, __LINE__);

    /* The value must be an object when present. */
    check_error(tf_event_decode(NULL, "[1]", 3, h, nh, NOW, &e, d, sizeof d), d, TF_EV_NOT_AN_OBJECT, "value",
                __FILE__, __LINE__);
    check_error(tf_event_decode(NULL, "{", 1, h, nh, NOW, &e, d, sizeof d), d, TF_EV_INVALID_JSON, "value", __FILE__,
                __LINE__);

    /* Header problems name the header. */
    h[5] = hdr("ce_subject", "c-\xff");
    check_error(tf_event_decode(NULL, data, strlen(data), h, nh, NOW, &e, d, sizeof d), d, TF_EV_INVALID_UTF8,
                "ce_subject", __FILE__, __LINE__);
    h[5] = hdr("ce_subject", "c\x01");
    check_error(tf_event_decode(NULL, data, strlen(data), h, nh, NOW, &e, d, sizeof d), d, TF_EV_INVALID_SUBJECT,
                "ce_subject", __FILE__, __LINE__);
    h[5] = hdr("ce_subject", "c-1");
    h[2] = hdr("ce_idx", "b-1");
    check_error(tf_event_decode(NULL, data, strlen(data), h, nh, NOW, &e, d, sizeof d), d, TF_EV_MISSING_FIELD,
                "ce_id", __FILE__, __LINE__);
    h[2] = (tf_event_header){ "ce_id", "b\0-1", 4 };
    check_error(tf_event_decode(NULL, data, strlen(data), h, nh, NOW, &e, d, sizeof d), d, TF_EV_INVALID_FIELD,
                "ce_id", __FILE__, __LINE__);
    h[2] = hdr("ce_id", "b-1");
    h[1] = hdr("ce_specversion", "0.3");
    check_error(tf_event_decode(NULL, data, strlen(data), h, nh, NOW, &e, d, sizeof d), d,
                TF_EV_UNSUPPORTED_SPECVERSION, "ce_specversion", __FILE__, __LINE__);
    h[1] = hdr("ce_specversion", "1.0");
    h[4] = hdr("ce_type", "touchpoint.nope");
    check_error(tf_event_decode(NULL, data, strlen(data), h, nh, NOW, &e, d, sizeof d), d, TF_EV_UNKNOWN_TYPE,
                "ce_type", __FILE__, __LINE__);
    h[4] = hdr("ce_type", "touchpoint.purchase");
    h[6] = hdr("ce_time", "2026-03-01 02:00");
    check_error(tf_event_decode(NULL, data, strlen(data), h, nh, NOW, &e, d, sizeof d), d, TF_EV_INVALID_TIME,
                "ce_time", __FILE__, __LINE__);

    /* Without ce_specversion the value is read as a structured event. */
    assert_int_equal(tf_event_decode(NULL, data, strlen(data), h + 2, nh - 2, NOW, &e, d, sizeof d),
                     TF_EV_MISSING_FIELD);
    assert_memory_equal(d, "specversion:", 12);
}

/* ---- details ---- */

static void test_detail_buffer(void **state)
{
    tf_event_t e;
    char small[8];
    /* A detail cut inside a multi-byte character still comes out as valid UTF-8. */
    char mid[24];
    const char *v = ev(SV, ID, SRC, "\"touchpoint.\xe5\xae\xa2\xe5\xae\xa2\xe5\xae\xa2\"", SUBJ, TIME, NULL, NULL);

    (void)state;
    assert_int_equal(dec_len(v, strlen(v), &e, small, sizeof small), TF_EV_UNKNOWN_TYPE);
    assert_int_equal(strlen(small), sizeof small - 1);
    for (size_t n = 10; n <= sizeof mid; n++) {
        assert_int_equal(dec_len(v, strlen(v), &e, mid, n), TF_EV_UNKNOWN_TYPE);
        assert_true(tf_utf8_valid(mid, strlen(mid)));
    }
    assert_int_equal(dec_len(v, strlen(v), &e, NULL, 0), TF_EV_UNKNOWN_TYPE);
    assert_int_equal(tf_event_decode(NULL, "{}", 2, NULL, 0, NOW, NULL, small, sizeof small), TF_EV_INVALID_FIELD);
}

/* ---- derived events ---- */

static void make_derived(tf_derived_t *d)
{
    memset(d, 0, sizeof *d);
    d->type = TF_DERIVED_STAGE_CHANGED;
    strcpy(d->subject, "c-\"1\"\\\xe5\xae\xa2");
    d->time_ms = NOW + 5;
    strcpy(d->rule, "growth_to_mature");
    tf_derived_set_id(d, "/web/shop-cn", "e-1");
    assert_int_equal(tf_derived_add_str(d, "from", "growth"), TF_OK);
    assert_int_equal(tf_derived_add_str(d, "to", "mature"), TF_OK);
    assert_int_equal(tf_derived_add_int(d, "purchases", 5), TF_OK);
    assert_int_equal(tf_derived_add_int(d, "margin", INT64_MIN), TF_OK);
    assert_int_equal(tf_derived_add_num(d, "ratio", 0.1), TF_OK);
    assert_int_equal(tf_derived_add_num(d, "whole", 3.0), TF_OK);
    assert_int_equal(tf_derived_add_num(d, "nan", NAN), TF_OK);
    assert_int_equal(tf_derived_add_num(d, "inf", -INFINITY), TF_OK);
    assert_int_equal(tf_derived_add_str(d, "note", "tab\there\nnl\x01\x1f \"q\" \\ \xc3\xa9"), TF_OK);
}

static void test_derived_encode_roundtrip(void **state)
{
    tf_derived_t d;
    char buf[2048];
    json_t *root, *data;
    json_error_t jerr;
    int n;

    (void)state;
    make_derived(&d);
    n = tf_derived_encode(&d, "/touchflow", buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(buf));
    /* The attribute order is part of the output format. */
    assert_memory_equal(buf, "{\"specversion\":\"1.0\",\"id\":\"", 27);
    assert_true(strstr(buf, "\"id\"") < strstr(buf, "\"source\""));
    assert_true(strstr(buf, "\"source\"") < strstr(buf, "\"type\""));
    assert_true(strstr(buf, "\"type\"") < strstr(buf, "\"subject\""));
    assert_true(strstr(buf, "\"subject\"") < strstr(buf, "\"time\""));
    assert_true(strstr(buf, "\"time\"") < strstr(buf, "\"datacontenttype\""));
    assert_true(strstr(buf, "\"datacontenttype\"") < strstr(buf, "\"data\":{\"rule\""));
    assert_non_null(strstr(buf, "\\u0001"));
    assert_non_null(strstr(buf, "\\u001f"));

    root = json_loads(buf, 0, &jerr);
    if (root == NULL)
        fail_msg("encoded event does not parse: %s: %s", jerr.text, buf);
    assert_string_equal(json_string_value(json_object_get(root, "specversion")), "1.0");
    assert_string_equal(json_string_value(json_object_get(root, "id")), d.id);
    assert_string_equal(json_string_value(json_object_get(root, "source")), "/touchflow");
    assert_string_equal(json_string_value(json_object_get(root, "type")), "touchflow.lifecycle.stage_changed");
    assert_string_equal(json_string_value(json_object_get(root, "subject")), d.subject);
    assert_string_equal(json_string_value(json_object_get(root, "time")), "2026-03-01T02:00:00.005Z");
    assert_string_equal(json_string_value(json_object_get(root, "datacontenttype")), "application/json");
    data = json_object_get(root, "data");
    assert_true(json_is_object(data));
    assert_int_equal(json_object_size(data), 10);
    assert_string_equal(json_string_value(json_object_get(data, "rule")), "growth_to_mature");
    assert_string_equal(json_string_value(json_object_get(data, "from")), "growth");
    assert_string_equal(json_string_value(json_object_get(data, "to")), "mature");
    assert_true(json_is_integer(json_object_get(data, "purchases")));
    assert_int_equal(json_integer_value(json_object_get(data, "purchases")), 5);
    assert_true(json_integer_value(json_object_get(data, "margin")) == INT64_MIN);
    assert_true(json_is_real(json_object_get(data, "ratio")));
    assert_true(json_real_value(json_object_get(data, "ratio")) == 0.1);
    assert_true(json_is_real(json_object_get(data, "whole")));
    assert_true(json_real_value(json_object_get(data, "whole")) == 3.0);
    assert_true(json_is_null(json_object_get(data, "nan")));
    assert_true(json_is_null(json_object_get(data, "inf")));
    assert_string_equal(json_string_value(json_object_get(data, "note")),
                        "tab\there\nnl\x01\x1f \"q\" \\ \xc3\xa9");
    json_decref(root);

    /* A derived event carrying a decoded subject round-trips it unchanged. */
    {
        tf_event_t e;
        EXPECT_OK(ev(SV, ID, SRC, type_of("web_visit"), "\"\xe5\xae\xa2\\\"\\\\ x\"", TIME, NULL, NULL), &e);
        strcpy(d.subject, e.subject);
        n = tf_derived_encode(&d, "/touchflow", buf, sizeof buf);
        assert_true(n > 0);
        root = json_loads(buf, 0, &jerr);
        assert_non_null(root);
        assert_string_equal(json_string_value(json_object_get(root, "subject")), "\xe5\xae\xa2\"\\ x");
        json_decref(root);
    }
}

static void test_derived_encode_buffer_size(void **state)
{
    tf_derived_t d;
    char buf[2048], small[2048];
    int n;

    (void)state;
    make_derived(&d);
    n = tf_derived_encode(&d, "/touchflow", buf, sizeof buf);
    assert_true(n > 0);
    /* Every size short of n+1 fails cleanly; n+1 fits exactly. */
    for (int size = 1; size <= n; size++)
        assert_int_equal(tf_derived_encode(&d, "/touchflow", small, (size_t)size), TF_EINVAL);
    assert_int_equal(tf_derived_encode(&d, "/touchflow", small, (size_t)n + 1), n);
    assert_string_equal(small, buf);

    assert_int_equal(tf_derived_encode(&d, NULL, buf, sizeof buf), TF_EINVAL);
    assert_int_equal(tf_derived_encode(NULL, "/touchflow", buf, sizeof buf), TF_EINVAL);
    assert_int_equal(tf_derived_encode(&d, "/touchflow", buf, 0), TF_EINVAL);
    /* Invalid UTF-8 would make an unparseable record: refused. */
    assert_int_equal(tf_derived_encode(&d, "/touch\xff", buf, sizeof buf), TF_EINVAL);
    d.id[0] = '\0';
    assert_int_equal(tf_derived_encode(&d, "/touchflow", buf, sizeof buf), TF_EINVAL);
}

static void test_derived_figures(void **state)
{
    tf_derived_t d;
    char name[16], longname[TF_FIG_NAME_MAX + 1], longstr[TF_FIG_STR_MAX + 1];

    (void)state;
    memset(&d, 0, sizeof d);
    for (int i = 0; i < TF_DERIVED_MAX_FIGURES; i++) {
        snprintf(name, sizeof name, "f%d", i);
        assert_int_equal(tf_derived_add_int(&d, name, i), TF_OK);
    }
    assert_int_equal(tf_derived_add_int(&d, "one_more", 1), TF_EINVAL);
    assert_int_equal(d.nfigures, TF_DERIVED_MAX_FIGURES);

    memset(&d, 0, sizeof d);
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(tf_derived_add_int(&d, longname, 1), TF_EINVAL);
    longname[TF_FIG_NAME_MAX - 1] = '\0';
    assert_int_equal(tf_derived_add_int(&d, longname, 1), TF_OK);
    memset(longstr, 's', sizeof longstr - 1);
    longstr[sizeof longstr - 1] = '\0';
    assert_int_equal(tf_derived_add_str(&d, "s", longstr), TF_EINVAL);
    longstr[TF_FIG_STR_MAX - 1] = '\0';
    assert_int_equal(tf_derived_add_str(&d, "s", longstr), TF_OK);
    /* Keys in data stay unique. */
    assert_int_equal(tf_derived_add_num(&d, "s", 1.0), TF_EINVAL);
    assert_int_equal(tf_derived_add_num(&d, "rule", 1.0), TF_EINVAL);
    assert_int_equal(tf_derived_add_num(&d, "", 1.0), TF_EINVAL);
    assert_int_equal(tf_derived_add_str(&d, "x", NULL), TF_EINVAL);
    assert_int_equal(tf_derived_add_int(NULL, "x", 1), TF_EINVAL);
    assert_int_equal(d.nfigures, 2);
}

/* purchase data.items: (sku, qty) kept for the favourite items, within bounds that
 * never reject what the contract accepted before. */
static void test_items_kept(void **state)
{
    tf_event_t e;
    static char data[8192];
    size_t n;

    (void)state;
    /* qty absent counts 1; no sku, an empty one or qty 0 buys nothing: not kept. */
    EXPECT_OK(kind_ev("purchase", "{\"order_id\":\"o\",\"amount\":1,\"currency\":\"CNY\",\"items\":["
                                  "{\"sku\":\"tea-1\",\"qty\":2,\"price\":100},{\"sku\":\"cup\"},{\"qty\":3},"
                                  "{\"sku\":\"\",\"qty\":1},{\"sku\":\"zero\",\"qty\":0},{\"sku\":\"a,b\\\"c\",\"qty\":5}]}"),
              &e);
    assert_int_equal(e.nitems, 3);
    assert_string_equal(e.items[0].sku, "tea-1");
    assert_int_equal(e.items[0].qty, 2);
    assert_string_equal(e.items[1].sku, "cup");
    assert_int_equal(e.items[1].qty, 1);
    assert_string_equal(e.items[2].sku, "a,b\"c");
    assert_int_equal(e.items[2].qty, 5);

    /* No items, or an empty array: none kept. */
    EXPECT_OK(kind_ev("purchase", "{\"order_id\":\"o\",\"amount\":1,\"currency\":\"CNY\",\"items\":[]}"), &e);
    assert_int_equal(e.nitems, 0);

    /* More than TF_EVENT_MAX_ITEMS stays valid, and every item is still checked. */
    n = (size_t)snprintf(data, sizeof data, "{\"order_id\":\"o\",\"amount\":1,\"currency\":\"CNY\",\"items\":[");
    for (int i = 0; i < TF_EVENT_MAX_ITEMS + 4; i++)
        n += (size_t)snprintf(data + n, sizeof data - n, "%s{\"sku\":\"s%d\",\"qty\":%d}", i ? "," : "", i, i + 1);
    snprintf(data + n, sizeof data - n, "]}");
    EXPECT_OK(kind_ev("purchase", data), &e);
    assert_int_equal(e.nitems, TF_EVENT_MAX_ITEMS);
    assert_string_equal(e.items[TF_EVENT_MAX_ITEMS - 1].sku, "s15");
    assert_int_equal(e.items[TF_EVENT_MAX_ITEMS - 1].qty, TF_EVENT_MAX_ITEMS);
    snprintf(data + n, sizeof data - n, ",{\"sku\":\"late\",\"qty\":-1}]}");
    EXPECT_ERR(kind_ev("purchase", data), TF_EV_INVALID_FIELD, "data.items[20].qty");

    /* A long sku is cut to TF_EVENT_SKU_MAX bytes, never inside a character: 39
     * ASCII bytes and a 3-byte character keep the 39. */
    n = (size_t)snprintf(data, sizeof data, "{\"order_id\":\"o\",\"amount\":1,\"currency\":\"CNY\",\"items\":[{\"sku\":\"");
    memset(data + n, 'k', TF_EVENT_SKU_MAX - 1);
    n += TF_EVENT_SKU_MAX - 1;
    snprintf(data + n, sizeof data - n, "\xe8\x8c\xb6x\"}]}");
    EXPECT_OK(kind_ev("purchase", data), &e);
    assert_int_equal(e.nitems, 1);
    assert_int_equal(strlen(e.items[0].sku), TF_EVENT_SKU_MAX - 1);
    /* Exactly TF_EVENT_SKU_MAX bytes: kept whole. */
    n = (size_t)snprintf(data, sizeof data, "{\"order_id\":\"o\",\"amount\":1,\"currency\":\"CNY\",\"items\":[{\"sku\":\"");
    memset(data + n, 'k', TF_EVENT_SKU_MAX - 3);
    n += TF_EVENT_SKU_MAX - 3;
    snprintf(data + n, sizeof data - n, "\xe8\x8c\xb6\"}]}");
    EXPECT_OK(kind_ev("purchase", data), &e);
    assert_int_equal(strlen(e.items[0].sku), TF_EVENT_SKU_MAX);
    assert_string_equal(e.items[0].sku + TF_EVENT_SKU_MAX - 3, "\xe8\x8c\xb6");
}

/* TF_FIG_ITEMS: strings that may hold commas, as one JSON array. */
static void test_derived_items_figure(void **state)
{
    tf_derived_t d;
    char buf[2048], big[TF_FIG_STR_MAX + 1];
    json_error_t jerr;
    const char *items[] = {"a,b", "q\"uote", "\xe8\x8c\xb6"};

    (void)state;
    memset(&d, 0, sizeof d);
    d.type = TF_DERIVED_CARE_REMINDER;
    strcpy(d.subject, "c-1");
    strcpy(d.rule, "replenishment");
    tf_derived_set_id(&d, "c-1", "t");
    assert_int_equal(tf_derived_add_items(&d, "favourite_items", items, 3), TF_OK);
    assert_int_equal(tf_derived_add_items(&d, "none", items, 0), TF_OK);
    assert_int_equal(tf_derived_add_items(&d, "favourite_items", items, 1), TF_EINVAL); /* taken */
    /* Together with their NULs they must fit one figure. */
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *one[] = {big};
    assert_int_equal(tf_derived_add_items(&d, "big", one, 1), TF_EINVAL);
    big[sizeof big - 2] = '\0';
    assert_int_equal(tf_derived_add_items(&d, "big", one, 1), TF_OK);
    assert_int_equal(tf_derived_add_items(&d, "nulls", NULL, 1), TF_EINVAL);
    assert_true(tf_derived_encode(&d, "/touchflow", buf, sizeof buf) > 0);
    json_t *root = json_loads(buf, 0, &jerr);
    assert_non_null(root);
    json_t *data = json_object_get(root, "data");
    json_t *fav = json_object_get(data, "favourite_items");
    assert_int_equal(json_array_size(fav), 3);
    assert_string_equal(json_string_value(json_array_get(fav, 0)), "a,b");
    assert_string_equal(json_string_value(json_array_get(fav, 1)), "q\"uote");
    assert_string_equal(json_string_value(json_array_get(fav, 2)), "\xe8\x8c\xb6");
    assert_int_equal(json_array_size(json_object_get(data, "none")), 0);
    assert_int_equal(strlen(json_string_value(json_array_get(json_object_get(data, "big"), 0))), TF_FIG_STR_MAX - 1);
    json_decref(root);
    /* A count beyond what str can hold fails the encode rather than reading past it. */
    d.figures[0].i = TF_FIG_STR_MAX + 1;
    assert_int_equal(tf_derived_encode(&d, "/touchflow", buf, sizeof buf), TF_EINVAL);
}

static void test_derived_ids(void **state)
{
    tf_derived_t a, b;

    (void)state;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.type = b.type = TF_DERIVED_CHURN_WARNING;
    tf_derived_set_id(&a, "/web/shop-cn", "e-1");
    tf_derived_set_id(&b, "/web/shop-cn", "e-1");
    assert_int_equal(strlen(a.id), 32);
    assert_int_equal(strspn(a.id, "0123456789abcdef"), 32);
    assert_string_equal(a.id, b.id);

    b.type = TF_DERIVED_CHURN_CLEARED;
    tf_derived_set_id(&b, "/web/shop-cn", "e-1");
    assert_string_not_equal(a.id, b.id);

    b.type = TF_DERIVED_CHURN_WARNING;
    tf_derived_set_id(&b, "/web/shop-cn", "e-2");
    assert_string_not_equal(a.id, b.id);
    tf_derived_set_id(&b, "/web/shop-c", "ne-1");
    assert_string_not_equal(a.id, b.id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_default),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_invalid_utf8_value),
        cmocka_unit_test(test_too_deep),
        cmocka_unit_test(test_unsupported_specversion),
        cmocka_unit_test(test_missing_attributes),
        cmocka_unit_test(test_wrong_attribute_types),
        cmocka_unit_test(test_id_and_source_length),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_invalid_subject),
        cmocka_unit_test(test_bad_time),
        cmocka_unit_test(test_far_future_time),
        cmocka_unit_test(test_amount),
        cmocka_unit_test(test_money_other_fields),
        cmocka_unit_test(test_missing_data_fields),
        cmocka_unit_test(test_wrong_data_types),
        cmocka_unit_test(test_survey_rules),
        cmocka_unit_test(test_profile_rules),
        cmocka_unit_test(test_tags_consent),
        cmocka_unit_test(test_every_kind_valid),
        cmocka_unit_test(test_unknown_fields_ignored),
        cmocka_unit_test(test_binary_mode),
        cmocka_unit_test(test_detail_buffer),
        cmocka_unit_test(test_derived_encode_roundtrip),
        cmocka_unit_test(test_derived_encode_buffer_size),
        cmocka_unit_test(test_derived_figures),
        cmocka_unit_test(test_derived_ids),
        cmocka_unit_test(test_items_kept),
        cmocka_unit_test(test_derived_items_figure),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
