/* Unit tests for pkg/config: defaults, the shipped config/touchflow.json, every class
 * of error (each must name the key), environment and -o overrides, validation. */
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

/* ---- helpers ---- */

static char errbuf[8192];

static tf_config_t *cfg_new(void)
{
    tf_config_t *c = malloc(sizeof *c);
    assert_non_null(c);
    tf_config_defaults(c);
    return c;
}

/* Writes text to a new temporary file; the caller unlinks and frees the path. */
static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/tf_config_test_XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

/* Loads text as a config file over the defaults; returns the rc, errors in errbuf. */
static int load_text(tf_config_t *c, const char *text)
{
    char *path = write_temp(text);
    int rc = tf_config_load_file(c, path, errbuf, sizeof errbuf);
    unlink(path);
    free(path);
    return rc;
}

static void assert_has(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("expected \"%s\" in:\n%s", needle, haystack);
}

static size_t count_lines(const char *s)
{
    if (!*s)
        return 0;
    size_t n = 1;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The repository's config/touchflow.json, found from this source file's path. */
static void default_config_path(char *out, size_t size)
{
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    if (slash)
        snprintf(out, size, "%.*s/../../config/touchflow.json", (int)(slash - file), file);
    else
        snprintf(out, size, "../../config/touchflow.json");
}

/* ---- defaults and the shipped file ---- */

static void test_defaults(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_string_equal(c->brokers, "127.0.0.1:9092");
    assert_string_equal(c->group_id, "touchflow");
    assert_int_equal(c->ninput_topics, 1);
    assert_string_equal(c->input_topics[0], "touchpoints");
    assert_string_equal(c->dlq_topic, "touchflow.dlq");
    for (int i = 0; i < TF_CONFIG_FAMILIES; i++) {
        char want[128];
        snprintf(want, sizeof want, "touchflow.%s", tf_config_families[i]);
        assert_string_equal(c->output_topics[i], want);
    }
    assert_int_equal(c->nconsumer_props, 0);
    assert_int_equal(c->nproducer_props, 0);
    assert_string_equal(c->redis_url, "redis://127.0.0.1:6379");
    assert_string_equal(c->key_prefix, "tf:");
    assert_string_equal(c->ops_listen, "127.0.0.1:9464");
    assert_int_equal(c->redis_timeout_ms, 2000);
    assert_int_equal(c->redis_backoff_min_ms, 100);
    assert_int_equal(c->redis_backoff_max_ms, 5000);
    assert_int_equal(c->dedup_window_s, 86400);
    assert_int_equal(c->batch_max, 2000);
    assert_int_equal(c->max_inflight, 8000);
    assert_int_equal(c->shutdown_timeout_ms, 10000);
    assert_string_equal(c->instance_source, "/touchflow");
    assert_int_equal(c->max_record_bytes, 65536);
    assert_int_equal(c->max_id_bytes, 128);
    assert_int_equal(c->max_depth, 16);
    assert_int_equal(c->max_future_skew_s, 86400);
    assert_string_equal(c->log_level, "info");
    assert_int_equal(c->rules.mature_min_purchases, 5);
    assert_int_equal(c->rules.mature_min_tenure_days, 90);
    assert_int_equal(c->rules.mature_spend_threshold, 1000000);
    assert_string_equal(c->timers_clock, "wall");
    assert_int_equal(c->timers_scan_interval_ms, 1000);
    assert_int_equal(c->timers_max_per_second, 2000);
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), 0);
    assert_string_equal(errbuf, "");
    free(c);
}

static void test_default_file_is_the_defaults(void **state)
{
    (void)state;
    char path[4096];
    default_config_path(path, sizeof path);

    /* Same document as the defaults: every key present, no other key. */
    json_error_t jerr;
    json_t *file = json_load_file(path, 0, &jerr);
    if (!file)
        fail_msg("%s: %s", path, jerr.text);
    tf_config_t *d = cfg_new();
    char *dump = tf_config_to_json(d, 0);
    assert_non_null(dump);
    json_t *dj = json_loads(dump, 0, &jerr);
    assert_non_null(dj);
    if (!json_equal(file, dj))
        fail_msg("%s differs from the built-in defaults, which are:\n%s", path, dump);
    json_decref(dj);
    json_decref(file);
    free(dump);

    /* Loading it over changed values gives back exactly the defaults. */
    tf_config_t *c = cfg_new();
    assert_int_equal(tf_config_apply_override(c, "processing.batch_max=7", errbuf, sizeof errbuf), 0);
    assert_int_equal(tf_config_apply_override(c, "kafka.input_topics=a,b", errbuf, sizeof errbuf), 0);
    assert_int_equal(tf_config_apply_override(c, "log.level=debug", errbuf, sizeof errbuf), 0);
    assert_int_equal(tf_config_load_file(c, path, errbuf, sizeof errbuf), 0);
    assert_string_equal(errbuf, "");
    assert_memory_equal(c, d, sizeof *c);
    free(c);
    free(d);
}

static void test_load_values(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    int rc = load_text(c,
        "{\"kafka\": {\"brokers\": \"k1:9092,k2:9092\", \"input_topics\": [\"a\", \"b.c\"],\n"
        "  \"consumer\": {\"fetch.wait.max.ms\": \"50\", \"session.timeout.ms\": 30000,\n"
        "               \"check.crcs\": true, \"x.ratio\": 0.5},\n"
        "  \"producer\": {\"linger.ms\": 5, \"enable.idempotence\": true},\n"
        "  \"output_topics\": {\"churn\": \"crm.churn\"}},\n"
        " \"redis\": {\"url\": \"redis://u:p%40ss@cache:6380/2\", \"timeout_ms\": 500},\n"
        " \"rules\": {\"stages\": {\"mature_min_purchases\": 0}}, \"log\": {\"level\": \"debug\"}}\n");
    if (rc != 0)
        fail_msg("%s", errbuf);
    assert_string_equal(c->brokers, "k1:9092,k2:9092");
    assert_int_equal(c->ninput_topics, 2);
    assert_string_equal(c->input_topics[1], "b.c");
    assert_int_equal(c->nconsumer_props, 4);
    assert_string_equal(c->consumer_props[0].key, "fetch.wait.max.ms");
    assert_string_equal(c->consumer_props[0].value, "50");
    assert_string_equal(c->consumer_props[1].value, "30000");
    assert_string_equal(c->consumer_props[2].value, "true");
    assert_string_equal(c->consumer_props[3].value, "0.5");
    assert_int_equal(c->nproducer_props, 2);
    assert_string_equal(c->producer_props[0].value, "5");
    assert_string_equal(c->output_topics[tf_config_family_index("churn")], "crm.churn");
    assert_string_equal(c->output_topics[tf_config_family_index("care")], "touchflow.care");
    assert_int_equal(c->redis_timeout_ms, 500);
    assert_int_equal(c->redis_backoff_max_ms, 5000); /* absent: kept */
    assert_int_equal(c->rules.mature_min_purchases, 0);
    assert_string_equal(c->log_level, "debug");
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), 0);
    free(c);
}

/* ---- errors: each names the key ---- */

