/*
 * fristad: the command-line client of fristadd. One invocation, one request:
 * argv -> validated request -> settings -> TLS round trip -> output and exit status.
 * A hold or placement given by the start of its id is looked up first, on the same
 * connection; the municipality command is answered without a server.
 *
 * A write whose outcome is unknown (the server answered outcome_unknown, or the connection was
 * lost after the request went out) is settled here for the ops in `settled_ops`: the very same
 * request, with the same id and idempotency key, is sent again until the server gives a definite
 * answer or the retry time has passed, so that a person sees one answer. A hold without an
 * idempotency key is given a random one, so that a repeat can never make a second hold.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <fristad/proto.h>

#include "cli.h"
#include "client.h"
#include "human.h"
#include "json.h"
#include "net.h"
#include "places.h"
#include "recall.h"
#include "report.h"
#include "watch.h"
#include "settings.h"

#ifndef FRISTAD_VERSION
#define FRISTAD_VERSION "unknown"
#endif

/* The ops settled by repeating them; the server answers a repeat as it answered the first. */
static const enum proto_op settled_ops[] = {
    OP_HOLD,
    OP_HOLD_ACCEPT,
    OP_HOLD_CONFIRM,
    OP_PLACEMENT_DISCHARGE,
};

#define RETRY_FIRST_MS 250  /* the first pause before a repeat; each next one doubles */
#define RETRY_MAX_MS   4000 /* up to this */
#define AUTO_KEY_LEN   20   /* letters of a generated idempotency key */

