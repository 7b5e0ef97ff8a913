/* binding: the CloudEvents Kafka protocol binding of a derived event. Structured
 * mode sends the whole event with content-type application/cloudevents+json (the
 * header the SDKs pick the mode from); binary mode sends the data object alone with
 * the attributes as ce_* headers. Either way tf-id, tf-type and tf-subject are
 * headers, so a router filters without parsing the value. They are not ce_* in
 * structured mode on purpose: SDKs that detect the mode by the presence of any ce_
 * header (the Python SDK's from_kafka) would read a structured record as binary. */
#include "bus/internal.h"

#define MOD "producer"

static void put(rd_kafka_headers_t *h, const char *name, const char *value)
{
    rd_kafka_header_add(h, name, -1, value, -1);
}

rd_kafka_headers_t *tf_bus_ce_binding(const char *json, size_t len, int binary, const void **value,
                                      size_t *value_len)
{
    tf_derived_attrs a;
    rd_kafka_headers_t *h = rd_kafka_headers_new(binary ? 10 : 4);
    *value = json;
    *value_len = len;
    if (tf_derived_attrs_parse(json, len, &a) != TF_OK) {
        /* Not what our encoder writes: send it as it is, still marked as an event. */
        TF_WARN(MOD, "a derived event does not parse as ours; sent structured without attribute headers");
        put(h, "content-type", "application/cloudevents+json; charset=UTF-8");
        return h;
    }
    put(h, "tf-id", a.id);
    put(h, "tf-type", a.type);
    put(h, "tf-subject", a.subject);
    if (binary) {
        put(h, "ce_specversion", "1.0");
        put(h, "ce_id", a.id);
        put(h, "ce_source", a.source);
        put(h, "ce_type", a.type);
        put(h, "ce_subject", a.subject);
        put(h, "ce_time", a.time);
        put(h, "content-type", "application/json");
        *value = json + a.data_off;
        *value_len = a.data_len;
        return h;
    }
    put(h, "content-type", "application/cloudevents+json; charset=UTF-8");
    return h;
}
