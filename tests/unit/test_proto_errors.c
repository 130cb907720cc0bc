/*
 * Unit tests of proto/errors.c: error codes and their names, the names of the enumerations, and
 * the municipality and county reference data (conf/municipalities.csv).
 */
#include "proto_test.h"

/* ---- error codes and names ----------------------------------------------------------------- */

static void test_error_codes(void **state)
{
    (void)state;
    static const char *const want[PROTO_E__COUNT] = {
        [PROTO_OK] = "ok",
        [PROTO_E_BAD_FRAME] = "bad_frame",
        [PROTO_E_TOO_LARGE] = "too_large",
        [PROTO_E_BAD_REQUEST] = "bad_request",
        [PROTO_E_UNKNOWN_OP] = "unknown_op",
        [PROTO_E_UNAUTHORIZED] = "unauthorized",
        [PROTO_E_FORBIDDEN] = "forbidden",
        [PROTO_E_NOT_FOUND] = "not_found",
        [PROTO_E_CONFLICT] = "conflict",
        [PROTO_E_UNAVAILABLE] = "unavailable",
        [PROTO_E_INTERNAL] = "internal",
        [PROTO_E_RATE_LIMITED] = "rate_limited",
        [PROTO_E_PERSONAL_DATA] = "personal_data",
        [PROTO_E_OUTCOME_UNKNOWN] = "outcome_unknown",
        [PROTO_E_INELIGIBLE] = "ineligible",
        [PROTO_E_LIMIT_REACHED] = "limit_reached",
        [PROTO_E_GONE] = "gone",
    };
    for (unsigned e = 0; e < PROTO_E__COUNT; e++) {
        const char *s = proto_err_code((enum proto_err)e);
        assert_non_null(s);
        assert_string_equal(s, want[e]);
        assert_int_equal(proto_err_from_code(s, strlen(s)), e);
        /* A prefix, a longer string and one with a NUL inside are other codes. */
        assert_int_equal(proto_err_from_code(s, strlen(s) - 1), PROTO_E__COUNT);
        char longer[40];
        size_t len = strlen(s);
        assert_true(len + 2 <= sizeof longer);
        memcpy(longer, s, len);
        longer[len] = 'x';
        assert_int_equal(proto_err_from_code(longer, len + 1), PROTO_E__COUNT);
        assert_int_equal(proto_err_from_code(s, strlen(s) + 1), PROTO_E__COUNT);
    }
    assert_int_equal(proto_err_from_code("", 0), PROTO_E__COUNT);
    assert_int_equal(proto_err_from_code("BAD_FRAME", 9), PROTO_E__COUNT);
    assert_string_equal(proto_err_code(PROTO_E__COUNT), "internal");
    assert_string_equal(proto_err_code((enum proto_err)1000), "internal");

    struct proto_error err;
    memset(&err, 0, sizeof err);
    assert_int_equal(proto_fail(&err, PROTO_E_CONFLICT, "unit %s is %d", "r1", 7),
                     PROTO_E_CONFLICT);
    assert_int_equal(err.code, PROTO_E_CONFLICT);
    assert_string_equal(err.message, "unit r1 is 7");
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(proto_fail(&err, PROTO_E_INTERNAL, "%s", big), PROTO_E_INTERNAL);
    assert_int_equal(strlen(err.message), PROTO_MESSAGE_MAX - 1);
    assert_int_equal(proto_fail(NULL, PROTO_E_FORBIDDEN, "no %s", "err"), PROTO_E_FORBIDDEN);
}

