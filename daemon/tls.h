/*
 * TLS: the server context (built whole, swapped on reload) and the peer's identity. This is the
 * only module that reads certificates.
 */
#ifndef FRISTAD_TLS_H
#define FRISTAD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "authz.h"
#include "config.h"

/* Builds a complete server context from the configuration, or NULL with a reason in err. */
SSL_CTX *tls_server_ctx_new(const struct config *cfg, char *err, size_t errlen);

/* Reads the verified peer certificate into a principal (valid or not, with a reason). */
void tls_peer_principal(SSL *ssl, struct principal *out);

/*
 * Verifies the connection's peer certificate chain again against ctx (its CAs, revocation
 * lists and the current time): false with the reason for the log when a handshake made now
 * would fail.
 */
bool tls_peer_verify(SSL_CTX *ctx, SSL *ssl, char *why, size_t whylen);

/*
 * When the peer's certificate, or a CA of its verified chain, stops being valid (wall clock,
 * ms since 1970): the earliest notAfter. False when none can be read.
 */
bool tls_peer_not_after(SSL *ssl, int64_t *ms);

/* Formats the first real OpenSSL error in the thread's queue, and clears the queue. */
void tls_error_string(char *buf, size_t len);

#endif
