/* `touchflow produce`: CloudEvents, one JSON object per line, onto a Kafka topic.
 *
 * Structured mode sends each line's bytes unchanged with content-type
 * application/cloudevents+json; --binary moves the attributes into ce_* headers and
 * sends the JSON of "data" as the value; --raw sends lines unparsed (for feeding the
 * dead-letter path on purpose). The exit status is 0 only when every line was valid
 * and every record was acknowledged by the broker. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "cli.h"

#define MAX_REPORTED 5
#define TIMEOUT_MAX_MS INT64_C(86400000)

typedef struct {
    const char *topic;
    const char *key_field;      /* NULL: records without a key */
    int binary, raw;
    int64_t timeout_ms;
    int timeout_given;
    const char *path;           /* NULL or "-": stdin */
    const char *name;           /* for messages */
} produce_opts;

/* Touched by the delivery and error callbacks, which run inside rd_kafka_poll() and
 * rd_kafka_flush() on the main thread. */
typedef struct {
    tf_cli_kafka_status ks; /* first: the shared Kafka callbacks find it through the opaque */
    const produce_opts *o;
    size_t queued;       /* accepted by rd_kafka_producev() */
    size_t refused;      /* refused by rd_kafka_producev() */
    size_t delivered;    /* acknowledged by the broker */
    size_t invalid;      /* lines skipped */
    size_t reported;     /* per-record errors printed */
    rd_kafka_resp_err_t first_err;
} produce_state;

enum { LINE_QUEUED = 0, LINE_INVALID, LINE_FAILED };

/* Set by SIGINT/SIGTERM: stop reading, deliver what was read. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    produce_state *st = opaque;
    (void)rk;
    if (!m->err) {
        st->delivered++;
        return;
    }
    if (!st->first_err)
        st->first_err = m->err;
    if (st->reported++ < MAX_REPORTED)
        tf_cli_errorf("produce: %s:%ld: not delivered: %s", st->o->name, (long)(intptr_t)m->_private,
                      rd_kafka_err2str(m->err));
}

/* Returns a producer, or NULL after printing why (always a configuration problem). */
static rd_kafka_t *producer_new(const tf_config_t *cfg, const produce_opts *o, produce_state *st)
{
    char tmo[32];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int bad = 0;

    snprintf(tmo, sizeof(tmo), "%lld", (long long)o->timeout_ms);
    /* Ours first, so kafka.producer.* from the config can tune them... */
    bad |= tf_cli_kafka_set(conf, "", "client.id", "touchflow-cli");
    bad |= tf_cli_kafka_set(conf, "", "enable.idempotence", "true");
    bad |= tf_cli_kafka_set(conf, "", "linger.ms", "5");
    /* Same key -> partition mapping as the Java clients that feed touchflow. */
    bad |= tf_cli_kafka_set(conf, "", "partitioner", "murmur2_random");
    if (!o->timeout_given)
        bad |= tf_cli_kafka_set(conf, "", "message.timeout.ms", tmo);
    bad |= tf_cli_kafka_passthrough(conf, cfg, RD_KAFKA_PRODUCER);
    /* ...but not what the command line or kafka.brokers said explicitly. */
    if (o->timeout_given)
        bad |= tf_cli_kafka_set(conf, "--timeout-ms: ", "message.timeout.ms", tmo);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    return tf_cli_kafka_new(RD_KAFKA_PRODUCER, conf, bad, cfg, st, "produce");
}

/* Queues one record; headers are taken (freed here on failure). */
static int send_record(rd_kafka_t *rk, produce_state *st, const char *key, size_t keylen, const void *val,
                       size_t vlen, rd_kafka_headers_t *hdrs, long lineno)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(st->o->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, keylen), RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_OPAQUE((void *)(intptr_t)lineno), RD_KAFKA_V_END);
        if (!err) {
            st->queued++;
            return LINE_QUEUED;
        }
        /* A full local queue drains as deliveries complete or time out. */
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !interrupted && !st->ks.fatal) {
            rd_kafka_poll(rk, 100);
            continue;
        }
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        st->refused++;
        if (!st->first_err)
            st->first_err = err;
        if (st->reported++ < MAX_REPORTED)
            tf_cli_errorf("produce: %s:%ld: cannot produce: %s", st->o->name, lineno, rd_kafka_err2str(err));
        return LINE_FAILED;
    }
}

/* Binary content mode (CloudEvents Kafka binding): every attribute but data becomes a
 * ce_<name> header (datacontenttype becomes content-type); the value is data's JSON. */
