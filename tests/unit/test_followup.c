/*
 * Follow-up statistics (daemon/followup.c): the suppression rule of a county cell checked
 * against every way its small municipality cells could be, by an attacker who knows the rule;
 * medians of histograms; months in Swedish time; who sees which municipality; and the search
 * batches, closed when first sent, sent again unchanged until the store has them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "followup.h"
#include "intake.h"

#ifndef FRISTAD_SOURCE_ROOT
#error "FRISTAD_SOURCE_ROOT must name the source tree"
#endif

static struct geo *geo;

static void test_county_cell_cases(void **state)
{
    (void)state;
    assert_int_equal(followup_county_cell(0, 26, 0), -1); /* below 3: "<3" */
    assert_int_equal(followup_county_cell(2, 26, 2), -1);
    assert_int_equal(followup_county_cell(12, 0, 0), 12); /* nothing hidden */
    assert_int_equal(followup_county_cell(8, 1, 2), -2);  /* one hidden: its value */
    assert_int_equal(followup_county_cell(7, 24, 0), -2); /* the hidden had none */
    assert_int_equal(followup_county_cell(8, 24, 1), -2); /* one had 1, the rest none */
    assert_int_equal(followup_county_cell(9, 25, 3), 9);  /* 3 among 25: no one's value */
    assert_int_equal(followup_county_cell(9, 2, 3), -2);  /* 2k - 1: 1 and 2 */
    assert_int_equal(followup_county_cell(10, 2, 4), -2); /* 2k: both 2 */
    assert_int_equal(followup_county_cell(10, 3, 4), 10); /* 4 among 3 */
    assert_int_equal(followup_county_cell(2, 1, 2), -1);  /* Gotland: the county is the one */
}

/*
 * Every way k hidden municipality cells (0, 1 or 2 each) can be, beside shown municipalities
 * summing to s (each at least 3): the attacker sees what the county shows and knows the rule,
 * so all the ways that show the same are alike to him. No hidden cell may have one value in
 * all of them.
 */
static void test_no_hidden_cell_follows_from_the_county(void **state)
{
    (void)state;
    static const uint64_t shown_sums[] = {0, 3, 4, 7, 30};
    for (unsigned k = 1; k <= 6; k++) {
        unsigned ways = 1;
        for (unsigned i = 0; i < k; i++)
            ways *= 3;
        for (size_t si = 0; si < sizeof shown_sums / sizeof shown_sums[0]; si++) {
            uint64_t s = shown_sums[si];
            /* out[w]: what the county shows for way w; seen[out][cell][value] */
            int64_t *out = malloc(ways * sizeof *out);
            assert_non_null(out);
            for (unsigned w = 0; w < ways; w++) {
                uint64_t small = 0;
                for (unsigned i = 0, x = w; i < k; i++, x /= 3)
                    small += x % 3;
                out[w] = followup_county_cell(s + small, k, small);
            }
            for (unsigned w = 0; w < ways; w++) {
                for (unsigned cell = 0; cell < k; cell++) {
                    bool value[3] = {false, false, false};
                    for (unsigned v = 0; v < ways; v++) {
                        if (out[v] != out[w])
                            continue;
                        unsigned x = v;
                        for (unsigned i = 0; i < cell; i++)
                            x /= 3;
                        value[x % 3] = true;
                    }
                    if (value[0] + value[1] + value[2] < 2)
                        fail_msg("k=%u, shown %llu: the county's %lld gives a cell away", k,
                                 (unsigned long long)s, (long long)out[w]);
                }
            }
            free(out);
        }
    }
}

static void test_county_magnitude(void **state)
{
    (void)state;
    assert_false(followup_county_magnitude(2, 0, 0));  /* fewer than 3 cases */
    assert_true(followup_county_magnitude(3, 0, 0));   /* every municipality shown */
    assert_false(followup_county_magnitude(3, 25, 0)); /* would say the others had none */
    assert_false(followup_county_magnitude(9, 25, 2)); /* two households' figure */
    assert_true(followup_county_magnitude(9, 25, 3));
}

