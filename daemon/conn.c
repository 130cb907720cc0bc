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
 *
 * The transport is OpenSSL on the non-blocking socket, driven by two events, and shaped to
 * make few system calls: OpenSSL reads ahead, so a request usually arrives in one read(); the
 * replies made in one turn of the event loop are written together at its end, in one
 * SSL_write; and the socket is watched for writability only after a write that did not go
 * through at once. Replies are packed straight into the connection's output buffer. (The web
 * listener keeps evhttp's bufferevents; it shares only the TLS context and the request handle.)
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
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
#define READ_CHUNK       16384 /* a whole TLS record */

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

/* Bytes in p[off, off + len), room up to cap. */
struct bytes {
    uint8_t *p;
    size_t off, len, cap;
};

struct conn {
    TAILQ_ENTRY(conn) link;       /* every open connection, oldest first */
    TAILQ_ENTRY(conn) hs_link;    /* the connections in their handshake, oldest first */
    TAILQ_ENTRY(conn) flush_link; /* connections with replies to write at the end of the turn */
    struct daemon *d;
    uint64_t id;
    enum conn_state state; /* changed by conn_set_state alone */
    int fd;
    SSL *ssl;
    struct event *rev;       /* readable; its timeout is the handshake's, then the idle timeout */
    struct event *wev;       /* writable: added only while a write waits for room */
    struct event *resume;    /* frames already buffered, processed on a later turn (fairness) */
    struct bytes in;         /* received, not yet taken as frames */
    struct bytes out;        /* replies not yet taken by SSL_write: what MAX_OUTPUT bounds */
    size_t write_len;        /* the length of an SSL_write that must be repeated; 0: none */
    bool reading;            /* rev is added */
    bool writing;            /* wev is added */
    bool read_wants_write;   /* SSL_read needs the socket writable first */
    bool write_wants_read;   /* SSL_write needs the socket readable first */
    bool flush_due;          /* in the flush list */
    struct request *packing; /* the request packing a reply straight into `out` */
    size_t pack_at;          /* where its frame begins in `out` (from out.off) */
    char peer[64];           /* address:port of the client */
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
    bool replying;        /* a connection's request: request_reply has begun a reply */
    struct bytes own;     /* its reply, when it could not be packed into the connection's buffer */
    struct evbuffer *out; /* a sink's request: the reply being packed */
    msgpack_packer pk;
    void (*closed)(void *ud); /* a stream: told when the connection goes away */
    void *closed_ud;
};

static TAILQ_HEAD(conn_list, conn) conns = TAILQ_HEAD_INITIALIZER(conns);
static struct conn_list handshakes = TAILQ_HEAD_INITIALIZER(handshakes);
static TAILQ_HEAD(flush_list, conn) flushes = TAILQ_HEAD_INITIALIZER(flushes);
static struct event *flush_ev; /* writes the replies of a turn at its end */
static unsigned n_conns;
static unsigned role_conns[ROLE__COUNT + 1]; /* authenticated connections per role, and of
                                                certificates naming no usable principal */
static uint64_t next_id = 1;
static conn_handler *handler;
static void *handler_ud;

static void conn_close(struct conn *c, const char *why);
static void read_frames(struct conn *c);
static void read_input(struct conn *c);

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

/* ---- buffers ---------------------------------------------------------------------------- */

/* Room for `more` bytes after the data. Returns 0 or -1. */
static int bytes_reserve(struct bytes *b, size_t more)
{
    if (b->cap - b->off - b->len >= more)
        return 0;
    if (b->off > 0 && b->cap - b->len >= more) {
        memmove(b->p, b->p + b->off, b->len);
        b->off = 0;
        return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more)
        cap *= 2;
    uint8_t *p = malloc(cap);
    if (!p)
        return -1;
    if (b->len)
        memcpy(p, b->p + b->off, b->len);
    free(b->p);
    b->p = p;
    b->off = 0;
    b->cap = cap;
    return 0;
}

static int bytes_add(struct bytes *b, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    if (bytes_reserve(b, n) < 0)
        return -1;
    memcpy(b->p + b->off + b->len, data, n);
    b->len += n;
    return 0;
}

static void bytes_consume(struct bytes *b, size_t n)
{
    b->off += n;
    b->len -= n;
    if (b->len == 0)
        b->off = 0;
}

