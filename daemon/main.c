/*
 * fristadd: start-up, signals, reload, shutdown. Only start-up may exit the process; from the
 * moment the loop runs, every failure is handled where it happens.
 *
 * Start order: configuration, reference data and policy (any error stops here with a message),
 * TLS, the spawned Redis, the store and event links, the listener, the metrics listener. The
 * "ready" line is logged once the index has been loaded from Redis, because before that a
 * search could only answer "unavailable".
 *
 * Under systemd (Type=notify) the service manager hears the same moments through sd_notify:
 * READY=1 with the ready line, RELOADING=1 and READY=1 around a SIGHUP reload, STOPPING=1 on
 * SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/err.h>
#ifdef FRISTAD_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "archive.h"
#include "clock.h"
#include "conn.h"
#include "daemon.h"
#include "dispatch.h"
#include "events.h"
#include "exporter.h"
#include "feed.h"
#include "health.h"
#include "housekeeping.h"
#include "intake.h"
#include "ledger.h"
#include "ratelimit.h"
#include "refusals.h"
#include "listener.h"
#include "log.h"
#include "sentinel.h"
#include "spawn.h"
#include "standing.h"
#include "store.h"
#include "tls.h"
#include "watch.h"
#include "web.h"

#define DRAIN_DEADLINE_MS 10000

#ifndef FRISTAD_SYSCONFDIR
#define FRISTAD_SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG FRISTAD_SYSCONFDIR "/fristad/fristadd.conf"

static struct event *sig_term, *sig_int, *sig_hup, *sig_chld, *drain_timer;
static int64_t drain_started; /* monotonic */

/* Tells the service manager, when there is one, what the daemon is doing (sd_notify(3)). */
static void notify(const char *state)
{
#ifdef FRISTAD_HAVE_SYSTEMD
    int rc = sd_notify(0, state);
    if (rc < 0)
        log_warning("sd_notify: %s", strerror(-rc));
#else
    (void)state;
#endif
}

/* The index has been loaded (events hook): the daemon can answer, and says so once. */
static void on_index_loaded(void *ud)
{
    struct daemon *d = ud;
    if (d->ready_logged || !d->listener)
        return;
    d->ready_logged = true;
    log_notice("ready: listening on %s", listener_address(d->listener));
    char state[400];
    snprintf(state, sizeof state, "READY=1\nSTATUS=ready: listening on %s",
             listener_address(d->listener));
    notify(state);
}

/*
 * The store is ready after a (re)connect (store hook): a wanted index load can start, and the
 * writes acknowledged before the reconnect are looked up, in case the store lost any, and the
 * standing searches are read again.
 */
static void on_store_ready(void *ud)
{
    struct daemon *d = ud;
    if (d->events)
        events_store_ready(d->events);
    if (d->standing)
        standing_load(d->standing);
    ledger_verify(d->ledger);
}

/* An event of the log (feed hook): to the watchers, and to the standing searches. */
static void on_log_event(void *ud, const struct event *e)
{
    struct daemon *d = ud;
    watch_deliver(d->watch, e);
    standing_on_event(d->standing, e);
}

/* A shelter changed in the index (events hook): freed units may fit a standing search. */
static void on_shelter_changed(void *ud, const struct idx_shelter *before,
                               const struct idx_shelter *after)
{
    struct daemon *d = ud;
    standing_shelter_changed(d->standing, before, after);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fristadd [-c FILE] [--check] [--version]\n"
            "       fristadd --verify-archive FILE\n"
            "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
            "      --check        read and check the configuration, then exit\n"
            "      --version      print the version and exit\n"
            "      --verify-archive FILE\n"
            "                     check the hash chain of an archive file and name the first\n"
            "                     line that breaks it (exit 0 intact, 1 broken, 2 unreadable)\n");
}

/* Reloads the configuration, or keeps the running one; either way the daemon is ready again. */
static void reload_config(struct daemon *d)
{
    char err[512];
    struct config *next = malloc(sizeof *next);
    if (!next) {
        log_error("reload failed: out of memory");
        return;
    }
    if (config_load(d->cfg->path, next, err, sizeof err) < 0) {
        log_error("reload failed: %s; keeping the running configuration", err);
        free(next);
        return;
    }
    config_keep_fixed(d->cfg, next);
    SSL_CTX *tls = tls_server_ctx_new(next, err, sizeof err);
    if (!tls) {
        log_error("reload failed: %s; keeping the running configuration", err);
        free(next);
        return;
    }
    SSL_CTX_free(d->tls); /* live connections hold their own reference */
    d->tls = tls;
    free(d->cfg);
    d->cfg = next;
    log_setup((enum log_level)d->cfg->log_level, (enum log_target)d->cfg->log_target);
    housekeeping_arm(d->housekeeping);
    watch_arm(d->watch);
    conn_after_reload(d);
    web_after_reload(d->web);
    log_notice("configuration reloaded");
}

