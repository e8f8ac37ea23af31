/* Status changes and events, cancellation (one, by batch, by destination, by
 * queue; in-progress items included), user scope and admin rights,
 * delete/clear/prune/retry, queries, job validation, capacity, options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "queue_test_util.h"

#define MAX_EVENTS 64

typedef struct recorded {
    int count;
    int64_t item[MAX_EVENTS];
    int32_t old_status[MAX_EVENTS], new_status[MAX_EVENTS];
    char device[MAX_EVENTS][16];
    char user[MAX_EVENTS][16];
    char batch[MAX_EVENTS][40];
} recorded;

typedef struct fixture {
    char dir[256];
    char path[300];
    gen_queue *q;
    recorded ev;
} fixture;

static void on_event(const gen_queue_event *e, void *ud)
{
    recorded *r = ud;
    assert_int_equal(e->version, GEN_QUEUE_EVENT_VERSION);
    if (r->count < MAX_EVENTS) {
        int i = r->count;
        r->item[i] = e->item_id;
        r->old_status[i] = e->old_status;
        r->new_status[i] = e->new_status;
        snprintf(r->device[i], sizeof(r->device[i]), "%s", e->device ? e->device : "");
        snprintf(r->user[i], sizeof(r->user[i]), "%s", e->user_id);
        snprintf(r->batch[i], sizeof(r->batch[i]), "%s", e->batch_id);
    }
    r->count++;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    qt_tempdir(f->dir, sizeof(f->dir));
    qt_path(f->path, sizeof(f->path), f->dir, "queue.db");
    gen_queue_options o = GEN_QUEUE_OPTIONS_INIT;
    o.heartbeat_ms = 0;
    o.max_queue_size = 20;
    if (gen_queue_open(&f->q, f->path, &o) != GEN_OK)
        return -1;
    gen_queue_set_event_callback(f->q, on_event, &f->ev);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    gen_queue_close(f->q);
    qt_rmtree(f->dir);
    free(f);
    return 0;
}

static int32_t status_of(gen_queue *q, int64_t id)
{
    int32_t s = -1;
    assert_int_equal(gen_queue_get_status(&s, q, id), GEN_OK);
    return s;
}

static int64_t claim(gen_queue *q, const char *device)
{
    gen_queue_item *it = NULL;
    assert_int_equal(gen_queue_claim(&it, q, device, NULL, 0), GEN_OK);
    assert_non_null(it);
    int64_t id = gen_queue_item_id(it);
    gen_queue_item_destroy(it);
    return id;
}

static void test_status_changes_and_terminal_states(void **state)
{
    fixture *f = *state;
    int64_t id = qt_enqueue(f->q, "A", "{\"n\":1}", 2, 0, "b1", NULL);
    assert_int_equal(claim(f->q, "cuda:0"), id);
    assert_int_equal(f->ev.count, 1);
    assert_int_equal(f->ev.old_status[0], GEN_QUEUE_PENDING);
    assert_int_equal(f->ev.new_status[0], GEN_QUEUE_IN_PROGRESS);
    assert_string_equal(f->ev.device[0], "cuda:0");
    assert_string_equal(f->ev.user[0], "A");
    assert_string_equal(f->ev.batch[0], "b1");

    int changed = -1;
    assert_int_equal(gen_queue_set_status(&changed, f->q, id, GEN_QUEUE_FAILED, "OOM",
                                          "out of memory at step 3"),
                     GEN_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(f->ev.count, 2);
    /* Terminal is final: no change, no event, no error. */
    assert_int_equal(gen_queue_set_status(&changed, f->q, id, GEN_QUEUE_COMPLETED, NULL, NULL),
                     GEN_OK);
    assert_int_equal(changed, 0);
    uint64_t n = 9;
    assert_int_equal(gen_queue_cancel_item(&n, f->q, id, "A", 0), GEN_OK);
    assert_int_equal(n, 0);
    assert_int_equal(f->ev.count, 2);
    gen_queue_item *it = NULL;
    assert_int_equal(gen_queue_get(&it, f->q, id), GEN_OK);
    assert_int_equal(gen_queue_item_status(it), GEN_QUEUE_FAILED);
    assert_string_equal(gen_queue_item_error_type(it), "OOM");
    assert_string_equal(gen_queue_item_error_message(it), "out of memory at step 3");
    assert_string_equal(gen_queue_item_device(it), "cuda:0");
    assert_true(gen_queue_item_started_at(it) > 0);
    assert_true(gen_queue_item_completed_at(it) >= gen_queue_item_started_at(it));
    gen_queue_item_destroy(it);

    assert_int_equal(gen_queue_set_status(NULL, f->q, 999, GEN_QUEUE_COMPLETED, NULL, NULL),
                     GEN_ENOTFOUND);
    assert_int_equal(gen_queue_set_status(NULL, f->q, id + 1, 17, NULL, NULL), GEN_EINVAL);
    /* A result for an item nobody claimed is refused; canceling it is fine. */
    assert_int_equal(gen_queue_set_status(NULL, f->q, id + 1, GEN_QUEUE_COMPLETED, NULL, NULL),
                     GEN_ESTATE);
    assert_int_equal(status_of(f->q, id + 1), GEN_QUEUE_PENDING);
    assert_int_equal(gen_queue_set_status(&changed, f->q, id + 1, GEN_QUEUE_CANCELED, NULL, NULL),
                     GEN_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(gen_queue_get(&it, f->q, 999), GEN_ENOTFOUND);
    assert_null(it);
    assert_non_null(strstr(gen_last_error_message(), "999"));
}

