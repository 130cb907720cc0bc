/*
 * Human output. Replies are read leniently: a missing key prints '-', a value of another type
 * prints as what it is, so that an older or newer server still gives readable output. Every
 * string from the server goes through table_clean before it reaches the terminal.
 *
 * Times in replies are milliseconds since 1970 and are shown in local time with its zone,
 * because the person reading them is planning an evening, not correlating logs; the zone
 * tells the two 02:30 of the night the clocks go back apart.
 *
 * One thing has one name in every table: SHELTER and UNIT for their ids, MUNICIPALITY as
 * "Uppsala (0380)", COUNTY as "Uppsala län (03)", FRESHNESS for how old a shelter's
 * vacancies are ("5 min", "2 d STALE").
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "hsds.h"
#include "human.h"
#include "places.h"
#include "report.h"
#include "table.h"

#define CELL       512u /* bytes of one formatted value: 100 characters of UTF-8 and more */
#define TREE_DEPTH 16u

/* ---- reading values --------------------------------------------------------------------- */

static const msgpack_object *get(const msgpack_object *m, const char *key)
{
    return proto_map_get(m, key);
}

static bool as_i64(const msgpack_object *o, int64_t *out)
{
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX) {
        *out = (int64_t)o->via.u64;
        return true;
    }
    if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return true;
    }
    return false;
}

