/* Municipalities and counties by name or code (places.h). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "places.h"

#define FOLD_MAX   128 /* bytes of a folded name; longer input matches nothing */
#define NEAR_SHOWN 3   /* names offered when nothing matched */
#define CANDIDATES 8   /* candidates named when a name is ambiguous */

/*
 * Latin-1 letters without their accents, lower case, from U+00C0: "Å" and "å" are "a". A zero
 * keeps the character as it is (it then matches nothing in our names).
 */
static const char latin1_base[64] =
    "aaaaaaaceeeeiiiidnooooo\0ouuuuy\0saaaaaaaceeeeiiiidnooooo\0ouuuuy\0y";

/* Appends code point cp as UTF-8; false when it does not fit. */
static bool put_utf8(char *out, size_t cap, size_t *o, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    if (*o + n >= cap)
        return false;
    memcpy(out + *o, b, n);
    *o += n;
    return true;
}

/*
 * A name as compared: lower case, hyphens as spaces, runs of blanks as one and none at the
 * ends; with `accents` false, letters also lose their accents. Returns false when it does not
 * fit or is empty.
 */
static bool fold(const char *s, bool accents, char *out, size_t cap)
{
    size_t o = 0, n = strlen(s);
    bool space = true; /* drops leading blanks */
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = proto_utf8_next(s + i, n - i, &cp);
        i += len ? len : 1;
        if (len == 0)
            cp = '?';
        else if (cp >= 'A' && cp <= 'Z')
            cp += 'a' - 'A';
        else if (cp >= 0xc0 && cp <= 0xde && cp != 0xd7)
            cp += 0x20; /* Latin-1 capitals */
        if (!accents && cp >= 0xe0 && cp <= 0xff && latin1_base[cp - 0xc0])
            cp = (unsigned char)latin1_base[cp - 0xc0];
        if (cp == '-' || cp == '\t')
            cp = ' ';
        if (cp == ' ' && space)
            continue;
        space = cp == ' ';
        if (!put_utf8(out, cap, &o, cp))
            return false;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    return o > 0;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n > t && strcmp(s + n - t, tail) == 0;
}

static void cut(char *s, size_t n)
{
    s[strlen(s) - n] = '\0';
}

/* A municipality's name as compared: "Stockholms kommun" is "stockholm". */
static bool fold_municipality(const char *s, bool accents, char *out, size_t cap)
{
    if (!fold(s, accents, out, cap))
        return false;
    if (ends_with(out, " kommun")) {
        cut(out, 7);
        if (ends_with(out, "s"))
            cut(out, 1);
    }
    return true;
}

/* A county's name as compared: "Västra Götalands län" and "Västra Götaland" are alike. */
static bool fold_county(const char *s, bool accents, char *out, size_t cap)
{
    if (!fold(s, accents, out, cap))
        return false;
    if (ends_with(out, " l\xc3\xa4n")) /* " län" */
        cut(out, 5);
    else if (ends_with(out, " lan"))
        cut(out, 4);
    if (ends_with(out, "s"))
        cut(out, 1);
    return true;
}

static bool all_digits(const char *s, size_t n)
{
    return strlen(s) == n && strspn(s, "0123456789") == n;
}

static bool ascii_only(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s >= 0x80)
            return false;
    }
    return true;
}

/* The fewest single-letter edits (insert, delete, replace) that turn a into b. */
static size_t edits(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    size_t row[FOLD_MAX + 1];
    if (n > FOLD_MAX || m > FOLD_MAX)
        return SIZE_MAX;
    for (size_t j = 0; j <= m; j++)
        row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];
            size_t v = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < v)
                v = up + 1;
            if (row[j - 1] + 1 < v)
                v = row[j - 1] + 1;
            row[j] = v;
            diag = up;
        }
    }
    return row[m];
}

/* One kind of place: municipalities or counties, as a list of names and codes. */
struct kind {
    const char *what; /* "municipality" or "county" */
    size_t n;
    const char *(*name)(size_t i);
    const char *(*code)(size_t i);
    bool (*fold)(const char *s, bool accents, char *out, size_t cap);
    size_t code_len;
};

static const char *muni_name(size_t i)
{
    return places_municipalities[i].name;
}

static const char *muni_code(size_t i)
{
    return places_municipalities[i].code;
}

static const char *county_name(size_t i)
{
    return places_counties[i].name;
}

static const char *county_code(size_t i)
{
    return places_counties[i].code;
}

static const struct kind municipalities = {"municipality", PROTO_MUNICIPALITIES, muni_name,
                                           muni_code,      fold_municipality,    4};
static const struct kind counties = {"county",    PROTO_COUNTIES, county_name,
                                     county_code, fold_county,    2};

/* The places a text matched, in code order. */
struct found {
    size_t n;
    unsigned idx[PROTO_MUNICIPALITIES];
};

/* Collects the places whose name, folded, equals (or with `prefix`, starts with) t. */
static void collect(const struct kind *k, const char *t, bool accents, bool prefix, struct found *f)
{
    char fn[FOLD_MAX];
    size_t len = strlen(t);
    f->n = 0;
    for (size_t i = 0; i < k->n; i++) {
        bool folded = prefix ? fold(k->name(i), accents, fn, sizeof fn)
                             : k->fold(k->name(i), accents, fn, sizeof fn);
        if (folded && (prefix ? strncmp(t, fn, len) == 0 : strcmp(t, fn) == 0))
            f->idx[f->n++] = (unsigned)i;
    }
}

