/*
 * Requests: the op and field tables, and the decoder that turns one frame body into a fully
 * validated struct proto_request. Nothing past this file sees an unchecked value.
 *
 * Error messages name the field and the rule, never the value: a value may be exactly the
 * personal data the check exists to keep out of logs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_internal.h"

enum ftype {
    T_ID,        /* shelter or unit id */
    T_TOKEN,     /* opaque token: hold, placement, referral, idempotency key */
    T_TEXT,      /* free text in UTF-8 */
    T_KIND,      /* enum proto_kind */
    T_STATE,     /* enum proto_vacancy */
    T_RISK,      /* enum proto_risk */
    T_GROUP,     /* enum proto_group */
    T_GROUPS,    /* array of enum proto_group */
    T_MUNI,      /* municipality code */
    T_MUNI_LIST, /* array of municipality codes */
    T_COUNTY,    /* county code */
    T_UINT,      /* unsigned integer in [min, max] */
    T_BOOL,
    T_PHONE,
    T_LANG,        /* ISO 639 language code */
    T_LANGS,       /* array of language codes */
    T_CHILDREN,    /* array of {age, sex} */
    T_TIME,        /* milliseconds since the epoch */
    T_PRINCIPAL,   /* "role:id" */
    T_PERSON,      /* who holds a certificate: an HSA-id or "sha256:" and a fingerprint */
    T_SERVER_ID,   /* a hold or placement id, as the server issues them */
    T_DECLINE,     /* enum proto_decline */
    T_INTAKE,      /* intake hours */
    T_EVENTS,      /* array of enum proto_event */
    T_COMPETENCES, /* array of enum proto_competence */
    T_OPERATOR,    /* enum proto_operator */
    T_PERMIT,      /* an IVO permit's id, or "" for none */
    T_DATE,        /* a calendar date YYYY-MM-DD */
    T_BASES,       /* array of enum proto_basis */
    T_MONTH,       /* "YYYY-MM" */
};

struct field_def {
    const char *name;
    enum ftype type;
    unsigned min, max; /* value range, text length in characters, or list length; for a
                          server id, min is its prefix */
};

static const struct field_def fields[F__COUNT] = {
    [F_SHELTER] = {"shelter", T_ID, 1, PROTO_ID_MAX},
    [F_UNIT] = {"unit", T_ID, 1, PROTO_ID_MAX},
    [F_NAME] = {"name", T_TEXT, 1, PROTO_NAME_MAX},
    [F_KIND] = {"kind", T_KIND, 0, 0},
    [F_MUNICIPALITY] = {"municipality", T_MUNI, 0, 0},
    [F_PROTECTION] = {"protection", T_UINT, 1, 3},
    [F_PHONE] = {"phone", T_PHONE, 0, 0},
    [F_GROUPS] = {"groups", T_GROUPS, 1, GROUP__COUNT},
    [F_MAX_CHILDREN] = {"max_children", T_UINT, 0, 20},
    [F_BOYS_MAX_AGE] = {"boys_max_age", T_UINT, 0, 17},
    [F_PETS] = {"pets", T_BOOL, 0, 0},
    [F_SUBSTANCE] = {"substance", T_BOOL, 0, 0},
    [F_LANGUAGES] = {"languages", T_LANGS, 0, PROTO_MAX_LANGUAGES},
    [F_BEDS] = {"beds", T_UINT, 1, PROTO_MAX_BEDS},
    [F_ACCESSIBLE] = {"accessible", T_BOOL, 0, 0},
    [F_STATE] = {"state", T_STATE, 0, 0},
    [F_COUNTY] = {"county", T_COUNTY, 0, 0},
    [F_HOME] = {"home", T_MUNI, 0, 0},
    [F_RISK] = {"risk", T_RISK, 0, 0},
    [F_ADULTS] = {"adults", T_UINT, 1, PROTO_MAX_ADULTS},
    [F_CHILDREN] = {"children", T_CHILDREN, 0, PROTO_MAX_CHILDREN},
    [F_GROUP] = {"group", T_GROUP, 0, 0},
    [F_WHEELCHAIR] = {"wheelchair", T_BOOL, 0, 0},
    [F_LANGUAGE] = {"language", T_LANG, 0, 0},
    [F_PERPETRATOR] = {"perpetrator", T_MUNI_LIST, 0, PROTO_MAX_PERP},
    [F_EXCLUDE] = {"exclude", T_MUNI_LIST, 0, PROTO_MAX_EXCLUDE},
    [F_LIMIT] = {"limit", T_UINT, 1, PROTO_MAX_LIMIT},
    [F_REF] = {"ref", T_TOKEN, 1, PROTO_TOKEN_MAX},
    [F_IDEMPOTENCY_KEY] = {"idempotency_key", T_TOKEN, 8, PROTO_TOKEN_MAX},
    [F_HOLD] = {"hold", T_SERVER_ID, 'h', 0},
    [F_PLACEMENT] = {"placement", T_SERVER_ID, 'p', 0},
    [F_REASON] = {"reason", T_DECLINE, 0, 0},
    [F_SINCE] = {"since", T_TIME, 0, 0},
    [F_PRINCIPAL] = {"principal", T_PRINCIPAL, 0, 0},
    [F_PERSON] = {"person", T_PERSON, 1, PROTO_PERSON_MAX},
    [F_AFTER] = {"after", T_ID, 1, PROTO_ID_MAX},
    [F_CALLBACK] = {"callback", T_PHONE, 0, 0},
    [F_NOTE] = {"note", T_TEXT, 1, PROTO_REASON_MAX},
    [F_ARRIVAL_BY] = {"arrival_by", T_TIME, 0, 0},
    [F_ARRIVAL_AT] = {"arrival_at", T_TIME, 0, 0},
    [F_INTAKE_HOURS] = {"intake_hours", T_INTAKE, 1, PROTO_INTAKE_MAX},
    [F_TYPES] = {"types", T_EVENTS, 1, EV__COUNT},
    [F_HOURS] = {"hours", T_UINT, 1, 72},
    [F_STANDING] = {"standing", T_SERVER_ID, 's', 0},
    [F_COMPETENCES] = {"competences", T_COMPETENCES, 0, COMP__COUNT},
    [F_NEED] = {"need", T_COMPETENCES, 0, COMP__COUNT},
    [F_OPERATOR] = {"operator", T_OPERATOR, 0, 0},
    [F_IVO_PERMIT] = {"ivo_permit", T_PERMIT, 0, PROTO_PERMIT_MAX},
    [F_IVO_PERMIT_DATE] = {"ivo_permit_date", T_DATE, 0, 0},
    [F_IVO_REGISTERED] = {"ivo_registered", T_BOOL, 0, 0},
    [F_CHILD_BASIS] = {"child_basis", T_BASES, 0, PROTO_MAX_CHILDREN},
    [F_FROM_MONTH] = {"from_month", T_MONTH, 0, 0},
    [F_TO_MONTH] = {"to_month", T_MONTH, 0, 0},
};

