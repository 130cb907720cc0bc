/* Refusals in the audit trail, bounded; see refusals.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fristad/proto.h>

#include "refusals.h"

#define BUCKETS 256

struct tally {
    struct tally *next;
    char principal[PROTO_PRINCIPAL_MAX + 1];
    char person[PROTO_PERSON_MAX + 1];
    int64_t window;     /* the window being counted: now_ms / window_ms */
    unsigned recorded;  /* refusals recorded one by one in it */
    unsigned out;       /* writes at the store that it would audit if it refused them */
    uint64_t counted;   /* refusals of it counted into its summary */
    char code[32];      /* their error code, or "mixed" */
    uint64_t owed;      /* summaries of windows over, not emitted yet: refusals ... */
    char owed_code[32]; /* ... and their code */
};

struct refusals {
    struct tally *b[BUCKETS];
};

struct refusals *refusals_new(void)
{
    return calloc(1, sizeof(struct refusals));
}

void refusals_free(struct refusals *r)
{
    if (!r)
        return;
    for (unsigned i = 0; i < BUCKETS; i++) {
        for (struct tally *t = r->b[i], *next; t; t = next) {
            next = t->next;
            free(t);
        }
    }
    free(r);
}

static unsigned hash(const char *a, const char *b)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 16777619u;
    h = (h ^ 0xffu) * 16777619u;
    for (; *b; b++)
        h = (h ^ (unsigned char)*b) * 16777619u;
    return h % BUCKETS;
}

static void merge_code(char *into, size_t cap, const char *code, bool first)
{
    if (first)
        snprintf(into, cap, "%s", code);
    else if (strcmp(into, code) != 0)
        snprintf(into, cap, "mixed");
}

/* Moves a finished window's count to what is owed. */
static void close_window(struct tally *t, int64_t window)
{
    if (t->window == window)
        return;
    if (t->counted > 0) {
        merge_code(t->owed_code, sizeof t->owed_code, t->code, t->owed == 0);
        t->owed += t->counted;
    }
    t->window = window;
    t->recorded = 0;
    t->counted = 0;
    t->code[0] = '\0';
}

static struct tally *find(struct refusals *r, const char *principal, const char *person,
                          bool create)
{
    person = person ? person : "";
    unsigned h = hash(principal, person);
    for (struct tally *t = r->b[h]; t; t = t->next) {
        if (strcmp(t->principal, principal) == 0 && strcmp(t->person, person) == 0)
            return t;
    }
    if (!create)
        return NULL;
    struct tally *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    snprintf(t->principal, sizeof t->principal, "%s", principal);
    snprintf(t->person, sizeof t->person, "%s", person);
    t->window = INT64_MIN;
    t->next = r->b[h];
    r->b[h] = t;
    return t;
}

static int64_t window_of(int64_t now_ms, int64_t window_ms)
{
    return now_ms / (window_ms > 0 ? window_ms : 1);
}

static void count_in(struct tally *t, const char *code)
{
    merge_code(t->code, sizeof t->code, code, t->counted == 0);
    t->counted++;
}

bool refusals_count(struct refusals *r, const char *principal, const char *person, const char *code,
                    int64_t now_ms, int64_t window_ms, unsigned per_window)
{
    struct tally *t = find(r, principal, person, true);
    if (!t)
        return true;
    close_window(t, window_of(now_ms, window_ms));
    if (t->recorded < per_window) {
        t->recorded++;
        return true;
    }
    count_in(t, code);
    return false;
}

bool refusals_send(struct refusals *r, const char *principal, const char *person, int64_t now_ms,
                   int64_t window_ms, unsigned per_window)
{
    struct tally *t = find(r, principal, person, true);
    if (!t)
        return false; /* out of memory: the store audits, as it always did */
    close_window(t, window_of(now_ms, window_ms));
    if (t->recorded + t->out >= per_window)
        return true;
    t->out++;
    return false;
}

void refusals_answered(struct refusals *r, const char *principal, const char *person,
                       const char *code, bool quiet, int64_t now_ms, int64_t window_ms)
{
    struct tally *t = find(r, principal, person, true);
    if (!t)
        return;
    close_window(t, window_of(now_ms, window_ms));
    if (!quiet && t->out > 0)
        t->out--;
    if (!code)
        return;
    if (quiet)
        count_in(t, code);
    else
        t->recorded++;
}

void refusals_flush(struct refusals *r, int64_t now_ms, int64_t window_ms, bool all,
                    refusals_emit *emit, void *ud)
{
    int64_t now = window_of(now_ms, window_ms);
    for (unsigned i = 0; i < BUCKETS; i++) {
        for (struct tally **p = &r->b[i]; *p;) {
            struct tally *t = *p;
            close_window(t, all ? INT64_MAX : now);
            if (t->owed > 0) {
                emit(t->principal, t->person, t->owed_code, t->owed, ud);
                t->owed = 0;
            }
            if (t->recorded == 0 && t->counted == 0 && t->out == 0) { /* nothing to keep */
                *p = t->next;
                free(t);
            } else {
                p = &t->next;
            }
        }
    }
}
