/*
 * The per-principal request limiter (daemon/ratelimit.c): a token bucket per principal that
 * starts full at `burst`, refills at `rate` tokens a second and never holds more than `burst`.
 *
 * Time is given to limits_take in milliseconds; the steps below are chosen so that every refill
 * is exact in binary floating point (multiples of 125 ms at rates that are powers of two, or
 * whole seconds), so no assertion depends on rounding.
 *
 * The daemon feeds it the monotonic clock, which never steps; the cases with steps back show
 * that even a clock that did step would neither refill the bucket nor lock a principal out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ratelimit.h"

/* Under -fsanitize=undefined, a report fails the test instead of scrolling by. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1";
}

/* An arbitrary start, far from zero, so that steps back stay positive. */
#define T0 ((int64_t)1700000000000)

static int setup(void **state)
{
    struct limits *l = limits_new();
    if (!l)
        return -1;
    *state = l;
    return 0;
}

static int teardown(void **state)
{
    limits_free(*state);
    return 0;
}

static struct limit_entry *entry(void **state, const char *name)
{
    struct limit_entry *e = limits_get(*state, name);
    assert_non_null(e);
    return e;
}

/* How many requests the bucket grants at `now`, taking until the first refusal. */
static unsigned drain(struct limit_entry *e, unsigned rate, unsigned burst, int64_t now)
{
    unsigned n = 0;
    while (limits_take(e, rate, burst, now)) {
        n++;
        if (n > burst)
            fail_msg("granted %u requests at one instant with a burst of %u", n, burst);
    }
    return n;
}

static void test_starts_full_at_burst(void **state)
{
    static const unsigned bursts[] = {1, 2, 40, 1000};
    for (size_t i = 0; i < sizeof bursts / sizeof bursts[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "social:%04zu", i);
        struct limit_entry *e = entry(state, name);
        assert_int_equal(drain(e, 1, bursts[i], T0), bursts[i]);
        /* Refused, and refused again: a refusal takes nothing and gives nothing. */
        assert_false(limits_take(e, 1, bursts[i], T0));
    }
    /* A principal first seen late in the daemon's life starts full too. */
    struct limit_entry *late = entry(state, "oncall:late");
    assert_int_equal(drain(late, 20, 40, T0 + 86400000), 40);
}

static void test_refills_at_rate(void **state)
{
    struct limit_entry *e = entry(state, "social:0180");
    assert_int_equal(drain(e, 4, 10, T0), 10);
    /* 4 a second: one token every 250 ms. */
    assert_int_equal(drain(e, 4, 10, T0 + 125), 0);
    assert_int_equal(drain(e, 4, 10, T0 + 250), 1);
    assert_int_equal(drain(e, 4, 10, T0 + 1250), 4);
    assert_int_equal(drain(e, 4, 10, T0 + 3250), 8);
    /* Half tokens are kept across a refusal: two half refills make one request. */
    assert_false(limits_take(e, 4, 10, T0 + 3375));
    assert_true(limits_take(e, 4, 10, T0 + 3500));
    assert_false(limits_take(e, 4, 10, T0 + 3500));
    /* So is what is left of a token after a request. */
    struct limit_entry *f = entry(state, "social:1480");
    assert_int_equal(drain(f, 4, 2, T0), 2);
    assert_int_equal(drain(f, 4, 2, T0 + 375), 1);
    assert_int_equal(drain(f, 4, 2, T0 + 500), 1);
    /* A steady client at exactly the rate is always served. */
    for (int64_t t = T0 + 3750; t < T0 + 60000; t += 250)
        assert_true(limits_take(e, 4, 10, t));
    /* The rate is the caller's: a reload that raises it applies from the next request. */
    assert_int_equal(drain(e, 8, 10, T0 + 60750), 8);
}

static void test_never_above_burst(void **state)
{
    struct limit_entry *e = entry(state, "shelter:frida-sthlm");
    assert_int_equal(drain(e, 10, 3, T0), 3);
    /* An hour idle at 10 a second would be 36000 tokens; the bucket holds 3. */
    assert_int_equal(drain(e, 10, 3, T0 + 3600000), 3);
    /* Partly used, then a pause: back to exactly the burst, not 2 plus the pause's worth. */
    assert_true(limits_take(e, 10, 3, T0 + 3700000));
    assert_int_equal(drain(e, 10, 3, T0 + 3800000), 3);
    /* A burst of 1 stays 1 whatever the rate. */
    struct limit_entry *f = entry(state, "shelter:hamnen-gbg");
    assert_int_equal(drain(f, 1000, 1, T0), 1);
    assert_int_equal(drain(f, 1000, 1, T0 + 60000), 1);
}

