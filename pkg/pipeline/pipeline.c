/* The pipeline's control: assignment and epochs, Redis availability, taking and
 * decoding records, dead letters, retries and the drain on stop. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "pipeline/internal.h"

#define MOD "pipeline"

static void on_readable(tf_consumer_t *c, void *opaque);
static void on_rebalance(tf_consumer_t *c, tf_rebalance_kind kind, const rd_kafka_topic_partition_list_t *parts,
                         void *opaque);
static void on_store_state(tf_store_t *st, int up, void *opaque);
static void on_epoch(tf_store_t *st, int status, int64_t epoch, void *opaque);
static void on_tick(evutil_socket_t fd, short what, void *arg);
static void on_retry(evutil_socket_t fd, short what, void *arg);
static void check_drained(tf_pipeline_t *p);

/* ---- partitions ---- */

static int slot_find(tf_pipeline_t *p, const char *topic, int32_t partition)
{
    for (int i = 0; i < p->nslots; i++)
        if (p->slots[i].partition == partition && strcmp(p->slots[i].topic, topic) == 0)
            return i;
    return -1;
}

static int slot_get(tf_pipeline_t *p, const char *topic, int32_t partition)
{
    int i = slot_find(p, topic, partition);
    if (i >= 0 || p->nslots == TF_PIPELINE_MAX_SLOTS)
        return i;
    slot_t *s = &p->slots[p->nslots];
    memset(s, 0, sizeof(*s));
    tf_strlcpy(s->topic, topic, sizeof(s->topic));
    s->partition = partition;
    snprintf(s->tp, sizeof(s->tp), "%s/%d", topic, (int)partition);
    return p->nslots++;
}

static void state_lost(tf_pipeline_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void state_lost(tf_pipeline_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->stats.state_lost_detail, sizeof(p->stats.state_lost_detail), fmt, ap);
    va_end(ap);
    p->stats.state_lost++;
    p->stats.state_lost_at_ms = tf_time_now_ms();
    TF_ERROR(MOD, "redis lost data: %s; rebuild it from the input topics (see README, Recovery)",
             p->stats.state_lost_detail);
}

/* A fresh epoch counter is normal on the first run, when the group reads its
 * partitions from their start; a group that resumes a partition further on had
 * state for what came before. */
static void check_resumed(tf_pipeline_t *p, int slot)
{
    slot_t *s = &p->slots[slot];
    /* A rebuild starts where it is told, into a prefix it fills itself. */
    if (p->cfg.rebuild || !p->epoch_fresh || !s->active || s->first_offset < 0 || s->resume_checked)
        return;
    int64_t lo = -1, hi = -1;
    tf_consumer_watermarks(p->consumer, s->topic, s->partition, &lo, &hi);
    if (lo < 0)
        return; /* librdkafka learns it from its statistics: the tick asks again */
    s->resume_checked = 1;
    if (s->first_offset > lo)
        state_lost(p, "Redis holds no touchflow state, but the consumer group resumes %s at offset %lld "
                      "(it starts at %lld): the state of customers before that offset is gone",
                   s->tp, (long long)s->first_offset, (long long)lo);
}

static void ask_epoch(tf_pipeline_t *p)
{
    if (p->epoch_asking || !p->assigned || !tf_store_is_up(p->store))
        return;
    if (tf_store_next_epoch(p->store, on_epoch, p) == TF_OK)
        p->epoch_asking = 1;
}

static void on_epoch(tf_store_t *st, int status, int64_t epoch, void *opaque)
{
    tf_pipeline_t *p = opaque;
    (void)st;
    p->epoch_asking = 0;
    if (status != TF_OK) {
        ask_epoch(p);
        return;
    }
    if (!p->assigned)
        return;
    /* The counter only grows while Redis keeps its data: one that went back, or
     * was just created while the group resumes mid-partition, means the state of
     * customers is gone (a restart without persistence, a flush, a failover to a
     * replica that was behind). Processing goes on; the loss is reported. */
    if (epoch <= p->epoch_high)
        state_lost(p, "the epoch counter is at %lld, not above the %lld it had reached (a restart without "
                      "persistence, a flush, or a failover to a replica that was behind): customers' state may be gone",
                   (long long)epoch, (long long)p->epoch_high);
    if (epoch > p->epoch_high)
        p->epoch_high = epoch;
    p->epoch_fresh = epoch == 1;
    p->epoch = epoch;
    TF_INFO(MOD, "owning the assignment with epoch %lld", (long long)epoch);
    for (int i = 0; i < p->nslots; i++)
        check_resumed(p, i);
    tf_pipeline_pump(p);
}

