/* A synchronous Redis connection for one-shot CLI commands. The URL is parsed by
 * pkg/config, so the CLI accepts exactly what config validation accepts. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis.h>

#include "cli.h"

/* The URL for messages, rebuilt from its parts without the password. */
static void url_shown(const tf_config_redis_url *u, char *buf, size_t size)
{
    int v6 = strchr(u->host, ':') != NULL;
    size_t n = (size_t)snprintf(buf, size, "redis://%s%s%s%s%s%s:%d", u->username, u->password[0] ? ":***" : "",
                                u->username[0] || u->password[0] ? "@" : "", v6 ? "[" : "", u->host, v6 ? "]" : "",
                                u->port);
    if (u->db && n < size)
        snprintf(buf + n, size - n, "/%d", u->db);
}

void tf_cli_redis_url_shown(const char *url, char *buf, size_t size)
{
    tf_config_redis_url u;
    char err[256];
    if (tf_config_redis_url_parse(url, &u, err, sizeof(err)) == TF_OK)
        url_shown(&u, buf, size);
    else
        tf_strlcpy(buf, "(invalid redis URL)", size);
}

const char *tf_cli_redis_strerror(const struct redisContext *c, int64_t timeout_ms, char *buf, size_t size)
{
    /* A socket timeout surfaces from hiredis as an I/O error "Resource temporarily
     * unavailable"; say what it means. */
    if (c->err == REDIS_ERR_IO && strcmp(c->errstr, strerror(EAGAIN)) == 0) {
        snprintf(buf, size, "no reply within %lld ms", (long long)timeout_ms);
        return buf;
    }
    return c->errstr;
}

/* Runs one command whose only good answer is a status; 0 or -1 with err filled. */
static int expect_ok(redisContext *c, int64_t timeout_ms, redisReply *r, const char *what, const char *shown,
                     char *err, size_t errsize)
{
    char why[128];
    int rc = 0;
    if (!r) {
        snprintf(err, errsize, "Redis at %s: %s failed: %s", shown, what,
                 tf_cli_redis_strerror(c, timeout_ms, why, sizeof(why)));
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errsize, "Redis at %s: %s failed: %s", shown, what, r->str);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

redisContext *tf_cli_redis_connect(const char *url, int64_t timeout_ms, int *usage, char *err,
                                   size_t errsize)
{
    tf_config_redis_url u;
    redisContext *c;
    struct timeval tv;
    char shown[600], why[256];

    *usage = 0;
    if (tf_config_redis_url_parse(url, &u, why, sizeof(why)) != TF_OK) {
        snprintf(err, errsize, "redis.url: %s", why);
        *usage = 1;
        return NULL;
    }
    url_shown(&u, shown, sizeof(shown));
    if (timeout_ms <= 0)
        timeout_ms = 2000;
    tv.tv_sec = (time_t)(timeout_ms / 1000);
    tv.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
    c = redisConnectWithTimeout(u.host, u.port, tv);
    if (!c) {
        snprintf(err, errsize, "cannot connect to Redis at %s: out of memory", shown);
        return NULL;
    }
    if (c->err) {
        snprintf(err, errsize, "cannot connect to Redis at %s: %s", shown, c->errstr);
        goto fail;
    }
    /* hiredis 0.14 has no command timeout of its own; socket timeouts bound each reply. */
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, errsize, "%s: cannot set timeout: %s", shown, c->errstr);
        goto fail;
    }
    if (u.password[0]) {
        redisReply *r = u.username[0] ? redisCommand(c, "AUTH %s %s", u.username, u.password)
                                      : redisCommand(c, "AUTH %s", u.password);
        if (expect_ok(c, timeout_ms, r, "AUTH", shown, err, errsize))
            goto fail;
    }
    if (u.db && expect_ok(c, timeout_ms, redisCommand(c, "SELECT %d", u.db), "SELECT", shown, err, errsize))
        goto fail;
    return c;
fail:
    redisFree(c);
    return NULL;
}
