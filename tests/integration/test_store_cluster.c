/* pkg/store against a real Redis Cluster (TOUCHFLOW_CLUSTER_REDIS_URL, a
 * redis+cluster:// URL): customers spread over the primaries, and the client side of
 * the cluster protocol (link.c) met by changing the cluster behind the store's back:
 * a slot moved (MOVED), a slot half migrated (ASK, TRYAGAIN), scripts flushed
 * (NOSCRIPT), the order of units kept across a redirect, WAIT, a primary killed;
 * and the population figures, one hash per slot.
 *
 * The test drives the cluster itself, one synchronous hiredis connection per node.
 * Each case writes under its own key prefix; its teardown puts every slot it moved
 * back on the primary that held it (also when an assertion ended the case early),
 * deletes its keys and waits until every node says the cluster is ok. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "config/config.h"
#include "store/slot.h"
#include "store/store.h"

#define MAX_NODES 16
#define KEY_MAX 160

/* ---- the cluster, as the test sees it ---- */

typedef struct {
    char id[41], host[256];
    int port, primary;
} cnode_t;

typedef struct {
    size_t n;
    cnode_t node[MAX_NODES];
    int16_t owner[TF_STORE_SLOTS]; /* index in node, -1 when unserved */
} topo_t;

static const char *cluster_url;
static tf_config_redis_url url;
static topo_t topo, scratch;
static char prefix[64];
static int ncase;

/* Connections by address, so they outlive topology reads; and the slots the
 * running case moved, with the primary that held them. */
static struct { char host[256]; int port; redisContext *rc; } conns[2 * MAX_NODES];
static struct { unsigned slot; char home[41]; } moved[16];
static size_t nconns, nmoved;

/* The primary the failover case killed, until it runs again: how it was started. */
#define NKEPT 7
static const char *const kept_opts[NKEPT] = {"bind",    "cluster-config-file", "cluster-node-timeout", "appendonly",
                                             "pidfile", "logfile",             "dir"};
static struct { int pending; char port[16], opt[NKEPT][256]; } killed;

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000};
    nanosleep(&ts, NULL);
}

/* Polls cond every 50 ms until it holds or ms pass. */
#define WAIT_UNTIL(cond, ms) \
    for (int64_t end_ = tf_time_mono_ms() + (ms); !(cond) && tf_time_mono_ms() < end_;) pause_ms(50)

static redisContext *conn(const cnode_t *n)
{
    size_t i = 0;
    while (i < nconns && (conns[i].port != n->port || strcmp(conns[i].host, n->host) != 0))
        i++;
    if (i < nconns && conns[i].rc && !conns[i].rc->err)
        return conns[i].rc;
    if (i == nconns) {
        assert_true(nconns < sizeof conns / sizeof conns[0]);
        snprintf(conns[i].host, sizeof conns[i].host, "%s", n->host);
        conns[i].port = n->port;
        nconns++;
    }
    redisFree(conns[i].rc); /* an errored context is never usable again */
    redisContext *rc = conns[i].rc = redisConnectWithTimeout(n->host, n->port, (struct timeval){2, 0});
    if (!rc || rc->err) {
        redisFree(rc);
        return conns[i].rc = NULL;
    }
    redisSetTimeout(rc, (struct timeval){8, 0}); /* above MIGRATE's 5 s */
    if (url.password[0])
        freeReplyObject(redisCommand(rc, "AUTH %s %s", url.username[0] ? url.username : "default", url.password));
    return rc;
}

/* A command to a node; NULL when it cannot be reached. */
static redisReply *cmd(const cnode_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisContext *rc = conn(n);
    redisReply *r = rc ? redisvCommand(rc, fmt, ap) : NULL;
    va_end(ap);
    return r;
}

/* A command whose answer must be of type (+OK, an integer); the integer. */
static long long must(const cnode_t *n, int type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisContext *rc = conn(n);
    redisReply *r = rc ? redisvCommand(rc, fmt, ap) : NULL;
    va_end(ap);
    if (!r || r->type != type)
        fail_msg("%s:%d: %s: %s", n->host, n->port, fmt, r && r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}
#define MUST_OK(n, ...) must(n, REDIS_REPLY_STATUS, __VA_ARGS__)
#define MUST_INT(n, ...) must(n, REDIS_REPLY_INTEGER, __VA_ARGS__)

/* Whether n's answer to a text command (INFO, CLUSTER INFO) holds a and b. */
static int says(const cnode_t *n, const char *command, const char *a, const char *b)
{
    redisReply *r = cmd(n, command);
    int yes = r && r->type == REDIS_REPLY_STRING && strstr(r->str, a) && (!b || strstr(r->str, b));
    freeReplyObject(r);
    return yes;
}

/* "field:<number>" of an INFO section; -1 when absent. */
static long long info_num(const cnode_t *n, const char *section, const char *field)
{
    redisReply *r = cmd(n, "INFO %s", section);
    const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, field) : NULL;
    long long v = p && p[strlen(field)] == ':' ? strtoll(p + strlen(field) + 1, NULL, 10) : -1;
    freeReplyObject(r);
    return v;
}

/* Parses CLUSTER NODES: "<id> <ip:port@cport[,host]> <flags> <primary> ... <slots>". */
static void parse_nodes(char *text, topo_t *t)
{
    char *save = NULL;
    t->n = 0;
    for (unsigned s = 0; s < TF_STORE_SLOTS; s++)
        t->owner[s] = -1;
    for (char *line = strtok_r(text, "\n", &save); line && t->n < MAX_NODES; line = strtok_r(NULL, "\n", &save)) {
        char *f[32], *fs = NULL, *at, *colon;
        int nf = 0;
        for (char *w = strtok_r(line, " \r", &fs); w && nf < 32; w = strtok_r(NULL, " \r", &fs))
            f[nf++] = w;
        if (nf < 8 || !(at = strchr(f[1], '@')) || strstr(f[2], "noaddr") || strstr(f[2], "handshake"))
            continue;
        *at = '\0';
        if (!(colon = strrchr(f[1], ':')))
            continue;
        *colon = '\0';
        cnode_t *n = &t->node[t->n];
        snprintf(n->id, sizeof n->id, "%s", f[0]);
        snprintf(n->host, sizeof n->host, "%s", f[1]);
        n->port = atoi(colon + 1);
        n->primary = strstr(f[2], "master") != NULL;
        for (int i = 8; i < nf; i++) {
            if (f[i][0] == '[')
                continue; /* "[slot->-id]": a migration, not ownership */
            char *dash = strchr(f[i], '-');
            for (long s = atol(f[i]), hi = dash ? atol(dash + 1) : s; s <= hi && s < (long)TF_STORE_SLOTS; s++)
                t->owner[s] = (int16_t)t->n;
        }
        t->n++;
    }
}

