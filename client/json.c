/*
 * A small JSON writer for --json output. Scripts parse what we print, so every document must
 * be valid JSON whatever the server sent: strings are escaped, invalid UTF-8 is replaced,
 * numbers JSON cannot express become null. A library would add a dependency for ~150 lines.
 *
 * The result is the server's, key for key and value for value, with one exception: a time
 * (the key "at" or one ending in "_at") is ISO 8601 local time with its offset, such as
 * "2026-11-22T14:05:09.123+01:00", instead of milliseconds since 1970.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fristad/proto.h>

#include "json.h"
#include "times.h"

/* Deeper than anything proto_check lets through; a guard, not a limit anyone meets. */
#define JSON_MAX_DEPTH 64

void json_write_string(FILE *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', out);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = proto_utf8_next((const char *)s + i, n - i, &cp);
        if (len == 0) {
            fputs("\\ufffd", out);
            i++;
            continue;
        }
        switch (cp) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\b':
            fputs("\\b", out);
            break;
        case '\f':
            fputs("\\f", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            /* U+2028 and U+2029 are valid JSON but end a line in JavaScript source. */
            if (cp < 0x20 || cp == 0x7f || cp == 0x2028 || cp == 0x2029)
                fprintf(out, "\\u%04" PRIx32, cp);
            else
                fwrite(s + i, 1, len, out);
            break;
        }
        i += len;
    }
    fputc('"', out);
}

static void write_base64(FILE *out, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    fputc('"', out);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        fputc(tab[v >> 18 & 63], out);
        fputc(tab[v >> 12 & 63], out);
        fputc(i + 1 < n ? tab[v >> 6 & 63] : '=', out);
        fputc(i + 2 < n ? tab[v & 63] : '=', out);
    }
    fputc('"', out);
}

static void write_double(FILE *out, double d, bool single)
{
    if (!isfinite(d)) {
        fputs("null", out);
        return;
    }
    /* The shortest form that reads back as the same value; 9 and 17 digits always do. */
    char buf[40];
    for (int prec = single ? 6 : 15; prec <= (single ? 9 : 17); prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        double back = strtod(buf, NULL);
        if (single ? (float)back == (float)d : back == d)
            break;
    }
    fputs(buf, out);
    /* Keep a float a float for readers that tell 1.0 from 1. */
    if (!strpbrk(buf, ".eE"))
        fputs(".0", out);
}

static int write_value(FILE *out, const msgpack_object *o, unsigned depth);

/* "at", "created_at": a time in milliseconds since 1970. */
static bool is_time_key(const msgpack_object *k)
{
    return k->type == MSGPACK_OBJECT_STR &&
           ((k->via.str.size == 2 && memcmp(k->via.str.ptr, "at", 2) == 0) ||
            (k->via.str.size > 3 && memcmp(k->via.str.ptr + k->via.str.size - 3, "_at", 3) == 0));
}

/* JSON keys are strings: a scalar key is written as its text, a container as its JSON. */
static int write_key(FILE *out, const msgpack_object *k, unsigned depth)
{
    char buf[40];
    switch (k->type) {
    case MSGPACK_OBJECT_STR:
        json_write_string(out, k->via.str.ptr, k->via.str.size);
        return 0;
    case MSGPACK_OBJECT_BIN:
        write_base64(out, (const unsigned char *)k->via.bin.ptr, k->via.bin.size);
        return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        snprintf(buf, sizeof buf, "%" PRIu64, k->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        snprintf(buf, sizeof buf, "%" PRId64, k->via.i64);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        snprintf(buf, sizeof buf, "%s", k->via.boolean ? "true" : "false");
        break;
    case MSGPACK_OBJECT_NIL:
        snprintf(buf, sizeof buf, "null");
        break;
    default: {
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        if (!mem)
            return -1;
        int rc = write_value(mem, k, depth);
        if (fclose(mem) != 0)
            rc = -1;
        if (rc == 0)
            json_write_string(out, text, len);
        free(text);
        return rc;
    }
    }
    json_write_string(out, buf, strlen(buf));
    return 0;
}

static int write_value(FILE *out, const msgpack_object *o, unsigned depth)
{
    if (depth >= JSON_MAX_DEPTH) {
        fputs("null", out);
        return 0;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        fputs("null", out);
        return 0;
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "true" : "false", out);
        return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        fprintf(out, "%" PRIu64, o->via.u64);
        return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        fprintf(out, "%" PRId64, o->via.i64);
        return 0;
    case MSGPACK_OBJECT_FLOAT32:
        write_double(out, o->via.f64, true);
        return 0;
    case MSGPACK_OBJECT_FLOAT64:
        write_double(out, o->via.f64, false);
        return 0;
    case MSGPACK_OBJECT_STR:
        json_write_string(out, o->via.str.ptr, o->via.str.size);
        return 0;
    case MSGPACK_OBJECT_BIN:
        write_base64(out, (const unsigned char *)o->via.bin.ptr, o->via.bin.size);
        return 0;
    case MSGPACK_OBJECT_EXT:
        /* proto_check refuses ext types; should one ever pass, keep its bytes. */
        fprintf(out, "{\"ext_type\":%d,\"data\":", (int)o->via.ext.type);
        write_base64(out, (const unsigned char *)o->via.ext.ptr, o->via.ext.size);
        fputc('}', out);
        return 0;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', out);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i > 0)
                fputc(',', out);
            if (write_value(out, &o->via.array.ptr[i], depth + 1) != 0)
                return -1;
        }
        fputc(']', out);
        return 0;
    case MSGPACK_OBJECT_MAP:
        fputc('{', out);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
            char iso[48];
            if (i > 0)
                fputc(',', out);
            if (write_key(out, k, depth + 1) != 0)
                return -1;
            fputc(':', out);
            if (is_time_key(k) &&
                (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                 v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) &&
                times_iso(v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 > INT64_MAX
                              ? INT64_MAX
                              : v->via.i64,
                          iso, sizeof iso)) {
                json_write_string(out, iso, strlen(iso));
                continue;
            }
            if (write_value(out, v, depth + 1) != 0)
                return -1;
        }
        fputc('}', out);
        return 0;
    }
    fputs("null", out);
    return 0;
}

int json_write_value(FILE *out, const msgpack_object *o)
{
    return write_value(out, o, 0);
}

void json_write_error(FILE *out, const char *code, const char *message)
{
    fputs("{\"error\":{\"code\":", out);
    json_write_string(out, code, strlen(code));
    fputs(",\"message\":", out);
    json_write_string(out, message, strlen(message));
    fputs("}}\n", out);
}
