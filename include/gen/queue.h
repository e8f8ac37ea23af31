/* libgen — the persistent session queue (SQLite).
 *
 * A queue file holds jobs (JSON objects) as items. Workers in one or several
 * processes claim items atomically; users share the workers round-robin; every
 * matching item, running ones included, can be canceled; items left running by
 * a process that died are recovered. Semantics in docs/queue.md.
 *
 * Threads: a gen_queue handle may be used from any number of threads at once
 * (one SQLite connection per handle, guarded by the handle's mutex). Several
 * handles, in one process or in several processes, may share one file.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef GEN_QUEUE_H
#define GEN_QUEUE_H

#include <gen/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gen_queue gen_queue;
typedef struct gen_queue_item gen_queue_item;
typedef struct gen_queue_item_list gen_queue_item_list;
typedef struct gen_queue_enqueued gen_queue_enqueued;

/* Item status. Completed, failed and canceled are terminal: a later change of a
 * terminal item is a no-op (GEN_OK, nothing changes, no event). */
typedef enum gen_queue_status {
    GEN_QUEUE_PENDING = 0,
    GEN_QUEUE_IN_PROGRESS = 1,
    GEN_QUEUE_COMPLETED = 2,
    GEN_QUEUE_FAILED = 3,
    GEN_QUEUE_CANCELED = 4
} gen_queue_status;

/* How claims pick the next item. */
typedef enum gen_queue_mode {
    /* Each user's best pending item (priority desc, id asc); the user served
     * longest ago (never served first) wins, then the lower item id. Model
     * affinity applies among the chosen user's next items. */
    GEN_QUEUE_ROUND_ROBIN = 0,
    /* Priority desc, then item id, across all users; no affinity. */
    GEN_QUEUE_FIFO = 1
} gen_queue_mode;

/* Static name of a status ("pending", "in_progress", "completed", "failed",
 * "canceled"; "unknown" otherwise). */
GEN_API const char *gen_queue_status_name(int32_t status);

/* --- options -------------------------------------------------------------------------------- */

#define GEN_QUEUE_OPTIONS_VERSION 1

typedef struct gen_queue_options {
    uint32_t version;           /* GEN_QUEUE_OPTIONS_VERSION */
    int32_t mode;               /* gen_queue_mode; default GEN_QUEUE_ROUND_ROBIN */
    uint32_t max_queue_size;    /* most pending items per queue id; default 10000 */
    uint32_t max_queue_history; /* finished items kept per queue at open; 0 = all (default) */
    uint32_t max_attempts;      /* runs an item may start before a dead worker fails it; default 3 */
    uint32_t busy_timeout_ms;   /* wait for a locked database, then GEN_EBUSY; default 5000 */
    uint32_t lease_ms;          /* a handle silent this long counts as dead; default 30000 */
    uint32_t heartbeat_ms;      /* lease renewal period of the background thread; default
                                   10000; 0 = no thread (call gen_queue_heartbeat) */
    uint32_t max_job_bytes;     /* largest job JSON accepted; default 1 MiB */
    int32_t log_level;          /* gen_log_level; default GEN_LOG_WARN */
    gen_log_fn log_fn;          /* NULL = stderr; called from any thread that uses the queue */
    void *log_user_data;        /* passed to log_fn */
} gen_queue_options;

#define GEN_QUEUE_OPTIONS_INIT                                                              \
    {                                                                                       \
        GEN_QUEUE_OPTIONS_VERSION, GEN_QUEUE_ROUND_ROBIN, 10000, 0, 3, 5000, 30000, 10000, \
            1048576, GEN_LOG_WARN, NULL, NULL                                               \
    }

/* Fill `opts` with the defaults of `version`. GEN_EVERSION for a newer version. */
GEN_API gen_status gen_queue_options_init(gen_queue_options *opts, uint32_t version);

/* Set one option from text. Names: mode ("round_robin", "fifo"), max_queue_size,
 * max_queue_history, max_attempts, busy_timeout_ms, lease_ms, heartbeat_ms,
 * max_job_bytes (sizes accept "1MiB" etc.), log_level ("error".."trace" or
 * 0..4). GEN_ENOTFOUND for an unknown name,
 * GEN_EINVAL for a bad value; `opts` is unchanged on failure. */
GEN_API gen_status gen_queue_options_set(gen_queue_options *opts, const char *name,
                                         const char *value);

/* --- open / close ------------------------------------------------------------------------- */

