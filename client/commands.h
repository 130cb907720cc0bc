/*
 * The client's commands and options, one table each. Everything about a command comes from
 * its row: the words people type, the parser's checks, the synopsis in error messages, the
 * usage text and the per-command help. A new command is one row; a new option is one entry
 * of the option table and a bit in the rows that take it.
 *
 * Glossary
 *   word       the command's name on the command line: "holds", or "shelter" "add".
 *   argument   a positional value after the words, such as SHELTER UNIT.
 *   metavar    the placeholder that stands for a value in help texts: CODE, N, 1|2|3.
 *   synopsis   words, arguments and options in one line, as the usage text shows them.
 *   section    the heading a command is listed under: who mostly uses it.
 */
#ifndef FRISTAD_CLIENT_COMMANDS_H
#define FRISTAD_CLIENT_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <fristad/proto.h>

/*
 * Every option, global ones first. Within a command, help texts and synopses list options in
 * this order, so related ones stand together and required ones come first.
 */
enum cli_opt {
    /* global */
    O_JSON,
    O_CSV, /* with followup only: CSV instead of a table */
    O_SERVER,
    O_CERT,
    O_KEY,
    O_P12,
    O_CA,
    O_CONFIG,
    O_SERVERNAME,
    O_TIMEOUT,
    O_HELP,
    O_VERSION,
    O_STANDING, /* with search only: makes it "standing add" */
    /* subcommand options */
    O_COUNTY,
    O_NAME,
    O_KIND,
    O_MUNICIPALITY,
    O_PROTECTION,
    O_PHONE,
    O_GROUPS,
    O_MAX_CHILDREN,
    O_BOYS_MAX_AGE,
    O_LANGUAGES,
    O_INTAKE_HOURS,
    O_BEDS,
    O_ACCESSIBLE,
    O_NOT_ACCESSIBLE,
    O_FROM,
    O_RISK,
    O_ADULTS,
    O_CHILD,
    O_GROUP,
    O_WHEELCHAIR,
    O_PETS,
    O_NO_PETS,
    O_SUBSTANCE,
    O_NO_SUBSTANCE,
    O_LANGUAGE,
    O_PERPETRATOR_IN,
    O_EXCLUDE,
    O_ARRIVAL_AT,
    O_REF,
    O_CALLBACK,
    O_IDEMPOTENCY_KEY,
    O_FOR,
    O_ARRIVAL_BY,
    O_REASON,
    O_NOTE,
    O_SINCE,
    O_PRINCIPAL,
    O_PERSON,
    O_SHELTER,
    O_LIMIT,
    O_HOURS,
    O_TYPE,
    O_COMPETENCES,
    O_OPERATOR,
    O_IVO_PERMIT,
    O_NO_IVO_PERMIT,
    O_IVO_PERMIT_DATE,
    O_IVO_REGISTERED,
    O_NO_IVO_REGISTERED,
    O_NEED,
    O_CHILD_BASIS,
    O_FROM_MONTH, /* "--from" of followup: the name is shared with O_FROM */
    O_TO_MONTH,
    O__COUNT
};

#define O_FIRST_LOCAL O_COUNTY

/* A set of options, a bit per enum cli_opt (GCC's and Clang's 128-bit integer). */
__extension__ typedef unsigned __int128 cli_optmask;

_Static_assert(O__COUNT <= 128, "a command's options are a 128-bit mask");

/* The bit of an option in a command's masks. */
#define CLI_OPT_BIT(o) ((cli_optmask)1 << (o))

/*
 * An option may share its name with an earlier one when no command takes both ("--from" is
 * the home municipality of a search and the first month of followup): the command
 * decides which one the name is.
 */
struct cli_option {
    const char *name;       /* the long option, without "--" */
    const char *metavar;    /* what its value looks like; NULL for an option without a value */
    enum proto_field field; /* the request field it sets; F__COUNT for the global options */
    const char *help;       /* one line for people */
    bool repeat;            /* may be given more than once; each value is collected */
    bool negative;          /* the "no" form of the option just before it in enum cli_opt */
};

