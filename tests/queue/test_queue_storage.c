/* The file itself: migrations from an empty file and from each older schema,
 * a kill -9 before and after each migration's COMMIT,
 * a newer schema refused, non-SQLite and corrupt files refused with a clear
 * error, and a full disk (RLIMIT_FSIZE in a child process) failing cleanly
 * with the database still consistent. */
#include <fcntl.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "queue/queue_internal.h"
#include "queue_test_util.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    qt_tempdir(dir, sizeof(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    qt_rmtree(dir);
    return 0;
}

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static gen_queue *open_ok(const char *path)
{
    gen_queue_options o = GEN_QUEUE_OPTIONS_INIT;
    o.heartbeat_ms = 0;
    gen_queue *q = NULL;
    if (gen_queue_open(&q, path, &o) != GEN_OK)
        fail_msg("open %s: %s", path, gen_last_error_message());
    return q;
}

static void check_latest(const char *path)
{
    sqlite3 *db = raw_open(path);
    assert_int_equal(raw_int(db, "SELECT MAX(version) FROM queue_migrations"),
                     GEN__QUEUE_SCHEMA_VERSION);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM queue_migrations"),
                     GEN__QUEUE_SCHEMA_VERSION);
    sqlite3_close(db);
}

static void test_empty_file(void **state)
{
    (void)state;
    char path[300];
    qt_path(path, sizeof(path), dir, "empty.db");
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    close(fd);
    gen_queue *q = open_ok(path);
    assert_true(qt_enqueue(q, "A", "{}", 1, 0, NULL, NULL) > 0);
    gen_queue_close(q);
    check_latest(path);
    /* Opening again is a no-op for the schema. */
    q = open_ok(path);
    gen_queue_close(q);
    check_latest(path);
}

/* A file at schema `version` with rows written the way that version wrote them. */
static void make_old(const char *path, int version)
{
    sqlite3 *db = raw_open(path);
    assert_int_equal(gen__queue_migrate(db, path, version), GEN_OK);
    int v = -1;
    assert_int_equal(gen__queue_schema_version(db, path, &v), GEN_OK);
    assert_int_equal(v, version);
    raw_exec(db,
             "INSERT INTO queue_items(queue_id, batch_id, user_id, job, status, priority,"
             " created_at, updated_at, started_at) VALUES"
             " ('default', 'b1', 'A', '{\"model\":\"sd15\",\"n\":1}', 'completed', 0, 1, 1, 50),"
             " ('default', 'b1', 'A', '{\"n\":2}', 'in_progress', 0, 2, 2, 100),"
             " ('default', 'b1', 'A', '{\"model\":\"sdxl\",\"n\":3}', 'pending', 0, 3, 3, NULL),"
             " ('default', 'b2', 'B', '{\"n\":4}', 'pending', 0, 4, 4, NULL),"
             " ('default', 'b1', 'A', 'not json', 'pending', 0, 5, 5, NULL)");
    if (version >= 2)
        raw_exec(db, "UPDATE queue_items SET owner = 'ghost', attempts = 1 WHERE item_id = 2");
    sqlite3_close(db);
}

static void migrate_from(int version)
{
    char path[300];
    char name[32];
    snprintf(name, sizeof(name), "v%d.db", version);
    qt_path(path, sizeof(path), dir, name);
    make_old(path, version);
    gen_queue *q = open_ok(path);
    check_latest(path);
    /* The orphaned in-progress row was recovered. */
    gen_queue_item *it = NULL;
    assert_int_equal(gen_queue_get(&it, q, 2), GEN_OK);
    assert_int_equal(gen_queue_item_status(it), GEN_QUEUE_PENDING);
    assert_int_equal(gen_queue_item_attempts(it), version >= 2 ? 2 : 1);
    gen_queue_item_destroy(it);
    /* The model was extracted from old rows. */
    assert_int_equal(gen_queue_get(&it, q, 3), GEN_OK);
    assert_string_equal(gen_queue_item_model(it), "sdxl");
    gen_queue_item_destroy(it);
    /* Turns were rebuilt: B was never served, so B goes first; then A's
     * three pending items. */
    int64_t want[] = {4, 2, 3, 5};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(gen_queue_claim(&it, q, "cpu:0", NULL, 0), GEN_OK);
        assert_non_null(it);
        assert_int_equal(gen_queue_item_id(it), want[i]);
        gen_queue_item_destroy(it);
    }
    assert_int_equal(gen_queue_claim(&it, q, "cpu:0", NULL, 0), GEN_OK);
    assert_null(it);
    gen_queue_close(q);
}

