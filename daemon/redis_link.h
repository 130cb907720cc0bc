/*
 * One hiredis async connection with reconnect and backoff. The only module that touches the
 * hiredis connection lifecycle; store.c and events.c each own one link to the primary, and
 * sentinel.c two to each Sentinel.
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

/* Where a link connects when that can change (sentinel mode): asked before every attempt. */
struct rlink_source {
    /* Writes "host:port" (or "unix:/path") and returns 0, or returns -1 when no server is known
     * now; the link then asks again after its backoff. */
    int (*address)(void *ud, char *out, size_t cap);
    /* An attempt failed, the server was not a primary, or an open connection was lost: the
     * address may be stale. May be NULL. */
    void (*failed)(void *ud);
    void *ud;
};

struct rlink_opts {
    const char *password;        /* AUTH with this after connecting; NULL or "": none */
    bool primary_only;           /* ROLE must say "master", or the link drops and retries */
    unsigned connect_timeout_ms; /* 0: the default (2 s) */
    struct rlink_source source;  /* address NULL: the fixed address given to rlink_new */
};

/*
 * address: "unix:/path/to/sock" or "host:port" (host resolved once, here), or NULL when a
 * source given to rlink_configure names it. Returns NULL with a reason in err.
 */
struct rlink *rlink_new(struct event_base *base, const char *name, const char *address,
                        struct rlink_hooks hooks, void *ud, char *err, size_t errlen);
/* Options for every connect from now on; before rlink_start. The password is copied. */
void rlink_configure(struct rlink *l, const struct rlink_opts *opts);
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
 * The address has changed: drops the connection or the attempt under way (pending callbacks
 * run with NULL, and `down` runs if the link was up) and connects to the source's address at
 * once, without backoff. Not from inside a hiredis callback of this link.
 */
void rlink_retarget(struct rlink *l);

/*
 * Sends one command. Returns 0 when sent: `fn` then runs exactly once, with a NULL reply if the
 * link is lost first. Returns -1 when the link is down or the send failed: `fn` never runs.
 */
int rlink_command(struct rlink *l, redisCallbackFn *fn, void *privdata, int argc, const char **argv,
                  const size_t *argvlen) __attribute__((warn_unused_result));

#endif
