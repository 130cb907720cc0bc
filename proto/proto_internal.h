/* Internals shared by the files of the proto library; not installed. */
#ifndef FRISTAD_PROTO_INTERNAL_H
#define FRISTAD_PROTO_INTERNAL_H

#include <fristad/proto.h>

extern const char proto_municipality_codes[PROTO_MUNICIPALITIES][5];
extern const char proto_county_codes[PROTO_COUNTIES][3];

/* Structural limits of one msgpack document; proto_check applies the request limits. */
struct proto_limits {
    unsigned depth;   /* at most PROTO_CHECK_MAX_DEPTH */
    uint64_t items;   /* elements of one array, or pairs of one map */
    uint64_t objects; /* objects in the whole document */
};

/* Below msgpack-c's own fixed stack of 32 levels. */
#define PROTO_CHECK_MAX_DEPTH 16u

enum proto_err proto_check_limits(const uint8_t *p, size_t n, const struct proto_limits *lim,
                                  struct proto_error *err);
enum proto_err proto_unpack_limits(const uint8_t *p, size_t n, const struct proto_limits *lim,
                                   msgpack_unpacked *out, struct proto_error *err);

/* Compares a msgpack string with a NUL-terminated literal. */
static inline bool proto_str_eq(const char *s, size_t n, const char *lit)
{
    size_t i = 0;
    for (; i < n; i++) {
        if (lit[i] == '\0' || lit[i] != s[i])
            return false;
    }
    return lit[i] == '\0';
}

#endif
