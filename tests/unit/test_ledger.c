/*
 * The ledger of acknowledged writes: which ids a write's result names, the window they are kept
 * for, the bound on how many, one look-up per id however often it was acknowledged, a missing
 * record logged and counted once, and a check that the link interrupts. The store is a stub
 * that records each question and answers when the test says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "daemon.h"
#include "ledger.h"
#include "store.h"

/* ---- the store, stubbed ----------------------------------------------------------------- */

#define MAX_ASKED 40000

static struct {
    bool ready;
    unsigned n;                 /* questions asked */
    unsigned answered;          /* of which answered */
    char suffix[MAX_ASKED][40]; /* what was asked */
    store_exists_cb *cb[MAX_ASKED];
    void *ud[MAX_ASKED];
} stub;

int store_exists(struct store *st, const char *suffix, store_exists_cb *cb, void *ud)
{
    (void)st;
    if (!stub.ready || stub.n == MAX_ASKED)
        return -1;
    snprintf(stub.suffix[stub.n], sizeof stub.suffix[0], "%s", suffix);
    stub.cb[stub.n] = cb;
    stub.ud[stub.n] = ud;
    stub.n++;
    return 0;
}

/* Answers the oldest unanswered question: 1 exists, 0 missing, -1 link lost. */
static void answer(int exists)
{
    assert_true(stub.answered < stub.n);
    unsigned i = stub.answered++;
    stub.cb[i](exists, stub.ud[i]);
}

/* Answers every question, including those sent while answering: missing when the suffix is
 * listed in `gone` (NULL-terminated). */
static void answer_all(const char *const *gone)
{
    while (stub.answered < stub.n) {
        bool missing = false;
        for (const char *const *g = gone; g && *g; g++)
            missing |= strcmp(stub.suffix[stub.answered], *g) == 0;
        answer(missing ? 0 : 1);
    }
}

static bool asked(const char *suffix)
{
    for (unsigned i = 0; i < stub.n; i++) {
        if (strcmp(stub.suffix[i], suffix) == 0)
            return true;
    }
    return false;
}

/* ---- results as the store functions answer them ---------------------------------------- */

static msgpack_sbuffer sb;
static msgpack_unpacked un;

/* {hold = "h.."} (hold), {placement = {placement = "p..", hold = "h.."}} (confirm) */
static const msgpack_object *result(const char *hold, const char *placement)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, (hold ? 1 : 0) + (placement ? 1 : 0) + 1);
    rc |= proto_pack_kv_str(&pk, "shelter", "frida-sthlm");
    if (hold)
        rc |= proto_pack_kv_str(&pk, "hold", hold);
    if (placement) {
        rc |= proto_pack_cstr(&pk, "placement");
        rc |= msgpack_pack_map(&pk, 2);
        rc |= proto_pack_kv_str(&pk, "placement", placement);
        rc |= proto_pack_kv_str(&pk, "hold", "h-inside-the-placement");
    }
    assert_int_equal(rc, 0);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&un, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    return &un.data;
}

static struct config cfg;
static struct daemon d;