static void test_unknown_key_hint(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_int_equal(load_text(c, "{\"kafka\": {\"brokrs\": \"x:1\"}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.brokrs: unknown key");
    assert_has(errbuf, "did you mean kafka.brokers?");

    /* A transposition is one edit. */
    assert_int_equal(load_text(c, "{\"redis\": {\"timeuot_ms\": 5}}"), TF_ECONFIG);
    assert_has(errbuf, "redis.timeuot_ms: unknown key; did you mean redis.timeout_ms?");

    /* Sections get hints too. */
    assert_int_equal(load_text(c, "{\"kafak\": {}}"), TF_ECONFIG);
    assert_has(errbuf, "kafak: unknown key; did you mean kafka?");

    /* Far from everything: the parent's keys are listed instead. */
    assert_int_equal(load_text(c, "{\"kafka\": {\"output_topics\": {\"promotions\": \"p\"}}}"),
                     TF_ECONFIG);
    assert_has(errbuf, "kafka.output_topics.promotions: unknown key");
    assert_has(errbuf, "lifecycle, churn, care, complaint, tier, loyalty, referral, winback");
    assert_int_equal(load_text(c, "{\"telemetry\": 1}"), TF_ECONFIG);
    assert_has(errbuf, "telemetry: unknown key (the top level accepts: kafka, subscriptions, redis, "
                       "processing, limits, log, ops, figures, rules, timers)");

    /* Dotted keys are for overrides; the file nests. */
    assert_int_equal(load_text(c, "{\"kafka.brokers\": \"x:1\"}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.brokers: write nested objects");
    assert_int_equal(load_text(c, "{\"kafka\": {\"fetch.wait.max.ms\": \"5\"}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.fetch.wait.max.ms: unknown key");

    /* The config was not touched by any of the failed loads. */
    tf_config_t *d = cfg_new();
    assert_memory_equal(c, d, sizeof *c);
    free(d);
    free(c);
}

static void test_wrong_types(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_int_equal(load_text(c, "{\"redis\": {\"timeout_ms\": \"2000\"}}"), TF_ECONFIG);
    assert_string_equal(errbuf, "redis.timeout_ms: expected an integer, got string");
    assert_int_equal(load_text(c, "{\"redis\": {\"timeout_ms\": 2.5}}"), TF_ECONFIG);
    assert_has(errbuf, "redis.timeout_ms: expected an integer, got real number");
    assert_int_equal(load_text(c, "{\"kafka\": {\"brokers\": 9092}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.brokers: expected a string, got integer");
    assert_int_equal(load_text(c, "{\"kafka\": {\"group_id\": null}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.group_id: expected a string, got null");
    assert_int_equal(load_text(c, "{\"kafka\": {\"input_topics\": \"touchpoints\"}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.input_topics: expected an array of strings, got string");
    assert_int_equal(load_text(c, "{\"kafka\": {\"input_topics\": [\"a\", 7]}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.input_topics[1]: expected a string, got integer");
    assert_int_equal(load_text(c, "{\"kafka\": {\"input_topics\": [true, \"a b\"]}}"), TF_ECONFIG);
    assert_int_equal(count_lines(errbuf), 2);
    assert_has(errbuf, "kafka.input_topics[0]: expected a string, got boolean");
    assert_has(errbuf, "kafka.input_topics[1]: invalid topic name \"a b\"");
    assert_int_equal(load_text(c, "{\"kafka\": {\"consumer\": {\"a.b\": [1]}}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.consumer.a.b: expected a string, number or boolean, got array");
    assert_int_equal(load_text(c, "{\"kafka\": {\"consumer\": \"a=b\"}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.consumer: expected an object");
    assert_int_equal(load_text(c, "{\"redis\": \"redis://x\"}"), TF_ECONFIG);
    assert_has(errbuf, "redis: expected an object, got string");
    assert_int_equal(load_text(c, "[1, 2]"), TF_ECONFIG);
    assert_has(errbuf, "the top level must be a JSON object, got array");
    free(c);
}

static void test_bounds_and_lengths(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_int_equal(load_text(c, "{\"processing\": {\"batch_max\": 0}}"), TF_ECONFIG);
    assert_string_equal(errbuf, "processing.batch_max: 0 is out of bounds (expected 1 to 100000)");
    assert_int_equal(load_text(c, "{\"redis\": {\"dedup_window_s\": 59}}"), TF_ECONFIG);
    assert_has(errbuf, "redis.dedup_window_s: 59 is out of bounds (expected 60 to 31536000)");
    assert_int_equal(load_text(c, "{\"limits\": {\"max_id_bytes\": 129}}"), TF_ECONFIG);
    assert_has(errbuf, "limits.max_id_bytes: 129 is out of bounds (expected 1 to 128)");
    assert_int_equal(load_text(c, "{\"rules\": {\"stages\": {\"mature_min_tenure_days\": -1}}}"),
                     TF_ECONFIG);
    assert_has(errbuf, "rules.stages.mature_min_tenure_days: -1 is out of bounds (expected 0 to");
    assert_int_equal(load_text(c, "{\"redis\": {\"timeout_ms\": 600001}}"), TF_ECONFIG);
    assert_has(errbuf, "redis.timeout_ms: 600001 is out of bounds (expected 1 to 600000)");

    /* 64 bytes do not fit key_prefix[64]. */
    char text[512];
    snprintf(text, sizeof text, "{\"redis\": {\"key_prefix\": \"%064d\"}}", 0);
    assert_int_equal(load_text(c, text), TF_ECONFIG);
    assert_string_equal(errbuf, "redis.key_prefix: too long (64 bytes, at most 63)");
    snprintf(text, sizeof text, "{\"redis\": {\"key_prefix\": \"%063d\"}}", 0);
    assert_int_equal(load_text(c, text), 0);
    assert_int_equal(strlen(c->key_prefix), 63);

    assert_int_equal(load_text(c, "{\"log\": {\"level\": \"verbose\"}}"), TF_ECONFIG);
    assert_string_equal(errbuf,
                        "log.level: expected one of debug, info, warn, error, got \"verbose\"");
    assert_int_equal(load_text(c, "{\"kafka\": {\"group_id\": \"\"}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.group_id: must not be empty");
    assert_int_equal(load_text(c, "{\"redis\": {\"key_prefix\": \"tf:{x}\"}}"), TF_ECONFIG);
    assert_has(errbuf, "redis.key_prefix: must not contain '{' or '}'");
    assert_int_equal(load_text(c, "{\"kafka\": {\"brokers\": \"a:1,,b:2\"}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.brokers: empty entry");
    assert_int_equal(load_text(c, "{\"kafka\": {\"group_id\": \"a\\nb\"}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.group_id: contains a control character");
    free(c);
}

static void test_topic_names(void **state)
{
    (void)state;
    char why[512];
    assert_int_equal(tf_config_topic_check("touchflow.dlq", why, sizeof why), 0);
    assert_int_equal(tf_config_topic_check("A-b_c.9", why, sizeof why), 0);
    assert_int_equal(tf_config_topic_check("", why, sizeof why), TF_EINVAL);
    assert_int_equal(tf_config_topic_check(".", why, sizeof why), TF_EINVAL);
    assert_int_equal(tf_config_topic_check("..", why, sizeof why), TF_EINVAL);
    assert_int_equal(tf_config_topic_check("...", why, sizeof why), 0);
    assert_int_equal(tf_config_topic_check("a b", why, sizeof why), TF_EINVAL);
    assert_int_equal(tf_config_topic_check("a/b", why, sizeof why), TF_EINVAL);
    assert_int_equal(tf_config_topic_check("t\xc3\xa9", why, sizeof why), TF_EINVAL);
    char name[260];
    memset(name, 'x', 249);
    name[249] = '\0';
    assert_int_equal(tf_config_topic_check(name, why, sizeof why), 0);
    name[249] = 'x';
    name[250] = '\0';
    assert_int_equal(tf_config_topic_check(name, why, sizeof why), TF_EINVAL);
    assert_has(why, "250 characters long, at most 249");

    tf_config_t *c = cfg_new();
    assert_int_equal(load_text(c, "{\"kafka\": {\"dlq_topic\": \"dead letters\"}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.dlq_topic: invalid topic name \"dead letters\"");
    assert_int_equal(load_text(c, "{\"kafka\": {\"input_topics\": [\"ok\", \"..\"]}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.input_topics[1]: \"..\" is not a valid topic name");
    assert_int_equal(load_text(c, "{\"kafka\": {\"input_topics\": []}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.input_topics: must list at least 1 topic");
    assert_int_equal(load_text(c, "{\"kafka\": {\"input_topics\": [\"a\", \"a\"]}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.input_topics[1]: \"a\" is listed twice");
    assert_int_equal(load_text(c, "{\"kafka\": {\"output_topics\": {\"tier\": \"t:x\"}}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.output_topics.tier: invalid topic name");
    char text[400];
    snprintf(text, sizeof text, "{\"kafka\": {\"dlq_topic\": \"%.250s\"}}", name);
    assert_int_equal(load_text(c, text), TF_ECONFIG);
    assert_has(errbuf, "kafka.dlq_topic: too long (250 bytes, at most 127)");
    free(c);
}

static void test_redis_url(void **state)
{
    (void)state;
    tf_config_redis_url u;
    char why[512];
    assert_int_equal(tf_config_redis_url_parse("redis://127.0.0.1:6379", &u, why, sizeof why), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.username, "");
    assert_string_equal(u.password, "");
    assert_int_equal(tf_config_redis_url_parse("redis://cache", &u, why, sizeof why), 0);
    assert_string_equal(u.host, "cache");
    assert_int_equal(u.port, 6379);
    assert_int_equal(tf_config_redis_url_parse("REDIS://app:s%3Acr%40t@cache.local:7000/3", &u, why,
                                               sizeof why), 0);
    assert_string_equal(u.username, "app");
    assert_string_equal(u.password, "s:cr@t");
    assert_string_equal(u.host, "cache.local");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 3);
    assert_int_equal(tf_config_redis_url_parse("redis://:only@[::1]:6380/", &u, why, sizeof why), 0);
    assert_string_equal(u.username, "");
    assert_string_equal(u.password, "only");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 0);

    assert_int_equal(tf_config_redis_url_parse("rediss://h:6379", &u, why, sizeof why), TF_EINVAL);
    assert_has(why, "TLS is not supported by this version");
    assert_int_equal(tf_config_redis_url_parse("http://h", &u, why, sizeof why), TF_EINVAL);
    assert_int_equal(tf_config_redis_url_parse("redis://", &u, why, sizeof why), TF_EINVAL);
    assert_int_equal(tf_config_redis_url_parse("redis://h:0", &u, why, sizeof why), TF_EINVAL);
    assert_int_equal(tf_config_redis_url_parse("redis://h:65536", &u, why, sizeof why), TF_EINVAL);
    assert_int_equal(tf_config_redis_url_parse("redis://h:", &u, why, sizeof why), TF_EINVAL);
    assert_int_equal(tf_config_redis_url_parse("redis://h/x", &u, why, sizeof why), TF_EINVAL);
    assert_int_equal(tf_config_redis_url_parse("redis://h?db=1", &u, why, sizeof why), TF_EINVAL);
    assert_int_equal(tf_config_redis_url_parse("redis://u:bad%zz@h", &u, why, sizeof why), TF_EINVAL);

    /* Error text never carries the password. */
    tf_config_t *c = cfg_new();
    assert_int_equal(load_text(c, "{\"redis\": {\"url\": \"redis://u:hunter2@h:99999\"}}"), TF_ECONFIG);
    assert_has(errbuf, "redis.url: the port must be");
    assert_null(strstr(errbuf, "hunter2"));
    assert_int_equal(load_text(c, "{\"redis\": {\"url\": \"rediss://cache:6380\"}}"), TF_ECONFIG);
    assert_has(errbuf, "redis.url: ");
    assert_has(errbuf, "TLS is not supported by this version");
    free(c);
}

static void test_ops_listen(void **state)
{
    (void)state;
    char host[128], why[256];
    int port;
    assert_int_equal(tf_config_listen_parse("127.0.0.1:9464", host, sizeof host, &port, why, sizeof why), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9464);
    assert_int_equal(tf_config_listen_parse("[::1]:0", host, sizeof host, &port, why, sizeof why), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(tf_config_listen_parse("ops-host.local:65535", host, sizeof host, &port, why, sizeof why), 0);
    assert_string_equal(host, "ops-host.local");
    assert_int_equal(port, 65535);

    const char *bad[] = {"127.0.0.1", ":9464", "h:", "h:65536", "h:9x", "::1:9464", "[::1:9464", "[]:1",
                         "h h:1", "[::g]:1", "h:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (tf_config_listen_parse(bad[i], host, sizeof host, &port, why, sizeof why) != TF_EINVAL)
            fail_msg("\"%s\" was accepted", bad[i]);
    assert_int_equal(tf_config_listen_parse("h", host, 2, &port, why, sizeof why), TF_EINVAL);

    /* "" disables the listener; a bad address names the key. */
    tf_config_t *c = cfg_new();
    assert_int_equal(tf_config_apply_override(c, "ops.listen=", errbuf, sizeof errbuf), 0);
    assert_string_equal(c->ops_listen, "");
    assert_int_equal(tf_config_apply_override(c, "ops.listen=0.0.0.0:9100", errbuf, sizeof errbuf), 0);
    assert_string_equal(c->ops_listen, "0.0.0.0:9100");
    assert_int_equal(load_text(c, "{\"ops\": {\"listen\": \"localhost\"}}"), TF_ECONFIG);
    assert_has(errbuf, "ops.listen: \"localhost\" has no port");
    assert_string_equal(c->ops_listen, "0.0.0.0:9100");
    free(c);
}

static void test_passthrough_forbidden(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_int_equal(load_text(c, "{\"kafka\": {\"consumer\": {\"group.id\": \"g\"}}}"), TF_ECONFIG);
    assert_has(errbuf, "kafka.consumer.group.id: set by touchflow; use kafka.group_id instead");
    assert_int_equal(load_text(c, "{\"kafka\": {\"consumer\": {\"bootstrap.servers\": \"b:1\"}}}"),
                     TF_ECONFIG);
    assert_has(errbuf, "kafka.consumer.bootstrap.servers: set by touchflow; use kafka.brokers instead");
    assert_int_equal(load_text(c, "{\"kafka\": {\"consumer\": {\"enable.auto.offset.store\": true}}}"),
                     TF_ECONFIG);
    assert_has(errbuf, "kafka.consumer.enable.auto.offset.store: controlled by touchflow");
    assert_int_equal(load_text(c, "{\"kafka\": {\"consumer\": {\"enable.auto.commit\": \"false\"}}}"),
                     TF_ECONFIG);
    assert_has(errbuf, "kafka.consumer.enable.auto.commit: controlled by touchflow");
    assert_int_equal(load_text(c, "{\"kafka\": {\"consumer\": {\"partition.assignment.strategy\": "
                                  "\"cooperative-sticky\"}}}"),
                     TF_ECONFIG);
    assert_has(errbuf, "kafka.consumer.partition.assignment.strategy: cooperative rebalancing");
    assert_int_equal(load_text(c, "{\"kafka\": {\"producer\": {\"enable.idempotence\": false}}}"),
                     TF_ECONFIG);
    assert_has(errbuf, "kafka.producer.enable.idempotence: touchflow's producer is always idempotent");
    assert_int_equal(load_text(c, "{\"kafka\": {\"producer\": {\"bootstrap.servers\": \"b:1\"}}}"),
                     TF_ECONFIG);
    assert_has(errbuf, "kafka.producer.bootstrap.servers: set by touchflow; use kafka.brokers instead");
    /* group.id is only the consumer's business. */
    assert_int_equal(load_text(c, "{\"kafka\": {\"producer\": {\"client.id\": \"p\"}}}"), 0);

    /* More properties than fit. */
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text, "{\"kafka\": {\"consumer\": {");
    for (int i = 0; i <= TF_CONFIG_MAX_PASSTHROUGH; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s\"p%d\": \"v\"", i ? ", " : "", i);
    snprintf(text + n, sizeof text - n, "}}}");
    assert_int_equal(load_text(c, text), TF_ECONFIG);
    assert_has(errbuf, "kafka.consumer.p64: too many properties (at most 64)");
    free(c);
}

static void test_bad_json(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_int_equal(load_text(c, "{\n  \"kafka\": {\n    \"brokers\": \"x\",\n  }\n}\n"), TF_ECONFIG);
    assert_has(errbuf, "line 4, column");
    assert_int_equal(count_lines(errbuf), 1);
    assert_int_equal(load_text(c, "{\"log\": {\"level\": \"info\", \"level\": \"debug\"}}"), TF_ECONFIG);
    assert_has(errbuf, "duplicate object key");
    assert_int_equal(load_text(c, ""), TF_ECONFIG);
    assert_has(errbuf, "line 1");
    assert_int_equal(tf_config_load_file(c, "/nonexistent/touchflow.json", errbuf, sizeof errbuf),
                     TF_ECONFIG);
    assert_has(errbuf, "/nonexistent/touchflow.json");
    free(c);
}

static void test_all_errors_reported(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    tf_config_t *d = cfg_new();
    assert_int_equal(load_text(c,
        "{\"kafka\": {\"brokrs\": \"x:1\", \"dlq_topic\": \"a b\",\n"
        "            \"consumer\": {\"group.id\": \"g\"}},\n"
        " \"redis\": {\"url\": \"rediss://h\", \"timeout_ms\": \"5\"},\n"
        " \"processing\": {\"batch_max\": 0, \"max_inflight\": 100},\n"
        " \"log\": {\"level\": \"loud\"}}\n"), TF_ECONFIG);
    assert_int_equal(count_lines(errbuf), 7);
    assert_has(errbuf, "kafka.brokrs: unknown key; did you mean kafka.brokers?\n");
    assert_has(errbuf, "kafka.dlq_topic: invalid topic name");
    assert_has(errbuf, "kafka.consumer.group.id: set by touchflow");
    assert_has(errbuf, "redis.url: ");
    assert_has(errbuf, "redis.timeout_ms: expected an integer, got string");
    assert_has(errbuf, "processing.batch_max: 0 is out of bounds");
    assert_has(errbuf, "log.level: expected one of");
    /* All or nothing: the valid max_inflight was not applied either. */
    assert_memory_equal(c, d, sizeof *c);

    /* A small buffer is truncated, terminated and says so. */
    char small[40];
    char *path = write_temp("{\"kafka\": {\"brokrs\": 1, \"grup_id\": 2}}");
    assert_int_equal(tf_config_load_file(c, path, small, sizeof small), TF_ECONFIG);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_string_equal(small + sizeof small - 4, "...");
    assert_int_equal(tf_config_load_file(c, path, NULL, 0), TF_ECONFIG);
    unlink(path);
    free(path);
    free(c);
    free(d);
}

/* ---- environment ---- */

static void clear_env(void)
{
    static const char *const vars[] = {
        "TOUCHFLOW_KAFKA_BROKERS", "TOUCHFLOW_REDIS_URL",  "TOUCHFLOW_GROUP_ID",
        "TOUCHFLOW_INPUT_TOPICS",  "TOUCHFLOW_LOG_LEVEL", "TOUCHFLOW_KEY_PREFIX",
        "TOUCHFLOW_DLQ_TOPIC",     "TOUCHFLOW_OPS_LISTEN",
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

static void test_env(void **state)
{
    (void)state;
    clear_env();
    tf_config_t *c = cfg_new();
    tf_config_t *d = cfg_new();
    assert_int_equal(tf_config_apply_env(c, errbuf, sizeof errbuf), 0);
    assert_memory_equal(c, d, sizeof *c);

    setenv("TOUCHFLOW_KAFKA_BROKERS", "k1:9092,k2:9092", 1);
    setenv("TOUCHFLOW_REDIS_URL", "redis://r:6380/1", 1);
    setenv("TOUCHFLOW_GROUP_ID", "tf-blue", 1);
    setenv("TOUCHFLOW_INPUT_TOPICS", "web, calls ,orders", 1);
    setenv("TOUCHFLOW_LOG_LEVEL", "warn", 1);
    setenv("TOUCHFLOW_KEY_PREFIX", "blue:", 1);
    setenv("TOUCHFLOW_DLQ_TOPIC", "blue.dlq", 1);
    setenv("TOUCHFLOW_OPS_LISTEN", "0.0.0.0:9464", 1);
    int rc = tf_config_apply_env(c, errbuf, sizeof errbuf);
    if (rc)
        fail_msg("%s", errbuf);
    assert_string_equal(c->brokers, "k1:9092,k2:9092");
    assert_string_equal(c->redis_url, "redis://r:6380/1");
    assert_string_equal(c->group_id, "tf-blue");
    assert_int_equal(c->ninput_topics, 3);
    assert_string_equal(c->input_topics[0], "web");
    assert_string_equal(c->input_topics[1], "calls");
    assert_string_equal(c->input_topics[2], "orders");
    assert_string_equal(c->log_level, "warn");
    assert_string_equal(c->key_prefix, "blue:");
    assert_string_equal(c->dlq_topic, "blue.dlq");
    assert_string_equal(c->ops_listen, "0.0.0.0:9464");

    /* Errors name the variable, and all of them are reported. */
    tf_config_t *before = cfg_new();
    memcpy(before, c, sizeof *c);
    setenv("TOUCHFLOW_REDIS_URL", "rediss://r:6380", 1);
    setenv("TOUCHFLOW_INPUT_TOPICS", "ok,bad topic", 1);
    setenv("TOUCHFLOW_LOG_LEVEL", "", 1);
    assert_int_equal(tf_config_apply_env(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_int_equal(count_lines(errbuf), 3);
    assert_has(errbuf, "TOUCHFLOW_REDIS_URL: redis.url: ");
    assert_has(errbuf, "TLS is not supported by this version");
    assert_has(errbuf, "TOUCHFLOW_INPUT_TOPICS: kafka.input_topics[1]: invalid topic name");
    assert_has(errbuf, "TOUCHFLOW_LOG_LEVEL: log.level: expected one of");
    assert_memory_equal(c, before, sizeof *c);
    clear_env();
    free(before);
    free(c);
    free(d);
}

/* ---- -o overrides ---- */

static void test_overrides(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
#define SET_OK(a)                                                            \
    do {                                                                     \
        if (tf_config_apply_override(c, (a), errbuf, sizeof errbuf) != 0)   \
            fail_msg("%s: %s", (a), errbuf);                                 \
    } while (0)
    SET_OK("processing.batch_max=500");
    assert_int_equal(c->batch_max, 500);
    SET_OK(" redis.timeout_ms = 750 ");
    assert_int_equal(c->redis_timeout_ms, 750);
    SET_OK("kafka.brokers=a:1,b:2");
    assert_string_equal(c->brokers, "a:1,b:2");
    SET_OK("kafka.input_topics=[\"x\", \"y\"]");
    assert_int_equal(c->ninput_topics, 2);
    assert_string_equal(c->input_topics[1], "y");
    SET_OK("kafka.input_topics=p,q,r");
    assert_int_equal(c->ninput_topics, 3);
    assert_string_equal(c->input_topics[2], "r");
    SET_OK("kafka.consumer.fetch.wait.max.ms=50");
    SET_OK("kafka.consumer={\"fetch.wait.max.ms\": 60, \"queued.min.messages\": \"1000\"}");
    assert_int_equal(c->nconsumer_props, 2); /* merged, not appended twice */
    assert_string_equal(c->consumer_props[0].value, "60");
    SET_OK("kafka.producer.linger.ms=5");
    assert_string_equal(c->producer_props[0].key, "linger.ms");
    SET_OK("kafka.output_topics.winback=crm.winback");
    assert_string_equal(c->output_topics[tf_config_family_index("winback")], "crm.winback");
    SET_OK("kafka.output_topics={\"care\": \"crm.care\"}");
    assert_string_equal(c->output_topics[tf_config_family_index("care")], "crm.care");
    SET_OK("redis={\"timeout_ms\": 900, \"key_prefix\": \"\"}");
    assert_int_equal(c->redis_timeout_ms, 900);
    assert_string_equal(c->key_prefix, "");
    SET_OK("processing.source=/touchflow/eu-1");
    assert_string_equal(c->instance_source, "/touchflow/eu-1");
    SET_OK("rules.stages.mature_spend_threshold=9223372036854775807");
    assert_int_equal(c->rules.mature_spend_threshold, INT64_MAX);

    tf_config_t *before = cfg_new();
    memcpy(before, c, sizeof *c);
    assert_int_equal(tf_config_apply_override(c, "processing.batch_max=lots", errbuf, sizeof errbuf),
                     TF_ECONFIG);
    assert_string_equal(errbuf, "processing.batch_max: expected an integer, got \"lots\"");
    assert_int_equal(tf_config_apply_override(c, "processing.batch_max=100001", errbuf, sizeof errbuf),
                     TF_ECONFIG);
    assert_has(errbuf, "processing.batch_max: 100001 is out of bounds (expected 1 to 100000)");
    assert_int_equal(tf_config_apply_override(c, "processing.batchmax=5", errbuf, sizeof errbuf),
                     TF_ECONFIG);
    assert_string_equal(errbuf, "processing.batchmax: unknown key; did you mean processing.batch_max?");
    assert_int_equal(tf_config_apply_override(c, "processing.batch_max", errbuf, sizeof errbuf),
                     TF_ECONFIG);
    assert_has(errbuf, "expected <key>=<value>");
    assert_int_equal(tf_config_apply_override(c, "=5", errbuf, sizeof errbuf), TF_ECONFIG);
    assert_int_equal(tf_config_apply_override(c, "kafka.input_topics=[\"a\",", errbuf, sizeof errbuf),
                     TF_ECONFIG);
    assert_has(errbuf, "kafka.input_topics: invalid JSON array");
    assert_int_equal(tf_config_apply_override(c, "kafka.consumer=fetch.wait.max.ms", errbuf,
                                              sizeof errbuf),
                     TF_ECONFIG);
    assert_has(errbuf, "kafka.consumer: expected a JSON object");
    assert_int_equal(tf_config_apply_override(c, "kafka.consumer.group.id=x", errbuf, sizeof errbuf),
                     TF_ECONFIG);
    assert_has(errbuf, "kafka.consumer.group.id: set by touchflow; use kafka.group_id instead");
    assert_int_equal(tf_config_apply_override(c, "kafka.output_topics=churn", errbuf, sizeof errbuf),
                     TF_ECONFIG);
    assert_has(errbuf, "kafka.output_topics: a section takes a JSON object");
    assert_int_equal(tf_config_apply_override(c, "kafka.output_topics={\"promo\": \"x\"}", errbuf,
                                              sizeof errbuf),
                     TF_ECONFIG);
    assert_has(errbuf, "kafka.output_topics.promo: unknown key");
    assert_int_equal(tf_config_apply_override(c, "redis.url=rediss://h", errbuf, sizeof errbuf),
                     TF_ECONFIG);
    assert_has(errbuf, "TLS is not supported by this version");
    assert_memory_equal(c, before, sizeof *c);
    free(before);
    free(c);
#undef SET_OK
}

/* ---- validation ---- */

static void test_validate(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    c->redis_backoff_min_ms = 6000;
    c->batch_max = 9000;
    tf_strlcpy(c->dlq_topic, "touchpoints", sizeof c->dlq_topic);
    tf_strlcpy(c->output_topics[1], "touchpoints", sizeof c->output_topics[1]);
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_int_equal(count_lines(errbuf), 5);
    assert_has(errbuf, "redis.backoff_min_ms: 6000 is greater than redis.backoff_max_ms (5000)");
    assert_has(errbuf, "kafka.output_topics.churn: \"touchpoints\" is also kafka.dlq_topic");
    assert_has(errbuf, "processing.batch_max: 9000 is greater than processing.max_inflight (8000)");
    assert_has(errbuf, "kafka.dlq_topic: \"touchpoints\" is also an input topic");
    assert_has(errbuf, "kafka.output_topics.churn: \"touchpoints\" is also an input topic");

    tf_config_defaults(c);
    tf_strlcpy(c->output_topics[2], "touchflow.dlq", sizeof c->output_topics[2]);
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_has(errbuf, "kafka.output_topics.care: \"touchflow.dlq\" is also kafka.dlq_topic");

    /* Families may share one output topic. */
    tf_config_defaults(c);
    for (int i = 0; i < 8; i++)
        tf_strlcpy(c->output_topics[i], "touchflow.derived", sizeof c->output_topics[i]);
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), 0);

    /* Field checks apply to configs built in code too. */
    tf_config_defaults(c);
    c->ninput_topics = 0;
    c->max_depth = 0;
    tf_strlcpy(c->log_level, "trace", sizeof c->log_level);
    tf_strlcpy(c->redis_url, "rediss://x", sizeof c->redis_url);
    c->nconsumer_props = 1;
    tf_strlcpy(c->consumer_props[0].key, "group.id", sizeof c->consumer_props[0].key);
    tf_strlcpy(c->consumer_props[0].value, "g", sizeof c->consumer_props[0].value);
    memset(c->group_id, 'g', sizeof c->group_id);
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_int_equal(count_lines(errbuf), 6);
    assert_has(errbuf, "kafka.input_topics: must list at least 1 topic");
    assert_has(errbuf, "limits.max_depth: 0 is out of bounds");
    assert_has(errbuf, "log.level: expected one of");
    assert_has(errbuf, "redis.url: ");
    assert_has(errbuf, "kafka.consumer.group.id: set by touchflow");
    assert_has(errbuf, "kafka.group_id: not NUL-terminated");
    free(c);
}

/* ---- rules and timers ---- */

#define DAY_MS INT64_C(86400000)

/* Applies one override that must succeed. */
static void set_ok(tf_config_t *c, const char *assignment)
{
    if (tf_config_apply_override(c, assignment, errbuf, sizeof errbuf) != 0)
        fail_msg("%s: %s", assignment, errbuf);
}

/* Applies one override that must fail, leaving c unchanged; the error is in errbuf. */
static void set_bad(tf_config_t *c, const char *assignment)
{
    tf_config_t *before = malloc(sizeof *before);
    assert_non_null(before);
    memcpy(before, c, sizeof *c);
    if (tf_config_apply_override(c, assignment, errbuf, sizeof errbuf) != TF_ECONFIG)
        fail_msg("%s: accepted", assignment);
    assert_memory_equal(c, before, sizeof *c);
    free(before);
}

static void test_rules_defaults(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    const tf_config_rules *r = &c->rules;
    assert_int_equal(r->inactivity_factor_pct, 200);
    assert_int_equal(r->spend_window_days, 90);
    assert_int_equal(r->review_days, 7);
    assert_int_equal(r->default_margin_pct, 30);
    assert_int_equal(r->cost_per_complaint, 2000);
    assert_int_equal(r->key_share_pct, 5);
    assert_int_equal(r->potential_share_pct, 15);
    assert_int_equal(r->tier_hysteresis_pct, 2);
    assert_int_equal(r->tier_min_population, 100);
    assert_int_equal(r->tier_refresh_ms, 1000);
    assert_int_equal(r->points_per_unit, 1);
    assert_int_equal(r->churn_warning, 60);
    assert_int_equal(r->churn_clear, 40);
    assert_int_equal(r->weight_inactivity + r->weight_spend_decline + r->weight_complaints +
                         r->weight_satisfaction + r->weight_nps,
                     100);
    assert_int_equal(r->weight_inactivity, 60); /* alone at the warning threshold */
    assert_int_equal(r->weight_spend_decline, 10);
    assert_int_equal(r->weight_complaints, 15);
    assert_int_equal(r->weight_satisfaction, 10);
    assert_int_equal(r->weight_nps, 5);
    assert_int_equal(r->low_nps, 6);
    assert_int_equal(r->festival_days_before, 3);
    assert_int_equal(r->complaint_followup_days, 7);
    assert_int_equal(r->sla_low_min, 4320);
    assert_int_equal(r->sla_critical_min, 120);

    assert_int_equal(r->nlevels, 4);
    assert_string_equal(r->levels[0].name, "member");
    assert_int_equal(r->levels[0].min_points, 0);
    assert_string_equal(r->levels[1].name, "silver");
    assert_int_equal(r->levels[1].min_points, 1000);
    assert_string_equal(r->levels[3].name, "platinum");
    assert_int_equal(r->levels[3].min_points, 20000);

    /* Four years of five festivals, sorted by date. */
    assert_int_equal(r->nfestivals, 20);
    assert_string_equal(r->festivals[0].name, "new_year");
    assert_int_equal(r->festivals[0].day_ms, INT64_C(1735689600000)); /* 2025-01-01 */
    assert_string_equal(r->festivals[19].name, "mid_autumn");
    assert_int_equal(r->festivals[19].day_ms, INT64_C(1854144000000)); /* 2028-10-03 */
    int found = 0;
    for (size_t i = 0; i < r->nfestivals; i++) {
        if (i > 0)
            assert_true(r->festivals[i - 1].day_ms < r->festivals[i].day_ms);
        assert_int_equal(r->festivals[i].day_ms % DAY_MS, 0);
        if (strcmp(r->festivals[i].name, "spring_festival") == 0 &&
            r->festivals[i].day_ms == INT64_C(1801872000000)) /* 2027-02-06 */
            found = 1;
    }
    assert_true(found);
    free(c);
}

static void test_rules_overrides(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    set_ok(c, "rules.churn.warning=50");
    assert_int_equal(c->rules.churn_warning, 50);
    set_ok(c, "rules.tiers.hysteresis_pct=0");
    assert_int_equal(c->rules.tier_hysteresis_pct, 0);
    set_ok(c, "timers.clock=stream");
    assert_string_equal(c->timers_clock, "stream");
    set_ok(c, "rules.churn={\"clear\": 30, \"weight_nps\": 10, \"weight_satisfaction\": 5}");
    assert_int_equal(c->rules.churn_clear, 30);
    assert_int_equal(c->rules.weight_nps, 10);
    assert_int_equal(c->rules.weight_satisfaction, 5);

    /* A list replaces the parsed levels, as JSON or comma-separated. */
    set_ok(c, "rules.loyalty.levels=[\"a:0\",\"b:10\"]");
    assert_int_equal(c->rules.nlevels, 2);
    assert_string_equal(c->rules.levels[0].name, "a");
    assert_int_equal(c->rules.levels[0].min_points, 0);
    assert_string_equal(c->rules.levels[1].name, "b");
    assert_int_equal(c->rules.levels[1].min_points, 10);
    assert_int_equal(c->rules.levels[2].min_points, 0); /* the rest is cleared */
    assert_string_equal(c->rules.levels[2].name, "");
    set_ok(c, "rules.loyalty.levels= basic:0 , vip_1:500 ");
    assert_int_equal(c->rules.nlevels, 2);
    assert_string_equal(c->rules.levels[1].name, "vip_1");
    assert_int_equal(c->rules.levels[1].min_points, 500);

    /* Festivals are sorted by date whatever the order given; a leap day is a date. */
    set_ok(c, "rules.care.festivals=2028-02-29 leap_day,2026-10-01 national_day,2026-02-17 spring_festival");
    assert_int_equal(c->rules.nfestivals, 3);
    assert_string_equal(c->rules.festivals[0].name, "spring_festival");
    assert_int_equal(c->rules.festivals[0].day_ms, INT64_C(1771286400000));
    assert_string_equal(c->rules.festivals[1].name, "national_day");
    assert_string_equal(c->rules.festivals[2].name, "leap_day");
    assert_int_equal(c->rules.festivals[2].day_ms, INT64_C(1835395200000));
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), 0);
    set_ok(c, "rules.care.festivals=[]");
    assert_int_equal(c->rules.nfestivals, 0);

    /* In the file too, and a file's festivals replace the defaults. */
    assert_int_equal(load_text(c, "{\"rules\": {\"care\": {\"festivals\": [\"2030-01-01 new_year\"]},"
                                  " \"loyalty\": {\"levels\": [\"m:0\"]}}}"),
                     0);
    assert_int_equal(c->rules.nfestivals, 1);
    assert_int_equal(c->rules.festivals[0].day_ms, INT64_C(1893456000000));
    assert_int_equal(c->rules.nlevels, 1);
    free(c);
}

static void test_rules_entry_errors(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();

    set_bad(c, "rules.care.festivals=[\"2025-01-01 new_year\", \"2026-01-01 new_year\","
               " \"2027-13-01 x\"]");
    assert_string_equal(errbuf, "rules.care.festivals[2]: \"2027-13-01 x\": not a valid date (YYYY-MM-DD name)");
    set_bad(c, "rules.care.festivals=2027-02-29 x");
    assert_string_equal(errbuf, "rules.care.festivals[0]: \"2027-02-29 x\": not a valid date (YYYY-MM-DD name)");
    set_bad(c, "rules.care.festivals=2026-04-31 x,2026-4-01 y,1969-12-31 z,2026-01-01,2026-01-01 New Year");
    assert_int_equal(count_lines(errbuf), 5);
    assert_has(errbuf, "rules.care.festivals[0]: \"2026-04-31 x\": not a valid date");
    assert_has(errbuf, "rules.care.festivals[1]: \"2026-4-01 y\": not a valid date");
    assert_has(errbuf, "rules.care.festivals[2]: \"1969-12-31 z\": the date must be 1970-01-01 or later");
    assert_has(errbuf, "rules.care.festivals[3]: \"2026-01-01\": expected the date, one space and a name");
    assert_has(errbuf, "rules.care.festivals[4]: \"2026-01-01 New Year\": the name must be 1-31 characters of a-z, 0-9 and _");
    set_bad(c, "rules.care.festivals=2026-01-01 new_year,2025-01-01 new_year,2026-01-01 new_year");
    assert_string_equal(errbuf, "rules.care.festivals[2]: \"2026-01-01 new_year\": listed twice (also rules.care.festivals[0])");
    assert_int_equal(load_text(c, "{\"rules\": {\"care\": {\"festivals\": [\"2026-01-01 a\", 5]}}}"), TF_ECONFIG);
    assert_string_equal(errbuf, "rules.care.festivals[1]: expected a string, got integer");

    set_bad(c, "rules.loyalty.levels=[\"member:0\", \"gold:5000\", \"silver:1000\"]");
    assert_string_equal(errbuf, "rules.loyalty.levels[2]: \"silver:1000\": min_points must be greater than "
                                "the level before (\"gold:5000\"): levels are listed from the lowest up");
    set_bad(c, "rules.loyalty.levels=member:10,gold:50");
    assert_string_equal(errbuf, "rules.loyalty.levels[0]: \"member:10\": the first level must start at 0 points");
    set_bad(c, "rules.loyalty.levels=a:0,b:5,a:7");
    assert_has(errbuf, "rules.loyalty.levels[2]: \"a:7\": the name \"a\" is also rules.loyalty.levels[0]");
    set_bad(c, "rules.loyalty.levels=a:0,b,C:3,d:-1");
    assert_int_equal(count_lines(errbuf), 3);
    assert_has(errbuf, "rules.loyalty.levels[1]: \"b\": expected name:min_points");
    assert_has(errbuf, "rules.loyalty.levels[2]: \"C:3\": the name must be");
    assert_has(errbuf, "rules.loyalty.levels[3]: \"d:-1\": min_points must be a whole number");
    set_bad(c, "rules.loyalty.levels=[]");
    assert_has(errbuf, "rules.loyalty.levels: 0 levels, expected 1 to 8");
    set_bad(c, "rules.loyalty.levels=a:0,b:1,c:2,d:3,e:4,f:5,g:6,h:7,i:8");
    assert_has(errbuf, "rules.loyalty.levels: more than 8 items");

    /* Scalars: bounds and the clock. */
    set_bad(c, "rules.stages.spend_window_days=5");
    assert_string_equal(errbuf, "rules.stages.spend_window_days: 5 is out of bounds (expected 6 to 3650)");
    set_bad(c, "rules.churn.weight_nps=101");
    assert_has(errbuf, "rules.churn.weight_nps: 101 is out of bounds (expected 0 to 100)");
    set_bad(c, "rules.stages.review_days=0");
    assert_has(errbuf, "rules.stages.review_days: 0 is out of bounds");
    set_bad(c, "timers.clock=bogus");
    assert_string_equal(errbuf, "timers.clock: expected \"wall\" or \"stream\", got \"bogus\"");
    set_bad(c, "rules.mature_min_purchases=3");
    assert_has(errbuf, "rules.mature_min_purchases: unknown key");
    assert_int_equal(load_text(c, "{\"rules\": {\"mature_min_purchases\": 3}}"), TF_ECONFIG);
    assert_has(errbuf, "rules.mature_min_purchases: unknown key");

    tf_config_t *d = cfg_new();
    assert_memory_equal(c, d, sizeof *c);
    free(d);
    free(c);
}

/* rules.consent.unstated and rules.exit.kinds: defaults, overrides, errors. */
static void test_rules_consent_exit(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_string_equal(c->rules.consent_unstated, "granted");
    assert_int_equal(c->rules.nexit_kinds, 1);
    assert_string_equal(c->rules.exit_kinds[0], "contract_end");
    set_ok(c, "rules.consent.unstated=withdrawn");
    assert_string_equal(c->rules.consent_unstated, "withdrawn");
    set_ok(c, "rules.exit.kinds=contract_end,unsubscribe");
    assert_int_equal(c->rules.nexit_kinds, 2);
    assert_string_equal(c->rules.exit_kinds[1], "unsubscribe");
    set_ok(c, "rules.exit.kinds=[]");
    assert_int_equal(c->rules.nexit_kinds, 0);
    assert_int_equal(load_text(c, "{\"rules\": {\"exit\": {\"kinds\": [\"unsubscribe\"]}}}"), 0);
    assert_int_equal(c->rules.nexit_kinds, 1);
    assert_string_equal(c->rules.exit_kinds[0], "unsubscribe");

    set_bad(c, "rules.consent.unstated=maybe");
    assert_string_equal(errbuf, "rules.consent.unstated: expected \"granted\" or \"withdrawn\", got \"maybe\"");
    set_bad(c, "rules.exit.kinds=[\"contract_end\", \"refund\"]");
    assert_string_equal(errbuf, "rules.exit.kinds[1]: expected \"contract_end\" or \"unsubscribe\" (an exit "
                                "touchpoint), got \"refund\"");
    set_bad(c, "rules.exit.kinds=unsubscribe,unsubscribe");
    assert_has(errbuf, "rules.exit.kinds[1]: \"unsubscribe\" is listed twice");
    set_bad(c, "rules.exit.kinds=contract_end,unsubscribe,contract_end");
    assert_has(errbuf, "rules.exit.kinds");
    free(c);
}

static void test_rules_validate(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();

    /* Cross-field rules, all reported at once, each naming its keys. */
    c->rules.weight_nps = 20;
    c->rules.churn_clear = 60;
    c->rules.key_share_pct = 50;
    c->rules.potential_share_pct = 50;
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_int_equal(count_lines(errbuf), 3);
    assert_has(errbuf, "rules.churn.weight_*: ");
    assert_has(errbuf, "sum to 115, expected exactly 100");
    assert_has(errbuf, "rules.churn.clear: 60 must be below rules.churn.warning (60)");
    assert_has(errbuf, "rules.tiers.key_share_pct + potential_share_pct + hysteresis_pct: 50 + 50 + 2 is 102, at most 100");

    /* The same through overrides: each value is valid alone, the whole is not. */
    tf_config_defaults(c);
    set_ok(c, "rules.churn.weight_spend_decline=5");
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_has(errbuf, "sum to 95");
    set_ok(c, "rules.churn.weight_nps=10");
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), 0);
    set_ok(c, "rules.churn.clear=70");
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_string_equal(errbuf, "rules.churn.clear: 70 must be below rules.churn.warning (60), or a warning "
                                "could never be cleared");

    /* Values set in code are checked as loading would check them. */
    tf_config_defaults(c);
    tf_strlcpy(c->timers_clock, "bogus", sizeof c->timers_clock);
    c->rules.spend_window_days = 3;
    c->rules.levels[0].min_points = 1;
    c->rules.festivals[1].day_ms = c->rules.festivals[0].day_ms - DAY_MS;
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_int_equal(count_lines(errbuf), 4);
    assert_has(errbuf, "timers.clock: expected \"wall\" or \"stream\", got \"bogus\"");
    assert_has(errbuf, "rules.stages.spend_window_days: 3 is out of bounds (expected 6 to 3650)");
    assert_has(errbuf, "rules.loyalty.levels[0]: \"member:1\": the first level must start at 0 points");
    assert_has(errbuf, "rules.care.festivals[1]: \"2024-12-31 spring_festival\": not in date order");
    tf_config_defaults(c);
    c->rules.festivals[5].day_ms += 1;
    tf_strlcpy(c->rules.festivals[6].name, "Spring", sizeof c->rules.festivals[6].name);
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_int_equal(count_lines(errbuf), 2);
    assert_has(errbuf, "rules.care.festivals[5]: day_ms 1767225600001 is not 00:00 UTC of a date");
    assert_has(errbuf, "rules.care.festivals[6]: \"2026-02-17 Spring\": the name must be");
    tf_config_defaults(c);
    c->rules.nlevels = 0;
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_has(errbuf, "rules.loyalty.levels: 0 levels, expected 1 to 8");
    free(c);
}

/* The rhythm, preference and attribution keys: defaults, bounds named by key, and
 * weight_overdue on top of the five weights (a configuration that set those five
 * stays valid). */
static void test_rules_insight_keys(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    const tf_config_rules *r = &c->rules;
    assert_int_equal(r->weight_overdue, 10);
    assert_int_equal(r->rhythm_min_intervals, 2);
    assert_int_equal(r->rhythm_min_confidence_pct, 50);
    assert_int_equal(r->rhythm_min_interval_hours, 24);
    assert_int_equal(r->replenish_days_before, 3);
    assert_int_equal(r->overdue_days, 7);
    assert_int_equal(r->preference_half_life_days, 90);
    assert_int_equal(r->preference_weight_purchase, 3);
    assert_int_equal(r->preference_weight_engagement, 1);
    assert_int_equal(r->attribution_days, 30);

    set_ok(c, "rules.attribution_days=45");
    set_ok(c, "rules.replenishment.min_confidence_pct=0");
    set_ok(c, "rules.preference.weight_engagement=0");
    assert_int_equal(r->attribution_days, 45);
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), 0);
    static const char *const bad[][2] = {
        {"rules.replenishment.min_intervals=1001", "rules.replenishment.min_intervals: 1001 is out of bounds (expected 0 to 1000)"},
        {"rules.replenishment.min_confidence_pct=101", "rules.replenishment.min_confidence_pct: 101 is out of bounds"},
        {"rules.replenishment.days_before=-1", "rules.replenishment.days_before: -1 is out of bounds"},
        {"rules.replenishment.overdue_days=x", "rules.replenishment.overdue_days"},
        {"rules.preference.half_life_days=0", "rules.preference.half_life_days: 0 is out of bounds (expected 1 to 3650)"},
        {"rules.preference.weight_purchase=0", "rules.preference.weight_purchase: 0 is out of bounds"},
        {"rules.attribution_days=0", "rules.attribution_days: 0 is out of bounds (expected 1 to 3650)"},
        {"rules.churn.weight_overdue=101", "rules.churn.weight_overdue: 101 is out of bounds (expected 0 to 100)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set_bad(c, bad[i][0]);
        assert_has(errbuf, bad[i][1]);
    }
    /* One interval has no spread: 2 or more, or 0 (off). */
    set_ok(c, "rules.replenishment.min_intervals=1");
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_string_equal(errbuf, "rules.replenishment.min_intervals: 1 cannot make a rhythm (one interval has no "
                                "spread): at least 2, or 0 to turn the purchase rhythm off");
    set_ok(c, "rules.replenishment.min_intervals=0");
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), 0);
    /* A file that sets the five weights to 100, as before 1.3, loads as it did. */
    assert_int_equal(load_text(c, "{\"rules\": {\"churn\": {\"weight_inactivity\": 70, \"weight_spend_decline\": 10, "
                                  "\"weight_complaints\": 10, \"weight_satisfaction\": 5, \"weight_nps\": 5}, "
                                  "\"attribution_days\": 7, \"replenishment\": {\"days_before\": 0}}}"),
                     0);
    assert_int_equal(r->weight_overdue, 10);
    assert_int_equal(r->attribution_days, 7);
    assert_int_equal(r->replenish_days_before, 0);
    assert_int_equal(load_text(c, "{\"rules\": {\"preference\": {\"half_life\": 9}}}"), TF_ECONFIG);
    assert_has(errbuf, "rules.preference.half_life");
    free(c);
}

/* DOMAIN.md: inactivity alone must be able to reach the warning, or a customer who
 * simply stops buying churns unwarned. Refused however it comes about. */
static void test_rules_inactivity_weight(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    set_ok(c, "rules.churn.weight_inactivity=50");
    set_ok(c, "rules.churn.weight_spend_decline=20");
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_string_equal(errbuf, "rules.churn.weight_inactivity: 50 is below rules.churn.warning (60): a customer "
                                "who simply stops buying would never be warned before churning");
    set_ok(c, "rules.churn.warning=50"); /* at the warning: enough */
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), 0);

    /* Raising the warning over the default weight is refused too, naming the weight. */
    tf_config_defaults(c);
    set_ok(c, "rules.churn.warning=61");
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_int_equal(count_lines(errbuf), 1);
    assert_has(errbuf, "rules.churn.weight_inactivity: 60 is below rules.churn.warning (61)");

    /* Reported with the other cross-field errors, in a file as well. */
    tf_config_defaults(c);
    c->rules.weight_inactivity = 0;
    c->rules.weight_satisfaction = 70;
    c->rules.churn_clear = 60;
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_int_equal(count_lines(errbuf), 2);
    assert_has(errbuf, "rules.churn.clear: 60 must be below rules.churn.warning (60)");
    assert_has(errbuf, "rules.churn.weight_inactivity: 0 is below rules.churn.warning (60)");
    tf_config_defaults(c);
    assert_int_equal(load_text(c, "{\"rules\": {\"churn\": {\"weight_inactivity\": 40, \"weight_nps\": 25}}}"), 0);
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_has(errbuf, "rules.churn.weight_inactivity: 40 is below rules.churn.warning (60)");
    free(c);
}

static void test_rules_round_trip(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    set_ok(c, "rules.loyalty.levels=[\"a:0\",\"b:10\",\"c_3:11\"]");
    set_ok(c, "rules.care.festivals=[\"2031-05-01 labour_day\",\"2030-01-01 new_year\"]");
    set_ok(c, "rules.churn={\"warning\": 75, \"clear\": 50}");
    set_ok(c, "rules.tiers.min_population=1");
    set_ok(c, "rules.complaints.sla_high_min=60");
    set_ok(c, "timers={\"clock\": \"stream\", \"scan_interval_ms\": 250}");
    char *s = tf_config_to_json(c, 0);
    assert_non_null(s);
    assert_has(s, "\"c_3:11\"");
    assert_has(s, "\"2030-01-01 new_year\",\n        \"2031-05-01 labour_day\"");

    char *path = write_temp(s);
    tf_config_t *d = cfg_new();
    if (tf_config_load_file(d, path, errbuf, sizeof errbuf) != 0)
        fail_msg("%s\n%s", errbuf, s);
    assert_memory_equal(&c->rules, &d->rules, sizeof c->rules);
    assert_memory_equal(c, d, sizeof *c);
    unlink(path);
    free(path);
    free(s);
    free(d);
    free(c);
}

/* ---- misc ---- */

static void test_family_index(void **state)
{
    (void)state;
    for (int i = 0; i < 8; i++)
        assert_int_equal(tf_config_family_index(tf_config_families[i]), i);
    assert_int_equal(tf_config_family_index("winback"), 7);
    assert_int_equal(tf_config_family_index("promo"), -1);
    assert_int_equal(tf_config_family_index(NULL), -1);
}

static void test_to_json_redacts(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_int_equal(tf_config_apply_override(c, "redis.url=redis://app:hunter2@cache:6379/1", errbuf,
                                              sizeof errbuf), 0);
    assert_int_equal(tf_config_apply_override(c, "kafka.consumer.sasl.password=hunter3", errbuf,
                                              sizeof errbuf), 0);
    assert_int_equal(tf_config_apply_override(c, "kafka.consumer.sasl.username=svc", errbuf,
                                              sizeof errbuf), 0);
    char *s = tf_config_to_json(c, 1);
    assert_non_null(s);
    assert_null(strstr(s, "hunter"));
    assert_has(s, "\"redis://app:[redacted]@cache:6379/1\"");
    assert_has(s, "\"sasl.password\": \"[redacted]\"");
    assert_has(s, "\"sasl.username\": \"svc\"");
    free(s);
    s = tf_config_to_json(c, 0);
    assert_non_null(s);
    assert_has(s, "hunter2");

    /* The dump loads back to the same config. */
    char *path = write_temp(s);
    tf_config_t *d = cfg_new();
    assert_int_equal(tf_config_load_file(d, path, errbuf, sizeof errbuf), 0);
    assert_memory_equal(c, d, sizeof *c);
    unlink(path);
    free(path);
    free(s);
    free(d);
    free(c);
}

/* ---- Redis Cluster: redis.url, WAIT, the key prefix ---- */

static void test_redis_cluster_url(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_int_equal(load_text(c, "{\"redis\": {\"url\": \"redis+cluster://a:7000,[::1]:7001,b\"}}"), 0);
    assert_string_equal(c->redis_url, "redis+cluster://a:7000,[::1]:7001,b");
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), 0);

    /* The error names the key and the seed, never the password. */
    assert_int_equal(load_text(c, "{\"redis\": {\"url\": \"redis+cluster://u:hunter2@a,b:0\"}}"), TF_ECONFIG);
    assert_string_equal(errbuf, "redis.url: seed 2: the port must be a number from 1 to 65535");
    assert_int_equal(tf_config_apply_override(c, "redis.url=redis+cluster://a,,b", errbuf, sizeof errbuf),
                     TF_ECONFIG);
    assert_string_equal(errbuf, "redis.url: seed 2 is empty (two commas in a row)");
    assert_int_equal(tf_config_apply_override(c, "redis.url=redis+cluster://a/1", errbuf, sizeof errbuf),
                     TF_ECONFIG);
    assert_has(errbuf, "redis.url: Redis Cluster has only database 0");

    /* The dump hides the password of a seed list too. */
    assert_int_equal(tf_config_apply_override(c, "redis.url=redis+cluster://app:hunter2@a:7000,b:7001", errbuf,
                                              sizeof errbuf),
                     0);
    char *json = tf_config_to_json(c, 1);
    assert_non_null(json);
    assert_null(strstr(json, "hunter2"));
    assert_has(json, "\"redis+cluster://app:[redacted]@a:7000,b:7001\"");
    free(json);
    free(c);
}

static void test_redis_wait(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_int_equal(c->redis_wait_replicas, 0);
    assert_int_equal(c->redis_wait_timeout_ms, 1000);

    assert_int_equal(load_text(c, "{\"redis\": {\"wait_replicas\": 2, \"wait_timeout_ms\": 500}}"), 0);
    assert_int_equal(c->redis_wait_replicas, 2);
    assert_int_equal(c->redis_wait_timeout_ms, 500);
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), 0);

    assert_int_equal(load_text(c, "{\"redis\": {\"wait_replicas\": 17}}"), TF_ECONFIG);
    assert_string_equal(errbuf, "redis.wait_replicas: 17 is out of bounds (expected 0 to 16)");
    assert_int_equal(load_text(c, "{\"redis\": {\"wait_replicas\": -1}}"), TF_ECONFIG);
    assert_has(errbuf, "redis.wait_replicas: -1 is out of bounds");
    assert_int_equal(load_text(c, "{\"redis\": {\"wait_timeout_ms\": 0}}"), TF_ECONFIG);
    assert_string_equal(errbuf, "redis.wait_timeout_ms: 0 is out of bounds (expected 1 to 600000)");
    assert_int_equal(load_text(c, "{\"redis\": {\"wait_timeout_ms\": 600001}}"), TF_ECONFIG);
    assert_has(errbuf, "redis.wait_timeout_ms: 600001 is out of bounds");
    assert_int_equal(load_text(c, "{\"redis\": {\"wait_replicas\": \"1\"}}"), TF_ECONFIG);
    assert_has(errbuf, "redis.wait_replicas: expected an integer");

    assert_int_equal(tf_config_apply_override(c, "redis.wait_replicas=1", errbuf, sizeof errbuf), 0);
    assert_int_equal(c->redis_wait_replicas, 1);
    assert_int_equal(tf_config_apply_override(c, "redis={\"wait_timeout_ms\": 1500}", errbuf, sizeof errbuf), 0);
    assert_int_equal(c->redis_wait_timeout_ms, 1500);

    /* WAIT must answer before the connection counts as hung. */
    c->redis_timeout_ms = 1500;
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_string_equal(errbuf, "redis.wait_timeout_ms: 1500 is not less than redis.timeout_ms (1500); a WAIT "
                                "that takes its whole timeout would be taken for a hung connection");
    c->redis_wait_replicas = 0; /* no WAIT: its timeout does not matter */
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), 0);

    /* Both keys are dumped and load back. */
    c->redis_wait_replicas = 3;
    c->redis_timeout_ms = 2000;
    char *json = tf_config_to_json(c, 0);
    assert_non_null(json);
    assert_has(json, "\"wait_replicas\": 3");
    assert_has(json, "\"wait_timeout_ms\": 1500");
    tf_config_t *d = cfg_new();
    char *path = write_temp(json);
    assert_int_equal(tf_config_load_file(d, path, errbuf, sizeof errbuf), 0);
    assert_memory_equal(c, d, sizeof *c);
    unlink(path);
    free(path);
    free(json);
    free(d);
    free(c);
}

/* A brace in the prefix would change the hash tag of every key, whichever way it
 * comes in. */
static void test_key_prefix_braces(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_int_equal(load_text(c, "{\"redis\": {\"key_prefix\": \"tf}\"}}"), TF_ECONFIG);
    assert_has(errbuf, "redis.key_prefix: must not contain '{' or '}'");
    assert_int_equal(tf_config_apply_override(c, "redis.key_prefix={tf:", errbuf, sizeof errbuf), TF_ECONFIG);
    assert_has(errbuf, "redis.key_prefix: must not contain '{' or '}'");
    clear_env();
    setenv("TOUCHFLOW_KEY_PREFIX", "a{b", 1);
    assert_int_equal(tf_config_apply_env(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_has(errbuf, "TOUCHFLOW_KEY_PREFIX: redis.key_prefix: must not contain '{' or '}'");
    clear_env();
    assert_string_equal(c->key_prefix, "tf:");
    /* Validation catches one set in code. */
    tf_strlcpy(c->key_prefix, "x}", sizeof c->key_prefix);
    assert_int_equal(tf_config_validate(c, errbuf, sizeof errbuf), TF_ECONFIG);
    assert_has(errbuf, "redis.key_prefix: must not contain '{' or '}'");
    free(c);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_int_equal(tf_config_load_file(NULL, "x", errbuf, sizeof errbuf), TF_EINVAL);
    assert_int_equal(tf_config_load_file(c, NULL, errbuf, sizeof errbuf), TF_EINVAL);
    assert_int_equal(tf_config_apply_env(NULL, errbuf, sizeof errbuf), TF_EINVAL);
    assert_int_equal(tf_config_apply_override(c, NULL, errbuf, sizeof errbuf), TF_EINVAL);
    assert_int_equal(tf_config_validate(NULL, errbuf, sizeof errbuf), TF_EINVAL);
    assert_null(tf_config_to_json(NULL, 0));
    free(c);
}

static void test_figures_windows(void **state)
{
    (void)state;
    tf_config_t *c = cfg_new();
    assert_int_equal(c->nfigures_windows, 2);
    assert_int_equal(c->figures_windows_days[0], 30);
    assert_int_equal(c->figures_windows_days[1], 90);
    assert_int_equal(load_text(c, "{\"figures\": {\"windows_days\": [7, 365, 28]}}"), 0);
    assert_int_equal(c->nfigures_windows, 3);
    assert_int_equal(c->figures_windows_days[2], 28);

    assert_int_equal(load_text(c, "{\"figures\": {\"windows_days\": [30, 0]}}"), TF_ECONFIG);
    assert_has(errbuf, "figures.windows_days[1]: expected a whole number of days from 1 to 3660");
    assert_int_equal(load_text(c, "{\"figures\": {\"windows_days\": [30, 30]}}"), TF_ECONFIG);
    assert_has(errbuf, "figures.windows_days[1]: 30 days is given twice");
    assert_int_equal(load_text(c, "{\"figures\": {\"windows_days\": 30}}"), TF_ECONFIG);
    assert_has(errbuf, "figures.windows_days: expected an array of 1 to 4 numbers of days");
    assert_int_equal(load_text(c, "{\"figures\": {\"windows_days\": []}}"), TF_ECONFIG);
    assert_int_equal(load_text(c, "{\"figures\": {\"refresh_s\": 0}}"), TF_ECONFIG);
    assert_has(errbuf, "figures.refresh_s");
    /* A refused value leaves the earlier one. */
    assert_int_equal(c->nfigures_windows, 3);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_default_file_is_the_defaults),
        cmocka_unit_test(test_load_values),
        cmocka_unit_test(test_unknown_key_hint),
        cmocka_unit_test(test_figures_windows),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bounds_and_lengths),
        cmocka_unit_test(test_topic_names),
        cmocka_unit_test(test_redis_url),
        cmocka_unit_test(test_passthrough_forbidden),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_ops_listen),
        cmocka_unit_test(test_rules_defaults),
        cmocka_unit_test(test_rules_insight_keys),
        cmocka_unit_test(test_rules_overrides),
        cmocka_unit_test(test_rules_entry_errors),
        cmocka_unit_test(test_rules_consent_exit),
        cmocka_unit_test(test_rules_validate),
        cmocka_unit_test(test_rules_inactivity_weight),
        cmocka_unit_test(test_rules_round_trip),
        cmocka_unit_test(test_family_index),
        cmocka_unit_test(test_to_json_redacts),
        cmocka_unit_test(test_redis_cluster_url),
        cmocka_unit_test(test_redis_wait),
        cmocka_unit_test(test_key_prefix_braces),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
