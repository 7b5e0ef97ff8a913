/* The store's connections: per-node connect, handshake, timeouts and backoff, and
 * for a Redis Cluster the slot map, redirects and ordered retries (see link.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "core/core.h"
#include "store/link.h"

#define MOD "store"

#define NSLOTS 16384
#define MAX_NODES 64
#define MAX_SCRIPTS 4
/* A nodeless cluster goes back to its seeds after this long. */
#define RESEED_MS 5000

/* Why a unit must be sent again. */
enum { RETRY_NONE = 0, RETRY_NOW, RETRY_ASK, RETRY_LATER };

typedef struct node {
    tf_link_t *l;
    char host[256];
    int port;
    redisAsyncContext *ac;
    int connecting;
    int ready;           /* handshake answered: scripts loaded */
    int scripts_pending;
    int reload_scripts;  /* NOSCRIPT seen: load them again before the next unit */
    int must_drop;       /* dropped by the watchdog, outside hiredis callbacks */
    const char *drop_why;
    int checked;         /* server settings read once */
    int aof;
    int attempts;
    size_t nslots;       /* slots the map gives it (cluster) */
    int replicas;        /* its replicas the cluster counts available, -1 unknown */
    int seed;
    int64_t connect_started_ms;
    /* Send times of unanswered commands, oldest first: a node answers in order,
     * so the head is the one a timeout is measured on. */
    int64_t *sent;
    size_t sent_cap, sent_head, sent_len;
    struct event *reconnect_timer;
} node_t;

/* A unit in flight or waiting for a retry. Pooled with its buffer: the per-event
 * path allocates nothing in steady state. */
typedef struct req {
    struct req *next;
    tf_link_t *l;
    uint64_t seq;
    unsigned slot;
    tf_link_reply_fn fn;
    void *priv;
    size_t ncmds, nreplied;
    size_t off[TF_LINK_UNIT_MAX + 1]; /* command i is buf[off[i], off[i + 1]) */
    char *buf;
    size_t cap;
    int retry;
    int want;         /* WAIT: the replicas this node must count */
    int tries;        /* TRYAGAIN/CLUSTERDOWN answers so far: its backoff */
    int lost;
    node_t *ask;      /* the ASK target */
    int64_t first_ms; /* first sent: retries stop at first_ms + the retry window */
} req_t;

struct tf_link_s {
    struct event_base *base;
    tf_config_redis_url url;
    int cluster;
    int64_t timeout_ms, backoff_min_ms, backoff_max_ms;
    const char *const *scripts;
    size_t nscripts;
    char sha[MAX_SCRIPTS][41];
    tf_link_state_cb state_cb;
    void *opaque;

    int up;
    int closing;
    uint64_t reconnects, redirects, rng, seq;

    node_t *nodes[MAX_NODES];
    size_t nnodes;
    node_t *slots[NSLOTS];
    node_t *scratch[NSLOTS];
    int have_map;
    int refreshing;
    int refresh_wanted;
    int64_t refreshed_ms;
    int64_t last_ready_ms;

    size_t inflight;          /* units sent and not finished */
    req_t *retry_head, *retry_tail;
    struct wait_s *waits;     /* tf_link_wait calls not answered yet */
    int waiting;              /* tf_link_wait is in use: keep the replica counts fresh */
    int unit_want;            /* the finishing unit's want, for on_wait_reply */
    /* A standalone server never redirects: units are formatted here and not kept,
     * so thousands in flight hold no copy of their commands. */
    char *fmt;
    size_t fmt_cap;
    struct event *watchdog;
    struct event *retry_timer;
    req_t *free_reqs;
    char wait_error[256];
};

static void on_connect(const redisAsyncContext *ac, int status);
static void on_disconnect(const redisAsyncContext *ac, int status);
static void on_unit_reply(redisAsyncContext *ac, void *reply, void *privdata);
static void on_watchdog(evutil_socket_t fd, short what, void *arg);
static void on_reconnect(evutil_socket_t fd, short what, void *arg);
static void on_retry(evutil_socket_t fd, short what, void *arg);
static void start_connect(node_t *n);
static void refresh_start(tf_link_t *l);

/* ---- bookkeeping ---- */

static int sent_push(node_t *n)
{
    if (n->sent_len == n->sent_cap) {
        size_t cap = n->sent_cap ? n->sent_cap * 2 : 256;
        int64_t *s = malloc(cap * sizeof(*s));
        if (!s)
            return TF_ENOMEM;
        for (size_t i = 0; i < n->sent_len; i++)
            s[i] = n->sent[(n->sent_head + i) % n->sent_cap];
        free(n->sent);
        n->sent = s;
        n->sent_cap = cap;
        n->sent_head = 0;
    }
    n->sent[(n->sent_head + n->sent_len) % n->sent_cap] = tf_time_mono_ms();
    n->sent_len++;
    return TF_OK;
}

static void sent_pop(node_t *n)
{
    if (n->sent_len == 0)
        return;
    n->sent_head = (n->sent_head + 1) % n->sent_cap;
    n->sent_len--;
}

static uint64_t next_rand(tf_link_t *l)
{
    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 7;
    l->rng ^= l->rng << 17;
    return l->rng;
}

static req_t *req_get(tf_link_t *l)
{
    req_t *q = l->free_reqs;
    if (q)
        l->free_reqs = q->next;
    else if (!(q = calloc(1, sizeof(*q))))
        return NULL;
    q->next = NULL;
    q->l = l;
    q->ncmds = q->nreplied = 0;
    q->off[0] = 0;
    q->retry = q->lost = q->tries = q->want = 0;
    q->ask = NULL;
    return q;
}

static void req_put(tf_link_t *l, req_t *q)
{
    q->next = l->free_reqs;
    l->free_reqs = q;
}

