/* Counters of what the daemon did, for the admin's stats. No personal data, ever. */
#ifndef FRISTAD_METRICS_H
#define FRISTAD_METRICS_H

#include <stdint.h>

#include <fristad/proto.h>
#include <msgpack.h>

struct metrics {
    int64_t started_mono_ms; /* monotonic clock at start: uptime */
    uint64_t connections_accepted;
    uint64_t connections_refused; /* over the limit, or dropped to make room */
    uint64_t handshakes_failed;
    uint64_t requests[OP__COUNT];
    uint64_t errors[PROTO_E__COUNT];
    uint64_t store_reconnects;
    uint64_t index_reloads;
    uint64_t primary_switches; /* sentinel mode: the Sentinels named another primary */
    uint64_t acked_checked;    /* acknowledged holds and placements looked up after a reconnect */
    uint64_t acked_missing;    /* of those, absent from the store: acknowledged writes lost */
};

/*
 * Packs the counters as one map (the "server" part of the stats reply). `open` is the number of
 * connections open now, `mono_ms` the monotonic clock. Returns 0 or -1.
 */
int metrics_pack(const struct metrics *m, unsigned open, msgpack_packer *pk, int64_t mono_ms)
    __attribute__((warn_unused_result));

#endif
