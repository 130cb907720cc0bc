/* Follow-up statistics: see followup.h. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "followup.h"
#include "oncall.h"
#include "log.h"

/* ---- months ----------------------------------------------------------------------------- */

int followup_month_of(int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return 0;
    return (tm.tm_year + 1900) * 12 + tm.tm_mon;
}

int followup_latest_month(int64_t now_ms)
{
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return 0;
    int month = (tm.tm_year + 1900) * 12 + tm.tm_mon;
    return tm.tm_mday >= 2 ? month - 1 : month - 2;
}

/* The first moment of a month in Swedish local time, as ms since 1970. */
static int64_t month_start(int month)
{
    struct tm tm = {
        .tm_year = month / 12 - 1900, .tm_mon = month % 12, .tm_mday = 1, .tm_isdst = -1};
    return (int64_t)mktime(&tm) * 1000;
}

/* ---- who sees what ---------------------------------------------------------------------- */

bool followup_may_see(const struct config *cfg, const struct principal *p, const struct geo *g,
                      unsigned mun)
{
    if (!p->valid || mun >= PROTO_MUNICIPALITIES)
        return false;
    switch (p->role) {
    case ROLE_ADMIN:
        return true;
    case ROLE_ONCALL:
        return oncall_serves(cfg, p->id, g->m[mun].code);
    case ROLE_SOCIAL:
        return strcmp(g->m[mun].code, p->id) == 0;
    case ROLE_SHELTER:
    case ROLE__COUNT:
        break;
    }
    return false;
}

/* ---- suppression ------------------------------------------------------------------------ */

int64_t followup_county_cell(uint64_t sum, unsigned k, uint64_t small)
{
    if (sum < FOLLOWUP_MIN)
        return -1;
    if (k == 0)
        return (int64_t)sum;
    if (k == 1 || small <= 1 || small >= 2 * (uint64_t)k - 1)
        return -2;
    return (int64_t)sum;
}

bool followup_county_magnitude(uint64_t cases, unsigned k, uint64_t small)
{
    return cases >= FOLLOWUP_MIN && (k == 0 || small >= FOLLOWUP_MIN);
}

struct pair {
    uint32_t minutes;
    uint64_t count;
};

static int by_minutes(const void *pa, const void *pb)
{
    const struct pair *a = pa, *b = pb;
    return a->minutes < b->minutes ? -1 : a->minutes > b->minutes;
}

int64_t followup_median(const uint32_t *minutes, const uint64_t *counts, unsigned n)
{
    struct pair *p = malloc((n ? n : 1) * sizeof *p);
    uint64_t total = 0;
    if (!p)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        p[i] = (struct pair){minutes[i], counts[i]};
        total += counts[i];
    }
    if (total == 0) {
        free(p);
        return -1;
    }
    qsort(p, n, sizeof *p, by_minutes);
    /* The values at positions lo and hi (1-based) of the sorted cases: one or the middle two. */
    uint64_t lo = (total + 1) / 2, hi = total / 2 + 1, seen = 0;
    int64_t a = -1, b = -1;
    for (unsigned i = 0; i < n && b < 0; i++) {
        seen += p[i].count;
        if (a < 0 && seen >= lo)
            a = p[i].minutes;
        if (seen >= hi)
            b = p[i].minutes;
    }
    free(p);
    return (a + b + 1) / 2;
}

/* ---- searches, counted in memory -------------------------------------------------------- */

struct followup_tally *followup_tally_new(void)
{
    struct followup_tally *t = calloc(1, sizeof *t);
    if (!t || ops_new_id('d', t->daemon) < 0) {
        free(t);
        return NULL;
    }
    t->slot_month = INT_MIN;
    return t;
}

void followup_tally_free(struct followup_tally *t)
{
    if (!t)
        return;
    free(t->closed.cells);
    free(t->open.cells);
    free(t);
}

