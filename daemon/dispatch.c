/*
 * From a validated request to its reply, by its row in the op table: authorise, then one
 * generic path per route. Reads from the index never touch Redis. A store call sends the
 * request's fields named as on the wire; when a write succeeds, its snapshot is applied to this
 * daemon's index before the reply goes out, so the client that made a change sees it in its
 * next request.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conn.h"
#include "dispatch.h"
#include "events.h"
#include "ledger.h"
#include "oncall.h"
#include "ops.h"
#include "refusals.h"
#include "store.h"
#include "watch.h"

/* A request at the store, until its function answers. */
struct pending_req {
    struct request *r;
    struct daemon *d;
    enum proto_op op;
    bool quiet; /* a refusal is counted here: the store was told not to audit it */
};

static struct op_ctx context(struct daemon *d, enum proto_op op, const struct principal *who,
                             const struct proto_args *args)
{
    return (struct op_ctx){
        .op = op,
        .args = args,
        .who = who,
        .index = &d->index,
        .geo = d->geo,
        .policy = &d->policy,
        .cfg = d->cfg,
        .metrics = &d->metrics,
        .connections = conn_count(),
        .counts = &d->counts,
        .now_ms = clock_wall_ms(),
        .mono_ms = clock_mono_ms(),
    };
}

static const char *audit_name(const struct principal *who)
{
    return who->valid ? who->name : "unknown:certificate";
}

/*
 * Counts a refusal of this person; true when it is to be audited on its own, false when its
 * person has had refusals_per_window of them recorded in this window already (refusals.h).
 */
static bool refusal_recorded(struct daemon *d, const struct principal *who, enum proto_err code)
{
    return refusals_count(d->refusals, audit_name(who), who->person, proto_err_code(code),
                          clock_wall_ms(), d->cfg->refusal_window_ms, d->cfg->refusals_per_window);
}

/*
 * Records in the audit trail something decided here rather than in a store function: a
 * refusal, or a disclosure of an intake phone. Returns false when the entry could not be sent
 * (the store is down).
 */
static bool audit_note(struct daemon *d, const struct principal *who,
                       const struct proto_request *req, const char *result, bool phone)
{
    static const enum proto_field targets[] = {F_SHELTER, F_UNIT, F_HOLD, F_PLACEMENT};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    uint64_t mask = 0;
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
        mask |= PROTO_BIT(targets[i]);
    mask &= req->args.present;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 1 + (size_t)__builtin_popcountll(mask) + (phone ? 1 : 0));
    rc |= proto_pack_kv_str(&pk, "result", result);
    rc |= proto_pack_fields(&pk, &req->args, mask);
    if (phone)
        rc |= proto_pack_kv_str(&pk, "phone", "disclosed");
    struct store_caller caller = {.name = audit_name(who),
                                  .person = who->person[0] ? who->person : NULL};
    bool sent = rc == 0 && store_call_as(d->store, "audit_note", STORE_WRITE, &caller,
                                         proto_op_name(req->op), sb.data, sb.size, NULL, NULL) == 0;
    msgpack_sbuffer_destroy(&sb);
    if (!sent)
        log_warning("audit entry for '%s' (%s) could not be written: store down",
                    proto_op_name(req->op), result);
    return sent;
}

struct disclosure {
    struct daemon *d;
    const struct proto_request *req;
};

static bool audit_disclosure(const struct op_ctx *x)
{
    const struct disclosure *ds = x->ud;
    return audit_note(ds->d, x->who, ds->req, "ok", true);
}

static void answer_from_index(struct daemon *d, struct request *r, const struct op_def *row,
                              const struct proto_request *req)
{
    if (!(row->flags & OPF_BEFORE_LOAD) && !d->index.loaded) {
        request_error(r, PROTO_E_UNAVAILABLE,
                      "the server is still loading its data; retry in a moment");
        return;
    }
    struct disclosure ds = {d, req};
    struct op_ctx x = context(d, req->op, request_principal(r), &req->args);
    x.audit_disclosure = audit_disclosure;
    x.ud = &ds;
    msgpack_packer *pk = request_reply(r);
    if (!pk)
        return;
    struct proto_error err = {0};
    enum proto_err e = row->answer(&x, pk, &err);
    if (e != PROTO_OK)
        request_error(r, e, err.message);
    else
        request_send(r);
}

