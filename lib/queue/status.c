/* Status changes, cancellation, deletion and retry. Terminal states are final:
 * changing a completed, failed or canceled item is a no-op. Every row a call
 * changes emits one event (after commit). Scope: without admin rights only the
 * caller's own items are touched. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/time.h"
#include "core/utf8.h"
#include "queue/queue_internal.h"

#define ERROR_TEXT_MAX 65536

static const char *const status_names[] = {"pending", "in_progress", "completed", "failed",
                                           "canceled"};

GEN_API const char *gen_queue_status_name(int32_t status)
{
    if (status < 0 || status > GEN_QUEUE_CANCELED)
        return "unknown";
    return status_names[status];
}

int32_t gen__queue_status_parse(const char *text)
{
    for (int32_t i = 0; i <= GEN_QUEUE_CANCELED; i++)
        if (strcmp(text, status_names[i]) == 0)
            return i;
    return -1;
}

bool gen__queue_status_terminal(int32_t status)
{
    return status == GEN_QUEUE_COMPLETED || status == GEN_QUEUE_FAILED ||
           status == GEN_QUEUE_CANCELED;
}

/* Who may touch what: *scope_user is the user filter (NULL = everyone). */
static gen_status resolve_scope(const char *fn, const char *user_id, int admin,
                                const char **scope_user)
{
    if (!admin && !user_id)
        return gen__error(GEN_EPERM, "%s: a user_id is required without admin rights", fn);
    gen_status st = gen__queue_check_text("user_id", user_id, false);
    if (st != GEN_OK)
        return st;
    *scope_user = user_id;
    return GEN_OK;
}

/* --- one item ----------------------------------------------------------------------------- */

typedef struct row_head {
    int64_t id;
    int32_t status;
    char *queue_id, *batch_id, *user_id, *device, *owner;
} row_head;

static void row_head_free(row_head *r)
{
    gen__free(r->queue_id);
    gen__free(r->batch_id);
    gen__free(r->user_id);
    gen__free(r->device);
    gen__free(r->owner);
}

static gen_status read_head(sqlite3_stmt *st, row_head *r)
{
    bool ok = true;
    r->id = sqlite3_column_int64(st, 0);
    const char *status = (const char *)sqlite3_column_text(st, 1);
    r->status = status ? gen__queue_status_parse(status) : -1;
    r->queue_id = gen__queue_column_dup(st, 2, &ok);
    r->batch_id = gen__queue_column_dup(st, 3, &ok);
    r->user_id = gen__queue_column_dup(st, 4, &ok);
    r->device = gen__queue_column_dup(st, 5, &ok);
    r->owner = gen__queue_column_dup(st, 6, &ok);
    if (!ok)
        return gen__error(GEN_ENOMEM, "queue: out of memory reading an item");
    if (r->status < 0)
        return gen__error(GEN_EDATABASE, "queue: item %lld has an unknown status \"%s\"",
                          (long long)r->id, status ? status : "(null)");
    return GEN_OK;
}

#define HEAD_COLUMNS "item_id, status, queue_id, batch_id, user_id, device, owner"

static gen_status load_head(gen_queue *q, int64_t id, row_head *r, bool *found)
{
    memset(r, 0, sizeof(*r));
    *found = false;
    sqlite3_stmt *st;
    gen_status s =
        gen__queue_stmt(q, "SELECT " HEAD_COLUMNS " FROM queue_items WHERE item_id = ?", &st);
    if (s != GEN_OK)
        return s;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *found = true;
        s = read_head(st, r);
    } else if (rc != SQLITE_DONE) {
        s = gen__queue_db_error(q, rc, "reading an item");
    }
    sqlite3_reset(st);
    return s;
}