static void test_migrate_from_v1(void **state)
{
    (void)state;
    migrate_from(1);
}

static void test_migrate_from_v2(void **state)
{
    (void)state;
    migrate_from(2);
}

/* kill -9 (a crash point in a child process) in the middle of migrating a v1
 * file: before the COMMIT of migration k the file still has schema k - 1,
 * right after it schema k, with every row; the next open finishes the job. */
static void test_kill_during_migration(void **state)
{
    (void)state;
    static const char *const points[] = {"queue.migration_before_commit",
                                         "queue.migration_committed"};
    int kills = 0;
    for (int phase = 0; phase < 2; phase++) {
        for (int nth = 1; nth < GEN__QUEUE_SCHEMA_VERSION; nth++) {
            char path[400], name[32], nth_text[16];
            snprintf(name, sizeof(name), "crash-%d-%d.db", phase, nth);
            qt_path(path, sizeof(path), dir, name);
            make_old(path, 1);
            snprintf(nth_text, sizeof(nth_text), "%d", nth);
            const char *argv_tail[] = {"crash-open", path, points[phase], nth_text, NULL};
            qt_child c = qt_spawn(argv_tail);
            assert_int_equal(qt_wait(&c), 128 + SIGKILL);
            kills++;
            /* Migration 1 + nth was running: rolled back, or committed. */
            sqlite3 *db = raw_open(path);
            assert_int_equal(raw_int(db, "SELECT MAX(version) FROM queue_migrations"),
                             phase == 0 ? nth : nth + 1);
            assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM queue_items"), 5);
            sqlite3_close(db);
            gen_queue *q = open_ok(path);
            check_latest(path);
            gen_queue_counts counts = GEN_QUEUE_COUNTS_INIT;
            assert_int_equal(gen_queue_get_counts(&counts, q, NULL, NULL), GEN_OK);
            assert_int_equal(counts.total, 5);
            assert_int_equal(counts.completed, 1);
            assert_int_equal(counts.pending, 4); /* the orphaned in-progress row recovered */
            gen_queue_item *it = NULL;
            assert_int_equal(gen_queue_get(&it, q, 3), GEN_OK);
            assert_string_equal(gen_queue_item_model(it), "sdxl");
            gen_queue_item_destroy(it);
            gen_queue_close(q);
        }
    }
    print_message("%d kills during migrations, each recovered on reopen\n", kills);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    char path[300];
    qt_path(path, sizeof(path), dir, "newer.db");
    gen_queue_close(open_ok(path));
    sqlite3 *db = raw_open(path);
    raw_exec(db, "INSERT INTO queue_migrations VALUES (99, 'from the future', 0)");
    sqlite3_close(db);
    gen_queue *q = (gen_queue *)1;
    assert_int_equal(gen_queue_open(&q, path, NULL), GEN_EVERSION);
    assert_null(q);
    assert_non_null(strstr(gen_last_error_message(), "newer"));
    assert_non_null(strstr(gen_last_error_message(), "99"));
    /* Nothing was downgraded. */
    db = raw_open(path);
    assert_int_equal(raw_int(db, "SELECT MAX(version) FROM queue_migrations"), 99);
    sqlite3_close(db);
}

static void write_file(const char *path, const char *text, size_t repeat)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < repeat; i++)
        fputs(text, f);
    fclose(f);
}

