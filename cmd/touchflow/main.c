/* touchflow: the operator CLI. Parses the global options and hands the rest of the
 * command line to one command (cmd_*.c). */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <hiredis.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "cli.h"

void tf_cli_usage(FILE *out)
{
    fputs("Usage: touchflow [global options] <command> [command options] [args]\n"
          "\n"
          "Operator CLI for touchflow: inspect customers, produce and generate touchpoints,\n"
          "read topics, check configs.\n"
          "\n"
          "Commands:\n"
          "  customer get ID            Print a customer's state from Redis as JSON\n"
          "  produce -t TOPIC [FILE]    Produce CloudEvents, one JSON object per line, from\n"
          "                             FILE or stdin (\"-\")\n"
          "  consume -t TOPIC...        Print records of topics as JSON lines\n"
          "  gen [--count N]            Generate synthetic touchpoints (JSON lines or to Kafka)\n"
          "  config check FILE...       Validate config files (TOUCHFLOW_* environment applied)\n"
          "  lag                        Committed offsets and lag per partition of the group\n"
          "  stats [--json] [--days N]  Population figures from Redis: stages, churn and\n"
          "                             retention, satisfaction, complaints, exits, campaigns\n"
          "  dlq replay                 Re-inject dead letters (original record) after a fix\n"
          "  route [FILE]               Dry run: which subscriptions would receive a derived\n"
          "                             event (JSON as on the topic, from FILE or stdin)\n"
          "  help                       Show this help\n"
          "\n"
          "Global options (before the command):\n"
          "  -c, --config FILE          Config file (default: built-in defaults + environment)\n"
          "  -b, --brokers HOST:PORT    Kafka bootstrap brokers, comma-separated (kafka.brokers)\n"
          "  -r, --redis URL            redis://[user:pass@]host[:port][/db], or a Redis Cluster:\n"
          "                             redis+cluster://[user:pass@]host:port[,...] (redis.url)\n"
          "  -o, --set KEY=VALUE        Override any config key, e.g. -o redis.key_prefix=t1:\n"
          "  -v, --verbose              Log more on stderr (twice: debug)\n"
          "  -h, --help                 Show this help\n"
          "  -V, --version              Show the version\n"
          "\n"
          "Produce options:\n"
          "  -t, --topic TOPIC          Topic to produce to (required)\n"
          "  -k, --key-field FIELD      Top-level string field used as the key (default: subject)\n"
          "      --no-key               Produce without a key\n"
          "      --binary               Binary content mode: ce_* headers, value = JSON of data\n"
          "      --raw                  Send each line as-is, unparsed and without a key\n"
          "      --timeout-ms MS        Give up on delivery after MS (default: 30000)\n"
          "\n"
          "Consume options (output: {\"topic\",\"partition\",\"offset\",\"timestamp\",\"key\",\"value\",\n"
          "\"headers\"} per line; \"value_b64\"/\"key_b64\" when not UTF-8):\n"
          "  -t, --topic TOPIC          Topic to read (repeatable; required)\n"
          "      --from-beginning       Start at the beginning (default: the end; a topic that\n"
          "                             does not exist yet is read from its beginning)\n"
          "      --count N              Stop after N records (exit 1 if fewer came)\n"
          "      --idle-ms MS           Stop when no record came for MS\n"
          "      --timeout-ms MS        Stop after MS in all (default: run until interrupted)\n"
          "      --group G              Join consumer group G and commit (default: read every\n"
          "                             partition without a group, commit nothing)\n"
          "      --value-only           Print only each record's value\n"
          "\n"
          "Gen options (valid CloudEvents, a realistic mix of kinds, deterministic per seed):\n"
          "      --count N              Events to generate (default: 1000)\n"
          "      --rate R               Pace to R events/s (token bucket)\n"
          "      --duration-s S         With --rate: generate R x S events\n"
          "      --customers C          Customers c-1..c-C, chosen uniformly (default: 50000)\n"
          "      --seed S               Random seed; ids are g<S>-<n> (default: 1)\n"
          "      --start-time RFC3339   First event time (default: now minus N seconds); times\n"
          "                             advance ~1 s per event and never pass now\n"
          "  -t, --topic TOPIC          Produce to Kafka (idempotent, batched)\n"
          "      --file PATH            Write JSON lines to PATH (default: stdout)\n"
          "\n"
          "Lag options (default: kafka.group_id and kafka.input_topics):\n"
          "      --group G              Consumer group to describe\n"
          "  -t, --topic TOPIC          Topic (repeatable)\n"
          "      --json                 A JSON array instead of the table\n"
          "      --timeout-ms MS        Kafka request timeout (default: 10000)\n"
          "\n"
          "DLQ replay options (progress is the replay group's committed offset):\n"
          "      --reason CODE[,CODE]   Only these tf-error-code values (default: all)\n"
          "      --to-topic T           Send here instead of each record's tf-source-topic\n"
          "      --dlq-topic T          Dead-letter topic (default: kafka.dlq_topic)\n"
          "      --group G              Replay group (default: <group>.dlq-replay.<reasons>)\n"
          "      --dry-run              List what would be replayed; commit nothing\n"
          "      --idle-ms MS           Stop when nothing came for MS (default: 3000)\n"
          "\n"
          "Route options (the subscriptions of -c/-o; output: receivers, then each skipped\n"
          "subscription with the first filter field that turned the event away):\n"
          "      --type TYPE            Binary mode: the input is the data object of a TYPE event\n"
          "      --subject ID           The customer, for the output (binary mode)\n"
          "      --json                 One JSON object instead of the lines\n"
          "\n"
          "Configuration: defaults < config file < TOUCHFLOW_* environment < command line.\n"
          "Environment: TOUCHFLOW_KAFKA_BROKERS, TOUCHFLOW_REDIS_URL, TOUCHFLOW_KEY_PREFIX, ...\n"
          "\n"
          "Exit status: 0 ok, 1 failure (not found, unreachable, not delivered),\n"
          "             2 usage or configuration error.\n"
          "\n"
          "Examples:\n"
          "  touchflow -r redis://127.0.0.1:6379 customer get c-1001\n"
          "  touchflow -b 127.0.0.1:9092 produce -t touchpoints events.jsonl\n"
          "  touchflow -b 127.0.0.1:9092 gen --count 200000 -t touchpoints\n"
          "  touchflow consume -t touchflow.lifecycle --from-beginning --idle-ms 2000\n"
          "  touchflow config check config/touchflow.json\n"
          "  touchflow -c touchflow.json route event.json\n",
          out);
}

