/*
 * argv to struct proto_request. This interface is what people script against, so its words
 * and options do not change.
 *
 * Options are read with getopt_long in "return in order" mode, so they may stand before or
 * after the subcommand whatever POSIXLY_CORRECT says, and the words in between arrive as
 * positional arguments. Which options a subcommand takes is checked once the subcommand is
 * known.
 *
 * Values go into the fixed-size fields of struct proto_args. A value those fields cannot hold
 * (a 300-character name, --protection 1000, an unknown kind) is packed as it was given and
 * run through the protocol's own decoder, so that the user sees the very message the server
 * would have sent; everything else is left to proto_validate_request.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

enum opt {
    /* global */
    O_JSON,
    O_SERVER,
    O_CERT,
    O_KEY,
    O_CA,
    O_CONFIG,
    O_SERVERNAME,
    O_TIMEOUT,
    O_HELP,
    O_VERSION,
    /* subcommand options */
    O_NAME,
    O_KIND,
    O_MUNICIPALITY,
    O_PROTECTION,
    O_PHONE,
    O_GROUPS,
    O_MAX_CHILDREN,
    O_BOYS_MAX_AGE,
    O_PETS,
    O_NO_PETS,
    O_SUBSTANCE,
    O_NO_SUBSTANCE,
    O_LANGUAGES,
    O_COUNTY,
    O_BEDS,
    O_ACCESSIBLE,
    O_NOT_ACCESSIBLE,
    O_FROM,
    O_RISK,
    O_ADULTS,
    O_CHILD,
    O_GROUP,
    O_WHEELCHAIR,
    O_LANGUAGE,
    O_PERPETRATOR_IN,
    O_EXCLUDE,
    O_LIMIT,
    O_REF,
    O_IDEMPOTENCY_KEY,
    O_FOR,
    O_REASON,
    O_SINCE,
    O_PRINCIPAL,
    O_SHELTER,
    O__COUNT
};

#define O_FIRST_LOCAL O_NAME
#define OPT_VAL_BASE  256 /* getopt values of long options, above every char */

/* Which field of the request an option sets; F__COUNT for the global options. */
struct opt_def {
    const char *name;
    bool has_arg;
    bool repeat; /* may be given more than once; each value is collected */
    enum proto_field field;
};

static const struct opt_def opts[O__COUNT] = {
    [O_JSON] = {"json", false, false, F__COUNT},
    [O_SERVER] = {"server", true, false, F__COUNT},
    [O_CERT] = {"cert", true, false, F__COUNT},
    [O_KEY] = {"key", true, false, F__COUNT},
    [O_CA] = {"ca", true, false, F__COUNT},
    [O_CONFIG] = {"config", true, false, F__COUNT},
    [O_SERVERNAME] = {"servername", true, false, F__COUNT},
    [O_TIMEOUT] = {"timeout", true, false, F__COUNT},
    [O_HELP] = {"help", false, false, F__COUNT},
    [O_VERSION] = {"version", false, false, F__COUNT},
    [O_NAME] = {"name", true, false, F_NAME},
    [O_KIND] = {"kind", true, false, F_KIND},
    [O_MUNICIPALITY] = {"municipality", true, false, F_MUNICIPALITY},
    [O_PROTECTION] = {"protection", true, false, F_PROTECTION},
    [O_PHONE] = {"phone", true, false, F_PHONE},
    [O_GROUPS] = {"groups", true, false, F_GROUPS},
    [O_MAX_CHILDREN] = {"max-children", true, false, F_MAX_CHILDREN},
    [O_BOYS_MAX_AGE] = {"boys-max-age", true, false, F_BOYS_MAX_AGE},
    [O_PETS] = {"pets", false, false, F_PETS},
    [O_NO_PETS] = {"no-pets", false, false, F_PETS},
    [O_SUBSTANCE] = {"substance", false, false, F_SUBSTANCE},
    [O_NO_SUBSTANCE] = {"no-substance", false, false, F_SUBSTANCE},
    [O_LANGUAGES] = {"languages", true, false, F_LANGUAGES},
    [O_COUNTY] = {"county", true, false, F_COUNTY},
    [O_BEDS] = {"beds", true, false, F_BEDS},
    [O_ACCESSIBLE] = {"accessible", false, false, F_ACCESSIBLE},
    [O_NOT_ACCESSIBLE] = {"not-accessible", false, false, F_ACCESSIBLE},
    [O_FROM] = {"from", true, false, F_HOME},
    [O_RISK] = {"risk", true, false, F_RISK},
    [O_ADULTS] = {"adults", true, false, F_ADULTS},
    [O_CHILD] = {"child", true, true, F_CHILDREN},
    [O_GROUP] = {"group", true, false, F_GROUP},
    [O_WHEELCHAIR] = {"wheelchair", false, false, F_WHEELCHAIR},
    [O_LANGUAGE] = {"language", true, false, F_LANGUAGE},
    [O_PERPETRATOR_IN] = {"perpetrator-in", true, true, F_PERPETRATOR},
    [O_EXCLUDE] = {"exclude", true, true, F_EXCLUDE},
    [O_LIMIT] = {"limit", true, false, F_LIMIT},
    [O_REF] = {"ref", true, false, F_REF},
    [O_IDEMPOTENCY_KEY] = {"idempotency-key", true, false, F_IDEMPOTENCY_KEY},
    [O_FOR] = {"for", true, false, F_MUNICIPALITY},
    [O_REASON] = {"reason", true, false, F_REASON},
    [O_SINCE] = {"since", true, false, F_SINCE},
    [O_PRINCIPAL] = {"principal", true, false, F_PRINCIPAL},
    [O_SHELTER] = {"shelter", true, false, F_SHELTER},
};

