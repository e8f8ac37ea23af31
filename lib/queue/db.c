/* SQLite plumbing of the queue: statement cache, transactions, error mapping. */
#include <errno.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "queue/queue_internal.h"

gen_status gen__queue_sqlite_status(sqlite3 *db, int rc, const char *path, const char *what)
{
    if (db && (rc & 0xff) == (sqlite3_extended_errcode(db) & 0xff))
        rc = sqlite3_extended_errcode(db);
    int primary = rc & 0xff;
    const char *detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    int sys = db ? sqlite3_system_errno(db) : 0;
    if (!path)
        path = "?";
    switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return gen__error(GEN_EBUSY,
                          "queue %s: %s: the database stayed locked by another connection past "
                          "the busy timeout (%s)",
                          path, what, detail);
    case SQLITE_FULL:
        return gen__error(GEN_ENOSPC, "queue %s: %s: no space left for the database (%s)", path,
                          what, detail);
    case SQLITE_IOERR:
        /* A write cut short by a full disk, a quota or RLIMIT_FSIZE. */
        if (sys == ENOSPC || sys == EFBIG || sys == EDQUOT)
            return gen__error(GEN_ENOSPC, "queue %s: %s: no space left to write (%s: %s)", path,
                              what, detail, strerror(sys));
        if (rc == SQLITE_IOERR_WRITE || rc == SQLITE_IOERR_FSYNC || rc == SQLITE_IOERR_TRUNCATE)
            return gen__error(GEN_EIO,
                              "queue %s: %s: cannot write the database file (disk full, quota, "
                              "file size limit or device error; SQLite code %d)",
                              path, what, rc);
        return gen__error(GEN_EIO, "queue %s: %s: I/O error (%s, SQLite code %d%s%s)", path, what,
                          detail, rc, sys ? ": " : "", sys ? strerror(sys) : "");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return gen__error(GEN_EDATABASE,
                          "queue %s: %s: the file is not a SQLite database or is corrupt (%s)",
                          path, what, detail);
    case SQLITE_CANTOPEN:
        return gen__error(GEN_EIO, "queue %s: %s: cannot open the database file (%s%s%s)", path,
                          what, detail, sys ? ": " : "", sys ? strerror(sys) : "");
    case SQLITE_NOMEM:
        return gen__error(GEN_ENOMEM, "queue %s: %s: SQLite is out of memory", path, what);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return gen__error(GEN_EIO, "queue %s: %s: the database cannot be written (%s)", path, what,
                          detail);
    default:
        return gen__error(GEN_EDATABASE, "queue %s: %s: SQLite error %d (%s)", path, what, rc,
                          detail);
    }
}

gen_status gen__queue_db_error(gen_queue *q, int rc, const char *what)
{
    return gen__queue_sqlite_status(q->db, rc, q->path, what);
}

gen_status gen__queue_stmt(gen_queue *q, const char *sql, sqlite3_stmt **out)
{
    size_t free_slot = GEN__QUEUE_STMT_CACHE;
    for (size_t i = 0; i < GEN__QUEUE_STMT_CACHE; i++) {
        if (q->stmts[i].sql == sql) {
            sqlite3_reset(q->stmts[i].stmt);
            sqlite3_clear_bindings(q->stmts[i].stmt);
            *out = q->stmts[i].stmt;
            return GEN_OK;
        }
        if (!q->stmts[i].sql && free_slot == GEN__QUEUE_STMT_CACHE)
            free_slot = i;
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK)
        return gen__queue_db_error(q, rc, "preparing a statement");
    if (free_slot == GEN__QUEUE_STMT_CACHE) {
        /* Cache full (a bug: raise the size); the oldest slot is recycled. */
        sqlite3_finalize(q->stmts[0].stmt);
        free_slot = 0;
    }
    q->stmts[free_slot].sql = sql;
    q->stmts[free_slot].stmt = st;
    *out = st;
    return GEN_OK;
}

void gen__queue_stmts_finalize(gen_queue *q)
{
    for (size_t i = 0; i < GEN__QUEUE_STMT_CACHE; i++) {
        if (q->stmts[i].stmt)
            sqlite3_finalize(q->stmts[i].stmt);
        q->stmts[i].sql = NULL;
        q->stmts[i].stmt = NULL;
    }
}

gen_status gen__queue_exec(gen_queue *q, const char *sql, const char *what)
{
    int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return gen__queue_db_error(q, rc, what);
    return GEN_OK;
}

gen_status gen__queue_begin(gen_queue *q, const char *what)
{
    gen__queue_events_drop(q);
    gen__queue_gate_enter(q->gate);
    q->in_gate = true;
    /* IMMEDIATE takes the write lock up front (waiting in the busy handler), so
     * a transaction never has to upgrade a read lock and cannot deadlock. */
    int rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        gen_status st = gen__queue_db_error(q, rc, what);
        gen__queue_rollback(q);
        return st;
    }
    return GEN_OK;
}

gen_status gen__queue_commit(gen_queue *q, const char *what)
{
    int rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        gen_status st = gen__queue_db_error(q, rc, what);
        gen__queue_rollback(q);
        return st;
    }
    if (q->in_gate) {
        q->in_gate = false;
        gen__queue_gate_leave(q->gate);
    }
    return GEN_OK;
}

void gen__queue_rollback(gen_queue *q)
{
    /* SQLite may already have rolled back by itself (I/O error, full disk). */
    if (!sqlite3_get_autocommit(q->db))
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    gen__queue_events_drop(q);
    if (q->in_gate) {
        q->in_gate = false;
        gen__queue_gate_leave(q->gate);
    }
}

gen_status gen__queue_step_done(gen_queue *q, sqlite3_stmt *st, const char *what)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) {
        gen_status s = gen__queue_db_error(q, rc, what);
        sqlite3_reset(st);
        return s;
    }
    sqlite3_reset(st);
    return GEN_OK;
}

void gen__queue_bind_text(sqlite3_stmt *st, int idx, const char *text)
{
    if (text)
        sqlite3_bind_text(st, idx, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, idx);
}

char *gen__queue_column_dup(sqlite3_stmt *st, int col, bool *ok)
{
    const unsigned char *text = sqlite3_column_text(st, col);
    if (!text)
        return NULL;
    char *copy = gen__strdup((const char *)text);
    if (!copy)
        *ok = false;
    return copy;
}
