/*
 * The daemon's shared state, owned by main.c. Modules read what they need of it (the running
 * configuration, the index, the reference data); calls go down the request's path (connection,
 * dispatch, store), and a module that must tell one above it something does so through hooks
 * that main.c passes down, never by calling main.c.
 *
 * Glossary (see also include/fristad/proto.h)
 *   principal   who is asking: role and id, taken from the verified client certificate.
 *   store       Redis, reached through the command link; the single source of truth.
 *   link        one hiredis async connection (redis_link.c): the command link and the
 *               subscriber link that carries change events.
 *   primary     the Redis server that takes writes: the configured one, or in sentinel mode
 *               the one the Sentinels name (sentinel.c); replicas hold copies.
 *   acknowledged  a write this daemon answered "ok"; the ledger (ledger.c) remembers recent
 *               ones, to find any that a failover lost.
 *   index       the in-memory copy of every shelter and unit that searches read (index.c).
 *   snapshot    one shelter with its units as a store function returns and publishes it.
 *   version     the store's global change counter; each snapshot carries the version of its
 *               shelter's last change, and the index knows which versions it reflects.
 */
#ifndef FRISTAD_DAEMON_H
#define FRISTAD_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "config.h"
#include "geo.h"
#include "index.h"
#include "metrics.h"
#include "ops.h"
#include "policy.h"

struct conn;
struct listener;
struct store;
struct events;
struct spawn;
struct limits;
struct housekeeping;
struct refusals;
struct feed;
struct watchers;
struct standing;
struct exporter;
struct sentinel;
struct ledger;
struct health;
struct web;

struct daemon {
    struct event_base *base;
    struct config *cfg;   /* the running configuration; replaced whole on reload */
    struct geo *geo;      /* reference data, fixed after start */
    struct policy policy; /* safety policy, fixed after start */
    struct index index;   /* in-memory shelters and units */
    SSL_CTX *tls;         /* current server context; replaced whole on reload */
    struct listener *listener;
    struct store *store;
    struct events *events;
    struct spawn *spawn;       /* NULL unless redis.mode = spawn */
    struct sentinel *sentinel; /* NULL unless redis.mode = sentinel */
    struct ledger *ledger;     /* recently acknowledged holds and placements */
    struct health *health;     /* NULL unless [server] health_listen is set */
    struct limits *limits;     /* per-principal rate and connection counts */
    struct refusals *refusals; /* refusals counted, not audited one by one (refusals.h) */
    struct housekeeping *housekeeping;
    struct feed *feed;         /* the event log, followed */
    struct watchers *watch;    /* connections that watch events */
    struct standing *standing; /* standing searches, in memory */
    struct exporter *exporter; /* NULL when [metrics] listen is empty */
    struct web *web;           /* NULL when [web] listen is empty */
    struct metrics metrics;
    struct search_counts counts; /* follow-up counts not yet added to the store */
    bool ready_logged;           /* "ready" has been logged once */
    bool stopping;               /* SIGTERM seen: drain and exit */
};

#endif
