/*
 * The client's places: every municipality and county found by its code and by its own name,
 * whatever the case or accents; a name that could be two places refused with both; a unique
 * start of a name enough; the nearest names offered for a typo.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "places.h"

static int muni(const char *text)
{
    char why[512];
    return places_municipality(text, why, sizeof why);
}

static const char *code_of(const char *text)
{
    int i = muni(text);
    return i < 0 ? "none" : places_municipalities[i].code;
}

static const char *why_not(const char *text)
{
    static char why[512];
    assert_true(places_municipality(text, why, sizeof why) < 0);
    return why;
}

static void test_every_place_by_code_and_name(void **state)
{
    (void)state;
    for (unsigned i = 0; i < PROTO_MUNICIPALITIES; i++) {
        const struct places_municipality *m = &places_municipalities[i];
        assert_int_equal(muni(m->code), (int)i);
        assert_non_null(places_county_by_code(m->county));
        assert_ptr_equal(places_municipality_by_code(m->code), m);
        /* Habo is Håbo without its ring: by name it could be either, so only its code is it. */
        if (strcmp(m->code, "0643") == 0) {
            assert_true(muni(m->name) < 0);
            continue;
        }
        if (muni(m->name) != (int)i)
            fail_msg("%s (%s) is not found by its name", m->name, m->code);
    }
    for (unsigned i = 0; i < PROTO_COUNTIES; i++) {
        char why[256];
        const struct places_county *c = &places_counties[i];
        assert_int_equal(places_county(c->code, why, sizeof why), (int)i);
        if (places_county(c->name, why, sizeof why) != (int)i)
            fail_msg("%s is not found by its name: %s", c->name, why);
    }
}

static void test_case_accents_and_spelling(void **state)
{
    (void)state;
    assert_string_equal(code_of("stockholm"), "0180");
    assert_string_equal(code_of("  STOCKHOLM "), "0180");
    assert_string_equal(code_of("Stockholms kommun"), "0180");
    assert_string_equal(code_of("Malmo"), "1280");
    assert_string_equal(code_of("MALMÖ"), "1280");
    assert_string_equal(code_of("goteborg"), "1480");
    assert_string_equal(code_of("malung salen"), "2023");
    assert_string_equal(code_of("Malung-Sälen"), "2023");
    assert_string_equal(code_of("upplands bro"), "0139");
    assert_string_equal(code_of("Örebro"), "1880");
    assert_string_equal(code_of("orebro"), "1880");
    char why[256];
    int c = places_county("Västra Götaland", why, sizeof why);
    assert_true(c >= 0);
    assert_string_equal(places_counties[c].code, "14");
    c = places_county("vastra gotalands lan", why, sizeof why);
    assert_string_equal(places_counties[c].code, "14");
    c = places_county("Stockholm", why, sizeof why);
    assert_string_equal(places_counties[c].code, "01");
    c = places_county("skane", why, sizeof why);
    assert_string_equal(places_counties[c].code, "12");
}

static void test_ambiguous_names_and_starts(void **state)
{
    (void)state;
    const char *why = why_not("Habo");
    assert_non_null(strstr(why, "Habo (0643)"));
    assert_non_null(strstr(why, "Håbo (0305)"));
    assert_non_null(strstr(why_not("habo"), "Håbo (0305)"));
    assert_string_equal(code_of("Håbo"), "0305");
    assert_string_equal(code_of("HÅBO"), "0305");
    assert_string_equal(code_of("0643"), "0643");
    why = why_not("Upp");
    assert_non_null(strstr(why, "Uppsala (0380)"));
    assert_non_null(strstr(why, "Upplands Väsby (0114)"));
    assert_string_equal(code_of("Upplands-B"), "0139");
    assert_string_equal(code_of("Öckerö"), "1407");
    char cw[256];
    assert_true(places_county("Väster", cw, sizeof cw) < 0);
    assert_non_null(strstr(cw, "Västernorrlands län (22)"));
}

static void test_no_such_place(void **state)
{
    (void)state;
    assert_non_null(strstr(why_not("Stokholm"), "did you mean Stockholm (0180)?"));
    assert_non_null(strstr(why_not("0000"), "no municipality has the code 0000"));
    assert_non_null(strstr(why_not("Narnia"), "no municipality is called 'Narnia'"));
    assert_null(strstr(why_not("Narnia"), "did you mean"));
    assert_true(muni("") < 0);
    assert_true(muni("-") < 0);
    char long_text[600];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    assert_true(muni(long_text) < 0);
    assert_true(muni("\xff\xfe") < 0);
}

static void test_lookup_and_labels(void **state)
{
    (void)state;
    unsigned idx[PROTO_MUNICIPALITIES];
    assert_int_equal(places_lookup("habo", idx, PROTO_MUNICIPALITIES), 2);
    assert_string_equal(places_municipalities[idx[0]].code, "0305");
    assert_string_equal(places_municipalities[idx[1]].code, "0643");
    assert_int_equal(places_lookup("Skåne", idx, PROTO_MUNICIPALITIES), 33);
    assert_int_equal(places_lookup("Gotland", idx, PROTO_MUNICIPALITIES), 1);
    assert_int_equal(places_lookup("Narnia", idx, PROTO_MUNICIPALITIES), 0);
    char buf[64];
    assert_string_equal(places_municipality_label("0380", buf, sizeof buf), "Uppsala (0380)");
    assert_string_equal(places_municipality_label("9999", buf, sizeof buf), "9999");
    assert_string_equal(places_county_label("03", buf, sizeof buf), "Uppsala län (03)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_place_by_code_and_name),
        cmocka_unit_test(test_case_accents_and_spelling),
        cmocka_unit_test(test_ambiguous_names_and_starts),
        cmocka_unit_test(test_no_such_place),
        cmocka_unit_test(test_lookup_and_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
