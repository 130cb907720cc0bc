/*
 * Where to connect and with which certificate: flags, then environment, then a config file.
 * The certificate is a PEM pair (cert, key) or one PKCS#12 file (p12), whichever comes first.
 */
#ifndef FRISTAD_CLIENT_SETTINGS_H
#define FRISTAD_CLIENT_SETTINGS_H

#include <stdbool.h>

#include "client.h"

#define SETTINGS_DEFAULT_PORT    "7420"
#define SETTINGS_DEFAULT_TIMEOUT 15000 /* ms, for connect + handshake + reply */

/* What the command line gave; NULL where it gave nothing. Borrowed from argv. */
struct settings_flags {
    const char *server;
    const char *cert;
    const char *key;
    const char *p12;
    const char *ca;
    const char *servername;
    const char *config;
    int timeout_ms; /* 0: not given */
};

/* The resolved settings; every string is owned and freed by settings_free. */
struct settings {
    char *host;       /* name or IP literal, without brackets */
    char *port;       /* decimal */
    char *server;     /* as given, for messages */
    char *cert;       /* client certificate chain, PEM; NULL with p12 */
    char *key;        /* its private key, PEM; NULL with p12 */
    char *p12;        /* certificate, key and chain in one PKCS#12 file; NULL with cert */
    char *ca;         /* CA certificates the server's certificate must chain to */
    char *servername; /* name checked in the server's certificate; NULL: the host */
    int timeout_ms;
};

/*
 * Resolves every setting. Returns 0, or -1 with a usage error (something missing, a config
 * file that cannot be read or parsed, a malformed HOST:PORT). s needs settings_free either way.
 */
int settings_load(struct settings *s, const struct settings_flags *flags,
                  struct client_error *err) CLIENT_WARN_UNUSED;
void settings_free(struct settings *s);

#endif
