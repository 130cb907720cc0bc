/* fristad watch: the events of a watch, one line each, until interrupted (see watch.c). */
#ifndef FRISTAD_CLIENT_WATCH_H
#define FRISTAD_CLIENT_WATCH_H

#include <stdbool.h>

#include <fristad/proto.h>

#include "client.h"
#include "settings.h"

/*
 * Runs the watch `req` (op watch, its filters and since) until SIGINT or SIGTERM, reconnecting
 * by itself. Returns 0 when stopped by a signal, or -1 with err set when the server refused the
 * watch for good (gone, forbidden, a bad request) or the settings are wrong.
 */
int watch_run(const struct settings *s, const struct proto_request *req, bool json,
              struct client_error *err) CLIENT_WARN_UNUSED;

#endif
