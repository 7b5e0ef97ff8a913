/* Unit tests for the owner-local customer cache (pkg/store/cache.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store/cache.h"

#define T0 INT64_C(1767225600000)

static void some_doc(tf_store_doc_t *doc, int64_t purchases)
{
    memset(doc, 0, sizeof(*doc));
    doc->exists = 1;
    tf_customer_t *c = &doc->customer;
    c->stage = TF_STAGE_GROWTH;
    c->stage_since_ms = T0;
    c->first_seen_ms = T0 - TF_MS_PER_DAY;
    c->last_seen_ms = T0;
    c->purchases = purchases;
    c->spend = purchases * 12990;
    c->counts[TF_KIND_PURCHASE] = purchases;
    memcpy(c->currency, "CNY", 4);
    snprintf(c->referred_by, sizeof(c->referred_by), "friend-%lld", (long long)purchases);
    c->due[TF_TIMER_FESTIVAL] = T0 + 30 * TF_MS_PER_DAY;
    tf_store_doc_set_watermark(doc, "touchpoints/3", 1000 + purchases);
}

static int put(tf_cache_t *c, const char *customer, tf_store_doc_t *doc, int64_t version)
{
    doc->version = version;
    doc->epoch = version + 100;
    return tf_cache_put(c, customer, doc);
}

/* What the store would read back for doc: the cache must give the same. */
static void as_stored(const tf_store_doc_t *doc, tf_store_doc_t *out)
{
    static tf_store_fields enc;
    const char *f[TF_STORE_MAX_FIELDS];
    size_t fl[TF_STORE_MAX_FIELDS];
    assert_int_equal(tf_store_encode(doc, &enc), TF_OK);
    for (size_t i = 0; i < enc.n; i++) {
        f[i] = enc.field[i];
        fl[i] = strlen(enc.field[i]);
    }
    assert_int_equal(tf_store_decode(out, f, fl, enc.value, enc.vlen, enc.n), TF_OK);
}

static void miss_put_hit_round_trips(void **state)
{
    (void)state;
    tf_cache_t *c = tf_cache_new(1 << 20);
    static tf_store_doc_t doc, want, got;
    assert_int_equal(tf_cache_get(c, "alice", &got), 0);
    some_doc(&doc, 3);
    assert_int_equal(put(c, "alice", &doc, 7), TF_OK);
    assert_int_equal(tf_cache_get(c, "alice", &got), 1);
    as_stored(&doc, &want);
    assert_true(got.exists);
    assert_int_equal(got.version, 7);
    assert_int_equal(got.epoch, 107);
    assert_memory_equal(&got.customer, &want.customer, sizeof(got.customer));
    assert_int_equal(tf_store_doc_watermark(&got, "touchpoints/3"), 1003);
    assert_string_equal(got.customer.referred_by, "friend-3");
    tf_cache_stats st = tf_cache_get_stats(c);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.entries, 1);
    tf_cache_free(c);
}

static void put_replaces_and_drop_forgets(void **state)
{
    (void)state;
    tf_cache_t *c = tf_cache_new(1 << 20);
    static tf_store_doc_t doc, got;
    some_doc(&doc, 1);
    assert_int_equal(put(c, "bob", &doc, 1), TF_OK);
    some_doc(&doc, 2);
    assert_int_equal(put(c, "bob", &doc, 2), TF_OK);
    assert_int_equal(tf_cache_get_stats(c).entries, 1);
    assert_int_equal(tf_cache_get(c, "bob", &got), 1);
    assert_int_equal(got.version, 2);
    assert_int_equal(got.customer.purchases, 2);
    tf_cache_drop(c, "bob");
    tf_cache_drop(c, "nobody"); /* no entry: nothing happens */
    assert_int_equal(tf_cache_get(c, "bob", &got), 0);
    assert_int_equal(tf_cache_get_stats(c).drops, 1);
    tf_cache_free(c);
}

/* A customer's entry is rewritten in place or reallocated as its state grows and
 * shrinks; what comes back is always the last one put. */
