/* Building the configuration for a command, and `touchflow config check`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define ERRBUF_SIZE 16384

void tf_cli_print_problems(FILE *out, const char *prefix, const char *origin, const char *errbuf)
{
    const char *line = errbuf;
    int printed = 0;
    while (*line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        size_t olen = strlen(origin);
        /* Some problems (a file that cannot be opened) already name their origin. */
        int named = len > olen && strncmp(line, origin, olen) == 0 && line[olen] == ':';
        if (len > 0) {
            fprintf(out, "%s%s%s%.*s\n", prefix, named ? "" : origin, named ? "" : ": ", (int)len, line);
            printed = 1;
        }
        line += len + (nl ? 1 : 0);
    }
    /* A failure must never be silent, even if the module gave no reason. */
    if (!printed)
        fprintf(out, "%s%s: invalid configuration\n", prefix, origin);
}

/* Applies the command-line overrides in order; returns the number that failed. */
static int apply_overrides(const tf_cli_opts *opts, tf_config_t *cfg, char *err, size_t errsize)
{
    int bad = 0;
    for (size_t i = 0; i < opts->noverrides; i++) {
        char assignment[TF_CONFIG_STR_MAX + 160];
        const char *a = opts->override_value[i];
        if (opts->override_key[i]) {
            int n = snprintf(assignment, sizeof(assignment), "%s=%s", opts->override_key[i], a);
            if (n < 0 || (size_t)n >= sizeof(assignment)) {
                tf_cli_errorf("command line: %s: value too long", opts->override_key[i]);
                bad++;
                continue;
            }
            a = assignment;
        }
        err[0] = '\0';
        if (tf_config_apply_override(cfg, a, err, errsize) != TF_OK) {
            tf_cli_print_problems(stderr, "touchflow: ", "command line", err);
            bad++;
        }
    }
    return bad;
}

int tf_cli_config_load(const tf_cli_opts *opts, tf_config_t *cfg)
{
    char *err = malloc(ERRBUF_SIZE);
    int bad = 0;
    if (!err) {
        tf_cli_errorf("out of memory");
        return TF_CLI_FAIL;
    }
    tf_config_defaults(cfg);
    err[0] = '\0';
    if (opts->config_path && tf_config_load_file(cfg, opts->config_path, err, ERRBUF_SIZE) != TF_OK) {
        tf_cli_print_problems(stderr, "touchflow: ", opts->config_path, err);
        bad++;
    }
    err[0] = '\0';
    if (tf_config_apply_env(cfg, err, ERRBUF_SIZE) != TF_OK) {
        tf_cli_print_problems(stderr, "touchflow: ", "environment", err);
        bad++;
    }
    bad += apply_overrides(opts, cfg, err, ERRBUF_SIZE);
    /* Cross-field checks only mean something once every value parsed. */
    err[0] = '\0';
    if (!bad && tf_config_validate(cfg, err, ERRBUF_SIZE) != TF_OK) {
        tf_cli_print_problems(stderr, "touchflow: ", opts->config_path ? opts->config_path : "config", err);
        bad++;
    }
    free(err);
    return bad ? TF_CLI_USAGE : TF_CLI_OK;
}

/* Loads one file as the daemon would (with the environment) and reports on it. */
static int check_file(const char *path, tf_config_t *cfg, char *err)
{
    int bad = 0;
    tf_config_defaults(cfg);
    err[0] = '\0';
    if (tf_config_load_file(cfg, path, err, ERRBUF_SIZE) != TF_OK) {
        tf_cli_print_problems(stderr, "", path, err);
        bad++;
    }
    err[0] = '\0';
    if (tf_config_apply_env(cfg, err, ERRBUF_SIZE) != TF_OK) {
        tf_cli_print_problems(stderr, "", "environment", err);
        bad++;
    }
    err[0] = '\0';
    if (!bad && tf_config_validate(cfg, err, ERRBUF_SIZE) != TF_OK) {
        tf_cli_print_problems(stderr, "", path, err);
        bad++;
    }
    if (!bad)
        printf("%s: ok\n", path);
    return bad;
}

int tf_cli_cmd_config(const tf_cli_opts *opts, int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    tf_config_t *cfg;
    char *err;
    int c, bad = 0;
    (void)opts;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c != 'h')
            return tf_cli_bad_option("config", c, argv);
        tf_cli_usage(stdout);
        return TF_CLI_OK;
    }
    if (optind >= argc || strcmp(argv[optind], "check") != 0) {
        tf_cli_errorf("config: expected 'config check FILE...'");
        return TF_CLI_USAGE;
    }
    if (++optind >= argc) {
        tf_cli_errorf("config check: no file given");
        return TF_CLI_USAGE;
    }
    cfg = malloc(sizeof(*cfg));
    err = malloc(ERRBUF_SIZE);
    if (!cfg || !err) {
        free(cfg);
        free(err);
        tf_cli_errorf("out of memory");
        return TF_CLI_FAIL;
    }
    for (; optind < argc; optind++)
        bad += check_file(argv[optind], cfg, err);
    free(err);
    free(cfg);
    fflush(stdout);
    return bad ? TF_CLI_USAGE : TF_CLI_OK;
}
