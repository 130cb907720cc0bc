/*
 * Eligibility and ranking. Every free unit is checked against every rule, not just up to the
 * first failure, because the counts per reason are what tells a social worker (and the yearly
 * follow-up) why nothing fitted: "no unit for a boy of 15" is an answer in itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake.h"
#include "match.h"

static const char *const reason_names[REASON__COUNT] = {
    "safety_policy", "protection_level", "beds",       "children_limit",
    "boys_age",      "target_group",     "wheelchair", "pets",
    "substance",     "language",         "competence", "permit",
};

const char *match_reason_name(enum match_reason r)
{
    return (unsigned)r < REASON__COUNT ? reason_names[r] : "?";
}

bool match_unit_available(const struct idx_shelter *s, const struct idx_unit *u)
{
    return !s->retired && !s->paused && u->state == VAC_FREE && !u->held && !u->placed;
}

int64_t match_age_s(const struct idx_shelter *s, int64_t now_ms)
{
    int64_t age = now_ms - s->updated_ms;
    return age > 0 ? age / 1000 : 0;
}

bool match_is_stale(const struct idx_shelter *s, int64_t now_ms, int64_t stale_after_ms)
{
    return now_ms - s->updated_ms >= stale_after_ms;
}

static bool speaks(const struct idx_shelter *s, const char *lang)
{
    for (unsigned i = 0; i < s->n_languages; i++) {
        if (strcmp(s->languages[i], lang) == 0)
            return true;
    }
    return false;
}

int match_prepare(struct match_referral *m, const struct geo *g, const struct policy *p,
                  const struct proto_args *a)
{
    int home = proto_municipality_index(a->home, strlen(a->home));
    unsigned risk = a->risk < RISK__COUNT ? a->risk : RISK_SEVERE;
    if (home < 0)
        return -1;
    m->args = a;
    m->min_protection = p->level[risk].min_protection;
    m->household = (proto_has(a, F_ADULTS) ? a->adults : 1u) + a->n_children;
    m->home = (unsigned)home;
    m->group = proto_has(a, F_GROUP) ? a->group : GROUP_WOMEN;
    policy_excluded(p, g, a, &m->excluded);
    return 0;
}

/*
 * Since 1 April 2024 protected housing run by a non-profit or a company needs an IVO permit,
 * and a municipality's own must be registered with IVO. A unit whose shelter cannot show that
 * is never offered; nor is one whose operator was never recorded (a record from before these
 * fields existed): Fristad cannot tell that it may be offered until an admin records it.
 */
static bool lacks_permit(const struct idx_shelter *s)
{
    if (s->kind != KIND_SKYDDAT_BOENDE)
        return false;
    switch (s->operator_) {
    case OPERATOR_IDEELL:
    case OPERATOR_PRIVAT:
        return s->ivo_permit[0] == '\0';
    case OPERATOR_KOMMUNAL:
        return !s->ivo_registered;
    default:
        return true;
    }
}

/* Competences the referral needs and the shelter lacks, and the permit of protected housing. */
static unsigned practice_reasons(const struct match_referral *m, const struct idx_shelter *s)
{
    const struct proto_args *a = m->args;
    unsigned r = 0;
    if (proto_has(a, F_NEED) && (a->need & ~s->competences))
        r |= 1u << REASON_COMPETENCE;
    if (lacks_permit(s))
        r |= 1u << REASON_PERMIT;
    return r;
}

/* The reasons that depend on the shelter alone (search computes them once per shelter). */
static unsigned shelter_reasons(const struct match_referral *m, const struct idx_shelter *s)
{
    const struct proto_args *a = m->args;
    unsigned r = 0;

    if (muni_set_has(&m->excluded, s->mun))
        r |= 1u << REASON_SAFETY_POLICY;
    if (s->protection < m->min_protection)
        r |= 1u << REASON_PROTECTION_LEVEL;
    if (s->max_children != IDX_NO_LIMIT && a->n_children > s->max_children)
        r |= 1u << REASON_CHILDREN_LIMIT;
    if (s->boys_max_age != IDX_NO_LIMIT) {
        for (unsigned i = 0; i < a->n_children; i++) {
            if (a->children[i].sex == 'm' && a->children[i].age > s->boys_max_age)
                r |= 1u << REASON_BOYS_AGE;
        }
    }
    if (!(s->groups & (1u << m->group)))
        r |= 1u << REASON_TARGET_GROUP;
    if (proto_has(a, F_PETS) && a->pets && !s->pets)
        r |= 1u << REASON_PETS;
    if (proto_has(a, F_SUBSTANCE) && a->substance && !s->substance)
        r |= 1u << REASON_SUBSTANCE;
    if (proto_has(a, F_LANGUAGE) && !speaks(s, a->language))
        r |= 1u << REASON_LANGUAGE;
    return r | practice_reasons(m, s);
}

