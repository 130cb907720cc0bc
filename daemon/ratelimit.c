/* Per-principal limits, in a small chained hash table. */
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define BUCKETS 256

struct limits {
    struct limit_entry *b[BUCKETS];
};

struct limits *limits_new(void)
{
    return calloc(1, sizeof(struct limits));
}

void limits_free(struct limits *l)
{
    if (!l)
        return;
    for (unsigned i = 0; i < BUCKETS; i++) {
        struct limit_entry *e = l->b[i];
        while (e) {
            struct limit_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(l);
}

static unsigned hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % BUCKETS;
}

struct limit_entry *limits_get(struct limits *l, const char *name)
{
    unsigned h = hash(name);
    for (struct limit_entry *e = l->b[h]; e; e = e->next) {
        if (strcmp(e->name, name) == 0)
            return e;
    }
    struct limit_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    strncpy(e->name, name, sizeof e->name - 1);
    e->tokens = -1; /* full on first use */
    e->next = l->b[h];
    l->b[h] = e;
    return e;
}

bool limits_take(struct limit_entry *e, unsigned rate, unsigned burst, int64_t now_ms)
{
    if (e->tokens < 0) {
        e->tokens = burst;
        e->last_ms = now_ms;
    }
    double elapsed = (double)(now_ms - e->last_ms) / 1000.0;
    if (elapsed > 0) {
        e->tokens += elapsed * rate;
        if (e->tokens > burst)
            e->tokens = burst;
    }
    /* A clock that went back refills nothing, and counts from where it now stands. */
    e->last_ms = now_ms;
    if (e->tokens < 1.0)
        return false;
    e->tokens -= 1.0;
    return true;
}
