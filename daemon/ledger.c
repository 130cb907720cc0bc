/*
 * The ledger of acknowledged writes (ledger.h). A ring of entries in acknowledgement order,
 * grown on demand up to LEDGER_CAP; when full the oldest entry makes room, which is logged once.
 * A check takes a sorted, duplicate-free copy of the ids and asks the store about them, at most
 * IN_FLIGHT at a time, so that a large ledger never floods the link. A check that the link
 * interrupts is started again at the next reconnect, with every id still in the ring.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fristad/proto.h>

#include "clock.h"
#include "daemon.h"
#include "ledger.h"
#include "log.h"
#include "store.h"

#define LEDGER_CAP       16384
#define LEDGER_FIRST     256
#define LEDGER_WINDOW_MS (15 * 60 * 1000)
#define LEDGER_MARGIN_MS (30 * 1000) /* clock differences and the time a check takes */
#define ID_MAX           31          /* the daemon issues 17-character ids */
#define IN_FLIGHT        64

enum entry_kind {
    KIND_NONE,      /* reported missing already: not checked again */
    KIND_HOLD,      /* key hold:<id> */
    KIND_PLACEMENT, /* key pl:<id> */
};

struct entry {
    int64_t at_ms; /* monotonic: when the write was acknowledged */
    uint8_t kind;  /* enum entry_kind */
    char id[ID_MAX + 1];
};

struct check;

struct ledger {
    struct daemon *d;
    struct entry *ring;
    unsigned cap, head, count; /* the oldest entry is ring[head] */
    bool overflow_logged;
    struct check *check; /* the check under way, or NULL */
    bool check_again;    /* a reconnect came while a check was under way */
};

/* One check: the ids to look up and how far it has come. */
struct check {
    struct ledger *lg; /* NULL once the ledger is gone: the remaining answers are dropped */
    struct entry *items;
    unsigned n, sent, answered, missing;
    bool failed; /* the link went away: stop sending */
    int64_t started_ms;
};

/* How long an id is kept; 0 when the reference retention is too short to keep any safely. */
static int64_t window_ms(const struct ledger *lg)
{
    int64_t keep = lg->d->cfg->reference_retention_ms - LEDGER_MARGIN_MS;
    if (keep > LEDGER_WINDOW_MS)
        keep = LEDGER_WINDOW_MS;
    return keep > 0 ? keep : 0;
}

static void forget_old(struct ledger *lg, int64_t now)
{
    int64_t keep = window_ms(lg);
    while (lg->count > 0 && now - lg->ring[lg->head].at_ms >= keep) {
        lg->head = (lg->head + 1) % lg->cap;
        lg->count--;
    }
}

/* Makes room for one more entry; false when memory ran out and the ring is not full yet. */
static bool room(struct ledger *lg)
{
    if (lg->count < lg->cap)
        return true;
    if (lg->cap < LEDGER_CAP) {
        unsigned cap = lg->cap ? lg->cap * 2 : LEDGER_FIRST;
        if (cap > LEDGER_CAP)
            cap = LEDGER_CAP;
        struct entry *grown = malloc(cap * sizeof *grown);
        if (grown) {
            for (unsigned i = 0; i < lg->count; i++)
                grown[i] = lg->ring[(lg->head + i) % lg->cap];
            free(lg->ring);
            lg->ring = grown;
            lg->cap = cap;
            lg->head = 0;
            return true;
        }
        if (!lg->cap)
            return false;
    }
    if (!lg->overflow_logged) {
        log_warning("ledger: more acknowledged writes than it keeps (%u); the oldest are not "
                    "checked after a reconnect",
                    lg->cap);
        lg->overflow_logged = true;
    }
    lg->head = (lg->head + 1) % lg->cap;
    lg->count--;
    return true;
}

static void add(struct ledger *lg, enum entry_kind kind, const msgpack_object *id, int64_t now)
{
    if (!id || id->type != MSGPACK_OBJECT_STR || id->via.str.size == 0 || id->via.str.size > ID_MAX)
        return;
    if (!room(lg))
        return;
    struct entry *e = &lg->ring[(lg->head + lg->count) % lg->cap];
    e->at_ms = now;
    e->kind = (uint8_t)kind;
    memcpy(e->id, id->via.str.ptr, id->via.str.size);
    e->id[id->via.str.size] = '\0';
    lg->count++;
}

/* The id a result names under `name`: the field itself, or the same field of a map there. */
static const msgpack_object *named_id(const msgpack_object *result, const char *name)
{
    const msgpack_object *v = proto_map_get(result, name);
    if (v && v->type == MSGPACK_OBJECT_MAP)
        v = proto_map_get(v, name);
    return v && v->type == MSGPACK_OBJECT_STR ? v : NULL;
}

void ledger_note(struct ledger *lg, const msgpack_object *result, int64_t mono_ms)
{
    if (!lg || !result || result->type != MSGPACK_OBJECT_MAP || window_ms(lg) == 0)
        return;
    forget_old(lg, mono_ms);
    add(lg, KIND_HOLD, named_id(result, "hold"), mono_ms);
    add(lg, KIND_PLACEMENT, named_id(result, "placement"), mono_ms);
}

