/*
 * Geography: the 290 municipalities with county and centroid, and which municipalities border
 * each other. Loaded once at start from conf/; the safety policy and the ranking read it.
 */
#ifndef FRISTAD_GEO_H
#define FRISTAD_GEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fristad/proto.h>

#define GEO_WORDS ((PROTO_MUNICIPALITIES + 63) / 64)

/* A set of municipalities, by index (proto_municipality_index). */
struct muni_set {
    uint64_t w[GEO_WORDS];
};

static inline void muni_set_add(struct muni_set *s, unsigned i)
{
    s->w[i / 64] |= UINT64_C(1) << (i % 64);
}

static inline bool muni_set_has(const struct muni_set *s, unsigned i)
{
    return (s->w[i / 64] >> (i % 64)) & 1u;
}

static inline void muni_set_union(struct muni_set *dst, const struct muni_set *src)
{
    for (unsigned k = 0; k < GEO_WORDS; k++)
        dst->w[k] |= src->w[k];
}

struct geo_municipality {
    char code[5];
    char name[64];
    char county[3];
    char county_name[64];
    double lat, lon; /* WGS84 degrees: centroid of the land area */
};

struct geo {
    struct geo_municipality m[PROTO_MUNICIPALITIES];      /* by index */
    struct muni_set borders[PROTO_MUNICIPALITIES];        /* neighbours of each */
    struct muni_set county[PROTO_MUNICIPALITIES];         /* municipalities of the same county */
    float km[PROTO_MUNICIPALITIES][PROTO_MUNICIPALITIES]; /* centroid distances, for ranking */
    /* From each municipality, every municipality nearest first (ties by index): the order in
     * which a search walks them. */
    uint16_t near[PROTO_MUNICIPALITIES][PROTO_MUNICIPALITIES];
    /* The rank of km[a][b] among the distinct distances from a: equal distances, equal rank. A
     * search ranks by it as it would by the distance itself. */
    uint16_t dist_rank[PROTO_MUNICIPALITIES][PROTO_MUNICIPALITIES];
};

/* Loads and checks both files. Returns 0, or -1 with "file:line: what" in err. */
int geo_load(struct geo *g, const char *municipalities_csv, const char *adjacency_csv, char *err,
             size_t errlen) __attribute__((warn_unused_result));

/* Great-circle distance between two municipalities' centroids, computed at load. */
static inline double geo_distance_km(const struct geo *g, unsigned a, unsigned b)
{
    return g->km[a][b];
}

#endif
