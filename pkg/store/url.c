/* redis:// URL parsing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

static int copy_span(char *dst, size_t dstsize, const char *s, size_t n)
{
    if (n >= dstsize)
        return TF_EINVAL;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return TF_OK;
}

static int parse_int(const char *s, size_t n, long lo, long hi, int *out)
{
    int64_t v;
    if (tf_parse_i64(s, n, &v) != TF_OK || v < lo || v > hi)
        return TF_EINVAL;
    *out = (int)v;
    return TF_OK;
}

int tf_redis_url_parse(const char *url, tf_redis_url *out, char *err, size_t errsize)
{
    static const char scheme[] = "redis://";
    const char *p, *at, *end, *slash, *colon;
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        snprintf(err, errsize, "expected redis://host[:port][/db]");
        return TF_EINVAL;
    }
    p = url + sizeof(scheme) - 1;
    end = p + strlen(p);
    slash = memchr(p, '/', (size_t)(end - p));
    if (!slash)
        slash = end;
    at = NULL;
    for (const char *q = p; q < slash; q++)
        if (*q == '@')
            at = q;
    if (at) {
        colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (copy_span(out->user, sizeof(out->user), p, (size_t)(colon - p)) ||
                copy_span(out->password, sizeof(out->password), colon + 1, (size_t)(at - colon - 1)))
                goto toolong;
        } else if (copy_span(out->password, sizeof(out->password), p, (size_t)(at - p))) {
            goto toolong;
        }
        p = at + 1;
    }
    colon = NULL;
    for (const char *q = p; q < slash; q++)
        if (*q == ':')
            colon = q;
    if (colon) {
        if (parse_int(colon + 1, (size_t)(slash - colon - 1), 1, 65535, &out->port)) {
            snprintf(err, errsize, "bad port in redis URL");
            return TF_EINVAL;
        }
    } else {
        colon = slash;
    }
    if (colon == p) {
        snprintf(err, errsize, "missing host in redis URL");
        return TF_EINVAL;
    }
    if (copy_span(out->host, sizeof(out->host), p, (size_t)(colon - p)))
        goto toolong;
    if (slash < end && slash + 1 < end && parse_int(slash + 1, (size_t)(end - slash - 1), 0, 1 << 20, &out->db)) {
        snprintf(err, errsize, "bad database number in redis URL");
        return TF_EINVAL;
    }
    return TF_OK;
toolong:
    snprintf(err, errsize, "redis URL part too long");
    return TF_EINVAL;
}
