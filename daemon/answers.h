/*
 * Answers from the in-memory index: whoami, shelter.show, shelter.list, free and search. They
 * never touch Redis: a search at 3 a.m. must not wait for anything. Each is the `answer` of its
 * row in the op table (ops.c); the shelter view is also the shape of every registry and
 * vacancy write's reply.
 */
#ifndef FRISTAD_ANSWERS_H
#define FRISTAD_ANSWERS_H

#include "ops.h"

op_answer_fn answer_whoami;
op_answer_fn answer_shelter_show;
op_answer_fn answer_shelter_list;
op_answer_fn answer_free;
op_answer_fn answer_search;

/*
 * Listings (shelter.list, free, directory) come a page at a time, so that no reply outgrows
 * what a connection may leave unsent: a page holds LISTING_PAGE shelters (free: whole shelters
 * until LISTING_PAGE units) and, when more follow, "next": the id of its last shelter, which
 * the next request names in 'after'. Between pages the listing may change; a shelter is listed
 * once as long as its municipality stays the same.
 */
#define LISTING_PAGE 1000

/*
 * The shelters a listing shows (not retired, seen by the principal, in the request's area), by
 * municipality then id, in *list (to be freed); the page starts at (*list)[*start], after the
 * request's 'after'. not_found when 'after' names no shelter the principal sees.
 */
enum proto_err answers_listing(const struct op_ctx *x, const struct idx_shelter ***list,
                               unsigned *n, unsigned *start, struct proto_error *err);
/* Packs "next" when the page ended at end < n. */
int answers_pack_next(msgpack_packer *pk, const struct idx_shelter *const *list, unsigned end,
                      unsigned n);

/* Packs {"shelter": SHELTER} for the shelter of a write's snapshot, as the index now has it. */
op_shape_fn answer_shelter_written;

#endif
