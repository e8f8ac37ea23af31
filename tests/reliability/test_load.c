/* Load test: for LIBGEN_LOAD_SECONDS (default 3) seconds, 4 threads enqueue,
 * 2 real processes claim and complete, 1 thread cancels at random, all on one
 * SQLite file. Then the claimers drain the queue and the invariants are
 * checked: every item ended in exactly one terminal state, none was claimed
 * twice, none was completed after being canceled, and the counts add up.
 * The figures are printed (operations per second). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* This program, exec'd for child processes (not /proc/self/exe: under
 * valgrind that is the tool, not the test). */
static char self_path[4096];

#include <gen/gen.h>

#include "core/time.h"

struct shared {
    const char *db;
    int64_t deadline_ns;
    atomic_llong enqueued;
    atomic_llong cancel_calls;
    atomic_llong canceled;
    atomic_llong max_id;
    atomic_int errors;
};

static void *enqueue_thread(void *p)
{
    struct shared *s = p;
    static const char *const users[] = {"ann", "ben", "cid", "dee"};
    gen_queue *q = NULL;
    if (gen_queue_open(&q, s->db, NULL) != GEN_OK) {
        atomic_fetch_add(&s->errors, 1);
        return NULL;
    }
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    while (gen__monotonic_ns() < s->deadline_ns) {
        gen_queue_batch b = GEN_QUEUE_BATCH_INIT;
        b.job = "{\"prompt\": \"load\", \"seed\": 7}";
        b.runs = 1 + (uint32_t)(rand_r(&seed) % 3);
        b.user_id = users[rand_r(&seed) % 4];
        gen_queue_enqueued *r = NULL;
        gen_status st = gen_queue_enqueue(&r, q, &b);
        if (st == GEN_OK) {
            size_t n = gen_queue_enqueued_count(r);
            atomic_fetch_add(&s->enqueued, (long long)n);
            int64_t last = gen_queue_enqueued_item_id(r, n - 1);
            long long seen = atomic_load(&s->max_id);
            while (last > seen && !atomic_compare_exchange_weak(&s->max_id, &seen, last)) {
            }
            gen_queue_enqueued_destroy(r);
        } else if (st != GEN_EBUSY) {
            fprintf(stderr, "enqueue: %s\n", gen_last_error_message());
            atomic_fetch_add(&s->errors, 1);
        }
        usleep(2000);
    }
    gen_queue_close(q);
    return NULL;
}

static void *cancel_thread(void *p)
{
    struct shared *s = p;
    gen_queue *q = NULL;
    if (gen_queue_open(&q, s->db, NULL) != GEN_OK) {
        atomic_fetch_add(&s->errors, 1);
        return NULL;
    }
    unsigned seed = 99;
    while (gen__monotonic_ns() < s->deadline_ns) {
        long long max = atomic_load(&s->max_id);
        if (max > 0) {
            uint64_t n = 0;
            gen_status st = gen_queue_cancel_item(&n, q, 1 + rand_r(&seed) % max, NULL, 1);
            atomic_fetch_add(&s->cancel_calls, 1);
            if (st == GEN_OK)
                atomic_fetch_add(&s->canceled, (long long)n);
            else if (st != GEN_EBUSY && st != GEN_ENOTFOUND)
                atomic_fetch_add(&s->errors, 1);
        }
        usleep(3000);
    }
    gen_queue_close(q);
    return NULL;
}

/* Child process: claim and complete until the deadline, then until the queue
 * stays empty; log every claimed id to `log` (one per line). */
static int claimer_main(const char *db, const char *log, long long deadline_ns)
{
    gen_queue *q = NULL;
    if (gen_queue_open(&q, db, NULL) != GEN_OK) {
        fprintf(stderr, "claimer: %s\n", gen_last_error_message());
        return 1;
    }
    FILE *f = fopen(log, "w");
    if (!f)
        return 1;
    int idle = 0, rc = 0;
    char device[32];
    snprintf(device, sizeof(device), "cpu:%d", (int)(getpid() % 1000));
    while (gen__monotonic_ns() < deadline_ns || idle < 20) {
        gen_queue_item *item = NULL;
        gen_status st = gen_queue_claim(&item, q, device, NULL, 0);
        if (st == GEN_EBUSY)
            continue;
        if (st != GEN_OK) {
            fprintf(stderr, "claim: %s\n", gen_last_error_message());
            rc = 1;
            break;
        }
        if (!item) {
            idle++;
            usleep(5000);
            continue;
        }
        idle = 0;
        fprintf(f, "%lld\n", (long long)gen_queue_item_id(item));
        fflush(f);
        usleep(500); /* "work" */
        int changed = 0;
        while ((st = gen_queue_set_status(&changed, q, gen_queue_item_id(item), GEN_QUEUE_COMPLETED,
                                          NULL, NULL)) == GEN_EBUSY) {
        }
        if (st != GEN_OK) {
            fprintf(stderr, "complete: %s\n", gen_last_error_message());
            rc = 1;
        }
        gen_queue_item_destroy(item);
    }
    fclose(f);
    gen_queue_close(q);
    return rc;
}

