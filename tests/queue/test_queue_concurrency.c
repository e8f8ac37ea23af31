/* Atomic claims: 8 threads x 500 claims (4 threads sharing one handle, 4 with
 * a handle each) and 2 real processes x 500 claims on one file; every item is
 * claimed exactly once and its recorded device is its claimer's. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "queue_test_util.h"

#define THREADS 8
#define PER_THREAD 500

typedef struct worker {
    gen_queue *q;
    char device[16];
    int64_t ids[PER_THREAD];
    int got;
    gen_status failure;
} worker;

static void *claim_loop(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        gen_queue_item *it = NULL;
        gen_status st = gen_queue_claim(&it, w->q, w->device, NULL, 0);
        if (st != GEN_OK || !it) {
            w->failure = st != GEN_OK ? st : GEN_ENOTFOUND;
            return NULL;
        }
        w->ids[w->got++] = gen_queue_item_id(it);
        gen_queue_item_destroy(it);
    }
    return NULL;
}

static gen_queue *open_queue(const char *path)
{
    gen_queue_options o = GEN_QUEUE_OPTIONS_INIT;
    o.busy_timeout_ms = 30000;
    gen_queue *q = NULL;
    assert_int_equal(gen_queue_open(&q, path, &o), GEN_OK);
    return q;
}

static void expect_device(gen_queue *q, int64_t id, const char *device)
{
    gen_queue_item *it = NULL;
    assert_int_equal(gen_queue_get(&it, q, id), GEN_OK);
    assert_string_equal(gen_queue_item_device(it), device);
    gen_queue_item_destroy(it);
}

static void test_threads_claim_each_item_once(void **state)
{
    (void)state;
    char dir[256], path[300];
    qt_tempdir(dir, sizeof(dir));
    qt_path(path, sizeof(path), dir, "queue.db");
    gen_queue *shared = open_queue(path);
    const int total = THREADS * PER_THREAD;
    /* Three users, so that the round-robin bookkeeping is exercised too. */
    int64_t first = qt_enqueue(shared, "A", "{\"n\":1}", total / 2, 0, NULL, NULL);
    assert_true(qt_enqueue(shared, "B", "{\"n\":2}", total / 4, 0, NULL, NULL) > 0);
    assert_true(qt_enqueue(shared, "C", "{\"n\":3}", total / 4, 0, NULL, NULL) > 0);
    static worker w[THREADS];
    pthread_t th[THREADS];
    gen_queue *own[THREADS] = {0};
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].q = i < THREADS / 2 ? shared : (own[i] = open_queue(path));
        snprintf(w[i].device, sizeof(w[i].device), "cpu:%d", i);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, claim_loop, &w[i]), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    char *seen = calloc((size_t)total, 1);
    for (int i = 0; i < THREADS; i++) {
        if (w[i].failure != GEN_OK)
            fail_msg("thread %d stopped after %d claims: %s", i, w[i].got,
                     gen_status_string(w[i].failure));
        assert_int_equal(w[i].got, PER_THREAD);
        for (int k = 0; k < PER_THREAD; k++) {
            int64_t idx = w[i].ids[k] - first;
            assert_true(idx >= 0 && idx < total);
            if (seen[idx])
                fail_msg("item %lld claimed twice", (long long)w[i].ids[k]);
            seen[idx] = 1;
        }
        /* Spot-check that the row names the claimer's device. */
        expect_device(shared, w[i].ids[0], w[i].device);
        expect_device(shared, w[i].ids[PER_THREAD - 1], w[i].device);
    }
    free(seen);
    gen_queue_item *none = (gen_queue_item *)1;
    assert_int_equal(gen_queue_claim(&none, shared, "cpu:0", NULL, 0), GEN_OK);
    assert_null(none);
    gen_queue_counts c = GEN_QUEUE_COUNTS_INIT;
    assert_int_equal(gen_queue_get_counts(&c, shared, NULL, NULL), GEN_OK);
    assert_int_equal(c.in_progress, (uint64_t)total);
    assert_int_equal(c.pending, 0);
    for (int i = 0; i < THREADS; i++)
        gen_queue_close(own[i]);
    gen_queue_close(shared);
    qt_rmtree(dir);
}

