/* The store's commands: the per-customer load and commit, the outbox, the epoch
 * and the indexes that span customers. The connections (standalone or Redis
 * Cluster) are link.c's; every command goes to the slot of its key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store/link.h"
#include "store/scripts.h"
#include "store/slot.h"
#include "store/store.h"

#define MOD "store"

enum { SCRIPT_COMMIT = 0, SCRIPT_POPULATION, NSCRIPTS };
static const char *const scripts[NSCRIPTS] = {TF_SCRIPT_COMMIT, TF_SCRIPT_POPULATION};

typedef enum { CMD_LOAD, CMD_COMMIT, CMD_ACK, CMD_EPOCH, CMD_DUE, CMD_POPULATION, CMD_SYNC, CMD_FIGURES } cmd_kind;

/* A command in flight. Pooled: the per-event path allocates none in steady state. */
typedef struct cmd {
    struct cmd *next_free;
    tf_store_t *st;
    cmd_kind kind;
    void *cb;
    void *opaque;
    size_t nids;
    int64_t cutoff_ms;
    /* A load's event ids, NUL-separated, kept with the pooled command for reuse. */
    char *ids;
    size_t ids_cap;
} cmd_t;

struct tf_store_s {
    tf_link_t *link;
    char prefix[64];
    int64_t dedup_window_ms;

    tf_store_state_cb state_cb;
    void *opaque;

    char last_error[256]; /* the last error reply, for the callback that gets it */

    cmd_t *free_cmds;

    /* Reusable argv for commit and load. */
    const char **argv;
    size_t *argvlen;
    size_t argv_cap;
    char *keybuf;
    size_t keybuf_cap;
    /* The commit's "d:<id>" field names, one after another. */
    char *idbuf;
    size_t idbuf_cap;

    /* The two encodings a commit compares: too big for the stack of a callback. */
    tf_store_fields enc_before, enc_after;

    /* Population figures: the slot tags on a Redis Cluster (NULL standalone), the
     * commit's figures key and its deltas as text. */
    char (*slot_tags)[TF_STORE_SLOT_TAG_MAX];
    char figkey[128];
    char *figbuf;
    size_t figbuf_cap;
};

/* ---- bookkeeping ---- */

static cmd_t *cmd_get(tf_store_t *st, cmd_kind kind, void *cb, void *opaque)
{
    cmd_t *c = st->free_cmds;
    if (c)
        st->free_cmds = c->next_free;
    else if (!(c = malloc(sizeof(*c))))
        return NULL;
    else
        c->ids = NULL, c->ids_cap = 0;
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

/* Grows *buf (capacity *cap) to at least need bytes; kept for reuse. */
static int bytes_reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return TF_OK;
    char *k = realloc(*buf, need);
    if (!k)
        return TF_ENOMEM;
    *buf = k;
    *cap = need;
    return TF_OK;
}

/* Builds a customer's two keys (state, outbox) into st->keybuf; returns the
 * offsets. The hash tag is the escaped id (slot.h): braces in an id never split a
 * customer's keys over slots. */
static int build_keys(tf_store_t *st, const char *customer, size_t off[2], size_t len[2])
{
    static const char *const suffix[2] = {"", ":outbox"};
    size_t need = tf_store_customer_key_size(st->prefix, customer, suffix[1]);
    if (bytes_reserve(&st->keybuf, &st->keybuf_cap, 2 * need))
        return TF_ENOMEM;
    size_t pos = 0;
    for (int i = 0; i < 2; i++) {
        int n = tf_store_customer_key(st->prefix, customer, suffix[i], st->keybuf + pos, st->keybuf_cap - pos);
        if (n < 0)
            return TF_EINVAL;
        off[i] = pos;
        len[i] = (size_t)n;
        pos += (size_t)n + 1;
    }
    return TF_OK;
}

static unsigned slot_of(const char *key, size_t len) { return tf_store_key_slot(key, len); }

