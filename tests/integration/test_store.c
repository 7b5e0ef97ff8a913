/* pkg/store against a real Redis (TOUCHFLOW_REDIS_URL): atomic commit, dedup,
 * epoch fencing, the outbox, the timer and value indexes, referral links, the
 * population figures, and behaviour when Redis is down or hung. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <hiredis.h>

#include "store/store.h"

static const char *redis_url;
static char prefix[64];

typedef struct {
    struct event_base *base;
    tf_store_t *st;
    int ups, downs;
    int done;
    int status;
    int64_t num;
    tf_store_doc_t doc;
    uint8_t seen[16];
    size_t nask; /* ids the last load asked about */
    size_t noutbox;
    char outbox_ids[8][TF_ID_LEN];
    char outbox_payload[8][128];
    size_t nnames;
    char names[320][32];
    tf_population_t pop;
    const tf_figure_delta *figs; /* the next commits add these figures */
    size_t nfigs;
    tf_figures_table table;       /* the last figures read */
} ctx_t;

static void on_state(tf_store_t *st, int up, void *opaque)
{
    ctx_t *c = opaque;
    (void)st;
    if (up)
        c->ups++;
    else
        c->downs++;
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

/* Runs the loop until *flag becomes nonzero or ms pass; returns the flag. */
static int run_until(ctx_t *c, int *flag, int ms)
{
    struct event *t = evtimer_new(c->base, on_timeout, c->base);
    int64_t end = tf_time_mono_ms() + ms;
    while (!*flag && tf_time_mono_ms() < end) {
        struct timeval tv = {0, 20 * 1000};
        evtimer_add(t, &tv);
        event_base_loop(c->base, EVLOOP_ONCE);
    }
    event_free(t);
    return *flag;
}

static void open_store(ctx_t *c, const char *url, int64_t timeout_ms)
{
    char err[256];
    memset(c, 0, sizeof(*c));
    c->base = event_base_new();
    tf_store_opts o = {url, prefix, timeout_ms, 50, 400, 3600 * 1000};
    c->st = tf_store_new(c->base, &o, on_state, c, err, sizeof(err));
    assert_non_null(c->st);
}

static void close_store(ctx_t *c)
{
    tf_store_destroy(c->st);
    event_base_free(c->base);
    tf_figures_table_free(&c->table);
}

static void on_loaded(tf_store_t *st, int status, const tf_store_loaded *res, void *opaque)
{
    ctx_t *c = opaque;
    (void)st;
    c->status = status;
    if (status == TF_OK) {
        c->doc = *res->doc;
        for (size_t i = 0; i < 16; i++)
            c->seen[i] = 0;
        c->noutbox = res->noutbox;
        for (size_t i = 0; i < res->noutbox && i < 8; i++) {
            snprintf(c->outbox_ids[i], TF_ID_LEN, "%s", res->outbox[i].id);
            snprintf(c->outbox_payload[i], 128, "%.*s", (int)res->outbox[i].payload_len, res->outbox[i].payload);
        }
    }
    c->done = 1;
}

static void on_seen_loaded(tf_store_t *st, int status, const tf_store_loaded *res, void *opaque)
{
    ctx_t *c = opaque;
    on_loaded(st, status, res, opaque);
    if (status == TF_OK)
        for (size_t i = 0; i < c->nask && i < sizeof(c->seen); i++)
            c->seen[i] = res->seen[i];
}

static void on_done(tf_store_t *st, int status, void *opaque)
{
    ctx_t *c = opaque;
    (void)st;
    c->status = status;
    c->done = 1;
}

static void on_committed(tf_store_t *st, int status, int64_t version, void *opaque)
{
    ctx_t *c = opaque;
    (void)st;
    c->status = status;
    c->num = version;
    c->done = 1;
}

static void on_epoch(tf_store_t *st, int status, int64_t epoch, void *opaque)
{
    ctx_t *c = opaque;
    (void)st;
    c->status = status;
    c->num = epoch;
    c->done = 1;
}

static void on_due(tf_store_t *st, int status, const char *const *customers, size_t n, void *opaque)
{
    ctx_t *c = opaque;
    (void)st;
    c->status = status;
    c->nnames = n;
    if (status == TF_OK)
        for (size_t i = 0; i < n && i < 320; i++)
            snprintf(c->names[i], sizeof(c->names[i]), "%s", customers[i]);
    else
        assert_null(customers);
    c->done = 1;
}

static void on_population(tf_store_t *st, int status, const tf_population_t *pop, void *opaque)
{
    ctx_t *c = opaque;
    (void)st;
    c->status = status;
    if (status == TF_OK)
        c->pop = *pop;
    else
        assert_null(pop);
    c->done = 1;
}

static void load(ctx_t *c, const char *customer, const char *const *ids, size_t nids)
{
    c->done = 0;
    c->nask = nids;
    assert_int_equal(tf_store_load(c->st, customer, ids, nids, nids ? on_seen_loaded : on_loaded, c), 0);
    assert_true(run_until(c, &c->done, 3000));
}

static int commit_ex(ctx_t *c, const char *customer, const tf_store_doc_t *before, const tf_store_doc_t *after,
                     int referral_check, int64_t epoch, const char *const *ids, size_t nids,
                     const tf_store_outbox_add *ob, size_t nob)
{
    c->done = 0;
    assert_int_equal(tf_store_commit(c->st, customer, before, after, referral_check, epoch, tf_time_now_ms(), ids,
                                     nids, ob, nob, c->figs, c->nfigs, on_committed, c),
                     0);
    assert_true(run_until(c, &c->done, 3000));
    return c->status;
}

static int commit(ctx_t *c, const char *customer, const tf_store_doc_t *before, const tf_store_doc_t *after,
                  int64_t epoch, const char *const *ids, size_t nids, const tf_store_outbox_add *ob, size_t nob)
{
    return commit_ex(c, customer, before, after, 1, epoch, ids, nids, ob, nob);
}

static int setup(void **state)
{
    ctx_t *c = calloc(1, sizeof(*c));
    open_store(c, redis_url, 2000);
    assert_true(run_until(c, &c->ups, 5000));
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    close_store(*state);
    free(*state);
    return 0;
}

static void commit_then_load_round_trips(void **state)
{
    ctx_t *c = *state;
    tf_store_doc_t empty, after;
    load(c, "alice", NULL, 0);
    assert_int_equal(c->status, TF_OK);
    assert_false(c->doc.exists);
    empty = c->doc;

    after = empty;
    after.customer.stage = TF_STAGE_GROWTH;
    after.customer.purchases = 2;
    after.customer.spend = 25980;
    after.customer.surveys_sat = 1; /* the sums are written with the surveys that made them */
    after.customer.sat_perception_sum = 9.5;
    memcpy(after.customer.currency, "CNY", 4);
    tf_store_doc_set_watermark(&after, "touchpoints/3", 41);
    const char *ids[] = {"e-1", "e-2"};
    tf_store_outbox_add ob[] = {{"d-1", "lifecycle\n{\"x\":1}", 17}};
    assert_int_equal(commit(c, "alice", &empty, &after, 7, ids, 2, ob, 1), TF_OK);
    assert_int_equal(c->num, 1);

    const char *ask[] = {"e-2", "e-3", "e-1"};
    load(c, "alice", ask, 3);
    assert_int_equal(c->status, TF_OK);
    assert_true(c->doc.exists);
    assert_int_equal(c->doc.customer.stage, TF_STAGE_GROWTH);
    assert_int_equal(c->doc.customer.purchases, 2);
    assert_int_equal(c->doc.customer.spend, 25980);
    assert_true(c->doc.customer.sat_perception_sum == 9.5);
    assert_string_equal(c->doc.customer.currency, "CNY");
    assert_int_equal(tf_store_doc_watermark(&c->doc, "touchpoints/3"), 41);
    assert_int_equal(c->doc.version, 1);
    assert_int_equal(c->doc.epoch, 7);
    /* dedup: the two committed ids are seen, the new one is not */
    assert_int_equal(c->seen[0], 1);
    assert_int_equal(c->seen[1], 0);
    assert_int_equal(c->seen[2], 1);
    assert_int_equal(c->noutbox, 1);
    assert_string_equal(c->outbox_ids[0], "d-1");
    assert_string_equal(c->outbox_payload[0], "lifecycle\n{\"x\":1}");

    /* Only changed fields are sent, yet the whole state reads back. */
    tf_store_doc_t before = c->doc, next = c->doc;
    next.customer.purchases = 3;
    assert_int_equal(commit(c, "alice", &before, &next, 7, NULL, 0, NULL, 0), TF_OK);
    assert_int_equal(c->num, 2);
    load(c, "alice", NULL, 0);
    assert_int_equal(c->doc.customer.purchases, 3);
    assert_int_equal(c->doc.customer.spend, 25980);

    /* The outbox ack removes delivered entries and says so. */
    const char *acked[] = {"d-1"};
    c->done = 0;
    c->status = -1;
    assert_int_equal(tf_store_outbox_ack(c->st, "alice", acked, 1, on_done, c), 0);
    assert_true(run_until(c, &c->done, 2000));
    assert_int_equal(c->status, TF_OK);
    load(c, "alice", NULL, 0);
    assert_int_equal(c->noutbox, 0);
}

static void older_epoch_is_fenced_and_writes_nothing(void **state)
{
    ctx_t *c = *state;
    tf_store_doc_t empty, a, b;
    load(c, "bob", NULL, 0);
    empty = c->doc;
    a = empty;
    a.customer.purchases = 1;
    const char *ids1[] = {"b-1"};
    assert_int_equal(commit(c, "bob", &empty, &a, 10, ids1, 1, NULL, 0), TF_OK);

    /* A writer that lost the partition still holds epoch 9: refused, and atomically
     * so: no field, dedup id or outbox entry of its commit lands. */
    b = empty;
    b.customer.purchases = 99;
    const char *ids2[] = {"b-stale"};
    tf_store_outbox_add ob[] = {{"d-stale", "lifecycle\n{}", 11}};
    assert_int_equal(commit(c, "bob", &empty, &b, 9, ids2, 1, ob, 1), TF_EFENCED);

    const char *ask[] = {"b-stale", "b-1"};
    load(c, "bob", ask, 2);
    assert_int_equal(c->doc.customer.purchases, 1);
    assert_int_equal(c->doc.version, 1);
    assert_int_equal(c->seen[0], 0);
    assert_int_equal(c->seen[1], 1);
    assert_int_equal(c->noutbox, 0);

    /* The same or a newer epoch writes. */
    tf_store_doc_t before = c->doc, next = c->doc;
    next.customer.purchases = 2;
    assert_int_equal(commit(c, "bob", &before, &next, 11, NULL, 0, NULL, 0), TF_OK);
    load(c, "bob", NULL, 0);
    assert_int_equal(c->doc.customer.purchases, 2);
    assert_int_equal(c->doc.epoch, 11);
}

static void epochs_increase(void **state)
{
    ctx_t *c = *state;
    c->done = 0;
    assert_int_equal(tf_store_next_epoch(c->st, on_epoch, c), 0);
    assert_true(run_until(c, &c->done, 3000));
    int64_t first = c->num;
    c->done = 0;
    assert_int_equal(tf_store_next_epoch(c->st, on_epoch, c), 0);
    assert_true(run_until(c, &c->done, 3000));
    assert_int_equal(c->num, first + 1);
}

/* ---- the new state, indexes and referral links ---- */

/* Every member of the customer beyond the counters, nonzero; ids carry '|'. */
static void full_state(tf_customer_t *c)
{
    c->stage = TF_STAGE_MATURE;
    c->stage_since_ms = 1767701700000;
    c->clock_ms = 1767701799999;
    c->purchases = 7;
    c->spend = 99000;
    c->gross_profit = -1234;
    c->care_actions = 5;
    c->spend_base = 20461;
    for (int i = 0; i < TF_SPEND_BUCKETS; i++)
        c->spend_buckets[i] = 100 * (i + 1) * (i % 2 ? -1 : 1);
    c->ncomplaints = TF_MAX_COMPLAINTS;
    for (int i = 0; i < TF_MAX_COMPLAINTS; i++) {
        tf_complaint_t *cp = &c->complaint[i];
        memset(cp->id, 'i', TF_REF_MAX);
        snprintf(cp->id, sizeof(cp->id), "c|%d|", i);
        cp->id[strlen(cp->id)] = 'i'; /* the rest of the 128 bytes stays 'i' */
        cp->id[TF_REF_MAX] = '\0';
        cp->category = (tf_complaint_category)(1 + i % 4);
        cp->severity = (tf_complaint_severity)(1 + (i + 2) % 4);
        cp->state = (tf_complaint_state)(i % 3);
        cp->level = i % 3;
        cp->opened_ms = 1767701700000 + i;
        cp->closed_ms = cp->state == TF_COMPLAINT_RESOLVED ? 1767701800000 + i : 0;
    }
    c->nps_promoters = 2;
    c->nps_detractors = 1;
    c->tier = TF_TIER_KEY;
    c->tier_since_ms = 1767701700001;
    c->points = 4200;
    snprintf(c->level, sizeof(c->level), "platinum");
    c->risk = 37;
    c->warned = 1;
    c->warned_at_ms = 1767701700002;
    c->welcomed = 1;
    c->birth_month = 12;
    c->birth_day = 24;
    c->date_year = 2015;
    c->date_month = 6;
    c->date_day = 1;
    c->birthday_done_year = 2025;
    c->anniversary_done_year = 2025;
    c->date_done_year = 2024;
    c->festival_done_ms = 1767225600000;
    c->followup_due_ms = 1767901700000;
    snprintf(c->followup_order, sizeof(c->followup_order), "o|1");
    c->checkin_done_ms = 1767001700000;
    c->complaint[2].followup_due_ms = 1767991700000; /* slot 2 is resolved */
    c->ntags = 2;
    snprintf(c->tags[0], sizeof(c->tags[0]), "vip");
    snprintf(c->tags[1], sizeof(c->tags[1]), "b2b");
    c->tags_at_ms = 1767701700003;
    c->consent[TF_CHANNEL_SMS] = TF_CONSENT_WITHDRAWN;
    c->consent_at_ms[TF_CHANNEL_SMS] = 1767701700004;
    snprintf(c->referred_by, sizeof(c->referred_by), "cust-ref|x");
    c->referral_credited = 1;
    c->referrals = 3;
    for (int t = 0; t < TF_TIMER__COUNT; t++)
        c->due[t] = 1767701700000 + (t + 1) * 60000;
    c->nhistory = 1;
    c->history[0].at_ms = 1767701700000;
    c->history[0].from = TF_STAGE_GROWTH;
    c->history[0].to = TF_STAGE_MATURE;
    snprintf(c->history[0].rule, sizeof(c->history[0].rule), "mature_threshold");
}

static void new_state_round_trips(void **state)
{
    ctx_t *c = *state;
    static tf_store_doc_t empty, after, other, later;
    load(c, "erin", NULL, 0);
    assert_int_equal(c->status, TF_OK);
    empty = c->doc;
    after = empty;
    full_state(&after.customer);
    tf_store_doc_set_watermark(&after, "touchpoints/1", 5);
    assert_int_equal(commit(c, "erin", &empty, &after, 3, NULL, 0, NULL, 0), TF_OK);
    load(c, "erin", NULL, 0);
    assert_int_equal(c->status, TF_OK);
    assert_memory_equal(&c->doc.customer, &after.customer, sizeof(after.customer));
    assert_int_equal(tf_store_doc_watermark(&c->doc, "touchpoints/1"), 5);

    /* An unchanged document sends no field: committing other (stale, differing in
     * almost everything, its referred_by blank: no referral check) as both before and
     * after leaves the stored state alone. */
    other = empty;
    other.exists = 1;
    other.version = 1; /* the last write Redis holds: else the commit is stale */
    other.epoch = 3;
    other.customer.stage = TF_STAGE_PROSPECT;
    other.customer.purchases = 1;
    assert_int_equal(commit_ex(c, "erin", &other, &other, 0, 3, NULL, 0, NULL, 0), TF_OK);
    load(c, "erin", NULL, 0);
    assert_memory_equal(&c->doc.customer, &after.customer, sizeof(after.customer));
    assert_int_equal(c->doc.version, 2);

    /* Only what differs from before is written: cp:0 and the SLA timer differ from
     * other's; cp:1..7 ("" in both) and the rest keep what Redis holds. */
    other.version = 2;
    later = other;
    later.customer.due[TF_TIMER_SLA] = 1;
    later.customer.ncomplaints = 1;
    later.customer.complaint[0] = after.customer.complaint[3];
    assert_int_equal(commit_ex(c, "erin", &other, &later, 0, 3, NULL, 0, NULL, 0), TF_OK);
    load(c, "erin", NULL, 0);
    tf_customer_t want = after.customer;
    want.due[TF_TIMER_SLA] = 1;
    want.complaint[0] = after.customer.complaint[3];
    assert_memory_equal(&c->doc.customer, &want, sizeof(want));
    assert_int_equal(c->doc.version, 3);

    /* From the loaded state, emptied slots are written as "" and read as none. */
    static tf_store_doc_t cur, fewer;
    cur = c->doc;
    fewer = cur;
    fewer.customer.ncomplaints = 2;
    memset(&fewer.customer.complaint[2], 0, sizeof(fewer.customer.complaint) - 2 * sizeof(fewer.customer.complaint[0]));
    fewer.customer.due[TF_TIMER_SLA] = 0;
    assert_int_equal(commit(c, "erin", &cur, &fewer, 3, NULL, 0, NULL, 0), TF_OK);
    load(c, "erin", NULL, 0);
    assert_memory_equal(&c->doc.customer, &fewer.customer, sizeof(fewer.customer));
}

static void due(ctx_t *c, const char *tp, int64_t until, size_t limit)
{
    c->done = 0;
    assert_int_equal(tf_store_index_due(c->st, tp, until, limit, on_due, c), TF_OK);
    assert_true(run_until(c, &c->done, 3000));
    assert_int_equal(c->status, TF_OK);
}

static void assert_names(const ctx_t *c, const char *const *want, size_t n)
{
    assert_int_equal(c->nnames, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(c->names[i], want[i]);
}

static void timer_index_returns_due_customers(void **state)
{
    ctx_t *c = *state;
    const char *tp = "touchpoints/3";
    assert_int_equal(tf_store_index_set(c->st, tp, "c1", 300), TF_OK);
    assert_int_equal(tf_store_index_set(c->st, tp, "c2", 100), TF_OK);
    assert_int_equal(tf_store_index_set(c->st, tp, "c3", 200), TF_OK);
    assert_int_equal(tf_store_index_set(c->st, tp, "c4", 900), TF_OK);
    assert_int_equal(tf_store_index_set(c->st, tp, "c5", 0), TF_OK); /* nothing scheduled */
    assert_int_equal(tf_store_index_set(c->st, "touchpoints/4", "d1", 50), TF_OK);

    /* Redis answers in order: the scan sees every write queued before it. */
    due(c, tp, 250, 10);
    assert_names(c, (const char *const[]){"c2", "c3"}, 2);
    due(c, tp, 300, 10); /* at or before */
    assert_names(c, (const char *const[]){"c2", "c3", "c1"}, 3);
    due(c, tp, 1000, 2);
    assert_names(c, (const char *const[]){"c2", "c3"}, 2);
    due(c, tp, 99, 10);
    assert_int_equal(c->nnames, 0);
    due(c, "touchpoints/4", 1000, 10);
    assert_names(c, (const char *const[]){"d1"}, 1);

    /* 0 removes; a new due time moves the customer. */
    assert_int_equal(tf_store_index_set(c->st, tp, "c3", 0), TF_OK);
    assert_int_equal(tf_store_index_set(c->st, tp, "c4", 10), TF_OK);
    due(c, tp, 1000, 10);
    assert_names(c, (const char *const[]){"c4", "c2", "c1"}, 3);
    assert_int_equal(tf_store_index_set(c->st, tp, "c4", -1), TF_OK);
    due(c, tp, 1000, 10);
    assert_names(c, (const char *const[]){"c2", "c1"}, 2);

    assert_int_equal(tf_store_index_due(c->st, tp, 1000, 0, on_due, c), TF_EINVAL);

    /* More than fit on the callback's stack array. */
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "m%03d", i);
        assert_int_equal(tf_store_index_set(c->st, "touchpoints/9", name, 1000 + i), TF_OK);
    }
    due(c, "touchpoints/9", 5000, 1000);
    assert_int_equal(c->nnames, 300);
    assert_string_equal(c->names[0], "m000");
    assert_string_equal(c->names[299], "m299");
}

