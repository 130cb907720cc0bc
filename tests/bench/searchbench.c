/*
 * The search alone, in process: a registry like the benchmark's (shelters in real
 * municipalities, a third in the ten largest, three units each, a quarter free, a fifth of the
 * shelters stale, some with intake hours) and random referrals of every risk level and
 * household, searched by match_search and by the plain scan match_scan. Prints CPU microseconds
 * per search and per-unit figures for each size; asserts nothing.
 *
 *     searchbench SOURCE_ROOT [--no-scan] [SHELTERS...]     (default 1000 10000 100000)
 *
 * --no-scan runs the scan once only, for profiling the search.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avail.h"
#include "geo.h"
#include "index.h"
#include "intake.h"
#include "match.h"
#include "policy.h"

static struct geo geo;
static struct policy policy;
static uint64_t rng = 1;
static bool with_scan = true;

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

/* CPU time, not wall time: on a shared machine the process is often waiting for a core. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const big[] = {"0180", "1480", "1280", "0380", "0580",
                                  "1880", "1980", "0680", "0581", "2480"};

static struct idx_shelter *shelter(unsigned i, int64_t now)
{
    static const char *const langs[] = {"en", "ar", "fi", "so", "fa", "ti", "pl"};
    struct idx_shelter *s = calloc(1, sizeof *s);
    if (!s)
        exit(1);
    snprintf(s->id, sizeof s->id, "b%u", i);
    snprintf(s->name, sizeof s->name, "Shelter %u", i);
    s->mun = below(3) == 0 ? (unsigned)proto_municipality_index(big[below(10)], 4)
                           : below(PROTO_MUNICIPALITIES);
    unsigned p = below(100);
    s->protection = (uint8_t)(p < 50 ? 1 : p < 85 ? 2 : 3);
    s->groups = below(20) == 0 ? 1u << GROUP_MEN : 1u << GROUP_WOMEN;
    if (below(10) == 0)
        s->groups |= 1u << GROUP_HBTQI;
    static const int maxch[] = {-1, 2, 3, 4, 6}, boys[] = {-1, 12, 15, 17};
    s->max_children = maxch[below(5)];
    s->boys_max_age = boys[below(4)];
    s->pets = below(10) < 3;
    s->substance = below(100) < 15;
    snprintf(s->languages[s->n_languages++], 4, "sv");
    for (unsigned k = below(3); k > 0; k--)
        snprintf(s->languages[s->n_languages++], 4, "%s", langs[below(7)]);
    unsigned ih = below(10);
    const char *text = ih < 7   ? "24/7"
                       : ih < 9 ? "mon-fri 08:00-22:00,sat-sun 10:00-18:00"
                                : "daily 18:00-08:00";
    if (proto_intake_parse(text, strlen(text), &s->intake, NULL) != PROTO_OK)
        exit(1);
    s->paused = below(100) < 3;
    s->updated_ms = now - (int64_t)below(30 * 3600) * 1000;
    s->n_units = 3;
    s->units = calloc(3, sizeof *s->units);
    static const uint8_t beds[] = {1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4, 5, 5, 6};
    for (unsigned k = 0; k < 3; k++) {
        struct idx_unit *u = &s->units[k];
        snprintf(u->id, sizeof u->id, "u%u", k + 1);
        u->beds = beds[below(20)];
        u->accessible = below(5) == 0;
        unsigned st = below(100);
        u->state = st < 25 ? VAC_FREE : st < 85 ? VAC_OCCUPIED : VAC_CLOSED;
    }
    return s;
}

static void referral(struct proto_args *a, int64_t now)
{
    static const char *const langs[] = {"en", "ar", "fi", "so"};
    (void)now;
    memset(a, 0, sizeof *a);
    memcpy(a->home, proto_municipality_code(below(PROTO_MUNICIPALITIES)), 5);
    a->risk = (uint8_t)below(RISK__COUNT);
    a->present = PROTO_BIT(F_HOME) | PROTO_BIT(F_RISK);
    if (a->risk >= RISK_MODERATE && below(2)) {
        a->n_perpetrator = 1;
        memcpy(a->perpetrator[0], proto_municipality_code(below(PROTO_MUNICIPALITIES)), 5);
        a->present |= PROTO_BIT(F_PERPETRATOR);
    }
    if (below(10) < 3) {
        a->adults = 2;
        a->present |= PROTO_BIT(F_ADULTS);
    }
    a->n_children = (uint8_t)below(4);
    for (unsigned i = 0; i < a->n_children; i++)
        a->children[i] = (struct proto_child){(uint8_t)below(18), below(2) ? 'm' : 'f'};
    if (a->n_children)
        a->present |= PROTO_BIT(F_CHILDREN);
    if (below(10) == 0) {
        a->wheelchair = true;
        a->present |= PROTO_BIT(F_WHEELCHAIR);
    }
    if (below(10) == 0) {
        a->pets = true;
        a->present |= PROTO_BIT(F_PETS);
    }
    if (below(10) == 0) {
        memcpy(a->language, langs[below(4)], 3);
        a->present |= PROTO_BIT(F_LANGUAGE);
    }
}

static void run(unsigned shelters, int64_t now)
{
    struct index ix;
    index_init(&ix);
    double t = now_s();
    for (unsigned i = 0; i < shelters; i++) {
        if (index_bulk_add(&ix, shelter(i, now)) < 0)
            exit(1);
    }
    if (index_bulk_end(&ix) < 0)
        exit(1);
    double build = now_s() - t;
    unsigned queries = shelters >= 100000 ? 2000 : 5000;
    unsigned scans = !with_scan ? 1 : shelters >= 100000 ? 50 : 300;
    struct proto_args *qs = malloc(queries * sizeof *qs);
    for (unsigned q = 0; q < queries; q++)
        referral(&qs[q], now);
    unsigned hits = 0, empty = 0;
    t = now_s();
    for (unsigned q = 0; q < queries; q++) {
        struct match_outcome o;
        if (match_search(&ix, &geo, &policy, &qs[q], now, 24 * 3600000, &o) < 0)
            exit(1);
        hits += o.n_hits;
        empty += o.n_hits == 0;
        match_outcome_free(&o);
    }
    double search_us = (now_s() - t) / queries * 1e6;
    t = now_s();
    for (unsigned q = 0; q < scans; q++) {
        struct match_outcome o;
        if (match_scan(&ix, &geo, &policy, &qs[q], now, 24 * 3600000, &o) < 0)
            exit(1);
        match_outcome_free(&o);
    }
    double scan_us = (now_s() - t) / scans * 1e6;
    printf("%7u shelters %8u units (%6u available): index built in %5.1f ms; search %7.2f us, "
           "plain scan %9.1f us (%.0fx); %.1f hits per search, %u of %u found none\n",
           shelters, shelters * 3, ix.avail ? ix.avail->total : 0, build * 1000, search_us, scan_us,
           scan_us / search_us, (double)hits / queries, empty, queries);
    free(qs);
    index_clear(&ix);
}

int main(int argc, char **argv)
{
    char err[512], mpath[1024], apath[1024], ppath[1024];
    if (argc < 2) {
        fprintf(stderr, "usage: searchbench SOURCE_ROOT [SHELTERS...]\n");
        return 2;
    }
    snprintf(mpath, sizeof mpath, "%s/conf/municipalities.csv", argv[1]);
    snprintf(apath, sizeof apath, "%s/conf/adjacency.csv", argv[1]);
    snprintf(ppath, sizeof ppath, "%s/conf/policy.conf", argv[1]);
    if (intake_tz_setup() < 0 || geo_load(&geo, mpath, apath, err, sizeof err) < 0 ||
        policy_load(&policy, ppath, err, sizeof err) < 0) {
        fprintf(stderr, "searchbench: %s\n", err);
        return 1;
    }
    int64_t now = INT64_C(1795000000000) + 14 * 3600000; /* a weekday afternoon */
    int first = 2;
    if (argc > 2 && strcmp(argv[2], "--no-scan") == 0) {
        with_scan = false;
        first = 3;
    }
    if (argc == first) {
        run(1000, now);
        run(10000, now);
        run(100000, now);
    }
    for (int i = first; i < argc; i++)
        run((unsigned)strtoul(argv[i], NULL, 10), now);
    return 0;
}
