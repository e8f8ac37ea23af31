/* Recovery: a real child process holding claims is killed with SIGKILL; the
 * next open re-queues its items (attempts + 1) or, past max_attempts, fails
 * them with a message. Items of a live process (fresh lease) are untouched;
 * an expired lease of another host counts as dead. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "queue_test_util.h"

typedef struct events {
    int count;
    int64_t ids[16];
    int32_t new_status[16];
} events;

static void on_event(const gen_queue_event *ev, void *ud)
{
    events *e = ud;
    if (e->count < 16) {
        e->ids[e->count] = ev->item_id;
        e->new_status[e->count] = ev->new_status;
    }
    e->count++;
}

static gen_queue *open_queue(const char *path)
{
    gen_queue_options o = GEN_QUEUE_OPTIONS_INIT;
    o.max_attempts = 2;
    o.heartbeat_ms = 0;
    gen_queue *q = NULL;
    if (gen_queue_open(&q, path, &o) != GEN_OK)
        fail_msg("open: %s", gen_last_error_message());
    return q;
}

/* Start a helper that claims `n` items and holds them; returns the ids. */
static qt_child hold(const char *path, const char *n, const char *device, int64_t *ids)
{
    const char *args[] = {"hold", path, n, device, NULL};
    qt_child c = qt_spawn(args);
    char line[64];
    int got = 0;
    while (fgets(line, sizeof(line), c.out)) {
        if (strcmp(line, "ready\n") == 0)
            return c;
        ids[got++] = atoll(line);
    }
    fail_msg("helper exited before it was ready");
    return c;
}

static void kill9(qt_child *c)
{
    kill(c->pid, SIGKILL);
    assert_int_equal(qt_wait(c), 128 + SIGKILL);
}

static void expect_item(gen_queue *q, int64_t id, int32_t status, int32_t attempts,
                        const char *message_part)
{
    gen_queue_item *it = NULL;
    assert_int_equal(gen_queue_get(&it, q, id), GEN_OK);
    if (gen_queue_item_status(it) != status)
        fail_msg("item %lld is %s, expected %s", (long long)id,
                 gen_queue_status_name(gen_queue_item_status(it)), gen_queue_status_name(status));
    assert_int_equal(gen_queue_item_attempts(it), attempts);
    if (message_part) {
        assert_non_null(gen_queue_item_error_message(it));
        if (!strstr(gen_queue_item_error_message(it), message_part))
            fail_msg("message \"%s\" lacks \"%s\"", gen_queue_item_error_message(it),
                     message_part);
    }
    gen_queue_item_destroy(it);
}

static void test_kill9_requeue_then_fail(void **state)
{
    (void)state;
    char dir[256], path[300];
    qt_tempdir(dir, sizeof(dir));
    qt_path(path, sizeof(path), dir, "queue.db");
    gen_queue *q = open_queue(path);
    int64_t first = qt_enqueue(q, "A", "{\"n\":1}", 6, 0, NULL, NULL);
    gen_queue_close(q);

    int64_t live_ids[2], dead_ids[2];
    qt_child live = hold(path, "2", "cpu:0", live_ids);
    qt_child dead = hold(path, "2", "cpu:1", dead_ids);
    assert_int_equal(live_ids[0], first);
    assert_int_equal(dead_ids[0], first + 2);
    char pid_text[32];
    snprintf(pid_text, sizeof(pid_text), "pid %d", (int)dead.pid);
    kill9(&dead);

    /* Open: the dead child's items are re-queued, the live child's are not. */
    q = open_queue(path);
    expect_item(q, dead_ids[0], GEN_QUEUE_PENDING, 1, pid_text);
    expect_item(q, dead_ids[1], GEN_QUEUE_PENDING, 1, NULL);
    expect_item(q, live_ids[0], GEN_QUEUE_IN_PROGRESS, 0, NULL);
    expect_item(q, live_ids[1], GEN_QUEUE_IN_PROGRESS, 0, NULL);

    /* A second worker takes them and dies too: the retry limit (2) is reached. */
    int64_t again[2];
    qt_child second = hold(path, "2", "cpu:2", again);
    assert_int_equal(again[0], dead_ids[0]);
    assert_int_equal(again[1], dead_ids[1]);
    kill9(&second);
    events ev = {0};
    assert_int_equal(gen_queue_set_event_callback(q, on_event, &ev), GEN_OK);
    uint64_t recovered = 0;
    assert_int_equal(gen_queue_recover(&recovered, q), GEN_OK);
    assert_int_equal(recovered, 2);
    assert_int_equal(ev.count, 2);
    assert_int_equal(ev.new_status[0], GEN_QUEUE_FAILED);
    assert_int_equal(ev.new_status[1], GEN_QUEUE_FAILED);
    expect_item(q, dead_ids[0], GEN_QUEUE_FAILED, 2, "retry limit");
    expect_item(q, live_ids[0], GEN_QUEUE_IN_PROGRESS, 0, NULL);

    /* Recovery again changes nothing while the live child lives. */
    assert_int_equal(gen_queue_recover(&recovered, q), GEN_OK);
    assert_int_equal(recovered, 0);

    kill9(&live);
    assert_int_equal(gen_queue_recover(&recovered, q), GEN_OK);
    assert_int_equal(recovered, 2);
    expect_item(q, live_ids[0], GEN_QUEUE_PENDING, 1, NULL);
    gen_queue_close(q);
    qt_rmtree(dir);
}

static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(db);
}

