/*
 * daemon/json.c: a JSON request decodes to exactly the request its msgpack frame decodes to, for
 * one valid request of every op (tests/hostile/valid.tsv, turned into JSON by json_append
 * itself); JSON the protocol cannot carry is refused with bad_frame; every error code has an
 * HTTP status.
 */
#include "../fuzz/request_eq.h"
#include "proto_test.h"

#include <event2/buffer.h>

#include "json.h"

static void test_every_op_decodes_alike(void **state)
{
    (void)state;
    struct tsv t;
    tsv_load(&t, "tests/hostile/valid.tsv", "op\tid\thex", 3);
    assert_int_equal(t.rows, OP__COUNT);
    struct proto_request *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    for (size_t i = 0; i < t.rows; i++) {
        size_t n;
        uint8_t *body = unhex(t.cell[i][2], &n);
        struct proto_error err;
        assert_int_equal(proto_decode_request(body, n, a, &err), PROTO_OK);
        /* The frame's args map, as JSON. */
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        assert_int_equal(msgpack_unpack_next(&u, (const char *)body, n, NULL),
                         MSGPACK_UNPACK_SUCCESS);
        const msgpack_object *args = proto_map_get(&u.data, "args");
        struct evbuffer *json = evbuffer_new();
        assert_non_null(json);
        if (args)
            assert_int_equal(json_append(json, args), 0);
        else
            evbuffer_add(json, "{}", 2);
        size_t len = evbuffer_get_length(json);
        const char *text = (const char *)evbuffer_pullup(json, -1);
        if (json_decode_request(a->op, text, len, b, &err) != PROTO_OK)
            fail_msg("%s: %.*s: %s", t.cell[i][0], (int)len, text, err.message);
        b->id = a->id; /* the JSON transport has no id of its own */
        const char *diff = request_diff(a, b);
        if (diff)
            fail_msg("%s: the JSON request differs in %s", t.cell[i][0], diff);
        evbuffer_free(json);
        msgpack_unpacked_destroy(&u);
        free(body);
    }
    free(a);
    free(b);
    free(t.text);
    free(t.cell);
}

static void test_json_the_protocol_cannot_carry(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "{",
        "[]",
        "\"text\"",
        "{\"home\": \"0180\", \"home\": \"0180\", \"risk\": \"low\"}",
        "{\"home\": \"01\\u000080\", \"risk\": \"low\"}",
        "{\"home\": \"0180\", \"risk\": \"low\", \"limit\": 123456789012345678901234567890}",
        "{\"home\": \"0180\", \"risk\": \"low\"} {}",
        "{\"home\": \"0180\", \"risk\": \"low\", \"children\": [[[[[[[[[[1]]]]]]]]]]}",
    };
    struct proto_request r;
    struct proto_error err;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (json_decode_request(OP_SEARCH, bad[i], strlen(bad[i]), &r, &err) != PROTO_E_BAD_FRAME)
            fail_msg("accepted or misread: %s", bad[i]);
        assert_true(err.message[0] != '\0');
    }
    /* Field rules are the decoder's: a float where an integer belongs, a wrong type. */
    static const char *const refused[] = {
        "{\"home\": \"0180\", \"risk\": \"low\", \"limit\": 5.0}",
        "{\"home\": 180, \"risk\": \"low\"}",
        "{\"home\": \"0180\"}",
        "{\"home\": \"0180\", \"risk\": \"low\", \"nope\": 1}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_int_equal(json_decode_request(OP_SEARCH, refused[i], strlen(refused[i]), &r, &err),
                         PROTO_E_BAD_REQUEST);
}

