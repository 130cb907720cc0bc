/*
 * Keeping the index current. Every write function publishes {version, shelter}: the new global
 * version and the changed shelter's snapshot. Messages arrive in version order on one
 * subscription, so a version more than one past the last seen means messages were lost
 * (pub/sub keeps nothing while a subscriber is away); the cure is a full reload. A full reload
 * is also made after every (re)subscription, for the same reason.
 *
 * During a reload, events keep being applied: each snapshot carries its shelter's version, and
 * the index keeps whichever copy of a shelter is newer, so the reload result and the events
 * that raced it merge correctly. The subscription is confirmed before the dump is requested,
 * so no change after the dump can be missed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <fristad/proto.h>

#include "clock.h"
#include "daemon.h"
#include "events.h"
#include "log.h"
#include "redis_link.h"
#include "store.h"

struct events {
    struct daemon *d;
    struct events_hooks hooks;
    void *ud;
    struct rlink *link;
    char channel[96];
    bool subscribed;                 /* the subscription is confirmed on the current link */
    bool reload_wanted;              /* a full load is needed (again) */
    bool reload_inflight;            /* the dump has been requested */
    uint64_t max_event_ver;          /* highest version seen while the dump was in flight */
    char (*raced)[PROTO_ID_MAX + 1]; /* shelters changed by events while the dump was out */
    unsigned n_raced, cap_raced;
};

static void try_reload(struct events *ev);

/* Remembers a shelter an event changed while the dump was in flight. */
static void note_raced(struct events *ev, const msgpack_object *snapshot)
{
    const msgpack_object *id = proto_map_get(snapshot, "id");
    if (!id || id->type != MSGPACK_OBJECT_STR || id->via.str.size > PROTO_ID_MAX)
        return;
    if (ev->n_raced == ev->cap_raced) {
        unsigned cap = ev->cap_raced ? ev->cap_raced * 2 : 16;
        char(*grown)[PROTO_ID_MAX + 1] = realloc(ev->raced, cap * sizeof *grown);
        if (!grown) {
            ev->reload_wanted = true; /* cannot merge this one safely: load again after */
            return;
        }
        ev->raced = grown;
        ev->cap_raced = cap;
    }
    memcpy(ev->raced[ev->n_raced], id->via.str.ptr, id->via.str.size);
    ev->raced[ev->n_raced++][id->via.str.size] = '\0';
}

/* The dump replaces the index (index_replace says how events that raced it are merged). */
static void on_dump(const struct store_result *res, void *ud)
{
    struct events *ev = ud;
    struct index *ix = &ev->d->index;
    struct index fresh;
    const msgpack_object *all = NULL, *v = NULL;

    ev->reload_inflight = false;
    index_init(&fresh);
    if (res->err) {
        log_warning("index: reload failed: %s", res->msg ? res->msg : proto_err_code(res->err));
        goto retry; /* tried again when the store is ready */
    }
    all = proto_map_get(res->result, "shelters");
    v = proto_map_get(res->result, "version");
    if (!all || all->type != MSGPACK_OBJECT_ARRAY || !v ||
        v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        log_error("index: the store's dump is malformed");
        goto retry;
    }
    for (uint32_t i = 0; i < all->via.array.size; i++) {
        if (index_apply(&fresh, &all->via.array.ptr[i]) < 0) {
            log_error("index: shelter %u of the dump is malformed or memory ran out", i);
            goto retry;
        }
    }
    if (index_replace(ix, &fresh, v->via.u64, ev->max_event_ver, ev->raced, ev->n_raced) < 0) {
        log_error("index: out of memory while merging");
        goto retry;
    }
    ev->n_raced = 0;
    ev->d->metrics.index_reloads++;
    ev->d->metrics.index_changed_mono_ms = clock_mono_ms();
    log_info("index: loaded %u shelters at version %llu", ix->n, (unsigned long long)ix->ver);
    ev->hooks.loaded(ev->ud);
    try_reload(ev); /* a resubscribe or a gap while the dump was out wants another */
    return;
retry:
    index_clear(&fresh);
    ev->n_raced = 0;
    ev->reload_wanted = true;
}

static void try_reload(struct events *ev)
{
    if (!ev->reload_wanted || ev->reload_inflight || !ev->subscribed || !store_ready(ev->d->store))
        return;
    ev->max_event_ver = 0;
    ev->n_raced = 0;
    if (store_call(ev->d->store, "dump", STORE_READ, "system:index", "dump", NULL, 0, on_dump,
                   ev) == 0) {
        ev->reload_inflight = true;
        ev->reload_wanted = false; /* anything that wants one from now on sets it again */
    }
}

void events_store_ready(struct events *ev)
{
    try_reload(ev);
}

