/*
 * Fristad wire protocol: framing, request validation, reply encoding, error codes.
 *
 * This is the public surface of libfristad-proto, shared by the daemon (fristadd), the client
 * (fristad), the fuzzers and any third-party C client. It depends on msgpack-c and libc only.
 * proto/PROTOCOL.md is the normative description; this header is its C binding.
 *
 * Glossary
 *   frame      4-byte big-endian length, then exactly that many bytes holding one msgpack map.
 *   request    {"id": uint, "op": str, "args": map}; id is echoed in the reply.
 *   reply      {"id": uint|nil, "ok": true, "result": any} or
 *              {"id": uint|nil, "ok": false, "error": {"code": str, "message": str}}.
 *   shelter    a kvinnojour, skyddat boende or crisis centre; has units.
 *   unit       a room or apartment with a number of beds; one household takes one unit.
 *   hold       a unit reserved for one referral for a limited time.
 *   placement  a confirmed hold: the household has arrived.
 *   referral   an opaque reference from the municipality's case system; never a name or
 *              personal identity number.
 *   kommun     municipality, 4-digit SCB code ("0180"); län: county, 2-digit code ("01").
 */
#ifndef FRISTAD_PROTO_H
#define FRISTAD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PROTO_VERSION 1

#define PROTO_HEADER_LEN        4u     /* bytes of the big-endian length prefix */
#define PROTO_DEFAULT_MAX_FRAME 65536u /* default cap on a frame body */
#define PROTO_MIN_MAX_FRAME     1024u  /* smallest cap a deployment may configure */
#define PROTO_MAX_MAX_FRAME     (16u * 1024u * 1024u)

#define PROTO_MAX_DEPTH   4u    /* root map > args map > children array > child map */
#define PROTO_MAX_ITEMS   256u  /* elements of one array, or pairs of one map */
#define PROTO_MAX_OBJECTS 4096u /* msgpack objects in one frame */

#define PROTO_ID_MAX        32u  /* shelter and unit ids */
#define PROTO_TOKEN_MAX     64u  /* hold, placement, referral, idempotency key */
#define PROTO_NAME_MAX      100u /* shelter name, in characters */
#define PROTO_REASON_MAX    200u /* decline note, in characters */
#define PROTO_PHONE_MAX     20u
#define PROTO_PRINCIPAL_MAX 80u /* "role:id" */
#define PROTO_PERSON_MAX    80u /* an HSA-id, or "sha256:" and a certificate's fingerprint */
#define PROTO_MAX_LANGUAGES 16u
#define PROTO_MAX_CHILDREN  12u
#define PROTO_MAX_PERP      10u /* municipalities where the perpetrator lives or works */
#define PROTO_MAX_EXCLUDE   50u /* further excluded municipalities */
#define PROTO_MAX_BEDS      30u
#define PROTO_MAX_ADULTS    6u
#define PROTO_MAX_LIMIT     200u /* search result limit */
#define PROTO_MESSAGE_MAX   240u /* error message buffer, including NUL */
#define PROTO_INTAKE_MAX    120u /* intake hours, in characters */
#define PROTO_MAX_INTAKE    14u  /* ranges of intake hours */
#define PROTO_ID_LEN        17u  /* a hold or placement id: 'h' or 'p' and 16 characters */
#define PROTO_PERMIT_MAX    40u  /* an IVO permit's id, as IVO wrote it */
#define PROTO_DATE_LEN      10u  /* a calendar date: YYYY-MM-DD */
#define PROTO_MAX_MONTHS    36u  /* months of follow-up statistics in one request */

#define PROTO_WARN_UNUSED __attribute__((warn_unused_result))

