/* Items as the caller reads them (opaque, accessors only, so the ABI can grow)
 * and the read-only queries: get, list, counts. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/versioned.h"
#include "queue/queue_internal.h"

struct gen_queue_item {
    int64_t id, retried_from, created_at, updated_at, started_at, completed_at;
    int32_t status, priority, attempts;
    char *queue_id, *batch_id, *user_id, *job, *model, *origin, *destination, *device,
        *error_type, *error_message;
};

struct gen_queue_item_list {
    gen_queue_item **items;
    size_t count;
};

static void item_free(gen_queue_item *it)
{
    if (!it)
        return;
    gen__free(it->queue_id);
    gen__free(it->batch_id);
    gen__free(it->user_id);
    gen__free(it->job);
    gen__free(it->model);
    gen__free(it->origin);
    gen__free(it->destination);
    gen__free(it->device);
    gen__free(it->error_type);
    gen__free(it->error_message);
    gen__free(it);
}

gen_status gen__queue_item_from_row(sqlite3_stmt *st, gen_queue_item **out)
{
    *out = NULL;
    gen_queue_item *it = gen__calloc(1, sizeof(*it));
    if (!it)
        return gen__error(GEN_ENOMEM, "queue: cannot allocate an item");
    bool ok = true;
    it->id = sqlite3_column_int64(st, 0);
    it->queue_id = gen__queue_column_dup(st, 1, &ok);
    it->batch_id = gen__queue_column_dup(st, 2, &ok);
    it->user_id = gen__queue_column_dup(st, 3, &ok);
    it->job = gen__queue_column_dup(st, 4, &ok);
    it->model = gen__queue_column_dup(st, 5, &ok);
    const char *status = (const char *)sqlite3_column_text(st, 6);
    it->status = status ? gen__queue_status_parse(status) : -1;
    it->priority = sqlite3_column_int(st, 7);
    it->origin = gen__queue_column_dup(st, 8, &ok);
    it->destination = gen__queue_column_dup(st, 9, &ok);
    it->device = gen__queue_column_dup(st, 10, &ok);
    it->error_type = gen__queue_column_dup(st, 11, &ok);
    it->error_message = gen__queue_column_dup(st, 12, &ok);
    it->attempts = sqlite3_column_int(st, 13);
    it->retried_from = sqlite3_column_int64(st, 14);
    it->created_at = sqlite3_column_int64(st, 15);
    it->updated_at = sqlite3_column_int64(st, 16);
    it->started_at = sqlite3_column_int64(st, 17);
    it->completed_at = sqlite3_column_int64(st, 18);
    if (!ok) {
        item_free(it);
        return gen__error(GEN_ENOMEM, "queue: cannot allocate an item's fields");
    }
    if (it->status < 0 || !it->queue_id || !it->batch_id || !it->user_id || !it->job) {
        int64_t id = it->id;
        item_free(it);
        return gen__error(GEN_EDATABASE, "queue: item %lld has a missing or unknown status or id",
                          (long long)id);
    }
    *out = it;
    return GEN_OK;
}

GEN_API gen_status gen_queue_get(gen_queue_item **out, gen_queue *q, int64_t item_id)
{
    if (!out)
        return gen__error(GEN_EINVAL, "gen_queue_get: out pointer is NULL");
    *out = NULL;
    if (!q)
        return gen__error(GEN_EINVAL, "gen_queue_get: queue is NULL");
    pthread_mutex_lock(&q->lock);
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(
        q, "SELECT " GEN__QUEUE_ITEM_COLUMNS " FROM queue_items WHERE item_id = ?", &st);
    if (s == GEN_OK) {
        sqlite3_bind_int64(st, 1, item_id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            s = gen__queue_item_from_row(st, out);
        else if (rc == SQLITE_DONE)
            s = gen__error(GEN_ENOTFOUND, "queue %s: no item %lld", q->path, (long long)item_id);
        else
            s = gen__queue_db_error(q, rc, "reading an item");
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&q->lock);
    return s;
}

static const size_t filter_size_by_version[] = {
    0,
    sizeof(gen_queue_filter), /* 1 */
};

GEN_API gen_status gen_queue_filter_init(gen_queue_filter *filter, uint32_t version)
{
    const gen_queue_filter defaults = GEN_QUEUE_FILTER_INIT;
    return gen__versioned_init(filter, &defaults, filter_size_by_version, version,
                               GEN_QUEUE_FILTER_VERSION, "gen_queue_filter_init");
}

