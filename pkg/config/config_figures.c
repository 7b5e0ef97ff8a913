/* figures.windows_days: the windows, in days, over which churn and retention
 * rates are figured; an array of 1 to TF_CONFIG_MAX_WINDOWS distinct whole
 * numbers of days. */
#include <string.h>

#include "config/internal.h"

#define WINDOW_DAYS_MAX 3660

static void windows_set(tf_config_t *cfg, tf_config_errlist *e, const char *label, json_t *v)
{
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > TF_CONFIG_MAX_WINDOWS) {
        tf_config_errf(e, "%s: expected an array of 1 to %d numbers of days, such as [30, 90]", label,
                       TF_CONFIG_MAX_WINDOWS);
        return;
    }
    int64_t days[TF_CONFIG_MAX_WINDOWS];
    size_t i, n = json_array_size(v);
    json_t *item;
    int bad = 0;
    json_array_foreach(v, i, item) {
        if (!json_is_integer(item) || json_integer_value(item) < 1 || json_integer_value(item) > WINDOW_DAYS_MAX) {
            tf_config_errf(e, "%s[%zu]: expected a whole number of days from 1 to %d", label, i, WINDOW_DAYS_MAX);
            bad = 1;
            continue;
        }
        days[i] = (int64_t)json_integer_value(item);
        for (size_t k = 0; k < i; k++)
            if (days[k] == days[i]) {
                tf_config_errf(e, "%s[%zu]: %lld days is given twice", label, i, (long long)days[i]);
                bad = 1;
            }
    }
    if (bad)
        return;
    memset(cfg->figures_windows_days, 0, sizeof(cfg->figures_windows_days));
    memcpy(cfg->figures_windows_days, days, n * sizeof(days[0]));
    cfg->nfigures_windows = n;
}

static void windows_check(const tf_config_t *cfg, tf_config_errlist *e, const char *label)
{
    if (cfg->nfigures_windows < 1 || cfg->nfigures_windows > TF_CONFIG_MAX_WINDOWS) {
        tf_config_errf(e, "%s: expected 1 to %d windows", label, TF_CONFIG_MAX_WINDOWS);
        return;
    }
    for (size_t i = 0; i < cfg->nfigures_windows; i++)
        if (cfg->figures_windows_days[i] < 1 || cfg->figures_windows_days[i] > WINDOW_DAYS_MAX)
            tf_config_errf(e, "%s[%zu]: expected a whole number of days from 1 to %d", label, i, WINDOW_DAYS_MAX);
}

static json_t *windows_dump(const tf_config_t *cfg)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < cfg->nfigures_windows && i < TF_CONFIG_MAX_WINDOWS; i++)
        if (json_array_append_new(a, json_integer((json_int_t)cfg->figures_windows_days[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

const tf_config_json_option tf_config_figures_windows = {windows_set, windows_check, windows_dump};
