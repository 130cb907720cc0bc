/*
 * Helpers shared by the unit tests of libfristad-proto (test_proto_*.c), one program per proto
 * module. Each of those programs is a single .c file that includes this header once.
 *
 * Data files are found under FRISTAD_SOURCE_ROOT (environment first, then the value meson
 * compiled in). Every input given to the library is copied into a heap block of its exact size,
 * so that a read past the end shows up under ASan and valgrind.
 */
#ifndef FRISTAD_TEST_PROTO_TEST_H
#define FRISTAD_TEST_PROTO_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fristad/proto.h>

#ifndef FRISTAD_SOURCE_ROOT
#define FRISTAD_SOURCE_ROOT "."
#endif

/*
 * Under -fsanitize=undefined, a report fails the test instead of scrolling by. Defined here, not
 * static, because the sanitizer runtime looks it up by name: one definition per test program.
 */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1";
}

static inline const char *source_root(void)
{
    const char *env = getenv("FRISTAD_SOURCE_ROOT");
    return env && *env ? env : FRISTAD_SOURCE_ROOT;
}

static inline char *read_file(const char *rel, size_t *size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", source_root(), rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (set FRISTAD_SOURCE_ROOT to the source tree)", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len >= 0);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    buf[len] = '\0';
    if (size)
        *size = (size_t)len;
    return buf;
}

static inline int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Exact-size heap copy of the bytes a hex string spells. */
static inline uint8_t *unhex(const char *hex, size_t *n)
{
    size_t len = strlen(hex);
    assert_int_equal(len % 2, 0);
    uint8_t *out = malloc(len / 2 ? len / 2 : 1);
    assert_non_null(out);
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            fail_msg("bad hex digit in \"%.40s\"", hex);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *n = len / 2;
    return out;
}

static inline uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *out = malloc(n ? n : 1);
    assert_non_null(out);
    if (n)
        memcpy(out, p, n);
    return out;
}

/* A tab-separated table: '#' lines are comments, the first other line names the columns. */
#define TSV_MAX_COLS 8
struct tsv {
    char *text;
    size_t rows;
    char *(*cell)[TSV_MAX_COLS];
};

static inline void tsv_load(struct tsv *t, const char *rel, const char *header, unsigned ncols)
{
    t->text = read_file(rel, NULL);
    size_t lines = 1;
    for (const char *c = t->text; *c; c++)
        lines += *c == '\n';
    t->cell = calloc(lines, sizeof *t->cell);
    assert_non_null(t->cell);
    t->rows = 0;
    bool seen_header = false;
    char *save = NULL;
    for (char *line = strtok_r(t->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        if (!seen_header) {
            if (strcmp(line, header) != 0)
                fail_msg("%s: header is \"%s\", expected \"%s\"", rel, line, header);
            seen_header = true;
            continue;
        }
        char **cols = t->cell[t->rows];
        unsigned n = 0;
        char *p = line;
        for (;;) {
            if (n == TSV_MAX_COLS)
                fail_msg("%s: too many columns", rel);
            cols[n++] = p;
            char *tab = strchr(p, '\t');
            if (!tab)
                break;
            *tab = '\0';
            p = tab + 1;
        }
        if (n != ncols)
            fail_msg("%s: row %zu has %u columns, expected %u", rel, t->rows + 1, n, ncols);
        t->rows++;
    }
    assert_true(seen_header);
}

static inline void tsv_free(struct tsv *t)
{
    free(t->cell);
    free(t->text);
}

struct buf {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

static inline void buf_init(struct buf *b)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

static inline void buf_free(struct buf *b)
{
    msgpack_sbuffer_destroy(&b->sb);
}

static inline enum proto_err code_of(const char *s)
{
    enum proto_err e = proto_err_from_code(s, strlen(s));
    if (e == PROTO_E__COUNT)
        fail_msg("unknown code '%s' in the table", s);
    return e;
}

#endif
