/* verdict: the per-customer decision after a load (see verdict.h). */
#include "pipeline/verdict.h"

#include <string.h>

static int applied_before(const tf_verdict_record *recs, const tf_verdict *verdicts, size_t upto, const char *dedup)
{
    for (size_t j = 0; j < upto; j++)
        if (verdicts[j] == TF_VERDICT_APPLY && strcmp(recs[j].dedup, dedup) == 0)
            return 1;
    return 0;
}

void tf_verdict_decide(const tf_verdict_record *recs, size_t n, int exists, const int *outbox_in_flight,
                       size_t noutbox, tf_verdict *verdicts, int *resend, tf_verdict_plan *plan)
{
    uint32_t first_replayed = TF_VERDICT_NONE;
    int has_timer = 0;
    memset(plan, 0, sizeof(*plan));
    plan->last_live = TF_VERDICT_NONE;
    for (size_t i = 0; i < n; i++) {
        const tf_verdict_record *r = &recs[i];
        if (!r->owned) {
            verdicts[i] = TF_VERDICT_DROP;
        } else if (r->is_timer) {
            verdicts[i] = TF_VERDICT_TIMER;
            has_timer = 1;
            plan->last_live = (uint32_t)i;
        } else if (r->offset <= r->watermark) {
            /* Committed before: only its derived events may still be owed. */
            verdicts[i] = TF_VERDICT_REPLAYED;
            if (first_replayed == TF_VERDICT_NONE)
                first_replayed = (uint32_t)i;
        } else {
            /* Past the watermark either way: the watermark moves, so the state does. */
            verdicts[i] = r->seen || applied_before(recs, verdicts, i, r->dedup) ? TF_VERDICT_DUPLICATE
                                                                                 : TF_VERDICT_APPLY;
            plan->changed = 1;
            plan->last_live = (uint32_t)i;
        }
    }
    /* A timer visit of a customer with no state has nothing to fire. */
    if (plan->last_live != TF_VERDICT_NONE && (plan->changed || exists)) {
        plan->fire_after = 1;
        plan->changed = 1;
    }
    /* Derived events committed by an earlier firing and never confirmed: a timer
     * has no offset to hold them back, so the next visit sends them. */
    if (has_timer && first_replayed == TF_VERDICT_NONE && plan->last_live != TF_VERDICT_NONE)
        first_replayed = plan->last_live;
    plan->replay_at = first_replayed;
    if (first_replayed == TF_VERDICT_NONE)
        return;
    for (size_t e = 0; e < noutbox; e++) {
        /* One of ours still on its way: sending it again would only duplicate it. */
        resend[e] = !outbox_in_flight[e];
        if (outbox_in_flight[e])
            plan->outbox_held = 1;
    }
}
