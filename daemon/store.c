/*
 * The store link. Every write is one FCALL of a function in fristad.lua, so the check and the
 * change happen in one atomic step inside Redis. This file knows how to call them and what
 * their failures mean for the person waiting:
 *   - the link is down before sending: "unavailable", nothing was done;
 *   - the link is lost after sending a read: "unavailable";
 *   - the link is lost after sending a write: "outcome_unknown", because Redis may have done it;
 *   - Redis is still loading its AOF, busy, or read-only after a failover: "unavailable".
 * Redis that stops answering without closing the socket is caught by a watchdog that drops
 * the link, which turns every waiting request into one of the answers above.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "daemon.h"
#include "log.h"
#include "redis_link.h"
#include "sentinel.h"
#include "store.h"

extern const char fristad_lua[];
extern const size_t fristad_lua_len;

#define STALL_MS      5000 /* beyond any WAIT: a reply later means Redis stopped answering */
#define RETRY_LOAD_MS 200

struct pending {
    struct pending *prev, *next; /* in send order: hiredis answers in this order */
    struct store *st;
    int64_t deadline_ms; /* later than this without a reply: Redis has stopped answering */
    enum store_kind kind;
    store_cb *cb;
    store_reply_cb *raw; /* store_read: the reply as it is */
    void *ud;
    bool waiting_replicas; /* a WAIT follows; the FCALL reply is kept in `body` */
    bool have_body;
    bool body_is_error;
    char *body;
    size_t body_len;
};

struct store {
    struct daemon *d;
    struct store_hooks hooks;
    void *ud;
    struct rlink *link;
    bool ready;
    char key[96];        /* "{ns}:ver": KEYS[1] of every call */
    struct pending head; /* sentinel of the in-flight list */
    unsigned inflight;
    struct event *watchdog;
    struct event *load_retry;
    struct event *drop; /* sentinel mode: leaves a server that has become a replica */
};

static void deliver_error(struct pending *p, enum proto_err err, const char *msg)
{
    struct store_result res = {.err = err, .msg = msg};
    if (p->cb)
        p->cb(&res, p->ud);
}

static void unlink_pending(struct pending *p)
{
    p->prev->next = p->next;
    p->next->prev = p->prev;
    p->st->inflight--;
    free(p->body);
    free(p);
}

/* Decodes one function result (trusted: produced by our own Lua) and hands it on. */
static void deliver_body(struct pending *p, const char *body, size_t len)
{
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, body, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP) {
        log_error("store: a function returned something that is not a msgpack map");
        deliver_error(p, PROTO_E_INTERNAL, "the store returned an unreadable result");
        msgpack_unpacked_destroy(&u);
        return;
    }
    struct store_result res = {.err = PROTO_OK};
    const msgpack_object *e = proto_map_get(&u.data, "error");
    char msg[PROTO_MESSAGE_MAX];
    if (e) {
        const msgpack_object *m = proto_map_get(&u.data, "message");
        res.err = e->type == MSGPACK_OBJECT_STR
                      ? proto_err_from_code(e->via.str.ptr, e->via.str.size)
                      : PROTO_E__COUNT;
        if (res.err == PROTO_E__COUNT || res.err == PROTO_OK)
            res.err = PROTO_E_INTERNAL;
        snprintf(msg, sizeof msg, "%.*s",
                 m && m->type == MSGPACK_OBJECT_STR ? (int)m->via.str.size : 0,
                 m && m->type == MSGPACK_OBJECT_STR ? m->via.str.ptr : "");
        res.msg = msg;
    } else {
        res.result = proto_map_get(&u.data, "result");
        res.snapshot = proto_map_get(&u.data, "snapshot");
        const msgpack_object *rp = proto_map_get(&u.data, "replay");
        res.replay = rp && rp->type == MSGPACK_OBJECT_BOOLEAN && rp->via.boolean;
        if (!res.result) {
            log_error("store: a function returned no result");
            res.err = PROTO_E_INTERNAL;
            res.msg = "the store returned no result";
        }
    }
    if (p->cb)
        p->cb(&res, p->ud);
    msgpack_unpacked_destroy(&u);
}

