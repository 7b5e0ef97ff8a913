/* Synchronous Redis connections for one-shot CLI commands. The URL is parsed by
 * pkg/config, so the CLI accepts exactly what config validation accepts.
 *
 * On a Redis Cluster (redis+cluster://) the CLI talks to the first seed that answers
 * and lets the cluster say where each key lives: a MOVED reply names the node that
 * owns the key's slot (the CLI reconnects there and sends the command again), an
 * ASK reply the node a slot is migrating to (the command goes there once, after
 * ASKING). That needs no slot map, which one-shot commands would not reuse. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis.h>

#include "cli.h"

/* A redirection moves a command one step closer to its key's owner; more than a few
 * in a row means the cluster is being resharded or is misconfigured, which a one-shot
 * command reports rather than chases. */
#define MAX_REDIRECTS 5

struct tf_cli_redis {
    tf_config_redis_url url;   /* parsed: the credentials hold for every node */
    int64_t timeout_ms;
    char shown[1200];          /* the URL without its password */
    redisContext *c;           /* the node commands go to */
    char host[256];            /* ... its address */
    int port;
    char where[1600];          /* ... named for messages: "Redis at <url>" or the node */
};

/* "host:port", an IPv6 host in brackets. */
static void node_name(char *buf, size_t size, const char *host, int port)
{
    int v6 = strchr(host, ':') != NULL;
    snprintf(buf, size, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

/* The URL for messages, rebuilt from its parts without the password. */
static void url_shown(const tf_config_redis_url *u, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "%s%s%s%s", u->cluster ? "redis+cluster://" : "redis://", u->username,
                                u->password[0] ? ":***" : "", u->username[0] || u->password[0] ? "@" : "");
    for (size_t i = 0; i < u->nseeds && n + 1 < size; i++) {
        if (i > 0)
            buf[n++] = ',';
        node_name(buf + n, size - n, u->seeds[i].host, u->seeds[i].port);
        n += strlen(buf + n);
    }
    if (u->db && n < size)
        snprintf(buf + n, size - n, "/%d", u->db);
}

/* How messages name a node: the URL for a single server, the node and the URL on a
 * cluster (the node is where the failure was). */
static void describe(const tf_cli_redis *r, const char *host, int port, char *buf, size_t size)
{
    char node[300];
    if (!r->url.cluster) {
        snprintf(buf, size, "Redis at %s", r->shown);
        return;
    }
    node_name(node, sizeof(node), host, port);
    snprintf(buf, size, "Redis Cluster node %s (%s)", node, r->shown);
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
static int expect_ok(redisContext *c, int64_t timeout_ms, redisReply *r, const char *what, const char *where,
                     char *err, size_t errsize)
{
    char why[128];
    int rc = 0;
    if (!r) {
        snprintf(err, errsize, "%s: %s failed: %s", where, what,
                 tf_cli_redis_strerror(c, timeout_ms, why, sizeof(why)));
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errsize, "%s: %s failed: %s", where, what, r->str);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

/* Connects to one node with the URL's credentials (and its database, on a single
 * server). Returns a new context, or NULL with err filled; *unreachable is set when
 * the node did not answer at all (another seed may). */
static redisContext *connect_node(const tf_cli_redis *r, const char *host, int port, int *unreachable, char *err,
                                  size_t errsize)
{
    const tf_config_redis_url *u = &r->url;
    struct timeval tv;
    char where[1600];
    redisContext *c;

    *unreachable = 0;
    describe(r, host, port, where, sizeof(where));
    tv.tv_sec = (time_t)(r->timeout_ms / 1000);
    tv.tv_usec = (suseconds_t)(r->timeout_ms % 1000) * 1000;
    c = redisConnectWithTimeout(host, port, tv);
    if (!c) {
        snprintf(err, errsize, "cannot connect to %s: out of memory", where);
        return NULL;
    }
    if (c->err) {
        snprintf(err, errsize, "cannot connect to %s: %s", where, c->errstr);
        *unreachable = 1;
        goto fail;
    }
    /* hiredis 0.14 has no command timeout of its own; socket timeouts bound each reply. */
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, errsize, "%s: cannot set timeout: %s", where, c->errstr);
        goto fail;
    }
    if (u->password[0]) {
        redisReply *rep = u->username[0] ? redisCommand(c, "AUTH %s %s", u->username, u->password)
                                         : redisCommand(c, "AUTH %s", u->password);
        if (expect_ok(c, r->timeout_ms, rep, "AUTH", where, err, errsize))
            goto fail;
    }
    if (u->db && expect_ok(c, r->timeout_ms, redisCommand(c, "SELECT %d", u->db), "SELECT", where, err, errsize))
        goto fail;
    return c;
fail:
    redisFree(c);
    return NULL;
}

/* Makes host:port the node commands go to; on failure the handle keeps its node. */
static int use_node(tf_cli_redis *r, const char *host, int port, int *unreachable, char *err, size_t errsize)
{
    redisContext *c = connect_node(r, host, port, unreachable, err, errsize);
    if (!c)
        return -1;
    if (r->c)
        redisFree(r->c);
    r->c = c;
    tf_strlcpy(r->host, host, sizeof(r->host));
    r->port = port;
    describe(r, host, port, r->where, sizeof(r->where));
    return 0;
}

tf_cli_redis *tf_cli_redis_open(const char *url, int64_t timeout_ms, int *usage, char *err, size_t errsize)
{
    char why[256];
    tf_cli_redis *r;

    *usage = 0;
    if (!(r = calloc(1, sizeof(*r)))) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    if (tf_config_redis_url_parse(url, &r->url, why, sizeof(why)) != TF_OK) {
        snprintf(err, errsize, "redis.url: %s", why);
        *usage = 1;
        free(r);
        return NULL;
    }
    url_shown(&r->url, r->shown, sizeof(r->shown));
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
    for (size_t i = 0; i < r->url.nseeds; i++) {
        int unreachable;
        if (use_node(r, r->url.seeds[i].host, r->url.seeds[i].port, &unreachable, err, errsize) == 0)
            return r;
        /* A refusal (AUTH) would be the same on every node: only silence tries the next. */
        if (!unreachable)
            break;
        if (i + 1 == r->url.nseeds && i > 0) {
            char last[1024];
            tf_strlcpy(last, err, sizeof(last));
            snprintf(err, errsize, "none of the %zu seeds answered; the last: %s", r->url.nseeds, last);
        }
    }
    free(r);
    return NULL;
}

void tf_cli_redis_close(tf_cli_redis *r)
{
    if (!r)
        return;
    if (r->c)
        redisFree(r->c);
    free(r);
}

const char *tf_cli_redis_where(const tf_cli_redis *r)
{
    return r->where;
}

enum { REPLY_PLAIN, REPLY_MOVED, REPLY_ASK };

static int redirection(const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ERROR)
        return REPLY_PLAIN;
    if (strncmp(rep->str, "MOVED ", 6) == 0)
        return REPLY_MOVED;
    if (strncmp(rep->str, "ASK ", 4) == 0)
        return REPLY_ASK;
    return REPLY_PLAIN;
}

