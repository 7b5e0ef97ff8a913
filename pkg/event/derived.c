/* Derived events (EVENTS.md, "Output: derived events"): building, ids and encoding.
 *
 * The encoder writes JSON straight into the caller's buffer, without Jansson: the
 * shape is fixed and small, and this runs for every event a rule emits. */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "event/event.h"

/* ---- building ---- */

/* The next free figure slot named name, or NULL when full, the name does not fit, is
 * empty, or is already taken ("rule" included): data keys must stay unique. */
static tf_figure *figure_slot(tf_derived_t *d, const char *name, tf_figure_kind kind)
{
    size_t n;
    tf_figure *f;

    if (d == NULL || name == NULL || d->nfigures >= TF_DERIVED_MAX_FIGURES)
        return NULL;
    n = strlen(name);
    if (n == 0 || n >= TF_FIG_NAME_MAX || strcmp(name, "rule") == 0)
        return NULL;
    for (size_t i = 0; i < d->nfigures; i++)
        if (strcmp(d->figures[i].name, name) == 0)
            return NULL;
    f = &d->figures[d->nfigures];
    memset(f, 0, sizeof *f);
    memcpy(f->name, name, n + 1);
    f->kind = kind;
    return f;
}

int tf_derived_add_int(tf_derived_t *d, const char *name, int64_t v)
{
    tf_figure *f = figure_slot(d, name, TF_FIG_INT);

    if (f == NULL)
        return TF_EINVAL;
    f->i = v;
    d->nfigures++;
    return TF_OK;
}

int tf_derived_add_num(tf_derived_t *d, const char *name, double v)
{
    tf_figure *f = figure_slot(d, name, TF_FIG_NUM);

    if (f == NULL)
        return TF_EINVAL;
    f->num = v;
    d->nfigures++;
    return TF_OK;
}

int tf_derived_add_str(tf_derived_t *d, const char *name, const char *v)
{
    tf_figure *f;

    if (v == NULL || strlen(v) >= TF_FIG_STR_MAX)
        return TF_EINVAL;
    if ((f = figure_slot(d, name, TF_FIG_STR)) == NULL)
        return TF_EINVAL;
    strcpy(f->str, v); /* length checked above */
    d->nfigures++;
    return TF_OK;
}

int tf_derived_add_list(tf_derived_t *d, const char *name, const char *comma_separated)
{
    tf_figure *f;

    if (comma_separated == NULL || strlen(comma_separated) >= TF_FIG_STR_MAX)
        return TF_EINVAL;
    if ((f = figure_slot(d, name, TF_FIG_LIST)) == NULL)
        return TF_EINVAL;
    strcpy(f->str, comma_separated); /* length checked above */
    d->nfigures++;
    return TF_OK;
}

int tf_derived_add_items(tf_derived_t *d, const char *name, const char *const *items, size_t n)
{
    tf_figure *f;
    size_t total = 0;

    if (items == NULL && n > 0)
        return TF_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (items[i] == NULL)
            return TF_EINVAL;
        total += strlen(items[i]) + 1;
    }
    if (total > TF_FIG_STR_MAX || (f = figure_slot(d, name, TF_FIG_ITEMS)) == NULL)
        return TF_EINVAL;
    total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(items[i]) + 1;
        memcpy(f->str + total, items[i], len); /* room checked above */
        total += len;
    }
    f->i = (int64_t)n;
    d->nfigures++;
    return TF_OK;
}

void tf_derived_set_id(tf_derived_t *d, const char *cause_source, const char *cause_id)
{
    const char *type;
    const char *parts[3];

    if (d == NULL)
        return;
    type = tf_derived_type_name(d->type);
    parts[0] = cause_source != NULL ? cause_source : "";
    parts[1] = cause_id != NULL ? cause_id : "";
    parts[2] = type != NULL ? type : "";
    tf_id_derive(d->id, parts, 3);
}

/* ---- encoding ---- */

/* A bounded writer: once something does not fit it stops writing and remembers. */
typedef struct {
    char *buf;
    size_t size; /* > 0; one byte is always kept for the NUL */
    size_t len;
    int failed;
} writer;

static void put(writer *w, const char *s, size_t n)
{
    if (w->failed)
        return;
    if (n >= w->size - w->len) {
        w->failed = 1;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

#define PUT_LIT(w, lit) put((w), (lit), sizeof(lit) - 1)

/* A JSON string. UTF-8 passes through unchanged; ", \ and control characters are
 * escaped. Invalid UTF-8 would make the whole record unparseable for subscribers,
 * so it fails the encode instead (validated input never carries any). max bounds
 * the fixed-size fields of tf_derived_t, in case one was filled without a NUL. */
static void put_str(writer *w, const char *s, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = strnlen(s, max), run = 0;

    if (!tf_utf8_valid(s, len)) {
        w->failed = 1;
        return;
    }
    PUT_LIT(w, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[6];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        put(w, s + run, i - run);
        run = i + 1;
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            put(w, esc, 2);
        } else {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 0xF];
            put(w, esc, 6);
        }
    }
    put(w, s + run, len - run);
    PUT_LIT(w, "\"");
}