_Static_assert(O__COUNT <= 64, "a command's options are a 64-bit mask");

#define OB(o) (UINT64_C(1) << (O_##o))
#define SHELTER_OPTS                                                                               \
    (OB(NAME) | OB(KIND) | OB(MUNICIPALITY) | OB(PROTECTION) | OB(PHONE) | OB(GROUPS) |            \
     OB(MAX_CHILDREN) | OB(BOYS_MAX_AGE) | OB(PETS) | OB(SUBSTANCE) | OB(LANGUAGES))
#define AREA_OPTS (OB(COUNTY) | OB(MUNICIPALITY))
#define SEARCH_OPTS                                                                                \
    (OB(FROM) | OB(RISK) | OB(ADULTS) | OB(CHILD) | OB(GROUP) | OB(WHEELCHAIR) | OB(PETS) |        \
     OB(SUBSTANCE) | OB(LANGUAGE) | OB(PERPETRATOR_IN) | OB(EXCLUDE) | OB(LIMIT))

struct command {
    const char *word1;
    const char *word2; /* NULL for one-word commands */
    unsigned nargs;    /* positional arguments after the words */
    enum proto_field args[3];
    enum proto_op op;
    const char *synopsis; /* for messages */
    uint64_t allowed;     /* options, bits of enum opt */
    uint64_t required;
    bool needs_change; /* at least one option */
};

/* One entry per command, laid out by hand: the table is the interface people script against. */
/* clang-format off */
static const struct command commands[] = {
    {"shelter", "add", 1, {F_SHELTER}, OP_SHELTER_ADD,
     "shelter add ID --name NAME --kind KIND --municipality CODE --protection 1|2|3 --phone PHONE",
     SHELTER_OPTS, OB(NAME) | OB(KIND) | OB(MUNICIPALITY) | OB(PROTECTION) | OB(PHONE), false},
    {"shelter", "update", 1, {F_SHELTER}, OP_SHELTER_UPDATE, "shelter update ID OPTION...",
     SHELTER_OPTS | OB(NO_PETS) | OB(NO_SUBSTANCE), 0, true},
    {"shelter", "retire", 1, {F_SHELTER}, OP_SHELTER_RETIRE, "shelter retire ID", 0, 0, false},
    {"shelter", "show", 1, {F_SHELTER}, OP_SHELTER_SHOW, "shelter show ID", 0, 0, false},
    {"shelter", "list", 0, {0}, OP_SHELTER_LIST,
     "shelter list [--county CC] [--municipality CODE]", AREA_OPTS, 0, false},
    {"unit", "add", 2, {F_SHELTER, F_UNIT}, OP_UNIT_ADD,
     "unit add SHELTER UNIT --beds N [--accessible]", OB(BEDS) | OB(ACCESSIBLE), OB(BEDS), false},
    {"unit", "update", 2, {F_SHELTER, F_UNIT}, OP_UNIT_UPDATE,
     "unit update SHELTER UNIT [--beds N] [--accessible|--not-accessible]",
     OB(BEDS) | OB(ACCESSIBLE) | OB(NOT_ACCESSIBLE), 0, true},
    {"unit", "remove", 2, {F_SHELTER, F_UNIT}, OP_UNIT_REMOVE, "unit remove SHELTER UNIT",
     0, 0, false},
    {"vacancy", "confirm", 1, {F_SHELTER}, OP_VACANCY_CONFIRM, "vacancy confirm SHELTER",
     0, 0, false},
    {"vacancy", NULL, 3, {F_SHELTER, F_UNIT, F_STATE}, OP_VACANCY_SET,
     "vacancy SHELTER UNIT free|occupied|closed", 0, 0, false},
    {"intake", "pause", 1, {F_SHELTER}, OP_INTAKE_PAUSE, "intake pause SHELTER", 0, 0, false},
    {"intake", "resume", 1, {F_SHELTER}, OP_INTAKE_RESUME, "intake resume SHELTER", 0, 0, false},
    {"free", NULL, 0, {0}, OP_FREE, "free [--county CC] [--municipality CODE]",
     AREA_OPTS, 0, false},
    {"search", NULL, 0, {0}, OP_SEARCH, "search --from CODE --risk low|moderate|high|severe",
     SEARCH_OPTS, OB(FROM) | OB(RISK), false},
    {"hold", NULL, 2, {F_SHELTER, F_UNIT}, OP_HOLD, "hold SHELTER UNIT --ref REF",
     OB(REF) | OB(IDEMPOTENCY_KEY) | OB(FOR), OB(REF), false},
    {"release", NULL, 1, {F_HOLD}, OP_HOLD_RELEASE, "release HOLD", 0, 0, false},
    {"confirm", NULL, 1, {F_HOLD}, OP_HOLD_CONFIRM, "confirm HOLD", 0, 0, false},
    {"decline", NULL, 1, {F_HOLD}, OP_HOLD_DECLINE, "decline HOLD --reason TEXT",
     OB(REASON), OB(REASON), false},
    {"discharge", NULL, 1, {F_PLACEMENT}, OP_PLACEMENT_DISCHARGE, "discharge PLACEMENT",
     0, 0, false},
    {"holds", NULL, 0, {0}, OP_HOLDS_LIST, "holds", 0, 0, false},
    {"placements", NULL, 0, {0}, OP_PLACEMENTS_LIST, "placements", 0, 0, false},
    {"audit", NULL, 0, {0}, OP_AUDIT,
     "audit [--since TIME] [--principal ROLE:ID] [--shelter ID] [--limit N]",
     OB(SINCE) | OB(PRINCIPAL) | OB(SHELTER) | OB(LIMIT), 0, false},
    {"stats", NULL, 0, {0}, OP_STATS, "stats", 0, 0, false},
    {"whoami", NULL, 0, {0}, OP_WHOAMI, "whoami", 0, 0, false},
};
/* clang-format on */