/* The topology as n sees it; 0 when n answered. */
static int read_from(const cnode_t *n, topo_t *t)
{
    redisReply *r = cmd(n, "CLUSTER NODES");
    int rc = r && r->type == REDIS_REPLY_STRING ? 0 : -1;
    if (rc == 0)
        parse_nodes(r->str, t);
    freeReplyObject(r);
    return rc;
}

/* The topology from the first node that answers: a known one, else a seed. */
static void topo_read(void)
{
    static topo_t t;
    for (size_t i = 0; i < topo.n + url.nseeds; i++) {
        cnode_t seed = {.port = i < topo.n ? topo.node[i].port : url.seeds[i - topo.n].port};
        snprintf(seed.host, sizeof seed.host, "%s", i < topo.n ? topo.node[i].host : url.seeds[i - topo.n].host);
        if (read_from(&seed, &t) == 0) {
            topo = t;
            return;
        }
    }
    fail_msg("no node of %s answers", cluster_url);
}

static cnode_t *owner_of(unsigned slot)
{
    assert_true(topo.owner[slot] >= 0);
    return &topo.node[topo.owner[slot]];
}

/* The next primary after n serving slots, so moves go round the cluster. */
static cnode_t *other_primary(const cnode_t *n)
{
    for (size_t k = 1; k < topo.n; k++) {
        size_t j = ((size_t)(n - topo.node) + k) % topo.n;
        for (unsigned s = 0; s < TF_STORE_SLOTS; s++)
            if (topo.owner[s] == (int16_t)j)
                return &topo.node[j];
    }
    fail_msg("no other primary than %s:%d", n->host, n->port);
    return NULL;
}

/* Every node says cluster_state:ok with every slot served, and no slot is left
 * half migrated ("[slot->-id]" or "[slot-<-id]" in a primary's CLUSTER NODES). */
static int cluster_ok(void)
{
    for (size_t i = 0; i < topo.n; i++)
        if (!says(&topo.node[i], "CLUSTER INFO", "cluster_state:ok", "cluster_slots_ok:16384") ||
            says(&topo.node[i], "CLUSTER NODES", "->-", NULL) || says(&topo.node[i], "CLUSTER NODES", "-<-", NULL))
            return 0;
    return 1;
}

/* Every node, replicas too, sees slot served by the node id. */
static int agree(unsigned slot, const char *id)
{
    for (size_t i = 0; i < topo.n; i++)
        if (read_from(&topo.node[i], &scratch) || scratch.owner[slot] < 0 ||
            strcmp(scratch.node[scratch.owner[slot]].id, id) != 0)
            return 0;
    return 1;
}

/* ---- moving slots ---- */

/* MIGRATE keys[0..n) from src to dst in one command. */
static void migrate(const cnode_t *src, const cnode_t *dst, char keys[][KEY_MAX], size_t n)
{
    char port[16];
    snprintf(port, sizeof port, "%d", dst->port);
    const char *argv[7 + 100] = {"MIGRATE", dst->host, port, "", "0", "5000", "KEYS"};
    assert_true(n <= 100 && conn(src));
    for (size_t i = 0; i < n; i++)
        argv[7 + i] = keys[i];
    redisReply *r = redisCommandArgv(conn(src), (int)(7 + n), argv, NULL);
    if (!r || r->type != REDIS_REPLY_STATUS) /* OK, or NOKEY when none was left */
        fail_msg("MIGRATE %d -> %d: %s", src->port, dst->port, r ? r->str : "no reply");
    freeReplyObject(r);
}

/* Migrates whatever the slot still holds on src (keys of other runs included). */
static void migrate_rest(const cnode_t *src, const cnode_t *dst, unsigned slot)
{
    static char keys[100][KEY_MAX];
    for (size_t n = 1; n > 0;) {
        redisReply *r = cmd(src, "CLUSTER GETKEYSINSLOT %u 100", slot);
        assert_true(r && r->type == REDIS_REPLY_ARRAY);
        for (n = 0; n < r->elements; n++)
            snprintf(keys[n], KEY_MAX, "%s", r->element[n]->str);
        freeReplyObject(r);
        if (n > 0)
            migrate(src, dst, keys, n);
    }
}

/* Gives slot to dst: first on dst (whose config epoch is bumped when it was
 * importing, so its claim wins), then on every other primary; then waits until
 * every node agrees. */
static void slot_assign(unsigned slot, const cnode_t *dst)
{
    MUST_OK(dst, "CLUSTER SETSLOT %u NODE %s", slot, dst->id);
    for (size_t i = 0; i < topo.n; i++)
        if (topo.node[i].primary && &topo.node[i] != dst)
            MUST_OK(&topo.node[i], "CLUSTER SETSLOT %u NODE %s", slot, dst->id);
    WAIT_UNTIL(agree(slot, dst->id), 5000);
    assert_true(agree(slot, dst->id));
}

/* The first half of the standard move, remembered for the teardown. */
static void slot_open(unsigned slot, const cnode_t *src, const cnode_t *dst)
{
    assert_true(nmoved < sizeof moved / sizeof moved[0]);
    moved[nmoved].slot = slot;
    snprintf(moved[nmoved++].home, sizeof moved[0].home, "%s", src->id);
    MUST_OK(dst, "CLUSTER SETSLOT %u IMPORTING %s", slot, src->id);
    MUST_OK(src, "CLUSTER SETSLOT %u MIGRATING %s", slot, dst->id);
}

