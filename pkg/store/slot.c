/* slot: Redis Cluster key slots and the hash tag of a customer's keys (slot.h). */
#include "store/slot.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* crc16_table[i] is the CRC of the byte i shifted into the top of the register, so
 * one lookup per byte replaces eight shift-and-xor steps of polynomial 0x1021. */
static const uint16_t crc16_table[256] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
    0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
    0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
    0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
    0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485,
    0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
    0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4,
    0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
    0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
    0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
    0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12,
    0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
    0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41,
    0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
    0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
    0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
    0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f,
    0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
    0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e,
    0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
    0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
    0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
    0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c,
    0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
    0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab,
    0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
    0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
    0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
    0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9,
    0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
    0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8,
    0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0
};

#define SLOT_MASK (TF_STORE_SLOTS - 1u)

static uint16_t crc16_update(uint16_t crc, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        crc = (uint16_t)((crc << 8) ^ crc16_table[((crc >> 8) ^ (unsigned char)buf[i]) & 0xffu]);
    return crc;
}

/* The bytes tf_store_tag_escape writes for c, into pair; how many (1 or 2). */
static size_t escape_byte(char c, char pair[2])
{
    if (c == '\\' || c == '}') {
        pair[0] = '\\';
        pair[1] = c == '\\' ? '\\' : ')';
        return 2;
    }
    pair[0] = c;
    return 1;
}

/* Feeds the escaped form of subject to the CRC, without writing it anywhere. */
static uint16_t crc16_escaped(uint16_t crc, const char *subject)
{
    for (; *subject; subject++) {
        char pair[2];
        crc = crc16_update(crc, pair, escape_byte(*subject, pair));
    }
    return crc;
}

uint16_t tf_store_crc16(const char *buf, size_t len)
{
    return len ? crc16_update(0, buf, len) : 0;
}

unsigned tf_store_key_slot(const char *key, size_t len)
{
    if (len == 0)
        return 0;
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t after = (size_t)(open - key) + 1;
        const char *close = memchr(open + 1, '}', len - after);
        if (close && close > open + 1)
            return crc16_update(0, open + 1, (size_t)(close - open - 1)) & SLOT_MASK;
    }
    return crc16_update(0, key, len) & SLOT_MASK;
}

size_t tf_store_tag_escaped_len(const char *subject)
{
    size_t n = 0;
    for (; subject && *subject; subject++)
        n += *subject == '\\' || *subject == '}' ? 2 : 1;
    return n;
}

int tf_store_tag_escape(const char *subject, char *out, size_t outsize)
{
    if (out && outsize > 0)
        out[0] = '\0';
    if (!subject || !out)
        return TF_EINVAL;
    size_t n = tf_store_tag_escaped_len(subject);
    if (n >= outsize || n > INT_MAX)
        return TF_EINVAL;
    size_t o = 0;
    for (; *subject; subject++) {
        char pair[2];
        size_t k = escape_byte(*subject, pair);
        memcpy(out + o, pair, k);
        o += k;
    }
    out[o] = '\0';
    return (int)o;
}

size_t tf_store_customer_key_size(const char *prefix, const char *subject, const char *suffix)
{
    /* "c:{", "}" and the terminator. */
    return (prefix ? strlen(prefix) : 0) + tf_store_tag_escaped_len(subject) + (suffix ? strlen(suffix) : 0) + 5;
}

int tf_store_customer_key(const char *prefix, const char *subject, const char *suffix, char *out,
                          size_t outsize)
{
    static const char open_tag[] = "c:{";
    if (out && outsize > 0)
        out[0] = '\0';
    if (!prefix || !subject || !suffix || !out)
        return TF_EINVAL;
    size_t plen = strlen(prefix), slen = strlen(suffix), elen = tf_store_tag_escaped_len(subject);
    size_t n = plen + sizeof open_tag - 1 + elen + 1 + slen;
    if (n >= outsize || n > INT_MAX)
        return TF_EINVAL;
    char *o = out;
    memcpy(o, prefix, plen);
    o += plen;
    memcpy(o, open_tag, sizeof open_tag - 1);
    o += sizeof open_tag - 1;
    o += tf_store_tag_escape(subject, o, elen + 1);
    *o++ = '}';
    memcpy(o, suffix, slen + 1);
    return (int)n;
}

unsigned tf_store_customer_slot(const char *prefix, const char *subject)
{
    static const char open_tag[] = "c:{";
    if (!prefix)
        prefix = "";
    if (!subject)
        subject = "";
    /* Which bytes Redis hashes depends on the first '{' of the whole key and the
     * first '}' after it; the escaped subject holds no '}', so the key's layout
     * decides it without the key being built. */
    const char *open = strchr(prefix, '{');
    if (!open) {
        /* The tag opens at "c:{" and closes right after the subject. */
        if (*subject)
            return crc16_escaped(0, subject) & SLOT_MASK;
    } else {
        const char *close = strchr(open + 1, '}');
        if (close && close > open + 1)
            return crc16_update(0, open + 1, (size_t)(close - open - 1)) & SLOT_MASK;
        if (!close) {
            /* The tag runs from the prefix's '{' to the '}' after the subject. */
            uint16_t crc = crc16_update(0, open + 1, strlen(open + 1));
            crc = crc16_update(crc, open_tag, sizeof open_tag - 1);
            return crc16_escaped(crc, subject) & SLOT_MASK;
        }
    }
    /* An empty tag: Redis hashes the whole key. */
    uint16_t crc = crc16_update(0, prefix, strlen(prefix));
    crc = crc16_update(crc, open_tag, sizeof open_tag - 1);
    crc = crc16_escaped(crc, subject);
    return crc16_update(crc, "}", 1) & SLOT_MASK;
}

void tf_store_slot_tags(char tags[][TF_STORE_SLOT_TAG_MAX])
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    unsigned left = TF_STORE_SLOTS;
    for (unsigned s = 0; s < TF_STORE_SLOTS; s++)
        tags[s][0] = '\0';
    for (uint64_t n = 0; left > 0; n++) {
        char buf[TF_STORE_SLOT_TAG_MAX], *p = buf + sizeof(buf) - 1;
        uint64_t v = n;
        *p = '\0';
        do {
            *--p = digits[v % 36];
            v /= 36;
        } while (v > 0);
        unsigned slot = tf_store_crc16(p, (size_t)(buf + sizeof(buf) - 1 - p)) & (TF_STORE_SLOTS - 1);
        if (tags[slot][0] == '\0') {
            memcpy(tags[slot], p, (size_t)(buf + sizeof(buf) - p));
            left--;
        }
    }
}

int tf_store_figures_key(const char *prefix, const char *tag, char *out, size_t outsize)
{
    int n = tag ? snprintf(out, outsize, "%sfigures:{%s}", prefix, tag) : snprintf(out, outsize, "%sfigures", prefix);
    if (n < 0 || (size_t)n >= outsize) {
        if (outsize > 0)
            out[0] = '\0';
        return TF_EINVAL;
    }
    return n;
}
