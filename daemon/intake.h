/*
 * Intake hours in Swedish local time: whether a shelter can receive a household at a moment,
 * and when it next can. Local time is Europe/Stockholm from the system's time zone database,
 * daylight saving included; intake_tz_setup makes it the process's local time at start (the
 * daemon logs in UTC, so nothing else depends on it).
 */
#ifndef FRISTAD_INTAKE_H
#define FRISTAD_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fristad/proto.h>

/* Returns 0, or -1 when the time zone database has no Europe/Stockholm. */
int intake_tz_setup(void) __attribute__((warn_unused_result));

/* True when the shelter receives at `ms` (milliseconds since 1970). */
bool intake_open_at(const struct proto_intake *in, int64_t ms);

/* A moment as local weekday (0 Monday) and minute of the day: what intake hours are in. */
struct intake_moment {
    int wday, minute;
};

/* The local moment of `ms`, worked out once for the many shelters of one search. */
void intake_moment_of(int64_t ms, struct intake_moment *out);
/* The same as intake_open_at, at a moment already worked out. */
bool intake_open_in(const struct proto_intake *in, const struct intake_moment *at);

/*
 * `ms` itself when the shelter receives then; otherwise the next moment it does (within the
 * coming eight days), or -1 when it never does.
 */
int64_t intake_next_open(const struct proto_intake *in, int64_t ms);

/* "2026-11-27T08:00:00+01:00": a moment in Swedish local time with its offset. */
int intake_format_time(int64_t ms, char *buf, size_t cap);

#endif
