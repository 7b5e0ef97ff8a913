/* binding: reads back the attributes of a derived event that tf_derived_encode
 * wrote, for the CloudEvents Kafka protocol binding: its headers in either mode and
 * the data object that is the whole value in binary mode. The input is our own
 * output (new, or kept in the outbox), so the scan expects its exact shape and
 * refuses anything else rather than guess. */
#include <string.h>

#include "event/event.h"

typedef struct {
    const char *s;
    size_t len, pos;
} scan;

static int expect(scan *c, const char *lit)
{
    size_t n = strlen(lit);
    if (c->len - c->pos < n || memcmp(c->s + c->pos, lit, n) != 0)
        return -1;
    c->pos += n;
    return 0;
}

/* A JSON string as the encoder escapes it: \" \\ and \u00XX for control bytes. */
static int read_str(scan *c, char *out, size_t size)
{
    size_t n = 0;
    if (expect(c, "\"") != 0)
        return -1;
    while (c->pos < c->len) {
        char ch = c->s[c->pos++];
        if (ch == '"') {
            out[n] = '\0';
            return 0;
        }
        if (ch == '\\') {
            if (c->pos >= c->len)
                return -1;
            char e = c->s[c->pos++];
            if (e == 'u') {
                if (c->len - c->pos < 4 || c->s[c->pos] != '0' || c->s[c->pos + 1] != '0')
                    return -1;
                int hi = tf_hex_value(c->s[c->pos + 2]), lo = tf_hex_value(c->s[c->pos + 3]);
                if (hi < 0 || lo < 0)
                    return -1;
                ch = (char)(hi << 4 | lo);
                c->pos += 4;
            } else if (e == '"' || e == '\\' || e == '/') {
                ch = e;
            } else {
                return -1;
            }
        }
        if (n + 1 >= size)
            return -1;
        out[n++] = ch;
    }
    return -1;
}

int tf_derived_attrs_parse(const char *json, size_t len, tf_derived_attrs *out)
{
    scan c = {json, len, 0};
    memset(out, 0, sizeof *out);
    if (!json || expect(&c, "{\"specversion\":\"1.0\",\"id\":") || read_str(&c, out->id, sizeof out->id) ||
        expect(&c, ",\"source\":") || read_str(&c, out->source, sizeof out->source) || expect(&c, ",\"type\":") ||
        read_str(&c, out->type, sizeof out->type) || expect(&c, ",\"subject\":") ||
        read_str(&c, out->subject, sizeof out->subject) || expect(&c, ",\"time\":") ||
        read_str(&c, out->time, sizeof out->time) ||
        expect(&c, ",\"datacontenttype\":\"application/json\",\"data\":"))
        return TF_EINVAL;
    /* The data object runs to the event's closing brace. */
    if (c.pos >= len || json[c.pos] != '{' || len - c.pos < 3 || json[len - 1] != '}' || json[len - 2] != '}')
        return TF_EINVAL;
    out->data_off = c.pos;
    out->data_len = len - 1 - c.pos;
    return TF_OK;
}