/* Headings of the usage text, in the order it shows them. */
enum cli_section {
    CLI_SECTION_REGISTRY,  /* the admin keeps the shelters and units */
    CLI_SECTION_VACANCIES, /* shelter staff: vacancies, intake and arrivals */
    CLI_SECTION_LISTINGS,  /* everyone */
    CLI_SECTION_REFERRALS, /* social services and the on-call service */
    CLI_SECTION_ADMIN,     /* audit trail and counters */
    CLI_SECTION__COUNT
};

#define CLI_MAX_ARGS 3u
#define CLI_WIDTH    100u /* columns of the help texts */

/* A positional argument. */
struct cli_arg {
    enum proto_field field; /* the request field it sets */
    const char *metavar;    /* ID, SHELTER, UNIT, free|occupied|closed */
};

/* The op of a command that the client answers by itself, without asking the server. */
#define CLI_LOCAL OP__COUNT

struct cli_command {
    const char *word1;
    const char *word2; /* NULL for one-word commands */
    unsigned nargs;    /* positional arguments after the words */
    struct cli_arg args[CLI_MAX_ARGS];
    enum proto_op op; /* CLI_LOCAL: answered by the client */
    enum cli_section section;
    const char *summary;     /* one line: what it does */
    const char *description; /* NULL, or more for its own help: values, effects, who may */
    cli_optmask allowed;     /* options, bits of enum cli_opt */
    cli_optmask required;
    bool needs_change; /* at least one option */
    /*
     * Also takes a single argument N instead: result N of the caller's last search, whose
     * shelter, unit and referral it then carries (the options of that search are not given).
     */
    bool recall;
};

/* The options of a referral, which a recalled search provides. */
#define CLI_REFERRAL_OPTS                                                                          \
    (CLI_OPT_BIT(O_FROM) | CLI_OPT_BIT(O_RISK) | CLI_OPT_BIT(O_ADULTS) | CLI_OPT_BIT(O_CHILD) |    \
     CLI_OPT_BIT(O_GROUP) | CLI_OPT_BIT(O_WHEELCHAIR) | CLI_OPT_BIT(O_PETS) |                      \
     CLI_OPT_BIT(O_SUBSTANCE) | CLI_OPT_BIT(O_LANGUAGE) | CLI_OPT_BIT(O_PERPETRATOR_IN) |          \
     CLI_OPT_BIT(O_EXCLUDE) | CLI_OPT_BIT(O_NEED))

/* Every command, n of them; each op has one. Messages and the usage text keep this order. */
const struct cli_command *cli_commands(size_t *n);

/* Every option: O__COUNT of them, indexed by enum cli_opt. */
const struct cli_option *cli_options(void);

/* "shelter add" or "holds", for messages; returns buf. */
const char *cli_command_name(const struct cli_command *c, char *buf, size_t cap);

/*
 * The brief synopsis of c, for error messages, without the leading "fristad ": its words,
 * arguments and required options; for a command that requires no option, every option it
 * takes when they fit on one line of the usage text, else OPTION.... Returns buf, always
 * NUL-terminated.
 */
const char *cli_synopsis(const struct cli_command *c, char *buf, size_t cap);

/* Every option and argument of c, optional ones in brackets, on one line. Returns buf. */
const char *cli_synopsis_full(const struct cli_command *c, char *buf, size_t cap);

/* The heading of a section: "Registry (admin)". */
const char *cli_section_title(enum cli_section s);

/* Where settings come from, and what each exit status means: for the usage text and man page. */
extern const char *const cli_settings_text;
extern const char *const cli_exit_text;

/*
 * The usage text: every command by section, the global options, where settings come from and
 * the exit statuses.
 */
void cli_usage(FILE *out);

/* The help of the commands whose bits (by index in cli_commands) are set in `which`. */
void cli_help(FILE *out, uint64_t which);

#endif
