/* config_values: checks and parsers for values whose shape is fixed by someone else
 * (Kafka topic names, Redis URLs). Kept apart from the option table because the bus,
 * the store and the CLI use them too. */
#include "config/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Kafka's own limit (Topic.MAX_NAME_LENGTH): 249, so that "<topic>-<partition>" log
 * directory names stay under 255 bytes. */
#define TOPIC_MAX_LEN 249

static int fail(char *errbuf, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *errbuf, size_t errsize, const char *fmt, ...)
{
    if (errbuf && errsize > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errsize, fmt, ap);
        va_end(ap);
    }
    return TF_EINVAL;
}

static int is_alnum_ascii(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int tf_config_topic_check(const char *topic, char *errbuf, size_t errsize)
{
    if (!topic)
        return fail(errbuf, errsize, "topic name is missing");
    size_t n = strlen(topic);
    if (n == 0)
        return fail(errbuf, errsize, "topic name is empty");
    if (n > TOPIC_MAX_LEN)
        return fail(errbuf, errsize, "topic name is %zu characters long, at most %d", n,
                    TOPIC_MAX_LEN);
    if (strcmp(topic, ".") == 0 || strcmp(topic, "..") == 0)
        return fail(errbuf, errsize, "\"%s\" is not a valid topic name", topic);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)topic[i];
        if (is_alnum_ascii(c) || c == '.' || c == '_' || c == '-')
            continue;
        if (c >= 0x20 && c < 0x7f)
            return fail(errbuf, errsize,
                        "invalid topic name \"%s\": '%c' at position %zu; only ASCII "
                        "letters, digits, '.', '_' and '-' are allowed",
                        topic, c, i + 1);
        return fail(errbuf, errsize,
                    "invalid topic name: byte 0x%02x at position %zu; only ASCII letters, "
                    "digits, '.', '_' and '-' are allowed",
                    c, i + 1);
    }
    return 0;
}

/* ---- redis.url ---- */

#define URL_FORM                                  \
    "redis://[[user]:password@]host[:port][/db] " \
    "or redis+cluster://[[user]:password@]host[:port][,host[:port]...]"

/* Percent-decodes s[0..len) into out (outsize bytes). 0, or -1 on a bad escape, -2
 * when it does not fit, -3 on a decoded control byte (NUL included). */
static int pct_decode(const char *s, size_t len, char *out, size_t outsize)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (len - i < 3)
                return -1;
            int hi = tf_hex_value(s[i + 1]), lo = tf_hex_value(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f)
            return -3;
        if (o + 1 >= outsize)
            return -2;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

/* Parses the digits s[0..len) as a decimal in [lo, hi]; 0 or -1. */
static int parse_uint(const char *s, size_t len, long lo, long hi, long *out)
{
    if (len == 0 || len > 10)
        return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* ASCII case-insensitive prefix test: URL schemes are case-insensitive (RFC 3986). */
static int has_scheme(const char *s, const char *scheme)
{
    for (; *scheme; s++, scheme++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != *scheme)
            return 0;
    }
    return 1;
}

static int userinfo_parse(const char *s, size_t len, tf_config_redis_url *out, char *errbuf,
                          size_t errsize)
{
    const char *colon = memchr(s, ':', len);
    /* "redis://secret@host" is a password alone, as redis-cli reads it. */
    if (!colon) {
        int prc = pct_decode(s, len, out->password, sizeof out->password);
        if (prc == -2)
            return fail(errbuf, errsize, "the password is longer than %zu bytes", sizeof out->password - 1);
        if (prc < 0)
            return fail(errbuf, errsize, "the password has a bad %%-escape or a control character");
        return 0;
    }
    size_t ulen = (size_t)(colon - s);
    int rc = pct_decode(s, ulen, out->username, sizeof out->username);
    if (rc == -2)
        return fail(errbuf, errsize, "the user name is longer than %zu bytes",
                    sizeof out->username - 1);
    if (rc < 0)
        return fail(errbuf, errsize, "the user name has a bad %%-escape or a control character");
    rc = pct_decode(colon + 1, len - ulen - 1, out->password, sizeof out->password);
    /* The password itself is never echoed. */
    if (rc == -2)
        return fail(errbuf, errsize, "the password is longer than %zu bytes",
                    sizeof out->password - 1);
    if (rc < 0)
        return fail(errbuf, errsize, "the password has a bad %%-escape or a control character");
    return 0;
}

/* Parses one node, "host[:port]" or "[ipv6][:port]", s[0..len), into seed. Errors
 * begin with what: "" for the server of redis://, "seed 2: " in a cluster's list. */
