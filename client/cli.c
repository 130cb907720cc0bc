/*
 * argv to struct proto_request. This interface is what people script against, so its words
 * and options do not change; they, and which command takes which, are the tables of
 * commands.c.
 *
 * Options are read with getopt_long in "return in order" mode, so they may stand before or
 * after the subcommand whatever POSIXLY_CORRECT says, and the words in between arrive as
 * positional arguments. Which options a subcommand takes is checked once the subcommand is
 * known.
 *
 * Values go into the fixed-size fields of struct proto_args. A value those fields cannot hold
 * (a 300-character name, --protection 1000, an unknown kind) is packed as it was given and
 * run through the protocol's own decoder, so that the user gets the very rule the server
 * applies; everything else is left to proto_validate_request (cli_validate). Either way the
 * message names the option or argument the person typed, never the wire field, and a value
 * the rules refuse is a usage error (exit 2).
 *
 * Municipalities and counties are taken by name or code (places.h) and sent as codes; a time
 * without an offset is local time (times.h).
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
#include "places.h"
#include "times.h"

#define OPT_VAL_BASE 256 /* getopt values of long options, above every char */
#define MAX_POS      8u  /* positional words kept; more is always an error */

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
    const struct cli_command *cmd;
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

/*
 * What the person typed for field f in command c: "--from", or "SHELTER" for an argument;
 * the wire name when neither (a bug in the tables, which unit.cli catches).
 */
static void typed_name(const struct cli_command *c, enum proto_field f, char *buf, size_t cap)
{
    const struct cli_option *opts = cli_options();
    for (int o = O_FIRST_LOCAL; c && o < O__COUNT; o++) {
        if (opts[o].field == f && !opts[o].negative && (c->allowed & CLI_OPT_BIT(o))) {
            snprintf(buf, cap, "--%s", opts[o].name);
            return;
        }
    }
    for (unsigned i = 0; c && i < c->nargs; i++) {
        if (c->args[i].field == f) {
            snprintf(buf, cap, "%s", c->args[i].metavar);
            return;
        }
    }
    snprintf(buf, cap, "'%s'", proto_field_name(f));
}

/* The protocol's message with each field it names ("field 'home'", "'children'") as typed. */
static void name_typed(const struct cli_command *c, const char *msg, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (const char *p = msg; *p && o + 1 < cap;) {
        bool field_word = strncmp(p, "field '", 7) == 0;
        const char *q = field_word ? p + 6 : p;
        if (*q == '\'') {
            const char *end = strchr(q + 1, '\'');
            for (int f = 0; end && f < F__COUNT; f++) {
                const char *name = proto_field_name((enum proto_field)f);
                if ((size_t)(end - q - 1) == strlen(name) &&
                    strncmp(q + 1, name, strlen(name)) == 0) {
                    char typed[64];
                    typed_name(c, (enum proto_field)f, typed, sizeof typed);
                    o += (size_t)snprintf(out + o, cap - o, "%s", typed);
                    p = end + 1;
                    goto next;
                }
            }
        }
        out[o++] = *p++;
        out[o] = '\0';
    next:
        if (o >= cap)
            o = cap - 1;
    }
}

/*
 * Refuses a value by the protocol's rules: a usage error naming what the person typed; a
 * value that looks like personal data keeps its own code (exit 1), as the server would say it.
 */
static int refuse(const struct cli_command *c, enum proto_err e, const char *message,
                  struct client_error *err)
{
    char msg[CLIENT_MESSAGE_MAX];
    name_typed(c, message, msg, sizeof msg);
    if (e == PROTO_E_PERSONAL_DATA)
        return client_fail(err, CLIENT_REFUSED, proto_err_code(e), "%s", msg);
    return client_fail(err, CLIENT_USAGE, "usage", "%s", msg);
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
        snprintf(perr.message, sizeof perr.message, "field '%s' cannot be sent as given",
                 proto_field_name(f));
    return refuse(b->cmd, e == PROTO_OK ? PROTO_E_BAD_REQUEST : e, perr.message, b->err);
}

/* ---- values into proto_args ------------------------------------------------------------- */

#define STR_FIELD(f, m) [f] = {offsetof(struct proto_args, m), sizeof(((struct proto_args *)0)->m)}