#define N_COMMANDS (sizeof commands / sizeof commands[0])
#define MAX_POS    8u /* positional words kept; more is always an error */

/* The raw command line, before it becomes a request. */
struct parsed {
    const char *value[O__COUNT];
    bool seen[O__COUNT];
    const char **multi[O__COUNT]; /* every value of a repeatable option */
    unsigned n_multi[O__COUNT];
    const char *pos[MAX_POS];
    unsigned npos;
};

/* A piece of a comma-separated list. */
struct slice {
    const char *p;
    size_t n;
};

struct child_spec {
    uint64_t age;
    char sex;
};

/* A value as given, for the protocol decoder to judge when proto_args cannot hold it. */
struct raw {
    enum { RAW_STR, RAW_LIST, RAW_UINT, RAW_NEG, RAW_CHILDREN } kind;
    const char *s;
    size_t n; /* RAW_STR: length; RAW_LIST, RAW_CHILDREN: elements */
    const struct slice *items;
    const struct child_spec *children;
    uint64_t u;
    int64_t i;
};

/* Building one request: its op, the arguments so far, and where a refusal goes. */
struct builder {
    struct proto_request *req;
    const struct command *cmd;
    struct client_error *err;
};

static int usage(struct client_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage(struct client_error *err, const char *fmt, ...)
{
    char msg[CLIENT_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return client_fail(err, CLIENT_USAGE, "usage", "%s", msg);
}

/* ---- refusals, in the protocol's own words ---------------------------------------------- */

static int pack_raw(msgpack_packer *pk, const struct raw *v)
{
    /* Past the protocol's container limit the decoder would blame the frame, not the field;
     * every field's own limit is lower, so the count is still refused as too many. */
    size_t n = v->n > PROTO_MAX_ITEMS ? PROTO_MAX_ITEMS : v->n;
    int rc = 0;
    switch (v->kind) {
    case RAW_STR:
        return msgpack_pack_str_with_body(pk, v->s, v->n);
    case RAW_UINT:
        return msgpack_pack_uint64(pk, v->u);
    case RAW_NEG:
        return msgpack_pack_int64(pk, v->i);
    case RAW_LIST:
        rc |= msgpack_pack_array(pk, n);
        for (size_t k = 0; k < n; k++)
            rc |= msgpack_pack_str_with_body(pk, v->items[k].p, v->items[k].n);
        return rc;
    case RAW_CHILDREN:
        rc |= msgpack_pack_array(pk, n);
        for (size_t k = 0; k < n; k++) {
            char sex[2] = {v->children[k].sex, '\0'};
            rc |= msgpack_pack_map(pk, 2);
            rc |= proto_pack_cstr(pk, "age");
            rc |= msgpack_pack_uint64(pk, v->children[k].age);
            rc |= proto_pack_kv_str(pk, "sex", sex);
        }
        return rc;
    }
    return -1;
}

/* Refuses a value the request struct cannot hold, with the decoder's message for it. */
static int refuse_raw(struct builder *b, enum proto_field f, const struct raw *v)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct proto_error perr = {0};
    enum proto_err e = PROTO_E_INTERNAL;
    struct proto_request *tmp = malloc(sizeof *tmp);
    bool oom = !tmp;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 3);
    rc |= proto_pack_kv_int(&pk, "id", 0);
    rc |= proto_pack_kv_str(&pk, "op", proto_op_name(b->cmd->op));
    rc |= proto_pack_cstr(&pk, "args");
    rc |= msgpack_pack_map(&pk, 1);
    rc |= proto_pack_cstr(&pk, proto_field_name(f));
    rc |= pack_raw(&pk, v);
    oom |= rc != 0;
    if (!oom) {
        e = proto_decode_request((const uint8_t *)sb.data, sb.size, tmp, &perr);
        /* The field itself decoded: something else was reported, which is not the point. */
        if (e != PROTO_OK && proto_has(&tmp->args, f))
            e = PROTO_OK;
    }
    free(tmp);
    msgpack_sbuffer_destroy(&sb);
    if (oom)
        return client_fail(b->err, CLIENT_FAILED, "internal", "out of memory");
    if (e == PROTO_OK)
        return client_fail(b->err, CLIENT_REFUSED, proto_err_code(PROTO_E_BAD_REQUEST),
                           "field '%s' cannot be sent as given", proto_field_name(f));
    return client_fail(b->err, CLIENT_REFUSED, proto_err_code(e), "%s", perr.message);
}

/* ---- values into proto_args ------------------------------------------------------------- */

#define STR_FIELD(f, m) [f] = {offsetof(struct proto_args, m), sizeof(((struct proto_args *)0)->m)}

