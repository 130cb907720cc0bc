/* Housekeeping: see housekeeping.h. */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

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
};

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
    const struct config *cfg = hk->d->cfg;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 2);
    rc |= proto_pack_kv_int(&pk, "escalate_oncall_after", cfg->escalate_oncall_after_ms);
    rc |= proto_pack_kv_int(&pk, "event_max", cfg->event_max);
    if (rc == 0 && store_call(hk->d->store, "sweep", STORE_WRITE, "system:sweep", "sweep", sb.data,
                              sb.size, on_sweep_done, hk) == 0)
        hk->sweep_inflight = true;
    msgpack_sbuffer_destroy(&sb);
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
