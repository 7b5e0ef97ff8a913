/* Segments: rules.segments parsed and refused (every error names its key), the pure
 * membership of a customer at a time per field and comparison at its boundaries,
 * the next time-driven change, segment.entered/exited from tf_lifecycle_apply and
 * tf_lifecycle_advance, the context every derived event carries, and membership in
 * the stored hash. */
#include "lifecycle_harness.h"

#include <unistd.h>

#include "store/store.h"

static char errbuf[8192];

/* ---- config ---- */

/* cfg with rules.segments set to json; the override's result. */
static int segments_override(tf_config_t *cfg, const char *json)
{
    char assignment[8192];
    snprintf(assignment, sizeof assignment, "rules.segments=%s", json);
    return tf_config_apply_override(cfg, assignment, errbuf, sizeof errbuf);
}

static tf_config_t *cfg_with(const char *json)
{
    tf_config_t *cfg = malloc(sizeof *cfg);
    assert_non_null(cfg);
    tf_config_defaults(cfg);
    if (segments_override(cfg, json) != 0)
        fail_msg("%s", errbuf);
    return cfg;
}

/* rules (defaults) with the segments of json. */
static void rules_with(tf_config_rules *r, const char *json)
{
    tf_config_t *cfg = cfg_with(json);
    *r = cfg->rules;
    free(cfg);
}

static void refused(const char *json, const char *want)
{
    tf_config_t *cfg = malloc(sizeof *cfg);
    assert_non_null(cfg);
    tf_config_defaults(cfg);
    int rc = segments_override(cfg, json);
    if (rc == 0 || !strstr(errbuf, want))
        fail_msg("%s: got \"%s\", want \"%s\"", json, rc ? errbuf : "(accepted)", want);
    assert_int_equal(cfg->rules.nsegments, 0); /* all or nothing */
    free(cfg);
}

#define EXAMPLE                                                                                                 \
    "[{\"name\": \"vip\", \"when\": [{\"field\": \"tier\", \"in\": [\"key\", \"potential\"]},"                 \
    " {\"field\": \"spend\", \"min\": 500000}]},"                                                               \
    " {\"name\": \"lapsing\", \"when\": [{\"field\": \"days_since_purchase\", \"min\": 60, \"max\": 120}]}]"

static void test_config_default_none(void **state)
{
    (void)state;
    tf_config_t *cfg = malloc(sizeof *cfg);
    assert_non_null(cfg);
    tf_config_defaults(cfg);
    assert_int_equal(cfg->rules.nsegments, 0);
    char *json = tf_config_to_json(cfg, 0);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"segments\": []"));
    free(json);
    free(cfg);
}

static void test_config_example(void **state)
{
    (void)state;
    tf_config_t *cfg = cfg_with(EXAMPLE);
    const tf_config_rules *r = &cfg->rules;
    assert_int_equal(r->nsegments, 2);
    assert_string_equal(r->segments[0].name, "vip");
    assert_int_equal(r->segments[0].nwhen, 2);
    assert_int_equal(r->segments[0].when[0].field, TF_SEG_TIER);
    assert_int_equal(r->segments[0].when[0].in_mask,
                     (1u << tf_vocab_index(TF_VOCAB_TIER, "key", 3)) |
                         (1u << tf_vocab_index(TF_VOCAB_TIER, "potential", 9)));
    assert_int_equal(r->segments[0].when[1].field, TF_SEG_SPEND);
    assert_true(r->segments[0].when[1].has_min && !r->segments[0].when[1].has_max);
    assert_int_equal(r->segments[0].when[1].min, 500000);
    const tf_rules_predicate *p = &r->segments[1].when[0];
    assert_int_equal(p->field, TF_SEG_DAYS_SINCE_PURCHASE);
    assert_true(p->has_min && p->has_max);
    assert_int_equal(p->min, 60);
    assert_int_equal(p->max, 120);
    assert_int_equal(tf_config_validate(cfg, errbuf, sizeof errbuf), 0);

    /* Written back and read again: the same parsed value. */
    char *json = tf_config_to_json(cfg, 0);
    assert_non_null(json);
    char path[] = "/tmp/tf_test_segments_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
    tf_config_t *again = malloc(sizeof *again);
    assert_non_null(again);
    tf_config_defaults(again);
    if (tf_config_load_file(again, path, errbuf, sizeof errbuf) != 0)
        fail_msg("%s", errbuf);
    unlink(path);
    assert_int_equal(again->rules.nsegments, 2);
    assert_memory_equal(again->rules.segments, cfg->rules.segments, sizeof cfg->rules.segments);
    free(json);
    free(again);
    free(cfg);
}

