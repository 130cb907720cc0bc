/* The archive of closed records: see archive.h. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fristad/proto.h>
#include <openssl/evp.h>

#include "archive.h"
#include "log.h"

#define LINE_HEAD   "{\"hash\":\""
#define LINE_PREV   "\",\"prev\":\""
#define LINE_RECORD "\",\"record\":"
#define TAIL_MAX    (256 * 1024) /* a line is far shorter: a record is a few kilobytes */

static const char GENESIS[ARCHIVE_HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* ---- the chain -------------------------------------------------------------------------- */

/* SHA-256 over prev (64 hex characters) and the record's bytes, as 64 lower-case hex digits. */
static int chain_hash(const char *prev, const char *record, size_t n,
                      char out[ARCHIVE_HASH_HEX + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(ctx, prev, ARCHIVE_HASH_HEX) && EVP_DigestUpdate(ctx, record, n) &&
             EVP_DigestFinal_ex(ctx, md, &len) && len * 2 == ARCHIVE_HASH_HEX;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static bool is_hex64(const char *s)
{
    for (unsigned i = 0; i < ARCHIVE_HASH_HEX; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

/* ---- records as JSON -------------------------------------------------------------------- */

static int put(msgpack_sbuffer *b, const char *s, size_t n)
{
    return msgpack_sbuffer_write(b, s, n);
}

static int put_cstr(msgpack_sbuffer *b, const char *s)
{
    return put(b, s, strlen(s));
}

static int put_json_string(msgpack_sbuffer *b, const char *s, size_t n)
{
    int rc = put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            rc |= put(b, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            rc |= put(b, esc, 6);
        } else {
            rc |= put(b, s + i, 1);
        }
    }
    return rc | put(b, "\"", 1);
}

static int key_cmp(const void *pa, const void *pb)
{
    const msgpack_object_kv *a = *(const msgpack_object_kv *const *)pa;
    const msgpack_object_kv *b = *(const msgpack_object_kv *const *)pb;
    uint32_t n =
        a->key.via.str.size < b->key.via.str.size ? a->key.via.str.size : b->key.via.str.size;
    int c = memcmp(a->key.via.str.ptr, b->key.via.str.ptr, n);
    if (c)
        return c;
    return a->key.via.str.size < b->key.via.str.size ? -1
                                                     : a->key.via.str.size > b->key.via.str.size;
}

/* A record from the store as JSON, keys sorted at every level. Returns 0 or -1. */
static int put_json(msgpack_sbuffer *b, const msgpack_object *o, unsigned depth)
{
    char num[32];
    int rc = 0;
    if (depth > 8)
        return -1;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return put_cstr(b, "null");
    case MSGPACK_OBJECT_BOOLEAN:
        return put_cstr(b, o->via.boolean ? "true" : "false");
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        snprintf(num, sizeof num, "%llu", (unsigned long long)o->via.u64);
        return put_cstr(b, num);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)o->via.i64);
        return put_cstr(b, num);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        snprintf(num, sizeof num, "%.17g", o->via.f64);
        return put_cstr(b, num);
    case MSGPACK_OBJECT_STR:
        return put_json_string(b, o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY:
        rc |= put(b, "[", 1);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                rc |= put(b, ",", 1);
            rc |= put_json(b, &o->via.array.ptr[i], depth + 1);
        }
        return rc | put(b, "]", 1);
    case MSGPACK_OBJECT_MAP: {
        uint32_t n = o->via.map.size;
        const msgpack_object_kv **kv = calloc(n ? n : 1, sizeof *kv);
        if (!kv)
            return -1;
        for (uint32_t i = 0; i < n; i++) {
            kv[i] = &o->via.map.ptr[i];
            if (kv[i]->key.type != MSGPACK_OBJECT_STR) {
                free(kv);
                return -1;
            }
        }
        qsort(kv, n, sizeof *kv, key_cmp);
        rc |= put(b, "{", 1);
        for (uint32_t i = 0; i < n; i++) {
            if (i)
                rc |= put(b, ",", 1);
            rc |= put_json_string(b, kv[i]->key.via.str.ptr, kv[i]->key.via.str.size);
            rc |= put(b, ":", 1);
            rc |= put_json(b, &kv[i]->val, depth + 1);
        }
        free(kv);
        return rc | put(b, "}", 1);
    }
    default:
        return -1;
    }
}

/* ---- appending -------------------------------------------------------------------------- */

int archive_prepare_dir(const char *dir, char *err, size_t errlen)
{
    if (!dir[0]) {
        snprintf(err, errlen, "no archive directory is configured ([retention] archive_dir)");
        return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot make the archive directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "cannot write to the archive directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * Finds the hash of the file's last line, and cuts off a last line that has no line end (a
 * write cut short by a crash: its records were never confirmed to the store).
 */
static int read_head(int fd, const char *path, char head[ARCHIVE_HASH_HEX + 1], char *err,
                     size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    off_t size = st.st_size;
    memcpy(head, GENESIS, sizeof GENESIS);
    if (size == 0)
        return 0;
    size_t want = size > TAIL_MAX ? TAIL_MAX : (size_t)size;
    char *tail = malloc(want + 1);
    if (!tail) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ssize_t got = pread(fd, tail, want, size - (off_t)want);
    if (got != (ssize_t)want) {
        snprintf(err, errlen, "%s: cannot read its end", path);
        free(tail);
        return -1;
    }
    size_t end = want; /* one past the last complete line's newline */
    while (end > 0 && tail[end - 1] != '\n')
        end--;
    if (end != want) {
        if (end == 0 && (size_t)size > want) {
            snprintf(err, errlen, "%s: its last line is longer than any record", path);
            free(tail);
            return -1;
        }
        off_t keep = size - (off_t)(want - end);
        if (ftruncate(fd, keep) != 0) {
            snprintf(err, errlen, "%s: cannot cut off an incomplete last line: %s", path,
                     strerror(errno));
            free(tail);
            return -1;
        }
        log_warning("archive %s ended in an incomplete line (a write cut short); removed it", path);
        size = keep;
    }
    if (size == 0) {
        free(tail);
        return 0;
    }
    size_t start = end - 1; /* the last line's first byte */
    while (start > 0 && tail[start - 1] != '\n')
        start--;
    if (end - start < sizeof LINE_HEAD - 1 + ARCHIVE_HASH_HEX ||
        memcmp(tail + start, LINE_HEAD, sizeof LINE_HEAD - 1) != 0 ||
        !is_hex64(tail + start + sizeof LINE_HEAD - 1)) {
        snprintf(err, errlen, "%s: its last line is not an archive line; not appending to it",
                 path);
        free(tail);
        return -1;
    }
    memcpy(head, tail + start + sizeof LINE_HEAD - 1, ARCHIVE_HASH_HEX);
    head[ARCHIVE_HASH_HEX] = '\0';
    free(tail);
    return 0;
}

/* The lines for `records`, chained from `prev`; leaves the last hash in `prev`. */
static int make_lines(msgpack_sbuffer *out, const msgpack_object *records,
                      char prev[ARCHIVE_HASH_HEX + 1], unsigned *count)
{
    msgpack_sbuffer rec;
    int rc = 0;
    *count = 0;
    for (uint32_t i = 0; rc == 0 && i < records->via.array.size; i++) {
        const msgpack_object *r = proto_map_get(&records->via.array.ptr[i], "record");
        if (!r)
            return -1;
        char hash[ARCHIVE_HASH_HEX + 1];
        msgpack_sbuffer_init(&rec);
        rc = put_json(&rec, r, 0);
        if (rc == 0)
            rc = chain_hash(prev, rec.data, rec.size, hash);
        if (rc == 0) {
            rc |= put_cstr(out, LINE_HEAD);
            rc |= put(out, hash, ARCHIVE_HASH_HEX);
            rc |= put_cstr(out, LINE_PREV);
            rc |= put(out, prev, ARCHIVE_HASH_HEX);
            rc |= put_cstr(out, LINE_RECORD);
            rc |= put(out, rec.data, rec.size);
            rc |= put(out, "}\n", 2);
            memcpy(prev, hash, sizeof hash);
            (*count)++;
        }
        msgpack_sbuffer_destroy(&rec);
    }
    return rc ? -1 : 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int archive_append(const char *dir, int64_t now_ms, const msgpack_object *records,
                   struct archive_head *head, char *err, size_t errlen)
{
    if (!records || records->type != MSGPACK_OBJECT_ARRAY) {
        snprintf(err, errlen, "the store handed out no list of records");
        return -1;
    }
    if (archive_prepare_dir(dir, err, errlen) < 0)
        return -1;
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    int n = snprintf(head->path, sizeof head->path, "%s/fristad-%04d-%02d.jsonl", dir,
                     tm.tm_year + 1900, tm.tm_mon + 1);
    if (n < 0 || (size_t)n >= sizeof head->path) {
        snprintf(err, errlen, "the archive directory's path is too long");
        return -1;
    }
    bool existed = access(head->path, F_OK) == 0;
    int fd = open(head->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", head->path, strerror(errno));
        return -1;
    }
    msgpack_sbuffer lines;
    msgpack_sbuffer_init(&lines);
    struct stat st;
    int rc = -1;
    if (fchmod(fd, 0600) != 0 || read_head(fd, head->path, head->hash, err, errlen) < 0 ||
        fstat(fd, &st) != 0) {
        if (!err[0])
            snprintf(err, errlen, "%s: %s", head->path, strerror(errno));
        goto out;
    }
    if (make_lines(&lines, records, head->hash, &head->appended) < 0) {
        snprintf(err, errlen, "a record could not be written as JSON");
        goto out;
    }
    if (write_all(fd, lines.data, lines.size) < 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", head->path, strerror(errno));
        /* Nothing of this batch may stay: the store keeps the records and hands them out
         * again. If even this fails, the next append cuts the incomplete line off. */
        if (ftruncate(fd, st.st_size) == 0)
            (void)fsync(fd);
        goto out;
    }
    if (!existed && sync_dir(dir) != 0) {
        snprintf(err, errlen, "cannot sync the archive directory %s: %s", dir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    msgpack_sbuffer_destroy(&lines);
    close(fd);
    return rc;
}

/* ---- verifying -------------------------------------------------------------------------- */

/* A set of record names ("hold h...", "placement p..."), remembering the line of each. */
struct seen {
    char **names;
    unsigned long *lines;
    size_t cap, n;
};

static size_t name_hash(const char *s)
{
    size_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

/* The line `name` was first seen on, or 0 after adding it with `line`; -1 when out of memory. */
static long seen_add(struct seen *st, const char *name, unsigned long line)
{
    if (2 * (st->n + 1) > st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 1024;
        char **names = calloc(cap, sizeof *names);
        unsigned long *lines = calloc(cap, sizeof *lines);
        if (!names || !lines) {
            free(names);
            free(lines);
            return -1;
        }
        for (size_t i = 0; i < st->cap; i++) {
            if (!st->names[i])
                continue;
            size_t k = name_hash(st->names[i]) & (cap - 1);
            while (names[k])
                k = (k + 1) & (cap - 1);
            names[k] = st->names[i];
            lines[k] = st->lines[i];
        }
        free(st->names);
        free(st->lines);
        st->names = names;
        st->lines = lines;
        st->cap = cap;
    }
    size_t k = name_hash(name) & (st->cap - 1);
    while (st->names[k]) {
        if (strcmp(st->names[k], name) == 0)
            return (long)st->lines[k];
        k = (k + 1) & (st->cap - 1);
    }
    if (!(st->names[k] = strdup(name)))
        return -1;
    st->lines[k] = line;
    st->n++;
    return 0;
}

static void seen_free(struct seen *st)
{
    for (size_t i = 0; i < st->cap; i++)
        free(st->names[i]);
    free(st->names);
    free(st->lines);
}

/*
 * "hold h..." or "placement p...": which record a line holds. Keys are sorted and every quote
 * inside a value is escaped, so "key":"value" is found only where it is a key.
 */
static void record_name(const char *rec, size_t n, char *out, size_t cap)
{
    static const char *const kinds[] = {"hold", "placement"};
    out[0] = '\0';
    for (unsigned k = 0; k < 2; k++) {
        char kind[32], key[32];
        snprintf(kind, sizeof kind, "\"record\":\"%s\"", kinds[k]);
        snprintf(key, sizeof key, "\"%s\":\"", kinds[k]);
        if (!memmem(rec, n, kind, strlen(kind)))
            continue;
        const char *v = memmem(rec, n, key, strlen(key));
        if (!v)
            return;
        v += strlen(key);
        const char *end = memchr(v, '"', (size_t)(rec + n - v));
        if (end)
            snprintf(out, cap, "%s %.*s", kinds[k], (int)(end - v), v);
        return;
    }
}

int archive_verify(const char *path, FILE *out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(out, "%s: cannot read it: %s\n", path, strerror(errno));
        return 2;
    }
    char prev[ARCHIVE_HASH_HEX + 1], hash[ARCHIVE_HASH_HEX + 1];
    memcpy(prev, GENESIS, sizeof GENESIS);
    struct seen seen = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long no = 0, repeated = 0;
    int result = 0;
    const size_t fixed = sizeof LINE_HEAD - 1 + ARCHIVE_HASH_HEX + sizeof LINE_PREV - 1 +
                         ARCHIVE_HASH_HEX + sizeof LINE_RECORD - 1;
    while ((len = getline(&line, &cap, f)) >= 0) {
        no++;
        const char *why = NULL;
        const char *h = line + sizeof LINE_HEAD - 1;
        const char *p = h + ARCHIVE_HASH_HEX + sizeof LINE_PREV - 1;
        const char *rec = line + fixed;
        size_t rec_len = (size_t)len > fixed + 2 ? (size_t)len - fixed - 2 : 0;
        if (line[len - 1] != '\n')
            why = "it has no line end: a write was cut short, or the file was cut";
        else if ((size_t)len < fixed + 4 || memcmp(line, LINE_HEAD, sizeof LINE_HEAD - 1) != 0 ||
                 !is_hex64(h) ||
                 memcmp(h + ARCHIVE_HASH_HEX, LINE_PREV, sizeof LINE_PREV - 1) != 0 ||
                 !is_hex64(p) ||
                 memcmp(p + ARCHIVE_HASH_HEX, LINE_RECORD, sizeof LINE_RECORD - 1) != 0 ||
                 rec[0] != '{' || line[len - 2] != '}' || rec[rec_len - 1] != '}')
            why = "it is not an archive line";
        else if (memcmp(p, prev, ARCHIVE_HASH_HEX) != 0)
            why = no == 1 ? "it does not start the chain: a line before it was removed"
                          : "it does not follow the line before it: a line was removed or "
                            "changed";
        else if (chain_hash(prev, rec, rec_len, hash) < 0 || memcmp(hash, h, ARCHIVE_HASH_HEX) != 0)
            why = "its content does not match its hash: the line was changed";
        if (why) {
            fprintf(out, "%s: line %lu: %s\n", path, no, why);
            result = 1;
            break;
        }
        memcpy(prev, h, ARCHIVE_HASH_HEX);
        char name[96];
        record_name(rec, rec_len, name, sizeof name);
        long first = name[0] ? seen_add(&seen, name, no) : 0;
        if (first < 0) {
            fprintf(out, "%s: out of memory\n", path);
            result = 2;
            break;
        }
        if (first > 0) {
            repeated++;
            fprintf(out,
                    "%s: line %lu archives the %s of line %lu again (written twice after an "
                    "interruption; not a fault)\n",
                    path, no, name, (unsigned long)first);
        }
    }
    if (result == 0 && ferror(f)) {
        fprintf(out, "%s: cannot read it: %s\n", path, strerror(errno));
        result = 2;
    }
    if (result == 0)
        fprintf(out, "%s: %lu lines, chain intact%s; head %s\n", path, no,
                repeated ? ", some records archived twice" : "", prev);
    free(line);
    seen_free(&seen);
    fclose(f);
    return result;
}
