/*
 * hiredis 0.14 async link. Its traps shape this file: after a failed connect hiredis frees the
 * context itself and no disconnect callback follows; it has no connect timeout; and it must not
 * be freed from inside its own connect callback. So the context pointer is cleared in the
 * callbacks, a timer bounds the connect, and every retry is scheduled on a timer.
 *
 * A link that must authenticate, or must reach a primary (sentinel mode), says hello first:
 * AUTH and ROLE are sent as soon as the socket connects, and the link is up only when both are
 * answered well. A refusal frees the context from inside the reply callback, which hiredis
 * defers until the callback has returned; the disconnect callback then schedules the retry.
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
#define PASSWORD_MAX       512

enum rlink_state {
    RLINK_IDLE,       /* created, not started, or being freed */
    RLINK_CONNECTING, /* redisAsyncConnect issued; waiting for the connect callback */
    RLINK_HELLO,      /* connected; the replies to AUTH and ROLE are awaited */
    RLINK_UP,         /* connected and accepted: commands may be sent */
    RLINK_WAITING,    /* down; the retry timer is armed */
};

struct rlink {
    struct event_base *base;
    char name[16];
    bool unix_socket;
    char host[INET6_ADDRSTRLEN];
    int port;
    char path[1024];
    char target[1100]; /* the address of the current attempt, for messages */
    redisAsyncContext *ac;
    enum rlink_state state;
    bool started;
    unsigned backoff_ms;
    bool was_up_logged;
    struct event *retry_timer;
    struct event *connect_timer;
    struct rlink_hooks hooks;
    void *ud;
    /* rlink_configure */
    char password[PASSWORD_MAX + 1]; /* empty: no AUTH */
    bool primary_only;
    unsigned connect_timeout_ms;
    struct rlink_source source;
    /* the hello of the current connection */
    unsigned hello_pending; /* replies still awaited */
    bool hello_failed;      /* refused: the context is being freed */
};

