/* The Redis connection: connect, script loading, timeouts, backoff, the
 * per-customer load / commit commands and the indexes that span customers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "store/scripts.h"
#include "store/store.h"

#define MOD "store"

typedef enum { CMD_LOAD, CMD_COMMIT, CMD_ACK, CMD_EPOCH, CMD_DUE, CMD_POPULATION } cmd_kind;

/* A command in flight. Pooled: the per-event path allocates none in steady state. */
typedef struct cmd {
    struct cmd *next_free;
    tf_store_t *st;
    cmd_kind kind;
    void *cb;
    void *opaque;
    size_t nids;
    int64_t cutoff_ms;
} cmd_t;

struct tf_store_s {
    struct event_base *base;
    redisAsyncContext *ac;
    tf_config_redis_url url;
    char prefix[64];
    int64_t timeout_ms, backoff_min_ms, backoff_max_ms, dedup_window_ms;

    tf_store_state_cb state_cb;
    void *opaque;

    char last_error[256]; /* the last error reply, for the callback that gets it */
    int aof;              /* appendonly yes, as last read */
    int up;          /* connected and scripts loaded */
    int connecting;
    int closing;
    int64_t connect_started_ms;
    int attempts;
    uint64_t reconnects;
    uint64_t rng;
    char sha_commit[41];
    char sha_population[41];
    int scripts_pending;
    int must_drop; /* NOSCRIPT, or a half-sent transaction: reconnect */

    /* Send times of unanswered commands, oldest first: Redis answers in order, so
     * the head is the one a timeout is measured on. */
    int64_t *sent;
    size_t sent_cap, sent_head, sent_len;

    struct event *watchdog;
    struct event *reconnect_timer;

    cmd_t *free_cmds;

    /* Reusable argv for commit and load. */
    const char **argv;
    size_t *argvlen;
    size_t argv_cap;
    char *keybuf;
    size_t keybuf_cap;

    /* The two encodings a commit compares: too big for the stack of a callback. */
    tf_store_fields enc_before, enc_after;
};

static void on_connect(const redisAsyncContext *ac, int status);
static void on_disconnect(const redisAsyncContext *ac, int status);
static void on_watchdog(evutil_socket_t fd, short what, void *arg);
static void on_reconnect(evutil_socket_t fd, short what, void *arg);
static void start_connect(tf_store_t *st);

/* ---- bookkeeping ---- */

static int sent_push(tf_store_t *st)
{
    if (st->sent_len == st->sent_cap) {
        size_t cap = st->sent_cap ? st->sent_cap * 2 : 256;
        int64_t *n = malloc(cap * sizeof(*n));
        if (!n)
            return TF_ENOMEM;
        for (size_t i = 0; i < st->sent_len; i++)
            n[i] = st->sent[(st->sent_head + i) % st->sent_cap];
        free(st->sent);
        st->sent = n;
        st->sent_cap = cap;
        st->sent_head = 0;
    }
    st->sent[(st->sent_head + st->sent_len) % st->sent_cap] = tf_time_mono_ms();
    st->sent_len++;
    return TF_OK;
}

static void sent_pop(tf_store_t *st)
{
    if (st->sent_len == 0)
        return;
    st->sent_head = (st->sent_head + 1) % st->sent_cap;
    st->sent_len--;
}

static cmd_t *cmd_get(tf_store_t *st, cmd_kind kind, void *cb, void *opaque)
{
    cmd_t *c = st->free_cmds;
    if (c)
        st->free_cmds = c->next_free;
    else if (!(c = malloc(sizeof(*c))))
        return NULL;
    c->st = st;
    c->kind = kind;
    c->cb = cb;
    c->opaque = opaque;
    c->nids = 0;
    return c;
}

static void cmd_put(tf_store_t *st, cmd_t *c)
{
    c->next_free = st->free_cmds;
    st->free_cmds = c;
}

/* A command's reply (or its failure) is in: it no longer counts as sent, and c goes
 * back to the pool. Read c's fields first. */
static void cmd_retire(tf_store_t *st, cmd_t *c, const redisReply *r)
{
    if (!st->closing && r)
        sent_pop(st);
    cmd_put(st, c);
}

static int argv_reserve(tf_store_t *st, size_t n)
{
    if (n <= st->argv_cap)
        return TF_OK;
    size_t cap = n * 2;
    const char **a = realloc(st->argv, cap * sizeof(*a));
    if (!a)
        return TF_ENOMEM;
    st->argv = a;
    size_t *l = realloc(st->argvlen, cap * sizeof(*l));
    if (!l)
        return TF_ENOMEM;
    st->argvlen = l;
    st->argv_cap = cap;
    return TF_OK;
}

/* Builds the three keys of a customer into st->keybuf; returns the offsets. */
static int build_keys(tf_store_t *st, const char *customer, size_t off[3], size_t len[3])
{
    size_t need = 3 * (strlen(st->prefix) + strlen(customer) + 16);
    if (need > st->keybuf_cap) {
        char *k = realloc(st->keybuf, need);
        if (!k)
            return TF_ENOMEM;
        st->keybuf = k;
        st->keybuf_cap = need;
    }
    static const char *const suffix[3] = {"", ":ids", ":outbox"};
    size_t pos = 0;
    for (int i = 0; i < 3; i++) {
        int n = snprintf(st->keybuf + pos, st->keybuf_cap - pos, "%sc:{%s}%s", st->prefix, customer, suffix[i]);
        off[i] = pos;
        len[i] = (size_t)n;
        pos += (size_t)n + 1;
    }
    return TF_OK;
}

