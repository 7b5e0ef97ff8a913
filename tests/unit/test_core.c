/* Unit tests for pkg/core: RFC 3339 time, UTF-8 validation, integer parsing, bounded
 * copies, deterministic ids, error names and log level names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"

/* 2026-01-06T12:15:00Z */
#define T_2026_01_06 INT64_C(1767701700000)
/* 2026-03-01T02:00:00Z, i.e. 2026-03-01T10:00:00+08:00 */
#define T_2026_03_01_02Z INT64_C(1772330400000)

/* Parses a NUL-terminated string; returns the status and leaves *ms untouched on error. */
static int parse(const char *s, int64_t *ms)
{
    return tf_time_parse_rfc3339(s, strlen(s), ms);
}

static void test_time_parse_utc(void **state)
{
    (void)state;
    int64_t ms = -1;
    assert_int_equal(parse("1970-01-01T00:00:00Z", &ms), TF_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(parse("2026-01-06T12:15:00Z", &ms), TF_OK);
    assert_int_equal(ms, T_2026_01_06);
    assert_int_equal(parse("2026-03-01T02:00:00Z", &ms), TF_OK);
    assert_int_equal(ms, T_2026_03_01_02Z);
}

static void test_time_parse_offsets(void **state)
{
    (void)state;
    int64_t ms = -1;
    /* East of UTC: local 10:00 at +08:00 is 02:00 UTC. */
    assert_int_equal(parse("2026-03-01T10:00:00+08:00", &ms), TF_OK);
    assert_int_equal(ms, T_2026_03_01_02Z);
    /* West of UTC with half-hour minutes: 10:00 at -05:30 is 15:30 UTC. */
    assert_int_equal(parse("2026-03-01T10:00:00-05:30", &ms), TF_OK);
    assert_int_equal(ms, T_2026_03_01_02Z + 13 * TF_MS_PER_HOUR + 30 * 60 * TF_MS_PER_SEC);
    /* An offset that moves the instant to the previous day. */
    assert_int_equal(parse("2026-03-01T01:00:00+08:00", &ms), TF_OK);
    assert_int_equal(ms, T_2026_03_01_02Z - 9 * TF_MS_PER_HOUR);
    /* +00:00 and -00:00 are both UTC. */
    assert_int_equal(parse("2026-01-06T12:15:00+00:00", &ms), TF_OK);
    assert_int_equal(ms, T_2026_01_06);
    assert_int_equal(parse("2026-01-06T12:15:00-00:00", &ms), TF_OK);
    assert_int_equal(ms, T_2026_01_06);
}

static void test_time_parse_fraction(void **state)
{
    (void)state;
    int64_t ms = -1;
    assert_int_equal(parse("2026-01-06T12:15:00.5Z", &ms), TF_OK);
    assert_int_equal(ms, T_2026_01_06 + 500);
    assert_int_equal(parse("2026-01-06T12:15:00.05Z", &ms), TF_OK);
    assert_int_equal(ms, T_2026_01_06 + 50);
    assert_int_equal(parse("2026-01-06T12:15:00.123Z", &ms), TF_OK);
    assert_int_equal(ms, T_2026_01_06 + 123);
    /* Digits past the millisecond are dropped (truncated, not rounded). */
    assert_int_equal(parse("2026-01-06T12:15:00.1239Z", &ms), TF_OK);
    assert_int_equal(ms, T_2026_01_06 + 123);
    assert_int_equal(parse("2026-01-06T12:15:00.999999999Z", &ms), TF_OK);
    assert_int_equal(ms, T_2026_01_06 + 999);
    assert_int_equal(parse("2026-03-01T10:00:00.007+08:00", &ms), TF_OK);
    assert_int_equal(ms, T_2026_03_01_02Z + 7);
    /* No digits, or more than nine. */
    assert_int_equal(parse("2026-01-06T12:15:00.Z", &ms), TF_EINVAL);
    assert_int_equal(parse("2026-01-06T12:15:00.1234567890Z", &ms), TF_EINVAL);
}

static void test_time_parse_calendar(void **state)
{
    (void)state;
    int64_t ms = -1;
    assert_int_equal(parse("2024-02-29T00:00:00Z", &ms), TF_OK); /* leap year */
    assert_int_equal(ms, INT64_C(1709164800000));
    assert_int_equal(parse("2000-02-29T23:59:59Z", &ms), TF_OK); /* divisible by 400 */
    assert_int_equal(ms, INT64_C(951868799000));
    ms = 42;
    assert_int_equal(parse("2026-02-29T00:00:00Z", &ms), TF_EINVAL); /* not a leap year */
    assert_int_equal(parse("1900-02-29T00:00:00Z", &ms), TF_EINVAL); /* divisible by 100 */
    assert_int_equal(parse("2026-13-01T00:00:00Z", &ms), TF_EINVAL);
    assert_int_equal(parse("2026-00-01T00:00:00Z", &ms), TF_EINVAL);
    assert_int_equal(parse("2026-04-31T00:00:00Z", &ms), TF_EINVAL);
    assert_int_equal(parse("2026-01-00T00:00:00Z", &ms), TF_EINVAL);
    assert_int_equal(parse("2026-01-01T24:00:00Z", &ms), TF_EINVAL);
    assert_int_equal(parse("2026-01-01T00:60:00Z", &ms), TF_EINVAL);
    assert_int_equal(parse("2026-01-01T00:00:00+24:00", &ms), TF_EINVAL);
    assert_int_equal(parse("2026-01-01T00:00:00+08:60", &ms), TF_EINVAL);
    assert_int_equal(ms, 42); /* untouched by every failure */
}

static void test_time_parse_rejects(void **state)
{
    (void)state;
    int64_t ms = 42;
    assert_int_equal(parse("2026-01-06T12:15:00", &ms), TF_EINVAL);       /* no offset */
    assert_int_equal(parse("2026-01-06T12:15:00.123", &ms), TF_EINVAL);   /* no offset */
    assert_int_equal(parse("2026-01-06T12:15:00ZZ", &ms), TF_EINVAL);     /* trailing garbage */
    assert_int_equal(parse("2026-01-06T12:15:00Z ", &ms), TF_EINVAL);
    assert_int_equal(parse("2026-01-06T12:15:00+08:00x", &ms), TF_EINVAL);
    assert_int_equal(parse("2026-01-06T12:15:00+0800", &ms), TF_EINVAL);  /* colon required */
    assert_int_equal(parse("2026-01-06T12:15:00+08", &ms), TF_EINVAL);
    assert_int_equal(parse("2026-01-06X12:15:00Z", &ms), TF_EINVAL);
    assert_int_equal(parse("2026-1-06T12:15:00Z", &ms), TF_EINVAL);
    assert_int_equal(parse("2026-01-06T12:15Z", &ms), TF_EINVAL);
    assert_int_equal(parse("", &ms), TF_EINVAL);
    assert_int_equal(parse("2026-01-06", &ms), TF_EINVAL);
    assert_int_equal(ms, 42);
    /* len bounds the input: a valid prefix of a longer buffer. */
    const char *buf = "2026-01-06T12:15:00Zjunk";
    assert_int_equal(tf_time_parse_rfc3339(buf, 20, &ms), TF_OK);
    assert_int_equal(ms, T_2026_01_06);
    assert_int_equal(tf_time_parse_rfc3339(buf, 19, &ms), TF_EINVAL);
}

static void test_time_parse_lowercase(void **state)
{
    (void)state;
    int64_t ms = -1;
    assert_int_equal(parse("2026-01-06t12:15:00z", &ms), TF_OK);
    assert_int_equal(ms, T_2026_01_06);
    assert_int_equal(parse("2026-01-06t12:15:00.250+01:00", &ms), TF_OK);
    assert_int_equal(ms, T_2026_01_06 - TF_MS_PER_HOUR + 250);
}

static void test_time_format(void **state)
{
    (void)state;
    char buf[TF_TIME_RFC3339_LEN];
    tf_time_format_rfc3339(0, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    tf_time_format_rfc3339(T_2026_01_06, buf);
    assert_string_equal(buf, "2026-01-06T12:15:00.000Z");
    tf_time_format_rfc3339(T_2026_03_01_02Z + 7, buf);
    assert_string_equal(buf, "2026-03-01T02:00:00.007Z");
    tf_time_format_rfc3339(INT64_C(1709164800000) + TF_MS_PER_DAY - 1, buf);
    assert_string_equal(buf, "2024-02-29T23:59:59.999Z");
    tf_time_format_rfc3339(-1, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    assert_int_equal(strlen(buf), TF_TIME_RFC3339_LEN - 1);
}

static void test_time_round_trip(void **state)
{
    (void)state;
    const int64_t samples[] = {
        0, 1, 999, T_2026_01_06, T_2026_01_06 + 123, INT64_C(951868799999),
        INT64_C(1709164800000), INT64_C(4102444799999) /* 2099-12-31T23:59:59.999Z */,
        INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */,
    };
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char buf[TF_TIME_RFC3339_LEN];
        int64_t back = -1;
        tf_time_format_rfc3339(samples[i], buf);
        assert_int_equal(tf_time_parse_rfc3339(buf, strlen(buf), &back), TF_OK);
        assert_int_equal(back, samples[i]);
    }
}

static int utf8(const char *s) { return tf_utf8_valid(s, strlen(s)); }

static void test_utf8(void **state)
{
    (void)state;
    assert_int_equal(utf8(""), 1);
    assert_int_equal(utf8("plain ASCII ~\x7f"), 1);
    assert_int_equal(utf8("caf\xc3\xa9"), 1);                    /* U+00E9, 2 bytes */
    assert_int_equal(utf8("\xc2\x80"), 1);                       /* U+0080, smallest 2-byte */
    assert_int_equal(utf8("\xe5\xae\xa2\xe6\x88\xb7"), 1);       /* 客户, 3 bytes */
    assert_int_equal(utf8("\xe0\xa0\x80"), 1);                   /* U+0800, smallest 3-byte */
    assert_int_equal(utf8("\xef\xbf\xbf"), 1);                   /* U+FFFF */
    assert_int_equal(utf8("\xf0\x9f\x98\x80"), 1);               /* U+1F600, 4 bytes */
    assert_int_equal(utf8("\xf4\x8f\xbf\xbf"), 1);               /* U+10FFFF, the last */
    /* Overlongs. */
    assert_int_equal(utf8("\xc0\xaf"), 0);
    assert_int_equal(utf8("\xc1\xbf"), 0);
    assert_int_equal(utf8("\xe0\x80\xaf"), 0);
    assert_int_equal(utf8("\xe0\x9f\xbf"), 0);
    assert_int_equal(utf8("\xf0\x80\x80\xaf"), 0);
    assert_int_equal(utf8("\xf0\x8f\xbf\xbf"), 0);
    /* Surrogates U+D800..U+DFFF. */
    assert_int_equal(utf8("\xed\xa0\x80"), 0);
    assert_int_equal(utf8("\xed\xbf\xbf"), 0);
    assert_int_equal(utf8("\xed\x9f\xbf"), 1);                   /* U+D7FF just below */
    /* Truncated sequences, at the end and followed by ASCII. */
    assert_int_equal(utf8("\xc3"), 0);
    assert_int_equal(utf8("\xe5\xae"), 0);
    assert_int_equal(utf8("\xf0\x9f\x98"), 0);
    assert_int_equal(utf8("\xe5\xae" "a"), 0);
    /* Beyond U+10FFFF, and lead bytes that can never start a sequence. */
    assert_int_equal(utf8("\xf4\x90\x80\x80"), 0);
    assert_int_equal(utf8("\xf5\x80\x80\x80"), 0);
    assert_int_equal(utf8("\xff"), 0);
    /* A lone continuation byte. */
    assert_int_equal(utf8("a\x80"), 0);
    /* len bounds the check: an embedded NUL is valid, a cut sequence is not. */
    assert_int_equal(tf_utf8_valid("a\0b", 3), 1);
    assert_int_equal(tf_utf8_valid("caf\xc3\xa9", 4), 0);
}

static int i64(const char *s, int64_t *out) { return tf_parse_i64(s, strlen(s), out); }

static void test_parse_i64(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(i64("0", &v), TF_OK);
    assert_int_equal(v, 0);
    assert_int_equal(i64("-0", &v), TF_OK);
    assert_int_equal(v, 0);
    assert_int_equal(i64("12345", &v), TF_OK);
    assert_int_equal(v, 12345);
    assert_int_equal(i64("-42", &v), TF_OK);
    assert_int_equal(v, -42);
    assert_int_equal(i64("007", &v), TF_OK);
    assert_int_equal(v, 7);
    assert_int_equal(i64("9223372036854775807", &v), TF_OK);
    assert_true(v == INT64_MAX);
    assert_int_equal(i64("-9223372036854775808", &v), TF_OK);
    assert_true(v == INT64_MIN);

    v = 99;
    assert_int_equal(i64("9223372036854775808", &v), TF_EINVAL);
    assert_int_equal(i64("-9223372036854775809", &v), TF_EINVAL);
    assert_int_equal(i64("18446744073709551616", &v), TF_EINVAL);
    assert_int_equal(i64("99999999999999999999999", &v), TF_EINVAL);
    assert_int_equal(i64("-", &v), TF_EINVAL);
    assert_int_equal(i64("", &v), TF_EINVAL);
    assert_int_equal(i64("+5", &v), TF_EINVAL);
    assert_int_equal(i64(" 5", &v), TF_EINVAL);
    assert_int_equal(i64("5 ", &v), TF_EINVAL);
    assert_int_equal(i64("1e3", &v), TF_EINVAL);
    assert_int_equal(i64("--1", &v), TF_EINVAL);
    assert_int_equal(v, 99); /* untouched on error */
    /* Only len bytes are read. */
    assert_int_equal(tf_parse_i64("123abc", 3, &v), TF_OK);
    assert_int_equal(v, 123);
}

/* tf_i64_text writes what printf's %lld would, and tf_parse_i64 reads it back. */
static void test_i64_text(void **state)
{
    (void)state;
    static const int64_t cases[] = { 0, 1, -1, 9, 10, -10, 99, 100, 1234567890123LL, -987654321, INT64_MAX, INT64_MIN,
                                     INT64_MIN + 1 };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[TF_I64_TEXT_LEN + 3], want[32];
        memset(got, 'x', sizeof got);
        size_t n = tf_i64_text(got, cases[i]);
        snprintf(want, sizeof want, "%lld", (long long)cases[i]);
        assert_string_equal(got, want);
        assert_int_equal(n, strlen(want));
        assert_true(n < TF_I64_TEXT_LEN);
        assert_int_equal(got[n + 1], 'x'); /* nothing past the NUL */
        int64_t back = 7;
        assert_int_equal(tf_parse_i64(got, n, &back), TF_OK);
        assert_true(back == cases[i]);
    }
}

static void test_strlcpy(void **state)
{
    (void)state;
    char buf[6];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(tf_strlcpy(buf, "hello", sizeof buf), TF_OK); /* exact fit */
    assert_string_equal(buf, "hello");
    memset(buf, 'x', sizeof buf);
    assert_int_equal(tf_strlcpy(buf, "hello!", sizeof buf), TF_EINVAL); /* one too long */
    assert_string_equal(buf, "hello");
    assert_int_equal(tf_strlcpy(buf, "a much longer string", sizeof buf), TF_EINVAL);
    assert_string_equal(buf, "a muc");
    assert_int_equal(tf_strlcpy(buf, "", sizeof buf), TF_OK);
    assert_string_equal(buf, "");
    char one[1] = {'x'};
    assert_int_equal(tf_strlcpy(one, "a", sizeof one), TF_EINVAL);
    assert_int_equal(one[0], '\0');
}

static void id_of(char out[TF_ID_LEN], const char *a, const char *b)
{
    const char *parts[2] = {a, b};
    tf_id_derive(out, parts, 2);
}

static void test_id_derive(void **state)
{
    (void)state;
    char x[TF_ID_LEN], y[TF_ID_LEN];
    id_of(x, "/web/shop-cn", "e-1");
    id_of(y, "/web/shop-cn", "e-1");
    assert_string_equal(x, y); /* deterministic */
    assert_int_equal(strlen(x), 32);
    for (size_t i = 0; i < 32; i++)
        assert_true((x[i] >= '0' && x[i] <= '9') || (x[i] >= 'a' && x[i] <= 'f'));

    id_of(y, "/web/shop-cn", "e-2");
    assert_string_not_equal(x, y);
    id_of(y, "e-1", "/web/shop-cn"); /* order matters */
    assert_string_not_equal(x, y);

    /* Part boundaries matter: ("ab","c") and ("a","bc") differ. */
    id_of(x, "ab", "c");
    id_of(y, "a", "bc");
    assert_string_not_equal(x, y);
    id_of(x, "", "abc");
    id_of(y, "abc", "");
    assert_string_not_equal(x, y);

    /* The number of parts matters too. */
    const char *one[1] = {"abc"};
    tf_id_derive(y, one, 1);
    assert_string_not_equal(x, y);
}

static void test_strerror(void **state)
{
    (void)state;
    const int codes[] = {TF_OK, TF_ERR, TF_ENOMEM, TF_EINVAL, TF_EAGAIN, TF_EIO,
                         TF_ECONFIG, TF_EFENCED, TF_ENOTFOUND, TF_ETIMEDOUT, TF_ECLOSED};
    const size_t n = sizeof codes / sizeof codes[0];
    const char *unknown = tf_strerror(-999);
    assert_non_null(unknown);
    assert_string_equal(tf_strerror(12345), unknown);
    for (size_t i = 0; i < n; i++) {
        const char *s = tf_strerror(codes[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, unknown);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, tf_strerror(codes[j]));
    }
    assert_string_equal(tf_strerror(TF_OK), "ok");
    assert_string_equal(tf_strerror(TF_EINVAL), "invalid argument");
    assert_string_equal(tf_strerror(TF_ENOTFOUND), "not found");
    assert_non_null(strstr(tf_strerror(TF_EFENCED), "fenced"));
}

static void test_log_level_parse(void **state)
{
    (void)state;
    const struct {
        const char *name;
        tf_log_level level;
    } ok[] = {{"debug", TF_LOG_DEBUG}, {"info", TF_LOG_INFO}, {"warn", TF_LOG_WARN},
              {"error", TF_LOG_ERROR}, {"off", TF_LOG_OFF}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        tf_log_level l = (tf_log_level)-1;
        assert_int_equal(tf_log_level_parse(ok[i].name, &l), TF_OK);
        assert_int_equal(l, ok[i].level);
    }
    tf_log_level l = TF_LOG_INFO;
    assert_int_equal(tf_log_level_parse("", &l), TF_EINVAL);
    assert_int_equal(tf_log_level_parse("warning", &l), TF_EINVAL);
    assert_int_equal(tf_log_level_parse("inf", &l), TF_EINVAL);
    assert_int_equal(tf_log_level_parse("trace", &l), TF_EINVAL);
    assert_int_equal(tf_log_level_parse("info ", &l), TF_EINVAL);
    assert_int_equal(l, TF_LOG_INFO);
}

static void test_log_enabled(void **state)
{
    (void)state;
    tf_log_set_level(TF_LOG_WARN);
    assert_false(tf_log_enabled(TF_LOG_DEBUG));
    assert_false(tf_log_enabled(TF_LOG_INFO));
    assert_true(tf_log_enabled(TF_LOG_WARN));
    assert_true(tf_log_enabled(TF_LOG_ERROR));
    tf_log_set_level(TF_LOG_OFF);
    assert_false(tf_log_enabled(TF_LOG_ERROR));
    assert_false(tf_log_enabled(TF_LOG_OFF));
    tf_log_set_level(TF_LOG_INFO);
}

static void test_log_throttle(void **state)
{
    (void)state;
    tf_log_throttle t = {0};
    uint64_t held = 99;
    assert_int_equal(tf_log_throttle_pass(&t, 5000, 1000, &held), 1); /* the first is written */
    assert_int_equal(held, 0);
    assert_int_equal(tf_log_throttle_pass(&t, 5001, 1000, &held), 0);
    assert_int_equal(tf_log_throttle_pass(&t, 5999, 1000, &held), 0); /* still in the window */
    assert_int_equal(tf_log_throttle_pass(&t, 6000, 1000, &held), 1); /* the window has passed */
    assert_int_equal(held, 2);
    assert_int_equal(tf_log_throttle_pass(&t, 9000, 1000, &held), 1); /* a quiet gap: nothing held */
    assert_int_equal(held, 0);
    tf_log_throttle z = {0};
    assert_int_equal(tf_log_throttle_pass(&z, 0, 1000, &held), 1); /* a clock at 0 still opens a window */
    assert_int_equal(tf_log_throttle_pass(&z, 10, 1000, &held), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_parse_utc),
        cmocka_unit_test(test_time_parse_offsets),
        cmocka_unit_test(test_time_parse_fraction),
        cmocka_unit_test(test_time_parse_calendar),
        cmocka_unit_test(test_time_parse_rejects),
        cmocka_unit_test(test_time_parse_lowercase),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_time_round_trip),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_parse_i64),
        cmocka_unit_test(test_i64_text),
        cmocka_unit_test(test_strlcpy),
        cmocka_unit_test(test_id_derive),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_log_level_parse),
        cmocka_unit_test(test_log_enabled),
        cmocka_unit_test(test_log_throttle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
