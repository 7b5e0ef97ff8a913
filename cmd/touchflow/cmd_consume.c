/* `touchflow consume`: records of one or more topics as JSON lines on stdout.
 *
 * Each record is one object, {"topic","partition","offset","timestamp","key","value",
 * "headers":{name:value}}, so end-to-end tests can assert exactly what touchflowd
 * emitted (derived events, dead letters and their headers). Without --group the
 * partitions of every topic are assigned by hand (found by a metadata lookup): nothing
 * is committed and no group is joined. With --group the consumer subscribes and
 * commits like any group member.
 *
 * It stops after --count records, after --idle-ms without a record, after --timeout-ms
 * overall, or on SIGINT/SIGTERM; the exit status is 1 only when --count was given and
 * not reached, or Kafka could not be used at all. */
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "cli.h"

#define MAX_TOPICS 32
#define MS_MAX (INT64_C(86400000) * 365)
#define POLL_MS 100          /* longest wait in one poll: signals and deadlines are checked between */
#define LOOKUP_RETRY_MS 500  /* a topic not found yet is looked up again after this */
#define LOOKUP_MAX_MS 2000
#define MAX_REPORTED 5

typedef struct {
    const char *topics[MAX_TOPICS];
    size_t ntopics;
    int from_beginning, value_only;
    int64_t count;       /* 0: no limit */
    int64_t timeout_ms;  /* 0: none */
    int64_t idle_ms;     /* 0: none */
    const char *group;   /* NULL: manual assignment */
} consume_opts;

/* Touched by the callbacks, which run inside rd_kafka_consumer_poll() on the main
 * thread (the main queue is forwarded to the consumer queue). */
