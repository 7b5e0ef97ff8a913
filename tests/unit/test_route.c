/* Unit tests for pkg/pipeline/route.c: each filter field, its edges (wildcards,
 * absent facts, consent, segment membership and segment events, disabled, nobody),
 * the default subscriptions, and the facts read back from an event's data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "lifecycle/lifecycle.h"
#include "pipeline/route.h"

static char errbuf[8192];

/* A validated config: defaults, two segments, then the overrides. */
static tf_config_t *cfg_with(const char *const *sets, size_t n)
{
    tf_config_t *c = malloc(sizeof *c);
    assert_non_null(c);
    tf_config_defaults(c);
    if (tf_config_apply_override(c,
                                 "rules.segments=[{\"name\": \"vip\", \"when\": [{\"field\": \"tier\", "
                                 "\"in\": [\"key\"]}]}, {\"name\": \"lapsed\", \"when\": [{\"field\": "
                                 "\"days_since_purchase\", \"min\": 60}]}]",
                                 errbuf, sizeof errbuf) != 0)
        fail_msg("rules.segments: %s", errbuf);
    for (size_t i = 0; i < n; i++)
        if (tf_config_apply_override(c, sets[i], errbuf, sizeof errbuf) != 0)
            fail_msg("%s: %s", sets[i], errbuf);
    if (tf_config_validate(c, errbuf, sizeof errbuf) != 0)
        fail_msg("%s", errbuf);
    return c;
}

static tf_route_table *table_of(const char *subs)
{
    char set[4096];
    snprintf(set, sizeof set, "subscriptions=%s", subs);
    const char *sets[] = {set};
    tf_config_t *c = cfg_with(sets, 1);
    tf_route_table *t = malloc(sizeof *t);
    assert_non_null(t);
    tf_route_table_build(c, t);
    free(c);
    return t;
}

static tf_derived_ctx ctx_none(void)
{
    tf_derived_ctx c;
    memset(&c, 0, sizeof c);
    c.segment = -1;
    return c;
}

static int idx(const tf_route_table *t, const char *name)
{
    int i = tf_route_find(t, name, strlen(name));
    if (i < 0)
        fail_msg("no subscription %s", name);
    return i;
}

static tf_route_why why(const tf_route_table *t, const char *name, tf_derived_type type, const tf_derived_ctx *c)
{
    return tf_route_check(t, (size_t)idx(t, name), type, c);
}

/* ---- defaults ---- */

static void test_defaults_one_per_family(void **state)
{
    (void)state;
    tf_config_t *c = cfg_with(NULL, 0);
    tf_route_table *t = malloc(sizeof *t);
    tf_route_table_build(c, t);
    assert_int_equal(t->n, TF_CONFIG_FAMILIES);
    tf_derived_ctx ctx = ctx_none();
    for (int d = 0; d < TF_DERIVED__COUNT; d++) {
        /* Each type goes to its family's subscription alone, on its family's topic. */
        uint64_t m = tf_route(t, (tf_derived_type)d, &ctx);
        int f = tf_config_family_index(tf_derived_family((tf_derived_type)d));
        assert_int_equal(m, UINT64_C(1) << f);
        assert_string_equal(t->subs[f].name, tf_config_families[f]);
        assert_string_equal(t->subs[f].topic, c->output_topics[f]);
        assert_false(t->subs[f].binary);
    }
    free(t);
    free(c);
}

static void test_defaults_follow_output_mode_and_topics(void **state)
{
    (void)state;
    const char *sets[] = {"kafka.output_mode=binary", "kafka.output_topics.churn=crm.churn",
                          "kafka.output_topics.referral="};
    tf_config_t *c = cfg_with(sets, 3);
    tf_route_table *t = malloc(sizeof *t);
    tf_route_table_build(c, t);
    tf_derived_ctx ctx = ctx_none();
    int churn = idx(t, "churn"), referral = idx(t, "referral");
    assert_true(t->subs[churn].binary);
    assert_string_equal(t->subs[churn].topic, "crm.churn");
    /* A family topic "" switches the family off. */
    assert_int_equal(tf_route_check(t, (size_t)referral, TF_DERIVED_REFERRAL_CREDITED, &ctx), TF_ROUTE_DISABLED);
    assert_int_equal(tf_route(t, TF_DERIVED_REFERRAL_CREDITED, &ctx), 0);
    free(t);
    free(c);
}

/* A subscription named after a family replaces the family's: here it narrows churn
 * to warnings (churn.cleared switched off) and keeps the family topic. */
