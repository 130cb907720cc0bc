/*
 * `fristad export hsds`: the directory (op `directory`) as Open Referral HSDS 3.0 JSON, for a
 * public "what help exists where" page.
 *
 * The document is one HSDS API page of services (total_items, total_pages, page_number, size,
 * first_page, last_page, empty, contents), each service dereferenced as HSDS publishes JSON:
 * its organization, its languages, its phone where the server gave one, and one
 * service_at_location whose location is the shelter's municipality, the only location there
 * is: no address, no coordinates (a pin on a map would be read as the place). What the server
 * sends is already the public part (daemon/directory.c); this file only writes it down.
 *
 * HSDS identifiers are UUIDs. They are made by name (version 5, RFC 9562) from Fristad's own
 * ids under one namespace, so the same shelter has the same ids in every export and a page
 * that loads a new export keeps its links.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "hsds.h"
#include "json.h"

/* The namespace of every Fristad HSDS id (a random UUID, fixed for good). */
static const unsigned char NAMESPACE[16] = {0xf1, 0x6f, 0x97, 0xf7, 0xa5, 0xa5, 0x49, 0x2d,
                                            0x8d, 0xee, 0x2e, 0xc7, 0x2c, 0x84, 0x4b, 0xa9};

#define UUID_TEXT 37u

/* The version 5 UUID of "fristad:WHAT:ID", as text. Returns 0, or -1 when hashing fails. */
static int uuid_of(const char *what, const char *id, char out[UUID_TEXT])
{
    char name[256];
    unsigned char buf[16 + sizeof name], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = snprintf(name, sizeof name, "fristad:%s:%s", what, id);
    if (n < 0 || (size_t)n >= sizeof name)
        return -1;
    memcpy(buf, NAMESPACE, 16);
    memcpy(buf + 16, name, (size_t)n);
    if (EVP_Digest(buf, 16 + (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen < 16)
        return -1;
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50); /* version 5 */
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* the RFC's variant */
    snprintf(out, UUID_TEXT, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11],
             md[12], md[13], md[14], md[15]);
    return 0;
}

/* A string of the directory as a NUL-terminated copy ("" when absent). */
static const char *text(char *buf, size_t cap, const msgpack_object *m, const char *key)
{
    const msgpack_object *o = proto_map_get(m, key);
    buf[0] = '\0';
    if (o && o->type == MSGPACK_OBJECT_STR && o->via.str.size < cap) {
        memcpy(buf, o->via.str.ptr, o->via.str.size);
        buf[o->via.str.size] = '\0';
    }
    return buf;
}

static int64_t number(const msgpack_object *m, const char *key, int64_t none)
{
    const msgpack_object *o = proto_map_get(m, key);
    return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)o->via.u64 : none;
}

static bool flag(const msgpack_object *m, const char *key)
{
    const msgpack_object *o = proto_map_get(m, key);
    return o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

static void key_str(FILE *out, const char *key, const char *value, bool comma)
{
    fprintf(out, "%s\"%s\": ", comma ? ", " : "", key);
    json_write_string(out, value, strlen(value));
}

static const char *kind_label(const char *kind)
{
    if (strcmp(kind, "kvinnojour") == 0)
        return "Kvinnojour (women's shelter)";
    if (strcmp(kind, "skyddat_boende") == 0)
        return "Skyddat boende (protected housing)";
    if (strcmp(kind, "kriscentrum") == 0)
        return "Kriscentrum (crisis centre)";
    return "Shelter";
}

/* "women, hbtqi people and young people" from the groups array. */
static void groups_text(char *buf, size_t cap, const msgpack_object *s)
{
    static const struct {
        const char *code, *words;
    } groups[] = {
        {"women", "women"}, {"men", "men"}, {"hbtqi", "hbtqi people"}, {"youth", "young people"}};
    const msgpack_object *a = proto_map_get(s, "groups");
    size_t used = 0;
    uint32_t n = a && a->type == MSGPACK_OBJECT_ARRAY ? a->via.array.size : 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *g = &a->via.array.ptr[i];
        for (size_t k = 0; k < sizeof groups / sizeof groups[0]; k++) {
            if (g->type != MSGPACK_OBJECT_STR || g->via.str.size != strlen(groups[k].code) ||
                memcmp(g->via.str.ptr, groups[k].code, g->via.str.size) != 0)
                continue;
            const char *sep = i == 0 ? "" : i + 1 == n ? " and " : ", ";
            int w = snprintf(buf + used, cap - used, "%s%s", sep, groups[k].words);
            if (w > 0 && (size_t)w < cap - used)
                used += (size_t)w;
        }
    }
    if (!buf[0])
        snprintf(buf, cap, "people");
}