static gen_status update_status(gen_queue *q, const row_head *r, int32_t status,
                                const char *error_type, const char *error_message)
{
    int64_t now = gen__wall_ms();
    bool failed = status == GEN_QUEUE_FAILED;
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(
        q,
        "UPDATE queue_items SET status = ?1, error_type = ?2, error_message = ?3,"
        " updated_at = ?4, status_seq = status_seq + 1,"
        " completed_at = CASE WHEN ?1 IN ('completed', 'failed', 'canceled') THEN ?4"
        "  ELSE completed_at END,"
        " started_at = CASE WHEN ?1 = 'in_progress' THEN ?4 ELSE started_at END,"
        " owner = CASE WHEN ?1 = 'in_progress' THEN ?5 WHEN ?1 = 'pending' THEN NULL"
        "  ELSE owner END"
        " WHERE item_id = ?6 AND status NOT IN ('completed', 'failed', 'canceled')",
        &st);
    if (s != GEN_OK)
        return s;
    sqlite3_bind_text(st, 1, gen_queue_status_name(status), -1, SQLITE_STATIC);
    gen__queue_bind_text(st, 2, failed ? error_type : NULL);
    gen__queue_bind_text(st, 3, failed ? error_message : NULL);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_text(st, 5, q->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, r->id);
    if ((s = gen__queue_step_done(q, st, "changing an item's status")) != GEN_OK)
        return s;
    if (sqlite3_changes(q->db) == 0)
        return GEN_OK;
    return gen__queue_event_add(q, r->id, r->status, status, r->queue_id, r->batch_id, r->user_id,
                                r->device, failed ? error_message : NULL);
}

static gen_status check_error_text(const char *what, const char *text)
{
    if (!text)
        return GEN_OK;
    size_t n = strnlen(text, ERROR_TEXT_MAX + 1);
    if (n > ERROR_TEXT_MAX)
        return gen__error(GEN_EINVAL, "%s: longer than %d bytes", what, ERROR_TEXT_MAX);
    if (!gen__utf8_valid(text, n))
        return gen__error(GEN_EINVAL, "%s: not valid UTF-8", what);
    return GEN_OK;
}

GEN_API gen_status gen_queue_set_status(int *out_changed, gen_queue *q, int64_t item_id,
                                        int32_t status, const char *error_type,
                                        const char *error_message)
{
    if (out_changed)
        *out_changed = 0;
    if (!q)
        return gen__error(GEN_EINVAL, "gen_queue_set_status: queue is NULL");
    if (status < GEN_QUEUE_PENDING || status > GEN_QUEUE_CANCELED)
        return gen__error(GEN_EINVAL, "gen_queue_set_status: %d is not a queue status",
                          (int)status);
    gen_status s;
    if ((s = check_error_text("error_type", error_type)) != GEN_OK ||
        (s = check_error_text("error_message", error_message)) != GEN_OK)
        return s;
    pthread_mutex_lock(&q->lock);
    row_head r;
    bool found = false;
    size_t before = 0;
    s = gen__queue_begin(q, "changing an item's status");
    if (s == GEN_OK)
        s = load_head(q, item_id, &r, &found);
    if (s == GEN_OK && !found)
        s = gen__error(GEN_ENOTFOUND, "queue %s: no item %lld", q->path, (long long)item_id);
    /* A result (completed, failed) comes from the handle that runs the item: a
     * worker whose claim was recovered meanwhile must not overwrite the item
     * another worker may be running now. */
    if (s == GEN_OK && !gen__queue_status_terminal(r.status) &&
        (status == GEN_QUEUE_COMPLETED || status == GEN_QUEUE_FAILED) &&
        (r.status != GEN_QUEUE_IN_PROGRESS || !r.owner || strcmp(r.owner, q->owner) != 0))
        s = gen__error(GEN_ESTATE,
                       "queue %s: item %lld is %s and not claimed by this handle; its claim "
                       "may have been recovered after the lease expired",
                       q->path, (long long)item_id, gen_queue_status_name(r.status));
    if (s == GEN_OK && !gen__queue_status_terminal(r.status) && r.status != status) {
        before = q->event_count;
        s = update_status(q, &r, status, error_type, error_message);
    }
    if (s == GEN_OK)
        s = gen__queue_commit(q, "changing an item's status");
    if (found)
        row_head_free(&r);
    if (s != GEN_OK) {
        gen__queue_rollback(q);
        pthread_mutex_unlock(&q->lock);
        return s;
    }
    if (out_changed)
        *out_changed = q->event_count > before;
    gen__queue_unlock_and_dispatch(q);
    return GEN_OK;
}

