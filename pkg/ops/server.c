/* server: the evhttp listener and the routing of its few paths. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <jansson.h>

#include "ops/internal.h"
#include "ops/ops.h"

#define MOD "ops"

/* A scrape or a dashboard poll finishes in well under a second; a client idle this
 * long is dropped so that it cannot hold a connection forever. */
#define OPS_TIMEOUT_S 10
/* Without a configuration (tests, tools): the default of ops.max_connections. */
#define OPS_MAX_CONNECTIONS 64
/* Requests are bare GETs: anything bigger is not for us. */
#define OPS_MAX_HEADERS 8192
#define OPS_MAX_BODY 1024

struct tf_ops_s {
    struct evhttp *http;
    tf_ops_source_fn collect;
    void *opaque;
    char *config_json;          /* redacted, new; NULL: none */
    int64_t started_mono_ms;
    char address[160];
    int64_t stall_ms;           /* ops.stall_timeout_s */
    tf_pipeline_snapshot *snap; /* one buffer for every request: the loop serves one at a time */
    struct evhttp_connection **open; /* the connections served, max_conns slots */
    int64_t conns, max_conns;        /* ops.max_connections */
    int64_t refused;                 /* connections answered 503 at the cap */
    tf_ops_figures_fn figures;       /* NULL: no population figures */
    void *figures_opaque;
};

void tf_ops_set_figures(tf_ops_t *ops, tf_ops_figures_fn fn, void *opaque)
{
    ops->figures = fn;
    ops->figures_opaque = opaque;
}

static void on_request(struct evhttp_request *req, void *arg);

static void fail(char *err, size_t errsize, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errsize, const char *fmt, ...)
{
    if (!err || errsize == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
}

/* The address the listener got, with the port the kernel chose for port 0. */
static void bound_address(tf_ops_t *ops, struct evhttp_bound_socket *bs, const char *host, int port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "";
    evutil_socket_t fd = evhttp_bound_socket_get_fd(bs);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)&ss;
            port = ntohs(sin->sin_port);
            inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)&ss;
            port = ntohs(sin6->sin6_port);
            inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip);
        }
    }
    if (!ip[0])
        tf_strlcpy(ip, host, sizeof ip);
    snprintf(ops->address, sizeof ops->address, strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, port);
}

/* The connection cap. evhttp (libevent 2.1) cannot limit the connections it
 * accepts, so a connection counts from its first request until evhttp frees it;
 * past ops.max_connections a new one is answered 503 and closed. One that sends
 * nothing, or its headers too slowly, is dropped by the timeout, so a flood holds
 * descriptors for seconds at most. */
static void on_connection_closed(struct evhttp_connection *evcon, void *arg)
{
    tf_ops_t *ops = arg;
    for (int64_t i = 0; i < ops->conns; i++) {
        if (ops->open[i] == evcon) {
            ops->open[i] = ops->open[--ops->conns];
            return;
        }
    }
}

/* 1 when the request's connection may be served (counted from now on). */
static int admit(tf_ops_t *ops, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (!evcon)
        return 1;
    for (int64_t i = 0; i < ops->conns; i++)
        if (ops->open[i] == evcon)
            return 1;
    if (ops->conns >= ops->max_conns) {
        ops->refused++;
        return 0;
    }
    ops->open[ops->conns++] = evcon;
    evhttp_connection_set_closecb(evcon, on_connection_closed, ops);
    return 1;
}

