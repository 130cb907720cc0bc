/*
 * The default safety policy and the ranking, on the real municipality data and conf/policy.conf.
 *
 * Geography used (from conf/adjacency.csv and the centroids in conf/municipalities.csv; the
 * distances from Stockholm's centroid were computed independently of the daemon):
 *   home 0180 Stockholm, perpetrator 0380 Uppsala.
 *   0184 Solna       borders Stockholm              county 01    6.2 km
 *   0192 Nynäshamn   borders neither                county 01   37.5 km
 *   0330 Knivsta     borders Uppsala                county 03   49.3 km
 *   0188 Norrtälje   borders Uppsala (not Stockholm) county 01   68.0 km
 *   0380 Uppsala     the perpetrator's municipality  county 03   71.8 km
 *   0581 Norrköping  protection 2                   county 05  127.0 km
 *   0319 Älvkarleby  borders neither                county 03  143.6 km
 *   1480 Göteborg    protection 1                   county 14  390.6 km
 *   1280 Malmö                                      county 12  512.1 km
 *   2580 Luleå                                      county 25  750.5 km
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "geo.h"
#include "index.h"
#include "match.h"
#include "policy.h"

#define NOW_MS  INT64_C(1800000000000)
#define HOUR_MS INT64_C(3600000)
#define STALE   (24 * HOUR_MS)

static struct geo geo;
static struct policy policy;

struct shelter_spec {
    const char *id;
    const char *mun;
    int prot;
    const char *units;  /* "id:beds[:a]" separated by commas; 'a' = accessible */
    const char *groups; /* NULL = women */
    int max_children;   /* -1 none */
    int boys_max_age;   /* -1 none */
    bool pets, substance;
    const char *langs; /* "sv,ar" */
    int age_hours;     /* since the last vacancy update */
};

/* A shelter of the spec, not yet in an index: what is in an index is never changed in place. */
static struct idx_shelter *make_shelter(const struct shelter_spec *sp)
{
    struct idx_shelter *s = calloc(1, sizeof *s);
    assert_non_null(s);
    snprintf(s->id, sizeof s->id, "%s", sp->id);
    snprintf(s->name, sizeof s->name, "Shelter %s", sp->id);
    snprintf(s->phone, sizeof s->phone, "08-000000");
    int m = proto_municipality_index(sp->mun, 4);
    assert_true(m >= 0);
    s->mun = (unsigned)m;
    s->protection = (uint8_t)sp->prot;
    s->kind = KIND_KVINNOJOUR;
    if (!sp->groups) {
        s->groups = 1u << GROUP_WOMEN;
    } else {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", sp->groups);
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ","))
            s->groups |= (uint8_t)(1u << proto_group_parse(t, strlen(t)));
    }
    s->max_children = sp->max_children;
    s->boys_max_age = sp->boys_max_age;
    s->pets = sp->pets;
    s->substance = sp->substance;
    if (sp->langs) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", sp->langs);
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ","))
            snprintf(s->languages[s->n_languages++], 4, "%s", t);
    }
    s->updated_ms = NOW_MS - sp->age_hours * HOUR_MS;
    s->ver = 1;
    /* Units must be listed in id order, as the index keeps them. */
    s->units = calloc(8, sizeof *s->units);
    assert_non_null(s->units);
    char buf[128];
    snprintf(buf, sizeof buf, "%s", sp->units);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        struct idx_unit *u = &s->units[s->n_units++];
        char *c1 = strchr(t, ':');
        assert_non_null(c1);
        *c1 = '\0';
        snprintf(u->id, sizeof u->id, "%s", t);
        u->beds = (uint8_t)atoi(c1 + 1);
        u->accessible = strstr(c1 + 1, ":a") != NULL;
        u->state = VAC_FREE;
    }
    return s;
}

static void add_shelter(struct index *ix, const struct shelter_spec *sp)
{
    assert_int_equal(index_put_take(ix, make_shelter(sp)), 0);
}

/* Search arguments in a compact form. */
struct search_spec {
    const char *risk;
    const char *home;
    const char *perp;     /* comma-separated codes */
    const char *exclude;  /* comma-separated codes */
    int adults;           /* 0 = leave out */
    const char *children; /* "14m,3f" */
    const char *group;
    bool wheelchair, pets, substance;
    const char *language;
};