static void population_of(ctx_t *c, const char *tp, int keep, int64_t period, int64_t key, int64_t potential,
                          int64_t hyst)
{
    c->done = 0;
    assert_int_equal(tf_store_population(c->st, tp, keep, period, key, potential, hyst, on_population, c), TF_OK);
    assert_true(run_until(c, &c->done, 3000));
    assert_int_equal(c->status, TF_OK);
}

static void population(ctx_t *c, int64_t key, int64_t potential, int64_t hyst)
{
    population_of(c, "touchpoints/0", 0, 0, key, potential, hyst);
}

static void value_cutoffs(void **state)
{
    ctx_t *c = *state;
    char name[32];

    /* Nobody yet. */
    population(c, 5, 15, 2);
    assert_int_equal(c->pop.buyers, 0);
    assert_true(c->pop.key_enter == INT64_MAX && c->pop.key_keep == INT64_MAX);
    assert_true(c->pop.potential_enter == INT64_MAX && c->pop.potential_keep == INT64_MAX);

    /* 10 buyers: 5% and 7% of them are less than one customer. */
    for (int i = 1; i <= 10; i++) {
        snprintf(name, sizeof(name), "v%03d", i);
        assert_int_equal(tf_store_value_set(c->st, "touchpoints/0", name, i), TF_OK);
    }
    population(c, 5, 15, 2);
    assert_int_equal(c->pop.buyers, 10);
    assert_true(c->pop.key_enter == INT64_MAX);
    assert_true(c->pop.key_keep == INT64_MAX);
    assert_int_equal(c->pop.potential_enter, 9); /* 20% of 10 = 2: the 2nd highest */
    assert_int_equal(c->pop.potential_keep, 9);  /* 22% of 10 = 2 */

    /* 100 buyers valued 1..100 (the first ten set again, unchanged). */
    for (int i = 1; i <= 100; i++) {
        snprintf(name, sizeof(name), "v%03d", i);
        assert_int_equal(tf_store_value_set(c->st, "touchpoints/0", name, i), TF_OK);
    }
    population(c, 5, 15, 2);
    assert_int_equal(c->pop.buyers, 100);
    assert_int_equal(c->pop.key_enter, 96);       /* top 5: 100..96 */
    assert_int_equal(c->pop.key_keep, 94);        /* top 7 */
    assert_int_equal(c->pop.potential_enter, 81); /* top 20 */
    assert_int_equal(c->pop.potential_keep, 79);  /* top 22 */

    /* Shares past everyone stop at the lowest value; 0% holds nobody. */
    population(c, 50, 60, 0);
    assert_int_equal(c->pop.key_enter, 51);
    assert_int_equal(c->pop.potential_enter, 1);
    population(c, 0, 1, 0);
    assert_true(c->pop.key_enter == INT64_MAX);
    assert_int_equal(c->pop.potential_enter, 100);

    /* A value moves its customer; scores beyond 2^53 and negative ones parse. */
    assert_int_equal(tf_store_value_set(c->st, "touchpoints/0", "v100", INT64_C(1) << 60), TF_OK);
    assert_int_equal(tf_store_value_set(c->st, "touchpoints/0", "v001", -7), TF_OK);
    population(c, 1, 98, 0);
    assert_int_equal(c->pop.buyers, 100);
    assert_int_equal(c->pop.key_enter, INT64_C(1) << 60);
    assert_int_equal(c->pop.potential_enter, 2);
    population(c, 1, 99, 0);
    assert_int_equal(c->pop.potential_enter, -7);

    assert_int_equal(tf_store_population(c->st, "touchpoints/0", 0, 0, -1, 5, 0, on_population, c), TF_EINVAL);

    /* Another partition ranks its own buyers. */
    population_of(c, "touchpoints/1", 0, 0, 5, 15, 2);
    assert_int_equal(c->pop.buyers, 0);
    assert_int_equal(tf_store_value_set(c->st, "touchpoints/1", "w1", 50), TF_OK);
    population_of(c, "touchpoints/1", 0, 0, 100, 0, 0);
    assert_int_equal(c->pop.buyers, 1);
    assert_int_equal(c->pop.key_enter, 50);

    /* Kept per period: the first answer for a period is the answer for it, whatever
     * the ranking holds when it is asked again; another period is computed anew. */
    population_of(c, "touchpoints/0", 1, 86400000, 1, 15, 2);
    assert_int_equal(c->pop.buyers, 100);
    assert_int_equal(c->pop.key_enter, INT64_C(1) << 60);
    for (int i = 101; i <= 120; i++) {
        snprintf(name, sizeof(name), "v%03d", i);
        assert_int_equal(tf_store_value_set(c->st, "touchpoints/0", name, INT64_C(1) << 61), TF_OK);
    }
    population_of(c, "touchpoints/0", 1, 86400000, 1, 15, 2);
    assert_int_equal(c->pop.buyers, 100);
    assert_int_equal(c->pop.key_enter, INT64_C(1) << 60);
    population_of(c, "touchpoints/0", 1, 2 * 86400000, 1, 15, 2);
    assert_int_equal(c->pop.buyers, 120);
    assert_int_equal(c->pop.key_enter, INT64_C(1) << 61);
}

