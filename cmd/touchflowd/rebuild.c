/* rebuild: touchflowd --rebuild-into PREFIX replays the input topics into a fresh
 * key prefix, on stream time, up to the offsets the live consumer group has
 * committed, so that the live members can switch over to it (README, Recovery). */
#include <stdio.h>
#include <string.h>

#include "bus/bus.h"
#include "rebuild.h"

#define MOD "rebuild"

int rebuild_prepare(tf_config_t *cfg, const char *brokers, const rebuild_opts *o,
                    rd_kafka_topic_partition_list_t **stop)
{
    char err[512];
    if (!o->prefix[0] || strlen(o->prefix) >= sizeof(cfg->key_prefix)) {
        fprintf(stderr, "touchflowd: --rebuild-into: a key prefix of 1 to %zu bytes, e.g. tf2:\n",
                sizeof(cfg->key_prefix) - 1);
        return 2;
    }
    if (strcmp(o->prefix, cfg->key_prefix) == 0) {
        fprintf(stderr,
                "touchflowd: --rebuild-into %s: that is the live prefix (redis.key_prefix); rebuild into a new one\n",
                o->prefix);
        return 2;
    }
    cfg->rebuild_from_ms = INT64_MIN;
    if (o->from && strcmp(o->from, "beginning") != 0 &&
        tf_time_parse_rfc3339(o->from, strlen(o->from), &cfg->rebuild_from_ms) != TF_OK) {
        fprintf(stderr, "touchflowd: --from %s: expected an RFC 3339 time (2026-11-01T00:00:00Z) or 'beginning'\n",
                o->from);
        return 2;
    }
    *stop = tf_bus_group_committed(cfg, brokers, cfg->group_id, 10000, err, sizeof err);
    if (!*stop) {
        fprintf(stderr, "touchflowd: rebuild: %s\n", err);
        return 1;
    }
    char group[sizeof(cfg->group_id)];
    int n = snprintf(group, sizeof group, "%s.rebuild.%s", cfg->group_id, o->prefix);
    if (n < 0 || (size_t)n >= sizeof group) {
        fprintf(stderr, "touchflowd: rebuild: the group name %s.rebuild.%s is too long\n", cfg->group_id, o->prefix);
        rd_kafka_topic_partition_list_destroy(*stop);
        *stop = NULL;
        return 2;
    }
    for (int i = 0; i < (*stop)->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &(*stop)->elems[i];
        TF_INFO(MOD, "%s [%d]: live group %s committed %lld", tp->topic, (int)tp->partition, cfg->group_id,
                (long long)tp->offset);
    }
    TF_INFO(MOD, "rebuilding into prefix %s as group %s, from %s, on stream time, derived events %s", o->prefix,
            group, o->from ? o->from : "the beginning", o->emit ? "sent again" : "not sent");
    tf_strlcpy(cfg->group_id, group, sizeof cfg->group_id);
    tf_strlcpy(cfg->key_prefix, o->prefix, sizeof cfg->key_prefix);
    tf_strlcpy(cfg->timers_clock, "stream", sizeof cfg->timers_clock);
    cfg->rebuild = 1;
    cfg->rebuild_emit = o->emit;
    /* The live members may hold the ops port on this host. */
    cfg->ops_listen[0] = 0;
    return 0;
}

int rebuild_report(const tf_config_t *cfg, const char *live_prefix, const rd_kafka_topic_partition_list_t *stop,
                   int finished, uint64_t applied, uint64_t suppressed)
{
    (void)stop;
    if (!finished) {
        TF_ERROR(MOD, "stopped before every partition reached the live group's offsets: run the same command "
                      "again, it resumes where this run stopped (group %s)", cfg->group_id);
        return 1;
    }
    TF_INFO(MOD, "done: %llu events applied into prefix %s, %llu derived events and dead letters not sent",
            (unsigned long long)applied, cfg->key_prefix, (unsigned long long)suppressed);
    printf("Rebuilt into %s up to the offsets the live group had committed.\n"
           "If the live members kept running meanwhile, stop them and run this command again: it\n"
           "resumes and catches up to where they stopped. Then start them with\n"
           "  redis.key_prefix=%s   (was %s)\n",
           cfg->key_prefix, cfg->key_prefix, live_prefix);
    fflush(stdout);
    return 0;
}
