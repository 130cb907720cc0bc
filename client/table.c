/*
 * Tables for human output. Everything shown comes from the server, so every cell is cleaned
 * first: a shelter name with an escape sequence must not be able to reprogram the social
 * worker's terminal. Widths count code points, which is right for the Latin, Arabic and other
 * scripts our names use; double-width scripts would need wcwidth and a locale.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fristad/proto.h>

#include "table.h"

struct table {
    unsigned ncols;
    unsigned nrows;
    unsigned cap_rows;
    bool right[TABLE_MAX_COLS]; /* right-aligned columns */
    char **cells;               /* (nrows + 1) * ncols: the header row first */
};

size_t table_clean(char *dst, size_t cap, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t o = 0, chars = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        size_t len = proto_utf8_next((const char *)s + i, n - i, &cp);
        bool bad = len == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
                   cp == 0x2028 || cp == 0x2029;
        size_t out_len = bad ? 1 : len;
        if (o + out_len >= cap)
            break;
        if (bad) {
            dst[o++] = '?';
        } else {
            memcpy(dst + o, s + i, len);
            o += len;
        }
        i += len ? len : 1;
        chars++;
    }
    dst[o] = '\0';
    return chars;
}

size_t table_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++) {
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    }
    return w;
}

struct table *table_new(unsigned ncols, const char *const *headers)
{
    if (ncols == 0 || ncols > TABLE_MAX_COLS)
        return NULL;
    struct table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    t->cap_rows = 16;
    t->cells = calloc((size_t)(t->cap_rows + 1) * ncols, sizeof *t->cells);
    if (!t->cells) {
        free(t);
        return NULL;
    }
    for (unsigned c = 0; c < ncols; c++) {
        t->cells[c] = strdup(headers[c]);
        if (!t->cells[c]) {
            table_free(t);
            return NULL;
        }
    }
    return t;
}

void table_free(struct table *t)
{
    if (!t)
        return;
    size_t total = (size_t)(t->nrows + 1) * t->ncols;
    for (size_t i = 0; i < total; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

void table_align_right(struct table *t, unsigned col)
{
    if (col < t->ncols)
        t->right[col] = true;
}

unsigned table_rows(const struct table *t)
{
    return t->nrows;
}

int table_add(struct table *t, const char *const *cells)
{
    if (t->nrows == t->cap_rows) {
        if (t->cap_rows > UINT32_MAX / 4)
            return -1;
        unsigned cap = t->cap_rows * 2;
        char **grown = realloc(t->cells, (size_t)(cap + 1) * t->ncols * sizeof *grown);
        if (!grown)
            return -1;
        t->cells = grown;
        t->cap_rows = cap;
    }
    char **row = t->cells + (size_t)(t->nrows + 1) * t->ncols;
    for (unsigned c = 0; c < t->ncols; c++) {
        const char *s = cells[c] ? cells[c] : "-";
        size_t n = strlen(s);
        row[c] = malloc(n + 4);
        if (!row[c]) {
            while (c-- > 0)
                free(row[c]);
            return -1;
        }
        table_clean(row[c], n + 4, s, n);
    }
    t->nrows++;
    return 0;
}

void table_print(const struct table *t, FILE *out)
{
    size_t width[TABLE_MAX_COLS] = {0};
    for (unsigned r = 0; r <= t->nrows; r++) {
        for (unsigned c = 0; c < t->ncols; c++) {
            size_t w = table_width(t->cells[(size_t)r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (unsigned r = 0; r <= t->nrows; r++) {
        for (unsigned c = 0; c < t->ncols; c++) {
            const char *s = t->cells[(size_t)r * t->ncols + c];
            size_t pad = width[c] - table_width(s);
            bool last = c + 1 == t->ncols;
            if (c > 0)
                fputs("  ", out);
            if (t->right[c])
                fprintf(out, "%*s", (int)pad, "");
            fputs(s, out);
            /* No trailing blanks: pad a left-aligned cell only when another follows. */
            if (!t->right[c] && !last)
                fprintf(out, "%*s", (int)pad, "");
        }
        fputc('\n', out);
    }
}