/* True when a function result is a refusal ({err = ...}): the function wrote no state. */
static bool is_refusal(const char *body, size_t len)
{
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    bool refused = msgpack_unpack_next(&u, body, len, &off) == MSGPACK_UNPACK_SUCCESS &&
                   proto_map_get(&u.data, "error") != NULL;
    msgpack_unpacked_destroy(&u);
    return refused;
}

/* Maps a Redis error reply to what the client is told. */
static void deliver_redis_error(struct pending *p, const char *text, size_t len)
{
    if (len >= 7 && memcmp(text, "LOADING", 7) == 0) {
        deliver_error(p, PROTO_E_UNAVAILABLE, "the store is starting up; retry in a moment");
    } else if (len >= 8 && memcmp(text, "READONLY", 8) == 0 &&
               p->st->d->cfg->redis_mode == REDIS_MODE_SENTINEL) {
        /* The primary was demoted under us: reconnect, asking the Sentinels where to. */
        log_warning("store: the server has become a replica; looking for the primary");
        p->st->ready = false;
        event_active(p->st->drop, EV_TIMEOUT, 0);
        deliver_error(p, PROTO_E_UNAVAILABLE,
                      "the store is changing its primary; retry in a moment");
    } else if ((len >= 4 && memcmp(text, "BUSY", 4) == 0) ||
               (len >= 8 && memcmp(text, "READONLY", 8) == 0) ||
               (len >= 10 && memcmp(text, "NOREPLICAS", 10) == 0) ||
               (len >= 4 && memcmp(text, "OOM ", 4) == 0) ||
               (len >= 11 && memcmp(text, "MASTERDOWN ", 11) == 0)) {
        log_warning("store: %.*s", (int)(len > 200 ? 200 : len), text);
        deliver_error(p, PROTO_E_UNAVAILABLE, "the store cannot take requests right now");
    } else if (strstr(text, "Function not found") || strstr(text, "function not found")) {
        /* The library vanished (FUNCTION FLUSH, failover to an empty replica): load it again. */
        log_warning("store: function library missing; reloading it");
        p->st->ready = false;
        deliver_error(p, PROTO_E_UNAVAILABLE, "the store is being prepared; retry in a moment");
        event_active(p->st->load_retry, EV_TIMEOUT, 0);
    } else {
        log_error("store: Redis error: %.*s", (int)(len > 300 ? 300 : len), text);
        deliver_error(p, PROTO_E_INTERNAL, "the store refused the request");
    }
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct pending *p = privdata;
    redisReply *reply = r;

    if (p->raw) {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            log_warning("store: %.*s", (int)(reply->len > 200 ? 200 : reply->len), reply->str);
            reply = NULL;
        }
        p->raw(reply, p->ud);
        unlink_pending(p);
        return;
    }

    if (p->waiting_replicas && !p->have_body) {
        /* The FCALL's own reply: keep it until the WAIT that follows is answered. */
        p->have_body = true;
        if (reply && (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_ERROR)) {
            p->body_is_error = reply->type == REDIS_REPLY_ERROR;
            p->body = malloc(reply->len + 1);
            if (p->body) {
                memcpy(p->body, reply->str, reply->len);
                p->body[reply->len] = '\0'; /* error texts are searched as strings */
                p->body_len = reply->len;
            }
        }
        return;
    }

    if (p->waiting_replicas) {
        struct store *st = p->st;
        if (!p->body) {
            deliver_error(p, p->kind == STORE_WRITE ? PROTO_E_OUTCOME_UNKNOWN : PROTO_E_UNAVAILABLE,
                          "the store link was lost; the outcome is not known");
        } else if (p->body_is_error) {
            deliver_redis_error(p, p->body, p->body_len);
        } else if (is_refusal(p->body, p->body_len)) {
            deliver_body(p, p->body, p->body_len); /* nothing was written: no replica needed */
        } else if (!reply || reply->type != REDIS_REPLY_INTEGER ||
                   reply->integer < (long long)st->d->cfg->wait_replicas) {
            log_warning("store: a write reached fewer replicas than required");
            deliver_error(p, PROTO_E_OUTCOME_UNKNOWN,
                          "the write was not confirmed by enough replicas; retry with the same "
                          "idempotency key or check your holds");
        } else {
            deliver_body(p, p->body, p->body_len);
        }
        unlink_pending(p);
        return;
    }

    if (!reply) {
        if (p->kind == STORE_WRITE)
            deliver_error(p, PROTO_E_OUTCOME_UNKNOWN,
                          "the store link was lost during the request; the outcome is not known: "
                          "retry with the same idempotency key, or list your holds");
        else
            deliver_error(p, PROTO_E_UNAVAILABLE, "the store link was lost; retry in a moment");
    } else if (reply->type == REDIS_REPLY_ERROR) {
        deliver_redis_error(p, reply->str, reply->len);
    } else if (reply->type != REDIS_REPLY_STRING) {
        log_error("store: unexpected reply type %d", reply->type);
        deliver_error(p, PROTO_E_INTERNAL, "the store returned an unexpected reply");
    } else {
        deliver_body(p, reply->str, reply->len);
    }
    unlink_pending(p);
}

