/*
 * Times for people: the server counts milliseconds since 1970 (UTC); people read and type
 * local time. Tables show local time with its zone ("2026-11-22 14:05 CET"), JSON shows
 * ISO 8601 with the offset ("2026-11-22T14:05:09.123+01:00"), and a time typed without an
 * offset is read in the same local time (TZ) that tables show.
 */
#ifndef FRISTAD_CLIENT_TIMES_H
#define FRISTAD_CLIENT_TIMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ISO 8601 local time with milliseconds and offset. Returns buf, or NULL when out of range. */
const char *times_iso(int64_t ms, char *buf, size_t cap);

/*
 * A point in time as the user typed it: YYYY-MM-DD (local midnight), YYYY-MM-DDTHH:MM[:SS[.f]]
 * in local time, the same with Z or +HH:MM, an age before `now_ms` (30m, 2h, 7d, 1w), or
 * milliseconds since 1970. A local time the clocks skip (spring forward) or pass twice (fall
 * back) is refused: `why` then says so and how to write it with an offset. Returns false with
 * `why` set when the text is none of these.
 */
bool times_parse(const char *text, int64_t now_ms, int64_t *ms, char *why, size_t cap);

#endif