/* Sends one command to the slot of key. */
static int send1(tf_store_t *st, const char *key, size_t keylen, tf_link_reply_fn fn, void *priv, int argc,
                 const char *const *argv, const size_t *lens)
{
    tf_link_cmd c = {argc, argv, lens};
    return tf_link_send(st->link, slot_of(key, keylen), fn, priv, 1, &c);
}

/* ---- connection state ---- */

static void on_link_state(tf_link_t *l, int up, void *opaque)
{
    tf_store_t *st = opaque;
    (void)l;
    if (st->state_cb)
        st->state_cb(st, up, st->opaque);
}

static void fail_reply(tf_store_t *st, const redisReply *r, const char *what)
{
    TF_ERROR(MOD, "%s failed: %s", what, r ? r->str : "no reply");
    tf_strlcpy(st->last_error, r && r->str ? r->str : "no reply", sizeof(st->last_error));
}

const char *tf_store_last_error(const tf_store_t *st) { return st->last_error; }

tf_store_t *tf_store_new(struct event_base *base, const tf_store_opts *opts, tf_store_state_cb state_cb,
                         void *opaque, char *err, size_t errsize)
{
    tf_config_redis_url url;
    tf_store_t *st = calloc(1, sizeof(*st));
    if (!st) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    if (tf_config_redis_url_parse(opts->url, &url, err, errsize) != TF_OK)
        goto fail;
    if (tf_strlcpy(st->prefix, opts->key_prefix, sizeof(st->prefix)) != TF_OK) {
        snprintf(err, errsize, "key prefix too long");
        goto fail;
    }
    st->dedup_window_ms = opts->dedup_window_ms > 0 ? opts->dedup_window_ms : TF_MS_PER_DAY;
    st->state_cb = state_cb;
    st->opaque = opaque;
    if (argv_reserve(st, 64) != TF_OK) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    tf_link_opts lo = {&url, opts->timeout_ms, opts->backoff_min_ms, opts->backoff_max_ms, scripts, NSCRIPTS,
                       on_link_state, st};
    if (!(st->link = tf_link_new(base, &lo, err, errsize)))
        goto fail;
    if (tf_link_is_cluster(st->link)) {
        if (!(st->slot_tags = malloc(TF_STORE_SLOTS * sizeof(*st->slot_tags)))) {
            snprintf(err, errsize, "out of memory");
            goto fail;
        }
        tf_store_slot_tags(st->slot_tags);
    } else if (tf_store_figures_key(st->prefix, NULL, st->figkey, sizeof(st->figkey)) < 0) {
        snprintf(err, errsize, "key prefix too long");
        goto fail;
    }
    return st;
fail:
    tf_store_destroy(st);
    return NULL;
}

void tf_store_destroy(tf_store_t *st)
{
    if (!st)
        return;
    tf_link_destroy(st->link); /* fails pending callbacks with TF_ECLOSED */
    while (st->free_cmds) {
        cmd_t *c = st->free_cmds;
        st->free_cmds = c->next_free;
        free(c->ids);
        free(c);
    }
    free(st->argv);
    free(st->argvlen);
    free(st->keybuf);
    free(st->idbuf);
    free(st->figbuf);
    free(st->slot_tags);
    free(st);
}

int tf_store_is_up(const tf_store_t *st) { return tf_link_is_up(st->link); }
size_t tf_store_pending(const tf_store_t *st) { return tf_link_pending(st->link); }
uint64_t tf_store_reconnects(const tf_store_t *st) { return tf_link_reconnects(st->link); }
uint64_t tf_store_redirects(const tf_store_t *st) { return tf_link_redirects(st->link); }
int tf_store_is_cluster(const tf_store_t *st) { return tf_link_is_cluster(st->link); }

/* The status for a failed reply: closing, connection gone, or a Redis error.
 * Redirects and role changes are the link's: what reaches here has run out of
 * retries. */
