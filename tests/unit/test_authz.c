/*
 * The authorisation matrix. The expected table below is written out from proto/PROTOCOL.md
 * section 6, independently of daemon/authz.c, so a change to either shows up here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "authz.h"

/* S shelter, C social, O oncall, A admin; '-' refused. */
static const struct {
    enum proto_op op;
    const char *roles;
} expected[] = {
    {OP_SHELTER_ADD, "---A"},
    {OP_SHELTER_UPDATE, "---A"},
    {OP_SHELTER_RETIRE, "---A"},
    {OP_UNIT_ADD, "---A"},
    {OP_UNIT_UPDATE, "---A"},
    {OP_UNIT_REMOVE, "---A"},
    {OP_VACANCY_SET, "S---"},
    {OP_VACANCY_CONFIRM, "S---"},
    {OP_INTAKE_PAUSE, "S---"},
    {OP_INTAKE_RESUME, "S---"},
    {OP_SHELTER_SHOW, "SCOA"},
    {OP_SHELTER_LIST, "SCOA"},
    {OP_FREE, "SCOA"},
    {OP_SEARCH, "-COA"},
    {OP_HOLD, "-CO-"},
    {OP_HOLD_ACCEPT, "S---"},
    {OP_HOLD_RELEASE, "-CO-"},
    {OP_HOLD_CONFIRM, "S---"},
    {OP_HOLD_DECLINE, "S---"},
    {OP_PLACEMENT_DISCHARGE, "S---"},
    {OP_HOLDS_LIST, "SCO-"},
    {OP_PLACEMENTS_LIST, "SCO-"},
    {OP_AUDIT, "---A"},
    {OP_STATS, "---A"},
    {OP_WHOAMI, "SCOA"},
    {OP_WATCH, "SCOA"},
    {OP_STANDING_ADD, "-CO-"},
    {OP_STANDING_LIST, "-CO-"},
    {OP_STANDING_CANCEL, "-CO-"},
    {OP_FOLLOWUP, "-COA"},
    {OP_DIRECTORY, "---A"},
};

/* On-call "jour" acts for Stockholm (0180) and "jour-sthlm" for Stockholm county (01). */
static struct config cfg;

static void serve(struct config_oncall *o, const char *id, const char *prefix)
{
    strcpy(o->id, id);
    for (unsigned m = 0; m < PROTO_MUNICIPALITIES; m++) {
        if (strncmp(proto_municipality_code(m), prefix, strlen(prefix)) == 0)
            o->muns[m / 64] |= UINT64_C(1) << (m % 64);
    }
}

static int setup(void **state)
{
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    serve(&cfg.oncall[0], "jour", "0180");
    serve(&cfg.oncall[1], "jour-sthlm", "01");
    cfg.n_oncall = 2;
    return 0;
}

static void principal(struct principal *p, const char *role, const char *cn)
{
    authz_principal_set(p, role, cn);
    assert_true(p->valid);
}

static void test_matrix(void **state)
{
    (void)state;
    static const char *const roles[] = {"shelter", "social", "oncall", "admin"};
    static const char *const ids[] = {"frida", "0180", "jour", "ops"};
    assert_int_equal(sizeof expected / sizeof expected[0], OP__COUNT);
    for (size_t i = 0; i < OP__COUNT; i++) {
        for (unsigned r = 0; r < ROLE__COUNT; r++) {
            bool want = expected[i].roles[r] != '-';
            bool got = authz_allowed(expected[i].op, (enum proto_role)r, NULL);
            if (want != got)
                fail_msg("%s by %s: expected %s", proto_op_name(expected[i].op), roles[r],
                         want ? "allowed" : "refused");
            /* The same through authz_check, with arguments that satisfy every scope. */
            struct principal p;
            principal(&p, roles[r], ids[r]);
            struct proto_request req = {.id = 1, .has_id = true, .op = expected[i].op};
            strcpy(req.args.shelter, "frida");
            strcpy(req.args.home, "0180");
            struct proto_error err;
            enum proto_err e = authz_check(&p, &req, &cfg, &err);
            assert_int_equal(e, want ? PROTO_OK : PROTO_E_FORBIDDEN);
        }
    }
}

