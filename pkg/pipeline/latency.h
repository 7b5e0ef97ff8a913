/* latency: the buckets of the produce-to-commit histogram behind the p50 and p99
 * figures (stats lines, /status). One millisecond wide up to TF_LATENCY_FINE_MS,
 * then each a quarter wider than the one before: the figures are bucket upper
 * bounds, so the fine part keeps them within a millisecond where latency budgets
 * are set. Pure functions (tests/unit/test_latency.c). */
#ifndef TF_PIPELINE_LATENCY_H
#define TF_PIPELINE_LATENCY_H

#include <stdint.h>

#define TF_LATENCY_FINE_MS 100
#define TF_LATENCY_BUCKETS 160

/* The bucket of a latency in ms (negative counts as 0; the last bucket takes
 * everything beyond). */
int tf_latency_bucket(int64_t ms);
/* The upper bound of bucket b, in ms. */
double tf_latency_bucket_upper(int b);

#endif
