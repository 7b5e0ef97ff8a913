/* The stored figure hashes summed field by field (one hash standalone, one per
 * slot on a Redis Cluster). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "figures/figures.h"

static int grow_index(tf_figures_table *t)
{
    size_t cap = t->index_cap ? t->index_cap * 2 : 256;
    uint32_t *index = calloc(cap, sizeof(*index));
    if (!index)
        return TF_ENOMEM;
    for (size_t r = 0; r < t->n; r++) {
        size_t h = (size_t)tf_hash64(t->rows[r].field, strlen(t->rows[r].field), 0) & (cap - 1);
        while (index[h])
            h = (h + 1) & (cap - 1);
        index[h] = (uint32_t)(r + 1);
    }
    free(t->index);
    t->index = index;
    t->index_cap = cap;
    return TF_OK;
}

static tf_figures_row *find(const tf_figures_table *t, const char *field, size_t len, size_t *slot)
{
    if (!t->index_cap)
        return NULL;
    size_t h = (size_t)tf_hash64(field, len, 0) & (t->index_cap - 1);
    for (; t->index[h]; h = (h + 1) & (t->index_cap - 1)) {
        tf_figures_row *r = &t->rows[t->index[h] - 1];
        if (strlen(r->field) == len && memcmp(r->field, field, len) == 0)
            return r;
    }
    if (slot)
        *slot = h;
    return NULL;
}

int tf_figures_table_add(tf_figures_table *t, const char *field, size_t len, int64_t value)
{
    tf_figures_row *r = find(t, field, len, NULL);
    if (r) {
        r->value += value;
        return TF_OK;
    }
    if ((t->n + 1) * 2 > t->index_cap && grow_index(t))
        return TF_ENOMEM;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        tf_figures_row *rows = realloc(t->rows, cap * sizeof(*rows));
        if (!rows)
            return TF_ENOMEM;
        t->rows = rows;
        t->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return TF_ENOMEM;
    memcpy(copy, field, len);
    copy[len] = '\0';
    size_t slot = 0;
    find(t, field, len, &slot);
    t->rows[t->n] = (tf_figures_row){copy, value};
    t->index[slot] = (uint32_t)(++t->n);
    return TF_OK;
}

int tf_figures_table_add_text(tf_figures_table *t, const char *field, size_t flen, const char *value, size_t vlen)
{
    char buf[32], *end;
    if (vlen == 0 || vlen >= sizeof(buf)) {
        t->skipped++;
        return TF_OK;
    }
    memcpy(buf, value, vlen);
    buf[vlen] = '\0';
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end) {
        t->skipped++;
        return TF_OK;
    }
    return tf_figures_table_add(t, field, flen, (int64_t)v);
}

int64_t tf_figures_table_get(const tf_figures_table *t, const char *field)
{
    const tf_figures_row *r = find(t, field, strlen(field), NULL);
    return r ? r->value : 0;
}

void tf_figures_table_free(tf_figures_table *t)
{
    for (size_t r = 0; r < t->n; r++)
        free(t->rows[r].field);
    free(t->rows);
    free(t->index);
    memset(t, 0, sizeof(*t));
}
