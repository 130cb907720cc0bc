/*
 * Text checks: UTF-8, and the privacy guards that keep personal identity numbers and street
 * addresses out of Fristad. A social worker in a hurry may paste a personnummer into the
 * referral field or an address into a decline reason; the protocol refuses both so that they
 * are never stored, logged or forwarded.
 *
 * Both checks look at a normalised copy of the text, because the guards are there for the one
 * who writes the number or address in a way the patterns did not foresee: Unicode dashes, the
 * many spaces (no-break, thin, ideographic), full-width and other scripts' digits are mapped to
 * their plain forms, and invisible characters (soft hyphen, zero-width space and joiners) are
 * dropped. What is refused is then any Swedish personal identity number whose digits stand in
 * groups joined by short runs of separators (`-` `+` `.` `_` `/` `:` and space), and the common
 * shapes of a Swedish or English postal address.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "proto_internal.h"

size_t proto_utf8_next(const char *str, size_t n, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned len;
    uint32_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2;
        c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (unsigned k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[k] & 0x3fu);
    }
    if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000))
        return 0; /* overlong */
    if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

bool proto_utf8_valid(const char *s, size_t n, size_t *chars)
{
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = proto_utf8_next(s + i, n - i, &cp);
        if (len == 0)
            return false;
        if ((cp < 0x20 && cp != '\t') || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
            return false; /* C0 and C1 controls */
        if (cp == 0x2028 || cp == 0x2029 || cp == 0xfeff)
            return false; /* line separators and BOM have no place in a field */
        i += len;
        count++;
    }
    if (chars)
        *chars = count;
    return true;
}

/* ---- normalisation ---------------------------------------------------------------------- */

/* The zero of every run of ten decimal digits (Unicode category Nd, Unicode 14) above ASCII. */
static const uint32_t digit_zeros[] = {
    0x660,   0x6f0,   0x7c0,   0x966,   0x9e6,   0xa66,   0xae6,   0xb66,   0xbe6,   0xc66,
    0xce6,   0xd66,   0xde6,   0xe50,   0xed0,   0xf20,   0x1040,  0x1090,  0x17e0,  0x1810,
    0x1946,  0x19d0,  0x1a80,  0x1a90,  0x1b50,  0x1bb0,  0x1c40,  0x1c50,  0xa620,  0xa8d0,
    0xa900,  0xa9d0,  0xa9f0,  0xaa50,  0xabf0,  0xff10,  0x104a0, 0x10d30, 0x11066, 0x110f0,
    0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950,
    0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec,
    0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
};

#define INVISIBLE 1 /* plain_form: a character nobody sees (soft hyphen, zero-width space) */

/*
 * The plain character a code point stands for in the privacy checks: an ASCII character,
 * INVISIBLE, or -1 to keep it as it is.
 */
static int plain_form(uint32_t cp)
{
    if (cp == '\t')
        return ' ';
    if (cp < 0x80)
        return (int)cp;
    for (size_t i = 0; i < sizeof digit_zeros / sizeof digit_zeros[0]; i++) {
        if (cp >= digit_zeros[i] && cp < digit_zeros[i] + 10)
            return '0' + (int)(cp - digit_zeros[i]);
    }
    if (cp >= 0xff01 && cp <= 0xff5e) /* full-width ASCII */
        return (int)(cp - 0xfee0);
    if (cp >= 0x2080 && cp <= 0x2089) /* subscript digits */
        return '0' + (int)(cp - 0x2080);
    if (cp == 0x2070 || (cp >= 0x2074 && cp <= 0x2079)) /* superscript digits */
        return '0' + (int)(cp - 0x2070);
    if (cp == 0xb9)
        return '1';
    if (cp == 0xb2 || cp == 0xb3)
        return '0' + (int)(cp - 0xb0);
    if ((cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212 || cp == 0x2043 || cp == 0xfe58 ||
        cp == 0xfe63 || cp == 0x2e3a || cp == 0x2e3b || cp == 0x2796 || cp == 0x2011)
        return '-';
    if (cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x202f ||
        cp == 0x205f || cp == 0x3000)
        return ' ';
    if (cp == 0xad || cp == 0x34f || cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) ||
        (cp >= 0x2060 && cp <= 0x2064) || cp == 0xfeff || (cp >= 0xfe00 && cp <= 0xfe0f))
        return INVISIBLE;
    if (cp == 0x2044 || cp == 0x2215 || cp == 0x29f8)
        return '/';
    if (cp == 0x2236 || cp == 0xa789 || cp == 0xfe55 || cp == 0xfe13)
        return ':';
    if (cp == 0x2024 || cp == 0xfe52 || cp == 0xb7 || cp == 0x2027)
        return '.';
    if (cp == 0xfe4d || cp == 0xfe4e || cp == 0xfe4f)
        return '_';
    if (cp == 0xfe62)
        return '+';
    return -1;
}

