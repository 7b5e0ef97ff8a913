/* verdict: what happens to each record of one customer's group once its state is
 * loaded, as a pure decision. The pipeline gathers the facts (the record's offset
 * and the customer's watermark on its partition, whether Redis has seen its
 * (source, id), whether the partition is still ours); tf_verdict_decide says which
 * records are applied, which are replays of a commit already made, which are
 * duplicates, when the customer's due timers fire and whether the outbox is sent
 * again. Every case has a unit test (tests/unit/test_verdict.c). */
#ifndef TF_PIPELINE_VERDICT_H
#define TF_PIPELINE_VERDICT_H

#include <stddef.h>
#include <stdint.h>

#define TF_VERDICT_NONE UINT32_MAX

typedef enum {
    TF_VERDICT_DROP,      /* the partition was revoked meanwhile: the next owner takes it */
    TF_VERDICT_TIMER,     /* a visit for due timers: nothing to apply */
    TF_VERDICT_REPLAYED,  /* at or below the watermark: its commit is already in Redis */
    TF_VERDICT_DUPLICATE, /* its (source, id) was applied before, in Redis or in this batch */
    TF_VERDICT_APPLY,
} tf_verdict;

typedef struct {
    int is_timer;
    int owned;          /* its partition is still assigned under the epoch it was read in */
    int64_t offset;     /* Kafka offset (records only) */
    int64_t watermark;  /* the customer's watermark on the record's partition, -1 none */
    int seen;           /* Redis holds its (source, id) among the applied ones */
    const char *dedup;  /* its (source, id) key, compared within the group */
} tf_verdict_record;

typedef struct {
    uint32_t last_live;   /* the last record applied, duplicate or timer visit, or NONE */
    uint32_t replay_at;   /* the record the outbox's re-sends wait with, or NONE: none sent */
    int fire_after;       /* fire everything due by the batch's clock after last_live */
    int changed;          /* the state (watermark, fields, due times) moves: commit it */
    int outbox_held;      /* an outbox entry is still ours in flight: it was not re-sent */
} tf_verdict_plan;

/* Decides the n records of one customer's group (in partition order), given
 * whether the customer already had state and, per outbox entry, whether its
 * delivery is still in flight from this process. Fills verdicts[n] and, when
 * plan->replay_at is not NONE, resend[noutbox] (1: send that entry again). */
void tf_verdict_decide(const tf_verdict_record *recs, size_t n, int exists, const int *outbox_in_flight,
                       size_t noutbox, tf_verdict *verdicts, int *resend, tf_verdict_plan *plan);

#endif