/* Open (creating if needed) the queue file at `path` and migrate it to the
 * newest schema. Then recover: items left in progress by handles that are gone
 * (their process died, or their lease ran out) go back to pending with
 * attempts + 1, or become failed once max_attempts is reached; items of live
 * handles are not touched. Then keep only max_queue_history finished items per
 * queue. `opts` may be NULL for the defaults.
 * Errors: GEN_EVERSION (the file was written by a newer libgen), GEN_EDATABASE
 * (not a SQLite file, or corrupt), GEN_EIO / GEN_ENOSPC (cannot read or write),
 * GEN_EBUSY (locked by others past busy_timeout_ms). *out is NULL on failure. */
GEN_API gen_status gen_queue_open(gen_queue **out, const char *path, const gen_queue_options *opts);

/* Close the handle (stops its heartbeat thread, releases its lease). Items it
 * still has in progress are recovered by the next open or gen_queue_recover.
 * NULL is accepted. Must not race with other calls on the same handle. */
GEN_API void gen_queue_close(gen_queue *q);

/* Renew this handle's lease now (the background thread does it every
 * heartbeat_ms unless heartbeat_ms is 0). */
GEN_API gen_status gen_queue_heartbeat(gen_queue *q);

/* Run the recovery of gen_queue_open now (e.g. periodically in a long-lived
 * service). *out_recovered (may be NULL) = items re-queued or failed. */
GEN_API gen_status gen_queue_recover(uint64_t *out_recovered, gen_queue *q);

/* --- events ------------------------------------------------------------------------------- */

#define GEN_QUEUE_EVENT_VERSION 1

/* One status change. Filled by the library; fields are only ever appended
 * (read `version` before reading a field added later). Strings are valid only
 * during the callback; device, and error_message are NULL when absent. */
typedef struct gen_queue_event {
    uint32_t version;
    int32_t old_status; /* gen_queue_status */
    int32_t new_status; /* gen_queue_status */
    int32_t reserved;
    int64_t item_id;
    const char *queue_id;
    const char *batch_id;
    const char *user_id;
    const char *device;
    const char *error_message;
} gen_queue_event;

typedef void (*gen_queue_event_fn)(const gen_queue_event *event, void *user_data);

/* Register the callback that receives every status change made through this
 * handle (claims, status changes, cancels, recovery). It runs on the thread
 * that made the change, after the change is committed and with no queue lock
 * held, so it may call back into the queue. Changes made by other handles or
 * processes are not reported here: poll gen_queue_get_status for those.
 * fn = NULL unregisters. */
GEN_API gen_status gen_queue_set_event_callback(gen_queue *q, gen_queue_event_fn fn,
                                                void *user_data);

/* --- enqueue ------------------------------------------------------------------------------ */

#define GEN_QUEUE_BATCH_VERSION 1

/* A batch to enqueue: either `job` x `runs` (run i gets "seed" + i when the job
 * has a "seed"), or the `jobs` list (job_count entries, each once). Every job
 * is a JSON object of at most max_job_bytes; its "model" string (if any) is
 * kept for device affinity. Pointers are read during the call only. */
typedef struct gen_queue_batch {
    uint32_t version;        /* GEN_QUEUE_BATCH_VERSION */
    uint32_t runs;           /* >= 1 with `job`; ignored with `jobs` */
    const char *job;         /* one job, or NULL when `jobs` is used */
    const char *const *jobs; /* list of jobs, or NULL */
    size_t job_count;
    const char *queue_id;    /* NULL = "default" */
    const char *user_id;     /* NULL = "system" */
    const char *batch_id;    /* NULL = a new random id */
    const char *origin;      /* free text, may be NULL */
    const char *destination; /* free text, may be NULL; see gen_queue_cancel_by_destination */
    int32_t priority;        /* higher first within a user; ignored with prepend */
    int32_t prepend;         /* nonzero: priority = 1 + the highest pending priority */
} gen_queue_batch;

#define GEN_QUEUE_BATCH_INIT                                                  \
    {                                                                         \
        GEN_QUEUE_BATCH_VERSION, 1, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, 0, 0 \
    }

/* Enqueue a batch in one transaction. If fewer than the requested items fit
 * under max_queue_size (pending items of that queue), only the first ones are
 * enqueued (see gen_queue_enqueued_requested); none fitting is GEN_EFULL.
 * GEN_EFORMAT for a job that is not a JSON object (the message names the
 * job index), GEN_EINVAL for other bad fields. *out is NULL on failure. */
GEN_API gen_status gen_queue_enqueue(gen_queue_enqueued **out, gen_queue *q,
                                     const gen_queue_batch *batch);

