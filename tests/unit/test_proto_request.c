/*
 * Unit tests of proto/request.c against proto/PROTOCOL.md: the op and field tables, request
 * decoding and packing, the hostile-input table (tests/hostile/frames.tsv) and the validation
 * of typed requests.
 */
#include "proto_test.h"

#include "../fuzz/request_eq.h"

/* Decodes from an exact-size heap copy. */
static enum proto_err decode(const void *p, size_t n, struct proto_request *out,
                             struct proto_error *err)
{
    uint8_t *copy = dup_bytes(p, n);
    enum proto_err e = proto_decode_request(copy, n, out, err);
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
    strcpy(a->hold, "hzzzzzzzzzzzzzzzz");
    strcpy(a->placement, "p9999999999999999");
    a->reason = DECLINE_OTHER;
    strcpy(a->note,
           "Ingen plats f\xc3\xb6r husdjur \xe2\x80\x93 \xc3\xa5ter p\xc3\xa5 m\xc3\xa5ndag");
    a->since = INT64_MAX;
    strcpy(a->principal, "oncall:socialjouren-sthlm");
    strcpy(a->person, "sha256:7d1e0c9f3b6a4c2e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a");
    strcpy(a->callback, "+46 70 123 45 678 90");
    strcpy(a->after, "lila-uppsala.2_b");
    a->arrival_by = INT64_MAX;
    a->arrival_at = INT64_MAX;
    strcpy(a->intake_hours, "mon-fri 08:00-16:30,sat 10:00-14:00,sun 22:00-02:00");
    a->types = (1u << EV__COUNT) - 1;
    a->hours = 72;
    strcpy(a->standing, "szzzzzzzzzzzzzzzz");
    a->competences = (1u << COMP__COUNT) - 1;
    a->need = (1u << COMP__COUNT) - 1;
    a->operator_ = OPERATOR_KOMMUNAL;
    strcpy(a->ivo_permit, "IVO-3.5.1-12345/2024:skyddat-boende.a_bc");
    assert_int_equal(strlen(a->ivo_permit), PROTO_PERMIT_MAX);
    strcpy(a->ivo_permit_date, "2099-12-31");
    a->ivo_registered = true;
    /* One basis per child: a hold's referral has PROTO_MAX_CHILDREN of them. */
    a->n_child_basis = PROTO_MAX_CHILDREN;
    for (unsigned i = 0; i < PROTO_MAX_CHILDREN; i++)
        a->child_basis[i] = (uint8_t)(i % BASIS__COUNT);
    strcpy(a->from_month, "2097-01"); /* the widest span: 36 months */
    strcpy(a->to_month, "2099-12");
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
    strcpy(a->hold, "h0000000000000000");
    strcpy(a->placement, "p0000000000000000");
    a->reason = DECLINE_NO_ROOM;
    strcpy(a->note, "x");
    strcpy(a->callback, "12345");
    strcpy(a->intake_hours, "24/7");
    a->types = 1u << EV_HELD;
    a->hours = 1;
    strcpy(a->standing, "s0000000000000000");
    a->since = 0;
    strcpy(a->principal, "admin:a");
    a->operator_ = OPERATOR_IDEELL;
    strcpy(a->ivo_permit, "1");
    strcpy(a->ivo_permit_date, "2000-01-01");
    strcpy(a->from_month, "2000-01");
    strcpy(a->to_month, "2000-01");
    strcpy(a->person, "p");
    strcpy(a->after, "b");
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
        [F_CALLBACK] = "callback",
        [F_NOTE] = "note",
        [F_ARRIVAL_BY] = "arrival_by",
        [F_ARRIVAL_AT] = "arrival_at",
        [F_INTAKE_HOURS] = "intake_hours",
        [F_TYPES] = "types",
        [F_HOURS] = "hours",
        [F_STANDING] = "standing",
        [F_COMPETENCES] = "competences",
        [F_NEED] = "need",
        [F_OPERATOR] = "operator",
        [F_IVO_PERMIT] = "ivo_permit",
        [F_IVO_PERMIT_DATE] = "ivo_permit_date",
        [F_IVO_REGISTERED] = "ivo_registered",
        [F_CHILD_BASIS] = "child_basis",
        [F_FROM_MONTH] = "from_month",
        [F_TO_MONTH] = "to_month",
        [F_PERSON] = "person",
        [F_AFTER] = "after",
    };
    for (unsigned f = 0; f < F__COUNT; f++)
        assert_string_equal(proto_field_name((enum proto_field)f), field_names[f]);
    assert_string_equal(proto_field_name(F__COUNT), "?");