static void test_load(void **state)
{
    (void)state;
    const char *env = getenv("LIBGEN_LOAD_SECONDS");
    double seconds = env ? atof(env) : 3.0;
    char dir[] = "/tmp/libgen-load-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[128], logs[2][160];
    snprintf(db, sizeof(db), "%s/queue.db", dir);
    gen_queue *q = NULL;
    assert_int_equal(gen_queue_open(&q, db, NULL), GEN_OK); /* create the schema first */

    struct shared s = {.db = db};
    int64_t start = gen__monotonic_ns();
    s.deadline_ns = start + (int64_t)(seconds * 1e9);
    pid_t kids[2];
    char deadline_text[32];
    snprintf(deadline_text, sizeof(deadline_text), "%lld", (long long)s.deadline_ns);
    for (int i = 0; i < 2; i++) {
        snprintf(logs[i], sizeof(logs[i]), "%s/claims-%d.log", dir, i);
        kids[i] = fork();
        if (kids[i] == 0) {
            execl(self_path, "test_load", "--claimer", db, logs[i], deadline_text,
                  (char *)NULL);
            _exit(127);
        }
    }
    pthread_t enq[4], can;
    for (int i = 0; i < 4; i++)
        pthread_create(&enq[i], NULL, enqueue_thread, &s);
    pthread_create(&can, NULL, cancel_thread, &s);
    for (int i = 0; i < 4; i++)
        pthread_join(enq[i], NULL);
    pthread_join(can, NULL);
    for (int i = 0; i < 2; i++) {
        int ws = 0;
        assert_int_equal(waitpid(kids[i], &ws, 0), kids[i]);
        assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    }
    double elapsed = (double)(gen__monotonic_ns() - start) / 1e9;
    assert_int_equal(atomic_load(&s.errors), 0);

    /* Invariants. */
    long long total = atomic_load(&s.enqueued);
    long long max_id = atomic_load(&s.max_id);
    assert_true(total > 0);
    unsigned char *claimed = calloc((size_t)max_id + 1, 1);
    long long claims = 0;
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(logs[i], "r");
        assert_non_null(f);
        long long id;
        while (fscanf(f, "%lld", &id) == 1) {
            assert_true(id >= 1 && id <= max_id);
            if (claimed[id])
                fail_msg("item %lld was claimed twice", id);
            claimed[id] = 1;
            claims++;
        }
        fclose(f);
    }
    gen_queue_counts c = {.version = GEN_QUEUE_COUNTS_VERSION};
    assert_int_equal(gen_queue_get_counts(&c, q, NULL, NULL), GEN_OK);
    assert_int_equal(c.total, (uint64_t)total);
    assert_int_equal(c.pending, 0);
    assert_int_equal(c.in_progress, 0);
    assert_int_equal(c.failed, 0);
    assert_int_equal(c.completed + c.canceled, c.total);
    assert_int_equal(c.canceled, (uint64_t)atomic_load(&s.canceled));
    /* Every completed item was claimed exactly once; a canceled one may have
     * been claimed (canceled while running) but never completed afterwards. */
    long long completed_claimed = 0;
    for (long long id = 1; id <= max_id; id++) {
        int32_t st = -1;
        assert_int_equal(gen_queue_get_status(&st, q, id), GEN_OK);
        if (st == GEN_QUEUE_COMPLETED) {
            if (!claimed[id])
                fail_msg("item %lld completed without a claim", id);
            completed_claimed++;
        }
    }
    assert_int_equal(completed_claimed, (long long)c.completed);
    print_message("load: %.1f s, %lld items enqueued (%.0f/s), %lld claims by 2 processes (%.0f/s), "
                  "%lld cancel calls, %lld canceled, %llu completed\n",
                  elapsed, total, (double)total / elapsed, claims, (double)claims / elapsed,
                  (long long)atomic_load(&s.cancel_calls), (long long)atomic_load(&s.canceled),
                  (unsigned long long)c.completed);
    free(claimed);
    gen_queue_close(q);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
    if (!realpath(argv[0], self_path))
        snprintf(self_path, sizeof(self_path), "%s", argv[0]);
    if (argc == 5 && strcmp(argv[1], "--claimer") == 0)
        return claimer_main(argv[2], argv[3], atoll(argv[4]));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
