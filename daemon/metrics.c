/*
 * The daemon's counters: recording, counting the index for gauges, the stats reply and the
 * Prometheus text exposition.
 */
#include "metrics.h"

const uint64_t metrics_bucket_us[METRICS_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
};

static const char *const refusal_names[REFUSED__COUNT] = {
    [REFUSED_FULL] = "max_connections",
    [REFUSED_DRAINING] = "stopping",
    [REFUSED_DROPPED] = "dropped_to_make_room",
    [REFUSED_ADDRESS] = "max_handshakes_per_address",
    [REFUSED_PERSON_LIMIT] = "max_connections_per_person",
    [REFUSED_ROLE_LIMIT] = "role_reserve",
};

void metrics_request_done(struct metrics *m, unsigned op, enum proto_err code, int64_t latency_us)
{
    struct op_metrics *o = &m->ops[op < OP__COUNT ? op : OP__COUNT];
    o->by_code[(unsigned)code < PROTO_E__COUNT ? code : PROTO_E_INTERNAL]++;
    if (latency_us < 0)
        return;
    unsigned b = 0;
    while (b < METRICS_BUCKETS && (uint64_t)latency_us > metrics_bucket_us[b])
        b++;
    o->latency[b]++;
    o->latency_sum_us += (uint64_t)latency_us;
}

void metrics_count_index(const struct index *ix, int64_t now_ms, int64_t stale_after_ms,
                         struct metrics_index *out)
{
    *out = (struct metrics_index){0};
    for (unsigned i = 0; i < ix->n; i++) {
        const struct idx_shelter *s = ix->shelters[i];
        for (unsigned k = 0; k < s->n_units; k++) {
            out->holds_held += s->units[k].held;
            out->placements_active += s->units[k].placed;
            if (!s->retired)
                out->units_free += match_unit_available(s, &s->units[k]);
        }
        if (s->retired)
            continue;
        out->shelters++;
        out->shelters_paused += s->paused;
        out->shelters_stale += match_is_stale(s, now_ms, stale_after_ms);
    }
}

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

/* ---- Prometheus text exposition --------------------------------------------------------- */

static void family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u(FILE *out, const char *name, uint64_t v)
{
    fprintf(out, "%s %llu\n", name, (unsigned long long)v);
}

static const char *op_label(unsigned op)
{
    return op < OP__COUNT ? proto_op_name(op) : "unknown";
}

static void render_requests(const struct metrics *m, FILE *out)
{
    family(out, "fristad_requests_total", "counter",
           "Requests answered, by op and by the reply's code (ok or an error code).");
    for (unsigned op = 0; op <= OP__COUNT; op++) {
        for (unsigned code = 0; code < PROTO_E__COUNT; code++) {
            uint64_t n = m->ops[op].by_code[code];
            /* Every op shows its ok line, so a rate can be taken before its first request. */
            if (n == 0 && !(code == PROTO_OK && op < OP__COUNT))
                continue;
            fprintf(out, "fristad_requests_total{op=\"%s\",code=\"%s\"} %llu\n", op_label(op),
                    code == PROTO_OK ? "ok" : proto_err_code(code), (unsigned long long)n);
        }
    }
    family(out, "fristad_request_duration_seconds", "histogram",
           "Time from a request's complete frame to its reply, by op (monotonic clock).");
    for (unsigned op = 0; op < OP__COUNT; op++) {
        const struct op_metrics *o = &m->ops[op];
        uint64_t cum = 0;
        for (unsigned b = 0; b < METRICS_BUCKETS; b++) {
            cum += o->latency[b];
            fprintf(out, "fristad_request_duration_seconds_bucket{op=\"%s\",le=\"%g\"} %llu\n",
                    op_label(op), (double)metrics_bucket_us[b] / 1e6, (unsigned long long)cum);
        }
        cum += o->latency[METRICS_BUCKETS];
        fprintf(out, "fristad_request_duration_seconds_bucket{op=\"%s\",le=\"+Inf\"} %llu\n",
                op_label(op), (unsigned long long)cum);
        fprintf(out, "fristad_request_duration_seconds_sum{op=\"%s\"} %.6f\n", op_label(op),
                (double)o->latency_sum_us / 1e6);
        fprintf(out, "fristad_request_duration_seconds_count{op=\"%s\"} %llu\n", op_label(op),
                (unsigned long long)cum);
    }
}

static void render_connections(const struct metrics_view *v, FILE *out)
{
    const struct metrics *m = v->m;
    family(out, "fristad_connections_open", "gauge", "Client connections open now.");
    sample_u(out, "fristad_connections_open", v->connections_open);
    family(out, "fristad_connections_accepted_total", "counter", "Client connections accepted.");
    sample_u(out, "fristad_connections_accepted_total", m->connections_accepted);
    family(out, "fristad_connections_refused_total", "counter",
           "Client connections turned away or dropped by a limit, by reason.");
    for (unsigned r = 0; r < REFUSED__COUNT; r++)
        fprintf(out, "fristad_connections_refused_total{reason=\"%s\"} %llu\n", refusal_names[r],
                (unsigned long long)m->refused[r]);
    family(out, "fristad_tls_handshakes_failed_total", "counter",
           "TLS handshakes that failed or timed out.");
    sample_u(out, "fristad_tls_handshakes_failed_total", m->handshakes_failed);
}

