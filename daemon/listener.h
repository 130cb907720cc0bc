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
void listener_disable(struct listener *l);
void listener_free(struct listener *l);

#endif
