/*
 * The web listener (web.h): libevent's evhttp over OpenSSL bufferevents made from the daemon's
 * one TLS context, the page's files, and the JSON API as a second transport of the protocol.
 *
 * A connection's life is evhttp's; what we add is reached from its SSL object (ex_data) and freed
 * with it: an absolute deadline by which the handshake and the next request must be complete
 * (evhttp's own timeout restarts on every byte, so a peer dribbling a header would never meet
 * it: slow loris), a cap on connections, and the list that a reload walks to drop certificates
 * revoked since.
 *
 * Every answer carries the same security headers: a strict Content-Security-Policy (our own
 * files only, no inline script or style, no frames), HSTS, no sniffing, no referrer. The API
 * refuses what a cross-site page could send: a foreign Origin, a cross-site fetch, and a POST
 * whose Content-Type is not application/json (which no form can send without a preflight that
 * this server never grants).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "conn.h"
#include "daemon.h"
#include "json.h"
#include "listener.h"
#include "log.h"
#include "ratelimit.h"
#include "tls.h"
#include "web.h"
#include "web_assets.h"

#define API_PREFIX       "/api/v1/"
#define MAX_HEADERS      8192
#define MAX_OUTPUT       (1024 * 1024) /* unsent events of one stream */
#define WRITE_TIMEOUT_S  30
#define SSE_RETRY_MS     5000
#define MAX_QUERY_PARAMS 8

static const char CSP[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self'; connect-src 'self'; manifest-src 'self'; "
                          "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/* One TLS connection; it lives as long as its SSL object. */
struct web_conn {
    TAILQ_ENTRY(web_conn) link;
    struct web *w;
    struct bufferevent *bev;
    struct event *deadline; /* the handshake and the next request must be complete by then */
};

/* One API request, from its arrival until its answer is handed to evhttp. */
struct web_req {
    LIST_ENTRY(web_req) link; /* streams, so that drain and exit can end them */
    struct web *w;
    struct evhttp_request *req; /* NULL once answered */
    struct request *r;          /* the request handle, until it finishes */
    struct principal who;
    bool streaming;
};

struct web {
    struct daemon *d;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    TAILQ_HEAD(, web_conn) conns;
    unsigned n_conns;
    LIST_HEAD(, web_req) streams;
    char address[300];
};

static int conn_index = -1; /* SSL ex_data slot of the web_conn */

/* ---- connections -------------------------------------------------------------------------- */

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct web_conn *wc = arg;
    evutil_socket_t s = bufferevent_getfd(wc->bev);
    /* evhttp sees the end of the stream and frees the connection, and this with it. */
    log_debug("web: a connection did not complete its request in time");
    if (s >= 0)
        shutdown(s, SHUT_RDWR);
}

static void arm(struct web_conn *wc, int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000 * 1000)};
    evtimer_add(wc->deadline, &tv);
}

/* OpenSSL frees the SSL object with its connection: this goes with it. */
static void free_conn(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    struct web_conn *wc = ptr;
    if (!wc)
        return;
    TAILQ_REMOVE(&wc->w->conns, wc, link);
    wc->w->n_conns--;
    event_free(wc->deadline);
    free(wc);
}

/*
 * A new connection (evhttp's bufferevent callback): a TLS bufferevent in the accepting state.
 * evhttp takes a NULL for "plain TCP", so a failure here still hands it something that cannot
 * speak HTTP, and on_request refuses any request without TLS besides.
 */