static void referral_link_is_set_once(void **state)
{
    ctx_t *c = *state;
    static tf_store_doc_t empty, after;

    /* The referred customer does not exist yet. */
    assert_int_equal(tf_store_link_referral(c->st, "frank", "grace"), TF_OK);
    load(c, "frank", NULL, 0);
    assert_int_equal(c->status, TF_OK);
    assert_string_equal(c->doc.customer.referred_by, "grace");
    assert_int_equal(c->doc.customer.stage, TF_STAGE_NONE);

    /* A second referrer does not take over. */
    assert_int_equal(tf_store_link_referral(c->st, "frank", "heidi"), TF_OK);
    load(c, "frank", NULL, 0);
    assert_string_equal(c->doc.customer.referred_by, "grace");

    /* A commit from a load that ran before the link is stale (the rules did not
     * see the referrer) and writes nothing; without the check (a referral the
     * writer accounts for), it goes through and keeps the link. */
    load(c, "ivan", NULL, 0);
    empty = c->doc;
    assert_false(empty.exists);
    assert_int_equal(tf_store_link_referral(c->st, "ivan", "judy"), TF_OK);
    after = empty;
    after.customer.stage = TF_STAGE_PROSPECT;
    after.customer.counts[TF_KIND_WEB_VISIT] = 1;
    assert_int_equal(commit(c, "ivan", &empty, &after, 1, NULL, 0, NULL, 0), TF_ESTALE);
    load(c, "ivan", NULL, 0);
    assert_string_equal(c->doc.customer.referred_by, "judy");
    assert_int_equal(c->doc.customer.stage, TF_STAGE_NONE);
    assert_int_equal(commit_ex(c, "ivan", &empty, &after, 0, 1, NULL, 0, NULL, 0), TF_OK);
    load(c, "ivan", NULL, 0);
    assert_string_equal(c->doc.customer.referred_by, "judy");
    assert_int_equal(c->doc.customer.stage, TF_STAGE_PROSPECT);
    assert_int_equal(c->doc.customer.counts[TF_KIND_WEB_VISIT], 1);
}

