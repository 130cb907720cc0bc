/* JSON output of --json: a msgpack object as one JSON value, and the error document. */
#ifndef FRISTAD_CLIENT_JSON_H
#define FRISTAD_CLIENT_JSON_H

#include <stddef.h>
#include <stdio.h>

#include <msgpack.h>

#include "client.h"

/*
 * Writes o as one JSON value (no newline). Maps become objects (keys that are not strings
 * are written as strings), bin becomes a base64 string, NaN and infinities become null, and
 * bytes that are not UTF-8 become U+FFFD. Returns 0, or -1 when out of memory.
 */
int json_write_value(FILE *out, const msgpack_object *o) CLIENT_WARN_UNUSED;

/* Writes s (n bytes, not necessarily NUL-terminated) as a JSON string. */
void json_write_string(FILE *out, const char *s, size_t n);

/* Writes {"error": {"code": CODE, "message": MESSAGE}} and a newline. */
void json_write_error(FILE *out, const char *code, const char *message);

#endif