/* The envelope every function takes: see the head of fristad.lua. */
static int pack_envelope(msgpack_sbuffer *sb, const struct config *cfg,
                         const struct store_caller *who, const char *op, const char *args,
                         size_t args_len)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 6 + (who->person ? 1 : 0) + (who->area ? 1 : 0) +
                                       (who->quiet_refusal ? 1 : 0));
    rc |= proto_pack_kv_str(&pk, "caller", who->name);
    if (who->person)
        rc |= proto_pack_kv_str(&pk, "person", who->person);
    if (who->area)
        rc |= proto_pack_kv_str(&pk, "area", who->area);
    if (who->quiet_refusal)
        rc |= proto_pack_kv_bool(&pk, "quiet_refusal", true);
    rc |= proto_pack_kv_str(&pk, "op", op);
    rc |= proto_pack_kv_int(&pk, "audit_retention", cfg->audit_retention_ms);
    rc |= proto_pack_kv_int(&pk, "reference_retention", cfg->reference_retention_ms);
    rc |= proto_pack_kv_int(&pk, "event_retention", cfg->event_retention_ms);
    rc |= proto_pack_cstr(&pk, "args");
    if (args)
        rc |= msgpack_sbuffer_write(sb, args, args_len);
    else
        rc |= msgpack_pack_map(&pk, 0);
    return rc ? -1 : 0;
}

/* Puts a sent call on the in-flight list, where the watchdog sees it. */
static void track(struct store *st, struct pending *p)
{
    p->prev = st->head.prev;
    p->next = &st->head;
    st->head.prev->next = p;
    st->head.prev = p;
    st->inflight++;
}

/* Sends one call once the library is loaded, whether or not the store is ready for others. */
static int send_call(struct store *st, const char *fn, enum store_kind kind,
                     const struct store_caller *who, const char *op, const char *args,
                     size_t args_len, store_cb *cb, void *ud)
{
    const struct config *cfg = st->d->cfg;
    char fname[64];
    msgpack_sbuffer env;
    msgpack_sbuffer_init(&env);
    if (pack_envelope(&env, cfg, who, op, args, args_len) < 0) {
        msgpack_sbuffer_destroy(&env);
        return -1;
    }
    snprintf(fname, sizeof fname, "fristad_%s", fn);
    const char *argv[] = {"FCALL", fname, "1", st->key, env.data};
    size_t lens[] = {5, strlen(fname), 1, strlen(st->key), env.size};
    int argc = 5;

    struct pending *p = calloc(1, sizeof *p);
    if (!p) {
        msgpack_sbuffer_destroy(&env);
        return -1;
    }
    p->st = st;
    p->kind = kind;
    p->cb = cb;
    p->ud = ud;
    p->waiting_replicas = kind == STORE_WRITE && cfg->wait_replicas > 0;
    /* A WAIT may legitimately block the link for its whole timeout. */
    p->deadline_ms = clock_mono_ms() + STALL_MS + (p->waiting_replicas ? cfg->wait_timeout_ms : 0);
    int sent = rlink_command(st->link, on_reply, p, argc, argv, lens);
    msgpack_sbuffer_destroy(&env); /* hiredis has formatted its own copy */
    if (sent != 0) {
        free(p);
        return -1;
    }
    if (p->waiting_replicas) {
        char n[16], ms[24];
        snprintf(n, sizeof n, "%u", cfg->wait_replicas);
        snprintf(ms, sizeof ms, "%lld", (long long)cfg->wait_timeout_ms);
        const char *wargv[] = {"WAIT", n, ms};
        size_t wlens[] = {4, strlen(n), strlen(ms)};
        /* The FCALL callback is registered; if WAIT cannot follow, the link is broken and the
         * FCALL callback will run with NULL, which the WAIT branch then reports. */
        if (rlink_command(st->link, on_reply, p, 3, wargv, wlens) != 0)
            p->waiting_replicas = false;
    }
    track(st, p);
    return 0;
}

