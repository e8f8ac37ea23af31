/* kill -9 in the middle of writing an image, made deterministic with crash
 * points (core/crash_point.h) in a worker process serving the queue:
 *   image.temp_half_written  half the PNG is in the temporary file;
 *   image.before_rename      the whole PNG is in the temporary file;
 *   image.after_rename       the PNG is in place, the item not yet completed.
 * After each kill: no partial file under an image's name, the item is still
 * in progress under its dead owner; a new process recovers it, removes the
 * dead writer's temporary file and completes every item exactly once, with
 * one readable image each. */
#include <dirent.h>
#include <stdbool.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include <gen/gen.h>

#include "core/crash_point.h"
#include "core/time.h"
#include "image/png.h"
#include "reliability_util.h"

#ifndef GEN_FIXTURES_DIR
#error GEN_FIXTURES_DIR must be defined by the build
#endif

enum { ITEMS = 2 };

static char self_path[4096];

/* One device: the items run one after the other, so the first image write
 * is item 1's. */
static gen_context *context_on(const char *db, const char *out)
{
    gen_context *ctx = rt_cpu_context(db, out);
    if (!ctx)
        fail_msg("context: %s", gen_last_error_message());
    return ctx;
}

static gen_queue_counts counts_of(gen_queue *q)
{
    gen_queue_counts c = GEN_QUEUE_COUNTS_INIT;
    assert_int_equal(gen_queue_get_counts(&c, q, NULL, NULL), GEN_OK);
    return c;
}

/* Child mode: arm `point`, serve the queue; exit 3 if every item finished
 * without the point being reached. */
static int serve_until_crash(const char *db, const char *out, const char *point)
{
    gen__crash_point_arm(point, 1);
    gen_context *ctx = rt_cpu_context(db, out);
    if (!ctx || gen_context_start(ctx) != GEN_OK)
        return 1;
    int64_t deadline = gen__monotonic_ns() + 600000000000LL; /* a hang guard (valgrind is slow) */
    while (gen__monotonic_ns() < deadline) {
        gen_queue_counts c = counts_of(gen_context_queue(ctx));
        if (c.completed + c.failed + c.canceled == ITEMS)
            return 3;
        usleep(10000);
    }
    return 4;
}

/* The files in `dir`: images (by item id, 1..ITEMS) and temporary files. */
typedef struct listing {
    int images[ITEMS + 1];
    char image_path[ITEMS + 1][1024];
    int temps;
    off_t temp_size;
    int others;
} listing;

static listing list_dir(const char *dir)
{
    listing l;
    memset(&l, 0, sizeof l);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unsigned tag = 0, seed = 0;
        int item = 0;
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        if (sscanf(e->d_name, "q%8x-%d-%u", &tag, &item, &seed) == 3 && item >= 1 &&
            item <= ITEMS && strstr(e->d_name, ".png")) {
            l.images[item]++;
            snprintf(l.image_path[item], sizeof l.image_path[item], "%s", path);
        } else if (strncmp(e->d_name, ".libgen-", 8) == 0 && strstr(e->d_name, ".tmp")) {
            l.temps++;
            l.temp_size = sb.st_size;
        } else {
            print_message("unexpected file: %s\n", e->d_name);
            l.others++;
        }
    }
    closedir(d);
    return l;
}

/* An item's status read straight from the file. */
static const char *raw_status(sqlite3 *db, int64_t item)
{
    static char buf[32];
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT status FROM queue_items WHERE item_id = ?", -1,
                                        &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, item);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(buf, sizeof buf, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return buf;
}

static void expect_readable_image(const char *path)
{
    gen__rgb_image rgb = {0, 0, NULL};
    if (gen__png_decode_file(path, 0, 0, &rgb) != GEN_OK)
        fail_msg("%s: %s", path, gen_last_error_message());
    assert_int_equal(rgb.width, 64);
    assert_int_equal(rgb.height, 64);
    gen__rgb_image_free(&rgb);
    char meta[2048];
    assert_int_equal(gen_image_read_metadata(path, meta, sizeof meta, NULL), GEN_OK);
    assert_non_null(strstr(meta, "\"prompt\""));
}

