/* Unit tests for pkg/store/slot.c: the CRC16 and key slots Redis Cluster uses (the
 * vectors are CLUSTER KEYSLOT answers of redis-server 7.0), and the escaping that
 * keeps a customer's keys on one slot whatever its id holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store/slot.h"

static unsigned slot_of(const char *key)
{
    return tf_store_key_slot(key, strlen(key));
}

/* The same CRC one bit at a time, to hold the table-driven one against. */
static uint16_t crc16_bitwise(const unsigned char *buf, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

/* A small deterministic generator, so a failure repeats. */
static uint32_t next_rand(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* Reverses tf_store_tag_escape; -1 on a text it cannot have written. */
static int unescape(const char *in, char *out, size_t outsize)
{
    size_t o = 0;
    for (; *in; in++) {
        char c = *in;
        if (c == '}')
            return -1;
        if (c == '\\') {
            in++;
            if (*in == '\\')
                c = '\\';
            else if (*in == ')')
                c = '}';
            else
                return -1;
        }
        if (o + 1 >= outsize)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static void test_crc16_vector(void **state)
{
    (void)state;
    assert_int_equal(tf_store_crc16("123456789", 9), 0x31c3);
    assert_int_equal(tf_store_crc16(NULL, 0), 0);
    unsigned char buf[64];
    uint32_t seed = 7;
    for (int round = 0; round < 2000; round++) {
        size_t len = next_rand(&seed) % sizeof buf;
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)next_rand(&seed);
        assert_int_equal(tf_store_crc16((const char *)buf, len), crc16_bitwise(buf, len));
    }
}

static void test_slot_whole_key(void **state)
{
    (void)state;
    assert_int_equal(slot_of("foo"), 12182);
    assert_int_equal(slot_of("bar"), 5061);
    assert_int_equal(slot_of("a"), 15495);
    assert_int_equal(slot_of("123456789"), 12739);
    assert_int_equal(slot_of("c-1001"), 1065);
    assert_int_equal(tf_store_key_slot(NULL, 0), 0);
    assert_int_equal(slot_of(""), 0);
}

static void test_slot_hash_tag(void **state)
{
    (void)state;
    assert_int_equal(slot_of("{user1000}.following"), 3443);
    assert_int_equal(slot_of("{user1000}.followers"), 3443);
    assert_int_equal(slot_of("{a}"), slot_of("a"));
    assert_int_equal(slot_of("{x}"), 16287);
    assert_int_equal(slot_of("tf:c:{c-1001}"), 1065);
    assert_int_equal(slot_of("tf:c:{c-1001}:outbox"), 1065);
}

/* An empty tag, or none closed, hashes the whole key. */
static void test_slot_empty_or_open_tag(void **state)
{
    (void)state;
    assert_int_equal(slot_of("foo{}{bar}"), 8363);
    assert_int_equal(slot_of("foo{}{bar}"), tf_store_crc16("foo{}{bar}", 10) & 16383);
    assert_int_equal(slot_of("{}"), 15257);
    assert_int_equal(slot_of("x{"), 3596);
    assert_int_equal(slot_of("}{"), 12793);
    assert_int_equal(slot_of("x{}y{z}"), 15453);
    assert_int_equal(slot_of("}x"), 410);
    assert_int_equal(slot_of("a}b"), 7866);
}

/* Only the first '{' opens, and the first '}' after it closes. */
static void test_slot_first_braces_win(void **state)
{
    (void)state;
    assert_int_equal(slot_of("foo{{bar}}zap"), 4015);
    assert_int_equal(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    assert_int_equal(slot_of("foo{bar}{zap}"), 5061);
    assert_int_equal(slot_of("foo{bar}{zap}"), slot_of("bar"));
}

static void test_slot_escaped_keys(void **state)
{
    (void)state;
    assert_int_equal(slot_of("tf:c:{\\)x}"), 10318);
    assert_int_equal(slot_of("tf:c:{a\\)b}:ids"), 13395);
    assert_int_equal(slot_of("tf:c:{a\\\\b}:outbox"), 1023);
    assert_int_equal(slot_of("tf:c:{{x\\)}"), 4954);
}

static void expect_escape(const char *subject, const char *want)
{
    char out[64];
    int n = tf_store_tag_escape(subject, out, sizeof out);
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(out, want);
    assert_int_equal(tf_store_tag_escaped_len(subject), strlen(want));
}

/* Stores written before the escaping keep their keys. */
static void test_escape_plain_unchanged(void **state)
{
    (void)state;
    expect_escape("c-1001", "c-1001");
    expect_escape("user@example.com", "user@example.com");
    expect_escape("a{b", "a{b");
    expect_escape("x)y", "x)y");
    expect_escape("\xc3\xbc", "\xc3\xbc");
    expect_escape("", "");
}

static void test_escape_close_brace_first(void **state)
{
    (void)state;
    expect_escape("}x", "\\)x");
    expect_escape("}", "\\)");
}

static void test_escape_close_brace_inside(void **state)
{
    (void)state;
    expect_escape("a}b", "a\\)b");
}

static void test_escape_backslash(void **state)
{
    (void)state;
    expect_escape("a\\b", "a\\\\b");
    expect_escape("\\", "\\\\");
}

static void test_escape_braced(void **state)
{
    (void)state;
    expect_escape("{x}", "{x\\)");
}

static void test_escape_injective(void **state)
{
    (void)state;
    char a[32], b[32];
    assert_int_equal(tf_store_tag_escape("a\\)", a, sizeof a), 4);
    assert_int_equal(tf_store_tag_escape("a}", b, sizeof b), 3);
    assert_string_equal(a, "a\\\\)");
    assert_string_equal(b, "a\\)");
    assert_string_not_equal(a, b);

    /* Every subject of up to 5 bytes from the bytes that matter comes back from its
     * escaped text: no two can share one. */
    static const char alphabet[] = {'a', '\\', '}', ')', '{'};
    const size_t k = sizeof alphabet;
    for (size_t len = 1; len <= 5; len++) {
        size_t total = 1;
        for (size_t i = 0; i < len; i++)
            total *= k;
        for (size_t code = 0; code < total; code++) {
            char subject[8], esc[16], back[8];
            size_t c = code;
            for (size_t i = 0; i < len; i++, c /= k)
                subject[i] = alphabet[c % k];
            subject[len] = '\0';
            int n = tf_store_tag_escape(subject, esc, sizeof esc);
            assert_true(n > 0);
            assert_null(strchr(esc, '}'));
            assert_int_equal(unescape(esc, back, sizeof back), 0);
            assert_string_equal(back, subject);
        }
    }
}

static void test_escape_buffer_too_small(void **state)
{
    (void)state;
    char out[8] = "junk";
    /* "a}b" needs 4 bytes and the terminator. */
    assert_int_equal(tf_store_tag_escape("a}b", out, 4), TF_EINVAL);
    assert_string_equal(out, "");
    assert_int_equal(tf_store_tag_escape("a}b", out, 5), 4);
    assert_int_equal(tf_store_tag_escape("a", out, 0), TF_EINVAL);
    assert_int_equal(tf_store_tag_escape(NULL, out, sizeof out), TF_EINVAL);
    assert_int_equal(tf_store_tag_escape("a", NULL, 8), TF_EINVAL);
    assert_int_equal(tf_store_tag_escaped_len(NULL), 0);
}

static void test_customer_key(void **state)
{
    (void)state;
    char key[64];
    assert_int_equal(tf_store_customer_key("tf:", "c-1001", "", key, sizeof key), 13);
    assert_string_equal(key, "tf:c:{c-1001}");
    assert_int_equal(tf_store_customer_key("tf:", "a}b", ":ids", key, sizeof key), 15);
    assert_string_equal(key, "tf:c:{a\\)b}:ids");
    assert_int_equal(tf_store_customer_key("", "\\", ":outbox", key, sizeof key), 13);
    assert_string_equal(key, "c:{\\\\}:outbox");
    /* The size asked for is exactly enough. */
    size_t size = tf_store_customer_key_size("tf:", "a}b", ":outbox");
    assert_int_equal(size, strlen("tf:c:{a\\)b}:outbox") + 1);
    assert_int_equal(tf_store_customer_key("tf:", "a}b", ":outbox", key, size), (int)size - 1);
    assert_int_equal(tf_store_customer_key("tf:", "a}b", ":outbox", key, size - 1), TF_EINVAL);
    assert_string_equal(key, "");
    assert_int_equal(tf_store_customer_key(NULL, "a", "", key, sizeof key), TF_EINVAL);
    assert_int_equal(tf_store_customer_key("tf:", "a", NULL, key, sizeof key), TF_EINVAL);
    assert_int_equal(tf_store_customer_key_size(NULL, NULL, NULL), 5);
}

/* For ids full of braces and backslashes, the three keys of a customer share the
 * slot of the escaped id, and tf_store_customer_slot finds it too. */
static void test_customer_keys_share_a_slot(void **state)
{
    (void)state;
    static const char bytes[] = "{}\\)ab:";
    static const char *const suffix[] = {"", ":ids", ":outbox"};
    uint32_t seed = 11;
    for (int round = 0; round < 20000; round++) {
        char subject[24], esc[48], key[80];
        size_t len = 1 + next_rand(&seed) % (sizeof subject - 1);
        for (size_t i = 0; i < len; i++)
            subject[i] = bytes[next_rand(&seed) % (sizeof bytes - 1)];
        subject[len] = '\0';
        int n = tf_store_tag_escape(subject, esc, sizeof esc);
        assert_true(n > 0);
        unsigned want = tf_store_key_slot(esc, (size_t)n);
        for (size_t s = 0; s < 3; s++) {
            snprintf(key, sizeof key, "tf:c:{%s}%s", esc, suffix[s]);
            char built[80];
            assert_int_equal(tf_store_customer_key("tf:", subject, suffix[s], built, sizeof built),
                             (int)strlen(key));
            assert_string_equal(built, key);
            if (slot_of(key) != want)
                fail_msg("subject \"%s\": key %s is on slot %u, not %u", subject, key, slot_of(key), want);
        }
        assert_int_equal(tf_store_customer_slot("tf:", subject), want);
    }
}

/* tf_store_customer_slot is exact also for prefixes the configuration refuses. */
static void test_customer_slot_any_prefix(void **state)
{
    (void)state;
    static const char *const prefixes[] = {"", "tf:", "x{", "{}", "a{b}", "}{", "{", "}", "p{q"};
    static const char *const subjects[] = {"", "c-1", "}x", "a\\b", "{x}", "}"};
    for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++) {
        for (size_t s = 0; s < sizeof subjects / sizeof subjects[0]; s++) {
            char esc[16], key[64];
            assert_true(tf_store_tag_escape(subjects[s], esc, sizeof esc) >= 0);
            snprintf(key, sizeof key, "%sc:{%s}", prefixes[p], esc);
            if (tf_store_customer_slot(prefixes[p], subjects[s]) != slot_of(key))
                fail_msg("prefix \"%s\", subject \"%s\": %u, key %s is on %u", prefixes[p], subjects[s],
                         tf_store_customer_slot(prefixes[p], subjects[s]), key, slot_of(key));
        }
    }
    assert_int_equal(tf_store_customer_slot(NULL, NULL), slot_of("c:{}"));
}

/* The slot tags of the population figures' hashes: every slot has one, "x{tag}"
 * is on that slot, and each fits with its NUL. The table names stored keys
 * ("<prefix>figures:{<tag>}" on a cluster), so it must never change: slot 0's
 * tag "1bz" (and slot 1's "emj", slot 16383's "hia") are the values observed when
 * this test was written, pinned as the contract; so is the FNV-1a 64 of the whole
 * table (every tag and a '\n', slot by slot), which an independent implementation
 * of slot.h's rule (the first of "0".."9","a".."z","10",... on each slot) gave. */
static void test_slot_tags(void **state)
{
    (void)state;
    static char tags[TF_STORE_SLOTS][TF_STORE_SLOT_TAG_MAX];
    char key[TF_STORE_SLOT_TAG_MAX + 3]; /* x{...} and the NUL */
    memset(tags, 'z', sizeof tags); /* no NUL anywhere: a slot left unset shows */
    tf_store_slot_tags(tags);
    for (unsigned s = 0; s < TF_STORE_SLOTS; s++) {
        size_t len = strnlen(tags[s], TF_STORE_SLOT_TAG_MAX);
        if (len == 0 || len > TF_STORE_SLOT_TAG_MAX - 1)
            fail_msg("slot %u: a tag of %zu bytes", s, len);
        for (size_t i = 0; i < len; i++)
            if (!((tags[s][i] >= '0' && tags[s][i] <= '9') || (tags[s][i] >= 'a' && tags[s][i] <= 'z')))
                fail_msg("slot %u: tag \"%s\" is not base 36", s, tags[s]);
        key[0] = 'x', key[1] = '{';
        memcpy(key + 2, tags[s], len);
        key[len + 2] = '}', key[len + 3] = '\0';
        if (slot_of(key) != s)
            fail_msg("slot %u: %s is on slot %u", s, key, slot_of(key));
    }
    assert_string_equal(tags[0], "1bz");
    assert_string_equal(tags[1], "emj");
    assert_string_equal(tags[TF_STORE_SLOTS - 1], "hia");
    assert_string_equal(tags[slot_of("0")], "0"); /* the sequence's first */
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (unsigned s = 0; s < TF_STORE_SLOTS; s++)
        for (const char *p = tags[s];; p++) {
            h = (h ^ (unsigned char)(*p ? *p : '\n')) * UINT64_C(0x100000001b3);
            if (!*p)
                break;
        }
    assert_int_equal(h, UINT64_C(0x99c2938c4af18798));
}

static void test_figures_key(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(tf_store_figures_key("tf:", NULL, out, sizeof out), 10);
    assert_string_equal(out, "tf:figures");
    assert_int_equal(tf_store_figures_key("tf:", "1bz", out, sizeof out), 16);
    assert_string_equal(out, "tf:figures:{1bz}");
    assert_int_equal(slot_of(out), 0);
    /* Exactly the room for it, and one byte less. */
    assert_int_equal(tf_store_figures_key("tf:", "1bz", out, 17), 16);
    assert_int_equal(tf_store_figures_key("tf:", "1bz", out, 16), TF_EINVAL);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_vector),
        cmocka_unit_test(test_slot_whole_key),
        cmocka_unit_test(test_slot_hash_tag),
        cmocka_unit_test(test_slot_empty_or_open_tag),
        cmocka_unit_test(test_slot_first_braces_win),
        cmocka_unit_test(test_slot_escaped_keys),
        cmocka_unit_test(test_escape_plain_unchanged),
        cmocka_unit_test(test_escape_close_brace_first),
        cmocka_unit_test(test_escape_close_brace_inside),
        cmocka_unit_test(test_escape_backslash),
        cmocka_unit_test(test_escape_braced),
        cmocka_unit_test(test_escape_injective),
        cmocka_unit_test(test_escape_buffer_too_small),
        cmocka_unit_test(test_customer_key),
        cmocka_unit_test(test_customer_keys_share_a_slot),
        cmocka_unit_test(test_customer_slot_any_prefix),
        cmocka_unit_test(test_slot_tags),
        cmocka_unit_test(test_figures_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