/* An empty buffer gives its memory back: an idle connection holds none. */
static void bytes_trim(struct bytes *b)
{
    if (b->len == 0 && b->p) {
        free(b->p);
        *b = (struct bytes){0};
    }
}

static void bytes_free(struct bytes *b)
{
    free(b->p);
    *b = (struct bytes){0};
}

static void conn_unref(struct conn *c)
{
    if (--c->refs > 0)
        return;
    if (c->frame_timer)
        event_free(c->frame_timer);
    if (c->expiry_timer)
        event_free(c->expiry_timer);
    bytes_free(&c->in);
    bytes_free(&c->out);
    free(c);
}

/* ---- the socket ------------------------------------------------------------------------- */

/*
 * Adds the read event under the timeout of the connection's phase: the handshake's; then the
 * idle timeout, shorter for a person's extra connections; none for a stream, whose client
 * listens and sends nothing. The event persists: every read restarts the timeout.
 */
static void add_read_event(struct conn *c)
{
    const struct config *cfg = c->d->cfg;
    struct timeval tv;
    if (c->state == CONN_HANDSHAKE)
        tv = ms_tv(cfg->handshake_timeout_ms);
    else if (c->stream) {
        event_add(c->rev, NULL);
        return;
    } else
        tv = ms_tv(c->extra ? cfg->extra_idle_timeout_ms : cfg->idle_timeout_ms);
    event_add(c->rev, &tv);
}

static void start_reading(struct conn *c)
{
    if (c->reading || !c->rev)
        return;
    add_read_event(c);
    c->reading = true;
}

static void stop_reading(struct conn *c)
{
    if (!c->reading)
        return;
    event_del(c->rev);
    c->reading = false;
}

/*
 * The read timeout changed (authenticated, a stream, a reload). Adding a pending event again
 * replaces its timeout without touching the socket's registration; only taking the timeout
 * away takes removing the event first.
 */
static void set_timeouts(struct conn *c)
{
    if (!c->reading)
        return;
    if (c->stream)
        event_del(c->rev);
    add_read_event(c);
}

/* Watches for room to write, under the write timeout (a peer that stopped reading). */
static void start_writing(struct conn *c, const struct timeval *timeout)
{
    if (c->writing || !c->wev)
        return;
    struct timeval wr = {WRITE_TIMEOUT_S, 0};
    event_add(c->wev, timeout ? timeout : &wr);
    c->writing = true;
}

static void stop_writing(struct conn *c)
{
    if (!c->writing)
        return;
    event_del(c->wev);
    c->writing = false;
}

/* The first real OpenSSL error of the thread's queue, which it empties. */
static void ssl_reason(char *why, size_t cap, const char *otherwise)
{
    unsigned long e, first = 0;
    while ((e = ERR_get_error()) != 0) {
        if (!first && ERR_GET_LIB(e) != 0)
            first = e;
    }
    if (first)
        ERR_error_string_n(first, why, cap);
    else
        snprintf(why, cap, "%s", otherwise);
}

static void maybe_finish_closing(struct conn *c)
{
    if (c->state == CONN_CLOSING && c->inflight == 0 && c->out.len == 0 && !c->packing)
        conn_close(c, NULL);
}

/* Writes what `out` holds as far as the socket takes it, up to a reply still being packed. */
static void flush(struct conn *c)
{
    if (!conn_open(c) || c->write_wants_read)
        return;
    for (;;) {
        size_t ready = c->packing ? c->pack_at : c->out.len;
        if (ready == 0)
            break;
        size_t n = c->write_len ? c->write_len : ready;
        if (n > INT_MAX)
            n = INT_MAX;
        if (ERR_peek_error())
            ERR_clear_error();
        int r = SSL_write(c->ssl, c->out.p + c->out.off, (int)n);
        if (r > 0) {
            bytes_consume(&c->out, (size_t)r);
            if (c->packing)
                c->pack_at -= (size_t)r;
            c->write_len = 0;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            c->write_len = n; /* OpenSSL wants the same write again */
            if (e == SSL_ERROR_WANT_READ) {
                c->write_wants_read = true;
                start_reading(c); /* even while closing: the write waits for it */
            } else {
                start_writing(c, NULL);
            }
            return;
        }
        char why[200];
        ssl_reason(why, sizeof why, "connection error");
        conn_close(c, why);
        return;
    }
    stop_writing(c);
    if (!c->packing)
        bytes_trim(&c->out);
    if (c->state == CONN_CLOSING)
        maybe_finish_closing(c);
}