static bool settled(enum proto_op op)
{
    for (size_t i = 0; i < sizeof settled_ops / sizeof settled_ops[0]; i++) {
        if (settled_ops[i] == op)
            return true;
    }
    return false;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/*
 * Gives a hold without an idempotency key a random one: letters only, so that it can never
 * look like a personal identity number. Returns -1 when the kernel gives no random bytes.
 */
static int add_idempotency_key(struct proto_request *req)
{
    if (req->op != OP_HOLD || proto_has(&req->args, F_IDEMPOTENCY_KEY))
        return 0;
    char *key = req->args.idempotency_key;
    size_t n = 0;
    while (n < AUTO_KEY_LEN) {
        unsigned char raw[32];
        if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
            return -1;
        for (size_t i = 0; i < sizeof raw && n < AUTO_KEY_LEN; i++) {
            if (raw[i] < 26 * 9) /* uniform over the letters */
                key[n++] = (char)('a' + raw[i] % 26);
        }
    }
    key[n] = '\0';
    req->args.present |= PROTO_BIT(F_IDEMPOTENCY_KEY);
    return 0;
}

/* The attempts of call(): the first on *ns, every further one on a connection of its own. */
static int settle(const struct cli *cli, const struct settings *settings, struct net_session **ns,
                  const struct proto_request *req, const msgpack_sbuffer *sb,
                  struct net_reply *reply, struct client_error *err)
{
    bool settle = settled(req->op) && settings->retry_for_ms > 0;
    int64_t start = mono_ms();
    int64_t pause = RETRY_FIRST_MS;
    bool unknown = false; /* an earlier attempt may have been carried out */
    char last[256] = "";
    for (int attempt = 1;; attempt++) {
        enum net_reach reach = NET_NOT_SENT;
        int rc = -1;
        if (*ns || net_open(settings, ns, err) == 0)
            rc =
                net_exchange(*ns, (const uint8_t *)sb->data, sb->size, req->id, reply, &reach, err);
        bool again;
        if (rc == 0) {
            const struct proto_reply *r = &reply->reply;
            bool unknown_now = !r->ok && strcmp(r->code_text, "outcome_unknown") == 0;
            again = unknown_now || (unknown && !r->ok && strcmp(r->code_text, "unavailable") == 0);
            if (again)
                snprintf(last, sizeof last, "%s: %.200s", r->code_text, r->message);
            unknown |= unknown_now;
        } else {
            bool lost = reach == NET_SENT && strcmp(err->code, "connection") == 0;
            again = lost || (unknown && strcmp(err->code, "connection") == 0);
            snprintf(last, sizeof last, "%s: %.200s", err->code, err->message);
            unknown |= lost;
        }
        if (!settle || (!again && !(unknown && rc != 0)))
            return rc; /* a definite answer, or nothing to settle */
        int64_t spent = mono_ms() - start;
        if (!again || spent + pause > settings->retry_for_ms) {
            if (rc == 0)
                net_reply_free(reply);
            bool hold = req->op == OP_HOLD;
            return client_fail(
                err, CLIENT_REFUSED, "outcome_unknown",
                "'%s' was sent %d time%s in %lld s and its outcome is still not known (last: "
                "%s). Check with 'fristad %s' before doing it again%s%s%s",
                proto_op_name(req->op), attempt, attempt == 1 ? "" : "s",
                (long long)(spent + 999) / 1000, last, hold ? "holds" : "placements",
                hold ? ", or repeat it with --idempotency-key " : "",
                hold ? req->args.idempotency_key : "",
                hold ? ": a repeat with the same key never makes a second hold" : "");
        }
        if (rc == 0)
            net_reply_free(reply);
        net_close(*ns); /* the next attempt on a new connection, to whichever server is up */
        *ns = NULL;
        if (!cli->json)
            fprintf(stderr, "fristad: the outcome is not known yet (%s); asking again\n", last);
        pause_ms(pause + rand() % (pause / 4 + 1));
        pause = pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause * 2;
    }
}

/*
 * Request req on the session *ns (opened here when NULL), and for a settled op the same
 * request again, on a new connection, while its outcome is unknown. Returns 0 with the reply
 * (ok or error) in *reply, or -1 with err set; when the outcome stays unknown, -1 saying so.
 */
static int call(const struct cli *cli, const struct settings *settings, struct net_session **ns,
                const struct proto_request *req, struct net_reply *reply, struct client_error *err)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = -1;
    if (proto_pack_request(&pk, req) != 0)
        client_fail(err, CLIENT_FAILED, "internal", "out of memory");
    else
        rc = settle(cli, settings, ns, req, &sb, reply, err);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* Reports a failure or refusal on the channel the user asked for; returns its exit status. */
static int report(bool json, const struct client_error *err)
{
    if (json) {
        json_write_error(stdout, err->code, err->message);
        fflush(stdout);
    } else {
        char msg[CLIENT_MESSAGE_MAX];
        human_clean_message(msg, sizeof msg, err->message);
        fprintf(stderr, "fristad: %s: %s\n", err->code, msg);
        if (err->status == CLIENT_USAGE)
            fputs("Run 'fristad --help' for the commands and options.\n", stderr);
    }
    return err->status;
}

/* Prints a result: JSON, or for people. Returns the exit status. */
static int print_result(const struct cli *cli, const msgpack_object *result,
                        struct client_error *err)
{
    if (cli->csv) {
        if (report_followup_csv(stdout, result) != 0) {
            client_fail(err, CLIENT_FAILED, "protocol", "the server's reply is not a follow-up");
            return report(false, err);
        }
        return CLIENT_OK;
    }
    /* The export is HSDS JSON either way: --json changes only how errors are reported. */
    if (cli->json && cli->req.op != OP_DIRECTORY) {
        if (json_write_value(stdout, result) != 0) {
            client_fail(err, CLIENT_FAILED, "internal", "out of memory");
            return report(false, err);
        }
        fputc('\n', stdout);
        return CLIENT_OK;
    }
    if (human_print(stdout, &cli->req, result) != 0) {
        client_fail(err, CLIENT_FAILED, "internal",
                    "out of memory while showing the reply; the request itself succeeded");
        return report(false, err);
    }
    return CLIENT_OK;
}

/* `fristad municipality TEXT`: every municipality the text may mean, from the client's table. */
static int lookup_municipality(const struct cli *cli, struct client_error *err)
{
    static unsigned idx[PROTO_MUNICIPALITIES];
    const char *text = cli->args[0];
    size_t n = places_lookup(text, idx, PROTO_MUNICIPALITIES);
    if (n == 0) {
        char why[CLIENT_MESSAGE_MAX];
        (void)places_municipality(text, why, sizeof why);
        client_fail(err, CLIENT_REFUSED, "not_found", "%s", why);
        return report(cli->json, err);
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 1);
    rc |= proto_pack_cstr(&pk, "municipalities");
    rc |= msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        const struct places_municipality *m = &places_municipalities[idx[i]];
        rc |= msgpack_pack_map(&pk, 4);
        rc |= proto_pack_kv_str(&pk, "municipality", m->code);
        rc |= proto_pack_kv_str(&pk, "municipality_name", m->name);
        rc |= proto_pack_kv_str(&pk, "county", m->county);
        rc |= proto_pack_kv_str(&pk, "county_name", places_county_by_code(m->county)->name);
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int status;
    if (rc != 0 || msgpack_unpack_next(&u, sb.data, sb.size, NULL) != MSGPACK_UNPACK_SUCCESS) {
        client_fail(err, CLIENT_FAILED, "internal", "out of memory");
        status = report(cli->json, err);
    } else {
        status = print_result(cli, &u.data, err);
    }
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    return status;
}

/* Sends one request on the session; a refusal becomes err (CLIENT_REFUSED). */
/* An error reply as the client's error: -1 with err set, the reply freed; else 0. */
static int refusal(int rc, struct net_reply *reply, struct client_error *err)
{
    if (rc == 0 && !reply->reply.ok) {
        const struct proto_reply *r = &reply->reply;
        client_fail(err, CLIENT_REFUSED, r->code_text[0] ? r->code_text : "internal", "%s",
                    r->message);
        net_reply_free(reply);
        rc = -1;
    }
    return rc;
}

/*
 * A listing (shelter.list, free, directory, holds.list, placements.list) comes a page at a
 * time: while a page says "next", the same request is sent again with 'after' set to it. The
 * pages are kept, and their lists joined into one result that looks as if it had come whole.
 */
struct pages {
    struct net_reply *replies;
    unsigned n;
    msgpack_object result; /* the joined result: a map over the first page's keys */
    msgpack_object_kv *kv;
    msgpack_object *items;
};

#define PAGES_MAX 100000 /* a server that never stops saying "next" is a broken one */

static void pages_free(struct pages *pg)
{
    for (unsigned i = 0; i < pg->n; i++)
        net_reply_free(&pg->replies[i]);
    free(pg->replies);
    free(pg->kv);
    free(pg->items);
    *pg = (struct pages){0};
}

/* The key of the list a listing pages through; NULL for an op that is not paged. */
static const char *paged_list(enum proto_op op)
{
    switch (op) {
    case OP_SHELTER_LIST:
    case OP_DIRECTORY:
        return "shelters";
    case OP_FREE:
        return "units";
    case OP_HOLDS_LIST:
        return "holds";
    case OP_PLACEMENTS_LIST:
        return "placements";
    default:
        return NULL;
    }
}

/* The page's "next", copied into after (PROTO_ID_MAX + 1); false when there is none. */
static bool next_page(const msgpack_object *result, char *after)
{
    const msgpack_object *next = proto_map_get(result, "next");
    if (!next || next->type != MSGPACK_OBJECT_STR || next->via.str.size == 0 ||
        next->via.str.size > PROTO_ID_MAX)
        return false;
    memcpy(after, next->via.str.ptr, next->via.str.size);
    after[next->via.str.size] = '\0';
    return true;
}

/* Joins the pages' lists into pg->result: the first page's keys, without "next", with the list
 * of every page and phones_withheld when any page withheld them. */
static int join_pages(struct pages *pg, const char *key, struct client_error *err)
{
    const msgpack_object *first = pg->replies[0].reply.result;
    size_t total = 0;
    for (unsigned i = 0; i < pg->n; i++) {
        const msgpack_object *l = proto_map_get(pg->replies[i].reply.result, key);
        if (!l || l->type != MSGPACK_OBJECT_ARRAY)
            return client_fail(err, CLIENT_FAILED, "protocol",
                               "a page of the listing has no list '%s'", key);
        total += l->via.array.size;
    }
    uint32_t nkv = first->via.map.size;
    pg->kv = calloc(nkv ? nkv : 1, sizeof *pg->kv);
    pg->items = calloc(total ? total : 1, sizeof *pg->items);
    if (!pg->kv || !pg->items)
        return client_fail(err, CLIENT_FAILED, "internal", "out of memory");
    size_t at = 0;
    bool withheld = false;
    for (unsigned i = 0; i < pg->n; i++) {
        const msgpack_object *page = pg->replies[i].reply.result;
        const msgpack_object *l = proto_map_get(page, key);
        memcpy(pg->items + at, l->via.array.ptr, l->via.array.size * sizeof *pg->items);
        at += l->via.array.size;
        const msgpack_object *w = proto_map_get(page, "phones_withheld");
        withheld |= w && w->type == MSGPACK_OBJECT_BOOLEAN && w->via.boolean;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < nkv; i++) {
        const msgpack_object_kv *e = &first->via.map.ptr[i];
        if (proto_str_is(&e->key, "next"))
            continue;
        pg->kv[k] = *e;
        if (proto_str_is(&e->key, key)) {
            pg->kv[k].val.via.array.ptr = pg->items;
            pg->kv[k].val.via.array.size = (uint32_t)total;
        } else if (proto_str_is(&e->key, "phones_withheld")) {
            pg->kv[k].val.via.boolean = withheld;
        }
        k++;
    }
    pg->result = (msgpack_object){.type = MSGPACK_OBJECT_MAP, .via.map = {k, pg->kv}};
    return 0;
}

/* Asks for the pages after `first` (which pg takes over) and joins them; 0, or -1 with err. */
static int gather_pages(const struct cli *cli, const struct settings *settings,
                        struct net_session **ns, struct net_reply *first, struct pages *pg,
                        struct client_error *err)
{
    const char *key = paged_list(cli->req.op);
    struct proto_request req = cli->req;
    *pg = (struct pages){0};
    pg->replies = malloc(sizeof *pg->replies);
    if (!pg->replies) {
        net_reply_free(first);
        return client_fail(err, CLIENT_FAILED, "internal", "out of memory");
    }
    pg->replies[pg->n++] = *first;
    char after[PROTO_ID_MAX + 1];
    while (next_page(pg->replies[pg->n - 1].reply.result, after)) {
        if (pg->n >= PAGES_MAX ||
            (proto_has(&req.args, F_AFTER) && strcmp(after, req.args.after) == 0)) {
            pages_free(pg);
            return client_fail(err, CLIENT_FAILED, "protocol",
                               "the server keeps sending the same page of the listing");
        }
        struct net_reply *grown = realloc(pg->replies, (pg->n + 1) * sizeof *grown);
        if (!grown) {
            pages_free(pg);
            return client_fail(err, CLIENT_FAILED, "internal", "out of memory");
        }
        pg->replies = grown;
        memcpy(req.args.after, after, sizeof after);
        req.args.present |= PROTO_BIT(F_AFTER);
        if (refusal(call(cli, settings, ns, &req, &pg->replies[pg->n], err), &pg->replies[pg->n],
                    err) != 0) {
            pages_free(pg);
            return -1;
        }
        pg->n++;
    }
    if (join_pages(pg, key, err) != 0) {
        pages_free(pg);
        return -1;
    }
    return 0;
}

/* Whether a listed hold or placement id is what `given` stands for: its start, with or
 * without the leading h or p. */
static bool id_matches(const msgpack_object *id, const char *given, char letter)
{
    size_t n = strlen(given);
    if (!id || id->type != MSGPACK_OBJECT_STR || n == 0)
        return false;
    const char *p = id->via.str.ptr;
    size_t len = id->via.str.size;
    if (len >= n && memcmp(p, given, n) == 0)
        return true;
    return given[0] != letter && len > 0 && p[0] == letter && len - 1 >= n &&
           memcmp(p + 1, given, n) == 0;
}

/* A hold or placement that is over: acting on it can only be refused. */
static bool is_closed(const msgpack_object *row)
{
    static const char *const closed[] = {"confirmed", "declined", "released", "expired",
                                         "discharged"};
    const msgpack_object *st = proto_map_get(row, "state");
    for (size_t i = 0; i < sizeof closed / sizeof *closed; i++) {
        if (proto_str_is(st, closed[i]))
            return true;
    }
    return false;
}

/*
 * Replaces the start of a hold or placement id in the request by the whole id, found among
 * those the principal may see (every page of holds.list, placements.list); when it starts open
 * ones and closed ones, the open ones count. Returns 0, or -1 with err set: none matches
 * (not_found), or several do (a usage error naming them).
 */
static int resolve_id(struct cli *cli, const struct settings *settings, struct net_session **ns,
                      enum proto_field f, struct client_error *err)
{
    bool hold = f == F_HOLD;
    const char *what = hold ? "hold" : "placement";
    char *given = hold ? cli->req.args.hold : cli->req.args.placement;
    struct cli lister = *cli;
    lister.req = (struct proto_request){
        .id = cli->req.id + 1, .has_id = true, .op = hold ? OP_HOLDS_LIST : OP_PLACEMENTS_LIST};
    struct net_reply reply;
    struct pages pg;
    if (refusal(call(&lister, settings, ns, &lister.req, &reply, err), &reply, err) != 0 ||
        gather_pages(&lister, settings, ns, &reply, &pg, err) != 0)
        return -1;
    const msgpack_object *rows = proto_map_get(&pg.result, hold ? "holds" : "placements");
    char found[PROTO_TOKEN_MAX + 1] = "", names[CLIENT_MESSAGE_MAX - 120] = "";
    unsigned n = 0, open = 0;
    uint32_t count = rows && rows->type == MSGPACK_OBJECT_ARRAY ? rows->via.array.size : 0;
    for (uint32_t i = 0; i < count; i++) {
        const msgpack_object *row = &rows->via.array.ptr[i];
        if (id_matches(proto_map_get(row, what), given, hold ? 'h' : 'p') && !is_closed(row))
            open++;
    }
    for (uint32_t i = 0; i < count; i++) {
        const msgpack_object *row = &rows->via.array.ptr[i];
        const msgpack_object *id = proto_map_get(row, what);
        if (!id_matches(id, given, hold ? 'h' : 'p') || id->via.str.size > PROTO_TOKEN_MAX ||
            (open > 0 && is_closed(row)))
            continue;
        if (n++ == 0)
            snprintf(found, sizeof found, "%.*s", (int)id->via.str.size, id->via.str.ptr);
        const msgpack_object *st = proto_map_get(row, "state");
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s%.*s (%.*s)", used ? ", " : "",
                 (int)id->via.str.size, id->via.str.ptr,
                 st && st->type == MSGPACK_OBJECT_STR ? (int)st->via.str.size : 1,
                 st && st->type == MSGPACK_OBJECT_STR ? st->via.str.ptr : "?");
    }
    pages_free(&pg);
    if (n == 0)
        return client_fail(err, CLIENT_REFUSED, "not_found",
                           "no %s that you may see has an id starting with '%s'", what, given);
    if (n > 1)
        return client_fail(err, CLIENT_USAGE, "usage",
                           "'%s' is the start of %u %ss: %s; give more of the id", given, n, what,
                           names);
    snprintf(given, PROTO_TOKEN_MAX + 1, "%s", found);
    return 0;
}

