/*
 * Keeping the index current. Every write function publishes {version, shelter}: the new global
 * version and the changed shelter's snapshot. Messages arrive in version order on one
 * subscription, so a version more than one past the last seen means messages were lost
 * (pub/sub keeps nothing while a subscriber is away); the cure is a full reload. A full reload
 * is also made after every (re)subscription, for the same reason.
 *
 * A full load reads the snapshots the store keeps (snap:<sid>, written by every change) a page
 * at a time, so that no call keeps Redis from other daemons' writes for more than a moment;
 * the next page is asked for before a page is parsed. The pages are not one moment's state:
 * each shelter is as new as when its page was read, and the load reflects every change up to
 * the version Redis had at the first page.
 *
 * During a load, events keep being applied: each snapshot carries its shelter's version, and
 * the index keeps whichever copy of a shelter is newer, so the load and the events that raced
 * it merge correctly. The subscription is confirmed before the first page is requested, so no
 * change after it can be missed.
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
#include "sentinel.h"
#include "store.h"

/* Shelters per page of a full load: one SSCAN and one MGET of about this many keep Redis busy
 * for a millisecond or two each. */
#define PAGE_COUNT     "1000"
#define PAGES_INFLIGHT 2  /* MGETs at the store at once: Redis fetches one while one is parsed */
#define REBUILD_BATCH  16 /* snapshots made anew per call: each costs Redis 50-100 microseconds */
/* Calls that make snapshots anew at the store at once: Redis runs a client's pipelined calls
 * one after another, and other daemons' writes wait behind them. */
#define REBUILD_INFLIGHT  2
#define REBUILD_QUEUE_MAX 2048 /* ids waiting for that: more, and no further page is read */
#define RETRY_MS          1000

extern const char fristad_lua_digest[]; /* what a snapshot stored by this build begins with */

/*
 * A full load: the state of the one under way. A reply that belongs to an older load (one that
 * failed, or was replaced) finds another generation and is dropped.
 */
struct load {
    unsigned generation;
    bool version_known; /* the global version when it began */
    uint64_t version;
    bool scan_done;                  /* SSCAN has come back to cursor 0 */
    char cursor[32];                 /* where the next SSCAN starts, while one waits for room */
    bool scan_waiting;               /* the next SSCAN waits for fewer pages in flight */
    unsigned values_out;             /* MGETs at the store */
    unsigned rebuild_out;            /* calls of fristad_snapshots at the store */
    char (*queue)[PROTO_ID_MAX + 1]; /* shelters whose snapshots are to be made anew */
    unsigned q_head, q_len, q_cap;   /* queue[q_head .. q_head + q_len) */
    unsigned outstanding;            /* replies still to come, of every kind */
    unsigned pages, rebuilt;
    int64_t started_ms; /* monotonic */
};

struct events {
    struct daemon *d;
    struct events_hooks hooks;
    void *ud;
    struct rlink *link;
    char channel[96];
    char shelters_key[96];           /* "{ns}:shelters" */
    char snap_prefix[96];            /* "{ns}:snap:" */
    bool subscribed;                 /* the subscription is confirmed on the current link */
    bool reload_wanted;              /* a full load is needed (again) */
    bool reload_inflight;            /* a full load is under way */
    struct index fresh;              /* the load so far */
    struct load load;                /* the load under way */
    uint64_t max_event_ver;          /* highest version seen while the load was under way */
    char (*raced)[PROTO_ID_MAX + 1]; /* shelters changed by events while the load was under way */
    unsigned n_raced, cap_raced;
    struct event *retry; /* a failed load is tried again after a pause */
};

/* A request of the load at the store; for an MGET, the ids it asked for, back to back. */
struct load_req {
    struct events *ev;
    unsigned generation;
    unsigned n;
    char (*ids)[PROTO_ID_MAX + 1];
};

static void try_reload(struct events *ev);
static void scan_next(struct events *ev);

/* Remembers a shelter an event changed while the load was under way. */
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

/* Gives up on the load under way; it is tried again after a pause. */
static void load_failed(struct events *ev)
{
    ev->load.generation++;
    ev->load.q_head = ev->load.q_len = 0;
    ev->reload_inflight = false;
    index_clear(&ev->fresh);
    ev->n_raced = 0;
    ev->reload_wanted = true;
    struct timeval tv = {RETRY_MS / 1000, (RETRY_MS % 1000) * 1000};
    evtimer_add(ev->retry, &tv);
}

static struct load_req *req_new(struct events *ev, unsigned n)
{
    struct load_req *q = calloc(1, sizeof *q);
    if (q && n > 0 && !(q->ids = malloc(n * sizeof *q->ids))) {
        free(q);
        return NULL;
    }
    if (q) {
        q->ev = ev;
        q->generation = ev->load.generation;
    }
    return q;
}

