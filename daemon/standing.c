/*
 * Standing searches in memory (standing.h). They are kept sorted by the beds their household
 * needs, so that a freed unit is checked only against the searches it has room for; and only
 * a change that makes a unit available, or a shelter that resumes or changes what it takes,
 * leads to a check at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "daemon.h"
#include "log.h"
#include "match.h"
#include "standing.h"
#include "store.h"

struct entry {
    char id[PROTO_TOKEN_MAX + 1];
    int64_t expires_ms; /* wall clock */
    struct proto_args referral;
    struct match_referral m; /* m.args points at referral */
};

struct standing {
    struct daemon *d;
    struct entry **list; /* by m.household, then id */
    unsigned n, cap;
    bool loading;
};

unsigned standing_count(const struct standing *st)
{
    return st->n;
}

static int entry_cmp(const struct entry *a, const struct entry *b)
{
    if (a->m.household != b->m.household)
        return a->m.household < b->m.household ? -1 : 1;
    return strcmp(a->id, b->id);
}

static void remove_id(struct standing *st, const char *id)
{
    for (unsigned i = 0; i < st->n; i++) {
        if (strcmp(st->list[i]->id, id) == 0) {
            free(st->list[i]);
            memmove(st->list + i, st->list + i + 1, (st->n - i - 1) * sizeof *st->list);
            st->n--;
            return;
        }
    }
}

static void clear(struct standing *st)
{
    for (unsigned i = 0; i < st->n; i++)
        free(st->list[i]);
    st->n = 0;
}

/* Decodes a stored referral as the fields of a search request would be. */
static bool decode_referral(const msgpack_object *blob, struct proto_args *out)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 3);
    rc |= proto_pack_kv_int(&pk, "id", 0);
    rc |= proto_pack_kv_str(&pk, "op", "search");
    rc |= proto_pack_cstr(&pk, "args");
    if (blob->type == MSGPACK_OBJECT_STR)
        rc |= msgpack_sbuffer_write(&sb, blob->via.str.ptr, blob->via.str.size);
    else
        rc = -1;
    bool ok = false;
    struct proto_request *req = malloc(sizeof *req);
    struct proto_error err;
    if (rc == 0 && req &&
        proto_decode_request((const uint8_t *)sb.data, sb.size, req, &err) == PROTO_OK) {
        *out = req->args;
        ok = true;
    }
    free(req);
    msgpack_sbuffer_destroy(&sb);
    return ok;
}

/* Adds one standing search from its store view. */
static void add_view(struct standing *st, const msgpack_object *v)
{
    const msgpack_object *id = proto_map_get(v, "standing"), *ex = proto_map_get(v, "expires_at"),
                         *ref = proto_map_get(v, "referral");
    struct entry *e = calloc(1, sizeof *e);
    if (!e || !id || id->type != MSGPACK_OBJECT_STR || id->via.str.size > PROTO_TOKEN_MAX || !ex ||
        ex->type != MSGPACK_OBJECT_POSITIVE_INTEGER || !ref ||
        !decode_referral(ref, &e->referral) ||
        match_prepare(&e->m, st->d->geo, &st->d->policy, &e->referral) < 0) {
        log_warning("standing: a standing search could not be read");
        free(e);
        return;
    }
    memcpy(e->id, id->via.str.ptr, id->via.str.size);
    e->expires_ms = (int64_t)ex->via.u64;
    e->m.args = &e->referral;
    remove_id(st, e->id);
    if (st->n == st->cap) {
        unsigned cap = st->cap ? st->cap * 2 : 16;
        struct entry **grown = realloc(st->list, cap * sizeof *grown);
        if (!grown) {
            free(e);
            return;
        }
        st->list = grown;
        st->cap = cap;
    }
    unsigned at = st->n;
    while (at > 0 && entry_cmp(st->list[at - 1], e) > 0)
        at--;
    memmove(st->list + at + 1, st->list + at, (st->n - at) * sizeof *st->list);
    st->list[at] = e;
    st->n++;
}