static void build_search(const struct search_spec *sp, struct proto_args *a)
{
    memset(a, 0, sizeof *a);
    a->risk = (uint8_t)proto_risk_parse(sp->risk, strlen(sp->risk));
    snprintf(a->home, sizeof a->home, "%s", sp->home);
    a->present = PROTO_BIT(F_HOME) | PROTO_BIT(F_RISK);
    char buf[256];
    if (sp->perp) {
        snprintf(buf, sizeof buf, "%s", sp->perp);
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ","))
            snprintf(a->perpetrator[a->n_perpetrator++], 5, "%s", t);
        a->present |= PROTO_BIT(F_PERPETRATOR);
    }
    if (sp->exclude) {
        snprintf(buf, sizeof buf, "%s", sp->exclude);
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ","))
            snprintf(a->exclude[a->n_exclude++], 5, "%s", t);
        a->present |= PROTO_BIT(F_EXCLUDE);
    }
    if (sp->adults) {
        a->adults = (uint8_t)sp->adults;
        a->present |= PROTO_BIT(F_ADULTS);
    }
    if (sp->children) {
        snprintf(buf, sizeof buf, "%s", sp->children);
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
            size_t n = strlen(t);
            a->children[a->n_children].sex = t[n - 1];
            t[n - 1] = '\0';
            a->children[a->n_children++].age = (uint8_t)atoi(t);
        }
        a->present |= PROTO_BIT(F_CHILDREN);
    }
    if (sp->group) {
        a->group = (uint8_t)proto_group_parse(sp->group, strlen(sp->group));
        a->present |= PROTO_BIT(F_GROUP);
    }
    if (sp->wheelchair) {
        a->wheelchair = true;
        a->present |= PROTO_BIT(F_WHEELCHAIR);
    }
    if (sp->pets) {
        a->pets = true;
        a->present |= PROTO_BIT(F_PETS);
    }
    if (sp->substance) {
        a->substance = true;
        a->present |= PROTO_BIT(F_SUBSTANCE);
    }
    if (sp->language) {
        snprintf(a->language, sizeof a->language, "%s", sp->language);
        a->present |= PROTO_BIT(F_LANGUAGE);
    }
}

/* The search and the reference scan agree on everything they report. */
static void assert_same_outcome(const struct match_outcome *a, const struct match_outcome *b)
{
    assert_int_equal(a->n_hits, b->n_hits);
    for (unsigned i = 0; i < a->n_hits; i++) {
        assert_ptr_equal(a->hits[i].shelter, b->hits[i].shelter);
        assert_ptr_equal(a->hits[i].unit, b->hits[i].unit);
        assert_true(a->hits[i].distance_km == b->hits[i].distance_km);
        assert_int_equal(a->hits[i].stale, b->hits[i].stale);
        assert_int_equal(a->hits[i].receives, b->hits[i].receives);
        assert_int_equal(a->hits[i].age_s, b->hits[i].age_s);
    }
    assert_int_equal(a->considered, b->considered);
    assert_memory_equal(a->ruled_out, b->ruled_out, sizeof a->ruled_out);
}

/* Runs a search (checked against the reference scan) and renders the hits as
 * "shelter/unit,shelter/unit". */
static void run(const struct index *ix, const struct search_spec *sp, char *out, size_t cap,
                struct match_outcome *keep)
{
    struct proto_args a;
    struct match_outcome o, ref;
    build_search(sp, &a);
    assert_int_equal(match_search(ix, &geo, &policy, &a, NOW_MS, STALE, &o), 0);
    assert_int_equal(match_scan(ix, &geo, &policy, &a, NOW_MS, STALE, &ref), 0);
    assert_same_outcome(&o, &ref);
    match_outcome_free(&ref);
    out[0] = '\0';
    for (unsigned i = 0; i < o.n_hits; i++) {
        char one[80];
        snprintf(one, sizeof one, "%s%s/%s", i ? "," : "", o.hits[i].shelter->id,
                 o.hits[i].unit->id);
        strncat(out, one, cap - strlen(out) - 1);
    }
    if (keep)
        *keep = o;
    else
        match_outcome_free(&o);
}

/* ---- the policy table --------------------------------------------------------------------- */

static const struct shelter_spec geography[] = {
    {"sthlm", "0180", 3, "u1:4", NULL, -1, -1, false, false, NULL, 0},
    {"solna", "0184", 3, "u1:4", NULL, -1, -1, false, false, NULL, 0},
    {"nynashamn", "0192", 3, "u1:4", NULL, -1, -1, false, false, NULL, 0},
    {"knivsta", "0330", 3, "u1:4", NULL, -1, -1, false, false, NULL, 0},
    {"norrtalje", "0188", 3, "u1:4", NULL, -1, -1, false, false, NULL, 0},
    {"uppsala", "0380", 3, "u1:4", NULL, -1, -1, false, false, NULL, 0},
    {"norrkoping", "0581", 2, "u1:4", NULL, -1, -1, false, false, NULL, 0},
    {"alvkarleby", "0319", 3, "u1:4", NULL, -1, -1, false, false, NULL, 0},
    {"goteborg", "1480", 1, "u1:4", NULL, -1, -1, false, false, NULL, 0},
    {"malmo", "1280", 3, "u1:4", NULL, -1, -1, false, false, NULL, 0},
    {"lulea", "2580", 3, "u1:4", NULL, -1, -1, false, false, NULL, 0},
};

