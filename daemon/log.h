/* Logging: levels, printf-checked macros, stderr (plain or the journal's stream) or syslog. */
#ifndef FRISTAD_LOG_H
#define FRISTAD_LOG_H

#include <stdbool.h>

enum log_level {
    LOG_LVL_ERROR,   /* something failed that an operator must look at */
    LOG_LVL_WARNING, /* something failed and was handled */
    LOG_LVL_NOTICE,  /* start, stop, reload, readiness: always worth a line */
    LOG_LVL_INFO,    /* Redis link changes, index loads; never a line per connection */
    LOG_LVL_DEBUG,   /* per-connection and per-request detail; still never personal data */
};

enum log_target { LOG_TARGET_STDERR, LOG_TARGET_SYSLOG };

/* Also looks again whether stderr is the journal's stream (see log.c). */
void log_setup(enum log_level level, enum log_target target);
/* True when stderr is connected to journald (JOURNAL_STREAM names it). */
bool log_stderr_is_journal(void);
/* Returns -1 for an unknown name. */
int log_level_parse(const char *name);
bool log_enabled(enum log_level level);
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...)   log_write(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warning(...) log_write(LOG_LVL_WARNING, __VA_ARGS__)
#define log_notice(...)  log_write(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...)                                                                              \
    do {                                                                                           \
        if (log_enabled(LOG_LVL_INFO))                                                             \
            log_write(LOG_LVL_INFO, __VA_ARGS__);                                                  \
    } while (0)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LVL_DEBUG))                                                            \
            log_write(LOG_LVL_DEBUG, __VA_ARGS__);                                                 \
    } while (0)

#endif
