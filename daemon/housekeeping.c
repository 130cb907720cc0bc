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
#include "refusals.h"
#include "store.h"

/*
 * The rewrite owed is kept in Redis, not here: every sweep that deletes records counts up
 * purge_gen, and a rewrite that completed after the sweep reporting generation G sets
 * rewritten_gen to G. A daemon stopped within the purge delay, or killed while Redis
 * rewrote, leaves purge_gen ahead, and the next daemon's first sweep sees the debt.
 */
enum rewrite_state {
    REWRITE_IDLE,    /* no rewrite of ours under way */
    REWRITE_ASKING,  /* BGREWRITEAOF sent, not answered yet */
    REWRITE_RUNNING, /* Redis rewrites for generation rewrite_gen; polled until done */
};

struct housekeeping {
    struct daemon *d;
    struct event *timer;
    bool sweep_inflight;
    bool purge_pending;       /* the last sweep said: deleted records are still on disk */
    uint64_t purge_gen;       /* the generation it reported */
    enum rewrite_state state; /* changed by set_rewrite alone */
    uint64_t rewrite_gen;     /* REWRITE_RUNNING: the generation this rewrite takes off disk */
    bool status_inflight;     /* an INFO persistence is out */
    int64_t last_rewrite_ms;  /* monotonic: when an append-only file rewrite was last asked for */
    bool told_kept;           /* logged that delete mode keeps records for an archive */
};

static void set_rewrite(struct housekeeping *hk, enum rewrite_state next)
{
    hk->state = next;
}

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
        set_rewrite(hk, REWRITE_IDLE); /* one already under way, or the store is down: later */
        log_debug("append-only file rewrite not started: %s", res->msg ? res->msg : "?");
    } else {
        set_rewrite(hk, REWRITE_RUNNING);
        log_info("deleted records: Redis is rewriting its append-only file");
    }
}

static void on_rewrite_status(enum store_aof_status status, void *ud)
{
    struct housekeeping *hk = ud;
    hk->status_inflight = false;
    if (hk->state != REWRITE_RUNNING || status == STORE_AOF_BUSY)
        return;
    if (status == STORE_AOF_DONE) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        int rc = msgpack_pack_map(&pk, 1);
        rc |= proto_pack_kv_int(&pk, "gen", (int64_t)hk->rewrite_gen);
        /* Lost with the link, the mark is owed again: one rewrite more, never one less. */
        if (rc == 0 && store_call(hk->d->store, "aof_rewritten", STORE_WRITE, "system:sweep",
                                  "aof_rewritten", sb.data, sb.size, NULL, NULL) != 0)
            log_debug("append-only file rewritten; the mark waits for the store");
        msgpack_sbuffer_destroy(&sb);
    } else {
        log_warning("Redis's append-only file rewrite failed; deleted records are still on disk, "
                    "trying again");
    }
    set_rewrite(hk, REWRITE_IDLE);
}

static uint64_t result_u64(const msgpack_object *r, const char *key)
{
    const msgpack_object *o = r ? proto_map_get(r, key) : NULL;
    return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

static void on_sweep_done(const struct store_result *res, void *ud)
{
    struct housekeeping *hk = ud;
    hk->sweep_inflight = false;
    if (res->err && res->err != PROTO_E_UNAVAILABLE && res->err != PROTO_E_OUTCOME_UNKNOWN)
        log_warning("sweep failed: %s", res->msg ? res->msg : proto_err_code(res->err));
    if (res->err)
        return;
    hk->purge_gen = result_u64(res->result, "purge_gen");
    hk->purge_pending = hk->purge_gen > result_u64(res->result, "rewritten_gen");
    archive_records(hk, proto_map_get(res->result, "archive"));
    note_kept(hk, res->result);
}

/* ---- archive mode ----------------------------------------------------------------------- */

/* Deleted records owe the disk a rewrite too: the store counted them in purge_gen, which the
 * next sweep reports. */
static void on_archived(const struct store_result *res, void *ud)
{
    (void)ud;
    if (res->err)
        log_warning("archived records were not deleted yet (%s); the sweep hands them out "
                    "again and they are archived a second time",
                    res->msg ? res->msg : proto_err_code(res->err));
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
    if (hk->state == REWRITE_RUNNING && !hk->status_inflight) {
        if (store_aof_rewrite_status(hk->d->store, on_rewrite_status, hk) == 0)
            hk->status_inflight = true;
        return;
    }
    if (hk->state != REWRITE_IDLE || !hk->purge_pending || cfg->disk_purge_delay_ms == 0 ||
        now - hk->last_rewrite_ms < cfg->disk_purge_delay_ms)
        return;
    if (store_rewrite_aof(hk->d->store, on_rewrite_done, hk) == 0) {
        set_rewrite(hk, REWRITE_ASKING);
        hk->rewrite_gen = hk->purge_gen;
        hk->purge_pending = false;
        hk->last_rewrite_ms = now;
    }
}

/* One entry for the refusals of a person's window beyond those recorded one by one. */
static void emit_refusals(const char *principal, const char *person, const char *code,
                          uint64_t count, void *ud)
{
    struct housekeeping *hk = ud;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 2);
    rc |= proto_pack_kv_str(&pk, "result", code);
    rc |= proto_pack_kv_int(&pk, "count", (int64_t)count);
    struct store_caller who = {.name = principal, .person = person[0] ? person : NULL};
    if (rc != 0 || store_call_as(hk->d->store, "audit_note", STORE_WRITE, &who, "refusals", sb.data,
                                 sb.size, NULL, NULL) != 0)
        log_warning("%s: %llu refusals could not be audited: store down", principal,
                    (unsigned long long)count);
    msgpack_sbuffer_destroy(&sb);
}

static void flush_search_counts(struct housekeeping *hk);

static void flush_refusals(struct housekeeping *hk, bool all)
{
    const struct config *cfg = hk->d->cfg;
    refusals_flush(hk->d->refusals, clock_wall_ms(), cfg->refusal_window_ms, all, emit_refusals,
                   hk);
}

void housekeeping_flush_counts(struct housekeeping *hk)
{
    flush_refusals(hk, true);
    flush_search_counts(hk);
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
static void flush_search_counts(struct housekeeping *hk)
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
    flush_refusals(hk, false);
    flush_search_counts(hk);
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
