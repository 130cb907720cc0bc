/*
 * Finding the primary through Redis Sentinel, as Sentinel's client guidelines ask:
 *
 *   - ask the Sentinels (SENTINEL get-master-addr-by-name), and ask again whenever a link to
 *     the primary fails or is lost, so that a reconnect never trusts an address from before a
 *     failover;
 *   - confirm with ROLE that the server named is a primary (redis_link.c does that at every
 *     connect: a demoted primary is refused and the Sentinels are asked again);
 *   - listen for +switch-master, and then move every link to the new primary at once.
 *
 * Every Sentinel is asked, each on a link of its own, and each is listened to on a second one
 * (a subscribed hiredis 0.14 context must carry nothing else), so that no single Sentinel that
 * is down, slow or cut off from the others can hold the daemon to an old primary. A poll asks
 * once a second, and ten times a second while a link to the primary is down: the Sentinel that
 * leads a failover names the promoted replica as soon as it is promoted, but announces the
 * switch only once the other replicas follow it, a second or more later.
 *
 * The Sentinels learn of a failover one after the other, so for a moment some still name the
 * old primary, which may be running again before it is made a replica. Every answer therefore
 * comes with the Sentinel's configuration epoch (SENTINEL master), which each failover raises;
 * an answer from an older configuration than the newest seen is not followed, and a switch is
 * followed only away from the primary in use.
 *
 * While no primary is known the store and events links wait, so writes answer "unavailable" at
 * once and searches answer from the index.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "daemon.h"
#include "log.h"
#include "sentinel.h"

#define POLL_MS             1000  /* ask even without a reason this often */
#define FAST_POLL_MS        100   /* and this often while a link to the primary is down */
#define STUCK_MS            2000  /* a question unanswered this long: drop that link */
#define SENTINEL_CONNECT_MS 500   /* a Sentinel that does not answer in this is retried later */
#define LINKS_MAX           4     /* links that follow the primary */
#define STALE_RESET_MS      30000 /* after this long without a primary, old answers count */
#define SWITCH_CHANNEL      "+switch-master"
#define ADDRESS_MAX         300

struct sentinel;

/* One Sentinel, and our two links to it. */
struct peer {
    struct sentinel *s;
    char address[ADDRESS_MAX]; /* as configured */
    struct rlink *ask;         /* questions */
    struct rlink *listen;      /* the +switch-master subscription */
    bool inflight;             /* a question is out */
    bool epoch_asked;          /* SENTINEL master follows it */
    bool wanted;               /* ask again once it is answered */
    int64_t sent_ms;           /* monotonic: when it was sent */
    char answer[ADDRESS_MAX];  /* the address it named, "" if none */
};

struct sentinel {
    struct daemon *d;
    struct peer peers[CONFIG_SENTINELS_MAX];
    unsigned n;
    char primary[ADDRESS_MAX]; /* "ip:port" of the primary, "" while none is known */
    long long epoch;           /* newest configuration epoch seen; -1: none yet */
    int64_t hurry_since_ms;    /* monotonic: since when a link to the primary is down; 0 */
    bool unknown_logged;       /* "no such master" was logged since the last answer */
    struct event *poll;        /* every FAST_POLL_MS; asks at POLL_MS or FAST_POLL_MS */
    struct event *apply;       /* moves the links to a new primary, outside any callback */
    struct rlink *links[LINKS_MAX];
    unsigned n_links;
};

/* ---- the primary ------------------------------------------------------------------------ */

static void on_apply(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sentinel *s = arg;
    for (unsigned i = 0; i < s->n_links; i++)
        rlink_retarget(s->links[i]);
}

static void primary_named(struct sentinel *s, const char *address, const char *by)
{
    if (strcmp(address, s->primary) == 0)
        return;
    if (s->primary[0]) {
        log_notice("sentinel: the primary of '%s' is now %s (was %s), named by %s",
                   s->d->cfg->redis_master_name, address, s->primary, by);
        s->d->metrics.primary_switches++;
    } else {
        log_notice("sentinel: the primary of '%s' is %s, named by %s", s->d->cfg->redis_master_name,
                   address, by);
    }
    snprintf(s->primary, sizeof s->primary, "%s", address);
    event_active(s->apply, EV_TIMEOUT, 0);
}

