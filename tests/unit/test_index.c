/*
 * The in-memory index: snapshots parsed in the store's vocabulary, the version merge that keeps
 * the newer copy of a shelter, and the end of a full reload that merges the events which raced
 * the dump (index_replace).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "index.h"

static struct idx_shelter *shelter(const char *id, uint64_t ver)
{
    struct idx_shelter *s = calloc(1, sizeof *s);
    assert_non_null(s);
    strcpy(s->id, id);
    s->ver = ver;
    return s;
}

static uint64_t ver_of(const struct index *ix, const char *id)
{
    const struct idx_shelter *s = index_find(ix, id);
    return s ? s->ver : 0;
}

/* A snapshot as fristad.lua packs it. */
static void pack_snapshot(msgpack_sbuffer *sb, const char *id, uint64_t ver, bool with_units)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 17);
    rc |= proto_pack_kv_str(&pk, "id", id);
    rc |= proto_pack_kv_str(&pk, "name", "Kvinnojouren");
    rc |= proto_pack_kv_str(&pk, "kind", "kvinnojour");
    rc |= proto_pack_kv_str(&pk, "municipality", "0180");
    rc |= proto_pack_kv_int(&pk, "protection", 2);
    rc |= proto_pack_kv_str(&pk, "phone", "08-555 01 01");
    rc |= proto_pack_cstr(&pk, "groups");
    rc |= msgpack_pack_array(&pk, 2);
    rc |= proto_pack_cstr(&pk, "women");
    rc |= proto_pack_cstr(&pk, "hbtqi");
    rc |= proto_pack_kv_int(&pk, "max_children", -1);
    rc |= proto_pack_kv_int(&pk, "boys_max_age", 15);
    rc |= proto_pack_kv_bool(&pk, "pets", true);
    rc |= proto_pack_kv_bool(&pk, "substance", false);
    rc |= proto_pack_cstr(&pk, "languages");
    rc |= msgpack_pack_array(&pk, 1);
    rc |= proto_pack_cstr(&pk, "sv");
    rc |= proto_pack_kv_bool(&pk, "paused", false);
    rc |= proto_pack_kv_bool(&pk, "retired", false);
    rc |= proto_pack_kv_int(&pk, "updated_at", 1700000000000);
    rc |= proto_pack_kv_int(&pk, "version", (int64_t)ver);
    rc |= proto_pack_cstr(&pk, "units");
    rc |= msgpack_pack_array(&pk, with_units ? 2 : 0);
    for (int u = 0; with_units && u < 2; u++) {
        rc |= msgpack_pack_map(&pk, 6);
        rc |= proto_pack_kv_str(&pk, "id", u ? "a1" : "b2"); /* out of order on purpose */
        rc |= proto_pack_kv_int(&pk, "beds", 3 + u);
        rc |= proto_pack_kv_bool(&pk, "accessible", u == 1);
        rc |= proto_pack_kv_str(&pk, "state", u ? "free" : "occupied");
        rc |= proto_pack_kv_bool(&pk, "held", false);
        rc |= proto_pack_kv_bool(&pk, "placed", u == 0);
    }
    assert_int_equal(rc, 0);
}

static void apply(struct index *ix, const char *id, uint64_t ver)
{
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    msgpack_sbuffer_init(&sb);
    pack_snapshot(&sb, id, ver, true);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(index_apply(ix, &u.data), 0);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

static void test_snapshot_vocabulary(void **state)
{
    (void)state;
    struct index ix;
    index_init(&ix);
    apply(&ix, "frida", 7);
    const struct idx_shelter *s = index_find(&ix, "frida");
    assert_non_null(s);
    assert_int_equal(s->ver, 7);
    assert_int_equal(s->protection, 2);
    assert_int_equal(s->groups, (1u << GROUP_WOMEN) | (1u << GROUP_HBTQI));
    assert_int_equal(s->max_children, IDX_NO_LIMIT);
    assert_int_equal(s->boys_max_age, 15);
    assert_true(s->pets);
    assert_false(s->substance);
    assert_int_equal(s->n_languages, 1);
    assert_string_equal(s->languages[0], "sv");
    assert_int_equal(s->updated_ms, 1700000000000);
    assert_int_equal(s->n_units, 2);
    assert_string_equal(s->units[0].id, "a1"); /* sorted by id */
    assert_true(s->units[0].accessible);
    assert_int_equal(s->units[0].state, VAC_FREE);
    assert_true(s->units[1].placed);
    index_clear(&ix);
}

/*
 * The snapshot of pack_snapshot with extra pairs: `pairs` of them packed by `extra`. Returns the
 * parse result of index_parse_snapshot into *s.
 */
static int parse_with(void (*extra)(msgpack_packer *pk), unsigned pairs, struct idx_shelter *s)
{
    msgpack_sbuffer base, sb;
    msgpack_packer pk;
    msgpack_unpacked u;
    msgpack_sbuffer_init(&base);
    pack_snapshot(&base, "skydd", 3, false);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, base.data, base.size, NULL), MSGPACK_UNPACK_SUCCESS);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, u.data.via.map.size + pairs);
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        rc |= msgpack_pack_object(&pk, u.data.via.map.ptr[i].key);
        rc |= msgpack_pack_object(&pk, u.data.via.map.ptr[i].val);
    }
    assert_int_equal(rc, 0);
    extra(&pk);
    msgpack_unpacked_destroy(&u);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    int parsed = index_parse_snapshot(&u.data, s);
    if (parsed == 0)
        free(s->units);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&base);
    return parsed;
}

