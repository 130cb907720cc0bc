/*
 * From a validated request to its reply. Reads that the index can answer never touch Redis:
 * a search at 3 a.m. must not wait for anything. Writes are one store function each; when it
 * succeeds its snapshot is applied to this daemon's index before the reply goes out, so the
 * client that made a change sees it in its next request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "conn.h"
#include "dispatch.h"
#include "events.h"
#include "match.h"
#include "store.h"

#define MAX_STORE_ARGS 30

/*
 * Follow-up counts of searches, kept here and added to the store's counters on the sweep
 * timer, so that a search never writes to Redis.
 */
static struct {
    uint64_t searches;
    uint64_t no_match;
    uint64_t reasons[REASON__COUNT]; /* no-match searches in which the reason ruled units out */
} search_counts;

struct pending_req {
    struct conn *c;
    uint64_t id;
    enum proto_op op;
};

/* ---- views ------------------------------------------------------------------------------ */

static int pack_nil_or_int(msgpack_packer *pk, const char *k, int v)
{
    int rc = proto_pack_cstr(pk, k);
    return rc | (v == IDX_NO_LIMIT ? msgpack_pack_nil(pk) : msgpack_pack_int(pk, v));
}

static int pack_muni(msgpack_packer *pk, const struct geo *g, unsigned mun)
{
    int rc = proto_pack_kv_str(pk, "municipality", g->m[mun].code);
    rc |= proto_pack_kv_str(pk, "municipality_name", g->m[mun].name);
    return rc | proto_pack_kv_str(pk, "county", g->m[mun].county);
}

static int pack_freshness(msgpack_packer *pk, const struct daemon *d, const struct idx_shelter *s,
                          int64_t now)
{
    int rc = proto_pack_kv_bool(pk, "stale", match_is_stale(s, now, d->cfg->stale_after_ms));
    return rc | proto_pack_kv_int(pk, "data_age_s", match_age_s(s, now));
}

static int pack_shelter(msgpack_packer *pk, const struct daemon *d, const struct idx_shelter *s,
                        bool phone, int64_t now)
{
    int rc = msgpack_pack_map(pk, phone ? 20 : 19);
    rc |= proto_pack_kv_str(pk, "id", s->id);
    rc |= proto_pack_kv_str(pk, "name", s->name);
    rc |= proto_pack_kv_str(pk, "kind", proto_kind_name(s->kind));
    rc |= pack_muni(pk, d->geo, s->mun);
    rc |= proto_pack_kv_int(pk, "protection", s->protection);
    rc |= proto_pack_cstr(pk, "groups");
    rc |= msgpack_pack_array(pk, (size_t)__builtin_popcount(s->groups));
    for (unsigned g = 0; g < GROUP__COUNT; g++) {
        if (s->groups & (1u << g))
            rc |= proto_pack_cstr(pk, proto_group_name(g));
    }
    rc |= pack_nil_or_int(pk, "max_children", s->max_children);
    rc |= pack_nil_or_int(pk, "boys_max_age", s->boys_max_age);
    rc |= proto_pack_kv_bool(pk, "pets", s->pets);
    rc |= proto_pack_kv_bool(pk, "substance", s->substance);
    rc |= proto_pack_cstr(pk, "languages");
    rc |= msgpack_pack_array(pk, s->n_languages);
    for (unsigned i = 0; i < s->n_languages; i++)
        rc |= proto_pack_cstr(pk, s->languages[i]);
    rc |= proto_pack_kv_bool(pk, "paused", s->paused);
    rc |= proto_pack_kv_bool(pk, "retired", s->retired);
    rc |= proto_pack_kv_int(pk, "updated_at", s->updated_ms);
    rc |= pack_freshness(pk, d, s, now);
    if (phone)
        rc |= proto_pack_kv_str(pk, "phone", s->phone);
    rc |= proto_pack_cstr(pk, "units");
    rc |= msgpack_pack_array(pk, s->n_units);
    for (unsigned i = 0; i < s->n_units; i++) {
        const struct idx_unit *u = &s->units[i];
        rc |= msgpack_pack_map(pk, 5);
        rc |= proto_pack_kv_str(pk, "id", u->id);
        rc |= proto_pack_kv_int(pk, "beds", u->beds);
        rc |= proto_pack_kv_bool(pk, "accessible", u->accessible);
        rc |= proto_pack_kv_str(pk, "state", proto_vacancy_name(u->state));
        rc |= proto_pack_kv_bool(pk, "held", u->held);
    }
    return rc;
}

