/*
 * Eligibility and ranking. Every available unit is checked against every rule, not just up to
 * the first failure, because the counts per reason are what tells a social worker (and the
 * yearly follow-up) why nothing fitted: "no unit for a boy of 15" is an answer in itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avail.h"
#include "intake.h"
#include "match.h"

/* ---- the rules ---------------------------------------------------------------------------- */

static unsigned bin_place(const struct idx_shelter *s, const struct idx_unit *u)
{
    (void)u;
    return s->mun;
}

static bool fails_place(const struct match_referral *m, unsigned mun)
{
    return muni_set_has(&m->excluded, mun);
}

/* The units that fails_place rules out, of `in_place` units per municipality: a sum over the
 * members of the excluded set, not a test of every municipality. */
static uint32_t count_place_fails(const struct match_referral *m, const uint32_t *in_place)
{
    uint32_t n = 0;
    for (unsigned k = 0; k < GEO_WORDS; k++) {
        for (uint64_t bits = m->excluded.w[k]; bits; bits &= bits - 1)
            n += in_place[k * 64 + (unsigned)__builtin_ctzll(bits)];
    }
    return n;
}

static unsigned bin_protection(const struct idx_shelter *s, const struct idx_unit *u)
{
    (void)u;
    return s->protection < 3 ? s->protection : 3;
}

static bool fails_protection(const struct match_referral *m, unsigned protection)
{
    return protection < m->min_protection;
}

static unsigned bin_beds(const struct idx_shelter *s, const struct idx_unit *u)
{
    (void)s;
    return u->beds < PROTO_MAX_BEDS ? u->beds : PROTO_MAX_BEDS;
}

static bool fails_beds(const struct match_referral *m, unsigned beds)
{
    return beds < m->household;
}

/* A limit of -1 (none) or 0..max as bin 0 (none) or 1..max+1. */
static unsigned limit_bin(int limit, int max)
{
    if (limit < 0)
        return 0;
    return (unsigned)(limit < max ? limit : max) + 1;
}

static unsigned bin_children(const struct idx_shelter *s, const struct idx_unit *u)
{
    (void)u;
    return limit_bin(s->max_children, 20);
}

static bool fails_children(const struct match_referral *m, unsigned bin)
{
    return bin != 0 && m->args->n_children > bin - 1;
}

static unsigned bin_boys(const struct idx_shelter *s, const struct idx_unit *u)
{
    (void)u;
    return limit_bin(s->boys_max_age, 17);
}

static bool fails_boys(const struct match_referral *m, unsigned bin)
{
    return bin != 0 && m->oldest_boy > (int)bin - 1;
}

static unsigned bin_groups(const struct idx_shelter *s, const struct idx_unit *u)
{
    (void)u;
    return s->groups & ((1u << GROUP__COUNT) - 1);
}

static bool fails_groups(const struct match_referral *m, unsigned groups)
{
    return !(groups & (1u << m->group));
}

static unsigned bin_accessible(const struct idx_shelter *s, const struct idx_unit *u)
{
    (void)s;
    return u->accessible;
}

static bool fails_wheelchair(const struct match_referral *m, unsigned accessible)
{
    return proto_has(m->args, F_WHEELCHAIR) && m->args->wheelchair && !accessible;
}

static unsigned bin_pets(const struct idx_shelter *s, const struct idx_unit *u)
{
    (void)u;
    return s->pets;
}

static bool fails_pets(const struct match_referral *m, unsigned pets)
{
    return proto_has(m->args, F_PETS) && m->args->pets && !pets;
}

static unsigned bin_substance(const struct idx_shelter *s, const struct idx_unit *u)
{
    (void)u;
    return s->substance;
}

static bool fails_substance(const struct match_referral *m, unsigned substance)
{
    return proto_has(m->args, F_SUBSTANCE) && m->args->substance && !substance;
}

int match_language_bin(const char *code)
{
    size_t n = strlen(code);
    if (n < 2 || n > 3)
        return -1;
    int bin = 0;
    for (size_t i = 0; i < 3; i++) {
        int c = i < n ? code[i] - 'a' + 1 : 0;
        if (i < n && (c < 1 || c > 26))
            return -1;
        bin = bin * 27 + c;
    }
    return bin;
}

