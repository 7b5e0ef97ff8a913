/* Pure clock decisions of the pipeline: see clock.h. */
#include <string.h>

#include "pipeline/clock.h"

static int64_t below_pending(const tf_clock_view *v, int64_t until)
{
    /* A record read and not yet applied holds every clock just before its time. */
    if (v->pending_min_ms != INT64_MAX && v->pending_min_ms - 1 < until)
        return v->pending_min_ms - 1;
    return until;
}

static int64_t wall_bound(const tf_clock_view *v, int64_t until)
{
    if (v->stream)
        return until;
    if (v->caught_up && v->pending_min_ms == INT64_MAX)
        return v->now_ms;
    return until < v->now_ms ? until : v->now_ms;
}

int64_t tf_clock_scan_until(const tf_clock_view *v, int64_t applied_ms)
{
    return wall_bound(v, below_pending(v, applied_ms));
}

int64_t tf_clock_batch_until(const tf_clock_view *v, int64_t batch_ms)
{
    return wall_bound(v, below_pending(v, batch_ms));
}

int64_t tf_clock_record_until(const tf_clock_view *v, int64_t stream_at_ms, int64_t event_ms, int64_t batch_until)
{
    if (v->stream)
        return stream_at_ms;
    return event_ms < batch_until ? event_ms : batch_until;
}

int64_t tf_clock_period_start(int64_t t, int64_t period_ms)
{
    int64_t k = t / period_ms;
    if (t < 0 && k * period_ms != t)
        k--;
    return k * period_ms;
}

int tf_clock_opens_period(int64_t t, int64_t period_end_ms, int has_cuts, int64_t last_from_ms, int64_t period_ms)
{
    if (t < period_end_ms)
        return 0;
    return !has_cuts || t >= last_from_ms + period_ms;
}

static int64_t start_of(const void *elems, size_t stride, size_t i)
{
    int64_t t;
    memcpy(&t, (const char *)elems + i * stride, sizeof(t));
    return t;
}

size_t tf_clock_in_force(const void *elems, size_t n, size_t stride, int64_t t)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (start_of(elems, stride, mid) <= t)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}
