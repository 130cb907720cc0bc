/*
 * The event feed: one Redis link that follows the event log (the stream the store functions
 * append to) with XREAD BLOCK, so every event of every daemon reaches this one in order, and
 * hands each to the watchers and the standing searches. It resumes where it stopped after a
 * lost link. Its position is the sequence of the last event it has seen.
 */
#ifndef FRISTAD_FEED_H
#define FRISTAD_FEED_H

#include <stdbool.h>
#include <stdint.h>

#include <fristad/proto.h>
#include <msgpack.h>

struct daemon;
struct feed;

/* A stream id "MS-N": the sequence of an event. */
struct seq {
    uint64_t ms, n;
};

static inline int seq_cmp(struct seq a, struct seq b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    return a.n < b.n ? -1 : a.n > b.n;
}

/* Parses "MS-N". */
bool seq_parse(const char *s, size_t n, struct seq *out) __attribute__((warn_unused_result));

/* One event of the log, as the store wrote it. Empty strings for what it does not concern. */
struct event {
    struct seq seq;
    enum proto_event type;
    int64_t at; /* ms since 1970 */
    char shelter[PROTO_ID_MAX + 1];
    char unit[PROTO_ID_MAX + 1];
    char hold[PROTO_TOKEN_MAX + 1];
    char placement[PROTO_TOKEN_MAX + 1];
    char standing[PROTO_TOKEN_MAX + 1];
    char municipality[5];
    char by[PROTO_PRINCIPAL_MAX + 1];
    char state[16];
    unsigned step;
};

/* Parses a stream entry's field/value array; false when it is not an event of ours. */
bool event_parse(const char *id, size_t id_len, const char *const *fields, const size_t *lens,
                 size_t n, struct event *out) __attribute__((warn_unused_result));

/* The same from a map {seq, type, at, ...} as fristad_events_read returns it. */
bool event_from_map(const msgpack_object *m, struct event *out) __attribute__((warn_unused_result));

/* Packs an event as a map (the "event" of a watch frame). Returns 0 or -1. */
int event_pack(msgpack_packer *pk, const struct event *e) __attribute__((warn_unused_result));

struct feed_hooks {
    void (*event)(void *ud, const struct event *e); /* every event, in order */
};

struct feed *feed_new(struct daemon *d, struct feed_hooks hooks, void *ud, char *err,
                      size_t errlen);
void feed_start(struct feed *f);
void feed_free(struct feed *f);
/* The last event seen, and whether the feed knows where the log stands yet. */
bool feed_position(const struct feed *f, struct seq *out);

#endif
