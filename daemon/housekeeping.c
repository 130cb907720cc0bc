/* Housekeeping: see housekeeping.h. */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "archive.h"
#include "clock.h"
#include "daemon.h"
#include "followup.h"
#include "housekeeping.h"
#include "log.h"
#include "ops.h"
#include "store.h"

struct housekeeping {
    struct daemon *d;
    struct event *timer;
    bool sweep_inflight;
    bool purge_pending;      /* the sweep deleted records the append-only file still holds */
    int64_t last_rewrite_ms; /* monotonic: when an append-only file rewrite was last asked for */
    bool told_kept;          /* logged that delete mode keeps records for an archive */
};

/*
 * How long the records a sweep hands out for archiving stay claimed by this daemon: far longer
 * than writing them and telling the store takes, so that a second copy is rare, and short
 * enough that after a crash or a failed write the next try comes soon.
 */
static int64_t archive_lease_ms(const struct config *cfg)
{
    int64_t ms = 20 * cfg->sweep_interval_ms;
    return (ms > 5000 ? ms : 5000) + cfg->wait_timeout_ms;
}

static void archive_records(struct housekeeping *hk, const msgpack_object *records);
static void note_kept(struct housekeeping *hk, const msgpack_object *result);

static void on_rewrite_done(const struct store_result *res, void *ud)
{
    struct housekeeping *hk = ud;
    if (res->err) {
        hk->purge_pending = true; /* a rewrite already under way, or the store is down: later */
        log_debug("append-only file rewrite not started: %s", res->msg ? res->msg : "?");
    } else {
        log_info("deleted records: Redis is rewriting its append-only file");
    }
}

static void on_sweep_done(const struct store_result *res, void *ud)
{
    struct housekeeping *hk = ud;
    hk->sweep_inflight = false;
    if (res->err && res->err != PROTO_E_UNAVAILABLE && res->err != PROTO_E_OUTCOME_UNKNOWN)
        log_warning("sweep failed: %s", res->msg ? res->msg : proto_err_code(res->err));
    const msgpack_object *purged = res->err ? NULL : proto_map_get(res->result, "purged");
    if (purged && purged->type == MSGPACK_OBJECT_POSITIVE_INTEGER && purged->via.u64 > 0)
        hk->purge_pending = true;
    if (!res->err) {
        archive_records(hk, proto_map_get(res->result, "archive"));
        note_kept(hk, res->result);
    }
}

/* ---- archive mode ----------------------------------------------------------------------- */

static void on_archived(const struct store_result *res, void *ud)
{
    struct housekeeping *hk = ud;
    const msgpack_object *purged = res->err ? NULL : proto_map_get(res->result, "purged");
    if (res->err)
        log_warning("archived records were not deleted yet (%s); the sweep hands them out "
                    "again and they are archived a second time",
                    res->msg ? res->msg : proto_err_code(res->err));
    else if (purged && purged->type == MSGPACK_OBJECT_POSITIVE_INTEGER && purged->via.u64 > 0)
        hk->purge_pending = true; /* off the disk too: the append-only file rewrite */
}

/*
 * Archive mode: the sweep handed out the records that are due, claimed for a while. They are
 * appended to the archive and synced to disk, and only then does the store delete them. When
 * the append fails, nothing is deleted: the claim runs out and the next sweep tries again.
 */
static void archive_records(struct housekeeping *hk, const msgpack_object *records)
{
    if (!records || records->type != MSGPACK_OBJECT_ARRAY || records->via.array.size == 0)
        return;
    struct archive_head head;
    char err[512] = "";
    if (archive_append(hk->d->cfg->archive_dir, clock_wall_ms(), records, &head, err, sizeof err) <
        0) {
        log_error("archiving %u records failed: %s; they stay in the store and are tried again",
                  records->via.array.size, err);
        return;
    }
    log_notice("archived %u records to %s; chain head %s", head.appended, head.path, head.hash);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 1);
    rc |= proto_pack_cstr(&pk, "items");
    rc |= msgpack_pack_array(&pk, records->via.array.size);
    for (uint32_t i = 0; i < records->via.array.size; i++) {
        const msgpack_object *item = proto_map_get(&records->via.array.ptr[i], "item");
        rc |= item ? msgpack_pack_object(&pk, *item) : msgpack_pack_nil(&pk);
    }
    if (rc != 0 || store_call(hk->d->store, "archived", STORE_WRITE, "system:archive", "archive",
                              sb.data, sb.size, on_archived, hk) != 0)
        log_warning("archived records cannot be deleted now; the sweep hands them out again");
    msgpack_sbuffer_destroy(&sb);
}

