/*
 * Settings: the server address and the three certificate files, each taken from the first of
 * a flag, an environment variable or the [client] section of a config file. The file is
 * optional; it is read from --config, else $FRISTAD_CONFIG, else
 * $XDG_CONFIG_HOME/fristad/client.conf (~/.config/fristad/client.conf) when that exists.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "settings.h"

enum setting { S_SERVER, S_CERT, S_KEY, S_P12, S_CA, S_SERVERNAME, S__COUNT };

static const char *const setting_names[S__COUNT] = {"server", "cert", "key",
                                                    "p12",    "ca",   "servername"};
static const char *const setting_envs[S__COUNT] = {"FRISTAD_SERVER", "FRISTAD_CERT", "FRISTAD_KEY",
                                                   "FRISTAD_P12",    "FRISTAD_CA",   NULL};

/* What the config file said, and why it was refused if it was. */
struct file_values {
    char *value[S__COUNT];
    const char *dir; /* the file's directory, for relative paths; NULL: the working directory */
    size_t dir_len;
    char bad_key[64]; /* an unknown key in [client] */
    bool oom;
};

static char *join_path(const char *dir, size_t dir_len, const char *name)
{
    size_t n = strlen(name);
    char *p = malloc(dir_len + 1 + n + 1);
    if (!p)
        return NULL;
    memcpy(p, dir, dir_len);
    p[dir_len] = '/';
    memcpy(p + dir_len + 1, name, n + 1);
    return p;
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct file_values *fv = user;
    if (strcmp(section, "client") != 0)
        return 1; /* other sections belong to other programs sharing the file */
    int k = -1;
    for (int i = 0; i < S__COUNT; i++) {
        if (strcmp(name, setting_names[i]) == 0)
            k = i;
    }
    if (k < 0) {
        snprintf(fv->bad_key, sizeof fv->bad_key, "%s", name);
        return 0;
    }
    free(fv->value[k]);
    fv->value[k] = NULL;
    if (value[0] == '\0')
        return 1;
    bool is_path = k == S_CERT || k == S_KEY || k == S_P12 || k == S_CA;
    /* A relative path names a file beside the config file, wherever the client is run from. */
    if (is_path && value[0] != '/' && fv->dir)
        fv->value[k] = join_path(fv->dir, fv->dir_len, value);
    else
        fv->value[k] = strdup(value);
    if (!fv->value[k]) {
        fv->oom = true;
        return 0;
    }
    return 1;
}

/*
 * Sets *path to the config file to read (NULL for none) and *explicit_path to whether it
 * must exist. Returns 0 or -1 when out of memory.
 */
static int config_path(const struct settings_flags *flags, char **path, bool *explicit_path)
{
    const char *env = getenv("FRISTAD_CONFIG");
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    const char *base, *rest;

    *path = NULL;
    *explicit_path = true;
    if (flags->config || (env && env[0])) {
        *path = strdup(flags->config ? flags->config : env);
        return *path ? 0 : -1;
    }
    *explicit_path = false;
    if (xdg && xdg[0] == '/') {
        base = xdg;
        rest = "/fristad/client.conf";
    } else if (home && home[0]) {
        base = home;
        rest = "/.config/fristad/client.conf";
    } else {
        return 0;
    }
    size_t bn = strlen(base), rn = strlen(rest);
    *path = malloc(bn + rn + 1);
    if (!*path)
        return -1;
    memcpy(*path, base, bn);
    memcpy(*path + bn, rest, rn + 1);
    return 0;
}

static int read_file(const char *path, bool explicit_path, struct file_values *fv,
                     struct client_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!explicit_path && (errno == ENOENT || errno == ENOTDIR))
            return 0;
        return client_fail(err, CLIENT_USAGE, "usage", "cannot read the config file %s: %s", path,
                           strerror(errno));
    }
    const char *slash = strrchr(path, '/');
    if (slash) {
        fv->dir = path;
        fv->dir_len = (size_t)(slash - path); /* 0 for "/client.conf": join_path adds the '/' */
    }
    int rc = ini_parse_file(f, on_ini, fv);
    fclose(f);
    if (rc == 0)
        return 0;
    if (fv->oom || rc == -2)
        return client_fail(err, CLIENT_FAILED, "internal", "out of memory");
    if (fv->bad_key[0])
        return client_fail(err, CLIENT_USAGE, "usage",
                           "%s:%d: unknown key '%s' in [client]; the keys are server, cert, "
                           "key, p12, ca and servername",
                           path, rc, fv->bad_key);
    return client_fail(err, CLIENT_USAGE, "usage", "%s:%d: this line is not valid INI", path, rc);
}

/* Splits HOST:PORT, [IPV6]:PORT, HOST or [IPV6]; the port defaults to 7420. */
static int split_server(struct settings *s, struct client_error *err)
{
    const char *v = s->server;
    const char *host, *port = NULL;
    size_t host_len;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close || (close[1] != '\0' && close[1] != ':'))
            goto bad;
        host = v + 1;
        host_len = (size_t)(close - host);
        if (close[1] == ':')
            port = close + 2;
    } else {
        const char *colon = strchr(v, ':');
        if (colon && strchr(colon + 1, ':'))
            return client_fail(err, CLIENT_USAGE, "usage",
                               "write an IPv6 server address in brackets: [ADDRESS]:PORT");
        host = v;
        host_len = colon ? (size_t)(colon - v) : strlen(v);
        if (colon)
            port = colon + 1;
    }
    if (host_len == 0)
        goto bad;
    if (port) {
        size_t n = strlen(port);
        unsigned long p = 0;
        if (n == 0 || n > 5 || strspn(port, "0123456789") != n)
            goto bad;
        p = strtoul(port, NULL, 10);
        if (p == 0 || p > 65535)
            goto bad;
    }
    s->host = strndup(host, host_len);
    s->port = strdup(port ? port : SETTINGS_DEFAULT_PORT);
    if (!s->host || !s->port)
        return client_fail(err, CLIENT_FAILED, "internal", "out of memory");
    return 0;