/* The cell of (month, mun) in the open batch, made if need be; NULL when out of memory. */
static struct followup_cell *open_cell(struct followup_tally *t, int month, unsigned mun)
{
    struct followup_batch *b = &t->open;
    if (t->slot_month != month) { /* a new month (or a new batch): index its cells anew */
        for (unsigned i = 0; i < PROTO_MUNICIPALITIES; i++)
            t->slot[i] = -1;
        for (unsigned i = 0; i < b->n; i++) {
            if (b->cells[i].month == month)
                t->slot[b->cells[i].mun] = (int)i;
        }
        t->slot_month = month;
    }
    if (t->slot[mun] >= 0)
        return &b->cells[t->slot[mun]];
    if (b->n == b->cap) {
        unsigned cap = b->cap ? b->cap * 2 : 16;
        struct followup_cell *cells = realloc(b->cells, cap * sizeof *cells);
        if (!cells)
            return NULL;
        b->cells = cells;
        b->cap = cap;
    }
    struct followup_cell *c = &b->cells[b->n];
    *c = (struct followup_cell){.month = month, .mun = mun};
    t->slot[mun] = (int)b->n++;
    return c;
}

void followup_count_search(struct search_counts *c, int64_t now_ms, unsigned mun, bool no_match,
                           const unsigned ruled_out[REASON__COUNT])
{
    c->searches++;
    if (no_match) {
        c->no_match++;
        for (unsigned r = 0; r < REASON__COUNT; r++)
            c->reasons[r] += ruled_out[r] > 0;
    }
    struct followup_tally *t = c->tally;
    if (!t || mun >= PROTO_MUNICIPALITIES)
        return;
    /* The month of the last search, while the clock stays within it: localtime_r takes a lock
     * and reads the zone rules, which every search need not do. */
    if (now_ms < t->month_from || now_ms >= t->month_to) {
        t->month = followup_month_of(now_ms);
        t->month_from = month_start(t->month);
        t->month_to = month_start(t->month + 1);
    }
    struct followup_cell *cell = open_cell(t, t->month, mun);
    if (!cell) {
        log_warning("follow-up: out of memory; a search is counted in the totals only");
        return;
    }
    cell->searches++;
    if (no_match) {
        cell->no_match++;
        for (unsigned r = 0; r < REASON__COUNT; r++)
            cell->reasons[r] += ruled_out[r] > 0;
    }
}

const struct followup_batch *followup_next_batch(struct followup_tally *t)
{
    if (!t || t->inflight)
        return NULL;
    if (t->closed.n == 0) {
        if (t->open.n == 0)
            return NULL;
        struct followup_batch spare = t->closed; /* an empty buffer, reused for counting */
        t->closed = t->open;
        t->closed.seq = ++t->last_seq;
        t->open = (struct followup_batch){.cells = spare.cells, .cap = spare.cap};
        t->slot_month = INT_MIN;
    }
    return &t->closed;
}

int followup_pack_batch(const struct followup_tally *t, const struct followup_batch *b,
                        msgpack_packer *pk)
{
    char month[8];
    int rc = msgpack_pack_map(pk, 3);
    rc |= proto_pack_kv_str(pk, "daemon", t->daemon);
    rc |= proto_pack_kv_int(pk, "batch", (int64_t)b->seq);
    rc |= proto_pack_cstr(pk, "cells");
    rc |= msgpack_pack_array(pk, b->n);
    for (unsigned i = 0; i < b->n; i++) {
        const struct followup_cell *c = &b->cells[i];
        unsigned reasons = 0;
        for (unsigned r = 0; r < REASON__COUNT; r++)
            reasons += c->reasons[r] != 0;
        proto_month_format(c->month, month);
        rc |= msgpack_pack_map(pk, 5);
        rc |= proto_pack_kv_str(pk, "month", month);
        rc |= proto_pack_kv_str(pk, "municipality", proto_municipality_code(c->mun));
        rc |= proto_pack_kv_int(pk, "searches", (int64_t)c->searches);
        rc |= proto_pack_kv_int(pk, "no_match", (int64_t)c->no_match);
        rc |= proto_pack_cstr(pk, "reasons");
        rc |= msgpack_pack_map(pk, reasons);
        for (unsigned r = 0; r < REASON__COUNT; r++) {
            if (c->reasons[r])
                rc |= proto_pack_kv_int(pk, match_reason_name(r), (int64_t)c->reasons[r]);
        }
    }
    return rc ? -1 : 0;
}