static uint64_t next_rand(tf_store_t *st)
{
    st->rng ^= st->rng << 13;
    st->rng ^= st->rng >> 7;
    st->rng ^= st->rng << 17;
    return st->rng;
}

/* ---- connection lifecycle ---- */

static void check_server(tf_store_t *st);

static void set_up(tf_store_t *st, int up)
{
    if (st->up == up)
        return;
    st->up = up;
    TF_INFO(MOD, "redis %s:%d %s", st->url.host, st->url.port, up ? "up" : "down");
    if (up)
        check_server(st);
    if (st->state_cb && !st->closing)
        st->state_cb(st, up, st->opaque);
}

static void schedule_reconnect(tf_store_t *st)
{
    if (st->closing)
        return;
    int64_t delay = st->backoff_min_ms;
    for (int i = 0; i < st->attempts && delay < st->backoff_max_ms; i++)
        delay *= 2;
    if (delay > st->backoff_max_ms)
        delay = st->backoff_max_ms;
    /* +-20% jitter so a fleet does not reconnect in lockstep. */
    delay += (int64_t)(next_rand(st) % (uint64_t)(delay / 5 * 2 + 1)) - delay / 5;
    if (st->attempts < 30)
        st->attempts++;
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
    evtimer_add(st->reconnect_timer, &tv);
    TF_DEBUG(MOD, "reconnecting to redis in %lld ms", (long long)delay);
}

/* Drops the connection: every pending callback fails with TF_EIO (or TF_ECLOSED),
 * then a reconnect is scheduled. Never called from inside a hiredis callback. */
static void drop_connection(tf_store_t *st, const char *why)
{
    redisAsyncContext *ac = st->ac;
    if (!ac)
        return;
    if (why)
        TF_WARN(MOD, "dropping redis connection: %s", why);
    st->ac = NULL;
    st->connecting = 0;
    set_up(st, 0);
    redisAsyncFree(ac);
    st->sent_len = 0;
    st->reconnects++;
    schedule_reconnect(st);
}

static void fail_reply(tf_store_t *st, const redisReply *r, const char *what)
{
    TF_ERROR(MOD, "%s failed: %s", what, r ? r->str : "no reply");
    tf_strlcpy(st->last_error, r && r->str ? r->str : "no reply", sizeof(st->last_error));
}

const char *tf_store_last_error(const tf_store_t *st) { return st->last_error; }

static void on_script_loaded(redisAsyncContext *ac, void *reply, void *privdata)
{
    tf_store_t *st = ac->data;
    redisReply *r = reply;
    char *dst = privdata;
    if (!st)
        return;
    sent_pop(st);
    if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
        if (r)
            fail_reply(st, r, "SCRIPT LOAD");
        return; /* the watchdog or the disconnect path takes it from here */
    }
    memcpy(dst, r->str, 40);
    dst[40] = '\0';
    if (--st->scripts_pending == 0) {
        st->attempts = 0;
        set_up(st, 1);
    }
}

static void on_handshake(redisAsyncContext *ac, void *reply, void *privdata)
{
    tf_store_t *st = ac->data;
    redisReply *r = reply;
    if (!st)
        return;
    sent_pop(st);
    if (r && r->type == REDIS_REPLY_ERROR)
        TF_ERROR(MOD, "redis %s refused: %s", (const char *)privdata, r->str);
}

static int send_tracked(tf_store_t *st, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                        const size_t *argvlen)
{
    if (sent_push(st) != TF_OK)
        return TF_ENOMEM;
    if (redisAsyncCommandArgv(st->ac, fn, priv, argc, argv, argvlen) != REDIS_OK) {
        TF_WARN(MOD, "cannot queue a command: %s (flags %d)", st->ac->errstr, st->ac->c.flags);
        st->sent_len--;
        return TF_EIO;
    }
    return TF_OK;
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    tf_store_t *st = ac->data;
    if (!st || st->ac != ac)
        return;
    st->connecting = 0;
    if (status != REDIS_OK) {
        TF_WARN(MOD, "cannot connect to redis %s:%d: %s", st->url.host, st->url.port, ac->errstr);
        st->ac = NULL; /* hiredis frees the context after this callback */
        schedule_reconnect(st);
        return;
    }
    TF_DEBUG(MOD, "connected to redis %s:%d", st->url.host, st->url.port);
    /* Pipelined handshake: AUTH, SELECT, then the scripts; up once their SHAs are back. */
    if (st->url.password[0]) {
        const char *argv[3] = {"AUTH", st->url.username, st->url.password};
        size_t lens[3] = {4, strlen(st->url.username), strlen(st->url.password)};
        if (st->url.username[0])
            send_tracked(st, on_handshake, "AUTH", 3, argv, lens);
        else {
            argv[1] = st->url.password;
            lens[1] = lens[2];
            send_tracked(st, on_handshake, "AUTH", 2, argv, lens);
        }
    }
    if (st->url.db) {
        char db[16];
        int n = snprintf(db, sizeof(db), "%d", st->url.db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, (size_t)n};
        send_tracked(st, on_handshake, "SELECT", 2, argv, lens);
    }
    st->scripts_pending = 2;
    const char *argv[3] = {"SCRIPT", "LOAD", TF_SCRIPT_COMMIT};
    size_t lens[3] = {6, 4, sizeof(TF_SCRIPT_COMMIT) - 1};
    send_tracked(st, on_script_loaded, st->sha_commit, 3, argv, lens);
    argv[2] = TF_SCRIPT_POPULATION;
    lens[2] = sizeof(TF_SCRIPT_POPULATION) - 1;
    send_tracked(st, on_script_loaded, st->sha_population, 3, argv, lens);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    tf_store_t *st = ac->data;
    if (!st || st->ac != ac)
        return; /* we dropped it ourselves */
    if (status != REDIS_OK)
        TF_WARN(MOD, "redis connection lost: %s", ac->errstr);
    st->ac = NULL;
    st->sent_len = 0;
    st->reconnects++;
    set_up(st, 0);
    schedule_reconnect(st);
}

