/* touchflow dlq replay: re-inject dead letters after a fix. Each record goes back
 * with its original key, value and headers (the tf-* ones removed, tf-replayed-from
 * added) to its source topic or --to-topic. Progress is the replay consumer group's
 * committed offset, committed only once everything replayed is delivered, so a
 * record is replayed once per group; the default group is per reason set. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "event/event.h"

#define DLQ_MAX_REASONS 16
#define DLQ_REQUEST_TIMEOUT_MS 10000

typedef struct {
    tf_cli_kafka_status ks; /* first: the shared Kafka callbacks find it through the opaque */
    size_t delivered, failed;
} dlq_state;

typedef struct {
    const char *reasons[DLQ_MAX_REASONS];
    size_t nreasons;
    char reason_buf[512];
    const char *dlq_topic, *to_topic, *group;
    int dry_run;
    int64_t idle_ms, timeout_ms;
} dlq_opts;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    dlq_state *st = opaque;
    (void)rk;
    if (m->err) {
        st->failed++;
        tf_cli_errorf("dlq replay: not delivered to %s: %s", rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
    } else {
        st->delivered++;
    }
}

static int parse_args(int argc, char **argv, dlq_opts *o, int *help)
{
    enum { OPT_REASON = 256, OPT_DLQ, OPT_TO, OPT_DRY, OPT_GROUP, OPT_IDLE, OPT_TIMEOUT };
    static const struct option longopts[] = {
        {"reason", required_argument, NULL, OPT_REASON}, {"dlq-topic", required_argument, NULL, OPT_DLQ},
        {"to-topic", required_argument, NULL, OPT_TO},   {"dry-run", no_argument, NULL, OPT_DRY},
        {"group", required_argument, NULL, OPT_GROUP},   {"idle-ms", required_argument, NULL, OPT_IDLE},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char why[256], *save = NULL;
    int c;
    optind = 0;
    if (argc < 2 || strcmp(argv[1], "replay") != 0) {
        tf_cli_errorf("dlq: expected 'dlq replay [options]'");
        return TF_CLI_USAGE;
    }
    argc--, argv++;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_REASON:
            if (tf_strlcpy(o->reason_buf, optarg, sizeof(o->reason_buf)) != TF_OK) {
                tf_cli_errorf("dlq replay: --reason: too long");
                return TF_CLI_USAGE;
            }
            for (char *t = strtok_r(o->reason_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int known = 0;
                for (int e = 1; e < TF_EV__COUNT; e++)
                    known |= strcmp(t, tf_event_error_code((tf_event_error)e)) == 0;
                if (!known) {
                    tf_cli_errorf("dlq replay: --reason: '%s' is not a dead-letter error code", t);
                    return TF_CLI_USAGE;
                }
                /* Kept sorted and without repeats: the default group is named after the set. */
                size_t at = 0;
                while (at < o->nreasons && strcmp(o->reasons[at], t) < 0)
                    at++;
                if (at < o->nreasons && strcmp(o->reasons[at], t) == 0)
                    continue;
                if (o->nreasons == DLQ_MAX_REASONS) {
                    tf_cli_errorf("dlq replay: --reason: at most %d codes", DLQ_MAX_REASONS);
                    return TF_CLI_USAGE;
                }
                memmove(&o->reasons[at + 1], &o->reasons[at], (o->nreasons - at) * sizeof(o->reasons[0]));
                o->reasons[at] = t;
                o->nreasons++;
            }
            break;
        case OPT_DLQ:
        case OPT_TO:
            if (tf_config_topic_check(optarg, why, sizeof(why)) != TF_OK) {
                tf_cli_errorf("dlq replay: %s: %s", c == OPT_DLQ ? "--dlq-topic" : "--to-topic", why);
                return TF_CLI_USAGE;
            }
            *(c == OPT_DLQ ? &o->dlq_topic : &o->to_topic) = optarg;
            break;
        case OPT_DRY: o->dry_run = 1; break;
        case OPT_GROUP: o->group = optarg; break;
        case OPT_IDLE:
            if (tf_cli_int_option("dlq replay", "--idle-ms", optarg, 1, INT64_MAX, &o->idle_ms))
                return TF_CLI_USAGE;
            break;
        case OPT_TIMEOUT:
            if (tf_cli_int_option("dlq replay", "--timeout-ms", optarg, 1, INT64_MAX, &o->timeout_ms))
                return TF_CLI_USAGE;
            break;
        case 'h': *help = 1; return TF_CLI_OK;
        default: return tf_cli_bad_option("dlq replay", c, argv);
        }
    }
    return tf_cli_no_operands("dlq replay", argc, argv);
}