/* ---- the dedup window in the state hash ---- */

/* One command on a connection of its own; the reply as an integer (status and
 * nil: 0; a string: its number, or 1 when it is not one). */
static long long raw(const char *fmt, ...)
{
    char host[64] = "127.0.0.1";
    int port = 6379;
    sscanf(redis_url, "redis://%63[^:]:%d", host, &port);
    redisContext *rc = redisConnect(host, port);
    assert_non_null(rc);
    assert_int_equal(rc->err, 0);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer
                  : r->type == REDIS_REPLY_STRING ? (strtoll(r->str, NULL, 10) ? strtoll(r->str, NULL, 10) : 1)
                                                  : 0;
    freeReplyObject(r);
    redisFree(rc);
    return v;
}

/* Ids leave the hash with the first commit after "ix"; live ones stay. */
static void expired_ids_leave_the_hash(void **state)
{
    ctx_t *c = *state;
    tf_store_doc_t empty, after, before;
    long long now = (long long)tf_time_now_ms();
    load(c, "mia", NULL, 0);
    empty = c->doc;
    after = empty;
    after.customer.purchases = 1;
    const char *first[] = {"m-1", "m-2"};
    assert_int_equal(commit(c, "mia", &empty, &after, 1, first, 2, NULL, 0), TF_OK);
    long long ix = raw("HGET %sc:{mia} ix", prefix);
    assert_true(ix > now + 3600 * 1000LL - 60000 && ix <= now + 3600 * 1000LL + 60000);

    /* Not yet due: an old id stays (it is no longer seen, only kept). */
    assert_int_equal(raw("HSET %sc:{mia} d:m-1 %lld", prefix, now - 2 * 3600 * 1000LL), 0);
    load(c, "mia", NULL, 0);
    before = c->doc;
    after = before;
    after.customer.purchases = 2;
    const char *second[] = {"m-3"};
    assert_int_equal(commit(c, "mia", &before, &after, 1, second, 1, NULL, 0), TF_OK);
    assert_int_equal(raw("HEXISTS %sc:{mia} d:m-1", prefix), 1);

    /* Due: it goes, the live ones stay, and the next trim is a window away. */
    assert_int_equal(raw("HSET %sc:{mia} ix %lld", prefix, now - 1), 0);
    const char *ask[] = {"m-1", "m-2", "m-3", "m-4"};
    load(c, "mia", ask, 4);
    assert_int_equal(c->seen[0], 0);
    assert_int_equal(c->seen[1], 1);
    before = c->doc;
    after = before;
    after.customer.purchases = 3;
    const char *third[] = {"m-4"};
    assert_int_equal(commit(c, "mia", &before, &after, 1, third, 1, NULL, 0), TF_OK);
    assert_int_equal(raw("HEXISTS %sc:{mia} d:m-1", prefix), 0);
    assert_int_equal(raw("HEXISTS %sc:{mia} d:m-2", prefix), 1);
    assert_int_equal(raw("HEXISTS %sc:{mia} d:m-3", prefix), 1);
    assert_int_equal(raw("HEXISTS %sc:{mia} d:m-4", prefix), 1);
    assert_true(raw("HGET %sc:{mia} ix", prefix) > now);
    load(c, "mia", ask, 4);
    assert_int_equal(c->doc.customer.purchases, 3);
    assert_int_equal(c->seen[0], 0);
    assert_int_equal(c->seen[3], 1);
}