static int reply_status(tf_store_t *st, const redisReply *r, const char *what)
{
    if (tf_link_closing(st->link))
        return TF_ECLOSED;
    if (!r)
        return TF_EIO;
    if (r->type == REDIS_REPLY_ERROR) {
        fail_reply(st, r, what);
        return tf_store_error_classify(r->str) == TF_STORE_ERR_CUSTOMER ? TF_ESTATE : TF_EIO;
    }
    return TF_EIO;
}

static int check_ready(tf_store_t *st)
{
    if (tf_link_closing(st->link))
        return TF_ECLOSED;
    return tf_link_is_up(st->link) ? TF_OK : TF_EAGAIN;
}

/* ---- load ---- */

#define MAX_DECODE_FIELDS 256
#define MAX_OUTBOX 256

static int is_id_field(const redisReply *f)
{
    return f->type == REDIS_REPLY_STRING && f->len >= 2 && memcmp(f->str, TF_STORE_ID_FIELD_PREFIX, 2) == 0;
}

/* 1 when the state hash h (HGETALL's pairs) holds id's field, seen after cutoff. */
static int id_seen_in(const redisReply *h, const char *id, int64_t cutoff)
{
    size_t n = strlen(id);
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i];
        if (is_id_field(f) && (size_t)f->len == n + 2 && memcmp(f->str + 2, id, n) == 0)
            return h->element[i + 1]->type == REDIS_REPLY_STRING && strtod(h->element[i + 1]->str, NULL) > (double)cutoff;
    }
    return 0;
}

