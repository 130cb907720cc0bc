/*
 * Configuration file. Every key is a row in one table with its type, bounds, default and
 * whether SIGHUP may change it. A file is parsed whole into a fresh struct and validated; only
 * a complete, valid struct is ever used, so a bad reload leaves the running configuration as it
 * was.
 */
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fristad/proto.h>

#include "config.h"
#include "log.h"

_Static_assert(CONFIG_MUN_WORDS * 64 >= PROTO_MUNICIPALITIES, "a set holds every municipality");

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
    K_RETENTION_MODE,
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
    {"server", "max_connections_per_person", K_UINT, F(max_connections_per_person), 1, 100000, true,
     "16"},
    {"server", "role_reserve_percent", K_UINT, F(role_reserve_percent), 0, 24, true, "6"},
    {"server", "idle_connections_per_person", K_UINT, F(idle_connections_per_person), 1, 100000,
     true, "4"},
    {"server", "extra_idle_timeout", K_DURATION, F(extra_idle_timeout_ms), SEC, DAY, true, "30s"},
    {"server", "max_handshakes_per_address", K_UINT, F(max_handshakes_per_address), 1, 100000, true,
     "16"},
    {"server", "max_frame", K_UINT, F(max_frame), 1024, 16 * 1024 * 1024, true, "65536"},
    {"server", "handshake_timeout", K_DURATION, F(handshake_timeout_ms), 100, 10 * MIN, true,
     "10s"},
    {"server", "frame_timeout", K_DURATION, F(frame_timeout_ms), 100, 10 * MIN, true, "10s"},
    {"server", "idle_timeout", K_DURATION, F(idle_timeout_ms), SEC, DAY, true, "300s"},
    {"server", "rate", K_UINT, F(rate), 1, 10000000, true, "20"},
    {"server", "burst", K_UINT, F(burst), 1, 10000000, true, "40"},
    {"server", "health_listen", K_STR, F(health_listen), 0, 0, false, ""},
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
    {"redis", "sentinels", K_STR, F(redis_sentinels), 0, 0, false, ""},
    {"redis", "master_name", K_STR, F(redis_master_name), 0, 0, false, ""},
    {"redis", "password_file", K_PATH, F(redis_password_file), 0, 0, false, ""},
    {"redis", "sentinel_password_file", K_PATH, F(sentinel_password_file), 0, 0, false, ""},
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
    {"audit", "refusals_per_window", K_UINT, F(refusals_per_window), 1, 100000, true, "10"},
    {"audit", "refusal_window", K_DURATION, F(refusal_window_ms), SEC, HOUR, true, "60s"},
    {"holds", "escalate_after", K_DURATION, F(escalate_after_ms), SEC, DAY, true, "15m"},
    {"holds", "escalate_oncall_after", K_DURATION, F(escalate_oncall_after_ms), SEC, DAY, true,
     "30m"},
    {"events", "retention", K_DURATION, F(event_retention_ms), MIN, 30LL * DAY, true, "24h"},
    {"events", "max_length", K_UINT, F(event_max), 1000, 100000000, true, "1000000"},
    {"events", "heartbeat", K_DURATION, F(heartbeat_ms), 100, 10 * MIN, true, "20s"},
    {"events", "max_watchers", K_UINT, F(max_watchers), 1, 100000, true, "16"},
    {"metrics", "listen", K_LISTEN, F(metrics_host), 0, PORT(metrics_port), false,
     "127.0.0.1:7421"},
    {"retention", "mode", K_RETENTION_MODE, F(retention_mode), 0, 0, true, "delete"},
    {"retention", "archive_dir", K_PATH, F(archive_dir), 0, 0, true, ""},
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
    else if (cfg->redis_mode == REDIS_MODE_SENTINEL)
        snprintf(out, cap, "%s", "");
    else
        snprintf(out, cap, "%s", cfg->redis_address);
}

/* "host:port" or "[v6]:port" with a port from lo to 65535; host (without brackets) to host. */
static bool parse_hostport(const char *v, char *host, size_t hostcap, unsigned *port, long lo)
{
    const char *colon = strrchr(v, ':');
    char *end;
    if (!colon || colon == v)
        return false;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || p < lo || p > 65535)
        return false;
    size_t hl = (size_t)(colon - v);
    const char *h = v;
    if (hl >= 2 && v[0] == '[' && v[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostcap)
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (unsigned)p;
    return true;
}

int config_each_sentinel(const char *list, void (*fn)(const char *address, void *ud), void *ud,
                         char *err, size_t errlen)
{
    int n = 0;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, ", \t");
        char item[300], host[256];
        unsigned port;
        if (len >= sizeof item) {
            snprintf(err, errlen, "[redis] sentinels: an address is too long");
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (!parse_hostport(item, host, sizeof host, &port, 1)) {
            snprintf(err, errlen, "[redis] sentinels: '%.200s' is not HOST:PORT", item);
            return -1;
        }
        if (++n > CONFIG_SENTINELS_MAX) {
            snprintf(err, errlen, "[redis] sentinels: at most %d addresses", CONFIG_SENTINELS_MAX);
            return -1;
        }
        if (fn)
            fn(item, ud);
        p += len;
    }
    return n;
}