void followup_batch_done(struct search_counts *c, bool ok, struct metrics_searches *flushed)
{
    struct followup_tally *t = c->tally;
    if (!t)
        return;
    t->inflight = false;
    if (!ok)
        return;
    for (unsigned i = 0; i < t->closed.n; i++) {
        const struct followup_cell *cell = &t->closed.cells[i];
        c->searches -= cell->searches;
        c->no_match -= cell->no_match;
        flushed->searches += cell->searches;
        flushed->no_match += cell->no_match;
        for (unsigned r = 0; r < REASON__COUNT; r++) {
            c->reasons[r] -= cell->reasons[r];
            flushed->reasons[r] += cell->reasons[r];
        }
    }
    t->closed.n = 0;
}

bool followup_settled(const struct search_counts *c)
{
    const struct followup_tally *t = c->tally;
    return !t || (t->closed.n == 0 && t->open.n == 0 && !t->inflight);
}

/* ---- the followup op: area and months ----------------------------------------------------- */

struct query {
    bool county;  /* the area is a county, else a municipality */
    char area[5]; /* its code */
    int from, to; /* months */
};

static enum proto_err resolve(const struct op_ctx *x, struct query *q, struct proto_error *err)
{
    const struct proto_args *a = x->args;
    const struct principal *p = x->who;
    memset(q, 0, sizeof *q);
    if (proto_has(a, F_MUNICIPALITY)) { /* with a county too, it is in it (proto checks) */
        snprintf(q->area, sizeof q->area, "%s", a->municipality);
    } else if (proto_has(a, F_COUNTY)) {
        q->county = true;
        snprintf(q->area, sizeof q->area, "%s", a->county);
    } else if (p->role == ROLE_SOCIAL) {
        snprintf(q->area, sizeof q->area, "%.4s", p->id);
    } else {
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "name the area: field 'municipality' or field 'county'");
    }
    bool allowed = true;
    if (q->county) {
        for (unsigned i = 0; i < PROTO_MUNICIPALITIES; i++) {
            if (memcmp(x->geo->m[i].county, q->area, 2) == 0)
                allowed = allowed && followup_may_see(x->cfg, p, x->geo, i);
        }
    } else {
        int i = proto_municipality_index(q->area, 4);
        allowed = i >= 0 && followup_may_see(x->cfg, p, x->geo, (unsigned)i);
    }
    if (!allowed)
        return proto_fail(err, PROTO_E_FORBIDDEN,
                          p->role == ROLE_SOCIAL
                              ? "social services see the follow-up of their own municipality only"
                              : "you may not see the follow-up of this area");

    int latest = followup_latest_month(x->now_ms);
    char month[8];
    proto_month_format(latest, month);
    q->to = proto_has(a, F_TO_MONTH) ? proto_month_parse(a->to_month, 7) : latest;
    q->from = proto_has(a, F_FROM_MONTH) ? proto_month_parse(a->from_month, 7) : q->to - 11;
    if (q->to > latest)
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "field 'to_month' names a month not yet reported: a month is reported "
                          "once it has ended, from the 2nd of the next; the latest is %s",
                          month);
    if (q->from > latest)
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "field 'from_month' names a month not yet reported: a month is "
                          "reported once it has ended, from the 2nd of the next; the latest is %s",
                          month);
    if (q->to - q->from + 1 > (int)PROTO_MAX_MONTHS)
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "at most %u months at a time: give field 'to_month' as well",
                          PROTO_MAX_MONTHS);
    return PROTO_OK;
}

enum proto_err followup_check(const struct op_ctx *x, struct proto_error *err)
{
    struct query q;
    return resolve(x, &q, err);
}

static void put(struct op_extra *e, const char *key, const char *value)
{
    e->kv[e->n].key = key;
    snprintf(e->buf[e->n], sizeof e->buf[e->n], "%s", value);
    e->kv[e->n].str = e->buf[e->n];
    e->n++;
}

