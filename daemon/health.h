/*
 * The health port ([server] health_listen): plain TCP for a load balancer's check. It reads
 * nothing and answers one line, then closes:
 *   "ready store=up"     the index is loaded and writes reach the store
 *   "ready store=down"   the index is loaded; searches are answered, writes get "unavailable"
 *   "loading"            the index has not been loaded yet
 *   "stopping"           SIGTERM: open requests are being finished
 * It carries no data and needs no certificate, so it belongs on an address only the load
 * balancer reaches.
 */
#ifndef FRISTAD_HEALTH_H
#define FRISTAD_HEALTH_H

#include <stddef.h>

struct daemon;
struct health;

/* NULL with err on failure. */
struct health *health_new(struct daemon *d, char *err, size_t errlen);
const char *health_address(const struct health *h);
void health_free(struct health *h);

#endif
