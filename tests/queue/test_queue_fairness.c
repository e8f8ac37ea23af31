/* Claim order: round-robin across users (the reference example, a user who
 * joins late, priority within a user), FIFO mode, prepend, device affinity,
 * and the query plan of the claim (no full scan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "queue/queue_internal.h"
#include "queue_test_util.h"

typedef struct fixture {
    char dir[256];
    char path[300];
    gen_queue *q;
} fixture;

static int open_mode(void **state, int32_t mode)
{
    fixture *f = calloc(1, sizeof(*f));
    qt_tempdir(f->dir, sizeof(f->dir));
    qt_path(f->path, sizeof(f->path), f->dir, "queue.db");
    gen_queue_options o = GEN_QUEUE_OPTIONS_INIT;
    o.mode = mode;
    o.heartbeat_ms = 0;
    if (gen_queue_open(&f->q, f->path, &o) != GEN_OK) {
        fprintf(stderr, "open: %s\n", gen_last_error_message());
        return -1;
    }
    *state = f;
    return 0;
}

static int setup_rr(void **state) { return open_mode(state, GEN_QUEUE_ROUND_ROBIN); }
static int setup_fifo(void **state) { return open_mode(state, GEN_QUEUE_FIFO); }

static int teardown(void **state)
{
    fixture *f = *state;
    gen_queue_close(f->q);
    qt_rmtree(f->dir);
    free(f);
    return 0;
}

/* Enqueue one item named `name` for `user`; the name rides in the job. */
static int64_t add(gen_queue *q, const char *user, const char *name, int32_t priority,
                   const char *model)
{
    char job[256];
    if (model)
        snprintf(job, sizeof(job), "{\"name\":\"%s\",\"model\":\"%s\"}", name, model);
    else
        snprintf(job, sizeof(job), "{\"name\":\"%s\"}", name);
    int64_t id = qt_enqueue(q, user, job, 1, priority, NULL, NULL);
    assert_true(id > 0);
    return id;
}

/* Claim and return the item's name ("" when nothing is pending). */
static const char *claim_name(gen_queue *q, const char *device, const char *const *models,
                              size_t n)
{
    static char name[64];
    gen_queue_item *it = NULL;
    assert_int_equal(gen_queue_claim(&it, q, device, models, n), GEN_OK);
    if (!it)
        return "";
    const char *job = gen_queue_item_job(it);
    const char *p = strstr(job, "\"name\":\"");
    assert_non_null(p);
    p += 8;
    size_t len = strcspn(p, "\"");
    memcpy(name, p, len);
    name[len] = '\0';
    assert_int_equal(gen_queue_item_status(it), GEN_QUEUE_IN_PROGRESS);
    gen_queue_item_destroy(it);
    return name;
}

static void expect_order(gen_queue *q, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_string_equal(claim_name(q, NULL, NULL, 0), names[i]);
    assert_string_equal(claim_name(q, NULL, NULL, 0), "");
}

static void test_round_robin_example(void **state)
{
    fixture *f = *state;
    add(f->q, "A", "A1", 0, NULL);
    add(f->q, "A", "A2", 0, NULL);
    add(f->q, "B", "B1", 0, NULL);
    add(f->q, "C", "C1", 0, NULL);
    add(f->q, "C", "C2", 0, NULL);
    add(f->q, "A", "A3", 0, NULL);
    const char *want[] = {"A1", "B1", "C1", "A2", "C2", "A3"};
    expect_order(f->q, want, 6);
}

static void test_late_joining_user(void **state)
{
    fixture *f = *state;
    add(f->q, "A", "A1", 0, NULL);
    add(f->q, "A", "A2", 0, NULL);
    add(f->q, "A", "A3", 0, NULL);
    assert_string_equal(claim_name(f->q, NULL, NULL, 0), "A1");
    assert_string_equal(claim_name(f->q, NULL, NULL, 0), "A2");
    /* B was never served: it goes before A's third item. */
    add(f->q, "B", "B1", 0, NULL);
    add(f->q, "B", "B2", 0, NULL);
    const char *want[] = {"B1", "A3", "B2"};
    expect_order(f->q, want, 3);
}

static void test_single_user_is_id_order(void **state)
{
    fixture *f = *state;
    add(f->q, "A", "A1", 0, NULL);
    add(f->q, "A", "A2", 0, NULL);
    add(f->q, "A", "A3", 0, NULL);
    const char *want[] = {"A1", "A2", "A3"};
    expect_order(f->q, want, 3);
}

static void test_priority_within_user_not_across(void **state)
{
    fixture *f = *state;
    add(f->q, "A", "A1", 0, NULL);
    add(f->q, "A", "A2", 5, NULL);
    add(f->q, "B", "B1", 100, NULL);
    add(f->q, "B", "B2", 0, NULL);
    /* A's best is A2 (priority 5); B's is B1. Neither user was served: the lower
     * candidate id wins (A2 = 2 < B1 = 3); B's priority 100 does not jump the
     * rotation. Then B, then A's remaining item, then B's. */
    const char *want[] = {"A2", "B1", "A1", "B2"};
    expect_order(f->q, want, 4);
}

