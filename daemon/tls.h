/*
 * TLS: the server context (built whole, swapped on reload) and the peer's identity. This is the
 * only module that reads certificates.
 */
#ifndef FRISTAD_TLS_H
#define FRISTAD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "authz.h"
#include "config.h"

/* Builds a complete server context from the configuration, or NULL with a reason in err. */
SSL_CTX *tls_server_ctx_new(const struct config *cfg, char *err, size_t errlen);

/* Reads the verified peer certificate into a principal (valid or not, with a reason). */
void tls_peer_principal(SSL *ssl, struct principal *out);

/* True when the connection's peer certificate is on a CRL loaded in ctx. */
bool tls_peer_revoked(SSL_CTX *ctx, SSL *ssl);

/* Formats the first real OpenSSL error in the thread's queue, and clears the queue. */
void tls_error_string(char *buf, size_t len);

#endif
