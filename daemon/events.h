/*
 * Change events: the subscriber link that keeps the index current, the version bookkeeping
 * that detects missed events, and the full reload that repairs a gap.
 */
#ifndef FRISTAD_EVENTS_H
#define FRISTAD_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

#include <msgpack.h>

struct daemon;
struct events;

struct idx_shelter;

struct events_hooks {
    void (*loaded)(void *ud); /* a full load of the index has completed */
    /* A snapshot newer than the index's copy was applied: the shelter before (NULL: new) and
     * after. Not called for the shelters of a full load. */
    void (*changed)(void *ud, const struct idx_shelter *before, const struct idx_shelter *after);
};

struct events *events_new(struct daemon *d, struct events_hooks hooks, void *ud, char *err,
                          size_t errlen);
void events_start(struct events *ev);
void events_free(struct events *ev);

/* The store is ready (after each reconnect): a wanted index reload can be made now. */
void events_store_ready(struct events *ev);

/* The change-event subscription is confirmed on a live link. */
bool events_subscribed(const struct events *ev);

/* Applies a snapshot returned by a write of this daemon (it will also arrive as an event). */
void events_apply_snapshot(struct daemon *d, const msgpack_object *snapshot);

#endif
