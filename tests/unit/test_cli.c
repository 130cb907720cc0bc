/*
 * The client's command table against the protocol: every op has one command, every option and
 * argument sets a field its op takes, what the op requires the command requires too; and the
 * texts made from the table (usage, per-command help, did-you-mean) say what the table says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "commands.h"

/* What f(out) prints, NUL-terminated; the caller frees it. */
static char *printed(void (*f)(FILE *, uint64_t), uint64_t which)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    f(out, which);
    assert_int_equal(fclose(out), 0);
    return text;
}

static void usage(FILE *out, uint64_t which)
{
    (void)which;
    cli_usage(out);
}

static void assert_width(const char *text)
{
    for (const char *line = text; *line;) {
        size_t n = strcspn(line, "\n");
        if (n > CLI_WIDTH)
            fail_msg("a line of %zu columns: %.*s", n, (int)n, line);
        line += n + (line[n] == '\n');
    }
}

/* Whether a line of text starts with `start`, followed by a blank or the line's end. */
static bool has_line(const char *text, const char *start)
{
    size_t n = strlen(start);
    for (const char *at = text; (at = strstr(at, start)) != NULL; at += n) {
        if ((at == text || at[-1] == '\n') && (at[n] == ' ' || at[n] == '\n'))
            return true;
    }
    return false;
}

static void test_every_op_has_one_command(void **state)
{
    (void)state;
    size_t n;
    const struct cli_command *c = cli_commands(&n);
    unsigned count[OP__COUNT] = {0};
    for (size_t i = 0; i < n; i++) {
        assert_true((unsigned)c[i].op <= CLI_LOCAL);
        if (c[i].op != CLI_LOCAL)
            count[c[i].op]++;
    }
    for (unsigned op = 0; op < OP__COUNT; op++) {
        if (count[op] != 1)
            fail_msg("op %s has %u commands", proto_op_name((enum proto_op)op), count[op]);
    }
}

static void test_commands_match_their_ops(void **state)
{
    (void)state;
    size_t n;
    const struct cli_command *c = cli_commands(&n);
    const struct cli_option *opts = cli_options();
    for (size_t i = 0; i < n; i++) {
        char name[32];
        if (c[i].op == CLI_LOCAL) { /* asks the server nothing: no field, no option */
            assert_int_equal(c[i].allowed, 0);
            continue;
        }
        uint64_t allowed = proto_op_allowed(c[i].op), given = 0;
        cli_command_name(&c[i], name, sizeof name);
        assert_true(c[i].nargs <= CLI_MAX_ARGS);
        for (unsigned a = 0; a < c[i].nargs; a++) {
            assert_non_null(c[i].args[a].metavar);
            if (!(allowed & PROTO_BIT(c[i].args[a].field)))
                fail_msg("'%s': argument %s is no field of %s", name, c[i].args[a].metavar,
                         proto_op_name(c[i].op));
            given |= PROTO_BIT(c[i].args[a].field);
        }
        for (int o = 0; o < O__COUNT; o++) {
            if (!(c[i].allowed & CLI_OPT_BIT(o)))
                continue;
            if (o < O_FIRST_LOCAL || !(allowed & PROTO_BIT(opts[o].field)))
                fail_msg("'%s': --%s is no field of %s", name, opts[o].name,
                         proto_op_name(c[i].op));
            if (c[i].required & CLI_OPT_BIT(o))
                given |= PROTO_BIT(opts[o].field);
        }
        assert_int_equal(c[i].required & ~c[i].allowed, 0);
        if (proto_op_required(c[i].op) & ~given)
            fail_msg("'%s' lets %s go without a field it requires", name, proto_op_name(c[i].op));
    }
}

static void test_options_are_described(void **state)
{
    (void)state;
    const struct cli_option *opts = cli_options();
    for (int o = 0; o < O__COUNT; o++) {
        assert_non_null(opts[o].name);
        assert_non_null(opts[o].help);
        assert_true(opts[o].help[0] != '\0');
        assert_true((o < O_FIRST_LOCAL) == (opts[o].field == F__COUNT));
        if (opts[o].negative) { /* the "no" form follows its option and sets the same field */
            assert_true(o > O_FIRST_LOCAL);
            assert_int_equal(opts[o].field, opts[o - 1].field);
            assert_null(opts[o].metavar);
            assert_null(opts[o - 1].metavar);
        }
    }
}