/* A customer with more ids in its window than a state has fields still loads
 * whole: the ids are not counted as fields. */
static void many_ids_leave_the_state_whole(void **state)
{
    ctx_t *c = *state;
    enum { N = 600 };
    static char names[N][16];
    static const char *ids[N];
    tf_store_doc_t empty, after;
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "n-%d", i);
        ids[i] = names[i];
    }
    load(c, "noa", NULL, 0);
    empty = c->doc;
    after = empty;
    after.customer.stage = TF_STAGE_GROWTH;
    after.customer.purchases = 7;
    assert_int_equal(commit(c, "noa", &empty, &after, 1, ids, N, NULL, 0), TF_OK);
    assert_int_equal(raw("HLEN %sc:{noa}", prefix) > N, 1);
    const char *ask[] = {"n-0", "n-599", "n-600"};
    load(c, "noa", ask, 3);
    assert_int_equal(c->status, TF_OK);
    assert_int_equal(c->doc.customer.stage, TF_STAGE_GROWTH);
    assert_int_equal(c->doc.customer.purchases, 7);
    assert_int_equal(c->seen[0], 1);
    assert_int_equal(c->seen[1], 1);
    assert_int_equal(c->seen[2], 0);
}

/* ---- population figures ----
 *
 * The cases of one run share the prefix, so the figures hash too: each compares a
 * read after its commits with a read before them. */

