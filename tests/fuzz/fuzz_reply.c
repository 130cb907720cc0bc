/*
 * Fuzz target: the client's reply decoder. The input is one reply frame body. A reply that
 * decodes is packed again with the library's own reply packers and decoded a second time;
 * id, ok, code, message and result must come back unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fristad/proto.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *what)
{
    fprintf(stderr, "fuzz_reply: invariant broken: %s\n", what);
    abort();
}

/* Compared as packed bytes: msgpack_object_equal would call a NaN different from itself. */
static bool same_object(const msgpack_object *a, const msgpack_object *b)
{
    msgpack_sbuffer sa, sb;
    msgpack_packer pa, pb;
    msgpack_sbuffer_init(&sa);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pa, &sa, msgpack_sbuffer_write);
    msgpack_packer_init(&pb, &sb, msgpack_sbuffer_write);
    if (msgpack_pack_object(&pa, *a) != 0 || msgpack_pack_object(&pb, *b) != 0)
        broken("packing failed");
    bool same = sa.size == sb.size && memcmp(sa.data, sb.data, sa.size) == 0;
    msgpack_sbuffer_destroy(&sa);
    msgpack_sbuffer_destroy(&sb);
    return same;
}

static void check_again(const struct proto_reply *r)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc;
    if (r->ok) {
        rc = proto_pack_ok_begin(&pk, r->id, r->has_id);
        rc |= msgpack_pack_object(&pk, *r->result);
    } else {
        rc = proto_pack_error(&pk, r->id, r->has_id, r->code, r->message);
    }
    if (rc != 0)
        broken("packing failed");

    struct proto_reply again;
    struct proto_error err;
    if (proto_decode_reply((const uint8_t *)sb.data, sb.size, &again, &err) != PROTO_OK)
        broken("a packed reply does not decode");
    if (again.id != r->id || again.has_id != r->has_id || again.ok != r->ok)
        broken("id or ok changed");
    if (r->ok) {
        if (!again.result || !same_object(again.result, r->result))
            broken("the result changed");
    } else {
        if (again.code != r->code)
            broken("the code changed");
        if (strcmp(again.message, r->message) != 0)
            broken("the message changed");
        if (strcmp(again.code_text, proto_err_code(r->code)) != 0)
            broken("the code text is not the code's string");
    }
    proto_reply_free(&again);
    msgpack_sbuffer_destroy(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_reply r;
    struct proto_error err;
    memset(&err, 0, sizeof err);
    enum proto_err e = proto_decode_reply(data, size, &r, &err);
    if (e != err.code)
        broken("err.code differs from the result");
    if (e != PROTO_OK) {
        if (e != PROTO_E_BAD_FRAME)
            broken("a reply decoder error other than bad_frame");
        if (r.result || r.has_id)
            broken("a failed decode left data behind");
        proto_reply_free(&r); /* must be harmless after a failure */
        return 0;
    }
    if (r.ok && !r.result)
        broken("an ok reply without a result");
    if (!memchr(r.code_text, '\0', sizeof r.code_text) ||
        !memchr(r.message, '\0', sizeof r.message))
        broken("an unterminated string");
    if (!r.ok) {
        if (r.code != PROTO_E__COUNT && strcmp(r.code_text, proto_err_code(r.code)) != 0)
            broken("code and code_text disagree");
        if (r.code != PROTO_E__COUNT)
            check_again(&r);
    } else {
        check_again(&r);
    }
    proto_reply_free(&r);
    return 0;
}
