#include "worker/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/time.h"

/* Consecutive claim failures after which a worker gives up (an error outside
 * any item: the database is gone or corrupt). */
#define MAX_CLAIM_FAILURES 20
#define MAX_AFFINITY_KEYS 50

typedef struct gen__worker {
    gen__workers *owner;
    size_t index;
    const gen__device *device;
    pthread_t thread;
    bool started;
    atomic_int cancel;          /* the current item must stop */
    atomic_bool alive;
    pthread_mutex_t mu;         /* guards the current item fields */
    int64_t current_item;       /* 0 = idle */
    char current_batch[128];
    char current_user[128];
} gen__worker;

struct gen__workers {
    gen__workers_config cfg;
    pthread_mutex_t mu;         /* stopping, paused, wake_seq */
    pthread_cond_t cv;
    bool stopping;
    gen_stop_mode stop_mode;
    bool paused;
    uint64_t wake_seq;
    size_t count;
    gen__worker *workers;
};

/* --- helpers --------------------------------------------------------------------------------- */

static bool is_terminal(int32_t status)
{
    return status == GEN_QUEUE_COMPLETED || status == GEN_QUEUE_FAILED ||
           status == GEN_QUEUE_CANCELED;
}

static void set_current(gen__worker *w, const gen_queue_item *item)
{
    pthread_mutex_lock(&w->mu);
    w->current_item = item ? gen_queue_item_id(item) : 0;
    snprintf(w->current_batch, sizeof(w->current_batch), "%s",
             item && gen_queue_item_batch_id(item) ? gen_queue_item_batch_id(item) : "");
    snprintf(w->current_user, sizeof(w->current_user), "%s",
             item && gen_queue_item_user_id(item) ? gen_queue_item_user_id(item) : "");
    pthread_mutex_unlock(&w->mu);
}

