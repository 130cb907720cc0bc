/*
 * The command and option tables, and every text made from them: synopses, the usage text and
 * the help of one command. The words, option names and positional order are what people
 * script against, so they do not change; the texts around them may.
 *
 * Summaries are lower-case phrases, as they stand beside a synopsis in the usage text; a
 * command's own help prints its summary as a sentence.
 */
#include <ctype.h>
#include <string.h>

#include "commands.h"

static const struct cli_option options[O__COUNT] = {
    [O_JSON] = {"json", NULL, F__COUNT,
                "print exactly one JSON document: the result, or "
                "{\"error\": {\"code\": ..., \"message\": ...}}"},
    [O_CSV] = {"csv", NULL, F__COUNT,
               "with followup (or stats): the follow-up as CSV, one line a month, suppressed "
               "cells as in the table"},
    [O_SERVER] = {"server", "HOST:PORT", F__COUNT, "the fristadd server (port 7420 if left out)"},
    [O_CERT] = {"cert", "FILE", F__COUNT, "client certificate (PEM)"},
    [O_KEY] = {"key", "FILE", F__COUNT, "its private key (PEM, without a passphrase)"},
    [O_P12] = {"p12", "FILE", F__COUNT,
               "certificate and key in one PKCS#12 file, instead of --cert and --key; its "
               "passphrase from FRISTAD_P12_PASS or a prompt"},
    [O_CA] = {"ca", "FILE", F__COUNT, "CA certificate(s) the server's certificate must chain to"},
    [O_CONFIG] = {"config", "FILE", F__COUNT, "config file to read settings from"},
    [O_SERVERNAME] = {"servername", "NAME", F__COUNT,
                      "name to check in the server's certificate (default: HOST)"},
    [O_TIMEOUT] = {"timeout", "SECONDS", F__COUNT, "give up after this long (default 15)"},
    [O_HELP] = {"help", NULL, F__COUNT,
                "this text (also -h); after a command, that command's help"},
    [O_VERSION] = {"version", NULL, F__COUNT, "the client's and protocol's version"},
    [O_COUNTY] = {"county", "COUNTY", F_COUNTY,
                  "only this county, by name or code: \"Västra Götaland\" or 14"},
    [O_NAME] = {"name", "NAME", F_NAME,
                "the shelter's name as people know it, at most 100 characters"},
    [O_KIND] = {"kind", "KIND", F_KIND, "kvinnojour, skyddat_boende, kriscentrum or other"},
    [O_MUNICIPALITY] = {"municipality", "MUNICIPALITY", F_MUNICIPALITY,
                        "a municipality, by name or code: Uppsala or 0380"},
    [O_PROTECTION] = {"protection", "1|2|3", F_PROTECTION,
                      "protection level: 1 basic, 2 enhanced, 3 high security"},
    [O_PHONE] = {"phone", "PHONE", F_PHONE,
                 "the intake phone line: digits, spaces, dashes and a leading +"},
    [O_GROUPS] = {"groups", "women,men,hbtqi,youth", F_GROUPS,
                  "the groups the shelter takes (default women)"},
    [O_MAX_CHILDREN] = {"max-children", "N", F_MAX_CHILDREN,
                        "the most children it takes with one household (default: no limit)"},
    [O_BOYS_MAX_AGE] = {"boys-max-age", "N", F_BOYS_MAX_AGE,
                        "a boy older than this is not taken (default: no limit)"},
    [O_LANGUAGES] = {"languages", "sv,en,ar", F_LANGUAGES,
                     "the languages the staff speak, as ISO 639 codes"},
    [O_BEDS] = {"beds", "N", F_BEDS, "beds in the unit, 1 to 30"},
    [O_ACCESSIBLE] = {"accessible", NULL, F_ACCESSIBLE, "the unit is wheelchair accessible"},
    [O_NOT_ACCESSIBLE] = {"not-accessible", NULL, F_ACCESSIBLE,
                          "the unit is not wheelchair accessible", .negative = true},
    [O_FROM] = {"from", "MUNICIPALITY", F_HOME,
                "the household's home municipality, by name or code: Stockholm or 0180"},
    [O_RISK] = {"risk", "low|moderate|high|severe", F_RISK,
                "the assessed risk: it decides which municipalities and protection levels are "
                "ruled out"},
    [O_ADULTS] = {"adults", "N", F_ADULTS, "adults in the household (default 1)"},
    [O_CHILD] = {"child", "AGE{m|f}", F_CHILDREN,
                 "a child: 14m is a boy of 14, 3f a girl of 3; give one per child", .repeat = true},
    [O_GROUP] = {"group", "women|men|hbtqi|youth", F_GROUP,
                 "the household's target group (default women)"},
    [O_WHEELCHAIR] = {"wheelchair", NULL, F_WHEELCHAIR,
                      "the household needs a wheelchair-accessible unit"},
    [O_PETS] = {"pets", NULL, F_PETS,
                "the shelter takes pets; in a search, the household brings pets"},
    [O_NO_PETS] = {"no-pets", NULL, F_PETS, "the shelter takes no pets", .negative = true},
    [O_SUBSTANCE] =
        {"substance", NULL, F_SUBSTANCE,
         "the shelter gives substance-use support; in a search, the household needs it"},
    [O_NO_SUBSTANCE] = {"no-substance", NULL, F_SUBSTANCE,
                        "the shelter gives no substance-use support", .negative = true},
    [O_LANGUAGE] = {"language", "LANG", F_LANGUAGE,
                    "a language the household needs, as an ISO 639 code"},
    [O_PERPETRATOR_IN] = {"perpetrator-in", "MUNICIPALITY", F_PERPETRATOR,
                          "a municipality where the perpetrator lives or works, by name or "
                          "code; repeat or separate with commas",
                          .repeat = true},
    [O_EXCLUDE] = {"exclude", "MUNICIPALITY", F_EXCLUDE,
                   "a further municipality to rule out, by name or code; repeat or separate "
                   "with commas",
                   .repeat = true},
    [O_REF] = {"ref", "REF", F_REF,
               "the referral's reference in the case system, never a name or personal number"},
    [O_IDEMPOTENCY_KEY] = {"idempotency-key", "KEY", F_IDEMPOTENCY_KEY,
                           "8 to 64 characters; a retry with the same key gets the first hold"},
    [O_FOR] = {"for", "MUNICIPALITY", F_MUNICIPALITY,
               "hold on behalf of this municipality, by name or code (the on-call service: one "
               "of its agreement)"},
    [O_REASON] = {"reason", "CODE", F_REASON,
                  "why: no_room (the unit is in fact not free), household (its composition), "
                  "needs (a need cannot be met), safety, staffing or other"},
    [O_NOTE] = {"note", "TEXT", F_NOTE,
                "more about it, in at most 200 characters; never a name or personal number"},
    [O_CALLBACK] = {"callback", "PHONE", F_CALLBACK,
                    "your direct line, for the shelter to call back: a number, never a name"},
    [O_ARRIVAL_BY] = {"arrival-by", "TIME", F_ARRIVAL_BY,
                      "the household arrives by then, at most 24 hours ahead (default: the "
                      "server's arrival time, 6 hours): HH:MM, +90m, +2h, or an ISO 8601 time"},
    [O_ARRIVAL_AT] = {"arrival-at", "TIME", F_ARRIVAL_AT,
                      "plan for an arrival then, not now: HH:MM, +90m, +2h, or an ISO 8601 time"},
    [O_INTAKE_HOURS] = {"intake-hours", "HOURS", F_INTAKE_HOURS,
                        "when the shelter can receive, Swedish local time: 24/7 (the default) or "
                        "ranges such as 'mon-fri 08:00-16:30,sat 10:00-14:00'"},
    [O_SINCE] = {"since", "TIME", F_SINCE,
                 "entries from TIME on: 2026-11-22 or 2026-11-22T10:00 in local time (as the "
                 "tables show it), 2026-11-22T10:00:00Z or +01:00, an age such as 30m, 2h or "
                 "7d, or milliseconds since 1970"},
    [O_PRINCIPAL] = {"principal", "ROLE:ID", F_PRINCIPAL,
                     "only entries by this principal, such as social:0180"},
    [O_PERSON] = {"person", "ID", F_PERSON,
                  "only entries by this person: the HSA-id of the certificate, or "
                  "sha256:FINGERPRINT for a certificate that names no person"},
    [O_SHELTER] = {"shelter", "ID", F_SHELTER, "only entries about this shelter"},
    [O_LIMIT] = {"limit", "N", F_LIMIT, "at most N results (default 20 for search, 100 for audit)"},
    [O_STANDING] = {"standing", NULL, F__COUNT,
                    "with search: register it as a standing search instead (needs --ref)"},
    [O_HOURS] = {"hours", "N", F_HOURS, "how long it stands, 1 to 72 hours (default 12)"},
    [O_TYPE] = {"type", "TYPE", F_TYPES,
                "only events of this type (held, accepted, declined, released, expired, "
                "escalated, confirmed, discharged, vacancy, paused, resumed, match, standing); "
                "repeat for more",
                .repeat = true},
    [O_COMPETENCES] = {"competences", "COMPETENCE,...", F_COMPETENCES,
                       "the shelter's specialist competences: hbv (honour-related violence), "
                       "psychiatric, npf (neuropsychiatric), intellectual_disability, deaf (sign "
                       "language), interpreter (arranged); '' for none"},
    [O_OPERATOR] = {"operator", "ideell|privat|kommunal", F_OPERATOR,
                    "who runs the shelter: a non-profit, a company or the municipality"},
    [O_IVO_PERMIT] = {"ivo-permit", "ID", F_IVO_PERMIT,
                      "the IVO permit of a non-profit's or company's protected housing, with "
                      "--ivo-permit-date"},
    [O_NO_IVO_PERMIT] = {"no-ivo-permit", NULL, F_IVO_PERMIT,
                         "the shelter has no IVO permit (any recorded one is removed)"},
    [O_IVO_PERMIT_DATE] = {"ivo-permit-date", "YYYY-MM-DD", F_IVO_PERMIT_DATE,
                           "when IVO granted the permit"},
    [O_IVO_REGISTERED] = {"ivo-registered", NULL, F_IVO_REGISTERED,
                          "the municipality's own protected housing is registered with IVO"},
    [O_NO_IVO_REGISTERED] = {"no-ivo-registered", NULL, F_IVO_REGISTERED,
                             "it is not registered with IVO", .negative = true},
    [O_NEED] = {"need", "COMPETENCE", F_NEED,
                "a specialist competence the household needs (see --competences of 'shelter "
                "add'); repeat or separate with commas",
                .repeat = true},
    [O_CHILD_BASIS] = {"child-basis", "sol|lag_2024_79|lvu", F_CHILD_BASIS,
                       "the basis of the decision for a child: one per child, in the order of the "
                       "referral's children (default sol)",
                       .repeat = true},
    [O_FROM_MONTH] = {"from", "MONTH", F_FROM_MONTH,
                      "the first month, YYYY-MM in Swedish time (default: 11 months before --to)"},
    [O_TO_MONTH] = {"to", "MONTH", F_TO_MONTH,
                    "the last month, YYYY-MM (default: the latest reported, the month before "
                    "this one once its first day has passed)"},
};