static void start_connect(tf_store_t *st)
{
    redisAsyncContext *ac = redisAsyncConnect(st->url.host, st->url.port);
    if (!ac) {
        schedule_reconnect(st);
        return;
    }
    if (ac->err) {
        TF_WARN(MOD, "cannot connect to redis %s:%d: %s", st->url.host, st->url.port, ac->errstr);
        redisAsyncFree(ac);
        schedule_reconnect(st);
        return;
    }
    ac->data = st;
    if (redisLibeventAttach(ac, st->base) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_reconnect(st);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    st->ac = ac;
    st->connecting = 1;
    st->connect_started_ms = tf_time_mono_ms();
}

static void on_reconnect(evutil_socket_t fd, short what, void *arg)
{
    tf_store_t *st = arg;
    (void)fd, (void)what;
    if (!st->ac && !st->closing)
        start_connect(st);
}

/* hiredis 0.14 has no timeouts: a stuck connect or an unanswered command older
 * than timeout_ms drops the connection, so nothing waits forever. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    tf_store_t *st = arg;
    int64_t now = tf_time_mono_ms();
    (void)fd, (void)what;
    if (!st->ac)
        return;
    if (st->must_drop) {
        st->must_drop = 0;
        drop_connection(st, "connection state unknown (scripts missing or a command half sent)");
        return;
    }
    if (st->connecting && now - st->connect_started_ms > st->timeout_ms) {
        drop_connection(st, "connect timed out");
        return;
    }
    if (st->sent_len && now - st->sent[st->sent_head] > st->timeout_ms)
        drop_connection(st, "command timed out");
    else if (!st->connecting && !st->up && st->scripts_pending && now - st->connect_started_ms > st->timeout_ms)
        drop_connection(st, "handshake failed");
}

tf_store_t *tf_store_new(struct event_base *base, const tf_store_opts *opts, tf_store_state_cb state_cb,
                         void *opaque, char *err, size_t errsize)
{
    tf_store_t *st = calloc(1, sizeof(*st));
    if (!st) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    if (tf_config_redis_url_parse(opts->url, &st->url, err, errsize) != TF_OK)
        goto fail;
    if (tf_strlcpy(st->prefix, opts->key_prefix, sizeof(st->prefix)) != TF_OK) {
        snprintf(err, errsize, "key prefix too long");
        goto fail;
    }
    st->base = base;
    st->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 2000;
    st->backoff_min_ms = opts->backoff_min_ms > 0 ? opts->backoff_min_ms : 100;
    st->backoff_max_ms = opts->backoff_max_ms >= st->backoff_min_ms ? opts->backoff_max_ms : st->backoff_min_ms;
    st->dedup_window_ms = opts->dedup_window_ms > 0 ? opts->dedup_window_ms : TF_MS_PER_DAY;
    st->state_cb = state_cb;
    st->opaque = opaque;
    st->rng = (uint64_t)tf_time_mono_us() | 1;
    st->watchdog = event_new(base, -1, EV_PERSIST, on_watchdog, st);
    st->reconnect_timer = evtimer_new(base, on_reconnect, st);
    if (!st->watchdog || !st->reconnect_timer || argv_reserve(st, 64) != TF_OK) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    int64_t tick = st->timeout_ms / 4 < 50 ? 50 : st->timeout_ms / 4;
    struct timeval tv = {(time_t)(tick / 1000), (suseconds_t)(tick % 1000) * 1000};
    event_add(st->watchdog, &tv);
    start_connect(st);
    return st;
fail:
    tf_store_destroy(st);
    return NULL;
}

void tf_store_destroy(tf_store_t *st)
{
    if (!st)
        return;
    st->closing = 1;
    if (st->ac) {
        redisAsyncContext *ac = st->ac;
        st->ac = NULL;
        redisAsyncFree(ac); /* fails pending callbacks with TF_ECLOSED */
    }
    if (st->watchdog)
        event_free(st->watchdog);
    if (st->reconnect_timer)
        event_free(st->reconnect_timer);
    while (st->free_cmds) {
        cmd_t *c = st->free_cmds;
        st->free_cmds = c->next_free;
        free(c);
    }
    free(st->sent);
    free(st->argv);
    free(st->argvlen);
    free(st->keybuf);
    free(st);
}

int tf_store_is_up(const tf_store_t *st) { return st->up; }
size_t tf_store_pending(const tf_store_t *st) { return st->sent_len; }
uint64_t tf_store_reconnects(const tf_store_t *st) { return st->reconnects; }