static bool is_true(const msgpack_object *m, const char *key)
{
    const msgpack_object *o = get(m, key);
    return o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

static bool is_scalar(const msgpack_object *o)
{
    return o->type != MSGPACK_OBJECT_MAP && o->type != MSGPACK_OBJECT_ARRAY;
}

/* A value as text: strings cleaned, booleans yes/no, arrays of scalars joined, nil as '-'. */
static const char *fmt(char *buf, size_t cap, const msgpack_object *o)
{
    buf[0] = '\0';
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return "-";
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        table_clean(buf, cap, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        snprintf(buf, cap, "%s", o->via.boolean ? "yes" : "no");
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        snprintf(buf, cap, "%" PRIu64, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        snprintf(buf, cap, "%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        snprintf(buf, cap, "%g", o->via.f64);
        break;
    case MSGPACK_OBJECT_BIN:
        snprintf(buf, cap, "(%" PRIu32 " bytes of binary data)", o->via.bin.size);
        break;
    case MSGPACK_OBJECT_ARRAY: {
        size_t used = 0;
        for (uint32_t i = 0; i < o->via.array.size && used + 8 < cap; i++) {
            char item[CELL];
            const msgpack_object *e = &o->via.array.ptr[i];
            const char *t = is_scalar(e) ? fmt(item, sizeof item, e) : "...";
            int n = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", t);
            if (n < 0 || (size_t)n >= cap - used)
                break;
            used += (size_t)n;
        }
        break;
    }
    case MSGPACK_OBJECT_MAP:
        snprintf(buf, cap, "(%" PRIu32 " entries)", o->via.map.size);
        break;
    case MSGPACK_OBJECT_EXT:
    case MSGPACK_OBJECT_NIL:
        break;
    }
    return buf[0] ? buf : "-";
}

static const char *fmt_key(char *buf, size_t cap, const msgpack_object *m, const char *key)
{
    return fmt(buf, cap, get(m, key));
}

/* How much of a local time to show. */
enum time_style {
    TIME_CLOCK,   /* 14:05, for a hold that ends within the hour */
    TIME_MINUTES, /* 2026-11-22 14:05 CET */
    TIME_SECONDS, /* 2026-11-22 14:05:09 CET, for the audit trail */
};

/* Milliseconds since 1970 as local time. */
static const char *fmt_time(char *buf, size_t cap, const msgpack_object *m, const char *key,
                            enum time_style style)
{
    int64_t ms;
    const msgpack_object *o = get(m, key);
    if (!as_i64(o, &ms))
        return fmt(buf, cap, o);
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    size_t n = 0;
    if (!localtime_r(&t, &tm))
        return "-";
    switch (style) {
    case TIME_CLOCK:
        n = strftime(buf, cap, "%H:%M", &tm);
        break;
    case TIME_MINUTES:
        n = strftime(buf, cap, "%Y-%m-%d %H:%M %Z", &tm);
        break;
    case TIME_SECONDS:
        n = strftime(buf, cap, "%Y-%m-%d %H:%M:%S %Z", &tm);
        break;
    }
    return n ? buf : "-";
}

static const char *age_words(char *buf, size_t cap, int64_t s)
{
    if (s < 60)
        snprintf(buf, cap, "<1 min");
    else if (s < 3600)
        snprintf(buf, cap, "%" PRId64 " min", s / 60);
    else if (s < 86400)
        snprintf(buf, cap, "%" PRId64 " h", s / 3600);
    else
        snprintf(buf, cap, "%" PRId64 " d", s / 86400);
    return buf;
}

/* How old the shelter's vacancy data is (key: "data_age_s"), "5 min" or "2 d STALE". */
static const char *fmt_age(char *buf, size_t cap, const msgpack_object *m, const char *key)
{
    int64_t s;
    char age[32] = "-";
    if (as_i64(get(m, key), &s))
        age_words(age, sizeof age, s < 0 ? 0 : s);
    snprintf(buf, cap, "%s%s", age, is_true(m, "stale") ? " STALE" : "");
    return buf;
}

/*
 * "Stockholm (0180)" (key: "municipality"): the name the reply gives, else the one the client
 * knows for the code; the value alone when it is no code.
 */
static const char *fmt_muni(char *buf, size_t cap, const msgpack_object *m, const char *key)
{
    char name[CELL], code[48]; /* room for anything fmt makes of a value that is not a code */
    const msgpack_object *n = get(m, "municipality_name");
    fmt_key(code, sizeof code, m, key);
    if (n && n->type == MSGPACK_OBJECT_STR && n->via.str.size > 0)
        snprintf(buf, cap, "%s (%s)", fmt(name, sizeof name, n), code[0] ? code : "-");
    else
        places_municipality_label(code[0] ? code : "-", buf, cap);
    return buf;
}

/* "Stockholms län (01)" (key: "county"), or the value alone when it is no code. */
static const char *fmt_county(char *buf, size_t cap, const msgpack_object *m, const char *key)
{
    char code[48];
    fmt_key(code, sizeof code, m, key);
    return places_county_label(code[0] ? code : "-", buf, cap);
}

/* What an audit entry is about: "frida/r1 hold H1", or '-'. */
static const char *fmt_target(char *buf, size_t cap, const msgpack_object *e, const char *key)
{
    static const char *const keys[] = {"shelter", "unit", "hold", "placement"};
    size_t used = 0;
    (void)key; /* the target is made of four keys */
    buf[0] = '\0';
    for (unsigned k = 0; k < 4; k++) {
        char v[CELL];
        const msgpack_object *o = get(e, keys[k]);
        if (!o || o->type == MSGPACK_OBJECT_NIL)
            continue;
        const char *sep = used == 0 ? "" : k == 1 ? "/" : " ";
        const char *label = k >= 2 ? keys[k] : "";
        int n = snprintf(buf + used, cap - used, "%s%s%s%s", sep, label, k >= 2 ? " " : "",
                         fmt(v, sizeof v, o));
        if (n < 0 || (size_t)n >= cap - used)
            break;
        used += (size_t)n;
    }
    return buf[0] ? buf : "-";
}

static const char *fmt_minutes(char *buf, size_t cap, const msgpack_object *m, const char *key)
{
    return fmt_time(buf, cap, m, key, TIME_MINUTES);
}

static const char *fmt_seconds(char *buf, size_t cap, const msgpack_object *m, const char *key)
{
    return fmt_time(buf, cap, m, key, TIME_SECONDS);
}

/* "2/5" free units of all (key: "free_units"), "2/5 paused" when intake is paused. */
static const char *fmt_free_units(char *buf, size_t cap, const msgpack_object *s, const char *key)
{
    char fr[32], un[32];
    snprintf(buf, cap, "%s/%s%s", fmt_key(fr, sizeof fr, s, key),
             fmt_key(un, sizeof un, s, "units"), is_true(s, "paused") ? " paused" : "");
    return buf;
}

static const msgpack_object *get_array(const msgpack_object *m, const char *key)
{
    const msgpack_object *a = get(m, key);
    return a && a->type == MSGPACK_OBJECT_ARRAY ? a : NULL;
}

/* An id that a reply gives either as a string or as the map of the whole object. */
static const char *fmt_ref(char *buf, size_t cap, const msgpack_object *m, const char *key)
{
    const msgpack_object *o = get(m, key);
    if (o && o->type == MSGPACK_OBJECT_MAP)
        o = get(o, key);
    return fmt(buf, cap, o);
}

/* ---- generic output --------------------------------------------------------------------- */

static void print_tree(FILE *out, const msgpack_object *o, unsigned indent, unsigned depth)
{
    char buf[CELL], key[CELL];
    if (depth > TREE_DEPTH) {
        fprintf(out, "%*s...\n", (int)indent, "");
        return;
    }
    if (o->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            const msgpack_object *v = &o->via.map.ptr[i].val;
            bool flat =
                is_scalar(v) || (v->type == MSGPACK_OBJECT_ARRAY &&
                                 (v->via.array.size == 0 || is_scalar(&v->via.array.ptr[0])));
            fprintf(out, "%*s%s:", (int)indent, "", fmt(key, sizeof key, k));
            if (flat) {
                fprintf(out, " %s\n", fmt(buf, sizeof buf, v));
            } else {
                fputc('\n', out);
                print_tree(out, v, indent + 2, depth + 1);
            }
        }
    } else if (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size > 0 &&
               !is_scalar(&o->via.array.ptr[0])) {
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            fprintf(out, "%*s-\n", (int)indent, "");
            print_tree(out, &o->via.array.ptr[i], indent + 2, depth + 1);
        }
    } else {
        fprintf(out, "%*s%s\n", (int)indent, "", fmt(buf, sizeof buf, o));
    }
}

/* Makes the cell of one column from one row of a listing. */
typedef const char *cell_fn(char *buf, size_t cap, const msgpack_object *row, const char *key);

struct column {
    const char *header;
    const char *key; /* what the cell shows, passed to `cell` */
    cell_fn *cell;   /* NULL: the row's number, counting from 1 */
    bool right;      /* right-aligned, for numbers */
};

/* A reply that is a list of rows: which array of the result, and how a row becomes a line. */
struct listing {
    const char *rows; /* key of the array in the result */
    const char *none; /* printed instead of an empty table */
    unsigned ncols;
    const struct column *cols;
};

#define NCOLS(cols) (unsigned)(sizeof(cols) / sizeof(cols)[0])

/* Prints the rows of r as a table; a missing or empty array as l->none. */
static int print_listing(FILE *out, const msgpack_object *r, const struct listing *l)
{
    const char *head[TABLE_MAX_COLS];
    if (l->ncols > TABLE_MAX_COLS)
        return -1;
    for (unsigned c = 0; c < l->ncols; c++)
        head[c] = l->cols[c].header;
    struct table *t = table_new(l->ncols, head);
    if (!t)
        return -1;
    for (unsigned c = 0; c < l->ncols; c++) {
        if (l->cols[c].right)
            table_align_right(t, c);
    }
    const msgpack_object *rows = get_array(r, l->rows);
    for (uint32_t i = 0; rows && i < rows->via.array.size; i++) {
        const msgpack_object *row = &rows->via.array.ptr[i];
        char buf[TABLE_MAX_COLS][CELL];
        const char *cells[TABLE_MAX_COLS];
        for (unsigned c = 0; c < l->ncols; c++) {
            const struct column *col = &l->cols[c];
            if (col->cell) {
                cells[c] = col->cell(buf[c], CELL, row, col->key);
            } else {
                snprintf(buf[c], CELL, "%" PRIu32, i + 1);
                cells[c] = buf[c];
            }
        }
        if (table_add(t, cells) != 0) {
            table_free(t);
            return -1;
        }
    }
    if (table_rows(t) == 0)
        fprintf(out, "%s\n", l->none);
    else
        table_print(t, out);
    table_free(t);
    return 0;
}

/* ---- Swedish practice: operator, IVO permit, competences, each child's basis ------------- */

/*
 * What the viewer may see of a shelter's standing with IVO (key unused): "3.5.1-1/2024" (a
 * permit), "registered", both with "; ", "none" for protected housing that has neither, or "-"
 * when the reply leaves it out (another shelter's permit is not shown) or when nothing is
 * recorded for a shelter that needs nothing.
 */
static const char *fmt_ivo(char *buf, size_t cap, const msgpack_object *s, const char *key)
{
    char permit[CELL];
    (void)key;
    const msgpack_object *p = get(s, "ivo_permit");
    bool has_permit = p && p->type == MSGPACK_OBJECT_STR && p->via.str.size > 0;
    bool registered = is_true(s, "ivo_registered");
    if (!get(s, "ivo_registered"))
        return "-";
    const msgpack_object *kind = get(s, "kind");
    if (!has_permit && !registered)
        return proto_str_is(kind, "skyddat_boende") ? "none" : "-";
    snprintf(buf, cap, "%s%s%s", has_permit ? fmt(permit, sizeof permit, p) : "",
             has_permit && registered ? "; " : "", registered ? "registered" : "");
    return buf;
}

/* The operator (key: "operator"), or "unknown" when it was never recorded. */
static const char *fmt_operator(char *buf, size_t cap, const msgpack_object *s, const char *key)
{
    const msgpack_object *o = get(s, key);
    if (o && o->type == MSGPACK_OBJECT_NIL)
        return "unknown";
    return fmt(buf, cap, o);
}

/* The lines of a shelter's details about Swedish practice. */
static void print_practice(FILE *out, const msgpack_object *s)
{
    char a[CELL], b[CELL];
    const msgpack_object *c = get_array(s, "competences");
    if (c)
        fprintf(out, "%-14s%s\n", "Competences:", c->via.array.size ? fmt(a, sizeof a, c) : "none");
    if (get(s, "operator"))
        fprintf(out, "%-14s%s\n", "Operator:", fmt_operator(a, sizeof a, s, "operator"));
    if (!get(s, "ivo_registered"))
        return;
    const msgpack_object *p = get(s, "ivo_permit");
    bool registered = is_true(s, "ivo_registered");
    if (p && p->type == MSGPACK_OBJECT_STR && p->via.str.size > 0)
        fprintf(out, "%-14spermit %s, granted %s%s\n", "IVO:", fmt(a, sizeof a, p),
                fmt_key(b, sizeof b, s, "ivo_permit_date"), registered ? "; registered" : "");
    else
        fprintf(out, "%-14s%s\n", "IVO:", registered ? "registered" : "no permit, not registered");
}

/* "14m:lvu 6f:sol": a placement's children with the basis of each one's decision (key unused). */
static const char *fmt_children_bases(char *buf, size_t cap, const msgpack_object *p,
                                      const char *key)
{
    (void)key;
    const msgpack_object *kids = get_array(p, "children");
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; kids && i < kids->via.array.size && used < cap; i++) {
        const msgpack_object *k = &kids->via.array.ptr[i];
        const msgpack_object *sex = get(k, "sex"), *basis = get(k, "basis");
        char b[CELL];
        int64_t age = 0;
        if (!as_i64(get(k, "age"), &age) || !sex || sex->type != MSGPACK_OBJECT_STR ||
            sex->via.str.size != 1)
            continue;
        int n = snprintf(buf + used, cap - used, "%s%lld%c%s%s", used ? " " : "", (long long)age,
                         sex->via.str.ptr[0] == 'm' ? 'm' : 'f', basis ? ":" : "",
                         basis ? fmt(b, sizeof b, basis) : "");
        if (n < 0 || (size_t)n >= cap - used)
            break;
        used += (size_t)n;
    }
    return buf[0] ? buf : "-";
}