static void test_config_every_field(void **state)
{
    (void)state;
    tf_config_t *cfg = cfg_with(
        "[{\"name\": \"all-of-it_1\", \"when\": ["
        "{\"field\": \"stage\", \"in\": [\"growth\", \"mature\"]}, {\"field\": \"level\", \"in\": [\"gold\"]},"
        "{\"field\": \"rfm_r\", \"min\": 4}, {\"field\": \"tenure_days\", \"max\": 365},"
        "{\"field\": \"nps\", \"min\": 9}, {\"field\": \"tags\", \"has\": \"Wholesale buyer\"},"
        "{\"field\": \"tags\", \"lacks\": \"staff\"}, {\"field\": \"churn_risk\", \"max\": 30}]},"
        "{\"name\": \"b\", \"when\": [{\"field\": \"rfm_f\", \"min\": 1}, {\"field\": \"rfm_m\", \"max\": 5},"
        "{\"field\": \"purchases\", \"min\": 2}, {\"field\": \"satisfaction\", \"min\": 90},"
        "{\"field\": \"open_complaints\", \"max\": 0}]}]");
    assert_int_equal(cfg->rules.nsegments, 2);
    assert_int_equal(cfg->rules.segments[0].nwhen, 8);
    assert_string_equal(cfg->rules.segments[0].when[1].in[0], "gold");
    assert_string_equal(cfg->rules.segments[0].when[5].tag, "Wholesale buyer");
    assert_int_equal(cfg->rules.segments[0].when[5].lacks, 0);
    assert_int_equal(cfg->rules.segments[0].when[6].lacks, 1);
    assert_int_equal(tf_config_validate(cfg, errbuf, sizeof errbuf), 0);
    free(cfg);
}