static void an_entry_grows_and_shrinks(void **state)
{
    (void)state;
    tf_cache_t *c = tf_cache_new(1 << 20);
    static tf_store_doc_t doc, want, got;
    int64_t sizes[] = {1, 1000000000, 2, 5, 123456789012, 3};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        some_doc(&doc, sizes[i]);
        if (i % 2)
            snprintf(doc.customer.tags[doc.customer.ntags++], sizeof(doc.customer.tags[0]), "tag-%zu", i);
        assert_int_equal(put(c, "erin", &doc, (int64_t)i + 1), TF_OK);
        assert_int_equal(tf_cache_get(c, "erin", &got), 1);
        as_stored(&doc, &want);
        assert_memory_equal(&got.customer, &want.customer, sizeof(got.customer));
        assert_int_equal(got.version, (int64_t)i + 1);
        tf_cache_stats st = tf_cache_get_stats(c);
        assert_int_equal(st.entries, 1);
    }
    tf_cache_free(c);
}

/* Ids that differ only past a NUL-free prefix, or by one byte, are apart. */
static void similar_ids_are_apart(void **state)
{
    (void)state;
    tf_cache_t *c = tf_cache_new(1 << 20);
    static tf_store_doc_t doc, got;
    some_doc(&doc, 1);
    assert_int_equal(put(c, "cust-1", &doc, 1), TF_OK);
    some_doc(&doc, 2);
    assert_int_equal(put(c, "cust-10", &doc, 2), TF_OK);
    assert_int_equal(tf_cache_get(c, "cust-", &got), 0);
    assert_int_equal(tf_cache_get(c, "cust-1", &got), 1);
    assert_int_equal(got.customer.purchases, 1);
    assert_int_equal(tf_cache_get(c, "cust-10", &got), 1);
    assert_int_equal(got.customer.purchases, 2);
    tf_cache_free(c);
}

/* An encoding that cannot be kept (a value past 64 KiB) leaves the customer with no
 * entry: the one it had no longer matches what the commit writes. */
static void a_refused_put_forgets_the_old_entry(void **state)
{
    (void)state;
    tf_cache_t *c = tf_cache_new(1 << 20);
    static tf_store_doc_t doc, got;
    static tf_store_fields enc;
    static char big[70000];
    some_doc(&doc, 1);
    assert_int_equal(put(c, "frank", &doc, 1), TF_OK);
    memset(big, 'x', sizeof(big) - 1);
    enc.n = 1;
    enc.field[0] = "tags";
    enc.value[0] = big;
    enc.vlen[0] = sizeof(big) - 1;
    assert_int_equal(tf_cache_put_fields(c, "frank", &enc, 2, 2), TF_EINVAL);
    assert_int_equal(tf_cache_get(c, "frank", &got), 0);
    assert_int_equal(tf_cache_get_stats(c).entries, 0);
    tf_cache_free(c);
}

static void a_customer_that_does_not_exist_is_not_kept(void **state)
{
    (void)state;
    tf_cache_t *c = tf_cache_new(1 << 20);
    static tf_store_doc_t doc, got;
    some_doc(&doc, 1);
    assert_int_equal(put(c, "carol", &doc, 1), TF_OK);
    memset(&doc, 0, sizeof(doc));
    assert_int_equal(put(c, "carol", &doc, 2), TF_OK);
    assert_int_equal(tf_cache_get(c, "carol", &got), 0);
    tf_cache_free(c);
}

static void zero_bytes_keeps_nothing(void **state)
{
    (void)state;
    tf_cache_t *c = tf_cache_new(0);
    static tf_store_doc_t doc, got;
    some_doc(&doc, 1);
    assert_int_equal(put(c, "dave", &doc, 1), TF_OK);
    assert_int_equal(tf_cache_get(c, "dave", &got), 0);
    assert_int_equal(tf_cache_get_stats(c).entries, 0);
    tf_cache_free(c);
}

