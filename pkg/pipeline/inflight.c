/* The ids of derived events being delivered, or delivered with their outbox ack
 * unanswered (see inflight.h). A set with linear probing; settled entries (their
 * ack answered) are dropped when met, or swept before the table grows. */
#include "pipeline/inflight.h"

#include <stdlib.h>
#include <string.h>

static size_t home(const tf_inflight_t *f, const char *id)
{
    return (size_t)tf_hash64(id, strlen(id), 0) & (f->cap - 1);
}

static int settled(const tf_inflight_t *f, const tf_inflight_entry *e)
{
    return e->ack != 0 && e->ack <= f->acks_answered;
}

static tf_inflight_entry *find(tf_inflight_t *f, const char *id)
{
    if (f->cap == 0)
        return NULL;
    for (size_t i = home(f, id);; i = (i + 1) & (f->cap - 1)) {
        tf_inflight_entry *e = &f->slots[i];
        if (e->id[0] == '\0')
            return NULL;
        if (strcmp(e->id, id) == 0)
            return e;
    }
}

static void put(tf_inflight_t *f, const tf_inflight_entry *src)
{
    size_t i = home(f, src->id);
    while (f->slots[i].id[0] != '\0')
        i = (i + 1) & (f->cap - 1);
    f->slots[i] = *src;
    f->len++;
}

/* Rebuilds the table at cap entries, without the settled ones. */
static int rebuild(tf_inflight_t *f, size_t cap)
{
    tf_inflight_entry *old = f->slots;
    size_t old_cap = f->cap;
    tf_inflight_entry *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return TF_ENOMEM;
    f->slots = slots;
    f->cap = cap;
    f->len = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].id[0] != '\0' && !settled(f, &old[i]))
            put(f, &old[i]);
    free(old);
    return TF_OK;
}

int tf_inflight_add(tf_inflight_t *f, const char *id)
{
    if (strlen(id) >= TF_ID_LEN)
        return TF_EINVAL;
    tf_inflight_entry *e = find(f, id);
    if (e) {
        e->ack = 0; /* sent again (a replay of an unsettled entry) */
        return TF_OK;
    }
    if ((f->len + 1) * 2 > f->cap) {
        /* Sweep first; grow only when what is left still fills half. */
        size_t cap = f->cap ? f->cap : 256;
        if (f->cap) {
            size_t live = 0;
            for (size_t i = 0; i < f->cap; i++)
                live += f->slots[i].id[0] != '\0' && !settled(f, &f->slots[i]);
            if ((live + 1) * 8 > cap * 3) /* still over 3/8 full after the sweep */
                cap *= 2;
        }
        if (rebuild(f, cap) != TF_OK)
            return TF_ENOMEM;
    }
    tf_inflight_entry n = {.ack = 0};
    memcpy(n.id, id, strlen(id) + 1);
    put(f, &n);
    return TF_OK;
}

void tf_inflight_delivered(tf_inflight_t *f, const char *id)
{
    tf_inflight_entry *e = find(f, id);
    if (e)
        e->ack = f->acks_sent + 1;
}

void tf_inflight_ack_sent(tf_inflight_t *f)
{
    f->acks_sent++;
}

void tf_inflight_ack_answered(tf_inflight_t *f)
{
    if (f->acks_answered < f->acks_sent)
        f->acks_answered++;
}

/* Backward-shift deletion: later members of the probe run move up, so a lookup
 * never stops early at the hole. */
static void erase(tf_inflight_t *f, tf_inflight_entry *e)
{
    size_t mask = f->cap - 1, hole = (size_t)(e - f->slots);
    for (size_t i = (hole + 1) & mask; f->slots[i].id[0] != '\0'; i = (i + 1) & mask) {
        size_t h = home(f, f->slots[i].id);
        /* Movable when its home is not within (hole, i]. */
        if (((i - h) & mask) >= ((i - hole) & mask)) {
            f->slots[hole] = f->slots[i];
            hole = i;
        }
    }
    f->slots[hole].id[0] = '\0';
    f->slots[hole].ack = 0;
    f->len--;
}

void tf_inflight_remove(tf_inflight_t *f, const char *id)
{
    tf_inflight_entry *e = find(f, id);
    if (e)
        erase(f, e);
}

int tf_inflight_holds(tf_inflight_t *f, const char *id)
{
    tf_inflight_entry *e = find(f, id);
    if (!e)
        return 0;
    if (settled(f, e)) {
        erase(f, e);
        return 0;
    }
    return 1;
}

size_t tf_inflight_count(const tf_inflight_t *f)
{
    size_t n = 0;
    for (size_t i = 0; i < f->cap; i++)
        n += f->slots[i].id[0] != '\0' && !settled(f, &f->slots[i]);
    return n;
}

void tf_inflight_free(tf_inflight_t *f)
{
    free(f->slots);
    memset(f, 0, sizeof(*f));
}
