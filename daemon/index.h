/*
 * The in-memory index of every shelter and unit. Searches and listings are answered from it
 * with no Redis round trip. It is loaded whole from Redis, a page at a time, at start and after
 * any gap, and kept current by the snapshots that every write function returns and publishes
 * (events.c): each snapshot is a whole shelter with its units and the global version of its
 * last change.
 */
#ifndef FRISTAD_INDEX_H
#define FRISTAD_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include <fristad/proto.h>
#include <msgpack.h>

#define IDX_NO_LIMIT (-1)
#define IDX_UNKNOWN  (-1) /* a value the record does not hold: written before it existed */

struct idx_unit {
    char id[PROTO_ID_MAX + 1];
    uint8_t beds;
    bool accessible;
    uint8_t state; /* enum proto_vacancy, as the shelter set it */
    bool held;     /* a live hold reserves it */
    bool placed;   /* an active placement occupies it */
};

/* The fields a search and its reply read come first, the long text last: fewer cache lines. */
struct idx_shelter {
    char id[PROTO_ID_MAX + 1];
    uint8_t kind;       /* enum proto_kind */
    uint8_t protection; /* 1..3 */
    uint8_t groups;     /* bit per enum proto_group */
    bool pets;
    bool substance;
    bool paused;      /* intake paused by the shelter: offers nothing */
    bool retired;     /* retired by an admin: listed nowhere */
    unsigned mun;     /* municipality index */
    int max_children; /* IDX_NO_LIMIT or 0..20 */
    int boys_max_age; /* IDX_NO_LIMIT or 0..17 */
    unsigned n_units;
    int64_t updated_ms;         /* last vacancy change or confirmation */
    struct idx_unit *units;     /* sorted by id */
    uint64_t ver;               /* global version of the last change */
    struct proto_intake intake; /* when it can receive a household (Swedish local time) */
    uint8_t n_languages;
    char languages[PROTO_MAX_LANGUAGES][4];
    char phone[PROTO_PHONE_MAX + 1]; /* intake line: shown to admin and the shelter only */
    char name[PROTO_NAME_MAX * 4 + 1];
    /* Swedish practice; a record written before these existed holds none of them. */
    uint8_t competences;                      /* bit per enum proto_competence */
    int operator_;                            /* enum proto_operator, or IDX_UNKNOWN */
    char ivo_permit[PROTO_PERMIT_MAX + 1];    /* "" when no permit is recorded */
    char ivo_permit_date[PROTO_DATE_LEN + 1]; /* YYYY-MM-DD, with a permit */
    bool ivo_registered;                      /* a municipal unit registered with IVO */
};

struct avail;

struct index {
    struct idx_shelter **shelters; /* sorted by id (but see index_bulk_add) */
    unsigned n, cap;
    uint64_t ver;        /* every change up to this version is reflected */
    bool loaded;         /* a full load has completed at least once */
    bool unsorted;       /* index_bulk_add has added shelters that index_bulk_end sorts */
    struct avail *avail; /* the available units, for search (avail.h); NULL while empty */
};

void index_init(struct index *ix);
void index_clear(struct index *ix);

/* Parses one snapshot. Returns 0, or -1 when it is malformed (a bug: logged by the caller). */
int index_parse_snapshot(const msgpack_object *o, struct idx_shelter *out)
    __attribute__((warn_unused_result));
void index_shelter_free(struct idx_shelter *s);
/* A copy of s (units too), or NULL when memory runs out. */
struct idx_shelter *index_shelter_dup(const struct idx_shelter *s);

/*
 * Puts a parsed shelter into the index unless the index already holds a newer version of it;
 * takes ownership of `s` either way. Returns 0, or -1 on allocation failure.
 */
int index_put_take(struct index *ix, struct idx_shelter *s) __attribute__((warn_unused_result));

/* Parses and applies one snapshot object. Returns 0 or -1. */
int index_apply(struct index *ix, const msgpack_object *snapshot)
    __attribute__((warn_unused_result));

/*
 * A full load adds thousands of shelters in no order: index_bulk_add appends each (taking
 * ownership; -1 when memory runs out, and then `s` is freed), and index_bulk_end sorts them,
 * keeps the newest copy of any shelter added twice, and builds what search walks. In between
 * nothing else may use the index. Returns 0 or -1 (memory: the index is then cleared).
 */
int index_bulk_add(struct index *ix, struct idx_shelter *s) __attribute__((warn_unused_result));
int index_bulk_end(struct index *ix) __attribute__((warn_unused_result));

/* Removes a shelter from the index and hands it to the caller; NULL when absent. */
struct idx_shelter *index_take(struct index *ix, const char *id);

/*
 * Ends a full load. `fresh` holds the load, which reflects every change up to `dump_ver`;
 * `ix` holds what change events left while the load was under way, and `raced` names the
 * shelters those events changed (their highest version was `max_event_ver`). A raced shelter
 * whose copy in `ix` is newer than the load's is carried over into `fresh`; anything else that
 * `ix` holds is dropped, because after a restore or a failover Redis can go back in time and
 * Redis is the source of truth. Then `fresh` becomes `ix`, loaded, at the higher of the two
 * versions. Returns 0, or -1 on allocation failure (both indexes then stay as they were, except
 * that raced shelters may have moved from `ix` to `fresh`: the caller loads again).
 */
int index_replace(struct index *ix, struct index *fresh, uint64_t dump_ver, uint64_t max_event_ver,
                  char (*raced)[PROTO_ID_MAX + 1], unsigned n_raced)
    __attribute__((warn_unused_result));

const struct idx_shelter *index_find(const struct index *ix, const char *id);
const struct idx_unit *index_find_unit(const struct idx_shelter *s, const char *unit);

#endif