/*
 * Copies s to out (room for n bytes: nothing grows) with every code point in its plain form;
 * bytes that are not valid UTF-8 are copied as they are. An invisible character becomes
 * `invisible` (0: dropped), and *had_invisible says whether there was one. Returns the length
 * written.
 */
static size_t normalise(const char *s, size_t n, char *out, char invisible, bool *had_invisible)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = proto_utf8_next(s + i, n - i, &cp);
        if (len == 0) {
            out[o++] = s[i++];
            continue;
        }
        int p = plain_form(cp);
        if (p < 0) {
            memcpy(out + o, s + i, len);
            o += len;
        } else if (p == INVISIBLE) {
            *had_invisible = true;
            if (invisible)
                out[o++] = invisible;
        } else {
            out[o++] = (char)p;
        }
        i += len;
    }
    return o;
}

/*
 * Runs check() on the normalised text: with invisible characters dropped ("Storga<ZWSP>tan"
 * is Storgatan), and when there were any, again with each one a space ("Storgatan<ZWSP>12" is
 * two words). A text of a protocol field is at most a few hundred bytes and is normalised on
 * the stack; a longer one (a third party's call) on the heap, and when that fails the text is
 * treated as holding personal data: a guard fails closed.
 */
static bool on_plain(const char *s, size_t n, bool (*check)(const char *, size_t))
{
    char stack[1024] = {0};
    char *buf = n <= sizeof stack ? stack : malloc(n);
    if (!buf)
        return true;
    bool invisible = false;
    bool found = check(buf, normalise(s, n, buf, 0, &invisible));
    if (!found && invisible)
        found = check(buf, normalise(s, n, buf, ' ', &invisible));
    if (buf != stack)
        free(buf);
    return found;
}

/* ---- personal identity numbers ---------------------------------------------------------- */