static const struct {
    size_t off, cap;
} str_fields[F__COUNT] = {
    STR_FIELD(F_SHELTER, shelter), STR_FIELD(F_UNIT, unit),
    STR_FIELD(F_NAME, name),       STR_FIELD(F_MUNICIPALITY, municipality),
    STR_FIELD(F_PHONE, phone),     STR_FIELD(F_COUNTY, county),
    STR_FIELD(F_HOME, home),       STR_FIELD(F_LANGUAGE, language),
    STR_FIELD(F_REF, ref),         STR_FIELD(F_IDEMPOTENCY_KEY, idempotency_key),
    STR_FIELD(F_HOLD, hold),       STR_FIELD(F_PLACEMENT, placement),
    STR_FIELD(F_REASON, reason),   STR_FIELD(F_PRINCIPAL, principal),
};

static void mark(struct builder *b, enum proto_field f)
{
    b->req->args.present |= PROTO_BIT(f);
}

static int put_str(struct builder *b, enum proto_field f, const char *v)
{
    size_t n = strlen(v);
    size_t cap = str_fields[f].cap;
    if (cap == 0)
        return client_fail(b->err, CLIENT_FAILED, "internal", "field '%s' is not a string",
                           proto_field_name(f));
    if (n >= cap) {
        struct raw r = {.kind = RAW_STR, .s = v, .n = n};
        return refuse_raw(b, f, &r);
    }
    memcpy((char *)&b->req->args + str_fields[f].off, v, n + 1);
    mark(b, f);
    return 0;
}

static int put_enum(struct builder *b, enum proto_field f, const char *v,
                    int (*parse)(const char *, size_t), uint8_t *dst)
{
    int k = parse(v, strlen(v));
    if (k < 0) {
        struct raw r = {.kind = RAW_STR, .s = v, .n = strlen(v)};
        return refuse_raw(b, f, &r);
    }
    *dst = (uint8_t)k;
    mark(b, f);
    return 0;
}

/* The value of n decimal digits; too large for 64 bits saturates, out of every range anyway. */
static uint64_t digits_value(const char *d, size_t n)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned digit = (unsigned)(d[i] - '0');
        x = x > (UINT64_MAX - digit) / 10 ? UINT64_MAX : x * 10 + digit;
    }
    return x;
}

/* Parses a whole number: true when v is one (a negative one sets *neg). */
static bool parse_number(const char *v, uint64_t *out, bool *neg)
{
    *neg = v[0] == '-';
    const char *d = *neg ? v + 1 : v;
    size_t n = strlen(d);
    if (n == 0 || strspn(d, "0123456789") != n)
        return false;
    *out = digits_value(d, n);
    return true;
}

static int put_uint(struct builder *b, enum proto_field f, const char *opt, const char *v)
{
    uint64_t x;
    bool neg;
    if (!parse_number(v, &x, &neg))
        return usage(b->err, "--%s wants a whole number, not '%s'", opt, v);
    uint64_t max = f == F_LIMIT ? UINT16_MAX : UINT8_MAX;
    if (neg || x > max) {
        struct raw r = {.kind = neg ? RAW_NEG : RAW_UINT,
                        .u = x,
                        .i = x > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)x};
        return refuse_raw(b, f, &r);
    }
    struct proto_args *a = &b->req->args;
    switch (f) {
    case F_PROTECTION:
        a->protection = (uint8_t)x;
        break;
    case F_MAX_CHILDREN:
        a->max_children = (uint8_t)x;
        break;
    case F_BOYS_MAX_AGE:
        a->boys_max_age = (uint8_t)x;
        break;
    case F_BEDS:
        a->beds = (uint8_t)x;
        break;
    case F_ADULTS:
        a->adults = (uint8_t)x;
        break;
    case F_LIMIT:
        a->limit = (uint16_t)x;
        break;
    default:
        return client_fail(b->err, CLIENT_FAILED, "internal", "field '%s' is not a number",
                           proto_field_name(f));
    }
    mark(b, f);
    return 0;
}