/* Options that share a name are never both taken by one command: the name must mean one. */
static void test_shared_names_mean_one_option(void **state)
{
    (void)state;
    size_t n;
    const struct cli_command *c = cli_commands(&n);
    const struct cli_option *opts = cli_options();
    for (int a = 0; a < O__COUNT; a++) {
        for (int b = a + 1; b < O__COUNT; b++) {
            if (strcmp(opts[a].name, opts[b].name) != 0)
                continue;
            assert_true(a >= O_FIRST_LOCAL); /* a global option is every command's */
            for (size_t i = 0; i < n; i++) {
                cli_optmask both = CLI_OPT_BIT(a) | CLI_OPT_BIT(b);
                if ((c[i].allowed & both) == both)
                    fail_msg("a command takes two options named --%s", opts[a].name);
            }
        }
    }
}

static void test_usage_lists_every_command(void **state)
{
    (void)state;
    size_t n;
    const struct cli_command *c = cli_commands(&n);
    char *text = printed(usage, 0);
    for (size_t i = 0; i < n; i++) {
        char name[32], line[40];
        snprintf(line, sizeof line, "  %s", cli_command_name(&c[i], name, sizeof name));
        if (!has_line(text, line))
            fail_msg("the usage text lacks '%s'", name);
    }
    assert_non_null(strstr(text, "\nExit status: "));
    assert_width(text);
    free(text);
}

static void test_help_names_each_option(void **state)
{
    (void)state;
    size_t n;
    const struct cli_command *c = cli_commands(&n);
    const struct cli_option *opts = cli_options();
    for (size_t i = 0; i < n; i++) {
        char name[32], head[64];
        char *text = printed(cli_help, UINT64_C(1) << i);
        snprintf(head, sizeof head, "Usage: fristad %s",
                 cli_command_name(&c[i], name, sizeof name));
        assert_memory_equal(text, head, strlen(head));
        for (int o = O_FIRST_LOCAL; o < O__COUNT; o++) {
            char line[48];
            snprintf(line, sizeof line, "  --%s", opts[o].name);
            bool listed = has_line(text, line), named = false;
            /* Two options may share a name (--from); the help lists the one the command takes. */
            for (int e = O_FIRST_LOCAL; e < O__COUNT; e++)
                named = named || ((c[i].allowed & CLI_OPT_BIT(e)) &&
                                  strcmp(opts[e].name, opts[o].name) == 0);
            if (listed != named)
                fail_msg("the help of '%s' %s --%s", name, listed ? "describes" : "lacks",
                         opts[o].name);
        }
        assert_width(text);
        free(text);
    }
}

/* Parses a command line of words; returns cli_parse's result. */
static int parse(struct cli *cli, struct client_error *err, const char *line)
{
    static char prog[] = "fristad";
    char *copy = strdup(line), *argv[32] = {prog};
    int argc = 1;
    assert_non_null(copy);
    for (char *w = strtok(copy, " "); w && argc < 31; w = strtok(NULL, " "))
        argv[argc++] = w;
    memset(err, 0, sizeof *err);
    int rc = cli_parse(argc, argv, cli, err);
    free(copy);
    return rc;
}

