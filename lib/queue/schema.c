/* Versioned schema. Each migration runs in its own IMMEDIATE transaction and
 * records itself in queue_migrations; a file newer than this library is
 * refused, never downgraded. Migrations are append-only: never edit a released
 * one, add the next. */
#include <stdio.h>

#include "core/crash_point.h"
#include "core/error.h"
#include "core/time.h"
#include "queue/queue_internal.h"

/* v1: items with their job, user, destination, status and timestamps (ms). */
static const char migration_1[] =
    "CREATE TABLE queue_items ("
    " item_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " queue_id TEXT NOT NULL,"
    " batch_id TEXT NOT NULL,"
    " user_id TEXT NOT NULL DEFAULT 'system',"
    " job TEXT NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN"
    "  ('pending','in_progress','completed','failed','canceled')),"
    " priority INTEGER NOT NULL DEFAULT 0,"
    " origin TEXT, destination TEXT, device TEXT,"
    " error_type TEXT, error_message TEXT,"
    " retried_from INTEGER,"
    " status_seq INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " started_at INTEGER, completed_at INTEGER);"
    "CREATE INDEX idx_queue_items_fifo ON queue_items(status, priority DESC, item_id);"
    "CREATE INDEX idx_queue_items_batch ON queue_items(batch_id);"
    "CREATE INDEX idx_queue_items_destination ON queue_items(queue_id, destination);"
    "CREATE INDEX idx_queue_items_queue_status ON queue_items(queue_id, status);"
    "CREATE INDEX idx_queue_items_user ON queue_items(user_id, status);";

/* v2: leases, so a process can tell whether the owner of an in-progress item
 * is alive; attempts for the retry limit. */
static const char migration_2[] =
    "ALTER TABLE queue_items ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE queue_items ADD COLUMN owner TEXT;"
    "CREATE TABLE queue_owners ("
    " owner TEXT PRIMARY KEY,"
    " pid INTEGER NOT NULL,"
    " host TEXT NOT NULL,"
    " proc_start INTEGER NOT NULL DEFAULT 0,"
    " opened_at INTEGER NOT NULL,"
    " lease_until INTEGER NOT NULL);";

/* v3: round-robin turns per user (pending counts kept by triggers, a serve
 * counter instead of timestamps so that claims in one millisecond still
 * rotate) and the job's model for device affinity. */
static const char migration_3[] =
    "ALTER TABLE queue_items ADD COLUMN model TEXT;"
    "UPDATE queue_items SET model = json_extract(job, '$.model')"
    " WHERE json_valid(job) AND json_type(job, '$.model') = 'text';"
    "CREATE TABLE queue_users ("
    " user_id TEXT PRIMARY KEY,"
    " pending INTEGER NOT NULL DEFAULT 0,"
    " last_served INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO queue_users(user_id, pending, last_served)"
    " SELECT user_id, SUM(status = 'pending'),"
    "  CASE WHEN MAX(started_at) IS NULL THEN 0"
    "   ELSE ROW_NUMBER() OVER (ORDER BY MAX(started_at) IS NULL, MAX(started_at)) END"
    " FROM queue_items GROUP BY user_id;"
    "CREATE TABLE queue_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO queue_meta(key, value)"
    " VALUES ('serve_seq', (SELECT COALESCE(MAX(last_served), 0) FROM queue_users));"
    "CREATE INDEX idx_queue_users_turn ON queue_users(last_served) WHERE pending > 0;"
    "CREATE INDEX idx_queue_items_user_pending ON queue_items(user_id, priority DESC, item_id)"
    " WHERE status = 'pending';"
    "CREATE TRIGGER trg_queue_items_insert AFTER INSERT ON queue_items"
    " WHEN new.status = 'pending' BEGIN"
    "  INSERT INTO queue_users(user_id, pending) VALUES (new.user_id, 1)"
    "   ON CONFLICT(user_id) DO UPDATE SET pending = pending + 1;"
    " END;"
    "CREATE TRIGGER trg_queue_items_leave AFTER UPDATE OF status ON queue_items"
    " WHEN old.status = 'pending' AND new.status <> 'pending' BEGIN"
    "  UPDATE queue_users SET pending = pending - 1 WHERE user_id = old.user_id;"
    " END;"
    "CREATE TRIGGER trg_queue_items_enter AFTER UPDATE OF status ON queue_items"
    " WHEN old.status <> 'pending' AND new.status = 'pending' BEGIN"
    "  INSERT INTO queue_users(user_id, pending) VALUES (new.user_id, 1)"
    "   ON CONFLICT(user_id) DO UPDATE SET pending = pending + 1;"
    " END;"
    "CREATE TRIGGER trg_queue_items_delete AFTER DELETE ON queue_items"
    " WHEN old.status = 'pending' BEGIN"
    "  UPDATE queue_users SET pending = pending - 1 WHERE user_id = old.user_id;"
    " END;";

