/* The in-memory index: parsing snapshots and keeping shelters sorted by id. */
#include <stdlib.h>
#include <string.h>

#include "avail.h"
#include "index.h"

void index_init(struct index *ix)
{
    memset(ix, 0, sizeof *ix);
}

void index_shelter_free(struct idx_shelter *s)
{
    if (!s)
        return;
    free(s->units);
    free(s);
}

struct idx_shelter *index_shelter_dup(const struct idx_shelter *s)
{
    struct idx_shelter *d = malloc(sizeof *d);
    if (!d)
        return NULL;
    *d = *s;
    d->units = NULL;
    if (s->n_units > 0) {
        d->units = malloc(s->n_units * sizeof *d->units);
        if (!d->units) {
            free(d);
            return NULL;
        }
        memcpy(d->units, s->units, s->n_units * sizeof *d->units);
    }
    return d;
}

void index_clear(struct index *ix)
{
    for (unsigned i = 0; i < ix->n; i++)
        index_shelter_free(ix->shelters[i]);
    free(ix->shelters);
    avail_free(ix->avail);
    index_init(ix);
}

/*
 * The values of a map's keys in one pass: v[i] is the value of keys[i] (its first occurrence),
 * or NULL. A load parses a million snapshots; looking each key up by itself made it quadratic
 * in the keys of a map.
 */
struct key {
    const char *name;
    uint8_t len;
};
#define KEY(s)                                                                                     \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }

static void collect(const msgpack_object *map, const struct key *keys, unsigned n,
                    const msgpack_object **v)
{
    memset(v, 0, n * sizeof *v);
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            continue;
        for (unsigned j = 0; j < n; j++) {
            if (k->via.str.size == keys[j].len && !v[j] &&
                memcmp(k->via.str.ptr, keys[j].name, keys[j].len) == 0) {
                v[j] = &map->via.map.ptr[i].val;
                break;
            }
        }
    }
}

static bool get_str(const msgpack_object *o, char *dst, size_t cap, bool allow_empty)
{
    if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap ||
        (!allow_empty && o->via.str.size == 0))
        return false;
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    return true;
}

static bool get_int(const msgpack_object *o, int64_t lo, int64_t hi, int64_t *out)
{
    if (!o)
        return false;
    int64_t v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX)
        v = (int64_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        v = o->via.i64;
    else
        return false;
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool get_bool(const msgpack_object *o, bool *out)
{
    if (!o || o->type != MSGPACK_OBJECT_BOOLEAN)
        return false;
    *out = o->via.boolean;
    return true;
}

/* ["women", "hbtqi"] → bit set. */
static bool get_groups(const msgpack_object *o, uint8_t *out)
{
    if (!o || o->type != MSGPACK_OBJECT_ARRAY)
        return false;
    uint8_t bits = 0;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *g = &o->via.array.ptr[i];
        int k =
            g->type == MSGPACK_OBJECT_STR ? proto_group_parse(g->via.str.ptr, g->via.str.size) : -1;
        if (k < 0)
            return false;
        bits |= (uint8_t)(1u << k);
    }
    *out = bits;
    return true;
}

static bool get_languages(const msgpack_object *o, struct idx_shelter *out)
{
    if (!o || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > PROTO_MAX_LANGUAGES)
        return false;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *l = &o->via.array.ptr[i];
        if (l->type != MSGPACK_OBJECT_STR || l->via.str.size < 2 || l->via.str.size > 3)
            return false;
        memcpy(out->languages[i], l->via.str.ptr, l->via.str.size);
        out->languages[i][l->via.str.size] = '\0';
    }
    out->n_languages = (uint8_t)o->via.array.size;
    return true;
}

