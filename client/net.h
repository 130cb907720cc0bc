/*
 * The client's side of the wire: one TLS connection, and on it one request frame and its reply,
 * or a few in turn (a lookup, then the request it was for).
 */
#ifndef FRISTAD_CLIENT_NET_H
#define FRISTAD_CLIENT_NET_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <fristad/proto.h>

#include "client.h"
#include "settings.h"

/* The largest reply frame the client accepts; the server's own cap is usually far lower. */
#define NET_MAX_FRAME PROTO_MAX_MAX_FRAME

/* A decoded reply and the frame body its strings point into (msgpack-c does not copy them). */
struct net_reply {
    struct proto_reply reply;
    uint8_t *body;
};

/*
 * Connects to the server in s, sends `body` (one packed request, without its length prefix)
 * and reads frames until the reply to request `id` arrives, all within s->timeout_ms. On
 * success the decoded reply (ok or error) is in *out, which the caller frees with
 * net_reply_free, and 0 is returned. Otherwise -1 with err set to a connection, tls, timeout
 * or protocol failure, and nothing to free.
 */
int net_call(const struct settings *s, const uint8_t *body, size_t len, uint64_t id,
             struct net_reply *out, struct client_error *err) CLIENT_WARN_UNUSED;

/* A connection for several requests in turn, under one deadline (s->timeout_ms from open). */
struct net_session;
/* Connects and makes the TLS handshake. Returns 0, or -1 with err set (as net_call). */
int net_open(const struct settings *s, struct net_session **out,
             struct client_error *err) CLIENT_WARN_UNUSED;
/* Sends one request and reads its reply, as net_call does on its own connection. */
int net_exchange(struct net_session *c, const uint8_t *body, size_t len, uint64_t id,
                 struct net_reply *out, struct client_error *err) CLIENT_WARN_UNUSED;
void net_close(struct net_session *c);
void net_reply_free(struct net_reply *r);

/*
 * A request whose replies keep coming (watch): connects, sends `body` and returns the stream,
 * or NULL with err set. net_stream_next waits up to timeout_ms for the next reply to `id`
 * (0, or -1 with err: timeout, connection lost, protocol failure).
 */
struct net_stream;
/* Waits end early (as failures) once *flag is set by a signal handler. */
void net_stop_on(volatile sig_atomic_t *flag);
struct net_stream *net_stream_open(const struct settings *s, const uint8_t *body, size_t len,
                                   uint64_t id, struct client_error *err);
int net_stream_next(struct net_stream *st, int timeout_ms, struct net_reply *out,
                    struct client_error *err) CLIENT_WARN_UNUSED;
void net_stream_close(struct net_stream *st);

#endif