/* Reads the node of "MOVED <slot> <host>:<port>" or "ASK ..." into host and *port;
 * an empty host means the host of the node that answered (Redis writes that when it
 * does not know its own address), which the caller put in host. 0 or -1. */
static int redirect_target(const char *str, char *host, size_t hostsize, int *port)
{
    const char *p = strchr(str, ' ');
    const char *endpoint = p ? strchr(p + 1, ' ') : NULL;
    if (!endpoint)
        return -1;
    endpoint++;
    const char *colon = strrchr(endpoint, ':');
    if (!colon || colon[1] == '\0')
        return -1;
    char *end;
    errno = 0;
    long v = strtol(colon + 1, &end, 10);
    if (errno || *end || v < 1 || v > 65535)
        return -1;
    size_t hlen = (size_t)(colon - endpoint);
    if (hlen >= 2 && endpoint[0] == '[' && endpoint[hlen - 1] == ']')
        endpoint++, hlen -= 2;
    /* "?": the node does not know the owner's address either. */
    if (hlen == 1 && endpoint[0] == '?')
        return -1;
    if (hlen > 0) {
        if (hlen >= hostsize)
            return -1;
        memcpy(host, endpoint, hlen);
        host[hlen] = '\0';
    }
    *port = (int)v;
    return 0;
}

redisReply *tf_cli_redis_key_command(tf_cli_redis *r, int argc, const char **argv, const size_t *argvlen, char *err,
                                     size_t errsize)
{
    redisContext *ask = NULL; /* the node one ASK sent this command to */
    char ask_host[256], ask_where[1600], why[128], what[300];

    snprintf(what, sizeof(what), "%.*s%s%.*s", (int)argvlen[0], argv[0], argc > 1 ? " " : "",
             argc > 1 ? (int)argvlen[1] : 0, argc > 1 ? argv[1] : "");
    for (int hops = 0;; hops++) {
        redisContext *c = ask ? ask : r->c;
        const char *where = ask ? ask_where : r->where;
        /* ASKING lets the importing node serve the one command that follows it. */
        if (ask && expect_ok(ask, r->timeout_ms, redisCommand(ask, "ASKING"), "ASKING", where, err, errsize))
            goto fail;
        redisReply *rep = redisCommandArgv(c, argc, argv, argvlen);
        if (!rep) {
            snprintf(err, errsize, "%s: %s failed: %s", where, what,
                     tf_cli_redis_strerror(c, r->timeout_ms, why, sizeof(why)));
            goto fail;
        }
        int kind = redirection(rep);
        if (kind == REPLY_PLAIN) {
            if (ask)
                redisFree(ask);
            return rep;
        }
        char host[256];
        int port, follow = 0;
        tf_strlcpy(host, ask ? ask_host : r->host, sizeof(host));
        if (!r->url.cluster)
            snprintf(err, errsize, "%s: %s: the server is a Redis Cluster node (it answered \"%s\"); use a "
                     "redis+cluster:// URL", where, what, rep->str);
        else if (hops == MAX_REDIRECTS)
            snprintf(err, errsize, "%s: %s: still redirected after %d redirections (the last: \"%s\"); is the "
                     "cluster being resharded?", where, what, MAX_REDIRECTS, rep->str);
        else if (redirect_target(rep->str, host, sizeof(host), &port) != 0)
            snprintf(err, errsize, "%s: %s: cannot follow \"%s\"", where, what, rep->str);
        else
            follow = 1;
        freeReplyObject(rep);
        if (!follow)
            goto fail;
        if (ask) {
            redisFree(ask);
            ask = NULL;
        }
        int unreachable;
        if (kind == REPLY_MOVED) {
            /* The slot's owner: later commands go there too. */
            if (use_node(r, host, port, &unreachable, err, errsize))
                goto fail;
        } else {
            if (!(ask = connect_node(r, host, port, &unreachable, err, errsize)))
                goto fail;
            tf_strlcpy(ask_host, host, sizeof(ask_host));
            describe(r, host, port, ask_where, sizeof(ask_where));
        }
    }
fail:
    if (ask)
        redisFree(ask);
    return NULL;
}