const char *proto_field_name(enum proto_field f)
{
    return (unsigned)f < F__COUNT ? fields[f].name : "?";
}

struct op_def {
    const char *name;
    uint64_t required;
    uint64_t optional;
    bool writes;
};

static const struct op_def ops[OP__COUNT] = {
#define OP_ROW(e, name, required, optional, writes) [OP_##e] = {name, required, optional, writes},
    PROTO_OPS(OP_ROW)
#undef OP_ROW
};

const char *proto_op_name(enum proto_op op)
{
    return (unsigned)op < OP__COUNT ? ops[op].name : "?";
}

int proto_op_parse(const char *s, size_t n)
{
    for (unsigned i = 0; i < OP__COUNT; i++) {
        if (proto_str_eq(s, n, ops[i].name))
            return (int)i;
    }
    return -1;
}

bool proto_op_writes(enum proto_op op)
{
    return (unsigned)op < OP__COUNT && ops[op].writes;
}

uint64_t proto_op_allowed(enum proto_op op)
{
    return (unsigned)op < OP__COUNT ? ops[op].required | ops[op].optional : 0;
}

uint64_t proto_op_required(enum proto_op op)
{
    return (unsigned)op < OP__COUNT ? ops[op].required : 0;
}

/* ---- value decoders --------------------------------------------------------------------- */

static bool id_char(char c, bool token)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    if (c == '-' || c == '_' || c == '.')
        return true;
    return token && (c == ':' || c == '/');
}

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static enum proto_err want_str(const msgpack_object *v, const char *name, struct proto_error *err)
{
    if (v->type != MSGPACK_OBJECT_STR)
        return proto_fail(err, PROTO_E_BAD_REQUEST, "field '%s' must be a string", name);
    return PROTO_OK;
}

/* Strings that reach storage go through here: no personal identity numbers, ever. */
static enum proto_err no_pin(const char *s, size_t n, const char *name, struct proto_error *err)
{
    if (proto_has_personal_number(s, n))
        return proto_fail(err, PROTO_E_PERSONAL_DATA,
                          "field '%s' looks like it holds a personal identity number; Fristad "
                          "stores no personal data: use the case system's reference instead",
                          name);
    return PROTO_OK;
}

static enum proto_err dec_ident(const msgpack_object *v, const struct field_def *fd, bool token,
                                char *out, struct proto_error *err)
{
    enum proto_err e = want_str(v, fd->name, err);
    if (e)
        return e;
    const char *s = v->via.str.ptr;
    size_t n = v->via.str.size;
    if (n < fd->min || n > fd->max)
        return proto_fail(err, PROTO_E_BAD_REQUEST, "field '%s' must be %u to %u characters long",
                          fd->name, fd->min, fd->max);
    if (!alnum(s[0]))
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "field '%s' must start with a letter or a digit", fd->name);
    for (size_t i = 0; i < n; i++) {
        if (!id_char(s[i], token))
            return proto_fail(err, PROTO_E_BAD_REQUEST,
                              token ? "field '%s' may hold only letters, digits and . _ - : /"
                                    : "field '%s' may hold only letters, digits and . _ -",
                              fd->name);
    }
    if ((e = no_pin(s, n, fd->name, err)))
        return e;
    memcpy(out, s, n);
    out[n] = '\0';
    return PROTO_OK;
}

static enum proto_err dec_text(const msgpack_object *v, const struct field_def *fd, char *out,
                               struct proto_error *err)
{
    enum proto_err e = want_str(v, fd->name, err);
    if (e)
        return e;
    const char *s = v->via.str.ptr;
    size_t n = v->via.str.size, chars = 0;
    if (!proto_utf8_valid(s, n, &chars))
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "field '%s' must be valid UTF-8 text without control characters",
                          fd->name);
    if (chars < fd->min || chars > fd->max)
        return proto_fail(err, PROTO_E_BAD_REQUEST, "field '%s' must be %u to %u characters long",
                          fd->name, fd->min, fd->max);
    bool blank = true;
    for (size_t i = 0; i < n && blank; i++)
        blank = s[i] == ' ' || s[i] == '\t';
    if (blank)
        return proto_fail(err, PROTO_E_BAD_REQUEST, "field '%s' must not be blank", fd->name);
    if ((e = no_pin(s, n, fd->name, err)))
        return e;
    if (proto_has_street_address(s, n))
        return proto_fail(err, PROTO_E_PERSONAL_DATA,
                          "field '%s' looks like it holds a street address or postal code; "
                          "Fristad stores no addresses",
                          fd->name);
    memcpy(out, s, n);
    out[n] = '\0';
    return PROTO_OK;
}

static enum proto_err dec_enum(const msgpack_object *v, const char *name,
                               int (*parse)(const char *, size_t), const char *choices,
                               uint8_t *out, struct proto_error *err)
{
    enum proto_err e = want_str(v, name, err);
    if (e)
        return e;
    int k = parse(v->via.str.ptr, v->via.str.size);
    if (k < 0)
        return proto_fail(err, PROTO_E_BAD_REQUEST, "field '%s' must be one of %s", name, choices);
    *out = (uint8_t)k;
    return PROTO_OK;
}

static enum proto_err dec_muni(const msgpack_object *v, const char *name, char out[5],
                               struct proto_error *err)
{
    enum proto_err e = want_str(v, name, err);
    if (e)
        return e;
    if (proto_municipality_index(v->via.str.ptr, v->via.str.size) < 0)
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "field '%s' must be one of the 290 four-digit municipality codes "
                          "(kommunkod), such as 0180",
                          name);
    memcpy(out, v->via.str.ptr, 4);
    out[4] = '\0';
    return PROTO_OK;
}

int proto_month_parse(const char *s, size_t n)
{
    if (n != 7 || s[4] != '-')
        return -1;
    for (size_t i = 0; i < 7; i++) {
        if (i != 4 && (s[i] < '0' || s[i] > '9'))
            return -1;
    }
    int year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int month = (s[5] - '0') * 10 + (s[6] - '0');
    if (year < 2000 || year > 2099 || month < 1 || month > 12)
        return -1;
    return year * 12 + month - 1;
}

void proto_month_format(int month, char out[8])
{
    int year = month / 12, m = month % 12 + 1;
    if (month < 0 || year > 9999) {
        snprintf(out, 8, "?");
        return;
    }
    snprintf(out, 8, "%04d-%02d", year, m);
}

static enum proto_err dec_month(const msgpack_object *v, const char *name, char out[8],
                                struct proto_error *err)
{
    enum proto_err e = want_str(v, name, err);
    if (e)
        return e;
    if (proto_month_parse(v->via.str.ptr, v->via.str.size) < 0)
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "field '%s' must be a month written YYYY-MM, such as 2026-03, from "
                          "2000-01 to 2099-12",
                          name);
    memcpy(out, v->via.str.ptr, 7);
    out[7] = '\0';
    return PROTO_OK;
}