/* "ip:port", with brackets around an IPv6 address. Returns false when it does not fit. */
static bool join_address(char *out, size_t cap, const char *ip, size_t iplen, const char *port,
                         size_t portlen)
{
    bool v6 = memchr(ip, ':', iplen) != NULL;
    int n = snprintf(out, cap, "%s%.*s%s:%.*s", v6 ? "[" : "", (int)iplen, ip, v6 ? "]" : "",
                     (int)portlen, port);
    return n > 0 && (size_t)n < cap && iplen > 0 && portlen > 0 && portlen <= 5;
}

/* A peer's two answers are in: the address it names, and its epoch (-1 when unknown). */
static void decide(struct peer *p, long long epoch)
{
    struct sentinel *s = p->s;
    char by[ADDRESS_MAX + 16];
    snprintf(by, sizeof by, "Sentinel %s", p->address);
    if (!p->answer[0] || strcmp(p->answer, s->primary) == 0) {
        if (epoch > s->epoch && p->answer[0])
            s->epoch = epoch;
        return;
    }
    if (epoch >= 0 && epoch < s->epoch) {
        int64_t now = clock_mono_ms();
        if (!s->hurry_since_ms || now - s->hurry_since_ms < STALE_RESET_MS) {
            log_debug("sentinel: %s still names %s (epoch %lld, older than %lld); not followed", by,
                      p->answer, epoch, s->epoch);
            return;
        }
        /* Sentinels replaced by fresh ones count from 0 again: trust what they say now. */
        log_warning("sentinel: no primary for %lld s; following %s although its configuration "
                    "epoch %lld is older than %lld",
                    (long long)((now - s->hurry_since_ms) / 1000), by, epoch, s->epoch);
        s->epoch = epoch;
    }
    if (epoch > s->epoch)
        s->epoch = epoch;
    primary_named(s, p->answer, by);
}

static void ask(struct peer *p);

static void on_answer(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct peer *p = privdata;
    struct sentinel *s = p->s;
    redisReply *reply = r;
    p->answer[0] = '\0';
    if (!reply) {
        p->inflight = false;
        return; /* the link is going away; it asks again when it is back */
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING &&
        join_address(p->answer, sizeof p->answer, reply->element[0]->str, reply->element[0]->len,
                     reply->element[1]->str, reply->element[1]->len)) {
        s->unknown_logged = false;
    } else if (reply->type == REDIS_REPLY_NIL) {
        if (!s->unknown_logged)
            log_warning("sentinel: Sentinel %s knows no primary named '%s'", p->address,
                        s->d->cfg->redis_master_name);
        s->unknown_logged = true;
    } else if (reply->type == REDIS_REPLY_ERROR) {
        log_warning("sentinel: Sentinel %s answered: %.200s", p->address, reply->str);
    } else {
        log_warning("sentinel: Sentinel %s answered something unreadable", p->address);
    }
    if (p->epoch_asked)
        return; /* on_epoch decides */
    p->inflight = false;
    decide(p, -1);
    if (p->wanted)
        ask(p);
}

/* SENTINEL master: a flat list of names and values, among them config-epoch. */
static void on_epoch(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct peer *p = privdata;
    redisReply *reply = r;
    p->inflight = false;
    if (!reply)
        return;
    long long epoch = -1;
    if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            const redisReply *k = reply->element[i], *v = reply->element[i + 1];
            if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
                strcmp(k->str, "config-epoch") == 0)
                epoch = strtoll(v->str, NULL, 10);
        }
    }
    decide(p, epoch);
    if (p->wanted)
        ask(p);
}

static void ask(struct peer *p)
{
    if (p->inflight) {
        p->wanted = true;
        return;
    }
    const char *name = p->s->d->cfg->redis_master_name;
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", name};
    size_t lens[] = {8, 23, strlen(name)};
    const char *eargv[] = {"SENTINEL", "master", name};
    size_t elens[] = {8, 6, strlen(name)};
    p->wanted = false;
    if (rlink_command(p->ask, on_answer, p, 3, argv, lens) == 0) {
        p->inflight = true;
        p->sent_ms = clock_mono_ms();
        /* Asked in the same breath, answered by the same Sentinel right after. */
        p->epoch_asked = rlink_command(p->ask, on_epoch, p, 3, eargv, elens) == 0;
    } else {
        p->wanted = true; /* asked when the link is up */
    }
}