int followup_extra(const struct op_ctx *x, struct op_extra *e)
{
    struct query q;
    struct proto_error err;
    char month[8];
    if (resolve(x, &q, &err) != PROTO_OK)
        return -1;
    e->drop = PROTO_AREA | PROTO_F(FROM_MONTH) | PROTO_F(TO_MONTH);
    put(e, q.county ? "county" : "municipality", q.area);
    proto_month_format(q.from, month);
    put(e, "from_month", month);
    proto_month_format(q.to, month);
    put(e, "to_month", month);
    return 0;
}

/* ---- the followup op: adding up and suppressing ----------------------------------------- */

/* The counters of the store (fristad.lua, follow()), in the order of the reply. */
enum counter {
    C_SEARCHES,
    C_NO_MATCH,
    C_REASON,                                /* no_match:<reason>, REASON__COUNT of them */
    C_HOLDS = C_REASON + REASON__COUNT,      /* holds made */
    C_ACCEPTANCES,                           /* the shelter said yes */
    C_DECLINE,                               /* declines:<code>, DECLINE__COUNT of them */
    C_EXPIRIES = C_DECLINE + DECLINE__COUNT, /* holds that ran out */
    C_PLACEMENTS,                            /* confirmed: the household arrived */
    C_DISCHARGES,                            /* placements that ended */
    C_CHILDREN,                              /* children:<band> placed, 3 bands */
    C_NIGHTS = C_CHILDREN + 3,               /* nights of the placements that ended */
    C__COUNT
};

static const char *const bands[3] = {"0-6", "7-12", "13-17"};

enum hist { H_ACCEPTANCE, H_ARRIVAL, H__COUNT };
static const char *const hist_prefix[H__COUNT] = {"to_acceptance:", "to_arrival:"};

struct histogram {
    uint32_t *minutes;
    uint64_t *counts;
    unsigned n, cap;
    uint64_t total;
};

struct cell {
    uint64_t c[C__COUNT];
    struct histogram h[H__COUNT];
};

static bool key_is(const msgpack_object *k, const char *prefix, const char *name)
{
    size_t p = strlen(prefix), n = strlen(name);
    return k->via.str.size == p + n && memcmp(k->via.str.ptr, prefix, p) == 0 &&
           memcmp(k->via.str.ptr + p, name, n) == 0;
}

/* The counter a store field names, or -1. */
static int counter_of(const msgpack_object *k)
{
    static const struct {
        const char *name;
        int counter;
    } plain[] = {{"searches", C_SEARCHES},     {"no_match", C_NO_MATCH},
                 {"holds", C_HOLDS},           {"acceptances", C_ACCEPTANCES},
                 {"expiries", C_EXPIRIES},     {"placements", C_PLACEMENTS},
                 {"discharges", C_DISCHARGES}, {"nights", C_NIGHTS}};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        if (key_is(k, "", plain[i].name))
            return plain[i].counter;
    }
    for (unsigned r = 0; r < REASON__COUNT; r++) {
        if (key_is(k, "no_match:", match_reason_name(r)))
            return C_REASON + (int)r;
    }
    for (unsigned d = 0; d < DECLINE__COUNT; d++) {
        if (key_is(k, "declines:", proto_decline_name(d)))
            return C_DECLINE + (int)d;
    }
    for (unsigned b = 0; b < 3; b++) {
        if (key_is(k, "children:", bands[b]))
            return C_CHILDREN + (int)b;
    }
    return -1;
}

static int hist_add(struct histogram *h, uint32_t minutes, uint64_t count)
{
    for (unsigned i = 0; i < h->n; i++) {
        if (h->minutes[i] == minutes) {
            h->counts[i] += count;
            h->total += count;
            return 0;
        }
    }
    if (h->n == h->cap) {
        unsigned cap = h->cap ? h->cap * 2 : 8;
        uint32_t *m = realloc(h->minutes, cap * sizeof *m);
        if (!m)
            return -1;
        h->minutes = m;
        uint64_t *c = realloc(h->counts, cap * sizeof *c);
        if (!c)
            return -1;
        h->counts = c;
        h->cap = cap;
    }
    h->minutes[h->n] = minutes;
    h->counts[h->n++] = count;
    h->total += count;
    return 0;
}

