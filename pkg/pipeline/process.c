/* A batch's Redis phase (load, apply the rules, commit), then delivery of derived
 * events and the release of records into the offset tracker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/clock.h"
#include "pipeline/latency.h"
#include "pipeline/verdict.h"
#include "pipeline/internal.h"

#define MOD "pipeline"

static void on_loaded(tf_store_t *st, int status, const tf_store_loaded *res, void *opaque);
static void group_loaded(tf_pipeline_t *p, batch_t *b, group_t *gr, const tf_store_loaded *res);
static void on_committed(tf_store_t *st, int status, int64_t version, void *opaque);
static void note_referrals(batch_t *b);

static int rec_valid(const tf_pipeline_t *p, const record_t *r)
{
    const slot_t *s = &p->slots[r->slot];
    return s->active && !s->fenced && s->gen == r->slot_gen;
}

void tf_pipeline_latency_quantiles(tf_pipeline_t *p)
{
    uint64_t total = 0;
    for (int i = 0; i < TF_LATENCY_BUCKETS; i++)
        total += p->lat_hist[i];
    p->stats.commit_latency_count = total;
    if (!total)
        return;
    uint64_t acc = 0, want50 = (total + 1) / 2, want99 = total - total / 100;
    int got50 = 0;
    for (int i = 0; i < TF_LATENCY_BUCKETS; i++) {
        acc += p->lat_hist[i];
        if (!got50 && acc >= want50) {
            p->stats.commit_latency_p50_ms = tf_latency_bucket_upper(i);
            got50 = 1;
        }
        if (acc >= want99) {
            p->stats.commit_latency_p99_ms = tf_latency_bucket_upper(i);
            break;
        }
    }
}

/* Stores every slot's advanced low-water mark with the consumer. */
void tf_pipeline_flush_offsets(tf_pipeline_t *p)
{
    for (int i = 0; i < p->nslots; i++) {
        if (!p->slots[i].active || p->slots[i].fenced)
            continue;
        int64_t off = tf_offsets_take_committable(p->offsets, i);
        if (off >= 0)
            tf_consumer_store(p->consumer, p->slots[i].topic, p->slots[i].partition, off);
    }
}

void tf_pipeline_record_release(tf_pipeline_t *p, batch_t *b, record_t *r)
{
    if (--r->pending > 0)
        return;
    if (r->is_timer) {
        tf_timers_record_done(p, r);
        tf_pipeline_batch_unref(p, b);
        return;
    }
    if (r->status != REC_DROPPED && rec_valid(p, r))
        tf_offsets_done(p->offsets, r->slot, r->ticket);
    p->stats.inflight--;
    tf_pipeline_batch_unref(p, b);
}

void tf_pipeline_batch_unref(tf_pipeline_t *p, batch_t *b)
{
    if (--b->remaining == 0) {
        p->progress_mono_ms = tf_time_mono_ms();
        tf_batch_reset(b);
        tf_pipeline_pump(p);
    }
}

/* ---- Redis phase ---- */

/* Redis refused the customer's keys (TF_ESTATE): the batch is retried, and after
 * redis.state_error_attempts its records go to the dead-letter topic. */
static void mark_refused(tf_pipeline_t *p, batch_t *b, group_t *gr)
{
    const char *customer = b->recs[gr->first].ev.subject;
    if (gr->state_error)
        return;
    gr->state_error = 1;
    gr->refusals++;
    p->stats.state_errors++;
    TF_ERROR(MOD, "customer %s: Redis refused its state (%u of %lld attempts): %s", customer, gr->refusals,
             (long long)p->cfg.redis_state_error_attempts, tf_store_last_error(p->store));
    for (uint32_t i = gr->first; i != UINT32_MAX; i = b->recs[i].next_in_group)
        snprintf(b->recs[i].dlq_detail, sizeof(b->recs[i].dlq_detail), "state of customer %s: %s", customer,
                 tf_store_last_error(p->store));
}

/* The customers Redis refused on every attempt: their records go to the
 * dead-letter topic (state_error, the Redis error as the detail) and everyone
 * else goes on. Their timers are taken out of the index, or every scan would
 * bring them back. */
static void dead_letter_refused(tf_pipeline_t *p, batch_t *b)
{
    for (uint32_t g = 0; g < b->ngroups; g++) {
        group_t *gr = &b->groups[g];
        if (!gr->state_error || gr->refusals < (uint32_t)p->cfg.redis_state_error_attempts)
            continue;
        const char *customer = b->recs[gr->first].ev.subject;
        uint32_t n = 0;
        for (uint32_t i = gr->first; i != UINT32_MAX; i = b->recs[i].next_in_group) {
            record_t *r = &b->recs[i];
            if (r->status == REC_DLQ || r->status == REC_DROPPED)
                continue;
            if (r->is_timer || !rec_valid(p, r) || !r->dlq_msg) {
                r->status = REC_DROPPED;
                continue;
            }
            r->status = REC_DLQ;
            r->dlq_error = TF_EV_STATE_ERROR;
            p->stats.dead_lettered++;
            p->stats.dlq_by_reason[TF_EV_STATE_ERROR]++;
            tf_pipeline_send_dlq(p, b, r);
            n++;
        }
        tf_store_index_set(p->store, p->slots[gr->slot].tp, customer, 0);
        TF_ERROR(MOD, "customer %s: %u record(s) to the dead-letter topic (state_error) after %u attempts", customer,
                 n, gr->refusals);
        gr->state_error = 0;
    }
}

