/*
 * The store: Redis Functions (fristad.lua) called over the command link. Loads the function
 * library on every connect, maps results and failures to protocol error codes, bounds how long
 * a request may wait for Redis, and, when configured, waits for replicas before a write counts.
 */
#ifndef FRISTAD_STORE_H
#define FRISTAD_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include <fristad/proto.h>
#include <msgpack.h>

struct daemon;
struct store;

struct store_result {
    enum proto_err err;             /* PROTO_OK or the code to answer with */
    const char *msg;                /* when err: for the person */
    const msgpack_object *result;   /* when ok: the function's result */
    const msgpack_object *snapshot; /* the changed shelter's snapshot, or NULL */
    bool replay;                    /* an idempotent retry answered from the first result */
};

/* Runs exactly once per successful store_call, with the result valid only during the call. */
typedef void store_cb(const struct store_result *res, void *ud);

enum store_kind {
    STORE_READ,  /* nothing changes: a lost reply means "unavailable" */
    STORE_WRITE, /* may have changed state: a lost reply means "outcome unknown" */
};

struct store_hooks {
    /* The function library is loaded and the records are in the current layout: after every
     * (re)connect. */
    void (*ready)(void *ud);
};

struct store *store_new(struct daemon *d, struct store_hooks hooks, void *ud, char *err,
                        size_t errlen);
void store_start(struct store *st);
void store_free(struct store *st);
/* Connected and the function library is loaded. */
bool store_ready(const struct store *st);
/* Requests in flight to Redis. */
unsigned store_inflight(const struct store *st);

/*
 * Calls the Redis Function fristad_<fn> for `op` as `caller`, with `args`: one packed msgpack
 * map of arguments named as on the wire (NULL for none). Returns 0 when sent (cb runs later,
 * exactly once), or -1 when the store is not ready (cb never runs; answer "unavailable").
 * cb may be NULL for fire-and-forget calls.
 */
int store_call(struct store *st, const char *fn, enum store_kind kind, const char *caller,
               const char *op, const char *args, size_t args_len, store_cb *cb, void *ud)
    __attribute__((warn_unused_result));

/*
 * Who a store call is made for, as the envelope tells fristad.lua. Only `name` is required.
 */
struct store_caller {
    const char *name;   /* the principal "role:id", or the daemon's own "system:..." */
    const char *person; /* who holds the certificate (audited as `person`); NULL: the name */
    const char *area;   /* on-call: the municipality codes it acts for, comma-separated ("" for
                           none); NULL for every other caller */
    bool quiet_refusal; /* a refusal is counted by the daemon, not audited one by one */
};

/* store_call with the whole caller. */
int store_call_as(struct store *st, const char *fn, enum store_kind kind,
                  const struct store_caller *who, const char *op, const char *args, size_t args_len,
                  store_cb *cb, void *ud) __attribute__((warn_unused_result));

/*
 * A plain read-only command on the store link, for what needs no function: the full load of
 * the index reads the stored snapshots with SSCAN and MGET. `cb` runs exactly once, with the
 * reply, or with NULL when the link was lost or Redis answered an error (logged). Returns 0
 * when sent, or -1 when the store is not ready (cb never runs).
 */
struct redisReply;
typedef void store_reply_cb(const struct redisReply *reply, void *ud);
int store_read(struct store *st, int argc, const char **argv, const size_t *lens,
               store_reply_cb *cb, void *ud) __attribute__((warn_unused_result));

/*
 * Asks Redis to rewrite its append-only file, so that deleted records leave the disk too.
 * Returns 0 when sent (cb runs once: PROTO_OK, or an error when Redis refused, for instance
 * because a rewrite is already under way), or -1 when the store is not ready.
 */
int store_rewrite_aof(struct store *st, store_cb *cb, void *ud) __attribute__((warn_unused_result));

/* Runs once per successful store_exists: 1 the key exists, 0 it does not, -1 unknown (the link
 * was lost or Redis refused). */
typedef void store_exists_cb(int exists, void *ud);

/*
 * Asks whether the key "{namespace}:<suffix>" exists (a record, named as in fristad.lua's key
 * layout). Returns 0 when sent (cb runs once), or -1 when the store is not ready.
 */
int store_exists(struct store *st, const char *suffix, store_exists_cb *cb, void *ud)
    __attribute__((warn_unused_result));

enum store_aof_status {
    STORE_AOF_BUSY,   /* a rewrite is under way or scheduled */
    STORE_AOF_DONE,   /* none is; the last one succeeded */
    STORE_AOF_FAILED, /* none is; the last one failed, or Redis could not say */
};

typedef void store_aof_cb(enum store_aof_status status, void *ud);

/*
 * Asks Redis (INFO persistence) whether an append-only file rewrite is still under way.
 * Returns 0 when sent (cb runs once), or -1 when the store is not ready.
 */
int store_aof_rewrite_status(struct store *st, store_aof_cb *cb, void *ud)
    __attribute__((warn_unused_result));

#endif
