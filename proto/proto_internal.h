/* Internals shared by the files of the proto library; not installed. */
#ifndef FRISTAD_PROTO_INTERNAL_H
#define FRISTAD_PROTO_INTERNAL_H

#include <fristad/proto.h>

extern const char proto_municipality_codes[PROTO_MUNICIPALITIES][5];
extern const char proto_county_codes[PROTO_COUNTIES][3];

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