static void slot_finish(unsigned slot, const cnode_t *src, const cnode_t *dst)
{
    migrate_rest(src, dst, slot);
    slot_assign(slot, dst);
}

/* Brings slot back home from whatever state a case left it in (moved, or half
 * migrated either way): each other primary holding keys of it sends them home
 * (MIGRATE wants the slot open on the sender: MIGRATING where it owns the slot,
 * IMPORTING where it does not), then the slot is home's and stable everywhere. */
static void slot_home(unsigned slot, const char *home_id)
{
    cnode_t *home = NULL;
    for (size_t i = 0; i < topo.n; i++)
        if (strcmp(topo.node[i].id, home_id) == 0)
            home = &topo.node[i];
    assert_non_null(home);
    for (size_t i = 0; i < topo.n; i++) {
        cnode_t *p = &topo.node[i];
        if (!p->primary || p == home || MUST_INT(p, "CLUSTER COUNTKEYSINSLOT %u", slot) == 0)
            continue;
        /* A migrating home would answer ASK to the RESTORE-ASKING of a key it lacks. */
        MUST_OK(home, "CLUSTER SETSLOT %u STABLE", slot);
        freeReplyObject(cmd(home, "CLUSTER SETSLOT %u IMPORTING %s", slot, p->id)); /* refused if home owns it */
        redisReply *r = cmd(p, "CLUSTER SETSLOT %u MIGRATING %s", slot, home->id);
        if (!r || r->type == REDIS_REPLY_ERROR)
            MUST_OK(p, "CLUSTER SETSLOT %u IMPORTING %s", slot, home->id);
        freeReplyObject(r);
        migrate_rest(p, home, slot);
    }
    slot_assign(slot, home);
    for (size_t i = 0; i < topo.n; i++)
        if (topo.node[i].primary)
            MUST_OK(&topo.node[i], "CLUSTER SETSLOT %u STABLE", slot);
}

/* A customer's keys: 0 the state hash (with its dedup ids), 1 the outbox. */
static void customer_keys(const char *who, char keys[2][KEY_MAX])
{
    static const char *const suffix[2] = {"", ":outbox"};
    for (int k = 0; k < 2; k++)
        assert_true(tf_store_customer_key(prefix, who, suffix[k], keys[k], KEY_MAX) > 0);
}

/* ---- the store on a loop ---- */

typedef struct ctx ctx_t;

/* One command's answer; order: the how-many-th answer of the store it was. */
typedef struct {
    ctx_t *c;
    int done, status, exists, seen, order;
    int64_t version, purchases, spend, buyers;
    size_t noutbox;
} res_t;

struct ctx {
    struct event_base *base;
    tf_store_t *st;
    int ups, downs, answers;
    tf_store_doc_t doc; /* the last document loaded */
    char error[256];    /* tf_store_last_error, copied in the callback */
    const tf_figure_delta *figs; /* the next commits add these figures */
    size_t nfigs;
    tf_figures_table table;      /* the last figures read */
};

static const tf_store_doc_t empty; /* what a load of a new customer gives */

static void on_state(tf_store_t *st, int up, void *opaque)
{
    ctx_t *c = opaque;
    (void)st;
    *(up ? &c->ups : &c->downs) += 1;
}

static void finish(res_t *r, int status)
{
    r->status = status;
    r->order = ++r->c->answers;
    r->done = 1;
}

static void on_committed(tf_store_t *st, int status, int64_t version, void *opaque)
{
    (void)st;
    ((res_t *)opaque)->version = version;
    finish(opaque, status);
}

static void on_loaded(tf_store_t *st, int status, const tf_store_loaded *res, void *opaque)
{
    res_t *r = opaque;
    (void)st;
    if (status == TF_OK) {
        r->exists = res->doc->exists;
        r->version = res->doc->version;
        r->purchases = res->doc->customer.purchases;
        r->spend = res->doc->customer.spend;
        r->noutbox = res->noutbox;
        r->seen = res->seen[0];
        r->c->doc = *res->doc;
    }
    finish(r, status);
}

static void on_synced(tf_store_t *st, int status, void *opaque)
{
    res_t *r = opaque;
    snprintf(r->c->error, sizeof r->c->error, "%s", tf_store_last_error(st));
    finish(r, status);
}