static int reason_wanted(const dlq_opts *o, const char *code)
{
    if (!o->nreasons)
        return 1;
    for (size_t i = 0; code && i < o->nreasons; i++)
        if (strcmp(o->reasons[i], code) == 0)
            return 1;
    return 0;
}

/* A header's value as a NUL-terminated string in buf, or NULL when absent. */
static const char *header_str(rd_kafka_headers_t *h, const char *name, char *buf, size_t size)
{
    const void *v;
    size_t len;
    if (!h || rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || !v || len >= size)
        return NULL;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return buf;
}

static rd_kafka_t *new_client(rd_kafka_type_t type, const tf_config_t *cfg, const char *group, dlq_state *st)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int bad = tf_cli_kafka_passthrough(conf, cfg, type);
    if (type == RD_KAFKA_CONSUMER) {
        bad |= tf_cli_kafka_set(conf, "--group: ", "group.id", group);
        bad |= tf_cli_kafka_set(conf, "", "enable.auto.commit", "false");
        bad |= tf_cli_kafka_set(conf, "", "auto.offset.reset", "earliest");
    } else {
        bad |= tf_cli_kafka_set(conf, "", "enable.idempotence", "true");
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    }
    return tf_cli_kafka_new(type, conf, bad, cfg, st, "dlq replay");
}

/* Checks that topic exists, so that a wrong name or unreachable brokers end the
 * command at once with a clear message; 0, or -1 after printing why. */