void tf_pipeline_start_redis(tf_pipeline_t *p, batch_t *b)
{
    static const char *no_ids[1];
    if (p->redis_batch)
        p->next_batch = b;
    else
        p->redis_batch = b;
    b->state = B_REDIS;
    b->epoch = p->epoch;
    b->failed = 0;
    b->synced = 0;
    b->outstanding = 0;
    b->loads_pending = 0;
    b->nouts = 0;
    b->arena_len = 0;
    const char *ids_stack[TF_PIPELINE_MAX_GROUP];
    if (b->attempts > 0)
        dead_letter_refused(p, b);
    tf_tiers_refresh(p, b);
    /* A partition's first cutoffs reach the rules before the loads queued behind
     * them: a batch applied from the cache would run ahead of them. A periodic
     * reread only refreshes cutoffs the rules already have. */
    int use_cache = 1;
    for (int i = 0; i < p->nslots && use_cache; i++)
        if (p->slots[i].active && p->slots[i].cuts_asking && p->slots[i].ncuts == 0)
            use_cache = 0;
    note_referrals(b);
    for (uint32_t g = 0; g < b->ngroups; g++) {
        group_t *gr = &b->groups[g];
        size_t n = 0;
        gr->skip = 1;
        gr->ready = gr->changed = 0;
        gr->nout = gr->nnew = gr->undelivered = gr->timer_outs = 0;
        gr->loaded = gr->has_timer = gr->outbox_held = gr->state_error = 0;
        gr->cached = 0;
        gr->redone = b->attempts > 0;
        size_t live = 0;
        for (uint32_t i = gr->first; i != UINT32_MAX; i = b->recs[i].next_in_group) {
            record_t *r = &b->recs[i];
            if (r->status == REC_DLQ)
                continue; /* dead-lettered for its customer's state */
            if (!rec_valid(p, r)) {
                r->status = REC_DROPPED;
                continue;
            }
            r->status = REC_PENDING;
            live++;
            gr->slot = r->slot;
            if (!r->is_timer)
                ids_stack[n++] = r->dedup;
        }
        if (live == 0)
            continue;
        gr->skip = 0;
        const char *customer = b->recs[gr->first].ev.subject;
        gr->sent_us = tf_time_mono_us();
        if (use_cache && tf_cache_get(p->cache, customer, &gr->before)) {
            /* Committed by this process last: applied below, once the loads of
             * the others are on their way. */
            p->stats.cache_hits++;
            gr->cached = 1;
            continue;
        }
        p->stats.cache_misses++;
        int rc = tf_store_load(p->store, customer, n ? ids_stack : no_ids, n, on_loaded, &b->groups[g]);
        if (rc) {
            b->failed = 1;
            break;
        }
        b->outstanding++;
        b->loads_pending++;
    }
    /* The loads went first: their answers, behind the commits ahead, free the next
     * batch to start while Redis works through these commits. A cached customer's
     * commit checks nobody wrote it since and that none of its ids was seen (they
     * are taken as new). */
    static const uint8_t unseen[TF_PIPELINE_MAX_GROUP];
    for (uint32_t g = 0; g < b->ngroups && !b->failed; g++) {
        group_t *gr = &b->groups[g];
        if (!gr->cached || gr->skip)
            continue;
        tf_store_loaded hit = {&gr->before, unseen, 0, NULL};
        group_loaded(p, b, gr, &hit);
    }
    tf_pipeline_redis_settle(p, b);
}

int tf_pipeline_can_preload(const tf_pipeline_t *p)
{
    const batch_t *cur = p->redis_batch;
    return cur && !p->next_batch && !cur->failed && cur->loads_pending == 0;
}

static void commit_group(tf_pipeline_t *p, batch_t *b, group_t *gr);

static void on_synced(tf_store_t *st, int status, void *opaque)
{
    batch_t *b = opaque;
    (void)st;
    b->outstanding--;
    if (status != TF_OK)
        b->failed = 1; /* retried from the load: what was applied is seen, and synced again */
    tf_pipeline_redis_settle(b->p, b);
}

/* With redis.wait_replicas, a batch whose commits are all in asks the replicas to
 * acknowledge them before any of its offsets may be stored: an acknowledged commit
 * then survives the failover of its primary. Returns 1 while the answer is owed. */
static int sync_replicas(tf_pipeline_t *p, batch_t *b)
{
    if (p->cfg.redis_wait_replicas <= 0 || b->synced)
        return 0;
    b->synced = 1;
    int rc = tf_store_sync(p->store, (int)p->cfg.redis_wait_replicas, p->cfg.redis_wait_timeout_ms, on_synced, b);
    if (rc) {
        b->failed = 1;
        return 0;
    }
    b->outstanding++;
    return 1;
}

/* The committing batch settled well: the preloaded one commits what it has
 * loaded, and the rest as its loads come in. */
static void promote_next(tf_pipeline_t *p)
{
    batch_t *n = p->next_batch;
    p->next_batch = NULL;
    p->redis_batch = n;
    for (uint32_t g = 0; g < n->ngroups && !n->failed; g++)
        if (n->groups[g].ready)
            commit_group(p, n, &n->groups[g]);
    tf_pipeline_redis_settle(p, n);
}

/* Called whenever a Redis reply for b arrived: once nothing is outstanding, the
 * batch either failed (retry from the load) or goes on to delivery. */
void tf_pipeline_redis_settle(tf_pipeline_t *p, batch_t *b)
{
    if (b->failed && p->redis_batch == b && p->next_batch) {
        /* Its loads read state this batch was to commit: it starts over too. */
        p->next_batch->failed = 1;
    }
    if (b->outstanding)
        return;
    if (b->failed) {
        /* Some of its commits may have landed, with outbox entries only a load
         * finds: the retry reads every customer of it from Redis. */
        for (uint32_t g = 0; g < b->ngroups; g++)
            tf_cache_drop(p->cache, b->recs[b->groups[g].first].ev.subject);
        b->state = B_FILLED;
        if (p->redis_batch == b) {
            p->redis_batch = NULL;
            if (p->next_batch) {
                /* It takes the front and settles (failed) once its loads are back. */
                p->redis_batch = p->next_batch;
                p->next_batch = NULL;
                tf_pipeline_redis_settle(p, p->redis_batch);
            }
        } else if (p->next_batch == b) {
            p->next_batch = NULL;
        }
        p->stats.redis_failures++;
        b->attempts++;
        tf_pipeline_redis_failing(p, 1);
        tf_pipeline_schedule_retry(p);
        return;
    }
    if (p->next_batch == b)
        return; /* loaded; its commits wait for the batch ahead */
    if (sync_replicas(p, b))
        return;
    if (b->failed) {
        tf_pipeline_redis_settle(p, b);
        return;
    }
    /* Every group of the batch is loaded and committed (or fenced). The next batch
     * goes to the front before this one's deliveries can recycle anything. */
    p->redis_batch = NULL;
    b->state = B_DELIVERING;
    p->retry_delay_ms = 0;
    p->progress_mono_ms = tf_time_mono_ms();
    tf_pipeline_redis_failing(p, 0);
    if (p->next_batch)
        promote_next(p);
    tf_pipeline_deliver(p, b);
    tf_pipeline_pump(p);
}

