/*
 * Authorisation: who a principal is, and whether the op table (ops.h) lets it make a request.
 * Nothing is allowed unless the op's row says so.
 */
#ifndef FRISTAD_AUTHZ_H
#define FRISTAD_AUTHZ_H

#include <stdbool.h>

#include <fristad/proto.h>

#include "config.h"

struct principal {
    bool valid; /* false: every request gets unauthorized */
    enum proto_role role;
    char id[PROTO_TOKEN_MAX + 1];       /* the certificate's CN */
    char name[PROTO_PRINCIPAL_MAX + 1]; /* "role:id", as audited */
    char person[PROTO_PERSON_MAX + 1];  /* who holds the certificate, valid or not: its
                                           subject's serialNumber (an HSA-id), else "sha256:"
                                           and its fingerprint; empty without a certificate */
    char why[128];                      /* when !valid: what is wrong with the certificate */
};

/* Sets the principal from a role OU and CN, checking the CN's form for that role. */
void authz_principal_set(struct principal *p, const char *role, const char *cn);

/*
 * Which part of "own" the store must still check, because only it can see the record.
 */
enum authz_scope {
    SCOPE_ANY,         /* no further check */
    SCOPE_OWN_SHELTER, /* args.shelter is the principal's shelter: checked here */
    SCOPE_OWN_RECORD,  /* the hold or placement belongs to the principal: checked by the store */
    SCOPE_OWN_MUNI,    /* social: args.municipality, if given, is its own: checked here */
    SCOPE_ONCALL_AREA, /* on-call: the responsible municipality (args.municipality, else
                          args.home) is one of its agreement ([oncall]): checked here */
};

/*
 * Checks the request against its op's row and, for on-call, the areas of cfg. Returns
 * PROTO_OK, PROTO_E_UNAUTHORIZED or PROTO_E_FORBIDDEN with a message for the person.
 */
enum proto_err authz_check(const struct principal *p, const struct proto_request *req,
                           const struct config *cfg, struct proto_error *err);

/* For documentation and tests: is (op, role) allowed at all, and with which scope? */
bool authz_allowed(enum proto_op op, enum proto_role role, enum authz_scope *scope);

#endif