/* The status for a failed reply: closing, connection gone, or a Redis error. */
static int reply_status(tf_store_t *st, const redisReply *r, const char *what)
{
    if (st->closing)
        return TF_ECLOSED;
    if (!r)
        return TF_EIO;
    if (r->type == REDIS_REPLY_ERROR) {
        fail_reply(st, r, what);
        /* NOSCRIPT after a SCRIPT FLUSH: reconnecting reloads the scripts. */
        if (strncmp(r->str, "NOSCRIPT", 8) == 0)
            st->must_drop = 1;
        switch (tf_store_error_classify(r->str)) {
        case TF_STORE_ERR_CUSTOMER: return TF_ESTATE;
        case TF_STORE_ERR_ROLE:
            /* A failover made this node a replica (or the slot moved): the next
             * connection finds where to write. */
            st->must_drop = 1;
            return TF_EIO;
        default: return TF_EIO;
        }
    }
    return TF_EIO;
}

static int check_ready(tf_store_t *st)
{
    if (st->closing)
        return TF_ECLOSED;
    return st->up && st->ac ? TF_OK : TF_EAGAIN;
}

/* ---- load ---- */

#define MAX_DECODE_FIELDS 256
#define MAX_OUTBOX 256

static void on_load_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    cmd_t *c = privdata;
    tf_store_t *st = c->st;
    redisReply *r = reply;
    tf_store_load_cb cb = (tf_store_load_cb)c->cb;
    void *opaque = c->opaque;
    size_t nids = c->nids;
    int64_t c_cutoff = c->cutoff_ms;
    (void)ac;
    cmd_retire(st, c, r);

    size_t nparts = nids ? 3 : 2;
    /* A command of the transaction failed alone (WRONGTYPE: one of the customer's
     * keys holds something else): its error is in its place in the array. */
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        if (r->element[i]->type == REDIS_REPLY_ERROR) {
            cb(st, reply_status(st, r->element[i], "load"), NULL, opaque);
            return;
        }
    }
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != nparts ||
        r->element[0]->type != REDIS_REPLY_ARRAY || r->element[nparts - 1]->type != REDIS_REPLY_ARRAY ||
        (nids && (r->element[1]->type != REDIS_REPLY_ARRAY || r->element[1]->elements != nids))) {
        int status = reply_status(st, r, "load");
        if (r && status == TF_EIO && r->type != REDIS_REPLY_ERROR)
            TF_ERROR(MOD, "load: unexpected reply shape");
        cb(st, status, NULL, opaque);
        return;
    }

    tf_store_doc_t doc;
    const redisReply *h = r->element[0];
    const char *f[MAX_DECODE_FIELDS], *v[MAX_DECODE_FIELDS];
    size_t fl[MAX_DECODE_FIELDS], vl[MAX_DECODE_FIELDS], n = 0;
    for (size_t i = 0; i + 1 < h->elements && n < MAX_DECODE_FIELDS; i += 2, n++) {
        f[n] = h->element[i]->str;
        fl[n] = (size_t)h->element[i]->len;
        v[n] = h->element[i + 1]->str;
        vl[n] = (size_t)h->element[i + 1]->len;
    }
    if (tf_store_decode(&doc, f, fl, v, vl, n) != TF_OK) {
        /* Written by something else, or by a newer version: never treated as new. */
        tf_strlcpy(st->last_error, "the state hash does not decode (its stage is unknown)", sizeof(st->last_error));
        TF_ERROR(MOD, "load: %s", st->last_error);
        cb(st, TF_ESTATE, NULL, opaque);
        return;
    }

    uint8_t seen_stack[1024], *seen = seen_stack;
    if (nids > sizeof(seen_stack) && !(seen = malloc(nids))) {
        cb(st, TF_ENOMEM, NULL, opaque);
        return;
    }
    /* Seen means recorded within the dedup window: older entries are trimmed only
     * on the next commit. */
    for (size_t i = 0; i < nids; i++) {
        const redisReply *sc = r->element[1]->element[i];
        seen[i] = sc->type == REDIS_REPLY_STRING && strtod(sc->str, NULL) > (double)c_cutoff;
    }

    tf_store_outbox_entry ob[MAX_OUTBOX];
    const redisReply *o = r->element[nparts - 1];
    size_t nob = 0;
    for (size_t i = 0; i + 1 < o->elements && nob < MAX_OUTBOX; i += 2, nob++) {
        ob[nob].id = o->element[i]->str;
        ob[nob].payload = o->element[i + 1]->str;
        ob[nob].payload_len = (size_t)o->element[i + 1]->len;
    }
    tf_store_loaded res = {&doc, seen, nob, ob};
    cb(st, TF_OK, &res, opaque);
    if (seen != seen_stack)
        free(seen);
}

static void on_queued(redisAsyncContext *ac, void *reply, void *privdata)
{
    tf_store_t *st = ac->data;
    (void)privdata;
    if (st && !st->closing && reply)
        sent_pop(st);
    /* Refused when queued (OOM, ...): EXEC then says only EXECABORT, so the
     * cause is logged here. */
    if (st && !st->closing && reply && ((redisReply *)reply)->type == REDIS_REPLY_ERROR)
        TF_ERROR(MOD, "load: a command of the transaction was refused: %s", ((redisReply *)reply)->str);
}

/* One MULTI/EXEC per customer: a consistent snapshot of state, dedup ids and
 * outbox in one reply, at the cost of plain commands (a script call costs more
 * than the three reads together). */