/* Three items of one batch running on three devices are all canceled, with
 * one event each naming its device. */
static void cancel_three_running(fixture *f, int how)
{
    int64_t id = qt_enqueue(f->q, "A", "{\"n\":1}", 3, 0, "batch-x", "gallery");
    assert_true(id > 0);
    const char *devices[3] = {"cuda:0", "cuda:1", "cuda:2"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(claim(f->q, devices[i]), id + i);
    f->ev.count = 0;
    uint64_t n = 0;
    const char *batches[] = {"batch-x"};
    switch (how) {
    case 0: assert_int_equal(gen_queue_cancel_by_batch(&n, f->q, NULL, batches, 1, "A", 0), GEN_OK); break;
    case 1: assert_int_equal(gen_queue_cancel_by_destination(&n, f->q, NULL, "gallery", "A", 0), GEN_OK); break;
    case 2: assert_int_equal(gen_queue_cancel_by_queue(&n, f->q, "default", NULL, 1), GEN_OK); break;
    default: assert_int_equal(gen_queue_delete_by_destination(&n, f->q, NULL, "gallery", "A", 0), GEN_OK); break;
    }
    assert_int_equal(n, 3);
    assert_int_equal(f->ev.count, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f->ev.item[i], id + i);
        assert_int_equal(f->ev.old_status[i], GEN_QUEUE_IN_PROGRESS);
        assert_int_equal(f->ev.new_status[i], GEN_QUEUE_CANCELED);
        assert_string_equal(f->ev.device[i], devices[i]);
        if (how == 3) {
            int32_t s;
            assert_int_equal(gen_queue_get_status(&s, f->q, id + i), GEN_ENOTFOUND);
        } else {
            assert_int_equal(status_of(f->q, id + i), GEN_QUEUE_CANCELED);
        }
    }
    /* Again: nothing left to change, so the count is 0. */
    f->ev.count = 0;
    if (how == 0) {
        assert_int_equal(gen_queue_cancel_by_batch(&n, f->q, NULL, batches, 1, "A", 0), GEN_OK);
        assert_int_equal(n, 0);
        assert_int_equal(f->ev.count, 0);
    }
}

static void test_cancel_running_by_batch(void **state) { cancel_three_running(*state, 0); }
static void test_cancel_running_by_destination(void **state) { cancel_three_running(*state, 1); }
static void test_cancel_running_by_queue(void **state) { cancel_three_running(*state, 2); }
static void test_delete_running_by_destination(void **state) { cancel_three_running(*state, 3); }

