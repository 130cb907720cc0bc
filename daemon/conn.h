/*
 * Client connections: TLS bufferevents, the frame loop, limits and the one close path. The
 * only module that touches client bufferevents.
 */
#ifndef FRISTAD_CONN_H
#define FRISTAD_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/bufferevent.h>
#include <event2/util.h>
#include <msgpack.h>

#include "authz.h"
#include "daemon.h"
#include "ratelimit.h"
#include "log.h"

enum conn_state {
    CONN_HANDSHAKE, /* TLS handshake under way; nothing is read from it yet */
    CONN_READY,     /* authenticated: frames are read and answered */
    CONN_CLOSING,   /* no more reading; close once replies due are written */
    CONN_CLOSED,    /* socket gone; the struct lives until its store replies have come back */
};

struct conn {
    TAILQ_ENTRY(conn) link; /* every open connection, oldest first */
    struct daemon *d;
    uint64_t id;
    enum conn_state state;
    struct bufferevent *bev;
    char peer[64]; /* address:port of the client */
    struct principal who;
    struct limit_entry *lim;
    unsigned refs;             /* the connection itself, plus one per request at the store */
    unsigned inflight;         /* requests waiting for the store */
    unsigned errors_in_row;    /* refused frames since the last good one */
    bool paused;               /* reading stopped: too many requests in flight */
    bool counted;              /* counted in lim->conns */
    struct event *frame_timer; /* deadline of the handshake, then of each started frame */
};

/* Logs a line prefixed with the connection id and its principal (or peer address). */
void conn_logf(const struct conn *c, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define conn_log(c, level, ...)                                                                    \
    do {                                                                                           \
        if (log_enabled(level))                                                                    \
            conn_logf((c), (level), __VA_ARGS__);                                                  \
    } while (0)

/* A new TCP connection from the listener. Takes ownership of fd. */
void conn_accept(struct daemon *d, evutil_socket_t fd, const char *peer);

/*
 * Makes room for one more connection by dropping the oldest one still in its handshake.
 * Returns false when every connection is past its handshake.
 */
bool conn_make_room(struct daemon *d);

/* The packer for the next reply. Pack exactly one reply, then conn_reply_send. */
msgpack_packer *conn_reply_packer(void);
void conn_reply_send(struct conn *c);
void conn_reply_error(struct conn *c, uint64_t id, bool has_id, enum proto_err code,
                      const char *message);

/* A request goes to the store: keeps the connection alive until conn_request_done. */
void conn_request_start(struct conn *c);
void conn_request_done(struct conn *c);
/* True when a reply can still be written. */
bool conn_open(const struct conn *c);

/* SIGTERM: stop reading everywhere; close each connection once its replies are out. */
void conn_drain_all(struct daemon *d);
/* After a reload: apply new limits and drop connections whose certificate is now revoked. */
void conn_after_reload(struct daemon *d);
/* Frees every connection at exit. */
void conn_free_all(struct daemon *d);
unsigned conn_count(void);

#endif