/* A snapshot's keys, as fristad.lua's snapshot() names them. */
enum s_key {
    S_ID,
    S_NAME,
    S_KIND,
    S_MUN,
    S_PHONE,
    S_PROT,
    S_GROUPS,
    S_LANGS,
    S_MAXCH,
    S_BOYS,
    S_PETS,
    S_SUBST,
    S_PAUSED,
    S_RETIRED,
    S_INTAKE,
    S_UPDATED,
    S_VERSION,
    S_UNITS,
    S_COMPETENCES,
    S_OPERATOR,
    S_PERMIT,
    S_PERMIT_DATE,
    S_REGISTERED,
    S__COUNT
};
/* clang-format off */
static const struct key s_keys[S__COUNT] = {
    [S_ID] = KEY("id"), [S_NAME] = KEY("name"), [S_KIND] = KEY("kind"),
    [S_MUN] = KEY("municipality"), [S_PHONE] = KEY("phone"), [S_PROT] = KEY("protection"),
    [S_GROUPS] = KEY("groups"), [S_LANGS] = KEY("languages"), [S_MAXCH] = KEY("max_children"),
    [S_BOYS] = KEY("boys_max_age"), [S_PETS] = KEY("pets"), [S_SUBST] = KEY("substance"),
    [S_PAUSED] = KEY("paused"), [S_RETIRED] = KEY("retired"), [S_INTAKE] = KEY("intake_hours"),
    [S_UPDATED] = KEY("updated_at"), [S_VERSION] = KEY("version"), [S_UNITS] = KEY("units"),
    [S_COMPETENCES] = KEY("competences"), [S_OPERATOR] = KEY("operator"),
    [S_PERMIT] = KEY("ivo_permit"), [S_PERMIT_DATE] = KEY("ivo_permit_date"),
    [S_REGISTERED] = KEY("ivo_registered"),
};
/* clang-format on */

enum u_key { U_ID, U_BEDS, U_ACCESSIBLE, U_HELD, U_PLACED, U_STATE, U__COUNT };
/* clang-format off */
static const struct key u_keys[U__COUNT] = {
    [U_ID] = KEY("id"), [U_BEDS] = KEY("beds"), [U_ACCESSIBLE] = KEY("accessible"),
    [U_HELD] = KEY("held"), [U_PLACED] = KEY("placed"), [U_STATE] = KEY("state"),
};
/* clang-format on */

/* ["hbv", "deaf"] → bit set; an absent list is none. */
static bool get_competences(const msgpack_object *o, uint8_t *out)
{
    *out = 0;
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return true;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return false;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *c = &o->via.array.ptr[i];
        int k = c->type == MSGPACK_OBJECT_STR
                    ? proto_competence_parse(c->via.str.ptr, c->via.str.size)
                    : -1;
        if (k < 0)
            return false;
        *out |= (uint8_t)(1u << k);
    }
    return true;
}

/* An optional string: absent or nil leaves dst empty; anything but a short string is bad. */
static bool get_optional_str(const msgpack_object *o, char *dst, size_t cap)
{
    dst[0] = '\0';
    return !o || o->type == MSGPACK_OBJECT_NIL || get_str(o, dst, cap, true);
}

/*
 * Competences, operator and IVO permit. A record written before they existed lacks them: it
 * has no competences, an unknown operator, no permit and no registration (match.c says what
 * that means for protected housing). Present but malformed is as bad as any other field.
 */
static int parse_practice(const msgpack_object *const *f, struct idx_shelter *s)
{
    char op[16];
    s->operator_ = IDX_UNKNOWN;
    if (!get_competences(f[S_COMPETENCES], &s->competences) ||
        !get_optional_str(f[S_OPERATOR], op, sizeof op) ||
        !get_optional_str(f[S_PERMIT], s->ivo_permit, sizeof s->ivo_permit) ||
        !get_optional_str(f[S_PERMIT_DATE], s->ivo_permit_date, sizeof s->ivo_permit_date))
        return -1;
    if (op[0]) {
        int k = proto_operator_parse(op, strlen(op));
        if (k < 0)
            return -1;
        s->operator_ = k;
    }
    if (s->ivo_permit_date[0] && !proto_date_valid(s->ivo_permit_date, strlen(s->ivo_permit_date)))
        return -1;
    const msgpack_object *reg = f[S_REGISTERED];
    s->ivo_registered = false;
    if (reg && reg->type != MSGPACK_OBJECT_NIL && !get_bool(reg, &s->ivo_registered))
        return -1;
    return 0;
}

static int unit_cmp(const void *a, const void *b)
{
    return strcmp(((const struct idx_unit *)a)->id, ((const struct idx_unit *)b)->id);
}

