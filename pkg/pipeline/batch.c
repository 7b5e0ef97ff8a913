/* Batch memory: allocated once at start and reused, so the per-event path does
 * not allocate (the arena and the derived list grow to their high-water mark). */
#include <stdlib.h>
#include <string.h>

#include "pipeline/internal.h"

int tf_batch_init(batch_t *b, struct tf_pipeline_s *p, uint32_t cap)
{
    memset(b, 0, sizeof(*b));
    b->p = p;
    b->index_cap = 1;
    while (b->index_cap < cap * 2)
        b->index_cap <<= 1;
    b->recs = calloc(cap, sizeof(*b->recs));
    b->groups = calloc(cap, sizeof(*b->groups));
    b->index = calloc(b->index_cap, sizeof(*b->index));
    b->slot_clock = calloc(TF_PIPELINE_MAX_SLOTS, sizeof(*b->slot_clock));
    b->slot_min = calloc(TF_PIPELINE_MAX_SLOTS, sizeof(*b->slot_min));
    b->slot_now = calloc(TF_PIPELINE_MAX_SLOTS, sizeof(*b->slot_now));
    b->slot_now_tag = calloc(TF_PIPELINE_MAX_SLOTS, sizeof(*b->slot_now_tag));
    if (!b->recs || !b->groups || !b->index || !b->slot_clock || !b->slot_min || !b->slot_now || !b->slot_now_tag)
        return TF_ENOMEM;
    for (int i = 0; i < TF_PIPELINE_MAX_SLOTS; i++)
        b->slot_min[i] = INT64_MAX;
    return TF_OK;
}

void tf_batch_free(batch_t *b)
{
    free(b->recs);
    free(b->groups);
    free(b->index);
    free(b->outs);
    free(b->arena);
    free(b->adds);
    free(b->ack_ids);
    free(b->figs);
    free(b->slot_clock);
    free(b->slot_min);
    free(b->slot_now);
    free(b->slot_now_tag);
    memset(b, 0, sizeof(*b));
}

void tf_batch_reset(batch_t *b)
{
    for (uint32_t i = 0; i < b->nrecs; i++) {
        if (b->recs[i].dlq_msg)
            rd_kafka_message_destroy(b->recs[i].dlq_msg);
        b->recs[i].dlq_msg = NULL;
    }
    memset(b->index, 0, b->index_cap * sizeof(*b->index));
    /* Slots past nslots were never written. */
    for (int i = 0; i < b->p->nslots; i++) {
        b->slot_clock[i] = 0;
        b->slot_min[i] = INT64_MAX;
    }
    b->state = B_FREE;
    b->nrecs = b->remaining = b->ngroups = b->nouts = b->outstanding = 0;
    b->arena_len = 0;
    b->nfigs = 0;
    b->failed = 0;
    b->attempts = 0;
}

uint32_t tf_batch_group_add(batch_t *b, uint32_t rec)
{
    record_t *r = &b->recs[rec];
    const char *subject = r->ev.subject;
    size_t len = strlen(subject);
    uint32_t mask = b->index_cap - 1;
    uint32_t h = (uint32_t)tf_hash64(subject, len, 0) & mask;
    for (;;) {
        uint32_t g = b->index[h];
        if (g == 0) {
            group_t *gr = &b->groups[b->ngroups];
            memset(gr, 0, offsetof(group_t, before));
            gr->batch = b;
            gr->first = gr->last = rec;
            gr->nrecs = 1;
            r->group = b->ngroups;
            r->next_in_group = UINT32_MAX;
            b->index[h] = ++b->ngroups;
            return 1;
        }
        group_t *gr = &b->groups[g - 1];
        if (strcmp(b->recs[gr->first].ev.subject, subject) == 0) {
            b->recs[gr->last].next_in_group = rec;
            gr->last = rec;
            r->group = g - 1;
            r->next_in_group = UINT32_MAX;
            return ++gr->nrecs;
        }
        h = (h + 1) & mask;
    }
}

group_t *tf_batch_group_find(batch_t *b, const char *customer)
{
    uint32_t mask = b->index_cap - 1;
    uint32_t h = (uint32_t)tf_hash64(customer, strlen(customer), 0) & mask;
    for (uint32_t g; (g = b->index[h]) != 0; h = (h + 1) & mask)
        if (strcmp(b->recs[b->groups[g - 1].first].ev.subject, customer) == 0)
            return &b->groups[g - 1];
    return NULL;
}

size_t tf_batch_arena_reserve(batch_t *b, size_t n)
{
    if (b->arena_len + n > b->arena_cap) {
        size_t cap = b->arena_cap ? b->arena_cap : 65536;
        while (cap < b->arena_len + n)
            cap *= 2;
        char *a = realloc(b->arena, cap);
        if (!a)
            return (size_t)-1;
        b->arena = a;
        b->arena_cap = cap;
    }
    size_t off = b->arena_len;
    b->arena_len += n;
    return off;
}

out_t *tf_batch_out_new(batch_t *b)
{
    if (b->nouts == b->outs_cap) {
        uint32_t cap = b->outs_cap ? b->outs_cap * 2 : 256;
        out_t *o = realloc(b->outs, cap * sizeof(*o));
        if (!o)
            return NULL;
        b->outs = o;
        b->outs_cap = cap;
    }
    out_t *o = &b->outs[b->nouts];
    memset(o, 0, sizeof(*o));
    o->ref.kind = SEND_DERIVED;
    o->ref.batch = b;
    o->ref.index = b->nouts++;
    return o;
}

int tf_batch_scratch_reserve(batch_t *b, uint32_t n)
{
    if (n <= b->scratch_cap)
        return TF_OK;
    uint32_t cap = b->scratch_cap ? b->scratch_cap : 256;
    while (cap < n)
        cap *= 2;
    tf_store_outbox_add *a = realloc(b->adds, cap * sizeof(*a));
    if (!a)
        return TF_ENOMEM;
    b->adds = a;
    const char **ids = realloc(b->ack_ids, cap * sizeof(*ids));
    if (!ids)
        return TF_ENOMEM;
    b->ack_ids = ids;
    b->scratch_cap = cap;
    return TF_OK;
}
