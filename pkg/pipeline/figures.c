/* The population figures a group's commit adds (pkg/figures): gathered step by
 * step while the group is applied, kept in the batch, sent with the commit. */
#include <stdlib.h>

#include "pipeline/internal.h"

#define MOD "figures"
#define STEP_MAX 64

void tf_pipeline_figures_start(batch_t *b, group_t *gr)
{
    gr->fig_first = b->nfigs;
    gr->fig_n = 0;
}

/* Adds s to the group's run, which is the batch's tail while the group applies:
 * room for every entry of s is made first, so the merge never overflows. */
static void group_add(batch_t *b, group_t *gr, const tf_figures_set *s)
{
    if (b->nfigs + s->n > b->figs_cap) {
        uint32_t cap = b->figs_cap ? b->figs_cap : 256;
        while (cap < b->nfigs + s->n)
            cap *= 2;
        tf_figure_delta *figs = realloc(b->figs, cap * sizeof(*figs));
        if (!figs) {
            TF_ERROR(MOD, "out of memory keeping population figures");
            b->failed = 1;
            return;
        }
        b->figs = figs;
        b->figs_cap = cap;
    }
    tf_figures_set run = {b->figs + gr->fig_first, gr->fig_n, b->figs_cap - gr->fig_first, 0};
    tf_figures_merge(&run, s);
    b->nfigs += (uint32_t)run.n - gr->fig_n;
    gr->fig_n = (uint32_t)run.n;
}

void tf_pipeline_figures_step(tf_pipeline_t *p, batch_t *b, group_t *gr, const tf_figures_mark *m,
                              const tf_event_t *ev, const tf_derived_t *out, size_t n)
{
    tf_figure_delta v[STEP_MAX];
    tf_figures_set s = {v, 0, STEP_MAX, 0};
    tf_figures_step(&p->cfg.rules, m, &gr->after.customer, ev, out, n, &s);
    if (s.overflow)
        TF_WARN(MOD, "a step of %s moved more figures than kept: the figures miss some",
                b->recs[gr->first].ev.subject);
    group_add(b, gr, &s);
}

void tf_pipeline_figures_finish(batch_t *b, group_t *gr)
{
    tf_figure_delta v[STEP_MAX];
    tf_figures_set s = {v, 0, STEP_MAX, 0};
    tf_figures_state(&gr->before.customer, gr->before.exists, &gr->after.customer, &s);
    group_add(b, gr, &s);
}

/* ---- the periodic read ---- */

static void arm_read(tf_pipeline_t *p)
{
    /* Until the first read succeeds, soon; then every figures.refresh_s. */
    int64_t ms = p->figures_view ? p->cfg.figures_refresh_s * TF_MS_PER_SEC : 1000;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(p->figures_timer, &tv);
}

static void on_figures(tf_store_t *st, int status, tf_figures_table *table, void *opaque)
{
    tf_pipeline_t *p = opaque;
    (void)st;
    p->figures_reading = 0;
    if (status == TF_ECLOSED)
        return;
    json_t *view = NULL;
    if (status == TF_OK) {
        tf_figures_view_opts o = {p->cfg.figures_windows_days, p->cfg.nfigures_windows, 30,
                                  (size_t)p->cfg.figures_max_labels};
        if (table->skipped)
            TF_WARN(MOD, "%zu stored figures are not integers: left out", table->skipped);
        view = tf_figures_view(table, &o);
    }
    if (view) {
        json_decref(p->figures_view);
        p->figures_view = view;
        p->figures_read_mono_ms = tf_time_mono_ms();
    } else {
        p->figures_read_errors++;
        TF_WARN(MOD, "cannot read the population figures: %s",
                status == TF_OK ? "out of memory" : tf_store_last_error(p->store));
    }
    arm_read(p);
}

static void on_figures_timer(evutil_socket_t fd, short what, void *arg)
{
    tf_pipeline_t *p = arg;
    (void)fd, (void)what;
    if (p->figures_reading)
        return;
    int rc = tf_store_figures_read(p->store, on_figures, p);
    if (rc == TF_OK) {
        p->figures_reading = 1;
        return;
    }
    if (rc != TF_EAGAIN) /* Redis down is reported by the store */
        p->figures_read_errors++;
    arm_read(p);
}

int tf_pipeline_figures_init(tf_pipeline_t *p)
{
    if (!(p->figures_timer = evtimer_new(p->base, on_figures_timer, p)))
        return TF_ENOMEM;
    arm_read(p);
    return TF_OK;
}

void tf_pipeline_figures_free(tf_pipeline_t *p)
{
    if (p->figures_timer)
        event_free(p->figures_timer);
    p->figures_timer = NULL;
    json_decref(p->figures_view);
    p->figures_view = NULL;
}

const struct json_t *tf_pipeline_figures(const tf_pipeline_t *p, int64_t *age_ms, uint64_t *errors)
{
    if (age_ms)
        *age_ms = p->figures_view ? tf_time_mono_ms() - p->figures_read_mono_ms : -1;
    if (errors)
        *errors = p->figures_read_errors;
    return p->figures_view;
}