/* The reasons that depend on the unit. */
static unsigned unit_reasons(const struct match_referral *m, const struct idx_unit *u)
{
    const struct proto_args *a = m->args;
    unsigned r = 0;
    if (u->beds < m->household)
        r |= 1u << REASON_BEDS;
    if (proto_has(a, F_WHEELCHAIR) && a->wheelchair && !u->accessible)
        r |= 1u << REASON_WHEELCHAIR;
    return r;
}

unsigned match_reasons(const struct match_referral *m, const struct idx_shelter *s,
                       const struct idx_unit *u)
{
    return shelter_reasons(m, s) | unit_reasons(m, u);
}

void match_reasons_text(unsigned reasons, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned b = 0; b < REASON__COUNT; b++) {
        if (!(reasons & (1u << b)))
            continue;
        int w = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", reason_names[b]);
        if (w < 0 || (size_t)w >= cap - used)
            return;
        used += (size_t)w;
    }
}

static int hit_cmp(const void *pa, const void *pb)
{
    const struct match_hit *a = pa, *b = pb;
    if (a->stale != b->stale)
        return a->stale ? 1 : -1;
    if (a->receives != b->receives)
        return a->receives ? -1 : 1;
    if (a->distance_km != b->distance_km)
        return a->distance_km < b->distance_km ? -1 : 1;
    if (a->unit->beds != b->unit->beds)
        return a->unit->beds < b->unit->beds ? -1 : 1;
    int c = strcmp(a->shelter->id, b->shelter->id);
    return c ? c : strcmp(a->unit->id, b->unit->id);
}

/*
 * Keeps the best `limit` hits in order while scanning: a referral search wants the first few
 * of possibly thousands of eligible units, so sorting them all would be wasted work.
 */
static void keep_best(struct match_outcome *out, unsigned limit, const struct match_hit *h)
{
    unsigned n = out->n_hits;
    if (n == limit && hit_cmp(h, &out->hits[n - 1]) >= 0)
        return;
    unsigned lo = 0, hi = n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (hit_cmp(&out->hits[mid], h) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (n == limit)
        n--; /* the worst drops out */
    memmove(out->hits + lo + 1, out->hits + lo, (n - lo) * sizeof *out->hits);
    out->hits[lo] = *h;
    out->n_hits = n + 1;
}

int match_search(const struct index *ix, const struct geo *g, const struct policy *p,
                 const struct proto_args *a, int64_t now_ms, int64_t stale_after_ms,
                 struct match_outcome *out)
{
    struct match_referral m;
    unsigned limit = proto_has(a, F_LIMIT) && a->limit > 0 ? a->limit : 20u;
    int64_t arrival = proto_has(a, F_ARRIVAL_AT) ? a->arrival_at : now_ms;

    memset(out, 0, sizeof *out);
    if (match_prepare(&m, g, p, a) < 0)
        return -1;
    out->hits = malloc(limit * sizeof *out->hits);
    if (!out->hits)
        return -1;

    for (unsigned i = 0; i < ix->n; i++) {
        const struct idx_shelter *s = ix->shelters[i];
        unsigned base = ~0u; /* computed on the first free unit */
        struct match_hit h = {.shelter = s};
        for (unsigned k = 0; k < s->n_units; k++) {
            const struct idx_unit *u = &s->units[k];
            if (!match_unit_available(s, u))
                continue;
            if (base == ~0u) {
                base = shelter_reasons(&m, s);
                h.distance_km = geo_distance_km(g, m.home, s->mun);
                h.stale = match_is_stale(s, now_ms, stale_after_ms);
                h.receives = intake_open_at(&s->intake, arrival);
                h.age_s = match_age_s(s, now_ms);
            }
            unsigned r = base | unit_reasons(&m, u);
            out->considered++;
            if (r) {
                for (unsigned b = 0; b < REASON__COUNT; b++)
                    out->ruled_out[b] += (r >> b) & 1u;
                continue;
            }
            out->eligible++;
            h.unit = u;
            keep_best(out, limit, &h);
        }
    }
    return 0;
}

void match_outcome_free(struct match_outcome *out)
{
    free(out->hits);
    out->hits = NULL;
    out->n_hits = 0;
}
