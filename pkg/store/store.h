/* store: customer state in Redis, on the caller's libevent loop.
 *
 * Keys (prefix configurable, default "tf:"); a customer's keys share a hash tag so
 * every per-customer script touches one Redis Cluster slot:
 *   <p>c:{<id>}          hash: the state (see codec.c for the fields)
 *   <p>c:{<id>}:ids      zset: event ids seen within the dedup window
 *   <p>c:{<id>}:outbox   hash: derived events committed but not yet delivered
 *   <p>epoch             counter: ownership epochs handed to partition owners
 *
 * A commit is one Lua script per customer per batch: it refuses to write when the
 * state carries a newer ownership epoch than the writer's (the writer lost the
 * partition), then writes the changed fields, the per-partition offset watermark,
 * the dedup ids and the outbox atomically.
 *
 * hiredis 0.14 has no timeouts, so the store arms its own: a command or connect
 * that takes longer than timeout_ms drops the connection, fails every pending
 * callback with TF_EIO and reconnects with exponential backoff. Every callback is
 * called exactly once, also on teardown (with TF_ECLOSED). */
#ifndef TF_STORE_H
#define TF_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "config/config.h"
#include "lifecycle/lifecycle.h"

struct event_base;
typedef struct tf_store_s tf_store_t;

typedef struct {
    const char *url;           /* redis://[user:pass@]host[:port][/db], see tf_config_redis_url_parse */
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

/* ---- loading ---- */

/* A derived event waiting in the outbox: its id and "<family>\n<json>". Borrowed. */
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

/* Writes after (only the fields that differ from before) with epoch, records the
 * event ids (scored by now_ms) and adds the outbox entries, atomically. status is 0
 * (version = the new version), TF_EFENCED when a newer owner wrote this customer,
 * TF_EIO or TF_ECLOSED. */
int tf_store_commit(tf_store_t *st, const char *customer, const tf_store_doc_t *before,
                    const tf_store_doc_t *after, int64_t epoch, int64_t now_ms,
                    const char *const *event_ids, size_t nids, const tf_store_outbox_add *outbox,
                    size_t noutbox, tf_store_commit_cb cb, void *opaque);

/* Removes delivered entries from the outbox (fire and forget: a leftover entry is
 * only re-sent, with the same id). */
int tf_store_outbox_ack(tf_store_t *st, const char *customer, const char *const *ids, size_t nids);

typedef void (*tf_store_epoch_cb)(tf_store_t *st, int status, int64_t epoch, void *opaque);
/* Takes the next ownership epoch (INCR <p>epoch). */
int tf_store_next_epoch(tf_store_t *st, tf_store_epoch_cb cb, void *opaque);

/* ---- codec (exposed for tests and the CLI) ---- */

/* Encodes doc as hash field/value pairs into a caller buffer; see codec.c. */
typedef struct {
    size_t n;
    const char *field[96];
    char value_buf[96][64];
    char field_buf[TF_STORE_MAX_WATERMARKS][TF_STORE_TP_MAX + 2];
} tf_store_fields;

void tf_store_encode(const tf_store_doc_t *doc, tf_store_fields *out);
/* Decodes field/value pairs; unknown fields are ignored (forward compatibility). */
int tf_store_decode(tf_store_doc_t *doc, const char *const *fields, const size_t *flens,
                    const char *const *values, const size_t *vlens, size_t n);

#endif
