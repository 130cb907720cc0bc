/*
 * Matching a referral against the index: eligibility under the safety policy and the
 * household's needs, the reasons free units were ruled out, and the ranking.
 *
 * Eligibility is a table of rules, one per reason (match_rules). A rule looks at one attribute
 * of a unit or its shelter and puts the unit in a bin of it (its protection level, its beds,
 * its shelter's municipality...); whether the rule rules a unit out depends only on that bin
 * and the referral. match_reasons asks every rule about a unit: that is the one predicate that
 * search and hold share. The search (avail.c keeps what it walks) asks the same rules about
 * bins instead of units, so it can count the units each reason rules out from a histogram per
 * rule, and test a unit against precomputed answers per bin. A new reason is one more row.
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
    int oldest_boy;     /* age of the oldest boy, -1 without boys */
    int language;       /* match_language_bin of the language asked for, -1 when none is */
};

/* Returns 0, or -1 when the referral's home municipality is unknown. */
int match_prepare(struct match_referral *m, const struct geo *g, const struct policy *p,
                  const struct proto_args *referral) __attribute__((warn_unused_result));

enum match_rule_kind {
    RULE_PLACE,  /* the bin is the shelter's municipality: avail.c's buckets are these bins;
                  * the one such rule is the safety policy, whose failing bins are the members
                  * of the referral's `excluded` set (the search counts them from the set) */
    RULE_BIN,    /* one bin per unit, fewer than MATCH_RECORD_BINS of them */
    RULE_MEMBER, /* a set of the shelter's (languages): the unit counts in a bin per member */
};

#define MATCH_RECORD_BINS 256u /* a RULE_BIN's bins fit in one byte of a unit's record */

/*
 * One rule of eligibility.
 *   RULE_PLACE, RULE_BIN: `bin` puts a unit in one of `n_bins` bins, and `fails` says whether
 *   the referral rules out the units of a bin.
 *   RULE_MEMBER: `members` writes the unit's bins (at most PROTO_MAX_LANGUAGES) and returns how
 *   many; `wants` is the one bin the referral asks for, or -1 when it asks for none; a unit
 *   fails when it has a wanted bin that is not among its members.
 */
struct match_rule {
    enum match_rule_kind kind;
    unsigned n_bins;
    unsigned (*bin)(const struct idx_shelter *s, const struct idx_unit *u);
    bool (*fails)(const struct match_referral *m, unsigned bin);
    unsigned (*members)(const struct idx_shelter *s, const struct idx_unit *u, unsigned *out);
    int (*wants)(const struct match_referral *m);
};

/* The rules, by enum match_reason. */
extern const struct match_rule match_rules[REASON__COUNT];

/* The bin of a language code of 2 or 3 lower-case letters; -1 for anything else. */
int match_language_bin(const char *code);
#define MATCH_LANGUAGE_BINS (27u * 27u * 27u)

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
    struct match_hit *hits;            /* best first; at most the search's limit */
    unsigned n_hits;                   /* 0 exactly when no unit is eligible */
    unsigned considered;               /* available units looked at */
    unsigned ruled_out[REASON__COUNT]; /* available units ruled out, per reason */
};

/* True when the unit can be offered at all: free, not held or placed, shelter open. */
static inline bool match_unit_available(const struct idx_shelter *s, const struct idx_unit *u)
{
    return !s->retired && !s->paused && u->state == VAC_FREE && !u->held && !u->placed;
}

bool match_is_stale(const struct idx_shelter *s, int64_t now_ms, int64_t stale_after_ms);
int64_t match_age_s(const struct idx_shelter *s, int64_t now_ms);

/*
 * Runs one search. The hits point into the index and stay valid until the index changes,
 * so the caller encodes its reply before returning to the event loop. The arrival time is the
 * search's arrival_at, or now. Ranking: fresh before stale, then those who can receive at the
 * arrival time, then distance, then the smallest unit that fits, then shelter and unit id.
 * It walks the available units municipality by municipality, nearest first, and stops once no
 * unit further away can rank among the hits; the counts per reason come from histograms.
 * Returns 0, or -1 on allocation failure.
 */
int match_search(const struct index *ix, const struct geo *g, const struct policy *p,
                 const struct proto_args *search, int64_t now_ms, int64_t stale_after_ms,
                 struct match_outcome *out) __attribute__((warn_unused_result));

/*
 * The same search by the plain definition: every unit of every shelter through
 * match_reasons, every eligible one ranked. Slow; the reference that match_search is tested
 * against.
 */
int match_scan(const struct index *ix, const struct geo *g, const struct policy *p,
               const struct proto_args *search, int64_t now_ms, int64_t stale_after_ms,
               struct match_outcome *out) __attribute__((warn_unused_result));

void match_outcome_free(struct match_outcome *out);

#endif