static void test_family_override(void **state)
{
    (void)state;
    tf_route_table *t = table_of("{\"churn\": {\"mode\": \"binary\", \"filter\": {\"types\": "
                                 "[\"touchflow.churn.warning\"]}}, \"winback\": {\"enabled\": false}}");
    tf_derived_ctx ctx = ctx_none();
    assert_int_equal(t->n, TF_CONFIG_FAMILIES);
    assert_int_equal(why(t, "churn", TF_DERIVED_CHURN_WARNING, &ctx), TF_ROUTE_MATCH);
    assert_int_equal(why(t, "churn", TF_DERIVED_CHURN_CLEARED, &ctx), TF_ROUTE_TYPES);
    assert_string_equal(t->subs[idx(t, "churn")].topic, "touchflow.churn");
    assert_true(t->subs[idx(t, "churn")].binary);
    assert_int_equal(why(t, "winback", TF_DERIVED_WINBACK_OPPORTUNITY, &ctx), TF_ROUTE_DISABLED);
    assert_int_equal(tf_route(t, TF_DERIVED_CHURN_CLEARED, &ctx), 0);
    free(t);
}

/* ---- each filter field ---- */

static void test_types_exact_and_wildcard(void **state)
{
    (void)state;
    tf_route_table *t = table_of("{\"w\": {\"topic\": \"w\", \"filter\": {\"types\": [\"touchflow.winback.*\", "
                                 "\"touchflow.churn.warning\"]}}, \"all\": {\"topic\": \"all\"}}");
    tf_derived_ctx ctx = ctx_none();
    assert_int_equal(why(t, "w", TF_DERIVED_WINBACK_OPPORTUNITY, &ctx), TF_ROUTE_MATCH);
    assert_int_equal(why(t, "w", TF_DERIVED_WINBACK_SUCCEEDED, &ctx), TF_ROUTE_MATCH);
    assert_int_equal(why(t, "w", TF_DERIVED_CHURN_WARNING, &ctx), TF_ROUTE_MATCH);
    assert_int_equal(why(t, "w", TF_DERIVED_CHURN_CLEARED, &ctx), TF_ROUTE_TYPES);
    assert_int_equal(why(t, "w", TF_DERIVED_CARE_REMINDER, &ctx), TF_ROUTE_TYPES);
    /* No filter: everything. */
    for (int d = 0; d < TF_DERIVED__COUNT; d++)
        assert_int_equal(why(t, "all", (tf_derived_type)d, &ctx), TF_ROUTE_MATCH);
    free(t);
}

static void test_care_kinds(void **state)
{
    (void)state;
    tf_route_table *t = table_of("{\"b\": {\"topic\": \"b\", \"filter\": {\"care_kinds\": [\"birthday\", "
                                 "\"festival\"]}}}");
    tf_derived_ctx ctx = ctx_none();
    strcpy(ctx.care_kind, "birthday");
    assert_int_equal(why(t, "b", TF_DERIVED_CARE_REMINDER, &ctx), TF_ROUTE_MATCH);
    strcpy(ctx.care_kind, "welcome");
    assert_int_equal(why(t, "b", TF_DERIVED_CARE_REMINDER, &ctx), TF_ROUTE_CARE_KINDS);
    /* A tier.changed carries no care kind: it does not match. */
    ctx.care_kind[0] = '\0';
    assert_int_equal(why(t, "b", TF_DERIVED_TIER_CHANGED, &ctx), TF_ROUTE_CARE_KINDS);
    free(t);
}

static void test_stages_and_tiers(void **state)
{
    (void)state;
    tf_route_table *t = table_of("{\"s\": {\"topic\": \"s\", \"filter\": {\"stages\": [\"decline\"], "
                                 "\"tiers\": [\"key\", \"none\"]}}}");
    tf_derived_ctx ctx = ctx_none();
    strcpy(ctx.stage, "decline");
    strcpy(ctx.tier, "key");
    assert_int_equal(why(t, "s", TF_DERIVED_CHURN_WARNING, &ctx), TF_ROUTE_MATCH);
    strcpy(ctx.tier, "none"); /* before the first tier: a value like any other */
    assert_int_equal(why(t, "s", TF_DERIVED_CHURN_WARNING, &ctx), TF_ROUTE_MATCH);
    strcpy(ctx.tier, "regular");
    assert_int_equal(why(t, "s", TF_DERIVED_CHURN_WARNING, &ctx), TF_ROUTE_TIERS);
    ctx.tier[0] = '\0'; /* absent */
    assert_int_equal(why(t, "s", TF_DERIVED_CHURN_WARNING, &ctx), TF_ROUTE_TIERS);
    strcpy(ctx.stage, "growth"); /* the first failing field is reported */
    assert_int_equal(why(t, "s", TF_DERIVED_CHURN_WARNING, &ctx), TF_ROUTE_STAGES);
    ctx.stage[0] = '\0';
    assert_int_equal(why(t, "s", TF_DERIVED_CHURN_WARNING, &ctx), TF_ROUTE_STAGES);
    free(t);
}