static void req_free(struct load_req *q)
{
    if (q)
        free(q->ids);
    free(q);
}

/* Takes a reply's request back: false when its load is no longer the one under way. */
static bool req_current(struct load_req *q)
{
    struct events *ev = q->ev;
    bool current = ev->reload_inflight && q->generation == ev->load.generation;
    if (current)
        ev->load.outstanding--;
    return current;
}

enum take { TAKEN, MALFORMED, NO_MEMORY };

/* Adds packed {version, shelter} maps, back to back, to the load; all of them, or, when one is
 * malformed, those before it. */
static enum take take_snapshots(struct events *ev, const char *p, size_t len)
{
    msgpack_unpacked u;
    size_t off = 0;
    enum take rc = TAKEN;
    msgpack_unpacked_init(&u);
    while (off < len && rc == TAKEN) {
        struct idx_shelter *s = malloc(sizeof *s);
        if (!s) {
            rc = NO_MEMORY;
        } else if (msgpack_unpack_next(&u, p, len, &off) != MSGPACK_UNPACK_SUCCESS ||
                   index_parse_snapshot(proto_map_get(&u.data, "shelter"), s) < 0) {
            free(s);
            rc = MALFORMED;
        } else if (index_bulk_add(&ev->fresh, s) < 0) {
            rc = NO_MEMORY;
        }
    }
    msgpack_unpacked_destroy(&u);
    if (rc == NO_MEMORY)
        log_error("index: out of memory while loading");
    return rc;
}

/* The load is complete: it replaces the index (index_replace says how events that raced it
 * are merged). */
static void finish_load(struct events *ev)
{
    struct index *ix = &ev->d->index;
    struct load *ld = &ev->load;
    ev->reload_inflight = false;
    ld->generation++;
    if (index_bulk_end(&ev->fresh) < 0 ||
        index_replace(ix, &ev->fresh, ld->version, ev->max_event_ver, ev->raced, ev->n_raced) < 0) {
        log_error("index: out of memory while loading");
        load_failed(ev);
        return;
    }
    ev->n_raced = 0;
    ev->d->metrics.index_reloads++;
    ev->d->metrics.index_changed_mono_ms = clock_mono_ms();
    log_info("index: loaded %u shelters at version %llu in %u pages (%u snapshots made anew), "
             "%lld ms",
             ix->n, (unsigned long long)ix->ver, ld->pages, ld->rebuilt,
             (long long)(clock_mono_ms() - ld->started_ms));
    ev->hooks.loaded(ev->ud);
    try_reload(ev); /* a resubscribe or a gap while the load was under way wants another */
}

static void maybe_done(struct events *ev)
{
    if (ev->reload_inflight && ev->load.scan_done && ev->load.outstanding == 0 &&
        ev->load.q_len == 0)
        finish_load(ev);
}

static int pump_rebuild(struct events *ev);

static void on_rebuilt(const struct store_result *res, void *ud)
{
    struct load_req *q = ud;
    struct events *ev = q->ev;
    bool current = req_current(q);
    req_free(q);
    if (!current)
        return;
    const msgpack_object *snaps = res->err ? NULL : proto_map_get(res->result, "snapshots");
    if (!snaps || (snaps->type != MSGPACK_OBJECT_STR && snaps->type != MSGPACK_OBJECT_BIN)) {
        log_warning("index: loading failed: %s",
                    res->err ? (res->msg ? res->msg : proto_err_code(res->err))
                             : "the store made no snapshots");
        load_failed(ev);
        return;
    }
    const char *p = snaps->type == MSGPACK_OBJECT_STR ? snaps->via.str.ptr : snaps->via.bin.ptr;
    size_t len = snaps->type == MSGPACK_OBJECT_STR ? snaps->via.str.size : snaps->via.bin.size;
    enum take t = take_snapshots(ev, p, len);
    if (t != TAKEN) {
        if (t == MALFORMED)
            log_error("index: the store made a snapshot that cannot be read");
        load_failed(ev);
        return;
    }
    ev->load.rebuild_out--;
    if (pump_rebuild(ev) < 0) {
        load_failed(ev);
        return;
    }
    maybe_done(ev);
}

/* Asks the store to make anew the queued snapshots (missing, of another library, or
 * unreadable), a few calls at a time. Returns 0 or -1. */