/* Who the shelter takes, in words: the service's eligibility. */
static void eligibility(char *buf, size_t cap, const msgpack_object *s)
{
    char groups[128];
    groups_text(groups, sizeof groups, s);
    groups[0] = (char)(groups[0] >= 'a' && groups[0] <= 'z' ? groups[0] - 'a' + 'A' : groups[0]);
    int64_t children = number(s, "max_children", -1), boys = number(s, "boys_max_age", -1);
    size_t used = (size_t)snprintf(buf, cap, "%s", groups);
    if (children == 0)
        snprintf(buf + used, cap - used, ", without children.");
    else if (children > 0 && boys >= 0)
        snprintf(buf + used, cap - used,
                 ", with up to %" PRId64 " children (boys up to the age of %" PRId64 ").", children,
                 boys);
    else if (children > 0)
        snprintf(buf + used, cap - used, ", with up to %" PRId64 " children.", children);
    else if (boys >= 0)
        snprintf(buf + used, cap - used,
                 ", with their children (boys up to the age of %" PRId64 ").", boys);
    else
        snprintf(buf + used, cap - used, ", with their children.");
}

static int write_service(FILE *out, const msgpack_object *s)
{
    char sid[PROTO_ID_MAX + 1], name[PROTO_NAME_MAX * 4 + 1], kind[32], mun[8], mun_name[80],
        county_name[80], phone[PROTO_PHONE_MAX + 1];
    char service[UUID_TEXT], org[UUID_TEXT], loc[UUID_TEXT], sal[UUID_TEXT], id[UUID_TEXT];
    char desc[768], who[256];
    text(sid, sizeof sid, s, "shelter");
    text(name, sizeof name, s, "name");
    text(kind, sizeof kind, s, "kind");
    text(mun, sizeof mun, s, "municipality");
    text(mun_name, sizeof mun_name, s, "municipality_name");
    text(county_name, sizeof county_name, s, "county_name");
    text(phone, sizeof phone, s, "phone");
    if (!sid[0] || !mun[0] || uuid_of("service", sid, service) < 0 ||
        uuid_of("organization", sid, org) < 0 || uuid_of("location", mun, loc) < 0 ||
        uuid_of("service_at_location", sid, sal) < 0)
        return -1;

    eligibility(who, sizeof who, s);
    int64_t units = number(s, "units", 0), beds = number(s, "beds", 0),
            accessible = number(s, "accessible_units", 0);
    size_t used = (size_t)snprintf(desc, sizeof desc, "%s in %s, %s. %s", kind_label(kind),
                                   mun_name, county_name, who);
    if (flag(s, "pets") && used < sizeof desc)
        used += (size_t)snprintf(desc + used, sizeof desc - used, " Pets are welcome.");
    if (flag(s, "substance") && used < sizeof desc)
        used += (size_t)snprintf(desc + used, sizeof desc - used, " Substance-use support.");
    if (used < sizeof desc)
        used += (size_t)snprintf(desc + used, sizeof desc - used,
                                 " %" PRId64 " unit%s with %" PRId64 " bed%s", units,
                                 units == 1 ? "" : "s", beds, beds == 1 ? "" : "s");
    if (accessible > 0 && used < sizeof desc)
        used += (size_t)snprintf(desc + used, sizeof desc - used,
                                 ", %" PRId64 " wheelchair accessible", accessible);
    if (used < sizeof desc)
        snprintf(desc + used, sizeof desc - used,
                 ". A place is arranged through the social services; no address is published.");

    fputs("{", out);
    key_str(out, "id", service, false);
    key_str(out, "organization_id", org, true);
    key_str(out, "name", name, true);
    key_str(out, "description", desc, true);
    key_str(out, "status", "active", true);
    key_str(out, "eligibility_description", who, true);

    fputs(", \"organization\": {", out);
    key_str(out, "id", org, false);
    key_str(out, "name", name, true);
    key_str(out, "description", kind_label(kind), true);
    fputs("}", out);

    fputs(", \"languages\": [", out);
    const msgpack_object *langs = proto_map_get(s, "languages");
    uint32_t nl = langs && langs->type == MSGPACK_OBJECT_ARRAY ? langs->via.array.size : 0;
    for (uint32_t i = 0; i < nl; i++) {
        const msgpack_object *l = &langs->via.array.ptr[i];
        char code[8], lang_id[64];
        if (l->type != MSGPACK_OBJECT_STR || l->via.str.size >= sizeof code)
            continue;
        memcpy(code, l->via.str.ptr, l->via.str.size);
        code[l->via.str.size] = '\0';
        snprintf(lang_id, sizeof lang_id, "%s:%s", sid, code);
        if (uuid_of("language", lang_id, id) < 0)
            return -1;
        fputs(i ? ", {" : "{", out);
        key_str(out, "id", id, false);
        key_str(out, "service_id", service, true);
        key_str(out, "code", code, true);
        fputs("}", out);
    }
    fputs("]", out);

    fputs(", \"phones\": [", out);
    if (phone[0]) {
        if (uuid_of("phone", sid, id) < 0)
            return -1;
        fputs("{", out);
        key_str(out, "id", id, false);
        key_str(out, "service_id", service, true);
        key_str(out, "number", phone, true);
        key_str(out, "type", "voice", true);
        key_str(out, "description", "Intake line", true);
        fputs("}", out);
    }
    fputs("]", out);

    char loc_name[128], loc_desc[256];
    snprintf(loc_name, sizeof loc_name, "%s (kommun %s)", mun_name, mun);
    snprintf(loc_desc, sizeof loc_desc,
             "The municipality of %s in %s. The shelter's address is not published.", mun_name,
             county_name);
    fputs(", \"service_at_locations\": [{", out);
    key_str(out, "id", sal, false);
    key_str(out, "service_id", service, true);
    key_str(out, "location_id", loc, true);
    fputs(", \"location\": {", out);
    key_str(out, "id", loc, false);
    key_str(out, "location_type", "physical", true);
    key_str(out, "name", loc_name, true);
    key_str(out, "description", loc_desc, true);
    key_str(out, "external_identifier", mun, true);
    key_str(out, "external_identifier_type", "kommunkod", true);
    fputs("}}]}", out);
    return 0;
}

int hsds_write(FILE *out, const msgpack_object *directory)
{
    const msgpack_object *list = proto_map_get(directory, "shelters");
    if (!list || list->type != MSGPACK_OBJECT_ARRAY)
        return -1;
    uint32_t n = list->via.array.size;
    if (flag(directory, "phones_withheld"))
        fputs("fristad: intake phones are left out: the server could not audit their "
              "disclosure (is its store down?)\n",
              stderr);
    fprintf(out,
            "{\"total_items\": %" PRIu32 ", \"total_pages\": 1, \"page_number\": 1, "
            "\"size\": %" PRIu32 ", \"first_page\": true, \"last_page\": true, \"empty\": %s, "
            "\"contents\": [",
            n, n, n ? "false" : "true");
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            fputs(",\n", out);
        else
            fputs("\n", out);
        if (write_service(out, &list->via.array.ptr[i]) != 0)
            return -1;
    }
    fputs("]}\n", out);
    return 0;
}