static void test_levels(void **state)
{
    (void)state;
    tf_route_table *t = table_of("{\"l\": {\"topic\": \"l\", \"filter\": {\"levels\": [\"gold\", \"platinum\"]}}}");
    tf_derived_ctx ctx = ctx_none();
    strcpy(ctx.level, "gold");
    assert_int_equal(why(t, "l", TF_DERIVED_LOYALTY_LEVEL_CHANGED, &ctx), TF_ROUTE_MATCH);
    strcpy(ctx.level, "silver");
    assert_int_equal(why(t, "l", TF_DERIVED_LOYALTY_LEVEL_CHANGED, &ctx), TF_ROUTE_LEVELS);
    ctx.level[0] = '\0'; /* before the first level */
    assert_int_equal(why(t, "l", TF_DERIVED_CARE_REMINDER, &ctx), TF_ROUTE_LEVELS);
    strcpy(ctx.level, "diamond"); /* a name the rules do not have */
    assert_int_equal(why(t, "l", TF_DERIVED_CARE_REMINDER, &ctx), TF_ROUTE_LEVELS);
    free(t);
}

static void test_segments_membership_and_events(void **state)
{
    (void)state;
    tf_route_table *t = table_of("{\"v\": {\"topic\": \"v\", \"filter\": {\"segments\": [\"lapsed\"]}}}");
    tf_derived_ctx ctx = ctx_none();
    /* A member of lapsed (segment 1). */
    ctx.segments = UINT64_C(1) << 1;
    assert_int_equal(why(t, "v", TF_DERIVED_CARE_REMINDER, &ctx), TF_ROUTE_MATCH);
    /* A member of vip only. */
    ctx.segments = 1;
    assert_int_equal(why(t, "v", TF_DERIVED_CARE_REMINDER, &ctx), TF_ROUTE_SEGMENTS);
    /* Leaving lapsed: no longer a member, but the event is about lapsed. */
    ctx.segments = 0;
    ctx.segment = 1;
    assert_int_equal(why(t, "v", TF_DERIVED_SEGMENT_EXITED, &ctx), TF_ROUTE_MATCH);
    /* Entering vip is not about lapsed. */
    ctx.segment = 0;
    assert_int_equal(why(t, "v", TF_DERIVED_SEGMENT_ENTERED, &ctx), TF_ROUTE_SEGMENTS);
    free(t);
}

static void test_consent(void **state)
{
    (void)state;
    tf_route_table *t = table_of("{\"sms\": {\"topic\": \"sms\", \"filter\": {\"types\": "
                                 "[\"touchflow.care.reminder\"], \"consent\": \"sms\"}}}");
    tf_derived_ctx ctx = ctx_none();
    ctx.channels = (1u << TF_CHANNEL_EMAIL) | (1u << TF_CHANNEL_SMS);
    assert_int_equal(why(t, "sms", TF_DERIVED_CARE_REMINDER, &ctx), TF_ROUTE_MATCH);
    ctx.channels = 1u << TF_CHANNEL_EMAIL; /* sms withdrawn */
    assert_int_equal(why(t, "sms", TF_DERIVED_CARE_REMINDER, &ctx), TF_ROUTE_CONSENT);
    ctx.channels = 0; /* no channel at all */
    assert_int_equal(why(t, "sms", TF_DERIVED_CARE_REMINDER, &ctx), TF_ROUTE_CONSENT);
    free(t);
}

static void test_disabled_and_nobody(void **state)
{
    (void)state;
    tf_route_table *t = table_of("{\"off\": {\"topic\": \"off\", \"enabled\": false}, "
                                 "\"lifecycle\": {\"enabled\": false}}");
    tf_derived_ctx ctx = ctx_none();
    assert_int_equal(why(t, "off", TF_DERIVED_CARE_REMINDER, &ctx), TF_ROUTE_DISABLED);
    /* Nobody wants a stage change now. */
    assert_int_equal(tf_route(t, TF_DERIVED_STAGE_CHANGED, &ctx), 0);
    /* The care family still gets its own. */
    assert_int_equal(tf_route(t, TF_DERIVED_CARE_REMINDER, &ctx), UINT64_C(1) << idx(t, "care"));
    free(t);
}

