/*
 * Counters and gauges of what the daemon does, for the admin's stats and for the Prometheus
 * exposition on the metrics listener (exporter.c). Everything here is a number about the
 * daemon, never about a person: no reference, no principal, no shelter id becomes a label.
 *
 * Counters are bumped where things happen (the request handle, the listener, the links);
 * gauges are read at scrape time from memory (the index, the connection list, the links), so a
 * scrape never waits for Redis.
 */
#ifndef FRISTAD_METRICS_H
#define FRISTAD_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <fristad/proto.h>
#include <msgpack.h>

#include "index.h"
#include "match.h"

/* Upper bounds of the request latency histogram, in microseconds; +Inf follows. */
#define METRICS_BUCKETS 14
extern const uint64_t metrics_bucket_us[METRICS_BUCKETS];

/* Why a connection was turned away or dropped before it could make a request. */
enum metrics_refusal {
    REFUSED_FULL,         /* max_connections reached, nothing to drop */
    REFUSED_DRAINING,     /* the daemon is stopping */
    REFUSED_DROPPED,      /* dropped to make room for a new one (conn_make_room), or for a
                             new one from its address */
    REFUSED_ADDRESS,      /* max_handshakes_per_address reached, none silent to drop */
    REFUSED_PERSON_LIMIT, /* max_connections_per_person reached */
    REFUSED_ROLE_LIMIT,   /* its role holds all the connections the others' reserves leave */
    REFUSED__COUNT
};

/* What became of the requests of one op. */
struct op_metrics {
    uint64_t by_code[PROTO_E__COUNT];      /* answered, by code; [PROTO_OK] is "ok" */
    uint64_t latency[METRICS_BUCKETS + 1]; /* per bucket, not cumulative; the last is +Inf */
    uint64_t latency_sum_us;               /* of the requests in `latency` */
};

/* Follow-up counts of searches (as struct search_counts in ops.h). */
struct metrics_searches {
    uint64_t searches;
    uint64_t no_match;
    uint64_t reasons[REASON__COUNT]; /* no-match searches in which the reason ruled units out */
};

struct metrics {
    int64_t started_mono_ms; /* monotonic clock at start: uptime */
    int64_t started_wall_ms; /* wall clock at start, for fristad_start_time_seconds */
    uint64_t connections_accepted;
    uint64_t connections_refused; /* over the limit, or dropped to make room */
    uint64_t refused[REFUSED__COUNT];
    uint64_t handshakes_failed;
    uint64_t requests[OP__COUNT];
    uint64_t errors[PROTO_E__COUNT];
    uint64_t store_reconnects;
    uint64_t index_reloads;
    int64_t index_changed_mono_ms; /* the index last changed (load or event); 0: never */
    /*
     * Requests by op and code, and their latency from the frame's arrival to its reply. The
     * extra last row holds frames refused before their op was known (op="unknown").
     */
    struct op_metrics ops[OP__COUNT + 1];
    struct metrics_searches searches_flushed; /* already added to the store's follow-up */
    uint64_t primary_switches; /* sentinel mode: the Sentinels named another primary */
    uint64_t acked_checked;    /* acknowledged holds and placements looked up after a reconnect */
    uint64_t acked_missing;    /* of those, absent from the store: acknowledged writes lost */
};

/* Records one answered request (op may be OP__COUNT: unknown); latency_us < 0: not timed. */
void metrics_request_done(struct metrics *m, unsigned op, enum proto_err code, int64_t latency_us);

/* What the index holds now, counted for the gauges. */
struct metrics_index {
    unsigned shelters;       /* not retired */
    unsigned shelters_stale; /* not retired, vacancies neither changed nor confirmed in time */
    unsigned shelters_paused;
    unsigned units_free; /* could be offered now */
    unsigned holds_held; /* units a live hold reserves */
    unsigned placements_active;
};

void metrics_count_index(const struct index *ix, int64_t now_ms, int64_t stale_after_ms,
                         struct metrics_index *out);

/* Everything a scrape shows besides the counters, read from memory by the caller. */
struct metrics_view {
    const struct metrics *m;
    const struct metrics_searches *searches_pending; /* counted, not flushed yet */
    struct metrics_index index;
    unsigned connections_open;
    unsigned watchers; /* connections (and web streams) that watch events */
    unsigned standing; /* active standing searches */
    bool store_up;     /* the command link is up and the functions are loaded */
    bool events_up;    /* the change-event subscription is confirmed */
    bool index_loaded;
    uint64_t index_version;
    int64_t mono_ms; /* now, monotonic */
    const char *version;
};

/* Writes the Prometheus text exposition (format 0.0.4) of v. Returns 0, or -1 on a write error. */
int metrics_render(const struct metrics_view *v, FILE *out) __attribute__((warn_unused_result));

/*
 * Packs the counters as one map (the "server" part of the stats reply). `open` is the number of
 * connections open now, `mono_ms` the monotonic clock. Returns 0 or -1.
 */
int metrics_pack(const struct metrics *m, unsigned open, msgpack_packer *pk, int64_t mono_ms)
    __attribute__((warn_unused_result));

#endif
