/* clock: when a partition's timers may fire and which tier cutoffs hold, as pure
 * decisions. The pipeline gathers the figures (what is applied, what is read and not
 * yet applied, whether librdkafka has handed over everything the partition holds);
 * these functions decide, so every case has a unit test (tests/unit/test_clock.c).
 *
 * The rule behind them: a timer due at T fires only after every record of its
 * partition up to T that has been read is applied, and in event-time order with its
 * customer's own records. Reading ahead (a replay, a backlog after downtime) must not
 * move any clock. */
#ifndef TF_PIPELINE_CLOCK_H
#define TF_PIPELINE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int stream;             /* timers.clock = stream (else the wall clock) */
    int64_t now_ms;         /* the wall clock */
    int64_t pending_min_ms; /* lowest event time of the partition's records read and not
                             * yet applied (after the batch in question), INT64_MAX none */
    int caught_up;          /* every record the partition held has been read */
} tf_clock_view;

/* How far the partition scan may look for due customers, given the highest event
 * time applied on the partition: that, and never up to a record still waiting. On
 * the wall clock a partition with nothing waiting and nothing left to read is live
 * and runs on wall time; one catching up runs on the event time it reached, never
 * past the wall clock. */
int64_t tf_clock_scan_until(const tf_clock_view *v, int64_t applied_ms);

/* "now" for the timers of a batch's customers after their records, given the
 * highest event time read up to the batch's last record of the partition (the
 * records before it are applied by then): the same bounds as the scan. */
int64_t tf_clock_batch_until(const tf_clock_view *v, int64_t batch_ms);

/* How far a customer's timers fire before one of its records is applied. Stream
 * time: up to the partition's stream time when the record was read (stream_at_ms),
 * so a late record is applied where it stands in the partition whatever the
 * batches. Wall clock: up to the record's own time, within the batch's clock. */
int64_t tf_clock_record_until(const tf_clock_view *v, int64_t stream_at_ms, int64_t event_ms, int64_t batch_until);

/* The start of the period of length period_ms (> 0) holding t; periods start at
 * multiples of period_ms since the epoch (UTC midnights for a day). */
int64_t tf_clock_period_start(int64_t t, int64_t period_ms);

/* 1 when a record at t opens a period whose tier cutoffs are not known yet: at or
 * past period_end_ms and not within the period of the last cutoffs (last_from_ms,
 * when has_cuts). A late record never opens one. */
int tf_clock_opens_period(int64_t t, int64_t period_end_ms, int has_cuts, int64_t last_from_ms, int64_t period_ms);

/* Index of the element in force at t in an array of n > 0 elements of stride bytes,
 * sorted by the int64_t start time that each begins with: the last starting at or
 * before t, or the first when t precedes them all. */
size_t tf_clock_in_force(const void *elems, size_t n, size_t stride, int64_t t);

#endif
