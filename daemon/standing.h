/*
 * Standing searches in memory. A social worker with nothing that fits at 03:00 registers the
 * referral (standing.add); every daemon keeps the active ones here, and when a change makes a
 * unit available (freed, a shelter resuming intake or changing what it takes) it checks that
 * unit against the standing searches it can matter to, with the search's own predicate, and
 * reports each fit to the store, which sends one `match` event to whoever registered it
 * (several daemons reporting the same fit send one). Nothing is ever held by itself.
 */
#ifndef FRISTAD_STANDING_H
#define FRISTAD_STANDING_H

#include "feed.h"
#include "index.h"

struct daemon;
struct standing;

struct standing *standing_new(struct daemon *d);
void standing_free(struct standing *st);

/* Loads every active standing search from the store (when the store is ready). */
void standing_load(struct standing *st);

/* An event of the log: a standing search began or ended. */
void standing_on_event(struct standing *st, const struct event *e);

/*
 * A shelter changed (an incremental update of the index): `before` is its copy from before the
 * change, or NULL when it is new. Units that became available are checked.
 */
void standing_shelter_changed(struct standing *st, const struct idx_shelter *before,
                              const struct idx_shelter *after);

/* Active standing searches held in memory. */
unsigned standing_count(const struct standing *st);

#endif