struct policy_case {
    const char *name;
    struct search_spec search;
    const char *expect;
    unsigned safety, protection; /* ruled_out counts */
};

static const struct policy_case policy_cases[] = {
    {"low: everything, nearest first",
     {"low", "0180", "0380", NULL, 0, NULL, NULL, false, false, false, NULL},
     "sthlm/u1,solna/u1,nynashamn/u1,knivsta/u1,norrtalje/u1,uppsala/u1,norrkoping/u1,"
     "alvkarleby/u1,goteborg/u1,malmo/u1,lulea/u1",
     0,
     0},
    {"low: the referral's own exclusions hold",
     {"low", "0180", "0380", "1280,0184", 0, NULL, NULL, false, false, false, NULL},
     "sthlm/u1,nynashamn/u1,knivsta/u1,norrtalje/u1,uppsala/u1,norrkoping/u1,alvkarleby/u1,"
     "goteborg/u1,lulea/u1",
     2,
     0},
    {"moderate: not home, not the perpetrator's municipality",
     {"moderate", "0180", "0380", NULL, 0, NULL, NULL, false, false, false, NULL},
     "solna/u1,nynashamn/u1,knivsta/u1,norrtalje/u1,norrkoping/u1,alvkarleby/u1,goteborg/u1,"
     "malmo/u1,lulea/u1",
     2,
     0},
    {"high: nor their neighbours, and protection 2",
     {"high", "0180", "0380", NULL, 0, NULL, NULL, false, false, false, NULL},
     "nynashamn/u1,norrkoping/u1,alvkarleby/u1,malmo/u1,lulea/u1",
     5,
     1},
    {"severe: nor their counties, and protection 3",
     {"severe", "0180", "0380", NULL, 0, NULL, NULL, false, false, false, NULL},
     "malmo/u1,lulea/u1",
     7,
     2},
    {"severe with listed exclusion too",
     {"severe", "0180", "0380", "2580", 0, NULL, NULL, false, false, false, NULL},
     "malmo/u1",
     8,
     2},
    {"high without a perpetrator: only home's neighbours",
     {"high", "0180", NULL, NULL, 0, NULL, NULL, false, false, false, NULL},
     "nynashamn/u1,knivsta/u1,norrtalje/u1,uppsala/u1,norrkoping/u1,alvkarleby/u1,malmo/u1,"
     "lulea/u1",
     2,
     1},
    {"severe, home in Luleå, perpetrator in Malmö",
     {"severe", "2580", "1280", NULL, 0, NULL, NULL, false, false, false, NULL},
     "alvkarleby/u1,norrtalje/u1,uppsala/u1,knivsta/u1,solna/u1,sthlm/u1,nynashamn/u1",
     2,
     2},
};

static void test_policy_table(void **state)
{
    (void)state;
    struct index ix;
    index_init(&ix);
    for (size_t i = 0; i < sizeof geography / sizeof geography[0]; i++)
        add_shelter(&ix, &geography[i]);
    for (size_t i = 0; i < sizeof policy_cases / sizeof policy_cases[0]; i++) {
        const struct policy_case *pc = &policy_cases[i];
        char got[1024];
        struct match_outcome o;
        run(&ix, &pc->search, got, sizeof got, &o);
        if (strcmp(got, pc->expect) != 0)
            fail_msg("%s:\n  expected %s\n  got      %s", pc->name, pc->expect, got);
        if (o.ruled_out[REASON_SAFETY_POLICY] != pc->safety ||
            o.ruled_out[REASON_PROTECTION_LEVEL] != pc->protection)
            fail_msg("%s: ruled out safety %u protection %u, expected %u and %u", pc->name,
                     o.ruled_out[REASON_SAFETY_POLICY], o.ruled_out[REASON_PROTECTION_LEVEL],
                     pc->safety, pc->protection);
        assert_int_equal(o.considered, 11);
        match_outcome_free(&o);
    }
    index_clear(&ix);
}