int store_call(struct store *st, const char *fn, enum store_kind kind, const char *caller,
               const char *op, const char *args, size_t args_len, store_cb *cb, void *ud)
{
    struct store_caller who = {.name = caller};
    return store_call_as(st, fn, kind, &who, op, args, args_len, cb, ud);
}

int store_call_as(struct store *st, const char *fn, enum store_kind kind,
                  const struct store_caller *who, const char *op, const char *args, size_t args_len,
                  store_cb *cb, void *ud)
{
    if (!st->ready)
        return -1;
    return send_call(st, fn, kind, who, op, args, args_len, cb, ud);
}

int store_read(struct store *st, int argc, const char **argv, const size_t *lens,
               store_reply_cb *cb, void *ud)
{
    if (!st->ready)
        return -1;
    struct pending *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->st = st;
    p->kind = STORE_READ;
    p->raw = cb;
    p->ud = ud;
    p->deadline_ms = clock_mono_ms() + STALL_MS;
    if (rlink_command(st->link, on_reply, p, argc, argv, lens) != 0) {
        free(p);
        return -1;
    }
    track(st, p);
    return 0;
}

struct rewrite_req {
    store_cb *cb;
    void *ud;
};

static void on_rewrite(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct rewrite_req *q = privdata;
    redisReply *reply = r;
    struct store_result res = {.err = PROTO_OK};
    if (!reply) {
        res.err = PROTO_E_UNAVAILABLE;
        res.msg = "the store link was lost";
    } else if (reply->type == REDIS_REPLY_ERROR) {
        res.err = PROTO_E_UNAVAILABLE;
        res.msg = reply->str;
    }
    q->cb(&res, q->ud);
    free(q);
}

int store_rewrite_aof(struct store *st, store_cb *cb, void *ud)
{
    static const char *const argv[] = {"BGREWRITEAOF"};
    static const size_t lens[] = {12};
    struct rewrite_req *q = malloc(sizeof *q);
    if (!st->ready || !q) {
        free(q);
        return -1;
    }
    q->cb = cb;
    q->ud = ud;
    if (rlink_command(st->link, on_rewrite, q, 1, (const char **)argv, lens) != 0) {
        free(q);
        return -1;
    }
    return 0;
}

struct exists_req {
    store_exists_cb *cb;
    void *ud;
};

static void on_exists(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct exists_req *q = privdata;
    redisReply *reply = r;
    q->cb(reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer > 0 : -1, q->ud);
    free(q);
}

int store_exists(struct store *st, const char *suffix, store_exists_cb *cb, void *ud)
{
    char key[256];
    /* st->key is "{ns}:ver": the records share its prefix, hash tag and all. */
    int n = snprintf(key, sizeof key, "%.*s%s", (int)strlen(st->key) - 3, st->key, suffix);
    struct exists_req *q = malloc(sizeof *q);
    if (!st->ready || !q || n < 0 || (size_t)n >= sizeof key) {
        free(q);
        return -1;
    }
    q->cb = cb;
    q->ud = ud;
    const char *argv[] = {"EXISTS", key};
    size_t lens[] = {6, (size_t)n};
    if (rlink_command(st->link, on_exists, q, 2, argv, lens) != 0) {
        free(q);
        return -1;
    }
    return 0;
}

struct aof_status_req {
    store_aof_cb *cb;
    void *ud;
};

