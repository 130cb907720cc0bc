/*
 * fristad: the command-line client of fristadd. One invocation, one request:
 * argv -> validated request -> settings -> TLS round trip -> output and exit status.
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
#include "settings.h"

#ifndef FRISTAD_VERSION
#define FRISTAD_VERSION "unknown"
#endif

/* The ops settled by repeating them; the server answers a repeat as it answered the first. */
static const enum proto_op settled_ops[] = {
    OP_HOLD,
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

/*
 * One request, and for a settled op the same request again while its outcome is unknown.
 * Returns as net_call does; when the outcome stays unknown, -1 with err saying so.
 */
static int call(const struct cli *cli, const struct settings *settings, const msgpack_sbuffer *sb,
                struct net_reply *reply, struct client_error *err)
{
    bool settle = settled(cli->req.op) && settings->retry_for_ms > 0;
    int64_t start = mono_ms();
    int64_t pause = RETRY_FIRST_MS;
    bool unknown = false; /* an earlier attempt may have been carried out */
    char last[256] = "";
    for (int attempt = 1;; attempt++) {
        enum net_reach reach;
        int rc = net_call(settings, (const uint8_t *)sb->data, sb->size, cli->req.id, reply, &reach,
                          err);
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
            bool hold = cli->req.op == OP_HOLD;
            return client_fail(
                err, CLIENT_REFUSED, "outcome_unknown",
                "'%s' was sent %d time%s in %lld s and its outcome is still not known (last: "
                "%s). Check with 'fristad %s' before doing it again%s%s%s",
                proto_op_name(cli->req.op), attempt, attempt == 1 ? "" : "s",
                (long long)(spent + 999) / 1000, last, hold ? "holds" : "placements",
                hold ? ", or repeat it with --idempotency-key " : "",
                hold ? cli->req.args.idempotency_key : "",
                hold ? ": a repeat with the same key never makes a second hold" : "");
        }
        if (rc == 0)
            net_reply_free(reply);
        if (!cli->json)
            fprintf(stderr, "fristad: the outcome is not known yet (%s); asking again\n", last);
        pause_ms(pause + rand() % (pause / 4 + 1));
        pause = pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause * 2;
    }
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

/* Sends the request and prints what comes back. */
static int run(const struct cli *cli, struct client_error *err)
{
    struct settings settings;
    struct net_reply reply;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int status;

    if (settings_load(&settings, &cli->flags, err) != 0) {
        settings_free(&settings);
        return report(cli->json, err);
    }
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (proto_pack_request(&pk, &cli->req) != 0) {
        client_fail(err, CLIENT_FAILED, "internal", "out of memory");
        status = report(cli->json, err);
    } else if (call(cli, &settings, &sb, &reply, err) != 0) {
        status = report(cli->json, err);
    } else {
        const struct proto_reply *r = &reply.reply;
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
        } else if (human_print(stdout, &cli->req, r->result) != 0) {
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
        srand((unsigned)mono_ms() ^ (unsigned)getpid());
        if (add_idempotency_key(&cli.req) != 0) {
            client_fail(&err, CLIENT_FAILED, "internal", "no random numbers from the kernel");
            status = report(cli.json, &err);
        } else if (proto_validate_request(&cli.req, &perr) != PROTO_OK) {
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
