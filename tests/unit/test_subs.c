/* Unit tests for the subscriptions section of the config (pkg/config/config_subs.c):
 * loading, every validation error naming its key, the dump and the subscriptions
 * and topics in force. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "config/config.h"
#include "event/event.h"

static char errbuf[16384];

static tf_config_t *cfg_new(void)
{
    tf_config_t *c = malloc(sizeof *c);
    assert_non_null(c);
    tf_config_defaults(c);
    return c;
}

static void assert_has(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("expected \"%s\" in:\n%s", want, text);
}

/* Applies subscriptions=<json>; returns the result of that and of validation. */
static int set_subs(tf_config_t *c, const char *json)
{
    static char set[20000];
    snprintf(set, sizeof set, "subscriptions=%s", json);
    int rc = tf_config_apply_override(c, set, errbuf, sizeof errbuf);
    if (rc)
        return rc;
    return tf_config_validate(c, errbuf, sizeof errbuf);
}

static void test_default_has_none(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_int_equal(c->nsubs, 0);
    tf_config_sub *subs = calloc(TF_CONFIG_ROUTES_MAX, sizeof *subs);
    size_t n = tf_config_subscriptions(c, subs);
    assert_int_equal(n, TF_CONFIG_FAMILIES);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(subs[i].name, tf_config_families[i]);
        assert_string_equal(subs[i].mode, "structured");
        assert_true(subs[i].enabled);
        assert_int_equal(subs[i].families, 1u << i);
        assert_int_equal(subs[i].types, 0);
        assert_int_equal(subs[i].consent, -1);
    }
    const char *topics[TF_CONFIG_ROUTES_MAX + 1];
    n = tf_config_output_topic_list(c, topics);
    assert_int_equal(n, TF_CONFIG_FAMILIES + 1);
    assert_string_equal(topics[0], "touchflow.lifecycle");
    assert_string_equal(topics[n - 1], "touchflow.dlq");
    free(subs);
    free(c);
}

static void test_load_and_dump_round_trip(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    int rc = set_subs(c, "{\"winback-crm\": {\"topic\": \"crm.winback\", \"mode\": \"binary\", \"filter\": "
                         "{\"types\": [\"touchflow.winback.*\", \"touchflow.churn.warning\"]}}, "
                         "\"care-sms\": {\"topic\": \"crm.care.sms\", \"filter\": {\"types\": "
                         "[\"touchflow.care.reminder\"], \"care_kinds\": [\"birthday\"], \"stages\": [\"growth\"], "
                         "\"tiers\": [\"key\"], \"levels\": [\"gold\"], \"consent\": \"sms\"}}, "
                         "\"churn\": {\"enabled\": false}}");
    if (rc)
        fail_msg("%s", errbuf);
    assert_int_equal(c->nsubs, 3);
    assert_string_equal(c->subs[0].name, "winback-crm");
    assert_int_equal(c->subs[0].types, 1u << TF_DERIVED_CHURN_WARNING);
    assert_int_equal(c->subs[0].families, 1u << tf_config_family_index("winback"));
    assert_int_equal(c->subs[1].consent, TF_CHANNEL_SMS);
    assert_int_equal(c->subs[1].nlevels, 1);
    assert_false(c->subs[2].enabled);

    /* The dump loads back to the same bytes. */
    char *s = tf_config_to_json(c, 0);
    assert_non_null(s);
    assert_has(s, "\"touchflow.winback.*\"");
    char path[] = "/tmp/tf-subs-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(s, f);
    fclose(f);
    tf_config_t *d = cfg_new();
    if (tf_config_load_file(d, path, errbuf, sizeof errbuf) != 0)
        fail_msg("%s\n%s", errbuf, s);
    assert_memory_equal(c->subs, d->subs, sizeof c->subs);
    assert_memory_equal(c, d, sizeof *c);
    unlink(path);
    free(s);

    /* In force: churn is off, the two others follow the families. */
    tf_config_sub *subs = calloc(TF_CONFIG_ROUTES_MAX, sizeof *subs);
    size_t n = tf_config_subscriptions(c, subs);
    assert_int_equal(n, TF_CONFIG_FAMILIES + 2);
    assert_false(subs[tf_config_family_index("churn")].enabled);
    assert_string_equal(subs[tf_config_family_index("churn")].topic, "touchflow.churn");
    assert_string_equal(subs[TF_CONFIG_FAMILIES].name, "winback-crm");
    assert_string_equal(subs[TF_CONFIG_FAMILIES].mode, "binary");
    assert_string_equal(subs[TF_CONFIG_FAMILIES + 1].mode, "structured");
    const char *topics[TF_CONFIG_ROUTES_MAX + 1];
    n = tf_config_output_topic_list(c, topics);
    assert_int_equal(n, TF_CONFIG_FAMILIES - 1 + 2 + 1); /* no touchflow.churn */
    for (size_t i = 0; i < n; i++)
        assert_string_not_equal(topics[i], "touchflow.churn");
    free(subs);
    free(d);
    free(c);
}

