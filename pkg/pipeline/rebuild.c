/* rebuild: the pipeline in rebuild mode (touchflowd --rebuild-into). The input is
 * replayed into a fresh key prefix on stream time, each partition up to the offset
 * a live consumer group has committed, and no further; derived events and dead
 * letters are not sent again unless asked (the first run sent them). When every
 * partition has reached its stop and nothing is in flight, the owner is told. */
#include <string.h>

#include "pipeline/internal.h"

#define MOD "rebuild"

int tf_pipeline_set_rebuild(tf_pipeline_t *p, const rd_kafka_topic_partition_list_t *stop,
                            void (*done)(void *arg), void *arg)
{
    if (!p->cfg.rebuild || !stop)
        return TF_EINVAL;
    rd_kafka_topic_partition_list_t *copy = rd_kafka_topic_partition_list_copy(stop);
    if (!copy)
        return TF_ENOMEM;
    if (p->rebuild_stop)
        rd_kafka_topic_partition_list_destroy(p->rebuild_stop);
    p->rebuild_stop = copy;
    p->rebuild_done = done;
    p->rebuild_arg = arg;
    return TF_OK;
}

void tf_rebuild_free(tf_pipeline_t *p)
{
    if (p->rebuild_stop)
        rd_kafka_topic_partition_list_destroy(p->rebuild_stop);
    p->rebuild_stop = NULL;
}

void tf_rebuild_assigned(tf_pipeline_t *p, int slot, int64_t start)
{
    slot_t *s = &p->slots[slot];
    s->stop_at = -1;
    s->next_offset = start;
    s->stop_paused = 0;
    if (!p->cfg.rebuild)
        return;
    /* A partition the live group never committed (or that appeared since) has
     * nothing to rebuild: the live group reads it from where it starts. */
    s->stop_at = 0;
    if (p->rebuild_stop) {
        const rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(p->rebuild_stop, s->topic, s->partition);
        if (tp && tp->offset > 0)
            s->stop_at = tp->offset;
    }
    TF_INFO(MOD, "%s: from offset %lld up to %lld", s->tp, (long long)start, (long long)s->stop_at);
}

static void pause_slot(tf_pipeline_t *p, slot_t *s)
{
    if (s->stop_paused)
        return;
    s->stop_paused = 1;
    tf_consumer_pause_partition(p->consumer, s->topic, s->partition);
}

int tf_rebuild_past_stop(tf_pipeline_t *p, int slot, int64_t offset)
{
    slot_t *s = &p->slots[slot];
    if (s->stop_at < 0)
        return 0;
    if (offset >= s->stop_at) {
        /* Never tracked, so never stored: the next run resumes here. */
        if (s->next_offset < offset + 1)
            s->next_offset = offset + 1;
        pause_slot(p, s);
        return 1;
    }
    s->next_offset = offset + 1;
    if (s->next_offset >= s->stop_at)
        pause_slot(p, s);
    return 0;
}

void tf_rebuild_resumed(tf_pipeline_t *p)
{
    /* The whole assignment was resumed: partitions at their stop fetch again,
     * and are paused again at their next record. */
    for (int i = 0; i < p->nslots; i++)
        p->slots[i].stop_paused = 0;
}

void tf_rebuild_check(tf_pipeline_t *p)
{
    if (!p->cfg.rebuild || !p->rebuild_done || !p->assigned || p->epoch <= 0 || p->stopping)
        return;
    if (p->stats.inflight > 0 || p->held || p->timer_len > 0)
        return;
    for (int i = 0; i < p->nslots; i++) {
        const slot_t *s = &p->slots[i];
        if (!s->active)
            continue;
        if (s->stop_at < 0 || s->next_offset < s->stop_at)
            return;
    }
    void (*done)(void *) = p->rebuild_done;
    p->rebuild_done = NULL;
    TF_INFO(MOD, "every partition reached its stop offset");
    done(p->rebuild_arg);
}