static rd_kafka_headers_t *binary_headers(json_t *ev, char **value, size_t *vlen, const char **why)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(8);
    const char *k;
    json_t *v, *data = json_object_get(ev, "data");
    int has_ct = 0;

    *value = NULL;
    *vlen = 0;
    if (json_object_get(ev, "data_base64")) {
        *why = "data_base64 is not supported with --binary";
        goto fail;
    }
    json_object_foreach(ev, k, v) {
        char name[300], *text = NULL;
        const char *s;
        size_t n;
        if (strcmp(k, "data") == 0)
            continue;
        has_ct |= strcmp(k, "datacontenttype") == 0;
        if (strcmp(k, "datacontenttype") == 0)
            tf_strlcpy(name, "content-type", sizeof(name));
        else if (snprintf(name, sizeof(name), "ce_%s", k) >= (int)sizeof(name)) {
            *why = "attribute name too long";
            goto fail;
        }
        if (json_is_string(v)) {
            s = json_string_value(v);
            n = json_string_length(v);
        } else {
            /* Not a valid attribute; sent anyway so the daemon's validator names it. */
            if (!(text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)))
                goto nomem;
            s = text;
            n = strlen(text);
        }
        rd_kafka_header_add(hdrs, name, -1, s, (ssize_t)n);
        free(text);
    }
    if (data) {
        if (!(*value = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY)))
            goto nomem;
        *vlen = strlen(*value);
        if (!has_ct)
            rd_kafka_header_add(hdrs, "content-type", -1, "application/json", -1);
    }
    return hdrs;
nomem:
    *why = "out of memory";
fail:
    rd_kafka_headers_destroy(hdrs);
    return NULL;
}

static int produce_json_line(rd_kafka_t *rk, produce_state *st, const char *line, size_t n, long lineno)
{
    const produce_opts *o = st->o;
    const char *key = NULL, *why = NULL;
    size_t keylen = 0, vlen = n;
    char *value = NULL;
    rd_kafka_headers_t *hdrs;
    json_error_t jerr;
    json_t *ev = json_loadb(line, n, 0, &jerr);
    int rc = LINE_INVALID;

    if (!ev) {
        tf_cli_errorf("produce: %s:%ld: invalid JSON at column %d: %s", o->name, lineno, jerr.column, jerr.text);
        return LINE_INVALID;
    }
    if (!json_is_object(ev)) {
        tf_cli_errorf("produce: %s:%ld: not a JSON object", o->name, lineno);
        goto done;
    }
    if (o->key_field) {
        json_t *k = json_object_get(ev, o->key_field);
        if (!json_is_string(k)) {
            tf_cli_errorf("produce: %s:%ld: no string \"%s\" field for the record key (--no-key sends "
                          "without one)", o->name, lineno, o->key_field);
            goto done;
        }
        key = json_string_value(k);
        keylen = json_string_length(k);
    }
    if (o->binary) {
        if (!(hdrs = binary_headers(ev, &value, &vlen, &why))) {
            tf_cli_errorf("produce: %s:%ld: %s", o->name, lineno, why);
            goto done;
        }
    } else {
        hdrs = rd_kafka_headers_new(1);
        rd_kafka_header_add(hdrs, "content-type", -1, "application/cloudevents+json", -1);
    }
    /* The key points into ev, which lives until after the copy below. */
    rc = send_record(rk, st, key, keylen, o->binary ? value : line, vlen, hdrs, lineno);
done:
    free(value);
    json_decref(ev);
    return rc;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f' && s[i] != '\v')
            return 0;
    return 1;
}

/* Reads and queues every line; returns 0, or -1 when the input could not be read. */
static int produce_lines(rd_kafka_t *rk, produce_state *st, FILE *in)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = 0;

    while (!interrupted && !st->ks.fatal && (n = getline(&line, &cap, in)) != -1) {
        lineno++;
        if (n > 0 && line[n - 1] == '\n')
            n--;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (is_blank(line, (size_t)n))
            continue;
        if (st->o->raw)
            send_record(rk, st, NULL, 0, line, (size_t)n, NULL, lineno);
        else if (produce_json_line(rk, st, line, (size_t)n, lineno) == LINE_INVALID)
            st->invalid++;
        rd_kafka_poll(rk, 0);  /* serve delivery reports as we go */
    }
    if (ferror(in) && !interrupted) {
        tf_cli_errorf("produce: cannot read %s: %s", st->o->name, strerror(errno));
        rc = -1;
    }
    free(line);
    return rc;
}

/* Waits for every delivery report; what is left after the timeout is purged, so
 * each record is counted once as delivered or failed. */
static void drain(rd_kafka_t *rk, const produce_state *st)
{
    rd_kafka_flush(rk, (int)(st->o->timeout_ms + 2000));
    if (rd_kafka_outq_len(rk) > 0) {
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(rk, 2000);
    }
}

static int report(const produce_state *st, int read_failed)
{
    const produce_opts *o = st->o;
    /* Records refused locally, plus queued ones without a successful report. */
    size_t not_delivered = st->refused + (st->queued - st->delivered);
    char msg[1024];
    size_t n = (size_t)snprintf(msg, sizeof(msg), "produced %zu record%s to %s", st->delivered,
                                st->delivered == 1 ? "" : "s", o->topic);
    if (not_delivered > 0 && n < sizeof(msg))
        n += (size_t)snprintf(msg + n, sizeof(msg) - n, "; %zu not delivered (%s)", not_delivered,
                              rd_kafka_err2str(st->first_err ? st->first_err : RD_KAFKA_RESP_ERR__TIMED_OUT));
    if (st->invalid > 0 && n < sizeof(msg))
        snprintf(msg + n, sizeof(msg) - n, "; %zu invalid line%s skipped", st->invalid, st->invalid == 1 ? "" : "s");
    tf_cli_errorf("%s", msg);
    if (not_delivered > 0 && st->ks.last_error[0])
        tf_cli_errorf("last Kafka error: %s", st->ks.last_error);
    if (interrupted)
        tf_cli_errorf("produce: interrupted before the end of %s", o->name);
    return (not_delivered || st->invalid || read_failed || interrupted || st->ks.fatal) ? TF_CLI_FAIL : TF_CLI_OK;
}

