/* group: a consumer group's committed offsets, read without joining it, and the
 * start offsets of a rebuild (touchflowd --rebuild-into). Both block: they run
 * before the loop starts or in a rebuild's assignment, never on the live path. */
#include <stdio.h>
#include <string.h>

#include "bus/internal.h"

#define MOD "consumer"

/* Adds every partition of topic to list; 0 or a tf_err with the reason in err. */
static int add_partitions(rd_kafka_t *rk, const char *topic, rd_kafka_topic_partition_list_t *list, int timeout_ms,
                          char *err, size_t errsize)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rerr = rkt ? rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) : RD_KAFKA_RESP_ERR__FAIL;
    int rc = TF_OK;
    if (rerr || md->topic_cnt != 1 || md->topics[0].err) {
        snprintf(err, errsize, "cannot read the partitions of %s: %s", topic,
                 rd_kafka_err2str(rerr ? rerr : md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__FAIL));
        rc = TF_EIO;
    } else {
        for (int i = 0; i < md->topics[0].partition_cnt; i++)
            rd_kafka_topic_partition_list_add(list, topic, md->topics[0].partitions[i].id);
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    return rc;
}

rd_kafka_topic_partition_list_t *tf_bus_group_committed(const tf_config_t *cfg, const char *brokers,
                                                        const char *group, int timeout_ms, char *err, size_t errsize)
{
    char e[512];
    rd_kafka_conf_t *conf = tf_bus_conf_new(brokers ? brokers : cfg->brokers, NULL, 0, err, errsize);
    if (!conf)
        return NULL;
    for (size_t i = 0; i < cfg->nconsumer_props; i++)
        if (tf_bus_conf_set(conf, cfg->consumer_props[i].key, cfg->consumer_props[i].value, err, errsize)) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    if (tf_bus_conf_set(conf, "group.id", group, err, errsize) ||
        tf_bus_conf_set(conf, "enable.auto.commit", "false", err, errsize)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* A consumer that never subscribes: it asks the coordinator, it does not join. */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!rk) {
        snprintf(err, errsize, "cannot create a consumer: %s", e);
        return NULL;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < cfg->ninput_topics; i++) {
        if (add_partitions(rk, cfg->input_topics[i], list, timeout_ms, err, errsize) != TF_OK)
            goto fail;
    }
    rd_kafka_resp_err_t rerr = rd_kafka_committed(rk, list, timeout_ms);
    if (rerr) {
        snprintf(err, errsize, "cannot read the committed offsets of group %s: %s", group, rd_kafka_err2str(rerr));
        goto fail;
    }
    for (int i = 0; i < list->cnt; i++) {
        if (list->elems[i].err) {
            snprintf(err, errsize, "cannot read the committed offset of %s [%d] in group %s: %s",
                     list->elems[i].topic, (int)list->elems[i].partition, group,
                     rd_kafka_err2str(list->elems[i].err));
            goto fail;
        }
    }
    rd_kafka_destroy(rk);
    return list;
fail:
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_destroy(rk);
    return NULL;
}

int tf_bus_rebuild_start(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts, int64_t from_ms, int timeout_ms)
{
    rd_kafka_resp_err_t rerr = rd_kafka_committed(rk, parts, timeout_ms);
    if (rerr) {
        TF_ERROR(MOD, "rebuild: cannot read the group's committed offsets: %s", rd_kafka_err2str(rerr));
        return TF_EIO;
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (tp->offset >= 0)
            continue; /* where an earlier run of this rebuild stopped */
        if (from_ms == INT64_MIN) {
            int64_t lo = -1, hi = -1;
            rerr = rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &lo, &hi, timeout_ms);
            if (rerr) {
                TF_ERROR(MOD, "rebuild: cannot read the start of %s [%d]: %s", tp->topic, (int)tp->partition,
                         rd_kafka_err2str(rerr));
                return TF_EIO;
            }
            tp->offset = lo;
            continue;
        }
        rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(one, tp->topic, tp->partition)->offset = from_ms;
        rerr = rd_kafka_offsets_for_times(rk, one, timeout_ms);
        if (!rerr)
            rerr = one->elems[0].err;
        int64_t at = one->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(one);
        if (rerr) {
            TF_ERROR(MOD, "rebuild: cannot find the offset of %s [%d] at the start time: %s", tp->topic,
                     (int)tp->partition, rd_kafka_err2str(rerr));
            return TF_EIO;
        }
        if (at < 0) {
            /* Nothing at or after the time: start at the end. */
            int64_t lo = -1, hi = -1;
            rerr = rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &lo, &hi, timeout_ms);
            if (rerr)
                return TF_EIO;
            at = hi;
        }
        tp->offset = at;
    }
    return TF_OK;
}
