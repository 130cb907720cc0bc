/*
 * JSON for the web API (json.h). A JSON request is turned into exactly the msgpack frame body a
 * connection would send ({"id": 0, "op": OP, "args": {...}}) and handed to the protocol's
 * decoder, which checks its shape (depth, sizes) and every field as for any frame. JSON's types
 * map one to one: an object to a map, an array to an array, a string to a str, an integer to an
 * integer, a number with a fraction or exponent to a float (which an integer field refuses, as
 * it refuses a msgpack float), true and false, null to nil.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json.h"

/* Deeper than the decoder allows (PROTO_MAX_DEPTH), so that its own message is the one given. */
#define MAX_DEPTH (PROTO_MAX_DEPTH + 2)

static int pack_json(msgpack_packer *pk, const json_t *v, unsigned depth)
{
    if (depth > MAX_DEPTH)
        return -2;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        int rc = msgpack_pack_map(pk, json_object_size(v));
        json_object_foreach((json_t *)v, k, x)
        {
            rc |= proto_pack_cstr(pk, k);
            int sub = pack_json(pk, x, depth + 1);
            if (sub == -2)
                return -2;
            rc |= sub;
        }
        return rc ? -1 : 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        int rc = msgpack_pack_array(pk, json_array_size(v));
        json_array_foreach(v, i, x)
        {
            int sub = pack_json(pk, x, depth + 1);
            if (sub == -2)
                return -2;
            rc |= sub;
        }
        return rc ? -1 : 0;
    }
    case JSON_STRING:
        return msgpack_pack_str_with_body(pk, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, json_integer_value(v));
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(v));
    case JSON_TRUE:
        return msgpack_pack_true(pk);
    case JSON_FALSE:
        return msgpack_pack_false(pk);
    case JSON_NULL:
        return msgpack_pack_nil(pk);
    }
    return -1;
}

/* Packs the request around `args` (a JSON object) and decodes it as a frame body. */
static enum proto_err decode_args(enum proto_op op, const json_t *args, struct proto_request *out,
                                  struct proto_error *err)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 3);
    rc |= proto_pack_cstr(&pk, "id") | msgpack_pack_uint64(&pk, 0);
    rc |= proto_pack_kv_str(&pk, "op", proto_op_name(op));
    rc |= proto_pack_cstr(&pk, "args");
    int body = rc ? -1 : pack_json(&pk, args, 2);
    enum proto_err e;
    if (body == -2)
        e = proto_fail(err, PROTO_E_BAD_FRAME, "the JSON nests deeper than %u levels",
                       PROTO_MAX_DEPTH);
    else if (body != 0)
        e = proto_fail(err, PROTO_E_INTERNAL, "out of memory");
    else
        e = proto_decode_request((const uint8_t *)sb.data, sb.size, out, err);
    msgpack_sbuffer_destroy(&sb);
    return e;
}

enum proto_err json_decode_request(enum proto_op op, const char *body, size_t len,
                                   struct proto_request *out, struct proto_error *err)
{
    json_error_t je;
    memset(out, 0, sizeof *out);
    if (len == 0)
        return proto_fail(err, PROTO_E_BAD_FRAME,
                          "the body is empty; send one JSON object with the op's fields ({} "
                          "when it takes none)");
    /* Duplicate keys are refused, as the protocol refuses a key given twice. */
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return proto_fail(err, PROTO_E_BAD_FRAME,
                          "the body is not valid JSON: %.120s (line %d, column %d)", je.text,
                          je.line, je.column);
    enum proto_err e;
    if (!json_is_object(root))
        e = proto_fail(err, PROTO_E_BAD_FRAME,
                       "the body must be one JSON object with the op's fields");
    else
        e = decode_args(op, root, out, err);
    json_decref(root);
    return e;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
    }
    return true;
}

/* A comma-separated list as a JSON array of strings. */
static json_t *split(const char *s)
{
    json_t *a = json_array();
    while (a && *s) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        json_t *item = json_stringn(s, n);
        if (!item || json_array_append_new(a, item) != 0) {
            json_decref(a);
            return NULL;
        }
        s += n + (comma ? 1 : 0);
    }
    return a;
}