static void test_several_and_distinct(void **state)
{
    (void)state;
    tf_route_table *t = table_of("{\"a\": {\"topic\": \"touchflow.care\"}, \"b\": {\"topic\": \"touchflow.care\", "
                                 "\"mode\": \"binary\"}, \"c\": {\"topic\": \"crm\"}}");
    tf_derived_ctx ctx = ctx_none();
    uint64_t care = UINT64_C(1) << idx(t, "care"), a = UINT64_C(1) << idx(t, "a"),
             b = UINT64_C(1) << idx(t, "b"), c = UINT64_C(1) << idx(t, "c");
    uint64_t m = tf_route(t, TF_DERIVED_CARE_REMINDER, &ctx);
    assert_int_equal(m, care | a | b | c);
    /* a writes the same topic in the same mode as care: one record there. */
    assert_int_equal(tf_route_distinct(t, m), care | b | c);
    free(t);
}

/* ---- outbox destinations ---- */

static void test_parse_dests(void **state)
{
    (void)state;
    tf_route_table *t = table_of("{\"care-sms\": {\"topic\": \"sms\"}, \"off\": {\"topic\": \"o\", "
                                 "\"enabled\": false}}");
    size_t skipped;
    uint64_t care = UINT64_C(1) << idx(t, "care"), sms = UINT64_C(1) << idx(t, "care-sms");
    /* The previous version's payload named the family: its subscription. */
    assert_int_equal(tf_route_parse_dests(t, "care", 4, &skipped), care);
    assert_int_equal(skipped, 0);
    assert_int_equal(tf_route_parse_dests(t, "care,care-sms", 13, &skipped), care | sms);
    assert_int_equal(skipped, 0);
    /* Only the first len bytes count (the key follows in the payload). */
    assert_int_equal(tf_route_parse_dests(t, "care-sms\tc-1", 8, &skipped), sms);
    /* Gone, switched off, or empty: skipped. */
    assert_int_equal(tf_route_parse_dests(t, "gone,care-sms,off", 17, &skipped), sms);
    assert_int_equal(skipped, 2);
    assert_int_equal(tf_route_parse_dests(t, "", 0, &skipped), 0);
    assert_int_equal(skipped, 1);
    free(t);
}

/* ---- facts from data ---- */

static tf_route_table *segments_table(void)
{
    return table_of("{}");
}

static void ctx_of(const tf_route_table *t, tf_derived_type type, const char *data, tf_derived_ctx *ctx)
{
    char err[256];
    if (tf_route_ctx_from_data(t, type, data, strlen(data), ctx, err, sizeof err) != TF_OK)
        fail_msg("%s: %s", data, err);
}

static void test_ctx_from_figures(void **state)
{
    (void)state;
    tf_route_table *t = segments_table();
    tf_derived_ctx c;
    ctx_of(t, TF_DERIVED_CARE_REMINDER,
           "{\"rule\":\"birthday\",\"kind\":\"birthday\",\"stage\":\"growth\",\"tier\":\"key\",\"level\":\"gold\","
           "\"value\":1234,\"channels\":[\"sms\",\"phone\",\"fax\"],\"segments\":[\"lapsed\",\"unknown\"]}",
           &c);
    assert_string_equal(c.care_kind, "birthday");
    assert_string_equal(c.stage, "growth");
    assert_string_equal(c.tier, "key");
    assert_string_equal(c.level, "gold");
    assert_true(c.has_value);
    assert_int_equal(c.value, 1234);
    assert_int_equal(c.channels, (1u << TF_CHANNEL_SMS) | (1u << TF_CHANNEL_PHONE));
    assert_int_equal(c.segments, UINT64_C(1) << 1);
    assert_int_equal(c.segment, -1);
    free(t);
}

