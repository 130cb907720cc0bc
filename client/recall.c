/*
 * The last search, remembered for "fristad hold N --ref REF": at 3 a.m. the worker holds result
 * N without typing the referral again. The file holds the search's referral (no reference: a
 * search has none) and its results' shelters and units, the server and certificate it was made
 * with, and when; it lives in the user's cache directory with mode 0600 and is good for 30
 * minutes. Its contents are read back through the protocol's own decoder, so a file that was
 * changed by hand cannot put anything into a request that a request could not hold anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "recall.h"

#define RECALL_MAX_AGE_MS (30 * 60 * 1000)
#define RECALL_MAX_BYTES  (64 * 1024)

/* The referral's fields: what a hold carries of a search. */
#define REFERRAL_FIELDS                                                                            \
    (PROTO_F(HOME) | PROTO_F(RISK) | PROTO_F(ADULTS) | PROTO_F(CHILDREN) | PROTO_F(GROUP) |        \
     PROTO_F(WHEELCHAIR) | PROTO_F(PETS) | PROTO_F(SUBSTANCE) | PROTO_F(LANGUAGE) |                \
     PROTO_F(PERPETRATOR) | PROTO_F(EXCLUDE) | PROTO_F(NEED))

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* $XDG_CACHE_HOME/fristad/last-search, or ~/.cache/fristad/last-search; makes the directory. */
static int recall_path(char *buf, size_t cap, bool make_dir)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, cap, "%s/fristad", xdg);
    else if (home && home[0])
        n = snprintf(buf, cap, "%s/.cache/fristad", home);
    else
        return -1;
    if (n < 0 || (size_t)n >= cap)
        return -1;
    if (make_dir) {
        char parent[1024];
        snprintf(parent, sizeof parent, "%.*s", (int)(strrchr(buf, '/') - buf), buf);
        if (mkdir(parent, 0700) != 0 && errno != EEXIST)
            return -1;
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
    }
    if ((size_t)snprintf(buf + n, cap - (size_t)n, "/last-search") >= cap - (size_t)n)
        return -1;
    return 0;
}

static const char *identity(const struct settings *s)
{
    return s->cert ? s->cert : "";
}

int recall_save(const struct settings *s, const struct proto_args *search,
                const msgpack_object *result)
{
    const msgpack_object *results = proto_map_get(result, "results");
    if (!results || results->type != MSGPACK_OBJECT_ARRAY)
        return -1;
    char path[1024], tmp[1100];
    if (recall_path(path, sizeof path, true) < 0)
        return -1;
    snprintf(tmp, sizeof tmp, "%s.%ld", path, (long)getpid());

    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    uint64_t fields = search->present & REFERRAL_FIELDS;
    int rc = msgpack_pack_map(&pk, 5);
    rc |= proto_pack_kv_int(&pk, "saved_at", now_ms());
    rc |= proto_pack_kv_str(&pk, "server", s->server ? s->server : "");
    rc |= proto_pack_kv_str(&pk, "cert", identity(s));
    rc |= proto_pack_cstr(&pk, "referral");
    rc |= msgpack_pack_map(&pk, (size_t)__builtin_popcountll(fields));
    rc |= proto_pack_fields(&pk, search, fields);
    rc |= proto_pack_cstr(&pk, "results");
    rc |= msgpack_pack_array(&pk, results->via.array.size);
    for (uint32_t i = 0; i < results->via.array.size; i++) {
        const msgpack_object *r = &results->via.array.ptr[i];
        const msgpack_object *sh = proto_map_get(r, "shelter"), *un = proto_map_get(r, "unit");
        rc |= msgpack_pack_array(&pk, 2);
        rc |= sh ? msgpack_pack_object(&pk, *sh) : msgpack_pack_nil(&pk);
        rc |= un ? msgpack_pack_object(&pk, *un) : msgpack_pack_nil(&pk);
    }
    int fd = rc ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, sb.data, sb.size) == (ssize_t)sb.size;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    ok = ok && rename(tmp, path) == 0;
    if (!ok && fd >= 0)
        unlink(tmp);
    msgpack_sbuffer_destroy(&sb);
    return ok ? 0 : -1;
}

/* Copies a string of the file into dst (cap bytes); false when it is not one or too long. */
static bool get_str(const msgpack_object *m, const char *key, char *dst, size_t cap)
{
    const msgpack_object *o = proto_map_get(m, key);
    if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap)
        return false;
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    return true;
}

/* Decodes the remembered referral as the fields of a search request would be. */
static enum proto_err decode_referral(const msgpack_object *referral, struct proto_args *out,
                                      struct proto_error *perr)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 3);
    rc |= proto_pack_kv_int(&pk, "id", 0);
    rc |= proto_pack_kv_str(&pk, "op", "search");
    rc |= proto_pack_cstr(&pk, "args");
    rc |= msgpack_pack_object(&pk, *referral);
    enum proto_err e = PROTO_E_INTERNAL;
    struct proto_request *req = malloc(sizeof *req);
    if (rc == 0 && req) {
        e = proto_decode_request((const uint8_t *)sb.data, sb.size, req, perr);
        if (e == PROTO_OK)
            *out = req->args;
    }
    free(req);
    msgpack_sbuffer_destroy(&sb);
    return e;
}

