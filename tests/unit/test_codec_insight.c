/* Unit tests for the codec of what the rules learn of a customer (pkg/store/codec.c:
 * favourite items, channel scores, the purchase rhythm and its done markers, the
 * campaign and the exit reason): exact round trips, names with the list's own
 * separators, a hash written before these fields existed, malformed values, and
 * the done markers holding across a store round trip (a replay or a batch split
 * never fires twice). */
#include "lifecycle_harness.h"

#include "store/store.h"

/* HGETALL's pairs from an encoding, optionally with one field's value replaced. */
typedef struct {
    size_t n;
    const char *f[TF_STORE_MAX_FIELDS + 4];
    const char *v[TF_STORE_MAX_FIELDS + 4];
    size_t fl[TF_STORE_MAX_FIELDS + 4], vl[TF_STORE_MAX_FIELDS + 4];
} pairs;

static void add(pairs *p, const char *field, const char *value)
{
    assert_true(p->n < TF_STORE_MAX_FIELDS + 4);
    p->f[p->n] = field;
    p->v[p->n] = value;
    p->fl[p->n] = strlen(field);
    p->vl[p->n] = strlen(value);
    p->n++;
}

static void from_fields(pairs *p, const tf_store_fields *fs)
{
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < fs->n; i++)
        add(p, fs->field[i], fs->value[i]);
}

static const char *value_of(const tf_store_fields *fs, const char *field)
{
    for (size_t i = 0; i < fs->n; i++)
        if (strcmp(fs->field[i], field) == 0)
            return fs->value[i];
    return NULL;
}

static void decode_ok(tf_store_doc_t *doc, const pairs *p)
{
    assert_int_equal(tf_store_decode(doc, p->f, p->fl, p->v, p->vl, p->n), TF_OK);
}

/* Every insight member set, names holding ',', '\' and '*'. */
static void insight_state(tf_customer_t *c)
{
    c->stage = TF_STAGE_GROWTH;
    c->nfavourites = 3;
    snprintf(c->favourites[0].sku, sizeof c->favourites[0].sku, "E");
    c->favourites[0].qty = 6;
    snprintf(c->favourites[1].sku, sizeof c->favourites[1].sku, "a,b\\c*d");
    c->favourites[1].qty = 2;
    snprintf(c->favourites[2].sku, sizeof c->favourites[2].sku, "\xe8\x8c\xb6,");
    c->favourites[2].qty = INT64_MAX;
    c->nchannel_scores = 2;
    snprintf(c->channel_scores[0].name, sizeof c->channel_scores[0].name, "app");
    c->channel_scores[0].score = 2.5;
    snprintf(c->channel_scores[1].name, sizeof c->channel_scores[1].name, "we,chat\\");
    c->channel_scores[1].score = 1.0 / 3.0;
    c->channel_scores_at_ms = T0 + 5;
    c->intervals = 3;
    c->interval_mean_days = 100.0 / 3.0;
    c->interval_m2 = 66.666666666666671;
    c->next_purchase_ms = T0 + 133 * DAY;
    c->next_purchase_confidence = 0.62;
    c->replenish_done_ms = T0 + 90 * DAY;
    c->overdue_done_ms = T0 + 90 * DAY;
    snprintf(c->campaign, sizeof c->campaign, "spring|sale,2026");
    c->campaign_ms = T0 - DAY;
    snprintf(c->exit_reason, sizeof c->exit_reason, "moved abroad");
    c->exit_reason_ms = T0 - 2 * DAY;
    c->due[TF_TIMER_REPLENISHMENT] = T0 + 130 * DAY;
    c->due[TF_TIMER_OVERDUE] = T0 + 140 * DAY;
}