static void on_store(const struct store_result *res, void *ud)
{
    struct pending_req *p = ud;
    struct daemon *d = p->d;
    const struct op_def *row = ops_get(p->op);

    if (res->err == PROTO_OK && res->snapshot)
        events_apply_snapshot(d, res->snapshot);
    /* A write the store refused: it audited it, unless told to leave the counting here. */
    if (row->route == ROUTE_WRITE) {
        bool refused = res->err != PROTO_OK && res->err != PROTO_E_UNAVAILABLE &&
                       res->err != PROTO_E_OUTCOME_UNKNOWN && res->err != PROTO_E_INTERNAL;
        const struct principal *who = request_principal(p->r);
        refusals_answered(d->refusals, audit_name(who), who->person,
                          refused ? proto_err_code(res->err) : NULL, p->quiet, clock_wall_ms(),
                          d->cfg->refusal_window_ms);
    }
    if (res->err != PROTO_OK) {
        request_error(p->r, res->err, res->msg);
    } else {
        struct op_ctx x = context(d, p->op, request_principal(p->r), NULL);
        msgpack_packer *pk = request_reply(p->r);
        int rc = 0;
        if (pk) {
            rc = row->shape ? row->shape(&x, res->result, res->snapshot, pk)
                            : msgpack_pack_object(pk, *res->result);
            if (rc == 0) {
                if (row->route == ROUTE_WRITE)
                    ledger_note(d->ledger, res->result, clock_mono_ms());
                request_send(p->r);
            } else {
                request_error(p->r, PROTO_E_INTERNAL, "the change was made but cannot be shown");
            }
        }
    }
    free(p);
}

static void call_store(struct daemon *d, struct request *r, const struct op_def *row,
                       const struct proto_request *req)
{
    const struct principal *who = request_principal(r);
    struct op_ctx x = context(d, req->op, who, &req->args);
    struct proto_error err = {0};
    enum proto_err e = row->check ? row->check(&x, &err) : PROTO_OK;
    if (e != PROTO_OK) {
        if (refusal_recorded(d, who, e))
            (void)audit_note(d, who, req, proto_err_code(e), false);
        request_error(r, e, err.message);
        return;
    }
    struct pending_req *p = calloc(1, sizeof *p);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (!p || ops_pack_args(&x, row, &pk) < 0) {
        free(p);
        msgpack_sbuffer_destroy(&sb);
        request_error(r, PROTO_E_INTERNAL, "this request could not be prepared");
        return;
    }
    enum store_kind kind = row->route == ROUTE_WRITE ? STORE_WRITE : STORE_READ;
    bool quiet = kind == STORE_WRITE &&
                 refusals_send(d->refusals, audit_name(who), who->person, clock_wall_ms(),
                               d->cfg->refusal_window_ms, d->cfg->refusals_per_window);
    *p = (struct pending_req){r, d, req->op, quiet};
    struct store_caller caller = {.name = who->name, .person = who->person, .quiet_refusal = quiet};
    char area[ONCALL_AREA_TEXT_MAX + 1];
    if (who->role == ROLE_ONCALL) {
        if (oncall_area_text(d->cfg, who->id, area, sizeof area) < 0)
            area[0] = '\0';
        caller.area = area; /* the store shows and releases records of these alone */
    }
    int sent = store_call_as(d->store, row->function, kind, &caller, proto_op_name(req->op),
                             sb.data, sb.size, on_store, p);
    msgpack_sbuffer_destroy(&sb);
    if (sent != 0) {
        if (kind == STORE_WRITE)
            refusals_answered(d->refusals, audit_name(who), who->person, NULL, quiet,
                              clock_wall_ms(), d->cfg->refusal_window_ms);
        free(p);
        request_error(r, PROTO_E_UNAVAILABLE,
                      "the store cannot be reached right now; nothing was done, retry later");
    }
}

void dispatch_request(struct request *r, const struct proto_request *req, void *ud)
{
    struct daemon *d = ud;
    const struct principal *who = request_principal(r);
    const struct op_def *row = ops_get(req->op);
    struct proto_error err = {0};
    enum proto_err e = authz_check(who, req, d->cfg, &err);
    if (e != PROTO_OK) {
        request_log(r, LOG_LVL_DEBUG, "refused '%s': %s", proto_op_name(req->op),
                    proto_err_code(e));
        if (refusal_recorded(d, who, e))
            (void)audit_note(d, who, req, proto_err_code(e), false);
        request_error(r, e, err.message); /* last: it finishes the request */
        return;
    }
    switch (row->route) {
    case ROUTE_INDEX:
        answer_from_index(d, r, row, req);
        return;
    case ROUTE_STREAM:
        watch_start(d->watch, r, req);
        return;
    case ROUTE_READ:
    case ROUTE_WRITE:
        call_store(d, r, row, req);
        return;
    }
}
