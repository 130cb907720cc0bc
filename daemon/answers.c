/* Answers from the in-memory index; see answers.h. */
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "intake.h"

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

static int pack_freshness(msgpack_packer *pk, const struct op_ctx *x, const struct idx_shelter *s,
                          int64_t now)
{
    int rc = proto_pack_kv_bool(pk, "stale", match_is_stale(s, now, x->cfg->stale_after_ms));
    return rc | proto_pack_kv_int(pk, "data_age_s", match_age_s(s, now));
}

static int pack_shelter(msgpack_packer *pk, const struct op_ctx *x, const struct idx_shelter *s,
                        bool phone, int64_t now)
{
    char intake[PROTO_INTAKE_MAX * 4 + 1];
    if (proto_intake_format(&s->intake, intake, sizeof intake) < 0)
        intake[0] = '\0';
    int rc = msgpack_pack_map(pk, phone ? 21 : 20);
    rc |= proto_pack_kv_str(pk, "id", s->id);
    rc |= proto_pack_kv_str(pk, "name", s->name);
    rc |= proto_pack_kv_str(pk, "kind", proto_kind_name(s->kind));
    rc |= pack_muni(pk, x->geo, s->mun);
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
    rc |= proto_pack_kv_str(pk, "intake_hours", intake);
    rc |= proto_pack_kv_bool(pk, "paused", s->paused);
    rc |= proto_pack_kv_bool(pk, "retired", s->retired);
    rc |= proto_pack_kv_int(pk, "updated_at", s->updated_ms);
    rc |= pack_freshness(pk, x, s, now);
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

static bool sees_phone(const struct principal *p, const char *shelter)
{
    return p->role == ROLE_ADMIN || (p->role == ROLE_SHELTER && strcmp(p->id, shelter) == 0);
}

/* ---- answers ---------------------------------------------------------------------------- */

enum proto_err answer_whoami(const struct op_ctx *x, msgpack_packer *pk, struct proto_error *err)
{
    (void)err;
    int rc = msgpack_pack_map(pk, 2);
    rc |= proto_pack_kv_str(pk, "role", proto_role_name(x->who->role));
    rc |= proto_pack_kv_str(pk, "id", x->who->id);
    return rc ? proto_fail(err, PROTO_E_INTERNAL, "out of memory") : PROTO_OK;
}

enum proto_err answer_shelter_show(const struct op_ctx *x, msgpack_packer *pk,
                                   struct proto_error *err)
{
    const struct idx_shelter *s = index_find(x->index, x->args->shelter);
    if (!s)
        return proto_fail(err, PROTO_E_NOT_FOUND, "no shelter with this id");
    /* The intake phone is disclosed only when the disclosure can be audited. */
    bool phone = sees_phone(x->who, s->id) && x->audit_disclosure(x);
    int rc = msgpack_pack_map(pk, 1);
    rc |= proto_pack_cstr(pk, "shelter");
    rc |= pack_shelter(pk, x, s, phone, x->now_ms);
    return rc ? proto_fail(err, PROTO_E_INTERNAL, "out of memory") : PROTO_OK;
}

int answer_shelter_written(const struct op_ctx *x, const msgpack_object *result,
                           const msgpack_object *snapshot, msgpack_packer *pk)
{
    (void)result;
    const msgpack_object *id = snapshot ? proto_map_get(snapshot, "id") : NULL;
    char sid[PROTO_ID_MAX + 1] = "";
    if (id && id->type == MSGPACK_OBJECT_STR && id->via.str.size < sizeof sid)
        memcpy(sid, id->via.str.ptr, id->via.str.size);
    const struct idx_shelter *s = index_find(x->index, sid);
    if (!s)
        return -1;
    int rc = msgpack_pack_map(pk, 1);
    rc |= proto_pack_cstr(pk, "shelter");
    rc |= pack_shelter(pk, x, s, false, x->now_ms);
    return rc ? -1 : 0;
}

static bool in_area(const struct op_ctx *x, const struct idx_shelter *s, const struct proto_args *a)
{
    if (proto_has(a, F_COUNTY) && memcmp(x->geo->m[s->mun].county, a->county, 2) != 0)
        return false;
    if (proto_has(a, F_MUNICIPALITY) && strcmp(x->geo->m[s->mun].code, a->municipality) != 0)
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
static const struct idx_shelter **area_shelters(const struct op_ctx *x, unsigned *n)
{
    const struct index *ix = x->index;
    const struct idx_shelter **list = malloc((ix->n ? ix->n : 1) * sizeof *list);
    *n = 0;
    if (!list)
        return NULL;
    for (unsigned i = 0; i < ix->n; i++) {
        if (!ix->shelters[i]->retired && in_area(x, ix->shelters[i], x->args))
            list[(*n)++] = ix->shelters[i];
    }
    qsort(list, *n, sizeof *list, by_municipality);
    return list;
}

enum proto_err answer_shelter_list(const struct op_ctx *x, msgpack_packer *pk,
                                   struct proto_error *err)
{
    unsigned n;
    const struct idx_shelter **list = area_shelters(x, &n);
    if (!list)
        return proto_fail(err, PROTO_E_INTERNAL, "out of memory");
    int rc = msgpack_pack_map(pk, 1);
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
        rc |= pack_muni(pk, x->geo, s->mun);
        rc |= proto_pack_kv_int(pk, "protection", s->protection);
        rc |= proto_pack_kv_int(pk, "units", s->n_units);
        rc |= proto_pack_kv_int(pk, "free_units", free_units);
        rc |= proto_pack_kv_bool(pk, "paused", s->paused);
        rc |= pack_freshness(pk, x, s, x->now_ms);
    }
    free(list);
    return rc ? proto_fail(err, PROTO_E_INTERNAL, "out of memory") : PROTO_OK;
}

enum proto_err answer_free(const struct op_ctx *x, msgpack_packer *pk, struct proto_error *err)
{
    unsigned n, count = 0;
    const struct idx_shelter **list = area_shelters(x, &n);
    if (!list)
        return proto_fail(err, PROTO_E_INTERNAL, "out of memory");
    for (unsigned i = 0; i < n; i++) {
        for (unsigned k = 0; k < list[i]->n_units; k++)
            count += match_unit_available(list[i], &list[i]->units[k]);
    }
    int rc = msgpack_pack_map(pk, 1);
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
            rc |= pack_muni(pk, x->geo, s->mun);
            rc |= proto_pack_kv_str(pk, "unit", u->id);
            rc |= proto_pack_kv_int(pk, "beds", u->beds);
            rc |= proto_pack_kv_bool(pk, "accessible", u->accessible);
            rc |= proto_pack_kv_int(pk, "protection", s->protection);
            rc |= pack_freshness(pk, x, s, x->now_ms);
        }
    }
    free(list);
    return rc ? proto_fail(err, PROTO_E_INTERNAL, "out of memory") : PROTO_OK;
}