static void test_insight_round_trip(void **state)
{
    (void)state;
    static tf_store_doc_t doc, back;
    static tf_store_fields fs;
    static pairs p;
    memset(&doc, 0, sizeof doc);
    doc.exists = 1;
    insight_state(&doc.customer);
    assert_int_equal(tf_store_encode(&doc, &fs), TF_OK);
    assert_string_equal(value_of(&fs, "fav"), "6*E,2*a\\,b\\\\c*d,9223372036854775807*\xe8\x8c\xb6\\,");
    assert_string_equal(value_of(&fs, "pref"), "2.5*app,0.33333333333333331*we\\,chat\\\\");
    assert_string_equal(value_of(&fs, "preferred_channel"), "app");
    assert_string_equal(value_of(&fs, "pref_at"), "1767701700005");
    assert_string_equal(value_of(&fs, "ivl_n"), "3");
    assert_string_equal(value_of(&fs, "ivl_mean"), "33.333333333333336");
    assert_string_equal(value_of(&fs, "next_conf"), "0.62");
    assert_string_equal(value_of(&fs, "campaign"), "spring|sale,2026");
    assert_string_equal(value_of(&fs, "exit_reason"), "moved abroad");
    assert_string_equal(value_of(&fs, "t:replenishment"), "1778933700000");
    assert_string_equal(value_of(&fs, "t:overdue"), "1779797700000");
    from_fields(&p, &fs);
    memset(&back, 0x5a, sizeof back);
    decode_ok(&back, &p);
    assert_memory_equal(&back.customer, &doc.customer, sizeof doc.customer);
    /* In any order of HGETALL. */
    static pairs rev;
    memset(&rev, 0, sizeof rev);
    for (size_t i = fs.n; i-- > 0;)
        add(&rev, fs.field[i], fs.value[i]);
    decode_ok(&back, &rev);
    assert_memory_equal(&back.customer, &doc.customer, sizeof doc.customer);
}

/* A customer that learned nothing writes none of the fields (sparse); a hash
 * written before they existed reads as that customer. */
static void test_insight_defaults(void **state)
{
    (void)state;
    static const char *const names[] = {"fav", "pref", "pref_at", "preferred_channel", "ivl_n", "ivl_mean", "ivl_m2",
                                        "next_purchase", "next_conf", "replenish_done", "overdue_done", "campaign",
                                        "campaign_at", "exit_reason", "exit_at", "t:replenishment", "t:overdue"};
    static tf_store_doc_t doc, back;
    static tf_store_fields fs;
    static pairs p;
    memset(&doc, 0, sizeof doc);
    doc.exists = 1;
    doc.customer.stage = TF_STAGE_MATURE;
    doc.customer.purchases = 4;
    assert_int_equal(tf_store_encode(&doc, &fs), TF_OK);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_null(value_of(&fs, names[i]));
    from_fields(&p, &fs);
    decode_ok(&back, &p);
    assert_memory_equal(&back.customer, &doc.customer, sizeof doc.customer);
    /* Every one is in the full encoding (customer get shows them). */
    assert_int_equal(tf_store_encode_full(&doc, &fs), TF_OK);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_non_null(value_of(&fs, names[i]));
    /* Blanked by a commit ("", the default), they read as never set. */
    memset(&p, 0, sizeof p);
    add(&p, "stage", "growth");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        add(&p, names[i], "");
    decode_ok(&back, &p);
    assert_int_equal(back.customer.nfavourites, 0);
    assert_int_equal(back.customer.nchannel_scores, 0);
    assert_true(back.customer.next_purchase_confidence == 0);
    assert_string_equal(back.customer.campaign, "");
}

/* Malformed items are skipped, the rest kept; never more than the table holds;
 * a text too long for its member reads as "". */