static void test_family_topic_off(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_int_equal(tf_config_apply_override(c, "kafka.output_topics.referral=", errbuf, sizeof errbuf), 0);
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), 0);
    tf_config_sub *subs = calloc(TF_CONFIG_ROUTES_MAX, sizeof *subs);
    tf_config_subscriptions(c, subs);
    assert_false(subs[tf_config_family_index("referral")].enabled);
    /* A referral subscription of its own brings it back, on another topic. */
    assert_int_equal(set_subs(c, "{\"referral\": {\"topic\": \"crm.referral\"}}"), 0);
    tf_config_subscriptions(c, subs);
    assert_true(subs[tf_config_family_index("referral")].enabled);
    assert_string_equal(subs[tf_config_family_index("referral")].topic, "crm.referral");
    /* Without a topic it has none to write to. */
    assert_int_equal(set_subs(c, "{\"referral\": {\"mode\": \"binary\"}}"), TF_ECONFIG);
    assert_has(errbuf, "subscriptions.referral.topic: missing, and kafka.output_topics.referral is \"\" (off)");
    free(subs);
    free(c);
}

static void test_load_errors_name_the_key(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_int_equal(set_subs(c, "{\"bad name\": {\"topic\": \"x\"}, \"x1\": {\"topic\": \"\", \"mode\": \"bin\", "
                                 "\"enabled\": 1, \"filtr\": {}}, \"x2\": {\"topic\": \"t\", \"filter\": "
                                 "{\"types\": [\"touchflow.nope.*\", \"touchflow.care.birthday\", 3], "
                                 "\"care_kinds\": [\"bday\"], \"stages\": [\"dead\"], \"tiers\": [\"vip\"], "
                                 "\"consent\": \"fax\", \"colour\": []}}, \"x3\": [], "
                                 "\"x4\": {\"filter\": {\"levels\": \"gold\"}}}"),
                     TF_ECONFIG);
    assert_has(errbuf, "subscriptions.bad name: a subscription name is 1-63 characters");
    assert_has(errbuf, "subscriptions.x1.topic: topic name is empty");
    assert_has(errbuf, "subscriptions.x1.mode: must be \"structured\" or \"binary\"");
    assert_has(errbuf, "subscriptions.x1.enabled: expected true or false");
    assert_has(errbuf, "subscriptions.x1.filtr: unknown key");
    assert_has(errbuf, "subscriptions.x2.filter.types[0]: unknown type \"touchflow.nope.*\"");
    assert_has(errbuf, "subscriptions.x2.filter.types[1]: unknown type \"touchflow.care.birthday\"");
    assert_has(errbuf, "subscriptions.x2.filter.types[2]: expected a string");
    assert_has(errbuf, "subscriptions.x2.filter.care_kinds[0]: unknown name \"bday\" (one of welcome,");
    assert_has(errbuf, "subscriptions.x2.filter.stages[0]: unknown name \"dead\"");
    assert_has(errbuf, "subscriptions.x2.filter.tiers[0]: unknown name \"vip\"");
    assert_has(errbuf, "subscriptions.x2.filter.consent: unknown channel \"fax\"");
    assert_has(errbuf, "subscriptions.x2.filter.colour: unknown key");
    assert_has(errbuf, "subscriptions.x3: expected an object");
    assert_has(errbuf, "subscriptions.x4.filter.levels: expected an array of strings");
    /* All or nothing. */
    assert_int_equal(c->nsubs, 0);
    assert_int_equal(tf_config_apply_override(c, "subscriptions=[]", errbuf, sizeof errbuf), TF_ECONFIG);
    assert_has(errbuf, "subscriptions: expected an object of named subscriptions");
    /* A name given twice is refused by the JSON reader, naming it. */
    assert_int_equal(tf_config_apply_override(c, "subscriptions={\"a\": {\"topic\": \"x\"}, \"a\": "
                                                 "{\"topic\": \"y\"}}",
                                              errbuf, sizeof errbuf),
                     TF_ECONFIG);
    assert_has(errbuf, "subscriptions: invalid JSON");
    assert_has(errbuf, "duplicate object key");
    free(c);
}

