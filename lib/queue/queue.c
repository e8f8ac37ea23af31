/* Opening and closing a queue file; the lease heartbeat thread. One SQLite
 * connection per handle, guarded by q->lock: every public call holds the lock
 * for its whole transaction, so calls from many threads serialise per handle,
 * and handles (threads or processes) serialise on SQLite's write lock. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/time.h"
#include "queue/queue_internal.h"
#include "queue/queue_options.h"

static gen_status exec_pragma(sqlite3 *db, const char *path, const char *sql, const char *want)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && want) {
            const char *got = (const char *)sqlite3_column_text(st, 0);
            if (!got || strcmp(got, want) != 0) {
                gen_status s = gen__error(GEN_EDATABASE,
                                          "queue %s: \"%s\" gave \"%s\", expected \"%s\"", path,
                                          sql, got ? got : "(null)", want);
                sqlite3_finalize(st);
                return s;
            }
        }
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    gen_status s = rc == SQLITE_OK ? GEN_OK : gen__queue_sqlite_status(db, rc, path, sql);
    sqlite3_finalize(st);
    return s;
}

/* SQLite's default busy handler sleeps up to 100 ms between tries, which lets
 * a waiting claimer starve while others take the lock (p99 claim latency near
 * a second with 8 connections). Short jittered sleeps keep the tail short;
 * the total wait is still bounded by busy_timeout_ms, then GEN_EBUSY. */
static int busy_wait(void *arg, int count)
{
    gen_queue *q = arg;
    int64_t now = gen__monotonic_ns();
    if (count == 0)
        q->busy_since_ns = now;
    if (now - q->busy_since_ns >= (int64_t)q->opts.busy_timeout_ms * 1000000)
        return 0;
    int64_t us = count < 20 ? 50 * (int64_t)(count + 1) : 1000;
    q->busy_seed = q->busy_seed * 6364136223846793005ull + 1442695040888963407ull;
    us = us / 2 + (int64_t)((q->busy_seed >> 33) % (uint64_t)us);
    struct timespec ts = {0, (long)(us * 1000)};
    nanosleep(&ts, NULL);
    return 1;
}

static void *heartbeat_main(void *arg)
{
    gen_queue *q = arg;
    pthread_mutex_lock(&q->hb_lock);
    while (!q->hb_stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        int64_t ns = until.tv_nsec + (int64_t)q->opts.heartbeat_ms * 1000000;
        until.tv_sec += ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        while (!q->hb_stop && pthread_cond_timedwait(&q->hb_cond, &q->hb_lock, &until) != ETIMEDOUT) {
        }
        if (q->hb_stop)
            break;
        pthread_mutex_unlock(&q->hb_lock);
        if (gen_queue_heartbeat(q) != GEN_OK)
            GEN__LOG_WARN(&q->logger, "queue %s: lease renewal failed: %s", q->path,
                          gen_last_error_message());
        pthread_mutex_lock(&q->hb_lock);
    }
    pthread_mutex_unlock(&q->hb_lock);
    return NULL;
}

static gen_status start_heartbeat(gen_queue *q)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int err = pthread_cond_init(&q->hb_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (err)
        return gen__error(GEN_ENOMEM, "queue %s: cannot create the heartbeat condition", q->path);
    if (q->opts.heartbeat_ms == 0)
        return GEN_OK;
    err = pthread_create(&q->hb_thread, NULL, heartbeat_main, q);
    if (err)
        return gen__error(GEN_ENOMEM, "queue %s: cannot start the heartbeat thread: %s", q->path,
                          strerror(err));
    q->hb_running = true;
    return GEN_OK;
}

static void stop_heartbeat(gen_queue *q)
{
    if (!q->hb_running)
        return;
    pthread_mutex_lock(&q->hb_lock);
    q->hb_stop = true;
    pthread_cond_signal(&q->hb_cond);
    pthread_mutex_unlock(&q->hb_lock);
    pthread_join(q->hb_thread, NULL);
    q->hb_running = false;
}

static gen_status prune_history(gen_queue *q)
{
    if (q->opts.max_queue_history == 0)
        return GEN_OK;
    static const char sql[] =
        "DELETE FROM queue_items WHERE item_id IN (SELECT item_id FROM (SELECT item_id,"
        " ROW_NUMBER() OVER (PARTITION BY queue_id ORDER BY"
        "  COALESCE(completed_at, updated_at, created_at) DESC, item_id DESC) AS rn"
        " FROM queue_items WHERE status IN ('completed', 'failed', 'canceled')) WHERE rn > ?)";
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(q, sql, &st);
    if (s != GEN_OK)
        return s;
    sqlite3_bind_int64(st, 1, q->opts.max_queue_history);
    return gen__queue_step_done(q, st, "pruning history");
}

/* Lease row, recovery and history in one transaction. */
static gen_status startup(gen_queue *q)
{
    gen_status st = gen__queue_begin(q, "opening");
    if (st != GEN_OK)
        return st;
    uint64_t recovered = 0;
    if ((st = gen__queue_lease_renew(q)) != GEN_OK ||
        (st = gen__queue_recover_locked(q, &recovered)) != GEN_OK ||
        (st = prune_history(q)) != GEN_OK || (st = gen__queue_commit(q, "opening")) != GEN_OK) {
        gen__queue_rollback(q);
        return st;
    }
    /* Nobody can have registered a callback yet: the events of recovery at
     * open go nowhere (the log says what happened). */
    gen__queue_events_drop(q);
    if (recovered)
        GEN__LOG_WARN(&q->logger, "queue %s: recovered %llu item(s) left in progress by dead "
                                  "workers",
                      q->path, (unsigned long long)recovered);
    return GEN_OK;
}

