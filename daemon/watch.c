/*
 * Watchers (watch.h). A watcher's life:
 *   CATCHING_UP  it asked to resume from a sequence: the missed events are read back from the
 *                log in batches (fristad_events_read) and sent; live events that arrive
 *                meanwhile wait in a queue;
 *   LIVE         every event from the feed that it may see and that passes its filters is sent
 *                at once, and a heartbeat when nothing else was sent for a while.
 * Every event sent has a sequence after the last one sent, so a resumed stream never repeats
 * one; the queue and the read-back meet in the middle without a gap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "clock.h"
#include "conn.h"
#include "daemon.h"
#include "oncall.h"
#include "store.h"
#include "watch.h"

#define BACKLOG_BATCH 500
#define QUEUE_MAX     10000 /* live events held while catching up; more: the watcher must retry */

enum watcher_state {
    W_CATCHING_UP, /* reading back what it missed; live events wait in the queue */
    W_LIVE,        /* events go out as they come */
};

struct watcher {
    TAILQ_ENTRY(watcher) link;
    struct watchers *all;
    struct request *r;
    struct principal who;
    enum watcher_state state;
    struct seq last; /* the last event sent, or where the stream began */
    uint16_t types;  /* filter: a bit per enum proto_event, 0 for all */
    char county[3];  /* filter, or "" */
    char municipality[5];
    struct event *queue; /* live events that came while catching up */
    unsigned n_queue, cap_queue;
    bool fetching;     /* a read-back is at the store */
    bool sending;      /* an event is being pushed: a close meanwhile leaves the freeing */
    bool gone;         /* the connection has closed: free once the read-back returns */
    int64_t last_sent; /* monotonic ms: for the heartbeat */
};

struct watchers {
    struct daemon *d;
    TAILQ_HEAD(, watcher) list;
    unsigned n;
    struct event *heartbeat;
};

unsigned watch_count(const struct watchers *w)
{
    return w->n;
}

/* ---- who may see what ------------------------------------------------------------------- */

/* The municipalities an on-call principal acts for: those of its agreement ([oncall]), as the
 * configuration says now (a reload applies to watchers already open). */
static bool acts_for(const struct watcher *w, const char *municipality)
{
    return oncall_serves(w->all->d->cfg, w->who.id, municipality);
}

static bool about_a_hold(enum proto_event t)
{
    return t == EV_HELD || t == EV_ACCEPTED || t == EV_DECLINED || t == EV_RELEASED ||
           t == EV_EXPIRED || t == EV_CONFIRMED || t == EV_DISCHARGED;
}

static bool may_see(const struct watcher *w, const struct event *e)
{
    const struct principal *p = &w->who;
    bool own_search = (e->type == EV_MATCH || e->type == EV_STANDING) && !strcmp(e->by, p->name);
    switch (p->role) {
    case ROLE_ADMIN:
        return true;
    case ROLE_SHELTER:
        return e->type != EV_MATCH && e->type != EV_STANDING && e->shelter[0] &&
               !strcmp(e->shelter, p->id);
    case ROLE_SOCIAL:
        if (e->type == EV_MATCH || e->type == EV_STANDING)
            return own_search;
        return (about_a_hold(e->type) || e->type == EV_ESCALATED) &&
               !strcmp(e->municipality, p->id);
    case ROLE_ONCALL:
        if (e->type == EV_MATCH || e->type == EV_STANDING)
            return own_search;
        if (e->type == EV_ESCALATED && e->step < 2) /* step 1: the shelter and the holder */
            return !strcmp(e->by, p->name);
        return (about_a_hold(e->type) || e->type == EV_ESCALATED) && acts_for(w, e->municipality);
    case ROLE__COUNT:
        break;
    }
    return false;
}

/* The watcher's own filters: types, and the event's place (its shelter's municipality). */
static bool passes(const struct watcher *w, const struct event *e)
{
    if (w->types && !(w->types & (1u << e->type)))
        return false;
    if (!w->county[0] && !w->municipality[0])
        return true;
    const struct daemon *d = w->all->d;
    const char *mun = e->municipality;
    const struct idx_shelter *s = e->shelter[0] ? index_find(&d->index, e->shelter) : NULL;
    if (s)
        mun = d->geo->m[s->mun].code;
    if (!mun[0])
        return false;
    if (w->municipality[0] && strcmp(mun, w->municipality) != 0)
        return false;
    if (w->county[0] && memcmp(mun, w->county, 2) != 0)
        return false;
    return true;
}

/* ---- sending ---------------------------------------------------------------------------- */

static bool send_event(struct watcher *w, const struct event *e)
{
    msgpack_packer *pk = request_reply(w->r);
    if (!pk)
        return false;
    int rc = msgpack_pack_map(pk, 1);
    rc |= proto_pack_cstr(pk, "event");
    rc |= event_pack(pk, e);
    if (rc != 0)
        return false;
    w->last = e->seq;
    w->last_sent = clock_mono_ms();
    /* A push may close the connection (a consumer too slow): on_closed then leaves the watcher
     * to the caller, which ends it with end_watch. */
    w->sending = true;
    bool sent = request_push(w->r);
    w->sending = false;
    return sent;
}

