/* libFuzzer harness: the decoder's JSON parser (pkg/event/json.c) against Jansson.
 *
 * Input: any bytes, parsed by both json_loadb(JSON_DECODE_ANY), which the decoder
 * used before, and tf_json_parse. Aborts when one accepts what the other refuses,
 * when the values differ (type, integer, real bit for bit, string bytes, array
 * elements in order, the value every key of an object looks up: Jansson keeps the
 * last of duplicate keys), or when both refuse but at a different line, column or
 * byte position. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reused across inputs, as the decoder reuses its own. */
static tf_json parser;

static void must(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_json: %s\n", what);
        abort();
    }
}

static void same(const json_t *a, const tf_json_val *b)
{
    must(b != NULL, "a value Jansson has is missing");
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        const char *key;
        size_t klen;
        json_t *val;
        const tf_json_val *k;

        must(tf_json_is_object(b), "object expected");
        json_object_keylen_foreach((json_t *)a, key, klen, val) same(val, tf_json_getn(b, key, klen));
        /* ... and no key Jansson does not have. */
        k = b + 1;
        for (size_t i = 0; i < tf_json_size(b); i++) {
            must(tf_json_is_string(k), "object key is not a string node");
            must(json_object_getn(a, tf_json_string(k), tf_json_string_len(k)) != NULL, "extra key");
            k = (k + 1) + (k + 1)->span;
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        const tf_json_val *e;

        must(tf_json_is_array(b), "array expected");
        must(tf_json_size(b) == json_array_size(a), "array sizes differ");
        tf_json_array_foreach(b, i, e) same(json_array_get(a, i), e);
        must(i == json_array_size(a), "array iteration stopped short");
        break;
    }
    case JSON_STRING:
        must(tf_json_is_string(b), "string expected");
        must(tf_json_string_len(b) == json_string_length(a), "string lengths differ");
        must(memcmp(tf_json_string(b), json_string_value(a), json_string_length(a)) == 0, "strings differ");
        break;
    case JSON_INTEGER:
        must(tf_json_is_integer(b), "integer expected");
        must(tf_json_integer(b) == json_integer_value(a), "integers differ");
        must(tf_json_number(b) == json_number_value(a), "integer as number differs");
        break;
    case JSON_REAL: {
        double x = json_real_value(a), y = tf_json_number(b);
        must(tf_json_is_real(b), "real expected");
        must(memcmp(&x, &y, sizeof x) == 0, "reals differ");
        break;
    }
    case JSON_TRUE:
        must(tf_json_is_true(b) && tf_json_is_boolean(b), "true expected");
        break;
    case JSON_FALSE:
        must(tf_json_is_false(b) && tf_json_is_boolean(b), "false expected");
        break;
    case JSON_NULL:
        must(tf_json_is_null(b), "null expected");
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    tf_json_error err;
    json_t *a = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
    const tf_json_val *b = tf_json_parse(&parser, (const char *)data, size, &err);

    if (a == NULL && b != NULL)
        fprintf(stderr, "Jansson refused (line %d column %d byte %d: %s), tf_json accepted\n", jerr.line,
                jerr.column, jerr.position, jerr.text);
    if (a != NULL && b == NULL)
        fprintf(stderr, "Jansson accepted, tf_json refused (line %d column %d byte %d: %s)\n", err.line, err.column,
                err.position, err.text);
    must((a == NULL) == (b == NULL), "one accepted, the other refused");
    if (a == NULL) {
        if (jerr.line != err.line || jerr.column != err.column || jerr.position != err.position)
            fprintf(stderr, "Jansson: line %d column %d byte %d: %s\ntf_json: line %d column %d byte %d: %s\n",
                    jerr.line, jerr.column, jerr.position, jerr.text, err.line, err.column, err.position, err.text);
        must(jerr.line == err.line && jerr.column == err.column && jerr.position == err.position,
             "error positions differ");
        must(err.text[0] != '\0', "an error without a text");
        return 0;
    }
    same(a, b);
    json_decref(a);
    return 0;
}
