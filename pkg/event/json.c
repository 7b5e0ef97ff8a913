/* The decoder's JSON parser (json.h): one pass, no recursion, no allocation once
 * the parser's buffers fit the input.
 *
 * Two halves. The fast half parses and builds nodes; at the first thing it cannot
 * accept it stops and names the token it stopped at. The slow half (error path
 * only) then reproduces what Jansson 2.14's lexer does with that token, because
 * Jansson reports an error where its stream stands when the error is noticed:
 * after the offending token, or inside it at a bad escape, before a control
 * character or an undecodable byte. Keeping the two halves apart keeps the fast
 * one free of position bookkeeping: lines and columns are counted only on error.
 *
 * One quirk of Jansson is reproduced on purpose: a NUL byte right after a number
 * or a true/false/null is dropped (its stream cannot push a NUL back), so
 * "[1\0]" parses. tf_utf8_valid lets NUL through, so the decoder sees such input. */
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "event/json.h"

#define NO_NODE UINT32_MAX

/* What the fast half's token readers return. */
enum { TOKEN_OK = 0, TOKEN_BAD = -1, TOKEN_NUL = -2, TOKEN_NOMEM = -3 };
/* Numbers are copied out NUL-terminated for strtod; longer ones go to scratch. */
#define NUMBUF 64

/* What ends a run of plain string bytes: the quote, a backslash, control
 * characters, and bytes >= 0x80 (checked as UTF-8, as Jansson's stream does). */
static const unsigned char str_stop[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

static char *utf8_put(char *d, uint32_t cp)
{
    if (cp < 0x80) {
        *d++ = (char)cp;
    } else if (cp < 0x800) {
        *d++ = (char)(0xC0 | (cp >> 6));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *d++ = (char)(0xE0 | (cp >> 12));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *d++ = (char)(0xF0 | (cp >> 18));
        *d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    }
    return d;
}

/* The 16-bit value of the four hex digits at p, or -1. */
static long hex4(const unsigned char *p, const unsigned char *end)
{
    long v = 0;

    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = tf_hex_value(p[i]);
        if (h < 0)
            return -1;
        v = (v << 4) | h;
    }
    return v;
}

/* ---- buffers ---- */

void tf_json_free(tf_json *j)
{
    if (j == NULL)
        return;
    free(j->nodes);
    free(j->scratch);
    memset(j, 0, sizeof *j);
}

static int grow_nodes(tf_json *j)
{
    size_t cap = j->cap < 64 ? 64 : j->cap * 2;
    tf_json_val *n;

    if (cap > NO_NODE)
        return -1;
    n = realloc(j->nodes, cap * sizeof *n);
    if (n == NULL)
        return -1;
    j->nodes = n;
    j->cap = cap;
    return 0;
}

/* Node n, a child of cur, started; NULL when the array cannot grow. */
static tf_json_val *node_at(tf_json *j, size_t n, uint32_t cur)
{
    if (n == j->cap && grow_nodes(j) != 0)
        return NULL;
    tf_json_val *v = &j->nodes[n];
    v->span = 1;
    v->up = cur;
    return v;
}

/* Unescaped text is never longer than its source, so scratch of the input's length
 * holds every string of a parse. It grows only before the first string of a parse
 * is put there, so no node points into it yet. */
static int need_scratch(tf_json *j, size_t len)
{
    char *s;

    if (j->scratch_cap >= len + 1)
        return 0;
    s = realloc(j->scratch, len + 1);
    if (s == NULL)
        return -1;
    j->scratch = s;
    j->scratch_cap = len + 1;
    return 0;
}

/* ---- the fast half ---- */

typedef struct {
    tf_json *j;
    const unsigned char *buf, *end;
} parse_ctx;

/* The string whose opening quote is at *pp: on success v holds it and *pp is past
 * the closing quote. TOKEN_NUL when it decodes to a NUL byte (Jansson: no
 * JSON_ALLOW_NUL). */
