/*
 * Authorisation: who a principal is, and the check of a request against its op's row in the
 * op table (ops.c), whose roles and scopes are the matrix of proto/PROTOCOL.md section 6.
 * Scopes the daemon can check from the request alone are checked here; ownership of holds and
 * placements is checked inside the store function, which reads the record in the same atomic
 * step as the change.
 */
#include <stdio.h>
#include <string.h>

#include "authz.h"
#include "oncall.h"
#include "ops.h"

bool authz_allowed(enum proto_op op, enum proto_role role, enum authz_scope *scope)
{
    const struct op_def *row = ops_get(op);
    if (!row || (unsigned)role >= ROLE__COUNT || !(row->roles & (1u << role)))
        return false;
    if (scope)
        *scope = row->scope[role];
    return true;
}

static bool id_chars(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (i > 0 && (c == '-' || c == '_' || c == '.'));
        if (!ok)
            return false;
    }
    return true;
}

void authz_principal_set(struct principal *p, const char *role, const char *cn)
{
    memset(p, 0, sizeof *p);
    int r = proto_role_parse(role, strlen(role));
    if (r < 0) {
        snprintf(p->why, sizeof p->why, "the certificate's OU names no role");
        return;
    }
    size_t max = r == ROLE_SHELTER ? PROTO_ID_MAX : PROTO_TOKEN_MAX;
    if (!id_chars(cn, max)) {
        snprintf(p->why, sizeof p->why, "the certificate's CN is not a valid %s id", role);
        return;
    }
    if (r == ROLE_SOCIAL && proto_municipality_index(cn, strlen(cn)) < 0) {
        snprintf(p->why, sizeof p->why,
                 "a social services certificate's CN must be a municipality code");
        return;
    }
    if (proto_has_personal_number(cn, strlen(cn))) {
        snprintf(p->why, sizeof p->why, "the certificate's CN looks like a personal number");
        return;
    }
    p->role = (enum proto_role)r;
    snprintf(p->id, sizeof p->id, "%s", cn);
    snprintf(p->name, sizeof p->name, "%s:%s", role, cn);
    p->valid = true;
}

enum proto_err authz_check(const struct principal *p, const struct proto_request *req,
                           const struct config *cfg, struct proto_error *err)
{
    enum authz_scope scope;
    if (!p->valid)
        return proto_fail(err, PROTO_E_UNAUTHORIZED, "%s", p->why);
    if (!authz_allowed(req->op, p->role, &scope))
        return proto_fail(err, PROTO_E_FORBIDDEN, "the %s role may not use '%s'",
                          proto_role_name(p->role), proto_op_name(req->op));
    const struct proto_args *a = &req->args;
    switch (scope) {
    case SCOPE_OWN_SHELTER:
        if (strcmp(a->shelter, p->id) != 0)
            return proto_fail(err, PROTO_E_FORBIDDEN, "a shelter may act only on its own units");
        break;
    case SCOPE_OWN_MUNI:
        if (proto_has(a, F_MUNICIPALITY) && strcmp(a->municipality, p->id) != 0)
            return proto_fail(err, PROTO_E_FORBIDDEN,
                              "social services hold units only for their own municipality");
        break;
    case SCOPE_ONCALL_AREA: {
        const char *mun = proto_has(a, F_MUNICIPALITY) ? a->municipality : a->home;
        if (!cfg || !oncall_serves(cfg, p->id, mun))
            return proto_fail(err, PROTO_E_FORBIDDEN,
                              "the on-call service acts only for the municipalities of its "
                              "agreement; %s is not one of them",
                              mun);
        break;
    }
    case SCOPE_ANY:
    case SCOPE_OWN_RECORD:
        break;
    }
    return PROTO_OK;
}