/* Appends one command in the protocol's form to the unit's buffer. */
static int req_format(req_t *q, const tf_link_cmd *c)
{
    size_t need = q->off[q->ncmds] + 16;
    for (int i = 0; i < c->argc; i++)
        need += c->argvlen[i] + 26;
    if (need > q->cap) {
        size_t cap = need < 512 ? 512 : need + need / 4;
        char *b = realloc(q->buf, cap);
        if (!b)
            return TF_ENOMEM;
        q->buf = b;
        q->cap = cap;
    }
    char *p = q->buf + q->off[q->ncmds];
    *p++ = '*';
    p += tf_i64_text(p, c->argc);
    *p++ = '\r', *p++ = '\n';
    for (int i = 0; i < c->argc; i++) {
        *p++ = '$';
        p += tf_i64_text(p, (int64_t)c->argvlen[i]);
        *p++ = '\r', *p++ = '\n';
        memcpy(p, c->argv[i], c->argvlen[i]);
        p += c->argvlen[i];
        *p++ = '\r', *p++ = '\n';
    }
    q->ncmds++;
    q->off[q->ncmds] = (size_t)(p - q->buf);
    return TF_OK;
}

/* ---- up and down ---- */

static void update_up(tf_link_t *l)
{
    int up = 0;
    if (!l->closing) {
        if (!l->cluster) {
            up = l->nnodes && l->nodes[0]->ready;
        } else if (l->have_map) {
            up = 1;
            for (size_t i = 0; i < l->nnodes; i++)
                if (l->nodes[i]->nslots && !l->nodes[i]->ready)
                    up = 0;
        }
    }
    if (up)
        l->last_ready_ms = tf_time_mono_ms();
    if (l->up == up)
        return;
    l->up = up;
    if (l->cluster)
        TF_INFO(MOD, "redis cluster %s", up ? "up: every slot's primary connected" : "down");
    else
        TF_INFO(MOD, "redis %s:%d %s", l->url.host, l->url.port, up ? "up" : "down");
    if (l->state_cb && !l->closing)
        l->state_cb(l, up, l->opaque);
}

/* A node wanted: one in the slot map, or the standalone server, or a seed while no
 * map is known. Others are closed and freed. */
static int node_wanted(const node_t *n)
{
    const tf_link_t *l = n->l;
    return !l->cluster || n->nslots > 0 || (n->seed && !l->have_map);
}

static void schedule_reconnect(node_t *n)
{
    tf_link_t *l = n->l;
    if (l->closing || !node_wanted(n))
        return;
    int64_t delay = l->backoff_min_ms;
    for (int i = 0; i < n->attempts && delay < l->backoff_max_ms; i++)
        delay *= 2;
    if (delay > l->backoff_max_ms)
        delay = l->backoff_max_ms;
    /* +-20% jitter so a fleet does not reconnect in lockstep. */
    delay += (int64_t)(next_rand(l) % (uint64_t)(delay / 5 * 2 + 1)) - delay / 5;
    if (n->attempts < 30)
        n->attempts++;
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
    evtimer_add(n->reconnect_timer, &tv);
    TF_DEBUG(MOD, "reconnecting to redis %s:%d in %lld ms", n->host, n->port, (long long)delay);
}

/* The node's connection is gone (dropped or lost): what it carried has failed. */
static void node_lost(node_t *n)
{
    tf_link_t *l = n->l;
    n->ac = NULL;
    n->connecting = 0;
    n->ready = 0;
    n->sent_len = 0;
    l->reconnects++;
    update_up(l);
    if (l->cluster)
        l->refresh_wanted = 1; /* a failover may have moved its slots */
    schedule_reconnect(n);
}

/* Drops the connection: every unit it carried fails, then a reconnect is
 * scheduled. Never called from inside a hiredis callback. */
static void drop_node(node_t *n, const char *why)
{
    redisAsyncContext *ac = n->ac;
    if (!ac)
        return;
    if (why)
        TF_WARN(MOD, "dropping the connection to redis %s:%d: %s", n->host, n->port, why);
    /* Down before the callbacks run, so what they send meets a closed door. */
    n->ac = NULL;
    n->ready = 0;
    update_up(n->l);
    redisAsyncFree(ac);
    node_lost(n);
}

static node_t *node_find(tf_link_t *l, const char *host, int port)
{
    for (size_t i = 0; i < l->nnodes; i++)
        if (l->nodes[i]->port == port && strcmp(l->nodes[i]->host, host) == 0)
            return l->nodes[i];
    return NULL;
}

/* The node at host:port, created and connecting if new; NULL when the table is
 * full or memory ran out. */
static node_t *node_get(tf_link_t *l, const char *host, int port)
{
    node_t *n = node_find(l, host, port);
    if (n)
        return n;
    if (l->nnodes == MAX_NODES || strlen(host) >= sizeof(n->host)) {
        TF_ERROR(MOD, "redis cluster: cannot track node %s:%d (at most %d nodes)", host, port, MAX_NODES);
        return NULL;
    }
    if (!(n = calloc(1, sizeof(*n))))
        return NULL;
    n->l = l;
    tf_strlcpy(n->host, host, sizeof(n->host));
    n->port = port;
    n->replicas = -1;
    if (!(n->reconnect_timer = evtimer_new(l->base, on_reconnect, n))) {
        free(n);
        return NULL;
    }
    l->nodes[l->nnodes++] = n;
    start_connect(n);
    return n;
}

static void node_free(node_t *n)
{
    if (n->ac) {
        redisAsyncContext *ac = n->ac;
        n->ac = NULL;
        redisAsyncFree(ac);
    }
    if (n->reconnect_timer)
        event_free(n->reconnect_timer);
    free(n->sent);
    free(n);
}

/* ---- handshake ---- */

