/* The client's side of the wire: one TLS connection, one request frame, one reply. */
#ifndef FRISTAD_CLIENT_NET_H
#define FRISTAD_CLIENT_NET_H

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

/* How far a request got before net_call failed. */
enum net_reach {
    NET_NOT_SENT, /* nothing of it was written: the server cannot have acted on it */
    NET_SENT,     /* written, at least in part, and no reply came: it may have been carried out */
};

/*
 * Connects to the server in s, sends `body` (one packed request, without its length prefix)
 * and reads frames until the reply to request `id` arrives, all within s->timeout_ms. On
 * success the decoded reply (ok or error) is in *out, which the caller frees with
 * net_reply_free, and 0 is returned. Otherwise -1 with err set to a connection, tls, timeout
 * or protocol failure, *reach saying how far the request got, and nothing to free.
 */
int net_call(const struct settings *s, const uint8_t *body, size_t len, uint64_t id,
             struct net_reply *out, enum net_reach *reach,
             struct client_error *err) CLIENT_WARN_UNUSED;
void net_reply_free(struct net_reply *r);

#endif
