/* Timers: the clock the rules see, the scan of each owned partition's timer index,
 * and the queue of due customers that joins the next batch (so a customer's timers
 * and its touchpoints are applied in one order, by one owner, through the same
 * load-apply-commit path), and the population ranks the tier rules read. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/internal.h"

#define MOD "timers"

int64_t tf_timers_clock(const tf_pipeline_t *p, int slot)
{
    return p->clock_stream ? p->slots[slot].stream_ms : tf_time_now_ms();
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
    return TF_OK;
}

typedef struct {
    tf_pipeline_t *p;
    int slot;
    uint32_t gen;
} scan_ref;

static void on_due(tf_store_t *st, int status, const char *const *customers, size_t n, void *opaque)
{
    scan_ref *ref = opaque;
    tf_pipeline_t *p = ref->p;
    slot_t *s = &p->slots[ref->slot];
    (void)st;
    if (s->gen == ref->gen) {
        s->scanning = 0;
        if (status == TF_OK && s->active && !s->fenced) {
            for (size_t i = 0; i < n; i++)
                if (customers[i][0] && strlen(customers[i]) <= TF_EVENT_SUBJECT_MAX && queue_push(p, ref->slot, customers[i]) != TF_OK)
                    break;
        }
    }
    free(ref);
    if (status != TF_ECLOSED)
        tf_pipeline_pump(p);
}

static int scannable(const slot_t *s)
{
    return s->active && !s->fenced && !s->scanning && !s->timers_pending;
}

/* Every scan interval: ask each owned partition's index for customers due by its
 * clock. A partition with firings still queued or in a batch is skipped, so a
 * customer is never queued twice. The catch-up budget of the interval is shared
 * equally by the partitions scanned, starting one further each time: a partition
 * with nothing due must not take it all and starve the others. */
static void on_scan(evutil_socket_t fd, short what, void *arg)
{
    tf_pipeline_t *p = arg;
    (void)fd, (void)what;
    if (p->stopping || p->paused || !p->assigned || p->epoch == 0 || !tf_store_is_up(p->store) || p->nslots == 0)
        return;
    int64_t budget = p->cfg.timers_max_per_second * p->cfg.timers_scan_interval_ms / 1000;
    if (budget < 1)
        budget = 1;
    int64_t ready = 0;
    for (int i = 0; i < p->nslots; i++)
        ready += scannable(&p->slots[i]) && tf_timers_clock(p, i) > 0;
    if (ready == 0)
        return;
    int64_t share = budget / ready > 0 ? budget / ready : 1;
    int first = p->scan_next % p->nslots;
    p->scan_next = first + 1;
    for (int k = 0; k < p->nslots && budget > 0; k++) {
        int i = (first + k) % p->nslots;
        slot_t *s = &p->slots[i];
        int64_t until = tf_timers_clock(p, i);
        if (!scannable(s) || until <= 0)
            continue; /* busy, or on stream time with nothing read from it yet */
        size_t room = p->timer_cap - p->timer_len;
        size_t limit = (size_t)(share < budget ? share : budget);
        if (limit > room)
            limit = room;
        if (limit == 0)
            break;
        scan_ref *ref = malloc(sizeof(*ref));
        if (!ref)
            return;
        ref->p = p;
        ref->slot = i;
        ref->gen = s->gen;
        if (tf_store_index_due(p->store, s->tp, until, limit, on_due, ref) != TF_OK) {
            free(ref);
            return;
        }
        s->scanning = 1;
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
        r->ev.time_ms = tf_timers_clock(p, j->slot);
        if (b->slot_clock[j->slot] < s->stream_ms)
            b->slot_clock[j->slot] = s->stream_ms;
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
    p->slots[slot].scanning = 0;
}

static void on_population(tf_store_t *st, int status, const tf_population_t *pop, void *opaque)
{
    tf_pipeline_t *p = opaque;
    (void)st;
    p->population_asking = 0;
    if (status == TF_OK) {
        p->population = *pop;
        p->population.self_ranked = 0; /* set per customer */
        p->population.self_value = 0;
        p->population_at_ms = tf_time_mono_ms();
    }
}

void tf_timers_population_refresh(tf_pipeline_t *p)
{
    if (p->population_asking || (p->population_at_ms &&
                                 tf_time_mono_ms() - p->population_at_ms < p->cfg.rules.tier_refresh_ms))
        return;
    const tf_config_rules *r = &p->cfg.rules;
    if (tf_store_population(p->store, r->key_share_pct, r->potential_share_pct, r->tier_hysteresis_pct, on_population,
                            p) == TF_OK)
        p->population_asking = 1;
}

int tf_timers_init(tf_pipeline_t *p)
{
    p->clock_stream = strcmp(p->cfg.timers_clock, "stream") == 0;
    p->population.buyers = 0;
    p->population.key_enter = p->population.key_keep = INT64_MAX;
    p->population.potential_enter = p->population.potential_keep = INT64_MAX;
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
