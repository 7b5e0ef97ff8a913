/* Tiers: the cutoffs of each partition's value ranking that the tier rules read.
 *
 * A customer is ranked among the buyers of its own input partition: customers are
 * spread over partitions by a hash of their id, so each partition's buyers are a
 * sample of the whole population, and a partition's ranking moves only with the
 * records of that partition, which are applied in offset order. That is what lets a
 * replay reach the same tier decisions whatever the batch size, the read-ahead, the
 * number of members or the speed of the feed.
 *
 * On the stream clock the cutoffs are fixed per period of stream time
 * (rules.tiers.stream_period_s). When a partition's stream first enters a period,
 * its boundary runs before the record that crossed it is taken: the records before
 * it are committed, the timers due before it fire (their care costs move values),
 * then the cutoffs are read from the ranking and kept in Redis under the period's
 * start, so a later owner of the partition reads the same ones. Rules evaluated at
 * time t use the cutoffs of t's period.
 *
 * On the wall clock the ranking is read again at most every rules.tiers.refresh_ms,
 * ahead of a batch's loads: tiers follow the population as it stands. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/clock.h"
#include "pipeline/internal.h"

#define MOD "tiers"
/* Periods remembered per partition: a timer firing late (a catch-up spread over
 * time) still finds the cutoffs of its due time's period. */
#define TIER_CUTS_MAX 1024

static const tf_population_t nobody = {
    .buyers = 0,
    .key_enter = INT64_MAX,
    .key_keep = INT64_MAX,
    .potential_enter = INT64_MAX,
    .potential_keep = INT64_MAX,
};

tf_population_t tf_tiers_at(const tf_pipeline_t *p, int slot, int64_t t, int64_t *from_ms)
{
    const slot_t *s = &p->slots[slot];
    *from_ms = INT64_MIN;
    if (s->ncuts == 0)
        return nobody;
    size_t lo = tf_clock_in_force(s->cuts, s->ncuts, sizeof(*s->cuts), t);
    *from_ms = s->cuts[lo].from_ms;
    tf_population_t pop = s->cuts[lo].pop;
    pop.self_ranked = 0;
    pop.self_value = 0;
    return pop;
}

void tf_tiers_next(const tf_pipeline_t *p, int slot, int64_t t, int64_t *next_from)
{
    const slot_t *s = &p->slots[slot];
    *next_from = INT64_MAX;
    if (s->ncuts == 0)
        return;
    size_t i = tf_clock_in_force(s->cuts, s->ncuts, sizeof(*s->cuts), t);
    if (s->cuts[i].from_ms > t) /* t before them all */
        *next_from = s->cuts[i].from_ms;
    else if (i + 1 < s->ncuts)
        *next_from = s->cuts[i + 1].from_ms;
}

static void cut_add(slot_t *s, int64_t from_ms, const tf_population_t *pop)
{
    if (s->ncuts > 0 && s->cuts[s->ncuts - 1].from_ms >= from_ms) {
        /* The wall clock rereads one period that never ends. */
        s->cuts[s->ncuts - 1].pop = *pop;
        return;
    }
    if (s->ncuts == TIER_CUTS_MAX) {
        memmove(s->cuts, s->cuts + 1, (s->ncuts - 1) * sizeof(*s->cuts));
        s->ncuts--;
    }
    if (s->ncuts == s->cuts_cap) {
        size_t cap = s->cuts_cap ? s->cuts_cap * 2 : 16;
        struct tier_cut *c = realloc(s->cuts, cap * sizeof(*c));
        if (!c) {
            TF_ERROR(MOD, "out of memory keeping the cutoffs of %s", s->tp);
            return;
        }
        s->cuts = c;
        s->cuts_cap = cap;
    }
    s->cuts[s->ncuts].from_ms = from_ms;
    s->cuts[s->ncuts].pop = *pop;
    s->ncuts++;
}

typedef struct {
    tf_pipeline_t *p;
    int slot;
    uint32_t gen;
    int64_t from_ms;
} cut_ref;

static void on_cutoffs(tf_store_t *st, int status, const tf_population_t *pop, void *opaque)
{
    cut_ref *ref = opaque;
    tf_pipeline_t *p = ref->p;
    slot_t *s = &p->slots[ref->slot];
    (void)st;
    if (s->gen == ref->gen) {
        s->cuts_asking = 0;
        if (status == TF_OK) {
            cut_add(s, ref->from_ms, pop);
            s->cuts_read_ms = tf_time_mono_ms();
            if (s->boundary == BOUNDARY_CUT) {
                char when[TF_TIME_RFC3339_LEN];
                tf_time_format_rfc3339(ref->from_ms, when);
                TF_INFO(MOD, "tier cutoffs of %s from %s: %lld buyers, key from %lld, potential from %lld", s->tp,
                        when, (long long)pop->buyers, (long long)pop->key_enter, (long long)pop->potential_enter);
                s->period_end_ms = ref->from_ms + p->tier_period_ms;
                s->boundary = BOUNDARY_NONE;
            }
        } else if (s->boundary == BOUNDARY_CUT) {
            s->boundary = BOUNDARY_DRAIN; /* Redis failed: start the boundary over */
        }
    }
    free(ref);
    if (status != TF_ECLOSED)
        tf_pipeline_pump(p);
}

