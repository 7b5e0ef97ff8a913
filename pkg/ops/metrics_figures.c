/* The population figures (pkg/figures, as the pipeline last read them) in the
 * Prometheus text format, after the process's own metrics. The names are a
 * contract like metrics.c's: deploy/ and the tests use them as written here. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "ops/internal.h"
#include "ops/ops.h"

/* Writes " <v>\n" after a series name: callers check json_is_number first. */
static void value(tf_ops_writer *w, const json_t *v)
{
    char num[40];
    if (json_is_integer(v))
        tf_ops_put_fmt(w, " %" PRId64 "\n", (int64_t)json_integer_value(v));
    else {
        tf_ops_format_double(num, sizeof num, json_number_value(v));
        tf_ops_put_fmt(w, " %s\n", num);
    }
}

/* name{label="<key>"} <value> for each member of obj. */
static void labelled(tf_ops_writer *w, const char *name, const char *type, const char *help, const char *label,
                     const json_t *obj)
{
    const char *key;
    json_t *v;
    tf_ops_family(w, name, type, help);
    json_object_foreach((json_t *)obj, key, v) {
        if (!json_is_number(v))
            continue;
        tf_ops_put_fmt(w, "%s{%s=\"", name, label);
        if (tf_ops_label_escape(w->b, key) != 0)
            w->failed = 1;
        tf_ops_put_fmt(w, "\"}");
        value(w, v);
    }
}

/* A scalar family; its sample is left out while the figure has no base (null). */
static void scalar(tf_ops_writer *w, const char *name, const char *type, const char *help, const json_t *v)
{
    tf_ops_family(w, name, type, help);
    if (!json_is_number(v))
        return;
    tf_ops_put_fmt(w, "%s", name);
    value(w, v);
}

static const json_t *at(const json_t *o, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(o, k1);
    return k2 ? json_object_get(v, k2) : v;
}

