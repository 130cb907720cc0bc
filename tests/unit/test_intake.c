/*
 * Intake hours: the text (proto/intake.c) and the clock (daemon/intake.c) in Swedish local time,
 * across midnight, ranges past midnight and both daylight-saving changes; and the ids the daemon
 * issues, which must never look like a personal identity number.
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

#include "intake.h"
#include "ops.h"

/* Milliseconds of a UTC date and time. */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (int64_t)timegm(&tm) * 1000;
}

static struct proto_intake parse(const char *text)
{
    struct proto_intake in;
    struct proto_error err = {0};
    if (proto_intake_parse(text, strlen(text), &in, &err) != PROTO_OK)
        fail_msg("'%s' refused: %s", text, err.message);
    return in;
}

static void test_text(void **state)
{
    (void)state;
    static const struct {
        const char *in, *canonical;
    } ok[] = {
        {"24/7", "24/7"},
        {" 24/7 ", "24/7"},
        {"mon-fri 08:00-16:30,sat 10:00-14:00", "mon-fri 08:00-16:30,sat 10:00-14:00"},
        {"mon-fri 08:00-16:30, sat 10:00-14:00", "mon-fri 08:00-16:30,sat 10:00-14:00"},
        {"daily 00:00-24:00", "daily 00:00-24:00"},
        {"mon-sun 07:00-22:00", "daily 07:00-22:00"},
        {"fri-mon 18:00-09:00", "fri-mon 18:00-09:00"},
        {"sun 22:00-02:00", "sun 22:00-02:00"},
        {"sat-sun 10:00-12:00", "sat-sun 10:00-12:00"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct proto_intake in = parse(ok[i].in);
        char buf[PROTO_INTAKE_MAX * 4 + 1];
        assert_true(proto_intake_format(&in, buf, sizeof buf) > 0);
        assert_string_equal(buf, ok[i].canonical);
    }
    static const char *const bad[] = {
        "",
        "24/8",
        "mon",
        "mon 8:00-16:00",
        "mon 08:00",
        "mon 08:00-08:00",
        "mån 08:00-16:00",
        "mon-fre 08:00-16:00",
        "mon 24:00-02:00",
        "mon 08:60-09:00",
        "mon 25:00-26:00",
        "mon 08:00-16:00,",
        ",mon 08:00-16:00",
        "mon 08:00-16:00,mon 08:00-16:00,mon 08:00-16:00,mon 08:00-16:00,mon 08:00-16:00,"
        "mon 08:00-16:00,mon 08:00-16:00,mon 08:00-16:00,mon 08:00-16:00,mon 08:00-16:00,"
        "mon 08:00-16:00,mon 08:00-16:00,mon 08:00-16:00,mon 08:00-16:00,mon 08:00-16:00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct proto_intake in;
        struct proto_error err = {0};
        if (proto_intake_parse(bad[i], strlen(bad[i]), &in, &err) != PROTO_E_BAD_REQUEST)
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(strstr(err.message, "24/7"));
    }
}

static void test_office_hours_in_winter_and_summer(void **state)
{
    (void)state;
    struct proto_intake in = parse("mon-fri 08:00-16:30,sat 10:00-14:00");
    /* Wednesday 2026-11-25: CET, UTC+1. 07:59 local is closed, 08:00 open, 16:30 closed. */
    assert_false(intake_open_at(&in, utc(2026, 11, 25, 6, 59)));
    assert_true(intake_open_at(&in, utc(2026, 11, 25, 7, 0)));
    assert_true(intake_open_at(&in, utc(2026, 11, 25, 15, 29)));
    assert_false(intake_open_at(&in, utc(2026, 11, 25, 15, 30)));
    /* Wednesday 2026-06-24: CEST, UTC+2. 08:00 local is 06:00 UTC. */
    assert_false(intake_open_at(&in, utc(2026, 6, 24, 5, 59)));
    assert_true(intake_open_at(&in, utc(2026, 6, 24, 6, 0)));
    /* Sunday: closed all day. At 03:00 on Sunday night the next opening is Monday 08:00. */
    assert_false(intake_open_at(&in, utc(2026, 11, 29, 11, 0)));
    assert_int_equal(intake_next_open(&in, utc(2026, 11, 29, 2, 0)), utc(2026, 11, 30, 7, 0));
    /* Friday evening: the next opening is Saturday 10:00. */
    assert_int_equal(intake_next_open(&in, utc(2026, 11, 27, 17, 0)), utc(2026, 11, 28, 9, 0));
    /* Open now: now. */
    assert_int_equal(intake_next_open(&in, utc(2026, 11, 25, 10, 0)), utc(2026, 11, 25, 10, 0));
    char buf[40];
    assert_int_equal(intake_format_time(utc(2026, 11, 30, 7, 0), buf, sizeof buf), 0);
    assert_string_equal(buf, "2026-11-30T08:00:00+01:00");
    assert_int_equal(intake_format_time(utc(2026, 6, 24, 6, 0), buf, sizeof buf), 0);
    assert_string_equal(buf, "2026-06-24T08:00:00+02:00");
}

static void test_past_midnight(void **state)
{
    (void)state;
    /* Friday and Saturday nights, 22:00 to 02:00. */
    struct proto_intake in = parse("fri-sat 22:00-02:00");
    assert_true(intake_open_at(&in, utc(2026, 11, 27, 21, 0)));  /* Fri 22:00 */
    assert_true(intake_open_at(&in, utc(2026, 11, 28, 0, 59)));  /* Sat 01:59 */
    assert_false(intake_open_at(&in, utc(2026, 11, 28, 1, 0)));  /* Sat 02:00 */
    assert_true(intake_open_at(&in, utc(2026, 11, 29, 0, 30)));  /* Sun 01:30, from Sat */
    assert_false(intake_open_at(&in, utc(2026, 11, 30, 0, 30))); /* Mon 01:30: Sun is not on */
    assert_false(intake_open_at(&in, utc(2026, 11, 27, 0, 30))); /* Fri 01:30: Thu is not on */
    /* Midnight itself, with a range that ends there and one that starts there. */
    struct proto_intake day = parse("mon 12:00-24:00,tue 00:00-06:00");
    assert_true(intake_open_at(&day, utc(2026, 11, 30, 22, 59))); /* Mon 23:59 */
    assert_true(intake_open_at(&day, utc(2026, 11, 30, 23, 0)));  /* Tue 00:00 */
    assert_false(intake_open_at(&day, utc(2026, 12, 1, 5, 0)));   /* Tue 06:00 */
    assert_int_equal(intake_next_open(&day, utc(2026, 12, 1, 5, 0)), utc(2026, 12, 7, 11, 0));
}

static void test_daylight_saving_changes(void **state)
{
    (void)state;
    struct proto_intake in = parse("daily 08:00-09:00");
    /* Spring forward, Sunday 2026-03-29 at 02:00 local (01:00 UTC): 08:00 that morning is
     * 06:00 UTC, the day before it was 07:00 UTC. */
    assert_int_equal(intake_next_open(&in, utc(2026, 3, 28, 12, 0)), utc(2026, 3, 29, 6, 0));
    assert_int_equal(intake_next_open(&in, utc(2026, 3, 28, 3, 0)), utc(2026, 3, 28, 7, 0));
    /* Fall back, Sunday 2026-10-25 at 03:00 local (01:00 UTC): 08:00 is 07:00 UTC again. */
    assert_int_equal(intake_next_open(&in, utc(2026, 10, 24, 12, 0)), utc(2026, 10, 25, 7, 0));
    /* A night range over each change keeps its local clock times. */
    struct proto_intake night = parse("sat 23:00-04:00");
    assert_true(intake_open_at(&night, utc(2026, 3, 29, 0, 30)));  /* 01:30 CET */
    assert_true(intake_open_at(&night, utc(2026, 3, 29, 1, 30)));  /* 03:30 CEST */
    assert_false(intake_open_at(&night, utc(2026, 3, 29, 2, 0)));  /* 04:00 CEST */
    assert_true(intake_open_at(&night, utc(2026, 10, 25, 2, 30))); /* 03:30 CET (after) */
    assert_false(intake_open_at(&night, utc(2026, 10, 25, 3, 0))); /* 04:00 CET */
    char buf[40];
    assert_int_equal(intake_format_time(utc(2026, 3, 29, 6, 0), buf, sizeof buf), 0);
    assert_string_equal(buf, "2026-03-29T08:00:00+02:00");
}

static void test_always(void **state)
{
    (void)state;
    struct proto_intake in = parse("24/7");
    for (int h = 0; h < 24; h++)
        assert_true(intake_open_at(&in, utc(2026, 3, 29, h, 0)));
}

/*
 * Ids the daemon issues, many millions of them: none can trip the personal-number check. The
 * count is FRISTAD_ID_COUNT (default 20 million; the valgrind run sets fewer).
 */
static void test_ids_never_look_like_personal_numbers(void **state)
{
    (void)state;
    const char *env = getenv("FRISTAD_ID_COUNT");
    long count = env ? atol(env) : 20000000L;
    char id[PROTO_ID_LEN + 1];
    unsigned seen[26] = {0};
    for (long i = 0; i < count; i++) {
        assert_int_equal(ops_new_id(i % 2 ? 'h' : 'p', id), 0);
        assert_int_equal(strlen(id), PROTO_ID_LEN);
        if (proto_has_personal_number(id, PROTO_ID_LEN))
            fail_msg("id %s looks like a personal identity number", id);
        if (i < 100000) {
            for (unsigned k = 1; k < PROTO_ID_LEN; k++) {
                assert_true(id[k] >= 'a' && id[k] <= 'z');
                seen[id[k] - 'a']++;
            }
        }
    }
    /* The 19 letters, evenly: each within 5 % of its share. */
    unsigned letters = 0;
    for (unsigned c = 0; c < 26; c++) {
        if (!seen[c])
            continue;
        letters++;
        double share = seen[c] / (100000.0 * 16);
        assert_true(share > 0.95 / 19 && share < 1.05 / 19);
    }
    assert_int_equal(letters, 19);
}

static int setup(void **state)
{
    (void)state;
    return intake_tz_setup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_office_hours_in_winter_and_summer),
        cmocka_unit_test(test_past_midnight),
        cmocka_unit_test(test_daylight_saving_changes),
        cmocka_unit_test(test_always),
        cmocka_unit_test(test_ids_never_look_like_personal_numbers),
    };
    return cmocka_run_group_tests_name("intake", tests, setup, NULL);
}