int tf_store_load(tf_store_t *st, const char *customer, const char *const *event_ids, size_t nids,
                  tf_store_load_cb cb, void *opaque)
{
    size_t off[3], len[3];
    int rc = check_ready(st);
    if (rc)
        return rc;
    if (build_keys(st, customer, off, len) || argv_reserve(st, 4 + nids))
        return TF_ENOMEM;
    cmd_t *c = cmd_get(st, CMD_LOAD, (void *)cb, opaque);
    if (!c)
        return TF_ENOMEM;
    c->nids = nids;
    c->cutoff_ms = tf_time_now_ms() - st->dedup_window_ms;
    const char *argv[2];
    size_t lens[2];
    argv[0] = "MULTI", lens[0] = 5;
    if ((rc = send_tracked(st, on_queued, NULL, 1, argv, lens)))
        goto fail;
    argv[0] = "HGETALL", lens[0] = 7;
    argv[1] = st->keybuf + off[0], lens[1] = len[0];
    if ((rc = send_tracked(st, on_queued, NULL, 2, argv, lens)))
        goto fail;
    if (nids) {
        size_t a = 0;
        st->argv[a] = "ZMSCORE", st->argvlen[a++] = 7;
        st->argv[a] = st->keybuf + off[1], st->argvlen[a++] = len[1];
        for (size_t i = 0; i < nids; i++)
            st->argv[a] = event_ids[i], st->argvlen[a++] = strlen(event_ids[i]);
        if ((rc = send_tracked(st, on_queued, NULL, (int)a, st->argv, st->argvlen)))
            goto fail;
    }
    argv[1] = st->keybuf + off[2], lens[1] = len[2];
    if ((rc = send_tracked(st, on_queued, NULL, 2, argv, lens)))
        goto fail;
    argv[0] = "EXEC", lens[0] = 4;
    if ((rc = send_tracked(st, on_load_reply, c, 1, argv, lens)))
        goto fail;
    return TF_OK;
fail:
    /* A half-sent transaction cannot be taken back: drop the connection (the
     * watchdog does it at once) so the server discards it. */
    cmd_put(st, c);
    st->must_drop = 1;
    return rc;
}

/* ---- commit ---- */

/* Commit and epoch both answer an integer; a negative commit answer is the fence. */
static void on_integer_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    cmd_t *c = privdata;
    tf_store_t *st = c->st;
    redisReply *r = reply;
    tf_store_commit_cb cb = (tf_store_commit_cb)c->cb; /* same shape as tf_store_epoch_cb */
    void *opaque = c->opaque;
    const char *what = c->kind == CMD_COMMIT ? "commit" : "epoch";
    int fenceable = c->kind == CMD_COMMIT;
    (void)ac;
    cmd_retire(st, c, r);
    if (!r || r->type != REDIS_REPLY_INTEGER)
        cb(st, reply_status(st, r, what), 0, opaque);
    else if (fenceable && r->integer < 0)
        cb(st, TF_EFENCED, 0, opaque);
    else
        cb(st, TF_OK, r->integer, opaque);
}

int tf_store_commit(tf_store_t *st, const char *customer, const tf_store_doc_t *before,
                    const tf_store_doc_t *after, int64_t epoch, int64_t now_ms,
                    const char *const *event_ids, size_t nids, const tf_store_outbox_add *outbox,
                    size_t noutbox, tf_store_commit_cb cb, void *opaque)
{
    tf_store_fields *fa = &st->enc_after, *fb = &st->enc_before;
    size_t off[3], len[3];
    char nums[7][24];
    int nl[7];
    int rc = check_ready(st);
    if (rc)
        return rc;
    if (tf_store_encode(after, fa) != TF_OK || (before->exists && tf_store_encode(before, fb) != TF_OK)) {
        TF_ERROR(MOD, "commit: the state of customer %s does not encode", customer);
        return TF_EINVAL;
    }
    if (!before->exists)
        fb->n = 0;

    if (build_keys(st, customer, off, len) || argv_reserve(st, 16 + 2 * (fa->n + fb->n) + nids + 2 * noutbox))
        return TF_ENOMEM;
    cmd_t *c = cmd_get(st, CMD_COMMIT, (void *)cb, opaque);
    if (!c)
        return TF_ENOMEM;

    nl[0] = snprintf(nums[0], 24, "%lld", (long long)epoch);
    nl[1] = snprintf(nums[1], 24, "%lld", (long long)now_ms);
    nl[2] = snprintf(nums[2], 24, "%lld", (long long)(now_ms - st->dedup_window_ms));
    nl[3] = snprintf(nums[3], 24, "%lld", (long long)st->dedup_window_ms);
    size_t a = 0;
    st->argv[a] = "EVALSHA", st->argvlen[a++] = 7;
    st->argv[a] = st->sha_commit, st->argvlen[a++] = 40;
    st->argv[a] = "3", st->argvlen[a++] = 1;
    for (int k = 0; k < 3; k++)
        st->argv[a] = st->keybuf + off[k], st->argvlen[a++] = len[k];
    for (int k = 0; k < 4; k++)
        st->argv[a] = nums[k], st->argvlen[a++] = (size_t)nl[k];

    /* Only the fields that changed. Both encodings list fields in the same order, so
     * field i of after is field i of before, up to the variable tail (stage history
     * and watermarks), where the search goes on by name. */
    size_t nf_slot = a++, nf = 0, cursor = 0;
    for (size_t i = 0; i < fa->n; i++) {
        int same = 0;
        /* Sparse encodings skip different fields but keep one order: the search
         * goes on from the last match, so it is about one comparison a field. */
        for (size_t k = 0; k < fb->n; k++) {
            size_t j = (cursor + k) % fb->n;
            if (strcmp(fb->field[j], fa->field[i]) == 0) {
                same = fb->vlen[j] == fa->vlen[i] && memcmp(fb->value[j], fa->value[i], fa->vlen[i]) == 0;
                cursor = j + 1;
                break;
            }
        }
        /* An empty referred_by is never written (sparse), so a link made by
         * tf_store_link_referral after the load survives the commit. */
        if (same)
            continue;
        st->argv[a] = fa->field[i], st->argvlen[a++] = strlen(fa->field[i]);
        st->argv[a] = fa->value[i], st->argvlen[a++] = fa->vlen[i];
        nf++;
    }
    /* A field back at its default is not in the sparse encoding: blank it. */
    cursor = 0;
    for (size_t j = 0; j < fb->n; j++) {
        int present = 0;
        for (size_t k = 0; k < fa->n && !present; k++) {
            size_t i = (cursor + k) % fa->n;
            if ((present = strcmp(fa->field[i], fb->field[j]) == 0))
                cursor = i + 1;
        }
        if (present)
            continue;
        st->argv[a] = fb->field[j], st->argvlen[a++] = strlen(fb->field[j]);
        st->argv[a] = "", st->argvlen[a++] = 0;
        nf++;
    }
    nl[4] = snprintf(nums[4], 24, "%zu", nf);
    st->argv[nf_slot] = nums[4], st->argvlen[nf_slot] = (size_t)nl[4];

    nl[5] = snprintf(nums[5], 24, "%zu", nids);
    st->argv[a] = nums[5], st->argvlen[a++] = (size_t)nl[5];
    for (size_t i = 0; i < nids; i++)
        st->argv[a] = event_ids[i], st->argvlen[a++] = strlen(event_ids[i]);
    nl[6] = snprintf(nums[6], 24, "%zu", noutbox);
    st->argv[a] = nums[6], st->argvlen[a++] = (size_t)nl[6];
    for (size_t i = 0; i < noutbox; i++) {
        st->argv[a] = outbox[i].id, st->argvlen[a++] = strlen(outbox[i].id);
        st->argv[a] = outbox[i].payload, st->argvlen[a++] = outbox[i].payload_len;
    }
    rc = send_tracked(st, on_integer_reply, c, (int)a, st->argv, st->argvlen);
    if (rc)
        cmd_put(st, c);
    return rc;
}