static int pump_rebuild(struct events *ev)
{
    struct load *ld = &ev->load;
    while (ld->rebuild_out < REBUILD_INFLIGHT && ld->q_len > 0) {
        unsigned k = ld->q_len < REBUILD_BATCH ? ld->q_len : REBUILD_BATCH;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        int rc = msgpack_pack_map(&pk, 1);
        rc |= proto_pack_cstr(&pk, "shelters");
        rc |= msgpack_pack_array(&pk, k);
        for (unsigned j = 0; j < k; j++)
            rc |= proto_pack_cstr(&pk, ld->queue[ld->q_head + j]);
        struct load_req *q = rc ? NULL : req_new(ev, 0);
        if (!q || store_call(ev->d->store, "snapshots", STORE_READ, "system:index", "snapshots",
                             sb.data, sb.size, on_rebuilt, q) != 0) {
            req_free(q);
            msgpack_sbuffer_destroy(&sb);
            return -1;
        }
        msgpack_sbuffer_destroy(&sb);
        ld->q_head += k;
        ld->q_len -= k;
        if (ld->q_len == 0)
            ld->q_head = 0;
        ld->outstanding++;
        ld->rebuild_out++;
        ld->rebuilt += k;
    }
    if (ld->scan_waiting)
        scan_next(ev);
    return 0;
}

/* Queues shelters whose snapshots are to be made anew. Returns 0 or -1. */
static int queue_rebuild(struct events *ev, char (*ids)[PROTO_ID_MAX + 1], unsigned n)
{
    struct load *ld = &ev->load;
    if (ld->q_head > 0) {
        memmove(ld->queue, ld->queue + ld->q_head, ld->q_len * sizeof *ld->queue);
        ld->q_head = 0;
    }
    if (ld->q_len + n > ld->q_cap) {
        unsigned cap = ld->q_cap ? ld->q_cap : 1024;
        while (cap < ld->q_len + n)
            cap *= 2;
        char(*grown)[PROTO_ID_MAX + 1] = realloc(ld->queue, cap * sizeof *grown);
        if (!grown)
            return -1;
        ld->queue = grown;
        ld->q_cap = cap;
    }
    memcpy(ld->queue + ld->q_len, ids, n * sizeof *ids);
    ld->q_len += n;
    return pump_rebuild(ev);
}

/* The stored snapshots of one page: those of this library are parsed, the rest made anew. */
static void on_values(const struct redisReply *reply, void *ud)
{
    struct load_req *q = ud;
    struct events *ev = q->ev;
    bool current = req_current(q);
    if (!current) {
        req_free(q);
        return;
    }
    ev->load.values_out--;
    if (ev->load.scan_waiting)
        scan_next(ev); /* room for the next page: Redis reads it while this one is parsed */
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != q->n) {
        log_warning("index: loading failed: the store did not answer with the snapshots");
        req_free(q);
        load_failed(ev);
        return;
    }
    size_t tag = strlen(fristad_lua_digest);
    unsigned stale = 0;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *v = reply->element[i];
        enum take t = MALFORMED;
        if (v->type == REDIS_REPLY_STRING && v->len > tag &&
            memcmp(v->str, fristad_lua_digest, tag) == 0 &&
            (t = take_snapshots(ev, v->str + tag, v->len - tag)) == MALFORMED)
            log_warning("index: the stored snapshot of shelter %s is unreadable; making it anew",
                        q->ids[i]);
        if (t == NO_MEMORY) {
            req_free(q);
            load_failed(ev);
            return;
        }
        if (t == MALFORMED) /* missing, of another library, or unreadable */
            memcpy(q->ids[stale++], q->ids[i], sizeof q->ids[0]); /* i >= stale */
    }
    int rc = stale ? queue_rebuild(ev, q->ids, stale) : 0;
    req_free(q);
    if (rc < 0) {
        load_failed(ev);
        return;
    }
    maybe_done(ev);
}

/* One page of shelter ids: their stored snapshots are asked for, and the next page. */
static void on_scan(const struct redisReply *reply, void *ud)
{
    struct load_req *q = ud;
    struct events *ev = q->ev;
    bool current = req_current(q);
    req_free(q);
    if (!current)
        return;
    struct load *ld = &ev->load;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[0]->len >= sizeof ld->cursor ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        log_warning("index: loading failed: the store did not answer with shelter ids");
        load_failed(ev);
        return;
    }
    const redisReply *ids = reply->element[1];
    memcpy(ld->cursor, reply->element[0]->str, reply->element[0]->len);
    ld->cursor[reply->element[0]->len] = '\0';
    ld->scan_done = strcmp(ld->cursor, "0") == 0;
    ld->pages++;
    if (ids->elements > 0) {
        size_t n = ids->elements;
        const char **argv = malloc((n + 1) * sizeof *argv);
        size_t *lens = malloc((n + 1) * sizeof *lens);
        char *keys = malloc(n * sizeof ev->snap_prefix + n * (PROTO_ID_MAX + 1));
        struct load_req *vq = req_new(ev, (unsigned)n);
        size_t plen = strlen(ev->snap_prefix), used = 0;
        bool ok = argv && lens && keys && vq;
        if (ok) {
            argv[0] = "MGET";
            lens[0] = 4;
        }
        for (size_t i = 0; ok && i < n; i++) {
            const redisReply *id = ids->element[i];
            ok = id->type == REDIS_REPLY_STRING && id->len > 0 && id->len <= PROTO_ID_MAX;
            if (!ok)
                break;
            memcpy(vq->ids[i], id->str, id->len);
            vq->ids[i][id->len] = '\0';
            argv[i + 1] = keys + used;
            memcpy(keys + used, ev->snap_prefix, plen);
            memcpy(keys + used + plen, id->str, id->len);
            lens[i + 1] = plen + id->len;
            used += lens[i + 1];
        }
        if (ok) {
            vq->n = (unsigned)n;
            ok = store_read(ev->d->store, (int)n + 1, argv, lens, on_values, vq) == 0;
        }
        free(argv);
        free(lens);
        free(keys);
        if (!ok) {
            req_free(vq);
            log_warning("index: loading failed: a page of shelter ids could not be read");
            load_failed(ev);
            return;
        }
        ld->outstanding++;
        ld->values_out++;
    }
    if (!ld->scan_done)
        scan_next(ev);
    maybe_done(ev);
}

