/* Replies: packing helpers for the daemon and the decoder the client uses. */
#include <string.h>

#include "proto_internal.h"

int proto_pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str_with_body(pk, s, n) ? -1 : 0;
}

int proto_pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    return proto_pack_cstr(pk, k) | proto_pack_cstr(pk, v);
}

int proto_pack_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
    return proto_pack_cstr(pk, k) | (msgpack_pack_int64(pk, v) ? -1 : 0);
}

int proto_pack_kv_bool(msgpack_packer *pk, const char *k, bool v)
{
    return proto_pack_cstr(pk, k) | ((v ? msgpack_pack_true(pk) : msgpack_pack_false(pk)) ? -1 : 0);
}

static int pack_id(msgpack_packer *pk, uint64_t id, bool has_id)
{
    int rc = proto_pack_cstr(pk, "id");
    return rc | ((has_id ? msgpack_pack_uint64(pk, id) : msgpack_pack_nil(pk)) ? -1 : 0);
}

int proto_pack_ok_begin(msgpack_packer *pk, uint64_t id, bool has_id)
{
    int rc = msgpack_pack_map(pk, 3) ? -1 : 0;
    rc |= pack_id(pk, id, has_id);
    rc |= proto_pack_kv_bool(pk, "ok", true);
    rc |= proto_pack_cstr(pk, "result");
    return rc;
}

int proto_pack_error(msgpack_packer *pk, uint64_t id, bool has_id, enum proto_err code,
                     const char *message)
{
    int rc = msgpack_pack_map(pk, 3) ? -1 : 0;
    rc |= pack_id(pk, id, has_id);
    rc |= proto_pack_kv_bool(pk, "ok", false);
    rc |= proto_pack_cstr(pk, "error");
    rc |= msgpack_pack_map(pk, 2) ? -1 : 0;
    rc |= proto_pack_kv_str(pk, "code", proto_err_code(code));
    rc |= proto_pack_kv_str(pk, "message", message ? message : proto_err_code(code));
    return rc;
}

bool proto_str_is(const msgpack_object *o, const char *lit)
{
    return o && o->type == MSGPACK_OBJECT_STR && proto_str_eq(o->via.str.ptr, o->via.str.size, lit);
}

const msgpack_object *proto_map_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        if (proto_str_is(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static void copy_str(char *dst, size_t cap, const msgpack_object *o)
{
    size_t n = o->via.str.size < cap - 1 ? o->via.str.size : cap - 1;
    memcpy(dst, o->via.str.ptr, n);
    dst[n] = '\0';
}

/*
 * Replies nest deeper and hold more than requests ({"result": {"shelter": {"units": [{...}]}}}
 * is five levels; a listing of every shelter is more than 256 elements), so the request limits
 * of proto_check do not apply. The declared-count check still bounds what msgpack-c reserves
 * by the size of the frame.
 */
static const struct proto_limits reply_limits = {
    .depth = PROTO_CHECK_MAX_DEPTH,
    .items = UINT64_MAX,
    .objects = UINT64_MAX,
};

enum proto_err proto_decode_reply(const uint8_t *p, size_t n, struct proto_reply *out,
                                  struct proto_error *err)
{
    memset(out, 0, sizeof *out);
    msgpack_unpacked_init(&out->unpacked);
    enum proto_err e = proto_unpack_limits(p, n, &reply_limits, &out->unpacked, err);
    if (e)
        goto fail;
    const msgpack_object *root = &out->unpacked.data;
    const msgpack_object *id = proto_map_get(root, "id");
    const msgpack_object *ok = proto_map_get(root, "ok");
    if (root->type != MSGPACK_OBJECT_MAP || !id || !ok || ok->type != MSGPACK_OBJECT_BOOLEAN) {
        e = proto_fail(err, PROTO_E_BAD_FRAME, "a reply is a map with 'id' and 'ok'");
        goto fail;
    }
    if (id->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        out->id = id->via.u64;
        out->has_id = true;
    } else if (id->type != MSGPACK_OBJECT_NIL) {
        e = proto_fail(err, PROTO_E_BAD_FRAME, "reply 'id' must be an integer or nil");
        goto fail;
    }
    out->ok = ok->via.boolean;
    if (out->ok) {
        out->result = proto_map_get(root, "result");
        if (!out->result) {
            e = proto_fail(err, PROTO_E_BAD_FRAME, "an ok reply has a 'result'");
            goto fail;
        }
        return PROTO_OK;
    }
    const msgpack_object *eo = proto_map_get(root, "error");
    const msgpack_object *code = proto_map_get(eo, "code");
    const msgpack_object *msg = proto_map_get(eo, "message");
    if (!code || code->type != MSGPACK_OBJECT_STR || !msg || msg->type != MSGPACK_OBJECT_STR) {
        e = proto_fail(err, PROTO_E_BAD_FRAME, "an error reply has 'error': {code, message}");
        goto fail;
    }
    copy_str(out->code_text, sizeof out->code_text, code);
    copy_str(out->message, sizeof out->message, msg);
    out->code = proto_err_from_code(code->via.str.ptr, code->via.str.size);
    return PROTO_OK;
fail:
    msgpack_unpacked_destroy(&out->unpacked);
    memset(out, 0, sizeof *out);
    return e;
}

void proto_reply_free(struct proto_reply *r)
{
    msgpack_unpacked_destroy(&r->unpacked);
    r->result = NULL;
}