static void on_rebalance(tf_consumer_t *c, tf_rebalance_kind kind, const rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    tf_pipeline_t *p = opaque;
    (void)c;
    p->stats.rebalances++;
    /* Customers of partitions we lose may be written by their next owner. */
    tf_cache_clear(p->cache);
    for (int i = 0; i < parts->cnt; i++) {
        int s = slot_get(p, parts->elems[i].topic, parts->elems[i].partition);
        if (s < 0) {
            TF_ERROR(MOD, "too many partitions: %s [%d] ignored", parts->elems[i].topic,
                     (int)parts->elems[i].partition);
            continue;
        }
        slot_t *sl = &p->slots[s];
        /* A new generation either way: records taken under the old one stop
         * counting for offsets. */
        sl->gen++;
        sl->fenced = 0;
        sl->first_offset = -1;
        sl->resume_checked = 0;
        sl->active = kind == TF_REBALANCE_ASSIGN;
        tf_offsets_reset(p->offsets, s);
        tf_timers_slot_reset(p, s);
        tf_tiers_slot_reset(p, s);
        tf_rebuild_assigned(p, s, parts->elems[i].offset);
    }
    if (kind == TF_REBALANCE_ASSIGN) {
        p->assigned = 1;
        p->epoch = 0; /* a new assignment writes under a new epoch */
        ask_epoch(p);
        /* A new assignment starts unpaused in librdkafka. */
        if (p->consumer_paused)
            tf_consumer_pause(p->consumer, 1);
    } else {
        p->assigned = 0;
        p->epoch = 0;
        /* Drop what was polled for the revoked partitions and not yet taken. */
        for (size_t i = p->stash_head; i < p->nstash; i++)
            rd_kafka_message_destroy(p->stash[i]);
        p->nstash = p->stash_head = 0;
    }
}

/* ---- Redis availability ---- */

/* The consumer is paused while Redis is down, the batch at the front keeps
 * failing or no record could be taken for a while (deliveries outstanding); it
 * is still polled meanwhile (poll_only), so the group keeps us and broker errors
 * are still heard. */
static void refresh_pause(tf_pipeline_t *p)
{
    int want = p->paused || p->stats.redis_failing || p->stalled;
    if (want == p->consumer_paused || !p->consumer)
        return;
    p->consumer_paused = want;
    tf_consumer_pause(p->consumer, want);
    if (!want)
        tf_rebuild_resumed(p);
    TF_INFO(MOD, "%s consumption", want ? "pausing" : "resuming");
}

static void set_paused(tf_pipeline_t *p, int paused)
{
    if (p->paused == paused)
        return;
    p->paused = paused;
    p->stats.paused = paused;
    refresh_pause(p);
}

void tf_pipeline_redis_failing(tf_pipeline_t *p, int failing)
{
    if (p->stats.redis_failing == failing)
        return;
    p->stats.redis_failing = failing;
    if (!failing)
        TF_INFO(MOD, "redis answers again: the batch went through");
    refresh_pause(p);
}

static void on_store_state(tf_store_t *st, int up, void *opaque)
{
    tf_pipeline_t *p = opaque;
    (void)st;
    /* Whatever Redis holds after an outage (a restart, a failover) is read again. */
    tf_cache_clear(p->cache);
    set_paused(p, !up);
    if (up) {
        ask_epoch(p);
        tf_pipeline_pump(p);
    }
}

/* ---- taking records ---- */

static int stash_push(tf_pipeline_t *p, rd_kafka_message_t *m)
{
    if (p->stash_head == p->nstash)
        p->stash_head = p->nstash = 0;
    if (p->nstash == p->stash_cap) {
        size_t cap = p->stash_cap ? p->stash_cap * 2 : 1024;
        rd_kafka_message_t **s = realloc(p->stash, cap * sizeof(*s));
        if (!s)
            return TF_ENOMEM;
        p->stash = s;
        p->stash_cap = cap;
    }
    p->stash[p->nstash++] = m;
    return TF_OK;
}