static const struct {
    size_t off, cap;
} str_fields[F__COUNT] = {
    STR_FIELD(F_SHELTER, shelter),
    STR_FIELD(F_UNIT, unit),
    STR_FIELD(F_NAME, name),
    STR_FIELD(F_MUNICIPALITY, municipality),
    STR_FIELD(F_PHONE, phone),
    STR_FIELD(F_COUNTY, county),
    STR_FIELD(F_HOME, home),
    STR_FIELD(F_LANGUAGE, language),
    STR_FIELD(F_REF, ref),
    STR_FIELD(F_IDEMPOTENCY_KEY, idempotency_key),
    STR_FIELD(F_HOLD, hold),
    STR_FIELD(F_PLACEMENT, placement),
    STR_FIELD(F_NOTE, note),
    STR_FIELD(F_PRINCIPAL, principal),
    STR_FIELD(F_CALLBACK, callback),
    STR_FIELD(F_INTAKE_HOURS, intake_hours),
    STR_FIELD(F_IVO_PERMIT, ivo_permit),
    STR_FIELD(F_IVO_PERMIT_DATE, ivo_permit_date),
    STR_FIELD(F_STANDING, standing),
    STR_FIELD(F_FROM_MONTH, from_month),
    STR_FIELD(F_TO_MONTH, to_month),
    STR_FIELD(F_PERSON, person),
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
    case F_HOURS:
        a->hours = (uint8_t)x;
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

/*
 * A municipality given by name or code, as its code; a usage error naming the option when
 * it names none or more than one.
 */
static int municipality_code(struct builder *b, const char *opt, const char *v, char code[5])
{
    char why[CLIENT_MESSAGE_MAX - 64];
    int i = places_municipality(v, why, sizeof why);
    if (i < 0)
        return usage(b->err, "--%s: %s", opt, why);
    memcpy(code, places_municipalities[i].code, 5);
    return 0;
}

/* Municipality lists: each value may itself be a comma-separated list of names or codes. */
static int put_munis(struct builder *b, enum proto_field f, const char *opt,
                     const char *const *values, unsigned nvalues)
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
    char(*codes)[5] = calloc(n ? n : 1, sizeof *codes);
    if (!codes) {
        free(all);
        return client_fail(b->err, CLIENT_FAILED, "internal", "out of memory");
    }
    for (size_t k = 0; fits && k < n; k++) {
        char item[CLIENT_MESSAGE_MAX];
        snprintf(item, sizeof item, "%.*s", (int)all[k].n, all[k].p);
        if (municipality_code(b, opt, item, codes[k]) != 0) {
            free(codes);
            free(all);
            return -1;
        }
    }
    int rc = 0;
    if (fits) {
        for (size_t k = 0; k < n; k++)
            memcpy(slots[k], codes[k], sizeof codes[k]);
        if (f == F_PERPETRATOR)
            a->n_perpetrator = (uint8_t)n;
        else
            a->n_exclude = (uint8_t)n;
        mark(b, f);
    } else {
        struct raw r = {.kind = RAW_LIST, .items = all, .n = n};
        rc = refuse_raw(b, f, &r);
    }
    free(codes);
    free(all);
    return rc;
}

