/* Aligned text tables for people, and the text cleaning every server string goes through. */
#ifndef FRISTAD_CLIENT_TABLE_H
#define FRISTAD_CLIENT_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "client.h"

#define TABLE_MAX_COLS 16u

struct table;

/* A table with `ncols` columns (at most TABLE_MAX_COLS) and these headers; NULL when out of
 * memory. */
struct table *table_new(unsigned ncols, const char *const *headers);
void table_free(struct table *t);

/* Right-aligns column `col` (for numbers). */
void table_align_right(struct table *t, unsigned col);

/* Appends a row of ncols NUL-terminated cells, cleaned with table_clean. Returns 0 or -1. */
int table_add(struct table *t, const char *const *cells) CLIENT_WARN_UNUSED;

unsigned table_rows(const struct table *t);

/* Prints the header and the rows, columns separated by two spaces. */
void table_print(const struct table *t, FILE *out);

/*
 * Copies n bytes of s into dst (cap bytes, cap >= 4), always NUL-terminated, so that it is
 * safe to show on a terminal: control characters and invalid UTF-8 become '?', and a
 * truncated copy ends on a character boundary. Returns the number of characters copied.
 */
size_t table_clean(char *dst, size_t cap, const char *s, size_t n);

/* Characters (code points) of a UTF-8 string: the width we align by. */
size_t table_width(const char *s);

#endif