static void test_fifo_mode(void **state)
{
    fixture *f = *state;
    add(f->q, "A", "A1", 0, NULL);
    add(f->q, "A", "A2", 0, NULL);
    add(f->q, "B", "B1", 0, NULL);
    add(f->q, "C", "C1", 0, NULL);
    add(f->q, "C", "C2", 3, NULL);
    add(f->q, "A", "A3", 0, NULL);
    const char *want[] = {"C2", "A1", "A2", "B1", "C1", "A3"};
    expect_order(f->q, want, 6);
}

static void test_prepend(void **state)
{
    fixture *f = *state;
    add(f->q, "A", "A1", 2, NULL);
    add(f->q, "A", "A2", 7, NULL);
    gen_queue_batch b = GEN_QUEUE_BATCH_INIT;
    b.user_id = "A";
    b.job = "{\"name\":\"P\"}";
    b.prepend = 1;
    gen_queue_enqueued *r = NULL;
    assert_int_equal(gen_queue_enqueue(&r, f->q, &b), GEN_OK);
    gen_queue_item *it = NULL;
    assert_int_equal(gen_queue_get(&it, f->q, gen_queue_enqueued_item_id(r, 0)), GEN_OK);
    assert_int_equal(gen_queue_item_priority(it), 8);
    gen_queue_item_destroy(it);
    gen_queue_enqueued_destroy(r);
    const char *want[] = {"P", "A2", "A1"};
    expect_order(f->q, want, 3);
}

static void test_affinity(void **state)
{
    fixture *f = *state;
    add(f->q, "A", "A1", 0, "model-one");
    add(f->q, "A", "A2", 0, "model-two");
    add(f->q, "B", "B1", 0, "model-two");
    add(f->q, "A", "A3", 0, "model-two");
    const char *two[] = {"model-two"};
    /* A's turn; model-two is resident: A2 instead of A1, never B1. */
    assert_string_equal(claim_name(f->q, "cuda:0", two, 1), "A2");
    /* B's turn now, whatever is resident. */
    const char *one[] = {"model-one"};
    assert_string_equal(claim_name(f->q, "cuda:1", one, 1), "B1");
    /* No device: no affinity. */
    assert_string_equal(claim_name(f->q, NULL, two, 1), "A1");
    assert_string_equal(claim_name(f->q, "cuda:0", two, 1), "A3");
}

static void test_affinity_never_beats_priority(void **state)
{
    fixture *f = *state;
    add(f->q, "A", "A1", 5, "model-one");
    add(f->q, "A", "A2", 0, "model-two");
    const char *two[] = {"model-two"};
    assert_string_equal(claim_name(f->q, "cuda:0", two, 1), "A1");
}

static void test_affinity_off_in_fifo(void **state)
{
    fixture *f = *state;
    add(f->q, "A", "A1", 0, "model-one");
    add(f->q, "A", "A2", 0, "model-two");
    const char *two[] = {"model-two"};
    assert_string_equal(claim_name(f->q, "cuda:0", two, 1), "A1");
}

static void check_plan(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char eqp[2048];
    snprintf(eqp, sizeof(eqp), "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, eqp, -1, &st, NULL), SQLITE_OK);
    int rows = 0, seeks = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(st, 3);
        rows++;
        if (getenv("QUEUE_TEST_VERBOSE"))
            print_message("plan: %s\n", detail);
        /* A seek is "SEARCH ..."; a full pass over a table is "SCAN <table>". */
        if (strncmp(detail, "SCAN ", 5) == 0)
            fail_msg("claim query scans: %s\n  in %s", detail, sql);
        if (strstr(detail, "idx_queue_users_turn") || strstr(detail, "idx_queue_items_user_pending") ||
            strstr(detail, "idx_queue_items_fifo"))
            seeks++;
    }
    assert_true(rows > 0);
    assert_true(seeks > 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_claim_query_plan_has_no_scan(void **state)
{
    fixture *f = *state;
    /* Some rows, so that the plan is not chosen for an empty table only. */
    for (int i = 0; i < 50; i++)
        add(f->q, i % 2 ? "A" : "B", "X", i % 3, NULL);
    check_plan(f->path, gen__queue_claim_sql(GEN_QUEUE_ROUND_ROBIN));
    check_plan(f->path, gen__queue_claim_sql(GEN_QUEUE_FIFO));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_robin_example, setup_rr, teardown),
        cmocka_unit_test_setup_teardown(test_late_joining_user, setup_rr, teardown),
        cmocka_unit_test_setup_teardown(test_single_user_is_id_order, setup_rr, teardown),
        cmocka_unit_test_setup_teardown(test_priority_within_user_not_across, setup_rr, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_mode, setup_fifo, teardown),
        cmocka_unit_test_setup_teardown(test_prepend, setup_fifo, teardown),
        cmocka_unit_test_setup_teardown(test_affinity, setup_rr, teardown),
        cmocka_unit_test_setup_teardown(test_affinity_never_beats_priority, setup_rr, teardown),
        cmocka_unit_test_setup_teardown(test_affinity_off_in_fifo, setup_fifo, teardown),
        cmocka_unit_test_setup_teardown(test_claim_query_plan_has_no_scan, setup_rr, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