typedef struct {
    tf_cli_kafka_status ks; /* first: the shared Kafka callbacks find it through the opaque */
    const consume_opts *o;
    int assigned[MAX_TOPICS];   /* manual mode: the topic's partitions are assigned */
    int missing[MAX_TOPICS];    /* manual mode: the broker said the topic does not exist */
    rd_kafka_topic_partition_list_t *assignment;  /* manual mode: every partition assigned */
    int reached;                /* a metadata answer or a group assignment came */
    int64_t idle_since;         /* monotonic ms of the last record or assignment */
    int64_t printed;
    size_t reported;
} consume_state;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Group mode: follows the group's assignment and restarts the idle clock, since
 * records can only come once partitions are assigned. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    consume_state *st = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        st->reached = 1;
        st->idle_since = tf_time_mono_ms();
        if (cooperative)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        if (cooperative)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
    } else {
        rd_kafka_assign(rk, NULL);
    }
    if (e) {
        tf_cli_errorf("consume: rebalance: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
}

/* Returns a consumer, or NULL after printing why (a configuration problem). */
static rd_kafka_t *consumer_new(const tf_config_t *cfg, const consume_opts *o, consume_state *st)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int bad = 0;

    /* Ours first, so kafka.consumer.* from the config can tune them... */
    bad |= tf_cli_kafka_set(conf, "", "client.id", "touchflow-cli");
    if (o->group) {
        bad |= tf_cli_kafka_set(conf, "", "auto.offset.reset", o->from_beginning ? "earliest" : "latest");
        /* A subscribed topic that does not exist yet is found at the next refresh. */
        bad |= tf_cli_kafka_set(conf, "", "topic.metadata.refresh.interval.ms", "2000");
    } else {
        bad |= tf_cli_kafka_set(conf, "", "enable.auto.commit", "false");
    }
    bad |= tf_cli_kafka_passthrough(conf, cfg, RD_KAFKA_CONSUMER);
    /* ...but not what the command line or kafka.brokers said explicitly. */
    if (o->group) {
        bad |= tf_cli_kafka_set(conf, "--group: ", "group.id", o->group);
    } else {
        /* librdkafka assigns only with a group.id; this one never joins (no
         * subscription) and never commits, so the broker never lists it. */
        bad |= tf_cli_kafka_set(conf, "", "group.id", "touchflow-cli-unused");
        bad |= tf_cli_kafka_set(conf, "", "enable.auto.offset.store", "false");
        bad |= tf_cli_kafka_set(conf, "", "enable.auto.commit", "false");
    }
    if (o->group)
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_t *rk = tf_cli_kafka_new(RD_KAFKA_CONSUMER, conf, bad, cfg, st, "consume");
    /* Errors and rebalances are served by rd_kafka_consumer_poll(), on this thread. */
    if (rk)
        rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* Manual mode: the next offset to read of every partition in the assignment, for
 * rebuilding it when a topic is added (librdkafka's incremental assignment needs a
 * group). A partition that has returned records resumes after the last one; one that
 * has not keeps the absolute start offset it was given. */
static int reassign(rd_kafka_t *rk, consume_state *st)
{
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_copy(st->assignment);
    rd_kafka_resp_err_t err;
    rd_kafka_position(rk, pos);
    for (int i = 0; i < pos->cnt; i++)
        if (pos->elems[i].offset >= 0)
            st->assignment->elems[i].offset = pos->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(pos);
    if ((err = rd_kafka_assign(rk, st->assignment)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        tf_cli_errorf("consume: cannot assign partitions: %s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* The end of a partition as an absolute offset, so that a later re-assignment does not
 * skip what arrived meanwhile; the logical end if the broker does not say. */
static int64_t end_offset(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t wait_ms)
{
    int64_t lo, hi;
    if (rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, &hi, (int)wait_ms) == RD_KAFKA_RESP_ERR_NO_ERROR)
        return hi;
    return RD_KAFKA_OFFSET_END;
}

/* Manual mode: looks up each topic not assigned yet and adds all its partitions to
 * the assignment. A topic that does not exist yet is read from its beginning once it
 * appears: everything in it is then new. Returns 0, or -1 on a fatal error. */
static int assign_found(rd_kafka_t *rk, consume_state *st, int64_t wait_ms)
{
    const consume_opts *o = st->o;
    int added = 0;
    for (size_t i = 0; i < o->ntopics; i++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt;
        rd_kafka_resp_err_t err;
        if (st->assigned[i])
            continue;
        if (!(rkt = rd_kafka_topic_new(rk, o->topics[i], NULL))) {
            tf_cli_errorf("consume: %s: %s", o->topics[i], rd_kafka_err2str(rd_kafka_last_error()));
            return -1;
        }
        err = rd_kafka_metadata(rk, 0, rkt, &md, (int)wait_ms);
        rd_kafka_topic_destroy(rkt);
        if (err) {
            tf_strlcpy(st->ks.last_error, rd_kafka_err2str(err), sizeof(st->ks.last_error));
            continue;
        }
        st->reached = 1;
        if (md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0) {
            const struct rd_kafka_metadata_topic *t = &md->topics[0];
            /* A topic created after we started holds only new records: all of it. */
            int beginning = o->from_beginning || st->missing[i];
            for (int p = 0; p < t->partition_cnt; p++) {
                int32_t id = t->partitions[p].id;
                rd_kafka_topic_partition_list_add(st->assignment, o->topics[i], id)->offset =
                    beginning ? RD_KAFKA_OFFSET_BEGINNING : end_offset(rk, o->topics[i], id, wait_ms);
            }
            st->assigned[i] = 1;
            added = 1;
        } else {
            /* Unknown, or still being created (no leader, no partitions yet). */
            st->missing[i] = 1;
            if (md->topic_cnt == 1 && md->topics[0].err)
                snprintf(st->ks.last_error, sizeof(st->ks.last_error), "%s: %s", o->topics[i],
                         rd_kafka_err2str(md->topics[0].err));
        }
        rd_kafka_metadata_destroy(md);
    }
    return added ? reassign(rk, st) : 0;
}

/* ---- output ---- */

static void put_json_string(FILE *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    putc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        fwrite(s + run, 1, i - run, out);
        run = i + 1;
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        case '\b': fputs("\\b", out); break;
        case '\f': fputs("\\f", out); break;
        default: fprintf(out, "\\u00%c%c", hex[c >> 4], hex[c & 0xf]); break;
        }
    }
    fwrite(s + run, 1, n - run, out);
    putc('"', out);
}

static void put_base64(FILE *out, const unsigned char *s, size_t n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    putc('"', out);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        putc(b64[v >> 18 & 63], out);
        putc(b64[v >> 12 & 63], out);
        putc(i + 1 < n ? b64[v >> 6 & 63] : '=', out);
        putc(i + 2 < n ? b64[v & 63] : '=', out);
    }
    putc('"', out);
}

/* ,"<name>":"text" when the bytes are UTF-8, ,"<name>_b64":"..." when not, null when absent. */
static void put_bytes_field(FILE *out, const char *name, const void *p, size_t n)
{
    if (!p) {
        fprintf(out, ",\"%s\":null", name);
    } else if (tf_utf8_valid(p, n)) {
        fprintf(out, ",\"%s\":", name);
        put_json_string(out, p, n);
    } else {
        fprintf(out, ",\"%s_b64\":", name);
        put_base64(out, p, n);
    }
}

/* Header values that are not UTF-8 show each bad byte as U+FFFD: headers are text in
 * everything touchflow writes, and one field per header keeps the object flat. */
static void put_header_value(FILE *out, const char *s, size_t n)
{
    if (tf_utf8_valid(s, n)) {
        put_json_string(out, s, n);
        return;
    }
    char *fixed = malloc(3 * n + 1);
    size_t k = 0;
    if (!fixed) {
        fputs("null", out);
        return;
    }
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len && i + len <= n && tf_utf8_valid(s + i, len)) {
            memcpy(fixed + k, s + i, len);
            k += len;
            i += len;
        } else {
            memcpy(fixed + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    put_json_string(out, fixed, k);
    free(fixed);
}

static void print_record(FILE *out, const consume_opts *o, rd_kafka_message_t *m)
{
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    const char *name;
    const void *val;
    size_t size;

    if (o->value_only) {
        if (m->payload)
            fwrite(m->payload, 1, m->len, out);
        putc('\n', out);
        return;
    }
    fputs("{\"topic\":", out);
    name = rd_kafka_topic_name(m->rkt);
    put_json_string(out, name, strlen(name));
    fprintf(out, ",\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld", (int)m->partition, (long long)m->offset,
            (long long)ts);
    put_bytes_field(out, "key", m->key, m->key_len);
    put_bytes_field(out, "value", m->payload, m->len);
    fputs(",\"headers\":{", out);
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
            if (i)
                putc(',', out);
            put_json_string(out, name, strlen(name));
            putc(':', out);
            if (val)
                put_header_value(out, val, size);
            else
                fputs("null", out);
        }
    }
    fputs("}}\n", out);
}

