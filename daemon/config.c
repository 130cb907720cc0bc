/*
 * Configuration file. Every key is a row in one table with its type, bounds, default and
 * whether SIGHUP may change it. A file is parsed whole into a fresh struct and validated; only
 * a complete, valid struct is ever used, so a bad reload leaves the running configuration as it
 * was.
 */
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

enum key_type {
    K_STR,      /* copied as is */
    K_PATH,     /* relative paths resolved against the config file's directory */
    K_DATA,     /* a K_PATH whose default lies in the data directory (config_data_dir) */
    K_UINT,     /* unsigned in [min, max] */
    K_DURATION, /* milliseconds in [min, max] */
    K_LISTEN,   /* host:port: the host into the field, the port into the unsigned at offset
                   `max`; min 0: may be empty (off) */
    K_REDIS_MODE,
    K_LOG_LEVEL,
    K_LOG_TARGET,
};

struct key_def {
    const char *section;
    const char *name;
    enum key_type type;
    size_t offset;
    size_t size; /* of the field, for strings */
    int64_t min, max;
    bool reload;
    const char *def;
};

#define F(field)    offsetof(struct config, field), sizeof(((struct config *)0)->field)
#define PORT(field) offsetof(struct config, field)
#define SEC         1000
#define MIN         (60 * SEC)
#define HOUR        (60 * MIN)
#define DAY         (24 * HOUR)

static const struct key_def keys[] = {
    {"server", "listen", K_LISTEN, F(listen_host), 1, PORT(listen_port), false, "127.0.0.1:7420"},
    {"server", "data_dir", K_PATH, F(data_dir), 0, 0, false, "/var/lib/fristad"},
    {"server", "max_connections", K_UINT, F(max_connections), 4, 100000, true, "256"},
    {"server", "max_connections_per_principal", K_UINT, F(max_connections_per_principal), 1, 100000,
     true, "32"},
    {"server", "max_frame", K_UINT, F(max_frame), 1024, 16 * 1024 * 1024, true, "65536"},
    {"server", "handshake_timeout", K_DURATION, F(handshake_timeout_ms), 100, 10 * MIN, true,
     "10s"},
    {"server", "frame_timeout", K_DURATION, F(frame_timeout_ms), 100, 10 * MIN, true, "10s"},
    {"server", "idle_timeout", K_DURATION, F(idle_timeout_ms), SEC, DAY, true, "300s"},
    {"server", "rate", K_UINT, F(rate), 1, 10000000, true, "20"},
    {"server", "burst", K_UINT, F(burst), 1, 10000000, true, "40"},
    {"tls", "cert", K_PATH, F(tls_cert), 0, 0, true, ""},
    {"tls", "key", K_PATH, F(tls_key), 0, 0, true, ""},
    {"tls", "ca", K_PATH, F(tls_ca), 0, 0, true, ""},
    {"tls", "crl", K_PATH, F(tls_crl), 0, 0, true, ""},
    {"redis", "mode", K_REDIS_MODE, F(redis_mode), 0, 0, false, "spawn"},
    {"redis", "address", K_STR, F(redis_address), 0, 0, false, ""},
    {"redis", "namespace", K_STR, F(redis_namespace), 0, 0, false, "fristad"},
    {"redis", "server", K_STR, F(redis_server), 0, 0, false, "redis-server"},
    {"redis", "wait_replicas", K_UINT, F(wait_replicas), 0, 16, true, "0"},
    {"redis", "wait_timeout", K_DURATION, F(wait_timeout_ms), 10, MIN, true, "500ms"},
    {"log", "level", K_LOG_LEVEL, F(log_level), 0, 0, true, "info"},
    {"log", "target", K_LOG_TARGET, F(log_target), 0, 0, true, "stderr"},
    {"data", "municipalities", K_DATA, F(municipalities), 0, 0, false, "municipalities.csv"},
    {"data", "adjacency", K_DATA, F(adjacency), 0, 0, false, "adjacency.csv"},
    {"data", "policy", K_DATA, F(policy), 0, 0, false, "policy.conf"},
    {"holds", "ttl", K_DURATION, F(hold_ttl_ms), SEC, 7 * DAY, true, "60m"},
    {"holds", "arrival_ttl", K_DURATION, F(arrival_ttl_ms), SEC, DAY, true, "6h"},
    {"holds", "max_open", K_UINT, F(max_open_holds), 1, 10000, true, "10"},
    {"holds", "stale_after", K_DURATION, F(stale_after_ms), SEC, 30LL * DAY, true, "24h"},
    {"holds", "reference_retention", K_DURATION, F(reference_retention_ms), 0, 365LL * DAY, true,
     "24h"},
    {"holds", "sweep_interval", K_DURATION, F(sweep_interval_ms), 50, MIN, true, "1s"},
    {"holds", "disk_purge_delay", K_DURATION, F(disk_purge_delay_ms), 0, DAY, true, "10s"},
    {"audit", "retention", K_DURATION, F(audit_retention_ms), DAY, 3650LL * DAY, true, "365d"},
    {"holds", "escalate_after", K_DURATION, F(escalate_after_ms), SEC, DAY, true, "15m"},
    {"holds", "escalate_oncall_after", K_DURATION, F(escalate_oncall_after_ms), SEC, DAY, true,
     "30m"},
    {"events", "retention", K_DURATION, F(event_retention_ms), MIN, 30LL * DAY, true, "24h"},
    {"events", "max_length", K_UINT, F(event_max), 1000, 100000000, true, "1000000"},
    {"events", "heartbeat", K_DURATION, F(heartbeat_ms), 100, 10 * MIN, true, "20s"},
    {"events", "max_watchers", K_UINT, F(max_watchers), 1, 100000, true, "16"},
    {"metrics", "listen", K_LISTEN, F(metrics_host), 0, PORT(metrics_port), false,
     "127.0.0.1:7421"},
    {"web", "listen", K_LISTEN, F(web_host), 0, PORT(web_port), false, ""},
};

