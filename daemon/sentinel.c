/*
 * Finding the primary through Redis Sentinel, as Sentinel's client guidelines ask:
 *
 *   - ask a Sentinel (SENTINEL get-master-addr-by-name), trying the next one when a Sentinel
 *     cannot be reached, and ask again whenever a link to the primary fails or is lost, so a
 *     reconnect never trusts an address from before a failover;
 *   - confirm with ROLE that the server named is a primary (redis_link.c does that at every
 *     connect: a demoted primary is refused and the Sentinels are asked again);
 *   - listen for +switch-master on a Sentinel, and then move every link to the new primary at
 *     once; a poll catches a switch announced while that subscription was down, and asks ten
 *     times a second while a link to the primary is down: the Sentinel that leads a failover
 *     names the promoted replica as soon as it is promoted, but announces the switch only once
 *     the other replicas follow it, a second or more later;
 *   - never go back to an older configuration: Sentinels learn of a failover one after the
 *     other, so for a moment one of them still names the old primary (which may be running
 *     again, not yet made a replica). Every answer comes with the Sentinel's configuration
 *     epoch (SENTINEL master), which each failover raises; an answer older than the newest one
 *     seen is ignored, and a switch is followed only away from the primary in use.
 *
 * Two links of our own reach the Sentinels: one for questions and one subscribed, because a
 * subscribed hiredis 0.14 context must not carry anything else. Both go round the configured
 * Sentinels when one fails. While no primary is known the store and events links wait, so
 * writes answer "unavailable" at once and searches answer from the index.
 */
#include <netdb.h>
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
#define SENTINEL_CONNECT_MS 500   /* a Sentinel that does not answer in this is skipped */
#define LINKS_MAX           4     /* links that follow the primary */
#define STALE_RESET_MS      30000 /* after this long without a primary, old answers count */
#define SWITCH_CHANNEL      "+switch-master"
#define ADDRESS_MAX         300

