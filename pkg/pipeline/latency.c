/* The produce-to-commit latency buckets (see latency.h). */
#include "pipeline/latency.h"

#define GROWTH 1.25

int tf_latency_bucket(int64_t ms)
{
    if (ms < 0)
        ms = 0;
    if (ms < TF_LATENCY_FINE_MS)
        return (int)ms;
    int b = TF_LATENCY_FINE_MS;
    double edge = TF_LATENCY_FINE_MS * GROWTH;
    while (b < TF_LATENCY_BUCKETS - 1 && (double)ms >= edge) {
        edge *= GROWTH;
        b++;
    }
    return b;
}

double tf_latency_bucket_upper(int b)
{
    if (b < TF_LATENCY_FINE_MS)
        return b + 1;
    double edge = TF_LATENCY_FINE_MS * GROWTH;
    for (int i = TF_LATENCY_FINE_MS; i < b; i++)
        edge *= GROWTH;
    return edge;
}
