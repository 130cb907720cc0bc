/* The public directory of shelters, for `fristad export hsds` (directory.c). */
#ifndef FRISTAD_DIRECTORY_H
#define FRISTAD_DIRECTORY_H

#include <stdbool.h>

#include "index.h"
#include "ops.h"

/* Whether a shelter's intake phone may stand in the public directory. */
bool directory_phone_public(const struct idx_shelter *s);

/* The answer of `directory`: {"phones_withheld", "shelters": [...]}, from the index. */
op_answer_fn answer_directory;

#endif