static void on_population(tf_store_t *st, int status, const tf_population_t *pop, void *opaque)
{
    (void)st;
    ((res_t *)opaque)->buyers = pop ? pop->buyers : -1;
    finish(opaque, status);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

/* Runs the loop until *counter reaches atleast or ms pass; returns whether it did. */
static int run_until(ctx_t *c, const int *counter, int atleast, int ms)
{
    struct event *t = evtimer_new(c->base, on_tick, c->base);
    int64_t end = tf_time_mono_ms() + ms;
    while (*counter < atleast && tf_time_mono_ms() < end) {
        struct timeval tv = {0, 20 * 1000};
        evtimer_add(t, &tv);
        event_base_loop(c->base, EVLOOP_ONCE);
    }
    event_free(t);
    return *counter >= atleast;
}

/* Commits before -> before with `purchases` purchases (spend 1000 each), an event
 * id and an outbox entry, without waiting. */
static void commit_async(ctx_t *c, res_t *r, const char *who, const tf_store_doc_t *before, int64_t purchases,
                         const char *event_id, const char *outbox_id)
{
    static tf_store_doc_t after;
    after = *before;
    after.customer.stage = TF_STAGE_GROWTH;
    after.customer.purchases = purchases;
    after.customer.spend = purchases * 1000;
    tf_store_doc_set_watermark(&after, "touchpoints/1", purchases);
    tf_store_outbox_add ob[1] = {{outbox_id, "lifecycle\n{}", 12}};
    *r = (res_t){.c = c};
    assert_int_equal(
        tf_store_commit(c->st, who, before, &after, 1, 1, tf_time_now_ms(), &event_id, 1, ob, 1, c->figs, c->nfigs,
                        on_committed, r),
        TF_OK);
}

static void load_async(ctx_t *c, res_t *r, const char *who, const char *event_id)
{
    *r = (res_t){.c = c};
    assert_int_equal(tf_store_load(c->st, who, &event_id, 1, on_loaded, r), TF_OK);
}

/* A load's answer: the customer at version with purchases, noutbox entries in
 * the outbox, and the event asked about seen. */
static void expect_loaded(const res_t *r, int64_t version, int64_t purchases, size_t noutbox)
{
    assert_int_equal(r->status, TF_OK);
    assert_true(r->exists && r->seen);
    assert_int_equal(r->version, version);
    assert_int_equal(r->purchases, purchases);
    assert_int_equal(r->spend, purchases * 1000);
    assert_int_equal(r->noutbox, noutbox);
}

/* Commits and waits: the answer must be version. */
static void commit(ctx_t *c, const char *who, const tf_store_doc_t *before, int64_t purchases, const char *event_id,
                   const char *outbox_id, int64_t version)
{
    static res_t r; /* static: a callback may still come after a failed assertion */
    commit_async(c, &r, who, before, purchases, event_id, outbox_id);
    assert_true(run_until(c, &r.done, 1, 15000));
    assert_int_equal(r.status, TF_OK);
    assert_int_equal(r.version, version);
}

/* Loads and waits (see expect_loaded); c->doc holds the document. */
static void load(ctx_t *c, const char *who, const char *event_id, int64_t version, int64_t purchases, size_t noutbox)
{
    static res_t r;
    load_async(c, &r, who, event_id);
    assert_true(run_until(c, &r.done, 1, 15000));
    expect_loaded(&r, version, purchases, noutbox);
}

static void sync_async(ctx_t *c, res_t *r, int replicas, int64_t timeout_ms)
{
    *r = (res_t){.c = c};
    assert_int_equal(tf_store_sync(c->st, replicas, timeout_ms, on_synced, r), TF_OK);
}

/* Each case: a fresh prefix, the topology read, a store that is up. */
static int setup(void **state)
{
    char err[256];
    snprintf(prefix, sizeof prefix, "itc%d-%lld-%d:", (int)getpid(), (long long)tf_time_now_ms(), ++ncase);
    nmoved = 0;
    topo_read();
    ctx_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->base = event_base_new();
    tf_store_opts o = {cluster_url, prefix, 2000, 50, 400, 3600 * 1000};
    if (!(c->st = tf_store_new(c->base, &o, on_state, c, err, sizeof(err))))
        fail_msg("tf_store_new: %s", err);
    assert_true(run_until(c, &c->ups, 1, 10000));
    assert_true(tf_store_is_cluster(c->st));
    *state = c;
    return 0;
}

static void restart_killed(void);

/* Puts moved slots home, deletes the case's keys, leaves the cluster ok. */
static int teardown(void **state)
{
    ctx_t *c = *state;
    tf_store_destroy(c->st);
    event_base_free(c->base);
    tf_figures_table_free(&c->table);
    free(c);
    if (killed.pending)
        restart_killed();
    topo_read();
    while (nmoved > 0) {
        nmoved--;
        slot_home(moved[nmoved].slot, moved[nmoved].home);
    }
    for (size_t i = 0; i < topo.n; i++) {
        char cursor[32] = "0";
        for (int more = topo.node[i].primary; more;) {
            redisReply *r = cmd(&topo.node[i], "SCAN %s MATCH %s* COUNT 1000", cursor, prefix);
            more = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2;
            for (size_t k = 0; more && k < r->element[1]->elements; k++)
                freeReplyObject(cmd(&topo.node[i], "UNLINK %s", r->element[1]->element[k]->str));
            if (more) {
                snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
                more = strcmp(cursor, "0") != 0;
            }
            freeReplyObject(r);
        }
    }
    WAIT_UNTIL(cluster_ok(), 20000);
    assert_true(cluster_ok());
    return 0;
}

/* ---- cases ---- */

#define NCUST 200

static void customers_spread_over_primaries(void **state)
{
    ctx_t *c = *state;
    static res_t res[NCUST];
    char who[NCUST][16], keys[2][KEY_MAX];
    int per_node[MAX_NODES] = {0}, used = 0;

    for (int i = 0; i < NCUST; i++) {
        snprintf(who[i], sizeof who[i], "cust-%03d", i);
        commit_async(c, &res[i], who[i], &empty, i + 1, "e-1", "d-1");
    }
    assert_true(run_until(c, &c->answers, NCUST, 15000));
    for (int i = 0; i < NCUST; i++) {
        assert_int_equal(res[i].status, TF_OK);
        assert_int_equal(res[i].version, 1);
        load_async(c, &res[i], who[i], "e-1");
    }
    assert_true(run_until(c, &c->answers, 2 * NCUST, 15000));
    /* Every customer reads back, and its keys are where slot.h says: the server
     * hashes them to that slot, and the slot's primary holds both. */
    for (int i = 0; i < NCUST; i++) {
        expect_loaded(&res[i], 1, i + 1, 1);
        unsigned slot = tf_store_customer_slot(prefix, who[i]);
        cnode_t *p = owner_of(slot);
        customer_keys(who[i], keys);
        assert_int_equal(MUST_INT(p, "CLUSTER KEYSLOT %s", keys[1]), slot);
        assert_int_equal(MUST_INT(p, "EXISTS %s %s", keys[0], keys[1]), 2);
        used += per_node[p - topo.node]++ == 0;
    }
    fprintf(stderr, "  %d customers on %d primaries\n", NCUST, used);
    assert_true(used > 1);
}

/* Customers who[0..n) in distinct slots ("<base>-<k>"), committed once (version 1)
 * and loaded into before[i]; then their slots moved behind the store's back (the
 * standard way), so its slot map is stale. */
static void committed_then_moved(ctx_t *c, const char *base, char who[][16], tf_store_doc_t *before, int n)
{
    unsigned slots[8];
    assert_true(n <= 8);
    for (int i = 0, k = 0; i < n; k++) {
        snprintf(who[i], 16, "%s-%d", base, k);
        slots[i] = tf_store_customer_slot(prefix, who[i]);
        int dup = 0;
        for (int j = 0; j < i; j++)
            dup |= slots[j] == slots[i];
        i += !dup;
    }
    for (int i = 0; i < n; i++) {
        commit(c, who[i], &empty, 1, "e-1", "d-1", 1);
        load(c, who[i], "e-1", 1, 1, 1);
        before[i] = c->doc;
        cnode_t *src = owner_of(slots[i]), *dst = other_primary(src);
        slot_open(slots[i], src, dst);
        slot_finish(slots[i], src, dst);
    }
}

static void moved_slot_is_followed(void **state)
{
    ctx_t *c = *state;
    char who[1][16], keys[2][KEY_MAX];
    static tf_store_doc_t before[1];

    committed_then_moved(c, "mover", who, before, 1);
    uint64_t r0 = tf_store_redirects(c->st);
    load(c, who[0], "e-1", 1, 1, 1);
    commit(c, who[0], &before[0], 2, "e-2", "d-2", 2);
    load(c, who[0], "e-2", 2, 2, 2);
    assert_true(tf_store_redirects(c->st) > r0);
    /* Written on the new owner (topo is still the map from before the move). */
    cnode_t *dst = other_primary(owner_of(tf_store_customer_slot(prefix, who[0])));
    customer_keys(who[0], keys);
    assert_int_equal(MUST_INT(dst, "EXISTS %s %s", keys[0], keys[1]), 2);
}

/* A customer committed once (both keys), its slot then opened for migration
 * (IMPORTING/MIGRATING) with its first nkeys keys already moved to *dst. */
static unsigned opened_with_keys_moved(ctx_t *c, const char *who, size_t nkeys, char keys[2][KEY_MAX],
                                       cnode_t **src, cnode_t **dst)
{
    commit(c, who, &empty, 1, "e-1", "d-1", 1);
    load(c, who, "e-1", 1, 1, 1);
    unsigned slot = tf_store_customer_slot(prefix, who);
    *src = owner_of(slot);
    *dst = other_primary(*src);
    customer_keys(who, keys);
    slot_open(slot, *src, *dst);
    migrate(*src, *dst, keys, nkeys);
    return slot;
}

static void ask_is_followed_during_migration(void **state)
{
    ctx_t *c = *state;
    char keys[2][KEY_MAX];
    cnode_t *src, *dst;
    static tf_store_doc_t before;

    unsigned slot = opened_with_keys_moved(c, "asker", 2, keys, &src, &dst); /* the source answers ASK */
    uint64_t r0 = tf_store_redirects(c->st);
    load(c, "asker", "e-1", 1, 1, 1);
    before = c->doc;
    commit(c, "asker", &before, 2, "e-2", "d-2", 2);
    assert_true(tf_store_redirects(c->st) >= r0 + 2); /* the load's ASK and the commit's */
    /* The commit ran on the importing node: ask it as the store did. */
    MUST_OK(dst, "ASKING");
    redisReply *v = cmd(dst, "HGET %s v", keys[0]);
    assert_true(v && v->type == REDIS_REPLY_STRING);
    assert_string_equal(v->str, "2");
    freeReplyObject(v);
    slot_finish(slot, src, dst);
    load(c, "asker", "e-2", 2, 2, 2);
}

/* A commit of a customer whose keys are split over the two ends of a migration
 * (only the state hash moved): a loop timer moves the outbox after delay_ms,
 * while the store retries; with_sync, a tf_store_sync (WAIT 1) right after the
 * commit. The slot is left open. */
typedef struct {
    cnode_t *src, *dst;
    char keys[2][KEY_MAX];
    unsigned slot;
    res_t commit, sync;
    int fired, commit_done_then;
    int64_t took;
    uint64_t sent_again;
} split_commit;

static void on_late_migration(evutil_socket_t fd, short what, void *arg)
{
    split_commit *m = arg;
    (void)fd, (void)what;
    m->commit_done_then = m->commit.done;
    migrate(m->src, m->dst, m->keys + 1, 1);
    m->fired = 1;
}

static void commit_split(ctx_t *c, const char *who, int delay_ms, int with_sync, split_commit *m)
{
    static tf_store_doc_t before;
    *m = (split_commit){0};
    m->slot = opened_with_keys_moved(c, who, 1, m->keys, &m->src, &m->dst);
    before = c->doc;
    struct event *t = evtimer_new(c->base, on_late_migration, m);
    struct timeval tv = {delay_ms / 1000, delay_ms % 1000 * 1000};
    evtimer_add(t, &tv);
    uint64_t r0 = tf_store_redirects(c->st);
    int64_t t0 = tf_time_mono_ms();
    commit_async(c, &m->commit, who, &before, 2, "e-2", "d-2");
    if (with_sync)
        sync_async(c, &m->sync, 1, 2000);
    run_until(c, &m->commit.done, 1, delay_ms + 9000);
    assert_true(!with_sync || run_until(c, &m->sync.done, 1, 5000));
    m->took = tf_time_mono_ms() - t0;
    m->sent_again = tf_store_redirects(c->st) - r0;
    event_free(t);
    fprintf(stderr, "  keys joined after %d ms: the commit took %lld ms, sent %llu times again\n", delay_ms,
            (long long)m->took, (unsigned long long)m->sent_again);
    assert_true(m->commit.done && m->fired);
}

static void tryagain_is_retried_until_the_keys_are_together(void **state)
{
    ctx_t *c = *state;
    static split_commit m;

    commit_split(c, "waiter", 300, 0, &m);
    assert_false(m.commit_done_then); /* it waited for the keys: neither failed nor ran early */
    assert_int_equal(m.commit.status, TF_OK);
    assert_int_equal(m.commit.version, 2);
    assert_true(m.took >= 300);
    assert_true(m.sent_again >= 2); /* ASK from the source, TRYAGAIN from the target */
    MUST_OK(m.dst, "ASKING");
    assert_int_equal(MUST_INT(m.dst, "EXISTS %s %s", m.keys[0], m.keys[1]), 2);
    load(c, "waiter", "e-2", 2, 2, 2);
    slot_finish(m.slot, m.src, m.dst);
}

/* TRYAGAIN lasts as long as a migration: the wait doubles per answer (from
 * backoff_min_ms, capped at 1 s), so 1.5 s of split keys take about 5 rounds of 2
 * sends (ASK, TRYAGAIN), not a send every backoff_min_ms for the whole window. */
static void tryagain_backoff_grows(void **state)
{
    ctx_t *c = *state;
    static split_commit m;

    commit_split(c, "patient", 1500, 0, &m);
    assert_int_equal(m.commit.status, TF_OK);
    assert_true(m.sent_again <= 16);
}

static void flushed_scripts_are_reloaded(void **state)
{
    ctx_t *c = *state;
    const char *who = "flusher";
    char tp[32], key[KEY_MAX], name[16];
    static tf_store_doc_t before;

    commit(c, who, &empty, 1, "e-1", "d-1", 1);
    load(c, who, "e-1", 1, 1, 1);
    before = c->doc;
    /* A value ranking on another primary than the customer's: two nodes reload. */
    cnode_t *cust = owner_of(tf_store_customer_slot(prefix, who)), *rank = NULL;
    for (int i = 0; !rank || rank == cust; i++) {
        snprintf(tp, sizeof tp, "touchpoints/%d", i);
        snprintf(key, sizeof key, "%svalue:{%s}", prefix, tp);
        rank = owner_of(tf_store_key_slot(key, strlen(key)));
    }
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "v%d", i);
        assert_int_equal(tf_store_value_set(c->st, tp, name, 100 + i), TF_OK);
    }
    for (size_t i = 0; i < topo.n; i++)
        if (topo.node[i].primary) {
            MUST_OK(&topo.node[i], "SCRIPT FLUSH");
            assert_int_equal(info_num(&topo.node[i], "memory", "number_of_cached_scripts"), 0);
        }

    uint64_t r0 = tf_store_redirects(c->st);
    commit(c, who, &before, 2, "e-2", "d-2", 2);
    static res_t r;
    r = (res_t){.c = c};
    assert_int_equal(tf_store_population(c->st, tp, 0, 0, 10, 20, 0, on_population, &r), TF_OK);
    assert_true(run_until(c, &r.done, 1, 15000));
    assert_int_equal(r.status, TF_OK);
    assert_int_equal(r.buyers, 10);
    assert_true(tf_store_redirects(c->st) >= r0 + 2);
    assert_true(info_num(cust, "memory", "number_of_cached_scripts") >= 2);
    assert_true(info_num(rank, "memory", "number_of_cached_scripts") >= 2);
}