enum proto_err answer_search(const struct op_ctx *x, msgpack_packer *pk, struct proto_error *err)
{
    struct match_outcome out;
    int64_t arrival = proto_has(x->args, F_ARRIVAL_AT) ? x->args->arrival_at : x->now_ms;
    if (match_search(x->index, x->geo, x->policy, x->args, x->now_ms, x->cfg->stale_after_ms,
                     &out) < 0)
        return proto_fail(err, PROTO_E_INTERNAL, "out of memory");
    int rc = msgpack_pack_map(pk, 2);
    rc |= proto_pack_cstr(pk, "results");
    rc |= msgpack_pack_array(pk, out.n_hits);
    for (unsigned i = 0; i < out.n_hits; i++) {
        const struct match_hit *h = &out.hits[i];
        rc |= msgpack_pack_map(pk, 12);
        rc |= proto_pack_kv_str(pk, "shelter", h->shelter->id);
        rc |= proto_pack_kv_str(pk, "unit", h->unit->id);
        rc |= proto_pack_kv_str(pk, "name", h->shelter->name);
        rc |= proto_pack_kv_str(pk, "kind", proto_kind_name(h->shelter->kind));
        rc |= proto_pack_kv_str(pk, "municipality", x->geo->m[h->shelter->mun].code);
        rc |= proto_pack_kv_str(pk, "county", x->geo->m[h->shelter->mun].county);
        rc |= proto_pack_kv_int(pk, "distance_km", (int64_t)(h->distance_km + 0.5));
        rc |= proto_pack_kv_int(pk, "beds", h->unit->beds);
        rc |= proto_pack_kv_int(pk, "protection", h->shelter->protection);
        rc |= proto_pack_kv_bool(pk, "stale", h->stale);
        rc |= proto_pack_kv_int(pk, "data_age_s", h->age_s);
        /* When the shelter can receive: null at the arrival time, else its next opening. */
        rc |= proto_pack_cstr(pk, "receives_from");
        char from[40];
        int64_t next = h->receives ? arrival : intake_next_open(&h->shelter->intake, arrival);
        if (next == arrival || next < 0 || intake_format_time(next, from, sizeof from) < 0)
            rc |= msgpack_pack_nil(pk);
        else
            rc |= proto_pack_cstr(pk, from);
    }
    rc |= proto_pack_cstr(pk, "ruled_out");
    rc |= msgpack_pack_map(pk, REASON__COUNT);
    for (unsigned r = 0; r < REASON__COUNT; r++)
        rc |= proto_pack_kv_int(pk, match_reason_name(r), out.ruled_out[r]);
    struct search_counts *counts = x->counts;
    if (out.n_hits == 0) {
        counts->no_match++;
        for (unsigned r = 0; r < REASON__COUNT; r++)
            counts->reasons[r] += out.ruled_out[r] > 0;
    }
    counts->searches++;
    match_outcome_free(&out);
    return rc ? proto_fail(err, PROTO_E_INTERNAL, "out of memory") : PROTO_OK;
}
