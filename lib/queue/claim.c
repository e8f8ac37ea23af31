/* Claims: pick and mark in one IMMEDIATE transaction, so that no item is ever
 * taken twice, by threads or by processes sharing the file.
 *
 * Round-robin: the users with pending items whose turn is oldest (served
 * longest ago, never served = 0 first); among them the one whose best item
 * (priority desc, id asc) has the lowest id. Each claim stamps the user with
 * the next value of a serve counter, so claims within one millisecond still
 * rotate. Rotation outranks priority; priority orders a user's own items.
 * Affinity then prefers, among that user's next items of the same priority,
 * one whose model is resident on the claiming device. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/time.h"
#include "queue/queue_internal.h"

static const char sql_pick_round_robin[] =
    "SELECT i.item_id, i.user_id, i.priority, i.model FROM queue_users AS u"
    " JOIN queue_items AS i ON i.item_id = (SELECT item_id FROM queue_items"
    "  WHERE status = 'pending' AND user_id = u.user_id ORDER BY priority DESC, item_id LIMIT 1)"
    " WHERE u.pending > 0 AND u.last_served ="
    "  (SELECT MIN(last_served) FROM queue_users WHERE pending > 0)"
    " ORDER BY i.item_id LIMIT 1";

static const char sql_pick_fifo[] =
    "SELECT item_id, user_id, priority, model FROM queue_items WHERE status = 'pending'"
    " ORDER BY priority DESC, item_id LIMIT 1";

/* Exposed for the query-plan test. */
const char *gen__queue_claim_sql(int mode)
{
    return mode == GEN_QUEUE_FIFO ? sql_pick_fifo : sql_pick_round_robin;
}

typedef struct pick {
    int64_t id;
    char *user_id;
    int32_t priority;
    char *model;
} pick;

static gen_status pick_next(gen_queue *q, const char *sql, pick *out, bool *found)
{
    *found = false;
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(q, sql, &st);
    if (s != GEN_OK)
        return s;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        bool ok = true;
        out->id = sqlite3_column_int64(st, 0);
        out->user_id = gen__queue_column_dup(st, 1, &ok);
        out->priority = sqlite3_column_int(st, 2);
        out->model = gen__queue_column_dup(st, 3, &ok);
        *found = true;
        sqlite3_reset(st);
        if (!ok)
            return gen__error(GEN_ENOMEM, "claim: out of memory");
        return GEN_OK;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return gen__queue_db_error(q, rc, "picking the next item");
    return GEN_OK;
}

/* Pending counts per user are kept by triggers; should they ever disagree
 * with the rows (a file edited by hand), rebuild them. */
static gen_status repair_turns(gen_queue *q)
{
    GEN__LOG_WARN(&q->logger, "queue %s: per-user pending counts were out of date; rebuilt",
                  q->path);
    return gen__queue_exec(
        q,
        "INSERT OR IGNORE INTO queue_users(user_id) SELECT DISTINCT user_id FROM queue_items"
        " WHERE status = 'pending';"
        "UPDATE queue_users SET pending = (SELECT COUNT(*) FROM queue_items AS i"
        " WHERE i.status = 'pending' AND i.user_id = queue_users.user_id)",
        "rebuilding per-user counts");
}

static bool key_listed(const char *model, const char *const *keys, size_t n)
{
    for (size_t i = 0; model && i < n; i++)
        if (keys[i] && strcmp(keys[i], model) == 0)
            return true;
    return false;
}

