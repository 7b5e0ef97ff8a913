/* bus: Kafka on the caller's libevent loop.
 *
 * The consumer and the producer each turn librdkafka's queue into an fd (queue IO
 * events) that the loop watches, so nothing ever blocks the loop waiting for Kafka.
 * The consumer uses the classic (eager) rebalance protocol, stores offsets only when
 * told (enable.auto.offset.store=false) and lets librdkafka commit stored offsets in
 * the background; revoke and close commit synchronously.
 *
 * Also here: the offset tracker, which turns out-of-order record completions into
 * the contiguous low-water mark per partition. */
#ifndef TF_BUS_H
#define TF_BUS_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"
#include "core/core.h"
#include "event/event.h"

struct event_base;

/* ---- offset tracker (pure) ---- */

typedef struct tf_offsets_s tf_offsets_t;

tf_offsets_t *tf_offsets_new(void);
void tf_offsets_destroy(tf_offsets_t *t);
/* Forgets everything about partition slot tp (revoked). */
void tf_offsets_reset(tf_offsets_t *t, int tp);
/* Registers offset as in flight on slot tp; offsets must grow per slot. Returns a
 * ticket for tf_offsets_done (>= 0), or a negative tf_err. */
int64_t tf_offsets_track(tf_offsets_t *t, int tp, int64_t offset);
/* Marks a ticket done. */
int tf_offsets_done(tf_offsets_t *t, int tp, int64_t ticket);
/* The offset to commit for slot tp (one past the last of the contiguous done
 * prefix) when it advanced since the last call, else -1. */
int64_t tf_offsets_take_committable(tf_offsets_t *t, int tp);
/* The lowest offset in flight on slot tp (not yet done), or -1 when none. */
int64_t tf_offsets_low_water(const tf_offsets_t *t, int tp);
/* Records in flight on slot tp. */
size_t tf_offsets_inflight(const tf_offsets_t *t, int tp);

/* ---- consumer ---- */

typedef struct tf_consumer_s tf_consumer_t;

typedef enum { TF_REBALANCE_ASSIGN, TF_REBALANCE_REVOKE } tf_rebalance_kind;

typedef struct {
    /* Records may be waiting: call tf_consumer_poll until it returns NULL. */
    void (*on_readable)(tf_consumer_t *c, void *opaque);
    /* A rebalance: on ASSIGN parts is what is being assigned; on REVOKE what is
     * taken away. The callback must stop using revoked partitions and store what
     * it can; the bus commits stored offsets, then (un)assigns after it returns. */
    void (*on_rebalance)(tf_consumer_t *c, tf_rebalance_kind kind, const rd_kafka_topic_partition_list_t *parts,
                         void *opaque);
    void *opaque;
} tf_consumer_handlers;

/* Creates a consumer in cfg->group_id subscribed to cfg->input_topics, with
 * cfg->consumer_props passed through. brokers overrides cfg->brokers when not
 * NULL (the embedded cluster). Returns NULL with a reason in err. */
tf_consumer_t *tf_consumer_new(struct event_base *base, const tf_config_t *cfg, const char *brokers,
                               const tf_consumer_handlers *h, char *err, size_t errsize);
/* Returns the next record (owned by the caller: rd_kafka_message_destroy), or NULL
 * when none is waiting. Errors and rebalances are handled inside. */
rd_kafka_message_t *tf_consumer_poll(tf_consumer_t *c);
/* Marks offset (the next one to read) as committable for topic/partition. */
int tf_consumer_store(tf_consumer_t *c, const char *topic, int32_t partition, int64_t offset);
/* Commits stored offsets now, synchronously (revoke, shutdown). */
int tf_consumer_commit_sync(tf_consumer_t *c);
/* Pauses fetching of one partition (rebuild mode: past its stop offset). */
int tf_consumer_pause_partition(tf_consumer_t *c, const char *topic, int32_t partition);
/* Pauses or resumes fetching of every assigned partition. */
int tf_consumer_pause(tf_consumer_t *c, int pause);
/* Current assignment (owned by the consumer; may be NULL). */
const rd_kafka_topic_partition_list_t *tf_consumer_assignment(const tf_consumer_t *c);
rd_kafka_t *tf_consumer_handle(tf_consumer_t *c);
/* Leaves the group, committing stored offsets, and frees. NULL is a no-op. */
void tf_consumer_destroy(tf_consumer_t *c);

/* What the consumer knows of one partition, from librdkafka's statistics (every
 * statistics.interval.ms, default here 5 s) and its cached offsets. */
typedef struct {
    int64_t position;        /* next offset to read, -1 unknown */
    int64_t committed;       /* -1 none */
    int64_t high_watermark;  /* -1 unknown */
    int64_t lag;             /* -1 unknown */
    int lag_from_stats;
} tf_consumer_partition_info;