/* ---- small helpers ---------------------------------------------------------------------- */

static bool index_ready(struct conn *c, const struct proto_request *req)
{
    if (c->d->index.loaded)
        return true;
    conn_reply_error(c, req->id, true, PROTO_E_UNAVAILABLE,
                     "the server is still loading its data; retry in a moment");
    return false;
}

static bool sees_phone(const struct principal *p, const char *shelter)
{
    return p->role == ROLE_ADMIN || (p->role == ROLE_SHELTER && strcmp(p->id, shelter) == 0);
}

/*
 * Records in the audit trail something decided here rather than in a store function.
 * Returns false when the entry could not be sent (the store is down).
 */
static bool audit_note(struct conn *c, const struct proto_request *req, const char *result,
                       bool phone)
{
    const struct proto_args *a = &req->args;
    const char *args[] = {
        proto_op_name(req->op),
        result,
        proto_has(a, F_SHELTER) ? a->shelter : "",
        proto_has(a, F_UNIT) ? a->unit : "",
        proto_has(a, F_HOLD) ? a->hold : "",
        proto_has(a, F_PLACEMENT) ? a->placement : "",
        phone ? "disclosed" : "",
    };
    const char *who = c->who.valid ? c->who.name : "unknown:certificate";
    if (store_call(c->d->store, "audit_note", STORE_WRITE, who, 7, args, NULL, NULL) != 0) {
        conn_log(c, LOG_LVL_WARNING, "audit entry for '%s' (%s) could not be written: store down",
                 proto_op_name(req->op), result);
        return false;
    }
    return true;
}

static void new_id(char prefix, char out[18])
{
    unsigned char raw[8];
    static const char hex[] = "0123456789abcdef";
    if (RAND_bytes(raw, sizeof raw) != 1) {
        /* Uniqueness is also checked inside the store; this fallback only has to differ. */
        static uint64_t counter;
        uint64_t v = (uint64_t)daemon_now_ms() << 16 ^ ++counter;
        memcpy(raw, &v, sizeof raw);
    }
    out[0] = prefix;
    for (unsigned i = 0; i < 8; i++) {
        out[1 + 2 * i] = hex[raw[i] >> 4];
        out[2 + 2 * i] = hex[raw[i] & 15];
    }
    out[17] = '\0';
}

static void join_groups(uint8_t groups, char *out, size_t cap)
{
    out[0] = '\0';
    for (unsigned g = 0; g < GROUP__COUNT; g++) {
        if (groups & (1u << g)) {
            if (out[0])
                strncat(out, ",", cap - strlen(out) - 1);
            strncat(out, proto_group_name(g), cap - strlen(out) - 1);
        }
    }
}

/* ---- index reads ------------------------------------------------------------------------ */

static void do_whoami(struct conn *c, const struct proto_request *req)
{
    msgpack_packer *pk = conn_reply_packer();
    int rc = proto_pack_ok_begin(pk, req->id, true);
    rc |= msgpack_pack_map(pk, 2);
    rc |= proto_pack_kv_str(pk, "role", proto_role_name(c->who.role));
    rc |= proto_pack_kv_str(pk, "id", c->who.id);
    if (rc == 0)
        conn_reply_send(c);
}

static void do_show(struct conn *c, const struct proto_request *req, int64_t now)
{
    const struct idx_shelter *s = index_find(&c->d->index, req->args.shelter);
    if (!s) {
        conn_reply_error(c, req->id, true, PROTO_E_NOT_FOUND, "no shelter with this id");
        return;
    }
    /* The intake phone is disclosed only when the disclosure can be audited. */
    bool phone = sees_phone(&c->who, s->id) && audit_note(c, req, "ok", true);
    msgpack_packer *pk = conn_reply_packer();
    int rc = proto_pack_ok_begin(pk, req->id, true);
    rc |= msgpack_pack_map(pk, 1);
    rc |= proto_pack_cstr(pk, "shelter");
    rc |= pack_shelter(pk, c->d, s, phone, now);
    if (rc == 0)
        conn_reply_send(c);
}

