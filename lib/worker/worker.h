/* The worker pool (session processor): one thread per device of the pool.
 * Each worker pins its session device once, then loops: clear its cancel flag,
 * claim the next item (affinity: the models resident on its device), re-read
 * the row and skip it if it is already terminal, run it through the item
 * runner with hooks that report progress and check for cancellation, and
 * record the outcome. An error inside an item fails that item only; an error
 * outside items (the database failing repeatedly) stops that worker only and
 * is reported as a GEN_EVENT_WORKER_ERROR.
 *
 * Cancellation is routed per item: gen__workers_route_cancel(item) sets the
 * flag of the worker running that item (the context calls it from the queue's
 * status-change callback). Cancels made by other processes are seen by the
 * per-step status read in should_cancel. A cancel landing between the claim
 * and the start is caught by the re-read after the claim (the worker publishes
 * its current item before re-reading). */
#ifndef GEN_WORKER_WORKER_H
#define GEN_WORKER_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <gen/context.h>
#include <gen/event.h>
#include <gen/queue.h>

#include "core/log.h"
#include "device/device.h"
#include "model/model_cache.h"
#include "pipeline/generate.h"
#include "worker/event.h"

/* Given to the item runner: report progress, learn about cancellation (the
 * pipeline's hooks, so a runner passes them straight to gen__generate). */
typedef gen__gen_hooks gen__run_hooks;

typedef struct gen__run_result {
    char image_path[4096];
    int width, height;
} gen__run_result;

/* Runs one claimed item on device `device_index` of the pool, on the calling
 * (worker) thread: generate, write the image, fill *result. GEN_ECANCELED when
 * the hooks asked to stop; any other error fails the item with its message. */
typedef gen_status (*gen__item_runner)(void *runner_ctx, size_t device_index,
                                       const gen_queue_item *item, const gen__run_hooks *hooks,
                                       gen__run_result *result);

/* Delivers an event to the application (callback and/or event queue). */
typedef void (*gen__emit_fn)(void *emit_ctx, const gen__event_fields *fields);

typedef struct gen__workers_config {
    gen_queue *queue;
    const gen_device_pool *pool;
    gen__model_caches *caches;    /* for affinity keys; may be NULL */
    const gen__logger *logger;
    gen__item_runner runner;
    void *runner_ctx;
    gen__emit_fn emit;
    void *emit_ctx;
    uint32_t poll_interval_ms;    /* wait between claims when the queue is empty */
} gen__workers_config;

typedef struct gen__workers gen__workers;

/* Start one thread per device. */
gen_status gen__workers_start(gen__workers **out, const gen__workers_config *config);

/* Stop: DRAIN lets running items finish; CANCEL cancels them (status
 * canceled); REQUEUE stops them and puts them back to pending. Joins every
 * thread and frees the pool. NULL accepted. */
void gen__workers_stop(gen__workers *workers, gen_stop_mode mode);
/* The two halves of gen__workers_stop: signal and join (the pool stays valid,
 * so cancels can still be routed while items wind down), then free. */
void gen__workers_stop_threads(gen__workers *workers, gen_stop_mode mode);
void gen__workers_free(gen__workers *workers);

void gen__workers_pause(gen__workers *workers);
void gen__workers_resume(gen__workers *workers);
/* Wake idle workers now (after an enqueue, say). */
void gen__workers_wake(gen__workers *workers);

/* Set the cancel flag of the worker running `item_id`, if any. Returns
 * whether a worker was running it. Safe from any thread. */
bool gen__workers_route_cancel(gen__workers *workers, int64_t item_id);

/* Pool index of the worker running `item_id`, or -1. */
int gen__workers_device_of(gen__workers *workers, int64_t item_id);

/* How many workers are still running (not stopped by an error). */
size_t gen__workers_alive(gen__workers *workers);

#endif
