/* rebuild: touchflowd --rebuild-into, the command-line side (see rebuild.c). */
#ifndef TOUCHFLOWD_REBUILD_H
#define TOUCHFLOWD_REBUILD_H

#include <librdkafka/rdkafka.h>

#include "config/config.h"

typedef struct {
    const char *prefix;  /* --rebuild-into */
    const char *from;    /* --from: RFC 3339 time or "beginning" (default) */
    int emit;            /* --emit */
} rebuild_opts;

/* Turns cfg (the live configuration) into the rebuild's: the new key prefix, its
 * own consumer group, the stream clock; *stop gets the live group's committed
 * offsets. Returns 0, or 2 (usage or config error) / 1 (Kafka) after printing why. */
int rebuild_prepare(tf_config_t *cfg, const char *brokers, const rebuild_opts *o,
                    rd_kafka_topic_partition_list_t **stop);

/* Prints the outcome and what to do next; returns the exit status. */
int rebuild_report(const tf_config_t *cfg, const char *live_prefix, const rd_kafka_topic_partition_list_t *stop,
                   int finished, uint64_t applied, uint64_t suppressed);

#endif