static int seed_parse(const char *s, size_t len, tf_config_redis_seed *seed, const char *what, int cluster,
                      char *errbuf, size_t errsize)
{
    const char *end = s + len, *hend;
    size_t hlen;
    seed->port = 6379;
    if (len > 0 && *s == '[') {
        const char *rb = memchr(s, ']', len);
        if (!rb)
            return fail(errbuf, errsize, "%sunterminated '[' in the IPv6 host; expected %s", what, URL_FORM);
        hlen = (size_t)(rb - s - 1);
        if (hlen == 0)
            return fail(errbuf, errsize, "%sempty host; expected %s", what, URL_FORM);
        for (size_t i = 0; i < hlen; i++) {
            char c = s[1 + i];
            if (tf_hex_value(c) < 0 && c != ':' && c != '.')
                return fail(errbuf, errsize, "%sinvalid IPv6 address in the host", what);
        }
        if (hlen >= sizeof seed->host)
            return fail(errbuf, errsize, "%shost is too long", what);
        memcpy(seed->host, s + 1, hlen);
        hend = rb + 1;
        if (hend < end && *hend != ':')
            return fail(errbuf, errsize, "%sunexpected characters after ']'; expected %s", what, URL_FORM);
    } else {
        const char *colon = memchr(s, ':', len);
        hend = colon ? colon : end;
        hlen = (size_t)(hend - s);
        if (hlen == 0)
            return fail(errbuf, errsize, "%sempty host; expected %s", what, URL_FORM);
        if (hlen >= sizeof seed->host)
            return fail(errbuf, errsize, "%shost is too long (%zu bytes, at most %zu)", what, hlen,
                        sizeof seed->host - 1);
        for (size_t i = 0; i < hlen; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == ',' && !cluster)
                return fail(errbuf, errsize,
                            "invalid character ',' in the host (a list of nodes is a Redis Cluster: "
                            "redis+cluster://host:port,host:port)");
            if (!is_alnum_ascii(c) && c != '.' && c != '-' && c != '_')
                return fail(errbuf, errsize, "%sinvalid character '%c' in the host", what, c);
        }
        memcpy(seed->host, s, hlen);
    }
    seed->host[hlen] = '\0';
    if (hend < end) {
        long port;
        if (parse_uint(hend + 1, (size_t)(end - hend - 1), 1, 65535, &port))
            return fail(errbuf, errsize, "%sthe port must be a number from 1 to 65535", what);
        seed->port = (int)port;
    }
    return 0;
}