static enum proto_err dec_uint(const msgpack_object *v, const struct field_def *fd, uint64_t *out,
                               struct proto_error *err)
{
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER && v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return proto_fail(err, PROTO_E_BAD_REQUEST, "field '%s' must be an integer", fd->name);
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER || v->via.u64 < fd->min || v->via.u64 > fd->max)
        return proto_fail(err, PROTO_E_BAD_REQUEST, "field '%s' must be an integer from %u to %u",
                          fd->name, fd->min, fd->max);
    *out = v->via.u64;
    return PROTO_OK;
}

static enum proto_err dec_lang(const msgpack_object *v, const char *name, char out[4],
                               struct proto_error *err)
{
    enum proto_err e = want_str(v, name, err);
    if (e)
        return e;
    size_t n = v->via.str.size;
    bool ok = n == 2 || n == 3;
    for (size_t i = 0; ok && i < n; i++)
        ok = v->via.str.ptr[i] >= 'a' && v->via.str.ptr[i] <= 'z';
    if (!ok)
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "field '%s' must hold ISO 639 language codes of 2 or 3 lower-case "
                          "letters, such as sv",
                          name);
    memcpy(out, v->via.str.ptr, n);
    out[n] = '\0';
    return PROTO_OK;
}

static enum proto_err want_array(const msgpack_object *v, const struct field_def *fd,
                                 struct proto_error *err)
{
    if (v->type != MSGPACK_OBJECT_ARRAY)
        return proto_fail(err, PROTO_E_BAD_REQUEST, "field '%s' must be an array", fd->name);
    if (v->via.array.size < fd->min || v->via.array.size > fd->max)
        return proto_fail(err, PROTO_E_BAD_REQUEST, "field '%s' must have %u to %u elements",
                          fd->name, fd->min, fd->max);
    return PROTO_OK;
}

static enum proto_err dec_phone(const msgpack_object *v, const char *name, char *out,
                                struct proto_error *err)
{
    enum proto_err e = want_str(v, name, err);
    if (e)
        return e;
    const char *s = v->via.str.ptr;
    size_t n = v->via.str.size;
    unsigned digits = 0;
    bool ok = n >= 5 && n <= PROTO_PHONE_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9')
            digits++;
        else if (!(c == ' ' || c == '-' || (c == '+' && i == 0)))
            ok = false;
    }
    if (!ok || digits < 5 || s[n - 1] < '0' || s[n - 1] > '9')
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "field '%s' must be a telephone number of 5 to 20 characters: "
                          "digits, spaces, '-' and a leading '+'",
                          name);
    memcpy(out, s, n);
    out[n] = '\0';
    return PROTO_OK;
}

static enum proto_err dec_children(const msgpack_object *v, const struct field_def *fd,
                                   struct proto_args *a, struct proto_error *err)
{
    enum proto_err e = want_array(v, fd, err);
    if (e)
        return e;
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        const msgpack_object *c = &v->via.array.ptr[i];
        if (c->type != MSGPACK_OBJECT_MAP)
            return proto_fail(err, PROTO_E_BAD_REQUEST,
                              "each element of 'children' must be a map {age, sex}");
        bool have_age = false, have_sex = false;
        for (uint32_t k = 0; k < c->via.map.size; k++) {
            const msgpack_object *key = &c->via.map.ptr[k].key;
            const msgpack_object *val = &c->via.map.ptr[k].val;
            if (key->type != MSGPACK_OBJECT_STR)
                return proto_fail(err, PROTO_E_BAD_REQUEST, "map keys must be strings");
            if (proto_str_eq(key->via.str.ptr, key->via.str.size, "age")) {
                if (have_age)
                    return proto_fail(err, PROTO_E_BAD_REQUEST, "duplicate key 'age' in a child");
                if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER || val->via.u64 > 17)
                    return proto_fail(err, PROTO_E_BAD_REQUEST,
                                      "a child's 'age' must be an integer from 0 to 17");
                a->children[i].age = (uint8_t)val->via.u64;
                have_age = true;
            } else if (proto_str_eq(key->via.str.ptr, key->via.str.size, "sex")) {
                if (have_sex)
                    return proto_fail(err, PROTO_E_BAD_REQUEST, "duplicate key 'sex' in a child");
                if (val->type != MSGPACK_OBJECT_STR || val->via.str.size != 1 ||
                    (val->via.str.ptr[0] != 'm' && val->via.str.ptr[0] != 'f'))
                    return proto_fail(err, PROTO_E_BAD_REQUEST,
                                      "a child's 'sex' must be \"m\" or \"f\"");
                a->children[i].sex = val->via.str.ptr[0];
                have_sex = true;
            } else {
                return proto_fail(err, PROTO_E_BAD_REQUEST,
                                  "a child has only the keys 'age' and 'sex'");
            }
        }
        if (!have_age || !have_sex)
            return proto_fail(err, PROTO_E_BAD_REQUEST, "each child needs both 'age' and 'sex'");
    }
    a->n_children = (uint8_t)v->via.array.size;
    return PROTO_OK;
}

/*
 * A person as the audit trail names one: the serialNumber of a certificate's subject (an
 * HSA-id on a SITHS card), or for a certificate without one "sha256:" and the lower-case hex
 * of its fingerprint. A fingerprint is the daemon's own and exempt from the personal-number
 * rule, as hold ids are: 64 random hex digits hold ten decimal ones in a row now and then.
 */
static enum proto_err dec_person(const msgpack_object *v, const struct field_def *fd, char *out,
                                 struct proto_error *err)
{
    enum proto_err e = want_str(v, fd->name, err);
    if (e)
        return e;
    const char *s = v->via.str.ptr;
    size_t n = v->via.str.size;
    bool ok = n >= fd->min && n <= fd->max && alnum(s[0]);
    for (size_t i = 0; ok && i < n; i++)
        ok = id_char(s[i], true);
    if (!ok)
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "field 'person' must be 1 to %u of letters, digits and . _ - : /, such "
                          "as an HSA-id or sha256:FINGERPRINT",
                          fd->max);
    bool fingerprint = n == 7 + 64 && memcmp(s, "sha256:", 7) == 0;
    for (size_t i = 7; fingerprint && i < n; i++)
        fingerprint = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    if (!fingerprint && (e = no_pin(s, n, fd->name, err)))
        return e;
    memcpy(out, s, n);
    out[n] = '\0';
    return PROTO_OK;
}

static enum proto_err dec_principal(const msgpack_object *v, char *out, struct proto_error *err)
{
    enum proto_err e = want_str(v, "principal", err);
    if (e)
        return e;
    const char *s = v->via.str.ptr;
    size_t n = v->via.str.size;
    const char *colon = memchr(s, ':', n);
    /* Besides the four roles, audit entries name the daemon's own work ("system:sweep") and
     * certificates that named no usable principal ("unknown:certificate"). */
    size_t rl = colon ? (size_t)(colon - s) : 0;
    bool ok = colon && n <= PROTO_PRINCIPAL_MAX && colon + 1 < s + n &&
              (proto_role_parse(s, rl) >= 0 || proto_str_eq(s, rl, "system") ||
               proto_str_eq(s, rl, "unknown"));
    for (const char *c = colon ? colon + 1 : s; ok && c < s + n; c++)
        ok = id_char(*c, false);
    if (!ok)
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "field 'principal' must be ROLE:ID, such as social:0180 or system:sweep");
    if ((e = no_pin(s, n, "principal", err)))
        return e;
    memcpy(out, s, n);
    out[n] = '\0';
    return PROTO_OK;
}