/* Sends e if it is after the last one sent, visible and wanted. False: the stream is over. */
static bool offer(struct watcher *w, const struct event *e)
{
    if (seq_cmp(e->seq, w->last) <= 0)
        return true; /* sent already, by the read-back */
    if (!may_see(w, e) || !passes(w, e)) {
        w->last = e->seq;
        return true;
    }
    return send_event(w, e);
}

static void watcher_free(struct watcher *w)
{
    free(w->queue);
    free(w);
}

/* The connection went away (request_stream's callback). */
static void on_closed(void *ud)
{
    struct watcher *w = ud;
    TAILQ_REMOVE(&w->all->list, w, link);
    w->all->n--;
    w->r = NULL;
    if (w->fetching || w->sending)
        w->gone = true; /* the read-back's callback, or end_watch after the push, frees it */
    else
        watcher_free(w);
}

static void end_watch(struct watcher *w, enum proto_err code, const char *message)
{
    struct request *r = w->r;
    if (!r) { /* it went away while an event was being sent */
        if (w->gone && !w->fetching)
            watcher_free(w);
        return;
    }
    /* The error is a last frame of the stream, then the connection closes. */
    request_push_error(r, code, message);
    on_closed(w);
    request_end(r);
}

void watch_deliver(struct watchers *all, const struct event *e)
{
    struct watcher *w, *next;
    for (w = TAILQ_FIRST(&all->list); w; w = next) {
        next = TAILQ_NEXT(w, link);
        if (w->state == W_CATCHING_UP) {
            /* Only what it will be sent waits: others' events cost its queue nothing. */
            if (!may_see(w, e) || !passes(w, e))
                continue;
            if (w->n_queue == w->cap_queue) {
                unsigned cap = w->cap_queue ? w->cap_queue * 2 : 64;
                struct event *grown =
                    cap <= QUEUE_MAX ? realloc(w->queue, cap * sizeof *grown) : NULL;
                if (!grown) {
                    end_watch(w, PROTO_E_UNAVAILABLE,
                              "too many events while catching up; watch again from the last "
                              "sequence you have");
                    continue;
                }
                w->queue = grown;
                w->cap_queue = cap;
            }
            w->queue[w->n_queue++] = *e;
            continue;
        }
        if (!offer(w, e))
            end_watch(w, PROTO_E_UNAVAILABLE, "the event could not be sent");
    }
}

/* ---- catching up -------------------------------------------------------------------------- */

static void fetch(struct watcher *w);

static void go_live(struct watcher *w)
{
    w->state = W_LIVE;
    for (unsigned i = 0; i < w->n_queue; i++) {
        if (!offer(w, &w->queue[i])) {
            end_watch(w, PROTO_E_UNAVAILABLE, "the event could not be sent");
            return;
        }
    }
    free(w->queue);
    w->queue = NULL;
    w->n_queue = w->cap_queue = 0;
}

static void on_backlog(const struct store_result *res, void *ud)
{
    struct watcher *w = ud;
    w->fetching = false;
    if (w->gone) {
        watcher_free(w);
        return;
    }
    const msgpack_object *gone = res->err ? NULL : proto_map_get(res->result, "gone");
    const msgpack_object *events = res->err ? NULL : proto_map_get(res->result, "events");
    if (res->err) {
        end_watch(w, res->err == PROTO_E_OUTCOME_UNKNOWN ? PROTO_E_UNAVAILABLE : res->err,
                  res->msg);
        return;
    }
    if (gone && gone->type == MSGPACK_OBJECT_BOOLEAN && gone->via.boolean) {
        end_watch(w, PROTO_E_GONE,
                  "the events after that sequence are older than the event log keeps; "
                  "look at the current state (holds, placements, free) and watch anew");
        return;
    }
    uint32_t n = events && events->type == MSGPACK_OBJECT_ARRAY ? events->via.array.size : 0;
    for (uint32_t i = 0; i < n; i++) {
        struct event e;
        if (event_from_map(&events->via.array.ptr[i], &e) && !offer(w, &e)) {
            end_watch(w, PROTO_E_UNAVAILABLE, "the event could not be sent");
            return;
        }
    }
    if (n == BACKLOG_BATCH)
        fetch(w);
    else
        go_live(w);
}