/* Lists a "<subs>[\t<key>]\n<json>" payload at off in the arena for delivery, once
 * per destination in dests (a mask of p->routes). */
static int out_push(batch_t *b, uint32_t rec, uint32_t group, uint64_t dests, size_t off, size_t flen, size_t len,
                    int type, const char *id)
{
    int first = 1;
    for (int i = 0; dests; i++, dests >>= 1) {
        if (!(dests & 1))
            continue;
        out_t *o = tf_batch_out_new(b);
        if (!o)
            return TF_ENOMEM;
        /* "<subs>\t<key>": the event is keyed by another customer (a referrer). */
        const char *tab = memchr(b->arena + off, '\t', flen);
        if (tab) {
            o->key_off = (size_t)(tab - b->arena) + 1;
            o->key_len = off + flen - o->key_off;
        }
        o->rec = rec;
        o->group = group;
        o->sub = i;
        o->extra = !first;
        o->off = off;
        o->json_off = off + flen + 1;
        o->len = len;
        o->type = type;
        tf_strlcpy(o->id, id, sizeof(o->id));
        first = 0;
    }
    return TF_OK;
}

/* Routes a derived event, then encodes it into the arena and the out list. The
 * payload names its destinations: a replay after a crash goes where this went,
 * whatever the routing would say of it by then. */
static int add_derived(tf_pipeline_t *p, batch_t *b, uint32_t group, uint32_t rec, const tf_derived_t *d)
{
    if (p->rebuild_quiet) {
        /* Rebuilding state only: the first run sent it. */
        p->stats.suppressed++;
        return TF_OK;
    }
    uint64_t dests = tf_route_distinct(&p->routes, tf_route(&p->routes, d->type, &d->ctx));
    if (!dests) {
        p->stats.derived_unrouted++;
        return TF_OK;
    }
    const char *customer = b->recs[b->groups[group].first].ev.subject;
    size_t flen = 0, room = 8192;
    for (size_t i = 0; i < p->routes.n; i++)
        if ((dests >> i) & 1)
            flen += strlen(p->routes.subs[i].name) + 1;
    int other_key = strcmp(d->subject, customer) != 0;
    size_t klen = other_key ? strlen(d->subject) + 1 : 0;
    size_t off = tf_batch_arena_reserve(b, flen + klen + room);
    if (off == (size_t)-1)
        return TF_ENOMEM;
    flen = 0;
    for (size_t i = 0; i < p->routes.n; i++) {
        if (!((dests >> i) & 1))
            continue;
        size_t n = strlen(p->routes.subs[i].name);
        if (flen)
            b->arena[off + flen++] = ',';
        memcpy(b->arena + off + flen, p->routes.subs[i].name, n);
        flen += n;
    }
    if (other_key) {
        b->arena[off + flen] = '\t';
        memcpy(b->arena + off + flen + 1, d->subject, klen - 1);
        flen += klen;
    }
    b->arena[off + flen] = '\n';
    int n = tf_derived_encode(d, p->cfg.instance_source, b->arena + off + flen + 1, room);
    if (n < 0)
        return TF_EINVAL;
    b->arena_len = off + flen + 1 + (size_t)n; /* give back the unused room */
    return out_push(b, rec, group, dests, off, flen, flen + 1 + (size_t)n, (int)d->type, d->id);
}

/* Re-queues derived events found in the outbox: committed before a crash or a lost
 * reply, never confirmed delivered. */
static int add_replay(tf_pipeline_t *p, batch_t *b, uint32_t group, uint32_t rec, const tf_store_outbox_entry *e)
{
    const char *nl = memchr(e->payload, '\n', e->payload_len);
    if (!nl || strlen(e->id) >= TF_ID_LEN)
        return TF_EINVAL;
    size_t flen = (size_t)(nl - e->payload);
    const char *tab = memchr(e->payload, '\t', flen);
    size_t names_len = tab ? (size_t)(tab - e->payload) : flen;
    /* Where it was routed when derived; subscriptions since removed or switched off
     * are skipped. */
    size_t skipped;
    uint64_t dests = tf_route_parse_dests(&p->routes, e->payload, names_len, &skipped);
    if (skipped)
        TF_WARN(MOD, "an outbox entry of %s names subscriptions \"%.*s\", of which %zu %s no longer configured or "
                "switched off: not sent there",
                b->recs[b->groups[group].first].ev.subject, (int)(names_len > 200 ? 200 : names_len), e->payload,
                skipped, skipped == 1 ? "is" : "are");
    if (!dests) {
        p->stats.derived_unrouted++;
        return TF_ENOTFOUND;
    }
    size_t off = tf_batch_arena_reserve(b, e->payload_len);
    if (off == (size_t)-1)
        return TF_ENOMEM;
    memcpy(b->arena + off, e->payload, e->payload_len);
    return out_push(b, rec, group, dests, off, flen, e->payload_len, -1, e->id);
}

/* The cutoffs the rules see for customer c at time t. The cutoffs include the
 * customer's own place in the ranking: on the stream clock that is its value when
 * first evaluated under them (kept in its state, so it does not depend on which
 * batch committed what); on the wall clock, its value at its last commit (wall). */