int index_parse_snapshot(const msgpack_object *o, struct idx_shelter *s)
{
    char mun[5], kind[32];
    int64_t v;
    const msgpack_object *f[S__COUNT];

    memset(s, 0, sizeof *s);
    if (!o || o->type != MSGPACK_OBJECT_MAP)
        return -1;
    collect(o, s_keys, S__COUNT, f);
    if (!get_str(f[S_ID], s->id, sizeof s->id, false) ||
        !get_str(f[S_NAME], s->name, sizeof s->name, false) ||
        !get_str(f[S_KIND], kind, sizeof kind, false) ||
        !get_str(f[S_MUN], mun, sizeof mun, false) ||
        !get_str(f[S_PHONE], s->phone, sizeof s->phone, false))
        return -1;
    int k = proto_kind_parse(kind, strlen(kind));
    int m = proto_municipality_index(mun, strlen(mun));
    if (k < 0 || m < 0)
        return -1;
    s->kind = (uint8_t)k;
    s->mun = (unsigned)m;
    if (!get_int(f[S_PROT], 1, 3, &v))
        return -1;
    s->protection = (uint8_t)v;
    if (!get_groups(f[S_GROUPS], &s->groups) || !get_languages(f[S_LANGS], s))
        return -1;
    if (!get_int(f[S_MAXCH], -1, 20, &v))
        return -1;
    s->max_children = (int)v;
    if (!get_int(f[S_BOYS], -1, 17, &v))
        return -1;
    s->boys_max_age = (int)v;
    if (!get_bool(f[S_PETS], &s->pets) || !get_bool(f[S_SUBST], &s->substance) ||
        !get_bool(f[S_PAUSED], &s->paused) || !get_bool(f[S_RETIRED], &s->retired))
        return -1;
    /* Records written before shelters had intake hours receive around the clock. */
    const msgpack_object *ih = f[S_INTAKE];
    if (!ih || ih->type == MSGPACK_OBJECT_NIL)
        s->intake.always = true;
    else if (ih->type != MSGPACK_OBJECT_STR ||
             proto_intake_parse(ih->via.str.ptr, ih->via.str.size, &s->intake, NULL) != PROTO_OK)
        return -1;
    if (!get_int(f[S_UPDATED], 0, INT64_MAX, &s->updated_ms) ||
        !get_int(f[S_VERSION], 0, INT64_MAX, &v) || parse_practice(f, s) < 0)
        return -1;
    s->ver = (uint64_t)v;

    const msgpack_object *units = f[S_UNITS];
    if (!units || units->type != MSGPACK_OBJECT_ARRAY)
        return -1;
    if (units->via.array.size > 0) {
        s->units = calloc(units->via.array.size, sizeof *s->units);
        if (!s->units)
            return -1;
    }
    for (uint32_t i = 0; i < units->via.array.size; i++) {
        const msgpack_object *uf[U__COUNT];
        struct idx_unit *d = &s->units[i];
        char state[16];
        collect(&units->via.array.ptr[i], u_keys, U__COUNT, uf);
        if (!get_str(uf[U_ID], d->id, sizeof d->id, false) ||
            !get_int(uf[U_BEDS], 1, PROTO_MAX_BEDS, &v))
            goto bad;
        d->beds = (uint8_t)v;
        if (!get_bool(uf[U_ACCESSIBLE], &d->accessible) || !get_bool(uf[U_HELD], &d->held) ||
            !get_bool(uf[U_PLACED], &d->placed) ||
            !get_str(uf[U_STATE], state, sizeof state, false))
            goto bad;
        int st = proto_vacancy_parse(state, strlen(state));
        if (st < 0)
            goto bad;
        d->state = (uint8_t)st;
    }
    s->n_units = units->via.array.size;
    if (s->n_units > 1)
        qsort(s->units, s->n_units, sizeof *s->units, unit_cmp);
    return 0;
bad:
    free(s->units);
    s->units = NULL;
    return -1;
}

