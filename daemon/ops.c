/*
 * The op table (ops.h): one row per op, and the few functions the rows name that are not
 * answers from the index (answers.c): what the daemon adds to a store call, and how a store
 * result becomes a reply.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "answers.h"
#include "directory.h"
#include "followup.h"
#include "ops.h"

/* ---- extras ----------------------------------------------------------------------------- */

static void put_str(struct op_extra *e, const char *key, const char *value)
{
    e->kv[e->n].key = key;
    snprintf(e->buf[e->n], sizeof e->buf[e->n], "%s", value);
    e->kv[e->n].str = e->buf[e->n];
    e->n++;
}

static void put_num(struct op_extra *e, const char *key, int64_t value)
{
    e->kv[e->n].key = key;
    e->kv[e->n].str = NULL;
    e->kv[e->n].num = value;
    e->n++;
}

/*
 * A new hold or placement id: the prefix and 16 letters drawn from the kernel's random source
 * (19 consonants: no digits, so an id can never look like a personal identity number, and no
 * vowels, so it spells no word; 19^16 is about 2^68). The store refuses an id that exists
 * already, so a collision fails one request, never two.
 */
static const char ID_LETTERS[] = "bcdfghjkmnpqrstvwxz";

int ops_new_id(char prefix, char out[PROTO_ID_LEN + 1])
{
    unsigned char raw[64];
    unsigned n = 0, used = sizeof raw;
    out[n++] = prefix;
    while (n < PROTO_ID_LEN) {
        if (used == sizeof raw) {
            if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
                return -1;
            used = 0;
        }
        unsigned char b = raw[used++];
        if (b < 19 * 13) /* 247: an even share for each letter */
            out[n++] = ID_LETTERS[b % 19];
    }
    out[n] = '\0';
    return 0;
}

/* hold: is the unit eligible for this referral, by the very predicate that search applies? */
static enum proto_err check_hold(const struct op_ctx *x, struct proto_error *err)
{
    if (!x->index->loaded)
        return proto_fail(err, PROTO_E_UNAVAILABLE,
                          "the server is still loading its data; retry in a moment");
    const struct idx_shelter *s = index_find(x->index, x->args->shelter);
    const struct idx_unit *u = s ? index_find_unit(s, x->args->unit) : NULL;
    if (!u)
        return proto_fail(err, PROTO_E_NOT_FOUND, "no such shelter or unit");
    struct match_referral m;
    if (match_prepare(&m, x->geo, x->policy, x->args) < 0)
        return proto_fail(err, PROTO_E_INTERNAL, "the referral could not be prepared");
    unsigned reasons = match_reasons(&m, s, u);
    if (reasons) {
        char why[160];
        match_reasons_text(reasons, why, sizeof why);
        return proto_fail(err, PROTO_E_INELIGIBLE,
                          "this unit is ruled out for the referral: %s; search again for units "
                          "that fit",
                          why);
    }
    return PROTO_OK;
}

/*
 * hold: the responsible municipality (social services hold for their own; on-call for the
 * municipality it names, or else the household's home municipality: it is never empty, and
 * authz_check has made sure it is one of on-call's agreement), a new id, the hold time and the
 * open-hold cap.
 */
static int extra_hold(const struct op_ctx *x, struct op_extra *e)
{
    char id[PROTO_ID_LEN + 1];
    if (ops_new_id('h', id) < 0)
        return -1;
    e->drop = PROTO_BIT(F_MUNICIPALITY);
    if (x->who->role == ROLE_SOCIAL)
        put_str(e, "municipality", x->who->id);
    else if (proto_has(x->args, F_MUNICIPALITY))
        put_str(e, "municipality", x->args->municipality);
    else
        put_str(e, "municipality", x->args->home);
    put_str(e, "hold", id);
    put_num(e, "ttl", x->cfg->hold_ttl_ms);
    put_num(e, "max_open", x->cfg->max_open_holds);
    put_num(e, "escalate_after", x->cfg->escalate_after_ms);
    /* The copy of the shelter check_hold judged: the store refuses the hold if what the shelter
     * takes has changed since (an update through another daemon not seen here yet). */
    const struct idx_shelter *s = index_find(x->index, x->args->shelter);
    put_num(e, "checked_version", s ? (int64_t)s->ver : 0);
    return 0;
}

