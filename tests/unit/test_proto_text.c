/*
 * Unit tests of proto/text.c: the privacy checks (personal identity and coordination numbers,
 * street addresses and postal codes) and UTF-8 validation.
 */
#include "proto_test.h"

/* ---- text checks --------------------------------------------------------------------------- */

static void make_pin(char out[11], unsigned yy, unsigned mm, unsigned dd, unsigned nnn)
{
    char nine[16];
    snprintf(nine, sizeof nine, "%02u%02u%02u%03u", yy, mm, dd, nnn);
    unsigned sum = 0;
    for (unsigned i = 0; i < 9; i++) {
        unsigned v = (unsigned)(nine[i] - '0') * (i % 2 == 0 ? 2 : 1);
        sum += v > 9 ? v - 9 : v;
    }
    memcpy(out, nine, 9);
    out[9] = (char)('0' + (10 - sum % 10) % 10);
    out[10] = '\0';
}

static bool has_pin(const char *s)
{
    /* Exact-size copy: the detector must not look past n. */
    size_t n = strlen(s);
    char *copy = (char *)dup_bytes(s, n);
    bool r = proto_has_personal_number(copy, n);
    free(copy);
    return r;
}

static void test_personal_number_dates(void **state)
{
    (void)state;
    char pin[11];
    for (unsigned mm = 0; mm < 100; mm++) {
        for (unsigned dd = 0; dd < 100; dd++) {
            make_pin(pin, 81, mm, dd, 987);
            bool plausible =
                mm >= 1 && mm <= 12 && ((dd >= 1 && dd <= 31) || (dd >= 61 && dd <= 91));
            if (has_pin(pin) != plausible)
                fail_msg("%s: month %u day %u", pin, mm, dd);
            if (!plausible)
                continue;
            /* Any other check digit makes it a plain number. */
            for (char c = '0'; c <= '9'; c++) {
                if (c == pin[9])
                    continue;
                char other[11];
                memcpy(other, pin, 11);
                other[9] = c;
                if (has_pin(other))
                    fail_msg("%s: a wrong check digit", other);
            }
        }
    }
}