static void ask_all(struct sentinel *s)
{
    for (unsigned i = 0; i < s->n; i++)
        ask(&s->peers[i]);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sentinel *s = arg;
    int64_t now = clock_mono_ms();
    bool hurry = !s->primary[0];
    for (unsigned i = 0; i < s->n_links; i++)
        hurry |= !rlink_is_up(s->links[i]);
    if (!hurry)
        s->hurry_since_ms = 0;
    else if (!s->hurry_since_ms)
        s->hurry_since_ms = now;
    for (unsigned i = 0; i < s->n; i++) {
        struct peer *p = &s->peers[i];
        if (p->inflight) {
            if (now - p->sent_ms > STUCK_MS) {
                /* A Sentinel that accepts and then says nothing: drop it and try it later. */
                log_warning("sentinel: Sentinel %s does not answer", p->address);
                rlink_reset(p->ask);
            }
        } else if (hurry || now - p->sent_ms >= POLL_MS) {
            ask(p);
        }
    }
}

/* Source of the links to the primary. */
static int primary_address(void *ud, char *out, size_t cap)
{
    struct sentinel *s = ud;
    if (!s->primary[0]) {
        ask_all(s);
        return -1;
    }
    snprintf(out, cap, "%s", s->primary);
    return 0;
}

static void primary_failed(void *ud)
{
    ask_all(ud); /* the address may be from before a failover */
}

/* ---- listening ------------------------------------------------------------------------- */

/* "+switch-master" messages: "<master name> <old ip> <old port> <new ip> <new port>". */
static void on_switch(struct peer *p, const char *text, size_t len)
{
    struct sentinel *s = p->s;
    char name[64], oip[64], oport[8], nip[64], nport[8], buf[256];
    char address[ADDRESS_MAX], from[ADDRESS_MAX];
    if (len >= sizeof buf)
        return;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (sscanf(buf, "%63s %63s %7s %63s %7s", name, oip, oport, nip, nport) != 5 ||
        strcmp(name, s->d->cfg->redis_master_name) != 0 ||
        !join_address(address, sizeof address, nip, strlen(nip), nport, strlen(nport)) ||
        !join_address(from, sizeof from, oip, strlen(oip), oport, strlen(oport)))
        return;
    if (strcmp(address, s->primary) == 0)
        return; /* known already */
    if (s->primary[0] && strcmp(from, s->primary) != 0) {
        /* A switch away from another server: late news of an older failover, or a newer one
         * we missed. Ask, and let the epochs decide. */
        ask_all(s);
        return;
    }
    char by[ADDRESS_MAX + 32];
    snprintf(by, sizeof by, "+switch-master from %s", p->address);
    if (s->epoch >= 0)
        s->epoch++; /* a failover raises the epoch by at least one */
    primary_named(s, address, by);
}

static void on_message(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct peer *p = privdata;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) {
        log_info("sentinel: listening for failovers on %s", p->address);
        ask(p); /* a switch while we were not listening is not announced again */
    } else if (strcmp(kind, "message") == 0 && reply->element[2]->type == REDIS_REPLY_STRING) {
        on_switch(p, reply->element[2]->str, reply->element[2]->len);
    }
}

static void ask_up(struct rlink *l, void *ud)
{
    (void)l;
    struct peer *p = ud;
    p->inflight = false;
    ask(p);
}

static void listen_up(struct rlink *l, void *ud)
{
    const char *argv[] = {"SUBSCRIBE", SWITCH_CHANNEL};
    size_t lens[] = {9, sizeof SWITCH_CHANNEL - 1};
    if (rlink_command(l, on_message, ud, 2, argv, lens) != 0)
        log_warning("sentinel: cannot subscribe to %s", SWITCH_CHANNEL);
}

/* ---- set-up ---------------------------------------------------------------------------- */

struct adding {
    struct sentinel *s;
    char *err;
    size_t errlen;
};

