/* Unit tests for the decoder's JSON parser (pkg/event/json.c). What it must match
 * is Jansson 2.14's json_loadb(JSON_DECODE_ANY): the error positions below are
 * the ones Jansson reports for the same inputs, and tests/fuzz/fuzz_json.c
 * compares the two on everything else. */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "event/json.h"

static tf_json parser;

/* Parses s[0..n), which must be valid. */
static const tf_json_val *parse_n(const char *s, size_t n)
{
    tf_json_error err;
    const tf_json_val *v = tf_json_parse(&parser, s, n, &err);

    if (v == NULL)
        fail_msg("\"%s\" refused at line %d column %d (byte %d): %s", s, err.line, err.column, err.position,
                 err.text);
    return v;
}

#define PARSE(lit) parse_n(lit, sizeof lit - 1)

/* s[0..n) must be refused at line/column/position, as Jansson does. */
static void refused_at(const char *s, size_t n, int line, int column, int position)
{
    tf_json_error err;

    memset(&err, 0x55, sizeof err);
    if (tf_json_parse(&parser, s, n, &err) != NULL)
        fail_msg("\"%s\" accepted", s);
    if (err.line != line || err.column != column || err.position != position)
        fail_msg("\"%s\": line %d column %d byte %d (%s), want line %d column %d byte %d", s, err.line, err.column,
                 err.position, err.text, line, column, position);
    assert_true(err.text[0] != '\0' && memchr(err.text, '\0', sizeof err.text) != NULL);
}

#define REFUSED(lit, line, column, position) refused_at(lit, sizeof lit - 1, line, column, position)

static int string_is(const tf_json_val *v, const char *want, size_t len)
{
    return tf_json_is_string(v) && tf_json_string_len(v) == len && memcmp(tf_json_string(v), want, len) == 0;
}

#define STRING_IS(v, lit) string_is(v, lit, sizeof lit - 1)

static void scalars_at_the_top(void **state)
{
    const tf_json_val *v;

    (void)state;
    v = PARSE(" 42 \r\n");
    assert_true(tf_json_is_integer(v) && tf_json_is_number(v) && !tf_json_is_real(v));
    assert_true(tf_json_integer(v) == 42 && tf_json_number(v) == 42.0);
    /* Jansson reads -0 with strtoll: the integer 0; -0.0 with strtod: a real. */
    v = PARSE("-0");
    assert_true(tf_json_is_integer(v) && tf_json_integer(v) == 0);
    v = PARSE("-0.0");
    assert_true(tf_json_is_real(v) && tf_json_number(v) == 0.0 && signbit(tf_json_number(v)));
    v = PARSE("1e2");
    assert_true(tf_json_is_real(v) && tf_json_number(v) == 100.0 && tf_json_integer(v) == 0);
    v = PARSE("0.1");
    assert_true(tf_json_number(v) == 0.1);
    v = PARSE("-1.5E-3");
    assert_true(tf_json_number(v) == -1.5e-3);
    v = PARSE("1e-400"); /* underflow is not an error */
    assert_true(tf_json_is_real(v) && tf_json_number(v) == 0.0);
    v = PARSE("9223372036854775807");
    assert_true(tf_json_integer(v) == LLONG_MAX);
    v = PARSE("-9223372036854775808");
    assert_true(tf_json_integer(v) == LLONG_MIN);
    assert_true(tf_json_is_true(PARSE("true")) && tf_json_is_boolean(PARSE("true")));
    assert_true(tf_json_is_false(PARSE("false")) && tf_json_is_boolean(PARSE("false")));
    assert_true(tf_json_is_null(PARSE("null")) && !tf_json_is_boolean(PARSE("null")));
    assert_true(STRING_IS(PARSE("\"top\""), "top"));
}

static void accessors_take_null_and_other_types(void **state)
{
    const tf_json_val *v, *e;
    size_t i;

    (void)state;
    assert_false(tf_json_is_object(NULL) || tf_json_is_string(NULL) || tf_json_is_number(NULL) ||
                 tf_json_is_boolean(NULL) || tf_json_is_null(NULL));
    assert_null(tf_json_string(NULL));
    assert_int_equal(tf_json_string_len(NULL), 0);
    assert_true(tf_json_integer(NULL) == 0 && tf_json_number(NULL) == 0.0);
    assert_int_equal(tf_json_size(NULL), 0);
    assert_null(tf_json_get(NULL, "a"));
    v = PARSE("[\"a\"]");
    assert_null(tf_json_get(v, "a")); /* not an object */
    assert_null(tf_json_string(v));
    assert_true(tf_json_integer(v + 1) == 0 && tf_json_number(v + 1) == 0.0);
    tf_json_array_foreach(v + 1, i, e) fail_msg("iterated over a string");
}

