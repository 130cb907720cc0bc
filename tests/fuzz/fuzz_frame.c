/*
 * Fuzz target: the server's view of a connection. The input is a byte stream; frames are cut
 * from it with proto_frame_peek exactly as the daemon does, and every body goes through
 * proto_decode_request. Invariants checked on every frame:
 *   - a document that passes proto_check is one msgpack-c unpacks whole;
 *   - the result is one of the codes a decoder may produce, and err.code agrees with it;
 *   - a bad_frame never carries an id;
 *   - a decoded request validates, and packing it and decoding the bytes again gives the
 *     same request, field by field (round trip).
 * A broken invariant aborts, which libFuzzer and the corpus replayer both report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fristad/proto.h>

#include "request_eq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_frame: invariant broken: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    abort();
}

static void round_trip(const struct proto_request *req)
{
    struct proto_error err;
    if (proto_validate_request(req, &err) != PROTO_OK)
        broken("a decoded request does not validate", err.message);

    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (proto_pack_request(&pk, req) != 0)
        broken("proto_pack_request failed", NULL);
    struct proto_request *again = malloc(sizeof *again);
    if (!again)
        abort();
    enum proto_err e = proto_decode_request((const uint8_t *)sb.data, sb.size, again, &err);
    if (e != PROTO_OK)
        broken("a packed request does not decode", err.message);
    const char *diff = request_diff(req, again);
    if (diff)
        broken("the round trip changed a field", diff);
    free(again);
    msgpack_sbuffer_destroy(&sb);
}

/* What the pre-check lets through, msgpack-c must unpack completely. */
static void check_agrees_with_msgpack(const uint8_t *p, size_t n)
{
    struct proto_error err;
    if (proto_check(p, n, &err) != PROTO_OK)
        return;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, (const char *)p, n, &off) != MSGPACK_UNPACK_SUCCESS || off != n)
        broken("proto_check passed a document msgpack-c cannot unpack", NULL);
    msgpack_unpacked_destroy(&u);
}

static void one_frame(const uint8_t *p, size_t n)
{
    check_agrees_with_msgpack(p, n);

    struct proto_request *req = malloc(sizeof *req);
    if (!req)
        abort();
    struct proto_error err;
    memset(&err, 0, sizeof err);
    enum proto_err e = proto_decode_request(p, n, req, &err);
    if (err.code != e)
        broken("err.code differs from the result", proto_err_code(e));
    switch (e) {
    case PROTO_OK:
        if (!req->has_id)
            broken("a decoded request without an id", NULL);
        round_trip(req);
        break;
    case PROTO_E_BAD_FRAME:
        if (req->has_id)
            broken("bad_frame with an id", err.message);
        break;
    case PROTO_E_BAD_REQUEST:
    case PROTO_E_UNKNOWN_OP:
    case PROTO_E_PERSONAL_DATA:
        if (err.message[0] == '\0' || !memchr(err.message, '\0', sizeof err.message))
            broken("error without a message", proto_err_code(e));
        break;
    default:
        broken("unexpected code", proto_err_code(e));
    }

    /* The decoder must not depend on err being there. */
    struct proto_request *quiet = malloc(sizeof *quiet);
    if (!quiet)
        abort();
    if (proto_decode_request(p, n, quiet, NULL) != e)
        broken("the result depends on err", NULL);
    if (e == PROTO_OK && request_diff(req, quiet))
        broken("two decodes of the same bytes differ", NULL);
    free(quiet);
    free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    for (;;) {
        uint32_t len = 0;
        switch (proto_frame_peek(data + off, size - off, PROTO_DEFAULT_MAX_FRAME, &len)) {
        case PROTO_FRAME_NEED_MORE:
            return 0;
        case PROTO_FRAME_BAD_LENGTH:
            if (len != 0)
                broken("BAD_LENGTH for a non-zero length", NULL);
            return 0; /* the connection is closed */
        case PROTO_FRAME_TOO_LARGE:
            if (len <= PROTO_DEFAULT_MAX_FRAME)
                broken("TOO_LARGE for a length within the maximum", NULL);
            return 0;
        case PROTO_FRAME_READY:
            if (len == 0 || len > PROTO_DEFAULT_MAX_FRAME || len > size - off - PROTO_HEADER_LEN)
                broken("READY with a length that does not fit", NULL);
            off += PROTO_HEADER_LEN;
            one_frame(data + off, len);
            off += len;
            break;
        }
    }
}