static void test_not_sqlite(void **state)
{
    (void)state;
    char path[300];
    qt_path(path, sizeof(path), dir, "text.db");
    write_file(path, "this is a shopping list, not a database\n", 200);
    gen_queue *q = (gen_queue *)1;
    assert_int_equal(gen_queue_open(&q, path, NULL), GEN_EDATABASE);
    assert_null(q);
    assert_non_null(strstr(gen_last_error_message(), "not a SQLite database"));
    assert_non_null(strstr(gen_last_error_message(), path));
}

static void overwrite(const char *path, off_t offset, size_t len, unsigned char byte)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    unsigned char *buf = malloc(len);
    memset(buf, byte, len);
    assert_int_equal(pwrite(fd, buf, len, offset), (ssize_t)len);
    free(buf);
    close(fd);
}

static void test_corrupt_file(void **state)
{
    (void)state;
    char path[300], wal[310];
    qt_path(path, sizeof(path), dir, "corrupt.db");
    gen_queue *q = open_ok(path);
    for (int i = 0; i < 20; i++)
        assert_true(qt_enqueue(q, i % 2 ? "A" : "B",
                               "{\"prompt\":\"a long prompt to fill pages with some text\"}", 100,
                               0, NULL, NULL) > 0);
    gen_queue_close(q); /* the last connection checkpoints the WAL into the file */
    snprintf(wal, sizeof(wal), "%s-wal", path);
    unlink(wal);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size > 64 * 4096);
    /* Garbage over most pages but the first: the schema still reads, the data does not. */
    overwrite(path, 4096 * 2, (size_t)sb.st_size - 4096 * 4, 0x5a);
    gen_status st = gen_queue_open(&q, path, NULL);
    if (st == GEN_OK) {
        gen_queue_counts c = GEN_QUEUE_COUNTS_INIT;
        st = gen_queue_get_counts(&c, q, NULL, NULL);
        if (st == GEN_OK) {
            gen_queue_item *it = NULL;
            st = gen_queue_claim(&it, q, "cpu:0", NULL, 0);
            gen_queue_item_destroy(it);
        }
        gen_queue_close(q);
    }
    assert_int_equal(st, GEN_EDATABASE);
    assert_non_null(strstr(gen_last_error_message(), "corrupt"));
    /* A damaged header: refused at open. */
    overwrite(path, 0, 16, 0x00);
    q = (gen_queue *)1;
    assert_int_equal(gen_queue_open(&q, path, NULL), GEN_EDATABASE);
    assert_null(q);
}

static void test_disk_full(void **state)
{
    (void)state;
    char path[300];
    qt_path(path, sizeof(path), dir, "full.db");
    gen_queue *q = open_ok(path);
    assert_true(qt_enqueue(q, "A", "{\"n\":1}", 10, 0, NULL, NULL) > 0);
    gen_queue_close(q);
    /* A child with a 400 KiB file-size limit enqueues until writing fails. */
    const char *args[] = {"fill", path, "409600", NULL};
    qt_child c = qt_spawn(args);
    long enqueued = -1;
    int status = 0, claim_status = 0;
    char line[1200];
    while (fgets(line, sizeof(line), c.out)) {
        sscanf(line, "enqueued %ld", &enqueued);
        sscanf(line, "status %d", &status);
        sscanf(line, "claim %d", &claim_status);
        if (strncmp(line, "message", 7) == 0)
            print_message("child: %s", line);
    }
    assert_int_equal(qt_wait(&c), 0);
    assert_true(enqueued > 0);
    if (status != GEN_ENOSPC && status != GEN_EIO)
        fail_msg("the full disk gave status %d", status);
    /* Every enqueue was all-or-nothing: the file holds exactly what succeeded,
     * and it is intact. */
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
    q = open_ok(path);
    gen_queue_counts counts = GEN_QUEUE_COUNTS_INIT;
    assert_int_equal(gen_queue_get_counts(&counts, q, NULL, NULL), GEN_OK);
    assert_int_equal(counts.pending + counts.in_progress, (uint64_t)(10 + enqueued));
    assert_int_equal(counts.total, (uint64_t)(10 + enqueued));
    /* And it still works. */
    assert_true(qt_enqueue(q, "A", "{\"n\":2}", 1, 0, NULL, NULL) > 0);
    gen_queue_close(q);
}