static void test_query_parameters(void **state)
{
    (void)state;
    struct proto_request r;
    struct proto_error err;
    struct json_param p[] = {
        {"types", "held,accepted"}, {"county", "01"}, {"since", "1700000000000"}};
    if (json_decode_params(OP_WATCH, p, 3, &r, &err) != PROTO_OK)
        fail_msg("%s", err.message);
    assert_int_equal(r.args.types, (1u << EV_HELD) | (1u << EV_ACCEPTED));
    assert_string_equal(r.args.county, "01");
    assert_int_equal(r.args.since, 1700000000000LL);
    assert_false(r.args.since_is_seq);
    struct json_param seq[] = {{"since", "1700000000000-3"}};
    assert_int_equal(json_decode_params(OP_WATCH, seq, 1, &r, &err), PROTO_OK);
    assert_true(r.args.since_is_seq);
    assert_int_equal(r.args.since_seq, 3);
    struct json_param twice[] = {{"county", "01"}, {"county", "03"}};
    assert_int_equal(json_decode_params(OP_WATCH, twice, 2, &r, &err), PROTO_E_BAD_REQUEST);
    struct json_param unknown[] = {{"shelter", "x"}};
    assert_int_equal(json_decode_params(OP_WATCH, unknown, 1, &r, &err), PROTO_E_BAD_REQUEST);
    struct json_param bad_utf8[] = {{"county", "\xff"}};
    assert_int_equal(json_decode_params(OP_WATCH, bad_utf8, 1, &r, &err), PROTO_E_BAD_REQUEST);
}

static void test_every_code_has_a_status(void **state)
{
    (void)state;
    assert_int_equal(json_http_status(PROTO_OK), 200);
    for (int e = 1; e < PROTO_E__COUNT; e++) {
        int s = json_http_status((enum proto_err)e);
        assert_true(s >= 400 && s <= 599);
    }
    assert_int_equal(json_http_status(PROTO_E_BAD_REQUEST), 400);
    assert_int_equal(json_http_status(PROTO_E_UNAUTHORIZED), 401);
    assert_int_equal(json_http_status(PROTO_E_FORBIDDEN), 403);
    assert_int_equal(json_http_status(PROTO_E_NOT_FOUND), 404);
    assert_int_equal(json_http_status(PROTO_E_CONFLICT), 409);
    assert_int_equal(json_http_status(PROTO_E_INELIGIBLE), 422);
    assert_int_equal(json_http_status(PROTO_E_RATE_LIMITED), 429);
    assert_int_equal(json_http_status(PROTO_E_UNAVAILABLE), 503);
    assert_int_equal(json_http_status(PROTO_E_TOO_LARGE), 413);
    assert_int_equal(json_http_status(PROTO_E__COUNT), 500);
}

static void test_replies_as_json(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(msgpack_pack_map(&pk, 5), 0);
    assert_int_equal(proto_pack_kv_str(&pk, "name", "Frida </script> \"å\""), 0);
    assert_int_equal(proto_pack_kv_int(&pk, "n", -3), 0);
    assert_int_equal(proto_pack_kv_bool(&pk, "ok", true), 0);
    assert_int_equal(proto_pack_cstr(&pk, "none"), 0);
    assert_int_equal(msgpack_pack_nil(&pk), 0);
    assert_int_equal(proto_pack_cstr(&pk, "big"), 0);
    assert_int_equal(msgpack_pack_uint64(&pk, UINT64_C(9007199254740993)), 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    struct evbuffer *out = evbuffer_new();
    assert_int_equal(json_append(out, &u.data), 0);
    evbuffer_add(out, "", 1);
    assert_string_equal((const char *)evbuffer_pullup(out, -1),
                        "{\"name\":\"Frida <\\/script> \\\"å\\\"\",\"n\":-3,\"ok\":true,"
                        "\"none\":null,\"big\":9007199254740993}");
    evbuffer_free(out);
    out = evbuffer_new();
    assert_int_equal(json_append_error(out, "forbidden", "no"), 0);
    evbuffer_add(out, "", 1);
    assert_string_equal((const char *)evbuffer_pullup(out, -1),
                        "{\"error\":{\"code\":\"forbidden\",\"message\":\"no\"}}");
    evbuffer_free(out);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_decodes_alike),
        cmocka_unit_test(test_json_the_protocol_cannot_carry),
        cmocka_unit_test(test_query_parameters),
        cmocka_unit_test(test_every_code_has_a_status),
        cmocka_unit_test(test_replies_as_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
