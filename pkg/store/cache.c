/* The owner-local cache of committed customers (see cache.h): a chained hash
 * table of entries on one least-recently-used list. An entry holds the customer id
 * and its encoded fields packed in one allocation, each name and value as a
 * two-byte length, the bytes and a NUL (an encoding is at most
 * TF_STORE_ARENA_SIZE bytes). */
#include <stdlib.h>
#include <string.h>

#include "store/cache.h"

typedef struct entry {
    struct entry *chain;           /* next in the bucket */
    struct entry *newer, *older;   /* the use list */
    uint64_t hash;
    int64_t version, epoch;
    size_t size;                   /* what it counts for against max_bytes */
    size_t cap;                    /* bytes of data allocated */
    uint32_t id_len, npairs;
    char data[];                   /* id\0 then the pairs */
} entry_t;

struct tf_cache_s {
    entry_t **buckets;
    size_t nbuckets;               /* a power of two */
    entry_t *newest, *oldest;
    tf_cache_stats st;
    tf_store_fields enc;           /* scratch for put */
};

#define SEED 0x746f756368666c6fULL
/* What malloc keeps beside an allocation, counted so the bound holds for RSS. */
#define ALLOC_OVERHEAD 16

tf_cache_t *tf_cache_new(size_t max_bytes)
{
    tf_cache_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->nbuckets = 1024;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    c->st.max_bytes = max_bytes;
    c->st.bytes = c->nbuckets * sizeof(*c->buckets);
    return c;
}

