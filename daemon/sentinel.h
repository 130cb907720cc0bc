/*
 * Which Redis the store and events links talk to. In spawn and connect mode that is one fixed
 * address. In sentinel mode it is whichever server the Sentinels name as the primary of
 * [redis] master_name: this module asks them, follows their +switch-master announcements, and
 * moves both links to the new primary when it changes. The links confirm with ROLE that the
 * server they reach is a primary before they call themselves up.
 */
#ifndef FRISTAD_SENTINEL_H
#define FRISTAD_SENTINEL_H

#include <stddef.h>

#include "redis_link.h"

struct daemon;
struct sentinel;

/*
 * Sentinel mode only: the Sentinel addresses are resolved here (one that does not resolve is
 * left out with a warning while another one does). NULL with err on failure.
 */
struct sentinel *sentinel_new(struct daemon *d, char *err, size_t errlen);
/* Starts asking the Sentinels; after the links made by sentinel_link_new have started. */
void sentinel_start(struct sentinel *s);
/* After every link made by sentinel_link_new has been freed. */
void sentinel_free(struct sentinel *s);

/*
 * A link to the daemon's Redis, with the configured password: to the fixed address in spawn and
 * connect mode, to the current primary in sentinel mode (d->sentinel must exist then). NULL
 * with err on failure.
 */
struct rlink *sentinel_link_new(struct daemon *d, const char *name, struct rlink_hooks hooks,
                                void *ud, char *err, size_t errlen);

#endif