#define OB(o) CLI_OPT_BIT(O_##o)
#define SHELTER_OPTS                                                                               \
    (OB(NAME) | OB(KIND) | OB(MUNICIPALITY) | OB(PROTECTION) | OB(PHONE) | OB(GROUPS) |            \
     OB(MAX_CHILDREN) | OB(BOYS_MAX_AGE) | OB(PETS) | OB(SUBSTANCE) | OB(LANGUAGES) |              \
     OB(INTAKE_HOURS) | OB(COMPETENCES) | OB(OPERATOR) | OB(IVO_PERMIT) | OB(IVO_PERMIT_DATE) |    \
     OB(IVO_REGISTERED))
#define AREA_OPTS (OB(COUNTY) | OB(MUNICIPALITY))
#define SEARCH_OPTS                                                                                \
    (OB(FROM) | OB(RISK) | OB(ADULTS) | OB(CHILD) | OB(GROUP) | OB(WHEELCHAIR) | OB(PETS) |        \
     OB(SUBSTANCE) | OB(LANGUAGE) | OB(PERPETRATOR_IN) | OB(EXCLUDE) | OB(LIMIT) |                 \
     OB(ARRIVAL_AT) | OB(NEED))

#define REGISTRY  CLI_SECTION_REGISTRY
#define VACANCIES CLI_SECTION_VACANCIES
#define LISTINGS  CLI_SECTION_LISTINGS
#define REFERRALS CLI_SECTION_REFERRALS
#define ADMIN     CLI_SECTION_ADMIN