/* The shelter's languages, each once; codes that are not a language have no bin. */
static unsigned members_languages(const struct idx_shelter *s, const struct idx_unit *u,
                                  unsigned *out)
{
    (void)u;
    unsigned n = 0;
    for (unsigned i = 0; i < s->n_languages && i < PROTO_MAX_LANGUAGES; i++) {
        int b = match_language_bin(s->languages[i]);
        bool seen = b < 0;
        for (unsigned k = 0; k < n && !seen; k++)
            seen = out[k] == (unsigned)b;
        if (!seen)
            out[n++] = (unsigned)b;
    }
    return n;
}

static int wants_language(const struct match_referral *m)
{
    return m->language;
}

static unsigned bin_competences(const struct idx_shelter *s, const struct idx_unit *u)
{
    (void)u;
    return s->competences & ((1u << COMP__COUNT) - 1);
}

/* Every competence the referral needs, the shelter must have. */
static bool fails_competences(const struct match_referral *m, unsigned competences)
{
    return proto_has(m->args, F_NEED) && (m->args->need & ~competences) != 0;
}

/*
 * Since 1 April 2024 protected housing run by a non-profit or a company needs an IVO permit,
 * and a municipality's own must be registered with IVO. A unit whose shelter cannot show that
 * is never offered; nor is one whose operator was never recorded (a record from before these
 * fields existed): Fristad cannot tell that it may be offered until an admin records it.
 */
static unsigned bin_permit(const struct idx_shelter *s, const struct idx_unit *u)
{
    (void)u;
    if (s->kind != KIND_SKYDDAT_BOENDE)
        return 0;
    switch (s->operator_) {
    case OPERATOR_IDEELL:
    case OPERATOR_PRIVAT:
        return s->ivo_permit[0] == '\0';
    case OPERATOR_KOMMUNAL:
        return !s->ivo_registered;
    default:
        return 1;
    }
}

static bool fails_permit(const struct match_referral *m, unsigned lacks)
{
    (void)m;
    return lacks != 0;
}

/* clang-format off */
const struct match_rule match_rules[REASON__COUNT] = {
    [REASON_SAFETY_POLICY] = {RULE_PLACE, PROTO_MUNICIPALITIES, bin_place, fails_place, NULL, NULL},
    [REASON_PROTECTION_LEVEL] = {RULE_BIN, 4, bin_protection, fails_protection, NULL, NULL},
    [REASON_BEDS] = {RULE_BIN, PROTO_MAX_BEDS + 1, bin_beds, fails_beds, NULL, NULL},
    [REASON_CHILDREN_LIMIT] = {RULE_BIN, 22, bin_children, fails_children, NULL, NULL},
    [REASON_BOYS_AGE] = {RULE_BIN, 19, bin_boys, fails_boys, NULL, NULL},
    [REASON_TARGET_GROUP] = {RULE_BIN, 1u << GROUP__COUNT, bin_groups, fails_groups, NULL, NULL},
    [REASON_WHEELCHAIR] = {RULE_BIN, 2, bin_accessible, fails_wheelchair, NULL, NULL},
    [REASON_PETS] = {RULE_BIN, 2, bin_pets, fails_pets, NULL, NULL},
    [REASON_SUBSTANCE] = {RULE_BIN, 2, bin_substance, fails_substance, NULL, NULL},
    [REASON_LANGUAGE] = {RULE_MEMBER, MATCH_LANGUAGE_BINS, NULL, NULL, members_languages,
                         wants_language},
    [REASON_COMPETENCE] = {RULE_BIN, 1u << COMP__COUNT, bin_competences, fails_competences, NULL,
                           NULL},
    [REASON_PERMIT] = {RULE_BIN, 2, bin_permit, fails_permit, NULL, NULL},
};
/* clang-format on */

static const char *const reason_names[REASON__COUNT] = {
    "safety_policy", "protection_level", "beds",       "children_limit",
    "boys_age",      "target_group",     "wheelchair", "pets",
    "substance",     "language",         "competence", "permit",
};