static void on_figures(tf_store_t *st, int status, tf_figures_table *table, void *opaque)
{
    ctx_t *c = opaque;
    (void)st;
    c->status = status;
    if (status == TF_OK) {
        /* Take the rows: the store frees what is left in table. */
        tf_figures_table_free(&c->table);
        c->table = *table;
        memset(table, 0, sizeof(*table));
    } else {
        assert_null(table);
    }
    c->done = 1;
}

/* Reads the figures into c->table. */
static void read_figures(ctx_t *c)
{
    c->done = 0;
    c->status = -1;
    assert_int_equal(tf_store_figures_read(c->st, on_figures, c), 0);
    assert_true(run_until(c, &c->done, 3000));
    assert_int_equal(c->status, TF_OK);
    assert_int_equal(c->table.skipped, 0);
}

/* Reads the figures into *out (the caller frees it). */
static void read_figures_into(ctx_t *c, tf_figures_table *out)
{
    read_figures(c);
    *out = c->table;
    memset(&c->table, 0, sizeof(c->table));
}

/* How much field grew from the read before to c->table. */
static int64_t grew(const ctx_t *c, const tf_figures_table *before, const char *field)
{
    return tf_figures_table_get(&c->table, field) - tf_figures_table_get(before, field);
}

/* c->table holds what before holds, field by field. */
static void expect_unchanged(const ctx_t *c, const tf_figures_table *before)
{
    assert_int_equal(c->table.n, before->n);
    for (size_t i = 0; i < before->n; i++)
        if (tf_figures_table_get(&c->table, before->rows[i].field) != before->rows[i].value)
            fail_msg("%s: %lld, was %lld", before->rows[i].field,
                     (long long)tf_figures_table_get(&c->table, before->rows[i].field),
                     (long long)before->rows[i].value);
}