static void test_enum_names(void **state)
{
    (void)state;
    static const char *const kinds[] = {"kvinnojour", "skyddat_boende", "kriscentrum", "other"};
    static const char *const groups[] = {"women", "men", "hbtqi", "youth"};
    static const char *const vacancies[] = {"free", "occupied", "closed"};
    static const char *const risks[] = {"low", "moderate", "high", "severe"};
    static const char *const roles[] = {"shelter", "social", "oncall", "admin"};
    assert_int_equal(KIND__COUNT, 4);
    assert_int_equal(GROUP__COUNT, 4);
    assert_int_equal(VAC__COUNT, 3);
    assert_int_equal(RISK__COUNT, 4);
    assert_int_equal(ROLE__COUNT, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(proto_kind_name((enum proto_kind)i), kinds[i]);
        assert_int_equal(proto_kind_parse(kinds[i], strlen(kinds[i])), i);
        assert_string_equal(proto_group_name((enum proto_group)i), groups[i]);
        assert_int_equal(proto_group_parse(groups[i], strlen(groups[i])), i);
        assert_string_equal(proto_risk_name((enum proto_risk)i), risks[i]);
        assert_int_equal(proto_risk_parse(risks[i], strlen(risks[i])), i);
        assert_string_equal(proto_role_name((enum proto_role)i), roles[i]);
        assert_int_equal(proto_role_parse(roles[i], strlen(roles[i])), i);
        /* Length counts: a prefix of a name is not the name. */
        assert_int_equal(proto_kind_parse(kinds[i], strlen(kinds[i]) - 1), -1);
        assert_int_equal(proto_group_parse(groups[i], strlen(groups[i]) - 1), -1);
        assert_int_equal(proto_risk_parse(risks[i], strlen(risks[i]) - 1), -1);
        assert_int_equal(proto_role_parse(roles[i], strlen(roles[i]) - 1), -1);
    }
    for (int i = 0; i < 3; i++) {
        assert_string_equal(proto_vacancy_name((enum proto_vacancy)i), vacancies[i]);
        assert_int_equal(proto_vacancy_parse(vacancies[i], strlen(vacancies[i])), i);
    }
    assert_int_equal(proto_vacancy_parse("FREE", 4), -1);
    assert_int_equal(proto_kind_parse("", 0), -1);
    assert_int_equal(proto_role_parse("admins", 6), -1);
    assert_int_equal(proto_group_parse("women\0", 6), -1);
    assert_string_equal(proto_kind_name(KIND__COUNT), "?");
    assert_string_equal(proto_group_name(GROUP__COUNT), "?");
    assert_string_equal(proto_vacancy_name(VAC__COUNT), "?");
    assert_string_equal(proto_risk_name(RISK__COUNT), "?");
    assert_string_equal(proto_role_name(ROLE__COUNT), "?");
    static const char *const declines[] = {"no_room", "household", "needs",
                                           "safety",  "staffing",  "other"};
    assert_int_equal(DECLINE__COUNT, 6);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(proto_decline_name((enum proto_decline)i), declines[i]);
        assert_int_equal(proto_decline_parse(declines[i], strlen(declines[i])), i);
        assert_non_null(strstr(proto_decline_choices(), declines[i]));
    }
    assert_int_equal(proto_decline_parse("room", 4), -1);
    assert_string_equal(proto_decline_name(DECLINE__COUNT), "?");
    static const char *const events[] = {
        "held",       "accepted", "declined", "released", "expired", "escalated", "confirmed",
        "discharged", "vacancy",  "paused",   "resumed",  "match",   "standing"};
    assert_int_equal(EV__COUNT, 13);
    for (int i = 0; i < EV__COUNT; i++) {
        assert_string_equal(proto_event_name((enum proto_event)i), events[i]);
        assert_int_equal(proto_event_parse(events[i], strlen(events[i])), i);
    }
    assert_int_equal(proto_event_parse("hold", 4), -1);
}

