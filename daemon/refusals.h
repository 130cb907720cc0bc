/*
 * Refusals in the audit trail, bounded. Every refused request is recorded, but one abusive
 * principal sending refused requests all day would grow the trail by about 100 MB a day, kept
 * a year. So each person of each principal has refusals_per_window refusals recorded one by
 * one in each refusal_window (a minute by default); the rest of that window are counted, and
 * the count is written as one entry (op "refusals") once the window is over.
 */
#ifndef FRISTAD_REFUSALS_H
#define FRISTAD_REFUSALS_H

#include <stdbool.h>
#include <stdint.h>

struct refusals;

struct refusals *refusals_new(void);
void refusals_free(struct refusals *r);

/*
 * A refusal the daemon decided, of (principal, person) with error code `code` at now_ms (wall
 * clock). True when it is to be recorded on its own; false when it was counted into the
 * window's summary. True as well when memory runs out: then it is recorded on its own.
 */
bool refusals_count(struct refusals *r, const char *principal, const char *person, const char *code,
                    int64_t now_ms, int64_t window_ms, unsigned per_window);

/*
 * A write leaves for the store, which may refuse it. True: the store is to leave a refusal
 * unaudited ("quiet"), because the person's budget of the window is spent, counting the writes
 * still out that the store would audit. Every call is followed by one refusals_answered.
 */
bool refusals_send(struct refusals *r, const char *principal, const char *person, int64_t now_ms,
                   int64_t window_ms, unsigned per_window);

/*
 * The store answered a write sent with refusals_send: `code` is its refusal, NULL when it was
 * not refused. A quiet refusal is counted into the summary; another was audited by the store
 * and counts against the budget.
 */
void refusals_answered(struct refusals *r, const char *principal, const char *person,
                       const char *code, bool quiet, int64_t now_ms, int64_t window_ms);

/* A summary to write: `count` refusals of `code` ("mixed" when several codes). */
typedef void refusals_emit(const char *principal, const char *person, const char *code,
                           uint64_t count, void *ud);

/*
 * Emits the summary of every window that is over (every window, when `all`: at shutdown),
 * and forgets principals with nothing left to count.
 */
void refusals_flush(struct refusals *r, int64_t now_ms, int64_t window_ms, bool all,
                    refusals_emit *emit, void *ud);

#endif