/* The value of "field:" in an INFO reply, as a number; -1 when absent. */
static long info_field(const char *info, const char *field)
{
    size_t n = strlen(field);
    for (const char *p = info; (p = strstr(p, field)) != NULL; p += n) {
        if ((p == info || p[-1] == '\n') && p[n] == ':')
            return strtol(p + n + 1, NULL, 10);
    }
    return -1;
}

static void on_aof_status(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct aof_status_req *q = privdata;
    redisReply *reply = r;
    enum store_aof_status status = STORE_AOF_FAILED;
    if (reply && reply->type == REDIS_REPLY_STRING) {
        long busy = info_field(reply->str, "aof_rewrite_in_progress"),
             scheduled = info_field(reply->str, "aof_rewrite_scheduled");
        const char *last = strstr(reply->str, "aof_last_bgrewrite_status:");
        if (busy > 0 || scheduled > 0)
            status = STORE_AOF_BUSY;
        else if (busy == 0 && last && strncmp(last + 26, "ok", 2) == 0)
            status = STORE_AOF_DONE;
    }
    q->cb(status, q->ud);
    free(q);
}

int store_aof_rewrite_status(struct store *st, store_aof_cb *cb, void *ud)
{
    static const char *const argv[] = {"INFO", "persistence"};
    static const size_t lens[] = {4, 11};
    struct aof_status_req *q = malloc(sizeof *q);
    if (!st->ready || !q) {
        free(q);
        return -1;
    }
    q->cb = cb;
    q->ud = ud;
    if (rlink_command(st->link, on_aof_status, q, 2, (const char **)argv, lens) != 0) {
        free(q);
        return -1;
    }
    return 0;
}

static void migrate_step(struct store *st, const char *phase, const char *cursor);

static void on_migrated(const struct store_result *res, void *ud)
{
    struct store *st = ud;
    const msgpack_object *done = res->err ? NULL : proto_map_get(res->result, "done");
    if (!done) {
        /* The link went away, or Redis refused: the next connect starts over, from where the
         * records are (renaming a field twice is harmless). */
        log_warning("store: bringing the records to the current layout failed: %s",
                    res->msg ? res->msg : proto_err_code(res->err));
        st->ready = false;
        struct timeval tv = {0, RETRY_LOAD_MS * 1000};
        evtimer_add(st->load_retry, &tv);
        return;
    }
    if (done->type == MSGPACK_OBJECT_BOOLEAN && done->via.boolean) {
        log_info("store: ready");
        st->ready = true;
        st->hooks.ready(st->ud);
        return;
    }
    const msgpack_object *ph = proto_map_get(res->result, "phase");
    const msgpack_object *cur = proto_map_get(res->result, "cursor");
    char phase[16], cursor[32];
    if (!ph || ph->type != MSGPACK_OBJECT_STR || ph->via.str.size >= sizeof phase || !cur ||
        cur->type != MSGPACK_OBJECT_STR || cur->via.str.size >= sizeof cursor) {
        log_error("store: the layout migration answered something unreadable");
        st->ready = false;
        return;
    }
    snprintf(phase, sizeof phase, "%.*s", (int)ph->via.str.size, ph->via.str.ptr);
    snprintf(cursor, sizeof cursor, "%.*s", (int)cur->via.str.size, cur->via.str.ptr);
    migrate_step(st, phase, cursor);
}

/*
 * Records written by an older fristadd name their fields in short forms; fristad_migrate
 * renames them a batch at a time, so that Redis is never blocked for long. Until it is done the
 * store is not ready for anyone else.
 */
static void migrate_step(struct store *st, const char *phase, const char *cursor)
{
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 2);
    rc |= proto_pack_kv_str(&pk, "phase", phase);
    rc |= proto_pack_kv_str(&pk, "cursor", cursor);
    struct store_caller who = {.name = "system:migrate"};
    if (rc || send_call(st, "migrate", STORE_WRITE, &who, "migrate", buf.data, buf.size,
                        on_migrated, st) != 0)
        log_warning("store: cannot bring the records to the current layout now");
    msgpack_sbuffer_destroy(&buf);
}

