/*
 * A shifted wall clock for integration tests. Preloaded (LD_PRELOAD) into redis-server and
 * fristadd, it moves the wall clock by the number of seconds written in the file named by
 * TIMESHIFT_FILE ("+86400", "-30.5"), as the file says at the moment of asking (it is read on
 * every call: a test steps the clock and at once sends a request that must see the step), so
 * every process that has it sees the same fake time and a test can walk them through the
 * months. A test replaces the file by rename, so that a reader never sees half of it. The monotonic
 * clocks are left alone, as the daemon's deadlines run on them.
 *
 * Debian's libfaketime does this for the daemon (test_clock.py), but not for redis-server:
 * it is linked with jemalloc, which calls clock_gettime() while libfaketime is still looking
 * its own symbols up, and the two never get past that (libfaketime issue #130). This file asks
 * the kernel directly and allocates nothing.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int64_t shift_ns; /* the shift last read: kept when the file cannot be read */

/* "+123.456" or "-7" in seconds, as nanoseconds; 0 for anything else. */
static int64_t parse_shift(const char *s, long n)
{
    int64_t whole = 0, frac = 0, scale = 1000000000LL;
    int sign = 1;
    long i = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        sign = s[i++] == '-' ? -1 : 1;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        whole = whole * 10 + (s[i] - '0');
    if (i < n && s[i] == '.') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9' && scale > 1; i++) {
            scale /= 10;
            frac += (s[i] - '0') * scale;
        }
    }
    return sign * (whole * 1000000000LL + frac);
}

static int64_t current_shift(void)
{
    const char *path = getenv("TIMESHIFT_FILE");
    if (path) {
        char buf[64];
        long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            long n = syscall(SYS_read, fd, buf, sizeof buf);
            syscall(SYS_close, fd);
            if (n > 0)
                __atomic_store_n(&shift_ns, parse_shift(buf, n), __ATOMIC_RELAXED);
        }
    }
    return __atomic_load_n(&shift_ns, __ATOMIC_RELAXED);
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
    if (syscall(SYS_clock_gettime, clk, ts) != 0)
        return -1;
    if (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE) {
        int64_t t = (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec + current_shift();
        ts->tv_sec = (time_t)(t / 1000000000LL);
        ts->tv_nsec = (long)(t % 1000000000LL);
    }
    return 0;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    (void)tz;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    tv->tv_sec = ts.tv_sec; /* glibc declares tv non-null */
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *out)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (time_t)-1;
    if (out)
        *out = ts.tv_sec;
    return ts.tv_sec;
}
