/*
 * The op table walked row by row, against everything else an op needs: a complete row, an
 * entry in proto/PROTOCOL.md (its operations and its authorisation matrix, cell by cell), a
 * registered Redis Function for the store routes, a command in the fristad client (or an
 * explicit wire-only mark), and an integration test that sends it. A new op that lacks any of
 * these fails here.
 */
#include <ctype.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "commands.h"
#include "ops.h"

#ifndef FRISTAD_SOURCE_ROOT
#error "FRISTAD_SOURCE_ROOT must name the source tree"
#endif

static char *slurp(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", FRISTAD_SOURCE_ROOT, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The text between two headings of a Markdown file (end NULL: to the end). */
static char *section(char *text, const char *start, const char *end)
{
    char *a = strstr(text, start);
    if (!a)
        fail_msg("PROTOCOL.md has no heading '%s'", start);
    char *b = end ? strstr(a, end) : NULL;
    if (b)
        *b = '\0';
    return a;
}

static bool mentions(const char *text, const char *quote, const char *name)
{
    char needle[128];
    snprintf(needle, sizeof needle, "%s%s%s", quote, name, quote);
    return strstr(text, needle) != NULL;
}

static void test_every_row_is_complete(void **state)
{
    (void)state;
    for (unsigned op = 0; op < OP__COUNT; op++) {
        const struct op_def *row = ops_get((enum proto_op)op);
        const char *name = proto_op_name((enum proto_op)op);
        assert_non_null(row);
        if (row->roles == 0)
            fail_msg("%s: no role may use it (no authorisation row)", name);
        for (unsigned r = 0; r < ROLE__COUNT; r++) {
            if (!(row->roles & (1u << r)) && row->scope[r] != SCOPE_ANY)
                fail_msg("%s: a scope for a role that is not allowed", name);
        }
        switch (row->route) {
        case ROUTE_INDEX:
            if (!row->answer || row->function || row->extra || row->shape)
                fail_msg("%s: an index answer has an answer function and nothing else", name);
            break;
        case ROUTE_STREAM:
            if (row->answer || row->function || row->extra || row->shape || row->check)
                fail_msg("%s: a stream is handled by its own module (watch.c)", name);
            break;
        case ROUTE_READ:
        case ROUTE_WRITE:
            if (!row->function || row->answer)
                fail_msg("%s: a store op names its Redis Function and has no index answer", name);
            if ((row->route == ROUTE_WRITE) != proto_op_writes((enum proto_op)op))
                fail_msg("%s: the route and the protocol's 'writes' disagree", name);
            break;
        default:
            fail_msg("%s: no route", name);
        }
    }
    assert_null(ops_get(OP__COUNT));
}

static void test_store_functions_are_registered(void **state)
{
    (void)state;
    char *lua = slurp("daemon/fristad.lua");
    for (unsigned op = 0; op < OP__COUNT; op++) {
        const struct op_def *row = ops_get((enum proto_op)op);
        if (row->route == ROUTE_INDEX || row->route == ROUTE_STREAM)
            continue;
        char reg[128];
        snprintf(reg, sizeof reg, "reg('fristad_%s', ", row->function);
        const char *at = strstr(lua, reg);
        if (!at)
            fail_msg("%s: fristad.lua registers no function fristad_%s",
                     proto_op_name((enum proto_op)op), row->function);
        const char *eol = strchr(at, '\n');
        bool readonly = eol && eol - at > 7 && strncmp(eol - 7, ", true)", 7) == 0;
        if (readonly != (row->route == ROUTE_READ))
            fail_msg("fristad_%s: flagged no-writes exactly when its op is a read", row->function);
    }
    free(lua);
}

/* Store functions take one envelope of named fields: no positional argument past the first. */
static void test_no_positional_arguments_in_lua(void **state)
{
    (void)state;
    char *lua = slurp("daemon/fristad.lua");
    if (strstr(lua, "ARGV["))
        fail_msg("fristad.lua reads ARGV[...] positionally");
    for (const char *p = lua; (p = strstr(p, "argv[")) != NULL; p++) {
        if (!(p[5] == '1' && p[6] == ']'))
            fail_msg("fristad.lua reads an argument other than argv[1]: %.20s", p);
    }
    for (const char *p = lua; (p = strstr(p, "args[")) != NULL; p++) {
        if (isdigit((unsigned char)p[5]))
            fail_msg("fristad.lua reads a positional argument: %.20s", p);
    }
    free(lua);
}

static void test_protocol_documents_every_op(void **state)
{
    (void)state;
    char *doc = slurp("proto/PROTOCOL.md");
    char *ops = section(doc, "## 5. Operations", "## 6.");
    for (unsigned op = 0; op < OP__COUNT; op++) {
        const char *name = proto_op_name((enum proto_op)op);
        if (!mentions(ops, "`", name))
            fail_msg("PROTOCOL.md section 5 does not describe `%s`", name);
    }
    free(doc);
}

/*
 * Section 6 of PROTOCOL.md, cell by cell: a row "| `a`, `b` (note) | shelter | social |
 * oncall | admin |" where "–" is refused and anything else allowed.
 */
static void test_protocol_matrix_is_the_table(void **state)
{
    (void)state;
    char *doc = slurp("proto/PROTOCOL.md");
    char *matrix = section(doc, "## 6. Authorisation", "## 7.");
    bool seen[OP__COUNT] = {false};
    for (char *line = strtok(matrix, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "| `", 3) != 0)
            continue;
        char *cells[6] = {0};
        unsigned n = 0;
        for (char *p = line; *p && n < 6; p++) {
            if (*p == '|')
                cells[n++] = p + 1;
        }
        assert_int_equal(n, 6);
        bool allowed[ROLE__COUNT];
        for (unsigned r = 0; r < ROLE__COUNT; r++) {
            char *c = cells[1 + r];
            while (*c == ' ')
                c++;
            allowed[r] = !(strncmp(c, "–", strlen("–")) == 0 || *c == '-');
        }
        for (char *p = cells[0]; (p = strchr(p, '`')) != NULL;) {
            char *q = strchr(p + 1, '`');
            if (!q || q > cells[1])
                break;
            int op = proto_op_parse(p + 1, (size_t)(q - p - 1));
            if (op < 0)
                fail_msg("PROTOCOL.md section 6 names an unknown op: %.*s", (int)(q - p - 1),
                         p + 1);
            seen[op] = true;
            for (unsigned r = 0; r < ROLE__COUNT; r++) {
                if (authz_allowed((enum proto_op)op, (enum proto_role)r, NULL) != allowed[r])
                    fail_msg("%s by %s: PROTOCOL.md says %s, the op table the opposite",
                             proto_op_name((enum proto_op)op), proto_role_name((enum proto_role)r),
                             allowed[r] ? "allowed" : "refused");
            }
            p = q + 1;
        }
    }
    for (unsigned op = 0; op < OP__COUNT; op++) {
        if (!seen[op])
            fail_msg("PROTOCOL.md section 6 has no row for `%s`", proto_op_name((enum proto_op)op));
    }
    free(doc);
}

