/*
 * The event feed (feed.h). On every (re)connect it learns where the log stands (XREVRANGE, the
 * first time) and then reads on from its position with XREAD BLOCK, one command at a time, on a
 * link of its own: a blocked read never delays a request. Events are handed on in log order,
 * each exactly once per daemon.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "daemon.h"
#include "feed.h"
#include "log.h"
#include "redis_link.h"

#define READ_COUNT "500"
#define BLOCK_MS   "5000" /* a read that comes back empty is simply sent again */

struct feed {
    struct daemon *d;
    struct feed_hooks hooks;
    void *ud;
    struct rlink *link;
    char key[96];    /* "{ns}:log" */
    bool positioned; /* `last` is known */
    struct seq last;
};

bool seq_parse(const char *s, size_t n, struct seq *out)
{
    uint64_t part[2] = {0, 0};
    size_t i = 0;
    for (int k = 0; k < 2; k++) {
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 20)
            part[k] = part[k] * 10 + (uint64_t)(s[i++] - '0');
        if (i == start || (k == 0 && (i >= n || s[i++] != '-')))
            return false;
    }
    if (i != n)
        return false;
    out->ms = part[0];
    out->n = part[1];
    return true;
}

static void copy(char *dst, size_t cap, const char *v, size_t n)
{
    n = n < cap ? n : cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static bool key_is(const char *k, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(k, lit, n) == 0;
}

/* One field of an event. */
static bool event_set(struct event *e, const char *k, size_t kn, const char *v, size_t vn)
{
    if (key_is(k, kn, "type")) {
        int t = proto_event_parse(v, vn);
        if (t < 0)
            return false;
        e->type = (enum proto_event)t;
    } else if (key_is(k, kn, "at")) {
        char buf[24];
        copy(buf, sizeof buf, v, vn);
        e->at = strtoll(buf, NULL, 10);
    } else if (key_is(k, kn, "step")) {
        e->step = vn == 1 && v[0] >= '0' && v[0] <= '9' ? (unsigned)(v[0] - '0') : 0;
    } else if (key_is(k, kn, "shelter")) {
        copy(e->shelter, sizeof e->shelter, v, vn);
    } else if (key_is(k, kn, "unit")) {
        copy(e->unit, sizeof e->unit, v, vn);
    } else if (key_is(k, kn, "hold")) {
        copy(e->hold, sizeof e->hold, v, vn);
    } else if (key_is(k, kn, "placement")) {
        copy(e->placement, sizeof e->placement, v, vn);
    } else if (key_is(k, kn, "standing")) {
        copy(e->standing, sizeof e->standing, v, vn);
    } else if (key_is(k, kn, "municipality")) {
        copy(e->municipality, sizeof e->municipality, v, vn);
    } else if (key_is(k, kn, "by")) {
        copy(e->by, sizeof e->by, v, vn);
    } else if (key_is(k, kn, "state")) {
        copy(e->state, sizeof e->state, v, vn);
    }
    return true;
}

bool event_parse(const char *id, size_t id_len, const char *const *fields, const size_t *lens,
                 size_t n, struct event *out)
{
    memset(out, 0, sizeof *out);
    out->type = EV__COUNT;
    if (!seq_parse(id, id_len, &out->seq) || n % 2 != 0)
        return false;
    for (size_t i = 0; i + 1 < n; i += 2) {
        if (!event_set(out, fields[i], lens[i], fields[i + 1], lens[i + 1]))
            return false;
    }
    return out->type != EV__COUNT;
}

bool event_from_map(const msgpack_object *m, struct event *out)
{
    memset(out, 0, sizeof *out);
    out->type = EV__COUNT;
    if (m->type != MSGPACK_OBJECT_MAP)
        return false;
    bool have_seq = false;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_STR)
            return false;
        if (key_is(k->via.str.ptr, k->via.str.size, "seq")) {
            if (!seq_parse(v->via.str.ptr, v->via.str.size, &out->seq))
                return false;
            have_seq = true;
        } else if (!event_set(out, k->via.str.ptr, k->via.str.size, v->via.str.ptr,
                              v->via.str.size)) {
            return false;
        }
    }
    return have_seq && out->type != EV__COUNT;
}

