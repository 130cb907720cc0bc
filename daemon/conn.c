/*
 * One connection's life: TLS handshake under a timeout, identity from the certificate, then a
 * loop over length-prefixed frames. A broken length prefix loses the framing, so that one is
 * answered and the connection closed; anything wrong inside a well-delimited frame is answered
 * with its error code and the connection goes on, until too many refusals in a row suggest the
 * peer sends nothing else.
 *
 * Limits, all per connection unless said: one frame of at most max_frame bytes buffered; at
 * most FRAMES_PER_EVENT frames per read event (fairness); at most MAX_INFLIGHT requests at the
 * store, after which reading pauses; a started frame must complete within frame_timeout
 * (slow loris); idle_timeout without a request closes; more than MAX_OUTPUT bytes of unsent
 * replies closes (slow consumer); requests per second per principal (rate_limited).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "conn.h"
#include "ratelimit.h"
#include "tls.h"

#define FRAMES_PER_EVENT 16
#define MAX_INFLIGHT     32
#define MAX_ERRORS       16
#define MAX_OUTPUT       (1024 * 1024)
#define WRITE_TIMEOUT_S  30

enum conn_state {
    CONN_HANDSHAKE, /* TLS handshake under way; nothing is read from it yet */
    CONN_READY,     /* authenticated: frames are read and answered */
    CONN_CLOSING,   /* no more reading; close once replies due are written */
    CONN_CLOSED,    /* socket gone; the struct lives until its requests have finished */
};

/* Where a connection comes from, as the per-address limits see it: IPv4 by its address, IPv6
 * by its /64 (what one subscriber is given), an IPv4-mapped IPv6 address as IPv4. */
struct peer_key {
    uint8_t family; /* AF_INET or AF_INET6; 0: unknown (a unix socket, say) */
    uint8_t bytes[8];
};

struct conn {
    TAILQ_ENTRY(conn) link;    /* every open connection, oldest first */
    TAILQ_ENTRY(conn) hs_link; /* the connections in their handshake, oldest first */
    struct daemon *d;
    uint64_t id;
    enum conn_state state; /* changed by conn_set_state alone */
    struct bufferevent *bev;
    char peer[64]; /* address:port of the client */
    struct principal who;
    struct limit_entry *lim;
    unsigned refs;          /* the connection itself, plus one per unfinished request */
    unsigned inflight;      /* requests not finished yet */
    unsigned errors_in_row; /* refused frames since the last good one */
    bool paused;            /* reading stopped: too many requests in flight */
    bool counted;           /* counted in lim->conns and role_conns[role_slot] */
    unsigned role_slot;     /* its role, or ROLE__COUNT for no usable principal */
    bool extra;             /* beyond its person's idle allowance: closed sooner when idle */
    int64_t last_active_ms; /* monotonic: authenticated, or its last frame */
    struct peer_key from;
    struct event *frame_timer;  /* deadline of the handshake, then of each started frame */
    struct event *expiry_timer; /* the end of the certificate's validity: the connection ends */
    struct request *stream;     /* a request that turned the connection into a stream */
};

struct request {
    struct conn *c; /* NULL for a request of another transport (sink) */
    struct daemon *d;
    const struct principal *who;
    const struct request_sink *sink; /* another transport's, or NULL */
    void *sink_ud;
    bool streaming; /* a sink's request that became a stream */
    uint64_t id;
    bool has_id;
    unsigned op;          /* enum proto_op, for the metrics */
    int64_t start_us;     /* monotonic: its frame was complete */
    struct evbuffer *out; /* the reply being packed */
    msgpack_packer pk;
    void (*closed)(void *ud); /* a stream: told when the connection goes away */
    void *closed_ud;
};

static TAILQ_HEAD(conn_list, conn) conns = TAILQ_HEAD_INITIALIZER(conns);
static struct conn_list handshakes = TAILQ_HEAD_INITIALIZER(handshakes);
static unsigned n_conns;
static unsigned role_conns[ROLE__COUNT + 1]; /* authenticated connections per role, and of
                                                certificates naming no usable principal */
