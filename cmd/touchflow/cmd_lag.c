/* touchflow lag: the consumer group's committed offsets against the end of each
 * input partition, like kafka-consumer-groups --describe. It reads through a
 * consumer handle that carries the group id but never subscribes, so the group is
 * not disturbed. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

#define LAG_MAX_TOPICS 16

typedef struct {
    tf_cli_kafka_status ks; /* first: the shared Kafka callbacks find it through the opaque */
} lag_state;

typedef struct {
    const char *group;
    const char *topics[LAG_MAX_TOPICS];
    size_t ntopics;
    int json;
    int timeout_ms;
} lag_opts;

static int parse_args(int argc, char **argv, lag_opts *o, int *help)
{
    enum { OPT_GROUP = 256, OPT_JSON, OPT_TIMEOUT };
    static const struct option longopts[] = {
        {"group", required_argument, NULL, OPT_GROUP}, {"topic", required_argument, NULL, 't'},
        {"json", no_argument, NULL, OPT_JSON},         {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},              {NULL, 0, NULL, 0},
    };
    int c;
    int64_t v;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":t:h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_GROUP: o->group = optarg; break;
        case 't':
            if (tf_cli_topic_option("lag", optarg, o->topics, &o->ntopics, LAG_MAX_TOPICS))
                return TF_CLI_USAGE;
            break;
        case OPT_JSON: o->json = 1; break;
        case OPT_TIMEOUT:
            if (tf_cli_int_option("lag", "--timeout-ms", optarg, 1, 600000, &v))
                return TF_CLI_USAGE;
            o->timeout_ms = (int)v;
            break;
        case 'h': *help = 1; return TF_CLI_OK;
        default: return tf_cli_bad_option("lag", c, argv);
        }
    }
    return tf_cli_no_operands("lag", argc, argv);
}

static rd_kafka_t *lag_consumer(const tf_config_t *cfg, const char *group, lag_state *st)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int bad = tf_cli_kafka_passthrough(conf, cfg, RD_KAFKA_CONSUMER);
    bad |= tf_cli_kafka_set(conf, "--group: ", "group.id", group);
    bad |= tf_cli_kafka_set(conf, "", "enable.auto.commit", "false");
    bad |= tf_cli_kafka_set(conf, "", "client.id", "touchflow-cli-lag");
    return tf_cli_kafka_new(RD_KAFKA_CONSUMER, conf, bad, cfg, st, "lag");
}

/* Prints why a request to the cluster failed: unreachable brokers by name, with the
 * last broker error librdkafka reported. */
static void kafka_failed(rd_kafka_t *rk, const lag_state *st, const tf_config_t *cfg, const char *what,
                         rd_kafka_resp_err_t err, int timeout_ms)
{
    rd_kafka_poll(rk, 0); /* serves the error callback, which keeps the last broker error */
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
        err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        tf_cli_errorf("lag: Kafka at %s not reachable within %d ms (%s)%s%s", cfg->brokers, timeout_ms, what,
                      st->ks.last_error[0] ? ": " : "", st->ks.last_error);
    else
        tf_cli_errorf("lag: %s: %s", what, rd_kafka_err2str(err));
}