/* The exclusion sets themselves, against the adjacency file. */
static void test_policy_excluded_sets(void **state)
{
    (void)state;
    struct proto_args a;
    struct muni_set ex;
    struct search_spec sp = {"high", "0180", "0380", NULL,  0,   NULL,
                             NULL,   false,  false,  false, NULL};
    build_search(&sp, &a);
    policy_excluded(&policy, &geo, &a, &ex);
    unsigned n = 0;
    for (unsigned i = 0; i < PROTO_MUNICIPALITIES; i++)
        n += muni_set_has(&ex, i);
    /* Stockholm and its 10 neighbours, Uppsala and its 7: the two lists do not overlap. */
    assert_int_equal(n, 1 + 10 + 1 + 7);
    assert_true(muni_set_has(&ex, (unsigned)proto_municipality_index("0186", 4)));  /* Lidingö */
    assert_true(muni_set_has(&ex, (unsigned)proto_municipality_index("0331", 4)));  /* Heby */
    assert_false(muni_set_has(&ex, (unsigned)proto_municipality_index("0192", 4))); /* Nynäshamn */

    sp.risk = "severe";
    build_search(&sp, &a);
    policy_excluded(&policy, &geo, &a, &ex);
    n = 0;
    for (unsigned i = 0; i < PROTO_MUNICIPALITIES; i++)
        n += muni_set_has(&ex, i);
    /* 26 municipalities of Stockholms län and 8 of Uppsala län, plus neighbours elsewhere:
     * Uppsala borders none outside its county except Norrtälje (01); Heby's county is 03. */
    assert_true(muni_set_has(&ex, (unsigned)proto_municipality_index("0192", 4)));
    assert_true(muni_set_has(&ex, (unsigned)proto_municipality_index("0319", 4)));
    assert_false(muni_set_has(&ex, (unsigned)proto_municipality_index("0581", 4)));
    assert_int_equal(n, 26 + 8);
}

/* ---- household constraints ------------------------------------------------------------- */

static const struct shelter_spec needs[] = {
    /* All in Skåne; searches come from Malmö at low risk, so safety excludes nothing. */
    {"fam", "1280", 1, "big:5,small:2", NULL, -1, -1, false, false, NULL, 0},
    {"boys12", "1281", 1, "u1:5", NULL, -1, 12, false, false, NULL, 0},
    {"onechild", "1281", 1, "u1:5", NULL, 1, -1, false, false, NULL, 0},
    {"access", "1283", 1, "u1:5:a", NULL, -1, -1, false, false, NULL, 0},
    {"pets", "1283", 1, "u1:5", NULL, -1, -1, true, false, NULL, 0},
    {"subst", "1284", 1, "u1:5", NULL, -1, -1, false, true, NULL, 0},
    {"men", "1284", 1, "u1:5", "men", -1, -1, false, false, NULL, 0},
    {"arabic", "1285", 1, "u1:5", "women,hbtqi", -1, -1, false, false, "sv,ar", 0},
};

struct needs_case {
    const char *name;
    struct search_spec search;
    const char *expect;
    enum match_reason reason; /* the reason that must be counted */
    unsigned count;
};

static const struct needs_case needs_cases[] = {
    {"best fit: the smallest unit that fits comes first",
     {"low", "1280", NULL, NULL, 2, NULL, NULL, false, false, false, NULL},
     "fam/small,fam/big,boys12/u1,onechild/u1,arabic/u1,access/u1,pets/u1,subst/u1",
     REASON_TARGET_GROUP,
     1},
    {"three people: the 2-bed unit is too small",
     {"low", "1280", NULL, NULL, 1, "3f,5f", NULL, false, false, false, NULL},
     "fam/big,boys12/u1,arabic/u1,access/u1,pets/u1,subst/u1",
     REASON_BEDS,
     1},
    {"two children: the one-child shelter says no",
     {"low", "1280", NULL, NULL, 1, "3f,5f", NULL, false, false, false, NULL},
     "fam/big,boys12/u1,arabic/u1,access/u1,pets/u1,subst/u1",
     REASON_CHILDREN_LIMIT,
     1},
    {"a boy of 14: not where boys over 12 are refused",
     {"low", "1280", NULL, NULL, 1, "14m", NULL, false, false, false, NULL},
     "fam/small,fam/big,onechild/u1,arabic/u1,access/u1,pets/u1,subst/u1",
     REASON_BOYS_AGE,
     1},
    {"a girl of 14 is fine there",
     {"low", "1280", NULL, NULL, 1, "14f", NULL, false, false, false, NULL},
     "fam/small,fam/big,boys12/u1,onechild/u1,arabic/u1,access/u1,pets/u1,subst/u1",
     REASON_BOYS_AGE,
     0},
    {"a boy of exactly 12 is taken",
     {"low", "1280", NULL, NULL, 1, "12m", NULL, false, false, false, NULL},
     "fam/small,fam/big,boys12/u1,onechild/u1,arabic/u1,access/u1,pets/u1,subst/u1",
     REASON_BOYS_AGE,
     0},
    {"wheelchair: only the accessible unit",
     {"low", "1280", NULL, NULL, 0, NULL, NULL, true, false, false, NULL},
     "access/u1",
     REASON_WHEELCHAIR,
     8},
    {"pets",
     {"low", "1280", NULL, NULL, 0, NULL, NULL, false, true, false, NULL},
     "pets/u1",
     REASON_PETS,
     8},
    {"substance use support",
     {"low", "1280", NULL, NULL, 0, NULL, NULL, false, false, true, NULL},
     "subst/u1",
     REASON_SUBSTANCE,
     8},
    {"target group men",
     {"low", "1280", NULL, NULL, 0, NULL, "men", false, false, false, NULL},
     "men/u1",
     REASON_TARGET_GROUP,
     8},
    {"target group hbtqi",
     {"low", "1280", NULL, NULL, 0, NULL, "hbtqi", false, false, false, NULL},
     "arabic/u1",
     REASON_TARGET_GROUP,
     8},
    {"language",
     {"low", "1280", NULL, NULL, 0, NULL, NULL, false, false, false, "ar"},
     "arabic/u1",
     REASON_LANGUAGE,
     8},
};