static void test_asking_again_does_not_reset(void **state)
{
    struct limit_entry *e = entry(state, "social:0180");
    assert_int_equal(drain(e, 1, 5, T0), 5);
    /* The same name is the same bucket, still empty: reconnecting resets nothing. */
    struct limit_entry *again = entry(state, "social:0180");
    assert_ptr_equal(again, e);
    assert_false(limits_take(again, 1, 5, T0));
    /* Nor does it after many other principals have arrived and shared its hash chain. */
    for (unsigned i = 0; i < 2000; i++) {
        char name[32];
        snprintf(name, sizeof name, "social:%04u", i);
        assert_non_null(limits_get(*state, name));
    }
    again = entry(state, "social:0180");
    assert_ptr_equal(again, e);
    assert_false(limits_take(again, 1, 5, T0 + 500));
    assert_int_equal(drain(again, 1, 5, T0 + 1000), 1);
}

static void test_principals_do_not_share(void **state)
{
    struct limit_entry *a = entry(state, "social:0180");
    struct limit_entry *b = entry(state, "social:1480");
    struct limit_entry *c = entry(state, "oncall:0180");
    struct limit_entry *d = entry(state, "social:01800");
    assert_ptr_not_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_ptr_not_equal(a, d);
    assert_int_equal(drain(a, 2, 4, T0), 4);
    /* The others, including names that contain or share a part of a's, are untouched. */
    assert_int_equal(drain(b, 2, 4, T0), 4);
    assert_int_equal(drain(c, 2, 4, T0), 4);
    assert_int_equal(drain(d, 2, 4, T0), 4);
    /* b's use of its own refill does not take from a's. */
    assert_int_equal(drain(b, 2, 4, T0 + 1000), 2);
    assert_int_equal(drain(a, 2, 4, T0 + 1000), 2);

    /* More principals than the table has chains: each one a full bucket of its own. */
    for (unsigned i = 0; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "shelter:jour-%03u", i);
        assert_int_equal(drain(entry(state, name), 1, 3, T0 + i), 3);
    }
    for (unsigned i = 0; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "shelter:jour-%03u", i);
        assert_false(limits_take(entry(state, name), 1, 3, T0 + i));
    }
}

/*
 * The clock steps back (the daemon passes the wall clock, which NTP or an operator may set
 * back): the step must not refill the bucket, and must not refuse what the bucket still holds.
 */
static void test_backwards_step_does_not_refill(void **state)
{
    struct limit_entry *e = entry(state, "social:0180");
    assert_int_equal(drain(e, 1, 5, T0 + 100000), 5);
    /* Back 60 s: no refill, however far back and however often asked. */
    assert_false(limits_take(e, 1, 5, T0 + 40000));
    assert_false(limits_take(e, 1, 5, T0));
    assert_false(limits_take(e, 1, 5, T0 - 86400000));
    /* Two seconds past where it was, at least those two seconds' worth is back. */
    assert_true(drain(e, 1, 5, T0 + 102000) >= 2);

    /* A bucket that still holds tokens serves them after a step back. */
    struct limit_entry *f = entry(state, "social:1480");
    assert_true(limits_take(f, 1, 5, T0 + 100000));
    assert_true(limits_take(f, 1, 5, T0 + 100000));
    assert_int_equal(drain(f, 1, 5, T0 + 90000), 3);
}

/*
 * After a step back, the bucket refills with the time that passes from then on: a principal
 * that was empty when the clock went back an hour is not refused for an hour.
 */
static void test_forward_after_backwards_step_refills(void **state)
{
    struct limit_entry *e = entry(state, "social:0180");
    assert_int_equal(drain(e, 1, 5, T0 + 100000), 5);
    assert_false(limits_take(e, 1, 5, T0 + 40000)); /* back 60 s: no refill */
    /* Two seconds later by the clock as it now reads: two requests. */
    assert_int_equal(drain(e, 1, 5, T0 + 42000), 2);

    /* The same after a step back of a day: served again within seconds, not a day. */
    struct limit_entry *f = entry(state, "social:1480");
    assert_int_equal(drain(f, 1, 5, T0 + 100000), 5);
    assert_false(limits_take(f, 1, 5, T0 + 100000 - 86400000));
    assert_int_equal(drain(f, 1, 5, T0 + 105000 - 86400000), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_starts_full_at_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refills_at_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_above_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_asking_again_does_not_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_principals_do_not_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backwards_step_does_not_refill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_after_backwards_step_refills, setup, teardown),
    };
    return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