/* A commit adds its deltas to "<prefix>figures"; the next one sums with them. */
static void commit_adds_figures(void **state)
{
    ctx_t *c = *state;
    static tf_figures_table before;
    static tf_store_doc_t empty, after, next;
    static const tf_figure_delta first[] = {
        {"customers", 1}, {"stage:prospect", 1}, {"new:2026-01-06", 1}, {"entered:prospect:2026-01-06", 1}};
    static const tf_figure_delta second[] = {
        {"stage:prospect", -1}, {"stage:growth", 1}, {"left:prospect:2026-01-07", 1}, {"entered:growth:2026-01-07", 1}};
    read_figures_into(c, &before);
    load(c, "fig-a", NULL, 0);
    empty = c->doc;
    after = empty;
    after.customer.stage = TF_STAGE_PROSPECT;
    c->figs = first;
    c->nfigs = 4;
    assert_int_equal(commit(c, "fig-a", &empty, &after, 1, NULL, 0, NULL, 0), TF_OK);
    read_figures(c);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(grew(c, &before, first[i].field), 1);
    /* in the one hash of a standalone server, where the reads find it */
    assert_int_equal(raw("HGET %sfigures customers", prefix), tf_figures_table_get(&c->table, "customers"));
    assert_int_equal(raw("HGET %sfigures entered:prospect:2026-01-06", prefix),
                     tf_figures_table_get(&c->table, "entered:prospect:2026-01-06"));

    load(c, "fig-a", NULL, 0);
    next = c->doc;
    next.customer.stage = TF_STAGE_GROWTH;
    c->figs = second;
    c->nfigs = 4;
    assert_int_equal(commit(c, "fig-a", &c->doc, &next, 1, NULL, 0, NULL, 0), TF_OK);
    read_figures(c);
    assert_int_equal(grew(c, &before, "customers"), 1);
    assert_int_equal(grew(c, &before, "stage:prospect"), 0);
    assert_int_equal(grew(c, &before, "stage:growth"), 1);
    assert_int_equal(grew(c, &before, "left:prospect:2026-01-07"), 1);
    assert_int_equal(grew(c, &before, "entered:growth:2026-01-07"), 1);
    tf_figures_table_free(&before);
}

/* A stale commit (another version expected, or a record already applied) adds
 * nothing: the figures are exactly as applied. */
static void stale_commit_adds_no_figures(void **state)
{
    ctx_t *c = *state;
    static tf_figures_table before;
    static tf_store_doc_t empty, after;
    static const tf_figure_delta figs[] = {{"customers", 1}, {"stage:prospect", 1}, {"exits:stale", 1}};
    const char *ids[] = {"fb-1"};
    load(c, "fig-b", NULL, 0);
    empty = c->doc;
    after = empty;
    after.customer.stage = TF_STAGE_PROSPECT;
    c->figs = figs;
    c->nfigs = 1;
    assert_int_equal(commit(c, "fig-b", &empty, &after, 1, ids, 1, NULL, 0), TF_OK);
    read_figures_into(c, &before);

    /* The writer thinks the customer is new; it is at version 1. */
    c->nfigs = 3;
    assert_int_equal(commit(c, "fig-b", &empty, &after, 1, NULL, 0, NULL, 0), TF_ESTALE);
    read_figures(c);
    expect_unchanged(c, &before);
    assert_int_equal(grew(c, &before, "exits:stale"), 0);

    /* The right version, but the record was applied already. */
    load(c, "fig-b", NULL, 0);
    assert_int_equal(commit(c, "fig-b", &c->doc, &c->doc, 1, ids, 1, NULL, 0), TF_ESTALE);
    read_figures(c);
    expect_unchanged(c, &before);
    tf_figures_table_free(&before);
}

/* A writer fenced off (an older epoch) adds nothing. */
static void fenced_commit_adds_no_figures(void **state)
{
    ctx_t *c = *state;
    static tf_figures_table before;
    static tf_store_doc_t empty, after, later;
    static const tf_figure_delta figs[] = {{"customers", 1}, {"stage:prospect", 1}, {"exits:fenced", 1}};
    load(c, "fig-c", NULL, 0);
    empty = c->doc;
    after = empty;
    after.customer.stage = TF_STAGE_PROSPECT;
    c->figs = figs;
    c->nfigs = 2;
    assert_int_equal(commit(c, "fig-c", &empty, &after, 10, NULL, 0, NULL, 0), TF_OK);
    read_figures_into(c, &before);

    load(c, "fig-c", NULL, 0);
    later = c->doc;
    later.customer.stage = TF_STAGE_GROWTH;
    c->nfigs = 3;
    assert_int_equal(commit(c, "fig-c", &c->doc, &later, 9, NULL, 0, NULL, 0), TF_EFENCED);
    read_figures(c);
    expect_unchanged(c, &before);
    assert_int_equal(grew(c, &before, "exits:fenced"), 0);
    tf_figures_table_free(&before);
}

/* Two customers' commits add to the same figures. */
static void two_customers_figures_sum(void **state)
{
    ctx_t *c = *state;
    static tf_figures_table before;
    static tf_store_doc_t empty, after;
    static const tf_figure_delta d[] = {{"customers", 1}, {"sat:customers", 1}, {"sat:sum_micro", 75000000}};
    static const tf_figure_delta e[] = {{"customers", 1}, {"sat:customers", 1}, {"sat:sum_micro", 90909091},
                                        {"nps:detractors", -1}};
    read_figures_into(c, &before);
    load(c, "fig-d", NULL, 0);
    empty = c->doc;
    after = empty;
    after.customer.stage = TF_STAGE_PROSPECT;
    c->figs = d;
    c->nfigs = 3;
    assert_int_equal(commit(c, "fig-d", &empty, &after, 1, NULL, 0, NULL, 0), TF_OK);
    c->figs = e;
    c->nfigs = 4;
    assert_int_equal(commit(c, "fig-e", &empty, &after, 1, NULL, 0, NULL, 0), TF_OK);
    read_figures(c);
    assert_int_equal(grew(c, &before, "customers"), 2);
    assert_int_equal(grew(c, &before, "sat:customers"), 2);
    assert_int_equal(grew(c, &before, "sat:sum_micro"), 75000000 + 90909091);
    assert_int_equal(grew(c, &before, "nps:detractors"), -1);
    tf_figures_table_free(&before);
}