/* ---- registry and vacancies ------------------------------------------------------------- */

static const struct column unit_cols[] = {
    {"UNIT", "id", fmt_key, false},
    {"BEDS", "beds", fmt_key, true},
    {"ACCESSIBLE", "accessible", fmt_key, false},
    {"STATE", "state", fmt_key, false},
    {"HELD", "held", fmt_key, false},
};
static const struct listing units = {"units", "No units.", NCOLS(unit_cols), unit_cols};

static int print_shelter(FILE *out, const msgpack_object *s)
{
    char a[CELL], b[CELL];
    const msgpack_object *o;
    fprintf(out, "%-14s%s\n", "Shelter:", fmt_key(a, sizeof a, s, "id"));
    fprintf(out, "%-14s%s\n", "Name:", fmt_key(a, sizeof a, s, "name"));
    fprintf(out, "%-14s%s\n", "Kind:", fmt_key(a, sizeof a, s, "kind"));
    fprintf(out, "%-14s%s\n", "Municipality:", fmt_muni(a, sizeof a, s, "municipality"));
    fprintf(out, "%-14s%s\n", "County:", fmt_county(a, sizeof a, s, "county"));
    int64_t level = 0;
    static const char *const levels[] = {"", " (basic)", " (enhanced)", " (high security)"};
    bool known = as_i64(get(s, "protection"), &level) && level >= 1 && level <= 3;
    fprintf(out, "%-14s%s%s\n", "Protection:", fmt_key(a, sizeof a, s, "protection"),
            known ? levels[level] : "");
    fprintf(out, "%-14s%s\n", "Groups:", fmt_key(a, sizeof a, s, "groups"));
    o = get(s, "max_children");
    fprintf(out, "%-14s%s\n",
            "Max children:", o && o->type != MSGPACK_OBJECT_NIL ? fmt(a, sizeof a, o) : "no limit");
    o = get(s, "boys_max_age");
    fprintf(out, "%-14s%s\n",
            "Boys max age:", o && o->type != MSGPACK_OBJECT_NIL ? fmt(a, sizeof a, o) : "no limit");
    fprintf(out, "%-14s%s\n", "Pets:", fmt_key(a, sizeof a, s, "pets"));
    fprintf(out, "%-14s%s\n", "Substance:", fmt_key(a, sizeof a, s, "substance"));
    fprintf(out, "%-14s%s\n", "Languages:", fmt_key(a, sizeof a, s, "languages"));
    print_practice(out, s);
    if (get(s, "phone"))
        fprintf(out, "%-14s%s\n", "Phone:", fmt_key(a, sizeof a, s, "phone"));
    fprintf(out, "%-14s%s\n", "Intake:", is_true(s, "paused") ? "paused" : "open");
    if (get(s, "intake_hours"))
        fprintf(out, "%-14s%s\n", "Intake hours:", fmt_key(a, sizeof a, s, "intake_hours"));
    if (is_true(s, "retired"))
        fprintf(out, "%-14s%s\n", "Retired:", "yes");
    fprintf(out, "%-14s%s (%s)\n", "Updated:", fmt_time(a, sizeof a, s, "updated_at", TIME_MINUTES),
            fmt_age(b, sizeof b, s, "data_age_s"));
    fputc('\n', out);
    return print_listing(out, s, &units);
}

