/*
 * The client's times in Europe/Stockholm: ISO 8601 with the offset of each moment, local
 * times read as the tables show them, and the two kinds of local time that are no single
 * moment (skipped in spring, repeated in autumn) refused with the way out.
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

#include "times.h"

/* 2026-10-25 01:00:00 UTC: 03:00 CEST becomes 02:00 CET. */
#define AUTUMN_MS 1792890000000LL
/* 2026-03-29 01:00:00 UTC: 02:00 CET becomes 03:00 CEST. */
#define SPRING_MS 1774746000000LL

static int setup(void **state)
{
    (void)state;
    setenv("TZ", "Europe/Stockholm", 1);
    tzset();
    return 0;
}

static int64_t parse(const char *text)
{
    int64_t ms = -1;
    char why[256];
    if (!times_parse(text, 0, &ms, why, sizeof why))
        fail_msg("'%s' refused: %s", text, why);
    return ms;
}

static const char *refused(const char *text)
{
    static char why[256];
    int64_t ms;
    assert_false(times_parse(text, 0, &ms, why, sizeof why));
    return why;
}

static void test_iso_carries_each_moment_s_offset(void **state)
{
    (void)state;
    char buf[48];
    assert_string_equal(times_iso(AUTUMN_MS - 20000, buf, sizeof buf),
                        "2026-10-25T02:59:40.000+02:00");
    assert_string_equal(times_iso(AUTUMN_MS + 3123, buf, sizeof buf),
                        "2026-10-25T02:00:03.123+01:00");
    assert_string_equal(times_iso(0, buf, sizeof buf), "1970-01-01T01:00:00.000+01:00");
    assert_string_equal(times_iso(-1, buf, sizeof buf), "1970-01-01T00:59:59.999+01:00");
}

static void test_local_times_read_as_shown(void **state)
{
    (void)state;
    assert_int_equal(parse("2026-10-25"), AUTUMN_MS - 3 * 3600000LL); /* midnight CEST */
    assert_int_equal(parse("2026-10-25T01:59"), AUTUMN_MS - 3660000LL);
    assert_int_equal(parse("2026-10-25T03:00"), AUTUMN_MS + 3600000LL); /* CET */
    assert_int_equal(parse("2026-10-25T02:30+02:00"), AUTUMN_MS - 1800000LL);
    assert_int_equal(parse("2026-10-25T02:30+01:00"), AUTUMN_MS + 1800000LL);
    assert_int_equal(parse("2026-10-25T00:30:00.250Z"), AUTUMN_MS - 1800000LL + 250);
    assert_int_equal(parse("2026-03-29T03:00"), SPRING_MS);
    assert_int_equal(parse("2026-03-29T01:59:59"), SPRING_MS - 1000);
    assert_int_equal(parse("1792890000000"), AUTUMN_MS);
}

static void test_times_that_are_no_single_moment(void **state)
{
    (void)state;
    const char *why = refused("2026-10-25T02:30");
    assert_non_null(strstr(why, "happens twice"));
    assert_non_null(strstr(why, "2026-10-25T02:30+02:00 (the first)"));
    assert_non_null(strstr(why, "2026-10-25T02:30+01:00 (the second)"));
    why = refused("2026-03-29T02:30");
    assert_non_null(strstr(why, "does not exist in local time"));
    assert_string_equal(refused("2026-02-30"), "");
    assert_string_equal(refused("yesterday"), "");
    assert_string_equal(refused("2026-10-25T25:00"), "");
}

static void test_ages(void **state)
{
    (void)state;
    int64_t ms;
    char why[64];
    assert_true(times_parse("30m", AUTUMN_MS, &ms, why, sizeof why));
    assert_int_equal(ms, AUTUMN_MS - 1800000LL);
    assert_true(times_parse("1w", AUTUMN_MS, &ms, why, sizeof why));
    assert_int_equal(ms, AUTUMN_MS - 7 * 86400000LL);
    assert_false(times_parse("99999999999d", AUTUMN_MS, &ms, why, sizeof why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso_carries_each_moment_s_offset),
        cmocka_unit_test(test_local_times_read_as_shown),
        cmocka_unit_test(test_times_that_are_no_single_moment),
        cmocka_unit_test(test_ages),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
