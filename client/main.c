/*
 * fristad: the command-line client of fristadd. One invocation, one request:
 * argv -> validated request -> settings -> TLS round trip -> output and exit status.
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

/* Sends the request and prints what comes back. */
static int run(const struct cli *cli, struct client_error *err)
{
    struct settings settings;
    struct net_reply reply;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int status;

    struct proto_request req = cli->req;
    struct proto_error perr = {0};
    if (settings_load(&settings, &cli->flags, err) != 0 ||
        (cli->recall && recall_load(&settings, cli->recall, &req, err) != 0)) {
        settings_free(&settings);
        return report(cli->json, err);
    }
    if (cli->recall && proto_validate_request(&req, &perr) != PROTO_OK) {
        settings_free(&settings);
        client_fail(err, CLIENT_REFUSED, proto_err_code(perr.code), "%s", perr.message);
        return report(cli->json, err);
    }
    if (req.op == OP_WATCH) {
        status =
            watch_run(&settings, &req, cli->json, err) == 0 ? CLIENT_OK : report(cli->json, err);
        settings_free(&settings);
        return status;
    }
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (proto_pack_request(&pk, &req) != 0) {
        client_fail(err, CLIENT_FAILED, "internal", "out of memory");
        status = report(cli->json, err);
    } else if (net_call(&settings, (const uint8_t *)sb.data, sb.size, req.id, &reply, err) != 0) {
        status = report(cli->json, err);
    } else {
        const struct proto_reply *r = &reply.reply;
        /* A search is remembered for "hold N"; a failure to remember is no failure to search. */
        if (r->ok && req.op == OP_SEARCH)
            (void)recall_save(&settings, &req.args, r->result);
        if (!r->ok) {
            client_fail(err, CLIENT_REFUSED, r->code_text[0] ? r->code_text : "internal", "%s",
                        r->message);
            status = report(cli->json, err);
        } else if (cli->json) {
            status = CLIENT_OK;
            if (json_write_value(stdout, r->result) != 0) {
                client_fail(err, CLIENT_FAILED, "internal", "out of memory");
                status = report(false, err);
            } else {
                fputc('\n', stdout);
            }
        } else if (human_print(stdout, &req, r->result) != 0) {
            client_fail(err, CLIENT_FAILED, "internal",
                        "out of memory while showing the reply; the request itself succeeded");
            status = report(false, err);
        } else {
            status = CLIENT_OK;
        }
        net_reply_free(&reply);
    }
    msgpack_sbuffer_destroy(&sb);
    settings_free(&settings);
    return status;
}

int main(int argc, char **argv)
{
    struct cli cli;
    struct client_error err = {0};
    struct proto_error perr = {0};
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
    } else {
        cli.req.id = (uint64_t)getpid();
        /* A recalled hold is checked once the search has filled it in (run). */
        if (!cli.recall && proto_validate_request(&cli.req, &perr) != PROTO_OK) {
            client_fail(&err, CLIENT_REFUSED, proto_err_code(perr.code), "%s", perr.message);
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
