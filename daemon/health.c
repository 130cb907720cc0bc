/* The health port: see health.h. One line per connection, written at accept. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/listener.h>

#include "daemon.h"
#include "health.h"
#include "listener.h"
#include "log.h"
#include "store.h"

struct health {
    struct daemon *d;
    struct evconnlistener *evl;
    char address[300];
};

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)evl;
    (void)sa;
    (void)salen;
    struct health *h = arg;
    const struct daemon *d = h->d;
    const char *line = d->stopping             ? "stopping\n"
                       : !d->ready_logged      ? "loading\n"
                       : store_ready(d->store) ? "ready store=up\n"
                                               : "ready store=down\n";
    /* A fresh socket's buffer takes one short line: it is written whole or not at all. */
    if (send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        log_debug("health: %s", strerror(errno));
    shutdown(fd, SHUT_WR);
    evutil_closesocket(fd);
}

struct health *health_new(struct daemon *d, char *err, size_t errlen)
{
    struct health *h = calloc(1, sizeof *h);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res = NULL;
    char port[8];
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->d = d;
    snprintf(port, sizeof port, "%u", d->cfg->health_port);
    int rc = getaddrinfo(d->cfg->health_host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "health_listen %s: %s", d->cfg->health_host, gai_strerror(rc));
        free(h);
        return NULL;
    }
    h->evl = evconnlistener_new_bind(
        d->base, on_accept, h, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        16, res->ai_addr, (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (!h->evl) {
        snprintf(err, errlen, "cannot listen on %s:%u for health checks: %s", d->cfg->health_host,
                 d->cfg->health_port, strerror(errno));
        free(h);
        return NULL;
    }
    (void)listener_bound_address(evconnlistener_get_fd(h->evl), h->address, sizeof h->address);
    return h;
}

const char *health_address(const struct health *h)
{
    return h->address;
}

void health_free(struct health *h)
{
    if (!h)
        return;
    if (h->evl)
        evconnlistener_free(h->evl);
    free(h);
}