/* Makes the links to one configured Sentinel (resolving its name now, once). A Sentinel whose
 * name does not resolve is left out, with a warning, as long as another one is there. */
static void add_peer(const char *item, void *ud)
{
    struct adding *a = ud;
    struct sentinel *s = a->s;
    struct peer *p = &s->peers[s->n];
    const struct config *cfg = s->d->cfg;
    char name[16], why[256] = "";
    p->s = s;
    snprintf(p->address, sizeof p->address, "%s", item);
    snprintf(name, sizeof name, "sentinel-%u", s->n);
    struct rlink_hooks ask_hooks = {.up = ask_up};
    p->ask = rlink_new(s->d->base, name, item, ask_hooks, p, why, sizeof why);
    snprintf(name, sizeof name, "sentinel-sub-%u", s->n);
    struct rlink_hooks listen_hooks = {.up = listen_up};
    p->listen = p->ask ? rlink_new(s->d->base, name, item, listen_hooks, p, why, sizeof why) : NULL;
    if (!p->ask || !p->listen) {
        rlink_free(p->ask);
        log_warning("sentinel: leaving out Sentinel %s: %s", item, why);
        snprintf(a->err, a->errlen, "Sentinel %s: %s", item, why);
        return;
    }
    struct rlink_opts opts = {.password = cfg->sentinel_password,
                              .connect_timeout_ms = SENTINEL_CONNECT_MS};
    rlink_configure(p->ask, &opts);
    rlink_configure(p->listen, &opts);
    s->n++;
}

struct sentinel *sentinel_new(struct daemon *d, char *err, size_t errlen)
{
    struct sentinel *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->d = d;
    s->epoch = -1;
    struct adding a = {s, err, errlen};
    if (config_each_sentinel(d->cfg->redis_sentinels, add_peer, &a, err, errlen) < 0 || s->n == 0) {
        if (!err[0])
            snprintf(err, errlen, "[redis] sentinels names no Sentinel");
        sentinel_free(s);
        return NULL;
    }
    err[0] = '\0'; /* a Sentinel left out is not a failure */
    s->poll = event_new(d->base, -1, EV_PERSIST, on_poll, s);
    s->apply = event_new(d->base, -1, 0, on_apply, s);
    if (!s->poll || !s->apply) {
        snprintf(err, errlen, "out of memory");
        sentinel_free(s);
        return NULL;
    }
    return s;
}

void sentinel_start(struct sentinel *s)
{
    struct timeval tv = {FAST_POLL_MS / 1000, (FAST_POLL_MS % 1000) * 1000};
    event_add(s->poll, &tv);
    for (unsigned i = 0; i < s->n; i++) {
        rlink_start(s->peers[i].ask);
        rlink_start(s->peers[i].listen);
    }
}

void sentinel_free(struct sentinel *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->n; i++) {
        rlink_free(s->peers[i].ask);
        rlink_free(s->peers[i].listen);
    }
    if (s->poll)
        event_free(s->poll);
    if (s->apply)
        event_free(s->apply);
    free(s);
}

struct rlink *sentinel_link_new(struct daemon *d, const char *name, struct rlink_hooks hooks,
                                void *ud, char *err, size_t errlen)
{
    const struct config *cfg = d->cfg;
    if (cfg->redis_mode != REDIS_MODE_SENTINEL) {
        char address[CONFIG_PATH_MAX + 24];
        config_redis_address(cfg, address, sizeof address);
        struct rlink *l = rlink_new(d->base, name, address, hooks, ud, err, errlen);
        if (l && cfg->redis_password[0]) {
            struct rlink_opts opts = {.password = cfg->redis_password};
            rlink_configure(l, &opts);
        }
        return l;
    }
    struct sentinel *s = d->sentinel;
    if (!s || s->n_links == LINKS_MAX) {
        snprintf(err, errlen, "internal: no room for the %s link", name);
        return NULL;
    }
    struct rlink *l = rlink_new(d->base, name, NULL, hooks, ud, err, errlen);
    if (!l)
        return NULL;
    struct rlink_opts opts = {.password = cfg->redis_password,
                              .primary_only = true,
                              .source = {primary_address, primary_failed, s}};
    rlink_configure(l, &opts);
    s->links[s->n_links++] = l;
    return l;
}
