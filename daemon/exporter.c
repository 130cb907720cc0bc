/*
 * The metrics listener (exporter.h). Requests are few and small: GET or HEAD of three paths,
 * bounded headers, no body, a short timeout. The answers say nothing about people.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "clock.h"
#include "conn.h"
#include "daemon.h"
#include "events.h"
#include "exporter.h"
#include "listener.h"
#include "log.h"
#include "standing.h"
#include "store.h"
#include "watch.h"

#define HTTP_TIMEOUT_S    10
#define HTTP_MAX_HEADERS  8192
#define HTTP_MAX_BODY     1024
#define PROMETHEUS_FORMAT "text/plain; version=0.0.4; charset=utf-8"

#ifndef FRISTAD_VERSION
#define FRISTAD_VERSION "unknown"
#endif

struct exporter {
    struct daemon *d;
    struct evhttp *http;
    char address[300];
};

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *type,
                       struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, code, reason, body);
}

static void reply_line(struct evhttp_request *req, int code, const char *reason, const char *line)
{
    struct evbuffer *body = evbuffer_new();
    if (!body) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evbuffer_add_printf(body, "%s\n", line);
    reply_text(req, code, reason, "text/plain; charset=utf-8", body);
    evbuffer_free(body);
}

static void serve_metrics(struct exporter *ex, struct evhttp_request *req)
{
    struct daemon *d = ex->d;
    struct metrics_searches pending = {
        .searches = d->counts.searches,
        .no_match = d->counts.no_match,
    };
    memcpy(pending.reasons, d->counts.reasons, sizeof pending.reasons);
    struct metrics_view v = {
        .m = &d->metrics,
        .searches_pending = &pending,
        .connections_open = conn_count(),
        .watchers = d->watch ? watch_count(d->watch) : 0,
        .standing = d->standing ? standing_count(d->standing) : 0,
        .store_up = d->store && store_ready(d->store),
        .events_up = events_subscribed(d->events),
        .index_loaded = d->index.loaded,
        .index_version = d->index.ver,
        .mono_ms = clock_mono_ms(),
        .version = FRISTAD_VERSION,
    };
    metrics_count_index(&d->index, clock_wall_ms(), d->cfg->stale_after_ms, &v.index);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int rc = f ? metrics_render(&v, f) : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    struct evbuffer *body = rc == 0 ? evbuffer_new() : NULL;
    if (!body || evbuffer_add(body, text, len) != 0) {
        log_error("metrics: out of memory while rendering");
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
    } else {
        reply_text(req, HTTP_OK, "OK", PROMETHEUS_FORMAT, body);
    }
    if (body)
        evbuffer_free(body);
    free(text);
}

/* Ready: the index is loaded and Redis answers, and the daemon is not stopping. */
static void serve_ready(struct exporter *ex, struct evhttp_request *req)
{
    struct daemon *d = ex->d;
    char why[160] = "";
    if (d->stopping)
        snprintf(why, sizeof why, "stopping");
    if (!d->index.loaded)
        snprintf(why + strlen(why), sizeof why - strlen(why), "%sindex not loaded",
                 why[0] ? "; " : "");
    if (!d->store || !store_ready(d->store))
        snprintf(why + strlen(why), sizeof why - strlen(why), "%sredis down", why[0] ? "; " : "");
    if (why[0]) {
        char line[200];
        snprintf(line, sizeof line, "not ready: %s", why);
        reply_line(req, 503, "Service Unavailable", line);
    } else {
        reply_line(req, HTTP_OK, "OK", "ready");
    }
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct exporter *ex = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path)
        evhttp_send_error(req, HTTP_BADREQUEST, NULL);
    else if (strcmp(path, "/metrics") == 0)
        serve_metrics(ex, req);
    else if (strcmp(path, "/healthz") == 0)
        reply_line(req, HTTP_OK, "OK", "ok");
    else if (strcmp(path, "/readyz") == 0)
        serve_ready(ex, req);
    else
        reply_line(req, HTTP_NOTFOUND, "Not Found", "not found: try /metrics, /healthz or /readyz");
}

struct exporter *exporter_new(struct daemon *d, char *err, size_t errlen)
{
    err[0] = '\0';
    if (!d->cfg->metrics_host[0])
        return NULL;
    struct exporter *ex = calloc(1, sizeof *ex);
    if (!ex || !(ex->http = evhttp_new(d->base))) {
        snprintf(err, errlen, "out of memory");
        free(ex);
        return NULL;
    }
    ex->d = d;
    evhttp_set_allowed_methods(ex->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_timeout(ex->http, HTTP_TIMEOUT_S);
    evhttp_set_max_headers_size(ex->http, HTTP_MAX_HEADERS);
    evhttp_set_max_body_size(ex->http, HTTP_MAX_BODY);
    evhttp_set_gencb(ex->http, on_request, ex);
    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(
        ex->http, d->cfg->metrics_host, (uint16_t)d->cfg->metrics_port);
    if (!sock) {
        snprintf(err, errlen, "[metrics] listen: cannot listen on %s:%u", d->cfg->metrics_host,
                 d->cfg->metrics_port);
        exporter_free(ex);
        return NULL;
    }
    (void)listener_bound_address(evhttp_bound_socket_get_fd(sock), ex->address, sizeof ex->address);
    return ex;
}

const char *exporter_address(const struct exporter *ex)
{
    return ex->address;
}

void exporter_free(struct exporter *ex)
{
    if (!ex)
        return;
    if (ex->http)
        evhttp_free(ex->http);
    free(ex);
}