#define ID_PREFIX                                                                                  \
    "Any start of the id that is unique among the ones you may see is enough, such as h3f9c."

/*
 * One entry per command, laid out by hand: the table is the interface people script against.
 * Within a section the usage text keeps this order; "'shelter' needs one of" follows it too.
 */
/* clang-format off */
static const struct cli_command commands[] = {
    {"shelter", "add", 1, {{F_SHELTER, "ID"}}, OP_SHELTER_ADD, REGISTRY,
     "register a shelter",
     "The intake phone is given only to the admin, to the shelter itself and to whoever holds "
     "one of its units. Protected housing (skyddat_boende) is offered only once its operator is "
     "recorded and, for a non-profit or a company, its IVO permit (--ivo-permit with "
     "--ivo-permit-date), for a municipality --ivo-registered. The permit is shown to the admin, "
     "the shelter itself and social services, never to other shelters.",
     SHELTER_OPTS, OB(NAME) | OB(KIND) | OB(MUNICIPALITY) | OB(PROTECTION) | OB(PHONE), false, false},
    {"shelter", "update", 1, {{F_SHELTER, "ID"}}, OP_SHELTER_UPDATE, REGISTRY,
     "change a shelter's details",
     "Give at least one option. A limit once set is changed, not removed: --max-children 20 "
     "and --boys-max-age 17 take every household.",
     SHELTER_OPTS | OB(NO_PETS) | OB(NO_SUBSTANCE) | OB(NO_IVO_PERMIT) | OB(NO_IVO_REGISTERED), 0,
     true, false},
    {"shelter", "retire", 1, {{F_SHELTER, "ID"}}, OP_SHELTER_RETIRE, REGISTRY,
     "retire a shelter: it is no longer listed or offered",
     "Refused while the shelter has open holds or active placements.", 0, 0, false, false},
    {"shelter", "show", 1, {{F_SHELTER, "ID"}}, OP_SHELTER_SHOW, LISTINGS,
     "a shelter's details and units",
     "The intake phone is shown to the admin and to the shelter itself.", 0, 0, false, false},
    {"shelter", "list", 0, {{0}}, OP_SHELTER_LIST, LISTINGS,
     "the shelters, with free and all units", NULL, AREA_OPTS, 0, false, false},
    {"unit", "add", 2, {{F_SHELTER, "SHELTER"}, {F_UNIT, "UNIT"}}, OP_UNIT_ADD, REGISTRY,
     "add a unit to a shelter",
     "The unit starts closed; the shelter offers it by setting its vacancy to free.",
     OB(BEDS) | OB(ACCESSIBLE), OB(BEDS), false, false},
    {"unit", "update", 2, {{F_SHELTER, "SHELTER"}, {F_UNIT, "UNIT"}}, OP_UNIT_UPDATE, REGISTRY,
     "change a unit's beds or access", NULL,
     OB(BEDS) | OB(ACCESSIBLE) | OB(NOT_ACCESSIBLE), 0, true, false},
    {"unit", "remove", 2, {{F_SHELTER, "SHELTER"}, {F_UNIT, "UNIT"}}, OP_UNIT_REMOVE, REGISTRY,
     "remove a unit",
     "Refused while the unit is held or has an active placement.", 0, 0, false, false},
    {"vacancy", NULL, 3,
     {{F_SHELTER, "SHELTER"}, {F_UNIT, "UNIT"}, {F_STATE, "free|occupied|closed"}},
     OP_VACANCY_SET, VACANCIES,
     "set a unit's vacancy",
     "A held unit, or one with an active placement, changes by confirm, decline, release or "
     "discharge instead.", 0, 0, false, false},
    {"vacancy", "confirm", 1, {{F_SHELTER, "SHELTER"}}, OP_VACANCY_CONFIRM, VACANCIES,
     "the vacancies are unchanged and current",
     "A shelter that nobody has updated or confirmed for the server's stale time (24 hours by "
     "default) is marked stale and ranked after fresh ones.", 0, 0, false, false},
    {"intake", "pause", 1, {{F_SHELTER, "SHELTER"}}, OP_INTAKE_PAUSE, VACANCIES,
     "offer nothing until intake resumes",
     "For a night without enough staff: searches skip the shelter and its units cannot be "
     "held.", 0, 0, false, false},
    {"intake", "resume", 1, {{F_SHELTER, "SHELTER"}}, OP_INTAKE_RESUME, VACANCIES,
     "offer the free units again", NULL, 0, 0, false, false},
    {"free", NULL, 0, {{0}}, OP_FREE, LISTINGS,
     "the free units, of shelters with intake open", NULL, AREA_OPTS, 0, false, false},
    {"municipality", NULL, 1, {{F__COUNT, "TEXT"}}, CLI_LOCAL, LISTINGS,
     "look a municipality up by name or code",
     "Names match without regard to case or accents, and a start of a name is enough: every "
     "municipality TEXT may mean is listed with its code and county. A county's name lists "
     "its municipalities. Asks nothing of the server.", 0, 0, false, false},
    {"search", NULL, 0, {{0}}, OP_SEARCH, REFERRALS,
     "free units the safety policy allows for a household, best first",
     "The risk decides which municipalities are ruled out (the household's own and the "
     "perpetrator's, their neighbours, or their counties) and the lowest protection level "
     "accepted. Results come fresh before stale, then those who can receive at the arrival "
     "time, then nearest first, then the smallest unit that fits. When nothing fits, the reply "
     "counts the free units each reason ruled out. The search and its results are remembered "
     "for 30 minutes (no reference in them), for 'fristad hold N --ref REF'. With --standing "
     "--ref REF [--hours N] the search is registered as a standing search instead (see "
     "'standing add'): a match event comes when a fitting bed frees up.",
     SEARCH_OPTS, OB(FROM) | OB(RISK), false, false},
    {"hold", NULL, 2, {{F_SHELTER, "SHELTER"}, {F_UNIT, "UNIT"}}, OP_HOLD, REFERRALS,
     "hold a free unit for a referral; the reply has the intake phone",
     "The hold carries the referral, and the server checks the unit against it as the search "
     "does: a unit the safety policy or the household rules out is refused (ineligible). "
     "'fristad hold N --ref REF' holds result N of your last search with its referral. The "
     "shelter sees the household and your callback number, never where it lives. The hold "
     "expires after the server's hold time (60 minutes by default) unless the shelter accepts "
     "it. On-call holds for --for CODE, or else for the household's home municipality. A "
     "retried hold with the same --idempotency-key returns the first hold instead of making a "
     "second. --child-basis, once per child, gives the basis of each child's decision with the "
     "hold (the shelter may give it at confirmation instead).",
     OB(REF) | OB(CALLBACK) | OB(IDEMPOTENCY_KEY) | OB(FOR) | CLI_REFERRAL_OPTS | OB(CHILD_BASIS),
     OB(REF) | OB(FROM) | OB(RISK), false, true},
    {"accept", NULL, 1, {{F_HOLD, "HOLD"}}, OP_HOLD_ACCEPT, VACANCIES,
     "say yes to a hold: the household may come",
     "The hold then lasts until the household arrives: --arrival-by, or the server's arrival "
     "time (6 hours by default). Confirm the arrival when it comes.",
     OB(ARRIVAL_BY), 0, false, false},
    {"release", NULL, 1, {{F_HOLD, "HOLD"}}, OP_HOLD_RELEASE, REFERRALS,
     "release a hold; the unit is free again", ID_PREFIX, 0, 0, false, false},
    {"confirm", NULL, 1, {{F_HOLD, "HOLD"}}, OP_HOLD_CONFIRM, VACANCIES,
     "the household has arrived: a placement",
     "From a hold that is held or accepted. Each accompanying child is a decision of its own: "
     "give --child-basis once per child, in the order of the referral's children, as the "
     "responsible municipality decided; without it the bases given with the hold count, and "
     "without those sol. " ID_PREFIX,
     OB(CHILD_BASIS), 0, false, false},
    {"decline", NULL, 1, {{F_HOLD, "HOLD"}}, OP_HOLD_DECLINE, VACANCIES,
     "turn a hold down, with a reason code; the unit is free again",
     "The code is counted for follow-up; the note, like the referral's reference, is deleted "
     "after the server's reference retention. " ID_PREFIX,
     OB(REASON) | OB(NOTE), OB(REASON), false, false},
    {"discharge", NULL, 1, {{F_PLACEMENT, "PLACEMENT"}}, OP_PLACEMENT_DISCHARGE, VACANCIES,
     "the household has left; the unit is free again", ID_PREFIX, 0, 0, false, false},
    {"holds", NULL, 0, {{0}}, OP_HOLDS_LIST, REFERRALS,
     "the holds you may see, newest first",
     "A shelter sees the holds on its units, social services those made for their "
     "municipality, the on-call service those made for the municipalities of its agreement.",
     0, 0, false, false},
    {"placements", NULL, 0, {{0}}, OP_PLACEMENTS_LIST, REFERRALS,
     "the placements you may see, newest first", NULL, 0, 0, false, false},
    {"audit", NULL, 0, {{0}}, OP_AUDIT, ADMIN,
     "the audit trail, newest first",
     "Every write, every hold and every disclosure of an intake phone is recorded, and so are "
     "refused attempts. The server returns the first --limit entries from --since on; they are "
     "shown newest first.",
     OB(SINCE) | OB(PRINCIPAL) | OB(PERSON) | OB(SHELTER) | OB(LIMIT), 0, false, false},
    {"stats", NULL, 0, {{0}}, OP_STATS, ADMIN,
     "searches, no-match reasons, holds and placements by outcome",
     "The operator's running counters since the start, for scripts and monitoring; not for "
     "publication. With any of --municipality, --county, --from, --to or --csv it is "
     "'followup'.", 0, 0, false, false},
    {"followup", NULL, 0, {{0}}, OP_FOLLOWUP, ADMIN,
     "follow-up by month: searches, holds, placements, nights, children by age",
     "For systematic follow-up: per month (Swedish time) and responsible municipality, the "
     "searches and those that found nothing (by reason), holds, acceptances, declines (by "
     "code), expiries, placements, discharges, the median minutes from hold to acceptance and "
     "to arrival, children placed by age (0-6, 7-12, 13-17) and the nights of the placements "
     "that ended. Counts only, never people: a cell below 3 shows as <3 (a median or nights: "
     "fewer than 3 cases behind it), and a county cell that would let a smaller one be "
     "computed back shows as x. Only months that have ended are shown, each on its own, "
     "without totals. Social services see their own municipality (the default), on-call and "
     "the admin the municipality or county they name. With --csv: one line a month, for a "
     "spreadsheet.",
     AREA_OPTS | OB(FROM_MONTH) | OB(TO_MONTH), 0, false, false},
    {"export", "hsds", 0, {{0}}, OP_DIRECTORY, ADMIN,
     "the directory as Open Referral HSDS 3.0, for a public page",
     "Writes one JSON document: an HSDS page of services, each with its organization and its "
     "municipality as the only location. No address, no unit beyond counts, nothing of "
     "vacancies, and no intake phone of protected housing or of a shelter with protection 3 "
     "(the phones it does give are audited as disclosed). Redirect it to a file to publish.",
     0, 0, false, false},
    {"standing", "add", 0, {{0}}, OP_STANDING_ADD, REFERRALS,
     "when nothing fits: be told when a fitting bed frees up",
     "Registers the referral for --hours (12 by default, at most 72). Whenever a unit becomes "
     "free, a shelter resumes intake or changes what it takes, the server checks the standing "
     "searches it can matter to and sends a match event (see watch) to whoever registered "
     "it; it never holds by itself. 'fristad search ... --standing --ref REF' does the same.",
     CLI_REFERRAL_OPTS | OB(REF) | OB(HOURS) | OB(FOR),
     OB(FROM) | OB(RISK) | OB(REF), false, false},
    {"standing", "list", 0, {{0}}, OP_STANDING_LIST, REFERRALS,
     "your standing searches", NULL, 0, 0, false, false},
    {"standing", "cancel", 1, {{F_STANDING, "ID"}}, OP_STANDING_CANCEL, REFERRALS,
     "end a standing search", NULL, 0, 0, false, false},
    {"watch", NULL, 0, {{0}}, OP_WATCH, LISTINGS,
     "follow events as they happen, one line each",
     "Shows the events you may see: holds on your units (shelter), holds and standing "
     "searches of your municipality (social services), of the municipalities you act for "
     "(on-call), everything (admin). Runs until interrupted; reconnects by itself and "
     "resumes after the last event it printed, so nothing is missed or shown twice. --since "
     "starts from a time or an event's sequence.",
     AREA_OPTS | OB(TYPE) | OB(SINCE), 0, false, false},
    {"whoami", NULL, 0, {{0}}, OP_WHOAMI, ADMIN,
     "the role and id your certificate gives you", NULL, 0, 0, false, false},
};
/* clang-format on */

