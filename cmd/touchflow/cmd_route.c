/* `touchflow route`: a dry run of the subscriptions. Reads one derived event as it
 * stands on a topic and says which subscriptions would receive it and, for each
 * of the others, the first filter field that turns it away. The facts come back
 * from the event's data figures (tf_route_ctx_from_data), the same ones the rules
 * route on. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "pipeline/route.h"

#define CMD "route"

static int parse_type(const char *name, tf_derived_type *out)
{
    for (int t = 0; t < TF_DERIVED__COUNT; t++)
        if (strcmp(name, tf_derived_type_name((tf_derived_type)t)) == 0) {
            *out = (tf_derived_type)t;
            return 0;
        }
    return -1;
}

/* The facts as text, for the human output: "stage=growth tier=key channels=email,sms". */
static void facts_line(const tf_route_table *t, const tf_derived_ctx *c, char *buf, size_t size)
{
    size_t n = 0;
#define ADD(...) n += (size_t)snprintf(buf + n, n < size ? size - n : 0, __VA_ARGS__)
    buf[0] = '\0';
    if (c->stage[0])
        ADD(" stage=%s", c->stage);
    if (c->tier[0])
        ADD(" tier=%s", c->tier);
    if (c->level[0])
        ADD(" level=%s", c->level);
    if (c->care_kind[0])
        ADD(" care_kind=%s", c->care_kind);
    if (c->has_value)
        ADD(" value=%lld", (long long)c->value);
    ADD(" channels=");
    int first = 1;
    for (int ch = 0; ch < TF_CHANNEL__COUNT; ch++)
        if ((c->channels >> ch) & 1) {
            ADD("%s%s", first ? "" : ",", tf_channel_name((tf_channel)ch));
            first = 0;
        }
    if (first)
        ADD("(none)");
    first = 1;
    for (size_t i = 0; i < t->nsegments; i++)
        if ((c->segments >> i) & 1) {
            ADD("%s%s", first ? " segments=" : ",", t->segments[i]);
            first = 0;
        }
    if (c->segment >= 0 && (size_t)c->segment < t->nsegments)
        ADD(" segment=%s", t->segments[c->segment]);
#undef ADD
    if (n >= size && size > 4)
        memcpy(buf + size - 4, "...", 4);
}

static json_t *facts_json(const tf_route_table *t, const tf_derived_ctx *c)
{
    json_t *f = json_object(), *ch = json_array(), *seg = json_array();
    if (!f || !ch || !seg) {
        json_decref(f);
        json_decref(ch);
        json_decref(seg);
        return NULL;
    }
    if (c->stage[0])
        json_object_set_new(f, "stage", json_string(c->stage));
    if (c->tier[0])
        json_object_set_new(f, "tier", json_string(c->tier));
    if (c->level[0])
        json_object_set_new(f, "level", json_string(c->level));
    if (c->care_kind[0])
        json_object_set_new(f, "care_kind", json_string(c->care_kind));
    if (c->has_value)
        json_object_set_new(f, "value", json_integer(c->value));
    for (int i = 0; i < TF_CHANNEL__COUNT; i++)
        if ((c->channels >> i) & 1)
            json_array_append_new(ch, json_string(tf_channel_name((tf_channel)i)));
    for (size_t i = 0; i < t->nsegments; i++)
        if ((c->segments >> i) & 1)
            json_array_append_new(seg, json_string(t->segments[i]));
    json_object_set_new(f, "channels", ch);
    json_object_set_new(f, "segments", seg);
    if (c->segment >= 0 && (size_t)c->segment < t->nsegments)
        json_object_set_new(f, "segment", json_string(t->segments[c->segment]));
    return f;
}

/* The index of an earlier receiver writing the same topic in the same mode, or -1. */
static int same_record_as(const tf_route_table *t, uint64_t all, uint64_t kept, size_t i)
{
    if (!((all >> i) & 1) || ((kept >> i) & 1))
        return -1;
    for (size_t j = 0; j < i; j++)
        if (((kept >> j) & 1) && t->subs[j].binary == t->subs[i].binary && strcmp(t->subs[j].topic, t->subs[i].topic) == 0)
            return (int)j;
    return -1;
}