/* Wait until woken (enqueue, resume, stop) or `ms` pass. */
static void wait_for_wake(gen__workers *ws, uint64_t seen_seq, uint32_t ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ws->mu);
    while (!ws->stopping && ws->wake_seq == seen_seq) {
        if (pthread_cond_timedwait(&ws->cv, &ws->mu, &deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&ws->mu);
}

/* --- hooks given to the runner ------------------------------------------------------------- */

typedef struct hook_state {
    gen__worker *w;
    int64_t item;
    const char *batch;
    const char *user;
} hook_state;

static bool hook_should_cancel(void *p)
{
    hook_state *h = p;
    if (atomic_load(&h->w->cancel))
        return true;
    /* Another process may have canceled the item: one indexed read per step. */
    int32_t status = GEN_QUEUE_IN_PROGRESS;
    if (gen_queue_get_status(&status, h->w->owner->cfg.queue, h->item) == GEN_ENOTFOUND ||
        is_terminal(status)) {
        atomic_store(&h->w->cancel, 1);
        return true;
    }
    return false;
}

static void hook_progress(void *p, gen_stage stage, int step, int total, const uint8_t *preview,
                          int pw, int ph)
{
    hook_state *h = p;
    gen__workers *ws = h->w->owner;
    if (!ws->cfg.emit)
        return;
    gen__event_fields f = {0};
    f.type = GEN_EVENT_PROGRESS;
    f.item_id = h->item;
    f.batch_id = h->batch;
    f.user_id = h->user;
    f.device_index = (int32_t)h->w->index;
    f.device_label = h->w->device->label;
    f.stage = stage;
    f.step = step;
    f.total = total;
    f.preview = preview;
    f.preview_w = pw;
    f.preview_h = ph;
    ws->cfg.emit(ws->cfg.emit_ctx, &f);
}

static void hook_model_load(void *p, const char *key, bool finished, double seconds)
{
    hook_state *h = p;
    gen__workers *ws = h->w->owner;
    if (finished)
        GEN__LOG_INFO(ws->cfg.logger, "%s (%s): loaded %s in %.2f s", h->w->device->id,
                      h->w->device->label, key, seconds);
    if (!ws->cfg.emit)
        return;
    gen__event_fields f = {0};
    f.type = GEN_EVENT_MODEL_LOAD;
    f.item_id = h->item;
    f.device_index = (int32_t)h->w->index;
    f.device_label = h->w->device->label;
    f.model_key = key;
    f.model_loaded = finished;
    f.seconds = seconds;
    ws->cfg.emit(ws->cfg.emit_ctx, &f);
}

/* --- one item -------------------------------------------------------------------------------- */

static void finish_item(gen__worker *w, int64_t id, int32_t status, const char *error_type,
                        const char *message)
{
    gen_status st = gen_queue_set_status(NULL, w->owner->cfg.queue, id, status, error_type, message);
    if (st != GEN_OK && st != GEN_ENOTFOUND) /* a deleted row is fine */
        GEN__LOG_ERROR(w->owner->cfg.logger, "%s: cannot record item %lld as %s: %s",
                       w->device->id, (long long)id, gen_queue_status_name(status),
                       gen_last_error_message());
    /* The status event comes from the queue's callback, once per committed change. */
}

/* What to do with an item stopped because the pool is stopping. */
static int32_t stopped_status(gen__workers *ws)
{
    pthread_mutex_lock(&ws->mu);
    gen_stop_mode mode = ws->stop_mode;
    pthread_mutex_unlock(&ws->mu);
    return mode == GEN_STOP_REQUEUE ? GEN_QUEUE_PENDING : GEN_QUEUE_CANCELED;
}

static bool pool_stopping(gen__workers *ws)
{
    pthread_mutex_lock(&ws->mu);
    bool stopping = ws->stopping;
    pthread_mutex_unlock(&ws->mu);
    return stopping;
}

static void run_item(gen__worker *w, gen_queue_item *item)
{
    gen__workers *ws = w->owner;
    int64_t id = gen_queue_item_id(item);
    set_current(w, item); /* publish first: a cancel from now on reaches this worker */

    int32_t status = GEN_QUEUE_IN_PROGRESS;
    gen_status st = gen_queue_get_status(&status, ws->cfg.queue, id);
    if (st == GEN_ENOTFOUND || (st == GEN_OK && is_terminal(status))) {
        GEN__LOG_DEBUG(ws->cfg.logger, "%s: item %lld was %s before it started; skipped",
                       w->device->id, (long long)id,
                       st == GEN_OK ? gen_queue_status_name(status) : "deleted");
        set_current(w, NULL);
        return;
    }
    if (atomic_load(&w->cancel)) {
        if (pool_stopping(ws)) {
            finish_item(w, id, stopped_status(ws), NULL, NULL);
            set_current(w, NULL);
            return;
        }
        /* A genuine cancel writes the database before it is routed, and the row
         * was not terminal above: this flag is stale. Clear it and look again. */
        atomic_store(&w->cancel, 0);
        if (gen_queue_get_status(&status, ws->cfg.queue, id) == GEN_OK && is_terminal(status)) {
            set_current(w, NULL);
            return;
        }
    }

    GEN__LOG_INFO(ws->cfg.logger, "%s (%s): running item %lld of user %s", w->device->id,
                  w->device->label, (long long)id,
                  gen_queue_item_user_id(item) ? gen_queue_item_user_id(item) : "?");
    hook_state hs = {w, id, gen_queue_item_batch_id(item), gen_queue_item_user_id(item)};
    gen__run_hooks hooks = {hook_should_cancel, hook_progress, hook_model_load, &hs};
    gen__run_result result;
    memset(&result, 0, sizeof(result));
    int64_t t0 = gen__monotonic_ns();
    st = ws->cfg.runner(ws->cfg.runner_ctx, w->index, item, &hooks, &result);
    double seconds = (double)(gen__monotonic_ns() - t0) / 1e9;

    if (st == GEN_OK) {
        if (ws->cfg.emit && result.image_path[0]) {
            gen__event_fields f = {0};
            f.type = GEN_EVENT_IMAGE_READY;
            f.item_id = id;
            f.batch_id = hs.batch;
            f.user_id = hs.user;
            f.device_index = (int32_t)w->index;
            f.device_label = w->device->label;
            f.image_path = result.image_path;
            f.image_w = result.width;
            f.image_h = result.height;
            ws->cfg.emit(ws->cfg.emit_ctx, &f);
        }
        finish_item(w, id, GEN_QUEUE_COMPLETED, NULL, NULL);
        GEN__LOG_INFO(ws->cfg.logger, "%s: item %lld completed in %.2f s", w->device->id,
                      (long long)id, seconds);
    } else if (st == GEN_ECANCELED) {
        /* Usually the row is already canceled (a no-op here); a stop asks for
         * canceled or, with REQUEUE, pending. */
        finish_item(w, id, pool_stopping(ws) ? stopped_status(ws) : GEN_QUEUE_CANCELED, NULL,
                    NULL);
        GEN__LOG_INFO(ws->cfg.logger, "%s: item %lld stopped after %.2f s", w->device->id,
                      (long long)id, seconds);
    } else {
        char message[1024];
        snprintf(message, sizeof(message), "%s", gen_last_error_message());
        finish_item(w, id, GEN_QUEUE_FAILED, gen_status_string(st), message);
        GEN__LOG_WARN(ws->cfg.logger, "%s: item %lld failed: %s", w->device->id, (long long)id,
                      message);
    }
    set_current(w, NULL);
}

/* --- the loop -------------------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    gen__worker *w = arg;
    gen__workers *ws = w->owner;
    gen__session_device_set(w->device);
    gen__model_cache *cache = ws->cfg.caches ? gen__model_caches_get(ws->cfg.caches, w->index) : NULL;
    char (*keys)[128] = gen__calloc(MAX_AFFINITY_KEYS, sizeof(*keys));
    const char **key_ptrs = gen__calloc(MAX_AFFINITY_KEYS, sizeof(*key_ptrs));
    int failures = 0;
    GEN__LOG_INFO(ws->cfg.logger, "worker %zu started on %s (%s)", w->index, w->device->id,
                  w->device->label);
    for (;;) {
        pthread_mutex_lock(&ws->mu);
        while (ws->paused && !ws->stopping)
            pthread_cond_wait(&ws->cv, &ws->mu);
        bool stopping = ws->stopping;
        uint64_t seq = ws->wake_seq;
        pthread_mutex_unlock(&ws->mu);
        if (stopping)
            break;

        atomic_store(&w->cancel, 0); /* before the claim: a cancel after it is kept */
        size_t nkeys = 0;
        if (cache && keys && key_ptrs) {
            nkeys = gen__model_cache_resident_keys(cache, keys, MAX_AFFINITY_KEYS);
            for (size_t i = 0; i < nkeys; i++)
                key_ptrs[i] = keys[i];
        }
        gen_queue_item *item = NULL;
        gen_status st = gen_queue_claim(&item, ws->cfg.queue, w->device->id, key_ptrs, nkeys);
        if (st != GEN_OK) {
            failures++;
            GEN__LOG_WARN(ws->cfg.logger, "%s: claiming failed (%d in a row): %s", w->device->id,
                          failures, gen_last_error_message());
            if (failures >= MAX_CLAIM_FAILURES) {
                char message[1200];
                snprintf(message, sizeof(message), "worker on %s stopped after %d failed claims: %s",
                         w->device->id, failures, gen_last_error_message());
                GEN__LOG_ERROR(ws->cfg.logger, "%s", message);
                if (ws->cfg.emit) {
                    gen__event_fields f = {0};
                    f.type = GEN_EVENT_WORKER_ERROR;
                    f.device_index = (int32_t)w->index;
                    f.device_label = w->device->label;
                    f.message = message;
                    ws->cfg.emit(ws->cfg.emit_ctx, &f);
                }
                break;
            }
            wait_for_wake(ws, seq, ws->cfg.poll_interval_ms);
            continue;
        }
        failures = 0;
        if (!item) {
            wait_for_wake(ws, seq, ws->cfg.poll_interval_ms);
            continue;
        }
        run_item(w, item);
        gen_queue_item_destroy(item);
    }
    gen__free(keys);
    gen__free(key_ptrs);
    atomic_store(&w->alive, false);
    gen__session_device_clear();
    GEN__LOG_INFO(ws->cfg.logger, "worker %zu on %s stopped", w->index, w->device->id);
    return NULL;
}