/* ---- a Redis of our own, to stop and hang ---- */

/* Servers this test started, killed by the group teardown when an assertion
 * leaves a test early. */
static pid_t spawned[8];

static pid_t start_redis(int port)
{
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("redis-server", "redis-server", "--port", portstr, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 8; i++)
        if (!spawned[i]) {
            spawned[i] = pid;
            break;
        }
    return pid;
}

static void stop_redis(pid_t pid)
{
    kill(pid, SIGCONT);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < 8; i++)
        if (spawned[i] == pid)
            spawned[i] = 0;
}

static int stop_spawned(void **state)
{
    (void)state;
    for (int i = 0; i < 8; i++)
        if (spawned[i])
            stop_redis(spawned[i]);
    return 0;
}

static void down_then_up_then_lost(void **state)
{
    (void)state;
    int port = 20000 + (int)(getpid() % 20000);
    char url[64];
    ctx_t c;
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    open_store(&c, url, 500);

    /* Nothing listening: not up, and commands are refused rather than queued. */
    int never = 0;
    run_until(&c, &never, 300);
    assert_false(tf_store_is_up(c.st));
    assert_int_equal(tf_store_load(c.st, "x", NULL, 0, on_loaded, &c), TF_EAGAIN);

    pid_t pid = start_redis(port);
    assert_true(run_until(&c, &c.ups, 8000));
    assert_true(tf_store_is_up(c.st));

    /* Lost while a command is pending: the callback fails with TF_EIO, once. */
    stop_redis(pid);
    c.done = 0;
    c.status = 0;
    if (tf_store_load(c.st, "x", NULL, 0, on_loaded, &c) == TF_OK) {
        assert_true(run_until(&c, &c.done, 3000));
        assert_int_equal(c.status, TF_EIO);
    }
    assert_true(run_until(&c, &c.downs, 3000));
    assert_false(tf_store_is_up(c.st));

    /* Back again: reconnects by itself, scripts reloaded. */
    pid = start_redis(port);
    int ups_before = c.ups;
    int want = ups_before + 1;
    while (c.ups < want && run_until(&c, &never, 100) == 0 && c.ups < want) {
        static int spins;
        if (++spins > 100)
            break;
    }
    assert_int_equal(c.ups, want);
    load(&c, "x", NULL, 0);
    assert_int_equal(c.status, TF_OK);
    assert_true(tf_store_reconnects(c.st) >= 1);
    close_store(&c);
    stop_redis(pid);
}

typedef struct {
    ctx_t *c;
    int calls, status, after_load;
} ack_seen;

static void on_ack(tf_store_t *st, int status, void *opaque)
{
    ack_seen *a = opaque;
    (void)st;
    a->calls++;
    a->status = status;
    a->after_load = a->c->done;
}

static void hung_redis_times_out(void **state)
{
    (void)state;
    int port = 20000 + (int)((getpid() + 7) % 20000);
    char url[64];
    ctx_t c;
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    pid_t pid = start_redis(port);
    open_store(&c, url, 400);
    assert_true(run_until(&c, &c.ups, 8000));

    /* A stopped server accepts nothing and answers nothing: hiredis alone would
     * wait forever. */
    kill(pid, SIGSTOP);
    c.done = 0;
    c.status = 0;
    int64_t t0 = tf_time_mono_ms();
    assert_int_equal(tf_store_load(c.st, "y", NULL, 0, on_loaded, &c), 0);
    /* An outbox ack behind it is answered too, as failed, after the load. */
    const char *ids[] = {"d-9"};
    ack_seen ack = {&c, 0, 0, 0};
    assert_int_equal(tf_store_outbox_ack(c.st, "y", ids, 1, on_ack, &ack), 0);
    assert_true(run_until(&c, &ack.calls, 3000));
    int64_t took = tf_time_mono_ms() - t0;
    assert_int_equal(c.status, TF_EIO);
    assert_int_equal(ack.calls, 1);
    assert_int_equal(ack.status, TF_EIO);
    assert_true(ack.after_load);
    assert_true(took < 1500); /* the timeout fired, not the sleep's end */
    assert_true(c.downs >= 1);

    /* Once the server runs again the store is back on its own. */
    kill(pid, SIGCONT);
    int want = c.ups + 1;
    int64_t end = tf_time_mono_ms() + 8000;
    int never = 0;
    while (c.ups < want && tf_time_mono_ms() < end)
        run_until(&c, &never, 100);
    assert_int_equal(c.ups, want);
    close_store(&c);
    stop_redis(pid);
}

int main(void)
{
    redis_url = getenv("TOUCHFLOW_REDIS_URL");
    if (!redis_url || !*redis_url) {
        fprintf(stderr, "TOUCHFLOW_REDIS_URL not set: skipping (start deploy/dev/services.sh up)\n");
        return 77;
    }
    tf_log_set_level(TF_LOG_ERROR);
    snprintf(prefix, sizeof(prefix), "it%d:%lld:", (int)getpid(), (long long)tf_time_now_ms());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(commit_then_load_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(older_epoch_is_fenced_and_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(epochs_increase, setup, teardown),
        cmocka_unit_test_setup_teardown(new_state_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(timer_index_returns_due_customers, setup, teardown),
        cmocka_unit_test_setup_teardown(value_cutoffs, setup, teardown),
        cmocka_unit_test_setup_teardown(referral_link_is_set_once, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_ids_leave_the_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(many_ids_leave_the_state_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(commit_adds_figures, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_commit_adds_no_figures, setup, teardown),
        cmocka_unit_test_setup_teardown(fenced_commit_adds_no_figures, setup, teardown),
        cmocka_unit_test_setup_teardown(two_customers_figures_sum, setup, teardown),
        cmocka_unit_test(down_then_up_then_lost),
        cmocka_unit_test(hung_redis_times_out),
    };
    return cmocka_run_group_tests(tests, NULL, stop_spawned);
}
