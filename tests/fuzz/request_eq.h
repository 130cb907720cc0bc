/*
 * Field-by-field comparison of two decoded requests, shared by the unit tests and the fuzz
 * targets. Only fields marked present are compared: the others carry no meaning.
 */
#ifndef FRISTAD_TEST_REQUEST_EQ_H
#define FRISTAD_TEST_REQUEST_EQ_H

#include <string.h>

#include <fristad/proto.h>

/* NULL when a and b are equal, else the name of the first difference. */
static inline const char *request_diff(const struct proto_request *a, const struct proto_request *b)
{
    if (a->id != b->id)
        return "id";
    if (a->has_id != b->has_id)
        return "has_id";
    if (a->op != b->op)
        return "op";
    const struct proto_args *x = &a->args, *y = &b->args;
    if (x->present != y->present)
        return "present";
    for (unsigned f = 0; f < F__COUNT; f++) {
        if (!(x->present & PROTO_BIT(f)))
            continue;
        bool same = true;
        switch ((enum proto_field)f) {
        case F_SHELTER:
            same = strcmp(x->shelter, y->shelter) == 0;
            break;
        case F_UNIT:
            same = strcmp(x->unit, y->unit) == 0;
            break;
        case F_NAME:
            same = strcmp(x->name, y->name) == 0;
            break;
        case F_KIND:
            same = x->kind == y->kind;
            break;
        case F_MUNICIPALITY:
            same = strcmp(x->municipality, y->municipality) == 0;
            break;
        case F_PROTECTION:
            same = x->protection == y->protection;
            break;
        case F_PHONE:
            same = strcmp(x->phone, y->phone) == 0;
            break;
        case F_GROUPS:
            same = x->groups == y->groups;
            break;
        case F_MAX_CHILDREN:
            same = x->max_children == y->max_children;
            break;
        case F_BOYS_MAX_AGE:
            same = x->boys_max_age == y->boys_max_age;
            break;
        case F_PETS:
            same = x->pets == y->pets;
            break;
        case F_SUBSTANCE:
            same = x->substance == y->substance;
            break;
        case F_LANGUAGES:
            same = x->n_languages == y->n_languages && x->n_languages <= PROTO_MAX_LANGUAGES;
            for (unsigned i = 0; same && i < x->n_languages; i++)
                same = strcmp(x->languages[i], y->languages[i]) == 0;
            break;
        case F_BEDS:
            same = x->beds == y->beds;
            break;
        case F_ACCESSIBLE:
            same = x->accessible == y->accessible;
            break;
        case F_STATE:
            same = x->state == y->state;
            break;
        case F_COUNTY:
            same = strcmp(x->county, y->county) == 0;
            break;
        case F_HOME:
            same = strcmp(x->home, y->home) == 0;
            break;
        case F_RISK:
            same = x->risk == y->risk;
            break;
        case F_ADULTS:
            same = x->adults == y->adults;
            break;
        case F_CHILDREN:
            same = x->n_children == y->n_children && x->n_children <= PROTO_MAX_CHILDREN;
            for (unsigned i = 0; same && i < x->n_children; i++)
                same = x->children[i].age == y->children[i].age &&
                       x->children[i].sex == y->children[i].sex;
            break;
        case F_GROUP:
            same = x->group == y->group;
            break;
        case F_WHEELCHAIR:
            same = x->wheelchair == y->wheelchair;
            break;
        case F_LANGUAGE:
            same = strcmp(x->language, y->language) == 0;
            break;
        case F_PERPETRATOR:
            same = x->n_perpetrator == y->n_perpetrator && x->n_perpetrator <= PROTO_MAX_PERP;
            for (unsigned i = 0; same && i < x->n_perpetrator; i++)
                same = strcmp(x->perpetrator[i], y->perpetrator[i]) == 0;
            break;
        case F_EXCLUDE:
            same = x->n_exclude == y->n_exclude && x->n_exclude <= PROTO_MAX_EXCLUDE;
            for (unsigned i = 0; same && i < x->n_exclude; i++)
                same = strcmp(x->exclude[i], y->exclude[i]) == 0;
            break;
        case F_LIMIT:
            same = x->limit == y->limit;
            break;
        case F_REF:
            same = strcmp(x->ref, y->ref) == 0;
            break;
        case F_IDEMPOTENCY_KEY:
            same = strcmp(x->idempotency_key, y->idempotency_key) == 0;
            break;
        case F_HOLD:
            same = strcmp(x->hold, y->hold) == 0;
            break;
        case F_PLACEMENT:
            same = strcmp(x->placement, y->placement) == 0;
            break;
        case F_REASON:
            same = x->reason == y->reason;
            break;
        case F_NOTE:
            same = strcmp(x->note, y->note) == 0;
            break;
        case F_CALLBACK:
            same = strcmp(x->callback, y->callback) == 0;
            break;
        case F_ARRIVAL_BY:
            same = x->arrival_by == y->arrival_by;
            break;
        case F_ARRIVAL_AT:
            same = x->arrival_at == y->arrival_at;
            break;
        case F_INTAKE_HOURS:
            same = strcmp(x->intake_hours, y->intake_hours) == 0;
            break;
        case F_TYPES:
            same = x->types == y->types;
            break;
        case F_HOURS:
            same = x->hours == y->hours;
            break;
        case F_STANDING:
            same = strcmp(x->standing, y->standing) == 0;
            break;
        case F_FROM_MONTH:
            same = strcmp(x->from_month, y->from_month) == 0;
            break;
        case F_TO_MONTH:
            same = strcmp(x->to_month, y->to_month) == 0;
            break;
        case F_SINCE:
            same = x->since == y->since && x->since_is_seq == y->since_is_seq &&
                   x->since_seq == y->since_seq;
            break;
        case F_PRINCIPAL:
            same = strcmp(x->principal, y->principal) == 0;
            break;
        case F_COMPETENCES:
            same = x->competences == y->competences;
            break;
        case F_NEED:
            same = x->need == y->need;
            break;
        case F_OPERATOR:
            same = x->operator_ == y->operator_;
            break;
        case F_IVO_PERMIT:
            same = strcmp(x->ivo_permit, y->ivo_permit) == 0;
            break;
        case F_IVO_PERMIT_DATE:
            same = strcmp(x->ivo_permit_date, y->ivo_permit_date) == 0;
            break;
        case F_IVO_REGISTERED:
            same = x->ivo_registered == y->ivo_registered;
            break;
        case F_CHILD_BASIS:
            same = x->n_child_basis == y->n_child_basis && x->n_child_basis <= PROTO_MAX_CHILDREN;
            for (unsigned i = 0; same && i < x->n_child_basis; i++)
                same = x->child_basis[i] == y->child_basis[i];
            break;
        case F_PERSON:
            same = strcmp(x->person, y->person) == 0;
            break;
        case F_AFTER:
            same = strcmp(x->after, y->after) == 0;
            break;
        case F__COUNT:
            break;
        }
        if (!same)
            return proto_field_name((enum proto_field)f);
    }
    return NULL;
}

#endif
