/*
 * The op table: one row per op of the protocol, and everything the daemon does with a request
 * comes from its row. Dispatch finds the row, authorises against it, and takes one generic
 * path per route:
 *
 *   ROUTE_INDEX  the row's `answer` packs the result from the in-memory index (answers.c);
 *   ROUTE_READ   the Redis Function `function` is called with the request's fields as one
 *   ROUTE_WRITE  msgpack map named as on the wire, plus what `extra` adds; its result is
 *                shaped by `shape` (or passed on as it is);
 *   ROUTE_STREAM the reply turns the connection into a stream of server-pushed events.
 *
 * The authorisation matrix is these rows (roles and scopes), and nothing is allowed unless a
 * row says so. Adding an op: README.md, "Adding an operation".
 */
#ifndef FRISTAD_OPS_H
#define FRISTAD_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include <fristad/proto.h>
#include <msgpack.h>

#include "authz.h"
#include "config.h"
#include "geo.h"
#include "index.h"
#include "match.h"
#include "metrics.h"
#include "policy.h"

enum op_route {
    ROUTE_INDEX,  /* answered from the in-memory index: no Redis round trip */
    ROUTE_READ,   /* one Redis Function flagged no-writes: a lost reply is "unavailable" */
    ROUTE_WRITE,  /* one Redis Function that may change state: a lost reply is "outcome unknown" */
    ROUTE_STREAM, /* the connection becomes a stream of events (watch.c) */
};

enum op_flags {
    OPF_BEFORE_LOAD = 1u << 0, /* ROUTE_INDEX: answered before the index has been loaded */
    OPF_WIRE_ONLY = 1u << 1,   /* on purpose no command in the fristad client */
};

/* Follow-up counts of searches, gathered in memory and added to the store by housekeeping. */
struct search_counts {
    uint64_t searches;
    uint64_t no_match;
    uint64_t reasons[REASON__COUNT]; /* no-match searches in which the reason ruled units out */
};

/* What an op's functions may see. */
struct op_ctx {
    enum proto_op op;
    const struct proto_args *args; /* the request's fields; NULL while shaping a store reply */
    const struct principal *who;
    const struct index *index;
    const struct geo *geo;
    const struct policy *policy;
    const struct config *cfg;
    const struct metrics *metrics;
    unsigned connections;         /* open now */
    struct search_counts *counts; /* searches count themselves here */
    int64_t now_ms;               /* wall clock: data ages and freshness */
    int64_t mono_ms;              /* monotonic clock: uptime */
    /*
     * Writes the audit entry of a disclosure of the intake phone in this request; false when
     * it cannot be written (the store is down), and then the phone is not disclosed.
     */
    bool (*audit_disclosure)(const struct op_ctx *x);
    void *ud; /* for audit_disclosure */
};

/* Arguments the daemon adds to a request's own fields before calling its store function. */
#define OP_EXTRA_MAX 6
struct op_extra {
    uint64_t drop; /* request fields (PROTO_BIT) left out, because an extra replaces them */
    unsigned n;
    struct {
        const char *key;
        const char *str; /* a string, or NULL for the number */
        int64_t num;
    } kv[OP_EXTRA_MAX];
    char buf[OP_EXTRA_MAX][PROTO_TOKEN_MAX + 1]; /* room for the strings */
};

/* Store routes: what the daemon checks against its index before the store is asked. */
typedef enum proto_err op_check_fn(const struct op_ctx *x, struct proto_error *err);
/* ROUTE_INDEX: packs exactly one result object, or returns an error code with err set. */
typedef enum proto_err op_answer_fn(const struct op_ctx *x, msgpack_packer *pk,
                                    struct proto_error *err);
/* Store routes: fills the extras. Returns 0, or -1 when the request cannot be made. */
typedef int op_extra_fn(const struct op_ctx *x, struct op_extra *out);
/* Store routes: packs exactly one result object from the function's result and snapshot. */
typedef int op_shape_fn(const struct op_ctx *x, const msgpack_object *result,
                        const msgpack_object *snapshot, msgpack_packer *pk);

struct op_def {
    enum op_route route;
    unsigned roles;                      /* bit per enum proto_role allowed */
    enum authz_scope scope[ROLE__COUNT]; /* what "own" means for each allowed role */
    unsigned flags;                      /* enum op_flags */
    const char *function;                /* store routes: the Redis Function fristad_<function> */
    op_answer_fn *answer;                /* ROUTE_INDEX */
    op_check_fn *check;                  /* store routes: NULL when Redis alone decides */
    op_extra_fn *extra;                  /* store routes: NULL when the request's fields suffice */
    op_shape_fn *shape;                  /* store routes: NULL passes the result on as it is */
};

/* The row of an op; NULL for a value that is not an op. */
const struct op_def *ops_get(enum proto_op op);

/*
 * A new hold ('h') or placement ('p') id: the prefix and 16 letters. Returns 0, or -1 when the
 * kernel's random source fails.
 */
int ops_new_id(char prefix, char out[PROTO_ID_LEN + 1]) __attribute__((warn_unused_result));

/* Packs the argument map of a store call: the request's fields and the row's extras. */
int ops_pack_args(const struct op_ctx *x, const struct op_def *row, msgpack_packer *pk)
    __attribute__((warn_unused_result));

#endif