static void test_scopes(void **state)
{
    (void)state;
    struct principal shelter, social, oncall;
    struct proto_error err;
    principal(&shelter, "shelter", "frida");
    principal(&social, "social", "0180");
    principal(&oncall, "oncall", "jour-sthlm");

    struct proto_request req = {.id = 1, .has_id = true, .op = OP_VACANCY_SET};
    strcpy(req.args.shelter, "other");
    assert_int_equal(authz_check(&shelter, &req, &cfg, &err), PROTO_E_FORBIDDEN);
    assert_non_null(strstr(err.message, "own"));
    strcpy(req.args.shelter, "frida");
    assert_int_equal(authz_check(&shelter, &req, &cfg, &err), PROTO_OK);

    req.op = OP_INTAKE_PAUSE;
    strcpy(req.args.shelter, "frida2");
    assert_int_equal(authz_check(&shelter, &req, &cfg, &err), PROTO_E_FORBIDDEN);

    /* Social services hold for their own municipality only; on-call for those of its
     * agreement: the one it names, or else the household's home municipality. */
    req.op = OP_HOLD;
    req.args.present = PROTO_BIT(F_MUNICIPALITY);
    strcpy(req.args.municipality, "1480");
    strcpy(req.args.home, "0180");
    assert_int_equal(authz_check(&social, &req, &cfg, &err), PROTO_E_FORBIDDEN);
    assert_int_equal(authz_check(&oncall, &req, &cfg, &err), PROTO_E_FORBIDDEN);
    assert_non_null(strstr(err.message, "agreement"));
    strcpy(req.args.municipality, "0180");
    assert_int_equal(authz_check(&social, &req, &cfg, &err), PROTO_OK);
    assert_int_equal(authz_check(&oncall, &req, &cfg, &err), PROTO_OK);
    strcpy(req.args.municipality, "0114"); /* Upplands Väsby, county 01 */
    assert_int_equal(authz_check(&oncall, &req, &cfg, &err), PROTO_OK);
    req.args.present = 0;
    assert_int_equal(authz_check(&social, &req, &cfg, &err), PROTO_OK);
    assert_int_equal(authz_check(&oncall, &req, &cfg, &err), PROTO_OK); /* home 0180 */
    strcpy(req.args.home, "1280");
    assert_int_equal(authz_check(&oncall, &req, &cfg, &err), PROTO_E_FORBIDDEN);
    /* Not listed in [oncall]: acts for none; and with no configuration at all, neither. */
    struct principal stranger;
    principal(&stranger, "oncall", "jour-unlisted");
    strcpy(req.args.home, "0180");
    assert_int_equal(authz_check(&stranger, &req, &cfg, &err), PROTO_E_FORBIDDEN);
    assert_int_equal(authz_check(&oncall, &req, NULL, &err), PROTO_E_FORBIDDEN);
}

static void test_principals(void **state)
{
    (void)state;
    struct principal p;
    struct proto_request req = {.id = 1, .has_id = true, .op = OP_WHOAMI};
    struct proto_error err;
    static const struct {
        const char *role, *cn;
        bool valid;
    } cases[] = {
        {"shelter", "frida-sthlm", true},
        {"social", "0180", true},
        {"social", "0000", false}, /* not a municipality */
        {"social", "Stockholm", false},
        {"oncall", "socialjouren.sthlm", true},
        {"admin", "ops_anna", true},
        {"root", "x", false},  /* no such role */
        {"Admin", "x", false}, /* roles are lower case */
        {"shelter", "", false},
        {"shelter", "-leading", false},
        {"shelter", "has space", false},
        {"shelter", "a-shelter-id-that-is-far-too-long-to-be-one", false},
        {"oncall", "811218-9876", false}, /* shaped like a personal identity number */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        authz_principal_set(&p, cases[i].role, cases[i].cn);
        if (p.valid != cases[i].valid)
            fail_msg("%s:%s expected %s", cases[i].role, cases[i].cn,
                     cases[i].valid ? "valid" : "invalid");
        if (!p.valid) {
            assert_int_equal(authz_check(&p, &req, &cfg, &err), PROTO_E_UNAUTHORIZED);
            assert_true(strlen(err.message) > 10);
        }
    }
    authz_principal_set(&p, "social", "1480");
    assert_string_equal(p.name, "social:1480");
    assert_int_equal(p.role, ROLE_SOCIAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_principals),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
