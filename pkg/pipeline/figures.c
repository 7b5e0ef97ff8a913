/* The population figures a group's commit adds (pkg/figures): gathered step by
 * step while the group is applied, kept in the batch, sent with the commit. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/internal.h"

#define MOD "figures"
#define STEP_MAX 64

void tf_pipeline_figures_start(batch_t *b, group_t *gr)
{
    gr->fig_first = b->nfigs;
    gr->fig_n = 0;
}

/* Adds s to the group's run, which is the batch's tail while the group applies. */
static void group_add(batch_t *b, group_t *gr, const tf_figures_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        tf_figure_delta *run = b->figs + gr->fig_first;
        uint32_t k = 0;
        while (k < gr->fig_n && strcmp(run[k].field, s->v[i].field) != 0)
            k++;
        if (k < gr->fig_n) {
            run[k].delta += s->v[i].delta;
            continue;
        }
        if (b->nfigs == b->figs_cap) {
            uint32_t cap = b->figs_cap ? b->figs_cap * 2 : 256;
            tf_figure_delta *figs = realloc(b->figs, cap * sizeof(*figs));
            if (!figs) {
                TF_ERROR(MOD, "out of memory keeping population figures");
                b->failed = 1;
                return;
            }
            b->figs = figs;
            b->figs_cap = cap;
        }
        b->figs[b->nfigs++] = s->v[i];
        gr->fig_n++;
    }
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