static const struct column shelter_cols[] = {
    {"SHELTER", "id", fmt_key, false},
    {"NAME", "name", fmt_key, false},
    {"KIND", "kind", fmt_key, false},
    {"MUNICIPALITY", "municipality", fmt_muni, false},
    {"COUNTY", "county", fmt_county, false},
    {"PROT", "protection", fmt_key, true},
    {"FREE/UNITS", "free_units", fmt_free_units, false},
    {"FRESHNESS", "data_age_s", fmt_age, false},
    {"OPERATOR", "operator", fmt_operator, false},
    {"IVO", NULL, fmt_ivo, false},
};
static const struct listing shelters = {"shelters", "No shelters.", NCOLS(shelter_cols),
                                        shelter_cols};

static const struct column free_cols[] = {
    {"SHELTER", "shelter", fmt_key, false},
    {"UNIT", "unit", fmt_key, false},
    {"NAME", "name", fmt_key, false},
    {"KIND", "kind", fmt_key, false},
    {"MUNICIPALITY", "municipality", fmt_muni, false},
    {"COUNTY", "county", fmt_county, false},
    {"BEDS", "beds", fmt_key, true},
    {"ACCESSIBLE", "accessible", fmt_key, false},
    {"PROT", "protection", fmt_key, true},
    {"FRESHNESS", "data_age_s", fmt_age, false},
};
static const struct listing free_units = {"units", "No free unit.", NCOLS(free_cols), free_cols};