/* standing.add: a new id, the responsible municipality as for a hold, and the cap. */
static int extra_standing(const struct op_ctx *x, struct op_extra *e)
{
    char id[PROTO_ID_LEN + 1];
    if (ops_new_id('s', id) < 0)
        return -1;
    e->drop = PROTO_BIT(F_MUNICIPALITY);
    if (x->who->role == ROLE_SOCIAL)
        put_str(e, "municipality", x->who->id);
    else if (proto_has(x->args, F_MUNICIPALITY))
        put_str(e, "municipality", x->args->municipality);
    else
        put_str(e, "municipality", x->args->home);
    put_str(e, "standing", id);
    put_num(e, "max_open", x->cfg->max_open_holds);
    return 0;
}

/* hold.accept: an arrival time, if named, lies ahead and at most a day away. */
static enum proto_err check_accept(const struct op_ctx *x, struct proto_error *err)
{
    const struct proto_args *a = x->args;
    if (proto_has(a, F_ARRIVAL_BY) &&
        (a->arrival_by <= x->now_ms || a->arrival_by > x->now_ms + 24 * 3600 * 1000LL))
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "field 'arrival_by' must lie in the next 24 hours");
    return PROTO_OK;
}

/* hold.accept: how long an accepted hold lasts when the shelter names no arrival time. */
static int extra_accept(const struct op_ctx *x, struct op_extra *e)
{
    put_num(e, "arrival_ttl", x->cfg->arrival_ttl_ms);
    return 0;
}

/* hold.confirm: the id of the placement it makes. */
static int extra_confirm(const struct op_ctx *x, struct op_extra *e)
{
    (void)x;
    char id[PROTO_ID_LEN + 1];
    if (ops_new_id('p', id) < 0)
        return -1;
    put_str(e, "placement", id);
    return 0;
}

int ops_pack_args(const struct op_ctx *x, const struct op_def *row, msgpack_packer *pk)
{
    struct op_extra e = {0};
    if (row->extra && row->extra(x, &e) < 0)
        return -1;
    uint64_t fields = x->args->present & ~e.drop;
    int rc = msgpack_pack_map(pk, (size_t)__builtin_popcountll(fields) + e.n);
    rc |= proto_pack_fields(pk, x->args, fields);
    for (unsigned i = 0; i < e.n; i++) {
        rc |= proto_pack_cstr(pk, e.kv[i].key);
        rc |= e.kv[i].str ? proto_pack_cstr(pk, e.kv[i].str) : msgpack_pack_int64(pk, e.kv[i].num);
    }
    return rc ? -1 : 0;
}

/* ---- shapes ----------------------------------------------------------------------------- */

static int64_t count_of(const msgpack_object *r, const char *key)
{
    const msgpack_object *o = proto_map_get(r, key);
    return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)o->via.u64 : 0;
}

/*
 * The children placed, per basis of the decision and age band: {"sol": {"0-6": N, "7-12": N,
 * "13-17": N}, "lag_2024_79": {...}, "lvu": {...}}, from the counters children:<basis>:<band>.
 */
static int pack_children_placed(const msgpack_object *r, msgpack_packer *pk)
{
    static const char *const bands[] = {"0-6", "7-12", "13-17"};
    char key[64];
    int rc = proto_pack_cstr(pk, "children");
    rc |= msgpack_pack_map(pk, BASIS__COUNT);
    for (unsigned b = 0; b < BASIS__COUNT; b++) {
        rc |= proto_pack_cstr(pk, proto_basis_name(b));
        rc |= msgpack_pack_map(pk, 3);
        for (unsigned i = 0; i < 3; i++) {
            snprintf(key, sizeof key, "children:%s:%s", proto_basis_name(b), bands[i]);
            rc |= proto_pack_kv_int(pk, bands[i], count_of(r, key));
        }
    }
    return rc;
}