/* Asks for the next page of ids, or waits until fewer pages are in flight. */
static void scan_next(struct events *ev)
{
    struct load *ld = &ev->load;
    ld->scan_waiting = ld->values_out >= PAGES_INFLIGHT || ld->q_len >= REBUILD_QUEUE_MAX;
    if (ld->scan_waiting)
        return;
    const char *argv[] = {"SSCAN", ev->shelters_key, ld->cursor, "COUNT", PAGE_COUNT};
    size_t lens[5];
    for (int i = 0; i < 5; i++)
        lens[i] = strlen(argv[i]);
    struct load_req *q = req_new(ev, 0);
    if (!q || store_read(ev->d->store, 5, argv, lens, on_scan, q) != 0) {
        req_free(q);
        load_failed(ev);
        return;
    }
    ld->outstanding++;
}

/* The global version before the first page: every change up to it is in the load. */
static void on_version(const struct redisReply *reply, void *ud)
{
    struct load_req *q = ud;
    struct events *ev = q->ev;
    bool current = req_current(q);
    req_free(q);
    if (!current)
        return;
    if (!reply || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL)) {
        log_warning("index: loading failed: the store's version is unreadable");
        load_failed(ev);
        return;
    }
    ev->load.version = reply->type == REDIS_REPLY_NIL ? 0 : strtoull(reply->str, NULL, 10);
    ev->load.version_known = true;
    maybe_done(ev);
}

static void try_reload(struct events *ev)
{
    if (!ev->reload_wanted || ev->reload_inflight || !ev->subscribed || !store_ready(ev->d->store))
        return;
    evtimer_del(ev->retry);
    ev->max_event_ver = 0;
    ev->n_raced = 0;
    index_clear(&ev->fresh);
    unsigned generation = ev->load.generation + 1;
    char(*queue)[PROTO_ID_MAX + 1] = ev->load.queue;
    unsigned q_cap = ev->load.q_cap;
    ev->load = (struct load){
        .generation = generation, .started_ms = clock_mono_ms(), .queue = queue, .q_cap = q_cap};
    snprintf(ev->load.cursor, sizeof ev->load.cursor, "0");
    ev->reload_inflight = true;
    ev->reload_wanted = false; /* anything that wants one from now on sets it again */
    char verkey[96];
    snprintf(verkey, sizeof verkey, "{%s}:ver", ev->d->cfg->redis_namespace);
    const char *argv[] = {"GET", verkey};
    size_t lens[] = {3, strlen(verkey)};
    struct load_req *q = req_new(ev, 0);
    if (!q || store_read(ev->d->store, 2, argv, lens, on_version, q) != 0) {
        req_free(q);
        load_failed(ev);
        return;
    }
    ev->load.outstanding++;
    scan_next(ev);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    try_reload(arg);
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
    snprintf(ev->shelters_key, sizeof ev->shelters_key, "{%s}:shelters", d->cfg->redis_namespace);
    snprintf(ev->snap_prefix, sizeof ev->snap_prefix, "{%s}:snap:", d->cfg->redis_namespace);
    index_init(&ev->fresh);
    if (!(ev->retry = evtimer_new(d->base, on_retry, ev))) {
        snprintf(err, errlen, "out of memory");
        free(ev);
        return NULL;
    }
    struct rlink_hooks link_hooks = {.up = on_up, .down = on_down};
    ev->link = sentinel_link_new(d, "events", link_hooks, ev, err, errlen);
    if (!ev->link) {
        event_free(ev->retry);
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
    event_free(ev->retry);
    index_clear(&ev->fresh);
    free(ev->load.queue);
    free(ev->raced);
    free(ev);
}
