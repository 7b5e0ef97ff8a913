/* Unit tests for the CloudEvents Kafka protocol binding of derived events: the
 * attributes read back from an encoded event (pkg/event/binding.c) and the headers
 * and value of each content mode (pkg/bus/binding.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bus/bus.h"
#include "event/event.h"

static int encode(tf_derived_t *d, const char *source, char *buf, size_t size)
{
    int n = tf_derived_encode(d, source, buf, size);
    assert_true(n > 0);
    return n;
}

static tf_derived_t stage_changed(const char *subject)
{
    tf_derived_t d;
    memset(&d, 0, sizeof d);
    d.type = TF_DERIVED_STAGE_CHANGED;
    tf_strlcpy(d.subject, subject, sizeof d.subject);
    d.time_ms = INT64_C(1767225600000); /* 2026-01-01T00:00:00Z */
    tf_strlcpy(d.rule, "first_purchase", sizeof d.rule);
    tf_derived_set_id(&d, "/shop", "o-1");
    tf_derived_add_str(&d, "from", "prospect");
    tf_derived_add_str(&d, "to", "growth");
    tf_derived_add_int(&d, "purchases", 1);
    return d;
}

static void test_attributes_read_back(void **state)
{
    (void)state;
    char buf[4096];
    tf_derived_t d = stage_changed("cust-1");
    int n = encode(&d, "/touchflow", buf, sizeof buf);
    tf_derived_attrs a;
    assert_int_equal(tf_derived_attrs_parse(buf, (size_t)n, &a), TF_OK);
    assert_string_equal(a.id, d.id);
    assert_string_equal(a.source, "/touchflow");
    assert_string_equal(a.type, "touchflow.lifecycle.stage_changed");
    assert_string_equal(a.subject, "cust-1");
    assert_string_equal(a.time, "2026-01-01T00:00:00.000Z");
    /* The data object, exactly. */
    assert_int_equal(a.data_len, strlen("{\"rule\":\"first_purchase\",\"from\":\"prospect\",\"to\":\"growth\",\"purchases\":1}"));
    assert_memory_equal(buf + a.data_off, "{\"rule\":\"first_purchase\",\"from\":\"prospect\",\"to\":\"growth\",\"purchases\":1}",
                        a.data_len);
}

static void test_escaped_attributes_are_unescaped(void **state)
{
    (void)state;
    char buf[4096];
    /* Quotes, a backslash, a control byte and UTF-8 in the subject and source. */
    tf_derived_t d = stage_changed("c\"1\\\t\xe5\xae\xa2");
    int n = encode(&d, "/shop/\"east\"", buf, sizeof buf);
    tf_derived_attrs a;
    assert_int_equal(tf_derived_attrs_parse(buf, (size_t)n, &a), TF_OK);
    assert_string_equal(a.subject, "c\"1\\\t\xe5\xae\xa2");
    assert_string_equal(a.source, "/shop/\"east\"");
}

static void test_anything_else_is_refused(void **state)
{
    (void)state;
    char buf[4096];
    tf_derived_t d = stage_changed("cust-1");
    int n = encode(&d, "/touchflow", buf, sizeof buf);
    tf_derived_attrs a;
    /* Cut short anywhere. */
    for (int cut = 0; cut < n; cut += 7)
        assert_int_equal(tf_derived_attrs_parse(buf, (size_t)cut, &a), TF_EINVAL);
    /* Attributes in another order (someone else's JSON). */
    const char *other = "{\"id\":\"x\",\"specversion\":\"1.0\",\"source\":\"/s\",\"type\":\"t\",\"data\":{}}";
    assert_int_equal(tf_derived_attrs_parse(other, strlen(other), &a), TF_EINVAL);
    /* An escape the encoder never writes. */
    const char *esc = "{\"specversion\":\"1.0\",\"id\":\"a\\u4e2d\",\"source\":\"/s\",\"type\":\"t\",\"subject\":\"s\","
                      "\"time\":\"t\",\"datacontenttype\":\"application/json\",\"data\":{}}";
    assert_int_equal(tf_derived_attrs_parse(esc, strlen(esc), &a), TF_EINVAL);
    assert_int_equal(tf_derived_attrs_parse(NULL, 0, &a), TF_EINVAL);
}