static int setup(void **state)
{
    (void)state;
    memset(&stub, 0, sizeof stub);
    memset(&d, 0, sizeof d);
    memset(&cfg, 0, sizeof cfg);
    cfg.reference_retention_ms = 24LL * 3600 * 1000;
    d.cfg = &cfg;
    stub.ready = true;
    msgpack_sbuffer_init(&sb);
    msgpack_unpacked_init(&un);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    msgpack_unpacked_destroy(&un);
    msgpack_sbuffer_destroy(&sb);
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_ids_from_results(void **state)
{
    (void)state;
    struct ledger *lg = ledger_new(&d);
    int64_t now = clock_mono_ms();
    ledger_note(lg, result("h0000000000000001", NULL), now);
    ledger_note(lg, result(NULL, "p0000000000000002"), now);
    ledger_note(lg, result("h0000000000000001", NULL), now); /* a release of the same hold */
    ledger_verify(lg);
    assert_int_equal(stub.n, 2); /* one question per record */
    assert_true(asked("hold:h0000000000000001"));
    assert_true(asked("pl:p0000000000000002"));
    answer_all(NULL);
    assert_int_equal(d.metrics.acked_checked, 2);
    assert_int_equal(d.metrics.acked_missing, 0);
    ledger_free(lg);
}

static void test_missing_counted_once(void **state)
{
    (void)state;
    static const char *const gone[] = {"hold:h-lost", "pl:p-lost", NULL};
    struct ledger *lg = ledger_new(&d);
    int64_t now = clock_mono_ms();
    ledger_note(lg, result("h-kept", NULL), now);
    ledger_note(lg, result("h-lost", "p-lost"), now);
    ledger_verify(lg);
    answer_all(gone);
    assert_int_equal(d.metrics.acked_missing, 2);
    /* The next reconnect asks only about what was there. */
    unsigned before = stub.n;
    ledger_verify(lg);
    assert_int_equal(stub.n - before, 1);
    assert_string_equal(stub.suffix[before], "hold:h-kept");
    answer_all(gone);
    assert_int_equal(d.metrics.acked_missing, 2);
    ledger_free(lg);
}

static void test_window(void **state)
{
    (void)state;
    struct ledger *lg = ledger_new(&d);
    int64_t now = clock_mono_ms();
    ledger_note(lg, result("h-old", NULL), now - 16 * 60 * 1000); /* beyond 15 minutes */
    ledger_note(lg, result("h-new", NULL), now);
    ledger_verify(lg);
    assert_int_equal(stub.n, 1);
    assert_string_equal(stub.suffix[0], "hold:h-new");
    answer_all(NULL);
    ledger_free(lg);

    /* A reference retention shorter than the margin: a closed record may be deleted on
     * purpose at any time, so nothing is kept to be checked. */
    cfg.reference_retention_ms = 10 * 1000;
    lg = ledger_new(&d);
    ledger_note(lg, result("h-short", NULL), now);
    ledger_verify(lg);
    assert_int_equal(stub.n, 1);
    ledger_free(lg);
}

static void test_bounded(void **state)
{
    (void)state;
    struct ledger *lg = ledger_new(&d);
    int64_t now = clock_mono_ms();
    char id[32];
    for (unsigned i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "h%08u", i);
        ledger_note(lg, result(id, NULL), now);
    }
    ledger_verify(lg);
    /* At most 64 questions at a time; the ring keeps the newest 16384. */
    assert_int_equal(stub.n, 64);
    answer_all(NULL);
    assert_int_equal(stub.n, 16384);
    assert_false(asked("hold:h00000000"));
    assert_false(asked("hold:h00003615"));
    assert_true(asked("hold:h00003616"));
    assert_true(asked("hold:h00019999"));
    assert_int_equal(d.metrics.acked_checked, 16384);
    ledger_free(lg);
}

static void test_interrupted(void **state)
{
    (void)state;
    struct ledger *lg = ledger_new(&d);
    int64_t now = clock_mono_ms();
    char id[32];
    for (unsigned i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "h%03u", i);
        ledger_note(lg, result(id, NULL), now);
    }
    ledger_verify(lg);
    ledger_verify(lg); /* a second reconnect while the first check runs: one more check later */
    answer(1);         /* one more question goes out: 65 */
    answer(-1);        /* the link is lost: no more go out */
    while (stub.answered < 65)
        answer(-1);
    /* The first check has ended; the one asked for meanwhile starts, from the beginning. */
    assert_int_equal(stub.n, 65 + 64);
    answer_all(NULL);
    assert_int_equal(stub.n, 65 + 100);
    assert_int_equal(d.metrics.acked_missing, 0);

    /* A store that is not ready: nothing is asked, and the ids stay for the next time. */
    stub.ready = false;
    unsigned n = stub.n;
    ledger_verify(lg);
    assert_int_equal(stub.n, n);
    stub.ready = true;
    ledger_verify(lg);
    answer_all(NULL);
    assert_int_equal(stub.n, n + 100);
    ledger_free(lg);
}

static void test_freed_while_checking(void **state)
{
    (void)state;
    struct ledger *lg = ledger_new(&d);
    ledger_note(lg, result("h1", "p1"), clock_mono_ms());
    ledger_verify(lg);
    ledger_free(lg);
    answer_all(NULL); /* the store answers after the ledger has gone: nothing breaks */
    assert_int_equal(d.metrics.acked_checked, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ids_from_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_counted_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freed_while_checking, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