static void on_loaded(const struct store_result *res, void *ud)
{
    struct standing *st = ud;
    bool all = st->loading;
    st->loading = false;
    const msgpack_object *list = res->err ? NULL : proto_map_get(res->result, "standing");
    if (!list || list->type != MSGPACK_OBJECT_ARRAY) {
        if (res->err && res->err != PROTO_E_UNAVAILABLE)
            log_warning("standing: cannot load the standing searches: %s",
                        res->msg ? res->msg : proto_err_code(res->err));
        return;
    }
    if (all)
        clear(st);
    for (uint32_t i = 0; i < list->via.array.size; i++)
        add_view(st, &list->via.array.ptr[i]);
    if (all)
        log_info("standing: %u standing searches", st->n);
}

static void load(struct standing *st, const char *one)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, one ? 1 : 0);
    if (one)
        rc |= proto_pack_kv_str(&pk, "standing", one);
    if (rc == 0 &&
        store_call(st->d->store, "standing_load", STORE_READ, "system:standing", "standing_load",
                   sb.data, sb.size, on_loaded, st) == 0 &&
        !one)
        st->loading = true;
    msgpack_sbuffer_destroy(&sb);
}

void standing_load(struct standing *st)
{
    load(st, NULL);
}

void standing_on_event(struct standing *st, const struct event *e)
{
    if (e->type != EV_STANDING || !e->standing[0])
        return;
    if (strcmp(e->state, "active") == 0)
        load(st, e->standing);
    else
        remove_id(st, e->standing);
}

/* Does what the shelter takes, or where it is, differ? */
static bool takes_changed(const struct idx_shelter *a, const struct idx_shelter *b)
{
    return a->mun != b->mun || a->protection != b->protection || a->groups != b->groups ||
           a->max_children != b->max_children || a->boys_max_age != b->boys_max_age ||
           a->pets != b->pets || a->substance != b->substance || a->n_languages != b->n_languages ||
           memcmp(a->languages, b->languages, sizeof a->languages) != 0;
}

static void report(struct standing *st, const struct entry *e, const struct idx_shelter *s,
                   const struct idx_unit *u)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 4);
    rc |= proto_pack_kv_str(&pk, "standing", e->id);
    rc |= proto_pack_kv_str(&pk, "shelter", s->id);
    rc |= proto_pack_kv_str(&pk, "unit", u->id);
    rc |= proto_pack_kv_int(&pk, "version", (int64_t)s->ver);
    if (rc != 0 || store_call(st->d->store, "standing_match", STORE_WRITE, "system:standing",
                              "standing_match", sb.data, sb.size, NULL, NULL) != 0)
        log_warning("standing: a match could not be reported (store down)");
    msgpack_sbuffer_destroy(&sb);
}

void standing_shelter_changed(struct standing *st, const struct idx_shelter *before,
                              const struct idx_shelter *after)
{
    if (!after || st->n == 0 || after->retired || after->paused)
        return;
    bool every_unit = !before || before->paused || takes_changed(before, after);
    int64_t now = clock_wall_ms();
    for (unsigned k = 0; k < after->n_units; k++) {
        const struct idx_unit *u = &after->units[k];
        if (!match_unit_available(after, u))
            continue;
        if (!every_unit) {
            const struct idx_unit *was = index_find_unit(before, u->id);
            if (was && match_unit_available(before, was) && was->beds == u->beds &&
                was->accessible == u->accessible)
                continue; /* available before, and the same: nothing new to offer */
        }
        for (unsigned i = 0; i < st->n && st->list[i]->m.household <= u->beds; i++) {
            const struct entry *e = st->list[i];
            if (e->expires_ms > now && match_reasons(&e->m, after, u) == 0)
                report(st, e, after, u);
        }
    }
}

struct standing *standing_new(struct daemon *d)
{
    struct standing *st = calloc(1, sizeof *st);
    if (st)
        st->d = d;
    return st;
}

void standing_free(struct standing *st)
{
    if (!st)
        return;
    clear(st);
    free(st->list);
    free(st);
}