/*
 * The audit trail arrives oldest first; people read it newest first. The reply's memory is
 * ours, so its entries are turned round where they are.
 */
static void newest_first(const msgpack_object *result)
{
    msgpack_object *entries = (msgpack_object *)(uintptr_t)proto_map_get(result, "entries");
    if (!entries || entries->type != MSGPACK_OBJECT_ARRAY)
        return;
    for (uint32_t i = 0, j = entries->via.array.size; i + 1 < j; i++, j--) {
        msgpack_object t = entries->via.array.ptr[i];
        entries->via.array.ptr[i] = entries->via.array.ptr[j - 1];
        entries->via.array.ptr[j - 1] = t;
    }
}

/* Sends the request and prints what comes back. */
static int run(struct cli *cli, struct client_error *err)
{
    struct settings settings;
    struct net_session *ns = NULL;
    struct net_reply reply;
    int status;

    if (settings_load(&settings, &cli->flags, err) != 0) {
        settings_free(&settings);
        return report(cli->json, err);
    }
    /* "hold N": result N of the last search, checked once the search has filled it in. */
    if (cli->recall &&
        (recall_load(&settings, cli->recall, &cli->req, err) != 0 || cli_validate(cli, err) != 0)) {
        settings_free(&settings);
        return report(cli->json, err);
    }
    if (cli->req.op == OP_WATCH) {
        status = watch_run(&settings, &cli->req, cli->json, err) == 0 ? CLIENT_OK
                                                                      : report(cli->json, err);
        settings_free(&settings);
        return status;
    }
    enum proto_field prefix = cli_id_prefix(cli);
    if (net_open(&settings, &ns, err) != 0 ||
        (prefix != F__COUNT && resolve_id(cli, &settings, &ns, prefix, err) != 0) ||
        refusal(call(cli, &settings, &ns, &cli->req, &reply, err), &reply, err) != 0) {
        status = report(cli->json, err);
    } else if (paged_list(cli->req.op)) {
        struct pages pg;
        status = gather_pages(cli, &settings, &ns, &reply, &pg, err) == 0
                     ? print_result(cli, &pg.result, err)
                     : report(cli->json, err);
        pages_free(&pg);
    } else {
        if (cli->req.op == OP_AUDIT)
            newest_first(reply.reply.result);
        /* A search is remembered for "hold N"; a failure to remember is no failure to search. */
        if (reply.reply.ok && cli->req.op == OP_SEARCH)
            (void)recall_save(&settings, &cli->req.args, reply.reply.result);
        status = print_result(cli, reply.reply.result, err);
        net_reply_free(&reply);
    }
    net_close(ns);
    settings_free(&settings);
    return status;
}

