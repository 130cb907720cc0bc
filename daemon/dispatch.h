/*
 * Request dispatch: a request's row in the op table (ops.h) says who may make it and which way
 * it goes, to an answer from the index or to a store function.
 */
#ifndef FRISTAD_DISPATCH_H
#define FRISTAD_DISPATCH_H

#include <fristad/proto.h>

struct request;

/* The connections' handler (conn_handler); ud is the struct daemon. */
void dispatch_request(struct request *r, const struct proto_request *req, void *ud);

#endif