static bool luhn10(const char d[10])
{
    unsigned sum = 0;
    for (unsigned i = 0; i < 10; i++) {
        unsigned v = (unsigned)(d[i] - '0');
        if (i % 2 == 0) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

/* d holds YYMMDDNNNC. Day 61..91 is a samordningsnummer (coordination number). */
static bool plausible_pin(const char d[10])
{
    unsigned month = (unsigned)(d[2] - '0') * 10 + (unsigned)(d[3] - '0');
    unsigned day = (unsigned)(d[4] - '0') * 10 + (unsigned)(d[5] - '0');
    if (month < 1 || month > 12)
        return false;
    if (!((day >= 1 && day <= 31) || (day >= 61 && day <= 91)))
        return false;
    return luhn10(d);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* What may stand between the digit groups of one number: "811218-9876", "19 81 12 18.9876". */
static bool is_pin_sep(char c)
{
    return c == '-' || c == '+' || c == ' ' || c == '.' || c == '_' || c == '/' || c == ':';
}

#define PIN_SEP_RUN 3

static unsigned two_digits(const char *p)
{
    return (unsigned)(p[0] - '0') * 10 + (unsigned)(p[1] - '0');
}

/*
 * A date and a time ("2026-11-30 08:00") has twelve digits in groups too, and one in ten
 * passes the check. A number whose last four digits are written as a clock time, "HH:MM" in
 * two groups of two, is taken for a time: the group s[group..end) and the one before it.
 */
static bool clock_time_at_end(const char *s, size_t group, size_t end)
{
    return end - group == 2 && group >= 3 && s[group - 1] == ':' && is_digit(s[group - 2]) &&
           is_digit(s[group - 3]) && (group < 4 || !is_digit(s[group - 4])) &&
           two_digits(s + group - 3) <= 23 && two_digits(s + group) <= 59;
} /* "811218 - 9876": a separator with a space on either side */

/*
 * The digits of a number may be written in groups: "811218-9876", "19 81 12 18-9876",
 * "811218_9876". From the group that starts at s[i], collects the digits of this and the
 * following groups of the same chain (groups joined by at most PIN_SEP_RUN separators), and at
 * every group end where exactly 10, or 12 with a century of 18-20, have been collected, tests
 * them. A window always starts and ends at a group boundary, so "18112189876" (11 digits in one
 * group) is a plain number, and "12 8112189876" holds one.
 */
static bool pin_from(const char *s, size_t n, size_t i)
{
    char d[12];
    unsigned k = 0;
    size_t j = i;
    for (;;) {
        size_t group = j;
        while (j < n && is_digit(s[j])) {
            if (k == sizeof d)
                return false;
            d[k++] = s[j++];
        }
        if ((k == 10 || k == 12) && clock_time_at_end(s, group, j))
            return false;
        if (k == 10 && plausible_pin(d))
            return true;
        if (k == 12) {
            unsigned century = (unsigned)(d[0] - '0') * 10 + (unsigned)(d[1] - '0');
            return century >= 18 && century <= 20 && plausible_pin(d + 2);
        }
        size_t sep = 0;
        while (j + sep < n && sep <= PIN_SEP_RUN && is_pin_sep(s[j + sep]))
            sep++;
        if (sep == 0 || sep > PIN_SEP_RUN || j + sep >= n || !is_digit(s[j + sep]))
            return false;
        j += sep;
    }
}

static bool has_pin_plain(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (is_digit(s[i]) && (i == 0 || !is_digit(s[i - 1])) && pin_from(s, n, i))
            return true;
    }
    return false;
}

bool proto_has_personal_number(const char *s, size_t n)
{
    return on_plain(s, n, has_pin_plain);
}

/* ---- street addresses ------------------------------------------------------------------- */

/* A word of the text: the bytes between spaces, and its core without the punctuation that
 * may cling to it ("(Storgatan", "12,", "Stockholm)"). */
struct word {
    const char *p; /* the whole word */
    size_t len;
    const char *core;
    size_t core_len;
};

static bool clings_before(char c)
{
    return c == '(' || c == '[' || c == '"' || c == '\'' || c == '<';
}

static bool clings_after(char c)
{
    return c == ',' || c == '.' || c == ';' || c == ':' || c == ')' || c == ']' || c == '"' ||
           c == '\'' || c == '!' || c == '?' || c == '>';
}

/* The next word at or after *pos; false at the end of the text. */
static bool next_word(const char *s, size_t n, size_t *pos, struct word *w)
{
    size_t i = *pos;
    while (i < n && s[i] == ' ')
        i++;
    if (i >= n)
        return false;
    size_t start = i;
    while (i < n && s[i] != ' ')
        i++;
    *pos = i;
    w->p = s + start;
    w->len = i - start;
    w->core = w->p;
    w->core_len = w->len;
    while (w->core_len > 0 && clings_before(w->core[0])) {
        w->core++;
        w->core_len--;
    }
    while (w->core_len > 0 && clings_after(w->core[w->core_len - 1]))
        w->core_len--;
    return true;
}

/* Lower-cases ASCII and the Swedish capitals Å, Ä, Ö and É (C3 85/84/96/89) into out. */
static bool lower_word(const char *w, size_t len, char *out, size_t cap)
{
    if (len == 0 || len >= cap)
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)w[i]);
    for (size_t i = 0; i + 1 < len; i++) {
        if ((unsigned char)out[i] == 0xc3 && ((unsigned char)out[i + 1] & 0xe0) == 0x80)
            out[i + 1] = (char)((unsigned char)out[i + 1] | 0x20);
    }
    out[len] = '\0';
    return true;
}

static bool word_is(const struct word *w, const char *const *choices)
{
    char low[32];
    if (!lower_word(w->core, w->core_len, low, sizeof low))
        return false;
    for (; *choices; choices++) {
        if (strcmp(low, *choices) == 0)
            return true;
    }
    return false;
}

/*
 * Word endings of Swedish and English street names, lower case UTF-8. `bare`: the ending is a
 * street name by itself too ("Torget 2"); otherwise only as the end of a longer word, because
 * alone it is an everyday word ("plan 3" is the third floor, "plats 2" a place for two).
 */