#define NKEYS (sizeof keys / sizeof keys[0])

bool config_key_at(size_t i, struct config_key_info *out)
{
    if (i >= NKEYS)
        return false;
    *out = (struct config_key_info){keys[i].section, keys[i].name, keys[i].def, keys[i].reload};
    return true;
}

void config_redis_address(const struct config *cfg, char *out, size_t cap)
{
    if (cfg->redis_mode == REDIS_MODE_SPAWN)
        snprintf(out, cap, "unix:%.*s/redis.sock", (int)(cap > 24 ? cap - 24 : 0), cfg->data_dir);
    else
        snprintf(out, cap, "%s", cfg->redis_address);
}

int64_t config_parse_duration(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    double mult = 1000;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60e3;
    else if (strcmp(end, "h") == 0)
        mult = 3600e3;
    else if (strcmp(end, "d") == 0)
        mult = 86400e3;
    else
        return -1;
    double ms = v * mult;
    if (ms > 9e15)
        return -1;
    return (int64_t)(ms + 0.5);
}

/*
 * The data directory as installed (FRISTAD_DATADIR), or, when this binary runs from a staged
 * copy of the installation (meson install --destdir STAGE), the same path below STAGE: the
 * binary then lives in STAGE followed by FRISTAD_SBINDIR, and its data beside it.
 */
const char *config_data_dir(void)
{
    static char dir[CONFIG_PATH_MAX];
    if (dir[0])
        return dir;
    snprintf(dir, sizeof dir, "%s", FRISTAD_DATADIR);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return dir;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    size_t sbin = strlen(FRISTAD_SBINDIR);
    if (!slash)
        return dir;
    *slash = '\0';
    size_t len = strlen(exe);
    if (len <= sbin || strcmp(exe + len - sbin, FRISTAD_SBINDIR) != 0)
        return dir;
    char staged[CONFIG_PATH_MAX];
    struct stat st;
    if ((size_t)snprintf(staged, sizeof staged, "%.*s%s", (int)(len - sbin), exe, FRISTAD_DATADIR) <
            sizeof staged &&
        stat(staged, &st) == 0 && S_ISDIR(st.st_mode))
        memcpy(dir, staged, sizeof dir);
    return dir;
}

struct parse_state {
    struct config *cfg;
    bool defaults; /* applying the table's defaults, not the file */
    char dir[CONFIG_PATH_MAX];
    char err[512];
    bool seen[NKEYS];
};