#define N_COMMANDS (sizeof commands / sizeof commands[0])

_Static_assert(N_COMMANDS <= 64, "help topics are a 64-bit mask of commands");

static const char *const section_titles[CLI_SECTION__COUNT] = {
    [CLI_SECTION_REGISTRY] = "Registry (admin)",
    [CLI_SECTION_VACANCIES] = "Vacancies (shelter staff)",
    [CLI_SECTION_LISTINGS] = "Listings (everyone)",
    [CLI_SECTION_REFERRALS] = "Referrals (social services)",
    [CLI_SECTION_ADMIN] = "Administration",
};

#define SUMMARY_COL 32u /* where a summary starts beside a short synopsis */
#define HANG        6u  /* indent of a synopsis' continuation lines and of a summary below it */
#define OPTION_MAX  24u /* an option with a longer value than this has its help below it */
#define USAGE       "Usage: fristad "
#define USAGE_COL   ((unsigned)sizeof USAGE - 1)

const char *const cli_settings_text =
    "Settings are taken from the flags, else the environment (FRISTAD_SERVER, FRISTAD_CERT, "
    "FRISTAD_KEY, FRISTAD_P12, FRISTAD_CA), else the [client] section (server, cert, key, p12, "
    "ca, servername) of the config file: --config FILE, else $FRISTAD_CONFIG, else "
    "$XDG_CONFIG_HOME/fristad/client.conf (~/.config/fristad/client.conf). Relative paths in "
    "the file are relative to its directory. The passphrase of a PKCS#12 file comes from "
    "FRISTAD_P12_PASS, else from a prompt on the terminal. A hold, confirm or discharge whose "
    "outcome is unknown (the answer was lost) is sent again, unchanged, until the server gives "
    "a definite answer, for up to 20 s (retry_for in [client], or $FRISTAD_RETRY_FOR; 0 turns "
    "it off).";