bad:
    return client_fail(err, CLIENT_USAGE, "usage",
                       "the server must be given as HOST:PORT, such as fristad.example.se:7420");
}

/* Where setting k came from: 0 a flag, 1 the environment, 2 the file, 3 nowhere. */
static int certificate_level(const struct settings_flags *flags, const struct file_values *fv,
                             enum setting k)
{
    const char *flag = k == S_P12 ? flags->p12 : k == S_CERT ? flags->cert : flags->key;
    const char *env = getenv(setting_envs[k]);
    const char *other_env = k == S_CERT ? getenv(setting_envs[S_KEY]) : NULL;
    if (flag || (k == S_CERT && flags->key))
        return 0;
    if ((env && env[0]) || (other_env && other_env[0]))
        return 1;
    if (fv->value[k] || (k == S_CERT && fv->value[S_KEY]))
        return 2;
    return 3;
}

int settings_load(struct settings *s, const struct settings_flags *flags, struct client_error *err)
{
    const char *flag_values[S__COUNT] = {flags->server, flags->cert, flags->key,
                                         flags->p12,    flags->ca,   flags->servername};
    char *chosen[S__COUNT] = {NULL};
    bool server_from_file = false;
    struct file_values fv = {0};
    bool explicit_path = false;
    char *path = NULL;
    char missing[64] = "";
    int rc = 0;

    memset(s, 0, sizeof *s);
    if (config_path(flags, &path, &explicit_path) != 0) {
        rc = client_fail(err, CLIENT_FAILED, "internal", "out of memory");
        goto done;
    }
    if (path && (rc = read_file(path, explicit_path, &fv, err)) != 0)
        goto done;
    for (int k = 0; k < S__COUNT; k++) {
        const char *env = setting_envs[k] ? getenv(setting_envs[k]) : NULL;
        const char *v = flag_values[k];
        if (!v && env && env[0])
            v = env;
        if (!v && k == S_SERVERNAME && fv.value[S_SERVER] && !server_from_file)
            continue; /* the file's servername names the file's server, not another one */
        if (!v) {
            v = fv.value[k];
            if (k == S_SERVER && v)
                server_from_file = true;
        }
        if (v && !(chosen[k] = strdup(v))) {
            for (int i = 0; i < k; i++)
                free(chosen[i]);
            rc = client_fail(err, CLIENT_FAILED, "internal", "out of memory");
            goto done;
        }
    }
    s->server = chosen[S_SERVER];
    s->cert = chosen[S_CERT];
    s->key = chosen[S_KEY];
    s->p12 = chosen[S_P12];
    s->ca = chosen[S_CA];
    s->servername = chosen[S_SERVERNAME];
    s->timeout_ms = flags->timeout_ms > 0 ? flags->timeout_ms : SETTINGS_DEFAULT_TIMEOUT;

    /*
     * One certificate: a PKCS#12 file or a PEM pair. A pair given at a closer level (a flag
     * over the environment over the file) wins over a p12 file from further away, and the
     * other way round; given at the same level, both together are a mistake.
     */
    int cert_level = certificate_level(flags, &fv, S_CERT),
        p12_level = certificate_level(flags, &fv, S_P12);
    if (s->p12 && (s->cert || s->key)) {
        if (cert_level == p12_level) {
            rc = client_fail(err, CLIENT_USAGE, "usage",
                             "give a PKCS#12 file (p12) or a certificate and key (cert, key), "
                             "not both");
            goto done;
        }
        if (p12_level < cert_level) {
            free(s->cert);
            free(s->key);
            s->cert = s->key = NULL;
        } else {
            free(s->p12);
            s->p12 = NULL;
        }
    }

    int n_missing = 0;
    for (int k = 0; k < S_SERVERNAME; k++) {
        /* With a p12 file no pair is missing; without, the pair is what is named missing. */
        if (k == S_P12 || (s->p12 && (k == S_CERT || k == S_KEY)))
            continue;
        if (!chosen[k])
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s",
                     n_missing++ ? ", " : "", setting_names[k]);
    }
    if (n_missing > 0) {
        rc = client_fail(err, CLIENT_USAGE, "usage",
                         "missing %s: %s. Give each as a flag (--server HOST:PORT, --cert "
                         "FILE, --key FILE or --p12 FILE, --ca FILE), as an environment variable "
                         "(FRISTAD_SERVER, FRISTAD_CERT, FRISTAD_KEY or FRISTAD_P12, "
                         "FRISTAD_CA), or in the [client] section of a config file (--config "
                         "FILE, $FRISTAD_CONFIG or ~/.config/fristad/client.conf)",
                         n_missing > 1 ? "settings" : "setting", missing);
        goto done;
    }
    rc = split_server(s, err);
done:
    for (int k = 0; k < S__COUNT; k++)
        free(fv.value[k]);
    free(path);
    return rc;
}

void settings_free(struct settings *s)
{
    free(s->host);
    free(s->port);
    free(s->server);
    free(s->cert);
    free(s->key);
    free(s->p12);
    free(s->ca);
    free(s->servername);
    memset(s, 0, sizeof *s);
}
