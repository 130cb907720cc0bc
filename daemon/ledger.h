/*
 * The ledger of acknowledged writes: the ids of the holds and placements this daemon has
 * recently answered "ok" about, kept in a bounded ring. After every reconnect to the store (a
 * failover to another primary, a restarted Redis) each of them is looked up; one that the store
 * no longer has is a write somebody was told had happened and that is now lost. It is logged,
 * with its id (ids are the daemon's own random tokens, never personal data), and counted in the
 * stats (server.acked_missing).
 *
 * An id is kept for 15 minutes, and never longer than the reference retention less a margin: a
 * closed record may be deleted on purpose once its retention has passed, and that must not
 * count as lost.
 */
#ifndef FRISTAD_LEDGER_H
#define FRISTAD_LEDGER_H

#include <stdint.h>

#include <msgpack.h>

struct daemon;
struct ledger;

struct ledger *ledger_new(struct daemon *d);
void ledger_free(struct ledger *lg);

/*
 * Notes the hold and placement a successful write's result names: a "hold" or "placement"
 * field that is an id, or a map holding that id under the same name. mono_ms: now, monotonic.
 */
void ledger_note(struct ledger *lg, const msgpack_object *result, int64_t mono_ms);

/* Looks every noted id up in the store (after a reconnect); logs and counts the missing ones. */
void ledger_verify(struct ledger *lg);

#endif