/*
 * A password is read from a file that only the daemon's user may read, so that it is in no
 * configuration file that is shared, copied into tickets or readable by every local user. The
 * first line is the password; surrounding blanks and the line end are not part of it.
 */
static int read_secret(const char *key, const char *path, char *out, size_t cap, char *err,
                       size_t errlen)
{
    char buf[CONFIG_SECRET_MAX + 4];
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "[redis] %s %s: cannot open: %s", key, path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        snprintf(err, errlen, "[redis] %s %s: not a regular file", key, path);
        return -1;
    }
    if ((sb.st_mode & (S_IRWXG | S_IRWXO)) != 0 || sb.st_uid != geteuid()) {
        close(fd);
        snprintf(err, errlen,
                 "[redis] %s %s: must belong to the user fristadd runs as and be readable by "
                 "nobody else (chmod 600)",
                 key, path);
        return -1;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "[redis] %s %s: cannot read: %s", key, path, strerror(errno));
        return -1;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    char *start = buf;
    while (*start == ' ' || *start == '\t')
        start++;
    size_t len = strlen(start);
    while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t'))
        start[--len] = '\0';
    if (len == 0 || len >= cap || (size_t)n >= sizeof buf - 1) {
        snprintf(err, errlen,
                 "[redis] %s %s: must hold a password of 1 to %zu bytes on its first line", key,
                 path, cap - 1);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)start[i] < 0x20 || start[i] == 0x7f) {
            snprintf(err, errlen, "[redis] %s %s: the password holds a control character", key,
                     path);
            return -1;
        }
    }
    memcpy(out, start, len + 1);
    return 0;
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