static const char *kind_name(uint8_t kind)
{
    return kind == KIND_HOLD ? "hold" : "placement";
}

/* Marks every ring entry of a missing id, so that it is reported once. */
static void mark_reported(struct ledger *lg, const struct entry *missing)
{
    for (unsigned i = 0; i < lg->count; i++) {
        struct entry *e = &lg->ring[(lg->head + i) % lg->cap];
        if (e->kind == missing->kind && strcmp(e->id, missing->id) == 0)
            e->kind = KIND_NONE;
    }
}

static void send_more(struct check *c);

static void check_done(struct check *c)
{
    struct ledger *lg = c->lg;
    if (lg) {
        lg->check = NULL;
        if (c->failed)
            log_info("ledger: the check of acknowledged writes was interrupted; it starts again "
                     "at the next reconnect");
        else if (c->missing)
            log_error("ledger: %u of the %u holds and placements this daemon acknowledged in the "
                      "last %lld s are missing from the store: acknowledged writes were lost",
                      c->missing, c->n, (long long)(window_ms(lg) / 1000));
        else
            log_info("ledger: the %u holds and placements acknowledged in the last %lld s are all "
                     "in the store (checked in %lld ms)",
                     c->n, (long long)(window_ms(lg) / 1000),
                     (long long)(clock_mono_ms() - c->started_ms));
        if (lg->check_again) {
            lg->check_again = false;
            ledger_verify(lg);
        }
    }
    free(c->items);
    free(c);
}

static void on_exists(int exists, void *ud)
{
    struct check *c = ud;
    const struct entry *e = &c->items[c->answered++];
    struct ledger *lg = c->lg;
    if (exists < 0) {
        c->failed = true;
    } else if (lg) {
        lg->d->metrics.acked_checked++;
        if (exists == 0) {
            c->missing++;
            lg->d->metrics.acked_missing++;
            log_error("ledger: %s %s was acknowledged by this daemon %lld s ago and the store "
                      "no longer has it",
                      kind_name(e->kind), e->id, (long long)((clock_mono_ms() - e->at_ms) / 1000));
            mark_reported(lg, e);
        }
    }
    if (c->answered == c->sent && (c->failed || c->sent == c->n || !lg))
        check_done(c);
    else
        send_more(c);
}

static void send_more(struct check *c)
{
    static const char *const prefix[] = {"", "hold:", "pl:"};
    while (!c->failed && c->lg && c->sent < c->n && c->sent - c->answered < IN_FLIGHT) {
        const struct entry *e = &c->items[c->sent];
        char suffix[ID_MAX + 8];
        snprintf(suffix, sizeof suffix, "%s%s", prefix[e->kind], e->id);
        if (store_exists(c->lg->d->store, suffix, on_exists, c) != 0) {
            c->failed = true;
            break;
        }
        c->sent++;
    }
    if (c->answered == c->sent && (c->failed || c->sent == c->n))
        check_done(c);
}

static int by_kind_and_id(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->id, y->id);
}

void ledger_verify(struct ledger *lg)
{
    if (!lg)
        return;
    if (lg->check) {
        lg->check_again = true;
        return;
    }
    int64_t now = clock_mono_ms();
    forget_old(lg, now);
    if (lg->count == 0)
        return;
    struct check *c = calloc(1, sizeof *c);
    struct entry *items = malloc(lg->count * sizeof *items);
    if (!c || !items) {
        free(c);
        free(items);
        log_error("ledger: out of memory; acknowledged writes are not checked this time");
        return;
    }
    unsigned n = 0;
    for (unsigned i = 0; i < lg->count; i++) {
        const struct entry *e = &lg->ring[(lg->head + i) % lg->cap];
        if (e->kind != KIND_NONE)
            items[n++] = *e;
    }
    qsort(items, n, sizeof *items, by_kind_and_id);
    unsigned u = 0;
    for (unsigned i = 0; i < n; i++) {
        if (u == 0 || by_kind_and_id(&items[u - 1], &items[i]) != 0)
            items[u++] = items[i];
        else if (items[i].at_ms < items[u - 1].at_ms)
            items[u - 1].at_ms = items[i].at_ms; /* the first acknowledgement, for the log */
    }
    if (u == 0) {
        free(items);
        free(c);
        return;
    }
    c->lg = lg;
    c->items = items;
    c->n = u;
    c->started_ms = now;
    lg->check = c;
    send_more(c);
}

struct ledger *ledger_new(struct daemon *d)
{
    struct ledger *lg = calloc(1, sizeof *lg);
    if (lg)
        lg->d = d;
    return lg;
}

void ledger_free(struct ledger *lg)
{
    if (!lg)
        return;
    if (lg->check)
        lg->check->lg = NULL; /* its answers still come (with -1) while the store is freed */
    free(lg->ring);
    free(lg);
}
