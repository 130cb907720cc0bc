/*
 * The page's files, built into the daemon (web/gen_assets.py makes web_assets.c from web/ and
 * the municipality list), so that what a browser is served always matches the daemon.
 */
#ifndef FRISTAD_WEB_ASSETS_H
#define FRISTAD_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
    const char *path; /* "/index.html" */
    const char *type; /* Content-Type */
    const char *etag; /* a quoted hash of the content */
    const unsigned char *data;
    size_t len;
};

/* The file served at `path`, or NULL. */
const struct web_asset *web_asset_find(const char *path);

#endif