#define NORDER 4

static void order_is_kept_across_a_redirect(void **state)
{
    ctx_t *c = *state;
    char who[NORDER][16];
    static tf_store_doc_t before[NORDER];
    static res_t cm[NORDER], ld[NORDER];

    committed_then_moved(c, "ord", who, before, NORDER);
    uint64_t r0 = tf_store_redirects(c->st);
    /* A commit and a load in one loop iteration: both go to the old owner, both
     * are refused, and the retry must send the commit first. */
    int base = c->answers;
    for (int i = 0; i < NORDER; i++) {
        commit_async(c, &cm[i], who[i], &before[i], 2, "e-2", "d-2");
        load_async(c, &ld[i], who[i], "e-2");
    }
    assert_true(run_until(c, &c->answers, base + 2 * NORDER, 15000));
    for (int i = 0; i < NORDER; i++) {
        assert_int_equal(cm[i].status, TF_OK);
        assert_int_equal(cm[i].version, 2);
        expect_loaded(&ld[i], 2, 2, 2);
        assert_true(cm[i].order < ld[i].order);
    }
    assert_true(tf_store_redirects(c->st) >= r0 + 2 * NORDER); /* every unit was refused once */
}

/* WAIT counts replicas: every write is acknowledged by the replica of its primary;
 * asking for more replicas than a primary has waits for those it has (none could be
 * promoted with less); and a replica that does not answer (SIGSTOP) makes the
 * sync fail with the count in the error, within its timeout. */
