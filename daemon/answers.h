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

/* Packs {"shelter": SHELTER} for the shelter of a write's snapshot, as the index now has it. */
op_shape_fn answer_shelter_written;

#endif
