/*
 * Writes the client's manual page, fristad(1), and its bash completion from the command and
 * option tables, at build time: what the man page and the completion say is what the client
 * does, because both are made from the rows the client parses with.
 *
 *   gen_docs man VERSION   the man page, on stdout
 *   gen_docs bash          the bash completion, on stdout
 */
#include <stdio.h>
#include <string.h>

#include <fristad/proto.h>

#include "commands.h"

/* Text for roff: backslashes escaped, a leading dot or quote neutralised, hyphens as \-. */
static void roff(FILE *out, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", out);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-')
            fputs("\\-", out);
        else
            fputc(*s, out);
    }
}

static void option_entry(FILE *out, const struct cli_option *o, bool required)
{
    fputs(".TP\n\\fB", out);
    roff(out, "--");
    roff(out, o->name);
    fputs("\\fR", out);
    if (o->metavar) {
        fputs(" \\fI", out);
        roff(out, o->metavar);
        fputs("\\fR", out);
    }
    fputc('\n', out);
    roff(out, o->help);
    fputs(required ? " (required).\n" : ".\n", out);
}

static void man(FILE *out, const char *version)
{
    size_t n;
    const struct cli_command *cmds = cli_commands(&n);
    const struct cli_option *opts = cli_options();
    char buf[1024];

    fprintf(out, ".\\\" Generated from the client's command table by client/gen_docs.c.\n");
    fprintf(out, ".TH FRISTAD 1 \"\" \"Fristad %s\" \"User Commands\"\n", version);
    fputs(".SH NAME\n"
          "fristad \\- the command\\-line client of the Fristad shelter bed broker\n"
          ".SH SYNOPSIS\n"
          ".B fristad\n"
          "[\\fIOPTION\\fR]... \\fICOMMAND\\fR [\\fIARGUMENT\\fR]... [\\fIOPTION\\fR]...\n"
          ".SH DESCRIPTION\n"
          "Each command sends one request to \\fBfristadd\\fR(8) over mutually authenticated "
          "TLS, as the principal that the client certificate names, and prints the answer as a "
          "table, or with \\fB\\-\\-json\\fR as exactly one JSON document.\n"
          "Municipalities and counties are taken by name or code; times without an offset "
          "are local time, as the tables show them.\n"
          "In JSON, times are ISO 8601 local time with their offset.\n"
          "`\\fBfristad help\\fR \\fICOMMAND\\fR' describes one command.\n"
          ".SH COMMANDS\n",
          out);
    for (int s = 0; s < CLI_SECTION__COUNT; s++) {
        fputs(".SS \"", out);
        roff(out, cli_section_title((enum cli_section)s));
        fputs("\"\n", out);
        for (size_t i = 0; i < n; i++) {
            const struct cli_command *c = &cmds[i];
            if (c->section != (enum cli_section)s)
                continue;
            fputs(".TP\n\\fB", out);
            roff(out, cli_command_name(c, buf, sizeof buf));
            fputs("\\fR ", out);
            const char *syn = cli_synopsis_full(c, buf, sizeof buf);
            /* The words are already shown in bold; the rest follows them. */
            syn += strlen(c->word1) + (c->word2 ? 1 + strlen(c->word2) : 0);
            roff(out, syn[0] == ' ' ? syn + 1 : syn);
            fputc('\n', out);
            snprintf(buf, sizeof buf, "%s", c->summary);
            buf[0] = (char)(buf[0] >= 'a' && buf[0] <= 'z' ? buf[0] - 'a' + 'A' : buf[0]);
            roff(out, buf);
            fputs(".\n", out);
            if (c->description) {
                roff(out, c->description);
                fputc('\n', out);
            }
            if (c->allowed) {
                fputs(".RS\n", out);
                for (int o = O_FIRST_LOCAL; o < O__COUNT; o++) {
                    if (c->allowed & CLI_OPT_BIT(o))
                        option_entry(out, &opts[o], (c->required & CLI_OPT_BIT(o)) != 0);
                }
                fputs(".RE\n", out);
            }
        }
    }
    fputs(".TP\n\\fBhelp\\fR [\\fICOMMAND\\fR]\n"
          "The usage text, or a command's options and what they do.\n"
          ".SH OPTIONS\n"
          "These apply to every command, before or after it.\n",
          out);
    for (int o = 0; o < O_FIRST_LOCAL; o++)
        option_entry(out, &opts[o], false);
    fputs(".SH ENVIRONMENT\n", out);
    roff(out, cli_settings_text);
    fputs("\n.TP\n.B TZ\nThe time zone of the times shown and of the times typed without an "
          "offset.\n"
          ".SH FILES\n"
          ".TP\n.I ~/.config/fristad/client.conf\n"
          "Settings in a [client] section: server, cert, key, p12, ca, servername.\n"
          ".SH EXIT STATUS\n",
          out);
    roff(out, cli_exit_text);
    fputs("\n.SH EXAMPLES\n"
          ".nf\n"
          "fristad search \\-\\-from Stockholm \\-\\-risk high \\-\\-child 14m "
          "\\-\\-perpetrator\\-in "
          "Uppsala\n"
          "fristad hold tryggheten\\-malmo lgh1 \\-\\-ref KS\\-2026\\-0417\n"
          "fristad release h3f9c\n"
          "fristad free \\-\\-county \"V\\(:astra G\\(:otaland\"\n"
          "fristad municipality habo\n"
          ".fi\n"
          ".SH SEE ALSO\n"
          "\\fBfristadd\\fR(8), \\fBfristadd.conf\\fR(5)\n",
          out);
}

