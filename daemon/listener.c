/*
 * Accepting connections. A flood of connections that start a handshake and go silent must not
 * keep a real client out: from one address (IPv6: one /64) only a few handshakes may be in
 * progress, so that a flood from a few addresses is refused at accept, before it costs any TLS
 * work; and at the connection cap the connections that have sent nothing are dropped first,
 * then the oldest handshakes, then idle connections persons hold beyond their allowance (see
 * conn_make_room). When the process runs out of descriptors the listener pauses briefly
 * instead of spinning on accept errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/listener.h>

#include "conn.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"

/* Connections the kernel queues until they are accepted: a flood refused at accept should
 * not also fill the queue a real client's connection waits in (the kernel caps it at
 * net.core.somaxconn). */
#define LISTEN_BACKLOG 1024

struct listener {
    struct daemon *d;
    struct evconnlistener *evl;
    struct event *resume_timer;
    char address[300];
};

static void peer_name(const struct sockaddr *sa, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, cap, "%s:%u", host, port);
}

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)evl;
    (void)salen;
    struct listener *l = arg;
    struct daemon *d = l->d;
    char peer[64];
    peer_name(sa, peer, sizeof peer);
    const char *why = NULL;
    enum metrics_refusal reason = REFUSED_FULL;
    if (d->stopping) {
        why = "shutting down";
        reason = REFUSED_DRAINING;
    } else if (!conn_address_has_room(d, sa)) {
        why = "too many handshakes in progress from its address";
        reason = REFUSED_ADDRESS;
    } else if (conn_count() >= d->cfg->max_connections && !conn_make_room(d)) {
        why = "too many connections";
    }
    if (why) {
        d->metrics.connections_refused++;
        d->metrics.refused[reason]++;
        log_debug("refused a connection from %s: %s", peer, why);
        evutil_closesocket(fd);
        return;
    }
    conn_accept(d, fd, peer, sa);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct listener *l = arg;
    if (!l->d->stopping)
        evconnlistener_enable(l->evl);
}

static void on_error(struct evconnlistener *evl, void *arg)
{
    struct listener *l = arg;
    int e = EVUTIL_SOCKET_ERROR();
    log_error("accept: %s", evutil_socket_error_to_string(e));
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        evconnlistener_disable(evl);
        struct timeval tv = {0, 100 * 1000};
        evtimer_add(l->resume_timer, &tv);
    }
}

struct listener *listener_new(struct daemon *d, char *err, size_t errlen)
{
    struct listener *l = calloc(1, sizeof *l);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res = NULL;
    char port[8];
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->d = d;
    snprintf(port, sizeof port, "%u", d->cfg->listen_port);
    int rc = getaddrinfo(d->cfg->listen_host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s: %s", d->cfg->listen_host, gai_strerror(rc));
        free(l);
        return NULL;
    }
    l->evl = evconnlistener_new_bind(
        d->base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        LISTEN_BACKLOG, res->ai_addr, (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (!l->evl) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", d->cfg->listen_host,
                 d->cfg->listen_port, strerror(errno));
        free(l);
        return NULL;
    }
    evconnlistener_set_error_cb(l->evl, on_error);
    l->resume_timer = evtimer_new(d->base, on_resume, l);
    if (!l->resume_timer ||
        listener_bound_address(evconnlistener_get_fd(l->evl), l->address, sizeof l->address) != 0) {
        snprintf(err, errlen, "cannot set up the listener");
        listener_free(l);
        return NULL;
    }
    return l;
}

int listener_bound_address(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    memset(&ss, 0, sizeof ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(out, cap, "?");
        return -1;
    }
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
    return 0;
}

const char *listener_address(const struct listener *l)
{
    return l->address;
}

void listener_disable(struct listener *l)
{
    if (l && l->evl)
        evconnlistener_disable(l->evl);
}

void listener_free(struct listener *l)
{
    if (!l)
        return;
    if (l->evl)
        evconnlistener_free(l->evl);
    if (l->resume_timer)
        event_free(l->resume_timer);
    free(l);
}