static void on_load_reply(tf_link_t *ac, const redisReply *reply, void *privdata)
{
    cmd_t *c = privdata;
    tf_store_t *st = c->st;
    const redisReply *r = reply;
    tf_store_load_cb cb = (tf_store_load_cb)c->cb;
    void *opaque = c->opaque;
    size_t nids = c->nids;
    int64_t c_cutoff = c->cutoff_ms;
    /* Read below before cb runs: nothing takes the pooled command until then. */
    const char *ids = c->ids;
    (void)ac;
    cmd_put(st, c);

    /* A command of the transaction failed alone (WRONGTYPE: one of the customer's
     * keys holds something else): its error is in its place in the array. */
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        if (r->element[i]->type == REDIS_REPLY_ERROR) {
            cb(st, reply_status(st, r->element[i], "load"), NULL, opaque);
            return;
        }
    }
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
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
    for (size_t i = 0; i + 1 < h->elements && n < MAX_DECODE_FIELDS; i += 2) {
        if (is_id_field(h->element[i]))
            continue; /* the dedup window: looked up below */
        f[n] = h->element[i]->str;
        fl[n] = (size_t)h->element[i]->len;
        v[n] = h->element[i + 1]->str;
        vl[n] = (size_t)h->element[i + 1]->len;
        n++;
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
     * on a later commit. */
    for (size_t i = 0; i < nids; i++) {
        seen[i] = id_seen_in(h, ids, c_cutoff);
        ids += strlen(ids) + 1;
    }

    tf_store_outbox_entry ob[MAX_OUTBOX];
    const redisReply *o = r->element[1];
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

/* One MULTI/EXEC per customer, sent as one unit: a consistent snapshot of state
 * (with its dedup ids) and outbox in one reply, at the cost of plain commands (a
 * script call costs more than the reads together). */
int tf_store_load(tf_store_t *st, const char *customer, const char *const *event_ids, size_t nids,
                  tf_store_load_cb cb, void *opaque)
{
    size_t off[2], len[2];
    int rc = check_ready(st);
    if (rc)
        return rc;
    if ((rc = build_keys(st, customer, off, len)))
        return rc;
    cmd_t *c = cmd_get(st, CMD_LOAD, (void *)cb, opaque);
    if (!c)
        return TF_ENOMEM;
    size_t idbytes = 0;
    for (size_t i = 0; i < nids; i++)
        idbytes += strlen(event_ids[i]) + 1;
    if (bytes_reserve(&c->ids, &c->ids_cap, idbytes)) {
        cmd_put(st, c);
        return TF_ENOMEM;
    }
    for (size_t i = 0, at = 0; i < nids; i++) {
        size_t n = strlen(event_ids[i]) + 1;
        memcpy(c->ids + at, event_ids[i], n);
        at += n;
    }
    c->nids = nids;
    c->cutoff_ms = tf_time_now_ms() - st->dedup_window_ms;
    static const char *const multi[1] = {"MULTI"}, *const exec[1] = {"EXEC"};
    static const size_t multi_len[1] = {5}, exec_len[1] = {4};
    const char *state_argv[2] = {"HGETALL", st->keybuf + off[0]}, *outbox_argv[2] = {"HGETALL", st->keybuf + off[1]};
    size_t state_len[2] = {7, len[0]}, outbox_len[2] = {7, len[1]};
    tf_link_cmd unit[4];
    size_t n = 0;
    unit[n++] = (tf_link_cmd){1, multi, multi_len};
    unit[n++] = (tf_link_cmd){2, state_argv, state_len};
    unit[n++] = (tf_link_cmd){2, outbox_argv, outbox_len};
    unit[n++] = (tf_link_cmd){1, exec, exec_len};
    rc = tf_link_send(st->link, slot_of(st->keybuf + off[0], len[0]), on_load_reply, c, n, unit);
    if (rc)
        cmd_put(st, c);
    return rc;
}

/* ---- commit ---- */

/* Commit and epoch both answer an integer; a negative commit answer is the fence. */
static void on_integer_reply(tf_link_t *ac, const redisReply *reply, void *privdata)
{
    cmd_t *c = privdata;
    tf_store_t *st = c->st;
    const redisReply *r = reply;
    tf_store_commit_cb cb = (tf_store_commit_cb)c->cb; /* same shape as tf_store_epoch_cb */
    void *opaque = c->opaque;
    const char *what = c->kind == CMD_COMMIT ? "commit" : "epoch";
    int fenceable = c->kind == CMD_COMMIT;
    (void)ac;
    cmd_put(st, c);
    if (!r || r->type != REDIS_REPLY_INTEGER)
        cb(st, reply_status(st, r, what), 0, opaque);
    else if (fenceable && r->integer == -2)
        cb(st, TF_ESTALE, 0, opaque);
    else if (fenceable && r->integer < 0)
        cb(st, TF_EFENCED, 0, opaque);
    else
        cb(st, TF_OK, r->integer, opaque);
}

int tf_store_commit(tf_store_t *st, const char *customer, const tf_store_doc_t *before,
                    const tf_store_doc_t *after, int referral_check, int64_t epoch, int64_t now_ms,
                    const char *const *event_ids, size_t nids, const tf_store_outbox_add *outbox,
                    size_t noutbox, const tf_figure_delta *figures, size_t nfigures, tf_store_commit_cb cb,
                    void *opaque)
{
    tf_store_fields *fa = &st->enc_after, *fb = &st->enc_before;
    size_t off[2], len[2];
    char nums[9][24];
    int nl[9];
    int rc = check_ready(st);
    if (rc)
        return rc;
    if (tf_store_encode(after, fa) != TF_OK || (before->exists && tf_store_encode(before, fb) != TF_OK)) {
        TF_ERROR(MOD, "commit: the state of customer %s does not encode", customer);
        return TF_EINVAL;
    }
    if (!before->exists)
        fb->n = 0;

    if ((rc = build_keys(st, customer, off, len)) ||
        (rc = argv_reserve(st, 19 + 2 * (fa->n + fb->n) + 2 * nids + 2 * noutbox + 2 * nfigures)) ||
        (rc = bytes_reserve(&st->figbuf, &st->figbuf_cap, 24 * (nfigures + 1))))
        return rc;
    unsigned slot = slot_of(st->keybuf + off[0], len[0]);
    if (st->slot_tags && tf_store_figures_key(st->prefix, st->slot_tags[slot], st->figkey, sizeof(st->figkey)) < 0)
        return TF_EINVAL;
    cmd_t *c = cmd_get(st, CMD_COMMIT, (void *)cb, opaque);
    if (!c)
        return TF_ENOMEM;

    nl[0] = (int)tf_i64_text(nums[0], epoch);
    nl[1] = (int)tf_i64_text(nums[1], now_ms);
    nl[2] = (int)tf_i64_text(nums[2], now_ms - st->dedup_window_ms);
    nl[3] = (int)tf_i64_text(nums[3], st->dedup_window_ms);
    nl[7] = (int)tf_i64_text(nums[7], before->exists ? before->version : 0);
    nl[8] = (int)tf_i64_text(nums[8], before->exists ? before->epoch : 0);
    size_t a = 0;
    st->argv[a] = "EVALSHA", st->argvlen[a++] = 7;
    st->argv[a] = tf_link_sha(st->link, SCRIPT_COMMIT), st->argvlen[a++] = 40;
    /* The figures hash is a key of the script only when there are figures: while
     * a slot migrates, Redis answers TRYAGAIN to a command naming a key that is
     * not on the node with the others, and a slot's figures hash may not exist or
     * may move apart from a customer's keys. */
    st->argv[a] = nfigures ? "3" : "2", st->argvlen[a++] = 1;
    for (int k = 0; k < 2; k++)
        st->argv[a] = st->keybuf + off[k], st->argvlen[a++] = len[k];
    if (nfigures)
        st->argv[a] = st->figkey, st->argvlen[a++] = strlen(st->figkey);
    for (int k = 0; k < 4; k++)
        st->argv[a] = nums[k], st->argvlen[a++] = (size_t)nl[k];
    st->argv[a] = nums[7], st->argvlen[a++] = (size_t)nl[7];
    st->argv[a] = nums[8], st->argvlen[a++] = (size_t)nl[8];
    st->argv[a] = referral_check && !before->customer.referred_by[0] ? "1" : "0", st->argvlen[a++] = 1;

    /* Only the fields that changed. Both encodings list fields in the same order, so
     * field i of after is field i of before, up to the variable tail (stage history
     * and watermarks), where the search goes on by name. */
    size_t nf_slot = a++, ni_slot = a++, nf = 0, cursor = 0;
    for (size_t i = 0; i < fa->n; i++) {
        int same = 0;
        /* Sparse encodings skip different fields but keep one order: the search
         * goes on from the last match, so it is about one comparison a field. */
        for (size_t k = 0; k < fb->n; k++) {
            size_t j = (cursor + k) % fb->n;
            /* Most names are the codec's own constants: same pointer, same name. */
            if (fb->field[j] == fa->field[i] || strcmp(fb->field[j], fa->field[i]) == 0) {
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
            if ((present = fa->field[i] == fb->field[j] || strcmp(fa->field[i], fb->field[j]) == 0))
                cursor = i + 1;
        }
        if (present)
            continue;
        st->argv[a] = fb->field[j], st->argvlen[a++] = strlen(fb->field[j]);
        st->argv[a] = "", st->argvlen[a++] = 0;
        nf++;
    }
    nl[4] = (int)tf_i64_text(nums[4], (int64_t)nf);
    st->argv[nf_slot] = nums[4], st->argvlen[nf_slot] = (size_t)nl[4];
    nl[5] = (int)tf_i64_text(nums[5], (int64_t)nids);
    st->argv[ni_slot] = nums[5], st->argvlen[ni_slot] = (size_t)nl[5];

    /* Each id as its field in the state hash, seen now. */
    size_t idbytes = 0;
    for (size_t i = 0; i < nids; i++)
        idbytes += 2 + strlen(event_ids[i]);
    if (bytes_reserve(&st->idbuf, &st->idbuf_cap, idbytes)) {
        cmd_put(st, c);
        return TF_ENOMEM;
    }
    char *at = st->idbuf;
    for (size_t i = 0; i < nids; i++) {
        size_t n = strlen(event_ids[i]);
        memcpy(at, TF_STORE_ID_FIELD_PREFIX, 2);
        memcpy(at + 2, event_ids[i], n);
        st->argv[a] = at, st->argvlen[a++] = n + 2;
        st->argv[a] = nums[1], st->argvlen[a++] = (size_t)nl[1];
        at += n + 2;
    }
    nl[6] = (int)tf_i64_text(nums[6], (int64_t)noutbox);
    st->argv[a] = nums[6], st->argvlen[a++] = (size_t)nl[6];
    for (size_t i = 0; i < noutbox; i++) {
        st->argv[a] = outbox[i].id, st->argvlen[a++] = strlen(outbox[i].id);
        st->argv[a] = outbox[i].payload, st->argvlen[a++] = outbox[i].payload_len;
    }
    char *num = st->figbuf;
    size_t nl_fig = tf_i64_text(num, (int64_t)nfigures);
    st->argv[a] = num, st->argvlen[a++] = nl_fig;
    num += 24;
    for (size_t i = 0; i < nfigures; i++, num += 24) {
        st->argv[a] = figures[i].field, st->argvlen[a++] = strlen(figures[i].field);
        st->argv[a] = num, st->argvlen[a++] = tf_i64_text(num, figures[i].delta);
    }
    rc = tf_link_send(st->link, slot, on_integer_reply, c, 1, &(tf_link_cmd){(int)a, st->argv, st->argvlen});
    if (rc)
        cmd_put(st, c);
    return rc;
}

const tf_store_fields *tf_store_committed_fields(const tf_store_t *st) { return &st->enc_after; }

/* ---- population figures ---- */

/* A read of the figures: one hash, or the per-slot hashes of a cluster, a window
 * of them in flight at a time so commits sharing the connections are not stalled
 * behind 16384 reads. */
typedef struct {
    tf_store_t *st;
    tf_figures_table table;
    unsigned next_slot, nslots;
    size_t pending;
    int status;
    tf_store_figures_cb cb;
    void *opaque;
} figures_read;

#define FIGURES_WINDOW 256

static void on_figures_reply(tf_link_t *l, const redisReply *reply, void *privdata);

static int figures_send_more(figures_read *fr)
{
    tf_store_t *st = fr->st;
    while (fr->pending < FIGURES_WINDOW && fr->next_slot < fr->nslots && fr->status == TF_OK) {
        unsigned slot = fr->next_slot;
        char key[128];
        if (tf_store_figures_key(st->prefix, st->slot_tags ? st->slot_tags[slot] : NULL, key, sizeof(key)) < 0)
            return TF_EINVAL;
        const char *argv[2] = {"HGETALL", key};
        size_t argvlen[2] = {7, strlen(key)};
        int rc = tf_link_send(st->link, slot, on_figures_reply, fr, 1, &(tf_link_cmd){2, argv, argvlen});
        if (rc)
            return rc;
        fr->next_slot++;
        fr->pending++;
    }
    return TF_OK;
}

static void on_figures_reply(tf_link_t *l, const redisReply *reply, void *privdata)
{
    figures_read *fr = privdata;
    tf_store_t *st = fr->st;
    (void)l;
    fr->pending--;
    if (fr->status == TF_OK) {
        if (!reply || reply->type != REDIS_REPLY_ARRAY) {
            fr->status = reply_status(st, reply, "figures read");
        } else {
            for (size_t i = 0; i + 1 < reply->elements && fr->status == TF_OK; i += 2) {
                const redisReply *f = reply->element[i], *v = reply->element[i + 1];
                if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
                    tf_figures_table_add_text(&fr->table, f->str, (size_t)f->len, v->str, (size_t)v->len))
                    fr->status = TF_ENOMEM;
            }
        }
        if (fr->status == TF_OK && tf_link_closing(st->link))
            fr->status = TF_ECLOSED;
        int rc = fr->status == TF_OK ? figures_send_more(fr) : TF_OK;
        if (rc) {
            snprintf(st->last_error, sizeof(st->last_error), "figures read: %s", tf_strerror(rc));
            fr->status = rc == TF_EAGAIN ? TF_EIO : rc;
        }
    }
    if (fr->pending > 0)
        return;
    fr->cb(st, fr->status, fr->status == TF_OK ? &fr->table : NULL, fr->opaque);
    tf_figures_table_free(&fr->table);
    free(fr);
}

int tf_store_figures_read(tf_store_t *st, tf_store_figures_cb cb, void *opaque)
{
    int rc = check_ready(st);
    if (rc)
        return rc;
    if (!cb)
        return TF_EINVAL;
    figures_read *fr = calloc(1, sizeof(*fr));
    if (!fr)
        return TF_ENOMEM;
    fr->st = st;
    fr->nslots = st->slot_tags ? TF_STORE_SLOTS : 1;
    fr->cb = cb;
    fr->opaque = opaque;
    if ((rc = figures_send_more(fr)) && fr->pending == 0) {
        free(fr);
        return rc;
    }
    if (rc) /* the ones sent answer; the read fails */
        fr->status = TF_EIO;
    return TF_OK;
}

/* ---- small commands ---- */

/* The reply of a fire-and-forget command; privdata names it for the log. */
static void on_plain_reply(tf_link_t *l, const redisReply *reply, void *privdata)
{
    tf_store_t *st = tf_link_opaque(l);
    if (reply && reply->type == REDIS_REPLY_ERROR)
        fail_reply(st, reply, privdata);
}

static void on_ack_reply(tf_link_t *ac, const redisReply *reply, void *privdata)
{
    cmd_t *c = privdata;
    tf_store_t *st = c->st;
    const redisReply *r = reply;
    tf_store_done_cb cb = (tf_store_done_cb)c->cb;
    void *opaque = c->opaque;
    (void)ac;
    cmd_put(st, c);
    int status = r && r->type == REDIS_REPLY_INTEGER ? TF_OK : reply_status(st, r, "outbox ack");
    if (cb)
        cb(st, status, opaque);
}

int tf_store_outbox_ack(tf_store_t *st, const char *customer, const char *const *ids, size_t nids,
                        tf_store_done_cb cb, void *opaque)
{
    size_t off[2], len[2];
    int rc = check_ready(st);
    if (rc)
        return rc;
    if (nids == 0)
        return TF_EINVAL;
    if ((rc = build_keys(st, customer, off, len)) || (rc = argv_reserve(st, 2 + nids)))
        return rc;
    size_t a = 0;
    st->argv[a] = "HDEL", st->argvlen[a++] = 4;
    st->argv[a] = st->keybuf + off[1], st->argvlen[a++] = len[1];
    for (size_t i = 0; i < nids; i++)
        st->argv[a] = ids[i], st->argvlen[a++] = strlen(ids[i]);
    cmd_t *c = cmd_get(st, CMD_ACK, (void *)cb, opaque);
    if (!c)
        return TF_ENOMEM;
    if ((rc = send1(st, st->keybuf + off[1], len[1], on_ack_reply, c, (int)a, st->argv, st->argvlen)))
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
    rc = send1(st, key, (size_t)n, on_integer_reply, c, 2, argv, lens);
    if (rc)
        cmd_put(st, c);
    return rc;
}

/* ---- indexes that span customers ---- */

/* "<prefix><a><open><b><close>" into st->keybuf; its length in *len. */
static int key_of(tf_store_t *st, const char *a, const char *open, const char *b, const char *close, size_t *len)
{
    if (bytes_reserve(&st->keybuf, &st->keybuf_cap, strlen(st->prefix) + strlen(a) + strlen(open) + strlen(b) + strlen(close) + 1))
        return TF_ENOMEM;
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
        return send1(st, st->keybuf, klen, on_plain_reply, "timer index", 3, argv, lens);
    }
    int n = snprintf(due, sizeof(due), "%lld", (long long)due_ms);
    const char *argv[4] = {"ZADD", st->keybuf, due, customer};
    size_t lens[4] = {4, klen, (size_t)n, strlen(customer)};
    return send1(st, st->keybuf, klen, on_plain_reply, "timer index", 4, argv, lens);
}

