/*
 * On-call areas: an on-call principal (socialjour) acts for the municipalities of its
 * agreement, and for no other. The [oncall] section of the configuration lists them; an
 * on-call id that is not listed acts for none. Holding, releasing and listing holds and
 * placements ask this module, and so must anything else that shows an on-call principal
 * records of a municipality (the change events of `watch`: see oncall_serves).
 */
#ifndef FRISTAD_ONCALL_H
#define FRISTAD_ONCALL_H

#include <stdbool.h>
#include <stddef.h>

#include <fristad/proto.h>

#include "config.h"

/* The agreement of an on-call id; NULL when [oncall] does not list it. */
const struct config_oncall *oncall_area(const struct config *cfg, const char *id);

/*
 * May the on-call principal `id` see and act on records of `municipality` (a 4-digit code)?
 * The one answer for holds, releases and listings, and the hook a stream of change events
 * (watch) must ask for every event's municipality before it sends the event to on-call.
 */
bool oncall_serves(const struct config *cfg, const char *id, const char *municipality);

/*
 * The area as the store takes it: comma-separated codes in code order, "" for none. Returns
 * 0, or -1 when it does not fit (cap of 290 * 5 bytes always does).
 */
int oncall_area_text(const struct config *cfg, const char *id, char *out, size_t cap);

#define ONCALL_AREA_TEXT_MAX (PROTO_MUNICIPALITIES * 5)

#endif