static void test_leases_of_other_hosts(void **state)
{
    (void)state;
    char dir[256], path[300];
    qt_tempdir(dir, sizeof(dir));
    qt_path(path, sizeof(path), dir, "queue.db");
    gen_queue *q = open_queue(path);
    int64_t first = qt_enqueue(q, "A", "{\"n\":1}", 2, 0, NULL, NULL);
    gen_queue_close(q);
    /* Two workers on another machine: one renewing its lease, one silent. */
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "INSERT INTO queue_owners VALUES ('fresh', 1, 'elsewhere', 0, 0, %lld);"
             "INSERT INTO queue_owners VALUES ('stale', 1, 'elsewhere', 0, 0, 1);"
             "UPDATE queue_items SET status = 'in_progress', owner = 'fresh' WHERE item_id = %lld;"
             "UPDATE queue_items SET status = 'in_progress', owner = 'stale' WHERE item_id = %lld;",
             (long long)(time(NULL) + 3600) * 1000, (long long)first, (long long)first + 1);
    exec_sql(path, sql);
    q = open_queue(path);
    expect_item(q, first, GEN_QUEUE_IN_PROGRESS, 0, NULL);
    expect_item(q, first + 1, GEN_QUEUE_PENDING, 1, "lease");
    gen_queue_close(q);
    qt_rmtree(dir);
}

static void test_closed_handle_items_recovered(void **state)
{
    (void)state;
    char dir[256], path[300];
    qt_tempdir(dir, sizeof(dir));
    qt_path(path, sizeof(path), dir, "queue.db");
    gen_queue *a = open_queue(path);
    gen_queue *b = open_queue(path);
    int64_t id = qt_enqueue(a, "A", "{\"n\":1}", 1, 0, NULL, NULL);
    gen_queue_item *it = NULL;
    assert_int_equal(gen_queue_claim(&it, a, "cpu:0", NULL, 0), GEN_OK);
    gen_queue_item_destroy(it);
    /* b must not touch a's item while a is open ... */
    uint64_t n = 9;
    assert_int_equal(gen_queue_recover(&n, b), GEN_OK);
    assert_int_equal(n, 0);
    /* ... but once a is closed its leftovers are recovered. */
    gen_queue_close(a);
    assert_int_equal(gen_queue_recover(&n, b), GEN_OK);
    assert_int_equal(n, 1);
    expect_item(b, id, GEN_QUEUE_PENDING, 1, NULL);
    gen_queue_close(b);
    qt_rmtree(dir);
}

static gen_queue *open_lease(const char *path, uint32_t lease_ms, uint32_t heartbeat_ms)
{
    gen_queue_options o = GEN_QUEUE_OPTIONS_INIT;
    o.lease_ms = lease_ms;
    o.heartbeat_ms = heartbeat_ms;
    gen_queue *q = NULL;
    if (gen_queue_open(&q, path, &o) != GEN_OK)
        fail_msg("open: %s", gen_last_error_message());
    return q;
}

/* In one process the pid is alive, so only the lease tells: a handle whose
 * heartbeat thread renews it keeps its items; a silent one loses them. */
static void test_heartbeat_keeps_lease(void **state)
{
    (void)state;
    char dir[256], path[300];
    qt_tempdir(dir, sizeof(dir));
    qt_path(path, sizeof(path), dir, "queue.db");
    gen_queue *beating = open_lease(path, 1000, 100);
    gen_queue *silent = open_lease(path, 300, 0);
    gen_queue *observer = open_lease(path, 30000, 0);
    int64_t first = qt_enqueue(observer, "A", "{}", 2, 0, NULL, NULL);
    gen_queue_item *it = NULL;
    assert_int_equal(gen_queue_claim(&it, beating, "cpu:0", NULL, 0), GEN_OK);
    assert_int_equal(gen_queue_item_id(it), first);
    gen_queue_item_destroy(it);
    assert_int_equal(gen_queue_claim(&it, silent, "cpu:1", NULL, 0), GEN_OK);
    assert_int_equal(gen_queue_item_id(it), first + 1);
    gen_queue_item_destroy(it);
    /* Well past the silent lease and several beats. */
    struct timespec ts = {1, 500000000};
    nanosleep(&ts, NULL);
    uint64_t n = 0;
    assert_int_equal(gen_queue_recover(&n, observer), GEN_OK);
    assert_int_equal(n, 1);
    expect_item(observer, first, GEN_QUEUE_IN_PROGRESS, 0, NULL);
    expect_item(observer, first + 1, GEN_QUEUE_PENDING, 1, "lease");
    /* The silent handle renews late: it is told (log) and carries on, but it
     * cannot report a result for the item it lost. */
    assert_int_equal(gen_queue_heartbeat(silent), GEN_OK);
    assert_int_equal(gen_queue_set_status(NULL, silent, first + 1, GEN_QUEUE_COMPLETED, NULL, NULL),
                     GEN_ESTATE);
    assert_non_null(strstr(gen_last_error_message(), "not claimed by this handle"));
    expect_item(observer, first + 1, GEN_QUEUE_PENDING, 1, NULL);
    assert_int_equal(gen_queue_set_status(NULL, beating, first, GEN_QUEUE_COMPLETED, NULL, NULL),
                     GEN_OK);
    gen_queue_close(silent);
    gen_queue_close(beating);
    gen_queue_close(observer);
    qt_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_requeue_then_fail),
        cmocka_unit_test(test_leases_of_other_hosts),
        cmocka_unit_test(test_closed_handle_items_recovered),
        cmocka_unit_test(test_heartbeat_keeps_lease),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