/* Splits "a,b,c" into slices (none for ""). Returns the count, or -1 when out of memory. */
static long split_list(const char *v, struct slice **out)
{
    size_t n = 1;
    *out = NULL;
    if (!v[0])
        return 0;
    for (const char *p = v; *p; p++)
        n += *p == ',';
    struct slice *s = calloc(n, sizeof *s);
    if (!s)
        return -1;
    size_t k = 0;
    for (const char *p = v;; k++) {
        const char *comma = strchr(p, ',');
        s[k].p = p;
        s[k].n = comma ? (size_t)(comma - p) : strlen(p);
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = s;
    return (long)n;
}

static int put_groups(struct builder *b, const char *v)
{
    struct slice *items;
    long n = split_list(v, &items);
    if (n < 0)
        return client_fail(b->err, CLIENT_FAILED, "internal", "out of memory");
    uint8_t groups = 0;
    bool ok = n >= 1 && n <= GROUP__COUNT;
    for (long k = 0; ok && k < n; k++) {
        int g = proto_group_parse(items[k].p, items[k].n);
        ok = g >= 0 && !(groups & (1u << g));
        if (ok)
            groups |= (uint8_t)(1u << g);
    }
    int rc = 0;
    if (ok) {
        b->req->args.groups = groups;
        mark(b, F_GROUPS);
    } else {
        struct raw r = {.kind = RAW_LIST, .items = items, .n = (size_t)n};
        rc = refuse_raw(b, F_GROUPS, &r);
    }
    free(items);
    return rc;
}

static int put_languages(struct builder *b, const char *v)
{
    struct slice *items;
    long n = split_list(v, &items);
    if (n < 0)
        return client_fail(b->err, CLIENT_FAILED, "internal", "out of memory");
    struct proto_args *a = &b->req->args;
    bool fits = n <= (long)PROTO_MAX_LANGUAGES;
    for (long k = 0; fits && k < n; k++)
        fits = items[k].n < sizeof a->languages[0];
    int rc = 0;
    if (fits) {
        for (long k = 0; k < n; k++) {
            memcpy(a->languages[k], items[k].p, items[k].n);
            a->languages[k][items[k].n] = '\0';
        }
        a->n_languages = (uint8_t)n;
        mark(b, F_LANGUAGES);
    } else {
        struct raw r = {.kind = RAW_LIST, .items = items, .n = (size_t)n};
        rc = refuse_raw(b, F_LANGUAGES, &r);
    }
    free(items);
    return rc;
}

/* Municipality lists: each value may itself be a comma-separated list. */
static int put_munis(struct builder *b, enum proto_field f, const char *const *values,
                     unsigned nvalues)
{
    struct proto_args *a = &b->req->args;
    size_t max = f == F_PERPETRATOR ? PROTO_MAX_PERP : PROTO_MAX_EXCLUDE;
    char(*slots)[5] = f == F_PERPETRATOR ? a->perpetrator : a->exclude;
    size_t total = 0;
    for (unsigned i = 0; i < nvalues; i++)
        total += strlen(values[i]) + 1;
    struct slice *all = calloc(total ? total : 1, sizeof *all);
    if (!all)
        return client_fail(b->err, CLIENT_FAILED, "internal", "out of memory");
    size_t n = 0;
    for (unsigned i = 0; i < nvalues; i++) {
        struct slice *items;
        long k = split_list(values[i], &items);
        if (k < 0) {
            free(all);
            return client_fail(b->err, CLIENT_FAILED, "internal", "out of memory");
        }
        if (k == 0) /* an empty value is kept, for the decoder to name */
            all[n++] = (struct slice){values[i], 0};
        for (long j = 0; j < k; j++)
            all[n++] = items[j];
        free(items);
    }
    bool fits = n <= max;
    for (size_t k = 0; fits && k < n; k++)
        fits = all[k].n < sizeof slots[0];
    int rc = 0;
    if (fits) {
        for (size_t k = 0; k < n; k++) {
            memcpy(slots[k], all[k].p, all[k].n);
            slots[k][all[k].n] = '\0';
        }
        if (f == F_PERPETRATOR)
            a->n_perpetrator = (uint8_t)n;
        else
            a->n_exclude = (uint8_t)n;
        mark(b, f);
    } else {
        struct raw r = {.kind = RAW_LIST, .items = all, .n = n};
        rc = refuse_raw(b, f, &r);
    }
    free(all);
    return rc;
}

/* --child AGE{m|f}: 14m is a boy of 14, 3f a girl of 3. */
static int put_children(struct builder *b, const char *const *values, unsigned n)
{
    struct child_spec *kids = calloc(n ? n : 1, sizeof *kids);
    if (!kids)
        return client_fail(b->err, CLIENT_FAILED, "internal", "out of memory");
    bool fits = n <= PROTO_MAX_CHILDREN;
    for (unsigned i = 0; i < n; i++) {
        const char *v = values[i];
        size_t len = strlen(v), digits = strspn(v, "0123456789");
        char sex = len > 0 ? (char)tolower((unsigned char)v[len - 1]) : '\0';
        if (len < 2 || digits != len - 1 || (sex != 'm' && sex != 'f')) {
            free(kids);
            return usage(b->err,
                         "--child wants an age and m or f, such as 14m (a boy of 14) or 3f (a "
                         "girl of 3), not '%s'",
                         v);
        }
        kids[i].age = digits_value(v, len - 1);
        kids[i].sex = sex;
        fits = fits && kids[i].age <= UINT8_MAX;
    }
    int rc = 0;
    if (fits) {
        struct proto_args *a = &b->req->args;
        for (unsigned i = 0; i < n; i++) {
            a->children[i].age = (uint8_t)kids[i].age;
            a->children[i].sex = kids[i].sex;
        }
        a->n_children = (uint8_t)n;
        mark(b, F_CHILDREN);
    } else {
        struct raw r = {.kind = RAW_CHILDREN, .children = kids, .n = n};
        rc = refuse_raw(b, F_CHILDREN, &r);
    }
    free(kids);
    return rc;
}

/* ---- time ------------------------------------------------------------------------------- */

/* Reads exactly `width` digits at *p. */
static bool take_digits(const char **p, unsigned width, int *out)
{
    int v = 0;
    for (unsigned i = 0; i < width; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += width;
    *out = v;
    return true;
}

static bool take_char(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

/* YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM], UTC unless an offset says otherwise. */
static bool parse_iso(const char *v, int64_t *ms)
{
    const char *p = v;
    int year, mon, day, hour = 0, min = 0, sec = 0, frac_ms = 0, off = 0;
    if (!take_digits(&p, 4, &year) || !take_char(&p, '-') || !take_digits(&p, 2, &mon) ||
        !take_char(&p, '-') || !take_digits(&p, 2, &day))
        return false;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!take_digits(&p, 2, &hour) || !take_char(&p, ':') || !take_digits(&p, 2, &min))
            return false;
        if (take_char(&p, ':')) {
            if (!take_digits(&p, 2, &sec))
                return false;
            if (take_char(&p, '.') || take_char(&p, ',')) {
                int scale = 100, d;
                if (!isdigit((unsigned char)*p))
                    return false;
                while (take_digits(&p, 1, &d)) {
                    frac_ms += d * scale;
                    scale /= 10;
                }
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om = 0;
            p++;
            if (!take_digits(&p, 2, &oh))
                return false;
            if (take_char(&p, ':') || isdigit((unsigned char)*p)) {
                if (!take_digits(&p, 2, &om))
                    return false;
            }
            if (oh > 23 || om > 59)
                return false;
            off = sign * (oh * 3600 + om * 60);
        }
    }
    if (*p != '\0')
        return false;
    if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 ||
        sec > 59)
        return false;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != day) /* timegm normalises 31 April to 1 May */
        return false;
    *ms = ((int64_t)t - off) * 1000 + frac_ms;
    return true;
}

