/* Internals shared by the pipeline's files. */
#ifndef TF_PIPELINE_INTERNAL_H
#define TF_PIPELINE_INTERNAL_H

#include <event2/event.h>

#include "bus/bus.h"
#include "event/event.h"
#include "lifecycle/lifecycle.h"
#include "pipeline/inflight.h"
#include "pipeline/latency.h"
#include "pipeline/pipeline.h"
#include "pipeline/route.h"
#include "store/cache.h"
#include "store/store.h"

#define TF_PIPELINE_MAX_SLOTS 1024
#define TF_PIPELINE_BATCHES 4
/* A customer's events in one batch; more close the batch early (Lua unpack limits). */
#define TF_PIPELINE_MAX_GROUP 1000

typedef struct batch batch_t;

/* What a produced message's opaque points at. */
typedef enum { SEND_DERIVED = 1, SEND_DLQ } send_kind;
typedef struct {
    send_kind kind;
    batch_t *batch;
    uint32_t index;
} send_ref;

/* REC_TIMER: not a Kafka record but a customer whose timers are due (no offset). */
typedef enum { REC_PENDING = 0, REC_APPLIED, REC_DUPLICATE, REC_REPLAYED, REC_DLQ, REC_DROPPED, REC_TIMER } rec_status;

typedef struct {
    send_ref ref;          /* for the DLQ message */
    int slot;
    uint32_t slot_gen;
    int64_t offset;
    int64_t ticket;
    int64_t timestamp_ms;  /* Kafka record time, for the commit latency */
    int64_t taken_us;      /* monotonic, when taken from Kafka */
    int64_t stream_at_ms;  /* the partition's stream time once it was read */
    char dedup[TF_ID_LEN]; /* the event's identity, (source, id), as the dedup window holds it */
    int pending;           /* store phase + deliveries still owed */
    rec_status status;
    int is_timer;
    uint32_t group;
    uint32_t next_in_group;
    rd_kafka_message_t *dlq_msg; /* the original, kept while a DLQ copy may be needed */
    tf_event_error dlq_error;
    int dlq_truncated;     /* the DLQ copy was refused as too large: send the start only */
    char dlq_detail[256];
    tf_event_t ev;
} record_t;

typedef struct {
    batch_t *batch;
    uint32_t first, last; /* record chain, in offset order */
    uint32_t nrecs;
    uint32_t out_first, nout;
    uint32_t nnew;        /* of the outs, derived now (the rest are outbox replays) */
    int ready;            /* loaded and applied, commit not yet sent */
    int64_t sent_us;      /* monotonic, when its load or commit was sent */
    int changed;          /* something to write */
    uint32_t undelivered;
    int skip;
    int loaded;           /* its load reply was applied */
    int has_timer;        /* due timers brought it into the batch */
    int slot;             /* the partition whose timer index holds it */
    uint32_t timer_outs;  /* of the new outs, fired by timers */
    int outbox_held;      /* its outbox holds events this process is delivering */
    int state_error;      /* Redis refused its keys in this attempt (TF_ESTATE) */
    uint32_t refusals;    /* attempts in which Redis refused them */
    int cached;           /* its state came from the cache */
    int redone;           /* an earlier attempt may have moved its indexes wrongly */
    uint32_t fig_first, fig_n; /* its population figure deltas in the batch's figs */
    char referred_by[TF_EVENT_SUBJECT_MAX + 1]; /* a referral of it in this batch */
    uint32_t referred_at;  /* that referral's record: it counts for records after it */
    tf_store_doc_t before, after;
} group_t;

/* One record to send: a derived event to one of its destinations. An event with
 * several destinations is several outs in a row sharing one payload; the first
 * holds its outbox entry and its id in flight, the others (extra) only send. */
typedef struct {
    send_ref ref;
    uint32_t rec;          /* the record whose offset waits for this */
    uint32_t group;
    int sub;               /* the destination: a subscription of p->routes */
    int extra;             /* a further destination of the out before it */
    int dead;              /* derived by an attempt whose commit was stale: never sent */
    size_t off, len;       /* "<sub>[,<sub>...][\t<key>]\n<json>" in the arena: the outbox payload */
    size_t json_off;
    size_t key_off, key_len; /* record key when not the group's customer (key_len 0) */
    char id[TF_ID_LEN];
    int type;              /* tf_derived_type, or -1 for an outbox replay */
} out_t;

typedef enum { B_FREE = 0, B_FILLED, B_REDIS, B_DELIVERING } batch_state;