#define B(f) PROTO_BIT(F_##f)
    const uint64_t profile = B(NAME) | B(KIND) | B(MUNICIPALITY) | B(PROTECTION) | B(PHONE) |
                             B(GROUPS) | B(MAX_CHILDREN) | B(BOYS_MAX_AGE) | B(PETS) |
                             B(SUBSTANCE) | B(LANGUAGES) | B(INTAKE_HOURS) | B(COMPETENCES) |
                             B(OPERATOR) | B(IVO_PERMIT) | B(IVO_PERMIT_DATE) | B(IVO_REGISTERED);
    const uint64_t referral = B(ADULTS) | B(CHILDREN) | B(GROUP) | B(WHEELCHAIR) | B(PETS) |
                              B(SUBSTANCE) | B(LANGUAGE) | B(PERPETRATOR) | B(EXCLUDE) | B(NEED);
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
        [OP_HOLD_ACCEPT] = {"hold.accept", true},
        [OP_HOLD_RELEASE] = {"hold.release", true},
        [OP_HOLD_CONFIRM] = {"hold.confirm", true},
        [OP_HOLD_DECLINE] = {"hold.decline", true},
        [OP_PLACEMENT_DISCHARGE] = {"placement.discharge", true},
        [OP_HOLDS_LIST] = {"holds.list", false},
        [OP_PLACEMENTS_LIST] = {"placements.list", false},
        [OP_AUDIT] = {"audit", false},
        [OP_STATS] = {"stats", false},
        [OP_WHOAMI] = {"whoami", false},
        [OP_WATCH] = {"watch", false},
        [OP_STANDING_ADD] = {"standing.add", true},
        [OP_STANDING_LIST] = {"standing.list", false},
        [OP_STANDING_CANCEL] = {"standing.cancel", true},
        [OP_FOLLOWUP] = {"followup", false},
        [OP_DIRECTORY] = {"directory", false},
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
        [OP_HOLD] = B(SHELTER) | B(UNIT) | B(REF) | B(HOME) | B(RISK),
        [OP_HOLD_ACCEPT] = B(HOLD),
        [OP_HOLD_RELEASE] = B(HOLD),
        [OP_HOLD_CONFIRM] = B(HOLD),
        [OP_HOLD_DECLINE] = B(HOLD) | B(REASON),
        [OP_PLACEMENT_DISCHARGE] = B(PLACEMENT),
        [OP_STANDING_ADD] = B(REF) | B(HOME) | B(RISK),
        [OP_STANDING_CANCEL] = B(STANDING),
    };
    const uint64_t allowed[OP__COUNT] = {
        [OP_SHELTER_ADD] = B(SHELTER) | profile,
        [OP_SHELTER_UPDATE] = B(SHELTER) | profile,
        [OP_SHELTER_RETIRE] = B(SHELTER),
        [OP_SHELTER_SHOW] = B(SHELTER),
        [OP_SHELTER_LIST] = B(COUNTY) | B(MUNICIPALITY) | B(AFTER),
        [OP_UNIT_ADD] = B(SHELTER) | B(UNIT) | B(BEDS) | B(ACCESSIBLE),
        [OP_UNIT_UPDATE] = B(SHELTER) | B(UNIT) | B(BEDS) | B(ACCESSIBLE),
        [OP_UNIT_REMOVE] = B(SHELTER) | B(UNIT),
        [OP_VACANCY_SET] = B(SHELTER) | B(UNIT) | B(STATE),
        [OP_VACANCY_CONFIRM] = B(SHELTER),
        [OP_INTAKE_PAUSE] = B(SHELTER),
        [OP_INTAKE_RESUME] = B(SHELTER),
        [OP_FREE] = B(COUNTY) | B(MUNICIPALITY) | B(AFTER),
        [OP_SEARCH] = B(HOME) | B(RISK) | referral | B(LIMIT) | B(ARRIVAL_AT),
        [OP_HOLD] = B(SHELTER) | B(UNIT) | B(REF) | B(HOME) | B(RISK) | referral | B(CALLBACK) |
                    B(IDEMPOTENCY_KEY) | B(MUNICIPALITY) | B(CHILD_BASIS),
        [OP_HOLD_ACCEPT] = B(HOLD) | B(ARRIVAL_BY),
        [OP_HOLD_RELEASE] = B(HOLD),
        [OP_HOLD_CONFIRM] = B(HOLD) | B(CHILD_BASIS),
        [OP_HOLD_DECLINE] = B(HOLD) | B(REASON) | B(NOTE),
        [OP_PLACEMENT_DISCHARGE] = B(PLACEMENT),
        [OP_AUDIT] = B(SINCE) | B(PRINCIPAL) | B(SHELTER) | B(LIMIT) | B(PERSON),
        [OP_WATCH] = B(SINCE) | B(COUNTY) | B(MUNICIPALITY) | B(TYPES),
        [OP_STANDING_ADD] = B(REF) | B(HOME) | B(RISK) | referral | B(HOURS) | B(MUNICIPALITY),
        [OP_FOLLOWUP] = B(COUNTY) | B(MUNICIPALITY) | B(FROM_MONTH) | B(TO_MONTH),
        [OP_STANDING_CANCEL] = B(STANDING),
        [OP_DIRECTORY] = B(AFTER),
        [OP_HOLDS_LIST] = B(AFTER),
        [OP_PLACEMENTS_LIST] = B(AFTER),
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
        r->args.note[0] = '\0';
        for (unsigned i = 0; i < PROTO_REASON_MAX; i++)
            strcat(r->args.note, chars[c]);
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
        /* The valid rows fill in every field their op allows, except an arrival time, which
         * the daemon wants in the next 24 hours (a fixed one would not stay valid). */
        uint64_t allowed = proto_op_allowed(r->op) & ~PROTO_BIT(F_ARRIVAL_BY);
        if (r->args.present != allowed)
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
            assert_int_equal(a->competences, 1u << COMP_HBV | 1u << COMP_DEAF);
            assert_int_equal(a->operator_, OPERATOR_IDEELL);
            assert_string_equal(a->ivo_permit, "3.5.1-12345/2024");
            assert_string_equal(a->ivo_permit_date, "2024-04-01");
            assert_false(a->ivo_registered);
        } else if (r->op == OP_AUDIT) {
            assert_int_equal(a->since, 1700000000000);
            assert_string_equal(a->principal, "social:0180");
            assert_int_equal(a->limit, 100);
        } else if (r->op == OP_HOLD) {
            assert_string_equal(a->ref, "case/2024:A-42");
            assert_string_equal(a->idempotency_key, "key-abcdefgh-01");
            assert_int_equal(a->need, 1u << COMP_HBV | 1u << COMP_INTERPRETER);
            assert_int_equal(a->n_child_basis, 2);
            assert_int_equal(a->child_basis[0], BASIS_SOL);
            assert_int_equal(a->child_basis[1], BASIS_LAG_2024_79);
        } else if (r->op == OP_HOLD_CONFIRM) {
            assert_int_equal(a->n_child_basis, 2);
            assert_int_equal(a->child_basis[0], BASIS_LVU);
        }
        free(body);
    }
    for (unsigned op = 0; op < OP__COUNT; op++)
        if (!seen[op])
            fail_msg("valid.tsv has no %s", proto_op_name((enum proto_op)op));
    free(r);
    tsv_free(&t);
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
        CASE(54, OP_HOLD_DECLINE, "note with an address",
             (strcpy(a->note, "Storgatan 12"), *want = PROTO_E_PERSONAL_DATA));
        CASE(55, OP_SHELTER_ADD, "name with a coordination number",
             (strcpy(a->name, "Jour 811278-1235"), *want = PROTO_E_PERSONAL_DATA));
        CASE(56, OP_SHELTER_SHOW, "shelter id with a personal number",
             (strcpy(a->shelter, "198112189876"), *want = PROTO_E_PERSONAL_DATA));
        CASE(57, OP_AUDIT, "principal with a personal number",
             (strcpy(a->principal, "social:8112189876"), *want = PROTO_E_PERSONAL_DATA));
        CASE(58, OP_HOLD_DECLINE, "note with a postal code",
             (strcpy(a->note, "till 123 45 Stockholm"), *want = PROTO_E_PERSONAL_DATA));
        CASE(59, OP_SEARCH, "group just out of range", a->group = GROUP__COUNT);
        CASE(60, OP_FOLLOWUP, "month 13", strcpy(a->from_month, "2098-13"));
        CASE(61, OP_FOLLOWUP, "a day, not a month", strcpy(a->to_month, "2099-1"));
        CASE(62, OP_FOLLOWUP, "37 months", strcpy(a->from_month, "2096-12"));
        CASE(63, OP_FOLLOWUP, "months backwards", strcpy(a->to_month, "2096-12"));
        CASE(64, OP_FOLLOWUP, "municipality outside the county", strcpy(a->municipality, "1480"));
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
    assert_int_equal(k, 65);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_and_field_tables),     cmocka_unit_test(test_round_trip_every_op),
        cmocka_unit_test(test_round_trip_values),       cmocka_unit_test(test_decode_valid_table),
        cmocka_unit_test(test_hostile_table),           cmocka_unit_test(test_has_id),
        cmocka_unit_test(test_truncation_and_mutation), cmocka_unit_test(test_validate_request),
    };
    return cmocka_run_group_tests_name("proto_request", tests, NULL, NULL);
}
