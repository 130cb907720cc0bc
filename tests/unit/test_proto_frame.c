/*
 * Unit tests of proto/frame.c against proto/PROTOCOL.md: the length-prefixed framing, the
 * structural pre-check that runs before msgpack-c sees a body, and proto_unpack.
 */
#include "proto_test.h"

static enum proto_err check(const void *p, size_t n)
{
    uint8_t *copy = dup_bytes(p, n);
    struct proto_error err;
    enum proto_err e = proto_check(copy, n, &err);
    free(copy);
    return e;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_header),  cmocka_unit_test(test_frame_peek),
        cmocka_unit_test(test_check_depth),   cmocka_unit_test(test_check_counts),
        cmocka_unit_test(test_check_objects), cmocka_unit_test(test_check_types),
        cmocka_unit_test(test_unpack),
    };
    return cmocka_run_group_tests_name("proto_frame", tests, NULL, NULL);
}