/* A one-line confirmation of a registry or vacancy write, then the shelter's units. */
static int print_write(FILE *out, const struct proto_request *req, const msgpack_object *r)
{
    const struct proto_args *a = &req->args;
    switch (req->op) {
    case OP_SHELTER_ADD:
        fprintf(out, "Registered shelter %s.\n", a->shelter);
        break;
    case OP_SHELTER_UPDATE:
        fprintf(out, "Updated shelter %s.\n", a->shelter);
        break;
    case OP_SHELTER_RETIRE:
        fprintf(out, "Retired shelter %s.\n", a->shelter);
        break;
    case OP_UNIT_ADD:
        fprintf(out, "Added unit %s to %s; it is closed until its vacancy is set.\n", a->unit,
                a->shelter);
        break;
    case OP_UNIT_UPDATE:
        fprintf(out, "Updated unit %s of %s.\n", a->unit, a->shelter);
        break;
    case OP_UNIT_REMOVE:
        fprintf(out, "Removed unit %s from %s.\n", a->unit, a->shelter);
        break;
    case OP_VACANCY_SET:
        fprintf(out, "Unit %s of %s is now %s.\n", a->unit, a->shelter,
                proto_vacancy_name(a->state));
        break;
    case OP_VACANCY_CONFIRM:
        fprintf(out, "Confirmed the vacancies of %s as current.\n", a->shelter);
        break;
    case OP_INTAKE_PAUSE:
        fprintf(out, "Paused intake at %s: it offers no unit until resumed.\n", a->shelter);
        break;
    case OP_INTAKE_RESUME:
        fprintf(out, "Resumed intake at %s.\n", a->shelter);
        break;
    default:
        break;
    }
    const msgpack_object *s = get(r, "shelter");
    if (!s || s->type != MSGPACK_OBJECT_MAP || req->op == OP_SHELTER_RETIRE)
        return 0;
    fputc('\n', out);
    return print_listing(out, s, &units);
}

/* ---- referrals -------------------------------------------------------------------------- */

struct count {
    const msgpack_object *name;
    int64_t n;
    uint32_t order;
};

