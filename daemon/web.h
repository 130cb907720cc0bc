/*
 * The web listener: HTTPS on [web] listen with the protocol listener's TLS context (so the same
 * certificate, CA, revocation list and policy, and a client certificate is required), serving
 * the page (files built into the daemon, web_assets.h) and the JSON API:
 *
 *   POST /api/v1/OP     the op's fields as one JSON object; 200 and the op's result, or an
 *                       error {"error": {"code", "message"}} with a status that fits the code
 *   GET  /api/v1/watch  the watch, as server-sent events
 *
 * The API is a second transport of the protocol, not a second implementation: its requests are
 * decoded by the protocol's decoder (json.h) and handed to the same dispatch through the request
 * handle (conn.h), so authorisation, validation, audit, rate limits and replies are the same.
 */
#ifndef FRISTAD_WEB_H
#define FRISTAD_WEB_H

#include <stddef.h>

struct daemon;
struct web;

/*
 * Listens on [web] listen. NULL with err empty when it is off; NULL with a reason in err when it
 * cannot listen.
 */
struct web *web_new(struct daemon *d, char *err, size_t errlen);
/* "host:port" actually bound (port 0 resolved). */
const char *web_address(const struct web *w);
/* SIGTERM: no new requests; streams end; answers still due go out. */
void web_drain(struct web *w);
/* After a reload: the new body limit, and connections whose certificate is now revoked close. */
void web_after_reload(struct web *w);
void web_free(struct web *w);

#endif