/* TIME of --since: ISO 8601, an age (30m, 2h, 7d), or milliseconds since 1970. */
static bool parse_since(const char *v, int64_t *ms)
{
    size_t len = strlen(v), digits = strspn(v, "0123456789");
    uint64_t x;
    if (len > 0 && digits == len) {
        x = digits_value(v, len);
        if (x > (uint64_t)INT64_MAX)
            return false;
        *ms = (int64_t)x;
        return true;
    }
    if (digits > 0 && digits == len - 1 && strchr("smhdw", v[len - 1])) {
        static const int64_t unit_ms[] = {1000, 60000, 3600000, 86400000, 604800000};
        int64_t unit = unit_ms[strchr("smhdw", v[len - 1]) - "smhdw"];
        x = digits_value(v, digits);
        if (x > (uint64_t)(INT64_MAX / unit))
            return false;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        *ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - (int64_t)x * unit;
        return true;
    }
    return parse_iso(v, ms);
}

/* --timeout SECONDS: a positive number, fractions allowed, at most a day. */
static bool parse_timeout(const char *v, int *ms)
{
    char *end;
    errno = 0;
    double s = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(s) || s <= 0 || s > 86400)
        return false;
    *ms = (int)ceil(s * 1000);
    return true;
}

/* ---- the command line ------------------------------------------------------------------- */

static int scan(int argc, char **argv, struct parsed *p, struct cli *out, struct client_error *err)
{
    struct option longopts[O__COUNT + 1];
    int first_error = 0;

    for (int o = 0; o < O__COUNT; o++) {
        longopts[o] =
            (struct option){opts[o].name, opts[o].has_arg ? required_argument : no_argument, NULL,
                            OPT_VAL_BASE + o};
    }
    longopts[O__COUNT] = (struct option){NULL, 0, NULL, 0};

    opterr = 0;
    optind = 1;
    for (;;) {
        int c = getopt_long(argc, argv, "-:h", longopts, NULL);
        if (c == -1)
            break;
        if (c == 1) {
            if (p->npos < MAX_POS)
                p->pos[p->npos] = optarg;
            p->npos++;
            continue;
        }
        if (c == 'h') {
            out->help = true;
            continue;
        }
        if (c == '?' || c == ':') {
            const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
            if (first_error)
                continue;
            first_error = -1;
            if (c == ':' && optopt >= OPT_VAL_BASE)
                usage(err, "option --%s needs a value", opts[optopt - OPT_VAL_BASE].name);
            else if (optopt >= OPT_VAL_BASE)
                usage(err, "option --%s takes no value", opts[optopt - OPT_VAL_BASE].name);
            else if (optopt > 0)
                usage(err, "unknown option -%c", optopt);
            else
                usage(err, "unknown option %s", arg);
            continue;
        }
        int o = c - OPT_VAL_BASE;
        if (o < 0 || o >= O__COUNT)
            continue;
        if (o == O_JSON)
            out->json = true;
        else if (o == O_HELP)
            out->help = true;
        else if (o == O_VERSION)
            out->version = true;
        if (opts[o].repeat) {
            if (!p->multi[o]) {
                p->multi[o] = calloc((size_t)argc, sizeof *p->multi[o]);
                if (!p->multi[o]) {
                    client_fail(err, CLIENT_FAILED, "internal", "out of memory");
                    return -1;
                }
            }
            p->multi[o][p->n_multi[o]++] = optarg;
        } else if (opts[o].has_arg && p->seen[o] && !first_error) {
            first_error = usage(err, "option --%s is given more than once", opts[o].name);
        }
        p->seen[o] = true;
        p->value[o] = optarg;
    }
    for (int i = optind; i < argc; i++) { /* after "--" */
        if (p->npos < MAX_POS)
            p->pos[p->npos] = argv[i];
        p->npos++;
    }
    return first_error;
}