struct sentinel {
    struct daemon *d;
    char addrs[CONFIG_SENTINELS_MAX][ADDRESS_MAX]; /* the Sentinels, resolved at start */
    unsigned n;
    unsigned next_cmd, next_sub; /* the Sentinel each of our links tries (modulo n) */
    struct rlink *cmd;           /* questions */
    struct rlink *sub;           /* the +switch-master subscription */
    char primary[ADDRESS_MAX];   /* "ip:port" of the primary, "" while none is known */
    long long epoch;             /* newest configuration epoch seen; -1: none yet */
    char answer[ADDRESS_MAX];    /* the address of the question in flight, "" if none */
    bool epoch_asked;            /* SENTINEL master follows the question in flight */
    int64_t hurry_since_ms;      /* monotonic: since when a link to the primary is down; 0 */
    bool query_inflight;
    int64_t query_sent_ms; /* monotonic: when the question in flight was sent */
    bool query_wanted;     /* ask again once the question in flight is answered */
    bool unknown_logged;   /* "no such master" was logged since the last answer */
    struct event *poll;    /* POLL_MS */
    struct event *apply;   /* moves the links to a new primary, outside any callback */
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
    s->unknown_logged = false;
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

static void query(struct sentinel *s);

/* The Sentinel the questions go to, for messages. */
static const char *asked(const struct sentinel *s)
{
    return s->addrs[s->next_cmd % s->n];
}

/* Both answers of one question are in: the address, and the epoch (-1 when unknown). */
static void decide(struct sentinel *s, long long epoch)
{
    char by[ADDRESS_MAX + 16];
    snprintf(by, sizeof by, "Sentinel %s", asked(s));
    if (!s->answer[0])
        return;
    if (epoch >= 0 && epoch < s->epoch && strcmp(s->answer, s->primary) != 0) {
        int64_t now = clock_mono_ms();
        if (!s->hurry_since_ms || now - s->hurry_since_ms < STALE_RESET_MS) {
            log_debug("sentinel: %s still names %s (epoch %lld, older than %lld); not followed", by,
                      s->answer, epoch, s->epoch);
            return;
        }
        /* Sentinels replaced by fresh ones count from 0 again: trust what they all say. */
        log_warning("sentinel: no primary for %lld s; following %s although its configuration "
                    "epoch %lld is older than %lld",
                    (long long)((now - s->hurry_since_ms) / 1000), by, epoch, s->epoch);
        s->epoch = epoch;
    }
    if (epoch > s->epoch)
        s->epoch = epoch;
    primary_named(s, s->answer, by);
}

static void on_answer(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct sentinel *s = privdata;
    redisReply *reply = r;
    s->answer[0] = '\0';
    if (!reply) {
        s->query_inflight = false;
        return; /* the link is going away; it asks again when it is back */
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING &&
        join_address(s->answer, sizeof s->answer, reply->element[0]->str, reply->element[0]->len,
                     reply->element[1]->str, reply->element[1]->len)) {
        s->unknown_logged = false;
    } else if (reply->type == REDIS_REPLY_NIL) {
        if (!s->unknown_logged)
            log_warning("sentinel: Sentinel %s knows no primary named '%s'", asked(s),
                        s->d->cfg->redis_master_name);
        s->unknown_logged = true;
    } else if (reply->type == REDIS_REPLY_ERROR) {
        log_warning("sentinel: Sentinel %s answered: %.200s", asked(s), reply->str);
    } else {
        log_warning("sentinel: Sentinel %s answered something unreadable", asked(s));
    }
    if (s->epoch_asked)
        return; /* on_epoch decides */
    s->query_inflight = false;
    decide(s, -1);
    if (s->query_wanted)
        query(s);
}

/* SENTINEL master: a flat list of names and values, among them config-epoch. */
static void on_epoch(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct sentinel *s = privdata;
    redisReply *reply = r;
    s->query_inflight = false;
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
    decide(s, epoch);
    if (s->query_wanted)
        query(s);
}

static void query(struct sentinel *s)
{
    if (s->query_inflight) {
        s->query_wanted = true;
        return;
    }
    const char *name = s->d->cfg->redis_master_name;
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", name};
    size_t lens[] = {8, 23, strlen(name)};
    const char *eargv[] = {"SENTINEL", "master", name};
    size_t elens[] = {8, 6, strlen(name)};
    s->query_wanted = false;
    if (rlink_command(s->cmd, on_answer, s, 3, argv, lens) == 0) {
        s->query_inflight = true;
        s->query_sent_ms = clock_mono_ms();
        /* Asked in the same breath, answered by the same Sentinel right after. */
        s->epoch_asked = rlink_command(s->cmd, on_epoch, s, 3, eargv, elens) == 0;
    } else {
        s->query_wanted = true; /* asked when the link is up */
    }
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sentinel *s = arg;
    int64_t now = clock_mono_ms();
    if (s->query_inflight) {
        if (now - s->query_sent_ms > 2 * POLL_MS) {
            /* A Sentinel that accepts and then says nothing: go on to the next one. */
            log_warning("sentinel: %s does not answer; trying the next Sentinel",
                        s->addrs[s->next_cmd % s->n]);
            rlink_reset(s->cmd);
        }
        return;
    }
    bool hurry = !s->primary[0];
    for (unsigned i = 0; i < s->n_links; i++)
        hurry |= !rlink_is_up(s->links[i]);
    if (!hurry)
        s->hurry_since_ms = 0;
    else if (!s->hurry_since_ms)
        s->hurry_since_ms = now;
    if (hurry || now - s->query_sent_ms >= POLL_MS)
        query(s);
}

/* Source of the links to the primary. */
static int primary_address(void *ud, char *out, size_t cap)
{
    struct sentinel *s = ud;
    if (!s->primary[0]) {
        query(s);
        return -1;
    }
    snprintf(out, cap, "%s", s->primary);
    return 0;
}

static void primary_failed(void *ud)
{
    query(ud); /* the address may be from before a failover */
}

/* ---- our links to the Sentinels -------------------------------------------------------- */

static int cmd_address(void *ud, char *out, size_t cap)
{
    struct sentinel *s = ud;
    snprintf(out, cap, "%s", s->addrs[s->next_cmd % s->n]);
    return 0;
}

static void cmd_failed(void *ud)
{
    struct sentinel *s = ud;
    s->next_cmd++;
}

static void cmd_up(struct rlink *l, void *ud)
{
    (void)l;
    struct sentinel *s = ud;
    s->query_inflight = false;
    query(s);
}

static int sub_address(void *ud, char *out, size_t cap)
{
    struct sentinel *s = ud;
    snprintf(out, cap, "%s", s->addrs[s->next_sub % s->n]);
    return 0;
}

static void sub_failed(void *ud)
{
    struct sentinel *s = ud;
    s->next_sub++;
}

/* "+switch-master" messages: "<master name> <old ip> <old port> <new ip> <new port>". */
static void on_switch(struct sentinel *s, const char *text, size_t len)
{
    char name[64], oip[64], oport[8], nip[64], nport[8], address[ADDRESS_MAX];
    char buf[256];
    if (len >= sizeof buf)
        return;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (sscanf(buf, "%63s %63s %7s %63s %7s", name, oip, oport, nip, nport) != 5 ||
        strcmp(name, s->d->cfg->redis_master_name) != 0)
        return;
    char from[ADDRESS_MAX];
    if (!join_address(address, sizeof address, nip, strlen(nip), nport, strlen(nport)) ||
        !join_address(from, sizeof from, oip, strlen(oip), oport, strlen(oport)))
        return;
    if (s->primary[0] && strcmp(from, s->primary) != 0) {
        /* A switch away from some other server: late news of an older failover, or a newer
         * one we missed. Ask, and let the epochs decide. */
        query(s);
        return;
    }
    char by[ADDRESS_MAX + 32];
    snprintf(by, sizeof by, "+switch-master from %s", s->addrs[s->next_sub % s->n]);
    if (strcmp(address, s->primary) != 0 && s->epoch >= 0)
        s->epoch++; /* a failover raises the epoch by at least one */
    primary_named(s, address, by);
}

static void on_sub_message(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct sentinel *s = privdata;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) {
        log_info("sentinel: listening for failovers on %s", s->addrs[s->next_sub % s->n]);
        query(s); /* a switch while we were not listening is not announced again */
    } else if (strcmp(kind, "message") == 0 && reply->element[2]->type == REDIS_REPLY_STRING) {
        on_switch(s, reply->element[2]->str, reply->element[2]->len);
    }
}

