/* Workers with a scripted item runner (the pipeline is tested elsewhere):
 * two CPU devices processing a real SQLite queue, fairness across users,
 * cancellation of one item, of a batch across devices, between claim and
 * start, from another process; stop modes; failures; events. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* This program, exec'd for child processes (not /proc/self/exe: under
 * valgrind that is the tool, not the test). */
static char self_path[4096];

#include <gen/gen.h>

#include "context/context_internal.h"
#include "core/time.h"

#define MAX_ITEMS 256

/* --- the scripted runner ---------------------------------------------------------------------- */

struct script {
    int steps;                 /* denoising steps per item */
    int step_us;               /* time per step */
    atomic_int started[MAX_ITEMS];
    atomic_int steps_done[MAX_ITEMS];
    atomic_int device_of[MAX_ITEMS];   /* pool index + 1 */
    atomic_int order[MAX_ITEMS];       /* start order */
    atomic_int next_order;
    atomic_int fail_item;      /* this item id fails */
    atomic_llong cancel_seen_ns[MAX_ITEMS];
};

static gen_status scripted_runner(void *p, size_t device, const gen_queue_item *item,
                                  const gen__run_hooks *hooks, gen__run_result *result)
{
    struct script *s = p;
    int64_t id = gen_queue_item_id(item);
    assert_true(id > 0 && id < MAX_ITEMS);
    atomic_store(&s->device_of[id], (int)device + 1);
    atomic_store(&s->order[id], atomic_fetch_add(&s->next_order, 1) + 1);
    atomic_fetch_add(&s->started[id], 1);
    if (atomic_load(&s->fail_item) == id)
        return gen__error(GEN_EIO, "scripted failure of item %lld", (long long)id);
    hooks->progress(hooks->hook_ctx, GEN_STAGE_ENCODE, 1, 1, NULL, 0, 0);
    for (int step = 1; step <= s->steps; step++) {
        if (hooks->should_cancel(hooks->hook_ctx)) {
            atomic_store(&s->cancel_seen_ns[id], gen__monotonic_ns());
            return gen__error(GEN_ECANCELED, "canceled at step %d", step);
        }
        struct timespec ts = {0, (long)s->step_us * 1000L};
        nanosleep(&ts, NULL);
        atomic_fetch_add(&s->steps_done[id], 1);
        uint8_t preview[4 * 4 * 3] = {0};
        hooks->progress(hooks->hook_ctx, GEN_STAGE_DENOISE, step, s->steps, preview, 4, 4);
    }
    snprintf(result->image_path, sizeof(result->image_path), "/tmp/item-%lld.png", (long long)id);
    result->width = 64;
    result->height = 64;
    return GEN_OK;
}

/* --- fixture ---------------------------------------------------------------------------------- */

struct fixture {
    char dir[256];
    char db[300];
    gen_context *ctx;
    struct script *script;
};

static struct fixture *fixture_new(const char *devices, int steps, int step_us)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/libgen-worker-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/queue.db", f->dir);
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    o.log_level = GEN_LOG_ERROR;
    assert_int_equal(gen_context_options_set(&o, "generation_devices", devices), GEN_OK);
    assert_int_equal(gen_context_options_set(&o, "db_path", f->db), GEN_OK);
    if (gen_context_create(&f->ctx, &o) != GEN_OK)
        fail_msg("create: %s", gen_last_error_message());
    f->script = calloc(1, sizeof(*f->script));
    f->script->steps = steps;
    f->script->step_us = step_us;
    gen__context_set_runner(f->ctx, scripted_runner, f->script);
    return f;
}

static void fixture_free(struct fixture *f)
{
    gen_context_destroy(f->ctx);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f->script);
    free(f);
}

static gen_queue_enqueued *enqueue(struct fixture *f, const char *user, int runs)
{
    gen_queue_batch b = GEN_QUEUE_BATCH_INIT;
    b.job = "{\"prompt\": \"x\", \"seed\": 1}";
    b.runs = (uint32_t)runs;
    b.user_id = user;
    gen_queue_enqueued *r = NULL;
    if (gen_queue_enqueue(&r, gen_context_queue(f->ctx), &b) != GEN_OK)
        fail_msg("enqueue: %s", gen_last_error_message());
    return r;
}

