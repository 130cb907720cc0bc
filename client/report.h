/* The follow-up (fristad followup, or stats with a follow-up option) as a table for people or as
 * CSV (report.c). */
#ifndef FRISTAD_CLIENT_REPORT_H
#define FRISTAD_CLIENT_REPORT_H

#include <stdio.h>

#include <fristad/proto.h>

#include "client.h"

/* Measures by month, in blocks of six months. Returns 0, or -1 for a reply of another
 * shape or when out of memory. */
int report_followup_table(FILE *out, const msgpack_object *result) CLIENT_WARN_UNUSED;
/* A header line, then one line per month: the area's code, the month, every measure. */
int report_followup_csv(FILE *out, const msgpack_object *result) CLIENT_WARN_UNUSED;

#endif
