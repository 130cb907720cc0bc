/* Packing the daemon's counters for the stats reply. */
#include "metrics.h"

int metrics_pack(const struct metrics *m, unsigned open, msgpack_packer *pk, int64_t mono_ms)
{
    unsigned nreq = 0, nerr = 0;
    for (unsigned i = 0; i < OP__COUNT; i++)
        nreq += m->requests[i] != 0;
    for (unsigned i = 1; i < PROTO_E__COUNT; i++)
        nerr += m->errors[i] != 0;

    int rc = msgpack_pack_map(pk, 12);
    rc |= proto_pack_kv_int(pk, "uptime_s", (mono_ms - m->started_mono_ms) / 1000);
    rc |= proto_pack_kv_int(pk, "connections_accepted", (int64_t)m->connections_accepted);
    rc |= proto_pack_kv_int(pk, "connections_refused", (int64_t)m->connections_refused);
    rc |= proto_pack_kv_int(pk, "connections_current", (int64_t)open);
    rc |= proto_pack_kv_int(pk, "handshakes_failed", (int64_t)m->handshakes_failed);
    rc |= proto_pack_kv_int(pk, "store_reconnects", (int64_t)m->store_reconnects);
    rc |= proto_pack_kv_int(pk, "index_reloads", (int64_t)m->index_reloads);
    rc |= proto_pack_kv_int(pk, "primary_switches", (int64_t)m->primary_switches);
    rc |= proto_pack_kv_int(pk, "acked_checked", (int64_t)m->acked_checked);
    rc |= proto_pack_kv_int(pk, "acked_missing", (int64_t)m->acked_missing);
    rc |= proto_pack_cstr(pk, "requests");
    rc |= msgpack_pack_map(pk, nreq);
    for (unsigned i = 0; i < OP__COUNT; i++) {
        if (m->requests[i])
            rc |= proto_pack_kv_int(pk, proto_op_name(i), (int64_t)m->requests[i]);
    }
    rc |= proto_pack_cstr(pk, "errors");
    rc |= msgpack_pack_map(pk, nerr);
    for (unsigned i = 1; i < PROTO_E__COUNT; i++) {
        if (m->errors[i])
            rc |= proto_pack_kv_int(pk, proto_err_code(i), (int64_t)m->errors[i]);
    }
    return rc ? -1 : 0;
}
