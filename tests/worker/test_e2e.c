/* End to end with the real pipeline on the tiny model and generation_devices
 * "cpu:0,cpu:1": 12 jobs from 3 users run on both devices, fairly; every PNG
 * reads back with its size and metadata; a process killed with SIGKILL in the
 * middle of its work is recovered on reopen: every item completes exactly once
 * and no partial PNG is left. */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <gen/gen.h>

#include "core/time.h"
#include "image/png.h"

#ifndef GEN_FIXTURES_DIR
#error GEN_FIXTURES_DIR must be defined by the build
#endif

static char self_path[4096];

static gen_context *context_on(const char *db, const char *out)
{
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    o.log_level = GEN_LOG_ERROR;
    assert_int_equal(gen_context_options_set(&o, "generation_devices", "cpu:0,cpu:1"), GEN_OK);
    assert_int_equal(gen_context_options_set(&o, "db_path", db), GEN_OK);
    assert_int_equal(gen_context_options_set(&o, "output_dir", out), GEN_OK);
    gen_context *ctx = NULL;
    if (gen_context_create(&ctx, &o) != GEN_OK)
        fail_msg("context: %s", gen_last_error_message());
    return ctx;
}

static void job_json(char *buf, size_t size, int steps, int seed)
{
    snprintf(buf, size,
             "{\"model\": \"%s/tiny-sd15\", \"prompt\": \"a red fox in the snow\", "
             "\"width\": 64, \"height\": 64, \"steps\": %d, \"guidance\": 7.5, "
             "\"scheduler\": \"euler_a\", \"seed\": %d}",
             GEN_FIXTURES_DIR, steps, seed);
}

static gen_queue_enqueued *enqueue(gen_queue *q, const char *user, int runs, int steps, int seed)
{
    char job[1024];
    job_json(job, sizeof(job), steps, seed);
    gen_queue_batch b = GEN_QUEUE_BATCH_INIT;
    b.job = job;
    b.runs = (uint32_t)runs;
    b.user_id = user;
    gen_queue_enqueued *r = NULL;
    if (gen_queue_enqueue(&r, q, &b) != GEN_OK)
        fail_msg("enqueue: %s", gen_last_error_message());
    return r;
}

static gen_queue_counts counts_of(gen_queue *q)
{
    gen_queue_counts c = {.version = GEN_QUEUE_COUNTS_VERSION};
    assert_int_equal(gen_queue_get_counts(&c, q, NULL, NULL), GEN_OK);
    return c;
}

static void wait_done(gen_queue *q, uint64_t total, int timeout_s)
{
    int64_t deadline = gen__monotonic_ns() + (int64_t)timeout_s * 1000000000LL;
    for (;;) {
        gen_queue_counts c = counts_of(q);
        if (c.completed + c.failed + c.canceled == total && c.total == total)
            return;
        if (gen__monotonic_ns() > deadline)
            fail_msg("not finished: %llu completed, %llu failed, %llu pending, %llu running",
                     (unsigned long long)c.completed, (unsigned long long)c.failed,
                     (unsigned long long)c.pending, (unsigned long long)c.in_progress);
        usleep(20000);
    }
}

/* Every file in `dir`: PNGs of items (counted per item id) and anything else. */
static void scan_outputs(const char *dir, int *pngs, int *others, int per_item[], int max_item)
{
    *pngs = *others = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || strcmp(e->d_name, "..") == 0))
            continue;
        unsigned tag = 0, seed = 0;
        int item = 0;
        if (sscanf(e->d_name, "q%8x-%d-%u", &tag, &item, &seed) == 3 && strstr(e->d_name, ".png")) {
            (*pngs)++;
            if (item > 0 && item <= max_item)
                per_item[item]++;
        } else {
            (*others)++;
            print_message("unexpected file in the output folder: %s\n", e->d_name);
        }
    }
    closedir(d);
}

