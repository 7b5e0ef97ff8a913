/* Internals shared by the ops module's files. */
#ifndef TF_OPS_INTERNAL_H
#define TF_OPS_INTERNAL_H

#include <stddef.h>

struct evbuffer;

/* The lag dashboard served at "/": one self-contained HTML page (dashboard.c). */
extern const char tf_ops_dashboard_html[];
extern const size_t tf_ops_dashboard_html_len;

/* A metrics page being written, and whether any append failed: the rendering goes
 * on and reports once (metrics.c). */
typedef struct {
    struct evbuffer *b;
    int failed;
} tf_ops_writer;

void tf_ops_put_fmt(tf_ops_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "# HELP" and "# TYPE" of a family; help is a constant without '\\' or newline. */
void tf_ops_family(tf_ops_writer *w, const char *name, const char *type, const char *help);

/* The shortest decimal that reads back as v, as Prometheus clients write it. */
void tf_ops_format_double(char *buf, size_t size, double v);

#endif