static tf_population_t cutoffs_for(tf_pipeline_t *p, int slot, tf_customer_t *c, int64_t t,
                                   const tf_population_t *wall)
{
    int64_t from;
    tf_population_t pop = tf_tiers_at(p, slot, t, &from);
    if (!p->clock_stream) {
        pop.self_ranked = wall->self_ranked;
        pop.self_value = wall->self_value;
        return pop;
    }
    if (c->ranked_at_ms != from) {
        c->ranked_at_ms = from;
        c->ranked_value = c->purchases > 0 ? tf_customer_value(&p->cfg.rules, c) : INT64_MIN;
    }
    pop.self_ranked = c->ranked_value != INT64_MIN;
    pop.self_value = pop.self_ranked ? c->ranked_value : 0;
    return pop;
}

/* Fires the customer's timers due by until; their events wait with record rec.
 * Each runs against the tier cutoffs in force at its time: the range is cut where
 * the partition's cutoffs change. */
static void fire_timers(tf_pipeline_t *p, batch_t *b, uint32_t g, uint32_t rec, const tf_population_t *self,
                        tf_customer_t *c, const char *customer, int64_t until)
{
    tf_derived_t out[TF_LIFECYCLE_MAX_DERIVED];
    int slot = b->groups[g].slot;
    for (;;) {
        if (c->stage == TF_STAGE_NONE)
            return; /* nothing scheduled before the first touchpoint */
        int64_t from = c->clock_ms < INT64_MAX ? c->clock_ms + 1 : c->clock_ms;
        int64_t next = INT64_MAX;
        tf_tiers_next(p, slot, from, &next);
        tf_population_t pop = cutoffs_for(p, slot, c, from, self);
        int64_t seg = next != INT64_MAX && next - 1 < until ? next - 1 : until;
        int more;
        do {
            tf_figures_mark mark;
            tf_figures_mark_before(c, NULL, &mark);
            size_t nd = tf_lifecycle_advance(&p->cfg.rules, &pop, customer, c, seg, out, TF_LIFECYCLE_MAX_DERIVED,
                                             &more);
            tf_pipeline_figures_step(p, b, &b->groups[g], &mark, NULL, out, nd);
            for (size_t d = 0; d < nd; d++) {
                if (add_derived(p, b, g, rec, &out[d]) != TF_OK) {
                    TF_ERROR(MOD, "cannot encode a derived event for %s", customer);
                    b->failed = 1;
                    return;
                }
                b->groups[g].timer_outs++;
            }
            p->timers_fired += nd;
        } while (more);
        /* A customer never seen does not advance: nothing further to cut. */
        if (seg >= until || c->clock_ms < seg)
            return;
    }
}

/* The referred customer learns who referred it, so its first purchase credits
 * the referrer: in Redis (HSETNX, ahead of the commits on the same connection), so
 * later batches load it. */
static void link_referral(tf_pipeline_t *p, const record_t *r)
{
    if (strcmp(r->ev.referred_id, r->ev.subject) == 0)
        return; /* nobody refers themselves */
    tf_store_link_referral(p->store, r->ev.referred_id, r->ev.subject);
    /* Its next commit from the cache would be stale: it is loaded instead. */
    tf_cache_drop(p->cache, r->ev.referred_id);
}

/* Within a batch, groups are applied one customer after another, not in record
 * order: a referred customer's records after its referral learn the referrer from
 * here, whichever group is applied first, so the credit follows the partition's
 * order whatever the batch boundaries. */
static void note_referrals(batch_t *b)
{
    for (uint32_t i = 0; i < b->nrecs; i++) {
        const record_t *r = &b->recs[i];
        if (r->is_timer || r->status == REC_DLQ || r->status == REC_DROPPED || r->ev.kind != TF_KIND_REFERRAL ||
            strcmp(r->ev.referred_id, r->ev.subject) == 0)
            continue;
        group_t *other = tf_batch_group_find(b, r->ev.referred_id);
        if (other && !other->referred_by[0]) {
            tf_strlcpy(other->referred_by, r->ev.subject, sizeof(other->referred_by));
            other->referred_at = i;
        }
    }
}

/* Gathers the facts tf_verdict_decide needs about the group's records, in group
 * order (records dropped before the load are left out; n counts the rest). */
static size_t verdict_inputs(tf_pipeline_t *p, batch_t *b, const group_t *gr, const tf_store_loaded *res,
                             tf_verdict_record *in, uint32_t *idx)
{
    size_t n = 0, k = 0;
    for (uint32_t i = gr->first; i != UINT32_MAX; i = b->recs[i].next_in_group) {
        const record_t *r = &b->recs[i];
        if (r->status == REC_DROPPED)
            continue;
        tf_verdict_record *v = &in[n];
        v->is_timer = r->is_timer;
        v->owned = rec_valid(p, r);
        v->offset = r->offset;
        v->watermark = r->is_timer ? -1 : tf_store_doc_watermark(&gr->before, p->slots[r->slot].tp);
        v->seen = r->is_timer ? 0 : res->seen[k++];
        v->dedup = r->dedup;
        idx[n++] = i;
    }
    return n;
}

static size_t group_length(const batch_t *b, const group_t *gr)
{
    size_t n = 0;
    for (uint32_t i = gr->first; i != UINT32_MAX; i = b->recs[i].next_in_group)
        n++;
    return n;
}

/* Applies one record: its customer's timers due before it fire first, at their own
 * times. On stream time that is every timer the partition's stream had passed when
 * the record was read: a late record is applied where it stands in the partition,
 * whatever the batches, so a replay applies it the same way. */
