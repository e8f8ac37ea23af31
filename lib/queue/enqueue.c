/* Enqueue a batch (job x runs with seed increments, or a list of jobs) in one
 * transaction, capped by max_queue_size pending items per queue. */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/time.h"
#include "core/utf8.h"
#include "core/versioned.h"
#include "queue/queue_internal.h"

#define FIELD_MAX 1024 /* bytes of an id, origin or destination */

static const size_t batch_size_by_version[] = {
    0,
    sizeof(gen_queue_batch), /* 1 */
};

_Static_assert(sizeof(batch_size_by_version) / sizeof(batch_size_by_version[0]) ==
                   GEN_QUEUE_BATCH_VERSION + 1,
               "one size per batch version");

gen_status gen__queue_check_text(const char *what, const char *text, bool allow_empty)
{
    if (!text)
        return GEN_OK;
    size_t n = strnlen(text, FIELD_MAX + 1);
    if (n > FIELD_MAX)
        return gen__error(GEN_EINVAL, "%s: longer than %d bytes", what, FIELD_MAX);
    if (n == 0 && !allow_empty)
        return gen__error(GEN_EINVAL, "%s: must not be empty", what);
    if (!gen__utf8_valid(text, n))
        return gen__error(GEN_EINVAL, "%s: not valid UTF-8", what);
    return GEN_OK;
}

static gen_status check_batch(const gen_queue_batch *b)
{
    gen_status st;
    if ((st = gen__queue_check_text("queue_id", b->queue_id, false)) != GEN_OK ||
        (st = gen__queue_check_text("user_id", b->user_id, false)) != GEN_OK ||
        (st = gen__queue_check_text("batch_id", b->batch_id, false)) != GEN_OK ||
        (st = gen__queue_check_text("origin", b->origin, true)) != GEN_OK ||
        (st = gen__queue_check_text("destination", b->destination, true)) != GEN_OK)
        return st;
    if (b->job && b->jobs)
        return gen__error(GEN_EINVAL, "batch: set either job (with runs) or jobs, not both");
    if (!b->job && !b->jobs)
        return gen__error(GEN_EINVAL, "batch: no job (set job with runs, or jobs with job_count)");
    if (b->job && b->runs == 0)
        return gen__error(GEN_EINVAL, "batch: runs must be at least 1");
    if (b->jobs && b->job_count == 0)
        return gen__error(GEN_EINVAL, "batch: job_count is 0");
    return GEN_OK;
}

void gen__queue_enqueued_free(gen_queue_enqueued *r)
{
    if (!r)
        return;
    gen__free(r->ids);
    gen__free(r->batch_id);
    gen__free(r);
}

gen_status gen__queue_enqueued_new(size_t cap, const char *batch_id, gen_queue_enqueued **out)
{
    gen_queue_enqueued *r = gen__calloc(1, sizeof(*r));
    if (r) {
        r->ids = gen__calloc(cap ? cap : 1, sizeof(int64_t));
        r->batch_id = batch_id ? gen__strdup(batch_id) : NULL;
    }
    if (!r || !r->ids || (batch_id && !r->batch_id)) {
        gen__queue_enqueued_free(r);
        return gen__error(GEN_ENOMEM, "queue: cannot allocate the result of %zu items", cap);
    }
    *out = r;
    return GEN_OK;
}