void tf_cli_errorf(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* One write, so it never interleaves with librdkafka's logging threads. */
    fprintf(stderr, "touchflow: %s\n", msg);
}

int tf_cli_int_option(const char *cmd, const char *opt, const char *arg, int64_t min, int64_t max, int64_t *out)
{
    int64_t v;
    if (tf_parse_i64(arg, strlen(arg), &v) != TF_OK || v < min || v > max) {
        if (max == INT64_MAX)
            tf_cli_errorf("%s: %s: expected an integer of at least %lld", cmd, opt, (long long)min);
        else
            tf_cli_errorf("%s: %s: expected an integer between %lld and %lld", cmd, opt, (long long)min,
                          (long long)max);
        return TF_CLI_USAGE;
    }
    *out = v;
    return TF_CLI_OK;
}

int tf_cli_topic_option(const char *cmd, const char *arg, const char **topics, size_t *n, size_t max)
{
    char why[256];
    if (tf_config_topic_check(arg, why, sizeof(why)) != TF_OK) {
        tf_cli_errorf("%s: --topic: %s", cmd, why);
        return TF_CLI_USAGE;
    }
    if (*n == max) {
        tf_cli_errorf("%s: at most %zu topics", cmd, max);
        return TF_CLI_USAGE;
    }
    for (size_t i = 0; i < *n; i++)
        if (strcmp(topics[i], arg) == 0) {
            tf_cli_errorf("%s: topic '%s' given twice", cmd, arg);
            return TF_CLI_USAGE;
        }
    topics[(*n)++] = arg;
    return TF_CLI_OK;
}

int tf_cli_no_operands(const char *cmd, int argc, char **argv)
{
    if (optind < argc) {
        tf_cli_errorf("%s: unexpected argument '%s'", cmd, argv[optind]);
        return TF_CLI_USAGE;
    }
    return TF_CLI_OK;
}

