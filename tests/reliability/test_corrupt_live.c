/* A database page corrupted under a running context (by a disk or another
 * program): queue calls fail with GEN_EDATABASE naming the corruption, the
 * worker stops after its repeated claim failures and reports a WORKER_ERROR
 * event with the reason, and nothing crashes; stop and destroy still work.
 * No model is needed: the workers never get an item. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include <gen/gen.h>

#include "reliability_util.h"

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(db);
}

static void overwrite(const char *path, off_t at, size_t len, int byte)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    char *buf = malloc(len);
    assert_non_null(buf);
    memset(buf, byte, len);
    assert_int_equal(pwrite(fd, buf, len, at), (ssize_t)len);
    fsync(fd);
    free(buf);
    close(fd);
}

static void test_corruption_under_a_running_context(void **state)
{
    (void)state;
    char dir[] = "/tmp/libgen-corrupt-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[128], out[128];
    snprintf(db, sizeof db, "%s/q.db", dir);
    snprintf(out, sizeof out, "%s/images", dir);

    gen_context *ctx = rt_cpu_context(db, out);
    assert_non_null(ctx);
    assert_int_equal(gen_context_enable_event_queue(ctx, 0), GEN_OK);
    gen_queue *q = gen_context_queue(ctx);
    /* Enough rows for many pages; the model does not exist, but no item will run. */
    for (int i = 0; i < 20; i++) {
        gen_queue_batch b = GEN_QUEUE_BATCH_INIT;
        b.user_id = i % 2 ? "ann" : "bob";
        b.job = "{\"model\": \"/nonexistent\", \"prompt\": \"a long prompt that fills the pages "
                "of the queue file with some text\"}";
        b.runs = 100;
        gen_queue_enqueued *r = NULL;
        assert_int_equal(gen_queue_enqueue(&r, q, &b), GEN_OK);
        gen_queue_enqueued_destroy(r);
    }
    gen_queue_counts c = GEN_QUEUE_COUNTS_INIT;
    assert_int_equal(gen_queue_get_counts(&c, q, NULL, NULL), GEN_OK);
    assert_int_equal(c.pending, 2000);

    /* Everything into the main file, then garbage over all pages but the
     * first two and the last two; a write by another connection makes the
     * context's connection drop its cached pages, as any change would. */
    {
        /* The pragma's row: busy flag, WAL frames, frames checkpointed. */
        sqlite3 *raw = NULL;
        sqlite3_stmt *ck = NULL;
        assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
        sqlite3_busy_timeout(raw, 10000);
        assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &ck, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(ck), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(ck, 0), 0); /* not blocked by a reader */
        assert_int_equal(sqlite3_column_int(ck, 1), sqlite3_column_int(ck, 2));
        sqlite3_finalize(ck);
        sqlite3_close(raw);
    }
    struct stat sb;
    assert_int_equal(stat(db, &sb), 0);
    assert_true(sb.st_size > 64 * 4096);
    overwrite(db, 4096 * 2, (size_t)sb.st_size - 4096 * 4, 0x5a);
    raw_exec(db, "PRAGMA user_version = 7");

    gen_status st = gen_queue_get_counts(&c, q, NULL, NULL);
    assert_int_equal(st, GEN_EDATABASE);
    print_message("counts: %s\n", gen_last_error_message());
    assert_non_null(strstr(gen_last_error_message(), "corrupt"));
    gen_queue_item *it = NULL;
    assert_int_equal(gen_queue_claim(&it, q, "cpu:0", NULL, 0), GEN_EDATABASE);
    assert_null(it);

    /* The worker: its claims fail until it gives up and says why. */
    assert_int_equal(gen_context_start(ctx), GEN_OK);
    gen_event *ev = NULL;
    int worker_errors = 0;
    while (gen_context_next_event(ctx, &ev, 30000) == GEN_OK) {
        if (gen_event_type_of(ev) == GEN_EVENT_WORKER_ERROR) {
            print_message("worker error: %s\n", gen_event_message(ev));
            assert_non_null(strstr(gen_event_message(ev), "corrupt"));
            worker_errors++;
        }
        gen_event_destroy(ev);
        if (worker_errors)
            break;
    }
    assert_int_equal(worker_errors, 1);
    assert_int_equal(gen_context_stop(ctx, GEN_STOP_CANCEL), GEN_OK);
    gen_context_destroy(ctx);

    /* Opening it again is refused with the same reason. */
    gen_queue *again = NULL;
    st = gen_queue_open(&again, db, NULL);
    if (st == GEN_OK) {
        st = gen_queue_get_counts(&c, again, NULL, NULL);
        gen_queue_close(again);
    }
    assert_int_equal(st, GEN_EDATABASE);
    assert_non_null(strstr(gen_last_error_message(), "corrupt"));
    assert_int_equal(rt_rmtree(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corruption_under_a_running_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