/*
 * A hold or placement id: its prefix and 16 lower-case letters or digits. Ids are issued by the
 * server, never by a person, so the personal-number check does not apply: an id issued before
 * ids were made of letters alone may hold a run of digits that looks like one, and such a hold
 * must stay closable.
 */
static enum proto_err dec_server_id(const msgpack_object *v, const struct field_def *fd, char *out,
                                    struct proto_error *err)
{
    enum proto_err e = want_str(v, fd->name, err);
    if (e)
        return e;
    const char *s = v->via.str.ptr;
    size_t n = v->via.str.size;
    bool ok = n == PROTO_ID_LEN && s[0] == (char)fd->min;
    for (size_t i = 1; ok && i < n; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');
    if (!ok)
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "field '%s' must be a %s id as the server gave it: '%c' and 16 "
                          "lower-case letters or digits",
                          fd->name, fd->name, (char)fd->min);
    memcpy(out, s, n);
    out[n] = '\0';
    return PROTO_OK;
}

/* "since" as a sequence of the event log or the audit trail: "MS-N", two decimal numbers. */
static enum proto_err dec_sequence(const msgpack_object *v, struct proto_args *a,
                                   struct proto_error *err)
{
    const char *s = v->via.str.ptr;
    size_t n = v->via.str.size, i = 0;
    uint64_t part[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 20) {
            uint64_t d = (uint64_t)(s[i] - '0');
            if (part[k] > (UINT64_MAX - d) / 10)
                break;
            part[k] = part[k] * 10 + d;
            i++;
        }
        if (i == start || (k == 0 && (i >= n || s[i] != '-')))
            goto bad;
        if (k == 0)
            i++;
    }
    if (i != n || part[0] > (uint64_t)INT64_MAX)
        goto bad;
    a->since = (int64_t)part[0];
    a->since_seq = part[1];
    a->since_is_seq = true;
    return PROTO_OK;
bad:
    return proto_fail(err, PROTO_E_BAD_REQUEST,
                      "field 'since' must be milliseconds since 1970, or a sequence MS-N as "
                      "events and audit entries give it");
}

static enum proto_err dec_intake(const msgpack_object *v, const struct field_def *fd, char *out,
                                 struct proto_error *err)
{
    enum proto_err e = want_str(v, fd->name, err);
    if (e)
        return e;
    struct proto_intake in;
    if (v->via.str.size > fd->max ||
        (e = proto_intake_parse(v->via.str.ptr, v->via.str.size, &in, err)))
        return e ? e
                 : proto_fail(err, PROTO_E_BAD_REQUEST, "field '%s' must be at most %u characters",
                              fd->name, fd->max);
    if (proto_intake_format(&in, out, PROTO_INTAKE_MAX * 4 + 1) < 0)
        return proto_fail(err, PROTO_E_BAD_REQUEST, "field '%s' is too long", fd->name);
    return PROTO_OK;
}

/* competences and need: distinct competence names, kept as a set of bits. */
static enum proto_err dec_competences(const msgpack_object *v, const struct field_def *fd,
                                      uint8_t *out, struct proto_error *err)
{
    enum proto_err e = want_array(v, fd, err);
    if (e)
        return e;
    uint8_t bits = 0;
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        uint8_t c = 0;
        if ((e = dec_enum(&v->via.array.ptr[i], fd->name, proto_competence_parse,
                          proto_competence_choices(), &c, err)))
            return e;
        if (bits & (1u << c))
            return proto_fail(err, PROTO_E_BAD_REQUEST, "field '%s' repeats a competence",
                              fd->name);
        bits |= (uint8_t)(1u << c);
    }
    *out = bits;
    return PROTO_OK;
}

/* An IVO permit's id in the token alphabet, or the empty string: the shelter has none. */
static enum proto_err dec_permit(const msgpack_object *v, const struct field_def *fd, char *out,
                                 struct proto_error *err)
{
    enum proto_err e = want_str(v, fd->name, err);
    if (e)
        return e;
    if (v->via.str.size == 0) {
        out[0] = '\0';
        return PROTO_OK;
    }
    struct field_def nonempty = *fd;
    nonempty.min = 1;
    return dec_ident(v, &nonempty, true, out, err);
}

static enum proto_err dec_date(const msgpack_object *v, const struct field_def *fd, char *out,
                               struct proto_error *err)
{
    enum proto_err e = want_str(v, fd->name, err);
    if (e)
        return e;
    if (!proto_date_valid(v->via.str.ptr, v->via.str.size))
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "field '%s' must be a date YYYY-MM-DD from 2000 to 2099, such as "
                          "2024-04-01",
                          fd->name);
    memcpy(out, v->via.str.ptr, PROTO_DATE_LEN);
    out[PROTO_DATE_LEN] = '\0';
    return PROTO_OK;
}

/* child_basis: one basis per child, in the order of the referral's children. */
static enum proto_err dec_bases(const msgpack_object *v, const struct field_def *fd,
                                struct proto_args *a, struct proto_error *err)
{
    enum proto_err e = want_array(v, fd, err);
    if (e)
        return e;
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        if ((e = dec_enum(&v->via.array.ptr[i], fd->name, proto_basis_parse, proto_basis_choices(),
                          &a->child_basis[i], err)))
            return e;
    }
    a->n_child_basis = (uint8_t)v->via.array.size;
    return PROTO_OK;
}

/* The fields of Swedish practice (competences, operator and permit, each child's basis). */
static enum proto_err dec_practice(enum proto_field f, const msgpack_object *v,
                                   struct proto_args *a, struct proto_error *err)
{
    const struct field_def *fd = &fields[f];
    switch (f) {
    case F_COMPETENCES:
        return dec_competences(v, fd, &a->competences, err);
    case F_NEED:
        return dec_competences(v, fd, &a->need, err);
    case F_OPERATOR:
        return dec_enum(v, fd->name, proto_operator_parse, proto_operator_choices(), &a->operator_,
                        err);
    case F_IVO_PERMIT:
        return dec_permit(v, fd, a->ivo_permit, err);
    case F_IVO_PERMIT_DATE:
        return dec_date(v, fd, a->ivo_permit_date, err);
    case F_IVO_REGISTERED:
        if (v->type != MSGPACK_OBJECT_BOOLEAN)
            return proto_fail(err, PROTO_E_BAD_REQUEST, "field '%s' must be true or false",
                              fd->name);
        a->ivo_registered = v->via.boolean;
        return PROTO_OK;
    case F_CHILD_BASIS:
        return dec_bases(v, fd, a, err);
    default:
        return proto_fail(err, PROTO_E_INTERNAL, "unhandled field");
    }
}