tf_ops_t *tf_ops_new(struct event_base *base, const char *listen, tf_ops_source_fn collect, void *opaque,
                     const tf_config_t *cfg_for_status, char *err, size_t errsize)
{
    char host[256], why[256];
    int port;
    if (!base || !listen || !collect) {
        fail(err, errsize, "ops: missing event base, address or figures callback");
        return NULL;
    }
    if (tf_config_listen_parse(listen, host, sizeof host, &port, why, sizeof why) != 0) {
        fail(err, errsize, "ops.listen: %s", why);
        return NULL;
    }
    tf_ops_t *ops = calloc(1, sizeof *ops);
    if (!ops || !(ops->snap = malloc(sizeof *ops->snap)))
        goto nomem;
    ops->collect = collect;
    ops->opaque = opaque;
    ops->started_mono_ms = tf_time_mono_ms();
    ops->stall_ms = cfg_for_status ? cfg_for_status->ops_stall_timeout_s * 1000 : 0;
    ops->max_conns = cfg_for_status ? cfg_for_status->ops_max_connections : OPS_MAX_CONNECTIONS;
    if (!(ops->open = calloc((size_t)ops->max_conns, sizeof *ops->open)))
        goto nomem;
    if (cfg_for_status && !(ops->config_json = tf_config_to_json(cfg_for_status, 1)))
        goto nomem;
    if (!(ops->http = evhttp_new(base)))
        goto nomem;
    /* Every method reaches on_request, which answers 405 itself (evhttp's own
     * answer to a method outside this set would be 501). */
    evhttp_set_allowed_methods(ops->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                              EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                              EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_timeout(ops->http, OPS_TIMEOUT_S);
    evhttp_set_max_headers_size(ops->http, OPS_MAX_HEADERS);
    evhttp_set_max_body_size(ops->http, OPS_MAX_BODY);
    evhttp_set_gencb(ops->http, on_request, ops);

    /* Resolves host (getaddrinfo): blocking, but only here, before the loop runs. */
    errno = 0;
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(ops->http, host, (ev_uint16_t)port);
    if (!bs) {
        fail(err, errsize, "ops.listen: cannot listen on %s: %s", listen,
             errno ? strerror(errno) : "address not resolved");
        tf_ops_destroy(ops);
        return NULL;
    }
    bound_address(ops, bs, host, port);
    return ops;
nomem:
    fail(err, errsize, "ops: out of memory");
    tf_ops_destroy(ops);
    return NULL;
}

const char *tf_ops_address(const tf_ops_t *ops)
{
    return ops ? ops->address : "";
}

void tf_ops_destroy(tf_ops_t *ops)
{
    if (!ops)
        return;
    /* Closes the listener and frees every connection with its pending request. */
    if (ops->http)
        evhttp_free(ops->http);
    free(ops->open);
    free(ops->config_json);
    free(ops->snap);
    free(ops);
}

/* ---- requests ---- */

static const tf_pipeline_snapshot *collect(tf_ops_t *ops)
{
    memset(ops->snap, 0, offsetof(tf_pipeline_snapshot, partitions));
    ops->collect(ops->opaque, ops->snap);
    if (ops->snap->npartitions > TF_SNAPSHOT_MAX_PARTITIONS)
        ops->snap->npartitions = TF_SNAPSHOT_MAX_PARTITIONS;
    return ops->snap;
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *content_type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (content_type)
        evhttp_add_header(h, "Content-Type", content_type);
    /* Live figures: never cached by a browser or a proxy. */
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_send_reply(req, code, reason, NULL);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *body = evhttp_request_get_output_buffer(req);
    evbuffer_drain(body, evbuffer_get_length(body));
    evbuffer_add(body, text, strlen(text));
    reply(req, code, reason, "text/plain; charset=utf-8");
}

static void reply_oom(struct evhttp_request *req)
{
    TF_WARN(MOD, "out of memory rendering %s", evhttp_request_get_uri(req));
    reply_text(req, HTTP_INTERNAL, "Internal Server Error", "out of memory\n");
}

static void serve_metrics(tf_ops_t *ops, struct evhttp_request *req)
{
    struct evbuffer *body = evhttp_request_get_output_buffer(req);
    if (tf_ops_render_metrics(body, collect(ops)) != 0) {
        reply_oom(req);
        return;
    }
    if (ops->figures) {
        int64_t age_ms;
        uint64_t errors;
        const json_t *view = ops->figures(ops->figures_opaque, &age_ms, &errors);
        if (tf_ops_render_figures(body, view, age_ms, errors) != 0) {
            reply_oom(req);
            return;
        }
    }
    reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8");
}

static void serve_healthz(tf_ops_t *ops, struct evhttp_request *req)
{
    char why[160], text[168];
    if (tf_ops_alive(collect(ops), ops->stall_ms, why, sizeof why)) {
        reply_text(req, HTTP_OK, "OK", "ok\n");
        return;
    }
    snprintf(text, sizeof text, "%s\n", why);
    reply_text(req, HTTP_SERVUNAVAIL, "Service Unavailable", text);
}

static void serve_readyz(tf_ops_t *ops, struct evhttp_request *req)
{
    const char *missing[TF_OPS_READY_CHECKS];
    size_t n;
    int ready = tf_ops_ready(collect(ops), missing, &n);
    struct evbuffer *body = evhttp_request_get_output_buffer(req);
    int bad = evbuffer_add_printf(body, "{\"ready\":%s,\"missing\":[", ready ? "true" : "false") < 0;
    /* The names are fixed identifiers: nothing to escape. */
    for (size_t i = 0; i < n; i++)
        bad |= evbuffer_add_printf(body, "%s\"%s\"", i ? "," : "", missing[i]) < 0;
    bad |= evbuffer_add(body, "]}\n", 3) != 0;
    if (bad) {
        reply_oom(req);
        return;
    }
    if (ready)
        reply(req, HTTP_OK, "OK", "application/json");
    else
        reply(req, 503, "Service Unavailable", "application/json");
}

static void serve_status(tf_ops_t *ops, struct evhttp_request *req)
{
    int64_t uptime_ms = tf_time_mono_ms() - ops->started_mono_ms;
    struct evbuffer *body = evhttp_request_get_output_buffer(req);
    if (tf_ops_render_status(body, collect(ops), uptime_ms, ops->config_json) != 0) {
        reply_oom(req);
        return;
    }
    reply(req, HTTP_OK, "OK", "application/json");
}

static int dump_to_evbuffer(const char *buffer, size_t size, void *data)
{
    return evbuffer_add(data, buffer, size);
}

/* The figures as tf_figures_view made them, with the age of the read. */
static void serve_figures(tf_ops_t *ops, struct evhttp_request *req)
{
    int64_t age_ms = -1;
    uint64_t errors = 0;
    const json_t *view = ops->figures ? ops->figures(ops->figures_opaque, &age_ms, &errors) : NULL;
    if (!ops->figures) {
        reply_text(req, HTTP_NOTFOUND, "Not Found", "no population figures here\n");
        return;
    }
    if (!view) {
        reply_text(req, HTTP_SERVUNAVAIL, "Service Unavailable", "the population figures are not read yet\n");
        return;
    }
    json_t *body = json_deep_copy(view);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    if (!body || json_object_set_new(body, "read_age_ms", json_integer((json_int_t)age_ms)) ||
        json_object_set_new(body, "read_errors", json_integer((json_int_t)errors)) ||
        json_dump_callback(body, dump_to_evbuffer, out, JSON_COMPACT) != 0 || evbuffer_add(out, "\n", 1) != 0) {
        json_decref(body);
        reply_oom(req);
        return;
    }
    json_decref(body);
    reply(req, HTTP_OK, "OK", "application/json");
}

static void serve_dashboard(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    /* The page is self-contained: inline style and script, requests to itself only. */
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                      "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                      "frame-ancestors 'none'");
    /* evbuffer_add_reference: the page is a constant, no copy per request. */
    if (evbuffer_add_reference(evhttp_request_get_output_buffer(req), tf_ops_dashboard_html,
                               tf_ops_dashboard_html_len, NULL, NULL) != 0) {
        reply_oom(req);
        return;
    }
    reply(req, HTTP_OK, "OK", "text/html; charset=utf-8");
}

typedef enum { ROUTE_NONE, ROUTE_DASHBOARD, ROUTE_METRICS, ROUTE_HEALTHZ, ROUTE_READYZ, ROUTE_STATUS, ROUTE_FIGURES } route;

static route route_of(const char *path)
{
    static const struct {
        const char *path;
        route r;
    } routes[] = {
        {"/", ROUTE_DASHBOARD},      {"/metrics", ROUTE_METRICS}, {"/healthz", ROUTE_HEALTHZ},
        {"/readyz", ROUTE_READYZ},   {"/status", ROUTE_STATUS},   {"/figures", ROUTE_FIGURES},
    };
    if (!path || !*path)
        path = "/";
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(path, routes[i].path) == 0)
            return routes[i].r;
    return ROUTE_NONE;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    tf_ops_t *ops = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    route r = route_of(uri ? evhttp_uri_get_path(uri) : NULL);
    enum evhttp_cmd_type m = evhttp_request_get_command(req);

    if (!admit(ops, req)) {
        if (ops->refused == 1 || ops->refused % 1000 == 0)
            TF_WARN(MOD, "%lld connections open (ops.max_connections): refusing more (%lld so far)",
                    (long long)ops->conns, (long long)ops->refused);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        reply_text(req, HTTP_SERVUNAVAIL, "Service Unavailable", "too many connections\n");
        return;
    }

    if (r == ROUTE_NONE) {
        reply_text(req, HTTP_NOTFOUND, "Not Found", "not found\n");
        return;
    }
    /* HEAD is answered as GET: evhttp sends the headers and leaves the body out. */
    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        reply_text(req, 405, "Method Not Allowed", "method not allowed\n");
        return;
    }
    switch (r) {
    case ROUTE_DASHBOARD: serve_dashboard(req); break;
    case ROUTE_METRICS: serve_metrics(ops, req); break;
    case ROUTE_HEALTHZ: serve_healthz(ops, req); break;
    case ROUTE_READYZ: serve_readyz(ops, req); break;
    case ROUTE_STATUS: serve_status(ops, req); break;
    case ROUTE_FIGURES: serve_figures(ops, req); break;
    case ROUTE_NONE: break;
    }
}