static int32_t status_of(struct fixture *f, int64_t id)
{
    int32_t st = -1;
    assert_int_equal(gen_queue_get_status(&st, gen_context_queue(f->ctx), id), GEN_OK);
    return st;
}

static void wait_until_terminal(struct fixture *f, int64_t first, int64_t last, int timeout_ms)
{
    int64_t deadline = gen__monotonic_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        bool all = true;
        for (int64_t id = first; id <= last; id++) {
            int32_t s = status_of(f, id);
            all = all && (s == GEN_QUEUE_COMPLETED || s == GEN_QUEUE_FAILED || s == GEN_QUEUE_CANCELED);
        }
        if (all)
            return;
        if (gen__monotonic_ns() > deadline)
            fail_msg("items %lld..%lld not finished within %d ms", (long long)first,
                     (long long)last, timeout_ms);
        usleep(2000);
    }
}

static void wait_started(struct fixture *f, int64_t id, int min_steps)
{
    int64_t deadline = gen__monotonic_ns() + 10000000000LL;
    while (atomic_load(&f->script->steps_done[id]) < min_steps) {
        if (gen__monotonic_ns() > deadline)
            fail_msg("item %lld did not start", (long long)id);
        usleep(500);
    }
}

/* --- tests --------------------------------------------------------------------------------- */

static void test_twelve_jobs_three_users_two_devices(void **state)
{
    (void)state;
    struct fixture *f = fixture_new("cpu:0,cpu:1", 5, 2000);
    /* Queue first, then start: the claim order shows the fairness. */
    gen_queue_enqueued *a = enqueue(f, "alice", 6);
    gen_queue_enqueued *b = enqueue(f, "bob", 4);
    gen_queue_enqueued *c = enqueue(f, "carol", 2);
    int64_t first = gen_queue_enqueued_item_id(a, 0);
    int64_t last = gen_queue_enqueued_item_id(c, 1);
    assert_int_equal(last - first + 1, 12);
    assert_int_equal(gen_context_start(f->ctx), GEN_OK);
    assert_int_equal(gen_context_start(f->ctx), GEN_ESTATE);
    wait_until_terminal(f, first, last, 30000);
    int used[2] = {0, 0};
    for (int64_t id = first; id <= last; id++) {
        assert_int_equal(status_of(f, id), GEN_QUEUE_COMPLETED);
        assert_int_equal(atomic_load(&f->script->started[id]), 1); /* ran exactly once */
        int dev = atomic_load(&f->script->device_of[id]);
        assert_true(dev == 1 || dev == 2);
        used[dev - 1]++;
    }
    assert_true(used[0] > 0 && used[1] > 0); /* both devices worked */
    /* Round robin, judged by claim times (when a runner starts depends on the
     * OS scheduler): every user got a first item before any user got a second. */
    int64_t first_start[3] = {INT64_MAX, INT64_MAX, INT64_MAX};
    int64_t second_start[3] = {INT64_MAX, INT64_MAX, INT64_MAX};
    static const char *const names[3] = {"alice", "bob", "carol"};
    for (int64_t id = first; id <= last; id++) {
        gen_queue_item *it = NULL;
        assert_int_equal(gen_queue_get(&it, gen_context_queue(f->ctx), id), GEN_OK);
        int u = 0;
        while (strcmp(names[u], gen_queue_item_user_id(it)) != 0)
            u++;
        int64_t t = gen_queue_item_started_at(it);
        if (t < first_start[u]) {
            second_start[u] = first_start[u];
            first_start[u] = t;
        } else if (t < second_start[u]) {
            second_start[u] = t;
        }
        gen_queue_item_destroy(it);
    }
    int64_t latest_first = 0, earliest_second = INT64_MAX;
    for (int u = 0; u < 3; u++) {
        latest_first = first_start[u] > latest_first ? first_start[u] : latest_first;
        earliest_second = second_start[u] < earliest_second ? second_start[u] : earliest_second;
    }
    assert_true(latest_first <= earliest_second);
    assert_int_equal(gen_context_stop(f->ctx, GEN_STOP_DRAIN), GEN_OK);
    assert_int_equal(gen_context_stop(f->ctx, GEN_STOP_DRAIN), GEN_ESTATE);
    gen_queue_enqueued_destroy(a);
    gen_queue_enqueued_destroy(b);
    gen_queue_enqueued_destroy(c);
    fixture_free(f);
}