static void apply_record(tf_pipeline_t *p, batch_t *b, group_t *gr, uint32_t i, const tf_population_t *pop)
{
    record_t *r = &b->recs[i];
    uint32_t g = (uint32_t)(gr - b->groups);
    tf_customer_t *c = &gr->after.customer;
    const char *customer = b->recs[gr->first].ev.subject;
    tf_derived_t derived[TF_LIFECYCLE_MAX_DERIVED];
    if (gr->referred_by[0] && !c->referred_by[0] && i > gr->referred_at)
        tf_strlcpy(c->referred_by, gr->referred_by, sizeof(c->referred_by));
    tf_clock_view v = {p->clock_stream, 0, INT64_MAX, 0};
    int64_t now = p->clock_stream ? 0 : tf_timers_batch_clock(p, b, r->slot);
    fire_timers(p, b, g, i, pop, c, customer, tf_clock_record_until(&v, r->stream_at_ms, r->ev.time_ms, now));
    tf_population_t at = cutoffs_for(p, r->slot, c, r->ev.time_ms > c->clock_ms ? r->ev.time_ms : c->clock_ms, pop);
    tf_figures_mark mark;
    tf_figures_mark_before(c, &r->ev, &mark);
    size_t nd = tf_lifecycle_apply(&p->cfg.rules, &at, c, &r->ev, derived);
    tf_pipeline_figures_step(p, b, gr, &mark, &r->ev, derived, nd);
    for (size_t d = 0; d < nd; d++) {
        if (add_derived(p, b, g, i, &derived[d]) != TF_OK) {
            TF_ERROR(MOD, "cannot encode a derived event for %s", r->ev.subject);
            b->failed = 1;
        }
    }
    if (r->ev.kind == TF_KIND_REFERRAL)
        link_referral(p, r);
}

/* The outbox entries the verdict re-sends wait with record rec. */
static void replay_outbox(tf_pipeline_t *p, batch_t *b, group_t *gr, uint32_t rec, const tf_store_loaded *res,
                          const int *resend)
{
    uint32_t g = (uint32_t)(gr - b->groups);
    for (size_t e = 0; e < res->noutbox; e++) {
        if (!resend[e])
            continue;
        int rc = add_replay(p, b, g, rec, &res->outbox[e]);
        if (rc != TF_OK && rc != TF_ENOTFOUND) /* not found: reported per name */
            TF_WARN(MOD, "dropping an unreadable outbox entry of %s", b->recs[gr->first].ev.subject);
    }
}

#define VERDICT_STACK 256

/* Runs the group's verdict: which records apply, when timers fire, what of the
 * outbox is sent again. */
static void process_group(tf_pipeline_t *p, batch_t *b, group_t *gr, const tf_store_loaded *res)
{
    tf_verdict_record in_stack[VERDICT_STACK];
    tf_verdict verdict_stack[VERDICT_STACK];
    uint32_t idx_stack[VERDICT_STACK];
    int flight_stack[VERDICT_STACK], resend_stack[VERDICT_STACK];
    size_t len = group_length(b, gr), nout = res->noutbox;
    tf_verdict_record *in = len <= VERDICT_STACK ? in_stack : malloc(len * sizeof(*in));
    tf_verdict *verdicts = len <= VERDICT_STACK ? verdict_stack : malloc(len * sizeof(*verdicts));
    uint32_t *idx = len <= VERDICT_STACK ? idx_stack : malloc(len * sizeof(*idx));
    int *in_flight = nout <= VERDICT_STACK ? flight_stack : malloc(nout * sizeof(*in_flight));
    int *resend = nout <= VERDICT_STACK ? resend_stack : malloc(nout * sizeof(*resend));
    if (!in || !verdicts || !idx || !in_flight || !resend) {
        TF_ERROR(MOD, "out of memory deciding %zu records of %s", len, b->recs[gr->first].ev.subject);
        b->failed = 1;
        goto out;
    }

    size_t n = verdict_inputs(p, b, gr, res, in, idx);
    for (size_t e = 0; e < nout; e++)
        in_flight[e] = tf_inflight_holds(&p->inflight, res->outbox[e].id);
    tf_verdict_plan plan;
    tf_verdict_decide(in, n, gr->before.exists, in_flight, nout, verdicts, resend, &plan);

    tf_population_t pop = {0};
    if (gr->before.customer.purchases > 0) {
        /* The ranking holds this customer at the value of its last commit. */
        pop.self_ranked = 1;
        pop.self_value = tf_customer_value(&p->cfg.rules, &gr->before.customer);
    }
    gr->out_first = b->nouts;
    tf_pipeline_figures_start(b, gr);
    for (size_t j = 0; j < n; j++) {
        record_t *r = &b->recs[idx[j]];
        switch (verdicts[j]) {
        case TF_VERDICT_DROP: /* revoked while loading: the next owner applies it */
            r->status = REC_DROPPED;
            break;
        case TF_VERDICT_TIMER:
            r->status = REC_TIMER;
            gr->has_timer = 1;
            break;
        case TF_VERDICT_REPLAYED:
            r->status = REC_REPLAYED;
            break;
        case TF_VERDICT_DUPLICATE:
            tf_store_doc_set_watermark(&gr->after, p->slots[r->slot].tp, r->offset);
            r->status = REC_DUPLICATE;
            break;
        case TF_VERDICT_APPLY:
            tf_store_doc_set_watermark(&gr->after, p->slots[r->slot].tp, r->offset);
            apply_record(p, b, gr, idx[j], &pop);
            r->status = REC_APPLIED;
            break;
        }
    }
    if (plan.fire_after) {
        /* Then everything due by now (the wall clock, or the partition's stream time). */
        uint32_t last = idx[plan.last_live];
        fire_timers(p, b, (uint32_t)(gr - b->groups), last, &pop, &gr->after.customer, b->recs[gr->first].ev.subject,
                    tf_timers_batch_clock(p, b, b->recs[last].slot));
    }
    tf_pipeline_figures_finish(b, gr);
    gr->nnew = b->nouts - gr->out_first;
    if (plan.replay_at != TF_VERDICT_NONE)
        replay_outbox(p, b, gr, idx[plan.replay_at], res, resend);
    gr->outbox_held = plan.outbox_held;
    gr->nout = b->nouts - gr->out_first;
    gr->changed = plan.changed;
out:
    if (in != in_stack)
        free(in);
    if (verdicts != verdict_stack)
        free(verdicts);
    if (idx != idx_stack)
        free(idx);
    if (in_flight != flight_stack)
        free(in_flight);
    if (resend != resend_stack)
        free(resend);
}

