/*
 * Reference data loader. The files come from ../conf (see conf/README.md for their sources).
 * A file that is missing, has the wrong columns, an unknown or duplicate code, a county that
 * does not match its code, or a coordinate outside Sweden stops the daemon at start: a
 * geography with holes would make the safety policy exclude too little.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo.h"

#define MAX_FIELDS 12

/* Splits a CSV line without quoting (the reference files use none) in place. */
static unsigned split(char *line, char *fields[MAX_FIELDS])
{
    unsigned n = 0;
    char *p = line;
    size_t len = strlen(p);
    while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
        p[--len] = '\0';
    for (;;) {
        if (n == MAX_FIELDS)
            return MAX_FIELDS + 1;
        fields[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

static int copy_field(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n == 0 || n >= cap)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

static int parse_coord(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

/*
 * Opens a reference file and reads its header line, which must be `header` (exactly, or as a
 * prefix when later columns are informative only). NULL with the reason in err.
 */
static FILE *open_csv(const char *path, const char *header, bool exact, char *err, size_t errlen)
{
    char line[512];
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (!fgets(line, sizeof line, f)) {
        snprintf(err, errlen, "%s: empty file", path);
    } else {
        line[strcspn(line, "\r\n")] = '\0';
        if (exact ? strcmp(line, header) == 0 : strncmp(line, header, strlen(header)) == 0)
            return f;
        snprintf(err, errlen, "%s:1: header must %s %s", path, exact ? "be" : "start", header);
    }
    fclose(f);
    return NULL;
}

static int load_municipalities(struct geo *g, const char *path, char *err, size_t errlen)
{
    FILE *f = open_csv(path, "kommunkod,name,county_code,county_name,lat,lon,coord_type", true, err,
                       errlen);
    if (!f)
        return -1;
    char line[512];
    char *fl[MAX_FIELDS];
    unsigned lineno = 1, count = 0;
    bool seen[PROTO_MUNICIPALITIES] = {false};
    int rc = -1;

    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (split(line, fl) != 7) {
            snprintf(err, errlen, "%s:%u: expected 7 comma-separated fields", path, lineno);
            goto out;
        }
        int idx = proto_municipality_index(fl[0], strlen(fl[0]));
        if (idx < 0) {
            snprintf(err, errlen, "%s:%u: '%s' is not one of the 290 municipality codes", path,
                     lineno, fl[0]);
            goto out;
        }
        if (seen[idx]) {
            snprintf(err, errlen, "%s:%u: municipality %s appears twice", path, lineno, fl[0]);
            goto out;
        }
        struct geo_municipality *m = &g->m[idx];
        memcpy(m->code, fl[0], 5);
        if (copy_field(m->name, sizeof m->name, fl[1]) < 0 ||
            copy_field(m->county_name, sizeof m->county_name, fl[3]) < 0) {
            snprintf(err, errlen, "%s:%u: empty or over-long name", path, lineno);
            goto out;
        }
        if (strlen(fl[2]) != 2 || memcmp(fl[2], fl[0], 2) != 0) {
            snprintf(err, errlen, "%s:%u: county code must be the first two digits of %s", path,
                     lineno, fl[0]);
            goto out;
        }
        memcpy(m->county, fl[2], 3);
        if (parse_coord(fl[4], 55.0, 69.1, &m->lat) < 0 ||
            parse_coord(fl[5], 10.9, 24.2, &m->lon) < 0) {
            snprintf(err, errlen,
                     "%s:%u: coordinates must lie in Sweden (lat 55-69.1, lon 10.9-24.2)", path,
                     lineno);
            goto out;
        }
        seen[idx] = true;
        count++;
    }
    if (count != PROTO_MUNICIPALITIES) {
        snprintf(err, errlen, "%s: %u municipalities, expected all %u", path, count,
                 PROTO_MUNICIPALITIES);
        goto out;
    }
    rc = 0;
out:
    fclose(f);
    return rc;
}

static int load_adjacency(struct geo *g, const char *path, char *err, size_t errlen)
{
    FILE *f = open_csv(path, "code_a,name_a,code_b,name_b,same_county,kind", false, err, errlen);
    if (!f)
        return -1;
    char line[512];
    char *fl[MAX_FIELDS];
    unsigned lineno = 1, pairs = 0;
    int rc = -1;

    while (fgets(line, sizeof line, f)) {
        lineno++;
        unsigned n = split(line, fl);
        if (n < 6 || n > MAX_FIELDS) {
            snprintf(err, errlen, "%s:%u: expected at least 6 comma-separated fields", path,
                     lineno);
            goto out;
        }
        int a = proto_municipality_index(fl[0], strlen(fl[0]));
        int b = proto_municipality_index(fl[2], strlen(fl[2]));
        if (a < 0 || b < 0 || a == b) {
            snprintf(err, errlen, "%s:%u: a pair needs two different valid municipality codes",
                     path, lineno);
            goto out;
        }
        if (strcmp(fl[5], "border") != 0 && strcmp(fl[5], "water") != 0) {
            snprintf(err, errlen, "%s:%u: kind must be border or water", path, lineno);
            goto out;
        }
        muni_set_add(&g->borders[a], (unsigned)b);
        muni_set_add(&g->borders[b], (unsigned)a);
        pairs++;
    }
    if (pairs == 0) {
        snprintf(err, errlen, "%s: no neighbouring pairs", path);
        goto out;
    }
    rc = 0;
out:
    fclose(f);
    return rc;
}

static double haversine_km(const struct geo *g, unsigned a, unsigned b);

/* The walking order of each municipality (an insertion sort: 290 short lists, once at start)
 * and the rank of each distance in it. */
static void order_by_distance(struct geo *g)
{
    for (unsigned h = 0; h < PROTO_MUNICIPALITIES; h++) {
        const float *km = g->km[h];
        uint16_t *near = g->near[h];
        for (unsigned i = 0; i < PROTO_MUNICIPALITIES; i++) {
            unsigned k = i;
            while (k > 0 && km[near[k - 1]] > km[i]) {
                near[k] = near[k - 1];
                k--;
            }
            near[k] = (uint16_t)i;
        }
        unsigned rank = 0;
        for (unsigned i = 0; i < PROTO_MUNICIPALITIES; i++) {
            if (i > 0 && km[near[i]] != km[near[i - 1]])
                rank++;
            g->dist_rank[h][near[i]] = (uint16_t)rank;
        }
    }
}

int geo_load(struct geo *g, const char *municipalities_csv, const char *adjacency_csv, char *err,
             size_t errlen)
{
    memset(g, 0, sizeof *g);
    if (load_municipalities(g, municipalities_csv, err, errlen) < 0 ||
        load_adjacency(g, adjacency_csv, err, errlen) < 0)
        return -1;
    for (unsigned i = 0; i < PROTO_MUNICIPALITIES; i++) {
        for (unsigned j = 0; j < PROTO_MUNICIPALITIES; j++) {
            if (memcmp(g->m[i].county, g->m[j].county, 2) == 0)
                muni_set_add(&g->county[i], j);
            g->km[i][j] = (float)haversine_km(g, i, j);
        }
    }
    order_by_distance(g);
    return 0;
}

static double haversine_km(const struct geo *g, unsigned a, unsigned b)
{
    const double r = 6371.0088; /* mean Earth radius */
    const double rad = M_PI / 180.0;
    double la1 = g->m[a].lat * rad, la2 = g->m[b].lat * rad;
    double dla = la2 - la1, dlo = (g->m[b].lon - g->m[a].lon) * rad;
    double h = sin(dla / 2) * sin(dla / 2) + cos(la1) * cos(la2) * sin(dlo / 2) * sin(dlo / 2);
    return 2 * r * asin(sqrt(h < 1 ? h : 1));
}
