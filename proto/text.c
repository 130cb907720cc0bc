/*
 * Text checks: UTF-8, and the privacy guards that keep personal identity numbers and street
 * addresses out of Fristad. A social worker in a hurry may paste a personnummer into the
 * referral field or an address into a decline reason; the protocol refuses both so that they
 * are never stored, logged or forwarded.
 */
#include <ctype.h>
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

static bool is_sep(char c)
{
    return c == '-' || c == '+' || c == ' ';
}

/*
 * Tries to read a personal number starting at s[i]: `head` digits (6 or 8), an optional
 * separator, then 4 digits, with no digit directly after. Fills the 10-digit form.
 */
static bool pin_at(const char *s, size_t n, size_t i, unsigned head, char out[10])
{
    size_t j = i;
    char digits[12];
    unsigned k = 0;
    for (unsigned h = 0; h < head; h++, j++) {
        if (j >= n || !is_digit(s[j]))
            return false;
        digits[k++] = s[j];
    }
    if (j < n && is_sep(s[j]))
        j++;
    for (unsigned t = 0; t < 4; t++, j++) {
        if (j >= n || !is_digit(s[j]))
            return false;
        digits[k++] = s[j];
    }
    if (j < n && is_digit(s[j]))
        return false; /* part of a longer run of digits */
    if (head == 8) {
        unsigned century = (unsigned)(digits[0] - '0') * 10 + (unsigned)(digits[1] - '0');
        if (century < 18 || century > 20)
            return false;
        memcpy(out, digits + 2, 10);
    } else {
        memcpy(out, digits, 10);
    }
    return true;
}

bool proto_has_personal_number(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]) || (i > 0 && is_digit(s[i - 1])))
            continue;
        char d[10];
        if (pin_at(s, n, i, 8, d) && plausible_pin(d))
            return true;
        if (pin_at(s, n, i, 6, d) && plausible_pin(d))
            return true;
    }
    return false;
}

/* Word endings of Swedish (and a few English) street names, lower case UTF-8. */
static const char *const street_suffixes[] = {
    "gatan",          "gata",   "v\xc3\xa4gen", "v\xc3\xa4g",   "gr\xc3\xa4nd",
    "gr\xc3\xa4nden", "stigen", "all\xc3\xa9",  "all\xc3\xa9n", "torget",
    "torg",           "backe",  "backen",       "leden",        "str\xc3\xa5ket",
    "kajen",          "street", "road",         "avenue",       "lane",
};

static bool ends_with_street(const char *w, size_t len)
{
    char low[64];
    if (len == 0 || len >= sizeof low)
        return false;
    for (size_t i = 0; i < len; i++)
        low[i] = (char)tolower((unsigned char)w[i]);
    /* Upper-case Ä, Å, É in the common words: map C3 84/85/89 to C3 A4/A5/A9. */
    for (size_t i = 0; i + 1 < len; i++) {
        if ((unsigned char)low[i] == 0xc3 && ((unsigned char)low[i + 1] & 0xe0) == 0x80)
            low[i + 1] = (char)((unsigned char)low[i + 1] | 0x20);
    }
    for (size_t k = 0; k < sizeof street_suffixes / sizeof street_suffixes[0]; k++) {
        size_t sl = strlen(street_suffixes[k]);
        if (len >= sl && memcmp(low + len - sl, street_suffixes[k], sl) == 0)
            return true;
    }
    return len == 3 && memcmp(low, "box", 3) == 0;
}

/* A house number: 1-4 digits, optionally one letter, then the end of the word. */
static bool house_number(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && i < 5 && is_digit(s[i]))
        i++;
    if (i == 0 || i > 4)
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

bool proto_has_street_address(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        size_t start = i;
        while (i < n && s[i] != ' ' && s[i] != '\t')
            i++;
        size_t wlen = i - start;
        while (wlen > 0 && (s[start + wlen - 1] == ',' || s[start + wlen - 1] == '.'))
            wlen--;
        if (wlen > 0 && ends_with_street(s + start, wlen)) {
            size_t j = i;
            while (j < n && s[j] == ' ')
                j++;
            if (j < n && house_number(s + j, n - j))
                return true;
        }
        if (wlen > 0 && postal_code_then_place(s, n, start))
            return true;
    }
    return false;
}