static void test_validation_across_sections(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_int_equal(set_subs(c, "{\"a\": {\"topic\": \"touchpoints\"}, \"b\": {\"topic\": \"touchflow.dlq\"}, "
                                 "\"c\": {\"filter\": {\"levels\": [\"diamond\"], \"segments\": [\"vip\"]}}, "
                                 "\"d\": {\"enabled\": false}}"),
                     TF_ECONFIG);
    assert_has(errbuf, "subscriptions.a.topic: \"touchpoints\" is also an input topic");
    assert_has(errbuf, "subscriptions.b.topic: \"touchflow.dlq\" is also kafka.dlq_topic");
    assert_has(errbuf, "subscriptions.c.topic: missing");
    assert_has(errbuf, "subscriptions.c.filter.levels[0]: \"diamond\" is not a level of rules.loyalty.levels");
    assert_has(errbuf, "subscriptions.c.filter.segments[0]: \"vip\" is not a segment of rules.segments");
    /* A disabled subscription may leave its topic out. */
    if (strstr(errbuf, "subscriptions.d"))
        fail_msg("%s", errbuf);
    /* Levels named by the rules loaded after the section are fine. */
    tf_config_t *d = cfg_new();
    assert_int_equal(tf_config_apply_override(d, "subscriptions={\"g\": {\"topic\": \"g\", \"filter\": "
                                                 "{\"levels\": [\"vip\"]}}}",
                                              errbuf, sizeof errbuf),
                     0);
    assert_int_equal(tf_config_apply_override(d, "rules.loyalty.levels=[\"basic:0\",\"vip:10\"]", errbuf,
                                              sizeof errbuf),
                     0);
    if (tf_config_validate(d, errbuf, sizeof errbuf) != 0)
        fail_msg("%s", errbuf);
    /* Too many. */
    char big[16384];
    size_t n = (size_t)snprintf(big, sizeof big, "{");
    for (int i = 0; i <= TF_CONFIG_MAX_SUBS; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s\"s%d\": {\"topic\": \"t\"}", i ? ", " : "", i);
    snprintf(big + n, sizeof big - n, "}");
    assert_int_equal(set_subs(d, big), TF_ECONFIG);
    assert_has(errbuf, "subscriptions: 33 subscriptions, at most 32");
    free(d);
    free(c);
}

static void test_family_topic_checks_skip_off(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    /* "" is accepted for a family topic and clashes with nothing. */
    assert_int_equal(tf_config_apply_override(c, "kafka.output_topics={\"care\": \"\", \"tier\": \"\"}", errbuf,
                                              sizeof errbuf),
                     0);
    if (tf_config_validate(c, errbuf, sizeof errbuf) != 0)
        fail_msg("%s", errbuf);
    /* A bad name still is not. */
    assert_int_equal(tf_config_apply_override(c, "kafka.output_topics.care=a b", errbuf, sizeof errbuf), TF_ECONFIG);
    assert_has(errbuf, "kafka.output_topics.care:");
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_has_none),
        cmocka_unit_test(test_load_and_dump_round_trip),
        cmocka_unit_test(test_family_topic_off),
        cmocka_unit_test(test_load_errors_name_the_key),
        cmocka_unit_test(test_validation_across_sections),
        cmocka_unit_test(test_family_topic_checks_skip_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
