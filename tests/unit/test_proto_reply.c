/*
 * Unit tests of proto/reply.c against proto/PROTOCOL.md: packing replies, decoding them, and the
 * table of malformed replies (tests/hostile/replies.tsv).
 */
#include "proto_test.h"

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
        cmocka_unit_test(test_reply_ok),
        cmocka_unit_test(test_reply_error),
        cmocka_unit_test(test_reply_table),
    };
    return cmocka_run_group_tests_name("proto_reply", tests, NULL, NULL);
}