static const char *header(rd_kafka_headers_t *h, const char *name, char *out, size_t size)
{
    const void *v;
    size_t len;
    if (rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    assert_true(len < size);
    memcpy(out, v, len);
    out[len] = '\0';
    return out;
}

static void test_structured_mode(void **state)
{
    (void)state;
    char buf[4096], v[512];
    tf_derived_t d = stage_changed("cust-1");
    int n = encode(&d, "/touchflow", buf, sizeof buf);
    const void *value;
    size_t len;
    rd_kafka_headers_t *h = tf_bus_ce_binding(buf, (size_t)n, 0, &value, &len);
    assert_non_null(h);
    /* The whole event is the value; the header the SDKs pick the mode from. */
    assert_ptr_equal(value, buf);
    assert_int_equal(len, (size_t)n);
    assert_string_equal(header(h, "content-type", v, sizeof v), "application/cloudevents+json; charset=UTF-8");
    /* Router headers; no ce_* header at all, which some SDKs take for binary mode. */
    assert_string_equal(header(h, "tf-id", v, sizeof v), d.id);
    assert_string_equal(header(h, "tf-type", v, sizeof v), "touchflow.lifecycle.stage_changed");
    assert_string_equal(header(h, "tf-subject", v, sizeof v), "cust-1");
    const char *name;
    const void *val;
    size_t vlen;
    for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &val, &vlen) == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
        assert_true(strncmp(name, "ce_", 3) != 0);
    rd_kafka_headers_destroy(h);
}

static void test_binary_mode(void **state)
{
    (void)state;
    char buf[4096], v[512];
    tf_derived_t d = stage_changed("cust-1");
    int n = encode(&d, "/touchflow", buf, sizeof buf);
    const void *value;
    size_t len;
    rd_kafka_headers_t *h = tf_bus_ce_binding(buf, (size_t)n, 1, &value, &len);
    assert_non_null(h);
    const char *data = "{\"rule\":\"first_purchase\",\"from\":\"prospect\",\"to\":\"growth\",\"purchases\":1}";
    assert_int_equal(len, strlen(data));
    assert_memory_equal(value, data, len);
    assert_string_equal(header(h, "ce_specversion", v, sizeof v), "1.0");
    assert_string_equal(header(h, "ce_id", v, sizeof v), d.id);
    assert_string_equal(header(h, "ce_source", v, sizeof v), "/touchflow");
    assert_string_equal(header(h, "ce_type", v, sizeof v), "touchflow.lifecycle.stage_changed");
    assert_string_equal(header(h, "ce_subject", v, sizeof v), "cust-1");
    assert_string_equal(header(h, "ce_time", v, sizeof v), "2026-01-01T00:00:00.000Z");
    assert_string_equal(header(h, "content-type", v, sizeof v), "application/json");
    /* The same router headers as structured mode. */
    assert_string_equal(header(h, "tf-type", v, sizeof v), "touchflow.lifecycle.stage_changed");
    assert_string_equal(header(h, "tf-id", v, sizeof v), d.id);
    assert_string_equal(header(h, "tf-subject", v, sizeof v), "cust-1");
    rd_kafka_headers_destroy(h);
}

static void test_unreadable_event_goes_structured(void **state)
{
    (void)state;
    char v[512];
    const char *odd = "{\"specversion\":\"1.0\",\"id\":\"x\"}";
    const void *value;
    size_t len;
    rd_kafka_headers_t *h = tf_bus_ce_binding(odd, strlen(odd), 1, &value, &len);
    assert_ptr_equal(value, odd);
    assert_int_equal(len, strlen(odd));
    assert_string_equal(header(h, "content-type", v, sizeof v), "application/cloudevents+json; charset=UTF-8");
    assert_null(header(h, "tf-id", v, sizeof v));
    rd_kafka_headers_destroy(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attributes_read_back),
        cmocka_unit_test(test_escaped_attributes_are_unescaped),
        cmocka_unit_test(test_anything_else_is_refused),
        cmocka_unit_test(test_structured_mode),
        cmocka_unit_test(test_binary_mode),
        cmocka_unit_test(test_unreadable_event_goes_structured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
