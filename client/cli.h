/* The command line: global options, one subcommand, and the request it stands for. */
#ifndef FRISTAD_CLIENT_CLI_H
#define FRISTAD_CLIENT_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <fristad/proto.h>

#include "client.h"
#include "commands.h"
#include "settings.h"

struct cli {
    bool json;       /* --json: one JSON document on stdout, whatever happens */
    bool csv;        /* --csv: the follow-up as CSV */
    bool help;       /* --help or `help`: print the usage text or a command's help and stop */
    bool version;    /* --version */
    uint64_t topics; /* help: the commands to describe, bits by index in cli_commands(); 0 for
                        the usage text */
    unsigned recall; /* "hold N": result N of the last search (recall.c fills in the rest) */
    struct settings_flags flags;
    const struct cli_command *cmd;  /* the command, once known */
    const char *args[CLI_MAX_ARGS]; /* its positional arguments as typed */
    struct proto_request req;       /* op and args; the caller sets the id */
};

/*
 * Parses argv (which getopt may reorder) into out. Returns 0, or -1 with err set: a usage
 * error (CLIENT_USAGE), or a value the protocol refuses (CLIENT_REFUSED, with the proto error
 * code). out->json, out->help and out->version are set even when parsing fails, so that the
 * error can be reported in the form asked for; help for a word that is no command is a usage
 * error, with out->help false. The request still needs proto_validate_request: only what the
 * struct cannot hold is checked here.
 */
int cli_parse(int argc, char **argv, struct cli *out, struct client_error *err) CLIENT_WARN_UNUSED;

/*
 * Checks the parsed request with proto_validate_request, refusing it the way cli_parse refuses
 * a value: naming what the person typed, as a usage error. Returns 0 or -1 with err set.
 */
int cli_validate(const struct cli *cli, struct client_error *err) CLIENT_WARN_UNUSED;

/*
 * The hold or placement id of the request when it was given as a start of an id rather than
 * a whole one ("h3f9c" for h3f9c0e1d2a4b5c6d7): the field that needs looking up, else
 * F__COUNT.
 */
enum proto_field cli_id_prefix(const struct cli *cli);

#endif