static uint64_t next_id = 1;
static conn_handler *handler;
static void *handler_ud;

static void conn_close(struct conn *c, const char *why);
static void read_frames(struct conn *c);

static struct timeval ms_tv(int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
                         .tv_usec = (suseconds_t)((ms % 1000) * 1000)};
    return tv;
}

static void conn_logf(const struct conn *c, enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void conn_logf(const struct conn *c, enum log_level level, const char *fmt, va_list ap)
{
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    log_write(level, "conn %llu %s: %s", (unsigned long long)c->id,
              c->who.valid ? c->who.name : c->peer, msg);
}

static void conn_log(const struct conn *c, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void conn_log(const struct conn *c, enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    conn_logf(c, level, fmt, ap);
    va_end(ap);
}

void request_logf(const struct request *r, enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (r->c) {
        conn_logf(r->c, level, fmt, ap);
    } else {
        char msg[768];
        vsnprintf(msg, sizeof msg, fmt, ap);
        log_write(level, "web %s: %s", r->who->valid ? r->who->name : "unauthorized", msg);
    }
    va_end(ap);
}

/*
 * The one place a connection changes state. The allowed moves:
 *   HANDSHAKE -> READY (authenticated), CLOSING (drain) or CLOSED;
 *   READY -> CLOSING or CLOSED;  CLOSING -> CLOSED.
 * Anything else is a bug: logged and refused, the connection stays as it was.
 */
static bool conn_set_state(struct conn *c, enum conn_state next)
{
    static const unsigned allowed[] = {
        [CONN_HANDSHAKE] = 1u << CONN_READY | 1u << CONN_CLOSING | 1u << CONN_CLOSED,
        [CONN_READY] = 1u << CONN_CLOSING | 1u << CONN_CLOSED,
        [CONN_CLOSING] = 1u << CONN_CLOSED,
        [CONN_CLOSED] = 0,
    };
    if (!(allowed[c->state] & (1u << next))) {
        conn_log(c, LOG_LVL_ERROR, "refused a state change from %d to %d", c->state, next);
        return false;
    }
    if (c->state == CONN_HANDSHAKE)
        TAILQ_REMOVE(&handshakes, c, hs_link);
    c->state = next;
    return true;
}

void conn_set_handler(conn_handler *h, void *ud)
{
    handler = h;
    handler_ud = ud;
}

unsigned conn_count(void)
{
    return n_conns;
}

static bool conn_open(const struct conn *c)
{
    return c->state == CONN_READY || c->state == CONN_CLOSING;
}

static void conn_unref(struct conn *c)
{
    if (--c->refs > 0)
        return;
    if (c->frame_timer)
        event_free(c->frame_timer);
    if (c->expiry_timer)
        event_free(c->expiry_timer);
    free(c);
}

static void maybe_finish_closing(struct conn *c)
{
    if (c->state == CONN_CLOSING && c->inflight == 0 &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_close(c, NULL);
}

/* Writes one packed reply body as a frame; false when the connection had to be closed. */
static bool send_frame(struct conn *c, struct evbuffer *body)
{
    size_t len = evbuffer_get_length(body);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (len == 0 || len > UINT32_MAX) {
        conn_log(c, LOG_LVL_ERROR, "a reply could not be packed");
        return true;
    }
    if (evbuffer_get_length(out) + len > MAX_OUTPUT) {
        conn_close(c, "too many unread replies");
        return false;
    }
    uint8_t hdr[PROTO_HEADER_LEN];
    proto_frame_put_header(hdr, (uint32_t)len);
    if (evbuffer_prepend(body, hdr, sizeof hdr) != 0 || evbuffer_add_buffer(out, body) != 0) {
        conn_close(c, "out of memory");
        return false;
    }
    return true;
}

static int pack_to_evbuffer(void *data, const char *buf, size_t len)
{
    return evbuffer_add(data, buf, len);
}

/* An error reply's body, or NULL when memory ran out. */
static struct evbuffer *error_body(uint64_t id, bool has_id, enum proto_err code,
                                   const char *message)
{
    struct evbuffer *body = evbuffer_new();
    msgpack_packer pk;
    if (!body)
        return NULL;
    msgpack_packer_init(&pk, body, pack_to_evbuffer);
    if (proto_pack_error(&pk, id, has_id, code, message) != 0) {
        evbuffer_free(body);
        return NULL;
    }
    return body;
}

/* An error reply; outside a request, a frame that did not decode or a limit. */
static void reply_error(struct conn *c, uint64_t id, bool has_id, enum proto_err code,
                        const char *message)
{
    c->d->metrics.errors[code < PROTO_E__COUNT ? code : PROTO_E_INTERNAL]++;
    if (!conn_open(c))
        return;
    struct evbuffer *body = error_body(id, has_id, code, message);
    if (!body) {
        conn_close(c, "out of memory");
        return;
    }
    send_frame(c, body);
    evbuffer_free(body);
}

/* An error reply to a sink's request; false when the sink can take no more. */
static bool sink_error(struct request *r, enum proto_err code, const char *message, bool last)
{
    r->d->metrics.errors[code < PROTO_E__COUNT ? code : PROTO_E_INTERNAL]++;
    struct evbuffer *body = error_body(r->id, r->has_id, code, message);
    bool ok = body && r->sink->frame(r->sink_ud, body, last);
    if (body)
        evbuffer_free(body);
    return ok;
}

/* A frame refused before it became a request, counted under its op if it was known. */
static void refuse_frame(struct conn *c, unsigned op, uint64_t id, bool has_id, enum proto_err code,
                         const char *message)
{
    metrics_request_done(&c->d->metrics, op, code, -1);
    reply_error(c, id, has_id, code, message);
}

static struct request *request_new(struct conn *c, const struct proto_request *req,
                                   int64_t start_us)
{
    struct request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->c = c;
    r->d = c->d;
    r->who = &c->who;
    r->id = req->id;
    r->has_id = req->has_id;
    r->op = req->op;
    r->start_us = start_us;
    c->refs++;
    c->inflight++;
    return r;
}

/*
 * The request is answered with `code`: it is counted and timed, and the connection may read
 * again, or finish closing.
 */
static void request_finish(struct request *r, enum proto_err code)
{
    struct conn *c = r->c;
    metrics_request_done(&r->d->metrics, r->op, code, clock_mono_us() - r->start_us);
    if (r->out)
        evbuffer_free(r->out);
    if (!c) {
        const struct request_sink *sink = r->sink;
        void *ud = r->sink_ud;
        free(r);
        sink->finished(ud);
        return;
    }
    free(r);
    c->inflight--;
    if (c->state == CONN_READY && c->paused && c->inflight < MAX_INFLIGHT) {
        c->paused = false;
        bufferevent_enable(c->bev, EV_READ);
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
    }
    if (c->state == CONN_CLOSING)
        maybe_finish_closing(c);
    conn_unref(c);
}

const struct principal *request_principal(const struct request *r)
{
    return r->who;
}

struct request *request_new_sink(struct daemon *d, const struct principal *who,
                                 const struct proto_request *req, const struct request_sink *sink,
                                 void *ud)
{
    struct request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->d = d;
    r->who = who;
    r->sink = sink;
    r->sink_ud = ud;
    r->id = req->id;
    r->has_id = req->has_id;
    r->op = req->op;
    r->start_us = clock_mono_us();
    d->metrics.requests[req->op]++;
    return r;
}

void request_dispatch(struct request *r, const struct proto_request *req)
{
    handler(r, req, handler_ud);
}

void request_stream_gone(struct request *r)
{
    if (!r->sink || !r->streaming)
        return;
    r->streaming = false;
    if (r->closed)
        r->closed(r->closed_ud);
    request_finish(r, PROTO_OK);
}

msgpack_packer *request_reply(struct request *r)
{
    if (r->out)
        evbuffer_drain(r->out, evbuffer_get_length(r->out));
    else if (!(r->out = evbuffer_new())) {
        request_error(r, PROTO_E_INTERNAL, "out of memory");
        return NULL;
    }
    msgpack_packer_init(&r->pk, r->out, pack_to_evbuffer);
    if (proto_pack_ok_begin(&r->pk, r->id, r->has_id) != 0) {
        request_error(r, PROTO_E_INTERNAL, "out of memory");
        return NULL;
    }
    return &r->pk;
}

void request_send(struct request *r)
{
    if (r->sink) {
        if (r->out)
            (void)r->sink->frame(r->sink_ud, r->out, true);
        request_finish(r, PROTO_OK);
        return;
    }
    if (r->out && conn_open(r->c))
        send_frame(r->c, r->out);
    request_finish(r, PROTO_OK);
}

void request_error(struct request *r, enum proto_err code, const char *message)
{
    if (r->sink)
        (void)sink_error(r, code, message, true);
    else
        reply_error(r->c, r->id, r->has_id, code, message);
    request_finish(r, code);
}

void request_stream(struct request *r, void (*closed)(void *ud), void *ud)
{
    struct conn *c = r->c;
    r->closed = closed;
    r->closed_ud = ud;
    if (r->sink) {
        r->streaming = true;
        r->sink->stream(r->sink_ud);
        return;
    }
    c->stream = r;
    struct timeval wr = {WRITE_TIMEOUT_S, 0};
    bufferevent_set_timeouts(c->bev, NULL, &wr);
}

bool request_push(struct request *r)
{
    if (r->sink)
        return r->streaming && r->out && r->sink->frame(r->sink_ud, r->out, false);
    if (!conn_open(r->c) || !r->out)
        return false;
    return send_frame(r->c, r->out) && conn_open(r->c);
}

void request_push_error(struct request *r, enum proto_err code, const char *message)
{
    if (r->sink)
        (void)sink_error(r, code, message, false);
    else
        reply_error(r->c, r->id, r->has_id, code, message);
}

/* Ends the connection's stream, if it has one: tells its owner, then finishes the request. */
static void end_stream(struct conn *c, bool tell)
{
    struct request *r = c->stream;
    if (!r)
        return;
    c->stream = NULL;
    if (tell && r->closed)
        r->closed(r->closed_ud);
    request_finish(r, PROTO_OK);
}

static void close_after_replies(struct conn *c);

void request_end(struct request *r)
{
    struct conn *c = r->c;
    if (r->sink) {
        r->streaming = false;
        request_finish(r, PROTO_OK);
        return;
    }
    end_stream(c, false);
    close_after_replies(c);
}

/* Stops reading and closes once every reply due has been written. */
static void close_after_replies(struct conn *c)
{
    if (c->state == CONN_CLOSING || c->state == CONN_CLOSED || !conn_set_state(c, CONN_CLOSING))
        return;
    bufferevent_disable(c->bev, EV_READ);
    evtimer_del(c->frame_timer);
    if (c->stream)
        end_stream(c, true); /* finishing the stream may close the connection: the last step */
    else
        maybe_finish_closing(c);
}

static void conn_close(struct conn *c, const char *why)
{
    if (c->state == CONN_CLOSED)
        return;
    if (why)
        conn_log(c, LOG_LVL_DEBUG, "closed: %s", why);
    else
        conn_log(c, LOG_LVL_DEBUG, "closed");
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    if (ssl && c->state != CONN_HANDSHAKE)
        SSL_shutdown(ssl); /* best effort: tells a well-behaved peer we are done */
    bufferevent_free(c->bev);
    c->bev = NULL;
    evtimer_del(c->frame_timer);
    evtimer_del(c->expiry_timer);
    TAILQ_REMOVE(&conns, c, link);
    n_conns--;
    if (c->counted && c->lim) {
        c->lim->conns--;
        role_conns[c->role_slot]--;
    }
    conn_set_state(c, CONN_CLOSED);
    end_stream(c, true);
    conn_unref(c);
}

/*
 * One absolute deadline per phase: the whole TLS handshake, then each started frame. The
 * bufferevent's own timeouts restart on every byte, so a peer dribbling a byte at a time would
 * never meet them (slow loris).
 */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->state == CONN_HANDSHAKE) {
        c->d->metrics.handshakes_failed++;
        conn_close(c, "TLS handshake timed out");
    } else {
        conn_close(c, "a frame was not completed in time");
    }
}

static void on_expiry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_log(arg, LOG_LVL_INFO, "closed: its certificate has expired");
    conn_close(arg, NULL);
}