/* --type T, repeatable, each value possibly "a,b": the event types a watch wants. */
static int put_types(struct builder *b, const char *const *values, unsigned nvalues)
{
    uint16_t types = 0;
    for (unsigned i = 0; i < nvalues; i++) {
        struct slice *items;
        long k = split_list(values[i], &items);
        if (k < 0)
            return client_fail(b->err, CLIENT_FAILED, "internal", "out of memory");
        for (long j = 0; j < k; j++) {
            int t = proto_event_parse(items[j].p, items[j].n);
            if (t < 0) {
                free(items);
                return usage(b->err,
                             "--type wants an event type (held, accepted, declined, released, "
                             "expired, escalated, confirmed, discharged, vacancy, paused, "
                             "resumed, match, standing), not '%s'",
                             values[i]);
            }
            types |= (uint16_t)(1u << t);
        }
        free(items);
    }
    b->req->args.types = types;
    mark(b, F_TYPES);
    return 0;
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

/*
 * --competences LIST (one value) and --need (repeated, each value perhaps a list): the names
 * as one list, kept as a set of bits; an unknown or repeated one goes to the decoder to name.
 */
static int put_competences(struct builder *b, enum proto_field f, const char *const *values,
                           unsigned nvalues)
{
    size_t total = 0;
    for (unsigned i = 0; i < nvalues; i++)
        total += strlen(values[i]) + 1;
    struct slice *all = calloc(total ? total : 1, sizeof *all);
    if (!all)
        return client_fail(b->err, CLIENT_FAILED, "internal", "out of memory");
    size_t n = 0;
    bool ok = true;
    uint8_t bits = 0;
    for (unsigned i = 0; i < nvalues; i++) {
        struct slice *items;
        long k = split_list(values[i], &items);
        if (k < 0) {
            free(all);
            return client_fail(b->err, CLIENT_FAILED, "internal", "out of memory");
        }
        if (k == 0 && f == F_NEED) /* an empty --need is kept, for the decoder to name */
            all[n++] = (struct slice){values[i], 0};
        for (long j = 0; j < k; j++)
            all[n++] = items[j];
        free(items);
    }
    for (size_t k = 0; ok && k < n; k++) {
        int c = proto_competence_parse(all[k].p, all[k].n);
        ok = c >= 0 && !(bits & (1u << c));
        if (ok)
            bits |= (uint8_t)(1u << c);
    }
    int rc = 0;
    if (ok) {
        *(f == F_NEED ? &b->req->args.need : &b->req->args.competences) = bits;
        mark(b, f);
    } else {
        struct raw r = {.kind = RAW_LIST, .items = all, .n = n};
        rc = refuse_raw(b, f, &r);
    }
    free(all);
    return rc;
}

/* --child-basis, once per child in the referral's order. */
static int put_bases(struct builder *b, const char *const *values, unsigned n)
{
    struct slice *all = calloc(n ? n : 1, sizeof *all);
    if (!all)
        return client_fail(b->err, CLIENT_FAILED, "internal", "out of memory");
    struct proto_args *a = &b->req->args;
    bool ok = n <= PROTO_MAX_CHILDREN;
    for (unsigned i = 0; i < n; i++) {
        all[i] = (struct slice){values[i], strlen(values[i])};
        int basis = proto_basis_parse(all[i].p, all[i].n);
        ok = ok && basis >= 0;
        if (ok)
            a->child_basis[i] = (uint8_t)basis;
    }
    int rc = 0;
    if (ok) {
        a->n_child_basis = (uint8_t)n;
        mark(b, F_CHILD_BASIS);
    } else {
        struct raw r = {.kind = RAW_LIST, .items = all, .n = n};
        rc = refuse_raw(b, F_CHILD_BASIS, &r);
    }
    free(all);
    return rc;
}

/* The options of Swedish practice: competences and needs, operator and permit, bases. */
static int set_practice(struct builder *b, const struct parsed *p, int o)
{
    struct proto_args *a = &b->req->args;
    const char *v = p->value[o];
    switch (o) {
    case O_COMPETENCES:
        return put_competences(b, F_COMPETENCES, &v, 1);
    case O_NEED:
        return put_competences(b, F_NEED, p->multi[o], p->n_multi[o]);
    case O_OPERATOR:
        return put_enum(b, F_OPERATOR, v, proto_operator_parse, &a->operator_);
    case O_IVO_PERMIT:
        return put_str(b, F_IVO_PERMIT, v);
    case O_NO_IVO_PERMIT:
        if (p->seen[O_IVO_PERMIT] || p->seen[O_IVO_PERMIT_DATE])
            return usage(b->err, "--no-ivo-permit contradicts --ivo-permit and --ivo-permit-date");
        a->ivo_permit[0] = '\0';
        mark(b, F_IVO_PERMIT);
        return 0;
    case O_IVO_PERMIT_DATE:
        return put_str(b, F_IVO_PERMIT_DATE, v);
    case O_IVO_REGISTERED:
    case O_NO_IVO_REGISTERED:
        a->ivo_registered = o == O_IVO_REGISTERED;
        mark(b, F_IVO_REGISTERED);
        return 0;
    case O_CHILD_BASIS:
        return put_bases(b, p->multi[o], p->n_multi[o]);
    default:
        return client_fail(b->err, CLIENT_FAILED, "internal", "option without a field");
    }
}

/* ---- time ------------------------------------------------------------------------------- */

/*
 * TIME of --arrival-by and --arrival-at, a moment ahead: "+90m" or "+2h" from now, "HH:MM" the
 * next time the local clock shows it (today, or else tomorrow), or a date and time as --since
 * takes it (times_parse). False with `why` set (maybe empty) when it is none of these.
 */
static bool parse_when(const char *v, int64_t *ms, char *why, size_t cap)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    size_t len = strlen(v);
    why[0] = '\0';
    if (len >= 3 && v[0] == '+' && strspn(v + 1, "0123456789") == len - 2 &&
        (v[len - 1] == 'm' || v[len - 1] == 'h')) {
        uint64_t x = digits_value(v + 1, len - 2);
        if (x > 100000)
            return false;
        *ms = now_ms + (int64_t)x * (v[len - 1] == 'h' ? 3600000 : 60000);
        return true;
    }
    if (len == 5 && v[2] == ':' && strspn(v, "0123456789") == 2 &&
        strspn(v + 3, "0123456789") == 2) {
        int hour = (v[0] - '0') * 10 + (v[1] - '0'), min = (v[3] - '0') * 10 + (v[4] - '0');
        if (hour > 23 || min > 59)
            return false;
        time_t t = (time_t)now.tv_sec;
        struct tm tm;
        localtime_r(&t, &tm);
        for (int day = 0; day < 2; day++) {
            struct tm at = tm;
            at.tm_mday += day;
            at.tm_hour = hour;
            at.tm_min = min;
            at.tm_sec = 0;
            at.tm_isdst = -1;
            *ms = (int64_t)mktime(&at) * 1000;
            if (*ms > now_ms)
                return true;
        }
        return false;
    }
    return times_parse(v, now_ms, ms, why, cap);
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
    const struct cli_option *opts = cli_options();
    struct option longopts[O__COUNT + 1];
    int first_error = 0;

    for (int o = 0; o < O__COUNT; o++) {
        longopts[o] =
            (struct option){opts[o].name, opts[o].metavar ? required_argument : no_argument, NULL,
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
        else if (o == O_CSV)
            out->csv = true;
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
        } else if (opts[o].metavar && p->seen[o] && !first_error) {
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

/* ---- did you mean ----------------------------------------------------------------------- */

#define NEAR_MAX_LEN 32u /* longer words are not compared: no command word is near them */

/* The fewest edits (insert, delete, replace, swap two neighbours) that turn a into b. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    size_t d[NEAR_MAX_LEN + 1][NEAR_MAX_LEN + 1];
    if (n > NEAR_MAX_LEN || m > NEAR_MAX_LEN)
        return SIZE_MAX;
    for (size_t i = 0; i <= n; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            size_t v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[n][m];
}

/* The command words nearest to a mistyped one: "'search'", or "'hold' or 'holds'". */
struct near {
    size_t best; /* edits of the nearest so far */
    char text[120];
};

/*
 * Considers `word` for what was typed, and names it as `shown`. A word is near when a third of
 * its letters (at least one) or fewer need changing: "serch" is near "search", "x" near nothing.
 */
static void consider(struct near *nr, const char *typed, const char *word, const char *shown)
{
    size_t d = edit_distance(typed, word), len = strlen(word);
    size_t limit = len / 3 > 1 ? len / 3 : 1;
    char quoted[48];
    snprintf(quoted, sizeof quoted, "'%s'", shown);
    if (d == 0 || d > limit || d > nr->best || strstr(nr->text, quoted))
        return;
    if (d < nr->best) {
        nr->best = d;
        nr->text[0] = '\0';
    }
    size_t used = strlen(nr->text);
    if (used + strlen(quoted) + 4 < sizeof nr->text) /* a tie too many is left out, not cut */
        snprintf(nr->text + used, sizeof nr->text - used, "%s%s", used ? " or " : "", quoted);
}

/* "; did you mean 'search'?", or "" when nothing is near. */
static const char *did_you_mean(char *buf, size_t cap, const struct near *nr)
{
    buf[0] = '\0';
    if (nr->text[0])
        snprintf(buf, cap, "; did you mean %s?", nr->text);
    return buf;
}

/* Two-word commands that start with first and whose second word is near `second`. */
static void near_second(struct near *nr, const char *first, const char *second)
{
    size_t n;
    const struct cli_command *commands = cli_commands(&n);
    char name[32];
    for (size_t i = 0; i < n; i++) {
        if (commands[i].word2 && word_is(first, commands[i].word1))
            consider(nr, second, commands[i].word2,
                     cli_command_name(&commands[i], name, sizeof name));
    }
}

/* The two-word command `first second`, or NULL. */
static const struct cli_command *two_words(const char *first, const char *second)
{
    size_t n;
    const struct cli_command *commands = cli_commands(&n);
    for (size_t i = 0; i < n; i++) {
        if (commands[i].word2 && word_is(first, commands[i].word1) &&
            word_is(second, commands[i].word2))
            return &commands[i];
    }
    return NULL;
}

/* Refuses an unknown first word, naming the commands near it. */
static int unknown_command(struct client_error *err, const char *first, const char *second)
{
    size_t n;
    const struct cli_command *commands = cli_commands(&n);
    struct near nr = {.best = SIZE_MAX};
    char name[32], suffix[sizeof nr.text + 24];
    consider(&nr, first, "help", "help");
    for (size_t i = 0; i < n; i++) {
        /* "shelte add" is near "shelter add"; "shelte" alone near "shelter". */
        const struct cli_command *whole = two_words(commands[i].word1, second);
        consider(&nr, first, commands[i].word1,
                 whole ? cli_command_name(whole, name, sizeof name) : commands[i].word1);
    }
    return usage(err, "unknown command '%s'%s", first, did_you_mean(suffix, sizeof suffix, &nr));
}

/* ---- commands --------------------------------------------------------------------------- */

static const struct cli_command *find_command(const struct parsed *p, struct client_error *err)
{
    size_t n;
    const struct cli_command *commands = cli_commands(&n);
    const struct cli_command *exact = NULL, *near = NULL;
    unsigned exact_words = 0, near_words = 0;
    const char *second = p->npos > 1 ? p->pos[1] : NULL;
    struct near nr = {.best = SIZE_MAX};
    char suffix[sizeof nr.text + 24];

    for (size_t i = 0; i < n; i++) {
        const struct cli_command *c = &commands[i];
        unsigned words = c->word2 ? 2 : 1;
        if (p->npos < words || !word_is(p->pos[0], c->word1) ||
            (c->word2 && !word_is(p->pos[1], c->word2)))
            continue;
        if ((p->npos - words == c->nargs || (c->recall && p->npos - words == 1)) &&
            words > exact_words) {
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
        char name[32], syn[CLIENT_MESSAGE_MAX];
        if (near_words == 1 && second) /* "vacancy confrim frida" */
            near_second(&nr, p->pos[0], second);
        usage(err, "%s for '%s': fristad %s%s",
              p->npos - near_words < near->nargs ? "missing arguments" : "too many arguments",
              cli_command_name(near, name, sizeof name), cli_synopsis(near, syn, sizeof syn),
              did_you_mean(suffix, sizeof suffix, &nr));
        return NULL;
    }
    char choices[160] = "";
    for (size_t i = 0; i < n; i++) {
        if (word_is(p->pos[0], commands[i].word1) && commands[i].word2)
            snprintf(choices + strlen(choices), sizeof choices - strlen(choices), "%s%s",
                     choices[0] ? ", " : "", commands[i].word2);
    }
    if (!choices[0]) {
        unknown_command(err, p->pos[0], second);
        return NULL;
    }
    if (second)
        near_second(&nr, p->pos[0], second);
    usage(err, "'%s' needs one of: %s%s", p->pos[0], choices,
          did_you_mean(suffix, sizeof suffix, &nr));
    return NULL;
}

/*
 * The commands that `help WORDS` or `WORDS --help` asks about, a bit per command of the table:
 * the one the words name, or when they name none every command that starts with the first.
 * 0 when the first word starts none.
 */
static uint64_t help_topics(const char *const *words, unsigned nwords)
{
    size_t n;
    const struct cli_command *commands = cli_commands(&n);
    uint64_t named = 0, one_word = 0, all = 0;
    for (size_t i = 0; i < n; i++) {
        const struct cli_command *c = &commands[i];
        uint64_t bit = UINT64_C(1) << i;
        if (!word_is(words[0], c->word1))
            continue;
        all |= bit;
        if (c->word2 && nwords > 1 && word_is(words[1], c->word2))
            named |= bit;
        if (!c->word2)
            one_word |= bit;
    }
    if (named)
        return named;
    if (nwords > 1 && one_word) /* "hold frida r1 --help": the words after it are arguments */
        return one_word;
    return all;
}

/* Sets out->topics from the words of the command line; a word that is no command is an error. */
static int help_request(const struct parsed *p, struct cli *out, struct client_error *err)
{
    unsigned first = 0, npos = p->npos < MAX_POS ? p->npos : MAX_POS;
    while (first < npos && word_is(p->pos[first], "help"))
        first++;
    if (first == npos)
        return 0;
    out->topics = help_topics(p->pos + first, npos - first);
    if (out->topics)
        return 0;
    out->help = false;
    return unknown_command(err, p->pos[first], first + 1 < npos ? p->pos[first + 1] : NULL);
}

/*
 * An option name that two options share means the one the command takes (cli_option): what
 * getopt gave to the first moves to the other.
 */
static void resolve_shared_names(struct parsed *p, const struct cli_command *c)
{
    const struct cli_option *opts = cli_options();
    for (int o = O_FIRST_LOCAL; o < O__COUNT; o++) {
        if (!(c->allowed & CLI_OPT_BIT(o)))
            continue;
        for (int e = O_FIRST_LOCAL; e < o; e++) {
            if (p->seen[e] && !(c->allowed & CLI_OPT_BIT(e)) &&
                strcmp(opts[e].name, opts[o].name) == 0) {
                p->seen[o] = true;
                p->value[o] = p->value[e];
                p->seen[e] = false;
                p->value[e] = NULL;
            }
        }
    }
}

/* "stats" with an option of the follow-up is "followup". */
static bool wants_followup(const struct parsed *p)
{
    return p->npos == 1 && word_is(p->pos[0], "stats") &&
           (p->seen[O_MUNICIPALITY] || p->seen[O_COUNTY] || p->seen[O_FROM] ||
            p->seen[O_FROM_MONTH] || p->seen[O_TO_MONTH] || p->seen[O_CSV]);
}

/* True for "hold N": one argument where the command takes its shelter and unit otherwise. */
static bool recalls(const struct parsed *p, const struct cli_command *c)
{
    return c->recall && p->npos - (c->word2 ? 2u : 1u) == 1;
}

static int check_options(const struct parsed *p, const struct cli_command *c,
                         struct client_error *err)
{
    const struct cli_option *opts = cli_options();
    char name[32], syn[CLIENT_MESSAGE_MAX];
    bool any = false;
    /* A recalled search brings the referral: its options are not given again. */
    cli_optmask allowed = recalls(p, c) ? c->allowed & ~CLI_REFERRAL_OPTS : c->allowed;
    cli_optmask required = recalls(p, c) ? c->required & ~CLI_REFERRAL_OPTS : c->required;
    cli_command_name(c, name, sizeof name);
    for (int o = O_FIRST_LOCAL; o < O__COUNT; o++) {
        if (!p->seen[o])
            continue;
        if (!(allowed & CLI_OPT_BIT(o)))
            return usage(err, "option --%s does not apply to '%s'%s", opts[o].name, name,
                         recalls(p, c) ? " with a result number: the referral is the search's"
                                       : "");
        any = true;
    }
    for (int o = O_FIRST_LOCAL; o < O__COUNT; o++) {
        if ((required & CLI_OPT_BIT(o)) && !p->seen[o])
            return usage(err, "'%s' needs --%s: fristad %s", name, opts[o].name,
                         cli_synopsis(c, syn, sizeof syn));
    }
    if (c->needs_change && !any)
        return usage(err, "'%s' needs at least one option to change: fristad %s", name,
                     cli_synopsis(c, syn, sizeof syn));
    for (int o = O_FIRST_LOCAL + 1; o < O__COUNT; o++) {
        if (opts[o].negative && p->seen[o - 1] && p->seen[o])
            return usage(err, "--%s and --%s contradict each other", opts[o - 1].name,
                         opts[o].name);
    }
    return 0;
}

static int set_option(struct builder *b, const struct parsed *p, int o)
{
    const struct cli_option *opt = &cli_options()[o];
    struct proto_args *a = &b->req->args;
    enum proto_field f = opt->field;
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
        return put_uint(b, f, opt->name, v);
    case O_CHILD:
        return put_children(b, p->multi[o], p->n_multi[o]);
    case O_HOURS:
        return put_uint(b, f, opt->name, v);
    case O_TYPE:
        return put_types(b, p->multi[o], p->n_multi[o]);
    case O_PERPETRATOR_IN:
    case O_EXCLUDE:
        return put_munis(b, f, opt->name, p->multi[o], p->n_multi[o]);
    case O_MUNICIPALITY:
    case O_FOR:
    case O_FROM: {
        char code[5];
        if (municipality_code(b, opt->name, v, code) != 0)
            return -1;
        return put_str(b, f, code);
    }
    case O_COUNTY: {
        char why[CLIENT_MESSAGE_MAX - 64];
        int i = places_county(v, why, sizeof why);
        if (i < 0)
            return usage(b->err, "--%s: %s", opt->name, why);
        return put_str(b, f, places_counties[i].code);
    }
    case O_REASON:
        return put_enum(b, f, v, proto_decline_parse, &a->reason);
    case O_COMPETENCES:
    case O_NEED:
    case O_OPERATOR:
    case O_IVO_PERMIT:
    case O_NO_IVO_PERMIT:
    case O_IVO_PERMIT_DATE:
    case O_IVO_REGISTERED:
    case O_NO_IVO_REGISTERED:
    case O_CHILD_BASIS:
        return set_practice(b, p, o);
    case O_FROM_MONTH:
    case O_TO_MONTH:
        if (proto_month_parse(v, strlen(v)) < 0)
            return usage(b->err, "--%s wants a month written YYYY-MM, such as 2026-03, not '%s'",
                         opt->name, v);
        return put_str(b, f, v);
    case O_ARRIVAL_BY:
    case O_ARRIVAL_AT: {
        char why[CLIENT_MESSAGE_MAX - 64];
        if (parse_when(v, o == O_ARRIVAL_BY ? &a->arrival_by : &a->arrival_at, why, sizeof why))
            break;
        if (why[0])
            return usage(b->err, "--%s %s", opt->name, why);
        return usage(b->err,
                     "--%s wants a time ahead: HH:MM (the next time the clock shows it), +90m "
                     "or +2h from now, or a local date and time (2026-11-27T08:00), not '%s'",
                     opt->name, v);
    }
    case O_SINCE: {
        char why[CLIENT_MESSAGE_MAX - 64];
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        size_t len = strlen(v), digits = strspn(v, "0123456789");
        if (digits > 0 && digits <= 18 && digits + 1 < len && v[digits] == '-' &&
            strspn(v + digits + 1, "0123456789") == len - digits - 1 && len - digits - 1 <= 19) {
            /* The sequence of an event or audit entry: after that one. */
            a->since = (int64_t)digits_value(v, digits);
            a->since_seq = digits_value(v + digits + 1, len - digits - 1);
            a->since_is_seq = true;
            break;
        }
        if (times_parse(v, now_ms, &a->since, why, sizeof why))
            break;
        if (why[0])
            return usage(b->err, "--since %s", why);
        return usage(b->err,
                     "--since wants a local date (2026-11-22), a local date and time "
                     "(2026-11-22T10:00), one with an offset (2026-11-22T10:00:00Z, "
                     "2026-11-22T10:00+01:00), an age (30m, 2h, 7d), milliseconds since 1970 "
                     "or an event's sequence (1764158400000-3), not '%s'",
                     v);
    }
    default:
        return put_str(b, f, v);
    }
    mark(b, f);
    return 0;
}

static int build(const struct parsed *p, const struct cli_command *c, struct cli *out,
                 struct client_error *err)
{
    struct proto_request *req = &out->req;
    struct builder b = {.req = req, .cmd = c, .err = err};
    unsigned words = c->word2 ? 2 : 1;

    memset(req, 0, sizeof *req);
    req->op = c->op;
    req->has_id = true;
    if (c->op == CLI_LOCAL)
        return 0; /* answered by the client; its arguments stay in argv */
    if (recalls(p, c)) {
        const char *v = p->pos[words];
        uint64_t n;
        bool neg;
        if (!parse_number(v, &n, &neg) || neg || n < 1 || n > PROTO_MAX_LIMIT)
            return usage(err,
                         "'%s N' wants the number of a result of your last search, not "
                         "'%s'",
                         c->word1, v);
        out->recall = (unsigned)n;
    }
    for (unsigned i = 0; i < c->nargs && !out->recall; i++) {
        const char *v = p->pos[words + i];
        enum proto_field f = c->args[i].field;
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
            .p12 = p.value[O_P12],
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
            rc = help_request(&p, out, err);
        } else if (p.seen[O_STANDING] && !word_is(p.pos[0], "search") &&
                   !(word_is(p.pos[0], "standing") && p.npos > 1 && word_is(p.pos[1], "add"))) {
            rc = usage(err, "--standing goes with search: fristad search ... --standing --ref REF");
        } else {
            if (p.seen[O_STANDING] && word_is(p.pos[0], "search") && p.npos < MAX_POS) {
                /* "search ... --standing" registers the search: it is "standing add". */
                memmove(p.pos + 2, p.pos + 1, (MAX_POS - 2) * sizeof p.pos[0]);
                p.pos[0] = "standing";
                p.pos[1] = "add";
                p.npos++;
            }
            if (wants_followup(&p))
                p.pos[0] = "followup";
            const struct cli_command *c = find_command(&p, err);
            rc = -1;
            out->cmd = c;
            if (c)
                resolve_shared_names(&p, c);
            if (c && out->csv && c->op != OP_FOLLOWUP)
                usage(err,
                      "--csv goes with the follow-up: fristad followup --csv [--municipality ...]");
            else if (c && out->csv && out->json)
                usage(err, "--csv and --json contradict each other: choose one");
            else if (c && check_options(&p, c, err) == 0)
                rc = build(&p, c, out, err);
            for (unsigned i = 0; rc == 0 && i < c->nargs && i < CLI_MAX_ARGS; i++)
                out->args[i] = p.pos[(c->word2 ? 2 : 1) + i];
        }
    } else if (rc == 0 && out->help) {
        rc = help_request(&p, out, err);
    }
    for (int o = 0; o < O__COUNT; o++)
        free(p.multi[o]);
    return rc;
}

int cli_validate(const struct cli *cli, struct client_error *err)
{
    struct proto_error perr = {0};
    const struct proto_args *a = &cli->req.args;
    if (proto_has(a, F_COUNTY) && proto_has(a, F_MUNICIPALITY) &&
        strncmp(a->county, a->municipality, 2) != 0) {
        char m[128], c[128];
        return client_fail(err, CLIENT_USAGE, "usage", "--municipality %s is not in --county %s",
                           places_municipality_label(a->municipality, m, sizeof m),
                           places_county_label(a->county, c, sizeof c));
    }
    /* The start of an id is looked up before sending: checked here as some whole id. */
    enum proto_field f = cli_id_prefix(cli);
    struct proto_request *req = malloc(sizeof *req);
    if (!req)
        return client_fail(err, CLIENT_FAILED, "internal", "out of memory");
    *req = cli->req;
    if (f != F__COUNT) {
        char *id = f == F_HOLD ? req->args.hold : req->args.placement;
        id[0] = f == F_HOLD ? 'h' : 'p';
        memset(id + 1, 'b', PROTO_ID_LEN - 1);
        id[PROTO_ID_LEN] = '\0';
    }
    enum proto_err e = proto_validate_request(req, &perr);
    free(req);
    if (e == PROTO_OK)
        return 0;
    return refuse(cli->cmd, perr.code, perr.message, err);
}

static const char id_chars[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/*
 * The start of an id of kind f, with or without its letter: fewer than the whole id's
 * characters, of those an id is made of, and not digits alone (no id is, and a personal
 * identity number typed in the wrong place must not be sent looking for one).
 */
static bool id_start(enum proto_field f, const char *id)
{
    size_t n = strlen(id);
    size_t skip = id[0] == (f == F_HOLD ? 'h' : 'p');
    return n >= 1 && n < PROTO_ID_LEN && strspn(id, id_chars) == n &&
           (skip || strspn(id, "0123456789") < n);
}

enum proto_field cli_id_prefix(const struct cli *cli)
{
    const struct proto_args *a = &cli->req.args;
    if (proto_has(a, F_HOLD) && id_start(F_HOLD, a->hold))
        return F_HOLD;
    if (proto_has(a, F_PLACEMENT) && id_start(F_PLACEMENT, a->placement))
        return F_PLACEMENT;
    return F__COUNT;
}
