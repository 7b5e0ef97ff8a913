/* Unit tests for the customer document codec (pkg/store/codec.c: Redis hash fields
 * <-> tf_store_doc_t, watermarks) and the redis:// URL parser
 * (tf_config_redis_url_parse, which replaced tf_redis_url_parse in pkg/store). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "store/store.h"

#define T0 INT64_C(1767701700000)

/* A field list as HGETALL returns it, built by hand. */
typedef struct {
    size_t n;
    const char *f[128];
    const char *v[128];
    size_t fl[128], vl[128];
} pairs;

static void add(pairs *p, const char *field, const char *value)
{
    assert_true(p->n < 128);
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
        add(p, fs->field[i], fs->value_buf[i]);
}

static int decode(tf_store_doc_t *doc, const pairs *p)
{
    return tf_store_decode(doc, p->f, p->fl, p->v, p->vl, p->n);
}

/* The encoded value of field, or NULL. */
static const char *value_of(const tf_store_fields *fs, const char *field)
{
    for (size_t i = 0; i < fs->n; i++)
        if (strcmp(fs->field[i], field) == 0)
            return fs->value_buf[i];
    return NULL;
}

static void full_doc(tf_store_doc_t *doc)
{
    memset(doc, 0, sizeof *doc);
    doc->exists = 1;
    tf_customer_t *c = &doc->customer;
    c->stage = TF_STAGE_MATURE;
    c->stage_since_ms = T0 + 1;
    for (int k = 0; k < TF_KIND__COUNT; k++)
        c->counts[k] = 100 + k;
    c->first_seen_ms = T0 - 400 * TF_MS_PER_DAY;
    c->last_seen_ms = T0 + 3;
    c->purchases = 17;
    c->first_purchase_ms = T0 - 300 * TF_MS_PER_DAY;
    c->last_purchase_ms = T0 - 2 * TF_MS_PER_DAY;
    c->spend = INT64_C(123456789012);
    c->margin = -98765;              /* negative margin survives */
    c->refunded = 4321;
    c->foreign_purchases = 2;
    memcpy(c->currency, "EUR", 4);
    c->open_complaints = 1;
    c->complaints = 3;
    c->surveys_sat = 4;
    c->sat_expectation_sum = 0.1 + 0.2;  /* 0.30000000000000004: exact or nothing */
    c->sat_perception_sum = 7.0 / 3.0;
    c->nps_count = 5;
    c->nps_sum = 37;
    c->churned_count = 6;
    tf_store_doc_set_watermark(doc, "touchpoints/0", 10);
    tf_store_doc_set_watermark(doc, "touchpoints/7", INT64_C(12345678901));
    tf_store_doc_set_watermark(doc, "eu.touchpoints-v2/12", 0);
}

static void assert_customer_equal(const tf_customer_t *a, const tf_customer_t *b)
{
    assert_int_equal(a->stage, b->stage);
#define EQ(m) assert_true(a->m == b->m)
    EQ(stage_since_ms);
    EQ(first_seen_ms);
    EQ(last_seen_ms);
    EQ(purchases);
    EQ(first_purchase_ms);
    EQ(last_purchase_ms);
    EQ(spend);
    EQ(margin);
    EQ(refunded);
    EQ(foreign_purchases);
    EQ(open_complaints);
    EQ(complaints);
    EQ(surveys_sat);
    EQ(sat_expectation_sum); /* bit-exact doubles */
    EQ(sat_perception_sum);
    EQ(nps_count);
    EQ(nps_sum);
    EQ(churned_count);
#undef EQ
    for (int k = 0; k < TF_KIND__COUNT; k++)
        assert_int_equal(a->counts[k], b->counts[k]);
    assert_string_equal(a->currency, b->currency);
}