GEN_API gen_status gen_queue_get_status(int32_t *out_status, gen_queue *q, int64_t item_id)
{
    if (!out_status)
        return gen__error(GEN_EINVAL, "gen_queue_get_status: out pointer is NULL");
    *out_status = -1;
    if (!q)
        return gen__error(GEN_EINVAL, "gen_queue_get_status: queue is NULL");
    pthread_mutex_lock(&q->lock);
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(q, "SELECT status FROM queue_items WHERE item_id = ?", &st);
    if (s == GEN_OK) {
        sqlite3_bind_int64(st, 1, item_id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const char *text = (const char *)sqlite3_column_text(st, 0);
            *out_status = text ? gen__queue_status_parse(text) : -1;
            if (*out_status < 0)
                s = gen__error(GEN_EDATABASE, "queue %s: item %lld has an unknown status",
                               q->path, (long long)item_id);
        } else if (rc == SQLITE_DONE) {
            s = gen__error(GEN_ENOTFOUND, "queue %s: no item %lld", q->path, (long long)item_id);
        } else {
            s = gen__queue_db_error(q, rc, "reading an item's status");
        }
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&q->lock);
    return s;
}

/* --- bulk --------------------------------------------------------------------------------- */

/* Which rows a bulk call matches: queue (?1), user or NULL (?2), and an
 * optional extra value (?3) whose meaning the SQL fixes. */
typedef enum match_kind { MATCH_QUEUE, MATCH_BATCH, MATCH_DESTINATION } match_kind;

static const char *const select_sql[3][2] = {
    /* [kind][only in progress] */
    {"SELECT " HEAD_COLUMNS " FROM queue_items WHERE queue_id = ?1 AND (?2 IS NULL OR "
     "user_id = ?2) AND status IN ('pending', 'in_progress') ORDER BY item_id",
     "SELECT " HEAD_COLUMNS " FROM queue_items WHERE queue_id = ?1 AND (?2 IS NULL OR "
     "user_id = ?2) AND status = 'in_progress' ORDER BY item_id"},
    {"SELECT " HEAD_COLUMNS " FROM queue_items WHERE batch_id = ?3 AND queue_id = ?1 AND (?2 IS "
     "NULL OR user_id = ?2) AND status IN ('pending', 'in_progress') ORDER BY item_id",
     "SELECT " HEAD_COLUMNS " FROM queue_items WHERE batch_id = ?3 AND queue_id = ?1 AND (?2 IS "
     "NULL OR user_id = ?2) AND status = 'in_progress' ORDER BY item_id"},
    {"SELECT " HEAD_COLUMNS " FROM queue_items WHERE queue_id = ?1 AND destination = ?3 AND (?2 "
     "IS NULL OR user_id = ?2) AND status IN ('pending', 'in_progress') ORDER BY item_id",
     "SELECT " HEAD_COLUMNS " FROM queue_items WHERE queue_id = ?1 AND destination = ?3 AND (?2 "
     "IS NULL OR user_id = ?2) AND status = 'in_progress' ORDER BY item_id"},
};

static const char *const delete_sql[3] = {
    "DELETE FROM queue_items WHERE queue_id = ?1 AND (?2 IS NULL OR user_id = ?2)",
    NULL,
    "DELETE FROM queue_items WHERE queue_id = ?1 AND destination = ?3 AND (?2 IS NULL OR "
    "user_id = ?2)",
};

static void bind_match(sqlite3_stmt *st, const char *queue_id, const char *user, const char *extra)
{
    sqlite3_bind_text(st, 1, queue_id, -1, SQLITE_STATIC);
    gen__queue_bind_text(st, 2, user);
    if (sqlite3_bind_parameter_count(st) >= 3)
        gen__queue_bind_text(st, 3, extra);
}

/* Cancel every matching pending (unless only_running) and in-progress row,
 * one event each; *count += rows changed. */