static void test_two_processes_claim_each_item_once(void **state)
{
    (void)state;
    char dir[256], path[300];
    qt_tempdir(dir, sizeof(dir));
    qt_path(path, sizeof(path), dir, "queue.db");
    gen_queue *q = open_queue(path);
    const int total = 2 * PER_THREAD;
    int64_t first = qt_enqueue(q, "A", "{\"n\":1}", total / 2, 0, NULL, NULL);
    assert_true(qt_enqueue(q, "B", "{\"n\":2}", total / 2, 0, NULL, NULL) > 0);
    char count[16];
    snprintf(count, sizeof(count), "%d", PER_THREAD);
    const char *args0[] = {"claim", path, count, "proc:0", NULL};
    const char *args1[] = {"claim", path, count, "proc:1", NULL};
    qt_child child[2] = {qt_spawn(args0), qt_spawn(args1)};
    char *owner = calloc((size_t)total, 1);
    for (int p = 0; p < 2; p++) {
        char line[64];
        int got = 0;
        while (fgets(line, sizeof(line), child[p].out)) {
            if (strcmp(line, "empty\n") == 0)
                fail_msg("process %d found the queue empty after %d claims", p, got);
            int64_t idx = atoll(line) - first;
            assert_true(idx >= 0 && idx < total);
            if (owner[idx])
                fail_msg("item %lld claimed by both processes", (long long)(idx + first));
            owner[idx] = (char)(p + 1);
            got++;
        }
        assert_int_equal(got, PER_THREAD);
        assert_int_equal(qt_wait(&child[p]), 0);
    }
    /* Every row is completed and names the process that claimed it. */
    for (int i = 0; i < total; i++) {
        assert_true(owner[i] != 0);
        gen_queue_item *it = NULL;
        assert_int_equal(gen_queue_get(&it, q, first + i), GEN_OK);
        assert_int_equal(gen_queue_item_status(it), GEN_QUEUE_COMPLETED);
        assert_string_equal(gen_queue_item_device(it), owner[i] == 1 ? "proc:0" : "proc:1");
        gen_queue_item_destroy(it);
    }
    free(owner);
    gen_queue_close(q);
    qt_rmtree(dir);
}

typedef struct canceler {
    gen_queue *q;
    uint64_t canceled;
    int events;
    gen_status st;
} canceler;

static void count_event(const gen_queue_event *e, void *ud)
{
    (void)e;
    ((canceler *)ud)->events++;
}

static void *cancel_batch(void *arg)
{
    canceler *c = arg;
    const char *batches[] = {"race"};
    c->st = gen_queue_cancel_by_batch(&c->canceled, c->q, NULL, batches, 1, NULL, 1);
    return NULL;
}

/* Two handles cancel the same batch at once: every item is counted (and
 * reported) by exactly one of them. */
static void test_concurrent_cancels_count_once(void **state)
{
    (void)state;
    char dir[256], path[300];
    qt_tempdir(dir, sizeof(dir));
    qt_path(path, sizeof(path), dir, "queue.db");
    canceler c[2] = {{open_queue(path), 0, 0, GEN_OK}, {open_queue(path), 0, 0, GEN_OK}};
    assert_true(qt_enqueue(c[0].q, "A", "{}", 300, 0, "race", NULL) > 0);
    for (int i = 0; i < 5; i++) {
        gen_queue_item *it = NULL;
        assert_int_equal(gen_queue_claim(&it, c[i % 2].q, "cpu:0", NULL, 0), GEN_OK);
        gen_queue_item_destroy(it);
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        gen_queue_set_event_callback(c[i].q, count_event, &c[i]);
        pthread_create(&th[i], NULL, cancel_batch, &c[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(c[0].st, GEN_OK);
    assert_int_equal(c[1].st, GEN_OK);
    assert_int_equal(c[0].canceled + c[1].canceled, 300);
    assert_int_equal(c[0].events + c[1].events, 300);
    gen_queue_counts n = GEN_QUEUE_COUNTS_INIT;
    assert_int_equal(gen_queue_get_batch_counts(&n, c[0].q, "race"), GEN_OK);
    assert_int_equal(n.canceled, 300);
    gen_queue_close(c[0].q);
    gen_queue_close(c[1].q);
    qt_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_claim_each_item_once),
        cmocka_unit_test(test_two_processes_claim_each_item_once),
        cmocka_unit_test(test_concurrent_cancels_count_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