static void test_median(void **state)
{
    (void)state;
    uint32_t m[] = {30, 10, 20};
    uint64_t c[] = {1, 1, 1};
    assert_int_equal(followup_median(m, c, 3), 20);
    uint64_t even[] = {2, 1, 1}; /* 10 20 30 30: (20 + 30) / 2 */
    assert_int_equal(followup_median(m, even, 3), 25);
    uint32_t m2[] = {7, 4};
    uint64_t c2[] = {1, 1}; /* 5.5 rounds up */
    assert_int_equal(followup_median(m2, c2, 2), 6);
    uint64_t many[] = {100, 1}; /* one outlier moves nothing */
    assert_int_equal(followup_median(m2, many, 2), 7);
    assert_int_equal(followup_median(m, (uint64_t[]){0, 0, 0}, 3), -1);
}

/* ms since 1970 of a UTC date and time. */
static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm) * 1000;
}

static void test_months_are_swedish(void **state)
{
    (void)state;
    /* Summer time: April begins at 22:00 UTC on 31 March; winter: March at 23:00 UTC. */
    assert_int_equal(followup_month_of(utc(2027, 3, 31, 21, 59, 59)), 2027 * 12 + 2);
    assert_int_equal(followup_month_of(utc(2027, 3, 31, 22, 0, 0)), 2027 * 12 + 3);
    assert_int_equal(followup_month_of(utc(2027, 2, 28, 22, 59, 59)), 2027 * 12 + 1);
    assert_int_equal(followup_month_of(utc(2027, 2, 28, 23, 0, 0)), 2027 * 12 + 2);
    assert_int_equal(followup_month_of(utc(2026, 12, 31, 23, 0, 0)), 2027 * 12 + 0);
    /* A month is reported from the 2nd of the next. */
    assert_int_equal(followup_latest_month(utc(2027, 5, 1, 12, 0, 0)), 2027 * 12 + 2);
    assert_int_equal(followup_latest_month(utc(2027, 5, 1, 22, 0, 0)), 2027 * 12 + 3);
    assert_int_equal(followup_latest_month(utc(2027, 1, 5, 12, 0, 0)), 2026 * 12 + 11);
    char text[8];
    proto_month_format(2027 * 12 + 3, text);
    assert_string_equal(text, "2027-04");
}

static void test_who_sees_what(void **state)
{
    (void)state;
    struct principal social, oncall, admin, shelter;
    authz_principal_set(&social, "social", "0180");
    authz_principal_set(&oncall, "oncall", "jour-sthlm");
    authz_principal_set(&admin, "admin", "ops");
    authz_principal_set(&shelter, "shelter", "frida");
    int sthlm = proto_municipality_index("0180", 4), vasby = proto_municipality_index("0114", 4);
    /* On-call acts for Stockholm's municipality alone. */
    static struct config cfg;
    cfg.n_oncall = 1;
    snprintf(cfg.oncall[0].id, sizeof cfg.oncall[0].id, "jour-sthlm");
    cfg.oncall[0].muns[sthlm / 64] |= UINT64_C(1) << (sthlm % 64);
    assert_true(followup_may_see(&cfg, &social, geo, (unsigned)sthlm));
    assert_false(followup_may_see(&cfg, &social, geo, (unsigned)vasby));
    for (unsigned i = 0; i < PROTO_MUNICIPALITIES; i++) {
        assert_int_equal(followup_may_see(&cfg, &oncall, geo, i), i == (unsigned)sthlm);
        assert_true(followup_may_see(&cfg, &admin, geo, i));
        assert_false(followup_may_see(&cfg, &shelter, geo, i));
    }
    assert_false(followup_may_see(&cfg, &admin, geo, PROTO_MUNICIPALITIES));
}

static uint64_t batch_searches(const struct followup_batch *b)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < b->n; i++)
        n += b->cells[i].searches;
    return n;
}