static void on_handshake(redisAsyncContext *ac, void *reply, void *privdata)
{
    node_t *n = ac->data;
    redisReply *r = reply;
    if (!n || !r)
        return;
    sent_pop(n);
    if (r->type == REDIS_REPLY_ERROR)
        TF_ERROR(MOD, "redis %s:%d refused %s: %s", n->host, n->port, (const char *)privdata, r->str);
}

static int send_raw(node_t *n, redisCallbackFn *fn, void *priv, int argc, const char **argv, const size_t *lens)
{
    if (sent_push(n) != TF_OK)
        return TF_ENOMEM;
    if (redisAsyncCommandArgv(n->ac, fn, priv, argc, argv, lens) != REDIS_OK) {
        n->sent_len--;
        return TF_EIO;
    }
    return TF_OK;
}

/* A CONFIG GET reply: {name, value}; the check named by privdata warns when the
 * setting can lose customers' state. Servers that disable CONFIG are not checked. */
static void on_config_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    node_t *n = ac->data;
    const redisReply *r = reply;
    const char *what = privdata;
    if (!n || !r)
        return;
    sent_pop(n);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_STRING) {
        TF_INFO(MOD, "redis %s:%d: cannot read its %s setting (%s): not checked", n->host, n->port, what,
                r->type == REDIS_REPLY_ERROR ? r->str : "no value");
        return;
    }
    const char *v = r->element[1]->str;
    if (strcmp(what, "appendonly") == 0) {
        n->aof = strcmp(v, "yes") == 0;
    } else if (strcmp(what, "save") == 0) {
        if (!n->aof && v[0] == '\0')
            TF_WARN(MOD, "redis %s:%d: no persistence (appendonly no, save \"\"): a restart loses every customer's "
                         "state; run it with appendonly yes (see README, Running Redis)",
                    n->host, n->port);
    } else if (strcmp(v, "noeviction") != 0) {
        TF_WARN(MOD, "redis %s:%d: maxmemory-policy %s evicts keys when memory runs out: customers' state can "
                     "vanish silently; run it with maxmemory-policy noeviction (touchflow pauses on OOM instead)",
                n->host, n->port, v);
    }
}

static void check_server(node_t *n)
{
    static const char *const names[] = {"appendonly", "save", "maxmemory-policy"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *argv[3] = {"CONFIG", "GET", names[i]};
        size_t lens[3] = {6, 3, strlen(names[i])};
        send_raw(n, on_config_reply, (void *)names[i], 3, argv, lens);
    }
    n->checked = 1;
}

static void on_script_loaded(redisAsyncContext *ac, void *reply, void *privdata)
{
    node_t *n = ac->data;
    redisReply *r = reply;
    size_t i = (size_t)(uintptr_t)privdata;
    if (!n || !r)
        return;
    tf_link_t *l = n->l;
    sent_pop(n);
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        TF_ERROR(MOD, "redis %s:%d: SCRIPT LOAD failed: %s", n->host, n->port,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        return; /* the watchdog drops a handshake that does not finish */
    }
    /* The SHA is the script's: every node answers the same. */
    memcpy(l->sha[i], r->str, 40);
    l->sha[i][40] = '\0';
    if (n->scripts_pending && --n->scripts_pending == 0 && !n->ready) {
        n->ready = 1;
        n->attempts = 0;
        TF_DEBUG(MOD, "redis %s:%d ready", n->host, n->port);
        if (!n->checked)
            check_server(n);
        update_up(l);
        if (l->cluster && (l->refresh_wanted || !l->have_map))
            refresh_start(l);
        if (l->retry_head)
            event_active(l->retry_timer, EV_TIMEOUT, 0);
    }
}

static void load_scripts(node_t *n)
{
    tf_link_t *l = n->l;
    n->scripts_pending = (int)l->nscripts;
    for (size_t i = 0; i < l->nscripts; i++) {
        const char *argv[3] = {"SCRIPT", "LOAD", l->scripts[i]};
        size_t lens[3] = {6, 4, strlen(l->scripts[i])};
        send_raw(n, on_script_loaded, (void *)(uintptr_t)i, 3, argv, lens);
    }
    n->reload_scripts = 0;
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    node_t *n = ac->data;
    if (!n || n->ac != ac)
        return;
    tf_link_t *l = n->l;
    n->connecting = 0;
    if (status != REDIS_OK) {
        TF_WARN(MOD, "cannot connect to redis %s:%d: %s", n->host, n->port, ac->errstr);
        n->ac = NULL; /* hiredis frees the context after this callback */
        schedule_reconnect(n);
        return;
    }
    TF_DEBUG(MOD, "connected to redis %s:%d", n->host, n->port);
    /* Pipelined: AUTH, SELECT, then the scripts; ready once their SHAs are back. */
    if (l->url.password[0]) {
        const char *argv[3] = {"AUTH", l->url.username, l->url.password};
        size_t lens[3] = {4, strlen(l->url.username), strlen(l->url.password)};
        if (l->url.username[0])
            send_raw(n, on_handshake, "AUTH", 3, argv, lens);
        else
            send_raw(n, on_handshake, "AUTH", 2, (const char *[]){"AUTH", l->url.password},
                     (const size_t[]){4, lens[2]});
    }
    if (l->url.db && !l->cluster) {
        char db[16];
        int len = snprintf(db, sizeof(db), "%d", l->url.db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, (size_t)len};
        send_raw(n, on_handshake, "SELECT", 2, argv, lens);
    }
    load_scripts(n);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    node_t *n = ac->data;
    if (!n || n->ac != ac)
        return; /* dropped by us */
    if (status != REDIS_OK)
        TF_WARN(MOD, "redis %s:%d connection lost: %s", n->host, n->port, ac->errstr);
    node_lost(n);
}

