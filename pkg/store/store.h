/* store: customer state in Redis (a standalone server or a Redis Cluster), on the
 * caller's libevent loop.
 *
 * Keys (prefix configurable, default "tf:", without braces); a customer's keys
 * share a hash tag so every per-customer script touches one Redis Cluster slot.
 * <id> in a tag is the customer id escaped (slot.h: '\' as "\\", '}' as "\)"),
 * the id itself for ids without either:
 *   <p>c:{<id>}          hash: the state (see codec.c for the fields), and the
 *                        event ids seen within the dedup window, a field
 *                        "d:<event id>" = when each was seen (ms)
 *   <p>c:{<id>}:outbox   hash: derived events committed but not yet delivered
 *   <p>epoch             counter: ownership epochs handed to partition owners
 * No command touches keys of two slots. The value ranking is one key per input
 * partition, so it spreads over the cluster as the partitions do.
 *   <p>timers:<tp>       zset: customer -> earliest due ms, one per input partition
 *                        ("topic/partition"); rebuildable from t:* in the hashes
 *   <p>value:{<tp>}      zset: customer -> lifetime profit (minor units), the value
 *                        ranking of a partition's buyers that the tier cutoffs come
 *                        from; rebuildable
 *   <p>tiers:{<tp>}      hash: period start -> the cutoffs computed for it
 *
 * Population figures (pkg/figures/figures.h) sit in the customer's slot too:
 *   <p>figures           hash: field -> count, on a standalone server
 *   <p>figures:{<tag>}   the same, one per slot on a Redis Cluster (slot.h)
 *
 * A commit is one Lua script per customer per batch: it refuses to write when the
 * state carries a newer ownership epoch than the writer's (the writer lost the
 * partition), writes nothing when the state is not the one the writer started from
 * (version and epoch of the last write, an id already seen, a referral linked
 * since), then writes the changed fields, the per-partition offset watermark, the
 * dedup ids and the outbox atomically. The state hash's "ix" field is when its
 * oldest id may leave the window: the first commit after that drops those that did
 * ("dx" marks a hash whose ids are in it, see scripts.h).
 *
 * The connections are link.c's (one per primary of a cluster, redirects followed,
 * see link.h). hiredis 0.14 has no timeouts, so the link arms its own: a command or
 * connect that takes longer than timeout_ms drops that connection, fails its
 * pending callbacks with TF_EIO and reconnects with exponential backoff. Every
 * callback is called exactly once, also on teardown (with TF_ECLOSED). */
#ifndef TF_STORE_H
#define TF_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* The state hash's fields that hold the dedup window: "d:<event id>". */
#define TF_STORE_ID_FIELD_PREFIX "d:"
#include "config/config.h"
#include "figures/figures.h"
#include "lifecycle/lifecycle.h"

struct event_base;
typedef struct tf_store_s tf_store_t;

typedef struct {
    const char *url;           /* redis://[user:pass@]host[:port][/db] or
                                * redis+cluster://[user:pass@]host:port[,host:port...],
                                * see tf_config_redis_url_parse */
    const char *key_prefix;
    int64_t timeout_ms;
    int64_t backoff_min_ms;
    int64_t backoff_max_ms;
    int64_t dedup_window_ms;
} tf_store_opts;

/* The longest "topic/partition" watermark name kept. */
#define TF_STORE_TP_MAX 264
#define TF_STORE_MAX_WATERMARKS 4

/* A customer's stored document: the domain state plus what the store keeps for
 * delivery semantics. Plain data. */
typedef struct {
    int exists;
    tf_customer_t customer;
    int64_t version;     /* commits so far */
    int64_t epoch;       /* ownership epoch of the last writer */
    size_t nwatermarks;
    struct {
        char tp[TF_STORE_TP_MAX];
        int64_t offset;  /* highest source offset applied from tp */
    } watermarks[TF_STORE_MAX_WATERMARKS];
} tf_store_doc_t;

/* The watermark for tp, or -1. */
int64_t tf_store_doc_watermark(const tf_store_doc_t *doc, const char *tp);
/* Raises the watermark for tp to offset (keeps the highest). */
void tf_store_doc_set_watermark(tf_store_doc_t *doc, const char *tp, int64_t offset);