/* Strings without escapes are read in place, the others unescaped. */
static void strings(void **state)
{
    static const char plain[] = "[\"caf\xc3\xa9 \xe4\xb8\xad\"]";
    const tf_json_val *v;

    (void)state;
    v = PARSE(plain);
    assert_true(STRING_IS(v + 1, "caf\xc3\xa9 \xe4\xb8\xad"));
    assert_ptr_equal(tf_json_string(v + 1), plain + 2);

    v = PARSE("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"a\\u00e9\\u4E2D\\ud83d\\ude00z\", \"\"]");
    assert_int_equal(tf_json_size(v), 3);
    assert_true(STRING_IS(v + 1, "\"\\/\b\f\n\r\t"));
    assert_true(STRING_IS(v + 2, "a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80z"));
    assert_true(STRING_IS(v + 3, ""));
}

/* Reals of 64 characters or more are copied to the scratch buffer for strtod,
 * past the unescaped strings, which must survive it. */
static void long_reals_beside_escaped_strings(void **state)
{
    static const char zeros[] = "0.00000000000000000000000000000000000000000000000000000000000000000000000000000001";
    char s[512];
    const tf_json_val *v;
    int n;

    (void)state;
    n = snprintf(s, sizeof s, "[%s, \"a\\tb\", %s, \"\\u00e9\", -%se5]", zeros, zeros, zeros);
    v = parse_n(s, (size_t)n);
    assert_int_equal(tf_json_size(v), 5);
    assert_true(tf_json_number(v + 1) == 1e-80 && tf_json_number(v + 3) == 1e-80);
    assert_true(tf_json_number(v + 5) == -1e-75);
    assert_true(STRING_IS(v + 2, "a\tb"));
    assert_true(STRING_IS(v + 4, "\xc3\xa9"));
}

