/* Unit tests for the customer document codec (pkg/store/codec.c: Redis hash fields
 * <-> tf_store_doc_t, every field of tf_customer_t, watermarks) and the redis:// URL parser
 * (tf_config_redis_url_parse, which replaced tf_redis_url_parse in pkg/store). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "store/store.h"

#define T0 INT64_C(1767701700000)

/* A field list as HGETALL returns it, built by hand. */
typedef struct {
    size_t n;
    const char *f[256];
    const char *v[256];
    size_t fl[256], vl[256];
} pairs;

static void add(pairs *p, const char *field, const char *value)
{
    assert_true(p->n < 256);
    p->f[p->n] = field;
    p->v[p->n] = value;
    p->fl[p->n] = strlen(field);
    p->vl[p->n] = strlen(value);
    p->n++;
}

static void from_fields(pairs *p, const tf_store_fields *fs)
{
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < fs->n; i++) {
        add(p, fs->field[i], fs->value[i]);
        assert_int_equal(p->vl[p->n - 1], fs->vlen[i]);
    }
}

/* Replaces the value of field in p (which must hold it). */
static void set_value(pairs *p, const char *field, const char *value)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->f[i], field) == 0) {
            p->v[i] = value;
            p->vl[i] = strlen(value);
            return;
        }
    fail_msg("no field %s", field);
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
            return fs->value[i];
    return NULL;
}

/* Every field, defaults included (as `touchflow customer get` shows them). */
static void encode_ok(const tf_store_doc_t *doc, tf_store_fields *fs)
{
    assert_int_equal(tf_store_encode_full(doc, fs), TF_OK);
    assert_true(fs->used <= sizeof(fs->arena));
}

/* Every member of tf_customer_t beyond the original counters, set to something
 * nonzero and distinct; complaint ids carry '|'. */
static void full_care_state(tf_customer_t *c)
{
    c->clock_ms = T0 + 99;
    c->gross_profit = -77777;
    c->care_actions = 9;
    c->spend_base = 20461;
    for (int i = 0; i < TF_SPEND_BUCKETS; i++)
        c->spend_buckets[i] = (i % 3 == 0 ? -1 : 1) * (1000 + 7 * i);
    c->ncomplaints = TF_MAX_COMPLAINTS;
    for (int i = 0; i < TF_MAX_COMPLAINTS; i++) {
        tf_complaint_t *cp = &c->complaint[i];
        snprintf(cp->id, sizeof cp->id, "c|%d||x|%s", i, i == 7 ? "|" : "tail");
        cp->category = (tf_complaint_category)(1 + i % 4);
        cp->severity = (tf_complaint_severity)(1 + (i + 1) % 4);
        cp->state = (tf_complaint_state)(i % 3);
        cp->level = i % 3;
        cp->opened_ms = T0 - i * TF_MS_PER_HOUR;
        cp->closed_ms = cp->state == TF_COMPLAINT_RESOLVED ? T0 + i : 0;
    }
    /* One complaint seen only through an update: no category, severity or start. */
    c->complaint[5].category = TF_CAT_NONE;
    c->complaint[5].severity = TF_SEV_NONE;
    c->complaint[5].opened_ms = 0;
    c->nps_promoters = 3;
    c->nps_detractors = 1;
    c->tier = TF_TIER_POTENTIAL;
    c->tier_since_ms = T0 - 5;
    c->points = 123456;
    snprintf(c->level, sizeof c->level, "gold member");
    c->risk = 64;
    c->warned = 1;
    c->warned_at_ms = T0 - 6;
    c->welcomed = 1;
    c->birth_month = 2;
    c->birth_day = 29;
    c->date_year = 2019;
    c->date_month = 10;
    c->date_day = 3;
    c->birthday_done_year = 2025;
    c->anniversary_done_year = 2024;
    c->date_done_year = 2023;
    c->festival_done_ms = T0 - 30 * TF_MS_PER_DAY;
    c->followup_due_ms = T0 + 3 * TF_MS_PER_DAY;
    snprintf(c->followup_order, sizeof c->followup_order, "order|42|");
    c->checkin_done_ms = T0 - 8;
    /* Two resolved complaints with their follow-ups pending (slots 2 and 5). */
    c->complaint[2].followup_due_ms = T0 + 2 * TF_MS_PER_DAY;
    c->complaint[5].followup_due_ms = T0 + 2 * TF_MS_PER_DAY + 1;
    c->ntags = 2;
    snprintf(c->tags[0], sizeof c->tags[0], "vip");
    snprintf(c->tags[1], sizeof c->tags[1], "b2b|x");
    c->tags_at_ms = T0 - 9;
    c->consent[TF_CHANNEL_EMAIL] = TF_CONSENT_GRANTED;
    c->consent_at_ms[TF_CHANNEL_EMAIL] = T0 - 10;
    c->consent[TF_CHANNEL_SMS] = TF_CONSENT_WITHDRAWN;
    c->consent_at_ms[TF_CHANNEL_SMS] = T0 - 11;
    snprintf(c->referred_by, sizeof c->referred_by, "cust-referrer|1");
    c->referral_credited = 1;
    c->referrals = 4;
    for (int t = 0; t < TF_TIMER__COUNT; t++)
        c->due[t] = T0 + (t + 1) * TF_MS_PER_HOUR;
    c->nhistory = 2;
    c->history[0].at_ms = T0 - 1;
    c->history[0].from = TF_STAGE_GROWTH;
    c->history[0].to = TF_STAGE_MATURE;
    snprintf(c->history[0].rule, sizeof c->history[0].rule, "mature_threshold");
    c->history[1].at_ms = T0 - 2;
    c->history[1].from = TF_STAGE_PROSPECT;
    c->history[1].to = TF_STAGE_GROWTH;
    snprintf(c->history[1].rule, sizeof c->history[1].rule, "first_purchase");
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
    full_care_state(c);
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

    assert_int_equal(a->clock_ms, b->clock_ms);
    assert_int_equal(a->gross_profit, b->gross_profit);
    assert_int_equal(a->care_actions, b->care_actions);
    assert_int_equal(a->spend_base, b->spend_base);
    for (int i = 0; i < TF_SPEND_BUCKETS; i++)
        assert_int_equal(a->spend_buckets[i], b->spend_buckets[i]);
    assert_int_equal(a->ncomplaints, b->ncomplaints);
    for (size_t i = 0; i < a->ncomplaints; i++) {
        assert_string_equal(a->complaint[i].id, b->complaint[i].id);
        assert_int_equal(a->complaint[i].category, b->complaint[i].category);
        assert_int_equal(a->complaint[i].severity, b->complaint[i].severity);
        assert_int_equal(a->complaint[i].state, b->complaint[i].state);
        assert_int_equal(a->complaint[i].level, b->complaint[i].level);
        assert_int_equal(a->complaint[i].opened_ms, b->complaint[i].opened_ms);
        assert_int_equal(a->complaint[i].closed_ms, b->complaint[i].closed_ms);
        assert_int_equal(a->complaint[i].followup_due_ms, b->complaint[i].followup_due_ms);
    }
    assert_int_equal(a->ntags, b->ntags);
    for (size_t i = 0; i < a->ntags; i++)
        assert_string_equal(a->tags[i], b->tags[i]);
    assert_int_equal(a->tags_at_ms, b->tags_at_ms);
    for (int i = 0; i < TF_CHANNEL__COUNT; i++) {
        assert_int_equal(a->consent[i], b->consent[i]);
        assert_int_equal(a->consent_at_ms[i], b->consent_at_ms[i]);
    }
    assert_int_equal(a->nps_promoters, b->nps_promoters);
    assert_int_equal(a->nps_detractors, b->nps_detractors);
    assert_int_equal(a->tier, b->tier);
    assert_int_equal(a->tier_since_ms, b->tier_since_ms);
    assert_int_equal(a->points, b->points);
    assert_string_equal(a->level, b->level);
    assert_int_equal(a->risk, b->risk);
    assert_int_equal(a->warned, b->warned);
    assert_int_equal(a->warned_at_ms, b->warned_at_ms);
    assert_int_equal(a->welcomed, b->welcomed);
    assert_int_equal(a->birth_month, b->birth_month);
    assert_int_equal(a->birth_day, b->birth_day);
    assert_int_equal(a->date_year, b->date_year);
    assert_int_equal(a->date_month, b->date_month);
    assert_int_equal(a->date_day, b->date_day);
    assert_int_equal(a->birthday_done_year, b->birthday_done_year);
    assert_int_equal(a->anniversary_done_year, b->anniversary_done_year);
    assert_int_equal(a->date_done_year, b->date_done_year);
    assert_int_equal(a->festival_done_ms, b->festival_done_ms);
    assert_int_equal(a->followup_due_ms, b->followup_due_ms);
    assert_string_equal(a->followup_order, b->followup_order);
    assert_int_equal(a->checkin_done_ms, b->checkin_done_ms);
    assert_string_equal(a->referred_by, b->referred_by);
    assert_int_equal(a->referral_credited, b->referral_credited);
    assert_int_equal(a->referrals, b->referrals);
    for (int t = 0; t < TF_TIMER__COUNT; t++)
        assert_int_equal(a->due[t], b->due[t]);
    assert_int_equal(a->nhistory, b->nhistory);
    for (size_t i = 0; i < a->nhistory; i++) {
        assert_int_equal(a->history[i].at_ms, b->history[i].at_ms);
        assert_int_equal(a->history[i].from, b->history[i].from);
        assert_int_equal(a->history[i].to, b->history[i].to);
        assert_string_equal(a->history[i].rule, b->history[i].rule);
    }
}

