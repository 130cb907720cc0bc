/*
 * Housekeeping on a timer: the sweep that expires holds and deletes records whose reference
 * retention has passed (in archive mode: appends them to the archive first, and has them
 * deleted only once they are on disk), the append-only file rewrite that takes deleted records
 * off the disk, and the flush of the follow-up counts that searches gather in memory.
 */
#ifndef FRISTAD_HOUSEKEEPING_H
#define FRISTAD_HOUSEKEEPING_H

struct daemon;
struct housekeeping;

struct housekeeping *housekeeping_new(struct daemon *d);
/* (Re)arms the timer at the configured sweep interval: at start and after a reload. */
void housekeeping_arm(struct housekeeping *hk);
/* Sends the follow-up counts gathered so far (at shutdown). */
void housekeeping_flush_counts(struct housekeeping *hk);
void housekeeping_free(struct housekeeping *hk);

#endif