static void wait_counts_replicas(void **state)
{
    ctx_t *c = *state;
    char who[16], sleeper[160];
    static res_t r;

    for (int i = 0; i < 3; i++) {
        snprintf(who, sizeof who, "w-%d", i);
        commit(c, who, &empty, 1, "e-1", "d-1", 1);
    }
    sync_async(c, &r, 1, 2000);
    assert_true(run_until(c, &r.done, 1, 5000));
    assert_int_equal(r.status, TF_OK);

    sync_async(c, &r, 5, 200);
    assert_true(run_until(c, &r.done, 1, 5000));
    assert_int_equal(r.status, TF_OK);

    /* Every replica stopped for a second, then a write its primary must wait for
     * (from the state loaded now: a commit checks the state it started from). */
    load(c, "w-0", "e-1", 1, 1, 1);
    topo_read();
    int asleep = 0;
    for (size_t i = 0; i < topo.n; i++) {
        if (topo.node[i].primary)
            continue;
        /* Stopped, not killed: the cluster does not mark it failed within a second
         * (node timeout), so it still counts as a replica that could be promoted. */
        long long pid = info_num(&topo.node[i], "server", "process_id");
        assert_true(pid > 1);
        snprintf(sleeper, sizeof sleeper, "(kill -STOP %lld; sleep 1; kill -CONT %lld) >/dev/null 2>&1 &", pid, pid);
        assert_int_equal(system(sleeper), 0);
        asleep++;
    }
    assert_true(asleep >= 1);
    nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    commit(c, "w-0", &c->doc, 1, "e-2", "d-2", 2);
    int64_t t0 = tf_time_mono_ms();
    sync_async(c, &r, 1, 200);
    assert_true(run_until(c, &r.done, 1, 5000));
    int64_t took = tf_time_mono_ms() - t0;
    fprintf(stderr, "  WAIT with the replicas asleep: %lld ms: %s\n", (long long)took, c->error);
    assert_int_equal(r.status, TF_EIO);
    assert_true(took >= 150 && took < 1000);
    assert_non_null(strstr(c->error, "0 of 1 replicas"));
    nanosleep(&(struct timespec){1, 200 * 1000 * 1000}, NULL); /* the replicas wake */
}