static int parse_string(parse_ctx *pc, const unsigned char **pp, tf_json_val *v)
{
    const unsigned char *p = *pp + 1, *start = p, *end = pc->end;
    tf_json *j = pc->j;
    char *d, *dstart;

    for (;;) {
        while (p < end && !str_stop[*p])
            p++;
        if (p == end)
            return TOKEN_BAD;
        if (*p == '"') {
            v->type = TF_JSON_STRING;
            v->u.s = (const char *)start;
            v->len = (uint32_t)(p - start);
            *pp = p + 1;
            return TOKEN_OK;
        }
        if (*p == '\\')
            break;
        if (*p < 0x20)
            return TOKEN_BAD;
        size_t n = tf_utf8_seq(p, end);
        if (n == 0)
            return TOKEN_BAD;
        p += n;
    }

    /* Escapes: unescape into scratch, from the start of the string. */
    if (need_scratch(j, (size_t)(end - pc->buf)) != 0)
        return TOKEN_NOMEM;
    dstart = d = j->scratch + j->scratch_used;
    memcpy(d, start, (size_t)(p - start));
    d += p - start;
    for (;;) {
        const unsigned char *run = p;
        while (p < end && !str_stop[*p])
            p++;
        memcpy(d, run, (size_t)(p - run));
        d += p - run;
        if (p == end)
            return TOKEN_BAD;
        if (*p == '"')
            break;
        if (*p < 0x20)
            return TOKEN_BAD;
        if (*p >= 0x80) {
            size_t n = tf_utf8_seq(p, end);
            if (n == 0)
                return TOKEN_BAD;
            memcpy(d, p, n);
            d += n;
            p += n;
            continue;
        }
        /* a backslash */
        if (end - p < 2)
            return TOKEN_BAD;
        switch (p[1]) {
        case '"': case '\\': case '/':
            *d++ = (char)p[1];
            break;
        case 'b': *d++ = '\b'; break;
        case 'f': *d++ = '\f'; break;
        case 'n': *d++ = '\n'; break;
        case 'r': *d++ = '\r'; break;
        case 't': *d++ = '\t'; break;
        case 'u': {
            long cp = hex4(p + 2, end), lo;
            if (cp < 0)
                return TOKEN_BAD;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* A high surrogate needs a low one in the very next escape. */
                if (end - p < 8 || p[6] != '\\' || p[7] != 'u')
                    return TOKEN_BAD;
                lo = hex4(p + 8, end);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return TOKEN_BAD;
                cp = ((cp - 0xD800) << 10) + (lo - 0xDC00) + 0x10000;
                p += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return TOKEN_BAD;
            } else if (cp == 0) {
                return TOKEN_NUL;
            }
            d = utf8_put(d, (uint32_t)cp);
            p += 4;
            break;
        }
        default:
            return TOKEN_BAD;
        }
        p += 2;
    }
    v->type = TF_JSON_STRING;
    v->u.s = dstart;
    v->len = (uint32_t)(d - dstart);
    j->scratch_used += (size_t)(d - dstart);
    *pp = p + 1;
    return TOKEN_OK;
}

/* strtod on s[0..n), a NUL-terminated copy of a number the grammar accepted, as
 * Jansson's jsonp_strtod: 0, or -1 when it overflows to infinity (underflow is
 * accepted). */