static void render_store(const struct metrics_view *v, FILE *out)
{
    const struct metrics *m = v->m;
    family(out, "fristad_redis_up", "gauge",
           "1 when the Redis link is up: the command link with the functions loaded, and the "
           "change-event subscription.");
    fprintf(out, "fristad_redis_up{link=\"command\"} %d\n", v->store_up ? 1 : 0);
    fprintf(out, "fristad_redis_up{link=\"events\"} %d\n", v->events_up ? 1 : 0);
    family(out, "fristad_redis_connects_total", "counter",
           "Connects of the command link, the first one included.");
    sample_u(out, "fristad_redis_connects_total", m->store_reconnects);
    family(out, "fristad_index_loaded", "gauge",
           "1 once the in-memory index has been loaded from Redis.");
    sample_u(out, "fristad_index_loaded", v->index_loaded);
    family(out, "fristad_index_version", "gauge",
           "The store's change version that the in-memory index reflects.");
    sample_u(out, "fristad_index_version", v->index_version);
    family(out, "fristad_index_reloads_total", "counter", "Full loads of the index from Redis.");
    sample_u(out, "fristad_index_reloads_total", m->index_reloads);
    family(out, "fristad_index_last_change_age_seconds", "gauge",
           "Seconds since the index last changed (a load or a change event); NaN before the "
           "first.");
    if (m->index_changed_mono_ms)
        fprintf(out, "fristad_index_last_change_age_seconds %.3f\n",
                (double)(v->mono_ms - m->index_changed_mono_ms) / 1e3);
    else
        fputs("fristad_index_last_change_age_seconds NaN\n", out);
}

static void render_index(const struct metrics_view *v, FILE *out)
{
    const struct metrics_index *ix = &v->index;
    family(out, "fristad_shelters", "gauge", "Shelters that are not retired.");
    sample_u(out, "fristad_shelters", ix->shelters);
    family(out, "fristad_shelters_paused", "gauge", "Shelters whose intake is paused.");
    sample_u(out, "fristad_shelters_paused", ix->shelters_paused);
    family(out, "fristad_shelters_stale", "gauge",
           "Shelters whose vacancies nobody changed or confirmed within [holds] stale_after.");
    sample_u(out, "fristad_shelters_stale", ix->shelters_stale);
    family(out, "fristad_units_free", "gauge", "Units that can be offered now.");
    sample_u(out, "fristad_units_free", ix->units_free);
    family(out, "fristad_holds_open", "gauge", "Holds that reserve a unit now, by state.");
    fprintf(out, "fristad_holds_open{state=\"held\"} %u\n", ix->holds_held);
    family(out, "fristad_placements_active", "gauge", "Placements that occupy a unit now.");
    sample_u(out, "fristad_placements_active", ix->placements_active);
}

static void render_searches(const struct metrics_view *v, FILE *out)
{
    const struct metrics_searches *a = &v->m->searches_flushed, *b = v->searches_pending;
    family(out, "fristad_searches_total", "counter", "Searches answered by this daemon.");
    sample_u(out, "fristad_searches_total", a->searches + b->searches);
    family(out, "fristad_searches_no_match_total", "counter",
           "Searches that found no eligible unit.");
    sample_u(out, "fristad_searches_no_match_total", a->no_match + b->no_match);
    family(out, "fristad_searches_no_match_reasons_total", "counter",
           "No-match searches in which a reason ruled free units out, by reason.");
    for (unsigned r = 0; r < REASON__COUNT; r++)
        fprintf(out, "fristad_searches_no_match_reasons_total{reason=\"%s\"} %llu\n",
                match_reason_name(r), (unsigned long long)(a->reasons[r] + b->reasons[r]));
}

int metrics_render(const struct metrics_view *v, FILE *out)
{
    family(out, "fristad_build_info", "gauge", "The running fristadd's version.");
    fprintf(out, "fristad_build_info{version=\"%s\",protocol=\"%d\"} 1\n", v->version,
            PROTO_VERSION);
    family(out, "fristad_start_time_seconds", "gauge", "When fristadd started, in Unix time.");
    fprintf(out, "fristad_start_time_seconds %.3f\n", (double)v->m->started_wall_ms / 1e3);
    render_requests(v->m, out);
    render_connections(v, out);
    render_store(v, out);
    render_index(v, out);
    render_searches(v, out);
    family(out, "fristad_watchers", "gauge", "Connections that watch events now.");
    sample_u(out, "fristad_watchers", v->watchers);
    family(out, "fristad_standing_searches", "gauge", "Standing searches that are active now.");
    sample_u(out, "fristad_standing_searches", v->standing);
    return ferror(out) ? -1 : 0;
}