#define DUE_STACK 256

/* Retires the command of a reply that must be an array: r, or NULL with *status
 * set (and an unexpected reply logged). Read c's callback and opaque first. */
static const redisReply *take_array_reply(tf_store_t *st, cmd_t *c, const redisReply *r, const char *what,
                                          int *status)
{
    cmd_put(st, c);
    if (r && r->type == REDIS_REPLY_ARRAY)
        return r;
    *status = reply_status(st, r, what);
    if (r && r->type != REDIS_REPLY_ERROR)
        TF_ERROR(MOD, "%s: unexpected reply type %d", what, r->type);
    return NULL;
}

static void on_due_reply(tf_link_t *ac, const redisReply *reply, void *privdata)
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
    rc = send1(st, st->keybuf, klen, on_due_reply, c, 7, argv, lens);
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
    return send1(st, st->keybuf, klen, on_plain_reply, "value index", 4, argv, lens);
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

static void on_population_reply(tf_link_t *ac, const redisReply *reply, void *privdata)
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
    const char *argv[10] = {"EVALSHA", tf_link_sha(st->link, SCRIPT_POPULATION), "2", st->keybuf, tiers_key};
    size_t lens[10] = {7, 40, 1, vlen, tlen};
    for (int i = 0; i < 4; i++) {
        argv[5 + i] = shares[i];
        lens[5 + i] = (size_t)snprintf(shares[i], sizeof(shares[i]), "%lld", (long long)s[i]);
    }
    if (keep)
        snprintf(period, sizeof(period), "%lld", (long long)period_ms);
    argv[9] = period;
    lens[9] = strlen(period);
    rc = send1(st, st->keybuf, vlen, on_population_reply, c, 10, argv, lens);
    free(tiers_key);
    if (rc)
        cmd_put(st, c);
    return rc;
}