static void on_loaded(tf_store_t *st, int status, const tf_store_loaded *res, void *opaque)
{
    group_t *gr = opaque;
    batch_t *b = gr->batch;
    tf_pipeline_t *p = b->p;
    (void)st;
    b->outstanding--;
    b->loads_pending--;
    if (status == TF_OK)
        tf_histogram_observe(&p->redis_rtt, (double)(tf_time_mono_us() - gr->sent_us) / 1e6);
    if (status == TF_ESTATE)
        mark_refused(p, b, gr);
    if (status != TF_OK || b->failed) {
        b->failed = 1;
        tf_pipeline_redis_settle(p, b);
        return;
    }

    group_loaded(p, b, gr, res);
    /* Every commit of the committing batch is sent: the next batch may load. */
    if (b == p->redis_batch && b->loads_pending == 0 && !b->failed)
        tf_pipeline_pump(p);
    tf_pipeline_redis_settle(p, b);
}

/* The group's state is in (res->doc, from Redis or the cache): its records are
 * decided and applied, and its commit goes out at once. In the batch behind the
 * committing one too, unless the batch ahead holds the customer: that commit may
 * still be refused and redone, and the customer's records must land in partition
 * order (a later one first would raise the watermark past the earlier). So it
 * waits for the batch ahead to settle, and is checked against the state it was
 * computed from (version and epoch of the last write) like every commit. */
static void group_loaded(tf_pipeline_t *p, batch_t *b, group_t *gr, const tf_store_loaded *res)
{
    if (res->doc != &gr->before)
        gr->before = *res->doc;
    gr->after = gr->before;
    gr->loaded = 1;
    process_group(p, b, gr, res);
    gr->ready = 1;
    if (b->failed)
        return;
    if (b == p->redis_batch ||
        (b == p->next_batch && !tf_batch_group_find(p->redis_batch, b->recs[gr->first].ev.subject)))
        commit_group(p, b, gr);
}

/* The group's commit was stale: what it derived is dropped unsent, and it starts
 * over from a load. The batch ahead has settled, so the load sees every commit
 * before this one; a later batch's commit of the customer is checked in turn. */
static void reload_group(tf_pipeline_t *p, batch_t *b, group_t *gr)
{
    const char *ids[TF_PIPELINE_MAX_GROUP];
    size_t n = 0;
    const char *customer = b->recs[gr->first].ev.subject;
    /* The batch behind may have applied the customer from the state this commit
     * would have written (the cache holds it from the send): it has not committed
     * it (see group_loaded), and starts over from a load too, or its commit could
     * pass the check on the version the redone commit writes. */
    group_t *later = b == p->redis_batch && p->next_batch ? tf_batch_group_find(p->next_batch, customer) : NULL;
    if (later && later->cached && later->loaded)
        reload_group(p, p->next_batch, later);
    for (uint32_t o = gr->out_first; o < gr->out_first + gr->nout; o++)
        b->outs[o].dead = 1;
    gr->ready = gr->changed = 0;
    gr->nout = gr->nnew = gr->undelivered = gr->timer_outs = 0;
    gr->loaded = gr->has_timer = gr->outbox_held = gr->state_error = 0;
    gr->cached = 0;
    gr->redone = 1;
    for (uint32_t i = gr->first; i != UINT32_MAX; i = b->recs[i].next_in_group) {
        record_t *r = &b->recs[i];
        if (r->status == REC_DLQ || r->status == REC_DROPPED)
            continue;
        if (!rec_valid(p, r)) {
            r->status = REC_DROPPED;
            continue;
        }
        r->status = REC_PENDING;
        if (!r->is_timer)
            ids[n++] = r->dedup;
    }
    gr->sent_us = tf_time_mono_us();
    if (tf_store_load(p->store, customer, ids, n, on_loaded, gr) != TF_OK) {
        b->failed = 1;
        return;
    }
    p->stats.cache_misses++;
    b->outstanding++;
    b->loads_pending++;
}

/* The rebuildable indexes a commit moves: the partition's timer index and the
 * value ranking. Sent ahead of the commit. The index may be early, never late: a
 * customer indexed before its due time is only visited, finds nothing due and is
 * indexed again, one indexed after it would lose a timer. So a due time that moved
 * later is left for that visit, which saves a command on most commits. */
static void update_indexes(tf_pipeline_t *p, batch_t *b, group_t *gr)
{
    const char *customer = b->recs[gr->first].ev.subject;
    const tf_customer_t *before = &gr->before.customer, *after = &gr->after.customer;
    int64_t due = tf_customer_next_due(after);
    if (gr->timer_outs || gr->outbox_held) {
        /* Come back soon in case their delivery is lost with this process. */
        int64_t soon = tf_timers_batch_clock(p, b, gr->slot) + 60 * TF_MS_PER_SEC;
        if (due == 0 || soon < due)
            due = soon;
    }
    /* An earlier attempt may have indexed what a state that never landed said
     * (a stale commit, or one computed from it): both are written again. */
    int64_t indexed = tf_customer_next_due(before);
    if (gr->redone || gr->has_timer || (due != 0 && (indexed == 0 || due < indexed)))
        tf_store_index_set(p->store, p->slots[gr->slot].tp, customer, due);
    if (after->purchases > 0) {
        int64_t value = tf_customer_value(&p->cfg.rules, after);
        if (gr->redone || before->purchases == 0 || value != tf_customer_value(&p->cfg.rules, before))
            tf_store_value_set(p->store, p->slots[gr->slot].tp, customer, value);
    }
}