int recall_load(const struct settings *s, unsigned n, struct proto_request *hold,
                struct client_error *err)
{
    char path[1024];
    static const char *const again = "search again, then hold a result of that search";
    if (recall_path(path, sizeof path, false) < 0)
        return client_fail(err, CLIENT_USAGE, "usage", "no search to hold from: %s", again);
    FILE *f = fopen(path, "rb");
    if (!f)
        return client_fail(err, CLIENT_USAGE, "usage", "no search to hold from: %s", again);
    char *buf = malloc(RECALL_MAX_BYTES);
    size_t len = buf ? fread(buf, 1, RECALL_MAX_BYTES, f) : 0;
    fclose(f);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int rc = -1;
    char server[256], cert[1024];
    const msgpack_object *saved, *results, *referral;
    if (!buf || len == 0 || len == RECALL_MAX_BYTES ||
        msgpack_unpack_next(&u, buf, len, NULL) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP || !(saved = proto_map_get(&u.data, "saved_at")) ||
        saved->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        !get_str(&u.data, "server", server, sizeof server) ||
        !get_str(&u.data, "cert", cert, sizeof cert) ||
        !(results = proto_map_get(&u.data, "results")) || results->type != MSGPACK_OBJECT_ARRAY ||
        !(referral = proto_map_get(&u.data, "referral"))) {
        client_fail(err, CLIENT_USAGE, "usage", "the remembered search cannot be read: %s", again);
        goto out;
    }
    if (strcmp(server, s->server ? s->server : "") != 0 || strcmp(cert, identity(s)) != 0) {
        client_fail(err, CLIENT_USAGE, "usage",
                    "the remembered search was made with another server or certificate: %s", again);
        goto out;
    }
    if (now_ms() - (int64_t)saved->via.u64 > RECALL_MAX_AGE_MS) {
        client_fail(err, CLIENT_USAGE, "usage",
                    "the remembered search is more than 30 minutes old and vacancies change: %s",
                    again);
        goto out;
    }
    if (n < 1 || n > results->via.array.size) {
        client_fail(err, CLIENT_USAGE, "usage", "the last search has %u result%s, not %u: %s",
                    results->via.array.size, results->via.array.size == 1 ? "" : "s", n, again);
        goto out;
    }
    struct proto_args referral_args;
    struct proto_error perr = {0};
    if (decode_referral(referral, &referral_args, &perr) != PROTO_OK) {
        client_fail(err, CLIENT_USAGE, "usage", "the remembered search cannot be read: %s", again);
        goto out;
    }
    const msgpack_object *pick = &results->via.array.ptr[n - 1];
    struct proto_args *a = &hold->args;
    uint64_t kept = a->present; /* --ref, --callback, --for, --idempotency-key, --child-basis */
    uint8_t n_bases = a->n_child_basis, bases[PROTO_MAX_CHILDREN];
    memcpy(bases, a->child_basis, sizeof bases);
    char ref[sizeof a->ref], callback[sizeof a->callback], mun[sizeof a->municipality],
        key[sizeof a->idempotency_key];
    memcpy(ref, a->ref, sizeof ref);
    memcpy(callback, a->callback, sizeof callback);
    memcpy(mun, a->municipality, sizeof mun);
    memcpy(key, a->idempotency_key, sizeof key);
    *a = referral_args;
    memcpy(a->ref, ref, sizeof ref);
    memcpy(a->callback, callback, sizeof callback);
    memcpy(a->municipality, mun, sizeof mun);
    memcpy(a->idempotency_key, key, sizeof key);
    a->n_child_basis = n_bases;
    memcpy(a->child_basis, bases, sizeof bases);
    if (pick->type != MSGPACK_OBJECT_ARRAY || pick->via.array.size != 2 ||
        pick->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
        pick->via.array.ptr[1].type != MSGPACK_OBJECT_STR ||
        pick->via.array.ptr[0].via.str.size >= sizeof a->shelter ||
        pick->via.array.ptr[1].via.str.size >= sizeof a->unit) {
        client_fail(err, CLIENT_USAGE, "usage", "the remembered search cannot be read: %s", again);
        goto out;
    }
    memcpy(a->shelter, pick->via.array.ptr[0].via.str.ptr, pick->via.array.ptr[0].via.str.size);
    a->shelter[pick->via.array.ptr[0].via.str.size] = '\0';
    memcpy(a->unit, pick->via.array.ptr[1].via.str.ptr, pick->via.array.ptr[1].via.str.size);
    a->unit[pick->via.array.ptr[1].via.str.size] = '\0';
    a->present =
        (referral_args.present & REFERRAL_FIELDS) | kept | PROTO_F(SHELTER) | PROTO_F(UNIT);
    rc = 0;
out:
    msgpack_unpacked_destroy(&u);
    free(buf);
    return rc;
}
