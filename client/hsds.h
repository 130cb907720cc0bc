/* The directory as Open Referral HSDS 3.0 JSON (hsds.c). */
#ifndef FRISTAD_CLIENT_HSDS_H
#define FRISTAD_CLIENT_HSDS_H

#include <stdio.h>

#include <fristad/proto.h>

#include "client.h"

/* Writes the reply of `directory` as one HSDS page of services. Returns 0, or -1 for a reply
 * of another shape. */
int hsds_write(FILE *out, const msgpack_object *directory) CLIENT_WARN_UNUSED;

#endif