/* Never blocks. The lag is the statistics' consumer_lag when it is known (offsets
 * committed), else high watermark minus position. */
void tf_consumer_partition_info_get(tf_consumer_t *c, const char *topic, int32_t partition,
                                    tf_consumer_partition_info *out);

/* 1 when everything the partition held at its last fetch has been polled: the
 * application's position (or, before the first record, the committed offset) has
 * reached the high watermark librdkafka cached from the broker. 0 when records are
 * left or either figure is not known yet. Never blocks. */
int tf_consumer_caught_up(tf_consumer_t *c, const char *topic, int32_t partition);

/* The partition's low and high watermarks as librdkafka last cached them (from
 * fetch responses), -1 when not known. Never blocks. */
void tf_consumer_watermarks(tf_consumer_t *c, const char *topic, int32_t partition, int64_t *lo, int64_t *hi);
/* 1 when a broker was up in the last statistics (or, before any, while assigned). */
int tf_consumer_kafka_up(const tf_consumer_t *c);

/* The committed offsets of group for every partition of cfg->input_topics
 * (RD_KAFKA_OFFSET_INVALID where it has none), read without joining the group.
 * Blocks up to timeout_ms per request: before the loop only. NULL with the reason in
 * err. The caller destroys the list. */
rd_kafka_topic_partition_list_t *tf_bus_group_committed(const tf_config_t *cfg, const char *brokers,
                                                        const char *group, int timeout_ms, char *err, size_t errsize);

/* Rebuild mode: sets the start offset of each partition assigned: where the group
 * committed (an earlier run of the same rebuild), else the first offset at or after
 * from_ms (INT64_MIN: the partition's first). Blocks; 0 or TF_EIO (logged). */
int tf_bus_rebuild_start(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts, int64_t from_ms, int timeout_ms);

/* ---- producer ---- */

typedef struct tf_producer_s tf_producer_t;

/* Called once per message sent, with the msg_opaque given to tf_producer_send and
 * RD_KAFKA_RESP_ERR_NO_ERROR or the final delivery error. */
typedef void (*tf_delivery_cb)(tf_producer_t *p, rd_kafka_resp_err_t err, void *msg_opaque, void *opaque);

/* An idempotent producer (enable.idempotence=true, acks=all) with
 * cfg->producer_props passed through. */
tf_producer_t *tf_producer_new(struct event_base *base, const tf_config_t *cfg, const char *brokers,
                               tf_delivery_cb cb, void *opaque, char *err, size_t errsize);
/* Copies key, value and headers (headers may be NULL: then it is taken on
 * success) and queues the message. Returns 0, TF_EAGAIN when the local queue is
 * full (or the client is being replaced after a fatal error), TF_EINVAL when the
 * message is larger than the producer may send (message.max.bytes), or TF_EIO.
 *
 * After a fatal error of the idempotent producer the client is replaced by a new
 * one (before the next send, or within 100 ms): the messages it held are reported
 * failed and are the caller's to send again. */
int tf_producer_send(tf_producer_t *p, const char *topic, const void *key, size_t keylen, const void *value,
                     size_t len, rd_kafka_headers_t *headers, void *msg_opaque);
/* Messages queued and not yet delivered. */
int tf_producer_outq(tf_producer_t *p);
/* How many times the client was replaced after a fatal error. */
uint64_t tf_producer_rebuilds(const tf_producer_t *p);
/* The current librdkafka client (changes when replaced); for tests. */
rd_kafka_t *tf_producer_handle(tf_producer_t *p);
/* Serves delivery reports until the queue is empty or timeout_ms passed. Blocks:
 * for shutdown only. Returns the number still undelivered. */
int tf_producer_flush(tf_producer_t *p, int timeout_ms);
void tf_producer_destroy(tf_producer_t *p);

/* ---- CloudEvents Kafka protocol binding ---- */

/* The headers and value that carry the derived event json[0..len) (as
 * tf_derived_encode wrote it) in structured mode (the event is the value) or binary
 * mode (its data is the value, the attributes are ce_* headers); tf-id, tf-type and
 * tf-subject headers in both, for routers. *value points
 * into json. The headers are the caller's: pass them to tf_producer_send, or
 * destroy them when it fails. */
rd_kafka_headers_t *tf_bus_ce_binding(const char *json, size_t len, int binary, const void **value,
                                      size_t *value_len);

/* ---- embedded cluster (quickstart only) ---- */

typedef struct tf_mock_cluster_s tf_mock_cluster_t;
/* Starts an in-process librdkafka mock cluster with the given topics. */
tf_mock_cluster_t *tf_mock_cluster_new(const char *const *topics, size_t ntopics, int partitions, char *err,
                                       size_t errsize);
const char *tf_mock_cluster_bootstraps(const tf_mock_cluster_t *m);
void tf_mock_cluster_destroy(tf_mock_cluster_t *m);

#endif