/* ---- the server's settings ---- */

/* A CONFIG GET reply: {name, value}; the check named by privdata warns when the
 * setting can lose customers' state. Servers that disable CONFIG are not checked. */
static void on_config_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    tf_store_t *st = ac->data;
    const redisReply *r = reply;
    const char *what = privdata;
    if (!st || st->closing || !r)
        return;
    sent_pop(st);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_STRING) {
        TF_INFO(MOD, "redis: cannot read its %s setting (%s): not checked", what,
                r->type == REDIS_REPLY_ERROR ? r->str : "no value");
        return;
    }
    const char *v = r->element[1]->str;
    if (strcmp(what, "appendonly") == 0) {
        st->aof = strcmp(v, "yes") == 0;
    } else if (strcmp(what, "save") == 0) {
        if (!st->aof && v[0] == '\0')
            TF_WARN(MOD, "redis: no persistence (appendonly no, save \"\"): a restart loses every customer's "
                         "state; run it with appendonly yes (see README, Running Redis)");
    } else if (strcmp(v, "noeviction") != 0) {
        TF_WARN(MOD, "redis: maxmemory-policy %s evicts keys when memory runs out: customers' state can vanish "
                     "silently; run it with maxmemory-policy noeviction (touchflow pauses on OOM instead)",
                v);
    }
}

static void check_server(tf_store_t *st)
{
    static const char *const names[] = {"appendonly", "save", "maxmemory-policy"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *argv[3] = {"CONFIG", "GET", names[i]};
        size_t lens[3] = {6, 3, strlen(names[i])};
        send_tracked(st, on_config_reply, (void *)names[i], 3, argv, lens);
    }
}

/* ---- small commands ---- */

/* The reply of a fire-and-forget command; privdata names it for the log. */
static void on_plain_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    tf_store_t *st = ac->data;
    if (st && !st->closing && reply)
        sent_pop(st);
    if (st && reply && ((redisReply *)reply)->type == REDIS_REPLY_ERROR)
        fail_reply(st, reply, privdata);
}

static void on_ack_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    cmd_t *c = privdata;
    tf_store_t *st = c->st;
    redisReply *r = reply;
    tf_store_done_cb cb = (tf_store_done_cb)c->cb;
    void *opaque = c->opaque;
    (void)ac;
    cmd_retire(st, c, r);
    int status = r && r->type == REDIS_REPLY_INTEGER ? TF_OK : reply_status(st, r, "outbox ack");
    if (cb)
        cb(st, status, opaque);
}

int tf_store_outbox_ack(tf_store_t *st, const char *customer, const char *const *ids, size_t nids,
                        tf_store_done_cb cb, void *opaque)
{
    size_t off[3], len[3];
    int rc = check_ready(st);
    if (rc)
        return rc;
    if (nids == 0)
        return TF_EINVAL;
    if (build_keys(st, customer, off, len) || argv_reserve(st, 2 + nids))
        return TF_ENOMEM;
    size_t a = 0;
    st->argv[a] = "HDEL", st->argvlen[a++] = 4;
    st->argv[a] = st->keybuf + off[2], st->argvlen[a++] = len[2];
    for (size_t i = 0; i < nids; i++)
        st->argv[a] = ids[i], st->argvlen[a++] = strlen(ids[i]);
    cmd_t *c = cmd_get(st, CMD_ACK, (void *)cb, opaque);
    if (!c)
        return TF_ENOMEM;
    if ((rc = send_tracked(st, on_ack_reply, c, (int)a, st->argv, st->argvlen)))
        cmd_put(st, c);
    return rc;
}