static void objects_and_arrays(void **state)
{
    const tf_json_val *v, *e, *inner;
    size_t i;
    long long sum = 0;

    (void)state;
    v = PARSE("{\"a\":1,\"b\":[1,[2,{\"a\":9}],{}],\"c\":{\"d\":\"x\"},\"a\":[3],\"\":null}");
    assert_true(tf_json_is_object(v));
    assert_int_equal(tf_json_size(v), 5); /* members, duplicates included */
    /* The last of duplicate keys wins, as in Jansson. */
    e = tf_json_get(v, "a");
    assert_true(tf_json_is_array(e) && tf_json_size(e) == 1 && tf_json_integer(e + 1) == 3);
    assert_true(tf_json_is_null(tf_json_get(v, "")));
    assert_null(tf_json_get(v, "d")); /* only direct members */
    assert_ptr_equal(tf_json_getn(v, "ab", 1), tf_json_get(v, "a")); /* by length, not NUL */
    assert_true(STRING_IS(tf_json_get(tf_json_get(v, "c"), "d"), "x"));

    /* Iteration steps over nested values. */
    inner = tf_json_get(v, "b");
    assert_int_equal(tf_json_size(inner), 3);
    tf_json_array_foreach(inner, i, e) {
        if (i == 0)
            assert_true(tf_json_integer(e) == 1);
        if (i == 1)
            assert_true(tf_json_is_array(e) && tf_json_size(e) == 2);
        if (i == 2)
            assert_true(tf_json_is_object(e) && tf_json_size(e) == 0);
    }
    assert_int_equal(i, 3);

    /* More values than the first node array holds: it grows and is kept. */
    char big[4096];
    size_t n = 0;
    big[n++] = '[';
    for (int k = 0; k < 1000; k++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s%d", k ? "," : "", k);
    big[n++] = ']';
    v = parse_n(big, n);
    assert_int_equal(tf_json_size(v), 1000);
    tf_json_array_foreach(v, i, e) sum += tf_json_integer(e);
    assert_true(sum == 999 * 1000 / 2);
    assert_true(tf_json_is_integer(PARSE("7")));
}

static void nesting_limit(void **state)
{
    enum { D = TF_JSON_MAX_DEPTH };
    char *s = malloc(2 * D + 3);
    const tf_json_val *v;

    (void)state;
    assert_non_null(s);
    /* As deep as Jansson goes: 2048 arrays, the last one empty. */
    memset(s, '[', D);
    memset(s + D, ']', D);
    v = parse_n(s, 2 * D);
    assert_true(tf_json_is_array(v) && tf_json_size(v) == 1);
    /* A scalar in it is one level too deep, as is one more array. */
    memset(s, '[', D);
    s[D] = '1';
    memset(s + D + 1, ']', D);
    refused_at(s, 2 * D + 1, 1, D + 1, D + 1);
    memset(s, '[', D + 1);
    memset(s + D + 1, ']', D + 1);
    refused_at(s, 2 * D + 2, 1, D + 1, D + 1);
    free(s);
}

/* Every case here is refused by Jansson at the same line, column and byte. */
static void errors_where_jansson_reports_them(void **state)
{
    (void)state;
    REFUSED("", 1, 0, 0);
    REFUSED("   \n ", 2, 1, 5);
    REFUSED("[", 1, 1, 1);
    REFUSED("{\"a\":1,}", 1, 8, 8);
    REFUSED("[1,\n 2,\n x]", 3, 2, 10);
    REFUSED("{\"a\" 1}", 1, 6, 6);
    REFUSED("[1 2]", 1, 4, 4);
    REFUSED("[1]x", 1, 4, 4);
    REFUSED("{\"a\":1}\n\n  }", 3, 3, 12);
    /* Words are read as a whole run of letters. */
    REFUSED("tru", 1, 3, 3);
    REFUSED("truex", 1, 5, 5);
    /* Numbers: refused before the character that broke them. */
    REFUSED("01", 1, 1, 1);
    REFUSED("-", 1, 1, 1);
    REFUSED("-a", 1, 1, 1);
    REFUSED("1.", 1, 2, 2);
    REFUSED(".5", 1, 1, 1);
    REFUSED("+1", 1, 1, 1);
    REFUSED("1e", 1, 2, 2);
    REFUSED("1e+", 1, 3, 3);
    REFUSED("9223372036854775808", 1, 19, 19);
    REFUSED("-9223372036854775809", 1, 20, 20);
    REFUSED("1e309", 1, 5, 5);
    REFUSED("-1e309", 1, 6, 6);
    /* Strings: at a bad escape, before a control character, after the string for
     * surrogates and \u0000 (in values and keys); columns count characters. */
    REFUSED("\"\\x\"", 1, 3, 3);
    REFUSED("\"\xc3\xa9\\q\"", 1, 4, 5);
    REFUSED(" \n \"\xe4\xb8\xad\\u12G4\"", 2, 8, 12);
    REFUSED("\"a\tb\"", 1, 2, 2);
    REFUSED("\"ab\ncd\"", 1, 3, 3);
    REFUSED("\"abc", 1, 4, 4);
    REFUSED("[\"\\ud800\"]", 1, 9, 9);
    REFUSED("[\"\\udc00\"]", 1, 9, 9);
    REFUSED("[\"\\ud800\\u0041\"]", 1, 15, 15);
    REFUSED("[\"a\\u0000\"]", 1, 10, 10);
    REFUSED("{\"a\\u0000\":1}", 1, 10, 10);
    /* Bytes that are not UTF-8: before them; a character that is no token: after. */
    REFUSED("[\"\xff\"]", 1, 2, 2);
    REFUSED("[\"\xed\xa0\x80\"]", 1, 2, 2);
    REFUSED("\xc3\xa9", 1, 1, 2);
}

/* Jansson's stream cannot push a NUL back: one right after a number or a word is
 * dropped, and its positions no longer count it. tf_utf8_valid lets NUL through,
 * so the decoder has always accepted these. */
static void a_nul_after_a_number_is_dropped(void **state)
{
    const tf_json_val *v;

    (void)state;
    v = PARSE("[1\0,true\0]");
    assert_true(tf_json_size(v) == 2 && tf_json_integer(v + 1) == 1 && tf_json_is_true(v + 2));
    assert_true(tf_json_integer(PARSE("1\0")) == 1);
    REFUSED("1\0\0", 1, 2, 2);
    REFUSED("[1\0 x]", 1, 4, 4);
    REFUSED("[1,\0]", 1, 4, 4);
    REFUSED("[\"\\u\0\"]", 1, 5, 5); /* in a string a NUL is read, not dropped */
}

static void the_parser_can_be_freed_and_reused(void **state)
{
    tf_json j;

    (void)state;
    memset(&j, 0, sizeof j);
    tf_json_free(&j);
    assert_true(tf_json_is_object(tf_json_parse(&j, "{\"a\":\"\\n\"}", 10, NULL)));
    assert_null(tf_json_parse(&j, "{", 1, NULL)); /* err may be NULL */
    tf_json_free(&j);
    assert_null(j.nodes);
    assert_true(STRING_IS(tf_json_parse(&j, "\"\\t\"", 4, NULL), "\t"));
    tf_json_free(&j);
    tf_json_free(NULL);
}

static int teardown(void **state)
{
    (void)state;
    tf_json_free(&parser);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scalars_at_the_top),
        cmocka_unit_test(accessors_take_null_and_other_types),
        cmocka_unit_test(strings),
        cmocka_unit_test(long_reals_beside_escaped_strings),
        cmocka_unit_test(objects_and_arrays),
        cmocka_unit_test(nesting_limit),
        cmocka_unit_test(errors_where_jansson_reports_them),
        cmocka_unit_test(a_nul_after_a_number_is_dropped),
        cmocka_unit_test(the_parser_can_be_freed_and_reused),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