static gen_status list_append(gen_queue_item_list *l, gen_queue_item *it, size_t *cap)
{
    if (l->count == *cap) {
        size_t n = *cap ? *cap * 2 : 16;
        gen_queue_item **grown = gen__realloc(l->items, n * sizeof(*grown));
        if (!grown)
            return gen__error(GEN_ENOMEM, "queue: cannot allocate a list of %zu items", n);
        l->items = grown;
        *cap = n;
    }
    l->items[l->count++] = it;
    return GEN_OK;
}

GEN_API gen_status gen_queue_list(gen_queue_item_list **out, gen_queue *q,
                                  const gen_queue_filter *filter)
{
    if (!out)
        return gen__error(GEN_EINVAL, "gen_queue_list: out pointer is NULL");
    *out = NULL;
    if (!q)
        return gen__error(GEN_EINVAL, "gen_queue_list: queue is NULL");
    gen_queue_filter f = GEN_QUEUE_FILTER_INIT;
    if (filter) {
        gen_status s = gen__versioned_copy(&f, filter, filter_size_by_version,
                                           GEN_QUEUE_FILTER_VERSION, "gen_queue_filter");
        if (s != GEN_OK)
            return s;
    }
    if (f.status < -1 || f.status > GEN_QUEUE_CANCELED)
        return gen__error(GEN_EINVAL, "filter: status %d is not a queue status", (int)f.status);
    if (f.limit < 1 || f.limit > 10000)
        return gen__error(GEN_EINVAL, "filter: limit %u is outside 1..10000", (unsigned)f.limit);
    /* Every condition is "? IS NULL OR ...", so one statement serves all filters. */
    static const char asc[] =
        "SELECT " GEN__QUEUE_ITEM_COLUMNS " FROM queue_items WHERE"
        " (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR queue_id = ?2)"
        " AND (?3 IS NULL OR user_id = ?3) AND (?4 IS NULL OR batch_id = ?4)"
        " AND (?5 IS NULL OR destination = ?5) AND item_id > ?6 ORDER BY item_id LIMIT ?7";
    static const char desc[] =
        "SELECT " GEN__QUEUE_ITEM_COLUMNS " FROM queue_items WHERE"
        " (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR queue_id = ?2)"
        " AND (?3 IS NULL OR user_id = ?3) AND (?4 IS NULL OR batch_id = ?4)"
        " AND (?5 IS NULL OR destination = ?5) AND item_id < ?6 ORDER BY item_id DESC LIMIT ?7";
    gen_queue_item_list *l = gen__calloc(1, sizeof(*l));
    if (!l)
        return gen__error(GEN_ENOMEM, "queue: cannot allocate a list");
    size_t cap = 0;
    pthread_mutex_lock(&q->lock);
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(q, f.descending ? desc : asc, &st);
    if (s == GEN_OK) {
        gen__queue_bind_text(st, 1, f.status >= 0 ? gen_queue_status_name(f.status) : NULL);
        gen__queue_bind_text(st, 2, f.queue_id);
        gen__queue_bind_text(st, 3, f.user_id);
        gen__queue_bind_text(st, 4, f.batch_id);
        gen__queue_bind_text(st, 5, f.destination);
        sqlite3_bind_int64(st, 6, f.descending && f.after_item_id == 0 ? INT64_MAX
                                                                        : f.after_item_id);
        sqlite3_bind_int64(st, 7, f.limit);
        int rc;
        while (s == GEN_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            gen_queue_item *it;
            s = gen__queue_item_from_row(st, &it);
            if (s == GEN_OK && (s = list_append(l, it, &cap)) != GEN_OK)
                item_free(it);
        }
        if (s == GEN_OK && rc != SQLITE_DONE)
            s = gen__queue_db_error(q, rc, "listing items");
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&q->lock);
    if (s != GEN_OK) {
        gen_queue_item_list_destroy(l);
        return s;
    }
    *out = l;
    return GEN_OK;
}

GEN_API size_t gen_queue_item_list_count(const gen_queue_item_list *list)
{
    return list ? list->count : 0;
}

GEN_API const gen_queue_item *gen_queue_item_list_at(const gen_queue_item_list *list, size_t index)
{
    return list && index < list->count ? list->items[index] : NULL;
}

GEN_API void gen_queue_item_list_destroy(gen_queue_item_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++)
        item_free(list->items[i]);
    gen__free(list->items);
    gen__free(list);
}