/* Connection up/down notifications, on the loop. */
typedef void (*tf_store_state_cb)(tf_store_t *st, int up, void *opaque);

/* Creates the store and starts connecting. The base is borrowed and must outlive
 * the store. Returns NULL with a reason in err. */
tf_store_t *tf_store_new(struct event_base *base, const tf_store_opts *opts, tf_store_state_cb state_cb,
                         void *opaque, char *err, size_t errsize);
/* Fails pending callbacks with TF_ECLOSED and frees. NULL is a no-op. Must not be
 * called from inside a store callback. */
void tf_store_destroy(tf_store_t *st);
int tf_store_is_up(const tf_store_t *st);
/* Commands sent and not yet answered. */
size_t tf_store_pending(const tf_store_t *st);
/* Counts reconnects since start (for metrics and tests). */
uint64_t tf_store_reconnects(const tf_store_t *st);
/* Counts commands sent again after MOVED, ASK, TRYAGAIN, CLUSTERDOWN or NOSCRIPT. */
uint64_t tf_store_redirects(const tf_store_t *st);
/* 1 when the URL named a Redis Cluster. */
int tf_store_is_cluster(const tf_store_t *st);

/* ---- loading ---- */

/* A derived event waiting in the outbox: its id and a payload the pipeline writes
 * and reads ("<subscriptions>[\t<key>]\n<json>", see pkg/pipeline/process.c); the
 * store does not look inside. Borrowed. */
typedef struct {
    const char *id;
    const char *payload;
    size_t payload_len;
} tf_store_outbox_entry;

typedef struct {
    const tf_store_doc_t *doc;            /* borrowed for the callback's duration */
    const uint8_t *seen;                  /* per event id asked: 1 when within the dedup window */
    size_t noutbox;
    const tf_store_outbox_entry *outbox;
} tf_store_loaded;

typedef void (*tf_store_load_cb)(tf_store_t *st, int status, const tf_store_loaded *res, void *opaque);

/* Reads the customer's document, which of event_ids were seen, and its outbox.
 * Strings are copied before returning. status is 0, TF_EIO or TF_ECLOSED. */
int tf_store_load(tf_store_t *st, const char *customer, const char *const *event_ids, size_t nids,
                  tf_store_load_cb cb, void *opaque);

/* ---- committing ---- */

typedef struct {
    const char *id;
    const char *payload;
    size_t payload_len;
} tf_store_outbox_add;

typedef void (*tf_store_commit_cb)(tf_store_t *st, int status, int64_t version, void *opaque);

/* Writes after (only the fields that differ from before; every field when before
 * does not exist) with epoch, records the event ids (scored by now_ms) and adds the
 * outbox entries and adds figures[0..nfigures) to the population figures of the
 * customer's slot, atomically, if the stored state is still before: its version
 * and epoch (0 when it did not exist), none of event_ids seen within the dedup
 * window and,
 * with referral_check and no referred_by in before, still no referral linked. No
 * field is ever deleted: empty slots are written as "". An empty referred_by is not
 * written, so a concurrent tf_store_link_referral is not undone. Returns TF_EINVAL
 * when a document does not encode (see tf_store_encode). status is 0 (version =
 * the new version), TF_ESTALE when the stored state is not before (nothing
 * written: load it again), TF_EFENCED when a newer owner wrote this customer,
 * TF_ESTATE, TF_EIO or TF_ECLOSED. */
int tf_store_commit(tf_store_t *st, const char *customer, const tf_store_doc_t *before,
                    const tf_store_doc_t *after, int referral_check, int64_t epoch, int64_t now_ms,
                    const char *const *event_ids, size_t nids, const tf_store_outbox_add *outbox,
                    size_t noutbox, const tf_figure_delta *figures, size_t nfigures, tf_store_commit_cb cb,
                    void *opaque);

typedef void (*tf_store_done_cb)(tf_store_t *st, int status, void *opaque);
/* Removes delivered entries from the outbox. A leftover entry is only re-sent,
 * with the same id, so a failure is not retried; cb (may be NULL) is told of the
 * answer all the same, in the order the acks were sent. */