static int by_count(const void *pa, const void *pb)
{
    const struct count *a = pa, *b = pb;
    if (a->n != b->n)
        return a->n > b->n ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* "ruled out: boys_age 3, beds 1", the largest counts first. */
static int print_ruled_out(FILE *out, const msgpack_object *ruled)
{
    if (!ruled || ruled->type != MSGPACK_OBJECT_MAP || ruled->via.map.size == 0) {
        fprintf(out, "ruled out: nothing (no free unit was considered)\n");
        return 0;
    }
    struct count *c = calloc(ruled->via.map.size, sizeof *c);
    if (!c)
        return -1;
    uint32_t n = 0;
    for (uint32_t i = 0; i < ruled->via.map.size; i++) {
        int64_t v;
        if (as_i64(&ruled->via.map.ptr[i].val, &v) && v != 0)
            c[n++] = (struct count){&ruled->via.map.ptr[i].key, v, i};
    }
    qsort(c, n, sizeof *c, by_count);
    if (n == 0)
        fprintf(out, "ruled out: nothing (no free unit was considered)\n");
    for (uint32_t i = 0; i < n; i++) {
        char name[CELL];
        fprintf(out, "%s%s %" PRId64, i ? ", " : "ruled out: ", fmt(name, sizeof name, c[i].name),
                c[i].n);
    }
    if (n > 0)
        fputc('\n', out);
    free(c);
    return 0;
}

/* "now" when the shelter can receive at the arrival time (key: "receives_from"), else when. */
static const char *fmt_receives(char *buf, size_t cap, const msgpack_object *m, const char *key)
{
    const msgpack_object *o = get(m, key);
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return "now";
    return fmt(buf, cap, o);
}

static const struct column result_cols[] = {
    {"#", NULL, NULL, true},
    {"SHELTER", "shelter", fmt_key, false},
    {"UNIT", "unit", fmt_key, false},
    {"NAME", "name", fmt_key, false},
    {"KIND", "kind", fmt_key, false},
    {"MUNICIPALITY", "municipality", fmt_muni, false},
    {"COUNTY", "county", fmt_county, false},
    {"KM", "distance_km", fmt_key, true},
    {"BEDS", "beds", fmt_key, true},
    {"PROT", "protection", fmt_key, true},
    {"FRESHNESS", "data_age_s", fmt_age, false},
    {"RECEIVES", "receives_from", fmt_receives, false},
    {"IVO", NULL, fmt_ivo, false},
};
static const struct listing results = {"results", "No eligible unit.", NCOLS(result_cols),
                                       result_cols};

static int print_search(FILE *out, const msgpack_object *r)
{
    const msgpack_object *list = get_array(r, "results");
    if (!list || list->via.array.size == 0) {
        fprintf(out, "No eligible unit.\n");
        return print_ruled_out(out, get(r, "ruled_out"));
    }
    return print_listing(out, r, &results);
}

static int print_hold(FILE *out, const struct proto_request *req, const msgpack_object *r)
{
    char s[CELL], u[CELL], h[CELL], until[32], phone[CELL];
    const char *shelter = fmt_key(s, sizeof s, r, "shelter");
    const char *unit = fmt_key(u, sizeof u, r, "unit");
    fprintf(out, "Held %s/%s as %s until %s (local time). Intake phone: %s\n",
            strcmp(shelter, "-") ? shelter : req->args.shelter,
            strcmp(unit, "-") ? unit : req->args.unit, fmt_key(h, sizeof h, r, "hold"),
            fmt_time(until, sizeof until, r, "expires_at", TIME_CLOCK),
            fmt_key(phone, sizeof phone, r, "phone"));
    return 0;
}

/* Sentences for the hold and placement state changes. */
static int print_closing(FILE *out, const struct proto_request *req, const msgpack_object *r)
{
    char id[CELL], place[CELL], where[2 * CELL + 1], s[CELL], u[CELL];
    const msgpack_object *obj = get(r, req->op == OP_PLACEMENT_DISCHARGE ? "placement" : "hold");
    const char *fallback = req->op == OP_PLACEMENT_DISCHARGE ? req->args.placement : req->args.hold;
    where[0] = '\0';
    if (obj && obj->type == MSGPACK_OBJECT_MAP)
        snprintf(where, sizeof where, " (%s/%s)", fmt_key(s, sizeof s, obj, "shelter"),
                 fmt_key(u, sizeof u, obj, "unit"));
    const char *ident =
        fmt_ref(id, sizeof id, r, req->op == OP_PLACEMENT_DISCHARGE ? "placement" : "hold");
    if (strcmp(ident, "-") == 0)
        ident = fallback;
    switch (req->op) {
    case OP_HOLD_ACCEPT:
        fprintf(out,
                "Accepted hold %s%s: the household may come; the unit is kept for it until "
                "%s (local time).\n",
                ident, where,
                obj ? fmt_time(place, sizeof place, obj, "expires_at", TIME_MINUTES) : "-");
        break;
    case OP_HOLD_RELEASE:
        fprintf(out, "Released hold %s%s; the unit is free again.\n", ident, where);
        break;
    case OP_HOLD_CONFIRM:
        fprintf(out, "Confirmed hold %s%s: placement %s.\n", ident, where,
                fmt_ref(place, sizeof place, r, "placement"));
        break;
    case OP_HOLD_DECLINE:
        fprintf(out, "Declined hold %s%s; the unit is free again.\n", ident, where);
        break;
    case OP_PLACEMENT_DISCHARGE:
        fprintf(out, "Discharged placement %s%s; the unit is free again.\n", ident, where);
        break;
    default:
        break;
    }
    return 0;
}

/* "2 adults 14m 6f": the household of a hold (the key is not used). */
static const char *fmt_household(char *buf, size_t cap, const msgpack_object *h, const char *key)
{
    (void)key;
    int64_t adults = 0;
    const msgpack_object *kids = get_array(h, "children");
    if (!as_i64(get(h, "adults"), &adults))
        return "-";
    int used = snprintf(buf, cap, "%lld adult%s", (long long)adults, adults == 1 ? "" : "s");
    for (uint32_t i = 0; kids && i < kids->via.array.size && used > 0 && (size_t)used < cap; i++) {
        int64_t age = 0;
        const msgpack_object *sex = get(&kids->via.array.ptr[i], "sex");
        if (!as_i64(get(&kids->via.array.ptr[i], "age"), &age) || !sex ||
            sex->type != MSGPACK_OBJECT_STR || sex->via.str.size != 1)
            continue;
        used += snprintf(buf + used, cap - (size_t)used, " %lld%c", (long long)age,
                         sex->via.str.ptr[0] == 'm' ? 'm' : 'f');
    }
    return buf;
}

/* "wheelchair,pets,language:ar": what a hold's household needs beyond a bed (key unused). */
static const char *fmt_needs(char *buf, size_t cap, const msgpack_object *h, const char *key)
{
    (void)key;
    static const char *const flags[] = {"wheelchair", "pets", "substance"};
    char lang[32];
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        if (is_true(h, flags[i]))
            used += (size_t)snprintf(buf + used, cap - used, "%s%s", used ? "," : "", flags[i]);
    }
    const msgpack_object *g = get(h, "group");
    if (g && g->type == MSGPACK_OBJECT_STR && !proto_str_is(g, "women") && used < cap)
        used += (size_t)snprintf(buf + used, cap - used, "%sgroup:%s", used ? "," : "",
                                 fmt(lang, sizeof lang, g));
    const msgpack_object *l = get(h, "language");
    if (l && l->type == MSGPACK_OBJECT_STR && used < cap)
        used += (size_t)snprintf(buf + used, cap - used, "%slanguage:%s", used ? "," : "",
                                 fmt(lang, sizeof lang, l));
    const msgpack_object *need = get_array(h, "need");
    for (uint32_t i = 0; need && i < need->via.array.size && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", used ? "," : "",
                                 fmt(lang, sizeof lang, &need->via.array.ptr[i]));
    return buf[0] ? buf : "-";
}