static gen_status counts_run(gen_queue *q, gen_queue_counts *out, const char *sql,
                             const char *a, const char *b)
{
    if (!out)
        return gen__error(GEN_EINVAL, "queue counts: out pointer is NULL");
    if (out->version == 0 || out->version > GEN_QUEUE_COUNTS_VERSION)
        return gen__error(out->version == 0 ? GEN_EINVAL : GEN_EVERSION,
                          "gen_queue_counts: version %u is not supported (1..%u); set it to "
                          "GEN_QUEUE_COUNTS_VERSION",
                          (unsigned)out->version, (unsigned)GEN_QUEUE_COUNTS_VERSION);
    if (!q)
        return gen__error(GEN_EINVAL, "queue counts: queue is NULL");
    gen_queue_counts c;
    memset(&c, 0, sizeof(c));
    c.version = out->version;
    pthread_mutex_lock(&q->lock);
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(q, sql, &st);
    if (s == GEN_OK) {
        gen__queue_bind_text(st, 1, a);
        gen__queue_bind_text(st, 2, b);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(st, 0);
            uint64_t n = (uint64_t)sqlite3_column_int64(st, 1);
            switch (name ? gen__queue_status_parse(name) : -1) {
            case GEN_QUEUE_PENDING: c.pending = n; break;
            case GEN_QUEUE_IN_PROGRESS: c.in_progress = n; break;
            case GEN_QUEUE_COMPLETED: c.completed = n; break;
            case GEN_QUEUE_FAILED: c.failed = n; break;
            case GEN_QUEUE_CANCELED: c.canceled = n; break;
            default: break;
            }
            c.total += n;
        }
        if (rc != SQLITE_DONE)
            s = gen__queue_db_error(q, rc, "counting items");
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&q->lock);
    if (s == GEN_OK)
        memcpy(out, &c, sizeof(c)); /* version 1 is the whole struct */
    return s;
}

GEN_API gen_status gen_queue_get_counts(gen_queue_counts *out, gen_queue *q, const char *queue_id,
                                        const char *user_id)
{
    return counts_run(q, out,
                      "SELECT status, COUNT(*) FROM queue_items WHERE (?1 IS NULL OR queue_id = ?1)"
                      " AND (?2 IS NULL OR user_id = ?2) GROUP BY status",
                      queue_id, user_id);
}

GEN_API gen_status gen_queue_get_batch_counts(gen_queue_counts *out, gen_queue *q,
                                              const char *batch_id)
{
    if (!batch_id)
        return gen__error(GEN_EINVAL, "gen_queue_get_batch_counts: batch id is NULL");
    return counts_run(q, out,
                      "SELECT status, COUNT(*) FROM queue_items WHERE batch_id = ?1"
                      " AND ?2 IS NULL GROUP BY status",
                      batch_id, NULL);
}

/* --- accessors ---------------------------------------------------------------------------- */

GEN_API int64_t gen_queue_item_id(const gen_queue_item *it) { return it ? it->id : 0; }
GEN_API const char *gen_queue_item_queue_id(const gen_queue_item *it) { return it ? it->queue_id : NULL; }
GEN_API const char *gen_queue_item_batch_id(const gen_queue_item *it) { return it ? it->batch_id : NULL; }
GEN_API const char *gen_queue_item_user_id(const gen_queue_item *it) { return it ? it->user_id : NULL; }
GEN_API const char *gen_queue_item_job(const gen_queue_item *it) { return it ? it->job : NULL; }
GEN_API const char *gen_queue_item_model(const gen_queue_item *it) { return it ? it->model : NULL; }
GEN_API int32_t gen_queue_item_status(const gen_queue_item *it) { return it ? it->status : -1; }
GEN_API int32_t gen_queue_item_priority(const gen_queue_item *it) { return it ? it->priority : 0; }
GEN_API const char *gen_queue_item_origin(const gen_queue_item *it) { return it ? it->origin : NULL; }
GEN_API const char *gen_queue_item_destination(const gen_queue_item *it) { return it ? it->destination : NULL; }
GEN_API const char *gen_queue_item_device(const gen_queue_item *it) { return it ? it->device : NULL; }
GEN_API const char *gen_queue_item_error_type(const gen_queue_item *it) { return it ? it->error_type : NULL; }
GEN_API const char *gen_queue_item_error_message(const gen_queue_item *it) { return it ? it->error_message : NULL; }
GEN_API int32_t gen_queue_item_attempts(const gen_queue_item *it) { return it ? it->attempts : 0; }
GEN_API int64_t gen_queue_item_retried_from(const gen_queue_item *it) { return it ? it->retried_from : 0; }
GEN_API int64_t gen_queue_item_created_at(const gen_queue_item *it) { return it ? it->created_at : 0; }
GEN_API int64_t gen_queue_item_updated_at(const gen_queue_item *it) { return it ? it->updated_at : 0; }
GEN_API int64_t gen_queue_item_started_at(const gen_queue_item *it) { return it ? it->started_at : 0; }
GEN_API int64_t gen_queue_item_completed_at(const gen_queue_item *it) { return it ? it->completed_at : 0; }

GEN_API void gen_queue_item_destroy(gen_queue_item *item)
{
    item_free(item);
}
