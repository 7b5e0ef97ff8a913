/* cache: the customers this process committed last, kept as their stored hash,
 * so that the next batch of a customer it owns needs no load.
 *
 * An entry is the sparse encoding of the document as committed (tf_store_encode)
 * with the version and epoch that commit writes. It is a guess, never the truth: the commit
 * script checks the version (and the dedup ids, and a referral linked since), and
 * a customer written by anyone else is read again. The owner drops entries when
 * it could have missed a write: on a rebalance, a failed batch, Redis down.
 *
 * Bounded by bytes (least recently used out first), whatever the number of
 * customers. Plain memory, no I/O; not thread-safe. */
#ifndef TF_STORE_CACHE_H
#define TF_STORE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct tf_cache_s tf_cache_t;

typedef struct {
    uint64_t hits, misses, puts, evictions, drops;
    size_t entries, bytes, max_bytes;
} tf_cache_stats;

/* max_bytes 0 makes a cache that keeps nothing. NULL when out of memory. */
tf_cache_t *tf_cache_new(size_t max_bytes);
void tf_cache_free(tf_cache_t *c);

/* Decodes the customer's entry into doc (version and epoch included) and makes it
 * the most recently used: 1, or 0 when there is none (or it no longer decodes). */
int tf_cache_get(tf_cache_t *c, const char *customer, tf_store_doc_t *doc);
/* Keeps doc (which must exist) as the customer's state, with its version and
 * epoch. Returns 0, or TF_EINVAL when it does not encode, TF_ENOMEM: the customer
 * then has no entry. */
int tf_cache_put(tf_cache_t *c, const char *customer, const tf_store_doc_t *doc);
/* The same from the document's encoding (tf_store_encode), already made. */
int tf_cache_put_fields(tf_cache_t *c, const char *customer, const tf_store_fields *enc, int64_t version,
                        int64_t epoch);
void tf_cache_drop(tf_cache_t *c, const char *customer);
void tf_cache_clear(tf_cache_t *c);
tf_cache_stats tf_cache_get_stats(const tf_cache_t *c);

#endif