static void on_loaded(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct store *st = privdata;
    redisReply *reply = r;
    if (!reply)
        return; /* link lost; loading starts again on reconnect */
    if (reply->type == REDIS_REPLY_ERROR) {
        /* Passing states: still loading its data, or a new primary whose replicas are not
         * back yet (min-replicas-to-write refuses every write, this one too). */
        bool loading = reply->len >= 7 && memcmp(reply->str, "LOADING", 7) == 0;
        bool passing = (reply->len >= 10 && memcmp(reply->str, "NOREPLICAS", 10) == 0) ||
                       (reply->len >= 10 && memcmp(reply->str, "MASTERDOWN", 10) == 0);
        bool demoted = reply->len >= 8 && memcmp(reply->str, "READONLY", 8) == 0 &&
                       st->d->cfg->redis_mode == REDIS_MODE_SENTINEL;
        if (passing || demoted)
            log_warning("store: cannot load the function library yet: %s", reply->str);
        else if (!loading)
            log_error("store: cannot load the function library: %s", reply->str);
        if (demoted) {
            event_active(st->drop, EV_TIMEOUT, 0); /* ask the Sentinels where the primary is */
            return;
        }
        struct timeval tv = {0, RETRY_LOAD_MS * 1000};
        evtimer_add(st->load_retry, &tv);
        return;
    }
    log_info("store: function library loaded");
    migrate_step(st, "shelters", "0");
}

static void load_library(struct store *st)
{
    const char *argv[] = {"FUNCTION", "LOAD", "REPLACE", fristad_lua};
    size_t lens[] = {8, 4, 7, fristad_lua_len};
    if (rlink_command(st->link, on_loaded, st, 4, argv, lens) != 0)
        log_debug("store: link down while loading the library");
}

static void on_load_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct store *st = arg;
    if (rlink_is_up(st->link) && !st->ready)
        load_library(st);
}

static void on_up(struct rlink *l, void *ud)
{
    (void)l;
    struct store *st = ud;
    st->ready = false;
    st->d->metrics.store_reconnects++;
    load_library(st);
}

static void on_down(struct rlink *l, void *ud)
{
    (void)l;
    struct store *st = ud;
    st->ready = false;
}

static void on_drop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct store *st = arg;
    rlink_reset(st->link);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct store *st = arg;
    int64_t now = clock_mono_ms();
    for (struct pending *p = st->head.next; p != &st->head; p = p->next) {
        if (now > p->deadline_ms) {
            log_error("store: Redis has not answered in time; dropping the link");
            st->ready = false;
            rlink_reset(st->link);
            return;
        }
    }
}

struct store *store_new(struct daemon *d, struct store_hooks hooks, void *ud, char *err,
                        size_t errlen)
{
    struct store *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    st->d = d;
    st->hooks = hooks;
    st->ud = ud;
    st->head.next = st->head.prev = &st->head;
    snprintf(st->key, sizeof st->key, "{%s}:ver", d->cfg->redis_namespace);
    struct rlink_hooks link_hooks = {.up = on_up, .down = on_down};
    st->link = sentinel_link_new(d, "store", link_hooks, st, err, errlen);
    st->watchdog = event_new(d->base, -1, EV_PERSIST, on_watchdog, st);
    st->load_retry = evtimer_new(d->base, on_load_retry, st);
    st->drop = evtimer_new(d->base, on_drop, st);
    if (!st->link || !st->watchdog || !st->load_retry || !st->drop) {
        if (!st->link && !err[0])
            snprintf(err, errlen, "out of memory");
        store_free(st);
        return NULL;
    }
    return st;
}

void store_start(struct store *st)
{
    struct timeval tv = {1, 0};
    event_add(st->watchdog, &tv);
    rlink_start(st->link);
}

void store_free(struct store *st)
{
    if (!st)
        return;
    st->ready = false;
    if (st->link)
        rlink_free(st->link); /* pending callbacks run with NULL and are unlinked */
    if (st->watchdog)
        event_free(st->watchdog);
    if (st->load_retry)
        event_free(st->load_retry);
    if (st->drop)
        event_free(st->drop);
    free(st);
}

bool store_ready(const struct store *st)
{
    return st->ready;
}

unsigned store_inflight(const struct store *st)
{
    return st->inflight;
}