static void start_connect(node_t *n)
{
    tf_link_t *l = n->l;
    redisAsyncContext *ac = redisAsyncConnect(n->host, n->port);
    if (!ac) {
        schedule_reconnect(n);
        return;
    }
    if (ac->err) {
        TF_WARN(MOD, "cannot connect to redis %s:%d: %s", n->host, n->port, ac->errstr);
        redisAsyncFree(ac);
        schedule_reconnect(n);
        return;
    }
    ac->data = n;
    if (redisLibeventAttach(ac, l->base) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_reconnect(n);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    n->ac = ac;
    n->connecting = 1;
    n->ready = 0;
    n->connect_started_ms = tf_time_mono_ms();
}

static void on_reconnect(evutil_socket_t fd, short what, void *arg)
{
    node_t *n = arg;
    (void)fd, (void)what;
    if (!n->ac && !n->l->closing && node_wanted(n))
        start_connect(n);
}

/* ---- the slot map ---- */

static void set_slot(tf_link_t *l, unsigned slot, node_t *n)
{
    node_t *old = l->slots[slot];
    if (old == n)
        return;
    if (old)
        old->nslots--;
    if (n)
        n->nslots++;
    l->slots[slot] = n;
}

/* A CLUSTER SLOTS reply: {start, end, {ip, port, id, ...}, replicas...}... */
static void on_slots(tf_link_t *l, const redisReply *r, void *priv)
{
    node_t *asked = priv;
    l->refreshing = 0;
    l->refreshed_ms = tf_time_mono_ms();
    if (l->closing)
        return;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        TF_WARN(MOD, "redis cluster: CLUSTER SLOTS failed: %s",
                r && r->type == REDIS_REPLY_ERROR ? r->str : "no reply");
        l->refresh_wanted = 1;
        return;
    }
    memset(l->scratch, 0, sizeof(l->scratch));
    for (size_t i = 0; i < l->nnodes; i++)
        l->nodes[i]->replicas = 0;
    size_t covered = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER || e->element[2]->type != REDIS_REPLY_ARRAY ||
            e->element[2]->elements < 2 || e->element[2]->element[0]->type != REDIS_REPLY_STRING ||
            e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
            continue;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        if (lo < 0 || hi >= NSLOTS || lo > hi)
            continue;
        /* An empty address is the node that answered. */
        const char *host = e->element[2]->element[0]->len ? e->element[2]->element[0]->str : asked->host;
        node_t *n = node_get(l, host, (int)e->element[2]->element[1]->integer);
        if (!n)
            continue;
        /* Listed after the primary: its replicas, failed ones left out. */
        if ((int)e->elements - 3 > n->replicas)
            n->replicas = (int)e->elements - 3;
        for (long long s = lo; s <= hi; s++) {
            if (!l->scratch[s])
                covered++;
            l->scratch[s] = n;
        }
    }
    for (unsigned s = 0; s < NSLOTS; s++)
        set_slot(l, s, l->scratch[s]);
    int had = l->have_map;
    l->have_map = covered == NSLOTS;
    l->refresh_wanted = !l->have_map;
    if (!l->have_map)
        TF_WARN(MOD, "redis cluster: %zu of %d slots served; waiting for the cluster to cover them", covered, NSLOTS);
    else if (!had)
        TF_INFO(MOD, "redis cluster: slot map read from %s:%d", asked->host, asked->port);
    update_up(l);
    if (l->retry_head)
        event_active(l->retry_timer, EV_TIMEOUT, 0);
}

static node_t *any_ready_node(tf_link_t *l)
{
    for (size_t i = 0; i < l->nnodes; i++)
        if (l->nodes[i]->ready && !l->nodes[i]->must_drop)
            return l->nodes[i];
    return NULL;
}

static int unit_write(node_t *n, req_t *q);

/* Asks a connected node for the slot map; with none connected, the watchdog asks
 * again once one is. */
static void refresh_start(tf_link_t *l)
{
    if (!l->cluster || l->refreshing || l->closing)
        return;
    node_t *n = any_ready_node(l);
    if (!n) {
        l->refresh_wanted = 1;
        return;
    }
    req_t *q = req_get(l);
    static const char *const argv[2] = {"CLUSTER", "SLOTS"};
    static const size_t lens[2] = {7, 5};
    tf_link_cmd c = {2, argv, lens};
    if (!q || req_format(q, &c) != TF_OK) {
        if (q)
            req_put(l, q);
        l->refresh_wanted = 1;
        return;
    }
    q->fn = on_slots;
    q->priv = n;
    q->first_ms = tf_time_mono_ms();
    q->seq = 0;
    l->refreshing = 1;
    if (unit_write(n, q) != TF_OK) {
        l->refreshing = 0;
        l->refresh_wanted = 1;
        req_put(l, q);
    }
}

/* ---- units ---- */

static int64_t retry_window_ms(const tf_link_t *l) { return 5 * l->timeout_ms; }

/* Queues the unit for a retry, in the order units were first sent. */
static void retry_insert(tf_link_t *l, req_t *q)
{
    q->next = NULL;
    if (!l->retry_head) {
        l->retry_head = l->retry_tail = q;
        return;
    }
    if (q->seq > l->retry_tail->seq) {
        l->retry_tail->next = q;
        l->retry_tail = q;
        return;
    }
    req_t **pp = &l->retry_head;
    while (*pp && (*pp)->seq < q->seq)
        pp = &(*pp)->next;
    q->next = *pp;
    *pp = q;
}

/* Resends the waiting units in delay_ms (0: as soon as nothing is in flight). A
 * later resend already armed is kept: the queue goes out whole either way. */
static void retry_arm(tf_link_t *l, int64_t delay_ms)
{
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
    if (delay_ms == 0 || !evtimer_pending(l->retry_timer, NULL))
        evtimer_add(l->retry_timer, &tv);
}

