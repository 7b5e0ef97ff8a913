/* `touchflow customer get ID`: a customer's state hash as one JSON object.
 *
 * Generic over the hash's fields, so it shows whatever the daemon wrote (also fields
 * this CLI does not know yet): values that are decimal integers become JSON integers,
 * decimal numbers become JSON numbers, the rest strings; "o:<topic>/<partition>"
 * watermarks are grouped under "offsets", "n:<kind>" counts under "counts", the
 * stage changes "h:0".."h:9" under "stage_history" (newest first), and any "t:<name>"
 * fields under "timers" as [{"name", "value"}] sorted by name (the daemon keeps no
 * timers in the hash yet; "timers" is absent when there are none). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>
#include <jansson.h>

#include "cli.h"

/* The stage-history fields h:0..h:9 the daemon may write (it keeps 8 today). */
#define TF_STAGE_HISTORY_SLOTS 10

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Canonical decimal integer only ("-?(0|[1-9][0-9]*)", not "-0"), so text such as
 * "007" keeps its leading zeros as a string. */
static int is_int_text(const char *s, size_t n)
{
    size_t i = (n && s[0] == '-') ? 1 : 0;
    if (i == n || (s[i] == '0' && (n - i > 1 || i == 1)))
        return 0;
    for (; i < n; i++)
        if (!is_digit(s[i]))
            return 0;
    return 1;
}

/* A JSON number with a fraction or an exponent: "-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?". */
static int is_real_text(const char *s, size_t n)
{
    size_t i = (n && s[0] == '-') ? 1 : 0, start;
    int frac_or_exp = 0;
    if (i == n || !is_digit(s[i]) || (s[i] == '0' && i + 1 < n && is_digit(s[i + 1])))
        return 0;
    while (i < n && is_digit(s[i]))
        i++;
    if (i < n && s[i] == '.') {
        for (start = ++i; i < n && is_digit(s[i]); i++)
            ;
        if (i == start)
            return 0;
        frac_or_exp = 1;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (start = i; i < n && is_digit(s[i]); i++)
            ;
        if (i == start)
            return 0;
        frac_or_exp = 1;
    }
    return i == n && frac_or_exp;
}

/* Redis holds bytes; JSON holds text. Invalid UTF-8 shows as U+FFFD rather than
 * failing the whole command. Returns a new buffer (length in *outlen) or NULL. */
