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
 * through at once. Replies are packed straight into the connection's output buffer.
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

/* Bytes in p[off, off + len), room up to cap. */
struct bytes {
    uint8_t *p;
    size_t off, len, cap;
};

struct conn {
    TAILQ_ENTRY(conn) link;       /* every open connection, oldest first */
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
    struct bytes out;        /* replies not yet taken by SSL_write */
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
    unsigned refs;             /* the connection itself, plus one per unfinished request */
    unsigned inflight;         /* requests not finished yet */
    unsigned errors_in_row;    /* refused frames since the last good one */
    bool paused;               /* reading stopped: too many requests in flight */
    bool counted;              /* counted in lim->conns */
    struct event *frame_timer; /* deadline of the handshake, then of each started frame */
    struct request *stream;    /* a request that turned the connection into a stream */
};

struct request {
    struct conn *c;
    uint64_t id;
    bool has_id;
    unsigned op;      /* enum proto_op, for the metrics */
    int64_t start_us; /* monotonic: its frame was complete */
    bool replying;    /* request_reply has begun a reply */
    struct bytes own; /* the reply, when it could not be packed into the connection's buffer */
    msgpack_packer pk;
    void (*closed)(void *ud); /* a stream: told when the connection goes away */
    void *closed_ud;
};

static TAILQ_HEAD(conn_list, conn) conns = TAILQ_HEAD_INITIALIZER(conns);
static TAILQ_HEAD(flush_list, conn) flushes = TAILQ_HEAD_INITIALIZER(flushes);
static struct event *flush_ev; /* writes the replies of a turn at its end */
static unsigned n_conns;
static uint64_t next_id = 1;
static conn_handler *handler;
static void *handler_ud;

static void conn_close(struct conn *c, const char *why);
static void read_frames(struct conn *c);
static void read_input(struct conn *c);
static void flush(struct conn *c);

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
    conn_logf(r->c, level, fmt, ap);
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
    bytes_free(&c->in);
    bytes_free(&c->out);
    free(c);
}

/* ---- the socket ---------------------------------------------------------------------------- */

static void start_reading(struct conn *c)
{
    if (c->reading || !c->rev)
        return;
    struct timeval idle = ms_tv(c->d->cfg->idle_timeout_ms);
    event_add(c->rev, c->stream ? NULL : &idle);
    c->reading = true;
}