int tf_store_outbox_ack(tf_store_t *st, const char *customer, const char *const *ids, size_t nids,
                        tf_store_done_cb cb, void *opaque);

typedef void (*tf_store_epoch_cb)(tf_store_t *st, int status, int64_t epoch, void *opaque);
/* Takes the next ownership epoch (INCR <p>epoch). */
int tf_store_next_epoch(tf_store_t *st, tf_store_epoch_cb cb, void *opaque);

/* ---- indexes that span customers ----
 *
 * Fire-and-forget commands return 0 once the command is queued (TF_EAGAIN while
 * the store is down, TF_ENOMEM, TF_EIO); a Redis error in their reply is only
 * logged: the indexes are rebuildable and the next commit of the customer writes
 * them again. All run on the store's one connection, in order with commits. */

/* Indexes customer under its earliest timer in partition tp ("topic/partition"):
 * ZADD <p>timers:<tp> due_ms customer, or ZREM when due_ms <= 0 (nothing
 * scheduled). Fire and forget; strings are copied before returning. */
int tf_store_index_set(tf_store_t *st, const char *tp, const char *customer, int64_t due_ms);

/* customers[0..n) are borrowed for the callback's duration; NULL and 0 unless
 * status is 0. */
typedef void (*tf_store_due_cb)(tf_store_t *st, int status, const char *const *customers, size_t n,
                                void *opaque);
/* The customers of partition tp due at or before until_ms, earliest first, at most
 * limit (>= 1) of them (ZRANGEBYSCORE <p>timers:<tp> -inf until_ms LIMIT 0 limit).
 * status is 0, TF_EIO, TF_ENOMEM or TF_ECLOSED; cb is called exactly once when 0 is
 * returned. */
int tf_store_index_due(tf_store_t *st, const char *tp, int64_t until_ms, size_t limit, tf_store_due_cb cb,
                       void *opaque);

/* Ranks customer by value (lifetime profit) among the buyers of its partition tp:
 * ZADD <p>value:{<tp>} value customer. Fire and forget. */
int tf_store_value_set(tf_store_t *st, const char *tp, const char *customer, int64_t value);

/* pop is borrowed for the callback's duration; NULL unless status is 0. */
typedef void (*tf_store_population_cb)(tf_store_t *st, int status, const tf_population_t *pop, void *opaque);
/* Cutoffs of partition tp's value ranking, in one script over <p>value:{<tp>}: with
 * n = ZCARD (the buyers) and for each share s (percent) of key_pct, key_pct +
 * hysteresis_pct, key_pct + potential_pct and key_pct + potential_pct +
 * hysteresis_pct, k = floor(n * s / 100) capped at n; the cutoff is the k-th highest
 * value, INT64_MAX when k < 1. They fill key_enter, key_keep, potential_enter and
 * potential_keep. With keep, the answer is the one kept for the period starting at
 * period_ms in <p>tiers:{<tp>} if any (computed and kept otherwise), so the cutoffs
 * of a period are computed once whoever asks; without, the ranking is read as it
 * stands.
 * Percentages must be >= 0 (else TF_EINVAL). status is 0, TF_EIO or TF_ECLOSED. */
int tf_store_population(tf_store_t *st, const char *tp, int keep, int64_t period_ms, int64_t key_pct,
                        int64_t potential_pct, int64_t hysteresis_pct, tf_store_population_cb cb, void *opaque);

/* Records who referred a customer, once: HSETNX <p>c:{<referred>} referred_by
 * referrer. A later referral never overwrites the first, and a commit of the
 * referred customer never clears it (see tf_store_commit). Fire and forget. */
int tf_store_link_referral(tf_store_t *st, const char *referred, const char *referrer);

/* ---- population figures ---- */

/* table is borrowed for the callback's duration (the caller may take its rows by
 * swapping it out); NULL unless status is 0. */
typedef void (*tf_store_figures_cb)(tf_store_t *st, int status, tf_figures_table *table, void *opaque);
/* Reads the figures: the one hash, or on a Redis Cluster the 16384 per-slot hashes
 * summed. status is 0, TF_EIO (the reason in tf_store_last_error), TF_ENOMEM or
 * TF_ECLOSED; cb is called exactly once when 0 is returned. */