static enum proto_err dec_field(enum proto_field f, const msgpack_object *v, struct proto_args *a,
                                struct proto_error *err)
{
    const struct field_def *fd = &fields[f];
    enum proto_err e = PROTO_OK;
    uint64_t u = 0;

    switch (f) {
    case F_SHELTER:
        return dec_ident(v, fd, false, a->shelter, err);
    case F_UNIT:
        return dec_ident(v, fd, false, a->unit, err);
    case F_REF:
        return dec_ident(v, fd, true, a->ref, err);
    case F_IDEMPOTENCY_KEY:
        return dec_ident(v, fd, true, a->idempotency_key, err);
    case F_HOLD:
        return dec_server_id(v, fd, a->hold, err);
    case F_PLACEMENT:
        return dec_server_id(v, fd, a->placement, err);
    case F_NAME:
        return dec_text(v, fd, a->name, err);
    case F_NOTE:
        return dec_text(v, fd, a->note, err);
    case F_REASON:
        return dec_enum(v, fd->name, proto_decline_parse, proto_decline_choices(), &a->reason, err);
    case F_PHONE:
        return dec_phone(v, fd->name, a->phone, err);
    case F_CALLBACK:
        return dec_phone(v, fd->name, a->callback, err);
    case F_INTAKE_HOURS:
        return dec_intake(v, fd, a->intake_hours, err);
    case F_PRINCIPAL:
        return dec_principal(v, a->principal, err);
    case F_PERSON:
        return dec_person(v, fd, a->person, err);
    case F_AFTER:
        return dec_ident(v, fd, false, a->after, err);
    case F_KIND:
        return dec_enum(v, fd->name, proto_kind_parse,
                        "kvinnojour, skyddat_boende, kriscentrum, other", &a->kind, err);
    case F_STATE:
        return dec_enum(v, fd->name, proto_vacancy_parse, "free, occupied, closed", &a->state, err);
    case F_RISK:
        return dec_enum(v, fd->name, proto_risk_parse, "low, moderate, high, severe", &a->risk,
                        err);
    case F_GROUP:
        return dec_enum(v, fd->name, proto_group_parse, "women, men, hbtqi, youth", &a->group, err);
    case F_MUNICIPALITY:
        return dec_muni(v, fd->name, a->municipality, err);
    case F_HOME:
        return dec_muni(v, fd->name, a->home, err);
    case F_LANGUAGE:
        return dec_lang(v, fd->name, a->language, err);
    case F_COUNTY:
        if ((e = want_str(v, fd->name, err)))
            return e;
        if (!proto_county_valid(v->via.str.ptr, v->via.str.size))
            return proto_fail(err, PROTO_E_BAD_REQUEST,
                              "field 'county' must be one of the 21 two-digit county codes "
                              "(länskod), such as 01");
        memcpy(a->county, v->via.str.ptr, 2);
        a->county[2] = '\0';
        return PROTO_OK;
    case F_PROTECTION:
    case F_MAX_CHILDREN:
    case F_BOYS_MAX_AGE:
    case F_BEDS:
    case F_ADULTS:
    case F_LIMIT:
        if ((e = dec_uint(v, fd, &u, err)))
            return e;
        if (f == F_PROTECTION)
            a->protection = (uint8_t)u;
        else if (f == F_MAX_CHILDREN)
            a->max_children = (uint8_t)u;
        else if (f == F_BOYS_MAX_AGE)
            a->boys_max_age = (uint8_t)u;
        else if (f == F_BEDS)
            a->beds = (uint8_t)u;
        else if (f == F_ADULTS)
            a->adults = (uint8_t)u;
        else
            a->limit = (uint16_t)u;
        return PROTO_OK;
    case F_PETS:
    case F_SUBSTANCE:
    case F_ACCESSIBLE:
    case F_WHEELCHAIR:
        if (v->type != MSGPACK_OBJECT_BOOLEAN)
            return proto_fail(err, PROTO_E_BAD_REQUEST, "field '%s' must be true or false",
                              fd->name);
        if (f == F_PETS)
            a->pets = v->via.boolean;
        else if (f == F_SUBSTANCE)
            a->substance = v->via.boolean;
        else if (f == F_ACCESSIBLE)
            a->accessible = v->via.boolean;
        else
            a->wheelchair = v->via.boolean;
        return PROTO_OK;
    case F_GROUPS:
        if ((e = want_array(v, fd, err)))
            return e;
        a->groups = 0;
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            uint8_t g = 0;
            if ((e = dec_enum(&v->via.array.ptr[i], fd->name, proto_group_parse,
                              "women, men, hbtqi, youth", &g, err)))
                return e;
            if (a->groups & (1u << g))
                return proto_fail(err, PROTO_E_BAD_REQUEST, "field 'groups' repeats a group");
            a->groups |= (uint8_t)(1u << g);
        }
        return PROTO_OK;
    case F_LANGUAGES:
        if ((e = want_array(v, fd, err)))
            return e;
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            if ((e = dec_lang(&v->via.array.ptr[i], fd->name, a->languages[i], err)))
                return e;
            for (uint32_t k = 0; k < i; k++) {
                if (strcmp(a->languages[k], a->languages[i]) == 0)
                    return proto_fail(err, PROTO_E_BAD_REQUEST,
                                      "field 'languages' repeats a language");
            }
        }
        a->n_languages = (uint8_t)v->via.array.size;
        return PROTO_OK;
    case F_PERPETRATOR:
    case F_EXCLUDE:
        if ((e = want_array(v, fd, err)))
            return e;
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            char *slot = f == F_PERPETRATOR ? a->perpetrator[i] : a->exclude[i];
            if ((e = dec_muni(&v->via.array.ptr[i], fd->name, slot, err)))
                return e;
        }
        if (f == F_PERPETRATOR)
            a->n_perpetrator = (uint8_t)v->via.array.size;
        else
            a->n_exclude = (uint8_t)v->via.array.size;
        return PROTO_OK;
    case F_CHILDREN:
        return dec_children(v, fd, a, err);
    case F_SINCE:
        if (v->type == MSGPACK_OBJECT_STR)
            return dec_sequence(v, a, err);
        __attribute__((fallthrough)); /* milliseconds since 1970, as the others */
    case F_ARRIVAL_BY:
    case F_ARRIVAL_AT:
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > (uint64_t)INT64_MAX)
            return proto_fail(err, PROTO_E_BAD_REQUEST,
                              "field '%s' must be a non-negative integer of milliseconds "
                              "since 1970",
                              fd->name);
        *(f == F_SINCE        ? &a->since
          : f == F_ARRIVAL_BY ? &a->arrival_by
                              : &a->arrival_at) = (int64_t)v->via.u64;
        return PROTO_OK;
    case F_TYPES:
        if ((e = want_array(v, fd, err)))
            return e;
        a->types = 0;
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            uint8_t t = 0;
            if ((e = dec_enum(&v->via.array.ptr[i], fd->name, proto_event_parse,
                              "held, accepted, declined, released, expired, escalated, confirmed, "
                              "discharged, vacancy, paused, resumed, match, standing",
                              &t, err)))
                return e;
            if (a->types & (1u << t))
                return proto_fail(err, PROTO_E_BAD_REQUEST, "field 'types' repeats a type");
            a->types |= (uint16_t)(1u << t);
        }
        return PROTO_OK;
    case F_HOURS:
        if ((e = dec_uint(v, fd, &u, err)))
            return e;
        a->hours = (uint8_t)u;
        return PROTO_OK;
    case F_STANDING:
        return dec_server_id(v, fd, a->standing, err);
    case F_COMPETENCES:
    case F_NEED:
    case F_OPERATOR:
    case F_IVO_PERMIT:
    case F_IVO_PERMIT_DATE:
    case F_IVO_REGISTERED:
    case F_CHILD_BASIS:
        return dec_practice(f, v, a, err);
    case F_FROM_MONTH:
        return dec_month(v, fd->name, a->from_month, err);
    case F_TO_MONTH:
        return dec_month(v, fd->name, a->to_month, err);
    case F__COUNT:
        break;
    }
    return proto_fail(err, PROTO_E_INTERNAL, "unhandled field");
}