/* The replies of this turn go out at its end, together. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    struct conn *c;
    while ((c = TAILQ_FIRST(&flushes)) != NULL) {
        TAILQ_REMOVE(&flushes, c, flush_link);
        c->flush_due = false;
        c->refs++;
        flush(c);
        conn_unref(c);
    }
}

static void flush_soon(struct conn *c)
{
    if (c->flush_due || !conn_open(c))
        return;
    if (TAILQ_EMPTY(&flushes))
        event_active(flush_ev, EV_TIMEOUT, 0);
    TAILQ_INSERT_TAIL(&flushes, c, flush_link);
    c->flush_due = true;
}

/* ---- replies ---------------------------------------------------------------------------- */

/* Frames one reply that is in `out` from c->pack_at on; false when the connection had to close. */
static bool seal_frame(struct conn *c)
{
    size_t start = c->pack_at, len = c->out.len - start - PROTO_HEADER_LEN;
    c->packing = NULL;
    if (len == 0 || len > UINT32_MAX) {
        conn_log(c, LOG_LVL_ERROR, "a reply could not be packed");
        c->out.len = start;
        return true;
    }
    if (c->out.len > MAX_OUTPUT) {
        conn_close(c, "too many unread replies");
        return false;
    }
    proto_frame_put_header(c->out.p + c->out.off + start, (uint32_t)len);
    flush_soon(c);
    return true;
}

/* Writes one packed reply body (not in `out`) as a frame; false when the connection closed. */
static bool send_frame(struct conn *c, const struct bytes *body)
{
    uint8_t hdr[PROTO_HEADER_LEN];
    if (body->len == 0 || body->len > UINT32_MAX) {
        conn_log(c, LOG_LVL_ERROR, "a reply could not be packed");
        return true;
    }
    if (c->out.len + PROTO_HEADER_LEN + body->len > MAX_OUTPUT) {
        conn_close(c, "too many unread replies");
        return false;
    }
    proto_frame_put_header(hdr, (uint32_t)body->len);
    size_t n = sizeof hdr + body->len;
    if (bytes_reserve(&c->out, n) != 0) {
        conn_close(c, "out of memory");
        return false;
    }
    /* While another reply is being packed at the end of `out`, this one goes in before it: the
     * one being packed stays whole, and last. A write waiting to be repeated covers bytes before
     * it alone (flush stops there), so nothing it holds moves. */
    size_t at = c->packing ? c->pack_at : c->out.len;
    uint8_t *p = c->out.p + c->out.off + at;
    memmove(p + n, p, c->out.len - at);
    memcpy(p, hdr, sizeof hdr);
    memcpy(p + sizeof hdr, body->p + body->off, body->len);
    c->out.len += n;
    if (c->packing)
        c->pack_at += n;
    flush_soon(c);
    return true;
}

static int pack_to_bytes(void *data, const char *buf, size_t len)
{
    return bytes_add(data, buf, len);
}

static int pack_to_evbuffer(void *data, const char *buf, size_t len)
{
    return evbuffer_add(data, buf, len);
}

/* A connection's request packs into the connection's buffer while it is the one packing there,
 * else into its own. */
static int pack_for_request(void *data, const char *buf, size_t len)
{
    struct request *r = data;
    return bytes_add(r->c->packing == r ? &r->c->out : &r->own, buf, len);
}

/* Drops a reply a connection's request began and did not send. */
static void drop_reply(struct request *r)
{
    struct conn *c = r->c;
    if (c->packing == r) {
        c->out.len = c->pack_at;
        c->packing = NULL;
    }
    r->own.len = 0;
    r->replying = false;
}

