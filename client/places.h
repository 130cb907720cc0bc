/*
 * Swedish geography for people: the 290 municipalities (kommuner) and 21 counties (län), taken
 * by name or by code and shown as "Uppsala (0380)". The table is generated from
 * conf/municipalities.csv at build time (client/gen_places.py), so it cannot disagree with the
 * codes the protocol accepts.
 *
 * Names match without regard to case, accents, hyphens or a trailing "kommun" / "län":
 * "malung salen" is Malung-Sälen, "Västra Götaland" is Västra Götalands län. A name typed
 * with its å, ä or ö picks the municipality spelt so; otherwise every name that matches counts,
 * and more than one is refused with the candidates: "Habo" could be Habo or Håbo, and a wrong
 * guess would send a household to the wrong place. A unique start of a name is enough
 * ("Upplands-B"); a code is always enough.
 */
#ifndef FRISTAD_CLIENT_PLACES_H
#define FRISTAD_CLIENT_PLACES_H

#include <stdbool.h>
#include <stddef.h>

#include <fristad/proto.h>

struct places_municipality {
    char code[5];     /* "0380" */
    const char *name; /* "Uppsala", UTF-8 */
    char county[3];   /* "03" */
};

struct places_county {
    char code[3];     /* "03" */
    const char *name; /* "Uppsala län" */
};

/* In code order (client/places_table.c, generated). */
extern const struct places_municipality places_municipalities[PROTO_MUNICIPALITIES];
extern const struct places_county places_counties[PROTO_COUNTIES];

/*
 * The municipality `text` names, by code or name: its index in places_municipalities, or -1
 * with a sentence in `why` (no such municipality, with the nearest names; or the candidates
 * of an ambiguous name).
 */
int places_municipality(const char *text, char *why, size_t cap);
/* The same for a county: its index in places_counties, or -1 with `why`. */
int places_county(const char *text, char *why, size_t cap);

/*
 * Every municipality `text` may mean: the municipalities its name or code matches, or, when it
 * matches none but names a county, that county's municipalities. Fills up to cap indexes in
 * code order and returns how many there are in all.
 */
size_t places_lookup(const char *text, unsigned *idx, size_t cap);

/* By code; NULL for a code that is none. */
const struct places_municipality *places_municipality_by_code(const char *code);
const struct places_county *places_county_by_code(const char *code);

/* "Uppsala (0380)" and "Uppsala län (03)"; the code alone when it is none. Returns buf. */
const char *places_municipality_label(const char *code, char *buf, size_t cap);
const char *places_county_label(const char *code, char *buf, size_t cap);

#endif
