/*
 * fristad watch: one line per event, until interrupted. The connection is a stream of frames
 * that answer the watch request: first {watching, seq}, then {event} or {heartbeat}. When the
 * connection breaks (the daemon restarts, the network goes), the client connects again with
 * backoff and asks for the events after the last one it printed, so nothing is missed and
 * nothing is shown twice; a sequence the daemon no longer keeps is reported (gone) and ends it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "human.h"
#include "json.h"
#include "net.h"
#include "watch.h"

#define QUIET_MS       90000 /* no frame, not even a heartbeat, for this long: reconnect */
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* Sleeps, unless a signal asks to stop. */
static void pause_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (!stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static bool str_of(const msgpack_object *o, char *buf, size_t cap)
{
    if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap)
        return false;
    memcpy(buf, o->via.str.ptr, o->via.str.size);
    buf[o->via.str.size] = '\0';
    return true;
}

/* Codes after which a new connection would be refused the same way. */
static bool final(const char *code)
{
    return strcmp(code, "unavailable") != 0 && strcmp(code, "rate_limited") != 0 &&
           strcmp(code, "limit_reached") != 0 && strcmp(code, "internal") != 0;
}

/* A passing trouble, on stderr: stdout carries nothing but events. */
static void say(bool json, const char *code, const char *message)
{
    if (json) {
        json_write_error(stderr, code, message);
        fflush(stderr);
    } else {
        char clean[CLIENT_MESSAGE_MAX];
        human_clean_message(clean, sizeof clean, message);
        fprintf(stderr, "fristad: %s: %s\n", code, clean);
    }
}

int watch_run(const struct settings *s, const struct proto_request *req, bool json,
              struct client_error *err)
{
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits end at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    net_stop_on(&stop);

    struct proto_request w = *req;
    char last[48] = "";
    int backoff = BACKOFF_MIN_MS;
    while (!stop) {
        if (last[0]) { /* resume after the last event printed */
            w.args.present |= PROTO_BIT(F_SINCE);
            w.args.since_is_seq = true;
            if (sscanf(last, "%lld-%llu", (long long *)&w.args.since,
                       (unsigned long long *)&w.args.since_seq) != 2)
                return client_fail(err, CLIENT_FAILED, "internal", "a sequence went wrong");
        }
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        if (proto_pack_request(&pk, &w) != 0) {
            msgpack_sbuffer_destroy(&sb);
            return client_fail(err, CLIENT_FAILED, "internal", "out of memory");
        }
        struct client_error e = {0};
        struct net_stream *st = net_stream_open(s, (const uint8_t *)sb.data, sb.size, w.id, &e);
        msgpack_sbuffer_destroy(&sb);
        if (!st) {
            if (stop)
                break;
            if (e.status == CLIENT_USAGE)
                return client_fail(err, e.status, e.code, "%s", e.message);
            say(json, e.code, e.message);
            pause_ms(backoff);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        bool started = false;
        for (;;) {
            struct net_reply reply;
            if (net_stream_next(st, QUIET_MS, &reply, &e) != 0) {
                if (!stop)
                    say(json, e.code, "the connection was lost; connecting again");
                break;
            }
            const struct proto_reply *r = &reply.reply;
            if (!r->ok) {
                const char *code = r->code_text[0] ? r->code_text : "internal";
                bool ends = final(code);
                if (ends)
                    client_fail(err, CLIENT_REFUSED, code, "%s", r->message);
                else
                    say(json, code, r->message);
                net_reply_free(&reply);
                if (ends) {
                    net_stream_close(st);
                    return -1;
                }
                break;
            }
            const msgpack_object *ev = proto_map_get(r->result, "event");
            if (!started) {
                started = true;
                backoff = BACKOFF_MIN_MS;
                if (!last[0]) /* a fresh watch: a reconnect resumes from where it began */
                    (void)str_of(proto_map_get(r->result, "seq"), last, sizeof last);
            } else if (ev && ev->type == MSGPACK_OBJECT_MAP) {
                if (json) {
                    if (json_write_value(stdout, ev) == 0)
                        fputc('\n', stdout);
                } else {
                    (void)human_event(stdout, ev);
                }
                fflush(stdout);
                (void)str_of(proto_map_get(ev, "seq"), last, sizeof last);
            }
            net_reply_free(&reply);
            if (stop)
                break;
        }
        net_stream_close(st);
        if (!stop)
            pause_ms(backoff);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    return 0;
}
