/* touchflow stats: the population figures (pkg/figures) read from Redis, as a
 * table for a person or as JSON (--json) for a program: the same object the
 * daemon serves at /figures. It reads through the store, so a Redis Cluster's
 * per-slot figures are summed as the daemon sums them. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "cli.h"
#include "figures/figures.h"
#include "store/store.h"

typedef struct {
    struct event_base *base;
    tf_store_t *st;
    const tf_config_t *cfg;
    int days;
    int status;          /* TF_EAGAIN until the read ends */
    char error[512];
    json_t *view;
} stats_run;

static void on_read(tf_store_t *st, int status, tf_figures_table *table, void *opaque)
{
    stats_run *r = opaque;
    r->status = status;
    if (status == TF_OK) {
        tf_figures_view_opts o = {r->cfg->figures_windows_days, r->cfg->nfigures_windows, r->days,
                                  (size_t)r->cfg->figures_max_labels};
        if (!(r->view = tf_figures_view(table, &o)))
            r->status = TF_ENOMEM;
        else if (table->skipped)
            tf_cli_errorf("stats: %zu stored figures are not integers: left out", table->skipped);
    } else {
        snprintf(r->error, sizeof r->error, "%s", tf_store_last_error(st));
    }
    event_base_loopbreak(r->base);
}

static void on_state(tf_store_t *st, int up, void *opaque)
{
    stats_run *r = opaque;
    if (!up || r->status != TF_EAGAIN)
        return;
    int rc = tf_store_figures_read(st, on_read, r);
    if (rc != TF_OK) {
        r->status = rc;
        snprintf(r->error, sizeof r->error, "%s", tf_strerror(rc));
        event_base_loopbreak(r->base);
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    stats_run *r = arg;
    (void)fd, (void)what;
    event_base_loopbreak(r->base);
}

static int64_t num(const json_t *o, const char *k) { return (int64_t)json_integer_value(json_object_get(o, k)); }

/* "12.5%" or "-" for a figure without a base. */
static const char *pct(const json_t *v, char buf[16])
{
    if (!json_is_number(v))
        return "-";
    snprintf(buf, 16, "%.1f%%", json_number_value(v) * 100.0);
    return buf;
}

static void print_counts(const char *title, const json_t *o)
{
    const char *k;
    json_t *v;
    int first = 1;
    printf("%-14s", title);
    json_object_foreach((json_t *)o, k, v) {
        printf("%s%s %" PRId64, first ? "" : ", ", k, (int64_t)json_integer_value(v));
        first = 0;
    }
    printf("%s\n", first ? "-" : "");
}

static void print_table(const json_t *v)
{
    char b1[16], b2[16];
    const json_t *as_of = json_object_get(v, "as_of");
    printf("Population as of %s (the latest event day)\n\n", json_is_string(as_of) ? json_string_value(as_of) : "-");
    printf("%-14s%" PRId64 " known, %" PRId64 " active\n", "customers", num(v, "customers"), num(v, "active"));
    const json_t *stages = json_object_get(v, "stages");
    int64_t known = num(v, "customers");
    printf("\n%-14s %10s %7s\n", "STAGE", "CUSTOMERS", "SHARE");
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)stages, k, x) {
        int64_t n = (int64_t)json_integer_value(x);
        printf("%-14s %10" PRId64 " %6.1f%%\n", k, n, known > 0 ? 100.0 * (double)n / (double)known : 0.0);
    }
    printf("\n");
    print_counts("tiers", json_object_get(v, "tiers"));
    print_counts("levels", json_object_get(v, "levels"));

    printf("\n%-8s %-10s %8s %8s %8s %8s %8s %8s %9s\n", "WINDOW", "FROM", "START", "NEW", "WON-BACK", "CHURNED",
           "END", "CHURN", "RETENTION");
    size_t i;
    json_array_foreach(json_object_get(v, "windows"), i, x) {
        char w[16];
        const json_t *from = json_object_get(x, "from");
        snprintf(w, sizeof w, "%" PRId64 "d", num(x, "days"));
        printf("%-8s %-10s %8" PRId64 " %8" PRId64 " %8" PRId64 " %8" PRId64 " %8" PRId64 " %8s %9s\n", w,
               json_is_string(from) ? json_string_value(from) : "-", num(x, "start"), num(x, "new"),
               num(x, "won_back"), num(x, "churned"), num(x, "end"), pct(json_object_get(x, "churn_rate"), b1),
               pct(json_object_get(x, "retention_rate"), b2));
    }

    const json_t *sat = json_object_get(v, "satisfaction"), *nps = json_object_get(v, "nps");
    const json_t *avg = json_object_get(sat, "average"), *score = json_object_get(nps, "score");
    printf("\n%-14s", "satisfaction");
    if (json_is_number(avg))
        printf("%.1f average over %" PRId64 " customer%s\n", json_number_value(avg), num(sat, "customers"),
               num(sat, "customers") == 1 ? "" : "s");
    else
        printf("-\n");
    printf("%-14s", "nps");
    if (json_is_number(score))
        printf("%.1f", json_number_value(score));
    else
        printf("-");
    printf(" (promoters %" PRId64 ", passives %" PRId64 ", detractors %" PRId64 ")\n", num(nps, "promoters"),
           num(nps, "passives"), num(nps, "detractors"));

    const json_t *cp = json_object_get(v, "complaints");
    print_counts("complaints", json_object_get(cp, "by_category"));
    print_counts("  severity", json_object_get(cp, "by_severity"));
    printf("%-14sin time %" PRId64 ", escalated level 1 %" PRId64 ", level 2 %" PRId64 ", compliance %s\n",
           "  sla", num(cp, "in_time"), num(cp, "escalated_level1"), num(cp, "escalated_level2"),
           pct(json_object_get(cp, "sla_compliance"), b1));
    print_counts("exit reasons", json_object_get(v, "exits"));
    print_counts("campaigns", json_object_get(v, "campaigns"));
}

