/*
 * Unit tests of libfristad-proto against proto/PROTOCOL.md: framing, the structural pre-check,
 * request decoding and packing, the hostile-input table (tests/hostile/frames.tsv), the text
 * and privacy checks, reference data and replies.
 *
 * Data files are found under FRISTAD_SOURCE_ROOT (environment first, then the value meson
 * compiled in). Every input given to the library is copied into a heap block of its exact size,
 * so that a read past the end shows up under ASan and valgrind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fristad/proto.h>

#include "../fuzz/request_eq.h"

#ifndef FRISTAD_SOURCE_ROOT
#define FRISTAD_SOURCE_ROOT "."
#endif

/* Under -fsanitize=undefined, a report fails the test instead of scrolling by. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1";
}

/* ---- helpers -------------------------------------------------------------------------------- */

static const char *source_root(void)
{
    const char *env = getenv("FRISTAD_SOURCE_ROOT");
    return env && *env ? env : FRISTAD_SOURCE_ROOT;
}

static char *read_file(const char *rel, size_t *size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", source_root(), rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (set FRISTAD_SOURCE_ROOT to the source tree)", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len >= 0);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    buf[len] = '\0';
    if (size)
        *size = (size_t)len;
    return buf;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Exact-size heap copy of the bytes a hex string spells. */
static uint8_t *unhex(const char *hex, size_t *n)
{
    size_t len = strlen(hex);
    assert_int_equal(len % 2, 0);
    uint8_t *out = malloc(len / 2 ? len / 2 : 1);
    assert_non_null(out);
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            fail_msg("bad hex digit in \"%.40s\"", hex);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *n = len / 2;
    return out;
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *out = malloc(n ? n : 1);
    assert_non_null(out);
    if (n)
        memcpy(out, p, n);
    return out;
}

/* A tab-separated table: '#' lines are comments, the first other line names the columns. */
#define TSV_MAX_COLS 8
struct tsv {
    char *text;
    size_t rows;
    char *(*cell)[TSV_MAX_COLS];
};