/* Adds every partition of topic to list; 0, or -1 after printing why. */
static int add_partitions(rd_kafka_t *rk, const lag_state *st, const tf_config_t *cfg, const char *topic,
                          int timeout_ms, rd_kafka_topic_partition_list_t *list)
{
    const struct rd_kafka_metadata *md = NULL;
    char what[300];
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err) {
        snprintf(what, sizeof(what), "metadata of %s", topic);
        kafka_failed(rk, st, cfg, what, err, timeout_ms);
        return -1;
    }
    int rc = 0;
    if (md->topic_cnt != 1 || md->topics[0].err) {
        tf_cli_errorf("lag: topic %s: %s", topic,
                      md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "not found");
        rc = -1;
    } else {
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(list, topic, md->topics[0].partitions[p].id);
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

static int cmp_partition(const void *a, const void *b)
{
    const rd_kafka_topic_partition_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

int tf_cli_cmd_lag(const tf_cli_opts *opts, int argc, char **argv)
{
    lag_opts o = {.timeout_ms = 10000};
    lag_state st;
    tf_config_t *cfg = calloc(1, sizeof(*cfg));
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *list = NULL;
    int help = 0, rc;
    memset(&st, 0, sizeof(st));
    st.ks.cmd = "lag";
    if (!cfg) {
        tf_cli_errorf("lag: out of memory");
        return TF_CLI_FAIL;
    }
    if ((rc = parse_args(argc, argv, &o, &help)) != TF_CLI_OK || help) {
        if (help)
            tf_cli_usage(stdout);
        goto out;
    }
    if ((rc = tf_cli_config_load(opts, cfg)) != TF_CLI_OK)
        goto out;
    if (!o.group)
        o.group = cfg->group_id;
    if (!o.ntopics)
        for (size_t i = 0; i < cfg->ninput_topics && i < LAG_MAX_TOPICS; i++)
            o.topics[o.ntopics++] = cfg->input_topics[i];
    rc = TF_CLI_FAIL;
    if (!(rk = lag_consumer(cfg, o.group, &st))) {
        rc = TF_CLI_USAGE;
        goto out;
    }
    list = rd_kafka_topic_partition_list_new(64);
    for (size_t i = 0; i < o.ntopics; i++)
        if (add_partitions(rk, &st, cfg, o.topics[i], o.timeout_ms, list) != 0)
            goto out;
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, list, o.timeout_ms);
    if (err) {
        char what[300];
        snprintf(what, sizeof(what), "committed offsets of group %s", o.group);
        kafka_failed(rk, &st, cfg, what, err, o.timeout_ms);
        goto out;
    }
    qsort(list->elems, (size_t)list->cnt, sizeof(list->elems[0]), cmp_partition);
    /* The topic column fits the longest name, so the columns stay aligned. */
    int width = (int)strlen("TOPIC");
    for (int i = 0; i < list->cnt; i++)
        if ((int)strlen(list->elems[i].topic) > width)
            width = (int)strlen(list->elems[i].topic);

    json_t *rows = o.json ? json_array() : NULL;
    int64_t total = 0;
    if (!o.json)
        printf("%-*s %9s %15s %15s %12s\n", width, "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG");
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        int64_t lo, hi;
        err = rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &lo, &hi, o.timeout_ms);
        if (err) {
            char what[300];
            snprintf(what, sizeof(what), "end offset of %s [%d]", tp->topic, (int)tp->partition);
            kafka_failed(rk, &st, cfg, what, err, o.timeout_ms);
            json_decref(rows);
            goto out;
        }
        /* Nothing committed: everything still in the log is behind. */
        int64_t current = tp->offset >= 0 ? tp->offset : -1;
        int64_t lag = hi - (current >= 0 ? current : lo);
        if (lag < 0)
            lag = 0;
        total += lag;
        if (o.json) {
            json_array_append_new(rows, json_pack("{s:s, s:i, s:o, s:I, s:I}", "topic", tp->topic, "partition",
                                                  (int)tp->partition, "current_offset",
                                                  current >= 0 ? json_integer(current) : json_null(),
                                                  "log_end_offset", (json_int_t)hi, "lag", (json_int_t)lag));
        } else {
            char cur[24];
            if (current >= 0)
                snprintf(cur, sizeof(cur), "%" PRId64, current);
            else
                snprintf(cur, sizeof(cur), "-");
            printf("%-*s %9d %15s %15" PRId64 " %12" PRId64 "\n", width, tp->topic, (int)tp->partition, cur, hi, lag);
        }
    }
    if (o.json) {
        json_dumpf(rows, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(rows);
    } else {
        printf("%-*s %9s %15s %15s %12" PRId64 "\n", width, "TOTAL", "", "", "", total);
    }
    rc = TF_CLI_OK;
out:
    if (list)
        rd_kafka_topic_partition_list_destroy(list);
    if (rk)
        rd_kafka_destroy(rk);
    free(cfg);
    return rc;
}