static void test_twelve_jobs_three_users(void **state)
{
    (void)state;
    char dir[] = "/tmp/libgen-e2e-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[128], out[128];
    snprintf(db, sizeof(db), "%s/queue.db", dir);
    snprintf(out, sizeof(out), "%s/images", dir);
    gen_context *ctx = context_on(db, out);
    gen_queue *q = gen_context_queue(ctx);
    gen_queue_enqueued *e[3] = {enqueue(q, "ann", 4, 4, 100), enqueue(q, "ben", 4, 4, 200),
                                enqueue(q, "cat", 4, 4, 300)};
    assert_int_equal(gen_context_start(ctx), GEN_OK);
    wait_done(q, 12, 600);
    assert_int_equal(counts_of(q).completed, 12);

    int used[2] = {0, 0};
    int64_t first[3] = {INT64_MAX, INT64_MAX, INT64_MAX}, second[3] = {INT64_MAX, INT64_MAX, INT64_MAX};
    for (int u = 0; u < 3; u++) {
        for (size_t k = 0; k < gen_queue_enqueued_count(e[u]); k++) {
            gen_queue_item *it = NULL;
            assert_int_equal(gen_queue_get(&it, q, gen_queue_enqueued_item_id(e[u], k)), GEN_OK);
            used[strcmp(gen_queue_item_device(it), "cpu:0") == 0 ? 0 : 1]++;
            int64_t t = gen_queue_item_started_at(it);
            if (t < first[u]) {
                second[u] = first[u];
                first[u] = t;
            } else if (t < second[u]) {
                second[u] = t;
            }
            gen_queue_item_destroy(it);
        }
    }
    assert_true(used[0] > 0 && used[1] > 0);
    int64_t latest_first = 0, earliest_second = INT64_MAX;
    for (int u = 0; u < 3; u++) {
        latest_first = first[u] > latest_first ? first[u] : latest_first;
        earliest_second = second[u] < earliest_second ? second[u] : earliest_second;
    }
    assert_true(latest_first <= earliest_second); /* everyone served once before anyone twice */

    /* The images table names each item's file. */
    char image_path[512];
    size_t image_needed = 0;
    int64_t first_id = gen_queue_enqueued_item_id(e[0], 0);
    assert_int_equal(gen_queue_item_image(q, first_id, NULL, 0, &image_needed), GEN_OK);
    assert_int_equal(gen_queue_item_image(q, first_id, image_path, sizeof(image_path),
                                          &image_needed),
                     GEN_OK);
    assert_non_null(strstr(image_path, out));
    assert_int_equal(access(image_path, R_OK), 0);

    /* Every PNG reads back: size and metadata. */
    DIR *d = opendir(out);
    assert_non_null(d);
    struct dirent *de;
    int pngs = 0;
    while ((de = readdir(d)) != NULL) {
        if (!strstr(de->d_name, ".png"))
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", out, de->d_name);
        gen__rgb_image img = {0, 0, NULL};
        assert_int_equal(gen__png_decode_file(path, 0, 0, &img), GEN_OK);
        assert_int_equal(img.width, 64);
        assert_int_equal(img.height, 64);
        gen__rgb_image_free(&img);
        size_t needed = 0;
        assert_int_equal(gen_image_read_metadata(path, NULL, 0, &needed), GEN_OK);
        char *meta = malloc(needed);
        assert_int_equal(gen_image_read_metadata(path, meta, needed, &needed), GEN_OK);
        json_t *m = json_loads(meta, 0, NULL);
        assert_non_null(m);
        assert_string_equal(json_string_value(json_object_get(m, "prompt")), "a red fox in the snow");
        assert_int_equal(json_integer_value(json_object_get(m, "steps")), 4);
        int64_t seed = json_integer_value(json_object_get(m, "seed"));
        assert_true((seed >= 100 && seed < 104) || (seed >= 200 && seed < 204) ||
                    (seed >= 300 && seed < 304)); /* run i gets seed + i */
        json_decref(m);
        free(meta);
        pngs++;
    }
    closedir(d);
    assert_int_equal(pngs, 12);
    assert_int_equal(gen_context_stop(ctx, GEN_STOP_DRAIN), GEN_OK);
    for (int u = 0; u < 3; u++)
        gen_queue_enqueued_destroy(e[u]);
    gen_context_destroy(ctx);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Child mode: serve the queue until killed. */
static int serve(const char *db, const char *out)
{
    gen_context *ctx = context_on(db, out);
    if (gen_context_start(ctx) != GEN_OK)
        return 1;
    for (;;)
        pause();
}

static void test_kill_9_then_recover(void **state)
{
    (void)state;
    char dir[] = "/tmp/libgen-kill-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[128], out[128];
    snprintf(db, sizeof(db), "%s/queue.db", dir);
    snprintf(out, sizeof(out), "%s/images", dir);
    const int items = 6;
    {
        gen_queue *q = NULL;
        assert_int_equal(gen_queue_open(&q, db, NULL), GEN_OK);
        /* 60 steps: long enough that the kill lands in the middle of items. */
        gen_queue_enqueued *e = enqueue(q, "ann", items, 60, 7);
        gen_queue_enqueued_destroy(e);
        gen_queue_close(q);
    }
    pid_t child = fork();
    if (child == 0) {
        execl(self_path, "test_e2e", "--serve", db, out, (char *)NULL);
        _exit(127);
    }
    /* Kill it once something completed and something is running. */
    gen_queue *q = NULL;
    assert_int_equal(gen_queue_open(&q, db, NULL), GEN_OK);
    int64_t deadline = gen__monotonic_ns() + 300000000000LL;
    for (;;) {
        gen_queue_counts c = counts_of(q);
        if (c.completed >= 1 && c.in_progress >= 1)
            break;
        if (gen__monotonic_ns() > deadline)
            fail_msg("the child never had work in progress");
        usleep(5000);
    }
    assert_int_equal(kill(child, SIGKILL), 0);
    int ws = 0;
    assert_int_equal(waitpid(child, &ws, 0), child);
    assert_true(WIFSIGNALED(ws));
    gen_queue_counts at_kill = counts_of(q);
    gen_queue_close(q);
    print_message("killed with %llu completed, %llu in progress\n",
                  (unsigned long long)at_kill.completed, (unsigned long long)at_kill.in_progress);

    /* Reopen: the dead process's items go back to pending and are finished. */
    gen_context *ctx = context_on(db, out);
    q = gen_context_queue(ctx);
    assert_int_equal(counts_of(q).in_progress, 0);
    assert_int_equal(gen_context_start(ctx), GEN_OK);
    wait_done(q, (uint64_t)items, 600);
    gen_queue_counts c = counts_of(q);
    assert_int_equal(c.completed, (uint64_t)items);
    assert_int_equal(gen_context_stop(ctx, GEN_STOP_DRAIN), GEN_OK);
    gen_context_destroy(ctx);

    int per_item[16] = {0}, pngs = 0, others = 0;
    scan_outputs(out, &pngs, &others, per_item, 15);
    assert_int_equal(pngs, items);   /* one image per item: none ran twice to completion */
    assert_int_equal(others, 0);     /* no partial or temporary file left behind */
    for (int i = 1; i <= items; i++)
        assert_int_equal(per_item[i], 1);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
    if (!realpath(argv[0], self_path))
        snprintf(self_path, sizeof(self_path), "%s", argv[0]);
    if (argc == 4 && strcmp(argv[1], "--serve") == 0)
        return serve(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twelve_jobs_three_users),
        cmocka_unit_test(test_kill_9_then_recover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
