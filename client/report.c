/*
 * The follow-up (`fristad followup`) for people and for spreadsheets: a table of measures by
 * month, or CSV with one line a month. Both show exactly the cells the server sent, "<3" and
 * "x" included: suppression is the server's, and nothing here adds a total.
 *
 * The measures are the reply's own keys in the reply's order, a nested map (no-match reasons,
 * decline codes, age bands) flattened into one line or column per key, so that a measure the
 * server adds shows up without a change here.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "places.h"
#include "report.h"
#include "table.h"

/* Months side by side in one table, within 100 columns; more months, more tables. */
#define MONTHS_PER_BLOCK 6u
#define CELL             64u

/* A cell's value as text: a number, or the server's marker ("<3", "x"), or "-". */
static const char *value_text(char *buf, size_t cap, const msgpack_object *v)
{
    if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        snprintf(buf, cap, "%" PRIu64, v->via.u64);
    else if (v && v->type == MSGPACK_OBJECT_STR)
        table_clean(buf, cap, v->via.str.ptr, v->via.str.size);
    else
        snprintf(buf, cap, "-");
    return buf;
}

/* One measure: where it is in a month's map, and its names. */
struct measure {
    const msgpack_object *key; /* in the month map */
    const msgpack_object *sub; /* in the nested map, or NULL */
};

/* The measures of a month map, in its order; returns how many (at most cap). */
static unsigned measures_of(const msgpack_object *month, struct measure *out, unsigned cap)
{
    unsigned n = 0;
    if (!month || month->type != MSGPACK_OBJECT_MAP)
        return 0;
    for (uint32_t i = 0; i < month->via.map.size; i++) {
        const msgpack_object *k = &month->via.map.ptr[i].key;
        const msgpack_object *v = &month->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || proto_str_is(k, "month"))
            continue;
        if (v->type == MSGPACK_OBJECT_MAP) {
            for (uint32_t j = 0; j < v->via.map.size && n < cap; j++) {
                if (v->via.map.ptr[j].key.type == MSGPACK_OBJECT_STR)
                    out[n++] = (struct measure){k, &v->via.map.ptr[j].key};
            }
        } else if (n < cap) {
            out[n++] = (struct measure){k, NULL};
        }
    }
    return n;
}

static const msgpack_object *lookup(const msgpack_object *map, const msgpack_object *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP || key->type != MSGPACK_OBJECT_STR)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == key->via.str.size &&
            memcmp(k->via.str.ptr, key->via.str.ptr, k->via.str.size) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static const msgpack_object *value_of(const msgpack_object *month, const struct measure *m)
{
    const msgpack_object *v = lookup(month, m->key);
    return m->sub ? lookup(v, m->sub) : v;
}

/* "declines_no_room", "children_placed_0_6": a measure as one CSV column name. */
static const char *column_name(char *buf, size_t cap, const struct measure *m)
{
    char key[CELL / 2], sub[CELL / 2] = "";
    table_clean(key, sizeof key, m->key->via.str.ptr, m->key->via.str.size);
    if (m->sub)
        table_clean(sub, sizeof sub, m->sub->via.str.ptr, m->sub->via.str.size);
    snprintf(buf, cap, "%.31s%s%.31s", key, m->sub ? "_" : "", sub);
    for (char *p = buf; *p; p++) {
        if (*p == '-')
            *p = '_';
    }
    return buf;
}

/* What a measure is called in the table for people. */
static const char *label(char *buf, size_t cap, const struct measure *m)
{
    static const struct {
        const char *key, *label, *sub_label;
    } names[] = {
        {"searches", "Searches", NULL},
        {"no_match", "  that found nothing", NULL},
        {"no_match_reasons", NULL, "    ruled out by "},
        {"holds", "Holds", NULL},
        {"acceptances", "  accepted", NULL},
        {"declines", NULL, "  declined: "},
        {"expiries", "  expired", NULL},
        {"placements", "Placements (arrived)", NULL},
        {"discharges", "Discharges", NULL},
        {"median_minutes_to_acceptance", "Median minutes, hold to acceptance", NULL},
        {"median_minutes_to_arrival", "Median minutes, hold to arrival", NULL},
        {"children_placed", NULL, "Children placed, aged "},
        {"nights", "Nights of placements that ended", NULL},
    };
    char sub[CELL] = "";
    if (m->sub)
        table_clean(sub, sizeof sub, m->sub->via.str.ptr, m->sub->via.str.size);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!proto_str_is(m->key, names[i].key))
            continue;
        if (m->sub && names[i].sub_label)
            snprintf(buf, cap, "%s%s", names[i].sub_label, sub);
        else if (!m->sub && names[i].label)
            snprintf(buf, cap, "%s", names[i].label);
        else
            break;
        return buf;
    }
    return column_name(buf, cap, m);
}