static rd_kafka_message_t *next_message(tf_pipeline_t *p)
{
    if (p->held) {
        /* Nothing overtakes a record waiting for its partition's boundary. */
        if (!tf_tiers_boundary_step(p))
            return NULL;
        rd_kafka_message_t *m = p->held;
        p->held = NULL;
        return m;
    }
    if (p->stash_head < p->nstash)
        return p->stash[p->stash_head++];
    return tf_consumer_poll(p->consumer);
}

static void add_header(rd_kafka_headers_t *h, const char *name, const char *value)
{
    rd_kafka_header_add(h, name, -1, value, -1);
}

/* What is left of a record Kafka refused as too large in the dead-letter topic:
 * enough to recognise it; the headers say where the whole one is. */
#define DLQ_TRUNCATED_BYTES 1024

void tf_pipeline_send_dlq(tf_pipeline_t *p, batch_t *b, record_t *r)
{
    if (p->cfg.rebuild) {
        /* The first run sent it: a rebuild only counts it. */
        p->stats.suppressed++;
        tf_pipeline_record_release(p, b, r);
        return;
    }
    rd_kafka_message_t *m = r->dlq_msg;
    rd_kafka_headers_t *orig = NULL, *h;
    char num[32], when[TF_TIME_RFC3339_LEN];
    size_t len = m->len;
    (void)b;
    if (rd_kafka_message_headers(m, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR)
        h = rd_kafka_headers_copy(orig);
    else
        h = rd_kafka_headers_new(8);
    add_header(h, "tf-error-code", tf_event_error_code(r->dlq_error));
    add_header(h, "tf-error-detail", r->dlq_detail);
    add_header(h, "tf-source-topic", rd_kafka_topic_name(m->rkt));
    snprintf(num, sizeof(num), "%d", (int)m->partition);
    add_header(h, "tf-source-partition", num);
    snprintf(num, sizeof(num), "%lld", (long long)m->offset);
    add_header(h, "tf-source-offset", num);
    tf_time_format_rfc3339(tf_time_now_ms(), when);
    add_header(h, "tf-failed-at", when);
    if (r->dlq_truncated) {
        snprintf(num, sizeof(num), "%zu", m->len);
        add_header(h, "tf-truncated", num); /* the original length */
        if (len > DLQ_TRUNCATED_BYTES)
            len = DLQ_TRUNCATED_BYTES;
    }
    int rc = tf_producer_send(p->producer, p->cfg.dlq_topic, m->key, m->key_len, m->payload, len, h, &r->ref);
    if (rc == TF_EINVAL && !r->dlq_truncated) {
        rd_kafka_headers_destroy(h);
        tf_pipeline_dlq_too_large(p, b, r);
        return;
    }
    if (rc) {
        rd_kafka_headers_destroy(h);
        if (rc == TF_EINVAL) {
            /* Refused even cut short: never loop on it. The record stays in its
             * topic (retention permitting); its offset moves on. */
            TF_ERROR(MOD, "dead letter of %s [%d] @%lld refused even truncated; skipped", rd_kafka_topic_name(m->rkt),
                     (int)m->partition, (long long)m->offset);
            tf_pipeline_record_release(p, b, r);
            return;
        }
        p->stats.delivery_retries++;
        tf_pipeline_defer_send(p, &r->ref);
    }
}

void tf_pipeline_dlq_too_large(tf_pipeline_t *p, batch_t *b, record_t *r)
{
    rd_kafka_message_t *m = r->dlq_msg;
    TF_WARN(MOD, "dead letter of %s [%d] @%lld (%zu bytes) refused as too large; sending its first %d bytes",
            rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset, m->len, DLQ_TRUNCATED_BYTES);
    r->dlq_truncated = 1;
    p->stats.dlq_truncated++;
    tf_pipeline_send_dlq(p, b, r);
}

static int key_is_subject(const rd_kafka_message_t *m, const char *subject)
{
    size_t n = strlen(subject);
    return m->key && m->key_len == n && memcmp(m->key, subject, n) == 0;
}

/* Decodes m into the batch; returns 1 when the record joined a customer group that
 * is now full (close the batch), else 0. */
static int take_record(tf_pipeline_t *p, batch_t *b, rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    int s = slot_find(p, topic, m->partition);
    if (s < 0 || !p->slots[s].active || p->slots[s].fenced || tf_rebuild_past_stop(p, s, m->offset)) {
        rd_kafka_message_destroy(m);
        return 0;
    }
    uint32_t idx = b->nrecs;
    record_t *r = &b->recs[idx];
    tf_event_header hdrs[32];
    size_t nh = 0;
    rd_kafka_headers_t *kh = NULL;
    if (rd_kafka_message_headers(m, &kh) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t len;
        for (size_t i = 0; nh < 32 && rd_kafka_header_get_all(kh, i, &name, &val, &len) == 0; i++) {
            hdrs[nh].name = name;
            hdrs[nh].value = val;
            hdrs[nh].value_len = len;
            nh++;
        }
    }
    tf_event_error err = tf_event_decode(&p->limits, m->payload, m->len, hdrs, nh, tf_time_now_ms(), &r->ev,
                                         r->dlq_detail, sizeof(r->dlq_detail));
    if (err == TF_EV_OK && p->key_check && !key_is_subject(m, r->ev.subject)) {
        /* Keyed otherwise, the customer's records land on other partitions too:
         * two owners would apply them, out of order, and fence each other. */
        err = TF_EV_KEY_MISMATCH;
        if (m->key_len == 0)
            snprintf(r->dlq_detail, sizeof(r->dlq_detail), "key: none, but records must be keyed by their subject \"%s\"",
                     r->ev.subject);
        else
            snprintf(r->dlq_detail, sizeof(r->dlq_detail), "key: \"%.*s\" is not the subject \"%s\"",
                     (int)(m->key_len < 64 ? m->key_len : 64), (const char *)m->key, r->ev.subject);
    }
    if (err == TF_EV_OK && tf_tiers_crosses(p, s, r->ev.time_ms)) {
        /* It opens a new period of stream time: it waits (untracked) until the
         * period's boundary has run, and closes this batch. */
        p->held = m;
        p->held_slot = s;
        p->held_time_ms = r->ev.time_ms;
        return 1;
    }
    if (p->slots[s].first_offset < 0) {
        p->slots[s].first_offset = m->offset;
        if (p->epoch > 0)
            check_resumed(p, s);
    }
    int64_t ticket = tf_offsets_track(p->offsets, s, m->offset);
    if (ticket < 0) {
        /* An offset at or below one in flight: a re-fetch after seek; already taken. */
        rd_kafka_message_destroy(m);
        return 0;
    }
    b->nrecs++;
    r->ref.kind = SEND_DLQ;
    r->ref.batch = b;
    r->ref.index = idx;
    r->slot = s;
    r->slot_gen = p->slots[s].gen;
    r->offset = m->offset;
    r->ticket = ticket;
    r->timestamp_ms = rd_kafka_message_timestamp(m, NULL);
    r->taken_us = tf_time_mono_us();
    r->pending = 1;
    r->is_timer = 0;
    r->dlq_msg = NULL;
    r->dlq_truncated = 0;
    b->remaining++;
    p->stats.consumed++;
    p->stats.inflight++;

    if (err == TF_EV_OK) {
        /* Kept until the batch is recycled: a customer whose state Redis refuses
         * sends its records to the dead-letter topic as they came. */
        r->dlq_msg = m;
        r->status = REC_PENDING;
        r->is_timer = 0;
        /* The highest event time read from the partition: the batch's rules may
         * run up to it, since every record before it is applied first. */
        if (r->ev.time_ms > p->slots[s].stream_ms)
            p->slots[s].stream_ms = r->ev.time_ms;
        b->slot_clock[s] = p->slots[s].stream_ms;
        r->stream_at_ms = p->slots[s].stream_ms;
        /* CloudEvents makes (source, id) unique, not id alone: two channels may
         * use the same ids. */
        const char *identity[2] = {r->ev.source, r->ev.id};
        tf_id_derive(r->dedup, identity, 2);
        if (r->ev.time_ms < b->slot_min[s])
            b->slot_min[s] = r->ev.time_ms;
        return tf_batch_group_add(b, idx) >= TF_PIPELINE_MAX_GROUP;
    }
    TF_DEBUG(MOD, "dead letter %s [%d] @%lld: %s: %s", topic, (int)m->partition, (long long)m->offset,
             tf_event_error_code(err), r->dlq_detail);
    r->status = REC_DLQ;
    r->dlq_msg = m;
    r->dlq_error = err;
    p->stats.dead_lettered++;
    if ((unsigned)err < 16)
        p->stats.dlq_by_reason[err]++;
    tf_pipeline_send_dlq(p, b, r);
    return 0;
}

static batch_t *free_batch(tf_pipeline_t *p)
{
    for (int i = 0; i < TF_PIPELINE_BATCHES; i++)
        if (p->batches[i].state == B_FREE)
            return &p->batches[i];
    return NULL;
}

static batch_t *oldest_filled(tf_pipeline_t *p)
{
    batch_t *best = NULL;
    for (int i = 0; i < TF_PIPELINE_BATCHES; i++) {
        batch_t *b = &p->batches[i];
        if (b->state == B_FILLED && (!best || b->seq < best->seq))
            best = b;
    }
    return best;
}

/* Fills one batch from Kafka. Returns 1 when it took at least one record. */
static int fill_batch(tf_pipeline_t *p, batch_t *b)
{
    uint32_t cap = (uint32_t)p->cfg.batch_max;
    /* Due timers first: their customers were waiting longest. */
    tf_timers_take(p, b, cap / 2 > 0 ? cap / 2 : 1);
    while (b->nrecs < cap && p->stats.inflight < (uint64_t)p->cfg.max_inflight) {
        rd_kafka_message_t *m = next_message(p);
        if (!m)
            break;
        if (take_record(p, b, m))
            break;
    }
    p->polled_mono_ms = tf_time_mono_ms();
    if (b->nrecs == 0)
        return 0;
    b->seq = p->next_seq++;
    b->state = B_FILLED;
    /* A batch of dead letters only: nothing for Redis, it completes on delivery. */
    if (b->ngroups == 0) {
        b->state = B_DELIVERING;
        b->remaining++;
        tf_pipeline_batch_unref(p, b);
    }
    return 1;
}

/* Serves rebalances and errors while no record can be taken; a record that still
 * arrives (polled before a pause took effect) is kept for later. */
static void poll_only(tf_pipeline_t *p)
{
    rd_kafka_message_t *m;
    p->polled_mono_ms = tf_time_mono_ms();
    while ((m = tf_consumer_poll(p->consumer)) != NULL)
        if (stash_push(p, m) != TF_OK)
            rd_kafka_message_destroy(m);
}

void tf_pipeline_pump(tf_pipeline_t *p)
{
    /* Completions call back into pump; one level of work is enough. */
    if (p->pump_depth)
        return;
    p->pump_depth++;
    if (p->stalled && free_batch(p) && p->stats.inflight < (uint64_t)p->cfg.max_inflight) {
        p->stalled = 0;
        refresh_pause(p);
    }
    for (;;) {
        int progressed = 0;
        batch_t *b;
        if (p->held && !p->stopping)
            tf_tiers_boundary_step(p);
        int can_redis = tf_store_is_up(p->store) && p->epoch > 0 && !p->retry_armed;
        if ((!p->redis_batch || tf_pipeline_can_preload(p)) && can_redis && (b = oldest_filled(p)) != NULL) {
            tf_pipeline_start_redis(p, b);
            progressed = 1;
        }
        if (!p->stopping && !p->paused && p->assigned && !oldest_filled(p) && (b = free_batch(p)) != NULL &&
            p->stats.inflight < (uint64_t)p->cfg.max_inflight) {
            if (fill_batch(p, b))
                progressed = 1;
        }
        if (!progressed)
            break;
    }
    /* Only while paused or unassigned: polling under backpressure would move
     * librdkafka's bounded prefetch into an unbounded stash. */
    if (!p->stopping && (p->paused || p->stats.redis_failing || p->stalled || !p->assigned))
        poll_only(p);
    p->pump_depth--;
    check_drained(p);
}

static void on_readable(tf_consumer_t *c, void *opaque)
{
    (void)c;
    tf_pipeline_pump(opaque);
}

/* ---- retries ---- */

void tf_pipeline_schedule_retry(tf_pipeline_t *p)
{
    if (p->retry_armed || p->stopping)
        return;
    p->retry_delay_ms = p->retry_delay_ms ? p->retry_delay_ms * 2 : p->cfg.redis_backoff_min_ms;
    if (p->retry_delay_ms > p->cfg.redis_backoff_max_ms)
        p->retry_delay_ms = p->cfg.redis_backoff_max_ms;
    struct timeval tv = {(time_t)(p->retry_delay_ms / 1000), (suseconds_t)(p->retry_delay_ms % 1000) * 1000};
    p->retry_armed = 1;
    evtimer_add(p->retry_timer, &tv);
}

void tf_pipeline_defer_send(tf_pipeline_t *p, send_ref *ref)
{
    if (p->nresend == p->resend_cap) {
        size_t cap = p->resend_cap ? p->resend_cap * 2 : 64;
        send_ref **r = realloc(p->resend, cap * sizeof(*r));
        if (!r) {
            TF_ERROR(MOD, "out of memory queueing a resend");
            return;
        }
        p->resend = r;
        p->resend_cap = cap;
    }
    p->resend[p->nresend++] = ref;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    tf_pipeline_t *p = arg;
    (void)fd, (void)what;
    p->retry_armed = 0;
    tf_pipeline_pump(p);
}

/* Unpolled, the consumer would be dropped from the group after
 * max.poll.interval.ms and stop hearing the broker; so once no record has
 * been taken for a while (every batch waiting on deliveries), it is paused and
 * polled on until there is room again. Not sooner: pausing drops librdkafka's
 * prefetch, which at full speed would cost a refetch per batch. */
#define STALL_MS 1000

static void check_stalled(tf_pipeline_t *p)
{
    if (p->stalled || p->stopping || !p->assigned || tf_time_mono_ms() - p->polled_mono_ms < STALL_MS)
        return;
    p->stalled = 1;
    TF_WARN(MOD, "no record could be taken for %d ms (%llu in flight): pausing consumption until there is room",
            STALL_MS, (unsigned long long)p->stats.inflight);
    refresh_pause(p);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    tf_pipeline_t *p = arg;
    (void)fd, (void)what;
    /* Re-send what could not be queued or delivered, oldest first. */
    size_t n = p->nresend;
    p->nresend = 0;
    for (size_t i = 0; i < n; i++)
        tf_pipeline_resend(p, p->resend[i]);
    if (p->epoch_fresh && p->epoch > 0)
        for (int i = 0; i < p->nslots; i++)
            check_resumed(p, i);
    check_stalled(p);
    tf_pipeline_pump(p);
    tf_rebuild_check(p);
}

/* ---- stop ---- */

static void check_drained(tf_pipeline_t *p)
{
    if (!p->stopping || !p->stop_done)
        return;
    int busy = 0;
    for (int i = 0; i < TF_PIPELINE_BATCHES; i++)
        if (p->batches[i].state == B_REDIS || p->batches[i].state == B_DELIVERING)
            busy = 1;
    int timed_out = tf_time_mono_ms() >= p->stop_deadline_ms;
    if (busy && !timed_out)
        return;
    void (*done)(int, void *) = p->stop_done;
    p->stop_done = NULL;
    tf_pipeline_flush_offsets(p);
    tf_consumer_commit_sync(p->consumer);
    if (timed_out && busy)
        TF_WARN(MOD, "stop timed out with work in flight; it will be redelivered");
    done(!busy, p->stop_arg);
}

void tf_pipeline_stop(tf_pipeline_t *p, int64_t timeout_ms, void (*done)(int drained, void *arg), void *arg)
{
    p->stopping = 1;
    p->stop_deadline_ms = tf_time_mono_ms() + timeout_ms;
    p->stop_done = done;
    p->stop_arg = arg;
    TF_INFO(MOD, "stopping: draining in-flight work");
    /* Batches filled but not yet sent to Redis are given up: never stored, they are
     * read again by whoever owns the partition next. */
    for (int i = 0; i < TF_PIPELINE_BATCHES; i++) {
        batch_t *b = &p->batches[i];
        if (b->state != B_FILLED)
            continue;
        for (uint32_t r = 0; r < b->nrecs; r++)
            if (b->recs[r].status != REC_DLQ)
                b->recs[r].status = REC_DROPPED;
        b->state = B_DELIVERING;
        b->remaining++;
        for (uint32_t r = 0; r < b->nrecs; r++)
            if (b->recs[r].status != REC_DLQ)
                tf_pipeline_record_release(p, b, &b->recs[r]);
        tf_pipeline_batch_unref(p, b);
    }
    check_drained(p);
}

/* ---- construction ---- */

tf_pipeline_t *tf_pipeline_new(struct event_base *base, const tf_config_t *cfg, const char *brokers, char *err,
                               size_t errsize)
{
    tf_pipeline_t *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    p->base = base;
    p->cfg = *cfg;
    tf_event_limits_default(&p->limits);
    p->limits.max_record_bytes = (size_t)cfg->max_record_bytes;
    p->limits.max_id_bytes = (size_t)cfg->max_id_bytes;
    p->limits.max_depth = (int)cfg->max_depth;
    p->limits.max_future_skew_ms = cfg->max_future_skew_s * TF_MS_PER_SEC;
    p->limits.max_amount = cfg->max_amount;
    p->key_check = strcmp(cfg->key_mismatch, "dead_letter") == 0;
    p->rebuild_quiet = cfg->rebuild && !cfg->rebuild_emit;
    tf_route_table_build(cfg, &p->routes);

    p->offsets = tf_offsets_new();
    p->tick = event_new(base, -1, EV_PERSIST, on_tick, p);
    p->retry_timer = evtimer_new(base, on_retry, p);
    if (!p->offsets || !p->tick || !p->retry_timer) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    for (int i = 0; i < TF_PIPELINE_BATCHES; i++) {
        if (tf_batch_init(&p->batches[i], p, (uint32_t)cfg->batch_max) != TF_OK) {
            snprintf(err, errsize, "out of memory for batches");
            goto fail;
        }
    }
    tf_store_opts so = {
        .url = cfg->redis_url,
        .key_prefix = cfg->key_prefix,
        .timeout_ms = cfg->redis_timeout_ms,
        .backoff_min_ms = cfg->redis_backoff_min_ms,
        .backoff_max_ms = cfg->redis_backoff_max_ms,
        .dedup_window_ms = cfg->dedup_window_s * TF_MS_PER_SEC,
    };
    p->store = tf_store_new(base, &so, on_store_state, p, err, errsize);
    if (!p->store)
        goto fail;
    if (!(p->cache = tf_cache_new((size_t)cfg->cache_mb << 20))) {
        snprintf(err, errsize, "out of memory for the customer cache");
        goto fail;
    }
    if (tf_pipeline_figures_init(p) != TF_OK) {
        snprintf(err, errsize, "out of memory for the figures");
        goto fail;
    }
    if (tf_timers_init(p) != TF_OK) {
        snprintf(err, errsize, "out of memory for timers");
        goto fail;
    }
    p->producer = tf_producer_new(base, cfg, brokers, tf_pipeline_on_delivery, p, err, errsize);
    if (!p->producer)
        goto fail;
    /* Until Redis answers, nothing can be committed: start paused. */
    p->paused = 1;
    p->stats.paused = 1;
    p->consumer_paused = 1;
    tf_consumer_handlers h = {on_readable, on_rebalance, p};
    p->consumer = tf_consumer_new(base, cfg, brokers, &h, err, errsize);
    if (!p->consumer)
        goto fail;
    struct timeval tv = {0, 200 * 1000};
    event_add(p->tick, &tv);
    p->progress_mono_ms = p->polled_mono_ms = tf_time_mono_ms();
    return p;
fail:
    tf_pipeline_destroy(p);
    return NULL;
}

const double tf_hist_bounds_s[TF_HIST_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

void tf_histogram_observe(tf_histogram *h, double seconds)
{
    int i = 0;
    while (i < TF_HIST_BUCKETS && seconds > tf_hist_bounds_s[i])
        i++;
    if (i < TF_HIST_BUCKETS)
        h->buckets[i]++;
    h->count++;
    h->sum_s += seconds;
}

void tf_pipeline_snapshot_get(tf_pipeline_t *p, tf_pipeline_snapshot *out)
{
    memset(out, 0, offsetof(tf_pipeline_snapshot, partitions));
    tf_pipeline_get_stats(p, &out->stats);
    memcpy(out->events_by_kind, p->events_by_kind, sizeof(out->events_by_kind));
    out->processing = p->processing;
    out->redis_rtt = p->redis_rtt;
    out->redis_reconnects = tf_store_reconnects(p->store);
    out->redis_redirects = tf_store_redirects(p->store);
    out->assigned = p->assigned;
    out->idle_ms = tf_time_mono_ms() - p->progress_mono_ms;
    out->timers_fired = p->timers_fired;
    out->timers_due = 0; /* queued or in a batch, per partition */
    for (int i = 0; i < p->nslots; i++)
        if (p->slots[i].active)
            out->timers_due += p->slots[i].timers_pending;
    out->redis_up = tf_store_is_up(p->store);
    out->kafka_up = p->consumer ? tf_consumer_kafka_up(p->consumer) : 0;
    out->nsubscriptions = p->routes.n;
    for (size_t i = 0; i < p->routes.n; i++) {
        tf_strlcpy(out->subscriptions[i].name, p->routes.subs[i].name, sizeof(out->subscriptions[i].name));
        out->subscriptions[i].enabled = p->routes.subs[i].enabled;
        out->subscriptions[i].sent = p->sub_sent[i];
    }
    for (int i = 0; i < p->nslots && out->npartitions < TF_SNAPSHOT_MAX_PARTITIONS; i++) {
        const slot_t *s = &p->slots[i];
        if (!s->active || !p->consumer)
            continue;
        tf_partition_status *ps = &out->partitions[out->npartitions++];
        tf_consumer_partition_info info;
        tf_consumer_partition_info_get(p->consumer, s->topic, s->partition, &info);
        tf_strlcpy(ps->topic, s->topic, sizeof(ps->topic));
        ps->partition = s->partition;
        ps->position = info.position;
        ps->committed = info.committed;
        ps->high_watermark = info.high_watermark;
        ps->lag = info.lag;
        ps->lag_from_stats = info.lag_from_stats;
        /* Without statistics the fallback is measured from librdkafka's position,
         * which is past records taken but not yet done: count those as behind. */
        int64_t low = tf_offsets_low_water(p->offsets, i);
        if (!info.lag_from_stats && low >= 0 && info.high_watermark >= 0)
            ps->lag = info.high_watermark - low;
        ps->paused = p->paused;
        ps->inflight = tf_offsets_inflight(p->offsets, i);
    }
}

void tf_pipeline_get_stats(tf_pipeline_t *p, tf_pipeline_stats *out)
{
    tf_pipeline_latency_quantiles(p);
    p->stats.producer_rebuilds = p->producer ? tf_producer_rebuilds(p->producer) : 0;
    if (p->cache) {
        tf_cache_stats cs = tf_cache_get_stats(p->cache);
        p->stats.cache_entries = cs.entries;
        p->stats.cache_bytes = cs.bytes;
    }
    *out = p->stats;
}

void tf_pipeline_destroy(tf_pipeline_t *p)
{
    if (!p)
        return;
    p->stopping = 1;
    /* Reverse order of creation: the consumer leaves (final revoke, commit), the
     * producer flushes what is queued, then Redis goes. */
    tf_consumer_destroy(p->consumer);
    p->consumer = NULL;
    if (p->producer && tf_producer_flush(p->producer, 5000) > 0)
        TF_WARN(MOD, "messages still undelivered at exit; their records are redelivered");
    tf_producer_destroy(p->producer);
    tf_store_destroy(p->store); /* a figures read in flight ends here */
    tf_pipeline_figures_free(p);
    tf_cache_free(p->cache);
    tf_rebuild_free(p);
    tf_inflight_free(&p->inflight);
    if (p->held)
        rd_kafka_message_destroy(p->held);
    for (int i = 0; i < TF_PIPELINE_MAX_SLOTS; i++)
        tf_tiers_slot_free(&p->slots[i]);
    for (size_t i = p->stash_head; i < p->nstash; i++)
        rd_kafka_message_destroy(p->stash[i]);
    free(p->stash);
    free(p->resend);
    for (int i = 0; i < TF_PIPELINE_BATCHES; i++) {
        if (p->batches[i].recs)
            for (uint32_t r = 0; r < p->batches[i].nrecs; r++)
                if (p->batches[i].recs[r].dlq_msg)
                    rd_kafka_message_destroy(p->batches[i].recs[r].dlq_msg);
        tf_batch_free(&p->batches[i]);
    }
    tf_timers_free(p);
    if (p->tick)
        event_free(p->tick);
    if (p->retry_timer)
        event_free(p->retry_timer);
    tf_offsets_destroy(p->offsets);
    free(p);
}