gen_status gen__queue_pending_room(gen_queue *q, const char *queue_id, size_t *room)
{
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(
        q, "SELECT COUNT(*) FROM queue_items WHERE queue_id = ? AND status = 'pending'", &st);
    if (s != GEN_OK)
        return s;
    sqlite3_bind_text(st, 1, queue_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t pending = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return gen__queue_db_error(q, rc, "counting pending items");
    *room = pending >= (int64_t)q->opts.max_queue_size
                ? 0
                : (size_t)((int64_t)q->opts.max_queue_size - pending);
    return GEN_OK;
}

gen_status gen__queue_insert(gen_queue *q, const char *queue_id, const char *batch_id,
                             const char *user_id, const char *job, const char *model,
                             int32_t priority, const char *origin, const char *destination,
                             int64_t retried_from, int64_t now, int64_t *id)
{
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(
        q,
        "INSERT INTO queue_items(queue_id, batch_id, user_id, job, model, priority, origin,"
        " destination, retried_from, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &st);
    if (s != GEN_OK)
        return s;
    sqlite3_bind_text(st, 1, queue_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, batch_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, job, -1, SQLITE_STATIC);
    gen__queue_bind_text(st, 5, model);
    sqlite3_bind_int(st, 6, priority);
    gen__queue_bind_text(st, 7, origin);
    gen__queue_bind_text(st, 8, destination);
    if (retried_from)
        sqlite3_bind_int64(st, 9, retried_from);
    else
        sqlite3_bind_null(st, 9);
    sqlite3_bind_int64(st, 10, now);
    sqlite3_bind_int64(st, 11, now);
    if ((s = gen__queue_step_done(q, st, "inserting an item")) != GEN_OK)
        return s;
    *id = sqlite3_last_insert_rowid(q->db);
    return GEN_OK;
}

static gen_status prepend_priority(gen_queue *q, const char *queue_id, int32_t *out)
{
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(q,
                                   "SELECT COALESCE(MAX(priority), 0) FROM queue_items"
                                   " WHERE queue_id = ? AND status = 'pending'",
                                   &st);
    if (s != GEN_OK)
        return s;
    sqlite3_bind_text(st, 1, queue_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t max = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return gen__queue_db_error(q, rc, "reading the highest priority");
    if (max >= INT32_MAX)
        return gen__error(GEN_EINVAL, "prepend: the highest pending priority is already %lld",
                          (long long)max);
    *out = (int32_t)(max + 1);
    return GEN_OK;
}

/* Parse every job up front, so that a bad one leaves nothing written. */
static gen_status parse_jobs(gen_queue *q, const gen_queue_batch *b, gen__queue_job_info *infos,
                             size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *text = b->job ? b->job : b->jobs[i];
        if (!text)
            return gen__error(GEN_EINVAL, "batch: job %zu is NULL", i);
        gen_status st = gen__queue_job_parse(text, strlen(text), q->opts.max_job_bytes, &infos[i]);
        if (st != GEN_OK)
            return b->job ? st : gen__error_prefix("batch job %zu: ", i);
    }
    return GEN_OK;
}

static gen_status insert_all(gen_queue *q, const gen_queue_batch *b, const char *queue_id,
                             const char *user_id, const gen__queue_job_info *infos,
                             gen_queue_enqueued *r, size_t requested)
{
    size_t room;
    gen_status st = gen__queue_pending_room(q, queue_id, &room);
    if (st != GEN_OK)
        return st;
    if (room == 0)
        return gen__error(GEN_EFULL,
                          "queue \"%s\" is full: %u pending items (max_queue_size); nothing of "
                          "the %zu requested was enqueued",
                          queue_id, (unsigned)q->opts.max_queue_size, requested);
    size_t n = requested < room ? requested : room;
    int32_t priority = b->priority;
    if (b->prepend && (st = prepend_priority(q, queue_id, &priority)) != GEN_OK)
        return st;
    int64_t now = gen__wall_ms();
    gen__queue_reseeder *reseeder = NULL;
    char *reseeded = NULL;
    size_t reseeded_cap = 0;
    if (b->job && n > 1 && infos[0].has_seed)
        st = gen__queue_reseeder_new(b->job, strlen(b->job), &reseeder);
    for (size_t i = 0; st == GEN_OK && i < n; i++) {
        const gen__queue_job_info *info = b->job ? &infos[0] : &infos[i];
        const char *text = b->job ? b->job : b->jobs[i];
        /* Run 0 keeps the caller's text byte for byte. */
        if (reseeder && i > 0) {
            st = gen__queue_reseed(reseeder, info->seed + (int64_t)i, &reseeded, &reseeded_cap);
            text = reseeded;
        }
        if (st == GEN_OK)
            st = gen__queue_insert(q, queue_id, r->batch_id, user_id, text, info->model, priority,
                                   b->origin, b->destination, 0, now, &r->ids[i]);
        if (st == GEN_OK)
            r->count++;
    }
    gen__free(reseeded);
    gen__queue_reseeder_free(reseeder);
    return st;
}

GEN_API gen_status gen_queue_enqueue(gen_queue_enqueued **out, gen_queue *q,
                                     const gen_queue_batch *batch)
{
    if (!out)
        return gen__error(GEN_EINVAL, "gen_queue_enqueue: out pointer is NULL");
    *out = NULL;
    if (!q || !batch)
        return gen__error(GEN_EINVAL, "gen_queue_enqueue: queue or batch is NULL");
    gen_queue_batch b = GEN_QUEUE_BATCH_INIT;
    gen_status st = gen__versioned_copy(&b, batch, batch_size_by_version, GEN_QUEUE_BATCH_VERSION,
                                        "gen_queue_batch");
    if (st != GEN_OK || (st = check_batch(&b)) != GEN_OK)
        return st;
    const char *queue_id = b.queue_id ? b.queue_id : "default";
    const char *user_id = b.user_id ? b.user_id : "system";
    size_t requested = b.job ? b.runs : b.job_count;
    size_t parsed = b.job ? 1 : b.job_count;
    size_t cap = requested < q->opts.max_queue_size ? requested : q->opts.max_queue_size;
    gen__queue_job_info *infos = gen__calloc(parsed, sizeof(*infos));
    if (!infos)
        return gen__error(GEN_ENOMEM, "gen_queue_enqueue: cannot allocate %zu job records", parsed);
    char batch_id[40];
    if (!b.batch_id)
        gen__queue_random_hex(batch_id, 16);
    gen_queue_enqueued *r = NULL;
    if ((st = parse_jobs(q, &b, infos, parsed)) == GEN_OK &&
        (st = gen__queue_enqueued_new(cap, b.batch_id ? b.batch_id : batch_id, &r)) == GEN_OK) {
        r->requested = requested;
        pthread_mutex_lock(&q->lock);
        st = gen__queue_begin(q, "enqueueing");
        if (st == GEN_OK && (st = insert_all(q, &b, queue_id, user_id, infos, r, requested)) ==
                                GEN_OK)
            st = gen__queue_commit(q, "enqueueing");
        if (st != GEN_OK)
            gen__queue_rollback(q);
        pthread_mutex_unlock(&q->lock);
    }
    for (size_t i = 0; i < parsed; i++)
        gen__queue_job_info_free(&infos[i]);
    gen__free(infos);
    if (st != GEN_OK) {
        gen__queue_enqueued_free(r);
        return st;
    }
    *out = r;
    return GEN_OK;
}

GEN_API size_t gen_queue_enqueued_count(const gen_queue_enqueued *r)
{
    return r ? r->count : 0;
}

GEN_API size_t gen_queue_enqueued_requested(const gen_queue_enqueued *r)
{
    return r ? r->requested : 0;
}

GEN_API int64_t gen_queue_enqueued_item_id(const gen_queue_enqueued *r, size_t index)
{
    return r && index < r->count ? r->ids[index] : 0;
}

GEN_API const char *gen_queue_enqueued_batch_id(const gen_queue_enqueued *r)
{
    return r ? r->batch_id : NULL;
}

GEN_API void gen_queue_enqueued_destroy(gen_queue_enqueued *r)
{
    gen__queue_enqueued_free(r);
}
