/*
 * One hiredis async connection with reconnect and backoff. The only module that touches the
 * hiredis connection lifecycle; store.c and events.c each own one link.
 */
#ifndef FRISTAD_REDIS_LINK_H
#define FRISTAD_REDIS_LINK_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <hiredis/async.h>

struct rlink;

struct rlink_hooks {
    void (*up)(struct rlink *l, void *ud);   /* connected; send set-up commands now */
    void (*down)(struct rlink *l, void *ud); /* lost; pending callbacks already ran with NULL */
};

/*
 * address: "unix:/path/to/sock" or "host:port" (host resolved once, here).
 * Returns NULL with a reason in err.
 */
struct rlink *rlink_new(struct event_base *base, const char *name, const char *address,
                        struct rlink_hooks hooks, void *ud, char *err, size_t errlen);
void rlink_start(struct rlink *l);
/* Frees the link; pending callbacks run with a NULL reply. Not from inside a hiredis callback. */
void rlink_free(struct rlink *l);
bool rlink_is_up(const struct rlink *l);
/*
 * Drops the connection at once (pending callbacks run with NULL) and reconnects after the usual
 * backoff. For a server that stopped answering. Not from inside a hiredis callback.
 */
void rlink_reset(struct rlink *l);

/*
 * Sends one command. Returns 0 when sent: `fn` then runs exactly once, with a NULL reply if the
 * link is lost first. Returns -1 when the link is down or the send failed: `fn` never runs.
 */
int rlink_command(struct rlink *l, redisCallbackFn *fn, void *privdata, int argc, const char **argv,
                  const size_t *argvlen) __attribute__((warn_unused_result));

#endif