/* Reads one store field into a cell. Returns 0, or -1 when out of memory. */
static int take_field(struct cell *c, const msgpack_object *k, const msgpack_object *v)
{
    if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return 0; /* zero or negative (a counter never is): nothing to add */
    int i = counter_of(k);
    if (i >= 0) {
        c->c[i] += v->via.u64;
        return 0;
    }
    for (unsigned h = 0; h < H__COUNT; h++) {
        size_t p = strlen(hist_prefix[h]);
        if (k->via.str.size > p && k->via.str.size <= p + 6 &&
            memcmp(k->via.str.ptr, hist_prefix[h], p) == 0) {
            uint32_t minutes = 0;
            for (size_t j = p; j < k->via.str.size; j++) {
                char d = k->via.str.ptr[j];
                if (d < '0' || d > '9')
                    return 0;
                minutes = minutes * 10 + (uint32_t)(d - '0');
            }
            return hist_add(&c->h[h], minutes, v->via.u64);
        }
    }
    return 0;
}

static bool str_copy(const msgpack_object *o, char *out, size_t cap)
{
    if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap)
        return false;
    memcpy(out, o->via.str.ptr, o->via.str.size);
    out[o->via.str.size] = '\0';
    return true;
}

/* What the reply shows of one cell: a count, or "<3", or "x". */
static int pack_value(msgpack_packer *pk, int64_t v)
{
    if (v == -1)
        return proto_pack_cstr(pk, "<3");
    if (v == -2)
        return proto_pack_cstr(pk, "x");
    return msgpack_pack_int64(pk, v);
}

/* The table being shaped: months by municipalities of the area. */
struct table {
    unsigned n_months, n_muns;
    int from;
    unsigned muns[PROTO_MUNICIPALITIES]; /* indexes of the area's municipalities */
    struct cell *cells;                  /* [month][municipality] */
    bool county;
};

static struct cell *at(const struct table *t, unsigned month, unsigned mun)
{
    return &t->cells[(size_t)month * t->n_muns + mun];
}

/* A counter of a month: the municipality's, or the county's by followup_county_cell. */
static int64_t count_cell(const struct table *t, unsigned m, int counter)
{
    uint64_t sum = 0, small = 0;
    unsigned k = 0;
    for (unsigned j = 0; j < t->n_muns; j++) {
        uint64_t v = at(t, m, j)->c[counter];
        sum += v;
        if (v < FOLLOWUP_MIN) {
            k++;
            small += v;
        }
    }
    if (!t->county)
        return sum < FOLLOWUP_MIN ? -1 : (int64_t)sum;
    return followup_county_cell(sum, k, small);
}

/* Whether a figure made of `cases` per municipality (a median, the nights) may be shown. */
static int64_t magnitude_gate(const struct table *t, const uint64_t *cases)
{
    uint64_t sum = 0, small = 0;
    unsigned k = 0;
    for (unsigned j = 0; j < t->n_muns; j++) {
        sum += cases[j];
        if (cases[j] < FOLLOWUP_MIN) {
            k++;
            small += cases[j];
        }
    }
    if (sum < FOLLOWUP_MIN)
        return -1;
    if (t->county && !followup_county_magnitude(sum, k, small))
        return -2;
    return 0;
}

