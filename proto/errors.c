/* Error codes and the names of the protocol's enumerations. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto_internal.h"

static const char *const err_codes[PROTO_E__COUNT] = {
    [PROTO_OK] = "ok",
    [PROTO_E_BAD_FRAME] = "bad_frame",
    [PROTO_E_TOO_LARGE] = "too_large",
    [PROTO_E_BAD_REQUEST] = "bad_request",
    [PROTO_E_UNKNOWN_OP] = "unknown_op",
    [PROTO_E_UNAUTHORIZED] = "unauthorized",
    [PROTO_E_FORBIDDEN] = "forbidden",
    [PROTO_E_NOT_FOUND] = "not_found",
    [PROTO_E_CONFLICT] = "conflict",
    [PROTO_E_UNAVAILABLE] = "unavailable",
    [PROTO_E_INTERNAL] = "internal",
    [PROTO_E_RATE_LIMITED] = "rate_limited",
    [PROTO_E_PERSONAL_DATA] = "personal_data",
    [PROTO_E_OUTCOME_UNKNOWN] = "outcome_unknown",
    [PROTO_E_INELIGIBLE] = "ineligible",
    [PROTO_E_LIMIT_REACHED] = "limit_reached",
    [PROTO_E_GONE] = "gone",
};

const char *proto_err_code(enum proto_err e)
{
    if ((unsigned)e >= PROTO_E__COUNT)
        return "internal";
    return err_codes[e];
}

enum proto_err proto_err_from_code(const char *s, size_t n)
{
    for (unsigned i = 0; i < PROTO_E__COUNT; i++) {
        if (proto_str_eq(s, n, err_codes[i]))
            return (enum proto_err)i;
    }
    return PROTO_E__COUNT;
}

enum proto_err proto_fail(struct proto_error *e, enum proto_err code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int parse_name(const char *const *names, unsigned count, const char *s, size_t n)
{
    for (unsigned i = 0; i < count; i++) {
        if (proto_str_eq(s, n, names[i]))
            return (int)i;
    }
    return -1;
}

static const char *const kind_names[KIND__COUNT] = {"kvinnojour", "skyddat_boende", "kriscentrum",
                                                    "other"};
static const char *const group_names[GROUP__COUNT] = {"women", "men", "hbtqi", "youth"};
static const char *const vacancy_names[VAC__COUNT] = {"free", "occupied", "closed"};
static const char *const risk_names[RISK__COUNT] = {"low", "moderate", "high", "severe"};
static const char *const role_names[ROLE__COUNT] = {"shelter", "social", "oncall", "admin"};
static const char *const event_names[EV__COUNT] = {
    "held",       "accepted", "declined", "released", "expired", "escalated", "confirmed",
    "discharged", "vacancy",  "paused",   "resumed",  "match",   "standing"};
static const char *const decline_names[DECLINE__COUNT] = {"no_room", "household", "needs",
                                                          "safety",  "staffing",  "other"};

#define NAME_FN(fn, arr, type, count)                                                              \
    const char *fn(type v)                                                                         \
    {                                                                                              \
        return (unsigned)v < (count) ? arr[v] : "?";                                               \
    }

NAME_FN(proto_kind_name, kind_names, enum proto_kind, KIND__COUNT)
NAME_FN(proto_group_name, group_names, enum proto_group, GROUP__COUNT)
NAME_FN(proto_vacancy_name, vacancy_names, enum proto_vacancy, VAC__COUNT)
NAME_FN(proto_risk_name, risk_names, enum proto_risk, RISK__COUNT)
NAME_FN(proto_role_name, role_names, enum proto_role, ROLE__COUNT)
NAME_FN(proto_decline_name, decline_names, enum proto_decline, DECLINE__COUNT)
NAME_FN(proto_event_name, event_names, enum proto_event, EV__COUNT)

const char *proto_decline_choices(void)
{
    return "no_room, household, needs, safety, staffing, other";
}

int proto_kind_parse(const char *s, size_t n)
{
    return parse_name(kind_names, KIND__COUNT, s, n);
}

int proto_group_parse(const char *s, size_t n)
{
    return parse_name(group_names, GROUP__COUNT, s, n);
}

int proto_vacancy_parse(const char *s, size_t n)
{
    return parse_name(vacancy_names, VAC__COUNT, s, n);
}

int proto_risk_parse(const char *s, size_t n)
{
    return parse_name(risk_names, RISK__COUNT, s, n);
}

int proto_role_parse(const char *s, size_t n)
{
    return parse_name(role_names, ROLE__COUNT, s, n);
}

int proto_decline_parse(const char *s, size_t n)
{
    return parse_name(decline_names, DECLINE__COUNT, s, n);
}

int proto_event_parse(const char *s, size_t n)
{
    return parse_name(event_names, EV__COUNT, s, n);
}

int proto_municipality_index(const char *code, size_t n)
{
    if (n != 4)
        return -1;
    unsigned lo = 0, hi = PROTO_MUNICIPALITIES;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        int c = memcmp(code, proto_municipality_codes[mid], 4);
        if (c == 0)
            return (int)mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

const char *proto_municipality_code(unsigned idx)
{
    return idx < PROTO_MUNICIPALITIES ? proto_municipality_codes[idx] : NULL;
}

bool proto_county_valid(const char *code, size_t n)
{
    if (n != 2)
        return false;
    for (unsigned i = 0; i < PROTO_COUNTIES; i++) {
        if (memcmp(code, proto_county_codes[i], 2) == 0)
            return true;
    }
    return false;
}

/* ---- Swedish practice: competences, operators, the basis of a child's decision ---------- */

