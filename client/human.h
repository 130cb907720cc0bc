/* Output for people: tables and sentences, one layout per op. */
#ifndef FRISTAD_CLIENT_HUMAN_H
#define FRISTAD_CLIENT_HUMAN_H

#include <stdio.h>

#include <fristad/proto.h>

#include "client.h"

/*
 * Prints the result of a successful request. Missing keys print as '-', and a result of an
 * unexpected shape is printed as indented key: value lines rather than refused. Returns 0, or
 * -1 when out of memory.
 */
int human_print(FILE *out, const struct proto_request *req,
                const msgpack_object *result) CLIENT_WARN_UNUSED;

/* Copies a server message into buf, safe for a terminal. */
void human_clean_message(char *buf, size_t cap, const char *message);

/* One event of a watch as one line: time, type, what it concerns, and its sequence. */
int human_event(FILE *out, const msgpack_object *event);

#endif