static int json_strtod(char *s, size_t n, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (end != s + n) {
        /* A locale whose decimal point is not '.': Jansson swaps it in. */
        char *dot = memchr(s, '.', n);
        if (dot != NULL)
            *dot = localeconv()->decimal_point[0];
        errno = 0;
        v = strtod(s, &end);
    }
    if ((v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

/* The real number text[0..n); TOKEN_BAD when it overflows. */
static int to_double(parse_ctx *pc, const unsigned char *text, size_t n, double *out)
{
    char small[NUMBUF], *s = small;

    if (n >= sizeof small) {
        /* Scratch past the strings made so far: those are no longer than the
         * input before this number, so input length + 1 leaves room for it. */
        if (need_scratch(pc->j, (size_t)(pc->end - pc->buf)) != 0)
            return TOKEN_NOMEM;
        s = pc->j->scratch + pc->j->scratch_used;
    }
    memcpy(s, text, n);
    s[n] = '\0';
    return json_strtod(s, n, out) == 0 ? TOKEN_OK : TOKEN_BAD;
}

/* The number at *pp; TOKEN_BAD when malformed or out of range. */
static int parse_number(parse_ctx *pc, const unsigned char **pp, tf_json_val *v)
{
    const unsigned char *p = *pp, *start = p, *digits, *end = pc->end;
    int neg = 0;

    if (*p == '-')
        neg = 1, p++;
    digits = p;
    if (p == end || !is_digit(*p))
        return TOKEN_BAD;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return TOKEN_BAD;
    } else {
        while (p < end && is_digit(*p))
            p++;
    }
    if (p == end || (*p != '.' && *p != 'e' && *p != 'E')) {
        /* Integer: without leading zeros, 20 digits are already past 2^63. */
        unsigned long long m = 0;
        size_t nd = (size_t)(p - digits);
        if (nd > 19)
            return TOKEN_BAD;
        for (const unsigned char *q = digits; q < p; q++)
            m = m * 10 + (unsigned)(*q - '0');
        if (neg) {
            if (m > (unsigned long long)LLONG_MAX + 1)
                return TOKEN_BAD;
            v->u.i = m == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)m;
        } else {
            if (m > (unsigned long long)LLONG_MAX)
                return TOKEN_BAD;
            v->u.i = (long long)m;
        }
        v->type = TF_JSON_INTEGER;
        *pp = p;
        return TOKEN_OK;
    }
    if (*p == '.') {
        p++;
        if (p == end || !is_digit(*p))
            return TOKEN_BAD;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return TOKEN_BAD;
        while (p < end && is_digit(*p))
            p++;
    }
    int rc = to_double(pc, start, (size_t)(p - start), &v->u.d);
    if (rc != 0)
        return rc;
    v->type = TF_JSON_REAL;
    *pp = p;
    return TOKEN_OK;
}

/* true, false or null at *pp, not followed by a letter (Jansson reads the whole
 * run of letters as one word). */
static int parse_word(const unsigned char **pp, const unsigned char *end, tf_json_val *v)
{
    static const struct {
        const char *word;
        size_t len;
        tf_json_type type;
    } words[] = { { "true", 4, TF_JSON_TRUE }, { "false", 5, TF_JSON_FALSE }, { "null", 4, TF_JSON_NULL } };
    const unsigned char *p = *pp;

    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t n = words[i].len;
        if ((size_t)(end - p) >= n && memcmp(p, words[i].word, n) == 0 && !(p + n < end && is_alpha(p[n]))) {
            v->type = (uint8_t)words[i].type;
            *pp = p + n;
            return TOKEN_OK;
        }
    }
    return TOKEN_BAD;
}

/* ---- the slow half: where Jansson stands when it reports an error ---- */

/* Jansson's stream reads a character, then validates a multi-byte one as a whole:
 * an undecodable sequence is an error before its first byte. Returns 1 when the
 * byte at p can be read. */
static int readable(const unsigned char *p, const unsigned char *end)
{
    return *p < 0x80 || tf_utf8_seq(p, end) != 0;
}

/* A string token as Jansson lexes it: a first pass checks the characters and the
 * escapes' syntax, a second pass (after the closing quote) the surrogates. */
