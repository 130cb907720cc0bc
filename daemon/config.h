/* Daemon configuration: a key table, a whole-file parse, validation, and the reload rules. */
#ifndef FRISTAD_CONFIG_H
#define FRISTAD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_PATH_MAX 1024

enum redis_mode {
    REDIS_MODE_SPAWN,   /* start a private redis-server in data_dir */
    REDIS_MODE_CONNECT, /* use an existing server at redis_address */
};

struct config {
    char path[CONFIG_PATH_MAX]; /* the file this was read from */

    char listen_host[256];
    unsigned listen_port;
    char data_dir[CONFIG_PATH_MAX];
    unsigned max_connections;
    unsigned max_connections_per_principal;
    unsigned max_frame;
    int64_t handshake_timeout_ms;
    int64_t frame_timeout_ms;
    int64_t idle_timeout_ms;
    unsigned rate;  /* requests per second per principal */
    unsigned burst; /* requests allowed above the rate at once */

    char tls_cert[CONFIG_PATH_MAX];
    char tls_key[CONFIG_PATH_MAX];
    char tls_ca[CONFIG_PATH_MAX];
    char tls_crl[CONFIG_PATH_MAX]; /* empty: no revocation list */

    int redis_mode; /* enum redis_mode */
    char redis_address[CONFIG_PATH_MAX];
    char redis_namespace[64];
    char redis_server[CONFIG_PATH_MAX];
    unsigned wait_replicas;
    int64_t wait_timeout_ms;

    int log_level;  /* enum log_level */
    int log_target; /* enum log_target */

    char municipalities[CONFIG_PATH_MAX];
    char adjacency[CONFIG_PATH_MAX];
    char policy[CONFIG_PATH_MAX];

    int64_t hold_ttl_ms;
    int64_t arrival_ttl_ms;  /* an accepted hold's expiry when the shelter names no arrival time */
    unsigned max_open_holds; /* held or accepted at once, per principal */
    int64_t stale_after_ms;
    int64_t reference_retention_ms;
    int64_t sweep_interval_ms;
    int64_t disk_purge_delay_ms; /* 0: never rewrite the AOF after deleting references */

    int64_t audit_retention_ms;

    int64_t escalate_after_ms;        /* a hold nobody answered: step 1, shelter and holder */
    int64_t escalate_oncall_after_ms; /* step 2: on-call and admin too */
    int64_t event_retention_ms;       /* the event log keeps events this long */
    unsigned event_max;               /* ...and at most about this many */
    int64_t heartbeat_ms;             /* a watcher hears from the daemon at least this often */
    unsigned max_watchers;            /* watching connections of one principal */
    char metrics_host[256];           /* empty: no metrics listener */
    unsigned metrics_port;
    char web_host[256]; /* empty: no web listener (the page and its JSON API) */
    unsigned web_port;
};

/*
 * Reads and validates a whole file into `out` (defaults first). Returns 0, or -1 with a
 * message naming the file, line and key in `err`.
 */
int config_load(const char *path, struct config *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * For a reload: copies every key that cannot change at run time from `old` into `next`,
 * logging each one that differed ("needs a restart").
 */
void config_keep_fixed(const struct config *old, struct config *next);

/*
 * Where the reference data and the default policy are installed ([data] keys default to files
 * in it): the build's data directory, found below the staging root when the binary runs from a
 * staged installation.
 */
const char *config_data_dir(void);

/* The Redis address the links connect to: the spawned server's socket, or [redis] address. */
void config_redis_address(const struct config *cfg, char *out, size_t cap);

/* One row of the key table, for the documentation and its tests. */
struct config_key_info {
    const char *section;
    const char *name;
    const char *def; /* the default as written in a file; for [data] keys, in the data dir */
    bool reload;     /* SIGHUP applies a change */
};

/* The i-th key of the table; false past the last. */
bool config_key_at(size_t i, struct config_key_info *out);

/* Parses "250ms", "10s", "5m", "2h", "7d" or a bare number of seconds. -1 on error. */
int64_t config_parse_duration(const char *s);

#endif
