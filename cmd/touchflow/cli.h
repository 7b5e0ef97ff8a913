/* touchflow CLI: what the command files share (not a library header).
 *
 * Exit status is a small closed set, like redis-cli and kcat: 0 ok, 1 runtime
 * failure (not found, connection failed, not delivered), 2 usage or config error.
 * Messages for the operator go to stderr as "touchflow: ..."; results go to stdout. */
#ifndef TF_CLI_H
#define TF_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"
#include "core/core.h"

enum { TF_CLI_OK = 0, TF_CLI_FAIL = 1, TF_CLI_USAGE = 2 };

#define TF_CLI_MAX_OVERRIDES 64

/* Global options, in command-line order where order matters. Strings are borrowed
 * from argv. */
typedef struct {
    const char *config_path;                   /* -c; NULL: defaults + environment */
    size_t noverrides;
    const char *override_key[TF_CLI_MAX_OVERRIDES];   /* NULL: value is "key=value" (-o) */
    const char *override_value[TF_CLI_MAX_OVERRIDES];
} tf_cli_opts;

/* Prints "touchflow: <message>" and a newline on stderr. */
void tf_cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reports a getopt failure of command cmd ('?' or ':') and returns TF_CLI_USAGE. */
int tf_cli_bad_option(const char *cmd, int c, char **argv);
/* Parses the integer value arg of option opt into *out, within [min, max]; on a
 * bad value reports it for command cmd and returns TF_CLI_USAGE. */
int tf_cli_int_option(const char *cmd, const char *opt, const char *arg, int64_t min, int64_t max, int64_t *out);
/* Adds a --topic value to topics (n of at most max), refusing a bad name and one
 * given twice; TF_CLI_OK or TF_CLI_USAGE (reported). */
int tf_cli_topic_option(const char *cmd, const char *arg, const char **topics, size_t *n, size_t max);
/* TF_CLI_OK when getopt left no operand behind, else reports the first one and
 * returns TF_CLI_USAGE. */
int tf_cli_no_operands(const char *cmd, int argc, char **argv);
void tf_cli_usage(FILE *out);

/* Prints each line of a config error buffer as "<prefix><origin>: <line>". */
void tf_cli_print_problems(FILE *out, const char *prefix, const char *origin, const char *errbuf);

/* Builds the configuration: defaults, the -c file, TOUCHFLOW_* environment, then
 * command-line overrides, then the cross-field checks. Every problem is printed;
 * returns TF_CLI_OK or TF_CLI_USAGE. */
int tf_cli_config_load(const tf_cli_opts *opts, tf_config_t *cfg);

/* ---- Redis (cli_redis.c) ---- */
struct redisContext;
struct redisReply;
typedef struct tf_cli_redis tf_cli_redis;

/* Connects to url with timeout_ms for the connect and for every command: the server
 * of redis://[user:pass@]host[:port][/db] (then AUTH and SELECT when the URL has
 * them), or the first seed of redis+cluster://[user:pass@]host[:port][,...] that
 * answers (then AUTH). Returns a new handle (free with tf_cli_redis_close) or NULL
 * with a message that names the URL without its password in err. *usage is set when
 * the URL itself is malformed. */
tf_cli_redis *tf_cli_redis_open(const char *url, int64_t timeout_ms, int *usage, char *err, size_t errsize);
/* NULL is a no-op. */
void tf_cli_redis_close(tf_cli_redis *r);
/* Sends one command on one key (as redisCommandArgv; messages name argv[0] and
 * argv[1]) to the node that owns the key: on a Redis Cluster, "MOVED <slot>
 * <host>:<port>" moves the handle to that node and sends the command again, "ASK
 * ..." sends ASKING and the command to that node once, at most 5 redirections in all.
 * Returns the reply (free with freeReplyObject; error replies are returned too) or
 * NULL with err filled: no reply, a node that cannot be reached, too many
 * redirections, or a redirection from a redis:// URL (a cluster node addressed as a
 * single server). */
struct redisReply *tf_cli_redis_key_command(tf_cli_redis *r, int argc, const char **argv, const size_t *argvlen,
                                            char *err, size_t errsize);
/* The node commands go to, for messages: "Redis at <url>", or "Redis Cluster node
 * <host:port> (<url>)"; without the password. Borrowed until the next command. */
const char *tf_cli_redis_where(const tf_cli_redis *r);
/* c's error as a sentence ("no reply within 2000 ms" for a timeout); may use buf. */
const char *tf_cli_redis_strerror(const struct redisContext *c, int64_t timeout_ms, char *buf, size_t size);
/* Writes url with its password replaced by "***", for messages: "redis://..." or
 * "redis+cluster://" and the seed list. */
void tf_cli_redis_url_shown(const char *url, char *buf, size_t size);

/* ---- Kafka (cli_kafka.c) ---- */

/* The first member of every Kafka-using command's state, which is the conf opaque. */
typedef struct {
    const char *cmd;        /* "produce", "gen", ... for messages */
    int fatal;              /* a fatal error was reported */
    char last_error[512];   /* the last broker error, to explain a failure */
} tf_cli_kafka_status;

/* Sets the error and log callbacks (the conf opaque must start with a
 * tf_cli_kafka_status). */
void tf_cli_kafka_callbacks(rd_kafka_conf_t *conf);
/* rd_kafka_conf_set, printing "<origin><key>: <why>" on failure; 0 or -1. */
int tf_cli_kafka_set(rd_kafka_conf_t *conf, const char *origin, const char *k, const char *v);
/* kafka.consumer.* or kafka.producer.* (by type) from the config onto conf; 0 or -1. */
int tf_cli_kafka_passthrough(rd_kafka_conf_t *conf, const tf_config_t *cfg, rd_kafka_type_t type);
/* Finishes conf and creates the client: kafka.brokers last (an explicit setting wins
 * over the passthrough), the error and log callbacks, opaque. bad is nonzero when an
 * earlier setting already failed (and was reported). conf is taken either way;
 * NULL after printing "<cmd>: cannot create the Kafka ...: <why>". */
rd_kafka_t *tf_cli_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, int bad, const tf_config_t *cfg,
                             void *opaque, const char *cmd);

/* ---- commands: each takes its own argv (argv[0] is the command word) ---- */
int tf_cli_cmd_customer(const tf_cli_opts *opts, int argc, char **argv);
int tf_cli_cmd_produce(const tf_cli_opts *opts, int argc, char **argv);
int tf_cli_cmd_config(const tf_cli_opts *opts, int argc, char **argv);
int tf_cli_cmd_lag(const tf_cli_opts *opts, int argc, char **argv);
int tf_cli_cmd_dlq(const tf_cli_opts *opts, int argc, char **argv);
int tf_cli_cmd_consume(const tf_cli_opts *opts, int argc, char **argv);
int tf_cli_cmd_gen(const tf_cli_opts *opts, int argc, char **argv);
int tf_cli_cmd_route(const tf_cli_opts *opts, int argc, char **argv);
int tf_cli_cmd_stats(const tf_cli_opts *opts, int argc, char **argv);

#endif