/* The names of Swedish practice as PROTOCOL.md section 4 spells them, and calendar dates. */
static void test_practice_names_and_dates(void **state)
{
    (void)state;
    static const char *const competences[] = {
        "hbv", "psychiatric", "npf", "intellectual_disability", "deaf", "interpreter"};
    static const char *const operators[] = {"ideell", "privat", "kommunal"};
    static const char *const bases[] = {"sol", "lag_2024_79", "lvu"};
    assert_int_equal(COMP__COUNT, 6);
    assert_int_equal(OPERATOR__COUNT, 3);
    assert_int_equal(BASIS__COUNT, 3);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(proto_competence_name((enum proto_competence)i), competences[i]);
        assert_int_equal(proto_competence_parse(competences[i], strlen(competences[i])), i);
        assert_int_equal(proto_competence_parse(competences[i], strlen(competences[i]) - 1), -1);
        assert_non_null(strstr(proto_competence_choices(), competences[i]));
    }
    for (int i = 0; i < 3; i++) {
        assert_string_equal(proto_operator_name((enum proto_operator)i), operators[i]);
        assert_int_equal(proto_operator_parse(operators[i], strlen(operators[i])), i);
        assert_non_null(strstr(proto_operator_choices(), operators[i]));
        assert_string_equal(proto_basis_name((enum proto_basis)i), bases[i]);
        assert_int_equal(proto_basis_parse(bases[i], strlen(bases[i])), i);
        assert_non_null(strstr(proto_basis_choices(), bases[i]));
    }
    assert_string_equal(proto_competence_name(COMP__COUNT), "?");
    assert_string_equal(proto_operator_name(OPERATOR__COUNT), "?");
    assert_string_equal(proto_basis_name(BASIS__COUNT), "?");
    assert_int_equal(proto_basis_parse("LVU", 3), -1);

    static const char *const good[] = {"2000-01-01", "2024-02-29", "2000-02-29", "2099-12-31",
                                       "2024-04-30"};
    static const char *const bad[] = {"1999-12-31", "2100-01-01", "2023-02-29", "2024-04-31",
                                      "2024-00-10", "2024-13-01", "2024-01-00", "2024-1-01",
                                      "2024/01/01", "20240101xx", "2024-01-0a", ""};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(proto_date_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (proto_date_valid(bad[i], strlen(bad[i])))
            fail_msg("'%s' is no date", bad[i]);
}

/* ---- reference data ------------------------------------------------------------------------ */

static void test_municipalities(void **state)
{
    (void)state;
    char *csv = read_file("conf/municipalities.csv", NULL);
    bool muni[10000] = {false}, county[100] = {false};
    bool idx_seen[PROTO_MUNICIPALITIES] = {false};
    unsigned rows = 0, counties = 0;
    char *save = NULL;
    char *line = strtok_r(csv, "\n", &save);
    assert_non_null(line);
    assert_memory_equal(line, "kommunkod,", 10);
    for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strlen(line) < 5 || line[4] != ',')
            fail_msg("conf/municipalities.csv: bad line '%s'", line);
        char code[5];
        memcpy(code, line, 4);
        code[4] = '\0';
        int idx = proto_municipality_index(code, 4);
        if (idx < 0)
            fail_msg("municipality %s refused", code);
        assert_true(idx < (int)PROTO_MUNICIPALITIES);
        assert_false(idx_seen[idx]);
        idx_seen[idx] = true;
        assert_string_equal(proto_municipality_code((unsigned)idx), code);
        muni[atoi(code)] = true;
        if (!county[atoi(code) / 100])
            counties++;
        county[atoi(code) / 100] = true;
        rows++;
    }
    assert_int_equal(rows, PROTO_MUNICIPALITIES);
    assert_int_equal(counties, PROTO_COUNTIES);
    assert_null(proto_municipality_code(PROTO_MUNICIPALITIES));
    /* Every four-digit string: known iff in the CSV. */
    for (unsigned i = 0; i < 10000; i++) {
        char code[5];
        snprintf(code, sizeof code, "%04u", i);
        if ((proto_municipality_index(code, 4) >= 0) != muni[i])
            fail_msg("municipality %s", code);
    }
    for (unsigned i = 0; i < 100; i++) {
        char code[3];
        snprintf(code, sizeof code, "%02u", i);
        if (proto_county_valid(code, 2) != county[i])
            fail_msg("county %s", code);
    }
    static const char *const bad_muni[] = {"018", "01800", "018a", " 180", "0180 ", "", "01 80"};
    for (size_t i = 0; i < sizeof bad_muni / sizeof bad_muni[0]; i++)
        assert_int_equal(proto_municipality_index(bad_muni[i], strlen(bad_muni[i])), -1);
    assert_int_equal(proto_municipality_index("01800", 4), proto_municipality_index("0180", 4));
    static const char *const bad_county[] = {"1", "011", "", "0", "a1", "1 "};
    for (size_t i = 0; i < sizeof bad_county / sizeof bad_county[0]; i++)
        assert_false(proto_county_valid(bad_county[i], strlen(bad_county[i])));
    assert_true(proto_county_valid("01", 2));
    assert_true(proto_county_valid("25", 2));
    free(csv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_enum_names),
        cmocka_unit_test(test_practice_names_and_dates),
        cmocka_unit_test(test_municipalities),
    };
    return cmocka_run_group_tests_name("proto_errors", tests, NULL, NULL);
}
