/* What every Kafka-using command shares: configuration with errors that name the
 * key, and the error and log callbacks. */
#include <string.h>

#include "cli.h"

/* librdkafka passes the conf opaque: a command's state, whose first member is its
 * tf_cli_kafka_status. */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    tf_cli_kafka_status *ks = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_fatal_error(rk, buf, sizeof(buf));
        tf_cli_errorf("%s: fatal Kafka error: %s", ks->cmd, buf);
        ks->fatal = 1;
        return;
    }
    /* Broker errors are retried by librdkafka; keep the last one to explain a failure. */
    tf_strlcpy(ks->last_error, reason, sizeof(ks->last_error));
    TF_INFO("kafka", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    tf_log_level l = level <= 3 ? TF_LOG_ERROR : level == 4 ? TF_LOG_WARN : level <= 6 ? TF_LOG_INFO : TF_LOG_DEBUG;
    (void)rk;
    /* Broker connection failures also reach on_error, and the summary names the last
     * one: repeating each retry would bury it. */
    if (strcmp(fac, "FAIL") == 0 && l > TF_LOG_INFO)
        l = TF_LOG_INFO;
    TF_LOG(l, "kafka", "%s: %s", fac, buf);
}

void tf_cli_kafka_callbacks(rd_kafka_conf_t *conf)
{
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
}

int tf_cli_kafka_passthrough(rd_kafka_conf_t *conf, const tf_config_t *cfg, rd_kafka_type_t type)
{
    int consumer = type == RD_KAFKA_CONSUMER, bad = 0;
    size_t n = consumer ? cfg->nconsumer_props : cfg->nproducer_props;
    const tf_config_kv *props = consumer ? cfg->consumer_props : cfg->producer_props;
    for (size_t i = 0; i < n; i++)
        bad |= tf_cli_kafka_set(conf, consumer ? "kafka.consumer." : "kafka.producer.", props[i].key, props[i].value);
    return bad;
}

rd_kafka_t *tf_cli_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, int bad, const tf_config_t *cfg,
                             void *opaque, const char *cmd)
{
    char errstr[512];
    bad |= tf_cli_kafka_set(conf, "kafka.brokers: ", "bootstrap.servers", cfg->brokers);
    if (bad) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    tf_cli_kafka_callbacks(conf);
    rd_kafka_conf_set_opaque(conf, opaque);
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        tf_cli_errorf("%s: cannot create the Kafka %s: %s", cmd, type == RD_KAFKA_CONSUMER ? "consumer" : "producer",
                      errstr);
    }
    return rk; /* on success conf belongs to rk */
}

int tf_cli_kafka_set(rd_kafka_conf_t *conf, const char *origin, const char *k, const char *v)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
        return 0;
    tf_cli_errorf("%s%s: %s", origin, k, errstr);
    return -1;
}
