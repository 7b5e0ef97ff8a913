/* libFuzzer harness for the customer hash codec (pkg/store/codec.c): whatever a
 * hash holds (written by an older or newer touchflow, or by hand), decoding never
 * crashes, and a decoded document encodes and decodes back to the same encoding.
 *
 * Input: field/value pairs, each "field\tvalue\n". */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define MAX_PAIRS 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
    if (!cond)
        abort();
}

static int same(const tf_store_fields *a, const tf_store_fields *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->field[i], b->field[i]) != 0 || a->vlen[i] != b->vlen[i] ||
            memcmp(a->value[i], b->value[i], a->vlen[i]) != 0)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tf_store_doc_t doc, again;
    static tf_store_fields enc1, enc2;
    const char *f[MAX_PAIRS], *v[MAX_PAIRS];
    size_t fl[MAX_PAIRS], vl[MAX_PAIRS], n = 0;
    /* A copy with room for terminators: the decoder reads NUL-terminated strings,
     * as hiredis gives them. */
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *p = buf, *end = buf + size;
    while (p < end && n < MAX_PAIRS) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *line_end = nl ? nl : end;
        char *tab = memchr(p, '\t', (size_t)(line_end - p));
        if (tab) {
            *tab = '\0';
            *line_end = '\0';
            f[n] = p;
            fl[n] = (size_t)(tab - p);
            v[n] = tab + 1;
            vl[n] = (size_t)(line_end - tab - 1);
            n++;
        }
        p = nl ? nl + 1 : end;
    }
    if (tf_store_decode(&doc, f, fl, v, vl, n) == TF_OK && tf_store_encode_full(&doc, &enc1) == TF_OK) {
        /* Round trip: what we write, we read back to the same document. */
        size_t flen[TF_STORE_MAX_FIELDS];
        for (size_t i = 0; i < enc1.n; i++)
            flen[i] = strlen(enc1.field[i]);
        must(tf_store_decode(&again, enc1.field, flen, enc1.value, enc1.vlen, enc1.n) == TF_OK);
        must(tf_store_encode_full(&again, &enc2) == TF_OK);
        must(same(&enc1, &enc2));
    }
    free(buf);
    return 0;
}