/* --- pool ------------------------------------------------------------------------------------- */

gen_status gen__workers_start(gen__workers **out, const gen__workers_config *cfg)
{
    *out = NULL;
    size_t n = gen_device_pool_count(cfg->pool);
    if (!cfg->queue || !cfg->runner || n == 0)
        return gen__error(GEN_EINVAL, "workers: no queue, runner or device");
    gen__workers *ws = gen__calloc(1, sizeof(*ws));
    gen__worker *workers = gen__calloc(n, sizeof(*workers));
    if (!ws || !workers) {
        gen__free(ws);
        gen__free(workers);
        return gen__error(GEN_ENOMEM, "workers: cannot allocate %zu workers", n);
    }
    ws->cfg = *cfg;
    if (ws->cfg.poll_interval_ms == 0)
        ws->cfg.poll_interval_ms = 250;
    ws->count = n;
    ws->workers = workers;
    pthread_mutex_init(&ws->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ws->cv, &attr);
    pthread_condattr_destroy(&attr);
    for (size_t i = 0; i < n; i++) {
        gen__worker *w = &workers[i];
        w->owner = ws;
        w->index = i;
        w->device = gen__device_pool_at(cfg->pool, i);
        pthread_mutex_init(&w->mu, NULL);
        atomic_init(&w->cancel, 0);
        atomic_init(&w->alive, true);
    }
    for (size_t i = 0; i < n; i++) {
        int rc = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
        if (rc != 0) {
            gen_status st = gen__error(GEN_ENOMEM, "workers: cannot start thread %zu: %s", i,
                                       strerror(rc));
            gen__workers_stop(ws, GEN_STOP_REQUEUE);
            return st;
        }
        workers[i].started = true;
    }
    *out = ws;
    return GEN_OK;
}

