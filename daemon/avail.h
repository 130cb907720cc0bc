/*
 * What a search walks: the units that can be offered (free, not held or placed, in a shelter
 * that is open), kept in one bucket per municipality as compact records, and a histogram per
 * rule of eligibility (match.h) over all of them. The index (index.c) keeps it current: every
 * shelter that enters the index adds its available units, every shelter that leaves removes
 * them. Only match.c reads it.
 */
#ifndef FRISTAD_AVAIL_H
#define FRISTAD_AVAIL_H

#include <stdbool.h>
#include <stdint.h>

#include <fristad/proto.h>

#include "match.h"

/* One available unit: what the walk reads without touching its shelter, unless the unit fits. */
struct avail_rec {
    const struct idx_shelter *s;
    int64_t updated_ms;         /* the shelter's, for staleness */
    uint64_t rank;              /* the part of the rank key that the referral does not change */
    uint64_t members;           /* AVAIL_MEMBER_BIT of each bin of each RULE_MEMBER rule */
    uint32_t unit;              /* index in s->units */
    bool always;                /* the shelter receives at any hour */
    uint8_t bin[REASON__COUNT]; /* its bin of each RULE_BIN rule */
};

/*
 * The units of one municipality are kept apart by the bin of one rule as well, so that a walk
 * skips at once the units that rule rules out: the protection level, which the safety policy
 * raises with the risk. It must be a rule of the shelter alone, with AVAIL_PARTS bins (a unit
 * test checks the number).
 */
#define AVAIL_PART_RULE REASON_PROTECTION_LEVEL
#define AVAIL_PARTS     4u

struct avail_bucket {
    struct avail_rec *rec; /* by rank: a walk can stop once no later unit can rank higher */
    uint32_t n, cap;
    int64_t max_updated_ms; /* at least the newest updated_at of its shelters: staleness bound */
};

struct avail {
    struct avail_bucket bucket[PROTO_MUNICIPALITIES][AVAIL_PARTS];
    uint32_t in_place[PROTO_MUNICIPALITIES]; /* units per municipality */
    uint32_t *hist[REASON__COUNT];           /* per rule, units per bin (RULE_PLACE: in_place) */
    uint32_t total;                          /* available units */
};

/* A unit without this bit set does not have that member (a unit with it set may have). */
#define AVAIL_MEMBER_BIT(rule, bin) (UINT64_C(1) << (((rule)*17u + (bin)) % 64u))

/*
 * The rank key of a hit, highest bits first: 2 bits of class (stale, then cannot receive),
 * 9 bits of the distance's rank (geo dist_rank), 5 bits of beds, and the first 6 bytes of the
 * shelter id. Equal keys are told apart by the whole ids.
 */
#define AVAIL_RANK_CLASS_SHIFT 62
#define AVAIL_RANK_DIST_SHIFT  53
#define AVAIL_RANK_BEDS_SHIFT  48

struct avail *avail_new(void);
void avail_free(struct avail *av);

/* Room for the available units of `s`, so that avail_add cannot fail. Returns 0 or -1. */
int avail_reserve(struct avail *av, const struct idx_shelter *s)
    __attribute__((warn_unused_result));
/* Adds the available units of `s` (room reserved), each in its place by rank. */
void avail_add(struct avail *av, const struct idx_shelter *s);
/* Adds them at the end of their bucket, for a full load: avail_sort puts them in order. */
void avail_append(struct avail *av, const struct idx_shelter *s);
void avail_sort(struct avail *av);
/* Removes the units of `s`, which must be the very shelter that was added. */
void avail_remove(struct avail *av, const struct idx_shelter *s);

#endif