/* The key of the reply's area: "county" or "municipality". */
static const char *area_key(const msgpack_object *r)
{
    const msgpack_object *o = proto_map_get(r, "county");
    return o && o->type == MSGPACK_OBJECT_STR ? "county" : "municipality";
}

/* The area for people: "Stockholm (0180)" or "Stockholms län (01)". */
static const char *area_label(const msgpack_object *r, char *buf, size_t cap)
{
    char code[16];
    const char *key = area_key(r);
    value_text(code, sizeof code, proto_map_get(r, key));
    if (strcmp(key, "county") == 0)
        return places_county_label(code, buf, cap);
    return places_municipality_label(code, buf, cap);
}

/* A CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180). */
static void csv_field(FILE *out, const char *s, bool first)
{
    if (!first)
        fputc(',', out);
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

#define MAX_MEASURES 64u

int report_followup_table(FILE *out, const msgpack_object *r)
{
    const msgpack_object *months = proto_map_get(r, "months");
    char area[160], from[CELL], to[CELL];
    if (!months || months->type != MSGPACK_OBJECT_ARRAY)
        return -1;
    fprintf(out, "Follow-up of %s, %s to %s (months in Swedish time).\n",
            area_label(r, area, sizeof area),
            value_text(from, sizeof from, proto_map_get(r, "from_month")),
            value_text(to, sizeof to, proto_map_get(r, "to_month")));
    fputs("<3: below 3 (a median or nights: fewer than 3 cases behind it).\n"
          "x:  hidden, so that a smaller cell cannot be computed back from it.\n",
          out);
    if (months->via.array.size == 0)
        return 0;
    struct measure ms[MAX_MEASURES];
    unsigned n = measures_of(&months->via.array.ptr[0], ms, MAX_MEASURES);
    for (uint32_t first = 0; first < months->via.array.size; first += MONTHS_PER_BLOCK) {
        uint32_t count = months->via.array.size - first;
        if (count > MONTHS_PER_BLOCK)
            count = MONTHS_PER_BLOCK;
        char head[MONTHS_PER_BLOCK + 1][CELL];
        const char *heads[MONTHS_PER_BLOCK + 1];
        snprintf(head[0], CELL, " ");
        heads[0] = head[0];
        for (uint32_t c = 0; c < count; c++) {
            value_text(head[c + 1], CELL,
                       proto_map_get(&months->via.array.ptr[first + c], "month"));
            heads[c + 1] = head[c + 1];
        }
        struct table *t = table_new(count + 1, heads);
        if (!t)
            return -1;
        for (uint32_t c = 0; c < count; c++)
            table_align_right(t, c + 1);
        for (unsigned i = 0; i < n; i++) {
            char cells[MONTHS_PER_BLOCK + 1][CELL];
            const char *row[MONTHS_PER_BLOCK + 1];
            row[0] = label(cells[0], CELL, &ms[i]);
            for (uint32_t c = 0; c < count; c++)
                row[c + 1] = value_text(cells[c + 1], CELL,
                                        value_of(&months->via.array.ptr[first + c], &ms[i]));
            if (table_add(t, row) != 0) {
                table_free(t);
                return -1;
            }
        }
        fputc('\n', out);
        table_print(t, out);
        table_free(t);
    }
    return 0;
}

int report_followup_csv(FILE *out, const msgpack_object *r)
{
    const msgpack_object *months = proto_map_get(r, "months");
    const char *key = area_key(r);
    char code[CELL], name[CELL];
    if (!months || months->type != MSGPACK_OBJECT_ARRAY)
        return -1;
    value_text(code, sizeof code, proto_map_get(r, key));
    struct measure ms[MAX_MEASURES];
    unsigned n =
        months->via.array.size ? measures_of(&months->via.array.ptr[0], ms, MAX_MEASURES) : 0;
    csv_field(out, key, true);
    csv_field(out, "month", false);
    for (unsigned i = 0; i < n; i++)
        csv_field(out, column_name(name, sizeof name, &ms[i]), false);
    fputc('\n', out);
    for (uint32_t m = 0; m < months->via.array.size; m++) {
        const msgpack_object *month = &months->via.array.ptr[m];
        csv_field(out, code, true);
        csv_field(out, value_text(name, sizeof name, proto_map_get(month, "month")), false);
        for (unsigned i = 0; i < n; i++)
            csv_field(out, value_text(name, sizeof name, value_of(month, &ms[i])), false);
        fputc('\n', out);
    }
    return 0;
}