static void test_cancel_one_running_item(void **state)
{
    (void)state;
    struct fixture *f = fixture_new("cpu:0,cpu:1", 400, 2000);
    gen_queue_enqueued *a = enqueue(f, "alice", 1);
    gen_queue_enqueued *b = enqueue(f, "bob", 1);
    int64_t ia = gen_queue_enqueued_item_id(a, 0), ib = gen_queue_enqueued_item_id(b, 0);
    f->script->steps = 40;
    assert_int_equal(gen_context_start(f->ctx), GEN_OK);
    wait_started(f, ia, 2);
    wait_started(f, ib, 2);
    int steps_at_cancel = atomic_load(&f->script->steps_done[ia]);
    int64_t t0 = gen__monotonic_ns();
    uint64_t n = 0;
    assert_int_equal(gen_queue_cancel_item(&n, gen_context_queue(f->ctx), ia, "alice", 0), GEN_OK);
    assert_int_equal(n, 1);
    wait_until_terminal(f, ib, ib, 30000);
    wait_until_terminal(f, ia, ia, 30000);
    assert_int_equal(status_of(f, ia), GEN_QUEUE_CANCELED);
    assert_int_equal(status_of(f, ib), GEN_QUEUE_COMPLETED); /* only the canceled one stopped */
    int extra_steps = atomic_load(&f->script->steps_done[ia]) - steps_at_cancel;
    double latency_ms = (double)(atomic_load(&f->script->cancel_seen_ns[ia]) - t0) / 1e6;
    print_message("cancel latency: %d step(s), %.2f ms\n", extra_steps, latency_ms);
    assert_true(extra_steps <= 1); /* within one denoising step */
    assert_int_equal(gen_context_stop(f->ctx, GEN_STOP_DRAIN), GEN_OK);
    gen_queue_enqueued_destroy(a);
    gen_queue_enqueued_destroy(b);
    fixture_free(f);
}

static void test_cancel_batch_across_devices(void **state)
{
    (void)state;
    struct fixture *f = fixture_new("cpu:0,cpu:1", 1000, 2000);
    gen_queue_enqueued *a = enqueue(f, "alice", 3);
    int64_t i0 = gen_queue_enqueued_item_id(a, 0), i1 = gen_queue_enqueued_item_id(a, 1);
    int64_t i2 = gen_queue_enqueued_item_id(a, 2);
    assert_int_equal(gen_context_start(f->ctx), GEN_OK);
    wait_started(f, i0, 1);
    wait_started(f, i1, 1);
    assert_true(atomic_load(&f->script->device_of[i0]) != atomic_load(&f->script->device_of[i1]));
    const char *batch = gen_queue_enqueued_batch_id(a);
    uint64_t n = 0;
    assert_int_equal(gen_queue_cancel_by_batch(&n, gen_context_queue(f->ctx), NULL, &batch, 1,
                                               "alice", 0),
                     GEN_OK);
    assert_int_equal(n, 3); /* two running + one pending */
    wait_until_terminal(f, i0, i2, 30000);
    for (int64_t id = i0; id <= i2; id++)
        assert_int_equal(status_of(f, id), GEN_QUEUE_CANCELED);
    assert_true(atomic_load(&f->script->steps_done[i0]) < 1000);
    assert_true(atomic_load(&f->script->steps_done[i1]) < 1000);
    assert_int_equal(atomic_load(&f->script->started[i2]), 0);
    assert_int_equal(gen_context_stop(f->ctx, GEN_STOP_DRAIN), GEN_OK);
    gen_queue_enqueued_destroy(a);
    fixture_free(f);
}