int main(int argc, char **argv)
{
    struct cli cli;
    struct client_error err = {0};
    int status;

    /* A server that goes away mid-write must be an error message, not a silent death. */
    signal(SIGPIPE, SIG_IGN);
    tzset();

    recall_forget_stale();
    int rc = cli_parse(argc, argv, &cli, &err);
    if (cli.help) {
        cli_help(stdout, cli.topics);
        status = CLIENT_OK;
    } else if (cli.version) {
        printf("fristad %s (protocol %d)\n", FRISTAD_VERSION, PROTO_VERSION);
        status = CLIENT_OK;
    } else if (rc != 0) {
        status = report(cli.json, &err);
    } else if (cli.req.op == CLI_LOCAL) {
        status = lookup_municipality(&cli, &err);
    } else {
        cli.req.id = (uint64_t)getpid();
        srand((unsigned)mono_ms() ^ (unsigned)getpid());
        if (add_idempotency_key(&cli.req) != 0) {
            client_fail(&err, CLIENT_FAILED, "internal", "no random numbers from the kernel");
            status = report(cli.json, &err);
        } else if (!cli.recall && cli_validate(&cli, &err) != 0) {
            status = report(cli.json, &err);
        } else {
            status = run(&cli, &err);
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "fristad: cannot write the output\n");
        if (status == CLIENT_OK)
            status = CLIENT_FAILED;
    }
    return status;
}
