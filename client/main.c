/*
 * fristad: the command-line client of fristadd. One invocation, one request:
 * argv -> validated request -> settings -> TLS round trip -> output and exit status.
 * A hold or placement given by the start of its id is looked up first, on the same
 * connection; the municipality command is answered without a server.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "watch.h"
#include "settings.h"

#ifndef FRISTAD_VERSION
#define FRISTAD_VERSION "unknown"
#endif

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
    if (cli->json) {
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
static int exchange(struct net_session *ns, const struct proto_request *req,
                    struct net_reply *reply, struct client_error *err)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = -1;
    if (proto_pack_request(&pk, req) != 0)
        client_fail(err, CLIENT_FAILED, "internal", "out of memory");
    else
        rc = net_exchange(ns, (const uint8_t *)sb.data, sb.size, req->id, reply, err);
    msgpack_sbuffer_destroy(&sb);
    if (rc == 0 && !reply->reply.ok) {
        const struct proto_reply *r = &reply->reply;
        client_fail(err, CLIENT_REFUSED, r->code_text[0] ? r->code_text : "internal", "%s",
                    r->message);
        net_reply_free(reply);
        rc = -1;
    }
    return rc;
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
    for (size_t i = 0; st && st->type == MSGPACK_OBJECT_STR && i < sizeof closed / sizeof *closed;
         i++) {
        if (st->via.str.size == strlen(closed[i]) &&
            memcmp(st->via.str.ptr, closed[i], st->via.str.size) == 0)
            return true;
    }
    return false;
}

/*
 * Replaces the start of a hold or placement id in the request by the whole id, found among
 * those the principal may see (holds.list, placements.list); when it starts open ones and
 * closed ones, the open ones count. Returns 0, or -1 with err set: none matches (not_found),
 * or several do (a usage error naming them).
 */
static int resolve_id(struct net_session *ns, struct cli *cli, enum proto_field f,
                      struct client_error *err)
{
    bool hold = f == F_HOLD;
    const char *what = hold ? "hold" : "placement";
    char *given = hold ? cli->req.args.hold : cli->req.args.placement;
    struct proto_request list = {
        .id = cli->req.id + 1, .has_id = true, .op = hold ? OP_HOLDS_LIST : OP_PLACEMENTS_LIST};
    struct net_reply reply;
    if (exchange(ns, &list, &reply, err) != 0)
        return -1;
    const msgpack_object *rows = proto_map_get(reply.reply.result, hold ? "holds" : "placements");
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
    net_reply_free(&reply);
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
        (prefix != F__COUNT && resolve_id(ns, cli, prefix, err) != 0) ||
        exchange(ns, &cli->req, &reply, err) != 0) {
        status = report(cli->json, err);
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
        if (!cli.recall && cli_validate(&cli, &err) != 0)
            status = report(cli.json, &err);
        else
            status = run(&cli, &err);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "fristad: cannot write the output\n");
        if (status == CLIENT_OK)
            status = CLIENT_FAILED;
    }
    return status;
}