static void test_insight_malformed(void **state)
{
    (void)state;
    static tf_store_doc_t back;
    pairs p;
    memset(&p, 0, sizeof p);
    add(&p, "stage", "growth");
    add(&p, "fav", "x*abc,5*ok,7*,*noqty,3*a\\,b,2*tail\\");
    add(&p, "pref", "abc*web,1.5*app,2*,1e400x*bad,0.25*sms");
    add(&p, "preferred_channel", "ignored");
    char longtext[TF_EVENT_SHORT_MAX + 2];
    memset(longtext, 'c', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    add(&p, "campaign", longtext);
    decode_ok(&back, &p);
    tf_customer_t *c = &back.customer;
    assert_int_equal(c->nfavourites, 3);
    assert_string_equal(c->favourites[0].sku, "ok");
    assert_string_equal(c->favourites[1].sku, "a,b");
    assert_string_equal(c->favourites[2].sku, "tail\\"); /* a trailing '\' escapes nothing: kept */
    assert_int_equal(c->nchannel_scores, 2);
    assert_string_equal(c->channel_scores[0].name, "app");
    assert_true(c->channel_scores[1].score == 0.25);
    assert_string_equal(c->campaign, "");

    static char many[2048];
    size_t n = 0;
    for (int i = 0; i < TF_FAVOURITES + 3; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%s%d*s%d", i ? "," : "", 100 - i, i);
    memset(&p, 0, sizeof p);
    add(&p, "stage", "growth");
    add(&p, "fav", many);
    add(&p, "pref", many);
    decode_ok(&back, &p);
    assert_int_equal(c->nfavourites, TF_FAVOURITES);
    assert_int_equal(c->nchannel_scores, TF_CHANNEL_SCORES);
    assert_string_equal(c->favourites[TF_FAVOURITES - 1].sku, "s7");
}

/* A customer stored between the reminder and the overdue signal (a batch split, a
 * restart, a replay reading the state back) fires the reminder never again and
 * the signal once. */
static void test_done_markers_survive_the_store(void **state)
{
    (void)state;
    harness *h = h_new();
    h_rhythm(h);
    for (int k = 0; k < 3; k++)
        buy(h, T0 + k * 30 * DAY, 100);
    run(h, T0 + 88 * DAY);
    assert_int_equal(count(h, TF_DERIVED_CARE_REMINDER, "replenishment"), 1);

    static tf_store_doc_t doc, back;
    static tf_store_fields fs;
    static pairs p;
    memset(&doc, 0, sizeof doc);
    doc.exists = 1;
    doc.customer = h->c;
    assert_int_equal(tf_store_encode(&doc, &fs), TF_OK);
    from_fields(&p, &fs);
    decode_ok(&back, &p);
    /* (The state as a whole is not compared: bytes past a string's NUL that the
     * rules left do not travel.) */
    const tf_customer_t *b = &back.customer;
    assert_int_equal(b->intervals, h->c.intervals);
    assert_true(b->interval_mean_days == h->c.interval_mean_days && b->interval_m2 == h->c.interval_m2);
    assert_true(b->next_purchase_confidence == h->c.next_purchase_confidence);
    assert_int_equal(b->next_purchase_ms, h->c.next_purchase_ms);
    assert_int_equal(b->replenish_done_ms, T0 + 90 * DAY);
    assert_int_equal(b->overdue_done_ms, 0);
    h->c = back.customer;
    tf_lifecycle_schedule(&h->r, &h->c);
    assert_int_equal(h->c.due[TF_TIMER_REPLENISHMENT], 0);
    assert_int_equal(h->c.due[TF_TIMER_OVERDUE], T0 + 97 * DAY);
    run(h, T0 + 88 * DAY); /* the same firing again, as after a crash */
    run(h, T0 + 120 * DAY);
    assert_int_equal(count(h, TF_DERIVED_CARE_REMINDER, "replenishment"), 1);
    assert_int_equal(count(h, TF_DERIVED_PURCHASE_OVERDUE, NULL), 1);
    teardown_h(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insight_round_trip),
        cmocka_unit_test(test_insight_defaults),
        cmocka_unit_test(test_insight_malformed),
        cmocka_unit_test_teardown(test_done_markers_survive_the_store, free_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