static void test_round_trip(void **state)
{
    (void)state;
    static tf_store_doc_t doc, back;
    static tf_store_fields fs;
    static pairs p;
    full_doc(&doc);
    tf_store_encode(&doc, &fs);
    from_fields(&p, &fs);

    /* Field names are unique. */
    for (size_t i = 0; i < fs.n; i++)
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(fs.field[i], fs.field[j]);
    assert_string_equal(value_of(&fs, "stage"), "mature");
    assert_string_equal(value_of(&fs, "margin"), "-98765");
    assert_string_equal(value_of(&fs, "o:touchpoints/7"), "12345678901");
    assert_string_equal(value_of(&fs, "n:unsubscribe"), "114");

    memset(&back, 0x5a, sizeof back);
    assert_int_equal(decode(&back, &p), TF_OK);
    assert_int_equal(back.exists, 1);
    assert_customer_equal(&back.customer, &doc.customer);
    assert_int_equal(back.nwatermarks, 3);
    assert_int_equal(tf_store_doc_watermark(&back, "touchpoints/0"), 10);
    assert_int_equal(tf_store_doc_watermark(&back, "touchpoints/7"), INT64_C(12345678901));
    assert_int_equal(tf_store_doc_watermark(&back, "eu.touchpoints-v2/12"), 0);
    assert_int_equal(tf_store_doc_watermark(&back, "touchpoints/1"), -1);

    /* Encoding the decoded document gives the same fields again. */
    static tf_store_fields fs2;
    tf_store_encode(&back, &fs2);
    assert_int_equal(fs2.n, fs.n);
    for (size_t i = 0; i < fs.n; i++) {
        assert_string_equal(fs2.field[i], fs.field[i]);
        assert_string_equal(fs2.value_buf[i], fs.value_buf[i]);
    }
}

static void test_history_round_trip(void **state)
{
    (void)state;
    tf_store_doc_t doc, back;
    tf_store_fields fs;
    pairs p;
    memset(&doc, 0, sizeof doc);
    doc.exists = 1;
    doc.customer.stage = TF_STAGE_GROWTH;
    doc.customer.nhistory = 2;
    doc.customer.history[0].at_ms = 1776657600000;
    doc.customer.history[0].from = TF_STAGE_CHURNED;
    doc.customer.history[0].to = TF_STAGE_GROWTH;
    snprintf(doc.customer.history[0].rule, sizeof doc.customer.history[0].rule, "winback_purchase");
    doc.customer.history[1].at_ms = 1767701700000;
    doc.customer.history[1].from = TF_STAGE_PROSPECT;
    doc.customer.history[1].to = TF_STAGE_GROWTH;
    snprintf(doc.customer.history[1].rule, sizeof doc.customer.history[1].rule, "first_purchase");
    tf_store_encode(&doc, &fs);
    assert_string_equal(value_of(&fs, "h:0"), "1776657600000|churned|growth|winback_purchase");
    from_fields(&p, &fs);
    add(&p, "h:5", "garbage");
    assert_int_equal(decode(&back, &p), TF_OK);
    assert_int_equal(back.customer.nhistory, 2);
    assert_int_equal(back.customer.history[1].at_ms, 1767701700000);
    assert_int_equal(back.customer.history[1].from, TF_STAGE_PROSPECT);
    assert_string_equal(back.customer.history[1].rule, "first_purchase");
}

static void test_derived_fields_for_readers(void **state)
{
    (void)state;
    static tf_store_doc_t doc;
    static tf_store_fields fs;
    memset(&doc, 0, sizeof doc);
    doc.customer.stage = TF_STAGE_GROWTH;
    doc.customer.surveys_sat = 2;
    doc.customer.sat_expectation_sum = 18;
    doc.customer.sat_perception_sum = 14;
    doc.customer.purchases = 3;
    doc.customer.first_purchase_ms = T0;
    doc.customer.last_purchase_ms = T0 + 6 * TF_MS_PER_DAY;
    doc.customer.nps_count = 2;
    doc.customer.nps_sum = 15;
    tf_store_encode(&doc, &fs);
    assert_string_equal(value_of(&fs, "satisfaction"), "77.78");
    assert_string_equal(value_of(&fs, "mean_interval_ms"), "259200000");
    assert_string_equal(value_of(&fs, "nps"), "7.50");
    assert_null(value_of(&fs, "v"));  /* written by the commit script, not here */
    assert_null(value_of(&fs, "ep"));

    /* Derived fields are read-only views: decoding them changes nothing. */
    static pairs p;
    static tf_store_doc_t back;
    memset(&p, 0, sizeof p);
    add(&p, "satisfaction", "12.00");
    add(&p, "mean_interval_ms", "5");
    add(&p, "nps", "1.00");
    assert_int_equal(decode(&back, &p), TF_OK);
    assert_true(back.customer.sat_expectation_sum == 0);
    assert_int_equal(back.customer.purchases, 0);
    assert_int_equal(back.customer.nps_count, 0);
}