int event_pack(msgpack_packer *pk, const struct event *e)
{
    const struct {
        const char *k, *v;
    } strs[] = {
        {"shelter", e->shelter},
        {"unit", e->unit},
        {"hold", e->hold},
        {"placement", e->placement},
        {"standing", e->standing},
        {"municipality", e->municipality},
        {"by", e->by},
        {"state", e->state},
    };
    size_t n = 3 + (e->step ? 1 : 0);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        n += strs[i].v[0] != '\0';
    char seq[48];
    snprintf(seq, sizeof seq, "%llu-%llu", (unsigned long long)e->seq.ms,
             (unsigned long long)e->seq.n);
    int rc = msgpack_pack_map(pk, n);
    rc |= proto_pack_kv_str(pk, "seq", seq);
    rc |= proto_pack_kv_str(pk, "type", proto_event_name(e->type));
    rc |= proto_pack_kv_int(pk, "at", e->at);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (strs[i].v[0])
            rc |= proto_pack_kv_str(pk, strs[i].k, strs[i].v);
    }
    if (e->step)
        rc |= proto_pack_kv_int(pk, "step", e->step);
    return rc ? -1 : 0;
}

static void read_on(struct feed *f);

/* One entry [id, [field, value, ...]] of an XREAD or XREVRANGE reply. */
static void take_entry(struct feed *f, const redisReply *entry, bool deliver)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING ||
        entry->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    const redisReply *id = entry->element[0], *flat = entry->element[1];
    const char *fields[32];
    size_t lens[32], n = flat->elements < 32 ? flat->elements : 32;
    for (size_t i = 0; i < n; i++) {
        fields[i] = flat->element[i]->type == REDIS_REPLY_STRING ? flat->element[i]->str : "";
        lens[i] = flat->element[i]->type == REDIS_REPLY_STRING ? flat->element[i]->len : 0;
    }
    struct event e;
    struct seq seq;
    if (!seq_parse(id->str, id->len, &seq))
        return;
    f->last = seq;
    f->positioned = true;
    if (deliver && event_parse(id->str, id->len, fields, lens, n, &e))
        f->hooks.event(f->ud, &e);
}

static void on_read(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct feed *f = privdata;
    redisReply *reply = r;
    if (!reply)
        return; /* the link is going away: read on once it is back */
    if (reply->type == REDIS_REPLY_ARRAY) {
        /* [[key, [entry, ...]]] */
        for (size_t s = 0; s < reply->elements; s++) {
            const redisReply *stream = reply->element[s];
            if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2 ||
                stream->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            for (size_t i = 0; i < stream->element[1]->elements; i++)
                take_entry(f, stream->element[1]->element[i], true);
        }
    } else if (reply->type == REDIS_REPLY_ERROR) {
        log_warning("events: reading the event log: %s", reply->str);
    }
    read_on(f);
}

static void read_on(struct feed *f)
{
    char last[48];
    snprintf(last, sizeof last, "%llu-%llu", (unsigned long long)f->last.ms,
             (unsigned long long)f->last.n);
    const char *argv[] = {"XREAD", "COUNT", READ_COUNT, "BLOCK", BLOCK_MS, "STREAMS", f->key, last};
    size_t lens[8];
    for (int i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    if (rlink_command(f->link, on_read, f, 8, argv, lens) != 0)
        log_debug("events: the feed's link is down");
}

/* Where the log stands: its last entry (none: the beginning). */
static void on_position(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct feed *f = privdata;
    redisReply *reply = r;
    if (!reply)
        return;
    f->positioned = true;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1)
        take_entry(f, reply->element[0], false);
    read_on(f);
}

static void on_up(struct rlink *l, void *ud)
{
    struct feed *f = ud;
    if (f->positioned) {
        read_on(f); /* resume where it stopped: nothing written meanwhile is lost */
        return;
    }
    const char *argv[] = {"XREVRANGE", f->key, "+", "-", "COUNT", "1"};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    if (rlink_command(l, on_position, f, 6, argv, lens) != 0)
        log_debug("events: the feed's link is down");
}

static void on_down(struct rlink *l, void *ud)
{
    (void)l;
    (void)ud;
}

struct feed *feed_new(struct daemon *d, struct feed_hooks hooks, void *ud, char *err, size_t errlen)
{
    struct feed *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->d = d;
    f->hooks = hooks;
    f->ud = ud;
    snprintf(f->key, sizeof f->key, "{%s}:log", d->cfg->redis_namespace);
    char address[CONFIG_PATH_MAX + 24];
    config_redis_address(d->cfg, address, sizeof address);
    struct rlink_hooks link_hooks = {.up = on_up, .down = on_down};
    f->link = rlink_new(d->base, "feed", address, link_hooks, f, err, errlen);
    if (!f->link) {
        free(f);
        return NULL;
    }
    return f;
}

void feed_start(struct feed *f)
{
    rlink_start(f->link);
}

void feed_free(struct feed *f)
{
    if (!f)
        return;
    rlink_free(f->link);
    free(f);
}

bool feed_position(const struct feed *f, struct seq *out)
{
    *out = f->last;
    return f->positioned;
}