static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
    struct web *w = arg;
    struct daemon *d = w->d;
    SSL *ssl = SSL_new(d->tls);
    struct web_conn *wc = ssl ? calloc(1, sizeof *wc) : NULL;
    struct bufferevent *bev = NULL;
    if (wc && (wc->deadline = evtimer_new(base, on_deadline, wc)) != NULL &&
        SSL_set_ex_data(ssl, conn_index, wc) == 1) {
        wc->w = w;
        TAILQ_INSERT_TAIL(&w->conns, wc, link);
        w->n_conns++;
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (!bev) /* frees wc through its ex_data */
            ssl = NULL;
    } else if (wc) {
        if (wc->deadline)
            event_free(wc->deadline);
        free(wc);
        wc = NULL;
    }
    if (!bev) {
        if (ssl)
            SSL_free(ssl);
        log_error("web: out of memory for a new connection");
        struct bufferevent *pair[2];
        /* A pair cannot take the socket: evhttp then closes it. */
        if (bufferevent_pair_new(base, 0, pair) == 0) {
            bufferevent_free(pair[1]);
            return pair[0];
        }
        return NULL;
    }
    wc->bev = bev;
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    /* A whole request (headers and a body up to a frame) fits; more is not read meanwhile. */
    bufferevent_setwatermark(bev, EV_READ, 0, MAX_HEADERS + d->cfg->max_frame + 4096);
    if (w->n_conns > d->cfg->max_connections) {
        d->metrics.connections_refused++;
        d->metrics.refused[REFUSED_FULL]++;
        arm(wc, 0);
    } else {
        arm(wc, d->cfg->handshake_timeout_ms + d->cfg->frame_timeout_ms);
    }
    return bev;
}

static struct web_conn *conn_of(struct evhttp_request *req, SSL **ssl_out)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    if (ssl_out)
        *ssl_out = ssl;
    return ssl ? SSL_get_ex_data(ssl, conn_index) : NULL;
}

/* An answer went out on a kept-alive connection: the next request must come in time. */
static void on_complete(struct evhttp_request *req, void *arg)
{
    (void)req;
    struct web_conn *wc = arg;
    arm(wc, wc->w->d->cfg->frame_timeout_ms);
}

/* ---- answers ------------------------------------------------------------------------------ */

static void add_headers(struct evhttp_request *req, const char *type, const char *cache)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", cache);
    evhttp_add_header(h, "Content-Security-Policy", CSP);
    evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "Cross-Origin-Opener-Policy", "same-origin");
    evhttp_add_header(h, "Cross-Origin-Resource-Policy", "same-origin");
    evhttp_add_header(h, "Permissions-Policy",
                      "camera=(), microphone=(), geolocation=(), payment=(), usb=()");
}

static void send_json(struct evhttp_request *req, int status, struct evbuffer *body)
{
    add_headers(req, "application/json; charset=utf-8", "no-store");
    if (status == 429 || status == 503)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
    evhttp_send_reply(req, status, NULL, body);
}