/* The callback runs on the worker thread right after its claim commits and
 * before the item starts: canceling there is the claim/start race. */
struct race_state {
    gen_context *ctx;
    atomic_llong target;
    atomic_int canceled;
};

static void cancel_on_claim(const gen_event *ev, void *p)
{
    struct race_state *r = p;
    if (gen_event_type_of(ev) == GEN_EVENT_ITEM_STATUS &&
        gen_event_new_status(ev) == GEN_QUEUE_IN_PROGRESS &&
        gen_event_item_id(ev) == atomic_load(&r->target)) {
        uint64_t n = 0;
        if (gen_queue_cancel_item(&n, gen_context_queue(r->ctx), gen_event_item_id(ev), NULL, 1) ==
                GEN_OK &&
            n == 1)
            atomic_store(&r->canceled, 1);
    }
}

static void test_cancel_between_claim_and_start(void **state)
{
    (void)state;
    struct fixture *f = fixture_new("cpu:0", 3, 1000);
    gen_queue_enqueued *a = enqueue(f, "alice", 2);
    int64_t i0 = gen_queue_enqueued_item_id(a, 0), i1 = gen_queue_enqueued_item_id(a, 1);
    struct race_state r = {f->ctx, 0, 0};
    atomic_store(&r.target, i0);
    assert_int_equal(gen_context_set_event_callback(f->ctx, cancel_on_claim, &r), GEN_OK);
    assert_int_equal(gen_context_start(f->ctx), GEN_OK);
    wait_until_terminal(f, i0, i1, 30000);
    assert_true(atomic_load(&r.canceled));
    assert_int_equal(status_of(f, i0), GEN_QUEUE_CANCELED);
    assert_int_equal(atomic_load(&f->script->started[i0]), 0); /* never ran */
    assert_int_equal(status_of(f, i1), GEN_QUEUE_COMPLETED);   /* the flag did not leak */
    assert_int_equal(gen_context_stop(f->ctx, GEN_STOP_DRAIN), GEN_OK);
    gen_queue_enqueued_destroy(a);
    fixture_free(f);
}

static void test_cancel_from_another_process(void **state)
{
    (void)state;
    struct fixture *f = fixture_new("cpu:0", 2000, 2000);
    gen_queue_enqueued *a = enqueue(f, "alice", 1);
    int64_t id = gen_queue_enqueued_item_id(a, 0);
    assert_int_equal(gen_context_start(f->ctx), GEN_OK);
    wait_started(f, id, 2);
    int before = atomic_load(&f->script->steps_done[id]);
    /* A real second process (exec'd, so nothing of this one's threads is inherited). */
    char id_text[32];
    snprintf(id_text, sizeof(id_text), "%lld", (long long)id);
    pid_t child = fork();
    if (child == 0) {
        execl(self_path, "test_worker", "--cancel", f->db, id_text, "alice", (char *)NULL);
        _exit(127);
    }
    int64_t t0 = gen__monotonic_ns();
    int wstatus = 0;
    assert_int_equal(waitpid(child, &wstatus, 0), child);
    assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
    int at_exit = atomic_load(&f->script->steps_done[id]);
    wait_until_terminal(f, id, id, 30000);
    /* The child committed before it exited: the worker stops within one step. */
    assert_true(atomic_load(&f->script->steps_done[id]) - at_exit <= 1);
    assert_int_equal(status_of(f, id), GEN_QUEUE_CANCELED);
    int after = atomic_load(&f->script->steps_done[id]);
    print_message("cross-process cancel: %d step(s) after the child started, %.2f ms after it "
                  "exited\n",
                  after - before, (double)(atomic_load(&f->script->cancel_seen_ns[id]) - t0) / 1e6);
    assert_true(after < 2000);
    assert_int_equal(gen_context_stop(f->ctx, GEN_STOP_DRAIN), GEN_OK);
    gen_queue_enqueued_destroy(a);
    fixture_free(f);
}

