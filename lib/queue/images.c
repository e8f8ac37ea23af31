/* The images table: which file each item produced. */
#include <stdbool.h>
#include <string.h>

#include "core/error.h"
#include "core/time.h"
#include "queue/queue_internal.h"

GEN_API gen_status gen_queue_record_image(gen_queue *q, int64_t item_id, const char *path,
                                          int32_t width, int32_t height)
{
    if (!q || !path || !path[0] || width <= 0 || height <= 0)
        return gen__error(GEN_EINVAL, "gen_queue_record_image: bad argument");
    pthread_mutex_lock(&q->lock);
    gen_status s = gen__queue_begin(q, "recording an image");
    bool began = s == GEN_OK;
    sqlite3_stmt *st = NULL;
    if (s == GEN_OK)
        s = gen__queue_stmt(q,
                            "INSERT OR REPLACE INTO queue_images"
                            "(image_path, item_id, user_id, width, height, created_at)"
                            " SELECT ?1, item_id, user_id, ?3, ?4, ?5 FROM queue_items"
                            " WHERE item_id = ?2",
                            &st);
    if (s == GEN_OK) {
        gen__queue_bind_text(st, 1, path);
        sqlite3_bind_int64(st, 2, item_id);
        sqlite3_bind_int(st, 3, width);
        sqlite3_bind_int(st, 4, height);
        sqlite3_bind_int64(st, 5, gen__wall_ms());
        s = gen__queue_step_done(q, st, "recording an image");
        if (s == GEN_OK && sqlite3_changes(q->db) == 0)
            s = gen__error(GEN_ENOTFOUND, "queue %s: no item %lld", q->path, (long long)item_id);
    }
    if (s == GEN_OK)
        s = gen__queue_commit(q, "recording an image");
    else if (began)
        gen__queue_rollback(q);
    gen__queue_unlock_and_dispatch(q);
    return s;
}

GEN_API gen_status gen_queue_item_image(gen_queue *q, int64_t item_id, char *buf, size_t buf_size,
                                        size_t *needed)
{
    if (!q || (buf_size && !buf))
        return gen__error(GEN_EINVAL, "gen_queue_item_image: bad argument");
    pthread_mutex_lock(&q->lock);
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(q,
                                   "SELECT image_path FROM queue_images WHERE item_id = ?"
                                   " ORDER BY created_at DESC, rowid DESC LIMIT 1",
                                   &st);
    if (s == GEN_OK) {
        sqlite3_bind_int64(st, 1, item_id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const char *path = (const char *)sqlite3_column_text(st, 0);
            size_t len = path ? strlen(path) : 0;
            if (needed)
                *needed = len + 1;
            if (buf_size == 0 && !buf)
                s = GEN_OK;
            else if (len + 1 > buf_size)
                s = gen__error(GEN_EFULL, "gen_queue_item_image: needs %zu bytes, buffer has %zu",
                               len + 1, buf_size);
            else
                memcpy(buf, path ? path : "", len + 1);
        } else if (rc == SQLITE_DONE) {
            s = gen__error(GEN_ENOTFOUND, "queue %s: item %lld has no image", q->path,
                           (long long)item_id);
        } else {
            s = gen__queue_db_error(q, rc, "reading an item's image");
        }
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&q->lock);
    return s;
}