static int parse_args(int argc, char **argv, int *json, int *days, int64_t *timeout_ms, int *help)
{
    enum { OPT_JSON = 256, OPT_DAYS, OPT_TIMEOUT };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},           {"days", required_argument, NULL, OPT_DAYS},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    int64_t v;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: *json = 1; break;
        case OPT_DAYS:
            if (tf_cli_int_option("stats", "--days", optarg, 0, 3660, &v))
                return TF_CLI_USAGE;
            *days = (int)v;
            break;
        case OPT_TIMEOUT:
            if (tf_cli_int_option("stats", "--timeout-ms", optarg, 1, 600000, timeout_ms))
                return TF_CLI_USAGE;
            break;
        case 'h': *help = 1; return TF_CLI_OK;
        default: return tf_cli_bad_option("stats", c, argv);
        }
    }
    return tf_cli_no_operands("stats", argc, argv);
}

int tf_cli_cmd_stats(const tf_cli_opts *opts, int argc, char **argv)
{
    tf_config_t *cfg = malloc(sizeof(*cfg));
    stats_run r;
    int json = 0, help = 0, rc;
    int64_t timeout_ms = 10000;
    struct event *timer = NULL;
    char err[512], shown[1200];
    memset(&r, 0, sizeof(r));
    r.days = 30;
    r.status = TF_EAGAIN;
    if (!cfg) {
        tf_cli_errorf("stats: out of memory");
        return TF_CLI_FAIL;
    }
    if ((rc = parse_args(argc, argv, &json, &r.days, &timeout_ms, &help)) != TF_CLI_OK || help) {
        if (help)
            tf_cli_usage(stdout);
        goto out;
    }
    if ((rc = tf_cli_config_load(opts, cfg)) != TF_CLI_OK)
        goto out;
    r.cfg = cfg;
    tf_cli_redis_url_shown(cfg->redis_url, shown, sizeof shown);
    rc = TF_CLI_FAIL;
    if (!(r.base = event_base_new())) {
        tf_cli_errorf("stats: out of memory");
        goto out;
    }
    tf_store_opts so = {cfg->redis_url, cfg->key_prefix, cfg->redis_timeout_ms, cfg->redis_backoff_min_ms,
                        cfg->redis_backoff_max_ms, cfg->dedup_window_s * TF_MS_PER_SEC};
    if (!(r.st = tf_store_new(r.base, &so, on_state, &r, err, sizeof err))) {
        tf_cli_errorf("stats: Redis at %s: %s", shown, err);
        goto out;
    }
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    if (!(timer = evtimer_new(r.base, on_timeout, &r)) || event_add(timer, &tv)) {
        tf_cli_errorf("stats: out of memory");
        goto out;
    }
    event_base_dispatch(r.base);
    if (r.status == TF_EAGAIN) {
        tf_cli_errorf("stats: no answer from Redis at %s within %" PRId64 " ms", shown, timeout_ms);
        goto out;
    }
    if (r.status != TF_OK) {
        tf_cli_errorf("stats: cannot read the figures from Redis at %s: %s", shown,
                      r.error[0] ? r.error : tf_strerror(r.status));
        goto out;
    }
    if (json) {
        json_dumpf(r.view, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        print_table(r.view);
    }
    rc = TF_CLI_OK;
out:
    json_decref(r.view);
    tf_store_destroy(r.st);
    if (timer)
        event_free(timer);
    if (r.base)
        event_base_free(r.base);
    free(cfg);
    return rc;
}