static void set_state(struct rlink *l, enum rlink_state s)
{
    static const char *const names[] = {"idle", "connecting", "hello", "up", "waiting"};
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

/* An attempt failed or a connection was lost: retry later, and let the source look again. */
static void attempt_failed(struct rlink *l)
{
    schedule_retry(l);
    if (l->source.failed)
        l->source.failed(l->source.ud);
}

/*
 * Parses "unix:/path" or "host:port" into the link's target. A host name is resolved here,
 * with a blocking call: at start for a fixed address; for a source's address only when the
 * source names a host rather than an address (Sentinels announce addresses).
 */
static int parse_address(struct rlink *l, const char *address, char *err, size_t errlen)
{
    if (strncmp(address, "unix:", 5) == 0) {
        l->unix_socket = true;
        if (snprintf(l->path, sizeof l->path, "%s", address + 5) >= (int)sizeof l->path ||
            !l->path[0]) {
            snprintf(err, errlen, "redis address %s: bad socket path", address);
            return -1;
        }
        snprintf(l->target, sizeof l->target, "%s", address);
        return 0;
    }
    l->unix_socket = false;
    const char *colon = strrchr(address, ':');
    char host[256];
    if (!colon || colon == address || (size_t)(colon - address) >= sizeof host) {
        snprintf(err, errlen, "redis address must be unix:/path or host:port");
        return -1;
    }
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    if (host[0] == '[' && colon - address >= 2 && host[colon - address - 1] == ']') {
        memmove(host, host + 1, (size_t)(colon - address) - 2);
        host[colon - address - 2] = '\0';
    }
    l->port = atoi(colon + 1);
    if (l->port <= 0 || l->port > 65535) {
        snprintf(err, errlen, "redis address %s: bad port", address);
        return -1;
    }
    /* Resolve once: hiredis resolves with a blocking call on every connect. */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "redis host %s: %s", host, gai_strerror(rc));
        return -1;
    }
    void *addr = res->ai_family == AF_INET
                     ? (void *)&((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr
                     : (void *)&((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr;
    inet_ntop(res->ai_family, addr, l->host, sizeof l->host);
    freeaddrinfo(res);
    snprintf(l->target, sizeof l->target, "%s", address);
    return 0;
}

static void become_up(struct rlink *l)
{
    evtimer_del(l->connect_timer);
    log_info("redis %s link: connected to %s", l->name, l->target);
    l->backoff_ms = BACKOFF_MIN_MS;
    l->was_up_logged = true;
    set_state(l, RLINK_UP);
    if (l->hooks.up)
        l->hooks.up(l, l->ud);
}

/* From a hello reply callback: the server is not one to use. */
static void hello_refused(struct rlink *l, redisAsyncContext *ac)
{
    l->hello_failed = true;
    redisAsyncFree(ac); /* inside a reply callback: done once the callback has returned */
}

static void hello_step_done(struct rlink *l)
{
    if (--l->hello_pending == 0 && !l->hello_failed)
        become_up(l);
}

static void on_hello_auth(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rlink *l = privdata;
    redisReply *reply = r;
    if (!reply || l->state != RLINK_HELLO || l->hello_failed)
        return; /* the connection is going away; on_disconnect follows */
    if (reply->type == REDIS_REPLY_ERROR) {
        log_error("redis %s link: %s refused the password: %.200s", l->name, l->target, reply->str);
        hello_refused(l, ac);
        return;
    }
    hello_step_done(l);
}

static void on_hello_role(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rlink *l = privdata;
    redisReply *reply = r;
    if (!reply || l->state != RLINK_HELLO || l->hello_failed)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        log_warning("redis %s link: %s answered ROLE with an error: %.200s", l->name, l->target,
                    reply->str);
        hello_refused(l, ac);
        return;
    }
    const char *role = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
                               reply->element[0]->type == REDIS_REPLY_STRING
                           ? reply->element[0]->str
                           : "?";
    if (strcmp(role, "master") != 0) {
        log_warning("redis %s link: %s is not a primary (its role is %.20s)", l->name, l->target,
                    role);
        hello_refused(l, ac);
        return;
    }
    hello_step_done(l);
}

/* Connected: say hello if the link must, else it is up. */
static void hello(struct rlink *l, redisAsyncContext *ac)
{
    l->hello_pending = 0;
    l->hello_failed = false;
    if (l->password[0]) {
        const char *argv[] = {"AUTH", l->password};
        size_t lens[] = {4, strlen(l->password)};
        if (redisAsyncCommandArgv(ac, on_hello_auth, l, 2, argv, lens) == REDIS_OK)
            l->hello_pending++;
    }
    if (l->primary_only) {
        const char *argv[] = {"ROLE"};
        size_t lens[] = {4};
        if (redisAsyncCommandArgv(ac, on_hello_role, l, 1, argv, lens) == REDIS_OK)
            l->hello_pending++;
    }
    if (l->hello_pending == 0) {
        become_up(l);
        return;
    }
    set_state(l, RLINK_HELLO); /* the connect timer keeps running until the hello is done */
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rlink *l = ac->data;
    if (status != REDIS_OK) {
        evtimer_del(l->connect_timer);
        /* hiredis frees the context when this returns; no disconnect callback will come. */
        if (!l->was_up_logged)
            log_debug("redis %s link: connect to %s failed: %s", l->name, l->target, ac->errstr);
        l->ac = NULL;
        attempt_failed(l);
        return;
    }
    if (l->password[0] || l->primary_only) {
        hello(l, l->ac);
        return;
    }
    become_up(l);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rlink *l = ac->data;
    l->ac = NULL;
    if (l->state == RLINK_HELLO) {
        evtimer_del(l->connect_timer);
        if (!l->hello_failed)
            log_warning("redis %s link: %s closed the connection before it was set up: %s", l->name,
                        l->target, status != REDIS_OK ? ac->errstr : "closed");
        attempt_failed(l);
        return;
    }
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
        attempt_failed(l);
}

static void connect_now(struct rlink *l)
{
    if (l->source.address) {
        char address[1100], err[300];
        if (l->source.address(l->source.ud, address, sizeof address) < 0) {
            log_debug("redis %s link: no server known yet", l->name);
            schedule_retry(l);
            return;
        }
        if (parse_address(l, address, err, sizeof err) < 0) {
            log_warning("redis %s link: %s", l->name, err);
            attempt_failed(l);
            return;
        }
    }
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
        attempt_failed(l);
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
    unsigned ms = l->connect_timeout_ms ? l->connect_timeout_ms : CONNECT_TIMEOUT_MS;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
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
    if (!l->ac)
        return;
    redisAsyncContext *ac = l->ac;
    if (l->state == RLINK_HELLO) {
        /* Connected, but the server does not answer: on_disconnect schedules the retry. */
        log_warning("redis %s link: %s did not answer in time", l->name, l->target);
        l->hello_failed = true;
        redisAsyncFree(ac); /* from a timer, not a hiredis callback: safe */
        return;
    }
    if (l->state != RLINK_CONNECTING)
        return;
    log_warning("redis %s link: connect to %s timed out", l->name, l->target);
    l->ac = NULL;
    redisAsyncFree(ac); /* not connected: no callback runs */
    attempt_failed(l);
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
    if (address && parse_address(l, address, err, errlen) < 0)
        goto fail;
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

void rlink_configure(struct rlink *l, const struct rlink_opts *opts)
{
    snprintf(l->password, sizeof l->password, "%s", opts->password ? opts->password : "");
    l->primary_only = opts->primary_only;
    l->connect_timeout_ms = opts->connect_timeout_ms;
    l->source = opts->source;
}

void rlink_start(struct rlink *l)
{
    l->started = true;
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

void rlink_retarget(struct rlink *l)
{
    if (!l->started)
        return;
    evtimer_del(l->retry_timer);
    evtimer_del(l->connect_timer);
    bool was_up = l->state == RLINK_UP;
    set_state(l, RLINK_IDLE); /* on_disconnect: our own free */
    if (l->ac) {
        redisAsyncContext *ac = l->ac;
        l->ac = NULL;
        redisAsyncFree(ac); /* pending callbacks run with NULL */
    }
    if (was_up) {
        log_info("redis %s link: leaving %s for the new address", l->name, l->target);
        if (l->hooks.down)
            l->hooks.down(l, l->ud);
    }
    l->backoff_ms = BACKOFF_MIN_MS;
    if (l->state == RLINK_IDLE)
        connect_now(l);
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
