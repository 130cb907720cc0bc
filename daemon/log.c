/*
 * Logging. Lines carry the level and message; connection-scoped lines are prefixed by conn_log
 * (conn.c) with the connection id and principal. Nothing here knows about requests: callers
 * never pass a referral reference, phone number or free text from a request.
 *
 * On stderr a line normally starts with its time, the program and its pid. When stderr is
 * the journal's stream (systemd sets JOURNAL_STREAM to its device and inode), the journal
 * stamps every line itself, so a line carries only a "<N>" syslog priority prefix, which
 * journald strips and stores as the entry's priority: `journalctl -p warning` then works, and
 * each line has one timestamp.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level current_level = LOG_LVL_INFO;
static enum log_target current_target = LOG_TARGET_STDERR;
static bool syslog_open;
static bool journal_stream; /* stderr is connected to journald */

static const char *const level_names[] = {"error", "warning", "notice", "info", "debug"};
static const int priorities[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};

bool log_stderr_is_journal(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!v || sscanf(v, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(enum log_level level, enum log_target target)
{
    current_level = level;
    if (target == LOG_TARGET_SYSLOG && !syslog_open) {
        openlog("fristadd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        syslog_open = true;
    }
    current_target = target;
    journal_stream = log_stderr_is_journal();
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
    /* One line per entry, whatever a message holds. */
    for (char *p = msg; *p; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }

    if (current_target == LOG_TARGET_SYSLOG) {
        syslog(priorities[level], "%s", msg);
        return;
    }
    if (journal_stream) {
        fprintf(stderr, "<%d>%s: %s\n", priorities[level], level_names[level], msg);
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