/* Stable error codes; the strings (proto_err_code) are the contract, the numbers are not. */
enum proto_err {
    PROTO_OK = 0,
    PROTO_E_BAD_FRAME,       /* not a msgpack map of the right shape; framing may be lost */
    PROTO_E_TOO_LARGE,       /* length prefix above the maximum frame size */
    PROTO_E_BAD_REQUEST,     /* a field is missing, unknown, of the wrong type or out of range */
    PROTO_E_UNKNOWN_OP,      /* op name not known to this server */
    PROTO_E_UNAUTHORIZED,    /* no usable identity in the client certificate */
    PROTO_E_FORBIDDEN,       /* the principal may not do this to this target */
    PROTO_E_NOT_FOUND,       /* shelter, unit, hold or placement does not exist */
    PROTO_E_CONFLICT,        /* state forbids it: unit not free, hold expired, id taken */
    PROTO_E_UNAVAILABLE,     /* the store cannot be reached right now; nothing was done */
    PROTO_E_INTERNAL,        /* a bug; the request failed, the server goes on */
    PROTO_E_RATE_LIMITED,    /* too many requests from this principal; retry later */
    PROTO_E_PERSONAL_DATA,   /* a field looks like a personal identity number or address */
    PROTO_E_OUTCOME_UNKNOWN, /* the write may or may not have happened; retry with same key */
    PROTO_E_INELIGIBLE,      /* the unit is ruled out for this referral (reasons in the message) */
    PROTO_E_LIMIT_REACHED,   /* a per-principal cap, such as open holds, is reached */
    PROTO_E_GONE,            /* the events asked for are older than the event log keeps */
    PROTO_E__COUNT
};

const char *proto_err_code(enum proto_err e);
/* Returns PROTO_E__COUNT for an unknown code. */
enum proto_err proto_err_from_code(const char *s, size_t n);

struct proto_error {
    enum proto_err code;
    char message[PROTO_MESSAGE_MAX];
};