static gen_status cancel_matching(gen_queue *q, match_kind kind, bool only_running,
                                  const char *queue_id, const char *user, const char *extra,
                                  uint64_t *count)
{
    row_head *rows = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(q, select_sql[kind][only_running ? 1 : 0], &st);
    if (s != GEN_OK)
        return s;
    bind_match(st, queue_id, user, extra);
    int rc;
    while (s == GEN_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            row_head *grown = gen__realloc(rows, cap * sizeof(*grown));
            if (!grown) {
                s = gen__error(GEN_ENOMEM, "cancel: out of memory");
                break;
            }
            rows = grown;
        }
        memset(&rows[n], 0, sizeof(rows[n]));
        s = read_head(st, &rows[n]);
        n++;
    }
    if (s == GEN_OK && rc != SQLITE_DONE)
        s = gen__queue_db_error(q, rc, "finding items to cancel");
    sqlite3_reset(st);
    for (size_t i = 0; s == GEN_OK && i < n; i++) {
        size_t before = q->event_count;
        s = update_status(q, &rows[i], GEN_QUEUE_CANCELED, NULL, NULL);
        if (s == GEN_OK && q->event_count > before)
            (*count)++;
    }
    for (size_t i = 0; i < n; i++)
        row_head_free(&rows[i]);
    gen__free(rows);
    return s;
}

typedef enum bulk_op { OP_CANCEL, OP_DELETE, OP_CLEAR, OP_PRUNE } bulk_op;

static gen_status run_bulk(gen_queue *q, bulk_op op, match_kind kind, const char *queue_id,
                           const char *user, const char *const *extras, size_t extra_count,
                           uint64_t *count)
{
    gen_status s = GEN_OK;
    for (size_t i = 0; s == GEN_OK && i < (extras ? extra_count : 1); i++) {
        const char *extra = extras ? extras[i] : NULL;
        if (op == OP_CANCEL) {
            s = cancel_matching(q, kind, false, queue_id, user, extra, count);
            continue;
        }
        if (op != OP_PRUNE &&
            (s = cancel_matching(q, kind, true, queue_id, user, extra, &(uint64_t){0})) != GEN_OK)
            break;
        sqlite3_stmt *st;
        s = gen__queue_stmt(
            q,
            op == OP_PRUNE ? "DELETE FROM queue_items WHERE queue_id = ?1 AND (?2 IS NULL OR "
                             "user_id = ?2) AND status IN ('completed', 'failed', 'canceled')"
                           : delete_sql[kind],
            &st);
        if (s != GEN_OK)
            break;
        bind_match(st, queue_id, user, extra);
        if ((s = gen__queue_step_done(q, st, "deleting items")) == GEN_OK)
            *count += (uint64_t)sqlite3_changes(q->db);
    }
    return s;
}

static gen_status bulk(uint64_t *out, gen_queue *q, const char *fn, bulk_op op, match_kind kind,
                       const char *queue_id, const char *const *extras, size_t extra_count,
                       const char *user_id, int admin)
{
    if (out)
        *out = 0;
    if (!q)
        return gen__error(GEN_EINVAL, "%s: queue is NULL", fn);
    const char *user = NULL;
    gen_status s = resolve_scope(fn, user_id, admin, &user);
    if (s != GEN_OK || (s = gen__queue_check_text("queue_id", queue_id, false)) != GEN_OK)
        return s;
    for (size_t i = 0; extras && i < extra_count; i++) {
        if (!extras[i])
            return gen__error(GEN_EINVAL, "%s: value %zu is NULL", fn, i);
        if ((s = gen__queue_check_text(fn, extras[i], true)) != GEN_OK)
            return s;
    }
    if (!queue_id)
        queue_id = "default";
    uint64_t count = 0;
    pthread_mutex_lock(&q->lock);
    s = gen__queue_begin(q, fn);
    if (s == GEN_OK &&
        (s = run_bulk(q, op, kind, queue_id, user, extras, extra_count, &count)) == GEN_OK)
        s = gen__queue_commit(q, fn);
    if (s != GEN_OK) {
        gen__queue_rollback(q);
        pthread_mutex_unlock(&q->lock);
        return s;
    }
    gen__queue_unlock_and_dispatch(q);
    if (out)
        *out = count;
    return GEN_OK;
}

