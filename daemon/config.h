/* Daemon configuration: a key table, a whole-file parse, validation, and the reload rules. */
#ifndef FRISTAD_CONFIG_H
#define FRISTAD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_PATH_MAX 1024

#define CONFIG_ONCALL_MAX    512u /* on-call ids in [oncall] */
#define CONFIG_ONCALL_ID_MAX 64u  /* as a certificate's CN may be */
#define CONFIG_MUN_WORDS     5u   /* 64-bit words of a set of the 290 municipalities */

/* One on-call agreement: the municipalities an on-call principal acts for. */
struct config_oncall {
    char id[CONFIG_ONCALL_ID_MAX + 1]; /* the on-call id, its certificate's CN */
    uint64_t muns[CONFIG_MUN_WORDS];   /* bit per municipality index (proto_municipality_index) */
};

/* What becomes of a closed hold or placement once its reference retention has passed. */
enum retention_mode {
    RETENTION_DELETE,  /* deleted: only counts remain */
    RETENTION_ARCHIVE, /* appended to the archive (archive.h), then deleted */
};

enum redis_mode {
    REDIS_MODE_SPAWN,    /* start a private redis-server in data_dir */
    REDIS_MODE_CONNECT,  /* use an existing server at redis_address */
    REDIS_MODE_SENTINEL, /* ask the Sentinels at redis_sentinels for the primary of master_name */
};

#define CONFIG_SENTINELS_MAX 16  /* Sentinel addresses in [redis] sentinels */
#define CONFIG_SECRET_MAX    256 /* bytes of a password, without its terminating NUL */

struct config {
    char path[CONFIG_PATH_MAX]; /* the file this was read from */

    char listen_host[256];
    unsigned listen_port;
    char data_dir[CONFIG_PATH_MAX];
    unsigned max_connections;
    unsigned max_connections_per_person;  /* of one person (tls.c: serialNumber or fingerprint) */
    unsigned role_reserve_percent;        /* of max_connections, kept for each role alone */
    unsigned idle_connections_per_person; /* a person's connections beyond these ... */
    int64_t extra_idle_timeout_ms;        /* ... are closed after this long idle */
    unsigned max_handshakes_per_address;  /* TLS handshakes in progress from one address */
    unsigned max_frame;
    int64_t handshake_timeout_ms;
    int64_t frame_timeout_ms;
    int64_t idle_timeout_ms;
    unsigned rate;           /* requests per second per principal */
    unsigned burst;          /* requests allowed above the rate at once */
    char health_listen[300]; /* "host:port" of the plain-text health port; empty: none */
    char health_host[256];   /* health_listen, parsed */
    unsigned health_port;

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
    char redis_sentinels[CONFIG_PATH_MAX]; /* "host:port,host:port,..." */
    char redis_master_name[64];
    char redis_password_file[CONFIG_PATH_MAX];     /* empty: no AUTH to Redis */
    char sentinel_password_file[CONFIG_PATH_MAX];  /* empty: no AUTH to the Sentinels */
    char redis_password[CONFIG_SECRET_MAX + 1];    /* read from redis_password_file */
    char sentinel_password[CONFIG_SECRET_MAX + 1]; /* read from sentinel_password_file */

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
    unsigned refusals_per_window; /* a person's refusals audited one by one per window ... */
    int64_t refusal_window_ms;    /* ... of this length; the rest counted into one entry */

    /* [oncall]: whom each on-call id acts for; an id not listed acts for none. Reloadable. */
    unsigned n_oncall;
    struct config_oncall oncall[CONFIG_ONCALL_MAX];

    int64_t escalate_after_ms;        /* a hold nobody answered: step 1, shelter and holder */
    int64_t escalate_oncall_after_ms; /* step 2: on-call and admin too */
    int64_t event_retention_ms;       /* the event log keeps events this long */
    unsigned event_max;               /* ...and at most about this many */
    int64_t heartbeat_ms;             /* a watcher hears from the daemon at least this often */
    unsigned max_watchers;            /* watching connections of one principal */
    char metrics_host[256];           /* empty: no metrics listener */
    unsigned metrics_port;
    int retention_mode;                /* enum retention_mode */
    char archive_dir[CONFIG_PATH_MAX]; /* archive mode: where the monthly files go */
    char web_host[256];                /* empty: no web listener (the page and its JSON API) */
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

/*
 * The Redis address the links connect to: the spawned server's socket, or [redis] address.
 * Empty in sentinel mode, where the Sentinels name it.
 */
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

/*
 * Splits [redis] sentinels: calls fn once per "host:port" item, in order. Returns the number of
 * items, or -1 (with the reason in err) when an item is not host:port or there are too many.
 */
int config_each_sentinel(const char *list, void (*fn)(const char *address, void *ud), void *ud,
                         char *err, size_t errlen) __attribute__((warn_unused_result));

/* Parses "250ms", "10s", "5m", "2h", "7d" or a bare number of seconds. -1 on error. */
int64_t config_parse_duration(const char *s);

#endif