static void crash_at(const char *point)
{
    char dir[] = "/tmp/libgen-crash-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[128], out[128];
    snprintf(db, sizeof db, "%s/queue.db", dir);
    snprintf(out, sizeof out, "%s/images", dir);
    gen_queue *q = NULL;
    assert_int_equal(gen_queue_open(&q, db, NULL), GEN_OK);
    gen_queue_batch b = GEN_QUEUE_BATCH_INIT;
    b.job = "{\"model\": \"" GEN_FIXTURES_DIR "/tiny-sd15\", \"prompt\": \"a lighthouse\", "
            "\"width\": 64, \"height\": 64, \"steps\": 2, \"seed\": 11}";
    b.runs = ITEMS;
    gen_queue_enqueued *r = NULL;
    assert_int_equal(gen_queue_enqueue(&r, q, &b), GEN_OK);
    int64_t first = gen_queue_enqueued_item_id(r, 0);
    gen_queue_enqueued_destroy(r);
    gen_queue_close(q);
    assert_int_equal(first, 1);

    pid_t child = fork();
    if (child == 0) {
        execl(self_path, "test_crash", "--serve-until-crash", db, out, point, (char *)NULL);
        _exit(127);
    }
    int ws = 0;
    assert_int_equal(waitpid(child, &ws, 0), child);
    if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGKILL)
        fail_msg("%s: the worker was not killed there (exit %d)", point,
                 WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);

    /* At the moment of the kill. */
    listing at_kill = list_dir(out);
    bool renamed = strcmp(point, "image.after_rename") == 0;
    assert_int_equal(at_kill.images[1], renamed ? 1 : 0); /* no partial file under its name */
    assert_int_equal(at_kill.images[2], 0);
    assert_int_equal(at_kill.temps, renamed ? 0 : 1);     /* the dead writer's temporary file */
    assert_int_equal(at_kill.others, 0);
    if (renamed)
        expect_readable_image(at_kill.image_path[1]); /* in place whole, not yet recorded */
    /* Without opening a queue (that would recover the item at once): item 1
     * is still in progress under the dead process, item 2 never started. */
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open_v2(db, &raw, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_string_equal(raw_status(raw, 1), "in_progress");
    assert_string_equal(raw_status(raw, 2), "pending");
    sqlite3_close(raw);

    /* A new process (this one) opens the queue: item 1 is recovered, the
     * temporary file removed when the workers start, every item completes. */
    gen_context *ctx = context_on(db, out);
    q = gen_context_queue(ctx);
    gen_queue_counts c = counts_of(q);
    assert_int_equal(c.in_progress, 0);
    assert_int_equal(c.pending, ITEMS);
    assert_int_equal(gen_context_start(ctx), GEN_OK);
    int64_t deadline = gen__monotonic_ns() + 600000000000LL; /* a hang guard (valgrind is slow) */
    do {
        usleep(10000);
        c = counts_of(q);
        if (gen__monotonic_ns() > deadline)
            fail_msg("%s: items did not finish after the restart", point);
    } while (c.completed + c.failed + c.canceled < ITEMS);
    assert_int_equal(c.completed, ITEMS);
    gen_queue_item *it = NULL;
    assert_int_equal(gen_queue_get(&it, q, 1), GEN_OK);
    assert_int_equal(gen_queue_item_attempts(it), 1); /* one interrupted run, then completed */
    gen_queue_item_destroy(it);
    assert_int_equal(gen_queue_get(&it, q, 2), GEN_OK);
    assert_int_equal(gen_queue_item_attempts(it), 0);
    gen_queue_item_destroy(it);
    assert_int_equal(gen_context_stop(ctx, GEN_STOP_DRAIN), GEN_OK);
    gen_context_destroy(ctx);

    listing after = list_dir(out);
    assert_int_equal(after.temps, 0);
    assert_int_equal(after.others, 0);
    for (int i = 1; i <= ITEMS; i++) {
        assert_int_equal(after.images[i], 1); /* one image per item */
        expect_readable_image(after.image_path[i]);
    }
    /* The temporary file held exactly half of the image, or all of it. */
    struct stat sb;
    assert_int_equal(stat(after.image_path[1], &sb), 0);
    if (strcmp(point, "image.temp_half_written") == 0)
        assert_int_equal(at_kill.temp_size, sb.st_size / 2);
    else if (!renamed)
        assert_int_equal(at_kill.temp_size, sb.st_size);
    print_message("%s: killed with %d temporary file(s) of %lld bytes; recovered, %d images\n",
                  point, at_kill.temps, (long long)at_kill.temp_size, ITEMS);
    assert_int_equal(rt_rmtree(dir), 0);
}

static void test_kill_with_half_a_temporary_file(void **state)
{
    (void)state;
    crash_at("image.temp_half_written");
}

static void test_kill_before_the_rename(void **state)
{
    (void)state;
    crash_at("image.before_rename");
}

static void test_kill_after_the_rename(void **state)
{
    (void)state;
    crash_at("image.after_rename");
}

int main(int argc, char **argv)
{
    if (!realpath(argv[0], self_path))
        snprintf(self_path, sizeof self_path, "%s", argv[0]);
    if (argc == 5 && strcmp(argv[1], "--serve-until-crash") == 0)
        return serve_until_crash(argv[2], argv[3], argv[4]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_with_half_a_temporary_file),
        cmocka_unit_test(test_kill_before_the_rename),
        cmocka_unit_test(test_kill_after_the_rename),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
