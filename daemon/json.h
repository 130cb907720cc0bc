/*
 * JSON for the web API: a request's JSON object becomes the msgpack request a connection would
 * send, and goes through the protocol's own decoder (proto_decode_request), so both transports
 * validate with one set of rules; a reply's msgpack result becomes JSON with the same keys and
 * values. Parsing is jansson's.
 */
#ifndef FRISTAD_JSON_H
#define FRISTAD_JSON_H

#include <stddef.h>

#include <event2/buffer.h>
#include <fristad/proto.h>
#include <msgpack.h>

/* Query parameters of GET /api/v1/watch, as name/value pairs. */
struct json_param {
    const char *name;
    const char *value;
};

/*
 * Decodes the body of POST /api/v1/OP: one JSON object holding the op's fields. The op is named
 * by the path. Returns PROTO_OK, or the code and message the msgpack transport would give
 * (bad_frame when the body is not one JSON object within the limits).
 */
enum proto_err json_decode_request(enum proto_op op, const char *body, size_t len,
                                   struct proto_request *out, struct proto_error *err);

/*
 * Decodes query parameters into the request of `op`: `since` of digits alone is a time in
 * milliseconds (else a sequence), `types` is split at commas, anything else is a string.
 */
enum proto_err json_decode_params(enum proto_op op, const struct json_param *params, size_t n,
                                  struct proto_request *out, struct proto_error *err);

/* The HTTP status of an answer with this code (200 for PROTO_OK). */
int json_http_status(enum proto_err code);

/* Appends a msgpack object as JSON. Returns 0, or -1 when memory ran out. */
int json_append(struct evbuffer *out, const msgpack_object *o);

/* Appends {"error": {"code": CODE, "message": MESSAGE}}. Returns 0 or -1. */
int json_append_error(struct evbuffer *out, const char *code, const char *message);

#endif
