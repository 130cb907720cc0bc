/*
 * Watchers: connections that asked `watch` and receive, as server-pushed frames, every event
 * of the log their principal may see (a shelter its own units; social services the holds and
 * standing searches of their municipality; on-call those of the municipalities it acts for;
 * admin all), through their filters. A watcher resuming from a sequence first gets what it
 * missed, read back from the log, then the live events, with no gap and no duplicate.
 */
#ifndef FRISTAD_WATCH_H
#define FRISTAD_WATCH_H

#include <fristad/proto.h>

#include "feed.h"

struct daemon;
struct request;
struct watchers;

struct watchers *watch_new(struct daemon *d);
void watch_free(struct watchers *w);
/* (Re)arms the heartbeat at the configured interval: at start and after a reload. */
void watch_arm(struct watchers *w);

/* Handles a `watch` request (already authorised). */
void watch_start(struct watchers *w, struct request *r, const struct proto_request *req);

/* An event of the log (the feed's hook): to every watcher that may see it. */
void watch_deliver(struct watchers *w, const struct event *e);

/* Watching connections open now. */
unsigned watch_count(const struct watchers *w);

#endif
