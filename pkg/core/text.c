/* Hashing, deterministic ids, UTF-8 validation and small string helpers. */
#include <string.h>

#include "core/core.h"

/* FNV-1a with a final avalanche mix: fast, stable across platforms and releases,
 * which is what deterministic ids need (not cryptographic strength). */
uint64_t tf_hash64(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = UINT64_C(0xcbf29ce484222325) ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

void tf_id_derive(char out[TF_ID_LEN], const char *const *parts, size_t nparts)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = UINT64_C(0x9e3779b97f4a7c15), b = UINT64_C(0x6a09e667f3bcc909);
    for (size_t i = 0; i < nparts; i++) {
        size_t n = strlen(parts[i]);
        /* Chaining with the part length keeps ("ab","c") and ("a","bc") apart. */
        a = tf_hash64(parts[i], n, a ^ (uint64_t)n);
        b = tf_hash64(parts[i], n, b + (uint64_t)n * 31 + a);
    }
    for (int i = 0; i < 16; i++) {
        out[i] = hex[(a >> (60 - 4 * i)) & 0xf];
        out[16 + i] = hex[(b >> (60 - 4 * i)) & 0xf];
    }
    out[32] = '\0';
}

size_t tf_utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = *p;
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

int tf_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    while (s < end) {
        if (*s < 0x80) {
            s++;
            continue;
        }
        size_t n = tf_utf8_seq(s, end);
        if (n == 0)
            return 0;
        s += n;
    }
    return 1;
}

int tf_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int tf_parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0, limit;
    if (len && s[0] == '-')
        neg = 1, i = 1;
    if (i == len)
        return TF_EINVAL;
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return TF_EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return TF_EINVAL;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return TF_OK;
}

size_t tf_i64_text(char *out, int64_t v)
{
    char tmp[TF_I64_TEXT_LEN];
    size_t n = 0, k = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do
        tmp[n++] = (char)('0' + u % 10);
    while ((u /= 10));
    if (v < 0)
        out[k++] = '-';
    while (n)
        out[k++] = tmp[--n];
    out[k] = '\0';
    return k;
}

int tf_strlcpy(char *dst, const char *src, size_t dstsize)
{
    size_t n = strlen(src);
    if (dstsize == 0)
        return TF_EINVAL;
    if (n >= dstsize) {
        memcpy(dst, src, dstsize - 1);
        dst[dstsize - 1] = '\0';
        return TF_EINVAL;
    }
    memcpy(dst, src, n + 1);
    return TF_OK;
}