static bool in_area(const struct daemon *d, const struct idx_shelter *s, const struct proto_args *a)
{
    if (proto_has(a, F_COUNTY) && memcmp(d->geo->m[s->mun].county, a->county, 2) != 0)
        return false;
    if (proto_has(a, F_MUNICIPALITY) && strcmp(d->geo->m[s->mun].code, a->municipality) != 0)
        return false;
    return true;
}

static int by_municipality(const void *pa, const void *pb)
{
    const struct idx_shelter *a = *(const struct idx_shelter *const *)pa;
    const struct idx_shelter *b = *(const struct idx_shelter *const *)pb;
    if (a->mun != b->mun)
        return a->mun < b->mun ? -1 : 1; /* indexes are in code order */
    return strcmp(a->id, b->id);
}

/* The shelters in the request's area, not retired, by municipality then id. */
static const struct idx_shelter **area_shelters(struct conn *c, const struct proto_args *a,
                                                unsigned *n)
{
    const struct index *ix = &c->d->index;
    const struct idx_shelter **list = malloc((ix->n ? ix->n : 1) * sizeof *list);
    *n = 0;
    if (!list)
        return NULL;
    for (unsigned i = 0; i < ix->n; i++) {
        if (!ix->shelters[i]->retired && in_area(c->d, ix->shelters[i], a))
            list[(*n)++] = ix->shelters[i];
    }
    qsort(list, *n, sizeof *list, by_municipality);
    return list;
}

