/*
 * hiredis 0.14 async link. Its traps shape this file: after a failed connect hiredis frees the
 * context itself and no disconnect callback follows; it has no connect timeout; and it must not
 * be freed from inside its own connect callback. So the context pointer is cleared in the
 * callbacks, a timer bounds the connect, and every retry is scheduled on a timer.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libevent.h>

#include "log.h"
#include "redis_link.h"

#define BACKOFF_MIN_MS     50
#define BACKOFF_MAX_MS     2000
#define CONNECT_TIMEOUT_MS 2000

enum rlink_state {
    RLINK_IDLE,       /* created, not started */
    RLINK_CONNECTING, /* redisAsyncConnect issued; waiting for the connect callback */
    RLINK_UP,         /* connected: commands may be sent */
    RLINK_WAITING,    /* down; the retry timer is armed */
};

struct rlink {
    struct event_base *base;
    char name[16];
    bool unix_socket;
    char host[INET6_ADDRSTRLEN];
    int port;
    char path[1024];
    redisAsyncContext *ac;
    enum rlink_state state;
    unsigned backoff_ms;
    bool was_up_logged;
    struct event *retry_timer;
    struct event *connect_timer;
    struct rlink_hooks hooks;
    void *ud;
};

static void set_state(struct rlink *l, enum rlink_state s)
{
    static const char *const names[] = {"idle", "connecting", "up", "waiting"};
    if (l->state != s)
        log_debug("redis %s link: %s -> %s", l->name, names[l->state], names[s]);
    l->state = s;
}

static void schedule_retry(struct rlink *l)
{
    unsigned jitter = l->backoff_ms / 4 ? (unsigned)rand() % (l->backoff_ms / 4) : 0;
    struct timeval tv = {.tv_sec = (l->backoff_ms + jitter) / 1000,
                         .tv_usec = ((l->backoff_ms + jitter) % 1000) * 1000};
    set_state(l, RLINK_WAITING);
    evtimer_add(l->retry_timer, &tv);
    l->backoff_ms = l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rlink *l = ac->data;
    evtimer_del(l->connect_timer);
    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns; no disconnect callback will come. */
        if (!l->was_up_logged)
            log_debug("redis %s link: connect failed: %s", l->name, ac->errstr);
        l->ac = NULL;
        schedule_retry(l);
        return;
    }
    log_info("redis %s link: connected", l->name);
    l->backoff_ms = BACKOFF_MIN_MS;
    l->was_up_logged = true;
    set_state(l, RLINK_UP);
    if (l->hooks.up)
        l->hooks.up(l, l->ud);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rlink *l = ac->data;
    l->ac = NULL;
    if (l->state != RLINK_UP)
        return; /* our own free */
    if (status != REDIS_OK)
        log_warning("redis %s link lost: %s", l->name, ac->errstr);
    else
        log_info("redis %s link closed", l->name);
    set_state(l, RLINK_IDLE);
    if (l->hooks.down)
        l->hooks.down(l, l->ud);
    if (l->state == RLINK_IDLE)
        schedule_retry(l);
}