static int parse_timeout(const char *s, int64_t *out)
{
    if (tf_parse_i64(s, strlen(s), out) != TF_OK || *out < 1 || *out > TIMEOUT_MAX_MS) {
        tf_cli_errorf("produce: --timeout-ms: expected milliseconds between 1 and %lld", (long long)TIMEOUT_MAX_MS);
        return -1;
    }
    return 0;
}

/* Parses the command's options into o; TF_CLI_OK, or an exit status to return. */
static int parse_args(int argc, char **argv, produce_opts *o, int *help)
{
    enum { OPT_NO_KEY = 256, OPT_BINARY, OPT_RAW, OPT_TIMEOUT };
    static const struct option longopts[] = {
        {"topic", required_argument, NULL, 't'},      {"key-field", required_argument, NULL, 'k'},
        {"no-key", no_argument, NULL, OPT_NO_KEY},    {"binary", no_argument, NULL, OPT_BINARY},
        {"raw", no_argument, NULL, OPT_RAW},          {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0},
    };
    int c, no_key = 0, key_given = 0;
    char why[256];

    memset(o, 0, sizeof(*o));
    o->key_field = "subject";
    o->timeout_ms = 30000;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":t:k:h", longopts, NULL)) != -1) {
        switch (c) {
        case 't': o->topic = optarg; break;
        case 'k': o->key_field = optarg; key_given = 1; break;
        case OPT_NO_KEY: no_key = 1; break;
        case OPT_BINARY: o->binary = 1; break;
        case OPT_RAW: o->raw = 1; break;
        case OPT_TIMEOUT:
            if (parse_timeout(optarg, &o->timeout_ms))
                return TF_CLI_USAGE;
            o->timeout_given = 1;
            break;
        case 'h': *help = 1; return TF_CLI_OK;
        default: return tf_cli_bad_option("produce", c, argv);
        }
    }
    if (!o->topic) {
        tf_cli_errorf("produce: --topic is required");
        return TF_CLI_USAGE;
    }
    if (tf_config_topic_check(o->topic, why, sizeof(why)) != TF_OK) {
        tf_cli_errorf("produce: --topic: %s", why);
        return TF_CLI_USAGE;
    }
    if (argc - optind > 1) {
        tf_cli_errorf("produce: expected at most one FILE, got '%s' and '%s'", argv[optind], argv[optind + 1]);
        return TF_CLI_USAGE;
    }
    if ((no_key && key_given) || (o->raw && (o->binary || key_given))) {
        tf_cli_errorf("produce: --raw sends lines unparsed: no --binary or --key-field with it; "
                      "--no-key excludes --key-field");
        return TF_CLI_USAGE;
    }
    if (no_key || o->raw)
        o->key_field = NULL;
    if (optind < argc && strcmp(argv[optind], "-") != 0)
        o->path = argv[optind];
    o->name = o->path ? o->path : "<stdin>";
    return TF_CLI_OK;
}

int tf_cli_cmd_produce(const tf_cli_opts *opts, int argc, char **argv)
{
    produce_opts o;
    produce_state st;
    tf_config_t *cfg = NULL;
    rd_kafka_t *rk = NULL;
    FILE *in = NULL;
    struct sigaction sa, old_int, old_term;
    int help = 0, rc, read_failed;

    if ((rc = parse_args(argc, argv, &o, &help)) != TF_CLI_OK || help) {
        if (help)
            tf_cli_usage(stdout);
        return rc;
    }
    memset(&st, 0, sizeof(st));
    st.ks.cmd = "produce";
    st.o = &o;
    if (!(cfg = malloc(sizeof(*cfg)))) {
        tf_cli_errorf("out of memory");
        return TF_CLI_FAIL;
    }
    if ((rc = tf_cli_config_load(opts, cfg)) != TF_CLI_OK)
        goto done;
    in = o.path ? fopen(o.path, "r") : stdin;
    if (!in) {
        tf_cli_errorf("produce: cannot open %s: %s", o.path, strerror(errno));
        rc = TF_CLI_FAIL;
        goto done;
    }
    if (!(rk = producer_new(cfg, &o, &st))) {
        rc = TF_CLI_USAGE;
        goto done;
    }
    /* No SA_RESTART: an interrupt must break a blocking read of stdin. SA_RESETHAND:
     * a second one kills us, should the final flush hang. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    read_failed = produce_lines(rk, &st, in) != 0;
    drain(rk, &st);
    rc = report(&st, read_failed);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
done:
    if (rk)
        rd_kafka_destroy(rk);
    if (in && in != stdin)
        fclose(in);
    free(cfg);
    return rc;
}