static void test_version_and_epoch(void **state)
{
    (void)state;
    static pairs p;
    static tf_store_doc_t doc;
    memset(&p, 0, sizeof p);
    add(&p, "v", "42");
    add(&p, "ep", "7");
    add(&p, "stage", "growth");
    assert_int_equal(decode(&doc, &p), TF_OK);
    assert_int_equal(doc.version, 42);
    assert_int_equal(doc.epoch, 7);
    assert_int_equal(doc.customer.stage, TF_STAGE_GROWTH);
}

static void test_empty_hash(void **state)
{
    (void)state;
    static tf_store_doc_t doc;
    memset(&doc, 0x5a, sizeof doc);
    assert_int_equal(tf_store_decode(&doc, NULL, NULL, NULL, NULL, 0), TF_OK);
    assert_int_equal(doc.exists, 0);
    assert_int_equal(doc.customer.stage, TF_STAGE_NONE);
    assert_int_equal(doc.customer.purchases, 0);
    assert_int_equal(doc.nwatermarks, 0);
}

static void test_unknown_fields_ignored(void **state)
{
    (void)state;
    static pairs p;
    static tf_store_doc_t doc;
    memset(&p, 0, sizeof p);
    add(&p, "loyalty_points", "900");     /* a field from a newer version */
    add(&p, "n:teleport", "3");           /* a kind this version does not know */
    add(&p, "purchases", "3");
    add(&p, "x:y", "z");
    add(&p, "n:call", "4");
    add(&p, "currency", "JPY");
    add(&p, "sat_a", "8.5");
    assert_int_equal(decode(&doc, &p), TF_OK);
    assert_int_equal(doc.exists, 1);
    assert_int_equal(doc.customer.purchases, 3);
    assert_int_equal(doc.customer.counts[TF_KIND_CALL], 4);
    assert_string_equal(doc.customer.currency, "JPY");
    assert_true(doc.customer.sat_expectation_sum == 8.5);
    for (int k = 0; k < TF_KIND__COUNT; k++)
        if (k != TF_KIND_CALL)
            assert_int_equal(doc.customer.counts[k], 0);
    assert_int_equal(doc.nwatermarks, 0);
}

static void test_bad_stage(void **state)
{
    (void)state;
    static pairs p;
    static tf_store_doc_t doc;
    memset(&p, 0, sizeof p);
    add(&p, "purchases", "1");
    add(&p, "stage", "adult");
    assert_int_equal(decode(&doc, &p), TF_EINVAL);

    memset(&p, 0, sizeof p);
    add(&p, "stage", "Growth"); /* names are exact */
    assert_int_equal(decode(&doc, &p), TF_EINVAL);

    memset(&p, 0, sizeof p);
    add(&p, "stage", "");
    assert_int_equal(decode(&doc, &p), TF_EINVAL);
}

/* A stage name too long for any stage is corrupt data, not a new customer. */
static void test_bad_long_stage(void **state)
{
    (void)state;
    static pairs p;
    static tf_store_doc_t doc;
    memset(&p, 0, sizeof p);
    add(&p, "purchases", "9");
    add(&p, "stage", "mature-and-then-some");
    assert_int_equal(decode(&doc, &p), TF_EINVAL);
}

