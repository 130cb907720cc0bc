/*
 * The metrics listener: plain HTTP (evhttp) on its own address, [metrics] listen, loopback by
 * default. /metrics is the Prometheus text exposition, /healthz says the daemon is alive and
 * /readyz whether it can answer (index loaded, Redis up). Everything it shows is read from
 * memory, so a scrape never waits on Redis and never blocks the loop.
 */
#ifndef FRISTAD_EXPORTER_H
#define FRISTAD_EXPORTER_H

#include <stddef.h>

struct daemon;
struct exporter;

/*
 * Binds [metrics] listen. Returns the exporter, or NULL: with err set when it cannot listen,
 * with err empty when the configuration turns it off.
 */
struct exporter *exporter_new(struct daemon *d, char *err, size_t errlen);
/* The bound address, "127.0.0.1:7421" (the real port when 0 was asked for). */
const char *exporter_address(const struct exporter *ex);
void exporter_free(struct exporter *ex);

#endif