int tf_store_next_epoch(tf_store_t *st, tf_store_epoch_cb cb, void *opaque)
{
    char key[96];
    int rc = check_ready(st);
    if (rc)
        return rc;
    int n = snprintf(key, sizeof(key), "%sepoch", st->prefix);
    /* The epoch callback has the commit callback's shape; on_integer_reply calls it. */
    cmd_t *c = cmd_get(st, CMD_EPOCH, (void *)cb, opaque);
    if (!c)
        return TF_ENOMEM;
    const char *argv[2] = {"INCR", key};
    size_t lens[2] = {4, (size_t)n};
    rc = send_tracked(st, on_integer_reply, c, 2, argv, lens);
    if (rc)
        cmd_put(st, c);
    return rc;
}

/* ---- indexes that span customers ---- */

/* "<prefix><a><open><b><close>" into st->keybuf; its length in *len. */
static int key_of(tf_store_t *st, const char *a, const char *open, const char *b, const char *close, size_t *len)
{
    size_t need = strlen(st->prefix) + strlen(a) + strlen(open) + strlen(b) + strlen(close) + 1;
    if (need > st->keybuf_cap) {
        char *k = realloc(st->keybuf, need);
        if (!k)
            return TF_ENOMEM;
        st->keybuf = k;
        st->keybuf_cap = need;
    }
    *len = (size_t)snprintf(st->keybuf, st->keybuf_cap, "%s%s%s%s%s", st->prefix, a, open, b, close);
    return TF_OK;
}

/* "<prefix><a><b>" into st->keybuf; its length in *len. */
static int build_key(tf_store_t *st, const char *a, const char *b, size_t *len)
{
    return key_of(st, a, "", b, "", len);
}

/* "<p><name>:{<tp>}": a structure of one partition, under the partition's hash tag. */
static int build_tp_key(tf_store_t *st, const char *name, const char *tp, size_t *len)
{
    return key_of(st, name, ":{", tp, "}", len);
}

int tf_store_index_set(tf_store_t *st, const char *tp, const char *customer, int64_t due_ms)
{
    char due[24];
    size_t klen;
    int rc = check_ready(st);
    if (rc)
        return rc;
    if (!tp || !customer)
        return TF_EINVAL;
    if (build_key(st, "timers:", tp, &klen))
        return TF_ENOMEM;
    if (due_ms <= 0) {
        const char *argv[3] = {"ZREM", st->keybuf, customer};
        size_t lens[3] = {4, klen, strlen(customer)};
        return send_tracked(st, on_plain_reply, "timer index", 3, argv, lens);
    }
    int n = snprintf(due, sizeof(due), "%lld", (long long)due_ms);
    const char *argv[4] = {"ZADD", st->keybuf, due, customer};
    size_t lens[4] = {4, klen, (size_t)n, strlen(customer)};
    return send_tracked(st, on_plain_reply, "timer index", 4, argv, lens);
}

#define DUE_STACK 256

/* Retires the command of a reply that must be an array: r, or NULL with *status
 * set (and an unexpected reply logged). Read c's callback and opaque first. */
static const redisReply *take_array_reply(tf_store_t *st, cmd_t *c, const redisReply *r, const char *what,
                                          int *status)
{
    cmd_retire(st, c, r);
    if (r && r->type == REDIS_REPLY_ARRAY)
        return r;
    *status = reply_status(st, r, what);
    if (r && r->type != REDIS_REPLY_ERROR)
        TF_ERROR(MOD, "%s: unexpected reply type %d", what, r->type);
    return NULL;
}

static void on_due_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    cmd_t *c = privdata;
    tf_store_t *st = c->st;
    tf_store_due_cb cb = (tf_store_due_cb)c->cb;
    void *opaque = c->opaque;
    int status;
    (void)ac;
    const redisReply *r = take_array_reply(st, c, reply, "timer index scan", &status);
    if (!r) {
        cb(st, status, NULL, 0, opaque);
        return;
    }
    const char *stack[DUE_STACK], **names = stack;
    if (r->elements > DUE_STACK && !(names = malloc(r->elements * sizeof(*names)))) {
        cb(st, TF_ENOMEM, NULL, 0, opaque);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            names[n++] = r->element[i]->str;
    cb(st, TF_OK, names, n, opaque);
    if (names != stack)
        free(names);
}

int tf_store_index_due(tf_store_t *st, const char *tp, int64_t until_ms, size_t limit, tf_store_due_cb cb,
                       void *opaque)
{
    char until[24], lim[24];
    size_t klen;
    int rc = check_ready(st);
    if (rc)
        return rc;
    if (!tp || !cb || limit == 0)
        return TF_EINVAL;
    if (build_key(st, "timers:", tp, &klen))
        return TF_ENOMEM;
    cmd_t *c = cmd_get(st, CMD_DUE, (void *)cb, opaque);
    if (!c)
        return TF_ENOMEM;
    int un = snprintf(until, sizeof(until), "%lld", (long long)until_ms);
    int ln = snprintf(lim, sizeof(lim), "%zu", limit);
    const char *argv[7] = {"ZRANGEBYSCORE", st->keybuf, "-inf", until, "LIMIT", "0", lim};
    size_t lens[7] = {13, klen, 4, (size_t)un, 5, 1, (size_t)ln};
    rc = send_tracked(st, on_due_reply, c, 7, argv, lens);
    if (rc)
        cmd_put(st, c);
    return rc;
}