GEN_API gen_status gen_queue_cancel_item(uint64_t *out_canceled, gen_queue *q, int64_t item_id,
                                         const char *user_id, int admin)
{
    if (out_canceled)
        *out_canceled = 0;
    if (!q)
        return gen__error(GEN_EINVAL, "gen_queue_cancel_item: queue is NULL");
    const char *user = NULL;
    gen_status s = resolve_scope("gen_queue_cancel_item", user_id, admin, &user);
    if (s != GEN_OK)
        return s;
    pthread_mutex_lock(&q->lock);
    row_head r;
    bool found = false;
    size_t before = 0;
    s = gen__queue_begin(q, "canceling an item");
    if (s == GEN_OK)
        s = load_head(q, item_id, &r, &found);
    if (s == GEN_OK && !found)
        s = gen__error(GEN_ENOTFOUND, "queue %s: no item %lld", q->path, (long long)item_id);
    if (s == GEN_OK && !admin && strcmp(r.user_id, user) != 0)
        s = gen__error(GEN_EPERM, "gen_queue_cancel_item: item %lld belongs to another user",
                       (long long)item_id);
    if (s == GEN_OK) {
        before = q->event_count;
        s = update_status(q, &r, GEN_QUEUE_CANCELED, NULL, NULL);
    }
    if (s == GEN_OK)
        s = gen__queue_commit(q, "canceling an item");
    if (found)
        row_head_free(&r);
    if (s != GEN_OK) {
        gen__queue_rollback(q);
        pthread_mutex_unlock(&q->lock);
        return s;
    }
    if (out_canceled)
        *out_canceled = q->event_count > before ? 1 : 0;
    gen__queue_unlock_and_dispatch(q);
    return GEN_OK;
}

GEN_API gen_status gen_queue_cancel_by_batch(uint64_t *out_canceled, gen_queue *q,
                                             const char *queue_id, const char *const *batch_ids,
                                             size_t batch_count, const char *user_id, int admin)
{
    if (batch_count && !batch_ids)
        return gen__error(GEN_EINVAL, "gen_queue_cancel_by_batch: batch_ids is NULL");
    if (batch_count == 0) {
        if (out_canceled)
            *out_canceled = 0;
        return GEN_OK;
    }
    return bulk(out_canceled, q, "gen_queue_cancel_by_batch", OP_CANCEL, MATCH_BATCH, queue_id,
                batch_ids, batch_count, user_id, admin);
}

GEN_API gen_status gen_queue_cancel_by_destination(uint64_t *out_canceled, gen_queue *q,
                                                   const char *queue_id, const char *destination,
                                                   const char *user_id, int admin)
{
    if (!destination)
        return gen__error(GEN_EINVAL, "gen_queue_cancel_by_destination: destination is NULL");
    return bulk(out_canceled, q, "gen_queue_cancel_by_destination", OP_CANCEL, MATCH_DESTINATION,
                queue_id, &destination, 1, user_id, admin);
}

GEN_API gen_status gen_queue_cancel_by_queue(uint64_t *out_canceled, gen_queue *q,
                                             const char *queue_id, const char *user_id, int admin)
{
    return bulk(out_canceled, q, "gen_queue_cancel_by_queue", OP_CANCEL, MATCH_QUEUE, queue_id,
                NULL, 0, user_id, admin);
}

GEN_API gen_status gen_queue_delete_by_destination(uint64_t *out_deleted, gen_queue *q,
                                                   const char *queue_id,
                                                   const char *destination,
                                                   const char *user_id, int admin)
{
    if (!destination)
        return gen__error(GEN_EINVAL, "gen_queue_delete_by_destination: destination is NULL");
    return bulk(out_deleted, q, "gen_queue_delete_by_destination", OP_DELETE, MATCH_DESTINATION,
                queue_id, &destination, 1, user_id, admin);
}

GEN_API gen_status gen_queue_clear(uint64_t *out_deleted, gen_queue *q, const char *queue_id,
                                   const char *user_id, int admin)
{
    return bulk(out_deleted, q, "gen_queue_clear", OP_CLEAR, MATCH_QUEUE, queue_id, NULL, 0,
                user_id, admin);
}