static void test_watermark_keeps_highest(void **state)
{
    (void)state;
    static tf_store_doc_t doc;
    memset(&doc, 0, sizeof doc);
    assert_int_equal(tf_store_doc_watermark(&doc, "t/0"), -1);
    tf_store_doc_set_watermark(&doc, "t/0", 10);
    assert_int_equal(tf_store_doc_watermark(&doc, "t/0"), 10);
    tf_store_doc_set_watermark(&doc, "t/0", 5); /* a replayed, older record */
    assert_int_equal(tf_store_doc_watermark(&doc, "t/0"), 10);
    tf_store_doc_set_watermark(&doc, "t/0", 10);
    assert_int_equal(tf_store_doc_watermark(&doc, "t/0"), 10);
    tf_store_doc_set_watermark(&doc, "t/0", 20);
    assert_int_equal(tf_store_doc_watermark(&doc, "t/0"), 20);
    assert_int_equal(doc.nwatermarks, 1);
    /* tp names are compared whole. */
    tf_store_doc_set_watermark(&doc, "t/01", 3);
    assert_int_equal(doc.nwatermarks, 2);
    assert_int_equal(tf_store_doc_watermark(&doc, "t/0"), 20);
    assert_int_equal(tf_store_doc_watermark(&doc, "t/01"), 3);
}

static void test_watermark_evicts_oldest(void **state)
{
    (void)state;
    static tf_store_doc_t doc;
    memset(&doc, 0, sizeof doc);
    assert_int_equal(TF_STORE_MAX_WATERMARKS, 4);
    tf_store_doc_set_watermark(&doc, "t/a", 100);
    tf_store_doc_set_watermark(&doc, "t/b", 200);
    tf_store_doc_set_watermark(&doc, "t/c", 300);
    tf_store_doc_set_watermark(&doc, "t/d", 400);
    assert_int_equal(doc.nwatermarks, 4);
    /* Raising a known one does not evict anything. */
    tf_store_doc_set_watermark(&doc, "t/b", 250);
    assert_int_equal(doc.nwatermarks, 4);
    assert_int_equal(tf_store_doc_watermark(&doc, "t/a"), 100);

    /* A fifth partition pushes out the first one added. */
    tf_store_doc_set_watermark(&doc, "t/e", 5);
    assert_int_equal(doc.nwatermarks, 4);
    assert_int_equal(tf_store_doc_watermark(&doc, "t/a"), -1);
    assert_int_equal(tf_store_doc_watermark(&doc, "t/b"), 250);
    assert_int_equal(tf_store_doc_watermark(&doc, "t/c"), 300);
    assert_int_equal(tf_store_doc_watermark(&doc, "t/d"), 400);
    assert_int_equal(tf_store_doc_watermark(&doc, "t/e"), 5);
    tf_store_doc_set_watermark(&doc, "t/f", 6);
    assert_int_equal(tf_store_doc_watermark(&doc, "t/b"), -1);
    assert_int_equal(tf_store_doc_watermark(&doc, "t/c"), 300);
    assert_int_equal(tf_store_doc_watermark(&doc, "t/f"), 6);
    assert_int_equal(doc.nwatermarks, 4);

    /* The encoding carries the four kept, and only those. */
    static tf_store_fields fs;
    tf_store_encode(&doc, &fs);
    assert_null(value_of(&fs, "o:t/a"));
    assert_null(value_of(&fs, "o:t/b"));
    assert_string_equal(value_of(&fs, "o:t/c"), "300");
    assert_string_equal(value_of(&fs, "o:t/f"), "6");
}

/* ---- redis:// URLs ---- */

static void test_url_host_only(void **state)
{
    (void)state;
    tf_config_redis_url u;
    char err[256] = "";
    assert_int_equal(tf_config_redis_url_parse("redis://cache.internal", &u, err, sizeof err), TF_OK);
    assert_string_equal(u.host, "cache.internal");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.username, "");
    assert_string_equal(u.password, "");
}

static void test_url_port_db(void **state)
{
    (void)state;
    tf_config_redis_url u;
    char err[256] = "";
    assert_int_equal(tf_config_redis_url_parse("redis://10.0.0.5:7000", &u, err, sizeof err), TF_OK);
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 0);
    assert_int_equal(tf_config_redis_url_parse("redis://h/3", &u, err, sizeof err), TF_OK);
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 3);
    assert_int_equal(tf_config_redis_url_parse("redis://h:1/15", &u, err, sizeof err), TF_OK);
    assert_int_equal(u.port, 1);
    assert_int_equal(u.db, 15);
    assert_int_equal(tf_config_redis_url_parse("redis://h:65535/", &u, err, sizeof err), TF_OK);
    assert_int_equal(u.port, 65535);
    assert_int_equal(u.db, 0);
}