static gen_status apply_affinity(gen_queue *q, pick *p, const char *const *keys, size_t n)
{
    if (n == 0 || key_listed(p->model, keys, n))
        return GEN_OK;
    if (n > GEN__QUEUE_AFFINITY_MAX_KEYS)
        n = GEN__QUEUE_AFFINITY_MAX_KEYS;
    char sql[512 + 2 * GEN__QUEUE_AFFINITY_MAX_KEYS];
    int len = snprintf(sql, sizeof(sql),
                       "SELECT item_id, model FROM queue_items WHERE status = 'pending'"
                       " AND user_id = ? AND priority = ? AND item_id > ? AND item_id <= ?"
                       " AND model IN (");
    size_t bound = 0;
    for (size_t i = 0; i < n; i++) {
        if (!keys[i])
            continue;
        len += snprintf(sql + len, sizeof(sql) - (size_t)len, "%s?", bound ? "," : "");
        bound++;
    }
    if (bound == 0)
        return GEN_OK;
    snprintf(sql + len, sizeof(sql) - (size_t)len, ") ORDER BY item_id LIMIT 1");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return gen__queue_db_error(q, rc, "preparing the affinity query");
    sqlite3_bind_text(st, 1, p->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, p->priority);
    sqlite3_bind_int64(st, 3, p->id);
    sqlite3_bind_int64(st, 4, p->id + GEN__QUEUE_AFFINITY_LOOKAHEAD);
    int idx = 5;
    for (size_t i = 0; i < n; i++)
        if (keys[i])
            sqlite3_bind_text(st, idx++, keys[i], -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    gen_status s = GEN_OK;
    if (rc == SQLITE_ROW) {
        char *model = gen__strdup((const char *)sqlite3_column_text(st, 1));
        if (!model) {
            s = gen__error(GEN_ENOMEM, "claim: out of memory");
        } else {
            p->id = sqlite3_column_int64(st, 0);
            gen__free(p->model);
            p->model = model;
        }
    } else if (rc != SQLITE_DONE) {
        s = gen__queue_db_error(q, rc, "running the affinity query");
    }
    sqlite3_finalize(st);
    return s;
}

static gen_status mark_claimed(gen_queue *q, const pick *p, const char *device,
                               gen_queue_item **out)
{
    int64_t now = gen__wall_ms();
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(
        q,
        "UPDATE queue_items SET status = 'in_progress', device = COALESCE(?, device), owner = ?,"
        " started_at = ?, updated_at = ?, status_seq = status_seq + 1"
        " WHERE item_id = ? AND status = 'pending'",
        &st);
    if (s != GEN_OK)
        return s;
    gen__queue_bind_text(st, 1, device);
    sqlite3_bind_text(st, 2, q->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, p->id);
    if ((s = gen__queue_step_done(q, st, "marking the item in progress")) != GEN_OK)
        return s;
    if (sqlite3_changes(q->db) != 1)
        return gen__error(GEN_EINTERNAL, "claim: item %lld was not pending inside the claim "
                                         "transaction",
                          (long long)p->id);
    /* The user's turn: the next value of the serve counter. */
    if ((s = gen__queue_stmt(q,
                             "UPDATE queue_meta SET value = value + 1 WHERE key = 'serve_seq'"
                             " RETURNING value",
                             &st)) != GEN_OK)
        return s;
    int rc = sqlite3_step(st);
    int64_t turn = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return gen__queue_db_error(q, rc, "advancing the serve counter");
    if ((s = gen__queue_stmt(q, "UPDATE queue_users SET last_served = ? WHERE user_id = ?",
                             &st)) != GEN_OK)
        return s;
    sqlite3_bind_int64(st, 1, turn);
    sqlite3_bind_text(st, 2, p->user_id, -1, SQLITE_STATIC);
    if ((s = gen__queue_step_done(q, st, "recording the user's turn")) != GEN_OK)
        return s;
    /* Read the row back as the worker will see it. */
    if ((s = gen__queue_stmt(q, "SELECT " GEN__QUEUE_ITEM_COLUMNS " FROM queue_items WHERE item_id = ?",
                             &st)) != GEN_OK)
        return s;
    sqlite3_bind_int64(st, 1, p->id);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return gen__queue_db_error(q, rc, "reading the claimed item");
    }
    s = gen__queue_item_from_row(st, out);
    sqlite3_reset(st);
    if (s != GEN_OK)
        return s;
    return gen__queue_event_add(q, p->id, GEN_QUEUE_PENDING, GEN_QUEUE_IN_PROGRESS,
                                gen_queue_item_queue_id(*out), gen_queue_item_batch_id(*out),
                                gen_queue_item_user_id(*out), gen_queue_item_device(*out), NULL);
}

static gen_status claim_locked(gen_queue *q, const char *device, const char *const *keys,
                               size_t n_keys, gen_queue_item **out)
{
    pick p = {0, NULL, 0, NULL};
    bool found = false;
    bool rr = q->opts.mode == GEN_QUEUE_ROUND_ROBIN;
    gen_status s = pick_next(q, gen__queue_claim_sql(q->opts.mode), &p, &found);
    if (s == GEN_OK && !found && rr) {
        /* Nothing by turns: double-check with the plain index before saying empty. */
        s = pick_next(q, sql_pick_fifo, &p, &found);
        if (s == GEN_OK && found) {
            gen__free(p.user_id);
            gen__free(p.model);
            p = (pick){0, NULL, 0, NULL};
            found = false;
            if ((s = repair_turns(q)) == GEN_OK)
                s = pick_next(q, sql_pick_round_robin, &p, &found);
        }
    }
    if (s == GEN_OK && found && rr && device)
        s = apply_affinity(q, &p, keys, n_keys);
    if (s == GEN_OK && found)
        s = mark_claimed(q, &p, device, out);
    gen__free(p.user_id);
    gen__free(p.model);
    return s;
}

GEN_API gen_status gen_queue_claim(gen_queue_item **out, gen_queue *q, const char *device,
                                   const char *const *resident_models, size_t model_count)
{
    if (!out)
        return gen__error(GEN_EINVAL, "gen_queue_claim: out pointer is NULL");
    *out = NULL;
    if (!q)
        return gen__error(GEN_EINVAL, "gen_queue_claim: queue is NULL");
    if (model_count && !resident_models)
        return gen__error(GEN_EINVAL, "gen_queue_claim: %zu model keys but the array is NULL",
                          model_count);
    gen_status s = gen__queue_check_text("device", device, false);
    if (s != GEN_OK)
        return s;
    pthread_mutex_lock(&q->lock);
    gen_queue_item *item = NULL;
    s = gen__queue_begin(q, "claiming");
    if (s == GEN_OK && (s = claim_locked(q, device, resident_models, model_count, &item)) ==
                           GEN_OK)
        s = gen__queue_commit(q, "claiming");
    if (s != GEN_OK) {
        gen__queue_rollback(q);
        pthread_mutex_unlock(&q->lock);
        gen_queue_item_destroy(item);
        return s;
    }
    gen__queue_unlock_and_dispatch(q);
    *out = item;
    return GEN_OK;
}