/* TRYAGAIN and CLUSTERDOWN last as long as a migration or a failover: the wait
 * doubles per answer, from backoff_min_ms up to a second. */
static int64_t retry_backoff_ms(const tf_link_t *l, int tries)
{
    int64_t delay = l->backoff_min_ms;
    for (int i = 1; i < tries && delay < 1000; i++)
        delay *= 2;
    return delay > 1000 ? 1000 : delay;
}

static void waits_redo(tf_link_t *l, uint64_t seq);
static void waits_start(tf_link_t *l);

/* The unit's last reply is in (r, or NULL when lost). */
static void unit_finish(tf_link_t *l, req_t *q, const redisReply *r)
{
    if (q->seq && --l->inflight == 0 && l->retry_head && !l->closing)
        event_active(l->retry_timer, EV_TIMEOUT, 0); /* the units waiting for this one */
    if (!l->closing && q->seq && !q->lost && q->retry && tf_time_mono_ms() - q->first_ms < retry_window_ms(l)) {
        l->redirects++;
        int64_t delay = q->retry == RETRY_LATER ? retry_backoff_ms(l, ++q->tries) : 0;
        waits_redo(l, q->seq);
        retry_insert(l, q);
        retry_arm(l, delay);
        return;
    }
    tf_link_reply_fn fn = q->fn;
    void *priv = q->priv;
    int lost = q->lost;
    l->unit_want = q->want;
    req_put(l, q);
    fn(l, lost ? NULL : r, priv);
}

static int parse_redirect(const char *msg, unsigned *slot, char *host, size_t hostsize, int *port)
{
    /* "MOVED 3999 127.0.0.1:6381" / "ASK 3999 [::1]:6381" */
    const char *p = strchr(msg, ' ');
    if (!p)
        return -1;
    char *end;
    unsigned long s = strtoul(p + 1, &end, 10);
    if (end == p + 1 || *end != ' ' || s >= NSLOTS)
        return -1;
    const char *addr = end + 1, *colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return -1;
    long pt = strtol(colon + 1, &end, 10);
    if (*end || pt <= 0 || pt > 65535)
        return -1;
    size_t hl = (size_t)(colon - addr);
    if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']')
        addr++, hl -= 2;
    if (hl == 0 || hl >= hostsize)
        return -1;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    *slot = (unsigned)s;
    *port = (int)pt;
    return 0;
}

/* An error reply of a unit's command: decides whether the unit goes again. */
static void note_error(tf_link_t *l, node_t *n, req_t *q, const redisReply *r, int last)
{
    const char *m = r->str;
    char host[256];
    unsigned slot;
    int port;
    if (strncmp(m, "NOSCRIPT", 8) == 0) {
        /* A SCRIPT FLUSH, or a node that came back empty: load and go again. A
         * standalone unit kept no copy to send again: it fails, and the connection
         * is made again with the scripts. */
        if (n)
            n->reload_scripts = 1;
        if (l->cluster)
            q->retry = RETRY_NOW;
        else if (n)
            n->must_drop = 1, n->drop_why = "its scripts are gone (NOSCRIPT)";
        return;
    }
    if (!l->cluster) {
        /* A standalone server that became a replica (or answers for a cluster):
         * the next connection finds where to write. The error goes to the caller. */
        if (n && (strncmp(m, "READONLY", 8) == 0 || strncmp(m, "MASTERDOWN", 10) == 0 ||
                  strncmp(m, "MOVED ", 6) == 0 || strncmp(m, "ASK ", 4) == 0))
            n->must_drop = 1, n->drop_why = "it is not (or no longer) a primary";
        if (!last)
            TF_ERROR(MOD, "a command of a transaction was refused: %s", m);
        return;
    }
    if (strncmp(m, "MOVED ", 6) == 0 && parse_redirect(m, &slot, host, sizeof host, &port) == 0) {
        node_t *to = node_get(l, host, port);
        if (to) {
            set_slot(l, slot, to);
            update_up(l);
        }
        /* One slot moved tells little about the others: read the whole map. */
        refresh_start(l);
        q->retry = RETRY_NOW;
    } else if (strncmp(m, "ASK ", 4) == 0 && parse_redirect(m, &slot, host, sizeof host, &port) == 0) {
        q->ask = node_get(l, host, port);
        q->retry = q->ask ? RETRY_ASK : RETRY_LATER;
    } else if (strncmp(m, "TRYAGAIN", 8) == 0 || strncmp(m, "CLUSTERDOWN", 11) == 0 ||
               strncmp(m, "MASTERDOWN", 10) == 0 || strncmp(m, "READONLY", 8) == 0) {
        /* A slot half migrated, a failover under way, or a primary turned
         * replica: wait, and read the map again. */
        if (strncmp(m, "TRYAGAIN", 8) != 0)
            refresh_start(l);
        if (q->retry == RETRY_NONE)
            q->retry = RETRY_LATER;
    } else if (!last) {
        TF_ERROR(MOD, "a command of a transaction was refused: %s", m);
    }
}

static void on_unit_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    node_t *n = ac->data;
    req_t *q = privdata;
    tf_link_t *l = q->l;
    const redisReply *r = reply;
    if (n && r && !l->closing)
        sent_pop(n);
    q->nreplied++;
    int last = q->nreplied >= q->ncmds;
    if (!r)
        q->lost = 1;
    else if (r->type == REDIS_REPLY_ERROR)
        note_error(l, n, q, r, last);
    if (last)
        unit_finish(l, q, r);
}

/* Writes the unit's commands to n. On a failure after the first, the unit is
 * shortened to what went out, and the connection is dropped so its replies come
 * back empty (a half-sent MULTI must not stay open): it then fails as lost. */