int tf_store_link_referral(tf_store_t *st, const char *referred, const char *referrer)
{
    size_t off[2], len[2];
    int rc = check_ready(st);
    if (rc)
        return rc;
    if (!referred || !referrer)
        return TF_EINVAL;
    if ((rc = build_keys(st, referred, off, len)))
        return rc;
    const char *argv[4] = {"HSETNX", st->keybuf + off[0], "referred_by", referrer};
    size_t lens[4] = {6, len[0], 11, strlen(referrer)};
    return send1(st, st->keybuf + off[0], len[0], on_plain_reply, "referral link", 4, argv, lens);
}

/* ---- replication ---- */

static void on_synced(tf_link_t *l, int status, void *priv)
{
    cmd_t *c = priv;
    tf_store_t *st = tf_link_opaque(l);
    tf_store_done_cb cb = (tf_store_done_cb)c->cb;
    void *opaque = c->opaque;
    cmd_put(st, c);
    if (status == TF_EIO) {
        snprintf(st->last_error, sizeof(st->last_error), "replication: %s", tf_link_wait_error(l));
        TF_WARN(MOD, "%s", st->last_error);
    }
    cb(st, status, opaque);
}

int tf_store_sync(tf_store_t *st, int replicas, int64_t timeout_ms, tf_store_done_cb cb, void *opaque)
{
    int rc = check_ready(st);
    if (rc)
        return rc;
    if (!cb || replicas < 1 || timeout_ms < 0)
        return TF_EINVAL;
    cmd_t *c = cmd_get(st, CMD_SYNC, (void *)cb, opaque);
    if (!c)
        return TF_ENOMEM;
    if ((rc = tf_link_wait(st->link, replicas, timeout_ms, on_synced, c)))
        cmd_put(st, c);
    return rc;
}