static void test_needs_table(void **state)
{
    (void)state;
    struct index ix;
    index_init(&ix);
    for (size_t i = 0; i < sizeof needs / sizeof needs[0]; i++)
        add_shelter(&ix, &needs[i]);
    for (size_t i = 0; i < sizeof needs_cases / sizeof needs_cases[0]; i++) {
        const struct needs_case *nc = &needs_cases[i];
        char got[1024];
        struct match_outcome o;
        run(&ix, &nc->search, got, sizeof got, &o);
        if (strcmp(got, nc->expect) != 0)
            fail_msg("%s:\n  expected %s\n  got      %s", nc->name, nc->expect, got);
        if (o.ruled_out[nc->reason] != nc->count)
            fail_msg("%s: %s counted %u, expected %u", nc->name, match_reason_name(nc->reason),
                     o.ruled_out[nc->reason], nc->count);
        match_outcome_free(&o);
    }
    index_clear(&ix);
}

/* A unit ruled out for several reasons counts under each; nothing eligible is a clean zero. */
static void test_no_match_counts(void **state)
{
    (void)state;
    struct index ix;
    index_init(&ix);
    for (size_t i = 0; i < sizeof needs / sizeof needs[0]; i++)
        add_shelter(&ix, &needs[i]);
    struct search_spec sp = {"severe", "1280", NULL, NULL,  2,   "15m,16m,3f",
                             "women",  true,   true, false, NULL};
    char got[256];
    struct match_outcome o;
    run(&ix, &sp, got, sizeof got, &o);
    assert_string_equal(got, "");
    assert_int_equal(o.n_hits, 0);
    assert_int_equal(o.considered, 9);
    /* Severe from Malmö excludes all of Skåne; every unit here is protection 1. */
    assert_int_equal(o.ruled_out[REASON_SAFETY_POLICY], 9);
    assert_int_equal(o.ruled_out[REASON_PROTECTION_LEVEL], 9);
    assert_int_equal(o.ruled_out[REASON_BEDS], 1);           /* fam/small: 2 beds for 5 */
    assert_int_equal(o.ruled_out[REASON_CHILDREN_LIMIT], 1); /* onechild */
    assert_int_equal(o.ruled_out[REASON_BOYS_AGE], 1);       /* boys12 */
    assert_int_equal(o.ruled_out[REASON_TARGET_GROUP], 1);   /* men */
    assert_int_equal(o.ruled_out[REASON_WHEELCHAIR], 8);     /* all but access/u1 */
    assert_int_equal(o.ruled_out[REASON_PETS], 8);           /* all but pets/u1 */
    assert_int_equal(o.ruled_out[REASON_SUBSTANCE], 0);
    assert_int_equal(o.ruled_out[REASON_LANGUAGE], 0);
    match_outcome_free(&o);
    index_clear(&ix);
}

/* ---- availability and freshness --------------------------------------------------------- */

static void test_stale_ranks_last(void **state)
{
    (void)state;
    static const struct shelter_spec specs[] = {
        {"near-stale", "0184", 3, "u1:2", NULL, -1, -1, false, false, NULL, 30},
        {"near-fresh", "0182", 3, "u1:2", NULL, -1, -1, false, false, NULL, 23},
        {"far-fresh", "2580", 3, "u1:2", NULL, -1, -1, false, false, NULL, 0},
    };
    struct index ix;
    index_init(&ix);
    for (size_t i = 0; i < 3; i++)
        add_shelter(&ix, &specs[i]);
    struct search_spec sp = {"low", "0180", NULL, NULL, 0, NULL, NULL, false, false, false, NULL};
    char got[256];
    struct match_outcome o;
    run(&ix, &sp, got, sizeof got, &o);
    assert_string_equal(got, "near-fresh/u1,far-fresh/u1,near-stale/u1");
    assert_false(o.hits[0].stale);
    assert_true(o.hits[2].stale);
    assert_int_equal(o.hits[2].age_s, 30 * 3600);
    assert_int_equal((int)(o.hits[0].distance_km + 0.5), 13); /* Nacka */
    match_outcome_free(&o);
    index_clear(&ix);
}

