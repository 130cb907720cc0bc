/* The last search, remembered for "fristad hold N": see recall.c. */
#ifndef FRISTAD_CLIENT_RECALL_H
#define FRISTAD_CLIENT_RECALL_H

#include <fristad/proto.h>
#include <msgpack.h>

#include "client.h"
#include "settings.h"

/* After a search that succeeded: remembers its referral and results. Returns 0 or -1. */
int recall_save(const struct settings *s, const struct proto_args *search,
                const msgpack_object *result);

/*
 * Makes `hold` (which carries --ref and the like already) a hold of result n of the last
 * search made with these settings: its shelter, unit and the search's referral. Returns 0, or
 * -1 with a usage error saying to search again (none, too old, another certificate, no such
 * result).
 */
int recall_load(const struct settings *s, unsigned n, struct proto_request *hold,
                struct client_error *err) CLIENT_WARN_UNUSED;

/* Deletes the remembered search once it is too old to hold from (any run of the client). */
void recall_forget_stale(void);

#endif