/* Delete mode on a store that has been archived into: records are kept, said once. */
static void note_kept(struct housekeeping *hk, const msgpack_object *result)
{
    const msgpack_object *kept = proto_map_get(result, "kept_for_archive");
    if (!kept || hk->told_kept)
        return;
    hk->told_kept = true;
    log_warning("records past their retention are kept for a daemon in archive mode: one has "
                "archived into this store, and nothing it has not archived may be deleted. Once "
                "no daemon archives any more, delete the key {%s}:retention in Redis to delete "
                "again",
                hk->d->cfg->redis_namespace);
}

/* The sweep's arguments: whether due records are deleted or handed out for the archive. */
static int pack_sweep_args(const struct config *cfg, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    bool archive = cfg->retention_mode == RETENTION_ARCHIVE;
    int rc = msgpack_pack_map(&pk, archive ? 4 : 3);
    rc |= proto_pack_kv_int(&pk, "escalate_oncall_after", cfg->escalate_oncall_after_ms);
    rc |= proto_pack_kv_int(&pk, "event_max", cfg->event_max);
    rc |= proto_pack_kv_str(&pk, "retention", archive ? "archive" : "delete");
    if (archive)
        rc |= proto_pack_kv_int(&pk, "lease", archive_lease_ms(cfg));
    return rc;
}

/*
 * Deleting a record in Redis does not delete it from the append-only file, which holds every
 * write until it is rewritten; references past their retention must leave the disk too.
 */
static void maybe_rewrite(struct housekeeping *hk)
{
    const struct config *cfg = hk->d->cfg;
    int64_t now = clock_mono_ms();
    if (!hk->purge_pending || cfg->disk_purge_delay_ms == 0 ||
        now - hk->last_rewrite_ms < cfg->disk_purge_delay_ms)
        return;
    if (store_rewrite_aof(hk->d->store, on_rewrite_done, hk) == 0) {
        hk->purge_pending = false;
        hk->last_rewrite_ms = now;
    }
}

static void on_counts_done(const struct store_result *res, void *ud)
{
    struct housekeeping *hk = ud;
    struct daemon *d = hk->d;
    if (res->err && res->err != PROTO_E_UNAVAILABLE && res->err != PROTO_E_OUTCOME_UNKNOWN)
        log_warning("follow-up: search counts not added, retrying: %s",
                    res->msg ? res->msg : proto_err_code(res->err));
    followup_batch_done(&d->counts, res->err == PROTO_OK, &d->metrics.searches_flushed);
}

/*
 * Sends the search counts to the store: the batch that was sent before and not answered, or
 * the counts since, as a new batch. The store adds a batch once however often it arrives, so
 * a lost reply is answered by sending the same batch again.
 */
void housekeeping_flush_counts(struct housekeeping *hk)
{
    struct daemon *d = hk->d;
    const struct followup_batch *b = followup_next_batch(d->counts.tally);
    if (!b || !store_ready(d->store))
        return;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (followup_pack_batch(d->counts.tally, b, &pk) == 0 &&
        store_call(d->store, "search_stat", STORE_WRITE, "system:counts", "search_stat", sb.data,
                   sb.size, on_counts_done, hk) == 0)
        d->counts.tally->inflight = true;
    msgpack_sbuffer_destroy(&sb);
}

bool housekeeping_counts_settled(const struct housekeeping *hk)
{
    return followup_settled(&hk->d->counts);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct housekeeping *hk = arg;
    maybe_rewrite(hk);
    housekeeping_flush_counts(hk);
    if (hk->sweep_inflight || !store_ready(hk->d->store))
        return;
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    if (pack_sweep_args(hk->d->cfg, &args) == 0 &&
        store_call(hk->d->store, "sweep", STORE_WRITE, "system:sweep", "sweep", args.data,
                   args.size, on_sweep_done, hk) == 0)
        hk->sweep_inflight = true;
    msgpack_sbuffer_destroy(&args);
}

struct housekeeping *housekeeping_new(struct daemon *d)
{
    struct housekeeping *hk = calloc(1, sizeof *hk);
    if (!hk)
        return NULL;
    hk->d = d;
    if (!d->counts.tally && !(d->counts.tally = followup_tally_new())) {
        free(hk);
        return NULL;
    }
    hk->last_rewrite_ms = clock_mono_ms() - d->cfg->disk_purge_delay_ms;
    if (!(hk->timer = event_new(d->base, -1, EV_PERSIST, on_timer, hk))) {
        free(hk);
        return NULL;
    }
    return hk;
}

void housekeeping_arm(struct housekeeping *hk)
{
    int64_t ms = hk->d->cfg->sweep_interval_ms;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000 * 1000)};
    event_del(hk->timer);
    event_add(hk->timer, &tv);
}

void housekeeping_free(struct housekeeping *hk)
{
    if (!hk)
        return;
    event_free(hk->timer);
    followup_tally_free(hk->d->counts.tally);
    hk->d->counts.tally = NULL;
    free(hk);
}
