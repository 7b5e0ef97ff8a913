/* config_checks: the checks of single string values that the option table of config.c
 * names, one function per kind of value. Each returns 0, or -1 with the reason in why;
 * the caller prefixes the key. Kept apart from the table so that config.c holds the
 * table and the ways values reach it. */
#include "config/config.h"
#include "config/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int why_set(char *why, size_t whysize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int why_set(char *why, size_t whysize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whysize, fmt, ap);
    va_end(ap);
    return -1;
}

static int has_space(const char *v)
{
    for (; *v; v++)
        if (*v == ' ' || *v == '\t')
            return 1;
    return 0;
}

static int check_nonempty(const char *v, char *why, size_t whysize)
{
    return *v ? 0 : why_set(why, whysize, "must not be empty");
}

int tf_config_check_topic(const char *v, char *why, size_t whysize)
{
    return tf_config_topic_check(v, why, whysize) ? -1 : 0;
}

int tf_config_check_topic_or_off(const char *v, char *why, size_t whysize)
{
    return *v ? tf_config_check_topic(v, why, whysize) : 0;
}

int tf_config_check_brokers(const char *v, char *why, size_t whysize)
{
    if (!*v)
        return why_set(why, whysize, "must not be empty (host:port[,host:port...])");
    const char *p = v;
    for (;;) {
        size_t n = strcspn(p, ",");
        size_t a = 0, b = n;
        while (a < b && (p[a] == ' ' || p[a] == '\t'))
            a++;
        while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
            b--;
        if (a == b)
            return why_set(why, whysize, "empty entry in the broker list (host:port[,host:port...])");
        for (size_t i = a; i < b; i++)
            if (p[i] == ' ' || p[i] == '\t')
                return why_set(why, whysize, "a broker address contains a space");
        if (!p[n])
            return 0;
        p += n + 1;
    }
}

int tf_config_check_redis_url(const char *v, char *why, size_t whysize)
{
    tf_config_redis_url u;
    return tf_config_redis_url_parse(v, &u, why, whysize) ? -1 : 0;
}

int tf_config_check_log_level(const char *v, char *why, size_t whysize)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (strcmp(v, levels[i]) == 0)
            return 0;
    return why_set(why, whysize, "expected one of debug, info, warn, error, got \"%.32s\"", v);
}

int tf_config_check_key_prefix(const char *v, char *why, size_t whysize)
{
    /* Redis Cluster hashes the first {...} of a key: a brace in the prefix would move
     * every customer key off its customer's slot. */
    if (strpbrk(v, "{}"))
        return why_set(why, whysize, "must not contain '{' or '}' (they would change the "
                                     "Redis Cluster hash tag of every key)");
    if (has_space(v))
        return why_set(why, whysize, "must not contain spaces");
    return 0;
}

int tf_config_check_source(const char *v, char *why, size_t whysize)
{
    if (!*v)
        return why_set(why, whysize, "must not be empty (a URI-reference, e.g. /touchflow)");
    if (has_space(v))
        return why_set(why, whysize, "must not contain spaces (a URI-reference, e.g. /touchflow)");
    return 0;
}

int tf_config_check_listen(const char *v, char *why, size_t whysize)
{
    char host[128];
    int port;
    if (!*v)
        return 0; /* disabled */
    return tf_config_listen_parse(v, host, sizeof host, &port, why, whysize) ? -1 : 0;
}

int tf_config_check_group_id(const char *v, char *why, size_t whysize)
{
    return check_nonempty(v, why, whysize);
}

int tf_config_check_key_mismatch(const char *v, char *why, size_t whysize)
{
    if (strcmp(v, "dead_letter") == 0 || strcmp(v, "apply") == 0)
        return 0;
    return why_set(why, whysize, "expected \"dead_letter\" or \"apply\", got \"%.32s\"", v);
}

int tf_config_check_output_mode(const char *v, char *why, size_t whysize)
{
    if (strcmp(v, "structured") == 0 || strcmp(v, "binary") == 0)
        return 0;
    return why_set(why, whysize, "expected \"structured\" or \"binary\", got \"%.32s\"", v);
}

int tf_config_check_clock(const char *v, char *why, size_t whysize)
{
    if (strcmp(v, "wall") == 0 || strcmp(v, "stream") == 0)
        return 0;
    return why_set(why, whysize, "expected \"wall\" or \"stream\", got \"%.32s\"", v);
}

/* Properties touchflow sets itself: the user must not override them through the
 * passthrough objects. */
static int check_common_prop(const char *name, char *why, size_t whysize)
{
    if (strcmp(name, "bootstrap.servers") == 0 || strcmp(name, "metadata.broker.list") == 0)
        return why_set(why, whysize, "set by touchflow; use kafka.brokers instead");
    return 0;
}

int tf_config_check_consumer_prop(const char *name, const char *value, char *why, size_t whysize)
{
    if (check_common_prop(name, why, whysize))
        return -1;
    if (strcmp(name, "group.id") == 0)
        return why_set(why, whysize, "set by touchflow; use kafka.group_id instead");
    if (strcmp(name, "enable.auto.offset.store") == 0 || strcmp(name, "enable.auto.commit") == 0)
        return why_set(why, whysize,
                       "controlled by touchflow, which stores an offset only once its record "
                       "is processed (no touchflow key changes this; remove it)");
    /* librdkafka 2.0.2 is used with the eager protocol only (DESIGN.md). */
    if (strcmp(name, "partition.assignment.strategy") == 0 && strstr(value, "cooperative"))
        return why_set(why, whysize,
                       "cooperative rebalancing is not supported; use range or roundrobin");
    return 0;
}

int tf_config_check_producer_prop(const char *name, const char *value, char *why, size_t whysize)
{
    if (check_common_prop(name, why, whysize))
        return -1;
    if (strcmp(name, "enable.idempotence") == 0 && strcmp(value, "true") != 0)
        return why_set(why, whysize,
                       "touchflow's producer is always idempotent (no touchflow key changes "
                       "this; remove it)");
    return 0;
}
