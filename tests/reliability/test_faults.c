/* Fault injection: allocation failures through model loading and a whole
 * generation (every Kth allocation, sampled), a file-size limit while saving
 * an image, an output folder that cannot be written while a worker runs, and
 * a full filesystem (a small tmpfs) under a running worker.
 * Each must give a clean error, leave no partial file and leak nothing (the
 * sanitizer stage checks leaks). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <gen/gen.h>

#include "core/alloc.h"
#include "core/time.h"
#include "reliability_util.h"

#ifndef GEN_FIXTURES_DIR
#error GEN_FIXTURES_DIR must be defined by the build
#endif

static gen_job *tiny_job(void)
{
    gen_job *job = NULL;
    assert_int_equal(gen_job_create(&job), GEN_OK);
    assert_int_equal(gen_job_set(job, "model", GEN_FIXTURES_DIR "/tiny-sd15"), GEN_OK);
    assert_int_equal(gen_job_set(job, "prompt", "a small boat"), GEN_OK);
    assert_int_equal(gen_job_set(job, "width", "64"), GEN_OK);
    assert_int_equal(gen_job_set(job, "height", "64"), GEN_OK);
    assert_int_equal(gen_job_set(job, "steps", "2"), GEN_OK);
    assert_int_equal(gen_job_set(job, "seed", "5"), GEN_OK);
    return job;
}

static gen_context *cpu_context(void)
{
    gen_context *ctx = rt_cpu_context(NULL, NULL);
    assert_non_null(ctx);
    return ctx;
}

static void test_allocation_failures_through_generation(void **state)
{
    (void)state;
    /* Count the allocations of one generation (model load included: a fresh
     * context each time), then fail allocation k for a spread of k. */
    gen_job *job = tiny_job();
    gen_context *ctx = cpu_context();
    gen__alloc_fail_after(0, 0);
    gen_image *img = NULL;
    assert_int_equal(gen_generate(&img, ctx, 0, job, NULL, NULL), GEN_OK);
    long total = gen__alloc_fail_after(0, 0);
    gen_image_destroy(img);
    gen_context_destroy(ctx);
    assert_true(total > 10);
    const char *env = getenv("LIBGEN_FAULT_SAMPLES");
    long samples = env ? atol(env) : 60;
    long stride = total / samples > 0 ? total / samples : 1;
    int failed_cleanly = 0, succeeded = 0;
    for (long k = 1; k <= total; k += stride) {
        ctx = cpu_context();
        gen__alloc_fail_after(k, 0); /* exactly the k-th allocation from here fails */
        img = (gen_image *)1;
        gen_status st = gen_generate(&img, ctx, 0, job, NULL, NULL);
        gen__alloc_fail_after(0, 0);
        if (st == GEN_OK) {
            /* a failure some code tolerates (e.g. a best-effort event) */
            assert_non_null(img);
            gen_image_destroy(img);
            succeeded++;
        } else {
            assert_null(img);
            assert_true(strlen(gen_last_error_message()) > 0);
            failed_cleanly++;
        }
        gen_context_destroy(ctx);
    }
    print_message("allocation failures: %ld allocations per generation, %d injected faults "
                  "failed cleanly, %d were tolerated\n",
                  total, failed_cleanly, succeeded);
    assert_true(failed_cleanly > 0);
    gen_job_destroy(job);
}

static void test_file_size_limit_while_saving(void **state)
{
    (void)state;
    char dir[] = "/tmp/libgen-fsize-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/out.png", dir);
    pid_t child = fork();
    if (child == 0) {
        /* A 64x64 PNG is larger than 1 KiB: the write fails with EFBIG. */
        signal(SIGXFSZ, SIG_IGN);
        gen_context *ctx = cpu_context();
        gen_job *job = tiny_job();
        gen_image *img = NULL;
        if (gen_generate(&img, ctx, 0, job, NULL, NULL) != GEN_OK)
            _exit(2);
        struct rlimit lim = {1024, 1024};
        setrlimit(RLIMIT_FSIZE, &lim);
        gen_status st = gen_image_save_png(img, path);
        int ok = (st == GEN_EIO || st == GEN_ENOSPC) &&
                 strstr(gen_last_error_message(), dir) != NULL;
        if (!ok)
            fprintf(stderr, "save: status %d: %s\n", (int)st, gen_last_error_message());
        gen_image_destroy(img);
        gen_job_destroy(job);
        gen_context_destroy(ctx);
        _exit(ok ? 0 : 1);
    }
    int ws = 0;
    assert_int_equal(waitpid(child, &ws, 0), child);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    /* Nothing left behind: no image, no temporary file. */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s)\"", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(rt_rmtree(dir), 0);
}