static bool word_is(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* "shelter add" or "holds", for messages. */
static const char *cmd_name(const struct command *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s%s", c->word1, c->word2 ? " " : "", c->word2 ? c->word2 : "");
    return buf;
}

static const struct command *find_command(const struct parsed *p, struct client_error *err)
{
    const struct command *exact = NULL, *near = NULL;
    unsigned exact_words = 0, near_words = 0;

    for (size_t i = 0; i < N_COMMANDS; i++) {
        const struct command *c = &commands[i];
        unsigned words = c->word2 ? 2 : 1;
        if (p->npos < words || !word_is(p->pos[0], c->word1) ||
            (c->word2 && !word_is(p->pos[1], c->word2)))
            continue;
        if (p->npos - words == c->nargs && words > exact_words) {
            exact = c;
            exact_words = words;
        } else if (words > near_words) {
            near = c;
            near_words = words;
        }
    }
    if (exact)
        return exact;
    if (near) {
        char name[32];
        usage(err, "%s for '%s': fristad %s",
              p->npos - near_words < near->nargs ? "missing arguments" : "too many arguments",
              cmd_name(near, name, sizeof name), near->synopsis);
        return NULL;
    }
    char choices[160] = "";
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (word_is(p->pos[0], commands[i].word1) && commands[i].word2)
            snprintf(choices + strlen(choices), sizeof choices - strlen(choices), "%s%s",
                     choices[0] ? ", " : "", commands[i].word2);
    }
    if (choices[0])
        usage(err, "'%s' needs one of: %s", p->pos[0], choices);
    else
        usage(err, "unknown command '%s'", p->pos[0]);
    return NULL;
}

static int check_options(const struct parsed *p, const struct command *c, struct client_error *err)
{
    char name[32];
    bool any = false;
    cmd_name(c, name, sizeof name);
    for (int o = O_FIRST_LOCAL; o < O__COUNT; o++) {
        if (!p->seen[o])
            continue;
        if (!(c->allowed & (UINT64_C(1) << o)))
            return usage(err, "option --%s does not apply to '%s'", opts[o].name, name);
        any = true;
    }
    for (int o = O_FIRST_LOCAL; o < O__COUNT; o++) {
        if ((c->required & (UINT64_C(1) << o)) && !p->seen[o])
            return usage(err, "'%s' needs --%s: fristad %s", name, opts[o].name, c->synopsis);
    }
    if (c->needs_change && !any)
        return usage(err, "'%s' needs at least one option to change: fristad %s", name,
                     c->synopsis);
    static const int pairs[][2] = {
        {O_PETS, O_NO_PETS}, {O_SUBSTANCE, O_NO_SUBSTANCE}, {O_ACCESSIBLE, O_NOT_ACCESSIBLE}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        if (p->seen[pairs[i][0]] && p->seen[pairs[i][1]])
            return usage(err, "--%s and --%s contradict each other", opts[pairs[i][0]].name,
                         opts[pairs[i][1]].name);
    }
    return 0;
}

static int set_option(struct builder *b, const struct parsed *p, int o)
{
    struct proto_args *a = &b->req->args;
    enum proto_field f = opts[o].field;
    const char *v = p->value[o];

    switch (o) {
    case O_PETS:
    case O_NO_PETS:
        a->pets = o == O_PETS;
        break;
    case O_SUBSTANCE:
    case O_NO_SUBSTANCE:
        a->substance = o == O_SUBSTANCE;
        break;
    case O_ACCESSIBLE:
    case O_NOT_ACCESSIBLE:
        a->accessible = o == O_ACCESSIBLE;
        break;
    case O_WHEELCHAIR:
        a->wheelchair = true;
        break;
    case O_KIND:
        return put_enum(b, f, v, proto_kind_parse, &a->kind);
    case O_RISK:
        return put_enum(b, f, v, proto_risk_parse, &a->risk);
    case O_GROUP:
        return put_enum(b, f, v, proto_group_parse, &a->group);
    case O_GROUPS:
        return put_groups(b, v);
    case O_LANGUAGES:
        return put_languages(b, v);
    case O_PROTECTION:
    case O_MAX_CHILDREN:
    case O_BOYS_MAX_AGE:
    case O_BEDS:
    case O_ADULTS:
    case O_LIMIT:
        return put_uint(b, f, opts[o].name, v);
    case O_CHILD:
        return put_children(b, p->multi[o], p->n_multi[o]);
    case O_PERPETRATOR_IN:
    case O_EXCLUDE:
        return put_munis(b, f, p->multi[o], p->n_multi[o]);
    case O_SINCE:
        if (!parse_since(v, &a->since))
            return usage(b->err,
                         "--since wants a date (2026-11-22), a UTC date and time "
                         "(2026-11-22T10:00:00Z), an age (30m, 2h, 7d) or milliseconds since "
                         "1970, not '%s'",
                         v);
        break;
    default:
        return put_str(b, f, v);
    }
    mark(b, f);
    return 0;
}

static int build(const struct parsed *p, const struct command *c, struct proto_request *req,
                 struct client_error *err)
{
    struct builder b = {.req = req, .cmd = c, .err = err};
    unsigned words = c->word2 ? 2 : 1;

    memset(req, 0, sizeof *req);
    req->op = c->op;
    req->has_id = true;
    for (unsigned i = 0; i < c->nargs; i++) {
        const char *v = p->pos[words + i];
        enum proto_field f = c->args[i];
        int rc = f == F_STATE ? put_enum(&b, f, v, proto_vacancy_parse, &req->args.state)
                              : put_str(&b, f, v);
        if (rc != 0)
            return rc;
    }
    for (int o = O_FIRST_LOCAL; o < O__COUNT; o++) {
        if (p->seen[o] && set_option(&b, p, o) != 0)
            return -1;
    }
    return 0;
}