/* Parses the comma-separated nodes of a redis+cluster:// URL, s[0..len). */
static int seeds_parse(const char *s, size_t len, tf_config_redis_url *out, char *errbuf, size_t errsize)
{
    const char *end = s + len;
    for (const char *p = s;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        size_t i = out->nseeds;
        if (i == TF_CONFIG_REDIS_SEEDS_MAX)
            return fail(errbuf, errsize,
                        "more than %d seed nodes; a few suffice, since any node tells of the others",
                        TF_CONFIG_REDIS_SEEDS_MAX);
        if (e == p) {
            if (len == 0)
                return fail(errbuf, errsize, "empty host; expected %s", URL_FORM);
            return fail(errbuf, errsize, "seed %zu is empty (%s)", i + 1,
                        p == s ? "the list starts with a comma"
                        : comma ? "two commas in a row"
                                : "the list ends with a comma");
        }
        char what[32];
        snprintf(what, sizeof what, "seed %zu: ", i + 1);
        tf_config_redis_seed *seed = &out->seeds[i];
        int rc = seed_parse(p, (size_t)(e - p), seed, what, 1, errbuf, errsize);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (out->seeds[j].port == seed->port && strcmp(out->seeds[j].host, seed->host) == 0) {
                int v6 = strchr(seed->host, ':') != NULL;
                return fail(errbuf, errsize, "seed %zu (%s%s%s:%d) repeats seed %zu", i + 1, v6 ? "[" : "",
                            seed->host, v6 ? "]" : "", seed->port, j + 1);
            }
        }
        out->nseeds++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int tf_config_redis_url_parse(const char *url, tf_config_redis_url *out, char *errbuf,
                              size_t errsize)
{
    if (!url || !out)
        return fail(errbuf, errsize, "missing URL");
    memset(out, 0, sizeof *out);
    out->port = 6379;

    if (has_scheme(url, "rediss://") || has_scheme(url, "rediss+cluster://"))
        return fail(errbuf, errsize,
                    "TLS is not supported by this version (rediss://); use redis:// or redis+cluster://");
    const char *p;
    if (has_scheme(url, "redis+cluster://")) {
        out->cluster = 1;
        p = url + strlen("redis+cluster://");
    } else if (has_scheme(url, "redis://")) {
        p = url + strlen("redis://");
    } else {
        if (has_scheme(url, "unix://") || has_scheme(url, "redis+unix://"))
            return fail(errbuf, errsize, "Unix sockets are not supported; expected %s",
                        URL_FORM);
        return fail(errbuf, errsize, "expected %s", URL_FORM);
    }
    for (const char *q = p; *q; q++) {
        if ((unsigned char)*q <= 0x20 || *q == 0x7f)
            return fail(errbuf, errsize, "contains a space or control character; expected %s",
                        URL_FORM);
    }

    /* userinfo ends at the last '@', so an unescaped '@' or '/' in a password still
     * parses (the URL is written by hand more often than generated). */
    const char *at = strrchr(p, '@');
    if (at) {
        int rc = userinfo_parse(p, (size_t)(at - p), out, errbuf, errsize);
        if (rc)
            return rc;
        p = at + 1;
    }
    if (strpbrk(p, "?#"))
        return fail(errbuf, errsize, "query strings and fragments are not supported; expected %s",
                    URL_FORM);

    size_t alen = strcspn(p, "/");
    int rc = out->cluster ? seeds_parse(p, alen, out, errbuf, errsize)
                          : seed_parse(p, alen, &out->seeds[0], "", 0, errbuf, errsize);
    if (rc)
        return rc;
    if (!out->cluster)
        out->nseeds = 1;
    tf_strlcpy(out->host, out->seeds[0].host, sizeof out->host); /* same size: always fits */
    out->port = out->seeds[0].port;

    p += alen;
    if (*p == '/') {
        p++;
        size_t dlen = strlen(p);
        long db = 0;
        /* "redis://host/" means database 0, as in redis-cli and most clients. */
        if (dlen > 0 && parse_uint(p, dlen, 0, 2147483647L, &db))
            return fail(errbuf, errsize, "the database must be a number (0, 1, ...) after '/'");
        if (out->cluster && db != 0)
            return fail(errbuf, errsize, "Redis Cluster has only database 0 (remove \"/%ld\")", db);
        out->db = (int)db;
    }
    return 0;
}

/* ---- ops.listen ---- */

#define LISTEN_FORM "host:port or [ipv6]:port"

int tf_config_listen_parse(const char *listen, char *host, size_t hostsize, int *port, char *errbuf,
                           size_t errsize)
{
    if (!listen || !host || hostsize == 0 || !port)
        return fail(errbuf, errsize, "missing address");
    /* The port follows the last ':' (an IPv6 host has colons of its own, in brackets). */
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return fail(errbuf, errsize, "\"%.64s\" has no port; expected %s", listen, LISTEN_FORM);
    const char *h = listen;
    size_t hlen = (size_t)(colon - listen);
    if (hlen > 0 && h[0] == '[') {
        if (hlen < 2 || h[hlen - 1] != ']')
            return fail(errbuf, errsize, "unterminated '[' in the host; expected %s", LISTEN_FORM);
        h++;
        hlen -= 2;
        if (hlen == 0)
            return fail(errbuf, errsize, "empty host; expected %s", LISTEN_FORM);
        for (size_t i = 0; i < hlen; i++)
            if (tf_hex_value(h[i]) < 0 && h[i] != ':' && h[i] != '.')
                return fail(errbuf, errsize, "invalid IPv6 address in the host");
    } else {
        if (hlen == 0)
            return fail(errbuf, errsize, "empty host (0.0.0.0 listens on every interface); expected %s",
                        LISTEN_FORM);
        for (size_t i = 0; i < hlen; i++) {
            unsigned char c = (unsigned char)h[i];
            if (c == ':')
                return fail(errbuf, errsize, "an IPv6 host must be written in brackets ([::1]:9464)");
            if (!is_alnum_ascii(c) && c != '.' && c != '-' && c != '_')
                return fail(errbuf, errsize, "invalid character in the host (byte 0x%02x); expected %s", c,
                            LISTEN_FORM);
        }
    }
    if (hlen >= hostsize)
        return fail(errbuf, errsize, "host is too long (%zu bytes, at most %zu)", hlen, hostsize - 1);
    long p;
    if (parse_uint(colon + 1, strlen(colon + 1), 0, 65535, &p))
        return fail(errbuf, errsize, "the port must be a number from 0 to 65535 (0: any free port)");
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}
