/*
 * The search against its definition: on thousands of random registries and referrals, the
 * indexed search (match_search: buckets nearest first, histograms, early stop) returns exactly
 * what the plain scan through match_reasons returns (match_scan): the same units in the same
 * order, with the same freshness, intake and distance, and the same counts per reason. The
 * registries vary what the search depends on: vacancies, holds, placements, paused and retired
 * shelters, stale data, intake hours, languages, ids that share long prefixes, many shelters in
 * one municipality; and they change under it, by the paths the daemon uses (a newer snapshot
 * replaces a shelter, a late older one is ignored, a shelter leaves, a full load).
 *
 * Deterministic: each registry has its own seed, printed when it fails.
 * FRISTAD_DIFF_REGISTRIES sets how many registries (default 1500).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "avail.h"
#include "geo.h"
#include "index.h"
#include "intake.h"
#include "match.h"
#include "policy.h"

#define HOUR_MS INT64_C(3600000)
#define BASE_MS INT64_C(1795000000000) /* 2026-11-18 */

static struct geo geo;
static struct policy policy;
static uint64_t rng;
static unsigned searches, registries;

/* splitmix64 */
static uint64_t next(void)
{
    uint64_t z = (rng += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static unsigned below(unsigned n)
{
    return (unsigned)(next() % n);
}

static bool chance(unsigned percent)
{
    return below(100) < percent;
}

/* A few municipalities most shelters crowd into, so that buckets are large and ties common. */
static const char *const crowded[] = {"0180", "1480", "1280", "0380", "0184", "0186"};
static const char *const languages[] = {"sv", "en", "ar", "fi", "so", "fa", "ti", "bos"};
static const char *const intakes[] = {"mon-fri 08:00-16:30", "daily 22:00-06:00",
                                      "sat-sun 10:00-14:00,mon 09:00-10:00",
                                      "mon-fri 07:00-23:00,sat-sun 10:00-18:00", "wed 00:00-24:00"};

static unsigned pick_municipality(void)
{
    if (chance(50))
        return (unsigned)proto_municipality_index(crowded[below(6)], 4);
    return below(PROTO_MUNICIPALITIES);
}

static void random_id(char *out, size_t cap)
{
    static const char *const stems[] = {"s", "frida-", "kvinnojouren-", "tj", "ab-", ""};
    const char *stem = stems[below(6)];
    int n = snprintf(out, cap, "%s", stem);
    unsigned len = 1 + below(stem[0] ? 5 : 8);
    for (unsigned i = 0; i < len && (size_t)n + 1 < cap; i++)
        out[n++] = "abcdefghijklmnopqrstuvwxyz0123456789-"[below(37)];
    out[n] = '\0';
}

static int unit_by_id(const void *a, const void *b)
{
    return strcmp(((const struct idx_unit *)a)->id, ((const struct idx_unit *)b)->id);
}

/* Units of random vacancies; kept sorted by id as the index keeps them. */
static void random_units(struct idx_shelter *s)
{
    free(s->units);
    s->units = NULL;
    s->n_units = below(7);
    if (s->n_units == 0)
        return;
    s->units = calloc(s->n_units, sizeof *s->units);
    assert_non_null(s->units);
    for (unsigned k = 0; k < s->n_units; k++) {
        struct idx_unit *u = &s->units[k];
        snprintf(u->id, sizeof u->id, "%s%u", chance(50) ? "u" : "lgh", k + 1);
        u->beds = (uint8_t)(chance(90) ? 1 + below(6) : 1 + below(PROTO_MAX_BEDS));
        u->accessible = chance(30);
        unsigned st = below(100);
        u->state = st < 60 ? VAC_FREE : st < 85 ? VAC_OCCUPIED : VAC_CLOSED;
        u->held = chance(10);
        u->placed = chance(5);
    }
    qsort(s->units, s->n_units, sizeof *s->units, unit_by_id);
}

/* What the shelter takes, where it is and how fresh its data is. */
static void random_profile(struct idx_shelter *s, int64_t now)
{
    s->kind = (uint8_t)below(KIND__COUNT);
    s->mun = pick_municipality();
    s->protection = (uint8_t)(1 + below(3));
    s->groups = (uint8_t)(chance(80) ? 1u << GROUP_WOMEN : 0);
    for (unsigned g = 0; g < GROUP__COUNT; g++) {
        if (chance(20))
            s->groups |= (uint8_t)(1u << g);
    }
    s->max_children = chance(50) ? IDX_NO_LIMIT : (int)below(7);
    s->boys_max_age = chance(40) ? IDX_NO_LIMIT : 10 + (int)below(8);
    s->pets = chance(30);
    s->substance = chance(20);
    s->n_languages = 0;
    unsigned nl = below(4);
    for (unsigned i = 0; i < nl; i++) {
        const char *l = chance(5) ? "S1" : languages[below(8)]; /* "S1": no language at all */
        snprintf(s->languages[s->n_languages++], sizeof s->languages[0], "%s", l);
    }
    memset(&s->intake, 0, sizeof s->intake);
    if (chance(50)) {
        s->intake.always = true;
    } else {
        const char *text = intakes[below(5)];
        assert_int_equal(proto_intake_parse(text, strlen(text), &s->intake, NULL), PROTO_OK);
    }
    /* Competences, and who runs it: protected housing without a permit or registration,
     * or with an operator never recorded, is never offered. */
    s->competences = 0;
    for (unsigned c = 0; c < COMP__COUNT; c++) {
        if (chance(30))
            s->competences |= (uint8_t)(1u << c);
    }
    s->operator_ = chance(15) ? IDX_UNKNOWN : (int)below(OPERATOR__COUNT);
    snprintf(s->ivo_permit, sizeof s->ivo_permit, "%s", chance(60) ? "3.5.1-1/2024" : "");
    s->ivo_registered = chance(60);
    s->paused = chance(10);
    s->retired = chance(5);
    /* Many just either side of the usual 24 hours. */
    s->updated_ms = now - (chance(50) ? (int64_t)below(48) * HOUR_MS
                                      : 24 * HOUR_MS + (int64_t)below(120000) - 60000);
}

static struct idx_shelter *random_shelter(const char *id, uint64_t ver, int64_t now)
{
    struct idx_shelter *s = calloc(1, sizeof *s);
    assert_non_null(s);
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->name, sizeof s->name, "Shelter %s", id);
    snprintf(s->phone, sizeof s->phone, "08-000000");
    s->ver = ver;
    random_profile(s, now);
    random_units(s);
    return s;
}

/* A newer snapshot of a shelter: its vacancies, or its profile too, changed. */
static struct idx_shelter *changed_copy(const struct idx_shelter *old, int64_t now)
{
    struct idx_shelter *s = index_shelter_dup(old);
    assert_non_null(s);
    s->ver = old->ver + 1 + below(3);
    switch (below(5)) {
    case 0:
        random_profile(s, now);
        break;
    case 1:
        s->paused = !s->paused;
        break;
    case 2:
        /* a vacancy change is an update */
        s->updated_ms = now - (int64_t)below(30) * HOUR_MS;
        __attribute__((fallthrough));
    case 3:
        if (s->n_units > 0) {
            struct idx_unit *u = &s->units[below(s->n_units)];
            u->state = (uint8_t)below(VAC__COUNT);
            u->held = chance(20);
            u->placed = chance(10);
        }
        break;
    default:
        random_units(s);
        break;
    }
    return s;
}

static void add_children(struct proto_args *a)
{
    a->n_children = (uint8_t)(chance(50) ? 0 : below(5));
    for (unsigned i = 0; i < a->n_children; i++)
        a->children[i] = (struct proto_child){(uint8_t)below(18), chance(50) ? 'm' : 'f'};
    if (a->n_children)
        a->present |= PROTO_BIT(F_CHILDREN);
}

static void random_referral(struct proto_args *a, int64_t now)
{
    memset(a, 0, sizeof *a);
    unsigned home = pick_municipality();
    memcpy(a->home, proto_municipality_code(home), 5);
    a->risk = (uint8_t)below(RISK__COUNT);
    a->present = PROTO_BIT(F_HOME) | PROTO_BIT(F_RISK);
    if (chance(40)) {
        a->n_perpetrator = (uint8_t)(1 + below(2));
        for (unsigned i = 0; i < a->n_perpetrator; i++)
            memcpy(a->perpetrator[i], proto_municipality_code(pick_municipality()), 5);
        a->present |= PROTO_BIT(F_PERPETRATOR);
    }
    if (chance(20)) {
        a->n_exclude = (uint8_t)(1 + below(3));
        for (unsigned i = 0; i < a->n_exclude; i++)
            memcpy(a->exclude[i], proto_municipality_code(pick_municipality()), 5);
        a->present |= PROTO_BIT(F_EXCLUDE);
    }
    if (chance(40)) {
        a->adults = (uint8_t)(1 + below(3));
        a->present |= PROTO_BIT(F_ADULTS);
    }
    add_children(a);
    if (chance(30)) {
        a->group = (uint8_t)below(GROUP__COUNT);
        a->present |= PROTO_BIT(F_GROUP);
    }
    if (chance(25)) {
        a->wheelchair = chance(70);
        a->present |= PROTO_BIT(F_WHEELCHAIR);
    }
    if (chance(25)) {
        a->pets = chance(70);
        a->present |= PROTO_BIT(F_PETS);
    }
    if (chance(20)) {
        a->substance = chance(70);
        a->present |= PROTO_BIT(F_SUBSTANCE);
    }
    if (chance(30)) {
        snprintf(a->language, sizeof a->language, "%s", chance(10) ? "zu" : languages[below(8)]);
        a->present |= PROTO_BIT(F_LANGUAGE);
    }
    if (chance(30)) {
        a->need = (uint8_t)(1u << below(COMP__COUNT));
        if (chance(30))
            a->need |= (uint8_t)(1u << below(COMP__COUNT));
        a->present |= PROTO_BIT(F_NEED);
    }
    if (chance(60)) {
        a->limit = (uint16_t)(1 + below(chance(80) ? 10 : PROTO_MAX_LIMIT));
        a->present |= PROTO_BIT(F_LIMIT);
    }
    if (chance(40)) {
        a->arrival_at = now + (int64_t)below(96) * HOUR_MS - 24 * HOUR_MS;
        a->present |= PROTO_BIT(F_ARRIVAL_AT);
    }
}

static void compare(const struct index *ix, int64_t now, int64_t stale_after, uint64_t seed,
                    const char *when)
{
    struct proto_args a;
    struct match_outcome got, want;
    random_referral(&a, now);
    assert_int_equal(match_search(ix, &geo, &policy, &a, now, stale_after, &got), 0);
    assert_int_equal(match_scan(ix, &geo, &policy, &a, now, stale_after, &want), 0);
    searches++;
    bool same = got.n_hits == want.n_hits && got.considered == want.considered &&
                memcmp(got.ruled_out, want.ruled_out, sizeof got.ruled_out) == 0;
    for (unsigned i = 0; same && i < got.n_hits; i++) {
        const struct match_hit *g = &got.hits[i], *w = &want.hits[i];
        same = g->shelter == w->shelter && g->unit == w->unit && g->distance_km == w->distance_km &&
               g->stale == w->stale && g->receives == w->receives && g->age_s == w->age_s;
        if (!same)
            print_message("hit %u: search %s/%s, scan %s/%s\n", i, g->shelter->id, g->unit->id,
                          w->shelter->id, w->unit->id);
    }
    if (!same) {
        print_message("registry seed %llu, %s: %u shelters; search %u hits, scan %u hits\n",
                      (unsigned long long)seed, when, ix->n, got.n_hits, want.n_hits);
        for (unsigned r = 0; r < REASON__COUNT; r++)
            print_message("  %s: search %u, scan %u\n", match_reason_name(r), got.ruled_out[r],
                          want.ruled_out[r]);
        fail_msg("the search and the scan disagree");
    }
    match_outcome_free(&got);
    match_outcome_free(&want);
}

/* Builds a registry one snapshot at a time, as change events do. */
static void build_by_events(struct index *ix, unsigned n, int64_t now)
{
    for (unsigned i = 0; i < n; i++) {
        char id[PROTO_ID_MAX + 1];
        random_id(id, sizeof id);
        assert_int_equal(index_put_take(ix, random_shelter(id, 1 + below(1000), now)), 0);
    }
}

/* Builds a registry as a full load does: pages in any order, a shelter sometimes twice. */
static void build_by_load(struct index *ix, unsigned n, int64_t now)
{
    for (unsigned i = 0; i < n; i++) {
        char id[PROTO_ID_MAX + 1];
        random_id(id, sizeof id);
        uint64_t ver = 1 + below(1000);
        assert_int_equal(index_bulk_add(ix, random_shelter(id, ver, now)), 0);
        if (chance(5)) /* the same shelter again, older or newer */
            assert_int_equal(index_bulk_add(ix, random_shelter(id, ver + below(3) - 1, now)), 0);
    }
    assert_int_equal(index_bulk_end(ix), 0);
}

/* One random change through the paths the daemon uses. */
static void change(struct index *ix, int64_t now)
{
    unsigned what = below(100);
    if (ix->n == 0 || what < 15) {
        char id[PROTO_ID_MAX + 1];
        random_id(id, sizeof id);
        assert_int_equal(index_put_take(ix, random_shelter(id, 1 + below(1000), now)), 0);
        return;
    }
    const struct idx_shelter *old = ix->shelters[below(ix->n)];
    if (what < 25) {
        index_shelter_free(index_take(ix, old->id));
    } else if (what < 35 && old->ver > 1) { /* a late, older snapshot changes nothing */
        struct idx_shelter *late = changed_copy(old, now);
        late->ver = old->ver - 1;
        assert_int_equal(index_put_take(ix, late), 0);
    } else {
        assert_int_equal(index_put_take(ix, changed_copy(old, now)), 0);
    }
}

static void one_registry(uint64_t seed)
{
    struct index ix;
    rng = seed;
    index_init(&ix);
    int64_t now = BASE_MS + (int64_t)below(7 * 24) * HOUR_MS + (int64_t)below(3600000);
    int64_t stale_after = chance(80) ? 24 * HOUR_MS : (1 + (int64_t)below(48)) * HOUR_MS;
    unsigned n = chance(10) ? below(400) : below(120);
    if (chance(30))
        build_by_load(&ix, n, now);
    else
        build_by_events(&ix, n, now);
    for (unsigned q = 0; q < 4; q++)
        compare(&ix, now, stale_after, seed, "as built");
    for (unsigned step = 0; step < 8; step++) {
        unsigned changes = 1 + below(5);
        for (unsigned c = 0; c < changes; c++)
            change(&ix, now);
        now += (int64_t)below(4) * HOUR_MS; /* time passes: some data goes stale */
        compare(&ix, now, stale_after, seed, "after changes");
    }
    index_clear(&ix);
    registries++;
}

static void test_search_equals_scan(void **state)
{
    (void)state;
    const char *env = getenv("FRISTAD_DIFF_REGISTRIES");
    unsigned n = env ? (unsigned)strtoul(env, NULL, 10) : 1500;
    for (unsigned i = 0; i < n; i++)
        one_registry(UINT64_C(0x5eed0000) + i);
    print_message("%u random registries, %u searches: the search and the scan agree\n", registries,
                  searches);
}

/* Every histogram goes back to zero when every shelter has left, whatever came before. */
static void test_histograms_return_to_zero(void **state)
{
    (void)state;
    struct index ix;
    rng = 42;
    index_init(&ix);
    build_by_events(&ix, 300, BASE_MS);
    for (unsigned i = 0; i < 2000; i++)
        change(&ix, BASE_MS);
    while (ix.n > 0)
        index_shelter_free(index_take(&ix, ix.shelters[0]->id));
    const struct avail *av = ix.avail;
    assert_non_null(av);
    assert_int_equal(av->total, 0);
    for (unsigned b = 0; b < PROTO_MUNICIPALITIES; b++) {
        assert_int_equal(av->in_place[b], 0);
        for (unsigned p = 0; p < AVAIL_PARTS; p++)
            assert_int_equal(av->bucket[b][p].n, 0);
    }
    for (unsigned r = 0; r < REASON__COUNT; r++) {
        if (!av->hist[r])
            continue;
        for (unsigned b = 0; b < match_rules[r].n_bins; b++)
            assert_int_equal(av->hist[r][b], 0);
    }
    index_clear(&ix);
}

/* The table's own promises: every row is complete, and a unit's bins fit its record. */
static void test_rule_table(void **state)
{
    (void)state;
    unsigned places = 0;
    for (unsigned r = 0; r < REASON__COUNT; r++) {
        const struct match_rule *rule = &match_rules[r];
        assert_true(strcmp(match_reason_name(r), "?") != 0);
        assert_true(rule->n_bins > 0);
        switch (rule->kind) {
        case RULE_PLACE:
            places++;
            assert_int_equal(rule->n_bins, PROTO_MUNICIPALITIES);
            __attribute__((fallthrough));
        case RULE_BIN:
            assert_non_null(rule->bin);
            assert_non_null(rule->fails);
            assert_true(rule->kind == RULE_PLACE || rule->n_bins <= MATCH_RECORD_BINS);
            break;
        case RULE_MEMBER:
            assert_non_null(rule->members);
            assert_non_null(rule->wants);
            break;
        }
    }
    assert_int_equal(places, 1);
    /* The rule that parts each municipality's units has as many bins as there are parts. */
    assert_int_equal(match_rules[AVAIL_PART_RULE].kind, RULE_BIN);
    assert_int_equal(match_rules[AVAIL_PART_RULE].n_bins, AVAIL_PARTS);
    assert_int_equal(match_rules[REASON_SAFETY_POLICY].kind, RULE_PLACE);
    assert_int_equal(match_language_bin("sv"), (19 * 27 + 22) * 27);
    assert_true(match_language_bin("bos") > 0);
    assert_int_equal(match_language_bin("S1"), -1);
    assert_int_equal(match_language_bin("x"), -1);
}

/* The walking order: nearest first, and equal distances share a rank. */
static void test_walking_order(void **state)
{
    (void)state;
    for (unsigned h = 0; h < PROTO_MUNICIPALITIES; h++) {
        assert_int_equal(geo.near[h][0], h);
        for (unsigned i = 1; i < PROTO_MUNICIPALITIES; i++) {
            unsigned a = geo.near[h][i - 1], b = geo.near[h][i];
            assert_true(geo.km[h][a] <= geo.km[h][b]);
            assert_int_equal(geo.dist_rank[h][a] == geo.dist_rank[h][b],
                             geo.km[h][a] == geo.km[h][b]);
        }
    }
}

int main(void)
{
    char err[512];
    if (intake_tz_setup() < 0 ||
        geo_load(&geo, FRISTAD_SOURCE_ROOT "/conf/municipalities.csv",
                 FRISTAD_SOURCE_ROOT "/conf/adjacency.csv", err, sizeof err) < 0 ||
        policy_load(&policy, FRISTAD_SOURCE_ROOT "/conf/policy.conf", err, sizeof err) < 0) {
        fprintf(stderr, "setup: %s\n", err);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_table),
        cmocka_unit_test(test_walking_order),
        cmocka_unit_test(test_histograms_return_to_zero),
        cmocka_unit_test(test_search_equals_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
