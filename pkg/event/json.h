/* json: the decoder's read-only JSON parser (internal to pkg/event).
 *
 * Parses a whole text into a flat array of nodes and reads it in place: strings
 * without escapes point into the input, the others into the parser's scratch
 * buffer, so a parse allocates nothing once the parser's buffers are as large as
 * the input needs. It accepts exactly what Jansson 2.14's
 * json_loadb(buf, len, JSON_DECODE_ANY, &err) accepts, builds the same values
 * (integers as long long, reals with strtod, the last of duplicate keys wins) and
 * reports an error at the line, column and byte position Jansson reports; only the
 * error texts are our own. tests/fuzz/fuzz_json.c holds it to that.
 *
 * A tf_json is plain data; zero-initialised it is an empty parser. One parser
 * serves one thread at a time. */
#ifndef TF_EVENT_JSON_H
#define TF_EVENT_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Jansson's JSON_PARSER_MAX_DEPTH: scalars count, so 2048 nested arrays may hold
 * nothing but further empty ones. */
#define TF_JSON_MAX_DEPTH 2048

typedef enum {
    TF_JSON_OBJECT = 1,
    TF_JSON_ARRAY,
    TF_JSON_STRING,
    TF_JSON_INTEGER,
    TF_JSON_REAL,
    TF_JSON_TRUE,
    TF_JSON_FALSE,
    TF_JSON_NULL
} tf_json_type;

/* One value. A container's children follow it in the array (an object's as key,
 * value, key, value...), so the next sibling of any node is node + span. Read the
 * fields through the functions below. */
typedef struct tf_json_val {
    uint8_t type;  /* tf_json_type */
    uint32_t len;  /* string: bytes; array: elements; object: members */
    uint32_t span; /* nodes in this subtree, itself included */
    uint32_t up;   /* while parsing: the enclosing container */
    union {
        const char *s; /* not NUL-terminated, never holds a NUL */
        long long i;
        double d;
    } u;
} tf_json_val;

/* Buffers kept between parses (private but for depth). */
typedef struct {
    tf_json_val *nodes;
    size_t cap;
    char *scratch;
    size_t scratch_cap, scratch_used;
    int depth; /* the last accepted text's deepest nesting of containers (0: a scalar) */
} tf_json;

typedef struct {
    int line;     /* 1-based */
    int column;   /* characters (not bytes) before the error on its line */
    int position; /* bytes read before the error */
    char text[96];
} tf_json_error;

/* Parses buf[0..len) (any bytes; no NUL terminator needed). Returns the root value,
 * borrowed from j and from buf: both must outlive it, and the next parse with j
 * replaces it. NULL on error, with *err filled (err may be NULL). j's buffers grow
 * to what the input needs and are kept for later calls; an allocation failure is
 * reported as an error at the value being parsed. */
const tf_json_val *tf_json_parse(tf_json *j, const char *buf, size_t len, tf_json_error *err);

/* Releases j's buffers; j is then an empty parser again. */
void tf_json_free(tf_json *j);

/* The member of obj named key[0..keylen), the last one when the name repeats;
 * NULL when obj is not an object or has no such member. Objects are scanned. */
const tf_json_val *tf_json_getn(const tf_json_val *obj, const char *key, size_t keylen);

static inline const tf_json_val *tf_json_get(const tf_json_val *obj, const char *key)
{
    return tf_json_getn(obj, key, strlen(key));
}

/* The type tests accept NULL (an absent member) and say no. */
static inline int tf_json_is(const tf_json_val *v, tf_json_type t)
{
    return v != NULL && v->type == t;
}
#define tf_json_is_object(v) tf_json_is((v), TF_JSON_OBJECT)
#define tf_json_is_array(v) tf_json_is((v), TF_JSON_ARRAY)
#define tf_json_is_string(v) tf_json_is((v), TF_JSON_STRING)
#define tf_json_is_integer(v) tf_json_is((v), TF_JSON_INTEGER)
#define tf_json_is_real(v) tf_json_is((v), TF_JSON_REAL)
#define tf_json_is_true(v) tf_json_is((v), TF_JSON_TRUE)
#define tf_json_is_false(v) tf_json_is((v), TF_JSON_FALSE)
#define tf_json_is_null(v) tf_json_is((v), TF_JSON_NULL)
#define tf_json_is_number(v) (tf_json_is_integer(v) || tf_json_is_real(v))
#define tf_json_is_boolean(v) (tf_json_is_true(v) || tf_json_is_false(v))

/* A string's bytes (not NUL-terminated) and length; NULL and 0 for a non-string. */
static inline const char *tf_json_string(const tf_json_val *v)
{
    return tf_json_is_string(v) ? v->u.s : NULL;
}

static inline size_t tf_json_string_len(const tf_json_val *v)
{
    return tf_json_is_string(v) ? v->len : 0;
}

/* 0 for a non-integer. */
static inline long long tf_json_integer(const tf_json_val *v)
{
    return tf_json_is_integer(v) ? v->u.i : 0;
}

/* An integer or a real as a double (as json_number_value); 0.0 for the rest. */
static inline double tf_json_number(const tf_json_val *v)
{
    if (tf_json_is_integer(v))
        return (double)v->u.i;
    return tf_json_is_real(v) ? v->u.d : 0.0;
}

/* Elements of an array, members of an object; 0 for the rest. */
static inline size_t tf_json_size(const tf_json_val *v)
{
    return tf_json_is_array(v) || tf_json_is_object(v) ? v->len : 0;
}

/* for (i = 0 .. size-1) with elem the i-th element of arr; i is a size_t and elem
 * a const tf_json_val *. No iterations when arr is not an array. arr is evaluated
 * on every iteration, so it must not depend on elem. */
#define tf_json_array_foreach(arr, i, elem)                                                                   \
    for ((i) = 0, (elem) = tf_json_is_array(arr) ? (arr) + 1 : NULL; (i) < tf_json_size(arr) && (elem) != NULL; \
         (i)++, (elem) += (elem)->span)

#endif