static int unit_write(node_t *n, req_t *q)
{
    size_t ncmds = q->ncmds;
    q->nreplied = 0;
    q->lost = 0;
    q->retry = RETRY_NONE;
    for (size_t i = 0; i < ncmds; i++) {
        int rc = sent_push(n);
        if (rc == TF_OK && redisAsyncFormattedCommand(n->ac, on_unit_reply, q, q->buf + q->off[i],
                                                      q->off[i + 1] - q->off[i]) != REDIS_OK) {
            n->sent_len--;
            rc = TF_EIO;
        }
        if (rc != TF_OK) {
            if (i == 0)
                return rc;
            q->ncmds = i;
            q->lost = 1;
            n->must_drop = 1, n->drop_why = "a transaction was half sent";
            break;
        }
    }
    if (q->seq)
        q->l->inflight++;
    return TF_OK;
}

static node_t *route(tf_link_t *l, unsigned slot)
{
    if (!l->cluster)
        return l->nnodes ? l->nodes[0] : NULL;
    return l->slots[slot % NSLOTS];
}

int tf_link_send(tf_link_t *l, unsigned slot, tf_link_reply_fn fn, void *priv, size_t ncmds,
                 const tf_link_cmd *cmds)
{
    if (l->closing)
        return TF_ECLOSED;
    if (!l->up)
        return TF_EAGAIN;
    if (!fn || ncmds == 0 || ncmds > TF_LINK_UNIT_MAX)
        return TF_EINVAL;
    req_t *q = req_get(l);
    if (!q)
        return TF_ENOMEM;
    int shared = !l->cluster;
    if (shared) {
        q->buf = l->fmt, q->cap = l->fmt_cap;
        l->fmt = NULL, l->fmt_cap = 0;
    }
    int rc = TF_OK;
    for (size_t i = 0; i < ncmds && rc == TF_OK; i++)
        rc = req_format(q, &cmds[i]);
    if (rc != TF_OK) {
        if (shared)
            l->fmt = q->buf, l->fmt_cap = q->cap, q->buf = NULL, q->cap = 0;
        req_put(l, q);
        return rc;
    }
    q->slot = slot;
    q->fn = fn;
    q->priv = priv;
    q->seq = ++l->seq;
    q->first_ms = tf_time_mono_ms();
    node_t *n = route(l, slot);
    /* Behind units waiting for a retry, or for a node just learned of: in order. */
    if (l->retry_head || !n || !n->ready || n->reload_scripts) {
        int first = !l->retry_head;
        retry_insert(l, q);
        if (first)
            retry_arm(l, 0);
        return TF_OK;
    }
    rc = unit_write(n, q);
    if (shared) /* hiredis has its copy */
        l->fmt = q->buf, l->fmt_cap = q->cap, q->buf = NULL, q->cap = 0;
    if (rc != TF_OK)
        req_put(l, q);
    return rc;
}

/* Sends the waiting units, oldest first, once every earlier unit has answered and
 * the slot map is current. */
static void retry_resend(tf_link_t *l)
{
    if (l->closing || !l->retry_head)
        return;
    if (l->inflight > 0 || l->refreshing)
        return; /* unit_finish and on_slots come back here */
    int64_t now = tf_time_mono_ms();
    int later = 0;
    while (l->retry_head) {
        req_t *q = l->retry_head;
        node_t *n = q->retry == RETRY_ASK ? q->ask : route(l, q->slot);
        if (!n || !n->ready) {
            if (now - q->first_ms >= retry_window_ms(l)) {
                l->retry_head = q->next;
                if (!l->retry_head)
                    l->retry_tail = NULL;
                q->lost = 1;
                q->retry = RETRY_NONE;
                l->inflight++; /* unit_finish takes it back */
                unit_finish(l, q, NULL);
                continue;
            }
            later = 1;
            break;
        }
        l->retry_head = q->next;
        if (!l->retry_head)
            l->retry_tail = NULL;
        if (n->reload_scripts)
            load_scripts(n);
        if (q->retry == RETRY_ASK) {
            const char *argv[1] = {"ASKING"};
            size_t lens[1] = {6};
            send_raw(n, on_handshake, "ASKING", 1, argv, lens);
        }
        if (unit_write(n, q) != TF_OK) {
            q->lost = 1;
            q->retry = RETRY_NONE;
            l->inflight++;
            unit_finish(l, q, NULL);
        }
    }
    if (later)
        retry_arm(l, l->backoff_min_ms); /* a node is connecting */
    else
        waits_start(l);
}

static void waits_settle(tf_link_t *l);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    retry_resend(arg);
    waits_settle(arg);
}

/* ---- WAIT ---- */

/* A tf_link_wait call. WAIT covers the writes its connection carried before it, so
 * it must follow every unit sent before the call: it starts once no unit waits for
 * a retry, and when a unit it covers is refused and sent again after its WAITs went
 * out, it is done again. */
typedef struct wait_s {
    struct wait_s *next;
    tf_link_wait_fn done;
    void *priv;
    int replicas;
    int64_t timeout_ms;
    uint64_t seq;     /* the last unit sent before the call */
    int64_t first_ms;
    int started;
    int redo;
    int settled;      /* answered without a WAIT out: completed from the loop */
    int status;
    size_t pending;   /* WAIT replies owed */
} wait_t;

static void wait_complete(tf_link_t *l, wait_t *w, int status)
{
    wait_t **pp = &l->waits;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
    tf_link_wait_fn done = w->done;
    void *priv = w->priv;
    free(w);
    done(l, status, priv);
}

static void on_wait_reply(tf_link_t *l, const redisReply *r, void *priv);