/* Sends a loaded group's commit: the changed fields, the ids of the events it
 * applied and its new derived events (the outbox), in one script call. */
static void commit_group(tf_pipeline_t *p, batch_t *b, group_t *gr)
{
    const char *ids[TF_PIPELINE_MAX_GROUP];
    size_t nids = 0, nadds = 0;
    gr->ready = 0;
    if (!gr->changed) {
        /* Every event was a replay, or a timer of a customer that is gone. */
        if (gr->has_timer && !gr->before.exists)
            tf_store_index_set(p->store, p->slots[gr->slot].tp, b->recs[gr->first].ev.subject, 0);
        return;
    }
    for (uint32_t i = gr->first; i != UINT32_MAX; i = b->recs[i].next_in_group)
        if (b->recs[i].status == REC_APPLIED)
            ids[nids++] = b->recs[i].dedup;
    if (tf_batch_scratch_reserve(b, gr->nnew) != TF_OK) {
        b->failed = 1;
        return;
    }
    tf_store_outbox_add *adds = b->adds;
    for (uint32_t o = gr->out_first; o < gr->out_first + gr->nnew; o++) {
        out_t *ot = &b->outs[o];
        if (ot->extra)
            continue; /* the event's entry is its first destination's */
        adds[nadds].id = ot->id;
        adds[nadds].payload = b->arena + ot->off;
        adds[nadds].payload_len = ot->len;
        nadds++;
    }
    update_indexes(p, b, gr);
    gr->sent_us = tf_time_mono_us();
    const char *customer = b->recs[gr->first].ev.subject;
    /* A referral of it in this batch is one the records account for (see
     * note_referrals): the link it wrote does not make the commit stale. */
    int rc = tf_store_commit(p->store, customer, &gr->before, &gr->after, !gr->referred_by[0], b->epoch,
                             tf_time_now_ms(), ids, nids, adds, nadds, b->figs + gr->fig_first, gr->fig_n,
                             on_committed, gr);
    if (rc) {
        tf_cache_drop(p->cache, customer);
        b->failed = 1;
        return;
    }
    b->outstanding++;
    /* The next batch may start from this state before it is acknowledged: it
     * commits the customer only once this batch has settled, and what becomes of
     * this commit (refused, stale) reaches it (see reload_group). */
    int64_t version = (gr->before.exists ? gr->before.version : 0) + 1;
    if (tf_cache_put_fields(p->cache, customer, tf_store_committed_fields(p->store), version, b->epoch) != TF_OK)
        TF_WARN(MOD, "cannot keep customer %s in the cache: it is loaded next time", customer);
}

static void on_committed(tf_store_t *st, int status, int64_t version, void *opaque)
{
    group_t *gr = opaque;
    batch_t *b = gr->batch;
    tf_pipeline_t *p = b->p;
    (void)st, (void)version;
    b->outstanding--;
    if (status != TF_OK)
        tf_cache_drop(p->cache, b->recs[gr->first].ev.subject);
    if (status == TF_ESTALE && !b->failed) {
        p->stats.stale_reloads++;
        reload_group(p, b, gr);
    } else if (status == TF_EFENCED) {
        /* A newer owner wrote this customer: we lost the partition. Stop using it;
         * the revoke that follows resets it. */
        p->stats.fenced++;
        for (uint32_t i = gr->first; i != UINT32_MAX; i = b->recs[i].next_in_group) {
            slot_t *s = &p->slots[b->recs[i].slot];
            if (!s->fenced)
                TF_ERROR(MOD, "fenced on %s: a newer owner wrote customer %s; stopping this partition", s->tp,
                         b->recs[i].ev.subject);
            s->fenced = 1;
        }
        gr->nout = 0;
    } else if (status != TF_OK) {
        /* A stale commit of a batch already failing is retried with it. */
        if (status == TF_ESTATE)
            mark_refused(p, b, gr);
        b->failed = 1;
    } else {
        p->stats.commits++;
        int64_t now = tf_time_now_ms(), now_us = tf_time_mono_us();
        tf_histogram_observe(&p->redis_rtt, (double)(now_us - gr->sent_us) / 1e6);
        for (uint32_t i = gr->first; i != UINT32_MAX; i = b->recs[i].next_in_group) {
            record_t *r = &b->recs[i];
            if (r->status != REC_APPLIED)
                continue;
            if (r->timestamp_ms > 0)
                p->lat_hist[tf_latency_bucket(now - r->timestamp_ms)]++;
            tf_histogram_observe(&p->processing, (double)(now_us - r->taken_us) / 1e6);
        }
    }
    tf_pipeline_redis_settle(p, b);
}

/* ---- delivery ---- */

static void send_out(tf_pipeline_t *p, batch_t *b, out_t *o)
{
    const char *key = b->recs[b->groups[o->group].first].ev.subject;
    size_t key_len = strlen(key);
    if (o->key_len) {
        key = b->arena + o->key_off;
        key_len = o->key_len;
    }
    const void *value;
    size_t value_len;
    const tf_route_sub *sub = &p->routes.subs[o->sub];
    rd_kafka_headers_t *h = tf_bus_ce_binding(b->arena + o->json_off, o->len - (o->json_off - o->off), sub->binary,
                                              &value, &value_len);
    int rc = tf_producer_send(p->producer, sub->topic, key, key_len, value, value_len, h, &o->ref);
    if (rc) {
        rd_kafka_headers_destroy(h);
        /* Local queue full or a transient error: the retry timer sends it again. */
        p->stats.delivery_retries++;
        TF_WARN(MOD, "cannot queue a derived event now (%s); retrying", tf_strerror(rc));
        tf_pipeline_defer_send(p, &o->ref);
    }
}