int cli_parse(int argc, char **argv, struct cli *out, struct client_error *err)
{
    struct parsed p = {0};
    int rc;

    memset(out, 0, sizeof *out);
    rc = scan(argc, argv, &p, out, err);
    if (rc == 0 && !out->help && !out->version) {
        out->flags = (struct settings_flags){
            .server = p.value[O_SERVER],
            .cert = p.value[O_CERT],
            .key = p.value[O_KEY],
            .ca = p.value[O_CA],
            .servername = p.value[O_SERVERNAME],
            .config = p.value[O_CONFIG],
        };
        if (p.seen[O_TIMEOUT] && !parse_timeout(p.value[O_TIMEOUT], &out->flags.timeout_ms)) {
            rc = usage(err, "--timeout wants a number of seconds, not '%s'", p.value[O_TIMEOUT]);
        } else if (p.npos == 0) {
            rc = usage(err, "no command given");
        } else if (word_is(p.pos[0], "help")) {
            out->help = true;
        } else {
            const struct command *c = find_command(&p, err);
            rc = -1;
            if (c && check_options(&p, c, err) == 0)
                rc = build(&p, c, &out->req, err);
        }
    }
    for (int o = 0; o < O__COUNT; o++)
        free(p.multi[o]);
    return rc;
}

void cli_usage(FILE *out)
{
    fputs("Usage: fristad [OPTION]... COMMAND [ARGUMENT]... [OPTION]...\n"
          "\n"
          "Shelter bed availability and referrals: each command sends one request to fristadd.\n"
          "\n"
          "Registry (admin):\n"
          "  shelter add ID --name NAME --kind KIND --municipality CODE --protection 1|2|3\n"
          "      --phone PHONE [--groups women,men,hbtqi,youth] [--max-children N]\n"
          "      [--boys-max-age N] [--pets] [--substance] [--languages sv,en,ar]\n"
          "      KIND is kvinnojour, skyddat_boende, kriscentrum or other.\n"
          "  shelter update ID OPTION...   the options of shelter add, and --no-pets,\n"
          "      --no-substance\n"
          "  shelter retire ID\n"
          "  unit add SHELTER UNIT --beds N [--accessible]\n"
          "  unit update SHELTER UNIT [--beds N] [--accessible|--not-accessible]\n"
          "  unit remove SHELTER UNIT\n"
          "\n"
          "Vacancies (shelter staff):\n"
          "  vacancy SHELTER UNIT free|occupied|closed\n"
          "  vacancy confirm SHELTER       the vacancies are unchanged and current\n"
          "  intake pause|resume SHELTER\n"
          "  confirm HOLD                  the household has arrived: a placement\n"
          "  decline HOLD --reason TEXT\n"
          "  discharge PLACEMENT\n"
          "\n"
          "Listings (everyone):\n"
          "  shelter list [--county CC] [--municipality CODE]\n"
          "  shelter show ID\n"
          "  free [--county CC] [--municipality CODE]\n"
          "\n"
          "Referrals (social services):\n"
          "  search --from CODE --risk low|moderate|high|severe [--adults N]\n"
          "      [--child AGE{m|f}]... [--group women|men|hbtqi|youth] [--wheelchair] [--pets]\n"
          "      [--substance] [--language LANG] [--perpetrator-in CODE]... [--exclude CODE]...\n"
          "      [--limit N]\n"
          "      --child 14m is a boy of 14, --child 3f a girl of 3; give one per child.\n"
          "  hold SHELTER UNIT --ref REF [--idempotency-key KEY] [--for CODE]\n"
          "  release HOLD\n"
          "  holds\n"
          "  placements\n"
          "\n"
          "Administration:\n"
          "  audit [--since TIME] [--principal ROLE:ID] [--shelter ID] [--limit N]\n"
          "      TIME is 2026-11-22, 2026-11-22T10:00:00Z, an age such as 30m, 2h or 7d, or\n"
          "      milliseconds since 1970.\n"
          "  stats\n"
          "  whoami\n"
          "  help\n"
          "\n"
          "Options:\n"
          "  --json               print exactly one JSON document: the result, or\n"
          "                       {\"error\": {\"code\": ..., \"message\": ...}}\n"
          "  --server HOST:PORT   the fristadd server (port 7420 if left out)\n"
          "  --cert FILE          client certificate (PEM)\n"
          "  --key FILE           its private key (PEM, without a passphrase)\n"
          "  --ca FILE            CA certificate(s) the server's certificate must chain to\n"
          "  --servername NAME    name to check in the server's certificate (default: HOST)\n"
          "  --config FILE        config file to read settings from\n"
          "  --timeout SECONDS    give up after this long (default 15)\n"
          "  --help, --version\n"
          "\n"
          "Settings are taken from the flags, else the environment (FRISTAD_SERVER,\n"
          "FRISTAD_CERT, FRISTAD_KEY, FRISTAD_CA), else the [client] section (server, cert, key,\n"
          "ca, servername) of the config file: --config FILE, else $FRISTAD_CONFIG, else\n"
          "$XDG_CONFIG_HOME/fristad/client.conf (~/.config/fristad/client.conf). Relative paths\n"
          "in the file are relative to its directory.\n"
          "\n"
          "Exit status: 0 success; 1 refused with an error code (by the server or by local\n"
          "validation); 2 usage error; 3 connection, TLS, timeout or protocol failure.\n",
          out);
}