static void test_user_scope_and_admin(void **state)
{
    fixture *f = *state;
    int64_t a = qt_enqueue(f->q, "alice", "{\"n\":1}", 2, 0, "shared", "dest");
    int64_t b = qt_enqueue(f->q, "bob", "{\"n\":2}", 2, 0, "shared", "dest");
    assert_int_equal(claim(f->q, "cuda:0"), a);
    assert_int_equal(claim(f->q, "cuda:1"), b);
    uint64_t n = 0;
    /* Without admin rights a user id is required ... */
    assert_int_equal(gen_queue_cancel_by_queue(&n, f->q, NULL, NULL, 0), GEN_EPERM);
    /* ... another user's item is refused ... */
    assert_int_equal(gen_queue_cancel_item(&n, f->q, b, "alice", 0), GEN_EPERM);
    assert_non_null(strstr(gen_last_error_message(), "another user"));
    assert_int_equal(status_of(f->q, b), GEN_QUEUE_IN_PROGRESS);
    /* ... and bulk calls touch only the caller's rows. */
    const char *batches[] = {"shared"};
    assert_int_equal(gen_queue_cancel_by_batch(&n, f->q, NULL, batches, 1, "alice", 0), GEN_OK);
    assert_int_equal(n, 2);
    assert_int_equal(status_of(f->q, a), GEN_QUEUE_CANCELED);
    assert_int_equal(status_of(f->q, a + 1), GEN_QUEUE_CANCELED);
    assert_int_equal(status_of(f->q, b), GEN_QUEUE_IN_PROGRESS);
    assert_int_equal(status_of(f->q, b + 1), GEN_QUEUE_PENDING);
    /* Clear scoped to alice deletes only alice's rows. */
    assert_int_equal(gen_queue_clear(&n, f->q, NULL, "alice", 0), GEN_OK);
    assert_int_equal(n, 2);
    assert_int_equal(status_of(f->q, b), GEN_QUEUE_IN_PROGRESS);
    /* Admin: cancel bob's item by id, then everything. */
    assert_int_equal(gen_queue_cancel_item(&n, f->q, b, "alice", 1), GEN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(gen_queue_cancel_by_destination(&n, f->q, NULL, "dest", NULL, 1), GEN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(status_of(f->q, b + 1), GEN_QUEUE_CANCELED);
    assert_int_equal(gen_queue_clear(&n, f->q, NULL, NULL, 1), GEN_OK);
    assert_int_equal(n, 2);
}

static void test_prune_and_retry(void **state)
{
    fixture *f = *state;
    int64_t id = qt_enqueue(f->q, "A", "{\"seed\":5}", 3, 4, "b", "d");
    claim(f->q, "cpu:0");
    assert_int_equal(gen_queue_set_status(NULL, f->q, id, GEN_QUEUE_FAILED, "E", "boom"), GEN_OK);
    uint64_t n = 0;
    assert_int_equal(gen_queue_cancel_item(&n, f->q, id + 1, "A", 0), GEN_OK);
    gen_queue_enqueued *r = NULL;
    const int64_t ids[] = {id, id + 1, id + 2, id, 424242};
    /* Another user may not retry A's items. */
    assert_int_equal(gen_queue_retry(&r, f->q, ids, 5, "B", 0), GEN_EPERM);
    assert_null(r);
    assert_int_equal(gen_queue_retry(&r, f->q, ids, 5, "A", 0), GEN_OK);
    /* The pending item and the unknown id are skipped, the duplicate too. */
    assert_int_equal(gen_queue_enqueued_count(r), 2);
    gen_queue_item *it = NULL;
    assert_int_equal(gen_queue_get(&it, f->q, gen_queue_enqueued_item_id(r, 0)), GEN_OK);
    assert_int_equal(gen_queue_item_retried_from(it), id);
    assert_int_equal(gen_queue_item_status(it), GEN_QUEUE_PENDING);
    assert_int_equal(gen_queue_item_priority(it), 4);
    assert_string_equal(gen_queue_item_batch_id(it), "b");
    assert_string_equal(gen_queue_item_destination(it), "d");
    assert_string_equal(gen_queue_item_job(it), "{\"seed\":5}");
    assert_null(gen_queue_item_error_message(it));
    gen_queue_item_destroy(it);
    gen_queue_enqueued_destroy(r);
    /* Prune deletes the two finished items only. */
    assert_int_equal(gen_queue_prune(&n, f->q, NULL, NULL, 1), GEN_OK);
    assert_int_equal(n, 2);
    gen_queue_counts c = GEN_QUEUE_COUNTS_INIT;
    assert_int_equal(gen_queue_get_counts(&c, f->q, "default", NULL), GEN_OK);
    assert_int_equal(c.total, 3);
    assert_int_equal(c.pending, 3);
}

static void test_queries(void **state)
{
    fixture *f = *state;
    int64_t a = qt_enqueue(f->q, "A", "{\"n\":1}", 3, 0, "ba", "x");
    int64_t b = qt_enqueue(f->q, "B", "{\"n\":2}", 2, 0, "bb", "y");
    claim(f->q, "cpu:0");
    assert_int_equal(gen_queue_set_status(NULL, f->q, a, GEN_QUEUE_COMPLETED, NULL, NULL), GEN_OK);
    gen_queue_counts c = GEN_QUEUE_COUNTS_INIT;
    assert_int_equal(gen_queue_get_counts(&c, f->q, NULL, NULL), GEN_OK);
    assert_int_equal(c.total, 5);
    assert_int_equal(c.completed, 1);
    assert_int_equal(c.pending, 4);
    assert_int_equal(gen_queue_get_counts(&c, f->q, "default", "B"), GEN_OK);
    assert_int_equal(c.total, 2);
    assert_int_equal(gen_queue_get_counts(&c, f->q, "other", NULL), GEN_OK);
    assert_int_equal(c.total, 0);
    assert_int_equal(gen_queue_get_batch_counts(&c, f->q, "ba"), GEN_OK);
    assert_int_equal(c.completed, 1);
    assert_int_equal(c.pending, 2);
    c.version = 99;
    assert_int_equal(gen_queue_get_counts(&c, f->q, NULL, NULL), GEN_EVERSION);

    /* Paging: two per page, by id. */
    gen_queue_filter flt = GEN_QUEUE_FILTER_INIT;
    flt.limit = 2;
    int64_t seen = 0, pages = 0, last = 0;
    for (;;) {
        gen_queue_item_list *l = NULL;
        assert_int_equal(gen_queue_list(&l, f->q, &flt), GEN_OK);
        size_t n = gen_queue_item_list_count(l);
        for (size_t i = 0; i < n; i++) {
            int64_t id = gen_queue_item_id(gen_queue_item_list_at(l, i));
            assert_true(id > last);
            last = id;
            seen++;
        }
        gen_queue_item_list_destroy(l);
        if (n == 0)
            break;
        pages++;
        flt.after_item_id = last;
    }
    assert_int_equal(seen, 5);
    assert_int_equal(pages, 3);
    /* Filters. */
    gen_queue_filter_init(&flt, GEN_QUEUE_FILTER_VERSION);
    flt.user_id = "B";
    flt.status = GEN_QUEUE_PENDING;
    flt.descending = 1;
    gen_queue_item_list *l = NULL;
    assert_int_equal(gen_queue_list(&l, f->q, &flt), GEN_OK);
    assert_int_equal(gen_queue_item_list_count(l), 2);
    assert_int_equal(gen_queue_item_id(gen_queue_item_list_at(l, 0)), b + 1);
    assert_null(gen_queue_item_list_at(l, 2));
    gen_queue_item_list_destroy(l);
    gen_queue_filter_init(&flt, GEN_QUEUE_FILTER_VERSION);
    flt.destination = "x";
    flt.status = GEN_QUEUE_COMPLETED;
    assert_int_equal(gen_queue_list(&l, f->q, &flt), GEN_OK);
    assert_int_equal(gen_queue_item_list_count(l), 1);
    gen_queue_item_list_destroy(l);
    flt.limit = 0;
    assert_int_equal(gen_queue_list(&l, f->q, &flt), GEN_EINVAL);
    assert_null(l);
}

static void test_job_validation_and_seeds(void **state)
{
    fixture *f = *state;
    gen_queue_batch bt = GEN_QUEUE_BATCH_INIT;
    gen_queue_enqueued *r = NULL;
    const char *bad[] = {"", "not json", "[1,2]", "{\"a\":1} trailing", "{\"model\":3}",
                         "{\"seed\":-1}", "{\"seed\":1.5}", "{\"a\":1,\"a\":2}",
                         "{\"seed\":4294967296}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bt.job = bad[i];
        gen_status st = gen_queue_enqueue(&r, f->q, &bt);
        if (st != GEN_EFORMAT)
            fail_msg("job %s: got %s", bad[i], gen_status_string(st));
        assert_null(r);
        assert_non_null(strstr(gen_last_error_message(), "job"));
    }
    /* A bad job in a list names its index and writes nothing. */
    const char *list[] = {"{\"a\":1}", "{\"b\":2}", "{oops"};
    bt.job = NULL;
    bt.jobs = list;
    bt.job_count = 3;
    assert_int_equal(gen_queue_enqueue(&r, f->q, &bt), GEN_EFORMAT);
    assert_non_null(strstr(gen_last_error_message(), "job 2"));
    gen_queue_counts c = GEN_QUEUE_COUNTS_INIT;
    assert_int_equal(gen_queue_get_counts(&c, f->q, NULL, NULL), GEN_OK);
    assert_int_equal(c.total, 0);
    /* Seeds increase per run and wrap at 2^32. */
    bt = (gen_queue_batch)GEN_QUEUE_BATCH_INIT;
    bt.job = "{\"model\":\"sd15\",\"seed\":4294967294,\"prompt\":\"a cat\"}";
    bt.runs = 3;
    assert_int_equal(gen_queue_enqueue(&r, f->q, &bt), GEN_OK);
    assert_int_equal(gen_queue_enqueued_count(r), 3);
    assert_int_equal(strlen(gen_queue_enqueued_batch_id(r)), 32);
    const char *want[] = {"4294967294", "4294967295", "\"seed\":0"};
    for (size_t i = 0; i < 3; i++) {
        gen_queue_item *it = NULL;
        assert_int_equal(gen_queue_get(&it, f->q, gen_queue_enqueued_item_id(r, i)), GEN_OK);
        assert_non_null(strstr(gen_queue_item_job(it), want[i]));
        assert_non_null(strstr(gen_queue_item_job(it), "a cat"));
        assert_string_equal(gen_queue_item_model(it), "sd15");
        assert_string_equal(gen_queue_item_user_id(it), "system");
        assert_string_equal(gen_queue_item_queue_id(it), "default");
        gen_queue_item_destroy(it);
    }
    gen_queue_enqueued_destroy(r);
    /* Oversized job. */
    char *big = malloc(2u << 20);
    memset(big, ' ', 2u << 20);
    big[0] = '{';
    big[(2u << 20) - 2] = '}';
    big[(2u << 20) - 1] = '\0';
    bt.job = big;
    bt.runs = 1;
    assert_int_equal(gen_queue_enqueue(&r, f->q, &bt), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "max_job_bytes"));
    free(big);
    /* Bad batch fields. */
    bt = (gen_queue_batch)GEN_QUEUE_BATCH_INIT;
    assert_int_equal(gen_queue_enqueue(&r, f->q, &bt), GEN_EINVAL);
    bt.job = "{}";
    bt.runs = 0;
    assert_int_equal(gen_queue_enqueue(&r, f->q, &bt), GEN_EINVAL);
    bt.runs = 1;
    bt.user_id = "";
    assert_int_equal(gen_queue_enqueue(&r, f->q, &bt), GEN_EINVAL);
    bt.user_id = "\xff\xfe";
    assert_int_equal(gen_queue_enqueue(&r, f->q, &bt), GEN_EINVAL);
    bt.user_id = NULL;
    bt.version = 99;
    assert_int_equal(gen_queue_enqueue(&r, f->q, &bt), GEN_EVERSION);
}

static void test_capacity(void **state)
{
    fixture *f = *state; /* max_queue_size = 20 */
    gen_queue_batch bt = GEN_QUEUE_BATCH_INIT;
    bt.job = "{}";
    bt.runs = 15;
    gen_queue_enqueued *r = NULL;
    assert_int_equal(gen_queue_enqueue(&r, f->q, &bt), GEN_OK);
    gen_queue_enqueued_destroy(r);
    bt.runs = 8;
    assert_int_equal(gen_queue_enqueue(&r, f->q, &bt), GEN_OK);
    assert_int_equal(gen_queue_enqueued_count(r), 5);
    assert_int_equal(gen_queue_enqueued_requested(r), 8);
    gen_queue_enqueued_destroy(r);
    assert_int_equal(gen_queue_enqueue(&r, f->q, &bt), GEN_EFULL);
    assert_null(r);
    assert_non_null(strstr(gen_last_error_message(), "full"));
    /* Other queues have their own limit. */
    bt.queue_id = "second";
    assert_int_equal(gen_queue_enqueue(&r, f->q, &bt), GEN_OK);
    gen_queue_enqueued_destroy(r);
    /* A claimed item frees a slot. */
    claim(f->q, "cpu:0");
    bt.queue_id = NULL;
    bt.runs = 1;
    assert_int_equal(gen_queue_enqueue(&r, f->q, &bt), GEN_OK);
    gen_queue_enqueued_destroy(r);
}

static void reenter(const gen_queue_event *e, void *ud)
{
    /* Callbacks run without the queue lock: calling back in must work. */
    gen_queue *q = ud;
    int32_t s = -1;
    assert_int_equal(gen_queue_get_status(&s, q, e->item_id), GEN_OK);
    assert_int_equal(s, e->new_status);
}

static void test_callback_may_reenter(void **state)
{
    fixture *f = *state;
    gen_queue_set_event_callback(f->q, reenter, f->q);
    int64_t id = qt_enqueue(f->q, "A", "{}", 1, 0, NULL, NULL);
    assert_int_equal(claim(f->q, "cpu:0"), id);
    assert_int_equal(gen_queue_set_status(NULL, f->q, id, GEN_QUEUE_COMPLETED, NULL, NULL), GEN_OK);
}

static void test_history_is_trimmed_at_open(void **state)
{
    fixture *f = *state;
    int64_t first = qt_enqueue(f->q, "A", "{}", 6, 0, NULL, NULL);
    qt_enqueue(f->q, "A", "{}", 2, 0, NULL, "other-queue-dest");
    for (int i = 0; i < 5; i++) {
        assert_int_equal(claim(f->q, "cpu:0"), first + i);
        assert_int_equal(gen_queue_set_status(NULL, f->q, first + i, GEN_QUEUE_COMPLETED, NULL,
                                              NULL),
                         GEN_OK);
    }
    gen_queue_close(f->q);
    gen_queue_options o = GEN_QUEUE_OPTIONS_INIT;
    o.heartbeat_ms = 0;
    o.max_queue_history = 2;
    assert_int_equal(gen_queue_open(&f->q, f->path, &o), GEN_OK);
    /* The two newest finished items stay; pending ones are never trimmed. */
    gen_queue_counts c = GEN_QUEUE_COUNTS_INIT;
    assert_int_equal(gen_queue_get_counts(&c, f->q, NULL, NULL), GEN_OK);
    assert_int_equal(c.completed, 2);
    assert_int_equal(c.pending, 3);
    int32_t s;
    assert_int_equal(gen_queue_get_status(&s, f->q, first + 4), GEN_OK);
    assert_int_equal(gen_queue_get_status(&s, f->q, first + 3), GEN_OK);
    assert_int_equal(gen_queue_get_status(&s, f->q, first + 2), GEN_ENOTFOUND);
}

static void test_public_structs_have_no_padding(void **state)
{
    (void)state;
    /* FFI mirrors (ctypes) are exact only without padding. */
    assert_int_equal(sizeof(gen_queue_options),
                     10 * sizeof(uint32_t) + sizeof(gen_log_fn) + sizeof(void *));
    assert_int_equal(sizeof(gen_queue_batch),
                     2 * sizeof(uint32_t) + 2 * sizeof(void *) + sizeof(size_t) +
                         5 * sizeof(void *) + 2 * sizeof(int32_t));
    assert_int_equal(sizeof(gen_queue_event), 4 * sizeof(int32_t) + sizeof(int64_t) +
                                                  5 * sizeof(void *));
    assert_int_equal(sizeof(gen_queue_counts), 2 * sizeof(uint32_t) + 6 * sizeof(uint64_t));
    assert_int_equal(sizeof(gen_queue_filter), 2 * sizeof(int32_t) + 4 * sizeof(void *) +
                                                   sizeof(int64_t) + 2 * sizeof(int32_t));
    gen_queue_filter a = GEN_QUEUE_FILTER_INIT, b;
    memset(&b, 0xa5, sizeof(b));
    assert_int_equal(gen_queue_filter_init(&b, GEN_QUEUE_FILTER_VERSION), GEN_OK);
    assert_memory_equal(&a, &b, sizeof(a));
}

static void test_options(void **state)
{
    (void)state;
    gen_queue_options o;
    assert_int_equal(gen_queue_options_init(&o, GEN_QUEUE_OPTIONS_VERSION), GEN_OK);
    gen_queue_options m = GEN_QUEUE_OPTIONS_INIT;
    assert_memory_equal(&o, &m, sizeof(o));
    assert_int_equal(gen_queue_options_init(&o, GEN_QUEUE_OPTIONS_VERSION + 1), GEN_EVERSION);
    assert_int_equal(gen_queue_options_set(&o, "mode", "fifo"), GEN_OK);
    assert_int_equal(o.mode, GEN_QUEUE_FIFO);
    assert_int_equal(gen_queue_options_set(&o, "max_job_bytes", "2MiB"), GEN_OK);
    assert_int_equal(o.max_job_bytes, 2u << 20);
    assert_int_equal(gen_queue_options_set(&o, "max_attempts", "0"), GEN_EINVAL);
    assert_int_equal(gen_queue_options_set(&o, "mode", "random"), GEN_EINVAL);
    assert_int_equal(gen_queue_options_set(&o, "nope", "1"), GEN_ENOTFOUND);
    /* The heartbeat must come before the lease runs out. */
    assert_int_equal(gen_queue_options_set(&o, "heartbeat_ms", "40000"), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "lease_ms"));
    assert_int_equal(o.heartbeat_ms, 10000);
    assert_int_equal(gen_queue_options_set(&o, "log_level", "debug"), GEN_OK);
    assert_int_equal(o.log_level, GEN_LOG_DEBUG);
    assert_int_equal(gen_queue_options_set(&o, "log_level", "loud"), GEN_EINVAL);
    gen_queue *q = (gen_queue *)1;
    o.max_queue_size = 0;
    assert_int_equal(gen_queue_open(&q, "/nonexistent/x.db", &o), GEN_EINVAL);
    assert_null(q);
    assert_int_equal(gen_queue_open(&q, "/nonexistent/dir/x.db", NULL), GEN_EIO);
    assert_null(q);
    assert_non_null(strstr(gen_last_error_message(), "/nonexistent/dir/x.db"));
    gen_queue_close(NULL);
    assert_string_equal(gen_queue_status_name(GEN_QUEUE_IN_PROGRESS), "in_progress");
    assert_string_equal(gen_queue_status_name(42), "unknown");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_status_changes_and_terminal_states),
        T(test_cancel_running_by_batch),
        T(test_cancel_running_by_destination),
        T(test_cancel_running_by_queue),
        T(test_delete_running_by_destination),
        T(test_user_scope_and_admin),
        T(test_prune_and_retry),
        T(test_queries),
        T(test_job_validation_and_seeds),
        T(test_capacity),
        T(test_callback_may_reenter),
        T(test_history_is_trimmed_at_open),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_public_structs_have_no_padding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