static const char *const competence_names[COMP__COUNT] = {
    "hbv", "psychiatric", "npf", "intellectual_disability", "deaf", "interpreter"};
static const char *const operator_names[OPERATOR__COUNT] = {"ideell", "privat", "kommunal"};
static const char *const basis_names[BASIS__COUNT] = {"sol", "lag_2024_79", "lvu"};

NAME_FN(proto_competence_name, competence_names, enum proto_competence, COMP__COUNT)
NAME_FN(proto_operator_name, operator_names, enum proto_operator, OPERATOR__COUNT)
NAME_FN(proto_basis_name, basis_names, enum proto_basis, BASIS__COUNT)

int proto_competence_parse(const char *s, size_t n)
{
    return parse_name(competence_names, COMP__COUNT, s, n);
}

int proto_operator_parse(const char *s, size_t n)
{
    return parse_name(operator_names, OPERATOR__COUNT, s, n);
}

int proto_basis_parse(const char *s, size_t n)
{
    return parse_name(basis_names, BASIS__COUNT, s, n);
}

const char *proto_competence_choices(void)
{
    return "hbv, psychiatric, npf, intellectual_disability, deaf, interpreter";
}

const char *proto_operator_choices(void)
{
    return "ideell, privat, kommunal";
}

const char *proto_basis_choices(void)
{
    return "sol, lag_2024_79, lvu";
}

bool proto_date_valid(const char *s, size_t n)
{
    static const unsigned days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n != PROTO_DATE_LEN || s[4] != '-' || s[7] != '-')
        return false;
    unsigned v[3] = {0, 0, 0};
    static const unsigned start[3] = {0, 5, 8}, width[3] = {4, 2, 2};
    for (unsigned k = 0; k < 3; k++) {
        for (unsigned i = 0; i < width[k]; i++) {
            char c = s[start[k] + i];
            if (c < '0' || c > '9')
                return false;
            v[k] = v[k] * 10 + (unsigned)(c - '0');
        }
    }
    unsigned year = v[0], month = v[1], day = v[2];
    if (year < 2000 || year > 2099 || month < 1 || month > 12 || day < 1 || day > days[month - 1])
        return false;
    /* Every year from 2000 to 2099 divisible by 4 is a leap year (2000 is one too). */
    return !(month == 2 && day == 29 && year % 4 != 0);
}
