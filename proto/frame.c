/*
 * Framing and the structural pre-check of a msgpack document.
 *
 * msgpack-c 4.0 reserves memory for a declared array or map count before it reads a single
 * element, so a handful of hostile bytes can make it reserve gigabytes. proto_check walks the
 * bytes first with an explicit stack and no allocation, and only a document that passes is
 * given to msgpack_unpack_next.
 */
#include <string.h>

#include "proto_internal.h"

enum proto_frame_status proto_frame_peek(const uint8_t *buf, size_t avail, uint32_t max_frame,
                                         uint32_t *len)
{
    if (avail < PROTO_HEADER_LEN)
        return PROTO_FRAME_NEED_MORE;
    uint32_t l =
        (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | (uint32_t)buf[3];
    *len = l;
    if (l == 0)
        return PROTO_FRAME_BAD_LENGTH;
    if (l > max_frame)
        return PROTO_FRAME_TOO_LARGE;
    if (avail - PROTO_HEADER_LEN < l)
        return PROTO_FRAME_NEED_MORE;
    return PROTO_FRAME_READY;
}

void proto_frame_put_header(uint8_t out[PROTO_HEADER_LEN], uint32_t len)
{
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
}

static uint64_t be(const uint8_t *p, unsigned width)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < width; i++)
        v = v << 8 | p[i];
    return v;
}

/* Pending children of each open container: arrays count elements, maps count keys + values. */
struct level {
    uint64_t left;
};

static const struct proto_limits request_limits = {
    .depth = PROTO_MAX_DEPTH,
    .items = PROTO_MAX_ITEMS,
    .objects = PROTO_MAX_OBJECTS,
};

enum proto_err proto_check(const uint8_t *p, size_t n, struct proto_error *err)
{
    return proto_check_limits(p, n, &request_limits, err);
}

enum proto_err proto_check_limits(const uint8_t *p, size_t n, const struct proto_limits *lim,
                                  struct proto_error *err)
{
    struct level stack[PROTO_CHECK_MAX_DEPTH];
    unsigned max_depth = lim->depth < PROTO_CHECK_MAX_DEPTH ? lim->depth : PROTO_CHECK_MAX_DEPTH;
    unsigned depth = 0; /* open containers */
    size_t off = 0;
    uint64_t objects = 0;
    bool root_done = false;

    if (n == 0)
        return proto_fail(err, PROTO_E_BAD_FRAME, "empty frame");

    while (!root_done) {
        if (off >= n)
            return proto_fail(err, PROTO_E_BAD_FRAME, "frame ends inside a msgpack object");
        if (++objects > lim->objects)
            return proto_fail(err, PROTO_E_BAD_FRAME, "more than %llu objects in one frame",
                              (unsigned long long)lim->objects);

        uint8_t b = p[off++];
        size_t left = n - off;
        uint64_t skip = 0;     /* payload bytes after the header */
        uint64_t children = 0; /* objects this one contains */
        bool container = false;
        unsigned hdr = 0; /* width of a length field */

        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, nil, bool */
        } else if ((b & 0xf0) == 0x80) {
            children = 2u * (b & 0x0fu);
            container = true;
        } else if ((b & 0xf0) == 0x90) {
            children = b & 0x0fu;
            container = true;
        } else if ((b & 0xe0) == 0xa0) {
            skip = b & 0x1fu;
        } else {
            switch (b) {
            case 0xc4:
            case 0xd9:
                hdr = 1;
                break; /* bin8, str8 */
            case 0xc5:
            case 0xda:
                hdr = 2;
                break; /* bin16, str16 */
            case 0xc6:
            case 0xdb:
                hdr = 4;
                break; /* bin32, str32 */
            case 0xca:
                skip = 4;
                break; /* float32 */
            case 0xcb:
                skip = 8;
                break; /* float64 */
            case 0xcc:
            case 0xd0:
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xdc:
            case 0xde:
                hdr = 2;
                container = true;
                break; /* array16, map16 */
            case 0xdd:
            case 0xdf:
                hdr = 4;
                container = true;
                break; /* array32, map32 */
            case 0xc1:
                return proto_fail(err, PROTO_E_BAD_FRAME, "reserved msgpack byte 0xc1");
            default: /* 0xc7-0xc9, 0xd4-0xd8: ext types */
                return proto_fail(err, PROTO_E_BAD_FRAME,
                                  "msgpack extension types are not accepted");
            }
            if (hdr) {
                if (left < hdr)
                    return proto_fail(err, PROTO_E_BAD_FRAME, "frame ends inside a length field");
                uint64_t v = be(p + off, hdr);
                off += hdr;
                left -= hdr;
                if (container)
                    children = (b == 0xde || b == 0xdf) ? 2 * v : v;
                else
                    skip = v;
            }
        }

        if (skip > left)
            return proto_fail(err, PROTO_E_BAD_FRAME,
                              "declared length %llu exceeds the %zu bytes left in the frame",
                              (unsigned long long)skip, left);
        off += (size_t)skip;

        if (container) {
            uint64_t items = (b & 0xf0) == 0x80 || b == 0xde || b == 0xdf ? children / 2 : children;
            if (items > lim->items)
                return proto_fail(err, PROTO_E_BAD_FRAME, "container of %llu items (maximum %llu)",
                                  (unsigned long long)items, (unsigned long long)lim->items);
            /* Every child takes at least one byte. */
            if (children > n - off)
                return proto_fail(err, PROTO_E_BAD_FRAME,
                                  "declared count %llu exceeds the bytes left in the frame",
                                  (unsigned long long)items);
            /* An empty container is a level too: [[[[[]]]]] nests five deep. */
            if (depth >= max_depth)
                return proto_fail(err, PROTO_E_BAD_FRAME, "nesting deeper than %u levels",
                                  max_depth);
            if (children > 0) {
                stack[depth++].left = children;
                continue;
            }
        }

        /* A complete object: pop every container it completes. */
        for (;;) {
            if (depth == 0) {
                root_done = true;
                break;
            }
            if (--stack[depth - 1].left > 0)
                break;
            depth--;
        }
    }
    if (off != n)
        return proto_fail(err, PROTO_E_BAD_FRAME, "%zu bytes after the end of the msgpack object",
                          n - off);
    return PROTO_OK;
}

enum proto_err proto_unpack(const uint8_t *p, size_t n, msgpack_unpacked *out,
                            struct proto_error *err)
{
    return proto_unpack_limits(p, n, &request_limits, out, err);
}

enum proto_err proto_unpack_limits(const uint8_t *p, size_t n, const struct proto_limits *lim,
                                   msgpack_unpacked *out, struct proto_error *err)
{
    enum proto_err e = proto_check_limits(p, n, lim, err);
    if (e != PROTO_OK)
        return e;
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack_next(out, (const char *)p, n, &off);
    if (rc != MSGPACK_UNPACK_SUCCESS || off != n)
        return proto_fail(err, PROTO_E_BAD_FRAME, "malformed msgpack");
    return PROTO_OK;
}