static void stop_reading(struct conn *c)
{
    if (!c->reading)
        return;
    event_del(c->rev);
    c->reading = false;
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

/* Writes what `out` holds as far as the socket takes it. */
static void flush(struct conn *c)
{
    if (!conn_open(c) || c->write_wants_read || c->packing)
        return; /* a reply half packed goes out with the flush its sending asks for */
    while (c->out.len > 0) {
        size_t n = c->write_len ? c->write_len : c->out.len;
        if (n > INT_MAX)
            n = INT_MAX;
        if (ERR_peek_error())
            ERR_clear_error();
        int r = SSL_write(c->ssl, c->out.p + c->out.off, (int)n);
        if (r > 0) {
            bytes_consume(&c->out, (size_t)r);
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

/* ---- replies ----------------------------------------------------------------------------- */

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
    if (bytes_add(&c->out, hdr, sizeof hdr) != 0 ||
        bytes_add(&c->out, body->p + body->off, body->len) != 0) {
        conn_close(c, "out of memory");
        return false;
    }
    flush_soon(c);
    return true;
}

static int pack_to_bytes(void *data, const char *buf, size_t len)
{
    return bytes_add(data, buf, len);
}

/* A request's packer: into the connection's buffer while it is the one packing there, else
 * into its own. */
static int pack_for_request(void *data, const char *buf, size_t len)
{
    struct request *r = data;
    return bytes_add(r->c->packing == r ? &r->c->out : &r->own, buf, len);
}

/* Drops a reply a request began and did not send. */
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

/* An error reply; outside a request, a frame that did not decode or a limit. */
static void reply_error(struct conn *c, uint64_t id, bool has_id, enum proto_err code,
                        const char *message)
{
    c->d->metrics.errors[code < PROTO_E__COUNT ? code : PROTO_E_INTERNAL]++;
    if (!conn_open(c))
        return;
    if (c->packing) {
        conn_log(c, LOG_LVL_ERROR, "a reply was left half packed");
        drop_reply(c->packing);
    }
    struct bytes body = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, pack_to_bytes);
    if (proto_pack_error(&pk, id, has_id, code, message) == 0)
        send_frame(c, &body);
    else
        conn_close(c, "out of memory");
    bytes_free(&body);
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
    metrics_request_done(&c->d->metrics, r->op, code, clock_mono_us() - r->start_us);
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
    return &r->c->who;
}

msgpack_packer *request_reply(struct request *r)
{
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
    send_reply(r);
    request_finish(r, PROTO_OK);
}

void request_error(struct request *r, enum proto_err code, const char *message)
{
    drop_reply(r);
    reply_error(r->c, r->id, r->has_id, code, message);
    request_finish(r, code);
}

void request_stream(struct request *r, void (*closed)(void *ud), void *ud)
{
    struct conn *c = r->c;
    r->closed = closed;
    r->closed_ud = ud;
    c->stream = r;
    if (c->reading) { /* no idle timeout: the stream's heartbeats keep it alive */
        stop_reading(c);
        start_reading(c);
    }
}

bool request_push(struct request *r)
{
    return send_reply(r) && conn_open(r->c);
}

void request_push_error(struct request *r, enum proto_err code, const char *message)
{
    drop_reply(r);
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
    end_stream(c, false);
    close_after_replies(c);
}

/* Stops reading and closes once every reply due has been written. */
static void close_after_replies(struct conn *c)
{
    if (c->state == CONN_CLOSING || c->state == CONN_CLOSED || !conn_set_state(c, CONN_CLOSING))
        return;
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
    if (c->state != CONN_HANDSHAKE && !c->read_wants_write && !c->write_wants_read) {
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
    TAILQ_REMOVE(&conns, c, link);
    n_conns--;
    if (c->counted && c->lim)
        c->lim->conns--;
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

/* ---- frames ------------------------------------------------------------------------------ */

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

    if (c->stream) { /* a stream takes no requests: what comes is dropped */
        bytes_consume(in, in->len);
        evtimer_del(c->frame_timer);
        return;
    }
    for (unsigned n = 0; n < FRAMES_PER_EVENT; n++) {
        if (c->state != CONN_READY)
            return;
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
 * read() is made just to hear that there is nothing.
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
    struct timeval hs = ms_tv(c->d->cfg->handshake_timeout_ms);
    if (e == SSL_ERROR_WANT_READ) {
        stop_writing(c);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        start_writing(c, &hs);
        return;
    }
    c->d->metrics.handshakes_failed++;
    char why[200];
    ssl_reason(why, sizeof why, "connection closed during the TLS handshake");
    conn_close(c, why);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct conn *c = arg;
    c->refs++;
    if (what & EV_TIMEOUT) {
        if (c->state == CONN_HANDSHAKE) {
            c->d->metrics.handshakes_failed++;
            conn_close(c, "TLS handshake timed out");
        } else {
            conn_close(c, "idle too long");
        }
    } else if (c->state == CONN_HANDSHAKE) {
        handshake(c);
    } else {
        if (c->write_wants_read) {
            c->write_wants_read = false;
            flush(c);
        }
        if (c->state == CONN_CLOSING)
            stop_reading(c);
        else if (!c->read_wants_write)
            read_input(c);
    }
    conn_unref(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct conn *c = arg;
    c->refs++;
    if (what & EV_TIMEOUT) {
        if (c->state == CONN_HANDSHAKE) {
            c->d->metrics.handshakes_failed++;
            conn_close(c, "TLS handshake timed out");
        } else {
            conn_close(c, "the peer stopped reading");
        }
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

static void on_connected(struct conn *c)
{
    struct daemon *d = c->d;
    tls_peer_principal(c->ssl, &c->who);
    c->lim = limits_get(d->limits, c->who.valid ? c->who.name : "unauthorized:");
    if (!c->lim) {
        conn_close(c, "out of memory");
        return;
    }
    if (!conn_set_state(c, CONN_READY))
        return;
    evtimer_del(c->frame_timer); /* the handshake deadline; frames arm it anew */
    stop_reading(c);             /* again, with the idle timeout instead of the handshake's */
    start_reading(c);
    if (!c->who.valid)
        conn_log(c, LOG_LVL_DEBUG, "certificate names no usable principal: %s", c->who.why);
    else
        conn_log(c, LOG_LVL_DEBUG, "authenticated from %s (%s)", c->peer, SSL_get_version(c->ssl));
    if (c->lim->conns >= d->cfg->max_connections_per_principal) {
        d->metrics.refused[REFUSED_PRINCIPAL_LIMIT]++;
        reply_error(c, 0, false, PROTO_E_RATE_LIMITED,
                    "this principal has too many connections open");
        close_after_replies(c);
        return;
    }
    c->lim->conns++;
    c->counted = true;
    read_input(c); /* a request may have come with the end of the handshake */
}

void conn_accept(struct daemon *d, evutil_socket_t fd, const char *peer)
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
    SSL_set_accept_state(ssl);
    SSL_set_read_ahead(ssl, 1);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF); /* a peer that just closes: EOF */
    c->d = d;
    c->id = next_id++;
    c->refs = 1;
    c->state = CONN_HANDSHAKE;
    c->fd = fd;
    c->ssl = ssl;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    c->frame_timer = evtimer_new(d->base, on_deadline, c);
    c->rev = event_new(d->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wev = event_new(d->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    c->resume = event_new(d->base, -1, 0, on_resume, c);
    if (!c->frame_timer || !c->rev || !c->wev || !c->resume) {
        struct event *evs[] = {c->frame_timer, c->rev, c->wev, c->resume};
        for (size_t i = 0; i < 4; i++) {
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
    event_add(c->rev, &hs);
    c->reading = true;
    evtimer_add(c->frame_timer, &hs);
    TAILQ_INSERT_TAIL(&conns, c, link);
    n_conns++;
    d->metrics.connections_accepted++;
    conn_log(c, LOG_LVL_DEBUG, "accepted");
}

bool conn_make_room(struct daemon *d)
{
    struct conn *c;
    TAILQ_FOREACH(c, &conns, link)
    {
        if (c->state == CONN_HANDSHAKE) {
            d->metrics.connections_refused++;
            d->metrics.refused[REFUSED_DROPPED]++;
            conn_close(c, "dropped to make room: still in its handshake");
            return true;
        }
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
        if (tls_peer_revoked(d->tls, c->ssl)) {
            conn_close(c, "its certificate has been revoked");
            revoked++;
            continue;
        }
        if (c->reading) { /* the new idle timeout */
            stop_reading(c);
            start_reading(c);
        }
    }
    if (revoked)
        log_notice("closed %u connection%s whose certificate is now revoked", revoked,
                   revoked == 1 ? "" : "s");
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
