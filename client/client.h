/*
 * The fristad command-line client: what its modules share.
 *
 * One invocation sends one request: cli.c turns argv into a validated struct proto_request,
 * settings.c finds the server and the certificate files, net.c makes the TLS connection and
 * exchanges one frame each way, and json.c or human.c prints the result.
 *
 * Glossary (see include/fristad/proto.h for the domain words)
 *   failure   something that kept the request from getting an answer: bad usage, no
 *             connection, a TLS problem, a timeout, a reply that breaks the protocol.
 *   refusal   an answer with an error code, from the server or from local validation.
 */
#ifndef FRISTAD_CLIENT_H
#define FRISTAD_CLIENT_H

#include <stdarg.h>

/* Exit statuses; scripts branch on them, so they never change. */
enum client_status {
    CLIENT_OK = 0,      /* the request succeeded */
    CLIENT_REFUSED = 1, /* the server, or local validation, answered with an error code */
    CLIENT_USAGE = 2,   /* the command line or the settings are wrong */
    CLIENT_FAILED = 3,  /* connection, TLS, timeout or protocol failure */
};

#define CLIENT_WARN_UNUSED __attribute__((warn_unused_result))

#define CLIENT_CODE_MAX    32u
#define CLIENT_MESSAGE_MAX 600u

/* What went wrong, in the shape of an error reply, so that both print the same way. */
struct client_error {
    enum client_status status;
    char code[CLIENT_CODE_MAX];       /* server code, or usage/connection/tls/timeout/protocol */
    char message[CLIENT_MESSAGE_MAX]; /* an English sentence for people */
};

/* Fills e and returns -1, so a caller can `return client_fail(e, ...)`. */
int client_fail(struct client_error *e, enum client_status status, const char *code,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