struct batch {
    struct tf_pipeline_s *p;
    batch_state state;
    uint64_t seq;           /* fill order: Redis work goes strictly in this order */
    record_t *recs;
    uint32_t nrecs;
    uint32_t remaining;     /* records not yet done */
    group_t *groups;
    uint32_t ngroups;
    uint32_t *index;        /* open addressing: customer -> group + 1 */
    uint32_t index_cap;
    out_t *outs;
    uint32_t nouts, outs_cap;
    char *arena;
    size_t arena_len, arena_cap;
    /* A group's outbox entries or acknowledged ids, for one call at a time: a hot
     * customer may derive thousands of events in one batch. */
    tf_store_outbox_add *adds;
    const char **ack_ids;
    /* The groups' population figure deltas; a group's are contiguous (a group is
     * applied in one go), and a group applied again starts a new run. */
    tf_figure_delta *figs;
    uint32_t nfigs, figs_cap;
    uint32_t scratch_cap;
    uint32_t outstanding;   /* store callbacks still owed */
    uint32_t loads_pending; /* load replies still owed */
    int64_t epoch;          /* the ownership epoch its commits carry */
    int failed;
    int synced;             /* replicas asked to acknowledge its commits (redis.wait_replicas) */
    uint32_t attempts;      /* Redis phases that failed */
    /* Per slot (the first nslots entries are reset with the batch): */
    int64_t *slot_clock;    /* stream time when its last record or timer joined */
    int64_t *slot_min;      /* lowest event time of its records here, INT64_MAX none */
    int64_t *slot_now;      /* the clock its rules see in this batch, once asked */
    uint64_t *slot_now_tag; /* seq + 1 when slot_now is set for this filling */
};

typedef struct {
    int active;
    int fenced;
    uint32_t gen;
    int32_t partition;
    char topic[128];
    char tp[TF_STORE_TP_MAX]; /* "topic/partition", the watermark name */
    int64_t stream_ms;        /* highest event time taken from it */
    int64_t applied_ms;       /* highest event time of its records committed */
    int64_t first_offset;     /* of the first record read since it was assigned, -1 none */
    int resume_checked;
    uint32_t timers_pending;  /* timer records queued or in a batch */
    uint32_t timers_queued;   /* of those, still in the queue */
    int scanning;             /* a timer index query is out */
    /* Tier cutoffs of the partition's value ranking, oldest first: each holds
     * from its from_ms (see tiers.c). */
    struct tier_cut *cuts;
    size_t ncuts, cuts_cap;
    int64_t cuts_read_ms;     /* wall clock: when the ranking was last read (monotonic) */
    int cuts_asking;
    int64_t period_end_ms;    /* stream clock: a record from here on waits for a boundary */
    int boundary;             /* BOUNDARY_*: where its period boundary stands */
    int64_t boundary_ms;      /* the start of the period being entered */
    char boundary_first[TF_EVENT_SUBJECT_MAX + 1]; /* earliest due at its boundary's last scan */
    int boundary_idle_rounds; /* scans in a row that found the same customer first */
    /* Rebuild mode (rebuild.c): */
    int64_t stop_at;          /* the first offset not to take, -1 none (not rebuilding) */
    int64_t next_offset;      /* one past the last offset read, or where it starts */
    int stop_paused;          /* fetching paused at the stop */
} slot_t;

struct tier_cut {
    int64_t from_ms; /* first: tf_clock_in_force reads it */
    tf_population_t pop;
};

/* A stream-time period boundary of a partition (tiers.c): the records before it
 * are committed, then its timers due before it fire, then the cutoffs of the new
 * period are read; only then is the record that crossed it taken. */
enum { BOUNDARY_NONE = 0, BOUNDARY_DRAIN, BOUNDARY_SCAN, BOUNDARY_FIRING, BOUNDARY_CUT };

/* A customer whose timers are due, waiting for a batch. */
typedef struct {
    int slot;
    uint32_t slot_gen;
    char customer[TF_EVENT_SUBJECT_MAX + 1];
} timer_job;


struct tf_pipeline_s {
    struct event_base *base;
    tf_config_t cfg;
    tf_event_limits limits;
    int key_check;          /* processing.key_mismatch = dead_letter */
    tf_route_table routes;  /* the subscriptions in force */
    uint64_t sub_sent[TF_ROUTE_MAX]; /* records delivered per subscription */
    tf_consumer_t *consumer;
    tf_producer_t *producer;
    tf_store_t *store;
    tf_cache_t *cache;      /* the customers committed last (store/cache.h) */
    tf_offsets_t *offsets;

    slot_t slots[TF_PIPELINE_MAX_SLOTS];
    int nslots;
    int64_t epoch;          /* ownership epoch of the current assignment, 0 = asking */
    int64_t epoch_high;     /* the highest epoch Redis ever handed us */
    int epoch_fresh;        /* the counter was created for this assignment */
    int epoch_asking;
    int assigned;

