/* ops: the operations endpoints on one HTTP listener (libevent evhttp) on the
 * daemon's event loop.
 *
 *   GET /metrics   Prometheus text exposition format 0.0.4
 *   GET /healthz   200 "ok" while the loop runs
 *   GET /readyz    200 when partitions are assigned and Redis and Kafka are reachable,
 *                  else 503 with a JSON body naming what is missing
 *   GET /status    JSON: version, uptime, partitions with lag, figures, config
 *                  (secrets redacted)
 *   GET /          the lag dashboard (one self-contained HTML page polling /status)
 *
 * HEAD is answered like GET without a body; other methods get 405, other paths 404.
 * The figures come from a callback that fills a tf_pipeline_snapshot, so this module
 * never reaches into the pipeline itself. Everything runs on the loop thread; no
 * request blocks (the snapshot is cheap by contract). */
#ifndef TF_OPS_H
#define TF_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/core.h"
#include "pipeline/pipeline.h"

struct event_base;
struct evbuffer;
typedef struct tf_ops_s tf_ops_t;

/* Fills out with the current figures. Called on the loop thread, once per request
 * to /metrics, /readyz or /status; out is the ops module's own buffer (borrowed for
 * the duration of the call), its fields before partitions zeroed. */
typedef void (*tf_ops_source_fn)(void *opaque, tf_pipeline_snapshot *out);

/* Starts listening on listen ("host:port" or "[ipv6]:port", as ops.listen; port 0
 * takes any free port, see tf_ops_address). base is borrowed and must outlive the
 * handle; collect(opaque, ...) is called as described above. cfg_for_status is read
 * once here (tf_config_to_json with secrets redacted) and not kept; NULL leaves the
 * "config" member out of /status. Returns a new handle, or NULL with the reason in
 * err (bad address, address in use, out of memory). */
tf_ops_t *tf_ops_new(struct event_base *base, const char *listen, tf_ops_source_fn collect, void *opaque,
                     const tf_config_t *cfg_for_status, char *err, size_t errsize);

/* The address actually bound, "host:port" ("[::1]:9464" for IPv6), with the port
 * the kernel chose when 0 was asked. Owned by the handle. */
const char *tf_ops_address(const tf_ops_t *ops);

/* Closes the listener and every open connection (requests in progress are dropped)
 * and frees. Call before the pipeline the callback reads is destroyed and before
 * the event base is freed. NULL is a no-op. */
void tf_ops_destroy(tf_ops_t *ops);

/* ---- rendering, on any buffer (used by the server; exposed for tests) ---- */

/* Appends every metric family of s to out in the Prometheus text format 0.0.4,
 * each with # HELP and # TYPE, label values escaped. Returns 0 or TF_ENOMEM (out
 * then holds a partial rendering). */
int tf_ops_render_metrics(struct evbuffer *out, const tf_pipeline_snapshot *s);

/* Appends value escaped for a Prometheus label value (without the quotes):
 * backslash, double quote and newline become \\, \" and \n. 0 or TF_ENOMEM. */
int tf_ops_label_escape(struct evbuffer *out, const char *value);

/* The population figures (tf_figures_view's JSON; NULL before the first read, then
 * only the read errors are written), read age_ms ago. 0 or TF_ENOMEM. */
struct json_t;
int tf_ops_render_figures(struct evbuffer *out, const struct json_t *view, int64_t age_ms, uint64_t read_errors);

/* Where the ops endpoints find the figures: the view (borrowed) or NULL, its age
 * and the failed reads. Without a source, /figures answers 404. */
typedef const struct json_t *(*tf_ops_figures_fn)(void *opaque, int64_t *age_ms, uint64_t *read_errors);
void tf_ops_set_figures(tf_ops_t *ops, tf_ops_figures_fn fn, void *opaque);

/* Readiness: 1 when s has partitions assigned, Redis up and taking the batches, and
 * Kafka up, else 0. When missing is not NULL it receives the static names of what is
 * missing, in the order "assignment", "redis" (down) or "redis_errors" (it answers
 * but refuses the batch at the front: out of memory, loading, read-only...),
 * "kafka" (at most TF_OPS_READY_CHECKS), and *nmissing their number. */
#define TF_OPS_READY_CHECKS 4

/* Liveness: 0 when the pipeline is stalled: records wait in flight, Redis is up and
 * takes the batches, yet nothing finished for stall_ms (a restart is the cure;
 * waiting on Redis or Kafka is not, and is readiness's business). 1 otherwise, and
 * always when stall_ms is 0. why (may be NULL) receives the reason. */
int tf_ops_alive(const tf_pipeline_snapshot *s, int64_t stall_ms, char *why, size_t whysize);
int tf_ops_ready(const tf_pipeline_snapshot *s, const char *missing[TF_OPS_READY_CHECKS], size_t *nmissing);

/* Appends the /status document for s: {"version", "uptime_s", "ready", "missing",
 * "assigned", "redis_up", "kafka_up", "paused", "total_lag", "partitions": [{"topic",
 * "partition", "lag", "committed", "high_watermark", "position", "lag_source",
 * "paused", "inflight"}], "stats": {...}, "config": {...}}; unknown offsets and lags
 * are null. config_json is a JSON object's text (borrowed; NULL: no "config"
 * member). Returns 0, TF_EINVAL when config_json does not parse, or TF_ENOMEM. */
int tf_ops_render_status(struct evbuffer *out, const tf_pipeline_snapshot *s, int64_t uptime_ms,
                         const char *config_json);

#endif
