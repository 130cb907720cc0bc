/*
 * Follow-up statistics (systematisk uppföljning): counts by month and by responsible
 * municipality, never people, for the `followup` op.
 *
 * Where the counts come from. Every write that a count follows (a hold made, accepted,
 * declined, expired, confirmed; a placement ended) adds to the counters of its month and
 * responsible municipality inside its own Redis Function, in the same atomic step (fristad.lua,
 * follow()). Searches are answered from memory and write nothing, so the daemon counts them
 * here and adds them to the store in numbered batches: one batch in flight at a time, sent
 * again with the same number until the store answers, and added by the store once per number.
 * A batch is closed (and never changed again) when it is first sent, so a retry adds exactly
 * what the lost attempt would have. SIGTERM sends what is left and the drain waits for the
 * answer; only a daemon killed outright loses the searches of its last sweep interval.
 *
 * Months are Swedish local time (Europe/Stockholm, the process's zone: intake_tz_setup), as
 * numbers: year * 12 + month - 1 (proto_month_parse).
 *
 * Suppression. Every cell below 3 is shown as "<3" (for a median or the nights: fewer than 3
 * cases behind it). Only whole months that have ended are reported (from the 2nd of the next
 * month, when late search batches are in), each month on its own: there is no total over
 * months, categories or areas, so no two answers overlap in a way that a difference could
 * undo. A county is the one aggregate, the sum over its municipalities; its cell is hidden as
 * "x" where the municipality cells that are "<3" could be computed back from it (see
 * followup_county_cell).
 */
#ifndef FRISTAD_FOLLOWUP_H
#define FRISTAD_FOLLOWUP_H

#include <stdbool.h>
#include <stdint.h>

#include <fristad/proto.h>
#include <msgpack.h>

#include "authz.h"
#include "geo.h"
#include "match.h"
#include "ops.h"

#define FOLLOWUP_MIN 3 /* a cell below this is suppressed */

/* The month of a moment (ms since 1970) in Swedish local time. */
int followup_month_of(int64_t ms);

/*
 * The latest month that is reported at `now_ms`: the month before this one once its first day
 * has passed (late search batches arrive within it), else the one before that.
 */
int followup_latest_month(int64_t now_ms);

/*
 * Whether a principal may see the follow-up of a municipality (index 0..289): social services
 * their own, on-call those of its area ([oncall] in the configuration), admin all. Shelters
 * none.
 */
bool followup_may_see(const struct config *cfg, const struct principal *p, const struct geo *g,
                      unsigned mun);

/*
 * One cell of a county: `sum` over its municipalities, `k` of which are below FOLLOWUP_MIN
 * and hold `small` between them. Returns the value to show, or -1 for "<3", -2 for "x".
 *
 *   - below FOLLOWUP_MIN: "<3", as any cell;
 *   - no municipality below FOLLOWUP_MIN: the sum;
 *   - one municipality below: "x", since the sum minus the others is its value;
 *   - two or more, holding together 0 or 1, or 2k-1 or 2k: "x", since then every one of them
 *     (all 0, or all 2) or all but one would follow. Otherwise the sum: the small cells have
 *     a known total but no known value.
 */
int64_t followup_county_cell(uint64_t sum, unsigned k, uint64_t small);

/*
 * A county's median or nights: `cases` behind it in all, `k` municipalities with fewer than
 * FOLLOWUP_MIN cases holding `small` of them. Shown (true) when cases >= FOLLOWUP_MIN and
 * either no municipality's own figure is hidden (k == 0) or the hidden ones hold at least
 * FOLLOWUP_MIN cases together: what the county adds to its shown municipalities is never the
 * figure of one or two households, nor a sign that the hidden ones had none.
 */
bool followup_county_magnitude(uint64_t cases, unsigned k, uint64_t small);

/* The median of a histogram of whole minutes (value, count pairs in any order), rounded. */
int64_t followup_median(const uint32_t *minutes, const uint64_t *counts, unsigned n);

/* ---- searches, counted in memory ------------------------------------------------------- */

/* Search counts of one month and responsible municipality. */
struct followup_cell {
    int month;
    unsigned mun;
    uint64_t searches;
    uint64_t no_match;
    uint64_t reasons[REASON__COUNT]; /* no-match searches in which the reason ruled units out */
};

struct followup_batch {
    uint64_t seq; /* its number, once closed; the store adds each number once */
    struct followup_cell *cells;
    unsigned n, cap;
};

struct followup_tally {
    char daemon[PROTO_ID_LEN + 1]; /* this run's id: batch numbers are per run */
    uint64_t last_seq;
    struct followup_batch closed;   /* sent, or to be sent, until the store answers: fixed */
    struct followup_batch open;     /* counting into */
    bool inflight;                  /* `closed` is at the store */
    int month;                      /* the month of the last search, from month_from ... */
    int64_t month_from, month_to;   /* ... to before month_to (ms since 1970) */
    int slot_month;                 /* the month of `slot` */
    int slot[PROTO_MUNICIPALITIES]; /* index in open.cells of (slot_month, municipality), or -1 */
};

/* A tally with a new run id. NULL when out of memory or the random source fails. */
struct followup_tally *followup_tally_new(void);
void followup_tally_free(struct followup_tally *t);

/*
 * Counts one search of the responsible municipality `mun` at `now_ms` in c (its totals, for
 * the metrics, and its tally), with the free units it ruled out per reason when it found
 * nothing.
 */
void followup_count_search(struct search_counts *c, int64_t now_ms, unsigned mun, bool no_match,
                           const unsigned ruled_out[REASON__COUNT]);

/*
 * The batch to send now, or NULL (one is at the store, or nothing was counted): the closed
 * batch again, or the open one closed under the next number.
 */
const struct followup_batch *followup_next_batch(struct followup_tally *t);
/* Packs the store function's arguments for a batch. Returns 0 or -1. */
int followup_pack_batch(const struct followup_tally *t, const struct followup_batch *b,
                        msgpack_packer *pk) __attribute__((warn_unused_result));
/*
 * The store has answered the closed batch: added (or added before), `ok`, then it is done and
 * its counts move from c's totals into `flushed`; else it is sent again later.
 */
void followup_batch_done(struct search_counts *c, bool ok, struct metrics_searches *flushed);
/* True when every counted search has been added to the store. */
bool followup_settled(const struct search_counts *c);

/* ---- the followup op -------------------------------------------------------------------- */

/* The op row's check: who may see which area and months. */
enum proto_err followup_check(const struct op_ctx *x, struct proto_error *err);
/* The op row's extra: the area and months, defaults filled in. */
int followup_extra(const struct op_ctx *x, struct op_extra *e);
/* The op row's shape: the store's counters added up and suppressed. */
int followup_shape(const struct op_ctx *x, const msgpack_object *result,
                   const msgpack_object *snapshot, msgpack_packer *pk);

#endif