static void test_client_has_a_command_for_every_op(void **state)
{
    (void)state;
    size_t n;
    const struct cli_command *cmds = cli_commands(&n);
    for (unsigned op = 0; op < OP__COUNT; op++) {
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = cmds[i].op == (enum proto_op)op;
        bool wire_only = ops_get((enum proto_op)op)->flags & OPF_WIRE_ONLY;
        if (!found && !wire_only)
            fail_msg("`%s` has no fristad command and is not marked wire-only",
                     proto_op_name((enum proto_op)op));
        if (found && wire_only)
            fail_msg("`%s` is marked wire-only but has a fristad command",
                     proto_op_name((enum proto_op)op));
    }
}

/* Every op is sent by at least one integration test, by its wire name. */
static void test_every_op_is_sent_by_a_test(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/integration", FRISTAD_SOURCE_ROOT);
    DIR *d = opendir(dir);
    assert_non_null(d);
    bool sent[OP__COUNT] = {false};
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "test_", 5) != 0 || len < 3 || strcmp(e->d_name + len - 3, ".py"))
            continue;
        char rel[512];
        snprintf(rel, sizeof rel, "tests/integration/%s", e->d_name);
        char *text = slurp(rel);
        for (unsigned op = 0; op < OP__COUNT; op++)
            sent[op] |= mentions(text, "\"", proto_op_name((enum proto_op)op));
        free(text);
    }
    closedir(d);
    for (unsigned op = 0; op < OP__COUNT; op++) {
        if (!sent[op])
            fail_msg("no integration test sends \"%s\"", proto_op_name((enum proto_op)op));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_row_is_complete),
        cmocka_unit_test(test_store_functions_are_registered),
        cmocka_unit_test(test_no_positional_arguments_in_lua),
        cmocka_unit_test(test_protocol_documents_every_op),
        cmocka_unit_test(test_protocol_matrix_is_the_table),
        cmocka_unit_test(test_client_has_a_command_for_every_op),
        cmocka_unit_test(test_every_op_is_sent_by_a_test),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
