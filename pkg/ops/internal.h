/* Internals shared by the ops module's files. */
#ifndef TF_OPS_INTERNAL_H
#define TF_OPS_INTERNAL_H

#include <stddef.h>

/* The lag dashboard served at "/": one self-contained HTML page (dashboard.c). */
extern const char tf_ops_dashboard_html[];
extern const size_t tf_ops_dashboard_html_len;

/* The shortest decimal that reads back as v, as Prometheus clients write it. */
void tf_ops_format_double(char *buf, size_t size, double v);

#endif
