/*
 * Request dispatch: authorisation, then either an answer from the index (searches and
 * listings) or a store function (every write, and reads of holds, placements, audit, stats).
 */
#ifndef FRISTAD_DISPATCH_H
#define FRISTAD_DISPATCH_H

#include <fristad/proto.h>

struct conn;

/* Handles one decoded request; the reply is sent now or when the store answers. */
void dispatch_request(struct conn *c, const struct proto_request *req);

struct daemon;
/* Adds the search counts gathered since the last call to the store's follow-up counters. */
void dispatch_flush_counts(struct daemon *d);

#endif
