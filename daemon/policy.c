/*
 * Safety policy file. Besides syntax, a policy is checked for the mistakes that would make it
 * unsafe: every level must honour the referral's own exclusions, a higher risk level may never
 * exclude less or accept a lower protection level than a lower one, and excluding neighbours or
 * a county only makes sense together with home and the perpetrator's municipalities.
 */
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

static const struct {
    const char *name;
    unsigned bit;
} exclude_names[] = {
    {"listed", EXCL_LISTED},       {"home", EXCL_HOME},     {"perpetrator", EXCL_PERPETRATOR},
    {"bordering", EXCL_BORDERING}, {"county", EXCL_COUNTY},
};

struct parse_state {
    struct policy *p;
    bool seen_exclude[RISK__COUNT];
    bool seen_protection[RISK__COUNT];
    char err[256];
};

static int parse_exclude(const char *v, unsigned *out)
{
    char buf[256];
    if (strlen(v) >= sizeof buf)
        return -1;
    strcpy(buf, v);
    unsigned bits = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof exclude_names / sizeof exclude_names[0]; i++) {
            if (strcmp(tok, exclude_names[i].name) == 0)
                bit = exclude_names[i].bit;
        }
        if (!bit || (bits & bit))
            return -1;
        bits |= bit;
    }
    *out = bits;
    return 0;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    if (st->err[0])
        return 0;
    int risk = proto_risk_parse(section, strlen(section));
    if (risk < 0) {
        snprintf(st->err, sizeof st->err,
                 "unknown section [%s]; sections are low, moderate, high, severe", section);
        return 0;
    }
    if (strcmp(name, "exclude") == 0) {
        if (st->seen_exclude[risk] || parse_exclude(value, &st->p->level[risk].exclude) < 0) {
            snprintf(st->err, sizeof st->err,
                     "[%s] exclude must be set once, to a list of distinct words from: listed, "
                     "home, perpetrator, bordering, county",
                     section);
            return 0;
        }
        st->seen_exclude[risk] = true;
        return 1;
    }
    if (strcmp(name, "min_protection") == 0) {
        if (st->seen_protection[risk] || strlen(value) != 1 || value[0] < '1' || value[0] > '3') {
            snprintf(st->err, sizeof st->err, "[%s] min_protection must be set once, to 1, 2 or 3",
                     section);
            return 0;
        }
        st->p->level[risk].min_protection = (unsigned)(value[0] - '0');
        st->seen_protection[risk] = true;
        return 1;
    }
    snprintf(st->err, sizeof st->err, "unknown key [%s] %s", section, name);
    return 0;
}

static int check(const struct parse_state *st, char *why, size_t cap)
{
    const struct policy *p = st->p;
    for (unsigned r = 0; r < RISK__COUNT; r++) {
        const char *name = proto_risk_name(r);
        if (!st->seen_exclude[r] || !st->seen_protection[r]) {
            snprintf(why, cap, "[%s] needs both exclude and min_protection", name);
            return -1;
        }
        unsigned ex = p->level[r].exclude;
        if (!(ex & EXCL_LISTED)) {
            snprintf(why, cap,
                     "[%s] must exclude 'listed': the referral's own exclusions always hold", name);
            return -1;
        }
        if ((ex & (EXCL_BORDERING | EXCL_COUNTY)) &&
            (ex & (EXCL_HOME | EXCL_PERPETRATOR)) != (EXCL_HOME | EXCL_PERPETRATOR)) {
            snprintf(why, cap, "[%s] excludes bordering or county but not home and perpetrator",
                     name);
            return -1;
        }
        if (r > 0) {
            unsigned lower = p->level[r - 1].exclude;
            if ((ex & lower) != lower) {
                snprintf(why, cap, "[%s] excludes less than [%s]", name, proto_risk_name(r - 1));
                return -1;
            }
            if (p->level[r].min_protection < p->level[r - 1].min_protection) {
                snprintf(why, cap, "[%s] accepts a lower protection level than [%s]", name,
                         proto_risk_name(r - 1));
                return -1;
            }
        }
    }
    return 0;
}

int policy_load(struct policy *p, const char *path, char *err, size_t errlen)
{
    struct parse_state st = {.p = p};
    memset(p, 0, sizeof *p);
    int rc = ini_parse(path, on_key, &st);
    char why[256];
    if (rc == -1) {
        snprintf(err, errlen, "%s: cannot open the safety policy", path);
        return -1;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s:%d: %s", path, rc, st.err[0] ? st.err : "syntax error");
        return -1;
    }
    if (check(&st, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        return -1;
    }
    return 0;
}

static void add_code(struct muni_set *s, const char *code)
{
    int i = proto_municipality_index(code, strlen(code));
    if (i >= 0)
        muni_set_add(s, (unsigned)i);
}

void policy_excluded(const struct policy *p, const struct geo *g, const struct proto_args *a,
                     struct muni_set *out)
{
    unsigned ex = p->level[a->risk < RISK__COUNT ? a->risk : RISK_SEVERE].exclude;
    struct muni_set anchors = {{0}};

    memset(out, 0, sizeof *out);
    if (ex & EXCL_LISTED) {
        for (unsigned i = 0; i < a->n_exclude && i < PROTO_MAX_EXCLUDE; i++)
            add_code(out, a->exclude[i]);
    }
    add_code(&anchors, a->home);
    for (unsigned i = 0; i < a->n_perpetrator && i < PROTO_MAX_PERP; i++)
        add_code(&anchors, a->perpetrator[i]);

    if (ex & EXCL_HOME)
        add_code(out, a->home);
    if (ex & EXCL_PERPETRATOR) {
        for (unsigned i = 0; i < a->n_perpetrator && i < PROTO_MAX_PERP; i++)
            add_code(out, a->perpetrator[i]);
    }
    for (unsigned m = 0; m < PROTO_MUNICIPALITIES; m++) {
        if (!muni_set_has(&anchors, m))
            continue;
        if (ex & EXCL_BORDERING)
            muni_set_union(out, &g->borders[m]);
        if (ex & EXCL_COUNTY)
            muni_set_union(out, &g->county[m]);
    }
}