static void destroy(gen_queue *q)
{
    gen__queue_events_drop(q);
    gen__free(q->events);
    gen__queue_stmts_finalize(q);
    if (q->db)
        sqlite3_close_v2(q->db);
    gen__queue_gate_put(q->gate);
    pthread_mutex_destroy(&q->lock);
    pthread_mutex_destroy(&q->hb_lock);
    gen__free(q->path);
    gen__free(q);
}

GEN_API gen_status gen_queue_open(gen_queue **out, const char *path, const gen_queue_options *opts)
{
    if (!out)
        return gen__error(GEN_EINVAL, "gen_queue_open: out pointer is NULL");
    *out = NULL;
    if (!path || !path[0])
        return gen__error(GEN_EINVAL, "gen_queue_open: the database path is NULL or empty");
    gen_queue_options options;
    gen_status st = gen__queue_options_import(&options, opts);
    if (st != GEN_OK)
        return st;
    gen_queue *q = gen__calloc(1, sizeof(*q));
    if (!q)
        return gen__error(GEN_ENOMEM, "gen_queue_open: cannot allocate the queue");
    pthread_mutex_init(&q->lock, NULL);
    pthread_mutex_init(&q->hb_lock, NULL);
    q->opts = options;
    q->logger.fn = options.log_fn;
    q->logger.user_data = options.log_user_data;
    q->logger.level = (gen_log_level)options.log_level;
    q->path = gen__strdup(path);
    if (!q->path) {
        destroy(q);
        return gen__error(GEN_ENOMEM, "gen_queue_open: cannot allocate the path");
    }
    int rc = sqlite3_open_v2(path, &q->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        st = gen__queue_sqlite_status(q->db, rc, path, "opening");
        destroy(q);
        return st;
    }
    sqlite3_extended_result_codes(q->db, 1);
    q->busy_seed = (uint64_t)gen__monotonic_ns() ^ (uint64_t)(uintptr_t)q;
    sqlite3_busy_handler(q->db, busy_wait, q);
    /* The first read of the file: a non-SQLite file fails here. */
    if ((st = exec_pragma(q->db, path, "PRAGMA journal_mode=WAL", "wal")) != GEN_OK ||
        (st = exec_pragma(q->db, path, "PRAGMA synchronous=FULL", NULL)) != GEN_OK ||
        (st = gen__queue_migrate(q->db, path, GEN__QUEUE_SCHEMA_VERSION)) != GEN_OK) {
        destroy(q);
        return st;
    }
    if ((st = gen__queue_gate_get(path, &q->gate)) != GEN_OK) {
        destroy(q);
        return st;
    }
    gen__queue_random_hex(q->owner, 16);
    gen__queue_host_key(q->host, sizeof(q->host));
    if ((st = startup(q)) != GEN_OK) {
        destroy(q);
        return st;
    }
    if ((st = start_heartbeat(q)) != GEN_OK) {
        destroy(q);
        return st;
    }
    *out = q;
    return GEN_OK;
}

GEN_API void gen_queue_close(gen_queue *q)
{
    if (!q)
        return;
    stop_heartbeat(q);
    pthread_cond_destroy(&q->hb_cond);
    pthread_mutex_lock(&q->lock);
    /* Release the lease: what this handle still has in progress is recovered
     * by the next open or gen_queue_recover (best effort; a failure here only
     * means the lease runs out instead). */
    sqlite3_stmt *st;
    if (gen__queue_stmt(q, "DELETE FROM queue_owners WHERE owner = ?", &st) == GEN_OK) {
        sqlite3_bind_text(st, 1, q->owner, -1, SQLITE_STATIC);
        gen__queue_step_done(q, st, "releasing the lease");
    }
    pthread_mutex_unlock(&q->lock);
    destroy(q);
}

GEN_API gen_status gen_queue_heartbeat(gen_queue *q)
{
    if (!q)
        return gen__error(GEN_EINVAL, "gen_queue_heartbeat: queue is NULL");
    pthread_mutex_lock(&q->lock);
    gen_status st = gen__queue_lease_renew(q);
    pthread_mutex_unlock(&q->lock);
    return st;
}

GEN_API gen_status gen_queue_recover(uint64_t *out_recovered, gen_queue *q)
{
    if (out_recovered)
        *out_recovered = 0;
    if (!q)
        return gen__error(GEN_EINVAL, "gen_queue_recover: queue is NULL");
    pthread_mutex_lock(&q->lock);
    uint64_t n = 0;
    gen_status st = gen__queue_begin(q, "recovering");
    if (st == GEN_OK && (st = gen__queue_lease_renew(q)) == GEN_OK &&
        (st = gen__queue_recover_locked(q, &n)) == GEN_OK)
        st = gen__queue_commit(q, "recovering");
    if (st != GEN_OK) {
        gen__queue_rollback(q);
        pthread_mutex_unlock(&q->lock);
        return st;
    }
    gen__queue_unlock_and_dispatch(q);
    if (out_recovered)
        *out_recovered = n;
    return GEN_OK;
}