static const char *string_error(const unsigned char *t, const unsigned char *end, const unsigned char **at)
{
    const unsigned char *p = t + 1, *close;

    for (;;) {
        if (p == end)
            return *at = end, "premature end of input";
        if (*p >= 0x80) {
            size_t n = tf_utf8_seq(p, end);
            if (n == 0)
                return *at = p, "invalid UTF-8";
            p += n;
            continue;
        }
        if (*p == '"')
            break;
        if (*p < 0x20)
            return *at = p, *p == '\n' ? "unexpected newline" : "control character in string";
        if (*p != '\\') {
            p++;
            continue;
        }
        p++;
        if (p == end)
            return *at = end, "invalid escape";
        if (!readable(p, end))
            return *at = p, "invalid UTF-8";
        if (*p == 'u') {
            p++;
            for (int i = 0; i < 4; i++, p++) {
                if (p == end)
                    return *at = end, "invalid \\u escape";
                if (!readable(p, end))
                    return *at = p, "invalid UTF-8";
                if (tf_hex_value(*p) < 0)
                    return *at = p + 1, "invalid \\u escape";
            }
        } else if (strchr("\"\\/bfnrt", *p) != NULL && *p != '\0') {
            p++;
        } else {
            return *at = p + 1, "invalid escape";
        }
    }
    close = p;
    *at = close + 1;
    for (p = t + 1; p < close; p++) {
        long cp, lo;
        if (*p != '\\')
            continue;
        if (p[1] != 'u') {
            p++;
            continue;
        }
        cp = hex4(p + 2, close);
        p += 5;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return "invalid Unicode escape (lone low surrogate)";
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (close - p < 7 || p[1] != '\\' || p[2] != 'u')
                return "invalid Unicode escape (lone high surrogate)";
            lo = hex4(p + 3, close);
            if (lo < 0xDC00 || lo > 0xDFFF)
                return "invalid Unicode escape (bad low surrogate)";
            p += 6;
        }
    }
    return NULL;
}

/* A number token as Jansson lexes it; a malformed one ends before the character
 * that broke it. */
static const char *number_error(const unsigned char *t, const unsigned char *end, const unsigned char **at)
{
    const unsigned char *p = t;
    int integer = 1;

    if (*p == '-')
        p++;
    if (p < end && *p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return *at = p, "invalid number (leading zero)";
    } else if (p < end && is_digit(*p)) {
        while (p < end && is_digit(*p))
            p++;
    } else {
        return *at = p, "invalid number";
    }
    if (p < end && *p == '.') {
        integer = 0;
        p++;
        if (p == end || !is_digit(*p))
            return *at = p, "invalid number (no digit after '.')";
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return *at = p, "invalid number (no digit in exponent)";
        while (p < end && is_digit(*p))
            p++;
    }
    *at = p;
    if (integer) {
        /* strtoll's range: without leading zeros, longer is larger. */
        const char *lim = *t == '-' ? "-9223372036854775808" : "9223372036854775807";
        size_t n = (size_t)(p - t), ln = strlen(lim);
        if (n > ln || (n == ln && memcmp(t, lim, n) > 0))
            return *t == '-' ? "too big negative integer" : "too big integer";
    } else {
        size_t n = (size_t)(p - t);
        char small[NUMBUF], *s = n < sizeof small ? small : malloc(n + 1);
        double v;
        int overflow;
        if (s == NULL)
            return "out of memory";
        memcpy(s, t, n);
        s[n] = '\0';
        overflow = json_strtod(s, n, &v) != 0;
        if (s != small)
            free(s);
        if (overflow)
            return "real number overflow";
    }
    /* The character after the number is read too. */
    if (p < end && !readable(p, end))
        return "invalid UTF-8";
    return NULL;
}

/* Where Jansson's stream stands after it lexed the token at t (after whitespace),
 * in *at, and the lexer's own complaint about the token, or NULL when the token
 * is well formed (an unexpected one is the parser's complaint). */
