/* Timers: the clock the rules see, the scan of each owned partition's timer index,
 * and the queue of due customers that joins the next batch (so a customer's timers
 * and its touchpoints are applied in one order, by one owner, through the same
 * load-apply-commit path). */
#include <stdlib.h>
#include <string.h>

#include "pipeline/clock.h"
#include "pipeline/internal.h"

#define MOD "timers"

/* Why the clocks look at what is applied, not at what is read: a timer due at T
 * must fire after every record of its partition up to T that has been read, and in
 * event-time order with the customer's own records. The consumer reads ahead (a
 * replay, a backlog after downtime), so the highest event time read says nothing
 * about what state has absorbed. */

int64_t tf_timers_pending_min(const tf_pipeline_t *p, const batch_t *b, int slot)
{
    int64_t m = INT64_MAX;
    for (int i = 0; i < TF_PIPELINE_BATCHES; i++) {
        const batch_t *x = &p->batches[i];
        if ((x->state == B_FILLED || x->state == B_REDIS) && x != b && (!b || x->seq > b->seq) &&
            x->slot_min[slot] < m)
            m = x->slot_min[slot];
    }
    if (p->held && p->held_slot == slot && p->held_time_ms < m)
        m = p->held_time_ms;
    return m;
}

static tf_clock_view view_of(tf_pipeline_t *p, int slot, int64_t pending)
{
    const slot_t *s = &p->slots[slot];
    tf_clock_view v = {p->clock_stream, 0, pending, 0};
    if (!p->clock_stream) {
        v.now_ms = tf_time_now_ms();
        v.caught_up = pending == INT64_MAX && p->consumer &&
                      tf_consumer_caught_up(p->consumer, s->topic, s->partition);
    }
    return v;
}

int64_t tf_timers_scan_clock(tf_pipeline_t *p, int slot)
{
    tf_clock_view v = view_of(p, slot, tf_timers_pending_min(p, NULL, slot));
    return tf_clock_scan_until(&v, p->slots[slot].applied_ms);
}

int64_t tf_timers_batch_clock(tf_pipeline_t *p, batch_t *b, int slot)
{
    if (b->slot_now_tag[slot] == b->seq + 1)
        return b->slot_now[slot];
    tf_clock_view v = view_of(p, slot, tf_timers_pending_min(p, b, slot));
    b->slot_now[slot] = tf_clock_batch_until(&v, b->slot_clock[slot]);
    b->slot_now_tag[slot] = b->seq + 1;
    return b->slot_now[slot];
}

static int queue_push(tf_pipeline_t *p, int slot, const char *customer)
{
    if (p->timer_len == p->timer_cap)
        return TF_ENOMEM;
    timer_job *j = &p->timer_queue[(p->timer_head + p->timer_len) % p->timer_cap];
    j->slot = slot;
    j->slot_gen = p->slots[slot].gen;
    tf_strlcpy(j->customer, customer, sizeof(j->customer));
    p->timer_len++;
    p->slots[slot].timers_pending++;
    p->slots[slot].timers_queued++;
    return TF_OK;
}

typedef struct {
    tf_pipeline_t *p;
    int slot;
    uint32_t gen;
    void (*done)(tf_pipeline_t *p, int slot, long n, const char *first);
} scan_ref;

static void on_due(tf_store_t *st, int status, const char *const *customers, size_t n, void *opaque)
{
    scan_ref *ref = opaque;
    tf_pipeline_t *p = ref->p;
    slot_t *s = &p->slots[ref->slot];
    long found = -1;
    int first_queued = 0;
    (void)st;
    if (s->gen == ref->gen) {
        s->scanning = 0;
        if (status == TF_OK)
            TF_DEBUG(MOD, "scan of %s: %zu due%s%s", s->tp, n, n ? ", first " : "", n ? customers[0] : "");
        if (status == TF_OK && s->active && !s->fenced) {
            /* The index's answer, not what fitted in the queue: another scan may have
             * filled it meanwhile, and "none due" must mean none. */
            found = (long)n;
            for (size_t i = 0; i < n; i++) {
                if (!customers[i][0] || strlen(customers[i]) > TF_EVENT_SUBJECT_MAX)
                    continue;
                if (queue_push(p, ref->slot, customers[i]) != TF_OK)
                    break;
                if (i == 0)
                    first_queued = 1;
            }
        }
        if (ref->done)
            ref->done(p, ref->slot, found, first_queued ? customers[0] : NULL);
    }
    free(ref);
    if (status != TF_ECLOSED)
        tf_pipeline_pump(p);
}

int tf_timers_scan_slot(tf_pipeline_t *p, int slot, int64_t until_ms, size_t limit,
                        void (*done)(tf_pipeline_t *p, int slot, long n, const char *first))
{
    slot_t *s = &p->slots[slot];
    scan_ref *ref = malloc(sizeof(*ref));
    if (!ref)
        return TF_ENOMEM;
    ref->p = p;
    ref->slot = slot;
    ref->gen = s->gen;
    ref->done = done;
    int rc = tf_store_index_due(p->store, s->tp, until_ms, limit, on_due, ref);
    if (rc != TF_OK) {
        free(ref);
        return rc;
    }
    s->scanning = 1;
    return TF_OK;
}

static int scannable(const slot_t *s)
{
    return s->active && !s->fenced && !s->scanning && !s->timers_pending && s->boundary == BOUNDARY_NONE;
}

