/* Allocation failure injection over a whole queue session: every failing
 * allocation gives GEN_ENOMEM from the call that made it, nothing crashes or
 * leaks (the valgrind/ASan setups check), and the file stays usable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "queue_test_util.h"

static gen_status scenario(const char *path, gen_queue **qout)
{
    gen_queue_options o = GEN_QUEUE_OPTIONS_INIT;
    o.heartbeat_ms = 0;
    gen_status st = gen_queue_open(qout, path, &o);
    if (st != GEN_OK)
        return st;
    gen_queue *q = *qout;
    gen_queue_batch b = GEN_QUEUE_BATCH_INIT;
    b.job = "{\"model\":\"sd15\",\"seed\":7}";
    b.runs = 3;
    b.user_id = "A";
    b.destination = "d";
    gen_queue_enqueued *r = NULL;
    if ((st = gen_queue_enqueue(&r, q, &b)) != GEN_OK)
        return st;
    int64_t first = gen_queue_enqueued_item_id(r, 0);
    gen_queue_enqueued_destroy(r);
    gen_queue_item *it = NULL;
    const char *models[] = {"sd15"};
    if ((st = gen_queue_claim(&it, q, "cpu:0", models, 1)) != GEN_OK)
        return st;
    gen_queue_item_destroy(it);
    if ((st = gen_queue_set_status(NULL, q, first, GEN_QUEUE_FAILED, "E", "m")) != GEN_OK)
        return st;
    if ((st = gen_queue_claim(&it, q, "cpu:1", NULL, 0)) != GEN_OK)
        return st;
    gen_queue_item_destroy(it);
    uint64_t n;
    if ((st = gen_queue_cancel_by_destination(&n, q, NULL, "d", "A", 0)) != GEN_OK)
        return st;
    if ((st = gen_queue_retry(&r, q, &first, 1, "A", 0)) != GEN_OK)
        return st;
    gen_queue_enqueued_destroy(r);
    gen_queue_item_list *l = NULL;
    if ((st = gen_queue_list(&l, q, NULL)) != GEN_OK)
        return st;
    gen_queue_item_list_destroy(l);
    if ((st = gen_queue_get(&it, q, first)) != GEN_OK)
        return st;
    gen_queue_item_destroy(it);
    return gen_queue_recover(&n, q);
}

static void test_every_allocation(void **state)
{
    (void)state;
    char dir[256], path[400];
    qt_tempdir(dir, sizeof(dir));
    qt_path(path, sizeof(path), dir, "count.db");
    gen_queue *q = NULL;
    gen__alloc_fail_after(0, 0);
    assert_int_equal(scenario(path, &q), GEN_OK);
    long total = gen__alloc_fail_after(0, 0);
    gen_queue_close(q);
    assert_true(total > 10);
    for (long i = 1; i <= total; i++) {
        char name[64];
        snprintf(name, sizeof(name), "fail-%ld.db", i);
        qt_path(path, sizeof(path), dir, name);
        q = NULL;
        gen__alloc_fail_after(i, 1);
        gen_status st = scenario(path, &q);
        gen__alloc_fail_after(0, 0);
        if (st != GEN_ENOMEM)
            fail_msg("allocation %ld of %ld: got %s (%s)", i, total, gen_status_string(st),
                     gen_last_error_message());
        gen_queue_close(q);
        /* The file is still a working queue. */
        gen_queue_options o = GEN_QUEUE_OPTIONS_INIT;
        o.heartbeat_ms = 0;
        assert_int_equal(gen_queue_open(&q, path, &o), GEN_OK);
        gen_queue_counts c = GEN_QUEUE_COUNTS_INIT;
        assert_int_equal(gen_queue_get_counts(&c, q, NULL, NULL), GEN_OK);
        assert_true(c.total <= 4);
        gen_queue_close(q);
        unlink(path);
    }
    qt_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