/* The least recently used goes first, and a get counts as a use. */
static void the_bound_evicts_the_least_recently_used(void **state)
{
    (void)state;
    static tf_store_doc_t doc, got;
    some_doc(&doc, 1);
    /* The size of one entry, measured. */
    tf_cache_t *probe = tf_cache_new(1 << 20);
    size_t empty = tf_cache_get_stats(probe).bytes;
    assert_int_equal(put(probe, "a", &doc, 1), TF_OK);
    size_t one = tf_cache_get_stats(probe).bytes - empty;
    tf_cache_free(probe);

    tf_cache_t *c = tf_cache_new(empty + 3 * one + one / 2);
    assert_int_equal(put(c, "a", &doc, 1), TF_OK);
    assert_int_equal(put(c, "b", &doc, 1), TF_OK);
    assert_int_equal(put(c, "c", &doc, 1), TF_OK);
    assert_int_equal(tf_cache_get(c, "a", &got), 1);
    assert_int_equal(put(c, "d", &doc, 1), TF_OK);
    assert_int_equal(tf_cache_get(c, "b", &got), 0);
    assert_int_equal(tf_cache_get(c, "a", &got), 1);
    assert_int_equal(tf_cache_get(c, "c", &got), 1);
    assert_int_equal(tf_cache_get(c, "d", &got), 1);
    tf_cache_stats st = tf_cache_get_stats(c);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.entries, 3);
    assert_true(st.bytes <= st.max_bytes);
    tf_cache_free(c);
}

/* Many customers: the table grows, every entry stays reachable while they fit,
 * and the bytes never pass the bound once they do not. */
static void many_customers_stay_within_the_bound(void **state)
{
    (void)state;
    static tf_store_doc_t doc, got;
    char id[32];
    tf_cache_t *c = tf_cache_new(64 << 20);
    for (int i = 0; i < 20000; i++) {
        some_doc(&doc, i + 1);
        snprintf(id, sizeof(id), "cust-%d", i);
        assert_int_equal(put(c, id, &doc, i + 1), TF_OK);
    }
    for (int i = 0; i < 20000; i += 997) {
        snprintf(id, sizeof(id), "cust-%d", i);
        assert_int_equal(tf_cache_get(c, id, &got), 1);
        assert_int_equal(got.customer.purchases, i + 1);
        assert_int_equal(got.version, i + 1);
    }
    assert_int_equal(tf_cache_get_stats(c).evictions, 0);
    tf_cache_free(c);

    c = tf_cache_new(1 << 20);
    for (int i = 0; i < 20000; i++) {
        some_doc(&doc, i + 1);
        snprintf(id, sizeof(id), "cust-%d", i);
        assert_int_equal(put(c, id, &doc, 1), TF_OK);
        assert_true(tf_cache_get_stats(c).bytes <= (1 << 20));
    }
    tf_cache_stats st = tf_cache_get_stats(c);
    assert_true(st.entries > 100 && st.entries < 20000);
    assert_int_equal(st.evictions, 20000 - st.entries);
    snprintf(id, sizeof(id), "cust-%d", 19999);
    assert_int_equal(tf_cache_get(c, id, &got), 1);
    assert_int_equal(tf_cache_get(c, "cust-0", &got), 0);
    tf_cache_clear(c);
    assert_int_equal(tf_cache_get_stats(c).entries, 0);
    assert_int_equal(tf_cache_get(c, id, &got), 0);
    tf_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(miss_put_hit_round_trips),
        cmocka_unit_test(put_replaces_and_drop_forgets),
        cmocka_unit_test(an_entry_grows_and_shrinks),
        cmocka_unit_test(similar_ids_are_apart),
        cmocka_unit_test(a_refused_put_forgets_the_old_entry),
        cmocka_unit_test(a_customer_that_does_not_exist_is_not_kept),
        cmocka_unit_test(zero_bytes_keeps_nothing),
        cmocka_unit_test(the_bound_evicts_the_least_recently_used),
        cmocka_unit_test(many_customers_stay_within_the_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
