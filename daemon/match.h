/*
 * Matching a referral against the index: eligibility under the safety policy and the
 * household's needs, the reasons free units were ruled out, and the ranking.
 */
#ifndef FRISTAD_MATCH_H
#define FRISTAD_MATCH_H

#include <stdbool.h>
#include <stdint.h>

#include <fristad/proto.h>

#include "geo.h"
#include "index.h"
#include "policy.h"

enum match_reason {
    REASON_SAFETY_POLICY,
    REASON_PROTECTION_LEVEL,
    REASON_BEDS,
    REASON_CHILDREN_LIMIT,
    REASON_BOYS_AGE,
    REASON_TARGET_GROUP,
    REASON_WHEELCHAIR,
    REASON_PETS,
    REASON_SUBSTANCE,
    REASON_LANGUAGE,
    REASON_COMPETENCE, /* the shelter lacks a competence the referral needs */
    REASON_PERMIT,     /* protected housing whose operator lacks what IVO requires */
    REASON__COUNT
};

const char *match_reason_name(enum match_reason r);

/* A referral (of a search or a hold) made ready for matching, once per request. */
struct match_referral {
    const struct proto_args *args;
    struct muni_set excluded; /* by the safety policy at this risk level */
    unsigned min_protection;
    unsigned household; /* adults and children: the beds needed */
    unsigned home;      /* municipality index */
    unsigned group;     /* enum proto_group */
};

/* Returns 0, or -1 when the referral's home municipality is unknown. */
int match_prepare(struct match_referral *m, const struct geo *g, const struct policy *p,
                  const struct proto_args *referral) __attribute__((warn_unused_result));

/*
 * Why a unit is ruled out for a referral: a bit per enum match_reason, 0 when it is eligible.
 * This is the one predicate: search applies it to every available unit, and a hold must pass
 * it. Whether the unit is available at all (free, not held, shelter open) is not a reason:
 * see match_unit_available.
 */
unsigned match_reasons(const struct match_referral *m, const struct idx_shelter *s,
                       const struct idx_unit *u);

/* "safety_policy, beds": the names of the reasons, for a message. */
void match_reasons_text(unsigned reasons, char *buf, size_t cap);

struct match_hit {
    const struct idx_shelter *shelter;
    const struct idx_unit *unit;
    double distance_km; /* home municipality to the shelter's, centroid to centroid */
    bool stale;
    bool receives; /* the shelter's intake is open at the arrival time */
    int64_t age_s; /* seconds since the shelter's vacancies were last changed or confirmed */
};

struct match_outcome {
    struct match_hit *hits; /* best first; at most the search's limit */
    unsigned n_hits;
    unsigned eligible;                 /* before the limit */
    unsigned considered;               /* free units looked at */
    unsigned ruled_out[REASON__COUNT]; /* free units ruled out, per reason */
};

/* True when the unit can be offered at all: free, not held or placed, shelter open. */
bool match_unit_available(const struct idx_shelter *s, const struct idx_unit *u);

bool match_is_stale(const struct idx_shelter *s, int64_t now_ms, int64_t stale_after_ms);
int64_t match_age_s(const struct idx_shelter *s, int64_t now_ms);

/*
 * Runs one search. The hits point into the index and stay valid until the index changes,
 * so the caller encodes its reply before returning to the event loop. The arrival time is the
 * search's arrival_at, or now. Ranking: fresh before stale, then those who can receive at the
 * arrival time, then distance, then the smallest unit that fits, then shelter and unit id.
 * Returns 0, or -1 on allocation failure.
 */
int match_search(const struct index *ix, const struct geo *g, const struct policy *p,
                 const struct proto_args *search, int64_t now_ms, int64_t stale_after_ms,
                 struct match_outcome *out) __attribute__((warn_unused_result));
void match_outcome_free(struct match_outcome *out);

#endif