static int set_string(char *dst, size_t cap, const char *v)
{
    size_t n = strlen(v);
    if (n >= cap)
        return -1;
    memcpy(dst, v, n + 1);
    return 0;
}

static int apply(struct parse_state *st, const struct key_def *k, const char *v)
{
    char *field = (char *)st->cfg + k->offset;
    switch (k->type) {
    case K_STR:
        if (set_string(field, k->size, v) < 0) {
            snprintf(st->err, sizeof st->err, "value too long");
            return -1;
        }
        return 0;
    case K_DATA:
        if (st->defaults) {
            if ((size_t)snprintf(field, k->size, "%s/%s", config_data_dir(), v) >= k->size)
                goto too_long;
            return 0;
        }
        /* A value from the file is a path like any other. */
        __attribute__((fallthrough));
    case K_PATH:
        if (v[0] == '\0' || v[0] == '/') {
            if (set_string(field, k->size, v) < 0)
                goto too_long;
        } else if ((size_t)snprintf(field, k->size, "%s/%s", st->dir, v) >= k->size) {
            goto too_long;
        }
        return 0;
    case K_UINT: {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || *end || end == v || n < k->min || n > k->max) {
            snprintf(st->err, sizeof st->err, "must be an integer from %lld to %lld",
                     (long long)k->min, (long long)k->max);
            return -1;
        }
        *(unsigned *)(void *)field = (unsigned)n;
        return 0;
    }
    case K_DURATION: {
        int64_t ms = config_parse_duration(v);
        if (ms < k->min || ms > k->max) {
            snprintf(st->err, sizeof st->err,
                     "must be a duration from %lld ms to %lld ms, such as 30s, 5m, 2h or 7d",
                     (long long)k->min, (long long)k->max);
            return -1;
        }
        *(int64_t *)(void *)field = ms;
        return 0;
    }
    case K_LISTEN: {
        const char *colon = strrchr(v, ':');
        char *end;
        unsigned *port_field = (unsigned *)(void *)((char *)st->cfg + k->max);
        if (v[0] == '\0' && k->min == 0) { /* off */
            field[0] = '\0';
            *port_field = 0;
            return 0;
        }
        if (!colon || colon == v || (size_t)(colon - v) >= k->size)
            goto bad_listen;
        errno = 0;
        long port = strtol(colon + 1, &end, 10);
        if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
            goto bad_listen;
        /* "[::1]:7420": the brackets only delimit an IPv6 address. */
        size_t hl = (size_t)(colon - v);
        const char *h = v;
        if (hl >= 2 && v[0] == '[' && v[hl - 1] == ']') {
            h++;
            hl -= 2;
        }
        memcpy(field, h, hl);
        field[hl] = '\0';
        *port_field = (unsigned)port;
        return 0;
    bad_listen:
        snprintf(st->err, sizeof st->err, "must be HOST:PORT, such as %s%s", k->def,
                 k->min == 0 ? ", or empty for none" : "");
        return -1;
    }
    case K_REDIS_MODE:
        if (strcmp(v, "spawn") == 0)
            st->cfg->redis_mode = REDIS_MODE_SPAWN;
        else if (strcmp(v, "connect") == 0)
            st->cfg->redis_mode = REDIS_MODE_CONNECT;
        else {
            snprintf(st->err, sizeof st->err, "must be spawn or connect");
            return -1;
        }
        return 0;
    case K_LOG_LEVEL: {
        int l = log_level_parse(v);
        if (l < 0) {
            snprintf(st->err, sizeof st->err, "must be error, warning, notice, info or debug");
            return -1;
        }
        st->cfg->log_level = l;
        return 0;
    }
    case K_LOG_TARGET:
        if (strcmp(v, "stderr") == 0)
            st->cfg->log_target = LOG_TARGET_STDERR;
        else if (strcmp(v, "syslog") == 0)
            st->cfg->log_target = LOG_TARGET_SYSLOG;
        else {
            snprintf(st->err, sizeof st->err, "must be stderr or syslog");
            return -1;
        }
        return 0;
    }
    return -1;