static void test_unwritable_output_fails_the_item(void **state)
{
    (void)state;
    char dir[] = "/tmp/libgen-out-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[128], blocker[128];
    snprintf(db, sizeof(db), "%s/q.db", dir);
    snprintf(blocker, sizeof(blocker), "%s/not-a-folder", dir);
    FILE *f = fopen(blocker, "w"); /* output_dir names a regular file */
    assert_non_null(f);
    fclose(f);
    gen_context *ctx = rt_cpu_context(db, blocker);
    assert_non_null(ctx);
    gen_queue_batch b = GEN_QUEUE_BATCH_INIT;
    b.job = "{\"model\": \"" GEN_FIXTURES_DIR "/tiny-sd15\", \"prompt\": \"x\", \"width\": 64, "
            "\"height\": 64, \"steps\": 2, \"seed\": 1}";
    b.runs = 2;
    gen_queue_enqueued *r = NULL;
    assert_int_equal(gen_queue_enqueue(&r, gen_context_queue(ctx), &b), GEN_OK);
    assert_int_equal(gen_context_start(ctx), GEN_OK);
    gen_queue_counts c = {.version = GEN_QUEUE_COUNTS_VERSION};
    int64_t deadline = gen__monotonic_ns() + 120000000000LL;
    do {
        usleep(10000);
        assert_int_equal(gen_queue_get_counts(&c, gen_context_queue(ctx), NULL, NULL), GEN_OK);
        assert_true(gen__monotonic_ns() < deadline);
    } while (c.failed + c.completed < 2);
    assert_int_equal(c.failed, 2); /* each item failed with the reason; nothing stuck */
    assert_int_equal(c.in_progress, 0);
    gen_queue_item *it = NULL;
    assert_int_equal(gen_queue_get(&it, gen_context_queue(ctx), gen_queue_enqueued_item_id(r, 0)),
                     GEN_OK);
    print_message("item error: %s\n", gen_queue_item_error_message(it));
    assert_non_null(strstr(gen_queue_item_error_message(it), "not-a-folder"));
    gen_queue_item_destroy(it);
    gen_queue_enqueued_destroy(r);
    assert_int_equal(gen_context_stop(ctx, GEN_STOP_DRAIN), GEN_OK);
    gen_context_destroy(ctx);
    assert_int_equal(rt_rmtree(dir), 0);
}

static char self_path[4096];

/* A private mount namespace in which this process may mount: as root directly,
 * otherwise through a user namespace. false where neither is allowed (a
 * container without CAP_SYS_ADMIN and with user namespaces off). */
static bool enter_mount_namespace(void)
{
    if (unshare(CLONE_NEWNS) != 0) {
        uid_t uid = getuid();
        gid_t gid = getgid();
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
            return false;
        char map[64];
        snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
        FILE *f = fopen("/proc/self/uid_map", "w");
        if (!f || fputs(map, f) < 0 || fclose(f) != 0)
            return false;
        f = fopen("/proc/self/setgroups", "w");
        if (f) {
            fputs("deny", f);
            fclose(f);
        }
        snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
        f = fopen("/proc/self/gid_map", "w");
        if (!f || fputs(map, f) < 0 || fclose(f) != 0)
            return false;
    }
    /* Keep our mounts from propagating to the rest of the machine. */
    return mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
}

/* Child mode (exec'd inside the private mount namespace, with `dir`/images a
 * 256 KiB tmpfs): a worker whose output folder is full (the queue file is
 * elsewhere). Both items must fail with "no space", leave no file, and the
 * queue stay consistent; once space is freed, retrying them completes them. */
