/*
 * The archive of closed holds and placements, for deployments that must keep records (a
 * municipality under the Archives Act keeps them until a disposal decision says otherwise).
 *
 * One file per month in the archive directory, "fristad-YYYY-MM.jsonl" (the month of archiving,
 * Swedish local time), mode 0600, one JSON object per line:
 *
 *   {"hash":"<64 hex>","prev":"<64 hex>","record":{...}}
 *
 * where prev is the hash of the line before (64 zeros for the first line of a file) and hash
 * is SHA-256 over the 64 characters of prev followed by the bytes of the record exactly as the
 * line holds them. A line removed or altered breaks the chain at that line; archive_verify
 * names it. The records' keys are sorted, so a record always reads the same.
 *
 * Glossary
 *   item     the store's name of a record due for deletion: "h:<hold id>" or "p:<placement id>".
 *   head     the hash of a file's last line: logged after every append, so that a file cut
 *            short at its end (which no chain can show by itself) can be checked against it.
 */
#ifndef FRISTAD_ARCHIVE_H
#define FRISTAD_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <msgpack.h>

#define ARCHIVE_HASH_HEX 64u

struct archive_head {
    char path[4096];                 /* the month's file */
    char hash[ARCHIVE_HASH_HEX + 1]; /* of its last line, after the append */
    unsigned appended;               /* lines written by this append */
};

/* Makes the directory (mode 0700) if it is missing and checks that it is writable. */
int archive_prepare_dir(const char *dir, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Appends one line per element of `records` (an array of {"item": ..., "record": {...}}, as
 * the store's sweep hands them out) to the month's file of `now_ms`, and syncs the file (and
 * the directory, when the file is new) before it returns 0. On -1 nothing of this call is left
 * in the file: the caller must not delete the records. A line cut off by an earlier crash is
 * removed first (its record was never confirmed, so the store still holds it).
 */
int archive_append(const char *dir, int64_t now_ms, const msgpack_object *records,
                   struct archive_head *head, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Checks the chain of one archive file and writes what it found to `out`. Returns 0 when the
 * chain holds (a record archived twice, after an interruption between writing it and deleting
 * it from the store, is reported but is no fault), 1 naming the first line that breaks it, or
 * 2 when the file cannot be read.
 */
int archive_verify(const char *path, FILE *out);

#endif