/* Space-separated words of a list made by a name function. */
static void words(FILE *out, const char *(*name)(unsigned), unsigned count)
{
    for (unsigned i = 0; i < count; i++)
        fprintf(out, "%s%s", i ? " " : "", name(i));
}

static const char *kind_name(unsigned i)
{
    return proto_kind_name((enum proto_kind)i);
}

static const char *group_name(unsigned i)
{
    return proto_group_name((enum proto_group)i);
}

static const char *risk_name(unsigned i)
{
    return proto_risk_name((enum proto_risk)i);
}

static const char *vacancy_name(unsigned i)
{
    return proto_vacancy_name((enum proto_vacancy)i);
}

static void bash(FILE *out)
{
    size_t n;
    const struct cli_command *cmds = cli_commands(&n);
    const struct cli_option *opts = cli_options();
    char name[64];

    fputs("# bash completion for fristad(1). Generated from the client's command table by\n"
          "# client/gen_docs.c: the words and options here are the ones the client takes.\n"
          "\n"
          "_fristad()\n"
          "{\n"
          "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
          "    local valued=\"",
          out);
    bool first = true;
    for (int o = 0; o < O__COUNT; o++) {
        if (opts[o].metavar) {
            fprintf(out, "%s--%s", first ? "" : " ", opts[o].name);
            first = false;
        }
    }
    fputs("\"\n"
          "    case $prev in\n"
          "    --cert|--key|--p12|--ca|--config)\n"
          "        COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
          "    --kind) COMPREPLY=($(compgen -W \"",
          out);
    words(out, kind_name, KIND__COUNT);
    fputs("\" -- \"$cur\")); return ;;\n    --group) COMPREPLY=($(compgen -W \"", out);
    words(out, group_name, GROUP__COUNT);
    fputs("\" -- \"$cur\")); return ;;\n    --risk) COMPREPLY=($(compgen -W \"", out);
    words(out, risk_name, RISK__COUNT);
    fputs("\" -- \"$cur\")); return ;;\n"
          "    esac\n"
          "    if [[ \" $valued \" == *\" $prev \"* ]]; then\n"
          "        return\n"
          "    fi\n"
          "    # The words typed so far, without options and their values.\n"
          "    local -a pos=()\n"
          "    local i w\n"
          "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
          "        w=${COMP_WORDS[i]}\n"
          "        if [[ $w == -* ]]; then\n"
          "            [[ \" $valued \" == *\" $w \"* ]] && ((i++))\n"
          "            continue\n"
          "        fi\n"
          "        pos+=(\"$w\")\n"
          "    done\n"
          "    [[ ${pos[0]} == help ]] && pos=(\"${pos[@]:1}\")\n"
          "    local global=\"",
          out);
    for (int o = 0; o < O_FIRST_LOCAL; o++)
        fprintf(out, "%s--%s", o ? " " : "", opts[o].name);
    fputs("\"\n"
          "    local cmd=${pos[0]} args=$((${#pos[@]} - 1)) local_opts=\"\"\n"
          "    case \"${pos[0]} ${pos[1]}\" in\n",
          out);
    for (size_t i = 0; i < n; i++) {
        if (!cmds[i].word2)
            continue;
        fprintf(out, "    \"%s\") cmd=\"%s\"; args=$((${#pos[@]} - 2)) ;;\n",
                cli_command_name(&cmds[i], name, sizeof name), name);
    }
    fputs("    esac\n    case $cmd in\n", out);
    for (size_t i = 0; i < n; i++) {
        if (!cmds[i].allowed)
            continue;
        fprintf(out, "    \"%s\") local_opts=\"", cli_command_name(&cmds[i], name, sizeof name));
        first = true;
        for (int o = O_FIRST_LOCAL; o < O__COUNT; o++) {
            if (cmds[i].allowed & CLI_OPT_BIT(o)) {
                fprintf(out, "%s--%s", first ? "" : " ", opts[o].name);
                first = false;
            }
        }
        fputs("\" ;;\n", out);
    }
    fputs("    esac\n"
          "    if [[ $cur == -* ]]; then\n"
          "        COMPREPLY=($(compgen -W \"$global $local_opts\" -- \"$cur\"))\n"
          "        return\n"
          "    fi\n"
          "    if ((${#pos[@]} == 0)); then\n"
          "        COMPREPLY=($(compgen -W \"",
          out);
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            seen |= strcmp(cmds[k].word1, cmds[i].word1) == 0;
        if (!seen)
            fprintf(out, "%s ", cmds[i].word1);
    }
    fputs("help\" -- \"$cur\"))\n"
          "        return\n"
          "    fi\n"
          "    case $cmd in\n",
          out);
    /* After a first word that starts two-word commands: their second words. */
    for (size_t i = 0; i < n; i++) {
        bool earlier = false, second = false;
        for (size_t k = 0; k < n; k++) {
            earlier |= k < i && strcmp(cmds[k].word1, cmds[i].word1) == 0;
            second |= cmds[k].word2 && strcmp(cmds[k].word1, cmds[i].word1) == 0;
        }
        if (earlier || !second)
            continue;
        fprintf(out,
                "    %s)\n        if ((${#pos[@]} == 1)); then\n"
                "            COMPREPLY=($(compgen -W \"",
                cmds[i].word1);
        for (size_t k = 0; k < n; k++) {
            if (cmds[k].word2 && strcmp(cmds[k].word1, cmds[i].word1) == 0)
                fprintf(out, "%s ", cmds[k].word2);
        }
        fputs("\" -- \"$cur\"))\n            return\n        fi\n        ;;\n", out);
    }
    fputs("    esac\n    case $cmd in\n", out);
    /* A vacancy state where a command takes one. */
    for (size_t i = 0; i < n; i++) {
        for (unsigned a = 0; a < cmds[i].nargs; a++) {
            if (cmds[i].args[a].field != F_STATE)
                continue;
            fprintf(out,
                    "    \"%s\")\n        if ((args == %u)); then\n"
                    "            COMPREPLY=($(compgen -W \"",
                    cli_command_name(&cmds[i], name, sizeof name), a);
            words(out, vacancy_name, VAC__COUNT);
            fputs("\" -- \"$cur\"))\n        fi\n        ;;\n", out);
        }
    }
    fputs("    esac\n"
          "}\n"
          "complete -F _fristad fristad\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "man") == 0) {
        man(stdout, argv[2]);
    } else if (argc == 2 && strcmp(argv[1], "bash") == 0) {
        bash(stdout);
    } else {
        fputs("usage: gen_docs man VERSION | gen_docs bash\n", stderr);
        return 2;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