static const char *token_error(const unsigned char *t, const unsigned char *end, const unsigned char **at)
{
    const unsigned char *p = t;

    if (p == end)
        return *at = end, NULL;
    if (*p == '"')
        return string_error(t, end, at);
    if (*p == '-' || is_digit(*p))
        return number_error(t, end, at);
    if (*p != '\0' && strchr("{}[]:,", *p) != NULL)
        return *at = t + 1, NULL;
    if (is_alpha(*p)) {
        while (p < end && is_alpha(*p))
            p++;
        *at = p;
        if (p < end && !readable(p, end))
            return "invalid UTF-8";
        if (((p - t == 4 && (memcmp(t, "true", 4) == 0 || memcmp(t, "null", 4) == 0)) ||
             (p - t == 5 && memcmp(t, "false", 5) == 0)))
            return NULL;
        return "invalid token";
    }
    if (*p >= 0x80) {
        size_t n = tf_utf8_seq(p, end);
        if (n == 0)
            return *at = p, "invalid UTF-8";
        return *at = p + n, "invalid token";
    }
    return *at = t + 1, "invalid token";
}

/* Fills err for an error noticed at the token starting at t; what is the parser's
 * complaint when the token itself is well formed. */
static void set_error(tf_json_error *err, const unsigned char *buf, const unsigned char *t,
                      const unsigned char *end, const char *what)
{
    const unsigned char *at, *p;
    const char *lexer = token_error(t, end, &at);
    int line = 1, column = 0, position = 0, in_str = 0, esc = 0;
    char near[24];
    size_t n = 0;

    if (err == NULL)
        return;
    /* Jansson's position and column leave out the NULs it dropped (see the top):
     * outside strings, a NUL right after a letter or a digit before the error,
     * which can only be a number's or a word's lookahead. */
    for (p = buf; p < at; p++) {
        if (in_str) {
            if (esc)
                esc = 0;
            else if (*p == '\\')
                esc = 1;
            else if (*p == '"')
                in_str = 0;
        } else if (*p == '"') {
            in_str = 1;
        } else if (*p == '\0' && p > buf && (is_alpha(p[-1]) || is_digit(p[-1]))) {
            continue;
        }
        position++;
        if (*p == '\n')
            line++, column = 0;
        else if (*p < 0x80 || (*p >= 0xC2 && *p <= 0xF4))
            column++; /* the first byte of a character */
    }
    err->line = line;
    err->column = column;
    err->position = position;

    /* Like Jansson, quote the token read so far when it is short. */
    for (p = t; p < at && n < sizeof near - 1; p++)
        near[n++] = *p < 0x20 || *p == 0x7F ? '?' : (char)*p;
    near[n] = '\0';
    if (at == t && t == end)
        snprintf(err->text, sizeof err->text, "%s near end of file", lexer != NULL ? lexer : what);
    else if (n > 0 && (size_t)(at - t) <= 20)
        snprintf(err->text, sizeof err->text, "%s near '%s'", lexer != NULL ? lexer : what, near);
    else
        snprintf(err->text, sizeof err->text, "%s", lexer != NULL ? lexer : what);
}

/* ---- the parser ---- */