    batch_t batches[TF_PIPELINE_BATCHES];
    uint64_t next_seq;
    /* The batch committing to Redis, and the next one, whose loads may go out once
     * every commit of the first is sent (same connection, so they read the
     * committed state); its commits wait until the first has settled. */
    batch_t *redis_batch;
    batch_t *next_batch;

    rd_kafka_message_t *held;   /* a record waiting for its partition's period boundary */
    int held_slot;
    int64_t held_time_ms;
    rd_kafka_message_t **stash; /* records polled while we could not take them */
    size_t nstash, stash_cap, stash_head;

    int64_t progress_mono_ms; /* records last finished or a batch went through Redis */
    int paused;             /* Redis is down */
    int consumer_paused;    /* what the consumer was last told */
    int stalled;            /* no record could be taken for a while: paused, polled on */
    int64_t polled_mono_ms; /* the consumer was last polled */
    int stopping;
    int pump_depth;
    int64_t stop_deadline_ms;
    void (*stop_done)(int, void *);
    void *stop_arg;
    struct event *tick;
    struct event *retry_timer;
    int retry_armed;
    int64_t retry_delay_ms;

    tf_inflight_t inflight; /* derived events on their way, not to be replayed */

    send_ref **resend;      /* messages to send again on the next retry tick */
    size_t nresend, resend_cap;

    /* timers */
    int clock_stream;       /* timers.clock = stream */
    struct event *timer_scan;
    timer_job *timer_queue;  /* ring */
    size_t timer_cap, timer_head, timer_len;
    int scan_next;           /* the slot the next scan starts at */
    uint64_t timers_fired;
    int64_t tier_period_ms; /* stream clock: cutoffs are fixed per period of this length */

    /* rebuild mode */
    rd_kafka_topic_partition_list_t *rebuild_stop; /* the live group's committed offsets */
    void (*rebuild_done)(void *arg);
    void *rebuild_arg;
    int rebuild_quiet;      /* derived events are not sent (rebuild without --emit) */

    /* population figures, read every figures.refresh_s (figures.c) */
    struct event *figures_timer;
    json_t *figures_view;        /* the last read, as tf_figures_view made it; NULL before */
    int64_t figures_read_mono_ms;
    int figures_reading;
    uint64_t figures_read_errors;

    tf_pipeline_stats stats;
    uint64_t lat_hist[TF_LATENCY_BUCKETS];
    uint64_t events_by_kind[16][TF_OUTCOME__COUNT];
    tf_histogram processing;
    tf_histogram redis_rtt;
};

/* pipeline.c */
void tf_pipeline_pump(tf_pipeline_t *p);
/* The batch at the front failed in Redis (1) or went through (0): while it fails,
 * the consumer is paused and only polled, so the group keeps this member. */
void tf_pipeline_redis_failing(tf_pipeline_t *p, int failing);
void tf_pipeline_schedule_retry(tf_pipeline_t *p);
void tf_pipeline_defer_send(tf_pipeline_t *p, send_ref *ref);
void tf_pipeline_send_dlq(tf_pipeline_t *p, batch_t *b, record_t *r);
/* Kafka refused r's dead letter as too large: it is sent again, cut short. */
void tf_pipeline_dlq_too_large(tf_pipeline_t *p, batch_t *b, record_t *r);

/* process.c */
void tf_pipeline_start_redis(tf_pipeline_t *p, batch_t *b);
/* The batch that may start loading now behind the committing one, or NULL. */
int tf_pipeline_can_preload(const tf_pipeline_t *p);
void tf_pipeline_redis_settle(tf_pipeline_t *p, batch_t *b);
void tf_pipeline_deliver(tf_pipeline_t *p, batch_t *b);
void tf_pipeline_record_release(tf_pipeline_t *p, batch_t *b, record_t *r);
void tf_pipeline_batch_unref(tf_pipeline_t *p, batch_t *b);
void tf_pipeline_flush_offsets(tf_pipeline_t *p);
void tf_pipeline_resend(tf_pipeline_t *p, send_ref *ref);
void tf_pipeline_on_delivery(tf_producer_t *prod, rd_kafka_resp_err_t err, void *msg_opaque, void *opaque);
void tf_pipeline_latency_quantiles(tf_pipeline_t *p);

/* figures.c */
/* Starts the group's figure deltas (applied now, from the top). */
void tf_pipeline_figures_start(batch_t *b, group_t *gr);
/* Marks the customer before a step (a record or a timer advance)... */
void tf_pipeline_figures_mark(const tf_customer_t *c, const tf_event_t *ev, tf_figures_mark *m);
/* ...and adds what the step moved. */
void tf_pipeline_figures_step(tf_pipeline_t *p, batch_t *b, group_t *gr, const tf_figures_mark *m,
                              const tf_event_t *ev, const tf_derived_t *out, size_t n);