static int topic_check(rd_kafka_t *rk, const dlq_state *st, const tf_config_t *cfg, const char *what,
                       const char *topic)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, DLQ_REQUEST_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_poll(rk, 0); /* serves the error callback, which keeps the last broker error */
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
        err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        tf_cli_errorf("dlq replay: Kafka at %s not reachable within %d ms%s%s", cfg->brokers,
                      DLQ_REQUEST_TIMEOUT_MS, st->ks.last_error[0] ? ": " : "", st->ks.last_error);
        return -1;
    }
    if (err) {
        tf_cli_errorf("dlq replay: metadata of %s %s: %s", what, topic, rd_kafka_err2str(err));
        return -1;
    }
    int rc = 0;
    if (md->topic_cnt != 1 || md->topics[0].err) {
        tf_cli_errorf("dlq replay: %s %s: %s", what, topic,
                      md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "not found");
        rc = -1;
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* Re-produces m; 0 when queued. */
static int replay_one(rd_kafka_t *prod, rd_kafka_message_t *m, const char *to)
{
    rd_kafka_headers_t *orig = NULL, *h = rd_kafka_headers_new(8);
    char from[600];
    if (rd_kafka_message_headers(m, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t len;
        for (size_t i = 0; rd_kafka_header_get_all(orig, i, &name, &val, &len) == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
            if (strncmp(name, "tf-", 3) != 0)
                rd_kafka_header_add(h, name, -1, val, (ssize_t)len);
    }
    snprintf(from, sizeof(from), "%s/%d/%lld", rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset);
    rd_kafka_header_add(h, "tf-replayed-from", -1, from, -1);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        prod, RD_KAFKA_V_TOPIC(to), RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(h);
        tf_cli_errorf("dlq replay: cannot produce to %s: %s", to, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

int tf_cli_cmd_dlq(const tf_cli_opts *opts, int argc, char **argv)
{
    dlq_opts o;
    dlq_state st;
    tf_config_t *cfg = calloc(1, sizeof(*cfg));
    rd_kafka_t *cons = NULL, *prod = NULL;
    char group[512];
    int help = 0, rc;
    size_t seen = 0, skipped = 0, no_target = 0, queued = 0;
    memset(&o, 0, sizeof(o));
    memset(&st, 0, sizeof(st));
    st.ks.cmd = "dlq replay";
    o.idle_ms = 3000;
    o.timeout_ms = 120000;
    if (!cfg)
        return TF_CLI_FAIL;
    if ((rc = parse_args(argc, argv, &o, &help)) != TF_CLI_OK || help) {
        if (help)
            tf_cli_usage(stdout);
        goto out;
    }
    if ((rc = tf_cli_config_load(opts, cfg)) != TF_CLI_OK)
        goto out;
    if (!o.dlq_topic)
        o.dlq_topic = cfg->dlq_topic;
    if (!o.group) {
        /* One group per reason set: replaying one reason leaves the others for later. */
        char set[300] = "all";
        if (o.nreasons) {
            set[0] = '\0';
            for (size_t i = 0; i < o.nreasons; i++)
                snprintf(set + strlen(set), sizeof(set) - strlen(set), "%s%s", i ? "+" : "", o.reasons[i]);
        }
        if (snprintf(group, sizeof(group), "%s.dlq-replay.%s", cfg->group_id, set) >= (int)sizeof(group)) {
            tf_cli_errorf("dlq replay: the replay group name is too long: give --group");
            rc = TF_CLI_USAGE;
            goto out;
        }
        o.group = group;
    }
    rc = TF_CLI_USAGE;
    if (!(cons = new_client(RD_KAFKA_CONSUMER, cfg, o.group, &st)) ||
        (!o.dry_run && !(prod = new_client(RD_KAFKA_PRODUCER, cfg, NULL, &st))))
        goto out;
    rc = TF_CLI_FAIL;
    if (topic_check(cons, &st, cfg, "dead-letter topic", o.dlq_topic) != 0 ||
        (o.to_topic && topic_check(cons, &st, cfg, "--to-topic", o.to_topic) != 0))
        goto out;
    rd_kafka_poll_set_consumer(cons);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, o.dlq_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(cons, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err) {
        tf_cli_errorf("dlq replay: cannot subscribe to %s: %s", o.dlq_topic, rd_kafka_err2str(err));
        goto out;
    }

    int64_t start = tf_time_mono_ms(), last = -1;
    for (;;) {
        int64_t now = tf_time_mono_ms();
        if (now - start > o.timeout_ms || st.ks.fatal)
            break;
        if (last < 0 && now - start > o.idle_ms + DLQ_REQUEST_TIMEOUT_MS) {
            tf_cli_errorf("dlq replay: no partition of %s assigned to group %s within %lld ms%s%s", o.dlq_topic,
                          o.group, (long long)(now - start), st.ks.last_error[0] ? ": " : "", st.ks.last_error);
            goto out;
        }
        rd_kafka_topic_partition_list_t *assigned = NULL;
        if (rd_kafka_assignment(cons, &assigned) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (assigned->cnt > 0 && last < 0)
                last = now; /* idle time counts from the assignment */
            rd_kafka_topic_partition_list_destroy(assigned);
        }
        if (last >= 0 && now - last > o.idle_ms)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 100);
        if (prod)
            rd_kafka_poll(prod, 0);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                tf_cli_errorf("dlq replay: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        last = now;
        seen++;
        rd_kafka_headers_t *h = NULL;
        char code[64], source[256];
        rd_kafka_message_headers(m, &h);
        const char *c = header_str(h, "tf-error-code", code, sizeof(code));
        const char *to = o.to_topic ? o.to_topic : header_str(h, "tf-source-topic", source, sizeof(source));
        if (!reason_wanted(&o, c)) {
            skipped++;
        } else if (!to) {
            /* Nowhere to send it: passed over (and committed past) with a warning. */
            tf_cli_errorf("dlq replay: %s/%d/%lld has no tf-source-topic header: not replayed (give --to-topic)",
                          rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset);
            no_target++;
        } else if (o.dry_run) {
            json_t *line = json_pack("{s:s, s:i, s:I, s:s?, s:s}", "topic", rd_kafka_topic_name(m->rkt), "partition",
                                     (int)m->partition, "offset", (json_int_t)m->offset, "reason", c, "to", to);
            if (line) {
                json_dumpf(line, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
                putchar('\n');
                json_decref(line);
            }
            queued++;
        } else if (replay_one(prod, m, to) == 0) {
            queued++;
        } else {
            st.failed++;
        }
        rd_kafka_message_destroy(m);
    }
    if (prod && rd_kafka_flush(prod, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        tf_cli_errorf("dlq replay: %d record(s) still undelivered", rd_kafka_outq_len(prod));
    char extra[64] = "";
    if (no_target)
        snprintf(extra, sizeof(extra), ", %zu without tf-source-topic", no_target);
    if (o.dry_run) {
        tf_cli_errorf("dlq replay: would replay %zu of %zu dead letters (%zu skipped by reason%s); nothing committed",
                      queued, seen, skipped, extra);
        rc = TF_CLI_OK;
    } else if (st.failed || st.delivered != queued) {
        tf_cli_errorf("dlq replay: %zu of %zu replayed records not delivered; progress not committed",
                      queued - st.delivered, queued);
    } else {
        /* Everything read is delivered (or skipped): record the progress. */
        err = rd_kafka_commit(cons, NULL, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            tf_cli_errorf("dlq replay: cannot commit progress: %s", rd_kafka_err2str(err));
        } else {
            tf_cli_errorf("dlq replay: replayed %zu of %zu dead letters (%zu skipped by reason%s)%s%s", st.delivered,
                          seen, skipped, extra, o.to_topic ? " to " : " to their source topics",
                          o.to_topic ? o.to_topic : "");
            rc = TF_CLI_OK;
        }
    }
out:
    if (cons) {
        rd_kafka_consumer_close(cons);
        rd_kafka_destroy(cons);
    }
    if (prod)
        rd_kafka_destroy(prod);
    free(cfg);
    return rc;
}
