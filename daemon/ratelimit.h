/* Per-principal limits: a token bucket of requests and a count of connections. */
#ifndef FRISTAD_RATELIMIT_H
#define FRISTAD_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include <fristad/proto.h>

struct limit_entry {
    struct limit_entry *next;
    char name[PROTO_PRINCIPAL_MAX + 1];
    double tokens;   /* requests that may be made now */
    int64_t last_ms; /* when tokens were last topped up */
    unsigned conns;  /* open connections of this principal */
};

struct limits;

struct limits *limits_new(void);
void limits_free(struct limits *l);
/*
 * The entry of a principal, created on first use. Entries are kept for the daemon's life, so a
 * client cannot reset its bucket by reconnecting; principals are a bounded set (certificates
 * of one CA). Returns NULL on allocation failure.
 */
struct limit_entry *limits_get(struct limits *l, const char *name);
/* Takes one request from the bucket; false when the principal is over its rate. */
bool limits_take(struct limit_entry *e, unsigned rate, unsigned burst, int64_t now_ms);

#endif