/* The field lists of two encodings are identical: the commit then sends nothing. */
static void assert_same_fields(const tf_store_fields *a, const tf_store_fields *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_string_equal(a->field[i], b->field[i]);
        assert_int_equal(a->vlen[i], b->vlen[i]);
        assert_string_equal(a->value[i], b->value[i]);
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    static tf_store_doc_t doc, back;
    static tf_store_fields fs;
    static pairs p;
    full_doc(&doc);
    encode_ok(&doc, &fs);
    from_fields(&p, &fs);

    /* Field names are unique. */
    for (size_t i = 0; i < fs.n; i++)
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(fs.field[i], fs.field[j]);
    assert_string_equal(value_of(&fs, "stage"), "mature");
    assert_string_equal(value_of(&fs, "margin"), "-98765");
    assert_string_equal(value_of(&fs, "o:touchpoints/7"), "12345678901");
    assert_string_equal(value_of(&fs, "n:unsubscribe"), "114");
    assert_string_equal(value_of(&fs, "cp:7"), "acknowledged|1|low|service|1767676500000|0|c|7||x||");
    assert_string_equal(value_of(&fs, "cp:5"), "resolved|2|none|none|0|1767701700005|c|5||x|tail");
    assert_string_equal(value_of(&fs, "sb"), "20461:-1000,1007,1014,-1021,1028,1035,-1042,1049,1056,-1063,1070,1077");
    assert_string_equal(value_of(&fs, "tier"), "potential");
    assert_string_equal(value_of(&fs, "level"), "gold member");
    assert_string_equal(value_of(&fs, "birthday"), "02-29");
    assert_string_equal(value_of(&fs, "date"), "2019-10-03");
    assert_string_equal(value_of(&fs, "followup"), "1767960900000|order|42|");
    assert_string_equal(value_of(&fs, "complaint_followup"), "2:1767874500000,5:1767874500001");
    assert_string_equal(value_of(&fs, "tags"), "vip,b2b|x");
    assert_string_equal(value_of(&fs, "tags_at"), "1767701699991");
    assert_string_equal(value_of(&fs, "consent"), "email=granted@1767701699990,sms=withdrawn@1767701699989");
    assert_string_equal(value_of(&fs, "referred_by"), "cust-referrer|1");
    assert_string_equal(value_of(&fs, "t:review"), "1767705300000");
    assert_string_equal(value_of(&fs, "warned"), "1");
    assert_string_equal(value_of(&fs, "nps_prom"), "3");
    assert_string_equal(value_of(&fs, "clock"), "1767701700099");

    memset(&back, 0x5a, sizeof back);
    assert_int_equal(decode(&back, &p), TF_OK);
    assert_int_equal(back.exists, 1);
    assert_customer_equal(&back.customer, &doc.customer);
    /* Byte for byte: no member was forgotten (both were zeroed before being filled). */
    assert_memory_equal(&back, &doc, sizeof doc);
    assert_int_equal(back.nwatermarks, 3);
    assert_int_equal(tf_store_doc_watermark(&back, "touchpoints/0"), 10);
    assert_int_equal(tf_store_doc_watermark(&back, "touchpoints/7"), INT64_C(12345678901));
    assert_int_equal(tf_store_doc_watermark(&back, "eu.touchpoints-v2/12"), 0);
    assert_int_equal(tf_store_doc_watermark(&back, "touchpoints/1"), -1);

    /* Encoding the decoded document gives the same fields again. */
    static tf_store_fields fs2;
    encode_ok(&back, &fs2);
    assert_same_fields(&fs2, &fs);

    /* The order of HGETALL does not matter (a hash with long values is no listpack
     * and comes back in any order); only the watermarks' order follows it. */
    static pairs rev;
    memset(&rev, 0, sizeof rev);
    for (size_t i = fs.n; i-- > 0;)
        add(&rev, fs.field[i], fs.value[i]);
    assert_int_equal(decode(&back, &rev), TF_OK);
    assert_memory_equal(&back.customer, &doc.customer, sizeof doc.customer);
    assert_int_equal(back.nwatermarks, 3);
    for (size_t i = 0; i < doc.nwatermarks; i++)
        assert_int_equal(tf_store_doc_watermark(&back, doc.watermarks[i].tp), doc.watermarks[i].offset);
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
    encode_ok(&doc, &fs);
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
    encode_ok(&doc, &fs);
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

/* A watermark field whose partition name holds a NUL byte (a hand-written hash) is
 * no partition: reading it as "" would not survive the next write (fuzz_codec). */
static void test_watermark_name_with_nul_is_ignored(void **state)
{
    (void)state;
    static tf_store_doc_t doc;
    static const char bad[] = {'o', ':', '\0', 'x'};
    const char *f[3] = {"stage", bad, "o:touchpoints/1"};
    size_t fl[3] = {5, sizeof bad, 15};
    const char *v[3] = {"growth", "8", "41"};
    size_t vl[3] = {6, 1, 2};
    assert_int_equal(tf_store_decode(&doc, f, fl, v, vl, 3), TF_OK);
    assert_int_equal(doc.nwatermarks, 1);
    assert_int_equal(tf_store_doc_watermark(&doc, "touchpoints/1"), 41);
    assert_int_equal(tf_store_doc_watermark(&doc, ""), -1);
}

/* A history entry that does not parse whole is dropped whole: half of one would be
 * written back as an entry that no longer decodes (fuzz_codec). */
static void test_history_entry_is_kept_whole_or_not(void **state)
{
    (void)state;
    static tf_store_doc_t doc;
    const char *f[2] = {"stage", "h:0"};
    size_t fl[2] = {5, 3};
    const char *v[2] = {"growth", "1767225600000|prospect|lunar|first_purchase"};
    size_t vl[2] = {6, strlen(v[1])};
    assert_int_equal(tf_store_decode(&doc, f, fl, v, vl, 2), TF_OK);
    assert_int_equal(doc.customer.nhistory, 0);
    assert_int_equal(doc.customer.history[0].at_ms, 0);
    assert_int_equal(doc.customer.history[0].from, TF_STAGE_NONE);
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
    encode_ok(&doc, &fs);
    assert_null(value_of(&fs, "o:t/a"));
    assert_null(value_of(&fs, "o:t/b"));
    assert_string_equal(value_of(&fs, "o:t/c"), "300");
    assert_string_equal(value_of(&fs, "o:t/f"), "6");
}

/* A customer seen once: every slot and timer is written, as "" or "0", so a later
 * commit only ever overwrites fields and never has to delete one. */
/* The hash keeps only fields off their default: a new prospect is a handful of
 * fields, and decoding them gives the same document back. */
static void test_sparse_encoding(void **state)
{
    (void)state;
    static tf_store_doc_t doc, back;
    static tf_store_fields full, sparse;
    static pairs p;
    memset(&doc, 0, sizeof doc);
    doc.exists = 1;
    doc.customer.stage = TF_STAGE_PROSPECT;
    doc.customer.first_seen_ms = doc.customer.last_seen_ms = doc.customer.clock_ms = 1767701700000;
    doc.customer.counts[TF_KIND_WEB_VISIT] = 1;
    tf_store_doc_set_watermark(&doc, "touchpoints/3", 0);
    assert_int_equal(tf_store_encode_full(&doc, &full), TF_OK);
    assert_int_equal(tf_store_encode(&doc, &sparse), TF_OK);
    assert_true(sparse.n < full.n / 3);
    assert_string_equal(value_of(&sparse, "stage"), "prospect");
    assert_string_equal(value_of(&sparse, "n:web_visit"), "1");
    assert_null(value_of(&sparse, "n:purchase"));
    assert_null(value_of(&sparse, "t:review"));
    assert_null(value_of(&sparse, "followup"));
    assert_null(value_of(&sparse, "mean_interval_ms"));
    assert_null(value_of(&sparse, "o:touchpoints/3")); /* offset 0 is the default too */
    from_fields(&p, &sparse);
    assert_int_equal(decode(&back, &p), TF_OK);
    assert_customer_equal(&back.customer, &doc.customer);
}

/* A state written before 1.2 kept one complaint follow-up as "<due>|<id>": it is
 * decoded onto its complaint, or onto a resolved complaint remembered by its id
 * alone when the complaint was forgotten; written back, it takes the new form. */
static void test_legacy_complaint_followup(void **state)
{
    (void)state;
    static tf_store_doc_t doc;
    static tf_store_fields fs;
    static pairs p;
    memset(&p, 0, sizeof p);
    add(&p, "stage", "growth");
    add(&p, "cp:0", "resolved|0|low|service|1767600000000|1767700000000|c|1");
    add(&p, "cp:1", "open|0|low|service|1767600000000|0|c-2");
    add(&p, "complaint_followup", "1768300000000|c|1");
    assert_int_equal(decode(&doc, &p), TF_OK);
    assert_int_equal(doc.customer.ncomplaints, 2);
    assert_int_equal(doc.customer.complaint[0].followup_due_ms, INT64_C(1768300000000));
    assert_int_equal(doc.customer.complaint[1].followup_due_ms, 0);
    encode_ok(&doc, &fs);
    assert_string_equal(value_of(&fs, "complaint_followup"), "0:1768300000000");

    memset(&p, 0, sizeof p);
    add(&p, "stage", "growth");
    add(&p, "complaint_followup", "1768300000000|gone");
    assert_int_equal(decode(&doc, &p), TF_OK);
    assert_int_equal(doc.customer.ncomplaints, 1);
    assert_string_equal(doc.customer.complaint[0].id, "gone");
    assert_int_equal(doc.customer.complaint[0].state, TF_COMPLAINT_RESOLVED);
    assert_int_equal(doc.customer.complaint[0].followup_due_ms, INT64_C(1768300000000));

    /* Nothing pending, no tags, no consent: today's defaults. */
    memset(&p, 0, sizeof p);
    add(&p, "stage", "growth");
    add(&p, "complaint_followup", "");
    assert_int_equal(decode(&doc, &p), TF_OK);
    assert_int_equal(doc.customer.ncomplaints, 0);
    assert_int_equal(doc.customer.ntags, 0);
    for (int i = 0; i < TF_CHANNEL__COUNT; i++)
        assert_int_equal(doc.customer.consent[i], TF_CONSENT_UNSTATED);
}

/* Malformed tags, consent and follow-up items are skipped one by one. */
static void test_consent_tags_malformed(void **state)
{
    (void)state;
    static tf_store_doc_t doc;
    static pairs p;
    memset(&p, 0, sizeof p);
    add(&p, "stage", "growth");
    add(&p, "cp:0", "resolved|0|low|service|1|2|c-1");
    add(&p, "complaint_followup", "0:5,x:7,9:8,0");
    add(&p, "tags", "a,,b");
    add(&p, "consent", "email=granted@5,fax=granted@6,sms=maybe@7,phone=withdrawn@x,phone=withdrawn@9");
    assert_int_equal(decode(&doc, &p), TF_OK);
    assert_int_equal(doc.customer.complaint[0].followup_due_ms, 5);
    assert_int_equal(doc.customer.ntags, 2);
    assert_string_equal(doc.customer.tags[1], "b");
    assert_int_equal(doc.customer.consent[TF_CHANNEL_EMAIL], TF_CONSENT_GRANTED);
    assert_int_equal(doc.customer.consent_at_ms[TF_CHANNEL_EMAIL], 5);
    assert_int_equal(doc.customer.consent[TF_CHANNEL_SMS], TF_CONSENT_UNSTATED);
    assert_int_equal(doc.customer.consent[TF_CHANNEL_PHONE], TF_CONSENT_WITHDRAWN);
    assert_int_equal(doc.customer.consent_at_ms[TF_CHANNEL_PHONE], 9);
}

static void test_empty_customer_round_trip(void **state)
{
    (void)state;
    static tf_store_doc_t doc, back;
    static tf_store_fields fs, fs2;
    static pairs p;
    memset(&doc, 0, sizeof doc);
    doc.exists = 1;
    encode_ok(&doc, &fs);
    assert_string_equal(value_of(&fs, "stage"), "none");
    assert_string_equal(value_of(&fs, "tier"), "none");
    assert_string_equal(value_of(&fs, "sb"), "0:0,0,0,0,0,0,0,0,0,0,0,0");
    assert_string_equal(value_of(&fs, "birthday"), "");
    assert_string_equal(value_of(&fs, "date"), "");
    assert_string_equal(value_of(&fs, "followup"), "");
    assert_string_equal(value_of(&fs, "complaint_followup"), "");
    assert_string_equal(value_of(&fs, "tags"), "");
    assert_string_equal(value_of(&fs, "consent"), "");
    assert_string_equal(value_of(&fs, "referred_by"), "");
    assert_string_equal(value_of(&fs, "level"), "");
    assert_string_equal(value_of(&fs, "currency"), "");
    for (int i = 0; i < TF_MAX_COMPLAINTS; i++) {
        char name[8];
        snprintf(name, sizeof name, "cp:%d", i);
        assert_string_equal(value_of(&fs, name), "");
    }
    size_t timers = 0;
    for (size_t i = 0; i < fs.n; i++)
        if (strncmp(fs.field[i], "t:", 2) == 0) {
            assert_string_equal(fs.value[i], "0");
            timers++;
        }
    assert_int_equal(timers, TF_TIMER__COUNT);
    assert_null(value_of(&fs, "h:0"));
    for (int t = 0; t < TF_TIMER__COUNT; t++) {
        char name[64];
        snprintf(name, sizeof name, "t:%s", tf_timer_name((tf_timer)t));
        assert_non_null(value_of(&fs, name));
    }

    from_fields(&p, &fs);
    memset(&back, 0x5a, sizeof back);
    assert_int_equal(decode(&back, &p), TF_OK);
    assert_memory_equal(&back, &doc, sizeof doc);
    encode_ok(&back, &fs2);
    assert_same_fields(&fs2, &fs);
}

/* A malformed value loses that field only: the rest of the document survives. */
static void test_malformed_fields_skipped(void **state)
{
    (void)state;
    static tf_store_doc_t doc, back;
    static tf_store_fields fs;
    static pairs p;
    full_doc(&doc);
    encode_ok(&doc, &fs);
    from_fields(&p, &fs);
    set_value(&p, "cp:2", "open|0|low|quality|1|2");       /* no id part */
    set_value(&p, "cp:4", "open|0|dire|quality|1|2|c-4");  /* unknown severity */
    set_value(&p, "sb", "20461:1,2,3");                     /* 3 buckets, not 12 */
    set_value(&p, "tier", "platinum");
    set_value(&p, "birthday", "13");
    set_value(&p, "date", "2019-1x-03");
    set_value(&p, "followup", "soon|o-1");
    set_value(&p, "t:review", "later");
    set_value(&p, "warned", "99999999999");                 /* not an int */
    add(&p, "t:warp_drive", "5");                           /* a timer this version lacks */
    add(&p, "cp:9", "open|0|low|quality|1|2|c-9");          /* no such slot */
    assert_int_equal(decode(&back, &p), TF_OK);

    tf_customer_t *c = &back.customer;
    /* The complaints of the good slots move up, in order, without holes. */
    assert_int_equal(c->ncomplaints, TF_MAX_COMPLAINTS - 2);
    static const int kept[] = {0, 1, 3, 5, 6, 7};
    for (size_t i = 0; i < c->ncomplaints; i++) {
        assert_string_equal(c->complaint[i].id, doc.customer.complaint[kept[i]].id);
        assert_int_equal(c->complaint[i].state, doc.customer.complaint[kept[i]].state);
        assert_int_equal(c->complaint[i].opened_ms, doc.customer.complaint[kept[i]].opened_ms);
    }
    assert_int_equal(c->spend_base, 0);
    for (int i = 0; i < TF_SPEND_BUCKETS; i++)
        assert_int_equal(c->spend_buckets[i], 0);
    assert_int_equal(c->tier, TF_TIER_NONE);
    assert_int_equal(c->birth_month, 0);
    assert_int_equal(c->birth_day, 0);
    assert_int_equal(c->date_year, 0);
    assert_int_equal(c->date_month, 0);
    assert_int_equal(c->followup_due_ms, 0);
    assert_string_equal(c->followup_order, "");
    assert_int_equal(c->due[TF_TIMER_REVIEW], 0);
    assert_int_equal(c->warned, 0);

    /* Everything else is intact: put the lost fields back and compare whole. */
    c->ncomplaints = doc.customer.ncomplaints;
    memcpy(c->complaint, doc.customer.complaint, sizeof c->complaint);
    c->spend_base = doc.customer.spend_base;
    memcpy(c->spend_buckets, doc.customer.spend_buckets, sizeof c->spend_buckets);
    c->tier = doc.customer.tier;
    c->birth_month = doc.customer.birth_month;
    c->birth_day = doc.customer.birth_day;
    c->date_year = doc.customer.date_year;
    c->date_month = doc.customer.date_month;
    c->date_day = doc.customer.date_day;
    c->followup_due_ms = doc.customer.followup_due_ms;
    memcpy(c->followup_order, doc.customer.followup_order, sizeof c->followup_order);
    c->due[TF_TIMER_REVIEW] = doc.customer.due[TF_TIMER_REVIEW];
    c->warned = doc.customer.warned;
    assert_memory_equal(&back, &doc, sizeof doc);
}

/* Unused complaint slots ("") in between are no complaints. */
static void test_complaint_slots_compact(void **state)
{
    (void)state;
    static pairs p;
    static tf_store_doc_t doc;
    memset(&p, 0, sizeof p);
    add(&p, "cp:0", "");
    add(&p, "cp:3", "resolved|2|critical|shipping|100|200|a|b");
    add(&p, "cp:1", "acknowledged|1|medium|service|50|0|");
    add(&p, "cp:2", "");
    assert_int_equal(decode(&doc, &p), TF_OK);
    assert_int_equal(doc.customer.ncomplaints, 2);
    const tf_complaint_t *a = &doc.customer.complaint[0], *b = &doc.customer.complaint[1];
    assert_string_equal(a->id, "");
    assert_int_equal(a->state, TF_COMPLAINT_ACKNOWLEDGED);
    assert_int_equal(a->severity, TF_SEV_MEDIUM);
    assert_int_equal(a->category, TF_CAT_SERVICE);
    assert_int_equal(a->level, 1);
    assert_int_equal(a->opened_ms, 50);
    assert_string_equal(b->id, "a|b");
    assert_int_equal(b->state, TF_COMPLAINT_RESOLVED);
    assert_int_equal(b->severity, TF_SEV_CRITICAL);
    assert_int_equal(b->category, TF_CAT_SHIPPING);
    assert_int_equal(b->closed_ms, 200);

    /* An id longer than the state keeps is corrupt: the slot is dropped. */
    char longv[512];
    memset(&p, 0, sizeof p);
    int n = snprintf(longv, sizeof longv, "open|0|low|quality|1|0|");
    memset(longv + n, 'x', TF_REF_MAX + 1);
    longv[n + TF_REF_MAX + 1] = '\0';
    add(&p, "cp:0", longv);
    assert_int_equal(decode(&doc, &p), TF_OK);
    assert_int_equal(doc.customer.ncomplaints, 0);
    longv[n + TF_REF_MAX] = '\0'; /* exactly TF_REF_MAX fits */
    p.vl[0] = strlen(longv);
    assert_int_equal(decode(&doc, &p), TF_OK);
    assert_int_equal(doc.customer.ncomplaints, 1);
    assert_int_equal(strlen(doc.customer.complaint[0].id), TF_REF_MAX);
}

static void fill(char *dst, size_t size, char ch)
{
    memset(dst, ch, size - 1);
    dst[size - 1] = '\0';
}

/* Every string at its longest (ids full of '|'), every number at its widest: it
 * fits the arena and still round-trips exactly. */
static void test_worst_case_fits(void **state)
{
    (void)state;
    static tf_store_doc_t doc, back;
    static tf_store_fields fs;
    static pairs p;
    memset(&doc, 0, sizeof doc);
    doc.exists = 1;
    tf_customer_t *c = &doc.customer;
    c->stage = TF_STAGE_CHURNED;
#define W(m) c->m = INT64_MIN;
    W(stage_since_ms) W(clock_ms) W(first_seen_ms) W(last_seen_ms) W(purchases) W(first_purchase_ms)
    W(last_purchase_ms) W(spend) W(margin) W(refunded) W(foreign_purchases) W(gross_profit) W(care_actions)
    W(spend_base) W(open_complaints) W(complaints) W(surveys_sat) W(nps_count) W(nps_sum) W(nps_promoters)
    W(nps_detractors) W(tier_since_ms) W(points) W(risk) W(warned_at_ms) W(churned_count) W(birthday_done_year)
    W(anniversary_done_year) W(date_done_year) W(festival_done_ms) W(followup_due_ms) W(checkin_done_ms)
    W(referrals) W(tags_at_ms) W(campaign_ms) W(exit_reason_ms) W(intervals) W(next_purchase_ms) W(replenish_done_ms)
    W(overdue_done_ms) W(channel_scores_at_ms)
#undef W
    for (int k = 0; k < TF_KIND__COUNT; k++)
        c->counts[k] = INT64_MIN;
    for (int i = 0; i < TF_SPEND_BUCKETS; i++)
        c->spend_buckets[i] = INT64_MIN;
    for (int t = 0; t < TF_TIMER__COUNT; t++)
        c->due[t] = INT64_MIN;
    c->sat_expectation_sum = -1.2345678901234567e-300;
    c->sat_perception_sum = c->interval_mean_days = c->interval_m2 = -2.2250738585072014e-308;
    c->next_purchase_confidence = -1.2345678901234567e-300;
    memcpy(c->currency, "XAU", 4);
    c->nfavourites = TF_FAVOURITES, c->nchannel_scores = TF_CHANNEL_SCORES; /* names all escapes */
    for (int i = 0; i < TF_FAVOURITES; i++)
        fill(c->favourites[i].sku, sizeof c->favourites[i].sku, i % 2 ? ',' : '\\'), c->favourites[i].qty = INT64_MIN;
    for (int i = 0; i < TF_CHANNEL_SCORES; i++)
        fill(c->channel_scores[i].name, sizeof c->channel_scores[i].name, ','), c->channel_scores[i].score = -1e-300;
    fill(c->campaign, sizeof c->campaign, 'C'), fill(c->exit_reason, sizeof c->exit_reason, 'X');
    c->ncomplaints = TF_MAX_COMPLAINTS;
    for (int i = 0; i < TF_MAX_COMPLAINTS; i++) {
        fill(c->complaint[i].id, sizeof c->complaint[i].id, '|');
        c->complaint[i].state = TF_COMPLAINT_ACKNOWLEDGED;
        c->complaint[i].severity = TF_SEV_CRITICAL;
        c->complaint[i].category = TF_CAT_SHIPPING;
        c->complaint[i].level = 2147483647;
        c->complaint[i].opened_ms = INT64_MIN;
        c->complaint[i].closed_ms = INT64_MIN;
        c->complaint[i].followup_due_ms = INT64_MAX; /* a follow-up is due after 0 */
    }
    c->ntags = TF_EVENT_MAX_TAGS;
    for (int i = 0; i < TF_EVENT_MAX_TAGS; i++)
        fill(c->tags[i], sizeof c->tags[i], (char)('A' + i));
    for (int i = 0; i < TF_CHANNEL__COUNT; i++) {
        c->consent[i] = TF_CONSENT_WITHDRAWN;
        c->consent_at_ms[i] = INT64_MIN;
    }
    c->tier = TF_TIER_TEMPORARY;
    fill(c->level, sizeof c->level, 'L');
    c->warned = c->welcomed = c->referral_credited = -2147483647 - 1;
    c->birth_month = 12, c->birth_day = 31;
    c->date_year = 99999, c->date_month = 12, c->date_day = 31;
    fill(c->followup_order, sizeof c->followup_order, '|');
    fill(c->referred_by, sizeof c->referred_by, 'r');
    c->nhistory = TF_STAGE_HISTORY;
    for (int i = 0; i < TF_STAGE_HISTORY; i++) {
        c->history[i].at_ms = INT64_MIN;
        c->history[i].from = TF_STAGE_PROSPECT;
        c->history[i].to = TF_STAGE_PROSPECT;
        fill(c->history[i].rule, sizeof c->history[i].rule, 'x');
    }
    for (int i = 0; i < TF_STORE_MAX_WATERMARKS; i++) {
        char tp[TF_STORE_TP_MAX];
        fill(tp, sizeof tp, (char)('a' + i));
        tf_store_doc_set_watermark(&doc, tp, INT64_MIN);
    }
    encode_ok(&doc, &fs);
    print_message("worst case: %zu fields, %zu of %zu arena bytes\n", fs.n, fs.used, sizeof fs.arena);
    assert_true(fs.n < TF_STORE_MAX_FIELDS);
    from_fields(&p, &fs);
    memset(&back, 0x5a, sizeof back);
    assert_int_equal(decode(&back, &p), TF_OK);
    assert_customer_equal(&back.customer, &doc.customer);
    assert_memory_equal(&back, &doc, sizeof doc);
}

/* A string member without its NUL (a corrupt document) is cut at its array's end,
 * never read beyond it. */
static void test_unterminated_string_bounded(void **state)
{
    (void)state;
    static tf_store_doc_t doc;
    static tf_store_fields fs;
    memset(&doc, 0, sizeof doc);
    memset(doc.customer.referred_by, 'r', sizeof doc.customer.referred_by); /* no NUL */
    encode_ok(&doc, &fs);
    assert_int_equal(strlen(value_of(&fs, "referred_by")), sizeof doc.customer.referred_by);
}

/* Numbers are written as "%lld" writes them (dates as "%02d"/"%04d": zeros after
 * the sign) at every width and both ends of the range, and read back exactly. */
static void test_numbers_as_printf(void **state)
{
    (void)state;
    static tf_store_doc_t doc, back;
    static tf_store_fields fs;
    static pairs p;
    int64_t vals[6 * 19 + 4];
    size_t nv = 0;
    int64_t p10 = 1;
    for (int k = 0; k < 19; k++) {
        int64_t near[6] = {p10 - 1, p10, p10 + 1, -p10 + 1, -p10, -p10 - 1};
        for (int j = 0; j < 6; j++)
            vals[nv++] = near[j];
        if (k < 18)
            p10 *= 10;
    }
    vals[nv++] = INT64_MAX;
    vals[nv++] = INT64_MIN;
    vals[nv++] = INT64_MAX - 1;
    vals[nv++] = INT64_MIN + 1;
    for (size_t i = 0; i < nv; i++) {
        char want[32], sb[32 * (TF_SPEND_BUCKETS + 1)];
        memset(&doc, 0, sizeof doc);
        doc.customer.stage = TF_STAGE_GROWTH;
        doc.customer.spend = vals[i];
        doc.customer.counts[TF_KIND_CALL] = vals[i];
        doc.customer.due[TF_TIMER_SLA] = vals[i];
        doc.customer.spend_base = vals[i];
        doc.customer.spend_buckets[TF_SPEND_BUCKETS - 1] = vals[i];
        encode_ok(&doc, &fs);
        snprintf(want, sizeof want, "%lld", (long long)vals[i]);
        assert_string_equal(value_of(&fs, "spend"), want);
        assert_string_equal(value_of(&fs, "n:call"), want);
        assert_string_equal(value_of(&fs, "t:sla"), want);
        size_t at = (size_t)snprintf(sb, sizeof sb, "%lld:", (long long)vals[i]);
        for (int b = 0; b < TF_SPEND_BUCKETS; b++)
            at += (size_t)snprintf(sb + at, sizeof sb - at, b ? ",%lld" : "%lld",
                                   (long long)doc.customer.spend_buckets[b]);
        assert_string_equal(value_of(&fs, "sb"), sb);
        from_fields(&p, &fs);
        assert_int_equal(decode(&back, &p), TF_OK);
        assert_memory_equal(&back.customer, &doc.customer, sizeof doc.customer);
    }
    static const int ints[] = {-2147483647 - 1, -100000, -1000, -100, -10, -9, -1, 0, 1, 9, 10, 99, 100, 12345,
                               2147483647};
    size_t ni = sizeof ints / sizeof ints[0];
    for (size_t i = 0; i < ni; i++) {
        char want[64];
        memset(&doc, 0, sizeof doc);
        doc.customer.stage = TF_STAGE_GROWTH;
        doc.customer.birth_month = ints[i];
        doc.customer.birth_day = ints[(i + 3) % ni];
        doc.customer.date_year = ints[(i + 5) % ni];
        doc.customer.date_month = ints[(i + 7) % ni];
        doc.customer.date_day = ints[i];
        doc.customer.complaint[0].level = ints[i];
        doc.customer.ncomplaints = 1;
        encode_ok(&doc, &fs);
        snprintf(want, sizeof want, "%02d-%02d", doc.customer.birth_month, doc.customer.birth_day);
        assert_string_equal(value_of(&fs, "birthday"), want);
        snprintf(want, sizeof want, "%04d-%02d-%02d", doc.customer.date_year, doc.customer.date_month,
                 doc.customer.date_day);
        assert_string_equal(value_of(&fs, "date"), want);
        snprintf(want, sizeof want, "open|%d|none|none|0|0|", ints[i]);
        assert_string_equal(value_of(&fs, "cp:0"), want);
    }
}

/* The n: and t: fields carry the contract's names of the kinds and timers (the
 * decoder matches them against the encoder's own table). */
static void test_kind_and_timer_field_names(void **state)
{
    (void)state;
    static tf_store_doc_t doc, back;
    static tf_store_fields fs;
    static pairs p;
    char name[64];
    memset(&doc, 0, sizeof doc);
    doc.customer.stage = TF_STAGE_PROSPECT;
    for (int k = 0; k < TF_KIND__COUNT; k++)
        doc.customer.counts[k] = 1000 + k;
    for (int t = 0; t < TF_TIMER__COUNT; t++)
        doc.customer.due[t] = T0 + t;
    encode_ok(&doc, &fs);
    for (int k = 0; k < TF_KIND__COUNT; k++) {
        snprintf(name, sizeof name, "n:%s", tf_event_kind_name((tf_event_kind)k));
        assert_non_null(value_of(&fs, name));
        assert_int_equal(atoll(value_of(&fs, name)), 1000 + k);
    }
    for (int t = 0; t < TF_TIMER__COUNT; t++) {
        snprintf(name, sizeof name, "t:%s", tf_timer_name((tf_timer)t));
        assert_non_null(value_of(&fs, name));
        assert_int_equal(atoll(value_of(&fs, name)), T0 + t);
    }
    from_fields(&p, &fs);
    assert_int_equal(decode(&back, &p), TF_OK);
    assert_memory_equal(back.customer.counts, doc.customer.counts, sizeof doc.customer.counts);
    assert_memory_equal(back.customer.due, doc.customer.due, sizeof doc.customer.due);
}

/* Numbers read as tf_parse_i64 reads them whatever their length: leading zeros,
 * both ends of the range; one past them, a sign alone or a '+' is malformed (0). */
static void test_numbers_read_exactly(void **state)
{
    (void)state;
    static tf_store_doc_t doc;
    static pairs p;
    memset(&p, 0, sizeof p);
    add(&p, "stage", "growth");
    add(&p, "spend", "0000000000000000000000000042");
    add(&p, "margin", "-9223372036854775808");
    add(&p, "refunded", "9223372036854775807");
    add(&p, "clock", "999999999999999999");
    add(&p, "first_seen", "-999999999999999999");
    add(&p, "last_seen", "-0001");
    add(&p, "points", "9223372036854775808");
    add(&p, "risk", "-9223372036854775809");
    add(&p, "purchases", "+5");
    add(&p, "complaints", "-");
    add(&p, "care_actions", "12a");
    add(&p, "referrals", " 7");
    add(&p, "warned", "-2147483648");
    add(&p, "welcomed", "2147483648");
    add(&p, "n:call", "-0");
    add(&p, "t:sla", "00000000000000000000000000000000000000001");
    assert_int_equal(decode(&doc, &p), TF_OK);
    tf_customer_t *c = &doc.customer;
    assert_int_equal(c->spend, 42);
    assert_true(c->margin == INT64_MIN);
    assert_true(c->refunded == INT64_MAX);
    assert_int_equal(c->clock_ms, INT64_C(999999999999999999));
    assert_int_equal(c->first_seen_ms, INT64_C(-999999999999999999));
    assert_int_equal(c->last_seen_ms, -1);
    assert_int_equal(c->points, 0);
    assert_int_equal(c->risk, 0);
    assert_int_equal(c->purchases, 0);
    assert_int_equal(c->complaints, 0);
    assert_int_equal(c->care_actions, 0);
    assert_int_equal(c->referrals, 0);
    assert_int_equal(c->warned, -2147483647 - 1);
    assert_int_equal(c->welcomed, 0);
    assert_int_equal(c->counts[TF_KIND_CALL], 0);
    assert_int_equal(c->due[TF_TIMER_SLA], 1);
}

/* A history entry splits on runs of '|' (empty parts are skipped), ends at a NUL,
 * ignores what follows its rule and has a long rule cut. */
static void test_history_entry_splitting(void **state)
{
    (void)state;
    static tf_store_doc_t doc;
    static const char with_nul[] = "3|growth|mat\0ure|r";
    const char *f[5] = {"stage", "h:0", "h:1", "h:2", "h:3"};
    const char *v[5] = {"growth", "|1767225600000||prospect|growth|first_purchase|extra|more",
                        "2|growth|mature|a_rule_name_longer_than_the_field", with_nul, "4|growth||mature|r"};
    size_t fl[5] = {5, 3, 3, 3, 3};
    size_t vl[5] = {6, strlen(v[1]), strlen(v[2]), sizeof with_nul - 1, strlen(v[4])};
    assert_int_equal(tf_store_decode(&doc, f, fl, v, vl, 5), TF_OK);
    tf_customer_t *c = &doc.customer;
    assert_int_equal(c->nhistory, 4);
    assert_int_equal(c->history[0].at_ms, INT64_C(1767225600000));
    assert_int_equal(c->history[0].from, TF_STAGE_PROSPECT);
    assert_int_equal(c->history[0].to, TF_STAGE_GROWTH);
    assert_string_equal(c->history[0].rule, "first_purchase");
    assert_int_equal(c->history[1].to, TF_STAGE_MATURE);
    assert_string_equal(c->history[1].rule, "a_rule_name_longer_than");
    assert_int_equal(c->history[2].at_ms, 0); /* "3|growth|mat": no rule */
    assert_int_equal(c->history[3].at_ms, 4);
    assert_string_equal(c->history[3].rule, "r");
}

/* The sparse encoding leaves out a number at 0 or -1 and text at "", "0", "-1" or
 * "-1.00", but always writes the stage. */
static void test_sparse_defaults(void **state)
{
    (void)state;
    static tf_store_doc_t doc;
    static tf_store_fields fs;
    memset(&doc, 0, sizeof doc);
    doc.customer.stage = TF_STAGE_NONE;
    doc.customer.spend = -1;
    doc.customer.margin = -2;
    doc.customer.points = 1;
    strcpy(doc.customer.level, "0");
    strcpy(doc.customer.referred_by, "-1");
    memcpy(doc.customer.currency, "-1.", 4);
    assert_int_equal(tf_store_encode(&doc, &fs), TF_OK);
    assert_string_equal(value_of(&fs, "stage"), "none");
    /* Only 0 is a number's default, -1 only a derived figure's "none", and "" the
     * only default of a text: a spend of -1, a level "0" or a referrer "-1" left
     * out would read back as 0 or "". */
    assert_string_equal(value_of(&fs, "spend"), "-1");
    assert_string_equal(value_of(&fs, "margin"), "-2");
    assert_string_equal(value_of(&fs, "points"), "1");
    assert_string_equal(value_of(&fs, "level"), "0");
    assert_string_equal(value_of(&fs, "referred_by"), "-1");
    assert_string_equal(value_of(&fs, "currency"), "-1.");
    assert_null(value_of(&fs, "mean_interval_ms"));
    assert_null(value_of(&fs, "n:call"));
    assert_null(value_of(&fs, "tags"));

    static tf_store_doc_t back;
    const char *f[TF_STORE_MAX_FIELDS];
    size_t fl[TF_STORE_MAX_FIELDS];
    for (size_t i = 0; i < fs.n; i++) {
        f[i] = fs.field[i];
        fl[i] = strlen(fs.field[i]);
    }
    assert_int_equal(tf_store_decode(&back, f, fl, fs.value, fs.vlen, fs.n), TF_OK);
    assert_int_equal(back.customer.spend, -1);
    assert_int_equal(back.customer.margin, -2);
    assert_string_equal(back.customer.level, "0");
    assert_string_equal(back.customer.referred_by, "-1");
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

/* ---- redis+cluster:// URLs ---- */

/* A single server is one seed, so callers can always walk the seeds. */
static void test_url_single_is_one_seed(void **state)
{
    (void)state;
    tf_config_redis_url u;
    char err[256] = "";
    assert_int_equal(tf_config_redis_url_parse("redis://[::1]:7000/2", &u, err, sizeof err), TF_OK);
    assert_int_equal(u.cluster, 0);
    assert_int_equal(u.nseeds, 1);
    assert_string_equal(u.seeds[0].host, "::1");
    assert_int_equal(u.seeds[0].port, 7000);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.db, 2);
}

static void test_url_cluster_seeds(void **state)
{
    (void)state;
    tf_config_redis_url u;
    char err[256] = "";
    assert_int_equal(tf_config_redis_url_parse("redis+cluster://10.0.0.1:7000,10.0.0.2:7001,node-3", &u, err,
                                               sizeof err),
                     TF_OK);
    assert_int_equal(u.cluster, 1);
    assert_int_equal(u.nseeds, 3);
    assert_string_equal(u.seeds[0].host, "10.0.0.1");
    assert_int_equal(u.seeds[0].port, 7000);
    assert_string_equal(u.seeds[1].host, "10.0.0.2");
    assert_int_equal(u.seeds[1].port, 7001);
    assert_string_equal(u.seeds[2].host, "node-3");
    assert_int_equal(u.seeds[2].port, 6379);
    /* host and port are the first seed's, for callers that know one server. */
    assert_string_equal(u.host, "10.0.0.1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");

    /* One seed, database 0 written out, the scheme in capitals. */
    assert_int_equal(tf_config_redis_url_parse("REDIS+CLUSTER://h/0", &u, err, sizeof err), TF_OK);
    assert_int_equal(u.cluster, 1);
    assert_int_equal(u.nseeds, 1);
    assert_string_equal(u.seeds[0].host, "h");
    assert_int_equal(tf_config_redis_url_parse("redis+cluster://h:7000,h:7001/", &u, err, sizeof err), TF_OK);
    assert_int_equal(u.nseeds, 2);

    /* As many seeds as allowed. */
    char url[512];
    size_t n = (size_t)snprintf(url, sizeof url, "redis+cluster://");
    for (int i = 0; i < TF_CONFIG_REDIS_SEEDS_MAX; i++)
        n += (size_t)snprintf(url + n, sizeof url - n, "%sh%d:%d", i ? "," : "", i, 7000 + i);
    assert_int_equal(tf_config_redis_url_parse(url, &u, err, sizeof err), TF_OK);
    assert_int_equal(u.nseeds, TF_CONFIG_REDIS_SEEDS_MAX);
    assert_string_equal(u.seeds[TF_CONFIG_REDIS_SEEDS_MAX - 1].host, "h15");
    assert_int_equal(u.seeds[TF_CONFIG_REDIS_SEEDS_MAX - 1].port, 7015);
}

static void test_url_cluster_credentials(void **state)
{
    (void)state;
    tf_config_redis_url u;
    char err[256] = "";
    assert_int_equal(tf_config_redis_url_parse("redis+cluster://app:p%40ss@h1:7000,h2:7001", &u, err, sizeof err),
                     TF_OK);
    assert_string_equal(u.username, "app");
    assert_string_equal(u.password, "p@ss");
    assert_int_equal(u.nseeds, 2);
    assert_string_equal(u.seeds[1].host, "h2");
    /* An unescaped '@' in the password: the user info ends at the last one. */
    assert_int_equal(tf_config_redis_url_parse("redis+cluster://:p@ss@h1,h2", &u, err, sizeof err), TF_OK);
    assert_string_equal(u.password, "p@ss");
    assert_int_equal(u.nseeds, 2);
}

static void test_url_cluster_ipv6(void **state)
{
    (void)state;
    tf_config_redis_url u;
    char err[256] = "";
    assert_int_equal(tf_config_redis_url_parse("redis+cluster://[::1]:7000,[fe80::2],10.0.0.3:7002", &u, err,
                                               sizeof err),
                     TF_OK);
    assert_int_equal(u.nseeds, 3);
    assert_string_equal(u.seeds[0].host, "::1");
    assert_int_equal(u.seeds[0].port, 7000);
    assert_string_equal(u.seeds[1].host, "fe80::2");
    assert_int_equal(u.seeds[1].port, 6379);
    assert_string_equal(u.seeds[2].host, "10.0.0.3");
}

/* Parses url, expecting TF_EINVAL with want in the message. */
static void expect_bad_msg(const char *url, const char *want)
{
    tf_config_redis_url u;
    char err[256] = "";
    if (tf_config_redis_url_parse(url, &u, err, sizeof err) != TF_EINVAL)
        fail_msg("accepted: %s", url);
    if (!strstr(err, want))
        fail_msg("%s: \"%s\" does not say \"%s\"", url, err, want);
}

static void test_url_cluster_empty_seed(void **state)
{
    (void)state;
    expect_bad_msg("redis+cluster://", "empty host");
    expect_bad_msg("redis+cluster://,h", "seed 1 is empty (the list starts with a comma)");
    expect_bad_msg("redis+cluster://h,", "seed 2 is empty (the list ends with a comma)");
    expect_bad_msg("redis+cluster://h/0,", "the database must be a number");
    expect_bad_msg("redis+cluster://:7000,h", "seed 1: empty host");
    expect_bad_msg("redis+cluster://h,[]:7000", "seed 2: empty host");
}

static void test_url_cluster_duplicate_comma(void **state)
{
    (void)state;
    expect_bad_msg("redis+cluster://h1,,h2", "seed 2 is empty (two commas in a row)");
    expect_bad_msg("redis+cluster://h1:7000,h2:7001,,", "seed 3 is empty (two commas in a row)");
}

static void test_url_cluster_too_many_seeds(void **state)
{
    (void)state;
    char url[512];
    size_t n = (size_t)snprintf(url, sizeof url, "redis+cluster://");
    for (int i = 0; i <= TF_CONFIG_REDIS_SEEDS_MAX; i++)
        n += (size_t)snprintf(url + n, sizeof url - n, "%sh%d", i ? "," : "", i);
    expect_bad_msg(url, "more than 16 seed nodes");
}

static void test_url_cluster_bad_port(void **state)
{
    (void)state;
    expect_bad_msg("redis+cluster://h:7000,h:0", "seed 2: the port must be a number from 1 to 65535");
    expect_bad_msg("redis+cluster://h:70000", "seed 1: the port must be");
    expect_bad_msg("redis+cluster://h1,h2,h3:", "seed 3: the port must be");
    expect_bad_msg("redis+cluster://h1,[::1]x", "seed 2: unexpected characters after ']'");
    expect_bad_msg("redis+cluster://h1,[::1", "seed 2: unterminated '['");
    expect_bad_msg("redis+cluster://h1,[::g]", "seed 2: invalid IPv6 address");
    expect_bad_msg("redis+cluster://h1,h$2", "seed 2: invalid character '$' in the host");
    expect_bad("redis+cluster://u:hunter2@h1,h2:99999", "hunter2");
}

static void test_url_cluster_repeated_seed(void **state)
{
    (void)state;
    expect_bad_msg("redis+cluster://h:6379,g,h", "seed 3 (h:6379) repeats seed 1");
    expect_bad_msg("redis+cluster://[::1]:7000,[::1]:7000", "seed 2 ([::1]:7000) repeats seed 1");
}

static void test_url_cluster_database(void **state)
{
    (void)state;
    expect_bad_msg("redis+cluster://h1,h2/3", "Redis Cluster has only database 0");
    expect_bad_msg("redis+cluster://h1/x", "the database must be a number");
}

static void test_url_list_needs_cluster_scheme(void **state)
{
    (void)state;
    expect_bad_msg("redis://h1,h2", "redis+cluster://");
    expect_bad_msg("rediss+cluster://h1,h2", "TLS is not supported");
    /* Both forms are named when the scheme is wrong. */
    expect_bad_msg("http://h", "redis://[[user]:password@]host[:port][/db]");
    expect_bad_msg("http://h", "redis+cluster://[[user]:password@]host[:port][,host[:port]...]");
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
        cmocka_unit_test(test_empty_customer_round_trip),
        cmocka_unit_test(test_legacy_complaint_followup),
        cmocka_unit_test(test_consent_tags_malformed),
        cmocka_unit_test(test_sparse_encoding),
        cmocka_unit_test(test_malformed_fields_skipped),
        cmocka_unit_test(test_complaint_slots_compact),
        cmocka_unit_test(test_worst_case_fits),
        cmocka_unit_test(test_unterminated_string_bounded),
        cmocka_unit_test(test_url_host_only),
        cmocka_unit_test(test_url_port_db),
        cmocka_unit_test(test_url_credentials),
        cmocka_unit_test(test_url_password_without_colon),
        cmocka_unit_test(test_url_bad_port),
        cmocka_unit_test(test_url_missing_host),
        cmocka_unit_test(test_url_bad_scheme_and_db),
        cmocka_unit_test(test_url_single_is_one_seed),
        cmocka_unit_test(test_url_cluster_seeds),
        cmocka_unit_test(test_url_cluster_credentials),
        cmocka_unit_test(test_url_cluster_ipv6),
        cmocka_unit_test(test_url_cluster_empty_seed),
        cmocka_unit_test(test_url_cluster_duplicate_comma),
        cmocka_unit_test(test_url_cluster_too_many_seeds),
        cmocka_unit_test(test_url_cluster_bad_port),
        cmocka_unit_test(test_url_cluster_repeated_seed),
        cmocka_unit_test(test_url_cluster_database),
        cmocka_unit_test(test_url_list_needs_cluster_scheme),
        cmocka_unit_test(test_watermark_name_with_nul_is_ignored),
        cmocka_unit_test(test_history_entry_is_kept_whole_or_not),
        cmocka_unit_test(test_numbers_as_printf),
        cmocka_unit_test(test_kind_and_timer_field_names),
        cmocka_unit_test(test_numbers_read_exactly),
        cmocka_unit_test(test_history_entry_splitting),
        cmocka_unit_test(test_sparse_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
