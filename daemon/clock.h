/*
 * Time. Two clocks, never mixed:
 *   monotonic  for every deadline, timeout, rate limit, watchdog and drain: it never steps, so
 *              an NTP correction or a restored VM cannot stall or trip them;
 *   wall       for timestamps that are stored or shown (updated_at, audit entries, data age).
 */
#ifndef FRISTAD_CLOCK_H
#define FRISTAD_CLOCK_H

#include <stdint.h>

/* Milliseconds on the monotonic clock (an arbitrary origin; only differences mean anything). */
int64_t clock_mono_ms(void);
/* Microseconds on the monotonic clock, for latencies. */
int64_t clock_mono_us(void);
/* Milliseconds since 1970-01-01 UTC. */
int64_t clock_wall_ms(void);

#endif