static void test_stop_modes(void **state)
{
    (void)state;
    static const struct {
        int32_t mode;
        int32_t expected;
    } cases[] = {
        {GEN_STOP_CANCEL, GEN_QUEUE_CANCELED},
        {GEN_STOP_REQUEUE, GEN_QUEUE_PENDING},
        {GEN_STOP_DRAIN, GEN_QUEUE_COMPLETED},
    };
    for (size_t c = 0; c < 3; c++) {
        struct fixture *f = fixture_new("cpu:0", cases[c].mode == GEN_STOP_DRAIN ? 20 : 100000, 1000);
        gen_queue_enqueued *a = enqueue(f, "alice", 2);
        int64_t i0 = gen_queue_enqueued_item_id(a, 0), i1 = gen_queue_enqueued_item_id(a, 1);
        assert_int_equal(gen_context_start(f->ctx), GEN_OK);
        wait_started(f, i0, 1);
        assert_int_equal(gen_context_stop(f->ctx, cases[c].mode), GEN_OK);
        assert_int_equal(status_of(f, i0), cases[c].expected);
        assert_int_equal(status_of(f, i1), GEN_QUEUE_PENDING); /* never claimed after stop */
        gen_queue_enqueued_destroy(a);
        fixture_free(f);
    }
    struct fixture *f = fixture_new("cpu:0", 1, 1);
    assert_int_equal(gen_context_stop(f->ctx, 7), GEN_EINVAL);
    fixture_free(f);
}

static void test_failure_fails_one_item(void **state)
{
    (void)state;
    struct fixture *f = fixture_new("cpu:0,cpu:1", 3, 500);
    gen_queue_enqueued *a = enqueue(f, "alice", 4);
    int64_t first = gen_queue_enqueued_item_id(a, 0), last = gen_queue_enqueued_item_id(a, 3);
    atomic_store(&f->script->fail_item, (int)(first + 1));
    assert_int_equal(gen_context_start(f->ctx), GEN_OK);
    wait_until_terminal(f, first, last, 30000);
    for (int64_t id = first; id <= last; id++)
        assert_int_equal(status_of(f, id), id == first + 1 ? GEN_QUEUE_FAILED : GEN_QUEUE_COMPLETED);
    gen_queue_item *it = NULL;
    assert_int_equal(gen_queue_get(&it, gen_context_queue(f->ctx), first + 1), GEN_OK);
    assert_non_null(strstr(gen_queue_item_error_message(it), "scripted failure"));
    assert_string_equal(gen_queue_item_error_type(it), gen_status_string(GEN_EIO));
    gen_queue_item_destroy(it);
    assert_int_equal(gen_context_stop(f->ctx, GEN_STOP_DRAIN), GEN_OK);
    gen_queue_enqueued_destroy(a);
    fixture_free(f);
}

static void test_event_queue(void **state)
{
    (void)state;
    struct fixture *f = fixture_new("cpu:0", 3, 500);
    gen_event *ev = NULL;
    assert_int_equal(gen_context_next_event(f->ctx, &ev, 0), GEN_ESTATE);
    assert_int_equal(gen_context_enable_event_queue(f->ctx, 0), GEN_OK);
    assert_int_equal(gen_context_next_event(f->ctx, &ev, 10), GEN_ETIMEOUT);
    assert_null(ev);
    gen_queue_enqueued *a = enqueue(f, "alice", 1);
    int64_t id = gen_queue_enqueued_item_id(a, 0);
    assert_int_equal(gen_context_start(f->ctx), GEN_OK);
    int seen_claim = 0, seen_done = 0, progress = 0, image = 0, last_step = 0;
    while (!seen_done) {
        if (gen_context_next_event(f->ctx, &ev, 10000) != GEN_OK)
            fail_msg("no event: %s", gen_last_error_message());
        assert_int_equal(gen_event_item_id(ev), id);
        switch (gen_event_type_of(ev)) {
        case GEN_EVENT_ITEM_STATUS:
            if (gen_event_new_status(ev) == GEN_QUEUE_IN_PROGRESS) {
                seen_claim = 1;
                assert_int_equal(gen_event_device_index(ev), 0);
                assert_string_equal(gen_event_device_label(ev), "CPU");
            }
            if (gen_event_new_status(ev) == GEN_QUEUE_COMPLETED)
                seen_done = 1;
            break;
        case GEN_EVENT_PROGRESS:
            if (gen_event_stage(ev) == GEN_STAGE_DENOISE) {
                int32_t w = 0, h = 0;
                assert_non_null(gen_event_preview(ev, &w, &h));
                assert_int_equal(w, 4);
                assert_int_equal(gen_event_step(ev), last_step + 1);
                last_step = gen_event_step(ev);
                assert_int_equal(gen_event_total_steps(ev), 3);
                progress++;
            }
            break;
        case GEN_EVENT_IMAGE_READY:
            image++;
            assert_int_equal(gen_event_image_width(ev), 64);
            assert_non_null(strstr(gen_event_image_path(ev), ".png"));
            break;
        }
        gen_event_destroy(ev);
    }
    assert_true(seen_claim);
    assert_int_equal(progress, 3);
    assert_int_equal(image, 1);
    assert_int_equal(gen_context_stop(f->ctx, GEN_STOP_DRAIN), GEN_OK);
    gen_queue_enqueued_destroy(a);
    fixture_free(f);
}