static int apply_retention_mode(struct parse_state *st, const char *v)
{
    if (strcmp(v, "delete") == 0)
        st->cfg->retention_mode = RETENTION_DELETE;
    else if (strcmp(v, "archive") == 0)
        st->cfg->retention_mode = RETENTION_ARCHIVE;
    else {
        snprintf(st->err, sizeof st->err, "must be delete or archive");
        return -1;
    }
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
        else if (strcmp(v, "sentinel") == 0)
            st->cfg->redis_mode = REDIS_MODE_SENTINEL;
        else {
            snprintf(st->err, sizeof st->err, "must be spawn, connect or sentinel");
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
    case K_RETENTION_MODE:
        return apply_retention_mode(st, v);
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

/*
 * One line of [oncall]: ID = CODES, where CODES are municipality codes (0180) and county codes
 * (01: every municipality of the county), separated by commas or spaces. An id given again,
 * or a continuation line, adds to its area.
 */
static int oncall_key(struct parse_state *st, const char *id, const char *value)
{
    struct config *c = st->cfg;
    size_t n = strlen(id);
    bool ok = n > 0 && n <= CONFIG_ONCALL_ID_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = id[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             (i > 0 && (ch == '-' || ch == '_' || ch == '.'));
    }
    if (!ok) {
        snprintf(st->err, sizeof st->err,
                 "[oncall] %.80s: an on-call id is 1 to %u letters, digits and . _ - (its "
                 "certificate's CN)",
                 id, CONFIG_ONCALL_ID_MAX);
        return 0;
    }
    struct config_oncall *o = NULL;
    for (unsigned i = 0; i < c->n_oncall && !o; i++) {
        if (strcmp(c->oncall[i].id, id) == 0)
            o = &c->oncall[i];
    }
    if (!o) {
        if (c->n_oncall == CONFIG_ONCALL_MAX) {
            snprintf(st->err, sizeof st->err, "[oncall] has more than %u on-call ids",
                     CONFIG_ONCALL_MAX);
            return 0;
        }
        o = &c->oncall[c->n_oncall++];
        memset(o, 0, sizeof *o);
        memcpy(o->id, id, n + 1);
    }
    for (const char *p = value; *p;) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        size_t len = 0;
        while (p[len] && p[len] != ',' && p[len] != ' ' && p[len] != '\t')
            len++;
        if (len == 0)
            break;
        int mun = len == 4 ? proto_municipality_index(p, len) : -1;
        if (mun >= 0) {
            o->muns[mun / 64] |= UINT64_C(1) << (mun % 64);
        } else if (len == 2 && proto_county_valid(p, len)) {
            for (unsigned m = 0; m < PROTO_MUNICIPALITIES; m++) {
                if (memcmp(proto_municipality_code(m), p, 2) == 0)
                    o->muns[m / 64] |= UINT64_C(1) << (m % 64);
            }
        } else {
            snprintf(st->err, sizeof st->err,
                     "[oncall] %.80s: '%.*s' is neither a municipality code (0180) nor a county "
                     "code (01)",
                     id, (int)(len > 40 ? 40 : len), p);
            return 0;
        }
        p += len;
    }
    return 1;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    if (st->err[0])
        return 0; /* keep the first error */
    if (strcmp(section, "oncall") == 0)
        return oncall_key(st, name, value);
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

static int validate_retention(const struct config *c, char *err, size_t errlen)
{
    if (c->retention_mode == RETENTION_ARCHIVE && !c->archive_dir[0]) {
        snprintf(err, errlen, "[retention] archive_dir is required with mode = archive");
        return -1;
    }
    return 0;
}

static bool plain_name(const char *s)
{
    for (const char *p = s; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    }
    return s[0] != '\0';
}

/* The keys of the Redis modes: each mode's own are required, the others' refused. */
static int validate_redis(struct config *c, char *err, size_t errlen)
{
    bool sentinel = c->redis_mode == REDIS_MODE_SENTINEL;
    if (c->redis_mode == REDIS_MODE_CONNECT && !c->redis_address[0]) {
        snprintf(err, errlen, "[redis] address is required with mode = connect");
        return -1;
    }
    if (sentinel && c->redis_address[0]) {
        snprintf(err, errlen,
                 "[redis] address does not apply with mode = sentinel: the Sentinels name the "
                 "primary");
        return -1;
    }
    if (!sentinel &&
        (c->redis_sentinels[0] || c->redis_master_name[0] || c->sentinel_password_file[0])) {
        snprintf(err, errlen,
                 "[redis] sentinels, master_name and sentinel_password_file apply only with "
                 "mode = sentinel");
        return -1;
    }
    if (c->redis_mode == REDIS_MODE_SPAWN && c->redis_password_file[0]) {
        snprintf(err, errlen,
                 "[redis] password_file does not apply with mode = spawn: the spawned server "
                 "listens only on a private unix socket");
        return -1;
    }
    if (sentinel) {
        int n = config_each_sentinel(c->redis_sentinels, NULL, NULL, err, errlen);
        if (n < 0)
            return -1;
        if (n == 0) {
            snprintf(err, errlen, "[redis] sentinels is required with mode = sentinel");
            return -1;
        }
        if (!plain_name(c->redis_master_name)) {
            snprintf(err, errlen,
                     "[redis] master_name is required with mode = sentinel and may hold only "
                     "letters, digits and . _ -");
            return -1;
        }
    }
    if (c->redis_password_file[0] &&
        read_secret("password_file", c->redis_password_file, c->redis_password,
                    sizeof c->redis_password, err, errlen) < 0)
        return -1;
    if (c->sentinel_password_file[0] &&
        read_secret("sentinel_password_file", c->sentinel_password_file, c->sentinel_password,
                    sizeof c->sentinel_password, err, errlen) < 0)
        return -1;
    return 0;
}

static int validate(struct config *c, char *err, size_t errlen)
{
    if (!c->tls_cert[0] || !c->tls_key[0] || !c->tls_ca[0]) {
        snprintf(err, errlen, "[tls] cert, key and ca are required");
        return -1;
    }
    if (validate_redis(c, err, errlen) < 0)
        return -1;
    if (c->redis_mode == REDIS_MODE_SPAWN && !c->data_dir[0]) {
        snprintf(err, errlen, "[server] data_dir is required with mode = spawn");
        return -1;
    }
    if (!c->redis_namespace[0]) {
        snprintf(err, errlen, "[redis] namespace must not be empty");
        return -1;
    }
    if (!plain_name(c->redis_namespace)) {
        snprintf(err, errlen, "[redis] namespace may hold only letters, digits and . _ -");
        return -1;
    }
    if (c->burst < c->rate) {
        snprintf(err, errlen, "[server] burst must be at least rate");
        return -1;
    }
    if (c->health_listen[0] && !parse_hostport(c->health_listen, c->health_host,
                                               sizeof c->health_host, &c->health_port, 0)) {
        snprintf(err, errlen, "[server] health_listen must be HOST:PORT, such as 127.0.0.1:7423");
        return -1;
    }
    _Static_assert(ROLE__COUNT * 24 < 100, "the roles' reserves leave a shared part");
    return validate_retention(c, err, errlen);
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
    /* Values derived from fixed keys: read once at start, like the keys themselves. */
    if (strcmp(old->redis_password, next->redis_password) != 0 ||
        strcmp(old->sentinel_password, next->sentinel_password) != 0)
        log_warning("a password file changed; the new password needs a restart, keeping the "
                    "running one");
    memcpy(next->redis_password, old->redis_password, sizeof next->redis_password);
    memcpy(next->sentinel_password, old->sentinel_password, sizeof next->sentinel_password);
    memcpy(next->health_host, old->health_host, sizeof next->health_host);
    next->health_port = old->health_port;
}