/* ---- request decoding ------------------------------------------------------------------- */

static int field_parse(const char *s, size_t n)
{
    for (unsigned i = 0; i < F__COUNT; i++) {
        if (proto_str_eq(s, n, fields[i].name))
            return (int)i;
    }
    return -1;
}

/*
 * A permit comes with its date, and "no permit" with none; a hold's bases are one per child of
 * its referral (hold.confirm's are checked by the store, which knows the hold's children).
 */
static enum proto_err check_practice(const struct proto_request *r, struct proto_error *err)
{
    const struct proto_args *a = &r->args;
    if (r->op == OP_SHELTER_ADD || r->op == OP_SHELTER_UPDATE) {
        bool permit = proto_has(a, F_IVO_PERMIT) && a->ivo_permit[0] != '\0';
        bool none = proto_has(a, F_IVO_PERMIT) && a->ivo_permit[0] == '\0';
        if (permit && !proto_has(a, F_IVO_PERMIT_DATE))
            return proto_fail(
                err, PROTO_E_BAD_REQUEST,
                "'ivo_permit' needs the field 'ivo_permit_date': when IVO granted it");
        if (!permit && proto_has(a, F_IVO_PERMIT_DATE))
            return proto_fail(err, PROTO_E_BAD_REQUEST,
                              "'ivo_permit_date' goes with a permit in 'ivo_permit'");
        if (none && r->op == OP_SHELTER_ADD)
            return proto_fail(err, PROTO_E_BAD_REQUEST,
                              "an empty 'ivo_permit' removes a permit; a new shelter has none");
    }
    unsigned children = proto_has(a, F_CHILDREN) ? a->n_children : 0;
    if (r->op == OP_HOLD && proto_has(a, F_CHILD_BASIS) && a->n_child_basis != children)
        return proto_fail(err, PROTO_E_BAD_REQUEST,
                          "'child_basis' needs one basis per child of the referral, in order");
    return PROTO_OK;
}

static enum proto_err check_semantics(const struct proto_request *r, struct proto_error *err)
{
    const struct proto_args *a = &r->args;
    uint64_t others = a->present & ~PROTO_BIT(F_SHELTER) & ~PROTO_BIT(F_UNIT);
    switch (r->op) {
    case OP_SHELTER_UPDATE:
    case OP_UNIT_UPDATE:
        if (others == 0)
            return proto_fail(err, PROTO_E_BAD_REQUEST, "'%s' needs at least one field to change",
                              proto_op_name(r->op));
        break;
    case OP_FREE:
    case OP_SHELTER_LIST:
    case OP_FOLLOWUP:
        if (proto_has(a, F_COUNTY) && proto_has(a, F_MUNICIPALITY) &&
            memcmp(a->county, a->municipality, 2) != 0)
            return proto_fail(err, PROTO_E_BAD_REQUEST, "municipality is not in the given county");
        if (r->op == OP_FOLLOWUP && proto_has(a, F_FROM_MONTH) && proto_has(a, F_TO_MONTH)) {
            int from = proto_month_parse(a->from_month, 7), to = proto_month_parse(a->to_month, 7);
            if (from > to)
                return proto_fail(err, PROTO_E_BAD_REQUEST,
                                  "field 'from_month' must not be after field 'to_month'");
            if (to - from + 1 > (int)PROTO_MAX_MONTHS)
                return proto_fail(err, PROTO_E_BAD_REQUEST,
                                  "at most %u months in one request: from 'from_month' to "
                                  "'to_month'",
                                  PROTO_MAX_MONTHS);
        }
        break;
    default:
        break;
    }
    return check_practice(r, err);
}

static enum proto_err decode_root(const msgpack_object *root, struct proto_request *out,
                                  struct proto_error *err)
{
    if (root->type != MSGPACK_OBJECT_MAP)
        return proto_fail(err, PROTO_E_BAD_FRAME, "a frame must hold one msgpack map");

    const msgpack_object *op = NULL, *args = NULL;
    bool seen_id = false;

