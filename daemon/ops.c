/*
 * The op table (ops.h): one row per op, and the few functions the rows name that are not
 * answers from the index (answers.c): what the daemon adds to a store call, and how a store
 * result becomes a reply.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "answers.h"
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
 * A new hold or placement id: the prefix and 16 hex digits from the kernel's random source.
 * The store refuses an id that exists already, so a collision fails one request, never two.
 */
static int new_id(char prefix, char out[18])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[8];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return -1;
    out[0] = prefix;
    for (unsigned i = 0; i < 8; i++) {
        out[1 + 2 * i] = hex[raw[i] >> 4];
        out[2 + 2 * i] = hex[raw[i] & 15];
    }
    out[17] = '\0';
    return 0;
}

/*
 * hold: the responsible municipality (social services hold for their own; on-call names the
 * municipality it acts for, if any), a new id and the hold time.
 */
static int extra_hold(const struct op_ctx *x, struct op_extra *e)
{
    char id[18];
    if (new_id('h', id) < 0)
        return -1;
    e->drop = PROTO_BIT(F_MUNICIPALITY);
    if (x->who->role == ROLE_SOCIAL)
        put_str(e, "municipality", x->who->id);
    else if (proto_has(x->args, F_MUNICIPALITY))
        put_str(e, "municipality", x->args->municipality);
    put_str(e, "hold", id);
    put_num(e, "ttl", x->cfg->hold_ttl_ms);
    return 0;
}

/* hold.confirm: the id of the placement it makes. */
static int extra_confirm(const struct op_ctx *x, struct op_extra *e)
{
    (void)x;
    char id[18];
    if (new_id('p', id) < 0)
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

/* stats: the store's follow-up counters, by name, and this daemon's own. */
static int shape_stats(const struct op_ctx *x, const msgpack_object *r,
                       const msgpack_object *snapshot, msgpack_packer *pk)
{
    (void)snapshot;
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
    rc |= metrics_pack(x->metrics, x->connections, pk, x->mono_ms);
    return rc ? -1 : 0;
}

/* ---- the table -------------------------------------------------------------------------- */

#define R(role)  (1u << ROLE_##role)
#define EVERYONE (R(SHELTER) | R(SOCIAL) | R(ONCALL) | R(ADMIN))
#define OWN_SHELTER                                                                                \
    {                                                                                              \
        [ROLE_SHELTER] = SCOPE_OWN_SHELTER                                                         \
    }
#define OWN_RECORD                                                                                 \
    {                                                                                              \
        [ROLE_SHELTER] = SCOPE_OWN_RECORD, [ROLE_SOCIAL] = SCOPE_OWN_RECORD                        \
    }

/* clang-format off */
static const struct op_def table[OP__COUNT] = {
    /* Registry (admin) */
    [OP_SHELTER_ADD] = {ROUTE_WRITE, R(ADMIN), {0}, 0, "shelter_add", NULL, NULL,
                        answer_shelter_written},
    [OP_SHELTER_UPDATE] = {ROUTE_WRITE, R(ADMIN), {0}, 0, "shelter_update", NULL, NULL,
                           answer_shelter_written},
    [OP_SHELTER_RETIRE] = {ROUTE_WRITE, R(ADMIN), {0}, 0, "shelter_retire", NULL, NULL,
                           answer_shelter_written},
    [OP_UNIT_ADD] = {ROUTE_WRITE, R(ADMIN), {0}, 0, "unit_add", NULL, NULL,
                     answer_shelter_written},
    [OP_UNIT_UPDATE] = {ROUTE_WRITE, R(ADMIN), {0}, 0, "unit_update", NULL, NULL,
                        answer_shelter_written},
    [OP_UNIT_REMOVE] = {ROUTE_WRITE, R(ADMIN), {0}, 0, "unit_remove", NULL, NULL,
                        answer_shelter_written},
    /* Vacancies (the shelter itself) */
    [OP_VACANCY_SET] = {ROUTE_WRITE, R(SHELTER), OWN_SHELTER, 0, "vacancy_set", NULL, NULL,
                        answer_shelter_written},
    [OP_VACANCY_CONFIRM] = {ROUTE_WRITE, R(SHELTER), OWN_SHELTER, 0, "vacancy_confirm", NULL,
                            NULL, answer_shelter_written},
    [OP_INTAKE_PAUSE] = {ROUTE_WRITE, R(SHELTER), OWN_SHELTER, 0, "intake_pause", NULL, NULL,
                         answer_shelter_written},
    [OP_INTAKE_RESUME] = {ROUTE_WRITE, R(SHELTER), OWN_SHELTER, 0, "intake_resume", NULL, NULL,
                          answer_shelter_written},
    /* Listings and search, from the index */
    [OP_SHELTER_SHOW] = {ROUTE_INDEX, EVERYONE, {0}, 0, NULL, answer_shelter_show, NULL, NULL},
    [OP_SHELTER_LIST] = {ROUTE_INDEX, EVERYONE, {0}, 0, NULL, answer_shelter_list, NULL, NULL},
    [OP_FREE] = {ROUTE_INDEX, EVERYONE, {0}, 0, NULL, answer_free, NULL, NULL},
    [OP_SEARCH] = {ROUTE_INDEX, R(SOCIAL) | R(ONCALL) | R(ADMIN), {0}, 0, NULL, answer_search,
                   NULL, NULL},
    /* Holds and placements */
    [OP_HOLD] = {ROUTE_WRITE, R(SOCIAL) | R(ONCALL), {[ROLE_SOCIAL] = SCOPE_OWN_MUNI}, 0, "hold",
                 NULL, extra_hold, NULL},
    [OP_HOLD_RELEASE] = {ROUTE_WRITE, R(SOCIAL) | R(ONCALL), {[ROLE_SOCIAL] = SCOPE_OWN_RECORD},
                         0, "hold_release", NULL, NULL, NULL},
    [OP_HOLD_CONFIRM] = {ROUTE_WRITE, R(SHELTER), {[ROLE_SHELTER] = SCOPE_OWN_RECORD}, 0,
                         "hold_confirm", NULL, extra_confirm, NULL},
    [OP_HOLD_DECLINE] = {ROUTE_WRITE, R(SHELTER), {[ROLE_SHELTER] = SCOPE_OWN_RECORD}, 0,
                         "hold_decline", NULL, NULL, NULL},
    [OP_PLACEMENT_DISCHARGE] = {ROUTE_WRITE, R(SHELTER), {[ROLE_SHELTER] = SCOPE_OWN_RECORD}, 0,
                                "placement_discharge", NULL, NULL, NULL},
    [OP_HOLDS_LIST] = {ROUTE_READ, R(SHELTER) | R(SOCIAL) | R(ONCALL), OWN_RECORD, 0,
                       "holds_list", NULL, NULL, NULL},
    [OP_PLACEMENTS_LIST] = {ROUTE_READ, R(SHELTER) | R(SOCIAL) | R(ONCALL), OWN_RECORD, 0,
                            "placements_list", NULL, NULL, NULL},
    /* Administration */
    [OP_AUDIT] = {ROUTE_READ, R(ADMIN), {0}, 0, "audit", NULL, NULL, NULL},
    [OP_STATS] = {ROUTE_READ, R(ADMIN), {0}, 0, "stats", NULL, NULL, shape_stats},
    [OP_WHOAMI] = {ROUTE_INDEX, EVERYONE, {0}, OPF_BEFORE_LOAD, NULL, answer_whoami, NULL, NULL},
};
/* clang-format on */

const struct op_def *ops_get(enum proto_op op)
{
    return (unsigned)op < OP__COUNT ? &table[op] : NULL;
}