static int64_t median_cell(const struct table *t, unsigned m, enum hist h)
{
    uint64_t cases[PROTO_MUNICIPALITIES];
    unsigned n = 0;
    for (unsigned j = 0; j < t->n_muns; j++) {
        cases[j] = at(t, m, j)->h[h].total;
        n += at(t, m, j)->h[h].n;
    }
    int64_t gate = magnitude_gate(t, cases);
    if (gate < 0)
        return gate;
    uint32_t *minutes = malloc((n ? n : 1) * sizeof *minutes);
    uint64_t *counts = malloc((n ? n : 1) * sizeof *counts);
    int64_t v = -3;
    if (minutes && counts) {
        unsigned k = 0;
        for (unsigned j = 0; j < t->n_muns; j++) {
            const struct histogram *hg = &at(t, m, j)->h[h];
            for (unsigned i = 0; i < hg->n; i++, k++) {
                minutes[k] = hg->minutes[i];
                counts[k] = hg->counts[i];
            }
        }
        v = followup_median(minutes, counts, n);
        if (v < 0)
            v = -3;
    }
    free(minutes);
    free(counts);
    return v;
}

static int64_t nights_cell(const struct table *t, unsigned m)
{
    uint64_t cases[PROTO_MUNICIPALITIES], nights = 0;
    for (unsigned j = 0; j < t->n_muns; j++) {
        cases[j] = at(t, m, j)->c[C_DISCHARGES];
        nights += at(t, m, j)->c[C_NIGHTS];
    }
    int64_t gate = magnitude_gate(t, cases);
    return gate < 0 ? gate : (int64_t)nights;
}

static int pack_month(msgpack_packer *pk, const struct table *t, unsigned m, bool *failed)
{
    char month[8];
    proto_month_format(t->from + (int)m, month);
    int rc = msgpack_pack_map(pk, 14);
    rc |= proto_pack_kv_str(pk, "month", month);
    rc |= proto_pack_cstr(pk, "searches");
    rc |= pack_value(pk, count_cell(t, m, C_SEARCHES));
    rc |= proto_pack_cstr(pk, "no_match");
    rc |= pack_value(pk, count_cell(t, m, C_NO_MATCH));
    rc |= proto_pack_cstr(pk, "no_match_reasons");
    rc |= msgpack_pack_map(pk, REASON__COUNT);
    for (unsigned r = 0; r < REASON__COUNT; r++) {
        rc |= proto_pack_cstr(pk, match_reason_name(r));
        rc |= pack_value(pk, count_cell(t, m, C_REASON + (int)r));
    }
    rc |= proto_pack_cstr(pk, "holds");
    rc |= pack_value(pk, count_cell(t, m, C_HOLDS));
    rc |= proto_pack_cstr(pk, "acceptances");
    rc |= pack_value(pk, count_cell(t, m, C_ACCEPTANCES));
    rc |= proto_pack_cstr(pk, "declines");
    rc |= msgpack_pack_map(pk, DECLINE__COUNT);
    for (unsigned d = 0; d < DECLINE__COUNT; d++) {
        rc |= proto_pack_cstr(pk, proto_decline_name(d));
        rc |= pack_value(pk, count_cell(t, m, C_DECLINE + (int)d));
    }
    rc |= proto_pack_cstr(pk, "expiries");
    rc |= pack_value(pk, count_cell(t, m, C_EXPIRIES));
    rc |= proto_pack_cstr(pk, "placements");
    rc |= pack_value(pk, count_cell(t, m, C_PLACEMENTS));
    rc |= proto_pack_cstr(pk, "discharges");
    rc |= pack_value(pk, count_cell(t, m, C_DISCHARGES));
    static const char *const medians[H__COUNT] = {"median_minutes_to_acceptance",
                                                  "median_minutes_to_arrival"};
    for (unsigned h = 0; h < H__COUNT; h++) {
        int64_t v = median_cell(t, m, (enum hist)h);
        *failed = *failed || v == -3;
        rc |= proto_pack_cstr(pk, medians[h]);
        rc |= pack_value(pk, v);
    }
    rc |= proto_pack_cstr(pk, "children_placed");
    rc |= msgpack_pack_map(pk, 3);
    for (unsigned b = 0; b < 3; b++) {
        rc |= proto_pack_cstr(pk, bands[b]);
        rc |= pack_value(pk, count_cell(t, m, C_CHILDREN + (int)b));
    }
    rc |= proto_pack_cstr(pk, "nights");
    rc |= pack_value(pk, nights_cell(t, m));
    return rc;
}

