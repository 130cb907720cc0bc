/* What every client module uses: the error a failed step reports. */
#include <stdio.h>

#include "client.h"

int client_fail(struct client_error *e, enum client_status status, const char *code,
                const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    snprintf(e->code, sizeof e->code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}
