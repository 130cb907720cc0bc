/*
 * The safety policy: for each risk level, which municipalities are excluded and the minimum
 * protection level. It is configuration (conf/policy.conf); the default is DESIGN.md's table.
 */
#ifndef FRISTAD_POLICY_H
#define FRISTAD_POLICY_H

#include <stddef.h>

#include <fristad/proto.h>

#include "geo.h"

enum policy_exclude {
    EXCL_LISTED = 1u << 0,      /* the municipalities the referral lists as excluded */
    EXCL_HOME = 1u << 1,        /* the household's home municipality */
    EXCL_PERPETRATOR = 1u << 2, /* where the perpetrator is known to live or work */
    EXCL_BORDERING = 1u << 3,   /* every municipality bordering home or a perpetrator's */
    EXCL_COUNTY = 1u << 4,      /* every municipality in the county of home or a perpetrator's */
};

struct policy {
    struct {
        unsigned exclude;        /* enum policy_exclude bits */
        unsigned min_protection; /* 1..3 */
    } level[RISK__COUNT];
};

/* Reads and checks a policy file. Returns 0, or -1 with "file:line: what" in err. */
int policy_load(struct policy *p, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The municipalities a search at this risk level rules out. */
void policy_excluded(const struct policy *p, const struct geo *g, const struct proto_args *search,
                     struct muni_set *out);

#endif