static void reload(struct daemon *d)
{
    char state[64];
    snprintf(state, sizeof state, "RELOADING=1\nMONOTONIC_USEC=%lld", (long long)clock_mono_us());
    notify(state);
    reload_config(d);
    notify(d->ready_logged ? "READY=1\nSTATUS=ready" : "READY=1");
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *d = arg;
    /* The search counts not yet added go out with the drain: the sweep timer sends them. */
    if ((conn_count() == 0 && store_inflight(d->store) == 0 &&
         (housekeeping_counts_settled(d->housekeeping) || !store_ready(d->store))) ||
        clock_mono_ms() - drain_started > DRAIN_DEADLINE_MS)
        event_base_loopexit(d->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct daemon *d = arg;
    if (sig == SIGHUP) {
        log_notice("SIGHUP: reloading the configuration");
        reload(d);
        return;
    }
    if (sig == SIGCHLD) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            spawn_reaped(d->spawn, pid, status);
        return;
    }
    if (d->stopping) {
        log_notice("second signal: exiting now");
        event_base_loopexit(d->base, NULL);
        return;
    }
    log_notice("%s: finishing open requests, then stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    d->stopping = true;
    notify("STOPPING=1\nSTATUS=finishing open requests");
    housekeeping_flush_counts(d->housekeeping);
    listener_disable(d->listener);
    conn_drain_all();
    web_drain(d->web);
    drain_started = clock_mono_ms();
    struct timeval tv = {0, 50 * 1000};
    event_add(drain_timer, &tv);
}

static int start(struct daemon *d, char *err, size_t errlen)
{
    if (!(d->base = event_base_new())) {
        snprintf(err, errlen, "cannot create the event loop");
        return -1;
    }
    if (!(d->tls = tls_server_ctx_new(d->cfg, err, errlen)))
        return -1;
    if (d->cfg->retention_mode == RETENTION_ARCHIVE &&
        archive_prepare_dir(d->cfg->archive_dir, err, errlen) < 0)
        return -1;
    if (!(d->limits = limits_new()) || !(d->refusals = refusals_new())) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (d->cfg->redis_mode == REDIS_MODE_SPAWN) {
        if (!(d->spawn = spawn_new(d, err, errlen)) || spawn_start(d->spawn, err, errlen) < 0)
            return -1;
    }
    if (d->cfg->redis_mode == REDIS_MODE_SENTINEL && !(d->sentinel = sentinel_new(d, err, errlen)))
        return -1;
    if (!(d->ledger = ledger_new(d))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct store_hooks store_hooks = {.ready = on_store_ready};
    struct events_hooks events_hooks = {.loaded = on_index_loaded, .changed = on_shelter_changed};
    struct feed_hooks feed_hooks = {.event = on_log_event};
    if (!(d->store = store_new(d, store_hooks, d, err, errlen)) ||
        !(d->events = events_new(d, events_hooks, d, err, errlen)))
        return -1;
    if (!(d->feed = feed_new(d, feed_hooks, d, err, errlen)))
        return -1;
    if (!(d->housekeeping = housekeeping_new(d)) || !(d->watch = watch_new(d)) ||
        !(d->standing = standing_new(d))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    conn_set_handler(dispatch_request, d);
    if (!(d->listener = listener_new(d, err, errlen)))
        return -1;
    log_notice("listening on %s (index not loaded yet)", listener_address(d->listener));
    if (!(d->exporter = exporter_new(d, err, errlen)) && err[0])
        return -1;
    if (d->exporter)
        log_notice("metrics: listening on %s (/metrics, /healthz, /readyz)",
                   exporter_address(d->exporter));
    if (d->cfg->health_listen[0]) {
        if (!(d->health = health_new(d, err, errlen)))
            return -1;
        log_notice("health checks on %s", health_address(d->health));
    }
    if (!(d->web = web_new(d, err, errlen)) && err[0])
        return -1;
    if (d->web)
        log_notice("web: listening on https://%s/ (the page and /api/v1/)", web_address(d->web));

    sig_term = evsignal_new(d->base, SIGTERM, on_signal, d);
    sig_int = evsignal_new(d->base, SIGINT, on_signal, d);
    sig_hup = evsignal_new(d->base, SIGHUP, on_signal, d);
    sig_chld = evsignal_new(d->base, SIGCHLD, on_signal, d);
    drain_timer = event_new(d->base, -1, EV_PERSIST, on_drain_tick, d);
    if (!sig_term || !sig_int || !sig_hup || !sig_chld || !drain_timer ||
        evsignal_add(sig_term, NULL) || evsignal_add(sig_int, NULL) ||
        evsignal_add(sig_hup, NULL) || evsignal_add(sig_chld, NULL)) {
        snprintf(err, errlen, "cannot set up signal handling");
        return -1;
    }
    housekeeping_arm(d->housekeeping);
    watch_arm(d->watch);
    store_start(d->store);
    feed_start(d->feed);
    events_start(d->events);
    if (d->sentinel)
        sentinel_start(d->sentinel);
    return 0;
}

static void stop(struct daemon *d)
{
    conn_free_all();
    health_free(d->health);
    store_free(d->store); /* pending callbacks run now, with "unavailable" */
    housekeeping_free(d->housekeeping);
    events_free(d->events);
    feed_free(d->feed);
    watch_free(d->watch);
    standing_free(d->standing);
    sentinel_free(d->sentinel); /* after the links that follow the primary */
    ledger_free(d->ledger);
    web_free(d->web); /* after the store and the watchers: their last answers go through it */
    if (d->spawn) {
        spawn_stop(d->spawn);
        spawn_free(d->spawn);
    }
    listener_free(d->listener);
    exporter_free(d->exporter);
    struct event *evs[] = {sig_term, sig_int, sig_hup, sig_chld, drain_timer};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
        if (evs[i])
            event_free(evs[i]);
    }
    if (d->tls)
        SSL_CTX_free(d->tls);
    limits_free(d->limits);
    refusals_free(d->refusals);
    index_clear(&d->index);
    if (d->base)
        event_base_free(d->base);
    free(d->geo);
    free(d->cfg);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'k'},
        {"version", no_argument, NULL, 'V'},      {"verify-archive", required_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *path = DEFAULT_CONFIG;
    bool check_only = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check_only = true;
            break;
        case 'V':
            printf("fristadd %s (protocol %d)\n", FRISTAD_VERSION, PROTO_VERSION);
            return 0;
        case 'A':
            if (optind != argc) {
                usage(stderr);
                return 2;
            }
            return archive_verify(optarg, stdout);
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    static struct daemon d;
    char err[1024] = "";
    int rc = 1;
    d.cfg = malloc(sizeof *d.cfg);
    d.geo = malloc(sizeof *d.geo);
    if (!d.cfg || !d.geo) {
        fprintf(stderr, "fristadd: out of memory\n");
        goto out;
    }
    index_init(&d.index);
    if (intake_tz_setup() < 0) {
        fprintf(stderr, "fristadd: the time zone database has no Europe/Stockholm (install "
                        "tzdata): intake hours are Swedish local time\n");
        goto out;
    }
    if (config_load(path, d.cfg, err, sizeof err) < 0 ||
        geo_load(d.geo, d.cfg->municipalities, d.cfg->adjacency, err, sizeof err) < 0 ||
        policy_load(&d.policy, d.cfg->policy, err, sizeof err) < 0) {
        fprintf(stderr, "fristadd: %s\n", err);
        goto out;
    }
    if (check_only) {
        SSL_CTX *ctx = tls_server_ctx_new(d.cfg, err, sizeof err);
        if (!ctx) {
            fprintf(stderr, "fristadd: %s\n", err);
            goto out;
        }
        SSL_CTX_free(ctx);
        printf("fristadd: %s is valid\n", path);
        rc = 0;
        goto out;
    }
    log_setup((enum log_level)d.cfg->log_level, (enum log_target)d.cfg->log_target);
    signal(SIGPIPE, SIG_IGN); /* libevent, OpenSSL and hiredis all write without MSG_NOSIGNAL */
    srand((unsigned)clock_wall_ms());
    d.metrics.started_mono_ms = clock_mono_ms();
    d.metrics.started_wall_ms = clock_wall_ms();
    if (start(&d, err, sizeof err) < 0) {
        log_error("cannot start: %s", err);
        goto out;
    }
    event_base_dispatch(d.base);
    log_notice("stopped");
    rc = 0;
out:
    stop(&d);
    return rc;
}