/* A consumer error that reached the application; the transient ones are retried by
 * librdkafka and only logged. */
static void on_consume_error(consume_state *st, const rd_kafka_message_t *m)
{
    const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : NULL;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    snprintf(st->ks.last_error, sizeof(st->ks.last_error), "%s%s%s", topic ? topic : "", topic ? ": " : "",
             rd_kafka_message_errstr(m));
    /* A subscribed topic that does not exist yet: it may still be created. */
    if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
        m->err == RD_KAFKA_RESP_ERR__TRANSPORT || m->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        TF_INFO("kafka", "%s", st->ks.last_error);
        return;
    }
    if (st->reported++ < MAX_REPORTED)
        tf_cli_errorf("consume: %s", st->ks.last_error);
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* The read loop; returns why it stopped. */
enum { STOP_COUNT, STOP_IDLE, STOP_TIMEOUT, STOP_SIGNAL, STOP_FATAL };

static int consume_loop(rd_kafka_t *rk, consume_state *st)
{
    const consume_opts *o = st->o;
    int64_t start = tf_time_mono_ms(), next_lookup = start;
    int64_t deadline = o->timeout_ms ? start + o->timeout_ms : INT64_MAX;
    size_t unassigned = o->group ? 0 : o->ntopics;

    st->idle_since = start;
    for (;;) {
        int64_t now = tf_time_mono_ms(), wait = POLL_MS;
        rd_kafka_message_t *m;
        if (st->ks.fatal)
            return STOP_FATAL;
        if (interrupted)
            return STOP_SIGNAL;
        if (o->count && st->printed >= o->count)
            return STOP_COUNT;
        if (now >= deadline)
            return STOP_TIMEOUT;
        if (o->idle_ms && now - st->idle_since >= o->idle_ms)
            return STOP_IDLE;
        if (unassigned && now >= next_lookup) {
            int was_reached = st->reached;
            size_t left = 0;
            if (assign_found(rk, st, min64(LOOKUP_MAX_MS, deadline - now)) != 0)
                return STOP_FATAL;
            for (size_t i = 0; i < o->ntopics; i++)
                left += !st->assigned[i];
            /* The idle clock starts once reading can start. */
            if (left < unassigned || (!was_reached && st->reached))
                st->idle_since = tf_time_mono_ms();
            unassigned = left;
            next_lookup = tf_time_mono_ms() + LOOKUP_RETRY_MS;
            continue;
        }
        wait = min64(wait, deadline - now);
        if (o->idle_ms)
            wait = min64(wait, st->idle_since + o->idle_ms - now);
        if (unassigned)
            wait = min64(wait, next_lookup - now);
        if (wait < 0)
            wait = 0;
        if (!(m = rd_kafka_consumer_poll(rk, (int)wait))) {
            /* Nothing waiting: show what was read so far (a pipe to jq, a terminal). */
            fflush(stdout);
            continue;
        }
        if (m->err) {
            on_consume_error(st, m);
        } else {
            print_record(stdout, o, m);
            st->printed++;
            st->idle_since = tf_time_mono_ms();
        }
        rd_kafka_message_destroy(m);
    }
}