static void send_error(struct evhttp_request *req, enum proto_err code, const char *message)
{
    struct evbuffer *body = evbuffer_new();
    if (!body || json_append_error(body, proto_err_code(code), message) != 0) {
        if (body)
            evbuffer_free(body);
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    send_json(req, json_http_status(code), body);
    evbuffer_free(body);
}

/* A refusal before the request reached dispatch: counted as one from a connection would be. */
static void refuse(struct web *w, struct evhttp_request *req, unsigned op, enum proto_err code,
                   const char *message)
{
    metrics_request_done(&w->d->metrics, op, code, -1);
    w->d->metrics.errors[code < PROTO_E__COUNT ? code : PROTO_E_INTERNAL]++;
    send_error(req, code, message);
}

/* ---- the request sink: dispatch's answers as HTTP ----------------------------------------------
 */

static void answer(struct web_req *wr, const struct proto_reply *rep)
{
    struct evhttp_request *req = wr->req;
    wr->req = NULL;
    if (!rep->ok) {
        send_error(req, rep->code, rep->message);
        return;
    }
    struct evbuffer *body = evbuffer_new();
    if (!body || json_append(body, rep->result) != 0) {
        if (body)
            evbuffer_free(body);
        send_error(req, PROTO_E_INTERNAL, "the answer could not be written as JSON");
        return;
    }
    send_json(req, 200, body);
    evbuffer_free(body);
}

/* One server-sent event from one reply of the watch. */
static int sse_event(struct evbuffer *out, const struct proto_reply *rep)
{
    int rc = 0;
    if (!rep->ok) {
        rc |= evbuffer_add_printf(out, "event: ended\ndata: ") < 0;
        rc |= json_append_error(out, rep->code_text, rep->message);
    } else {
        const msgpack_object *ev = proto_map_get(rep->result, "event");
        const msgpack_object *seq = ev ? proto_map_get(ev, "seq") : NULL;
        if (ev) {
            /* The id comes back as Last-Event-ID when the browser reconnects: a resume. */
            if (seq && seq->type == MSGPACK_OBJECT_STR && seq->via.str.size < 48)
                rc |= evbuffer_add_printf(out, "id: %.*s\n", (int)seq->via.str.size,
                                          seq->via.str.ptr) < 0;
            rc |= evbuffer_add_printf(out, "data: ") < 0;
            rc |= json_append(out, ev);
        } else if (proto_map_get(rep->result, "heartbeat")) {
            rc |= evbuffer_add_printf(out, "event: heartbeat\ndata: ") < 0;
            rc |= json_append(out, rep->result);
        } else {
            rc |= evbuffer_add_printf(out, "retry: %d\nevent: watching\ndata: ", SSE_RETRY_MS) < 0;
            rc |= json_append(out, rep->result);
        }
    }
    rc |= evbuffer_add(out, "\n\n", 2);
    return rc ? -1 : 0;
}

static bool sink_frame(void *ud, struct evbuffer *body, bool last)
{
    struct web_req *wr = ud;
    size_t n = evbuffer_get_length(body);
    const uint8_t *p = evbuffer_pullup(body, -1);
    struct proto_reply rep;
    struct proto_error err = {0};
    if (!wr->req)
        return false;
    if (!p || proto_decode_reply(p, n, &rep, &err) != PROTO_OK) {
        log_error("web: a reply could not be read back: %s", err.message);
        if (!wr->streaming)
            answer(wr, &(struct proto_reply){.code = PROTO_E_INTERNAL,
                                             .message = "the answer could not be written"});
        return false;
    }
    bool ok = true;
    if (!wr->streaming) {
        if (last)
            answer(wr, &rep);
    } else {
        struct evhttp_connection *evcon = evhttp_request_get_connection(wr->req);
        struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
        struct evbuffer *chunk = bev ? evbuffer_new() : NULL;
        if (!bev || evbuffer_get_length(bufferevent_get_output(bev)) > MAX_OUTPUT)
            ok = false; /* gone, or not reading what it is sent */
        else if (!chunk || sse_event(chunk, &rep) != 0)
            ok = false;
        else
            evhttp_send_reply_chunk(wr->req, chunk);
        if (chunk)
            evbuffer_free(chunk);
    }
    proto_reply_free(&rep);
    return ok;
}

/* The HTTP connection of a stream went away. */
static void on_stream_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct web_req *wr = arg;
    request_stream_gone(wr->r); /* finishes it: sink_finished frees wr */
}

static void sink_stream(void *ud)
{
    struct web_req *wr = ud;
    struct evhttp_request *req = wr->req;
    wr->streaming = true;
    LIST_INSERT_HEAD(&wr->w->streams, wr, link);
    add_headers(req, "text/event-stream; charset=utf-8", "no-store");
    /* A stream ends its connection: no request can follow it on the same one. */
    evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    evhttp_send_reply_start(req, 200, "OK");
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon) {
        evhttp_connection_set_closecb(evcon, on_stream_closed, wr);
        /* The peer sends nothing while it watches: only a write may time out. */
        struct timeval wt = {WRITE_TIMEOUT_S, 0};
        bufferevent_set_timeouts(evhttp_connection_get_bufferevent(evcon), NULL, &wt);
    }
}

static void sink_finished(void *ud)
{
    struct web_req *wr = ud;
    wr->r = NULL;
    if (wr->streaming) {
        LIST_REMOVE(wr, link);
        struct evhttp_connection *evcon = evhttp_request_get_connection(wr->req);
        if (evcon)
            evhttp_connection_set_closecb(evcon, NULL, NULL);
        evhttp_send_reply_end(wr->req);
    } else if (wr->req) {
        send_error(wr->req, PROTO_E_INTERNAL, "the request ended without an answer");
    }
    free(wr);
}