static void practice(msgpack_packer *pk)
{
    int rc = proto_pack_cstr(pk, "competences");
    rc |= msgpack_pack_array(pk, 2);
    rc |= proto_pack_cstr(pk, "hbv");
    rc |= proto_pack_cstr(pk, "interpreter");
    rc |= proto_pack_kv_str(pk, "operator", "privat");
    rc |= proto_pack_kv_str(pk, "ivo_permit", "3.5.1-12345/2024");
    rc |= proto_pack_kv_str(pk, "ivo_permit_date", "2024-04-01");
    rc |= proto_pack_kv_bool(pk, "ivo_registered", true);
    assert_int_equal(rc, 0);
}

static void practice_nil(msgpack_packer *pk)
{
    int rc = proto_pack_cstr(pk, "operator") | msgpack_pack_nil(pk);
    rc |= proto_pack_cstr(pk, "ivo_permit") | msgpack_pack_nil(pk);
    assert_int_equal(rc, 0);
}

static void bad_operator(msgpack_packer *pk)
{
    assert_int_equal(proto_pack_kv_str(pk, "operator", "region"), 0);
}

static void bad_competence(msgpack_packer *pk)
{
    int rc = proto_pack_cstr(pk, "competences") | msgpack_pack_array(pk, 1);
    assert_int_equal(rc | proto_pack_cstr(pk, "hedersvald"), 0);
}

static void bad_date(msgpack_packer *pk)
{
    assert_int_equal(proto_pack_kv_str(pk, "ivo_permit_date", "2023-02-29"), 0);
}

static void bad_registered(msgpack_packer *pk)
{
    assert_int_equal(proto_pack_kv_int(pk, "ivo_registered", 1), 0);
}

/*
 * Competences, operator and permit are read when present; a snapshot of a shelter registered
 * before they existed has none of them and still loads, with none, operator unknown and no
 * permit. Present but malformed is refused like any other field.
 */
static void test_practice_fields(void **state)
{
    (void)state;
    struct idx_shelter s;
    assert_int_equal(parse_with(practice, 5, &s), 0);
    assert_int_equal(s.competences, 1u << COMP_HBV | 1u << COMP_INTERPRETER);
    assert_int_equal(s.operator_, OPERATOR_PRIVAT);
    assert_string_equal(s.ivo_permit, "3.5.1-12345/2024");
    assert_string_equal(s.ivo_permit_date, "2024-04-01");
    assert_true(s.ivo_registered);

    /* From before: the fields of pack_snapshot alone. */
    struct index ix;
    index_init(&ix);
    apply(&ix, "gammal", 2);
    const struct idx_shelter *old = index_find(&ix, "gammal");
    assert_non_null(old);
    assert_int_equal(old->competences, 0);
    assert_int_equal(old->operator_, IDX_UNKNOWN);
    assert_string_equal(old->ivo_permit, "");
    assert_false(old->ivo_registered);
    index_clear(&ix);
    assert_int_equal(parse_with(practice_nil, 2, &s), 0);
    assert_int_equal(s.operator_, IDX_UNKNOWN);

    assert_int_equal(parse_with(bad_operator, 1, &s), -1);
    assert_int_equal(parse_with(bad_competence, 1, &s), -1);
    assert_int_equal(parse_with(bad_date, 1, &s), -1);
    assert_int_equal(parse_with(bad_registered, 1, &s), -1);
}