static const struct {
    const char *suffix;
    bool bare;
} street_suffixes[] = {
    {"gatan", true},       {"gata", true},         {"v\xc3\xa4gen", true},
    {"v\xc3\xa4g", true},  {"gr\xc3\xa4nd", true}, {"gr\xc3\xa4nden", true},
    {"stigen", true},      {"all\xc3\xa9", true},  {"all\xc3\xa9n", true},
    {"torget", true},      {"torg", true},         {"backe", true},
    {"backen", true},      {"leden", true},        {"str\xc3\xa5ket", true},
    {"kajen", true},       {"esplanad", true},     {"esplanaden", true},
    {"plan", false},       {"platsen", false},     {"plats", false},
    {"promenaden", false}, {"stranden", false},    {"slingan", false},
    {"street", true},      {"road", true},         {"avenue", true},
    {"lane", true},        {"boulevard", true},
};

static bool street_word(const struct word *w)
{
    char low[64];
    if (!lower_word(w->core, w->core_len, low, sizeof low))
        return false;
    size_t len = w->core_len;
    for (size_t k = 0; k < sizeof street_suffixes / sizeof street_suffixes[0]; k++) {
        size_t sl = strlen(street_suffixes[k].suffix);
        if (len >= sl && memcmp(low + len - sl, street_suffixes[k].suffix, sl) == 0 &&
            (len > sl || street_suffixes[k].bare))
            return true;
    }
    return false;
}

static bool is_alpha_ascii(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A letter, ASCII or the start of a two-byte UTF-8 letter such as å, ä, ö. */
static bool letter_at(const char *w, size_t len, size_t i)
{
    return i < len && (is_alpha_ascii(w[i]) || (unsigned char)w[i] == 0xc3);
}

/*
 * A street name written short: "Kungsg. 12", "Drottningg 3", "Ringv 5", "Kungsgt 12". At least
 * three letters, then g. or v. (or gt, vg); without the dot only a capitalised word.
 */
static bool street_abbreviation(const struct word *w)
{
    const char *p = w->core;
    size_t len = w->core_len;
    if (len > 0 && len < w->len && p[len] == '.')
        len++; /* the dot of the abbreviation, taken for clinging punctuation */
    size_t letters = 0;
    while (letters < len && (is_alpha_ascii(p[letters]) || (unsigned char)p[letters] >= 0x80))
        letters++;
    if (letters < 4)
        return false;
    const char *end = p + letters;
    size_t rest = len - letters;
    char last = (char)tolower((unsigned char)end[-1]);
    char before = (char)tolower((unsigned char)end[-2]);
    if (rest == 1 && end[0] == '.' && (last == 'g' || last == 'v'))
        return true; /* Kungsg. Ringv. */
    if (rest <= 1 && (rest == 0 || end[0] == '.') &&
        ((before == 'g' && last == 't') || (before == 'v' && last == 'g')))
        return true; /* Kungsgt, Kungsgt. Ringvg */
    return rest == 0 && last == 'v' && isupper((unsigned char)p[0]) && letters >= 5; /* Ringv */
}

/* A house number: 1-4 digits, optionally one letter, then the end of the word or a mark. */
static bool house_number(const char *s, size_t n)
{
    size_t i = 0;
    if (n > 0 && s[0] == '#')
        i++;
    size_t d0 = i;
    while (i < n && i - d0 < 5 && is_digit(s[i]))
        i++;
    if (i == d0 || i - d0 > 4)
        return false;
    if (i < n && isalpha((unsigned char)s[i]))
        i++;
    return i == n || !isalnum((unsigned char)s[i]);
}

static bool postal_code_then_place(const char *s, size_t n, size_t i)
{
    /* "12345 Ort" or "123 45 Ort": first digit 1-9, not inside a longer run of digits. */
    if (i > 0 && is_digit(s[i - 1]))
        return false;
    if (n - i < 5 || s[i] < '1' || s[i] > '9')
        return false;
    size_t j = i;
    for (unsigned k = 0; k < 3; k++, j++) {
        if (j >= n || !is_digit(s[j]))
            return false;
    }
    if (j < n && s[j] == ' ')
        j++;
    for (unsigned k = 0; k < 2; k++, j++) {
        if (j >= n || !is_digit(s[j]))
            return false;
    }
    if (j >= n || s[j] != ' ')
        return false;
    j++;
    return j < n && (isupper((unsigned char)s[j]) || (unsigned char)s[j] == 0xc3);
}

static const char *const number_words[] = {"nr", "no", "n:o", "nummer", "number", NULL};

/* The word after a street name is its number, perhaps after "nr": "Storgatan nr 12". */
static bool followed_by_number(const char *s, size_t n, size_t pos)
{
    struct word w;
    if (!next_word(s, n, &pos, &w))
        return false;
    if (word_is(&w, number_words) && !next_word(s, n, &pos, &w))
        return false;
    return house_number(w.core, w.core_len);
}

static bool apartment_number(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_digit(s[i]))
        i++;
    return i == 4 && (i == n || !isalnum((unsigned char)s[i]));
}