static int ask_cutoffs(tf_pipeline_t *p, int slot, int64_t from_ms, int keep)
{
    slot_t *s = &p->slots[slot];
    const tf_config_rules *r = &p->cfg.rules;
    cut_ref *ref = malloc(sizeof(*ref));
    if (!ref)
        return TF_ENOMEM;
    ref->p = p;
    ref->slot = slot;
    ref->gen = s->gen;
    ref->from_ms = from_ms;
    int rc = tf_store_population(p->store, s->tp, keep, from_ms, r->key_share_pct, r->potential_share_pct,
                                 r->tier_hysteresis_pct, on_cutoffs, ref);
    if (rc != TF_OK) {
        free(ref);
        return rc;
    }
    s->cuts_asking = 1;
    return TF_OK;
}

void tf_tiers_refresh(tf_pipeline_t *p, batch_t *b)
{
    if (p->clock_stream)
        return;
    int64_t now = tf_time_mono_ms();
    for (uint32_t i = 0; i < b->nrecs; i++) {
        slot_t *s = &p->slots[b->recs[i].slot];
        if (b->recs[i].status == REC_DLQ || !s->active || s->cuts_asking ||
            (s->ncuts && now - s->cuts_read_ms < p->cfg.rules.tier_refresh_ms))
            continue;
        /* Sent ahead of the loads on the same connection: its reply is in first. */
        ask_cutoffs(p, b->recs[i].slot, INT64_MIN, 0);
    }
}

int tf_tiers_crosses(tf_pipeline_t *p, int slot, int64_t t)
{
    slot_t *s = &p->slots[slot];
    if (!p->clock_stream ||
        !tf_clock_opens_period(t, s->period_end_ms, s->ncuts > 0, s->ncuts ? s->cuts[s->ncuts - 1].from_ms : 0,
                               p->tier_period_ms))
        return 0;
    s->boundary = BOUNDARY_DRAIN;
    s->boundary_ms = tf_clock_period_start(t, p->tier_period_ms);
    s->boundary_idle_rounds = 0;
    s->boundary_first[0] = '\0';
    return 1;
}

static int redis_busy(const tf_pipeline_t *p)
{
    for (int i = 0; i < TF_PIPELINE_BATCHES; i++)
        if (p->batches[i].state == B_FILLED || p->batches[i].state == B_REDIS)
            return 1;
    return 0;
}

static void on_boundary_scan(tf_pipeline_t *p, int slot, long n, const char *first)
{
    slot_t *s = &p->slots[slot];
    TF_DEBUG(MOD, "boundary of %s at %lld: %ld due before it", s->tp, (long long)s->boundary_ms, n);
    if (s->boundary != BOUNDARY_SCAN)
        return;
    if (n < 0) {
        s->boundary = BOUNDARY_DRAIN; /* ask again */
        return;
    }
    if (n == 0) {
        s->boundary = BOUNDARY_CUT;
        return;
    }
    /* A customer that stays first after its visits (an index entry that no visit
     * serves) would hold the partition forever; a visit that fires a timer moves
     * the customer on, even when the timer derives nothing. */
    if (first) { /* visited this round: the queue had room for it */
        s->boundary_idle_rounds = strcmp(first, s->boundary_first) == 0 ? s->boundary_idle_rounds + 1 : 0;
        tf_strlcpy(s->boundary_first, first, sizeof(s->boundary_first));
    }
    if (s->boundary_idle_rounds >= 3) {
        TF_WARN(MOD, "%s: customer %s stays due before the period's start though visited; reading the cutoffs "
                     "anyway",
                s->tp, first);
        s->boundary = BOUNDARY_CUT;
        return;
    }
    s->boundary = BOUNDARY_FIRING;
}

int tf_tiers_boundary_step(tf_pipeline_t *p)
{
    if (!p->held)
        return 0;
    slot_t *s = &p->slots[p->held_slot];
    if (!tf_store_is_up(p->store) || p->epoch == 0)
        return 0;
    switch (s->boundary) {
    case BOUNDARY_NONE:
        return 1;
    case BOUNDARY_FIRING:
        /* Timers queued by the scan fire in batches of their own; then look again
         * (a firing can schedule another timer before the boundary). */
        if (s->timers_queued || redis_busy(p))
            return 0;
        s->boundary = BOUNDARY_DRAIN;
        /* fall through */
    case BOUNDARY_DRAIN:
        if (s->timers_queued || s->scanning || redis_busy(p))
            return 0;
        if (p->timer_cap == p->timer_len)
            return 0;
        s->boundary = BOUNDARY_SCAN;
        if (tf_timers_scan_slot(p, p->held_slot, s->boundary_ms - 1, p->timer_cap - p->timer_len,
                                on_boundary_scan) != TF_OK)
            s->boundary = BOUNDARY_DRAIN;
        return 0;
    case BOUNDARY_CUT:
        if (!s->cuts_asking && ask_cutoffs(p, p->held_slot, s->boundary_ms, 1) != TF_OK)
            return 0;
        return 0;
    default:
        return 0;
    }
}

void tf_tiers_slot_reset(tf_pipeline_t *p, int slot)
{
    slot_t *s = &p->slots[slot];
    /* A new owner reads the cutoffs again: another member may have run periods
     * meanwhile (they are kept in Redis by period). */
    s->ncuts = 0;
    s->cuts_asking = 0;
    s->cuts_read_ms = 0;
    s->period_end_ms = 0;
    s->boundary = BOUNDARY_NONE;
    if (p->held && p->held_slot == slot) {
        rd_kafka_message_destroy(p->held);
        p->held = NULL;
    }
}

void tf_tiers_slot_free(slot_t *s)
{
    free(s->cuts);
    s->cuts = NULL;
    s->ncuts = s->cuts_cap = 0;
}