/* tf_store_sync waits for every write sent before the call, also one waiting for
 * a retry: here the commit waits 500 ms for its keys (TRYAGAIN), and the sync must
 * not say "replicated" before the commit was written and acknowledged. */
static void sync_covers_a_commit_waiting_for_a_retry(void **state)
{
    ctx_t *c = *state;
    static split_commit m;

    commit_split(c, "synced", 500, 1, &m);
    assert_int_equal(m.commit.status, TF_OK);
    assert_int_equal(m.sync.status, TF_OK);
    assert_true(m.commit.order < m.sync.order);
}

/* ---- failover ---- */

/* Starts the killed node again as it was started: from its dir, daemonized. */
static void restart_killed(void)
{
    const char *argv[2 * NKEPT + 8] = {"redis-server", "--port", killed.port, "--cluster-enabled", "yes",
                                       "--daemonize",  "yes"};
    char names[NKEPT][40];
    for (int i = 0; i < NKEPT; i++) {
        snprintf(names[i], sizeof names[i], "--%s", kept_opts[i]);
        argv[7 + 2 * i] = names[i];
        argv[8 + 2 * i] = killed.opt[i];
    }
    killed.pending = 0;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(killed.opt[NKEPT - 1]) == 0)
            execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Whether pid is the redis-server on port (its title "redis-server host:port ..."):
 * the pid INFO gives must name no other process (a node in a container, say). */