/* Adds the change in the customer counts once the group is applied. */
void tf_pipeline_figures_finish(batch_t *b, group_t *gr);
/* The periodic read for the ops endpoints: started with the pipeline, freed with it. */
int tf_pipeline_figures_init(tf_pipeline_t *p);
void tf_pipeline_figures_free(tf_pipeline_t *p);

/* timers.c */
int tf_timers_init(tf_pipeline_t *p);
void tf_timers_free(tf_pipeline_t *p);
/* How far the partition scan of a slot may look: what has been applied (stream
 * time, or on the wall clock the wall time once the partition is caught up). */
int64_t tf_timers_scan_clock(tf_pipeline_t *p, int slot);
/* "now" for the rules on a slot in batch b: never past the event time of a record
 * of the slot not yet applied (a later batch, or held); see timers.c. */
int64_t tf_timers_batch_clock(tf_pipeline_t *p, batch_t *b, int slot);
/* Lowest event time of the slot's records taken and not yet applied, in batches
 * after b (all when b is NULL) or held; INT64_MAX when none. */
int64_t tf_timers_pending_min(const tf_pipeline_t *p, const batch_t *b, int slot);
/* Moves due customers from the queue into b; returns how many. */
uint32_t tf_timers_take(tf_pipeline_t *p, batch_t *b, uint32_t room);
void tf_timers_record_done(tf_pipeline_t *p, record_t *r);
/* Forgets queued jobs of a slot that is revoked. */
void tf_timers_slot_reset(tf_pipeline_t *p, int slot);
/* Queues the customers of a slot's index due by until_ms, at most limit; done(p,
 * slot, n, first) is called with how many the index returned (some may not have
 * fitted in the queue; -1 on failure) and the earliest due when it was queued
 * (else NULL), unless the slot changed owner meanwhile. Returns 0 when the query is
 * out. */
int tf_timers_scan_slot(tf_pipeline_t *p, int slot, int64_t until_ms, size_t limit,
                        void (*done)(tf_pipeline_t *p, int slot, long n, const char *first));

/* tiers.c */
/* The cutoffs in force on slot at time t, and in *from_ms since when (INT64_MIN
 * when none); the customer's own ranked value is the caller's to set. "Nobody
 * ranked" before any is known. */
tf_population_t tf_tiers_at(const tf_pipeline_t *p, int slot, int64_t t, int64_t *from_ms);
/* The start of the first period after t whose cutoffs are known, or INT64_MAX. */
void tf_tiers_next(const tf_pipeline_t *p, int slot, int64_t t, int64_t *next_from);
/* Stream clock: 1 when a record of slot at time t crosses into a period whose
 * cutoffs are not known yet; the boundary then starts and the caller holds the
 * record until tf_tiers_boundary_done. */
int tf_tiers_crosses(tf_pipeline_t *p, int slot, int64_t t);
/* Moves the boundary of the held record's slot on; called from the pump. Returns
 * 1 when the held record may be taken. */
int tf_tiers_boundary_step(tf_pipeline_t *p);
/* Wall clock: rereads the cutoffs of b's slots that are stale, ahead of its loads. */
void tf_tiers_refresh(tf_pipeline_t *p, batch_t *b);
void tf_tiers_slot_reset(tf_pipeline_t *p, int slot);
void tf_tiers_slot_free(slot_t *s);

/* rebuild.c */
/* Slot assigned, reading from offset start (-1 unknown): its stop, if rebuilding. */
void tf_rebuild_assigned(tf_pipeline_t *p, int slot, int64_t start);
/* 1 when the record at offset is at or past its partition's stop (not to be
 * taken); pauses the partition there. */
int tf_rebuild_past_stop(tf_pipeline_t *p, int slot, int64_t offset);
/* The consumer was resumed as a whole. */
void tf_rebuild_resumed(tf_pipeline_t *p);
/* Calls the rebuild's done callback once every partition reached its stop. */
void tf_rebuild_check(tf_pipeline_t *p);
void tf_rebuild_free(tf_pipeline_t *p);

/* batch.c */
/* The group of customer in b, or NULL. */
group_t *tf_batch_group_find(batch_t *b, const char *customer);
int tf_batch_init(batch_t *b, struct tf_pipeline_s *p, uint32_t cap);
void tf_batch_free(batch_t *b);
void tf_batch_reset(batch_t *b);
/* Adds a decoded record to its customer's group; returns the group's size. */
uint32_t tf_batch_group_add(batch_t *b, uint32_t rec);
/* Reserves n bytes in the arena; returns the offset or (size_t)-1. */
size_t tf_batch_arena_reserve(batch_t *b, size_t n);
/* Makes room for n entries in b->adds and b->ack_ids; 0 or TF_ENOMEM. */
int tf_batch_scratch_reserve(batch_t *b, uint32_t n);
out_t *tf_batch_out_new(batch_t *b);

#endif