static void test_a_snapshot_in_old_words_is_refused(void **state)
{
    (void)state;
    /* The short field names of the first layout ("mun", "prot", ...) are not read: records
     * are renamed in Redis before the daemon loads them (fristad_migrate). */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(msgpack_pack_map(&pk, 2) | proto_pack_kv_str(&pk, "id", "x") |
                         proto_pack_kv_str(&pk, "mun", "0180"),
                     0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    struct idx_shelter s;
    assert_int_equal(index_parse_snapshot(&u.data, &s), -1);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

static void test_newer_copy_wins(void **state)
{
    (void)state;
    struct index ix;
    index_init(&ix);
    assert_int_equal(index_put_take(&ix, shelter("b", 5)), 0);
    assert_int_equal(index_put_take(&ix, shelter("a", 3)), 0);
    assert_int_equal(index_put_take(&ix, shelter("b", 4)), 0); /* late and older: ignored */
    assert_int_equal(ver_of(&ix, "b"), 5);
    assert_int_equal(index_put_take(&ix, shelter("b", 9)), 0);
    assert_int_equal(ver_of(&ix, "b"), 9);
    assert_int_equal(index_put_take(&ix, shelter("b", 9)), 0); /* the same again: kept */
    assert_int_equal(ix.n, 2);
    assert_string_equal(ix.shelters[0]->id, "a"); /* kept sorted */
    struct idx_shelter *taken = index_take(&ix, "a");
    assert_non_null(taken);
    index_shelter_free(taken);
    assert_null(index_find(&ix, "a"));
    assert_null(index_take(&ix, "a"));
    index_clear(&ix);
}

static void test_reload_merges_raced_events(void **state)
{
    (void)state;
    struct index ix, fresh;
    index_init(&ix);
    index_init(&fresh);
    /* What the events left while the dump (at version 10) was in flight. */
    assert_int_equal(index_put_take(&ix, shelter("raced-newer", 12)), 0);
    assert_int_equal(index_put_take(&ix, shelter("raced-older", 8)), 0);
    assert_int_equal(index_put_take(&ix, shelter("gone", 3)), 0); /* not in Redis any more */
    assert_int_equal(index_put_take(&ix, shelter("stale", 2)), 0);
    /* The dump. */
    assert_int_equal(index_put_take(&fresh, shelter("raced-newer", 10)), 0);
    assert_int_equal(index_put_take(&fresh, shelter("raced-older", 9)), 0);
    assert_int_equal(index_put_take(&fresh, shelter("stale", 6)), 0);
    char raced[2][PROTO_ID_MAX + 1] = {"raced-newer", "raced-older"};
    assert_int_equal(index_replace(&ix, &fresh, 10, 12, raced, 2), 0);
    assert_true(ix.loaded);
    assert_int_equal(ix.ver, 12);
    assert_int_equal(ix.n, 3);
    assert_int_equal(ver_of(&ix, "raced-newer"), 12); /* the event's copy is newer */
    assert_int_equal(ver_of(&ix, "raced-older"), 9);  /* the dump's copy is newer */
    assert_int_equal(ver_of(&ix, "stale"), 6);        /* not raced: the dump's */
    assert_null(index_find(&ix, "gone"));             /* Redis went back in time */
    assert_int_equal(fresh.n, 0);
    index_clear(&ix);
}

static void test_reload_with_no_events_takes_the_dump_version(void **state)
{
    (void)state;
    struct index ix, fresh;
    index_init(&ix);
    index_init(&fresh);
    assert_int_equal(index_put_take(&ix, shelter("x", 50)), 0); /* Redis restored to 20 */
    assert_int_equal(index_put_take(&fresh, shelter("x", 20)), 0);
    assert_int_equal(index_replace(&ix, &fresh, 20, 0, NULL, 0), 0);
    assert_int_equal(ix.ver, 20);
    assert_int_equal(ver_of(&ix, "x"), 20);
    index_clear(&ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_vocabulary),
        cmocka_unit_test(test_a_snapshot_in_old_words_is_refused),
        cmocka_unit_test(test_practice_fields),
        cmocka_unit_test(test_newer_copy_wins),
        cmocka_unit_test(test_reload_merges_raced_events),
        cmocka_unit_test(test_reload_with_no_events_takes_the_dump_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