enum proto_err json_decode_params(enum proto_op op, const struct json_param *params, size_t n,
                                  struct proto_request *out, struct proto_error *err)
{
    memset(out, 0, sizeof *out);
    json_t *args = json_object();
    if (!args)
        return proto_fail(err, PROTO_E_INTERNAL, "out of memory");
    enum proto_err e = PROTO_OK;
    for (size_t i = 0; i < n && e == PROTO_OK; i++) {
        const char *name = params[i].name, *value = params[i].value;
        json_t *v;
        if (json_object_get(args, name)) {
            e = proto_fail(err, PROTO_E_BAD_REQUEST, "parameter '%.40s' is given twice", name);
            break;
        }
        if (strcmp(name, "types") == 0)
            v = split(value);
        else if (strcmp(name, "since") == 0 && all_digits(value) && strlen(value) <= 18)
            v = json_integer(strtoll(value, NULL, 10));
        else
            v = json_string(value);
        if (!v) {
            e = proto_fail(err, PROTO_E_BAD_REQUEST, "parameter '%.40s' is not valid UTF-8 text",
                           name);
            break;
        }
        if (json_object_set_new(args, name, v) != 0)
            e = proto_fail(err, PROTO_E_BAD_REQUEST, "parameter names must be UTF-8 text");
    }
    if (e == PROTO_OK)
        e = decode_args(op, args, out, err);
    json_decref(args);
    return e;
}

/* ---- replies ---------------------------------------------------------------------------- */

int json_http_status(enum proto_err code)
{
    /* clang-format off */
    static const int status[PROTO_E__COUNT] = {
        [PROTO_OK] = 200,
        [PROTO_E_BAD_FRAME] = 400,       [PROTO_E_TOO_LARGE] = 413,
        [PROTO_E_BAD_REQUEST] = 400,     [PROTO_E_UNKNOWN_OP] = 404,
        [PROTO_E_UNAUTHORIZED] = 401,    [PROTO_E_FORBIDDEN] = 403,
        [PROTO_E_NOT_FOUND] = 404,       [PROTO_E_CONFLICT] = 409,
        [PROTO_E_UNAVAILABLE] = 503,     [PROTO_E_INTERNAL] = 500,
        [PROTO_E_RATE_LIMITED] = 429,    [PROTO_E_PERSONAL_DATA] = 400,
        [PROTO_E_OUTCOME_UNKNOWN] = 504, [PROTO_E_INELIGIBLE] = 422,
        [PROTO_E_LIMIT_REACHED] = 409,   [PROTO_E_GONE] = 410,
    };
    /* clang-format on */
    return (unsigned)code < PROTO_E__COUNT && status[code] ? status[code] : 500;
}

static json_t *from_msgpack(const msgpack_object *o, unsigned depth)
{
    if (depth > 16)
        return NULL;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o->via.u64 > (uint64_t)INT64_MAX ? json_real((double)o->via.u64)
                                                : json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN: {
        json_t *s = json_stringn(o->via.str.ptr, o->via.str.size);
        return s ? s : json_null(); /* not UTF-8: our replies have none */
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *x = from_msgpack(&o->via.array.ptr[i], depth + 1);
            if (!x || json_array_append_new(a, x) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                continue;
            json_t *x = from_msgpack(&kv->val, depth + 1);
            if (!x || json_object_setn_new(m, kv->key.via.str.ptr, kv->key.via.str.size, x) != 0) {
                json_decref(m);
                return NULL;
            }
        }
        return m;
    }
    case MSGPACK_OBJECT_EXT:
        return json_null();
    }
    return NULL;
}

static int dump_to(const char *buffer, size_t size, void *data)
{
    return evbuffer_add(data, buffer, size);
}

int json_append(struct evbuffer *out, const msgpack_object *o)
{
    json_t *v = from_msgpack(o, 0);
    if (!v)
        return -1;
    /* Compact, and "/" escaped so that a value can never close a script or style element. */
    int rc =
        json_dump_callback(v, dump_to, out, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ESCAPE_SLASH);
    json_decref(v);
    return rc == 0 ? 0 : -1;
}

int json_append_error(struct evbuffer *out, const char *code, const char *message)
{
    json_t *v = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    if (!v) /* a message that is not UTF-8: our messages are, but say something */
        v = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", "(no message)");
    if (!v)
        return -1;
    int rc = json_dump_callback(v, dump_to, out, JSON_COMPACT | JSON_ESCAPE_SLASH);
    json_decref(v);
    return rc == 0 ? 0 : -1;
}
