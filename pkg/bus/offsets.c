/* Offset tracking: records complete out of order (a slow delivery, another
 * customer's commit), but a partition's committed offset may only pass records
 * that are all done. Per partition slot a ring of in-flight records in offset
 * order; tickets are sequence numbers, so marking one done is O(1). */
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"

typedef struct {
    int64_t offset;
    uint8_t done;
} entry_t;

typedef struct {
    entry_t *ring;
    size_t cap, head, len;
    int64_t head_ticket;     /* ticket of ring[head] */
    int64_t last_offset;     /* highest offset tracked, for the ordering check */
    int64_t committable;     /* next offset to commit, -1 when unchanged */
} slot_t;

struct tf_offsets_s {
    slot_t *slots;
    size_t nslots;
};

tf_offsets_t *tf_offsets_new(void) { return calloc(1, sizeof(tf_offsets_t)); }

void tf_offsets_destroy(tf_offsets_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nslots; i++)
        free(t->slots[i].ring);
    free(t->slots);
    free(t);
}

static slot_t *slot_get(tf_offsets_t *t, int tp)
{
    if (tp < 0)
        return NULL;
    if ((size_t)tp >= t->nslots) {
        size_t n = (size_t)tp + 1;
        slot_t *s = realloc(t->slots, n * sizeof(*s));
        if (!s)
            return NULL;
        memset(s + t->nslots, 0, (n - t->nslots) * sizeof(*s));
        for (size_t i = t->nslots; i < n; i++)
            s[i].last_offset = s[i].committable = -1;
        t->slots = s;
        t->nslots = n;
    }
    return &t->slots[tp];
}

void tf_offsets_reset(tf_offsets_t *t, int tp)
{
    slot_t *s = slot_get(t, tp);
    if (!s)
        return;
    /* Tickets keep growing across resets so a stale ticket never hits a new record. */
    s->head_ticket += (int64_t)s->len;
    s->head = s->len = 0;
    s->last_offset = s->committable = -1;
}

int64_t tf_offsets_track(tf_offsets_t *t, int tp, int64_t offset)
{
    if (tp < 0)
        return TF_EINVAL;
    slot_t *s = slot_get(t, tp);
    if (!s)
        return TF_ENOMEM;
    if (offset <= s->last_offset)
        return TF_EINVAL;
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        entry_t *r = malloc(cap * sizeof(*r));
        if (!r)
            return TF_ENOMEM;
        for (size_t i = 0; i < s->len; i++)
            r[i] = s->ring[(s->head + i) % s->cap];
        free(s->ring);
        s->ring = r;
        s->cap = cap;
        s->head = 0;
    }
    entry_t *e = &s->ring[(s->head + s->len) % s->cap];
    e->offset = offset;
    e->done = 0;
    s->last_offset = offset;
    return s->head_ticket + (int64_t)s->len++;
}

int tf_offsets_done(tf_offsets_t *t, int tp, int64_t ticket)
{
    if (tp < 0 || (size_t)tp >= t->nslots)
        return TF_EINVAL;
    slot_t *s = &t->slots[tp];
    if (ticket < s->head_ticket || ticket >= s->head_ticket + (int64_t)s->len)
        return TF_ENOTFOUND; /* from before a reset: the partition was revoked */
    s->ring[(s->head + (size_t)(ticket - s->head_ticket)) % s->cap].done = 1;
    while (s->len && s->ring[s->head].done) {
        s->committable = s->ring[s->head].offset + 1;
        s->head = (s->head + 1) % s->cap;
        s->head_ticket++;
        s->len--;
    }
    return TF_OK;
}

int64_t tf_offsets_take_committable(tf_offsets_t *t, int tp)
{
    if (tp < 0 || (size_t)tp >= t->nslots)
        return -1;
    int64_t c = t->slots[tp].committable;
    t->slots[tp].committable = -1;
    return c;
}

int64_t tf_offsets_low_water(const tf_offsets_t *t, int tp)
{
    if (tp < 0 || (size_t)tp >= t->nslots || t->slots[tp].len == 0)
        return -1;
    return t->slots[tp].ring[t->slots[tp].head].offset;
}

size_t tf_offsets_inflight(const tf_offsets_t *t, int tp)
{
    if (tp < 0 || (size_t)tp >= t->nslots)
        return 0;
    return t->slots[tp].len;
}
