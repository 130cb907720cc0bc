/*
 * The public directory (op `directory`, admin): what help exists where, which `fristad export
 * hsds` publishes as Open Referral HSDS. It is the part of the index that may be public: each
 * shelter's name, kind and municipality, what it takes, and its units as counts only. Never an
 * address (Fristad has none), never a unit's id, beds, state or vacancy, never whether intake
 * is paused (a night without staff is nobody's business), and never the intake phone of
 * protected housing (skyddat boende) or of a shelter with high security (protection 3): a
 * phone is given only for other shelters of protection 1 or 2, and only when that disclosure
 * can be audited, as every disclosure of an intake phone is.
 */
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "directory.h"

/* Whether a shelter's intake phone may stand in the public directory. */
bool directory_phone_public(const struct idx_shelter *s)
{
    return s->kind != KIND_SKYDDAT_BOENDE && s->protection < 3;
}

static int pack_limit(msgpack_packer *pk, const char *key, int v)
{
    int rc = proto_pack_cstr(pk, key);
    return rc | (v == IDX_NO_LIMIT ? msgpack_pack_nil(pk) : msgpack_pack_int(pk, v));
}

enum proto_err answer_directory(const struct op_ctx *x, msgpack_packer *pk, struct proto_error *err)
{
    unsigned n, start, with_phone = 0;
    const struct idx_shelter **list;
    enum proto_err e = answers_listing(x, &list, &n, &start, err);
    if (e != PROTO_OK)
        return e;
    unsigned end = n - start > LISTING_PAGE ? start + LISTING_PAGE : n;
    for (unsigned i = start; i < end; i++)
        with_phone += directory_phone_public(list[i]);
    /* One audit entry for the phones a page discloses; none without it. */
    bool phones = with_phone > 0 && x->audit_disclosure(x);
    int rc = msgpack_pack_map(pk, end < n ? 3 : 2);
    rc |= proto_pack_kv_bool(pk, "phones_withheld", with_phone > 0 && !phones);
    rc |= proto_pack_cstr(pk, "shelters");
    rc |= msgpack_pack_array(pk, end - start);
    for (unsigned i = start; i < end; i++) {
        const struct idx_shelter *s = list[i];
        const struct geo_municipality *m = &x->geo->m[s->mun];
        bool phone = phones && directory_phone_public(s);
        unsigned beds = 0, accessible = 0;
        for (unsigned k = 0; k < s->n_units; k++) {
            beds += s->units[k].beds;
            accessible += s->units[k].accessible;
        }
        rc |= msgpack_pack_map(pk, phone ? 17 : 16);
        rc |= proto_pack_kv_str(pk, "shelter", s->id);
        rc |= proto_pack_kv_str(pk, "name", s->name);
        rc |= proto_pack_kv_str(pk, "kind", proto_kind_name(s->kind));
        rc |= proto_pack_kv_str(pk, "municipality", m->code);
        rc |= proto_pack_kv_str(pk, "municipality_name", m->name);
        rc |= proto_pack_kv_str(pk, "county", m->county);
        rc |= proto_pack_kv_str(pk, "county_name", m->county_name);
        rc |= proto_pack_cstr(pk, "groups");
        rc |= msgpack_pack_array(pk, (size_t)__builtin_popcount(s->groups));
        for (unsigned g = 0; g < GROUP__COUNT; g++) {
            if (s->groups & (1u << g))
                rc |= proto_pack_cstr(pk, proto_group_name(g));
        }
        rc |= proto_pack_cstr(pk, "languages");
        rc |= msgpack_pack_array(pk, s->n_languages);
        for (unsigned k = 0; k < s->n_languages; k++)
            rc |= proto_pack_cstr(pk, s->languages[k]);
        rc |= proto_pack_kv_bool(pk, "pets", s->pets);
        rc |= proto_pack_kv_bool(pk, "substance", s->substance);
        rc |= pack_limit(pk, "max_children", s->max_children);
        rc |= pack_limit(pk, "boys_max_age", s->boys_max_age);
        rc |= proto_pack_kv_int(pk, "units", s->n_units);
        rc |= proto_pack_kv_int(pk, "beds", beds);
        rc |= proto_pack_kv_int(pk, "accessible_units", accessible);
        if (phone)
            rc |= proto_pack_kv_str(pk, "phone", s->phone);
    }
    rc |= answers_pack_next(pk, list, end, n);
    free(list);
    return rc ? proto_fail(err, PROTO_E_INTERNAL, "out of memory") : PROTO_OK;
}