/* Position of `id`, or where it would go. */
static unsigned lower_bound(const struct index *ix, const char *id, bool *found)
{
    unsigned lo = 0, hi = ix->n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        int c = strcmp(ix->shelters[mid]->id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Room for one more shelter pointer. Returns 0 or -1. */
static int grow(struct index *ix)
{
    if (ix->n < ix->cap)
        return 0;
    unsigned cap = ix->cap ? ix->cap * 2 : 64;
    struct idx_shelter **grown = realloc(ix->shelters, cap * sizeof *grown);
    if (!grown)
        return -1;
    ix->shelters = grown;
    ix->cap = cap;
    return 0;
}

int index_put_take(struct index *ix, struct idx_shelter *s)
{
    bool found;
    unsigned pos = lower_bound(ix, s->id, &found);
    if (found && ix->shelters[pos]->ver > s->ver) {
        index_shelter_free(s); /* an older snapshot arrived late */
        return 0;
    }
    /* Everything that can fail first: a failure leaves the index as it was. */
    if ((!ix->avail && !(ix->avail = avail_new())) || (!found && grow(ix) < 0) ||
        avail_reserve(ix->avail, s) < 0) {
        index_shelter_free(s);
        return -1;
    }
    if (found) {
        avail_remove(ix->avail, ix->shelters[pos]);
        index_shelter_free(ix->shelters[pos]);
    } else {
        memmove(ix->shelters + pos + 1, ix->shelters + pos, (ix->n - pos) * sizeof *ix->shelters);
        ix->n++;
    }
    ix->shelters[pos] = s;
    avail_add(ix->avail, s);
    return 0;
}

int index_bulk_add(struct index *ix, struct idx_shelter *s)
{
    if (grow(ix) < 0) {
        index_shelter_free(s);
        return -1;
    }
    ix->shelters[ix->n++] = s;
    ix->unsorted = true;
    return 0;
}

/* By id, then the newest version first. */
static int by_id_newest(const void *pa, const void *pb)
{
    const struct idx_shelter *a = *(const struct idx_shelter *const *)pa;
    const struct idx_shelter *b = *(const struct idx_shelter *const *)pb;
    int c = strcmp(a->id, b->id);
    if (c)
        return c;
    return a->ver > b->ver ? -1 : a->ver < b->ver;
}

int index_bulk_end(struct index *ix)
{
    if (ix->unsorted && ix->n > 1) {
        qsort(ix->shelters, ix->n, sizeof *ix->shelters, by_id_newest);
        unsigned kept = 0;
        for (unsigned i = 0; i < ix->n; i++) {
            if (kept > 0 && strcmp(ix->shelters[kept - 1]->id, ix->shelters[i]->id) == 0)
                index_shelter_free(ix->shelters[i]); /* an older copy of the one kept */
            else
                ix->shelters[kept++] = ix->shelters[i];
        }
        ix->n = kept;
    }
    ix->unsorted = false;
    avail_free(ix->avail);
    if (!(ix->avail = avail_new())) {
        index_clear(ix);
        return -1;
    }
    for (unsigned i = 0; i < ix->n; i++) {
        if (avail_reserve(ix->avail, ix->shelters[i]) < 0) {
            index_clear(ix);
            return -1;
        }
        avail_append(ix->avail, ix->shelters[i]);
    }
    avail_sort(ix->avail);
    return 0;
}

int index_apply(struct index *ix, const msgpack_object *snapshot)
{
    struct idx_shelter *s = malloc(sizeof *s);
    if (!s)
        return -1;
    if (index_parse_snapshot(snapshot, s) < 0) {
        free(s);
        return -1;
    }
    return index_put_take(ix, s);
}

struct idx_shelter *index_take(struct index *ix, const char *id)
{
    bool found;
    unsigned pos = lower_bound(ix, id, &found);
    if (!found)
        return NULL;
    struct idx_shelter *s = ix->shelters[pos];
    avail_remove(ix->avail, s);
    memmove(ix->shelters + pos, ix->shelters + pos + 1, (ix->n - pos - 1) * sizeof *ix->shelters);
    ix->n--;
    return s;
}

int index_replace(struct index *ix, struct index *fresh, uint64_t dump_ver, uint64_t max_event_ver,
                  char (*raced)[PROTO_ID_MAX + 1], unsigned n_raced)
{
    for (unsigned r = 0; r < n_raced; r++) {
        struct idx_shelter *s = index_take(ix, raced[r]);
        if (s && s->ver <= dump_ver)
            index_shelter_free(s);
        else if (s && index_put_take(fresh, s) < 0)
            return -1;
    }
    index_clear(ix);
    fresh->ver = dump_ver > max_event_ver ? dump_ver : max_event_ver;
    fresh->loaded = true;
    *ix = *fresh;
    index_init(fresh);
    return 0;
}

const struct idx_shelter *index_find(const struct index *ix, const char *id)
{
    bool found;
    unsigned pos = lower_bound(ix, id, &found);
    return found ? ix->shelters[pos] : NULL;
}

const struct idx_unit *index_find_unit(const struct idx_shelter *s, const char *unit)
{
    unsigned lo = 0, hi = s->n_units;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        int c = strcmp(s->units[mid].id, unit);
        if (c == 0)
            return &s->units[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