static const char *const apartment_words[] = {"lgh", "l\xc3\xa4genhetsnummer", "l\xc3\xa4gnr",
                                              "l\xc3\xa4genhetsnr", NULL};

/* "Lgh 1102", "lgh. nr 1102", "lgh1102": a Swedish apartment number has four digits. */
static bool apartment(const struct word *w, const char *s, size_t n, size_t pos)
{
    char low[8];
    if (w->core_len == 7 && lower_word(w->core, 3, low, sizeof low) && strcmp(low, "lgh") == 0 &&
        apartment_number(w->core + 3, 4))
        return true;
    if (!word_is(w, apartment_words))
        return false;
    struct word nx;
    if (!next_word(s, n, &pos, &nx))
        return false;
    if (word_is(&nx, number_words) && !next_word(s, n, &pos, &nx))
        return false;
    return apartment_number(nx.core, nx.core_len);
}

static const char *const english_streets[] = {"street", "road",      "avenue", "lane",
                                              "drive",  "boulevard", "terrace"};

/* "12 Main Street": the English order, a number and then up to three words of the name. */
static bool number_then_street(const char *s, size_t n, size_t pos)
{
    struct word w;
    for (unsigned k = 0; k < 3 && next_word(s, n, &pos, &w); k++) {
        char low[32];
        if (!lower_word(w.core, w.core_len, low, sizeof low))
            return false;
        for (size_t i = 0; i < sizeof english_streets / sizeof english_streets[0]; i++) {
            size_t sl = strlen(english_streets[i]);
            if (w.core_len >= sl && strcmp(low + w.core_len - sl, english_streets[i]) == 0)
                return true;
        }
        for (size_t i = 0; i < w.core_len; i++) {
            if (!letter_at(w.core, w.core_len, i) && (unsigned char)w.core[i] < 0x80)
                return false;
        }
    }
    return false;
}

static const char *const box_words[] = {"box", NULL};

/* "Storgatan12", "Kungsg.12": the name and the number written without a space. */
static bool glued_street_number(const struct word *w)
{
    size_t i = 0;
    while (i < w->core_len && !is_digit(w->core[i]))
        i++;
    if (i == 0 || i == w->core_len || !house_number(w->core + i, w->core_len - i))
        return false;
    struct word name = {w->core, i, w->core, i};
    while (name.core_len > 0 && clings_after(name.core[name.core_len - 1]))
        name.core_len--;
    return street_word(&name) || street_abbreviation(&name);
}

static bool has_address_plain(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (postal_code_then_place(s, n, i))
            return true;
    }
    size_t pos = 0;
    struct word w;
    while (next_word(s, n, &pos, &w)) {
        char low[4];
        if (w.core_len >= 3 && lower_word(w.core, 3, low, sizeof low) && strcmp(low, "c/o") == 0)
            return true;
        if ((street_word(&w) || street_abbreviation(&w) || word_is(&w, box_words)) &&
            followed_by_number(s, n, pos))
            return true;
        if (apartment(&w, s, n, pos) || glued_street_number(&w))
            return true;
        if (w.core_len == w.len && house_number(w.core, w.core_len) &&
            number_then_street(s, n, pos))
            return true;
    }
    return false;
}

bool proto_has_street_address(const char *s, size_t n)
{
    return on_plain(s, n, has_address_plain);
}