static void sub_up(struct rlink *l, void *ud)
{
    const char *argv[] = {"SUBSCRIBE", SWITCH_CHANNEL};
    size_t lens[] = {9, sizeof SWITCH_CHANNEL - 1};
    if (rlink_command(l, on_sub_message, ud, 2, argv, lens) != 0)
        log_warning("sentinel: cannot subscribe to %s", SWITCH_CHANNEL);
}

/* ---- set-up ---------------------------------------------------------------------------- */

/* Resolves one configured Sentinel now, so that no connect blocks on a name lookup later. */
static void add_sentinel(const char *item, void *ud)
{
    struct sentinel *s = ud;
    char host[256];
    const char *colon = strrchr(item, ':');
    size_t hl = (size_t)(colon - item);
    const char *h = item;
    if (hl >= 2 && item[0] == '[' && item[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)hl, h);
    char *slot = s->addrs[s->n++];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    char ip[NI_MAXHOST];
    if (getaddrinfo(host, NULL, &hints, &res) != 0) {
        log_warning("sentinel: cannot resolve %s now; trying again at each connect", host);
        snprintf(slot, ADDRESS_MAX, "%s", item);
        return;
    }
    int rc = getnameinfo(res->ai_addr, res->ai_addrlen, ip, sizeof ip, NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(res);
    if (rc != 0 || !join_address(slot, ADDRESS_MAX, ip, strlen(ip), colon + 1, strlen(colon + 1)))
        snprintf(slot, ADDRESS_MAX, "%s", item);
}

struct sentinel *sentinel_new(struct daemon *d, char *err, size_t errlen)
{
    const struct config *cfg = d->cfg;
    struct sentinel *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->d = d;
    s->epoch = -1;
    if (config_each_sentinel(cfg->redis_sentinels, add_sentinel, s, err, errlen) <= 0) {
        if (!err[0])
            snprintf(err, errlen, "[redis] sentinels names no Sentinel");
        free(s);
        return NULL;
    }
    struct rlink_hooks cmd_hooks = {.up = cmd_up};
    struct rlink_hooks sub_hooks = {.up = sub_up};
    s->cmd = rlink_new(d->base, "sentinel", NULL, cmd_hooks, s, err, errlen);
    s->sub = rlink_new(d->base, "sentinel-sub", NULL, sub_hooks, s, err, errlen);
    s->poll = event_new(d->base, -1, EV_PERSIST, on_poll, s);
    s->apply = event_new(d->base, -1, 0, on_apply, s);
    if (!s->cmd || !s->sub || !s->poll || !s->apply) {
        if (!err[0])
            snprintf(err, errlen, "out of memory");
        sentinel_free(s);
        return NULL;
    }
    struct rlink_opts cmd_opts = {.password = cfg->sentinel_password,
                                  .connect_timeout_ms = SENTINEL_CONNECT_MS,
                                  .source = {cmd_address, cmd_failed, s}};
    struct rlink_opts sub_opts = {.password = cfg->sentinel_password,
                                  .connect_timeout_ms = SENTINEL_CONNECT_MS,
                                  .source = {sub_address, sub_failed, s}};
    rlink_configure(s->cmd, &cmd_opts);
    rlink_configure(s->sub, &sub_opts);
    return s;
}

void sentinel_start(struct sentinel *s)
{
    struct timeval tv = {FAST_POLL_MS / 1000, (FAST_POLL_MS % 1000) * 1000};
    event_add(s->poll, &tv);
    rlink_start(s->cmd);
    rlink_start(s->sub);
}

void sentinel_free(struct sentinel *s)
{
    if (!s)
        return;
    rlink_free(s->cmd);
    rlink_free(s->sub);
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