/* Fills the table from the store's cells: {{municipality, month, {field, count, ...}}, ...}. */
static int fill(struct table *t, const msgpack_object *cells)
{
    if (!cells || cells->type != MSGPACK_OBJECT_ARRAY)
        return 0; /* none at all (an empty table may come as a map) */
    for (uint32_t i = 0; i < cells->via.array.size; i++) {
        const msgpack_object *row = &cells->via.array.ptr[i];
        char code[5], month[8];
        if (row->type != MSGPACK_OBJECT_ARRAY || row->via.array.size != 3 ||
            !str_copy(&row->via.array.ptr[0], code, sizeof code) ||
            !str_copy(&row->via.array.ptr[1], month, sizeof month))
            continue;
        int mun = proto_municipality_index(code, strlen(code));
        int mo = proto_month_parse(month, strlen(month));
        if (mun < 0 || mo < t->from || mo >= t->from + (int)t->n_months)
            continue;
        unsigned j = 0;
        while (j < t->n_muns && t->muns[j] != (unsigned)mun)
            j++;
        if (j == t->n_muns)
            continue; /* outside the area */
        const msgpack_object *flat = &row->via.array.ptr[2];
        if (flat->type != MSGPACK_OBJECT_ARRAY)
            continue;
        struct cell *c = at(t, (unsigned)(mo - t->from), j);
        for (uint32_t f = 0; f + 1 < flat->via.array.size; f += 2) {
            if (take_field(c, &flat->via.array.ptr[f], &flat->via.array.ptr[f + 1]) < 0)
                return -1;
        }
    }
    return 0;
}

static void table_free(struct table *t)
{
    if (!t->cells)
        return;
    for (size_t i = 0; i < (size_t)t->n_months * t->n_muns; i++) {
        for (unsigned h = 0; h < H__COUNT; h++) {
            free(t->cells[i].h[h].minutes);
            free(t->cells[i].h[h].counts);
        }
    }
    free(t->cells);
}

int followup_shape(const struct op_ctx *x, const msgpack_object *r, const msgpack_object *snapshot,
                   msgpack_packer *pk)
{
    (void)snapshot;
    char area[5] = "", from[8], to[8];
    struct table t = {0};
    t.county = str_copy(proto_map_get(r, "county"), area, 3);
    if (!t.county && !str_copy(proto_map_get(r, "municipality"), area, sizeof area))
        return -1;
    if (!str_copy(proto_map_get(r, "from_month"), from, sizeof from) ||
        !str_copy(proto_map_get(r, "to_month"), to, sizeof to))
        return -1;
    t.from = proto_month_parse(from, strlen(from));
    int last = proto_month_parse(to, strlen(to));
    if (t.from < 0 || last < t.from || last - t.from >= (int)PROTO_MAX_MONTHS)
        return -1;
    t.n_months = (unsigned)(last - t.from + 1);
    for (unsigned i = 0; i < PROTO_MUNICIPALITIES; i++) {
        bool in = t.county ? memcmp(x->geo->m[i].county, area, 2) == 0
                           : strcmp(x->geo->m[i].code, area) == 0;
        if (in)
            t.muns[t.n_muns++] = i;
    }
    if (t.n_muns == 0)
        return -1;
    t.cells = calloc((size_t)t.n_months * t.n_muns, sizeof *t.cells);
    if (!t.cells || fill(&t, proto_map_get(r, "cells")) < 0) {
        table_free(&t);
        return -1;
    }
    bool failed = false;
    int rc = msgpack_pack_map(pk, 4);
    rc |= proto_pack_kv_str(pk, t.county ? "county" : "municipality", area);
    rc |= proto_pack_kv_str(pk, "from_month", from);
    rc |= proto_pack_kv_str(pk, "to_month", to);
    rc |= proto_pack_cstr(pk, "months");
    rc |= msgpack_pack_array(pk, t.n_months);
    for (unsigned m = 0; m < t.n_months; m++)
        rc |= pack_month(pk, &t, m, &failed);
    table_free(&t);
    return rc || failed ? -1 : 0;
}