static void test_unavailable_units_are_not_offered(void **state)
{
    (void)state;
    static const struct shelter_spec specs[] = {
        {"a", "1280", 1, "closed:2,free:2,held:2,occupied:2,placed:2", NULL, -1, -1, false, false,
         NULL, 0},
        {"paused", "1280", 1, "u1:2", NULL, -1, -1, false, false, NULL, 0},
        {"retired", "1280", 1, "u1:2", NULL, -1, -1, false, false, NULL, 0},
    };
    struct index ix;
    index_init(&ix);
    struct idx_shelter *s[3];
    for (size_t i = 0; i < 3; i++)
        s[i] = make_shelter(&specs[i]);
    ((struct idx_unit *)index_find_unit(s[0], "held"))->held = true;
    ((struct idx_unit *)index_find_unit(s[0], "placed"))->placed = true;
    ((struct idx_unit *)index_find_unit(s[0], "occupied"))->state = VAC_OCCUPIED;
    ((struct idx_unit *)index_find_unit(s[0], "closed"))->state = VAC_CLOSED;
    s[1]->paused = true;
    s[2]->retired = true;
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(index_put_take(&ix, s[i]), 0);
    struct search_spec sp = {"low", "1280", NULL, NULL, 0, NULL, NULL, false, false, false, NULL};
    char got[256];
    struct match_outcome o;
    run(&ix, &sp, got, sizeof got, &o);
    assert_string_equal(got, "a/free");
    assert_int_equal(o.considered, 1);
    match_outcome_free(&o);
    index_clear(&ix);
}

/*
 * Competences a referral needs, and the IVO permit of protected housing: one predicate for
 * search and hold, counted per reason. A shelter without these fields (a record from before
 * them) has no competences and an unknown operator.
 */
static void test_competence_and_permit(void **state)
{
    (void)state;
    static const struct {
        const char *id;
        enum proto_kind kind;
        int operator_;
        const char *permit;
        bool registered;
        uint8_t competences;
    } specs[] = {
        {"jour-okand", KIND_KVINNOJOUR, IDX_UNKNOWN, "", false, 0},
        {"jour-hbv", KIND_KVINNOJOUR, OPERATOR_PRIVAT, "", false, 1u << COMP_HBV},
        {"sb-ideell-med", KIND_SKYDDAT_BOENDE, OPERATOR_IDEELL, "3.5.1-1/2024", false,
         1u << COMP_HBV | 1u << COMP_DEAF},
        {"sb-privat-utan", KIND_SKYDDAT_BOENDE, OPERATOR_PRIVAT, "", true, 1u << COMP_HBV},
        {"sb-kommun-med", KIND_SKYDDAT_BOENDE, OPERATOR_KOMMUNAL, "", true, 0},
        {"sb-kommun-utan", KIND_SKYDDAT_BOENDE, OPERATOR_KOMMUNAL, "3.5.1-2/2024", false, 0},
        {"sb-okand", KIND_SKYDDAT_BOENDE, IDX_UNKNOWN, "3.5.1-3/2024", true, 0},
    };
    struct index ix;
    index_init(&ix);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        struct shelter_spec sp = {specs[i].id, "1480", 3,     "u1:2", NULL, -1,
                                  -1,          false,  false, NULL,   0};
        /* Set before the index has it: what search walks is made when a shelter comes in. */
        struct idx_shelter *s = make_shelter(&sp);
        s->kind = (uint8_t)specs[i].kind;
        s->operator_ = specs[i].operator_;
        snprintf(s->ivo_permit, sizeof s->ivo_permit, "%s", specs[i].permit);
        s->ivo_registered = specs[i].registered;
        s->competences = specs[i].competences;
        assert_int_equal(index_put_take(&ix, s), 0);
    }
    struct search_spec sp = {"low", "0180", NULL, NULL, 0, NULL, NULL, false, false, false, NULL};
    char got[512];
    struct match_outcome o;
    run(&ix, &sp, got, sizeof got, &o);
    /* Protected housing only with a permit (non-profit, company) or registration (municipal);
     * an unknown operator's never; the other kinds whoever runs them. */
    assert_string_equal(got, "jour-hbv/u1,jour-okand/u1,sb-ideell-med/u1,sb-kommun-med/u1");
    assert_int_equal(o.ruled_out[REASON_PERMIT], 3);
    assert_int_equal(o.ruled_out[REASON_COMPETENCE], 0);
    match_outcome_free(&o);

    struct proto_args a;
    build_search(&sp, &a);
    a.need = 1u << COMP_HBV;
    a.present |= PROTO_BIT(F_NEED);
    assert_int_equal(match_search(&ix, &geo, &policy, &a, NOW_MS, STALE, &o), 0);
    assert_int_equal(o.n_hits, 2); /* jour-hbv, sb-ideell-med */
    assert_int_equal(o.ruled_out[REASON_COMPETENCE], 4);
    assert_int_equal(o.ruled_out[REASON_PERMIT], 3);
    match_outcome_free(&o);
    a.need = 1u << COMP_HBV | 1u << COMP_DEAF;
    assert_int_equal(match_search(&ix, &geo, &policy, &a, NOW_MS, STALE, &o), 0);
    assert_int_equal(o.n_hits, 1);
    assert_true(strcmp(o.hits[0].shelter->id, "sb-ideell-med") == 0);
    match_outcome_free(&o);

    /* The hold's check is the same predicate, naming both reasons. */
    struct match_referral m;
    assert_int_equal(match_prepare(&m, &geo, &policy, &a), 0);
    const struct idx_shelter *s = index_find(&ix, "sb-privat-utan");
    unsigned r = match_reasons(&m, s, &s->units[0]);
    assert_int_equal(r, 1u << REASON_COMPETENCE | 1u << REASON_PERMIT);
    char why[160];
    match_reasons_text(r, why, sizeof why);
    assert_string_equal(why, "competence, permit");
    assert_string_equal(match_reason_name(REASON_COMPETENCE), "competence");
    assert_string_equal(match_reason_name(REASON_PERMIT), "permit");
    index_clear(&ix);
}