/* Sends WAIT to every primary; returns how many went out. */
static size_t wait_send(tf_link_t *l, wait_t *w)
{
    char nrep[16], tmo[24];
    const char *argv[3] = {"WAIT", nrep, tmo};
    size_t lens[3] = {4, (size_t)snprintf(nrep, sizeof nrep, "%d", w->replicas),
                      (size_t)snprintf(tmo, sizeof tmo, "%lld", (long long)w->timeout_ms)};
    tf_link_cmd c = {3, argv, lens};
    w->started = 1;
    w->redo = 0;
    w->settled = 0;
    w->status = TF_OK;
    w->pending = 0;
    for (size_t i = 0; i < l->nnodes; i++) {
        node_t *n = l->nodes[i];
        if (!n->ready || (l->cluster && !n->nslots))
            continue;
        /* A primary left without replicas (its own died, or it was just promoted)
         * has none that a failover could promote: waiting for one would stop
         * every batch until an operator adds one, and protects nothing. */
        int want = n->replicas >= 0 && n->replicas < w->replicas ? n->replicas : w->replicas;
        if (want == 0)
            continue;
        lens[1] = (size_t)snprintf(nrep, sizeof nrep, "%d", want);
        req_t *q = req_get(l);
        if (!q || req_format(q, &c) != TF_OK) {
            if (q)
                req_put(l, q);
            w->status = TF_ENOMEM;
            continue;
        }
        q->fn = on_wait_reply;
        q->priv = w;
        q->seq = 0;
        q->want = want;
        q->first_ms = tf_time_mono_ms();
        if (unit_write(n, q) != TF_OK) {
            w->status = TF_EIO;
            req_put(l, q);
            continue;
        }
        w->pending++;
    }
    return w->pending;
}

/* A wait with no WAIT out (no primary needs one, or none could be sent) is
 * answered from the loop, never from inside the call that started it. */
static void wait_settle_later(tf_link_t *l, wait_t *w)
{
    w->settled = 1;
    event_active(l->retry_timer, EV_TIMEOUT, 0);
}

static void waits_settle(tf_link_t *l)
{
    wait_t *w = l->waits;
    while (w) {
        wait_t *next = w->next;
        if (w->settled)
            wait_complete(l, w, w->status);
        w = next;
    }
}

/* Starts the waits that were held behind units waiting for a retry. */
static void waits_start(tf_link_t *l)
{
    wait_t *w = l->waits;
    while (w) {
        wait_t *next = w->next;
        if (!w->started && wait_send(l, w) == 0)
            wait_settle_later(l, w);
        w = next;
    }
}

/* The unit seq is sent again: the waits already out that cover it are redone. */
static void waits_redo(tf_link_t *l, uint64_t seq)
{
    for (wait_t *w = l->waits; w; w = w->next)
        if (w->started && w->seq >= seq)
            w->redo = 1;
}

static void on_wait_reply(tf_link_t *l, const redisReply *r, void *priv)
{
    wait_t *w = priv;
    if (l->closing)
        w->status = TF_ECLOSED;
    else if (!r || r->type != REDIS_REPLY_INTEGER) {
        if (w->status == TF_OK)
            w->status = TF_EIO;
        snprintf(l->wait_error, sizeof l->wait_error, "WAIT failed: %s",
                 r && r->type == REDIS_REPLY_ERROR ? r->str : "no reply");
    } else if (r->integer < l->unit_want) {
        if (w->status == TF_OK)
            w->status = TF_EIO;
        snprintf(l->wait_error, sizeof l->wait_error, "%lld of %d replicas acknowledged in time", r->integer,
                 l->unit_want);
    }
    if (--w->pending)
        return;
    if (w->redo && !l->closing && tf_time_mono_ms() - w->first_ms < retry_window_ms(l)) {
        w->started = 0;
        if (!l->retry_head && wait_send(l, w) == 0)
            wait_settle_later(l, w);
        return;
    }
    wait_complete(l, w, w->status);
}

int tf_link_wait(tf_link_t *l, int replicas, int64_t timeout_ms, tf_link_wait_fn done, void *priv)
{
    if (l->closing)
        return TF_ECLOSED;
    if (!l->up)
        return TF_EAGAIN;
    if (replicas < 1 || !done)
        return TF_EINVAL;
    wait_t *w = calloc(1, sizeof(*w));
    if (!w)
        return TF_ENOMEM;
    w->done = done;
    w->priv = priv;
    w->replicas = replicas;
    w->timeout_ms = timeout_ms;
    w->seq = l->seq;
    w->first_ms = tf_time_mono_ms();
    l->waiting = 1;
    if (!l->retry_head && wait_send(l, w) == 0) {
        if (w->status != TF_OK) {
            /* Nothing went out: no callback will come, so none is promised. */
            int status = w->status;
            free(w);
            return status;
        }
        w->settled = 1; /* no primary needs a WAIT */
        event_active(l->retry_timer, EV_TIMEOUT, 0);
    }
    w->next = l->waits;
    l->waits = w;
    return TF_OK;
}

const char *tf_link_wait_error(const tf_link_t *l) { return l->wait_error; }

/* ---- watchdog ---- */