/*
 * Applies one snapshot to the index and, when it was newer than the copy there, tells the
 * hook what the shelter was before. Returns 0, or -1 when it is malformed or memory ran out.
 */
static int apply(struct events *ev, const msgpack_object *snapshot)
{
    struct index *ix = &ev->d->index;
    struct idx_shelter *s = malloc(sizeof *s);
    if (!s)
        return -1;
    if (!snapshot || index_parse_snapshot(snapshot, s) < 0) {
        free(s);
        return -1;
    }
    const struct idx_shelter *old = index_find(ix, s->id);
    if (old && old->ver >= s->ver) {
        index_shelter_free(s); /* this copy is already in (our own write, then its event) */
        return 0;
    }
    struct idx_shelter *before = old && ev->hooks.changed ? index_shelter_dup(old) : NULL;
    char id[PROTO_ID_MAX + 1];
    memcpy(id, s->id, sizeof id);
    if (index_put_take(ix, s) < 0) {
        index_shelter_free(before);
        return -1;
    }
    if (ev->hooks.changed && (before || !old))
        ev->hooks.changed(ev->ud, before, index_find(ix, id));
    index_shelter_free(before);
    return 0;
}

void events_apply_snapshot(struct daemon *d, const msgpack_object *snapshot)
{
    if (!snapshot)
        return;
    if (apply(d->events, snapshot) < 0)
        log_error("index: a snapshot could not be applied");
    else
        d->metrics.index_changed_mono_ms = clock_mono_ms();
}

static void on_event(struct events *ev, const char *payload, size_t len)
{
    struct index *ix = &ev->d->index;
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, payload, len, &off) != MSGPACK_UNPACK_SUCCESS) {
        log_error("events: unreadable change event; reloading the index");
        ev->reload_wanted = true;
        goto out;
    }
    const msgpack_object *v = proto_map_get(&u.data, "version");
    const msgpack_object *s = proto_map_get(&u.data, "shelter");
    if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || apply(ev, s) < 0) {
        log_error("events: malformed change event; reloading the index");
        ev->reload_wanted = true;
        goto out;
    }
    uint64_t ver = v->via.u64;
    ev->d->metrics.index_changed_mono_ms = clock_mono_ms();
    if (ev->reload_inflight) {
        if (ver > ev->max_event_ver)
            ev->max_event_ver = ver;
        note_raced(ev, s);
    } else if (ver == ix->ver + 1) {
        ix->ver = ver;
    } else if (ver > ix->ver + 1 && ix->loaded) {
        log_warning("events: missed changes (version %llu after %llu); reloading the index",
                    (unsigned long long)ver, (unsigned long long)ix->ver);
        ev->reload_wanted = true;
    }
out:
    msgpack_unpacked_destroy(&u);
    try_reload(ev);
}

static void on_message(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct events *ev = privdata;
    redisReply *reply = r;
    if (!reply)
        return; /* the link is going away; on_down follows */
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) {
        log_info("events: subscribed");
        ev->subscribed = true;
        ev->reload_wanted = true;
        try_reload(ev);
    } else if (strcmp(kind, "message") == 0 && reply->element[2]->type == REDIS_REPLY_STRING) {
        on_event(ev, reply->element[2]->str, reply->element[2]->len);
    }
}

static void on_up(struct rlink *l, void *ud)
{
    struct events *ev = ud;
    const char *argv[] = {"SUBSCRIBE", ev->channel};
    size_t lens[] = {9, strlen(ev->channel)};
    if (rlink_command(l, on_message, ev, 2, argv, lens) != 0)
        log_warning("events: cannot subscribe");
}

static void on_down(struct rlink *l, void *ud)
{
    (void)l;
    struct events *ev = ud;
    ev->subscribed = false;
}

struct events *events_new(struct daemon *d, struct events_hooks hooks, void *ud, char *err,
                          size_t errlen)
{
    struct events *ev = calloc(1, sizeof *ev);
    if (!ev) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ev->d = d;
    ev->hooks = hooks;
    ev->ud = ud;
    snprintf(ev->channel, sizeof ev->channel, "{%s}:events", d->cfg->redis_namespace);
    char address[CONFIG_PATH_MAX + 24];
    config_redis_address(d->cfg, address, sizeof address);
    struct rlink_hooks link_hooks = {.up = on_up, .down = on_down};
    ev->link = rlink_new(d->base, "events", address, link_hooks, ev, err, errlen);
    if (!ev->link) {
        free(ev);
        return NULL;
    }
    return ev;
}

void events_start(struct events *ev)
{
    rlink_start(ev->link);
}

bool events_subscribed(const struct events *ev)
{
    return ev && ev->subscribed;
}

void events_free(struct events *ev)
{
    if (!ev)
        return;
    rlink_free(ev->link);
    free(ev->raced);
    free(ev);
}