/* The images the workers wrote: one row per image file, kept when its item is
 * deleted or pruned (the file stays in output_dir). */
static const char migration_4[] =
    "CREATE TABLE queue_images ("
    " image_path TEXT PRIMARY KEY,"
    " item_id INTEGER NOT NULL,"
    " user_id TEXT NOT NULL,"
    " width INTEGER NOT NULL,"
    " height INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX idx_queue_images_item ON queue_images(item_id, created_at);";

static const struct migration {
    const char *description;
    const char *sql;
} migrations[GEN__QUEUE_SCHEMA_VERSION] = {
    {"items", migration_1},
    {"leases and attempts", migration_2},
    {"round-robin turns and model affinity", migration_3},
    {"images", migration_4},
};

static gen_status query_version(sqlite3 *db, const char *path, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                                "name = 'queue_migrations'",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return gen__queue_sqlite_status(db, rc, path, "reading the schema");
    rc = sqlite3_step(st);
    int have_table = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return gen__queue_sqlite_status(db, rc, path, "reading the schema");
    if (!have_table) {
        *out = 0;
        return GEN_OK;
    }
    rc = sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(version), 0) FROM queue_migrations", -1, &st,
                            NULL);
    if (rc != SQLITE_OK)
        return gen__queue_sqlite_status(db, rc, path, "reading queue_migrations");
    rc = sqlite3_step(st);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return gen__queue_sqlite_status(db, rc, path, "reading queue_migrations");
    if (v < 0 || v > 1000000)
        return gen__error(GEN_EDATABASE, "queue %s: queue_migrations holds version %lld, which is "
                                         "not a valid schema version",
                          path, (long long)v);
    *out = (int)v;
    return GEN_OK;
}

gen_status gen__queue_schema_version(sqlite3 *db, const char *path, int *out)
{
    return query_version(db, path, out);
}

static gen_status exec_sql(sqlite3 *db, const char *path, const char *sql, const char *what)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return gen__queue_sqlite_status(db, rc, path, what);
    return GEN_OK;
}

/* Apply migration `v` unless another connection did it first. */
static gen_status apply_one(sqlite3 *db, const char *path, int v, int64_t now_ms)
{
    char what[96];
    snprintf(what, sizeof(what), "migrating to schema version %d", v);
    gen_status st = exec_sql(db, path, "BEGIN IMMEDIATE", what);
    if (st != GEN_OK)
        return st;
    int current = 0;
    if ((st = query_version(db, path, &current)) != GEN_OK)
        goto fail;
    if (current >= v) { /* another connection migrated meanwhile */
        exec_sql(db, path, "COMMIT", what);
        return GEN_OK;
    }
    if (current != v - 1) {
        st = gen__error(GEN_EDATABASE, "queue %s: schema version %d found while migrating to %d",
                        path, current, v);
        goto fail;
    }
    if (v == 1 &&
        (st = exec_sql(db, path,
                       "CREATE TABLE IF NOT EXISTS queue_migrations (version INTEGER PRIMARY KEY,"
                       " description TEXT NOT NULL, applied_at INTEGER NOT NULL)",
                       what)) != GEN_OK)
        goto fail;
    if ((st = exec_sql(db, path, migrations[v - 1].sql, what)) != GEN_OK)
        goto fail;
    sqlite3_stmt *ins = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "INSERT INTO queue_migrations(version, description, applied_at) "
                                "VALUES (?, ?, ?)",
                                -1, &ins, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(ins, 1, v);
        sqlite3_bind_text(ins, 2, migrations[v - 1].description, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 3, now_ms);
        rc = sqlite3_step(ins);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK) {
        st = gen__queue_sqlite_status(db, rc, path, what);
        sqlite3_finalize(ins);
        goto fail;
    }
    sqlite3_finalize(ins);
    gen__crash_point("queue.migration_before_commit");
    if ((st = exec_sql(db, path, "COMMIT", what)) != GEN_OK)
        goto fail;
    gen__crash_point("queue.migration_committed");
    return GEN_OK;
fail:
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

gen_status gen__queue_migrate(sqlite3 *db, const char *path, int target)
{
    int current = 0;
    gen_status st = query_version(db, path, &current);
    if (st != GEN_OK)
        return st;
    if (current > GEN__QUEUE_SCHEMA_VERSION)
        return gen__error(GEN_EVERSION,
                          "queue %s: the database has schema version %d, newer than this libgen "
                          "understands (%d); use a newer libgen (it is never downgraded)",
                          path, current, GEN__QUEUE_SCHEMA_VERSION);
    if (target > GEN__QUEUE_SCHEMA_VERSION)
        target = GEN__QUEUE_SCHEMA_VERSION;
    for (int v = current + 1; v <= target; v++) {
        st = apply_one(db, path, v, gen__wall_ms());
        if (st != GEN_OK)
            return gen__error_prefix("migration %d (%s): ", v, migrations[v - 1].description);
    }
    return GEN_OK;
}