/* Reads back the events after the last one sent. */
static void fetch(struct watcher *w)
{
    char since[48];
    snprintf(since, sizeof since, "%llu-%llu", (unsigned long long)w->last.ms,
             (unsigned long long)w->last.n);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 2);
    rc |= proto_pack_kv_str(&pk, "since", since);
    rc |= proto_pack_kv_int(&pk, "limit", BACKLOG_BATCH);
    w->fetching = rc == 0 && store_call(w->all->d->store, "events_read", STORE_READ, w->who.name,
                                        "watch", sb.data, sb.size, on_backlog, w) == 0;
    msgpack_sbuffer_destroy(&sb);
    if (!w->fetching)
        end_watch(w, PROTO_E_UNAVAILABLE,
                  "the event log cannot be read right now; watch again in a moment");
}

/* ---- starting ----------------------------------------------------------------------------- */

void watch_start(struct watchers *all, struct request *r, const struct proto_request *req)
{
    const struct proto_args *a = &req->args;
    const struct principal *who = request_principal(r);
    unsigned mine = 0;
    struct watcher *w;
    TAILQ_FOREACH(w, &all->list, link)
    {
        mine += strcmp(w->who.name, who->name) == 0;
    }
    if (mine >= all->d->cfg->max_watchers) {
        request_error(r, PROTO_E_LIMIT_REACHED,
                      "this principal has as many watching connections as it may");
        return;
    }
    struct seq at;
    if (!feed_position(all->d->feed, &at)) {
        request_error(r, PROTO_E_UNAVAILABLE,
                      "the event log is not reachable yet; watch again in a moment");
        return;
    }
    if (!(w = calloc(1, sizeof *w))) {
        request_error(r, PROTO_E_INTERNAL, "out of memory");
        return;
    }
    w->all = all;
    w->r = r;
    w->who = *who;
    w->types = proto_has(a, F_TYPES) ? a->types : 0;
    if (proto_has(a, F_COUNTY))
        snprintf(w->county, sizeof w->county, "%s", a->county);
    if (proto_has(a, F_MUNICIPALITY))
        snprintf(w->municipality, sizeof w->municipality, "%s", a->municipality);
    /* Resuming: from the sequence given (after it), or from a time (at it). Else: from now. */
    w->state = proto_has(a, F_SINCE) ? W_CATCHING_UP : W_LIVE;
    if (proto_has(a, F_SINCE))
        w->last = a->since_is_seq ? (struct seq){(uint64_t)a->since, a->since_seq}
                  : a->since > 0  ? (struct seq){(uint64_t)a->since - 1, UINT64_MAX}
                                  : (struct seq){0, 0};
    else
        w->last = at;
    msgpack_packer *pk = request_reply(r);
    if (!pk) {
        free(w);
        return;
    }
    char seq[48];
    snprintf(seq, sizeof seq, "%llu-%llu", (unsigned long long)w->last.ms,
             (unsigned long long)w->last.n);
    int rc = msgpack_pack_map(pk, 2);
    rc |= proto_pack_kv_bool(pk, "watching", true);
    rc |= proto_pack_kv_str(pk, "seq", seq);
    request_stream(r, on_closed, w);
    TAILQ_INSERT_TAIL(&all->list, w, link);
    all->n++;
    w->last_sent = clock_mono_ms();
    if (rc != 0 || !request_push(r))
        return; /* the connection closed; on_closed has freed the watcher */
    if (w->state == W_CATCHING_UP)
        fetch(w);
}

/* ---- heartbeat ------------------------------------------------------------------------------ */

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct watchers *all = arg;
    int64_t now = clock_mono_ms(), every = all->d->cfg->heartbeat_ms;
    struct watcher *w, *next;
    for (w = TAILQ_FIRST(&all->list); w; w = next) {
        next = TAILQ_NEXT(w, link);
        if (w->state != W_LIVE || now - w->last_sent < every)
            continue;
        msgpack_packer *pk = request_reply(w->r);
        if (!pk)
            continue;
        int rc = msgpack_pack_map(pk, 1);
        rc |= proto_pack_kv_int(pk, "heartbeat", clock_wall_ms());
        w->last_sent = now;
        if (rc == 0)
            (void)request_push(w->r);
    }
}

void watch_arm(struct watchers *all)
{
    /* A tick of a quarter of the interval keeps every watcher within it. */
    int64_t ms = all->d->cfg->heartbeat_ms / 4 + 1;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000 * 1000)};
    event_del(all->heartbeat);
    event_add(all->heartbeat, &tv);
}

struct watchers *watch_new(struct daemon *d)
{
    struct watchers *all = calloc(1, sizeof *all);
    if (!all)
        return NULL;
    all->d = d;
    TAILQ_INIT(&all->list);
    if (!(all->heartbeat = event_new(d->base, -1, EV_PERSIST, on_heartbeat, all))) {
        free(all);
        return NULL;
    }
    return all;
}

void watch_free(struct watchers *all)
{
    if (!all)
        return;
    struct watcher *w;
    while ((w = TAILQ_FIRST(&all->list)) != NULL) {
        struct request *r = w->r;
        on_closed(w);
        request_end(r);
    }
    event_free(all->heartbeat);
    free(all);
}