static const struct request_sink web_sink = {
    .frame = sink_frame,
    .stream = sink_stream,
    .finished = sink_finished,
};

/* ---- the API -------------------------------------------------------------------------------- */

/* The page's own origin is https://HOST as the browser addressed it (the Host header). */
static bool same_origin(struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *origin = evhttp_find_header(in, "Origin");
    const char *host = evhttp_find_header(in, "Host");
    const char *site = evhttp_find_header(in, "Sec-Fetch-Site");
    if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
        return false;
    if (!origin)
        return true; /* not a browser's cross-site request: those always carry an Origin */
    return host && strncmp(origin, "https://", 8) == 0 && strcmp(origin + 8, host) == 0;
}

static bool json_content_type(struct evhttp_request *req)
{
    const char *t = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    if (!t)
        return false;
    size_t n = strcspn(t, ";");
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    return n == 16 && strncasecmp(t, "application/json", 16) == 0;
}

/* Starts a request through dispatch, as a connection would with a decoded frame. */
static void submit(struct web *w, struct evhttp_request *req, const struct principal *who,
                   const struct proto_request *preq)
{
    struct web_req *wr = calloc(1, sizeof *wr);
    if (!wr) {
        refuse(w, req, preq->op, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    wr->w = w;
    wr->req = req;
    wr->who = *who;
    if (!(wr->r = request_new_sink(w->d, &wr->who, preq, &web_sink, wr))) {
        free(wr);
        refuse(w, req, preq->op, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    request_dispatch(wr->r, preq);
}

/* GET /api/v1/watch?since=&county=&municipality=&types=a,b (or Last-Event-ID to resume). */
static void serve_watch(struct web *w, struct evhttp_request *req, const struct principal *who,
                        struct proto_request *preq, struct proto_error *err)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (query && evhttp_parse_query_str(query, &q) != 0) {
        evhttp_clear_headers(&q);
        refuse(w, req, OP_WATCH, PROTO_E_BAD_REQUEST, "the query string cannot be read");
        return;
    }
    struct json_param params[MAX_QUERY_PARAMS];
    size_t n = 0;
    bool since = false;
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, &q, next)
    {
        if (n == MAX_QUERY_PARAMS) {
            evhttp_clear_headers(&q);
            refuse(w, req, OP_WATCH, PROTO_E_BAD_REQUEST, "too many query parameters");
            return;
        }
        since |= strcmp(kv->key, "since") == 0;
        params[n++] = (struct json_param){kv->key, kv->value};
    }
    const char *last = evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Event-ID");
    if (last && !since && n < MAX_QUERY_PARAMS)
        params[n++] = (struct json_param){"since", last};
    enum proto_err e = json_decode_params(OP_WATCH, params, n, preq, err);
    evhttp_clear_headers(&q);
    if (e != PROTO_OK) {
        refuse(w, req, OP_WATCH, e, err->message);
        return;
    }
    submit(w, req, who, preq);
}

static void serve_api(struct web *w, struct evhttp_request *req, const char *name,
                      const struct principal *who)
{
    struct daemon *d = w->d;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    int op = proto_op_parse(name, strlen(name));
    struct proto_request preq;
    struct proto_error err = {0};
    if (!same_origin(req)) {
        refuse(w, req, op < 0 ? OP__COUNT : (unsigned)op, PROTO_E_FORBIDDEN,
               "a request from another site is refused");
        return;
    }
    if (op < 0) {
        refuse(w, req, OP__COUNT, PROTO_E_UNKNOWN_OP, "no such op; the ops are in PROTOCOL.md");
        return;
    }
    bool watch = op == OP_WATCH;
    if (method != (watch ? EVHTTP_REQ_GET : EVHTTP_REQ_POST)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", watch ? "GET" : "POST");
        metrics_request_done(&d->metrics, (unsigned)op, PROTO_E_BAD_REQUEST, -1);
        d->metrics.errors[PROTO_E_BAD_REQUEST]++;
        struct evbuffer *body = evbuffer_new();
        if (body &&
            json_append_error(body, "bad_request",
                              watch ? "watch is GET /api/v1/watch" : "an op is a POST") == 0) {
            send_json(req, 405, body);
        } else {
            evhttp_send_error(req, HTTP_INTERNAL, NULL);
        }
        if (body)
            evbuffer_free(body);
        return;
    }
    if (!watch && !json_content_type(req)) {
        refuse(w, req, (unsigned)op, PROTO_E_FORBIDDEN,
               "the body must be sent as Content-Type: application/json");
        return;
    }
    /* The same bucket as the protocol port's: per person (conn.c). */
    struct limit_entry *lim =
        limits_get(d->limits, who->valid && who->person[0] ? who->person : "unauthorized:");
    if (!lim) {
        refuse(w, req, (unsigned)op, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    if (!limits_take(lim, d->cfg->rate, d->cfg->burst, clock_mono_ms())) {
        refuse(w, req, (unsigned)op, PROTO_E_RATE_LIMITED,
               "too many requests from this principal; slow down and retry");
        return;
    }
    if (watch) {
        serve_watch(w, req, who, &preq, &err);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > d->cfg->max_frame) {
        char msg[128];
        snprintf(msg, sizeof msg, "a body of %zu bytes is larger than the maximum of %u", len,
                 d->cfg->max_frame);
        refuse(w, req, (unsigned)op, PROTO_E_TOO_LARGE, msg);
        return;
    }
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    enum proto_err e = body ? json_decode_request((enum proto_op)op, body, len, &preq, &err)
                            : proto_fail(&err, PROTO_E_INTERNAL, "out of memory");
    if (e != PROTO_OK) {
        refuse(w, req, (unsigned)op, e, err.message);
        return;
    }
    submit(w, req, who, &preq);
}

/* ---- the page ------------------------------------------------------------------------------- */

static void serve_file(struct evhttp_request *req, const char *path)
{
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    const struct web_asset *a = web_asset_find(strcmp(path, "/") == 0 ? "/index.html" : path);
    if (!a) {
        send_error(req, PROTO_E_NOT_FOUND, "no such page");
        return;
    }
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        struct evbuffer *body = evbuffer_new();
        if (body && json_append_error(body, "bad_request", "a page is read with GET") == 0)
            send_json(req, 405, body);
        else
            evhttp_send_error(req, HTTP_INTERNAL, NULL);
        if (body)
            evbuffer_free(body);
        return;
    }
    add_headers(req, a->type, "no-cache");
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "ETag", a->etag);
    const char *match = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
    if (match && strcmp(match, a->etag) == 0) {
        evhttp_send_reply(req, 304, "Not Modified", NULL);
        return;
    }
    struct evbuffer *body = evbuffer_new();
    if (!body || evbuffer_add_reference(body, a->data, a->len, NULL, NULL) != 0) {
        if (body)
            evbuffer_free(body);
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evhttp_send_reply(req, 200, "OK", body);
    evbuffer_free(body);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct web *w = arg;
    SSL *ssl = NULL;
    struct web_conn *wc = conn_of(req, &ssl);
    if (!ssl) { /* never over plain TCP, whatever happened to the connection */
        evhttp_send_error(req, HTTP_BADREQUEST, NULL);
        return;
    }
    if (wc) {
        evtimer_del(wc->deadline);
        evhttp_request_set_on_complete_cb(req, on_complete, wc);
    }
    if (w->d->stopping)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || path[0] != '/') {
        send_error(req, PROTO_E_BAD_REQUEST, "the request's path cannot be read");
        return;
    }
    log_debug("web: %s %s", evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "GET",
              path);
    if (strncmp(path, API_PREFIX, strlen(API_PREFIX)) == 0) {
        /* No request outlives the certificate that opened the connection: one that has
         * expired since is refused, and a long one (a watch) ends when it does. */
        int64_t not_after;
        if (tls_peer_not_after(ssl, &not_after)) {
            int64_t left = not_after - clock_wall_ms();
            if (left <= 0) {
                evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
                send_error(req, PROTO_E_UNAUTHORIZED,
                           "your certificate has expired: get a new one, then reconnect");
                return;
            }
            if (wc)
                arm(wc, left);
        }
        struct principal who;
        tls_peer_principal(ssl, &who);
        if (w->d->stopping) {
            send_error(req, PROTO_E_UNAVAILABLE, "the server is shutting down; retry shortly");
            return;
        }
        serve_api(w, req, path + strlen(API_PREFIX), &who);
        return;
    }
    serve_file(req, path);
}

/* ---- the listener --------------------------------------------------------------------------- */

struct web *web_new(struct daemon *d, char *err, size_t errlen)
{
    err[0] = '\0';
    if (!d->cfg->web_host[0])
        return NULL;
    if (conn_index < 0)
        conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_conn);
    struct web *w = calloc(1, sizeof *w);
    if (conn_index < 0 || !w || !(w->http = evhttp_new(d->base))) {
        snprintf(err, errlen, "out of memory");
        free(w);
        return NULL;
    }
    w->d = d;
    TAILQ_INIT(&w->conns);
    LIST_INIT(&w->streams);
    /* Every method reaches on_request, so that each gets an answer in JSON (405). */
    evhttp_set_allowed_methods(
        w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                     EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH | EVHTTP_REQ_TRACE);
    evhttp_set_timeout(w->http, (int)((d->cfg->handshake_timeout_ms + 999) / 1000));
    evhttp_set_max_headers_size(w->http, MAX_HEADERS);
    evhttp_set_max_body_size(w->http, d->cfg->max_frame);
    evhttp_set_bevcb(w->http, on_new_connection, w);
    evhttp_set_gencb(w->http, on_request, w);
    w->sock = evhttp_bind_socket_with_handle(w->http, d->cfg->web_host, (uint16_t)d->cfg->web_port);
    if (!w->sock) {
        snprintf(err, errlen, "[web] listen: cannot listen on %s:%u", d->cfg->web_host,
                 d->cfg->web_port);
        web_free(w);
        return NULL;
    }
    (void)listener_bound_address(evhttp_bound_socket_get_fd(w->sock), w->address,
                                 sizeof w->address);
    return w;
}

const char *web_address(const struct web *w)
{
    return w->address;
}

static void end_streams(struct web *w)
{
    struct web_req *wr;
    while ((wr = LIST_FIRST(&w->streams)) != NULL)
        request_stream_gone(wr->r); /* sink_finished takes it off the list */
}

void web_drain(struct web *w)
{
    if (!w)
        return;
    if (w->sock) {
        evhttp_del_accept_socket(w->http, w->sock);
        w->sock = NULL;
    }
    end_streams(w);
}

void web_after_reload(struct web *w)
{
    if (!w)
        return;
    struct daemon *d = w->d;
    evhttp_set_max_body_size(w->http, d->cfg->max_frame);
    unsigned revoked = 0;
    struct web_conn *wc;
    TAILQ_FOREACH(wc, &w->conns, link)
    {
        SSL *ssl = bufferevent_openssl_get_ssl(wc->bev);
        char why[256];
        if (ssl && SSL_is_init_finished(ssl) && !tls_peer_verify(d->tls, ssl, why, sizeof why)) {
            log_info("web: closing a connection: %s", why);
            arm(wc, 0);
            revoked++;
        }
    }
    if (revoked)
        log_notice("web: closed %u connection%s whose certificate no longer verifies", revoked,
                   revoked == 1 ? "" : "s");
}

void web_free(struct web *w)
{
    if (!w)
        return;
    end_streams(w);
    if (w->http)
        evhttp_free(w->http); /* frees the connections, and their web_conn with them */
    free(w);
}