int tf_store_figures_read(tf_store_t *st, tf_store_figures_cb cb, void *opaque);

/* ---- replication ---- */

/* Waits until `replicas` replicas of every primary have every write the store sent
 * before this call (WAIT on each primary, at most timeout_ms): Redis replicates
 * asynchronously, and a primary that dies before its replica copied a commit takes
 * the commit with it. status is 0, TF_EIO when fewer acknowledged (the reason in
 * tf_store_last_error) or the connection failed, or TF_ECLOSED. Returns TF_EAGAIN
 * while the store is down; cb is called exactly once when 0 is returned. */
int tf_store_sync(tf_store_t *st, int replicas, int64_t timeout_ms, tf_store_done_cb cb, void *opaque);

/* ---- errors ---- */

/* What a Redis error reply concerns, which decides what the pipeline does. */
typedef enum {
    TF_STORE_ERR_SERVER = 0, /* the server as a whole (OOM, LOADING, BUSY, ...): pause, retry */
    TF_STORE_ERR_CUSTOMER,   /* one customer's keys (WRONGTYPE, a value that is not ours) */
    TF_STORE_ERR_ROLE,       /* the node is not (or no longer) the one to write to
                              * (READONLY, MOVED, ASK, MASTERDOWN): reconnect, retry */
} tf_store_error_class;

/* Classifies the text of an error reply (pure). */
tf_store_error_class tf_store_error_classify(const char *msg);

/* The text of the last Redis error reply or state problem, for a dead letter's
 * detail: valid inside the callback that reported it. */
const char *tf_store_last_error(const tf_store_t *st);

/* ---- codec (exposed for tests and the CLI) ---- */

/* Fields in one encoding: more than the ~120 of a full document with every
 * watermark (test_codec's worst case). */
#define TF_STORE_MAX_FIELDS 160
/* Text of one encoding (values and the names built for it). The worst case, every
 * string at its longest (the favourite items' and channels' names all escapes) and
 * every number at 20 digits, needs about 8.5 KiB. */
#define TF_STORE_ARENA_SIZE 12288

/* A document encoded as hash field/value pairs (see codec.c for the fields).
 * field[i] and value[i] are NUL-terminated and point into the arena or to static
 * names; vlen[i] is strlen(value[i]). Plain data: copy it and the pointers into
 * the copy's own arena are wrong, so encode again instead. The order of fields is
 * fixed (the watermarks come last), so two encodings compare field by field. */
typedef struct {
    size_t n;
    const char *field[TF_STORE_MAX_FIELDS];
    const char *value[TF_STORE_MAX_FIELDS];
    size_t vlen[TF_STORE_MAX_FIELDS];
    size_t used; /* arena bytes taken */
    char arena[TF_STORE_ARENA_SIZE];
} tf_store_fields;

/* Encodes doc into out. Returns 0, or TF_EINVAL when a value did not fit (only a
 * corrupt document can do that: out is then incomplete and must not be written). */
int tf_store_encode(const tf_store_doc_t *doc, tf_store_fields *out);
/* The encoding (tf_store_encode) of the after document of the last
 * tf_store_commit that returned 0; valid until the next commit. */
const tf_store_fields *tf_store_committed_fields(const tf_store_t *st);
/* Like tf_store_encode, but tf_store_encode leaves fields at their default ("", 0,
 * -1 for the derived figures) out, as the hash does; this one writes every field. */
int tf_store_encode_full(const tf_store_doc_t *doc, tf_store_fields *out);
/* Decodes field/value pairs into doc (zeroed first; exists = n > 0). Unknown
 * fields are ignored (forward compatibility) and a malformed value leaves its
 * member zero without stopping the rest; only an unknown stage fails (TF_EINVAL),
 * since a customer whose stage cannot be read must not be treated as new. */
int tf_store_decode(tf_store_doc_t *doc, const char *const *fields, const size_t *flens,
                    const char *const *values, const size_t *vlens, size_t n);

#endif