/* Parses the command's options into o; TF_CLI_OK, or an exit status to return. */
static int parse_args(int argc, char **argv, consume_opts *o, int *help)
{
    enum { OPT_FROM_BEGINNING = 256, OPT_COUNT, OPT_TIMEOUT, OPT_IDLE, OPT_GROUP, OPT_VALUE_ONLY };
    static const struct option longopts[] = {
        {"topic", required_argument, NULL, 't'},
        {"from-beginning", no_argument, NULL, OPT_FROM_BEGINNING},
        {"count", required_argument, NULL, OPT_COUNT},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"idle-ms", required_argument, NULL, OPT_IDLE},
        {"group", required_argument, NULL, OPT_GROUP},
        {"value-only", no_argument, NULL, OPT_VALUE_ONLY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    optind = 0;
    while ((c = getopt_long(argc, argv, ":t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (tf_cli_topic_option("consume", optarg, o->topics, &o->ntopics, MAX_TOPICS))
                return TF_CLI_USAGE;
            break;
        case OPT_FROM_BEGINNING: o->from_beginning = 1; break;
        case OPT_COUNT:
            if (tf_cli_int_option("consume", "--count", optarg, 1, INT64_MAX, &o->count))
                return TF_CLI_USAGE;
            break;
        case OPT_TIMEOUT:
            if (tf_cli_int_option("consume", "--timeout-ms", optarg, 1, MS_MAX, &o->timeout_ms))
                return TF_CLI_USAGE;
            break;
        case OPT_IDLE:
            if (tf_cli_int_option("consume", "--idle-ms", optarg, 1, MS_MAX, &o->idle_ms))
                return TF_CLI_USAGE;
            break;
        case OPT_GROUP:
            if (!optarg[0] || strlen(optarg) > 255) {
                tf_cli_errorf("consume: --group: expected 1-255 bytes");
                return TF_CLI_USAGE;
            }
            o->group = optarg;
            break;
        case OPT_VALUE_ONLY: o->value_only = 1; break;
        case 'h': *help = 1; return TF_CLI_OK;
        default: return tf_cli_bad_option("consume", c, argv);
        }
    }
    if (!o->ntopics) {
        tf_cli_errorf("consume: --topic is required");
        return TF_CLI_USAGE;
    }
    return tf_cli_no_operands("consume", argc, argv);
}

static int report(const consume_state *st, int why, const char *brokers)
{
    const consume_opts *o = st->o;
    static const char *const what[] = {"", "nothing came for --idle-ms", "--timeout-ms passed", "interrupted",
                                       "fatal error"};
    if (why == STOP_FATAL)
        return TF_CLI_FAIL;
    if (!st->reached && why != STOP_SIGNAL) {
        tf_cli_errorf("consume: no answer from Kafka at %s%s%s", brokers, st->ks.last_error[0] ? ": " : "",
                      st->ks.last_error);
        return TF_CLI_FAIL;
    }
    if (!o->group)
        for (size_t i = 0; i < o->ntopics; i++)
            if (!st->assigned[i])
                tf_cli_errorf("consume: topic %s not found (no record read from it)", o->topics[i]);
    if (o->count && st->printed < o->count) {
        tf_cli_errorf("consume: %lld of %lld record%s before stopping (%s)", (long long)st->printed,
                      (long long)o->count, o->count == 1 ? "" : "s", what[why]);
        return TF_CLI_FAIL;
    }
    return TF_CLI_OK;
}

int tf_cli_cmd_consume(const tf_cli_opts *opts, int argc, char **argv)
{
    consume_opts o;
    consume_state st;
    tf_config_t *cfg = NULL;
    rd_kafka_t *rk = NULL;
    struct sigaction sa, old_int, old_term;
    int help = 0, rc, why;

    if ((rc = parse_args(argc, argv, &o, &help)) != TF_CLI_OK || help) {
        if (help)
            tf_cli_usage(stdout);
        return rc;
    }
    memset(&st, 0, sizeof(st));
    st.ks.cmd = "consume";
    st.o = &o;
    st.assignment = rd_kafka_topic_partition_list_new(16);
    if (!(cfg = malloc(sizeof(*cfg)))) {
        tf_cli_errorf("out of memory");
        rc = TF_CLI_FAIL;
        goto done;
    }
    if ((rc = tf_cli_config_load(opts, cfg)) != TF_CLI_OK)
        goto done;
    if (!(rk = consumer_new(cfg, &o, &st))) {
        rc = TF_CLI_USAGE;
        goto done;
    }
    if (o.group) {
        rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new((int)o.ntopics);
        rd_kafka_resp_err_t err;
        for (size_t i = 0; i < o.ntopics; i++)
            rd_kafka_topic_partition_list_add(topics, o.topics[i], RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(rk, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (err) {
            tf_cli_errorf("consume: cannot subscribe: %s", rd_kafka_err2str(err));
            rc = TF_CLI_FAIL;
            goto done;
        }
    }
    /* SA_RESETHAND: a second signal kills us, should closing the consumer hang. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    why = consume_loop(rk, &st);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        tf_cli_errorf("consume: cannot write the records to stdout");
        why = STOP_FATAL;
    }
    rc = report(&st, why, cfg->brokers);
    /* Leaves the group (committing what was read, in group mode). */
    rd_kafka_consumer_close(rk);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
done:
    if (rk)
        rd_kafka_destroy(rk);
    rd_kafka_topic_partition_list_destroy(st.assignment);
    free(cfg);
    return rc;
}