/* An error reply's body, for another transport, or NULL when memory ran out. */
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
    struct bytes body = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, pack_to_bytes);
    if (proto_pack_error(&pk, id, has_id, code, message) == 0)
        send_frame(c, &body);
    else
        conn_close(c, "out of memory");
    bytes_free(&body);
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
    drop_reply(r);
    bytes_free(&r->own);
    free(r);
    c->inflight--;
    if (c->state == CONN_READY && c->paused && c->inflight < MAX_INFLIGHT) {
        c->paused = false;
        start_reading(c);
        event_active(c->resume, EV_TIMEOUT, 0); /* the frames already buffered */
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

/* request_reply of a sink's request: the body is packed into an evbuffer of its own, which
 * the sink takes. */
static msgpack_packer *sink_reply(struct request *r)
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

msgpack_packer *request_reply(struct request *r)
{
    if (r->sink)
        return sink_reply(r);
    struct conn *c = r->c;
    drop_reply(r);
    msgpack_packer_init(&r->pk, r, pack_for_request);
    if (!c->packing && conn_open(c)) {
        /* Straight into the output, after room for the frame's header. */
        c->packing = r;
        c->pack_at = c->out.len;
    }
    r->replying = true;
    static const char hdr[PROTO_HEADER_LEN];
    if (pack_for_request(r, hdr, sizeof hdr) != 0 ||
        proto_pack_ok_begin(&r->pk, r->id, r->has_id) != 0) {
        request_error(r, PROTO_E_INTERNAL, "out of memory");
        return NULL;
    }
    return &r->pk;
}

/* Sends the reply packed since request_reply; false when the connection is not open (any
 * more). */
static bool send_reply(struct request *r)
{
    struct conn *c = r->c;
    if (!r->replying || !conn_open(c)) {
        drop_reply(r);
        return false;
    }
    r->replying = false;
    if (c->packing == r)
        return seal_frame(c);
    struct bytes body = r->own; /* its own buffer, after the room for a header */
    body.off += PROTO_HEADER_LEN;
    body.len -= PROTO_HEADER_LEN;
    bool ok = send_frame(c, &body);
    r->own.len = 0;
    return ok;
}

void request_send(struct request *r)
{
    if (r->sink) {
        if (r->out)
            (void)r->sink->frame(r->sink_ud, r->out, true);
        request_finish(r, PROTO_OK);
        return;
    }
    send_reply(r);
    request_finish(r, PROTO_OK);
}

void request_error(struct request *r, enum proto_err code, const char *message)
{
    if (r->sink) {
        (void)sink_error(r, code, message, true);
    } else {
        drop_reply(r);
        reply_error(r->c, r->id, r->has_id, code, message);
    }
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
    set_timeouts(c); /* no idle timeout: the stream's heartbeats keep it alive */
}

bool request_push(struct request *r)
{
    if (r->sink)
        return r->streaming && r->out && r->sink->frame(r->sink_ud, r->out, false);
    return send_reply(r) && conn_open(r->c);
}

void request_push_error(struct request *r, enum proto_err code, const char *message)
{
    if (r->sink) {
        (void)sink_error(r, code, message, false);
    } else {
        drop_reply(r);
        reply_error(r->c, r->id, r->has_id, code, message);
    }
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
    if (!c->write_wants_read) /* else a write waits for the socket to be readable */
        stop_reading(c);
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
    if (c->state != CONN_HANDSHAKE && !c->read_wants_write && !c->write_wants_read &&
        c->write_len == 0) {
        SSL_shutdown(c->ssl); /* best effort: tells a well-behaved peer we are done */
        ERR_clear_error();
    }
    SSL_free(c->ssl);
    c->ssl = NULL;
    event_free(c->rev);
    event_free(c->wev);
    event_free(c->resume);
    c->rev = c->wev = c->resume = NULL;
    c->reading = c->writing = false;
    close(c->fd);
    c->fd = -1;
    if (c->flush_due) {
        TAILQ_REMOVE(&flushes, c, flush_link);
        c->flush_due = false;
    }
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
 * socket's own timeouts restart on every byte, so a peer dribbling a byte at a time would
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

/* ---- frames ----------------------------------------------------------------------------- */

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
    struct bytes *in = &c->in;
    uint32_t max_frame = c->d->cfg->max_frame;

    for (unsigned n = 0; n < FRAMES_PER_EVENT; n++) {
        if (c->state != CONN_READY)
            return;
        /* A stream takes no requests: what comes is dropped, also what came in the same read
         * as the request that began it. */
        if (c->stream) {
            bytes_consume(in, in->len);
            bytes_trim(in);
            evtimer_del(c->frame_timer);
            return;
        }
        if (c->inflight >= MAX_INFLIGHT) {
            c->paused = true;
            stop_reading(c);
            return;
        }
        size_t avail = in->len;
        if (avail == 0) {
            evtimer_del(c->frame_timer);
            bytes_trim(in);
            return;
        }
        uint32_t len = 0;
        enum proto_frame_status st = PROTO_FRAME_NEED_MORE;
        if (avail >= PROTO_HEADER_LEN) {
            /* Only the header is looked at here; the body's presence is checked below. */
            st = proto_frame_peek(in->p + in->off, PROTO_HEADER_LEN, max_frame, &len);
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
        /* The body stays where it is while it is handled: nothing reads into `in` meanwhile. */
        const uint8_t *body = in->p + in->off + PROTO_HEADER_LEN;
        handle_frame(c, body, len);
        if (c->state == CONN_CLOSED)
            return;
        bytes_consume(in, PROTO_HEADER_LEN + len);
    }
    /* Fairness: give others a turn, then come back for what is still buffered. */
    if (c->state == CONN_READY && in->len > 0)
        event_active(c->resume, EV_TIMEOUT, 0);
}

/* A reply or a limit may close the connection mid-loop: hold a reference across it. Reading
 * stopped for a full buffer starts again once there is room. */
static void read_frames(struct conn *c)
{
    c->refs++;
    read_frames_locked(c);
    if (c->state == CONN_READY && !c->paused && !c->reading &&
        c->in.len < PROTO_HEADER_LEN + c->d->cfg->max_frame) {
        start_reading(c);
        if (SSL_has_pending(c->ssl)) /* read ahead already: no event will tell */
            event_active(c->resume, EV_TIMEOUT, 0);
    }
    conn_unref(c);
}

/*
 * Reads what the socket has, then handles the frames. One SSL_read usually takes all there is
 * (OpenSSL reads ahead); it is repeated only while OpenSSL holds more already read, so that no
 * read() is made just to hear that there is nothing. At most one frame of max_frame bytes is
 * buffered: reading stops when `in` holds that much.
 */
static void read_input(struct conn *c)
{
    size_t limit = PROTO_HEADER_LEN + c->d->cfg->max_frame;
    while (c->state == CONN_READY && !c->paused) {
        if (c->in.len >= limit) { /* a whole frame is waiting to be handled: no more for now */
            stop_reading(c);
            break;
        }
        if (bytes_reserve(&c->in, READ_CHUNK) < 0) {
            conn_close(c, "out of memory");
            return;
        }
        size_t room = c->in.cap - c->in.off - c->in.len;
        if (ERR_peek_error())
            ERR_clear_error();
        int r = SSL_read(c->ssl, c->in.p + c->in.off + c->in.len,
                         (int)(room > INT_MAX ? INT_MAX : room));
        if (r > 0) {
            c->in.len += (size_t)r;
            if (!SSL_has_pending(c->ssl))
                break;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_WANT_WRITE) { /* a key update to answer: once writable */
            c->read_wants_write = true;
            start_writing(c, NULL);
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            conn_close(c, c->in.len ? "closed inside a frame" : NULL);
            return;
        }
        char why[200];
        ssl_reason(why, sizeof why,
                   e == SSL_ERROR_SYSCALL && errno ? strerror(errno) : "connection error");
        conn_close(c, why);
        return;
    }
    if (c->state == CONN_READY && c->in.len > 0)
        read_frames(c);
    else
        bytes_trim(&c->in);
}

static void on_connected(struct conn *c);

/* Moves the handshake on; on success the connection is authenticated. */
static void handshake(struct conn *c)
{
    if (ERR_peek_error())
        ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        stop_writing(c);
        on_connected(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        stop_writing(c);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        struct timeval hs = ms_tv(c->d->cfg->handshake_timeout_ms);
        start_writing(c, &hs);
        return;
    }
    c->d->metrics.handshakes_failed++;
    char why[200];
    ssl_reason(why, sizeof why, "connection closed during the TLS handshake");
    conn_close(c, why);
}

/* A read or write event timed out: the handshake's timeout, or the one `why` names. */
static void timed_out(struct conn *c, const char *why)
{
    if (c->state == CONN_HANDSHAKE) {
        c->d->metrics.handshakes_failed++;
        conn_close(c, "TLS handshake timed out");
    } else {
        conn_close(c, why);
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct conn *c = arg;
    c->refs++;
    if (what & EV_TIMEOUT) {
        timed_out(c, "idle too long");
    } else if (c->state == CONN_HANDSHAKE) {
        handshake(c);
    } else {
        if (c->write_wants_read) {
            c->write_wants_read = false;
            flush(c);
        }
        if (c->state == CONN_CLOSING) {
            if (!c->write_wants_read)
                stop_reading(c);
        } else if (!c->read_wants_write) {
            read_input(c);
        }
    }
    conn_unref(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct conn *c = arg;
    c->refs++;
    if (what & EV_TIMEOUT) {
        timed_out(c, "the peer stopped reading");
    } else if (c->state == CONN_HANDSHAKE) {
        handshake(c);
    } else {
        stop_writing(c);
        if (c->read_wants_write) {
            c->read_wants_write = false;
            read_input(c);
        }
        flush(c);
    }
    conn_unref(c);
}

/* Frames left over by the fairness limit, or waiting while too many requests were in flight. */
static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    c->refs++;
    read_frames(c);
    /* OpenSSL may hold data it read ahead while reading was paused: no event will tell. */
    if (c->state == CONN_READY && c->reading && !c->read_wants_write && SSL_has_pending(c->ssl))
        read_input(c);
    conn_unref(c);
}

/* ---- admission -------------------------------------------------------------------------- */

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
    BIO *rbio = c->ssl ? SSL_get_rbio(c->ssl) : NULL;
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

static void on_connected(struct conn *c)
{
    struct daemon *d = c->d;
    tls_peer_principal(c->ssl, &c->who);
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
    if (!arm_expiry(c, c->ssl)) {
        conn_log(c, LOG_LVL_INFO, "closed: its certificate has expired");
        conn_close(c, NULL);
        return;
    }
    c->last_active_ms = clock_mono_ms();
    set_timeouts(c); /* the idle timeout instead of the handshake's */
    if (!c->who.valid)
        conn_log(c, LOG_LVL_DEBUG, "certificate names no usable principal: %s", c->who.why);
    else
        conn_log(c, LOG_LVL_DEBUG, "authenticated from %s (%s), person %s", c->peer,
                 SSL_get_version(c->ssl), c->who.person);
    const char *full = admit(c);
    if (full) {
        reply_error(c, 0, false, PROTO_E_RATE_LIMITED, full);
        close_after_replies(c);
        return;
    }
    if (c->extra)
        set_timeouts(c);
    read_input(c); /* a request may have come with the end of the handshake */
}

void conn_accept(struct daemon *d, evutil_socket_t fd, const char *peer, const struct sockaddr *sa)
{
    if (!flush_ev && !(flush_ev = event_new(d->base, -1, 0, on_flush, NULL))) {
        evutil_closesocket(fd);
        log_error("out of memory for a new connection");
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    SSL *ssl = c ? SSL_new(d->tls) : NULL;
    if (!ssl || !SSL_set_fd(ssl, fd)) {
        SSL_free(ssl);
        free(c);
        evutil_closesocket(fd);
        log_error("out of memory for a new connection");
        return;
    }
    /* Replies are small and answer a waiting person: no Nagle delay behind a delayed ACK. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Set on this SSL alone: the web listener's connections share the context. */
    SSL_set_accept_state(ssl);
    SSL_set_read_ahead(ssl, 1);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    c->d = d;
    c->id = next_id++;
    c->refs = 1;
    c->state = CONN_HANDSHAKE;
    c->fd = fd;
    c->ssl = ssl;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    peer_key_of(sa, &c->from);
    c->frame_timer = evtimer_new(d->base, on_deadline, c);
    c->expiry_timer = evtimer_new(d->base, on_expiry, c);
    c->rev = event_new(d->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wev = event_new(d->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    c->resume = event_new(d->base, -1, 0, on_resume, c);
    if (!c->frame_timer || !c->expiry_timer || !c->rev || !c->wev || !c->resume) {
        struct event *evs[] = {c->frame_timer, c->expiry_timer, c->rev, c->wev, c->resume};
        for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
            if (evs[i])
                event_free(evs[i]);
        }
        SSL_free(ssl);
        evutil_closesocket(fd);
        free(c);
        log_error("out of memory for a new connection");
        return;
    }
    struct timeval hs = ms_tv(d->cfg->handshake_timeout_ms);
    start_reading(c); /* under the handshake timeout */
    evtimer_add(c->frame_timer, &hs);
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
        if (!tls_peer_verify(d->tls, c->ssl, why, sizeof why)) {
            conn_close(c, why);
            revoked++;
            continue;
        }
        if (!c->stream) /* the new idle timeout; a stream has none */
            set_timeouts(c);
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
    if (flush_ev) {
        event_free(flush_ev);
        flush_ev = NULL;
    }
}