const char *const cli_exit_text =
    "0 success; 1 refused with an error code by the server, or a value that looks like "
    "personal data; 2 usage error: an unknown command or option, or a value its rules refuse; "
    "3 connection, TLS, timeout or protocol failure.";

const struct cli_command *cli_commands(size_t *n)
{
    *n = N_COMMANDS;
    return commands;
}

const struct cli_option *cli_options(void)
{
    return options;
}

const char *cli_command_name(const struct cli_command *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s%s", c->word1, c->word2 ? " " : "", c->word2 ? c->word2 : "");
    return buf;
}

/* ---- text ------------------------------------------------------------------------------- */

/*
 * Where words go: a buffer on one line, or a stream wrapped at CLI_WIDTH. A word is the unit
 * that is never broken: "[--child AGE{m|f}]..." or "--name NAME" as much as "household".
 */
struct text {
    FILE *out;      /* NULL: into buf */
    char *buf;      /* cap bytes, always NUL-terminated */
    size_t cap;     /* 0 only measures */
    size_t len;     /* what the buffer would hold without a cap */
    unsigned col;   /* column of the stream */
    unsigned hang;  /* indent of continuation lines */
    unsigned words; /* words so far */
    unsigned lines; /* line breaks so far */
};

static struct text text_stream(FILE *out, unsigned col, unsigned hang)
{
    return (struct text){.out = out, .col = col, .hang = hang};
}