int tf_ops_render_figures(struct evbuffer *out, const json_t *view, int64_t age_ms, uint64_t read_errors)
{
    tf_ops_writer w = {out, 0};
    tf_ops_family(&w, "touchflow_population_figures_read_errors_total", "counter",
           "Reads of the population figures from Redis that failed.");
    tf_ops_put_fmt(&w, "touchflow_population_figures_read_errors_total %" PRIu64 "\n", read_errors);
    /* Before the first read every family is announced without samples, so that
     * dashboards and rules find the names from the start. */
    json_t *none = view ? NULL : json_object();
    if (!view && !none)
        return TF_ENOMEM;
    if (!view)
        view = none;
    tf_ops_family(&w, "touchflow_population_figures_age_seconds", "gauge",
           "Seconds since the population figures shown here were read from Redis.");
    if (!none)
        tf_ops_put_fmt(&w, "touchflow_population_figures_age_seconds %.3f\n", (double)age_ms / 1000.0);

    scalar(&w, "touchflow_population_known_customers", "gauge", "Customers ever seen.", at(view, "customers", NULL));
    scalar(&w, "touchflow_population_active_customers", "gauge", "Customers from prospect to decline.",
           at(view, "active", NULL));
    labelled(&w, "touchflow_population_customers", "gauge", "Customers per lifecycle stage.", "stage",
             at(view, "stages", NULL));
    labelled(&w, "touchflow_population_tier_customers", "gauge", "Customers per value tier.", "tier",
             at(view, "tiers", NULL));
    labelled(&w, "touchflow_population_level_customers", "gauge", "Customers per member level.", "level",
             at(view, "levels", NULL));

    const json_t *windows = at(view, "windows", NULL);
    static const char *const rates[2][3] = {
        {"churn_rate", "touchflow_population_churn_rate", "Customers churned in the window over those active at its start."},
        {"retention_rate", "touchflow_population_retention_rate",
         "Customers active at the window's start still active at its end (end - new - won back) / start."},
    };
    for (int r = 0; r < 2; r++) {
        size_t i;
        json_t *x;
        tf_ops_family(&w, rates[r][1], "gauge", rates[r][2]);
        json_array_foreach((json_t *)windows, i, x) {
            const json_t *v = json_object_get(x, rates[r][0]);
            if (!json_is_number(v))
                continue;
            tf_ops_put_fmt(&w, "%s{window_days=\"%" PRId64 "\"}", rates[r][1],
                    (int64_t)json_integer_value(json_object_get(x, "days")));
            value(&w, v);
        }
    }
    tf_ops_family(&w, "touchflow_population_window_customers", "gauge",
           "Customer flows per window: active at its start, new, won back, churned, active at its end.");
    {
        static const char *const flows[] = {"start", "new", "won_back", "churned", "end"};
        size_t i;
        json_t *x;
        json_array_foreach((json_t *)windows, i, x) {
            for (size_t f = 0; f < sizeof flows / sizeof flows[0]; f++) {
                if (!json_is_number(json_object_get(x, flows[f])))
                    continue;
                tf_ops_put_fmt(&w, "touchflow_population_window_customers{window_days=\"%" PRId64 "\",flow=\"%s\"}",
                        (int64_t)json_integer_value(json_object_get(x, "days")), flows[f]);
                value(&w, json_object_get(x, flows[f]));
            }
        }
    }

    scalar(&w, "touchflow_population_satisfaction_customers", "gauge", "Customers with a satisfaction figure.",
           at(view, "satisfaction", "customers"));
    scalar(&w, "touchflow_population_satisfaction_average", "gauge",
           "Average of the customers' satisfaction (perception over expectation x 100).",
           at(view, "satisfaction", "average"));
    tf_ops_family(&w, "touchflow_population_nps_answers_total", "counter", "Survey NPS answers by class.");
    static const char *const classes[3][2] = {{"promoters", "promoter"}, {"passives", "passive"},
                                              {"detractors", "detractor"}};
    for (int c = 0; c < 3 && !none; c++) {
        tf_ops_put_fmt(&w, "touchflow_population_nps_answers_total{class=\"%s\"}", classes[c][1]);
        value(&w, at(view, "nps", classes[c][0]));
    }
    scalar(&w, "touchflow_population_nps_score", "gauge", "Net promoter score of all answers (-100 to 100).",
           at(view, "nps", "score"));

    const json_t *cp = at(view, "complaints", NULL);
    labelled(&w, "touchflow_population_complaints_total", "counter", "Complaints opened, by category.", "category",
             json_object_get(cp, "by_category"));
    labelled(&w, "touchflow_population_complaints_by_severity_total", "counter", "Complaints opened, by severity.",
             "severity", json_object_get(cp, "by_severity"));
    tf_ops_family(&w, "touchflow_population_complaint_sla_total", "counter",
           "Complaints handled before their first escalation (in_time), and escalations by level.");
    static const char *const sla[3][2] = {{"in_time", "in_time"}, {"escalated_level1", "escalated_level1"},
                                          {"escalated_level2", "escalated_level2"}};
    for (int s = 0; s < 3 && !none; s++) {
        tf_ops_put_fmt(&w, "touchflow_population_complaint_sla_total{outcome=\"%s\"}", sla[s][1]);
        value(&w, json_object_get(cp, sla[s][0]));
    }
    scalar(&w, "touchflow_population_complaint_sla_compliance", "gauge",
           "Complaints handled in time over those handled in time or escalated.", json_object_get(cp, "sla_compliance"));
    labelled(&w, "touchflow_population_exits_total", "counter",
             "Exits that ended the relationship, by the reason given (the largest figures.max_labels).", "reason",
             at(view, "exits", NULL));
    labelled(&w, "touchflow_population_attributed_purchases_total", "counter",
             "Purchases attributed to the last campaign touched before them (the largest figures.max_labels).",
             "campaign", at(view, "campaigns", NULL));
    json_decref(none);
    return w.failed ? TF_ENOMEM : 0;
}