static void tsv_load(struct tsv *t, const char *rel, const char *header, unsigned ncols)
{
    t->text = read_file(rel, NULL);
    size_t lines = 1;
    for (const char *c = t->text; *c; c++)
        lines += *c == '\n';
    t->cell = calloc(lines, sizeof *t->cell);
    assert_non_null(t->cell);
    t->rows = 0;
    bool seen_header = false;
    char *save = NULL;
    for (char *line = strtok_r(t->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        if (!seen_header) {
            if (strcmp(line, header) != 0)
                fail_msg("%s: header is \"%s\", expected \"%s\"", rel, line, header);
            seen_header = true;
            continue;
        }
        char **cols = t->cell[t->rows];
        unsigned n = 0;
        char *p = line;
        for (;;) {
            if (n == TSV_MAX_COLS)
                fail_msg("%s: too many columns", rel);
            cols[n++] = p;
            char *tab = strchr(p, '\t');
            if (!tab)
                break;
            *tab = '\0';
            p = tab + 1;
        }
        if (n != ncols)
            fail_msg("%s: row %zu has %u columns, expected %u", rel, t->rows + 1, n, ncols);
        t->rows++;
    }
    assert_true(seen_header);
}

static void tsv_free(struct tsv *t)
{
    free(t->cell);
    free(t->text);
}

struct buf {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

static void buf_init(struct buf *b)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

static void buf_free(struct buf *b)
{
    msgpack_sbuffer_destroy(&b->sb);
}

/* Decodes from an exact-size heap copy. */
static enum proto_err decode(const void *p, size_t n, struct proto_request *out,
                             struct proto_error *err)
{
    uint8_t *copy = dup_bytes(p, n);
    enum proto_err e = proto_decode_request(copy, n, out, err);
    free(copy);
    return e;
}

static enum proto_err check(const void *p, size_t n)
{
    uint8_t *copy = dup_bytes(p, n);
    struct proto_error err;
    enum proto_err e = proto_check(copy, n, &err);
    free(copy);
    return e;
}

static bool is_digit_char(char c)
{
    return c >= '0' && c <= '9';
}

/* Longest run of ASCII digits in s: error messages must not echo identity numbers. */
static size_t longest_digit_run(const char *s)
{
    size_t best = 0, run = 0;
    for (; *s; s++) {
        run = is_digit_char(*s) ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

/* ---- requests for the round trips ---------------------------------------------------------- */

static const char *const languages16[PROTO_MAX_LANGUAGES] = {"sv", "en", "ar", "fa", "so", "ti",
                                                             "ku", "fi", "pl", "ru", "uk", "es",
                                                             "de", "fr", "tr", "bos"};

/* Every field the op allows, with values at or near the top of their ranges. */
static void fill_max(struct proto_request *r, enum proto_op op, uint64_t id)
{
    memset(r, 0, sizeof *r);
    r->id = id;
    r->has_id = true;
    r->op = op;
    struct proto_args *a = &r->args;
    a->present = proto_op_allowed(op);
    strcpy(a->shelter, "frida-sthlm_2.x");
    strcpy(a->unit, "Rum-12B");
    strcpy(a->name, "Kvinnojouren Frida \xe2\x80\x93 S\xc3\xb6"
                    "der \xe2\x9c\x93 \xf0\x9f\x98\x80");
    a->kind = KIND_SKYDDAT_BOENDE;
    strcpy(a->municipality, "0180");
    a->protection = 3;
    strcpy(a->phone, "+46 8-123 456 78");
    a->groups = 1u << GROUP_WOMEN | 1u << GROUP_YOUTH;
    a->max_children = 20;
    a->boys_max_age = 17;
    a->pets = true;
    a->substance = true;
    a->n_languages = PROTO_MAX_LANGUAGES;
    for (unsigned i = 0; i < PROTO_MAX_LANGUAGES; i++)
        strcpy(a->languages[i], languages16[i]);
    a->beds = PROTO_MAX_BEDS;
    a->accessible = true;
    a->state = VAC_CLOSED;
    strcpy(a->county, "01");
    strcpy(a->home, "2580");
    a->risk = RISK_SEVERE;
    a->adults = PROTO_MAX_ADULTS;
    a->n_children = PROTO_MAX_CHILDREN;
    for (unsigned i = 0; i < PROTO_MAX_CHILDREN; i++) {
        a->children[i].age = (uint8_t)(i * 3 % 18);
        a->children[i].sex = i % 2 ? 'm' : 'f';
    }
    a->children[PROTO_MAX_CHILDREN - 1].age = 17;
    a->group = GROUP_HBTQI;
    a->wheelchair = true;
    strcpy(a->language, "fas");
    a->n_perpetrator = PROTO_MAX_PERP;
    for (unsigned i = 0; i < PROTO_MAX_PERP; i++)
        strcpy(a->perpetrator[i], proto_municipality_code(i * 29));
    a->n_exclude = PROTO_MAX_EXCLUDE;
    for (unsigned i = 0; i < PROTO_MAX_EXCLUDE; i++)
        strcpy(a->exclude[i], proto_municipality_code(i * 5 + 1));
    a->limit = PROTO_MAX_LIMIT;
    strcpy(a->ref, "case/2024:A-42.b_c");
    strcpy(a->idempotency_key, "key-abcdefgh-01");
    strcpy(a->hold, "h-abc123");
    strcpy(a->placement, "p:xyz/789");
    strcpy(a->reason,
           "Ingen plats f\xc3\xb6r husdjur \xe2\x80\x93 \xc3\xa5ter p\xc3\xa5 m\xc3\xa5ndag");
    a->since = INT64_MAX;
    strcpy(a->principal, "oncall:socialjouren-sthlm");
}

/* Every field the op allows, with values at the bottom of their ranges. */
static void fill_min(struct proto_request *r, enum proto_op op, uint64_t id)
{
    memset(r, 0, sizeof *r);
    r->id = id;
    r->has_id = true;
    r->op = op;
    struct proto_args *a = &r->args;
    a->present = proto_op_allowed(op);
    strcpy(a->shelter, "a");
    strcpy(a->unit, "1");
    strcpy(a->name, "\xc3\x84");
    a->kind = KIND_OTHER;
    strcpy(a->municipality, "2584");
    a->protection = 1;
    strcpy(a->phone, "12345");
    a->groups = (1u << GROUP__COUNT) - 1;
    strcpy(a->county, "25");
    strcpy(a->home, "0114");
    a->risk = RISK_LOW;
    a->adults = 1;
    a->group = GROUP_WOMEN;
    strcpy(a->language, "sv");
    a->beds = 1;
    a->limit = 1;
    a->state = VAC_FREE;
    strcpy(a->ref, "r");
    strcpy(a->idempotency_key, "12345678");
    strcpy(a->hold, "h");
    strcpy(a->placement, "p");
    strcpy(a->reason, "x");
    a->since = 0;
    strcpy(a->principal, "admin:a");
}

static void pack_request(struct buf *b, const struct proto_request *r)
{
    buf_init(b);
    assert_int_equal(proto_pack_request(&b->pk, r), 0);
}

static void assert_round_trip(const struct proto_request *r)
{
    struct proto_error err;
    if (proto_validate_request(r, &err) != PROTO_OK)
        fail_msg("%s: validate: %s", proto_op_name(r->op), err.message);
    struct buf b;
    pack_request(&b, r);
    struct proto_request *back = malloc(sizeof *back);
    assert_non_null(back);
    if (decode(b.sb.data, b.sb.size, back, &err) != PROTO_OK)
        fail_msg("%s: decode: %s", proto_op_name(r->op), err.message);
    assert_int_equal(err.code, PROTO_OK);
    const char *diff = request_diff(r, back);
    if (diff)
        fail_msg("%s: '%s' changed in the round trip", proto_op_name(r->op), diff);

    /* The packed document itself: a map of id, op and args, with one key per present field. */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(proto_unpack((const uint8_t *)b.sb.data, b.sb.size, &u, &err), PROTO_OK);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(u.data.via.map.size, 3);
    const msgpack_object *op = proto_map_get(&u.data, "op");
    assert_non_null(op);
    assert_int_equal(op->type, MSGPACK_OBJECT_STR);
    assert_int_equal(op->via.str.size, strlen(proto_op_name(r->op)));
    assert_memory_equal(op->via.str.ptr, proto_op_name(r->op), op->via.str.size);
    const msgpack_object *args = proto_map_get(&u.data, "args");
    assert_non_null(args);
    assert_int_equal(args->via.map.size, (unsigned)__builtin_popcountll(r->args.present));
    msgpack_unpacked_destroy(&u);
    free(back);
    buf_free(&b);
}

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
}

/* Section 4 and 5 of PROTOCOL.md, written out independently of the library's tables. */
static void test_op_and_field_tables(void **state)
{
    (void)state;
    static const char *const field_names[F__COUNT] = {
        [F_SHELTER] = "shelter",
        [F_UNIT] = "unit",
        [F_NAME] = "name",
        [F_KIND] = "kind",
        [F_MUNICIPALITY] = "municipality",
        [F_PROTECTION] = "protection",
        [F_PHONE] = "phone",
        [F_GROUPS] = "groups",
        [F_MAX_CHILDREN] = "max_children",
        [F_BOYS_MAX_AGE] = "boys_max_age",
        [F_PETS] = "pets",
        [F_SUBSTANCE] = "substance",
        [F_LANGUAGES] = "languages",
        [F_BEDS] = "beds",
        [F_ACCESSIBLE] = "accessible",
        [F_STATE] = "state",
        [F_COUNTY] = "county",
        [F_HOME] = "home",
        [F_RISK] = "risk",
        [F_ADULTS] = "adults",
        [F_CHILDREN] = "children",
        [F_GROUP] = "group",
        [F_WHEELCHAIR] = "wheelchair",
        [F_LANGUAGE] = "language",
        [F_PERPETRATOR] = "perpetrator",
        [F_EXCLUDE] = "exclude",
        [F_LIMIT] = "limit",
        [F_REF] = "ref",
        [F_IDEMPOTENCY_KEY] = "idempotency_key",
        [F_HOLD] = "hold",
        [F_PLACEMENT] = "placement",
        [F_REASON] = "reason",
        [F_SINCE] = "since",
        [F_PRINCIPAL] = "principal",
    };
    for (unsigned f = 0; f < F__COUNT; f++)
        assert_string_equal(proto_field_name((enum proto_field)f), field_names[f]);
    assert_string_equal(proto_field_name(F__COUNT), "?");

#define B(f) PROTO_BIT(F_##f)
    const uint64_t profile = B(NAME) | B(KIND) | B(MUNICIPALITY) | B(PROTECTION) | B(PHONE) |
                             B(GROUPS) | B(MAX_CHILDREN) | B(BOYS_MAX_AGE) | B(PETS) |
                             B(SUBSTANCE) | B(LANGUAGES);
    static const struct {
        const char *name;
        bool writes;
    } names[OP__COUNT] = {
        [OP_SHELTER_ADD] = {"shelter.add", true},
        [OP_SHELTER_UPDATE] = {"shelter.update", true},
        [OP_SHELTER_RETIRE] = {"shelter.retire", true},
        [OP_SHELTER_SHOW] = {"shelter.show", false},
        [OP_SHELTER_LIST] = {"shelter.list", false},
        [OP_UNIT_ADD] = {"unit.add", true},
        [OP_UNIT_UPDATE] = {"unit.update", true},
        [OP_UNIT_REMOVE] = {"unit.remove", true},
        [OP_VACANCY_SET] = {"vacancy.set", true},
        [OP_VACANCY_CONFIRM] = {"vacancy.confirm", true},
        [OP_INTAKE_PAUSE] = {"intake.pause", true},
        [OP_INTAKE_RESUME] = {"intake.resume", true},
        [OP_FREE] = {"free", false},
        [OP_SEARCH] = {"search", false},
        [OP_HOLD] = {"hold", true},
        [OP_HOLD_RELEASE] = {"hold.release", true},
        [OP_HOLD_CONFIRM] = {"hold.confirm", true},
        [OP_HOLD_DECLINE] = {"hold.decline", true},
        [OP_PLACEMENT_DISCHARGE] = {"placement.discharge", true},
        [OP_HOLDS_LIST] = {"holds.list", false},
        [OP_PLACEMENTS_LIST] = {"placements.list", false},
        [OP_AUDIT] = {"audit", false},
        [OP_STATS] = {"stats", false},
        [OP_WHOAMI] = {"whoami", false},
    };
    const uint64_t required[OP__COUNT] = {
        [OP_SHELTER_ADD] =
            B(SHELTER) | B(NAME) | B(KIND) | B(MUNICIPALITY) | B(PROTECTION) | B(PHONE),
        [OP_SHELTER_UPDATE] = B(SHELTER),
        [OP_SHELTER_RETIRE] = B(SHELTER),
        [OP_SHELTER_SHOW] = B(SHELTER),
        [OP_UNIT_ADD] = B(SHELTER) | B(UNIT) | B(BEDS),
        [OP_UNIT_UPDATE] = B(SHELTER) | B(UNIT),
        [OP_UNIT_REMOVE] = B(SHELTER) | B(UNIT),
        [OP_VACANCY_SET] = B(SHELTER) | B(UNIT) | B(STATE),
        [OP_VACANCY_CONFIRM] = B(SHELTER),
        [OP_INTAKE_PAUSE] = B(SHELTER),
        [OP_INTAKE_RESUME] = B(SHELTER),
        [OP_SEARCH] = B(HOME) | B(RISK),
        [OP_HOLD] = B(SHELTER) | B(UNIT) | B(REF),
        [OP_HOLD_RELEASE] = B(HOLD),
        [OP_HOLD_CONFIRM] = B(HOLD),
        [OP_HOLD_DECLINE] = B(HOLD) | B(REASON),
        [OP_PLACEMENT_DISCHARGE] = B(PLACEMENT),
    };
    const uint64_t allowed[OP__COUNT] = {
        [OP_SHELTER_ADD] = B(SHELTER) | profile,
        [OP_SHELTER_UPDATE] = B(SHELTER) | profile,
        [OP_SHELTER_RETIRE] = B(SHELTER),
        [OP_SHELTER_SHOW] = B(SHELTER),
        [OP_SHELTER_LIST] = B(COUNTY) | B(MUNICIPALITY),
        [OP_UNIT_ADD] = B(SHELTER) | B(UNIT) | B(BEDS) | B(ACCESSIBLE),
        [OP_UNIT_UPDATE] = B(SHELTER) | B(UNIT) | B(BEDS) | B(ACCESSIBLE),
        [OP_UNIT_REMOVE] = B(SHELTER) | B(UNIT),
        [OP_VACANCY_SET] = B(SHELTER) | B(UNIT) | B(STATE),
        [OP_VACANCY_CONFIRM] = B(SHELTER),
        [OP_INTAKE_PAUSE] = B(SHELTER),
        [OP_INTAKE_RESUME] = B(SHELTER),
        [OP_FREE] = B(COUNTY) | B(MUNICIPALITY),
        [OP_SEARCH] = B(HOME) | B(RISK) | B(ADULTS) | B(CHILDREN) | B(GROUP) | B(WHEELCHAIR) |
                      B(PETS) | B(SUBSTANCE) | B(LANGUAGE) | B(PERPETRATOR) | B(EXCLUDE) | B(LIMIT),
        [OP_HOLD] = B(SHELTER) | B(UNIT) | B(REF) | B(IDEMPOTENCY_KEY) | B(MUNICIPALITY),
        [OP_HOLD_RELEASE] = B(HOLD),
        [OP_HOLD_CONFIRM] = B(HOLD),
        [OP_HOLD_DECLINE] = B(HOLD) | B(REASON),
        [OP_PLACEMENT_DISCHARGE] = B(PLACEMENT),
        [OP_AUDIT] = B(SINCE) | B(PRINCIPAL) | B(SHELTER) | B(LIMIT),
    };
#undef B
    for (unsigned op = 0; op < OP__COUNT; op++) {
        const char *name = proto_op_name((enum proto_op)op);
        assert_string_equal(name, names[op].name);
        assert_int_equal(proto_op_parse(name, strlen(name)), (int)op);
        assert_int_equal(proto_op_parse(name, strlen(name) - 1) == (int)op, false);
        if (proto_op_writes((enum proto_op)op) != names[op].writes)
            fail_msg("%s: writes", name);
        if (proto_op_required((enum proto_op)op) != required[op])
            fail_msg("%s: required fields differ from PROTOCOL.md", name);
        if (proto_op_allowed((enum proto_op)op) != allowed[op])
            fail_msg("%s: allowed fields differ from PROTOCOL.md", name);
    }
    assert_string_equal(proto_op_name(OP__COUNT), "?");
    assert_false(proto_op_writes(OP__COUNT));
    assert_int_equal(proto_op_allowed(OP__COUNT), 0);
    assert_int_equal(proto_op_required(OP__COUNT), 0);
    assert_int_equal(proto_op_parse("hold.", 5), -1);
    assert_int_equal(proto_op_parse("", 0), -1);
}

/* ---- framing ------------------------------------------------------------------------------- */

static void test_frame_header(void **state)
{
    (void)state;
    static const struct {
        uint32_t len;
        uint8_t bytes[4];
    } cases[] = {
        {0, {0, 0, 0, 0}},
        {1, {0, 0, 0, 1}},
        {255, {0, 0, 0, 0xff}},
        {256, {0, 0, 1, 0}},
        {65536, {0, 1, 0, 0}},
        {0x01020304, {1, 2, 3, 4}},
        {0xfffffffe, {0xff, 0xff, 0xff, 0xfe}},
        {UINT32_MAX, {0xff, 0xff, 0xff, 0xff}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t out[PROTO_HEADER_LEN + 1];
        memset(out, 0xaa, sizeof out);
        proto_frame_put_header(out, cases[i].len);
        assert_memory_equal(out, cases[i].bytes, 4);
        assert_int_equal(out[4], 0xaa);
        uint32_t len = 12345;
        enum proto_frame_status st = proto_frame_peek(out, 4, UINT32_MAX, &len);
        assert_int_equal(len, cases[i].len);
        assert_int_equal(st, cases[i].len == 0 ? PROTO_FRAME_BAD_LENGTH : PROTO_FRAME_NEED_MORE);
    }
}

static void test_frame_peek(void **state)
{
    (void)state;
    enum { BODY = 10 };
    uint8_t stream[PROTO_HEADER_LEN + BODY + 1];
    proto_frame_put_header(stream, BODY);
    memset(stream + 4, 0x5a, sizeof stream - 4);
    for (size_t avail = 0; avail <= sizeof stream; avail++) {
        uint8_t *copy = dup_bytes(stream, avail);
        uint32_t len = 0xdeadbeef;
        enum proto_frame_status st = proto_frame_peek(copy, avail, PROTO_DEFAULT_MAX_FRAME, &len);
        if (avail < PROTO_HEADER_LEN) {
            assert_int_equal(st, PROTO_FRAME_NEED_MORE);
            assert_int_equal(len, 0xdeadbeef); /* untouched without a whole header */
        } else if (avail < PROTO_HEADER_LEN + BODY) {
            assert_int_equal(st, PROTO_FRAME_NEED_MORE);
            assert_int_equal(len, BODY);
        } else {
            assert_int_equal(st, PROTO_FRAME_READY); /* exact, and with a byte to spare */
            assert_int_equal(len, BODY);
        }
        free(copy);
    }

    uint8_t h[4];
    uint32_t len;
    proto_frame_put_header(h, 0);
    len = 7;
    assert_int_equal(proto_frame_peek(h, 4, PROTO_DEFAULT_MAX_FRAME, &len), PROTO_FRAME_BAD_LENGTH);
    assert_int_equal(len, 0);

    /* The length limit is decided on the header alone, before any body arrives. */
    proto_frame_put_header(h, PROTO_DEFAULT_MAX_FRAME);
    assert_int_equal(proto_frame_peek(h, 4, PROTO_DEFAULT_MAX_FRAME, &len), PROTO_FRAME_NEED_MORE);
    proto_frame_put_header(h, PROTO_DEFAULT_MAX_FRAME + 1);
    assert_int_equal(proto_frame_peek(h, 4, PROTO_DEFAULT_MAX_FRAME, &len), PROTO_FRAME_TOO_LARGE);
    assert_int_equal(len, PROTO_DEFAULT_MAX_FRAME + 1);
    proto_frame_put_header(h, UINT32_MAX);
    assert_int_equal(proto_frame_peek(h, 4, PROTO_MAX_MAX_FRAME, &len), PROTO_FRAME_TOO_LARGE);
    proto_frame_put_header(h, PROTO_MIN_MAX_FRAME + 1);
    assert_int_equal(proto_frame_peek(h, 4, PROTO_MIN_MAX_FRAME, &len), PROTO_FRAME_TOO_LARGE);
    proto_frame_put_header(h, 1);
    assert_int_equal(proto_frame_peek(h, 4, PROTO_MIN_MAX_FRAME, &len), PROTO_FRAME_NEED_MORE);

    /* A large frame, complete. */
    size_t big = PROTO_DEFAULT_MAX_FRAME;
    uint8_t *whole = calloc(1, big + 4);
    assert_non_null(whole);
    proto_frame_put_header(whole, (uint32_t)big);
    assert_int_equal(proto_frame_peek(whole, big + 3, PROTO_DEFAULT_MAX_FRAME, &len),
                     PROTO_FRAME_NEED_MORE);
    assert_int_equal(proto_frame_peek(whole, big + 4, PROTO_DEFAULT_MAX_FRAME, &len),
                     PROTO_FRAME_READY);
    free(whole);

    assert_true(PROTO_MIN_MAX_FRAME <= PROTO_DEFAULT_MAX_FRAME);
    assert_true(PROTO_DEFAULT_MAX_FRAME <= PROTO_MAX_MAX_FRAME);
    assert_int_equal(PROTO_DEFAULT_MAX_FRAME, 65536);
}

/* ---- the structural pre-check -------------------------------------------------------------- */

/* d nested arrays of one element, around `leaf` (bytes). */
static size_t nest(uint8_t *out, unsigned d, const uint8_t *leaf, size_t leaf_len)
{
    for (unsigned i = 0; i < d; i++)
        out[i] = 0x91;
    memcpy(out + d, leaf, leaf_len);
    return d + leaf_len;
}

static void test_check_depth(void **state)
{
    (void)state;
    uint8_t b[32];
    static const uint8_t nil[] = {0xc0}, empty_array[] = {0x90}, empty_map[] = {0x80},
                         empty_str[] = {0xa0};
    /* Depth counts containers: 4 nested arrays around a scalar are 4 levels. */
    assert_int_equal(check(b, nest(b, 1, nil, 1)), PROTO_OK);
    assert_int_equal(check(b, nest(b, 4, nil, 1)), PROTO_OK);
    assert_int_equal(check(b, nest(b, 5, nil, 1)), PROTO_E_BAD_FRAME);
    assert_int_equal(check(b, nest(b, 20, nil, 1)), PROTO_E_BAD_FRAME);
    /* An empty container is a level too: [[[[[]]]]] nests 5 deep. */
    assert_int_equal(check(b, nest(b, 3, empty_array, 1)), PROTO_OK);
    assert_int_equal(check(b, nest(b, 3, empty_map, 1)), PROTO_OK);
    assert_int_equal(check(b, nest(b, 4, empty_array, 1)), PROTO_E_BAD_FRAME);
    assert_int_equal(check(b, nest(b, 4, empty_map, 1)), PROTO_E_BAD_FRAME);
    assert_int_equal(check(b, nest(b, 4, empty_str, 1)), PROTO_OK);
    /* Depth through maps: {k: {k: {k: {k: nil}}}} is 4, one more is 5. */
    uint8_t m[40];
    size_t n = 0;
    for (unsigned i = 0; i < 5; i++) {
        m[n++] = 0x81;
        m[n++] = 0xa1;
        m[n++] = 'k';
    }
    m[n++] = 0xc0;
    assert_int_equal(check(m + 3, n - 3), PROTO_OK);
    assert_int_equal(check(m, n), PROTO_E_BAD_FRAME);
    /* Leaving a level makes room again: [[[[1]]], [[[1]]]] */
    static const uint8_t wide[] = {0x92, 0x91, 0x91, 0x91, 0x01, 0x91, 0x91, 0x91, 0x01};
    assert_int_equal(check(wide, sizeof wide), PROTO_OK);
}

static void test_check_counts(void **state)
{
    (void)state;
    uint8_t *b = malloc(16 + 2 * 300);
    assert_non_null(b);
    for (unsigned count = 254; count <= 258; count++) {
        /* array16 of nil */
        b[0] = 0xdc;
        b[1] = (uint8_t)(count >> 8);
        b[2] = (uint8_t)count;
        memset(b + 3, 0xc0, count);
        assert_int_equal(check(b, 3 + count),
                         count <= PROTO_MAX_ITEMS ? PROTO_OK : PROTO_E_BAD_FRAME);
        /* array32 */
        b[0] = 0xdd;
        b[1] = b[2] = 0;
        b[3] = (uint8_t)(count >> 8);
        b[4] = (uint8_t)count;
        memset(b + 5, 0xc0, count);
        assert_int_equal(check(b, 5 + count),
                         count <= PROTO_MAX_ITEMS ? PROTO_OK : PROTO_E_BAD_FRAME);
        /* map16 of count pairs: a map counts pairs, not keys and values */
        b[0] = 0xde;
        b[1] = (uint8_t)(count >> 8);
        b[2] = (uint8_t)count;
        for (unsigned i = 0; i < count; i++) {
            b[3 + 2 * i] = (uint8_t)(i & 0x7f);
            b[4 + 2 * i] = 0xc0;
        }
        assert_int_equal(check(b, 3 + 2 * count),
                         count <= PROTO_MAX_ITEMS ? PROTO_OK : PROTO_E_BAD_FRAME);
    }
    /* A declared count the bytes cannot hold fails before anything is read. */
    static const uint8_t liars[][5] = {
        {0xdd, 0x04, 0x00, 0x00, 0x00}, {0xdd, 0xff, 0xff, 0xff, 0xff},
        {0xdf, 0xff, 0xff, 0xff, 0xff}, {0xdd, 0x00, 0x00, 0x00, 0x05},
        {0xdf, 0x00, 0x00, 0x00, 0x02}, {0xdc, 0x00, 0x03, 0xc0, 0xc0},
        {0xde, 0x00, 0x02, 0xc0, 0xc0}, {0x95, 0xc0, 0xc0, 0xc0, 0xc0},
        {0x83, 0xc0, 0xc0, 0xc0, 0xc0},
    };
    for (size_t i = 0; i < sizeof liars / sizeof liars[0]; i++)
        assert_int_equal(check(liars[i], 5), PROTO_E_BAD_FRAME);
    /* The same headers with exactly enough elements pass. */
    static const uint8_t honest[][5] = {
        {0xdd, 0x00, 0x00, 0x00, 0x00}, {0xdc, 0x00, 0x02, 0xc0, 0xc0},
        {0xde, 0x00, 0x01, 0xc0, 0xc0}, {0x94, 0xc0, 0xc0, 0xc0, 0xc0},
        {0x82, 0xc0, 0xc0, 0xc0, 0xc0},
    };
    static const size_t honest_len[] = {5, 5, 5, 5, 5};
    for (size_t i = 0; i < sizeof honest / sizeof honest[0]; i++)
        assert_int_equal(check(honest[i], honest_len[i]), PROTO_OK);
    free(b);
}

static void test_check_objects(void **state)
{
    (void)state;
    /* A root array of k arrays, each of up to 255 nils: 1 + k + elements objects. */
    for (unsigned total = 4094; total <= 4098; total++) {
        uint8_t *b = malloc(8192);
        assert_non_null(b);
        size_t n = 0;
        unsigned rest = total - 1, arrays = 0;
        n = 3; /* array16 header written below */
        while (rest > 0) {
            unsigned take = rest - 1 < 255 ? rest - 1 : 255;
            b[n++] = 0xdc;
            b[n++] = 0;
            b[n++] = (uint8_t)take;
            memset(b + n, 0xc0, take);
            n += take;
            rest -= take + 1;
            arrays++;
        }
        b[0] = 0xdc;
        b[1] = (uint8_t)(arrays >> 8);
        b[2] = (uint8_t)arrays;
        assert_int_equal(check(b, n), total <= PROTO_MAX_OBJECTS ? PROTO_OK : PROTO_E_BAD_FRAME);
        free(b);
    }
}

static void test_check_types(void **state)
{
    (void)state;
    /* Every first byte alone: only complete one-byte objects pass. */
    for (unsigned b = 0; b < 256; b++) {
        uint8_t one = (uint8_t)b;
        bool complete = b <= 0x7f || b >= 0xe0 || b == 0x80 || b == 0x90 || b == 0xa0 ||
                        b == 0xc0 || b == 0xc2 || b == 0xc3;
        if (check(&one, 1) != (complete ? PROTO_OK : PROTO_E_BAD_FRAME))
            fail_msg("byte 0x%02x alone", b);
    }
    /* Fixed-width scalars: exact payload passes, one byte short fails, one over trails. */
    static const struct {
        uint8_t type;
        unsigned width;
    } fixed[] = {{0xcc, 1}, {0xcd, 2}, {0xce, 4}, {0xcf, 8}, {0xd0, 1},
                 {0xd1, 2}, {0xd2, 4}, {0xd3, 8}, {0xca, 4}, {0xcb, 8}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        uint8_t b[10] = {fixed[i].type};
        assert_int_equal(check(b, 1 + fixed[i].width), PROTO_OK);
        assert_int_equal(check(b, fixed[i].width), PROTO_E_BAD_FRAME);
        assert_int_equal(check(b, 2 + fixed[i].width), PROTO_E_BAD_FRAME);
    }
    /* Strings and bins of every header width. */
    static const struct {
        uint8_t type;
        unsigned hdr;
    } var[] = {{0xd9, 1}, {0xda, 2}, {0xdb, 4}, {0xc4, 1}, {0xc5, 2}, {0xc6, 4}};
    for (size_t i = 0; i < sizeof var / sizeof var[0]; i++) {
        uint8_t b[1 + 4 + 3] = {var[i].type};
        b[var[i].hdr] = 3; /* big-endian length 3 */
        memcpy(b + 1 + var[i].hdr, "abc", 3);
        size_t whole = 1 + var[i].hdr + 3;
        assert_int_equal(check(b, whole), PROTO_OK);
        for (size_t cut = 0; cut < whole; cut++)
            assert_int_equal(check(b, cut), PROTO_E_BAD_FRAME);
    }
    /* Extension types, anywhere, and the reserved byte. */
    static const uint8_t ext[][8] = {
        {0xd4, 1, 0},
        {0xd5, 1, 0, 0},
        {0xd6, 1, 0, 0, 0, 0},
        {0xc7, 1, 1, 0},
        {0xc8, 0, 1, 1, 0},
        {0xc9, 0, 0, 0, 1, 1, 0},
        {0x91, 0xd4, 1, 0},
        {0x81, 0xa1, 'k', 0xc7, 0, 1},
        {0xc1},
        {0x91, 0xc1},
        {0x81, 0xc1, 0xc0},
    };
    static const size_t ext_len[] = {3, 4, 6, 4, 5, 7, 4, 6, 1, 2, 3};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        assert_int_equal(check(ext[i], ext_len[i]), PROTO_E_BAD_FRAME);
    uint8_t fixext16[18] = {0xd8, 1};
    assert_int_equal(check(fixext16, sizeof fixext16), PROTO_E_BAD_FRAME);
    uint8_t fixext8[10] = {0xd7, 1};
    assert_int_equal(check(fixext8, sizeof fixext8), PROTO_E_BAD_FRAME);

    /* One object and nothing after it. */
    static const uint8_t two[] = {0xc0, 0xc0};
    assert_int_equal(check(two, 2), PROTO_E_BAD_FRAME);
    static const uint8_t map_then_byte[] = {0x81, 0x01, 0x02, 0x00};
    assert_int_equal(check(map_then_byte, 4), PROTO_E_BAD_FRAME);
    assert_int_equal(check(map_then_byte, 3), PROTO_OK);
    assert_int_equal(check("", 0), PROTO_E_BAD_FRAME);

    struct proto_error err;
    memset(&err, 0, sizeof err);
    static const uint8_t bomb[] = {0xdd, 0x04, 0x00, 0x00, 0x00};
    assert_int_equal(proto_check(bomb, sizeof bomb, &err), PROTO_E_BAD_FRAME);
    assert_int_equal(err.code, PROTO_E_BAD_FRAME);
    assert_true(strlen(err.message) > 0);
    assert_int_equal(proto_check(bomb, sizeof bomb, NULL), PROTO_E_BAD_FRAME);
}

static void test_unpack(void **state)
{
    (void)state;
    static const uint8_t doc[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x92, 0xc3, 0xa0};
    uint8_t *p = dup_bytes(doc, sizeof doc);
    msgpack_unpacked u;
    struct proto_error err;
    msgpack_unpacked_init(&u);
    assert_int_equal(proto_unpack(p, sizeof doc, &u, &err), PROTO_OK);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    const msgpack_object *a = proto_map_get(&u.data, "a");
    assert_non_null(a);
    assert_int_equal(a->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(a->via.u64, 1);
    const msgpack_object *b = proto_map_get(&u.data, "b");
    assert_non_null(b);
    assert_int_equal(b->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(b->via.array.size, 2);
    assert_null(proto_map_get(&u.data, "c"));
    assert_null(proto_map_get(&u.data, ""));
    assert_null(proto_map_get(b, "a"));
    assert_null(proto_map_get(NULL, "a"));
    msgpack_unpacked_destroy(&u);

    msgpack_unpacked_init(&u);
    assert_int_equal(proto_unpack(p, sizeof doc - 1, &u, &err), PROTO_E_BAD_FRAME);
    msgpack_unpacked_destroy(&u);
    free(p);

    /* A non-string key is skipped by proto_map_get, a string key after it is found. */
    static const uint8_t mixed[] = {0x82, 0x01, 0x02, 0xa1, 'x', 0x03};
    msgpack_unpacked_init(&u);
    assert_int_equal(proto_unpack(mixed, sizeof mixed, &u, &err), PROTO_OK);
    const msgpack_object *x = proto_map_get(&u.data, "x");
    assert_non_null(x);
    assert_int_equal(x->via.u64, 3);
    msgpack_unpacked_destroy(&u);
}

/* ---- requests ------------------------------------------------------------------------------ */

static void test_round_trip_every_op(void **state)
{
    (void)state;
    struct proto_request *r = malloc(sizeof *r);
    assert_non_null(r);
    for (unsigned op = 0; op < OP__COUNT; op++) {
        fill_max(r, (enum proto_op)op, 1000 + op);
        assert_round_trip(r);
        fill_min(r, (enum proto_op)op, op);
        assert_round_trip(r);
        /* Only the required fields. */
        fill_max(r, (enum proto_op)op, UINT64_MAX - op);
        r->args.present = proto_op_required((enum proto_op)op);
        if (op == OP_SHELTER_UPDATE || op == OP_UNIT_UPDATE)
            r->args.present |= PROTO_BIT(op == OP_UNIT_UPDATE ? F_BEDS : F_PETS);
        assert_round_trip(r);
    }
    free(r);
}

static void test_round_trip_values(void **state)
{
    (void)state;
    struct proto_request *r = malloc(sizeof *r);
    assert_non_null(r);

    /* Names of exactly 100 characters of every UTF-8 width; reasons of 200. */
    static const char *const chars[] = {"a", "\xc3\xa5", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t c = 0; c < 4; c++) {
        fill_max(r, OP_SHELTER_ADD, 7);
        r->args.name[0] = '\0';
        for (unsigned i = 0; i < PROTO_NAME_MAX; i++)
            strcat(r->args.name, chars[c]);
        assert_round_trip(r);
        fill_max(r, OP_HOLD_DECLINE, 8);
        r->args.reason[0] = '\0';
        for (unsigned i = 0; i < PROTO_REASON_MAX; i++)
            strcat(r->args.reason, chars[c]);
        assert_round_trip(r);
    }
    /* Ids and tokens at their longest. */
    fill_max(r, OP_HOLD, 9);
    memset(r->args.shelter, 'S', PROTO_ID_MAX);
    r->args.shelter[PROTO_ID_MAX] = '\0';
    memset(r->args.unit, '9', PROTO_ID_MAX);
    r->args.unit[PROTO_ID_MAX] = '\0';
    memset(r->args.ref, 'r', PROTO_TOKEN_MAX);
    r->args.ref[PROTO_TOKEN_MAX] = '\0';
    memset(r->args.idempotency_key, 'k', PROTO_TOKEN_MAX);
    r->args.idempotency_key[PROTO_TOKEN_MAX] = '\0';
    assert_round_trip(r);
    /* Every enumeration value. */
    for (unsigned k = 0; k < KIND__COUNT; k++) {
        fill_max(r, OP_SHELTER_ADD, k);
        r->args.kind = (uint8_t)k;
        r->args.groups = (uint8_t)(1u << (k % GROUP__COUNT));
        assert_round_trip(r);
    }
    for (unsigned s = 0; s < VAC__COUNT; s++) {
        fill_max(r, OP_VACANCY_SET, s);
        r->args.state = (uint8_t)s;
        assert_round_trip(r);
    }
    for (unsigned k = 0; k < RISK__COUNT; k++) {
        fill_max(r, OP_SEARCH, k);
        r->args.risk = (uint8_t)k;
        r->args.group = (uint8_t)(k % GROUP__COUNT);
        r->args.n_children = (uint8_t)k;
        assert_round_trip(r);
    }
    /* All 290 municipalities as a home; ids across the integer widths. */
    for (unsigned i = 0; i < PROTO_MUNICIPALITIES; i++) {
        fill_min(r, OP_SEARCH, (uint64_t)1 << (i % 64));
        strcpy(r->args.home, proto_municipality_code(i));
        assert_round_trip(r);
    }
    free(r);
}

static void test_decode_valid_table(void **state)
{
    (void)state;
    struct tsv t;
    tsv_load(&t, "tests/hostile/valid.tsv", "op\tid\thex", 3);
    assert_int_equal(t.rows, OP__COUNT);
    bool seen[OP__COUNT] = {false};
    struct proto_request *r = malloc(sizeof *r);
    assert_non_null(r);
    for (size_t i = 0; i < t.rows; i++) {
        const char *op = t.cell[i][0];
        size_t n;
        uint8_t *body = unhex(t.cell[i][2], &n);
        struct proto_error err;
        if (proto_decode_request(body, n, r, &err) != PROTO_OK)
            fail_msg("valid.tsv %s: %s", op, err.message);
        assert_string_equal(proto_op_name(r->op), op);
        assert_true(r->has_id);
        assert_int_equal(r->id, strtoull(t.cell[i][1], NULL, 10));
        /* The valid rows fill in every field their op allows. */
        if (r->args.present != proto_op_allowed(r->op))
            fail_msg("valid.tsv %s: present fields differ from the op's fields", op);
        seen[r->op] = true;
        assert_round_trip(r);

        const struct proto_args *a = &r->args;
        if (r->op == OP_SEARCH) {
            assert_string_equal(a->home, "0180");
            assert_int_equal(a->risk, RISK_HIGH);
            assert_int_equal(a->adults, 2);
            assert_int_equal(a->n_children, 2);
            assert_int_equal(a->children[0].age, 4);
            assert_int_equal(a->children[0].sex, 'f');
            assert_int_equal(a->children[1].age, 15);
            assert_int_equal(a->children[1].sex, 'm');
            assert_int_equal(a->group, GROUP_WOMEN);
            assert_false(a->wheelchair);
            assert_true(a->pets);
            assert_false(a->substance);
            assert_string_equal(a->language, "ar");
            assert_int_equal(a->n_perpetrator, 2);
            assert_string_equal(a->perpetrator[0], "0184");
            assert_string_equal(a->perpetrator[1], "0182");
            assert_int_equal(a->n_exclude, 1);
            assert_string_equal(a->exclude[0], "0114");
            assert_int_equal(a->limit, 20);
        } else if (r->op == OP_SHELTER_ADD) {
            assert_string_equal(a->shelter, "frida-sthlm");
            assert_string_equal(a->name, "Kvinnojouren Frida \xe2\x80\x93 S\xc3\xb6"
                                         "der");
            assert_int_equal(a->kind, KIND_KVINNOJOUR);
            assert_string_equal(a->municipality, "0180");
            assert_int_equal(a->protection, 2);
            assert_string_equal(a->phone, "+46 8-123 456 78");
            assert_int_equal(a->groups, 1u << GROUP_WOMEN | 1u << GROUP_HBTQI);
            assert_int_equal(a->max_children, 4);
            assert_int_equal(a->boys_max_age, 12);
            assert_true(a->pets);
            assert_false(a->substance);
            assert_int_equal(a->n_languages, 3);
            assert_string_equal(a->languages[2], "ar");
        } else if (r->op == OP_AUDIT) {
            assert_int_equal(a->since, 1700000000000);
            assert_string_equal(a->principal, "social:0180");
            assert_int_equal(a->limit, 100);
        } else if (r->op == OP_HOLD) {
            assert_string_equal(a->ref, "case/2024:A-42");
            assert_string_equal(a->idempotency_key, "key-abcdefgh-01");
        }
        free(body);
    }
    for (unsigned op = 0; op < OP__COUNT; op++)
        if (!seen[op])
            fail_msg("valid.tsv has no %s", proto_op_name((enum proto_op)op));
    free(r);
    tsv_free(&t);
}

static enum proto_err code_of(const char *s)
{
    enum proto_err e = proto_err_from_code(s, strlen(s));
    if (e == PROTO_E__COUNT)
        fail_msg("unknown code '%s' in the table", s);
    return e;
}

static void test_hostile_table(void **state)
{
    (void)state;
    struct tsv t;
    tsv_load(&t, "tests/hostile/frames.tsv", "name\tcode\tsurvives\tid\tkind\thex", 6);
    assert_true(t.rows >= 300);
    unsigned per_code[PROTO_E__COUNT] = {0};
    unsigned streams = 0;
    struct proto_request *r = malloc(sizeof *r);
    assert_non_null(r);
    for (size_t i = 0; i < t.rows; i++) {
        const char *name = t.cell[i][0], *kind = t.cell[i][4], *id = t.cell[i][3];
        enum proto_err want = code_of(t.cell[i][1]);
        bool survives = strcmp(t.cell[i][2], "yes") == 0;
        if (!survives && strcmp(t.cell[i][2], "no") != 0)
            fail_msg("%s: survives is '%s'", name, t.cell[i][2]);
        per_code[want]++;
        size_t n;
        uint8_t *bytes = unhex(t.cell[i][5], &n);

        if (strcmp(kind, "stream") == 0) {
            streams++;
            uint32_t len;
            enum proto_frame_status st = proto_frame_peek(bytes, n, PROTO_DEFAULT_MAX_FRAME, &len);
            enum proto_err got = st == PROTO_FRAME_BAD_LENGTH  ? PROTO_E_BAD_FRAME
                                 : st == PROTO_FRAME_TOO_LARGE ? PROTO_E_TOO_LARGE
                                                               : PROTO_OK;
            if (got != want)
                fail_msg("%s: framing gives %s, the table says %s", name, proto_err_code(got),
                         proto_err_code(want));
            if (survives || strcmp(id, "nil") != 0)
                fail_msg("%s: a lost framing closes the connection, with a nil id", name);
            free(bytes);
            continue;
        }
        assert_string_equal(kind, "body");
        /* Bad framing closes the connection; so does an empty body (length prefix 0). */
        if (survives != (n > 0))
            fail_msg("%s: survives should be %s", name, n > 0 ? "yes" : "no");

        struct proto_error err;
        memset(&err, 0, sizeof err);
        enum proto_err got = proto_decode_request(bytes, n, r, &err);
        if (got != want)
            fail_msg("%s: decoded as %s (%s), the table says %s", name, proto_err_code(got),
                     err.message, proto_err_code(want));
        assert_int_equal(err.code, got);
        if (strcmp(id, "nil") == 0) {
            if (r->has_id)
                fail_msg("%s: has an id, the table says nil", name);
        } else {
            if (!r->has_id || r->id != strtoull(id, NULL, 10))
                fail_msg("%s: id %s%llu, the table says %s", name, r->has_id ? "" : "(none) ",
                         (unsigned long long)r->id, id);
        }
        if (got != PROTO_OK) {
            assert_true(strlen(err.message) > 0);
            if (got != PROTO_E_BAD_FRAME && longest_digit_run(err.message) >= 5)
                fail_msg("%s: the message may echo a value: %s", name, err.message);
        } else {
            assert_round_trip(r);
        }
        /* Without an error struct the answer is the same. */
        assert_int_equal(proto_decode_request(bytes, n, r, NULL), want);
        free(bytes);
    }
    static const enum proto_err needed[] = {PROTO_OK,           PROTO_E_BAD_FRAME,
                                            PROTO_E_TOO_LARGE,  PROTO_E_BAD_REQUEST,
                                            PROTO_E_UNKNOWN_OP, PROTO_E_PERSONAL_DATA};
    for (size_t k = 0; k < sizeof needed / sizeof needed[0]; k++)
        if (per_code[needed[k]] == 0)
            fail_msg("the table has no %s row", proto_err_code(needed[k]));
    assert_true(per_code[PROTO_E_PERSONAL_DATA] >= 20);
    assert_true(streams >= 2);
    free(r);
    tsv_free(&t);
}

static void test_has_id(void **state)
{
    (void)state;
    struct proto_request r;
    struct proto_error err;
    /* {"id": 42, "op": "nope"} */
    static const uint8_t unknown[] = {0x82, 0xa2, 'i', 'd', 42,  0xa2, 'o',
                                      'p',  0xa4, 'n', 'o', 'p', 'e'};
    assert_int_equal(decode(unknown, sizeof unknown, &r, &err), PROTO_E_UNKNOWN_OP);
    assert_true(r.has_id);
    assert_int_equal(r.id, 42);
    /* The id is found even when it comes after the offending key: {"x": 1, "id": 43} */
    static const uint8_t late[] = {0x82, 0xa1, 'x', 0x01, 0xa2, 'i', 'd', 43};
    assert_int_equal(decode(late, sizeof late, &r, &err), PROTO_E_BAD_REQUEST);
    assert_true(r.has_id);
    assert_int_equal(r.id, 43);
    /* uint64 max */
    static const uint8_t maxid[] = {0x82, 0xa2, 'i',  'd',  0xcf, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0xff, 0xa2, 'o',  'p',  0xa1, 'x'};
    assert_int_equal(decode(maxid, sizeof maxid, &r, &err), PROTO_E_UNKNOWN_OP);
    assert_true(r.has_id);
    assert_int_equal(r.id, UINT64_MAX);
    /* A duplicate id is no id. */
    static const uint8_t dup[] = {0x82, 0xa2, 'i', 'd', 1, 0xa2, 'i', 'd', 1};
    assert_int_equal(decode(dup, sizeof dup, &r, &err), PROTO_E_BAD_REQUEST);
    assert_false(r.has_id);
    /* A negative id is no id. */
    static const uint8_t neg[] = {0x81, 0xa2, 'i', 'd', 0xff};
    assert_int_equal(decode(neg, sizeof neg, &r, &err), PROTO_E_BAD_REQUEST);
    assert_false(r.has_id);
    /* Framing errors never carry one, even with an id in the bytes. */
    static const uint8_t trail[] = {0x81, 0xa2, 'i', 'd', 5, 0xc0};
    assert_int_equal(decode(trail, sizeof trail, &r, &err), PROTO_E_BAD_FRAME);
    assert_false(r.has_id);
    /* A stale struct is reset: a later failure does not keep an earlier id. */
    assert_int_equal(decode(unknown, sizeof unknown, &r, &err), PROTO_E_UNKNOWN_OP);
    assert_int_equal(decode(neg, sizeof neg, &r, &err), PROTO_E_BAD_REQUEST);
    assert_false(r.has_id);
    /* A personal-data error still carries the id. */
    static const uint8_t pin[] = {
        0x83, 0xa2, 'i', 'd',  9,   0xa2, 'o', 'p', 0xac, 's', 'h',  'e',  'l', 't', 'e', 'r',
        '.',  's',  'h', 'o',  'w', 0xa4, 'a', 'r', 'g',  's', 0x81, 0xa7, 's', 'h', 'e', 'l',
        't',  'e',  'r', 0xaa, '8', '1',  '1', '2', '1',  '8', '9',  '8',  '7', '6'};
    assert_int_equal(decode(pin, sizeof pin, &r, &err), PROTO_E_PERSONAL_DATA);
    assert_true(r.has_id);
    assert_int_equal(r.id, 9);
    assert_null(strstr(err.message, "8112189876"));
    assert_non_null(strstr(err.message, "shelter"));
}

/* Every prefix of a valid body is a framing error; every byte changed never crashes. */
static void test_truncation_and_mutation(void **state)
{
    (void)state;
    struct tsv t;
    tsv_load(&t, "tests/hostile/valid.tsv", "op\tid\thex", 3);
    struct proto_request *r = malloc(sizeof *r);
    assert_non_null(r);
    static const uint8_t subst[] = {0x00, 0x7f, 0x80, 0x90, 0xa0, 0xc0, 0xc1,
                                    0xc3, 0xcb, 0xd4, 0xdb, 0xdd, 0xdf, 0xff};
    unsigned decoded_ok = 0, total = 0;
    for (size_t i = 0; i < t.rows; i++) {
        size_t n;
        uint8_t *body = unhex(t.cell[i][2], &n);
        struct proto_error err;
        for (size_t cut = 0; cut < n; cut++) {
            if (decode(body, cut, r, &err) != PROTO_E_BAD_FRAME)
                fail_msg("%s cut at %zu: %s", t.cell[i][0], cut, proto_err_code(err.code));
        }
        for (size_t pos = 0; pos < n; pos++) {
            uint8_t orig = body[pos];
            for (size_t s = 0; s <= sizeof subst; s++) {
                body[pos] = s < sizeof subst ? subst[s] : (uint8_t)(orig ^ 0x01);
                if (body[pos] == orig)
                    continue;
                enum proto_err e = decode(body, n, r, &err);
                total++;
                switch (e) {
                case PROTO_OK:
                    decoded_ok++;
                    assert_round_trip(r);
                    break;
                case PROTO_E_BAD_FRAME:
                    assert_false(r->has_id);
                    break;
                case PROTO_E_BAD_REQUEST:
                case PROTO_E_UNKNOWN_OP:
                case PROTO_E_PERSONAL_DATA:
                    break;
                default:
                    fail_msg("%s, byte %zu: %s", t.cell[i][0], pos, proto_err_code(e));
                }
            }
            body[pos] = orig;
        }
        free(body);
    }
    assert_true(total > 10000);
    assert_true(decoded_ok > 0);
    free(r);
    tsv_free(&t);
}

/* ---- validation of typed requests ---------------------------------------------------------- */

/* Breaks one rule; returns false past the last case. */
static bool break_rule(unsigned k, struct proto_request *r, const char **what, enum proto_err *want)
{
    struct proto_args *a = &r->args;
    *want = PROTO_E_BAD_REQUEST;
#define CASE(n, op, desc, stmt)                                                                    \
    case n:                                                                                        \
        fill_max(r, op, 77);                                                                       \
        *what = desc;                                                                              \
        stmt;                                                                                      \
        return true
    switch (k) {
        CASE(0, OP_UNIT_ADD, "beds 0", a->beds = 0);
        CASE(1, OP_UNIT_ADD, "beds 31", a->beds = 31);
        CASE(2, OP_SHELTER_ADD, "protection 0", a->protection = 0);
        CASE(3, OP_SHELTER_ADD, "protection 4", a->protection = 4);
        CASE(4, OP_SEARCH, "limit 0", a->limit = 0);
        CASE(5, OP_SEARCH, "limit 201", a->limit = 201);
        CASE(6, OP_SEARCH, "adults 0", a->adults = 0);
        CASE(7, OP_SEARCH, "adults 7", a->adults = 7);
        CASE(8, OP_SHELTER_ADD, "max_children 21", a->max_children = 21);
        CASE(9, OP_SHELTER_ADD, "boys_max_age 18", a->boys_max_age = 18);
        CASE(10, OP_AUDIT, "since -1", a->since = -1);
        CASE(11, OP_SHELTER_ADD, "empty name", a->name[0] = '\0');
        CASE(12, OP_SHELTER_ADD, "blank name", strcpy(a->name, "  "));
        CASE(13, OP_SHELTER_ADD, "control character", strcpy(a->name, "a\x01"));
        CASE(14, OP_SHELTER_ADD, "invalid UTF-8", strcpy(a->name, "a\xc3"));
        CASE(15, OP_SHELTER_ADD, "name of 101 characters",
             (memset(a->name, 'n', 101), a->name[101] = '\0'));
        CASE(16, OP_SHELTER_ADD, "bad kind", a->kind = KIND__COUNT);
        CASE(17, OP_VACANCY_SET, "bad state", a->state = VAC__COUNT);
        CASE(18, OP_SEARCH, "bad risk", a->risk = RISK__COUNT);
        CASE(19, OP_SEARCH, "bad group", a->group = 200);
        CASE(20, OP_SHELTER_ADD, "no groups", a->groups = 0);
        CASE(21, OP_SHELTER_ADD, "unknown group bit", a->groups = 1u << GROUP__COUNT);
        CASE(22, OP_SHELTER_ADD, "municipality 0000", strcpy(a->municipality, "0000"));
        CASE(23, OP_SEARCH, "home 1234", strcpy(a->home, "1234"));
        CASE(24, OP_FREE, "county 02", strcpy(a->county, "02"));
        CASE(25, OP_FREE, "municipality outside the county", strcpy(a->municipality, "1280"));
        CASE(26, OP_SEARCH, "perpetrator unknown", strcpy(a->perpetrator[3], "0001"));
        CASE(27, OP_SEARCH, "exclude unknown", strcpy(a->exclude[49], "018"));
        CASE(28, OP_SEARCH, "child aged 18", a->children[5].age = 18);
        CASE(29, OP_SEARCH, "child sex x", a->children[0].sex = 'x');
        CASE(30, OP_SEARCH, "child sex NUL", a->children[0].sex = '\0');
        CASE(31, OP_SHELTER_ADD, "language upper case", strcpy(a->languages[0], "SV"));
        CASE(32, OP_SHELTER_ADD, "duplicate language", strcpy(a->languages[1], "sv"));
        CASE(33, OP_SEARCH, "language of 4 letters", strcpy(a->language, "swed"));
        CASE(34, OP_SHELTER_SHOW, "empty shelter id", a->shelter[0] = '\0');
        CASE(35, OP_SHELTER_SHOW, "shelter id with a space", strcpy(a->shelter, "a b"));
        CASE(36, OP_SHELTER_SHOW, "shelter id starting with '-'", strcpy(a->shelter, "-a"));
        CASE(37, OP_UNIT_REMOVE, "unit id with '/'", strcpy(a->unit, "a/b"));
        CASE(38, OP_HOLD, "ref with a space", strcpy(a->ref, "a b"));
        CASE(39, OP_HOLD, "short idempotency key", strcpy(a->idempotency_key, "1234567"));
        CASE(40, OP_SHELTER_ADD, "short phone", strcpy(a->phone, "1234"));
        CASE(41, OP_SHELTER_ADD, "phone with letters", strcpy(a->phone, "08-CALL-ME"));
        CASE(42, OP_AUDIT, "principal without a role", strcpy(a->principal, "nobody:x"));
        CASE(43, OP_AUDIT, "principal without an id", strcpy(a->principal, "admin:"));
        CASE(44, OP_WHOAMI, "field not allowed", a->present = PROTO_BIT(F_SHELTER));
        CASE(45, OP_HOLD, "required field missing", a->present &= ~PROTO_BIT(F_REF));
        CASE(46, OP_SHELTER_UPDATE, "nothing to change", a->present = PROTO_BIT(F_SHELTER));
        CASE(47, OP_UNIT_UPDATE, "nothing to change",
             a->present = PROTO_BIT(F_SHELTER) | PROTO_BIT(F_UNIT));
        CASE(48, OP_SHELTER_ADD, "17 languages", a->n_languages = PROTO_MAX_LANGUAGES + 1);
        CASE(49, OP_SEARCH, "13 children", a->n_children = PROTO_MAX_CHILDREN + 1);
        CASE(50, OP_SEARCH, "11 perpetrator municipalities", a->n_perpetrator = PROTO_MAX_PERP + 1);
        CASE(51, OP_SEARCH, "51 excluded municipalities", a->n_exclude = PROTO_MAX_EXCLUDE + 1);
        CASE(52, OP_SEARCH, "255 children", a->n_children = 255);
        CASE(53, OP_HOLD, "ref with a personal number",
             (strcpy(a->ref, "8112189876"), *want = PROTO_E_PERSONAL_DATA));
        CASE(54, OP_HOLD_DECLINE, "reason with an address",
             (strcpy(a->reason, "Storgatan 12"), *want = PROTO_E_PERSONAL_DATA));
        CASE(55, OP_SHELTER_ADD, "name with a coordination number",
             (strcpy(a->name, "Jour 811278-1235"), *want = PROTO_E_PERSONAL_DATA));
        CASE(56, OP_SHELTER_SHOW, "shelter id with a personal number",
             (strcpy(a->shelter, "198112189876"), *want = PROTO_E_PERSONAL_DATA));
        CASE(57, OP_AUDIT, "principal with a personal number",
             (strcpy(a->principal, "social:8112189876"), *want = PROTO_E_PERSONAL_DATA));
        CASE(58, OP_HOLD_DECLINE, "reason with a postal code",
             (strcpy(a->reason, "till 123 45 Stockholm"), *want = PROTO_E_PERSONAL_DATA));
        CASE(59, OP_SEARCH, "group just out of range", a->group = GROUP__COUNT);
    default:
        return false;
    }
#undef CASE
}

static void test_validate_request(void **state)
{
    (void)state;
    struct proto_request *r = malloc(sizeof *r);
    assert_non_null(r);
    struct proto_error err;
    for (unsigned op = 0; op < OP__COUNT; op++) {
        fill_max(r, (enum proto_op)op, op);
        if (proto_validate_request(r, &err) != PROTO_OK)
            fail_msg("%s: %s", proto_op_name((enum proto_op)op), err.message);
        assert_int_equal(err.code, PROTO_OK);
    }
    unsigned k = 0;
    const char *what;
    enum proto_err want;
    for (; break_rule(k, r, &what, &want); k++) {
        memset(&err, 0, sizeof err);
        enum proto_err got = proto_validate_request(r, &err);
        if (got != want)
            fail_msg("rule %u (%s on %s): got %s (%s), want %s", k, what, proto_op_name(r->op),
                     proto_err_code(got), err.message, proto_err_code(want));
        assert_int_equal(err.code, want);
        if (longest_digit_run(err.message) >= 5)
            fail_msg("rule %u: the message may echo a value: %s", k, err.message);
    }
    assert_int_equal(k, 60);
    free(r);
}

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
        {"811218--9876", false}, /* two separators */
        {"811218/9876", false},
        {"811218_9876", false},
        {"81121-89876", false},
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

/* ---- replies ------------------------------------------------------------------------------- */

/*
 * Decodes from an exact-size copy, which *input keeps: string payloads in the result point
 * into it, so it is freed only after proto_reply_free.
 */
static enum proto_err decode_reply(const void *p, size_t n, struct proto_reply *out,
                                   uint8_t **input)
{
    *input = dup_bytes(p, n);
    struct proto_error err;
    return proto_decode_reply(*input, n, out, &err);
}

static void test_reply_ok(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    assert_int_equal(proto_pack_ok_begin(&b.pk, 17, true), 0);
    assert_int_equal(msgpack_pack_map(&b.pk, 2), 0);
    assert_int_equal(proto_pack_cstr(&b.pk, "units"), 0);
    assert_int_equal(msgpack_pack_array(&b.pk, 2), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(msgpack_pack_map(&b.pk, 3), 0);
        assert_int_equal(proto_pack_kv_str(&b.pk, "id", i ? "r2" : "r1"), 0);
        assert_int_equal(proto_pack_kv_int(&b.pk, "beds", i + 2), 0);
        assert_int_equal(proto_pack_kv_bool(&b.pk, "accessible", i == 1), 0);
    }
    assert_int_equal(proto_pack_kv_str(&b.pk, "name",
                                       "Jour \xc3\x85"
                                       "s"),
                     0);

    struct proto_reply r;
    uint8_t *in;
    assert_int_equal(decode_reply(b.sb.data, b.sb.size, &r, &in), PROTO_OK);
    assert_true(r.ok);
    assert_true(r.has_id);
    assert_int_equal(r.id, 17);
    assert_non_null(r.result);
    assert_int_equal(r.result->type, MSGPACK_OBJECT_MAP);
    const msgpack_object *units = proto_map_get(r.result, "units");
    assert_non_null(units);
    assert_int_equal(units->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(units->via.array.size, 2);
    const msgpack_object *beds = proto_map_get(&units->via.array.ptr[1], "beds");
    assert_non_null(beds);
    assert_int_equal(beds->via.u64, 3);
    const msgpack_object *acc = proto_map_get(&units->via.array.ptr[1], "accessible");
    assert_non_null(acc);
    assert_int_equal(acc->type, MSGPACK_OBJECT_BOOLEAN);
    assert_true(acc->via.boolean);
    const msgpack_object *name = proto_map_get(r.result, "name");
    assert_non_null(name);
    assert_int_equal(name->via.str.size, 8);
    assert_memory_equal(name->via.str.ptr,
                        "Jour \xc3\x85"
                        "s",
                        8);
    proto_reply_free(&r);
    free(in);
    assert_null(r.result);
    buf_free(&b);

    /* nil id, scalar result, uint64 id */
    buf_init(&b);
    assert_int_equal(proto_pack_ok_begin(&b.pk, 99, false), 0);
    assert_int_equal(msgpack_pack_nil(&b.pk), 0);
    assert_int_equal(decode_reply(b.sb.data, b.sb.size, &r, &in), PROTO_OK);
    assert_false(r.has_id);
    assert_true(r.ok);
    assert_int_equal(r.result->type, MSGPACK_OBJECT_NIL);
    proto_reply_free(&r);
    free(in);
    buf_free(&b);
    buf_init(&b);
    assert_int_equal(proto_pack_ok_begin(&b.pk, UINT64_MAX, true), 0);
    assert_int_equal(msgpack_pack_true(&b.pk), 0);
    assert_int_equal(decode_reply(b.sb.data, b.sb.size, &r, &in), PROTO_OK);
    assert_true(r.has_id);
    assert_int_equal(r.id, UINT64_MAX);
    proto_reply_free(&r);
    free(in);
    buf_free(&b);

    /* The exact bytes of the small packers. */
    buf_init(&b);
    assert_int_equal(proto_pack_kv_int(&b.pk, "a", -1), 0);
    assert_int_equal(proto_pack_kv_bool(&b.pk, "b", false), 0);
    assert_int_equal(proto_pack_kv_str(&b.pk, "c", ""), 0);
    assert_int_equal(proto_pack_kv_int(&b.pk, "d", 300), 0);
    static const uint8_t want[] = {0xa1, 'a',  0xff, 0xa1, 'b',  0xc2, 0xa1,
                                   'c',  0xa0, 0xa1, 'd',  0xcd, 0x01, 0x2c};
    assert_int_equal(b.sb.size, sizeof want);
    assert_memory_equal(b.sb.data, want, sizeof want);
    buf_free(&b);
}

static void test_reply_error(void **state)
{
    (void)state;
    for (unsigned code = 1; code < PROTO_E__COUNT; code++) {
        struct buf b;
        buf_init(&b);
        bool has_id = code % 2 == 0;
        assert_int_equal(proto_pack_error(&b.pk, code * 11, has_id, (enum proto_err)code,
                                          "a shelter may change only its own units"),
                         0);
        struct proto_reply r;
        uint8_t *in;
        assert_int_equal(decode_reply(b.sb.data, b.sb.size, &r, &in), PROTO_OK);
        assert_false(r.ok);
        assert_int_equal(r.has_id, has_id);
        if (has_id)
            assert_int_equal(r.id, code * 11);
        assert_int_equal(r.code, code);
        assert_string_equal(r.code_text, proto_err_code((enum proto_err)code));
        assert_string_equal(r.message, "a shelter may change only its own units");
        assert_null(r.result);
        proto_reply_free(&r);
        free(in);
        buf_free(&b);
    }
    /* A NULL message becomes the code; a long one is cut to the buffer. */
    struct buf b;
    buf_init(&b);
    assert_int_equal(proto_pack_error(&b.pk, 1, true, PROTO_E_CONFLICT, NULL), 0);
    struct proto_reply r;
    uint8_t *in;
    assert_int_equal(decode_reply(b.sb.data, b.sb.size, &r, &in), PROTO_OK);
    assert_string_equal(r.message, "conflict");
    proto_reply_free(&r);
    free(in);
    buf_free(&b);
    char longmsg[400];
    memset(longmsg, 'm', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = '\0';
    buf_init(&b);
    assert_int_equal(proto_pack_error(&b.pk, 1, true, PROTO_E_INTERNAL, longmsg), 0);
    assert_int_equal(decode_reply(b.sb.data, b.sb.size, &r, &in), PROTO_OK);
    assert_int_equal(strlen(r.message), PROTO_MESSAGE_MAX - 1);
    proto_reply_free(&r);
    free(in);
    buf_free(&b);
}

static void test_reply_table(void **state)
{
    (void)state;
    struct tsv t;
    tsv_load(&t, "tests/hostile/replies.tsv", "name\tcode\thex", 3);
    assert_true(t.rows >= 20);
    unsigned ok = 0, bad = 0;
    for (size_t i = 0; i < t.rows; i++) {
        size_t n;
        uint8_t *body = unhex(t.cell[i][2], &n);
        enum proto_err want = code_of(t.cell[i][1]);
        struct proto_reply r;
        uint8_t *in;
        enum proto_err got = decode_reply(body, n, &r, &in);
        if (got != want)
            fail_msg("replies.tsv %s: %s, want %s", t.cell[i][0], proto_err_code(got),
                     proto_err_code(want));
        if (got == PROTO_OK) {
            ok++;
            if (strcmp(t.cell[i][0], "error_unknown_code") == 0) {
                assert_int_equal(r.code, PROTO_E__COUNT);
                assert_string_equal(r.code_text, "brand_new_code");
            }
            if (strcmp(t.cell[i][0], "error_long_code") == 0) {
                assert_int_equal(r.code, PROTO_E__COUNT);
                assert_int_equal(strlen(r.code_text), sizeof r.code_text - 1);
            }
            if (strcmp(t.cell[i][0], "ok_id_max") == 0)
                assert_int_equal(r.id, UINT64_MAX);
            if (strcmp(t.cell[i][0], "ok_id_nil") == 0)
                assert_false(r.has_id);
        } else {
            bad++;
            assert_false(r.has_id);
            assert_null(r.result);
        }
        proto_reply_free(&r); /* harmless after a failure too */
        free(in);
        free(body);
    }
    assert_true(ok >= 5);
    assert_true(bad >= 10);
    tsv_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_enum_names),
        cmocka_unit_test(test_op_and_field_tables),
        cmocka_unit_test(test_frame_header),
        cmocka_unit_test(test_frame_peek),
        cmocka_unit_test(test_check_depth),
        cmocka_unit_test(test_check_counts),
        cmocka_unit_test(test_check_objects),
        cmocka_unit_test(test_check_types),
        cmocka_unit_test(test_unpack),
        cmocka_unit_test(test_round_trip_every_op),
        cmocka_unit_test(test_round_trip_values),
        cmocka_unit_test(test_decode_valid_table),
        cmocka_unit_test(test_hostile_table),
        cmocka_unit_test(test_has_id),
        cmocka_unit_test(test_truncation_and_mutation),
        cmocka_unit_test(test_validate_request),
        cmocka_unit_test(test_personal_number_dates),
        cmocka_unit_test(test_personal_number_forms),
        cmocka_unit_test(test_street_address),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_municipalities),
        cmocka_unit_test(test_reply_ok),
        cmocka_unit_test(test_reply_error),
        cmocka_unit_test(test_reply_table),
    };
    return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