static struct text text_buffer(char *buf, size_t cap)
{
    if (cap > 0)
        buf[0] = '\0';
    return (struct text){.buf = buf, .cap = cap};
}

static void text_word(struct text *t, const char *w)
{
    size_t n = strlen(w);
    if (!t->out) {
        if (t->len < t->cap)
            snprintf(t->buf + t->len, t->cap - t->len, "%s%s", t->words ? " " : "", w);
        t->len += n + (t->words ? 1 : 0);
    } else if (t->words > 0 && t->col + 1 + n > CLI_WIDTH) {
        fprintf(t->out, "\n%*s%s", (int)t->hang, "", w);
        t->col = t->hang + (unsigned)n;
        t->lines++;
    } else {
        fprintf(t->out, "%s%s", t->words ? " " : "", w);
        t->col += (unsigned)n + (t->words ? 1 : 0);
    }
    t->words++;
}

/* Every blank-separated word of s, as if each were given to text_word. */
static void text_words(struct text *t, const char *s)
{
    char w[CLI_WIDTH + 1];
    while (*s) {
        size_t n = strcspn(s, " ");
        if (n > 0) {
            snprintf(w, sizeof w, "%.*s", (int)n, s);
            text_word(t, w);
        }
        s += n;
        s += strspn(s, " ");
    }
}

