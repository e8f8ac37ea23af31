/* Private view of the queue: the handle, SQLite helpers, events, migrations. */
#ifndef GEN_QUEUE_INTERNAL_H
#define GEN_QUEUE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>

#include <gen/queue.h>

#include "core/log.h"

/* Newest schema version this library writes (lib/queue/schema.c). */
#define GEN__QUEUE_SCHEMA_VERSION 3

/* Affinity looks this many ids past the fair pick, with at most this many keys. */
#define GEN__QUEUE_AFFINITY_LOOKAHEAD 32
#define GEN__QUEUE_AFFINITY_MAX_KEYS 50

/* Prepared statements kept per handle, keyed by their static SQL text. */
#define GEN__QUEUE_STMT_CACHE 48

typedef struct gen__queue_gate gen__queue_gate;

typedef struct gen__queue_event_rec {
    int64_t item_id;
    int32_t old_status, new_status;
    char *queue_id, *batch_id, *user_id, *device, *error_message;
} gen__queue_event_rec;

struct gen_queue {
    pthread_mutex_t lock; /* guards db, stmts, events, callback */
    sqlite3 *db;
    char *path;
    gen_queue_options opts;
    gen__logger logger;
    char owner[40];   /* this handle's lease token */
    char host[300];   /* host name + pid namespace, for liveness checks */
    bool lease_registered;
    gen__queue_gate *gate; /* in-process write order for this file (may be NULL) */
    bool in_gate;          /* this handle holds its turn (a write transaction is open) */
    int64_t busy_since_ns; /* start of the current wait for a lock */
    uint64_t busy_seed;    /* jitter of busy waits */
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } stmts[GEN__QUEUE_STMT_CACHE];
    /* Changes of the open transaction; delivered after commit, dropped on rollback. */
    gen__queue_event_rec *events;
    size_t event_count, event_cap;
    gen_queue_event_fn event_fn;
    void *event_user_data;
    /* Heartbeat thread. */
    pthread_t hb_thread;
    bool hb_running;
    bool hb_stop;
    pthread_cond_t hb_cond;
    pthread_mutex_t hb_lock;
};

/* --- db.c: statements, transactions, error mapping --------------------------------------- */

/* Map the connection's last SQLite error to a gen_status with a message naming
 * `what` and the file. */
gen_status gen__queue_db_error(gen_queue *q, int rc, const char *what);
/* Same, for a bare connection during open. */
gen_status gen__queue_sqlite_status(sqlite3 *db, int rc, const char *path, const char *what);

/* Cached prepared statement for static `sql` (reset, bindings cleared). */
gen_status gen__queue_stmt(gen_queue *q, const char *sql, sqlite3_stmt **out);
void gen__queue_stmts_finalize(gen_queue *q);

/* Run SQL without results. */
gen_status gen__queue_exec(gen_queue *q, const char *sql, const char *what);

/* BEGIN IMMEDIATE (write lock, waiting up to busy_timeout_ms), COMMIT, ROLLBACK.
 * Commit delivers nothing itself: gen__queue_unlock_and_dispatch does. */
gen_status gen__queue_begin(gen_queue *q, const char *what);
gen_status gen__queue_commit(gen_queue *q, const char *what);
void gen__queue_rollback(gen_queue *q);

/* Step a statement that returns no rows (or ignore them). */
gen_status gen__queue_step_done(gen_queue *q, sqlite3_stmt *st, const char *what);

/* Bind helpers: NULL text binds SQL NULL. */
void gen__queue_bind_text(sqlite3_stmt *st, int idx, const char *text);
/* Column text copied with gen__strdup; NULL stays NULL. *ok false on ENOMEM. */
char *gen__queue_column_dup(sqlite3_stmt *st, int col, bool *ok);

/* --- gate.c ------------------------------------------------------------------------------ */

/* The shared gate of the file at `path` (NULL when it cannot be identified). */
gen_status gen__queue_gate_get(const char *path, gen__queue_gate **out);
void gen__queue_gate_put(gen__queue_gate *g);
/* Wait for this thread's turn / pass it on. NULL gates are no-ops. */
void gen__queue_gate_enter(gen__queue_gate *g);
void gen__queue_gate_leave(gen__queue_gate *g);

/* --- events.c ----------------------------------------------------------------------------- */

/* Record a change of the open transaction. */
gen_status gen__queue_event_add(gen_queue *q, int64_t item_id, int32_t old_status,
                                int32_t new_status, const char *queue_id, const char *batch_id,
                                const char *user_id, const char *device, const char *error_message);
