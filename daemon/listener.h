/* The TCP listener: accept, the connection cap, and pausing on descriptor exhaustion. */
#ifndef FRISTAD_LISTENER_H
#define FRISTAD_LISTENER_H

#include <stddef.h>

struct daemon;
struct listener;

/* Binds and listens. NULL with a reason in err. */
struct listener *listener_new(struct daemon *d, char *err, size_t errlen);
/* "host:port" actually bound (port 0 resolved). */
const char *listener_address(const struct listener *l);
/*
 * The address a listening socket is bound to, as "host:port" ("[v6]:port"): for the log and for
 * tests that listen on port 0. Returns 0, or -1 (and "?") when it cannot be read.
 */
int listener_bound_address(int fd, char *out, size_t cap);
void listener_disable(struct listener *l);
void listener_free(struct listener *l);

#endif
