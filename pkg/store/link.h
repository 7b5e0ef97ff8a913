/* link: the store's connections to Redis (internal to pkg/store), on the caller's
 * libevent loop. One connection to a standalone server, or, for a Redis Cluster,
 * one per primary with the client side of the cluster protocol: the slot map from
 * CLUSTER SLOTS (at connect, on MOVED and whenever a primary is lost), MOVED and
 * ASK followed, TRYAGAIN and CLUSTERDOWN retried with backoff. The commands
 * themselves (keys, scripts, reply shapes) are store.c's.
 *
 * Every node's connection has its own handshake (AUTH, SELECT on a standalone
 * server, the scripts loaded), its own timeout watchdog and its own reconnect
 * backoff. hiredis 0.14 has no timeouts, so the link arms its own: a connect or a
 * command unanswered for timeout_ms drops that node's connection and fails what it
 * carried.
 *
 * Commands travel in units: one command, or a few that must reach one node back to
 * back (MULTI ... EXEC). A unit refused by redirect, by TRYAGAIN, by CLUSTERDOWN or
 * for a missing script (NOSCRIPT) is sent again, whole. Retries keep the order in
 * which units were sent: once a unit must be retried, later units wait, and the
 * waiting ones go out in their original order once nothing is in flight, so a
 * customer's load never overtakes its earlier commit. */
#ifndef TF_STORE_LINK_H
#define TF_STORE_LINK_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "config/config.h"

struct event_base;
typedef struct tf_link_s tf_link_t;

/* Called when the link goes up (every node the slot map names connected, with its
 * scripts) or down. */
typedef void (*tf_link_state_cb)(tf_link_t *l, int up, void *opaque);

typedef struct {
    const tf_config_redis_url *url; /* copied */
    int64_t timeout_ms;
    int64_t backoff_min_ms;
    int64_t backoff_max_ms;
    const char *const *scripts; /* borrowed, static: loaded on every node */
    size_t nscripts;
    tf_link_state_cb state_cb;
    void *opaque;
} tf_link_opts;

/* r is the reply to the unit's last command (borrowed for the callback's
 * duration), or NULL when the unit got no answer: its connection was lost or timed
 * out, it was refused past its retry deadline, or the link is closing
 * (tf_link_closing tells). Called exactly once per unit sent. */
typedef void (*tf_link_reply_fn)(tf_link_t *l, const redisReply *r, void *priv);

/* One command of a unit; argv borrowed until tf_link_send returns. */
typedef struct {
    int argc;
    const char *const *argv;
    const size_t *argvlen;
} tf_link_cmd;

#define TF_LINK_UNIT_MAX 8

tf_link_t *tf_link_new(struct event_base *base, const tf_link_opts *opts, char *err, size_t errsize);
/* Fails every unit still pending (fn with NULL, tf_link_closing true) and frees.
 * Must not be called from inside a link callback. NULL is a no-op. */
void tf_link_destroy(tf_link_t *l);

/* The opaque of the opts. */
void *tf_link_opaque(const tf_link_t *l);
int tf_link_is_up(const tf_link_t *l);
int tf_link_closing(const tf_link_t *l);
int tf_link_is_cluster(const tf_link_t *l);
/* Commands sent and not yet answered, across nodes. */
size_t tf_link_pending(const tf_link_t *l);
uint64_t tf_link_reconnects(const tf_link_t *l);
/* Redirects followed and units retried since start (for metrics and tests). */
uint64_t tf_link_redirects(const tf_link_t *l);
/* The SHA1 of script i of the opts (valid once the link was up). */
const char *tf_link_sha(const tf_link_t *l, size_t i);

/* Sends the unit cmds[0..ncmds) to the node that serves slot (any number on a
 * standalone server); fn gets the last command's reply. An error reply of an
 * earlier command is logged (EXEC then says only EXECABORT). Returns 0, TF_EAGAIN
 * while the link is down, TF_EINVAL, TF_ENOMEM, or TF_EIO when the command could
 * not be queued (the node's connection is then dropped: a half-sent MULTI must not
 * stay open). fn is called exactly once when 0 is returned. */
int tf_link_send(tf_link_t *l, unsigned slot, tf_link_reply_fn fn, void *priv, size_t ncmds,
                 const tf_link_cmd *cmds);

/* Waits until `replicas` replicas of every primary acknowledged every unit sent so
 * far (WAIT on each primary, at most timeout_ms): done gets 0, or TF_EIO when a
 * primary answered fewer (tf_link_wait_error says why). WAIT covers what its own
 * connection carried before it, so the WAITs go out once no unit waits for a retry,
 * and go out again when a unit sent before the call is refused and re-sent after
 * them. */
typedef void (*tf_link_wait_fn)(tf_link_t *l, int status, void *priv);
int tf_link_wait(tf_link_t *l, int replicas, int64_t timeout_ms, tf_link_wait_fn done, void *priv);
/* Why the last wait failed, for the log. */
const char *tf_link_wait_error(const tf_link_t *l);

#endif