static void test_batches(void **state)
{
    (void)state;
    struct search_counts c = {.tally = followup_tally_new()};
    struct metrics_searches flushed = {0};
    unsigned ruled[REASON__COUNT] = {[REASON_WHEELCHAIR] = 4};
    assert_non_null(c.tally);
    int sthlm = proto_municipality_index("0180", 4), vasby = proto_municipality_index("0114", 4);
    int64_t march = utc(2027, 3, 31, 21, 59, 0), april = utc(2027, 3, 31, 22, 1, 0);

    assert_null(followup_next_batch(c.tally)); /* nothing counted */
    followup_count_search(&c, march, (unsigned)sthlm, false, ruled);
    followup_count_search(&c, march, (unsigned)sthlm, true, ruled);
    followup_count_search(&c, april, (unsigned)sthlm, false, ruled);
    followup_count_search(&c, march, (unsigned)vasby, true, ruled);
    assert_int_equal(c.searches, 4);
    assert_int_equal(c.no_match, 2);
    assert_int_equal(c.reasons[REASON_WHEELCHAIR], 2);

    const struct followup_batch *b = followup_next_batch(c.tally);
    assert_non_null(b);
    assert_int_equal(b->seq, 1);
    assert_int_equal(b->n, 3); /* (March, 0180), (April, 0180), (March, 0114) */
    assert_int_equal(batch_searches(b), 4);
    for (unsigned i = 0; i < b->n; i++) {
        if (b->cells[i].month == 2027 * 12 + 2 && b->cells[i].mun == (unsigned)sthlm) {
            assert_int_equal(b->cells[i].searches, 2);
            assert_int_equal(b->cells[i].no_match, 1);
            assert_int_equal(b->cells[i].reasons[REASON_WHEELCHAIR], 1);
        }
    }
    /* Packed as the store function takes it. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(followup_pack_batch(c.tally, b, &pk), 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *cells = proto_map_get(&u.data, "cells");
    assert_non_null(cells);
    assert_int_equal(cells->via.array.size, 3);
    const msgpack_object *month = proto_map_get(&cells->via.array.ptr[0], "month");
    assert_int_equal(month->via.str.size, 7);
    assert_memory_equal(month->via.str.ptr, "2027-03", 7);
    assert_int_equal(proto_map_get(&u.data, "batch")->via.u64, 1);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);

    /* In flight: nothing else goes. Searches meanwhile go to the next batch. */
    c.tally->inflight = true;
    assert_null(followup_next_batch(c.tally));
    followup_count_search(&c, april, (unsigned)vasby, false, ruled);
    /* The reply is lost: the same batch again, same number, same cells. */
    followup_batch_done(&c, false, &flushed);
    assert_false(followup_settled(&c));
    const struct followup_batch *again = followup_next_batch(c.tally);
    assert_ptr_equal(again, b);
    assert_int_equal(again->seq, 1);
    assert_int_equal(batch_searches(again), 4);
    assert_int_equal(flushed.searches, 0);
    /* Added: its counts move to the flushed ones; the next batch holds the later search. */
    c.tally->inflight = true;
    followup_batch_done(&c, true, &flushed);
    assert_int_equal(flushed.searches, 4);
    assert_int_equal(flushed.no_match, 2);
    assert_int_equal(c.searches, 1);
    b = followup_next_batch(c.tally);
    assert_int_equal(b->seq, 2);
    assert_int_equal(batch_searches(b), 1);
    c.tally->inflight = true;
    followup_batch_done(&c, true, &flushed);
    assert_true(followup_settled(&c));
    assert_int_equal(c.searches, 0);
    assert_int_equal(flushed.searches, 5);
    followup_tally_free(c.tally);
}

static int setup(void **state)
{
    (void)state;
    char err[512];
    geo = malloc(sizeof *geo);
    if (!geo || intake_tz_setup() < 0 ||
        geo_load(geo, FRISTAD_SOURCE_ROOT "/conf/municipalities.csv",
                 FRISTAD_SOURCE_ROOT "/conf/adjacency.csv", err, sizeof err) < 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(geo);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_county_cell_cases),
        cmocka_unit_test(test_no_hidden_cell_follows_from_the_county),
        cmocka_unit_test(test_county_magnitude),
        cmocka_unit_test(test_median),
        cmocka_unit_test(test_months_are_swedish),
        cmocka_unit_test(test_who_sees_what),
        cmocka_unit_test(test_batches),
    };
    return cmocka_run_group_tests_name("followup", tests, setup, teardown);
}