static int report(const tf_route_table *t, tf_derived_type type, const char *subject, const char *id,
                  const tf_derived_ctx *ctx, int as_json)
{
    uint64_t all = tf_route(t, type, ctx), kept = tf_route_distinct(t, all);
    if (as_json) {
        json_t *out = json_object(), *recv = json_array(), *skip = json_array();
        if (!out || !recv || !skip) {
            tf_cli_errorf("%s: out of memory", CMD);
            return TF_CLI_FAIL;
        }
        json_object_set_new(out, "type", json_string(tf_derived_type_name(type)));
        if (subject)
            json_object_set_new(out, "subject", json_string(subject));
        if (id)
            json_object_set_new(out, "id", json_string(id));
        json_object_set_new(out, "facts", facts_json(t, ctx));
        for (size_t i = 0; i < t->n; i++) {
            const tf_route_sub *s = &t->subs[i];
            tf_route_why why = tf_route_check(t, i, type, ctx);
            if (why == TF_ROUTE_MATCH) {
                json_t *r = json_pack("{s:s, s:s, s:s}", "subscription", s->name, "topic", s->topic, "mode",
                                      s->binary ? "binary" : "structured");
                int same = same_record_as(t, all, kept, i);
                if (r && same >= 0)
                    json_object_set_new(r, "same_record_as", json_string(t->subs[same].name));
                json_array_append_new(recv, r);
            } else {
                json_array_append_new(skip, json_pack("{s:s, s:s}", "subscription", s->name, "reason",
                                                      tf_route_why_name(why)));
            }
        }
        json_object_set_new(out, "receivers", recv);
        json_object_set_new(out, "skipped", skip);
        char *text = json_dumps(out, JSON_PRESERVE_ORDER | JSON_COMPACT);
        json_decref(out);
        if (!text) {
            tf_cli_errorf("%s: out of memory", CMD);
            return TF_CLI_FAIL;
        }
        puts(text);
        free(text);
        return TF_CLI_OK;
    }
    char facts[1024];
    facts_line(t, ctx, facts, sizeof facts);
    printf("%s%s%s%s%s\nfacts:%s\n", tf_derived_type_name(type), subject ? " subject=" : "", subject ? subject : "",
           id ? " id=" : "", id ? id : "", facts);
    if (!all)
        printf("no subscription receives it (counted as unrouted, not sent)\n");
    for (size_t i = 0; i < t->n; i++) {
        const tf_route_sub *s = &t->subs[i];
        if (!((all >> i) & 1))
            continue;
        int same = same_record_as(t, all, kept, i);
        printf("receives  %-24s %s (%s)", s->name, s->topic, s->binary ? "binary" : "structured");
        if (same >= 0)
            printf(", the same record as %s", t->subs[same].name);
        printf("\n");
    }
    for (size_t i = 0; i < t->n; i++) {
        tf_route_why why = tf_route_check(t, i, type, ctx);
        if (why != TF_ROUTE_MATCH)
            printf("skips     %-24s %s\n", t->subs[i].name, tf_route_why_name(why));
    }
    return TF_CLI_OK;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *more = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
        if (!more) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = more;
        cap *= 2;
    }
    int failed = ferror(f);
    if (f != stdin)
        fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int tf_cli_cmd_route(const tf_cli_opts *opts, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"type", required_argument, NULL, 'T'},
        {"subject", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    int c, as_json = 0;
    const char *type_name = NULL, *subject = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': as_json = 1; break;
        case 'T': type_name = optarg; break;
        case 's': subject = optarg; break;
        default: return tf_cli_bad_option(CMD, c, argv);
        }
    }
    if (argc - optind > 1) {
        tf_cli_errorf("%s: one event file at most (or \"-\" for stdin)", CMD);
        return TF_CLI_USAGE;
    }
    const char *path = optind < argc ? argv[optind] : "-";
    tf_derived_type type = TF_DERIVED__COUNT;
    if (type_name && parse_type(type_name, &type)) {
        tf_cli_errorf("%s: --type: unknown derived type '%s'", CMD, type_name);
        return TF_CLI_USAGE;
    }
    tf_config_t *cfg = malloc(sizeof *cfg);
    tf_route_table *t = malloc(sizeof *t);
    char *text = NULL;
    json_t *ev = NULL;
    int rc = TF_CLI_FAIL;
    if (!cfg || !t) {
        tf_cli_errorf("%s: out of memory", CMD);
        goto out;
    }
    if ((rc = tf_cli_config_load(opts, cfg)) != TF_CLI_OK)
        goto out;
    rc = TF_CLI_FAIL;
    tf_route_table_build(cfg, t);

    size_t len = 0;
    if (!(text = read_all(path, &len))) {
        tf_cli_errorf("%s: cannot read %s", CMD, strcmp(path, "-") == 0 ? "stdin" : path);
        goto out;
    }
    json_error_t jerr;
    ev = json_loadb(text, len, 0, &jerr);
    if (!ev || !json_is_object(ev)) {
        tf_cli_errorf("%s: %s: not a JSON object%s%s", CMD, path, ev ? "" : ": ", ev ? "" : jerr.text);
        goto out;
    }
    const char *id = NULL;
    json_t *data = ev;
    if (!type_name) {
        /* Structured mode: the whole event. */
        const char *tn = json_string_value(json_object_get(ev, "type"));
        if (!tn || parse_type(tn, &type)) {
            tf_cli_errorf("%s: %s: \"type\" is %s%s%s (binary mode: give the data object with --type)", CMD, path,
                          tn ? "not a derived type: '" : "missing", tn ? tn : "", tn ? "'" : "");
            rc = TF_CLI_USAGE;
            goto out;
        }
        if (!subject)
            subject = json_string_value(json_object_get(ev, "subject"));
        id = json_string_value(json_object_get(ev, "id"));
        data = json_object_get(ev, "data");
        if (!json_is_object(data)) {
            tf_cli_errorf("%s: %s: the event has no data object", CMD, path);
            goto out;
        }
    }
    char *dtext = json_dumps(data, JSON_COMPACT);
    tf_derived_ctx ctx;
    char err[256];
    int r = dtext ? tf_route_ctx_from_data(t, type, dtext, strlen(dtext), &ctx, err, sizeof err) : TF_ENOMEM;
    free(dtext);
    if (r != TF_OK) {
        tf_cli_errorf("%s: %s: %s", CMD, path, r == TF_ENOMEM ? "out of memory" : err);
        goto out;
    }
    rc = report(t, type, subject, id, &ctx, as_json);
out:
    json_decref(ev);
    free(text);
    free(t);
    free(cfg);
    return rc;
}
