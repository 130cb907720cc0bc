/* On-call areas; see oncall.h. */
#include <stdio.h>
#include <string.h>

#include <fristad/proto.h>

#include "oncall.h"

const struct config_oncall *oncall_area(const struct config *cfg, const char *id)
{
    for (unsigned i = 0; i < cfg->n_oncall; i++) {
        if (strcmp(cfg->oncall[i].id, id) == 0)
            return &cfg->oncall[i];
    }
    return NULL;
}

bool oncall_serves(const struct config *cfg, const char *id, const char *municipality)
{
    const struct config_oncall *o = oncall_area(cfg, id);
    int m = municipality ? proto_municipality_index(municipality, strlen(municipality)) : -1;
    return o && m >= 0 && (o->muns[m / 64] >> (m % 64) & 1);
}

int oncall_area_text(const struct config *cfg, const char *id, char *out, size_t cap)
{
    const struct config_oncall *o = oncall_area(cfg, id);
    size_t len = 0;
    if (cap == 0)
        return -1;
    out[0] = '\0';
    for (unsigned m = 0; o && m < PROTO_MUNICIPALITIES; m++) {
        if (!(o->muns[m / 64] >> (m % 64) & 1))
            continue;
        int n = snprintf(out + len, cap - len, "%s%s", len ? "," : "", proto_municipality_code(m));
        if (n < 0 || (size_t)n >= cap - len)
            return -1;
        len += (size_t)n;
    }
    return 0;
}