const tf_json_val *tf_json_parse(tf_json *j, const char *text, size_t len, tf_json_error *err)
{
    const unsigned char *buf = (const unsigned char *)(text != NULL ? text : ""), *p = buf, *end = buf + len;
    const unsigned char *t;
    parse_ctx pc = { j, buf, end };
    uint32_t n = 0, cur = NO_NODE;
    int depth = 0, maxdepth = 0, rc;
    const char *what;
    tf_json_val *v;

    if (text == NULL && len > 0) {
        if (err != NULL)
            *err = (tf_json_error){ .line = -1, .column = -1, .text = "wrong arguments" };
        return NULL;
    }
    if (len > INT_MAX) {
        /* Positions are ints, as Jansson's; nothing we read is this large. */
        if (err != NULL)
            *err = (tf_json_error){ .line = -1, .column = -1, .text = "input too large" };
        return NULL;
    }
    j->scratch_used = 0;

value:
    p = skip_ws(p, end);
    t = p;
    if (depth >= TF_JSON_MAX_DEPTH) {
        what = "maximum parsing depth reached";
        goto fail;
    }
    if ((v = node_at(j, n, cur)) == NULL) {
        what = "out of memory";
        goto fail;
    }
    if (cur != NO_NODE && j->nodes[cur].type == TF_JSON_ARRAY)
        j->nodes[cur].len++;
    if (p == end) {
        what = "unexpected end of input";
        goto fail;
    }
    switch (*p) {
    case '{':
    case '[':
        v->type = *p == '{' ? TF_JSON_OBJECT : TF_JSON_ARRAY;
        v->len = 0;
        cur = n++;
        if (++depth > maxdepth)
            maxdepth = depth;
        p = skip_ws(p + 1, end);
        if (p < end && *p == (v->type == TF_JSON_OBJECT ? '}' : ']')) {
            p++;
            goto close;
        }
        if (v->type == TF_JSON_OBJECT)
            goto key;
        goto value;
    case '"':
        rc = parse_string(&pc, &p, v);
        if (rc != TOKEN_OK) {
            what = rc == TOKEN_NOMEM ? "out of memory" : "\\u0000 is not allowed in a string";
            goto fail;
        }
        n++;
        goto after;
    case '-':
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
        rc = parse_number(&pc, &p, v);
        if (rc != TOKEN_OK) {
            what = rc == TOKEN_NOMEM ? "out of memory" : "invalid number";
            goto fail;
        }
        break;
    case 't':
    case 'f':
    case 'n':
        if (parse_word(&p, end, v) != TOKEN_OK) {
            what = "invalid token";
            goto fail;
        }
        break;
    default:
        what = "unexpected token";
        goto fail;
    }
    /* After a number or a word Jansson has read one character more and pushed it
     * back; a NUL does not survive that (see the top). */
    n++;
    if (p < end && *p == '\0')
        p++;

after:
    p = skip_ws(p, end);
    if (cur == NO_NODE) {
        if (p != end) {
            t = p;
            what = "end of file expected";
            goto fail;
        }
        j->depth = maxdepth;
        return j->nodes;
    }
    if (p < end && *p == ',') {
        p++;
        if (j->nodes[cur].type == TF_JSON_OBJECT)
            goto key;
        goto value;
    }
    if (p < end && *p == (j->nodes[cur].type == TF_JSON_OBJECT ? '}' : ']')) {
        p++;
        goto close;
    }
    t = p;
    what = j->nodes[cur].type == TF_JSON_OBJECT ? "'}' expected" : "']' expected";
    goto fail;

close:
    j->nodes[cur].span = n - cur;
    cur = j->nodes[cur].up;
    depth--;
    goto after;

key:
    p = skip_ws(p, end);
    t = p;
    if (p == end || *p != '"') {
        what = "string or '}' expected";
        goto fail;
    }
    if ((v = node_at(j, n, cur)) == NULL) {
        what = "out of memory";
        goto fail;
    }
    rc = parse_string(&pc, &p, v);
    if (rc != TOKEN_OK) {
        what = rc == TOKEN_NOMEM ? "out of memory" : "NUL byte in object key not supported";
        goto fail;
    }
    n++;
    j->nodes[cur].len++;
    p = skip_ws(p, end);
    if (p == end || *p != ':') {
        t = p;
        what = "':' expected";
        goto fail;
    }
    p++;
    goto value;

fail:
    set_error(err, buf, t, end, what);
    return NULL;
}

const tf_json_val *tf_json_getn(const tf_json_val *obj, const char *key, size_t keylen)
{
    const tf_json_val *k, *found = NULL;

    if (!tf_json_is_object(obj))
        return NULL;
    k = obj + 1;
    for (uint32_t i = 0; i < obj->len; i++) {
        const tf_json_val *v = k + 1;
        /* Names mostly differ in length or first byte: spare the call. */
        if (k->len == keylen && (keylen == 0 || (k->u.s[0] == key[0] && memcmp(k->u.s, key, keylen) == 0)))
            found = v;
        k = v + v->span;
    }
    return found;
}