    /* The id first, so that every later error can be matched to its request. */
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        const msgpack_object *v = &root->via.map.ptr[i].val;
        if (k->type == MSGPACK_OBJECT_STR && proto_str_eq(k->via.str.ptr, k->via.str.size, "id")) {
            if (seen_id) {
                out->has_id = false;
                return proto_fail(err, PROTO_E_BAD_REQUEST, "duplicate key 'id'");
            }
            seen_id = true;
            if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                out->id = v->via.u64;
                out->has_id = true;
            }
        }
    }
    if (!seen_id)
        return proto_fail(err, PROTO_E_BAD_REQUEST, "missing key 'id'");
    if (!out->has_id)
        return proto_fail(err, PROTO_E_BAD_REQUEST, "'id' must be a non-negative integer");

    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        const msgpack_object *v = &root->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            return proto_fail(err, PROTO_E_BAD_REQUEST, "map keys must be strings");
        const char *ks = k->via.str.ptr;
        size_t kn = k->via.str.size;
        if (proto_str_eq(ks, kn, "id")) {
            continue;
        } else if (proto_str_eq(ks, kn, "op")) {
            if (op)
                return proto_fail(err, PROTO_E_BAD_REQUEST, "duplicate key 'op'");
            op = v;
        } else if (proto_str_eq(ks, kn, "args")) {
            if (args)
                return proto_fail(err, PROTO_E_BAD_REQUEST, "duplicate key 'args'");
            args = v;
        } else {
            return proto_fail(err, PROTO_E_BAD_REQUEST,
                              "unknown key in request; a request has only id, op and args");
        }
    }
    if (!op)
        return proto_fail(err, PROTO_E_BAD_REQUEST, "missing key 'op'");
    if (op->type != MSGPACK_OBJECT_STR)
        return proto_fail(err, PROTO_E_BAD_REQUEST, "'op' must be a string");
    int opi = proto_op_parse(op->via.str.ptr, op->via.str.size);
    if (opi < 0)
        return proto_fail(err, PROTO_E_UNKNOWN_OP, "unknown op; see PROTOCOL.md for the list");
    out->op = (enum proto_op)opi;

    uint64_t allowed = proto_op_allowed(out->op);
    if (args) {
        if (args->type != MSGPACK_OBJECT_MAP)
            return proto_fail(err, PROTO_E_BAD_REQUEST, "'args' must be a map");
        for (uint32_t i = 0; i < args->via.map.size; i++) {
            const msgpack_object *k = &args->via.map.ptr[i].key;
            if (k->type != MSGPACK_OBJECT_STR)
                return proto_fail(err, PROTO_E_BAD_REQUEST, "map keys must be strings");
            int f = field_parse(k->via.str.ptr, k->via.str.size);
            if (f < 0 || !(allowed & PROTO_BIT(f)))
                return proto_fail(err, PROTO_E_BAD_REQUEST, "%s field for '%s'%s%s%s",
                                  f < 0 ? "unknown" : "unexpected", ops[opi].name,
                                  f < 0 ? "" : ": '", f < 0 ? "" : fields[f].name,
                                  f < 0 ? "" : "'");
            if (out->args.present & PROTO_BIT(f))
                return proto_fail(err, PROTO_E_BAD_REQUEST, "duplicate field '%s'", fields[f].name);
            enum proto_err e =
                dec_field((enum proto_field)f, &args->via.map.ptr[i].val, &out->args, err);
            if (e)
                return e;
            out->args.present |= PROTO_BIT(f);
        }
    }
    uint64_t missing = proto_op_required(out->op) & ~out->args.present;
    if (missing) {
        unsigned f = (unsigned)__builtin_ctzll(missing);
        return proto_fail(err, PROTO_E_BAD_REQUEST, "'%s' needs the field '%s'", ops[opi].name,
                          fields[f].name);
    }
    return check_semantics(out, err);
}

enum proto_err proto_decode_request(const uint8_t *p, size_t n, struct proto_request *out,
                                    struct proto_error *err)
{
    memset(out, 0, sizeof *out);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    enum proto_err e = proto_unpack(p, n, &u, err);
    if (e == PROTO_OK)
        e = decode_root(&u.data, out, err);
    msgpack_unpacked_destroy(&u);
    if (e == PROTO_OK && err)
        err->code = PROTO_OK;
    return e;
}

/* ---- request packing -------------------------------------------------------------------- */

static int pack_competences(msgpack_packer *pk, uint8_t bits)
{
    int rc = msgpack_pack_array(pk, (size_t)__builtin_popcount(bits));
    for (unsigned c = 0; c < 8; c++) { /* every bit, so that an unknown one is refused */
        if (bits & (1u << c))
            rc |= proto_pack_cstr(pk, proto_competence_name(c));
    }
    return rc;
}

/* The value of one field of Swedish practice (its key is packed). */
static int pack_practice(msgpack_packer *pk, enum proto_field f, const struct proto_args *a)
{
    int rc = 0;
    switch (f) {
    case F_COMPETENCES:
        return pack_competences(pk, a->competences);
    case F_NEED:
        return pack_competences(pk, a->need);
    case F_OPERATOR:
        return proto_pack_cstr(pk, proto_operator_name(a->operator_));
    case F_IVO_PERMIT:
        return proto_pack_cstr(pk, a->ivo_permit);
    case F_IVO_PERMIT_DATE:
        return proto_pack_cstr(pk, a->ivo_permit_date);
    case F_IVO_REGISTERED:
        return a->ivo_registered ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case F_CHILD_BASIS:
        rc |= msgpack_pack_array(pk, a->n_child_basis);
        for (unsigned i = 0; i < a->n_child_basis && i < PROTO_MAX_CHILDREN; i++)
            rc |= proto_pack_cstr(pk, proto_basis_name(a->child_basis[i]));
        return rc;
    default:
        return -1;
    }
}