/* stats: the store's follow-up counters, by name, and this daemon's own. */
static int shape_stats(const struct op_ctx *x, const msgpack_object *r,
                       const msgpack_object *snapshot, msgpack_packer *pk)
{
    (void)snapshot;
    static const char *const hold_states[] = {"made",     "accepted", "confirmed",
                                              "declined", "released", "expired"};
    static const unsigned n_states = sizeof hold_states / sizeof hold_states[0];
    static const char *const placement_states[] = {"made", "discharged"};
    static const char *const standing_counts[] = {"made", "matched", "expired_without_match",
                                                  "cancelled_without_match", "wait_ms"};
    char key[64];
    int rc = msgpack_pack_map(pk, 10);

    rc |= proto_pack_kv_int(pk, "searches", count_of(r, "searches"));
    rc |= proto_pack_kv_int(pk, "no_match", count_of(r, "no_match"));
    rc |= proto_pack_cstr(pk, "ruled_out");
    rc |= msgpack_pack_map(pk, REASON__COUNT);
    for (unsigned i = 0; i < REASON__COUNT; i++) {
        snprintf(key, sizeof key, "reason:%s", match_reason_name(i));
        rc |= proto_pack_kv_int(pk, match_reason_name(i), count_of(r, key));
    }
    rc |= proto_pack_cstr(pk, "holds");
    rc |= msgpack_pack_map(pk, n_states);
    for (unsigned i = 0; i < n_states; i++) {
        snprintf(key, sizeof key, "holds:%s", hold_states[i]);
        rc |= proto_pack_kv_int(pk, hold_states[i], count_of(r, key));
    }
    rc |= proto_pack_cstr(pk, "declines");
    rc |= msgpack_pack_map(pk, DECLINE__COUNT);
    for (unsigned i = 0; i < DECLINE__COUNT; i++) {
        snprintf(key, sizeof key, "declines:%s", proto_decline_name(i));
        rc |= proto_pack_kv_int(pk, proto_decline_name(i), count_of(r, key));
    }
    rc |= proto_pack_cstr(pk, "placements");
    rc |= msgpack_pack_map(pk, 2);
    for (unsigned i = 0; i < 2; i++) {
        snprintf(key, sizeof key, "placements:%s", placement_states[i]);
        rc |= proto_pack_kv_int(pk, placement_states[i], count_of(r, key));
    }
    /* Standing searches: how many, how many called back, how long the first call took. */
    rc |= proto_pack_cstr(pk, "standing");
    rc |= msgpack_pack_map(pk, 5);
    for (unsigned i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "standing:%s", standing_counts[i]);
        rc |= proto_pack_kv_int(pk, standing_counts[i], count_of(r, key));
    }
    rc |= pack_children_placed(r, pk);
    rc |= proto_pack_kv_int(pk, "archived", count_of(r, "archived"));
    rc |= proto_pack_cstr(pk, "server");
    rc |= metrics_pack(x->metrics, x->connections, pk, x->mono_ms);
    return rc ? -1 : 0;
}

/* ---- the table -------------------------------------------------------------------------- */

/* clang-format off */
#define R(role)     (1u << ROLE_##role)
#define EVERYONE    (R(SHELTER) | R(SOCIAL) | R(ONCALL) | R(ADMIN))
#define OWN_SHELTER {[ROLE_SHELTER] = SCOPE_OWN_SHELTER}
#define OWN_RECORD  {[ROLE_SHELTER] = SCOPE_OWN_RECORD, [ROLE_SOCIAL] = SCOPE_OWN_RECORD, \
                     [ROLE_ONCALL] = SCOPE_OWN_RECORD}
#define WRITE(fn)   .route = ROUTE_WRITE, .function = (fn)
#define READ(fn)    .route = ROUTE_READ, .function = (fn)
#define INDEX(fn)   .route = ROUTE_INDEX, .answer = (fn)