int tf_store_value_set(tf_store_t *st, const char *tp, const char *customer, int64_t value)
{
    char v[24];
    size_t klen;
    int rc = check_ready(st);
    if (rc)
        return rc;
    if (!tp || !customer)
        return TF_EINVAL;
    if (build_tp_key(st, "value", tp, &klen))
        return TF_ENOMEM;
    int n = snprintf(v, sizeof(v), "%lld", (long long)value);
    const char *argv[4] = {"ZADD", st->keybuf, v, customer};
    size_t lens[4] = {4, klen, (size_t)n, strlen(customer)};
    return send_tracked(st, on_plain_reply, "value index", 4, argv, lens);
}

/* A cutoff from the population script: "none", or a score as Redis formats it
 * (integers as such; a score beyond 2^53 or a fraction as a double, "inf"). A
 * fractional cutoff rounds up, since values are integers and compared with >=. */
static int parse_cutoff(const redisReply *e, int64_t *out)
{
    if (e->type != REDIS_REPLY_STRING)
        return -1;
    if (e->len == 4 && memcmp(e->str, "none", 4) == 0) {
        *out = INT64_MAX;
        return 0;
    }
    if (tf_parse_i64(e->str, (size_t)e->len, out) == TF_OK)
        return 0;
    char *end;
    double d = strtod(e->str, &end); /* hiredis terminates bulk strings */
    if (end != e->str + e->len || e->len == 0 || d != d)
        return -1;
    if (d >= 9223372036854775807.0)
        *out = INT64_MAX;
    else if (d <= -9223372036854775808.0)
        *out = INT64_MIN;
    else {
        int64_t t = (int64_t)d; /* toward zero */
        *out = (double)t < d ? t + 1 : t;
    }
    return 0;
}

static void on_population_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    cmd_t *c = privdata;
    tf_store_t *st = c->st;
    tf_store_population_cb cb = (tf_store_population_cb)c->cb;
    void *opaque = c->opaque;
    tf_population_t pop = {0};
    int status;
    (void)ac;
    const redisReply *r = take_array_reply(st, c, reply, "population", &status);
    if (!r) {
        cb(st, status, NULL, opaque);
        return;
    }
    if (r->elements != 5 || r->element[0]->type != REDIS_REPLY_INTEGER ||
        parse_cutoff(r->element[1], &pop.key_enter) || parse_cutoff(r->element[2], &pop.key_keep) ||
        parse_cutoff(r->element[3], &pop.potential_enter) || parse_cutoff(r->element[4], &pop.potential_keep)) {
        TF_ERROR(MOD, "population: unexpected reply shape");
        cb(st, TF_EIO, NULL, opaque);
        return;
    }
    pop.buyers = r->element[0]->integer;
    cb(st, TF_OK, &pop, opaque);
}

int tf_store_population(tf_store_t *st, const char *tp, int keep, int64_t period_ms, int64_t key_pct,
                        int64_t potential_pct, int64_t hysteresis_pct, tf_store_population_cb cb, void *opaque)
{
    char shares[4][24], period[24] = "";
    int rc = check_ready(st);
    if (rc)
        return rc;
    if (!cb || !tp || key_pct < 0 || potential_pct < 0 || hysteresis_pct < 0 || key_pct > 1000 ||
        potential_pct > 1000 || hysteresis_pct > 1000)
        return TF_EINVAL;
    /* Both keys in one buffer: the ranking, then the kept cutoffs (one hash tag). */
    size_t vlen, tlen;
    if (build_tp_key(st, "tiers", tp, &tlen))
        return TF_ENOMEM;
    char *tiers_key = strdup(st->keybuf);
    if (!tiers_key || build_tp_key(st, "value", tp, &vlen)) {
        free(tiers_key);
        return TF_ENOMEM;
    }
    cmd_t *c = cmd_get(st, CMD_POPULATION, (void *)cb, opaque);
    if (!c) {
        free(tiers_key);
        return TF_ENOMEM;
    }
    const int64_t s[4] = {key_pct, key_pct + hysteresis_pct, key_pct + potential_pct,
                          key_pct + potential_pct + hysteresis_pct};
    const char *argv[10] = {"EVALSHA", st->sha_population, "2", st->keybuf, tiers_key};
    size_t lens[10] = {7, 40, 1, vlen, tlen};
    for (int i = 0; i < 4; i++) {
        argv[5 + i] = shares[i];
        lens[5 + i] = (size_t)snprintf(shares[i], sizeof(shares[i]), "%lld", (long long)s[i]);
    }
    if (keep)
        snprintf(period, sizeof(period), "%lld", (long long)period_ms);
    argv[9] = period;
    lens[9] = strlen(period);
    rc = send_tracked(st, on_population_reply, c, 10, argv, lens);
    free(tiers_key);
    if (rc)
        cmd_put(st, c);
    return rc;
}

int tf_store_link_referral(tf_store_t *st, const char *referred, const char *referrer)
{
    size_t off[3], len[3];
    int rc = check_ready(st);
    if (rc)
        return rc;
    if (!referred || !referrer)
        return TF_EINVAL;
    if (build_keys(st, referred, off, len))
        return TF_ENOMEM;
    const char *argv[4] = {"HSETNX", st->keybuf + off[0], "referred_by", referrer};
    size_t lens[4] = {6, len[0], 11, strlen(referrer)};
    return send_tracked(st, on_plain_reply, "referral link", 4, argv, lens);
}