static void test_limit(void **state)
{
    (void)state;
    struct index ix;
    index_init(&ix);
    for (size_t i = 0; i < sizeof geography / sizeof geography[0]; i++)
        add_shelter(&ix, &geography[i]);
    struct proto_args a;
    struct search_spec sp = {"low", "0180", NULL, NULL, 0, NULL, NULL, false, false, false, NULL};
    build_search(&sp, &a);
    a.limit = 3;
    a.present |= PROTO_BIT(F_LIMIT);
    struct match_outcome o;
    assert_int_equal(match_search(&ix, &geo, &policy, &a, NOW_MS, STALE, &o), 0);
    assert_int_equal(o.n_hits, 3);
    assert_int_equal(o.considered, sizeof geography / sizeof geography[0]);
    assert_string_equal(o.hits[2].shelter->id, "nynashamn");
    match_outcome_free(&o);
    index_clear(&ix);
}

/* ---- the policy file's own checks ------------------------------------------------------- */

static int load_policy_text(const char *text, char *err, size_t errlen)
{
    char path[] = "/tmp/fristad-policy-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    struct policy p;
    int rc = policy_load(&p, path, err, errlen);
    remove(path);
    return rc;
}

static void test_policy_file_checks(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        {"[low]\nexclude = home\nmin_protection = 1\n", "must exclude 'listed'"},
        {"[low]\nexclude = listed\nmin_protection = 1\n", "needs both"},
        {"[low]\nexclude = listed\nmin_protection = 1\n[moderate]\nexclude = listed\n"
         "min_protection = 1\n[high]\nexclude = listed, bordering\nmin_protection = 2\n"
         "[severe]\nexclude = listed, home, perpetrator, bordering, county\nmin_protection = 3\n",
         "not home and perpetrator"},
        {"[low]\nexclude = listed\nmin_protection = 1\n[moderate]\nexclude = listed, home, "
         "perpetrator\nmin_protection = 2\n[high]\nexclude = listed, home, perpetrator\n"
         "min_protection = 1\n[severe]\nexclude = listed, home, perpetrator\nmin_protection = 3\n",
         "lower protection level"},
        {"[low]\nexclude = listed, home\nmin_protection = 1\n[moderate]\nexclude = listed\n"
         "min_protection = 1\n[high]\nexclude = listed\nmin_protection = 2\n[severe]\n"
         "exclude = listed\nmin_protection = 3\n",
         "excludes less"},
        {"[low]\nexclude = listed, neighbours\nmin_protection = 1\n", "distinct words"},
        {"[low]\nexclude = listed\nmin_protection = 4\n", "1, 2 or 3"},
        {"[extreme]\nexclude = listed\n", "unknown section"},
        {"[low]\nexclude = listed\nmin_protection = 1\ncolour = red\n", "unknown key"},
    };
    char err[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(load_policy_text(bad[i].text, err, sizeof err), -1);
        if (!strstr(err, bad[i].why))
            fail_msg("policy %zu: message '%s' lacks '%s'", i, err, bad[i].why);
    }
    struct policy p;
    assert_int_equal(policy_load(&p, "/nonexistent/policy.conf", err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
}

static void test_default_policy_is_design_table(void **state)
{
    (void)state;
    assert_int_equal(policy.level[RISK_LOW].exclude, EXCL_LISTED);
    assert_int_equal(policy.level[RISK_MODERATE].exclude,
                     EXCL_LISTED | EXCL_HOME | EXCL_PERPETRATOR);
    assert_int_equal(policy.level[RISK_HIGH].exclude,
                     EXCL_LISTED | EXCL_HOME | EXCL_PERPETRATOR | EXCL_BORDERING);
    assert_int_equal(policy.level[RISK_SEVERE].exclude,
                     EXCL_LISTED | EXCL_HOME | EXCL_PERPETRATOR | EXCL_BORDERING | EXCL_COUNTY);
    assert_int_equal(policy.level[RISK_LOW].min_protection, 1);
    assert_int_equal(policy.level[RISK_MODERATE].min_protection, 1);
    assert_int_equal(policy.level[RISK_HIGH].min_protection, 2);
    assert_int_equal(policy.level[RISK_SEVERE].min_protection, 3);
}

/* ---- reference data checks -------------------------------------------------------------- */

static int load_geo_text(const char *muni, const char *adj, char *err, size_t errlen)
{
    char mp[] = "/tmp/fristad-muni-XXXXXX", ap[] = "/tmp/fristad-adj-XXXXXX";
    int mf = mkstemp(mp), af = mkstemp(ap);
    assert_true(mf >= 0 && af >= 0);
    FILE *f = fdopen(mf, "w");
    fputs(muni, f);
    fclose(f);
    f = fdopen(af, "w");
    fputs(adj, f);
    fclose(f);
    struct geo *g = malloc(sizeof *g);
    int rc = geo_load(g, mp, ap, err, errlen);
    free(g);
    remove(mp);
    remove(ap);
    return rc;
}

static void test_geo_file_checks(void **state)
{
    (void)state;
    const char *hdr = "kommunkod,name,county_code,county_name,lat,lon,coord_type\n";
    const char *adj = "code_a,name_a,code_b,name_b,same_county,kind,x,y,z\n"
                      "0180,Stockholm,0184,Solna,1,border,1,1,\n";
    char buf[512], err[512];
    assert_int_equal(load_geo_text("", adj, err, sizeof err), -1);
    assert_non_null(strstr(err, "empty"));
    assert_int_equal(load_geo_text("code,name\n", adj, err, sizeof err), -1);
    assert_non_null(strstr(err, "header"));
    snprintf(buf, sizeof buf, "%s0000,Nowhere,00,None,59.0,18.0,centroid\n", hdr);
    assert_int_equal(load_geo_text(buf, adj, err, sizeof err), -1);
    assert_non_null(strstr(err, "not one of the 290"));
    snprintf(buf, sizeof buf, "%s0180,Stockholm,02,Stockholms län,59.3,18.0,centroid\n", hdr);
    assert_int_equal(load_geo_text(buf, adj, err, sizeof err), -1);
    assert_non_null(strstr(err, "county code"));
    snprintf(buf, sizeof buf, "%s0180,Stockholm,01,Stockholms län,40.0,18.0,centroid\n", hdr);
    assert_int_equal(load_geo_text(buf, adj, err, sizeof err), -1);
    assert_non_null(strstr(err, "in Sweden"));
    snprintf(buf, sizeof buf, "%s0180,Stockholm,01,Stockholms län,59.3,18.0,centroid\n", hdr);
    assert_int_equal(load_geo_text(buf, adj, err, sizeof err), -1);
    assert_non_null(strstr(err, "expected all 290"));

    /* The shipped files load, and a wrong adjacency line is named by line. */
    struct geo *g = malloc(sizeof *g);
    assert_int_equal(geo_load(g, FRISTAD_SOURCE_ROOT "/conf/municipalities.csv",
                              FRISTAD_SOURCE_ROOT "/conf/nonexistent.csv", err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "cannot open"));
    free(g);
}

static int setup(void **state)
{
    (void)state;
    char err[512];
    if (geo_load(&geo, FRISTAD_SOURCE_ROOT "/conf/municipalities.csv",
                 FRISTAD_SOURCE_ROOT "/conf/adjacency.csv", err, sizeof err) < 0 ||
        policy_load(&policy, FRISTAD_SOURCE_ROOT "/conf/policy.conf", err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_policy_is_design_table),
        cmocka_unit_test(test_policy_table),
        cmocka_unit_test(test_policy_excluded_sets),
        cmocka_unit_test(test_needs_table),
        cmocka_unit_test(test_no_match_counts),
        cmocka_unit_test(test_stale_ranks_last),
        cmocka_unit_test(test_unavailable_units_are_not_offered),
        cmocka_unit_test(test_competence_and_permit),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_policy_file_checks),
        cmocka_unit_test(test_geo_file_checks),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