/*
 * Every place `text` names, by the first rule that finds any: its code; its spelling, when
 * typed with accents and only one place is spelt so; its name without accents; the start of
 * its name.
 */
static void find(const struct kind *k, const char *text, struct found *f)
{
    char t[FOLD_MAX];
    f->n = 0;
    if (all_digits(text, k->code_len)) {
        for (size_t i = 0; i < k->n; i++) {
            if (strcmp(k->code(i), text) == 0)
                f->idx[f->n++] = (unsigned)i;
        }
        return;
    }
    if (!ascii_only(text) && k->fold(text, true, t, sizeof t)) {
        collect(k, t, true, false, f);
        if (f->n == 1)
            return;
    }
    if (!k->fold(text, false, t, sizeof t)) {
        f->n = 0;
        return;
    }
    collect(k, t, false, false, f);
    if (f->n == 0 && fold(text, false, t, sizeof t))
        collect(k, t, false, true, f);
}

/* Appends text to the sentence in buf. */
static void append(char *buf, size_t cap, const char *text)
{
    size_t used = strlen(buf);
    if (used < cap)
        snprintf(buf + used, cap - used, "%s", text);
}

/* Appends "Name (code)", after `sep`. */
static void append_place(char *buf, size_t cap, const char *sep, const struct kind *k, size_t i)
{
    char item[160];
    snprintf(item, sizeof item, "%s%s (%s)", sep, k->name(i), k->code(i));
    append(buf, cap, item);
}

/* Why `text` names no single place: the candidates, or the nearest names. */
static void explain(const struct kind *k, const char *text, const struct found *f, char *why,
                    size_t cap)
{
    if (f->n > 1) {
        snprintf(why, cap, "'%s' could be more than one %s: ", text, k->what);
        for (size_t i = 0; i < f->n && i < CANDIDATES; i++)
            append_place(why, cap, i ? ", " : "", k, f->idx[i]);
        if (f->n > CANDIDATES) {
            char more[32];
            snprintf(more, sizeof more, " and %zu more", f->n - CANDIDATES);
            append(why, cap, more);
        }
        append(why, cap, "; give its code, or more of its name");
        return;
    }
    if (all_digits(text, k->code_len)) {
        snprintf(why, cap, "no %s has the code %s", k->what, text);
        return;
    }
    snprintf(why, cap, "no %s is called '%s'", k->what, text);
    char ft[FOLD_MAX], fn[FOLD_MAX];
    if (!k->fold(text, false, ft, sizeof ft))
        return;
    size_t limit = strlen(ft) / 4 > 1 ? strlen(ft) / 4 : 1, shown = 0;
    for (size_t d = 1; d <= limit && shown == 0; d++) {
        for (size_t i = 0; i < k->n && shown < NEAR_SHOWN; i++) {
            if (k->fold(k->name(i), false, fn, sizeof fn) && edits(ft, fn) == d)
                append_place(why, cap, shown++ ? " or " : "; did you mean ", k, i);
        }
    }
    if (shown)
        append(why, cap, "?");
}

static int resolve(const struct kind *k, const char *text, char *why, size_t cap)
{
    struct found f;
    find(k, text, &f);
    if (f.n == 1)
        return (int)f.idx[0];
    explain(k, text, &f, why, cap);
    return -1;
}

int places_municipality(const char *text, char *why, size_t cap)
{
    return resolve(&municipalities, text, why, cap);
}

int places_county(const char *text, char *why, size_t cap)
{
    return resolve(&counties, text, why, cap);
}

size_t places_lookup(const char *text, unsigned *idx, size_t cap)
{
    struct found f;
    find(&municipalities, text, &f);
    if (f.n == 0) {
        struct found c;
        find(&counties, text, &c);
        if (c.n == 1) {
            for (size_t i = 0; i < PROTO_MUNICIPALITIES; i++) {
                if (strcmp(places_municipalities[i].county, places_counties[c.idx[0]].code) == 0)
                    f.idx[f.n++] = (unsigned)i;
            }
        }
    }
    for (size_t i = 0; i < f.n && i < cap; i++)
        idx[i] = f.idx[i];
    return f.n;
}

const struct places_municipality *places_municipality_by_code(const char *code)
{
    int i = code ? proto_municipality_index(code, strlen(code)) : -1;
    return i >= 0 ? &places_municipalities[i] : NULL;
}

const struct places_county *places_county_by_code(const char *code)
{
    for (size_t i = 0; code && i < PROTO_COUNTIES; i++) {
        if (strcmp(places_counties[i].code, code) == 0)
            return &places_counties[i];
    }
    return NULL;
}

const char *places_municipality_label(const char *code, char *buf, size_t cap)
{
    const struct places_municipality *m = places_municipality_by_code(code);
    if (m)
        snprintf(buf, cap, "%s (%s)", m->name, m->code);
    else
        snprintf(buf, cap, "%s", code);
    return buf;
}

const char *places_county_label(const char *code, char *buf, size_t cap)
{
    const struct places_county *c = places_county_by_code(code);
    if (c)
        snprintf(buf, cap, "%s (%s)", c->name, c->code);
    else
        snprintf(buf, cap, "%s", code);
    return buf;
}