static void test_page_limit_full(void **state)
{
    (void)state;
    char path[300];
    qt_path(path, sizeof(path), dir, "limit.db");
    gen_queue *q = open_ok(path);
    int64_t first = qt_enqueue(q, "A", "{\"n\":1}", 5, 0, NULL, NULL);
    /* A small file limit: SQLite reports SQLITE_FULL past max_page_count. */
    pthread_mutex_lock(&q->lock);
    int64_t pages = 0;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(q->db, "PRAGMA page_count", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    pages = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", (long long)pages + 8);
    assert_int_equal(sqlite3_exec(q->db, sql, NULL, NULL, NULL), SQLITE_OK);
    pthread_mutex_unlock(&q->lock);
    char job[3000];
    snprintf(job, sizeof(job), "{\"prompt\":\"%2500d\"}", 7);
    gen_queue_batch b = GEN_QUEUE_BATCH_INIT;
    b.job = job;
    b.runs = 4;
    gen_status status = GEN_OK;
    uint64_t enqueued = 0;
    for (int i = 0; i < 200 && status == GEN_OK; i++) {
        gen_queue_enqueued *r = NULL;
        status = gen_queue_enqueue(&r, q, &b);
        enqueued += gen_queue_enqueued_count(r);
        gen_queue_enqueued_destroy(r);
    }
    assert_int_equal(status, GEN_ENOSPC);
    assert_non_null(strstr(gen_last_error_message(), "no space"));
    /* Status changes of existing rows still work (no new pages needed) or fail cleanly. */
    gen_queue_item *it = NULL;
    gen_status cst = gen_queue_claim(&it, q, "cpu:0", NULL, 0);
    assert_true(cst == GEN_OK || cst == GEN_ENOSPC);
    if (it)
        assert_int_equal(gen_queue_item_id(it), first);
    gen_queue_item_destroy(it);
    gen_queue_close(q);
    q = open_ok(path);
    gen_queue_counts c = GEN_QUEUE_COUNTS_INIT;
    assert_int_equal(gen_queue_get_counts(&c, q, NULL, NULL), GEN_OK);
    assert_int_equal(c.total, 5 + enqueued);
    gen_queue_close(q);
}

static void test_locked_database_is_busy(void **state)
{
    (void)state;
    char path[300];
    qt_path(path, sizeof(path), dir, "locked.db");
    gen_queue_options o = GEN_QUEUE_OPTIONS_INIT;
    o.heartbeat_ms = 0;
    o.busy_timeout_ms = 150;
    gen_queue *q = NULL;
    assert_int_equal(gen_queue_open(&q, path, &o), GEN_OK);
    int64_t id = qt_enqueue(q, "A", "{}", 1, 0, NULL, NULL);
    /* Another connection holds the write lock past the timeout. */
    sqlite3 *other = raw_open(path);
    raw_exec(other, "BEGIN IMMEDIATE");
    gen_queue_item *it = (gen_queue_item *)1;
    assert_int_equal(gen_queue_claim(&it, q, "cpu:0", NULL, 0), GEN_EBUSY);
    assert_null(it);
    assert_non_null(strstr(gen_last_error_message(), "locked"));
    /* Reads still work (WAL), and the claim succeeds once the lock is gone. */
    int32_t status = -1;
    assert_int_equal(gen_queue_get_status(&status, q, id), GEN_OK);
    assert_int_equal(status, GEN_QUEUE_PENDING);
    raw_exec(other, "ROLLBACK");
    sqlite3_close(other);
    assert_int_equal(gen_queue_claim(&it, q, "cpu:0", NULL, 0), GEN_OK);
    assert_int_equal(gen_queue_item_id(it), id);
    gen_queue_item_destroy(it);
    gen_queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_migrate_from_v1),
        cmocka_unit_test(test_migrate_from_v2),
        cmocka_unit_test(test_kill_during_migration),
        cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_not_sqlite),
        cmocka_unit_test(test_corrupt_file),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_page_limit_full),
        cmocka_unit_test(test_locked_database_is_busy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