static void test_url_credentials(void **state)
{
    (void)state;
    tf_config_redis_url u;
    char err[256] = "";
    /* Password only: AUTH <password>. */
    assert_int_equal(tf_config_redis_url_parse("redis://:s3cret@h:6380/2", &u, err, sizeof err), TF_OK);
    assert_string_equal(u.username, "");
    assert_string_equal(u.password, "s3cret");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    /* ACL user and password, percent-decoded. */
    assert_int_equal(tf_config_redis_url_parse("redis://app:p%40ss%3Aw0rd@h", &u, err, sizeof err), TF_OK);
    assert_string_equal(u.username, "app");
    assert_string_equal(u.password, "p@ss:w0rd");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 6379);
}

/* "redis://secret@host" is a password alone, as redis-cli reads it. */
static void test_url_password_without_colon(void **state)
{
    (void)state;
    tf_config_redis_url u;
    char err[256] = "";
    int rc = tf_config_redis_url_parse("redis://secret@h", &u, err, sizeof err);
    if (rc == TF_OK) {
        assert_string_equal(u.password, "secret");
        assert_string_equal(u.username, "");
    } else {
        assert_int_equal(rc, TF_EINVAL);
        assert_null(strstr(err, "secret"));
    }
}

static void expect_bad(const char *url, const char *secret)
{
    tf_config_redis_url u;
    char err[256] = "";
    if (tf_config_redis_url_parse(url, &u, err, sizeof err) != TF_EINVAL)
        fail_msg("accepted: %s", url);
    assert_true(strlen(err) > 0);
    if (secret && strstr(err, secret))
        fail_msg("error text for %s shows the password: %s", url, err);
}

static void test_url_bad_port(void **state)
{
    (void)state;
    expect_bad("redis://h:0", NULL);
    expect_bad("redis://h:65536", NULL);
    expect_bad("redis://h:-1", NULL);
    expect_bad("redis://h:abc", NULL);
    expect_bad("redis://h:", NULL);
    expect_bad("redis://h:99999999999/0", NULL);
    expect_bad("redis://u:hunter2@h:99999", "hunter2");
}

static void test_url_missing_host(void **state)
{
    (void)state;
    expect_bad("redis://", NULL);
    expect_bad("redis://:6379", NULL);
    expect_bad("redis:///0", NULL);
    expect_bad("redis://u:hunter2@", "hunter2");
    expect_bad("redis://u:hunter2@:6379/1", "hunter2");
}

static void test_url_bad_scheme_and_db(void **state)
{
    (void)state;
    expect_bad("http://h:6379", NULL);
    expect_bad("rediss://h:6379", NULL); /* TLS not supported */
    expect_bad("h:6379", NULL);
    expect_bad("", NULL);
    expect_bad("redis:/h", NULL);
    expect_bad("redis://h/x", NULL);
    expect_bad("redis://h/-1", NULL);
    tf_config_redis_url u;
    char err[256] = "";
    assert_int_equal(tf_config_redis_url_parse("rediss://u:pw@h", &u, err, sizeof err), TF_EINVAL);
    assert_non_null(strstr(err, "TLS"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_history_round_trip),
        cmocka_unit_test(test_derived_fields_for_readers),
        cmocka_unit_test(test_version_and_epoch),
        cmocka_unit_test(test_empty_hash),
        cmocka_unit_test(test_unknown_fields_ignored),
        cmocka_unit_test(test_bad_stage),
        cmocka_unit_test(test_bad_long_stage),
        cmocka_unit_test(test_watermark_keeps_highest),
        cmocka_unit_test(test_watermark_evicts_oldest),
        cmocka_unit_test(test_url_host_only),
        cmocka_unit_test(test_url_port_db),
        cmocka_unit_test(test_url_credentials),
        cmocka_unit_test(test_url_password_without_colon),
        cmocka_unit_test(test_url_bad_port),
        cmocka_unit_test(test_url_missing_host),
        cmocka_unit_test(test_url_bad_scheme_and_db),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