static void test_personal_number_forms(void **state)
{
    (void)state;
    char pin[11], s[64];
    make_pin(pin, 81, 12, 18, 987);
    assert_string_equal(pin, "8112189876");
    const char *sep = "-+ ";
    for (const char *c = sep; *c; c++) {
        snprintf(s, sizeof s, "%.6s%c%s", pin, *c, pin + 6);
        if (!has_pin(s))
            fail_msg("'%s'", s);
    }
    for (unsigned century = 15; century <= 22; century++) {
        snprintf(s, sizeof s, "%u%s", century, pin);
        bool want = century >= 18 && century <= 20;
        if (has_pin(s) != want)
            fail_msg("'%s'", s);
        snprintf(s, sizeof s, "%u%.6s-%s", century, pin, pin + 6);
        if (has_pin(s) != want)
            fail_msg("'%s'", s);
    }
    static const struct {
        const char *s;
        bool want;
    } cases[] = {
        {"8112189876", true},
        {"Ring om 811218-9876 snarast", true},
        {"x8112189876y", true},
        {"ref:8112189876/a", true},
        {"811278-1235", true}, /* coordination number */
        {"19811218-9876", true},
        {"20811218-9876", true},
        {"18811218-9876", true},
        {"17811218-9876", false}, /* no century 17 */
        {"21811218-9876", false},
        {"8112189877", false},  /* check digit */
        {"18112189876", false}, /* 11 digits */
        {"81121898761", false},
        {"9198112189876", false}, /* 13 digits */
        {"1981121898761", false},
        /* Groups joined by short runs of separators, wherever the digits are split. */
        {"811218--9876", true},
        {"811218 - 9876", true},
        {"811218/9876", true},
        {"811218_9876", true},
        {"811218.9876", true},
        {"811218:9876", true},
        {"81121-89876", true},
        {"19 81 12 18-9876", true},
        {"8 1 1 2 1 8 9 8 7 6", true},
        {"811218 -- - 9876", false}, /* a run of four separators ends the number */
        {"811218,9876", false},      /* a comma lists numbers */
        {"811218 och 9876", false},
        /* Unicode forms of the same characters (UTF-8). */
        {"811218\xe2\x80\x93"
         "9876",
         true}, /* en dash */
        {"811218\xe2\x88\x92"
         "9876",
         true}, /* minus sign */
        {"811218\xc2\xa0"
         "9876",
         true}, /* no-break space */
        {"811218\xe2\x80\xaf"
         "9876",
         true}, /* narrow no-break space */
        {"811218\xc2\xad"
         "9876",
         true}, /* soft hyphen, invisible */
        {"811218\xe2\x80\x8b"
         "9876",
         true}, /* zero-width space */
        {"\xef\xbc\x98\xef\xbc\x91\xef\xbc\x91\xef\xbc\x92\xef\xbc\x91\xef\xbc\x98"
         "-\xef\xbc\x99\xef\xbc\x98\xef\xbc\x97\xef\xbc\x96",
         true}, /* full-width digits */
        {"\xd9\xa8\xd9\xa1\xd9\xa1\xd9\xa2\xd9\xa1\xd9\xa8\xd9\xa9\xd9\xa8\xd9\xa7\xd9\xa6",
         true}, /* Arabic-Indic digits */
        /* A date and a clock time is not a number, whatever its check digit. */
        {"2026-11-30 08:00", false},
        {"kan ta emot 2026-11-30 08:00", false},
        {"811218 98:76", true}, /* not a clock time */
        {"811218-987", false},
        {"811218", false},
        {"", false},
        {"no digits here", false},
        {"0000000000", false},
        {"12 8112189876", true},
        {"811218-9876811218-9876", false}, /* 6 digits, '-', 10 digits, '-', 4 digits */
        {"8112189876 och 1234", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (has_pin(cases[i].s) != cases[i].want)
            fail_msg("'%s': want %s", cases[i].s, cases[i].want ? "found" : "not found");
    /* The length is respected: the number is cut short by n. */
    assert_false(proto_has_personal_number("8112189876", 9));
    assert_true(proto_has_personal_number("8112189876", 10));
    assert_true(proto_has_personal_number("19811218-98761", 13));
}

static bool has_address(const char *s)
{
    size_t n = strlen(s);
    char *copy = (char *)dup_bytes(s, n);
    bool r = proto_has_street_address(copy, n);
    free(copy);
    return r;
}

static void test_street_address(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool want;
    } cases[] = {
        {"Storgatan 12", true},
        {"Bor p\xc3\xa5 Storgatan 12 sedan maj", true},
        {"STORGATAN 1", true},
        {"storgatan 1", true},
        {"V\xc3\xa4stra v\xc3\xa4gen 3", true},
        {"V\xc3\x84STRA V\xc3\x84GEN 3", true},
        {"\xc3\x84ngsgr\xc3\xa4nd 4B", true},
        {"Drottninggatan 71A, 2 tr", true},
        {"Storgatan, 12", true},
        {"Box 123", true},
        {"box 5", true},
        {"Stora torget 1", true},
        {"Sveav\xc3\xa4gen 1234", true},
        {"Kungsbacken 2", true},
        {"Ringleden 9", true},
        {"Abbey Road 3", true},
        {"123 45 Stockholm", true},
        {"12345 Malm\xc3\xb6", true},
        {"till 753 20 Uppsala", true},
        {"113 51 \xc3\x96rebro", true},
        {"rum 12", false},
        {"Rum 12, v\xc3\xa5ning 3", false},
        {"Storgatan", false},
        {"Storgatan tolv", false},
        {"Storgatan 12345", false},
        {"Storgatan x12", false},
        {"Boxen 12", false},
        {"Jour 24 timmar", false},
        {"123 45 stockholm", false},
        {"023 45 Stockholm", false},
        {"1234 56 Ort", false},
        {"123456 Ort", false},
        {"ring 123 45", false},
        /* Ways past the first version of the guard. */
        {"SE-123 45 Stockholm", true},
        {"(123 45 Stockholm)", true},
        {"Storgatan nr 12", true},
        {"Storgatan nr. 12B", true},
        {"Stureplan 4", true},
        {"Medborgarplatsen 3", true},
        {"Kungsg. 12", true},
        {"Drottningg 3", false}, /* a lower-case ending without a dot is too common a word */
        {"Kungsgt 12", true},
        {"Ringv 5", true},
        {"12 Main Street", true},
        {"at 221B Baker Street", true},
        {"c/o Andersson, Ringv 5", true},
        {"C/O Svensson", true},
        {"Lgh 1102", true},
        {"lgh. nr 1102", true},
        {"lgh1102", true},
        {"Storgatan\xc2\xa0"
         "12",
         true}, /* no-break space */
        {"Storgatan\xe2\x80\x8b"
         "12",
         true},                         /* zero-width space */
        {"Storga\xc2\xadtan 12", true}, /* soft hyphen inside the word */
        {"Storgatan12", true},
        {"Kungsg.12", true},
        {"\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93 45 Malm\xc3\xb6", true}, /* full-width */
        /* Everyday words that end like a street name. */
        {"plan 3", false},
        {"rummen p\xc3\xa5 plan 3 renoveras", false},
        {"plats 2 \xc3\xa4r upptagen", false},
        {"lgh 12 \xc3\xa4r ledig", false},
        {"3 st rum", false},
        {"week 12, no room for 3 children", false},
        {"M\xc3\xa5ndag 12 maj", false},
        {"", false},
        {"   ", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (has_address(cases[i].s) != cases[i].want)
            fail_msg("'%s': want %s", cases[i].s, cases[i].want ? "found" : "not found");
    assert_false(proto_has_street_address("Storgatan 12", 10));
    assert_true(proto_has_street_address("Storgatan 12", 12));
}

static bool utf8(const char *s, size_t n, size_t *chars)
{
    char *copy = (char *)dup_bytes(s, n);
    bool r = proto_utf8_valid(copy, n, chars);
    free(copy);
    return r;
}

static void test_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
        size_t chars;
    } good[] = {
        {"", 0, 0},
        {"abc", 3, 3},
        {"a\tb", 3, 3},
        {"\xc3\xa5\xc3\xa4\xc3\xb6", 6, 3},
        {"a\xc3\xa5\xe2\x82\xac\xf0\x9f\x98\x80", 10, 4},
        {"\xc2\xa0", 2, 1},         /* U+00A0, just past the C1 block */
        {"\xdf\xbf", 2, 1},         /* U+07FF */
        {"\xe0\xa0\x80", 3, 1},     /* U+0800 */
        {"\xef\xbf\xbd", 3, 1},     /* U+FFFD */
        {"\xf0\x90\x80\x80", 4, 1}, /* U+10000 */
        {"\xf4\x8f\xbf\xbf", 4, 1}, /* U+10FFFF */
        {"\xed\x9f\xbf", 3, 1},     /* U+D7FF */
        {"\xee\x80\x80", 3, 1},     /* U+E000 */
        {"~", 1, 1},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        size_t chars = 999;
        if (!utf8(good[i].s, good[i].n, &chars))
            fail_msg("good case %zu refused", i);
        assert_int_equal(chars, good[i].chars);
        assert_true(utf8(good[i].s, good[i].n, NULL));
    }
    static const struct {
        const char *s;
        size_t n;
    } bad[] = {
        {"\xc0\xaf", 2}, /* overlong '/' */
        {"\xc0\x80", 2}, /* overlong NUL */
        {"\xc1\xbf", 2},
        {"\xe0\x80\xaf", 3},
        {"\xe0\x9f\xbf", 3},
        {"\xf0\x80\x80\xaf", 4},
        {"\xf0\x8f\xbf\xbf", 4},
        {"\xed\xa0\x80", 3}, /* surrogates */
        {"\xed\xbf\xbf", 3},
        {"\xf4\x90\x80\x80", 4}, /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 4},
        {"\xf8\x88\x80\x80\x80", 5},
        {"\xfe", 1},
        {"\xff", 1},
        {"\x80", 1}, /* lone continuation */
        {"a\xbf", 2},
        {"\xc3", 1}, /* truncated at the end */
        {"\xe2\x82", 2},
        {"\xf0\x9f\x98", 3},
        {"\xc3"
         "a",
         2}, /* truncated in the middle */
        {"\xe2\x82"
         "a",
         3},
        {"\x00", 1},
        {"a\x01", 2},
        {"\n", 1},
        {"\r", 1},
        {"\x1f", 1},
        {"\x7f", 1},
        {"\xc2\x80", 2}, /* C1 controls */
        {"\xc2\x85", 2},
        {"\xc2\x9f", 2},
        {"\xe2\x80\xa8", 3}, /* line and paragraph separators, BOM */
        {"\xe2\x80\xa9", 3},
        {"\xef\xbb\xbf", 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (utf8(bad[i].s, bad[i].n, NULL))
            fail_msg("bad case %zu accepted", i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_personal_number_dates),
        cmocka_unit_test(test_personal_number_forms),
        cmocka_unit_test(test_street_address),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests_name("proto_text", tests, NULL, NULL);
}