static void test_ctx_to_stands_for_current(void **state)
{
    (void)state;
    tf_route_table *t = segments_table();
    tf_derived_ctx c;
    ctx_of(t, TF_DERIVED_STAGE_CHANGED, "{\"rule\":\"inactivity\",\"from\":\"growth\",\"to\":\"decline\"}", &c);
    assert_string_equal(c.stage, "decline");
    assert_string_equal(c.tier, "");
    assert_false(c.has_value);
    ctx_of(t, TF_DERIVED_TIER_CHANGED, "{\"from\":\"regular\",\"to\":\"key\",\"value\":5,\"stage\":\"mature\"}", &c);
    assert_string_equal(c.tier, "key");
    assert_string_equal(c.stage, "mature");
    assert_int_equal(c.value, 5);
    ctx_of(t, TF_DERIVED_LOYALTY_LEVEL_CHANGED, "{\"from\":\"silver\",\"to\":\"gold\"}", &c);
    assert_string_equal(c.level, "gold");
    /* The context figure wins over to. */
    ctx_of(t, TF_DERIVED_LOYALTY_LEVEL_CHANGED, "{\"from\":\"silver\",\"to\":\"gold\",\"level\":\"platinum\"}", &c);
    assert_string_equal(c.level, "platinum");
    /* to means nothing for other types; kind only for care reminders. */
    ctx_of(t, TF_DERIVED_CHURN_WARNING, "{\"to\":\"decline\",\"kind\":\"birthday\"}", &c);
    assert_string_equal(c.stage, "");
    assert_string_equal(c.care_kind, "");
    free(t);
}

static void test_ctx_edges(void **state)
{
    (void)state;
    tf_route_table *t = segments_table();
    tf_derived_ctx c;
    /* complaint.escalated's level is its escalation level, not a member level. */
    ctx_of(t, TF_DERIVED_COMPLAINT_ESCALATED, "{\"level\":2,\"complaint_id\":\"x\"}", &c);
    assert_string_equal(c.level, "");
    ctx_of(t, TF_DERIVED_SEGMENT_EXITED, "{\"segment\":\"vip\",\"segments\":[]}", &c);
    assert_int_equal(c.segment, 0);
    assert_int_equal(c.segments, 0);
    ctx_of(t, TF_DERIVED_SEGMENT_ENTERED, "{\"segment\":\"nope\"}", &c);
    assert_int_equal(c.segment, -1);
    char err[256];
    assert_int_equal(tf_route_ctx_from_data(t, TF_DERIVED_CARE_REMINDER, "[1]", 3, &c, err, sizeof err), TF_EINVAL);
    assert_int_equal(tf_route_ctx_from_data(t, TF_DERIVED_CARE_REMINDER, "{", 1, &c, err, sizeof err), TF_EINVAL);
    free(t);
}

/* The filter vocabulary is the words the lifecycle writes. */
static void test_vocab_matches_lifecycle(void **state)
{
    (void)state;
    for (int s = TF_STAGE_PROSPECT; s < TF_STAGE__COUNT; s++) {
        const char *n = tf_stage_name((tf_stage)s);
        assert_true(tf_vocab_index(TF_VOCAB_STAGE, n, strlen(n)) >= 0);
    }
    assert_int_equal(tf_vocab_count(TF_VOCAB_STAGE), TF_STAGE__COUNT - 1);
    for (int s = 0; s < TF_TIER__COUNT; s++) {
        const char *n = tf_tier_name((tf_tier)s);
        assert_true(tf_vocab_index(TF_VOCAB_TIER, n, strlen(n)) >= 0);
    }
    assert_int_equal(tf_vocab_count(TF_VOCAB_TIER), TF_TIER__COUNT);
    assert_int_equal(tf_vocab_count(TF_VOCAB_CARE_KIND), 9);
    assert_null(tf_vocab_name(TF_VOCAB_CARE_KIND, 9));
    assert_int_equal(tf_vocab_index(TF_VOCAB_CARE_KIND, "key_checkin", 11), 6);
    assert_int_equal(tf_vocab_index(TF_VOCAB_CARE_KIND, "replenishment", 13), 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_one_per_family),
        cmocka_unit_test(test_defaults_follow_output_mode_and_topics),
        cmocka_unit_test(test_family_override),
        cmocka_unit_test(test_types_exact_and_wildcard),
        cmocka_unit_test(test_care_kinds),
        cmocka_unit_test(test_stages_and_tiers),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_segments_membership_and_events),
        cmocka_unit_test(test_consent),
        cmocka_unit_test(test_disabled_and_nobody),
        cmocka_unit_test(test_several_and_distinct),
        cmocka_unit_test(test_parse_dests),
        cmocka_unit_test(test_ctx_from_figures),
        cmocka_unit_test(test_ctx_to_stands_for_current),
        cmocka_unit_test(test_ctx_edges),
        cmocka_unit_test(test_vocab_matches_lifecycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
