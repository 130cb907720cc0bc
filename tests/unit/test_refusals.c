/* The bound on refusals in the audit trail (daemon/refusals.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "refusals.h"

#define W 60000 /* a minute */

struct summary {
    char principal[96], person[96], code[32];
    uint64_t count;
    unsigned n;
};

static void collect(const char *principal, const char *person, const char *code, uint64_t count,
                    void *ud)
{
    struct summary *s = ud;
    snprintf(s->principal, sizeof s->principal, "%s", principal);
    snprintf(s->person, sizeof s->person, "%s", person);
    snprintf(s->code, sizeof s->code, "%s", code);
    s->count += count;
    s->n++;
}

static void test_budget_per_person_and_window(void **state)
{
    (void)state;
    struct refusals *r = refusals_new();
    struct summary s = {0};
    int64_t t = 10 * W + 5;
    unsigned recorded = 0;
    for (unsigned i = 0; i < 100; i++)
        recorded += refusals_count(r, "social:0180", "anna", "forbidden", t + i, W, 10);
    assert_int_equal(recorded, 10);
    /* Another person of the same principal has a budget of its own. */
    assert_true(refusals_count(r, "social:0180", "bo", "forbidden", t, W, 10));
    /* Nothing is owed while the window lasts. */
    refusals_flush(r, t + 1000, W, false, collect, &s);
    assert_int_equal(s.n, 0);
    /* Then one summary of the 90 counted. */
    refusals_flush(r, t + W, W, false, collect, &s);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.count, 90);
    assert_string_equal(s.principal, "social:0180");
    assert_string_equal(s.person, "anna");
    assert_string_equal(s.code, "forbidden");
    /* A new window, a new budget. */
    assert_true(refusals_count(r, "social:0180", "anna", "conflict", t + W, W, 10));
    refusals_free(r);
}

static void test_mixed_codes_and_shutdown(void **state)
{
    (void)state;
    struct refusals *r = refusals_new();
    struct summary s = {0};
    for (unsigned i = 0; i < 3; i++)
        refusals_count(r, "admin:ops", "p", "forbidden", 5, W, 1);
    refusals_count(r, "admin:ops", "p", "not_found", 6, W, 1);
    refusals_flush(r, 7, W, true, collect, &s); /* at shutdown: the window need not be over */
    assert_int_equal(s.n, 1);
    assert_int_equal(s.count, 3);
    assert_string_equal(s.code, "mixed");
    s = (struct summary){0};
    refusals_flush(r, 8, W, true, collect, &s);
    assert_int_equal(s.n, 0); /* forgotten once paid */
    refusals_free(r);
}

/* Writes at the store count against the budget while they are out, so that a pipeline of
 * writes the store refuses is not audited one by one past the budget. */
static void test_writes_at_the_store(void **state)
{
    (void)state;
    struct refusals *r = refusals_new();
    struct summary s = {0};
    bool quiet[40];
    unsigned loud = 0;
    for (unsigned i = 0; i < 40; i++)
        loud += !(quiet[i] = refusals_send(r, "shelter:x", "p", 100, W, 3));
    assert_int_equal(loud, 3);
    for (unsigned i = 0; i < 40; i++)
        refusals_answered(r, "shelter:x", "p", "not_found", quiet[i], 101, W);
    refusals_flush(r, W + 1, W, false, collect, &s);
    assert_int_equal(s.count, 37);
    /* Writes that succeed give their place back. */
    struct refusals *r2 = refusals_new();
    for (unsigned i = 0; i < 10; i++) {
        assert_false(refusals_send(r2, "shelter:x", "p", 100, W, 3));
        refusals_answered(r2, "shelter:x", "p", NULL, false, 100, W);
    }
    assert_true(refusals_count(r2, "shelter:x", "p", "forbidden", 100, W, 3));
    refusals_free(r2);
    refusals_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_per_person_and_window),
        cmocka_unit_test(test_mixed_codes_and_shutdown),
        cmocka_unit_test(test_writes_at_the_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