const char *match_reason_name(enum match_reason r)
{
    return (unsigned)r < REASON__COUNT ? reason_names[r] : "?";
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
    m->oldest_boy = -1;
    for (unsigned i = 0; i < a->n_children && i < PROTO_MAX_CHILDREN; i++) {
        if (a->children[i].sex == 'm' && a->children[i].age > m->oldest_boy)
            m->oldest_boy = a->children[i].age;
    }
    m->language = -1;
    if (proto_has(a, F_LANGUAGE)) {
        int b = match_language_bin(a->language);
        m->language = b < 0 ? 0 : b; /* bin 0 is no shelter's: nobody speaks a non-language */
    }
    policy_excluded(p, g, a, &m->excluded);
    return 0;
}

static bool has_member(const struct match_rule *rule, const struct idx_shelter *s,
                       const struct idx_unit *u, unsigned want)
{
    unsigned m[PROTO_MAX_LANGUAGES];
    unsigned n = rule->members(s, u, m);
    for (unsigned i = 0; i < n; i++) {
        if (m[i] == want)
            return true;
    }
    return false;
}

unsigned match_reasons(const struct match_referral *m, const struct idx_shelter *s,
                       const struct idx_unit *u)
{
    unsigned reasons = 0;
    for (unsigned r = 0; r < REASON__COUNT; r++) {
        const struct match_rule *rule = &match_rules[r];
        bool fails;
        if (rule->kind == RULE_MEMBER) {
            int want = rule->wants(m);
            fails = want >= 0 && !has_member(rule, s, u, (unsigned)want);
        } else {
            fails = rule->fails(m, rule->bin(s, u));
        }
        reasons |= (unsigned)fails << r;
    }
    return reasons;
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

void match_outcome_free(struct match_outcome *out)
{
    free(out->hits);
    out->hits = NULL;
    out->n_hits = 0;
}

static unsigned search_limit(const struct proto_args *a)
{
    return proto_has(a, F_LIMIT) && a->limit > 0 ? a->limit : 20u;
}

/* ---- the reference: every unit, by the definition ---------------------------------------- */

static int hit_cmp(const struct match_hit *a, const struct match_hit *b)
{
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

/* Keeps the best `limit` hits in order. */
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

static void fill_hit(struct match_hit *h, const struct geo *g, const struct match_referral *m,
                     const struct idx_shelter *s, const struct idx_unit *u, int64_t now_ms,
                     int64_t stale_after_ms, bool receives)
{
    h->shelter = s;
    h->unit = u;
    h->distance_km = geo_distance_km(g, m->home, s->mun);
    h->stale = match_is_stale(s, now_ms, stale_after_ms);
    h->receives = receives;
    h->age_s = match_age_s(s, now_ms);
}

int match_scan(const struct index *ix, const struct geo *g, const struct policy *p,
               const struct proto_args *a, int64_t now_ms, int64_t stale_after_ms,
               struct match_outcome *out)
{
    struct match_referral m;
    unsigned limit = search_limit(a);
    int64_t arrival = proto_has(a, F_ARRIVAL_AT) ? a->arrival_at : now_ms;

    memset(out, 0, sizeof *out);
    if (match_prepare(&m, g, p, a) < 0)
        return -1;
    out->hits = malloc(limit * sizeof *out->hits);
    if (!out->hits)
        return -1;
    for (unsigned i = 0; i < ix->n; i++) {
        const struct idx_shelter *s = ix->shelters[i];
        for (unsigned k = 0; k < s->n_units; k++) {
            const struct idx_unit *u = &s->units[k];
            if (!match_unit_available(s, u))
                continue;
            unsigned r = match_reasons(&m, s, u);
            out->considered++;
            if (r) {
                for (unsigned b = 0; b < REASON__COUNT; b++)
                    out->ruled_out[b] += (r >> b) & 1u;
                continue;
            }
            struct match_hit h;
            fill_hit(&h, g, &m, s, u, now_ms, stale_after_ms, intake_open_at(&s->intake, arrival));
            keep_best(out, limit, &h);
        }
    }
    return 0;
}

/* ---- the search: nearest first, from the available units --------------------------------- */

/* For each RULE_BIN rule that rules anything out, the bins that pass, as a bit set. */
struct pass_table {
    unsigned n;                   /* rules in the table */
    unsigned rule[REASON__COUNT]; /* which */
    uint64_t pass[REASON__COUNT][MATCH_RECORD_BINS / 64];
};

/* A hit while walking: the packed rank key and where it is. */
struct cand {
    uint64_t key;
    const struct avail_rec *rec;
};

/* a before b? By key, then by the whole ids where the key's prefix of them is equal. */
static bool cand_before(const struct cand *a, const struct cand *b)
{
    if (a->key != b->key)
        return a->key < b->key;
    const struct idx_shelter *sa = a->rec->s, *sb = b->rec->s;
    int c = sa == sb ? 0 : strcmp(sa->id, sb->id);
    if (c == 0)
        c = strcmp(sa->units[a->rec->unit].id, sb->units[b->rec->unit].id);
    return c < 0;
}

/* The counts per reason, a sum over the bins each rule rules out. */
static void count_ruled_out(const struct avail *av, const struct match_referral *m,
                            struct match_outcome *out, struct pass_table *pt)
{
    pt->n = 0;
    out->considered = av->total;
    for (unsigned r = 0; r < REASON__COUNT; r++) {
        const struct match_rule *rule = &match_rules[r];
        uint32_t n = 0;
        if (rule->kind == RULE_PLACE) {
            n = count_place_fails(m, av->in_place); /* the one RULE_PLACE rule */
        } else if (rule->kind == RULE_MEMBER) {
            int want = rule->wants(m);
            n = want < 0 ? 0 : av->total - av->hist[r][want];
        } else {
            uint64_t *pass = pt->pass[pt->n];
            bool all = true;
            memset(pass, 0, sizeof pt->pass[0]);
            for (unsigned b = 0; b < rule->n_bins; b++) {
                /* No unit is in an empty bin: its count is nothing, and no record has it. */
                if (av->hist[r][b] == 0)
                    continue;
                if (rule->fails(m, b)) {
                    n += av->hist[r][b];
                    all = false;
                } else {
                    pass[b / 64] |= UINT64_C(1) << (b % 64);
                }
            }
            if (!all)
                pt->rule[pt->n++] = r;
        }
        out->ruled_out[r] = n;
    }
}

/* Without a branch per rule: most units fail some rule, at random, and mispredicted branches
 * would cost more than the rules that need not have been looked at. */
static bool record_passes(const struct pass_table *pt, const struct avail_rec *rec)
{
    uint64_t ok = 1;
    for (unsigned i = 0; i < pt->n; i++) {
        unsigned b = rec->bin[pt->rule[i]];
        ok &= pt->pass[i][b / 64] >> (b % 64);
    }
    return ok & 1u;
}

int match_search(const struct index *ix, const struct geo *g, const struct policy *p,
                 const struct proto_args *a, int64_t now_ms, int64_t stale_after_ms,
                 struct match_outcome *out)
{
    struct match_referral m;
    struct pass_table pt;
    unsigned limit = search_limit(a);
    int64_t arrival = proto_has(a, F_ARRIVAL_AT) ? a->arrival_at : now_ms;
    const struct avail *av = ix->avail;

    memset(out, 0, sizeof *out);
    if (match_prepare(&m, g, p, a) < 0)
        return -1;
    struct cand best[PROTO_MAX_LIMIT];
    if (limit > PROTO_MAX_LIMIT)
        limit = PROTO_MAX_LIMIT;
    out->hits = malloc(limit * sizeof *out->hits);
    if (!out->hits)
        return -1;
    if (!av)
        return 0;
    count_ruled_out(av, &m, out, &pt);

    const struct match_rule *place = &match_rules[REASON_SAFETY_POLICY];
    const struct match_rule *part = &match_rules[AVAIL_PART_RULE];
    const struct match_rule *lang = &match_rules[REASON_LANGUAGE];
    const struct match_rule *beds = &match_rules[REASON_BEDS];
    int want_lang = lang->wants(&m);
    uint64_t lang_bit = want_lang >= 0 ? AVAIL_MEMBER_BIT(REASON_LANGUAGE, (unsigned)want_lang) : 0;
    bool part_ok[AVAIL_PARTS];
    for (unsigned k = 0; k < AVAIL_PARTS; k++)
        part_ok[k] = !part->fails(&m, k);
    /* Buckets are by rank, beds first: the units with too few beds for anyone are skipped. */
    unsigned min_beds = 0;
    while (min_beds < beds->n_bins && beds->fails(&m, min_beds))
        min_beds++;
    uint64_t first_rank = (uint64_t)min_beds << AVAIL_RANK_BEDS_SHIFT;
    struct intake_moment at;
    intake_moment_of(arrival, &at);
    unsigned n = 0;
    for (unsigned i = 0; i < PROTO_MUNICIPALITIES; i++) {
        unsigned mun = g->near[m.home][i];
        if (av->in_place[mun] == 0 || place->fails(&m, mun))
            continue;
        uint64_t dist = g->dist_rank[m.home][mun];
        uint64_t base = dist << AVAIL_RANK_DIST_SHIFT;
        for (unsigned pt_i = 0; pt_i < AVAIL_PARTS; pt_i++) {
            const struct avail_bucket *b = &av->bucket[mun][pt_i];
            if (!part_ok[pt_i] || b->n == 0)
                continue;
            if (n == limit) {
                /* Every unit here and further on is further away than the worst hit kept:
                 * only a better class could still rank above it. */
                uint64_t worst = best[n - 1].key;
                uint64_t worst_class = worst >> AVAIL_RANK_CLASS_SHIFT;
                uint64_t worst_dist = (worst >> AVAIL_RANK_DIST_SHIFT) & 511u;
                if (dist > worst_dist) {
                    if (worst_class == 0)
                        goto done;
                    bool may_be_fresh = now_ms - b->max_updated_ms < stale_after_ms;
                    if ((may_be_fresh ? 0u : 2u) >= worst_class)
                        continue;
                }
            }
            uint32_t lo = 0, hi = b->n;
            while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                if (b->rec[mid].rank < first_rank)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            for (uint32_t k = lo; k < b->n; k++) {
                const struct avail_rec *rec = &b->rec[k];
                /* By rank from here on: once even the best class cannot beat the worst hit
                 * kept, nothing further in this bucket can. */
                if (n == limit && (base | rec->rank) > best[n - 1].key)
                    break;
                if (!record_passes(&pt, rec))
                    continue;
                const struct idx_shelter *s = rec->s;
                if (want_lang >= 0 &&
                    (!(rec->members & lang_bit) ||
                     !has_member(lang, s, &s->units[rec->unit], (unsigned)want_lang)))
                    continue;
                uint64_t cls = (uint64_t)(now_ms - rec->updated_ms >= stale_after_ms) << 1 |
                               (uint64_t) !(rec->always || intake_open_in(&s->intake, &at));
                struct cand c = {cls << AVAIL_RANK_CLASS_SHIFT | base | rec->rank, rec};
                if (n == limit && !cand_before(&c, &best[n - 1]))
                    continue;
                unsigned at_pos = n == limit ? n - 1 : n;
                while (at_pos > 0 && cand_before(&c, &best[at_pos - 1])) {
                    best[at_pos] = best[at_pos - 1];
                    at_pos--;
                }
                best[at_pos] = c;
                if (n < limit)
                    n++;
            }
        }
    }
done:
    for (unsigned i = 0; i < n; i++) {
        const struct idx_shelter *s = best[i].rec->s;
        bool receives = !((best[i].key >> AVAIL_RANK_CLASS_SHIFT) & 1u);
        fill_hit(&out->hits[i], g, &m, s, &s->units[best[i].rec->unit], now_ms, stale_after_ms,
                 receives);
    }
    out->n_hits = n;
    return 0;
}
