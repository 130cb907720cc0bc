/* Answers from the in-memory index; see answers.h. */
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "followup.h"
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

/*
 * A search reply is the daemon's largest frequent one: twenty results of a dozen fields. Each is
 * encoded into a local buffer by the small writer below and handed to the packer in one piece,
 * instead of two packer calls and a strlen per key and per value.
 */
struct mpw {
    uint8_t *p;
    size_t n, cap;
    bool full;
};

static void mpw_bytes(struct mpw *w, const void *b, size_t n)
{
    if (w->cap - w->n < n) {
        w->full = true;
        return;
    }
    memcpy(w->p + w->n, b, n);
    w->n += n;
}

static void mpw_byte(struct mpw *w, uint8_t b)
{
    mpw_bytes(w, &b, 1);
}

static void mpw_str(struct mpw *w, const char *s, size_t n)
{
    if (n < 32) {
        mpw_byte(w, (uint8_t)(0xa0 | n));
    } else if (n < 256) {
        uint8_t h[2] = {0xd9, (uint8_t)n};
        mpw_bytes(w, h, 2);
    } else {
        uint8_t h[3] = {0xda, (uint8_t)(n >> 8), (uint8_t)n};
        mpw_bytes(w, h, 3);
    }
    mpw_bytes(w, s, n);
}

/* A key known at compile time: its length is too. */
#define MPW_KEY(w, k) mpw_str((w), (k), sizeof(k) - 1)

static void mpw_cstr(struct mpw *w, const char *s)
{
    mpw_str(w, s, strlen(s));
}