static int is_redis_on(long long pid, int port)
{
    char path[64], title[256] = "", want[24];
    snprintf(path, sizeof path, "/proc/%lld/cmdline", pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(title, 1, sizeof title - 1, f) : 0;
    if (f)
        fclose(f);
    for (size_t i = 0; i < n; i++)
        title[i] = title[i] ? title[i] : ' ';
    snprintf(want, sizeof want, ":%d", port);
    return strncmp(title, "redis-server", 12) == 0 && strstr(title, want) != NULL;
}

static void failover_keeps_what_wait_acknowledged(void **state)
{
    ctx_t *c = *state;
    const char *who = "phoenix";
    static tf_store_doc_t before;
    static res_t r;

    commit(c, who, &empty, 1, "e-1", "d-1", 1);
    load(c, who, "e-1", 1, 1, 1);
    before = c->doc;
    commit(c, who, &before, 2, "e-2", "d-2", 2);
    sync_async(c, &r, 1, 2000); /* a replica has version 2 */
    assert_true(run_until(c, &r.done, 1, 5000));
    assert_int_equal(r.status, TF_OK);

    cnode_t victim = *owner_of(tf_store_customer_slot(prefix, who));
    long long pid = info_num(&victim, "server", "process_id");
    if (pid <= 0 || (strcmp(victim.host, "127.0.0.1") != 0 && strcmp(victim.host, "localhost") != 0) ||
        !is_redis_on(pid, victim.port))
        skip(); /* not a node this test can kill and start again */
    snprintf(killed.port, sizeof killed.port, "%d", victim.port);
    for (int i = 0; i < NKEPT; i++) {
        redisReply *v = cmd(&victim, "CONFIG GET %s", kept_opts[i]);
        assert_true(v && v->type == REDIS_REPLY_ARRAY && v->elements == 2);
        snprintf(killed.opt[i], sizeof killed.opt[i], "%s", v->element[1]->str);
        freeReplyObject(v);
    }
    int downs0 = c->downs, ups0 = c->ups;
    if (kill((pid_t)pid, SIGKILL) != 0)
        skip();
    killed.pending = 1;
    int64_t t0 = tf_time_mono_ms();
    assert_true(run_until(c, &c->downs, downs0 + 1, 3000));
    int64_t down_ms = tf_time_mono_ms() - t0;
    assert_true(run_until(c, &c->ups, ups0 + 1, 15000)); /* its replica promoted */
    int64_t up_ms = tf_time_mono_ms() - t0;
    load(c, who, "e-2", 2, 2, 2);
    fprintf(stderr, "  failover: store down after %lld ms, up after %lld ms\n", (long long)down_ms, (long long)up_ms);

    /* The promoted primary has no replica while the old one is down: a write and a
     * replica wait still go through (nothing could be promoted in its place), in
     * about one map refresh, not after the old node is back. */
    before = c->doc;
    commit(c, who, &before, 3, "e-3", "d-3", 3);
    int64_t t1 = tf_time_mono_ms();
    do
        sync_async(c, &r, 1, 200);
    while (run_until(c, &r.done, 1, 5000) && r.status != TF_OK && tf_time_mono_ms() - t1 < 5000);
    assert_int_equal(r.status, TF_OK);
    fprintf(stderr, "  failover: replica wait answered %lld ms after the write, the old primary still down\n",
            (long long)(tf_time_mono_ms() - t1));

    /* Back as a replica, then primary again (CLUSTER FAILOVER): the roles the case
     * found. */
    restart_killed();
    WAIT_UNTIL(says(&victim, "INFO replication", "role:slave", "master_link_status:up"), 30000);
    MUST_OK(&victim, "CLUSTER FAILOVER");
    WAIT_UNTIL(says(&victim, "INFO replication", "role:master", NULL), 15000);
    assert_true(says(&victim, "INFO replication", "role:master", NULL));
    topo_read();
    WAIT_UNTIL(cluster_ok(), 20000);
    assert_true(cluster_ok());
    fprintf(stderr, "  failover: roles restored after %lld ms\n", (long long)(tf_time_mono_ms() - t0));
}

/* ---- population figures ---- */

static void on_figures(tf_store_t *st, int status, tf_figures_table *table, void *opaque)
{
    res_t *r = opaque;
    (void)st;
    if (status == TF_OK) {
        /* Take the rows: the store frees what is left in table. */
        tf_figures_table_free(&r->c->table);
        r->c->table = *table;
        memset(table, 0, sizeof(*table));
    }
    finish(r, status);
}

/* HGET key field on node n, as a number. */
static long long hget(const cnode_t *n, const char *key, const char *field)
{
    redisReply *r = cmd(n, "HGET %s %s", key, field);
    if (!r || r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        fail_msg("%s:%d: HGET %s %s: no number", n->host, n->port, key, field);
    }
    long long v = strtoll(r->str, NULL, 10);
    freeReplyObject(r);
    return v;
}

/* Each customer's figures land in the hash of its own slot, "<prefix>figures:{<the
 * slot's tag>}", on the primary serving that slot, and two customers of one slot
 * share it; a read sums the 16384 hashes. */
static void figures_land_in_the_customers_slot(void **state)
{
    ctx_t *c = *state;
    enum { N = 6 };
    static char tags[TF_STORE_SLOTS][TF_STORE_SLOT_TAG_MAX];
    static res_t r;
    char who[N + 1][24], key[KEY_MAX], field[N][TF_FIGURES_FIELD_MAX];
    unsigned slots[N + 1];
    tf_figure_delta figs[3] = {{"customers", 1}, {"stage:growth", 1}, {"", 1}};
    int per_node[MAX_NODES] = {0}, used = 0;
    tf_store_slot_tags(tags);
    /* N customers in distinct slots, then one more in the first one's slot. */
    for (int i = 0, k = 0; i < N; k++) {
        snprintf(who[i], sizeof who[i], "fig-%d", k);
        slots[i] = tf_store_customer_slot(prefix, who[i]);
        int dup = 0;
        for (int j = 0; j < i; j++)
            dup |= slots[j] == slots[i];
        i += !dup;
    }
    for (int k = 0;; k++) {
        snprintf(who[N], sizeof who[N], "fig-same-%d", k);
        if ((slots[N] = tf_store_customer_slot(prefix, who[N])) == slots[0])
            break;
    }
    c->figs = figs;
    c->nfigs = 3;
    for (int i = 0; i <= N; i++) {
        snprintf(figs[2].field, sizeof figs[2].field, "new:2026-01-%02d", i + 1);
        if (i < N)
            snprintf(field[i], sizeof field[i], "%s", figs[2].field);
        commit(c, who[i], &empty, 1, "e-1", "d-1", 1);
    }

    for (int i = 0; i < N; i++) {
        cnode_t *p = owner_of(slots[i]);
        assert_true(tf_store_figures_key(prefix, tags[slots[i]], key, sizeof key) > 0);
        assert_int_equal(MUST_INT(p, "CLUSTER KEYSLOT %s", key), slots[i]);
        assert_int_equal(hget(p, key, field[i]), 1);
        assert_int_equal(hget(p, key, "customers"), i == 0 ? 2 : 1);
        assert_int_equal(MUST_INT(p, "HLEN %s", key), i == 0 ? 4 : 3);
        used += per_node[p - topo.node]++ == 0;
    }
    assert_true(used > 1);
    /* The standalone server's one hash is not used on a cluster. */
    assert_true(tf_store_figures_key(prefix, NULL, key, sizeof key) > 0);
    assert_int_equal(MUST_INT(owner_of(tf_store_key_slot(key, strlen(key))), "EXISTS %s", key), 0);

    r = (res_t){.c = c};
    assert_int_equal(tf_store_figures_read(c->st, on_figures, &r), TF_OK);
    assert_true(run_until(c, &r.done, 1, 15000));
    assert_int_equal(r.status, TF_OK);
    assert_int_equal(c->table.skipped, 0);
    assert_int_equal(c->table.n, 2 + N + 1);
    assert_int_equal(tf_figures_table_get(&c->table, "customers"), N + 1);
    assert_int_equal(tf_figures_table_get(&c->table, "stage:growth"), N + 1);
    for (int i = 0; i <= N; i++) {
        char f[32];
        snprintf(f, sizeof f, "new:2026-01-%02d", i + 1);
        assert_int_equal(tf_figures_table_get(&c->table, f), 1);
    }
    fprintf(stderr, "  figures of %d customers in %d slots on %d primaries, read back summed\n", N + 1, N, used);
}

int main(void)
{
    char err[256];
    cluster_url = getenv("TOUCHFLOW_CLUSTER_REDIS_URL");
    if (!cluster_url || !*cluster_url) {
        fprintf(stderr, "TOUCHFLOW_CLUSTER_REDIS_URL not set: skipping (a redis+cluster://host:port,... URL)\n");
        return 77;
    }
    if (tf_config_redis_url_parse(cluster_url, &url, err, sizeof err) != TF_OK || !url.cluster) {
        fprintf(stderr, "TOUCHFLOW_CLUSTER_REDIS_URL: %s\n", url.cluster ? err : "not a redis+cluster:// URL");
        return 1;
    }
    tf_log_set_level(TF_LOG_ERROR);
#define CASE(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        CASE(customers_spread_over_primaries),
        CASE(figures_land_in_the_customers_slot),
        CASE(moved_slot_is_followed),
        CASE(ask_is_followed_during_migration),
        CASE(tryagain_is_retried_until_the_keys_are_together),
        CASE(tryagain_backoff_grows),
        CASE(flushed_scripts_are_reloaded),
        CASE(order_is_kept_across_a_redirect),
        CASE(wait_counts_replicas),
        CASE(sync_covers_a_commit_waiting_for_a_retry),
        CASE(failover_keeps_what_wait_acknowledged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