static int full_tmpfs_child(const char *dir)
{
    char out[256], db[256], filler[300];
    snprintf(out, sizeof out, "%s/images", dir);
    snprintf(db, sizeof db, "%s/q.db", dir);
    snprintf(filler, sizeof filler, "%s/filler", out);
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(filler);
        return 2;
    }
    char block[4096];
    memset(block, 0xab, sizeof block);
    while (write(fd, block, sizeof block) > 0) {
    }
    if (errno != ENOSPC) {
        perror("filling the tmpfs");
        return 2;
    }
    close(fd);

    gen_context *ctx = rt_cpu_context(db, out);
    if (!ctx)
        return 2;
    gen_queue *q = gen_context_queue(ctx);
    gen_queue_batch b = GEN_QUEUE_BATCH_INIT;
    b.job = "{\"model\": \"" GEN_FIXTURES_DIR "/tiny-sd15\", \"prompt\": \"x\", \"width\": 64, "
            "\"height\": 64, \"steps\": 2, \"seed\": 1}";
    b.runs = 2;
    gen_queue_enqueued *r = NULL;
    if (gen_queue_enqueue(&r, q, &b) != GEN_OK || gen_context_start(ctx) != GEN_OK)
        return 2;
    int64_t ids[2] = {gen_queue_enqueued_item_id(r, 0), gen_queue_enqueued_item_id(r, 1)};
    gen_queue_enqueued_destroy(r);
    gen_queue_counts c = GEN_QUEUE_COUNTS_INIT;
    int64_t deadline = gen__monotonic_ns() + 120000000000LL;
    do {
        usleep(10000);
        if (gen_queue_get_counts(&c, q, NULL, NULL) != GEN_OK || gen__monotonic_ns() > deadline)
            return 3;
    } while (c.failed + c.completed < 2);
    int ok = c.failed == 2 && c.in_progress == 0 && c.pending == 0 && c.total == 2;
    for (int i = 0; i < 2; i++) {
        gen_queue_item *it = NULL;
        if (gen_queue_get(&it, q, ids[i]) != GEN_OK)
            return 3;
        const char *msg = gen_queue_item_error_message(it);
        fprintf(stderr, "item %lld: %s: %s\n", (long long)ids[i], gen_queue_item_error_type(it),
                msg ? msg : "(none)");
        ok = ok && msg && strstr(msg, "No space left") && strstr(msg, out);
        gen_queue_item_destroy(it);
    }
    /* Nothing but the filler in the folder: no temporary file left behind. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test \"$(ls -A %s)\" = filler", out);
    ok = ok && system(cmd) == 0;
    /* Free the space and retry: the same jobs complete. */
    unlink(filler);
    gen_queue_enqueued *again = NULL;
    ok = ok && gen_queue_retry(&again, q, ids, 2, NULL, 1) == GEN_OK;
    gen_queue_enqueued_destroy(again);
    do {
        usleep(10000);
        if (gen_queue_get_counts(&c, q, NULL, NULL) != GEN_OK || gen__monotonic_ns() > deadline)
            return 3;
    } while (c.pending + c.in_progress > 0);
    fprintf(stderr, "after the retry: %llu completed, %llu failed\n",
            (unsigned long long)c.completed, (unsigned long long)c.failed);
    ok = ok && c.completed == 2 && c.failed == 2;
    gen_context_stop(ctx, GEN_STOP_DRAIN);
    gen_context_destroy(ctx);
    umount(out);
    return ok ? 0 : 1;
}

static void test_full_filesystem_fails_the_items(void **state)
{
    (void)state;
    char dir[] = "/tmp/libgen-full-XXXXXX";
    assert_non_null(mkdtemp(dir));
    pid_t child = fork();
    if (child == 0) {
        /* The namespace and the mount before exec: unshare(CLONE_NEWUSER)
         * needs a single-threaded process, which a fresh fork is (the
         * exec'd program starts BLAS threads as soon as it loads). */
        char out[300];
        snprintf(out, sizeof out, "%s/images", dir);
        if (mkdir(out, 0755) != 0 || !enter_mount_namespace()) {
            fprintf(stderr, "no mount namespace: %s\n", strerror(errno));
            _exit(77);
        }
        if (mount("libgen-test", out, "tmpfs", 0, "size=256k") != 0) {
            fprintf(stderr, "cannot mount a tmpfs: %s\n", strerror(errno));
            _exit(77);
        }
        execl(self_path, "test_faults", "--full-tmpfs", dir, (char *)NULL);
        _exit(127);
    }
    int ws = 0;
    assert_int_equal(waitpid(child, &ws, 0), child);
    assert_int_equal(rt_rmtree(dir), 0);
    assert_true(WIFEXITED(ws));
    if (WEXITSTATUS(ws) == 77) {
        print_message("skipped: this machine allows no private mount namespace (see stderr)\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(ws), 0);
}

int main(int argc, char **argv)
{
    if (!realpath(argv[0], self_path))
        snprintf(self_path, sizeof self_path, "%s", argv[0]);
    if (argc == 3 && strcmp(argv[1], "--full-tmpfs") == 0)
        return full_tmpfs_child(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocation_failures_through_generation),
        cmocka_unit_test(test_file_size_limit_while_saving),
        cmocka_unit_test(test_unwritable_output_fails_the_item),
        cmocka_unit_test(test_full_filesystem_fails_the_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