/* Ends the stream's line. */
static void text_end(struct text *t)
{
    if (t->out)
        fputc('\n', t->out);
}

/* "--beds N", "[--pets|--no-pets]", "[--child AGE{m|f}]..." */
static void option_word(char *buf, size_t cap, enum cli_opt o, cli_optmask allowed, bool required)
{
    const struct cli_option *opt = &options[o];
    bool with_negative =
        o + 1 < O__COUNT && options[o + 1].negative && (allowed & CLI_OPT_BIT(o + 1));
    snprintf(buf, cap, "%s--%s%s%s%s%s%s%s", required ? "" : "[", opt->name,
             opt->metavar ? " " : "", opt->metavar ? opt->metavar : "", with_negative ? "|--" : "",
             with_negative ? options[o + 1].name : "", required ? "" : "]",
             opt->repeat ? "..." : "");
}

/* What a synopsis shows of a command's options. */
enum shown {
    SHOW_ALL,      /* every option, the optional ones in brackets */
    SHOW_REQUIRED, /* the required ones */
    SHOW_CHANGE,   /* OPTION..., for a command that needs one of many */
    SHOW_ANY,      /* [OPTION]... */
};

static void synopsis(struct text *t, const struct cli_command *c, enum shown shown)
{
    char w[CLI_WIDTH];
    text_word(t, c->word1);
    if (c->word2)
        text_word(t, c->word2);
    for (unsigned i = 0; i < c->nargs; i++)
        text_word(t, c->args[i].metavar);
    for (int o = O_FIRST_LOCAL; o < O__COUNT; o++) {
        bool required = (c->required & CLI_OPT_BIT(o)) != 0;
        if (!(c->allowed & CLI_OPT_BIT(o)) ||
            (options[o].negative && o > 0 && (c->allowed & CLI_OPT_BIT(o - 1))))
            continue;
        if (required || shown == SHOW_ALL) {
            option_word(w, sizeof w, (enum cli_opt)o, c->allowed, required);
            text_word(t, w);
        }
    }
    if (shown == SHOW_CHANGE)
        text_word(t, "OPTION...");
    else if (shown == SHOW_ANY)
        text_word(t, "[OPTION]...");
}

const char *cli_synopsis(const struct cli_command *c, char *buf, size_t cap)
{
    struct text t = text_buffer(buf, cap);
    enum shown shown = SHOW_REQUIRED;
    if (c->required == 0 && c->allowed != 0) {
        struct text measure = text_buffer(NULL, 0);
        synopsis(&measure, c, SHOW_ALL);
        shown = measure.len <= CLI_WIDTH - 2 ? SHOW_ALL : c->needs_change ? SHOW_CHANGE : SHOW_ANY;
    }
    synopsis(&t, c, shown);
    return buf;
}

/* A summary as a sentence: capital first letter, full stop. */
static void sentence(struct text *t, const char *s)
{
    char buf[2 * CLI_WIDTH];
    snprintf(buf, sizeof buf, "%s.", s);
    buf[0] = (char)toupper((unsigned char)buf[0]);
    text_words(t, buf);
}

/* "--beds N"; returns its length. */
static unsigned option_with_value(char *buf, size_t cap, int o)
{
    int n = snprintf(buf, cap, "--%s%s%s", options[o].name, options[o].metavar ? " " : "",
                     options[o].metavar ? options[o].metavar : "");
    return n > 0 ? (unsigned)n : 0;
}

/*
 * One line per option: its name and value, and its help in a column as wide as the longest
 * of them, up to OPTION_MAX; a longer one has its help on the next line.
 */