GEN_API gen_status gen_queue_prune(uint64_t *out_deleted, gen_queue *q, const char *queue_id,
                                   const char *user_id, int admin)
{
    return bulk(out_deleted, q, "gen_queue_prune", OP_PRUNE, MATCH_QUEUE, queue_id, NULL, 0,
                user_id, admin);
}

/* --- retry -------------------------------------------------------------------------------- */

static gen_status retry_one(gen_queue *q, int64_t id, const char *user, int admin,
                            gen_queue_enqueued *r, int64_t now)
{
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(
        q,
        "SELECT queue_id, batch_id, user_id, job, model, priority, origin, destination, status"
        " FROM queue_items WHERE item_id = ?",
        &st);
    if (s != GEN_OK)
        return s;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? GEN_OK : gen__queue_db_error(q, rc, "reading an item to retry");
    }
    bool ok = true;
    char *queue_id = gen__queue_column_dup(st, 0, &ok);
    char *batch_id = gen__queue_column_dup(st, 1, &ok);
    char *owner_user = gen__queue_column_dup(st, 2, &ok);
    char *job = gen__queue_column_dup(st, 3, &ok);
    char *model = gen__queue_column_dup(st, 4, &ok);
    int32_t priority = sqlite3_column_int(st, 5);
    char *origin = gen__queue_column_dup(st, 6, &ok);
    char *destination = gen__queue_column_dup(st, 7, &ok);
    const char *status_text = (const char *)sqlite3_column_text(st, 8);
    int32_t status = status_text ? gen__queue_status_parse(status_text) : -1;
    sqlite3_reset(st);
    size_t room = 0;
    if (!ok || !queue_id || !batch_id || !owner_user || !job)
        s = ok ? gen__error(GEN_EDATABASE, "retry: item %lld has missing fields", (long long)id)
               : gen__error(GEN_ENOMEM, "retry: out of memory");
    else if (!admin && strcmp(owner_user, user) != 0)
        s = gen__error(GEN_EPERM, "gen_queue_retry: item %lld belongs to another user",
                       (long long)id);
    else if ((status == GEN_QUEUE_FAILED || status == GEN_QUEUE_CANCELED) &&
             (s = gen__queue_pending_room(q, queue_id, &room)) == GEN_OK && room > 0)
        s = gen__queue_insert(q, queue_id, batch_id, owner_user, job, model, priority, origin,
                              destination, id, now, &r->ids[r->count]);
    if (s == GEN_OK && room > 0)
        r->count++;
    gen__free(queue_id);
    gen__free(batch_id);
    gen__free(owner_user);
    gen__free(job);
    gen__free(model);
    gen__free(origin);
    gen__free(destination);
    return s;
}

GEN_API gen_status gen_queue_retry(gen_queue_enqueued **out, gen_queue *q, const int64_t *item_ids,
                                   size_t count, const char *user_id, int admin)
{
    if (!out)
        return gen__error(GEN_EINVAL, "gen_queue_retry: out pointer is NULL");
    *out = NULL;
    if (!q || (count && !item_ids))
        return gen__error(GEN_EINVAL, "gen_queue_retry: queue or item_ids is NULL");
    const char *user = NULL;
    gen_status s = resolve_scope("gen_queue_retry", user_id, admin, &user);
    if (s != GEN_OK)
        return s;
    gen_queue_enqueued *r = NULL;
    if ((s = gen__queue_enqueued_new(count, NULL, &r)) != GEN_OK)
        return s;
    r->requested = count;
    int64_t now = gen__wall_ms();
    pthread_mutex_lock(&q->lock);
    s = gen__queue_begin(q, "retrying items");
    for (size_t i = 0; s == GEN_OK && i < count; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = item_ids[j] == item_ids[i];
        if (!seen)
            s = retry_one(q, item_ids[i], user, admin, r, now);
    }
    if (s == GEN_OK)
        s = gen__queue_commit(q, "retrying items");
    if (s != GEN_OK)
        gen__queue_rollback(q);
    pthread_mutex_unlock(&q->lock);
    if (s != GEN_OK) {
        gen__queue_enqueued_free(r);
        return s;
    }
    *out = r;
    return GEN_OK;
}
