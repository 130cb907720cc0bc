/*
 * redis.mode = spawn: a private redis-server as a child process, with its data, AOF and unix
 * socket in the daemon's data directory. Restarted if it dies; stopped when the daemon stops.
 */
#ifndef FRISTAD_SPAWN_H
#define FRISTAD_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

struct daemon;
struct spawn;

/* Creates the data directory and locks it against a second daemon. NULL with err on failure. */
struct spawn *spawn_new(struct daemon *d, char *err, size_t errlen);
int spawn_start(struct spawn *sp, char *err, size_t errlen) __attribute__((warn_unused_result));
/* From the SIGCHLD handler: a child ended. Returns 1 if it was ours. */
int spawn_reaped(struct spawn *sp, pid_t pid, int status);
/* Stops the child (SIGTERM, then SIGKILL after a grace period) and waits for it. */
void spawn_stop(struct spawn *sp);
void spawn_free(struct spawn *sp);

#endif