static int pack_field(msgpack_packer *pk, enum proto_field f, const struct proto_args *a)
{
    int rc = proto_pack_cstr(pk, fields[f].name);
    switch (f) {
    case F_SHELTER:
        return rc | proto_pack_cstr(pk, a->shelter);
    case F_UNIT:
        return rc | proto_pack_cstr(pk, a->unit);
    case F_NAME:
        return rc | proto_pack_cstr(pk, a->name);
    case F_KIND:
        return rc | proto_pack_cstr(pk, proto_kind_name(a->kind));
    case F_MUNICIPALITY:
        return rc | proto_pack_cstr(pk, a->municipality);
    case F_PROTECTION:
        return rc | msgpack_pack_uint8(pk, a->protection);
    case F_PHONE:
        return rc | proto_pack_cstr(pk, a->phone);
    case F_GROUPS: {
        unsigned count = (unsigned)__builtin_popcount(a->groups);
        rc |= msgpack_pack_array(pk, count);
        for (unsigned g = 0; g < 8; g++) { /* every bit, so that an unknown one is refused */
            if (a->groups & (1u << g))
                rc |= proto_pack_cstr(pk, proto_group_name(g));
        }
        return rc;
    }
    case F_MAX_CHILDREN:
        return rc | msgpack_pack_uint8(pk, a->max_children);
    case F_BOYS_MAX_AGE:
        return rc | msgpack_pack_uint8(pk, a->boys_max_age);
    case F_PETS:
        return rc | (a->pets ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    case F_SUBSTANCE:
        return rc | (a->substance ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    case F_LANGUAGES:
        rc |= msgpack_pack_array(pk, a->n_languages);
        for (unsigned i = 0; i < a->n_languages && i < PROTO_MAX_LANGUAGES; i++)
            rc |= proto_pack_cstr(pk, a->languages[i]);
        return rc;
    case F_BEDS:
        return rc | msgpack_pack_uint8(pk, a->beds);
    case F_ACCESSIBLE:
        return rc | (a->accessible ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    case F_STATE:
        return rc | proto_pack_cstr(pk, proto_vacancy_name(a->state));
    case F_COUNTY:
        return rc | proto_pack_cstr(pk, a->county);
    case F_HOME:
        return rc | proto_pack_cstr(pk, a->home);
    case F_RISK:
        return rc | proto_pack_cstr(pk, proto_risk_name(a->risk));
    case F_ADULTS:
        return rc | msgpack_pack_uint8(pk, a->adults);
    case F_CHILDREN:
        rc |= msgpack_pack_array(pk, a->n_children);
        for (unsigned i = 0; i < a->n_children && i < PROTO_MAX_CHILDREN; i++) {
            char sex[2] = {a->children[i].sex, '\0'};
            rc |= msgpack_pack_map(pk, 2);
            rc |= proto_pack_kv_int(pk, "age", a->children[i].age);
            rc |= proto_pack_kv_str(pk, "sex", sex);
        }
        return rc;
    case F_GROUP:
        return rc | proto_pack_cstr(pk, proto_group_name(a->group));
    case F_WHEELCHAIR:
        return rc | (a->wheelchair ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    case F_LANGUAGE:
        return rc | proto_pack_cstr(pk, a->language);
    case F_PERPETRATOR:
        rc |= msgpack_pack_array(pk, a->n_perpetrator);
        for (unsigned i = 0; i < a->n_perpetrator && i < PROTO_MAX_PERP; i++)
            rc |= proto_pack_cstr(pk, a->perpetrator[i]);
        return rc;
    case F_EXCLUDE:
        rc |= msgpack_pack_array(pk, a->n_exclude);
        for (unsigned i = 0; i < a->n_exclude && i < PROTO_MAX_EXCLUDE; i++)
            rc |= proto_pack_cstr(pk, a->exclude[i]);
        return rc;
    case F_LIMIT:
        return rc | msgpack_pack_uint16(pk, a->limit);
    case F_REF:
        return rc | proto_pack_cstr(pk, a->ref);
    case F_IDEMPOTENCY_KEY:
        return rc | proto_pack_cstr(pk, a->idempotency_key);
    case F_HOLD:
        return rc | proto_pack_cstr(pk, a->hold);
    case F_PLACEMENT:
        return rc | proto_pack_cstr(pk, a->placement);
    case F_REASON:
        return rc | proto_pack_cstr(pk, proto_decline_name(a->reason));
    case F_NOTE:
        return rc | proto_pack_cstr(pk, a->note);
    case F_CALLBACK:
        return rc | proto_pack_cstr(pk, a->callback);
    case F_ARRIVAL_BY:
        return rc | msgpack_pack_int64(pk, a->arrival_by);
    case F_ARRIVAL_AT:
        return rc | msgpack_pack_int64(pk, a->arrival_at);
    case F_INTAKE_HOURS:
        return rc | proto_pack_cstr(pk, a->intake_hours);
    case F_TYPES: {
        rc |= msgpack_pack_array(pk, (size_t)__builtin_popcount(a->types));
        for (unsigned t = 0; t < 16; t++) { /* every bit, so that an unknown one is refused */
            if (a->types & (1u << t))
                rc |= proto_pack_cstr(pk, proto_event_name(t));
        }
        return rc;
    }
    case F_HOURS:
        return rc | msgpack_pack_uint8(pk, a->hours);
    case F_STANDING:
        return rc | proto_pack_cstr(pk, a->standing);
    case F_FROM_MONTH:
        return rc | proto_pack_cstr(pk, a->from_month);
    case F_TO_MONTH:
        return rc | proto_pack_cstr(pk, a->to_month);
    case F_SINCE:
        if (a->since_is_seq) {
            char seq[48];
            snprintf(seq, sizeof seq, "%lld-%llu", (long long)a->since,
                     (unsigned long long)a->since_seq);
            return rc | proto_pack_cstr(pk, seq);
        }
        return rc | msgpack_pack_int64(pk, a->since);
    case F_PRINCIPAL:
        return rc | proto_pack_cstr(pk, a->principal);
    case F_COMPETENCES:
    case F_NEED:
    case F_OPERATOR:
    case F_IVO_PERMIT:
    case F_IVO_PERMIT_DATE:
    case F_IVO_REGISTERED:
    case F_CHILD_BASIS:
        return rc | pack_practice(pk, f, a);
    case F_PERSON:
        return rc | proto_pack_cstr(pk, a->person);
    case F_AFTER:
        return rc | proto_pack_cstr(pk, a->after);
    case F__COUNT:
        break;
    }
    return -1;
}

/* A list longer than struct proto_args holds; it cannot be packed as it claims to be. */
static int over_capacity(const struct proto_args *a)
{
    if (proto_has(a, F_LANGUAGES) && a->n_languages > PROTO_MAX_LANGUAGES)
        return F_LANGUAGES;
    if (proto_has(a, F_CHILDREN) && a->n_children > PROTO_MAX_CHILDREN)
        return F_CHILDREN;
    if (proto_has(a, F_PERPETRATOR) && a->n_perpetrator > PROTO_MAX_PERP)
        return F_PERPETRATOR;
    if (proto_has(a, F_EXCLUDE) && a->n_exclude > PROTO_MAX_EXCLUDE)
        return F_EXCLUDE;
    if (proto_has(a, F_CHILD_BASIS) && a->n_child_basis > PROTO_MAX_CHILDREN)
        return F_CHILD_BASIS;
    return -1;
}

int proto_pack_fields(msgpack_packer *pk, const struct proto_args *a, uint64_t mask)
{
    if (over_capacity(a) >= 0)
        return -1;
    uint64_t present = a->present & mask & ((UINT64_C(1) << F__COUNT) - 1);
    int rc = 0;
    for (unsigned f = 0; f < F__COUNT; f++) {
        if (present & PROTO_BIT(f))
            rc |= pack_field(pk, (enum proto_field)f, a);
    }
    return rc ? -1 : 0;
}

int proto_pack_request(msgpack_packer *pk, const struct proto_request *req)
{
    if ((unsigned)req->op >= OP__COUNT || over_capacity(&req->args) >= 0)
        return -1;
    uint64_t present = req->args.present & ((UINT64_C(1) << F__COUNT) - 1);
    int rc = msgpack_pack_map(pk, 3);
    rc |= proto_pack_cstr(pk, "id") | msgpack_pack_uint64(pk, req->id); /* ids reach 2^64-1 */
    rc |= proto_pack_kv_str(pk, "op", proto_op_name(req->op));
    rc |= proto_pack_cstr(pk, "args");
    rc |= msgpack_pack_map(pk, (size_t)__builtin_popcountll(present));
    rc |= proto_pack_fields(pk, &req->args, present);
    return rc ? -1 : 0;
}

enum proto_err proto_validate_request(const struct proto_request *req, struct proto_error *err)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    enum proto_err e;
    int f = over_capacity(&req->args);
    if (f >= 0) {
        e = proto_fail(err, PROTO_E_BAD_REQUEST, "field '%s' must have %u to %u elements",
                       fields[f].name, fields[f].min, fields[f].max);
    } else if (proto_pack_request(&pk, req) != 0) {
        e = proto_fail(err, PROTO_E_INTERNAL, "out of memory");
    } else {
        struct proto_request *copy = malloc(sizeof *copy);
        if (!copy) {
            e = proto_fail(err, PROTO_E_INTERNAL, "out of memory");
        } else {
            e = proto_decode_request((const uint8_t *)sb.data, sb.size, copy, err);
            free(copy);
        }
    }
    msgpack_sbuffer_destroy(&sb);
    return e;
}
