/* The available units by municipality, and their histograms: see avail.h. */
#include <stdlib.h>
#include <string.h>

#include "avail.h"

struct avail *avail_new(void)
{
    struct avail *av = calloc(1, sizeof *av);
    if (!av)
        return NULL;
    for (unsigned r = 0; r < REASON__COUNT; r++) {
        if (match_rules[r].kind == RULE_PLACE)
            continue;
        if (!(av->hist[r] = calloc(match_rules[r].n_bins, sizeof *av->hist[r]))) {
            avail_free(av);
            return NULL;
        }
    }
    return av;
}

/* The bucket of a shelter's units. */
static struct avail_bucket *bucket_of(struct avail *av, const struct idx_shelter *s)
{
    unsigned part = match_rules[AVAIL_PART_RULE].bin(s, NULL);
    return &av->bucket[s->mun][part < AVAIL_PARTS ? part : AVAIL_PARTS - 1];
}

void avail_free(struct avail *av)
{
    if (!av)
        return;
    for (unsigned b = 0; b < PROTO_MUNICIPALITIES; b++) {
        for (unsigned p = 0; p < AVAIL_PARTS; p++)
            free(av->bucket[b][p].rec);
    }
    for (unsigned r = 0; r < REASON__COUNT; r++)
        free(av->hist[r]);
    free(av);
}

static unsigned available_units(const struct idx_shelter *s)
{
    unsigned n = 0;
    for (unsigned k = 0; k < s->n_units; k++)
        n += match_unit_available(s, &s->units[k]);
    return n;
}

int avail_reserve(struct avail *av, const struct idx_shelter *s)
{
    struct avail_bucket *b = bucket_of(av, s);
    uint32_t need = b->n + available_units(s);
    if (need <= b->cap)
        return 0;
    uint32_t cap = b->cap ? b->cap : 8;
    while (cap < need)
        cap *= 2;
    struct avail_rec *grown = realloc(b->rec, cap * sizeof *grown);
    if (!grown)
        return -1;
    b->rec = grown;
    b->cap = cap;
    return 0;
}

/* The first six bytes of the id, as a number that orders as strcmp does. */
static uint64_t id_prefix(const char *id)
{
    uint64_t v = 0;
    unsigned i = 0;
    for (; i < 6 && id[i]; i++)
        v = v << 8 | (uint8_t)id[i];
    return v << (8 * (6 - i));
}

/* Counts the unit in (delta 1) or out of (delta -1) each rule's histogram. */
static void count(struct avail *av, const struct idx_shelter *s, const struct idx_unit *u,
                  uint32_t delta)
{
    for (unsigned r = 0; r < REASON__COUNT; r++) {
        const struct match_rule *rule = &match_rules[r];
        if (rule->kind == RULE_BIN) {
            av->hist[r][rule->bin(s, u)] += delta;
        } else if (rule->kind == RULE_MEMBER) {
            unsigned m[PROTO_MAX_LANGUAGES];
            unsigned n = rule->members(s, u, m);
            for (unsigned i = 0; i < n; i++)
                av->hist[r][m[i]] += delta;
        }
    }
    av->in_place[s->mun] += delta;
    av->total += delta;
}

/* The record of one available unit. */
static void make_rec(struct avail_rec *rec, const struct idx_shelter *s, unsigned k)
{
    const struct idx_unit *u = &s->units[k];
    memset(rec, 0, sizeof *rec);
    rec->s = s;
    rec->unit = k;
    rec->updated_ms = s->updated_ms;
    rec->always = s->intake.always;
    for (unsigned r = 0; r < REASON__COUNT; r++) {
        const struct match_rule *rule = &match_rules[r];
        if (rule->kind == RULE_BIN) {
            rec->bin[r] = (uint8_t)rule->bin(s, u);
        } else if (rule->kind == RULE_MEMBER) {
            unsigned m[PROTO_MAX_LANGUAGES];
            unsigned n = rule->members(s, u, m);
            for (unsigned i = 0; i < n; i++)
                rec->members |= AVAIL_MEMBER_BIT(r, m[i]);
        }
    }
    rec->rank = (uint64_t)u->beds << AVAIL_RANK_BEDS_SHIFT | id_prefix(s->id);
}

/* Adds the available units of `s` to its bucket, in order or at the end. */
static void add(struct avail *av, const struct idx_shelter *s, bool in_order)
{
    struct avail_bucket *b = bucket_of(av, s);
    for (unsigned k = 0; k < s->n_units; k++) {
        const struct idx_unit *u = &s->units[k];
        if (!match_unit_available(s, u))
            continue;
        struct avail_rec rec;
        make_rec(&rec, s, k);
        uint32_t at = b->n;
        if (in_order) {
            uint32_t lo = 0, hi = b->n;
            while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                if (b->rec[mid].rank <= rec.rank)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            at = lo;
            memmove(b->rec + at + 1, b->rec + at, (b->n - at) * sizeof *b->rec);
        }
        b->rec[at] = rec; /* room reserved */
        b->n++;
        count(av, s, u, 1);
        if (s->updated_ms > b->max_updated_ms)
            b->max_updated_ms = s->updated_ms;
    }
}

void avail_add(struct avail *av, const struct idx_shelter *s)
{
    add(av, s, true);
}

void avail_append(struct avail *av, const struct idx_shelter *s)
{
    add(av, s, false);
}

static int by_rank(const void *pa, const void *pb)
{
    const struct avail_rec *a = pa, *b = pb;
    return a->rank < b->rank ? -1 : a->rank > b->rank;
}

void avail_sort(struct avail *av)
{
    for (unsigned i = 0; i < PROTO_MUNICIPALITIES; i++) {
        for (unsigned p = 0; p < AVAIL_PARTS; p++) {
            struct avail_bucket *b = &av->bucket[i][p];
            if (b->n > 1)
                qsort(b->rec, b->n, sizeof *b->rec, by_rank);
        }
    }
}

void avail_remove(struct avail *av, const struct idx_shelter *s)
{
    if (!av || available_units(s) == 0)
        return;
    struct avail_bucket *b = bucket_of(av, s);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        if (b->rec[i].s == s)
            count(av, s, &s->units[b->rec[i].unit], (uint32_t)-1);
        else
            b->rec[kept++] = b->rec[i];
    }
    b->n = kept;
}