static void connect_now(struct rlink *l)
{
    redisAsyncContext *ac =
        l->unix_socket ? redisAsyncConnectUnix(l->path) : redisAsyncConnect(l->host, l->port);
    if (!ac) {
        log_error("redis %s link: out of memory", l->name);
        schedule_retry(l);
        return;
    }
    if (ac->err) {
        log_debug("redis %s link: %s", l->name, ac->errstr);
        redisAsyncFree(ac);
        schedule_retry(l);
        return;
    }
    ac->data = l;
    if (redisLibeventAttach(ac, l->base) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_retry(l);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (!l->unix_socket)
        redisEnableKeepAlive(&ac->c);
    l->ac = ac;
    set_state(l, RLINK_CONNECTING);
    struct timeval tv = {CONNECT_TIMEOUT_MS / 1000, (CONNECT_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(l->connect_timer, &tv);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_now(arg);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct rlink *l = arg;
    (void)fd;
    (void)what;
    if (l->state != RLINK_CONNECTING || !l->ac)
        return;
    log_warning("redis %s link: connect timed out", l->name);
    redisAsyncContext *ac = l->ac;
    l->ac = NULL;
    redisAsyncFree(ac); /* from a timer, not a hiredis callback: safe */
    schedule_retry(l);
}

struct rlink *rlink_new(struct event_base *base, const char *name, const char *address,
                        struct rlink_hooks hooks, void *ud, char *err, size_t errlen)
{
    struct rlink *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->base = base;
    snprintf(l->name, sizeof l->name, "%s", name);
    l->hooks = hooks;
    l->ud = ud;
    l->backoff_ms = BACKOFF_MIN_MS;
    if (strncmp(address, "unix:", 5) == 0) {
        l->unix_socket = true;
        if (snprintf(l->path, sizeof l->path, "%s", address + 5) >= (int)sizeof l->path ||
            !l->path[0]) {
            snprintf(err, errlen, "redis address %s: bad socket path", address);
            goto fail;
        }
    } else {
        const char *colon = strrchr(address, ':');
        char host[256];
        if (!colon || colon == address || (size_t)(colon - address) >= sizeof host) {
            snprintf(err, errlen, "redis address must be unix:/path or host:port");
            goto fail;
        }
        memcpy(host, address, (size_t)(colon - address));
        host[colon - address] = '\0';
        l->port = atoi(colon + 1);
        if (l->port <= 0 || l->port > 65535) {
            snprintf(err, errlen, "redis address %s: bad port", address);
            goto fail;
        }
        /* Resolve once: hiredis resolves with a blocking call on every connect. */
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
        int rc = getaddrinfo(host, NULL, &hints, &res);
        if (rc != 0) {
            snprintf(err, errlen, "redis host %s: %s", host, gai_strerror(rc));
            goto fail;
        }
        void *addr = res->ai_family == AF_INET
                         ? (void *)&((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr
                         : (void *)&((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr;
        inet_ntop(res->ai_family, addr, l->host, sizeof l->host);
        freeaddrinfo(res);
    }
    l->retry_timer = evtimer_new(base, on_retry, l);
    l->connect_timer = evtimer_new(base, on_connect_timeout, l);
    if (!l->retry_timer || !l->connect_timer) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return l;
fail:
    if (l->retry_timer)
        event_free(l->retry_timer);
    if (l->connect_timer)
        event_free(l->connect_timer);
    free(l);
    return NULL;
}

void rlink_start(struct rlink *l)
{
    if (l->state == RLINK_IDLE)
        connect_now(l);
}

bool rlink_is_up(const struct rlink *l)
{
    return l->state == RLINK_UP && l->ac != NULL;
}

void rlink_reset(struct rlink *l)
{
    if (l->ac && l->state == RLINK_UP) {
        /* Not a clean disconnect: that would wait for the replies of a stalled server. */
        log_warning("redis %s link: dropping the connection", l->name);
        redisAsyncFree(l->ac); /* runs pending callbacks with NULL, then on_disconnect */
    }
}

void rlink_free(struct rlink *l)
{
    if (!l)
        return;
    evtimer_del(l->retry_timer);
    evtimer_del(l->connect_timer);
    l->state = RLINK_IDLE; /* on_disconnect must not schedule anything now */
    if (l->ac) {
        redisAsyncContext *ac = l->ac;
        l->ac = NULL;
        redisAsyncFree(ac);
    }
    event_free(l->retry_timer);
    event_free(l->connect_timer);
    free(l);
}

int rlink_command(struct rlink *l, redisCallbackFn *fn, void *privdata, int argc, const char **argv,
                  const size_t *argvlen)
{
    if (!rlink_is_up(l))
        return -1;
    if (redisAsyncCommandArgv(l->ac, fn, privdata, argc, argv, argvlen) != REDIS_OK)
        return -1;
    return 0;
}