static void test_pause_resume(void **state)
{
    (void)state;
    struct fixture *f = fixture_new("cpu:0", 2, 500);
    assert_int_equal(gen_context_pause(f->ctx), GEN_ESTATE);
    assert_int_equal(gen_context_start(f->ctx), GEN_OK);
    assert_int_equal(gen_context_pause(f->ctx), GEN_OK);
    usleep(300000); /* let the worker finish its current poll and see the pause */
    gen_queue_enqueued *a = enqueue(f, "alice", 2);
    int64_t i0 = gen_queue_enqueued_item_id(a, 0), i1 = gen_queue_enqueued_item_id(a, 1);
    gen_context_wake(f->ctx);
    usleep(300000);
    assert_int_equal(status_of(f, i0), GEN_QUEUE_PENDING);
    assert_int_equal(gen_context_resume(f->ctx), GEN_OK);
    wait_until_terminal(f, i0, i1, 30000);
    assert_int_equal(status_of(f, i1), GEN_QUEUE_COMPLETED);
    gen_queue_enqueued_destroy(a);
    fixture_free(f); /* destroy stops the running workers */
}

static void test_start_needs_queue(void **state)
{
    (void)state;
    gen_context *ctx = NULL;
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    o.log_level = GEN_LOG_ERROR;
    assert_int_equal(gen_context_create(&ctx, &o), GEN_OK);
    assert_null(gen_context_queue(ctx));
    assert_int_equal(gen_context_start(ctx), GEN_ESTATE);
    assert_non_null(strstr(gen_last_error_message(), "db_path"));
    gen_context_destroy(ctx);
}

/* Child mode: cancel one item of the queue file as its user, from this process. */
static int cancel_in_child(const char *db, const char *id, const char *user)
{
    gen_queue *q = NULL;
    uint64_t n = 0;
    int ok = gen_queue_open(&q, db, NULL) == GEN_OK &&
             gen_queue_cancel_item(&n, q, strtoll(id, NULL, 10), user, 0) == GEN_OK && n == 1;
    if (!ok)
        fprintf(stderr, "child: %s\n", gen_last_error_message());
    gen_queue_close(q);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (!realpath(argv[0], self_path))
        snprintf(self_path, sizeof(self_path), "%s", argv[0]);
    if (argc == 5 && strcmp(argv[1], "--cancel") == 0)
        return cancel_in_child(argv[2], argv[3], argv[4]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twelve_jobs_three_users_two_devices),
        cmocka_unit_test(test_cancel_one_running_item),
        cmocka_unit_test(test_cancel_batch_across_devices),
        cmocka_unit_test(test_cancel_between_claim_and_start),
        cmocka_unit_test(test_cancel_from_another_process),
        cmocka_unit_test(test_stop_modes),
        cmocka_unit_test(test_failure_fails_one_item),
        cmocka_unit_test(test_event_queue),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_start_needs_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