void gen__workers_stop(gen__workers *ws, gen_stop_mode mode)
{
    if (!ws)
        return;
    gen__workers_stop_threads(ws, mode);
    gen__workers_free(ws);
}

void gen__workers_stop_threads(gen__workers *ws, gen_stop_mode mode)
{
    pthread_mutex_lock(&ws->mu);
    ws->stopping = true;
    ws->stop_mode = mode;
    ws->wake_seq++;
    pthread_cond_broadcast(&ws->cv);
    pthread_mutex_unlock(&ws->mu);
    if (mode != GEN_STOP_DRAIN) {
        for (size_t i = 0; i < ws->count; i++)
            atomic_store(&ws->workers[i].cancel, 1);
    }
    for (size_t i = 0; i < ws->count; i++) {
        if (ws->workers[i].started)
            pthread_join(ws->workers[i].thread, NULL);
        ws->workers[i].started = false;
    }
}

void gen__workers_free(gen__workers *ws)
{
    if (!ws)
        return;
    for (size_t i = 0; i < ws->count; i++)
        pthread_mutex_destroy(&ws->workers[i].mu);
    pthread_mutex_destroy(&ws->mu);
    pthread_cond_destroy(&ws->cv);
    gen__free(ws->workers);
    gen__free(ws);
}

void gen__workers_pause(gen__workers *ws)
{
    pthread_mutex_lock(&ws->mu);
    ws->paused = true;
    pthread_mutex_unlock(&ws->mu);
}

void gen__workers_resume(gen__workers *ws)
{
    pthread_mutex_lock(&ws->mu);
    ws->paused = false;
    ws->wake_seq++;
    pthread_cond_broadcast(&ws->cv);
    pthread_mutex_unlock(&ws->mu);
}

void gen__workers_wake(gen__workers *ws)
{
    pthread_mutex_lock(&ws->mu);
    ws->wake_seq++;
    pthread_cond_broadcast(&ws->cv);
    pthread_mutex_unlock(&ws->mu);
}

bool gen__workers_route_cancel(gen__workers *ws, int64_t item_id)
{
    bool found = false;
    for (size_t i = 0; i < ws->count && item_id != 0; i++) {
        gen__worker *w = &ws->workers[i];
        pthread_mutex_lock(&w->mu);
        if (w->current_item == item_id) {
            atomic_store(&w->cancel, 1);
            found = true;
        }
        pthread_mutex_unlock(&w->mu);
    }
    return found;
}

int gen__workers_device_of(gen__workers *ws, int64_t item_id)
{
    for (size_t i = 0; i < ws->count && item_id != 0; i++) {
        gen__worker *w = &ws->workers[i];
        pthread_mutex_lock(&w->mu);
        bool match = w->current_item == item_id;
        pthread_mutex_unlock(&w->mu);
        if (match)
            return (int)i;
    }
    return -1;
}

size_t gen__workers_alive(gen__workers *ws)
{
    size_t n = 0;
    for (size_t i = 0; i < ws->count; i++)
        n += atomic_load(&ws->workers[i].alive);
    return n;
}