static void test_did_you_mean(void **state)
{
    (void)state;
    static const struct {
        const char *line, *meant;
    } cases[] = {
        {"serch", "'search'"},
        {"shelter ad frida", "'shelter add'"},
        {"sheltr list", "'shelter list'"},
        {"wohami", "'whoami'"},
        {"hols", "'hold' or 'holds'"},
        {"help serch", "'search'"},
        {"vacancy confrim frida", "'vacancy confirm'"},
        {"frobnicate", NULL},
        {"x", NULL},
        {"shelter zzzzzzzz", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cli cli;
        struct client_error err;
        char want[80];
        assert_int_equal(parse(&cli, &err, cases[i].line), -1);
        assert_int_equal(err.status, CLIENT_USAGE);
        assert_false(cli.help);
        if (cases[i].meant) {
            snprintf(want, sizeof want, "; did you mean %s?", cases[i].meant);
            if (!strstr(err.message, want))
                fail_msg("'%s': %s", cases[i].line, err.message);
        } else if (strstr(err.message, "did you mean")) {
            fail_msg("'%s': %s", cases[i].line, err.message);
        }
    }
}

static void test_help_topics(void **state)
{
    (void)state;
    size_t n;
    const struct cli_command *c = cli_commands(&n);
    struct cli cli;
    struct client_error err;
    for (size_t i = 0; i < n; i++) {
        char name[32], line[64];
        cli_command_name(&c[i], name, sizeof name);
        snprintf(line, sizeof line, "help %s", name);
        assert_int_equal(parse(&cli, &err, line), 0);
        assert_true(cli.help);
        assert_true(cli.topics & (UINT64_C(1) << i));
        snprintf(line, sizeof line, "%s --help", name);
        assert_int_equal(parse(&cli, &err, line), 0);
        assert_true(cli.help && (cli.topics & (UINT64_C(1) << i)));
    }
    assert_int_equal(parse(&cli, &err, "--help"), 0);
    assert_true(cli.help);
    assert_int_equal(cli.topics, 0);
}

static void test_parse_builds_the_request(void **state)
{
    (void)state;
    struct cli cli;
    struct client_error err;
    assert_int_equal(parse(&cli, &err,
                           "hold frida r1 --ref KS-1 --for 1480 --from 0180 --risk high "
                           "--child 14m --callback 070-1234567"),
                     0);
    assert_int_equal(cli.req.op, OP_HOLD);
    assert_int_equal(cli.recall, 0);
    assert_string_equal(cli.req.args.shelter, "frida");
    assert_string_equal(cli.req.args.unit, "r1");
    assert_string_equal(cli.req.args.ref, "KS-1");
    assert_string_equal(cli.req.args.municipality, "1480");
    assert_string_equal(cli.req.args.home, "0180");
    assert_int_equal(cli.req.args.risk, RISK_HIGH);
    assert_int_equal(cli.req.args.n_children, 1);
    assert_string_equal(cli.req.args.callback, "070-1234567");
    /* The referral is the hold's to carry: without it, a usage error naming the flags. */
    assert_int_equal(parse(&cli, &err, "hold frida r1 --ref KS-1"), -1);
    assert_int_equal(err.status, CLIENT_USAGE);
    assert_non_null(strstr(err.message, "--from"));
    /* "hold N": result N of the last search, which brings the referral. */
    assert_int_equal(parse(&cli, &err, "hold 3 --ref KS-1"), 0);
    assert_int_equal(cli.recall, 3);
    assert_false(proto_has(&cli.req.args, F_SHELTER));
    assert_int_equal(parse(&cli, &err, "hold 3 --ref KS-1 --risk low"), -1);
    assert_non_null(strstr(err.message, "--risk"));
    assert_int_equal(parse(&cli, &err, "hold 0 --ref KS-1"), -1);
    assert_int_equal(parse(&cli, &err, "decline hbcdfghjkmnpqrstv --reason safety --note x"), 0);
    assert_int_equal(cli.req.args.reason, DECLINE_SAFETY);
    assert_string_equal(cli.req.args.note, "x");
    assert_int_equal(parse(&cli, &err, "decline hbcdfghjkmnpqrstv --reason full"), -1);
    assert_int_equal(err.status, CLIENT_USAGE);
    assert_non_null(strstr(err.message, "no_room, household, needs, safety, staffing, other"));
    assert_int_equal(parse(&cli, &err, "accept hbcdfghjkmnpqrstv --arrival-by +2h"), 0);
    assert_int_equal(cli.req.op, OP_HOLD_ACCEPT);
    assert_true(proto_has(&cli.req.args, F_ARRIVAL_BY));
    assert_int_equal(parse(&cli, &err, "vacancy frida r1 occupied"), 0);
    assert_int_equal(cli.req.op, OP_VACANCY_SET);
    assert_int_equal(cli.req.args.state, VAC_OCCUPIED);
    assert_int_equal(parse(&cli, &err, "unit update frida r1 --not-accessible"), 0);
    assert_true(proto_has(&cli.req.args, F_ACCESSIBLE));
    assert_false(cli.req.args.accessible);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_has_one_command),
        cmocka_unit_test(test_commands_match_their_ops),
        cmocka_unit_test(test_options_are_described),
        cmocka_unit_test(test_shared_names_mean_one_option),
        cmocka_unit_test(test_usage_lists_every_command),
        cmocka_unit_test(test_help_names_each_option),
        cmocka_unit_test(test_did_you_mean),
        cmocka_unit_test(test_help_topics),
        cmocka_unit_test(test_parse_builds_the_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