static void option_lines(FILE *out, cli_optmask which, cli_optmask required)
{
    unsigned width = 0;
    char w[CLI_WIDTH];
    for (int o = 0; o < O__COUNT; o++) {
        unsigned n = option_with_value(w, sizeof w, o);
        if ((which & CLI_OPT_BIT(o)) && n > width)
            width = n;
    }
    unsigned col = 2 + (width < OPTION_MAX ? width : OPTION_MAX) + 2;
    for (int o = 0; o < O__COUNT; o++) {
        if (!(which & CLI_OPT_BIT(o)))
            continue;
        unsigned n = option_with_value(w, sizeof w, o);
        if (2 + n + 2 <= col)
            fprintf(out, "  %s%*s", w, (int)(col - 2 - n), "");
        else
            fprintf(out, "  %s\n%*s", w, (int)col, "");
        struct text t = text_stream(out, col, col);
        text_words(&t, options[o].help);
        if (required & CLI_OPT_BIT(o))
            text_word(&t, "(required)");
        text_end(&t);
    }
}

/* Ends a synopsis of the usage text with its summary: beside it if there is room, else below. */
static void summary_after(FILE *out, const struct text *syn, const char *summary)
{
    struct text t;
    if (syn->lines == 0 && syn->col + 2 <= SUMMARY_COL &&
        SUMMARY_COL + strlen(summary) <= CLI_WIDTH) {
        fprintf(out, "%*s", (int)(SUMMARY_COL - syn->col), "");
        t = text_stream(out, SUMMARY_COL, HANG);
    } else {
        fprintf(out, "\n%*s", (int)HANG, "");
        t = text_stream(out, HANG, HANG);
    }
    text_words(&t, summary);
    text_end(&t);
}

void cli_usage(FILE *out)
{
    fputs("Usage: fristad [OPTION]... COMMAND [ARGUMENT]... [OPTION]...\n"
          "\n"
          "Shelter bed availability and referrals: each command sends one request to fristadd.\n",
          out);
    struct text t;
    for (int s = 0; s < CLI_SECTION__COUNT; s++) {
        fprintf(out, "\n%s:\n", section_titles[s]);
        for (size_t i = 0; i < N_COMMANDS; i++) {
            if (commands[i].section != (enum cli_section)s)
                continue;
            t = text_stream(out, 2, HANG);
            fputs("  ", out);
            synopsis(&t, &commands[i], SHOW_ALL);
            summary_after(out, &t, commands[i].summary);
        }
    }
    /* help asks nothing of the server, so it has no row; it closes the last section. */
    t = text_stream(out, 2, HANG);
    fputs("  ", out);
    text_words(&t, "help [COMMAND]");
    summary_after(out, &t, "this text, or a command's options and what they do");
    fputs("\nOptions:\n", out);
    cli_optmask global = 0;
    for (int o = 0; o < O_FIRST_LOCAL; o++)
        global |= CLI_OPT_BIT(o);
    option_lines(out, global, 0);
    fputc('\n', out);
    struct text p = text_stream(out, 0, 0);
    text_words(&p, cli_settings_text);
    text_end(&p);
    fputc('\n', out);
    p = text_stream(out, 0, 0);
    text_words(&p, "Exit status:");
    text_words(&p, cli_exit_text);
    text_end(&p);
}

void cli_help(FILE *out, uint64_t which)
{
    if (which == 0) {
        cli_usage(out);
        return;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const struct cli_command *c = &commands[i];
        if (!(which & (UINT64_C(1) << i)))
            continue;
        struct text t = text_stream(out, USAGE_COL, USAGE_COL);
        fputs(USAGE, out);
        synopsis(&t, c, SHOW_ALL);
        text_end(&t);
        fputc('\n', out);
        t = text_stream(out, 0, 0);
        sentence(&t, c->summary);
        if (c->description)
            text_words(&t, c->description);
        text_end(&t);
        if (c->allowed) {
            fputs("\nOptions:\n", out);
            option_lines(out, c->allowed, c->required);
        }
        fputc('\n', out);
    }
    char global[CLI_WIDTH * 2] = "";
    for (int o = 0; o < O_FIRST_LOCAL; o++) {
        if (o != O_HELP && o != O_VERSION)
            snprintf(global + strlen(global), sizeof global - strlen(global), "%s--%s",
                     global[0] ? ", " : "", options[o].name);
    }
    char line[CLI_WIDTH * 3];
    snprintf(line, sizeof line,
             "The global options (%s) apply to every command; 'fristad --help' lists all "
             "commands.",
             global);
    struct text t = text_stream(out, 0, 0);
    text_words(&t, line);
    text_end(&t);
}

const char *cli_section_title(enum cli_section s)
{
    return (unsigned)s < CLI_SECTION__COUNT ? section_titles[s] : "";
}

const char *cli_synopsis_full(const struct cli_command *c, char *buf, size_t cap)
{
    struct text t = text_buffer(buf, cap);
    synopsis(&t, c, SHOW_ALL);
    return buf;
}