static void use_unlink(tf_cache_t *c, entry_t *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void use_push(tf_cache_t *c, entry_t *e)
{
    e->newer = NULL;
    e->older = c->newest;
    if (c->newest)
        c->newest->newer = e;
    c->newest = e;
    if (!c->oldest)
        c->oldest = e;
}

static entry_t **find_slot(tf_cache_t *c, const char *customer, size_t len, uint64_t h)
{
    entry_t **pp = &c->buckets[h & (c->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->chain) {
        entry_t *e = *pp;
        if (e->hash == h && e->id_len == len && memcmp(e->data, customer, len) == 0)
            break;
    }
    return pp;
}

/* Unlinks *pp (found by find_slot) and frees it. */
static void remove_at(tf_cache_t *c, entry_t **pp)
{
    entry_t *e = *pp;
    *pp = e->chain;
    use_unlink(c, e);
    c->st.bytes -= e->size;
    c->st.entries--;
    free(e);
}

static void remove_entry(tf_cache_t *c, entry_t *e)
{
    entry_t **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->chain;
    remove_at(c, pp);
}

/* Doubles the table once it holds more entries than buckets; a failed grow only
 * makes chains longer. */
static void maybe_grow(tf_cache_t *c)
{
    if (c->st.entries < c->nbuckets)
        return;
    size_t n = c->nbuckets * 2;
    entry_t **nb = calloc(n, sizeof(*nb));
    if (!nb)
        return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (entry_t *e = c->buckets[i], *next; e; e = next) {
            next = e->chain;
            e->chain = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
        }
    }
    free(c->buckets);
    c->st.bytes += (n - c->nbuckets) * sizeof(*nb);
    c->buckets = nb;
    c->nbuckets = n;
}

void tf_cache_free(tf_cache_t *c)
{
    if (!c)
        return;
    tf_cache_clear(c);
    free(c->buckets);
    free(c);
}

int tf_cache_get(tf_cache_t *c, const char *customer, tf_store_doc_t *doc)
{
    size_t len = strlen(customer);
    uint64_t h = tf_hash64(customer, len, SEED);
    entry_t **pp = find_slot(c, customer, len, h);
    entry_t *e = *pp;
    if (!e) {
        c->st.misses++;
        return 0;
    }
    const char *f[TF_STORE_MAX_FIELDS], *v[TF_STORE_MAX_FIELDS];
    size_t fl[TF_STORE_MAX_FIELDS], vl[TF_STORE_MAX_FIELDS];
    const unsigned char *at = (const unsigned char *)e->data + e->id_len + 1;
    for (uint32_t i = 0; i < e->npairs; i++) {
        fl[i] = (size_t)at[0] | (size_t)at[1] << 8;
        f[i] = (const char *)at + 2;
        at += 2 + fl[i] + 1;
        vl[i] = (size_t)at[0] | (size_t)at[1] << 8;
        v[i] = (const char *)at + 2;
        at += 2 + vl[i] + 1;
    }
    if (tf_store_decode(doc, f, fl, v, vl, e->npairs) != TF_OK || !doc->exists) {
        remove_at(c, pp);
        c->st.misses++;
        return 0;
    }
    doc->version = e->version;
    doc->epoch = e->epoch;
    use_unlink(c, e);
    use_push(c, e);
    c->st.hits++;
    return 1;
}

int tf_cache_put(tf_cache_t *c, const char *customer, const tf_store_doc_t *doc)
{
    if (!doc->exists || c->st.max_bytes == 0) {
        tf_cache_drop(c, customer);
        return TF_OK;
    }
    if (tf_store_encode(doc, &c->enc) != TF_OK) {
        tf_cache_drop(c, customer);
        return TF_EINVAL;
    }
    return tf_cache_put_fields(c, customer, &c->enc, doc->version, doc->epoch);
}

int tf_cache_put_fields(tf_cache_t *c, const char *customer, const tf_store_fields *enc, int64_t version,
                        int64_t epoch)
{
    size_t len = strlen(customer);
    uint64_t h = tf_hash64(customer, len, SEED);
    entry_t **pp = find_slot(c, customer, len, h);
    size_t flen[TF_STORE_MAX_FIELDS];
    size_t need = len + 1;
    for (size_t i = 0; i < enc->n; i++) {
        flen[i] = strlen(enc->field[i]);
        if (flen[i] > 0xffff || enc->vlen[i] > 0xffff) {
            if (*pp)
                remove_at(c, pp); /* the state it held is no longer the stored one */
            return TF_EINVAL;
        }
        need += 2 + flen[i] + 1 + 2 + enc->vlen[i] + 1;
    }
    if (c->st.max_bytes == 0 || enc->n == 0) {
        if (*pp)
            remove_at(c, pp);
        return TF_OK;
    }
    /* The customer's own entry is reused when it is large enough: most commits
     * replace one. */
    entry_t *e = *pp;
    if (e && e->cap >= need) {
        *pp = e->chain;
        use_unlink(c, e);
        c->st.entries--;
        c->st.bytes -= e->size;
    } else {
        if (e)
            remove_at(c, pp);
        if (!(e = malloc(sizeof(*e) + need)))
            return TF_ENOMEM;
        e->cap = need;
    }
    e->hash = h;
    e->version = version;
    e->epoch = epoch;
    e->size = sizeof(*e) + e->cap + ALLOC_OVERHEAD;
    e->id_len = (uint32_t)len;
    e->npairs = (uint32_t)enc->n;
    unsigned char *at = (unsigned char *)e->data;
    memcpy(at, customer, len + 1);
    at += len + 1;
    for (size_t i = 0; i < enc->n; i++) {
        at[0] = (unsigned char)(flen[i] & 0xff), at[1] = (unsigned char)(flen[i] >> 8);
        memcpy(at + 2, enc->field[i], flen[i] + 1);
        at += 2 + flen[i] + 1;
        at[0] = (unsigned char)(enc->vlen[i] & 0xff), at[1] = (unsigned char)(enc->vlen[i] >> 8);
        memcpy(at + 2, enc->value[i], enc->vlen[i]);
        at[2 + enc->vlen[i]] = '\0';
        at += 2 + enc->vlen[i] + 1;
    }
    entry_t **head = &c->buckets[h & (c->nbuckets - 1)];
    e->chain = *head;
    *head = e;
    use_push(c, e);
    c->st.entries++;
    c->st.bytes += e->size;
    c->st.puts++;
    while (c->st.bytes > c->st.max_bytes && c->oldest && c->oldest != e) {
        remove_entry(c, c->oldest);
        c->st.evictions++;
    }
    maybe_grow(c);
    return TF_OK;
}

void tf_cache_drop(tf_cache_t *c, const char *customer)
{
    size_t len = strlen(customer);
    entry_t **pp = find_slot(c, customer, len, tf_hash64(customer, len, SEED));
    if (*pp) {
        remove_at(c, pp);
        c->st.drops++;
    }
}

void tf_cache_clear(tf_cache_t *c)
{
    while (c && c->oldest)
        remove_entry(c, c->oldest);
}

tf_cache_stats tf_cache_get_stats(const tf_cache_t *c) { return c->st; }