static void test_config_errors(void **state)
{
    (void)state;
    refused("{}", "rules.segments: expected an array of segments");
    refused("[{\"name\": \"a\", \"when\": [{\"field\": \"spend\", \"min\": 1}]},"
            " {\"name\": \"b\", \"when\": [{\"field\": \"x\", \"min\": 1}]}]",
            "rules.segments[1].when[0].field: unknown field \"x\"");
    refused("[{\"name\": \"a\", \"when\": [{\"field\": \"spend\", \"min\": 1}]},"
            " {\"name\": \"a\", \"when\": [{\"field\": \"spend\", \"min\": 2}]}]",
            "rules.segments[1].name: \"a\" is also rules.segments[0].name");
    refused("[{\"name\": \"a\", \"when\": [{\"field\": \"spend\", \"min\": 10, \"max\": 9}]}]",
            "rules.segments[0].when[0]: min 10 is above max 9");
    refused("[{\"name\": \"a\", \"when\": [{\"field\": \"stage\", \"in\": [\"growth\", \"lapsed\"]}]}]",
            "rules.segments[0].when[0].in[1]: unknown stage \"lapsed\"");
    refused("[{\"name\": \"a\", \"when\": [{\"field\": \"tier\", \"in\": [\"gold\"]}]}]",
            "rules.segments[0].when[0].in[0]: unknown tier \"gold\"");
    refused("[{\"name\": \"a\", \"when\": [{\"field\": \"stage\", \"in\": []}]}]",
            "rules.segments[0].when[0].in: expected an array of 1 to 8 names");
    refused("[{\"name\": \"VIP\", \"when\": [{\"field\": \"spend\", \"min\": 1}]}]",
            "rules.segments[0].name: expected a name of 1-31 characters of a-z, 0-9, _ and -");
    refused("[{\"name\": \"abcdefghijklmnopqrstuvwxyz0123456\", \"when\": [{\"field\": \"spend\", \"min\": 1}]}]",
            "rules.segments[0].name: expected a name");
    refused("[{\"name\": \"a\", \"when\": [{\"field\": \"spend\"}]}]", "rules.segments[0].when[0]: give min, max or both");
    refused("[{\"name\": \"a\", \"when\": [{\"field\": \"spend\", \"in\": [\"x\"]}]}]",
            "rules.segments[0].when[0].in: unknown key (field spend takes min/max)");
    refused("[{\"name\": \"a\", \"when\": [{\"field\": \"spend\", \"min\": 1.5}]}]",
            "rules.segments[0].when[0].min: expected an integer");
    refused("[{\"name\": \"a\", \"when\": [{\"field\": \"tags\", \"has\": \"x\", \"lacks\": \"y\"}]}]",
            "rules.segments[0].when[0]: give exactly one of has and lacks");
    refused("[{\"name\": \"a\", \"when\": [{\"field\": \"tags\", \"has\": \"a,b\"}]}]",
            "rules.segments[0].when[0].has: expected a tag, 1-32 bytes without control characters or commas");
    refused("[{\"name\": \"a\", \"when\": []}]", "rules.segments[0].when: expected an array of 1 to 8 predicates");
    refused("[{\"name\": \"a\", \"when\": [{\"field\": \"spend\", \"min\": 1}], \"where\": 1}]",
            "rules.segments[0].where: unknown key (a segment takes name and when)");
    refused("[\"vip\"]", "rules.segments[0]: expected an object");

    char many[8192];
    size_t n = (size_t)snprintf(many, sizeof many, "[");
    for (int i = 0; i < TF_RULES_MAX_SEGMENTS + 1; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%s{\"name\": \"s%d\", \"when\": [{\"field\": \"spend\", \"min\": 1}]}",
                              i ? "," : "", i);
    snprintf(many + n, sizeof many - n, "]");
    refused(many, "rules.segments: 33 segments, at most 32");

    /* Every name must fit the "segments" figure together. */
    n = (size_t)snprintf(many, sizeof many, "[");
    for (int i = 0; i < 6; i++)
        n += (size_t)snprintf(many + n, sizeof many - n,
                              "%s{\"name\": \"long_segment_name_number_%d\", \"when\": [{\"field\": \"spend\", \"min\": 1}]}",
                              i ? "," : "", i);
    snprintf(many + n, sizeof many - n, "]");
    refused(many, "rules.segments: the names take 161 bytes joined with commas, at most 135");
}

/* A level is checked against rules.loyalty.levels when the whole config is. */
static void test_config_levels_at_validate(void **state)
{
    (void)state;
    tf_config_t *cfg = cfg_with("[{\"name\": \"a\", \"when\": [{\"field\": \"level\", \"in\": [\"diamond\"]}]}]");
    assert_int_equal(tf_config_validate(cfg, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_non_null(strstr(errbuf, "rules.segments[0].when[0].in[0]: unknown level \"diamond\""));
    assert_int_equal(tf_config_apply_override(cfg, "rules.loyalty.levels=member:0,diamond:100", errbuf, sizeof errbuf),
                     0);
    assert_int_equal(tf_config_validate(cfg, errbuf, sizeof errbuf), 0);
    /* A config built in code is checked like a loaded one. */
    cfg->rules.segments[0].when[0].has_min = 1;
    cfg->rules.segments[0].when[0].field = TF_SEG_SPEND;
    cfg->rules.segments[0].when[0].min = 5;
    cfg->rules.segments[0].when[0].has_max = 1;
    cfg->rules.segments[0].when[0].max = 4;
    assert_int_equal(tf_config_validate(cfg, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_non_null(strstr(errbuf, "rules.segments[0].when[0]: min 5 is above max 4"));
    free(cfg);
}

/* ---- pure membership, per field and comparison ---- */

static tf_config_rules R;

/* A buyer: first purchase T0 - 100 days, last T0, 3 purchases. */
static tf_customer_t buyer(void)
{
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    c.stage = TF_STAGE_GROWTH;
    c.tier = TF_TIER_REGULAR;
    c.purchases = 3;
    c.first_purchase_ms = T0 - 100 * DAY;
    c.last_purchase_ms = T0;
    c.spend = 30000;
    c.rfm_r = 5, c.rfm_f = 2, c.rfm_m = 1;
    snprintf(c.level, sizeof c.level, "member");
    c.clock_ms = T0;
    return c;
}

static int holds(const char *json, const tf_customer_t *c, int64_t t)
{
    rules_with(&R, json);
    return tf_lc_segments_at(&R, c, t) == 1;
}

#define ONE(pred) "[{\"name\": \"s\", \"when\": [" pred "]}]"

static void test_in_stage_tier_level(void **state)
{
    (void)state;
    tf_customer_t c = buyer();
    assert_true(holds(ONE("{\"field\": \"stage\", \"in\": [\"growth\"]}"), &c, T0));
    assert_false(holds(ONE("{\"field\": \"stage\", \"in\": [\"mature\", \"decline\"]}"), &c, T0));
    assert_true(holds(ONE("{\"field\": \"tier\", \"in\": [\"regular\", \"key\"]}"), &c, T0));
    c.tier = TF_TIER_NONE;
    assert_true(holds(ONE("{\"field\": \"tier\", \"in\": [\"none\"]}"), &c, T0));
    assert_false(holds(ONE("{\"field\": \"tier\", \"in\": [\"regular\"]}"), &c, T0));
    assert_true(holds(ONE("{\"field\": \"level\", \"in\": [\"silver\", \"member\"]}"), &c, T0));
    assert_false(holds(ONE("{\"field\": \"level\", \"in\": [\"silver\"]}"), &c, T0));
    c.level[0] = '\0'; /* before the first purchase */
    assert_false(holds(ONE("{\"field\": \"level\", \"in\": [\"member\"]}"), &c, T0));
}

typedef struct {
    const char *field;
    void (*set)(tf_customer_t *c, int64_t v);
} number_case;

static void set_rfm_r(tf_customer_t *c, int64_t v) { c->rfm_r = (int)v; }
static void set_rfm_f(tf_customer_t *c, int64_t v) { c->rfm_f = (int)v; }
static void set_rfm_m(tf_customer_t *c, int64_t v) { c->rfm_m = (int)v; }
static void set_purchases(tf_customer_t *c, int64_t v) { c->purchases = v; }
static void set_open(tf_customer_t *c, int64_t v) { c->open_complaints = v; }
static void set_risk(tf_customer_t *c, int64_t v) { c->risk = v; }
/* Net spend: 1000 refunded of spend v + 1000. */
static void set_spend(tf_customer_t *c, int64_t v) { c->spend = v + 1000, c->refunded = 1000; }
/* min and max are inclusive, each alone and both. */
/* Satisfaction S = B / A x 100 with A = 100. */
static void set_sat(tf_customer_t *c, int64_t v)
{
    c->surveys_sat = 1, c->sat_expectation_sum = 100, c->sat_perception_sum = (double)v;
}
/* A mean NPS answer of v. */
static void set_nps(tf_customer_t *c, int64_t v) { c->nps_count = 2, c->nps_sum = 2 * v; }

static void check_number(const number_case *k, int64_t lo, int64_t hi)
{
    char min_only[256], max_only[256], both[256];
    snprintf(min_only, sizeof min_only, ONE("{\"field\": \"%s\", \"min\": %lld}"), k->field, (long long)lo);
    snprintf(max_only, sizeof max_only, ONE("{\"field\": \"%s\", \"max\": %lld}"), k->field, (long long)hi);
    snprintf(both, sizeof both, ONE("{\"field\": \"%s\", \"min\": %lld, \"max\": %lld}"), k->field, (long long)lo,
             (long long)hi);
    for (int64_t v = lo - 1; v <= hi + 1; v++) {
        tf_customer_t c = buyer();
        k->set(&c, v);
        if (holds(min_only, &c, T0) != (v >= lo))
            fail_msg("%s = %lld, min %lld", k->field, (long long)v, (long long)lo);
        if (holds(max_only, &c, T0) != (v <= hi))
            fail_msg("%s = %lld, max %lld", k->field, (long long)v, (long long)hi);
        if (holds(both, &c, T0) != (v >= lo && v <= hi))
            fail_msg("%s = %lld, min %lld max %lld", k->field, (long long)v, (long long)lo, (long long)hi);
    }
}

static void test_numbers(void **state)
{
    (void)state;
    static const number_case cases[] = {
        {"rfm_r", set_rfm_r}, {"rfm_f", set_rfm_f}, {"rfm_m", set_rfm_m},
        {"spend", set_spend}, {"purchases", set_purchases}, {"open_complaints", set_open},
        {"churn_risk", set_risk}, {"satisfaction", set_sat}, {"nps", set_nps},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_number(&cases[i], 2, 4);
    /* A fractional figure against whole bounds. */
    tf_customer_t c = buyer();
    c.nps_count = 2, c.nps_sum = 17; /* 8.5 */
    assert_true(holds(ONE("{\"field\": \"nps\", \"min\": 8}"), &c, T0));
    assert_false(holds(ONE("{\"field\": \"nps\", \"min\": 9}"), &c, T0));
    assert_false(holds(ONE("{\"field\": \"nps\", \"max\": 8}"), &c, T0));
}

/* A predicate on a figure the customer does not have does not hold, whatever its bounds. */
static void test_missing_figures(void **state)
{
    (void)state;
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    c.stage = TF_STAGE_PROSPECT;
    c.clock_ms = T0;
    static const char *const absent[] = {"rfm_r", "rfm_f", "rfm_m", "days_since_purchase", "tenure_days",
                                         "satisfaction", "nps"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        char json[256];
        snprintf(json, sizeof json, ONE("{\"field\": \"%s\", \"max\": 1000}"), absent[i]);
        if (holds(json, &c, T0))
            fail_msg("%s holds for a customer without it", absent[i]);
        assert_int_equal(tf_lc_segments_next_change(&R, &c, T0), 0);
    }
    /* The counts are 0, and 0 is a value. */
    assert_true(holds(ONE("{\"field\": \"spend\", \"max\": 0}"), &c, T0));
    assert_true(holds(ONE("{\"field\": \"purchases\", \"max\": 0}"), &c, T0));
    assert_true(holds(ONE("{\"field\": \"open_complaints\", \"max\": 0}"), &c, T0));
    assert_true(holds(ONE("{\"field\": \"churn_risk\", \"max\": 0}"), &c, T0));
}

static void test_tags(void **state)
{
    (void)state;
    tf_customer_t c = buyer();
    assert_false(holds(ONE("{\"field\": \"tags\", \"has\": \"vip\"}"), &c, T0));
    assert_true(holds(ONE("{\"field\": \"tags\", \"lacks\": \"vip\"}"), &c, T0));
    c.ntags = 2;
    snprintf(c.tags[0], sizeof c.tags[0], "wholesale");
    snprintf(c.tags[1], sizeof c.tags[1], "vip");
    assert_true(holds(ONE("{\"field\": \"tags\", \"has\": \"vip\"}"), &c, T0));
    assert_false(holds(ONE("{\"field\": \"tags\", \"lacks\": \"vip\"}"), &c, T0));
    assert_false(holds(ONE("{\"field\": \"tags\", \"has\": \"VIP\"}"), &c, T0)); /* exact */
    assert_true(holds(ONE("{\"field\": \"tags\", \"has\": \"vip\"}, {\"field\": \"tags\", \"lacks\": \"staff\"}"), &c,
                      T0));
}

/* days_since_purchase and tenure_days: whole days, so max 30 holds until the last
 * purchase + 31 days and min 60 from + 60 days; the next change is that moment. */
static void check_days(const char *field, int64_t from)
{
    tf_customer_t c = buyer();
    char json[256];
    snprintf(json, sizeof json, ONE("{\"field\": \"%s\", \"max\": 30}"), field);
    assert_true(holds(json, &c, from));
    assert_true(holds(json, &c, from + 31 * DAY - 1));
    assert_false(holds(json, &c, from + 31 * DAY));
    assert_int_equal(tf_lc_segments_next_change(&R, &c, from), from + 31 * DAY);
    assert_int_equal(tf_lc_segments_next_change(&R, &c, from + 31 * DAY - 1), from + 31 * DAY);
    assert_int_equal(tf_lc_segments_next_change(&R, &c, from + 31 * DAY), 0);

    snprintf(json, sizeof json, ONE("{\"field\": \"%s\", \"min\": 60}"), field);
    assert_false(holds(json, &c, from + 60 * DAY - 1));
    assert_true(holds(json, &c, from + 60 * DAY));
    assert_true(holds(json, &c, from + 6000 * DAY));
    assert_int_equal(tf_lc_segments_next_change(&R, &c, from), from + 60 * DAY);
    assert_int_equal(tf_lc_segments_next_change(&R, &c, from + 60 * DAY), 0);

    snprintf(json, sizeof json, ONE("{\"field\": \"%s\", \"min\": 60, \"max\": 120}"), field);
    assert_false(holds(json, &c, from + 60 * DAY - 1));
    assert_true(holds(json, &c, from + 60 * DAY));
    assert_true(holds(json, &c, from + 121 * DAY - 1));
    assert_false(holds(json, &c, from + 121 * DAY));
    assert_int_equal(tf_lc_segments_next_change(&R, &c, from + DAY), from + 60 * DAY);
    assert_int_equal(tf_lc_segments_next_change(&R, &c, from + 60 * DAY), from + 121 * DAY);
    assert_int_equal(tf_lc_segments_next_change(&R, &c, from + 121 * DAY), 0);
}

static void test_days_since_purchase(void **state)
{
    (void)state;
    tf_customer_t c = buyer();
    check_days("days_since_purchase", c.last_purchase_ms);
}

static void test_tenure_days(void **state)
{
    (void)state;
    tf_customer_t c = buyer();
    check_days("tenure_days", c.first_purchase_ms);
}

/* Time moves membership only where the rest holds; two segments, the earlier change. */
static void test_next_change(void **state)
{
    (void)state;
    tf_customer_t c = buyer();
    rules_with(&R, "[{\"name\": \"a\", \"when\": [{\"field\": \"days_since_purchase\", \"max\": 30},"
                   " {\"field\": \"stage\", \"in\": [\"mature\"]}]},"
                   " {\"name\": \"b\", \"when\": [{\"field\": \"days_since_purchase\", \"min\": 45}]},"
                   " {\"name\": \"c\", \"when\": [{\"field\": \"tenure_days\", \"min\": 10, \"max\": 5000},"
                   " {\"field\": \"days_since_purchase\", \"max\": 4}]},"
                   " {\"name\": \"d\", \"when\": [{\"field\": \"days_since_purchase\", \"min\": 9},"
                   " {\"field\": \"days_since_purchase\", \"max\": 3}]}]");
    /* a: not mature; b: from +45 days; c: tenure fine, leaves at +5 days; d: never. */
    assert_int_equal(tf_lc_segments_at(&R, &c, T0), 1u << 2);
    assert_int_equal(tf_lc_segments_next_change(&R, &c, T0), T0 + 5 * DAY);
    assert_int_equal(tf_lc_segments_next_change(&R, &c, T0 + 5 * DAY), T0 + 45 * DAY);
    assert_int_equal(tf_lc_segments_at(&R, &c, T0 + 45 * DAY), 1u << 1);
    assert_int_equal(tf_lc_segments_next_change(&R, &c, T0 + 45 * DAY), 0);
    c.stage = TF_STAGE_MATURE;
    assert_int_equal(tf_lc_segments_at(&R, &c, T0), (1u << 0) | (1u << 2));
    assert_int_equal(tf_lc_segments_next_change(&R, &c, T0 + 6 * DAY), T0 + 31 * DAY);
}

static void test_fingerprint(void **state)
{
    (void)state;
    tf_config_rules a, b;
    rules_with(&a, "[]");
    assert_int_equal(tf_lc_segments_fingerprint(&a), 0);
    rules_with(&a, EXAMPLE);
    rules_with(&b, EXAMPLE);
    assert_true(tf_lc_segments_fingerprint(&a) > 0);
    assert_int_equal(tf_lc_segments_fingerprint(&a), tf_lc_segments_fingerprint(&b));
    b.segments[1].when[0].max = 121;
    assert_true(tf_lc_segments_fingerprint(&a) != tf_lc_segments_fingerprint(&b));
    rules_with(&b, "[{\"name\": \"lapsing\", \"when\": [{\"field\": \"days_since_purchase\", \"min\": 60, \"max\": 120}]},"
                   " {\"name\": \"vip\", \"when\": [{\"field\": \"tier\", \"in\": [\"key\", \"potential\"]},"
                   " {\"field\": \"spend\", \"min\": 500000}]}]");
    assert_true(tf_lc_segments_fingerprint(&a) != tf_lc_segments_fingerprint(&b)); /* the order is the bits' */
}

/* ---- entered and exited, from the rules ---- */

#define TWO                                                                                                     \
    "[{\"name\": \"recent_buyer\", \"when\": [{\"field\": \"days_since_purchase\", \"max\": 30}]},"             \
    " {\"name\": \"big_spender\", \"when\": [{\"field\": \"spend\", \"min\": 100000}]}]"

static harness *h_two(void)
{
    harness *h = h_new();
    rules_with(&h->r, TWO);
    h->r.nfestivals = 0;
    return h;
}

static const tf_derived_t *segment_event(harness *h, tf_derived_type type, const char *name, int64_t t, int index)
{
    const tf_derived_t *d = NEXT(h, type, "segment_rules", t);
    assert_string_equal(fig_s(d, "segment"), name);
    assert_int_equal(d->ctx.segment, index);
    return d;
}

static void test_entered_exited(void **state)
{
    (void)state;
    harness *h = h_two();
    touch(h, TF_KIND_WEB_VISIT, T0);
    CARE(h, "welcome", "welcome", T0);
    assert_int_equal(h->log[0].ctx.segments, 0);
    assert_string_equal(fig_s(&h->log[0], "segments"), "");

    /* A first purchase: recent, not yet big. */
    buy(h, T0 + DAY, 60000);
    STAGE(h, "first_purchase", T0 + DAY, "prospect", "growth", "purchase");
    const tf_derived_t *d = segment_event(h, TF_DERIVED_SEGMENT_ENTERED, "recent_buyer", T0 + DAY, 0);
    assert_int_equal(fig_i(d, "days_since_purchase"), 0);
    assert_int_equal(d->ctx.segments, 1u << 0);
    assert_string_equal(fig_s(d, "segments"), "recent_buyer");
    /* Every event of the purchase carries the membership after the rules ran. */
    assert_int_equal(h->log[1].ctx.segments, 1u << 0);
    assert_string_equal(fig_s(&h->log[1], "segments"), "recent_buyer");
    assert_int_equal(h->log[1].ctx.segment, -1);
    NOTHING(h);

    /* The second makes it big: entered, recent_buyer stays. */
    buy(h, T0 + 10 * DAY, 50000);
    skip_followups(h);
    NEXT(h, TF_DERIVED_LOYALTY_LEVEL_CHANGED, "points", T0 + 10 * DAY);
    d = segment_event(h, TF_DERIVED_SEGMENT_ENTERED, "big_spender", T0 + 10 * DAY, 1);
    assert_int_equal(fig_i(d, "spend"), 110000);
    assert_int_equal(d->ctx.segments, 3u);
    assert_string_equal(fig_s(d, "segments"), "recent_buyer,big_spender");
    NOTHING(h);
    assert_int_equal(h->c.nsegments, 2);
    assert_int_equal(h->c.due[TF_TIMER_SEGMENT], T0 + 10 * DAY + 31 * DAY);

    /* Time alone: out of recent_buyer exactly 31 days after the last purchase. */
    run(h, T0 + 60 * DAY);
    const tf_derived_t *ex[4];
    size_t nex = 0;
    for (; h->cur < h->n; h->cur++)
        if (h->log[h->cur].type == TF_DERIVED_SEGMENT_EXITED && nex < 4)
            ex[nex++] = &h->log[h->cur];
    assert_int_equal(nex, 1);
    assert_int_equal(ex[0]->time_ms, T0 + 41 * DAY);
    assert_string_equal(ex[0]->rule, "segment_rules");
    assert_string_equal(fig_s(ex[0], "segment"), "recent_buyer");
    assert_int_equal(fig_i(ex[0], "days_since_purchase"), 31);
    assert_int_equal(ex[0]->ctx.segment, 0);
    assert_int_equal(ex[0]->ctx.segments, 1u << 1);
    assert_string_equal(fig_s(ex[0], "segments"), "big_spender");
    assert_int_equal(h->c.due[TF_TIMER_SEGMENT], 0);

    /* A refund takes the net spend under the bound: exited on the refund. */
    refund(h, T0 + 61 * DAY, 20000, "CNY");
    NEXT(h, TF_DERIVED_LOYALTY_LEVEL_CHANGED, "points", T0 + 61 * DAY);
    d = segment_event(h, TF_DERIVED_SEGMENT_EXITED, "big_spender", T0 + 61 * DAY, 1);
    assert_int_equal(fig_i(d, "spend"), 90000);
    assert_int_equal(d->ctx.segments, 0);
    NOTHING(h);

    /* Back in recent_buyer on the next purchase; the ids of one cause differ per segment. */
    buy(h, T0 + 62 * DAY, 30000);
    const tf_derived_t *in[4];
    size_t nin = take(h, TF_DERIVED_SEGMENT_ENTERED, in, 4);
    assert_int_equal(nin, 2);
    assert_string_equal(fig_s(in[0], "segment"), "recent_buyer");
    assert_string_equal(fig_s(in[1], "segment"), "big_spender");
    assert_string_not_equal(in[0]->id, in[1]->id);
    teardown_h(h);
}

/* The exit by time comes as the timer fires, on its due time, whatever the
 * granularity of the calls that advance the clock; and it is deterministic. */
static void test_exit_by_time_deterministic(void **state)
{
    (void)state;
    char ids[2][TF_ID_LEN];
    for (int run_no = 0; run_no < 2; run_no++) {
        harness *h = h_two();
        buy(h, T0, 1000);
        if (run_no == 0) {
            run(h, T0 + 100 * DAY);
        } else {
            for (int64_t t = T0; t <= T0 + 100 * DAY; t += 7 * HOUR)
                run(h, t);
            run(h, T0 + 100 * DAY);
        }
        const tf_derived_t *ex[2];
        size_t n = take(h, TF_DERIVED_SEGMENT_EXITED, ex, 2);
        assert_int_equal(n, 1);
        assert_int_equal(ex[0]->time_ms, T0 + 31 * DAY);
        snprintf(ids[run_no], sizeof ids[run_no], "%s", ex[0]->id);
        teardown_h(h);
    }
    assert_string_equal(ids[0], ids[1]);
}

/* Entering by time too: "lapsing" from 60 days after the last purchase to 120,
 * "veteran" from a year after the first; a purchase in between moves the window. */
static void test_enter_by_time(void **state)
{
    (void)state;
    harness *h = h_new();
    rules_with(&h->r, "[{\"name\": \"lapsing\", \"when\": [{\"field\": \"days_since_purchase\", \"min\": 60, \"max\": 120}]},"
                      " {\"name\": \"veteran\", \"when\": [{\"field\": \"tenure_days\", \"min\": 365}]}]");
    h->r.nfestivals = 0;
    buy(h, T0, 1000);
    run(h, T0 + 100 * DAY);
    buy(h, T0 + 100 * DAY, 1000); /* lapsing, left by the purchase */
    run(h, T0 + 500 * DAY);
    const tf_derived_t *in[8], *ex[8];
    h->cur = 0;
    size_t nin = take(h, TF_DERIVED_SEGMENT_ENTERED, in, 8);
    h->cur = 0;
    size_t nex = take(h, TF_DERIVED_SEGMENT_EXITED, ex, 8);
    assert_int_equal(nin, 3);
    assert_string_equal(fig_s(in[0], "segment"), "lapsing");
    assert_int_equal(in[0]->time_ms, T0 + 60 * DAY);
    assert_int_equal(fig_i(in[0], "days_since_purchase"), 60);
    assert_string_equal(fig_s(in[1], "segment"), "lapsing");
    assert_int_equal(in[1]->time_ms, T0 + 160 * DAY);
    assert_string_equal(fig_s(in[2], "segment"), "veteran");
    assert_int_equal(in[2]->time_ms, T0 + 365 * DAY);
    assert_int_equal(fig_i(in[2], "tenure_days"), 365);
    assert_int_equal(nex, 2);
    assert_int_equal(ex[0]->time_ms, T0 + 100 * DAY); /* the purchase: 0 days since */
    assert_int_equal(fig_i(ex[0], "days_since_purchase"), 0);
    assert_int_equal(ex[1]->time_ms, T0 + 221 * DAY);
    assert_int_equal(fig_i(ex[1], "days_since_purchase"), 121);
    assert_int_equal(h->c.due[TF_TIMER_SEGMENT], 0); /* veteran for good, lapsing over */
    teardown_h(h);
}

/* A config whose segments changed re-judges membership once, silently. */
static void test_config_change_is_silent(void **state)
{
    (void)state;
    harness *h = h_two();
    buy(h, T0, 200000);
    assert_int_equal(count(h, TF_DERIVED_SEGMENT_ENTERED, NULL), 2);
    h->cur = h->n;
    /* Reordered and one renamed: no event for what only the config changed. */
    rules_with(&h->r, "[{\"name\": \"big\", \"when\": [{\"field\": \"spend\", \"min\": 100000}]},"
                      " {\"name\": \"recent_buyer\", \"when\": [{\"field\": \"days_since_purchase\", \"max\": 30}]}]");
    h->r.nfestivals = 0;
    touch(h, TF_KIND_WEB_VISIT, T0 + DAY);
    assert_int_equal(count(h, TF_DERIVED_SEGMENT_ENTERED, NULL), 2);
    assert_int_equal(count(h, TF_DERIVED_SEGMENT_EXITED, NULL), 0);
    assert_int_equal(h->c.nsegments, 2);
    assert_string_equal(h->c.segments[0], "big");
    assert_string_equal(h->c.segments[1], "recent_buyer");
    assert_int_equal(h->c.segments_fp, tf_lc_segments_fingerprint(&h->r));
    /* Changes after that are events again, with the new bits. */
    run(h, T0 + 40 * DAY);
    const tf_derived_t *ex[2];
    assert_int_equal(take(h, TF_DERIVED_SEGMENT_EXITED, ex, 2), 1);
    assert_int_equal(ex[0]->ctx.segment, 1);
    assert_int_equal(ex[0]->ctx.segments, 1u << 0);
    /* Segments removed from the config: membership goes, silently too. */
    h->r.nsegments = 0;
    touch(h, TF_KIND_WEB_VISIT, T0 + 41 * DAY);
    assert_int_equal(count(h, TF_DERIVED_SEGMENT_EXITED, NULL), 1);
    assert_int_equal(h->c.nsegments, 0);
    assert_int_equal(h->c.segments_fp, 0);
    teardown_h(h);

    /* Without segments derived events read as before them: no "segments" figure. */
    h = h_new();
    buy(h, T0, 200000);
    run(h, T0 + 400 * DAY);
    assert_true(h->n > 3);
    for (size_t i = 0; i < h->n; i++) {
        assert_null(fig(&h->log[i], "segments"));
        assert_int_equal(h->log[i].ctx.segments, 0);
        assert_int_equal(h->log[i].ctx.segment, -1);
    }
    assert_int_equal(h->c.due[TF_TIMER_SEGMENT], 0);
    teardown_h(h);
}

/* Every segment changing at once still fits one touchpoint's events. */
static void test_all_segments_at_once(void **state)
{
    (void)state;
    harness *h = h_new();
    char json[8192];
    size_t n = (size_t)snprintf(json, sizeof json, "[");
    for (int i = 0; i < TF_RULES_MAX_SEGMENTS; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s{\"name\": \"s%d\", \"when\": [{\"field\": \"purchases\", \"min\": 1}]}",
                              i ? "," : "", i);
    snprintf(json + n, sizeof json - n, "]");
    rules_with(&h->r, json);
    h->r.nfestivals = 0;
    touch(h, TF_KIND_WEB_VISIT, T0);
    h->cur = h->n;
    tf_event_t ev = ev_buy(h, T0 + HOUR, 1000, NO_MARGIN, "CNY");
    size_t k = step(h, &ev);
    assert_true(k <= TF_LIFECYCLE_MAX_DERIVED);
    assert_int_equal(count(h, TF_DERIVED_SEGMENT_ENTERED, NULL), TF_RULES_MAX_SEGMENTS);
    assert_int_equal(h->log[h->n - 1].ctx.segments, UINT32_MAX);
    teardown_h(h);
}

/* Tags and several fields: the figures that decided, each once. */
static void test_figures(void **state)
{
    (void)state;
    harness *h = h_new();
    rules_with(&h->r, "[{\"name\": \"happy_vip\", \"when\": [{\"field\": \"tags\", \"has\": \"vip\"},"
                      " {\"field\": \"satisfaction\", \"min\": 90}, {\"field\": \"nps\", \"min\": 9},"
                      " {\"field\": \"stage\", \"in\": [\"prospect\"]}, {\"field\": \"tags\", \"lacks\": \"staff\"}]}]");
    h->r.nfestivals = 0;
    tf_event_t ev = ev_new(h, TF_KIND_PROFILE, T0);
    ev.has_tags = 1;
    ev.ntags = 1;
    snprintf(ev.tags[0], sizeof ev.tags[0], "vip");
    step(h, &ev);
    survey(h, T0 + HOUR, 8, 9, 10);
    const tf_derived_t *in[2];
    assert_int_equal(take(h, TF_DERIVED_SEGMENT_ENTERED, in, 2), 1);
    assert_string_equal(fig_s(in[0], "tags"), "vip");
    assert_near(fig_n(in[0], "satisfaction"), 112.5);
    assert_near(fig_n(in[0], "nps"), 10);
    assert_string_equal(fig_s(in[0], "stage"), "prospect");
    assert_int_equal(in[0]->time_ms, T0 + HOUR);
    teardown_h(h);
}

/* ---- the stored hash ---- */

static void decode_fields(tf_store_doc_t *doc, const tf_store_fields *fs)
{
    size_t fl[TF_STORE_MAX_FIELDS];
    for (size_t i = 0; i < fs->n; i++)
        fl[i] = strlen(fs->field[i]);
    assert_int_equal(tf_store_decode(doc, fs->field, fl, fs->value, fs->vlen, fs->n), TF_OK);
}

static void test_codec(void **state)
{
    (void)state;
    static tf_store_doc_t doc, back;
    static tf_store_fields fs;
    memset(&doc, 0, sizeof doc);
    doc.customer = buyer();
    doc.customer.nsegments = 2;
    snprintf(doc.customer.segments[0], sizeof doc.customer.segments[0], "recent_buyer");
    snprintf(doc.customer.segments[1], sizeof doc.customer.segments[1], "big-spender_2");
    doc.customer.segments_fp = INT64_C(1234567890123);
    doc.customer.due[TF_TIMER_SEGMENT] = T0 + 31 * DAY;
    assert_int_equal(tf_store_encode(&doc, &fs), TF_OK);
    int found = 0;
    for (size_t i = 0; i < fs.n; i++)
        if (strcmp(fs.field[i], "segments") == 0 && strcmp(fs.value[i], "recent_buyer,big-spender_2") == 0)
            found = 1;
    assert_true(found);
    decode_fields(&back, &fs);
    assert_int_equal(back.customer.nsegments, 2);
    assert_string_equal(back.customer.segments[0], "recent_buyer");
    assert_string_equal(back.customer.segments[1], "big-spender_2");
    assert_int_equal(back.customer.segments_fp, INT64_C(1234567890123));
    assert_int_equal(back.customer.due[TF_TIMER_SEGMENT], T0 + 31 * DAY);

    /* A hash written before segments: no membership, no fingerprint. */
    const char *f[] = {"stage", "purchases"};
    const char *v[] = {"growth", "3"};
    size_t fl[] = {5, 9}, vl[] = {6, 1};
    assert_int_equal(tf_store_decode(&back, f, fl, v, vl, 2), TF_OK);
    assert_int_equal(back.customer.nsegments, 0);
    assert_int_equal(back.customer.segments_fp, 0);
    assert_int_equal(back.customer.due[TF_TIMER_SEGMENT], 0);

    /* Without membership the sparse hash has no segment fields at all. */
    memset(&doc, 0, sizeof doc);
    doc.customer = buyer();
    assert_int_equal(tf_store_encode(&doc, &fs), TF_OK);
    for (size_t i = 0; i < fs.n; i++)
        assert_true(strcmp(fs.field[i], "segments") != 0 && strcmp(fs.field[i], "segments_fp") != 0 &&
                    strcmp(fs.field[i], "t:segment") != 0);

    /* Malformed names are skipped, not fatal. */
    const char *f2[] = {"stage", "segments"};
    const char *v2[] = {"growth", "a,,abcdefghijklmnopqrstuvwxyz0123456789,b"};
    size_t fl2[] = {5, 8}, vl2[] = {6, strlen(v2[1])};
    assert_int_equal(tf_store_decode(&back, f2, fl2, v2, vl2, 2), TF_OK);
    assert_int_equal(back.customer.nsegments, 2);
    assert_string_equal(back.customer.segments[1], "b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_default_none),
        cmocka_unit_test(test_config_example),
        cmocka_unit_test(test_config_every_field),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_levels_at_validate),
        cmocka_unit_test(test_in_stage_tier_level),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_missing_figures),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_days_since_purchase),
        cmocka_unit_test(test_tenure_days),
        cmocka_unit_test(test_next_change),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test_teardown(test_entered_exited, free_all),
        cmocka_unit_test_teardown(test_exit_by_time_deterministic, free_all),
        cmocka_unit_test_teardown(test_enter_by_time, free_all),
        cmocka_unit_test_teardown(test_config_change_is_silent, free_all),
        cmocka_unit_test_teardown(test_all_segments_at_once, free_all),
        cmocka_unit_test_teardown(test_figures, free_all),
        cmocka_unit_test(test_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