void tf_pipeline_deliver(tf_pipeline_t *p, batch_t *b)
{
    /* Each derived event holds its record until delivered. */
    for (uint32_t o = 0; o < b->nouts; o++) {
        out_t *ot = &b->outs[o];
        group_t *gr = &b->groups[ot->group];
        if (gr->nout == 0 || ot->dead)
            continue; /* fenced, or derived by a stale attempt */
        b->recs[ot->rec].pending++;
        gr->undelivered++;
    }
    for (uint32_t o = 0; o < b->nouts; o++) {
        if (b->groups[b->outs[o].group].nout == 0 || b->outs[o].dead)
            continue;
        if (!b->outs[o].extra && tf_inflight_add(&p->inflight, b->outs[o].id) != TF_OK)
            TF_WARN(MOD, "out of memory: a visit may send %s again", b->outs[o].id);
        send_out(p, b, &b->outs[o]);
    }
    for (uint32_t i = 0; i < b->nrecs; i++) {
        record_t *r = &b->recs[i];
        switch (r->status) {
        case REC_APPLIED:
        case REC_DUPLICATE:
        case REC_REPLAYED:
            if (p->slots[r->slot].applied_ms < r->ev.time_ms && rec_valid(p, r))
                p->slots[r->slot].applied_ms = r->ev.time_ms;
            break;
        default: break;
        }
        switch (r->status) {
        case REC_APPLIED:
            p->stats.applied++;
            p->events_by_kind[r->ev.kind][TF_OUTCOME_APPLIED]++;
            break;
        case REC_DUPLICATE:
            p->stats.duplicates++;
            p->events_by_kind[r->ev.kind][TF_OUTCOME_DUPLICATE]++;
            break;
        case REC_REPLAYED:
            p->stats.replayed++;
            p->events_by_kind[r->ev.kind][TF_OUTCOME_REPLAYED]++;
            break;
        default: break;
        }
    }
    /* The store phase is over for every non-DLQ record: release that share. The
     * extra reference keeps the batch from being recycled under the loop. */
    b->remaining++;
    for (uint32_t i = 0; i < b->nrecs; i++)
        if (b->recs[i].status != REC_DLQ)
            tf_pipeline_record_release(p, b, &b->recs[i]);
    tf_pipeline_flush_offsets(p);
    tf_pipeline_batch_unref(p, b);
}

void tf_pipeline_resend(tf_pipeline_t *p, send_ref *ref)
{
    batch_t *b = ref->batch;
    if (ref->kind == SEND_DERIVED) {
        send_out(p, b, &b->outs[ref->index]);
    } else {
        record_t *r = &b->recs[ref->index];
        tf_pipeline_send_dlq(p, b, r);
    }
}

static void on_outbox_acked(tf_store_t *st, int status, void *opaque)
{
    tf_pipeline_t *p = opaque;
    (void)st, (void)status;
    tf_inflight_ack_answered(&p->inflight);
}

void tf_pipeline_on_delivery(tf_producer_t *prod, rd_kafka_resp_err_t err, void *msg_opaque, void *opaque)
{
    tf_pipeline_t *p = opaque;
    send_ref *ref = msg_opaque;
    batch_t *b = ref->batch;
    (void)prod;
    if (!p->consumer)
        return; /* the final flush while tearing down: nothing left to store */
    if (ref->kind == SEND_DLQ && !b->recs[ref->index].dlq_truncated &&
        (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE)) {
        /* The dead-letter topic takes smaller records than the input: looping on it
         * would stop the partition. */
        tf_pipeline_dlq_too_large(p, b, &b->recs[ref->index]);
        return;
    }
    if (err) {
        /* librdkafka already retried for message.timeout.ms: keep the offset where it
         * is and send again, so nothing derived is ever skipped. */
        p->stats.delivery_retries++;
        tf_pipeline_defer_send(p, ref);
        return;
    }
    if (ref->kind == SEND_DLQ) {
        record_t *r = &b->recs[ref->index];
        rd_kafka_message_destroy(r->dlq_msg);
        r->dlq_msg = NULL;
        tf_pipeline_record_release(p, b, r);
        tf_pipeline_flush_offsets(p);
        return;
    }
    out_t *o = &b->outs[ref->index];
    group_t *gr = &b->groups[o->group];
    p->sub_sent[o->sub]++;
    if (!o->extra) {
        p->stats.derived++;
        if (o->type >= 0 && o->type < 16)
            p->stats.derived_by_type[o->type]++;
    }
    if (--gr->undelivered == 0) {
        size_t n = 0;
        const char **ids = b->ack_ids;
        if (tf_batch_scratch_reserve(b, gr->nout) != TF_OK) {
            /* Left in the outbox: a later visit sends them again, same ids. */
            TF_WARN(MOD, "out of memory acknowledging the outbox of %s", b->recs[gr->first].ev.subject);
            for (uint32_t i = gr->out_first; i < gr->out_first + gr->nout; i++)
                if (!b->outs[i].extra)
                    tf_inflight_remove(&p->inflight, b->outs[i].id);
            tf_pipeline_record_release(p, b, &b->recs[o->rec]);
            tf_pipeline_flush_offsets(p);
            return;
        }
        ids = b->ack_ids;
        /* Every destination of every event of the group has delivered. */
        for (uint32_t i = gr->out_first; i < gr->out_first + gr->nout; i++)
            if (!b->outs[i].extra)
                ids[n++] = b->outs[i].id;
        for (size_t i = 0; i < n; i++)
            tf_inflight_delivered(&p->inflight, ids[i]);
        /* Best effort: a leftover entry is only re-sent later, with the same id. */
        if (tf_store_outbox_ack(p->store, b->recs[gr->first].ev.subject, ids, n, on_outbox_acked, p) == TF_OK) {
            tf_inflight_ack_sent(&p->inflight);
        } else {
            for (size_t i = 0; i < n; i++)
                tf_inflight_remove(&p->inflight, ids[i]);
        }
    }
    tf_pipeline_record_release(p, b, &b->recs[o->rec]);
    tf_pipeline_flush_offsets(p);
}
