/*
 * Client connections: TLS on the socket, the frame loop, limits and the one close path. The
 * only module that reads or writes a protocol client's socket. A connection's insides are
 * private to conn.c; what the rest of the daemon sees of it is the request handle below.
 *
 * A request: every frame that decodes into a valid request becomes one `struct request`, handed
 * to the connection's handler (dispatch). The handler finishes it exactly once, now or when the
 * store answers, with request_send (after packing the result) or request_error; the handle is
 * gone after that. A request keeps its connection's memory alive, so a reply that comes back
 * after the peer has gone is dropped safely.
 */
#ifndef FRISTAD_CONN_H
#define FRISTAD_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/util.h>
#include <msgpack.h>

#include "authz.h"
#include "daemon.h"
#include "log.h"

struct request;

/* Receives each valid request. */
typedef void conn_handler(struct request *r, const struct proto_request *req, void *ud);

/* Where the connections send their requests. Set once, before the first accept. */
void conn_set_handler(conn_handler *handler, void *ud);

/* A new TCP connection from the listener, from `sa`. Takes ownership of fd. */
void conn_accept(struct daemon *d, evutil_socket_t fd, const char *peer, const struct sockaddr *sa);

/*
 * Whether a new connection from `sa` may start a handshake: fewer than
 * max_handshakes_per_address are in progress from its address, or one of them that has sent
 * nothing was dropped for it. False: refuse it.
 */
bool conn_address_has_room(struct daemon *d, const struct sockaddr *sa);

/*
 * Makes room for one more connection by dropping, in this order: the oldest connection in its
 * handshake that has sent nothing, the oldest in its handshake, the longest idle of the
 * connections persons hold beyond their idle allowance. False when there is none of these.
 */
bool conn_make_room(struct daemon *d);

/* SIGTERM: stop reading everywhere; close each connection once its replies are out. */
void conn_drain_all(void);
/* After a reload: apply new limits and drop connections whose certificate is now revoked. */
void conn_after_reload(struct daemon *d);
/* Frees every connection at exit. */
void conn_free_all(void);
unsigned conn_count(void);

/* ---- requests --------------------------------------------------------------------------- */

/* Who sent it, as the certificate of its connection says. */
const struct principal *request_principal(const struct request *r);

/*
 * Begins the ok reply: the returned packer is positioned at the result, of which exactly one
 * object is packed before request_send. NULL when memory ran out: the request has then been
 * answered `internal` and is finished.
 */
msgpack_packer *request_reply(struct request *r);
/* Frames and sends what was packed; finishes the request. */
void request_send(struct request *r);
/* Sends an error reply, dropping anything packed; finishes the request. */
void request_error(struct request *r, enum proto_err code, const char *message);

/*
 * Turns the request into a stream: replies keep coming (request_reply, then request_push) until
 * either side ends it. The connection takes no further requests (what the peer sends is read
 * and dropped) and its idle timeout no longer applies: the stream's own heartbeats keep it
 * alive, and a peer that stops reading is still closed. `closed` runs once, when the connection
 * goes away or shuts down; the handle is gone after it.
 */
void request_stream(struct request *r, void (*closed)(void *ud), void *ud);
/* Sends what was packed and keeps the stream; false when the connection is no longer open. */
bool request_push(struct request *r);
/* Sends an error frame on a stream and keeps it (request_end usually follows). */
void request_push_error(struct request *r, enum proto_err code, const char *message);
/* Ends a stream from this side: the connection closes once its replies are out. */
void request_end(struct request *r);

/* ---- requests of another transport ------------------------------------------------------ */

/*
 * Where the answers of a request go when it did not come from a msgpack connection (the web
 * API). The request handle above works as for a connection; what would be written as a frame is
 * handed to the sink instead, as the same msgpack reply map, so that both transports answer
 * from one dispatch with the same replies.
 */
struct request_sink {
    /*
     * One reply body (a msgpack reply map: ok with its result, or an error). `last` is true for
     * the answer that finishes the request, false for a frame of a stream that goes on. Returns
     * false when the transport can take no more (a stream then ends).
     */
    bool (*frame)(void *ud, struct evbuffer *body, bool last);
    /* The request has become a stream (request_stream): frames follow until either side ends. */
    void (*stream)(void *ud);
    /* The handle is gone (answered, or its stream ended): nothing more comes for it. */
    void (*finished)(void *ud);
};

/*
 * A request of another transport, on behalf of `who` (which must outlive it): counted and timed
 * as one from a connection. NULL when memory ran out. request_dispatch hands it on.
 */
struct request *request_new_sink(struct daemon *d, const struct principal *who,
                                 const struct proto_request *req, const struct request_sink *sink,
                                 void *ud);
/* Hands a request to the handler (dispatch), which finishes it now or later. */
void request_dispatch(struct request *r, const struct proto_request *req);
/*
 * The transport of a stream went away: the stream's owner is told (request_stream's `closed`),
 * and the request finishes.
 */
void request_stream_gone(struct request *r);

/* Logs a line prefixed with the connection id and its principal. */
void request_logf(const struct request *r, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define request_log(r, level, ...)                                                                 \
    do {                                                                                           \
        if (log_enabled(level))                                                                    \
            request_logf((r), (level), __VA_ARGS__);                                               \
    } while (0)

#endif