/*
 * A connection lasts no longer than the certificate that opened it: at the earliest notAfter
 * of its chain it is closed, however busy it is. Returns false when it has expired already.
 */
static bool arm_expiry(struct conn *c, SSL *ssl)
{
    int64_t not_after;
    if (!tls_peer_not_after(ssl, &not_after))
        return true;
    int64_t left = not_after - clock_wall_ms();
    if (left <= 0)
        return false;
    struct timeval tv = ms_tv(left);
    evtimer_add(c->expiry_timer, &tv);
    return true;
}

/* Handles one complete frame body. */
static void handle_frame(struct conn *c, const uint8_t *body, size_t len)
{
    int64_t start_us = clock_mono_us();
    struct proto_request req;
    struct proto_error err = {0};
    enum proto_err e = proto_decode_request(body, len, &req, &err);
    unsigned op = e == PROTO_OK ? (unsigned)req.op : OP__COUNT;

    if (!limits_take(c->lim, c->d->cfg->rate, c->d->cfg->burst, clock_mono_ms())) {
        refuse_frame(c, op, req.id, req.has_id, PROTO_E_RATE_LIMITED,
                     "too many requests from this principal; slow down and retry");
        return;
    }
    if (e != PROTO_OK) {
        conn_log(c, LOG_LVL_DEBUG, "refused a frame: %s", proto_err_code(e));
        refuse_frame(c, op, req.id, req.has_id, e, err.message);
        if (++c->errors_in_row >= MAX_ERRORS) {
            conn_log(c, LOG_LVL_DEBUG, "too many refused frames in a row");
            close_after_replies(c);
        }
        return;
    }
    c->errors_in_row = 0;
    c->last_active_ms = clock_mono_ms();
    c->d->metrics.requests[req.op]++;
    struct request *r = request_new(c, &req, start_us);
    if (!r) {
        refuse_frame(c, op, req.id, true, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    handler(r, &req, handler_ud);
}

static void read_frames_locked(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    uint32_t max_frame = c->d->cfg->max_frame;

    for (unsigned n = 0; n < FRAMES_PER_EVENT; n++) {
        if (c->state != CONN_READY)
            return;
        /* A stream takes no requests: what comes is dropped, also what came in the same read
         * as the request that began it. */
        if (c->stream) {
            evbuffer_drain(in, evbuffer_get_length(in));
            evtimer_del(c->frame_timer);
            return;
        }
        if (c->inflight >= MAX_INFLIGHT) {
            c->paused = true;
            bufferevent_disable(c->bev, EV_READ);
            return;
        }
        size_t avail = evbuffer_get_length(in);
        if (avail == 0) {
            evtimer_del(c->frame_timer);
            return;
        }
        uint8_t hdr[PROTO_HEADER_LEN];
        uint32_t len = 0;
        enum proto_frame_status st = PROTO_FRAME_NEED_MORE;
        if (avail >= PROTO_HEADER_LEN) {
            evbuffer_copyout(in, hdr, sizeof hdr);
            /* Only the header is looked at here; the body's presence is checked below. */
            st = proto_frame_peek(hdr, sizeof hdr, max_frame, &len);
            if (st == PROTO_FRAME_NEED_MORE && avail - PROTO_HEADER_LEN >= len)
                st = PROTO_FRAME_READY;
        }
        switch (st) {
        case PROTO_FRAME_NEED_MORE:
            if (!evtimer_pending(c->frame_timer, NULL)) {
                struct timeval tv = ms_tv(c->d->cfg->frame_timeout_ms);
                evtimer_add(c->frame_timer, &tv);
            }
            return;
        case PROTO_FRAME_BAD_LENGTH:
            refuse_frame(c, OP__COUNT, 0, false, PROTO_E_BAD_FRAME,
                         "a frame length of zero; the stream cannot be read any further");
            close_after_replies(c);
            return;
        case PROTO_FRAME_TOO_LARGE: {
            char msg[128];
            snprintf(msg, sizeof msg, "a frame of %u bytes is larger than the maximum of %u", len,
                     max_frame);
            refuse_frame(c, OP__COUNT, 0, false, PROTO_E_TOO_LARGE, msg);
            close_after_replies(c);
            return;
        }
        case PROTO_FRAME_READY:
            break;
        }
        evtimer_del(c->frame_timer);
        evbuffer_drain(in, PROTO_HEADER_LEN);
        const uint8_t *body = evbuffer_pullup(in, len);
        if (!body) {
            conn_close(c, "out of memory");
            return;
        }
        handle_frame(c, body, len);
        if (c->state == CONN_CLOSED)
            return;
        evbuffer_drain(in, len);
    }
    /* Fairness: give others a turn, then come back for what is still buffered. */
    if (c->state == CONN_READY && evbuffer_get_length(in) > 0)
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

/* A reply or a limit may close the connection mid-loop: hold a reference across it. */
static void read_frames(struct conn *c)
{
    c->refs++;
    read_frames_locked(c);
    conn_unref(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    read_frames(arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (c->state == CONN_CLOSING)
        maybe_finish_closing(c);
}

/* ---- admission ------------------------------------------------------------------------ */

/* Drops c to make room for a newer connection, saying why. */
static void drop(struct daemon *d, struct conn *c, const char *why)
{
    d->metrics.connections_refused++;
    d->metrics.refused[REFUSED_DROPPED]++;
    conn_log(c, LOG_LVL_DEBUG, "%s", why); /* a flood must not flood the log too */
    conn_close(c, NULL);
}

static void peer_key_of(const struct sockaddr *sa, struct peer_key *k)
{
    memset(k, 0, sizeof *k);
    if (!sa)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        k->family = AF_INET;
        memcpy(k->bytes, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            k->family = AF_INET;
            memcpy(k->bytes, in6->sin6_addr.s6_addr + 12, 4);
        } else {
            k->family = AF_INET6;
            memcpy(k->bytes, in6->sin6_addr.s6_addr, 8); /* the /64 */
        }
    }
}

static bool same_peer(const struct peer_key *a, const struct peer_key *b)
{
    return a->family != 0 && a->family == b->family && memcmp(a->bytes, b->bytes, 8) == 0;
}

/* A connection in its handshake that has not sent one byte: the cheapest to let go. */
static bool sent_nothing(const struct conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    BIO *rbio = ssl ? SSL_get_rbio(ssl) : NULL;
    return !rbio || BIO_number_read(rbio) == 0;
}

/*
 * Handshakes in progress from one address are limited, so that a flood from a few addresses
 * cannot fill the table, nor starve real handshakes of the loop's time: a further connection
 * from an address at its limit makes that address's oldest silent handshake give way, and is
 * refused when all of them have sent something.
 */
bool conn_address_has_room(struct daemon *d, const struct sockaddr *sa)
{
    struct peer_key k;
    struct conn *c, *silent = NULL;
    unsigned n = 0;
    peer_key_of(sa, &k);
    if (k.family == 0)
        return true;
    TAILQ_FOREACH(c, &handshakes, hs_link)
    {
        if (!same_peer(&c->from, &k))
            continue;
        n++;
        if (!silent && sent_nothing(c))
            silent = c;
    }
    if (n < d->cfg->max_handshakes_per_address)
        return true;
    if (!silent)
        return false;
    drop(d, silent, "dropped: its address has too many handshakes in progress");
    return true;
}

/*
 * Whether an authenticated connection of role slot `r` may take its place in the table: every
 * role keeps role_reserve_percent of max_connections that the others cannot take, so that the
 * holders of one role, however many, never lock another out.
 */
static bool role_has_room(const struct config *cfg, unsigned r)
{
    unsigned reserve = (unsigned)((uint64_t)cfg->max_connections * cfg->role_reserve_percent / 100);
    if (r < ROLE__COUNT && role_conns[r] < reserve)
        return true;
    uint64_t total = 1, kept = 0;
    for (unsigned q = 0; q <= ROLE__COUNT; q++)
        total += role_conns[q];
    for (unsigned q = 0; q < ROLE__COUNT; q++) {
        if (q != r && role_conns[q] < reserve)
            kept += reserve - role_conns[q];
    }
    return total + kept <= cfg->max_connections;
}

/*
 * Counts an authenticated connection against its person and its role; the reason for a
 * refusal when either is full. A person's connections beyond idle_connections_per_person are
 * marked extra: closed sooner when idle, and the first given up to make room.
 */
static const char *admit(struct conn *c)
{
    const struct config *cfg = c->d->cfg;
    unsigned r = c->who.valid ? (unsigned)c->who.role : ROLE__COUNT;
    if (c->lim->conns >= cfg->max_connections_per_person) {
        c->d->metrics.refused[REFUSED_PERSON_LIMIT]++;
        return "this person has too many connections open";
    }
    if (!role_has_room(cfg, r)) {
        c->d->metrics.refused[REFUSED_ROLE_LIMIT]++;
        return "the connections this role may hold are all in use; retry shortly";
    }
    c->lim->conns++;
    role_conns[r]++;
    c->role_slot = r;
    c->counted = true;
    c->extra = c->lim->conns > cfg->idle_connections_per_person;
    return NULL;
}

/* The idle timeout of a connection: shorter for a person's extra ones; none for a stream,
 * whose client listens and sends nothing. */
static void set_timeouts(struct conn *c)
{
    const struct config *cfg = c->d->cfg;
    struct timeval idle = ms_tv(c->extra ? cfg->extra_idle_timeout_ms : cfg->idle_timeout_ms),
                   wr = {WRITE_TIMEOUT_S, 0};
    bufferevent_set_timeouts(c->bev, c->stream ? NULL : &idle, &wr);
}

static void on_connected(struct conn *c)
{
    struct daemon *d = c->d;
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    tls_peer_principal(ssl, &c->who);
    /* Limits count per person: one holder of a municipality's certificate cannot spend the
     * budget of every colleague who holds another. */
    c->lim = limits_get(d->limits, c->who.person[0] ? c->who.person : "unauthorized:");
    if (!c->lim) {
        conn_close(c, "out of memory");
        return;
    }
    if (!conn_set_state(c, CONN_READY))
        return;
    evtimer_del(c->frame_timer); /* the handshake deadline; frames arm it anew */
    if (!arm_expiry(c, ssl)) {
        conn_log(c, LOG_LVL_INFO, "closed: its certificate has expired");
        conn_close(c, NULL);
        return;
    }
    c->last_active_ms = clock_mono_ms();
    set_timeouts(c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, PROTO_HEADER_LEN + d->cfg->max_frame);
    if (!c->who.valid)
        conn_log(c, LOG_LVL_DEBUG, "certificate names no usable principal: %s", c->who.why);
    else
        conn_log(c, LOG_LVL_DEBUG, "authenticated from %s (%s), person %s", c->peer,
                 SSL_get_version(ssl), c->who.person);
    const char *full = admit(c);
    if (full) {
        reply_error(c, 0, false, PROTO_E_RATE_LIMITED, full);
        close_after_replies(c);
        return;
    }
    set_timeouts(c);
    read_frames(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == CONN_HANDSHAKE)
            on_connected(c);
        return;
    }
    if (c->state == CONN_HANDSHAKE) {
        c->d->metrics.handshakes_failed++;
        if (what & BEV_EVENT_TIMEOUT) {
            conn_close(c, "TLS handshake timed out");
        } else {
            char why[200] = "connection closed during the TLS handshake";
            unsigned long e;
            while ((e = bufferevent_get_openssl_error(bev)) != 0) {
                if (ERR_GET_LIB(e) != 0) {
                    ERR_error_string_n(e, why, sizeof why);
                    break;
                }
            }
            conn_close(c, why);
        }
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        conn_close(c, (what & BEV_EVENT_READING) ? "idle too long" : "the peer stopped reading");
    else if (what & BEV_EVENT_EOF)
        conn_close(c, evbuffer_get_length(bufferevent_get_input(bev)) ? "closed inside a frame"
                                                                      : NULL);
    else
        conn_close(c, "connection error");
}

void conn_accept(struct daemon *d, evutil_socket_t fd, const char *peer, const struct sockaddr *sa)
{
    struct conn *c = calloc(1, sizeof *c);
    SSL *ssl = c ? SSL_new(d->tls) : NULL;
    if (!ssl) {
        free(c);
        evutil_closesocket(fd);
        log_error("out of memory for a new connection");
        return;
    }
    /* Replies are small and answer a waiting person: no Nagle delay behind a delayed ACK. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->d = d;
    c->id = next_id++;
    c->refs = 1;
    c->state = CONN_HANDSHAKE;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    peer_key_of(sa, &c->from);
    c->frame_timer = evtimer_new(d->base, on_deadline, c);
    c->expiry_timer = evtimer_new(d->base, on_expiry, c);
    c->bev = bufferevent_openssl_socket_new(d->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev || !c->frame_timer || !c->expiry_timer) {
        if (c->bev)
            bufferevent_free(c->bev); /* frees the SSL and closes fd */
        else {
            SSL_free(ssl);
            evutil_closesocket(fd);
        }
        if (c->frame_timer)
            event_free(c->frame_timer);
        if (c->expiry_timer)
            event_free(c->expiry_timer);
        free(c);
        log_error("out of memory for a new connection");
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    struct timeval hs = ms_tv(d->cfg->handshake_timeout_ms);
    bufferevent_set_timeouts(c->bev, &hs, &hs);
    evtimer_add(c->frame_timer, &hs);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    TAILQ_INSERT_TAIL(&conns, c, link);
    TAILQ_INSERT_TAIL(&handshakes, c, hs_link);
    n_conns++;
    d->metrics.connections_accepted++;
    conn_log(c, LOG_LVL_DEBUG, "accepted");
}

bool conn_make_room(struct daemon *d)
{
    struct conn *c, *idlest = NULL;
    TAILQ_FOREACH(c, &handshakes, hs_link)
    {
        if (sent_nothing(c)) {
            drop(d, c, "dropped to make room: in its handshake and silent");
            return true;
        }
    }
    if ((c = TAILQ_FIRST(&handshakes)) != NULL) {
        drop(d, c, "dropped to make room: still in its handshake");
        return true;
    }
    /* Insiders: a person's idle connections beyond its allowance give way too. */
    TAILQ_FOREACH(c, &conns, link)
    {
        if (c->state == CONN_READY && c->extra && c->inflight == 0 && !c->stream &&
            (!idlest || c->last_active_ms < idlest->last_active_ms))
            idlest = c;
    }
    if (idlest) {
        drop(d, idlest, "dropped to make room: one of its person's extra connections, idle");
        return true;
    }
    return false;
}

void conn_drain_all(void)
{
    struct conn *c, *next;
    for (c = TAILQ_FIRST(&conns); c; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->state == CONN_HANDSHAKE)
            conn_close(c, "shutting down");
        else
            close_after_replies(c);
    }
}

void conn_after_reload(struct daemon *d)
{
    struct conn *c, *next;
    unsigned revoked = 0;
    for (c = TAILQ_FIRST(&conns); c; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->state != CONN_READY)
            continue;
        char why[160];
        if (!tls_peer_verify(d->tls, bufferevent_openssl_get_ssl(c->bev), why, sizeof why)) {
            conn_close(c, why);
            revoked++;
            continue;
        }
        set_timeouts(c);
        bufferevent_setwatermark(c->bev, EV_READ, 0, PROTO_HEADER_LEN + d->cfg->max_frame);
    }
    if (revoked)
        log_notice("closed %u connection%s whose certificate chain no longer verifies "
                   "(revoked, its CA removed, or expired)",
                   revoked, revoked == 1 ? "" : "s");
}

void conn_free_all(void)
{
    struct conn *c;
    while ((c = TAILQ_FIRST(&conns)) != NULL)
        conn_close(c, NULL);
}