static const struct column hold_cols[] = {
    {"HOLD", "hold", fmt_key, false},
    {"SHELTER", "shelter", fmt_key, false},
    {"UNIT", "unit", fmt_key, false},
    {"REF", "ref", fmt_key, false},
    {"MUNICIPALITY", "municipality", fmt_muni, false},
    {"BY", "by", fmt_key, false},
    {"STATE", "state", fmt_key, false},
    {"RISK", "risk", fmt_key, false},
    {"HOUSEHOLD", NULL, fmt_household, false},
    {"NEEDS", NULL, fmt_needs, false},
    {"CALLBACK", "callback", fmt_key, false},
    {"CREATED", "created_at", fmt_minutes, false},
    {"EXPIRES", "expires_at", fmt_minutes, false},
    {"CLOSED", "closed_at", fmt_minutes, false},
};
static const struct listing holds = {"holds", "No holds.", NCOLS(hold_cols), hold_cols};

static const struct column placement_cols[] = {
    {"PLACEMENT", "placement", fmt_key, false},
    {"HOLD", "hold", fmt_key, false},
    {"SHELTER", "shelter", fmt_key, false},
    {"UNIT", "unit", fmt_key, false},
    {"REF", "ref", fmt_key, false},
    {"MUNICIPALITY", "municipality", fmt_muni, false},
    {"BY", "by", fmt_key, false},
    {"STATE", "state", fmt_key, false},
    {"CHILDREN", NULL, fmt_children_bases, false},
    {"PLACED", "placed_at", fmt_minutes, false},
    {"DISCHARGED", "discharged_at", fmt_minutes, false},
};
static const struct listing placements = {"placements", "No placements.", NCOLS(placement_cols),
                                          placement_cols};

/* ---- standing searches and events ----------------------------------------------------------- */

static const struct column standing_cols[] = {
    {"STANDING", "standing", fmt_key, false},
    {"FOR", "municipality", fmt_key, false},
    {"REF", "ref", fmt_key, false},
    {"BY", "by", fmt_key, false},
    {"STATE", "state", fmt_key, false},
    {"MATCHES", "matches", fmt_key, true},
    {"CREATED", "created_at", fmt_minutes, false},
    {"UNTIL", "expires_at", fmt_minutes, false},
};
static const struct listing standings = {"standing", "No standing searches.", NCOLS(standing_cols),
                                         standing_cols};

static int print_standing(FILE *out, const struct proto_request *req, const msgpack_object *r)
{
    char id[CELL], until[32];
    const msgpack_object *st = get(r, "standing");
    if (!st || st->type != MSGPACK_OBJECT_MAP) {
        print_tree(out, r, 0, 0);
        return 0;
    }
    if (req->op == OP_STANDING_ADD)
        fprintf(out,
                "Standing search %s registered until %s (local time): a match event comes "
                "when a fitting unit frees up (fristad watch).\n",
                fmt_key(id, sizeof id, st, "standing"),
                fmt_time(until, sizeof until, st, "expires_at", TIME_MINUTES));
    else
        fprintf(out, "Standing search %s is %s.\n", fmt_key(id, sizeof id, st, "standing"),
                fmt_key(until, sizeof until, st, "state"));
    return 0;
}