void gen__queue_events_drop(gen_queue *q);
/* Release q->lock and deliver the recorded events to the callback. */
void gen__queue_unlock_and_dispatch(gen_queue *q);

/* --- status.c ----------------------------------------------------------------------------- */

int32_t gen__queue_status_parse(const char *text); /* -1 if unknown */
bool gen__queue_status_terminal(int32_t status);

/* --- schema.c ----------------------------------------------------------------------------- */

/* Migrate the database to `target` (<= GEN__QUEUE_SCHEMA_VERSION), each step in
 * its own transaction. GEN_EVERSION if the file is newer than the library. */
gen_status gen__queue_migrate(sqlite3 *db, const char *path, int target);
/* Schema version recorded in the file (0 for an empty file). */
gen_status gen__queue_schema_version(sqlite3 *db, const char *path, int *out);

/* --- job.c -------------------------------------------------------------------------------- */

typedef struct gen__queue_job_info {
    char *model;     /* "model" string or NULL (gen__free) */
    bool has_seed;
    int64_t seed;    /* "seed" when has_seed */
} gen__queue_job_info;

/* Check that text[0..len) is one JSON object of at most max_bytes and extract
 * what the queue needs. GEN_EFORMAT / GEN_EINVAL with a message otherwise. */
gen_status gen__queue_job_parse(const char *text, size_t len, size_t max_bytes,
                                gen__queue_job_info *out);
void gen__queue_job_info_free(gen__queue_job_info *info);

/* The job with "seed" replaced by seed + run (wrapped to 0..2^32-1); caller
 * frees with gen__free. */
gen_status gen__queue_job_with_seed(const char *text, size_t len, int64_t seed, char **out);

/* A parsed job whose "seed" is rewritten per run without parsing again. */
typedef struct gen__queue_reseeder gen__queue_reseeder;
gen_status gen__queue_reseeder_new(const char *text, size_t len, gen__queue_reseeder **out);
void gen__queue_reseeder_free(gen__queue_reseeder *r);
/* Serialise the job with "seed" = seed (wrapped) into *buf (grown as needed). */
gen_status gen__queue_reseed(gen__queue_reseeder *r, int64_t seed, char **buf, size_t *cap);

/* --- recover.c ---------------------------------------------------------------------------- */

/* Recovery inside an open transaction; *out = items changed. */
gen_status gen__queue_recover_locked(gen_queue *q, uint64_t *out);
/* Insert or refresh this handle's lease row. */
gen_status gen__queue_lease_renew(gen_queue *q);
/* Host key (host name + pid namespace) of this process. */
void gen__queue_host_key(char *buf, size_t size);
/* Random hex token of 2*bytes characters. */
void gen__queue_random_hex(char *buf, size_t bytes);

/* --- item.c ------------------------------------------------------------------------------- */

#define GEN__QUEUE_ITEM_COLUMNS                                                              \
    "item_id, queue_id, batch_id, user_id, job, model, status, priority, origin, "          \
    "destination, device, error_type, error_message, attempts, retried_from, created_at, " \
    "updated_at, started_at, completed_at"

/* Build an item from a row selected with GEN__QUEUE_ITEM_COLUMNS. */
gen_status gen__queue_item_from_row(sqlite3_stmt *st, gen_queue_item **out);

struct gen_queue_enqueued {
    int64_t *ids;
    size_t count, requested;
    char *batch_id;
};

/* --- claim.c ----------------------------------------------------------------------------- */

/* The pick statement of a mode (for the query-plan test). */
const char *gen__queue_claim_sql(int mode);

/* --- enqueue.c (shared with retry) ------------------------------------------------------- */

/* Check an optional id/origin/destination text: length, UTF-8, non-empty. */
gen_status gen__queue_check_text(const char *what, const char *text, bool allow_empty);
gen_status gen__queue_enqueued_new(size_t cap, const char *batch_id, gen_queue_enqueued **out);
void gen__queue_enqueued_free(gen_queue_enqueued *r);
/* Free slots under max_queue_size for pending items of `queue_id`. */
gen_status gen__queue_pending_room(gen_queue *q, const char *queue_id, size_t *room);
gen_status gen__queue_insert(gen_queue *q, const char *queue_id, const char *batch_id,
                             const char *user_id, const char *job, const char *model,
                             int32_t priority, const char *origin, const char *destination,
                             int64_t retried_from, int64_t now, int64_t *id);

#endif