int tf_cli_bad_option(const char *cmd, int c, char **argv)
{
    const char *where = cmd ? cmd : "";
    const char *sep = cmd ? ": " : "";
    if (c == ':')
        tf_cli_errorf("%s%soption '%s' needs a value", where, sep, argv[optind - 1]);
    else if (optopt)
        tf_cli_errorf("%s%sunknown option '-%c'", where, sep, optopt);
    else
        tf_cli_errorf("%s%sunknown option '%s'", where, sep, argv[optind - 1]);
    fprintf(stderr, "Try 'touchflow --help' for more information.\n");
    return TF_CLI_USAGE;
}

static void print_version(void)
{
    printf("touchflow %s (librdkafka %s, hiredis %d.%d.%d, jansson %s)\n", TOUCHFLOW_VERSION,
           rd_kafka_version_str(), HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH, JANSSON_VERSION);
}

static int add_override(tf_cli_opts *opts, const char *key, const char *value)
{
    if (opts->noverrides == TF_CLI_MAX_OVERRIDES) {
        tf_cli_errorf("too many overrides (at most %d)", TF_CLI_MAX_OVERRIDES);
        return TF_CLI_USAGE;
    }
    opts->override_key[opts->noverrides] = key;
    opts->override_value[opts->noverrides] = value;
    opts->noverrides++;
    return TF_CLI_OK;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"brokers", required_argument, NULL, 'b'},
        {"redis", required_argument, NULL, 'r'},  {"set", required_argument, NULL, 'o'},
        {"verbose", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    tf_cli_opts opts;
    int c, verbose = 0, rc = TF_CLI_OK;
    const char *cmd;

    memset(&opts, 0, sizeof(opts));
    opterr = 0;
    /* '+': stop at the command word, so the command's own options are left for it. */
    while (rc == TF_CLI_OK && (c = getopt_long(argc, argv, "+:c:b:r:o:vhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': opts.config_path = optarg; break;
        case 'b': rc = add_override(&opts, "kafka.brokers", optarg); break;
        case 'r': rc = add_override(&opts, "redis.url", optarg); break;
        case 'o': rc = add_override(&opts, NULL, optarg); break;
        case 'v': verbose++; break;
        case 'h': tf_cli_usage(stdout); return TF_CLI_OK;
        case 'V': print_version(); return TF_CLI_OK;
        default: return tf_cli_bad_option(NULL, c, argv);
        }
    }
    if (rc != TF_CLI_OK)
        return rc;
    /* The CLI talks to the operator in plain lines; JSON logs (librdkafka's included)
     * only show warnings unless asked for. */
    tf_log_set_level(verbose >= 2 ? TF_LOG_DEBUG : verbose == 1 ? TF_LOG_INFO : TF_LOG_WARN);

    if (optind >= argc) {
        tf_cli_usage(stderr);
        return TF_CLI_USAGE;
    }
    cmd = argv[optind];
    argc -= optind;
    argv += optind;
    if (strcmp(cmd, "help") == 0) {
        tf_cli_usage(stdout);
        return TF_CLI_OK;
    }
    if (strcmp(cmd, "customer") == 0)
        return tf_cli_cmd_customer(&opts, argc, argv);
    if (strcmp(cmd, "produce") == 0)
        return tf_cli_cmd_produce(&opts, argc, argv);
    if (strcmp(cmd, "config") == 0)
        return tf_cli_cmd_config(&opts, argc, argv);
    if (strcmp(cmd, "dlq") == 0)
        return tf_cli_cmd_dlq(&opts, argc, argv);
    if (strcmp(cmd, "lag") == 0)
        return tf_cli_cmd_lag(&opts, argc, argv);
    if (strcmp(cmd, "consume") == 0)
        return tf_cli_cmd_consume(&opts, argc, argv);
    if (strcmp(cmd, "gen") == 0)
        return tf_cli_cmd_gen(&opts, argc, argv);
    if (strcmp(cmd, "route") == 0)
        return tf_cli_cmd_route(&opts, argc, argv);
    if (strcmp(cmd, "stats") == 0)
        return tf_cli_cmd_stats(&opts, argc, argv);
    tf_cli_errorf("unknown command '%s'", cmd);
    fprintf(stderr, "Try 'touchflow --help' for more information.\n");
    return TF_CLI_USAGE;
}