/* Every scan interval: ask each owned partition's index for customers due by its
 * clock. A partition with firings still queued or in a batch is skipped, so a
 * customer is never queued twice. The catch-up budget of the interval is shared
 * equally by the partitions scanned, starting one further each time: a partition
 * with nothing due must not take it all and starve the others. */
static void on_scan(evutil_socket_t fd, short what, void *arg)
{
    tf_pipeline_t *p = arg;
    int64_t until[TF_PIPELINE_MAX_SLOTS];
    (void)fd, (void)what;
    if (p->stopping || p->paused || !p->assigned || p->epoch == 0 || !tf_store_is_up(p->store) || p->nslots == 0)
        return;
    int64_t budget = p->cfg.timers_max_per_second * p->cfg.timers_scan_interval_ms / 1000;
    if (budget < 1)
        budget = 1;
    int64_t ready = 0;
    for (int i = 0; i < p->nslots; i++) {
        until[i] = scannable(&p->slots[i]) ? tf_timers_scan_clock(p, i) : 0;
        ready += until[i] > 0;
    }
    if (ready == 0)
        return;
    int64_t share = budget / ready > 0 ? budget / ready : 1;
    int first = p->scan_next % p->nslots;
    p->scan_next = first + 1;
    for (int k = 0; k < p->nslots && budget > 0; k++) {
        int i = (first + k) % p->nslots;
        if (until[i] <= 0)
            continue; /* busy, or nothing applied on it yet */
        size_t room = p->timer_cap - p->timer_len;
        size_t limit = (size_t)(share < budget ? share : budget);
        if (limit > room)
            limit = room;
        if (limit == 0)
            break;
        if (tf_timers_scan_slot(p, i, until[i], limit, NULL) != TF_OK)
            return;
        budget -= (int64_t)limit;
    }
}

uint32_t tf_timers_take(tf_pipeline_t *p, batch_t *b, uint32_t room)
{
    uint32_t taken = 0;
    while (p->timer_len > 0 && taken < room) {
        timer_job *j = &p->timer_queue[p->timer_head];
        p->timer_head = (p->timer_head + 1) % p->timer_cap;
        p->timer_len--;
        slot_t *s = &p->slots[j->slot];
        if (s->gen == j->slot_gen && s->timers_queued > 0)
            s->timers_queued--;
        if (s->gen != j->slot_gen || !s->active || s->fenced)
            continue;
        uint32_t idx = b->nrecs++;
        record_t *r = &b->recs[idx];
        memset(r, 0, offsetof(record_t, ev));
        r->ref.kind = SEND_DLQ; /* never sent: no DLQ copy for a timer */
        r->ref.batch = b;
        r->ref.index = idx;
        r->slot = j->slot;
        r->slot_gen = j->slot_gen;
        r->offset = -1;
        r->ticket = -1;
        r->taken_us = tf_time_mono_us();
        r->pending = 1;
        r->status = REC_PENDING;
        r->is_timer = 1;
        memset(&r->ev, 0, offsetof(tf_event_t, subject));
        tf_strlcpy(r->ev.subject, j->customer, sizeof(r->ev.subject));
        /* The batches before this one hold the partition's records up to its
         * stream time, and are applied first; a boundary fires what is due before
         * the period it enters. */
        int64_t clock = s->boundary != BOUNDARY_NONE ? s->boundary_ms - 1 : s->stream_ms;
        r->ev.time_ms = clock;
        if (b->slot_clock[j->slot] < clock)
            b->slot_clock[j->slot] = clock;
        b->remaining++;
        tf_batch_group_add(b, idx);
        taken++;
    }
    return taken;
}

void tf_timers_record_done(tf_pipeline_t *p, record_t *r)
{
    slot_t *s = &p->slots[r->slot];
    if (s->gen == r->slot_gen && s->timers_pending > 0)
        s->timers_pending--;
}

void tf_timers_slot_reset(tf_pipeline_t *p, int slot)
{
    p->slots[slot].timers_pending = 0;
    p->slots[slot].timers_queued = 0;
    p->slots[slot].scanning = 0;
}

int tf_timers_init(tf_pipeline_t *p)
{
    p->clock_stream = strcmp(p->cfg.timers_clock, "stream") == 0;
    p->tier_period_ms = p->cfg.rules.tier_period_s * TF_MS_PER_SEC;
    p->timer_cap = (size_t)p->cfg.batch_max;
    p->timer_queue = calloc(p->timer_cap, sizeof(*p->timer_queue));
    p->timer_scan = event_new(p->base, -1, EV_PERSIST, on_scan, p);
    if (!p->timer_queue || !p->timer_scan)
        return TF_ENOMEM;
    struct timeval tv = {(time_t)(p->cfg.timers_scan_interval_ms / 1000),
                         (suseconds_t)(p->cfg.timers_scan_interval_ms % 1000) * 1000};
    event_add(p->timer_scan, &tv);
    TF_INFO(MOD, "timers on the %s clock, scanning every %lld ms, at most %lld firings/s", p->clock_stream ? "stream" : "wall",
            (long long)p->cfg.timers_scan_interval_ms, (long long)p->cfg.timers_max_per_second);
    return TF_OK;
}

void tf_timers_free(tf_pipeline_t *p)
{
    if (p->timer_scan)
        event_free(p->timer_scan);
    free(p->timer_queue);
    p->timer_scan = NULL;
    p->timer_queue = NULL;
}