static void do_list(struct conn *c, const struct proto_request *req, int64_t now)
{
    unsigned n;
    const struct idx_shelter **list = area_shelters(c, &req->args, &n);
    if (!list) {
        conn_reply_error(c, req->id, true, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    msgpack_packer *pk = conn_reply_packer();
    int rc = proto_pack_ok_begin(pk, req->id, true);
    rc |= msgpack_pack_map(pk, 1);
    rc |= proto_pack_cstr(pk, "shelters");
    rc |= msgpack_pack_array(pk, n);
    for (unsigned i = 0; i < n; i++) {
        const struct idx_shelter *s = list[i];
        unsigned free_units = 0;
        for (unsigned k = 0; k < s->n_units; k++)
            free_units += match_unit_available(s, &s->units[k]);
        rc |= msgpack_pack_map(pk, 12);
        rc |= proto_pack_kv_str(pk, "id", s->id);
        rc |= proto_pack_kv_str(pk, "name", s->name);
        rc |= proto_pack_kv_str(pk, "kind", proto_kind_name(s->kind));
        rc |= pack_muni(pk, c->d->geo, s->mun);
        rc |= proto_pack_kv_int(pk, "protection", s->protection);
        rc |= proto_pack_kv_int(pk, "units", s->n_units);
        rc |= proto_pack_kv_int(pk, "free_units", free_units);
        rc |= proto_pack_kv_bool(pk, "paused", s->paused);
        rc |= pack_freshness(pk, c->d, s, now);
    }
    free(list);
    if (rc == 0)
        conn_reply_send(c);
}

static void do_free(struct conn *c, const struct proto_request *req, int64_t now)
{
    unsigned n, count = 0;
    const struct idx_shelter **list = area_shelters(c, &req->args, &n);
    if (!list) {
        conn_reply_error(c, req->id, true, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        for (unsigned k = 0; k < list[i]->n_units; k++)
            count += match_unit_available(list[i], &list[i]->units[k]);
    }
    msgpack_packer *pk = conn_reply_packer();
    int rc = proto_pack_ok_begin(pk, req->id, true);
    rc |= msgpack_pack_map(pk, 1);
    rc |= proto_pack_cstr(pk, "units");
    rc |= msgpack_pack_array(pk, count);
    for (unsigned i = 0; i < n; i++) {
        const struct idx_shelter *s = list[i];
        for (unsigned k = 0; k < s->n_units; k++) {
            const struct idx_unit *u = &s->units[k];
            if (!match_unit_available(s, u))
                continue;
            rc |= msgpack_pack_map(pk, 12);
            rc |= proto_pack_kv_str(pk, "shelter", s->id);
            rc |= proto_pack_kv_str(pk, "name", s->name);
            rc |= proto_pack_kv_str(pk, "kind", proto_kind_name(s->kind));
            rc |= pack_muni(pk, c->d->geo, s->mun);
            rc |= proto_pack_kv_str(pk, "unit", u->id);
            rc |= proto_pack_kv_int(pk, "beds", u->beds);
            rc |= proto_pack_kv_bool(pk, "accessible", u->accessible);
            rc |= proto_pack_kv_int(pk, "protection", s->protection);
            rc |= pack_freshness(pk, c->d, s, now);
        }
    }
    free(list);
    if (rc == 0)
        conn_reply_send(c);
}

static void do_search(struct conn *c, const struct proto_request *req, int64_t now)
{
    struct daemon *d = c->d;
    struct match_outcome out;
    if (match_search(&d->index, d->geo, &d->policy, &req->args, now, d->cfg->stale_after_ms, &out) <
        0) {
        conn_reply_error(c, req->id, true, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    msgpack_packer *pk = conn_reply_packer();
    int rc = proto_pack_ok_begin(pk, req->id, true);
    rc |= msgpack_pack_map(pk, 2);
    rc |= proto_pack_cstr(pk, "results");
    rc |= msgpack_pack_array(pk, out.n_hits);
    for (unsigned i = 0; i < out.n_hits; i++) {
        const struct match_hit *h = &out.hits[i];
        rc |= msgpack_pack_map(pk, 11);
        rc |= proto_pack_kv_str(pk, "shelter", h->shelter->id);
        rc |= proto_pack_kv_str(pk, "unit", h->unit->id);
        rc |= proto_pack_kv_str(pk, "name", h->shelter->name);
        rc |= proto_pack_kv_str(pk, "kind", proto_kind_name(h->shelter->kind));
        rc |= proto_pack_kv_str(pk, "municipality", d->geo->m[h->shelter->mun].code);
        rc |= proto_pack_kv_str(pk, "county", d->geo->m[h->shelter->mun].county);
        rc |= proto_pack_kv_int(pk, "distance_km", (int64_t)(h->distance_km + 0.5));
        rc |= proto_pack_kv_int(pk, "beds", h->unit->beds);
        rc |= proto_pack_kv_int(pk, "protection", h->shelter->protection);
        rc |= proto_pack_kv_bool(pk, "stale", h->stale);
        rc |= proto_pack_kv_int(pk, "data_age_s", h->age_s);
    }
    rc |= proto_pack_cstr(pk, "ruled_out");
    rc |= msgpack_pack_map(pk, REASON__COUNT);
    for (unsigned r = 0; r < REASON__COUNT; r++)
        rc |= proto_pack_kv_int(pk, match_reason_name(r), out.ruled_out[r]);
    if (out.eligible == 0) {
        search_counts.no_match++;
        for (unsigned r = 0; r < REASON__COUNT; r++)
            search_counts.reasons[r] += out.ruled_out[r] > 0;
    }
    search_counts.searches++;
    match_outcome_free(&out);
    if (rc == 0)
        conn_reply_send(c);
}

void dispatch_flush_counts(struct daemon *d)
{
    char num[2 + REASON__COUNT][24];
    const char *args[2 + 2 * REASON__COUNT];
    int n = 0;
    if (search_counts.searches == 0)
        return;
    snprintf(num[0], sizeof num[0], "%llu", (unsigned long long)search_counts.searches);
    snprintf(num[1], sizeof num[1], "%llu", (unsigned long long)search_counts.no_match);
    args[n++] = num[0];
    args[n++] = num[1];
    for (unsigned r = 0; r < REASON__COUNT; r++) {
        if (!search_counts.reasons[r])
            continue;
        snprintf(num[2 + r], sizeof num[2 + r], "%llu",
                 (unsigned long long)search_counts.reasons[r]);
        args[n++] = match_reason_name(r);
        args[n++] = num[2 + r];
    }
    /* Counts sent are counts kept: a lost reply may lose them, a statistic can bear that. */
    if (store_call(d->store, "search_stat", STORE_WRITE, "system:counts", n, args, NULL, NULL) == 0)
        memset(&search_counts, 0, sizeof search_counts);
}

/* ---- store calls ------------------------------------------------------------------------ */

/* A write's reply: the shelter as it is now. The intake phone is disclosed by shelter.show
 * and hold alone, where it is audited. */
static void reply_shelter(struct conn *c, uint64_t id, const char *sid)
{
    const struct idx_shelter *s = index_find(&c->d->index, sid);
    if (!s) {
        conn_reply_error(c, id, true, PROTO_E_INTERNAL, "the change was made but cannot be shown");
        return;
    }
    msgpack_packer *pk = conn_reply_packer();
    int rc = proto_pack_ok_begin(pk, id, true);
    rc |= msgpack_pack_map(pk, 1);
    rc |= proto_pack_cstr(pk, "shelter");
    rc |= pack_shelter(pk, c->d, s, false, daemon_now_ms());
    if (rc == 0)
        conn_reply_send(c);
}

static int64_t count_of(const msgpack_object *r, const char *key)
{
    const msgpack_object *o = proto_map_get(r, key);
    return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)o->via.u64 : 0;
}

static int pack_stats(msgpack_packer *pk, const struct daemon *d, const msgpack_object *r)
{
    static const char *const hold_states[] = {"made", "confirmed", "declined", "released",
                                              "expired"};
    static const char *const placement_states[] = {"made", "discharged"};
    char key[64];
    int rc = msgpack_pack_map(pk, 6);

    rc |= proto_pack_kv_int(pk, "searches", count_of(r, "searches"));
    rc |= proto_pack_kv_int(pk, "no_match", count_of(r, "no_match"));
    rc |= proto_pack_cstr(pk, "ruled_out");
    rc |= msgpack_pack_map(pk, REASON__COUNT);
    for (unsigned i = 0; i < REASON__COUNT; i++) {
        snprintf(key, sizeof key, "reason:%s", match_reason_name(i));
        rc |= proto_pack_kv_int(pk, match_reason_name(i), count_of(r, key));
    }
    rc |= proto_pack_cstr(pk, "holds");
    rc |= msgpack_pack_map(pk, 5);
    for (unsigned i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "holds:%s", hold_states[i]);
        rc |= proto_pack_kv_int(pk, hold_states[i], count_of(r, key));
    }
    rc |= proto_pack_cstr(pk, "placements");
    rc |= msgpack_pack_map(pk, 2);
    for (unsigned i = 0; i < 2; i++) {
        snprintf(key, sizeof key, "placements:%s", placement_states[i]);
        rc |= proto_pack_kv_int(pk, placement_states[i], count_of(r, key));
    }
    rc |= proto_pack_cstr(pk, "server");
    rc |= metrics_pack(&d->metrics, conn_count(), pk, daemon_now_ms());
    return rc;
}

static void on_store(const struct store_result *res, void *ud)
{
    struct pending_req *p = ud;
    struct conn *c = p->c;

    if (res->err == PROTO_OK && res->s)
        events_apply_snapshot(c->d, res->s);
    if (conn_open(c)) {
        if (res->err != PROTO_OK) {
            conn_reply_error(c, p->id, true, res->err, res->msg);
        } else if (res->s && p->op != OP_HOLD) {
            const msgpack_object *id = proto_map_get(res->s, "id");
            char sid[PROTO_ID_MAX + 1] = "";
            if (id && id->type == MSGPACK_OBJECT_STR && id->via.str.size < sizeof sid)
                memcpy(sid, id->via.str.ptr, id->via.str.size);
            if (p->op == OP_HOLD_RELEASE || p->op == OP_HOLD_CONFIRM || p->op == OP_HOLD_DECLINE ||
                p->op == OP_PLACEMENT_DISCHARGE) {
                msgpack_packer *pk = conn_reply_packer();
                if (proto_pack_ok_begin(pk, p->id, true) == 0 &&
                    msgpack_pack_object(pk, *res->r) == 0)
                    conn_reply_send(c);
            } else {
                reply_shelter(c, p->id, sid);
            }
        } else if (!res->r) {
            conn_reply_error(c, p->id, true, PROTO_E_INTERNAL, "the store returned no result");
        } else {
            msgpack_packer *pk = conn_reply_packer();
            int rc = proto_pack_ok_begin(pk, p->id, true);
            if (p->op == OP_STATS)
                rc |= pack_stats(pk, c->d, res->r);
            else
                rc |= msgpack_pack_object(pk, *res->r);
            if (rc == 0)
                conn_reply_send(c);
        }
    }
    conn_request_done(c);
    free(p);
}

static void call_store(struct conn *c, const struct proto_request *req, const char *fn,
                       enum store_kind kind, int n, const char *const *args)
{
    struct pending_req *p = calloc(1, sizeof *p);
    if (!p) {
        conn_reply_error(c, req->id, true, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    p->c = c;
    p->id = req->id;
    p->op = req->op;
    conn_request_start(c);
    if (store_call(c->d->store, fn, kind, c->who.name, n, args, on_store, p) != 0) {
        conn_request_done(c);
        free(p);
        conn_reply_error(c, req->id, true, PROTO_E_UNAVAILABLE,
                         "the store cannot be reached right now; nothing was done, retry later");
    }
}

static void do_shelter_put(struct conn *c, const struct proto_request *req)
{
    const struct proto_args *a = &req->args;
    const char *args[MAX_STORE_ARGS];
    char prot[4], maxch[4], boys[4], groups[64], langs[PROTO_MAX_LANGUAGES * 4 + 1];
    int n = 0;
    args[n++] = req->op == OP_SHELTER_ADD ? "add" : "update";
    args[n++] = a->shelter;
#define PAIR(field, key, value)                                                                    \
    if (proto_has(a, field)) {                                                                     \
        args[n++] = key;                                                                           \
        args[n++] = value;                                                                         \
    }
    snprintf(prot, sizeof prot, "%u", a->protection);
    snprintf(maxch, sizeof maxch, "%u", a->max_children);
    snprintf(boys, sizeof boys, "%u", a->boys_max_age);
    join_groups(a->groups, groups, sizeof groups);
    langs[0] = '\0';
    for (unsigned i = 0; i < a->n_languages; i++) {
        if (i)
            strcat(langs, ",");
        strcat(langs, a->languages[i]);
    }
    PAIR(F_NAME, "name", a->name)
    PAIR(F_KIND, "kind", proto_kind_name(a->kind))
    PAIR(F_MUNICIPALITY, "mun", a->municipality)
    PAIR(F_PROTECTION, "prot", prot)
    PAIR(F_PHONE, "phone", a->phone)
    PAIR(F_GROUPS, "groups", groups)
    PAIR(F_MAX_CHILDREN, "maxch", maxch)
    PAIR(F_BOYS_MAX_AGE, "boys", boys)
    PAIR(F_PETS, "pets", a->pets ? "1" : "0")
    PAIR(F_SUBSTANCE, "subst", a->substance ? "1" : "0")
    PAIR(F_LANGUAGES, "langs", langs)
#undef PAIR
    call_store(c, req, "shelter_put", STORE_WRITE, n, args);
}

static void do_store_op(struct conn *c, const struct proto_request *req)
{
    const struct proto_args *a = &req->args;
    const struct config *cfg = c->d->cfg;
    char beds[4], ttl[24], newid[18], since[24], limit[8];

    switch (req->op) {
    case OP_SHELTER_ADD:
    case OP_SHELTER_UPDATE:
        do_shelter_put(c, req);
        return;
    case OP_SHELTER_RETIRE: {
        const char *args[] = {a->shelter};
        call_store(c, req, "shelter_retire", STORE_WRITE, 1, args);
        return;
    }
    case OP_UNIT_ADD:
    case OP_UNIT_UPDATE: {
        snprintf(beds, sizeof beds, "%u", a->beds);
        const char *args[] = {
            req->op == OP_UNIT_ADD ? "add" : "update",
            a->shelter,
            a->unit,
            proto_has(a, F_BEDS) ? beds : "",
            proto_has(a, F_ACCESSIBLE) ? (a->accessible ? "1" : "0")
                                       : (req->op == OP_UNIT_ADD ? "0" : ""),
        };
        call_store(c, req, "unit_put", STORE_WRITE, 5, args);
        return;
    }
    case OP_UNIT_REMOVE: {
        const char *args[] = {a->shelter, a->unit};
        call_store(c, req, "unit_remove", STORE_WRITE, 2, args);
        return;
    }
    case OP_VACANCY_SET: {
        const char *args[] = {a->shelter, a->unit, proto_vacancy_name(a->state)};
        call_store(c, req, "vacancy_set", STORE_WRITE, 3, args);
        return;
    }
    case OP_VACANCY_CONFIRM:
    case OP_INTAKE_PAUSE:
    case OP_INTAKE_RESUME: {
        const char *what = req->op == OP_VACANCY_CONFIRM ? "confirm"
                           : req->op == OP_INTAKE_PAUSE  ? "pause"
                                                         : "resume";
        const char *args[] = {a->shelter, what};
        call_store(c, req, "shelter_mark", STORE_WRITE, 2, args);
        return;
    }
    case OP_HOLD: {
        const char *mun = c->who.role == ROLE_SOCIAL     ? c->who.id
                          : proto_has(a, F_MUNICIPALITY) ? a->municipality
                                                         : "";
        new_id('h', newid);
        snprintf(ttl, sizeof ttl, "%lld", (long long)cfg->hold_ttl_ms);
        const char *args[] = {mun,
                              a->shelter,
                              a->unit,
                              a->ref,
                              newid,
                              ttl,
                              proto_has(a, F_IDEMPOTENCY_KEY) ? a->idempotency_key : ""};
        call_store(c, req, "hold", STORE_WRITE, 7, args);
        return;
    }
    case OP_HOLD_RELEASE: {
        const char *args[] = {a->hold};
        call_store(c, req, "hold_release", STORE_WRITE, 1, args);
        return;
    }
    case OP_HOLD_DECLINE: {
        const char *args[] = {a->hold, a->reason};
        call_store(c, req, "hold_decline", STORE_WRITE, 2, args);
        return;
    }
    case OP_HOLD_CONFIRM: {
        new_id('p', newid);
        const char *args[] = {a->hold, newid};
        call_store(c, req, "hold_confirm", STORE_WRITE, 2, args);
        return;
    }
    case OP_PLACEMENT_DISCHARGE: {
        const char *args[] = {a->placement};
        call_store(c, req, "placement_discharge", STORE_WRITE, 1, args);
        return;
    }
    case OP_HOLDS_LIST:
    case OP_PLACEMENTS_LIST: {
        const char *args[] = {req->op == OP_HOLDS_LIST ? "holds" : "placements"};
        call_store(c, req, "list", STORE_READ, 1, args);
        return;
    }
    case OP_AUDIT: {
        snprintf(since, sizeof since, "%lld", (long long)(proto_has(a, F_SINCE) ? a->since : 0));
        snprintf(limit, sizeof limit, "%u", proto_has(a, F_LIMIT) ? a->limit : 100u);
        const char *args[] = {since, proto_has(a, F_PRINCIPAL) ? a->principal : "",
                              proto_has(a, F_SHELTER) ? a->shelter : "", limit};
        call_store(c, req, "audit_read", STORE_READ, 4, args);
        return;
    }
    case OP_STATS:
        call_store(c, req, "stats", STORE_READ, 0, NULL);
        return;
    default:
        conn_log(c, LOG_LVL_ERROR, "op '%s' reached the store path", proto_op_name(req->op));
        conn_reply_error(c, req->id, true, PROTO_E_INTERNAL, "this request could not be handled");
        return;
    }
}

void dispatch_request(struct conn *c, const struct proto_request *req)
{
    struct proto_error err = {0};
    enum proto_err e = authz_check(&c->who, req, &err);
    if (e != PROTO_OK) {
        conn_log(c, LOG_LVL_INFO, "refused '%s': %s", proto_op_name(req->op), proto_err_code(e));
        conn_reply_error(c, req->id, true, e, err.message);
        (void)audit_note(c, req, proto_err_code(e), false);
        return;
    }
    int64_t now = daemon_now_ms();
    switch (req->op) {
    case OP_WHOAMI:
        do_whoami(c, req);
        return;
    case OP_SHELTER_SHOW:
        if (index_ready(c, req))
            do_show(c, req, now);
        return;
    case OP_SHELTER_LIST:
        if (index_ready(c, req))
            do_list(c, req, now);
        return;
    case OP_FREE:
        if (index_ready(c, req))
            do_free(c, req, now);
        return;
    case OP_SEARCH:
        if (index_ready(c, req))
            do_search(c, req, now);
        return;
    default:
        do_store_op(c, req);
        return;
    }
}