static const struct op_def table[OP__COUNT] = {
    /* Registry (admin) */
    [OP_SHELTER_ADD] = {WRITE("shelter_add"), .roles = R(ADMIN), .shape = answer_shelter_written},
    [OP_SHELTER_UPDATE] = {WRITE("shelter_update"), .roles = R(ADMIN),
                           .shape = answer_shelter_written},
    [OP_SHELTER_RETIRE] = {WRITE("shelter_retire"), .roles = R(ADMIN),
                           .shape = answer_shelter_written},
    [OP_UNIT_ADD] = {WRITE("unit_add"), .roles = R(ADMIN), .shape = answer_shelter_written},
    [OP_UNIT_UPDATE] = {WRITE("unit_update"), .roles = R(ADMIN), .shape = answer_shelter_written},
    [OP_UNIT_REMOVE] = {WRITE("unit_remove"), .roles = R(ADMIN), .shape = answer_shelter_written},

    /* Vacancies (the shelter itself) */
    [OP_VACANCY_SET] = {WRITE("vacancy_set"), .roles = R(SHELTER), .scope = OWN_SHELTER,
                        .shape = answer_shelter_written},
    [OP_VACANCY_CONFIRM] = {WRITE("vacancy_confirm"), .roles = R(SHELTER), .scope = OWN_SHELTER,
                            .shape = answer_shelter_written},
    [OP_INTAKE_PAUSE] = {WRITE("intake_pause"), .roles = R(SHELTER), .scope = OWN_SHELTER,
                         .shape = answer_shelter_written},
    [OP_INTAKE_RESUME] = {WRITE("intake_resume"), .roles = R(SHELTER), .scope = OWN_SHELTER,
                          .shape = answer_shelter_written},

    /* Listings and search, from the index */
    [OP_SHELTER_SHOW] = {INDEX(answer_shelter_show), .roles = EVERYONE, .scope = OWN_SHELTER},
    [OP_SHELTER_LIST] = {INDEX(answer_shelter_list), .roles = EVERYONE},
    [OP_FREE] = {INDEX(answer_free), .roles = EVERYONE},
    [OP_SEARCH] = {INDEX(answer_search), .roles = R(SOCIAL) | R(ONCALL) | R(ADMIN)},

    /* Holds and placements */
    [OP_HOLD] = {WRITE("hold"), .roles = R(SOCIAL) | R(ONCALL),
                 .scope = {[ROLE_SOCIAL] = SCOPE_OWN_MUNI, [ROLE_ONCALL] = SCOPE_ONCALL_AREA},
                 .check = check_hold, .extra = extra_hold},
    [OP_HOLD_ACCEPT] = {WRITE("hold_accept"), .roles = R(SHELTER),
                        .scope = {[ROLE_SHELTER] = SCOPE_OWN_RECORD}, .check = check_accept,
                        .extra = extra_accept},
    [OP_HOLD_RELEASE] = {WRITE("hold_release"), .roles = R(SOCIAL) | R(ONCALL),
                         .scope = {[ROLE_SOCIAL] = SCOPE_OWN_RECORD,
                                   [ROLE_ONCALL] = SCOPE_OWN_RECORD}},
    [OP_HOLD_CONFIRM] = {WRITE("hold_confirm"), .roles = R(SHELTER),
                         .scope = {[ROLE_SHELTER] = SCOPE_OWN_RECORD}, .extra = extra_confirm},
    [OP_HOLD_DECLINE] = {WRITE("hold_decline"), .roles = R(SHELTER),
                         .scope = {[ROLE_SHELTER] = SCOPE_OWN_RECORD}},
    [OP_PLACEMENT_DISCHARGE] = {WRITE("placement_discharge"), .roles = R(SHELTER),
                                .scope = {[ROLE_SHELTER] = SCOPE_OWN_RECORD}},
    [OP_HOLDS_LIST] = {READ("holds_list"), .roles = R(SHELTER) | R(SOCIAL) | R(ONCALL),
                       .scope = OWN_RECORD},
    [OP_PLACEMENTS_LIST] = {READ("placements_list"), .roles = R(SHELTER) | R(SOCIAL) | R(ONCALL),
                            .scope = OWN_RECORD},

    /* Administration */
    [OP_AUDIT] = {READ("audit"), .roles = R(ADMIN)},
    [OP_STATS] = {READ("stats"), .roles = R(ADMIN), .shape = shape_stats},
    /* Follow-up by month: who sees which area is followup_may_see's (followup.c) */
    [OP_FOLLOWUP] = {READ("followup"), .roles = R(SOCIAL) | R(ONCALL) | R(ADMIN),
                     .check = followup_check, .extra = followup_extra, .shape = followup_shape},
    [OP_DIRECTORY] = {INDEX(answer_directory), .roles = R(ADMIN)},
    [OP_WHOAMI] = {INDEX(answer_whoami), .roles = EVERYONE, .flags = OPF_BEFORE_LOAD},

    /* Real time: events as they happen, and searches that wait for a bed */
    [OP_WATCH] = {.route = ROUTE_STREAM, .roles = EVERYONE},
    [OP_STANDING_ADD] = {WRITE("standing_add"), .roles = R(SOCIAL) | R(ONCALL),
                         .scope = {[ROLE_SOCIAL] = SCOPE_OWN_MUNI,
                                   [ROLE_ONCALL] = SCOPE_ONCALL_AREA},
                         .extra = extra_standing},
    [OP_STANDING_LIST] = {READ("standing_list"), .roles = R(SOCIAL) | R(ONCALL),
                          .scope = {[ROLE_SOCIAL] = SCOPE_OWN_RECORD}},
    [OP_STANDING_CANCEL] = {WRITE("standing_cancel"), .roles = R(SOCIAL) | R(ONCALL),
                            .scope = {[ROLE_SOCIAL] = SCOPE_OWN_RECORD}},
};
/* clang-format on */

const struct op_def *ops_get(enum proto_op op)
{
    return (unsigned)op < OP__COUNT ? &table[op] : NULL;
}