/* The result of an enqueue or retry: item ids in insertion order. */
GEN_API size_t gen_queue_enqueued_count(const gen_queue_enqueued *r);
GEN_API size_t gen_queue_enqueued_requested(const gen_queue_enqueued *r);
GEN_API int64_t gen_queue_enqueued_item_id(const gen_queue_enqueued *r, size_t index);
GEN_API const char *gen_queue_enqueued_batch_id(const gen_queue_enqueued *r);
GEN_API void gen_queue_enqueued_destroy(gen_queue_enqueued *r);

/* --- claim and status --------------------------------------------------------------------- */

/* Atomically take the next pending item (see gen_queue_mode) and mark it
 * in_progress on `device` (may be NULL), owned by this handle. Safe across
 * threads and processes: no item is ever claimed twice. `resident_models`
 * (model keys already loaded on the device, may be NULL) steer the pick among
 * the chosen user's next items of the same priority (round-robin mode only;
 * never across users or priorities). *out is NULL and GEN_OK when nothing is
 * pending. The caller owns *out (gen_queue_item_destroy). */
GEN_API gen_status gen_queue_claim(gen_queue_item **out, gen_queue *q, const char *device,
                                   const char *const *resident_models, size_t model_count);

/* Change an item's status (error_type / error_message may be NULL; they are
 * kept only for failed). A terminal item is left as is (GEN_OK, *out_changed =
 * 0). Completed and failed are results: only the handle that claimed the item
 * may report them, while it is in progress (GEN_ESTATE otherwise, e.g. after
 * its lease expired and the item was recovered). *out_changed (may be NULL) is
 * 1 when the row changed. GEN_ENOTFOUND for a missing item. */
GEN_API gen_status gen_queue_set_status(int *out_changed, gen_queue *q, int64_t item_id,
                                        int32_t status, const char *error_type,
                                        const char *error_message);

/* Current status of one item (cheap; for polling cancellation). */
GEN_API gen_status gen_queue_get_status(int32_t *out_status, gen_queue *q, int64_t item_id);

/* --- cancel, delete, retry ----------------------------------------------------------------- */
/* Scope of the calls below: with admin = 0, user_id is required and only that
 * user's items are touched (an explicit item of another user is GEN_EPERM);
 * with admin != 0, user_id = NULL means every user and a user_id narrows the
 * bulk calls to that user (gen_queue_cancel_item then cancels any item). queue_id NULL means "default". Every matching pending AND
 * in-progress item is canceled, with one event per item; counts are the rows
 * this call changed. Workers of other processes see the cancellation by
 * polling gen_queue_get_status. */

GEN_API gen_status gen_queue_cancel_item(uint64_t *out_canceled, gen_queue *q, int64_t item_id,
                                         const char *user_id, int admin);
GEN_API gen_status gen_queue_cancel_by_batch(uint64_t *out_canceled, gen_queue *q,
                                             const char *queue_id, const char *const *batch_ids,
                                             size_t batch_count, const char *user_id, int admin);
GEN_API gen_status gen_queue_cancel_by_destination(uint64_t *out_canceled, gen_queue *q,
                                                   const char *queue_id, const char *destination,
                                                   const char *user_id, int admin);
GEN_API gen_status gen_queue_cancel_by_queue(uint64_t *out_canceled, gen_queue *q,
                                             const char *queue_id, const char *user_id, int admin);

/* Cancel the matching in-progress items (events), then delete every matching
 * row. *out_deleted = rows deleted. */
GEN_API gen_status gen_queue_delete_by_destination(uint64_t *out_deleted, gen_queue *q,
                                                   const char *queue_id,
                                                   const char *destination,
                                                   const char *user_id, int admin);

/* Cancel the in-progress items in scope (events), then delete every row in
 * scope. */
GEN_API gen_status gen_queue_clear(uint64_t *out_deleted, gen_queue *q, const char *queue_id,
                                   const char *user_id, int admin);

/* Delete the finished (completed, failed, canceled) items in scope. */
GEN_API gen_status gen_queue_prune(uint64_t *out_deleted, gen_queue *q, const char *queue_id,
                                   const char *user_id, int admin);

/* Enqueue failed or canceled items again as new pending items (same job,
 * batch, user, priority, destination; retried_from = the old id). Other
 * statuses and missing ids are skipped. Capped by max_queue_size. */
GEN_API gen_status gen_queue_retry(gen_queue_enqueued **out, gen_queue *q, const int64_t *item_ids,
                                   size_t count, const char *user_id, int admin);

/* --- queries ------------------------------------------------------------------------------ */

#define GEN_QUEUE_COUNTS_VERSION 1