too_long:
    snprintf(st->err, sizeof st->err, "path too long");
    return -1;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    if (st->err[0])
        return 0; /* keep the first error */
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(keys[i].section, section) != 0 || strcmp(keys[i].name, name) != 0)
            continue;
        if (st->seen[i]) {
            snprintf(st->err, sizeof st->err, "[%s] %s is set twice", section, name);
            return 0;
        }
        st->seen[i] = true;
        char why[sizeof st->err];
        if (apply(st, &keys[i], value) < 0) {
            memcpy(why, st->err, sizeof why);
            snprintf(st->err, sizeof st->err, "[%s] %s %.200s", section, name, why);
            return 0;
        }
        return 1;
    }
    snprintf(st->err, sizeof st->err, "unknown key [%s] %s", section, name);
    return 0;
}

static int validate(const struct config *c, char *err, size_t errlen)
{
    if (!c->tls_cert[0] || !c->tls_key[0] || !c->tls_ca[0]) {
        snprintf(err, errlen, "[tls] cert, key and ca are required");
        return -1;
    }
    if (c->redis_mode == REDIS_MODE_CONNECT && !c->redis_address[0]) {
        snprintf(err, errlen, "[redis] address is required with mode = connect");
        return -1;
    }
    if (c->redis_mode == REDIS_MODE_SPAWN && !c->data_dir[0]) {
        snprintf(err, errlen, "[server] data_dir is required with mode = spawn");
        return -1;
    }
    for (const char *p = c->redis_namespace; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.')) {
            snprintf(err, errlen, "[redis] namespace may hold only letters, digits and . _ -");
            return -1;
        }
    }
    if (!c->redis_namespace[0]) {
        snprintf(err, errlen, "[redis] namespace must not be empty");
        return -1;
    }
    if (c->burst < c->rate) {
        snprintf(err, errlen, "[server] burst must be at least rate");
        return -1;
    }
    return 0;
}

int config_load(const char *path, struct config *out, char *err, size_t errlen)
{
    struct parse_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memset(out, 0, sizeof *out);
    st->cfg = out;
    if (set_string(out->path, sizeof out->path, path) < 0) {
        snprintf(err, errlen, "%s: path too long", path);
        free(st);
        return -1;
    }
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(st->dir, sizeof st->dir, "%.*s", (int)(slash - path), path);
    else
        snprintf(st->dir, sizeof st->dir, ".");
    if (slash == path)
        snprintf(st->dir, sizeof st->dir, "/");

    st->defaults = true;
    for (size_t i = 0; i < NKEYS; i++) {
        if (apply(st, &keys[i], keys[i].def) < 0) {
            snprintf(err, errlen, "default of [%s] %s is invalid", keys[i].section, keys[i].name);
            free(st);
            return -1;
        }
    }
    st->defaults = false;
    int rc = ini_parse(path, on_key, st);
    int result = -1;
    if (rc == -1)
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    else if (rc == -2)
        snprintf(err, errlen, "%s: out of memory", path);
    else if (rc > 0)
        snprintf(err, errlen, "%s:%d: %s", path, rc, st->err[0] ? st->err : "syntax error");
    else if (validate(out, st->err, sizeof st->err) < 0)
        snprintf(err, errlen, "%s: %s", path, st->err);
    else
        result = 0;
    free(st);
    return result;
}

void config_keep_fixed(const struct config *old, struct config *next)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].reload)
            continue;
        const char *a = (const char *)old + keys[i].offset;
        char *b = (char *)next + keys[i].offset;
        bool differ;
        const unsigned *old_port = NULL;
        unsigned *next_port = NULL;
        if (keys[i].type == K_LISTEN) {
            old_port = (const unsigned *)(const void *)((const char *)old + keys[i].max);
            next_port = (unsigned *)(void *)((char *)next + keys[i].max);
            differ = strcmp(a, b) != 0 || *old_port != *next_port;
        } else if (keys[i].type == K_STR || keys[i].type == K_PATH || keys[i].type == K_DATA) {
            differ = strcmp(a, b) != 0;
        } else {
            differ = memcmp(a, b, keys[i].size) != 0;
        }
        if (!differ)
            continue;
        log_warning("[%s] %s changed in the file; it needs a restart, keeping the running value",
                    keys[i].section, keys[i].name);
        if (old_port && next_port)
            *next_port = *old_port;
        memcpy(b, a, keys[i].size);
    }
}