static void mpw_uint(struct mpw *w, uint64_t v)
{
    if (v < 128) {
        mpw_byte(w, (uint8_t)v);
    } else if (v < 65536) {
        uint8_t h[3] = {0xcd, (uint8_t)(v >> 8), (uint8_t)v};
        mpw_bytes(w, h, 3);
    } else if (v <= UINT32_MAX) {
        uint8_t h[5] = {0xce, (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                        (uint8_t)v};
        mpw_bytes(w, h, 5);
    } else {
        uint8_t h[9] = {0xcf};
        for (int i = 0; i < 8; i++)
            h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
        mpw_bytes(w, h, 9);
    }
}

static void mpw_bool(struct mpw *w, bool v)
{
    mpw_byte(w, v ? 0xc3 : 0xc2);
}

static void mpw_map(struct mpw *w, unsigned n)
{
    if (n < 16) {
        mpw_byte(w, (uint8_t)(0x80 | n));
    } else {
        uint8_t h[3] = {0xde, (uint8_t)(n >> 8), (uint8_t)n};
        mpw_bytes(w, h, 3);
    }
}

/*
 * Who sees a shelter's IVO permit: the admin, the shelter itself, and social services and the
 * on-call service, who must be able to trust an offer of protected housing; never another
 * shelter. Who runs a shelter and its competences are no secret: everyone sees them.
 */
static bool sees_permit(const struct principal *p, const char *shelter)
{
    return p->role != ROLE_SHELTER || strcmp(p->id, shelter) == 0;
}

/* The keys pack_practice packs for this viewer. */
static unsigned practice_keys(const struct op_ctx *x, const struct idx_shelter *s, bool competences)
{
    return (competences ? 1u : 0u) + 1u + (sees_permit(x->who, s->id) ? 3u : 0u);
}

/*
 * competences (when asked for), operator (nil when it was never recorded) and, for those who
 * see it, ivo_permit and ivo_permit_date (nil without a permit) and ivo_registered.
 */
static void mpw_practice(struct mpw *w, const struct op_ctx *x, const struct idx_shelter *s,
                         bool competences)
{
    if (competences) {
        MPW_KEY(w, "competences");
        mpw_byte(w, (uint8_t)(0x90 | __builtin_popcount(s->competences))); /* COMP__COUNT < 16 */
        for (unsigned c = 0; c < COMP__COUNT; c++) {
            if (s->competences & (1u << c))
                mpw_cstr(w, proto_competence_name(c));
        }
    }
    MPW_KEY(w, "operator");
    if (s->operator_ == IDX_UNKNOWN)
        mpw_byte(w, 0xc0);
    else
        mpw_cstr(w, proto_operator_name(s->operator_));
    if (!sees_permit(x->who, s->id))
        return;
    MPW_KEY(w, "ivo_permit");
    if (s->ivo_permit[0])
        mpw_cstr(w, s->ivo_permit);
    else
        mpw_byte(w, 0xc0);
    MPW_KEY(w, "ivo_permit_date");
    if (s->ivo_permit[0] && s->ivo_permit_date[0])
        mpw_cstr(w, s->ivo_permit_date);
    else
        mpw_byte(w, 0xc0);
    MPW_KEY(w, "ivo_registered");
    mpw_bool(w, s->ivo_registered);
}

static int pack_practice(msgpack_packer *pk, const struct op_ctx *x, const struct idx_shelter *s,
                         bool competences)
{
    uint8_t buf[512];
    struct mpw w = {buf, 0, sizeof buf, false};
    mpw_practice(&w, x, s, competences);
    return w.full ? -1 : pk->callback(pk->data, (const char *)buf, w.n);
}

static int pack_shelter(msgpack_packer *pk, const struct op_ctx *x, const struct idx_shelter *s,
                        bool phone, int64_t now)
{
    char intake[PROTO_INTAKE_MAX * 4 + 1];
    if (proto_intake_format(&s->intake, intake, sizeof intake) < 0)
        intake[0] = '\0';
    int rc = msgpack_pack_map(pk, (phone ? 21 : 20) + practice_keys(x, s, true));
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
    rc |= pack_practice(pk, x, s, true);
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
    /* A retired shelter's name and municipality are the registry's: the admin's alone. */
    if (!s || (s->retired && x->who->role != ROLE_ADMIN))
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

/*
 * Whether the principal may see this shelter in a listing: a shelter sees only itself (other
 * shelters' names, municipalities and vacancies are for social services, on-call and admin).
 */
static bool sees_shelter(const struct principal *p, const struct idx_shelter *s)
{
    return p->role != ROLE_SHELTER || strcmp(p->id, s->id) == 0;
}

enum proto_err answers_listing(const struct op_ctx *x, const struct idx_shelter ***out, unsigned *n,
                               unsigned *start, struct proto_error *err)
{
    const struct index *ix = x->index;
    const struct idx_shelter **list = malloc((ix->n ? ix->n : 1) * sizeof *list);
    *n = *start = 0;
    *out = NULL;
    if (!list)
        return proto_fail(err, PROTO_E_INTERNAL, "out of memory");
    for (unsigned i = 0; i < ix->n; i++) {
        const struct idx_shelter *s = ix->shelters[i];
        if (!s->retired && sees_shelter(x->who, s) && in_area(x, s, x->args))
            list[(*n)++] = s;
    }
    qsort(list, *n, sizeof *list, by_municipality);
    if (proto_has(x->args, F_AFTER)) {
        /* Not found and not seen are one answer: a cursor is no way to learn of a shelter. */
        const struct idx_shelter *after = index_find(ix, x->args->after);
        if (!after || !sees_shelter(x->who, after)) {
            free(list);
            return proto_fail(err, PROTO_E_NOT_FOUND,
                              "no shelter '%s' to continue after; start the listing again "
                              "without 'after'",
                              x->args->after);
        }
        unsigned lo = 0, hi = *n; /* the first entry that sorts after it */
        while (lo < hi) {
            unsigned mid = lo + (hi - lo) / 2;
            if (by_municipality(&list[mid], &after) <= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        *start = lo;
    }
    *out = list;
    return PROTO_OK;
}

int answers_pack_next(msgpack_packer *pk, const struct idx_shelter *const *list, unsigned end,
                      unsigned n)
{
    return end < n ? proto_pack_kv_str(pk, "next", list[end - 1]->id) : 0;
}

enum proto_err answer_shelter_list(const struct op_ctx *x, msgpack_packer *pk,
                                   struct proto_error *err)
{
    unsigned n, start;
    const struct idx_shelter **list;
    enum proto_err e = answers_listing(x, &list, &n, &start, err);
    if (e != PROTO_OK)
        return e;
    unsigned end = n - start > LISTING_PAGE ? start + LISTING_PAGE : n;
    int rc = msgpack_pack_map(pk, end < n ? 2 : 1);
    rc |= proto_pack_cstr(pk, "shelters");
    rc |= msgpack_pack_array(pk, end - start);
    for (unsigned i = start; i < end; i++) {
        const struct idx_shelter *s = list[i];
        unsigned free_units = 0;
        for (unsigned k = 0; k < s->n_units; k++)
            free_units += match_unit_available(s, &s->units[k]);
        rc |= msgpack_pack_map(pk, 12 + practice_keys(x, s, false));
        rc |= proto_pack_kv_str(pk, "id", s->id);
        rc |= proto_pack_kv_str(pk, "name", s->name);
        rc |= proto_pack_kv_str(pk, "kind", proto_kind_name(s->kind));
        rc |= pack_muni(pk, x->geo, s->mun);
        rc |= proto_pack_kv_int(pk, "protection", s->protection);
        rc |= proto_pack_kv_int(pk, "units", s->n_units);
        rc |= proto_pack_kv_int(pk, "free_units", free_units);
        rc |= proto_pack_kv_bool(pk, "paused", s->paused);
        rc |= pack_freshness(pk, x, s, x->now_ms);
        rc |= pack_practice(pk, x, s, false);
    }
    rc |= answers_pack_next(pk, list, end, n);
    free(list);
    return rc ? proto_fail(err, PROTO_E_INTERNAL, "out of memory") : PROTO_OK;
}

enum proto_err answer_free(const struct op_ctx *x, msgpack_packer *pk, struct proto_error *err)
{
    unsigned n, start, end, count = 0;
    const struct idx_shelter **list;
    enum proto_err e = answers_listing(x, &list, &n, &start, err);
    if (e != PROTO_OK)
        return e;
    /* A page ends with the shelter at which it reaches LISTING_PAGE units: whole shelters. */
    for (end = start; end < n && count < LISTING_PAGE; end++) {
        for (unsigned k = 0; k < list[end]->n_units; k++)
            count += match_unit_available(list[end], &list[end]->units[k]);
    }
    int rc = msgpack_pack_map(pk, end < n ? 2 : 1);
    rc |= proto_pack_cstr(pk, "units");
    rc |= msgpack_pack_array(pk, count);
    for (unsigned i = start; i < end; i++) {
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
    rc |= answers_pack_next(pk, list, end, n);
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
    uint8_t buf[1024];
    for (unsigned i = 0; i < out.n_hits && rc == 0; i++) {
        const struct match_hit *h = &out.hits[i];
        const struct idx_shelter *s = h->shelter;
        const struct geo_municipality *gm = &x->geo->m[s->mun];
        struct mpw w = {buf, 0, sizeof buf, false};
        mpw_map(&w, 12 + practice_keys(x, s, false));
        MPW_KEY(&w, "shelter");
        mpw_cstr(&w, s->id);
        MPW_KEY(&w, "unit");
        mpw_cstr(&w, h->unit->id);
        MPW_KEY(&w, "name");
        mpw_cstr(&w, s->name);
        MPW_KEY(&w, "kind");
        mpw_cstr(&w, proto_kind_name(s->kind));
        MPW_KEY(&w, "municipality");
        mpw_str(&w, gm->code, 4);
        MPW_KEY(&w, "county");
        mpw_str(&w, gm->county, 2);
        MPW_KEY(&w, "distance_km");
        mpw_uint(&w, (uint64_t)(h->distance_km + 0.5));
        MPW_KEY(&w, "beds");
        mpw_uint(&w, h->unit->beds);
        MPW_KEY(&w, "protection");
        mpw_uint(&w, s->protection);
        MPW_KEY(&w, "stale");
        mpw_bool(&w, h->stale);
        MPW_KEY(&w, "data_age_s");
        mpw_uint(&w, (uint64_t)h->age_s);
        /* When the shelter can receive: null at the arrival time, else its next opening. */
        MPW_KEY(&w, "receives_from");
        char from[40];
        int64_t next = h->receives ? arrival : intake_next_open(&s->intake, arrival);
        if (next == arrival || next < 0 || intake_format_time(next, from, sizeof from) < 0)
            mpw_byte(&w, 0xc0);
        else
            mpw_cstr(&w, from);
        mpw_practice(&w, x, s, false);
        rc = w.full ? -1 : pk->callback(pk->data, (const char *)buf, w.n);
    }
    struct mpw w = {buf, 0, sizeof buf, false};
    MPW_KEY(&w, "ruled_out");
    mpw_map(&w, REASON__COUNT);
    for (unsigned r = 0; r < REASON__COUNT; r++) {
        mpw_cstr(&w, match_reason_name(r));
        mpw_uint(&w, out.ruled_out[r]);
    }
    rc |= w.full ? -1 : pk->callback(pk->data, (const char *)buf, w.n);
    /* Counted for the responsible municipality: social services' own, else the household's. */
    const char *mun = x->who->role == ROLE_SOCIAL ? x->who->id : x->args->home;
    int m = proto_municipality_index(mun, strlen(mun));
    followup_count_search(x->counts, x->now_ms, m < 0 ? PROTO_MUNICIPALITIES : (unsigned)m,
                          out.n_hits == 0, out.ruled_out);
    match_outcome_free(&out);
    return rc ? proto_fail(err, PROTO_E_INTERNAL, "out of memory") : PROTO_OK;
}
