/* pipeline: consume -> decode -> load -> rules -> commit -> emit -> store offsets.
 *
 * Wires the bus, the store and the rules on one event loop. Records are taken in
 * batches; one batch at a time talks to Redis (a pipelined load script, then a
 * pipelined commit script, per customer), so a customer's events are applied in
 * order even across batches and a failed batch can simply be retried from the
 * load; later batches are decoded meanwhile and earlier ones finish delivering
 * their derived events. An input offset is stored only when its record is committed
 * and every derived event it caused is delivered, as the contiguous low-water mark
 * per partition. */
#ifndef TF_PIPELINE_H
#define TF_PIPELINE_H

#include <stdint.h>

#include "config/config.h"
#include "core/core.h"

struct event_base;
typedef struct tf_pipeline_s tf_pipeline_t;

typedef struct {
    uint64_t consumed;         /* records taken from Kafka */
    uint64_t applied;          /* touchpoints applied to state */
    uint64_t duplicates;       /* same event id within the dedup window */
    uint64_t replayed;         /* offsets already applied (redelivery after a crash) */
    uint64_t dead_lettered;    /* records sent to the DLQ */
    uint64_t dlq_by_reason[16];/* by tf_event_error */
    uint64_t derived;          /* derived events delivered */
    uint64_t suppressed;       /* derived events and dead letters not sent (rebuild) */
    uint64_t derived_by_type[16];
    uint64_t derived_unrouted; /* derived events no subscription wanted (not sent) */
    uint64_t commits;          /* customer commit scripts acknowledged */
    uint64_t fenced;           /* commits refused: a newer owner */
    uint64_t cache_hits;       /* customers taken from the owner's cache, no load */
    uint64_t cache_misses;     /* customers loaded from Redis */
    uint64_t stale_reloads;    /* commits refused as stale (cached or read state changed): loaded again */
    uint64_t cache_entries, cache_bytes;
    uint64_t redis_failures;   /* batches retried after a Redis failure */
    uint64_t state_errors;     /* customers whose stored state Redis refused (per attempt) */
    int redis_failing;         /* the batch at the front keeps failing: consumption paused */
    uint64_t dlq_truncated;    /* dead letters Kafka refused as too large, sent cut short */
    uint64_t producer_rebuilds;/* producers replaced after a fatal error */
    uint64_t state_lost;       /* times Redis was found to have lost touchflow's data */
    int64_t state_lost_at_ms;  /* wall clock of the last, 0 never */
    char state_lost_detail[256];
    uint64_t delivery_retries; /* derived or DLQ messages re-sent */
    uint64_t rebalances;
    uint64_t inflight;         /* records taken and not yet done */
    int paused;                /* consumption paused (Redis unavailable) */
    /* produce time (record timestamp) to Redis commit, in ms */
    double commit_latency_p50_ms, commit_latency_p99_ms;
    uint64_t commit_latency_count;
} tf_pipeline_stats;

/* ---- snapshot for operations (metrics, health, status) ---- */

/* Histogram bucket upper bounds in seconds (cumulative buckets, Prometheus style);
 * the +Inf bucket is count. */
#define TF_HIST_BUCKETS 14
extern const double tf_hist_bounds_s[TF_HIST_BUCKETS];

typedef struct {
    uint64_t buckets[TF_HIST_BUCKETS]; /* observations <= bound, not cumulative */
    uint64_t count;
    double sum_s;
} tf_histogram;

void tf_histogram_observe(tf_histogram *h, double seconds);

typedef enum { TF_OUTCOME_APPLIED = 0, TF_OUTCOME_DUPLICATE, TF_OUTCOME_REPLAYED, TF_OUTCOME__COUNT } tf_outcome;

typedef struct {
    char topic[128];
    int32_t partition;
    int64_t position;        /* next offset to read, -1 unknown */
    int64_t committed;       /* last committed offset, -1 none */
    int64_t high_watermark;  /* end of the partition, -1 unknown */
    int64_t lag;             /* records behind, -1 unknown */
    int lag_from_stats;      /* 1: librdkafka statistics; 0: high watermark - position */
    int paused;
    uint64_t inflight;       /* records taken, not yet done */
} tf_partition_status;

#define TF_SNAPSHOT_MAX_PARTITIONS 256

typedef struct {
    tf_pipeline_stats stats;
    uint64_t events_by_kind[16][TF_OUTCOME__COUNT]; /* by tf_event_kind and outcome */
    tf_histogram processing;  /* per record: taken from Kafka to Redis commit acknowledged */
    tf_histogram redis_rtt;   /* per Redis load or commit round trip */
    uint64_t redis_reconnects;
    uint64_t redis_redirects;   /* commands sent again after MOVED, ASK, TRYAGAIN, CLUSTERDOWN, NOSCRIPT */
    uint64_t timers_due, timers_fired;
    int assigned;             /* the group gave us partitions */
    int64_t idle_ms;          /* since records last finished or a batch went through Redis */
    int redis_up;
    int kafka_up;             /* a broker answered recently */
    /* The subscriptions in force (tf_config_subscriptions order) and the records
     * delivered to each. */
    size_t nsubscriptions;
    struct {
        char name[TF_CONFIG_SUB_NAME_MAX];
        int enabled;
        uint64_t sent;
    } subscriptions[TF_CONFIG_ROUTES_MAX];
    size_t npartitions;
    tf_partition_status partitions[TF_SNAPSHOT_MAX_PARTITIONS];
} tf_pipeline_snapshot;

/* Fills out (a large struct: allocate it) with the current figures. Cheap: reads
 * counters and librdkafka's cached offsets, never blocks. */
void tf_pipeline_snapshot_get(tf_pipeline_t *p, tf_pipeline_snapshot *out);

/* Creates the pipeline and starts consuming. cfg is copied. brokers overrides
 * cfg->brokers when not NULL. Returns NULL with a reason in err. */
tf_pipeline_t *tf_pipeline_new(struct event_base *base, const tf_config_t *cfg, const char *brokers, char *err,
                               size_t errsize);

/* Rebuild mode (cfg->rebuild): each partition is read up to its offset in stop
 * (the live group's committed offsets; a partition missing from it is not read)
 * and no further; done(arg) is called on the loop once every assigned partition
 * has reached it and nothing is in flight. Call before the loop runs. */
struct rd_kafka_topic_partition_list_s;
int tf_pipeline_set_rebuild(tf_pipeline_t *p, const struct rd_kafka_topic_partition_list_s *stop,
                            void (*done)(void *arg), void *arg);

/* Stops taking records and drains in-flight work; done(arg) is called on the loop
 * once everything taken is committed and delivered (or timeout_ms passed: then
 * drained is 0). Offsets are committed before done is called. */
void tf_pipeline_stop(tf_pipeline_t *p, int64_t timeout_ms, void (*done)(int drained, void *arg), void *arg);

void tf_pipeline_get_stats(tf_pipeline_t *p, tf_pipeline_stats *out);

/* Leaves the group and frees. NULL is a no-op. */
void tf_pipeline_destroy(tf_pipeline_t *p);

/* The population figures as last read from Redis (tf_figures_view's JSON, borrowed
 * until the next read or destroy), or NULL before the first read; *age_ms is how
 * long ago that read was, *errors how many reads failed. */
struct json_t;
const struct json_t *tf_pipeline_figures(const tf_pipeline_t *p, int64_t *age_ms, uint64_t *errors);

#endif
