/*
 * Logging. Lines carry the time, level and message; connection-scoped lines are prefixed by
 * conn_log (conn.h) with the connection id and principal. Nothing here knows about requests:
 * callers never pass a referral reference, phone number or free text from a request.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level current_level = LOG_LVL_INFO;
static enum log_target current_target = LOG_TARGET_STDERR;
static bool syslog_open;

static const char *const level_names[] = {"error", "warning", "notice", "info", "debug"};

void log_setup(enum log_level level, enum log_target target)
{
    current_level = level;
    if (target == LOG_TARGET_SYSLOG && !syslog_open) {
        openlog("fristadd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        syslog_open = true;
    }
    current_target = target;
}

int log_level_parse(const char *name)
{
    for (unsigned i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    }
    return -1;
}

bool log_enabled(enum log_level level)
{
    return level <= current_level;
}

void log_write(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    if (current_target == LOG_TARGET_SYSLOG) {
        static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};
        syslog(prio[level], "%s", msg);
        return;
    }
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ fristadd[%d] %s: %s\n", when, ts.tv_nsec / 1000000L, (int)getpid(),
            level_names[level], msg);
}