int human_event(FILE *out, const msgpack_object *e)
{
    static const char *const keys[] = {"shelter",      "unit",  "hold", "placement", "standing",
                                       "municipality", "state", "step", "by"};
    char at[32], type[CELL], v[CELL], seq[CELL];
    fprintf(out, "%s  %-10s", fmt_time(at, sizeof at, e, "at", TIME_SECONDS),
            fmt_key(type, sizeof type, e, "type"));
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const msgpack_object *o = get(e, keys[i]);
        if (o && o->type != MSGPACK_OBJECT_NIL)
            fprintf(out, "  %s=%s", keys[i], fmt(v, sizeof v, o));
    }
    fprintf(out, "  [%s]\n", fmt_key(seq, sizeof seq, e, "seq"));
    return 0;
}

/* ---- administration --------------------------------------------------------------------- */

static const struct column entry_cols[] = {
    {"AT", "at", fmt_seconds, false},     {"PRINCIPAL", "principal", fmt_key, false},
    {"OP", "op", fmt_key, false},         {"TARGET", NULL, fmt_target, false},
    {"RESULT", "result", fmt_key, false},
};
static const struct listing entries = {"entries", "No audit entries.", NCOLS(entry_cols),
                                       entry_cols};

/* The municipality command's answer, made by the client itself. */
static const struct column place_cols[] = {
    {"MUNICIPALITY", "municipality", fmt_muni, false},
    {"COUNTY", "county", fmt_county, false},
};
static const struct listing places = {"municipalities", "No municipality.", NCOLS(place_cols),
                                      place_cols};

static int print_whoami(FILE *out, const msgpack_object *r)
{
    char role[CELL], id[CELL];
    fprintf(out, "%s %s\n", fmt_key(role, sizeof role, r, "role"), fmt_key(id, sizeof id, r, "id"));
    return 0;
}

int human_print(FILE *out, const struct proto_request *req, const msgpack_object *result)
{
    if (result->type != MSGPACK_OBJECT_MAP) {
        print_tree(out, result, 0, 0);
        return 0;
    }
    switch (req->op) {
    case OP_SHELTER_ADD:
    case OP_SHELTER_UPDATE:
    case OP_SHELTER_RETIRE:
    case OP_UNIT_ADD:
    case OP_UNIT_UPDATE:
    case OP_UNIT_REMOVE:
    case OP_VACANCY_SET:
    case OP_VACANCY_CONFIRM:
    case OP_INTAKE_PAUSE:
    case OP_INTAKE_RESUME:
        return print_write(out, req, result);
    case OP_SHELTER_SHOW: {
        const msgpack_object *s = get(result, "shelter");
        if (s && s->type == MSGPACK_OBJECT_MAP)
            return print_shelter(out, s);
        break;
    }
    case OP_SHELTER_LIST:
        return print_listing(out, result, &shelters);
    case OP_FREE:
        return print_listing(out, result, &free_units);
    case OP_SEARCH:
        return print_search(out, result);
    case OP_HOLD:
        return print_hold(out, req, result);
    case OP_HOLD_ACCEPT:
    case OP_HOLD_RELEASE:
    case OP_HOLD_CONFIRM:
    case OP_HOLD_DECLINE:
    case OP_PLACEMENT_DISCHARGE:
        return print_closing(out, req, result);
    case OP_HOLDS_LIST:
        return print_listing(out, result, &holds);
    case OP_PLACEMENTS_LIST:
        return print_listing(out, result, &placements);
    case OP_AUDIT:
        return print_listing(out, result, &entries);
    case OP_WHOAMI:
        return print_whoami(out, result);
    case OP_STANDING_ADD:
    case OP_STANDING_CANCEL:
        return print_standing(out, req, result);
    case OP_STANDING_LIST:
        return print_listing(out, result, &standings);
    case OP_FOLLOWUP:
        return report_followup_table(out, result) == 0 ? 0 : (print_tree(out, result, 0, 0), 0);
    case OP_DIRECTORY: /* the export is the file itself, for people as for scripts */
        return hsds_write(out, result) == 0 ? 0 : (print_tree(out, result, 0, 0), 0);
    case CLI_LOCAL:
        return print_listing(out, result, &places);
    case OP_WATCH:
    case OP_STATS:
        break;
    }
    if (result->via.map.size == 0)
        fprintf(out, "The server sent no details.\n");
    print_tree(out, result, 0, 0);
    return 0;
}

void human_clean_message(char *buf, size_t cap, const char *message)
{
    table_clean(buf, cap, message, strlen(message));
}