/* Fills e and returns e->code, so a caller can `return proto_fail(e, ...)`. */
enum proto_err proto_fail(struct proto_error *e, enum proto_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- framing --------------------------------------------------------------------------- */

enum proto_frame_status {
    PROTO_FRAME_NEED_MORE,  /* fewer than 4 + len bytes available */
    PROTO_FRAME_READY,      /* *len bytes of body follow the header */
    PROTO_FRAME_BAD_LENGTH, /* zero length: the stream cannot be trusted any more */
    PROTO_FRAME_TOO_LARGE,  /* length above max_frame: the stream cannot be trusted any more */
};

/* Looks at the start of a byte stream. *len is set whenever 4 header bytes are present. */
enum proto_frame_status proto_frame_peek(const uint8_t *buf, size_t avail, uint32_t max_frame,
                                         uint32_t *len);
void proto_frame_put_header(uint8_t out[PROTO_HEADER_LEN], uint32_t len);

/*
 * Structural pre-check of one msgpack document before msgpack-c sees it: exactly one root
 * object and no trailing bytes, every declared length and count fits in the bytes left, depth
 * at most PROTO_MAX_DEPTH, at most PROTO_MAX_ITEMS per container and PROTO_MAX_OBJECTS in all,
 * no ext types, no reserved byte 0xc1. msgpack-c 4 allocates declared counts before reading
 * elements, so this check is what keeps a 5-byte frame from reserving gigabytes.
 */
enum proto_err proto_check(const uint8_t *p, size_t n, struct proto_error *err);

/*
 * Unpacks one pre-checked document into `out` (which the caller destroys with
 * msgpack_unpacked_destroy). Returns PROTO_E_BAD_FRAME on any msgpack error.
 */
enum proto_err proto_unpack(const uint8_t *p, size_t n, msgpack_unpacked *out,
                            struct proto_error *err);

/* ---- domain enumerations --------------------------------------------------------------- */

enum proto_kind { KIND_KVINNOJOUR, KIND_SKYDDAT_BOENDE, KIND_KRISCENTRUM, KIND_OTHER, KIND__COUNT };
enum proto_group { GROUP_WOMEN, GROUP_MEN, GROUP_HBTQI, GROUP_YOUTH, GROUP__COUNT };
enum proto_vacancy { VAC_FREE, VAC_OCCUPIED, VAC_CLOSED, VAC__COUNT };
enum proto_risk { RISK_LOW, RISK_MODERATE, RISK_HIGH, RISK_SEVERE, RISK__COUNT };
enum proto_role { ROLE_SHELTER, ROLE_SOCIAL, ROLE_ONCALL, ROLE_ADMIN, ROLE__COUNT };
/* The kinds of event in the event log (watch). */
enum proto_event {
    EV_HELD,       /* a hold was made */
    EV_ACCEPTED,   /* the shelter said yes, come */
    EV_DECLINED,   /* the shelter turned the hold down */
    EV_RELEASED,   /* the holder let the unit go */
    EV_EXPIRED,    /* the hold ran out */
    EV_ESCALATED,  /* nobody answered the hold in time (step 1, then step 2) */
    EV_CONFIRMED,  /* the household arrived: a placement */
    EV_DISCHARGED, /* the household left */
    EV_VACANCY,    /* a unit's vacancy changed */
    EV_PAUSED,     /* the shelter paused its intake */
    EV_RESUMED,    /* the shelter resumed its intake */
    EV_MATCH,      /* a standing search found a fitting unit */
    EV_STANDING,   /* a standing search began or ended */
    EV__COUNT
};

/* Why a shelter declines a hold; counted for follow-up. */
enum proto_decline {
    DECLINE_NO_ROOM,   /* the unit is in fact not free */
    DECLINE_HOUSEHOLD, /* the household's composition */
    DECLINE_NEEDS,     /* a need cannot be met */
    DECLINE_SAFETY,    /* a safety concern */
    DECLINE_STAFFING,
    DECLINE_OTHER,
    DECLINE__COUNT
};

/*
 * Specialist competence a shelter declares and a referral may need (the search Unizon's portal
 * offers social services). Counted per bit: a shelter or referral holds a set of them.
 */
enum proto_competence {
    COMP_HBV,                     /* honour-related violence and oppression */
    COMP_PSYCHIATRIC,             /* psychiatric support */
    COMP_NPF,                     /* neuropsychiatric support */
    COMP_INTELLECTUAL_DISABILITY, /* support for people with an intellectual disability */
    COMP_DEAF,                    /* deafness: sign language in the house */
    COMP_INTERPRETER,             /* an interpreter is arranged */
    COMP__COUNT
};
/* Who runs a shelter; for protected housing it decides what IVO requires (since 2024-04-01). */
enum proto_operator {
    OPERATOR_IDEELL,   /* a non-profit: protected housing needs an IVO permit */
    OPERATOR_PRIVAT,   /* a company: protected housing needs an IVO permit */
    OPERATOR_KOMMUNAL, /* a municipality: protected housing must be registered with IVO */
    OPERATOR__COUNT
};
/* The legal basis of the decision for one accompanying child: each child is a decision. */
enum proto_basis {
    BASIS_SOL,         /* Socialtjänstlagen: the default */
    BASIS_LAG_2024_79, /* lag (2024:79) om skyddat boende för barn */
    BASIS_LVU,         /* lagen med särskilda bestämmelser om vård av unga */
    BASIS__COUNT
};

const char *proto_kind_name(enum proto_kind k);
const char *proto_group_name(enum proto_group g);
const char *proto_vacancy_name(enum proto_vacancy v);
const char *proto_risk_name(enum proto_risk r);
const char *proto_role_name(enum proto_role r);
const char *proto_decline_name(enum proto_decline d);
const char *proto_event_name(enum proto_event e);
/* Each returns -1 when the name is unknown. */
int proto_kind_parse(const char *s, size_t n);
int proto_group_parse(const char *s, size_t n);
int proto_vacancy_parse(const char *s, size_t n);
int proto_risk_parse(const char *s, size_t n);
int proto_role_parse(const char *s, size_t n);
int proto_decline_parse(const char *s, size_t n);
int proto_event_parse(const char *s, size_t n);
const char *proto_competence_name(enum proto_competence c);
const char *proto_operator_name(enum proto_operator o);
const char *proto_basis_name(enum proto_basis b);
/* Each returns -1 when the name is unknown. */
int proto_competence_parse(const char *s, size_t n);
int proto_operator_parse(const char *s, size_t n);
int proto_basis_parse(const char *s, size_t n);
/* "hbv, psychiatric, ...", "ideell, privat, kommunal", "sol, lag_2024_79, lvu": for messages. */
const char *proto_competence_choices(void);
const char *proto_operator_choices(void);
const char *proto_basis_choices(void);
/* True for a calendar date YYYY-MM-DD (years 2000 to 2099) that exists. */
bool proto_date_valid(const char *s, size_t n);
/* "no_room, household, needs, safety, staffing, other": for messages. */
const char *proto_decline_choices(void);

/* ---- reference data -------------------------------------------------------------------- */

#define PROTO_MUNICIPALITIES 290u
#define PROTO_COUNTIES       21u

/* Index 0..289 of a valid municipality code (4 digits), or -1. */
int proto_municipality_index(const char *code, size_t n);
const char *proto_municipality_code(unsigned idx);
bool proto_county_valid(const char *code, size_t n);

/* ---- months ------------------------------------------------------------------------------ */

/*
 * A calendar month of follow-up statistics, "YYYY-MM" (2000-01 to 2099-12), as a number that
 * counts months: year * 12 + month - 1. Returns -1 for anything else.
 */
int proto_month_parse(const char *s, size_t n);
/* Writes "YYYY-MM" of a month number (NUL-terminated); out must hold 8 bytes. */
void proto_month_format(int month, char out[8]);

/* ---- intake hours ----------------------------------------------------------------------- */

/*
 * When a shelter can receive a household, in Swedish local time (Europe/Stockholm): "24/7",
 * or ranges such as "mon-fri 08:00-16:30,sat 10:00-14:00". A range whose end is not after its
 * start runs past midnight ("fri 22:00-02:00" ends on Saturday); "daily" is every day.
 */
struct proto_intake_range {
    uint8_t days;      /* bit 0 Monday ... bit 6 Sunday: the days the range starts on */
    uint16_t from, to; /* minutes after midnight; to may be 1440, or <= from past midnight */
};

struct proto_intake {
    bool always; /* 24/7 */
    uint8_t n;
    struct proto_intake_range r[PROTO_MAX_INTAKE];
};

/* Parses intake hours. Returns PROTO_OK, or PROTO_E_BAD_REQUEST with a message. */
enum proto_err proto_intake_parse(const char *s, size_t n, struct proto_intake *out,
                                  struct proto_error *err);
/* Writes the canonical text of `in` (NUL-terminated). Returns its length, or -1 if cap is
 * too small. */
int proto_intake_format(const struct proto_intake *in, char *buf, size_t cap);

/* ---- privacy checks -------------------------------------------------------------------- */

/*
 * True when the text holds something shaped like a Swedish personal identity number
 * (personnummer or samordningsnummer): 10 or 12 digits, in one group or in groups joined by
 * short runs of - + . _ / : or space, not part of a longer digit run, with a plausible month
 * and day and a valid check digit (Luhn over the 10-digit form). The text is normalised first:
 * Unicode dashes, spaces and digits count as their plain forms, invisible characters not at
 * all (proto/PROTOCOL.md section 4).
 */
bool proto_has_personal_number(const char *s, size_t n);
/*
 * True when the normalised text looks like an address: a street and a number ("Storgatan 12",
 * "Kungsg. 12", "12 Main Street"), c/o, an apartment number ("Lgh 1102") or a postal code and a
 * place ("123 45 Ort").
 */
bool proto_has_street_address(const char *s, size_t n);
/*
 * Decodes the UTF-8 sequence at s (n bytes left): returns its length and sets *cp, or returns
 * 0 when s does not start a valid, shortest-form encoding of a Unicode scalar value.
 */
size_t proto_utf8_next(const char *s, size_t n, uint32_t *cp);
/* Valid UTF-8 without control characters (tab excepted) and without overlong forms. */
bool proto_utf8_valid(const char *s, size_t n, size_t *chars);

/* ---- requests -------------------------------------------------------------------------- */

/* Argument fields; the wire name is proto_field_name(). */
enum proto_field {
    F_SHELTER,
    F_UNIT,
    F_NAME,
    F_KIND,
    F_MUNICIPALITY,
    F_PROTECTION,
    F_PHONE,
    F_GROUPS,
    F_MAX_CHILDREN,
    F_BOYS_MAX_AGE,
    F_PETS,
    F_SUBSTANCE,
    F_LANGUAGES,
    F_BEDS,
    F_ACCESSIBLE,
    F_STATE,
    F_COUNTY,
    F_HOME,
    F_RISK,
    F_ADULTS,
    F_CHILDREN,
    F_GROUP,
    F_WHEELCHAIR,
    F_LANGUAGE,
    F_PERPETRATOR,
    F_EXCLUDE,
    F_LIMIT,
    F_REF,
    F_IDEMPOTENCY_KEY,
    F_HOLD,
    F_PLACEMENT,
    F_REASON,
    F_SINCE,
    F_PRINCIPAL,
    F_CALLBACK,
    F_NOTE,
    F_ARRIVAL_BY,
    F_ARRIVAL_AT,
    F_INTAKE_HOURS,
    F_TYPES,
    F_HOURS,
    F_STANDING,
    F_COMPETENCES,
    F_NEED,
    F_OPERATOR,
    F_IVO_PERMIT,
    F_IVO_PERMIT_DATE,
    F_IVO_REGISTERED,
    F_CHILD_BASIS,
    F_FROM_MONTH,
    F_TO_MONTH,
    F_PERSON,
    F_AFTER,
    F__COUNT
};

const char *proto_field_name(enum proto_field f);

#define PROTO_BIT(f) (UINT64_C(1) << (f))
#define PROTO_F(f)   PROTO_BIT(F_##f)

#define PROTO_SHELTER_PROFILE                                                                      \
    (PROTO_F(NAME) | PROTO_F(KIND) | PROTO_F(MUNICIPALITY) | PROTO_F(PROTECTION) |                 \
     PROTO_F(PHONE) | PROTO_F(GROUPS) | PROTO_F(MAX_CHILDREN) | PROTO_F(BOYS_MAX_AGE) |            \
     PROTO_F(PETS) | PROTO_F(SUBSTANCE) | PROTO_F(LANGUAGES) | PROTO_F(INTAKE_HOURS) |             \
     PROTO_F(COMPETENCES) | PROTO_F(OPERATOR) | PROTO_F(IVO_PERMIT) | PROTO_F(IVO_PERMIT_DATE) |   \
     PROTO_F(IVO_REGISTERED))
#define PROTO_AREA (PROTO_F(COUNTY) | PROTO_F(MUNICIPALITY))
#define PROTO_REFERRAL                                                                             \
    (PROTO_F(ADULTS) | PROTO_F(CHILDREN) | PROTO_F(GROUP) | PROTO_F(WHEELCHAIR) | PROTO_F(PETS) |  \
     PROTO_F(SUBSTANCE) | PROTO_F(LANGUAGE) | PROTO_F(PERPETRATOR) | PROTO_F(EXCLUDE) |            \
     PROTO_F(NEED))

/*
 * Every op of the protocol, once: X(ENUM, wire name, required fields, optional fields, writes).
 * The enum, the decoder's field rules (proto/request.c) and the daemon's op table
 * (daemon/ops.c, one row per op) come from this list; "Adding an operation" in README.md says
 * what else a new op needs.
 */
/* clang-format off */
#define PROTO_OPS(X)                                                                               \
    X(SHELTER_ADD, "shelter.add", PROTO_F(SHELTER) | PROTO_F(NAME) | PROTO_F(KIND) |               \
      PROTO_F(MUNICIPALITY) | PROTO_F(PROTECTION) | PROTO_F(PHONE), PROTO_SHELTER_PROFILE, true)   \
    X(SHELTER_UPDATE, "shelter.update", PROTO_F(SHELTER), PROTO_SHELTER_PROFILE, true)            \
    X(SHELTER_RETIRE, "shelter.retire", PROTO_F(SHELTER), 0, true)                                \
    X(SHELTER_SHOW, "shelter.show", PROTO_F(SHELTER), 0, false)                                   \
    X(SHELTER_LIST, "shelter.list", 0, PROTO_AREA | PROTO_F(AFTER), false)                                         \
    X(UNIT_ADD, "unit.add", PROTO_F(SHELTER) | PROTO_F(UNIT) | PROTO_F(BEDS), PROTO_F(ACCESSIBLE),\
      true)                                                                                        \
    X(UNIT_UPDATE, "unit.update", PROTO_F(SHELTER) | PROTO_F(UNIT),                               \
      PROTO_F(BEDS) | PROTO_F(ACCESSIBLE), true)                                                   \
    X(UNIT_REMOVE, "unit.remove", PROTO_F(SHELTER) | PROTO_F(UNIT), 0, true)                      \
    X(VACANCY_SET, "vacancy.set", PROTO_F(SHELTER) | PROTO_F(UNIT) | PROTO_F(STATE), 0, true)     \
    X(VACANCY_CONFIRM, "vacancy.confirm", PROTO_F(SHELTER), 0, true)                              \
    X(INTAKE_PAUSE, "intake.pause", PROTO_F(SHELTER), 0, true)                                    \
    X(INTAKE_RESUME, "intake.resume", PROTO_F(SHELTER), 0, true)                                  \
    X(FREE, "free", 0, PROTO_AREA | PROTO_F(AFTER), false)                                        \
    X(SEARCH, "search", PROTO_F(HOME) | PROTO_F(RISK),                                            \
      PROTO_REFERRAL | PROTO_F(LIMIT) | PROTO_F(ARRIVAL_AT), false)                               \
    X(HOLD, "hold", PROTO_F(SHELTER) | PROTO_F(UNIT) | PROTO_F(REF) | PROTO_F(HOME) |             \
      PROTO_F(RISK), PROTO_REFERRAL | PROTO_F(CALLBACK) | PROTO_F(IDEMPOTENCY_KEY) |                \
      PROTO_F(MUNICIPALITY) | PROTO_F(CHILD_BASIS), true)                                          \
    X(HOLD_ACCEPT, "hold.accept", PROTO_F(HOLD), PROTO_F(ARRIVAL_BY), true)                       \
    X(HOLD_RELEASE, "hold.release", PROTO_F(HOLD), 0, true)                                       \
    X(HOLD_CONFIRM, "hold.confirm", PROTO_F(HOLD), PROTO_F(CHILD_BASIS), true)                    \
    X(HOLD_DECLINE, "hold.decline", PROTO_F(HOLD) | PROTO_F(REASON), PROTO_F(NOTE), true)         \
    X(PLACEMENT_DISCHARGE, "placement.discharge", PROTO_F(PLACEMENT), 0, true)                    \
    X(HOLDS_LIST, "holds.list", 0, PROTO_F(AFTER), false)                                         \
    X(PLACEMENTS_LIST, "placements.list", 0, PROTO_F(AFTER), false)                               \
    X(AUDIT, "audit", 0, PROTO_F(SINCE) | PROTO_F(PRINCIPAL) | PROTO_F(SHELTER) | PROTO_F(LIMIT) |\
      PROTO_F(PERSON), false)                                                                      \
    X(STATS, "stats", 0, 0, false)                                                                \
    X(WHOAMI, "whoami", 0, 0, false)                                                              \
    X(WATCH, "watch", 0, PROTO_F(SINCE) | PROTO_AREA | PROTO_F(TYPES), false)                     \
    X(STANDING_ADD, "standing.add", PROTO_F(REF) | PROTO_F(HOME) | PROTO_F(RISK),                 \
      PROTO_REFERRAL | PROTO_F(HOURS) | PROTO_F(MUNICIPALITY), true)                               \
    X(STANDING_LIST, "standing.list", 0, 0, false)                                                \
    X(STANDING_CANCEL, "standing.cancel", PROTO_F(STANDING), 0, true)                             \
    X(FOLLOWUP, "followup", 0, PROTO_AREA | PROTO_F(FROM_MONTH) | PROTO_F(TO_MONTH), false)       \
    X(DIRECTORY, "directory", 0, PROTO_F(AFTER), false)
/* clang-format on */

enum proto_op {
#define PROTO_OP_ENUM(e, name, required, optional, writes) OP_##e,
    PROTO_OPS(PROTO_OP_ENUM)
#undef PROTO_OP_ENUM
        OP__COUNT
};

const char *proto_op_name(enum proto_op op);
/* Returns -1 when unknown. */
int proto_op_parse(const char *s, size_t n);
/* True for ops that change stored state (and are therefore audited). */
bool proto_op_writes(enum proto_op op);

struct proto_child {
    uint8_t age; /* 0..17 */
    char sex;    /* 'm' or 'f' */
};

/* Decoded, validated arguments. A field is meaningful only when its bit is in `present`. */
struct proto_args {
    uint64_t present;
    char shelter[PROTO_ID_MAX + 1];
    char unit[PROTO_ID_MAX + 1];
    char name[PROTO_NAME_MAX * 4 + 1]; /* UTF-8 */
    uint8_t kind;                      /* enum proto_kind */
    char municipality[5];
    uint8_t protection; /* 1..3 */
    char phone[PROTO_PHONE_MAX + 1];
    uint8_t groups; /* bit per enum proto_group */
    uint8_t max_children;
    uint8_t boys_max_age;
    bool pets;
    bool substance;
    uint8_t n_languages;
    char languages[PROTO_MAX_LANGUAGES][4];
    uint8_t beds;
    bool accessible;
    uint8_t state; /* enum proto_vacancy */
    char county[3];
    char home[5];
    uint8_t risk; /* enum proto_risk */
    uint8_t adults;
    uint8_t n_children;
    struct proto_child children[PROTO_MAX_CHILDREN];
    uint8_t group; /* enum proto_group */
    bool wheelchair;
    char language[4];
    uint8_t n_perpetrator;
    char perpetrator[PROTO_MAX_PERP][5];
    uint8_t n_exclude;
    char exclude[PROTO_MAX_EXCLUDE][5];
    uint16_t limit;
    char ref[PROTO_TOKEN_MAX + 1];
    char idempotency_key[PROTO_TOKEN_MAX + 1];
    char hold[PROTO_TOKEN_MAX + 1];
    char placement[PROTO_TOKEN_MAX + 1];
    uint8_t reason;     /* enum proto_decline */
    int64_t since;      /* milliseconds since the epoch; with since_seq, the part of a sequence */
    uint64_t since_seq; /* "since" given as a sequence "MS-N": its N (and since_is_seq) */
    bool since_is_seq;
    char principal[PROTO_PRINCIPAL_MAX + 1];
    char callback[PROTO_PHONE_MAX + 1];  /* the worker's direct line: a number, never a name */
    char note[PROTO_REASON_MAX * 4 + 1]; /* UTF-8 */
    int64_t arrival_by;                  /* ms since the epoch: the household arrives by then */
    int64_t arrival_at;                  /* ms since the epoch: when the household would arrive */
    char intake_hours[PROTO_INTAKE_MAX * 4 + 1]; /* "24/7" or "mon-fri 08:00-16:30,..." */
    uint16_t types; /* watch: a bit per enum proto_event (0: every type) */
    uint8_t hours;  /* a standing search lasts this long */
    char standing[PROTO_TOKEN_MAX + 1];
    uint8_t competences;                      /* bit per enum proto_competence it has */
    uint8_t need;                             /* bit per enum proto_competence needed */
    uint8_t operator_;                        /* enum proto_operator (C++ reserves the name) */
    char ivo_permit[PROTO_PERMIT_MAX + 1];    /* "" records that there is no permit */
    char ivo_permit_date[PROTO_DATE_LEN + 1]; /* YYYY-MM-DD: when IVO granted it */
    bool ivo_registered;                      /* a municipal unit is registered with IVO */
    uint8_t n_child_basis;
    uint8_t child_basis[PROTO_MAX_CHILDREN]; /* enum proto_basis, one per child in order */
    char from_month[8]; /* follow-up: the first month, "YYYY-MM" (Swedish local time) */
    char to_month[8];   /* follow-up: the last month */
    char person[PROTO_PERSON_MAX + 1]; /* who holds a certificate, as audited */
    char after[PROTO_ID_MAX + 1];      /* a listing's next page: the shelters after this one */
};

static inline bool proto_has(const struct proto_args *a, enum proto_field f)
{
    return (a->present & PROTO_BIT(f)) != 0;
}

struct proto_request {
    uint64_t id;
    bool has_id; /* false only while reporting an error for a frame without a usable id */
    enum proto_op op;
    struct proto_args args;
};

/* Allowed and required fields of an op, as bit masks over enum proto_field. */
uint64_t proto_op_allowed(enum proto_op op);
uint64_t proto_op_required(enum proto_op op);

/*
 * Decodes and validates one frame body into `out`. On failure, `err` says why and
 * out->has_id/out->id tell whether the error reply can carry the request's id.
 * Every string is copied: nothing in `out` points into `p`.
 */
enum proto_err proto_decode_request(const uint8_t *p, size_t n, struct proto_request *out,
                                    struct proto_error *err) PROTO_WARN_UNUSED;

/*
 * Checks one typed request against the same rules the decoder applies (used by the client
 * before sending, and by tests). Returns PROTO_OK or the error with a message.
 */
enum proto_err proto_validate_request(const struct proto_request *req, struct proto_error *err);

/*
 * Packs the fields of `a` that are present and in `mask` as key/value pairs (the caller has
 * packed the map header: one pair per field). Returns 0 or -1.
 */
int proto_pack_fields(msgpack_packer *pk, const struct proto_args *a,
                      uint64_t mask) PROTO_WARN_UNUSED;

/* Packs a request (map with id, op, args) into `pk`. Returns 0 or -1 on allocation failure. */
int proto_pack_request(msgpack_packer *pk, const struct proto_request *req) PROTO_WARN_UNUSED;

/* ---- replies ---------------------------------------------------------------------------- */

/*
 * Starts an ok reply: packs the map header and "id", "ok": true, and the key "result"; the
 * caller then packs exactly one object as the result. Returns 0 or -1.
 */
int proto_pack_ok_begin(msgpack_packer *pk, uint64_t id, bool has_id) PROTO_WARN_UNUSED;
/* Packs a whole error reply. Returns 0 or -1. */
int proto_pack_error(msgpack_packer *pk, uint64_t id, bool has_id, enum proto_err code,
                     const char *message) PROTO_WARN_UNUSED;
/* Packs a NUL-terminated string. Returns 0 or -1. */
int proto_pack_cstr(msgpack_packer *pk, const char *s) PROTO_WARN_UNUSED;
/* Packs a key (NUL-terminated) followed by a NUL-terminated string value. */
int proto_pack_kv_str(msgpack_packer *pk, const char *k, const char *v) PROTO_WARN_UNUSED;
int proto_pack_kv_int(msgpack_packer *pk, const char *k, int64_t v) PROTO_WARN_UNUSED;
int proto_pack_kv_bool(msgpack_packer *pk, const char *k, bool v) PROTO_WARN_UNUSED;

struct proto_reply {
    uint64_t id;
    bool has_id;
    bool ok;
    enum proto_err code;             /* when !ok; PROTO_E__COUNT for a code this build lacks */
    char code_text[32];              /* the code as sent */
    char message[PROTO_MESSAGE_MAX]; /* when !ok */
    const msgpack_object *result;    /* when ok; points into `unpacked`, strings into `p` */
    msgpack_unpacked unpacked;
};

/*
 * Decodes a reply frame body. On success the caller frees with proto_reply_free. String and
 * bin payloads in `result` point into `p`, which must outlive the reply.
 */
enum proto_err proto_decode_reply(const uint8_t *p, size_t n, struct proto_reply *out,
                                  struct proto_error *err) PROTO_WARN_UNUSED;
void proto_reply_free(struct proto_reply *r);

/* Looks up a key in a msgpack map object; NULL when absent or when `map` is not a map. */
const msgpack_object *proto_map_get(const msgpack_object *map, const char *key);
/* Whether `o` is a msgpack string equal to `lit`; false for NULL. */
bool proto_str_is(const msgpack_object *o, const char *lit);

#ifdef __cplusplus
}
#endif

#endif