static void put_int(writer *w, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRId64, v);

    put(w, num, (size_t)n);
}

/* %.17g round-trips every double. JSON has no NaN or infinity, so those are null.
 * A whole number gets ".0" so that parsers keep it a real ("3.0", not 3). This
 * assumes the C locale's decimal point, which the daemon never changes. */
static void put_num(writer *w, double v)
{
    char num[40];
    int n;

    if (!isfinite(v)) {
        PUT_LIT(w, "null");
        return;
    }
    n = snprintf(num, sizeof num, "%.17g", v);
    put(w, num, (size_t)n);
    if (strpbrk(num, ".eE") == NULL)
        PUT_LIT(w, ".0");
}

int tf_derived_encode(const tf_derived_t *d, const char *instance_source, char *buf, size_t bufsize)
{
    char when[TF_TIME_RFC3339_LEN];
    const char *type;
    writer w = { buf, bufsize, 0, 0 };

    if (d == NULL || instance_source == NULL || buf == NULL || bufsize == 0)
        return TF_EINVAL;
    buf[0] = '\0';
    type = tf_derived_type_name(d->type);
    /* An event without id or subject would be a silent bug downstream: refuse it. */
    if (type == NULL || d->id[0] == '\0' || d->subject[0] == '\0' || d->nfigures > TF_DERIVED_MAX_FIGURES)
        return TF_EINVAL;
    tf_time_format_rfc3339(d->time_ms, when);

    PUT_LIT(&w, "{\"specversion\":\"1.0\",\"id\":");
    put_str(&w, d->id, sizeof d->id);
    PUT_LIT(&w, ",\"source\":");
    put_str(&w, instance_source, SIZE_MAX);
    PUT_LIT(&w, ",\"type\":");
    put_str(&w, type, SIZE_MAX);
    PUT_LIT(&w, ",\"subject\":");
    put_str(&w, d->subject, sizeof d->subject);
    PUT_LIT(&w, ",\"time\":");
    put_str(&w, when, sizeof when);
    PUT_LIT(&w, ",\"datacontenttype\":\"application/json\",\"data\":{\"rule\":");
    put_str(&w, d->rule, sizeof d->rule);
    for (size_t i = 0; i < d->nfigures; i++) {
        const tf_figure *f = &d->figures[i];
        PUT_LIT(&w, ",");
        put_str(&w, f->name, sizeof f->name);
        PUT_LIT(&w, ":");
        switch (f->kind) {
        case TF_FIG_INT:
            put_int(&w, f->i);
            break;
        case TF_FIG_NUM:
            put_num(&w, f->num);
            break;
        case TF_FIG_STR:
            put_str(&w, f->str, sizeof f->str);
            break;
        case TF_FIG_LIST: {
            /* "a,b" -> ["a","b"]; "" -> [] */
            char item[TF_FIG_STR_MAX];
            const char *p = f->str;
            PUT_LIT(&w, "[");
            while (*p) {
                const char *comma = strchr(p, ',');
                size_t n = comma ? (size_t)(comma - p) : strlen(p);
                memcpy(item, p, n);
                item[n] = '\0';
                if (p != f->str)
                    PUT_LIT(&w, ",");
                put_str(&w, item, sizeof item);
                p += n + (comma != NULL);
            }
            PUT_LIT(&w, "]");
            break;
        }
        case TF_FIG_ITEMS: {
            /* i NUL-terminated strings back to back, never past str. */
            size_t at = 0;
            PUT_LIT(&w, "[");
            for (int64_t k = 0; k < f->i; k++) {
                if (at >= sizeof f->str) {
                    w.failed = 1;
                    break;
                }
                if (k)
                    PUT_LIT(&w, ",");
                put_str(&w, f->str + at, sizeof f->str - at);
                at += strnlen(f->str + at, sizeof f->str - at) + 1;
            }
            PUT_LIT(&w, "]");
            break;
        }
        default:
            w.failed = 1;
            break;
        }
    }
    PUT_LIT(&w, "}}");

    if (w.failed || w.len > INT_MAX) {
        buf[0] = '\0';
        return TF_EINVAL;
    }
    buf[w.len] = '\0';
    return (int)w.len;
}
