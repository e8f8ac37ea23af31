/* The context object. Modules reach the logger and options through it. */
#ifndef GEN_CONTEXT_INTERNAL_H
#define GEN_CONTEXT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include <gen/context.h>

#include "core/log.h"
#include "pipeline/engine.h"
#include "worker/event.h"
#include "worker/worker.h"

struct gen_context {
    gen_context_options options; /* validated, normalised copy */
    gen__logger logger;
    gen_device_pool *devices;    /* resolved generation_devices */
    gen_queue *queue;            /* NULL when db_path is empty */
    gen__engine *engine;         /* backends and model caches of the devices */

    pthread_mutex_t mu;          /* workers pointer, callback, event queue switch */
    gen__workers *workers;       /* non-NULL while started */
    gen_event_fn event_fn;
    void *event_user_data;
    bool event_queue_enabled;
    gen__event_queue events;

    gen__item_runner runner;     /* runs one item; the pipeline by default */
    void *runner_ctx;
};

/* Deliver an event to the callback and the event queue. Any thread. */
void gen__context_emit(void *ctx, const gen__event_fields *fields);

/* Route the queue's status changes to the workers and to events. */
gen_status gen__context_attach_queue(gen_context *ctx);

/* The pipeline as the workers' item runner (runner_ctx = the context). */
gen_status gen__context_pipeline_runner(void *ctx, size_t device_index, const gen_queue_item *item,
                                        const gen__run_hooks *hooks, gen__run_result *result);

/* Test hook: run items with `runner` instead of the pipeline. */
void gen__context_set_runner(gen_context *ctx, gen__item_runner runner, void *runner_ctx);

#endif