/* hiredis 0.14 has no timeouts: a stuck connect or an unanswered command older
 * than timeout_ms drops that node's connection, so nothing waits forever. It also
 * asks for the slot map while one is wanted, and frees nodes no longer in it. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    tf_link_t *l = arg;
    int64_t now = tf_time_mono_ms();
    (void)fd, (void)what;
    for (size_t i = 0; i < l->nnodes; i++) {
        node_t *n = l->nodes[i];
        if (!n->ac)
            continue;
        if (n->must_drop) {
            n->must_drop = 0;
            drop_node(n, n->drop_why ? n->drop_why : "connection state unknown");
        } else if (n->connecting && now - n->connect_started_ms > l->timeout_ms) {
            drop_node(n, "connect timed out");
        } else if (n->sent_len && now - n->sent[n->sent_head] > l->timeout_ms) {
            drop_node(n, "command timed out");
        } else if (!n->connecting && !n->ready && now - n->connect_started_ms > l->timeout_ms) {
            drop_node(n, "handshake failed");
        }
    }
    if (!l->cluster)
        return;
    /* Lost every node for long: start again from the seeds. */
    if (!any_ready_node(l) && now - l->last_ready_ms > RESEED_MS) {
        l->last_ready_ms = now;
        for (size_t i = 0; i < l->url.nseeds; i++) {
            node_t *n = node_get(l, l->url.seeds[i].host, l->url.seeds[i].port);
            if (n) {
                n->seed = 1;
                if (!n->ac && !evtimer_pending(n->reconnect_timer, NULL))
                    start_connect(n);
            }
        }
    }
    if ((l->refresh_wanted || !l->up) && !l->refreshing && now - l->refreshed_ms >= 250)
        refresh_start(l);
    /* Replicas come back (or are added) without a redirect to say so: with waits in
     * use, the map and its replica counts are read again every second. */
    else if (l->waiting && !l->refreshing && now - l->refreshed_ms >= 1000)
        refresh_start(l);
    if (l->retry_head || l->inflight)
        return; /* units may name a node: keep them all */
    for (size_t i = 0; i < l->nnodes;) {
        node_t *n = l->nodes[i];
        if (!node_wanted(n) && n->sent_len == 0) {
            TF_DEBUG(MOD, "redis cluster: closing %s:%d (serves no slot)", n->host, n->port);
            node_free(n);
            l->nodes[i] = l->nodes[--l->nnodes];
            continue;
        }
        i++;
    }
}

/* ---- lifecycle ---- */

tf_link_t *tf_link_new(struct event_base *base, const tf_link_opts *opts, char *err, size_t errsize)
{
    if (opts->nscripts > MAX_SCRIPTS) {
        snprintf(err, errsize, "too many scripts");
        return NULL;
    }
    tf_link_t *l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    l->base = base;
    l->url = *opts->url;
    l->cluster = l->url.cluster;
    l->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 2000;
    l->backoff_min_ms = opts->backoff_min_ms > 0 ? opts->backoff_min_ms : 100;
    l->backoff_max_ms = opts->backoff_max_ms >= l->backoff_min_ms ? opts->backoff_max_ms : l->backoff_min_ms;
    l->scripts = opts->scripts;
    l->nscripts = opts->nscripts;
    l->state_cb = opts->state_cb;
    l->opaque = opts->opaque;
    l->rng = (uint64_t)tf_time_mono_us() | 1;
    l->last_ready_ms = tf_time_mono_ms();
    l->watchdog = event_new(base, -1, EV_PERSIST, on_watchdog, l);
    l->retry_timer = evtimer_new(base, on_retry, l);
    if (!l->watchdog || !l->retry_timer) {
        snprintf(err, errsize, "out of memory");
        tf_link_destroy(l);
        return NULL;
    }
    int64_t tick = l->timeout_ms / 4 < 50 ? 50 : l->timeout_ms / 4;
    if (l->cluster && tick > 250)
        tick = 250; /* the slot map is asked for again on this beat */
    struct timeval tv = {(time_t)(tick / 1000), (suseconds_t)(tick % 1000) * 1000};
    event_add(l->watchdog, &tv);
    size_t nseeds = l->url.nseeds ? l->url.nseeds : 1;
    for (size_t i = 0; i < nseeds; i++) {
        const char *host = l->url.nseeds ? l->url.seeds[i].host : l->url.host;
        int port = l->url.nseeds ? l->url.seeds[i].port : l->url.port;
        node_t *n = node_get(l, host, port);
        if (!n) {
            snprintf(err, errsize, "out of memory");
            tf_link_destroy(l);
            return NULL;
        }
        n->seed = 1;
        if (!l->cluster)
            break;
    }
    return l;
}

void tf_link_destroy(tf_link_t *l)
{
    if (!l)
        return;
    l->closing = 1;
    for (size_t i = 0; i < l->nnodes; i++) {
        node_t *n = l->nodes[i];
        if (n->ac) {
            redisAsyncContext *ac = n->ac;
            n->ac = NULL;
            redisAsyncFree(ac); /* fails its pending units, tf_link_closing true */
        }
    }
    while (l->retry_head) {
        req_t *q = l->retry_head;
        l->retry_head = q->next;
        q->lost = 1;
        l->inflight++;
        unit_finish(l, q, NULL);
    }
    while (l->waits) /* those held behind the retries: none of their WAITs went out */
        wait_complete(l, l->waits, TF_ECLOSED);
    for (size_t i = 0; i < l->nnodes; i++)
        node_free(l->nodes[i]);
    if (l->watchdog)
        event_free(l->watchdog);
    if (l->retry_timer)
        event_free(l->retry_timer);
    while (l->free_reqs) {
        req_t *q = l->free_reqs;
        l->free_reqs = q->next;
        free(q->buf);
        free(q);
    }
    free(l->fmt);
    free(l);
}

void *tf_link_opaque(const tf_link_t *l) { return l->opaque; }
int tf_link_is_up(const tf_link_t *l) { return l->up; }
int tf_link_closing(const tf_link_t *l) { return l->closing; }
int tf_link_is_cluster(const tf_link_t *l) { return l->cluster; }
uint64_t tf_link_reconnects(const tf_link_t *l) { return l->reconnects; }
uint64_t tf_link_redirects(const tf_link_t *l) { return l->redirects; }
const char *tf_link_sha(const tf_link_t *l, size_t i) { return i < l->nscripts ? l->sha[i] : ""; }

size_t tf_link_pending(const tf_link_t *l)
{
    size_t n = 0;
    for (size_t i = 0; i < l->nnodes; i++)
        n += l->nodes[i]->sent_len;
    return n;
}