static char *utf8_repair(const char *s, size_t n, size_t *outlen)
{
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len && i + len <= n && tf_utf8_valid(s + i, len)) {
            memcpy(o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    *outlen = (size_t)(o - out);
    return out;
}

static json_t *text_value(const char *s, size_t n)
{
    size_t len;
    char *fixed;
    json_t *v;
    if (tf_utf8_valid(s, n))
        return json_stringn(s, n);
    if (!(fixed = utf8_repair(s, n, &len)))
        return NULL;
    v = json_stringn(fixed, len);
    free(fixed);
    return v;
}

static json_t *typed_value(const char *s, size_t n)
{
    int64_t i;
    /* Redis bulk strings are NUL-terminated by hiredis, so strtod may read s. */
    if (is_int_text(s, n) && tf_parse_i64(s, n, &i) == TF_OK)
        return json_integer((json_int_t)i);
    if (is_real_text(s, n)) {
        double d = strtod(s, NULL);
        if (isfinite(d))
            return json_real(d);
    }
    return text_value(s, n);
}

/* obj[key] = v (v taken, also on failure); returns 0 or -1. */
static int set_field(json_t *obj, const char *key, size_t keylen, json_t *v)
{
    size_t len;
    char *fixed;
    int rc;
    if (!v)
        return -1;
    if (tf_utf8_valid(key, keylen))
        return json_object_setn_new(obj, key, keylen, v);
    if (!(fixed = utf8_repair(key, keylen, &len))) {
        json_decref(v);
        return -1;
    }
    rc = json_object_setn_new(obj, fixed, len, v);
    free(fixed);
    return rc;
}

/* "h:N" = "<ms>|<from>|<to>|<rule>" (newest first) as {"at", "at_ms", "from", "to", "rule"};
 * NULL when malformed. */
static json_t *history_entry(const char *v, size_t len)
{
    char buf[160], *parts[4], *save = NULL, at[TF_TIME_RFC3339_LEN];
    size_t n = 0;
    int64_t ms;
    if (len >= sizeof(buf))
        return NULL;
    memcpy(buf, v, len);
    buf[len] = '\0';
    for (char *t = strtok_r(buf, "|", &save); t && n < 4; t = strtok_r(NULL, "|", &save))
        parts[n++] = t;
    if (n != 4 || tf_parse_i64(parts[0], strlen(parts[0]), &ms) != TF_OK)
        return NULL;
    tf_time_format_rfc3339(ms, at);
    return json_pack("{s:s, s:I, s:s, s:s, s:s}", "at", at, "at_ms", (json_int_t)ms, "from", parts[1], "to", parts[2],
                     "rule", parts[3]);
}

static int cmp_key(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* {"<name>": value, ...} as [{"name": .., "value": ..}, ...] sorted by name; NULL on failure. */
static json_t *timers_array(json_t *by_name)
{
    size_t n = json_object_size(by_name), i = 0;
    const char **keys = malloc((n ? n : 1) * sizeof(*keys));
    const char *k;
    json_t *v, *arr = json_array();
    if (!keys || !arr) {
        free(keys);
        json_decref(arr);
        return NULL;
    }
    json_object_foreach(by_name, k, v) keys[i++] = k;
    qsort(keys, n, sizeof(*keys), cmp_key);
    for (i = 0; i < n; i++)
        if (json_array_append_new(arr, json_pack("{s:s, s:O}", "name", keys[i], "value",
                                                 json_object_get(by_name, keys[i]))) != 0) {
            json_decref(arr);
            arr = NULL;
            break;
        }
    free(keys);
    return arr;
}

/* Builds the document from HGETALL's field/value pairs. */
static json_t *customer_json(const char *id, const redisReply *r)
{
    json_t *root = json_object(), *offsets = json_object(), *counts = json_object(), *timers = json_object();
    json_t *history[TF_STAGE_HISTORY_SLOTS] = {0};
    int bad = !root || !offsets || !counts || !timers;
    for (size_t i = 0; !bad && i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        json_t *dst = root;
        const char *name = f->str;
        size_t namelen = (size_t)f->len;
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (namelen == 3 && name[0] == 'h' && name[1] == ':' && name[2] >= '0' &&
            name[2] < '0' + TF_STAGE_HISTORY_SLOTS) {
            json_t *e = history_entry(v->str, (size_t)v->len);
            if (e) {
                json_decref(history[name[2] - '0']);
                history[name[2] - '0'] = e;
                continue;
            }
            /* Not "<ms>|<from>|<to>|<rule>": shown as it is, like any unknown field. */
        }
        if (namelen > 2 && (memcmp(name, "o:", 2) == 0 || memcmp(name, "n:", 2) == 0 || memcmp(name, "t:", 2) == 0)) {
            dst = name[0] == 'o' ? offsets : name[0] == 'n' ? counts : timers;
            name += 2;
            namelen -= 2;
        }
        bad = set_field(dst, name, namelen, typed_value(v->str, (size_t)v->len)) != 0;
    }
    /* Set last, so they win over plain fields of the same name. */
    if (!bad && json_object_size(offsets) > 0)
        bad = json_object_set(root, "offsets", offsets) != 0;
    if (!bad && json_object_size(counts) > 0)
        bad = json_object_set(root, "counts", counts) != 0;
    if (!bad && json_object_size(timers) > 0) {
        json_t *arr = timers_array(timers);
        bad = !arr || json_object_set_new(root, "timers", arr) != 0;
    }
    json_t *hist = json_array();
    for (int i = 0; hist && i < TF_STAGE_HISTORY_SLOTS; i++)
        if (history[i])
            json_array_append(hist, history[i]);
    if (!bad && hist && json_array_size(hist) > 0)
        bad = json_object_set(root, "stage_history", hist) != 0;
    json_decref(hist);
    for (int i = 0; i < TF_STAGE_HISTORY_SLOTS; i++)
        json_decref(history[i]);
    if (!bad)
        bad = set_field(root, "customer", strlen("customer"), text_value(id, strlen(id))) != 0;
    json_decref(offsets);
    json_decref(counts);
    json_decref(timers);
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static int customer_get(const tf_config_t *cfg, const char *id)
{
    char err[1024], shown[600], why[128];
    int usage, rc = TF_CLI_FAIL;
    size_t keylen = strlen(cfg->key_prefix) + strlen(id) + 5;
    char *key = malloc(keylen + 1);
    redisContext *c = NULL;
    redisReply *r = NULL;
    json_t *doc = NULL;

    if (!key) {
        tf_cli_errorf("out of memory");
        return TF_CLI_FAIL;
    }
    snprintf(key, keylen + 1, "%sc:{%s}", cfg->key_prefix, id);
    c = tf_cli_redis_connect(cfg->redis_url, cfg->redis_timeout_ms, &usage, err, sizeof(err));
    if (!c) {
        tf_cli_errorf("%s", err);
        rc = usage ? TF_CLI_USAGE : TF_CLI_FAIL;
        goto done;
    }
    tf_cli_redis_url_shown(cfg->redis_url, shown, sizeof(shown));
    r = redisCommand(c, "HGETALL %b", key, strlen(key));
    if (!r) {
        tf_cli_errorf("Redis at %s: HGETALL %s failed: %s", shown, key,
                      tf_cli_redis_strerror(c, cfg->redis_timeout_ms, why, sizeof(why)));
    } else if (r->type == REDIS_REPLY_ERROR) {
        tf_cli_errorf("Redis at %s: HGETALL %s: %s", shown, key, r->str);
    } else if (r->type != REDIS_REPLY_ARRAY) {
        tf_cli_errorf("Redis at %s: HGETALL %s: unexpected reply type %d", shown, key, r->type);
    } else if (r->elements == 0) {
        tf_cli_errorf("customer %s not found", id);
    } else if (!(doc = customer_json(id, r))) {
        tf_cli_errorf("out of memory");
    } else if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 || fputc('\n', stdout) == EOF ||
               fflush(stdout) != 0) {
        tf_cli_errorf("cannot write to stdout");
    } else {
        rc = TF_CLI_OK;
    }
done:
    json_decref(doc);
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    free(key);
    return rc;
}

int tf_cli_cmd_customer(const tf_cli_opts *opts, int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    tf_config_t *cfg;
    int c, rc;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c != 'h')
            return tf_cli_bad_option("customer", c, argv);
        tf_cli_usage(stdout);
        return TF_CLI_OK;
    }
    if (optind >= argc || strcmp(argv[optind], "get") != 0) {
        tf_cli_errorf("customer: expected 'customer get ID'");
        return TF_CLI_USAGE;
    }
    if (argc - optind != 2 || argv[optind + 1][0] == '\0') {
        tf_cli_errorf("customer get: expected exactly one customer ID");
        return TF_CLI_USAGE;
    }
    if (!(cfg = malloc(sizeof(*cfg)))) {
        tf_cli_errorf("out of memory");
        return TF_CLI_FAIL;
    }
    rc = tf_cli_config_load(opts, cfg);
    if (rc == TF_CLI_OK)
        rc = customer_get(cfg, argv[optind + 1]);
    free(cfg);
    return rc;
}
