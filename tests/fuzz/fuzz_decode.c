/* libFuzzer harness for the touchpoint decoder (pkg/event), both CloudEvents modes.
 *
 * Input: one mode byte, then the record. Mode 's' (or anything but 'b'): the rest is
 * a structured-mode value. Mode 'b': binary mode; lines "name=value" up to an empty
 * line are the Kafka headers (ce_* attributes), the rest is the value (data).
 * The decoder must never crash, read out of bounds or leak, and what it accepts must
 * hold what the contract promises (checked below). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.h"

#define MAX_HEADERS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tf_event_limits lim;
    tf_event_header h[MAX_HEADERS];
    size_t nh = 0;
    char detail[256];
    tf_event_t ev;
    tf_event_limits_default(&lim);
    if (size == 0)
        return 0;
    int binary = data[0] == 'b';
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    if (binary) {
        while (p < end && nh < MAX_HEADERS) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *line_end = nl ? nl : end;
            if (line_end == p) { /* empty line: the value follows */
                p = nl ? nl + 1 : end;
                break;
            }
            const char *eq = memchr(p, '=', (size_t)(line_end - p));
            if (eq) {
                /* Header names are NUL-terminated for the decoder; copy them. */
                size_t n = (size_t)(eq - p);
                char *name = malloc(n + 1);
                if (!name)
                    break;
                memcpy(name, p, n);
                name[n] = '\0';
                h[nh].name = name;
                h[nh].value = eq + 1;
                h[nh].value_len = (size_t)(line_end - eq - 1);
                nh++;
            }
            p = nl ? nl + 1 : end;
        }
    }
    tf_event_error err = tf_event_decode(&lim, p, (size_t)(end - p), h, nh, 1767225600000, &ev, detail, sizeof detail);
    for (size_t i = 0; i < nh; i++)
        free((void *)h[i].name);
    if (err == TF_EV_OK) {
        /* What downstream code relies on. */
        must(ev.subject[0] != '\0');
        must(ev.id[0] != '\0' && ev.source[0] != '\0');
        must(ev.kind >= 0 && ev.kind < TF_KIND__COUNT);
        must(ev.amount >= 0 && ev.amount <= lim.max_amount);
        must(ev.margin >= -lim.max_amount && ev.margin <= lim.max_amount);
        must(ev.time_ms <= 1767225600000 + lim.max_future_skew_ms);
    } else {
        must(err > TF_EV_OK && err < TF_EV__COUNT);
        must(detail[0] != '\0'); /* every refusal says why */
        must(strlen(detail) < sizeof detail);
    }
    return 0;
}