/* Item counts by status. Set `version` (GEN_QUEUE_COUNTS_VERSION) before the
 * call; the library fills the fields that version has. */
typedef struct gen_queue_counts {
    uint32_t version;
    uint32_t reserved;
    uint64_t pending;
    uint64_t in_progress;
    uint64_t completed;
    uint64_t failed;
    uint64_t canceled;
    uint64_t total;
} gen_queue_counts;

#define GEN_QUEUE_COUNTS_INIT {GEN_QUEUE_COUNTS_VERSION, 0, 0, 0, 0, 0, 0, 0}

/* Counts for one queue (NULL = every queue) and one user (NULL = every user). */
GEN_API gen_status gen_queue_get_counts(gen_queue_counts *out, gen_queue *q, const char *queue_id,
                                        const char *user_id);

/* Counts of one batch. */
GEN_API gen_status gen_queue_get_batch_counts(gen_queue_counts *out, gen_queue *q,
                                              const char *batch_id);

/* One item; GEN_ENOTFOUND if missing. The caller owns *out. */
GEN_API gen_status gen_queue_get(gen_queue_item **out, gen_queue *q, int64_t item_id);

#define GEN_QUEUE_FILTER_VERSION 1

/* Filter and page of gen_queue_list. NULL strings and status -1 match all. */
typedef struct gen_queue_filter {
    uint32_t version;        /* GEN_QUEUE_FILTER_VERSION */
    int32_t status;          /* gen_queue_status, or -1 */
    const char *queue_id;
    const char *user_id;
    const char *batch_id;
    const char *destination;
    int64_t after_item_id;   /* paging cursor: ids above this (below with descending) */
    uint32_t limit;          /* rows per page, 1..10000; default 100 */
    int32_t descending;      /* nonzero: newest first */
} gen_queue_filter;

#define GEN_QUEUE_FILTER_INIT                                        \
    {                                                                \
        GEN_QUEUE_FILTER_VERSION, -1, NULL, NULL, NULL, NULL, 0, 100, 0 \
    }

GEN_API gen_status gen_queue_filter_init(gen_queue_filter *filter, uint32_t version);

/* Items matching `filter` (NULL = the first 100), ordered by id. For the next
 * page pass the last item's id as after_item_id. The caller owns *out. */
GEN_API gen_status gen_queue_list(gen_queue_item_list **out, gen_queue *q,
                                  const gen_queue_filter *filter);

GEN_API size_t gen_queue_item_list_count(const gen_queue_item_list *list);
/* Borrowed from the list (valid until the list is destroyed); NULL out of range. */
GEN_API const gen_queue_item *gen_queue_item_list_at(const gen_queue_item_list *list, size_t index);
GEN_API void gen_queue_item_list_destroy(gen_queue_item_list *list);

/* --- item accessors (strings owned by the item; NULL when absent) -------------------------- */

GEN_API int64_t gen_queue_item_id(const gen_queue_item *item);
GEN_API const char *gen_queue_item_queue_id(const gen_queue_item *item);
GEN_API const char *gen_queue_item_batch_id(const gen_queue_item *item);
GEN_API const char *gen_queue_item_user_id(const gen_queue_item *item);
GEN_API const char *gen_queue_item_job(const gen_queue_item *item); /* the job JSON */
GEN_API const char *gen_queue_item_model(const gen_queue_item *item);
GEN_API int32_t gen_queue_item_status(const gen_queue_item *item);
GEN_API int32_t gen_queue_item_priority(const gen_queue_item *item);
GEN_API const char *gen_queue_item_origin(const gen_queue_item *item);
GEN_API const char *gen_queue_item_destination(const gen_queue_item *item);
GEN_API const char *gen_queue_item_device(const gen_queue_item *item);
GEN_API const char *gen_queue_item_error_type(const gen_queue_item *item);
GEN_API const char *gen_queue_item_error_message(const gen_queue_item *item);
GEN_API int32_t gen_queue_item_attempts(const gen_queue_item *item);
GEN_API int64_t gen_queue_item_retried_from(const gen_queue_item *item); /* 0 = none */
/* Unix epoch milliseconds; 0 when not reached. */
GEN_API int64_t gen_queue_item_created_at(const gen_queue_item *item);
GEN_API int64_t gen_queue_item_updated_at(const gen_queue_item *item);
GEN_API int64_t gen_queue_item_started_at(const gen_queue_item *item);
GEN_API int64_t gen_queue_item_completed_at(const gen_queue_item *item);
GEN_API void gen_queue_item_destroy(gen_queue_item *item);

#ifdef __cplusplus
}
#endif

#endif /* GEN_QUEUE_H */
